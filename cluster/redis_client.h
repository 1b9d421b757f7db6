/*
 * redis_client.h - one logical connection to the Redis master, kept alive.
 *
 * The directory (directory_redis.c) talks to Redis only through this. The
 * client finds the master (directly, or by asking Redis Sentinel and
 * following +switch-master), authenticates and selects the database, gives
 * every command a deadline, and redials with backoff whenever the
 * connection fails. Everything runs on lws's poll loop (redis_adapter.c).
 */
#ifndef RELAY_REDIS_CLIENT_H
#define RELAY_REDIS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include <hiredis/hiredis.h>
#include <libwebsockets.h>

#include "relay/config.h"

struct redis_client;

/* up: the master connection became usable (connected, authenticated,
 * database selected and, through Sentinel, confirmed to be the master).
 * down: it was lost; the client is already redialling. Called only from the
 * loop, never from inside a redis_client_* call. */
typedef void (*redis_client_state_callback)(void *owner, bool up);

/* The reply to one command, freed when the callback returns. NULL when the
 * command failed without a reply: its deadline passed, the connection was
 * lost, or the client is being destroyed. Error replies arrive as
 * REDIS_REPLY_ERROR. */
typedef void (*redis_client_reply_callback)(void *data, const redisReply *reply);

/* Start connecting to the master configured in config (redis_host and
 * redis_port, or sentinels and sentinel_master; password, database and
 * timeouts). vhost must list directory_redis_protocol. NULL on allocation
 * failure or unusable configuration (logged). */
struct redis_client *redis_client_new(struct lws_context *context, struct lws_vhost *vhost,
                                      const struct relay_cluster_config *config,
                                      redis_client_state_callback on_state, void *owner);

/* Whether commands go to Redis right now (state up). */
bool redis_client_is_up(const struct redis_client *client);

/* Send a command (pipelined behind the ones before it; while the client is
 * still connecting it is queued and sent once connected). Returns 0 when
 * accepted: on_reply (may be NULL) is then called exactly once, later.
 * Returns -1 when the client is down (waiting to redial) or out of memory:
 * on_reply is never called. */
int redis_client_command_arguments(struct redis_client *client,
                                   redis_client_reply_callback on_reply, void *data,
                                   int argument_count, const char **arguments,
                                   const size_t *argument_lengths);
/* Same, with hiredis's format string (%s, %b, %d, ...). */
int redis_client_command(struct redis_client *client, redis_client_reply_callback on_reply,
                         void *data, const char *format, ...);

/* Drop the master connection (its commands fail) and redial: for a user
 * that finds the server unusable, e.g. a failed setup step. */
void redis_client_reconnect(struct redis_client *client, const char *reason);

/* Write out what is buffered (best effort, without waiting), close every
 * connection and free the client synchronously. Pending reply callbacks run
 * with NULL before it returns. Not from inside a reply callback. */
void redis_client_destroy(struct redis_client *client);

#endif

/*
 * redis_adapter.h - hiredis's asynchronous API driven by lws's own poll loop.
 *
 * hiredis only formats commands, parses replies and tells an "event library"
 * when it wants to read or write; this adapter is that event library for
 * lws. The socket of a hiredis context is adopted into lws as a raw file
 * descriptor of the directory_redis_protocol (declared in
 * directory_redis.h), so the relay needs no second loop and no threads.
 * cluster/redis_client.c is its only user.
 */
#ifndef RELAY_REDIS_ADAPTER_H
#define RELAY_REDIS_ADAPTER_H

#include <hiredis/async.h>
#include <libwebsockets.h>

/* Called exactly once, when hiredis frees the attached context for whatever
 * reason (connect failure, connection lost, redisAsyncFree). Every pending
 * reply callback has already run (with a NULL reply). hiredis may be read but no
 * longer used: the owner must forget it. Must not free other hiredis
 * contexts' adapters or call back into this context. */
typedef void (*redis_adapter_release_callback)(void *owner, const redisAsyncContext *hiredis);

/* Attach a context fresh from redisAsyncConnect (hiredis->err == 0) to lws. vhost
 * must list directory_redis_protocol. On success hiredis's read/write
 * interest drives lws from now on, and released(owner, hiredis) reports the end.
 * Returns -1 when lws cannot adopt the socket: the context is untouched and
 * the caller frees it with redisAsyncFree. */
int redis_adapter_attach(redisAsyncContext *hiredis, struct lws_vhost *vhost,
                         redis_adapter_release_callback released, void *owner);

#endif

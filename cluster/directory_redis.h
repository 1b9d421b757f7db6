/*
 * directory_redis.h - the cluster's directory: rendezvous ids and live nodes
 * in Redis (see shared/docs/cluster.md), the second implementation of the
 * directory seam (include/relay/directory.h).
 *
 * Keys (prefix configurable, default "msr:"):
 *   <prefix>node:<node_id>   hash {advertise, epoch}, TTL node_ttl, refreshed
 *                            every heartbeat_interval
 *   <prefix>rdv:<rid>        "<node_id>:<epoch>" of the owner, TTL claim_ttl,
 *                            refreshed while the id is in use
 * Every command touches exactly one key, so rdv: keys can be sharded.
 *
 * claim: DIRECTORY_MINE, or DIRECTORY_ELSEWHERE with the owner's node_id,
 * advertise URL and epoch when a LIVE owner (its node key exists with the
 * same epoch) holds it; a dead or stale owner's claim is taken over
 * (compare-and-set) and answered DIRECTORY_MINE. DIRECTORY_ERROR while Redis
 * is unreachable: the directory keeps the id in its set of wanted claims and
 * asserts it when Redis is back.
 */
#ifndef RELAY_DIRECTORY_REDIS_H
#define RELAY_DIRECTORY_REDIS_H

#include <libwebsockets.h>

#include "cluster.h"
#include "relay/config.h"
#include "relay/directory.h"

/* Create the Redis directory on the node's lws context (hiredis attached to
 * lws's own loop through cluster/redis_adapter.c). It connects (through
 * Sentinel when configured) and registers the node in the background;
 * is_ready() turns true once connected, registered and every owned id
 * re-asserted. vhost: any vhost of the context, used to adopt the Redis
 * sockets. NULL on allocation failure or bad configuration (logged). */
struct directory *directory_redis_new(struct lws_context *context, struct lws_vhost *vhost,
                                      const struct relay_config *config,
                                      const struct cluster_identity *self);

/* The lws protocol that carries the adopted Redis descriptors. It must be in
 * the protocol list of the vhost passed above. */
extern const struct lws_protocols directory_redis_protocol;

#endif

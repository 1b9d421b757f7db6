/*
 * peer.h - a peer endpoint: "the other end" as a session sees it.
 *
 * A paired session forwards every frame it receives to its partner through
 * this interface, without knowing whether the partner is another local
 * WebSocket (node/session.c) or, in a cluster, a stream on an inter-node link
 * (cluster/). Forwarding, backpressure and lifecycle code is written once,
 * against these operations.
 *
 * Backpressure contract: an endpoint that receives more than it can queue
 * calls peer_pause_input(its partner) and later peer_resume_input(partner);
 * the partner then stops / restarts reading from its own client.
 */
#ifndef RELAY_PEER_H
#define RELAY_PEER_H

#include <stdbool.h>
#include <stddef.h>

#include "relay/protocol.h"

struct peer;

/* Flags of one forwarded piece of a WebSocket message. */
enum {
    PEER_FRAGMENT_FIRST = 1 << 0, /* first piece of a message */
    PEER_FRAGMENT_FINAL = 1 << 1, /* last piece of a message */
    PEER_FRAGMENT_TEXT = 1 << 2,  /* the message is a text message */
};

struct peer_ops {
    /* Queue one piece of a message for the client behind this endpoint.
     * Returns 0, or -1 if it cannot be queued (the endpoint then ends). */
    int (*deliver)(struct peer *self, const void *data, size_t length, unsigned flags);
    /* The pair is complete: send NOTIFY_RENDEZVOUS to the client behind
     * this endpoint (referencing its own request), before any frame. */
    void (*notify_paired)(struct peer *self);
    /* The partner has gone: send NOTIFY_RENDEZVOUS_END and close. */
    void (*end)(struct peer *self);
    /* Stop / restart reading from the client behind this endpoint. */
    void (*pause_input)(struct peer *self);
    void (*resume_input)(struct peer *self);
};

struct peer {
    const struct peer_ops *ops;
    struct peer *partner; /* NULL unless paired */
    char rid[RID_HEX_LENGTH + 1];
    char request_uuid[UUID_TEXT_LENGTH + 1];
};

static inline int peer_deliver(struct peer *peer, const void *data, size_t length, unsigned flags)
{
    return peer->ops->deliver(peer, data, length, flags);
}
static inline void peer_notify_paired(struct peer *peer)
{
    peer->ops->notify_paired(peer);
}
static inline void peer_end(struct peer *peer)
{
    peer->ops->end(peer);
}
static inline void peer_pause_input(struct peer *peer)
{
    peer->ops->pause_input(peer);
}
static inline void peer_resume_input(struct peer *peer)
{
    peer->ops->resume_input(peer);
}

#endif

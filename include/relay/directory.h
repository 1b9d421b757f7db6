/*
 * directory.h - who owns a rendezvous id: the seam between the matchmaker
 * and the place ids are registered.
 *
 * A standalone node uses the in-memory directory (node/directory_memory.c):
 * every claim is this node's. A cluster node uses the Redis directory
 * (cluster/), where a claim may answer that another node owns the id.
 * Operations complete asynchronously through a callback, which an
 * implementation may also invoke before the call returns. Callbacks carry
 * the rid, not a session pointer, because the session that asked may be gone
 * by the time the answer arrives.
 */
#ifndef RELAY_DIRECTORY_H
#define RELAY_DIRECTORY_H

#include <stdbool.h>
#include <stdint.h>

#include "relay/protocol.h"

#define NODE_ID_MAX_LENGTH 64
#define ADVERTISE_URL_MAX_LENGTH 256

struct directory;

enum directory_status {
    DIRECTORY_MINE,      /* this node owns the id (claim) */
    DIRECTORY_ELSEWHERE, /* another node owns it; see owner */
    DIRECTORY_ABSENT,    /* nobody owns it (lookup) */
    DIRECTORY_ERROR,     /* the directory could not answer */
};

struct directory_owner {
    char node_id[NODE_ID_MAX_LENGTH + 1];
    char advertise_url[ADVERTISE_URL_MAX_LENGTH + 1];
    uint64_t epoch;
};

typedef void (*directory_callback)(void *context, const char *rid, enum directory_status status,
                                   const struct directory_owner *owner);

struct directory_ops {
    const char *name;
    /* Claim rid for this node unless a live owner holds it. */
    void (*claim)(struct directory *directory, const char *rid, directory_callback callback,
                  void *context);
    /* Take rid over from a stale owner: succeeds (DIRECTORY_MINE) only if the
     * key still names exactly that owner or nobody; otherwise answers the
     * current owner. Used when the owner answered that it has no such id. */
    void (*claim_over)(struct directory *directory, const char *rid,
                       const struct directory_owner *stale_owner, directory_callback callback,
                       void *context);
    /* Who owns rid, without claiming. */
    void (*lookup)(struct directory *directory, const char *rid, directory_callback callback,
                   void *context);
    /* Give up this node's claim on rid (compare-and-delete: only our own).
     * callback may be NULL. */
    void (*release)(struct directory *directory, const char *rid, directory_callback callback,
                    void *context);
    /* Whether claims can currently be made (false while a backing store is
     * unreachable); feeds /readyz. */
    bool (*is_ready)(struct directory *directory);
    void (*destroy)(struct directory *directory);
};

struct directory {
    const struct directory_ops *ops;
};

/* The standalone implementation. */
struct directory *directory_memory_new(void);
/* Number of ids it holds (tests and metrics). */
unsigned long directory_memory_count(struct directory *directory);

static inline void directory_claim(struct directory *d, const char *rid, directory_callback cb,
                                   void *context)
{
    d->ops->claim(d, rid, cb, context);
}
static inline void directory_claim_over(struct directory *d, const char *rid,
                                        const struct directory_owner *stale_owner,
                                        directory_callback cb, void *context)
{
    d->ops->claim_over(d, rid, stale_owner, cb, context);
}
static inline void directory_lookup(struct directory *d, const char *rid, directory_callback cb,
                                    void *context)
{
    d->ops->lookup(d, rid, cb, context);
}
static inline void directory_release(struct directory *d, const char *rid, directory_callback cb,
                                     void *context)
{
    d->ops->release(d, rid, cb, context);
}
static inline bool directory_is_ready(struct directory *d)
{
    return d->ops->is_ready(d);
}
static inline void directory_destroy(struct directory *d)
{
    d->ops->destroy(d);
}

#endif

/*
 * matchmaker.h - pairs the two peers of a rendezvous id.
 *
 * The matchmaker is the single authority over the ids this node owns: it
 * keeps each id's state (pending with one waiting peer, or paired), pairs the
 * second arrival with the waiting peer, refuses a third, and frees the id
 * when the pair or the waiting peer goes. Peers are struct peer endpoints, so
 * the same code pairs two local WebSockets or (in a cluster) a local
 * WebSocket with a stream from another node. Registration of ids with the
 * directory (claim on first arrival, release when freed) happens here too.
 */
#ifndef RELAY_MATCHMAKER_H
#define RELAY_MATCHMAKER_H

#include "relay/directory.h"
#include "relay/peer.h"

struct matchmaker;

enum match_outcome {
    MATCH_PENDING, /* no partner: caller sends NOT_READY, peer waits */
    MATCH_PAIRED,  /* paired: both peers got notify_paired (arriving one first) */
    MATCH_REFUSED, /* id already paired: caller ends the peer (third peer) */
};

struct matchmaker *matchmaker_new(struct directory *directory);
void matchmaker_free(struct matchmaker *matchmaker);

/* A peer presented a valid request for peer->rid. */
enum match_outcome matchmaker_request(struct matchmaker *matchmaker, struct peer *peer);

/* The peer is gone (closed, failed, timed out). If it was paired, its
 * partner is ended (peer_end) and unlinked; the id is freed. Safe to call for
 * a peer the matchmaker does not know (does nothing). */
void matchmaker_leave(struct matchmaker *matchmaker, struct peer *peer);

/* Counts for the stats line and tests. */
unsigned long matchmaker_pending_count(const struct matchmaker *matchmaker);
unsigned long matchmaker_paired_count(const struct matchmaker *matchmaker);

#endif

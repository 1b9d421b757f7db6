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

/* The directory is about to be destroyed: from now on ids are neither
 * claimed nor released (the node is shutting down). */
void matchmaker_detach_directory(struct matchmaker *matchmaker);

/* A peer presented a valid request for peer->rid. */
enum match_outcome matchmaker_request(struct matchmaker *matchmaker, struct peer *peer);

/* The peer is gone (closed, failed, timed out). If it was paired, its
 * partner is ended (peer_end) and unlinked; the id is freed. Safe to call for
 * a peer the matchmaker does not know (does nothing). */
void matchmaker_leave(struct matchmaker *matchmaker, struct peer *peer);

/* --- cluster ---------------------------------------------------------------
 *
 * When the directory answers that another node owns an id, the waiting peer
 * is handed to the cluster, which opens a stream to the owner and returns it
 * as a peer endpoint; the owner pairs it with its own waiting peer (or not)
 * and the cluster reports the answer back with matchmaker_remote_answer. */

/* Open a stream to owner on behalf of waiting; returns the stream's peer
 * endpoint (its rid set), or NULL when it cannot even be queued. */
typedef struct peer *(*matchmaker_connect_remote)(void *context, struct peer *waiting,
                                                  const struct directory_owner *owner);

void matchmaker_set_remote_connector(struct matchmaker *matchmaker,
                                     matchmaker_connect_remote connect, void *context);

enum remote_answer {
    REMOTE_ANSWER_PAIRED,    /* the owner paired the stream with its waiting peer */
    REMOTE_ANSWER_NOT_FOUND, /* the owner has no such pending id: take the claim over */
    REMOTE_ANSWER_BUSY,      /* the id is already paired at the owner: third peer */
    REMOTE_ANSWER_FAILED,    /* the owner could not be reached: claim again */
};

/* The owner answered the stream opened for a waiting peer. On anything but
 * PAIRED the matchmaker forgets the stream (the caller frees it afterwards). */
void matchmaker_remote_answer(struct matchmaker *matchmaker, struct peer *stream,
                              enum remote_answer answer);

/* Owner side: a stream from another node presents stream->rid. MATCH_PAIRED
 * pairs it with the waiting local peer (both notified; the stream's
 * notify_paired answers PAIRED on the link); MATCH_PENDING means "not
 * found" (nothing is waiting here: the stream is not kept); MATCH_REFUSED
 * means the id is paired (busy). */
enum match_outcome matchmaker_accept_remote(struct matchmaker *matchmaker, struct peer *stream);

/* Counts for the stats line and tests. */
unsigned long matchmaker_pending_count(const struct matchmaker *matchmaker);
unsigned long matchmaker_paired_count(const struct matchmaker *matchmaker);

#endif

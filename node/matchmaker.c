/*
 * matchmaker.c - pairs the two peers of each rendezvous id.
 *
 * One entry per id in a rid_table. An entry is
 *   pending - one waiting peer, its claim registered (or being registered)
 *             with the directory;
 *   remote  - the directory named another node as owner: the waiting peer
 *             has been handed to the cluster, which opened a stream to the
 *             owner (peers[1]) and waits for its answer;
 *   paired  - two peers (local sessions or streams) forwarding to each other.
 * The rules are those of protocol-v0.md: the second arrival pairs with the
 * waiting peer (each is told NOTIFY_RENDEZVOUS, the arriving one first, as
 * the original relay does), a third arrival is refused without disturbing
 * the pair, and the id is freed as soon as the pair or the waiting peer is
 * gone, so it can be used again at once.
 *
 * The entry exists from the moment the first peer arrives, before the
 * directory has answered its claim: a partner arriving at this node in the
 * meantime pairs locally, which is always right since both are here.
 *
 * Directory answers arrive later and may concern an entry that has since
 * been freed and even re-created for the same id; each claim therefore
 * carries a ticket bound to the entry that asked, and a freed entry voids
 * its ticket.
 */
#include <stdlib.h>
#include <string.h>

#include "relay/log.h"
#include "relay/matchmaker.h"
#include "rid_table.h"

enum rendezvous_state {
    RENDEZVOUS_STATE_PENDING,
    RENDEZVOUS_STATE_REMOTE,
    RENDEZVOUS_STATE_PAIRED,
};

struct claim_ticket;

struct rendezvous {
    struct peer *peers[2]; /* peers[0] arrived first; peers[1]: partner or stream */
    enum rendezvous_state state;
    struct claim_ticket *ticket; /* the claim in flight, if any */
    /* While remote: who we asked. Allocated only then - an entry exists for
     * every pending connection, and an owner is 336 bytes. */
    struct directory_owner *remote_owner;
};

struct claim_ticket {
    struct claim_ticket *next, *previous; /* matchmaker's outstanding tickets */
    struct matchmaker *matchmaker;
    struct rendezvous *entry; /* NULL once the entry is gone */
};

struct matchmaker {
    struct directory *directory;
    struct rid_table *rendezvous;
    struct claim_ticket *tickets;
    unsigned long paired_count;
    matchmaker_connect_remote connect_remote;
    void *connect_context;
};

struct matchmaker *matchmaker_new(struct directory *directory)
{
    struct matchmaker *matchmaker = calloc(1, sizeof(*matchmaker));
    if (matchmaker == NULL)
        return NULL;
    matchmaker->rendezvous = rid_table_new();
    if (matchmaker->rendezvous == NULL) {
        free(matchmaker);
        return NULL;
    }
    matchmaker->directory = directory;
    return matchmaker;
}

void matchmaker_set_remote_connector(struct matchmaker *matchmaker,
                                     matchmaker_connect_remote connect, void *context)
{
    matchmaker->connect_remote = connect;
    matchmaker->connect_context = context;
}

static void matchmaker_free_entry(const char *rid, void *value, void *context)
{
    struct rendezvous *entry = value;
    free(entry->remote_owner);
    free(entry);
}

void matchmaker_free(struct matchmaker *matchmaker)
{
    if (matchmaker == NULL)
        return;
    /* The directory is destroyed after us and calls no callback then, so
     * outstanding tickets are simply dropped. */
    while (matchmaker->tickets != NULL) {
        struct claim_ticket *next = matchmaker->tickets->next;
        free(matchmaker->tickets);
        matchmaker->tickets = next;
    }
    rid_table_for_each(matchmaker->rendezvous, matchmaker_free_entry, NULL);
    rid_table_free(matchmaker->rendezvous);
    free(matchmaker);
}

void matchmaker_detach_directory(struct matchmaker *matchmaker)
{
    matchmaker->directory = NULL;
}

static void matchmaker_drop_ticket(struct claim_ticket *ticket)
{
    struct matchmaker *matchmaker = ticket->matchmaker;
    if (ticket->previous != NULL)
        ticket->previous->next = ticket->next;
    else
        matchmaker->tickets = ticket->next;
    if (ticket->next != NULL)
        ticket->next->previous = ticket->previous;
    if (ticket->entry != NULL && ticket->entry->ticket == ticket)
        ticket->entry->ticket = NULL;
    free(ticket);
}

static void matchmaker_on_claimed(void *context, const char *rid, enum directory_status status,
                                  const struct directory_owner *owner);

/* Ask the directory to register rid for entry; over: take over from it. */
static void matchmaker_claim(struct matchmaker *matchmaker, struct rendezvous *entry,
                             const char *rid, const struct directory_owner *over)
{
    struct claim_ticket *ticket = calloc(1, sizeof(*ticket));
    if (ticket == NULL) {
        /* Without a ticket the id stays matchable here, just unregistered. */
        log_warn("out of memory registering rendezvous %.16s...", rid);
        return;
    }
    ticket->matchmaker = matchmaker;
    ticket->entry = entry;
    ticket->next = matchmaker->tickets;
    if (ticket->next != NULL)
        ticket->next->previous = ticket;
    matchmaker->tickets = ticket;
    if (entry->ticket != NULL)
        entry->ticket->entry = NULL; /* an older claim's answer no longer counts */
    entry->ticket = ticket;
    if (matchmaker->directory == NULL)
        return; /* shutting down: the ticket is freed with the matchmaker */
    if (over != NULL)
        directory_claim_over(matchmaker->directory, rid, over, matchmaker_on_claimed, ticket);
    else
        directory_claim(matchmaker->directory, rid, matchmaker_on_claimed, ticket);
}

/* The directory says another node owns the id: hand the waiting peer to the
 * cluster, which opens a stream to the owner. */
static void matchmaker_go_remote(struct matchmaker *matchmaker, struct rendezvous *entry,
                                 const struct directory_owner *owner)
{
    if (matchmaker->connect_remote == NULL || owner == NULL)
        return;
    struct directory_owner *remote_owner = malloc(sizeof(*remote_owner));
    if (remote_owner == NULL)
        return; /* the peer stays pending here, like a failed connect */
    *remote_owner = *owner;
    struct peer *stream =
        matchmaker->connect_remote(matchmaker->connect_context, entry->peers[0], owner);
    if (stream == NULL) {
        free(remote_owner);
        return;
    }
    entry->peers[1] = stream;
    entry->state = RENDEZVOUS_STATE_REMOTE;
    entry->remote_owner = remote_owner;
}

static void matchmaker_on_claimed(void *context, const char *rid, enum directory_status status,
                                  const struct directory_owner *owner)
{
    struct claim_ticket *ticket = context;
    struct rendezvous *entry = ticket->entry;
    struct matchmaker *matchmaker = ticket->matchmaker;

    matchmaker_drop_ticket(ticket);
    if (entry == NULL)
        return; /* the entry that asked is gone */
    if (status == DIRECTORY_ERROR)
        log_debug("directory could not register rendezvous %.16s... yet", rid);
    if (status == DIRECTORY_ELSEWHERE && entry->state == RENDEZVOUS_STATE_PENDING)
        matchmaker_go_remote(matchmaker, entry, owner);
}

static enum match_outcome matchmaker_start_pending(struct matchmaker *matchmaker, struct peer *peer)
{
    struct rendezvous *entry = calloc(1, sizeof(*entry));
    if (entry == NULL || rid_table_put(matchmaker->rendezvous, peer->rid, entry) != 0) {
        free(entry);
        /* Out of memory: refusing is the only answer that cannot corrupt a pair. */
        return MATCH_REFUSED;
    }
    entry->peers[0] = peer;
    entry->state = RENDEZVOUS_STATE_PENDING;
    matchmaker_claim(matchmaker, entry, peer->rid, NULL);
    return MATCH_PENDING;
}

static void matchmaker_pair(struct matchmaker *matchmaker, struct rendezvous *entry,
                            struct peer *arriving, bool notify_arriving)
{
    struct peer *waiting = entry->peers[0];
    entry->peers[1] = arriving;
    entry->state = RENDEZVOUS_STATE_PAIRED;
    waiting->partner = arriving;
    arriving->partner = waiting;
    matchmaker->paired_count++;
    /* Both notifications are queued before either side can forward a
     * frame, so each peer sees NOTIFY_RENDEZVOUS before its partner's data. */
    if (notify_arriving)
        peer_notify_paired(arriving);
    peer_notify_paired(waiting);
}

enum match_outcome matchmaker_request(struct matchmaker *matchmaker, struct peer *peer)
{
    struct rendezvous *entry = rid_table_get(matchmaker->rendezvous, peer->rid);
    if (entry == NULL)
        return matchmaker_start_pending(matchmaker, peer);
    if (entry->state == RENDEZVOUS_STATE_PENDING && entry->peers[0] != peer) {
        matchmaker_pair(matchmaker, entry, peer, true);
        return MATCH_PAIRED;
    }
    /* Paired, or our waiting peer is already being paired with the owner's:
     * either way this is a third peer. */
    return MATCH_REFUSED;
}

enum match_outcome matchmaker_accept_remote(struct matchmaker *matchmaker, struct peer *stream)
{
    struct rendezvous *entry = rid_table_get(matchmaker->rendezvous, stream->rid);
    if (entry == NULL || entry->state == RENDEZVOUS_STATE_REMOTE)
        return MATCH_PENDING; /* not found: nothing waits here */
    if (entry->state == RENDEZVOUS_STATE_PAIRED)
        return MATCH_REFUSED;
    matchmaker_pair(matchmaker, entry, stream, true);
    return MATCH_PAIRED;
}

static void matchmaker_forget(struct matchmaker *matchmaker, struct rendezvous *entry,
                              const char *rid)
{
    /* Copy first: rid may point into a peer that is about to be freed. */
    char key[RID_HEX_LENGTH + 1];
    memcpy(key, rid, sizeof(key));
    if (entry->ticket != NULL)
        entry->ticket->entry = NULL;
    struct rendezvous *removed = rid_table_remove(matchmaker->rendezvous, key);
    if (removed != NULL)
        matchmaker_free_entry(key, removed, NULL);
    if (matchmaker->directory != NULL)
        directory_release(matchmaker->directory, key, NULL, NULL);
}

void matchmaker_remote_answer(struct matchmaker *matchmaker, struct peer *stream,
                              enum remote_answer answer)
{
    struct rendezvous *entry = rid_table_get(matchmaker->rendezvous, stream->rid);
    if (entry == NULL || entry->state != RENDEZVOUS_STATE_REMOTE || entry->peers[1] != stream)
        return;
    struct peer *waiting = entry->peers[0];
    struct directory_owner stale = *entry->remote_owner;

    free(entry->remote_owner);
    entry->remote_owner = NULL;
    entry->peers[1] = NULL;
    entry->state = RENDEZVOUS_STATE_PENDING;
    switch (answer) {
    case REMOTE_ANSWER_PAIRED:
        /* The owner told its own peer; only ours is left to notify. */
        matchmaker_pair(matchmaker, entry, stream, false);
        break;
    case REMOTE_ANSWER_NOT_FOUND:
        /* The owner's claim is stale: take it over, our peer waits here. */
        matchmaker_claim(matchmaker, entry, waiting->rid, &stale);
        break;
    case REMOTE_ANSWER_FAILED:
        /* The owner is unreachable: ask again (a dead owner's claim is
         * taken over by the directory). */
        matchmaker_claim(matchmaker, entry, waiting->rid, NULL);
        break;
    case REMOTE_ANSWER_BUSY:
        matchmaker_forget(matchmaker, entry, waiting->rid);
        peer_end(waiting);
        break;
    }
}

void matchmaker_leave(struct matchmaker *matchmaker, struct peer *peer)
{
    struct rendezvous *entry = rid_table_get(matchmaker->rendezvous, peer->rid);
    if (entry == NULL || (entry->peers[0] != peer && entry->peers[1] != peer))
        return;
    struct peer *other = entry->peers[0] == peer ? entry->peers[1] : entry->peers[0];
    if (entry->state == RENDEZVOUS_STATE_PAIRED) {
        peer->partner = NULL;
        other->partner = NULL;
        matchmaker->paired_count--;
    }
    matchmaker_forget(matchmaker, entry, peer->rid);
    /* Paired: the partner hears END. Remote: the stream opened for the
     * waiting peer is closed (if the owner paired it meanwhile, its peer
     * hears END there). A stream that leaves while remote is answered by
     * matchmaker_remote_answer, never here. */
    if (other != NULL)
        peer_end(other);
}

unsigned long matchmaker_pending_count(const struct matchmaker *matchmaker)
{
    return (unsigned long)rid_table_count(matchmaker->rendezvous) - matchmaker->paired_count;
}

unsigned long matchmaker_paired_count(const struct matchmaker *matchmaker)
{
    return matchmaker->paired_count;
}

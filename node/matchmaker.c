/*
 * matchmaker.c - pairs the two peers of each rendezvous id this node owns.
 *
 * One entry per id in a rid_table: a pending id holds its waiting peer, a
 * paired id holds both. The rules are those of protocol-v0.md: the second
 * arrival pairs with the waiting peer (each is told NOTIFY_RENDEZVOUS, the
 * arriving one first, as the original relay does), a third arrival is
 * refused without disturbing the pair, and the id is freed as soon as the
 * pair or the waiting peer is gone, so it can be used again at once.
 *
 * The entry exists from the moment the first peer arrives, before the
 * directory has answered its claim: a partner arriving at this node in the
 * meantime pairs locally, which is always right since both are here.
 */
#include <stdlib.h>
#include <string.h>

#include "relay/log.h"
#include "relay/matchmaker.h"
#include "rid_table.h"

struct rendezvous {
    struct peer *peers[2]; /* peers[0] arrived first */
    int peer_count;
};

struct matchmaker {
    struct directory *directory;
    struct rid_table *rendezvous;
    unsigned long paired_count;
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

static void matchmaker_free_entry(const char *rid, void *value, void *context)
{
    free(value);
}

void matchmaker_free(struct matchmaker *matchmaker)
{
    if (matchmaker == NULL)
        return;
    rid_table_for_each(matchmaker->rendezvous, matchmaker_free_entry, NULL);
    rid_table_free(matchmaker->rendezvous);
    free(matchmaker);
}

/* A claim that fails leaves the id matchable on this node; only other nodes
 * cannot find it. Log it: in a cluster this is the moment the directory
 * stopped being able to answer. */
static void matchmaker_on_claimed(void *context, const char *rid, enum directory_status status,
                                  const struct directory_owner *owner)
{
    if (status == DIRECTORY_ERROR)
        log_warn("directory could not register rendezvous %.16s...", rid);
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
    entry->peer_count = 1;
    directory_claim(matchmaker->directory, peer->rid, matchmaker_on_claimed, matchmaker);
    return MATCH_PENDING;
}

static void matchmaker_pair(struct matchmaker *matchmaker, struct rendezvous *entry,
                            struct peer *arriving)
{
    struct peer *waiting = entry->peers[0];
    entry->peers[1] = arriving;
    entry->peer_count = 2;
    waiting->partner = arriving;
    arriving->partner = waiting;
    matchmaker->paired_count++;
    /* Both notifications are queued before either side can forward a
     * frame, so each peer sees NOTIFY_RENDEZVOUS before its partner's data. */
    peer_notify_paired(arriving);
    peer_notify_paired(waiting);
}

enum match_outcome matchmaker_request(struct matchmaker *matchmaker, struct peer *peer)
{
    struct rendezvous *entry = rid_table_get(matchmaker->rendezvous, peer->rid);
    if (entry == NULL)
        return matchmaker_start_pending(matchmaker, peer);
    if (entry->peer_count == 1 && entry->peers[0] != peer) {
        matchmaker_pair(matchmaker, entry, peer);
        return MATCH_PAIRED;
    }
    return MATCH_REFUSED;
}

static void matchmaker_forget(struct matchmaker *matchmaker, const char *rid)
{
    /* Copy first: rid may point into a peer that is about to be freed. */
    char key[RID_HEX_LENGTH + 1];
    memcpy(key, rid, sizeof(key));
    free(rid_table_remove(matchmaker->rendezvous, key));
    directory_release(matchmaker->directory, key, NULL, NULL);
}

void matchmaker_leave(struct matchmaker *matchmaker, struct peer *peer)
{
    struct rendezvous *entry = rid_table_get(matchmaker->rendezvous, peer->rid);
    if (entry == NULL || (entry->peers[0] != peer && entry->peers[1] != peer))
        return;
    if (entry->peer_count == 1) {
        matchmaker_forget(matchmaker, peer->rid);
        return;
    }
    struct peer *partner = entry->peers[0] == peer ? entry->peers[1] : entry->peers[0];
    peer->partner = NULL;
    partner->partner = NULL;
    matchmaker->paired_count--;
    matchmaker_forget(matchmaker, peer->rid);
    peer_end(partner);
}

unsigned long matchmaker_pending_count(const struct matchmaker *matchmaker)
{
    return (unsigned long)rid_table_count(matchmaker->rendezvous) - matchmaker->paired_count;
}

unsigned long matchmaker_paired_count(const struct matchmaker *matchmaker)
{
    return matchmaker->paired_count;
}

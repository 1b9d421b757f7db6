/*
 * test_core_matchmaker.c - the matchmaker's state machine, through fake peer
 * endpoints that record what the matchmaker asks of them, and the in-memory
 * directory it registers ids with.
 *
 * States per id: absent -> pending (one waiting peer) -> paired -> absent.
 * Every transition and every refusal is checked, including the orders of
 * notifications that the protocol requires.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "relay/directory.h"
#include "relay/matchmaker.h"

struct fake_peer {
    struct peer peer;
    int notified_paired;
    int ended;
    int event_order; /* global sequence number of the last notify_paired */
};

static int event_sequence;

static struct fake_peer *fake_of(struct peer *peer)
{
    return (struct fake_peer *)peer;
}

static int fake_deliver(struct peer *self, const void *data, size_t length, unsigned flags)
{
    return 0;
}
static void fake_notify_paired(struct peer *self)
{
    fake_of(self)->notified_paired++;
    fake_of(self)->event_order = ++event_sequence;
}
static void fake_end(struct peer *self)
{
    fake_of(self)->ended++;
}
static void fake_pause(struct peer *self) {}

static const struct peer_ops fake_ops = {fake_deliver, fake_notify_paired, fake_end, fake_pause,
                                         fake_pause};

static const char rid_a[] = "f66d7935fb71dafa8493e8194e9eda3ed95406bd1376f71dd1f47961581d5646";
static const char rid_b[] = "8b46c9a3728c589d7d7f8cdadb4b01e3e949253d2af9535b7fb54d527821b8fe";

static void fake_init(struct fake_peer *fake, const char *rid)
{
    memset(fake, 0, sizeof(*fake));
    fake->peer.ops = &fake_ops;
    snprintf(fake->peer.rid, sizeof(fake->peer.rid), "%s", rid);
}

struct fixture {
    struct directory *directory;
    struct matchmaker *matchmaker;
};

static int setup(void **state)
{
    static struct fixture fixture;
    fixture.directory = directory_memory_new();
    fixture.matchmaker = matchmaker_new(fixture.directory);
    assert_non_null(fixture.matchmaker);
    *state = &fixture;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fixture = *state;
    matchmaker_free(fixture->matchmaker);
    directory_destroy(fixture->directory);
    return 0;
}

static void test_first_peer_is_pending_and_claimed(void **state)
{
    struct fixture *f = *state;
    struct fake_peer first;
    fake_init(&first, rid_a);

    assert_int_equal(matchmaker_request(f->matchmaker, &first.peer), MATCH_PENDING);
    assert_int_equal(first.notified_paired, 0);
    assert_null(first.peer.partner);
    assert_int_equal(matchmaker_pending_count(f->matchmaker), 1);
    assert_int_equal(matchmaker_paired_count(f->matchmaker), 0);
    assert_int_equal(directory_memory_count(f->directory), 1);
}

static void test_second_peer_pairs_arriving_first(void **state)
{
    struct fixture *f = *state;
    struct fake_peer first, second;
    fake_init(&first, rid_a);
    fake_init(&second, rid_a);

    matchmaker_request(f->matchmaker, &first.peer);
    assert_int_equal(matchmaker_request(f->matchmaker, &second.peer), MATCH_PAIRED);
    assert_ptr_equal(first.peer.partner, &second.peer);
    assert_ptr_equal(second.peer.partner, &first.peer);
    assert_int_equal(first.notified_paired, 1);
    assert_int_equal(second.notified_paired, 1);
    /* The arriving peer is told first, as the original relay does. */
    assert_true(second.event_order < first.event_order);
    assert_int_equal(matchmaker_pending_count(f->matchmaker), 0);
    assert_int_equal(matchmaker_paired_count(f->matchmaker), 1);
}

static void test_third_peer_refused_pair_untouched(void **state)
{
    struct fixture *f = *state;
    struct fake_peer first, second, third;
    fake_init(&first, rid_a);
    fake_init(&second, rid_a);
    fake_init(&third, rid_a);

    matchmaker_request(f->matchmaker, &first.peer);
    matchmaker_request(f->matchmaker, &second.peer);
    assert_int_equal(matchmaker_request(f->matchmaker, &third.peer), MATCH_REFUSED);
    assert_null(third.peer.partner);
    assert_int_equal(third.notified_paired, 0);
    /* Leaving as a refused peer must not disturb the pair. */
    matchmaker_leave(f->matchmaker, &third.peer);
    assert_ptr_equal(first.peer.partner, &second.peer);
    assert_int_equal(first.ended + second.ended, 0);
    assert_int_equal(matchmaker_paired_count(f->matchmaker), 1);
}

static void test_same_peer_twice_is_refused(void **state)
{
    struct fixture *f = *state;
    struct fake_peer first;
    fake_init(&first, rid_a);
    matchmaker_request(f->matchmaker, &first.peer);
    assert_int_equal(matchmaker_request(f->matchmaker, &first.peer), MATCH_REFUSED);
    assert_null(first.peer.partner);
}

static void test_pending_leave_frees_id(void **state)
{
    struct fixture *f = *state;
    struct fake_peer first, later;
    fake_init(&first, rid_a);
    fake_init(&later, rid_a);

    matchmaker_request(f->matchmaker, &first.peer);
    matchmaker_leave(f->matchmaker, &first.peer);
    assert_int_equal(first.ended, 0);
    assert_int_equal(matchmaker_pending_count(f->matchmaker), 0);
    assert_int_equal(directory_memory_count(f->directory), 0);
    /* The id is free: the next arrival waits again rather than pairing. */
    assert_int_equal(matchmaker_request(f->matchmaker, &later.peer), MATCH_PENDING);
}

static void test_paired_leave_ends_partner_and_frees_id(void **state)
{
    struct fixture *f = *state;
    struct fake_peer first, second, next_a, next_b;
    fake_init(&first, rid_a);
    fake_init(&second, rid_a);
    fake_init(&next_a, rid_a);
    fake_init(&next_b, rid_a);

    matchmaker_request(f->matchmaker, &first.peer);
    matchmaker_request(f->matchmaker, &second.peer);
    matchmaker_leave(f->matchmaker, &first.peer);
    assert_int_equal(second.ended, 1);
    assert_int_equal(first.ended, 0);
    assert_null(first.peer.partner);
    assert_null(second.peer.partner);
    assert_int_equal(matchmaker_paired_count(f->matchmaker), 0);
    assert_int_equal(directory_memory_count(f->directory), 0);

    /* The partner leaving afterwards is a no-op: it is ended only once. */
    matchmaker_leave(f->matchmaker, &second.peer);
    assert_int_equal(second.ended, 1);

    /* A new pair can form on the same id. */
    assert_int_equal(matchmaker_request(f->matchmaker, &next_a.peer), MATCH_PENDING);
    assert_int_equal(matchmaker_request(f->matchmaker, &next_b.peer), MATCH_PAIRED);
}

static void test_ids_are_independent(void **state)
{
    struct fixture *f = *state;
    struct fake_peer a1, b1, a2;
    fake_init(&a1, rid_a);
    fake_init(&b1, rid_b);
    fake_init(&a2, rid_a);

    assert_int_equal(matchmaker_request(f->matchmaker, &a1.peer), MATCH_PENDING);
    assert_int_equal(matchmaker_request(f->matchmaker, &b1.peer), MATCH_PENDING);
    assert_int_equal(matchmaker_request(f->matchmaker, &a2.peer), MATCH_PAIRED);
    assert_null(b1.peer.partner);
    assert_int_equal(matchmaker_pending_count(f->matchmaker), 1);
    matchmaker_leave(f->matchmaker, &b1.peer);
    assert_int_equal(matchmaker_pending_count(f->matchmaker), 0);
    assert_int_equal(matchmaker_paired_count(f->matchmaker), 1);
}

static void test_unknown_peer_leave_is_noop(void **state)
{
    struct fixture *f = *state;
    struct fake_peer stranger, waiting;
    fake_init(&stranger, rid_a);
    fake_init(&waiting, rid_a);
    matchmaker_leave(f->matchmaker, &stranger.peer);
    matchmaker_request(f->matchmaker, &waiting.peer);
    /* Same id, different peer: must not free the waiting peer's id. */
    matchmaker_leave(f->matchmaker, &stranger.peer);
    assert_int_equal(matchmaker_pending_count(f->matchmaker), 1);
}

static void test_many_ids_grow_table(void **state)
{
    struct fixture *f = *state;
    enum { COUNT = 5000 };
    static struct fake_peer peers[COUNT][2];
    for (int i = 0; i < COUNT; i++) {
        char rid[RID_HEX_LENGTH + 1];
        snprintf(rid, sizeof(rid), "%064x", i * 2654435761u);
        fake_init(&peers[i][0], rid);
        fake_init(&peers[i][1], rid);
        assert_int_equal(matchmaker_request(f->matchmaker, &peers[i][0].peer), MATCH_PENDING);
    }
    for (int i = 0; i < COUNT; i++)
        assert_int_equal(matchmaker_request(f->matchmaker, &peers[i][1].peer), MATCH_PAIRED);
    assert_int_equal(matchmaker_paired_count(f->matchmaker), COUNT);
    for (int i = 0; i < COUNT; i++)
        matchmaker_leave(f->matchmaker, &peers[i][1].peer);
    assert_int_equal(matchmaker_paired_count(f->matchmaker), 0);
    assert_int_equal(directory_memory_count(f->directory), 0);
}

/* --- remote owners (cluster) ------------------------------------------- */

/* A directory that says another node owns every id, until told otherwise. */
struct elsewhere_directory {
    struct directory base;
    int claims, claims_over, releases;
    enum directory_status answer;
};

static void elsewhere_answer(struct directory *directory, const char *rid,
                             directory_callback callback, void *context)
{
    struct elsewhere_directory *d = (struct elsewhere_directory *)directory;
    struct directory_owner owner = {
        .node_id = "node-a", .advertise_url = "ws://127.0.0.1:1", .epoch = 7};
    callback(context, rid, d->answer, d->answer == DIRECTORY_ELSEWHERE ? &owner : NULL);
}
static void elsewhere_claim(struct directory *directory, const char *rid,
                            directory_callback callback, void *context)
{
    ((struct elsewhere_directory *)directory)->claims++;
    elsewhere_answer(directory, rid, callback, context);
}
static void elsewhere_claim_over(struct directory *directory, const char *rid,
                                 const struct directory_owner *stale, directory_callback callback,
                                 void *context)
{
    struct elsewhere_directory *d = (struct elsewhere_directory *)directory;
    assert_string_equal(stale->node_id, "node-a");
    d->claims_over++;
    elsewhere_answer(directory, rid, callback, context);
}
static void elsewhere_release(struct directory *directory, const char *rid,
                              directory_callback callback, void *context)
{
    ((struct elsewhere_directory *)directory)->releases++;
}
static bool elsewhere_ready(struct directory *directory)
{
    return true;
}
static void elsewhere_destroy(struct directory *directory) {}

static const struct directory_ops elsewhere_ops = {
    .name = "elsewhere",
    .claim = elsewhere_claim,
    .claim_over = elsewhere_claim_over,
    .release = elsewhere_release,
    .is_ready = elsewhere_ready,
    .destroy = elsewhere_destroy,
};

static struct fake_peer streams[4];
static int stream_count;
static struct peer *waiting_seen;

static struct peer *fake_connect(void *context, struct peer *waiting,
                                 const struct directory_owner *owner)
{
    struct fake_peer *stream = &streams[stream_count++];
    fake_init(stream, waiting->rid);
    waiting_seen = waiting;
    return &stream->peer;
}

static void remote_setup(struct elsewhere_directory *directory, struct matchmaker **matchmaker)
{
    memset(directory, 0, sizeof(*directory));
    directory->base.ops = &elsewhere_ops;
    directory->answer = DIRECTORY_ELSEWHERE;
    stream_count = 0;
    waiting_seen = NULL;
    *matchmaker = matchmaker_new(&directory->base);
    matchmaker_set_remote_connector(*matchmaker, fake_connect, NULL);
}

static void test_remote_owner_pairs_through_stream(void **state)
{
    struct elsewhere_directory directory;
    struct matchmaker *matchmaker;
    struct fake_peer arriving, local_third;
    remote_setup(&directory, &matchmaker);
    fake_init(&arriving, rid_a);
    fake_init(&local_third, rid_a);

    /* Pending locally, then handed to the owner through a stream. */
    assert_int_equal(matchmaker_request(matchmaker, &arriving.peer), MATCH_PENDING);
    assert_int_equal(stream_count, 1);
    assert_ptr_equal(waiting_seen, &arriving.peer);
    /* While the owner decides, a local arrival is a third peer. */
    assert_int_equal(matchmaker_request(matchmaker, &local_third.peer), MATCH_REFUSED);

    matchmaker_remote_answer(matchmaker, &streams[0].peer, REMOTE_ANSWER_PAIRED);
    assert_ptr_equal(arriving.peer.partner, &streams[0].peer);
    assert_int_equal(arriving.notified_paired, 1);
    /* The owner notifies its own peer: the stream is not asked to. */
    assert_int_equal(streams[0].notified_paired, 0);
    assert_int_equal(matchmaker_paired_count(matchmaker), 1);

    /* The stream closing ends the local peer. */
    matchmaker_leave(matchmaker, &streams[0].peer);
    assert_int_equal(arriving.ended, 1);
    assert_int_equal(matchmaker_paired_count(matchmaker), 0);
    matchmaker_free(matchmaker);
}

static void test_remote_not_found_takes_claim_over(void **state)
{
    struct elsewhere_directory directory;
    struct matchmaker *matchmaker;
    struct fake_peer arriving, partner;
    remote_setup(&directory, &matchmaker);
    fake_init(&arriving, rid_a);
    fake_init(&partner, rid_a);

    matchmaker_request(matchmaker, &arriving.peer);
    directory.answer = DIRECTORY_MINE;
    matchmaker_remote_answer(matchmaker, &streams[0].peer, REMOTE_ANSWER_NOT_FOUND);
    assert_int_equal(directory.claims_over, 1);
    assert_int_equal(arriving.ended, 0);
    /* Now pending here: the next local arrival pairs. */
    assert_int_equal(matchmaker_request(matchmaker, &partner.peer), MATCH_PAIRED);
    matchmaker_free(matchmaker);
}

static void test_remote_busy_ends_arriving_peer(void **state)
{
    struct elsewhere_directory directory;
    struct matchmaker *matchmaker;
    struct fake_peer arriving;
    remote_setup(&directory, &matchmaker);
    fake_init(&arriving, rid_a);

    matchmaker_request(matchmaker, &arriving.peer);
    matchmaker_remote_answer(matchmaker, &streams[0].peer, REMOTE_ANSWER_BUSY);
    assert_int_equal(arriving.ended, 1);
    assert_int_equal(matchmaker_pending_count(matchmaker), 0);
    matchmaker_free(matchmaker);
}

static void test_remote_failed_claims_again(void **state)
{
    struct elsewhere_directory directory;
    struct matchmaker *matchmaker;
    struct fake_peer arriving;
    remote_setup(&directory, &matchmaker);
    fake_init(&arriving, rid_a);

    matchmaker_request(matchmaker, &arriving.peer);
    assert_int_equal(directory.claims, 1);
    /* Still owned elsewhere: a new stream is opened. */
    matchmaker_remote_answer(matchmaker, &streams[0].peer, REMOTE_ANSWER_FAILED);
    assert_int_equal(directory.claims, 2);
    assert_int_equal(stream_count, 2);
    /* An answer for the abandoned stream is ignored. */
    matchmaker_remote_answer(matchmaker, &streams[0].peer, REMOTE_ANSWER_PAIRED);
    assert_null(arriving.peer.partner);
    /* The waiting peer leaving closes the stream in flight. */
    matchmaker_leave(matchmaker, &arriving.peer);
    assert_int_equal(streams[1].ended, 1);
    matchmaker_free(matchmaker);
}

static void test_owner_accepts_remote_stream(void **state)
{
    struct fixture *f = *state;
    struct fake_peer waiting, stream, late_stream, unknown_stream;
    fake_init(&waiting, rid_a);
    fake_init(&stream, rid_a);
    fake_init(&late_stream, rid_a);
    fake_init(&unknown_stream, rid_b);

    assert_int_equal(matchmaker_accept_remote(f->matchmaker, &unknown_stream.peer), MATCH_PENDING);
    matchmaker_request(f->matchmaker, &waiting.peer);
    assert_int_equal(matchmaker_accept_remote(f->matchmaker, &stream.peer), MATCH_PAIRED);
    /* The stream is notified (it answers PAIRED on the link), then ours. */
    assert_int_equal(stream.notified_paired, 1);
    assert_int_equal(waiting.notified_paired, 1);
    assert_int_equal(matchmaker_accept_remote(f->matchmaker, &late_stream.peer), MATCH_REFUSED);
    matchmaker_leave(f->matchmaker, &waiting.peer);
    assert_int_equal(stream.ended, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_first_peer_is_pending_and_claimed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_peer_pairs_arriving_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_third_peer_refused_pair_untouched, setup, teardown),
        cmocka_unit_test_setup_teardown(test_same_peer_twice_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pending_leave_frees_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_paired_leave_ends_partner_and_frees_id, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_ids_are_independent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_peer_leave_is_noop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_ids_grow_table, setup, teardown),
        cmocka_unit_test(test_remote_owner_pairs_through_stream),
        cmocka_unit_test(test_remote_not_found_takes_claim_over),
        cmocka_unit_test(test_remote_busy_ends_arriving_peer),
        cmocka_unit_test(test_remote_failed_claims_again),
        cmocka_unit_test_setup_teardown(test_owner_accepts_remote_stream, setup, teardown),
    };
    return cmocka_run_group_tests_name("matchmaker", tests, NULL, NULL);
}

/*
 * test_cluster_isolation.c - no head-of-line blocking on a link
 * (shared/docs/cluster.md, "The link"; cluster/link-protocol.md, section 6).
 *
 * Eight cross-node pairs share the one link from node B to node A (every id
 * is owned by A, so B dials A and all streams ride that connection); data
 * flows both ways. After a baseline of every pair's throughput, the
 * receiver of one pair stops reading: its sender must stall (credit is
 * withheld, memory stays bounded), while the other pairs on the same link
 * keep at least half of their baseline throughput. Then the receiver
 * resumes and every byte of every pair arrives, in order.
 *
 * Bounds are generous on purpose (2-core machines, sanitizer builds): a
 * link without per-stream credit drops the others to nearly zero.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cluster_harness.h"

#define PAIRS 8
#define FROM_B_PAIRS 2 /* the last two send from B to A, the rest A to B */
#define FRAME_BYTES (16 * 1024)
#define QUEUE_LIMIT (2 * FRAME_BYTES)
#define MEASURE_MS 2000
#define STALL_MS 1000
/* Growth allowed over the steady-state RSS. AddressSanitizer keeps freed
 * memory in a quarantine (256 MiB by default) that fills as data flows, so
 * the sanitizer build gets room for it; the stall itself is the real proof
 * of bounded buffering. */
#if defined(__SANITIZE_ADDRESS__)
#define RSS_ALLOWANCE_KIB (384 * 1024)
#else
#define RSS_ALLOWANCE_KIB (64 * 1024)
#endif

struct stream_pair {
    struct relay_test_peer owner_side, remote_side; /* on A, on B */
    struct ws_client_connection *sender, *receiver;
    char rid[65];
    uint32_t seed;
    uint32_t sent, received;
    bool sending; /* the sender queues more frames */
    int mismatches;
    unsigned char frame[FRAME_BYTES];
    unsigned char expected[FRAME_BYTES];
};

static void stream_check_message(struct ws_client_connection *connection, const unsigned char *data,
                                 size_t length, bool binary, void *user)
{
    struct stream_pair *pair = user;

    (void)connection;
    relay_test_fill_payload(pair->expected, FRAME_BYTES, pair->received, pair->seed);
    if (!binary || length != FRAME_BYTES || memcmp(data, pair->expected, length)) {
        if (pair->mismatches++ < 3)
            fprintf(stderr, "pair %u: message %u differs (%zu bytes)\n", pair->seed, pair->received,
                    length);
    }
    pair->received++;
}

/* Queue frames while each sender's socket takes them (at most two queued),
 * then turn the client loop once. */
static void stream_step(struct stream_pair *pairs)
{
    size_t i;

    for (i = 0; i < PAIRS; i++) {
        struct stream_pair *pair = &pairs[i];

        while (pair->sending && ws_client_queued_bytes(pair->sender) < QUEUE_LIMIT) {
            relay_test_fill_payload(pair->frame, FRAME_BYTES, pair->sent, pair->seed);
            assert_int_equal(ws_client_send(pair->sender, pair->frame, FRAME_BYTES, true), 0);
            pair->sent++;
        }
    }
    ws_client_service(relay_test_client, 10);
}

/* Stream for milliseconds; frames received per pair meanwhile into counts. */
static void stream_measure(struct stream_pair *pairs, int milliseconds, uint32_t *counts)
{
    int64_t deadline = ws_client_now_ms() + milliseconds;
    uint32_t before[PAIRS];
    size_t i;

    for (i = 0; i < PAIRS; i++)
        before[i] = pairs[i].received;
    while (ws_client_now_ms() < deadline)
        stream_step(pairs);
    for (i = 0; i < PAIRS; i++)
        counts[i] = pairs[i].received - before[i];
}

static void check_rss(struct cluster *cluster, const long *baseline)
{
    size_t node;

    for (node = 0; node < 2; node++) {
        long rss = harness_relay_rss_kib(&cluster->nodes[node].relay);

        if (rss > baseline[node] + RSS_ALLOWANCE_KIB)
            fail_msg("%s RSS %ld KiB exceeds its baseline %ld KiB + %d KiB",
                     cluster->nodes[node].node_id, rss, baseline[node], RSS_ALLOWANCE_KIB);
    }
}

static bool all_received(void *argument)
{
    struct stream_pair *pairs = argument;
    size_t i;

    for (i = 0; i < PAIRS; i++)
        if (pairs[i].received < pairs[i].sent)
            return false;
    return true;
}

static void test_isolation_paused_receiver_stalls_only_its_partner(void **state)
{
    struct cluster *cluster = *state;
    struct stream_pair *pairs = cluster_alloc(cluster, PAIRS * sizeof(*pairs));
    uint32_t baseline[PAIRS], stalled[PAIRS];
    uint64_t others_baseline = 0, others_stalled = 0, last_sent, stalled_at;
    long rss_baseline[2];
    int64_t deadline, last_progress;
    size_t i;

    cluster->options.stream_window = "256KiB";
    cluster_start_redis(cluster);
    cluster_start_nodes(cluster, 2);
    cluster_wait_all_ready(cluster, CLUSTER_READY_TIMEOUT_MS);
    for (i = 0; i < PAIRS; i++) {
        struct stream_pair *pair = &pairs[i];

        assert_int_equal(moneysocket_json_new_rid(pair->rid), 0);
        pair->seed = (uint32_t)(100 + i);
        cluster_pair(cluster, pair->rid, 0, &pair->owner_side, 1, &pair->remote_side);
        pair->sender =
            i < PAIRS - FROM_B_PAIRS ? pair->owner_side.connection : pair->remote_side.connection;
        pair->receiver =
            i < PAIRS - FROM_B_PAIRS ? pair->remote_side.connection : pair->owner_side.connection;
        ws_client_set_message_handler(pair->receiver, stream_check_message, pair);
        pair->sending = true;
    }
    /* one connection B -> A carries every stream */
    assert_true(cluster_metric_sum(cluster, 0, "relayd_streams_open", NULL) == PAIRS);

    stream_measure(pairs, 500, baseline); /* warm up */
    stream_measure(pairs, MEASURE_MS, baseline);
    /* steady state: every queue and buffer of the flowing pairs is in use */
    rss_baseline[0] = harness_relay_rss_kib(&cluster->nodes[0].relay);
    rss_baseline[1] = harness_relay_rss_kib(&cluster->nodes[1].relay);
    assert_true(rss_baseline[0] > 0 && rss_baseline[1] > 0);
    for (i = 1; i < PAIRS; i++)
        others_baseline += baseline[i];
    fprintf(stderr, "  baseline: %.1f MiB/s over %d pairs\n",
            (double)(others_baseline + baseline[0]) * FRAME_BYTES / (1 << 20) * 1000 / MEASURE_MS,
            PAIRS);
    for (i = 0; i < PAIRS; i++)
        if (baseline[i] == 0)
            fail_msg("pair %zu moved no data in the baseline", i);

    /* pair 0's receiver (on B) stops reading: its sender must stall */
    ws_client_pause_reading(pairs[0].receiver);
    deadline = ws_client_now_ms() + 30000;
    last_sent = ws_client_bytes_sent(pairs[0].sender);
    last_progress = ws_client_now_ms();
    while (ws_client_now_ms() - last_progress < STALL_MS) {
        uint64_t sent;

        if (ws_client_now_ms() > deadline)
            fail_msg("the paused pair's sender never stalled: the relays read without bound");
        stream_step(pairs);
        check_rss(cluster, rss_baseline);
        sent = ws_client_bytes_sent(pairs[0].sender);
        if (sent != last_sent) {
            last_sent = sent;
            last_progress = ws_client_now_ms();
        }
    }
    stalled_at = last_sent;
    fprintf(stderr, "  paused pair's sender stalled after %.1f MiB\n",
            (double)stalled_at / (1 << 20));

    stream_measure(pairs, MEASURE_MS, stalled);
    check_rss(cluster, rss_baseline);
    /* still stalled (a kernel buffer may have taken a little more) */
    if (ws_client_bytes_sent(pairs[0].sender) > stalled_at + (1 << 20))
        fail_msg("the paused pair's sender moved on: %llu bytes after stalling at %llu",
                 (unsigned long long)ws_client_bytes_sent(pairs[0].sender),
                 (unsigned long long)stalled_at);
    for (i = 1; i < PAIRS; i++) {
        others_stalled += stalled[i];
        fprintf(stderr, "  pair %zu: %u frames in the baseline, %u with pair 0 stalled\n", i,
                baseline[i], stalled[i]);
        /* none of them starved (a far lower bar than the sum's) */
        if (stalled[i] * 10 < baseline[i])
            fail_msg("pair %zu fell to %u frames from %u while pair 0 stalled", i, stalled[i],
                     baseline[i]);
    }
    fprintf(stderr, "  other pairs: %llu frames in the baseline, %llu with pair 0 stalled\n",
            (unsigned long long)others_baseline, (unsigned long long)others_stalled);
    if (others_stalled * 2 < others_baseline)
        fail_msg("the other pairs kept only %llu of %llu frames: head-of-line blocking",
                 (unsigned long long)others_stalled, (unsigned long long)others_baseline);

    /* resume: every frame of every pair arrives, in order, intact */
    for (i = 0; i < PAIRS; i++)
        pairs[i].sending = false;
    ws_client_resume_reading(pairs[0].receiver);
    assert_true(ws_client_wait_until(relay_test_client, all_received, pairs, 60000));
    for (i = 0; i < PAIRS; i++) {
        assert_int_equal(pairs[i].received, pairs[i].sent);
        assert_int_equal(pairs[i].mismatches, 0);
    }
    relay_test_expect_silence(pairs[0].receiver, 100);
    for (i = 0; i < PAIRS; i++) {
        ws_client_set_message_handler(pairs[i].receiver, NULL, NULL);
        relay_test_exchange(&pairs[i].owner_side, &pairs[i].remote_side, "after the stall");
    }
    cluster_finish(cluster);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_isolation_paused_receiver_stalls_only_its_partner,
                                        cluster_test_setup, cluster_test_teardown),
    };

    return cmocka_run_group_tests_name("cluster_isolation", tests, cluster_group_setup,
                                       cluster_group_teardown);
}

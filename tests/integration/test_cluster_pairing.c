/*
 * test_cluster_pairing.c - matchmaking across nodes (shared/docs/cluster.md,
 * "Flows"; protocol-v0.md, "Matchmaking behaviour"): the two peers of a
 * rendezvous id on different nodes meet as if they were on one relay.
 *
 * Cross-node pairs in both directions (the owner is where the first peer
 * arrived), NOT_READY then NOTIFY_RENDEZVOUS on both sides and each
 * notification before any partner frame; frames both ways verbatim (binary,
 * text, fragmented, empty, larger than a stream window, cleartext JSON);
 * END when either side leaves; same-node pairs in cluster mode (no link);
 * a third peer at a third node refused while the pair carries on; and
 * 1 000 concurrent pairs over three nodes, most of them cross-node.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cluster_harness.h"

#define NOTIFY_TIMEOUT_MS 10000
#define MANY_PAIRS 1000
#define MANY_TIMEOUT_MS 60000

static const char rid_one[] = "c1a55e5c1a55e5c1a55e5c1a55e5c1a55e5c1a55e5c1a55e5c1a55e5c1a55e5c";
static const char rid_two[] = "0dd0dd0dd0dd0dd0dd0dd0dd0dd0dd0dd0dd0dd0dd0dd0dd0dd0dd0dd0dd0dd0";

/* Redis and count nodes, all ready (registered, claims asserted). */
static void pairing_start(struct cluster *cluster, size_t count)
{
    cluster_start_redis(cluster);
    cluster_start_nodes(cluster, count);
    cluster_wait_all_ready(cluster, CLUSTER_READY_TIMEOUT_MS);
}

/* Peer 1 on A then peer 2 on B, and the reverse: both pair through the
 * link, both directions of each carry frames. */
static void test_pairing_cross_node_both_directions(void **state)
{
    struct cluster *cluster = *state;
    struct relay_test_peer first, second, third, fourth;

    pairing_start(cluster, 2);
    cluster_pair(cluster, rid_one, 0, &first, 1, &second);
    relay_test_exchange(&first, &second, "owner A");
    cluster_pair(cluster, rid_two, 1, &third, 0, &fourth);
    relay_test_exchange(&third, &fourth, "owner B");
    relay_test_exchange(&first, &second, "owner A again");
    /* the pairs went through links: each arriving node counted one */
    assert_true(
        cluster_metric_sum(cluster, 1, "relayd_remote_rendezvous_total", "result=\"paired\"") >= 1);
    assert_true(
        cluster_metric_sum(cluster, 0, "relayd_remote_rendezvous_total", "result=\"paired\"") >= 1);
    assert_true(cluster_metric_total(cluster, "relayd_streams_open", NULL) >= 2);
    cluster_finish(cluster);
}

/* Each peer sees its NOTIFY_RENDEZVOUS before any frame of its partner,
 * even when the partner sends the moment it is notified (clients drop
 * frames that come first). */
static void test_pairing_notify_before_partner_frames(void **state)
{
    struct cluster *cluster = *state;
    struct ws_client_connection *first, *second;
    char first_uuid[37], second_uuid[37];

    pairing_start(cluster, 2);
    first = cluster_connect(cluster, 0);
    relay_test_send_request(first, rid_one, first_uuid);
    cluster_expect_notification(first, "NOTIFY_RENDEZVOUS_NOT_READY", rid_one, first_uuid,
                                NOTIFY_TIMEOUT_MS);
    second = cluster_connect(cluster, 1);
    relay_test_send_request(second, rid_one, second_uuid);
    /* the owner's peer is notified first; it sends at once */
    cluster_expect_notification(first, "NOTIFY_RENDEZVOUS", rid_one, first_uuid, NOTIFY_TIMEOUT_MS);
    assert_int_equal(ws_client_send(first, "owner side, at once", 19, true), 0);
    cluster_expect_rendezvous(second, rid_one, second_uuid, NOTIFY_TIMEOUT_MS);
    relay_test_expect_message(second, true, "owner side, at once", 19);
    assert_int_equal(ws_client_send(second, "remote side, at once", 20, true), 0);
    relay_test_expect_message(first, true, "remote side, at once", 20);
    cluster_finish(cluster);
}

static void send_and_expect(struct ws_client_connection *from, struct ws_client_connection *to,
                            const void *data, size_t length, bool binary)
{
    assert_int_equal(ws_client_send(from, data, length, binary), 0);
    relay_test_expect_message(to, binary, data, length);
}

/* Frames cross the link verbatim and in order: every size class of the
 * WebSocket length field, more than one stream window (credit splits it),
 * the largest message allowed, text as text, fragmented messages whole,
 * cleartext JSON and bytes that are almost JSON. */
static void pairing_check_frames_verbatim(void **state)
{
    static const size_t sizes[] = {0, 1, 125, 126, 65535, 65536, 300000, 1048576};
    static const char request_json[] =
        "{\"timestamp\": 1.5, \"protocol\": \"Moneysocket\", \"protocol_version\": \"0.0.0\", "
        "\"message_class\": \"REQUEST\", \"request_uuid\": "
        "\"0811a20b-3a4a-400e-8e1b-180d43727d7b\", \"request_name\": \"REQUEST_RENDEZVOUS\", "
        "\"rendezvous_id\": \"c1a55e5c1a55e5c1a55e5c1a55e5c1a55e5c1a55e5c1a55e5c1a55e5c1a55e5c\"}";
    struct cluster *cluster = *state;
    struct relay_test_peer first, second;
    unsigned char *payload = cluster_alloc(cluster, 1048576);
    struct ws_client_piece pieces[3];
    char text[64];
    size_t i;
    uint32_t sequence;

    pairing_start(cluster, 2);
    cluster_pair(cluster, rid_one, 0, &first, 1, &second);
    for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        relay_test_fill_payload(payload, sizes[i], (uint32_t)i, 31);
        send_and_expect(first.connection, second.connection, payload, sizes[i], true);
        relay_test_fill_payload(payload, sizes[i], (uint32_t)i, 32);
        send_and_expect(second.connection, first.connection, payload, sizes[i], true);
    }
    send_and_expect(first.connection, second.connection, "h\xc3\xa9llo, text", 12, false);
    send_and_expect(second.connection, first.connection, "", 0, false);
    send_and_expect(first.connection, second.connection, request_json, strlen(request_json), true);
    send_and_expect(second.connection, first.connection, "{\"almost\": json", 15, true);

    /* fragmented: the partner gets the joined message, type of the first */
    relay_test_fill_payload(payload, 3000, 7, 33);
    pieces[0] = (struct ws_client_piece){payload, 1000};
    pieces[1] = (struct ws_client_piece){payload + 1000, 0};
    pieces[2] = (struct ws_client_piece){payload + 1000, 2000};
    assert_int_equal(ws_client_send_fragments(first.connection, pieces, 3, true), 0);
    relay_test_expect_message(second.connection, true, payload, 3000);
    pieces[0] = (struct ws_client_piece){"frag", 4};
    pieces[1] = (struct ws_client_piece){"mented ", 7};
    pieces[2] = (struct ws_client_piece){"text", 4};
    assert_int_equal(ws_client_send_fragments(second.connection, pieces, 3, false), 0);
    relay_test_expect_message(first.connection, false, "fragmented text", 15);

    /* a burst in both directions at once arrives in order */
    for (sequence = 0; sequence < 200; sequence++) {
        int length = snprintf(text, sizeof(text), "burst %u", sequence);

        assert_int_equal(ws_client_send(first.connection, text, (size_t)length, true), 0);
        assert_int_equal(ws_client_send(second.connection, text, (size_t)length, sequence % 2), 0);
    }
    for (sequence = 0; sequence < 200; sequence++) {
        int length = snprintf(text, sizeof(text), "burst %u", sequence);

        relay_test_expect_message(second.connection, true, text, (size_t)length);
        relay_test_expect_message(first.connection, sequence % 2, text, (size_t)length);
    }
    relay_test_expect_silence(first.connection, 100);
    relay_test_expect_silence(second.connection, 0);
    cluster_finish(cluster);
}

static void test_pairing_frames_verbatim(void **state)
{
    pairing_check_frames_verbatim(state);
}

/* The same over wss:// links with mutual TLS: the dialing node's TLS runs
 * on OpenSSL memory buffers (cluster/link_tls.c), so megabyte messages in
 * both directions cross many TLS records and partial writes. */
static void test_pairing_frames_verbatim_over_tls(void **state)
{
    struct cluster *cluster = *state;
    cluster->options.tls = true;
    pairing_check_frames_verbatim(state);
}

/* Either side leaving ends the other with END and close 1000 across the
 * link (close frame or dropped TCP); the id is free again afterwards. */
static void test_pairing_end_when_either_leaves(void **state)
{
    struct cluster *cluster = *state;
    struct relay_test_peer first, second, third, fourth, fifth, sixth;

    pairing_start(cluster, 2);
    /* the owner's peer leaves with a close frame */
    cluster_pair(cluster, rid_one, 0, &first, 1, &second);
    assert_true(ws_client_close(first.connection, 1000, "bye", RELAY_TEST_TIMEOUT_MS));
    cluster_expect_end(second.connection, rid_one, NOTIFY_TIMEOUT_MS);
    /* the remote peer drops its TCP connection */
    cluster_pair(cluster, rid_two, 0, &third, 1, &fourth);
    cluster_drop(cluster, fourth.connection);
    cluster_expect_end(third.connection, rid_two, NOTIFY_TIMEOUT_MS);
    /* both ids were freed: they pair again, owned by the other node now */
    cluster_pair(cluster, rid_one, 1, &fifth, 0, &sixth);
    relay_test_exchange(&fifth, &sixth, "rid one again");
    cluster_pair(cluster, rid_two, 1, &third, 0, &fourth);
    relay_test_exchange(&third, &fourth, "rid two again");
    cluster_finish(cluster);
}

/* Both peers on one node: matched locally (no stream), yet the claim in
 * Redis makes a third peer on another node get END. */
static void test_pairing_same_node_in_cluster_mode(void **state)
{
    struct cluster *cluster = *state;
    struct relay_test_peer first, second;
    struct ws_client_connection *third;
    char third_uuid[37];

    pairing_start(cluster, 2);
    cluster_pair(cluster, rid_one, 0, &first, 0, &second);
    relay_test_exchange(&first, &second, "same node");
    assert_true(cluster_metric_sum(cluster, 0, "relayd_rendezvous_total", "result=\"paired\"") ==
                1);
    assert_true(cluster_metric_total(cluster, "relayd_remote_rendezvous_total", NULL) == 0);
    assert_true(cluster_metric_total(cluster, "relayd_streams_open", NULL) == 0);
    assert_true(cluster_metric_sum(cluster, 0, "relayd_claims_held", NULL) >= 1);

    third = cluster_connect(cluster, 1);
    relay_test_send_request(third, rid_one, third_uuid);
    cluster_expect_refused(third, rid_one, third_uuid, NOTIFY_TIMEOUT_MS);
    relay_test_expect_silence(first.connection, 200);
    relay_test_expect_silence(second.connection, 0);
    relay_test_exchange(&first, &second, "after the third peer");
    cluster_finish(cluster);
}

/* A third peer for a cross-node pair arrives at a third node (configured
 * by command-line flags): END and close 1000, the pair is not disturbed. */
static void test_pairing_third_peer_at_third_node(void **state)
{
    struct cluster_node_settings flags = {.use_flags = true};
    struct cluster *cluster = *state;
    struct relay_test_peer first, second;
    struct ws_client_connection *third;
    char third_uuid[37];

    cluster_start_redis(cluster);
    cluster_start_nodes(cluster, 2);
    cluster_start_node(cluster, &flags);
    cluster_wait_all_ready(cluster, CLUSTER_READY_TIMEOUT_MS);
    cluster_pair(cluster, rid_one, 0, &first, 1, &second);
    third = cluster_connect(cluster, 2);
    relay_test_send_request(third, rid_one, third_uuid);
    cluster_expect_refused(third, rid_one, third_uuid, NOTIFY_TIMEOUT_MS);
    relay_test_expect_silence(first.connection, 200);
    relay_test_expect_silence(second.connection, 0);
    relay_test_exchange(&first, &second, "after the third peer");
    assert_true(
        cluster_metric_sum(cluster, 2, "relayd_remote_rendezvous_total", "result=\"busy\"") >= 1);
    /* the flags node pairs across nodes too, both as owner and as dialer */
    cluster_pair(cluster, rid_two, 2, &first, 0, &second);
    relay_test_exchange(&first, &second, "flags node owns");
    cluster_finish(cluster);
}

struct many_pair {
    struct relay_test_peer first, second;
    char rid[65];
};

/* Messages of pair i: two sizes per direction, contents from the pair's
 * number, so every byte and the order are checked. */
static size_t many_length(size_t pair, int which)
{
    return which == 0 ? 16 + pair % 64 : 2000 + (pair * 37) % 6000;
}

static bool all_closed(void *argument)
{
    struct many_pair *pairs = argument;
    size_t i;

    for (i = 0; i < MANY_PAIRS; i++) {
        enum ws_client_state state = ws_client_state(pairs[i].first.connection);

        if (state != WS_CLIENT_DONE && state != WS_CLIENT_FAILED)
            return false;
    }
    return true;
}

static void test_pairing_1000_pairs_three_nodes(void **state)
{
    struct cluster_node_settings flags = {.use_flags = true};
    struct cluster *cluster = *state;
    struct many_pair *pairs = cluster_alloc(cluster, MANY_PAIRS * sizeof(*pairs));
    struct ws_client_connection **connections =
        cluster_alloc(cluster, MANY_PAIRS * sizeof(*connections));
    const char **urls = cluster_alloc(cluster, MANY_PAIRS * sizeof(*urls));
    unsigned char *payload = cluster_alloc(cluster, 8192);
    int64_t started = ws_client_now_ms();
    size_t i, cross = 0, pass;

    if (harness_raise_file_limit() < 2 * MANY_PAIRS + 512)
        fail_msg("RLIMIT_NOFILE %ld is too low", harness_raise_file_limit());
    cluster_start_redis(cluster);
    cluster_start_nodes(cluster, 2);
    cluster_start_node(cluster, &flags);
    cluster_wait_all_ready(cluster, CLUSTER_READY_TIMEOUT_MS);

    /* first peers round robin; one pair in five on one node, the rest
     * split over the two other nodes */
    for (pass = 0; pass < 2; pass++) {
        for (i = 0; i < MANY_PAIRS; i++) {
            size_t first_node = i % 3;
            size_t second_node = i % 5 == 0 ? first_node : (first_node + 1 + (i / 3) % 2) % 3;

            if (pass == 0) {
                assert_int_equal(moneysocket_json_new_rid(pairs[i].rid), 0);
                cross += first_node != second_node;
            }
            urls[i] = cluster->nodes[pass == 0 ? first_node : second_node].relay.url;
        }
        cluster_connect_many(cluster, urls, connections, MANY_PAIRS, MANY_TIMEOUT_MS);
        for (i = 0; i < MANY_PAIRS; i++) {
            struct relay_test_peer *peer = pass == 0 ? &pairs[i].first : &pairs[i].second;

            peer->connection = connections[i];
            relay_test_send_request(peer->connection, pairs[i].rid, peer->request_uuid);
        }
        if (pass == 0)
            for (i = 0; i < MANY_PAIRS; i++)
                cluster_expect_notification(pairs[i].first.connection,
                                            "NOTIFY_RENDEZVOUS_NOT_READY", pairs[i].rid,
                                            pairs[i].first.request_uuid, NOTIFY_TIMEOUT_MS);
    }
    for (i = 0; i < MANY_PAIRS; i++) {
        cluster_expect_rendezvous(pairs[i].second.connection, pairs[i].rid,
                                  pairs[i].second.request_uuid, NOTIFY_TIMEOUT_MS);
        cluster_expect_notification(pairs[i].first.connection, "NOTIFY_RENDEZVOUS", pairs[i].rid,
                                    pairs[i].first.request_uuid, NOTIFY_TIMEOUT_MS);
    }
    fprintf(stderr, "  %d pairs (%zu cross-node) formed after %lld ms\n", MANY_PAIRS, cross,
            (long long)(ws_client_now_ms() - started));
    assert_true(cluster_metric_total(cluster, "relayd_remote_rendezvous_total",
                                     "result=\"paired\"") >= (double)cross);

    for (i = 0; i < MANY_PAIRS; i++) {
        int which;

        for (which = 0; which < 2; which++) {
            relay_test_fill_payload(payload, many_length(i, which), (uint32_t)(2 * i + which), 41);
            assert_int_equal(
                ws_client_send(pairs[i].first.connection, payload, many_length(i, which), true), 0);
            relay_test_fill_payload(payload, many_length(i, which), (uint32_t)(2 * i + which), 42);
            assert_int_equal(
                ws_client_send(pairs[i].second.connection, payload, many_length(i, which), true),
                0);
        }
    }
    for (i = 0; i < MANY_PAIRS; i++) {
        int which;

        for (which = 0; which < 2; which++) {
            relay_test_fill_payload(payload, many_length(i, which), (uint32_t)(2 * i + which), 41);
            relay_test_expect_message(pairs[i].second.connection, true, payload,
                                      many_length(i, which));
            relay_test_fill_payload(payload, many_length(i, which), (uint32_t)(2 * i + which), 42);
            relay_test_expect_message(pairs[i].first.connection, true, payload,
                                      many_length(i, which));
        }
    }
    fprintf(stderr, "  frames checked after %lld ms\n", (long long)(ws_client_now_ms() - started));

    for (i = 0; i < MANY_PAIRS; i++)
        ws_client_close(pairs[i].first.connection, 1000, "done", 0);
    for (i = 0; i < MANY_PAIRS; i++)
        cluster_expect_end(pairs[i].second.connection, pairs[i].rid, NOTIFY_TIMEOUT_MS);
    assert_true(ws_client_wait_until(relay_test_client, all_closed, pairs, MANY_TIMEOUT_MS));
    /* every claim and every stream is released */
    {
        int64_t deadline = ws_client_now_ms() + NOTIFY_TIMEOUT_MS;

        while (ws_client_now_ms() < deadline &&
               (cluster_metric_total(cluster, "relayd_claims_held", NULL) > 0 ||
                cluster_metric_total(cluster, "relayd_streams_open", NULL) > 0))
            cluster_service(100);
    }
    assert_true(cluster_metric_total(cluster, "relayd_claims_held", NULL) == 0);
    assert_true(cluster_metric_total(cluster, "relayd_streams_open", NULL) == 0);
    fprintf(stderr, "  all closed after %lld ms\n", (long long)(ws_client_now_ms() - started));
    cluster_finish(cluster);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pairing_cross_node_both_directions, cluster_test_setup,
                                        cluster_test_teardown),
        cmocka_unit_test_setup_teardown(test_pairing_notify_before_partner_frames,
                                        cluster_test_setup, cluster_test_teardown),
        cmocka_unit_test_setup_teardown(test_pairing_frames_verbatim_over_tls, cluster_test_setup,
                                        cluster_test_teardown),
        cmocka_unit_test_setup_teardown(test_pairing_frames_verbatim, cluster_test_setup,
                                        cluster_test_teardown),
        cmocka_unit_test_setup_teardown(test_pairing_end_when_either_leaves, cluster_test_setup,
                                        cluster_test_teardown),
        cmocka_unit_test_setup_teardown(test_pairing_same_node_in_cluster_mode, cluster_test_setup,
                                        cluster_test_teardown),
        cmocka_unit_test_setup_teardown(test_pairing_third_peer_at_third_node, cluster_test_setup,
                                        cluster_test_teardown),
        cmocka_unit_test_setup_teardown(test_pairing_1000_pairs_three_nodes, cluster_test_setup,
                                        cluster_test_teardown),
    };

    return cmocka_run_group_tests_name("cluster_pairing", tests, cluster_group_setup,
                                       cluster_group_teardown);
}

/*
 * test_cluster_haproxy.c - the cluster behind a TCP load balancer, as
 * deployed (conf/haproxy.cfg): HAProxy round robin over three nodes with
 * /readyz health checks.
 *
 * Round robin puts the two peers of a pair on different nodes nearly
 * always, so the pairs must meet through the links: 200 pairs connect
 * through HAProxy, all pair, frames cross both ways intact, the nodes'
 * metrics show remote rendezvous, and every partner gets END when one side
 * leaves. Then a node dies: HAProxy takes it out (its /readyz no longer
 * answers) and new pairs through HAProxy still all pair.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cluster_harness.h"

#define PAIRS 200
/* odd: round robin over two nodes then puts the two peers of every pair on
 * different nodes (first peers take connections 0..30, second 31..61) */
#define LATE_PAIRS 31
#define NOTIFY_TIMEOUT_MS 10000
#define CONNECT_TIMEOUT_MS 30000

struct balanced_pair {
    struct relay_test_peer first, second;
    char rid[65];
};

/* Connect count pairs through HAProxy: every first peer (NOT_READY each),
 * then every second peer; all pair. */
static void pair_through_haproxy(struct cluster *cluster, struct balanced_pair *pairs, size_t count)
{
    struct ws_client_connection **connections =
        cluster_alloc(cluster, count * sizeof(*connections));
    const char **urls = cluster_alloc(cluster, count * sizeof(*urls));
    size_t i, pass;

    for (i = 0; i < count; i++) {
        urls[i] = cluster->haproxy_url;
        assert_int_equal(moneysocket_json_new_rid(pairs[i].rid), 0);
    }
    for (pass = 0; pass < 2; pass++) {
        cluster_connect_many(cluster, urls, connections, count, CONNECT_TIMEOUT_MS);
        for (i = 0; i < count; i++) {
            struct relay_test_peer *peer = pass == 0 ? &pairs[i].first : &pairs[i].second;

            peer->connection = connections[i];
            relay_test_send_request(peer->connection, pairs[i].rid, peer->request_uuid);
        }
        if (pass == 0)
            for (i = 0; i < count; i++)
                cluster_expect_notification(pairs[i].first.connection,
                                            "NOTIFY_RENDEZVOUS_NOT_READY", pairs[i].rid,
                                            pairs[i].first.request_uuid, NOTIFY_TIMEOUT_MS);
    }
    for (i = 0; i < count; i++) {
        cluster_expect_rendezvous(pairs[i].second.connection, pairs[i].rid,
                                  pairs[i].second.request_uuid, NOTIFY_TIMEOUT_MS);
        cluster_expect_notification(pairs[i].first.connection, "NOTIFY_RENDEZVOUS", pairs[i].rid,
                                    pairs[i].first.request_uuid, NOTIFY_TIMEOUT_MS);
    }
}

/* One frame each way per pair, contents from the pair's number. */
static void exchange_all(struct cluster *cluster, struct balanced_pair *pairs, size_t count)
{
    unsigned char *payload = cluster_alloc(cluster, 4096);
    size_t i;

    for (i = 0; i < count; i++) {
        size_t length = 100 + (i * 53) % 3000;

        relay_test_fill_payload(payload, length, (uint32_t)i, 51);
        assert_int_equal(ws_client_send(pairs[i].first.connection, payload, length, true), 0);
        relay_test_fill_payload(payload, length, (uint32_t)i, 52);
        assert_int_equal(ws_client_send(pairs[i].second.connection, payload, length, true), 0);
    }
    for (i = 0; i < count; i++) {
        size_t length = 100 + (i * 53) % 3000;

        relay_test_fill_payload(payload, length, (uint32_t)i, 51);
        relay_test_expect_message(pairs[i].second.connection, true, payload, length);
        relay_test_fill_payload(payload, length, (uint32_t)i, 52);
        relay_test_expect_message(pairs[i].first.connection, true, payload, length);
    }
}

static void test_haproxy_pairs_meet_across_nodes(void **state)
{
    struct cluster *cluster = *state;
    struct balanced_pair *pairs = cluster_alloc(cluster, PAIRS * sizeof(*pairs));
    double remote, connections[3];
    size_t i;

    cluster_start_redis(cluster);
    cluster_start_nodes(cluster, 3);
    cluster_wait_all_ready(cluster, CLUSTER_READY_TIMEOUT_MS);
    cluster_start_haproxy(cluster);
    pair_through_haproxy(cluster, pairs, PAIRS);
    exchange_all(cluster, pairs, PAIRS);

    for (i = 0; i < 3; i++) {
        connections[i] = cluster_metric_sum(cluster, i, "relayd_connections", NULL);
        fprintf(stderr, "  %s: %.0f client connections\n", cluster->nodes[i].node_id,
                connections[i]);
        /* round robin: every node got its share */
        assert_true(connections[i] >= 2 * PAIRS / 3 / 2);
    }
    remote = cluster_metric_total(cluster, "relayd_remote_rendezvous_total", "result=\"paired\"");
    fprintf(stderr, "  %.0f of %d pairs met through a link\n", remote, PAIRS);
    assert_true(remote > 0);
    /* consecutive connections go to different nodes: most pairs are split */
    assert_true(remote >= PAIRS / 2);

    for (i = 0; i < PAIRS; i++)
        ws_client_close(pairs[i].first.connection, 1000, "done", 0);
    for (i = 0; i < PAIRS; i++)
        cluster_expect_end(pairs[i].second.connection, pairs[i].rid, NOTIFY_TIMEOUT_MS);
    cluster_finish(cluster);
}

static void test_haproxy_routes_around_a_dead_node(void **state)
{
    struct cluster *cluster = *state;
    struct balanced_pair *pairs = cluster_alloc(cluster, LATE_PAIRS * sizeof(*pairs));
    int64_t deadline;
    double remote_before;

    cluster_start_redis(cluster);
    cluster_start_nodes(cluster, 3);
    cluster_wait_all_ready(cluster, CLUSTER_READY_TIMEOUT_MS);
    cluster_start_haproxy(cluster);
    remote_before =
        cluster_metric_total(cluster, "relayd_remote_rendezvous_total", "result=\"paired\"");

    cluster_kill_node(cluster, 2);
    deadline = ws_client_now_ms() + 10000;
    while (cluster_haproxy_backends_up(cluster) != 2 && ws_client_now_ms() < deadline)
        cluster_service(100);
    assert_int_equal(cluster_haproxy_backends_up(cluster), 2);
    /* the dead node's key expires; the others still match across nodes */
    pair_through_haproxy(cluster, pairs, LATE_PAIRS);
    exchange_all(cluster, pairs, LATE_PAIRS);
    assert_true(cluster_metric_total(cluster, "relayd_remote_rendezvous_total",
                                     "result=\"paired\"") > remote_before);
    cluster_finish(cluster);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_haproxy_pairs_meet_across_nodes, cluster_test_setup,
                                        cluster_test_teardown),
        cmocka_unit_test_setup_teardown(test_haproxy_routes_around_a_dead_node, cluster_test_setup,
                                        cluster_test_teardown),
    };

    return cmocka_run_group_tests_name("cluster_haproxy", tests, cluster_group_setup,
                                       cluster_group_teardown);
}

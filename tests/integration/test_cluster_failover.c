/*
 * test_cluster_failover.c - the failure rules of shared/docs/cluster.md,
 * "Failure rules", each with processes really killed, frozen or cut.
 *
 * Owner killed (SIGKILL) with live pairs: the peers tunnelled to it get END
 * within seconds, pairs elsewhere are untouched, and the same ids pair
 * again on the surviving nodes. Link cut between two live nodes: the
 * sessions on it end, and the link is dialled again for the next pair.
 * Redis killed: live pairs forward, local pairs still match, /readyz says
 * 503; Redis back empty on the same port: the nodes re-assert their ids
 * (a peer pending since before the outage meets its partner at another
 * node; a local pair made during the outage refuses a third peer) and are
 * ready again. Redis frozen (SIGSTOP): not ready while frozen, ready after.
 * Sentinel: the master killed, the cluster follows the promoted replica.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cluster_harness.h"

#define NOTIFY_TIMEOUT_MS 10000
#define END_BOUND_MS 10000      /* a dead owner's peers are ended within this */
#define NOT_READY_BOUND_MS 8000 /* command timeout 1 s, heartbeat 1 s, margin */
#define RECOVERY_BOUND_MS 20000
#define SENTINEL_BOUND_MS 30000
#define OWNER_PAIRS 4

static const char rid_live[] = "11111111aaaaaaaa11111111aaaaaaaa11111111aaaaaaaa11111111aaaaaaaa";
static const char rid_pending[] =
    "22222222bbbbbbbb22222222bbbbbbbb22222222bbbbbbbb22222222bbbbbbbb";
static const char rid_local[] = "33333333cccccccc33333333cccccccc33333333cccccccc33333333cccccccc";
static const char rid_after[] = "44444444dddddddd44444444dddddddd44444444dddddddd44444444dddddddd";

static void test_failover_owner_killed(void **state)
{
    struct cluster *cluster = *state;
    struct relay_test_peer owner_side[OWNER_PAIRS], remote_side[OWNER_PAIRS];
    struct relay_test_peer untouched_first, untouched_second, again_first, again_second;
    char rids[OWNER_PAIRS][65];
    int64_t killed, elapsed;
    size_t i;

    cluster_start_redis(cluster);
    cluster_start_nodes(cluster, 3);
    cluster_wait_all_ready(cluster, CLUSTER_READY_TIMEOUT_MS);
    for (i = 0; i < OWNER_PAIRS; i++) {
        assert_int_equal(moneysocket_json_new_rid(rids[i]), 0);
        cluster_pair(cluster, rids[i], 0, &owner_side[i], 1, &remote_side[i]);
    }
    /* owned by B, tunnelled from C: nothing to do with A */
    cluster_pair(cluster, rid_live, 1, &untouched_first, 2, &untouched_second);

    cluster_kill_node(cluster, 0);
    killed = ws_client_now_ms();
    for (i = 0; i < OWNER_PAIRS; i++)
        cluster_expect_end(remote_side[i].connection, rids[i],
                           (int)(killed + END_BOUND_MS - ws_client_now_ms()));
    elapsed = ws_client_now_ms() - killed;
    fprintf(stderr, "  peers tunnelled to the dead owner ended within %lld ms\n",
            (long long)elapsed);
    relay_test_exchange(&untouched_first, &untouched_second, "pair on B and C");

    /* the clients reconnect with the same ids, now at B and C */
    for (i = 0; i < OWNER_PAIRS; i++) {
        cluster_pair(cluster, rids[i], 1, &again_first, 2, &again_second);
        relay_test_exchange(&again_first, &again_second, "paired again");
    }
    fprintf(stderr, "  the dead owner's ids paired again %lld ms after the kill\n",
            (long long)(ws_client_now_ms() - killed));
    cluster_finish(cluster);
}

/* Stale claim: the directory names a live owner that has no such pending
 * id (here written straight into Redis, as a claim left behind would be).
 * The arriving node asks the owner, is told NOT_FOUND, takes the claim
 * over and its peer waits there; a partner arriving at a third node then
 * pairs with it through the new owner. */
static void test_failover_stale_claim(void **state)
{
    struct cluster *cluster = *state;
    struct relay_test_peer first, second;
    char key[80], value[128];
    const char *hget[] = {"HGET", "msr:node:node1", "epoch", NULL};
    const char *get[] = {"GET", key, NULL};

    cluster_start_redis(cluster);
    cluster_start_nodes(cluster, 3);
    cluster_wait_all_ready(cluster, CLUSTER_READY_TIMEOUT_MS);
    char *epoch = cluster_redis_command(cluster->redis.port, NULL, 1000, hget);
    assert_non_null(epoch);
    assert_true(epoch[0] != '\0');
    snprintf(key, sizeof(key), "msr:rdv:%s", rid_after);
    snprintf(value, sizeof(value), "node1:%s", epoch);
    free(epoch);
    const char *set[] = {"SET", key, value, NULL};
    free(cluster_redis_command(cluster->redis.port, NULL, 1000, set));

    cluster_pair(cluster, rid_after, 1, &first, 2, &second);
    relay_test_exchange(&first, &second, "after a stale claim");
    assert_true(cluster_metric_total(cluster, "relayd_remote_rendezvous_total",
                                     "result=\"not_found\"") >= 1);
    char *owner = cluster_redis_command(cluster->redis.port, NULL, 1000, get);
    assert_non_null(owner);
    /* The stale claim is gone. Which arriving node took it over depends on
     * which asked first (both were told NOT_FOUND by node1); either way
     * the pair formed through the new owner. */
    bool taken_over = strncmp(owner, "node2:", 6) == 0 || strncmp(owner, "node3:", 6) == 0;
    free(owner);
    assert_true(taken_over);
    cluster_finish(cluster);
}

static void test_failover_link_cut(void **state)
{
    struct cluster *cluster = *state;
    struct cluster_node_settings proxied = {0};
    struct relay_test_peer first, second, third, fourth;
    char advertise[64];
    size_t proxy;

    /* A advertises a proxy in front of its cluster port: B's link to A
     * runs through it, and cutting it drops the link, not the nodes */
    proxied.cluster_port = harness_free_port("127.0.0.1");
    proxy = cluster_start_proxy(cluster, proxied.cluster_port);
    snprintf(advertise, sizeof(advertise), "ws://127.0.0.1:%d", cluster->proxies[proxy].port);
    proxied.advertise = advertise;
    cluster_start_redis(cluster);
    cluster_start_node(cluster, &proxied);
    cluster_start_node(cluster, NULL);
    cluster_wait_all_ready(cluster, CLUSTER_READY_TIMEOUT_MS);
    cluster_pair(cluster, rid_live, 0, &first, 1, &second);
    relay_test_exchange(&first, &second, "through the proxy");

    cluster_proxy_cut(cluster, proxy);
    cluster_expect_end(first.connection, rid_live, END_BOUND_MS);
    cluster_expect_end(second.connection, rid_live, END_BOUND_MS);
    /* the link is dialled again; the id is free again */
    cluster_pair(cluster, rid_after, 0, &third, 1, &fourth);
    relay_test_exchange(&third, &fourth, "after the cut");
    cluster_pair(cluster, rid_live, 0, &first, 1, &second);
    relay_test_exchange(&first, &second, "same id after the cut");
    cluster_finish(cluster);
}

static void test_failover_redis_restarted_empty(void **state)
{
    struct cluster *cluster = *state;
    struct relay_test_peer live_first, live_second, local_first, local_second, late;
    struct ws_client_connection *pending, *third;
    char pending_uuid[37], third_uuid[37];
    int64_t stopped, elapsed;

    cluster_start_redis(cluster);
    cluster_start_nodes(cluster, 2);
    cluster_wait_all_ready(cluster, CLUSTER_READY_TIMEOUT_MS);
    cluster_pair(cluster, rid_live, 0, &live_first, 1, &live_second);
    pending = cluster_connect(cluster, 0);
    relay_test_send_request(pending, rid_pending, pending_uuid);
    cluster_expect_notification(pending, "NOTIFY_RENDEZVOUS_NOT_READY", rid_pending, pending_uuid,
                                NOTIFY_TIMEOUT_MS);
    assert_true(cluster_metric_sum(cluster, 0, "relayd_redis_up", NULL) == 1);

    cluster_stop_redis(cluster, false);
    stopped = ws_client_now_ms();
    cluster_wait_readyz(cluster, 0, 503, NOT_READY_BOUND_MS);
    cluster_wait_readyz(cluster, 1, 503, NOT_READY_BOUND_MS);
    fprintf(stderr, "  not ready %lld ms after Redis died\n",
            (long long)(ws_client_now_ms() - stopped));
    assert_true(cluster_metric_sum(cluster, 0, "relayd_redis_up", NULL) == 0);
    /* the node keeps serving: the live pair, and new local pairs */
    relay_test_exchange(&live_first, &live_second, "during the outage");
    cluster_pair(cluster, rid_local, 0, &local_first, 0, &local_second);
    relay_test_exchange(&local_first, &local_second, "local pair during the outage");

    cluster_restart_redis(cluster);
    elapsed = cluster_wait_readyz(cluster, 0, 200, RECOVERY_BOUND_MS);
    cluster_wait_readyz(cluster, 1, 200, RECOVERY_BOUND_MS);
    fprintf(stderr, "  ready %lld ms after Redis came back empty\n", (long long)elapsed);
    assert_true(cluster_metric_sum(cluster, 0, "relayd_redis_up", NULL) == 1);
    assert_true(cluster_metric_sum(cluster, 0, "relayd_redis_reconnects_total", NULL) >= 1);
    assert_true(cluster_metric_sum(cluster, 0, "relayd_redis_errors_total", NULL) >= 1);

    /* A re-asserted the pending id: a partner at B meets it */
    late.connection = cluster_connect(cluster, 1);
    relay_test_send_request(late.connection, rid_pending, late.request_uuid);
    cluster_expect_rendezvous(late.connection, rid_pending, late.request_uuid, NOTIFY_TIMEOUT_MS);
    cluster_expect_notification(pending, "NOTIFY_RENDEZVOUS", rid_pending, pending_uuid,
                                NOTIFY_TIMEOUT_MS);
    assert_int_equal(ws_client_send(pending, "kept through the outage", 23, true), 0);
    relay_test_expect_message(late.connection, true, "kept through the outage", 23);
    /* ... and the local pair's id: a third peer at B is refused */
    third = cluster_connect(cluster, 1);
    relay_test_send_request(third, rid_local, third_uuid);
    cluster_expect_refused(third, rid_local, third_uuid, NOTIFY_TIMEOUT_MS);
    relay_test_exchange(&local_first, &local_second, "local pair after the outage");
    relay_test_exchange(&live_first, &live_second, "after the outage");
    cluster_finish(cluster);
}

static void test_failover_redis_frozen(void **state)
{
    struct cluster *cluster = *state;
    struct relay_test_peer live_first, live_second, first, second;

    cluster_start_redis(cluster);
    cluster_start_nodes(cluster, 2);
    cluster_wait_all_ready(cluster, CLUSTER_READY_TIMEOUT_MS);
    cluster_pair(cluster, rid_live, 0, &live_first, 1, &live_second);

    /* a hung Redis accepts connections and never answers: command timeouts */
    cluster_suspend(cluster->redis.pid);
    cluster_wait_readyz(cluster, 0, 503, NOT_READY_BOUND_MS);
    cluster_wait_readyz(cluster, 1, 503, NOT_READY_BOUND_MS);
    relay_test_exchange(&live_first, &live_second, "while Redis is frozen");
    cluster_pair(cluster, rid_local, 1, &first, 1, &second);
    cluster_resume(cluster->redis.pid);
    cluster_wait_all_ready(cluster, RECOVERY_BOUND_MS);
    cluster_pair(cluster, rid_after, 1, &first, 0, &second);
    relay_test_exchange(&first, &second, "after Redis thawed");
    relay_test_exchange(&live_first, &live_second, "after Redis thawed");
    cluster_finish(cluster);
}

static void test_failover_sentinel_master_killed(void **state)
{
    struct cluster *cluster = *state;
    struct relay_test_peer first, second, late, third, fourth;
    struct ws_client_connection *pending;
    char pending_uuid[37];
    int64_t killed, failover;

    cluster->options.sentinel = true;
    cluster_start_sentinels(cluster);
    cluster_start_nodes(cluster, 2);
    cluster_wait_all_ready(cluster, CLUSTER_READY_TIMEOUT_MS);
    cluster_pair(cluster, rid_live, 0, &first, 1, &second);
    pending = cluster_connect(cluster, 0);
    relay_test_send_request(pending, rid_pending, pending_uuid);
    cluster_expect_notification(pending, "NOTIFY_RENDEZVOUS_NOT_READY", rid_pending, pending_uuid,
                                NOTIFY_TIMEOUT_MS);
    cluster_service(500); /* the claim reaches the replica */

    killed = ws_client_now_ms();
    failover = cluster_fail_over(cluster, SENTINEL_BOUND_MS);
    fprintf(stderr, "  sentinels promoted the replica after %lld ms\n", (long long)failover);
    relay_test_exchange(&first, &second, "during the failover");
    cluster_wait_all_ready(cluster, (int)(killed + SENTINEL_BOUND_MS - ws_client_now_ms()));
    fprintf(stderr, "  nodes ready %lld ms after the master died\n",
            (long long)(ws_client_now_ms() - killed));

    /* the cluster matches across nodes on the new master */
    cluster_pair(cluster, rid_after, 1, &third, 0, &fourth);
    relay_test_exchange(&third, &fourth, "after the failover");
    late.connection = cluster_connect(cluster, 1);
    relay_test_send_request(late.connection, rid_pending, late.request_uuid);
    cluster_expect_rendezvous(late.connection, rid_pending, late.request_uuid, NOTIFY_TIMEOUT_MS);
    cluster_expect_notification(pending, "NOTIFY_RENDEZVOUS", rid_pending, pending_uuid,
                                NOTIFY_TIMEOUT_MS);
    if (ws_client_now_ms() - killed > SENTINEL_BOUND_MS)
        fail_msg("cross-node matching resumed only %lld ms after the master died",
                 (long long)(ws_client_now_ms() - killed));
    relay_test_exchange(&first, &second, "after the failover");
    cluster_finish(cluster);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_failover_owner_killed, cluster_test_setup,
                                        cluster_test_teardown),
        cmocka_unit_test_setup_teardown(test_failover_stale_claim, cluster_test_setup,
                                        cluster_test_teardown),
        cmocka_unit_test_setup_teardown(test_failover_link_cut, cluster_test_setup,
                                        cluster_test_teardown),
        cmocka_unit_test_setup_teardown(test_failover_redis_restarted_empty, cluster_test_setup,
                                        cluster_test_teardown),
        cmocka_unit_test_setup_teardown(test_failover_redis_frozen, cluster_test_setup,
                                        cluster_test_teardown),
        cmocka_unit_test_setup_teardown(test_failover_sentinel_master_killed, cluster_test_setup,
                                        cluster_test_teardown),
    };

    return cmocka_run_group_tests_name("cluster_failover", tests, cluster_group_setup,
                                       cluster_group_teardown);
}

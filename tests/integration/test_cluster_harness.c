/*
 * test_cluster_harness.c - the cluster harness itself, on what exists
 * without cluster mode: Redis restarted empty on its port, a Sentinel
 * failover, HAProxy round robin and /readyz health checks over standalone
 * nodes, the PKI (certificates that chain, and ones that do not), raw TLS
 * links with and without a client certificate, the capturing proxy, metric
 * sums and stopping/continuing a node.
 *
 * When one of these fails, the cluster tests' failures say nothing about
 * the cluster: fix the harness (or the machine: redis-server,
 * redis-sentinel, haproxy, openssl) first.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cluster_harness.h"

static const char rid_harness[] =
    "4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a";

static char *redis_call(struct cluster *cluster, int port, const char *const *argv)
{
    char *reply = cluster_redis_command(port, cluster->options.redis_password, 2000, argv);

    assert_non_null(reply);
    return reply;
}

/* The failover test restarts Redis on the same port and expects it empty:
 * nothing survives (no RDB, no AOF), and the password still applies. */
static void test_harness_redis_restart_empty(void **state)
{
    struct cluster *cluster = *state;
    const char *set[] = {"SET", "msr:probe", "1", NULL};
    const char *get[] = {"GET", "msr:probe", NULL};
    const char *ping[] = {"PING", NULL};
    char *reply;
    int port;

    cluster->options.redis_password = "harness-password";
    cluster_start_redis(cluster);
    port = cluster->redis.port;
    reply = redis_call(cluster, port, set);
    assert_string_equal(reply, "OK");
    free(reply);
    reply = cluster_redis_command(port, NULL, 2000, ping);
    assert_non_null(reply);
    assert_true(!strncmp(reply, "-NOAUTH", 7)); /* the password is enforced */
    free(reply);

    cluster_stop_redis(cluster, false);
    assert_null(cluster_redis_command(port, NULL, 500, ping));
    cluster_restart_redis(cluster);
    assert_int_equal(cluster->redis.port, port);
    reply = redis_call(cluster, port, get);
    assert_string_equal(reply, "(nil)");
    free(reply);
    cluster_finish(cluster);
}

/* Master, replica, three sentinels: killing the master promotes the
 * replica, which then takes writes. */
static void test_harness_sentinel_failover(void **state)
{
    struct cluster *cluster = *state;
    const char *set[] = {"SET", "msr:after-failover", "1", NULL};
    const char *role[] = {"ROLE", NULL};
    int64_t elapsed;
    char *reply;

    cluster_start_sentinels(cluster);
    assert_int_equal(cluster_sentinel_master_port(cluster), cluster->redis.port);
    elapsed = cluster_fail_over(cluster, 30000);
    fprintf(stderr, "  sentinels failed over in %lld ms\n", (long long)elapsed);
    assert_int_equal(cluster_sentinel_master_port(cluster), cluster->replica.port);
    assert_int_equal(cluster->redis.pid, 0);
    reply = redis_call(cluster, cluster->replica.port, role);
    assert_true(!strncmp(reply, "master", 6));
    free(reply);
    reply = redis_call(cluster, cluster->replica.port, set);
    assert_string_equal(reply, "OK");
    free(reply);
    cluster_finish(cluster);
}

/* HAProxy spreads connections round robin over three standalone nodes and
 * drops a node whose /readyz stops answering. */
static void test_harness_haproxy_round_robin(void **state)
{
    struct cluster_node_settings standalone = {.standalone = true};
    struct cluster *cluster = *state;
    size_t i;

    for (i = 0; i < 3; i++)
        cluster_start_node(cluster, &standalone);
    cluster_wait_all_ready(cluster, CLUSTER_READY_TIMEOUT_MS);
    cluster_start_haproxy(cluster);
    assert_int_equal(cluster_haproxy_backends_up(cluster), 3);
    for (i = 0; i < 6; i++)
        cluster_connect_url(cluster, cluster->haproxy_url);
    cluster_service(200);
    for (i = 0; i < 3; i++) {
        double connections = cluster_metric_sum(cluster, i, "relayd_connections", NULL);

        fprintf(stderr, "  %s: %.0f connections\n", cluster->nodes[i].node_id, connections);
        assert_true(connections == 2);
    }
    /* a frozen node answers no health check: HAProxy takes it out */
    cluster_suspend(cluster->nodes[2].relay.pid);
    {
        int64_t deadline = ws_client_now_ms() + 10000;

        while (cluster_haproxy_backends_up(cluster) != 2 && ws_client_now_ms() < deadline)
            cluster_service(100);
    }
    assert_int_equal(cluster_haproxy_backends_up(cluster), 2);
    cluster_resume(cluster->nodes[2].relay.pid);
    cluster_finish(cluster);
}

static void verify_certificate(const char *ca, const char *certificate, bool expect_ok)
{
    char *argv[] = {"openssl", "verify", "-CAfile", (char *)ca, (char *)certificate, NULL};
    char *output = NULL;
    int status = harness_run_command(argv, 10000, &output);

    if ((status == 0) != expect_ok)
        fail_msg("openssl verify %s: status %d, expected %s: %s", certificate, status,
                 expect_ok ? "success" : "failure", output ? output : "");
    free(output);
}

/* The PKI: node certificates chain to the cluster CA and name the node;
 * the foreign one does not chain. Raw TLS links present them to a TLS
 * server that demands a client certificate (openssl s_server). */
static void test_harness_pki_and_raw_tls(void **state)
{
    struct cluster *cluster = *state;
    char cert[320], key[320], foreign_cert[320], foreign_key[320], port_text[16];
    struct cluster_raw_link link = {.fd = -1};
    char *output = NULL;
    int port, result = -1;
    int64_t deadline;

    cluster_make_pki(cluster);
    cluster_make_certificate(cluster, "node1", false, cert, key, sizeof(cert));
    cluster_make_certificate(cluster, "node1", true, foreign_cert, foreign_key,
                             sizeof(foreign_cert));
    verify_certificate(cluster->ca_cert, cert, true);
    verify_certificate(cluster->ca_cert, foreign_cert, false);
    verify_certificate(cluster->foreign_ca_cert, foreign_cert, true);
    {
        char *argv[] = {"openssl", "x509",           "-in", cert, "-noout", "-subject",
                        "-ext",    "subjectAltName", NULL};

        assert_int_equal(harness_run_command(argv, 10000, &output), 0);
        assert_non_null(strstr(output, "CN = node1"));
        assert_non_null(strstr(output, "DNS:node1"));
        free(output);
    }

    port = harness_free_port("127.0.0.1");
    snprintf(port_text, sizeof(port_text), "%d", port);
    {
        char *argv[] = {"openssl",
                        "s_server",
                        "-accept",
                        port_text,
                        "-cert",
                        cert,
                        "-key",
                        key,
                        "-CAfile",
                        cluster->ca_cert,
                        "-Verify",
                        "1",
                        "-verify_return_error",
                        "-www",
                        "-quiet",
                        NULL};

        cluster_spawn_helper(cluster, "s_server", argv);
    }
    /* with the cluster's certificate: TLS works and HTTP answers */
    deadline = ws_client_now_ms() + 10000;
    while (ws_client_now_ms() < deadline) {
        struct cluster_raw_tls tls = {cluster->ca_cert, cert, key};

        result = cluster_raw_link_open(&link, port, CLUSTER_LINK_SUBPROTOCOL, &tls, 2000);
        if (link.http_status > 0)
            break;
        cluster_raw_link_close(&link);
        cluster_service(100); /* s_server still starting */
    }
    fprintf(stderr, "  with a cluster certificate: http %d (%s)\n", link.http_status, link.error);
    assert_true(link.http_status > 0);
    assert_int_equal(result, -2); /* s_server speaks no WebSocket */
    cluster_raw_link_close(&link);
    /* without a certificate, or the foreign one: no HTTP answer at all */
    {
        struct cluster_raw_tls none = {cluster->ca_cert, NULL, NULL};
        struct cluster_raw_tls foreign = {cluster->ca_cert, foreign_cert, foreign_key};

        cluster_raw_link_open(&link, port, CLUSTER_LINK_SUBPROTOCOL, &none, 3000);
        fprintf(stderr, "  without a certificate: %s\n", link.error);
        assert_int_equal(link.http_status, 0);
        cluster_raw_link_close(&link);
        cluster_raw_link_open(&link, port, CLUSTER_LINK_SUBPROTOCOL, &foreign, 3000);
        fprintf(stderr, "  with a foreign certificate: %s\n", link.error);
        assert_int_equal(link.http_status, 0);
        cluster_raw_link_close(&link);
    }
    cluster_finish(cluster);
}

/* The capturing proxy forwards both ways and records what its first client
 * sent (here: a Redis command). */
static void test_harness_capturing_proxy(void **state)
{
    struct cluster *cluster = *state;
    const char *ping[] = {"PING", NULL};
    unsigned char *capture;
    size_t proxy, length;
    char *reply;

    cluster_start_redis(cluster);
    proxy = cluster_start_proxy(cluster, cluster->redis.port);
    reply = cluster_redis_command(cluster->proxies[proxy].port, NULL, 2000, ping);
    assert_non_null(reply);
    assert_string_equal(reply, "PONG");
    free(reply);
    capture = cluster_proxy_capture(cluster, proxy, &length);
    assert_int_equal(length, 14);
    assert_memory_equal(capture, "*1\r\n$4\r\nPING\r\n", 14);
    /* the second client is forwarded but not recorded */
    reply = cluster_redis_command(cluster->proxies[proxy].port, NULL, 2000, ping);
    assert_non_null(reply);
    free(reply);
    capture = cluster_proxy_capture(cluster, proxy, &length);
    assert_int_equal(length, 14);
    cluster_finish(cluster);
}

/* Several nodes in one test: pairing, metric sums over labels and nodes,
 * SIGSTOP/SIGCONT, a killed node that teardown must not count as a crash. */
static void test_harness_nodes_and_metrics(void **state)
{
    struct cluster_node_settings standalone = {.standalone = true};
    struct cluster *cluster = *state;
    struct relay_test_peer first, second;

    cluster_start_node(cluster, &standalone);
    cluster_start_node(cluster, &standalone);
    cluster_pair(cluster, rid_harness, 0, &first, 0, &second);
    relay_test_exchange(&first, &second, "harness");
    assert_true(cluster_metric_sum(cluster, 0, "relayd_rendezvous_total", "result=\"paired\"") ==
                1);
    assert_true(cluster_metric_sum(cluster, 0, "relayd_connections", "state=\"paired\"") == 2);
    assert_true(cluster_metric_sum(cluster, 0, "relayd_no_such_metric", NULL) == -1);
    assert_true(cluster_metric_total(cluster, "relayd_rendezvous_total", "result=\"paired\"") == 1);
    assert_true(cluster_wait_metric_at_least(cluster, 0, "relayd_frames_forwarded_total", NULL, 2,
                                             2000) >= 2);

    cluster_suspend(cluster->nodes[1].relay.pid);
    assert_int_equal(cluster_readyz(cluster, 1), -1); /* frozen: no answer */
    cluster_resume(cluster->nodes[1].relay.pid);
    cluster_wait_readyz(cluster, 1, 200, 5000);
    cluster_kill_node(cluster, 1);
    assert_int_equal(cluster_readyz(cluster, 1), -1);
    cluster_restart_node(cluster, 1);
    cluster_wait_readyz(cluster, 1, 200, 5000);
    relay_test_exchange(&first, &second, "after restart");
    cluster_finish(cluster);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_harness_redis_restart_empty, cluster_test_setup,
                                        cluster_test_teardown),
        cmocka_unit_test_setup_teardown(test_harness_sentinel_failover, cluster_test_setup,
                                        cluster_test_teardown),
        cmocka_unit_test_setup_teardown(test_harness_haproxy_round_robin, cluster_test_setup,
                                        cluster_test_teardown),
        cmocka_unit_test_setup_teardown(test_harness_pki_and_raw_tls, cluster_test_setup,
                                        cluster_test_teardown),
        cmocka_unit_test_setup_teardown(test_harness_capturing_proxy, cluster_test_setup,
                                        cluster_test_teardown),
        cmocka_unit_test_setup_teardown(test_harness_nodes_and_metrics, cluster_test_setup,
                                        cluster_test_teardown),
    };

    return cmocka_run_group_tests_name("cluster_harness", tests, cluster_group_setup,
                                       cluster_group_teardown);
}

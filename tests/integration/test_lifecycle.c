/*
 * test_lifecycle.c - relayd as an operator sees it: graceful shutdown on
 * SIGTERM with live clients, the admin endpoints and their metrics, the
 * client port's info page, and the command line (--check-config, --version,
 * --help).
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "relay_test.h"

static const char rid_one[] = "aaaa0000bbbb1111cccc2222dddd3333eeee4444ffff55556666777788889999";
static const char rid_two[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
static const char rid_three[] = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";

#define SHUTDOWN_TIMEOUT_SECONDS 3

/* After SIGTERM, /readyz answers 503 or the admin port is already gone;
 * it must not keep claiming readiness. Returns the status seen, or -1. */
static int poll_readyz_after_sigterm(struct relay_test *test)
{
    int64_t deadline = ws_client_now_ms() + 1000;
    int status = 200;

    while (status == 200 && ws_client_now_ms() < deadline) {
        char *body = NULL;

        status = harness_admin_get(&test->relay, "/readyz", &body);
        free(body);
    }
    return status;
}

/* END then close 1001 for paired clients; a pending client gets close 1001,
 * after an END if the relay sends one. */
static void expect_shutdown_close(struct ws_client_connection *connection, const char *rid,
                                  bool paired)
{
    struct ws_client_message message;

    if (paired) {
        relay_test_expect_notification(connection, "NOTIFY_RENDEZVOUS_END", rid, NULL);
        relay_test_expect_close(connection, 1001, true);
        return;
    }
    if (ws_client_receive(connection, &message, RELAY_TEST_TIMEOUT_MS) == WS_CLIENT_BINARY) {
        struct moneysocket_message parsed;
        int parsed_ok = moneysocket_json_parse(message.data, message.length, &parsed);

        ws_client_message_release(&message);
        assert_int_equal(parsed_ok, 0);
        assert_string_equal(parsed.notification_name.text, "NOTIFY_RENDEZVOUS_END");
        relay_test_expect_close(connection, 1001, true);
        return;
    }
    assert_int_equal(message.result, WS_CLIENT_CLOSED);
    assert_int_equal(message.close_code, 1001);
}

static void test_sigterm_with_live_pairs(void **state)
{
    struct relay_test *test = *state;
    struct harness_config config = {.shutdown_timeout = SHUTDOWN_TIMEOUT_SECONDS};
    struct relay_test_peer first, second, third, fourth;
    struct ws_client_connection *pending;
    int64_t signalled;
    char uuid[37];
    int readyz, status;

    relay_test_start(test, &config);
    relay_test_pair(test, rid_one, &first, &second);
    relay_test_pair(test, rid_two, &third, &fourth);
    pending = relay_test_connect(test);
    relay_test_send_request(pending, rid_three, uuid);
    relay_test_expect_notification(pending, "NOTIFY_RENDEZVOUS_NOT_READY", rid_three, uuid);

    signalled = ws_client_now_ms();
    assert_int_equal(kill(test->relay.pid, SIGTERM), 0);
    readyz = poll_readyz_after_sigterm(test);
    fprintf(stderr, "  /readyz after SIGTERM: %d\n", readyz);
    assert_true(readyz == 503 || readyz == -1);

    expect_shutdown_close(first.connection, rid_one, true);
    expect_shutdown_close(second.connection, rid_one, true);
    expect_shutdown_close(third.connection, rid_two, true);
    expect_shutdown_close(fourth.connection, rid_two, true);
    expect_shutdown_close(pending, rid_three, false);
    status = harness_wait_exit(&test->relay, (SHUTDOWN_TIMEOUT_SECONDS + 2) * 1000 -
                                                 (int)(ws_client_now_ms() - signalled));
    fprintf(stderr, "  relayd exited %d after %lld ms\n", status,
            (long long)(ws_client_now_ms() - signalled));
    if (status != 0)
        harness_print_relay_log(&test->relay, 4000);
    assert_int_equal(status, 0);
}

static const char *const expected_series[] = {
    "relayd_connections{state=\"pending\"}",
    "relayd_connections{state=\"paired\"}",
    "relayd_connections{state=\"awaiting_request\"}",
    "relayd_rendezvous_total{result=\"pending\"}",
    "relayd_rendezvous_total{result=\"paired\"}",
    "relayd_rendezvous_total{result=\"refused\"}",
    "relayd_frames_forwarded_total",
    "relayd_bytes_forwarded_total",
    "relayd_frames_dropped_pending_total",
    "relayd_connections_refused_total{reason=\"max_connections\"}",
    "relayd_connections_refused_total{reason=\"shutting_down\"}",
    "relayd_connections_closed_total{reason=\"peer_closed\"}",
    "relayd_connections_closed_total{reason=\"partner_gone\"}",
    "relayd_connections_closed_total{reason=\"third_peer\"}",
    "relayd_connections_closed_total{reason=\"bad_request\"}",
    "relayd_connections_closed_total{reason=\"text_first_frame\"}",
    "relayd_connections_closed_total{reason=\"second_request\"}",
    "relayd_connections_closed_total{reason=\"message_too_large\"}",
    "relayd_connections_closed_total{reason=\"pending_timeout\"}",
    "relayd_connections_closed_total{reason=\"ping_timeout\"}",
    "relayd_connections_closed_total{reason=\"shutdown\"}",
    "relayd_connections_closed_total{reason=\"max_connections\"}",
    "relayd_connections_closed_total{reason=\"internal_error\"}",
    "relayd_send_queue_bytes",
    "relayd_limits_hit_total{limit=\"max_message_bytes\"}",
    "relayd_limits_hit_total{limit=\"max_connections\"}",
    "relayd_limits_hit_total{limit=\"pending_timeout\"}",
    "relayd_limits_hit_total{limit=\"send_queue_high_water\"}",
};

/* Status of GET path on the admin port (the body is dropped). */
static int admin_status(struct relay_test *test, const char *path)
{
    char *body = NULL;
    int status = harness_admin_get(&test->relay, path, &body);

    free(body);
    return status;
}

static void test_admin_endpoints(void **state)
{
    struct relay_test *test = *state;
    struct relay_test_peer first, second;
    char *body = NULL;
    double value;
    size_t i;

    assert_int_equal(admin_status(test, "/healthz"), 200);
    assert_int_equal(admin_status(test, "/readyz"), 200);
    assert_int_equal(admin_status(test, "/no-such-page"), 404);
    assert_int_equal(harness_admin_get(&test->relay, "/metrics", &body), 200);
    relay_test_keep(test, body);
    for (i = 0; i < sizeof(expected_series) / sizeof(expected_series[0]); i++) {
        if (harness_metric_value(body, expected_series[i], &value) < 0)
            fail_msg("/metrics lacks %s", expected_series[i]);
        assert_true(value == 0); /* nothing happened yet */
    }

    relay_test_pair(test, rid_one, &first, &second);
    assert_int_equal(ws_client_send(first.connection, "0123456789", 10, true), 0);
    assert_int_equal(ws_client_send(second.connection, "01234567890123456789", 20, true), 0);
    assert_int_equal(ws_client_send(first.connection, "abc", 3, false), 0);
    relay_test_expect_message(second.connection, true, "0123456789", 10);
    relay_test_expect_message(first.connection, true, "01234567890123456789", 20);
    relay_test_expect_message(second.connection, false, "abc", 3);
    assert_true(relay_test_metric(test, "relayd_rendezvous_total{result=\"pending\"}") == 1);
    assert_true(relay_test_metric(test, "relayd_rendezvous_total{result=\"paired\"}") == 1);
    assert_true(relay_test_metric(test, "relayd_connections{state=\"paired\"}") == 2);
    assert_true(relay_test_metric(test, "relayd_connections{state=\"pending\"}") == 0);
    assert_true(relay_test_metric(test, "relayd_frames_forwarded_total") == 3);
    assert_true(relay_test_metric(test, "relayd_bytes_forwarded_total") == 33);
    assert_true(relay_test_wait_metric(test, "relayd_send_queue_bytes", 0, RELAY_TEST_TIMEOUT_MS) ==
                0);

    assert_true(ws_client_close(first.connection, 1000, "bye", RELAY_TEST_TIMEOUT_MS));
    relay_test_expect_end(second.connection, rid_one);
    assert_true(relay_test_wait_metric(test, "relayd_connections{state=\"paired\"}", 0,
                                       RELAY_TEST_TIMEOUT_MS) == 0);
    assert_true(
        relay_test_metric(test, "relayd_connections_closed_total{reason=\"peer_closed\"}") == 1);
    assert_true(
        relay_test_metric(test, "relayd_connections_closed_total{reason=\"partner_gone\"}") == 1);
}

static void test_client_port_info_page(void **state)
{
    struct relay_test *test = *state;
    char *body = NULL;
    int status = 0;

    assert_int_equal(
        harness_http_get("127.0.0.1", test->relay.port, "/", RELAY_TEST_TIMEOUT_MS, &status, &body),
        0);
    relay_test_keep(test, body);
    assert_int_equal(status, 200);
    assert_non_null(strstr(body, "relayd"));
    assert_non_null(strstr(body, RELAYD_VERSION));
}

static char *write_file(struct relay_test *test, const char *name, const char *text)
{
    char *path = relay_test_alloc(test, 512);
    FILE *file;

    snprintf(path, 512, "%s/%s", test->relay.directory, name);
    file = fopen(path, "w");
    assert_non_null(file);
    fputs(text, file);
    fclose(file);
    return path;
}

/* Run relayd with argv[1..]; the output is freed at teardown. */
static char *run_relayd(struct relay_test *test, char **argv, int *status)
{
    char *output = NULL;

    argv[0] = (char *)harness_relayd_path();
    *status = harness_run_command(argv, 10000, &output);
    assert_non_null(output);
    return relay_test_keep(test, output);
}

static void test_check_config(void **state)
{
    struct relay_test *test = *state;
    char *argv[] = {NULL, "--check-config", "--config", NULL, NULL};
    char *valid, *invalid, *output, expected[600];
    int status;

    assert_int_equal(harness_make_directory(test->relay.directory, sizeof(test->relay.directory)),
                     0);
    valid = write_file(test, "valid.yaml",
                       "listen:\n  port: 23456\nlimits:\n  max_message_bytes: 70000\n");
    invalid = write_file(test, "invalid.yaml", "listen:\n  port: 23456\n  no_such_key: 1\n");

    argv[3] = valid;
    output = run_relayd(test, argv, &status);
    assert_int_equal(status, 0);
    assert_non_null(strstr(output, "listen:"));
    assert_non_null(strstr(output, "23456"));
    assert_non_null(strstr(output, "70000"));

    argv[3] = invalid;
    output = run_relayd(test, argv, &status);
    assert_int_equal(status, 1);
    snprintf(expected, sizeof(expected), "%s:3:", invalid);
    if (!strstr(output, expected))
        fail_msg("error for %s does not name line 3 (\"%s\"): %s", invalid, expected, output);
}

static void test_version_and_help(void **state)
{
    struct relay_test *test = *state;
    char *version[] = {NULL, "--version", NULL};
    char *help[] = {NULL, "--help", NULL};
    char *output;
    int status;

    output = run_relayd(test, version, &status);
    assert_int_equal(status, 0);
    assert_non_null(strstr(output, RELAYD_VERSION));
    output = run_relayd(test, help, &status);
    assert_int_equal(status, 0);
    assert_non_null(strstr(output, "--config"));
    assert_non_null(strstr(output, "--check-config"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sigterm_with_live_pairs, relay_test_setup_no_relay,
                                        relay_test_teardown),
        cmocka_unit_test_setup_teardown(test_admin_endpoints, relay_test_setup,
                                        relay_test_teardown),
        cmocka_unit_test_setup_teardown(test_client_port_info_page, relay_test_setup,
                                        relay_test_teardown),
        cmocka_unit_test_setup_teardown(test_check_config, relay_test_setup_no_relay,
                                        relay_test_teardown),
        cmocka_unit_test_setup_teardown(test_version_and_help, relay_test_setup_no_relay,
                                        relay_test_teardown),
    };

    return cmocka_run_group_tests_name("lifecycle", tests, relay_test_group_setup,
                                       relay_test_group_teardown);
}

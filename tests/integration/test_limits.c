/*
 * test_limits.c - the relay's configurable limits: max_message_bytes (close
 * 1009 before and after pairing, the partner then gets END),
 * max_connections (close 1013, counted; by default what the descriptor
 * limit allows) and pending_timeout (a waiting peer is closed within a
 * bound and counted).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "raw_ws.h"
#include "relay_test.h"

static const char rid_limit[] = "1111111111111111111111111111111111111111111111111111111111111111";
static const char rid_other[] = "2222222222222222222222222222222222222222222222222222222222222222";

#define SMALL_LIMIT 65536

static void start_with_small_messages(struct relay_test *test)
{
    struct harness_config config = {.max_message_bytes = SMALL_LIMIT};

    relay_test_start(test, &config);
}

static void test_oversize_first_frame(void **state)
{
    struct relay_test *test = *state;
    struct ws_client_connection *connection;
    unsigned char *data = relay_test_alloc(test, SMALL_LIMIT + 1);

    start_with_small_messages(test);
    connection = relay_test_connect(test);
    assert_int_equal(ws_client_send(connection, data, SMALL_LIMIT + 1, true), 0);
    relay_test_expect_close(connection, 1009, true);
    assert_true(relay_test_wait_metric(
                    test, "relayd_connections_closed_total{reason=\"message_too_large\"}", 1,
                    RELAY_TEST_TIMEOUT_MS) == 1);
    assert_true(relay_test_metric(test, "relayd_limits_hit_total{limit=\"max_message_bytes\"}") ==
                1);
}

/* The partner of a peer closed for an oversize message: the relay forwards
 * fragments as they arrive (protocol-v0.md allows it), so the partner may
 * first see the part that was under the limit, cut short; it must be an
 * exact prefix of what was sent. Then END and close 1000. */
static void expect_prefix_then_end(struct ws_client_connection *connection, const char *rid,
                                   const unsigned char *sent, size_t sent_length)
{
    struct moneysocket_message parsed;
    struct ws_client_message message;
    size_t length;
    bool is_notification, is_prefix;

    if (ws_client_receive(connection, &message, RELAY_TEST_TIMEOUT_MS) != WS_CLIENT_BINARY)
        fail_msg("expected END after the partner's oversize message, got result %d (close %d)",
                 (int)message.result, message.close_code);
    length = message.length;
    is_notification = moneysocket_json_parse(message.data, length, &parsed) == 0;
    is_prefix = length < sent_length && !memcmp(message.data, sent, length);
    ws_client_message_release(&message);
    if (!is_notification) {
        if (!is_prefix)
            fail_msg("partner got %zu bytes that are not a prefix of the oversize message", length);
        fprintf(stderr, "  partner first got the message cut at %zu of %zu bytes\n", length,
                sent_length);
        relay_test_expect_end(connection, rid);
        return;
    }
    assert_string_equal(parsed.notification_name.text, "NOTIFY_RENDEZVOUS_END");
    assert_int_equal(parsed.request_reference_uuid.type, MONEYSOCKET_JSON_NULL);
    assert_string_equal(parsed.rendezvous_id.text, rid);
    relay_test_expect_close(connection, 1000, false);
}

/* Between peers: the limit holds for whole and for fragmented messages; the
 * sender is closed 1009 and its partner gets END. */
static void test_oversize_between_peers(void **state)
{
    struct relay_test *test = *state;
    struct relay_test_peer first, second, third, fourth;
    size_t fragmented_length = 3 * 30000;
    unsigned char *data = relay_test_alloc(test, fragmented_length);
    struct ws_client_piece pieces[3] = {
        {data, 30000}, {data + 30000, 30000}, {data + 60000, 30000}};

    relay_test_fill_payload(data, fragmented_length, 1, 1);
    start_with_small_messages(test);
    relay_test_pair(test, rid_limit, &first, &second);
    assert_int_equal(ws_client_send(first.connection, data, SMALL_LIMIT, true), 0);
    relay_test_expect_message(second.connection, true, data, SMALL_LIMIT);
    assert_int_equal(ws_client_send(first.connection, data, SMALL_LIMIT + 1, true), 0);
    relay_test_expect_close(first.connection, 1009, true);
    expect_prefix_then_end(second.connection, rid_limit, data, SMALL_LIMIT + 1);

    /* 90000 bytes in three frames of 30000: each frame is under the limit */
    relay_test_pair(test, rid_other, &third, &fourth);
    assert_int_equal(ws_client_send_fragments(fourth.connection, pieces, 3, true), 0);
    relay_test_expect_close(fourth.connection, 1009, true);
    expect_prefix_then_end(third.connection, rid_other, data, fragmented_length);
    assert_true(relay_test_wait_metric(
                    test, "relayd_connections_closed_total{reason=\"message_too_large\"}", 2,
                    RELAY_TEST_TIMEOUT_MS) == 2);
}

/* With max_connections 4, a fifth connection is closed with 1013 (read raw:
 * the lws client reports 1013 as 1002) and counted; after one leaves, a new
 * connection is served again. */
static void test_max_connections(void **state)
{
    struct relay_test *test = *state;
    struct harness_config config = {.max_connections = 4};
    struct ws_client_connection *connections[4], *late;
    char reason[128] = "", uuid[37];
    int status = 0, code = 0, fd, i;

    relay_test_start(test, &config);
    for (i = 0; i < 4; i++)
        connections[i] = relay_test_connect(test);
    fd = raw_ws_open("127.0.0.1", test->relay.port, RELAY_TEST_TIMEOUT_MS, &status);
    if (fd < 0)
        fail_msg("fifth connection: expected a WebSocket closed with 1013, got HTTP status %d",
                 status);
    assert_int_equal(raw_ws_read_close(fd, RELAY_TEST_TIMEOUT_MS, &code, reason, sizeof(reason)),
                     0);
    close(fd);
    assert_int_equal(code, 1013);
    assert_true(strlen(reason) > 0);
    assert_true(relay_test_metric(
                    test, "relayd_connections_refused_total{reason=\"max_connections\"}") == 1);
    assert_true(relay_test_metric(test, "relayd_limits_hit_total{limit=\"max_connections\"}") == 1);

    /* the four are unharmed; one leaves and makes room */
    relay_test_send_request(connections[0], rid_limit, uuid);
    relay_test_expect_notification(connections[0], "NOTIFY_RENDEZVOUS_NOT_READY", rid_limit, uuid);
    assert_true(ws_client_close(connections[3], 1000, "bye", RELAY_TEST_TIMEOUT_MS));
    assert_true(relay_test_wait_metric(test, "relayd_connections{state=\"awaiting_request\"}", 2,
                                       RELAY_TEST_TIMEOUT_MS) == 2);
    late = relay_test_connect(test);
    relay_test_send_request(late, rid_limit, uuid);
    relay_test_expect_notification(late, "NOTIFY_RENDEZVOUS", rid_limit, uuid);
}

/* A relayd of its own under `ulimit -n fd_limit`, with a config file when
 * config_text is not NULL; returns its pid once /readyz answers 200. */
struct limited_relay {
    char directory[256];
    char log_path[300];
    int port;
    int admin;
    pid_t pid;
};

static void limited_relay_start(struct limited_relay *relay, int fd_limit, const char *config_text)
{
    char config_path[300], port_text[16], admin_text[16], command[256];

    relay->port = harness_free_port("127.0.0.1");
    relay->admin = harness_free_port("127.0.0.1");
    assert_int_equal(harness_make_directory(relay->directory, sizeof(relay->directory)), 0);
    snprintf(relay->log_path, sizeof(relay->log_path), "%s/relayd.log", relay->directory);
    snprintf(config_path, sizeof(config_path), "%s/relayd.yaml", relay->directory);
    FILE *file = fopen(config_path, "w");
    assert_non_null(file);
    fputs(config_text != NULL ? config_text : "", file);
    fclose(file);
    snprintf(port_text, sizeof(port_text), "%d", relay->port);
    snprintf(admin_text, sizeof(admin_text), "%d", relay->admin);
    snprintf(command, sizeof(command),
             "ulimit -n %d && exec \"$0\" --config \"$3\" --bind 127.0.0.1 --port \"$1\" "
             "--admin-port \"$2\" --log-level info",
             fd_limit);
    const char *const argv[] = {"/bin/sh", "-c",       command,     harness_relayd_path(),
                                port_text, admin_text, config_path, NULL};
    relay->pid = harness_spawn(argv, relay->log_path, -1, 0);
    assert_true(relay->pid > 0);
    int64_t deadline = ws_client_now_ms() + RELAY_TEST_TIMEOUT_MS;
    for (;;) {
        char *body = NULL;
        int http = 0;
        int got = harness_http_get("127.0.0.1", relay->admin, "/readyz", 500, &http, &body);
        free(body);
        if (got == 0 && http == 200)
            return;
        if (ws_client_now_ms() > deadline) {
            harness_print_file_tail("relayd log", relay->log_path, 2000);
            fail_msg("relayd under ulimit -n %d did not become ready", fd_limit);
        }
        harness_sleep_ms(50);
    }
}

static bool limited_relay_log_contains(const struct limited_relay *relay, const char *text)
{
    char *log = NULL;
    assert_int_equal(
        harness_run_command((char *const[]){"cat", (char *)relay->log_path, NULL}, 5000, &log), 0);
    bool found = log != NULL && strstr(log, text) != NULL;
    free(log);
    return found;
}

static void limited_relay_stop(struct limited_relay *relay)
{
    kill(relay->pid, SIGTERM);
    for (int i = 0; i < 100 && harness_poll_exit(relay->pid) == -2; i++)
        harness_sleep_ms(50);
    if (harness_poll_exit(relay->pid) == -2) {
        kill(relay->pid, SIGKILL);
        waitpid(relay->pid, NULL, 0);
    }
    harness_remove_directory(relay->directory);
}

/* Without limits.max_connections the node serves what its descriptor limit
 * allows less 256 kept for itself: under `ulimit -n 300` that is 44. The
 * 45th client is refused with 1013. */
#define AUTO_FD_LIMIT 300
#define AUTO_MAX_CONNECTIONS (AUTO_FD_LIMIT - 256)

static void test_max_connections_from_fd_limit(void **state)
{
    (void)state;
    struct limited_relay relay;
    int fds[AUTO_MAX_CONNECTIONS + 1], status = 0, code = 0, i;
    char reason[128] = "", expected[64];

    limited_relay_start(&relay, AUTO_FD_LIMIT, NULL);
    snprintf(expected, sizeof(expected), "max connections: %d", AUTO_MAX_CONNECTIONS);
    if (!limited_relay_log_contains(&relay, expected))
        fail_msg("relayd log does not say \"%s\"", expected);

    for (i = 0; i < AUTO_MAX_CONNECTIONS; i++) {
        fds[i] = raw_ws_open("127.0.0.1", relay.port, RELAY_TEST_TIMEOUT_MS, &status);
        assert_true(fds[i] >= 0);
    }
    fds[i] = raw_ws_open("127.0.0.1", relay.port, RELAY_TEST_TIMEOUT_MS, &status);
    assert_true(fds[i] >= 0);
    assert_int_equal(
        raw_ws_read_close(fds[i], RELAY_TEST_TIMEOUT_MS, &code, reason, sizeof(reason)), 0);
    assert_int_equal(code, 1013);
    for (i = 0; i <= AUTO_MAX_CONNECTIONS; i++)
        close(fds[i]);
    limited_relay_stop(&relay);
}

/* CPU seconds (user + system) a process has used, from /proc/PID/stat. */
static double process_cpu_seconds(pid_t pid)
{
    char path[64], line[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *file = fopen(path, "r");
    assert_non_null(file);
    assert_non_null(fgets(line, sizeof(line), file));
    fclose(file);
    const char *after_name = strrchr(line, ')');
    assert_non_null(after_name);
    unsigned long user = 0, system = 0;
    /* state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
    assert_int_equal(sscanf(after_name + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
                            &user, &system),
                     2);
    return (double)(user + system) / (double)sysconf(_SC_CLK_TCK);
}

/* limits.max_connections above what `ulimit -n` allows (the node warns):
 * once descriptors run out, the client port stops accepting for a moment
 * rather than spinning on its readable socket, and takes connections again
 * once some have closed. */
#define SCARCE_FD_LIMIT 64

static void test_accept_pauses_without_descriptors(void **state)
{
    (void)state;
    struct limited_relay relay;
    int fds[SCARCE_FD_LIMIT], status = 0, opened = 0;

    limited_relay_start(&relay, SCARCE_FD_LIMIT, "limits:\n  max_connections: 1000\n");
    while (opened < SCARCE_FD_LIMIT) {
        int fd = raw_ws_open("127.0.0.1", relay.port, 300, &status);
        if (fd < 0)
            break;
        fds[opened++] = fd;
    }
    assert_true(opened >= 10 && opened < SCARCE_FD_LIMIT);
    /* The connection that got no answer waits in the kernel's queue; a
     * node spinning on it would burn a core. */
    double before = process_cpu_seconds(relay.pid);
    harness_sleep_ms(1000);
    double used = process_cpu_seconds(relay.pid) - before;
    if (used > 0.3)
        fail_msg("relayd used %.2f s of CPU in 1 s while out of descriptors", used);
    assert_true(limited_relay_log_contains(&relay, "cannot accept"));

    close(fds[--opened]);
    close(fds[--opened]);
    int late = raw_ws_open("127.0.0.1", relay.port, RELAY_TEST_TIMEOUT_MS, &status);
    assert_true(late >= 0);
    assert_int_equal(status, 101);
    close(late);
    while (opened > 0)
        close(fds[--opened]);
    limited_relay_stop(&relay);
}

/* pending_timeout 1: a pending peer is closed within a few seconds (END and
 * 1000, or 1008), counted; a pair formed in time is not affected. */
static void test_pending_timeout(void **state)
{
    struct relay_test *test = *state;
    struct harness_config config = {.pending_timeout = 1};
    struct ws_client_connection *waiting;
    struct relay_test_peer first, second;
    struct ws_client_message message;
    int64_t started;
    char uuid[37];

    relay_test_start(test, &config);
    waiting = relay_test_connect(test);
    relay_test_send_request(waiting, rid_limit, uuid);
    relay_test_expect_notification(waiting, "NOTIFY_RENDEZVOUS_NOT_READY", rid_limit, uuid);
    started = ws_client_now_ms();
    relay_test_pair(test, rid_other, &first, &second);

    switch (ws_client_receive(waiting, &message, 4000)) {
    case WS_CLIENT_BINARY:
        ws_client_message_release(&message);
        relay_test_expect_close(waiting, 1000, false); /* after END */
        break;
    case WS_CLIENT_CLOSED:
        assert_int_equal(message.close_code, 1008);
        assert_true(strlen(message.close_reason) > 0);
        break;
    default:
        fail_msg("pending peer not closed within 4 s of pending_timeout 1");
    }
    fprintf(stderr, "  pending peer closed after %lld ms\n",
            (long long)(ws_client_now_ms() - started));
    assert_true(ws_client_now_ms() - started >= 500);
    assert_true(
        relay_test_wait_metric(test, "relayd_connections_closed_total{reason=\"pending_timeout\"}",
                               1, RELAY_TEST_TIMEOUT_MS) == 1);
    assert_true(relay_test_metric(test, "relayd_limits_hit_total{limit=\"pending_timeout\"}") == 1);
    /* the pair outlived the timeout */
    relay_test_expect_silence(first.connection, 1500);
    relay_test_exchange(&first, &second, "after pending timeout");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_oversize_first_frame, relay_test_setup_no_relay,
                                        relay_test_teardown),
        cmocka_unit_test_setup_teardown(test_oversize_between_peers, relay_test_setup_no_relay,
                                        relay_test_teardown),
        cmocka_unit_test(test_max_connections_from_fd_limit),
        cmocka_unit_test(test_accept_pauses_without_descriptors),
        cmocka_unit_test_setup_teardown(test_max_connections, relay_test_setup_no_relay,
                                        relay_test_teardown),
        cmocka_unit_test_setup_teardown(test_pending_timeout, relay_test_setup_no_relay,
                                        relay_test_teardown),
    };

    return cmocka_run_group_tests_name("limits", tests, relay_test_group_setup,
                                       relay_test_group_teardown);
}

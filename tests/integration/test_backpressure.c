/*
 * test_backpressure.c - a slow receiver must not make the relay buffer
 * without bound, and a silent one is reaped by keepalive.
 *
 * Backpressure: the receiver stops reading while its partner pushes 100 MiB.
 * The sender only queues a frame when its previous ones reached the socket,
 * so once the relay stops reading it, the sender stalls. Meanwhile relayd's
 * RSS must stay near its baseline and another pair must keep working; after
 * the receiver resumes, every byte arrives in order.
 *
 * Keepalive: with pings every 2 s and a 1 s timeout, a paired client that
 * stops reading cannot answer pings; the relay closes it and its partner
 * gets END, while clients that do read stay connected.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "relay_test.h"

static const char rid_bulk[] = "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00";
static const char rid_side[] = "5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed";

#define STREAM_FRAME_BYTES (64 * 1024)
#define STREAM_TOTAL_BYTES (100ull * 1024 * 1024)
#define STREAM_FRAMES (uint32_t)(STREAM_TOTAL_BYTES / STREAM_FRAME_BYTES)
#define STREAM_QUEUE_LIMIT (2 * STREAM_FRAME_BYTES)
#define RSS_ALLOWANCE_KIB (32 * 1024)
#define STALL_MS 1000

/* Receiving side of the stream: checks order and content as it arrives. */
struct stream_check {
    uint32_t received;
    int mismatches;
    unsigned char expected[STREAM_FRAME_BYTES];
};

static void stream_check_message(struct ws_client_connection *connection, const unsigned char *data,
                                 size_t length, bool binary, void *user)
{
    struct stream_check *check = user;

    (void)connection;
    relay_test_fill_payload(check->expected, STREAM_FRAME_BYTES, check->received, 9);
    if (!binary || length != STREAM_FRAME_BYTES || memcmp(data, check->expected, length)) {
        if (check->mismatches++ < 5)
            fprintf(stderr, "stream: message %u differs (%zu bytes)\n", check->received, length);
    }
    check->received++;
}

struct stream_sender {
    struct ws_client_connection *connection;
    uint32_t sent;
    unsigned char frame[STREAM_FRAME_BYTES];
};

/* Queue frames only while the socket takes them: at most two queued. */
static void stream_send_some(struct stream_sender *sender)
{
    while (sender->sent < STREAM_FRAMES &&
           ws_client_queued_bytes(sender->connection) < STREAM_QUEUE_LIMIT) {
        relay_test_fill_payload(sender->frame, STREAM_FRAME_BYTES, sender->sent, 9);
        assert_int_equal(
            ws_client_send(sender->connection, sender->frame, STREAM_FRAME_BYTES, true), 0);
        sender->sent++;
    }
}

static void check_rss(struct relay_test *test, long baseline, long *peak)
{
    long rss = harness_relay_rss_kib(&test->relay);

    assert_true(rss > 0);
    if (rss > *peak)
        *peak = rss;
    if (rss > baseline + RSS_ALLOWANCE_KIB)
        fail_msg("relayd RSS %ld KiB exceeds baseline %ld KiB + %d KiB", rss, baseline,
                 RSS_ALLOWANCE_KIB);
}

/* Push until the sender has made no progress for STALL_MS. Returns the
 * bytes the sender got out. */
static uint64_t stream_until_stalled(struct relay_test *test, struct stream_sender *sender,
                                     long baseline, long *peak)
{
    int64_t deadline = ws_client_now_ms() + 30000;
    uint64_t last_sent = 0;
    int64_t last_progress = ws_client_now_ms();

    while (ws_client_now_ms() < deadline) {
        uint64_t sent_bytes = ws_client_bytes_sent(sender->connection);

        stream_send_some(sender);
        ws_client_service(relay_test_client, 50);
        check_rss(test, baseline, peak);
        if (sent_bytes != last_sent) {
            last_sent = sent_bytes;
            last_progress = ws_client_now_ms();
        } else if (ws_client_now_ms() - last_progress >= STALL_MS) {
            return sent_bytes;
        }
    }
    fail_msg("the sender never stalled: the relay reads without bound");
    return 0;
}

static void test_paused_receiver_bounded_memory(void **state)
{
    struct relay_test *test = *state;
    struct stream_sender *sender = relay_test_alloc(test, sizeof(*sender));
    struct stream_check *check = relay_test_alloc(test, sizeof(*check));
    struct relay_test_peer first, second, side_first, side_second;
    int64_t deadline = ws_client_now_ms() + 120000;
    uint64_t stalled_at, notification_bytes;
    long baseline, peak = 0;
    int round = 0;

    relay_test_pair(test, rid_bulk, &first, &second);
    relay_test_pair(test, rid_side, &side_first, &side_second);
    notification_bytes = ws_client_bytes_received(second.connection);
    baseline = harness_relay_rss_kib(&test->relay);
    assert_true(baseline > 0);
    sender->connection = first.connection;
    ws_client_set_message_handler(second.connection, stream_check_message, check);
    ws_client_pause_reading(second.connection);

    stalled_at = stream_until_stalled(test, sender, baseline, &peak);
    fprintf(stderr, "  sender stalled after %llu bytes; relay RSS baseline %ld KiB, peak %ld KiB\n",
            (unsigned long long)stalled_at, baseline, peak);
    assert_true(stalled_at < STREAM_TOTAL_BYTES / 2);
    assert_true(check->received * (uint64_t)STREAM_FRAME_BYTES < stalled_at);
    assert_true(
        relay_test_metric(test, "relayd_limits_hit_total{limit=\"send_queue_high_water\"}") >= 1);
    /* the other pair is not held up by the stalled one */
    relay_test_exchange(&side_first, &side_second, "while stalled");
    check_rss(test, baseline, &peak);

    ws_client_resume_reading(second.connection);
    while (check->received < STREAM_FRAMES && ws_client_now_ms() < deadline) {
        stream_send_some(sender);
        ws_client_service(relay_test_client, 20);
        if (++round % 10 == 0)
            check_rss(test, baseline, &peak);
        assert_int_equal(ws_client_state(first.connection), WS_CLIENT_OPEN);
        assert_int_equal(ws_client_state(second.connection), WS_CLIENT_OPEN);
    }
    fprintf(stderr, "  received %u of %u frames; relay RSS peak %ld KiB\n", check->received,
            STREAM_FRAMES, peak);
    assert_int_equal(check->received, STREAM_FRAMES);
    assert_int_equal(check->mismatches, 0);
    assert_true(ws_client_bytes_received(second.connection) - notification_bytes ==
                STREAM_TOTAL_BYTES);
    relay_test_exchange(&side_first, &side_second, "after the stream");
}

/* ping_interval 2, ping_timeout 1: the relay accepts only a timeout below
 * the interval (see test_keepalive_one_second_config for 1 and 1). */
#define PING_INTERVAL 2
#define PING_TIMEOUT 1

static void test_ping_timeout_reaps_silent_client(void **state)
{
    struct relay_test *test = *state;
    struct harness_config config = {.ping_interval = PING_INTERVAL, .ping_timeout = PING_TIMEOUT};
    struct relay_test_peer first, second, side_first, side_second;
    int64_t started, ended, stay_ms = 2000 * (PING_INTERVAL + PING_TIMEOUT);

    relay_test_start(test, &config);
    relay_test_pair(test, rid_bulk, &first, &second);
    relay_test_pair(test, rid_side, &side_first, &side_second);
    started = ws_client_now_ms();
    ws_client_pause_reading(second.connection);

    relay_test_expect_end(first.connection, rid_bulk);
    ended = ws_client_now_ms();
    fprintf(stderr, "  silent client reaped after %lld ms\n", (long long)(ended - started));
    /* not before a ping could go unanswered, not much after interval + timeout */
    assert_true(ended - started >= PING_TIMEOUT * 1000 - 100);
    assert_true(ended - started <= (PING_INTERVAL + PING_TIMEOUT) * 1000 + 1500);
    assert_true(relay_test_wait_metric(test,
                                       "relayd_connections_closed_total{reason=\"ping_timeout\"}",
                                       1, RELAY_TEST_TIMEOUT_MS) == 1);

    /* clients that read answer the pings and stay, past twice that time */
    if (ws_client_now_ms() - started < stay_ms)
        relay_test_expect_silence(side_first.connection,
                                  (int)(stay_ms - (ws_client_now_ms() - started)));
    relay_test_expect_silence(side_second.connection, 0);
    relay_test_exchange(&side_first, &side_second, "after ping timeout");
}

/* The keepalive settings the brief asks to test with: ping_interval 1 and
 * ping_timeout 1 must be a valid configuration. */
static void test_keepalive_one_second_config(void **state)
{
    struct relay_test *test = *state;
    char path[320], *output = NULL;
    char *argv[] = {(char *)harness_relayd_path(), "--check-config", "--config", path, NULL};
    FILE *file;
    int status;

    assert_int_equal(harness_make_directory(test->relay.directory, sizeof(test->relay.directory)),
                     0);
    snprintf(path, sizeof(path), "%s/keepalive.yaml", test->relay.directory);
    file = fopen(path, "w");
    assert_non_null(file);
    fputs("keepalive:\n  ping_interval: 1\n  ping_timeout: 1\n", file);
    fclose(file);
    status = harness_run_command(argv, 10000, &output);
    relay_test_keep(test, output);
    if (status != 0)
        fail_msg("relayd refuses ping_interval 1 / ping_timeout 1 (exit %d): %s", status, output);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_paused_receiver_bounded_memory, relay_test_setup,
                                        relay_test_teardown),
        cmocka_unit_test_setup_teardown(test_ping_timeout_reaps_silent_client,
                                        relay_test_setup_no_relay, relay_test_teardown),
        cmocka_unit_test_setup_teardown(test_keepalive_one_second_config, relay_test_setup_no_relay,
                                        relay_test_teardown),
    };
    const char *sanitizer = getenv("ASAN_OPTIONS");
    char options[1024];

    /* AddressSanitizer keeps freed memory in a quarantine (256 MiB by
     * default) and returns freed pages to the system lazily; both would count
     * as relay RSS here. Keep them small for the relays this program starts
     * (builds without ASan ignore the variable). */
    snprintf(options, sizeof(options),
             "%s%squarantine_size_mb=4:allocator_release_to_os_interval_ms=50",
             sanitizer ? sanitizer : "", sanitizer && *sanitizer ? ":" : "");
    setenv("ASAN_OPTIONS", options, 1);
    return cmocka_run_group_tests_name("backpressure", tests, relay_test_group_setup,
                                       relay_test_group_teardown);
}

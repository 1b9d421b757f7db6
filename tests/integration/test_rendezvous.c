/*
 * test_rendezvous.c - matchmaking as clients see it (protocol-v0.md,
 * "Matchmaking behaviour"): NOT_READY, NOTIFY_RENDEZVOUS, END and the close
 * that follows, notifications written in one turn, a client closing while
 * its partner streams, rid normalisation, the captured real clients, third peers,
 * repeated requests, invalid first frames and frames sent while pending.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <poll.h>
#include <unistd.h>

#include <cmocka.h>

#include "raw_ws.h"
#include "relay_test.h"

static const char rid_one[] = "0d7e8f2c5b1a4f3e9c6d2b8a7f1e0c3d5b9a8f7e6d5c4b3a2918f7e6d5c4b3a2";
static const char rid_two[] = "11aa22bb33cc44dd55ee66ff778899aabbccddeeff00112233445566778899aa";

static void test_not_ready_then_pair(void **state)
{
    struct relay_test *test = *state;
    struct relay_test_peer first, second;

    relay_test_pair(test, rid_one, &first, &second);
    relay_test_exchange(&first, &second, "pair");
    assert_true(relay_test_metric(test, "relayd_rendezvous_total{result=\"pending\"}") == 1);
    assert_true(relay_test_metric(test, "relayd_rendezvous_total{result=\"paired\"}") == 1);
    assert_true(relay_test_metric(test, "relayd_connections{state=\"paired\"}") == 2);
}

/* Each notification is one unfragmented binary frame: read with a raw
 * socket, where frame boundaries are visible. */
static void expect_raw_notification(int fd, const char *name)
{
    struct moneysocket_message parsed;
    unsigned char *payload;
    size_t length;
    int opcode, parsed_ok;

    if (raw_ws_read_frame(fd, RELAY_TEST_TIMEOUT_MS, &opcode, &payload, &length) < 0)
        fail_msg("expected %s, got no frame", name);
    parsed_ok = moneysocket_json_parse(payload, length, &parsed);
    free(payload);
    assert_int_equal(opcode, 0x82); /* FIN + binary */
    assert_int_equal(parsed_ok, 0);
    assert_string_equal(parsed.notification_name.text, name);
}

/* Two raw connections paired on rid: the first waits (NOT_READY) before
 * the second asks; each notification checked as one whole binary frame. */
static void raw_pair(struct relay_test *test, const char *rid, int *first, int *second)
{
    char request[512], uuid[37];
    int status;

    *first = raw_ws_open("127.0.0.1", test->relay.port, RELAY_TEST_TIMEOUT_MS, &status);
    *second = raw_ws_open("127.0.0.1", test->relay.port, RELAY_TEST_TIMEOUT_MS, &status);
    assert_true(*first >= 0 && *second >= 0);
    assert_int_equal(moneysocket_json_new_uuid(uuid), 0);
    size_t length = moneysocket_json_build_request(request, sizeof(request), rid, uuid, 1.5);
    assert_int_equal(raw_ws_send(*first, 2, request, length), 0);
    expect_raw_notification(*first, "NOTIFY_RENDEZVOUS_NOT_READY");
    assert_int_equal(raw_ws_send(*second, 2, request, length), 0);
    expect_raw_notification(*second, "NOTIFY_RENDEZVOUS");
    expect_raw_notification(*first, "NOTIFY_RENDEZVOUS");
}

static void test_notifications_are_single_binary_frames(void **state)
{
    struct relay_test *test = *state;
    int first, second;

    raw_pair(test, rid_two, &first, &second);
    close(second);
    expect_raw_notification(first, "NOTIFY_RENDEZVOUS_END");
    close(first);
}

/* The name of the next notification on a raw socket ("" if none came). */
static void read_raw_notification_name(int fd, char *name, size_t size)
{
    struct moneysocket_message parsed;
    unsigned char *payload;
    size_t length;
    int opcode;

    name[0] = '\0';
    if (raw_ws_read_frame(fd, RELAY_TEST_TIMEOUT_MS, &opcode, &payload, &length) < 0)
        return;
    if (opcode == 0x82 && moneysocket_json_parse(payload, length, &parsed) == 0)
        snprintf(name, size, "%.63s", parsed.notification_name.text);
    free(payload);
}

/* Both requests sent back to back, so the relay usually reads them in one
 * loop turn and writes the pending peer's NOT_READY and NOTIFY_RENDEZVOUS
 * together: they must still arrive as two whole frames, in that order.
 * Which of the two is read first (and so is pending) is up to the relay. */
static void test_requests_in_one_turn(void **state)
{
    struct relay_test *test = *state;
    char first_request[512], second_request[512], uuid[37], name[160];
    int status, first, second;

    first = raw_ws_open("127.0.0.1", test->relay.port, RELAY_TEST_TIMEOUT_MS, &status);
    second = raw_ws_open("127.0.0.1", test->relay.port, RELAY_TEST_TIMEOUT_MS, &status);
    assert_true(first >= 0 && second >= 0);
    assert_int_equal(moneysocket_json_new_uuid(uuid), 0);
    size_t first_length =
        moneysocket_json_build_request(first_request, sizeof(first_request), rid_one, uuid, 2.5);
    assert_int_equal(moneysocket_json_new_uuid(uuid), 0);
    size_t second_length =
        moneysocket_json_build_request(second_request, sizeof(second_request), rid_one, uuid, 2.5);
    assert_int_equal(raw_ws_send(first, 2, first_request, first_length), 0);
    assert_int_equal(raw_ws_send(second, 2, second_request, second_length), 0);

    read_raw_notification_name(first, name, sizeof(name));
    bool first_pending = strcmp(name, "NOTIFY_RENDEZVOUS_NOT_READY") == 0;
    if (!first_pending)
        assert_string_equal(name, "NOTIFY_RENDEZVOUS");
    int pending = first_pending ? first : second, paired = first_pending ? second : first;
    if (!first_pending)
        expect_raw_notification(pending, "NOTIFY_RENDEZVOUS_NOT_READY");
    expect_raw_notification(pending, "NOTIFY_RENDEZVOUS");
    if (first_pending)
        expect_raw_notification(paired, "NOTIFY_RENDEZVOUS");
    close(first);
    close(second);
}

/* A client that sends a close frame while its partner streams to it: the
 * relay may still deliver frames queued before the close, whole and in
 * order, then answers with its own close frame - and after that sends
 * nothing more. */
static void test_close_while_partner_streams(void **state)
{
    struct relay_test *test = *state;
    enum { FRAMES = 400, FRAME_BYTES = 1000 };
    unsigned char frame[FRAME_BYTES], *payload;
    int opcode, receiver, sender;
    size_t length;

    raw_pair(test, rid_two, &receiver, &sender);

    for (uint32_t sequence = 0; sequence < FRAMES; sequence++) {
        relay_test_fill_payload(frame, sizeof(frame), sequence, 7);
        assert_int_equal(raw_ws_send(sender, 2, frame, sizeof(frame)), 0);
    }
    assert_int_equal(raw_ws_send(receiver, 8, "\x03\xe8", 2), 0); /* close 1000 */

    /* Messages may come in several frames (the relay forwards what it has
     * read of a message as it goes): reassemble, then compare. */
    uint32_t received = 0;
    size_t message_length = 0;
    unsigned char message[FRAME_BYTES];
    for (;;) {
        if (raw_ws_read_frame(receiver, RELAY_TEST_TIMEOUT_MS, &opcode, &payload, &length) < 0)
            fail_msg("no close frame after %u data messages", received);
        if ((opcode & 0x0f) == 8) {
            free(payload);
            break;
        }
        assert_int_equal(opcode & 0x0f, message_length == 0 ? 2 : 0);
        assert_true(message_length + length <= sizeof(message));
        memcpy(message + message_length, payload, length);
        message_length += length;
        free(payload);
        if (!(opcode & 0x80))
            continue;
        relay_test_fill_payload(frame, sizeof(frame), received, 7);
        assert_int_equal(message_length, sizeof(frame));
        assert_memory_equal(message, frame, message_length);
        message_length = 0;
        received++;
    }
    assert_true(received <= FRAMES);
    /* Nothing after the close frame: the connection ends or stays quiet. */
    struct pollfd readable = {.fd = receiver, .events = POLLIN};
    char byte;
    if (poll(&readable, 1, 500) == 1)
        assert_true(recv(receiver, &byte, 1, 0) <= 0);
    close(receiver);
    close(sender);
}

/* A peer that leaves with a close frame, and one that just drops its TCP
 * connection: either way the partner gets END and close 1000, and the id is
 * free again. */
static void test_end_when_partner_leaves(void **state)
{
    struct relay_test *test = *state;
    struct relay_test_peer first, second, third, fourth;

    relay_test_pair(test, rid_one, &first, &second);
    assert_true(ws_client_close(first.connection, 1000, "bye", RELAY_TEST_TIMEOUT_MS));
    relay_test_expect_end(second.connection, rid_one);

    relay_test_pair(test, rid_one, &third, &fourth);
    relay_test_drop(test, fourth.connection); /* no close frame */
    relay_test_expect_end(third.connection, rid_one);
    assert_true(relay_test_wait_metric(test,
                                       "relayd_connections_closed_total{reason=\"partner_gone\"}",
                                       2, RELAY_TEST_TIMEOUT_MS) == 2);
    assert_true(relay_test_wait_metric(test, "relayd_connections{state=\"paired\"}", 0,
                                       RELAY_TEST_TIMEOUT_MS) == 0);
}

/* Frames a peer sends right after its request (it is paired by then) reach
 * the partner after the partner's own NOTIFY_RENDEZVOUS. */
static void test_notify_before_partner_frames(void **state)
{
    struct relay_test *test = *state;
    struct ws_client_connection *first = relay_test_connect(test);
    struct ws_client_connection *second = relay_test_connect(test);
    char first_uuid[37], second_uuid[37];

    relay_test_send_request(first, rid_one, first_uuid);
    relay_test_expect_notification(first, "NOTIFY_RENDEZVOUS_NOT_READY", rid_one, first_uuid);
    relay_test_send_request(second, rid_one, second_uuid);
    assert_int_equal(ws_client_send(second, "early", 5, true), 0);
    relay_test_expect_notification(first, "NOTIFY_RENDEZVOUS", rid_one, first_uuid);
    relay_test_expect_message(first, true, "early", 5);
    relay_test_expect_notification(second, "NOTIFY_RENDEZVOUS", rid_one, second_uuid);
}

static void test_uppercase_rid_pairs_with_lowercase(void **state)
{
    struct relay_test *test = *state;
    struct ws_client_connection *first = relay_test_connect(test);
    struct ws_client_connection *second = relay_test_connect(test);
    char upper[65], first_uuid[37], second_uuid[37];
    size_t i;

    for (i = 0; i < 64; i++)
        upper[i] = (char)(rid_one[i] >= 'a' ? rid_one[i] - 'a' + 'A' : rid_one[i]);
    upper[64] = '\0';
    relay_test_send_request(first, upper, first_uuid);
    /* sent back in lowercase (the expectation lowercases rid) */
    relay_test_expect_notification(first, "NOTIFY_RENDEZVOUS_NOT_READY", rid_one, first_uuid);
    relay_test_send_request(second, rid_one, second_uuid);
    relay_test_expect_notification(second, "NOTIFY_RENDEZVOUS", rid_one, second_uuid);
    relay_test_expect_notification(first, "NOTIFY_RENDEZVOUS", rid_one, first_uuid);
}

/* The exact bytes py-moneysocket and js-moneysocket send pair with each
 * other, and their encrypted frames arrive byte-identical. */
static void test_captured_clients_pair(void **state)
{
    struct relay_test *test = *state;
    struct ws_client_connection *py = relay_test_connect(test);
    struct ws_client_connection *js = relay_test_connect(test);
    size_t py_length, js_length, py_ping_length, js_ping_length;
    unsigned char *py_request =
        relay_test_read_vector(test, "py_request_rendezvous.json", false, &py_length);
    unsigned char *js_request =
        relay_test_read_vector(test, "js_request_rendezvous.json", false, &js_length);
    unsigned char *py_ping =
        relay_test_read_vector(test, "py_request_ping_encrypted.hex", true, &py_ping_length);
    unsigned char *js_ping =
        relay_test_read_vector(test, "js_request_ping_encrypted.hex", true, &js_ping_length);
    struct moneysocket_message py_parsed, js_parsed;

    assert_int_equal(moneysocket_json_parse(py_request, py_length, &py_parsed), 0);
    assert_int_equal(moneysocket_json_parse(js_request, js_length, &js_parsed), 0);
    assert_int_equal(js_ping_length, 208); /* manifest.json */
    assert_int_equal(py_ping_length % 16, 0);

    assert_int_equal(ws_client_send(py, py_request, py_length, true), 0);
    relay_test_expect_notification(py, "NOTIFY_RENDEZVOUS_NOT_READY", py_parsed.rendezvous_id.text,
                                   py_parsed.request_uuid.text);
    assert_int_equal(ws_client_send(js, js_request, js_length, true), 0);
    relay_test_expect_notification(js, "NOTIFY_RENDEZVOUS", js_parsed.rendezvous_id.text,
                                   js_parsed.request_uuid.text);
    relay_test_expect_notification(py, "NOTIFY_RENDEZVOUS", py_parsed.rendezvous_id.text,
                                   py_parsed.request_uuid.text);

    assert_int_equal(ws_client_send(py, py_ping, py_ping_length, true), 0);
    assert_int_equal(ws_client_send(js, js_ping, js_ping_length, true), 0);
    relay_test_expect_message(js, true, py_ping, py_ping_length);
    relay_test_expect_message(py, true, js_ping, js_ping_length);
}

static void test_third_peer_refused(void **state)
{
    struct relay_test *test = *state;
    struct relay_test_peer first, second;
    struct ws_client_connection *third;

    relay_test_pair(test, rid_one, &first, &second);
    third = relay_test_connect(test);
    relay_test_send_request(third, rid_one, NULL);
    relay_test_expect_end(third, rid_one);
    relay_test_expect_silence(first.connection, 200);
    relay_test_expect_silence(second.connection, 0);
    relay_test_exchange(&first, &second, "after third peer");
    assert_true(relay_test_metric(test, "relayd_rendezvous_total{result=\"refused\"}") == 1);
    assert_true(relay_test_wait_metric(test,
                                       "relayd_connections_closed_total{reason=\"third_peer\"}", 1,
                                       RELAY_TEST_TIMEOUT_MS) == 1);
}

/* A second REQUEST_RENDEZVOUS while pending: closed 1008, id freed. */
static void test_second_request_while_pending(void **state)
{
    struct relay_test *test = *state;
    struct ws_client_connection *first = relay_test_connect(test);
    struct relay_test_peer second, third;
    char uuid[37];

    relay_test_send_request(first, rid_one, uuid);
    relay_test_expect_notification(first, "NOTIFY_RENDEZVOUS_NOT_READY", rid_one, uuid);
    relay_test_send_request(first, rid_one, NULL);
    relay_test_expect_close(first, 1008, true);
    /* the id is free: a new pair forms on it (NOT_READY first) */
    relay_test_pair(test, rid_one, &second, &third);
    relay_test_exchange(&second, &third, "after second request");
    assert_true(
        relay_test_metric(test, "relayd_connections_closed_total{reason=\"second_request\"}") == 1);
}

/* Once paired, a repeated request is just a frame: forwarded verbatim. */
static void test_repeated_request_when_paired_is_forwarded(void **state)
{
    struct relay_test *test = *state;
    struct relay_test_peer first, second;
    char request[512], uuid[37];
    size_t length;

    relay_test_pair(test, rid_one, &first, &second);
    assert_int_equal(moneysocket_json_new_uuid(uuid), 0);
    length = moneysocket_json_build_request(request, sizeof(request), rid_one, uuid, 12.0);
    assert_int_equal(ws_client_send(first.connection, request, length, true), 0);
    relay_test_expect_message(second.connection, true, request, length);
    relay_test_expect_silence(first.connection, 100);
    relay_test_exchange(&first, &second, "after repeated request");
}

struct bad_first_frame {
    const char *what;
    const char *data;
    size_t length; /* 0: strlen(data) */
    bool binary;
    int close_code;
};

static const struct bad_first_frame bad_first_frames[] = {
    {"not JSON", "hello relay", 0, true, 1008},
    {"empty frame", "", 0, true, 1008},
    {"JSON array", "[1, 2, 3]", 0, true, 1008},
    {"truncated JSON", "{\"message_class\": \"REQUEST\"", 0, true, 1008},
    {"invalid UTF-8", "{\"message_class\": \"\xc3\x28\"}", 0, true, 1007},
    {"invalid UTF-8 bytes", "\xff\xfe\xfd\xfc", 0, true, 1007},
    {"text first frame",
     "{\"timestamp\": 1.5, \"protocol\": \"Moneysocket\", \"protocol_version\": \"0.0.0\", "
     "\"message_class\": \"REQUEST\", \"request_uuid\": \"0811a20b-3a4a-400e-8e1b-180d43727d7b\", "
     "\"request_name\": \"REQUEST_RENDEZVOUS\", \"rendezvous_id\": "
     "\"f66d7935fb71dafa8493e8194e9eda3ed95406bd1376f71dd1f47961581d5646\"}",
     0, false, 1003},
    {"timestamp is a string",
     "{\"timestamp\": \"1.5\", \"protocol\": \"Moneysocket\", \"protocol_version\": \"0.0.0\", "
     "\"message_class\": \"REQUEST\", \"request_uuid\": \"0811a20b-3a4a-400e-8e1b-180d43727d7b\", "
     "\"request_name\": \"REQUEST_RENDEZVOUS\", \"rendezvous_id\": "
     "\"f66d7935fb71dafa8493e8194e9eda3ed95406bd1376f71dd1f47961581d5646\"}",
     0, true, 1008},
    {"rid is a number",
     "{\"timestamp\": 1.5, \"protocol\": \"Moneysocket\", \"protocol_version\": \"0.0.0\", "
     "\"message_class\": \"REQUEST\", \"request_uuid\": \"0811a20b-3a4a-400e-8e1b-180d43727d7b\", "
     "\"request_name\": \"REQUEST_RENDEZVOUS\", \"rendezvous_id\": 12345}",
     0, true, 1008},
    {"rid 63 digits",
     "{\"timestamp\": 1.5, \"protocol\": \"Moneysocket\", \"protocol_version\": \"0.0.0\", "
     "\"message_class\": \"REQUEST\", \"request_uuid\": \"0811a20b-3a4a-400e-8e1b-180d43727d7b\", "
     "\"request_name\": \"REQUEST_RENDEZVOUS\", \"rendezvous_id\": "
     "\"f66d7935fb71dafa8493e8194e9eda3ed95406bd1376f71dd1f47961581d564\"}",
     0, true, 1008},
    {"rid not hex",
     "{\"timestamp\": 1.5, \"protocol\": \"Moneysocket\", \"protocol_version\": \"0.0.0\", "
     "\"message_class\": \"REQUEST\", \"request_uuid\": \"0811a20b-3a4a-400e-8e1b-180d43727d7b\", "
     "\"request_name\": \"REQUEST_RENDEZVOUS\", \"rendezvous_id\": "
     "\"g66d7935fb71dafa8493e8194e9eda3ed95406bd1376f71dd1f47961581d5646\"}",
     0, true, 1008},
    {"request_uuid not a uuid",
     "{\"timestamp\": 1.5, \"protocol\": \"Moneysocket\", \"protocol_version\": \"0.0.0\", "
     "\"message_class\": \"REQUEST\", \"request_uuid\": \"not-a-uuid\", "
     "\"request_name\": \"REQUEST_RENDEZVOUS\", \"rendezvous_id\": "
     "\"f66d7935fb71dafa8493e8194e9eda3ed95406bd1376f71dd1f47961581d5646\"}",
     0, true, 1008},
    {"wrong request_name",
     "{\"timestamp\": 1.5, \"protocol\": \"Moneysocket\", \"protocol_version\": \"0.0.0\", "
     "\"message_class\": \"REQUEST\", \"request_uuid\": \"0811a20b-3a4a-400e-8e1b-180d43727d7b\", "
     "\"request_name\": \"REQUEST_PING\", \"rendezvous_id\": "
     "\"f66d7935fb71dafa8493e8194e9eda3ed95406bd1376f71dd1f47961581d5646\"}",
     0, true, 1008},
    {"wrong protocol",
     "{\"timestamp\": 1.5, \"protocol\": \"Lightning\", \"protocol_version\": \"0.0.0\", "
     "\"message_class\": \"REQUEST\", \"request_uuid\": \"0811a20b-3a4a-400e-8e1b-180d43727d7b\", "
     "\"request_name\": \"REQUEST_RENDEZVOUS\", \"rendezvous_id\": "
     "\"f66d7935fb71dafa8493e8194e9eda3ed95406bd1376f71dd1f47961581d5646\"}",
     0, true, 1008},
    {"negative timestamp",
     "{\"timestamp\": -1.5, \"protocol\": \"Moneysocket\", \"protocol_version\": \"0.0.0\", "
     "\"message_class\": \"REQUEST\", \"request_uuid\": \"0811a20b-3a4a-400e-8e1b-180d43727d7b\", "
     "\"request_name\": \"REQUEST_RENDEZVOUS\", \"rendezvous_id\": "
     "\"f66d7935fb71dafa8493e8194e9eda3ed95406bd1376f71dd1f47961581d5646\"}",
     0, true, 1008},
    {"missing message_class",
     "{\"timestamp\": 1.5, \"protocol\": \"Moneysocket\", \"protocol_version\": \"0.0.0\", "
     "\"request_uuid\": \"0811a20b-3a4a-400e-8e1b-180d43727d7b\", "
     "\"request_name\": \"REQUEST_RENDEZVOUS\", \"rendezvous_id\": "
     "\"f66d7935fb71dafa8493e8194e9eda3ed95406bd1376f71dd1f47961581d5646\"}",
     0, true, 1008},
};

/* Each bad first frame closes its connection with the documented status and
 * a reason, while an established pair keeps working. */
static void test_bad_first_frames(void **state)
{
    struct relay_test *test = *state;
    struct relay_test_peer first, second;
    size_t i, bad_requests = 0;

    relay_test_pair(test, rid_two, &first, &second);
    for (i = 0; i < sizeof(bad_first_frames) / sizeof(bad_first_frames[0]); i++) {
        const struct bad_first_frame *bad = &bad_first_frames[i];
        struct ws_client_connection *connection = relay_test_connect(test);
        size_t length = bad->length ? bad->length : strlen(bad->data);

        fprintf(stderr, "  bad first frame: %s -> %d\n", bad->what, bad->close_code);
        assert_int_equal(ws_client_send(connection, bad->data, length, bad->binary), 0);
        relay_test_expect_close(connection, bad->close_code, true);
        relay_test_drop(test, connection);
        if (bad->binary)
            bad_requests++;
    }
    relay_test_exchange(&first, &second, "after garbage");
    assert_true(relay_test_wait_metric(
                    test, "relayd_connections_closed_total{reason=\"bad_request\"}",
                    (double)bad_requests, RELAY_TEST_TIMEOUT_MS) == (double)bad_requests);
    assert_true(relay_test_metric(
                    test, "relayd_connections_closed_total{reason=\"text_first_frame\"}") == 1);
}

/* Frames sent while pending are dropped and counted, never delivered. */
static void test_frames_while_pending_are_dropped(void **state)
{
    struct relay_test *test = *state;
    struct ws_client_connection *first = relay_test_connect(test);
    struct ws_client_connection *second;
    char first_uuid[37], second_uuid[37];

    relay_test_send_request(first, rid_one, first_uuid);
    relay_test_expect_notification(first, "NOTIFY_RENDEZVOUS_NOT_READY", rid_one, first_uuid);
    assert_int_equal(ws_client_send(first, "pending one", 11, true), 0);
    assert_int_equal(ws_client_send(first, "pending two", 11, true), 0);
    assert_int_equal(ws_client_send(first, "pending text", 12, false), 0);
    assert_true(relay_test_wait_metric(test, "relayd_frames_dropped_pending_total", 3,
                                       RELAY_TEST_TIMEOUT_MS) == 3);
    relay_test_expect_silence(first, 0); /* still pending, still open */

    second = relay_test_connect(test);
    relay_test_send_request(second, rid_one, second_uuid);
    relay_test_expect_notification(second, "NOTIFY_RENDEZVOUS", rid_one, second_uuid);
    relay_test_expect_notification(first, "NOTIFY_RENDEZVOUS", rid_one, first_uuid);
    assert_int_equal(ws_client_send(first, "after pairing", 13, true), 0);
    relay_test_expect_message(second, true, "after pairing", 13);
    relay_test_expect_silence(second, 100);
    assert_true(relay_test_metric(test, "relayd_frames_forwarded_total") == 1);
}

/* A pending peer that leaves frees its id: the next one waits again. */
static void test_pending_peer_leaving_frees_id(void **state)
{
    struct relay_test *test = *state;
    struct ws_client_connection *gone = relay_test_connect(test);
    struct relay_test_peer first, second;
    char uuid[37];

    relay_test_send_request(gone, rid_one, uuid);
    relay_test_expect_notification(gone, "NOTIFY_RENDEZVOUS_NOT_READY", rid_one, uuid);
    assert_true(ws_client_close(gone, 1000, "bye", RELAY_TEST_TIMEOUT_MS));
    assert_true(relay_test_wait_metric(test, "relayd_connections{state=\"pending\"}", 0,
                                       RELAY_TEST_TIMEOUT_MS) == 0);
    relay_test_pair(test, rid_one, &first, &second);
    relay_test_exchange(&first, &second, "after pending left");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_not_ready_then_pair, relay_test_setup,
                                        relay_test_teardown),
        cmocka_unit_test_setup_teardown(test_notifications_are_single_binary_frames,
                                        relay_test_setup, relay_test_teardown),
        cmocka_unit_test_setup_teardown(test_requests_in_one_turn, relay_test_setup,
                                        relay_test_teardown),
        cmocka_unit_test_setup_teardown(test_close_while_partner_streams, relay_test_setup,
                                        relay_test_teardown),
        cmocka_unit_test_setup_teardown(test_end_when_partner_leaves, relay_test_setup,
                                        relay_test_teardown),
        cmocka_unit_test_setup_teardown(test_notify_before_partner_frames, relay_test_setup,
                                        relay_test_teardown),
        cmocka_unit_test_setup_teardown(test_uppercase_rid_pairs_with_lowercase, relay_test_setup,
                                        relay_test_teardown),
        cmocka_unit_test_setup_teardown(test_captured_clients_pair, relay_test_setup,
                                        relay_test_teardown),
        cmocka_unit_test_setup_teardown(test_third_peer_refused, relay_test_setup,
                                        relay_test_teardown),
        cmocka_unit_test_setup_teardown(test_second_request_while_pending, relay_test_setup,
                                        relay_test_teardown),
        cmocka_unit_test_setup_teardown(test_repeated_request_when_paired_is_forwarded,
                                        relay_test_setup, relay_test_teardown),
        cmocka_unit_test_setup_teardown(test_bad_first_frames, relay_test_setup,
                                        relay_test_teardown),
        cmocka_unit_test_setup_teardown(test_frames_while_pending_are_dropped, relay_test_setup,
                                        relay_test_teardown),
        cmocka_unit_test_setup_teardown(test_pending_peer_leaving_frees_id, relay_test_setup,
                                        relay_test_teardown),
    };

    return cmocka_run_group_tests_name("rendezvous", tests, relay_test_group_setup,
                                       relay_test_group_teardown);
}

/*
 * test_ws_client.c - tests of the WebSocket test client library itself.
 *
 * The integration tests trust ws_client to report exactly what the relay
 * sent, so the library is checked first against a known server: the echo
 * fixture (echo_fixture.c, a child process). Also checks the Moneysocket JSON
 * helpers against the captured frames in shared/vectors/frames.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "echo_fixture.h"
#include "moneysocket_json.h"
#include "whole_file.h"
#include "ws_client.h"

#define TIMEOUT_MS 5000

struct echo_test {
    pid_t echo_pid;
    char url[64];
    struct ws_client_context *context;
};

static int echo_test_setup(void **state)
{
    static struct echo_test test;
    struct ws_client_options options = {.raise_file_limit = true};
    int port = 0;

    test.echo_pid = echo_fixture_spawn(&port);
    if (test.echo_pid < 0)
        return -1;
    snprintf(test.url, sizeof(test.url), "ws://127.0.0.1:%d/", port);
    test.context = ws_client_context_new(&options);
    if (!test.context)
        return -1;
    *state = &test;
    return 0;
}

static int echo_test_teardown(void **state)
{
    struct echo_test *test = *state;

    ws_client_context_free(test->context);
    return echo_fixture_stop(test->echo_pid) == 0 ? 0 : -1;
}

static struct ws_client_connection *connect_echo(struct echo_test *test)
{
    char error[256] = "";
    struct ws_client_connection *connection =
        ws_client_connect(test->context, test->url, TIMEOUT_MS, error, sizeof(error));

    if (!connection)
        fail_msg("connect %s: %s", test->url, error);
    assert_int_equal(ws_client_state(connection), WS_CLIENT_OPEN);
    return connection;
}

/* Fill with a pattern that depends on the message number, so a message
 * swapped, shortened or shifted shows up. */
static void fill_pattern(unsigned char *data, size_t length, uint32_t sequence)
{
    uint32_t value = sequence * 2654435761u + 1;
    size_t i;

    for (i = 0; i < length; i++) {
        value = value * 1103515245u + 12345u;
        data[i] = (unsigned char)(value >> 16);
    }
    if (length >= 4)
        memcpy(data, &sequence, 4);
}

static void expect_message(struct ws_client_connection *connection, enum ws_client_result kind,
                           const void *data, size_t length)
{
    struct ws_client_message message;

    assert_int_equal(ws_client_receive(connection, &message, TIMEOUT_MS), kind);
    assert_int_equal(message.length, length);
    if (length)
        assert_memory_equal(message.data, data, length);
    ws_client_message_release(&message);
}

static void test_echo_binary_and_text(void **state)
{
    struct ws_client_connection *connection = connect_echo(*state);
    const unsigned char binary[] = {0x00, 0xff, 0x80, 0x7f, 0x00};

    assert_int_equal(ws_client_send(connection, binary, sizeof(binary), true), 0);
    assert_int_equal(ws_client_send(connection, "hello", 5, false), 0);
    expect_message(connection, WS_CLIENT_BINARY, binary, sizeof(binary));
    expect_message(connection, WS_CLIENT_TEXT, "hello", 5);
    assert_int_equal(ws_client_messages_received(connection), 2);
    assert_int_equal(ws_client_bytes_received(connection), sizeof(binary) + 5);
    assert_int_equal(ws_client_bytes_sent(connection), sizeof(binary) + 5);
    assert_true(ws_client_close(connection, 1000, "done", TIMEOUT_MS));
    assert_int_equal(ws_client_state(connection), WS_CLIENT_DONE);
    ws_client_free(connection);
}

static void test_fragments_join(void **state)
{
    struct ws_client_connection *connection = connect_echo(*state);
    unsigned char whole[3000];
    struct ws_client_piece pieces[4] = {
        {whole, 1}, {whole + 1, 999}, {whole + 1000, 0}, {whole + 1000, 2000}};

    fill_pattern(whole, sizeof(whole), 7);
    assert_int_equal(ws_client_send_fragments(connection, pieces, 4, true), 0);
    assert_int_equal(ws_client_send_fragments(connection, pieces, 4, false), 0);
    expect_message(connection, WS_CLIENT_BINARY, whole, sizeof(whole));
    expect_message(connection, WS_CLIENT_TEXT, whole, sizeof(whole));
    assert_int_equal(ws_client_send_fragments(connection, pieces, 0, true), -1);
    ws_client_free(connection);
}

/* 1 MiB comes back in 64 KiB chunks, re-framed by the echo server. */
static void test_large_message(void **state)
{
    struct ws_client_connection *connection = connect_echo(*state);
    size_t length = 1024 * 1024;
    unsigned char *data = malloc(length);

    assert_non_null(data);
    fill_pattern(data, length, 42);
    assert_int_equal(ws_client_send(connection, data, length, true), 0);
    assert_true(ws_client_queued_bytes(connection) == length);
    expect_message(connection, WS_CLIENT_BINARY, data, length);
    assert_int_equal(ws_client_queued_bytes(connection), 0);
    free(data);
    ws_client_free(connection);
}

static void test_order_of_many_messages(void **state)
{
    struct ws_client_connection *connection = connect_echo(*state);
    unsigned char data[70000];
    uint32_t sequence;

    for (sequence = 0; sequence < 300; sequence++) {
        size_t length = 4 + (sequence * 7919u) % (sizeof(data) - 4);

        fill_pattern(data, length, sequence);
        assert_int_equal(ws_client_send(connection, data, length, true), 0);
    }
    for (sequence = 0; sequence < 300; sequence++) {
        size_t length = 4 + (sequence * 7919u) % (sizeof(data) - 4);

        fill_pattern(data, length, sequence);
        expect_message(connection, WS_CLIENT_BINARY, data, length);
    }
    ws_client_free(connection);
}

static void test_server_close_code_and_reason(void **state)
{
    struct ws_client_connection *connection = connect_echo(*state);
    struct ws_client_message message;

    assert_int_equal(ws_client_send(connection, "one", 3, true), 0);
    assert_int_equal(ws_client_send(connection, "close 1008 bad first frame", 26, false), 0);
    /* messages before the close come first */
    expect_message(connection, WS_CLIENT_BINARY, "one", 3);
    assert_int_equal(ws_client_receive(connection, &message, TIMEOUT_MS), WS_CLIENT_CLOSED);
    assert_int_equal(message.close_code, 1008);
    assert_string_equal(message.close_reason, "bad first frame");
    assert_int_equal(ws_client_state(connection), WS_CLIENT_DONE);
    /* stays closed */
    assert_int_equal(ws_client_receive(connection, &message, 10), WS_CLIENT_CLOSED);
    assert_int_equal(ws_client_send(connection, "x", 1, true), -1);
    ws_client_free(connection);
}

/* Pins the lws 4.1.6 quirk documented in ws_client.h: 1013 reads as 1002. */
static void test_close_1013_quirk(void **state)
{
    struct ws_client_connection *connection = connect_echo(*state);
    struct ws_client_message message;

    assert_int_equal(ws_client_send(connection, "close 1013 try again later", 26, false), 0);
    assert_int_equal(ws_client_receive(connection, &message, TIMEOUT_MS), WS_CLIENT_CLOSED);
    assert_int_equal(message.close_code, 1002);
    assert_string_equal(message.close_reason, "try again later");
    ws_client_free(connection);
}

static void test_receive_timeout(void **state)
{
    struct ws_client_connection *connection = connect_echo(*state);
    struct ws_client_message message;
    int64_t started = ws_client_now_ms(), elapsed;

    assert_int_equal(ws_client_receive(connection, &message, 300), WS_CLIENT_TIMEOUT);
    elapsed = ws_client_now_ms() - started;
    assert_true(elapsed >= 290 && elapsed < 1500);
    ws_client_free(connection);
}

static void test_connect_refused(void **state)
{
    struct echo_test *test = *state;
    char error[256] = "";
    int64_t started = ws_client_now_ms();

    /* port 1 on loopback: nobody listens there in a test environment */
    assert_null(
        ws_client_connect(test->context, "ws://127.0.0.1:1/", TIMEOUT_MS, error, sizeof(error)));
    assert_true(strlen(error) > 0);
    assert_true(ws_client_now_ms() - started < TIMEOUT_MS);
    assert_null(
        ws_client_connect(test->context, "http://127.0.0.1:1/", TIMEOUT_MS, error, sizeof(error)));
    assert_non_null(strstr(error, "not ws://"));
}

struct handler_count {
    uint64_t messages;
    uint64_t bytes;
    uint32_t next_sequence;
    int out_of_order;
};

static void count_message(struct ws_client_connection *connection, const unsigned char *data,
                          size_t length, bool binary, void *user)
{
    struct handler_count *count = user;
    uint32_t sequence;

    (void)connection;
    memcpy(&sequence, data, sizeof(sequence));
    if (!binary || sequence != count->next_sequence)
        count->out_of_order++;
    count->next_sequence++;
    count->messages++;
    count->bytes += length;
}

static bool all_counted(void *argument)
{
    return ((struct handler_count *)argument)->messages == 100;
}

static void test_message_handler(void **state)
{
    struct echo_test *test = *state;
    struct ws_client_connection *connection = connect_echo(test);
    struct handler_count count = {0};
    unsigned char data[5000];
    uint32_t sequence;

    ws_client_set_message_handler(connection, count_message, &count);
    for (sequence = 0; sequence < 100; sequence++) {
        fill_pattern(data, sizeof(data), sequence);
        assert_int_equal(ws_client_send(connection, data, sizeof(data), true), 0);
    }
    assert_true(ws_client_wait_until(test->context, all_counted, &count, TIMEOUT_MS));
    assert_int_equal(count.bytes, 100 * sizeof(data));
    assert_int_equal(count.out_of_order, 0);
    assert_int_equal(ws_client_pending_messages(connection), 0);
    assert_int_equal(ws_client_bytes_received(connection), 100 * sizeof(data));
    ws_client_free(connection);
}

static void test_pause_and_resume(void **state)
{
    struct echo_test *test = *state;
    struct ws_client_connection *connection = connect_echo(test);
    unsigned char data[1000];
    int i;

    ws_client_pause_reading(connection);
    for (i = 0; i < 10; i++) {
        fill_pattern(data, sizeof(data), (uint32_t)i);
        assert_int_equal(ws_client_send(connection, data, sizeof(data), true), 0);
    }
    assert_true(ws_client_wait_queue_below(connection, 0, TIMEOUT_MS));
    for (i = 0; i < 20; i++)
        ws_client_service(test->context, 10);
    assert_int_equal(ws_client_messages_received(connection), 0);
    ws_client_resume_reading(connection);
    for (i = 0; i < 10; i++) {
        fill_pattern(data, sizeof(data), (uint32_t)i);
        expect_message(connection, WS_CLIENT_BINARY, data, sizeof(data));
    }
    ws_client_free(connection);
}

static void test_many_connections(void **state)
{
    struct echo_test *test = *state;
    enum { COUNT = 300 };
    struct ws_client_connection *connections[COUNT];
    size_t i;

    for (i = 0; i < COUNT; i++) {
        connections[i] = ws_client_connect_start(test->context, test->url, NULL, 0);
        assert_non_null(connections[i]);
    }
    assert_int_equal(ws_client_wait_connected(test->context, connections, COUNT, 20000), COUNT);
    for (i = 0; i < COUNT; i++)
        assert_int_equal(ws_client_send(connections[i], &i, sizeof(i), true), 0);
    for (i = 0; i < COUNT; i++)
        expect_message(connections[i], WS_CLIENT_BINARY, &i, sizeof(i));
    for (i = 0; i < COUNT; i++)
        ws_client_free(connections[i]);
}

static char *read_vector(const char *name, size_t *length)
{
    char path[512];
    char *data;

    snprintf(path, sizeof(path), "%s/vectors/frames/%s", RELAY_SHARED_DIR, name);
    data = whole_file_read(path, length);
    if (!data)
        fail_msg("cannot open %s", path);
    return data;
}

static void test_json_parses_captured_frames(void **state)
{
    struct moneysocket_message message;
    size_t length;
    char *text;

    (void)state;
    text = read_vector("relay_notify_rendezvous_end.json", &length);
    assert_int_equal(moneysocket_json_parse(text, length, &message), 0);
    assert_int_equal(message.timestamp.type, MONEYSOCKET_JSON_FLOAT);
    assert_true(message.timestamp.number > 1795596873.79 &&
                message.timestamp.number < 1795596873.80);
    assert_string_equal(message.protocol.text, "Moneysocket");
    assert_string_equal(message.protocol_version.text, "0.0.0");
    assert_string_equal(message.message_class.text, "NOTIFICATION");
    assert_string_equal(message.notification_uuid.text, "2d2a5ec8-da3e-47d9-9ed0-9a894aeaf94e");
    assert_int_equal(message.request_reference_uuid.type, MONEYSOCKET_JSON_NULL);
    assert_string_equal(message.notification_name.text, "NOTIFY_RENDEZVOUS_END");
    assert_true(moneysocket_json_is_rid(message.rendezvous_id.text));
    assert_int_equal(message.request_uuid.type, MONEYSOCKET_JSON_ABSENT);
    assert_int_equal(message.top_level_keys, 8);
    free(text);

    text = read_vector("js_request_rendezvous.json", &length);
    assert_int_equal(moneysocket_json_parse(text, length, &message), 0);
    assert_string_equal(message.request_uuid.text, "dbeb2819-c2a6-4b1f-8e9f-0f0c27b396c0");
    assert_string_equal(message.request_name.text, "REQUEST_RENDEZVOUS");
    assert_string_equal(message.message_class.text, "REQUEST");
    assert_true(moneysocket_json_is_uuid_v4(message.request_uuid.text));
    assert_int_equal(message.notification_uuid.type, MONEYSOCKET_JSON_ABSENT);
    free(text);
}

static void test_json_types_and_errors(void **state)
{
    struct moneysocket_message message;
    const char *nested = "{\"x\": {\"protocol\": \"no\"}, \"protocol\": 5, \"timestamp\": 1,"
                         " \"rendezvous_id\": [\"a\"], \"message_class\": true}  \n";

    (void)state;
    assert_int_equal(moneysocket_json_parse(nested, strlen(nested), &message), 0);
    assert_int_equal(message.protocol.type, MONEYSOCKET_JSON_INTEGER);
    assert_true(message.protocol.number == 5);
    assert_int_equal(message.timestamp.type, MONEYSOCKET_JSON_INTEGER);
    assert_int_equal(message.rendezvous_id.type, MONEYSOCKET_JSON_OTHER);
    assert_int_equal(message.message_class.type, MONEYSOCKET_JSON_OTHER);
    assert_int_equal(message.top_level_keys, 5);
    assert_int_equal(moneysocket_json_parse("{\"a\": 1} x", 10, &message), -1);
    assert_int_equal(moneysocket_json_parse("{\"a\": 1", 7, &message), -1);
    assert_int_equal(moneysocket_json_parse("hello", 5, &message), -1);
    assert_int_equal(moneysocket_json_parse("", 0, &message), -1);
}

static void test_json_builds_request(void **state)
{
    struct moneysocket_message message;
    char rid[65], uuid[37], text[512];
    size_t length;

    (void)state;
    assert_int_equal(moneysocket_json_new_rid(rid), 0);
    assert_int_equal(moneysocket_json_new_uuid(uuid), 0);
    assert_true(moneysocket_json_is_rid(rid));
    assert_true(moneysocket_json_is_uuid_v4(uuid));
    length = moneysocket_json_build_request(text, sizeof(text), rid, uuid, 1700000000.25);
    assert_true(length > 0 && length == strlen(text));
    assert_int_equal(moneysocket_json_parse(text, length, &message), 0);
    assert_string_equal(message.rendezvous_id.text, rid);
    assert_string_equal(message.request_uuid.text, uuid);
    assert_string_equal(message.request_name.text, "REQUEST_RENDEZVOUS");
    assert_string_equal(message.protocol.text, "Moneysocket");
    assert_int_equal(message.timestamp.type, MONEYSOCKET_JSON_FLOAT);
    assert_true(message.timestamp.number == 1700000000.25);
    assert_int_equal(moneysocket_json_build_request(text, 20, rid, uuid, 1.0), 0);
    assert_false(moneysocket_json_is_rid("F66D"));
    assert_false(moneysocket_json_is_uuid_v4("0811a20b-3a4a-100e-8e1b-180d43727d7b"));
}

int main(void)
{
    const struct CMUnitTest echo_tests[] = {
        cmocka_unit_test(test_echo_binary_and_text),
        cmocka_unit_test(test_fragments_join),
        cmocka_unit_test(test_large_message),
        cmocka_unit_test(test_order_of_many_messages),
        cmocka_unit_test(test_server_close_code_and_reason),
        cmocka_unit_test(test_close_1013_quirk),
        cmocka_unit_test(test_receive_timeout),
        cmocka_unit_test(test_connect_refused),
        cmocka_unit_test(test_message_handler),
        cmocka_unit_test(test_pause_and_resume),
        cmocka_unit_test(test_many_connections),
    };
    const struct CMUnitTest json_tests[] = {
        cmocka_unit_test(test_json_parses_captured_frames),
        cmocka_unit_test(test_json_types_and_errors),
        cmocka_unit_test(test_json_builds_request),
    };
    int failed =
        cmocka_run_group_tests_name("ws_client", echo_tests, echo_test_setup, echo_test_teardown);

    failed += cmocka_run_group_tests_name("moneysocket_json", json_tests, NULL, NULL);
    return failed ? 1 : 0;
}

/*
 * relay_test.c - shared steps and assertions of the integration tests (see
 * relay_test.h).
 *
 * The assertions are cmocka's, so a failing step ends the current test at
 * once and cmocka still runs relay_test_teardown(), which frees the
 * connections and stops the relay.
 */
#include "relay_test.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "whole_file.h"

struct ws_client_context *relay_test_client;

int relay_test_group_setup_with_ca(void **state, const char *ca_file)
{
    struct ws_client_options options = {.raise_file_limit = true, .ca_file = ca_file};
    const char *lws_log = getenv("RELAY_TEST_LWS_LOG"); /* lws log bitmask, for debugging */

    (void)state;
    if (lws_log)
        options.log_level = atoi(lws_log);
    /* before the client context and every relay: both inherit the limit */
    harness_raise_file_limit();
    relay_test_client = ws_client_context_new(&options);
    return relay_test_client ? 0 : -1;
}

int relay_test_group_setup(void **state)
{
    return relay_test_group_setup_with_ca(state, NULL);
}

int relay_test_group_teardown(void **state)
{
    (void)state;
    ws_client_context_free(relay_test_client);
    relay_test_client = NULL;
    return 0;
}

int relay_test_setup_no_relay(void **state)
{
    struct relay_test *test = calloc(1, sizeof(*test));

    *state = test;
    return test ? 0 : -1;
}

int relay_test_setup(void **state)
{
    struct relay_test *test;

    if (relay_test_setup_no_relay(state) < 0)
        return -1;
    test = *state;
    return harness_start_relay(&test->relay, NULL, NULL);
}

void relay_test_start(struct relay_test *test, const struct harness_config *config)
{
    assert_int_equal(harness_start_relay(&test->relay, config, NULL), 0);
}

static void relay_test_free_connections(struct relay_test *test)
{
    size_t i;

    for (i = 0; i < test->connection_count; i++)
        ws_client_free(test->connections[i]);
    test->connection_count = 0;
}

int relay_test_teardown(void **state)
{
    struct relay_test *test = *state;
    int status = 0;

    relay_test_free_connections(test);
    while (test->kept_count)
        free(test->kept[--test->kept_count]);
    if (test->relay.pid > 0) {
        status = harness_stop_relay(&test->relay, 10000);
        if (status != 0)
            fprintf(stderr, "relayd did not exit cleanly after SIGTERM: status %d\n", status);
    }
    harness_cleanup(&test->relay);
    free(test);
    return status == 0 ? 0 : -1;
}

struct ws_client_connection *relay_test_connect_url(const char *url)
{
    struct ws_client_connection *connection;
    char error[256] = "";

    connection =
        ws_client_connect(relay_test_client, url, RELAY_TEST_TIMEOUT_MS, error, sizeof(error));
    if (!connection)
        fail_msg("connecting to %s failed: %s", url, error);
    return connection;
}

struct ws_client_connection *relay_test_connect(struct relay_test *test)
{
    struct ws_client_connection *connection;

    assert_true(test->connection_count < RELAY_TEST_MAX_CONNECTIONS);
    connection = relay_test_connect_url(test->relay.url);
    test->connections[test->connection_count++] = connection;
    return connection;
}

void relay_test_drop_from(struct ws_client_connection **connections, size_t *count,
                          struct ws_client_connection *connection)
{
    size_t i;

    for (i = 0; i < *count; i++) {
        if (connections[i] == connection) {
            connections[i] = connections[--*count];
            break;
        }
    }
    ws_client_free(connection);
}

void relay_test_drop(struct relay_test *test, struct ws_client_connection *connection)
{
    relay_test_drop_from(test->connections, &test->connection_count, connection);
}

void relay_test_send_request(struct ws_client_connection *connection, const char *rid,
                             char *request_uuid)
{
    char uuid[37], text[512];
    size_t length;

    assert_int_equal(moneysocket_json_new_uuid(uuid), 0);
    length = moneysocket_json_build_request(text, sizeof(text), rid, uuid, moneysocket_json_now());
    assert_true(length > 0);
    assert_int_equal(ws_client_send(connection, text, length, true), 0);
    if (request_uuid)
        memcpy(request_uuid, uuid, sizeof(uuid));
}

static void relay_test_lowercase(char *out, const char *text, size_t out_size)
{
    size_t i;

    for (i = 0; text[i] && i + 1 < out_size; i++)
        out[i] = (char)(text[i] >= 'A' && text[i] <= 'F' ? text[i] - 'A' + 'a' : text[i]);
    out[i] = '\0';
}

static void relay_test_check_string(const struct moneysocket_json_field *field, const char *name,
                                    const char *expected)
{
    if (field->type != MONEYSOCKET_JSON_STRING)
        fail_msg("notification field %s: not a string (type %d)", name, (int)field->type);
    if (expected && strcmp(field->text, expected))
        fail_msg("notification field %s: \"%s\", expected \"%s\"", name, field->text, expected);
}

void relay_test_check_notification(const struct moneysocket_message *message, const char *name,
                                   const char *rid, const char *reference)
{
    char lower_rid[65];

    relay_test_lowercase(lower_rid, rid, sizeof(lower_rid));
    if (message->timestamp.type != MONEYSOCKET_JSON_FLOAT &&
        message->timestamp.type != MONEYSOCKET_JSON_INTEGER)
        fail_msg("notification timestamp is not a number");
    if (fabs(message->timestamp.number - moneysocket_json_now()) > 60)
        fail_msg("notification timestamp %s is not now", message->timestamp.text);
    relay_test_check_string(&message->protocol, "protocol", "Moneysocket");
    relay_test_check_string(&message->protocol_version, "protocol_version", "0.0.0");
    relay_test_check_string(&message->message_class, "message_class", "NOTIFICATION");
    relay_test_check_string(&message->notification_name, "notification_name", name);
    relay_test_check_string(&message->rendezvous_id, "rendezvous_id", lower_rid);
    relay_test_check_string(&message->notification_uuid, "notification_uuid", NULL);
    if (!moneysocket_json_is_uuid_v4(message->notification_uuid.text))
        fail_msg("notification_uuid %s is not a UUID v4", message->notification_uuid.text);
    if (!reference && message->request_reference_uuid.type != MONEYSOCKET_JSON_NULL)
        fail_msg("%s: request_reference_uuid should be null (type %d, \"%s\")", name,
                 (int)message->request_reference_uuid.type, message->request_reference_uuid.text);
    if (reference)
        relay_test_check_string(&message->request_reference_uuid, "request_reference_uuid",
                                reference);
}

size_t relay_test_copy_release(struct ws_client_message *message, char *copy, size_t size)
{
    size_t length = message->length < size - 1 ? message->length : size - 1;

    if (length)
        memcpy(copy, message->data, length);
    copy[length] = '\0';
    ws_client_message_release(message);
    return length;
}

void relay_test_receive_notification(struct ws_client_connection *connection, const char *expected,
                                     int timeout_ms, struct moneysocket_message *parsed)
{
    struct ws_client_message message;
    enum ws_client_result result;
    char copy[2048];
    size_t length;

    if (timeout_ms < 0) /* a deadline already passed: look once */
        timeout_ms = 0;
    result = ws_client_receive(connection, &message, timeout_ms);
    if (result == WS_CLIENT_CLOSED)
        fail_msg("expected %s, got close %d \"%s\"", expected, message.close_code,
                 message.close_reason);
    if (result == WS_CLIENT_TIMEOUT)
        fail_msg("expected %s, got nothing within %d ms", expected, timeout_ms);
    length = message.length;
    relay_test_copy_release(&message, copy, sizeof(copy));
    if (result != WS_CLIENT_BINARY)
        fail_msg("expected %s as a binary frame, got a text frame: %s", expected, copy);
    if (length >= sizeof(copy) || moneysocket_json_parse(copy, length, parsed) < 0)
        fail_msg("expected %s, got non-JSON (%zu bytes)", expected, length);
}

void relay_test_expect_notification(struct ws_client_connection *connection, const char *name,
                                    const char *rid, const char *reference)
{
    struct moneysocket_message parsed;

    relay_test_receive_notification(connection, name, RELAY_TEST_TIMEOUT_MS, &parsed);
    relay_test_check_notification(&parsed, name, rid, reference);
}

int64_t relay_test_expect_close_within(struct ws_client_connection *connection, int code,
                                       bool reason_required, int timeout_ms)
{
    int64_t started = ws_client_now_ms();
    struct ws_client_message message;
    enum ws_client_result result;
    char copy[201];
    size_t length;

    result = ws_client_receive(connection, &message, timeout_ms);
    if (result == WS_CLIENT_TIMEOUT)
        fail_msg("expected close %d, connection still open after %d ms", code, timeout_ms);
    if (result != WS_CLIENT_CLOSED) {
        length = message.length;
        relay_test_copy_release(&message, copy, sizeof(copy));
        fail_msg("expected close %d, got a %zu-byte message: %s", code, length, copy);
    }
    if (message.close_code != code)
        fail_msg("expected close %d, got %d \"%s\"", code, message.close_code,
                 message.close_reason);
    if (reason_required && !message.close_reason[0])
        fail_msg("close %d came without a reason", code);
    return ws_client_now_ms() - started;
}

int64_t relay_test_expect_close(struct ws_client_connection *connection, int code,
                                bool reason_required)
{
    return relay_test_expect_close_within(connection, code, reason_required, RELAY_TEST_TIMEOUT_MS);
}

void relay_test_expect_end(struct ws_client_connection *connection, const char *rid)
{
    relay_test_expect_notification(connection, "NOTIFY_RENDEZVOUS_END", rid, NULL);
    relay_test_expect_close(connection, 1000, false);
}

void relay_test_pair(struct relay_test *test, const char *rid, struct relay_test_peer *first,
                     struct relay_test_peer *second)
{
    first->connection = relay_test_connect(test);
    relay_test_send_request(first->connection, rid, first->request_uuid);
    relay_test_expect_notification(first->connection, "NOTIFY_RENDEZVOUS_NOT_READY", rid,
                                   first->request_uuid);
    second->connection = relay_test_connect(test);
    relay_test_send_request(second->connection, rid, second->request_uuid);
    relay_test_expect_notification(second->connection, "NOTIFY_RENDEZVOUS", rid,
                                   second->request_uuid);
    relay_test_expect_notification(first->connection, "NOTIFY_RENDEZVOUS", rid,
                                   first->request_uuid);
}

void relay_test_expect_message(struct ws_client_connection *connection, bool binary,
                               const void *data, size_t length)
{
    enum ws_client_result expected = binary ? WS_CLIENT_BINARY : WS_CLIENT_TEXT;
    struct ws_client_message message;
    enum ws_client_result result;
    size_t got;
    bool same;

    result = ws_client_receive(connection, &message, RELAY_TEST_TIMEOUT_MS);
    if (result == WS_CLIENT_CLOSED)
        fail_msg("expected a %zu-byte message, got close %d \"%s\"", length, message.close_code,
                 message.close_reason);
    if (result == WS_CLIENT_TIMEOUT)
        fail_msg("expected a %zu-byte message, got nothing", length);
    got = message.length;
    same = result == expected && got == length && (!length || !memcmp(message.data, data, length));
    ws_client_message_release(&message);
    if (!same)
        fail_msg("expected a %zu-byte %s message, got a different %zu-byte %s message", length,
                 binary ? "binary" : "text", got, result == WS_CLIENT_BINARY ? "binary" : "text");
}

void relay_test_expect_silence(struct ws_client_connection *connection, int milliseconds)
{
    struct ws_client_message message;
    enum ws_client_result result = ws_client_receive(connection, &message, milliseconds);
    char copy[201];
    size_t length;

    if (result == WS_CLIENT_CLOSED)
        fail_msg("expected silence, got close %d \"%s\"", message.close_code, message.close_reason);
    if (result != WS_CLIENT_TIMEOUT) {
        length = message.length;
        relay_test_copy_release(&message, copy, sizeof(copy));
        fail_msg("expected silence, got a %zu-byte message: %s", length, copy);
    }
}

void relay_test_exchange(struct relay_test_peer *first, struct relay_test_peer *second,
                         const char *tag)
{
    char forward[128], backward[128];
    int forward_length = snprintf(forward, sizeof(forward), "%s: first to second", tag);
    int backward_length = snprintf(backward, sizeof(backward), "%s: second to first", tag);

    assert_int_equal(ws_client_send(first->connection, forward, (size_t)forward_length, true), 0);
    assert_int_equal(ws_client_send(second->connection, backward, (size_t)backward_length, true),
                     0);
    relay_test_expect_message(second->connection, true, forward, (size_t)forward_length);
    relay_test_expect_message(first->connection, true, backward, (size_t)backward_length);
}

double relay_test_metric(struct relay_test *test, const char *series)
{
    char *body = NULL;
    double value = 0;
    int status = harness_admin_get(&test->relay, "/metrics", &body);

    if (status != 200)
        fail_msg("GET /metrics answered %d", status);
    int found = harness_metric_value(body, series, &value);
    free(body);
    if (found < 0)
        fail_msg("metric %s is missing from /metrics", series);
    return value;
}

double relay_test_wait_metric(struct relay_test *test, const char *series, double expected,
                              int timeout_ms)
{
    int64_t deadline = ws_client_now_ms() + timeout_ms;
    double value = relay_test_metric(test, series);

    /* keep the client loop turning: closes and pongs must flow meanwhile */
    while (value != expected && ws_client_now_ms() < deadline) {
        ws_client_service(relay_test_client, 20);
        value = relay_test_metric(test, series);
    }
    return value;
}

void relay_test_fill_payload(unsigned char *data, size_t length, uint32_t sequence, uint32_t seed)
{
    uint64_t state =
        ((uint64_t)seed << 32 | sequence) * 6364136223846793005ull + 1442695040888963407ull;
    size_t i = 0;

    /* eight bytes per step of a 64-bit LCG: cheap enough for hundreds of MiB */
    while (i < length) {
        size_t chunk = length - i < 8 ? length - i : 8;
        uint64_t bits;

        state = state * 6364136223846793005ull + 1442695040888963407ull;
        bits = state ^ (state >> 29);
        memcpy(data + i, &bits, chunk);
        i += chunk;
    }
    if (length >= 4)
        memcpy(data, &sequence, 4);
}

static int relay_test_hex_value(int character)
{
    if (character >= '0' && character <= '9')
        return character - '0';
    if (character >= 'a' && character <= 'f')
        return character - 'a' + 10;
    if (character >= 'A' && character <= 'F')
        return character - 'A' + 10;
    return -1;
}

static size_t relay_test_decode_hex(unsigned char *data, size_t length)
{
    size_t in, out = 0;
    int high = -1;

    for (in = 0; in < length; in++) {
        int value = relay_test_hex_value(data[in]);

        if (value < 0)
            continue; /* white space, the trailing newline */
        if (high < 0) {
            high = value;
        } else {
            data[out++] = (unsigned char)(high << 4 | value);
            high = -1;
        }
    }
    return out;
}

void *relay_test_keep(struct relay_test *test, void *pointer)
{
    assert_true(test->kept_count < RELAY_TEST_MAX_KEPT);
    test->kept[test->kept_count++] = pointer;
    return pointer;
}

void *relay_test_alloc(struct relay_test *test, size_t size)
{
    void *memory = calloc(1, size);

    assert_non_null(memory);
    return relay_test_keep(test, memory);
}

unsigned char *relay_test_read_vector(struct relay_test *test, const char *name, bool hex,
                                      size_t *length)
{
    char path[512];
    unsigned char *data;

    snprintf(path, sizeof(path), "%s/vectors/frames/%s", RELAY_SHARED_DIR, name);
    data = (unsigned char *)whole_file_read(path, length);
    if (!data)
        fail_msg("cannot open %s", path);
    relay_test_keep(test, data);
    if (hex) {
        *length = relay_test_decode_hex(data, *length);
        data[*length] = '\0';
    }
    return data;
}

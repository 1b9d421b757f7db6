/*
 * test_forwarding.c - what paired peers send each other arrives verbatim and
 * in order: bulk traffic both ways at once, fragmented messages, text versus
 * binary, cleartext and malformed JSON, empty messages and messages exactly
 * at the size limit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "relay_test.h"

static const char rid_bulk[] = "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0";

#define BULK_FRAMES_PER_DIRECTION 10000
#define BULK_MIN_SIZE 32
#define BULK_MAX_SIZE (64 * 1024)
#define BULK_QUEUE_LIMIT (512 * 1024)
#define BULK_DEADLINE_MS 150000

/* One direction of the bulk test: sender -> receiver. */
struct bulk_direction {
    struct ws_client_connection *sender;
    struct ws_client_connection *receiver;
    uint32_t seed;
    uint32_t sent;
    uint32_t received;
    uint64_t bytes;
    int mismatches;
    unsigned char expected[BULK_MAX_SIZE];
};

static size_t bulk_size(uint32_t sequence, uint32_t seed)
{
    uint64_t mixed = ((uint64_t)seed << 32 | sequence) * 0x9e3779b97f4a7c15ull;

    mixed ^= mixed >> 31;
    return BULK_MIN_SIZE + (size_t)(mixed % (BULK_MAX_SIZE - BULK_MIN_SIZE + 1));
}

static void bulk_check_message(struct ws_client_connection *connection, const unsigned char *data,
                               size_t length, bool binary, void *user)
{
    struct bulk_direction *direction = user;
    size_t expected_length = bulk_size(direction->received, direction->seed);

    (void)connection;
    relay_test_fill_payload(direction->expected, expected_length, direction->received,
                            direction->seed);
    if (!binary || length != expected_length || memcmp(data, direction->expected, length)) {
        if (direction->mismatches++ < 5) {
            uint32_t sequence = 0;
            memcpy(&sequence, data, length >= 4 ? 4 : 0);
            fprintf(stderr, "bulk: message %u: got %zu bytes (sequence %u), expected %zu\n",
                    direction->received, length, sequence, expected_length);
        }
    }
    direction->received++;
}

static void bulk_send_some(struct bulk_direction *direction, unsigned char *scratch)
{
    while (direction->sent < BULK_FRAMES_PER_DIRECTION &&
           ws_client_queued_bytes(direction->sender) < BULK_QUEUE_LIMIT) {
        size_t length = bulk_size(direction->sent, direction->seed);

        relay_test_fill_payload(scratch, length, direction->sent, direction->seed);
        assert_int_equal(ws_client_send(direction->sender, scratch, length, true), 0);
        direction->bytes += length;
        direction->sent++;
    }
}

static bool bulk_done(const struct bulk_direction *directions)
{
    return directions[0].received == BULK_FRAMES_PER_DIRECTION &&
           directions[1].received == BULK_FRAMES_PER_DIRECTION;
}

/* Frames of random sizes (32 B .. 64 KiB, seeded) both ways at once, each
 * checked byte for byte and in order on arrival. */
static void test_bulk_both_directions(void **state)
{
    struct relay_test *test = *state;
    struct bulk_direction *directions = relay_test_alloc(test, 2 * sizeof(*directions));
    unsigned char *scratch = relay_test_alloc(test, BULK_MAX_SIZE);
    struct relay_test_peer first, second;
    int64_t deadline = ws_client_now_ms() + BULK_DEADLINE_MS;
    int i;

    relay_test_pair(test, rid_bulk, &first, &second);
    directions[0] = (struct bulk_direction){
        .sender = first.connection, .receiver = second.connection, .seed = 1};
    directions[1] = (struct bulk_direction){
        .sender = second.connection, .receiver = first.connection, .seed = 2};
    for (i = 0; i < 2; i++)
        ws_client_set_message_handler(directions[i].receiver, bulk_check_message, &directions[i]);

    while (!bulk_done(directions) && ws_client_now_ms() < deadline) {
        bulk_send_some(&directions[0], scratch);
        bulk_send_some(&directions[1], scratch);
        ws_client_service(relay_test_client, 10);
        assert_int_equal(ws_client_state(first.connection), WS_CLIENT_OPEN);
        assert_int_equal(ws_client_state(second.connection), WS_CLIENT_OPEN);
    }
    fprintf(stderr, "  bulk: %u + %u frames, %llu + %llu bytes\n", directions[0].received,
            directions[1].received, (unsigned long long)directions[0].bytes,
            (unsigned long long)directions[1].bytes);
    assert_int_equal(directions[0].received, BULK_FRAMES_PER_DIRECTION);
    assert_int_equal(directions[1].received, BULK_FRAMES_PER_DIRECTION);
    assert_int_equal(directions[0].mismatches, 0);
    assert_int_equal(directions[1].mismatches, 0);
    assert_true(relay_test_metric(test, "relayd_frames_forwarded_total") ==
                2 * BULK_FRAMES_PER_DIRECTION);
    assert_true(relay_test_metric(test, "relayd_bytes_forwarded_total") ==
                (double)(directions[0].bytes + directions[1].bytes));
}

/* One message sent as several frames arrives as one identical message. */
static void test_fragmented_messages(void **state)
{
    struct relay_test *test = *state;
    struct relay_test_peer first, second;
    size_t whole_length = 1000 + 20000 + 5;
    unsigned char *whole = relay_test_alloc(test, whole_length);
    struct ws_client_piece binary_pieces[3] = {
        {whole, 1000}, {whole + 1000, 20000}, {whole + 21000, 5}};
    const char *text = "fragmented text message";
    struct ws_client_piece text_pieces[4] = {
        {text, 5}, {text + 5, 0}, {text + 5, 10}, {text + 15, strlen(text) - 15}};

    relay_test_fill_payload(whole, whole_length, 77, 3);
    relay_test_pair(test, rid_bulk, &first, &second);
    assert_int_equal(ws_client_send_fragments(first.connection, binary_pieces, 3, true), 0);
    assert_int_equal(ws_client_send_fragments(second.connection, text_pieces, 4, false), 0);
    relay_test_expect_message(second.connection, true, whole, whole_length);
    relay_test_expect_message(first.connection, false, text, strlen(text));
}

/* Opcodes survive; cleartext and malformed JSON and empty messages are
 * forwarded verbatim (the relay does not look inside paired traffic). */
static void test_text_binary_and_json_verbatim(void **state)
{
    struct relay_test *test = *state;
    struct relay_test_peer first, second;
    const unsigned char binary[] = {0x00, 0x01, 0xff, 0x00, 0x7b, 0x7d};
    const char *malformed = "{\"request_name\": \"REQUEST_RENDEZVOUS\", ";
    size_t notification_length;
    unsigned char *notification = relay_test_read_vector(test, "relay_notify_rendezvous_end.json",
                                                         false, &notification_length);

    relay_test_pair(test, rid_bulk, &first, &second);
    assert_int_equal(ws_client_send(first.connection, "a text frame", 12, false), 0);
    assert_int_equal(ws_client_send(first.connection, binary, sizeof(binary), true), 0);
    assert_int_equal(ws_client_send(first.connection, notification, notification_length, true), 0);
    assert_int_equal(ws_client_send(first.connection, malformed, strlen(malformed), true), 0);
    assert_int_equal(ws_client_send(first.connection, "", 0, true), 0);
    assert_int_equal(ws_client_send(first.connection, "{\"x\": 1}", 8, false), 0);
    relay_test_expect_message(second.connection, false, "a text frame", 12);
    relay_test_expect_message(second.connection, true, binary, sizeof(binary));
    relay_test_expect_message(second.connection, true, notification, notification_length);
    relay_test_expect_message(second.connection, true, malformed, strlen(malformed));
    relay_test_expect_message(second.connection, true, "", 0);
    relay_test_expect_message(second.connection, false, "{\"x\": 1}", 8);
    relay_test_expect_silence(first.connection, 100);
}

/* Exactly max_message_bytes (default 1 MiB) is allowed, whole or in
 * fragments. */
static void test_message_at_default_limit(void **state)
{
    struct relay_test *test = *state;
    struct relay_test_peer first, second;
    size_t length = 1024 * 1024, i;
    unsigned char *data = relay_test_alloc(test, length);
    struct ws_client_piece pieces[16];

    relay_test_fill_payload(data, length, 5, 5);
    for (i = 0; i < 16; i++)
        pieces[i] = (struct ws_client_piece){data + i * (length / 16), length / 16};
    relay_test_pair(test, rid_bulk, &first, &second);
    assert_int_equal(ws_client_send(first.connection, data, length, true), 0);
    assert_int_equal(ws_client_send_fragments(second.connection, pieces, 16, true), 0);
    relay_test_expect_message(second.connection, true, data, length);
    relay_test_expect_message(first.connection, true, data, length);
    relay_test_exchange(&first, &second, "after 1 MiB");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bulk_both_directions, relay_test_setup,
                                        relay_test_teardown),
        cmocka_unit_test_setup_teardown(test_fragmented_messages, relay_test_setup,
                                        relay_test_teardown),
        cmocka_unit_test_setup_teardown(test_text_binary_and_json_verbatim, relay_test_setup,
                                        relay_test_teardown),
        cmocka_unit_test_setup_teardown(test_message_at_default_limit, relay_test_setup,
                                        relay_test_teardown),
    };

    return cmocka_run_group_tests_name("forwarding", tests, relay_test_group_setup,
                                       relay_test_group_teardown);
}

/*
 * test_core_link_frame.c - the link frame codec (cluster/link_frame.c).
 *
 * Every frame type goes through encode -> decode and comes back equal, and
 * every rule of cluster/link-protocol.md that concerns a single frame is
 * broken once to see link_frame_decode refuse it: short messages, unknown
 * types, length bytes, flags, stream ids, payload sizes and the content of
 * OPEN, CREDIT and GOAWAY. Batches (several frames in one message) are
 * walked frame by frame, and each way of breaking one is refused: empty,
 * truncated header, a length overrunning the message, MORE on the last
 * frame, length bytes on the last frame, a bad frame inside. HELLO, AUTH
 * and AUTH_OK round trips are in test_core_link_auth.c, which builds them;
 * the dialer's WebSocket codec is in test_core_link_websocket.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "link_frame.h"

#define MAX_DATA 1024

static const char test_rid[] = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
static const char test_uuid[] = "3F2504E0-4F89-41D3-9A0C-0305E82C3301";

/* Decode and require success. */
static struct link_frame decode_ok(const uint8_t *message, size_t length)
{
    struct link_frame frame;
    const char *error = NULL;

    int rc = link_frame_decode(message, length, MAX_DATA, &frame, &error);
    if (rc != 0)
        fail_msg("decode failed: %s", error);
    return frame;
}

/* Decode and require failure with an explanation. */
static void assert_decode_fails(const uint8_t *message, size_t length)
{
    struct link_frame frame;
    const char *error = NULL;

    assert_int_equal(link_frame_decode(message, length, MAX_DATA, &frame, &error), -1);
    assert_non_null(error);
}

/* A message with the given header and a payload of payload_length bytes
 * of filler. */
static size_t make_message(uint8_t *out, uint8_t type, uint8_t flags, uint32_t stream_id,
                           size_t payload_length, uint8_t filler)
{
    size_t header = link_frame_write_header(out, type, flags, stream_id);
    memset(out + header, filler, payload_length);
    return header + payload_length;
}

static void test_header_layout(void **state)
{
    uint8_t out[LINK_FRAME_HEADER_LENGTH];

    assert_int_equal(link_frame_write_header(out, LINK_FRAME_DATA, 3, 0x01020304u), 8);
    static const uint8_t expected[] = {8, 3, 0, 0, 1, 2, 3, 4};
    assert_memory_equal(out, expected, sizeof(expected));
}

static void test_big_endian_helpers(void **state)
{
    uint8_t out[8];

    link_put_u64(out, 0x0102030405060708ull);
    static const uint8_t expected[] = {1, 2, 3, 4, 5, 6, 7, 8};
    assert_memory_equal(out, expected, 8);
    assert_true(link_get_u64(out) == 0x0102030405060708ull);
    assert_int_equal(link_get_u32(out), 0x01020304u);
    assert_int_equal(link_get_u16(out + 6), 0x0708);
    link_put_u32(out, 0xfffffffeu);
    assert_int_equal(link_get_u32(out), 0xfffffffeu);
}

static void test_open_round_trip(void **state)
{
    uint8_t out[LINK_FRAME_CONTROL_MAX_LENGTH];
    char rid[RID_HEX_LENGTH + 1], uuid[UUID_TEXT_LENGTH + 1];

    size_t length = link_frame_encode_open(out, 7, test_rid, test_uuid);
    assert_int_equal(length, 8 + 100);
    struct link_frame frame = decode_ok(out, length);
    assert_int_equal(frame.type, LINK_FRAME_OPEN);
    assert_int_equal(frame.stream_id, 7);
    assert_int_equal(link_frame_decode_open(&frame, rid, uuid), 0);
    assert_string_equal(rid, test_rid);
    assert_string_equal(uuid, test_uuid);
}

static void test_empty_replies_round_trip(void **state)
{
    static const uint8_t types[] = {LINK_FRAME_PAIRED, LINK_FRAME_NOT_FOUND, LINK_FRAME_BUSY};
    uint8_t out[LINK_FRAME_HEADER_LENGTH];

    for (size_t i = 0; i < sizeof(types); i++) {
        size_t length = link_frame_write_header(out, types[i], 0, 0xffffffffu);
        struct link_frame frame = decode_ok(out, length);
        assert_int_equal(frame.type, types[i]);
        assert_int_equal(frame.stream_id, 0xffffffffu);
        assert_int_equal(frame.length, 0);
    }
}

static void test_data_round_trip(void **state)
{
    uint8_t out[LINK_FRAME_HEADER_LENGTH + MAX_DATA];
    static const uint8_t flag_sets[] = {0, LINK_DATA_FIRST, LINK_DATA_FINAL,
                                        LINK_DATA_FIRST | LINK_DATA_FINAL,
                                        LINK_DATA_FIRST | LINK_DATA_FINAL | LINK_DATA_TEXT};

    for (size_t i = 0; i < sizeof(flag_sets); i++) {
        size_t header = link_frame_write_header(out, LINK_FRAME_DATA, flag_sets[i], 42);
        memcpy(out + header, "\x00\xffpayload", 9);
        struct link_frame frame = decode_ok(out, header + 9);
        assert_int_equal(frame.flags, flag_sets[i]);
        assert_int_equal(frame.stream_id, 42);
        assert_int_equal(frame.length, 9);
        assert_memory_equal(frame.payload, "\x00\xffpayload", 9);
    }
    /* An empty client message is one empty FIRST|FINAL piece. */
    size_t length = make_message(out, LINK_FRAME_DATA, LINK_DATA_FIRST | LINK_DATA_FINAL, 1, 0, 0);
    assert_int_equal(decode_ok(out, length).length, 0);
    /* Exactly max_data is fine. */
    length = make_message(out, LINK_FRAME_DATA, 0, 1, MAX_DATA, 0xab);
    assert_int_equal(decode_ok(out, length).length, MAX_DATA);
}

static void test_credit_round_trip(void **state)
{
    uint8_t out[LINK_FRAME_CONTROL_MAX_LENGTH];
    uint32_t bytes = 0;

    size_t length = link_frame_encode_credit(out, 3, 0x80000001u);
    assert_int_equal(length, 12);
    struct link_frame frame = decode_ok(out, length);
    assert_int_equal(frame.type, LINK_FRAME_CREDIT);
    assert_int_equal(link_frame_decode_credit(&frame, &bytes), 0);
    assert_int_equal(bytes, 0x80000001u);
}

static void test_close_round_trip(void **state)
{
    uint8_t out[LINK_FRAME_CONTROL_MAX_LENGTH];
    static const uint16_t codes[] = {LINK_CLOSE_NORMAL, LINK_CLOSE_PROTOCOL_ERROR,
                                     LINK_CLOSE_SHUTTING_DOWN, LINK_CLOSE_INTERNAL_ERROR, 0xffff};

    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        uint16_t code = 1234;
        size_t length = link_frame_encode_close(out, 9, codes[i]);
        assert_int_equal(length, 10);
        struct link_frame frame = decode_ok(out, length);
        assert_int_equal(frame.type, LINK_FRAME_CLOSE);
        assert_int_equal(link_frame_decode_close(&frame, &code), 0);
        assert_int_equal(code, codes[i]);
    }
}

static void test_ping_pong_round_trip(void **state)
{
    uint8_t out[LINK_FRAME_CONTROL_MAX_LENGTH];
    uint64_t opaque = 0;

    size_t length = link_frame_encode_ping(out, 0xdeadbeefcafef00dull);
    assert_int_equal(length, 16);
    struct link_frame frame = decode_ok(out, length);
    assert_int_equal(frame.type, LINK_FRAME_PING);
    assert_int_equal(frame.stream_id, 0);
    assert_int_equal(link_frame_decode_ping(&frame, &opaque), 0);
    assert_true(opaque == 0xdeadbeefcafef00dull);

    length = link_frame_encode_pong(out, opaque);
    frame = decode_ok(out, length);
    assert_int_equal(frame.type, LINK_FRAME_PONG);
    opaque = 0;
    assert_int_equal(link_frame_decode_ping(&frame, &opaque), 0);
    assert_true(opaque == 0xdeadbeefcafef00dull);
}

static void test_goaway_round_trip(void **state)
{
    uint8_t out[LINK_FRAME_CONTROL_MAX_LENGTH];
    char text[LINK_GOAWAY_TEXT_MAX_LENGTH + 1];
    uint16_t code = 0;

    size_t length =
        link_frame_encode_goaway(out, LINK_CLOSE_SHUTTING_DOWN, "bye \xc3\xa9t\xc3\xa9");
    struct link_frame frame = decode_ok(out, length);
    assert_int_equal(frame.type, LINK_FRAME_GOAWAY);
    assert_int_equal(link_frame_decode_goaway(&frame, &code, text), 0);
    assert_int_equal(code, LINK_CLOSE_SHUTTING_DOWN);
    assert_string_equal(text, "bye \xc3\xa9t\xc3\xa9");

    length = link_frame_encode_goaway(out, LINK_CLOSE_AUTH_FAILED, NULL);
    assert_int_equal(length, 10);
    frame = decode_ok(out, length);
    assert_int_equal(link_frame_decode_goaway(&frame, &code, text), 0);
    assert_int_equal(code, LINK_CLOSE_AUTH_FAILED);
    assert_string_equal(text, "");
}

/* A long text is cut to 123 bytes, never inside a character: 122 ASCII
 * bytes then a 2-byte character would end at 124, so it is left out. */
static void test_goaway_cuts_on_character_boundary(void **state)
{
    uint8_t out[LINK_FRAME_CONTROL_MAX_LENGTH];
    char text[200], decoded[LINK_GOAWAY_TEXT_MAX_LENGTH + 1];
    uint16_t code;

    memset(text, 'a', 122);
    strcpy(text + 122, "\xc3\xa9 and more");
    size_t length = link_frame_encode_goaway(out, 0, text);
    assert_int_equal(length, 8 + 2 + 122);
    struct link_frame frame = decode_ok(out, length);
    assert_int_equal(link_frame_decode_goaway(&frame, &code, decoded), 0);
    assert_int_equal(strlen(decoded), 122);

    memset(text, 'b', 150);
    text[150] = '\0';
    assert_int_equal(link_frame_encode_goaway(out, 0, text), 8 + 2 + 123);
}

static void test_encoders_refuse_invalid_arguments(void **state)
{
    uint8_t out[LINK_FRAME_CONTROL_MAX_LENGTH];
    char upper_rid[RID_HEX_LENGTH + 1];

    strcpy(upper_rid, test_rid);
    upper_rid[20] = 'A';
    assert_int_equal(link_frame_encode_open(out, 0, test_rid, test_uuid), 0);
    assert_int_equal(link_frame_encode_open(out, 1, upper_rid, test_uuid), 0);
    assert_int_equal(link_frame_encode_open(out, 1, "abc", test_uuid), 0);
    assert_int_equal(link_frame_encode_open(out, 1, test_rid, "not-a-uuid"), 0);
    assert_int_equal(link_frame_encode_open(out, 1, test_rid, NULL), 0);
    assert_int_equal(link_frame_encode_credit(out, 0, 10), 0);
    assert_int_equal(link_frame_encode_credit(out, 1, 0), 0);
    assert_int_equal(link_frame_encode_close(out, 0, 0), 0);
    assert_int_equal(link_frame_encode_goaway(out, 0, "bad \xff byte"), 0);
    assert_int_equal(link_frame_encode_goaway(out, 0, "\xed\xa0\x80 surrogate"), 0);
}

static void test_short_messages(void **state)
{
    uint8_t message[LINK_FRAME_HEADER_LENGTH] = {LINK_FRAME_PAIRED, 0, 0, 0, 0, 0, 0, 1};

    for (size_t length = 0; length < LINK_FRAME_HEADER_LENGTH; length++)
        assert_decode_fails(message, length);
    decode_ok(message, sizeof(message));
}

static void test_unknown_types(void **state)
{
    static const uint8_t types[] = {0, 14, 100, 255};
    uint8_t message[LINK_FRAME_HEADER_LENGTH];

    for (size_t i = 0; i < sizeof(types); i++) {
        link_frame_write_header(message, types[i], 0, 1);
        assert_decode_fails(message, sizeof(message));
        link_frame_write_header(message, types[i], 0, 0);
        assert_decode_fails(message, sizeof(message));
    }
}

/* Bytes 2-3 (the length) are zero on a message's last frame. */
static void test_length_bytes_zero_on_last_frame(void **state)
{
    uint8_t message[LINK_FRAME_HEADER_LENGTH + 8];
    size_t length = link_frame_encode_ping(message, 1);

    message[2] = 1;
    assert_decode_fails(message, length);
    message[2] = 0;
    message[3] = 0x80;
    assert_decode_fails(message, length);
    message[3] = 8; /* even the right length: the last frame carries none */
    assert_decode_fails(message, length);
    message[3] = 0;
    decode_ok(message, length);
    message[1] = LINK_FRAME_MORE; /* nothing follows */
    assert_decode_fails(message, length);
}

static void test_flags_only_on_data(void **state)
{
    uint8_t message[LINK_FRAME_CONTROL_MAX_LENGTH];

    for (uint8_t type = LINK_FRAME_HELLO; type <= LINK_FRAME_GOAWAY; type++) {
        if (type == LINK_FRAME_DATA)
            continue;
        link_frame_write_header(message, type, LINK_DATA_FIRST, 1);
        assert_decode_fails(message, LINK_FRAME_HEADER_LENGTH);
    }
    size_t length = link_frame_encode_close(message, 1, 0);
    message[1] = 0x80;
    assert_decode_fails(message, length);
    /* DATA: only the three defined bits. */
    length = make_message(message, LINK_FRAME_DATA, 0x08, 1, 4, 'x');
    assert_decode_fails(message, length);
    length = make_message(message, LINK_FRAME_DATA, 0xff, 1, 4, 'x');
    assert_decode_fails(message, length);
}

/* Each frame type with a payload valid for it, for the stream id tests. */
static size_t make_valid_payload(uint8_t *out, uint8_t type, uint32_t stream_id)
{
    switch (type) {
    case LINK_FRAME_HELLO:
        out[8] = LINK_VERSION; /* one-character node id "a" */
        out[9] = 1;
        out[10] = 'a';
        return make_message(out, type, 0, stream_id, 0, 0) + 1 + 1 + 1 + 8 + 32;
    case LINK_FRAME_AUTH:
        out[8] = 1;
        out[9] = 'a';
        return make_message(out, type, 0, stream_id, 0, 0) + 1 + 1 + 8 + 32 + 32;
    case LINK_FRAME_AUTH_OK:
        return make_message(out, type, 0, stream_id, 32, 0);
    case LINK_FRAME_OPEN:
        link_frame_encode_open(out, 1, test_rid, test_uuid);
        return link_frame_write_header(out, type, 0, stream_id) + 100;
    case LINK_FRAME_CREDIT:
        return make_message(out, type, 0, stream_id, 4, 1);
    case LINK_FRAME_CLOSE:
        return make_message(out, type, 0, stream_id, 2, 0);
    case LINK_FRAME_PING:
    case LINK_FRAME_PONG:
        return make_message(out, type, 0, stream_id, 8, 0);
    case LINK_FRAME_GOAWAY:
        return make_message(out, type, 0, stream_id, 5, 'g');
    default:
        return make_message(out, type, 0, stream_id, 0, 0);
    }
}

static bool is_stream_type(uint8_t type)
{
    return type >= LINK_FRAME_OPEN && type <= LINK_FRAME_CLOSE;
}

static void test_stream_id_rules(void **state)
{
    uint8_t message[LINK_FRAME_CONTROL_MAX_LENGTH];

    for (uint8_t type = LINK_FRAME_HELLO; type <= LINK_FRAME_GOAWAY; type++) {
        memset(message, 0, sizeof(message));
        uint32_t good = is_stream_type(type) ? 5 : 0;
        uint32_t bad = is_stream_type(type) ? 0 : 5;
        size_t length = make_valid_payload(message, type, good);
        assert_int_equal(decode_ok(message, length).type, type);
        length = make_valid_payload(message, type, bad);
        assert_decode_fails(message, length);
    }
}

static void test_fixed_payload_sizes(void **state)
{
    static const struct {
        uint8_t type;
        uint32_t stream_id;
        size_t size;
    } cases[] = {
        {LINK_FRAME_AUTH_OK, 0, 32},  {LINK_FRAME_OPEN, 1, 100}, {LINK_FRAME_PAIRED, 1, 0},
        {LINK_FRAME_NOT_FOUND, 1, 0}, {LINK_FRAME_BUSY, 1, 0},   {LINK_FRAME_CREDIT, 1, 4},
        {LINK_FRAME_CLOSE, 1, 2},     {LINK_FRAME_PING, 0, 8},   {LINK_FRAME_PONG, 0, 8},
    };
    uint8_t message[LINK_FRAME_CONTROL_MAX_LENGTH];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t size = cases[i].size;
        size_t length = make_message(message, cases[i].type, 0, cases[i].stream_id, size + 1, 1);
        assert_decode_fails(message, length);
        if (size > 0) {
            length = make_message(message, cases[i].type, 0, cases[i].stream_id, size - 1, 1);
            assert_decode_fails(message, length);
        }
    }
}

static void test_hello_and_auth_sizes(void **state)
{
    uint8_t message[LINK_FRAME_CONTROL_MAX_LENGTH + 16];
    size_t length;

    /* HELLO: version, id length, id, epoch, nonce. */
    memset(message, 0, sizeof(message));
    length = make_valid_payload(message, LINK_FRAME_HELLO, 0);
    decode_ok(message, length);
    assert_decode_fails(message, length - 1);
    assert_decode_fails(message, length + 1);
    message[9] = 0; /* id length 0 */
    assert_decode_fails(message, length - 1);
    message[9] = 65; /* id length past the limit */
    assert_decode_fails(message, length + 64);
    message[9] = 64; /* the limit itself */
    decode_ok(message, length + 63);
    assert_decode_fails(message, 9); /* no id length byte at all */

    /* AUTH: id length, id, epoch, nonce, MAC. */
    memset(message, 0, sizeof(message));
    length = make_valid_payload(message, LINK_FRAME_AUTH, 0);
    decode_ok(message, length);
    assert_decode_fails(message, length - 1);
    assert_decode_fails(message, length + 1);
    message[8] = 0;
    assert_decode_fails(message, length - 1);
    message[8] = 64;
    decode_ok(message, length + 63);
    assert_int_equal(length + 63, LINK_FRAME_CONTROL_MAX_LENGTH);
    assert_decode_fails(message, 8);
}

static void test_oversize_data(void **state)
{
    static uint8_t message[LINK_FRAME_HEADER_LENGTH + MAX_DATA + 1];
    struct link_frame frame;
    const char *error = NULL;

    size_t length = make_message(message, LINK_FRAME_DATA, LINK_DATA_FIRST, 1, MAX_DATA + 1, 0);
    assert_decode_fails(message, length);
    /* The limit is the caller's. */
    assert_int_equal(link_frame_decode(message, length, MAX_DATA + 1, &frame, &error), 0);
    assert_int_equal(link_frame_decode(message, 9, 0, &frame, &error), -1);
    assert_int_equal(link_frame_decode(message, 8, 0, &frame, &error), 0);
}

static void test_open_content(void **state)
{
    uint8_t message[LINK_FRAME_CONTROL_MAX_LENGTH];
    size_t length = link_frame_encode_open(message, 1, test_rid, test_uuid);

    message[8] = 'A'; /* the rid must already be lowercase */
    assert_decode_fails(message, length);
    message[8] = 'g';
    assert_decode_fails(message, length);
    message[8] = '0';
    decode_ok(message, length);
    message[8 + 64 + 8] = 'x'; /* the uuid's first dash */
    assert_decode_fails(message, length);
    message[8 + 64 + 8] = '-';
    message[8 + 64] = 'z';
    assert_decode_fails(message, length);
}

static void test_zero_credit(void **state)
{
    uint8_t message[LINK_FRAME_CONTROL_MAX_LENGTH];
    size_t length = make_message(message, LINK_FRAME_CREDIT, 0, 1, 4, 0);

    assert_decode_fails(message, length);
    message[11] = 1;
    decode_ok(message, length);
}

static void test_goaway_content(void **state)
{
    uint8_t message[LINK_FRAME_CONTROL_MAX_LENGTH];
    size_t length;

    length = make_message(message, LINK_FRAME_GOAWAY, 0, 0, 2 + 123, 'x');
    decode_ok(message, length);
    length = make_message(message, LINK_FRAME_GOAWAY, 0, 0, 2 + 124, 'x');
    assert_decode_fails(message, length);
    length = make_message(message, LINK_FRAME_GOAWAY, 0, 0, 1, 0);
    assert_decode_fails(message, length);

    static const char *bad_texts[] = {"\xff",         "\xc3",         "\xc0\xaf",
                                      "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                                      "nul\0inside"};
    static const size_t bad_lengths[] = {1, 1, 2, 3, 3, 4, 10};
    for (size_t i = 0; i < sizeof(bad_lengths) / sizeof(bad_lengths[0]); i++) {
        length = make_message(message, LINK_FRAME_GOAWAY, 0, 0, 2, 0);
        memcpy(message + length, bad_texts[i], bad_lengths[i]);
        assert_decode_fails(message, length + bad_lengths[i]);
    }
    length = make_message(message, LINK_FRAME_GOAWAY, 0, 0, 2, 0);
    memcpy(message + length, "\xf0\x9f\x98\x80", 4);
    decode_ok(message, length + 4);
}

static void test_payload_readers_check_type(void **state)
{
    uint8_t message[LINK_FRAME_CONTROL_MAX_LENGTH];
    char rid[RID_HEX_LENGTH + 1], uuid[UUID_TEXT_LENGTH + 1];
    char text[LINK_GOAWAY_TEXT_MAX_LENGTH + 1];
    uint32_t bytes;
    uint16_t code;
    uint64_t opaque;

    size_t length = link_frame_encode_close(message, 1, 0);
    struct link_frame frame = decode_ok(message, length);
    assert_int_equal(link_frame_decode_open(&frame, rid, uuid), -1);
    assert_int_equal(link_frame_decode_credit(&frame, &bytes), -1);
    assert_int_equal(link_frame_decode_ping(&frame, &opaque), -1);
    assert_int_equal(link_frame_decode_goaway(&frame, &code, text), -1);
    length = link_frame_encode_ping(message, 1);
    frame = decode_ok(message, length);
    assert_int_equal(link_frame_decode_close(&frame, &code), -1);
}

static void test_direction_table(void **state)
{
    assert_true(link_frame_allowed_from(LINK_FRAME_HELLO, false));
    assert_false(link_frame_allowed_from(LINK_FRAME_HELLO, true));
    assert_true(link_frame_allowed_from(LINK_FRAME_AUTH, true));
    assert_false(link_frame_allowed_from(LINK_FRAME_AUTH, false));
    assert_false(link_frame_allowed_from(LINK_FRAME_AUTH_OK, true));
    assert_true(link_frame_allowed_from(LINK_FRAME_OPEN, true));
    assert_false(link_frame_allowed_from(LINK_FRAME_OPEN, false));
    for (uint8_t type = LINK_FRAME_PAIRED; type <= LINK_FRAME_BUSY; type++) {
        assert_true(link_frame_allowed_from(type, false));
        assert_false(link_frame_allowed_from(type, true));
    }
    for (uint8_t type = LINK_FRAME_DATA; type <= LINK_FRAME_GOAWAY; type++) {
        assert_true(link_frame_allowed_from(type, false));
        assert_true(link_frame_allowed_from(type, true));
    }
    assert_false(link_frame_allowed_from(0, true));
    assert_false(link_frame_allowed_from(14, false));
}

static void test_type_names(void **state)
{
    assert_string_equal(link_frame_type_name(LINK_FRAME_HELLO), "HELLO");
    assert_string_equal(link_frame_type_name(LINK_FRAME_NOT_FOUND), "NOT_FOUND");
    assert_string_equal(link_frame_type_name(LINK_FRAME_GOAWAY), "GOAWAY");
    assert_string_equal(link_frame_type_name(0), "UNKNOWN");
    assert_string_equal(link_frame_type_name(200), "UNKNOWN");
}

/* --- batches ---------------------------------------------------------------- */

/* Append a frame to a batch under construction: the previous last frame
 * (at *last) gets MORE and its length, as the sender does. */
static size_t batch_append(uint8_t *message, size_t length, size_t *last, const uint8_t *frame,
                           size_t frame_length)
{
    if (length > 0)
        assert_int_equal(
            link_frame_set_more(message + *last, length - *last - LINK_FRAME_HEADER_LENGTH), 0);
    memcpy(message + length, frame, frame_length);
    *last = length;
    return length + frame_length;
}

/* PING, DATA, PAIRED (empty payload, in the middle) and CREDIT in one
 * message. */
static size_t build_batch(uint8_t *message)
{
    uint8_t frame[LINK_FRAME_HEADER_LENGTH + 16];
    size_t length = 0, last = 0, frame_length;

    frame_length = link_frame_encode_ping(frame, 0x0102030405060708ull);
    length = batch_append(message, length, &last, frame, frame_length);
    frame_length = make_message(frame, LINK_FRAME_DATA, LINK_DATA_FIRST, 3, 5, 'd');
    length = batch_append(message, length, &last, frame, frame_length);
    frame_length = link_frame_write_header(frame, LINK_FRAME_PAIRED, 0, 4);
    length = batch_append(message, length, &last, frame, frame_length);
    frame_length = link_frame_encode_credit(frame, 3, 4096);
    return batch_append(message, length, &last, frame, frame_length);
}

static void test_batch_of_several_frames(void **state)
{
    uint8_t message[128];
    size_t length = build_batch(message);
    struct link_batch batch;
    struct link_frame frame;
    const char *error = NULL;
    uint64_t opaque;
    uint32_t credit;

    assert_int_equal(length, 16 + 13 + 8 + 12);
    /* MORE and the length on all frames but the last */
    assert_int_equal(message[1], LINK_FRAME_MORE);
    assert_int_equal(link_get_u16(message + 2), 8);
    assert_int_equal(message[16 + 1], LINK_FRAME_MORE | LINK_DATA_FIRST);
    assert_int_equal(link_get_u16(message + 16 + 2), 5);
    assert_int_equal(message[29 + 1], LINK_FRAME_MORE);
    assert_int_equal(link_get_u16(message + 29 + 2), 0);
    assert_int_equal(message[37 + 1], 0);
    assert_int_equal(link_get_u16(message + 37 + 2), 0);

    assert_int_equal(link_batch_check(message, length, MAX_DATA, &error), 0);
    link_batch_start(&batch, message, length, MAX_DATA);
    assert_int_equal(link_batch_next(&batch, &frame, &error), 1);
    assert_int_equal(frame.type, LINK_FRAME_PING);
    assert_int_equal(frame.flags, 0); /* MORE is framing, not a flag of the frame */
    assert_int_equal(link_frame_decode_ping(&frame, &opaque), 0);
    assert_true(opaque == 0x0102030405060708ull);
    assert_int_equal(link_batch_next(&batch, &frame, &error), 1);
    assert_int_equal(frame.type, LINK_FRAME_DATA);
    assert_int_equal(frame.flags, LINK_DATA_FIRST);
    assert_int_equal(frame.stream_id, 3);
    assert_int_equal(frame.length, 5);
    assert_memory_equal(frame.payload, "ddddd", 5);
    assert_int_equal(link_batch_next(&batch, &frame, &error), 1);
    assert_int_equal(frame.type, LINK_FRAME_PAIRED);
    assert_int_equal(frame.length, 0);
    assert_int_equal(link_batch_next(&batch, &frame, &error), 1);
    assert_int_equal(link_frame_decode_credit(&frame, &credit), 0);
    assert_int_equal(credit, 4096);
    assert_int_equal(link_batch_next(&batch, &frame, &error), 0);
    assert_int_equal(link_batch_next(&batch, &frame, &error), 0);
}

/* A one-frame message is laid out as in relayd-link.1. */
static void test_batch_of_one_frame(void **state)
{
    uint8_t message[LINK_FRAME_HEADER_LENGTH + 4];
    size_t length = link_frame_encode_credit(message, 7, 65536);
    static const uint8_t expected[] = {9, 0, 0, 0, 0, 0, 0, 7, 0, 1, 0, 0};
    struct link_batch batch;
    struct link_frame frame;

    assert_memory_equal(message, expected, sizeof(expected));
    link_batch_start(&batch, message, length, MAX_DATA);
    assert_int_equal(link_batch_next(&batch, &frame, NULL), 1);
    assert_int_equal(frame.type, LINK_FRAME_CREDIT);
    assert_int_equal(link_batch_next(&batch, &frame, NULL), 0);
}

static void assert_batch_fails(const uint8_t *message, size_t length, const char *what)
{
    const char *error = NULL;

    if (link_batch_check(message, length, MAX_DATA, &error) != -1)
        fail_msg("%s: accepted", what);
    assert_non_null(error);
}

static void test_batch_malformed(void **state)
{
    uint8_t message[128] = {0}, frame[LINK_FRAME_HEADER_LENGTH + 8];
    size_t length, last = 0;

    assert_batch_fails(message, 0, "empty message");
    /* a MORE frame, then 3 bytes: a truncated header */
    size_t frame_length = link_frame_encode_ping(frame, 1);
    length = batch_append(message, 0, &last, frame, frame_length);
    link_frame_set_more(message, 8);
    memset(message + length, 0, 3);
    assert_batch_fails(message, length + 3, "truncated frame header");
    /* MORE with a length past the end */
    link_put_u16(message + 2, 9);
    assert_batch_fails(message, length, "length overrunning the message");
    link_put_u16(message + 2, 0xffff);
    assert_batch_fails(message, length, "length overrunning the message");
    /* MORE on the last frame: the message ends right after it */
    link_put_u16(message + 2, 8);
    assert_batch_fails(message, length, "MORE on the last frame");
    /* length bytes on the last frame */
    length = build_batch(message);
    link_put_u16(message + 37 + 2, 4);
    assert_batch_fails(message, length, "length on the last frame");
    /* a frame inside that breaks a single-frame rule: zero CREDIT */
    length = build_batch(message);
    memset(message + 37 + 8, 0, 4);
    assert_batch_fails(message, length, "zero CREDIT inside");
    /* ... and one in the middle: a DATA length beyond max_data */
    length = build_batch(message);
    struct link_batch batch;
    struct link_frame decoded;
    link_batch_start(&batch, message, length, 4); /* the DATA frame carries 5 */
    assert_int_equal(link_batch_next(&batch, &decoded, NULL), 1);
    assert_int_equal(link_batch_next(&batch, &decoded, NULL), -1);
    assert_int_equal(link_batch_next(&batch, &decoded, NULL), -1); /* stays refused */
    /* an unknown type inside */
    length = build_batch(message);
    message[16] = 99;
    assert_batch_fails(message, length, "unknown type inside");
}

static void test_set_more_bounds(void **state)
{
    uint8_t header[LINK_FRAME_HEADER_LENGTH];

    link_frame_write_header(header, LINK_FRAME_DATA, LINK_DATA_FINAL, 1);
    assert_int_equal(link_frame_set_more(header, 65536), -1);
    assert_int_equal(header[1], LINK_DATA_FINAL);
    assert_int_equal(link_frame_set_more(header, 65535), 0);
    assert_int_equal(header[1], LINK_FRAME_MORE | LINK_DATA_FINAL);
    assert_int_equal(link_get_u16(header + 2), 65535);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_layout),
        cmocka_unit_test(test_big_endian_helpers),
        cmocka_unit_test(test_open_round_trip),
        cmocka_unit_test(test_empty_replies_round_trip),
        cmocka_unit_test(test_data_round_trip),
        cmocka_unit_test(test_credit_round_trip),
        cmocka_unit_test(test_close_round_trip),
        cmocka_unit_test(test_ping_pong_round_trip),
        cmocka_unit_test(test_goaway_round_trip),
        cmocka_unit_test(test_goaway_cuts_on_character_boundary),
        cmocka_unit_test(test_encoders_refuse_invalid_arguments),
        cmocka_unit_test(test_short_messages),
        cmocka_unit_test(test_unknown_types),
        cmocka_unit_test(test_length_bytes_zero_on_last_frame),
        cmocka_unit_test(test_flags_only_on_data),
        cmocka_unit_test(test_stream_id_rules),
        cmocka_unit_test(test_fixed_payload_sizes),
        cmocka_unit_test(test_hello_and_auth_sizes),
        cmocka_unit_test(test_oversize_data),
        cmocka_unit_test(test_open_content),
        cmocka_unit_test(test_zero_credit),
        cmocka_unit_test(test_goaway_content),
        cmocka_unit_test(test_payload_readers_check_type),
        cmocka_unit_test(test_direction_table),
        cmocka_unit_test(test_type_names),
        cmocka_unit_test(test_batch_of_several_frames),
        cmocka_unit_test(test_batch_of_one_frame),
        cmocka_unit_test(test_batch_malformed),
        cmocka_unit_test(test_set_more_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

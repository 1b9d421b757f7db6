/*
 * test_protocol_notification.c - unit tests for node/notification.c and
 * node/uuid.c.
 *
 * Clients validate the notifications they receive (protocol-v0.md: the
 * notification_uuid must parse as a UUID, request_reference_uuid must be
 * present, null or a UUID, rendezvous_id 64 hex digits), so every
 * notification built here is parsed back with LEJP, the way a client would
 * read it, and each field is checked. The layout is also compared byte for
 * byte with the NOT_READY captured from the original Python relay, apart from
 * the values that differ by nature (timestamp, notification_uuid).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libwebsockets.h>

#include "relay/protocol.h"

#define FRAMES_DIR RELAY_SHARED_DIR "/vectors/frames/"

#define TEST_UUID "0811a20b-3a4a-400e-8e1b-180d43727d7b"
#define TEST_RID "f66d7935fb71dafa8493e8194e9eda3ed95406bd1376f71dd1f47961581d5646"
#define TEST_RID_UPPER "F66D7935FB71DAFA8493E8194E9EDA3ED95406BD1376F71DD1F47961581D5646"

#define PARSED_FIELDS_MAX 16
#define PARSED_VALUE_MAX 128

enum parsed_type { PARSED_STRING, PARSED_NUMBER, PARSED_NULL, PARSED_OTHER };

/* One top-level field of a parsed notification. */
struct parsed_field {
    char key[PARSED_VALUE_MAX];
    enum parsed_type type;
    char value[PARSED_VALUE_MAX];
};

struct parsed_message {
    struct parsed_field fields[PARSED_FIELDS_MAX];
    size_t count;
    bool nested; /* saw anything below the top level */
};

/* ---- Reading a notification back with LEJP -------------------------------- */

static void parsed_set_value(struct parsed_message *message, enum parsed_type type,
                             const char *value, size_t length)
{
    assert_true(message->count > 0);
    struct parsed_field *field = &message->fields[message->count - 1];
    assert_true(length < sizeof(field->value));
    field->type = type;
    memcpy(field->value, value, length);
    field->value[length] = '\0';
}

static signed char parsed_callback(struct lejp_ctx *ctx, char reason)
{
    struct parsed_message *message = ctx->user;

    switch (reason) {
    case LEJPCB_PAIR_NAME:
        if (ctx->sp != 0) {
            message->nested = true;
            return 0;
        }
        assert_true(message->count < PARSED_FIELDS_MAX);
        assert_true(strlen(ctx->path) < PARSED_VALUE_MAX);
        strcpy(message->fields[message->count].key, ctx->path);
        message->fields[message->count].type = PARSED_OTHER;
        message->count++;
        return 0;
    case LEJPCB_VAL_STR_CHUNK:
        fail_msg("a notification value longer than a chunk");
        return 1;
    case LEJPCB_VAL_STR_END:
        if (ctx->sp == 1)
            parsed_set_value(message, PARSED_STRING, ctx->buf, ctx->npos);
        return 0;
    case LEJPCB_VAL_NUM_INT:
    case LEJPCB_VAL_NUM_FLOAT:
        if (ctx->sp == 0)
            parsed_set_value(message, PARSED_NUMBER, ctx->buf, ctx->npos);
        return 0;
    case LEJPCB_VAL_NULL:
        if (ctx->sp == 0)
            parsed_set_value(message, PARSED_NULL, "", 0);
        return 0;
    default:
        return 0;
    }
}

static void parse_notification(const char *json, size_t length, struct parsed_message *message)
{
    struct lejp_ctx ctx;

    memset(message, 0, sizeof(*message));
    lejp_construct(&ctx, parsed_callback, message, NULL, 0);
    int result = lejp_parse(&ctx, (const unsigned char *)json, (int)length);
    lejp_destruct(&ctx);
    /* Complete, with no byte left over. */
    assert_int_equal(result, 0);
    assert_false(message->nested);
}

static const struct parsed_field *parsed_find(const struct parsed_message *message, const char *key)
{
    const struct parsed_field *found = NULL;
    for (size_t index = 0; index < message->count; index++) {
        if (strcmp(message->fields[index].key, key) == 0) {
            assert_null(found); /* no duplicate keys */
            found = &message->fields[index];
        }
    }
    return found;
}

static void assert_string_field(const struct parsed_message *message, const char *key,
                                const char *value)
{
    const struct parsed_field *field = parsed_find(message, key);
    assert_non_null(field);
    assert_int_equal(field->type, PARSED_STRING);
    assert_string_equal(field->value, value);
}

static bool is_lowercase_hex(const char *text, size_t length)
{
    for (size_t index = 0; index < length; index++) {
        char character = text[index];
        if (!((character >= '0' && character <= '9') || (character >= 'a' && character <= 'f')))
            return false;
    }
    return true;
}

static void assert_uuid_v4(const char *text)
{
    assert_int_equal(strlen(text), UUID_TEXT_LENGTH);
    assert_true(uuid_text_is_valid(text, strlen(text)));
    assert_int_equal(text[14], '4');
    assert_non_null(strchr("89ab", text[19]));
    for (size_t index = 0; index < UUID_TEXT_LENGTH; index++)
        if (text[index] != '-')
            assert_true(is_lowercase_hex(&text[index], 1));
}

/* The checks a client makes, and the fixed values of the protocol. */
static void check_notification(const char *json, size_t length, const char *name,
                               const char *reference, double now)
{
    static const char *const order[] = {
        "timestamp",         "protocol",          "protocol_version",
        "message_class",     "notification_uuid", "request_reference_uuid",
        "notification_name", "rendezvous_id",
    };
    struct parsed_message message;

    assert_true(length > 0 && length < NOTIFICATION_MAX_BYTES);
    assert_int_equal(strlen(json), length);
    parse_notification(json, length, &message);

    assert_int_equal(message.count, sizeof(order) / sizeof(order[0]));
    for (size_t index = 0; index < message.count; index++)
        assert_string_equal(message.fields[index].key, order[index]);

    assert_string_field(&message, "protocol", "Moneysocket");
    assert_string_field(&message, "protocol_version", "0.0.0");
    assert_string_field(&message, "message_class", "NOTIFICATION");
    assert_string_field(&message, "notification_name", name);
    assert_string_field(&message, "rendezvous_id", TEST_RID);
    assert_uuid_v4(parsed_find(&message, "notification_uuid")->value);

    const struct parsed_field *reference_field = parsed_find(&message, "request_reference_uuid");
    if (reference == NULL) {
        assert_int_equal(reference_field->type, PARSED_NULL);
    } else {
        assert_int_equal(reference_field->type, PARSED_STRING);
        assert_string_equal(reference_field->value, reference);
    }

    const struct parsed_field *timestamp = parsed_find(&message, "timestamp");
    assert_int_equal(timestamp->type, PARSED_NUMBER);
    /* Always with a fractional part, microseconds like the Python relay. */
    const char *point = strchr(timestamp->value, '.');
    assert_non_null(point);
    assert_int_equal(strlen(point + 1), 6);
    if (now > 0) {
        double value = strtod(timestamp->value, NULL);
        assert_true(value > now - 5 && value < now + 5);
    }
}

static double time_now(void)
{
    struct timespec now;
    assert_int_equal(clock_gettime(CLOCK_REALTIME, &now), 0);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

static char *read_file(const char *path, size_t *length)
{
    FILE *file = fopen(path, "rb");
    assert_non_null(file);
    assert_int_equal(fseek(file, 0, SEEK_END), 0);
    long size = ftell(file);
    assert_true(size >= 0);
    rewind(file);
    char *data = malloc((size_t)size + 1);
    assert_non_null(data);
    assert_int_equal(fread(data, 1, (size_t)size, file), (size_t)size);
    fclose(file);
    data[size] = '\0';
    *length = (size_t)size;
    return data;
}

/* Replace the value after "key": (up to the next ',' or '}') with a marker,
 * so layouts can be compared apart from the values that differ by nature. */
static void mask_value(char *json, const char *key, const char *marker)
{
    char pattern[64];
    snprintf(pattern, sizeof(pattern), "\"%s\": ", key);
    char *start = strstr(json, pattern);
    assert_non_null(start);
    start += strlen(pattern);
    char *end = start + strcspn(start, ",}");
    size_t marker_length = strlen(marker);
    memmove(start + marker_length, end, strlen(end) + 1);
    memcpy(start, marker, marker_length);
}

/* ---- Tests ------------------------------------------------------------------ */

static void test_build_each_kind(void **state)
{
    (void)state;
    char json[NOTIFICATION_MAX_BYTES];
    size_t length;

    length = notification_build(json, sizeof(json), NOTIFY_NOT_READY, TEST_RID, TEST_UUID);
    check_notification(json, length, "NOTIFY_RENDEZVOUS_NOT_READY", TEST_UUID, time_now());

    length = notification_build(json, sizeof(json), NOTIFY_RENDEZVOUS, TEST_RID, TEST_UUID);
    check_notification(json, length, "NOTIFY_RENDEZVOUS", TEST_UUID, time_now());

    length = notification_build(json, sizeof(json), NOTIFY_END, TEST_RID, NULL);
    check_notification(json, length, "NOTIFY_RENDEZVOUS_END", NULL, time_now());
}

static void test_end_reference_is_always_null(void **state)
{
    (void)state;
    char json[NOTIFICATION_MAX_BYTES];

    size_t length = notification_build(json, sizeof(json), NOTIFY_END, TEST_RID, TEST_UUID);
    check_notification(json, length, "NOTIFY_RENDEZVOUS_END", NULL, time_now());
    assert_non_null(strstr(json, "\"request_reference_uuid\": null,"));
}

static void test_null_reference_when_no_request(void **state)
{
    (void)state;
    char json[NOTIFICATION_MAX_BYTES];

    size_t length = notification_build(json, sizeof(json), NOTIFY_NOT_READY, TEST_RID, NULL);
    check_notification(json, length, "NOTIFY_RENDEZVOUS_NOT_READY", NULL, time_now());
}

static void test_reference_kept_as_sent(void **state)
{
    (void)state;
    static const char upper_uuid[] = "0811A20B-3A4A-400E-8E1B-180D43727D7B";
    char json[NOTIFICATION_MAX_BYTES];

    size_t length = notification_build(json, sizeof(json), NOTIFY_RENDEZVOUS, TEST_RID, upper_uuid);
    check_notification(json, length, "NOTIFY_RENDEZVOUS", upper_uuid, time_now());
}

static void test_uppercase_rid_written_lowercase(void **state)
{
    (void)state;
    char json[NOTIFICATION_MAX_BYTES];

    size_t length =
        notification_build(json, sizeof(json), NOTIFY_RENDEZVOUS, TEST_RID_UPPER, TEST_UUID);
    check_notification(json, length, "NOTIFY_RENDEZVOUS", TEST_UUID, time_now());
}

static void test_notification_uuids_differ(void **state)
{
    (void)state;
    char first[NOTIFICATION_MAX_BYTES];
    char second[NOTIFICATION_MAX_BYTES];
    struct parsed_message first_message;
    struct parsed_message second_message;

    size_t first_length =
        notification_build_at(first, sizeof(first), NOTIFY_RENDEZVOUS, TEST_RID, TEST_UUID, 1.5);
    size_t second_length =
        notification_build_at(second, sizeof(second), NOTIFY_RENDEZVOUS, TEST_RID, TEST_UUID, 1.5);
    parse_notification(first, first_length, &first_message);
    parse_notification(second, second_length, &second_message);
    assert_string_not_equal(parsed_find(&first_message, "notification_uuid")->value,
                            parsed_find(&second_message, "notification_uuid")->value);
}

/* Same layout as the Python relay's NOT_READY, byte for byte, apart from the
 * timestamp and the notification_uuid. */
static void test_layout_matches_capture(void **state)
{
    (void)state;
    char json[NOTIFICATION_MAX_BYTES];
    size_t capture_length;
    char *capture = read_file(FRAMES_DIR "relay_notify_rendezvous_not_ready.json", &capture_length);

    size_t length = notification_build_at(json, sizeof(json), NOTIFY_NOT_READY, TEST_RID, TEST_UUID,
                                          1795596873.7175167);
    check_notification(json, length, "NOTIFY_RENDEZVOUS_NOT_READY", TEST_UUID, 0);
    assert_non_null(strstr(json, "\"timestamp\": 1795596873.717517,"));

    /* The capture references this very request uuid and rid. */
    assert_non_null(strstr(capture, "\"request_reference_uuid\": \"" TEST_UUID "\""));
    assert_non_null(strstr(capture, "\"rendezvous_id\": \"" TEST_RID "\""));
    mask_value(capture, "timestamp", "T");
    mask_value(capture, "notification_uuid", "U");
    mask_value(json, "timestamp", "T");
    mask_value(json, "notification_uuid", "U");
    assert_string_equal(json, capture);
    free(capture);
}

static void test_timestamp_formatting(void **state)
{
    (void)state;
    char json[NOTIFICATION_MAX_BYTES];

    assert_true(notification_build_at(json, sizeof(json), NOTIFY_END, TEST_RID, NULL, 1795596873));
    assert_non_null(strstr(json, "\"timestamp\": 1795596873.000000,"));
    assert_true(notification_build_at(json, sizeof(json), NOTIFY_END, TEST_RID, NULL, 0));
    assert_non_null(strstr(json, "\"timestamp\": 0.000000,"));
    /* Rounding up to a whole second carries into the seconds. */
    assert_true(notification_build_at(json, sizeof(json), NOTIFY_END, TEST_RID, NULL, 41.9999999));
    assert_non_null(strstr(json, "\"timestamp\": 42.000000,"));
    assert_true(notification_build_at(json, sizeof(json), NOTIFY_END, TEST_RID, NULL, 2.25));
    assert_non_null(strstr(json, "\"timestamp\": 2.250000,"));
}

static void test_invalid_input_gives_zero(void **state)
{
    (void)state;
    char json[NOTIFICATION_MAX_BYTES];
    static const char *const bad_rids[] = {
        "",
        "f66d7935fb71dafa8493e8194e9eda3ed95406bd1376f71dd1f47961581d564",
        TEST_RID "0",
        "g66d7935fb71dafa8493e8194e9eda3ed95406bd1376f71dd1f47961581d5646",
        "f66d7935fb71dafa8493e8194e9eda3ed95406bd1376f71dd1f47961581d564\"",
    };
    static const char *const bad_uuids[] = {
        "",
        "0811a20b-3a4a-400e-8e1b-180d43727d7",
        TEST_UUID "0",
        "0811a20b-3a4a-400e-8e1b-180d43727d7\"",
        "0811a20b_3a4a-400e-8e1b-180d43727d7b",
    };

    for (size_t index = 0; index < sizeof(bad_rids) / sizeof(bad_rids[0]); index++)
        assert_int_equal(
            notification_build(json, sizeof(json), NOTIFY_NOT_READY, bad_rids[index], TEST_UUID),
            0);
    assert_int_equal(notification_build(json, sizeof(json), NOTIFY_NOT_READY, NULL, TEST_UUID), 0);
    for (size_t index = 0; index < sizeof(bad_uuids) / sizeof(bad_uuids[0]); index++)
        assert_int_equal(
            notification_build(json, sizeof(json), NOTIFY_RENDEZVOUS, TEST_RID, bad_uuids[index]),
            0);
    assert_int_equal(
        notification_build(json, sizeof(json), (enum notification_kind)3, TEST_RID, TEST_UUID), 0);
    assert_int_equal(notification_build_at(json, sizeof(json), NOTIFY_END, TEST_RID, NULL, -1), 0);
    assert_int_equal(notification_build_at(json, sizeof(json), NOTIFY_END, TEST_RID, NULL, NAN), 0);
    assert_int_equal(
        notification_build_at(json, sizeof(json), NOTIFY_END, TEST_RID, NULL, INFINITY), 0);
}

static void test_small_capacity_gives_zero(void **state)
{
    (void)state;
    char json[NOTIFICATION_MAX_BYTES];

    size_t length =
        notification_build_at(json, sizeof(json), NOTIFY_NOT_READY, TEST_RID, TEST_UUID, 1.0);
    assert_true(length > 0);
    /* The output and its terminator must fit: one byte short fails. */
    assert_int_equal(
        notification_build_at(json, length, NOTIFY_NOT_READY, TEST_RID, TEST_UUID, 1.0), 0);
    assert_int_equal(
        notification_build_at(json, length + 1, NOTIFY_NOT_READY, TEST_RID, TEST_UUID, 1.0),
        length);
    assert_int_equal(json[length], '\0');
    assert_int_equal(notification_build_at(json, 10, NOTIFY_NOT_READY, TEST_RID, TEST_UUID, 1.0),
                     0);
    assert_int_equal(notification_build_at(json, 0, NOTIFY_NOT_READY, TEST_RID, TEST_UUID, 1.0), 0);
    assert_int_equal(notification_build(NULL, 0, NOTIFY_END, TEST_RID, NULL), 0);
}

static void test_longest_output_fits(void **state)
{
    (void)state;
    char json[2 * NOTIFICATION_MAX_BYTES];

    /* The longest name, a reference, and the largest accepted timestamp. */
    size_t length = notification_build_at(json, sizeof(json), NOTIFY_NOT_READY, TEST_RID, TEST_UUID,
                                          999999999999.9);
    assert_true(length > 0);
    assert_true(length < NOTIFICATION_MAX_BYTES);
    check_notification(json, length, "NOTIFY_RENDEZVOUS_NOT_READY", TEST_UUID, 0);
    assert_int_equal(
        notification_build_at(json, sizeof(json), NOTIFY_NOT_READY, TEST_RID, TEST_UUID, 1e12), 0);
}

static void test_uuid_generate(void **state)
{
    (void)state;
    static const char variant_digits[] = "89ab";
    char previous[UUID_TEXT_LENGTH + 1] = "";
    unsigned variants[4] = {0};

    for (int round = 0; round < 1000; round++) {
        char uuid[UUID_TEXT_LENGTH + 1];
        assert_int_equal(uuid_v4_generate(uuid), 0);
        assert_uuid_v4(uuid);
        assert_string_not_equal(uuid, previous);
        variants[strchr(variant_digits, uuid[19]) - variant_digits]++;
        strcpy(previous, uuid);
    }
    /* All four variant digits occur: the bits around them are random. */
    for (int index = 0; index < 4; index++)
        assert_true(variants[index] > 0);
}

static void test_uuid_text_is_valid(void **state)
{
    (void)state;
    assert_true(uuid_text_is_valid(TEST_UUID, UUID_TEXT_LENGTH));
    assert_true(uuid_text_is_valid("0811A20B-3A4A-400E-8E1B-180D43727D7B", UUID_TEXT_LENGTH));
    assert_true(uuid_text_is_valid("00000000-0000-0000-0000-000000000000", UUID_TEXT_LENGTH));
    /* Only the given length is read. */
    assert_true(uuid_text_is_valid(TEST_UUID "junk", UUID_TEXT_LENGTH));
    assert_false(uuid_text_is_valid(TEST_UUID, UUID_TEXT_LENGTH - 1));
    assert_false(uuid_text_is_valid(TEST_UUID "0", UUID_TEXT_LENGTH + 1));
    assert_false(uuid_text_is_valid("0811a20b3a4a-400e-8e1b-180d43727d7b0", UUID_TEXT_LENGTH));
    assert_false(uuid_text_is_valid("0811a20b-3a4a-400e-8e1b-180d43727d7g", UUID_TEXT_LENGTH));
    assert_false(uuid_text_is_valid("0811a20b-3a4a-400e-8e1b+180d43727d7b", UUID_TEXT_LENGTH));
    assert_false(uuid_text_is_valid(NULL, UUID_TEXT_LENGTH));
    assert_false(uuid_text_is_valid("", 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_each_kind),
        cmocka_unit_test(test_end_reference_is_always_null),
        cmocka_unit_test(test_null_reference_when_no_request),
        cmocka_unit_test(test_reference_kept_as_sent),
        cmocka_unit_test(test_uppercase_rid_written_lowercase),
        cmocka_unit_test(test_notification_uuids_differ),
        cmocka_unit_test(test_layout_matches_capture),
        cmocka_unit_test(test_timestamp_formatting),
        cmocka_unit_test(test_invalid_input_gives_zero),
        cmocka_unit_test(test_small_capacity_gives_zero),
        cmocka_unit_test(test_longest_output_fits),
        cmocka_unit_test(test_uuid_generate),
        cmocka_unit_test(test_uuid_text_is_valid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

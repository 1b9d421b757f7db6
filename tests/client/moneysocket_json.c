/*
 * moneysocket_json.c - parse and build rendezvous messages for tests.
 *
 * Parsing runs libwebsockets' LEJP over the message once; LEJP reports each
 * value with its path, and we keep the values of the known top-level keys
 * with their JSON type. Nested values never match: a
 * path only counts when it is exactly a known key.
 */
#include "moneysocket_json.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <libwebsockets.h>

/* Order matches moneysocket_json_field_for_path(). */
static const char *const message_paths[] = {
    "timestamp",         "protocol",          "protocol_version",
    "message_class",     "notification_uuid", "request_reference_uuid",
    "notification_name", "rendezvous_id",     "request_uuid",
    "request_name",
};

static struct moneysocket_json_field *
moneysocket_json_field_for_path(struct moneysocket_message *message, int path_index)
{
    struct moneysocket_json_field *fields[] = {
        &message->timestamp,         &message->protocol,          &message->protocol_version,
        &message->message_class,     &message->notification_uuid, &message->request_reference_uuid,
        &message->notification_name, &message->rendezvous_id,     &message->request_uuid,
        &message->request_name,
    };

    if (path_index < 0 || path_index >= (int)LWS_ARRAY_SIZE(fields))
        return NULL;
    return fields[path_index];
}

static void moneysocket_json_field_append_text(struct moneysocket_json_field *field,
                                               const char *text, size_t length)
{
    size_t used = strlen(field->text);
    size_t room = MONEYSOCKET_JSON_TEXT_MAX - used;

    if (length > room) {
        length = room;
        field->truncated = true;
    }
    memcpy(field->text + used, text, length);
    field->text[used + length] = '\0';
}

/* The value LEJP reports sits directly under a known top-level key: its
 * path is exactly that key (nested values have "." or "[]" in theirs; an
 * array's start is reported as "key[]"). */
static struct moneysocket_json_field *moneysocket_json_parse_current_field(struct lejp_ctx *context,
                                                                           char reason)
{
    size_t length = strlen(context->path), i;

    if (reason == LEJPCB_ARRAY_START && length >= 2 && !strcmp(context->path + length - 2, "[]"))
        length -= 2;
    for (i = 0; i < LWS_ARRAY_SIZE(message_paths); i++)
        if (strlen(message_paths[i]) == length && !strncmp(context->path, message_paths[i], length))
            return moneysocket_json_field_for_path(context->user, (int)i);
    return NULL;
}

static void moneysocket_json_parse_number(struct moneysocket_json_field *field, const char *text,
                                          bool is_float)
{
    field->type = is_float ? MONEYSOCKET_JSON_FLOAT : MONEYSOCKET_JSON_INTEGER;
    field->text[0] = '\0';
    moneysocket_json_field_append_text(field, text, strlen(text));
    field->number = strtod(text, NULL);
}

static signed char moneysocket_json_parse_callback(struct lejp_ctx *context, char reason)
{
    struct moneysocket_message *message = context->user;
    struct moneysocket_json_field *field;

    if (reason == LEJPCB_PAIR_NAME && !strchr(context->path, '.') && !strchr(context->path, '['))
        message->top_level_keys++;
    field = moneysocket_json_parse_current_field(context, reason);
    if (!field)
        return 0;
    switch (reason) {
    case LEJPCB_VAL_STR_START:
        field->type = MONEYSOCKET_JSON_STRING;
        field->text[0] = '\0';
        field->truncated = false;
        break;
    case LEJPCB_VAL_STR_CHUNK:
    case LEJPCB_VAL_STR_END:
        moneysocket_json_field_append_text(field, context->buf, context->npos);
        break;
    case LEJPCB_VAL_NUM_INT:
        moneysocket_json_parse_number(field, context->buf, false);
        break;
    case LEJPCB_VAL_NUM_FLOAT:
        moneysocket_json_parse_number(field, context->buf, true);
        break;
    case LEJPCB_VAL_NULL:
        field->type = MONEYSOCKET_JSON_NULL;
        break;
    case LEJPCB_VAL_TRUE:
    case LEJPCB_VAL_FALSE:
    case LEJPCB_OBJECT_START:
    case LEJPCB_ARRAY_START:
        field->type = MONEYSOCKET_JSON_OTHER;
        break;
    default:
        break;
    }
    return 0;
}

static bool moneysocket_json_text_is_blank(const unsigned char *text, size_t length)
{
    size_t i;

    for (i = 0; i < length; i++)
        if (!isspace(text[i]))
            return false;
    return true;
}

int moneysocket_json_parse(const void *data, size_t length, struct moneysocket_message *message)
{
    const unsigned char *bytes = data;
    struct lejp_ctx context;
    int result;

    memset(message, 0, sizeof(*message));
    if (length > 1024 * 1024)
        return -1; /* lejp_parse takes an int length */
    lejp_construct(&context, moneysocket_json_parse_callback, message, message_paths,
                   LWS_ARRAY_SIZE(message_paths));
    result = lejp_parse(&context, bytes, (int)length);
    lejp_destruct(&context);
    /* complete: result is how many bytes followed the object */
    if (result < 0 || !moneysocket_json_text_is_blank(bytes + length - result, (size_t)result))
        return -1;
    return 0;
}

size_t moneysocket_json_build_request(char *out, size_t out_size, const char *rid,
                                      const char *request_uuid, double timestamp)
{
    int length = snprintf(out, out_size,
                          "{\"timestamp\": %.7f, \"protocol\": \"Moneysocket\", "
                          "\"protocol_version\": \"0.0.0\", \"message_class\": \"REQUEST\", "
                          "\"request_uuid\": \"%s\", \"request_name\": \"REQUEST_RENDEZVOUS\", "
                          "\"rendezvous_id\": \"%s\"}",
                          timestamp, request_uuid, rid);

    if (length < 0 || (size_t)length >= out_size)
        return 0;
    return (size_t)length;
}

static int moneysocket_json_random_fill(unsigned char *bytes, size_t length)
{
    return getrandom(bytes, length, 0) == (ssize_t)length ? 0 : -1;
}

/* Two lowercase hex digits per byte (no printf: relay-bench formats an id
 * per connection). Returns the end. */
static char *moneysocket_json_hex(char *out, const unsigned char *bytes, size_t count)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < count; i++) {
        *out++ = digits[bytes[i] >> 4];
        *out++ = digits[bytes[i] & 0x0f];
    }
    return out;
}

void moneysocket_json_format_uuid(unsigned char bytes[16], char *out)
{
    static const unsigned char groups[] = {4, 2, 2, 2, 6}; /* 8-4-4-4-12 digits */
    const unsigned char *from = bytes;

    bytes[6] = (unsigned char)((bytes[6] & 0x0f) | 0x40); /* version 4 */
    bytes[8] = (unsigned char)((bytes[8] & 0x3f) | 0x80); /* variant 10xx */
    for (size_t group = 0; group < sizeof(groups); group++) {
        if (group > 0)
            *out++ = '-';
        out = moneysocket_json_hex(out, from, groups[group]);
        from += groups[group];
    }
    *out = '\0';
}

void moneysocket_json_format_rid(const unsigned char bytes[32], char *out)
{
    *moneysocket_json_hex(out, bytes, 32) = '\0';
}

int moneysocket_json_new_uuid(char *out)
{
    unsigned char bytes[16];

    if (moneysocket_json_random_fill(bytes, sizeof(bytes)) < 0)
        return -1;
    moneysocket_json_format_uuid(bytes, out);
    return 0;
}

int moneysocket_json_new_rid(char *out)
{
    unsigned char bytes[32];

    if (moneysocket_json_random_fill(bytes, sizeof(bytes)) < 0)
        return -1;
    moneysocket_json_format_rid(bytes, out);
    return 0;
}

bool moneysocket_json_is_uuid_v4(const char *text)
{
    size_t i;

    if (strlen(text) != 36)
        return false;
    for (i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;

        if (dash ? text[i] != '-' : !isxdigit((unsigned char)text[i]))
            return false;
    }
    return text[14] == '4' && strchr("89abAB", text[19]) != NULL;
}

bool moneysocket_json_is_rid(const char *text)
{
    size_t i;

    if (strlen(text) != 64)
        return false;
    for (i = 0; i < 64; i++)
        if (!strchr("0123456789abcdef", text[i]))
            return false;
    return true;
}

double moneysocket_json_now(void)
{
    struct timespec now;

    clock_gettime(CLOCK_REALTIME, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

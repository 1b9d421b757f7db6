/*
 * notification.c - the three cleartext messages the relay ever sends.
 *
 * NOTIFY_RENDEZVOUS_NOT_READY, NOTIFY_RENDEZVOUS and NOTIFY_RENDEZVOUS_END
 * (shared/docs/protocol-v0.md) are the only cleartext frames a relay may
 * send: the browser client rejects any other cleartext message. The session
 * code (session.c) builds them here and queues the bytes as one binary frame.
 *
 * The output copies the original Python relay byte for byte in field order
 * and separators (json.dumps: ", " and ": "), see
 * shared/vectors/frames/relay_notify_rendezvous_*.json. Clients parse rather
 * than compare, but keeping the layout identical removes one question when
 * comparing captures of the two relays.
 *
 * Nothing here escapes JSON: every value written is either a fixed text, a
 * number, or hex/UUID text that is validated first, so no character that
 * would need escaping can reach the output.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "relay/protocol.h"

#define NOTIFICATION_MICROSECONDS_PER_SECOND 1000000L

/* Timestamps at or beyond this (about the year 33658) are refused: they are
 * certainly a bug, and the bound keeps the whole-second part within a long
 * long and the output well under NOTIFICATION_MAX_BYTES. */
#define NOTIFICATION_TIMESTAMP_LIMIT 1e12

/* A timestamp as whole seconds and microseconds, printed as "%lld.%06ld".
 * Printing integers rather than a double with "%f" always gives a fractional
 * part (a whole second prints as "….000000") and does not depend on the
 * locale's decimal point. */
struct notification_time {
    long long seconds;
    long microseconds;
};

static const char *const notification_names[] = {
    [NOTIFY_NOT_READY] = "NOTIFY_RENDEZVOUS_NOT_READY",
    [NOTIFY_RENDEZVOUS] = "NOTIFY_RENDEZVOUS",
    [NOTIFY_END] = "NOTIFY_RENDEZVOUS_END",
};

static bool notification_is_hex_digit(char character)
{
    return (character >= '0' && character <= '9') || (character >= 'a' && character <= 'f') ||
           (character >= 'A' && character <= 'F');
}

/* Copy a rid of exactly 64 hex digits (any case, NUL-terminated) into out in
 * lowercase: ids always go back to clients in lowercase. Reads at most 65
 * bytes of rid, so a missing terminator cannot run away. */
static bool notification_copy_rid(char out[RID_HEX_LENGTH + 1], const char *rid)
{
    if (rid == NULL || strnlen(rid, RID_HEX_LENGTH + 1) != RID_HEX_LENGTH)
        return false;
    for (size_t index = 0; index < RID_HEX_LENGTH; index++) {
        char character = rid[index];
        if (!notification_is_hex_digit(character))
            return false;
        out[index] =
            (character >= 'A' && character <= 'F') ? (char)(character - 'A' + 'a') : character;
    }
    out[RID_HEX_LENGTH] = '\0';
    return true;
}

static bool notification_uuid_is_valid(const char *request_uuid)
{
    return uuid_text_is_valid(request_uuid, strnlen(request_uuid, UUID_TEXT_LENGTH + 1));
}

static bool notification_split_timestamp(double timestamp, struct notification_time *when)
{
    /* The negated comparison also refuses NaN. */
    if (!(timestamp >= 0 && timestamp < NOTIFICATION_TIMESTAMP_LIMIT))
        return false;
    when->seconds = (long long)timestamp;
    double fraction = timestamp - (double)when->seconds;
    when->microseconds = (long)(fraction * NOTIFICATION_MICROSECONDS_PER_SECOND + 0.5);
    /* Rounding .9999996 gives a whole second: carry it. */
    if (when->microseconds >= NOTIFICATION_MICROSECONDS_PER_SECOND) {
        when->seconds++;
        when->microseconds -= NOTIFICATION_MICROSECONDS_PER_SECOND;
    }
    return true;
}

/* Write the notification; the caller has validated every argument except the
 * capacity. request_uuid NULL writes a JSON null reference. */
static size_t notification_write(char *out, size_t cap, enum notification_kind kind,
                                 const char *rid, const char *request_uuid,
                                 const struct notification_time *when)
{
    char notification_uuid[UUID_TEXT_LENGTH + 1];
    if (uuid_v4_generate(notification_uuid) != 0)
        return 0;

    const char *quote = request_uuid != NULL ? "\"" : "";
    int length = snprintf(out, cap,
                          "{\"timestamp\": %lld.%06ld, \"protocol\": \"Moneysocket\", "
                          "\"protocol_version\": \"0.0.0\", \"message_class\": \"NOTIFICATION\", "
                          "\"notification_uuid\": \"%s\", \"request_reference_uuid\": %s%s%s, "
                          "\"notification_name\": \"%s\", \"rendezvous_id\": \"%s\"}",
                          when->seconds, when->microseconds, notification_uuid, quote,
                          request_uuid != NULL ? request_uuid : "null", quote,
                          notification_names[kind], rid);
    /* snprintf reports the untruncated length: anything that did not fit,
     * terminator included, is a failure rather than a cut-off message. */
    if (length < 0 || (size_t)length >= cap) {
        out[0] = '\0';
        return 0;
    }
    return (size_t)length;
}

static size_t notification_build_with_time(char *out, size_t cap, enum notification_kind kind,
                                           const char *rid, const char *request_uuid,
                                           const struct notification_time *when)
{
    char lowercase_rid[RID_HEX_LENGTH + 1];

    if (out == NULL || cap == 0)
        return 0;
    if ((unsigned)kind >= sizeof(notification_names) / sizeof(notification_names[0]))
        return 0;
    if (!notification_copy_rid(lowercase_rid, rid))
        return 0;
    /* END answers no request: its reference is null whatever the caller passed. */
    if (kind == NOTIFY_END)
        request_uuid = NULL;
    if (request_uuid != NULL && !notification_uuid_is_valid(request_uuid))
        return 0;
    return notification_write(out, cap, kind, lowercase_rid, request_uuid, when);
}

size_t notification_build(char *out, size_t cap, enum notification_kind kind, const char *rid,
                          const char *request_uuid)
{
    struct timespec now;
    if (clock_gettime(CLOCK_REALTIME, &now) != 0)
        return 0;
    struct notification_time when = {
        .seconds = (long long)now.tv_sec,
        .microseconds = now.tv_nsec / 1000,
    };
    return notification_build_with_time(out, cap, kind, rid, request_uuid, &when);
}

size_t notification_build_at(char *out, size_t cap, enum notification_kind kind, const char *rid,
                             const char *request_uuid, double timestamp)
{
    struct notification_time when;
    if (!notification_split_timestamp(timestamp, &when))
        return 0;
    return notification_build_with_time(out, cap, kind, rid, request_uuid, &when);
}

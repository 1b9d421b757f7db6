/*
 * moneysocket_json.h - read and write Moneysocket v0 rendezvous messages in
 * tests.
 *
 * The parser (on libwebsockets' LEJP) pulls the top-level fields of a
 * REQUEST_RENDEZVOUS or rendezvous notification into a struct, recording each
 * field's JSON type, so tests assert exact values and types instead of
 * comparing strings (clients differ in spacing and number formatting). The
 * builder writes a REQUEST_RENDEZVOUS the way py-moneysocket does.
 */
#ifndef RELAY_TEST_MONEYSOCKET_JSON_H
#define RELAY_TEST_MONEYSOCKET_JSON_H

#include <stdbool.h>
#include <stddef.h>

enum moneysocket_json_type {
    MONEYSOCKET_JSON_ABSENT = 0,
    MONEYSOCKET_JSON_STRING,
    MONEYSOCKET_JSON_INTEGER, /* a number without fraction or exponent */
    MONEYSOCKET_JSON_FLOAT,
    MONEYSOCKET_JSON_NULL,
    MONEYSOCKET_JSON_OTHER, /* true, false, object or array */
};

#define MONEYSOCKET_JSON_TEXT_MAX 127

struct moneysocket_json_field {
    enum moneysocket_json_type type;
    char text[MONEYSOCKET_JSON_TEXT_MAX + 1]; /* string value or number as written */
    bool truncated;                           /* the value was longer than text */
    double number;                            /* INTEGER and FLOAT */
};

struct moneysocket_message {
    struct moneysocket_json_field timestamp;
    struct moneysocket_json_field protocol;
    struct moneysocket_json_field protocol_version;
    struct moneysocket_json_field message_class;
    struct moneysocket_json_field notification_uuid;
    struct moneysocket_json_field request_reference_uuid;
    struct moneysocket_json_field notification_name;
    struct moneysocket_json_field rendezvous_id;
    struct moneysocket_json_field request_uuid;
    struct moneysocket_json_field request_name;
    int top_level_keys; /* every key of the outer object, known or not */
};

/* Parse one JSON object. Returns 0, or -1 when data is not exactly one JSON
 * object (optionally surrounded by white space). */
int moneysocket_json_parse(const void *data, size_t length, struct moneysocket_message *message);

/* A REQUEST_RENDEZVOUS as py-moneysocket's json.dumps writes it. Returns the
 * length written (without the NUL), or 0 if out is too small. */
size_t moneysocket_json_build_request(char *out, size_t out_size, const char *rid,
                                      const char *request_uuid, double timestamp);

/* 16 random bytes as a UUID v4 (version and variant bits set in bytes),
 * lowercase, into out[37]. */
void moneysocket_json_format_uuid(unsigned char bytes[16], char *out);

/* 32 random bytes as a rid (64 lowercase hex digits) into out[65]. */
void moneysocket_json_format_rid(const unsigned char bytes[32], char *out);

/* A fresh random UUID v4, lowercase, into out[37]. Returns 0 or -1. */
int moneysocket_json_new_uuid(char *out);

/* A fresh random rid (64 lowercase hex digits) into out[65]. Returns 0 or -1. */
int moneysocket_json_new_rid(char *out);

/* Canonical 8-4-4-4-12 lowercase or uppercase UUID whose version nibble is 4
 * and variant is 10xx. */
bool moneysocket_json_is_uuid_v4(const char *text);

/* Exactly 64 lowercase hex digits. */
bool moneysocket_json_is_rid(const char *text);

/* Seconds since the epoch on the real-time clock, with a fraction. */
double moneysocket_json_now(void);

#endif

/*
 * protocol.h - the Moneysocket v0 messages the relay reads and writes.
 *
 * The relay parses exactly one kind of message, REQUEST_RENDEZVOUS (the
 * first frame of every connection, and any frame while pending), and builds
 * exactly three: NOTIFY_RENDEZVOUS_NOT_READY, NOTIFY_RENDEZVOUS and
 * NOTIFY_RENDEZVOUS_END. See shared/docs/protocol-v0.md.
 *
 * The request parser is incremental: a message may arrive in several
 * WebSocket fragments or receive chunks, and feeding them one by one never
 * buffers the whole message (node/request_parser.c, on libwebsockets' LEJP).
 *
 * "rid" in this project always means the rendezvous id: 64 hex digits,
 * normalised to lowercase.
 */
#ifndef RELAY_PROTOCOL_H
#define RELAY_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>

#define RID_HEX_LENGTH 64
#define UUID_TEXT_LENGTH 36

/* Upper bound of any notification this relay builds (with room to spare). */
#define NOTIFICATION_MAX_BYTES 512

struct rendezvous_request {
    char request_uuid[UUID_TEXT_LENGTH + 1]; /* as the client sent it */
    char rid[RID_HEX_LENGTH + 1];            /* lowercase */
    double timestamp;
};

enum request_verdict {
    REQUEST_VALID = 0,
    REQUEST_NOT_UTF8, /* bytes are not UTF-8: close 1007 */
    REQUEST_NOT_JSON, /* not a JSON document (e.g. ciphertext): close 1008 */
    REQUEST_INVALID,  /* JSON, but not a valid REQUEST_RENDEZVOUS: close 1008 */
};

struct request_parser;

/* Allocate a parser for one message. NULL on allocation failure. */
struct request_parser *request_parser_new(void);
/* Reset for a new message (reuses the allocation). */
void request_parser_reset(struct request_parser *parser);
/* Feed the next chunk of the message. Cheap after the parser has failed. */
void request_parser_feed(struct request_parser *parser, const void *data, size_t length);
/* The message is complete: judge it. On REQUEST_VALID fills *request. On any
 * other verdict *reason (if not NULL) points at a short static text naming
 * the first problem, suitable for a close reason (under 100 bytes). */
enum request_verdict request_parser_finish(struct request_parser *parser,
                                           struct rendezvous_request *request, const char **reason);
/* After finish: whether the message named itself a REQUEST_RENDEZVOUS
 * ("request_name": "REQUEST_RENDEZVOUS"), valid or not. Used to spot a
 * second request on a pending connection. */
bool request_parser_saw_rendezvous_name(const struct request_parser *parser);
void request_parser_free(struct request_parser *parser);

/* Convenience: parse one complete message. */
enum request_verdict request_parse(const void *data, size_t length,
                                   struct rendezvous_request *request, const char **reason);

enum notification_kind {
    NOTIFY_NOT_READY,  /* NOTIFY_RENDEZVOUS_NOT_READY */
    NOTIFY_RENDEZVOUS, /* NOTIFY_RENDEZVOUS */
    NOTIFY_END,        /* NOTIFY_RENDEZVOUS_END, request_reference_uuid null */
};

/* Build a notification as compact-enough JSON into out (cap bytes, at least
 * NOTIFICATION_MAX_BYTES). request_uuid may be NULL (then the reference is
 * JSON null; always NULL for NOTIFY_END). A fresh UUID v4 from a CSPRNG is
 * used as notification_uuid, now as timestamp. Returns the length, or 0 on
 * failure (no randomness, cap too small). Not NUL-terminated-dependent:
 * the length is authoritative, but a NUL is written when room allows. */
size_t notification_build(char *out, size_t cap, enum notification_kind kind, const char *rid,
                          const char *request_uuid);

/* Same with an explicit timestamp (tests). */
size_t notification_build_at(char *out, size_t cap, enum notification_kind kind, const char *rid,
                             const char *request_uuid, double timestamp);

/* Write a random (version 4, variant 1) UUID in lowercase canonical form and
 * a NUL into out[UUID_TEXT_LENGTH + 1]. Returns 0, or -1 if the CSPRNG fails. */
int uuid_v4_generate(char *out);

/* Canonical 8-4-4-4-12 hex form, any case. */
bool uuid_text_is_valid(const char *text, size_t length);

#endif

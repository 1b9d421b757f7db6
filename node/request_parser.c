/*
 * request_parser.c - judge a message that must be a REQUEST_RENDEZVOUS.
 *
 * The first message of every connection, and every message on a pending
 * connection, goes through this parser (session.c). It is fed the message
 * chunk by chunk as WebSocket fragments arrive and never buffers the message:
 * the JSON is parsed as a stream by libwebsockets' LEJP, and only the values
 * of the rule fields, at most 64 bytes each, are kept. The rules are those of
 * shared/docs/protocol-v0.md: a JSON object whose top level holds
 * message_class "REQUEST", request_name "REQUEST_RENDEZVOUS", a canonical
 * request_uuid, a 64-hex-digit rendezvous_id, protocol "Moneysocket", a
 * string protocol_version and a non-negative finite number timestamp. Other
 * fields, at any depth, are ignored.
 *
 * The verdict, and how the parser gets there:
 *
 * - Every byte first passes a UTF-8 check (a small state machine that keeps
 *   its state between chunks, and refuses overlong forms, surrogates and code
 *   points above U+10FFFF: LEJP copies bytes >= 0x80 into strings unchecked)
 *   and a light syntax tracker that catches what LEJP wrongly accepts (see
 *   below). Then the bytes go to LEJP. The first byte at which anything goes
 *   wrong decides: REQUEST_NOT_UTF8 if that byte breaks UTF-8, else
 *   REQUEST_NOT_JSON. From then on feed() returns at once, so ciphertext
 *   (random bytes, which break UTF-8 or JSON within a few bytes) costs
 *   almost nothing.
 * - REQUEST_NOT_JSON covers everything that is not one complete JSON object
 *   within LEJP's limits: malformed or truncated JSON, a top level that is
 *   not an object (even a valid JSON array or string: no Moneysocket message
 *   is one), bytes other than whitespace after the object, nesting deeper
 *   than LEJP tracks, and the other LEJP limits listed below.
 * - REQUEST_INVALID: the message is a well-formed JSON object in UTF-8, but
 *   breaks a field rule. A broken rule does not stop the parser, so that
 *   byte-level errors later in the message still win (NOT_UTF8 and NOT_JSON
 *   are judged on the whole message) and so that request_name is still seen
 *   after an earlier bad field (request_parser_saw_rendezvous_name). The
 *   reason names the first broken rule in message order.
 *
 * LEJP (libwebsockets 4.1.6, lib/misc/lejp.c) behaviour this file relies on
 * or works around:
 *
 * - It skips '#' to the end of the line as a comment, accepts a trailing
 *   comma in arrays ([1,]) and refuses an empty top-level object ({}). The
 *   syntax tracker stops at a '#' or a ",]" outside strings and completes
 *   "{}" itself, so that JSON is exactly what is accepted.
 * - Numbers: it accepts leading zeros and forms like "1e+" or "1e5.3", and
 *   reports "1e5" as an integer, so every number is checked here against
 *   the JSON grammar. It refuses numbers of more than 20 digits (NOT_JSON).
 * - Depth: 12 stack levels, where a string being read takes one: objects
 *   and arrays nest about 10 deep, arrays at most 5 deep (NOT_JSON beyond).
 *   Its count of open arrays is never reset at the top level, so a sixth
 *   array-valued top-level field would be refused: the ARRAY_END callback
 *   resets it (request_parser_repair_array_count).
 * - Keys are copied into a 128-byte path with an unchecked 8-bit index: a
 *   longer key would spill into LEJP's string buffer and wrap around (both
 *   inside the context struct, so memory stays safe, but the key read back
 *   would be wrong). The tracker stops at a key of more than 127 bytes
 *   (NOT_JSON), so top-level keys always fit. Nested keys may still add up
 *   past 128 bytes, but nested keys are never read.
 * - Strings are delivered in chunks of up to 254 bytes (LEJPCB_VAL_STR_CHUNK,
 *   then LEJPCB_VAL_STR_END), "\u0000" included as a NUL byte, so values are
 *   handled by length, never as C strings.
 * - lejp_parse() returns LEJP_CONTINUE while the document is incomplete, a
 *   negative code on error, and on completion the count of unused bytes
 *   after the closing brace; it is never called again after that, the rest
 *   is checked here for whitespace. It calls LEJPCB_START on many calls, not
 *   only the first, so nothing is initialised there.
 *
 * The parser struct is 896 bytes on x86-64, 656 of them LEJP's context.
 * Numbers are converted with strtod, which assumes the "C" locale's decimal
 * point (the relay never calls setlocale); a conversion that does not
 * consume the whole number is treated as an invalid timestamp.
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>

#include "relay/protocol.h"

/* Longest key accepted, in bytes as sent; escapes only shorten a key, so
 * what LEJP writes into its 128-byte path always fits. */
#define REQUEST_PARSER_KEY_LIMIT 127
/* Bytes scanned and handed to LEJP at a time. The scan runs ahead of LEJP,
 * so this bounds the work wasted on a message LEJP refuses at its start
 * (and keeps lejp_parse's int length small). */
#define REQUEST_PARSER_PIECE_LIMIT 4096
/* Room for any number LEJP can deliver (20 digits, sign, point, exponent). */
#define REQUEST_PARSER_NUMBER_LIMIT 32

enum request_parser_phase {
    REQUEST_PARSER_IN_DOCUMENT,    /* feeding LEJP */
    REQUEST_PARSER_AFTER_DOCUMENT, /* object complete: only whitespace may follow */
    REQUEST_PARSER_FAILED,         /* verdict decided: ignore the rest */
};

/* Why the pre-LEJP scan stopped at a byte. */
enum request_parser_stop {
    REQUEST_PARSER_STOP_NONE,
    REQUEST_PARSER_STOP_NOT_UTF8,
    REQUEST_PARSER_STOP_MALFORMED, /* '#' comment or ",]" that LEJP would accept */
    REQUEST_PARSER_STOP_LONG_KEY,
    REQUEST_PARSER_STOP_EMPTY_OBJECT, /* the '}' of a top-level "{}" */
};

/* The rule fields, in the order clients send them; missing fields are
 * reported in this order. */
enum request_field {
    REQUEST_FIELD_TIMESTAMP,
    REQUEST_FIELD_PROTOCOL,
    REQUEST_FIELD_PROTOCOL_VERSION,
    REQUEST_FIELD_MESSAGE_CLASS,
    REQUEST_FIELD_REQUEST_UUID,
    REQUEST_FIELD_REQUEST_NAME,
    REQUEST_FIELD_RENDEZVOUS_ID,
    REQUEST_FIELD_COUNT,
    REQUEST_FIELD_UNKNOWN = REQUEST_FIELD_COUNT,
};

struct request_field_rule {
    const char *name;
    bool is_number;
    const char *missing;
    const char *wrong_type;
    const char *duplicate;
    const char *bad_value; /* NULL: any value of the right type will do */
};

#define REQUEST_FIELD_RULE(field_name, number, type_name, bad_value_reason)                        \
    {                                                                                              \
        field_name, number, "missing " field_name, field_name " is not a " type_name,              \
            "duplicate " field_name, bad_value_reason                                              \
    }

static const struct request_field_rule request_field_rules[REQUEST_FIELD_COUNT] = {
    [REQUEST_FIELD_TIMESTAMP] = REQUEST_FIELD_RULE("timestamp", true, "number",
                                                   "timestamp must be finite and not negative"),
    [REQUEST_FIELD_PROTOCOL] =
        REQUEST_FIELD_RULE("protocol", false, "string", "protocol must be Moneysocket"),
    [REQUEST_FIELD_PROTOCOL_VERSION] =
        REQUEST_FIELD_RULE("protocol_version", false, "string", NULL),
    [REQUEST_FIELD_MESSAGE_CLASS] =
        REQUEST_FIELD_RULE("message_class", false, "string", "message_class must be REQUEST"),
    [REQUEST_FIELD_REQUEST_UUID] = REQUEST_FIELD_RULE("request_uuid", false, "string",
                                                      "request_uuid must be a canonical UUID"),
    [REQUEST_FIELD_REQUEST_NAME] = REQUEST_FIELD_RULE("request_name", false, "string",
                                                      "request_name must be REQUEST_RENDEZVOUS"),
    [REQUEST_FIELD_RENDEZVOUS_ID] =
        REQUEST_FIELD_RULE("rendezvous_id", false, "string", "rendezvous_id must be 64 hex digits"),
};

/* UTF-8 decoding state between bytes (and chunks): how many continuation
 * bytes are still due, and the range the next one must fall in (narrower
 * than 0x80-0xbf right after some lead bytes, which is how overlong forms,
 * surrogates and values above U+10FFFF are refused). */
struct request_parser_utf8 {
    uint8_t pending;
    uint8_t lower;
    uint8_t upper;
};

/* Just enough lexical state to know whether a byte is inside a string, the
 * length of the last string, and the last byte outside strings. */
struct request_parser_syntax {
    bool in_string;
    bool escaped;
    bool after_string;         /* the last byte outside strings closed a string */
    uint8_t significant_count; /* bytes outside strings, not whitespace; stops at 2 */
    unsigned char last_significant;
    uint16_t string_length; /* stops counting past REQUEST_PARSER_KEY_LIMIT */
};

struct request_parser {
    struct lejp_ctx lejp;
    enum request_parser_phase phase;
    enum request_verdict failure; /* when phase is REQUEST_PARSER_FAILED */
    const char *failure_reason;
    const char *invalid_reason; /* first broken field rule; parsing goes on */
    bool received_bytes;
    bool object_opened;
    bool saw_rendezvous_name;
    struct request_parser_utf8 utf8;
    struct request_parser_syntax syntax;
    unsigned seen_fields;             /* one bit per enum request_field */
    enum request_field current_field; /* the top-level key being read */
    char value[RID_HEX_LENGTH];       /* the current rule field's string value */
    size_t value_length;
    bool value_too_long;
    struct rendezvous_request request;
};

static void request_parser_fail(struct request_parser *parser, enum request_verdict verdict,
                                const char *reason)
{
    parser->phase = REQUEST_PARSER_FAILED;
    parser->failure = verdict;
    parser->failure_reason = reason;
}

static void request_parser_note_invalid(struct request_parser *parser, const char *reason)
{
    if (parser->invalid_reason == NULL)
        parser->invalid_reason = reason;
}

/* ---- Bytes: UTF-8 and the syntax tracker ------------------------------ */

static bool request_parser_accept_utf8_lead(struct request_parser_utf8 *utf8, unsigned char byte)
{
    utf8->lower = 0x80;
    utf8->upper = 0xbf;
    if (byte >= 0xc2 && byte <= 0xdf) {
        utf8->pending = 1;
    } else if (byte >= 0xe0 && byte <= 0xef) {
        utf8->pending = 2;
        if (byte == 0xe0)
            utf8->lower = 0xa0; /* below is an overlong 2-byte form */
        if (byte == 0xed)
            utf8->upper = 0x9f; /* above are the UTF-16 surrogates */
    } else if (byte >= 0xf0 && byte <= 0xf4) {
        utf8->pending = 3;
        if (byte == 0xf0)
            utf8->lower = 0x90; /* below is an overlong 3-byte form */
        if (byte == 0xf4)
            utf8->upper = 0x8f; /* above is beyond U+10FFFF */
    } else {
        return false; /* a stray continuation byte, 0xc0, 0xc1 or 0xf5-0xff */
    }
    return true;
}

static bool request_parser_accept_utf8(struct request_parser_utf8 *utf8, unsigned char byte)
{
    if (utf8->pending == 0)
        return byte < 0x80 || request_parser_accept_utf8_lead(utf8, byte);
    if (byte < utf8->lower || byte > utf8->upper)
        return false;
    utf8->pending--;
    utf8->lower = 0x80;
    utf8->upper = 0xbf;
    return true;
}

static bool request_parser_is_whitespace(unsigned char byte)
{
    return byte == ' ' || byte == '\t' || byte == '\n' || byte == '\r';
}

static void request_parser_track_string_byte(struct request_parser_syntax *syntax,
                                             unsigned char byte)
{
    if (syntax->escaped)
        syntax->escaped = false;
    else if (byte == '\\')
        syntax->escaped = true;
    else if (byte == '"')
        syntax->in_string = false;
    if (syntax->in_string && syntax->string_length <= REQUEST_PARSER_KEY_LIMIT)
        syntax->string_length++;
    syntax->after_string = !syntax->in_string;
}

/* Follow one byte. LEJP refuses every byte sequence where this tracker and
 * LEJP would disagree about being inside a string, so the tracker can use
 * its own view to catch what LEJP accepts but JSON does not. */
static enum request_parser_stop request_parser_track_syntax(struct request_parser_syntax *syntax,
                                                            unsigned char byte)
{
    if (syntax->in_string) {
        request_parser_track_string_byte(syntax, byte);
        return REQUEST_PARSER_STOP_NONE;
    }
    if (request_parser_is_whitespace(byte))
        return REQUEST_PARSER_STOP_NONE;

    unsigned char previous = syntax->last_significant;
    bool second = syntax->significant_count == 1;
    if (syntax->significant_count < 2)
        syntax->significant_count++;
    syntax->last_significant = byte;

    if (byte == ':' && syntax->after_string && syntax->string_length > REQUEST_PARSER_KEY_LIMIT)
        return REQUEST_PARSER_STOP_LONG_KEY;
    syntax->after_string = false;
    if (byte == '"') {
        syntax->in_string = true;
        syntax->string_length = 0;
    } else if (byte == '#' || (byte == ']' && previous == ',')) {
        return REQUEST_PARSER_STOP_MALFORMED;
    } else if (byte == '}' && second && previous == '{') {
        return REQUEST_PARSER_STOP_EMPTY_OBJECT;
    }
    return REQUEST_PARSER_STOP_NONE;
}

/* Check bytes until one stops the document; returns its index (or length). */
static size_t request_parser_scan(struct request_parser *parser, const unsigned char *bytes,
                                  size_t length, enum request_parser_stop *stop)
{
    for (size_t index = 0; index < length; index++) {
        if (!request_parser_accept_utf8(&parser->utf8, bytes[index])) {
            *stop = REQUEST_PARSER_STOP_NOT_UTF8;
            return index;
        }
        *stop = request_parser_track_syntax(&parser->syntax, bytes[index]);
        if (*stop != REQUEST_PARSER_STOP_NONE)
            return index;
    }
    *stop = REQUEST_PARSER_STOP_NONE;
    return length;
}

/* ---- Field values ------------------------------------------------------ */

static enum request_field request_parser_find_field(const char *name, size_t length)
{
    for (int field = 0; field < REQUEST_FIELD_COUNT; field++) {
        const char *rule_name = request_field_rules[field].name;
        if (strlen(rule_name) == length && memcmp(rule_name, name, length) == 0)
            return (enum request_field)field;
    }
    return REQUEST_FIELD_UNKNOWN;
}

static bool request_parser_value_equals(const struct request_parser *parser, const char *text)
{
    size_t length = strlen(text);
    return !parser->value_too_long && parser->value_length == length &&
           memcmp(parser->value, text, length) == 0;
}

static bool request_parser_is_hex_digit(char character)
{
    return (character >= '0' && character <= '9') || (character >= 'a' && character <= 'f') ||
           (character >= 'A' && character <= 'F');
}

/* Check the rendezvous id and keep it in lowercase: ids are compared as
 * strings everywhere else, and clients differ in case. */
static bool request_parser_store_rid(struct request_parser *parser)
{
    if (parser->value_too_long || parser->value_length != RID_HEX_LENGTH)
        return false;
    for (size_t index = 0; index < RID_HEX_LENGTH; index++) {
        char character = parser->value[index];
        if (!request_parser_is_hex_digit(character))
            return false;
        if (character >= 'A' && character <= 'F')
            character = (char)(character - 'A' + 'a');
        parser->request.rid[index] = character;
    }
    parser->request.rid[RID_HEX_LENGTH] = '\0';
    return true;
}

static bool request_parser_store_request_uuid(struct request_parser *parser)
{
    if (parser->value_too_long || !uuid_text_is_valid(parser->value, parser->value_length))
        return false;
    memcpy(parser->request.request_uuid, parser->value, UUID_TEXT_LENGTH);
    parser->request.request_uuid[UUID_TEXT_LENGTH] = '\0';
    return true;
}

static bool request_parser_accept_string(struct request_parser *parser, enum request_field field)
{
    switch (field) {
    case REQUEST_FIELD_PROTOCOL:
        return request_parser_value_equals(parser, "Moneysocket");
    case REQUEST_FIELD_MESSAGE_CLASS:
        return request_parser_value_equals(parser, "REQUEST");
    case REQUEST_FIELD_REQUEST_UUID:
        return request_parser_store_request_uuid(parser);
    case REQUEST_FIELD_REQUEST_NAME:
        if (!request_parser_value_equals(parser, "REQUEST_RENDEZVOUS"))
            return false;
        parser->saw_rendezvous_name = true;
        return true;
    case REQUEST_FIELD_RENDEZVOUS_ID:
        return request_parser_store_rid(parser);
    default:
        return true;
    }
}

static const char *request_parser_skip_digits(const char *text, const char *end)
{
    while (text < end && *text >= '0' && *text <= '9')
        text++;
    return text;
}

/* The JSON number grammar, -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?,
 * which LEJP only loosely enforces. */
static bool request_parser_number_is_json(const char *text, size_t length)
{
    const char *end = text + length;
    const char *digits;

    if (text < end && *text == '-')
        text++;
    digits = text;
    text = request_parser_skip_digits(text, end);
    if (text == digits || (*digits == '0' && text - digits > 1))
        return false;
    if (text < end && *text == '.') {
        digits = ++text;
        text = request_parser_skip_digits(text, end);
        if (text == digits)
            return false;
    }
    if (text < end && (*text == 'e' || *text == 'E')) {
        text++;
        if (text < end && (*text == '+' || *text == '-'))
            text++;
        digits = text;
        text = request_parser_skip_digits(text, end);
        if (text == digits)
            return false;
    }
    return text == end;
}

static bool request_parser_convert_timestamp(const char *number, size_t length, double *timestamp)
{
    char text[REQUEST_PARSER_NUMBER_LIMIT];
    char *end;

    if (length >= sizeof(text))
        return false;
    memcpy(text, number, length);
    text[length] = '\0';
    double value = strtod(text, &end);
    /* 1e999 converts to infinity: refused like any non-finite value. */
    if (end != text + length || !isfinite(value) || value < 0)
        return false;
    *timestamp = value == 0 ? 0 : value; /* -0 is zero, not negative */
    return true;
}

/* ---- LEJP callbacks ------------------------------------------------------
 *
 * A top-level value is seen at LEJP stack level 0, except string chunks,
 * which arrive from the string's own level 1. Deeper events belong to the
 * inside of some field's object or array value. */

static const struct request_field_rule *request_parser_current_rule(struct request_parser *parser,
                                                                    const struct lejp_ctx *ctx,
                                                                    uint8_t level)
{
    if (ctx->sp != level || parser->current_field == REQUEST_FIELD_UNKNOWN)
        return NULL;
    return &request_field_rules[parser->current_field];
}

static void request_parser_on_key(struct request_parser *parser, const struct lejp_ctx *ctx)
{
    if (ctx->sp != 0)
        return;
    /* At the top level the path is the key alone: LEJP restarts it at every
     * top-level member, and the tracker keeps it under 128 bytes. */
    enum request_field field = request_parser_find_field(ctx->path, ctx->pst[ctx->pst_sp].ppos);
    parser->current_field = field;
    if (field == REQUEST_FIELD_UNKNOWN)
        return;
    /* A repeated rule field is refused rather than resolved: JSON parsers
     * disagree on which copy wins (Python's json keeps the last, others the
     * first), so the relay and a client could read different ids or uuids
     * from the same message. */
    if (parser->seen_fields & (1u << field))
        request_parser_note_invalid(parser, request_field_rules[field].duplicate);
    parser->seen_fields |= 1u << field;
}

static int request_parser_on_container(struct request_parser *parser, const struct lejp_ctx *ctx,
                                       bool is_object)
{
    if (!parser->object_opened) {
        if (!is_object) {
            request_parser_fail(parser, REQUEST_NOT_JSON, "not a JSON object");
            return -1;
        }
        parser->object_opened = true;
        return 0;
    }
    const struct request_field_rule *rule = request_parser_current_rule(parser, ctx, 0);
    if (rule != NULL)
        request_parser_note_invalid(parser, rule->wrong_type);
    return 0;
}

/* LEJP 4.1.6 restores its count of open arrays when an array closes inside
 * another value, but not at the top level, so every array-valued top-level
 * field would leave one count behind until it hits its limit of 5. At the
 * top level of the object no array is open: the count is 0. */
static void request_parser_repair_array_count(struct lejp_ctx *ctx)
{
    if (ctx->sp == 0)
        ctx->ipos = 0;
}

static void request_parser_on_string_start(struct request_parser *parser,
                                           const struct lejp_ctx *ctx)
{
    const struct request_field_rule *rule = request_parser_current_rule(parser, ctx, 0);
    if (rule == NULL)
        return;
    if (rule->is_number)
        request_parser_note_invalid(parser, rule->wrong_type);
    parser->value_length = 0;
    parser->value_too_long = false;
}

/* Collect a rule field's string, at most as long as the longest valid one:
 * anything longer is invalid anyway, and memory stays bounded. */
static void request_parser_on_string_part(struct request_parser *parser, const struct lejp_ctx *ctx,
                                          bool final)
{
    const struct request_field_rule *rule = request_parser_current_rule(parser, ctx, 1);
    if (rule == NULL || rule->is_number || rule->bad_value == NULL)
        return;
    size_t length = ctx->npos;
    if (parser->value_too_long || length > sizeof(parser->value) - parser->value_length) {
        parser->value_too_long = true;
    } else {
        memcpy(parser->value + parser->value_length, ctx->buf, length);
        parser->value_length += length;
    }
    if (final && !request_parser_accept_string(parser, parser->current_field))
        request_parser_note_invalid(parser, rule->bad_value);
}

static int request_parser_on_number(struct request_parser *parser, const struct lejp_ctx *ctx)
{
    if (!request_parser_number_is_json(ctx->buf, ctx->npos)) {
        request_parser_fail(parser, REQUEST_NOT_JSON, "malformed JSON number");
        return -1;
    }
    const struct request_field_rule *rule = request_parser_current_rule(parser, ctx, 0);
    if (rule == NULL)
        return 0;
    if (!rule->is_number)
        request_parser_note_invalid(parser, rule->wrong_type);
    else if (!request_parser_convert_timestamp(ctx->buf, ctx->npos, &parser->request.timestamp))
        request_parser_note_invalid(parser, rule->bad_value);
    return 0;
}

static void request_parser_on_literal(struct request_parser *parser, const struct lejp_ctx *ctx)
{
    const struct request_field_rule *rule = request_parser_current_rule(parser, ctx, 0);
    if (rule != NULL)
        request_parser_note_invalid(parser, rule->wrong_type);
}

/* The object is complete: every rule field must have been there. */
static void request_parser_check_missing(struct request_parser *parser)
{
    for (int field = 0; field < REQUEST_FIELD_COUNT; field++) {
        if (!(parser->seen_fields & (1u << field))) {
            request_parser_note_invalid(parser, request_field_rules[field].missing);
            return;
        }
    }
}

static signed char request_parser_on_event(struct lejp_ctx *ctx, char reason)
{
    struct request_parser *parser = ctx->user;

    switch (reason) {
    case LEJPCB_OBJECT_START:
        return (signed char)request_parser_on_container(parser, ctx, true);
    case LEJPCB_ARRAY_START:
        return (signed char)request_parser_on_container(parser, ctx, false);
    case LEJPCB_ARRAY_END:
        request_parser_repair_array_count(ctx);
        return 0;
    case LEJPCB_PAIR_NAME:
        request_parser_on_key(parser, ctx);
        return 0;
    case LEJPCB_VAL_STR_START:
        request_parser_on_string_start(parser, ctx);
        return 0;
    case LEJPCB_VAL_STR_CHUNK:
    case LEJPCB_VAL_STR_END:
        request_parser_on_string_part(parser, ctx, reason == LEJPCB_VAL_STR_END);
        return 0;
    case LEJPCB_VAL_NUM_INT:
    case LEJPCB_VAL_NUM_FLOAT:
        return (signed char)request_parser_on_number(parser, ctx);
    case LEJPCB_VAL_TRUE:
    case LEJPCB_VAL_FALSE:
    case LEJPCB_VAL_NULL:
        request_parser_on_literal(parser, ctx);
        return 0;
    case LEJPCB_COMPLETE:
        request_parser_check_missing(parser);
        return 0;
    default:
        return 0; /* START, FAILED, OBJECT_END, ...: nothing to do */
    }
}

/* ---- Feeding ------------------------------------------------------------ */

static const char *request_parser_describe_lejp_error(int error)
{
    switch (error) {
    case LEJP_REJECT_IDLE_NO_BRACE:
        return "not a JSON object";
    case LEJP_REJECT_STACK_OVERFLOW:
    case LEJP_REJECT_MP_DELIM_ISTACK:
        return "JSON nested too deeply";
    case LEJP_REJECT_NUM_TOO_LONG:
        return "JSON number too long";
    default:
        return "malformed JSON";
    }
}

static void request_parser_fail_on_stop(struct request_parser *parser,
                                        enum request_parser_stop stop)
{
    if (stop == REQUEST_PARSER_STOP_NOT_UTF8)
        request_parser_fail(parser, REQUEST_NOT_UTF8, "not UTF-8");
    else if (stop == REQUEST_PARSER_STOP_LONG_KEY)
        request_parser_fail(parser, REQUEST_NOT_JSON, "JSON key too long");
    else
        request_parser_fail(parser, REQUEST_NOT_JSON, "malformed JSON");
}

/* The closing brace has been read. The UTF-8 check restarts from a clean
 * state: the scan ran ahead over bytes after the brace, which are checked
 * again as trailing bytes, and right after an ASCII brace nothing is due. */
static void request_parser_end_document(struct request_parser *parser)
{
    parser->phase = REQUEST_PARSER_AFTER_DOCUMENT;
    memset(&parser->utf8, 0, sizeof(parser->utf8));
}

/* Feed bytes of the document to the scan and LEJP. Returns how many bytes
 * belong to the document, or length if the parser failed or wants more. */
static size_t request_parser_feed_document(struct request_parser *parser,
                                           const unsigned char *bytes, size_t length)
{
    enum request_parser_stop stop;
    size_t end = request_parser_scan(parser, bytes, length, &stop);

    if (end > 0) {
        int result = lejp_parse(&parser->lejp, bytes, (int)end);
        if (result >= 0) {
            request_parser_end_document(parser);
            return end - (size_t)result;
        }
        if (result != LEJP_CONTINUE) {
            /* A callback that refused the document has already said why. */
            if (parser->phase != REQUEST_PARSER_FAILED)
                request_parser_fail(parser, REQUEST_NOT_JSON,
                                    request_parser_describe_lejp_error(result));
            return length;
        }
    }
    if (stop == REQUEST_PARSER_STOP_NONE)
        return length;
    if (stop == REQUEST_PARSER_STOP_EMPTY_OBJECT) {
        /* LEJP refuses "{}" at the top level; for JSON it is an object. */
        request_parser_check_missing(parser);
        request_parser_end_document(parser);
        return end + 1;
    }
    request_parser_fail_on_stop(parser, stop);
    return length;
}

static void request_parser_feed_trailing(struct request_parser *parser, const unsigned char *bytes,
                                         size_t length)
{
    for (size_t index = 0; index < length; index++) {
        if (!request_parser_accept_utf8(&parser->utf8, bytes[index])) {
            request_parser_fail(parser, REQUEST_NOT_UTF8, "not UTF-8");
            return;
        }
        if (!request_parser_is_whitespace(bytes[index])) {
            request_parser_fail(parser, REQUEST_NOT_JSON, "trailing bytes after JSON");
            return;
        }
    }
}

static void request_parser_init(struct request_parser *parser)
{
    memset(parser, 0, sizeof(*parser));
    parser->phase = REQUEST_PARSER_IN_DOCUMENT;
    parser->current_field = REQUEST_FIELD_UNKNOWN;
    /* No LEJP path matching: keys are compared in request_parser_on_key. */
    lejp_construct(&parser->lejp, request_parser_on_event, parser, NULL, 0);
}

struct request_parser *request_parser_new(void)
{
    struct request_parser *parser = malloc(sizeof(*parser));
    if (parser != NULL)
        request_parser_init(parser);
    return parser;
}

void request_parser_reset(struct request_parser *parser)
{
    lejp_destruct(&parser->lejp);
    request_parser_init(parser);
}

void request_parser_feed(struct request_parser *parser, const void *data, size_t length)
{
    const unsigned char *bytes = data;

    if (length == 0 || parser->phase == REQUEST_PARSER_FAILED)
        return;
    parser->received_bytes = true;
    while (length > 0 && parser->phase == REQUEST_PARSER_IN_DOCUMENT) {
        size_t piece = length < REQUEST_PARSER_PIECE_LIMIT ? length : REQUEST_PARSER_PIECE_LIMIT;
        size_t used = request_parser_feed_document(parser, bytes, piece);
        bytes += used;
        length -= used;
    }
    if (length > 0 && parser->phase == REQUEST_PARSER_AFTER_DOCUMENT)
        request_parser_feed_trailing(parser, bytes, length);
}

static enum request_verdict request_parser_judge(const struct request_parser *parser,
                                                 const char **reason)
{
    if (parser->phase == REQUEST_PARSER_FAILED) {
        *reason = parser->failure_reason;
        return parser->failure;
    }
    if (parser->utf8.pending != 0) {
        *reason = "truncated UTF-8 sequence";
        return REQUEST_NOT_UTF8;
    }
    if (parser->phase == REQUEST_PARSER_IN_DOCUMENT) {
        *reason = parser->received_bytes ? "truncated JSON" : "empty message";
        return REQUEST_NOT_JSON;
    }
    if (parser->invalid_reason != NULL) {
        *reason = parser->invalid_reason;
        return REQUEST_INVALID;
    }
    *reason = NULL;
    return REQUEST_VALID;
}

enum request_verdict request_parser_finish(struct request_parser *parser,
                                           struct rendezvous_request *request, const char **reason)
{
    const char *text;
    enum request_verdict verdict = request_parser_judge(parser, &text);

    if (reason != NULL)
        *reason = text;
    if (verdict == REQUEST_VALID && request != NULL)
        *request = parser->request;
    return verdict;
}

bool request_parser_saw_rendezvous_name(const struct request_parser *parser)
{
    return parser->saw_rendezvous_name;
}

void request_parser_free(struct request_parser *parser)
{
    if (parser == NULL)
        return;
    lejp_destruct(&parser->lejp);
    free(parser);
}

enum request_verdict request_parse(const void *data, size_t length,
                                   struct rendezvous_request *request, const char **reason)
{
    struct request_parser parser;

    request_parser_init(&parser);
    request_parser_feed(&parser, data, length);
    enum request_verdict verdict = request_parser_finish(&parser, request, reason);
    lejp_destruct(&parser.lejp);
    return verdict;
}

/*
 * test_protocol_request.c - unit tests for node/request_parser.c.
 *
 * The parser judges the first frame of every connection, so these tests pin
 * down the verdict and the reason for every field rule of
 * shared/docs/protocol-v0.md, for the REQUEST_RENDEZVOUS frames captured from
 * the real clients (shared/vectors/frames), and for what an attacker or a
 * broken client may send: truncated or trailing bytes, wrong types, huge
 * numbers, bad UTF-8, deep nesting, duplicate keys, ciphertext.
 *
 * The parser is incremental, and a message may arrive in any number of
 * fragments, so every table case is also parsed in 1-byte chunks and split in
 * two at every position: each way must give exactly the same outcome.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>

#include "relay/protocol.h"

#define FRAMES_DIR RELAY_SHARED_DIR "/vectors/frames/"

#define TEST_UUID "0811a20b-3a4a-400e-8e1b-180d43727d7b"
#define TEST_RID "f66d7935fb71dafa8493e8194e9eda3ed95406bd1376f71dd1f47961581d5646"
#define TEST_RID_UPPER "F66D7935FB71DAFA8493E8194E9EDA3ED95406BD1376F71DD1F47961581D5646"

/* The fields of a valid request, each followed by ", " so that any one can be
 * left out or replaced; REQUEST() closes the object with an unknown field. */
#define F_TIMESTAMP "\"timestamp\": 1795596873.7172456, "
#define F_PROTOCOL "\"protocol\": \"Moneysocket\", "
#define F_VERSION "\"protocol_version\": \"0.0.0\", "
#define F_CLASS "\"message_class\": \"REQUEST\", "
#define F_UUID "\"request_uuid\": \"" TEST_UUID "\", "
#define F_NAME "\"request_name\": \"REQUEST_RENDEZVOUS\", "
#define F_RID "\"rendezvous_id\": \"" TEST_RID "\", "
#define REQUEST(timestamp, protocol, version, class, uuid, name, rid)                              \
    "{" timestamp protocol version class uuid name rid "\"extra\": 0}"
#define VALID_REQUEST REQUEST(F_TIMESTAMP, F_PROTOCOL, F_VERSION, F_CLASS, F_UUID, F_NAME, F_RID)
/* A valid request with something inserted before its closing brace. */
#define VALID_REQUEST_WITH(text)                                                                   \
    "{" F_TIMESTAMP F_PROTOCOL F_VERSION F_CLASS F_UUID F_NAME F_RID "\"extra\": 0" text "}"

/* Everything a parse produces, to compare parses of the same bytes. */
struct outcome {
    enum request_verdict verdict;
    const char *reason;
    bool saw_rendezvous_name;
    struct rendezvous_request request;
};

struct request_case {
    const char *name;
    const char *json;
    size_t length;
    enum request_verdict verdict;
    const char *reason; /* NULL for REQUEST_VALID */
};

#define CASE(name, literal, verdict, reason)                                                       \
    {                                                                                              \
        name, literal, sizeof(literal) - 1, verdict, reason                                        \
    }
#define VALID(name, literal) CASE(name, literal, REQUEST_VALID, NULL)
#define INVALID(name, literal, reason) CASE(name, literal, REQUEST_INVALID, reason)
#define NOT_JSON(name, literal, reason) CASE(name, literal, REQUEST_NOT_JSON, reason)
#define NOT_UTF8(name, literal, reason) CASE(name, literal, REQUEST_NOT_UTF8, reason)

static const struct request_case request_cases[] = {
    /* Valid variations. */
    VALID("base", VALID_REQUEST),
    VALID("compact", "{\"timestamp\":1795596874.039,\"protocol\":\"Moneysocket\","
                     "\"protocol_version\":\"0.0.0\",\"message_class\":\"REQUEST\","
                     "\"request_uuid\":\"" TEST_UUID "\",\"request_name\":\"REQUEST_RENDEZVOUS\","
                     "\"rendezvous_id\":\"" TEST_RID "\"}"),
    VALID("reordered",
          "{\"rendezvous_id\":\"" TEST_RID "\",\"request_name\":\"REQUEST_RENDEZVOUS\","
          "\"request_uuid\":\"" TEST_UUID "\",\"message_class\":\"REQUEST\","
          "\"protocol_version\":\"0.0.0\",\"protocol\":\"Moneysocket\","
          "\"timestamp\":1}"),
    VALID("surrounding whitespace", " \t\r\n" VALID_REQUEST " \t\r\n"),
    VALID("whitespace everywhere",
          "{ \"timestamp\" :\t1 ,\n\"protocol\" : \"Moneysocket\" , \"protocol_version\" : "
          "\"\" , \"message_class\" : \"REQUEST\" , \"request_uuid\" : \"" TEST_UUID "\" , "
          "\"request_name\" : \"REQUEST_RENDEZVOUS\" , \"rendezvous_id\" : \"" TEST_RID "\" }"),
    VALID("integer timestamp", REQUEST("\"timestamp\": 1795596873, ", F_PROTOCOL, F_VERSION,
                                       F_CLASS, F_UUID, F_NAME, F_RID)),
    VALID("zero timestamp",
          REQUEST("\"timestamp\": 0, ", F_PROTOCOL, F_VERSION, F_CLASS, F_UUID, F_NAME, F_RID)),
    VALID("negative zero timestamp",
          REQUEST("\"timestamp\": -0.0, ", F_PROTOCOL, F_VERSION, F_CLASS, F_UUID, F_NAME, F_RID)),
    VALID("exponent timestamp", REQUEST("\"timestamp\": 1.7955968737E+9, ", F_PROTOCOL, F_VERSION,
                                        F_CLASS, F_UUID, F_NAME, F_RID)),
    VALID("large finite timestamp",
          REQUEST("\"timestamp\": 1e308, ", F_PROTOCOL, F_VERSION, F_CLASS, F_UUID, F_NAME, F_RID)),
    VALID("20-digit timestamp", REQUEST("\"timestamp\": 99999999999999999999, ", F_PROTOCOL,
                                        F_VERSION, F_CLASS, F_UUID, F_NAME, F_RID)),
    VALID("uppercase uuid",
          REQUEST(F_TIMESTAMP, F_PROTOCOL, F_VERSION, F_CLASS,
                  "\"request_uuid\": \"0811A20B-3A4A-400E-8E1B-180D43727D7B\", ", F_NAME, F_RID)),
    VALID("any protocol_version", REQUEST(F_TIMESTAMP, F_PROTOCOL, "\"protocol_version\": \"9\", ",
                                          F_CLASS, F_UUID, F_NAME, F_RID)),
    VALID("long protocol_version",
          REQUEST(F_TIMESTAMP, F_PROTOCOL,
                  "\"protocol_version\": \"" TEST_RID TEST_RID TEST_RID TEST_RID TEST_RID "\", ",
                  F_CLASS, F_UUID, F_NAME, F_RID)),
    VALID("escaped field values",
          REQUEST(F_TIMESTAMP, "\"protocol\": \"Money\\u0073ocket\", ", F_VERSION,
                  "\"message_class\": \"REQ\\u0055EST\", ", F_UUID, F_NAME, F_RID)),
    VALID("escaped key", REQUEST(F_TIMESTAMP, F_PROTOCOL, F_VERSION, F_CLASS, F_UUID, F_NAME,
                                 "\"rendezvous\\u005fid\": \"" TEST_RID "\", ")),
    VALID("unknown fields of every type",
          VALID_REQUEST_WITH(", \"s\": \"x\", \"n\": -1.5e-3, \"t\": true, \"f\": false, "
                             "\"z\": null, \"o\": {\"a\": [1, {\"b\": null}]}, \"a\": []")),
    VALID("rule names nested in unknown fields",
          VALID_REQUEST_WITH(", \"o\": {\"rendezvous_id\": 5, \"timestamp\": \"x\"}, "
                             "\"a\": [{\"request_name\": 1}]")),
    VALID("seven array fields", VALID_REQUEST_WITH(", \"a\": [], \"b\": [1], \"c\": [[]], "
                                                   "\"d\": [], \"e\": [], \"f\": [], \"g\": []")),
    VALID("empty nested containers", VALID_REQUEST_WITH(", \"o\": {}, \"a\": [{}, []]")),
    VALID("UTF-8 in unknown fields",
          VALID_REQUEST_WITH(", \"caf\xc3\xa9\": \"\xe2\x82\xac \xf0\x9d\x84\x9e \xef\xbf\xbf "
                             "\xf4\x8f\xbf\xbf \xc2\x80\"")),
    VALID("NUL escape in unknown field", VALID_REQUEST_WITH(", \"x\": \"a\\u0000b\"")),
    VALID("127-byte key",
          VALID_REQUEST_WITH(", \"" TEST_RID "0123456789012345678901234567890123456789"
                             "01234567890123456789012\": 0")),
    VALID("nesting within the limit",
          VALID_REQUEST_WITH(", \"deep\": {\"a\": {\"a\": {\"a\": {\"a\": {\"a\": "
                             "[[[[[1]]]]]}}}}}")),

    /* Missing fields. */
    INVALID("missing timestamp", REQUEST("", F_PROTOCOL, F_VERSION, F_CLASS, F_UUID, F_NAME, F_RID),
            "missing timestamp"),
    INVALID("missing protocol", REQUEST(F_TIMESTAMP, "", F_VERSION, F_CLASS, F_UUID, F_NAME, F_RID),
            "missing protocol"),
    INVALID("missing protocol_version",
            REQUEST(F_TIMESTAMP, F_PROTOCOL, "", F_CLASS, F_UUID, F_NAME, F_RID),
            "missing protocol_version"),
    INVALID("missing message_class",
            REQUEST(F_TIMESTAMP, F_PROTOCOL, F_VERSION, "", F_UUID, F_NAME, F_RID),
            "missing message_class"),
    INVALID("missing request_uuid",
            REQUEST(F_TIMESTAMP, F_PROTOCOL, F_VERSION, F_CLASS, "", F_NAME, F_RID),
            "missing request_uuid"),
    INVALID("missing request_name",
            REQUEST(F_TIMESTAMP, F_PROTOCOL, F_VERSION, F_CLASS, F_UUID, "", F_RID),
            "missing request_name"),
    INVALID("missing rendezvous_id",
            REQUEST(F_TIMESTAMP, F_PROTOCOL, F_VERSION, F_CLASS, F_UUID, F_NAME, ""),
            "missing rendezvous_id"),
    INVALID("rendezvous_id only nested",
            REQUEST(F_TIMESTAMP, F_PROTOCOL, F_VERSION, F_CLASS, F_UUID, F_NAME,
                    "\"o\": {\"rendezvous_id\": \"" TEST_RID "\"}, "),
            "missing rendezvous_id"),
    INVALID("key with a trailing space",
            REQUEST(F_TIMESTAMP, F_PROTOCOL, F_VERSION, F_CLASS, F_UUID, F_NAME,
                    "\"rendezvous_id \": \"" TEST_RID "\", "),
            "missing rendezvous_id"),
    INVALID("key with a NUL escape",
            REQUEST(F_TIMESTAMP, F_PROTOCOL, F_VERSION, F_CLASS, F_UUID, F_NAME,
                    "\"rendezvous_id\\u0000\": \"" TEST_RID "\", "),
            "missing rendezvous_id"),
    INVALID("empty object", "{}", "missing timestamp"),
    INVALID("empty object with whitespace", " { \n } ", "missing timestamp"),

    /* Wrong values. */
    INVALID("message_class NOTIFICATION",
            REQUEST(F_TIMESTAMP, F_PROTOCOL, F_VERSION, "\"message_class\": \"NOTIFICATION\", ",
                    F_UUID, F_NAME, F_RID),
            "message_class must be REQUEST"),
    INVALID("message_class lowercase",
            REQUEST(F_TIMESTAMP, F_PROTOCOL, F_VERSION, "\"message_class\": \"request\", ", F_UUID,
                    F_NAME, F_RID),
            "message_class must be REQUEST"),
    INVALID("message_class with NUL",
            REQUEST(F_TIMESTAMP, F_PROTOCOL, F_VERSION, "\"message_class\": \"REQUEST\\u0000\", ",
                    F_UUID, F_NAME, F_RID),
            "message_class must be REQUEST"),
    INVALID("request_name REQUEST_PING",
            REQUEST(F_TIMESTAMP, F_PROTOCOL, F_VERSION, F_CLASS, F_UUID,
                    "\"request_name\": \"REQUEST_PING\", ", F_RID),
            "request_name must be REQUEST_RENDEZVOUS"),
    INVALID("protocol lowercase",
            REQUEST(F_TIMESTAMP, "\"protocol\": \"moneysocket\", ", F_VERSION, F_CLASS, F_UUID,
                    F_NAME, F_RID),
            "protocol must be Moneysocket"),
    INVALID("uuid too short",
            REQUEST(F_TIMESTAMP, F_PROTOCOL, F_VERSION, F_CLASS,
                    "\"request_uuid\": \"0811a20b-3a4a-400e-8e1b-180d43727d7\", ", F_NAME, F_RID),
            "request_uuid must be a canonical UUID"),
    INVALID("uuid too long",
            REQUEST(F_TIMESTAMP, F_PROTOCOL, F_VERSION, F_CLASS,
                    "\"request_uuid\": \"" TEST_UUID "0\", ", F_NAME, F_RID),
            "request_uuid must be a canonical UUID"),
    INVALID("uuid without dashes",
            REQUEST(F_TIMESTAMP, F_PROTOCOL, F_VERSION, F_CLASS,
                    "\"request_uuid\": \"0811a20b3a4a400e8e1b180d43727d7b\", ", F_NAME, F_RID),
            "request_uuid must be a canonical UUID"),
    INVALID("uuid with a misplaced dash",
            REQUEST(F_TIMESTAMP, F_PROTOCOL, F_VERSION, F_CLASS,
                    "\"request_uuid\": \"0811a20b3-a4a-400e-8e1b-180d43727d7b\", ", F_NAME, F_RID),
            "request_uuid must be a canonical UUID"),
    INVALID("uuid not hex",
            REQUEST(F_TIMESTAMP, F_PROTOCOL, F_VERSION, F_CLASS,
                    "\"request_uuid\": \"0811a20g-3a4a-400e-8e1b-180d43727d7b\", ", F_NAME, F_RID),
            "request_uuid must be a canonical UUID"),
    INVALID("uuid in braces",
            REQUEST(F_TIMESTAMP, F_PROTOCOL, F_VERSION, F_CLASS,
                    "\"request_uuid\": \"{0811a20b-3a4a-400e-8e1b-180d43727d}\", ", F_NAME, F_RID),
            "request_uuid must be a canonical UUID"),
    INVALID("rid 63 digits",
            REQUEST(F_TIMESTAMP, F_PROTOCOL, F_VERSION, F_CLASS, F_UUID, F_NAME,
                    "\"rendezvous_id\": "
                    "\"f66d7935fb71dafa8493e8194e9eda3ed95406bd1376f71dd1f47961581d564\", "),
            "rendezvous_id must be 64 hex digits"),
    INVALID("rid 65 digits",
            REQUEST(F_TIMESTAMP, F_PROTOCOL, F_VERSION, F_CLASS, F_UUID, F_NAME,
                    "\"rendezvous_id\": \"" TEST_RID "0\", "),
            "rendezvous_id must be 64 hex digits"),
    INVALID("rid not hex",
            REQUEST(F_TIMESTAMP, F_PROTOCOL, F_VERSION, F_CLASS, F_UUID, F_NAME,
                    "\"rendezvous_id\": "
                    "\"x66d7935fb71dafa8493e8194e9eda3ed95406bd1376f71dd1f47961581d5646\", "),
            "rendezvous_id must be 64 hex digits"),
    INVALID("rid with a space",
            REQUEST(F_TIMESTAMP, F_PROTOCOL, F_VERSION, F_CLASS, F_UUID, F_NAME,
                    "\"rendezvous_id\": "
                    "\" 66d7935fb71dafa8493e8194e9eda3ed95406bd1376f71dd1f47961581d5646\", "),
            "rendezvous_id must be 64 hex digits"),
    INVALID("rid empty",
            REQUEST(F_TIMESTAMP, F_PROTOCOL, F_VERSION, F_CLASS, F_UUID, F_NAME,
                    "\"rendezvous_id\": \"\", "),
            "rendezvous_id must be 64 hex digits"),
    INVALID("rid with a NUL escape",
            REQUEST(F_TIMESTAMP, F_PROTOCOL, F_VERSION, F_CLASS, F_UUID, F_NAME,
                    "\"rendezvous_id\": \"" TEST_RID "\\u0000\", "),
            "rendezvous_id must be 64 hex digits"),
    INVALID("rid 320 digits",
            REQUEST(F_TIMESTAMP, F_PROTOCOL, F_VERSION, F_CLASS, F_UUID, F_NAME,
                    "\"rendezvous_id\": \"" TEST_RID TEST_RID TEST_RID TEST_RID TEST_RID "\", "),
            "rendezvous_id must be 64 hex digits"),
    INVALID("negative timestamp",
            REQUEST("\"timestamp\": -1, ", F_PROTOCOL, F_VERSION, F_CLASS, F_UUID, F_NAME, F_RID),
            "timestamp must be finite and not negative"),
    INVALID(
        "small negative timestamp",
        REQUEST("\"timestamp\": -0.001, ", F_PROTOCOL, F_VERSION, F_CLASS, F_UUID, F_NAME, F_RID),
        "timestamp must be finite and not negative"),
    INVALID(
        "huge timestamp",
        REQUEST("\"timestamp\": 1e999, ", F_PROTOCOL, F_VERSION, F_CLASS, F_UUID, F_NAME, F_RID),
        "timestamp must be finite and not negative"),
    INVALID("huge negative timestamp",
            REQUEST("\"timestamp\": -1.5E+999, ", F_PROTOCOL, F_VERSION, F_CLASS, F_UUID, F_NAME,
                    F_RID),
            "timestamp must be finite and not negative"),

    /* Wrong types. */
    INVALID("timestamp string",
            REQUEST("\"timestamp\": \"1795596873.7\", ", F_PROTOCOL, F_VERSION, F_CLASS, F_UUID,
                    F_NAME, F_RID),
            "timestamp is not a number"),
    INVALID("timestamp null",
            REQUEST("\"timestamp\": null, ", F_PROTOCOL, F_VERSION, F_CLASS, F_UUID, F_NAME, F_RID),
            "timestamp is not a number"),
    INVALID("timestamp true",
            REQUEST("\"timestamp\": true, ", F_PROTOCOL, F_VERSION, F_CLASS, F_UUID, F_NAME, F_RID),
            "timestamp is not a number"),
    INVALID("timestamp array",
            REQUEST("\"timestamp\": [1], ", F_PROTOCOL, F_VERSION, F_CLASS, F_UUID, F_NAME, F_RID),
            "timestamp is not a number"),
    INVALID("timestamp object",
            REQUEST("\"timestamp\": {\"t\": 1}, ", F_PROTOCOL, F_VERSION, F_CLASS, F_UUID, F_NAME,
                    F_RID),
            "timestamp is not a number"),
    INVALID("protocol number",
            REQUEST(F_TIMESTAMP, "\"protocol\": 0, ", F_VERSION, F_CLASS, F_UUID, F_NAME, F_RID),
            "protocol is not a string"),
    INVALID("protocol_version number",
            REQUEST(F_TIMESTAMP, F_PROTOCOL, "\"protocol_version\": 0.0, ", F_CLASS, F_UUID, F_NAME,
                    F_RID),
            "protocol_version is not a string"),
    INVALID("message_class false",
            REQUEST(F_TIMESTAMP, F_PROTOCOL, F_VERSION, "\"message_class\": false, ", F_UUID,
                    F_NAME, F_RID),
            "message_class is not a string"),
    INVALID("request_uuid null",
            REQUEST(F_TIMESTAMP, F_PROTOCOL, F_VERSION, F_CLASS, "\"request_uuid\": null, ", F_NAME,
                    F_RID),
            "request_uuid is not a string"),
    INVALID("request_name array",
            REQUEST(F_TIMESTAMP, F_PROTOCOL, F_VERSION, F_CLASS, F_UUID,
                    "\"request_name\": [\"REQUEST_RENDEZVOUS\"], ", F_RID),
            "request_name is not a string"),
    INVALID("rendezvous_id number",
            REQUEST(F_TIMESTAMP, F_PROTOCOL, F_VERSION, F_CLASS, F_UUID, F_NAME,
                    "\"rendezvous_id\": 1234, "),
            "rendezvous_id is not a string"),
    INVALID("rendezvous_id object",
            REQUEST(F_TIMESTAMP, F_PROTOCOL, F_VERSION, F_CLASS, F_UUID, F_NAME,
                    "\"rendezvous_id\": {\"id\": \"" TEST_RID "\"}, "),
            "rendezvous_id is not a string"),

    /* Duplicates: which copy counts is ambiguous, so neither does. */
    INVALID("duplicate rendezvous_id, same value", VALID_REQUEST_WITH(", " F_RID "\"x\": 0"),
            "duplicate rendezvous_id"),
    INVALID("duplicate timestamp", VALID_REQUEST_WITH(", \"timestamp\": 1"), "duplicate timestamp"),
    INVALID("duplicate request_name",
            VALID_REQUEST_WITH(", \"request_name\": \"REQUEST_RENDEZVOUS\""),
            "duplicate request_name"),
    VALID("duplicate unknown field", VALID_REQUEST_WITH(", \"x\": 1, \"x\": 2")),

    /* The first broken rule is the one reported. */
    INVALID("first of two broken rules",
            REQUEST("\"timestamp\": -1, ", F_PROTOCOL, F_VERSION, F_CLASS, F_UUID, F_NAME,
                    "\"rendezvous_id\": 7, "),
            "timestamp must be finite and not negative"),

    /* Not a JSON object. */
    NOT_JSON("empty", "", "empty message"),
    NOT_JSON("whitespace only", " \r\n\t ", "truncated JSON"),
    NOT_JSON("only an opening brace", "{", "truncated JSON"),
    NOT_JSON("truncated after a key", "{\"timestamp\"", "truncated JSON"),
    NOT_JSON("truncated in a number", "{\"timestamp\": 17", "truncated JSON"),
    NOT_JSON("truncated in a string", "{\"protocol\": \"Money", "truncated JSON"),
    NOT_JSON("truncated valid request",
             "{" F_TIMESTAMP F_PROTOCOL F_VERSION F_CLASS F_UUID F_NAME
             "\"rendezvous_id\": \"" TEST_RID "\"",
             "truncated JSON"),
    NOT_JSON("trailing garbage", VALID_REQUEST "x", "trailing bytes after JSON"),
    NOT_JSON("trailing second object", VALID_REQUEST "{}", "trailing bytes after JSON"),
    NOT_JSON("trailing NUL", VALID_REQUEST "\0", "trailing bytes after JSON"),
    NOT_JSON("trailing garbage after whitespace", VALID_REQUEST " \n x",
             "trailing bytes after JSON"),
    NOT_JSON("trailing garbage after an empty object", "{} x", "trailing bytes after JSON"),
    NOT_JSON("trailing UTF-8 lead byte", VALID_REQUEST "\xc3", "trailing bytes after JSON"),
    NOT_JSON("top-level array", "[" VALID_REQUEST "]", "not a JSON object"),
    NOT_JSON("top-level string", "\"REQUEST_RENDEZVOUS\"", "not a JSON object"),
    NOT_JSON("top-level number", "42", "not a JSON object"),
    NOT_JSON("top-level null", "null", "not a JSON object"),
    NOT_JSON("text", "hello", "not a JSON object"),
    NOT_JSON("comment", VALID_REQUEST_WITH(" # comment\n"), "malformed JSON"),
    NOT_JSON("comment before the object", "# comment\n" VALID_REQUEST, "malformed JSON"),
    NOT_JSON("trailing comma in an array", VALID_REQUEST_WITH(", \"a\": [1, ]"), "malformed JSON"),
    NOT_JSON("trailing comma in the object", VALID_REQUEST_WITH(","), "malformed JSON"),
    NOT_JSON("missing comma", "{\"timestamp\": 1 \"protocol\": \"Moneysocket\"}", "malformed JSON"),
    NOT_JSON("missing colon", "{\"timestamp\" 1}", "malformed JSON"),
    NOT_JSON("single quotes", "{'timestamp': 1}", "malformed JSON"),
    NOT_JSON("unquoted key", "{timestamp: 1}", "malformed JSON"),
    NOT_JSON("unknown literal", VALID_REQUEST_WITH(", \"x\": undefined"), "malformed JSON"),
    NOT_JSON("raw newline in a string", VALID_REQUEST_WITH(", \"x\": \"a\nb\""), "malformed JSON"),
    NOT_JSON("raw NUL in a string", VALID_REQUEST_WITH(", \"x\": \"a\0b\""), "malformed JSON"),
    NOT_JSON("bad escape", VALID_REQUEST_WITH(", \"x\": \"\\q\""), "malformed JSON"),
    NOT_JSON("bad unicode escape", VALID_REQUEST_WITH(", \"x\": \"\\u12g4\""), "malformed JSON"),
    NOT_JSON("leading zero", VALID_REQUEST_WITH(", \"x\": 012"), "malformed JSON number"),
    NOT_JSON("exponent without digits", VALID_REQUEST_WITH(", \"x\": 1e+"),
             "malformed JSON number"),
    NOT_JSON("fraction after exponent", VALID_REQUEST_WITH(", \"x\": 1e5.3"),
             "malformed JSON number"),
    NOT_JSON("leading zero timestamp",
             REQUEST("\"timestamp\": 00, ", F_PROTOCOL, F_VERSION, F_CLASS, F_UUID, F_NAME, F_RID),
             "malformed JSON number"),
    NOT_JSON("point without digits", VALID_REQUEST_WITH(", \"x\": 1."), "malformed JSON"),
    NOT_JSON("plus sign", VALID_REQUEST_WITH(", \"x\": +1"), "malformed JSON"),
    NOT_JSON("lone minus", VALID_REQUEST_WITH(", \"x\": -"), "malformed JSON"),
    NOT_JSON("21-digit number (LEJP limit)", VALID_REQUEST_WITH(", \"x\": 123456789012345678901"),
             "malformed JSON"),
    NOT_JSON("128-byte key",
             VALID_REQUEST_WITH(", \"" TEST_RID "0123456789012345678901234567890123456789"
                                "012345678901234567890123\": 0"),
             "JSON key too long"),
    NOT_JSON("arrays nested too deeply", VALID_REQUEST_WITH(", \"a\": [[[[[[1]]]]]]"),
             "JSON nested too deeply"),
    NOT_JSON("objects nested too deeply",
             VALID_REQUEST_WITH(", \"a\": {\"a\": {\"a\": {\"a\": {\"a\": {\"a\": {\"a\": "
                                "{\"a\": {\"a\": {\"a\": {\"a\": {\"a\": 1}}}}}}}}}}}}"),
             "JSON nested too deeply"),

    /* Not UTF-8, wherever it is. */
    NOT_UTF8("invalid byte in a value", VALID_REQUEST_WITH(", \"x\": \"\xff\""), "not UTF-8"),
    NOT_UTF8("invalid byte in a key", VALID_REQUEST_WITH(", \"\xfe\": 1"), "not UTF-8"),
    NOT_UTF8("stray continuation byte", VALID_REQUEST_WITH(", \"x\": \"\x80\""), "not UTF-8"),
    NOT_UTF8("overlong 2-byte slash", VALID_REQUEST_WITH(", \"x\": \"\xc0\xaf\""), "not UTF-8"),
    NOT_UTF8("overlong 3-byte slash", VALID_REQUEST_WITH(", \"x\": \"\xe0\x80\xaf\""), "not UTF-8"),
    NOT_UTF8("overlong 4-byte slash", VALID_REQUEST_WITH(", \"x\": \"\xf0\x80\x80\xaf\""),
             "not UTF-8"),
    NOT_UTF8("high surrogate", VALID_REQUEST_WITH(", \"x\": \"\xed\xa0\x80\""), "not UTF-8"),
    NOT_UTF8("low surrogate", VALID_REQUEST_WITH(", \"x\": \"\xed\xbf\xbf\""), "not UTF-8"),
    NOT_UTF8("beyond U+10FFFF", VALID_REQUEST_WITH(", \"x\": \"\xf4\x90\x80\x80\""), "not UTF-8"),
    NOT_UTF8("5-byte form", VALID_REQUEST_WITH(", \"x\": \"\xf8\x88\x80\x80\x80\""), "not UTF-8"),
    NOT_UTF8("multibyte cut by a quote", VALID_REQUEST_WITH(", \"x\": \"\xe2\x82\""), "not UTF-8"),
    NOT_UTF8("truncated multibyte at the end", "{\"x\": \"\xe2\x82", "truncated UTF-8 sequence"),
    NOT_UTF8("invalid byte after the object", VALID_REQUEST "\xff", "not UTF-8"),
    NOT_UTF8("invalid byte instead of the object", "\xff" VALID_REQUEST, "not UTF-8"),
    NOT_UTF8("bad UTF-8 after a broken rule",
             REQUEST("\"timestamp\": -1, ", F_PROTOCOL, F_VERSION, F_CLASS, F_UUID, F_NAME,
                     "\"rendezvous_id\": \"\xff\", "),
             "not UTF-8"),
    NOT_JSON("broken JSON before bad UTF-8", "{\"x\" 1, \"y\": \"\xff\"}", "malformed JSON"),
    NOT_UTF8("bad UTF-8 before broken JSON", "{\"y\": \"\xff\", \"x\" 1}", "not UTF-8"),
};

/* ---- Helpers ------------------------------------------------------------- */

static struct outcome parse_in_chunks(const void *data, size_t length, size_t chunk)
{
    const unsigned char *bytes = data;
    struct outcome outcome;
    struct request_parser *parser = request_parser_new();

    assert_non_null(parser);
    memset(&outcome, 0, sizeof(outcome));
    for (size_t offset = 0; offset < length; offset += chunk) {
        size_t size = length - offset < chunk ? length - offset : chunk;
        request_parser_feed(parser, bytes + offset, size);
    }
    outcome.verdict = request_parser_finish(parser, &outcome.request, &outcome.reason);
    outcome.saw_rendezvous_name = request_parser_saw_rendezvous_name(parser);
    request_parser_free(parser);
    return outcome;
}

static struct outcome parse_whole(const void *data, size_t length)
{
    return parse_in_chunks(data, length, length == 0 ? 1 : length);
}

static struct outcome parse_split(const void *data, size_t length, size_t split)
{
    const unsigned char *bytes = data;
    struct outcome outcome;
    struct request_parser *parser = request_parser_new();

    assert_non_null(parser);
    memset(&outcome, 0, sizeof(outcome));
    request_parser_feed(parser, bytes, split);
    request_parser_feed(parser, bytes + split, length - split);
    outcome.verdict = request_parser_finish(parser, &outcome.request, &outcome.reason);
    outcome.saw_rendezvous_name = request_parser_saw_rendezvous_name(parser);
    request_parser_free(parser);
    return outcome;
}

static bool outcomes_equal(const struct outcome *first, const struct outcome *second)
{
    if (first->verdict != second->verdict ||
        first->saw_rendezvous_name != second->saw_rendezvous_name)
        return false;
    if ((first->reason == NULL) != (second->reason == NULL))
        return false;
    if (first->reason != NULL && strcmp(first->reason, second->reason) != 0)
        return false;
    if (first->verdict != REQUEST_VALID)
        return true;
    return strcmp(first->request.request_uuid, second->request.request_uuid) == 0 &&
           strcmp(first->request.rid, second->request.rid) == 0 &&
           first->request.timestamp == second->request.timestamp;
}

static void assert_outcomes_equal(const struct outcome *expected, const struct outcome *actual,
                                  const char *name, const char *how, size_t at)
{
    if (outcomes_equal(expected, actual))
        return;
    print_error("case \"%s\": %s %zu gives verdict %d (%s), whole gives %d (%s)\n", name, how, at,
                actual->verdict, actual->reason ? actual->reason : "-", expected->verdict,
                expected->reason ? expected->reason : "-");
    fail();
}

/* Parse in one piece, in 1-byte chunks and split at every position: all the
 * same. Returns the outcome. */
static struct outcome parse_every_way(const void *data, size_t length, const char *name)
{
    struct outcome whole = parse_whole(data, length);
    struct outcome bytewise = parse_in_chunks(data, length, 1);
    assert_outcomes_equal(&whole, &bytewise, name, "1-byte chunks of", length);
    for (size_t split = 0; split <= length; split++) {
        struct outcome halves = parse_split(data, length, split);
        assert_outcomes_equal(&whole, &halves, name, "split at", split);
    }
    return whole;
}

static unsigned char *read_file(const char *path, size_t *length)
{
    FILE *file = fopen(path, "rb");
    assert_non_null(file);
    assert_int_equal(fseek(file, 0, SEEK_END), 0);
    long size = ftell(file);
    assert_true(size >= 0);
    rewind(file);
    unsigned char *data = malloc((size_t)size + 1);
    assert_non_null(data);
    assert_int_equal(fread(data, 1, (size_t)size, file), (size_t)size);
    fclose(file);
    data[size] = '\0';
    *length = (size_t)size;
    return data;
}

/* Read one top-level string field of a small JSON file, with LEJP. */
struct json_field_reader {
    const char *key;
    char value[128];
    bool found;
};

static signed char json_field_reader_callback(struct lejp_ctx *ctx, char reason)
{
    struct json_field_reader *reader = ctx->user;
    if (reason == LEJPCB_VAL_STR_END && ctx->sp == 1 && strcmp(ctx->path, reader->key) == 0 &&
        ctx->npos < sizeof(reader->value)) {
        memcpy(reader->value, ctx->buf, ctx->npos);
        reader->value[ctx->npos] = '\0';
        reader->found = true;
    }
    return 0;
}

static void read_json_string(const char *path, const char *key, char *out, size_t cap)
{
    size_t length;
    unsigned char *data = read_file(path, &length);
    struct json_field_reader reader = {.key = key};
    struct lejp_ctx ctx;

    lejp_construct(&ctx, json_field_reader_callback, &reader, NULL, 0);
    assert_true(lejp_parse(&ctx, data, (int)length) >= 0);
    lejp_destruct(&ctx);
    free(data);
    assert_true(reader.found);
    assert_true(strlen(reader.value) < cap);
    strcpy(out, reader.value);
}

static unsigned char *read_hex_file(const char *path, size_t *length)
{
    size_t text_length;
    unsigned char *text = read_file(path, &text_length);
    while (text_length > 0 && (text[text_length - 1] == '\n' || text[text_length - 1] == '\r'))
        text_length--;
    assert_int_equal(text_length % 2, 0);
    unsigned char *bytes = malloc(text_length / 2 + 1);
    assert_non_null(bytes);
    for (size_t index = 0; index < text_length / 2; index++) {
        unsigned int byte;
        char pair[3] = {(char)text[2 * index], (char)text[2 * index + 1], '\0'};
        assert_int_equal(sscanf(pair, "%2x", &byte), 1);
        bytes[index] = (unsigned char)byte;
    }
    free(text);
    *length = text_length / 2;
    return bytes;
}

/* ---- Tests ----------------------------------------------------------------- */

static void test_table_cases(void **state)
{
    (void)state;
    for (size_t index = 0; index < sizeof(request_cases) / sizeof(request_cases[0]); index++) {
        const struct request_case *test_case = &request_cases[index];
        struct outcome outcome =
            parse_every_way(test_case->json, test_case->length, test_case->name);
        bool reason_matches =
            test_case->reason == NULL
                ? outcome.reason == NULL
                : outcome.reason != NULL && strcmp(outcome.reason, test_case->reason) == 0;
        if (outcome.verdict != test_case->verdict || !reason_matches) {
            print_error("case \"%s\": verdict %d (%s), expected %d (%s)\n", test_case->name,
                        outcome.verdict, outcome.reason ? outcome.reason : "-", test_case->verdict,
                        test_case->reason ? test_case->reason : "-");
            fail();
        }
        if (outcome.reason != NULL)
            assert_true(strlen(outcome.reason) < 100);
    }
}

static void check_captured_request(const char *file, const char *request_uuid, double timestamp)
{
    char seed_rid[RID_HEX_LENGTH + 1];
    size_t length;
    unsigned char *data;

    read_json_string(FRAMES_DIR "seed.json", "rendezvous_id", seed_rid, sizeof(seed_rid));
    data = read_file(file, &length);
    struct outcome outcome = parse_every_way(data, length, file);
    assert_int_equal(outcome.verdict, REQUEST_VALID);
    assert_null(outcome.reason);
    assert_true(outcome.saw_rendezvous_name);
    assert_string_equal(outcome.request.request_uuid, request_uuid);
    assert_string_equal(outcome.request.rid, seed_rid);
    assert_true(outcome.request.timestamp == timestamp);
    /* The expected uuid is the one in the file, not just a constant here. */
    assert_non_null(strstr((const char *)data, request_uuid));

    /* Every proper prefix is a truncated document. */
    for (size_t prefix = 1; prefix < length; prefix++) {
        struct outcome truncated = parse_whole(data, prefix);
        assert_int_equal(truncated.verdict, REQUEST_NOT_JSON);
        assert_string_equal(truncated.reason, "truncated JSON");
    }
    free(data);
}

static void test_captured_py_request(void **state)
{
    (void)state;
    check_captured_request(FRAMES_DIR "py_request_rendezvous.json", TEST_UUID, 1795596873.7172456);
}

static void test_captured_js_request(void **state)
{
    (void)state;
    check_captured_request(FRAMES_DIR "js_request_rendezvous.json",
                           "dbeb2819-c2a6-4b1f-8e9f-0f0c27b396c0", 1795596874.039);
}

static void test_uppercase_rid_is_lowercased(void **state)
{
    (void)state;
    static const char json[] =
        REQUEST(F_TIMESTAMP, F_PROTOCOL, F_VERSION, F_CLASS,
                "\"request_uuid\": \"0811A20B-3A4A-400E-8E1B-180D43727D7B\", ", F_NAME,
                "\"rendezvous_id\": \"" TEST_RID_UPPER "\", ");
    struct rendezvous_request request;
    const char *reason = "unset";

    assert_int_equal(request_parse(json, sizeof(json) - 1, &request, &reason), REQUEST_VALID);
    assert_null(reason);
    assert_string_equal(request.rid, TEST_RID);
    /* The uuid is echoed back as the client sent it. */
    assert_string_equal(request.request_uuid, "0811A20B-3A4A-400E-8E1B-180D43727D7B");
}

static void test_mixed_case_rid_is_lowercased(void **state)
{
    (void)state;
    static const char json[] =
        REQUEST(F_TIMESTAMP, F_PROTOCOL, F_VERSION, F_CLASS, F_UUID, F_NAME,
                "\"rendezvous_id\": "
                "\"F66d7935Fb71dafa8493e8194e9eda3ed95406bd1376f71dd1f47961581D5646\", ");
    struct rendezvous_request request;

    assert_int_equal(request_parse(json, sizeof(json) - 1, &request, NULL), REQUEST_VALID);
    assert_string_equal(request.rid, TEST_RID);
}

static void test_timestamp_values(void **state)
{
    (void)state;
    static const char zero[] =
        REQUEST("\"timestamp\": -0, ", F_PROTOCOL, F_VERSION, F_CLASS, F_UUID, F_NAME, F_RID);
    static const char exponent[] =
        REQUEST("\"timestamp\": 15e2, ", F_PROTOCOL, F_VERSION, F_CLASS, F_UUID, F_NAME, F_RID);
    struct rendezvous_request request;

    assert_int_equal(request_parse(zero, sizeof(zero) - 1, &request, NULL), REQUEST_VALID);
    assert_true(request.timestamp == 0);
    assert_int_equal(request_parse(exponent, sizeof(exponent) - 1, &request, NULL), REQUEST_VALID);
    assert_true(request.timestamp == 1500);
}

/* Build "<valid request minus its brace>, "deep": <open><inner><close>}". */
static char *build_nested_request(const char *open, const char *inner, const char *close, int depth)
{
    static const char head[] = VALID_REQUEST_WITH(", \"deep\": ");
    size_t head_length = sizeof(head) - 2; /* without the closing brace */
    size_t size = head_length + (strlen(open) + strlen(close)) * (size_t)depth + strlen(inner) + 2;
    char *json = malloc(size);
    assert_non_null(json);
    memcpy(json, head, head_length);
    json[head_length] = '\0';
    for (int level = 0; level < depth; level++)
        strcat(json, open);
    strcat(json, inner);
    for (int level = 0; level < depth; level++)
        strcat(json, close);
    strcat(json, "}");
    return json;
}

static void expect_nested(const char *open, const char *inner, const char *close, int depth,
                          enum request_verdict verdict)
{
    char *json = build_nested_request(open, inner, close, depth);
    size_t length = strlen(json);
    /* Every split of a huge message would take too long: whole and bytewise. */
    struct outcome outcome =
        length < 10000 ? parse_every_way(json, length, open) : parse_whole(json, length);
    if (length >= 10000) {
        struct outcome bytewise = parse_in_chunks(json, length, 1);
        assert_outcomes_equal(&outcome, &bytewise, open, "1-byte chunks of", length);
    }
    if (outcome.verdict != verdict) {
        print_error("depth %d of %s: verdict %d (%s)\n", depth, open, outcome.verdict,
                    outcome.reason ? outcome.reason : "-");
        fail();
    }
    if (verdict == REQUEST_NOT_JSON)
        assert_string_equal(outcome.reason, "JSON nested too deeply");
    free(json);
}

static void test_nesting_depth(void **state)
{
    (void)state;
    expect_nested("[", "1", "]", 5, REQUEST_VALID);
    expect_nested("[", "1", "]", 6, REQUEST_NOT_JSON);
    expect_nested("{\"k\": ", "1", "}", 10, REQUEST_VALID);
    expect_nested("{\"k\": ", "1", "}", 11, REQUEST_NOT_JSON);
    expect_nested("{\"k\": ", "1", "}", 1000, REQUEST_NOT_JSON);
    expect_nested("[", "1", "]", 100000, REQUEST_NOT_JSON);
    /* Alternating objects and arrays within both limits. */
    expect_nested("{\"k\": [", "1", "]}", 4, REQUEST_VALID);
}

/* A large unknown value is streamed through, not stored. */
static void test_large_unknown_value(void **state)
{
    (void)state;
    static const char head[] = VALID_REQUEST_WITH(", \"padding\": \"");
    size_t head_length = sizeof(head) - 2;
    size_t padding = 1 << 20;
    char *json = malloc(head_length + padding + 3);
    assert_non_null(json);
    memcpy(json, head, head_length);
    memset(json + head_length, 'a', padding);
    memcpy(json + head_length + padding, "\"}", 3);
    size_t length = head_length + padding + 2;

    assert_int_equal(parse_whole(json, length).verdict, REQUEST_VALID);
    struct outcome chunked = parse_in_chunks(json, length, 1000);
    assert_int_equal(chunked.verdict, REQUEST_VALID);
    assert_string_equal(chunked.request.rid, TEST_RID);
    free(json);
}

static void check_ciphertext(const char *file, enum request_verdict verdict)
{
    size_t length;
    unsigned char *data = read_hex_file(file, &length);

    assert_true(length >= 32 && length % 16 == 0);
    struct outcome outcome = parse_every_way(data, length, file);
    assert_int_equal(outcome.verdict, verdict);
    assert_false(outcome.saw_rendezvous_name);

    /* Once failed, the parser ignores what follows, even a valid request. */
    static const char valid[] = VALID_REQUEST;
    struct request_parser *parser = request_parser_new();
    assert_non_null(parser);
    request_parser_feed(parser, data, length);
    request_parser_feed(parser, valid, sizeof(valid) - 1);
    assert_int_equal(request_parser_finish(parser, NULL, NULL), verdict);
    request_parser_free(parser);
    free(data);
}

static void test_ciphertext(void **state)
{
    (void)state;
    /* py's first byte 0x83 is a stray UTF-8 continuation byte; js's first
     * byte is 'L', ASCII but not the start of an object. */
    check_ciphertext(FRAMES_DIR "py_request_ping_encrypted.hex", REQUEST_NOT_UTF8);
    check_ciphertext(FRAMES_DIR "js_request_ping_encrypted.hex", REQUEST_NOT_JSON);
}

static void expect_saw_name(const char *json, bool saw, enum request_verdict verdict)
{
    struct outcome outcome = parse_every_way(json, strlen(json), json);
    if (outcome.saw_rendezvous_name != saw || outcome.verdict != verdict) {
        print_error("%s: saw %d verdict %d\n", json, outcome.saw_rendezvous_name, outcome.verdict);
        fail();
    }
}

static void test_saw_rendezvous_name(void **state)
{
    (void)state;
    size_t length;
    char *ping = (char *)read_file(FRAMES_DIR "py_request_ping_plaintext.json", &length);

    expect_saw_name(VALID_REQUEST, true, REQUEST_VALID);
    expect_saw_name(ping, false, REQUEST_INVALID);
    free(ping);
    /* Named itself a REQUEST_RENDEZVOUS, but broken before or after that. */
    expect_saw_name(REQUEST(F_TIMESTAMP, F_PROTOCOL, F_VERSION, F_CLASS,
                            "\"request_uuid\": \"nope\", ", F_NAME, F_RID),
                    true, REQUEST_INVALID);
    expect_saw_name(REQUEST(F_TIMESTAMP, F_PROTOCOL, F_VERSION, F_CLASS, F_UUID, F_NAME,
                            "\"rendezvous_id\": \"short\", "),
                    true, REQUEST_INVALID);
    expect_saw_name("{\"request_name\": \"REQUEST_RENDEZVOUS\"}", true, REQUEST_INVALID);
    expect_saw_name("{\"request_name\": \"REQUEST_RENDEZVOUS\", \"x\": ", true, REQUEST_NOT_JSON);
    /* Not a top-level request_name string equal to REQUEST_RENDEZVOUS. */
    expect_saw_name("{\"request_name\": \"request_rendezvous\"}", false, REQUEST_INVALID);
    expect_saw_name("{\"request_name\": \"REQUEST_RENDEZVOUS \"}", false, REQUEST_INVALID);
    expect_saw_name("{\"request_name\": [\"REQUEST_RENDEZVOUS\"]}", false, REQUEST_INVALID);
    expect_saw_name("{\"o\": {\"request_name\": \"REQUEST_RENDEZVOUS\"}}", false, REQUEST_INVALID);
    expect_saw_name("{\"x\": \"REQUEST_RENDEZVOUS\"}", false, REQUEST_INVALID);
    expect_saw_name("\"REQUEST_RENDEZVOUS\"", false, REQUEST_NOT_JSON);
}

static void test_reset_reuses_the_parser(void **state)
{
    (void)state;
    static const char valid[] = VALID_REQUEST;
    static const char broken[] = "\xff{";
    static const char named[] = "{\"request_name\": \"REQUEST_RENDEZVOUS\"}";
    struct request_parser *parser = request_parser_new();
    struct rendezvous_request request;
    const char *reason;

    assert_non_null(parser);
    for (int round = 0; round < 3; round++) {
        request_parser_feed(parser, broken, sizeof(broken) - 1);
        assert_int_equal(request_parser_finish(parser, &request, &reason), REQUEST_NOT_UTF8);
        assert_string_equal(reason, "not UTF-8");

        request_parser_reset(parser);
        request_parser_feed(parser, named, sizeof(named) - 1);
        assert_int_equal(request_parser_finish(parser, &request, &reason), REQUEST_INVALID);
        assert_true(request_parser_saw_rendezvous_name(parser));

        request_parser_reset(parser);
        assert_false(request_parser_saw_rendezvous_name(parser));
        request_parser_feed(parser, valid, sizeof(valid) - 1);
        assert_int_equal(request_parser_finish(parser, &request, &reason), REQUEST_VALID);
        assert_null(reason);
        assert_string_equal(request.rid, TEST_RID);
        request_parser_reset(parser);
    }
    /* A reset parser that is fed nothing sees an empty message. */
    assert_int_equal(request_parser_finish(parser, NULL, &reason), REQUEST_NOT_JSON);
    assert_string_equal(reason, "empty message");
    request_parser_free(parser);
    request_parser_free(NULL);
}

static void test_finish_without_outputs(void **state)
{
    (void)state;
    static const char valid[] = VALID_REQUEST;
    struct request_parser *parser = request_parser_new();

    assert_non_null(parser);
    request_parser_feed(parser, valid, sizeof(valid) - 1);
    request_parser_feed(parser, NULL, 0);
    assert_int_equal(request_parser_finish(parser, NULL, NULL), REQUEST_VALID);
    request_parser_free(parser);
    assert_int_equal(request_parse(valid, sizeof(valid) - 1, NULL, NULL), REQUEST_VALID);
}

/* The parser reads exactly the given bytes: a message cut out of a larger
 * buffer is judged on its own bytes, not on what follows in memory. */
static void test_reads_only_the_given_length(void **state)
{
    (void)state;
    static const char buffer[] = VALID_REQUEST "garbage";
    size_t length = sizeof(VALID_REQUEST) - 1;

    assert_int_equal(request_parse(buffer, length, NULL, NULL), REQUEST_VALID);
    assert_int_equal(request_parse(buffer, length - 1, NULL, NULL), REQUEST_NOT_JSON);
    /* An exactly sized heap copy, so ASan catches any read past the end. */
    char *copy = malloc(length);
    assert_non_null(copy);
    memcpy(copy, buffer, length);
    assert_int_equal(parse_every_way(copy, length, "heap copy").verdict, REQUEST_VALID);
    free(copy);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_cases),
        cmocka_unit_test(test_captured_py_request),
        cmocka_unit_test(test_captured_js_request),
        cmocka_unit_test(test_uppercase_rid_is_lowercased),
        cmocka_unit_test(test_mixed_case_rid_is_lowercased),
        cmocka_unit_test(test_timestamp_values),
        cmocka_unit_test(test_nesting_depth),
        cmocka_unit_test(test_large_unknown_value),
        cmocka_unit_test(test_ciphertext),
        cmocka_unit_test(test_saw_rendezvous_name),
        cmocka_unit_test(test_reset_reuses_the_parser),
        cmocka_unit_test(test_finish_without_outputs),
        cmocka_unit_test(test_reads_only_the_given_length),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

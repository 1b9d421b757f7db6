/*
 * fuzz_request_parser.c - libFuzzer target for node/request_parser.c.
 *
 * The parser sees the first frame of every connection, so it must survive
 * any bytes (ASan/UBSan catch memory and undefined-behaviour bugs) and must
 * judge a message the same however it is fragmented: the input is parsed
 * whole, split in two at a point derived from the data, and in small chunks
 * of a data-derived size, and the three outcomes must agree exactly. A valid
 * request must also hold what the relay relies on (a lowercase rid, a
 * canonical uuid, a finite timestamp) and be answerable with a notification.
 *
 * Build: tests/fuzz/CMakeLists.txt (clang only). Run, for example:
 *   fuzz_request_parser -max_total_time=60 corpus/ seeds/
 * with the captured requests of shared/vectors/frames as seeds.
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relay/protocol.h"

struct fuzz_outcome {
    enum request_verdict verdict;
    const char *reason;
    bool saw_rendezvous_name;
    struct rendezvous_request request;
};

static void fuzz_check(bool condition, const char *what)
{
    if (condition)
        return;
    fprintf(stderr, "fuzz_request_parser: %s\n", what);
    abort();
}

/* Parse data in pieces of the given sizes: first, then every chunk bytes. */
static struct fuzz_outcome fuzz_parse(struct request_parser *parser, const uint8_t *data,
                                      size_t size, size_t first, size_t chunk)
{
    struct fuzz_outcome outcome;

    memset(&outcome, 0, sizeof(outcome));
    request_parser_reset(parser);
    request_parser_feed(parser, data, first);
    for (size_t offset = first; offset < size; offset += chunk) {
        size_t piece = size - offset < chunk ? size - offset : chunk;
        request_parser_feed(parser, data + offset, piece);
    }
    outcome.verdict = request_parser_finish(parser, &outcome.request, &outcome.reason);
    outcome.saw_rendezvous_name = request_parser_saw_rendezvous_name(parser);
    return outcome;
}

static bool fuzz_reasons_equal(const char *first, const char *second)
{
    if (first == NULL || second == NULL)
        return first == second;
    return strcmp(first, second) == 0;
}

static void fuzz_compare(const struct fuzz_outcome *whole, const struct fuzz_outcome *other)
{
    fuzz_check(whole->verdict == other->verdict, "verdict depends on fragmentation");
    fuzz_check(fuzz_reasons_equal(whole->reason, other->reason), "reason depends on fragmentation");
    fuzz_check(whole->saw_rendezvous_name == other->saw_rendezvous_name,
               "saw_rendezvous_name depends on fragmentation");
    if (whole->verdict != REQUEST_VALID)
        return;
    fuzz_check(strcmp(whole->request.rid, other->request.rid) == 0, "rid differs");
    fuzz_check(strcmp(whole->request.request_uuid, other->request.request_uuid) == 0,
               "request_uuid differs");
    fuzz_check(whole->request.timestamp == other->request.timestamp, "timestamp differs");
}

static void fuzz_check_valid(const struct fuzz_outcome *outcome)
{
    const struct rendezvous_request *request = &outcome->request;
    char json[NOTIFICATION_MAX_BYTES];

    fuzz_check(outcome->reason == NULL, "valid request with a reason");
    fuzz_check(outcome->saw_rendezvous_name, "valid request without its name");
    fuzz_check(strlen(request->rid) == RID_HEX_LENGTH &&
                   strspn(request->rid, "0123456789abcdef") == RID_HEX_LENGTH,
               "rid is not 64 lowercase hex digits");
    fuzz_check(uuid_text_is_valid(request->request_uuid, strlen(request->request_uuid)),
               "request_uuid is not canonical");
    fuzz_check(isfinite(request->timestamp) && request->timestamp >= 0, "bad timestamp");
    size_t length = notification_build(json, sizeof(json), NOTIFY_RENDEZVOUS, request->rid,
                                       request->request_uuid);
    fuzz_check(length > 0 && length < NOTIFICATION_MAX_BYTES, "cannot answer a valid request");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct request_parser *parser;
    if (parser == NULL)
        parser = request_parser_new();
    fuzz_check(parser != NULL, "out of memory");

    size_t split = 0;
    size_t chunk = 1;
    if (size > 0) {
        split = ((size_t)data[0] * 257 + data[size - 1]) % (size + 1);
        chunk = 1 + data[size / 2] % 7;
    }

    struct fuzz_outcome whole = fuzz_parse(parser, data, size, size, 1);
    struct fuzz_outcome halves = fuzz_parse(parser, data, size, split, size);
    struct fuzz_outcome chunks = fuzz_parse(parser, data, size, 0, chunk);
    fuzz_compare(&whole, &halves);
    fuzz_compare(&whole, &chunks);

    /* The one-shot helper is the same parser. */
    struct rendezvous_request request;
    const char *reason = NULL;
    fuzz_check(request_parse(data, size, &request, &reason) == whole.verdict,
               "request_parse disagrees");
    fuzz_check(fuzz_reasons_equal(reason, whole.reason), "request_parse reason disagrees");

    if (whole.reason != NULL)
        fuzz_check(strlen(whole.reason) < 100, "reason too long");
    if (whole.verdict == REQUEST_VALID)
        fuzz_check_valid(&whole);
    return 0;
}

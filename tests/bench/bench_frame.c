/*
 * bench_frame.c - the self-checking frames relay-bench sends (see bench.h).
 *
 * Every data frame carries a 20-byte header - magic, stream id (the pair),
 * sequence number, total length - and then payload bytes cut from a fixed
 * pseudo-random pattern at an offset derived from (stream, seq). The
 * receiver recomputes all of it, so a flipped bit anywhere (header or
 * payload), a truncated or padded frame, a frame from another pair, a
 * skipped or repeated sequence number are each caught, and the check is a
 * memcmp against the pattern: cheap enough to verify every frame of a
 * multi-hundred-MB/s stream without the client becoming the bottleneck.
 */
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define BENCH_FRAME_MAGIC 0x48524252u /* "RBRH" little-endian */
#define BENCH_FRAME_OFFSETS (64 * 1024)

static unsigned char *bench_frame_pattern;

/* splitmix64: a fixed seed gives the same pattern in every process, so a
 * frame built by one worker checks in another. */
static uint64_t bench_frame_next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

int bench_frame_init(void)
{
    size_t size = BENCH_FRAME_OFFSETS + BENCH_FRAME_MAX;
    if (bench_frame_pattern != NULL)
        return 0;
    bench_frame_pattern = malloc(size);
    if (bench_frame_pattern == NULL)
        return -1;
    uint64_t state = 0x52454c4159424e48ULL;
    for (size_t position = 0; position < size; position += sizeof(uint64_t)) {
        uint64_t word = bench_frame_next_random(&state);
        memcpy(bench_frame_pattern + position, &word, sizeof(word));
    }
    return 0;
}

static const unsigned char *bench_frame_payload_source(uint32_t stream, uint64_t seq)
{
    uint64_t offset = (seq * 40503u) ^ ((uint64_t)stream * 977u);
    return bench_frame_pattern + (offset & (BENCH_FRAME_OFFSETS - 1));
}

void bench_frame_build(unsigned char *out, size_t length, uint32_t stream, uint64_t seq)
{
    uint32_t magic = BENCH_FRAME_MAGIC, length32 = (uint32_t)length;
    memcpy(out, &magic, 4);
    memcpy(out + 4, &stream, 4);
    memcpy(out + 8, &seq, 8);
    memcpy(out + 16, &length32, 4);
    memcpy(out + BENCH_FRAME_HEADER, bench_frame_payload_source(stream, seq),
           length - BENCH_FRAME_HEADER);
}

enum bench_error_kind bench_frame_check(const unsigned char *data, size_t length, uint32_t stream,
                                        uint64_t expected_seq, size_t expected_length,
                                        uint64_t *seq)
{
    uint32_t magic, frame_stream, frame_length;
    uint64_t frame_seq;

    *seq = expected_seq;
    if (length < BENCH_FRAME_HEADER)
        return BENCH_ERROR_BAD_LENGTH;
    memcpy(&magic, data, 4);
    memcpy(&frame_stream, data + 4, 4);
    memcpy(&frame_seq, data + 8, 8);
    memcpy(&frame_length, data + 16, 4);
    if (magic != BENCH_FRAME_MAGIC || frame_stream != stream)
        return BENCH_ERROR_BAD_HEADER;
    if (frame_length != length || length != expected_length)
        return BENCH_ERROR_BAD_LENGTH;
    /* The content is checked before the sequence number is believed: a
     * damaged sequence number shows up as wrong content, not as a gap. */
    if (memcmp(data + BENCH_FRAME_HEADER, bench_frame_payload_source(stream, frame_seq),
               length - BENCH_FRAME_HEADER) != 0)
        return BENCH_ERROR_BAD_CONTENT;
    *seq = frame_seq;
    if (frame_seq > expected_seq)
        return BENCH_ERROR_GAP;
    if (frame_seq < expected_seq)
        return BENCH_ERROR_OUT_OF_ORDER;
    return BENCH_ERROR_KIND_COUNT;
}

bool bench_frame_receive(struct bench_result *result, const unsigned char *data, size_t length,
                         uint32_t stream, uint64_t *next_seq, size_t expected_length)
{
    uint64_t seq;
    enum bench_error_kind kind =
        bench_frame_check(data, length, stream, *next_seq, expected_length, &seq);

    result->frames_verified++;
    if (kind == BENCH_ERROR_KIND_COUNT) {
        *next_seq = seq + 1;
        return true;
    }
    bench_result_error(result, kind, "pair %u: %s: got seq %llu length %zu, expected seq %llu",
                       stream, bench_error_kind_name(kind), (unsigned long long)seq, length,
                       (unsigned long long)*next_seq);
    if (kind == BENCH_ERROR_GAP)
        *next_seq = seq + 1; /* resynchronise after the missing ones */
    else if (kind != BENCH_ERROR_OUT_OF_ORDER)
        (*next_seq)++; /* the expected frame arrived damaged */
    return false;
}

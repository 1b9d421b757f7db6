/*
 * bench_stream.c - the stream mode: established pairs push frames one way.
 *
 * Each pair's first peer sends S-byte frames (bench_frame.c) to its second
 * peer through the server, keeping at most --window frames in flight: a new
 * frame is queued from the receiver's message handler each time one
 * arrives, so the pipe stays full without unbounded queues anywhere. Every
 * frame is verified on arrival (sequence, length, content). Against
 * relay-echo the sender and receiver are one connection.
 *
 * "In flight" is sent minus the receiver's next expected sequence number,
 * so a frame the server lost (a gap) does not shrink the window for ever,
 * and the drain at the end waits exactly for the frames still owed.
 *
 * --stalled K adds K pairs whose receiver stops reading: their senders keep
 * up to 64 KiB queued in the client, the server's backpressure holds the
 * rest, and the normal pairs' rate shows whether one stalled receiver slows
 * anyone else (the isolation figure of run-suite).
 */
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define BENCH_STALLED_QUEUE (64 * 1024)

struct bench_stream;

struct bench_stream_pair {
    struct bench_stream *stream;
    uint32_t id;
    struct bench_client_connection *sender;
    struct bench_client_connection *receiver;
    uint64_t sent;
    uint64_t next_expected; /* the receiver's next sequence number */
    bool stalled;
    bool broken; /* its connection ended: no more sending or waiting */
};

struct bench_stream {
    struct bench_worker *worker;
    struct bench_stream_pair *pairs;
    struct bench_peer *first;
    struct bench_peer *second;
    size_t count; /* normal pairs first, then the stalled ones */
    unsigned char *scratch;
    uint64_t window;
    bool sending;
    bool counting;
};

static int bench_stream_send_one(struct bench_stream *stream, struct bench_stream_pair *pair)
{
    size_t length = stream->worker->options->frame_bytes;
    bench_frame_build(stream->scratch, length, pair->id, pair->sent);
    if (bench_client_send(pair->sender, stream->scratch, length, true) != 0)
        return -1;
    pair->sent++;
    if (pair->stalled)
        stream->worker->result->stalled_bytes += length;
    else
        stream->worker->result->frames_sent++;
    return 0;
}

static void bench_stream_refill(struct bench_stream *stream, struct bench_stream_pair *pair)
{
    while (stream->sending && !pair->broken && pair->sent - pair->next_expected < stream->window)
        if (bench_stream_send_one(stream, pair) != 0)
            break; /* the state check of the main loop reports it */
}

static void bench_stream_on_frame(struct bench_client_connection *connection,
                                  const unsigned char *data, size_t length, bool binary, void *user)
{
    struct bench_stream_pair *pair = user;
    struct bench_stream *stream = pair->stream;
    struct bench_result *result = stream->worker->result;

    if (!binary)
        bench_result_error(result, BENCH_ERROR_UNEXPECTED, "pair %u: text message", pair->id);
    else
        bench_frame_receive(result, data, length, pair->id, &pair->next_expected,
                            stream->worker->options->frame_bytes);
    if (stream->counting) {
        result->frames_received++;
        result->bytes_received += length;
    }
    bench_stream_refill(stream, pair);
}

/* Relay target: the sender is told nothing after the rendezvous. */
static void bench_stream_on_unexpected(struct bench_client_connection *connection,
                                       const unsigned char *data, size_t length, bool binary,
                                       void *user)
{
    struct bench_stream_pair *pair = user;
    bench_result_error(pair->stream->worker->result, BENCH_ERROR_UNEXPECTED,
                       "pair %u: %zu-byte message to the sending peer", pair->id, length);
}

static void bench_stream_check_connections(struct bench_stream *stream)
{
    for (size_t index = 0; index < stream->count; index++) {
        struct bench_stream_pair *pair = &stream->pairs[index];
        if (pair->broken || (bench_client_state(pair->sender) == BENCH_CLIENT_OPEN &&
                             bench_client_state(pair->receiver) == BENCH_CLIENT_OPEN))
            continue;
        pair->broken = true;
        struct bench_client_connection *gone =
            bench_client_state(pair->sender) != BENCH_CLIENT_OPEN ? pair->sender : pair->receiver;
        bench_result_error(stream->worker->result, BENCH_ERROR_CLOSED,
                           "pair %u: connection closed during the run: %s", pair->id,
                           bench_client_error(gone));
    }
}

static void bench_stream_top_up_stalled(struct bench_stream *stream)
{
    for (size_t index = 0; index < stream->count; index++) {
        struct bench_stream_pair *pair = &stream->pairs[index];
        if (!pair->stalled || pair->broken)
            continue;
        while (bench_client_queued_bytes(pair->sender) < BENCH_STALLED_QUEUE)
            if (bench_stream_send_one(stream, pair) != 0)
                break;
    }
}

static int bench_stream_setup(struct bench_stream *stream)
{
    struct bench_worker *worker = stream->worker;
    bool echo = worker->options->target == BENCH_TARGET_ECHO;

    if (bench_rendezvous_pairs(worker, stream->first, stream->second, stream->count) != 0)
        return -1;
    for (size_t index = 0; index < stream->count; index++) {
        struct bench_stream_pair *pair = &stream->pairs[index];
        pair->stream = stream;
        pair->id = worker->first_pair + (uint32_t)index;
        pair->stalled = index >= (size_t)worker->pairs;
        pair->sender = stream->first[index].connection;
        pair->receiver = echo ? pair->sender : stream->second[index].connection;
        if (!echo)
            bench_client_set_handler(pair->sender, bench_stream_on_unexpected, pair);
        bench_client_set_handler(pair->receiver, bench_stream_on_frame, pair);
        if (pair->stalled)
            bench_client_pause_reading(pair->receiver);
    }
    return 0;
}

/* Service the loop until deadline_ns or until done(stream) holds. */
static void bench_stream_service_until(struct bench_stream *stream, int64_t deadline_ns,
                                       bool (*done)(struct bench_stream *stream))
{
    for (;;) {
        bench_stream_check_connections(stream);
        if (done != NULL && done(stream))
            return;
        int64_t remaining_ms = (deadline_ns - bench_now_ns()) / 1000000;
        if (remaining_ms <= 0)
            return;
        bench_stream_top_up_stalled(stream);
        bench_client_service(stream->worker->client, remaining_ms < 10 ? (int)remaining_ms : 10);
    }
}

static bool bench_stream_drained(struct bench_stream *stream)
{
    for (size_t index = 0; index < stream->count; index++) {
        struct bench_stream_pair *pair = &stream->pairs[index];
        if (!pair->stalled && !pair->broken && pair->next_expected < pair->sent)
            return false;
    }
    return true;
}

static void bench_stream_count_lost(struct bench_stream *stream)
{
    for (size_t index = 0; index < stream->count; index++) {
        struct bench_stream_pair *pair = &stream->pairs[index];
        if (pair->stalled || pair->next_expected >= pair->sent)
            continue;
        uint64_t missing = pair->sent - pair->next_expected;
        bench_result_error(stream->worker->result, BENCH_ERROR_LOST,
                           "pair %u: %llu frame(s) from seq %llu never arrived", pair->id,
                           (unsigned long long)missing, (unsigned long long)pair->next_expected);
        /* bench_result_error counted one */
        stream->worker->result->errors[BENCH_ERROR_LOST] += missing - 1;
    }
}

static void bench_stream_measure(struct bench_stream *stream)
{
    const struct bench_options *options = stream->worker->options;

    stream->sending = stream->counting = true;
    for (size_t index = 0; index < stream->count; index++)
        if (!stream->pairs[index].stalled)
            bench_stream_refill(stream, &stream->pairs[index]);
    int64_t window_end = bench_now_ns() + (int64_t)(options->duration * 1e9);
    bench_stream_service_until(stream, window_end, NULL);
    stream->sending = stream->counting = false;
    if (bench_sync_window_end(stream->worker->sync) != 0)
        return;
    int64_t drain_end = bench_now_ns() + (int64_t)options->drain_ms * 1000000;
    bench_stream_service_until(stream, drain_end, bench_stream_drained);
    bench_stream_count_lost(stream);
}

static void bench_stream_free(struct bench_stream *stream)
{
    for (size_t index = 0; index < stream->count && stream->first != NULL; index++) {
        bench_client_free(stream->first[index].connection);
        if (stream->second != NULL)
            bench_client_free(stream->second[index].connection);
    }
    free(stream->pairs);
    free(stream->first);
    free(stream->second);
    free(stream->scratch);
}

int bench_stream_run(struct bench_worker *worker)
{
    const struct bench_options *options = worker->options;
    struct bench_stream stream = {
        .worker = worker,
        .count = (size_t)worker->pairs + (size_t)worker->stalled,
        .window = (uint64_t)options->window,
    };
    int status = -1;

    stream.pairs = calloc(stream.count + 1, sizeof(*stream.pairs));
    stream.first = calloc(stream.count + 1, sizeof(*stream.first));
    stream.second = calloc(stream.count + 1, sizeof(*stream.second));
    stream.scratch = malloc(options->frame_bytes);
    if (stream.pairs == NULL || stream.first == NULL || stream.second == NULL ||
        stream.scratch == NULL) {
        bench_result_error(worker->result, BENCH_ERROR_CONNECT, "out of memory");
    } else if (bench_stream_setup(&stream) == 0 && bench_sync_ready(worker->sync) == 0) {
        bench_stream_measure(&stream);
        status = 0;
    }
    bench_stream_free(&stream);
    return status;
}

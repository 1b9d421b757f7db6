/*
 * bench_pingpong.c - the pingpong mode: round-trip latency, one frame in
 * flight per pair.
 *
 * Relay target: the first peer sends a frame, the second peer checks it and
 * sends the same bytes back, the first peer checks it again and records the
 * round trip. That is two passes through the server and four client steps
 * (send, receive + send, receive).
 *
 * Echo target: to keep the round trip the same shape, the frame is bounced
 * twice through relay-echo on one connection - the connection checks the
 * first echo and sends it again (the second peer's role), then checks the
 * second echo and records the round trip. Same two server passes, same four
 * client steps, so relayd's p50 divided by echo's p50 isolates what relayd
 * adds per pass.
 */
#include <stdlib.h>
#include <string.h>

#include "bench.h"

struct bench_pingpong;

struct bench_pingpong_pair {
    struct bench_pingpong *run;
    uint32_t id;
    struct bench_client_connection *pinger;
    struct bench_client_connection *ponger; /* echo target: the pinger */
    uint64_t seq;                           /* of the frame in flight */
    uint64_t pinger_next;
    uint64_t ponger_next;
    int64_t sent_ns;
    bool in_flight;
    bool bounced; /* echo target: the first pass is done */
    bool broken;
};

struct bench_pingpong {
    struct bench_worker *worker;
    struct bench_pingpong_pair *pairs;
    struct bench_peer *first;
    struct bench_peer *second;
    size_t count;
    unsigned char *scratch;
    bool running;
};

static void bench_pingpong_send(struct bench_pingpong *run, struct bench_pingpong_pair *pair)
{
    size_t length = run->worker->options->frame_bytes;
    bench_frame_build(run->scratch, length, pair->id, pair->seq);
    pair->sent_ns = bench_now_ns();
    pair->in_flight = bench_client_send(pair->pinger, run->scratch, length, true) == 0;
    if (pair->in_flight)
        run->worker->result->frames_sent++;
}

static bool bench_pingpong_check(struct bench_pingpong_pair *pair, const unsigned char *data,
                                 size_t length, bool binary, uint64_t *next)
{
    struct bench_worker *worker = pair->run->worker;
    if (!binary) {
        bench_result_error(worker->result, BENCH_ERROR_UNEXPECTED, "pair %u: text message",
                           pair->id);
        return false;
    }
    return bench_frame_receive(worker->result, data, length, pair->id, next,
                               worker->options->frame_bytes);
}

/* The second peer's role: check, send the same bytes back. */
static void bench_pingpong_bounce(struct bench_pingpong_pair *pair,
                                  struct bench_client_connection *connection,
                                  const unsigned char *data, size_t length, bool binary)
{
    bench_pingpong_check(pair, data, length, binary, &pair->ponger_next);
    pair->bounced = true;
    bench_client_send(connection, data, length, binary);
}

static void bench_pingpong_on_ponger(struct bench_client_connection *connection,
                                     const unsigned char *data, size_t length, bool binary,
                                     void *user)
{
    bench_pingpong_bounce(user, connection, data, length, binary);
}

static void bench_pingpong_on_pinger(struct bench_client_connection *connection,
                                     const unsigned char *data, size_t length, bool binary,
                                     void *user)
{
    struct bench_pingpong_pair *pair = user;
    struct bench_pingpong *run = pair->run;
    struct bench_result *result = run->worker->result;

    if (pair->pinger == pair->ponger && !pair->bounced) {
        bench_pingpong_bounce(pair, connection, data, length, binary);
        return;
    }
    int64_t rtt = bench_now_ns() - pair->sent_ns;
    bench_pingpong_check(pair, data, length, binary, &pair->pinger_next);
    pair->in_flight = false;
    pair->bounced = false;
    if (!run->running)
        return;
    bench_histogram_record(&result->latency, (uint64_t)rtt);
    result->round_trips++;
    pair->seq++;
    bench_pingpong_send(run, pair);
}

static void bench_pingpong_check_connections(struct bench_pingpong *run)
{
    for (size_t index = 0; index < run->count; index++) {
        struct bench_pingpong_pair *pair = &run->pairs[index];
        if (pair->broken || (bench_client_state(pair->pinger) == BENCH_CLIENT_OPEN &&
                             bench_client_state(pair->ponger) == BENCH_CLIENT_OPEN))
            continue;
        pair->broken = true;
        pair->in_flight = false;
        bench_result_error(run->worker->result, BENCH_ERROR_CLOSED,
                           "pair %u: connection closed during the run", pair->id);
    }
}

static bool bench_pingpong_idle(struct bench_pingpong *run)
{
    for (size_t index = 0; index < run->count; index++)
        if (run->pairs[index].in_flight)
            return false;
    return true;
}

static void bench_pingpong_service_until(struct bench_pingpong *run, int64_t deadline_ns,
                                         bool (*done)(struct bench_pingpong *run))
{
    for (;;) {
        bench_pingpong_check_connections(run);
        if (done != NULL && done(run))
            return;
        int64_t remaining_ms = (deadline_ns - bench_now_ns()) / 1000000;
        if (remaining_ms <= 0)
            return;
        bench_client_service(run->worker->client, remaining_ms < 10 ? (int)remaining_ms : 10);
    }
}

static void bench_pingpong_count_lost(struct bench_pingpong *run)
{
    for (size_t index = 0; index < run->count; index++)
        if (run->pairs[index].in_flight)
            bench_result_error(run->worker->result, BENCH_ERROR_LOST,
                               "pair %u: ping seq %llu never came back", run->pairs[index].id,
                               (unsigned long long)run->pairs[index].seq);
}

static int bench_pingpong_setup(struct bench_pingpong *run)
{
    struct bench_worker *worker = run->worker;
    bool echo = worker->options->target == BENCH_TARGET_ECHO;

    if (bench_rendezvous_pairs(worker, run->first, run->second, run->count) != 0)
        return -1;
    for (size_t index = 0; index < run->count; index++) {
        struct bench_pingpong_pair *pair = &run->pairs[index];
        pair->run = run;
        pair->id = worker->first_pair + (uint32_t)index;
        pair->pinger = run->first[index].connection;
        pair->ponger = echo ? pair->pinger : run->second[index].connection;
        bench_client_set_handler(pair->pinger, bench_pingpong_on_pinger, pair);
        if (!echo)
            bench_client_set_handler(pair->ponger, bench_pingpong_on_ponger, pair);
    }
    return 0;
}

static void bench_pingpong_measure(struct bench_pingpong *run)
{
    const struct bench_options *options = run->worker->options;

    run->running = true;
    for (size_t index = 0; index < run->count; index++)
        bench_pingpong_send(run, &run->pairs[index]);
    bench_pingpong_service_until(run, bench_now_ns() + (int64_t)(options->duration * 1e9), NULL);
    run->running = false;
    if (bench_sync_window_end(run->worker->sync) != 0)
        return;
    bench_pingpong_service_until(run, bench_now_ns() + (int64_t)options->drain_ms * 1000000,
                                 bench_pingpong_idle);
    bench_pingpong_count_lost(run);
}

int bench_pingpong_run(struct bench_worker *worker)
{
    struct bench_pingpong run = {.worker = worker, .count = (size_t)worker->pairs};
    int status = -1;

    run.pairs = calloc(run.count + 1, sizeof(*run.pairs));
    run.first = calloc(run.count + 1, sizeof(*run.first));
    run.second = calloc(run.count + 1, sizeof(*run.second));
    run.scratch = malloc(worker->options->frame_bytes);
    if (run.pairs == NULL || run.first == NULL || run.second == NULL || run.scratch == NULL) {
        bench_result_error(worker->result, BENCH_ERROR_CONNECT, "out of memory");
    } else if (bench_pingpong_setup(&run) == 0 && bench_sync_ready(worker->sync) == 0) {
        bench_pingpong_measure(&run);
        status = 0;
    }
    for (size_t index = 0; index < run.count && run.first != NULL; index++) {
        bench_client_free(run.first[index].connection);
        if (run.second != NULL)
            bench_client_free(run.second[index].connection);
    }
    free(run.pairs);
    free(run.first);
    free(run.second);
    free(run.scratch);
    return status;
}

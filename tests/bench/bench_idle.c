/*
 * bench_idle.c - the idle mode: N pending connections held, server memory
 * per connection.
 *
 * The runner samples the servers' VmRSS when the workers are ready (before
 * any connection exists) and again once every connection is pending (each
 * got NOT_READY for its own fresh rendezvous id from relayd, or its
 * immediate answer from relay-echo) and the server had a moment to settle.
 * The difference divided by N is the cost of one waiting peer: what a relay
 * of "perma-listening" services pays. With --url2 (relay target) the
 * connections alternate between the two nodes and the figure is summed
 * over every --server-pid.
 *
 * Connections open in batches so the listen backlog never overflows.
 * bench_idle_open() also serves --background: idle connections held while
 * another mode measures (the cost of many idle peers to the active ones).
 */
#include <stdlib.h>

#include "bench.h"

#define BENCH_IDLE_BATCH 200

static const char *bench_idle_url(const struct bench_options *options, size_t index)
{
    if (options->target == BENCH_TARGET_RELAY && index % 2 == 1)
        return bench_rendezvous_second_url(options);
    return options->url;
}

/* Open one batch and wait until each of its connections is pending. */
static int bench_idle_open_batch(struct bench_worker *worker, struct bench_peer *peers,
                                 struct bench_peer **waiting, size_t from, size_t count)
{
    const struct bench_options *options = worker->options;
    char rid[65];

    for (size_t index = from; index < from + count; index++) {
        waiting[index - from] = &peers[index];
        if (bench_random_rid(&worker->random, rid) != 0 ||
            bench_rendezvous_start(worker, &peers[index], bench_idle_url(options, index), rid) != 0)
            return -1;
    }
    bool echo = options->target == BENCH_TARGET_ECHO;
    return bench_rendezvous_await(worker, waiting, count, echo);
}

size_t bench_idle_open(struct bench_worker *worker, struct bench_peer *peers, size_t count)
{
    struct bench_peer *waiting[BENCH_IDLE_BATCH];
    size_t opened = 0;
    while (opened < count) {
        size_t batch = count - opened;
        if (batch > BENCH_IDLE_BATCH)
            batch = BENCH_IDLE_BATCH;
        if (bench_idle_open_batch(worker, peers, waiting, opened, batch) != 0)
            break;
        opened += batch;
    }
    return opened;
}

void bench_idle_close(struct bench_peer *peers, size_t count)
{
    for (size_t index = 0; index < count && peers != NULL; index++)
        bench_client_free(peers[index].connection);
}

int bench_idle_run(struct bench_worker *worker)
{
    size_t count = (size_t)worker->pairs;
    struct bench_peer *peers = calloc(count + 1, sizeof(*peers));
    int status = -1;

    if (peers == NULL) {
        bench_result_error(worker->result, BENCH_ERROR_CONNECT, "out of memory");
    } else if (bench_sync_ready(worker->sync) == 0) {
        int64_t start = bench_now_ns();
        worker->result->connections = bench_idle_open(worker, peers, count);
        worker->result->setup_s = (double)(bench_now_ns() - start) / 1e9;
        bench_sync_window_end(worker->sync);
        status = 0;
    }
    bench_idle_close(peers, count);
    free(peers);
    return status;
}

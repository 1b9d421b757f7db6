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
 */
#include <stdlib.h>

#include "bench.h"
#include "moneysocket_json.h"

#define BENCH_IDLE_BATCH 200

struct bench_idle {
    struct bench_worker *worker;
    struct bench_peer *peers;
    struct bench_peer **waiting;
    size_t count;
};

static const char *bench_idle_url(const struct bench_options *options, size_t index)
{
    if (options->target == BENCH_TARGET_RELAY && index % 2 == 1)
        return bench_rendezvous_second_url(options);
    return options->url;
}

/* Open one batch and wait until each of its connections is pending. */
static int bench_idle_open_batch(struct bench_idle *idle, size_t from, size_t count)
{
    const struct bench_options *options = idle->worker->options;
    char rid[65];

    for (size_t index = from; index < from + count; index++) {
        idle->waiting[index - from] = &idle->peers[index];
        if (moneysocket_json_new_rid(rid) != 0 ||
            bench_rendezvous_start(idle->worker, &idle->peers[index], bench_idle_url(options, index),
                                   rid) != 0)
            return -1;
    }
    bool echo = options->target == BENCH_TARGET_ECHO;
    return bench_rendezvous_await(idle->worker, idle->waiting, count, echo);
}

static void bench_idle_hold(struct bench_idle *idle)
{
    int64_t start = bench_now_ns();
    size_t opened = 0;
    while (opened < idle->count) {
        size_t batch = idle->count - opened;
        if (batch > BENCH_IDLE_BATCH)
            batch = BENCH_IDLE_BATCH;
        if (bench_idle_open_batch(idle, opened, batch) != 0)
            break;
        opened += batch;
    }
    idle->worker->result->connections = opened;
    idle->worker->result->setup_s = (double)(bench_now_ns() - start) / 1e9;
    /* Keep the loop turning while the runner samples memory: pings and
     * late answers are handled rather than queued in the kernel. */
    ws_client_service(idle->worker->client, 0);
}

int bench_idle_run(struct bench_worker *worker)
{
    struct bench_idle idle = {.worker = worker, .count = (size_t)worker->pairs};
    int status = -1;

    idle.peers = calloc(idle.count + 1, sizeof(*idle.peers));
    idle.waiting = calloc(BENCH_IDLE_BATCH, sizeof(*idle.waiting));
    if (idle.peers == NULL || idle.waiting == NULL) {
        bench_result_error(worker->result, BENCH_ERROR_CONNECT, "out of memory");
    } else if (bench_sync_ready(worker->sync) == 0) {
        bench_idle_hold(&idle);
        bench_sync_window_end(worker->sync);
        status = 0;
    }
    for (size_t index = 0; index < idle.count && idle.peers != NULL; index++)
        ws_client_free(idle.peers[index].connection);
    free(idle.peers);
    free(idle.waiting);
    return status;
}

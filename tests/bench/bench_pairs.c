/*
 * bench_pairs.c - the pairs mode: whole rendezvous, P pairs, C at a time.
 *
 * A pair is two fresh connections presenting one fresh rendezvous id; it is
 * done when both got NOTIFY_RENDEZVOUS, and then both sockets are dropped
 * and the next pair starts in its slot, so C pairs are always in progress.
 * Each peer's latency runs from its connect start to its NOTIFY_RENDEZVOUS
 * (TCP + WebSocket handshake + request + matchmaking); the rendezvous
 * latency of a pair runs from the later peer's WebSocket opening (when its
 * request goes out) to the later of the two notifications: the matching
 * alone. By default both peers
 * start at once; --stagger starts the second after the first got NOT_READY
 * (a service already listening), and then the first peer's latency includes
 * the whole of the second's.
 *
 * Against relay-echo a pair is also two connections, each answered at once
 * (echo_server.c), so "server CPU per pair" compares relayd's cost of a
 * rendezvous with the cost of two WebSocket connections that each exchange
 * one request and one notification-sized answer.
 *
 * After the first failure no new pair is started: a broken server ends the
 * run within one pair timeout instead of P of them.
 */
#include <stdlib.h>
#include <string.h>

#include "bench.h"

struct bench_pairs;

struct bench_pairs_peer {
    struct bench_peer peer;
    struct bench_pairs *run;
    bool started;
};

struct bench_pairs_slot {
    bool active;
    int64_t started_ns;
    char rid[65];
    struct bench_pairs_peer peers[2];
};

struct bench_pairs {
    struct bench_worker *worker;
    struct bench_pairs_slot *slots;
    int started;
    int finished;
    bool abandoned;
};

static void bench_pairs_on_message(struct bench_client_connection *connection,
                                   const unsigned char *data, size_t length, bool binary,
                                   void *user)
{
    struct bench_pairs_peer *peer = user;
    if (peer->peer.failed)
        return;
    bench_rendezvous_answer(peer->run->worker, &peer->peer, data, length, binary);
}

static void bench_pairs_start_peer(struct bench_pairs *run, struct bench_pairs_slot *slot,
                                   int which)
{
    const struct bench_options *options = run->worker->options;
    struct bench_pairs_peer *peer = &slot->peers[which];
    bool second_node = which == 1 && options->target == BENCH_TARGET_RELAY;
    const char *url = second_node ? bench_rendezvous_second_url(options) : options->url;

    peer->run = run;
    peer->started = true;
    if (bench_rendezvous_start(run->worker, &peer->peer, url, slot->rid) == 0)
        bench_client_set_handler(peer->peer.connection, bench_pairs_on_message, peer);
}

static void bench_pairs_start_slot(struct bench_pairs *run, struct bench_pairs_slot *slot)
{
    memset(slot, 0, sizeof(*slot));
    slot->active = true;
    slot->started_ns = bench_now_ns();
    run->started++;
    if (bench_random_rid(&run->worker->random, slot->rid) != 0) {
        bench_result_error(run->worker->result, BENCH_ERROR_CONNECT, "no random bytes for a rid");
        slot->peers[0].peer.failed = true;
        return;
    }
    bench_pairs_start_peer(run, slot, 0);
    if (!run->worker->options->stagger)
        bench_pairs_start_peer(run, slot, 1);
}

static void bench_pairs_release(struct bench_pairs *run, struct bench_pairs_slot *slot)
{
    for (int which = 0; which < 2; which++) {
        bench_client_free(slot->peers[which].peer.connection);
        slot->peers[which].peer.connection = NULL;
    }
    slot->active = false;
    run->finished++;
}

/* A started peer whose connection ended before its NOTIFY_RENDEZVOUS. */
static bool bench_pairs_peer_lost(struct bench_pairs *run, struct bench_pairs_peer *peer)
{
    if (!peer->started || peer->peer.notified)
        return false;
    if (peer->peer.failed)
        return true;
    enum bench_client_state state = bench_client_state(peer->peer.connection);
    if (state != BENCH_CLIENT_FAILED && state != BENCH_CLIENT_DONE)
        return false;
    bench_result_error(run->worker->result,
                       state == BENCH_CLIENT_FAILED ? BENCH_ERROR_CONNECT : BENCH_ERROR_CLOSED,
                       "rid %.12s: connection %s before NOTIFY_RENDEZVOUS: %s", peer->peer.rid,
                       state == BENCH_CLIENT_FAILED ? "failed" : "closed",
                       bench_client_error(peer->peer.connection));
    peer->peer.failed = true;
    return true;
}

static void bench_pairs_record(struct bench_pairs *run, struct bench_pairs_slot *slot)
{
    struct bench_result *result = run->worker->result;
    int64_t last_opened = 0, last_notified = 0;
    for (int which = 0; which < 2; which++) {
        struct bench_peer *peer = &slot->peers[which].peer;
        bench_histogram_record(&result->latency, (uint64_t)(peer->notified_ns - peer->started_ns));
        int64_t opened = bench_client_opened_ns(peer->connection);
        if (opened > last_opened)
            last_opened = opened;
        if (peer->notified_ns > last_notified)
            last_notified = peer->notified_ns;
    }
    if (last_opened > 0 && last_notified >= last_opened)
        bench_histogram_record(&result->rendezvous, (uint64_t)(last_notified - last_opened));
    result->pairs_done++;
}

static void bench_pairs_check_slot(struct bench_pairs *run, struct bench_pairs_slot *slot)
{
    struct bench_pairs_peer *first = &slot->peers[0], *second = &slot->peers[1];

    if (bench_pairs_peer_lost(run, first) || bench_pairs_peer_lost(run, second)) {
        run->abandoned = true;
        bench_pairs_release(run, slot);
        return;
    }
    if (first->peer.notified && second->peer.notified) {
        bench_pairs_record(run, slot);
        bench_pairs_release(run, slot);
        return;
    }
    if (!second->started && (first->peer.not_ready || first->peer.notified))
        bench_pairs_start_peer(run, slot, 1);
    if (bench_now_ns() - slot->started_ns > (int64_t)run->worker->options->timeout_ms * 1000000) {
        bench_result_error(run->worker->result, BENCH_ERROR_TIMEOUT,
                           "rid %.12s: pair not complete within %d ms", slot->rid,
                           run->worker->options->timeout_ms);
        run->abandoned = true;
        bench_pairs_release(run, slot);
    }
}

static void bench_pairs_loop(struct bench_pairs *run)
{
    struct bench_worker *worker = run->worker;
    int slots = worker->concurrency;

    while (run->finished < run->started || (run->started < worker->pairs && !run->abandoned)) {
        for (int index = 0; index < slots; index++)
            if (!run->slots[index].active && run->started < worker->pairs && !run->abandoned)
                bench_pairs_start_slot(run, &run->slots[index]);
        bench_client_service(worker->client, 5);
        for (int index = 0; index < slots; index++)
            if (run->slots[index].active)
                bench_pairs_check_slot(run, &run->slots[index]);
    }
}

int bench_pairs_run(struct bench_worker *worker)
{
    struct bench_pairs run = {.worker = worker};

    run.slots = calloc((size_t)worker->concurrency, sizeof(*run.slots));
    if (run.slots == NULL) {
        bench_result_error(worker->result, BENCH_ERROR_CONNECT, "out of memory");
        return -1;
    }
    int status = -1;
    if (bench_sync_ready(worker->sync) == 0) {
        bench_pairs_loop(&run);
        bench_sync_window_end(worker->sync);
        status = 0;
    }
    free(run.slots);
    return status;
}

/*
 * bench_rendezvous.c - the Moneysocket handshake as relay-bench does it.
 *
 * Every connection opens, sends one REQUEST_RENDEZVOUS (as py-moneysocket
 * writes it, via tests/client/moneysocket_json) and checks every
 * notification it gets back: right kind at the right time, its own
 * rendezvous_id and request_uuid echoed, a fresh UUID v4. relayd answers
 * NOT_READY then NOTIFY_RENDEZVOUS; relay-echo answers NOTIFY_RENDEZVOUS at
 * once (echo_server.c), so the same code checks both.
 *
 * Two styles: bench_rendezvous_await() runs the loop until a set of peers
 * got their answers (set-up of stream, pingpong and idle runs, answers
 * stored by bench_client); the pairs mode instead calls
 * bench_rendezvous_answer() from its own message handler.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "moneysocket_json.h"

#define BENCH_REQUEST_MAX 512

const char *bench_rendezvous_second_url(const struct bench_options *options)
{
    return options->url2 != NULL ? options->url2 : options->url;
}

int bench_rendezvous_start(struct bench_worker *worker, struct bench_peer *peer, const char *url,
                           const char *rid)
{
    char request[BENCH_REQUEST_MAX], error[160] = "";

    memcpy(peer->rid, rid, sizeof(peer->rid));
    peer->not_ready = peer->notified = peer->failed = false;
    if (bench_random_uuid(&worker->random, peer->request_uuid) != 0) {
        bench_result_error(worker->result, BENCH_ERROR_CONNECT, "no random bytes for a uuid");
        peer->failed = true;
        return -1;
    }
    size_t length = moneysocket_json_build_request(request, sizeof(request), peer->rid,
                                                   peer->request_uuid, moneysocket_json_now());
    peer->started_ns = bench_now_ns();
    peer->connection = bench_client_connect(worker->client, url, error, sizeof(error));
    if (peer->connection == NULL || length == 0 ||
        bench_client_send(peer->connection, request, length, true) != 0) {
        bench_result_error(worker->result, BENCH_ERROR_CONNECT, "%s: cannot connect: %s", url,
                           peer->connection != NULL ? bench_client_error(peer->connection) : error);
        peer->failed = true;
        return -1;
    }
    return 0;
}

static bool bench_rendezvous_field_is(const struct moneysocket_json_field *field, const char *text)
{
    return field->type == MONEYSOCKET_JSON_STRING && !field->truncated &&
           strcmp(field->text, text) == 0;
}

/* The fields every notification to this peer must carry. */
static bool bench_rendezvous_common_fields_ok(const struct bench_peer *peer,
                                              const struct moneysocket_message *message)
{
    return bench_rendezvous_field_is(&message->message_class, "NOTIFICATION") &&
           bench_rendezvous_field_is(&message->protocol, "Moneysocket") &&
           bench_rendezvous_field_is(&message->rendezvous_id, peer->rid) &&
           message->notification_uuid.type == MONEYSOCKET_JSON_STRING &&
           moneysocket_json_is_uuid_v4(message->notification_uuid.text);
}

static enum bench_answer bench_rendezvous_bad(struct bench_worker *worker, struct bench_peer *peer,
                                              const char *why)
{
    bench_result_error(worker->result, BENCH_ERROR_BAD_NOTIFICATION, "rid %.12s: %s", peer->rid,
                       why);
    peer->failed = true;
    return BENCH_ANSWER_BAD;
}

enum bench_answer bench_rendezvous_answer(struct bench_worker *worker, struct bench_peer *peer,
                                          const unsigned char *data, size_t length, bool binary)
{
    struct moneysocket_message message;

    if (!binary || moneysocket_json_parse(data, length, &message) != 0)
        return bench_rendezvous_bad(worker, peer, "answer is not a binary JSON notification");
    if (!bench_rendezvous_common_fields_ok(peer, &message))
        return bench_rendezvous_bad(worker, peer, "notification fields wrong");
    if (bench_rendezvous_field_is(&message.notification_name, "NOTIFY_RENDEZVOUS_END")) {
        bench_result_error(worker->result, BENCH_ERROR_CLOSED, "rid %.12s: rendezvous ended",
                           peer->rid);
        peer->failed = true;
        return BENCH_ANSWER_BAD;
    }
    if (!bench_rendezvous_field_is(&message.request_reference_uuid, peer->request_uuid))
        return bench_rendezvous_bad(worker, peer, "request_reference_uuid is not ours");
    if (peer->notified)
        return bench_rendezvous_bad(worker, peer, "notification after NOTIFY_RENDEZVOUS");
    if (bench_rendezvous_field_is(&message.notification_name, "NOTIFY_RENDEZVOUS_NOT_READY")) {
        peer->not_ready = true;
        return BENCH_ANSWER_NOT_READY;
    }
    if (!bench_rendezvous_field_is(&message.notification_name, "NOTIFY_RENDEZVOUS"))
        return bench_rendezvous_bad(worker, peer, "unknown notification_name");
    peer->notified = true;
    peer->notified_ns = bench_now_ns();
    return BENCH_ANSWER_RENDEZVOUS;
}

static bool bench_rendezvous_peer_done(const struct bench_peer *peer, bool want_rendezvous)
{
    return peer->failed || peer->notified || (!want_rendezvous && peer->not_ready);
}

/* Judge what bench_client stored for peer; note a connection that ended. */
static void bench_rendezvous_read_stored(struct bench_worker *worker, struct bench_peer *peer,
                                         bool want_rendezvous)
{
    struct bench_client_message message;

    while (!bench_rendezvous_peer_done(peer, want_rendezvous) &&
           bench_client_pending_messages(peer->connection) > 0) {
        bench_client_receive(peer->connection, &message);
        bench_rendezvous_answer(worker, peer, message.data, message.length, message.binary);
        bench_client_message_release(&message);
    }
    if (bench_rendezvous_peer_done(peer, want_rendezvous))
        return;
    enum bench_client_state state = bench_client_state(peer->connection);
    if (state == BENCH_CLIENT_FAILED || state == BENCH_CLIENT_DONE) {
        bench_result_error(worker->result,
                           state == BENCH_CLIENT_FAILED ? BENCH_ERROR_CONNECT : BENCH_ERROR_CLOSED,
                           "rid %.12s: connection %s during the handshake: %s", peer->rid,
                           state == BENCH_CLIENT_FAILED ? "failed" : "closed",
                           bench_client_error(peer->connection));
        peer->failed = true;
    }
}

int bench_rendezvous_await(struct bench_worker *worker, struct bench_peer **peers, size_t count,
                           bool want_rendezvous)
{
    int64_t deadline = bench_now_ns() + (int64_t)worker->options->timeout_ms * 1000000;
    size_t first_open = 0; /* peers settle roughly in order: resume the scan */

    for (;;) {
        while (first_open < count && bench_rendezvous_peer_done(peers[first_open], want_rendezvous))
            first_open++;
        for (size_t index = first_open; index < count; index++)
            bench_rendezvous_read_stored(worker, peers[index], want_rendezvous);
        bool all_done = true;
        for (size_t index = first_open; index < count && all_done; index++)
            all_done = bench_rendezvous_peer_done(peers[index], want_rendezvous);
        if (all_done)
            break;
        int64_t remaining_ms = (deadline - bench_now_ns()) / 1000000;
        if (remaining_ms <= 0) {
            for (size_t index = first_open; index < count; index++)
                if (!bench_rendezvous_peer_done(peers[index], want_rendezvous)) {
                    bench_result_error(worker->result, BENCH_ERROR_TIMEOUT,
                                       "rid %.12s: no %s within %d ms", peers[index]->rid,
                                       want_rendezvous ? "NOTIFY_RENDEZVOUS" : "answer",
                                       worker->options->timeout_ms);
                    peers[index]->failed = true;
                }
            break;
        }
        bench_client_service(worker->client, remaining_ms < 20 ? (int)remaining_ms : 20);
    }
    for (size_t index = 0; index < count; index++)
        if (peers[index]->failed)
            return -1;
    return 0;
}

static int bench_rendezvous_start_all(struct bench_worker *worker, struct bench_peer *peers,
                                      const char (*rids)[65], size_t count, const char *url)
{
    for (size_t index = 0; index < count; index++)
        if (bench_rendezvous_start(worker, &peers[index], url, rids[index]) != 0)
            return -1;
    return 0;
}

int bench_rendezvous_pairs(struct bench_worker *worker, struct bench_peer *first,
                           struct bench_peer *second, size_t count)
{
    const struct bench_options *options = worker->options;
    bool echo = options->target == BENCH_TARGET_ECHO;
    char(*rids)[65] = calloc(count, sizeof(*rids));
    struct bench_peer **waiting = calloc(2 * count, sizeof(*waiting));
    int status = -1;

    if (rids == NULL || waiting == NULL)
        goto out;
    for (size_t index = 0; index < count; index++) {
        if (bench_random_rid(&worker->random, rids[index]) != 0)
            goto out;
        waiting[index] = &first[index];
        if (!echo)
            waiting[count + index] = &second[index];
    }
    /* The first peers wait (NOT_READY) before the second ones arrive, as a
     * service perma-listening for its wallet would. */
    if (bench_rendezvous_start_all(worker, first, (const char(*)[65])rids, count, options->url) !=
            0 ||
        bench_rendezvous_await(worker, waiting, count, echo) != 0)
        goto out;
    if (!echo && (bench_rendezvous_start_all(worker, second, (const char(*)[65])rids, count,
                                             bench_rendezvous_second_url(options)) != 0 ||
                  bench_rendezvous_await(worker, waiting, 2 * count, true) != 0))
        goto out;
    status = 0;
out:
    free(rids);
    free(waiting);
    return status;
}

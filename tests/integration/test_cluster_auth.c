/*
 * test_cluster_auth.c - the link authenticates before anything else
 * (shared/docs/cluster.md, "The link"; cluster/link-protocol.md, section 4).
 *
 * Shared secret: a raw dialer that computes the right MAC gets AUTH_OK (so
 * the refusals below are refusals, not a broken client); a replayed AUTH
 * (recorded on an earlier connection, so its MAC covers an old server
 * nonce), a MAC made with another secret, garbage, a stream frame before
 * AUTH, the acceptor's own node id, a wrong or missing subprotocol and a
 * dialer that never authenticates are all refused, and counted by reason.
 * A whole node with another secret never pairs with the cluster, in either
 * direction, and does not poison the ids it tried.
 *
 * Mutual TLS: no client certificate, a certificate of another CA, and a
 * certificate of the cluster CA that names another node are refused and
 * counted as bad_certificate; a node whose certificate names another node
 * never pairs with the cluster.
 *
 * Batches (relayd-link.2): once authenticated, a message of several frames
 * is answered frame by frame, and each malformed batch (empty, truncated
 * header, a length overrunning the message, MORE on or length bytes in the
 * last frame, a bad frame inside) gets GOAWAY (1) and close 1002, with no
 * effect from the frames before the bad one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cluster_harness.h"

#define LINK_TIMEOUT_MS 5000
#define NOT_PAIRED_WINDOW_MS 4000
#define HANDSHAKE_DEADLINE_MS 10000 /* the spec's 5 s, and margin */

static const char rid_one[] = "a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0";
static const char rid_two[] = "b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1";
static const char rid_three[] = "c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2";

#define AUTH_FAILURES "relayd_link_auth_failures_total"

/* The failures counted for reason (NULL: every reason) on the node. */
static double auth_failures(struct cluster *cluster, size_t node, const char *reason)
{
    char filter[64];
    double value;

    snprintf(filter, sizeof(filter), "reason=\"%s\"", reason ? reason : "");
    value = cluster_metric_sum(cluster, node, AUTH_FAILURES, reason ? filter : NULL);
    if (value < 0)
        fail_msg("%s{%s} is missing on %s", AUTH_FAILURES, reason ? filter : "",
                 cluster->nodes[node].node_id);
    return value;
}

/* Failures of reason (plus other_reason when not NULL; NULL reason: all
 * reasons) reach minimum on the node within the link timeout. */
static void expect_auth_failures(struct cluster *cluster, size_t node, const char *reason,
                                 const char *other_reason, double minimum, const char *what)
{
    int64_t deadline = ws_client_now_ms() + LINK_TIMEOUT_MS;
    double value = 0;

    while (ws_client_now_ms() < deadline) {
        value = auth_failures(cluster, node, reason) +
                (other_reason ? auth_failures(cluster, node, other_reason) : 0);
        if (value >= minimum)
            return;
        cluster_service(50);
    }
    fail_msg("%s: %s{reason=\"%s\"%s%s} on %s is %.0f, expected at least %.0f", what, AUTH_FAILURES,
             reason ? reason : "any", other_reason ? " or " : "", other_reason ? other_reason : "",
             cluster->nodes[node].node_id, value, minimum);
}

/* Upgrade to the node's /cluster and read its HELLO; asserts. */
static void dial(struct cluster *cluster, size_t node, const struct cluster_raw_tls *tls,
                 struct cluster_raw_link *link, struct cluster_link_hello *hello)
{
    if (cluster_raw_link_open(link, cluster->nodes[node].cluster_port, CLUSTER_LINK_SUBPROTOCOL,
                              tls, LINK_TIMEOUT_MS) != 0)
        fail_msg("upgrade to %s's /cluster failed: %s", cluster->nodes[node].node_id, link->error);
    assert_string_equal(link->subprotocol, CLUSTER_LINK_SUBPROTOCOL);
    if (cluster_link_read_hello(link, LINK_TIMEOUT_MS, hello) < 0)
        fail_msg("%s sent no HELLO: %s", cluster->nodes[node].node_id, link->error);
    assert_string_equal(hello->node_id, cluster->nodes[node].node_id);
}

/* Send an AUTH payload and assert the node closes without AUTH_OK. */
static void expect_auth_refused(struct cluster_raw_link *link, const unsigned char *auth,
                                size_t length, const struct cluster_link_hello *hello,
                                const struct cluster_link_auth *sent, const char *what)
{
    int answer;

    assert_int_equal(cluster_link_send_frame(link, CLUSTER_LINK_AUTH, 0, 0, auth, length), 0);
    answer = cluster_link_await_auth_ok(link, LINK_TIMEOUT_MS, hello, sent, NULL);
    if (answer != 0)
        fail_msg("%s: expected the link to be closed without AUTH_OK, got %s", what,
                 answer == 1    ? "AUTH_OK"
                 : answer == -1 ? "nothing (still open)"
                                : link->error);
    cluster_raw_link_close(link);
}

static void test_auth_secret_handshake(void **state)
{
    struct cluster *cluster = *state;
    struct cluster_raw_link link, silent;
    struct cluster_link_hello hello, silent_hello, first_hello;
    struct cluster_link_auth sent;
    unsigned char auth[160], recorded[160], garbage[48];
    size_t length, recorded_length, i;
    struct ws_client_connection *pending;
    char secret[256], uuid[37], open_payload[100];
    double bad_secret, total;
    int64_t silent_opened;
    int frames;

    cluster_start_redis(cluster);
    cluster_start_node(cluster, NULL);
    cluster_wait_all_ready(cluster, CLUSTER_READY_TIMEOUT_MS);
    cluster_shared_secret(cluster, secret, sizeof(secret));

    /* a dialer that never authenticates: checked at the end */
    dial(cluster, 0, NULL, &silent, &silent_hello);
    silent_opened = ws_client_now_ms();

    /* positive control: the right MAC gets AUTH_OK with a valid server MAC */
    dial(cluster, 0, NULL, &link, &first_hello);
    recorded_length = cluster_link_make_auth(recorded, sizeof(recorded), &first_hello, "node7",
                                             1700000000000ull, secret, &sent);
    assert_int_equal(
        cluster_link_send_frame(&link, CLUSTER_LINK_AUTH, 0, 0, recorded, recorded_length), 0);
    if (cluster_link_await_auth_ok(&link, LINK_TIMEOUT_MS, &first_hello, &sent, secret) != 1)
        fail_msg("a correct AUTH was not answered with a valid AUTH_OK: %s", link.error);
    cluster_raw_link_close(&link);

    /* replay: the recorded AUTH on a new connection (new server nonce) */
    bad_secret = auth_failures(cluster, 0, "bad_secret");
    dial(cluster, 0, NULL, &link, &hello);
    assert_memory_not_equal(hello.nonce, first_hello.nonce, sizeof(hello.nonce));
    expect_auth_refused(&link, recorded, recorded_length, &hello, &sent, "replayed AUTH");
    expect_auth_failures(cluster, 0, "bad_secret", NULL, bad_secret + 1, "replayed AUTH");

    /* a MAC made with another secret */
    dial(cluster, 0, NULL, &link, &hello);
    length = cluster_link_make_auth(auth, sizeof(auth), &hello, "node7", 1700000000000ull,
                                    "not the cluster secret", &sent);
    expect_auth_refused(&link, auth, length, &hello, &sent, "wrong secret");
    expect_auth_failures(cluster, 0, "bad_secret", NULL, bad_secret + 2, "wrong secret");

    /* the acceptor's own node id, with a correct MAC (reflection) */
    total = auth_failures(cluster, 0, NULL);
    dial(cluster, 0, NULL, &link, &hello);
    length = cluster_link_make_auth(auth, sizeof(auth), &hello, cluster->nodes[0].node_id,
                                    1700000000000ull, secret, &sent);
    expect_auth_refused(&link, auth, length, &hello, &sent, "the acceptor's own id");
    expect_auth_failures(cluster, 0, NULL, NULL, total + 1, "the acceptor's own id");

    /* garbage where AUTH belongs */
    for (i = 0; i < sizeof(garbage); i++)
        garbage[i] = (unsigned char)(i * 37 + 11);
    total = auth_failures(cluster, 0, "protocol") + auth_failures(cluster, 0, "bad_secret");
    dial(cluster, 0, NULL, &link, &hello);
    assert_int_equal(cluster_raw_link_send(&link, 2, garbage, sizeof(garbage)), 0);
    assert_int_equal(cluster_raw_link_wait_closed(&link, LINK_TIMEOUT_MS, &frames), 0);
    assert_int_equal(frames, 0);
    cluster_raw_link_close(&link);
    expect_auth_failures(cluster, 0, "protocol", "bad_secret", total + 1, "garbage AUTH");

    /* a stream frame before AUTH: refused, and the pending peer untouched */
    pending = cluster_connect(cluster, 0);
    relay_test_send_request(pending, rid_one, uuid);
    cluster_expect_notification(pending, "NOTIFY_RENDEZVOUS_NOT_READY", rid_one, uuid,
                                LINK_TIMEOUT_MS);
    memcpy(open_payload, rid_one, 64);
    memcpy(open_payload + 64, "0811a20b-3a4a-400e-8e1b-180d43727d7b", 36);
    total = auth_failures(cluster, 0, NULL);
    dial(cluster, 0, NULL, &link, &hello);
    assert_int_equal(
        cluster_link_send_frame(&link, CLUSTER_LINK_OPEN, 0, 1, open_payload, sizeof(open_payload)),
        0);
    assert_int_equal(cluster_raw_link_wait_closed(&link, LINK_TIMEOUT_MS, &frames), 0);
    assert_int_equal(frames, 0); /* no PAIRED, nothing */
    cluster_raw_link_close(&link);
    assert_false(cluster_expect_not_paired(pending, rid_one, 300));
    expect_auth_failures(cluster, 0, NULL, NULL, total + 1, "OPEN before AUTH");

    /* the silent dialer is closed within the handshake deadline */
    if (cluster_raw_link_wait_closed(
            &silent, (int)(silent_opened + HANDSHAKE_DEADLINE_MS - ws_client_now_ms()), &frames) !=
        0)
        fail_msg("a dialer that never sent AUTH was still connected after %d ms",
                 HANDSHAKE_DEADLINE_MS);
    cluster_raw_link_close(&silent);
    expect_auth_failures(cluster, 0, "timeout", NULL, 1, "silent dialer");

    /* none of this locked the node: a correct dialer still gets in */
    dial(cluster, 0, NULL, &link, &hello);
    length = cluster_link_make_auth(auth, sizeof(auth), &hello, "node8", 1700000000001ull, secret,
                                    &sent);
    assert_int_equal(cluster_link_send_frame(&link, CLUSTER_LINK_AUTH, 0, 0, auth, length), 0);
    assert_int_equal(cluster_link_await_auth_ok(&link, LINK_TIMEOUT_MS, &hello, &sent, secret), 1);
    cluster_raw_link_close(&link);

    /* the upgrade itself needs the link's subprotocol (link-protocol.md,
     * section 1: refused when not offered; lws would otherwise pick the
     * vhost's first protocol for an upgrade that names none); the previous
     * version is not spoken any more */
    {
        static const char *const offers[] = {CLUSTER_LINK_PREVIOUS_SUBPROTOCOL, NULL};
        size_t offer;

        for (offer = 0; offer < 2; offer++) {
            enum cluster_probe_result result = cluster_probe_link(
                cluster->nodes[0].cluster_port, offers[offer], NULL, LINK_TIMEOUT_MS);

            if (result != CLUSTER_PROBE_REFUSED)
                fail_msg("an upgrade offering %s%s%s was not refused: %s",
                         offers[offer] ? "\"" : "",
                         offers[offer] ? offers[offer] : "no subprotocol",
                         offers[offer] ? "\"" : "", cluster_probe_name(result));
        }
    }
    cluster_finish(cluster);
}

/* Node C has another secret: no pairing between A and C in either
 * direction, failures counted on the refusing side, the ids still usable. */
static void test_auth_node_with_wrong_secret(void **state)
{
    struct cluster_node_settings other_secret = {.secret = "a-different-cluster-secret"};
    struct cluster *cluster = *state;
    struct relay_test_peer first, second, late;
    struct ws_client_connection *arriving, *waiting;
    char waiting_uuid[37];

    cluster_start_redis(cluster);
    cluster_start_nodes(cluster, 2);
    cluster_start_node(cluster, &other_secret);
    cluster_wait_all_ready(cluster, CLUSTER_READY_TIMEOUT_MS);
    /* positive control: A and B share the secret and pair */
    cluster_pair(cluster, rid_one, 0, &first, 1, &second);
    relay_test_exchange(&first, &second, "A and B");

    /* owner A, arriving at C: C dials A with the wrong secret */
    waiting = cluster_connect(cluster, 0);
    relay_test_send_request(waiting, rid_two, waiting_uuid);
    cluster_expect_notification(waiting, "NOTIFY_RENDEZVOUS_NOT_READY", rid_two, waiting_uuid,
                                LINK_TIMEOUT_MS);
    arriving = cluster_connect(cluster, 2);
    relay_test_send_request(arriving, rid_two, NULL);
    cluster_expect_not_paired(arriving, rid_two, NOT_PAIRED_WINDOW_MS);
    assert_false(cluster_expect_not_paired(waiting, rid_two, 0));
    expect_auth_failures(cluster, 0, "bad_secret", NULL, 1, "C dialing A");

    /* owner C, arriving at A: A dials C, C refuses */
    {
        struct ws_client_connection *owner_side = cluster_connect(cluster, 2);
        struct ws_client_connection *other = cluster_connect(cluster, 0);
        char uuid[37];

        relay_test_send_request(owner_side, rid_three, uuid);
        cluster_expect_notification(owner_side, "NOTIFY_RENDEZVOUS_NOT_READY", rid_three, uuid,
                                    LINK_TIMEOUT_MS);
        relay_test_send_request(other, rid_three, NULL);
        cluster_expect_not_paired(other, rid_three, NOT_PAIRED_WINDOW_MS);
        assert_false(cluster_expect_not_paired(owner_side, rid_three, 0));
        expect_auth_failures(cluster, 2, "bad_secret", NULL, 1, "A dialing C");
    }

    /* the failed attempt did not poison rid_two: a peer at B meets A's */
    late.connection = cluster_connect(cluster, 1);
    relay_test_send_request(late.connection, rid_two, late.request_uuid);
    cluster_expect_rendezvous(late.connection, rid_two, late.request_uuid, 10000);
    cluster_expect_notification(waiting, "NOTIFY_RENDEZVOUS", rid_two, waiting_uuid, 10000);
    assert_int_equal(ws_client_send(waiting, "still good", 10, true), 0);
    relay_test_expect_message(late.connection, true, "still good", 10);
    cluster_finish(cluster);
}

static void test_auth_mutual_tls_refusals(void **state)
{
    struct cluster *cluster = *state;
    struct relay_test_peer first, second, third, fourth;
    char cert[320], key[320], foreign_cert[320], foreign_key[320], other_cert[320], other_key[320];
    struct cluster_raw_link link;
    struct cluster_link_hello hello;
    struct cluster_link_auth sent;
    unsigned char auth[160];
    enum cluster_probe_result result;
    size_t length;
    double before;

    cluster->options.tls = true;
    cluster->options.no_secret = true; /* TLS alone authenticates */
    cluster_start_redis(cluster);
    cluster_start_nodes(cluster, 2);
    cluster_wait_all_ready(cluster, CLUSTER_READY_TIMEOUT_MS);
    /* positive control: both directions pair over wss:// */
    cluster_pair(cluster, rid_one, 0, &first, 1, &second);
    cluster_pair(cluster, rid_two, 1, &third, 0, &fourth);
    relay_test_exchange(&first, &second, "mTLS A owns");
    relay_test_exchange(&third, &fourth, "mTLS B owns");

    cluster_make_certificate(cluster, "node5", false, cert, key, sizeof(cert));
    cluster_make_certificate(cluster, "node5", true, foreign_cert, foreign_key,
                             sizeof(foreign_cert));
    cluster_make_certificate(cluster, "node9", false, other_cert, other_key, sizeof(other_cert));
    {
        /* a raw dialer with a good certificate naming itself gets in */
        struct cluster_raw_tls tls = {cluster->ca_cert, cert, key};

        dial(cluster, 0, &tls, &link, &hello);
        length = cluster_link_make_auth(auth, sizeof(auth), &hello, "node5", 1700000000000ull, NULL,
                                        &sent);
        assert_int_equal(cluster_link_send_frame(&link, CLUSTER_LINK_AUTH, 0, 0, auth, length), 0);
        if (cluster_link_await_auth_ok(&link, LINK_TIMEOUT_MS, &hello, &sent, NULL) != 1)
            fail_msg("a dialer with a valid certificate got no AUTH_OK: %s", link.error);
        cluster_raw_link_close(&link);
    }
    before = auth_failures(cluster, 0, "bad_certificate");
    {
        struct cluster_raw_tls none = {cluster->ca_cert, NULL, NULL};

        result = cluster_probe_link(cluster->nodes[0].cluster_port, CLUSTER_LINK_SUBPROTOCOL, &none,
                                    LINK_TIMEOUT_MS);
        fprintf(stderr, "  no client certificate: %s\n", cluster_probe_name(result));
        assert_int_not_equal(result, CLUSTER_PROBE_HELLO);
        expect_auth_failures(cluster, 0, "bad_certificate", NULL, before + 1,
                             "no client certificate");
    }
    {
        struct cluster_raw_tls foreign = {cluster->ca_cert, foreign_cert, foreign_key};

        result = cluster_probe_link(cluster->nodes[0].cluster_port, CLUSTER_LINK_SUBPROTOCOL,
                                    &foreign, LINK_TIMEOUT_MS);
        fprintf(stderr, "  certificate of another CA: %s\n", cluster_probe_name(result));
        assert_int_not_equal(result, CLUSTER_PROBE_HELLO);
        expect_auth_failures(cluster, 0, "bad_certificate", NULL, before + 2,
                             "certificate of another CA");
    }
    {
        /* chains to the cluster CA, but names node9 while claiming node5 */
        struct cluster_raw_tls misnamed = {cluster->ca_cert, other_cert, other_key};

        dial(cluster, 0, &misnamed, &link, &hello);
        length = cluster_link_make_auth(auth, sizeof(auth), &hello, "node5", 1700000000000ull, NULL,
                                        &sent);
        expect_auth_refused(&link, auth, length, &hello, &sent, "certificate naming another node");
        expect_auth_failures(cluster, 0, "bad_certificate", NULL, before + 3,
                             "certificate naming another node");
    }
    /* plain WebSocket to a TLS cluster port */
    result = cluster_probe_link(cluster->nodes[0].cluster_port, CLUSTER_LINK_SUBPROTOCOL, NULL,
                                LINK_TIMEOUT_MS);
    assert_int_not_equal(result, CLUSTER_PROBE_HELLO);
    relay_test_exchange(&first, &second, "after the refusals");
    cluster_finish(cluster);
}

/* Node C's certificate (cluster CA) names node9: A refuses it as a dialer
 * and as an acceptor, and no pair forms between A and C. */
static void test_auth_node_with_misnamed_certificate(void **state)
{
    struct cluster *cluster = *state;
    struct cluster_node_settings misnamed = {0};
    char cert[320], key[320], uuid[37];
    struct ws_client_connection *owner_side, *arriving;
    int started;

    cluster->options.tls = true;
    cluster->options.no_secret = true;
    cluster_start_redis(cluster);
    cluster_start_nodes(cluster, 2);
    cluster_make_certificate(cluster, "node9", false, cert, key, sizeof(cert));
    misnamed.tls_cert = cert;
    misnamed.tls_key = key;
    started = cluster_try_start_node(cluster, &misnamed);
    if (started < 0) {
        /* refusing such a certificate at start is a refusal too */
        fprintf(stderr, "  node3 refused to start with a certificate naming node9\n");
        cluster_finish(cluster);
        return;
    }
    cluster_wait_readyz(cluster, 0, 200, CLUSTER_READY_TIMEOUT_MS);
    cluster_wait_readyz(cluster, 1, 200, CLUSTER_READY_TIMEOUT_MS);

    /* owner A, arriving at C */
    owner_side = cluster_connect(cluster, 0);
    relay_test_send_request(owner_side, rid_one, uuid);
    cluster_expect_notification(owner_side, "NOTIFY_RENDEZVOUS_NOT_READY", rid_one, uuid,
                                LINK_TIMEOUT_MS);
    arriving = cluster_connect(cluster, 2);
    relay_test_send_request(arriving, rid_one, NULL);
    cluster_expect_not_paired(arriving, rid_one, NOT_PAIRED_WINDOW_MS);
    assert_false(cluster_expect_not_paired(owner_side, rid_one, 0));

    /* owner C, arriving at A */
    owner_side = cluster_connect(cluster, 2);
    relay_test_send_request(owner_side, rid_two, uuid);
    cluster_expect_notification(owner_side, "NOTIFY_RENDEZVOUS_NOT_READY", rid_two, uuid,
                                LINK_TIMEOUT_MS);
    arriving = cluster_connect(cluster, 0);
    relay_test_send_request(arriving, rid_two, NULL);
    cluster_expect_not_paired(arriving, rid_two, NOT_PAIRED_WINDOW_MS);
    cluster_expect_not_paired(owner_side, rid_two, 0);
    expect_auth_failures(cluster, 0, "bad_certificate", NULL, 1, "node3 naming node9");
    cluster_finish(cluster);
}

/* ---- batches (relayd-link.2, section 2) ---------------------------------- */

#define LINK_PING 11
#define LINK_PONG 12
#define LINK_NOT_FOUND 6
#define LINK_CREDIT 9
#define LINK_MORE 0x80

/* Append a frame header (type, flags, 16-bit length, stream id). */
static size_t put_header(unsigned char *out, int type, int flags, size_t length, uint32_t stream_id)
{
    out[0] = (unsigned char)type;
    out[1] = (unsigned char)flags;
    out[2] = (unsigned char)(length >> 8);
    out[3] = (unsigned char)length;
    out[4] = (unsigned char)(stream_id >> 24);
    out[5] = (unsigned char)(stream_id >> 16);
    out[6] = (unsigned char)(stream_id >> 8);
    out[7] = (unsigned char)stream_id;
    return 8;
}

/* A raw dialer past AUTH_OK on node 0 (shared secret). */
static void authenticated_link(struct cluster *cluster, const char *secret,
                               struct cluster_raw_link *link)
{
    struct cluster_link_hello hello;
    struct cluster_link_auth sent;
    unsigned char auth[160];
    size_t length;

    dial(cluster, 0, NULL, link, &hello);
    length = cluster_link_make_auth(auth, sizeof(auth), &hello, "node6", 1700000000002ull, secret,
                                    &sent);
    assert_int_equal(cluster_link_send_frame(link, CLUSTER_LINK_AUTH, 0, 0, auth, length), 0);
    if (cluster_link_await_auth_ok(link, LINK_TIMEOUT_MS, &hello, &sent, secret) != 1)
        fail_msg("no AUTH_OK for a correct AUTH: %s", link->error);
}

/* What the node sent until it closed (or timeout_ms passed). */
struct link_answers {
    int pongs;
    unsigned char pong[8];
    int not_found;    /* NOT_FOUND frames */
    int goaway_code;  /* -1: none */
    int close_status; /* -1: no close frame */
};

/* Walk one received message as a batch; false when it is not a valid one. */
static bool note_batch(const unsigned char *message, size_t length, struct link_answers *answers)
{
    size_t offset = 0;

    for (;;) {
        size_t payload_length;
        const unsigned char *frame = message + offset;
        bool more;

        if (length - offset < 8)
            return false;
        more = (frame[1] & LINK_MORE) != 0;
        payload_length = more ? (size_t)(frame[2] << 8 | frame[3]) : length - offset - 8;
        if (payload_length > length - offset - 8)
            return false;
        if (frame[0] == LINK_PONG && payload_length == 8) {
            answers->pongs++;
            memcpy(answers->pong, frame + 8, 8);
        } else if (frame[0] == LINK_NOT_FOUND) {
            answers->not_found++;
        } else if (frame[0] == CLUSTER_LINK_GOAWAY && payload_length >= 2) {
            answers->goaway_code = frame[8] << 8 | frame[9];
        }
        offset += 8 + payload_length;
        if (!more)
            return offset == length;
    }
}

static void read_answers(struct cluster_raw_link *link, int timeout_ms,
                         struct link_answers *answers)
{
    int64_t deadline = ws_client_now_ms() + timeout_ms;

    memset(answers, 0, sizeof(*answers));
    answers->goaway_code = -1;
    answers->close_status = -1;
    while (ws_client_now_ms() < deadline) {
        unsigned char *message;
        size_t length;
        int opcode, result;

        result = cluster_raw_link_read_frame(link, (int)(deadline - ws_client_now_ms()), &opcode,
                                             &message, &length);
        if (result < 0)
            return;
        if ((opcode & 0x0f) == 8) {
            answers->close_status = length >= 2 ? (message[0] << 8 | message[1]) : 1005;
            free(message);
            return;
        }
        if ((opcode & 0x0f) == 2 && !note_batch(message, length, answers))
            fail_msg("the node sent a message that is not a valid batch (%zu bytes)", length);
        free(message);
        if (answers->pongs > 0 && answers->not_found > 0 && answers->goaway_code < 0)
            return; /* the valid batch was answered */
    }
}

/* PING, CREDIT for a stream that is not open (ignored) and OPEN for an id
 * nobody waits for, in one message: PONG and NOT_FOUND come back. */
static void check_valid_batch(struct cluster *cluster, const char *secret)
{
    static const unsigned char opaque[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    unsigned char message[8 + 8 + 8 + 4 + 8 + 100];
    struct cluster_raw_link link;
    struct link_answers answers;
    size_t length = 0;

    authenticated_link(cluster, secret, &link);
    length += put_header(message + length, LINK_PING, LINK_MORE, 8, 0);
    memcpy(message + length, opaque, 8);
    length += 8;
    length += put_header(message + length, LINK_CREDIT, LINK_MORE, 4, 9);
    memcpy(message + length, "\0\0\1\0", 4);
    length += 4;
    length += put_header(message + length, CLUSTER_LINK_OPEN, 0, 0, 1);
    memcpy(message + length, rid_three, 64);
    memcpy(message + length + 64, "0811a20b-3a4a-400e-8e1b-180d43727d7b", 36);
    length += 100;
    assert_int_equal(cluster_raw_link_send(&link, 2, message, length), 0);
    read_answers(&link, LINK_TIMEOUT_MS, &answers);
    assert_int_equal(answers.goaway_code, -1);
    assert_int_equal(answers.pongs, 1);
    assert_memory_equal(answers.pong, opaque, 8);
    assert_int_equal(answers.not_found, 1);
    cluster_raw_link_close(&link);
}

/* A malformed message on an authenticated link: GOAWAY (1), close 1002,
 * and the PING before the bad frame is not answered. */
static void check_malformed_batch(struct cluster *cluster, const char *secret,
                                  const unsigned char *message, size_t length, const char *what)
{
    struct cluster_raw_link link;
    struct link_answers answers;

    authenticated_link(cluster, secret, &link);
    assert_int_equal(cluster_raw_link_send(&link, 2, message, length), 0);
    read_answers(&link, LINK_TIMEOUT_MS, &answers);
    if (answers.goaway_code != 1 || answers.close_status != 1002 || answers.pongs != 0)
        fail_msg("%s: GOAWAY code %d, close status %d, %d PONG (expected 1, 1002, 0)", what,
                 answers.goaway_code, answers.close_status, answers.pongs);
    cluster_raw_link_close(&link);
}

static void test_auth_link_batches(void **state)
{
    struct cluster *cluster = *state;
    unsigned char message[64];
    char secret[256];
    size_t length;

    cluster_start_redis(cluster);
    cluster_start_node(cluster, NULL);
    cluster_wait_all_ready(cluster, CLUSTER_READY_TIMEOUT_MS);
    cluster_shared_secret(cluster, secret, sizeof(secret));
    check_valid_batch(cluster, secret);

    check_malformed_batch(cluster, secret, message, 0, "empty message");
    /* a PING with MORE, then 3 bytes: a truncated header */
    length = put_header(message, LINK_PING, LINK_MORE, 8, 0) + 8;
    memset(message + length, 0, 3);
    check_malformed_batch(cluster, secret, message, length + 3, "truncated frame header");
    /* MORE and a length past the end of the message */
    length = put_header(message, LINK_PING, LINK_MORE, 200, 0) + 8;
    check_malformed_batch(cluster, secret, message, length, "length overrunning the message");
    /* MORE on the message's last frame: nothing follows it */
    length = put_header(message, LINK_PING, LINK_MORE, 8, 0) + 8;
    check_malformed_batch(cluster, secret, message, length, "MORE on the last frame");
    /* length bytes on the last frame */
    length = put_header(message, LINK_PING, 0, 8, 0) + 8;
    check_malformed_batch(cluster, secret, message, length, "length on the last frame");
    /* a valid PING, then a CREDIT of zero: nothing of the message acts */
    length = put_header(message, LINK_PING, LINK_MORE, 8, 0) + 8;
    length += put_header(message + length, LINK_CREDIT, 0, 0, 5);
    memset(message + length, 0, 4);
    check_malformed_batch(cluster, secret, message, length + 4, "a bad frame inside a batch");
    cluster_finish(cluster);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_auth_secret_handshake, cluster_test_setup,
                                        cluster_test_teardown),
        cmocka_unit_test_setup_teardown(test_auth_node_with_wrong_secret, cluster_test_setup,
                                        cluster_test_teardown),
        cmocka_unit_test_setup_teardown(test_auth_mutual_tls_refusals, cluster_test_setup,
                                        cluster_test_teardown),
        cmocka_unit_test_setup_teardown(test_auth_node_with_misnamed_certificate,
                                        cluster_test_setup, cluster_test_teardown),
        cmocka_unit_test_setup_teardown(test_auth_link_batches, cluster_test_setup,
                                        cluster_test_teardown),
    };

    return cmocka_run_group_tests_name("cluster_auth", tests, cluster_group_setup,
                                       cluster_group_teardown);
}

/*
 * test_core_link_auth.c - the link handshake (cluster/link_auth.c).
 *
 * Both state machines are driven against each other through the real frame
 * codec, the way the link code drives them over a socket. Beyond the good
 * handshake: a wrong or missing secret on either side, a replayed AUTH, a
 * forged AUTH_OK, malformed and out-of-order payloads, the wrong peer, and
 * mutual-TLS-only mode. The MACs are also recomputed here from the byte
 * layout written in cluster/link-protocol.md, so the document and the code
 * cannot drift apart. Certificates for the name check are made in-test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/x509v3.h>

#include "link_auth.h"

static const char secret[] = "correct horse battery staple";

/* One handshake's frames and results, with both sides' states. */
struct handshake {
    struct link_auth_server server;
    struct link_auth_client client;
    uint8_t hello[LINK_FRAME_CONTROL_MAX_LENGTH];
    size_t hello_length;
    uint8_t auth[LINK_FRAME_CONTROL_MAX_LENGTH];
    size_t auth_length;
    uint8_t auth_ok[LINK_FRAME_CONTROL_MAX_LENGTH];
    size_t auth_ok_length;
    struct link_auth_peer server_saw; /* the client, as the server saw it */
    struct link_auth_peer client_saw; /* the server, as the client saw it */
};

/* Decode a frame the handshake built and require it to be of type. */
static struct link_frame decode_as(const uint8_t *message, size_t length, uint8_t type)
{
    struct link_frame frame;
    const char *error = NULL;

    if (link_frame_decode(message, length, 0, &frame, &error) != 0)
        fail_msg("%s frame does not decode: %s", link_frame_type_name(type), error);
    assert_int_equal(frame.type, type);
    assert_int_equal(frame.stream_id, 0);
    return frame;
}

static void start_server(struct handshake *h, const void *key, size_t key_length)
{
    assert_int_equal(link_auth_server_init(&h->server, "node-a", 1000, key, key_length, h->hello,
                                           &h->hello_length),
                     0);
}

static void start_client(struct handshake *h, const void *key, size_t key_length,
                         const char *expected)
{
    assert_int_equal(link_auth_client_init(&h->client, "node-b", 2000, key, key_length, expected),
                     0);
}

static enum link_auth_verdict deliver_hello(struct handshake *h)
{
    struct link_frame frame = decode_as(h->hello, h->hello_length, LINK_FRAME_HELLO);
    return link_auth_client_on_hello(&h->client, frame.payload, frame.length, h->auth,
                                     &h->auth_length);
}

static enum link_auth_verdict deliver_auth(struct handshake *h)
{
    struct link_frame frame = decode_as(h->auth, h->auth_length, LINK_FRAME_AUTH);
    return link_auth_server_on_auth(&h->server, frame.payload, frame.length, &h->server_saw,
                                    h->auth_ok, &h->auth_ok_length);
}

static enum link_auth_verdict deliver_auth_ok(struct handshake *h)
{
    struct link_frame frame = decode_as(h->auth_ok, h->auth_ok_length, LINK_FRAME_AUTH_OK);
    return link_auth_client_on_auth_ok(&h->client, frame.payload, frame.length, &h->client_saw);
}

/* Up to AUTH: server and client started, HELLO answered. */
static void run_to_auth(struct handshake *h, const void *server_key, size_t server_key_length,
                        const void *client_key, size_t client_key_length)
{
    memset(h, 0, sizeof(*h));
    start_server(h, server_key, server_key_length);
    start_client(h, client_key, client_key_length, "node-a");
    assert_int_equal(deliver_hello(h), LINK_AUTH_OK);
}

static void run_full(struct handshake *h, const void *key, size_t key_length)
{
    run_to_auth(h, key, key_length, key, key_length);
    assert_int_equal(deliver_auth(h), LINK_AUTH_OK);
    assert_int_equal(deliver_auth_ok(h), LINK_AUTH_OK);
}

static bool all_zero(const uint8_t *bytes, size_t length)
{
    for (size_t i = 0; i < length; i++)
        if (bytes[i] != 0)
            return false;
    return true;
}

/* The MAC as link-protocol.md spells it, with OpenSSL's one-shot HMAC on
 * the whole secret. */
static void spec_mac(const char *label, const void *key, size_t key_length,
                     const uint8_t *server_nonce, const uint8_t *client_nonce,
                     const char *server_id, uint64_t server_epoch, const char *client_id,
                     uint64_t client_epoch, uint8_t mac[32])
{
    uint8_t input[512];
    size_t n = 0;
    unsigned int mac_length = 0;

    memcpy(input + n, label, 20);
    n += 20;
    memcpy(input + n, server_nonce, 32);
    n += 32;
    memcpy(input + n, client_nonce, 32);
    n += 32;
    input[n++] = (uint8_t)strlen(server_id);
    memcpy(input + n, server_id, strlen(server_id));
    n += strlen(server_id);
    for (int shift = 56; shift >= 0; shift -= 8)
        input[n++] = (uint8_t)(server_epoch >> shift);
    input[n++] = (uint8_t)strlen(client_id);
    memcpy(input + n, client_id, strlen(client_id));
    n += strlen(client_id);
    for (int shift = 56; shift >= 0; shift -= 8)
        input[n++] = (uint8_t)(client_epoch >> shift);
    assert_non_null(HMAC(EVP_sha256(), key, (int)key_length, input, n, mac, &mac_length));
    assert_int_equal(mac_length, 32);
}

/* Check every byte of HELLO, AUTH and AUTH_OK against the spec. */
static void check_wire_layout(const struct handshake *h, const void *key, size_t key_length)
{
    /* HELLO payload: 01, 06 "node-a", epoch 1000, nonce. */
    const uint8_t *hello = h->hello + 8;
    assert_int_equal(h->hello_length, 8 + 1 + 1 + 6 + 8 + 32);
    assert_int_equal(hello[0], 1);
    assert_int_equal(hello[1], 6);
    assert_memory_equal(hello + 2, "node-a", 6);
    assert_int_equal(link_get_u64(hello + 8), 1000);
    const uint8_t *server_nonce = hello + 16;

    /* AUTH payload: 06 "node-b", epoch 2000, nonce, MAC. */
    const uint8_t *auth = h->auth + 8;
    assert_int_equal(h->auth_length, 8 + 1 + 6 + 8 + 32 + 32);
    assert_int_equal(auth[0], 6);
    assert_memory_equal(auth + 1, "node-b", 6);
    assert_int_equal(link_get_u64(auth + 7), 2000);
    const uint8_t *client_nonce = auth + 15;
    assert_false(all_zero(client_nonce, 32));
    assert_memory_not_equal(client_nonce, server_nonce, 32);

    uint8_t expected[32];
    spec_mac("relayd-link.1 client", key, key_length, server_nonce, client_nonce, "node-a", 1000,
             "node-b", 2000, expected);
    assert_memory_equal(auth + 47, expected, 32);
    spec_mac("relayd-link.1 server", key, key_length, server_nonce, client_nonce, "node-a", 1000,
             "node-b", 2000, expected);
    assert_int_equal(h->auth_ok_length, 8 + 32);
    assert_memory_equal(h->auth_ok + 8, expected, 32);
}

static void test_good_handshake(void **state)
{
    struct handshake h;

    run_full(&h, secret, strlen(secret));
    assert_string_equal(h.server_saw.node_id, "node-b");
    assert_int_equal(h.server_saw.epoch, 2000);
    assert_string_equal(h.client_saw.node_id, "node-a");
    assert_int_equal(h.client_saw.epoch, 1000);
    check_wire_layout(&h, secret, strlen(secret));
    /* The secret is gone from both states once the handshake is over. */
    assert_true(all_zero(h.server.key.bytes, sizeof(h.server.key.bytes)));
    assert_true(all_zero(h.client.key.bytes, sizeof(h.client.key.bytes)));
    link_auth_server_clear(&h.server);
    link_auth_client_clear(&h.client);
    assert_true(all_zero((const uint8_t *)&h.server, sizeof(h.server)));
    assert_true(all_zero((const uint8_t *)&h.client, sizeof(h.client)));
}

/* A secret longer than the HMAC block is kept as its hash; the MACs must
 * still be HMAC over the whole secret. */
static void test_long_secret(void **state)
{
    struct handshake h;
    uint8_t key[200];

    for (size_t i = 0; i < sizeof(key); i++)
        key[i] = (uint8_t)(i * 7 + 1);
    run_full(&h, key, sizeof(key));
    check_wire_layout(&h, key, sizeof(key));
    /* Exactly one block long is kept as is. */
    run_full(&h, key, 64);
    check_wire_layout(&h, key, 64);
}

static void test_fresh_nonces(void **state)
{
    struct handshake first, second;

    run_full(&first, secret, strlen(secret));
    run_full(&second, secret, strlen(secret));
    assert_memory_not_equal(first.hello + 16 + 8, second.hello + 16 + 8, 32);
    assert_memory_not_equal(first.auth + 15 + 8, second.auth + 15 + 8, 32);
}

static void test_wrong_secret(void **state)
{
    struct handshake h;

    run_to_auth(&h, secret, strlen(secret), "wrong secret", 12);
    assert_int_equal(deliver_auth(&h), LINK_AUTH_BAD_SECRET);
    /* The verdict is final: the same AUTH again is out of order. */
    assert_int_equal(deliver_auth(&h), LINK_AUTH_PROTOCOL);
    assert_true(all_zero(h.server.key.bytes, sizeof(h.server.key.bytes)));
}

/* A recorded AUTH, played to a new connection: the server nonce differs. */
static void test_replayed_auth(void **state)
{
    struct handshake recorded, replay;

    run_full(&recorded, secret, strlen(secret));
    memset(&replay, 0, sizeof(replay));
    start_server(&replay, secret, strlen(secret));
    memcpy(replay.auth, recorded.auth, recorded.auth_length);
    replay.auth_length = recorded.auth_length;
    assert_int_equal(deliver_auth(&replay), LINK_AUTH_BAD_SECRET);
}

/* A recorded AUTH_OK, played to a new dialer: the client nonce differs. */
static void test_replayed_auth_ok(void **state)
{
    struct handshake recorded, replay;

    run_full(&recorded, secret, strlen(secret));
    run_to_auth(&replay, secret, strlen(secret), secret, strlen(secret));
    memcpy(replay.auth_ok, recorded.auth_ok, recorded.auth_ok_length);
    replay.auth_ok_length = recorded.auth_ok_length;
    assert_int_equal(deliver_auth_ok(&replay), LINK_AUTH_BAD_SECRET);
}

static void test_forged_server_mac(void **state)
{
    struct handshake h;

    run_to_auth(&h, secret, strlen(secret), secret, strlen(secret));
    assert_int_equal(deliver_auth(&h), LINK_AUTH_OK);
    h.auth_ok[8 + 31] ^= 0x01;
    assert_int_equal(deliver_auth_ok(&h), LINK_AUTH_BAD_SECRET);
    assert_int_equal(deliver_auth_ok(&h), LINK_AUTH_PROTOCOL);
}

/* A server that does not know the secret sends a zero MAC: refused. */
static void test_server_without_secret_is_refused(void **state)
{
    struct handshake h;

    run_to_auth(&h, NULL, 0, secret, strlen(secret));
    assert_int_equal(deliver_auth(&h), LINK_AUTH_OK);
    assert_true(all_zero(h.auth_ok + 8, 32));
    assert_int_equal(deliver_auth_ok(&h), LINK_AUTH_BAD_SECRET);
}

static void test_client_without_secret_is_refused(void **state)
{
    struct handshake h;

    run_to_auth(&h, secret, strlen(secret), NULL, 0);
    assert_true(all_zero(h.auth + 8 + 47, 32));
    assert_int_equal(deliver_auth(&h), LINK_AUTH_BAD_SECRET);
}

static void test_mutual_tls_only(void **state)
{
    struct handshake h;

    run_full(&h, NULL, 0);
    assert_true(all_zero(h.auth + 8 + 47, 32));
    assert_true(all_zero(h.auth_ok + 8, 32));
    assert_string_equal(h.server_saw.node_id, "node-b");
    assert_string_equal(h.client_saw.node_id, "node-a");
    assert_int_equal(h.client_saw.epoch, 1000);
}

/* Everything wrong with an AUTH payload that a frame decoder would also
 * catch is caught here again: callers may hand payloads over directly. */
static void test_malformed_auth(void **state)
{
    struct handshake good, h;
    uint8_t payload[256];
    struct link_auth_peer peer;
    uint8_t out[LINK_FRAME_CONTROL_MAX_LENGTH];
    size_t out_length;

    run_to_auth(&good, secret, strlen(secret), secret, strlen(secret));
    size_t length = good.auth_length - 8;
    static const size_t cuts[] = {0, 1, 7, 14, 46, 78};
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
        start_server(&h, secret, strlen(secret));
        assert_int_equal(
            link_auth_server_on_auth(&h.server, good.auth + 8, cuts[i], &peer, out, &out_length),
            LINK_AUTH_PROTOCOL);
    }
    /* One byte too many. */
    memcpy(payload, good.auth + 8, length);
    payload[length] = 0;
    start_server(&h, secret, strlen(secret));
    assert_int_equal(
        link_auth_server_on_auth(&h.server, payload, length + 1, &peer, out, &out_length),
        LINK_AUTH_PROTOCOL);
    /* A node id with a character outside [A-Za-z0-9._-]. */
    memcpy(payload, good.auth + 8, length);
    payload[3] = '/';
    start_server(&h, secret, strlen(secret));
    assert_int_equal(link_auth_server_on_auth(&h.server, payload, length, &peer, out, &out_length),
                     LINK_AUTH_PROTOCOL);
    /* Id length 0 and garbage. */
    memset(payload, 0, sizeof(payload));
    start_server(&h, secret, strlen(secret));
    assert_int_equal(link_auth_server_on_auth(&h.server, payload, 72, &peer, out, &out_length),
                     LINK_AUTH_PROTOCOL);
    memset(payload, 0xff, sizeof(payload));
    start_server(&h, secret, strlen(secret));
    assert_int_equal(
        link_auth_server_on_auth(&h.server, payload, sizeof(payload), &peer, out, &out_length),
        LINK_AUTH_PROTOCOL);
}

static void test_malformed_hello(void **state)
{
    struct handshake good, h;
    uint8_t payload[256];
    uint8_t out[LINK_FRAME_CONTROL_MAX_LENGTH];
    size_t out_length;

    memset(&good, 0, sizeof(good));
    start_server(&good, secret, strlen(secret));
    size_t length = good.hello_length - 8;
    memcpy(payload, good.hello + 8, length);

    for (size_t cut = 0; cut < length; cut += 5) {
        start_client(&h, secret, strlen(secret), NULL);
        assert_int_equal(link_auth_client_on_hello(&h.client, payload, cut, out, &out_length),
                         LINK_AUTH_PROTOCOL);
    }
    payload[0] = 2; /* an unknown version */
    start_client(&h, secret, strlen(secret), NULL);
    assert_int_equal(link_auth_client_on_hello(&h.client, payload, length, out, &out_length),
                     LINK_AUTH_PROTOCOL);
    payload[0] = 1;
    payload[2] = ' ';
    start_client(&h, secret, strlen(secret), NULL);
    assert_int_equal(link_auth_client_on_hello(&h.client, payload, length, out, &out_length),
                     LINK_AUTH_PROTOCOL);
    payload[2] = 'n';
    start_client(&h, secret, strlen(secret), NULL);
    assert_int_equal(link_auth_client_on_hello(&h.client, payload, length, out, &out_length),
                     LINK_AUTH_OK);
}

static void test_malformed_auth_ok(void **state)
{
    struct handshake h;
    struct link_auth_peer peer;

    run_to_auth(&h, secret, strlen(secret), secret, strlen(secret));
    assert_int_equal(deliver_auth(&h), LINK_AUTH_OK);
    assert_int_equal(link_auth_client_on_auth_ok(&h.client, h.auth_ok + 8, 31, &peer),
                     LINK_AUTH_PROTOCOL);
    /* Failed for good, even with the right MAC afterwards. */
    assert_int_equal(deliver_auth_ok(&h), LINK_AUTH_PROTOCOL);
}

static void test_out_of_order(void **state)
{
    struct handshake h;
    struct link_auth_peer peer;
    uint8_t out[LINK_FRAME_CONTROL_MAX_LENGTH];
    size_t out_length;

    /* AUTH_OK before HELLO. */
    memset(&h, 0, sizeof(h));
    start_client(&h, secret, strlen(secret), NULL);
    uint8_t mac[32] = {0};
    assert_int_equal(link_auth_client_on_auth_ok(&h.client, mac, 32, &peer), LINK_AUTH_PROTOCOL);

    /* A second HELLO. */
    run_to_auth(&h, secret, strlen(secret), secret, strlen(secret));
    assert_int_equal(deliver_hello(&h), LINK_AUTH_PROTOCOL);

    /* A second AUTH after success. */
    run_to_auth(&h, secret, strlen(secret), secret, strlen(secret));
    assert_int_equal(deliver_auth(&h), LINK_AUTH_OK);
    assert_int_equal(deliver_auth(&h), LINK_AUTH_PROTOCOL);

    /* A state that was never initialised, or was cleared. */
    struct link_auth_server cleared;
    memset(&cleared, 0, sizeof(cleared));
    assert_int_equal(
        link_auth_server_on_auth(&cleared, h.auth + 8, h.auth_length - 8, &peer, out, &out_length),
        LINK_AUTH_PROTOCOL);
}

static void test_wrong_peer(void **state)
{
    struct handshake h;

    /* The dialer wanted node-c, node-a answered. */
    memset(&h, 0, sizeof(h));
    start_server(&h, secret, strlen(secret));
    start_client(&h, secret, strlen(secret), "node-c");
    assert_int_equal(deliver_hello(&h), LINK_AUTH_WRONG_PEER);
    assert_true(all_zero(h.client.key.bytes, sizeof(h.client.key.bytes)));

    /* A node that reached itself (its advertise URL points at itself). */
    memset(&h, 0, sizeof(h));
    start_server(&h, secret, strlen(secret));
    assert_int_equal(link_auth_client_init(&h.client, "node-a", 5, secret, strlen(secret), NULL),
                     0);
    assert_int_equal(deliver_hello(&h), LINK_AUTH_WRONG_PEER);
}

/* A dialer claiming the acceptor's own id is refused even with the right
 * secret: that is what stops reflecting one node's MAC back at it. */
static void test_client_claiming_server_id(void **state)
{
    struct handshake h;
    struct link_auth_client impostor;
    uint8_t hello_copy[LINK_FRAME_CONTROL_MAX_LENGTH];

    memset(&h, 0, sizeof(h));
    start_server(&h, secret, strlen(secret));
    /* Rewrite HELLO's id so the impostor's own-id check passes, then the
     * server must still refuse an AUTH naming node-a. */
    memcpy(hello_copy, h.hello, h.hello_length);
    memcpy(hello_copy + 8 + 2, "node-x", 6);
    assert_int_equal(link_auth_client_init(&impostor, "node-a", 1, secret, strlen(secret), NULL),
                     0);
    assert_int_equal(link_auth_client_on_hello(&impostor, hello_copy + 8, h.hello_length - 8,
                                               h.auth, &h.auth_length),
                     LINK_AUTH_OK);
    assert_int_equal(deliver_auth(&h), LINK_AUTH_WRONG_PEER);
}

static void test_init_refuses_bad_arguments(void **state)
{
    struct link_auth_server server;
    struct link_auth_client client;
    uint8_t hello[LINK_FRAME_CONTROL_MAX_LENGTH];
    size_t hello_length;
    char long_id[70];

    memset(long_id, 'n', 65);
    long_id[65] = '\0';
    assert_int_equal(link_auth_server_init(&server, "", 1, NULL, 0, hello, &hello_length), -1);
    assert_int_equal(link_auth_server_init(&server, NULL, 1, NULL, 0, hello, &hello_length), -1);
    assert_int_equal(link_auth_server_init(&server, long_id, 1, NULL, 0, hello, &hello_length), -1);
    assert_int_equal(link_auth_server_init(&server, "a b", 1, NULL, 0, hello, &hello_length), -1);
    assert_int_equal(link_auth_server_init(&server, "a", 1, "", 0, hello, &hello_length), -1);
    long_id[64] = '\0';
    assert_int_equal(link_auth_server_init(&server, long_id, 1, NULL, 0, hello, &hello_length), 0);
    assert_int_equal(hello_length, LINK_FRAME_HEADER_LENGTH + 1 + 1 + 64 + 8 + 32);
    assert_int_equal(link_auth_client_init(&client, "a*", 1, NULL, 0, NULL), -1);
    assert_int_equal(link_auth_client_init(&client, "a", 1, NULL, 0, "b/c"), -1);
    assert_int_equal(link_auth_client_init(&client, "a", 1, secret, 0, NULL), -1);
    assert_int_equal(link_auth_client_init(&client, "A.b_c-9", 1, NULL, 0, "x"), 0);
}

static void test_node_id_rules(void **state)
{
    assert_true(link_auth_node_id_is_valid("node-1.eu_west", 14));
    assert_true(link_auth_node_id_is_valid("x", 1));
    assert_false(link_auth_node_id_is_valid("", 0));
    assert_false(link_auth_node_id_is_valid(NULL, 1));
    assert_false(link_auth_node_id_is_valid("node a", 6));
    assert_false(link_auth_node_id_is_valid("node\0a", 6));
    assert_false(link_auth_node_id_is_valid("n\xc3\xa9", 3));
    assert_false(link_auth_node_id_is_valid("node:a", 6));
}

static void test_verdict_names(void **state)
{
    assert_string_equal(link_auth_verdict_name(LINK_AUTH_OK), "ok");
    assert_string_equal(link_auth_verdict_name(LINK_AUTH_BAD_SECRET), "bad secret");
    assert_string_equal(link_auth_verdict_name(LINK_AUTH_PROTOCOL), "protocol error");
}

/* ---- certificates ---------------------------------------------------- */

/* A self-signed certificate with the given CN (may be NULL) and DNS SANs
 * (NULL-terminated list, may be NULL). */
static X509 *make_certificate(const char *common_name, const char *const *dns_names)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *certificate = X509_new();
    assert_non_null(key);
    assert_non_null(certificate);

    assert_int_equal(X509_set_version(certificate, X509_VERSION_3), 1);
    ASN1_INTEGER_set(X509_get_serialNumber(certificate), 1);
    X509_gmtime_adj(X509_getm_notBefore(certificate), 0);
    X509_gmtime_adj(X509_getm_notAfter(certificate), 3600);
    X509_NAME *name = X509_get_subject_name(certificate);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"relayd test", -1,
                               -1, 0);
    if (common_name != NULL)
        assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                                    (const unsigned char *)common_name, -1, -1, 0),
                         1);
    X509_set_issuer_name(certificate, name);
    if (dns_names != NULL) {
        GENERAL_NAMES *names = GENERAL_NAMES_new();
        for (size_t i = 0; dns_names[i] != NULL; i++) {
            GENERAL_NAME *entry = GENERAL_NAME_new();
            ASN1_IA5STRING *text = ASN1_IA5STRING_new();
            ASN1_STRING_set(text, dns_names[i], -1);
            GENERAL_NAME_set0_value(entry, GEN_DNS, text);
            sk_GENERAL_NAME_push(names, entry);
        }
        assert_int_equal(X509_add1_ext_i2d(certificate, NID_subject_alt_name, names, 0, 0), 1);
        GENERAL_NAMES_free(names);
    }
    assert_int_equal(X509_set_pubkey(certificate, key), 1);
    assert_true(X509_sign(certificate, key, EVP_sha256()) > 0);
    EVP_PKEY_free(key);
    return certificate;
}

static void test_certificate_common_name(void **state)
{
    X509 *certificate = make_certificate("node-a", NULL);

    assert_true(link_auth_certificate_names_node(certificate, "node-a"));
    assert_false(link_auth_certificate_names_node(certificate, "node-b"));
    assert_false(link_auth_certificate_names_node(certificate, "NODE-A"));
    assert_false(link_auth_certificate_names_node(certificate, "node-"));
    assert_false(link_auth_certificate_names_node(certificate, "node-aa"));
    assert_false(link_auth_certificate_names_node(certificate, NULL));
    assert_false(link_auth_certificate_names_node(NULL, "node-a"));
    X509_free(certificate);
}

static void test_certificate_dns_names(void **state)
{
    static const char *const names[] = {"relay-1.example.net", "node-a", "node-a2", NULL};
    X509 *certificate = make_certificate("some other name", names);

    /* Any DNS SAN counts, and the CN still counts when SANs are present. */
    assert_true(link_auth_certificate_names_node(certificate, "node-a"));
    assert_true(link_auth_certificate_names_node(certificate, "node-a2"));
    assert_true(link_auth_certificate_names_node(certificate, "relay-1.example.net"));
    assert_false(link_auth_certificate_names_node(certificate, "node-b"));
    assert_false(link_auth_certificate_names_node(certificate, "example.net"));
    X509_free(certificate);

    certificate = make_certificate("node-c", names);
    assert_true(link_auth_certificate_names_node(certificate, "node-c"));
    X509_free(certificate);
}

static void test_certificate_wildcards_do_not_match(void **state)
{
    static const char *const names[] = {"*.cluster.local", "node-*", "*", NULL};
    X509 *certificate = make_certificate("*.cluster.local", names);

    assert_false(link_auth_certificate_names_node(certificate, "node-a.cluster.local"));
    assert_false(link_auth_certificate_names_node(certificate, "node-a"));
    assert_false(link_auth_certificate_names_node(certificate, "x"));
    X509_free(certificate);

    /* A leading dot is not "any subdomain" either. */
    static const char *const host_names[] = {"node-a.cluster.local", NULL};
    certificate = make_certificate(NULL, host_names);
    assert_false(link_auth_certificate_names_node(certificate, ".cluster.local"));
    assert_true(link_auth_certificate_names_node(certificate, "node-a.cluster.local"));
    X509_free(certificate);
}

static void test_certificate_without_names(void **state)
{
    X509 *certificate = make_certificate(NULL, NULL);

    assert_false(link_auth_certificate_names_node(certificate, "node-a"));
    assert_false(link_auth_certificate_names_node(certificate, "relayd test"));
    X509_free(certificate);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_handshake),
        cmocka_unit_test(test_long_secret),
        cmocka_unit_test(test_fresh_nonces),
        cmocka_unit_test(test_wrong_secret),
        cmocka_unit_test(test_replayed_auth),
        cmocka_unit_test(test_replayed_auth_ok),
        cmocka_unit_test(test_forged_server_mac),
        cmocka_unit_test(test_server_without_secret_is_refused),
        cmocka_unit_test(test_client_without_secret_is_refused),
        cmocka_unit_test(test_mutual_tls_only),
        cmocka_unit_test(test_malformed_auth),
        cmocka_unit_test(test_malformed_hello),
        cmocka_unit_test(test_malformed_auth_ok),
        cmocka_unit_test(test_out_of_order),
        cmocka_unit_test(test_wrong_peer),
        cmocka_unit_test(test_client_claiming_server_id),
        cmocka_unit_test(test_init_refuses_bad_arguments),
        cmocka_unit_test(test_node_id_rules),
        cmocka_unit_test(test_verdict_names),
        cmocka_unit_test(test_certificate_common_name),
        cmocka_unit_test(test_certificate_dns_names),
        cmocka_unit_test(test_certificate_wildcards_do_not_match),
        cmocka_unit_test(test_certificate_without_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

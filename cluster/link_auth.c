/*
 * link_auth.c - the link handshake: HELLO, AUTH, AUTH_OK.
 *
 * A node accepts link connections only from other members of its cluster.
 * Membership is proven by mutual TLS (a certificate from the cluster CA that
 * names the node), by knowledge of the shared cluster secret, or both. This
 * file holds the secret half as two small state machines, one per side of a
 * connection, and the certificate name check the TLS half needs; the link
 * code owns the sockets and feeds them frames (cluster/link-protocol.md,
 * "Authentication").
 *
 * Security properties and where they come from:
 * - Freshness: each side contributes a random 32-byte nonce and both MACs
 *   cover both nonces, so neither an AUTH nor an AUTH_OK replays onto a new
 *   connection.
 * - No reflection: the two MACs use different labels, and a node refuses a
 *   peer that claims its own node id, so a MAC one node computes can never
 *   be handed back to it as proof.
 * - Binding: node ids and epochs are inside the MAC, so a man in the middle
 *   cannot change whom either side believes it is talking to.
 * - Constant time: MACs are compared with CRYPTO_memcmp.
 * The one thing a shared secret cannot give is per-node identity: any
 * holder of the secret can claim any node id. Mutual TLS gives that.
 */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "link_auth.h"
#include "relay/directory.h"

_Static_assert(LINK_NODE_ID_MAX_LENGTH == NODE_ID_MAX_LENGTH,
               "link node ids and directory node ids must have the same limit");

enum link_auth_phase {
    LINK_AUTH_PHASE_IDLE = 0, /* not initialised, or cleared */
    LINK_AUTH_PHASE_WAIT_HELLO,
    LINK_AUTH_PHASE_WAIT_AUTH,
    LINK_AUTH_PHASE_WAIT_AUTH_OK,
    LINK_AUTH_PHASE_DONE,
    LINK_AUTH_PHASE_FAILED,
};

/* Both labels are 20 bytes, so the MAC input always starts at a fixed
 * offset and the two can never be confused. */
#define LINK_AUTH_LABEL_LENGTH 20
static const char link_auth_client_label[] = "relayd-link.1 client";
static const char link_auth_server_label[] = "relayd-link.1 server";

/* Every field both MACs cover. */
struct link_auth_transcript {
    const uint8_t *server_nonce;
    const uint8_t *client_nonce;
    const char *server_id;
    uint64_t server_epoch;
    const char *client_id;
    uint64_t client_epoch;
};

#define LINK_AUTH_MAC_INPUT_MAX_LENGTH                                                             \
    (LINK_AUTH_LABEL_LENGTH + 2 * LINK_NONCE_LENGTH + 2 * (1 + LINK_NODE_ID_MAX_LENGTH + 8))

bool link_auth_node_id_is_valid(const char *node_id, size_t length)
{
    if (node_id == NULL || length < 1 || length > LINK_NODE_ID_MAX_LENGTH)
        return false;
    for (size_t i = 0; i < length; i++) {
        char c = node_id[i];
        bool alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && c != '.' && c != '_' && c != '-')
            return false;
    }
    return true;
}

static bool link_auth_node_id_is_valid_string(const char *node_id)
{
    return node_id != NULL &&
           link_auth_node_id_is_valid(node_id, strnlen(node_id, LINK_NODE_ID_MAX_LENGTH + 1));
}

/* Keep the secret as an HMAC key. A secret longer than the HMAC block is
 * replaced by its SHA-256, which is exactly what HMAC itself does with a
 * long key (RFC 2104, section 2): the MAC is unchanged and the state needs
 * no allocation whatever the secret's length. */
static int link_auth_key_set(struct link_auth_key *key, const void *secret, size_t length)
{
    unsigned int digest_length = 0;

    memset(key, 0, sizeof(*key));
    if (secret == NULL)
        return 0;
    if (length == 0)
        return -1;
    key->present = true;
    if (length <= sizeof(key->bytes)) {
        memcpy(key->bytes, secret, length);
        key->length = length;
        return 0;
    }
    if (EVP_Digest(secret, length, key->bytes, &digest_length, EVP_sha256(), NULL) != 1)
        return -1;
    key->length = digest_length;
    return 0;
}

/* Forget the key bytes but remember whether there was a secret: the client
 * still needs to know whether AUTH_OK's MAC is to be checked. */
static void link_auth_key_wipe(struct link_auth_key *key)
{
    OPENSSL_cleanse(key->bytes, sizeof(key->bytes));
    key->length = 0;
}

static size_t link_auth_put_id(uint8_t *out, const char *node_id)
{
    size_t length = strlen(node_id);

    out[0] = (uint8_t)length;
    memcpy(out + 1, node_id, length);
    return 1 + length;
}

/* label || server_nonce || client_nonce || len||server_id || server_epoch
 *       || len||client_id || client_epoch */
static size_t link_auth_mac_input(uint8_t *out, const char *label,
                                  const struct link_auth_transcript *transcript)
{
    size_t length = 0;

    memcpy(out, label, LINK_AUTH_LABEL_LENGTH);
    length += LINK_AUTH_LABEL_LENGTH;
    memcpy(out + length, transcript->server_nonce, LINK_NONCE_LENGTH);
    length += LINK_NONCE_LENGTH;
    memcpy(out + length, transcript->client_nonce, LINK_NONCE_LENGTH);
    length += LINK_NONCE_LENGTH;
    length += link_auth_put_id(out + length, transcript->server_id);
    link_put_u64(out + length, transcript->server_epoch);
    length += 8;
    length += link_auth_put_id(out + length, transcript->client_id);
    link_put_u64(out + length, transcript->client_epoch);
    length += 8;
    return length;
}

/* The MAC under key, or all zeros when there is no secret. Returns -1 only
 * when OpenSSL fails. */
static int link_auth_compute_mac(const struct link_auth_key *key, const char *label,
                                 const struct link_auth_transcript *transcript,
                                 uint8_t mac[LINK_MAC_LENGTH])
{
    uint8_t input[LINK_AUTH_MAC_INPUT_MAX_LENGTH];
    unsigned int mac_length = 0;
    size_t input_length;

    memset(mac, 0, LINK_MAC_LENGTH);
    if (!key->present)
        return 0;
    input_length = link_auth_mac_input(input, label, transcript);
    if (HMAC(EVP_sha256(), key->bytes, (int)key->length, input, input_length, mac, &mac_length) ==
            NULL ||
        mac_length != LINK_MAC_LENGTH)
        return -1;
    return 0;
}

/* Read a length-prefixed node id at in (at most left bytes) into out.
 * Returns the bytes consumed, or 0 when it is malformed. */
static size_t link_auth_get_id(const uint8_t *in, size_t left, char *out)
{
    size_t length;

    if (left < 1)
        return 0;
    length = in[0];
    if (length + 1 > left || !link_auth_node_id_is_valid((const char *)in + 1, length))
        return 0;
    memcpy(out, in + 1, length);
    out[length] = '\0';
    return 1 + length;
}

/* ---- acceptor ---------------------------------------------------------- */

static size_t link_auth_build_hello(const struct link_auth_server *state, uint8_t *out)
{
    uint8_t *payload = out + LINK_FRAME_HEADER_LENGTH;
    size_t length = 0;

    link_frame_write_header(out, LINK_FRAME_HELLO, 0, 0);
    payload[length++] = LINK_VERSION;
    length += link_auth_put_id(payload + length, state->self_id);
    link_put_u64(payload + length, state->self_epoch);
    length += 8;
    memcpy(payload + length, state->nonce, LINK_NONCE_LENGTH);
    length += LINK_NONCE_LENGTH;
    return LINK_FRAME_HEADER_LENGTH + length;
}

int link_auth_server_init(struct link_auth_server *state, const char *self_id, uint64_t self_epoch,
                          const void *secret, size_t secret_len, uint8_t *hello,
                          size_t *hello_length)
{
    memset(state, 0, sizeof(*state));
    if (!link_auth_node_id_is_valid_string(self_id) ||
        link_auth_key_set(&state->key, secret, secret_len) != 0 ||
        RAND_bytes(state->nonce, LINK_NONCE_LENGTH) != 1) {
        link_auth_server_clear(state);
        return -1;
    }
    strcpy(state->self_id, self_id);
    state->self_epoch = self_epoch;
    state->phase = LINK_AUTH_PHASE_WAIT_AUTH;
    *hello_length = link_auth_build_hello(state, hello);
    return 0;
}

/* The fields of an AUTH payload: len||client_id, epoch, nonce, MAC. */
struct link_auth_message {
    struct link_auth_peer client;
    const uint8_t *nonce;
    const uint8_t *mac;
};

static int link_auth_parse_auth(const uint8_t *payload, size_t length,
                                struct link_auth_message *message)
{
    size_t used = link_auth_get_id(payload, length, message->client.node_id);

    if (used == 0 || length != used + 8 + LINK_NONCE_LENGTH + LINK_MAC_LENGTH)
        return -1;
    message->client.epoch = link_get_u64(payload + used);
    message->nonce = payload + used + 8;
    message->mac = message->nonce + LINK_NONCE_LENGTH;
    return 0;
}

static enum link_auth_verdict link_auth_server_check(struct link_auth_server *state,
                                                     const uint8_t *payload, size_t length,
                                                     struct link_auth_message *message,
                                                     uint8_t *auth_ok)
{
    struct link_auth_transcript transcript;
    uint8_t expected[LINK_MAC_LENGTH];
    bool mac_matches;

    if (state->phase != LINK_AUTH_PHASE_WAIT_AUTH ||
        link_auth_parse_auth(payload, length, message) != 0)
        return LINK_AUTH_PROTOCOL;
    if (strcmp(message->client.node_id, state->self_id) == 0)
        return LINK_AUTH_WRONG_PEER;
    transcript = (struct link_auth_transcript){
        state->nonce,      message->nonce,          state->self_id,
        state->self_epoch, message->client.node_id, message->client.epoch};
    if (link_auth_compute_mac(&state->key, link_auth_client_label, &transcript, expected) != 0)
        return LINK_AUTH_INTERNAL;
    mac_matches = CRYPTO_memcmp(expected, message->mac, LINK_MAC_LENGTH) == 0;
    OPENSSL_cleanse(expected, sizeof(expected));
    if (state->key.present && !mac_matches)
        return LINK_AUTH_BAD_SECRET;
    if (link_auth_compute_mac(&state->key, link_auth_server_label, &transcript,
                              auth_ok + LINK_FRAME_HEADER_LENGTH) != 0)
        return LINK_AUTH_INTERNAL;
    link_frame_write_header(auth_ok, LINK_FRAME_AUTH_OK, 0, 0);
    return LINK_AUTH_OK;
}

enum link_auth_verdict link_auth_server_on_auth(struct link_auth_server *state,
                                                const uint8_t *payload, size_t length,
                                                struct link_auth_peer *peer, uint8_t *auth_ok,
                                                size_t *auth_ok_length)
{
    struct link_auth_message message = {0};
    enum link_auth_verdict verdict =
        link_auth_server_check(state, payload, length, &message, auth_ok);

    /* Success or failure, the handshake is over and the key has served. */
    link_auth_key_wipe(&state->key);
    if (verdict != LINK_AUTH_OK) {
        state->phase = LINK_AUTH_PHASE_FAILED;
        return verdict;
    }
    state->phase = LINK_AUTH_PHASE_DONE;
    *peer = message.client;
    *auth_ok_length = LINK_FRAME_HEADER_LENGTH + LINK_MAC_LENGTH;
    return LINK_AUTH_OK;
}

void link_auth_server_clear(struct link_auth_server *state)
{
    OPENSSL_cleanse(state, sizeof(*state));
}

/* ---- dialer ------------------------------------------------------------ */

int link_auth_client_init(struct link_auth_client *state, const char *self_id, uint64_t self_epoch,
                          const void *secret, size_t secret_len, const char *expected_server_id)
{
    memset(state, 0, sizeof(*state));
    if (!link_auth_node_id_is_valid_string(self_id) ||
        (expected_server_id != NULL && !link_auth_node_id_is_valid_string(expected_server_id)) ||
        link_auth_key_set(&state->key, secret, secret_len) != 0) {
        link_auth_client_clear(state);
        return -1;
    }
    strcpy(state->self_id, self_id);
    if (expected_server_id != NULL)
        strcpy(state->expected_server_id, expected_server_id);
    state->self_epoch = self_epoch;
    state->phase = LINK_AUTH_PHASE_WAIT_HELLO;
    return 0;
}

/* HELLO: version, len||server_id, epoch, nonce. Fills state->server and
 * points *nonce into the payload. */
static int link_auth_parse_hello(struct link_auth_client *state, const uint8_t *payload,
                                 size_t length, const uint8_t **nonce)
{
    size_t used;

    if (length < 1 || payload[0] != LINK_VERSION)
        return -1;
    used = link_auth_get_id(payload + 1, length - 1, state->server.node_id);
    if (used == 0 || length != 1 + used + 8 + LINK_NONCE_LENGTH)
        return -1;
    state->server.epoch = link_get_u64(payload + 1 + used);
    *nonce = payload + 1 + used + 8;
    return 0;
}

static size_t link_auth_build_auth(const struct link_auth_client *state,
                                   const uint8_t client_nonce[LINK_NONCE_LENGTH],
                                   const uint8_t client_mac[LINK_MAC_LENGTH], uint8_t *out)
{
    uint8_t *payload = out + LINK_FRAME_HEADER_LENGTH;
    size_t length = link_auth_put_id(payload, state->self_id);

    link_frame_write_header(out, LINK_FRAME_AUTH, 0, 0);
    link_put_u64(payload + length, state->self_epoch);
    length += 8;
    memcpy(payload + length, client_nonce, LINK_NONCE_LENGTH);
    length += LINK_NONCE_LENGTH;
    memcpy(payload + length, client_mac, LINK_MAC_LENGTH);
    length += LINK_MAC_LENGTH;
    return LINK_FRAME_HEADER_LENGTH + length;
}

static bool link_auth_client_accepts_server(const struct link_auth_client *state)
{
    if (strcmp(state->server.node_id, state->self_id) == 0)
        return false;
    return state->expected_server_id[0] == '\0' ||
           strcmp(state->server.node_id, state->expected_server_id) == 0;
}

/* Both MACs are computed here, while the key is at hand: AUTH carries the
 * client's, and the server's is kept to compare AUTH_OK against. */
static enum link_auth_verdict link_auth_client_answer(struct link_auth_client *state,
                                                      const uint8_t *server_nonce, uint8_t *auth,
                                                      size_t *auth_length)
{
    uint8_t client_nonce[LINK_NONCE_LENGTH];
    uint8_t client_mac[LINK_MAC_LENGTH];
    struct link_auth_transcript transcript = {server_nonce,          client_nonce,
                                              state->server.node_id, state->server.epoch,
                                              state->self_id,        state->self_epoch};

    if (RAND_bytes(client_nonce, sizeof(client_nonce)) != 1 ||
        link_auth_compute_mac(&state->key, link_auth_client_label, &transcript, client_mac) != 0 ||
        link_auth_compute_mac(&state->key, link_auth_server_label, &transcript,
                              state->expected_server_mac) != 0)
        return LINK_AUTH_INTERNAL;
    *auth_length = link_auth_build_auth(state, client_nonce, client_mac, auth);
    return LINK_AUTH_OK;
}

enum link_auth_verdict link_auth_client_on_hello(struct link_auth_client *state,
                                                 const uint8_t *payload, size_t length,
                                                 uint8_t *auth, size_t *auth_length)
{
    const uint8_t *server_nonce;
    enum link_auth_verdict verdict;

    if (state->phase != LINK_AUTH_PHASE_WAIT_HELLO ||
        link_auth_parse_hello(state, payload, length, &server_nonce) != 0)
        verdict = LINK_AUTH_PROTOCOL;
    else if (!link_auth_client_accepts_server(state))
        verdict = LINK_AUTH_WRONG_PEER;
    else
        verdict = link_auth_client_answer(state, server_nonce, auth, auth_length);
    link_auth_key_wipe(&state->key);
    state->phase = verdict == LINK_AUTH_OK ? LINK_AUTH_PHASE_WAIT_AUTH_OK : LINK_AUTH_PHASE_FAILED;
    return verdict;
}

enum link_auth_verdict link_auth_client_on_auth_ok(struct link_auth_client *state,
                                                   const uint8_t *payload, size_t length,
                                                   struct link_auth_peer *server)
{
    enum link_auth_verdict verdict = LINK_AUTH_OK;

    if (state->phase != LINK_AUTH_PHASE_WAIT_AUTH_OK || length != LINK_MAC_LENGTH)
        verdict = LINK_AUTH_PROTOCOL;
    else if (state->key.present &&
             CRYPTO_memcmp(state->expected_server_mac, payload, LINK_MAC_LENGTH) != 0)
        verdict = LINK_AUTH_BAD_SECRET;
    OPENSSL_cleanse(state->expected_server_mac, sizeof(state->expected_server_mac));
    state->phase = verdict == LINK_AUTH_OK ? LINK_AUTH_PHASE_DONE : LINK_AUTH_PHASE_FAILED;
    if (verdict == LINK_AUTH_OK)
        *server = state->server;
    return verdict;
}

void link_auth_client_clear(struct link_auth_client *state)
{
    OPENSSL_cleanse(state, sizeof(*state));
}

/* ---- certificates ------------------------------------------------------ */

static bool link_auth_asn1_equals(const ASN1_STRING *string, const char *text, size_t length)
{
    return string != NULL && ASN1_STRING_length(string) >= 0 &&
           (size_t)ASN1_STRING_length(string) == length &&
           memcmp(ASN1_STRING_get0_data(string), text, length) == 0;
}

/* Every CN in the subject counts, not only the last one. */
static bool link_auth_common_name_is(X509 *certificate, const char *node_id, size_t length)
{
    X509_NAME *subject = X509_get_subject_name(certificate);
    int index = -1;

    if (subject == NULL)
        return false;
    while ((index = X509_NAME_get_index_by_NID(subject, NID_commonName, index)) >= 0) {
        X509_NAME_ENTRY *entry = X509_NAME_get_entry(subject, index);
        if (link_auth_asn1_equals(X509_NAME_ENTRY_get_data(entry), node_id, length))
            return true;
    }
    return false;
}

static bool link_auth_dns_name_is(X509 *certificate, const char *node_id, size_t length)
{
    GENERAL_NAMES *names = X509_get_ext_d2i(certificate, NID_subject_alt_name, NULL, NULL);
    bool found = false;

    for (int i = 0; names != NULL && i < sk_GENERAL_NAME_num(names) && !found; i++) {
        const GENERAL_NAME *name = sk_GENERAL_NAME_value(names, i);
        found = name->type == GEN_DNS && link_auth_asn1_equals(name->d.dNSName, node_id, length);
    }
    GENERAL_NAMES_free(names);
    return found;
}

/* Compared by hand rather than with X509_check_host: host name matching
 * folds case and gives a leading "." a subdomain meaning, and node ids are
 * neither case-insensitive nor host names. */
bool link_auth_certificate_names_node(X509 *certificate, const char *node_id)
{
    size_t length;

    if (certificate == NULL || !link_auth_node_id_is_valid_string(node_id))
        return false;
    length = strlen(node_id);
    return link_auth_common_name_is(certificate, node_id, length) ||
           link_auth_dns_name_is(certificate, node_id, length);
}

const char *link_auth_verdict_name(enum link_auth_verdict verdict)
{
    switch (verdict) {
    case LINK_AUTH_OK:
        return "ok";
    case LINK_AUTH_BAD_SECRET:
        return "bad secret";
    case LINK_AUTH_WRONG_PEER:
        return "wrong peer";
    case LINK_AUTH_PROTOCOL:
        return "protocol error";
    case LINK_AUTH_INTERNAL:
        return "internal error";
    }
    return "unknown";
}

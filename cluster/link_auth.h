/*
 * link_auth.h - the authentication handshake of the node-to-node link.
 *
 * Three frames open every link connection (cluster/link-protocol.md):
 *
 *   acceptor -> dialer   HELLO    version, node id, epoch, server nonce
 *   dialer -> acceptor   AUTH     node id, epoch, client nonce, client MAC
 *   acceptor -> dialer   AUTH_OK  server MAC
 *
 * The MACs are HMAC-SHA256 under the shared cluster secret over both nonces,
 * both node ids and both epochs, so each side proves it knows the secret
 * and a recorded AUTH or AUTH_OK is useless on any other connection. With no
 * secret (mutual TLS is then the authentication) the MACs are zero and not
 * checked; the caller must then check the peer's certificate with
 * link_auth_certificate_names_node against the node id the handshake
 * reports.
 *
 * These are state machines without sockets: the link code feeds them the
 * payloads of frames it decoded with link_frame_decode and sends the frames
 * they build. A frame of any other type during the handshake is the
 * caller's to refuse (as LINK_AUTH_PROTOCOL). Each state wipes its key
 * material once it has no more use for it, and on *_clear.
 */
#ifndef RELAY_LINK_AUTH_H
#define RELAY_LINK_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "link_frame.h"

/* HMAC-SHA256's block size. The states keep the key in this many bytes: a
 * longer secret is stored as its SHA-256, as HMAC does with long keys (RFC
 * 2104), so callers pass secrets of any length whole, never truncated. */
#define LINK_AUTH_KEY_MAX_LENGTH 64

enum link_auth_verdict {
    LINK_AUTH_OK = 0,
    LINK_AUTH_BAD_SECRET, /* a MAC did not verify: wrong secret, or a replay */
    LINK_AUTH_WRONG_PEER, /* the peer is not the node expected, or is this node */
    LINK_AUTH_PROTOCOL,   /* malformed payload, or a handshake frame out of order */
    LINK_AUTH_INTERNAL,   /* no randomness or no HMAC from OpenSSL */
};

/* Who is at the other end, once the handshake has succeeded. */
struct link_auth_peer {
    char node_id[LINK_NODE_ID_MAX_LENGTH + 1];
    uint64_t epoch;
};

/* Private to link_auth.c; in the header so states can live in structs. */
struct link_auth_key {
    uint8_t bytes[LINK_AUTH_KEY_MAX_LENGTH];
    size_t length;
    bool present; /* false: no secret, mutual TLS only */
};

struct link_auth_server {
    int phase;
    struct link_auth_key key;
    char self_id[LINK_NODE_ID_MAX_LENGTH + 1];
    uint64_t self_epoch;
    uint8_t nonce[LINK_NONCE_LENGTH];
};

struct link_auth_client {
    int phase;
    struct link_auth_key key;
    char self_id[LINK_NODE_ID_MAX_LENGTH + 1];
    uint64_t self_epoch;
    char expected_server_id[LINK_NODE_ID_MAX_LENGTH + 1]; /* "": any */
    uint8_t expected_server_mac[LINK_MAC_LENGTH];
    struct link_auth_peer server;
};

/* Acceptor side. Start a handshake: pick a fresh nonce and write the whole
 * HELLO frame (header included) into hello (LINK_FRAME_CONTROL_MAX_LENGTH
 * bytes), its length into *hello_length. secret may be NULL (mutual TLS
 * only); a non-NULL secret must not be empty. Returns 0, or -1 for a bad
 * self_id, an empty secret or no randomness. */
int link_auth_server_init(struct link_auth_server *state, const char *self_id, uint64_t self_epoch,
                          const void *secret, size_t secret_len, uint8_t *hello,
                          size_t *hello_length);

/* The dialer's AUTH payload arrived. On LINK_AUTH_OK fills *peer and writes
 * the whole AUTH_OK frame into auth_ok (LINK_FRAME_CONTROL_MAX_LENGTH bytes)
 * and its length into *auth_ok_length; the link is then authenticated. Any
 * other verdict is final: close the link and count an auth failure. */
enum link_auth_verdict link_auth_server_on_auth(struct link_auth_server *state,
                                                const uint8_t *payload, size_t length,
                                                struct link_auth_peer *peer, uint8_t *auth_ok,
                                                size_t *auth_ok_length);

void link_auth_server_clear(struct link_auth_server *state);

/* Dialer side. expected_server_id (may be NULL: any) is the node the dialer
 * meant to reach, from the directory; a HELLO from another node is refused.
 * secret as for the server. Returns 0, or -1 for a bad self_id or
 * expected_server_id or an empty secret. */
int link_auth_client_init(struct link_auth_client *state, const char *self_id, uint64_t self_epoch,
                          const void *secret, size_t secret_len, const char *expected_server_id);

/* The acceptor's HELLO payload arrived. On LINK_AUTH_OK writes the whole
 * AUTH frame into auth (LINK_FRAME_CONTROL_MAX_LENGTH bytes) and its length
 * into *auth_length. Send nothing else until AUTH_OK has been verified. */
enum link_auth_verdict link_auth_client_on_hello(struct link_auth_client *state,
                                                 const uint8_t *payload, size_t length,
                                                 uint8_t *auth, size_t *auth_length);

/* The acceptor's AUTH_OK payload arrived. On LINK_AUTH_OK fills *server and
 * the link is authenticated. */
enum link_auth_verdict link_auth_client_on_auth_ok(struct link_auth_client *state,
                                                   const uint8_t *payload, size_t length,
                                                   struct link_auth_peer *server);

void link_auth_client_clear(struct link_auth_client *state);

/* 1 to 64 characters of [A-Za-z0-9._-]. */
bool link_auth_node_id_is_valid(const char *node_id, size_t length);

/* Whether the certificate names node_id, byte for byte, as its subject CN
 * or as one of its DNS subject alternative names. No wildcards, no case
 * folding: a certificate for "*.cluster" or "NODE-A" does not name "node-a".
 * Chain verification against the cluster CA is TLS's job, not this one's. */
bool link_auth_certificate_names_node(X509 *certificate, const char *node_id);

/* "ok", "bad secret", ... for logs. */
const char *link_auth_verdict_name(enum link_auth_verdict verdict);

#endif

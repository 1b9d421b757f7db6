/*
 * link_tls.h - the link dialer's TLS client, run on OpenSSL memory BIOs.
 *
 * Under wss:// the dialer (link_dialer.c) speaks TLS itself: lws 4.1.6
 * cannot start client TLS on a raw connection (it tries the handshake before
 * the socket exists). So ciphertext from the socket is fed into a memory BIO,
 * plaintext is read out of OpenSSL, and ciphertext OpenSSL produces leaves
 * through lws_write like plain bytes. This is a unit of its own: it knows
 * nothing of WebSocket or of links, only an SSL object, an lws connection to
 * write to, and a callback that takes the plaintext. The peer's identity is
 * its node id, checked against its certificate after HELLO (link.c), so no
 * host name is verified here.
 */
#ifndef RELAY_LINK_TLS_H
#define RELAY_LINK_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libwebsockets.h>
#include <openssl/ssl.h>

#include "relay/config.h"

struct link_tls {
    SSL *ssl;   /* NULL when no TLS runs (plain ws://, or not connected) */
    bool ready; /* the handshake is done */
};

/* The dialers' client context under mutual TLS: this node's certificate,
 * the cluster CA, TLS 1.2 or later, HTTP/1.1 by ALPN (as the cluster vhost's
 * server side). NULL without TLS settings, or when they cannot be loaded
 * (logged). */
SSL_CTX *link_tls_context_new(const struct relay_cluster_config *cluster);

/* Start a client session for host (sent as SNI unless it is an address).
 * 0, or -1 with nothing left allocated. */
int link_tls_start(struct link_tls *tls, SSL_CTX *context, const char *host);
/* Free the session, if any; the struct can be started again. */
void link_tls_end(struct link_tls *tls);

/* Ciphertext from the socket. 0, or -1 when it cannot be taken. */
int link_tls_feed(struct link_tls *tls, const uint8_t *data, size_t length);
/* Advance the handshake on what was fed: 1 when it is done (ready is set),
 * 0 when it waits for the peer, -1 with *error when it failed. */
int link_tls_handshake(struct link_tls *tls, const char **error);
/* Whether OpenSSL has ciphertext waiting for link_tls_flush. */
bool link_tls_wants_write(const struct link_tls *tls);
/* Write the waiting ciphertext to wsi. 0, or -1 when the socket failed. */
int link_tls_flush(struct link_tls *tls, struct lws *wsi);
/* Encrypt length bytes and write them, with anything waiting, to wsi. */
int link_tls_write(struct link_tls *tls, struct lws *wsi, const uint8_t *data, size_t length);

/* Takes decrypted bytes; a non-zero return, or *stop set, ends the read. */
typedef int (*link_tls_deliver)(void *context, const uint8_t *data, size_t length, bool *stop);
/* Decrypt everything that was fed and hand it to deliver, up to a batch at
 * a time. Returns deliver's non-zero result, 0 when all was read (or deliver
 * asked to stop), -1 when the peer closed TLS or TLS failed (logged, naming
 * peer). */
int link_tls_read(struct link_tls *tls, link_tls_deliver deliver, void *context, const char *peer);

#endif

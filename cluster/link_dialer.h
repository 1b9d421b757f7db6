/*
 * link_dialer.h - the dialer's side of a link connection: relayd's own
 * WebSocket client (and, under wss://, its own TLS client) on an lws raw
 * socket.
 *
 * link.c dials a peer node with a raw TCP connection and hands every event
 * of it here; this module turns the socket into a stream of link messages:
 * TLS (link_tls.c), the HTTP upgrade, reading frames (link_websocket.c parses
 * their headers) and joining fragments, answering pings, masking and writing
 * our messages, and the close frame. It calls back into link.c (link.h,
 * "used by link_dialer.c") to dispatch each whole message, to write the
 * link's queue and to run the handshake. The acceptor's side is lws's
 * WebSocket server, in link.c.
 *
 * lws 4.1.6's own client parses every received byte with a function call and
 * masks byte by byte, which made the dialer the bottleneck of every
 * cross-node stream. Here a received message is found by its header and
 * handed over in place, and masking goes eight bytes at a time.
 */
#ifndef RELAY_LINK_DIALER_H
#define RELAY_LINK_DIALER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libwebsockets.h>
#include <openssl/ssl.h>

#include "link_tls.h"
#include "link_websocket.h"
#include "relay/config.h"

struct link;

/* The WebSocket client state of one connection (reset when it connects). */
struct link_dialer_ws {
    bool request_sent;
    bool upgraded; /* the 101 answer was checked */
    char key[LINK_WEBSOCKET_KEY_LENGTH + 1];
    uint8_t header[LINK_WEBSOCKET_HEADER_MAX_LENGTH]; /* a frame header split across reads */
    size_t header_have;
    struct link_websocket_header frame; /* the frame being read */
    bool in_frame;
    uint64_t payload_left;
    bool in_message; /* a fragmented data message continues */
    uint8_t control[LINK_WEBSOCKET_CONTROL_MAX_LENGTH];
    size_t control_length;
    uint8_t pong[LINK_WEBSOCKET_CONTROL_MAX_LENGTH];
    size_t pong_length;
    bool pong_due;
    bool close_sent;
};

/* Part of every outbound link (struct link embeds it; zeroed is idle). */
struct link_dialer {
    struct link *link; /* whose connection this is */
    bool secure;       /* wss:// */
    struct link_tls tls;
    struct link_dialer_ws ws;
    unsigned char *message; /* the upgrade answer, then a message split across frames or reads */
    size_t message_length;
};

/* The dialers' TLS client context, from the cluster's TLS settings (none
 * without them: a wss:// peer then cannot be dialled). */
void link_dialer_setup(const struct relay_cluster_config *cluster);
void link_dialer_teardown(void);

/* The link is about to connect (each dial): whose, and whether TLS runs. */
void link_dialer_prepare(struct link_dialer *dialer, struct link *link, bool secure);
/* RAW_CONNECTED (after link.c reset the link), RAW_RX and RAW_WRITEABLE of
 * the dialer's raw connection; the value for lws (-1: close it). */
int link_dialer_callback(struct link_dialer *dialer, enum lws_callback_reasons reason, void *in,
                         size_t length);
/* Send one queued link message of length bytes at payload, which has LWS_PRE
 * bytes of headroom for the WebSocket header (the payload is masked in
 * place). Returns length, or -1. */
int link_dialer_write_message(struct link_dialer *dialer, uint8_t *payload, size_t length);
/* The connection is gone: end TLS and drop partial input (kept for a
 * redial). */
void link_dialer_disconnect(struct link_dialer *dialer);
/* The link is freed: release everything. */
void link_dialer_free(struct link_dialer *dialer);
/* The TLS session, for the peer certificate (NULL under ws://). */
SSL *link_dialer_ssl(const struct link_dialer *dialer);

#endif

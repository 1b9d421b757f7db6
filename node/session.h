/*
 * session.h - one client WebSocket connection and its place in a rendezvous.
 *
 * A session is the per-connection user data of the client protocol
 * (client_port.c hands lws events to the functions here). It is also a peer
 * endpoint (relay/peer.h): the matchmaker pairs it with another endpoint,
 * and frames flow between them through the peer operations.
 *
 * Lifecycle: awaiting_request -> pending -> paired -> closing -> closed. A
 * session can jump to closing from any state (bad input, partner gone,
 * timeouts, shutdown); closing means "flush what is queued (typically
 * NOTIFY_RENDEZVOUS_END), then send a close frame".
 */
#ifndef RELAY_SESSION_H
#define RELAY_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include <libwebsockets.h>

#include "relay/config.h"
#include "relay/metrics.h"
#include "relay/peer.h"
#include "deadline_queue.h"
#include "frame_queue.h"

enum session_state {
    SESSION_AWAITING_REQUEST,
    SESSION_PENDING,
    SESSION_PAIRED,
    SESSION_CLOSING,
};

struct session {
    /* Pointer-sized fields first, small ones last: a node holds one of
     * these per connection, so padding counts. */
    struct peer peer;
    struct lws *wsi;
    lws_dll2_t list;       /* relay_server.sessions */
    lws_dll2_t flush_link; /* on the list written before the loop sleeps */
    struct frame_queue queue;
    struct request_parser *parser; /* only while reading a message we must judge */
    size_t message_bytes;          /* of the message being received */
    struct deadline keepalive;     /* next ping, or the pong awaited */
    struct deadline pending;       /* pending timeout */
    const char *close_text;
    enum session_state state;
    enum close_reason close_reason;
    uint16_t close_code;
    bool close_reason_set;
    bool partner_paused; /* we told our partner to stop reading */
    bool input_paused;   /* our partner told us to stop reading */
    bool awaiting_pong;
    bool ping_due;
    bool refused; /* over max_connections: close with 1013 at first WRITEABLE */
    bool established;
    bool outgoing_message_open; /* the last queued piece did not end its message */
    bool close_received;        /* the client sent a close frame */
    bool write_failed;          /* a write outside WRITEABLE failed: close there */
};

/* The queues every session's deadlines live in (deadline_queue.h): started
 * with the context, stopped before it is destroyed. */
void session_timers_start(struct lws_context *context, const struct relay_config *config);
void session_timers_stop(void);

/* lws events, called by client_port.c. Functions returning int return what
 * the lws callback must return (-1 closes the connection). */
int session_open(struct session *session, struct lws *wsi);
int session_receive(struct session *session, const void *data, size_t length);
int session_writeable(struct session *session);
void session_pong(struct session *session);
void session_close_received(struct session *session);
void session_closed(struct session *session);

/* Write the sessions that got frames during this loop turn; the event loop
 * calls it just before it sleeps. */
void session_flush_writes(void);

/* The node is shutting down: END then close 1001. */
void session_shutdown(struct session *session);

#endif

/*
 * session.c - a client connection's life: request, pending, paired, closing.
 *
 * Receiving: lws delivers each message in chunks (LWS_CALLBACK_RECEIVE, at
 * most rx_buffer_bytes each) with first/final flags. Before pairing, chunks
 * go through the incremental request parser; after pairing they are handed
 * to the partner endpoint untouched, chunk by chunk, with their message flags,
 * so the relay never holds a whole large message and the partner sees the
 * same message (the same bytes, opcode and boundaries).
 *
 * Sending: everything for this client is queued as ready-made WebSocket
 * frames (frame_queue.c) and leaves a block of frames per lws_write, so a
 * burst of small frames costs one send(). A queue that was empty is written
 * by session_flush_writes() just before the event loop sleeps, as Redis
 * writes replies in beforeSleep: by then every input of this turn is queued,
 * and the common case - a notification, a round trip - goes out with one
 * send() and no POLLOUT round (which costs two epoll_ctl calls and a loop
 * turn). Only what the socket does not take at once waits for WRITEABLE,
 * which then writes the oldest block per callback.
 *
 * Backpressure: when this session's queue passes the high-water mark it asks
 * its partner to stop reading (peer_pause_input); when it drains below the
 * low-water mark it lets the partner read again. A client that never reads
 * therefore holds at most about high water + one receive chunk in the relay.
 *
 * Keepalive: a ping every ping_interval; no pong within ping_timeout closes
 * the connection (half-open TCP connections are reaped this way).
 */
#include <stdlib.h>
#include <string.h>

#include "relay/log.h"
#include "relay/matchmaker.h"
#include "relay/metrics.h"
#include "relay/protocol.h"
#include "server.h"
#include "session.h"

#define SESSION_CLOSE_NORMAL 1000
#define SESSION_CLOSE_GOING_AWAY 1001
#define SESSION_CLOSE_PROTOCOL_ERROR 1002
#define SESSION_CLOSE_UNSUPPORTED_DATA 1003
#define SESSION_CLOSE_INVALID_PAYLOAD 1007
#define SESSION_CLOSE_POLICY_VIOLATION 1008
#define SESSION_CLOSE_MESSAGE_TOO_BIG 1009
#define SESSION_CLOSE_INTERNAL_ERROR 1011
#define SESSION_CLOSE_TRY_AGAIN_LATER 1013

static const struct peer_ops session_peer_ops;

static struct session *session_of_peer(struct peer *peer)
{
    return lws_container_of(peer, struct session, peer);
}

static lws_usec_t session_seconds(int seconds)
{
    return (lws_usec_t)seconds * LWS_US_PER_SEC;
}

/* Keep the connection gauges equal to the number of sessions per state. */
static int64_t *session_state_gauge(enum session_state state)
{
    switch (state) {
    case SESSION_AWAITING_REQUEST:
        return &relay_metrics.connections_awaiting_request;
    case SESSION_PENDING:
        return &relay_metrics.connections_pending;
    case SESSION_PAIRED:
        return &relay_metrics.connections_paired;
    case SESSION_CLOSING:
        break;
    }
    return NULL;
}

static void session_set_state(struct session *session, enum session_state state)
{
    int64_t *gauge = session_state_gauge(session->state);
    if (gauge != NULL)
        (*gauge)--;
    session->state = state;
    gauge = session_state_gauge(state);
    if (gauge != NULL)
        (*gauge)++;
}

static void session_note_close(struct session *session, enum close_reason reason)
{
    if (session->close_reason_set)
        return;
    session->close_reason_set = true;
    session->close_reason = reason;
}

/* Close from inside this session's own lws callback: set the close frame and
 * have the callback return -1. */
static int session_fail(struct session *session, uint16_t code, const char *text,
                        enum close_reason reason)
{
    session_note_close(session, reason);
    log_debug("session %p: closing %u %s", (void *)session, code, text);
    lws_close_reason(session->wsi, (enum lws_close_status)code, (unsigned char *)text,
                     strlen(text));
    return -1;
}

/* Close from anywhere: flush the queue, then send the close frame from the
 * session's own WRITEABLE callback. */
static void session_close_after_flush(struct session *session, uint16_t code, const char *text,
                                      enum close_reason reason)
{
    if (session->state == SESSION_CLOSING)
        return;
    session_note_close(session, reason);
    session->close_code = code;
    session->close_text = text;
    deadline_cancel(&session->pending);
    if (session->input_paused) {
        /* Read again so the client's close reply is seen promptly. */
        session->input_paused = false;
        lws_rx_flow_control(session->wsi, 1 | LWS_RXFLOW_REASON_FLAG_PROCESS_NOW);
    }
    session_set_state(session, SESSION_CLOSING);
    lws_callback_on_writable(session->wsi);
}

/* Blocks one session may write before the loop sleeps: enough for what a
 * turn queues on a quiet connection, little enough that a busy one does not
 * delay the others (its WRITEABLE callbacks take turns with them). */
#define SESSION_FLUSH_BLOCKS_MAX 4

/* Sessions whose queue filled this loop turn, to be written before the
 * loop sleeps (session_flush_writes). */
static lws_dll2_owner_t session_flush_list;

/* Queue one frame. A queue that was empty gets written before the loop
 * sleeps; otherwise a write is already due: either this session is on the
 * flush list or a WRITEABLE request stands (every write that leaves frames
 * behind renews it). */
static int session_queue_frame(struct session *session, const void *data, size_t length,
                               unsigned flags)
{
    bool was_empty = frame_queue_is_empty(&session->queue);
    if (frame_queue_push(&session->queue, data, length, flags) != 0)
        return -1;
    if (was_empty && lws_dll2_is_detached(&session->flush_link))
        lws_dll2_add_tail(&session->flush_link, &session_flush_list);
    return 0;
}

static int session_queue_notification(struct session *session, enum notification_kind kind,
                                      const char *request_uuid)
{
    char json[NOTIFICATION_MAX_BYTES];
    size_t length = notification_build(json, sizeof(json), kind, session->peer.rid, request_uuid);
    if (length == 0 || session_queue_frame(session, json, length, FRAME_FIRST | FRAME_FINAL) != 0)
        return -1;
    relay_metrics.notifications_sent_total++;
    return 0;
}

/* Send END and close: the partner went away, or this peer is refused. */
static void session_end(struct session *session, uint16_t code, const char *text,
                        enum close_reason reason)
{
    if (session->state == SESSION_CLOSING)
        return;
    /* A partner that vanished mid-message leaves a fragmented message open
     * on this connection; a new message may only start after it is ended,
     * so end it with an empty final continuation. The client sees that
     * message truncated, then END. */
    if (session->outgoing_message_open) {
        if (session_queue_frame(session, "", 0, FRAME_FINAL) == 0)
            session->outgoing_message_open = false;
    }
    /* A session that never presented an id has nothing to end. */
    if (session->state != SESSION_AWAITING_REQUEST && !session->outgoing_message_open)
        session_queue_notification(session, NOTIFY_END, NULL);
    session_close_after_flush(session, code, text, reason);
}

/* Every session's keepalive is in one of two queues - waiting to send the
 * next ping, or waiting for the pong - and its pending timeout in a third. */
static struct {
    struct deadline_queue ping;
    struct deadline_queue pong;
    struct deadline_queue pending;
} session_timers;

static void session_on_ping_due(struct deadline *deadline, struct deadline_queue *queue)
{
    struct session *session = lws_container_of(deadline, struct session, keepalive);
    (void)queue;
    session->awaiting_pong = true;
    session->ping_due = true;
    lws_callback_on_writable(session->wsi);
    deadline_arm(&session_timers.pong, &session->keepalive);
}

static void session_on_pong_overdue(struct deadline *deadline, struct deadline_queue *queue)
{
    struct session *session = lws_container_of(deadline, struct session, keepalive);
    (void)queue;
    /* No pong within ping_timeout: the client or its network is gone.
     * Nothing can be said to a client that does not read; drop it. */
    session_note_close(session, CLOSE_PING_TIMEOUT);
    log_debug("session %p: ping timeout", (void *)session);
    lws_set_timeout(session->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_SYNC);
}

static void session_on_pending_timeout(struct deadline *deadline, struct deadline_queue *queue)
{
    struct session *session = lws_container_of(deadline, struct session, pending);
    (void)queue;
    if (session->state != SESSION_PENDING)
        return;
    relay_metrics.limits_hit_total[LIMIT_PENDING_TIMEOUT]++;
    matchmaker_leave(relay_server.matchmaker, &session->peer);
    session_end(session, SESSION_CLOSE_NORMAL, "pending timeout", CLOSE_PENDING_TIMEOUT);
}

void session_timers_start(struct lws_context *context, const struct relay_config *config)
{
    deadline_queue_init(&session_timers.ping, context,
                        session_seconds(config->ping_interval_seconds), session_on_ping_due);
    deadline_queue_init(&session_timers.pong, context,
                        session_seconds(config->ping_timeout_seconds), session_on_pong_overdue);
    deadline_queue_init(&session_timers.pending, context,
                        session_seconds(config->pending_timeout_seconds),
                        session_on_pending_timeout);
}

void session_timers_stop(void)
{
    deadline_queue_stop(&session_timers.ping);
    deadline_queue_stop(&session_timers.pong);
    deadline_queue_stop(&session_timers.pending);
}

int session_open(struct session *session, struct lws *wsi)
{
    memset(session, 0, sizeof(*session));
    session->wsi = wsi;
    session->peer.ops = &session_peer_ops;
    session->state = SESSION_AWAITING_REQUEST;
    session->established = true;
    relay_metrics.connections_awaiting_request++;
    relay_metrics.connections_accepted_total++;
    lws_dll2_add_tail(&session->list, &relay_server.sessions);

    if (relay_server.sessions.count > (uint32_t)relay_server.max_connections) {
        /* Refuse after the handshake so the client gets a close code
         * (1013: try again later) rather than a bare TCP reset. */
        session->refused = true;
        relay_metrics.connections_refused_total[REFUSE_MAX_CONNECTIONS]++;
        relay_metrics.limits_hit_total[LIMIT_MAX_CONNECTIONS]++;
        session_note_close(session, CLOSE_MAX_CONNECTIONS);
        lws_callback_on_writable(wsi);
        return 0;
    }
    if (relay_server.shutting_down) {
        session->refused = true;
        relay_metrics.connections_refused_total[REFUSE_SHUTTING_DOWN]++;
        session_note_close(session, CLOSE_SHUTDOWN);
        lws_callback_on_writable(wsi);
        return 0;
    }
    deadline_arm(&session_timers.ping, &session->keepalive);
    return 0;
}

static int session_accept_request(struct session *session, const struct rendezvous_request *request)
{
    const struct relay_config *config = relay_server.config;

    memcpy(session->peer.rid, request->rid, sizeof(session->peer.rid));
    memcpy(session->peer.request_uuid, request->request_uuid, sizeof(session->peer.request_uuid));
    session_set_state(session, SESSION_PENDING);

    switch (matchmaker_request(relay_server.matchmaker, &session->peer)) {
    case MATCH_PENDING:
        relay_metrics.rendezvous_total[RENDEZVOUS_PENDING]++;
        if (session_queue_notification(session, NOTIFY_NOT_READY, session->peer.request_uuid) != 0)
            return -1;
        if (config->pending_timeout_seconds > 0)
            deadline_arm(&session_timers.pending, &session->pending);
        return 0;
    case MATCH_PAIRED:
        /* notify_paired already moved both sessions to paired. */
        relay_metrics.rendezvous_total[RENDEZVOUS_PAIRED]++;
        return 0;
    case MATCH_REFUSED:
        relay_metrics.rendezvous_total[RENDEZVOUS_REFUSED]++;
        session_end(session, SESSION_CLOSE_NORMAL, "rendezvous id already paired",
                    CLOSE_THIRD_PEER);
        return 0;
    }
    return 0;
}

static uint16_t session_close_code_for(enum request_verdict verdict)
{
    return verdict == REQUEST_NOT_UTF8 ? SESSION_CLOSE_INVALID_PAYLOAD
                                       : SESSION_CLOSE_POLICY_VIOLATION;
}

/* Feed a chunk of a message that must be judged (the first message, or any
 * message while pending). Returns the parser once the message is complete,
 * NULL while more is to come. */
static struct request_parser *session_parse_chunk(struct session *session, const void *data,
                                                  size_t length, bool first, bool final)
{
    if (first || session->parser == NULL) {
        if (session->parser == NULL)
            session->parser = request_parser_new();
        else
            request_parser_reset(session->parser);
    }
    if (session->parser == NULL)
        return NULL;
    request_parser_feed(session->parser, data, length);
    return final ? session->parser : NULL;
}

static void session_drop_parser(struct session *session)
{
    request_parser_free(session->parser);
    session->parser = NULL;
}

static int session_receive_first(struct session *session, const void *data, size_t length,
                                 bool first, bool final)
{
    if (first && !lws_frame_is_binary(session->wsi))
        return session_fail(session, SESSION_CLOSE_UNSUPPORTED_DATA,
                            "first message must be a binary REQUEST_RENDEZVOUS",
                            CLOSE_TEXT_FIRST_FRAME);
    struct request_parser *parser = session_parse_chunk(session, data, length, first, final);
    if (session->parser == NULL)
        return session_fail(session, SESSION_CLOSE_INTERNAL_ERROR, "out of memory",
                            CLOSE_INTERNAL_ERROR);
    if (parser == NULL)
        return 0;

    struct rendezvous_request request;
    const char *reason = "invalid request";
    enum request_verdict verdict = request_parser_finish(parser, &request, &reason);
    session_drop_parser(session);
    if (verdict != REQUEST_VALID)
        return session_fail(session, session_close_code_for(verdict), reason, CLOSE_BAD_REQUEST);
    return session_accept_request(session, &request);
}

/* While pending, frames are dropped, but a second REQUEST_RENDEZVOUS is a
 * protocol error: it would otherwise silently re-target the connection. */
static int session_receive_pending(struct session *session, const void *data, size_t length,
                                   bool first, bool final)
{
    struct request_parser *parser = session_parse_chunk(session, data, length, first, final);
    if (parser == NULL)
        return 0;
    request_parser_finish(parser, NULL, NULL);
    bool second_request = request_parser_saw_rendezvous_name(parser);
    session_drop_parser(session);
    if (second_request)
        return session_fail(session, SESSION_CLOSE_POLICY_VIOLATION,
                            "second REQUEST_RENDEZVOUS while pending", CLOSE_SECOND_REQUEST);
    relay_metrics.frames_dropped_pending_total++;
    return 0;
}

static int session_forward(struct session *session, const void *data, size_t length, bool first,
                           bool final)
{
    struct peer *partner = session->peer.partner;
    if (partner == NULL)
        return 0;
    unsigned flags = (first ? PEER_FRAGMENT_FIRST : 0) | (final ? PEER_FRAGMENT_FINAL : 0) |
                     (lws_frame_is_binary(session->wsi) ? 0 : PEER_FRAGMENT_TEXT);
    if (peer_deliver(partner, data, length, flags) != 0)
        return session_fail(session, SESSION_CLOSE_INTERNAL_ERROR, "relay out of memory",
                            CLOSE_INTERNAL_ERROR);
    relay_metrics.bytes_forwarded_total += length;
    if (final)
        relay_metrics.frames_forwarded_total++;
    return 0;
}

int session_receive(struct session *session, const void *data, size_t length)
{
    bool first = lws_is_first_fragment(session->wsi) != 0;
    bool final = lws_is_final_fragment(session->wsi) != 0;

    if (session->refused || session->state == SESSION_CLOSING)
        return 0;
    if (first)
        session->message_bytes = 0;
    session->message_bytes += length;
    /* Count the rest of this frame too (its header announced the length):
     * an oversize single-frame message is refused before any of it is
     * forwarded. Only a message whose later fragments push it over the
     * limit has its first part delivered, truncated, before END. */
    if (session->message_bytes + lws_remaining_packet_payload(session->wsi) >
        relay_server.config->max_message_bytes) {
        relay_metrics.limits_hit_total[LIMIT_MAX_MESSAGE_BYTES]++;
        return session_fail(session, SESSION_CLOSE_MESSAGE_TOO_BIG, "message too large",
                            CLOSE_MESSAGE_TOO_LARGE);
    }
    switch (session->state) {
    case SESSION_AWAITING_REQUEST:
        return session_receive_first(session, data, length, first, final);
    case SESSION_PENDING:
        return session_receive_pending(session, data, length, first, final);
    case SESSION_PAIRED:
        return session_forward(session, data, length, first, final);
    case SESSION_CLOSING:
        break;
    }
    return 0;
}

static int session_write_close(struct session *session)
{
    const char *text = session->close_text != NULL ? session->close_text : "";
    lws_close_reason(session->wsi, (enum lws_close_status)session->close_code,
                     (unsigned char *)text, strlen(text));
    return -1;
}

/* Write the oldest block: raw bytes, as it holds whole frames already. What
 * the socket does not take now, lws keeps and sends before the next
 * WRITEABLE. Then let a paused partner read again once below low water. */
static int session_write_block(struct session *session)
{
    struct frame_block *block = frame_queue_pop(&session->queue);
    int written = lws_write(session->wsi, frame_block_data(block), block->used, LWS_WRITE_RAW);
    size_t expected = block->used;
    frame_block_free(block);
    if (written < (int)expected)
        return -1;

    if (session->partner_paused &&
        session->queue.bytes <= relay_server.config->send_queue_low_water) {
        session->partner_paused = false;
        if (session->peer.partner != NULL)
            peer_resume_input(session->peer.partner);
    }
    return 0;
}

/* Ask for WRITEABLE while anything is left to send (the close frame too). */
static void session_want_writeable(struct session *session)
{
    if (!frame_queue_is_empty(&session->queue) || session->state == SESSION_CLOSING)
        lws_callback_on_writable(session->wsi);
}

int session_writeable(struct session *session)
{
    if (session->write_failed)
        return -1;
    if (session->refused) {
        bool shutting_down = session->close_reason == CLOSE_SHUTDOWN;
        return session_fail(
            session, shutting_down ? SESSION_CLOSE_GOING_AWAY : SESSION_CLOSE_TRY_AGAIN_LATER,
            shutting_down ? "relay shutting down" : "too many connections", session->close_reason);
    }
    if (session->ping_due) {
        /* Pings jump the queue: a busy connection must still prove it is
         * alive. The payload must not be empty: lws 4.1.6 drops empty pongs
         * before the callback, so an empty ping could never be answered. */
        unsigned char ping[LWS_PRE + 4] = {0};
        memcpy(ping + LWS_PRE, "ping", 4);
        session->ping_due = false;
        if (lws_write(session->wsi, ping + LWS_PRE, 4, LWS_WRITE_PING) < 0)
            return -1;
        if (!frame_queue_is_empty(&session->queue) || session->state == SESSION_CLOSING)
            lws_callback_on_writable(session->wsi);
        return 0;
    }
    if (frame_queue_is_empty(&session->queue))
        return session->state == SESSION_CLOSING ? session_write_close(session) : 0;
    if (session_write_block(session) != 0)
        return -1;
    session_want_writeable(session);
    return 0;
}

/* Write every session that got frames this loop turn, before the loop
 * sleeps. Outside any lws callback, so a failed write cannot close the
 * connection here: it is remembered and the WRITEABLE callback it asks for
 * returns -1. A closing session is left to its WRITEABLE callback, which
 * owns the close frame, and so is one whose client sent a close: lws
 * answers that from its own WRITEABLE handling. */
void session_flush_writes(void)
{
    struct lws_dll2 *link;
    while ((link = lws_dll2_get_head(&session_flush_list)) != NULL) {
        struct session *session = lws_container_of(link, struct session, flush_link);
        lws_dll2_remove(link);
        if (session->state == SESSION_CLOSING || session->close_received) {
            session_want_writeable(session);
            continue;
        }
        /* A notification queued behind another one this turn sits in a
         * second block: write a few while the socket takes them whole. */
        for (int blocks = 0; blocks < SESSION_FLUSH_BLOCKS_MAX; blocks++) {
            if (frame_queue_is_empty(&session->queue) || lws_partial_buffered(session->wsi))
                break;
            if (session_write_block(session) != 0) {
                session->write_failed = true;
                lws_callback_on_writable(session->wsi);
                break;
            }
        }
        session_want_writeable(session);
    }
}

void session_pong(struct session *session)
{
    session->awaiting_pong = false;
    deadline_arm(&session_timers.ping, &session->keepalive);
}

/* lws answers the client's close from its own WRITEABLE handling; nothing of
 * ours may be written around it from outside (session_flush_writes). */
void session_close_received(struct session *session)
{
    session->close_received = true;
}

void session_closed(struct session *session)
{
    if (!session->established)
        return;
    session->established = false;
    deadline_cancel(&session->keepalive);
    deadline_cancel(&session->pending);
    /* Leave before anything else: the partner must hear END now. Safe in
     * every state: the matchmaker ignores a peer it does not hold. */
    if (session->peer.rid[0] != '\0')
        matchmaker_leave(relay_server.matchmaker, &session->peer);
    session_note_close(session, CLOSE_PEER_CLOSED);
    relay_metrics.connections_closed_total[session->close_reason]++;
    session_set_state(session, SESSION_CLOSING);
    session_drop_parser(session);
    frame_queue_clear(&session->queue);
    lws_dll2_remove(&session->flush_link);
    lws_dll2_remove(&session->list);
}

void session_shutdown(struct session *session)
{
    /* Leaving ends a paired partner too (with 1001, see session_peer_end). */
    if (session->peer.rid[0] != '\0')
        matchmaker_leave(relay_server.matchmaker, &session->peer);
    session_end(session, SESSION_CLOSE_GOING_AWAY, "relay shutting down", CLOSE_SHUTDOWN);
}

/* --- the session as a peer endpoint ------------------------------------ */

static int session_peer_deliver(struct peer *self, const void *data, size_t length, unsigned flags)
{
    struct session *session = session_of_peer(self);
    if (session->state == SESSION_CLOSING)
        return 0;
    unsigned frame_flags = ((flags & PEER_FRAGMENT_FIRST) ? FRAME_FIRST : 0) |
                           ((flags & PEER_FRAGMENT_FINAL) ? FRAME_FINAL : 0) |
                           ((flags & PEER_FRAGMENT_TEXT) ? FRAME_TEXT : 0);
    if (session_queue_frame(session, data, length, frame_flags) != 0)
        return -1;
    session->outgoing_message_open = (flags & PEER_FRAGMENT_FINAL) == 0;
    if (!session->partner_paused &&
        session->queue.bytes > relay_server.config->send_queue_high_water &&
        session->peer.partner != NULL) {
        session->partner_paused = true;
        relay_metrics.limits_hit_total[LIMIT_SEND_QUEUE_HIGH_WATER]++;
        peer_pause_input(session->peer.partner);
    }
    return 0;
}

static void session_peer_notify_paired(struct peer *self)
{
    struct session *session = session_of_peer(self);
    deadline_cancel(&session->pending);
    session_set_state(session, SESSION_PAIRED);
    if (session_queue_notification(session, NOTIFY_RENDEZVOUS, session->peer.request_uuid) != 0)
        session_close_after_flush(session, SESSION_CLOSE_INTERNAL_ERROR, "relay out of memory",
                                  CLOSE_INTERNAL_ERROR);
}

static void session_peer_end(struct peer *self)
{
    struct session *session = session_of_peer(self);
    if (relay_server.shutting_down)
        session_end(session, SESSION_CLOSE_GOING_AWAY, "relay shutting down", CLOSE_SHUTDOWN);
    else
        session_end(session, SESSION_CLOSE_NORMAL, "rendezvous ended", CLOSE_PARTNER_GONE);
}

static void session_peer_pause_input(struct peer *self)
{
    struct session *session = session_of_peer(self);
    if (session->input_paused || session->state == SESSION_CLOSING)
        return;
    session->input_paused = true;
    lws_rx_flow_control(session->wsi, 0 | LWS_RXFLOW_REASON_FLAG_PROCESS_NOW);
}

static void session_peer_resume_input(struct peer *self)
{
    struct session *session = session_of_peer(self);
    if (!session->input_paused)
        return;
    session->input_paused = false;
    lws_rx_flow_control(session->wsi, 1 | LWS_RXFLOW_REASON_FLAG_PROCESS_NOW);
}

static const struct peer_ops session_peer_ops = {
    .deliver = session_peer_deliver,
    .notify_paired = session_peer_notify_paired,
    .end = session_peer_end,
    .pause_input = session_peer_pause_input,
    .resume_input = session_peer_resume_input,
};

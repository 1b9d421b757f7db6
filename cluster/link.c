/*
 * link.c - authenticated WebSocket links between cluster nodes.
 *
 * Links follow the "accept both" rule of cluster/link-protocol.md: a node
 * dials an owner when it must open a stream for an id that node owns, and
 * only the dialer opens streams on its link. A pair of nodes may thus hold
 * two links, one per direction, and no dial race needs settling.
 *
 * Life of a link: dialling (name resolved off the loop, then a TCP/TLS
 * connect), the WebSocket upgrade, the handshake (HELLO / AUTH / AUTH_OK,
 * plus the peer certificate under mutual TLS), ready, closed. Nothing but
 * handshake frames is accepted before ready: anything else closes the link
 * and counts an auth failure. A ready link is kept alive with PING every
 * link.ping_interval and closed after link.timeout without any frame from
 * the peer. A dialled link that drops is redialled with exponential backoff
 * and jitter; streams on a dropped link end (their clients get
 * NOTIFY_RENDEZVOUS_END), streams still waiting for an owner's answer are
 * reported failed so the matchmaker asks the directory again.
 *
 * Sending: frames are appended to the tail message of a per-link queue, so
 * everything queued between two WRITEABLE callbacks leaves as one WebSocket
 * message (a batch, at most LINK_BATCH_MAX_LENGTH bytes) with one write: a
 * busy link costs a poll turn and a send per batch, not per frame, and no
 * allocation per frame. The queue only ever holds credited DATA and small
 * control frames, so its size is bounded by the streams' windows.
 *
 * The acceptor's side of the WebSocket is lws's server, handled here. The
 * dialer's side is our own client on an lws raw socket (link_dialer.c, with
 * link_websocket.c's codec and link_tls.c under wss://): this file dials,
 * keeps the link's bookkeeping for its raw connection and hands the
 * connection's events over; the dialer hands back whole messages
 * (link_dispatch) and writes the queue (link_writeable).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "link.h"
#include "link_auth.h"
#include "link_dialer.h"
#include "link_frame.h"
#include "relay/log.h"
#include "relay/metrics.h"
#include "resolver.h"

#define LINK_STREAM_BUCKETS 256
#define LINK_HANDSHAKE_TIMEOUT_US (5 * LWS_US_PER_SEC)
#define LINK_REDIAL_MIN_US (200 * 1000)
#define LINK_REDIAL_MAX_US (10 * LWS_US_PER_SEC)
#define LINK_REDIAL_ATTEMPTS 8

enum link_state {
    LINK_DIALING,
    LINK_HANDSHAKE,
    LINK_READY,
    LINK_CLOSED,
};

struct link_stream_slot {
    struct link_stream_slot *next;
    struct link_stream *stream;
    uint32_t id;
};

/* One outgoing WebSocket message: frames appended back to back after
 * LWS_PRE bytes of headroom, where lws (acceptor) or link_dialer.c (dialer)
 * puts the WebSocket header. */
struct link_message {
    struct link_message *next;
    size_t length;          /* message bytes after the headroom */
    size_t capacity;        /* room after the headroom */
    size_t last_frame;      /* offset of the last frame, which gets MORE when one follows */
    unsigned char buffer[]; /* LWS_PRE headroom, then the message */
};

/* Batch buffers kept for reuse: allocating and freeing 64 KiB per message
 * made glibc trim and regrow its heap (brk, page faults) under load. */
#define LINK_SPARE_MESSAGES 4
/* Messages written in one WRITEABLE callback while the socket takes them:
 * a busy link then costs fewer poll turns, and other connections still get
 * their turn. */
#define LINK_WRITES_PER_TURN 4

struct link_out {
    struct link_message *head;
    struct link_message *tail;
    struct link_message *spare[LINK_SPARE_MESSAGES];
    unsigned spare_count;
    size_t bytes;
};

struct link {
    struct link *next; /* every link of this node */
    struct lws *wsi;
    bool outbound;
    enum link_state state;
    struct link_auth_peer peer;                         /* who is at the other end (once known) */
    char expected_node_id[LINK_NODE_ID_MAX_LENGTH + 1]; /* outbound: whom we dial */
    char url[ADVERTISE_URL_MAX_LENGTH + 1];
    union {
        struct link_auth_server server;
        struct link_auth_client client;
    } auth;
    X509 *peer_certificate; /* mutual TLS: verified chain, name checked after AUTH */
    struct link_out out;
    bool writeable_requested;
    bool closing;          /* close once the queue is written; take no more frames */
    uint16_t close_status; /* WebSocket close status when we close */
    char close_reason[LINK_GOAWAY_TEXT_MAX_LENGTH + 1];
    struct link_dialer dialer; /* outbound links only: the connection's WebSocket and TLS */
    struct link_stream_slot *streams[LINK_STREAM_BUCKETS];
    unsigned stream_count;
    uint32_t next_stream_id;
    lws_sorted_usec_list_t keepalive_timer;
    lws_sorted_usec_list_t handshake_timer;
    lws_sorted_usec_list_t dial_timer;
    lws_usec_t last_received;
    struct resolver_request *resolving;
    int dial_failures;
    bool was_ready;
    bool connecting;    /* inside lws_client_connect_via_info */
    bool connect_error; /* ... which reported an error before returning */
    uint64_t bytes_sent;
    uint64_t bytes_received;
    unsigned char *message; /* inbound: reassembly of a message split across receives */
    size_t message_length;
};

/* Per-connection user data of accepted links: the link outlives nothing
 * here, but lws only holds a pointer to it. Dialled links are found through
 * the connection's opaque user data instead. */
struct link_binding {
    struct link *link;
};

static struct {
    const struct relay_config *config;
    const struct cluster_identity *self;
    struct lws_vhost *vhost;
    struct lws_context *context;
    struct matchmaker *matchmaker;
    struct link *links;
    const uint8_t *secret; /* owned by cluster_node.c, any length */
    size_t secret_length;
    bool have_secret;
    bool stopping;
} links;

const struct relay_config *link_config(void)
{
    return links.config;
}

struct matchmaker *link_matchmaker(void)
{
    return links.matchmaker;
}

/* Bound of a DATA payload from the peer: one client receive chunk plus a
 * window (a sender never sends more than its credit). */
static size_t link_max_data(void)
{
    return links.config->rx_buffer_bytes + links.config->cluster.link_stream_window_bytes;
}

/* Bound of a received message: a batch, or one frame of the largest size. */
size_t link_max_message(void)
{
    size_t single = LINK_FRAME_HEADER_LENGTH + link_max_data();
    return single > LINK_BATCH_MAX_LENGTH ? single : LINK_BATCH_MAX_LENGTH;
}

static unsigned char *link_message_data(struct link_message *message)
{
    return message->buffer + LWS_PRE;
}

/* --- stream table --------------------------------------------------------- */

static struct link_stream *link_find_stream(struct link *link, uint32_t id)
{
    for (struct link_stream_slot *slot = link->streams[id % LINK_STREAM_BUCKETS]; slot != NULL;
         slot = slot->next)
        if (slot->id == id)
            return slot->stream;
    return NULL;
}

static int link_add_stream(struct link *link, struct link_stream *stream)
{
    struct link_stream_slot *slot = malloc(sizeof(*slot));
    if (slot == NULL)
        return -1;
    uint32_t id = link_stream_id(stream);
    slot->id = id;
    slot->stream = stream;
    slot->next = link->streams[id % LINK_STREAM_BUCKETS];
    link->streams[id % LINK_STREAM_BUCKETS] = slot;
    link->stream_count++;
    return 0;
}

void link_forget_stream(struct link *link, struct link_stream *stream)
{
    uint32_t id = link_stream_id(stream);
    struct link_stream_slot **at = &link->streams[id % LINK_STREAM_BUCKETS];
    while (*at != NULL && (*at)->stream != stream)
        at = &(*at)->next;
    if (*at == NULL)
        return;
    struct link_stream_slot *slot = *at;
    *at = slot->next;
    free(slot);
    link->stream_count--;
}

/* Detach every stream, then tell each the link is gone (which may free it). */
static void link_end_streams(struct link *link)
{
    for (int bucket = 0; bucket < LINK_STREAM_BUCKETS; bucket++) {
        while (link->streams[bucket] != NULL) {
            struct link_stream *stream = link->streams[bucket]->stream;
            link_forget_stream(link, stream);
            link_stream_on_closed(stream);
        }
    }
}

/* --- sending ---------------------------------------------------------------- */

/* A message with room for needed bytes: a spare batch buffer when it fits,
 * else a new one (a single frame larger than a batch gets its own). */
static struct link_message *link_message_new(struct link *link, size_t needed)
{
    size_t capacity = needed > LINK_BATCH_MAX_LENGTH ? needed : LINK_BATCH_MAX_LENGTH;
    struct link_message *message = NULL;

    if (capacity == LINK_BATCH_MAX_LENGTH && link->out.spare_count > 0) {
        message = link->out.spare[--link->out.spare_count];
    } else {
        message = malloc(sizeof(*message) + LWS_PRE + capacity);
        if (message == NULL)
            return NULL;
        message->capacity = capacity;
    }
    message->next = NULL;
    message->length = 0;
    message->last_frame = 0;
    return message;
}

/* Written: keep a few batch buffers for the next messages, free the rest. */
static void link_message_release(struct link *link, struct link_message *message)
{
    if (link->out.spare_count < LINK_SPARE_MESSAGES && message->capacity == LINK_BATCH_MAX_LENGTH)
        link->out.spare[link->out.spare_count++] = message;
    else
        free(message);
}

static void link_out_clear(struct link *link)
{
    while (link->out.head != NULL) {
        struct link_message *message = link->out.head;
        link->out.head = message->next;
        free(message);
    }
    link->out.tail = NULL;
    link->out.bytes = 0;
    while (link->out.spare_count > 0)
        free(link->out.spare[--link->out.spare_count]);
}

static struct link_message *link_out_pop(struct link *link)
{
    struct link_message *message = link->out.head;
    if (message == NULL)
        return NULL;
    link->out.head = message->next;
    if (link->out.head == NULL)
        link->out.tail = NULL;
    link->out.bytes -= message->length;
    return message;
}

/* Room for a frame of length bytes at the end of the queue: in the tail
 * message while the batch stays within LINK_BATCH_MAX_LENGTH (the frame
 * before it then gets MORE and its length), else in a new message. */
static uint8_t *link_out_reserve(struct link *link, size_t length)
{
    struct link_message *tail = link->out.tail;
    if (tail == NULL || tail->length + length > LINK_BATCH_MAX_LENGTH ||
        link_frame_set_more(link_message_data(tail) + tail->last_frame,
                            tail->length - tail->last_frame - LINK_FRAME_HEADER_LENGTH) != 0) {
        tail = link_message_new(link, length);
        if (tail == NULL)
            return NULL;
        if (link->out.tail != NULL)
            link->out.tail->next = tail;
        else
            link->out.head = tail;
        link->out.tail = tail;
    }
    tail->last_frame = tail->length;
    tail->length += length;
    link->out.bytes += length;
    return link_message_data(tail) + tail->last_frame;
}

void link_request_writeable(struct link *link)
{
    if (link->writeable_requested || link->wsi == NULL)
        return;
    link->writeable_requested = true;
    lws_callback_on_writable(link->wsi);
}

/* header is a whole frame header as link_frame_write_header wrote it (MORE
 * clear, no length); data follows it in the same frame. */
static int link_queue(struct link *link, const uint8_t *header, size_t header_length,
                      const void *data, size_t length)
{
    if (link->wsi == NULL || link->state == LINK_CLOSED || link->closing)
        return -1;
    uint8_t *frame = link_out_reserve(link, header_length + length);
    if (frame == NULL)
        return -1;
    memcpy(frame, header, header_length);
    if (length > 0)
        memcpy(frame + header_length, data, length);
    link_request_writeable(link);
    return 0;
}

int link_send_frame(struct link *link, const uint8_t *frame, size_t length)
{
    return link_queue(link, frame, length, NULL, 0);
}

int link_send_data(struct link *link, uint32_t stream_id, unsigned flags, const void *data,
                   size_t length)
{
    uint8_t header[LINK_FRAME_HEADER_LENGTH];
    unsigned wire = ((flags & PEER_FRAGMENT_FIRST) ? LINK_DATA_FIRST : 0) |
                    ((flags & PEER_FRAGMENT_FINAL) ? LINK_DATA_FINAL : 0) |
                    ((flags & PEER_FRAGMENT_TEXT) ? LINK_DATA_TEXT : 0);
    link_frame_write_header(header, LINK_FRAME_DATA, (uint8_t)wire, stream_id);
    return link_queue(link, header, sizeof(header), data, length);
}

static void link_send_goaway(struct link *link, uint16_t code, const char *text)
{
    uint8_t frame[LINK_FRAME_HEADER_LENGTH + 2 + LINK_GOAWAY_TEXT_MAX_LENGTH];
    size_t length = link_frame_encode_goaway(frame, code, text);
    if (length > 0)
        link_send_frame(link, frame, length);
}

/* The WebSocket close status and reason we close with: lws's server sends
 * them itself when the callback returns -1; the dialer writes its own close
 * frame (link_dialer.c). */
void link_set_close(struct link *link, uint16_t status, const char *why)
{
    link->close_status = status;
    snprintf(link->close_reason, sizeof(link->close_reason), "%s", why);
    if (!link->outbound && link->wsi != NULL)
        lws_close_reason(link->wsi, (enum lws_close_status)status,
                         (unsigned char *)link->close_reason, strlen(link->close_reason));
}

/* Close once what is queued (a GOAWAY) is written; nothing more is queued
 * and nothing more is read meanwhile. */
static void link_close_after_flush(struct link *link, uint16_t status, const char *why)
{
    link_set_close(link, status, why);
    link->closing = true;
    link_request_writeable(link);
}

/* A link-level protocol error on a ready link (section 9): GOAWAY (1), then
 * close with 1002. Returns 0: the callback carries on until the GOAWAY is
 * out, and input is ignored meanwhile. */
static int link_protocol_error(struct link *link, const char *why)
{
    log_warn("link %s %s: protocol error: %s", link->outbound ? "to" : "from", link->peer.node_id,
             why);
    link_send_goaway(link, LINK_CLOSE_PROTOCOL_ERROR, why);
    link_close_after_flush(link, LWS_CLOSE_STATUS_PROTOCOL_ERR, why);
    return 0;
}

static int link_write_message(struct link *link)
{
    struct link_message *message = link_out_pop(link);
    size_t length = message->length;
    int written = link->outbound
                      ? link_dialer_write_message(&link->dialer, link_message_data(message), length)
                      : lws_write(link->wsi, link_message_data(message), length, LWS_WRITE_BINARY);
    link_message_release(link, message);
    if (written < (int)length)
        return -1;
    link->bytes_sent += length;
    return 0;
}

/* Write queued messages, one per lws_write, a few per turn while the socket
 * takes them; -1 (close) once a closing link is drained. */
int link_writeable(struct link *link)
{
    link->writeable_requested = false;
    if (link->out.head == NULL)
        return link->closing ? -1 : 0;
    for (int turn = 0; turn < LINK_WRITES_PER_TURN; turn++) {
        if (link_write_message(link) != 0)
            return -1;
        if (link->out.head == NULL || lws_send_pipe_choked(link->wsi))
            break;
    }
    if (link->out.head != NULL || link->closing)
        link_request_writeable(link);
    return 0;
}

/* --- registry ------------------------------------------------------------ */

static struct link *link_new(bool outbound)
{
    struct link *link = calloc(1, sizeof(*link));
    if (link == NULL)
        return NULL;
    link->outbound = outbound;
    link->next_stream_id = 1;
    link->next = links.links;
    links.links = link;
    return link;
}

static void link_unregister(struct link *link)
{
    for (struct link **at = &links.links; *at != NULL; at = &(*at)->next)
        if (*at == link) {
            *at = link->next;
            return;
        }
}

static void link_free(struct link *link)
{
    link_unregister(link);
    lws_sul_cancel(&link->keepalive_timer);
    lws_sul_cancel(&link->handshake_timer);
    lws_sul_cancel(&link->dial_timer);
    resolver_cancel(link->resolving);
    if (link->outbound)
        link_auth_client_clear(&link->auth.client);
    else
        link_auth_server_clear(&link->auth.server);
    X509_free(link->peer_certificate);
    link_out_clear(link);
    link_dialer_free(&link->dialer);
    free(link->message);
    free(link);
}

static struct link *link_find_outbound(const char *node_id)
{
    for (struct link *link = links.links; link != NULL; link = link->next)
        if (link->outbound && link->state != LINK_CLOSED && !link->closing &&
            strcmp(link->expected_node_id, node_id) == 0)
            return link;
    return NULL;
}

/* --- dialling --------------------------------------------------------------- */

bool link_parse_url(const struct link *link, char host[LINK_HOST_MAX_LENGTH], int *port, bool *tls)
{
    char url[ADVERTISE_URL_MAX_LENGTH + 1];
    const char *protocol, *parsed_host, *path;
    snprintf(url, sizeof(url), "%s", link->url);
    if (lws_parse_uri(url, &protocol, &parsed_host, port, &path) != 0)
        return false;
    snprintf(host, LINK_HOST_MAX_LENGTH, "%s", parsed_host);
    *tls = strcmp(protocol, "wss") == 0;
    return true;
}

static void link_dial(struct link *link);

static void link_on_dial_timer(lws_sorted_usec_list_t *sul)
{
    link_dial(lws_container_of(sul, struct link, dial_timer));
}

/* Exponential backoff with jitter: attempt n waits min * 2^n, capped, times a
 * random factor in [0.5, 1.5) so nodes that lost the same peer do not all
 * redial in the same instant. */
static void link_schedule_redial(struct link *link)
{
    lws_usec_t delay = LINK_REDIAL_MIN_US << (link->dial_failures < 6 ? link->dial_failures : 6);
    if (delay > LINK_REDIAL_MAX_US)
        delay = LINK_REDIAL_MAX_US;
    unsigned char random_byte = 128;
    RAND_bytes(&random_byte, 1);
    delay = delay / 2 + (delay * random_byte) / 256;
    link->state = LINK_DIALING;
    lws_sul_schedule(links.context, 0, &link->dial_timer, link_on_dial_timer, delay);
}

/* A dial or a link failed: streams waiting for the owner's answer are told
 * (the matchmaker will ask the directory again), paired streams end, and
 * the link is redialled a bounded number of times. */
static void link_dial_failed(struct link *link, const char *why)
{
    log_warn("link to %s (%s): %s", link->expected_node_id, link->url, why);
    link->wsi = NULL;
    link->dial_failures++;
    link_end_streams(link);
    link_out_clear(link);
    link_dialer_disconnect(&link->dialer);
    link->closing = false;
    link->writeable_requested = false;
    if (links.stopping || (!link->was_ready && link->dial_failures >= LINK_REDIAL_ATTEMPTS) ||
        link->dial_failures >= 2 * LINK_REDIAL_ATTEMPTS) {
        link->state = LINK_CLOSED;
        link_free(link);
        return;
    }
    link_schedule_redial(link);
}

/* A raw TCP connection: the WebSocket (and TLS) on it is ours
 * (link_dialer.c). */
static void link_connect_address(struct link *link, const char *address)
{
    char host[LINK_HOST_MAX_LENGTH];
    int port;
    bool tls;
    if (!link_parse_url(link, host, &port, &tls)) {
        link_dial_failed(link, "bad advertise URL");
        return;
    }
    struct lws_client_connect_info info;
    memset(&info, 0, sizeof(info));
    info.context = links.context;
    info.vhost = links.vhost;
    info.address = address;
    info.port = port;
    info.method = "RAW";
    info.host = host;
    info.local_protocol_name = LINK_SUBPROTOCOL;
    info.opaque_user_data = link;
    info.pwsi = &link->wsi;
    /* Under wss:// the TLS is ours too (link_tls.c): the peer's identity
     * is its node id, checked against its certificate after HELLO, so no
     * host name is checked (the advertise host may be an address). */
    link_dialer_prepare(&link->dialer, link, tls);
    link->state = LINK_DIALING;
    /* lws may report a connection error from inside the connect call;
     * handle it only once the call has returned (the handler may free the
     * link). */
    link->connecting = true;
    link->connect_error = false;
    struct lws *wsi = lws_client_connect_via_info(&info);
    link->connecting = false;
    if (wsi == NULL || link->connect_error) {
        link->wsi = NULL;
        link_dial_failed(link, "connect failed");
    }
}

static void link_on_resolved(void *context, int status, const char *address)
{
    struct link *link = context;
    link->resolving = NULL;
    if (status != 0) {
        link_dial_failed(link, address);
        return;
    }
    link_connect_address(link, address);
}

static void link_dial(struct link *link)
{
    char host[LINK_HOST_MAX_LENGTH];
    int port;
    bool tls;
    if (!link_parse_url(link, host, &port, &tls)) {
        link_dial_failed(link, "bad advertise URL");
        return;
    }
    link->state = LINK_DIALING;
    resolver_lookup(&link->resolving, links.context, host, link_on_resolved, link);
}

struct peer *link_open_stream(void *context, struct peer *waiting,
                              const struct directory_owner *owner)
{
    if (links.stopping)
        return NULL;
    struct link *link = link_find_outbound(owner->node_id);
    if (link == NULL) {
        link = link_new(true);
        if (link == NULL)
            return NULL;
        snprintf(link->expected_node_id, sizeof(link->expected_node_id), "%s", owner->node_id);
        snprintf(link->url, sizeof(link->url), "%s", owner->advertise_url);
        link_dial(link);
        /* The dial may have failed at once (and freed the link). */
        link = link_find_outbound(owner->node_id);
        if (link == NULL)
            return NULL;
    }
    struct link_stream *stream =
        link_stream_new(link, link->next_stream_id, waiting->rid, waiting->request_uuid, true);
    if (stream == NULL)
        return NULL;
    if (link_add_stream(link, stream) != 0) {
        link_forget_stream(link, stream);
        return NULL;
    }
    link->next_stream_id += 1;
    if (link->next_stream_id == 0)
        link->next_stream_id = 1;
    if (link->state == LINK_READY)
        link_stream_send_open(stream);
    return link_stream_peer(stream);
}

/* --- handshake ------------------------------------------------------------ */

static void link_count_auth_failure(enum link_auth_failure failure)
{
    relay_metrics.cluster.link_auth_failures_total[failure]++;
}

/* Refuse the link: nothing of it is kept. Returns -1 for the callback. */
static int link_refuse(struct link *link, enum link_auth_failure failure, const char *why)
{
    link_count_auth_failure(failure);
    log_warn("link %s %s refused: %s", link->outbound ? "to" : "from",
             link->peer.node_id[0] ? link->peer.node_id : "(unknown node)", why);
    link_set_close(link, LWS_CLOSE_STATUS_POLICY_VIOLATION, why);
    return -1;
}

static void link_on_handshake_timeout(lws_sorted_usec_list_t *sul)
{
    struct link *link = lws_container_of(sul, struct link, handshake_timer);
    if (link->state != LINK_HANDSHAKE || link->wsi == NULL)
        return;
    link_count_auth_failure(LINK_AUTH_FAILURE_TIMEOUT);
    log_warn("link handshake timed out");
    lws_set_timeout(link->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_SYNC);
}

static void link_on_keepalive(lws_sorted_usec_list_t *sul)
{
    struct link *link = lws_container_of(sul, struct link, keepalive_timer);
    const struct relay_cluster_config *cluster = &links.config->cluster;
    if (link->wsi == NULL || link->state != LINK_READY)
        return;
    if (lws_now_usecs() - link->last_received >
        (lws_usec_t)cluster->link_timeout_seconds * LWS_US_PER_SEC) {
        log_warn("link %s %s: no frame for %d s, closing", link->outbound ? "to" : "from",
                 link->peer.node_id, cluster->link_timeout_seconds);
        lws_set_timeout(link->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_SYNC);
        return;
    }
    uint8_t frame[LINK_FRAME_HEADER_LENGTH + 8];
    size_t length = link_frame_encode_ping(frame, (uint64_t)lws_now_usecs());
    link_send_frame(link, frame, length);
    lws_sul_schedule(links.context, 0, &link->keepalive_timer, link_on_keepalive,
                     (lws_usec_t)cluster->link_ping_interval_seconds * LWS_US_PER_SEC);
}

static void link_become_ready(struct link *link)
{
    link->state = LINK_READY;
    link->was_ready = true;
    link->dial_failures = 0;
    lws_sul_cancel(&link->handshake_timer);
    lws_sul_schedule(links.context, 0, &link->keepalive_timer, link_on_keepalive,
                     (lws_usec_t)links.config->cluster.link_ping_interval_seconds * LWS_US_PER_SEC);
    log_info("link %s %s ready", link->outbound ? "to" : "from", link->peer.node_id);
    if (!link->outbound)
        return;
    for (int bucket = 0; bucket < LINK_STREAM_BUCKETS; bucket++)
        for (struct link_stream_slot *slot = link->streams[bucket]; slot != NULL; slot = slot->next)
            link_stream_send_open(slot->stream);
}

/* Under mutual TLS, TLS has verified the chain against the cluster CA (or
 * recorded why not: we let the handshake finish so the failure is counted
 * and logged here rather than lost inside OpenSSL). */
static int link_take_certificate(struct link *link)
{
    if (links.config->cluster.tls_ca_file == NULL)
        return 0;
    SSL *ssl = link->outbound ? link_dialer_ssl(&link->dialer) : lws_get_ssl(link->wsi);
    X509 *certificate = ssl != NULL ? SSL_get1_peer_certificate(ssl) : NULL;
    if (certificate == NULL)
        return link_refuse(link, LINK_AUTH_FAILURE_BAD_CERTIFICATE, "no certificate");
    long verify = SSL_get_verify_result(ssl);
    if (verify != X509_V_OK) {
        X509_free(certificate);
        return link_refuse(link, LINK_AUTH_FAILURE_BAD_CERTIFICATE,
                           X509_verify_cert_error_string(verify));
    }
    X509_free(link->peer_certificate); /* a redialled link's previous peer */
    link->peer_certificate = certificate;
    return 0;
}

static int link_check_certificate_name(struct link *link)
{
    if (link->peer_certificate == NULL ||
        link_auth_certificate_names_node(link->peer_certificate, link->peer.node_id))
        return 0;
    return link_refuse(link, LINK_AUTH_FAILURE_BAD_CERTIFICATE, "certificate names another node");
}

static int link_start_server_handshake(struct link *link)
{
    uint8_t hello[LINK_FRAME_CONTROL_MAX_LENGTH];
    size_t length = 0;
    link->state = LINK_HANDSHAKE;
    if (link_take_certificate(link) != 0)
        return -1;
    if (link_auth_server_init(&link->auth.server, links.self->node_id, links.self->epoch,
                              links.have_secret ? links.secret : NULL, links.secret_length, hello,
                              &length) != 0)
        return link_refuse(link, LINK_AUTH_FAILURE_PROTOCOL, "handshake setup failed");
    lws_sul_schedule(links.context, 0, &link->handshake_timer, link_on_handshake_timeout,
                     LINK_HANDSHAKE_TIMEOUT_US);
    return link_send_frame(link, hello, length);
}

static enum link_auth_failure link_failure_of(enum link_auth_verdict verdict)
{
    return verdict == LINK_AUTH_BAD_SECRET ? LINK_AUTH_FAILURE_BAD_SECRET
                                           : LINK_AUTH_FAILURE_PROTOCOL;
}

static int link_on_auth(struct link *link, const struct link_frame *frame)
{
    uint8_t auth_ok[LINK_FRAME_CONTROL_MAX_LENGTH];
    size_t length = 0;
    enum link_auth_verdict verdict = link_auth_server_on_auth(
        &link->auth.server, frame->payload, frame->length, &link->peer, auth_ok, &length);
    if (verdict != LINK_AUTH_OK)
        return link_refuse(link, link_failure_of(verdict), link_auth_verdict_name(verdict));
    if (link_check_certificate_name(link) != 0)
        return -1;
    link_send_frame(link, auth_ok, length);
    link_become_ready(link);
    return 0;
}

int link_start_client_handshake(struct link *link)
{
    link->state = LINK_HANDSHAKE;
    if (link_take_certificate(link) != 0)
        return -1;
    if (link_auth_client_init(&link->auth.client, links.self->node_id, links.self->epoch,
                              links.have_secret ? links.secret : NULL, links.secret_length,
                              link->expected_node_id) != 0)
        return link_refuse(link, LINK_AUTH_FAILURE_PROTOCOL, "handshake setup failed");
    lws_sul_schedule(links.context, 0, &link->handshake_timer, link_on_handshake_timeout,
                     LINK_HANDSHAKE_TIMEOUT_US);
    return 0;
}

static int link_on_hello(struct link *link, const struct link_frame *frame)
{
    uint8_t auth[LINK_FRAME_CONTROL_MAX_LENGTH];
    size_t length = 0;
    enum link_auth_verdict verdict =
        link_auth_client_on_hello(&link->auth.client, frame->payload, frame->length, auth, &length);
    if (verdict != LINK_AUTH_OK)
        return link_refuse(link, link_failure_of(verdict), link_auth_verdict_name(verdict));
    return link_send_frame(link, auth, length);
}

static int link_on_auth_ok(struct link *link, const struct link_frame *frame)
{
    enum link_auth_verdict verdict =
        link_auth_client_on_auth_ok(&link->auth.client, frame->payload, frame->length, &link->peer);
    if (verdict != LINK_AUTH_OK)
        return link_refuse(link, link_failure_of(verdict), link_auth_verdict_name(verdict));
    if (link_check_certificate_name(link) != 0)
        return -1;
    link_become_ready(link);
    return 0;
}

/* --- frames ------------------------------------------------------------------ */

static bool link_ensure_message_buffer(struct link *link)
{
    if (link->message == NULL)
        link->message = malloc(link_max_message());
    return link->message != NULL;
}

/* -1 only for an OPEN the peer must not send (a stream id in use). */
static int link_on_open(struct link *link, const struct link_frame *frame)
{
    char rid[RID_HEX_LENGTH + 1], request_uuid[UUID_TEXT_LENGTH + 1];
    uint8_t answer[LINK_FRAME_HEADER_LENGTH];
    if (link_frame_decode_open(frame, rid, request_uuid) != 0 ||
        link_find_stream(link, frame->stream_id) != NULL)
        return -1;
    struct link_stream *stream = link_stream_new(link, frame->stream_id, rid, request_uuid, false);
    if (stream == NULL || link_add_stream(link, stream) != 0) {
        if (stream != NULL)
            peer_end(link_stream_peer(stream));
        size_t length =
            link_frame_encode_close(answer, frame->stream_id, LINK_CLOSE_INTERNAL_ERROR);
        link_send_frame(link, answer, length);
        return 0;
    }
    enum match_outcome outcome =
        matchmaker_accept_remote(links.matchmaker, link_stream_peer(stream));
    if (outcome == MATCH_PAIRED)
        return 0; /* the stream's notify_paired sent PAIRED */
    uint8_t type = outcome == MATCH_REFUSED ? LINK_FRAME_BUSY : LINK_FRAME_NOT_FOUND;
    link_forget_stream(link, stream);
    /* Not kept: free it without a CLOSE (the answer ends it). */
    struct link_stream *unused = stream;
    link_stream_on_closed(unused);
    size_t length = link_frame_write_header(answer, type, 0, frame->stream_id);
    link_send_frame(link, answer, length);
    return 0;
}

static void link_on_stream_frame(struct link *link, const struct link_frame *frame)
{
    struct link_stream *stream = link_find_stream(link, frame->stream_id);
    uint32_t credit;
    if (stream == NULL)
        return; /* closed on our side meanwhile: the peer will see our CLOSE */
    switch (frame->type) {
    case LINK_FRAME_PAIRED:
        link_stream_on_paired(stream);
        break;
    case LINK_FRAME_NOT_FOUND:
        link_stream_on_refused(stream, REMOTE_ANSWER_NOT_FOUND);
        break;
    case LINK_FRAME_BUSY:
        link_stream_on_refused(stream, REMOTE_ANSWER_BUSY);
        break;
    case LINK_FRAME_DATA: {
        unsigned flags = ((frame->flags & LINK_DATA_FIRST) ? PEER_FRAGMENT_FIRST : 0) |
                         ((frame->flags & LINK_DATA_FINAL) ? PEER_FRAGMENT_FINAL : 0) |
                         ((frame->flags & LINK_DATA_TEXT) ? PEER_FRAGMENT_TEXT : 0);
        link_stream_on_data(stream, frame->payload, frame->length, flags);
        break;
    }
    case LINK_FRAME_CREDIT:
        if (link_frame_decode_credit(frame, &credit) == 0)
            link_stream_on_credit(stream, credit);
        break;
    case LINK_FRAME_CLOSE:
        link_forget_stream(link, stream);
        link_stream_on_closed(stream);
        break;
    default:
        break;
    }
}

static int link_dispatch_ready(struct link *link, const struct link_frame *frame)
{
    if (!link_frame_allowed_from(frame->type, !link->outbound))
        return link_protocol_error(link, "frame not allowed in this direction");
    switch (frame->type) {
    case LINK_FRAME_OPEN:
        return link_on_open(link, frame) == 0 ? 0 : link_protocol_error(link, "duplicate OPEN");
    case LINK_FRAME_PING: {
        uint64_t opaque;
        uint8_t pong[LINK_FRAME_HEADER_LENGTH + 8];
        if (link_frame_decode_ping(frame, &opaque) == 0)
            link_send_frame(link, pong, link_frame_encode_pong(pong, opaque));
        return 0;
    }
    case LINK_FRAME_PONG:
        return 0;
    case LINK_FRAME_GOAWAY:
        log_info("link %s %s: peer is going away", link->outbound ? "to" : "from",
                 link->peer.node_id);
        link_set_close(link, LWS_CLOSE_STATUS_NORMAL, "");
        return -1;
    case LINK_FRAME_HELLO:
    case LINK_FRAME_AUTH:
    case LINK_FRAME_AUTH_OK:
        return link_protocol_error(link, "handshake frame after handshake");
    default:
        link_on_stream_frame(link, frame);
        return 0;
    }
}

static int link_dispatch_frame(struct link *link, const struct link_frame *frame)
{
    if (link->state == LINK_READY)
        return link_dispatch_ready(link, frame);
    if (!link->outbound && frame->type == LINK_FRAME_AUTH)
        return link_on_auth(link, frame);
    if (link->outbound && frame->type == LINK_FRAME_HELLO)
        return link_on_hello(link, frame);
    if (link->outbound && frame->type == LINK_FRAME_AUTH_OK)
        return link_on_auth_ok(link, frame);
    return link_refuse(link, LINK_AUTH_FAILURE_PROTOCOL, "frame before authentication");
}

/* One received message: checked whole before any of its frames acts, so a
 * malformed batch has no effect but the GOAWAY. */
int link_dispatch(struct link *link, const uint8_t *message, size_t length)
{
    struct link_batch batch;
    struct link_frame frame;
    const char *error = NULL;
    if (link_batch_check(message, length, link_max_data(), &error) != 0) {
        if (link->state != LINK_READY)
            return link_refuse(link, LINK_AUTH_FAILURE_PROTOCOL, error);
        return link_protocol_error(link, error);
    }
    link->last_received = lws_now_usecs();
    link_batch_start(&batch, message, length, link_max_data());
    while (!link->closing && link_batch_next(&batch, &frame, NULL) == 1) {
        int result = link_dispatch_frame(link, &frame);
        if (result != 0)
            return result;
    }
    return 0;
}

/* The acceptor's side (lws's WebSocket server) hands a message over in
 * pieces when it is larger than the receive buffer, or split across reads;
 * a message that arrives whole is decoded where it lies, others are
 * reassembled (bounded by the largest valid message). */
static int link_receive(struct link *link, struct lws *wsi, const uint8_t *data, size_t length)
{
    bool first = lws_is_first_fragment(wsi), final = lws_is_final_fragment(wsi);
    link->bytes_received += length;
    if (link->closing)
        return 0;
    if (!lws_frame_is_binary(wsi))
        return link->state == LINK_READY
                   ? link_protocol_error(link, "text message")
                   : link_refuse(link, LINK_AUTH_FAILURE_PROTOCOL, "text frame");
    if (first && final)
        return link_dispatch(link, data, length);
    if (first)
        link->message_length = 0;
    if (length > link_max_message() - link->message_length)
        return link->state == LINK_READY
                   ? link_protocol_error(link, "message too large")
                   : link_refuse(link, LINK_AUTH_FAILURE_PROTOCOL, "frame too large");
    if (!link_ensure_message_buffer(link))
        return -1;
    memcpy(link->message + link->message_length, data, length);
    link->message_length += length;
    if (!final)
        return 0;
    return link_dispatch(link, link->message, link->message_length);
}

/* --- for the dialer (link_dialer.c) ---------------------------------------- */

struct lws *link_wsi(const struct link *link)
{
    return link->wsi;
}

const char *link_dialed_node_id(const struct link *link)
{
    return link->expected_node_id;
}

const char *link_url(const struct link *link)
{
    return link->url;
}

bool link_is_closing(const struct link *link)
{
    return link->closing;
}

bool link_has_output(const struct link *link)
{
    return link->out.head != NULL;
}

const char *link_close_reason(const struct link *link, uint16_t *status)
{
    *status = link->close_status;
    return link->close_reason;
}

void link_count_sent(struct link *link, size_t bytes)
{
    link->bytes_sent += bytes;
}

int link_fail(struct link *link, const char *why)
{
    if (link->state == LINK_READY)
        return link_protocol_error(link, why);
    return link_refuse(link, LINK_AUTH_FAILURE_PROTOCOL, why);
}

/* The dialer's TCP connection is up: a fresh start for the link, and the
 * handshake deadline, which covers TLS, the upgrade and HELLO / AUTH until
 * the link is ready. */
static void link_on_dialer_connected(struct link *link, struct lws *wsi)
{
    link->wsi = wsi;
    link->state = LINK_HANDSHAKE;
    link->last_received = lws_now_usecs();
    link->closing = false;
    link->close_status = 0;
    link->close_reason[0] = '\0';
    link->writeable_requested = false;
    lws_sul_schedule(links.context, 0, &link->handshake_timer, link_on_handshake_timeout,
                     LINK_HANDSHAKE_TIMEOUT_US);
}

/* --- lws callback ------------------------------------------------------------ */

static void link_on_closed(struct link *link)
{
    X509_free(link->peer_certificate);
    link->peer_certificate = NULL;
    bool was_ready = link->state == LINK_READY;
    if (was_ready)
        log_info("link %s %s closed", link->outbound ? "to" : "from", link->peer.node_id);
    lws_sul_cancel(&link->keepalive_timer);
    lws_sul_cancel(&link->handshake_timer);
    if (link->outbound && !links.stopping) {
        link_dial_failed(link, was_ready ? "link lost" : "could not connect");
        return;
    }
    link->wsi = NULL;
    link->state = LINK_CLOSED;
    link_end_streams(link);
    link_free(link);
}

/* Events of the dialer's raw connection, found by its opaque pointer: the
 * link's own bookkeeping here, the connection itself in link_dialer.c. */
static int link_on_raw(struct lws *wsi, enum lws_callback_reasons reason, void *in, size_t length)
{
    struct link *link = lws_get_opaque_user_data(wsi);
    if (link == NULL)
        return reason == LWS_CALLBACK_RAW_CLOSE ? 0 : -1;
    switch (reason) {
    case LWS_CALLBACK_RAW_CONNECTED:
        link_on_dialer_connected(link, wsi);
        break;
    case LWS_CALLBACK_RAW_RX:
        link->bytes_received += length;
        break;
    case LWS_CALLBACK_RAW_WRITEABLE:
        link->writeable_requested = false;
        break;
    case LWS_CALLBACK_RAW_CLOSE:
        lws_set_opaque_user_data(wsi, NULL);
        link_on_closed(link);
        return 0;
    default:
        return 0;
    }
    return link_dialer_callback(&link->dialer, reason, in, length);
}

/* Only a WebSocket upgrade on the link path naming the link version is a
 * link: anything else is refused before it costs a handshake. */
static bool link_accepts_upgrade(struct lws *wsi)
{
    char path[64], protocols[128];
    if (links.stopping || lws_hdr_copy(wsi, path, sizeof(path), WSI_TOKEN_GET_URI) <= 0 ||
        strcmp(path, LINK_PATH) != 0 ||
        lws_hdr_copy(wsi, protocols, sizeof(protocols), WSI_TOKEN_PROTOCOL) <= 0)
        return false;
    for (char *save = NULL, *name = strtok_r(protocols, ", ", &save); name != NULL;
         name = strtok_r(NULL, ", ", &save))
        if (strcmp(name, LINK_SUBPROTOCOL) == 0)
            return true;
    return false;
}

/* Callbacks of accepted links (lws's WebSocket server) and of plain HTTP
 * on the cluster port. */
static int link_server_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                                void *in, size_t length)
{
    struct link_binding *binding = user;
    struct link *link = binding != NULL ? binding->link : NULL;

    switch (reason) {
    case LWS_CALLBACK_OPENSSL_PERFORM_CLIENT_CERT_VERIFICATION:
        /* Let TLS finish; the verdict is checked (and counted) once the
         * connection is up, in link_take_certificate. */
        return 0;
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        return link_accepts_upgrade(wsi) ? 0 : -1;
    case LWS_CALLBACK_ESTABLISHED:
        if (links.stopping)
            return -1;
        link = link_new(false);
        if (link == NULL)
            return -1;
        binding->link = link;
        link->wsi = wsi;
        link->last_received = lws_now_usecs();
        return link_start_server_handshake(link) != 0 ? -1 : 0;
    case LWS_CALLBACK_RECEIVE:
        return link != NULL ? link_receive(link, wsi, in, length) : -1;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return link != NULL ? link_writeable(link) : 0;
    case LWS_CALLBACK_CLOSED:
        if (link != NULL) {
            binding->link = NULL;
            link_on_closed(link);
        }
        return 0;
    default:
        break;
    }
    /* Plain HTTP on the cluster port gets lws's default answers. */
    return lws_callback_http_dummy(wsi, reason, user, in, length);
}

static int link_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t length)
{
    struct link *link;

    switch (reason) {
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        link = lws_get_opaque_user_data(wsi);
        if (link == NULL)
            return 0;
        lws_set_opaque_user_data(wsi, NULL);
        link->wsi = NULL;
        if (link->connecting)
            link->connect_error = true;
        else
            link_dial_failed(link, in != NULL ? (const char *)in : "connection error");
        return 0;
    case LWS_CALLBACK_RAW_CONNECTED:
    case LWS_CALLBACK_RAW_RX:
    case LWS_CALLBACK_RAW_WRITEABLE:
    case LWS_CALLBACK_RAW_CLOSE:
        return link_on_raw(wsi, reason, in, length);
    default:
        return link_server_callback(wsi, reason, user, in, length);
    }
}

const struct lws_protocols link_protocol = {
    .name = LINK_SUBPROTOCOL,
    .callback = link_callback,
    .per_session_data_size = sizeof(struct link_binding),
    .rx_buffer_size = 0, /* set by the cluster vhost (cluster_node.c) */
};

/* --- manager ------------------------------------------------------------------ */

void link_manager_start(const struct relay_config *config, const struct cluster_identity *self,
                        struct lws_context *context, struct lws_vhost *vhost,
                        struct matchmaker *matchmaker, const void *secret, size_t secret_length)
{
    links.config = config;
    links.self = self;
    links.vhost = vhost;
    links.context = context;
    links.matchmaker = matchmaker;
    links.have_secret = secret != NULL && secret_length > 0;
    links.secret = secret;
    links.secret_length = secret_length;
    links.stopping = false;
    link_dialer_setup(&config->cluster);
}

void link_manager_stop(void)
{
    links.stopping = true;
    for (struct link *link = links.links; link != NULL; link = link->next) {
        /* Timers and lookups belong to the lws context, which is destroyed
         * before link_manager_free: stop them now. */
        lws_sul_cancel(&link->keepalive_timer);
        lws_sul_cancel(&link->handshake_timer);
        lws_sul_cancel(&link->dial_timer);
        resolver_cancel(link->resolving);
        link->resolving = NULL;
        if (link->wsi != NULL && link->state == LINK_READY && !link->closing) {
            link_send_goaway(link, LINK_CLOSE_SHUTTING_DOWN, "node shutting down");
            link_close_after_flush(link, LWS_CLOSE_STATUS_GOINGAWAY, "node shutting down");
        }
    }
}

void link_manager_free(void)
{
    /* Called after the lws context is destroyed: connections are gone, only
     * link objects waiting to be redialled can remain. */
    while (links.links != NULL) {
        struct link *link = links.links;
        link->wsi = NULL;
        link_end_streams(link);
        link_free(link);
    }
    links.secret = NULL;
    links.secret_length = 0;
    link_dialer_teardown();
}

void link_manager_render_metrics(metrics_emit emit, void *buffer)
{
    emit(buffer, "# HELP relayd_link_up Inter-node links by peer and direction (1: ready).\n");
    emit(buffer, "# TYPE relayd_link_up gauge\n");
    for (struct link *link = links.links; link != NULL; link = link->next)
        emit(buffer, "relayd_link_up{peer=\"%s\",direction=\"%s\"} %d\n",
             link->outbound ? link->expected_node_id : link->peer.node_id,
             link->outbound ? "outbound" : "inbound", link->state == LINK_READY);
    emit(buffer, "# HELP relayd_link_bytes_sent_total Bytes sent on inter-node links.\n");
    emit(buffer, "# TYPE relayd_link_bytes_sent_total counter\n");
    for (struct link *link = links.links; link != NULL; link = link->next)
        emit(buffer, "relayd_link_bytes_sent_total{peer=\"%s\",direction=\"%s\"} %llu\n",
             link->outbound ? link->expected_node_id : link->peer.node_id,
             link->outbound ? "outbound" : "inbound", (unsigned long long)link->bytes_sent);
    emit(buffer, "# HELP relayd_link_bytes_received_total Bytes received on inter-node links.\n");
    emit(buffer, "# TYPE relayd_link_bytes_received_total counter\n");
    for (struct link *link = links.links; link != NULL; link = link->next)
        emit(buffer, "relayd_link_bytes_received_total{peer=\"%s\",direction=\"%s\"} %llu\n",
             link->outbound ? link->expected_node_id : link->peer.node_id,
             link->outbound ? "outbound" : "inbound", (unsigned long long)link->bytes_received);
}

/*
 * link_dialer.c - relayd's own WebSocket client for the dialer of a link,
 * on an lws raw socket (and over link_tls.c under wss://).
 *
 * A dialled connection goes: TCP up (RAW_CONNECTED), TLS handshake when
 * secure, the upgrade request, the 101 answer (checked by link_websocket.c),
 * then frames both ways. The link handshake (HELLO / AUTH / AUTH_OK) starts
 * as soon as the transport is up; link.c runs it on the messages this file
 * hands over, and its deadline covers the whole sequence.
 *
 * Receiving: bytes are read straight off the socket, or out of TLS, in
 * whatever pieces they come. A frame header split across reads is gathered
 * first; a message that is whole in one read is dispatched where it lies,
 * anything else (fragments, split reads) is joined in the dialer's buffer,
 * bounded by the largest valid link message. Pings are answered on the next
 * WRITEABLE; a close frame from the peer closes the link.
 *
 * Sending: the link's queued messages (link.c) are framed in their own
 * LWS_PRE headroom and masked in place, so a message costs one write and no
 * copy. Our close frame carries the status and reason link.c recorded, and
 * goes out once, on the way out.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "link.h"
#include "link_dialer.h"
#include "link_frame.h"
#include "relay/log.h"

/* The dialer frames a queued message in its own headroom. */
_Static_assert(LWS_PRE >= LINK_WEBSOCKET_HEADER_MAX_LENGTH,
               "LWS_PRE too small for a client frame header");

static struct {
    uint8_t mask_pool[256]; /* CSPRNG bytes for the frame masks */
    size_t mask_used;
    SSL_CTX *tls_context; /* under mutual TLS */
} dialers = {.mask_used = sizeof(dialers.mask_pool)};

void link_dialer_setup(const struct relay_cluster_config *cluster)
{
    dialers.tls_context = link_tls_context_new(cluster);
}

void link_dialer_teardown(void)
{
    SSL_CTX_free(dialers.tls_context);
    dialers.tls_context = NULL;
}

void link_dialer_prepare(struct link_dialer *dialer, struct link *link, bool secure)
{
    dialer->link = link;
    dialer->secure = secure;
}

void link_dialer_disconnect(struct link_dialer *dialer)
{
    link_tls_end(&dialer->tls);
    dialer->message_length = 0;
}

void link_dialer_free(struct link_dialer *dialer)
{
    link_tls_end(&dialer->tls);
    free(dialer->message);
    dialer->message = NULL;
    dialer->message_length = 0;
}

SSL *link_dialer_ssl(const struct link_dialer *dialer)
{
    return dialer->tls.ssl;
}

/* --- writing --------------------------------------------------------------- */

/* Four unpredictable bytes per frame (RFC 6455 5.3), drawn from a pool so
 * that small frames do not each pay for a CSPRNG call. */
static void link_dialer_next_mask(uint8_t mask[4])
{
    if (dialers.mask_used + 4 > sizeof(dialers.mask_pool)) {
        if (RAND_bytes(dialers.mask_pool, sizeof(dialers.mask_pool)) != 1)
            log_warn("link: no random bytes for WebSocket masks, reusing old ones");
        dialers.mask_used = 0;
    }
    memcpy(mask, dialers.mask_pool + dialers.mask_used, 4);
    dialers.mask_used += 4;
}

/* Bytes of the WebSocket stream to the socket, through TLS when secure. */
static int link_dialer_transport_write(struct link_dialer *dialer, const uint8_t *data,
                                       size_t length)
{
    struct lws *wsi = link_wsi(dialer->link);
    if (dialer->tls.ssl == NULL)
        return lws_write(wsi, (unsigned char *)data, length, LWS_WRITE_RAW) < (int)length ? -1 : 0;
    return link_tls_write(&dialer->tls, wsi, data, length);
}

int link_dialer_write_message(struct link_dialer *dialer, uint8_t *payload, size_t length)
{
    uint8_t mask[4];
    link_dialer_next_mask(mask);
    size_t header_length =
        link_websocket_frame_client(payload, length, LINK_WEBSOCKET_BINARY, mask);
    if (link_dialer_transport_write(dialer, payload - header_length, length + header_length) != 0)
        return -1;
    return (int)length;
}

/* A control frame (close or pong) of at most 125 payload bytes. */
static int link_dialer_write_control(struct link_dialer *dialer, uint8_t opcode,
                                     const uint8_t *payload, size_t length)
{
    uint8_t frame[LWS_PRE + LINK_WEBSOCKET_CONTROL_MAX_LENGTH];
    uint8_t mask[4];
    link_dialer_next_mask(mask);
    memcpy(frame + LWS_PRE, payload, length);
    size_t header_length = link_websocket_frame_client(frame + LWS_PRE, length, opcode, mask);
    return link_dialer_transport_write(dialer, frame + LWS_PRE - header_length,
                                       header_length + length);
}

/* Our close frame, once: the status and reason link_set_close recorded. */
static void link_dialer_send_close(struct link_dialer *dialer)
{
    uint8_t payload[2 + LINK_GOAWAY_TEXT_MAX_LENGTH];
    uint16_t status = 0;
    const char *reason = link_close_reason(dialer->link, &status);
    size_t reason_length = strlen(reason);
    if (dialer->ws.close_sent || !dialer->ws.upgraded || link_wsi(dialer->link) == NULL)
        return;
    dialer->ws.close_sent = true;
    link_put_u16(payload, status ? status : LWS_CLOSE_STATUS_NORMAL);
    memcpy(payload + 2, reason, reason_length);
    link_dialer_write_control(dialer, LINK_WEBSOCKET_CLOSE, payload, 2 + reason_length);
}

static int link_dialer_send_request(struct link_dialer *dialer)
{
    char host[LINK_HOST_MAX_LENGTH], request[1024];
    int port;
    bool tls;
    if (!link_parse_url(dialer->link, host, &port, &tls))
        return -1;
    size_t length =
        link_websocket_write_request(request, sizeof(request), host, port, dialer->ws.key);
    if (length == 0 || link_dialer_transport_write(dialer, (const uint8_t *)request, length) != 0)
        return -1;
    dialer->ws.request_sent = true;
    link_count_sent(dialer->link, length);
    return 0;
}

/* One thing per turn before the link's queue: TLS handshake bytes, the
 * upgrade request, a pong, or the close frame once the queue is drained. */
static int link_dialer_writeable(struct link_dialer *dialer)
{
    struct link *link = dialer->link;
    int result = 0;
    if (dialer->tls.ssl != NULL && link_tls_flush(&dialer->tls, link_wsi(link)) != 0)
        return -1;
    if (dialer->secure && !dialer->tls.ready)
        return 0; /* the TLS handshake is under way */
    if (!dialer->ws.request_sent) {
        result = link_dialer_send_request(dialer);
    } else if (dialer->ws.pong_due) {
        dialer->ws.pong_due = false;
        result = link_dialer_write_control(dialer, LINK_WEBSOCKET_PONG, dialer->ws.pong,
                                           dialer->ws.pong_length);
    } else if (!link_has_output(link) && link_is_closing(link)) {
        /* Return -1 only on the turn after the close frame, so lws has
         * flushed it. */
        if (dialer->ws.close_sent || !dialer->ws.upgraded)
            return -1;
        link_dialer_send_close(dialer);
    } else {
        return link_writeable(link);
    }
    if (result == 0 && (link_has_output(link) || link_is_closing(link) || dialer->ws.pong_due))
        link_request_writeable(link);
    return result;
}

/* --- connecting ------------------------------------------------------------ */

/* The transport (TCP, and TLS under wss://) is up: the upgrade request goes
 * out next, then the link handshake. */
static int link_dialer_start_websocket(struct link_dialer *dialer)
{
    uint8_t random[16];
    if (RAND_bytes(random, sizeof(random)) != 1)
        return -1;
    link_websocket_make_key(random, dialer->ws.key);
    if (link_start_client_handshake(dialer->link) != 0)
        return -1;
    link_request_writeable(dialer->link);
    return 0;
}

static int link_dialer_tls_handshake(struct link_dialer *dialer)
{
    const char *error = NULL;
    int result = link_tls_handshake(&dialer->tls, &error);
    if (result > 0)
        return link_dialer_start_websocket(dialer);
    if (result == 0) {
        if (link_tls_wants_write(&dialer->tls))
            link_request_writeable(dialer->link);
        return 0;
    }
    log_warn("link to %s (%s): TLS handshake failed: %s", link_dialed_node_id(dialer->link),
             link_url(dialer->link), error);
    return -1;
}

static int link_dialer_tls_start(struct link_dialer *dialer, const char *host)
{
    if (dialers.tls_context == NULL) {
        log_warn("link to %s: wss:// needs the cluster's tls settings",
                 link_dialed_node_id(dialer->link));
        return -1;
    }
    return link_tls_start(&dialer->tls, dialers.tls_context, host);
}

/* TCP is up: start TLS or the upgrade. */
static int link_dialer_connected(struct link_dialer *dialer)
{
    char host[LINK_HOST_MAX_LENGTH];
    int port;
    bool tls;
    dialer->message_length = 0;
    memset(&dialer->ws, 0, sizeof(dialer->ws));
    if (!dialer->secure)
        return link_dialer_start_websocket(dialer);
    if (!link_parse_url(dialer->link, host, &port, &tls) ||
        link_dialer_tls_start(dialer, host) != 0)
        return -1;
    return link_dialer_tls_handshake(dialer);
}

/* --- reading ----------------------------------------------------------------- */

static bool link_dialer_ensure_buffer(struct link_dialer *dialer)
{
    if (dialer->message == NULL)
        dialer->message = malloc(link_max_message());
    return dialer->message != NULL;
}

/* Collect the 101 answer (bounded); *used tells how many of the bytes were
 * part of it, the rest are the first frames. */
static int link_dialer_read_answer(struct link_dialer *dialer, const uint8_t *data, size_t length,
                                   size_t *used)
{
    const char *error = NULL;
    size_t room = LINK_WEBSOCKET_RESPONSE_MAX_LENGTH - dialer->message_length;
    size_t take = length < room ? length : room;
    if (!link_dialer_ensure_buffer(dialer))
        return -1;
    memcpy(dialer->message + dialer->message_length, data, take);
    size_t end = link_websocket_response_end(dialer->message, dialer->message_length + take);
    if (end == 0) {
        dialer->message_length += take;
        *used = take;
        if (dialer->message_length < LINK_WEBSOCKET_RESPONSE_MAX_LENGTH)
            return 0;
        log_warn("link to %s: upgrade answer too long", link_dialed_node_id(dialer->link));
        return -1;
    }
    *used = end - dialer->message_length;
    if (link_websocket_check_response(dialer->message, end, dialer->ws.key, &error) != 0) {
        log_warn("link to %s (%s): %s", link_dialed_node_id(dialer->link), link_url(dialer->link),
                 error);
        return -1;
    }
    dialer->message_length = 0;
    dialer->ws.upgraded = true;
    return 0;
}

static bool link_dialer_is_data(uint8_t opcode)
{
    return opcode < LINK_WEBSOCKET_CLOSE;
}

/* A frame header was read: check it against the message in progress. */
static int link_dialer_start_frame(struct link_dialer *dialer)
{
    struct link_dialer_ws *ws = &dialer->ws;
    uint8_t opcode = ws->frame.opcode;
    if (opcode == LINK_WEBSOCKET_TEXT)
        return link_fail(dialer->link, "text message");
    if (opcode == LINK_WEBSOCKET_BINARY && ws->in_message)
        return link_fail(dialer->link, "new message inside a fragmented one");
    if (opcode == LINK_WEBSOCKET_CONTINUATION && !ws->in_message)
        return link_fail(dialer->link, "continuation outside a message");
    if (link_dialer_is_data(opcode) &&
        ws->frame.length > link_max_message() - dialer->message_length)
        return link_fail(dialer->link, "message too large");
    ws->in_frame = true;
    ws->payload_left = ws->frame.length;
    ws->control_length = 0;
    return 0;
}

/* A whole frame was read. */
static int link_dialer_end_frame(struct link_dialer *dialer)
{
    struct link_dialer_ws *ws = &dialer->ws;
    ws->in_frame = false;
    switch (ws->frame.opcode) {
    case LINK_WEBSOCKET_PING:
        memcpy(ws->pong, ws->control, ws->control_length);
        ws->pong_length = ws->control_length;
        ws->pong_due = true;
        link_request_writeable(dialer->link);
        return 0;
    case LINK_WEBSOCKET_PONG:
        return 0;
    case LINK_WEBSOCKET_CLOSE:
        log_info("link to %s: the peer closed the WebSocket", link_dialed_node_id(dialer->link));
        link_set_close(dialer->link, LWS_CLOSE_STATUS_NORMAL, "");
        return -1;
    default:
        break;
    }
    ws->in_message = !ws->frame.fin;
    if (ws->in_message)
        return 0;
    size_t length = dialer->message_length;
    dialer->message_length = 0;
    return link_dispatch(dialer->link, dialer->message, length);
}

static int link_dialer_read_header(struct link_dialer *dialer, const uint8_t *data, size_t length,
                                   size_t *used)
{
    struct link_dialer_ws *ws = &dialer->ws;
    const char *error = NULL;
    size_t take = LINK_WEBSOCKET_HEADER_MAX_LENGTH - ws->header_have;
    if (take > length)
        take = length;
    memcpy(ws->header + ws->header_have, data, take);
    int parsed =
        link_websocket_parse_header(ws->header, ws->header_have + take, &ws->frame, &error);
    if (parsed < 0) {
        *used = length;
        return link_fail(dialer->link, error);
    }
    if (parsed == 0) {
        ws->header_have += take;
        *used = take;
        return 0;
    }
    *used = ws->frame.header_length - ws->header_have;
    ws->header_have = 0;
    int result = link_dialer_start_frame(dialer);
    if (result == 0 && !link_is_closing(dialer->link) && ws->payload_left == 0)
        result = link_dialer_end_frame(dialer);
    return result;
}

static int link_dialer_read_payload(struct link_dialer *dialer, const uint8_t *data, size_t length,
                                    size_t *used)
{
    struct link_dialer_ws *ws = &dialer->ws;
    size_t take = ws->payload_left < length ? (size_t)ws->payload_left : length;
    *used = take;
    if (!link_dialer_is_data(ws->frame.opcode)) {
        memcpy(ws->control + ws->control_length, data, take);
        ws->control_length += take;
    } else if (!ws->in_message && ws->frame.fin && take == ws->frame.length) {
        /* The whole message is in this read: decode it where it lies. */
        ws->in_frame = false;
        return link_dispatch(dialer->link, data, take);
    } else {
        if (!link_dialer_ensure_buffer(dialer))
            return -1;
        memcpy(dialer->message + dialer->message_length, data, take);
        dialer->message_length += take;
    }
    ws->payload_left -= take;
    return ws->payload_left == 0 ? link_dialer_end_frame(dialer) : 0;
}

/* Bytes of the WebSocket stream (plaintext): the answer, then frames. */
static int link_dialer_receive(struct link_dialer *dialer, const uint8_t *data, size_t length)
{
    while (length > 0 && !link_is_closing(dialer->link)) {
        size_t used = 0;
        int result;
        if (!dialer->ws.upgraded)
            result = link_dialer_read_answer(dialer, data, length, &used);
        else if (dialer->ws.in_frame)
            result = link_dialer_read_payload(dialer, data, length, &used);
        else
            result = link_dialer_read_header(dialer, data, length, &used);
        if (result != 0)
            return result;
        data += used;
        length -= used;
    }
    return 0;
}

/* link_tls_read's consumer: stop decrypting once the link is closing. */
static int link_dialer_on_plaintext(void *context, const uint8_t *data, size_t length, bool *stop)
{
    struct link_dialer *dialer = context;
    int result = link_dialer_receive(dialer, data, length);
    *stop = link_is_closing(dialer->link);
    return result;
}

static int link_dialer_tls_receive(struct link_dialer *dialer, const uint8_t *data, size_t length)
{
    int result = 0;
    if (link_tls_feed(&dialer->tls, data, length) != 0)
        return -1;
    if (!dialer->tls.ready)
        result = link_dialer_tls_handshake(dialer);
    if (result == 0 && dialer->tls.ready)
        result = link_tls_read(&dialer->tls, link_dialer_on_plaintext, dialer,
                               link_dialed_node_id(dialer->link));
    if (link_tls_wants_write(&dialer->tls))
        link_request_writeable(dialer->link);
    return result;
}

int link_dialer_callback(struct link_dialer *dialer, enum lws_callback_reasons reason, void *in,
                         size_t length)
{
    int result;
    switch (reason) {
    case LWS_CALLBACK_RAW_CONNECTED: /* TCP only: TLS, if any, is ours */
        result = link_dialer_connected(dialer);
        break;
    case LWS_CALLBACK_RAW_RX:
        result = dialer->tls.ssl != NULL ? link_dialer_tls_receive(dialer, in, length)
                                         : link_dialer_receive(dialer, in, length);
        break;
    case LWS_CALLBACK_RAW_WRITEABLE:
        return link_dialer_writeable(dialer);
    default:
        return 0;
    }
    /* Closing from a read: say why in a close frame first (best effort). */
    if (result != 0)
        link_dialer_send_close(dialer);
    return result;
}

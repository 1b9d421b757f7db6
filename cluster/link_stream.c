/*
 * link_stream.c - one stream of an inter-node link, as a peer endpoint.
 *
 * A cross-node pair is two local sessions on two nodes, each paired (by its
 * node's matchmaker) with a stream of the link between the nodes. To the
 * session the stream is just its partner: frames delivered to the stream
 * become DATA frames on the link, DATA frames from the link are delivered to
 * the session, END and pauses map onto CLOSE and credit.
 *
 * Flow control is per stream, so a slow client stalls only its own partner:
 * the sender may have at most `window` bytes in flight without credit;
 * the receiver grants credit back as it hands bytes to its session, and
 * withholds it while that session has asked its partner to pause (its send
 * queue is above the high-water mark). Bytes without credit wait here, and
 * when they pass the high-water mark the local sender is paused in turn.
 * Memory per stream is therefore bounded on both nodes.
 */
#include <stdlib.h>
#include <string.h>

#include "link.h"
#include "link_frame.h"
#include "relay/log.h"
#include "relay/metrics.h"
#include "send_queue.h"

struct link_stream {
    struct peer peer;
    struct link *link;
    uint32_t id;
    bool opened_here; /* we sent OPEN (the arriving peer's node) */
    bool open_sent;
    bool opening;              /* OPEN sent or due, no answer yet */
    size_t send_credit;        /* bytes we may still send */
    struct send_queue waiting; /* DATA waiting for credit (write_protocol = peer flags) */
    bool local_paused;         /* we paused the local sender */
    size_t credit_owed;        /* received bytes not yet credited back */
    bool credit_withheld;      /* the local receiver asked us to pause */
};

static const struct peer_ops link_stream_peer_ops;

struct peer *link_stream_peer(struct link_stream *stream)
{
    return &stream->peer;
}

struct link_stream *link_stream_of_peer(struct peer *peer)
{
    return lws_container_of(peer, struct link_stream, peer);
}

uint32_t link_stream_id(const struct link_stream *stream)
{
    return stream->id;
}

bool link_stream_is_opening(const struct link_stream *stream)
{
    return stream->opening;
}

struct link_stream *link_stream_new(struct link *link, uint32_t id, const char *rid,
                                    const char *request_uuid, bool opened_here)
{
    struct link_stream *stream = calloc(1, sizeof(*stream));
    if (stream == NULL)
        return NULL;
    stream->peer.ops = &link_stream_peer_ops;
    memcpy(stream->peer.rid, rid, RID_HEX_LENGTH);
    if (request_uuid != NULL)
        memcpy(stream->peer.request_uuid, request_uuid, UUID_TEXT_LENGTH);
    stream->link = link;
    stream->id = id;
    stream->opened_here = opened_here;
    stream->opening = opened_here;
    stream->send_credit = link_config()->cluster.link_stream_window_bytes;
    relay_metrics.cluster.streams_open++;
    return stream;
}

static void link_stream_free(struct link_stream *stream)
{
    if (stream->link != NULL)
        link_forget_stream(stream->link, stream);
    send_queue_clear(&stream->waiting);
    relay_metrics.cluster.streams_open--;
    free(stream);
}

void link_stream_send_open(struct link_stream *stream)
{
    uint8_t frame[LINK_FRAME_HEADER_LENGTH + LINK_OPEN_PAYLOAD_LENGTH];
    if (stream->open_sent || !stream->opened_here)
        return;
    size_t length =
        link_frame_encode_open(frame, stream->id, stream->peer.rid, stream->peer.request_uuid);
    if (length > 0 && link_send_frame(stream->link, frame, length) == 0)
        stream->open_sent = true;
}

static void link_stream_send_close(struct link_stream *stream, uint16_t code)
{
    uint8_t frame[LINK_FRAME_HEADER_LENGTH + 2];
    size_t length = link_frame_encode_close(frame, stream->id, code);
    if (stream->link != NULL && length > 0)
        link_send_frame(stream->link, frame, length);
}

static void link_stream_grant_credit(struct link_stream *stream)
{
    uint8_t frame[LINK_FRAME_HEADER_LENGTH + 4];
    if (stream->credit_owed == 0 || stream->credit_withheld || stream->link == NULL)
        return;
    size_t length = link_frame_encode_credit(frame, stream->id, (uint32_t)stream->credit_owed);
    if (length > 0 && link_send_frame(stream->link, frame, length) == 0)
        stream->credit_owed = 0;
}

/* Send as much waiting data as the credit allows, splitting a piece at the
 * credit boundary (the flags keep the message boundaries intact). */
static void link_stream_flush(struct link_stream *stream)
{
    const struct relay_config *config = link_config();
    while (stream->send_credit > 0 && !send_queue_is_empty(&stream->waiting) &&
           stream->link != NULL) {
        struct send_piece *piece = stream->waiting.head;
        unsigned flags = (unsigned)piece->write_protocol;
        size_t length = piece->length;
        if (length <= stream->send_credit) {
            piece = send_queue_pop(&stream->waiting);
            link_send_data(stream->link, stream->id, flags, send_piece_payload(piece), length);
            stream->send_credit -= length;
            free(piece);
            continue;
        }
        /* Send the head of the piece; the rest stays as a continuation. */
        size_t part = stream->send_credit;
        link_send_data(stream->link, stream->id, flags & ~(unsigned)PEER_FRAGMENT_FINAL,
                       send_piece_payload(piece), part);
        memmove(send_piece_payload(piece), send_piece_payload(piece) + part, length - part);
        piece->length -= part;
        stream->waiting.bytes -= part;
        relay_metrics.send_queue_bytes -= (int64_t)part;
        piece->write_protocol = (int)(flags & ~(unsigned)PEER_FRAGMENT_FIRST);
        stream->send_credit = 0;
    }
    if (stream->local_paused && stream->waiting.bytes <= config->send_queue_low_water &&
        stream->peer.partner != NULL) {
        stream->local_paused = false;
        peer_resume_input(stream->peer.partner);
    }
}

/* --- frames from the peer node ------------------------------------------ */

void link_stream_on_paired(struct link_stream *stream)
{
    if (!stream->opening)
        return;
    stream->opening = false;
    relay_metrics.cluster.remote_rendezvous_total[REMOTE_PAIRED]++;
    matchmaker_remote_answer(link_matchmaker(), &stream->peer, REMOTE_ANSWER_PAIRED);
}

void link_stream_on_refused(struct link_stream *stream, enum remote_answer answer)
{
    static const enum remote_result results[] = {
        [REMOTE_ANSWER_PAIRED] = REMOTE_PAIRED,
        [REMOTE_ANSWER_NOT_FOUND] = REMOTE_NOT_FOUND,
        [REMOTE_ANSWER_BUSY] = REMOTE_BUSY,
        [REMOTE_ANSWER_FAILED] = REMOTE_FAILED,
    };
    if (!stream->opening)
        return;
    stream->opening = false;
    relay_metrics.cluster.remote_rendezvous_total[results[answer]]++;
    matchmaker_remote_answer(link_matchmaker(), &stream->peer, answer);
    link_stream_free(stream);
}

void link_stream_on_data(struct link_stream *stream, const uint8_t *data, size_t length,
                         unsigned flags)
{
    struct peer *partner = stream->peer.partner;
    if (partner == NULL)
        return;
    if (peer_deliver(partner, data, length, flags) != 0) {
        /* Our client cannot take it (out of memory): end the pair on both
         * nodes rather than lose a frame silently. */
        link_stream_send_close(stream, LINK_CLOSE_INTERNAL_ERROR);
        link_forget_stream(stream->link, stream);
        stream->link = NULL;
        matchmaker_leave(link_matchmaker(), &stream->peer);
        link_stream_free(stream);
        return;
    }
    relay_metrics.bytes_forwarded_total += length;
    if (flags & PEER_FRAGMENT_FINAL)
        relay_metrics.frames_forwarded_total++;
    stream->credit_owed += length;
    /* Credit back in batches of a quarter window: CREDIT frames ride in the
     * link's batches, so they cost little, and the sender keeps three
     * quarters of its window usable while a grant is on its way (with half a
     * window, a third of the DATA of a busy stream waited for credit). */
    if (stream->credit_owed >= link_config()->cluster.link_stream_window_bytes / 4)
        link_stream_grant_credit(stream);
}

void link_stream_on_credit(struct link_stream *stream, uint32_t bytes)
{
    stream->send_credit += bytes;
    link_stream_flush(stream);
}

void link_stream_on_closed(struct link_stream *stream)
{
    if (stream->opening) {
        link_stream_on_refused(stream, REMOTE_ANSWER_FAILED);
        return;
    }
    /* Detach first: leaving ends our local partner, which must not send a
     * CLOSE back for a stream the peer already closed. */
    struct link *link = stream->link;
    stream->link = NULL;
    link_forget_stream(link, stream);
    matchmaker_leave(link_matchmaker(), &stream->peer);
    link_stream_free(stream);
}

/* --- the stream as a peer endpoint --------------------------------------- */

static int link_stream_deliver(struct peer *self, const void *data, size_t length, unsigned flags)
{
    struct link_stream *stream = link_stream_of_peer(self);
    const struct relay_config *config = link_config();
    if (stream->link == NULL)
        return 0;
    if (send_queue_is_empty(&stream->waiting) && length <= stream->send_credit) {
        stream->send_credit -= length;
        return link_send_data(stream->link, stream->id, flags, data, length);
    }
    if (send_queue_push(&stream->waiting, data, length, (int)flags) != 0)
        return -1;
    link_stream_flush(stream);
    if (!stream->local_paused && stream->waiting.bytes > config->send_queue_high_water &&
        stream->peer.partner != NULL) {
        stream->local_paused = true;
        relay_metrics.limits_hit_total[LIMIT_SEND_QUEUE_HIGH_WATER]++;
        peer_pause_input(stream->peer.partner);
    }
    return 0;
}

/* Owner side: the matchmaker paired our stream with its waiting peer. */
static void link_stream_notify_paired(struct peer *self)
{
    struct link_stream *stream = link_stream_of_peer(self);
    uint8_t frame[LINK_FRAME_HEADER_LENGTH];
    size_t length = link_frame_write_header(frame, LINK_FRAME_PAIRED, 0, stream->id);
    if (stream->link != NULL)
        link_send_frame(stream->link, frame, length);
}

/* Our local partner is gone (or the opening was abandoned): close the
 * stream on the peer node too, and free it. */
static void link_stream_end(struct peer *self)
{
    struct link_stream *stream = link_stream_of_peer(self);
    link_stream_send_close(stream, LINK_CLOSE_NORMAL);
    link_stream_free(stream);
}

static void link_stream_pause_input(struct peer *self)
{
    link_stream_of_peer(self)->credit_withheld = true;
}

static void link_stream_resume_input(struct peer *self)
{
    struct link_stream *stream = link_stream_of_peer(self);
    stream->credit_withheld = false;
    link_stream_grant_credit(stream);
}

static const struct peer_ops link_stream_peer_ops = {
    .deliver = link_stream_deliver,
    .notify_paired = link_stream_notify_paired,
    .end = link_stream_end,
    .pause_input = link_stream_pause_input,
    .resume_input = link_stream_resume_input,
};

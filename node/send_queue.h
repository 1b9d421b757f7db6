/*
 * send_queue.h - a session's outgoing frames, waiting for WRITEABLE.
 *
 * libwebsockets lets a connection write one frame per WRITEABLE callback, so
 * everything destined for a client is queued here first: notifications from
 * the matchmaker and pieces of messages from the partner. Each piece carries
 * LWS_PRE bytes of headroom so lws_write can prepend the frame header in
 * place. The queue counts its bytes; the session compares that count with
 * the high- and low-water marks to apply backpressure to the partner.
 */
#ifndef RELAY_SEND_QUEUE_H
#define RELAY_SEND_QUEUE_H

#include <stddef.h>

#include <libwebsockets.h>

struct send_piece {
    struct send_piece *next;
    size_t length;
    int write_protocol;     /* lws_write flags: opcode, continuation, no-FIN */
    unsigned char buffer[]; /* LWS_PRE headroom, then length payload bytes */
};

struct send_queue {
    struct send_piece *head;
    struct send_piece *tail;
    size_t bytes; /* payload bytes queued */
};

static inline unsigned char *send_piece_payload(struct send_piece *piece)
{
    return piece->buffer + LWS_PRE;
}

/* Copy data into a new piece at the tail. Returns 0, or -1 out of memory. */
int send_queue_push(struct send_queue *queue, const void *data, size_t length, int write_protocol);
/* Detach the head piece (the caller frees it with free()). NULL when empty. */
struct send_piece *send_queue_pop(struct send_queue *queue);
void send_queue_clear(struct send_queue *queue);

static inline int send_queue_is_empty(const struct send_queue *queue)
{
    return queue->head == NULL;
}

#endif

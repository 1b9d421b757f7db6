/*
 * send_queue.h - pieces of client messages waiting for a link stream's
 * credit.
 *
 * A stream to another node (cluster/link_stream.c) may only send as many
 * bytes as its peer has granted; what its local client sends beyond that
 * waits here, with its message flags, and the stream compares the queued
 * byte count with the high- and low-water marks to pause and resume its
 * client. (A session's own outgoing frames are in frame_queue.h.) Pieces
 * keep LWS_PRE bytes of headroom so a piece can be written in place.
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

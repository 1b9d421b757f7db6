/*
 * frame_queue.h - a session's outgoing WebSocket frames, framed ahead of
 * time so that many of them leave in one write.
 *
 * The cost of forwarding a small frame is almost all system calls: profiled
 * on this machine, 70 % of relayd's time at 128-byte frames was the kernel's
 * send path, one send() per frame. lws writes one frame per lws_write, so
 * the queue does the framing itself: each queued piece becomes a complete
 * server-to-client WebSocket frame (header + payload; servers never mask) in
 * a block, and a WRITEABLE callback hands a whole block - up to
 * FRAME_QUEUE_BLOCK_MAX bytes of consecutive frames - to one lws_write of
 * raw bytes. Frames are never split across blocks, so whatever lws sends
 * between two blocks (a ping, a pong, the close frame) falls on a frame
 * boundary.
 *
 * Blocks are sized to the traffic: a piece that finds the queue empty (a
 * notification, a lone message, a round trip) gets a block of its size, at
 * least FRAME_QUEUE_BLOCK_MIN; a piece that arrives behind others (a burst
 * read in one go) opens a block of FRAME_QUEUE_BLOCK_MAX that the following
 * pieces fill. Blocks live only until written, so an idle connection holds
 * none.
 */
#ifndef RELAY_FRAME_QUEUE_H
#define RELAY_FRAME_QUEUE_H

#include <stdbool.h>
#include <stddef.h>

#include <libwebsockets.h>

/* lws 4.1.6 hands the kernel at most the protocol's rx_buffer_size (64 KiB
 * by default) per lws_write and keeps the rest for the next POLLOUT, so a
 * larger block would only be copied; 64 KiB holds three 16 KiB frames. */
#define FRAME_QUEUE_BLOCK_MAX (64 * 1024)
/* The smallest block: room for a few notifications (about 400 bytes each). */
#define FRAME_QUEUE_BLOCK_MIN 1024
/* The longest server-to-client frame header: 2 + 8 length bytes. */
#define FRAME_QUEUE_HEADER_MAX 10

/* What a queued piece is: a new message or the continuation of one, and
 * whether it ends its message. */
enum frame_queue_flags {
    FRAME_FIRST = 1 << 0, /* starts a message: opcode text or binary */
    FRAME_FINAL = 1 << 1, /* ends the message: FIN bit */
    FRAME_TEXT = 1 << 2,  /* with FRAME_FIRST: a text message */
};

struct frame_block {
    struct frame_block *next;
    size_t capacity;        /* bytes of room after the LWS_PRE headroom */
    size_t used;            /* bytes of framed data */
    size_t payload;         /* of which payload (what the water marks count) */
    unsigned char buffer[]; /* LWS_PRE headroom, then capacity bytes */
};

struct frame_queue {
    struct frame_block *head;
    struct frame_block *tail;
    size_t bytes; /* payload bytes queued */
};

static inline unsigned char *frame_block_data(struct frame_block *block)
{
    return block->buffer + LWS_PRE;
}

/* Frame length payload bytes (flags: frame_queue_flags) and append the frame.
 * Returns 0, or -1 out of memory (nothing queued). */
int frame_queue_push(struct frame_queue *queue, const void *data, size_t length, unsigned flags);
/* Detach the head block; the caller writes frame_block_data(block)[0..used)
 * and gives it back with frame_block_free(). NULL when empty. */
struct frame_block *frame_queue_pop(struct frame_queue *queue);
void frame_block_free(struct frame_block *block);
void frame_queue_clear(struct frame_queue *queue);
/* Free the spare blocks kept for reuse (at shutdown, for leak checkers). */
void frame_queue_release_spares(void);

/* Write a frame header for a payload of length bytes into out (room for
 * FRAME_QUEUE_HEADER_MAX bytes). Returns its length. */
size_t frame_queue_encode_header(unsigned char *out, size_t length, unsigned flags);

static inline bool frame_queue_is_empty(const struct frame_queue *queue)
{
    return queue->head == NULL;
}

#endif

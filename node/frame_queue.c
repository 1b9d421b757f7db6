/*
 * frame_queue.c - blocks of pre-framed WebSocket frames for coalesced writes.
 *
 * See frame_queue.h for why. The framing is RFC 6455 section 5.2 for the
 * server side: FIN bit and opcode in the first byte, the payload length in
 * 7, 7+16 or 7+64 bits, no mask, no extension bits (relayd negotiates no
 * extensions, so RSV bits are always zero).
 */
#include <stdlib.h>
#include <string.h>

#include "frame_queue.h"
#include "relay/metrics.h"

#define FRAME_OPCODE_CONTINUATION 0x0
#define FRAME_OPCODE_TEXT 0x1
#define FRAME_OPCODE_BINARY 0x2
#define FRAME_FIN 0x80
#define FRAME_LENGTH_16 126
#define FRAME_LENGTH_64 127

size_t frame_queue_encode_header(unsigned char *out, size_t length, unsigned flags)
{
    unsigned char opcode = FRAME_OPCODE_CONTINUATION;
    if (flags & FRAME_FIRST)
        opcode = (flags & FRAME_TEXT) ? FRAME_OPCODE_TEXT : FRAME_OPCODE_BINARY;
    out[0] = (unsigned char)(opcode | ((flags & FRAME_FINAL) ? FRAME_FIN : 0));
    if (length < FRAME_LENGTH_16) {
        out[1] = (unsigned char)length;
        return 2;
    }
    if (length <= 0xffff) {
        out[1] = FRAME_LENGTH_16;
        out[2] = (unsigned char)(length >> 8);
        out[3] = (unsigned char)length;
        return 4;
    }
    out[1] = FRAME_LENGTH_64;
    for (int i = 0; i < 8; i++)
        out[2 + i] = (unsigned char)((uint64_t)length >> (8 * (7 - i)));
    return 10;
}

/*
 * Spare full-size blocks. A busy stream frees and needs a 64 KiB block many
 * thousand times a second; from malloc each one is fresh pages the kernel
 * must fault in (glibc gives the top of the heap back, then grows it again),
 * which profiled at a quarter of the relay's time with 16 KiB frames. A
 * bounded stack of spares (one process, one thread) avoids that and costs
 * at most FRAME_QUEUE_SPARE_MAX blocks of memory.
 */
#define FRAME_QUEUE_SPARE_MAX 64

static struct frame_block *frame_queue_spares[FRAME_QUEUE_SPARE_MAX];
static int frame_queue_spare_count;

static struct frame_block *frame_queue_allocate(size_t capacity)
{
    if (capacity == FRAME_QUEUE_BLOCK_MAX && frame_queue_spare_count > 0)
        return frame_queue_spares[--frame_queue_spare_count];
    struct frame_block *block = malloc(sizeof(*block) + LWS_PRE + capacity);
    if (block != NULL)
        block->capacity = capacity;
    return block;
}

void frame_block_free(struct frame_block *block)
{
    if (block == NULL)
        return;
    if (block->capacity == FRAME_QUEUE_BLOCK_MAX &&
        frame_queue_spare_count < FRAME_QUEUE_SPARE_MAX) {
        frame_queue_spares[frame_queue_spare_count++] = block;
        return;
    }
    free(block);
}

void frame_queue_release_spares(void)
{
    while (frame_queue_spare_count > 0)
        free(frame_queue_spares[--frame_queue_spare_count]);
}

/* A new block at the tail, big enough for needed bytes. */
static struct frame_block *frame_queue_add_block(struct frame_queue *queue, size_t needed)
{
    size_t capacity = needed;
    /* A queue that is already backed up gets room to coalesce into: the
     * next pieces are on their way (the rest of a burst). An empty one gets
     * what this piece needs, but at least FRAME_QUEUE_BLOCK_MIN, so that
     * the notifications of one loop turn (NOT_READY then NOTIFY_RENDEZVOUS)
     * leave in one send. */
    if (queue->head != NULL && capacity < FRAME_QUEUE_BLOCK_MAX)
        capacity = FRAME_QUEUE_BLOCK_MAX;
    else if (capacity < FRAME_QUEUE_BLOCK_MIN)
        capacity = FRAME_QUEUE_BLOCK_MIN;
    struct frame_block *block = frame_queue_allocate(capacity);
    if (block == NULL)
        return NULL;
    block->next = NULL;
    block->used = 0;
    block->payload = 0;
    if (queue->tail != NULL)
        queue->tail->next = block;
    else
        queue->head = block;
    queue->tail = block;
    return block;
}

int frame_queue_push(struct frame_queue *queue, const void *data, size_t length, unsigned flags)
{
    unsigned char header[FRAME_QUEUE_HEADER_MAX];
    size_t header_length = frame_queue_encode_header(header, length, flags);
    size_t needed = header_length + length;

    struct frame_block *block = queue->tail;
    if (block == NULL || block->capacity - block->used < needed) {
        block = frame_queue_add_block(queue, needed);
        if (block == NULL)
            return -1;
    }
    unsigned char *at = frame_block_data(block) + block->used;
    memcpy(at, header, header_length);
    if (length > 0)
        memcpy(at + header_length, data, length);
    block->used += needed;
    block->payload += length;
    queue->bytes += length;
    relay_metrics.send_queue_bytes += (int64_t)length;
    return 0;
}

struct frame_block *frame_queue_pop(struct frame_queue *queue)
{
    struct frame_block *block = queue->head;
    if (block == NULL)
        return NULL;
    queue->head = block->next;
    if (queue->head == NULL)
        queue->tail = NULL;
    queue->bytes -= block->payload;
    relay_metrics.send_queue_bytes -= (int64_t)block->payload;
    return block;
}

void frame_queue_clear(struct frame_queue *queue)
{
    struct frame_block *block;
    while ((block = frame_queue_pop(queue)) != NULL)
        frame_block_free(block);
}

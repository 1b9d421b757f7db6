/*
 * send_queue.c - FIFO of message pieces with LWS_PRE headroom (send_queue.h).
 *
 * One allocation per piece: the header and the payload live in one block, so
 * queueing a chunk costs one malloc and one memcpy.
 */
#include <stdlib.h>
#include <string.h>

#include "relay/metrics.h"
#include "send_queue.h"

int send_queue_push(struct send_queue *queue, const void *data, size_t length, int write_protocol)
{
    struct send_piece *piece = malloc(sizeof(*piece) + LWS_PRE + length);
    if (piece == NULL)
        return -1;
    piece->next = NULL;
    piece->length = length;
    piece->write_protocol = write_protocol;
    if (length > 0)
        memcpy(send_piece_payload(piece), data, length);
    if (queue->tail != NULL)
        queue->tail->next = piece;
    else
        queue->head = piece;
    queue->tail = piece;
    queue->bytes += length;
    relay_metrics.send_queue_bytes += (int64_t)length;
    return 0;
}

struct send_piece *send_queue_pop(struct send_queue *queue)
{
    struct send_piece *piece = queue->head;
    if (piece == NULL)
        return NULL;
    queue->head = piece->next;
    if (queue->head == NULL)
        queue->tail = NULL;
    queue->bytes -= piece->length;
    relay_metrics.send_queue_bytes -= (int64_t)piece->length;
    return piece;
}

void send_queue_clear(struct send_queue *queue)
{
    struct send_piece *piece;
    while ((piece = send_queue_pop(queue)) != NULL)
        free(piece);
}

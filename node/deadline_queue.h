/*
 * deadline_queue.h - many deadlines of one fixed delay, armed in O(1).
 *
 * Every session has a keepalive deadline and, while pending, a pending
 * deadline. lws 4.1's timers (lws_sul) live in one sorted list per thread,
 * and inserting a timer walks that list: with a timer per connection, a node
 * holding 19 000 pending connections would walk 19 000 entries for every
 * ping, pong and new connection. But all deadlines of one kind are "now +
 * the same delay", so arming one just appends it to a FIFO that is sorted by
 * construction; one lws_sul per queue fires at the head's due time.
 *
 * A deadline sits in at most one queue at a time; arming it again (in the
 * same or another queue) moves it. Expiry removes it before the callback,
 * which may arm it again.
 */
#ifndef RELAY_DEADLINE_QUEUE_H
#define RELAY_DEADLINE_QUEUE_H

#include <stdbool.h>

#include <libwebsockets.h>

struct deadline {
    lws_dll2_t list;
    lws_usec_t due;
};

struct deadline_queue;
typedef void (*deadline_expired)(struct deadline *deadline, struct deadline_queue *queue);

struct deadline_queue {
    lws_dll2_owner_t deadlines; /* due times ascending: oldest first */
    lws_usec_t delay;
    deadline_expired expired;
    struct lws_context *context;
    lws_sorted_usec_list_t timer; /* at the head's due time */
};

void deadline_queue_init(struct deadline_queue *queue, struct lws_context *context,
                         lws_usec_t delay, deadline_expired expired);
/* Cancel the queue's timer; the deadlines still in it are left unlinked. */
void deadline_queue_stop(struct deadline_queue *queue);

/* (Re)arm deadline to expire queue->delay from now. */
void deadline_arm(struct deadline_queue *queue, struct deadline *deadline);
/* Disarm; harmless when not armed. */
void deadline_cancel(struct deadline *deadline);

static inline bool deadline_is_armed(const struct deadline *deadline)
{
    return deadline->list.owner != NULL;
}

#endif

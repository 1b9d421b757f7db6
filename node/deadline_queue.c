/*
 * deadline_queue.c - FIFO deadline queues on one lws_sul each.
 *
 * See deadline_queue.h. The queue's timer is (re)scheduled only when the
 * head changes to an earlier time than the one scheduled - that is, when a
 * deadline is armed on an empty queue - and after each expiry run. A
 * deadline cancelled at the head leaves the timer where it was: it fires
 * once for nothing and moves on to the new head, which is cheaper than
 * rescheduling on every cancel.
 */
#include <string.h>

#include "deadline_queue.h"

static void deadline_queue_schedule(struct deadline_queue *queue)
{
    if (queue->deadlines.head == NULL || queue->context == NULL)
        return;
    struct deadline *head = lws_container_of(queue->deadlines.head, struct deadline, list);
    lws_usec_t wait = head->due - lws_now_usecs();
    lws_sul_schedule(queue->context, 0, &queue->timer, queue->timer.cb, wait > 0 ? wait : 0);
}

static void deadline_queue_on_timer(lws_sorted_usec_list_t *sul)
{
    struct deadline_queue *queue = lws_container_of(sul, struct deadline_queue, timer);
    lws_usec_t now = lws_now_usecs();

    while (queue->deadlines.head != NULL) {
        struct deadline *head = lws_container_of(queue->deadlines.head, struct deadline, list);
        if (head->due > now)
            break;
        lws_dll2_remove(&head->list);
        queue->expired(head, queue);
    }
    deadline_queue_schedule(queue);
}

void deadline_queue_init(struct deadline_queue *queue, struct lws_context *context,
                         lws_usec_t delay, deadline_expired expired)
{
    memset(queue, 0, sizeof(*queue));
    queue->context = context;
    /* A zero delay would let an expiry that re-arms loop forever. */
    queue->delay = delay > 0 ? delay : 1;
    queue->expired = expired;
    queue->timer.cb = deadline_queue_on_timer;
}

void deadline_queue_stop(struct deadline_queue *queue)
{
    if (queue->context != NULL)
        lws_sul_cancel(&queue->timer);
    queue->context = NULL; /* arming from now on schedules nothing */
    while (queue->deadlines.head != NULL)
        lws_dll2_remove(queue->deadlines.head);
}

void deadline_arm(struct deadline_queue *queue, struct deadline *deadline)
{
    lws_dll2_remove(&deadline->list);
    deadline->due = lws_now_usecs() + queue->delay;
    lws_dll2_add_tail(&deadline->list, &queue->deadlines);
    if (queue->deadlines.head == &deadline->list)
        deadline_queue_schedule(queue);
}

void deadline_cancel(struct deadline *deadline)
{
    lws_dll2_remove(&deadline->list);
}

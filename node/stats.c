/*
 * stats.c - the periodic "stats:" log line.
 *
 * Operators of the original relay watch its periodic
 * "nexuses/unpeered/peered" line; this keeps those words (connections, those
 * pending, those paired) and adds what was forwarded since the previous line,
 * so a log alone shows whether a node is busy. Counts come from the metrics
 * struct, so the line and /metrics never disagree.
 */
#include <inttypes.h>

#include "relay/log.h"
#include "relay/metrics.h"
#include "stats.h"

static lws_sorted_usec_list_t stats_timer;
static struct lws_context *stats_context;
static int stats_interval_seconds;
static uint64_t stats_last_frames;
static uint64_t stats_last_bytes;

static void stats_on_timer(lws_sorted_usec_list_t *sul)
{
    const struct relay_metrics *m = &relay_metrics;
    int64_t open = m->connections_awaiting_request + m->connections_pending + m->connections_paired;

    log_info("stats: nexuses=%" PRId64 " unpeered=%" PRId64 " peered=%" PRId64
             " frames_forwarded=%" PRIu64 " bytes_forwarded=%" PRIu64 " (last %d s)"
             " queued_bytes=%" PRId64,
             open, m->connections_pending, m->connections_paired,
             m->frames_forwarded_total - stats_last_frames,
             m->bytes_forwarded_total - stats_last_bytes, stats_interval_seconds,
             m->send_queue_bytes);
    stats_last_frames = m->frames_forwarded_total;
    stats_last_bytes = m->bytes_forwarded_total;
    lws_sul_schedule(stats_context, 0, &stats_timer, stats_on_timer,
                     (lws_usec_t)stats_interval_seconds * LWS_US_PER_SEC);
}

void stats_start(struct lws_context *context, int interval_seconds)
{
    stats_context = context;
    stats_interval_seconds = interval_seconds;
    stats_last_frames = relay_metrics.frames_forwarded_total;
    stats_last_bytes = relay_metrics.bytes_forwarded_total;
    if (interval_seconds > 0)
        lws_sul_schedule(context, 0, &stats_timer, stats_on_timer,
                         (lws_usec_t)interval_seconds * LWS_US_PER_SEC);
}

void stats_stop(void)
{
    if (stats_context != NULL)
        lws_sul_cancel(&stats_timer);
    stats_context = NULL;
}

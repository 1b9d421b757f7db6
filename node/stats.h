/*
 * stats.h - the periodic stats log line.
 */
#ifndef RELAY_STATS_H
#define RELAY_STATS_H

#include <libwebsockets.h>

/* Log a stats line every interval seconds (0: never). */
void stats_start(struct lws_context *context, int interval_seconds);
void stats_stop(void);

#endif

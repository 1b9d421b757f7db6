/*
 * metrics.h - the relay's counters and gauges.
 *
 * One process-wide struct, updated in place by the code that sees the event
 * (we are single-threaded: plain integers, no atomics). node/metrics.c
 * renders it in the Prometheus text format for the admin port's /metrics and
 * summarises it in the periodic stats log line.
 */
#ifndef RELAY_METRICS_H
#define RELAY_METRICS_H

#include <stddef.h>
#include <stdint.h>

/* How a valid REQUEST_RENDEZVOUS ended up. */
enum rendezvous_result {
    RENDEZVOUS_PENDING, /* no partner yet: NOT_READY sent */
    RENDEZVOUS_PAIRED,  /* partner found: both notified */
    RENDEZVOUS_REFUSED, /* id already paired: third peer ended */
    RENDEZVOUS_RESULT_COUNT
};

/* Why a connection was refused before it could send anything. */
enum refuse_reason { REFUSE_MAX_CONNECTIONS, REFUSE_SHUTTING_DOWN, REFUSE_REASON_COUNT };

/* Why the relay closed (or saw the close of) a client connection. */
enum close_reason {
    CLOSE_PEER_CLOSED,       /* the client closed or the TCP connection dropped */
    CLOSE_PARTNER_GONE,      /* END sent because the partner left */
    CLOSE_THIRD_PEER,        /* END sent: the id was already paired */
    CLOSE_BAD_REQUEST,       /* first frame was not a valid REQUEST_RENDEZVOUS */
    CLOSE_TEXT_FIRST_FRAME,  /* first frame was a text frame */
    CLOSE_SECOND_REQUEST,    /* REQUEST_RENDEZVOUS while pending */
    CLOSE_MESSAGE_TOO_LARGE, /* message over max_message_bytes */
    CLOSE_PENDING_TIMEOUT,   /* pending longer than pending_timeout */
    CLOSE_PING_TIMEOUT,      /* no pong within ping_timeout */
    CLOSE_SHUTDOWN,          /* the node is shutting down */
    CLOSE_MAX_CONNECTIONS,   /* refused with 1013 */
    CLOSE_INTERNAL_ERROR,    /* out of memory or similar */
    CLOSE_REASON_COUNT
};

/* Limits that were reached (each also shows up as a close or pause). */
enum limit_kind {
    LIMIT_MAX_MESSAGE_BYTES,
    LIMIT_MAX_CONNECTIONS,
    LIMIT_PENDING_TIMEOUT,
    LIMIT_SEND_QUEUE_HIGH_WATER, /* a partner was paused for backpressure */
    LIMIT_KIND_COUNT
};

/* How an OPEN sent to an owner node ended (the arriving peer's side). */
enum remote_result {
    REMOTE_PAIRED,    /* owner paired us with its waiting peer */
    REMOTE_NOT_FOUND, /* owner had no such pending id: stale claim taken over */
    REMOTE_BUSY,      /* owner's id already paired: third peer ended */
    REMOTE_FAILED,    /* owner unreachable or link lost before an answer */
    REMOTE_RESULT_COUNT
};

/* Why an inter-node link was refused during authentication. */
enum link_auth_failure {
    LINK_AUTH_FAILURE_BAD_SECRET,      /* HMAC did not verify */
    LINK_AUTH_FAILURE_BAD_CERTIFICATE, /* no/invalid client certificate, or it names another node */
    LINK_AUTH_FAILURE_PROTOCOL,        /* malformed or out-of-order handshake frame */
    LINK_AUTH_FAILURE_TIMEOUT,         /* handshake not finished in time */
    LINK_AUTH_FAILURE_COUNT
};

/* Upper bounds (seconds) of the Redis round-trip histogram; +Inf implied. */
#define REDIS_LATENCY_BUCKET_COUNT 12
extern const double redis_latency_bucket_bounds[REDIS_LATENCY_BUCKET_COUNT];

struct cluster_metrics {
    int64_t redis_connected; /* 1 while the Redis master connection is up */
    uint64_t redis_errors_total;
    uint64_t redis_reconnects_total;
    uint64_t redis_latency_buckets[REDIS_LATENCY_BUCKET_COUNT]; /* cumulative on render */
    uint64_t redis_latency_count;
    double redis_latency_sum_seconds;
    int64_t claims_held; /* rendezvous ids this node owns in Redis */
    uint64_t remote_rendezvous_total[REMOTE_RESULT_COUNT];
    uint64_t link_auth_failures_total[LINK_AUTH_FAILURE_COUNT];
    int64_t streams_open;
};

/* Appends printf-style text to the exposition being rendered. */
typedef void (*metrics_emit)(void *buffer, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

/* In cluster mode: render the cluster families (relay_metrics.cluster) and
 * call extra (may be NULL) for families only the cluster code can list,
 * such as one series per inter-node link. */
void metrics_enable_cluster(void (*extra)(metrics_emit emit, void *buffer));

/* Record one Redis round trip. */
void metrics_observe_redis_latency(double seconds);

struct relay_metrics {
    /* gauges */
    int64_t connections_awaiting_request; /* open, no valid request yet */
    int64_t connections_pending;
    int64_t connections_paired;
    int64_t send_queue_bytes; /* sum of every session's outgoing queue */

    /* counters */
    uint64_t connections_accepted_total;
    uint64_t connections_refused_total[REFUSE_REASON_COUNT];
    uint64_t connections_closed_total[CLOSE_REASON_COUNT];
    uint64_t rendezvous_total[RENDEZVOUS_RESULT_COUNT];
    uint64_t frames_forwarded_total; /* WebSocket messages delivered to a partner */
    uint64_t bytes_forwarded_total;  /* payload bytes delivered to a partner */
    uint64_t frames_dropped_pending_total;
    uint64_t limits_hit_total[LIMIT_KIND_COUNT];
    uint64_t notifications_sent_total;

    struct cluster_metrics cluster;
};

extern struct relay_metrics relay_metrics;

/* Label values used in the exposition (stable: dashboards depend on them). */
const char *metrics_rendezvous_result_name(enum rendezvous_result result);
const char *metrics_refuse_reason_name(enum refuse_reason reason);
const char *metrics_close_reason_name(enum close_reason reason);
const char *metrics_limit_kind_name(enum limit_kind kind);

/* Render the Prometheus text exposition (version 0.0.4) into a malloc'd
 * buffer; *length receives its size. Returns NULL on allocation failure.
 * ready is exported as relayd_ready (1/0). */
char *metrics_render(size_t *length, int ready);

#endif

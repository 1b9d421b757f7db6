/*
 * metrics.c - the relay's counters and their Prometheus text exposition.
 *
 * The rest of the node updates the global struct relay_metrics in place
 * (single-threaded: plain integers). This file owns that struct, the stable
 * label values of its enums, and metrics_render(), which the admin port's
 * /metrics handler (node/admin.c) calls on every scrape.
 *
 * The output is the Prometheus text format, version 0.0.4: for each family
 * one "# HELP" and one "# TYPE" line, then its samples. Counters end in
 * _total, and the "# TYPE" line names the full sample name including _total,
 * as 0.0.4 expects. Every labelled family lists every label value, zeros
 * included, so that dashboards and alerts see each series from the first
 * scrape instead of only after the first event.
 *
 * The text is built in a growable buffer (struct metrics_buffer) by a few
 * small append helpers. Each group of families is rendered by its own
 * function taking the buffer, so a later section (the cluster's link state
 * and Redis latency histogram) is one more call in metrics_render(). The
 * helpers are static today; to let cluster/ render its own families, move
 * struct metrics_buffer and the metrics_buffer_* prototypes into a header
 * and drop the static keyword - nothing else needs to change.
 */
#include <dirent.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "relay/metrics.h"

#ifndef RELAYD_VERSION
#define RELAYD_VERSION "unknown"
#endif

/* A scrape is about 3.5 KiB today; 8 KiB leaves room for the cluster's
 * families before the buffer has to grow. */
#define METRICS_BUFFER_INITIAL_BYTES 8192

struct relay_metrics relay_metrics;

/* ---- Label values (stable: dashboards and alerts depend on them) ---- */

static const char *const metrics_rendezvous_result_names[] = {
    [RENDEZVOUS_PENDING] = "pending",
    [RENDEZVOUS_PAIRED] = "paired",
    [RENDEZVOUS_REFUSED] = "refused",
};

static const char *const metrics_refuse_reason_names[] = {
    [REFUSE_MAX_CONNECTIONS] = "max_connections",
    [REFUSE_SHUTTING_DOWN] = "shutting_down",
};

static const char *const metrics_close_reason_names[] = {
    [CLOSE_PEER_CLOSED] = "peer_closed",
    [CLOSE_PARTNER_GONE] = "partner_gone",
    [CLOSE_THIRD_PEER] = "third_peer",
    [CLOSE_BAD_REQUEST] = "bad_request",
    [CLOSE_TEXT_FIRST_FRAME] = "text_first_frame",
    [CLOSE_SECOND_REQUEST] = "second_request",
    [CLOSE_MESSAGE_TOO_LARGE] = "message_too_large",
    [CLOSE_PENDING_TIMEOUT] = "pending_timeout",
    [CLOSE_PING_TIMEOUT] = "ping_timeout",
    [CLOSE_SHUTDOWN] = "shutdown",
    [CLOSE_MAX_CONNECTIONS] = "max_connections",
    [CLOSE_INTERNAL_ERROR] = "internal_error",
};

static const char *const metrics_limit_kind_names[] = {
    [LIMIT_MAX_MESSAGE_BYTES] = "max_message_bytes",
    [LIMIT_MAX_CONNECTIONS] = "max_connections",
    [LIMIT_PENDING_TIMEOUT] = "pending_timeout",
    [LIMIT_SEND_QUEUE_HIGH_WATER] = "send_queue_high_water",
};

/* A new enum value without a name here would render as a NULL label. */
_Static_assert(sizeof(metrics_rendezvous_result_names) / sizeof(char *) == RENDEZVOUS_RESULT_COUNT,
               "every rendezvous result needs a label value");
_Static_assert(sizeof(metrics_refuse_reason_names) / sizeof(char *) == REFUSE_REASON_COUNT,
               "every refuse reason needs a label value");
_Static_assert(sizeof(metrics_close_reason_names) / sizeof(char *) == CLOSE_REASON_COUNT,
               "every close reason needs a label value");
_Static_assert(sizeof(metrics_limit_kind_names) / sizeof(char *) == LIMIT_KIND_COUNT,
               "every limit kind needs a label value");

/* Out-of-range values come only from memory corruption or a bad cast; a
 * visible "unknown" is better than a crash in a log line. */
static const char *metrics_lookup_name(const char *const *names, size_t count, int index)
{
    if (index < 0 || (size_t)index >= count)
        return "unknown";
    return names[index];
}

const char *metrics_rendezvous_result_name(enum rendezvous_result result)
{
    return metrics_lookup_name(metrics_rendezvous_result_names, RENDEZVOUS_RESULT_COUNT,
                               (int)result);
}

const char *metrics_refuse_reason_name(enum refuse_reason reason)
{
    return metrics_lookup_name(metrics_refuse_reason_names, REFUSE_REASON_COUNT, (int)reason);
}

const char *metrics_close_reason_name(enum close_reason reason)
{
    return metrics_lookup_name(metrics_close_reason_names, CLOSE_REASON_COUNT, (int)reason);
}

const char *metrics_limit_kind_name(enum limit_kind kind)
{
    return metrics_lookup_name(metrics_limit_kind_names, LIMIT_KIND_COUNT, (int)kind);
}

/* ---- Process start time ---- */

/*
 * relayd_start_time_seconds must be the time the process started, not the
 * time of the first scrape, and metrics.h has no hook for main() to call.
 * A constructor runs when the program is loaded, before main(); this object
 * file is always linked because it defines relay_metrics. metrics_render
 * still falls back to "now" should the constructor not have run.
 */
static time_t metrics_start_time;

__attribute__((constructor)) static void metrics_record_start_time(void)
{
    metrics_start_time = time(NULL);
}

/* ---- The growable text buffer and its append helpers ---- */

struct metrics_buffer {
    char *data;
    size_t length;   /* bytes written, excluding the terminating NUL */
    size_t capacity; /* bytes allocated */
    bool failed;     /* an allocation failed: every later append is ignored */
};

static bool metrics_buffer_init(struct metrics_buffer *buffer)
{
    buffer->data = malloc(METRICS_BUFFER_INITIAL_BYTES);
    buffer->length = 0;
    buffer->capacity = METRICS_BUFFER_INITIAL_BYTES;
    buffer->failed = buffer->data == NULL;
    if (buffer->data != NULL)
        buffer->data[0] = '\0';
    return !buffer->failed;
}

/* Make room for needed more bytes plus the NUL, doubling the allocation. */
static bool metrics_buffer_reserve(struct metrics_buffer *buffer, size_t needed)
{
    if (buffer->failed)
        return false;
    size_t capacity = buffer->capacity;
    while (capacity - buffer->length <= needed) {
        if (capacity > SIZE_MAX / 2) {
            buffer->failed = true;
            return false;
        }
        capacity *= 2;
    }
    if (capacity == buffer->capacity)
        return true;
    char *data = realloc(buffer->data, capacity);
    if (data == NULL) {
        buffer->failed = true;
        return false;
    }
    buffer->data = data;
    buffer->capacity = capacity;
    return true;
}

/* Append printf-style text. Failures are sticky and checked once at the end,
 * which keeps every render function free of error handling. */
__attribute__((format(printf, 2, 3))) static void
metrics_buffer_append_format(struct metrics_buffer *buffer, const char *format, ...)
{
    if (buffer->failed)
        return;
    va_list arguments;
    va_start(arguments, format);
    int needed = vsnprintf(NULL, 0, format, arguments);
    va_end(arguments);
    if (needed < 0 || !metrics_buffer_reserve(buffer, (size_t)needed)) {
        buffer->failed = true;
        return;
    }
    va_start(arguments, format);
    vsnprintf(buffer->data + buffer->length, buffer->capacity - buffer->length, format, arguments);
    va_end(arguments);
    buffer->length += (size_t)needed;
}

/* The "# HELP" and "# TYPE" lines that open a family. Help texts are
 * constants without backslashes or newlines, so they need no escaping. */
static void metrics_buffer_append_header(struct metrics_buffer *buffer, const char *name,
                                         const char *type, const char *help)
{
    metrics_buffer_append_format(buffer, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value is quoted; backslash, double quote and newline are escaped
 * as the exposition format requires. Only build_info carries text that does
 * not come from our own constant tables. */
static void metrics_buffer_append_label_value(struct metrics_buffer *buffer, const char *value)
{
    metrics_buffer_append_format(buffer, "\"");
    for (const char *cursor = value; *cursor != '\0'; cursor++) {
        if (*cursor == '\\')
            metrics_buffer_append_format(buffer, "\\\\");
        else if (*cursor == '"')
            metrics_buffer_append_format(buffer, "\\\"");
        else if (*cursor == '\n')
            metrics_buffer_append_format(buffer, "\\n");
        else
            metrics_buffer_append_format(buffer, "%c", *cursor);
    }
    metrics_buffer_append_format(buffer, "\"");
}

/* One sample of an unlabelled family. */
static void metrics_buffer_append_unsigned(struct metrics_buffer *buffer, const char *name,
                                           uint64_t value)
{
    metrics_buffer_append_format(buffer, "%s %" PRIu64 "\n", name, value);
}

static void metrics_buffer_append_signed(struct metrics_buffer *buffer, const char *name,
                                         int64_t value)
{
    metrics_buffer_append_format(buffer, "%s %" PRId64 "\n", name, value);
}

/* One sample with a single label: name{label="value"} number. */
static void metrics_buffer_append_labelled(struct metrics_buffer *buffer, const char *name,
                                           const char *label, const char *label_value,
                                           const char *number)
{
    metrics_buffer_append_format(buffer, "%s{%s=", name, label);
    metrics_buffer_append_label_value(buffer, label_value);
    metrics_buffer_append_format(buffer, "} %s\n", number);
}

/* A whole counter family with one label, one sample per label value. */
static void metrics_buffer_append_counter_family(struct metrics_buffer *buffer, const char *name,
                                                 const char *help, const char *label,
                                                 const char *const *label_values,
                                                 const uint64_t *values, size_t count)
{
    metrics_buffer_append_header(buffer, name, "counter", help);
    for (size_t i = 0; i < count; i++) {
        char number[24];
        snprintf(number, sizeof(number), "%" PRIu64, values[i]);
        metrics_buffer_append_labelled(buffer, name, label, label_values[i], number);
    }
}

static void metrics_buffer_append_gauge(struct metrics_buffer *buffer, const char *name,
                                        const char *help, int64_t value)
{
    metrics_buffer_append_header(buffer, name, "gauge", help);
    metrics_buffer_append_signed(buffer, name, value);
}

static void metrics_buffer_append_counter(struct metrics_buffer *buffer, const char *name,
                                          const char *help, uint64_t value)
{
    metrics_buffer_append_header(buffer, name, "counter", help);
    metrics_buffer_append_unsigned(buffer, name, value);
}

/* ---- Process figures read from /proc/self ---- */

/* Resident set size in bytes, or -1 when /proc is unavailable. */
static int64_t metrics_read_resident_memory(void)
{
    FILE *statm = fopen("/proc/self/statm", "r");
    if (statm == NULL)
        return -1;
    unsigned long long total_pages = 0;
    unsigned long long resident_pages = 0;
    int fields = fscanf(statm, "%llu %llu", &total_pages, &resident_pages);
    fclose(statm);
    long page_size = sysconf(_SC_PAGESIZE);
    if (fields != 2 || page_size <= 0)
        return -1;
    return (int64_t)(resident_pages * (unsigned long long)page_size);
}

/* Open file descriptors, not counting the one used to list them; -1 when
 * /proc is unavailable. */
static int64_t metrics_count_open_fds(void)
{
    DIR *directory = opendir("/proc/self/fd");
    if (directory == NULL)
        return -1;
    int own_descriptor = dirfd(directory);
    int64_t count = 0;
    struct dirent *entry;
    while ((entry = readdir(directory)) != NULL) {
        if (entry->d_name[0] == '.')
            continue;
        if (atoi(entry->d_name) == own_descriptor)
            continue;
        count++;
    }
    closedir(directory);
    return count;
}

/* ---- The node's families ---- */

static void metrics_render_connections(struct metrics_buffer *buffer)
{
    static const char *const name = "relayd_connections";
    char number[24];

    metrics_buffer_append_header(buffer, name, "gauge", "Open client connections by state.");
    snprintf(number, sizeof(number), "%" PRId64, relay_metrics.connections_awaiting_request);
    metrics_buffer_append_labelled(buffer, name, "state", "awaiting_request", number);
    snprintf(number, sizeof(number), "%" PRId64, relay_metrics.connections_pending);
    metrics_buffer_append_labelled(buffer, name, "state", "pending", number);
    snprintf(number, sizeof(number), "%" PRId64, relay_metrics.connections_paired);
    metrics_buffer_append_labelled(buffer, name, "state", "paired", number);

    metrics_buffer_append_counter(buffer, "relayd_connections_accepted_total",
                                  "Client connections accepted.",
                                  relay_metrics.connections_accepted_total);
    metrics_buffer_append_counter_family(
        buffer, "relayd_connections_refused_total",
        "Client connections refused before they could send anything.", "reason",
        metrics_refuse_reason_names, relay_metrics.connections_refused_total, REFUSE_REASON_COUNT);
    metrics_buffer_append_counter_family(
        buffer, "relayd_connections_closed_total", "Client connections closed, by reason.",
        "reason", metrics_close_reason_names, relay_metrics.connections_closed_total,
        CLOSE_REASON_COUNT);
}

static void metrics_render_traffic(struct metrics_buffer *buffer)
{
    metrics_buffer_append_counter_family(
        buffer, "relayd_rendezvous_total", "Valid rendezvous requests, by outcome.", "result",
        metrics_rendezvous_result_names, relay_metrics.rendezvous_total, RENDEZVOUS_RESULT_COUNT);
    metrics_buffer_append_counter(buffer, "relayd_frames_forwarded_total",
                                  "WebSocket messages delivered to a partner.",
                                  relay_metrics.frames_forwarded_total);
    metrics_buffer_append_counter(buffer, "relayd_bytes_forwarded_total",
                                  "Payload bytes delivered to a partner.",
                                  relay_metrics.bytes_forwarded_total);
    metrics_buffer_append_counter(buffer, "relayd_frames_dropped_pending_total",
                                  "Messages dropped because the sender had no partner yet.",
                                  relay_metrics.frames_dropped_pending_total);
    metrics_buffer_append_counter_family(
        buffer, "relayd_limits_hit_total", "Times a configured limit was reached, by limit.",
        "limit", metrics_limit_kind_names, relay_metrics.limits_hit_total, LIMIT_KIND_COUNT);
    metrics_buffer_append_counter(buffer, "relayd_notifications_sent_total",
                                  "Protocol notifications sent to clients.",
                                  relay_metrics.notifications_sent_total);
    metrics_buffer_append_gauge(buffer, "relayd_send_queue_bytes",
                                "Bytes queued for sending, summed over all sessions.",
                                relay_metrics.send_queue_bytes);
}

static void metrics_render_node(struct metrics_buffer *buffer, int ready)
{
    metrics_buffer_append_gauge(buffer, "relayd_ready",
                                "1 when the node accepts clients (as /readyz), else 0.",
                                ready ? 1 : 0);

    metrics_buffer_append_header(buffer, "relayd_build_info", "gauge",
                                 "Always 1; the version label identifies the build.");
    metrics_buffer_append_labelled(buffer, "relayd_build_info", "version", RELAYD_VERSION, "1");

    if (metrics_start_time == 0)
        metrics_start_time = time(NULL);
    metrics_buffer_append_gauge(buffer, "relayd_start_time_seconds",
                                "Start time of the process since the Unix epoch, in seconds.",
                                (int64_t)metrics_start_time);
}

/* A family whose figure cannot be read is left out entirely rather than
 * exported as a misleading 0 or -1. */
static void metrics_render_process(struct metrics_buffer *buffer)
{
    int64_t resident_bytes = metrics_read_resident_memory();
    if (resident_bytes >= 0)
        metrics_buffer_append_gauge(buffer, "relayd_process_resident_memory_bytes",
                                    "Resident memory size in bytes.", resident_bytes);

    int64_t open_fds = metrics_count_open_fds();
    if (open_fds >= 0)
        metrics_buffer_append_gauge(buffer, "relayd_process_open_fds",
                                    "Number of open file descriptors.", open_fds);
}

static bool metrics_cluster_enabled;
static void (*metrics_cluster_extra)(metrics_emit emit, void *buffer);

void metrics_enable_cluster(void (*extra)(metrics_emit emit, void *buffer))
{
    metrics_cluster_enabled = true;
    metrics_cluster_extra = extra;
}

__attribute__((format(printf, 2, 3))) static void metrics_emit_text(void *buffer,
                                                                    const char *format, ...)
{
    struct metrics_buffer *target = buffer;
    char line[512];
    va_list arguments;
    va_start(arguments, format);
    int needed = vsnprintf(line, sizeof(line), format, arguments);
    va_end(arguments);
    if (needed < 0 || (size_t)needed >= sizeof(line)) {
        target->failed = true;
        return;
    }
    metrics_buffer_append_format(target, "%s", line);
}

static void metrics_render_redis_latency(struct metrics_buffer *buffer)
{
    const struct cluster_metrics *cluster = &relay_metrics.cluster;
    uint64_t cumulative = 0;
    metrics_buffer_append_header(buffer, "relayd_redis_request_duration_seconds", "histogram",
                                 "Round-trip time of Redis commands.");
    for (int i = 0; i < REDIS_LATENCY_BUCKET_COUNT; i++) {
        cumulative += cluster->redis_latency_buckets[i];
        metrics_buffer_append_format(
            buffer, "relayd_redis_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
            redis_latency_bucket_bounds[i], (unsigned long long)cumulative);
    }
    metrics_buffer_append_format(buffer,
                                 "relayd_redis_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
                                 "relayd_redis_request_duration_seconds_sum %.9f\n"
                                 "relayd_redis_request_duration_seconds_count %llu\n",
                                 (unsigned long long)cluster->redis_latency_count,
                                 cluster->redis_latency_sum_seconds,
                                 (unsigned long long)cluster->redis_latency_count);
}

static void metrics_render_cluster(struct metrics_buffer *buffer)
{
    static const char *const remote_results[] = {"paired", "not_found", "busy", "failed"};
    static const char *const auth_reasons[] = {"bad_secret", "bad_certificate", "protocol",
                                               "timeout"};
    const struct cluster_metrics *cluster = &relay_metrics.cluster;

    metrics_buffer_append_gauge(buffer, "relayd_redis_up",
                                "Whether the Redis master connection is up.",
                                cluster->redis_connected);
    metrics_buffer_append_counter(buffer, "relayd_redis_errors_total",
                                  "Redis commands or connections that failed.",
                                  cluster->redis_errors_total);
    metrics_buffer_append_counter(buffer, "relayd_redis_reconnects_total",
                                  "Connections to Redis re-established.",
                                  cluster->redis_reconnects_total);
    metrics_render_redis_latency(buffer);
    metrics_buffer_append_gauge(buffer, "relayd_claims_held",
                                "Rendezvous ids this node owns in the directory.",
                                cluster->claims_held);
    metrics_buffer_append_gauge(buffer, "relayd_streams_open", "Streams open on inter-node links.",
                                cluster->streams_open);
    metrics_buffer_append_header(buffer, "relayd_remote_rendezvous_total", "counter",
                                 "Streams opened to an owner node, by its answer.");
    for (int i = 0; i < REMOTE_RESULT_COUNT; i++)
        metrics_buffer_append_format(buffer, "relayd_remote_rendezvous_total{result=\"%s\"} %llu\n",
                                     remote_results[i],
                                     (unsigned long long)cluster->remote_rendezvous_total[i]);
    metrics_buffer_append_header(buffer, "relayd_link_auth_failures_total", "counter",
                                 "Inter-node links refused during authentication.");
    for (int i = 0; i < LINK_AUTH_FAILURE_COUNT; i++)
        metrics_buffer_append_format(
            buffer, "relayd_link_auth_failures_total{reason=\"%s\"} %llu\n", auth_reasons[i],
            (unsigned long long)cluster->link_auth_failures_total[i]);
    if (metrics_cluster_extra != NULL)
        metrics_cluster_extra(metrics_emit_text, buffer);
}

char *metrics_render(size_t *length, int ready)
{
    struct metrics_buffer buffer;
    if (!metrics_buffer_init(&buffer))
        return NULL;

    metrics_render_connections(&buffer);
    metrics_render_traffic(&buffer);
    metrics_render_node(&buffer, ready);
    metrics_render_process(&buffer);
    if (metrics_cluster_enabled)
        metrics_render_cluster(&buffer);

    if (buffer.failed) {
        free(buffer.data);
        return NULL;
    }
    *length = buffer.length;
    return buffer.data;
}

const double redis_latency_bucket_bounds[REDIS_LATENCY_BUCKET_COUNT] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0};

void metrics_observe_redis_latency(double seconds)
{
    struct cluster_metrics *cluster = &relay_metrics.cluster;
    for (int i = 0; i < REDIS_LATENCY_BUCKET_COUNT; i++)
        if (seconds <= redis_latency_bucket_bounds[i]) {
            cluster->redis_latency_buckets[i]++;
            break;
        }
    cluster->redis_latency_count++;
    cluster->redis_latency_sum_seconds += seconds;
}

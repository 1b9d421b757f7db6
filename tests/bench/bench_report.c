/*
 * bench_report.c - results: recording errors, merging workers, the JSON line.
 *
 * The JSON line is flat (no nested objects) on purpose: run-suite reads it
 * with awk, so the suite needs nothing beyond bash and coreutils. Every
 * rate divides by the measured window; every "per pair"/"per frame" figure
 * divides the server CPU measured over that same window.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"

static const char *const bench_error_names[BENCH_ERROR_KIND_COUNT] = {
    [BENCH_ERROR_BAD_HEADER] = "bad_header",
    [BENCH_ERROR_BAD_LENGTH] = "bad_length",
    [BENCH_ERROR_BAD_CONTENT] = "bad_content",
    [BENCH_ERROR_GAP] = "gap",
    [BENCH_ERROR_OUT_OF_ORDER] = "out_of_order",
    [BENCH_ERROR_LOST] = "lost",
    [BENCH_ERROR_BAD_NOTIFICATION] = "bad_notification",
    [BENCH_ERROR_UNEXPECTED] = "unexpected",
    [BENCH_ERROR_CONNECT] = "connect",
    [BENCH_ERROR_CLOSED] = "closed",
    [BENCH_ERROR_TIMEOUT] = "timeout",
};

static const char *const bench_mode_names[] = {
    [BENCH_MODE_PAIRS] = "pairs",
    [BENCH_MODE_STREAM] = "stream",
    [BENCH_MODE_PINGPONG] = "pingpong",
    [BENCH_MODE_IDLE] = "idle",
};

const char *bench_error_kind_name(enum bench_error_kind kind)
{
    return kind < BENCH_ERROR_KIND_COUNT ? bench_error_names[kind] : "none";
}

void bench_result_error(struct bench_result *result, enum bench_error_kind kind, const char *format,
                        ...)
{
    result->errors[kind]++;
    if (result->first_error[0] != '\0')
        return;
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(result->first_error, sizeof(result->first_error), format, arguments);
    va_end(arguments);
}

uint64_t bench_result_verification_errors(const struct bench_result *result)
{
    uint64_t total = 0;
    for (int kind = 0; kind < BENCH_FIRST_OPERATIONAL_ERROR; kind++)
        total += result->errors[kind];
    return total;
}

uint64_t bench_result_all_errors(const struct bench_result *result)
{
    uint64_t total = 0;
    for (int kind = 0; kind < BENCH_ERROR_KIND_COUNT; kind++)
        total += result->errors[kind];
    return total;
}

void bench_result_merge(struct bench_result *into, const struct bench_result *from)
{
    into->frames_sent += from->frames_sent;
    into->frames_received += from->frames_received;
    into->bytes_received += from->bytes_received;
    into->frames_verified += from->frames_verified;
    into->round_trips += from->round_trips;
    into->pairs_done += from->pairs_done;
    into->connections += from->connections;
    into->background += from->background;
    into->stalled_bytes += from->stalled_bytes;
    for (int kind = 0; kind < BENCH_ERROR_KIND_COUNT; kind++)
        into->errors[kind] += from->errors[kind];
    /* Workers run their windows side by side: the longest one is the run's. */
    if (from->window_s > into->window_s)
        into->window_s = from->window_s;
    if (from->setup_s > into->setup_s)
        into->setup_s = from->setup_s;
    into->client_cpu_s += from->client_cpu_s;
    if (into->first_error[0] == '\0')
        memcpy(into->first_error, from->first_error, sizeof(into->first_error));
    bench_histogram_merge(&into->latency, &from->latency);
    bench_histogram_merge(&into->rendezvous, &from->rendezvous);
}

/* ---- the JSON line ------------------------------------------------------- */

static void bench_report_string(const char *key, const char *value)
{
    printf(",\"%s\":", key);
    if (value == NULL) {
        printf("null");
        return;
    }
    putchar('"');
    for (const char *position = value; *position != '\0'; position++) {
        unsigned char character = (unsigned char)*position;
        if (character == '"' || character == '\\')
            printf("\\%c", character);
        else if (character < 0x20)
            printf("\\u%04x", character);
        else
            putchar(character);
    }
    putchar('"');
}

static void bench_report_number(const char *key, double value)
{
    printf(",\"%s\":%.6g", key, value);
}

static void bench_report_integer(const char *key, uint64_t value)
{
    printf(",\"%s\":%llu", key, (unsigned long long)value);
}

/* A per-unit figure, null when there is nothing to divide by. */
static void bench_report_ratio(const char *key, double numerator, double denominator,
                               bool available)
{
    if (!available || denominator <= 0)
        printf(",\"%s\":null", key);
    else
        bench_report_number(key, numerator / denominator);
}

static void bench_report_common(const struct bench_options *options,
                                const struct bench_result *result,
                                const struct bench_server_usage *server)
{
    printf("{\"mode\":\"%s\"", bench_mode_names[options->mode]);
    bench_report_string("target", options->target == BENCH_TARGET_ECHO ? "echo" : "relay");
    bench_report_string("label", options->label);
    bench_report_string("url", options->url);
    bench_report_string("url2", options->url2);
    printf(",\"cross_node\":%s", options->url2 != NULL &&
                                         strcmp(options->url2, options->url) != 0 &&
                                         options->target == BENCH_TARGET_RELAY
                                     ? "true"
                                     : "false");
    bench_report_integer("processes", (uint64_t)options->processes);
    bench_report_integer("pairs", (uint64_t)options->pairs);
    bench_report_integer("background", result->background);
    bench_report_integer("errors", bench_result_all_errors(result));
    bench_report_integer("verification_errors", bench_result_verification_errors(result));
    for (int kind = 0; kind < BENCH_ERROR_KIND_COUNT; kind++) {
        char key[48];
        snprintf(key, sizeof(key), "err_%s", bench_error_names[kind]);
        bench_report_integer(key, result->errors[kind]);
    }
    bench_report_string("first_error", result->first_error[0] ? result->first_error : NULL);
    bench_report_number("window_s", result->window_s);
    bench_report_number("client_cpu_s", result->client_cpu_s);
    bench_report_ratio("client_cpu_pct", 100 * result->client_cpu_s, result->window_s, true);
    if (server->available)
        bench_report_number("server_cpu_s", server->cpu_s);
    else
        printf(",\"server_cpu_s\":null");
    bench_report_ratio("server_cpu_pct", 100 * server->cpu_s, result->window_s, server->available);
}

static void bench_report_pairs(const struct bench_options *options,
                               const struct bench_result *result,
                               const struct bench_server_usage *server)
{
    bench_report_integer("concurrency", (uint64_t)options->concurrency);
    printf(",\"stagger\":%s", options->stagger ? "true" : "false");
    bench_report_integer("pairs_done", result->pairs_done);
    bench_report_ratio("pairs_per_s", (double)result->pairs_done, result->window_s, true);
    bench_report_number("notify_p50_us", bench_histogram_quantile(&result->latency, 0.50) / 1e3);
    bench_report_number("notify_p99_us", bench_histogram_quantile(&result->latency, 0.99) / 1e3);
    bench_report_number("notify_max_us", (double)result->latency.max / 1e3);
    bench_report_number("rendezvous_p50_us",
                        bench_histogram_quantile(&result->rendezvous, 0.50) / 1e3);
    bench_report_number("rendezvous_p99_us",
                        bench_histogram_quantile(&result->rendezvous, 0.99) / 1e3);
    bench_report_ratio("server_cpu_us_per_pair", 1e6 * server->cpu_s, (double)result->pairs_done,
                       server->available);
    bench_report_ratio("client_cpu_us_per_pair", 1e6 * result->client_cpu_s,
                       (double)result->pairs_done, true);
}

static void bench_report_stream(const struct bench_options *options,
                                const struct bench_result *result,
                                const struct bench_server_usage *server)
{
    bench_report_integer("frame_bytes", options->frame_bytes);
    bench_report_integer("window", (uint64_t)options->window);
    bench_report_number("duration_s", options->duration);
    bench_report_integer("stalled", (uint64_t)options->stalled);
    bench_report_integer("frames", result->frames_received);
    bench_report_integer("frames_sent", result->frames_sent);
    bench_report_integer("frames_verified", result->frames_verified);
    bench_report_ratio("frames_per_s", (double)result->frames_received, result->window_s, true);
    bench_report_ratio("mb_per_s", (double)result->bytes_received / 1e6, result->window_s, true);
    bench_report_ratio("server_cpu_us_per_frame", 1e6 * server->cpu_s,
                       (double)result->frames_received, server->available);
    bench_report_integer("stalled_bytes", result->stalled_bytes);
    /* Isolation: what the stalled receivers cost the server in memory
     * (its queue bounds, not what the stalled senders pushed). Summed
     * over every server process. */
    if (server->available && server->rss_before_kib >= 0 && server->rss_after_kib >= 0)
        bench_report_number("server_rss_growth_kib",
                            (double)(server->rss_after_kib - server->rss_before_kib));
}

static void bench_report_pingpong(const struct bench_options *options,
                                  const struct bench_result *result,
                                  const struct bench_server_usage *server)
{
    const struct bench_histogram *rtt = &result->latency;
    bench_report_integer("frame_bytes", options->frame_bytes);
    bench_report_number("duration_s", options->duration);
    bench_report_integer("round_trips", result->round_trips);
    bench_report_integer("frames_verified", result->frames_verified);
    bench_report_ratio("round_trips_per_s", (double)result->round_trips, result->window_s, true);
    bench_report_number("rtt_p50_us", bench_histogram_quantile(rtt, 0.50) / 1e3);
    bench_report_number("rtt_p90_us", bench_histogram_quantile(rtt, 0.90) / 1e3);
    bench_report_number("rtt_p99_us", bench_histogram_quantile(rtt, 0.99) / 1e3);
    bench_report_number("rtt_max_us", (double)rtt->max / 1e3);
    bench_report_ratio("rtt_mean_us", rtt->sum / 1e3, (double)rtt->count, true);
    bench_report_ratio("server_cpu_us_per_round_trip", 1e6 * server->cpu_s,
                       (double)result->round_trips, server->available);
}

static void bench_report_idle(const struct bench_options *options,
                              const struct bench_result *result,
                              const struct bench_server_usage *server)
{
    bench_report_integer("connections", result->connections);
    bench_report_number("setup_s", result->setup_s);
    bool rss = server->available && server->rss_before_kib >= 0 && server->rss_after_kib >= 0;
    if (rss) {
        bench_report_integer("server_rss_before_kib", (uint64_t)server->rss_before_kib);
        bench_report_integer("server_rss_after_kib", (uint64_t)server->rss_after_kib);
    }
    bench_report_ratio("server_rss_per_conn_bytes",
                       1024.0 * (double)(server->rss_after_kib - server->rss_before_kib),
                       (double)result->connections, rss);
}

void bench_report_print(const struct bench_options *options, const struct bench_result *result,
                        const struct bench_server_usage *server)
{
    bench_report_common(options, result, server);
    switch (options->mode) {
    case BENCH_MODE_PAIRS:
        bench_report_pairs(options, result, server);
        break;
    case BENCH_MODE_STREAM:
        bench_report_stream(options, result, server);
        break;
    case BENCH_MODE_PINGPONG:
        bench_report_pingpong(options, result, server);
        break;
    case BENCH_MODE_IDLE:
        bench_report_idle(options, result, server);
        break;
    }
    printf("}\n");
    fflush(stdout);
}

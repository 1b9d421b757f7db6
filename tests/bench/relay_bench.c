/*
 * relay_bench.c - relay-bench: load generator and meter for relayd and its
 * echo reference (tests/bench/README.md).
 *
 * This file is the command line only: it fills struct bench_options, picks
 * per-mode defaults, hands the run to bench_runner.c and turns the merged
 * result into the exit status - 0 clean, 1 when any frame or notification
 * failed verification, 2 when something else went wrong (a connection
 * failed, a step timed out), 64 for a bad command line. Exactly one JSON
 * line goes to stdout per run; diagnostics go to stderr.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define BENCH_EXIT_USAGE 64
#define BENCH_WINDOW_BYTES (256 * 1024)

static void bench_main_usage(FILE *out)
{
    fprintf(out, "usage: relay-bench MODE --url ws://127.0.0.1:PORT/ [options]\n"
                 "modes:\n"
                 "  pairs      P pairs through the whole rendezvous, C at a time\n"
                 "  stream     P pairs streaming S-byte frames one way for D seconds\n"
                 "  pingpong   round-trip latency with P pairs, one frame in flight each\n"
                 "  idle       N pending connections held; server RSS per connection\n"
                 "options:\n"
                 "  --url URL            the server (first peer of each pair)\n"
                 "  --url2 URL           second peer's node (relay target; default --url)\n"
                 "  --target relay|echo  relayd, or relay-echo (a pair = one connection)\n"
                 "  --server-pid PID[,PID...]  server processes to meter (repeatable)\n"
                 "  --processes N        client processes to spread the pairs over (1)\n"
                 "  --pairs P            pairs (pairs 1000, stream 10, pingpong 10)\n"
                 "  --connections N      idle: connections to hold (1000)\n"
                 "  --concurrency C      pairs: pairs in progress at once (20)\n"
                 "  --stagger            pairs: second peer starts after the first's NOT_READY\n"
                 "  --size BYTES         frame size, 24..1048576, K/KiB suffix allowed (128)\n"
                 "  --window N           stream: frames in flight per pair (256 KiB / size,\n"
                 "                       4..128)\n"
                 "  --duration SECONDS   stream, pingpong: measurement window (2)\n"
                 "  --stalled K          stream: K extra pairs whose receiver never reads\n"
                 "  --background N       hold N idle pending connections during the run\n"
                 "  --timeout-ms MS      bound of each set-up step (10000)\n"
                 "  --drain-ms MS        wait for frames in flight after the window (3000)\n"
                 "  --label TEXT         copied into the JSON line\n"
                 "exit status: 0 clean, 1 verification error, 2 other error, 64 usage\n");
}

static int bench_main_parse_mode(const char *text, enum bench_mode *mode)
{
    static const char *const names[] = {"pairs", "stream", "pingpong", "idle"};
    for (int index = 0; index < 4; index++)
        if (strcmp(text, names[index]) == 0) {
            *mode = (enum bench_mode)index;
            return 0;
        }
    return -1;
}

static int bench_main_parse_long(const char *text, long minimum, long maximum, long *out)
{
    char *end;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno != 0 || end == text || value < 0 || value > maximum)
        return -1;
    if (strcmp(end, "K") == 0 || strcmp(end, "KiB") == 0)
        value *= 1024;
    else if (*end != '\0')
        return -1;
    if (value < minimum || value > maximum)
        return -1;
    *out = value;
    return 0;
}

static int bench_main_parse_pids(const char *text, struct bench_options *options)
{
    char copy[256];
    snprintf(copy, sizeof(copy), "%s", text);
    for (char *saved = NULL, *item = strtok_r(copy, ",", &saved); item != NULL;
         item = strtok_r(NULL, ",", &saved)) {
        long pid;
        if (options->server_pid_count >= BENCH_MAX_SERVER_PIDS ||
            bench_main_parse_long(item, 1, 1L << 30, &pid) != 0)
            return -1;
        options->server_pids[options->server_pid_count++] = (pid_t)pid;
    }
    return 0;
}

/* Options with a numeric value. Returns 0, 1 when name is not one, -1 on
 * a bad value. */
static int bench_main_parse_number(struct bench_options *options, const char *name,
                                   const char *value)
{
    long number;
    if (strcmp(name, "--duration") == 0) {
        char *end;
        options->duration = strtod(value, &end);
        return *end == '\0' && options->duration > 0 && options->duration <= 3600 ? 0 : -1;
    }
    struct {
        const char *name;
        long minimum, maximum;
        int *field;
    } integers[] = {
        {"--processes", 1, 64, &options->processes},
        {"--pairs", 1, 1000000, &options->pairs},
        {"--connections", 1, 1000000, &options->pairs},
        {"--concurrency", 1, 100000, &options->concurrency},
        {"--window", 1, 1000000, &options->window},
        {"--stalled", 0, 1000, &options->stalled},
        {"--background", 0, 100000, &options->background},
        {"--timeout-ms", 100, 600000, &options->timeout_ms},
        {"--drain-ms", 0, 600000, &options->drain_ms},
    };
    if (strcmp(name, "--size") == 0) {
        if (bench_main_parse_long(value, BENCH_FRAME_MIN, BENCH_FRAME_MAX, &number) != 0)
            return -1;
        options->frame_bytes = (size_t)number;
        return 0;
    }
    for (size_t index = 0; index < sizeof(integers) / sizeof(integers[0]); index++)
        if (strcmp(name, integers[index].name) == 0) {
            if (bench_main_parse_long(value, integers[index].minimum, integers[index].maximum,
                                      &number) != 0)
                return -1;
            *integers[index].field = (int)number;
            return 0;
        }
    return 1;
}

static int bench_main_parse_option(struct bench_options *options, const char *name,
                                   const char *value)
{
    if (strcmp(name, "--url") == 0)
        options->url = value;
    else if (strcmp(name, "--url2") == 0)
        options->url2 = value;
    else if (strcmp(name, "--label") == 0)
        options->label = value;
    else if (strcmp(name, "--mode") == 0)
        return bench_main_parse_mode(value, &options->mode);
    else if (strcmp(name, "--server-pid") == 0)
        return bench_main_parse_pids(value, options);
    else if (strcmp(name, "--target") == 0) {
        if (strcmp(value, "relay") != 0 && strcmp(value, "echo") != 0)
            return -1;
        options->target = strcmp(value, "echo") == 0 ? BENCH_TARGET_ECHO : BENCH_TARGET_RELAY;
    } else
        return bench_main_parse_number(options, name, value) == 0 ? 0 : -1;
    return 0;
}

/* One argument (and its value, advancing *index). Returns 0 or -1. */
static int bench_main_parse_argument(struct bench_options *options, int argc, char **argv,
                                     int *index, bool *have_mode)
{
    const char *argument = argv[*index];
    if (strcmp(argument, "--help") == 0) {
        bench_main_usage(stdout);
        exit(0);
    }
    if (strcmp(argument, "--stagger") == 0) {
        options->stagger = true;
        return 0;
    }
    if (argument[0] != '-') {
        if (*have_mode || bench_main_parse_mode(argument, &options->mode) != 0)
            return -1;
        *have_mode = true;
        return 0;
    }
    if (*index + 1 >= argc || bench_main_parse_option(options, argument, argv[*index + 1]) != 0)
        return -1;
    *have_mode |= strcmp(argument, "--mode") == 0;
    (*index)++;
    return 0;
}

static int bench_main_parse(int argc, char **argv, struct bench_options *options)
{
    bool have_mode = false;
    for (int index = 1; index < argc; index++)
        if (bench_main_parse_argument(options, argc, argv, &index, &have_mode) != 0) {
            fprintf(stderr, "relay-bench: bad argument %s\n", argv[index]);
            return -1;
        }
    if (!have_mode || options->url == NULL) {
        fprintf(stderr, "relay-bench: a mode and --url are required\n");
        return -1;
    }
    return 0;
}

static void bench_main_defaults(struct bench_options *options)
{
    if (options->pairs == 0)
        options->pairs =
            options->mode == BENCH_MODE_PAIRS || options->mode == BENCH_MODE_IDLE ? 1000 : 10;
    if (options->concurrency == 0)
        options->concurrency = 20;
    if (options->concurrency > options->pairs)
        options->concurrency = options->pairs;
    if (options->window == 0) {
        size_t window = BENCH_WINDOW_BYTES / options->frame_bytes;
        options->window = window < 4 ? 4 : window > 128 ? 128 : (int)window;
    }
    if (options->processes > options->pairs)
        options->processes = options->pairs;
}

int main(int argc, char **argv)
{
    struct bench_options options = {
        .processes = 1,
        .frame_bytes = 128,
        .duration = 2.0,
        .timeout_ms = 10000,
        .drain_ms = 3000,
    };
    if (bench_main_parse(argc, argv, &options) != 0) {
        bench_main_usage(stderr);
        return BENCH_EXIT_USAGE;
    }
    bench_main_defaults(&options);
    if (bench_frame_init() != 0) {
        fprintf(stderr, "relay-bench: out of memory\n");
        return 2;
    }
    struct bench_result *result = calloc(1, sizeof(*result));
    if (result == NULL || bench_runner_run(&options, result) != 0) {
        fprintf(stderr, "relay-bench: cannot run\n");
        free(result);
        return 2;
    }
    int status = bench_result_verification_errors(result) > 0 ? 1
                 : bench_result_all_errors(result) > 0        ? 2
                                                              : 0;
    if (status != 0)
        fprintf(stderr, "relay-bench: %llu error(s); first: %s\n",
                (unsigned long long)bench_result_all_errors(result), result->first_error);
    free(result);
    return status;
}

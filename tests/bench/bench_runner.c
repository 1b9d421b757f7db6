/*
 * bench_runner.c - one worker in-process, or N forked workers in step.
 *
 * A worker sets up its share of the connections, then calls
 * bench_sync_ready(); its measurement window starts when that returns and
 * ends when it calls bench_sync_window_end(). With --processes 1 the runner
 * is the worker and those two calls sample the server processes directly.
 * With N > 1 each child talks to the runner over a pair of pipes, one byte
 * per step:
 *
 *   child  -> runner   'R' set up            'E' window ended   'Q' + result
 *   runner -> child    'G' go / 'A' abandon  'F' carry on
 *
 * The runner samples the servers after every child said 'R' (just before
 * the 'G's) and after every child said 'E', so the server CPU and memory
 * figures cover the same window as the clients' counts. A child that fails
 * sends 'Q' and its result at any point; one that dies or hangs is killed
 * when the runner's own deadline passes, so a run always ends.
 *
 * Workers are forked before any lws context exists: each child builds its
 * own client context (bench_client.c).
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

/* Time the server gets to finish what the window's clients asked for
 * before it is sampled: closing the last pairs, settling pending memory. */
#define BENCH_SETTLE_PAIRS_MS 100
#define BENCH_SETTLE_IDLE_MS 300

struct bench_probe {
    const struct bench_options *options;
    bool started; /* the window's start was sampled */
    double cpu_start;
    struct bench_server_usage usage;
};

struct bench_sync {
    int to_runner;   /* child: write end of its pipe; -1 when in-process */
    int from_runner; /* child: read end */
    struct bench_probe *probe;
    struct bench_result *result;
    double cpu_start;
    int64_t window_start_ns;
    int wait_ms; /* how long a child waits for the runner's answer */
};

struct bench_child {
    pid_t pid;
    int to_child;
    int from_child;
    bool ready, ended, finished;
    struct bench_result result;
};

/* ---- sampling the servers ------------------------------------------------ */

/* Sum over every --server-pid; -1 when one cannot be read. */
static double bench_probe_cpu(const struct bench_options *options)
{
    double total = 0;
    for (int index = 0; index < options->server_pid_count; index++) {
        double seconds = bench_proc_cpu_seconds(options->server_pids[index]);
        if (seconds < 0)
            return -1;
        total += seconds;
    }
    return total;
}

static long bench_probe_rss(const struct bench_options *options)
{
    long total = 0;
    for (int index = 0; index < options->server_pid_count; index++) {
        long kib = bench_proc_rss_kib(options->server_pids[index]);
        if (kib < 0)
            return -1;
        total += kib;
    }
    return total;
}

static void bench_probe_sleep_ms(int milliseconds)
{
    struct timespec pause = {milliseconds / 1000, (long)(milliseconds % 1000) * 1000000L};
    while (nanosleep(&pause, &pause) != 0 && errno == EINTR)
        ;
}

static void bench_probe_start(struct bench_probe *probe)
{
    if (probe->options->server_pid_count == 0)
        return;
    probe->usage.rss_before_kib = bench_probe_rss(probe->options);
    probe->cpu_start = bench_probe_cpu(probe->options);
    probe->started = probe->cpu_start >= 0;
}

/* Usage is reported only for a window that was sampled at both ends. */
static void bench_probe_end(struct bench_probe *probe)
{
    if (!probe->started)
        return;
    if (probe->options->mode == BENCH_MODE_PAIRS)
        bench_probe_sleep_ms(BENCH_SETTLE_PAIRS_MS);
    if (probe->options->mode == BENCH_MODE_IDLE)
        bench_probe_sleep_ms(BENCH_SETTLE_IDLE_MS);
    double cpu_end = bench_probe_cpu(probe->options);
    probe->usage.rss_after_kib = bench_probe_rss(probe->options);
    probe->usage.cpu_s = cpu_end - probe->cpu_start;
    probe->usage.available = cpu_end >= 0;
}

/* ---- the worker's side --------------------------------------------------- */

static int bench_sync_write(int fd, const void *data, size_t length)
{
    const unsigned char *position = data;
    while (length > 0) {
        ssize_t written = write(fd, position, length);
        if (written < 0 && errno == EINTR)
            continue;
        if (written <= 0)
            return -1;
        position += written;
        length -= (size_t)written;
    }
    return 0;
}

/* Read exactly length bytes within timeout_ms. Returns 0, or -1 on EOF,
 * error or timeout. */
static int bench_sync_read(int fd, void *data, size_t length, int timeout_ms)
{
    unsigned char *position = data;
    int64_t deadline = bench_now_ns() + (int64_t)timeout_ms * 1000000;
    while (length > 0) {
        int64_t remaining = (deadline - bench_now_ns()) / 1000000;
        struct pollfd descriptor = {.fd = fd, .events = POLLIN};
        if (remaining <= 0 || poll(&descriptor, 1, (int)remaining) == 0)
            return -1;
        ssize_t got = read(fd, position, length);
        if (got < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (got <= 0)
            return -1;
        position += got;
        length -= (size_t)got;
    }
    return 0;
}

static int bench_sync_step(struct bench_sync *sync, char tell, char expect)
{
    char answer = 0;
    if (bench_sync_write(sync->to_runner, &tell, 1) != 0 ||
        bench_sync_read(sync->from_runner, &answer, 1, sync->wait_ms) != 0)
        return -1;
    return answer == expect ? 0 : -1;
}

int bench_sync_ready(struct bench_sync *sync)
{
    if (sync->to_runner < 0)
        bench_probe_start(sync->probe);
    else if (bench_sync_step(sync, 'R', 'G') != 0)
        return -1;
    sync->cpu_start = bench_proc_self_cpu_seconds();
    sync->window_start_ns = bench_now_ns();
    return 0;
}

int bench_sync_window_end(struct bench_sync *sync)
{
    sync->result->window_s = (double)(bench_now_ns() - sync->window_start_ns) / 1e9;
    sync->result->client_cpu_s = bench_proc_self_cpu_seconds() - sync->cpu_start;
    if (sync->to_runner < 0) {
        bench_probe_end(sync->probe);
        return 0;
    }
    return bench_sync_step(sync, 'E', 'F');
}

static int bench_runner_run_mode(struct bench_worker *worker)
{
    switch (worker->options->mode) {
    case BENCH_MODE_PAIRS:
        return bench_pairs_run(worker);
    case BENCH_MODE_STREAM:
        return bench_stream_run(worker);
    case BENCH_MODE_PINGPONG:
        return bench_pingpong_run(worker);
    case BENCH_MODE_IDLE:
        return bench_idle_run(worker);
    }
    return -1;
}

static void bench_runner_work(struct bench_worker *worker)
{
    worker->client = bench_client_context_new();
    if (worker->client == NULL) {
        bench_result_error(worker->result, BENCH_ERROR_CONNECT, "cannot create a client context");
        return;
    }
    /* --background: the first worker holds the idle connections, opened
     * before the mode sets up, freed after it finished. */
    size_t background = worker->index == 0 ? (size_t)worker->options->background : 0;
    struct bench_peer *idle = background > 0 ? calloc(background, sizeof(*idle)) : NULL;
    if (idle != NULL)
        worker->result->background = bench_idle_open(worker, idle, background);
    if (worker->result->background == background)
        bench_runner_run_mode(worker);
    bench_idle_close(idle, background);
    free(idle);
    bench_client_context_free(worker->client);
    worker->client = NULL;
}

/* The share of total that worker index of count gets. */
static int bench_runner_share(int total, int count, int index)
{
    return total / count + (index < total % count ? 1 : 0);
}

static void bench_runner_plan(struct bench_worker *worker, const struct bench_options *options,
                              int index)
{
    int count = options->processes;
    memset(worker, 0, sizeof(*worker));
    worker->options = options;
    worker->index = index;
    for (int earlier = 0; earlier < index; earlier++)
        worker->first_pair += (uint32_t)bench_runner_share(options->pairs, count, earlier);
    worker->pairs = bench_runner_share(options->pairs, count, index);
    worker->concurrency = bench_runner_share(options->concurrency, count, index);
    if (worker->concurrency < 1)
        worker->concurrency = 1;
    worker->stalled = index == 0 ? options->stalled : 0;
}

/* ---- the runner's side --------------------------------------------------- */

static int bench_runner_limit_ms(const struct bench_options *options)
{
    return 4 * options->timeout_ms + (int)(options->duration * 1000) + options->drain_ms + 30000;
}

static void bench_runner_child_main(const struct bench_options *options, int index, int to_runner,
                                    int from_runner)
{
    struct bench_result *result = calloc(1, sizeof(*result));
    struct bench_sync sync = {
        .to_runner = to_runner,
        .from_runner = from_runner,
        .result = result,
        .wait_ms = bench_runner_limit_ms(options),
    };
    struct bench_worker worker;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (result == NULL)
        _exit(3);
    bench_runner_plan(&worker, options, index);
    worker.result = result;
    worker.sync = &sync;
    bench_runner_work(&worker);
    char done = 'Q';
    if (bench_sync_write(to_runner, &done, 1) != 0 ||
        bench_sync_write(to_runner, result, sizeof(*result)) != 0)
        _exit(3);
    _exit(0);
}

static int bench_runner_spawn(struct bench_child *child, const struct bench_options *options,
                              int index)
{
    int up[2], down[2];
    if (pipe(up) != 0)
        return -1;
    if (pipe(down) != 0) {
        close(up[0]);
        close(up[1]);
        return -1;
    }
    fflush(stdout);
    fflush(stderr);
    child->pid = fork();
    if (child->pid == 0) {
        close(up[0]);
        close(down[1]);
        bench_runner_child_main(options, index, up[1], down[0]);
    }
    close(up[1]);
    close(down[0]);
    child->from_child = up[0];
    child->to_child = down[1];
    if (child->pid < 0) {
        close(up[0]);
        close(down[1]);
        return -1;
    }
    return 0;
}

/* Read the child's next step byte; 'Q' is followed by its result. */
static char bench_runner_read_step(struct bench_child *child, int64_t deadline)
{
    char step = 0;
    int remaining = (int)((deadline - bench_now_ns()) / 1000000);
    if (bench_sync_read(child->from_child, &step, 1, remaining > 0 ? remaining : 1) != 0)
        return 0;
    if (step == 'Q') {
        remaining = (int)((deadline - bench_now_ns()) / 1000000);
        if (bench_sync_read(child->from_child, &child->result, sizeof(child->result),
                            remaining > 0 ? remaining : 1) != 0)
            return 0;
        child->finished = true;
    }
    return step;
}

/* Wait until every live child sent step (or finished). Returns whether all
 * live children did. A child that fails to answer is killed. */
static bool bench_runner_collect(struct bench_child *children, int count, char step,
                                 int64_t deadline)
{
    bool all = true;
    for (int index = 0; index < count; index++) {
        struct bench_child *child = &children[index];
        if (child->finished || child->pid <= 0)
            continue;
        char got = bench_runner_read_step(child, deadline);
        if (got == step)
            continue;
        all = false;
        if (got == 0) {
            kill(child->pid, SIGKILL);
            bench_result_error(&child->result, BENCH_ERROR_TIMEOUT,
                               "client process %d did not answer", index);
            child->finished = true;
        }
    }
    return all;
}

static void bench_runner_tell(struct bench_child *children, int count, char step)
{
    for (int index = 0; index < count; index++)
        if (!children[index].finished && children[index].pid > 0)
            bench_sync_write(children[index].to_child, &step, 1);
}

static void bench_runner_reap(struct bench_child *children, int count, struct bench_result *merged)
{
    for (int index = 0; index < count; index++) {
        struct bench_child *child = &children[index];
        if (child->pid <= 0)
            continue;
        int status;
        waitpid(child->pid, &status, 0);
        close(child->from_child);
        close(child->to_child);
        bench_result_merge(merged, &child->result);
    }
}

static int bench_runner_run_forked(const struct bench_options *options, struct bench_result *result,
                                   struct bench_probe *probe)
{
    int count = options->processes;
    struct bench_child *children = calloc((size_t)count, sizeof(*children));
    if (children == NULL)
        return -1;
    signal(SIGPIPE, SIG_IGN);
    for (int index = 0; index < count; index++)
        if (bench_runner_spawn(&children[index], options, index) != 0) {
            bench_result_error(result, BENCH_ERROR_CONNECT, "cannot fork client process %d", index);
            children[index].pid = 0;
        }
    int64_t deadline = bench_now_ns() + (int64_t)bench_runner_limit_ms(options) * 1000000;
    bool ready = bench_runner_collect(children, count, 'R', deadline);
    if (ready)
        bench_probe_start(probe);
    bench_runner_tell(children, count, ready ? 'G' : 'A');
    if (ready && bench_runner_collect(children, count, 'E', deadline)) {
        bench_probe_end(probe);
        bench_runner_tell(children, count, 'F');
    } else {
        bench_runner_tell(children, count, 'A');
    }
    bench_runner_collect(children, count, 'Q', deadline);
    bench_runner_reap(children, count, result);
    free(children);
    return 0;
}

int bench_runner_run(const struct bench_options *options, struct bench_result *result)
{
    struct bench_probe probe = {.options = options};
    int status = 0;

    memset(result, 0, sizeof(*result));
    if (options->processes > 1) {
        status = bench_runner_run_forked(options, result, &probe);
    } else {
        struct bench_sync sync = {
            .to_runner = -1,
            .from_runner = -1,
            .probe = &probe,
            .result = result,
        };
        struct bench_worker worker;
        bench_runner_plan(&worker, options, 0);
        worker.result = result;
        worker.sync = &sync;
        bench_runner_work(&worker);
    }
    bench_report_print(options, result, &probe.usage);
    return status;
}

/*
 * bench.h - the pieces of relay-bench and how they fit together.
 *
 * relay_bench.c parses the command line into struct bench_options and hands
 * it to the runner (bench_runner.c), which either runs one worker in its own
 * process or forks --processes workers, keeps them in step (everyone set
 * up -> go -> measurement window ends) while it samples the server processes
 * (bench_proc.c) at exactly those moments, and merges their results. A
 * worker runs one mode: bench_pairs.c, bench_stream.c, bench_pingpong.c,
 * bench_idle.c; they share the rendezvous handshake (bench_rendezvous.c),
 * ids drawn from batched random bytes (bench_random.c), the self-checking
 * frame format
 * (bench_frame.c) and latency histograms (bench_histogram.c).
 * bench_report.c prints the merged result as one JSON line.
 *
 * A "pair" is two WebSocket connections that rendezvous through relayd
 * (--target relay), or one connection that talks to itself through
 * relay-echo (--target echo): both do the same client work per frame, so
 * the server is the only difference (README.md in this directory).
 */
#ifndef RELAY_BENCH_H
#define RELAY_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "bench_client.h"

#define BENCH_MAX_SERVER_PIDS 8
#define BENCH_ERROR_TEXT 200

enum bench_mode {
    BENCH_MODE_PAIRS,
    BENCH_MODE_STREAM,
    BENCH_MODE_PINGPONG,
    BENCH_MODE_IDLE,
};

enum bench_target {
    BENCH_TARGET_RELAY,
    BENCH_TARGET_ECHO,
};

struct bench_options {
    enum bench_mode mode;
    enum bench_target target;
    const char *url;
    const char *url2; /* the second peer's node; NULL: url */
    pid_t server_pids[BENCH_MAX_SERVER_PIDS];
    int server_pid_count;
    int processes;
    int pairs;          /* pairs (pairs, stream, pingpong) or connections (idle) */
    int concurrency;    /* pairs mode: pairs in progress at once */
    size_t frame_bytes; /* stream, pingpong */
    int window;         /* stream: frames in flight per pair; 0: automatic */
    double duration;    /* stream, pingpong: measurement window, seconds */
    int stalled;        /* stream: extra pairs whose receiver never reads */
    int background;     /* idle pending connections held during the run */
    bool stagger;       /* pairs: second peer starts after the first's NOT_READY */
    int timeout_ms;     /* bound of every set-up step */
    int drain_ms;       /* bound of the wait for frames in flight at the end */
    const char *label;  /* copied into the JSON line */
};

/* What can go wrong. The first group are verification errors (exit 1). */
enum bench_error_kind {
    BENCH_ERROR_BAD_HEADER,       /* magic or stream id wrong */
    BENCH_ERROR_BAD_LENGTH,       /* frame length differs from what was sent */
    BENCH_ERROR_BAD_CONTENT,      /* payload differs from the sequence's pattern */
    BENCH_ERROR_GAP,              /* a sequence number was skipped */
    BENCH_ERROR_OUT_OF_ORDER,     /* a sequence number below the expected one */
    BENCH_ERROR_LOST,             /* sent, never arrived by the end of the drain */
    BENCH_ERROR_BAD_NOTIFICATION, /* a rendezvous answer with wrong fields */
    BENCH_ERROR_UNEXPECTED,       /* a message where none may arrive */
    BENCH_ERROR_CONNECT,          /* connection failed */
    BENCH_ERROR_CLOSED,           /* connection closed before the end */
    BENCH_ERROR_TIMEOUT,          /* a set-up step did not finish in time */
    BENCH_ERROR_KIND_COUNT,
};
#define BENCH_FIRST_OPERATIONAL_ERROR BENCH_ERROR_CONNECT

/* Log-linear histogram of nanosecond values: exact below 1024 ns, then 128
 * sub-buckets per power of two (under 1% error), up to about 18 minutes. */
#define BENCH_HISTOGRAM_LINEAR 1024
#define BENCH_HISTOGRAM_SUB_BITS 7
#define BENCH_HISTOGRAM_MAX_EXPONENT 40
#define BENCH_HISTOGRAM_BUCKETS                                                                    \
    (BENCH_HISTOGRAM_LINEAR +                                                                      \
     (BENCH_HISTOGRAM_MAX_EXPONENT - 10 + 1) * (1 << BENCH_HISTOGRAM_SUB_BITS))

struct bench_histogram {
    uint64_t count;
    uint64_t max;
    double sum;
    uint64_t buckets[BENCH_HISTOGRAM_BUCKETS];
};

/* One worker's counts; summed over workers by bench_result_merge. Plain
 * data: a forked worker writes it to the runner through a pipe. */
struct bench_result {
    uint64_t frames_sent;
    uint64_t frames_received; /* within the measurement window */
    uint64_t bytes_received;  /* within the measurement window */
    uint64_t frames_verified; /* every frame checked, window and drain */
    uint64_t round_trips;     /* pingpong, within the window */
    uint64_t pairs_done;      /* pairs mode */
    uint64_t connections;     /* idle: connections held pending */
    uint64_t background;      /* --background connections held */
    uint64_t stalled_bytes;   /* stream: bytes the stalled senders wrote */
    uint64_t errors[BENCH_ERROR_KIND_COUNT];
    double window_s;     /* length of the measurement window */
    double setup_s;      /* idle: time to get every connection pending */
    double client_cpu_s; /* this process' CPU time within the window */
    char first_error[BENCH_ERROR_TEXT];
    struct bench_histogram latency; /* pingpong: round trips; pairs: notify */
    /* pairs: from the later peer's WebSocket opening (its request leaves
     * then) to the later NOTIFY_RENDEZVOUS: the relay's matching alone,
     * without the TCP and WebSocket handshakes. */
    struct bench_histogram rendezvous;
};

struct bench_sync;
struct bench_peer;

/* Random bytes drawn in batches (bench_random.c); left: unused bytes. */
struct bench_random {
    unsigned char pool[4096];
    size_t left;
};

/* One worker: a share of the pairs, its own bench_client context. */
struct bench_worker {
    const struct bench_options *options;
    int index;
    uint32_t first_pair; /* global number of this worker's first pair */
    int pairs;
    int concurrency;
    int stalled;
    struct bench_client_context *client;
    struct bench_result *result;
    struct bench_sync *sync;
    struct bench_random random; /* this process' own: filled after the fork */
};

/* ---- bench_runner.c ---- */
/* Run the benchmark described by options; fills result (merged). Returns 0,
 * or -1 when it could not run at all. */
int bench_runner_run(const struct bench_options *options, struct bench_result *result);
/* Called by a worker once set up: returns when every worker is (0), or -1
 * when the run is abandoned. The window starts on return. */
int bench_sync_ready(struct bench_sync *sync);
/* Called by a worker when its window ended (after it stopped counting). */
int bench_sync_window_end(struct bench_sync *sync);

/* ---- the modes ---- */
int bench_pairs_run(struct bench_worker *worker);
int bench_stream_run(struct bench_worker *worker);
int bench_pingpong_run(struct bench_worker *worker);
int bench_idle_run(struct bench_worker *worker);
/* Open count pending connections (idle mode, --background) in batches;
 * returns how many became pending. bench_idle_close frees them. */
size_t bench_idle_open(struct bench_worker *worker, struct bench_peer *peers, size_t count);
void bench_idle_close(struct bench_peer *peers, size_t count);

/* ---- bench_result (bench_report.c) ---- */
void bench_result_error(struct bench_result *result, enum bench_error_kind kind, const char *format,
                        ...) __attribute__((format(printf, 3, 4)));
uint64_t bench_result_verification_errors(const struct bench_result *result);
uint64_t bench_result_all_errors(const struct bench_result *result);
void bench_result_merge(struct bench_result *into, const struct bench_result *from);
const char *bench_error_kind_name(enum bench_error_kind kind);

/* What the runner measured on the server processes over the window. */
struct bench_server_usage {
    double cpu_s;
    long rss_before_kib;
    long rss_after_kib;
    bool available;
};
void bench_report_print(const struct bench_options *options, const struct bench_result *result,
                        const struct bench_server_usage *server);

/* ---- bench_histogram.c ---- */
void bench_histogram_record(struct bench_histogram *histogram, uint64_t value_ns);
void bench_histogram_merge(struct bench_histogram *into, const struct bench_histogram *from);
/* The value at quantile q (0..1), in ns; 0 when empty. */
double bench_histogram_quantile(const struct bench_histogram *histogram, double q);

/* ---- bench_proc.c ---- */
/* CPU time (user + system, every thread) of pid in seconds, or -1. */
double bench_proc_cpu_seconds(pid_t pid);
/* VmRSS of pid in KiB, or -1. */
long bench_proc_rss_kib(pid_t pid);
/* This process' CPU time in seconds. */
double bench_proc_self_cpu_seconds(void);
/* Monotonic clock in nanoseconds. */
int64_t bench_now_ns(void);

/* ---- bench_frame.c ---- */
/* Header: magic, stream id, sequence number, total length. */
#define BENCH_FRAME_HEADER 20
#define BENCH_FRAME_MIN 24
#define BENCH_FRAME_MAX (1024 * 1024)

/* Fill the deterministic pattern the payloads are cut from. Once per
 * process, before anything else. Returns 0 or -1. */
int bench_frame_init(void);
/* Write frame (stream, seq) of length bytes into out. */
void bench_frame_build(unsigned char *out, size_t length, uint32_t stream, uint64_t seq);
/* Check a received frame against the stream and the expected sequence
 * number and length. Returns BENCH_ERROR_KIND_COUNT when it is right, else
 * the error kind; *seq gets the frame's sequence number when the header was
 * readable (else expected_seq). */
enum bench_error_kind bench_frame_check(const unsigned char *data, size_t length, uint32_t stream,
                                        uint64_t expected_seq, size_t expected_length,
                                        uint64_t *seq);
/* Check a frame and advance *next_seq the way a receiver resynchronises:
 * after a gap to the frame's successor, after an error to the next one.
 * Records the error in result. Returns whether the frame was right. */
bool bench_frame_receive(struct bench_result *result, const unsigned char *data, size_t length,
                         uint32_t stream, uint64_t *next_seq, size_t expected_length);

/* ---- bench_random.c ---- */
/* A fresh rendezvous id (64 lowercase hex digits) into out[65], a fresh
 * lowercase UUID v4 into out[37]. Return 0, or -1 without random bytes. */
int bench_random_rid(struct bench_random *random, char *out);
int bench_random_uuid(struct bench_random *random, char *out);

/* ---- bench_rendezvous.c ---- */
/* One connection's handshake with the server. */
struct bench_peer {
    struct bench_client_connection *connection;
    char rid[65];
    char request_uuid[37];
    bool not_ready; /* got NOTIFY_RENDEZVOUS_NOT_READY */
    bool notified;  /* got NOTIFY_RENDEZVOUS */
    bool failed;    /* an error was recorded for it */
    int64_t started_ns;
    int64_t notified_ns;
};

enum bench_answer {
    BENCH_ANSWER_NOT_READY,
    BENCH_ANSWER_RENDEZVOUS,
    BENCH_ANSWER_BAD,
};

/* Open a connection to url and queue its REQUEST_RENDEZVOUS for rid.
 * Returns 0, or -1 (recorded in result) when the connection cannot start. */
int bench_rendezvous_start(struct bench_worker *worker, struct bench_peer *peer, const char *url,
                           const char *rid);
/* Judge a message the server sent peer during the handshake; records
 * errors, sets not_ready / notified. */
enum bench_answer bench_rendezvous_answer(struct bench_worker *worker, struct bench_peer *peer,
                                          const unsigned char *data, size_t length, bool binary);
/* Service until every peer got NOTIFY_RENDEZVOUS (want_rendezvous) or any
 * answer (NOT_READY counts), reading the answers stored by bench_client.
 * Returns 0 when all did, else -1 with the failures recorded. */
int bench_rendezvous_await(struct bench_worker *worker, struct bench_peer **peers, size_t count,
                           bool want_rendezvous);
/* Set up count established pairs: the first peers on url (NOT_READY
 * awaited), then the second ones on url2; for the echo target one
 * connection each, in first[]. second may be NULL for the echo target. */
int bench_rendezvous_pairs(struct bench_worker *worker, struct bench_peer *first,
                           struct bench_peer *second, size_t count);
/* The URL the second peer of a pair uses. */
const char *bench_rendezvous_second_url(const struct bench_options *options);

#endif

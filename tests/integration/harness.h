/*
 * harness.h - run a real relayd process for one integration test.
 *
 * The harness picks free loopback ports, writes a YAML configuration into a
 * fresh temporary directory, starts the relayd binary built by this tree
 * (RELAYD_BINARY) with its stderr captured in that directory, and waits until
 * the admin port answers /healthz. It stops the relay with SIGTERM and
 * reports its exit status: under the sanitizer build a leak makes relayd exit
 * non-zero, so "stopped with status 0" also means "no leak".
 *
 * Also here: a tiny blocking HTTP/1.1 GET client (admin endpoints, the
 * client port's info page), a Prometheus text reader, running a command with
 * a deadline (openssl, relayd --check-config) and reading a process' RSS,
 * and the clock, socket and process steps these are made of, which raw_ws.c
 * and cluster_harness.c build on too.
 */
#ifndef RELAY_TEST_HARNESS_H
#define RELAY_TEST_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

struct harness_relay;

/* Settings written into the relay's YAML; zero/NULL leaves the key out so
 * the relay's default applies. */
struct harness_config {
    const char *bind_address; /* default 127.0.0.1 */
    size_t max_message_bytes;
    int max_connections;
    int pending_timeout;
    int handshake_timeout;
    size_t send_queue_high_water;
    size_t send_queue_low_water;
    int ping_interval;
    int ping_timeout;
    int shutdown_timeout;
    const char *tls_cert;
    const char *tls_key;
    const char *tls_chain;
    const char *log_level; /* default: $RELAY_TEST_LOG_LEVEL, else "info" */
    /* For the cluster harness: called at every start attempt, after the
     * client and admin ports were chosen and the YAML above was written, to
     * pick its own ports and append its own sections (cluster:). Returns 0
     * or -1 (the start fails). NULL: nothing added. */
    int (*write_extra)(FILE *file, const struct harness_relay *relay, void *user);
    void *extra_user;
    /* More command-line arguments, NULL-ended, read after write_extra ran
     * (so it may rewrite the strings they point to). NULL: none. */
    char *const *extra_args;
};

struct harness_relay {
    pid_t pid; /* 0 when not running */
    int port;
    int admin_port;
    bool tls;
    char bind_address[64];
    char directory[256]; /* temporary directory of this run */
    char config_path[320];
    char stderr_path[320];
    char url[128]; /* ws://127.0.0.1:PORT/ or wss://..., [::1] for IPv6 */
};

/* A fresh temporary directory (for certificates made before the start).
 * Returns 0 or -1. */
int harness_make_directory(char *out, size_t out_size);

/* Start relayd with config (NULL: defaults). directory: where to put the
 * files (NULL: a new temporary directory). Retries with other ports when the
 * relay dies at start (a port taken in between). Returns 0, or -1 with the
 * relay's stderr printed. */
int harness_start_relay(struct harness_relay *relay, const struct harness_config *config,
                        const char *directory);

/* SIGTERM, then wait up to timeout_ms for the exit (then SIGKILL). Returns
 * the exit status (0-255), 128 + signal number if killed by a signal, or -1
 * if it had to be killed. Prints the relay's stderr when not 0. */
int harness_stop_relay(struct harness_relay *relay, int timeout_ms);

/* Like harness_stop_relay without sending the signal first (the test sent
 * it), or kill hard: used by harness_cleanup. */
int harness_wait_exit(struct harness_relay *relay, int timeout_ms);

/* Kill the relay if it still runs and remove its temporary directory (kept
 * when the environment has RELAY_TEST_KEEP=1). */
void harness_cleanup(struct harness_relay *relay);

/* Remove a temporary directory and everything in it, unless the environment
 * has RELAY_TEST_KEEP=1 ("" : nothing to remove). */
void harness_remove_directory(const char *directory);

/* Resident set size of the relay in KiB (VmRSS), or -1. */
long harness_relay_rss_kib(const struct harness_relay *relay);

/* Print the relay's stderr (last max_bytes) to our stderr. */
void harness_print_relay_log(const struct harness_relay *relay, size_t max_bytes);

/* Print the last max_bytes of a file (a process' log) to our stderr, headed
 * by title and the path (title NULL: the path alone). Nothing when the file
 * cannot be read. */
void harness_print_file_tail(const char *title, const char *path, size_t max_bytes);

/* Whether the relay's stderr contains text. */
bool harness_relay_log_contains(const struct harness_relay *relay, const char *text);

/* GET path from host:port. Returns 0 with *status and a malloc'd NUL-ended
 * *body (chunked transfer decoded), or -1 on connection error or timeout. */
int harness_http_get(const char *host, int port, const char *path, int timeout_ms, int *status,
                     char **body);

/* GET from the relay's admin port; returns the status code or -1. */
int harness_admin_get(const struct harness_relay *relay, const char *path, char **body);

/* The value of one series in Prometheus text, e.g.
 * series = "relayd_rendezvous_total{result=\"paired\"}". Returns 0 or -1 if
 * absent. Label order and spacing must match what the relay writes. */
int harness_metric_value(const char *metrics_text, const char *series, double *value);

/* Fetch /metrics and return the series' value, or -1 when it is missing. */
double harness_fetch_metric(const struct harness_relay *relay, const char *series);

/* A port that nothing listens on right now on this loopback address
 * ("127.0.0.1" or "::1"). Returns the port or -1. */
int harness_free_port(const char *address);

/* Whether ::1 can be bound here. */
bool harness_have_ipv6_loopback(void);

/* Run argv (argv[0] a path or a name looked up in PATH) with stdout and
 * stderr captured into *output (malloc'd, NUL-ended; may be NULL). Returns
 * the exit status, 128 + signal, or -1 on failure or timeout (then killed). */
int harness_run_command(char *const argv[], int timeout_ms, char **output);

/* Run openssl with arguments (NULL-ended, "openssl" itself left out),
 * printing its output when it fails. Returns 0 or -1. */
int harness_openssl(const char *const *arguments);

/* The tests' private PKIs (EC P-256 keys, certificates valid for two days),
 * made with harness_openssl; both return 0 or -1. harness_make_ca: a
 * self-signed CA certificate and its key. harness_make_certificate: a key
 * and a certificate for subject, signed by ca_cert and ca_key, with this
 * serial and the X.509 extensions written in extensions_file (the signing
 * request goes into <cert>.csr). */
int harness_make_ca(const char *cert, const char *key, const char *subject);
int harness_make_certificate(const char *cert, const char *key, const char *subject,
                             const char *ca_cert, const char *ca_key, const char *serial,
                             const char *extensions_file);

/* Path of the relayd binary under test. */
const char *harness_relayd_path(void);

/* Raise RLIMIT_NOFILE's soft limit to the hard limit; returns the new soft
 * limit. Children started afterwards (the relay) inherit it. */
long harness_raise_file_limit(void);

/* ---- building blocks (raw_ws.c, cluster_harness.c) ----------------------- */

/* Milliseconds left until deadline (on the clock of ws_client_now_ms(),
 * the one clock of the tests), never negative (poll() would take a
 * negative timeout as "wait for ever"). */
int harness_remaining_ms(int64_t deadline);

/* Sleep, resumed after signals. */
void harness_sleep_ms(int milliseconds);

/* Connect to a numeric address (IPv4 or IPv6) without blocking past the
 * deadline. Returns the socket, left non-blocking, or -1. */
int harness_connect(const char *host, int port, int64_t deadline);

/* Send all of data on a (non-blocking) socket before the deadline. Returns
 * 0 or -1. */
int harness_send_all(int fd, const void *data, size_t length, int64_t deadline);

/* harness_spawn flags. */
#define HARNESS_SPAWN_OWN_GROUP 1 /* lead a process group (kill(-pid) takes its children) */
#define HARNESS_SPAWN_APPEND 2    /* append to output_path instead of truncating it */

/* Start argv (argv[0] a path or a name looked up in PATH) with stdin from
 * /dev/null and stdout and stderr into output_path (NULL: into output_fd).
 * The child dies with the test process (PR_SET_PDEATHSIG). Returns its pid,
 * or -1 when fork failed. */
pid_t harness_spawn(const char *const argv[], const char *output_path, int output_fd, int flags);

/* Reap pid if it has exited: returns its status code (as
 * harness_stop_relay), -1 when it cannot be waited for, or -2 while it
 * runs. */
int harness_poll_exit(pid_t pid);

#endif

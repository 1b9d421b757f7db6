/*
 * cluster_harness.h - run a relayd cluster for one integration test: Redis
 * (alone, or a master, a replica and three sentinels), N relayd nodes, an
 * HAProxy in front of them, and the tools the cluster tests need (a private
 * PKI for mutual TLS, raw connections to a node's /cluster port, a capturing
 * TCP proxy, Prometheus sums over labels).
 *
 * Each test gets its own processes in its own temporary directory: the
 * cmocka setup (cluster_test_setup) creates an empty cluster with default
 * options, the test adjusts cluster->options and starts what it needs, and
 * the teardown (cluster_test_teardown) frees the test's connections, stops
 * the nodes with SIGTERM (a node that exits non-zero - a crash, or a leak
 * under the sanitizer build - fails the test), then kills every helper's
 * process group. Every child also dies with the test process
 * (PR_SET_PDEATHSIG), so a ctest timeout leaves nothing behind.
 *
 * The helpers that wait take a bound; helpers named cluster_expect_* and
 * cluster_wait_* assert (cmocka) and end the test on failure.
 */
#ifndef RELAY_TEST_CLUSTER_HARNESS_H
#define RELAY_TEST_CLUSTER_HARNESS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/ssl.h>

#include "harness.h"
#include "relay_test.h"

#define CLUSTER_MAX_NODES 5
#define CLUSTER_SENTINELS 3
#define CLUSTER_MAX_PROXIES 4
#define CLUSTER_MAX_HELPERS 4
#define CLUSTER_MASTER_NAME "relayd-test"
/* The link's WebSocket subprotocol: LINK_SUBPROTOCOL of cluster/link_frame.h
 * (the tests build without relayd's headers, so it is repeated here). */
#define CLUSTER_LINK_SUBPROTOCOL "relayd-link.2"
/* The previous version's name: an upgrade offering only it is refused. */
#define CLUSTER_LINK_PREVIOUS_SUBPROTOCOL "relayd-link.1"
/* The handshake's MAC labels (cluster/link_auth.c): relayd-link.2 kept the
 * handshake of relayd-link.1 byte for byte, labels included. */
#define CLUSTER_LINK_CLIENT_MAC_LABEL "relayd-link.1 client"
#define CLUSTER_LINK_SERVER_MAC_LABEL "relayd-link.1 server"
/* How long a cluster start may take (Redis, nodes registering). */
#define CLUSTER_READY_TIMEOUT_MS 20000

/* A helper process (redis-server, redis-sentinel, haproxy). It leads its own
 * process group: Redis forks for replication, and the whole group goes. */
struct cluster_process {
    pid_t pid; /* 0 when not running */
    int port;
    char name[32];
    char log_path[320];
    char config_path[320]; /* sentinel and haproxy; "" for redis-server */
    int replica_of;        /* redis-server: the master's port, 0 for a master */
};

/* Choices for one node; zero/NULL fields take the cluster's options. */
struct cluster_node_settings {
    const char *node_id;    /* default "node<N>" (N = index + 1) */
    bool standalone;        /* no cluster section at all (harness checks) */
    bool use_flags;         /* identity, port, Redis and secret as flags */
    const char *secret;     /* a secret of its own instead of the shared one */
    const char *tls_cert;   /* mutual TLS: default the generated node_id cert */
    const char *tls_key;    /* (cluster->options.tls) */
    const char *advertise;  /* default ws[s]://127.0.0.1:<cluster port> */
    int cluster_port;       /* 0: a free port */
    const char *extra_yaml; /* lines appended inside the cluster: section */
};

/* Cluster-wide choices (set between setup and the first start). */
struct cluster_options {
    bool tls;                    /* mutual TLS on the links (the PKI is made) */
    bool no_secret;              /* no shared secret: TLS alone authenticates */
    bool sentinel;               /* nodes find the master through the sentinels */
    const char *redis_password;  /* requirepass (and the nodes' password) */
    int heartbeat_interval;      /* seconds */
    int node_ttl;                /* seconds */
    int claim_ttl;               /* seconds */
    int link_ping_interval;      /* seconds */
    int link_timeout;            /* seconds */
    const char *stream_window;   /* e.g. "256KiB"; NULL: the relay's default */
    int redis_timeout_ms;        /* connect and command timeouts */
    struct harness_config relay; /* the single-node settings of every node */
};

struct cluster_node {
    struct harness_relay relay; /* pid, client port, admin port, url, log */
    struct cluster_node_settings settings;
    char node_id[65];
    int cluster_port;
    char advertise[160];
    char secret_file[320];
    char tls_cert[320];
    char tls_key[320];
    bool started;  /* started at least once (its directory exists) */
    bool expected; /* should be running: a crash of it fails the test */
    /* storage of the command-line flags (use_flags) */
    char flag_port[16];
    char flag_redis[64];
    char *flag_args[16];
    struct cluster *cluster;
};

/* A TCP proxy in a thread that records what its first client sent (the
 * replayed-handshake test puts it in front of a node's cluster port). */
struct cluster_proxy {
    bool running;
    int port;        /* where it listens */
    int target_port; /* where it connects */
    int listen_fd;
    int stop_pipe[2];
    pthread_t thread;
    pthread_mutex_t lock;
    unsigned char capture[64 * 1024]; /* first connection, client to server */
    size_t captured;
    int connections; /* accepted so far */
};

struct cluster {
    char directory[256];
    struct cluster_options options;
    struct cluster_process redis;   /* the master (alone or under sentinels) */
    struct cluster_process replica; /* sentinel setup */
    struct cluster_process sentinels[CLUSTER_SENTINELS];
    struct cluster_process haproxy;
    struct cluster_process helpers[CLUSTER_MAX_HELPERS]; /* cluster_spawn_helper */
    size_t helper_count;
    int haproxy_stats_port;
    char haproxy_url[64]; /* ws://127.0.0.1:<frontend>/ */
    struct cluster_node nodes[CLUSTER_MAX_NODES];
    size_t node_count;
    char secret_file[320]; /* the shared secret */
    /* the PKI (cluster_make_pki) */
    bool have_pki;
    char ca_cert[320], ca_key[320];
    char foreign_ca_cert[320], foreign_ca_key[320];
    struct cluster_proxy proxies[CLUSTER_MAX_PROXIES];
    size_t proxy_count;
    struct ws_client_connection **connections;
    size_t connection_count, connection_capacity;
    void *kept[64];
    size_t kept_count;
    bool finished; /* cluster_finish() ran: the test body completed */
};

/* ---- cmocka fixtures ---------------------------------------------------- */

/* Group setup/teardown: the process' ws_client context (as relay_test). */
int cluster_group_setup(void **state);
int cluster_group_teardown(void **state);

/* Per test: an empty cluster with default options in *state / stop all. */
int cluster_test_setup(void **state);
int cluster_test_teardown(void **state);

/* Last step of every test: asserts that every node that should run still
 * runs (a crash the test did not look for is a failure) and marks the test
 * complete (otherwise the teardown prints the processes' logs). */
void cluster_finish(struct cluster *cluster);

/* ---- processes ---------------------------------------------------------- */

/* Start redis-server on a free port (--save '' --appendonly no, the
 * options' password) and wait until it answers PING. Asserts. */
void cluster_start_redis(struct cluster *cluster);
/* Stop Redis (SIGKILL, or SIGTERM when graceful) and reap it. */
void cluster_stop_redis(struct cluster *cluster, bool graceful);
/* Start Redis again on the same port, empty. Asserts. */
void cluster_restart_redis(struct cluster *cluster);

/* Master, replica (replicating), three sentinels (quorum 2,
 * down-after-milliseconds 1000, failover-timeout 3000); waits until the
 * sentinels see the replica and each other. Asserts. */
void cluster_start_sentinels(struct cluster *cluster);
/* SIGKILL the current master (by the sentinels' view) and wait until the
 * sentinels name the other one. Returns the milliseconds it took. */
int64_t cluster_fail_over(struct cluster *cluster, int timeout_ms);
/* The master port the sentinels report (first that answers), or -1. */
int cluster_sentinel_master_port(struct cluster *cluster);

/* Start one node (settings may be NULL) and return its index. It is up
 * (/healthz) when this returns, not necessarily ready. Asserts. */
size_t cluster_start_node(struct cluster *cluster, const struct cluster_node_settings *settings);
/* Start count nodes with the default settings. */
void cluster_start_nodes(struct cluster *cluster, size_t count);
/* Start again a node that was stopped or killed (same settings, same
 * cluster port, new client ports). Asserts. */
void cluster_restart_node(struct cluster *cluster, size_t node);
/* Whether the node could start: like cluster_start_node but returns -1
 * instead of failing when relayd refuses to start (checked configuration). */
int cluster_try_start_node(struct cluster *cluster, const struct cluster_node_settings *settings);

/* SIGKILL the node and reap it. */
void cluster_kill_node(struct cluster *cluster, size_t node);
/* SIGTERM, wait; asserts exit status 0. */
void cluster_stop_node(struct cluster *cluster, size_t node);
/* Run any other program for the test (argv[0] looked up in PATH), output
 * into <name>.log; killed at teardown. Returns the process. Asserts. */
struct cluster_process *cluster_spawn_helper(struct cluster *cluster, const char *name,
                                             char *const argv[]);

/* SIGSTOP / SIGCONT a process (a node's relay.pid, cluster->redis.pid...). */
void cluster_suspend(pid_t pid);
void cluster_resume(pid_t pid);

/* HAProxy in TCP mode, round robin over the running nodes' client ports,
 * health checks GET /readyz on their admin ports every 500 ms. Waits until
 * every backend is UP. Asserts. */
void cluster_start_haproxy(struct cluster *cluster);
/* How many backends HAProxy reports UP (its stats CSV), or -1. */
int cluster_haproxy_backends_up(struct cluster *cluster);

/* ---- readiness and metrics ---------------------------------------------- */

/* GET /readyz: the status code, or -1. */
int cluster_readyz(struct cluster *cluster, size_t node);
/* Poll /readyz until it answers status (bounded); asserts. Returns ms. */
int64_t cluster_wait_readyz(struct cluster *cluster, size_t node, int status, int timeout_ms);
/* Every running node's /readyz is 200 (bounded); asserts. */
void cluster_wait_all_ready(struct cluster *cluster, int timeout_ms);

/* The sum of every series of metric name whose labels contain
 * label_filter (e.g. "reason=\"bad_secret\""; "" or NULL: all), on one
 * node; -1 when no such series exists or /metrics fails. */
double cluster_metric_sum(struct cluster *cluster, size_t node, const char *name,
                          const char *label_filter);
/* The same summed over every running node (missing series count 0). */
double cluster_metric_total(struct cluster *cluster, const char *name, const char *label_filter);
/* Poll until cluster_metric_sum >= minimum (bounded). Returns the last value. */
double cluster_wait_metric_at_least(struct cluster *cluster, size_t node, const char *name,
                                    const char *label_filter, double minimum, int timeout_ms);

/* ---- clients ------------------------------------------------------------ */

/* Connect to a node's client port (or any ws:// url); freed by teardown. */
struct ws_client_connection *cluster_connect(struct cluster *cluster, size_t node);
struct ws_client_connection *cluster_connect_url(struct cluster *cluster, const char *url);
/* Have teardown free a connection made elsewhere (ws_client_connect_start). */
void cluster_track(struct cluster *cluster, struct ws_client_connection *connection);
/* Free one connection now (drops the socket if open). */
void cluster_drop(struct cluster *cluster, struct ws_client_connection *connection);
/* Open count connections (url of each from urls[i]) in batches; asserts
 * they all open. */
void cluster_connect_many(struct cluster *cluster, const char *const *urls,
                          struct ws_client_connection **out, size_t count, int timeout_ms);

/* Receive the next message and check it is notification name (all fields
 * as relay_test_expect_notification checks them), within timeout_ms. */
void cluster_expect_notification(struct ws_client_connection *connection, const char *name,
                                 const char *rid, const char *reference, int timeout_ms);
/* NOTIFY_RENDEZVOUS for this peer, optionally preceded by one
 * NOT_READY (a node that asks the cluster first may send it). */
void cluster_expect_rendezvous(struct ws_client_connection *connection, const char *rid,
                               const char *reference, int timeout_ms);
/* END (reference null) and close 1000, within timeout_ms. */
void cluster_expect_end(struct ws_client_connection *connection, const char *rid, int timeout_ms);
/* A refused arriving peer (a third peer): END and close 1000, optionally
 * after one NOT_READY for its request (reference: its request_uuid). */
void cluster_expect_refused(struct ws_client_connection *connection, const char *rid,
                            const char *reference, int timeout_ms);
/* For window_ms: no NOTIFY_RENDEZVOUS and no data reaches this peer (a
 * NOT_READY, an END and a close are fine). Returns true when it was closed. */
bool cluster_expect_not_paired(struct ws_client_connection *connection, const char *rid,
                               int window_ms);

/* Pair: first connects to node first_node and gets NOT_READY, then second
 * on second_node; both get NOTIFY_RENDEZVOUS. */
void cluster_pair(struct cluster *cluster, const char *rid, size_t first_node,
                  struct relay_test_peer *first, size_t second_node,
                  struct relay_test_peer *second);
/* The same with client URLs (e.g. HAProxy's). */
void cluster_pair_urls(struct cluster *cluster, const char *rid, const char *first_url,
                       struct relay_test_peer *first, const char *second_url,
                       struct relay_test_peer *second);

/* Zeroed memory freed at teardown. */
void *cluster_alloc(struct cluster *cluster, size_t size);

/* ---- mutual TLS --------------------------------------------------------- */

/* Make the cluster CA and a foreign CA in the cluster's directory (openssl
 * command line). Asserts. */
void cluster_make_pki(struct cluster *cluster);
/* A certificate with CN and SAN (DNS name, plus IP 127.0.0.1) = name,
 * signed by the cluster CA or the foreign one, for server and client use.
 * Writes the paths (in the cluster's directory). Asserts. */
void cluster_make_certificate(struct cluster *cluster, const char *name, bool foreign,
                              char *cert_path, char *key_path, size_t path_size);

/* ---- raw connections to a node's cluster port --------------------------- */

struct cluster_raw_link {
    int fd;
    SSL_CTX *tls_context;
    SSL *tls;
    int http_status;      /* of the upgrade; 0: no response */
    char subprotocol[64]; /* Sec-WebSocket-Protocol of the response */
    char error[160];      /* why it failed */
};

/* TLS options of a raw link (all NULL: plain ws://). */
struct cluster_raw_tls {
    const char *ca;   /* verify the node's certificate against this (NULL: skip) */
    const char *cert; /* client certificate and key (NULL: none) */
    const char *key;
};

/* Connect to 127.0.0.1:port, TLS when tls is not NULL, send the upgrade for
 * /cluster (subprotocol NULL: no header) and read the response head.
 * Returns 0 when the answer was 101, else -1 (link->error says why; the
 * link is closed by cluster_raw_link_close in both cases). */
int cluster_raw_link_open(struct cluster_raw_link *link, int port, const char *subprotocol,
                          const struct cluster_raw_tls *tls, int timeout_ms);
/* Send bytes as they are (a captured stream). Returns 0 or -1. */
int cluster_raw_link_write(struct cluster_raw_link *link, const void *data, size_t length);
/* One masked frame (opcode 1 text, 2 binary, 8 close). Returns 0 or -1. */
int cluster_raw_link_send(struct cluster_raw_link *link, int opcode, const void *data,
                          size_t length);
/* Read one frame: 0 with *opcode (FIN bit and opcode) and a malloc'd
 * payload; -1 on timeout; -2 when the connection ended (EOF, reset, TLS
 * alert). */
int cluster_raw_link_read_frame(struct cluster_raw_link *link, int timeout_ms, int *opcode,
                                unsigned char **payload, size_t *length);
/* Wait until the node closes the connection (close frame or EOF), reading
 * and counting what arrives meanwhile. Returns 0 when closed, -1 when it
 * stayed open for timeout_ms. *data_frames: data frames seen meanwhile. */
int cluster_raw_link_wait_closed(struct cluster_raw_link *link, int timeout_ms, int *data_frames);
void cluster_raw_link_close(struct cluster_raw_link *link);

/* What happened to a link attempt that is never authenticated. */
enum cluster_probe_result {
    CLUSTER_PROBE_NO_CONNECTION, /* TCP or TLS handshake failed */
    CLUSTER_PROBE_REFUSED,       /* an HTTP answer other than 101, or closed before one */
    CLUSTER_PROBE_CLOSED,        /* 101, then closed before any data frame */
    CLUSTER_PROBE_HELLO,         /* 101 and a first data frame (the node's HELLO) */
    CLUSTER_PROBE_SILENT,        /* 101 and nothing within the time */
};

/* Open a raw link and read for up to timeout_ms. */
enum cluster_probe_result cluster_probe_link(int port, const char *subprotocol,
                                             const struct cluster_raw_tls *tls, int timeout_ms);
const char *cluster_probe_name(enum cluster_probe_result result);

/* ---- the link handshake (cluster/link-protocol.md) ---------------------- */

enum cluster_link_type {
    CLUSTER_LINK_HELLO = 1,
    CLUSTER_LINK_AUTH = 2,
    CLUSTER_LINK_AUTH_OK = 3,
    CLUSTER_LINK_OPEN = 4,
    CLUSTER_LINK_PAIRED = 5,
    CLUSTER_LINK_GOAWAY = 13,
};

struct cluster_link_hello { /* what the acceptor announced */
    char node_id[65];
    uint64_t epoch;
    unsigned char nonce[32];
};

struct cluster_link_auth { /* what the dialer sent */
    char node_id[65];
    uint64_t epoch;
    unsigned char nonce[32];
    unsigned char mac[32];
};

/* Send one link frame (8-byte header + payload) as one binary message. */
int cluster_link_send_frame(struct cluster_raw_link *link, int type, int flags, uint32_t stream_id,
                            const void *payload, size_t length);
/* Read the acceptor's HELLO. Returns 0, or -1 (another frame, closed,
 * timeout) with link->error set. */
int cluster_link_read_hello(struct cluster_raw_link *link, int timeout_ms,
                            struct cluster_link_hello *hello);
/* An AUTH payload answering hello as node_id (fresh nonce, MAC with secret;
 * secret NULL: 32 zero bytes). Writes what was sent into *auth; returns the
 * payload length. */
size_t cluster_link_make_auth(unsigned char *payload, size_t size,
                              const struct cluster_link_hello *hello, const char *node_id,
                              uint64_t epoch, const char *secret, struct cluster_link_auth *auth);
/* The answer to AUTH: 1 = AUTH_OK whose server MAC verifies (any MAC when
 * secret is NULL), 0 = closed without AUTH_OK (GOAWAY allowed), -1 =
 * nothing within timeout_ms, -2 = a wrong MAC or another frame. */
int cluster_link_await_auth_ok(struct cluster_raw_link *link, int timeout_ms,
                               const struct cluster_link_hello *hello,
                               const struct cluster_link_auth *auth, const char *secret);
/* The cluster's shared secret as the nodes read it (no trailing newline). */
void cluster_shared_secret(struct cluster *cluster, char *out, size_t out_size);

/* ---- capturing proxy ---------------------------------------------------- */

/* A proxy to 127.0.0.1:target_port on a free port; returns its index.
 * Asserts. */
size_t cluster_start_proxy(struct cluster *cluster, int target_port);
/* Close every connection the proxy carries now (new ones still pass): a
 * link dropped between two live nodes. */
void cluster_proxy_cut(struct cluster *cluster, size_t proxy);
/* Copy of what the proxy's first client sent so far (malloc'd, freed at
 * teardown); *length 0 when none connected. */
unsigned char *cluster_proxy_capture(struct cluster *cluster, size_t proxy, size_t *length);

/* ---- small utilities ---------------------------------------------------- */

/* Run a Redis command (arguments as strings) against 127.0.0.1:port and
 * return its reply as text (simple strings and integers as is, bulk strings
 * as is, arrays as their elements joined by '\n', errors as "-ERR ..."),
 * malloc'd; NULL on connection failure or timeout. */
char *cluster_redis_command(int port, const char *password, int timeout_ms,
                            const char *const *argv);

/* Sleep while keeping the client loop turning. */
void cluster_service(int milliseconds);

#endif

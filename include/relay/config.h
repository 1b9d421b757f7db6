/*
 * config.h - the relay's effective configuration.
 *
 * One struct holds every setting. It is filled in three layers, each
 * overriding the one before: built-in defaults (config_set_defaults), the
 * YAML file (config_load_file, node/config.c) and command-line flags
 * (node/cli.c). Every other module reads the settings from here and nothing
 * else parses configuration.
 */
#ifndef RELAY_CONFIG_H
#define RELAY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "relay/log.h"

#define RELAY_DEFAULT_PORT 11060
#define RELAY_DEFAULT_ADMIN_PORT 11061

/* The event loop that serves every connection (node/server.c). */
enum relay_event_loop {
    RELAY_EVENT_LOOP_EPOLL, /* lws's libev plugin on epoll: each turn costs O(ready descriptors) */
    RELAY_EVENT_LOOP_POLL,  /* lws's own poll() loop: each turn costs O(all descriptors) */
};

struct relay_tls_config {
    char *cert_file;  /* NULL: plain ws:// */
    char *key_file;   /* required when cert_file is set */
    char *chain_file; /* optional intermediate certificates (PEM) */
};

/* The federated cluster (cluster/). Cluster mode is on when a Redis master
 * (redis_host) or a Sentinel master name (sentinel_master) is configured;
 * otherwise the node is a standalone relay and nothing here is used. */
struct relay_cluster_config {
    char *node_id;       /* NULL: "<hostname>-<6 random hex>", chosen at start */
    char *advertise_url; /* ws[s]://host:port of the cluster port as peers reach it;
                            NULL: derived from bind and port */
    char *bind_address;  /* cluster listener */
    int port;            /* cluster listener port (11062) */
    char *tls_cert_file; /* this node's certificate (server and client role) */
    char *tls_key_file;
    char *tls_ca_file; /* cluster CA: peers' certificates must chain to it */
    char *secret;      /* shared secret for the HMAC challenge-response */
    char *secret_file; /* or read from this file (trailing newline stripped) */

    char *redis_host; /* NULL: standalone */
    int redis_port;
    char *redis_password;
    int redis_database;
    char **sentinels;      /* NULL-terminated list of "host:port", or NULL */
    char *sentinel_master; /* master name to ask the sentinels for */
    char *key_prefix;      /* "msr:" */
    int redis_connect_timeout_ms;
    int redis_command_timeout_ms;

    int heartbeat_interval_seconds; /* node key refresh */
    int node_ttl_seconds;           /* node key TTL: dead after this without heartbeat */
    int claim_ttl_seconds;          /* rdv key TTL, refreshed while the id is in use */

    int link_ping_interval_seconds;  /* link keepalive */
    int link_timeout_seconds;        /* link closed after this long without any frame */
    size_t link_stream_window_bytes; /* per-stream credit window */
};

struct relay_config {
    /* listen: the client-facing WebSocket port */
    char *bind_address; /* IPv4 or IPv6 literal; "0.0.0.0" / "::" for all */
    int port;
    struct relay_tls_config tls;

    /* admin: the HTTP port with /healthz, /readyz, /metrics */
    bool admin_enabled;
    char *admin_bind_address;
    int admin_port;

    /* limits */
    size_t max_message_bytes; /* after joining fragments; larger -> 1009 */
    int max_connections; /* concurrent client connections; over -> 1013; 0: what the fd limit allows
                          */
    int pending_timeout_seconds; /* 0 = a pending peer may wait forever */
    int handshake_timeout_seconds;
    size_t send_queue_high_water; /* stop reading the partner above this */
    size_t send_queue_low_water;  /* resume reading the partner below this */
    size_t rx_buffer_bytes;       /* lws receive chunk size */

    /* keepalive: WebSocket ping after ping_interval of silence, close when
     * no pong arrives within ping_timeout */
    int ping_interval_seconds;
    int ping_timeout_seconds;

    /* logging */
    enum log_level log_level;
    char *log_file;             /* NULL: stderr */
    int stats_interval_seconds; /* 0 = no periodic stats line */

    /* shutdown */
    int shutdown_timeout_seconds;

    /* server */
    enum relay_event_loop event_loop;

    struct relay_cluster_config cluster;
};

/* True when the cluster section makes this node a cluster member. */
bool config_cluster_enabled(const struct relay_config *config);

/* Fill every field with its built-in default (relayd with no arguments
 * serves ws://127.0.0.1:11060, admin on 127.0.0.1:11061). */
void config_set_defaults(struct relay_config *config);

/* Load a YAML file over the current values. On error returns -1 and writes
 * "file:line:column: message" into err. Unknown keys, wrong types and
 * out-of-range values are errors. */
int config_load_file(struct relay_config *config, const char *path, char *err, size_t err_size);

/* Same, from a string (name is used in error messages). */
int config_load_string(struct relay_config *config, const char *yaml, size_t length,
                       const char *name, char *err, size_t err_size);

/* Cross-field checks after all layers applied (key without cert, low water
 * above high water, ...). Returns -1 with a message in err. */
int config_validate(const struct relay_config *config, char *err, size_t err_size);

/* Print the effective configuration as YAML that config_load_file accepts. */
void config_print(const struct relay_config *config, FILE *out);

/* "epoll" or "poll" as enum relay_event_loop, or -1 for any other name. */
int config_event_loop_from_name(const char *name);

/* The name config_event_loop_from_name reads back. */
const char *config_event_loop_name(enum relay_event_loop loop);

/* Replace a string setting (frees the old value, copies the new one). */
void config_set_string(char **field, const char *value);

void config_free(struct relay_config *config);

#endif

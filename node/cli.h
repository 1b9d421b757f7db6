/*
 * cli.h - command-line flags, the last configuration layer.
 *
 * cli_parse only reads argv into struct cli_options; cli_apply then lays the
 * given flags over a configuration that already holds the defaults and the
 * YAML file, so a flag always wins over the file.
 */
#ifndef RELAY_CLI_H
#define RELAY_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "relay/config.h"

struct cli_options {
    const char *config_file;  /* --config FILE (-c); NULL: built-in defaults only */
    const char *bind_address; /* --bind ADDR; NULL when not given */
    int port;                 /* --port N, -1 when not given */
    int admin_port;           /* --admin-port N, -1 when not given */
    int log_level;            /* --log-level LEVEL, -1 when not given */
    const char *event_loop;   /* --event-loop LOOP, as given; NULL when not given */
    bool check_config;        /* --check-config */
    bool show_version;        /* --version (-V) */
    bool show_help;           /* --help (-h) */

    /* Cluster flags, so several nodes can share one file (or none). Each is
     * NULL or -1 when not given. */
    const char *node_id;             /* --node-id ID (cluster.node_id) */
    int cluster_port;                /* --cluster-port N (cluster.port) */
    const char *advertise_url;       /* --advertise URL (cluster.advertise) */
    const char *redis_address;       /* --redis HOST:PORT, as given (cluster.redis.host/port) */
    const char *cluster_secret_file; /* --cluster-secret-file FILE (cluster.secret_file) */
};

/* Fills options from argv (strings point into argv). Returns 0, or -1 with
 * a message naming the offending flag in err. Can be called repeatedly. */
int cli_parse(int argc, char **argv, struct cli_options *options, char *err, size_t err_size);

/* Overrides config with every flag that was given. Returns 0, or -1 with a
 * message in err. */
int cli_apply(const struct cli_options *options, struct relay_config *config, char *err,
              size_t err_size);

/* One line per flag. */
void cli_print_usage(FILE *out, const char *program);

/* Value syntax shared by the configuration file and the flags, implemented
 * in config.c so that both accept exactly the same spellings. */

/* "host:port": a DNS name or IPv4 literal, or an IPv6 literal in brackets
 * ("[::1]:6379"), and a port 1..65535. Returns 0 and fills host (without
 * brackets) and port when they are not NULL, or -1. */
int config_host_port_parse(const char *text, char *host, size_t host_size, int *port);

/* A DNS name (letters, digits, '-', '_' in dot-separated labels) or an IP
 * literal. */
bool config_host_is_valid(const char *text);

/* "ws://host:port" or "wss://host:port", host as in config_host_port_parse. */
bool config_ws_url_is_valid(const char *text);

/* 1..64 letters, digits, '.', '_' or '-'. */
bool config_node_id_is_valid(const char *text);

#endif

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
    int log_level;            /* --log-level LEVEL, -1 when not given */
    bool check_config;        /* --check-config */
    bool show_version;        /* --version (-V) */
    bool show_help;           /* --help (-h) */
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

#endif

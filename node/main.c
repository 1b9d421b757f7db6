/*
 * main.c - relayd's entry point: configuration layers, then the server.
 *
 * Settings come from the built-in defaults, then the YAML file (--config),
 * then command-line flags; the result is validated once. --check-config
 * stops there and prints the effective configuration.
 */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "relay/config.h"
#include "relay/log.h"
#include "server.h"

static int main_load_config(const struct cli_options *options, struct relay_config *config)
{
    char error[512];

    config_set_defaults(config);
    if (options->config_file != NULL &&
        config_load_file(config, options->config_file, error, sizeof(error)) != 0) {
        fprintf(stderr, "relayd: %s\n", error);
        return -1;
    }
    if (cli_apply(options, config, error, sizeof(error)) != 0 ||
        config_validate(config, error, sizeof(error)) != 0) {
        fprintf(stderr, "relayd: %s\n", error);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct cli_options options;
    struct relay_config config;
    char error[512];

    if (cli_parse(argc, argv, &options, error, sizeof(error)) != 0) {
        fprintf(stderr, "relayd: %s\n", error);
        fprintf(stderr, "Try 'relayd --help'.\n");
        return 2;
    }
    if (options.show_help) {
        cli_print_usage(stdout, "relayd");
        return 0;
    }
    if (options.show_version) {
        printf("relayd %s\n", RELAYD_VERSION);
        return 0;
    }
    if (main_load_config(&options, &config) != 0) {
        config_free(&config);
        return 1;
    }
    if (options.check_config) {
        config_print(&config, stdout);
        config_free(&config);
        return 0;
    }
    if (log_open(config.log_level, config.log_file) != 0) {
        fprintf(stderr, "relayd: cannot open log file %s\n", config.log_file);
        config_free(&config);
        return 1;
    }
    log_attach_lws(config.log_level);
    int status = server_run(&config);
    log_close();
    config_free(&config);
    return status;
}

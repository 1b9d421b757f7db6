/*
 * cli.c - command-line flags: parsing, applying over the file, usage text.
 *
 * The flags are one table, cli_flags[]: getopt_long's option array, the
 * short-option string, the usage text and the flag names in error messages
 * are all derived from it, so a new flag is a table row plus a case in
 * cli_store_flag (and one in cli_apply when it overrides a setting).
 *
 * getopt's own messages are turned off (opterr = 0) so every error comes
 * back through err and main decides how to print it. Values are checked
 * here, where the flag name is still known, rather than left to
 * config_validate.
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

enum cli_flag_id {
    CLI_FLAG_CONFIG = 'c',
    CLI_FLAG_VERSION = 'V',
    CLI_FLAG_HELP = 'h',
    /* Flags without a short form take ids above every character. */
    CLI_FLAG_BIND = 256,
    CLI_FLAG_PORT,
    CLI_FLAG_ADMIN_PORT,
    CLI_FLAG_LOG_LEVEL,
    CLI_FLAG_EVENT_LOOP,
    CLI_FLAG_NODE_ID,
    CLI_FLAG_CLUSTER_PORT,
    CLI_FLAG_ADVERTISE,
    CLI_FLAG_REDIS,
    CLI_FLAG_CLUSTER_SECRET_FILE,
    CLI_FLAG_CHECK_CONFIG,
};

/* Room for a DNS name (253) or an IPv6 literal. */
#define CLI_HOST_MAX 256

struct cli_flag {
    const char *name;
    int id;
    const char *argument; /* NULL: the flag takes no value */
    const char *help;
};

static const struct cli_flag cli_flags[] = {
    {"config", CLI_FLAG_CONFIG, "FILE", "load settings from a YAML file (see conf/relayd.yaml)"},
    {"bind", CLI_FLAG_BIND, "ADDR", "listen on this IPv4 or IPv6 address (listen.bind)"},
    {"port", CLI_FLAG_PORT, "N", "listen on this port, 1..65535 (listen.port)"},
    {"admin-port", CLI_FLAG_ADMIN_PORT, "N", "serve /healthz, /readyz, /metrics here (admin.port)"},
    {"log-level", CLI_FLAG_LOG_LEVEL, "LEVEL", "error, warn, info or debug (log.level)"},
    {"event-loop", CLI_FLAG_EVENT_LOOP, "LOOP", "epoll or poll (server.event_loop)"},
    {"node-id", CLI_FLAG_NODE_ID, "ID",
     "cluster node name, 1..64 of A-Z a-z 0-9 . _ - (cluster.node_id)"},
    {"cluster-port", CLI_FLAG_CLUSTER_PORT, "N",
     "listen for other nodes on this port (cluster.port)"},
    {"advertise", CLI_FLAG_ADVERTISE, "URL",
     "ws[s]://host:port where peers reach this node (cluster.advertise)"},
    {"redis", CLI_FLAG_REDIS, "HOST:PORT",
     "join a cluster through this Redis, IPv6 as [::1]:6379 (cluster.redis)"},
    {"cluster-secret-file", CLI_FLAG_CLUSTER_SECRET_FILE, "FILE",
     "read the shared cluster secret from FILE (cluster.secret_file)"},
    {"check-config", CLI_FLAG_CHECK_CONFIG, NULL,
     "validate the configuration, print it as YAML and exit"},
    {"version", CLI_FLAG_VERSION, NULL, "print the version and exit"},
    {"help", CLI_FLAG_HELP, NULL, "print this help and exit"},
};

#define CLI_FLAG_COUNT (sizeof(cli_flags) / sizeof(cli_flags[0]))

static int cli_error(char *err, size_t err_size, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

static int cli_error(char *err, size_t err_size, const char *format, ...)
{
    if (err == NULL || err_size == 0)
        return -1;
    va_list args;
    va_start(args, format);
    vsnprintf(err, err_size, format, args);
    va_end(args);
    return -1;
}

static const struct cli_flag *cli_find_flag(int id)
{
    for (size_t i = 0; i < CLI_FLAG_COUNT; i++)
        if (cli_flags[i].id == id)
            return &cli_flags[i];
    return NULL;
}

static bool cli_flag_has_short_form(const struct cli_flag *flag)
{
    return flag->id < 256;
}

/* "+" stops at the first argument that is not a flag, so a stray argument
 * is reported where it stands instead of after getopt reorders argv; ":"
 * makes a missing value distinguishable from an unknown flag. */
static void cli_build_short_options(char *buffer, size_t size)
{
    size_t used = (size_t)snprintf(buffer, size, "+:");
    for (size_t i = 0; i < CLI_FLAG_COUNT && used + 3 < size; i++) {
        if (!cli_flag_has_short_form(&cli_flags[i]))
            continue;
        buffer[used++] = (char)cli_flags[i].id;
        if (cli_flags[i].argument != NULL)
            buffer[used++] = ':';
    }
    buffer[used] = '\0';
}

static void cli_build_long_options(struct option *options)
{
    for (size_t i = 0; i < CLI_FLAG_COUNT; i++) {
        options[i] = (struct option){
            cli_flags[i].name, cli_flags[i].argument != NULL ? required_argument : no_argument,
            NULL, cli_flags[i].id};
    }
    options[CLI_FLAG_COUNT] = (struct option){NULL, 0, NULL, 0};
}

static bool cli_address_is_valid(const char *text)
{
    unsigned char address[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, text, address) == 1 || inet_pton(AF_INET6, text, address) == 1;
}

/* Digits only: strtol would accept spaces, signs and "0x". */
static int cli_parse_port(const char *text)
{
    int port = 0;
    if (text[0] == '\0')
        return -1;
    for (const char *cursor = text; *cursor != '\0'; cursor++) {
        if (*cursor < '0' || *cursor > '9' || port > 65535)
            return -1;
        port = port * 10 + (*cursor - '0');
    }
    return port >= 1 && port <= 65535 ? port : -1;
}

static int cli_report_event_loop(const char *value, char *err, size_t err_size)
{
    return cli_error(err, err_size, "--event-loop: unknown event loop \"%s\" (epoll or poll)",
                     value);
}

static int cli_report_node_id(const char *value, char *err, size_t err_size)
{
    return cli_error(err, err_size,
                     "--node-id: \"%s\" is not a node id (1..64 letters, digits, '.', '_' or '-')",
                     value);
}

static int cli_report_advertise(const char *value, char *err, size_t err_size)
{
    return cli_error(err, err_size, "--advertise: \"%s\" is not ws://host:port or wss://host:port",
                     value);
}

static int cli_report_redis(const char *value, char *err, size_t err_size)
{
    return cli_error(err, err_size,
                     "--redis: \"%s\" is not HOST:PORT (a host name or IP address and a port "
                     "1..65535; IPv6 as [::1]:6379)",
                     value);
}

static int cli_store_cluster_flag(int id, const char *value, struct cli_options *options, char *err,
                                  size_t err_size)
{
    switch (id) {
    case CLI_FLAG_NODE_ID:
        if (!config_node_id_is_valid(value))
            return cli_report_node_id(value, err, err_size);
        options->node_id = value;
        return 0;
    case CLI_FLAG_CLUSTER_PORT:
        options->cluster_port = cli_parse_port(value);
        if (options->cluster_port < 0)
            return cli_error(err, err_size,
                             "--cluster-port: \"%s\" is not a port number (1..65535)", value);
        return 0;
    case CLI_FLAG_ADVERTISE:
        if (!config_ws_url_is_valid(value))
            return cli_report_advertise(value, err, err_size);
        options->advertise_url = value;
        return 0;
    case CLI_FLAG_REDIS:
        if (config_host_port_parse(value, NULL, 0, NULL) != 0)
            return cli_report_redis(value, err, err_size);
        options->redis_address = value;
        return 0;
    case CLI_FLAG_CLUSTER_SECRET_FILE:
        if (value[0] == '\0')
            return cli_error(err, err_size, "--cluster-secret-file: the file name is empty");
        options->cluster_secret_file = value;
        return 0;
    }
    return cli_error(err, err_size, "internal error: unhandled flag %d", id);
}

static int cli_store_flag(int id, const char *value, struct cli_options *options, char *err,
                          size_t err_size)
{
    switch (id) {
    case CLI_FLAG_CONFIG:
        if (value[0] == '\0')
            return cli_error(err, err_size, "--config: the file name is empty");
        options->config_file = value;
        return 0;
    case CLI_FLAG_BIND:
        if (!cli_address_is_valid(value))
            return cli_error(err, err_size, "--bind: \"%s\" is not an IPv4 or IPv6 address", value);
        options->bind_address = value;
        return 0;
    case CLI_FLAG_PORT:
        options->port = cli_parse_port(value);
        if (options->port < 0)
            return cli_error(err, err_size, "--port: \"%s\" is not a port number (1..65535)",
                             value);
        return 0;
    case CLI_FLAG_ADMIN_PORT:
        options->admin_port = cli_parse_port(value);
        if (options->admin_port < 0)
            return cli_error(err, err_size, "--admin-port: \"%s\" is not a port number (1..65535)",
                             value);
        return 0;
    case CLI_FLAG_LOG_LEVEL:
        options->log_level = log_level_from_name(value);
        if (options->log_level < 0)
            return cli_error(err, err_size,
                             "--log-level: unknown level \"%s\" (error, warn, info or debug)",
                             value);
        return 0;
    case CLI_FLAG_EVENT_LOOP:
        if (config_event_loop_from_name(value) < 0)
            return cli_report_event_loop(value, err, err_size);
        options->event_loop = value;
        return 0;
    case CLI_FLAG_CHECK_CONFIG:
        options->check_config = true;
        return 0;
    case CLI_FLAG_VERSION:
        options->show_version = true;
        return 0;
    case CLI_FLAG_HELP:
        options->show_help = true;
        return 0;
    case CLI_FLAG_NODE_ID:
    case CLI_FLAG_CLUSTER_PORT:
    case CLI_FLAG_ADVERTISE:
    case CLI_FLAG_REDIS:
    case CLI_FLAG_CLUSTER_SECRET_FILE:
        return cli_store_cluster_flag(id, value, options, err, err_size);
    }
    return cli_error(err, err_size, "internal error: unhandled flag %d", id);
}

/* getopt returned '?'. A known flag in optopt can only mean a value given to
 * a flag that takes none ("--help=x"); any other character is an unknown
 * short flag; 0 is an unknown or ambiguous long flag, which glibc has
 * already stepped past in argv. */
static int cli_report_bad_flag(char **argv, char *err, size_t err_size)
{
    const struct cli_flag *flag = cli_find_flag(optopt);
    if (flag != NULL)
        return cli_error(err, err_size, "--%s does not take a value", flag->name);
    if (optopt != 0)
        return cli_error(err, err_size, "unknown option -%c (see --help)", optopt);
    const char *argument = argv[optind - 1];
    size_t length = strcspn(argument, "=");
    return cli_error(err, err_size, "unknown or ambiguous option %.*s (see --help)", (int)length,
                     argument);
}

static int cli_report_missing_value(char *err, size_t err_size)
{
    const struct cli_flag *flag = cli_find_flag(optopt);
    if (flag == NULL)
        return cli_error(err, err_size, "an option is missing its value");
    return cli_error(err, err_size, "--%s needs a value (%s)", flag->name, flag->argument);
}

static void cli_reset_options(struct cli_options *options)
{
    *options =
        (struct cli_options){.port = -1, .admin_port = -1, .log_level = -1, .cluster_port = -1};
}

int cli_parse(int argc, char **argv, struct cli_options *options, char *err, size_t err_size)
{
    struct option long_options[CLI_FLAG_COUNT + 1];
    char short_options[2 * CLI_FLAG_COUNT + 3];
    cli_build_long_options(long_options);
    cli_build_short_options(short_options, sizeof(short_options));
    cli_reset_options(options);
    if (argc < 1)
        return 0;
    opterr = 0;
    /* 0 rather than 1 makes glibc reinitialise completely, including its
     * position inside a group of short flags left by an earlier call. */
    optind = 0;
    for (;;) {
        int id = getopt_long(argc, argv, short_options, long_options, NULL);
        if (id == -1)
            break;
        if (id == '?')
            return cli_report_bad_flag(argv, err, err_size);
        if (id == ':')
            return cli_report_missing_value(err, err_size);
        if (cli_store_flag(id, optarg, options, err, err_size) != 0)
            return -1;
    }
    if (optind < argc)
        return cli_error(err, err_size, "unexpected argument \"%s\" (see --help)", argv[optind]);
    return 0;
}

/* The cluster flags' counterpart of cli_apply's checks. */
static int cli_check_cluster_options(const struct cli_options *options, char *redis_host,
                                     int *redis_port, char *err, size_t err_size)
{
    if (options->node_id != NULL && !config_node_id_is_valid(options->node_id))
        return cli_report_node_id(options->node_id, err, err_size);
    if (options->cluster_port != -1 && (options->cluster_port < 1 || options->cluster_port > 65535))
        return cli_error(err, err_size, "--cluster-port: %d is out of range (1..65535)",
                         options->cluster_port);
    if (options->advertise_url != NULL && !config_ws_url_is_valid(options->advertise_url))
        return cli_report_advertise(options->advertise_url, err, err_size);
    if (options->redis_address != NULL &&
        config_host_port_parse(options->redis_address, redis_host, CLI_HOST_MAX, redis_port) != 0)
        return cli_report_redis(options->redis_address, err, err_size);
    if (options->cluster_secret_file != NULL && options->cluster_secret_file[0] == '\0')
        return cli_error(err, err_size, "--cluster-secret-file: the file name is empty");
    return 0;
}

static void cli_clear_sentinels(struct relay_cluster_config *cluster)
{
    for (char **item = cluster->sentinels; item != NULL && *item != NULL; item++)
        free(*item);
    free(cluster->sentinels);
    cluster->sentinels = NULL;
    config_set_string(&cluster->sentinel_master, NULL);
}

/* A flag wins over the file, including over the file's other way of saying
 * the same thing: --redis replaces Sentinel, --cluster-secret-file replaces
 * an inline secret. */
static void cli_apply_cluster_options(const struct cli_options *options, const char *redis_host,
                                      int redis_port, struct relay_cluster_config *cluster)
{
    if (options->node_id != NULL)
        config_set_string(&cluster->node_id, options->node_id);
    if (options->cluster_port != -1)
        cluster->port = options->cluster_port;
    if (options->advertise_url != NULL)
        config_set_string(&cluster->advertise_url, options->advertise_url);
    if (options->redis_address != NULL) {
        config_set_string(&cluster->redis_host, redis_host);
        cluster->redis_port = redis_port;
        cli_clear_sentinels(cluster);
    }
    if (options->cluster_secret_file != NULL) {
        config_set_string(&cluster->secret_file, options->cluster_secret_file);
        config_set_string(&cluster->secret, NULL);
    }
}

int cli_apply(const struct cli_options *options, struct relay_config *config, char *err,
              size_t err_size)
{
    /* The options may have been filled by code rather than cli_parse, so the
     * values are checked again before they reach the configuration. */
    if (options->bind_address != NULL && !cli_address_is_valid(options->bind_address))
        return cli_error(err, err_size, "--bind: \"%s\" is not an IPv4 or IPv6 address",
                         options->bind_address);
    if (options->port != -1 && (options->port < 1 || options->port > 65535))
        return cli_error(err, err_size, "--port: %d is out of range (1..65535)", options->port);
    if (options->admin_port != -1 && (options->admin_port < 1 || options->admin_port > 65535))
        return cli_error(err, err_size, "--admin-port: %d is out of range (1..65535)",
                         options->admin_port);
    if (options->log_level != -1 &&
        (options->log_level < LOG_LEVEL_ERROR || options->log_level > LOG_LEVEL_DEBUG))
        return cli_error(err, err_size, "--log-level: %d is not a log level", options->log_level);
    if (options->event_loop != NULL && config_event_loop_from_name(options->event_loop) < 0)
        return cli_report_event_loop(options->event_loop, err, err_size);
    char redis_host[CLI_HOST_MAX];
    int redis_port = 0;
    if (cli_check_cluster_options(options, redis_host, &redis_port, err, err_size) != 0)
        return -1;
    if (options->bind_address != NULL)
        config_set_string(&config->bind_address, options->bind_address);
    if (options->port != -1)
        config->port = options->port;
    if (options->admin_port != -1)
        config->admin_port = options->admin_port;
    if (options->log_level != -1)
        config->log_level = (enum log_level)options->log_level;
    if (options->event_loop != NULL)
        config->event_loop =
            (enum relay_event_loop)config_event_loop_from_name(options->event_loop);
    cli_apply_cluster_options(options, redis_host, redis_port, &config->cluster);
    return 0;
}

void cli_print_usage(FILE *out, const char *program)
{
    fprintf(out,
            "Usage: %s [options]\n"
            "\n"
            "A Moneysocket relay. With no arguments %s serves ws://127.0.0.1:%d\n"
            "(admin HTTP on 127.0.0.1:%d) with built-in defaults. Flags override the\n"
            "configuration file.\n"
            "\n"
            "Options:\n",
            program, program, RELAY_DEFAULT_PORT, RELAY_DEFAULT_ADMIN_PORT);
    for (size_t i = 0; i < CLI_FLAG_COUNT; i++) {
        const struct cli_flag *flag = &cli_flags[i];
        char name[48];
        snprintf(name, sizeof(name), "--%s%s%s", flag->name, flag->argument != NULL ? " " : "",
                 flag->argument != NULL ? flag->argument : "");
        if (cli_flag_has_short_form(flag))
            fprintf(out, "  -%c, %-26s %s\n", flag->id, name, flag->help);
        else
            fprintf(out, "      %-26s %s\n", name, flag->help);
    }
}

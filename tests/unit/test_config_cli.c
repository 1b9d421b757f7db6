/*
 * test_config_cli.c - unit tests of node/cli.c: every flag in its long,
 * short and "=value" forms, every kind of bad command line with its exact
 * message, repeated parsing, flags overriding a loaded file, and the usage
 * text.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli.h"
#include "relay/config.h"

#define ERROR_SIZE 256

static int parse_vector(char **argv, struct cli_options *options, char *err)
{
    int argc = 0;
    while (argv[argc] != NULL)
        argc++;
    return cli_parse(argc, argv, options, err, ERROR_SIZE);
}

/* argv as getopt wants it: writable, NULL-terminated, program name first. */
#define PARSE(options, err, ...) parse_vector((char *[]){"relayd", __VA_ARGS__, NULL}, options, err)

static void assert_parse_error(const char *expected, char **argv)
{
    struct cli_options options;
    char err[ERROR_SIZE] = "";
    assert_int_equal(parse_vector(argv, &options, err), -1);
    assert_string_equal(err, expected);
}

#define ASSERT_PARSE_ERROR(expected, ...)                                                          \
    assert_parse_error(expected, (char *[]){"relayd", __VA_ARGS__, NULL})

static void test_no_arguments(void **state)
{
    struct cli_options options;
    char err[ERROR_SIZE] = "";
    char *argv[] = {"relayd", NULL};
    assert_int_equal(cli_parse(1, argv, &options, err, sizeof(err)), 0);
    assert_null(options.config_file);
    assert_null(options.bind_address);
    assert_int_equal(options.port, -1);
    assert_int_equal(options.log_level, -1);
    assert_null(options.event_loop);
    assert_false(options.check_config);
    assert_false(options.show_version);
    assert_false(options.show_help);
    assert_null(options.node_id);
    assert_int_equal(options.cluster_port, -1);
    assert_null(options.advertise_url);
    assert_null(options.redis_address);
    assert_null(options.cluster_secret_file);
    assert_int_equal(cli_parse(0, argv, &options, err, sizeof(err)), 0);
    assert_int_equal(options.port, -1);
    assert_int_equal(options.cluster_port, -1);
}

static void test_config_flag(void **state)
{
    struct cli_options options;
    char err[ERROR_SIZE] = "";
    assert_int_equal(PARSE(&options, err, "--config", "a.yaml"), 0);
    assert_string_equal(options.config_file, "a.yaml");
    assert_int_equal(PARSE(&options, err, "--config=b.yaml"), 0);
    assert_string_equal(options.config_file, "b.yaml");
    assert_int_equal(PARSE(&options, err, "-c", "c.yaml"), 0);
    assert_string_equal(options.config_file, "c.yaml");
    assert_int_equal(PARSE(&options, err, "-cd.yaml"), 0);
    assert_string_equal(options.config_file, "d.yaml");
    /* Unique abbreviations are getopt_long's usual courtesy. */
    assert_int_equal(PARSE(&options, err, "--conf", "e.yaml"), 0);
    assert_string_equal(options.config_file, "e.yaml");
    /* The last of a repeated flag wins. */
    assert_int_equal(PARSE(&options, err, "-c", "f.yaml", "--config", "g.yaml"), 0);
    assert_string_equal(options.config_file, "g.yaml");
}

static void test_bind_flag(void **state)
{
    struct cli_options options;
    char err[ERROR_SIZE] = "";
    assert_int_equal(PARSE(&options, err, "--bind", "::1"), 0);
    assert_string_equal(options.bind_address, "::1");
    assert_int_equal(PARSE(&options, err, "--bind=0.0.0.0"), 0);
    assert_string_equal(options.bind_address, "0.0.0.0");
    assert_int_equal(PARSE(&options, err, "--bind", "::"), 0);
    assert_string_equal(options.bind_address, "::");
}

static void test_port_flag(void **state)
{
    struct cli_options options;
    char err[ERROR_SIZE] = "";
    assert_int_equal(PARSE(&options, err, "--port", "8080"), 0);
    assert_int_equal(options.port, 8080);
    assert_int_equal(PARSE(&options, err, "--port=1"), 0);
    assert_int_equal(options.port, 1);
    assert_int_equal(PARSE(&options, err, "--port", "65535"), 0);
    assert_int_equal(options.port, 65535);
    assert_int_equal(PARSE(&options, err, "--port", "00443"), 0);
    assert_int_equal(options.port, 443);
}

static void test_admin_port_flag(void **state)
{
    struct cli_options options;
    struct relay_config config;
    char err[ERROR_SIZE] = "";
    assert_int_equal(PARSE(&options, err, "--admin-port", "9101"), 0);
    assert_int_equal(options.admin_port, 9101);
    config_set_defaults(&config);
    assert_int_equal(cli_apply(&options, &config, err, sizeof(err)), 0);
    assert_int_equal(config.admin_port, 9101);
    config_free(&config);
    assert_int_equal(PARSE(&options, err, "--admin-port", "0"), -1);
    assert_string_equal(err, "--admin-port: \"0\" is not a port number (1..65535)");
    assert_int_equal(PARSE(&options, err, "--admin-port", "http"), -1);
    assert_string_equal(err, "--admin-port: \"http\" is not a port number (1..65535)");
}

static void test_log_level_flag(void **state)
{
    static const struct {
        const char *name;
        int level;
    } cases[] = {{"error", LOG_LEVEL_ERROR},
                 {"warn", LOG_LEVEL_WARN},
                 {"info", LOG_LEVEL_INFO},
                 {"debug", LOG_LEVEL_DEBUG}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cli_options options;
        char err[ERROR_SIZE] = "";
        assert_int_equal(PARSE(&options, err, "--log-level", (char *)cases[i].name), 0);
        assert_int_equal(options.log_level, cases[i].level);
    }
}

static void test_event_loop_flag(void **state)
{
    struct cli_options options;
    char err[ERROR_SIZE] = "";
    assert_int_equal(PARSE(&options, err, "--event-loop", "poll"), 0);
    assert_string_equal(options.event_loop, "poll");
    assert_int_equal(PARSE(&options, err, "--event-loop=epoll"), 0);
    assert_string_equal(options.event_loop, "epoll");
}

static void test_cluster_flags(void **state)
{
    struct cli_options options;
    char err[ERROR_SIZE] = "";
    assert_int_equal(PARSE(&options, err, "--node-id", "relay-1.eu_west"), 0);
    assert_string_equal(options.node_id, "relay-1.eu_west");
    assert_int_equal(
        PARSE(&options, err,
              "--node-id=N123456789012345678901234567890123456789012345678901234567890123"),
        0);
    assert_int_equal(strlen(options.node_id), 64);

    assert_int_equal(PARSE(&options, err, "--cluster-port", "12062"), 0);
    assert_int_equal(options.cluster_port, 12062);
    assert_int_equal(PARSE(&options, err, "--cluster-port=1"), 0);
    assert_int_equal(options.cluster_port, 1);
    assert_int_equal(options.port, -1); /* --port is a different flag */

    static const char *const urls[] = {"ws://relay1:11062", "wss://relay1.example.com:443",
                                       "ws://[::1]:11062", "ws://10.0.0.1:65535"};
    for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
        assert_int_equal(PARSE(&options, err, "--advertise", (char *)urls[i]), 0);
        assert_string_equal(options.advertise_url, urls[i]);
    }

    static const char *const redis[] = {"redis:6379", "127.0.0.1:6380", "[::1]:6379",
                                        "relayd_redis_1.local:1"};
    for (size_t i = 0; i < sizeof(redis) / sizeof(redis[0]); i++) {
        assert_int_equal(PARSE(&options, err, "--redis", (char *)redis[i]), 0);
        assert_string_equal(options.redis_address, redis[i]);
    }

    assert_int_equal(PARSE(&options, err, "--cluster-secret-file", "/run/secrets/cluster"), 0);
    assert_string_equal(options.cluster_secret_file, "/run/secrets/cluster");
    assert_int_equal(PARSE(&options, err, "--cluster-secret-file=secret"), 0);
    assert_string_equal(options.cluster_secret_file, "secret");
}

static void test_boolean_flags(void **state)
{
    struct cli_options options;
    char err[ERROR_SIZE] = "";
    assert_int_equal(PARSE(&options, err, "--check-config"), 0);
    assert_true(options.check_config);
    assert_false(options.show_version);
    assert_false(options.show_help);
    assert_int_equal(PARSE(&options, err, "--version"), 0);
    assert_true(options.show_version);
    assert_false(options.check_config);
    assert_int_equal(PARSE(&options, err, "-V"), 0);
    assert_true(options.show_version);
    assert_int_equal(PARSE(&options, err, "--help"), 0);
    assert_true(options.show_help);
    assert_int_equal(PARSE(&options, err, "-h"), 0);
    assert_true(options.show_help);
    assert_int_equal(PARSE(&options, err, "-Vh"), 0);
    assert_true(options.show_version);
    assert_true(options.show_help);
}

static void test_all_flags_together(void **state)
{
    struct cli_options options;
    char err[ERROR_SIZE] = "";
    assert_int_equal(PARSE(&options, err, "-c", "relayd.yaml", "--bind", "10.1.2.3", "--port",
                           "9000", "--log-level", "warn", "--check-config"),
                     0);
    assert_string_equal(options.config_file, "relayd.yaml");
    assert_string_equal(options.bind_address, "10.1.2.3");
    assert_int_equal(options.port, 9000);
    assert_int_equal(options.log_level, LOG_LEVEL_WARN);
    assert_true(options.check_config);
    assert_false(options.show_version);
    assert_false(options.show_help);

    assert_int_equal(PARSE(&options, err, "-c", "cluster.yaml", "--node-id", "relay2",
                           "--cluster-port", "11262", "--advertise", "ws://127.0.0.1:11262",
                           "--redis", "127.0.0.1:16379", "--cluster-secret-file", "/s", "--port",
                           "11260"),
                     0);
    assert_string_equal(options.config_file, "cluster.yaml");
    assert_string_equal(options.node_id, "relay2");
    assert_int_equal(options.cluster_port, 11262);
    assert_string_equal(options.advertise_url, "ws://127.0.0.1:11262");
    assert_string_equal(options.redis_address, "127.0.0.1:16379");
    assert_string_equal(options.cluster_secret_file, "/s");
    assert_int_equal(options.port, 11260);
}

static void test_error_bad_values(void **state)
{
    ASSERT_PARSE_ERROR("--port: \"abc\" is not a port number (1..65535)", "--port", "abc");
    ASSERT_PARSE_ERROR("--port: \"0\" is not a port number (1..65535)", "--port", "0");
    ASSERT_PARSE_ERROR("--port: \"70000\" is not a port number (1..65535)", "--port", "70000");
    ASSERT_PARSE_ERROR("--port: \"65536\" is not a port number (1..65535)", "--port=65536");
    ASSERT_PARSE_ERROR("--port: \"99999999999999999999\" is not a port number (1..65535)", "--port",
                       "99999999999999999999");
    ASSERT_PARSE_ERROR("--port: \"-5\" is not a port number (1..65535)", "--port", "-5");
    ASSERT_PARSE_ERROR("--port: \"+80\" is not a port number (1..65535)", "--port", "+80");
    ASSERT_PARSE_ERROR("--port: \" 80\" is not a port number (1..65535)", "--port", " 80");
    ASSERT_PARSE_ERROR("--port: \"80x\" is not a port number (1..65535)", "--port", "80x");
    ASSERT_PARSE_ERROR("--port: \"\" is not a port number (1..65535)", "--port", "");
    ASSERT_PARSE_ERROR("--log-level: unknown level \"verbose\" (error, warn, info or debug)",
                       "--log-level", "verbose");
    ASSERT_PARSE_ERROR("--log-level: unknown level \"\" (error, warn, info or debug)",
                       "--log-level=");
    ASSERT_PARSE_ERROR("--event-loop: unknown event loop \"libuv\" (epoll or poll)", "--event-loop",
                       "libuv");
    ASSERT_PARSE_ERROR("--event-loop: unknown event loop \"EPOLL\" (epoll or poll)", "--event-loop",
                       "EPOLL");
    ASSERT_PARSE_ERROR("--event-loop: unknown event loop \"\" (epoll or poll)", "--event-loop=");
    ASSERT_PARSE_ERROR("--bind: \"localhost\" is not an IPv4 or IPv6 address", "--bind",
                       "localhost");
    ASSERT_PARSE_ERROR("--bind: \"1.2.3\" is not an IPv4 or IPv6 address", "--bind", "1.2.3");
    ASSERT_PARSE_ERROR("--config: the file name is empty", "--config", "");
}

static void test_error_bad_cluster_values(void **state)
{
    static const char *const node_ids[] = {
        "node 1",
        "a/b",
        "a:b",
        "",
        "n\xc3\xb6"
        "de",
        "N1234567890123456789012345678901234567890123456789012345678901234"};
    for (size_t i = 0; i < sizeof(node_ids) / sizeof(node_ids[0]); i++) {
        char expected[ERROR_SIZE];
        snprintf(expected, sizeof(expected),
                 "--node-id: \"%s\" is not a node id (1..64 letters, digits, '.', '_' or '-')",
                 node_ids[i]);
        ASSERT_PARSE_ERROR(expected, "--node-id", (char *)node_ids[i]);
    }

    ASSERT_PARSE_ERROR("--cluster-port: \"0\" is not a port number (1..65535)", "--cluster-port",
                       "0");
    ASSERT_PARSE_ERROR("--cluster-port: \"65536\" is not a port number (1..65535)",
                       "--cluster-port=65536");
    ASSERT_PARSE_ERROR("--cluster-port: \"x1\" is not a port number (1..65535)", "--cluster-port",
                       "x1");
    ASSERT_PARSE_ERROR("--cluster-port: \"\" is not a port number (1..65535)", "--cluster-port",
                       "");

    static const char *const urls[] = {
        "http://relay1:80", "ws://relay1",  "ws://relay1:0", "ws://::1:11062",
        "ws://relay1:1/",   "relay1:11062", "wss://:443",    ""};
    for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
        char expected[ERROR_SIZE];
        snprintf(expected, sizeof(expected),
                 "--advertise: \"%s\" is not ws://host:port or wss://host:port", urls[i]);
        ASSERT_PARSE_ERROR(expected, "--advertise", (char *)urls[i]);
    }

    static const char *const redis[] = {
        "redis",       "redis:", ":6379",           "::1:6379",     "[::1]",      "[::1]:0",
        "redis:70000", "a b:1",  "[10.0.0.1]:6379", "10.0.0.256:1", "redis:63x9", ""};
    for (size_t i = 0; i < sizeof(redis) / sizeof(redis[0]); i++) {
        char expected[ERROR_SIZE];
        snprintf(expected, sizeof(expected),
                 "--redis: \"%s\" is not HOST:PORT (a host name or IP address and a port "
                 "1..65535; IPv6 as [::1]:6379)",
                 redis[i]);
        ASSERT_PARSE_ERROR(expected, "--redis", (char *)redis[i]);
    }

    ASSERT_PARSE_ERROR("--cluster-secret-file: the file name is empty", "--cluster-secret-file",
                       "");
}

static void test_error_unknown_flags(void **state)
{
    ASSERT_PARSE_ERROR("unknown or ambiguous option --bogus (see --help)", "--bogus");
    ASSERT_PARSE_ERROR("unknown or ambiguous option --bogus (see --help)", "--bogus=1");
    ASSERT_PARSE_ERROR("unknown or ambiguous option --c (see --help)", "--c", "x");
    ASSERT_PARSE_ERROR("unknown option -x (see --help)", "-x");
    ASSERT_PARSE_ERROR("unknown option -x (see --help)", "--check-config", "-Vx");
    ASSERT_PARSE_ERROR("unknown option -p (see --help)", "-p", "80");
    ASSERT_PARSE_ERROR("--help does not take a value", "--help=yes");
    ASSERT_PARSE_ERROR("--check-config does not take a value", "--check-config=1");
    /* Both cluster flags start with "--cluster-". */
    ASSERT_PARSE_ERROR("unknown or ambiguous option --cluster (see --help)", "--cluster", "1");
    ASSERT_PARSE_ERROR("unknown or ambiguous option --redis-host (see --help)", "--redis-host",
                       "r");
}

static void test_error_missing_values(void **state)
{
    ASSERT_PARSE_ERROR("--config needs a value (FILE)", "--config");
    ASSERT_PARSE_ERROR("--config needs a value (FILE)", "--check-config", "-c");
    ASSERT_PARSE_ERROR("--port needs a value (N)", "--port");
    ASSERT_PARSE_ERROR("--bind needs a value (ADDR)", "--bind");
    ASSERT_PARSE_ERROR("--log-level needs a value (LEVEL)", "--log-level");
    ASSERT_PARSE_ERROR("--node-id needs a value (ID)", "--node-id");
    ASSERT_PARSE_ERROR("--cluster-port needs a value (N)", "--cluster-port");
    ASSERT_PARSE_ERROR("--advertise needs a value (URL)", "--advertise");
    ASSERT_PARSE_ERROR("--redis needs a value (HOST:PORT)", "--redis");
    ASSERT_PARSE_ERROR("--cluster-secret-file needs a value (FILE)", "--check-config",
                       "--cluster-secret-file");
}

static void test_error_stray_arguments(void **state)
{
    ASSERT_PARSE_ERROR("unexpected argument \"extra\" (see --help)", "extra");
    ASSERT_PARSE_ERROR("unexpected argument \"relayd.yaml\" (see --help)", "--port", "80",
                       "relayd.yaml", "--check-config");
    ASSERT_PARSE_ERROR("unexpected argument \"--port\" (see --help)", "--", "--port", "80");
}

/* getopt keeps global state; each call must start afresh, including in the
 * middle of a group of short flags left by a failed call. */
static void test_parse_is_repeatable(void **state)
{
    struct cli_options options;
    char err[ERROR_SIZE] = "";
    assert_int_equal(PARSE(&options, err, "-xV"), -1);
    assert_int_equal(PARSE(&options, err, "-h"), 0);
    assert_true(options.show_help);
    assert_false(options.show_version);
    assert_int_equal(PARSE(&options, err, "--port", "1", "stray"), -1);
    assert_int_equal(PARSE(&options, err, "--port", "2"), 0);
    assert_int_equal(options.port, 2);
    assert_int_equal(PARSE(&options, err, "--check-config"), 0);
    assert_int_equal(options.port, -1); /* nothing leaks from the previous call */
}

static void test_apply_overrides_file(void **state)
{
    static const char yaml[] = "listen:\n  bind: 0.0.0.0\n  port: 9000\n"
                               "limits:\n  max_connections: 7\n"
                               "log:\n  level: debug\n  file: /var/log/relayd.log\n"
                               "server:\n  event_loop: poll\n";
    struct relay_config config;
    char err[ERROR_SIZE] = "";
    config_set_defaults(&config);
    assert_int_equal(config_load_string(&config, yaml, strlen(yaml), "file.yaml", err, sizeof(err)),
                     0);

    struct cli_options options;
    assert_int_equal(PARSE(&options, err, "--bind", "::1", "--port", "8443", "--log-level", "error",
                           "--event-loop", "epoll"),
                     0);
    assert_int_equal(cli_apply(&options, &config, err, sizeof(err)), 0);
    assert_string_equal(config.bind_address, "::1");
    assert_int_equal(config.port, 8443);
    assert_int_equal(config.log_level, LOG_LEVEL_ERROR);
    assert_int_equal(config.event_loop, RELAY_EVENT_LOOP_EPOLL);
    /* Settings without a flag keep the file's values. */
    assert_int_equal(config.max_connections, 7);
    assert_string_equal(config.log_file, "/var/log/relayd.log");
    assert_string_equal(config.admin_bind_address, "127.0.0.1");
    assert_int_equal(config.admin_port, 11061);
    config_free(&config);
}

static void test_apply_without_flags_changes_nothing(void **state)
{
    static const char yaml[] = "listen:\n  bind: 0.0.0.0\n  port: 9000\nlog:\n  level: "
                               "warn\nserver:\n  event_loop: poll\n";
    struct relay_config config;
    char err[ERROR_SIZE] = "";
    config_set_defaults(&config);
    assert_int_equal(config_load_string(&config, yaml, strlen(yaml), "file.yaml", err, sizeof(err)),
                     0);
    struct cli_options options;
    assert_int_equal(PARSE(&options, err, "-c", "file.yaml"), 0);
    assert_int_equal(cli_apply(&options, &config, err, sizeof(err)), 0);
    assert_string_equal(config.bind_address, "0.0.0.0");
    assert_int_equal(config.port, 9000);
    assert_int_equal(config.log_level, LOG_LEVEL_WARN);
    assert_int_equal(config.event_loop, RELAY_EVENT_LOOP_POLL);
    config_free(&config);
}

static void test_apply_rejects_bad_options(void **state)
{
    struct relay_config config;
    char err[ERROR_SIZE] = "";
    config_set_defaults(&config);
    struct cli_options options = {.admin_port = -1, .port = 0, .log_level = -1};
    assert_int_equal(cli_apply(&options, &config, err, sizeof(err)), -1);
    assert_string_equal(err, "--port: 0 is out of range (1..65535)");
    options = (struct cli_options){.admin_port = -1, .port = -1, .log_level = 9};
    assert_int_equal(cli_apply(&options, &config, err, sizeof(err)), -1);
    assert_string_equal(err, "--log-level: 9 is not a log level");
    options = (struct cli_options){
        .admin_port = -1, .port = -1, .log_level = -1, .bind_address = "example.com"};
    assert_int_equal(cli_apply(&options, &config, err, sizeof(err)), -1);
    assert_string_equal(err, "--bind: \"example.com\" is not an IPv4 or IPv6 address");
    options =
        (struct cli_options){.admin_port = -1, .port = -1, .log_level = -1, .event_loop = "select"};
    assert_int_equal(cli_apply(&options, &config, err, sizeof(err)), -1);
    assert_string_equal(err, "--event-loop: unknown event loop \"select\" (epoll or poll)");
    /* Nothing was applied. */
    assert_string_equal(config.bind_address, "127.0.0.1");
    assert_int_equal(config.port, 11060);
    config_free(&config);
}

static char *write_secret_file(void)
{
    char *path = strdup("/tmp/test_config_cli_secret_XXXXXX");
    assert_non_null(path);
    int descriptor = mkstemp(path);
    assert_true(descriptor >= 0);
    assert_int_equal(write(descriptor, "s3cret\n", 7), 7);
    close(descriptor);
    return path;
}

/* Several nodes share one file and differ only by flags. */
static void test_apply_cluster_flags_share_one_file(void **state)
{
    static const char yaml[] = "cluster:\n"
                               "  advertise: ws://relay1:11062\n"
                               "  redis:\n    host: redis.internal\n    port: 6380\n";
    char *secret = write_secret_file();
    char secret_flag[64];
    snprintf(secret_flag, sizeof(secret_flag), "--cluster-secret-file=%s", secret);
    static const struct {
        const char *node_id;
        const char *client_port;
        const char *cluster_port;
        const char *advertise;
    } nodes[] = {{"relay1", "11160", "11162", "ws://127.0.0.1:11162"},
                 {"relay2", "11260", "11262", "ws://127.0.0.1:11262"},
                 {"relay3", "11360", "11362", "ws://[::1]:11362"}};
    for (size_t i = 0; i < sizeof(nodes) / sizeof(nodes[0]); i++) {
        struct relay_config config;
        char err[ERROR_SIZE] = "";
        config_set_defaults(&config);
        assert_int_equal(
            config_load_string(&config, yaml, strlen(yaml), "cluster.yaml", err, sizeof(err)), 0);
        struct cli_options options;
        assert_int_equal(PARSE(&options, err, "--node-id", (char *)nodes[i].node_id, "--port",
                               (char *)nodes[i].client_port, "--cluster-port",
                               (char *)nodes[i].cluster_port, "--advertise",
                               (char *)nodes[i].advertise, secret_flag),
                         0);
        assert_int_equal(cli_apply(&options, &config, err, sizeof(err)), 0);
        assert_string_equal(config.cluster.node_id, nodes[i].node_id);
        assert_int_equal(config.port, atoi(nodes[i].client_port));
        assert_int_equal(config.cluster.port, atoi(nodes[i].cluster_port));
        assert_string_equal(config.cluster.advertise_url, nodes[i].advertise);
        assert_string_equal(config.cluster.secret_file, secret);
        /* The file's Redis is kept. */
        assert_string_equal(config.cluster.redis_host, "redis.internal");
        assert_int_equal(config.cluster.redis_port, 6380);
        assert_true(config_cluster_enabled(&config));
        if (config_validate(&config, err, sizeof(err)) != 0)
            fail_msg("node %zu: %s", i, err);
        config_free(&config);
    }
    unlink(secret);
    free(secret);
}

/* A development cluster needs no file at all. */
static void test_apply_cluster_flags_without_file(void **state)
{
    char *secret = write_secret_file();
    struct relay_config config;
    char err[ERROR_SIZE] = "";
    config_set_defaults(&config);
    assert_false(config_cluster_enabled(&config));
    struct cli_options options;
    assert_int_equal(
        PARSE(&options, err, "--redis", "[::1]:16379", "--cluster-secret-file", secret), 0);
    assert_int_equal(cli_apply(&options, &config, err, sizeof(err)), 0);
    assert_true(config_cluster_enabled(&config));
    assert_string_equal(config.cluster.redis_host, "::1"); /* without the brackets */
    assert_int_equal(config.cluster.redis_port, 16379);
    assert_null(config.cluster.node_id); /* chosen at start */
    assert_int_equal(config.cluster.port, 11062);
    if (config_validate(&config, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    config_free(&config);
    unlink(secret);
    free(secret);
}

/* A flag replaces the file's other way of saying the same thing. */
static void test_apply_cluster_flags_replace_alternatives(void **state)
{
    static const char yaml[] = "cluster:\n"
                               "  secret: inline-secret\n"
                               "  sentinel:\n"
                               "    master: relayd\n"
                               "    addresses: [\"s1:26379\", \"s2:26379\"]\n";
    char *secret = write_secret_file();
    struct relay_config config;
    char err[ERROR_SIZE] = "";
    config_set_defaults(&config);
    assert_int_equal(
        config_load_string(&config, yaml, strlen(yaml), "cluster.yaml", err, sizeof(err)), 0);
    assert_int_equal(config_validate(&config, err, sizeof(err)), 0);

    struct cli_options options;
    assert_int_equal(PARSE(&options, err, "--redis", "redis.internal:6379"), 0);
    assert_int_equal(cli_apply(&options, &config, err, sizeof(err)), 0);
    assert_string_equal(config.cluster.redis_host, "redis.internal");
    assert_null(config.cluster.sentinel_master);
    assert_null(config.cluster.sentinels);
    assert_string_equal(config.cluster.secret, "inline-secret"); /* untouched */

    assert_int_equal(PARSE(&options, err, "--cluster-secret-file", secret), 0);
    assert_int_equal(cli_apply(&options, &config, err, sizeof(err)), 0);
    assert_string_equal(config.cluster.secret_file, secret);
    assert_null(config.cluster.secret);
    assert_string_equal(config.cluster.redis_host, "redis.internal"); /* untouched */
    if (config_validate(&config, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    config_free(&config);
    unlink(secret);
    free(secret);
}

static void test_apply_rejects_bad_cluster_options(void **state)
{
    static const struct {
        struct cli_options options;
        const char *message;
    } cases[] = {
        {{.port = -1, .admin_port = -1, .log_level = -1, .cluster_port = 0},
         "--cluster-port: 0 is out of range (1..65535)"},
        {{.port = -1, .admin_port = -1, .log_level = -1, .cluster_port = 65536},
         "--cluster-port: 65536 is out of range (1..65535)"},
        {{.port = -1, .admin_port = -1, .log_level = -1, .cluster_port = -1, .node_id = "a b"},
         "--node-id: \"a b\" is not a node id (1..64 letters, digits, '.', '_' or '-')"},
        {{.port = -1,
          .admin_port = -1,
          .log_level = -1,
          .cluster_port = -1,
          .advertise_url = "tcp://a:1"},
         "--advertise: \"tcp://a:1\" is not ws://host:port or wss://host:port"},
        {{.port = -1,
          .admin_port = -1,
          .log_level = -1,
          .cluster_port = -1,
          .redis_address = "redis"},
         "--redis: \"redis\" is not HOST:PORT (a host name or IP address and a port 1..65535; "
         "IPv6 as [::1]:6379)"},
        {{.port = -1,
          .admin_port = -1,
          .log_level = -1,
          .cluster_port = -1,
          .cluster_secret_file = ""},
         "--cluster-secret-file: the file name is empty"},
        /* Checked before anything is applied, even a valid --port. */
        {{.port = 9000,
          .admin_port = -1,
          .log_level = -1,
          .cluster_port = -1,
          .redis_address = "r:0"},
         "--redis: \"r:0\" is not HOST:PORT (a host name or IP address and a port 1..65535; "
         "IPv6 as [::1]:6379)"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct relay_config config;
        char err[ERROR_SIZE] = "";
        config_set_defaults(&config);
        assert_int_equal(cli_apply(&cases[i].options, &config, err, sizeof(err)), -1);
        assert_string_equal(err, cases[i].message);
        /* Nothing was applied. */
        assert_int_equal(config.port, 11060);
        assert_int_equal(config.cluster.port, 11062);
        assert_null(config.cluster.redis_host);
        assert_null(config.cluster.node_id);
        config_free(&config);
    }
}

static void test_usage(void **state)
{
    char *text = NULL;
    size_t length = 0;
    FILE *out = open_memstream(&text, &length);
    assert_non_null(out);
    cli_print_usage(out, "relayd");
    assert_int_equal(fclose(out), 0);

    static const char *const expected[] = {
        "Usage: relayd [options]\n",
        "With no arguments relayd serves ws://127.0.0.1:11060",
        "\n  -c, --config FILE ",
        "\n      --bind ADDR ",
        "\n      --port N ",
        "\n      --admin-port N ",
        "\n      --log-level LEVEL ",
        "\n      --event-loop LOOP ",
        "\n      --check-config ",
        "\n  -V, --version ",
        "\n  -h, --help ",
        "\n      --node-id ID ",
        "\n      --cluster-port N ",
        "\n      --advertise URL ",
        "\n      --redis HOST:PORT ",
        "\n      --cluster-secret-file FILE ",
    };
    for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++)
        if (strstr(text, expected[i]) == NULL)
            fail_msg("usage lacks \"%s\":\n%s", expected[i], text);
    /* One line per flag. */
    size_t flag_lines = 0;
    for (const char *line = text; line != NULL; line = strchr(line + 1, '\n'))
        if (strncmp(line, "\n  -", 4) == 0 || strncmp(line, "\n      --", 9) == 0)
            flag_lines++;
    assert_int_equal(flag_lines, 14);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_arguments),
        cmocka_unit_test(test_config_flag),
        cmocka_unit_test(test_bind_flag),
        cmocka_unit_test(test_port_flag),
        cmocka_unit_test(test_admin_port_flag),
        cmocka_unit_test(test_log_level_flag),
        cmocka_unit_test(test_event_loop_flag),
        cmocka_unit_test(test_cluster_flags),
        cmocka_unit_test(test_boolean_flags),
        cmocka_unit_test(test_all_flags_together),
        cmocka_unit_test(test_error_bad_values),
        cmocka_unit_test(test_error_bad_cluster_values),
        cmocka_unit_test(test_error_unknown_flags),
        cmocka_unit_test(test_error_missing_values),
        cmocka_unit_test(test_error_stray_arguments),
        cmocka_unit_test(test_parse_is_repeatable),
        cmocka_unit_test(test_apply_overrides_file),
        cmocka_unit_test(test_apply_without_flags_changes_nothing),
        cmocka_unit_test(test_apply_rejects_bad_options),
        cmocka_unit_test(test_apply_cluster_flags_share_one_file),
        cmocka_unit_test(test_apply_cluster_flags_without_file),
        cmocka_unit_test(test_apply_cluster_flags_replace_alternatives),
        cmocka_unit_test(test_apply_rejects_bad_cluster_options),
        cmocka_unit_test(test_usage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

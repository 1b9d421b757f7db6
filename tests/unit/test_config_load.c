/*
 * test_config_load.c - unit tests of node/config.c: defaults, loading YAML
 * (every value type, every suffix, every class of error with its exact
 * "file:line:column" position), validation and the print/load round trip.
 *
 * Errors are asserted as whole strings so a wrong line, column, key path or
 * wording fails the test; every failed load must also leave the
 * configuration exactly as it was.
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

#include "relay/config.h"

#define ERROR_SIZE 512

static int load_text(struct relay_config *config, const char *yaml, char *err)
{
    return config_load_string(config, yaml, strlen(yaml), "test.yaml", err, ERROR_SIZE);
}

static void assert_optional_string_equal(const char *actual, const char *expected)
{
    if (expected == NULL)
        assert_null(actual);
    else {
        assert_non_null(actual);
        assert_string_equal(actual, expected);
    }
}

static void assert_config_equal(const struct relay_config *actual,
                                const struct relay_config *expected)
{
    assert_optional_string_equal(actual->bind_address, expected->bind_address);
    assert_int_equal(actual->port, expected->port);
    assert_optional_string_equal(actual->tls.cert_file, expected->tls.cert_file);
    assert_optional_string_equal(actual->tls.key_file, expected->tls.key_file);
    assert_optional_string_equal(actual->tls.chain_file, expected->tls.chain_file);
    assert_int_equal(actual->admin_enabled, expected->admin_enabled);
    assert_optional_string_equal(actual->admin_bind_address, expected->admin_bind_address);
    assert_int_equal(actual->admin_port, expected->admin_port);
    assert_int_equal(actual->max_message_bytes, expected->max_message_bytes);
    assert_int_equal(actual->max_connections, expected->max_connections);
    assert_int_equal(actual->pending_timeout_seconds, expected->pending_timeout_seconds);
    assert_int_equal(actual->handshake_timeout_seconds, expected->handshake_timeout_seconds);
    assert_int_equal(actual->send_queue_high_water, expected->send_queue_high_water);
    assert_int_equal(actual->send_queue_low_water, expected->send_queue_low_water);
    assert_int_equal(actual->rx_buffer_bytes, expected->rx_buffer_bytes);
    assert_int_equal(actual->ping_interval_seconds, expected->ping_interval_seconds);
    assert_int_equal(actual->ping_timeout_seconds, expected->ping_timeout_seconds);
    assert_int_equal(actual->log_level, expected->log_level);
    assert_optional_string_equal(actual->log_file, expected->log_file);
    assert_int_equal(actual->stats_interval_seconds, expected->stats_interval_seconds);
    assert_int_equal(actual->shutdown_timeout_seconds, expected->shutdown_timeout_seconds);
}

/* A rejected load must report exactly `expected` and change nothing. */
static void assert_load_error(const char *yaml, const char *expected)
{
    struct relay_config config;
    struct relay_config defaults;
    config_set_defaults(&config);
    config_set_defaults(&defaults);
    char err[ERROR_SIZE] = "";
    assert_int_equal(load_text(&config, yaml, err), -1);
    assert_string_equal(err, expected);
    assert_config_equal(&config, &defaults);
    config_free(&config);
    config_free(&defaults);
}

/* Loads one setting and returns the configuration for inspection. */
static void load_ok(struct relay_config *config, const char *yaml)
{
    char err[ERROR_SIZE] = "";
    config_set_defaults(config);
    int result = load_text(config, yaml, err);
    if (result != 0)
        fail_msg("unexpected error: %s", err);
}

static char *print_to_string(const struct relay_config *config)
{
    char *text = NULL;
    size_t length = 0;
    FILE *out = open_memstream(&text, &length);
    assert_non_null(out);
    config_print(config, out);
    assert_int_equal(fclose(out), 0);
    return text;
}

/* A configuration with every setting away from its default. */
static void set_custom_config(struct relay_config *config)
{
    config_set_defaults(config);
    config_set_string(&config->bind_address, "::");
    config->port = 8443;
    config_set_string(&config->tls.cert_file, "/etc/relayd/tls/cert.pem");
    config_set_string(&config->tls.key_file, "/etc/relayd/tls/privkey.pem");
    config_set_string(&config->tls.chain_file, "/etc/relayd/tls/chain.pem");
    config->admin_enabled = false;
    config_set_string(&config->admin_bind_address, "10.0.0.1");
    config->admin_port = 9100;
    config->max_message_bytes = 2 * 1024 * 1024;
    config->max_connections = 77;
    config->pending_timeout_seconds = 3600;
    config->handshake_timeout_seconds = 20;
    config->send_queue_high_water = 1024 * 1024;
    config->send_queue_low_water = 4096;
    config->rx_buffer_bytes = 8192;
    config->ping_interval_seconds = 120;
    config->ping_timeout_seconds = 15;
    config->log_level = LOG_LEVEL_DEBUG;
    config_set_string(&config->log_file, "/var/log/relayd.log");
    config->stats_interval_seconds = 0;
    config->shutdown_timeout_seconds = 30;
}

/* ------------------------------------------------------------------------
 * Defaults and the shipped example files
 * ------------------------------------------------------------------------ */

static void test_defaults(void **state)
{
    struct relay_config config;
    config_set_defaults(&config);
    assert_string_equal(config.bind_address, "127.0.0.1");
    assert_int_equal(config.port, 11060);
    assert_null(config.tls.cert_file);
    assert_null(config.tls.key_file);
    assert_null(config.tls.chain_file);
    assert_true(config.admin_enabled);
    assert_string_equal(config.admin_bind_address, "127.0.0.1");
    assert_int_equal(config.admin_port, 11061);
    assert_int_equal(config.max_message_bytes, 1048576);
    assert_int_equal(config.max_connections, 10000);
    assert_int_equal(config.pending_timeout_seconds, 0);
    assert_int_equal(config.handshake_timeout_seconds, 10);
    assert_int_equal(config.send_queue_high_water, 262144);
    assert_int_equal(config.send_queue_low_water, 65536);
    assert_int_equal(config.rx_buffer_bytes, 65536);
    assert_int_equal(config.ping_interval_seconds, 30);
    assert_int_equal(config.ping_timeout_seconds, 10);
    assert_int_equal(config.log_level, LOG_LEVEL_INFO);
    assert_null(config.log_file);
    assert_int_equal(config.stats_interval_seconds, 60);
    assert_int_equal(config.shutdown_timeout_seconds, 5);

    char err[ERROR_SIZE] = "";
    assert_int_equal(config_validate(&config, err, sizeof(err)), 0);
    config_free(&config);
    assert_null(config.bind_address);
    config_free(&config); /* twice is harmless */
}

static void test_example_file_equals_defaults(void **state)
{
    struct relay_config loaded;
    struct relay_config defaults;
    char err[ERROR_SIZE] = "";
    config_set_defaults(&defaults);
    /* Start away from the defaults so every key of the file must be read. */
    set_custom_config(&loaded);
    int result = config_load_file(&loaded, RELAY_SOURCE_DIR "/conf/relayd.yaml", err, sizeof(err));
    if (result != 0)
        fail_msg("conf/relayd.yaml: %s", err);
    assert_config_equal(&loaded, &defaults);
    assert_int_equal(config_validate(&loaded, err, sizeof(err)), 0);
    config_free(&loaded);
    config_free(&defaults);
}

static void test_tls_example_file_loads(void **state)
{
    struct relay_config config;
    char err[ERROR_SIZE] = "";
    config_set_defaults(&config);
    int result =
        config_load_file(&config, RELAY_SOURCE_DIR "/conf/relayd-tls.yaml", err, sizeof(err));
    if (result != 0)
        fail_msg("conf/relayd-tls.yaml: %s", err);
    assert_string_equal(config.bind_address, "::");
    assert_int_equal(config.port, 443);
    assert_string_equal(config.tls.cert_file, "/etc/relayd/tls/cert.pem");
    assert_string_equal(config.tls.key_file, "/etc/relayd/tls/privkey.pem");
    assert_string_equal(config.tls.chain_file, "/etc/relayd/tls/chain.pem");
    assert_string_equal(config.admin_bind_address, "127.0.0.1");
    /* The certificate does not exist on a build machine. */
    assert_int_equal(config_validate(&config, err, sizeof(err)), -1);
    assert_string_equal(err, "listen.tls.cert: cannot read \"/etc/relayd/tls/cert.pem\": No such "
                             "file or directory");
    config_free(&config);
}

static void test_empty_documents_keep_defaults(void **state)
{
    static const char *const documents[] = {
        "",
        "\n",
        "# only a comment\n",
        "---\n",
        "~\n",
        "null\n",
        "limits:\n",
        "listen: {}\nadmin: ~\n",
        "listen:\n  tls:\n",
    };
    struct relay_config defaults;
    config_set_defaults(&defaults);
    for (size_t i = 0; i < sizeof(documents) / sizeof(documents[0]); i++) {
        struct relay_config config;
        load_ok(&config, documents[i]);
        assert_config_equal(&config, &defaults);
        config_free(&config);
    }
    config_free(&defaults);
}

/* ------------------------------------------------------------------------
 * Values
 * ------------------------------------------------------------------------ */

static void test_load_every_setting(void **state)
{
    static const char yaml[] = "listen:\n"
                               "  bind: \"::\"\n"
                               "  port: 8443\n"
                               "  tls:\n"
                               "    cert: /etc/relayd/tls/cert.pem\n"
                               "    key: '/etc/relayd/tls/privkey.pem'\n"
                               "    chain: \"/etc/relayd/tls/chain.pem\"\n"
                               "admin:\n"
                               "  enabled: false\n"
                               "  bind: 10.0.0.1\n"
                               "  port: 9100\n"
                               "limits:\n"
                               "  max_message_bytes: 2MiB\n"
                               "  max_connections: 77\n"
                               "  pending_timeout: 1h\n"
                               "  handshake_timeout: 20s\n"
                               "  send_queue_high_water: 1MiB\n"
                               "  send_queue_low_water: 4KiB\n"
                               "  rx_buffer_bytes: 8192\n"
                               "keepalive:\n"
                               "  ping_interval: 2m\n"
                               "  ping_timeout: 15\n"
                               "log:\n"
                               "  level: debug\n"
                               "  file: /var/log/relayd.log\n"
                               "  stats_interval: 0\n"
                               "shutdown:\n"
                               "  timeout: 30s\n";
    struct relay_config loaded;
    struct relay_config expected;
    load_ok(&loaded, yaml);
    set_custom_config(&expected);
    assert_config_equal(&loaded, &expected);
    config_free(&loaded);
    config_free(&expected);
}

static void test_load_overlays_current_values(void **state)
{
    struct relay_config config;
    char err[ERROR_SIZE] = "";
    config_set_defaults(&config);
    config.port = 9000;
    config_set_string(&config.log_file, "/tmp/kept.log");
    assert_int_equal(load_text(&config, "limits:\n  max_connections: 5\n", err), 0);
    assert_int_equal(config.max_connections, 5);
    assert_int_equal(config.port, 9000);
    assert_string_equal(config.log_file, "/tmp/kept.log");
    /* A second file overrides the first. */
    assert_int_equal(load_text(&config, "limits:\n  max_connections: 6\n", err), 0);
    assert_int_equal(config.max_connections, 6);
    config_free(&config);
}

static void test_size_suffixes(void **state)
{
    static const struct {
        const char *text;
        size_t bytes;
    } cases[] = {{"2048", 2048},    {"2048B", 2048},         {"1KiB", 1024},     {"64KiB", 65536},
                 {"3MiB", 3145728}, {"256MiB", 268435456},   {"\"8KiB\"", 8192}, {"'4096'", 4096},
                 {"007KiB", 7168},  {"268435456", 268435456}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char yaml[128];
        snprintf(yaml, sizeof(yaml), "limits:\n  max_message_bytes: %s\n", cases[i].text);
        struct relay_config config;
        load_ok(&config, yaml);
        assert_int_equal(config.max_message_bytes, cases[i].bytes);
        config_free(&config);
    }
    struct relay_config config;
    load_ok(&config, "limits:\n  send_queue_high_water: 1GiB\n  send_queue_low_water: 0\n");
    assert_int_equal(config.send_queue_high_water, 1073741824);
    assert_int_equal(config.send_queue_low_water, 0);
    config_free(&config);
}

static void test_duration_suffixes(void **state)
{
    static const struct {
        const char *text;
        int seconds;
    } cases[] = {{"45", 45}, {"45s", 45}, {"2m", 120}, {"1h", 3600}, {"'90s'", 90}, {"60m", 3600}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char yaml[128];
        snprintf(yaml, sizeof(yaml), "keepalive:\n  ping_interval: %s\n", cases[i].text);
        struct relay_config config;
        load_ok(&config, yaml);
        assert_int_equal(config.ping_interval_seconds, cases[i].seconds);
        config_free(&config);
    }
    struct relay_config config;
    load_ok(&config, "limits:\n  pending_timeout: 720h\nlog:\n  stats_interval: 0s\n");
    assert_int_equal(config.pending_timeout_seconds, 30 * 24 * 3600);
    assert_int_equal(config.stats_interval_seconds, 0);
    config_free(&config);
}

static void test_booleans(void **state)
{
    static const struct {
        const char *text;
        bool value;
    } cases[] = {{"true", true},   {"True", true},   {"TRUE", true},
                 {"false", false}, {"False", false}, {"FALSE", false}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char yaml[128];
        snprintf(yaml, sizeof(yaml), "admin:\n  enabled: %s\n", cases[i].text);
        struct relay_config config;
        config_set_defaults(&config);
        config.admin_enabled = !cases[i].value;
        char err[ERROR_SIZE] = "";
        assert_int_equal(load_text(&config, yaml, err), 0);
        assert_int_equal(config.admin_enabled, cases[i].value);
        config_free(&config);
    }
}

static void test_log_levels(void **state)
{
    static const struct {
        const char *text;
        enum log_level level;
    } cases[] = {{"error", LOG_LEVEL_ERROR},
                 {"warn", LOG_LEVEL_WARN},
                 {"warning", LOG_LEVEL_WARN},
                 {"info", LOG_LEVEL_INFO},
                 {"\"debug\"", LOG_LEVEL_DEBUG}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char yaml[128];
        snprintf(yaml, sizeof(yaml), "log:\n  level: %s\n", cases[i].text);
        struct relay_config config;
        load_ok(&config, yaml);
        assert_int_equal(config.log_level, cases[i].level);
        config_free(&config);
    }
}

static void test_null_unsets_optional_strings(void **state)
{
    struct relay_config config;
    char err[ERROR_SIZE] = "";
    config_set_defaults(&config);
    config_set_string(&config.tls.cert_file, "/a");
    config_set_string(&config.tls.key_file, "/b");
    config_set_string(&config.tls.chain_file, "/c");
    config_set_string(&config.log_file, "/d");
    assert_int_equal(load_text(&config,
                               "listen:\n  tls:\n    cert: null\n    key: ~\n    chain:\n"
                               "log:\n  file: NULL\n",
                               err),
                     0);
    assert_null(config.tls.cert_file);
    assert_null(config.tls.key_file);
    assert_null(config.tls.chain_file);
    assert_null(config.log_file);
    /* Quoted, "null" is a file name. */
    assert_int_equal(load_text(&config, "log:\n  file: \"null\"\n", err), 0);
    assert_string_equal(config.log_file, "null");
    config_free(&config);
}

static void test_addresses(void **state)
{
    static const char *const addresses[] = {"0.0.0.0", "192.168.1.20", "'::'",
                                            "::1",     "\"fe80::1\"",  "2001:db8::42"};
    static const char *const expected[] = {
        "0.0.0.0", "192.168.1.20", "::", "::1", "fe80::1", "2001:db8::42"};
    for (size_t i = 0; i < sizeof(addresses) / sizeof(addresses[0]); i++) {
        char yaml[128];
        snprintf(yaml, sizeof(yaml), "admin:\n  bind: %s\n", addresses[i]);
        struct relay_config config;
        load_ok(&config, yaml);
        assert_string_equal(config.admin_bind_address, expected[i]);
        config_free(&config);
    }
}

static void test_aliases_are_resolved(void **state)
{
    struct relay_config config;
    load_ok(&config, "limits:\n  handshake_timeout: &timeout 20\n"
                     "keepalive:\n  ping_timeout: *timeout\n");
    assert_int_equal(config.handshake_timeout_seconds, 20);
    assert_int_equal(config.ping_timeout_seconds, 20);
    config_free(&config);
}

/* ------------------------------------------------------------------------
 * Errors: keys and structure
 * ------------------------------------------------------------------------ */

static void test_error_unknown_keys(void **state)
{
    assert_load_error("bogus: 1\n", "test.yaml:1:1: unknown key \"bogus\"");
    assert_load_error("listen:\n  port: 1\n"
                      "limits:\n"
                      "  max_connections: 5\n"
                      "  max_mesage_bytes: 1\n",
                      "test.yaml:5:3: unknown key \"limits.max_mesage_bytes\"");
    assert_load_error("listen:\n  tls:\n    certificate: /x\n",
                      "test.yaml:3:5: unknown key \"listen.tls.certificate\"");
    assert_load_error("listen: {port: 1, host: x}\n",
                      "test.yaml:1:19: unknown key \"listen.host\"");
    assert_load_error("listen.port: 80\n", "test.yaml:1:1: unknown key \"listen.port\" (nest "
                                           "sections instead of dotting keys)");
    assert_load_error("listen:\n  tls.cert: /c\n", "test.yaml:2:3: unknown key \"listen.tls.cert\" "
                                                   "(nest sections instead of dotting keys)");
    /* Merge keys are not supported, so they are just unknown. */
    assert_load_error("listen:\n  <<: {port: 1}\n", "test.yaml:2:3: unknown key \"listen.<<\"");
}

static void test_error_duplicate_keys(void **state)
{
    assert_load_error("listen:\n  port: 5\n  port: 6\n",
                      "test.yaml:3:3: duplicate key \"listen.port\"");
    assert_load_error("limits:\n  max_connections: 1\nlimits:\n  max_connections: 2\n",
                      "test.yaml:3:1: duplicate key \"limits\"");
}

static void test_error_wrong_node_kinds(void **state)
{
    assert_load_error("listen:\n  port:\n    number: 5\n",
                      "test.yaml:3:5: listen.port: expected an integer, got a mapping");
    assert_load_error("limits:\n  max_connections: [1, 2]\n",
                      "test.yaml:2:20: limits.max_connections: expected an integer, got a "
                      "sequence");
    assert_load_error("limits: 5\n", "test.yaml:1:9: limits: expected a mapping, got \"5\"");
    assert_load_error("listen:\n  - port\n",
                      "test.yaml:2:3: listen: expected a mapping, got a sequence");
    assert_load_error("listen:\n  tls: /etc/cert.pem\n",
                      "test.yaml:2:8: listen.tls: expected a mapping, got \"/etc/cert.pem\"");
    assert_load_error("log:\n  file: [a]\n",
                      "test.yaml:2:9: log.file: expected a string or null, got a sequence");
    assert_load_error("? [a]\n: 1\n", "test.yaml:1:3: top level: keys must be strings");
    assert_load_error("listen:\n  ? {a: 1}\n  : 1\n",
                      "test.yaml:2:5: listen: keys must be strings");
    assert_load_error("listen:\n  \"po\\0rt\": 5\n",
                      "test.yaml:2:3: listen: a key contains a NUL character");
}

static void test_error_top_level_not_a_mapping(void **state)
{
    assert_load_error("- a\n- b\n", "test.yaml:1:1: expected a mapping of sections (listen:, "
                                    "limits:, ...) at the top level, got a sequence");
    assert_load_error("\n\nhello\n", "test.yaml:3:1: expected a mapping of sections (listen:, "
                                     "limits:, ...) at the top level, got \"hello\"");
}

static void test_error_multiple_documents(void **state)
{
    assert_load_error("listen:\n  port: 1\n---\nlisten:\n  port: 2\n",
                      "test.yaml:3:1: only one YAML document is allowed");
}

static void test_error_syntax(void **state)
{
    assert_load_error("listen:\n  port: 1\n bind: x\n",
                      "test.yaml:3:2: did not find expected key (while parsing a block mapping at "
                      "line 1, column 1)");
    assert_load_error("listen: [1, 2\n", "test.yaml:2:1: did not find expected ',' or ']' (while "
                                         "parsing a flow sequence at line 1, column 9)");
    assert_load_error("listen:\n\tport: 1\n",
                      "test.yaml:2:1: found character that cannot start any token (while "
                      "scanning for the next token at line 2, column 1)");
    assert_load_error("key: value: other\n",
                      "test.yaml:1:11: mapping values are not allowed in this context");
    assert_load_error("listen:\n  bind: \xff\n", "test.yaml:2:9: invalid leading UTF-8 octet");
    assert_load_error("listen:\n  port: *nope\n", "test.yaml:2:9: found undefined alias");
    /* A syntax error in a second document is still found. */
    assert_load_error("listen:\n  port: 1\n---\n[\n",
                      "test.yaml:5:1: did not find expected node content (while parsing a flow "
                      "node at line 5, column 1)");
}

/* Aliases can make the tree cyclic and brackets can nest deeply: neither
 * may loop, crash or leak. */
static void test_error_hostile_documents(void **state)
{
    assert_load_error("listen: &a\n  tls: *a\n", "test.yaml:2:3: unknown key \"listen.tls.tls\"");

    size_t depth = 5000;
    char *deep = malloc(2 * depth + 16);
    assert_non_null(deep);
    size_t length = (size_t)sprintf(deep, "listen: ");
    memset(deep + length, '[', depth);
    memset(deep + length + depth, ']', depth);
    strcpy(deep + length + 2 * depth, "\n");
    assert_load_error(deep, "test.yaml:1:9: listen: expected a mapping, got a sequence");
    free(deep);
}

/* ------------------------------------------------------------------------
 * Errors: values
 * ------------------------------------------------------------------------ */

static void test_error_integers(void **state)
{
    assert_load_error("listen:\n  port: abc\n",
                      "test.yaml:2:9: listen.port: expected an integer, got \"abc\"");
    assert_load_error("listen:\n  port: \"80\"\n",
                      "test.yaml:2:9: listen.port: expected an integer, got a quoted string "
                      "\"80\"");
    assert_load_error("listen:\n  port:\n",
                      "test.yaml:2:8: listen.port: expected an integer, got null");
    assert_load_error("limits:\n  max_connections: 1.5\n",
                      "test.yaml:2:20: limits.max_connections: expected an integer, got \"1.5\"");
    assert_load_error("limits:\n  max_connections: 100x\n",
                      "test.yaml:2:20: limits.max_connections: expected an integer, got "
                      "\"100x\"");
    assert_load_error("limits:\n  max_connections: 0x10\n",
                      "test.yaml:2:20: limits.max_connections: expected an integer, got "
                      "\"0x10\"");
    assert_load_error("limits:\n  max_connections: +5\n",
                      "test.yaml:2:20: limits.max_connections: expected an integer, got \"+5\"");
    assert_load_error("limits:\n  max_connections: 1KiB\n",
                      "test.yaml:2:20: limits.max_connections: expected an integer, got "
                      "\"1KiB\"");
    assert_load_error("limits:\n  max_connections: -5\n",
                      "test.yaml:2:20: limits.max_connections: -5 is out of range (1..1000000)");
    assert_load_error("limits:\n  max_connections: 0\n",
                      "test.yaml:2:20: limits.max_connections: 0 is out of range (1..1000000)");
    assert_load_error("limits:\n  max_connections: 1000001\n",
                      "test.yaml:2:20: limits.max_connections: 1000001 is out of range "
                      "(1..1000000)");
    assert_load_error("limits:\n  max_connections: 99999999999999999999999\n",
                      "test.yaml:2:20: limits.max_connections: 99999999999999999999999 is out "
                      "of range (1..1000000)");
    assert_load_error("listen:\n  port: 65536\n",
                      "test.yaml:2:9: listen.port: 65536 is out of range (1..65535)");
    assert_load_error("admin:\n  port: 0\n",
                      "test.yaml:2:9: admin.port: 0 is out of range (1..65535)");
}

static void test_error_sizes(void **state)
{
    static const char *const size_expected =
        "a size in bytes (an integer, optionally with a B, KiB, MiB or GiB suffix)";
    char expected[ERROR_SIZE];

    snprintf(expected, sizeof(expected),
             "test.yaml:2:22: limits.max_message_bytes: expected %s, got \"64KB\"", size_expected);
    assert_load_error("limits:\n  max_message_bytes: 64KB\n", expected);
    snprintf(expected, sizeof(expected),
             "test.yaml:2:22: limits.max_message_bytes: expected %s, got \"1.5MiB\"",
             size_expected);
    assert_load_error("limits:\n  max_message_bytes: 1.5MiB\n", expected);
    snprintf(expected, sizeof(expected),
             "test.yaml:2:22: limits.max_message_bytes: expected %s, got \"1 KiB\"", size_expected);
    assert_load_error("limits:\n  max_message_bytes: 1 KiB\n", expected);
    snprintf(expected, sizeof(expected),
             "test.yaml:2:22: limits.max_message_bytes: expected %s, got \"kib\"", size_expected);
    assert_load_error("limits:\n  max_message_bytes: kib\n", expected);
    /* true is plain text here, so it is quoted like any other word. */
    snprintf(expected, sizeof(expected),
             "test.yaml:2:22: limits.max_message_bytes: expected %s, got \"true\"", size_expected);
    assert_load_error("limits:\n  max_message_bytes: true\n", expected);

    assert_load_error("limits:\n  max_message_bytes: 512\n",
                      "test.yaml:2:22: limits.max_message_bytes: 512 is out of range "
                      "(1024..268435456)");
    assert_load_error("limits:\n  max_message_bytes: 257MiB\n",
                      "test.yaml:2:22: limits.max_message_bytes: 257MiB is out of range "
                      "(1024..268435456)");
    assert_load_error("limits:\n  max_message_bytes: -1KiB\n",
                      "test.yaml:2:22: limits.max_message_bytes: -1KiB is out of range "
                      "(1024..268435456)");
    /* The multiplication itself would overflow. */
    assert_load_error("limits:\n  max_message_bytes: 99999999999GiB\n",
                      "test.yaml:2:22: limits.max_message_bytes: 99999999999GiB is out of range "
                      "(1024..268435456)");
    assert_load_error("limits:\n  send_queue_high_water: 2GiB\n",
                      "test.yaml:2:26: limits.send_queue_high_water: 2GiB is out of range "
                      "(4096..1073741824)");
    assert_load_error("limits:\n  rx_buffer_bytes: 2MiB\n",
                      "test.yaml:2:20: limits.rx_buffer_bytes: 2MiB is out of range "
                      "(1024..1048576)");
}

static void test_error_durations(void **state)
{
    static const char *const duration_expected =
        "a duration in seconds (an integer, optionally with an s, m or h suffix)";
    char expected[ERROR_SIZE];

    snprintf(expected, sizeof(expected),
             "test.yaml:2:18: keepalive.ping_interval: expected %s, got \"1d\"", duration_expected);
    assert_load_error("keepalive:\n  ping_interval: 1d\n", expected);
    snprintf(expected, sizeof(expected),
             "test.yaml:2:18: keepalive.ping_interval: expected %s, got \"2.5s\"",
             duration_expected);
    assert_load_error("keepalive:\n  ping_interval: 2.5s\n", expected);
    snprintf(expected, sizeof(expected),
             "test.yaml:2:18: keepalive.ping_interval: expected %s, got \"30 s\"",
             duration_expected);
    assert_load_error("keepalive:\n  ping_interval: 30 s\n", expected);
    snprintf(expected, sizeof(expected),
             "test.yaml:2:12: shutdown.timeout: expected %s, got a mapping", duration_expected);
    assert_load_error("shutdown:\n  timeout: {seconds: 5}\n", expected);

    assert_load_error("limits:\n  handshake_timeout: 301\n",
                      "test.yaml:2:22: limits.handshake_timeout: 301 is out of range (1..300)");
    assert_load_error("limits:\n  handshake_timeout: 0s\n",
                      "test.yaml:2:22: limits.handshake_timeout: 0s is out of range (1..300)");
    assert_load_error("limits:\n  pending_timeout: 721h\n",
                      "test.yaml:2:20: limits.pending_timeout: 721h is out of range (0..2592000)");
    assert_load_error("log:\n  stats_interval: 25h\n",
                      "test.yaml:2:19: log.stats_interval: 25h is out of range (0..86400)");
    assert_load_error("shutdown:\n  timeout: 11m\n",
                      "test.yaml:2:12: shutdown.timeout: 11m is out of range (1..600)");
    assert_load_error("keepalive:\n  ping_timeout: -1s\n",
                      "test.yaml:2:17: keepalive.ping_timeout: -1s is out of range (1..3600)");
}

static void test_error_booleans(void **state)
{
    assert_load_error("admin:\n  enabled: yes\n",
                      "test.yaml:2:12: admin.enabled: expected true or false, got \"yes\"");
    assert_load_error("admin:\n  enabled: on\n",
                      "test.yaml:2:12: admin.enabled: expected true or false, got \"on\"");
    assert_load_error("admin:\n  enabled: 1\n",
                      "test.yaml:2:12: admin.enabled: expected true or false, got \"1\"");
    assert_load_error("admin:\n  enabled: \"true\"\n",
                      "test.yaml:2:12: admin.enabled: expected true or false, got a quoted string "
                      "\"true\"");
    assert_load_error("admin:\n  enabled: ~\n",
                      "test.yaml:2:12: admin.enabled: expected true or false, got null");
}

static void test_error_strings(void **state)
{
    assert_load_error("listen:\n  bind: localhost\n",
                      "test.yaml:2:9: listen.bind: expected an IPv4 or IPv6 address, got "
                      "\"localhost\"");
    assert_load_error("listen:\n  bind: 10.0.0.256\n",
                      "test.yaml:2:9: listen.bind: expected an IPv4 or IPv6 address, got "
                      "\"10.0.0.256\"");
    assert_load_error("listen:\n  bind: ~\n",
                      "test.yaml:2:9: listen.bind: expected an IPv4 or IPv6 address, got null");
    assert_load_error("log:\n  level: verbose\n",
                      "test.yaml:2:10: log.level: expected a log level (error, warn, info or "
                      "debug), got \"verbose\"");
    assert_load_error("log:\n  level: null\n",
                      "test.yaml:2:10: log.level: expected a log level (error, warn, info or "
                      "debug), got null");
    assert_load_error("log:\n  file: \"\"\n",
                      "test.yaml:2:9: log.file: must not be empty (write null to leave it unset)");
    assert_load_error("log:\n  file: \"a\\0b\"\n",
                      "test.yaml:2:9: log.file: contains a NUL character");
    /* Long values are cut short in the message. */
    assert_load_error("listen:\n  port: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
                      "test.yaml:2:9: listen.port: expected an integer, got "
                      "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...\"");
}

/* ------------------------------------------------------------------------
 * Errors: files and buffers
 * ------------------------------------------------------------------------ */

static void test_error_files(void **state)
{
    struct relay_config config;
    char err[ERROR_SIZE] = "";
    config_set_defaults(&config);
    assert_int_equal(config_load_file(&config, "/nonexistent/relayd.yaml", err, sizeof(err)), -1);
    assert_string_equal(err, "/nonexistent/relayd.yaml: cannot open: No such file or directory");
    assert_int_equal(config_load_file(&config, RELAY_SOURCE_DIR "/conf", err, sizeof(err)), -1);
    assert_string_equal(err, RELAY_SOURCE_DIR "/conf: cannot read: Is a directory");
    /* An endless device is cut off instead of filling memory. */
    assert_int_equal(config_load_file(&config, "/dev/zero", err, sizeof(err)), -1);
    assert_string_equal(err, "/dev/zero: larger than 1048576 bytes, refusing to load");
    assert_int_equal(config_load_file(&config, NULL, err, sizeof(err)), -1);
    assert_string_equal(err, "no configuration file given");

    /* Errors inside a file carry its name. */
    char path[] = "/tmp/test_config_load_XXXXXX";
    int descriptor = mkstemp(path);
    assert_true(descriptor >= 0);
    static const char text[] = "# relayd\nlimits:\n  max_connections: 0\n";
    assert_int_equal(write(descriptor, text, sizeof(text) - 1), sizeof(text) - 1);
    close(descriptor);
    assert_int_equal(config_load_file(&config, path, err, sizeof(err)), -1);
    char expected[ERROR_SIZE];
    snprintf(expected, sizeof(expected),
             "%s:3:20: limits.max_connections: 0 is out of range (1..1000000)", path);
    assert_string_equal(err, expected);
    unlink(path);
    config_free(&config);
}

static void test_error_oversized_input(void **state)
{
    size_t length = 1024 * 1024 + 1;
    char *yaml = malloc(length);
    assert_non_null(yaml);
    memset(yaml, '#', length);
    struct relay_config config;
    char err[ERROR_SIZE] = "";
    config_set_defaults(&config);
    assert_int_equal(config_load_string(&config, yaml, length, "big.yaml", err, sizeof(err)), -1);
    assert_string_equal(err, "big.yaml: larger than 1048576 bytes, refusing to load");
    free(yaml);
    config_free(&config);
}

static void test_error_small_buffers(void **state)
{
    struct relay_config config;
    config_set_defaults(&config);
    char err[12];
    memset(err, 'x', sizeof(err));
    assert_int_equal(config_load_string(&config, "bogus: 1\n", 9, "test.yaml", err, 8), -1);
    assert_string_equal(err, "test.ya");
    assert_int_equal(err[8], 'x');
    assert_int_equal(config_load_string(&config, "bogus: 1\n", 9, "test.yaml", NULL, 0), -1);
    assert_int_equal(config_load_string(&config, "bogus: 1\n", 9, "test.yaml", err, 0), -1);
    config_free(&config);
}

/* ------------------------------------------------------------------------
 * Printing
 * ------------------------------------------------------------------------ */

static void assert_round_trip(const struct relay_config *original, const char *start_yaml)
{
    char *text = print_to_string(original);
    struct relay_config loaded;
    load_ok(&loaded, start_yaml);
    char err[ERROR_SIZE] = "";
    int result = load_text(&loaded, text, err);
    if (result != 0)
        fail_msg("printed configuration does not load: %s\n%s", err, text);
    assert_config_equal(&loaded, original);
    config_free(&loaded);
    free(text);
}

static void test_print_defaults(void **state)
{
    struct relay_config config;
    config_set_defaults(&config);
    char *text = print_to_string(&config);
    /* Every key is present, sizes and durations as plain integers. */
    static const char *const lines[] = {
        "listen:\n  bind: '127.0.0.1'\n  port: 11060\n",
        "  tls:\n    cert: null\n    key: null\n    chain: null\n",
        "admin:\n  enabled: true\n  bind: '127.0.0.1'\n  port: 11061\n",
        "limits:\n  max_message_bytes: 1048576\n  max_connections: 10000\n",
        "  pending_timeout: 0\n  handshake_timeout: 10\n",
        "  send_queue_high_water: 262144\n  send_queue_low_water: 65536\n",
        "  rx_buffer_bytes: 65536\n",
        "keepalive:\n  ping_interval: 30\n  ping_timeout: 10\n",
        "log:\n  level: info\n  file: null\n  stats_interval: 60\n",
        "shutdown:\n  timeout: 5\n",
    };
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
        if (strstr(text, lines[i]) == NULL)
            fail_msg("missing \"%s\" in:\n%s", lines[i], text);
    free(text);

    /* Printed defaults load back over a fully customised configuration. */
    static const char custom[] = "listen:\n  port: 8443\n  tls:\n    cert: /c\n    key: /k\n"
                                 "log:\n  file: /f\n  level: debug\n";
    assert_round_trip(&config, custom);
    config_free(&config);
}

static void test_print_round_trip(void **state)
{
    struct relay_config config;
    set_custom_config(&config);
    assert_round_trip(&config, "");

    /* Strings that would change meaning if printed bare. */
    config_set_string(&config.tls.cert_file, "null");
    config_set_string(&config.tls.key_file, "a path: with #hash and 'quotes' \"double\"");
    config_set_string(&config.tls.chain_file, " leading and trailing space ");
    config_set_string(&config.log_file, "ünïcode/line\nbreak\ttab\\back");
    assert_round_trip(&config, "");
    config_set_string(&config.log_file, "8080");
    config_set_string(&config.tls.cert_file, "- [dash] {brace} *star &amp !tag %percent @at `tick");
    config_set_string(&config.tls.chain_file, "~");
    assert_round_trip(&config, "");
    config_set_string(&config.tls.cert_file, "true");
    config_set_string(&config.tls.chain_file, "---");
    config_set_string(&config.log_file, "a very long path/"
                                        "0123456789012345678901234567890123456789"
                                        "0123456789012345678901234567890123456789/log");
    assert_round_trip(&config, "");
    config_free(&config);
}

/* ------------------------------------------------------------------------
 * Validation
 * ------------------------------------------------------------------------ */

static void assert_validate_error(const struct relay_config *config, const char *expected)
{
    char err[ERROR_SIZE] = "";
    assert_int_equal(config_validate(config, err, sizeof(err)), -1);
    assert_string_equal(err, expected);
}

static void assert_valid(const struct relay_config *config)
{
    char err[ERROR_SIZE] = "";
    if (config_validate(config, err, sizeof(err)) != 0)
        fail_msg("unexpected validation error: %s", err);
}

static void test_validate_tls(void **state)
{
    char cert[] = "/tmp/test_config_cert_XXXXXX";
    char key[] = "/tmp/test_config_key_XXXXXX";
    int cert_descriptor = mkstemp(cert);
    int key_descriptor = mkstemp(key);
    assert_true(cert_descriptor >= 0 && key_descriptor >= 0);
    close(cert_descriptor);
    close(key_descriptor);

    struct relay_config config;
    config_set_defaults(&config);
    config_set_string(&config.tls.key_file, key);
    assert_validate_error(&config,
                          "listen.tls.key is set but listen.tls.cert is not (TLS needs both)");
    config_set_string(&config.tls.key_file, NULL);
    config_set_string(&config.tls.cert_file, cert);
    assert_validate_error(&config,
                          "listen.tls.cert is set but listen.tls.key is not (TLS needs both)");
    config_set_string(&config.tls.key_file, key);
    assert_valid(&config);

    config_set_string(&config.tls.chain_file, "/nonexistent/chain.pem");
    assert_validate_error(&config, "listen.tls.chain: cannot read \"/nonexistent/chain.pem\": No "
                                   "such file or directory");
    config_set_string(&config.tls.chain_file, cert);
    assert_valid(&config);

    unlink(key);
    char expected[ERROR_SIZE];
    snprintf(expected, sizeof(expected),
             "listen.tls.key: cannot read \"%s\": No such file or directory", key);
    assert_validate_error(&config, expected);

    config_set_string(&config.tls.cert_file, NULL);
    config_set_string(&config.tls.key_file, NULL);
    assert_validate_error(&config, "listen.tls.chain is set but listen.tls.cert is not");
    unlink(cert);
    config_free(&config);
}

static void test_validate_relations(void **state)
{
    struct relay_config config;
    config_set_defaults(&config);
    config.send_queue_low_water = config.send_queue_high_water;
    assert_validate_error(&config, "limits.send_queue_low_water (262144) must be below "
                                   "limits.send_queue_high_water (262144)");
    config.send_queue_low_water = config.send_queue_high_water - 1;
    assert_valid(&config);

    /* The pong wait is its own timer: it may be as long as the interval. */
    config.ping_timeout_seconds = config.ping_interval_seconds;
    assert_valid(&config);

    config.admin_port = config.port;
    assert_validate_error(&config,
                          "admin.port 11060 collides with listen.port (admin.bind 127.0.0.1, "
                          "listen.bind 127.0.0.1)");
    config_set_string(&config.bind_address, "::");
    assert_validate_error(&config,
                          "admin.port 11060 collides with listen.port (admin.bind 127.0.0.1, "
                          "listen.bind ::)");
    config_set_string(&config.bind_address, "127.0.0.2");
    assert_valid(&config); /* different addresses may share a port */
    config_set_string(&config.bind_address, "127.0.0.1");
    config.admin_enabled = false;
    assert_valid(&config); /* a disabled admin port binds nothing */
    config_free(&config);
}

/* Code and flags can set fields the loader never saw. */
static void test_validate_ranges(void **state)
{
    struct relay_config config;
    config_set_defaults(&config);
    config.max_connections = 0;
    assert_validate_error(&config, "limits.max_connections: 0 is out of range (1..1000000)");
    config.max_connections = 10;
    config.port = 70000;
    assert_validate_error(&config, "listen.port: 70000 is out of range (1..65535)");
    config.port = 1;
    config.ping_interval_seconds = -3;
    assert_validate_error(&config, "keepalive.ping_interval: -3 is out of range (1..3600)");
    config.ping_interval_seconds = 30;
    config.max_message_bytes = 100;
    assert_validate_error(&config,
                          "limits.max_message_bytes: 100 is out of range (1024..268435456)");
    config.max_message_bytes = 1024;
    config.log_level = (enum log_level)7;
    assert_validate_error(&config, "log.level: 7 is out of range (0..3)");
    config.log_level = LOG_LEVEL_WARN;
    config_set_string(&config.admin_bind_address, "localhost");
    assert_validate_error(&config, "admin.bind: \"localhost\" is not an IPv4 or IPv6 address");
    config_set_string(&config.admin_bind_address, NULL);
    assert_validate_error(&config, "admin.bind: \"(null)\" is not an IPv4 or IPv6 address");
    config_set_string(&config.admin_bind_address, "::1");
    config_set_string(&config.log_file, "");
    assert_validate_error(&config, "log.file: must not be empty");
    config_set_string(&config.log_file, NULL);
    assert_valid(&config);
    config_free(&config);
}

static void test_set_string(void **state)
{
    char *field = NULL;
    config_set_string(&field, "first");
    assert_string_equal(field, "first");
    config_set_string(&field, "second");
    assert_string_equal(field, "second");
    config_set_string(&field, field); /* replacing a value with itself keeps it */
    assert_string_equal(field, "second");
    config_set_string(&field, NULL);
    assert_null(field);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_example_file_equals_defaults),
        cmocka_unit_test(test_tls_example_file_loads),
        cmocka_unit_test(test_empty_documents_keep_defaults),
        cmocka_unit_test(test_load_every_setting),
        cmocka_unit_test(test_load_overlays_current_values),
        cmocka_unit_test(test_size_suffixes),
        cmocka_unit_test(test_duration_suffixes),
        cmocka_unit_test(test_booleans),
        cmocka_unit_test(test_log_levels),
        cmocka_unit_test(test_null_unsets_optional_strings),
        cmocka_unit_test(test_addresses),
        cmocka_unit_test(test_aliases_are_resolved),
        cmocka_unit_test(test_error_unknown_keys),
        cmocka_unit_test(test_error_duplicate_keys),
        cmocka_unit_test(test_error_wrong_node_kinds),
        cmocka_unit_test(test_error_top_level_not_a_mapping),
        cmocka_unit_test(test_error_multiple_documents),
        cmocka_unit_test(test_error_syntax),
        cmocka_unit_test(test_error_hostile_documents),
        cmocka_unit_test(test_error_integers),
        cmocka_unit_test(test_error_sizes),
        cmocka_unit_test(test_error_durations),
        cmocka_unit_test(test_error_booleans),
        cmocka_unit_test(test_error_strings),
        cmocka_unit_test(test_error_files),
        cmocka_unit_test(test_error_oversized_input),
        cmocka_unit_test(test_error_small_buffers),
        cmocka_unit_test(test_print_defaults),
        cmocka_unit_test(test_print_round_trip),
        cmocka_unit_test(test_validate_tls),
        cmocka_unit_test(test_validate_relations),
        cmocka_unit_test(test_validate_ranges),
        cmocka_unit_test(test_set_string),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

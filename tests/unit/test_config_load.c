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

static void assert_list_equal(char *const *actual, char *const *expected)
{
    /* An empty list is always NULL. */
    if (expected == NULL) {
        assert_null(actual);
        return;
    }
    assert_non_null(actual);
    size_t i = 0;
    for (; expected[i] != NULL; i++) {
        assert_non_null(actual[i]);
        assert_string_equal(actual[i], expected[i]);
    }
    assert_null(actual[i]);
}

static void assert_cluster_equal(const struct relay_cluster_config *actual,
                                 const struct relay_cluster_config *expected)
{
    assert_optional_string_equal(actual->node_id, expected->node_id);
    assert_optional_string_equal(actual->advertise_url, expected->advertise_url);
    assert_optional_string_equal(actual->bind_address, expected->bind_address);
    assert_int_equal(actual->port, expected->port);
    assert_optional_string_equal(actual->tls_cert_file, expected->tls_cert_file);
    assert_optional_string_equal(actual->tls_key_file, expected->tls_key_file);
    assert_optional_string_equal(actual->tls_ca_file, expected->tls_ca_file);
    assert_optional_string_equal(actual->secret, expected->secret);
    assert_optional_string_equal(actual->secret_file, expected->secret_file);
    assert_optional_string_equal(actual->redis_host, expected->redis_host);
    assert_int_equal(actual->redis_port, expected->redis_port);
    assert_optional_string_equal(actual->redis_password, expected->redis_password);
    assert_int_equal(actual->redis_database, expected->redis_database);
    assert_list_equal(actual->sentinels, expected->sentinels);
    assert_optional_string_equal(actual->sentinel_master, expected->sentinel_master);
    assert_optional_string_equal(actual->key_prefix, expected->key_prefix);
    assert_int_equal(actual->redis_connect_timeout_ms, expected->redis_connect_timeout_ms);
    assert_int_equal(actual->redis_command_timeout_ms, expected->redis_command_timeout_ms);
    assert_int_equal(actual->heartbeat_interval_seconds, expected->heartbeat_interval_seconds);
    assert_int_equal(actual->node_ttl_seconds, expected->node_ttl_seconds);
    assert_int_equal(actual->claim_ttl_seconds, expected->claim_ttl_seconds);
    assert_int_equal(actual->link_ping_interval_seconds, expected->link_ping_interval_seconds);
    assert_int_equal(actual->link_timeout_seconds, expected->link_timeout_seconds);
    assert_int_equal(actual->link_stream_window_bytes, expected->link_stream_window_bytes);
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
    assert_int_equal(actual->event_loop, expected->event_loop);
    assert_cluster_equal(&actual->cluster, &expected->cluster);
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

/* Loads YAML over the current values, failing the test on error. */
static void load_over(struct relay_config *config, const char *yaml)
{
    char err[ERROR_SIZE] = "";
    if (load_text(config, yaml, err) != 0)
        fail_msg("unexpected error: %s", err);
}

/* The cluster section with every setting away from its default. Lists have
 * no setter, so the list comes from YAML. */
static void set_custom_cluster(struct relay_config *config)
{
    struct relay_cluster_config *cluster = &config->cluster;
    config_set_string(&cluster->node_id, "relay-1.eu_west");
    config_set_string(&cluster->advertise_url, "wss://relay1.example.com:8443");
    config_set_string(&cluster->bind_address, "::");
    cluster->port = 9443;
    config_set_string(&cluster->tls_cert_file, "/etc/relayd/cluster/node.crt");
    config_set_string(&cluster->tls_key_file, "/etc/relayd/cluster/node.key");
    config_set_string(&cluster->tls_ca_file, "/etc/relayd/cluster/ca.crt");
    config_set_string(&cluster->secret, "s3cret-inline");
    config_set_string(&cluster->secret_file, "/etc/relayd/cluster/secret");
    config_set_string(&cluster->redis_host, "redis.example.com");
    cluster->redis_port = 6380;
    config_set_string(&cluster->redis_password, "hunter2-password");
    cluster->redis_database = 3;
    config_set_string(&cluster->sentinel_master, "relayd-master");
    config_set_string(&cluster->key_prefix, "relay:");
    cluster->redis_connect_timeout_ms = 500;
    cluster->redis_command_timeout_ms = 3000;
    cluster->heartbeat_interval_seconds = 2;
    cluster->node_ttl_seconds = 10;
    cluster->claim_ttl_seconds = 7200;
    cluster->link_ping_interval_seconds = 10;
    cluster->link_timeout_seconds = 30;
    cluster->link_stream_window_bytes = 1024 * 1024;
    load_over(config, "cluster:\n  sentinel:\n    addresses: [\"s1:26379\", \"10.0.0.2:26380\", "
                      "\"[::1]:26381\"]\n");
}

/* A configuration with every setting outside cluster: away from its
 * default. */
static void set_custom_standalone(struct relay_config *config)
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
    config->event_loop = RELAY_EVENT_LOOP_POLL;
}

/* A configuration with every setting away from its default. */
static void set_custom_config(struct relay_config *config)
{
    set_custom_standalone(config);
    set_custom_cluster(config);
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
    assert_int_equal(config.max_connections, 0);
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
    assert_int_equal(config.event_loop, RELAY_EVENT_LOOP_EPOLL);

    const struct relay_cluster_config *cluster = &config.cluster;
    assert_null(cluster->node_id);
    assert_null(cluster->advertise_url);
    assert_string_equal(cluster->bind_address, "127.0.0.1");
    assert_int_equal(cluster->port, 11062);
    assert_null(cluster->tls_cert_file);
    assert_null(cluster->tls_key_file);
    assert_null(cluster->tls_ca_file);
    assert_null(cluster->secret);
    assert_null(cluster->secret_file);
    assert_null(cluster->redis_host);
    assert_int_equal(cluster->redis_port, 6379);
    assert_null(cluster->redis_password);
    assert_int_equal(cluster->redis_database, 0);
    assert_null(cluster->sentinels);
    assert_null(cluster->sentinel_master);
    assert_string_equal(cluster->key_prefix, "msr:");
    assert_int_equal(cluster->redis_connect_timeout_ms, 2000);
    assert_int_equal(cluster->redis_command_timeout_ms, 2000);
    assert_int_equal(cluster->heartbeat_interval_seconds, 1);
    assert_int_equal(cluster->node_ttl_seconds, 5);
    assert_int_equal(cluster->claim_ttl_seconds, 60);
    assert_int_equal(cluster->link_ping_interval_seconds, 5);
    assert_int_equal(cluster->link_timeout_seconds, 15);
    assert_int_equal(cluster->link_stream_window_bytes, 262144);
    assert_false(config_cluster_enabled(&config));

    char err[ERROR_SIZE] = "";
    assert_int_equal(config_validate(&config, err, sizeof(err)), 0);
    config_free(&config);
    assert_null(config.bind_address);
    assert_null(config.cluster.key_prefix);
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

static void test_cluster_example_files_load(void **state)
{
    struct relay_config config;
    char err[ERROR_SIZE] = "";
    config_set_defaults(&config);
    int result =
        config_load_file(&config, RELAY_SOURCE_DIR "/conf/cluster-node.yaml", err, sizeof(err));
    if (result != 0)
        fail_msg("conf/cluster-node.yaml: %s", err);
    assert_true(config_cluster_enabled(&config));
    assert_null(config.cluster.node_id);
    assert_string_equal(config.cluster.advertise_url, "ws://relay1.internal:11062");
    assert_string_equal(config.cluster.bind_address, "::");
    assert_int_equal(config.cluster.port, 11062);
    assert_string_equal(config.cluster.secret_file, "/etc/relayd/cluster/secret");
    assert_null(config.cluster.secret);
    assert_string_equal(config.cluster.redis_host, "redis.internal");
    assert_int_equal(config.cluster.redis_connect_timeout_ms, 2000);
    assert_null(config.cluster.sentinels);
    /* The secret file does not exist on a build machine. */
    assert_int_equal(config_validate(&config, err, sizeof(err)), -1);
    assert_string_equal(err, "cluster.secret_file: cannot read \"/etc/relayd/cluster/secret\": No "
                             "such file or directory");
    config_free(&config);

    config_set_defaults(&config);
    result =
        config_load_file(&config, RELAY_SOURCE_DIR "/conf/cluster-sentinel.yaml", err, sizeof(err));
    if (result != 0)
        fail_msg("conf/cluster-sentinel.yaml: %s", err);
    assert_true(config_cluster_enabled(&config));
    assert_string_equal(config.cluster.node_id, "relay1");
    assert_string_equal(config.cluster.advertise_url, "wss://relay1.internal:11062");
    assert_null(config.cluster.redis_host);
    assert_string_equal(config.cluster.sentinel_master, "relayd");
    assert_list_equal(config.cluster.sentinels,
                      (char *const[]){"sentinel1.internal:26379", "sentinel2.internal:26379",
                                      "[2001:db8::13]:26379", NULL});
    assert_string_equal(config.cluster.tls_cert_file, "/etc/relayd/cluster/node.crt");
    assert_string_equal(config.cluster.tls_key_file, "/etc/relayd/cluster/node.key");
    assert_string_equal(config.cluster.tls_ca_file, "/etc/relayd/cluster/ca.crt");
    assert_null(config.cluster.secret_file);
    assert_int_equal(config_validate(&config, err, sizeof(err)), -1);
    assert_string_equal(err, "listen.tls.cert: cannot read \"/etc/relayd/tls/fullchain.pem\": No "
                             "such file or directory");
    config_free(&config);

    /* docker-compose.yml's file: the identity comes from flags. */
    config_set_defaults(&config);
    result = config_load_file(&config, RELAY_SOURCE_DIR "/conf/cluster-node-docker.yaml", err,
                              sizeof(err));
    if (result != 0)
        fail_msg("conf/cluster-node-docker.yaml: %s", err);
    assert_true(config_cluster_enabled(&config));
    assert_string_equal(config.bind_address, "0.0.0.0");
    assert_string_equal(config.admin_bind_address, "0.0.0.0");
    assert_string_equal(config.cluster.bind_address, "0.0.0.0");
    assert_null(config.cluster.advertise_url);
    assert_string_equal(config.cluster.redis_host, "redis");
    assert_string_equal(config.cluster.secret_file, "/run/secrets/cluster_secret");
    config_set_string(&config.cluster.secret_file, RELAY_SOURCE_DIR "/conf/cluster-secret.example");
    assert_int_equal(config_validate(&config, err, sizeof(err)), -1);
    assert_string_equal(err, "cluster.advertise must be set when cluster.bind is a wildcard "
                             "address (0.0.0.0): peers need an address they can reach");
    config_set_string(&config.cluster.advertise_url, "ws://relay1:11062");
    assert_int_equal(config_validate(&config, err, sizeof(err)), 0);
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
                               "  timeout: 30s\n"
                               "server:\n"
                               "  event_loop: poll\n"
                               "cluster:\n"
                               "  node_id: relay-1.eu_west\n"
                               "  advertise: wss://relay1.example.com:8443\n"
                               "  bind: \"::\"\n"
                               "  port: 9443\n"
                               "  tls: {cert: /etc/relayd/cluster/node.crt, key: "
                               "/etc/relayd/cluster/node.key, ca: /etc/relayd/cluster/ca.crt}\n"
                               "  secret: s3cret-inline\n"
                               "  secret_file: /etc/relayd/cluster/secret\n"
                               "  heartbeat_interval: 2s\n"
                               "  node_ttl: 10\n"
                               "  claim_ttl: 2h\n"
                               "  link:\n"
                               "    ping_interval: 10s\n"
                               "    timeout: 30s\n"
                               "    stream_window: 1MiB\n"
                               "  redis:\n"
                               "    host: redis.example.com\n"
                               "    port: 6380\n"
                               "    password: hunter2-password\n"
                               "    database: 3\n"
                               "    key_prefix: \"relay:\"\n"
                               "    connect_timeout: 500ms\n"
                               "    command_timeout: 3s\n"
                               "  sentinel:\n"
                               "    master: relayd-master\n"
                               "    addresses:\n"
                               "      - s1:26379\n"
                               "      - 10.0.0.2:26380\n"
                               "      - \"[::1]:26381\"\n";
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

static void test_event_loops(void **state)
{
    static const struct {
        const char *text;
        enum relay_event_loop loop;
    } cases[] = {{"epoll", RELAY_EVENT_LOOP_EPOLL},
                 {"poll", RELAY_EVENT_LOOP_POLL},
                 {"'poll'", RELAY_EVENT_LOOP_POLL},
                 {"\"epoll\"", RELAY_EVENT_LOOP_EPOLL}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char yaml[128];
        snprintf(yaml, sizeof(yaml), "server:\n  event_loop: %s\n", cases[i].text);
        struct relay_config config;
        load_ok(&config, yaml);
        assert_int_equal(config.event_loop, cases[i].loop);
        config_free(&config);
    }
    assert_int_equal(config_event_loop_from_name("epoll"), RELAY_EVENT_LOOP_EPOLL);
    assert_int_equal(config_event_loop_from_name("poll"), RELAY_EVENT_LOOP_POLL);
    assert_int_equal(config_event_loop_from_name("libuv"), -1);
    assert_string_equal(config_event_loop_name(RELAY_EVENT_LOOP_EPOLL), "epoll");
    assert_string_equal(config_event_loop_name(RELAY_EVENT_LOOP_POLL), "poll");
    assert_string_equal(config_event_loop_name((enum relay_event_loop)9), "unknown");
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
 * Cluster values
 * ------------------------------------------------------------------------ */

static void test_cluster_enabled(void **state)
{
    struct relay_config config;
    load_ok(&config, "cluster:\n  node_id: a\n  secret: x\n  redis: {port: 1}\n");
    assert_false(config_cluster_enabled(&config));
    load_over(&config, "cluster:\n  redis:\n    host: redis\n");
    assert_true(config_cluster_enabled(&config));
    load_over(&config, "cluster:\n  redis:\n    host: null\n");
    assert_false(config_cluster_enabled(&config));
    load_over(&config, "cluster:\n  sentinel:\n    master: relayd\n");
    assert_true(config_cluster_enabled(&config));
    /* Sentinel addresses alone do not make a member (validation refuses them). */
    load_over(&config, "cluster:\n  sentinel:\n    master: null\n    addresses: [\"s:1\"]\n");
    assert_false(config_cluster_enabled(&config));
    config_free(&config);
}

static void test_milliseconds(void **state)
{
    static const struct {
        const char *text;
        int milliseconds;
    } cases[] = {{"2000", 2000}, {"500ms", 500},    {"2s", 2000},     {"'750ms'", 750},
                 {"10ms", 10},   {"60s", 60000},    {"60000", 60000}, {"\"1s\"", 1000},
                 {"10", 10},     {"0000250ms", 250}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char yaml[128];
        snprintf(yaml, sizeof(yaml), "cluster:\n  redis:\n    command_timeout: %s\n",
                 cases[i].text);
        struct relay_config config;
        load_ok(&config, yaml);
        assert_int_equal(config.cluster.redis_command_timeout_ms, cases[i].milliseconds);
        assert_int_equal(config.cluster.redis_connect_timeout_ms, 2000);
        config_free(&config);
    }
}

static void test_hosts(void **state)
{
    static const char *const hosts[] = {
        "redis",
        "redis.example.com",
        "relayd_redis_1",
        "10.0.0.5",
        "::1",
        "'2001:db8::1'",
        "a-b.c",
        "0redis",
        "r.1a",
        "\"localhost\"",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.b"};
    static const char *const expected[] = {
        "redis",
        "redis.example.com",
        "relayd_redis_1",
        "10.0.0.5",
        "::1",
        "2001:db8::1",
        "a-b.c",
        "0redis",
        "r.1a",
        "localhost",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.b"};
    for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
        char yaml[256];
        snprintf(yaml, sizeof(yaml), "cluster:\n  redis:\n    host: %s\n", hosts[i]);
        struct relay_config config;
        load_ok(&config, yaml);
        assert_string_equal(config.cluster.redis_host, expected[i]);
        config_free(&config);
    }
}

static void test_node_ids_and_urls(void **state)
{
    struct relay_config config;
    load_ok(&config, "cluster:\n  node_id: relay-1.eu_west\n  advertise: ws://relay1:11062\n");
    assert_string_equal(config.cluster.node_id, "relay-1.eu_west");
    assert_string_equal(config.cluster.advertise_url, "ws://relay1:11062");
    static const char *const urls[] = {"wss://relay1.example.com:443", "ws://[::1]:11062",
                                       "ws://10.0.0.1:1", "wss://relay_1:65535",
                                       "ws://[fe80::1]:00080"};
    for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
        char yaml[128];
        snprintf(yaml, sizeof(yaml), "cluster:\n  advertise: \"%s\"\n", urls[i]);
        load_over(&config, yaml);
        assert_string_equal(config.cluster.advertise_url, urls[i]);
    }
    /* The longest node id. */
    load_over(&config, "cluster:\n  node_id: "
                       "N123456789012345678901234567890123456789012345678901234567890123\n");
    assert_int_equal(strlen(config.cluster.node_id), 64);
    load_over(&config, "cluster:\n  node_id: null\n  advertise: ~\n");
    assert_null(config.cluster.node_id);
    assert_null(config.cluster.advertise_url);
    config_free(&config);
}

static void test_key_prefix_and_secrets(void **state)
{
    struct relay_config config;
    load_ok(&config, "cluster:\n  secret: 'a secret: with spaces'\n"
                     "  redis: {password: \"p@ss word\", key_prefix: \"{relay}:\"}\n");
    assert_string_equal(config.cluster.secret, "a secret: with spaces");
    assert_string_equal(config.cluster.redis_password, "p@ss word");
    assert_string_equal(config.cluster.key_prefix, "{relay}:");
    load_over(&config, "cluster:\n  secret: null\n  redis:\n    password: ~\n    key_prefix: a\n");
    assert_null(config.cluster.secret);
    assert_null(config.cluster.redis_password);
    assert_string_equal(config.cluster.key_prefix, "a");
    config_free(&config);
}

static void test_endpoint_lists(void **state)
{
    struct relay_config config;
    load_ok(&config, "cluster:\n  sentinel:\n    addresses:\n"
                     "      - sentinel1:26379\n"
                     "      - 10.0.0.2:26380\n"
                     "      - \"[::1]:26381\"\n"
                     "      - '[2001:db8::7]:1'\n"
                     "      - relayd_sentinel_1.local:65535\n");
    assert_list_equal(config.cluster.sentinels,
                      (char *const[]){"sentinel1:26379", "10.0.0.2:26380", "[::1]:26381",
                                      "[2001:db8::7]:1", "relayd_sentinel_1.local:65535", NULL});
    /* A later file replaces the whole list. */
    load_over(&config, "cluster:\n  sentinel:\n    addresses: [\"only:1\"]\n");
    assert_list_equal(config.cluster.sentinels, (char *const[]){"only:1", NULL});
    /* Other keys leave it alone. */
    load_over(&config, "cluster:\n  sentinel:\n    master: m\n");
    assert_list_equal(config.cluster.sentinels, (char *const[]){"only:1", NULL});
    /* A failed load leaves it alone too, wherever it fails. */
    char err[ERROR_SIZE] = "";
    assert_int_equal(
        load_text(&config, "cluster:\n  sentinel:\n    addresses: [\"a:1\", x]\n", err), -1);
    assert_int_equal(
        load_text(&config, "cluster:\n  sentinel:\n    addresses: [\"a:1\"]\n  bogus: 1\n", err),
        -1);
    assert_list_equal(config.cluster.sentinels, (char *const[]){"only:1", NULL});
    /* Empty and null lists are the same: NULL. */
    static const char *const empty[] = {"[]", "null", "~", ""};
    for (size_t i = 0; i < sizeof(empty) / sizeof(empty[0]); i++) {
        char yaml[128];
        snprintf(yaml, sizeof(yaml), "cluster:\n  sentinel:\n    addresses: %s\n", empty[i]);
        load_over(&config, "cluster:\n  sentinel:\n    addresses: [\"a:1\"]\n");
        load_over(&config, yaml);
        assert_null(config.cluster.sentinels);
    }
    /* Aliases resolve inside lists. */
    load_over(&config, "cluster:\n  sentinel:\n    master: &m \"s:1\"\n    addresses: [*m, *m]\n");
    assert_list_equal(config.cluster.sentinels, (char *const[]){"s:1", "s:1", NULL});
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
                      "test.yaml:2:20: limits.max_connections: -5 is out of range (0..1000000)");
    assert_load_error("limits:\n  max_connections: 1000001\n",
                      "test.yaml:2:20: limits.max_connections: 1000001 is out of range "
                      "(0..1000000)");
    assert_load_error("limits:\n  max_connections: 99999999999999999999999\n",
                      "test.yaml:2:20: limits.max_connections: 99999999999999999999999 is out "
                      "of range (0..1000000)");
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
    assert_load_error("server:\n  event_loop: kqueue\n",
                      "test.yaml:2:15: server.event_loop: expected an event loop (epoll or poll), "
                      "got \"kqueue\"");
    assert_load_error("server:\n  event_loop: EPOLL\n",
                      "test.yaml:2:15: server.event_loop: expected an event loop (epoll or poll), "
                      "got \"EPOLL\"");
    assert_load_error("server:\n  event_loop: ~\n",
                      "test.yaml:2:15: server.event_loop: expected an event loop (epoll or poll), "
                      "got null");
    assert_load_error("server:\n  event_loop: [epoll]\n",
                      "test.yaml:2:15: server.event_loop: expected an event loop (epoll or poll), "
                      "got a sequence");
    assert_load_error("server:\n  loop: poll\n", "test.yaml:2:3: unknown key \"server.loop\"");
    assert_load_error("log:\n  file: \"\"\n",
                      "test.yaml:2:9: log.file: must not be empty (write null to leave it unset)");
    assert_load_error("log:\n  file: \"a\\0b\"\n",
                      "test.yaml:2:9: log.file: contains a NUL character");
    /* Long values are cut short in the message. */
    assert_load_error("listen:\n  port: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
                      "test.yaml:2:9: listen.port: expected an integer, got "
                      "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...\"");
}

static void test_error_cluster_numbers(void **state)
{
    assert_load_error("cluster:\n  port: 70000\n",
                      "test.yaml:2:9: cluster.port: 70000 is out of range (1..65535)");
    assert_load_error("cluster:\n  heartbeat_interval: 0\n",
                      "test.yaml:2:23: cluster.heartbeat_interval: 0 is out of range (1..60)");
    assert_load_error("cluster:\n  heartbeat_interval: 2m\n",
                      "test.yaml:2:23: cluster.heartbeat_interval: 2m is out of range (1..60)");
    assert_load_error("cluster:\n  node_ttl: 1\n",
                      "test.yaml:2:13: cluster.node_ttl: 1 is out of range (2..600)");
    assert_load_error("cluster:\n  claim_ttl: 4s\n",
                      "test.yaml:2:14: cluster.claim_ttl: 4s is out of range (5..86400)");
    assert_load_error("cluster:\n  claim_ttl: 25h\n",
                      "test.yaml:2:14: cluster.claim_ttl: 25h is out of range (5..86400)");
    assert_load_error("cluster:\n  link:\n    ping_interval: 0s\n",
                      "test.yaml:3:20: cluster.link.ping_interval: 0s is out of range (1..3600)");
    assert_load_error("cluster:\n  link:\n    timeout: 1\n",
                      "test.yaml:3:14: cluster.link.timeout: 1 is out of range (2..3600)");
    assert_load_error("cluster:\n  link:\n    stream_window: 1KiB\n",
                      "test.yaml:3:20: cluster.link.stream_window: 1KiB is out of range "
                      "(4096..67108864)");
    assert_load_error("cluster:\n  link:\n    stream_window: 65MiB\n",
                      "test.yaml:3:20: cluster.link.stream_window: 65MiB is out of range "
                      "(4096..67108864)");
    assert_load_error("cluster:\n  redis:\n    port: 0\n",
                      "test.yaml:3:11: cluster.redis.port: 0 is out of range (1..65535)");
    assert_load_error("cluster:\n  redis:\n    database: 1001\n",
                      "test.yaml:3:15: cluster.redis.database: 1001 is out of range (0..1000)");
    assert_load_error("cluster:\n  redis:\n    database: \"1\"\n",
                      "test.yaml:3:15: cluster.redis.database: expected an integer, got a quoted "
                      "string \"1\"");
}

static void test_error_milliseconds(void **state)
{
    static const struct {
        const char *text;
        const char *message;
    } cases[] = {
        {"5ms", "5ms is out of range (10..60000)"},
        {"9", "9 is out of range (10..60000)"},
        {"61s", "61s is out of range (10..60000)"},
        {"60001ms", "60001ms is out of range (10..60000)"},
        {"-5", "-5 is out of range (10..60000)"},
        {"99999999999999999999s", "99999999999999999999s is out of range (10..60000)"},
        {"1m", "expected a duration in milliseconds (an integer, optionally with an ms or s "
               "suffix), got \"1m\""},
        {"1.5s", "expected a duration in milliseconds (an integer, optionally with an ms or s "
                 "suffix), got \"1.5s\""},
        {"500 ms", "expected a duration in milliseconds (an integer, optionally with an ms or s "
                   "suffix), got \"500 ms\""},
        {"2MS", "expected a duration in milliseconds (an integer, optionally with an ms or s "
                "suffix), got \"2MS\""},
        {"~", "expected a duration in milliseconds (an integer, optionally with an ms or s "
              "suffix), got null"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char yaml[128];
        char expected[ERROR_SIZE];
        snprintf(yaml, sizeof(yaml), "cluster:\n  redis:\n    connect_timeout: %s\n",
                 cases[i].text);
        snprintf(expected, sizeof(expected), "test.yaml:3:22: cluster.redis.connect_timeout: %s",
                 cases[i].message);
        assert_load_error(yaml, expected);
    }
}

static void test_error_hosts(void **state)
{
    static const struct {
        const char *text;
        const char *got;
    } cases[] = {
        {"a b", "\"a b\""},
        {"-redis", "\"-redis\""},
        {"redis-", "\"redis-\""},
        {"10.0.0.256", "\"10.0.0.256\""},
        {"1.2", "\"1.2\""},
        {"\"[::1]\"", "a quoted string \"[::1]\""},
        {"a..b", "\"a..b\""},
        {".redis", "\".redis\""},
        {"redis.", "\"redis.\""},
        {"redis:6379", "\"redis:6379\""},
        {"r\xc3\xa9"
         "dis",
         "\"r\xc3\xa9"
         "dis\""},
        {"[a]", "a sequence"},
        /* A label of 64 characters. */
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.b",
         "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...\""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char yaml[256];
        char expected[ERROR_SIZE];
        snprintf(yaml, sizeof(yaml), "cluster:\n  redis:\n    host: %s\n", cases[i].text);
        snprintf(expected, sizeof(expected),
                 "test.yaml:3:11: cluster.redis.host: expected a host name or an IP address, got "
                 "%s",
                 cases[i].got);
        assert_load_error(yaml, expected);
    }
    assert_load_error("cluster:\n  redis:\n    host: \"\"\n",
                      "test.yaml:3:11: cluster.redis.host: must not be empty (write null to leave "
                      "it unset)");
    /* 254 characters in all, in labels of 63. */
    char yaml[512];
    char name[300];
    snprintf(name, sizeof(name), "%.63s.%.63s.%.63s.%.61s",
             "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
             "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
             "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
             "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");
    assert_int_equal(strlen(name), 253);
    struct relay_config config;
    snprintf(yaml, sizeof(yaml), "cluster:\n  redis:\n    host: %s\n", name);
    load_ok(&config, yaml);
    config_free(&config);
    snprintf(yaml, sizeof(yaml), "cluster:\n  redis:\n    host: %sb\n", name);
    assert_load_error(yaml, "test.yaml:3:11: cluster.redis.host: expected a host name or an IP "
                            "address, got \"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb...\"");
}

static void test_error_node_ids_and_urls(void **state)
{
    static const char name_error[] =
        "test.yaml:2:12: cluster.node_id: expected a name of letters, digits, '.', '_' and '-', "
        "got ";
    static const struct {
        const char *text;
        const char *got;
    } names[] = {{"node 1", "\"node 1\""},
                 {"n\xc3\xb6"
                  "de",
                  "\"n\xc3\xb6"
                  "de\""},
                 {"a/b", "\"a/b\""},
                 {"a:b", "\"a:b\""},
                 {"{a: 1}", "a mapping"}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char yaml[128];
        char expected[ERROR_SIZE];
        snprintf(yaml, sizeof(yaml), "cluster:\n  node_id: %s\n", names[i].text);
        snprintf(expected, sizeof(expected), "%s%s", name_error, names[i].got);
        assert_load_error(yaml, expected);
    }
    assert_load_error("cluster:\n  node_id: "
                      "N1234567890123456789012345678901234567890123456789012345678901234\n",
                      "test.yaml:2:12: cluster.node_id: longer than 64 characters");
    assert_load_error("cluster:\n  node_id: ''\n",
                      "test.yaml:2:12: cluster.node_id: must not be empty (write null to leave it "
                      "unset)");

    static const char *const urls[] = {
        "http://x:1",    "ws://x",          "ws://x:0",  "ws://x:65536", "ws://::1:11062",
        "ws://x:11062/", "wss://:443",      "WS://x:1",  "ws://x:1 ",    "ws:/x:1",
        "ws://[x]:1",    "ws://[::1]11062", "ws://x:-1", "ws://a b:1",   "x:1",
    };
    for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
        char yaml[128];
        char expected[ERROR_SIZE];
        snprintf(yaml, sizeof(yaml), "cluster:\n  advertise: \"%s\"\n", urls[i]);
        snprintf(expected, sizeof(expected),
                 "test.yaml:2:14: cluster.advertise: expected ws://host:port or wss://host:port, "
                 "got a quoted string \"%s\"",
                 urls[i]);
        assert_load_error(yaml, expected);
    }
    /* A valid URL over 256 characters: a 253-character host. */
    char yaml[512];
    snprintf(yaml, sizeof(yaml), "cluster:\n  advertise: ws://%.63s.%.63s.%.63s.%.61s:11062\n",
             "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc",
             "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc",
             "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc",
             "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc");
    assert_load_error(yaml, "test.yaml:2:14: cluster.advertise: longer than 256 characters");
}

static void test_error_key_prefix(void **state)
{
    static const char prefix_error[] = "test.yaml:3:17: cluster.redis.key_prefix: expected a "
                                       "string without spaces or control characters, got ";
    static const struct {
        const char *text;
        const char *got;
    } cases[] = {{"a b", "\"a b\""},
                 {"\"\"", "a quoted string \"\""},
                 {"~", "null"},
                 {"\"a\\tb\"", "a quoted string \"a\tb\""},
                 {"\"a\\x7f\"", "a quoted string \"a\x7f\""},
                 {"[a]", "a sequence"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char yaml[128];
        char expected[ERROR_SIZE];
        snprintf(yaml, sizeof(yaml), "cluster:\n  redis:\n    key_prefix: %s\n", cases[i].text);
        snprintf(expected, sizeof(expected), "%s%s", prefix_error, cases[i].got);
        assert_load_error(yaml, expected);
    }
    assert_load_error("cluster:\n  redis:\n    key_prefix: "
                      "p1234567890123456789012345678901234567890123456789012345678901234\n",
                      "test.yaml:3:17: cluster.redis.key_prefix: longer than 64 characters");
    assert_load_error("cluster:\n  secret: \"\"\n",
                      "test.yaml:2:11: cluster.secret: must not be empty (write null to leave it "
                      "unset)");
    assert_load_error("cluster:\n  redis:\n    password: [a]\n",
                      "test.yaml:3:15: cluster.redis.password: expected a string or null, got a "
                      "sequence");
}

static void test_error_endpoint_lists(void **state)
{
    /* Not a sequence: reported at the value. */
    assert_load_error(
        "cluster:\n  sentinel:\n    addresses: a:1\n",
        "test.yaml:3:16: cluster.sentinel.addresses: expected a list of \"host:port\" "
        "strings, got \"a:1\"");
    assert_load_error(
        "cluster:\n  sentinel:\n    addresses: {a: 1}\n",
        "test.yaml:3:16: cluster.sentinel.addresses: expected a list of \"host:port\" "
        "strings, got a mapping");
    assert_load_error(
        "cluster:\n  sentinel:\n    addresses: \"\"\n",
        "test.yaml:3:16: cluster.sentinel.addresses: expected a list of \"host:port\" "
        "strings, got a quoted string \"\"");
    assert_load_error("cluster:\n  sentinel:\n    addresses:\n      a: 1\n",
                      "test.yaml:4:7: cluster.sentinel.addresses: expected a list of \"host:port\" "
                      "strings, got a mapping");

    /* A bad element: reported at the element. */
    static const char element_error[] =
        "cluster.sentinel.addresses: expected \"host:port\" with a port 1..65535 (IPv6 in "
        "brackets: \"[::1]:26379\"), got ";
    static const struct {
        const char *text;
        const char *got;
    } elements[] = {
        {"bad", "\"bad\""},
        {"s1:0", "\"s1:0\""},
        {"s1:65536", "\"s1:65536\""},
        {"\"s1:\"", "a quoted string \"s1:\""},
        {"\":26379\"", "a quoted string \":26379\""},
        {"\"::1:26379\"", "a quoted string \"::1:26379\""},
        {"\"[::1]\"", "a quoted string \"[::1]\""},
        {"\"[::1]:\"", "a quoted string \"[::1]:\""},
        {"\"[10.0.0.1]:1\"", "a quoted string \"[10.0.0.1]:1\""},
        {"\"[::1]x:1\"", "a quoted string \"[::1]x:1\""},
        {"\"[::1:1\"", "a quoted string \"[::1:1\""},
        {"s 1:2", "\"s 1:2\""},
        {"s1:+2", "\"s1:+2\""},
        {"s1:2x", "\"s1:2x\""},
        {"-s1:2", "\"-s1:2\""},
        {"10.0.0.256:1", "\"10.0.0.256:1\""},
        {"~", "null"},
        {"{a: 1}", "a mapping"},
        {"[\"a:1\"]", "a sequence"},
    };
    for (size_t i = 0; i < sizeof(elements) / sizeof(elements[0]); i++) {
        char yaml[256];
        char expected[ERROR_SIZE];
        /* Block style: the second element is at line 5, column 9. */
        snprintf(yaml, sizeof(yaml),
                 "cluster:\n  sentinel:\n    addresses:\n      - ok:1\n      - %s\n",
                 elements[i].text);
        snprintf(expected, sizeof(expected), "test.yaml:5:9: %s%s", element_error, elements[i].got);
        assert_load_error(yaml, expected);
        /* Flow style: the second element is at line 3, column 25. */
        snprintf(yaml, sizeof(yaml), "cluster:\n  sentinel:\n    addresses: [\"ok:1\", %s]\n",
                 elements[i].text);
        snprintf(expected, sizeof(expected), "test.yaml:3:25: %s%s", element_error,
                 elements[i].got);
        assert_load_error(yaml, expected);
    }
    assert_load_error("cluster:\n  sentinel:\n    addresses: [\"a\\0:1\"]\n",
                      "test.yaml:3:17: cluster.sentinel.addresses: contains a NUL character");
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
    static const char text[] = "# relayd\nlimits:\n  max_connections: -1\n";
    assert_int_equal(write(descriptor, text, sizeof(text) - 1), sizeof(text) - 1);
    close(descriptor);
    assert_int_equal(config_load_file(&config, path, err, sizeof(err)), -1);
    char expected[ERROR_SIZE];
    snprintf(expected, sizeof(expected),
             "%s:3:20: limits.max_connections: -1 is out of range (0..1000000)", path);
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

/* A secret is printed as "<redacted>" and so reloads as that text. */
static void assert_redacted(char **loaded, const char *original)
{
    assert_optional_string_equal(*loaded, original != NULL ? "<redacted>" : NULL);
    config_set_string(loaded, original);
}

static void assert_round_trip(const struct relay_config *original, const char *start_yaml)
{
    char *text = print_to_string(original);
    struct relay_config loaded;
    load_ok(&loaded, start_yaml);
    char err[ERROR_SIZE] = "";
    int result = load_text(&loaded, text, err);
    if (result != 0)
        fail_msg("printed configuration does not load: %s\n%s", err, text);
    assert_redacted(&loaded.cluster.secret, original->cluster.secret);
    assert_redacted(&loaded.cluster.redis_password, original->cluster.redis_password);
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
        "limits:\n  max_message_bytes: 1048576\n  max_connections: 0\n",
        "  pending_timeout: 0\n  handshake_timeout: 10\n",
        "  send_queue_high_water: 262144\n  send_queue_low_water: 65536\n",
        "  rx_buffer_bytes: 65536\n",
        "keepalive:\n  ping_interval: 30\n  ping_timeout: 10\n",
        "log:\n  level: info\n  file: null\n  stats_interval: 60\n",
        "shutdown:\n  timeout: 5\n",
        "server:\n  event_loop: epoll\n",
        "cluster:\n  node_id: null\n  advertise: null\n  bind: '127.0.0.1'\n  port: 11062\n",
        "  tls:\n    cert: null\n    key: null\n    ca: null\n",
        "  secret: null\n  secret_file: null\n",
        "  heartbeat_interval: 1\n  node_ttl: 5\n  claim_ttl: 60\n",
        "  link:\n    ping_interval: 5\n    timeout: 15\n    stream_window: 262144\n",
        "  redis:\n    host: null\n    port: 6379\n    password: null\n    database: 0\n",
        "    key_prefix: 'msr:'\n    connect_timeout: 2000\n    command_timeout: 2000\n",
        "  sentinel:\n    master: null\n    addresses: []\n",
    };
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
        if (strstr(text, lines[i]) == NULL)
            fail_msg("missing \"%s\" in:\n%s", lines[i], text);
    free(text);

    /* Printed defaults load back over a fully customised configuration. */
    static const char custom[] = "listen:\n  port: 8443\n  tls:\n    cert: /c\n    key: /k\n"
                                 "log:\n  file: /f\n  level: debug\n"
                                 "cluster:\n  node_id: n\n  redis: {host: r, key_prefix: p}\n"
                                 "  sentinel: {master: m, addresses: [\"a:1\"]}\n";
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

    /* List elements and cluster strings that YAML would otherwise read
     * differently. */
    config_set_string(&config.cluster.key_prefix, "#:");
    config_set_string(&config.cluster.sentinel_master, "null");
    config_set_string(&config.cluster.redis_host, "::1");
    load_over(&config, "cluster:\n  sentinel:\n    addresses: [\"[::]:1\", \"null:6379\", "
                       "\"true:1\"]\n");
    assert_round_trip(&config, "cluster:\n  sentinel:\n    addresses: [\"x:1\"]\n");
    /* An empty list prints as [] and clears a loaded one. */
    load_over(&config, "cluster:\n  sentinel:\n    addresses: []\n");
    assert_null(config.cluster.sentinels);
    assert_round_trip(&config, "cluster:\n  sentinel:\n    addresses: [\"x:1\"]\n");
    config_free(&config);
}

/* Secrets never appear in printed output; everything else does. */
static void test_print_redacts_secrets(void **state)
{
    struct relay_config config;
    set_custom_config(&config);
    char *text = print_to_string(&config);
    assert_null(strstr(text, "s3cret-inline"));
    assert_null(strstr(text, "hunter2-password"));
    static const char *const lines[] = {
        "  secret: <redacted>\n  secret_file: '/etc/relayd/cluster/secret'\n",
        "    password: <redacted>\n",
        "  node_id: 'relay-1.eu_west'\n  advertise: 'wss://relay1.example.com:8443'\n",
        "    host: 'redis.example.com'\n    port: 6380\n",
        "    connect_timeout: 500\n    command_timeout: 3000\n",
        "    master: 'relayd-master'\n    addresses:\n    - 's1:26379'\n    - "
        "'10.0.0.2:26380'\n    - '[::1]:26381'\n",
    };
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
        if (strstr(text, lines[i]) == NULL)
            fail_msg("missing \"%s\" in:\n%s", lines[i], text);
    free(text);

    /* Even a secret that looks like another value is hidden. */
    config_set_string(&config.cluster.secret, "null");
    config_set_string(&config.cluster.redis_password, "<redacted>x");
    text = print_to_string(&config);
    assert_non_null(strstr(text, "  secret: <redacted>\n"));
    assert_null(strstr(text, "<redacted>x"));
    free(text);
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
    config.max_connections = -1;
    assert_validate_error(&config, "limits.max_connections: -1 is out of range (0..1000000)");
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
    config.event_loop = (enum relay_event_loop)2;
    assert_validate_error(&config, "server.event_loop: 2 is out of range (0..1)");
    config.event_loop = RELAY_EVENT_LOOP_POLL;
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

static char *make_temp_file(const char *prefix)
{
    char *path = malloc(64);
    assert_non_null(path);
    snprintf(path, 64, "/tmp/test_config_%s_XXXXXX", prefix);
    int descriptor = mkstemp(path);
    assert_true(descriptor >= 0);
    assert_int_equal(write(descriptor, "x\n", 2), 2);
    close(descriptor);
    return path;
}

static void remove_temp_file(char *path)
{
    unlink(path);
    free(path);
}

/* A Redis member with only the authentication left to choose. */
static void set_cluster_member(struct relay_config *config)
{
    config_set_defaults(config);
    config_set_string(&config->cluster.redis_host, "127.0.0.1");
}

static void test_validate_cluster_authentication(void **state)
{
    char *secret = make_temp_file("secret");
    char *cert = make_temp_file("cert");
    char *key = make_temp_file("key");
    char *ca = make_temp_file("ca");
    struct relay_config config;
    set_cluster_member(&config);
    assert_validate_error(&config,
                          "cluster: nodes must authenticate each other: set cluster.secret_file "
                          "(or cluster.secret), or cluster.tls.cert, cluster.tls.key and "
                          "cluster.tls.ca");
    config_set_string(&config.cluster.secret, "inline");
    assert_valid(&config);
    config_set_string(&config.cluster.secret_file, secret);
    assert_validate_error(&config, "cluster.secret and cluster.secret_file are both set (set one)");
    config_set_string(&config.cluster.secret, NULL);
    assert_valid(&config);
    config_set_string(&config.cluster.secret_file, "/nonexistent/secret");
    assert_validate_error(&config, "cluster.secret_file: cannot read \"/nonexistent/secret\": No "
                                   "such file or directory");
    config_set_string(&config.cluster.secret_file, NULL);

    /* Mutual TLS needs all three files. */
    static const char tls_hint[] = " is not (mutual TLS between nodes needs cluster.tls.cert, "
                                   "cluster.tls.key and cluster.tls.ca)";
    char expected[ERROR_SIZE];
    config_set_string(&config.cluster.tls_cert_file, cert);
    snprintf(expected, sizeof(expected), "cluster.tls.cert is set but cluster.tls.key%s", tls_hint);
    assert_validate_error(&config, expected);
    config_set_string(&config.cluster.tls_key_file, key);
    snprintf(expected, sizeof(expected), "cluster.tls.cert is set but cluster.tls.ca%s", tls_hint);
    assert_validate_error(&config, expected);
    config_set_string(&config.cluster.tls_cert_file, NULL);
    snprintf(expected, sizeof(expected), "cluster.tls.key is set but cluster.tls.cert%s", tls_hint);
    assert_validate_error(&config, expected);
    config_set_string(&config.cluster.tls_key_file, NULL);
    config_set_string(&config.cluster.tls_ca_file, ca);
    snprintf(expected, sizeof(expected), "cluster.tls.ca is set but cluster.tls.cert%s", tls_hint);
    assert_validate_error(&config, expected);
    config_set_string(&config.cluster.tls_cert_file, cert);
    config_set_string(&config.cluster.tls_key_file, key);
    assert_valid(&config); /* TLS alone authenticates */
    config_set_string(&config.cluster.secret_file, secret);
    assert_valid(&config); /* and both together are fine */
    config_set_string(&config.cluster.tls_ca_file, "/nonexistent/ca.crt");
    assert_validate_error(&config, "cluster.tls.ca: cannot read \"/nonexistent/ca.crt\": No such "
                                   "file or directory");

    /* A standalone node never opens the files, but a half-written TLS
     * section is still refused. */
    config_set_string(&config.cluster.redis_host, NULL);
    assert_valid(&config);
    config_set_string(&config.cluster.tls_ca_file, NULL);
    snprintf(expected, sizeof(expected), "cluster.tls.cert is set but cluster.tls.ca%s", tls_hint);
    assert_validate_error(&config, expected);
    config_free(&config);
    remove_temp_file(secret);
    remove_temp_file(cert);
    remove_temp_file(key);
    remove_temp_file(ca);
}

static void test_validate_cluster_directory(void **state)
{
    struct relay_config config;
    set_cluster_member(&config);
    config_set_string(&config.cluster.secret, "inline");
    config_set_string(&config.cluster.sentinel_master, "relayd");
    assert_validate_error(&config, "cluster.sentinel.master is set but cluster.sentinel.addresses "
                                   "is empty");
    load_over(&config, "cluster:\n  sentinel:\n    addresses: [\"s1:26379\", \"[::1]:26379\"]\n");
    assert_validate_error(&config, "cluster.redis.host and cluster.sentinel.master are both set "
                                   "(use a fixed Redis master or Sentinel, not both)");
    config_set_string(&config.cluster.redis_host, NULL);
    assert_valid(&config);
    assert_true(config_cluster_enabled(&config));
    config_set_string(&config.cluster.sentinel_master, NULL);
    assert_validate_error(&config, "cluster.sentinel.addresses is set but cluster.sentinel.master "
                                   "is not");

    /* Code can put anything in the list. */
    config_set_string(&config.cluster.sentinel_master, "relayd");
    config_set_string(&config.cluster.sentinels[1], "::1:26379");
    assert_validate_error(&config, "cluster.sentinel.addresses: \"::1:26379\" is not \"host:port\" "
                                   "with a port 1..65535 (IPv6 in brackets: \"[::1]:26379\")");
    config_free(&config);
}

static void test_validate_cluster_timers(void **state)
{
    struct relay_config config;
    config_set_defaults(&config);
    config.cluster.heartbeat_interval_seconds = 5;
    assert_validate_error(&config, "cluster.node_ttl (5) must exceed cluster.heartbeat_interval "
                                   "(5)");
    config.cluster.node_ttl_seconds = 6;
    assert_valid(&config);
    config.cluster.link_timeout_seconds = 5;
    assert_validate_error(&config, "cluster.link.timeout (5) must exceed "
                                   "cluster.link.ping_interval (5)");
    config.cluster.link_ping_interval_seconds = 4;
    assert_valid(&config);
    config_free(&config);
}

static void test_validate_cluster_listener(void **state)
{
    struct relay_config config;
    set_cluster_member(&config);
    config_set_string(&config.cluster.secret, "inline");
    config.cluster.port = config.port;
    assert_validate_error(&config, "cluster.port 11060 collides with listen.port (cluster.bind "
                                   "127.0.0.1, listen.bind 127.0.0.1)");
    config_set_string(&config.cluster.bind_address, "127.0.0.2");
    assert_valid(&config); /* different addresses may share a port */
    config.cluster.port = config.admin_port;
    config_set_string(&config.cluster.bind_address, "::");
    config_set_string(&config.cluster.advertise_url, "ws://relay1:11061");
    assert_validate_error(&config, "cluster.port 11061 collides with admin.port (cluster.bind ::, "
                                   "admin.bind 127.0.0.1)");
    config.admin_enabled = false;
    assert_valid(&config);
    config.admin_enabled = true;
    /* A standalone node opens no cluster listener. */
    config_set_string(&config.cluster.redis_host, NULL);
    assert_valid(&config);
    config_set_string(&config.cluster.redis_host, "redis");
    config.cluster.port = 11062;

    /* Peers cannot dial a wildcard address. */
    config_set_string(&config.cluster.advertise_url, NULL);
    assert_validate_error(&config, "cluster.advertise must be set when cluster.bind is a wildcard "
                                   "address (::): peers need an address they can reach");
    config_set_string(&config.cluster.bind_address, "0.0.0.0");
    assert_validate_error(&config, "cluster.advertise must be set when cluster.bind is a wildcard "
                                   "address (0.0.0.0): peers need an address they can reach");
    config_set_string(&config.cluster.advertise_url, "wss://[2001:db8::1]:11062");
    assert_valid(&config);
    config_free(&config);
}

/* Code and flags can set fields the loader never saw. */
static void test_validate_cluster_ranges(void **state)
{
    struct relay_config config;
    config_set_defaults(&config);
    config_set_string(&config.cluster.node_id, "a b");
    assert_validate_error(&config,
                          "cluster.node_id: \"a b\" is not a name of letters, digits, '.', "
                          "'_' and '-'");
    config_set_string(&config.cluster.node_id,
                      "N1234567890123456789012345678901234567890123456789012345678901234");
    assert_validate_error(&config, "cluster.node_id: longer than 64 characters");
    config_set_string(&config.cluster.node_id, "");
    assert_validate_error(&config, "cluster.node_id: must not be empty");
    config_set_string(&config.cluster.node_id, "relay1");
    config_set_string(&config.cluster.advertise_url, "http://relay1:80");
    assert_validate_error(&config,
                          "cluster.advertise: \"http://relay1:80\" is not ws://host:port or "
                          "wss://host:port");
    config_set_string(&config.cluster.advertise_url, NULL);
    config_set_string(&config.cluster.bind_address, "relay1");
    assert_validate_error(&config, "cluster.bind: \"relay1\" is not an IPv4 or IPv6 address");
    config_set_string(&config.cluster.bind_address, "::1");
    config.cluster.port = 0;
    assert_validate_error(&config, "cluster.port: 0 is out of range (1..65535)");
    config.cluster.port = 11062;
    config_set_string(&config.cluster.redis_host, "a b");
    assert_validate_error(&config,
                          "cluster.redis.host: \"a b\" is not a host name or an IP address");
    config_set_string(&config.cluster.redis_host, NULL);
    config_set_string(&config.cluster.key_prefix, NULL);
    assert_validate_error(&config, "cluster.redis.key_prefix: \"(null)\" is not a string without "
                                   "spaces or control characters");
    config_set_string(&config.cluster.key_prefix, "");
    assert_validate_error(&config, "cluster.redis.key_prefix: \"\" is not a string without spaces "
                                   "or control characters");
    config_set_string(&config.cluster.key_prefix, "msr:");
    config_set_string(&config.cluster.secret, "");
    assert_validate_error(&config, "cluster.secret: must not be empty");
    config_set_string(&config.cluster.secret, NULL);
    config.cluster.redis_connect_timeout_ms = 5;
    assert_validate_error(&config, "cluster.redis.connect_timeout: 5 is out of range (10..60000)");
    config.cluster.redis_connect_timeout_ms = 10;
    config.cluster.link_stream_window_bytes = 0;
    assert_validate_error(&config, "cluster.link.stream_window: 0 is out of range "
                                   "(4096..67108864)");
    config.cluster.link_stream_window_bytes = 4096;
    config.cluster.redis_database = -1;
    assert_validate_error(&config, "cluster.redis.database: -1 is out of range (0..1000)");
    config.cluster.redis_database = 1000;
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
        cmocka_unit_test(test_cluster_example_files_load),
        cmocka_unit_test(test_empty_documents_keep_defaults),
        cmocka_unit_test(test_load_every_setting),
        cmocka_unit_test(test_load_overlays_current_values),
        cmocka_unit_test(test_size_suffixes),
        cmocka_unit_test(test_duration_suffixes),
        cmocka_unit_test(test_booleans),
        cmocka_unit_test(test_log_levels),
        cmocka_unit_test(test_event_loops),
        cmocka_unit_test(test_null_unsets_optional_strings),
        cmocka_unit_test(test_addresses),
        cmocka_unit_test(test_aliases_are_resolved),
        cmocka_unit_test(test_cluster_enabled),
        cmocka_unit_test(test_milliseconds),
        cmocka_unit_test(test_hosts),
        cmocka_unit_test(test_node_ids_and_urls),
        cmocka_unit_test(test_key_prefix_and_secrets),
        cmocka_unit_test(test_endpoint_lists),
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
        cmocka_unit_test(test_error_cluster_numbers),
        cmocka_unit_test(test_error_milliseconds),
        cmocka_unit_test(test_error_hosts),
        cmocka_unit_test(test_error_node_ids_and_urls),
        cmocka_unit_test(test_error_key_prefix),
        cmocka_unit_test(test_error_endpoint_lists),
        cmocka_unit_test(test_error_files),
        cmocka_unit_test(test_error_oversized_input),
        cmocka_unit_test(test_error_small_buffers),
        cmocka_unit_test(test_print_defaults),
        cmocka_unit_test(test_print_round_trip),
        cmocka_unit_test(test_print_redacts_secrets),
        cmocka_unit_test(test_validate_tls),
        cmocka_unit_test(test_validate_relations),
        cmocka_unit_test(test_validate_ranges),
        cmocka_unit_test(test_validate_cluster_authentication),
        cmocka_unit_test(test_validate_cluster_directory),
        cmocka_unit_test(test_validate_cluster_timers),
        cmocka_unit_test(test_validate_cluster_listener),
        cmocka_unit_test(test_validate_cluster_ranges),
        cmocka_unit_test(test_set_string),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

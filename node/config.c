/*
 * config.c - built-in defaults, the YAML configuration file, cross-field
 * validation and printing of the effective configuration.
 *
 * Every setting is one row of config_settings[]: its dotted path in the file
 * ("limits.max_message_bytes"), its type, where it lives in struct
 * relay_config, its allowed range and its default. Defaults, loading,
 * range checks, printing, copying and freeing all walk that table, so a new
 * setting - or a whole new section such as cluster: - is new rows and
 * nothing else (a new kind of value, such as a list of strings, is one more
 * config_type handled in the few switches below).
 *
 * The file is parsed by libyaml's document API. The resulting node tree is
 * then walked under the guidance of the table, so every node the table does
 * not expect is reported as "file:line:column: message" using libyaml's
 * marks. A load works on a copy and replaces the caller's configuration only
 * when the whole file was accepted, so a bad file never leaves a
 * half-applied configuration behind.
 *
 * config_print emits through libyaml's emitter, which quotes every string
 * the way the parser reads it back; the output is a valid configuration
 * file. Command-line flags are layered on top by cli.c.
 *
 * Value syntax (also documented in conf/relayd.yaml):
 *   - integers are plain decimal scalars; a quoted "80" is a string;
 *   - sizes: an integer or a string with a B, KiB, MiB or GiB suffix;
 *   - durations: an integer (seconds) or a string with an s, m or h suffix;
 *   - milliseconds: an integer (milliseconds) or a string with an ms or s
 *     suffix;
 *   - host names: DNS names (docker-compose service names included) or IP
 *     literals; "host:port" puts an IPv6 literal in brackets: "[::1]:26379";
 *   - lists: a YAML sequence of strings; [] or null is the empty list;
 *   - booleans: true/false (YAML 1.2 core spellings); YAML 1.1's yes, no,
 *     on and off are rejected because they surprise people;
 *   - null, ~ or nothing: unset for optional strings; an empty section
 *     ("limits:" with every key commented out) keeps the defaults;
 *   - tags are ignored and merge keys ("<<") are not supported.
 *
 * Secrets (cluster.secret, cluster.redis.password) are printed as
 * "<redacted>" so that --check-config output can be pasted into a bug
 * report: that output reloads, but with those two keys holding the literal
 * text "<redacted>", so it is not meant to be loaded back for them. Every
 * other key survives the print/load round trip unchanged.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <yaml.h>

#include "cli.h"
#include "relay/config.h"
#include "relay/directory.h"

#define CONFIG_KIB 1024LL
#define CONFIG_MIB (1024LL * CONFIG_KIB)
#define CONFIG_GIB (1024LL * CONFIG_MIB)
#define CONFIG_DAY (24LL * 3600)
#define CONFIG_MINUTE_MS (60LL * 1000)

#define CONFIG_DEFAULT_CLUSTER_PORT 11062
#define CONFIG_DEFAULT_REDIS_PORT 6379

/* How config_print shows a secret that is set. */
#define CONFIG_REDACTED "<redacted>"

/* RFC 1035's limits for a DNS name and one of its labels. */
#define CONFIG_HOST_NAME_MAX 253
#define CONFIG_HOST_LABEL_MAX 63

/* A configuration file is a few kilobytes; the cap keeps a wrong path (a
 * log file, a device) from being read into memory whole. */
#define CONFIG_MAX_FILE_BYTES (1024 * 1024)

/* Longer than any setting path, so a truncated path never matches a row. */
#define CONFIG_PATH_MAX 256

/* How much of an offending value an error message quotes. */
#define CONFIG_QUOTE_MAX 40

/* The string types keep their maximum length (0: unlimited) in the row's
 * maximum; a string is never empty. */
enum config_type {
    CONFIG_TYPE_STRING,       /* char *, optional: null leaves it unset */
    CONFIG_TYPE_ADDRESS,      /* char *, an IPv4 or IPv6 literal */
    CONFIG_TYPE_HOST,         /* char *, optional: a DNS name or an IP literal */
    CONFIG_TYPE_NAME,         /* char *, optional: letters, digits, '.', '_', '-' */
    CONFIG_TYPE_TOKEN,        /* char *, printable, without spaces */
    CONFIG_TYPE_URL,          /* char *, optional: ws://host:port or wss://host:port */
    CONFIG_TYPE_INTEGER,      /* int, a plain decimal integer */
    CONFIG_TYPE_SIZE,         /* size_t, bytes with an optional suffix */
    CONFIG_TYPE_DURATION,     /* int, seconds with an optional suffix */
    CONFIG_TYPE_MILLISECONDS, /* int, milliseconds with an optional suffix */
    CONFIG_TYPE_BOOLEAN,      /* bool */
    CONFIG_TYPE_LOG_LEVEL,    /* enum log_level, by name */
    CONFIG_TYPE_EVENT_LOOP,   /* enum relay_event_loop, by name */
    CONFIG_TYPE_ENDPOINTS,    /* char **, NULL-terminated "host:port" list; empty: NULL */
};

/* Completes "expected ..." in type errors and "is not ..." in validation
 * errors. */
static const char *const config_type_descriptions[] = {
    [CONFIG_TYPE_STRING] = "a string or null",
    [CONFIG_TYPE_ADDRESS] = "an IPv4 or IPv6 address",
    [CONFIG_TYPE_HOST] = "a host name or an IP address",
    [CONFIG_TYPE_NAME] = "a name of letters, digits, '.', '_' and '-'",
    [CONFIG_TYPE_TOKEN] = "a string without spaces or control characters",
    [CONFIG_TYPE_URL] = "ws://host:port or wss://host:port",
    [CONFIG_TYPE_INTEGER] = "an integer",
    [CONFIG_TYPE_SIZE] =
        "a size in bytes (an integer, optionally with a B, KiB, MiB or GiB suffix)",
    [CONFIG_TYPE_DURATION] = "a duration in seconds (an integer, optionally with an s, m or h "
                             "suffix)",
    [CONFIG_TYPE_MILLISECONDS] = "a duration in milliseconds (an integer, optionally with an ms "
                                 "or s suffix)",
    [CONFIG_TYPE_BOOLEAN] = "true or false",
    [CONFIG_TYPE_LOG_LEVEL] = "a log level (error, warn, info or debug)",
    [CONFIG_TYPE_EVENT_LOOP] = "an event loop (epoll or poll)",
    [CONFIG_TYPE_ENDPOINTS] = "a list of \"host:port\" strings",
};

/* Completes "expected ..." for one element of a CONFIG_TYPE_ENDPOINTS list. */
#define CONFIG_ENDPOINT_DESCRIPTION                                                                \
    "\"host:port\" with a port 1..65535 (IPv6 in brackets: \"[::1]:26379\")"

struct config_setting {
    const char *path;
    enum config_type type;
    size_t offset;
    long long minimum;
    long long maximum;
    long long default_number; /* every type but the strings */
    const char *default_text; /* the string types; NULL leaves them unset */
    bool redacted;            /* config_print hides the value */
};

/* The field's offset - and a compile error when its C type is not the one
 * the setting type stores, because a wrong row would otherwise write an int
 * over a size_t without any warning. The _Generic operand is never
 * evaluated. */
#define CONFIG_FIELD(field, c_type)                                                                \
    (offsetof(struct relay_config, field) + _Generic(((struct relay_config *)0)->field, c_type : 0))

#define SETTING_STRING(setting_path, field)                                                        \
    {                                                                                              \
        .path = setting_path, .type = CONFIG_TYPE_STRING, .offset = CONFIG_FIELD(field, char *)    \
    }
#define SETTING_ADDRESS(setting_path, field, text)                                                 \
    {                                                                                              \
        .path = setting_path, .type = CONFIG_TYPE_ADDRESS, .offset = CONFIG_FIELD(field, char *),  \
        .default_text = text                                                                       \
    }
#define SETTING_SECRET(setting_path, field)                                                        \
    {                                                                                              \
        .path = setting_path, .type = CONFIG_TYPE_STRING, .offset = CONFIG_FIELD(field, char *),   \
        .redacted = true                                                                           \
    }
#define SETTING_TEXT(setting_path, text_type, field, length, text)                                 \
    {                                                                                              \
        .path = setting_path, .type = text_type, .offset = CONFIG_FIELD(field, char *),            \
        .maximum = length, .default_text = text                                                    \
    }
#define SETTING_ENDPOINTS(setting_path, field)                                                     \
    {                                                                                              \
        .path = setting_path, .type = CONFIG_TYPE_ENDPOINTS,                                       \
        .offset = CONFIG_FIELD(field, char **)                                                     \
    }
#define SETTING_INTEGER(setting_path, field, low, high, value)                                     \
    {                                                                                              \
        .path = setting_path, .type = CONFIG_TYPE_INTEGER, .offset = CONFIG_FIELD(field, int),     \
        .minimum = low, .maximum = high, .default_number = value                                   \
    }
#define SETTING_SIZE(setting_path, field, low, high, value)                                        \
    {                                                                                              \
        .path = setting_path, .type = CONFIG_TYPE_SIZE, .offset = CONFIG_FIELD(field, size_t),     \
        .minimum = low, .maximum = high, .default_number = value                                   \
    }
#define SETTING_DURATION(setting_path, field, low, high, value)                                    \
    {                                                                                              \
        .path = setting_path, .type = CONFIG_TYPE_DURATION, .offset = CONFIG_FIELD(field, int),    \
        .minimum = low, .maximum = high, .default_number = value                                   \
    }
#define SETTING_MILLISECONDS(setting_path, field, low, high, value)                                \
    {                                                                                              \
        .path = setting_path, .type = CONFIG_TYPE_MILLISECONDS,                                    \
        .offset = CONFIG_FIELD(field, int), .minimum = low, .maximum = high,                       \
        .default_number = value                                                                    \
    }
#define SETTING_BOOLEAN(setting_path, field, value)                                                \
    {                                                                                              \
        .path = setting_path, .type = CONFIG_TYPE_BOOLEAN, .offset = CONFIG_FIELD(field, bool),    \
        .maximum = 1, .default_number = value                                                      \
    }
#define SETTING_LOG_LEVEL(setting_path, field, value)                                              \
    {                                                                                              \
        .path = setting_path, .type = CONFIG_TYPE_LOG_LEVEL,                                       \
        .offset = CONFIG_FIELD(field, enum log_level), .minimum = LOG_LEVEL_ERROR,                 \
        .maximum = LOG_LEVEL_DEBUG, .default_number = value                                        \
    }
#define SETTING_EVENT_LOOP(setting_path, field, value)                                             \
    {                                                                                              \
        .path = setting_path, .type = CONFIG_TYPE_EVENT_LOOP,                                      \
        .offset = CONFIG_FIELD(field, enum relay_event_loop), .minimum = RELAY_EVENT_LOOP_EPOLL,   \
        .maximum = RELAY_EVENT_LOOP_POLL, .default_number = value                                  \
    }

/* Rows of one section must be contiguous: config_print opens each section
 * once, in table order. */
static const struct config_setting config_settings[] = {
    SETTING_ADDRESS("listen.bind", bind_address, "127.0.0.1"),
    SETTING_INTEGER("listen.port", port, 1, 65535, RELAY_DEFAULT_PORT),
    SETTING_STRING("listen.tls.cert", tls.cert_file),
    SETTING_STRING("listen.tls.key", tls.key_file),
    SETTING_STRING("listen.tls.chain", tls.chain_file),

    SETTING_BOOLEAN("admin.enabled", admin_enabled, true),
    SETTING_ADDRESS("admin.bind", admin_bind_address, "127.0.0.1"),
    SETTING_INTEGER("admin.port", admin_port, 1, 65535, RELAY_DEFAULT_ADMIN_PORT),

    SETTING_SIZE("limits.max_message_bytes", max_message_bytes, CONFIG_KIB, 256 * CONFIG_MIB,
                 CONFIG_MIB),
    SETTING_INTEGER("limits.max_connections", max_connections, 0, 1000000, 0),
    SETTING_DURATION("limits.pending_timeout", pending_timeout_seconds, 0, 30 * CONFIG_DAY, 0),
    SETTING_DURATION("limits.handshake_timeout", handshake_timeout_seconds, 1, 300, 10),
    SETTING_SIZE("limits.send_queue_high_water", send_queue_high_water, 4 * CONFIG_KIB, CONFIG_GIB,
                 256 * CONFIG_KIB),
    SETTING_SIZE("limits.send_queue_low_water", send_queue_low_water, 0, CONFIG_GIB,
                 64 * CONFIG_KIB),
    SETTING_SIZE("limits.rx_buffer_bytes", rx_buffer_bytes, CONFIG_KIB, CONFIG_MIB,
                 64 * CONFIG_KIB),

    SETTING_DURATION("keepalive.ping_interval", ping_interval_seconds, 1, 3600, 30),
    SETTING_DURATION("keepalive.ping_timeout", ping_timeout_seconds, 1, 3600, 10),

    SETTING_LOG_LEVEL("log.level", log_level, LOG_LEVEL_INFO),
    SETTING_STRING("log.file", log_file),
    SETTING_DURATION("log.stats_interval", stats_interval_seconds, 0, CONFIG_DAY, 60),

    SETTING_DURATION("shutdown.timeout", shutdown_timeout_seconds, 1, 600, 5),

    SETTING_EVENT_LOOP("server.event_loop", event_loop, RELAY_EVENT_LOOP_EPOLL),

    SETTING_TEXT("cluster.node_id", CONFIG_TYPE_NAME, cluster.node_id, NODE_ID_MAX_LENGTH, NULL),
    SETTING_TEXT("cluster.advertise", CONFIG_TYPE_URL, cluster.advertise_url,
                 ADVERTISE_URL_MAX_LENGTH, NULL),
    SETTING_ADDRESS("cluster.bind", cluster.bind_address, "127.0.0.1"),
    SETTING_INTEGER("cluster.port", cluster.port, 1, 65535, CONFIG_DEFAULT_CLUSTER_PORT),
    SETTING_STRING("cluster.tls.cert", cluster.tls_cert_file),
    SETTING_STRING("cluster.tls.key", cluster.tls_key_file),
    SETTING_STRING("cluster.tls.ca", cluster.tls_ca_file),
    SETTING_SECRET("cluster.secret", cluster.secret),
    SETTING_STRING("cluster.secret_file", cluster.secret_file),
    SETTING_DURATION("cluster.heartbeat_interval", cluster.heartbeat_interval_seconds, 1, 60, 1),
    SETTING_DURATION("cluster.node_ttl", cluster.node_ttl_seconds, 2, 600, 5),
    SETTING_DURATION("cluster.claim_ttl", cluster.claim_ttl_seconds, 5, CONFIG_DAY, 60),
    SETTING_DURATION("cluster.link.ping_interval", cluster.link_ping_interval_seconds, 1, 3600, 5),
    SETTING_DURATION("cluster.link.timeout", cluster.link_timeout_seconds, 2, 3600, 15),
    SETTING_SIZE("cluster.link.stream_window", cluster.link_stream_window_bytes, 4 * CONFIG_KIB,
                 64 * CONFIG_MIB, 256 * CONFIG_KIB),
    SETTING_TEXT("cluster.redis.host", CONFIG_TYPE_HOST, cluster.redis_host, CONFIG_HOST_NAME_MAX,
                 NULL),
    SETTING_INTEGER("cluster.redis.port", cluster.redis_port, 1, 65535, CONFIG_DEFAULT_REDIS_PORT),
    SETTING_SECRET("cluster.redis.password", cluster.redis_password),
    SETTING_INTEGER("cluster.redis.database", cluster.redis_database, 0, 1000, 0),
    SETTING_TEXT("cluster.redis.key_prefix", CONFIG_TYPE_TOKEN, cluster.key_prefix, 64, "msr:"),
    SETTING_MILLISECONDS("cluster.redis.connect_timeout", cluster.redis_connect_timeout_ms, 10,
                         CONFIG_MINUTE_MS, 2000),
    SETTING_MILLISECONDS("cluster.redis.command_timeout", cluster.redis_command_timeout_ms, 10,
                         CONFIG_MINUTE_MS, 2000),
    SETTING_STRING("cluster.sentinel.master", cluster.sentinel_master),
    SETTING_ENDPOINTS("cluster.sentinel.addresses", cluster.sentinels),
};

#define CONFIG_SETTING_COUNT (sizeof(config_settings) / sizeof(config_settings[0]))

struct config_unit {
    const char *suffix;
    long long multiplier;
};

static const struct config_unit config_integer_units[] = {{"", 1}, {NULL, 0}};
static const struct config_unit config_size_units[] = {
    {"", 1}, {"B", 1}, {"KiB", CONFIG_KIB}, {"MiB", CONFIG_MIB}, {"GiB", CONFIG_GIB}, {NULL, 0}};
static const struct config_unit config_duration_units[] = {
    {"", 1}, {"s", 1}, {"m", 60}, {"h", 3600}, {NULL, 0}};
static const struct config_unit config_millisecond_units[] = {
    {"", 1}, {"ms", 1}, {"s", 1000}, {NULL, 0}};

/* State of one load: the parsed document, the working copy it is applied
 * to and where errors go. */
struct config_loader {
    yaml_document_t document;
    struct relay_config *config;
    const char *name;
    char *err;
    size_t err_size;
};

/* ------------------------------------------------------------------------
 * Errors
 * ------------------------------------------------------------------------ */

static int config_write_error(char *err, size_t err_size, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

static int config_write_error(char *err, size_t err_size, const char *format, ...)
{
    if (err == NULL || err_size == 0)
        return -1;
    va_list args;
    va_start(args, format);
    vsnprintf(err, err_size, format, args);
    va_end(args);
    return -1;
}

/* libyaml's marks count from zero; editors count from one. */
static int config_write_error_at(char *err, size_t err_size, const char *name, yaml_mark_t mark,
                                 const char *format, ...) __attribute__((format(printf, 5, 6)));

static int config_write_error_at(char *err, size_t err_size, const char *name, yaml_mark_t mark,
                                 const char *format, ...)
{
    if (err == NULL || err_size == 0)
        return -1;
    int written = snprintf(err, err_size, "%s:%zu:%zu: ", name, mark.line + 1, mark.column + 1);
    if (written < 0 || (size_t)written >= err_size)
        return -1;
    va_list args;
    va_start(args, format);
    vsnprintf(err + written, err_size - (size_t)written, format, args);
    va_end(args);
    return -1;
}

#define config_report(loader, mark, ...)                                                           \
    config_write_error_at((loader)->err, (loader)->err_size, (loader)->name, mark, __VA_ARGS__)

/* The reader reports a byte offset but no mark (invalid UTF-8, control
 * characters), so the line and column are counted from the input. */
static yaml_mark_t config_mark_at_offset(const char *text, size_t length, size_t offset)
{
    yaml_mark_t mark = {.index = offset};
    size_t line_start = 0;
    for (size_t i = 0; i < offset && i < length; i++) {
        if (text[i] == '\n') {
            mark.line++;
            line_start = i + 1;
        }
    }
    mark.column = offset - line_start;
    return mark;
}

static int config_report_parser_error(const yaml_parser_t *parser, const char *name,
                                      const char *text, size_t length, char *err, size_t err_size)
{
    if (parser->error == YAML_MEMORY_ERROR)
        return config_write_error(err, err_size, "%s: out of memory while parsing", name);
    yaml_mark_t mark = parser->problem_mark;
    if (parser->error == YAML_READER_ERROR)
        mark = config_mark_at_offset(text, length, parser->problem_offset);
    const char *problem = parser->problem != NULL ? parser->problem : "invalid YAML";
    if (parser->context == NULL)
        return config_write_error_at(err, err_size, name, mark, "%s", problem);
    return config_write_error_at(err, err_size, name, mark, "%s (%s at line %zu, column %zu)",
                                 problem, parser->context, parser->context_mark.line + 1,
                                 parser->context_mark.column + 1);
}

/* ------------------------------------------------------------------------
 * Table access
 * ------------------------------------------------------------------------ */

static const struct config_setting *config_find_setting(const char *path)
{
    for (size_t i = 0; i < CONFIG_SETTING_COUNT; i++)
        if (strcmp(config_settings[i].path, path) == 0)
            return &config_settings[i];
    return NULL;
}

/* A section is any proper prefix of a setting path: "listen", "listen.tls". */
static bool config_is_section(const char *path)
{
    size_t length = strlen(path);
    for (size_t i = 0; i < CONFIG_SETTING_COUNT; i++) {
        const char *candidate = config_settings[i].path;
        if (strncmp(candidate, path, length) == 0 && candidate[length] == '.')
            return true;
    }
    return false;
}

static void *config_field(const struct relay_config *config, const struct config_setting *setting)
{
    return (char *)config + setting->offset;
}

static bool config_type_is_string(enum config_type type)
{
    switch (type) {
    case CONFIG_TYPE_STRING:
    case CONFIG_TYPE_ADDRESS:
    case CONFIG_TYPE_HOST:
    case CONFIG_TYPE_NAME:
    case CONFIG_TYPE_TOKEN:
    case CONFIG_TYPE_URL:
        return true;
    case CONFIG_TYPE_INTEGER:
    case CONFIG_TYPE_SIZE:
    case CONFIG_TYPE_DURATION:
    case CONFIG_TYPE_MILLISECONDS:
    case CONFIG_TYPE_BOOLEAN:
    case CONFIG_TYPE_LOG_LEVEL:
    case CONFIG_TYPE_EVENT_LOOP:
    case CONFIG_TYPE_ENDPOINTS:
        break;
    }
    return false;
}

/* The string types that null leaves unset; the others always hold a value. */
static bool config_type_is_optional(enum config_type type)
{
    return config_type_is_string(type) && type != CONFIG_TYPE_ADDRESS && type != CONFIG_TYPE_TOKEN;
}

static char **config_string_field(const struct relay_config *config,
                                  const struct config_setting *setting)
{
    return (char **)config_field(config, setting);
}

static char ***config_list_field(const struct relay_config *config,
                                 const struct config_setting *setting)
{
    return (char ***)config_field(config, setting);
}

static void config_store_number(struct relay_config *config, const struct config_setting *setting,
                                long long value)
{
    void *field = config_field(config, setting);
    switch (setting->type) {
    case CONFIG_TYPE_INTEGER:
    case CONFIG_TYPE_DURATION:
    case CONFIG_TYPE_MILLISECONDS:
        *(int *)field = (int)value;
        break;
    case CONFIG_TYPE_SIZE:
        *(size_t *)field = (size_t)value;
        break;
    case CONFIG_TYPE_BOOLEAN:
        *(bool *)field = value != 0;
        break;
    case CONFIG_TYPE_LOG_LEVEL:
        *(enum log_level *)field = (enum log_level)value;
        break;
    case CONFIG_TYPE_EVENT_LOOP:
        *(enum relay_event_loop *)field = (enum relay_event_loop)value;
        break;
    case CONFIG_TYPE_STRING:
    case CONFIG_TYPE_ADDRESS:
    case CONFIG_TYPE_HOST:
    case CONFIG_TYPE_NAME:
    case CONFIG_TYPE_TOKEN:
    case CONFIG_TYPE_URL:
    case CONFIG_TYPE_ENDPOINTS:
        break;
    }
}

static long long config_read_number(const struct relay_config *config,
                                    const struct config_setting *setting)
{
    const void *field = config_field(config, setting);
    switch (setting->type) {
    case CONFIG_TYPE_INTEGER:
    case CONFIG_TYPE_DURATION:
    case CONFIG_TYPE_MILLISECONDS:
        return *(const int *)field;
    case CONFIG_TYPE_SIZE:
        /* Saturate: anything this large is out of every range anyway. */
        return *(const size_t *)field > (size_t)LLONG_MAX ? LLONG_MAX
                                                          : (long long)*(const size_t *)field;
    case CONFIG_TYPE_BOOLEAN:
        return *(const bool *)field;
    case CONFIG_TYPE_LOG_LEVEL:
        return (long long)*(const enum log_level *)field;
    case CONFIG_TYPE_EVENT_LOOP:
        return (long long)*(const enum relay_event_loop *)field;
    case CONFIG_TYPE_STRING:
    case CONFIG_TYPE_ADDRESS:
    case CONFIG_TYPE_HOST:
    case CONFIG_TYPE_NAME:
    case CONFIG_TYPE_TOKEN:
    case CONFIG_TYPE_URL:
    case CONFIG_TYPE_ENDPOINTS:
        break;
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * Ownership: defaults, copies, freeing
 * ------------------------------------------------------------------------ */

/* Like the rest of the relay, treat running out of memory for a few bytes
 * of configuration as fatal rather than threading an error through. */
static char *config_duplicate(const char *text)
{
    char *copy = strdup(text);
    if (copy == NULL) {
        fputs("relayd: out of memory\n", stderr);
        abort();
    }
    return copy;
}

void config_set_string(char **field, const char *value)
{
    /* Copy before freeing: value may be the current string itself. */
    char *copy = value != NULL ? config_duplicate(value) : NULL;
    free(*field);
    *field = copy;
}

static void config_list_free(char **list)
{
    for (char **item = list; item != NULL && *item != NULL; item++)
        free(*item);
    free(list);
}

/* An empty list is stored as NULL, so there is one way to say "none". */
static char **config_list_allocate(size_t count)
{
    char **list = calloc(count + 1, sizeof(*list));
    if (list == NULL) {
        fputs("relayd: out of memory\n", stderr);
        abort();
    }
    return list;
}

static char **config_list_duplicate(char *const *list)
{
    if (list == NULL || list[0] == NULL)
        return NULL;
    size_t count = 0;
    while (list[count] != NULL)
        count++;
    char **copy = config_list_allocate(count);
    for (size_t i = 0; i < count; i++)
        copy[i] = config_duplicate(list[i]);
    return copy;
}

void config_set_defaults(struct relay_config *config)
{
    memset(config, 0, sizeof(*config));
    for (size_t i = 0; i < CONFIG_SETTING_COUNT; i++) {
        const struct config_setting *setting = &config_settings[i];
        if (config_type_is_string(setting->type))
            config_set_string(config_string_field(config, setting), setting->default_text);
        else if (setting->type != CONFIG_TYPE_ENDPOINTS) /* lists start empty */
            config_store_number(config, setting, setting->default_number);
    }
}

void config_free(struct relay_config *config)
{
    for (size_t i = 0; i < CONFIG_SETTING_COUNT; i++) {
        const struct config_setting *setting = &config_settings[i];
        if (config_type_is_string(setting->type)) {
            char **field = config_string_field(config, setting);
            free(*field);
            *field = NULL;
        } else if (setting->type == CONFIG_TYPE_ENDPOINTS) {
            char ***field = config_list_field(config, setting);
            config_list_free(*field);
            *field = NULL;
        }
    }
}

static void config_copy(struct relay_config *target, const struct relay_config *source)
{
    *target = *source;
    for (size_t i = 0; i < CONFIG_SETTING_COUNT; i++) {
        const struct config_setting *setting = &config_settings[i];
        if (config_type_is_string(setting->type)) {
            char **field = config_string_field(target, setting);
            *field = *field != NULL ? config_duplicate(*field) : NULL;
        } else if (setting->type == CONFIG_TYPE_ENDPOINTS) {
            char ***field = config_list_field(target, setting);
            *field = config_list_duplicate(*field);
        }
    }
}

bool config_cluster_enabled(const struct relay_config *config)
{
    return config->cluster.redis_host != NULL || config->cluster.sentinel_master != NULL;
}

/* Indexed by enum relay_event_loop. */
static const char *const config_event_loop_names[] = {
    [RELAY_EVENT_LOOP_EPOLL] = "epoll",
    [RELAY_EVENT_LOOP_POLL] = "poll",
};

#define CONFIG_EVENT_LOOP_COUNT                                                                    \
    (sizeof(config_event_loop_names) / sizeof(config_event_loop_names[0]))

int config_event_loop_from_name(const char *name)
{
    for (size_t i = 0; i < CONFIG_EVENT_LOOP_COUNT; i++)
        if (strcmp(name, config_event_loop_names[i]) == 0)
            return (int)i;
    return -1;
}

const char *config_event_loop_name(enum relay_event_loop loop)
{
    return (unsigned)loop < CONFIG_EVENT_LOOP_COUNT ? config_event_loop_names[loop] : "unknown";
}

/* ------------------------------------------------------------------------
 * Scalars
 * ------------------------------------------------------------------------ */

static const char *config_scalar_text(const yaml_node_t *node)
{
    return (const char *)node->data.scalar.value;
}

static bool config_scalar_is_plain(const yaml_node_t *node)
{
    return node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

/* A C string cannot hold a "\0" escape; accepting one would silently cut
 * the value (or a key) short. */
static bool config_scalar_has_nul(const yaml_node_t *node)
{
    return strlen(config_scalar_text(node)) != node->data.scalar.length;
}

static bool config_node_is_null(const yaml_node_t *node)
{
    static const char *const spellings[] = {"", "~", "null", "Null", "NULL"};
    if (node->type != YAML_SCALAR_NODE || !config_scalar_is_plain(node))
        return false;
    for (size_t i = 0; i < sizeof(spellings) / sizeof(spellings[0]); i++)
        if (strcmp(config_scalar_text(node), spellings[i]) == 0)
            return true;
    return false;
}

/* Completes "got ..." in type errors. */
static void config_describe_node(const yaml_node_t *node, char *buffer, size_t size)
{
    if (node->type == YAML_MAPPING_NODE) {
        snprintf(buffer, size, "a mapping");
    } else if (node->type == YAML_SEQUENCE_NODE) {
        snprintf(buffer, size, "a sequence");
    } else if (node->type != YAML_SCALAR_NODE) {
        snprintf(buffer, size, "nothing");
    } else if (config_node_is_null(node)) {
        snprintf(buffer, size, "null");
    } else {
        const char *text = config_scalar_text(node);
        const char *ellipsis = strlen(text) > CONFIG_QUOTE_MAX ? "..." : "";
        snprintf(buffer, size, "%s\"%.*s%s\"",
                 config_scalar_is_plain(node) ? "" : "a quoted string ", CONFIG_QUOTE_MAX, text,
                 ellipsis);
    }
}

static int config_report_type(struct config_loader *loader, const struct config_setting *setting,
                              const yaml_node_t *node)
{
    char description[CONFIG_QUOTE_MAX + 32];
    config_describe_node(node, description, sizeof(description));
    return config_report(loader, node->start_mark, "%s: expected %s, got %s", setting->path,
                         config_type_descriptions[setting->type], description);
}

static int config_report_range(struct config_loader *loader, const struct config_setting *setting,
                               const yaml_node_t *node)
{
    return config_report(loader, node->start_mark, "%s: %.*s is out of range (%lld..%lld)",
                         setting->path, CONFIG_QUOTE_MAX, config_scalar_text(node),
                         setting->minimum, setting->maximum);
}

enum config_number_status {
    CONFIG_NUMBER_OK,
    CONFIG_NUMBER_INVALID,      /* not digits with a known suffix */
    CONFIG_NUMBER_OUT_OF_RANGE, /* negative or too large for any setting */
};

static const struct config_unit *config_find_unit(const struct config_unit *units,
                                                  const char *suffix)
{
    for (; units->suffix != NULL; units++)
        if (strcmp(units->suffix, suffix) == 0)
            return units;
    return NULL;
}

/* Decimal digits and an optional suffix from units, nothing else: no sign
 * but a minus (which is only ever out of range), no spaces, no fractions,
 * no hexadecimal. */
static enum config_number_status
config_parse_number(const char *text, const struct config_unit *units, long long *value)
{
    bool negative = *text == '-';
    const char *cursor = negative ? text + 1 : text;
    if (*cursor < '0' || *cursor > '9')
        return CONFIG_NUMBER_INVALID;
    long long number = 0;
    bool too_large = false;
    for (; *cursor >= '0' && *cursor <= '9'; cursor++) {
        int digit = *cursor - '0';
        if (number > (LLONG_MAX - digit) / 10)
            too_large = true;
        else
            number = number * 10 + digit;
    }
    const struct config_unit *unit = config_find_unit(units, cursor);
    if (unit == NULL)
        return CONFIG_NUMBER_INVALID;
    if (too_large || (negative && number != 0) || number > LLONG_MAX / unit->multiplier)
        return CONFIG_NUMBER_OUT_OF_RANGE;
    *value = number * unit->multiplier;
    return CONFIG_NUMBER_OK;
}

static const struct config_unit *config_units_for(enum config_type type)
{
    if (type == CONFIG_TYPE_SIZE)
        return config_size_units;
    if (type == CONFIG_TYPE_DURATION)
        return config_duration_units;
    if (type == CONFIG_TYPE_MILLISECONDS)
        return config_millisecond_units;
    return config_integer_units;
}

static bool config_address_is_valid(const char *text)
{
    unsigned char address[sizeof(struct in6_addr)];
    return text != NULL &&
           (inet_pton(AF_INET, text, address) == 1 || inet_pton(AF_INET6, text, address) == 1);
}

/* ------------------------------------------------------------------------
 * Host names, "host:port", URLs and names (also used by cli.c)
 * ------------------------------------------------------------------------ */

static bool config_is_alphanumeric(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* Dot-separated labels of letters, digits, '-' and '_' (docker-compose
 * names containers "project_service_1"), none empty, none starting or
 * ending with '-'. The last label must not be all digits: the resolver
 * would read "10.0.0.256" or "1.2" as a (mistyped) IPv4 address. */
static bool config_host_name_is_valid(const char *text, size_t length)
{
    if (length == 0 || length > CONFIG_HOST_NAME_MAX)
        return false;
    size_t label_start = 0;
    bool label_numeric = true;
    for (size_t i = 0; i <= length; i++) {
        char c = i < length ? text[i] : '.';
        if (c == '.') {
            size_t label_length = i - label_start;
            if (label_length == 0 || label_length > CONFIG_HOST_LABEL_MAX ||
                text[label_start] == '-' || text[i - 1] == '-')
                return false;
            if (i == length && label_numeric)
                return false;
            label_start = i + 1;
            label_numeric = true;
        } else if (config_is_alphanumeric(c) || c == '-' || c == '_') {
            label_numeric = label_numeric && c >= '0' && c <= '9';
        } else {
            return false;
        }
    }
    return true;
}

bool config_host_is_valid(const char *text)
{
    return text != NULL &&
           (config_address_is_valid(text) || config_host_name_is_valid(text, strlen(text)));
}

/* Decimal digits only, 1..65535. */
static int config_parse_port(const char *text)
{
    int port = 0;
    if (*text == '\0')
        return -1;
    for (; *text != '\0'; text++) {
        if (*text < '0' || *text > '9' || port > 65535)
            return -1;
        port = port * 10 + (*text - '0');
    }
    return port >= 1 && port <= 65535 ? port : -1;
}

int config_host_port_parse(const char *text, char *host, size_t host_size, int *port)
{
    char buffer[CONFIG_HOST_NAME_MAX + 1];
    const char *host_start = text;
    const char *host_end;
    const char *port_text;
    bool bracketed = text[0] == '[';
    if (bracketed) {
        host_start = text + 1;
        host_end = strchr(host_start, ']');
        if (host_end == NULL || host_end[1] != ':')
            return -1;
        port_text = host_end + 2;
    } else {
        host_end = strrchr(text, ':');
        if (host_end == NULL)
            return -1;
        port_text = host_end + 1;
    }
    size_t length = (size_t)(host_end - host_start);
    if (length == 0 || length >= sizeof(buffer))
        return -1;
    memcpy(buffer, host_start, length);
    buffer[length] = '\0';
    /* An IPv6 literal goes in brackets, and only an IPv6 literal. */
    unsigned char address[sizeof(struct in6_addr)];
    if (bracketed ? inet_pton(AF_INET6, buffer, address) != 1
                  : strchr(buffer, ':') != NULL || !config_host_is_valid(buffer))
        return -1;
    int number = config_parse_port(port_text);
    if (number < 0)
        return -1;
    if (host != NULL) {
        if (length >= host_size)
            return -1;
        memcpy(host, buffer, length + 1);
    }
    if (port != NULL)
        *port = number;
    return 0;
}

bool config_ws_url_is_valid(const char *text)
{
    if (text == NULL)
        return false;
    if (strncmp(text, "ws://", 5) == 0)
        return config_host_port_parse(text + 5, NULL, 0, NULL) == 0;
    if (strncmp(text, "wss://", 6) == 0)
        return config_host_port_parse(text + 6, NULL, 0, NULL) == 0;
    return false;
}

static bool config_name_is_valid(const char *text)
{
    if (*text == '\0')
        return false;
    for (; *text != '\0'; text++)
        if (!config_is_alphanumeric(*text) && *text != '.' && *text != '_' && *text != '-')
            return false;
    return true;
}

bool config_node_id_is_valid(const char *text)
{
    return text != NULL && config_name_is_valid(text) && strlen(text) <= NODE_ID_MAX_LENGTH;
}

/* Printable, no spaces: a Redis key prefix is pasted into every key name. */
static bool config_token_is_valid(const char *text)
{
    if (*text == '\0')
        return false;
    for (; *text != '\0'; text++)
        if ((unsigned char)*text <= ' ' || *text == 0x7f)
            return false;
    return true;
}

/* The syntax of a non-empty value of a string type; lengths are separate. */
static bool config_text_is_valid(enum config_type type, const char *text)
{
    switch (type) {
    case CONFIG_TYPE_ADDRESS:
        return config_address_is_valid(text);
    case CONFIG_TYPE_HOST:
        return config_host_is_valid(text);
    case CONFIG_TYPE_NAME:
        return config_name_is_valid(text);
    case CONFIG_TYPE_TOKEN:
        return config_token_is_valid(text);
    case CONFIG_TYPE_URL:
        return config_ws_url_is_valid(text);
    case CONFIG_TYPE_STRING:
    case CONFIG_TYPE_INTEGER:
    case CONFIG_TYPE_SIZE:
    case CONFIG_TYPE_DURATION:
    case CONFIG_TYPE_MILLISECONDS:
    case CONFIG_TYPE_BOOLEAN:
    case CONFIG_TYPE_LOG_LEVEL:
    case CONFIG_TYPE_EVENT_LOOP:
    case CONFIG_TYPE_ENDPOINTS:
        break;
    }
    return true;
}

static bool config_text_is_too_long(const struct config_setting *setting, const char *text)
{
    return setting->maximum > 0 && strlen(text) > (size_t)setting->maximum;
}

/* ------------------------------------------------------------------------
 * Loading values
 * ------------------------------------------------------------------------ */

static int config_load_number(struct config_loader *loader, const struct config_setting *setting,
                              const yaml_node_t *node)
{
    /* Sizes and durations with a suffix are strings in YAML terms, so only
     * plain integers insist on the plain style. */
    if (setting->type == CONFIG_TYPE_INTEGER && !config_scalar_is_plain(node))
        return config_report_type(loader, setting, node);
    long long value = 0;
    switch (
        config_parse_number(config_scalar_text(node), config_units_for(setting->type), &value)) {
    case CONFIG_NUMBER_INVALID:
        return config_report_type(loader, setting, node);
    case CONFIG_NUMBER_OUT_OF_RANGE:
        return config_report_range(loader, setting, node);
    case CONFIG_NUMBER_OK:
        break;
    }
    if (value < setting->minimum || value > setting->maximum)
        return config_report_range(loader, setting, node);
    config_store_number(loader->config, setting, value);
    return 0;
}

static int config_load_text(struct config_loader *loader, const struct config_setting *setting,
                            const yaml_node_t *node)
{
    char **field = config_string_field(loader->config, setting);
    bool optional = config_type_is_optional(setting->type);
    if (optional && config_node_is_null(node)) {
        config_set_string(field, NULL);
        return 0;
    }
    if (config_node_is_null(node))
        return config_report_type(loader, setting, node);
    const char *text = config_scalar_text(node);
    if (config_scalar_has_nul(node))
        return config_report(loader, node->start_mark, "%s: contains a NUL character",
                             setting->path);
    if (optional && text[0] == '\0')
        return config_report(loader, node->start_mark,
                             "%s: must not be empty (write null to leave it unset)", setting->path);
    if (!config_text_is_valid(setting->type, text) || text[0] == '\0')
        return config_report_type(loader, setting, node);
    if (config_text_is_too_long(setting, text))
        return config_report(loader, node->start_mark, "%s: longer than %lld characters",
                             setting->path, setting->maximum);
    config_set_string(field, text);
    return 0;
}

static int config_load_endpoint(struct config_loader *loader, const struct config_setting *setting,
                                const yaml_node_t *node)
{
    char description[CONFIG_QUOTE_MAX + 32];
    config_describe_node(node, description, sizeof(description));
    if (node->type != YAML_SCALAR_NODE || config_node_is_null(node))
        return config_report(loader, node->start_mark, "%s: expected %s, got %s", setting->path,
                             CONFIG_ENDPOINT_DESCRIPTION, description);
    if (config_scalar_has_nul(node))
        return config_report(loader, node->start_mark, "%s: contains a NUL character",
                             setting->path);
    if (config_host_port_parse(config_scalar_text(node), NULL, 0, NULL) != 0)
        return config_report(loader, node->start_mark, "%s: expected %s, got %s", setting->path,
                             CONFIG_ENDPOINT_DESCRIPTION, description);
    return 0;
}

static int config_load_list(struct config_loader *loader, const struct config_setting *setting,
                            const yaml_node_t *node)
{
    char ***field = config_list_field(loader->config, setting);
    if (config_node_is_null(node)) {
        config_list_free(*field);
        *field = NULL;
        return 0;
    }
    if (node->type != YAML_SEQUENCE_NODE)
        return config_report_type(loader, setting, node);
    const yaml_node_item_t *items = node->data.sequence.items.start;
    size_t count = (size_t)(node->data.sequence.items.top - items);
    for (size_t i = 0; i < count; i++)
        if (config_load_endpoint(loader, setting,
                                 yaml_document_get_node(&loader->document, items[i])) != 0)
            return -1;
    char **list = count > 0 ? config_list_allocate(count) : NULL;
    for (size_t i = 0; i < count; i++)
        list[i] = config_duplicate(
            config_scalar_text(yaml_document_get_node(&loader->document, items[i])));
    config_list_free(*field);
    *field = list;
    return 0;
}

static int config_load_boolean(struct config_loader *loader, const struct config_setting *setting,
                               const yaml_node_t *node)
{
    static const struct {
        const char *text;
        bool value;
    } spellings[] = {{"true", true},   {"True", true},   {"TRUE", true},
                     {"false", false}, {"False", false}, {"FALSE", false}};
    for (size_t i = 0; i < sizeof(spellings) / sizeof(spellings[0]); i++) {
        if (config_scalar_is_plain(node) &&
            strcmp(config_scalar_text(node), spellings[i].text) == 0) {
            config_store_number(loader->config, setting, spellings[i].value);
            return 0;
        }
    }
    return config_report_type(loader, setting, node);
}

static int config_load_log_level(struct config_loader *loader, const struct config_setting *setting,
                                 const yaml_node_t *node)
{
    int level = config_node_is_null(node) ? -1 : log_level_from_name(config_scalar_text(node));
    if (level < 0)
        return config_report_type(loader, setting, node);
    config_store_number(loader->config, setting, level);
    return 0;
}

static int config_load_event_loop(struct config_loader *loader,
                                  const struct config_setting *setting, const yaml_node_t *node)
{
    int loop =
        config_node_is_null(node) ? -1 : config_event_loop_from_name(config_scalar_text(node));
    if (loop < 0)
        return config_report_type(loader, setting, node);
    config_store_number(loader->config, setting, loop);
    return 0;
}

static int config_load_value(struct config_loader *loader, const struct config_setting *setting,
                             const yaml_node_t *node)
{
    if (setting->type == CONFIG_TYPE_ENDPOINTS)
        return config_load_list(loader, setting, node);
    if (node->type != YAML_SCALAR_NODE)
        return config_report_type(loader, setting, node);
    switch (setting->type) {
    case CONFIG_TYPE_STRING:
    case CONFIG_TYPE_ADDRESS:
    case CONFIG_TYPE_HOST:
    case CONFIG_TYPE_NAME:
    case CONFIG_TYPE_TOKEN:
    case CONFIG_TYPE_URL:
        return config_load_text(loader, setting, node);
    case CONFIG_TYPE_INTEGER:
    case CONFIG_TYPE_SIZE:
    case CONFIG_TYPE_DURATION:
    case CONFIG_TYPE_MILLISECONDS:
        return config_load_number(loader, setting, node);
    case CONFIG_TYPE_BOOLEAN:
        return config_load_boolean(loader, setting, node);
    case CONFIG_TYPE_LOG_LEVEL:
        return config_load_log_level(loader, setting, node);
    case CONFIG_TYPE_EVENT_LOOP:
        return config_load_event_loop(loader, setting, node);
    case CONFIG_TYPE_ENDPOINTS:
        break;
    }
    return config_report_type(loader, setting, node);
}

/* ------------------------------------------------------------------------
 * Walking the document
 * ------------------------------------------------------------------------ */

static int config_load_mapping(struct config_loader *loader, const yaml_node_t *mapping,
                               const char *prefix);

static int config_load_section(struct config_loader *loader, const char *path,
                               const yaml_node_t *node)
{
    /* "limits:" with every key commented out parses as null. */
    if (config_node_is_null(node))
        return 0;
    if (node->type != YAML_MAPPING_NODE) {
        char description[CONFIG_QUOTE_MAX + 32];
        config_describe_node(node, description, sizeof(description));
        return config_report(loader, node->start_mark, "%s: expected a mapping, got %s", path,
                             description);
    }
    return config_load_mapping(loader, node, path);
}

static int config_build_path(struct config_loader *loader, const char *prefix,
                             const yaml_node_t *key, char *path, size_t size)
{
    const char *section = prefix[0] != '\0' ? prefix : "top level";
    if (key->type != YAML_SCALAR_NODE)
        return config_report(loader, key->start_mark, "%s: keys must be strings", section);
    if (config_scalar_has_nul(key))
        return config_report(loader, key->start_mark, "%s: a key contains a NUL character",
                             section);
    if (prefix[0] == '\0')
        snprintf(path, size, "%s", config_scalar_text(key));
    else
        snprintf(path, size, "%s.%s", prefix, config_scalar_text(key));
    return 0;
}

/* Earlier keys of the mapping all matched the table (anything else already
 * failed), so this stays a handful of comparisons however large the file. */
static bool config_key_is_duplicate(struct config_loader *loader, const yaml_node_t *mapping,
                                    const yaml_node_pair_t *current, const yaml_node_t *key)
{
    for (const yaml_node_pair_t *pair = mapping->data.mapping.pairs.start; pair < current; pair++) {
        const yaml_node_t *earlier = yaml_document_get_node(&loader->document, pair->key);
        if (earlier->data.scalar.length == key->data.scalar.length &&
            memcmp(earlier->data.scalar.value, key->data.scalar.value, key->data.scalar.length) ==
                0)
            return true;
    }
    return false;
}

static int config_load_entry(struct config_loader *loader, const char *path, const yaml_node_t *key,
                             const yaml_node_t *value)
{
    /* "listen.port: 80" would otherwise match the table and give one
     * setting two spellings, defeating the duplicate-key check. */
    if (strchr(config_scalar_text(key), '.') != NULL)
        return config_report(loader, key->start_mark,
                             "unknown key \"%s\" (nest sections instead of dotting keys)", path);
    const struct config_setting *setting = config_find_setting(path);
    if (setting != NULL)
        return config_load_value(loader, setting, value);
    if (config_is_section(path))
        return config_load_section(loader, path, value);
    return config_report(loader, key->start_mark, "unknown key \"%s\"", path);
}

/* Recursion follows the table, not the document: a key that is neither a
 * setting nor a section stops the walk, so depth is bounded by the longest
 * setting path even when aliases make the document cyclic. */
static int config_load_mapping(struct config_loader *loader, const yaml_node_t *mapping,
                               const char *prefix)
{
    for (const yaml_node_pair_t *pair = mapping->data.mapping.pairs.start;
         pair < mapping->data.mapping.pairs.top; pair++) {
        const yaml_node_t *key = yaml_document_get_node(&loader->document, pair->key);
        const yaml_node_t *value = yaml_document_get_node(&loader->document, pair->value);
        char path[CONFIG_PATH_MAX];
        if (config_build_path(loader, prefix, key, path, sizeof(path)) != 0)
            return -1;
        if (config_key_is_duplicate(loader, mapping, pair, key))
            return config_report(loader, key->start_mark, "duplicate key \"%s\"", path);
        if (config_load_entry(loader, path, key, value) != 0)
            return -1;
    }
    return 0;
}

static int config_load_document(struct config_loader *loader)
{
    const yaml_node_t *root = yaml_document_get_root_node(&loader->document);
    /* An empty file, or one holding only comments, means all defaults. */
    if (root == NULL || config_node_is_null(root))
        return 0;
    if (root->type != YAML_MAPPING_NODE) {
        char description[CONFIG_QUOTE_MAX + 32];
        config_describe_node(root, description, sizeof(description));
        return config_report(loader, root->start_mark,
                             "expected a mapping of sections (listen:, limits:, ...) at the top "
                             "level, got %s",
                             description);
    }
    return config_load_mapping(loader, root, "");
}

/* A second document would be silently ignored by a single load, and
 * parsing on also surfaces syntax errors after the first one. */
static int config_expect_end(yaml_parser_t *parser, const char *name, const char *yaml,
                             size_t length, char *err, size_t err_size)
{
    yaml_document_t document;
    if (!yaml_parser_load(parser, &document))
        return config_report_parser_error(parser, name, yaml, length, err, err_size);
    int result = 0;
    if (yaml_document_get_root_node(&document) != NULL)
        result = config_write_error_at(err, err_size, name, document.start_mark,
                                       "only one YAML document is allowed");
    yaml_document_delete(&document);
    return result;
}

static int config_parse_into(struct relay_config *work, const char *yaml, size_t length,
                             const char *name, char *err, size_t err_size)
{
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser))
        return config_write_error(err, err_size, "%s: out of memory", name);
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, length);
    struct config_loader loader = {.config = work, .name = name, .err = err, .err_size = err_size};
    int result = -1;
    if (!yaml_parser_load(&parser, &loader.document)) {
        config_report_parser_error(&parser, name, yaml, length, err, err_size);
    } else {
        result = config_load_document(&loader);
        yaml_document_delete(&loader.document);
        if (result == 0)
            result = config_expect_end(&parser, name, yaml, length, err, err_size);
    }
    yaml_parser_delete(&parser);
    return result;
}

int config_load_string(struct relay_config *config, const char *yaml, size_t length,
                       const char *name, char *err, size_t err_size)
{
    if (name == NULL)
        name = "<string>";
    if (yaml == NULL)
        yaml = "";
    if (length > CONFIG_MAX_FILE_BYTES)
        return config_write_error(err, err_size, "%s: larger than %d bytes, refusing to load", name,
                                  CONFIG_MAX_FILE_BYTES);
    struct relay_config work;
    config_copy(&work, config);
    if (config_parse_into(&work, yaml, length, name, err, err_size) != 0) {
        config_free(&work);
        return -1;
    }
    config_free(config);
    *config = work;
    return 0;
}

/* Reads at most twice the cap, so config_load_string can refuse an
 * oversized file with the same message as an oversized string. */
static int config_read_stream(FILE *file, const char *path, char **text, size_t *length, char *err,
                              size_t err_size)
{
    char *buffer = NULL;
    size_t capacity = 0;
    size_t used = 0;
    for (;;) {
        if (used == capacity && capacity <= CONFIG_MAX_FILE_BYTES) {
            capacity = capacity == 0 ? 4096 : capacity * 2;
            char *grown = realloc(buffer, capacity);
            if (grown == NULL) {
                free(buffer);
                return config_write_error(err, err_size, "%s: out of memory", path);
            }
            buffer = grown;
        }
        size_t count = fread(buffer + used, 1, capacity - used, file);
        used += count;
        if (ferror(file)) {
            int error = errno;
            free(buffer);
            return config_write_error(err, err_size, "%s: cannot read: %s", path, strerror(error));
        }
        if (count == 0 || feof(file)) {
            *text = buffer;
            *length = used;
            return 0;
        }
    }
}

int config_load_file(struct relay_config *config, const char *path, char *err, size_t err_size)
{
    if (path == NULL)
        return config_write_error(err, err_size, "no configuration file given");
    FILE *file = fopen(path, "rb");
    if (file == NULL)
        return config_write_error(err, err_size, "%s: cannot open: %s", path, strerror(errno));
    char *text = NULL;
    size_t length = 0;
    int result = config_read_stream(file, path, &text, &length, err, err_size);
    fclose(file);
    if (result != 0)
        return -1;
    result = config_load_string(config, text, length, path, err, err_size);
    free(text);
    return result;
}

/* ------------------------------------------------------------------------
 * Validation
 * ------------------------------------------------------------------------ */

static int config_validate_text(const struct config_setting *setting, const char *text, char *err,
                                size_t err_size)
{
    if (text == NULL && config_type_is_optional(setting->type))
        return 0;
    if (text != NULL && text[0] == '\0' && config_type_is_optional(setting->type))
        return config_write_error(err, err_size, "%s: must not be empty", setting->path);
    if (text == NULL || text[0] == '\0' || !config_text_is_valid(setting->type, text))
        return config_write_error(err, err_size, "%s: \"%s\" is not %s", setting->path,
                                  text != NULL ? text : "(null)",
                                  config_type_descriptions[setting->type]);
    if (config_text_is_too_long(setting, text))
        return config_write_error(err, err_size, "%s: longer than %lld characters", setting->path,
                                  setting->maximum);
    return 0;
}

static int config_validate_list(const struct config_setting *setting, char *const *list, char *err,
                                size_t err_size)
{
    for (; list != NULL && *list != NULL; list++)
        if (config_host_port_parse(*list, NULL, 0, NULL) != 0)
            return config_write_error(err, err_size, "%s: \"%s\" is not %s", setting->path, *list,
                                      CONFIG_ENDPOINT_DESCRIPTION);
    return 0;
}

/* The loader enforces ranges, but flags and code can set fields too. */
static int config_validate_setting(const struct relay_config *config,
                                   const struct config_setting *setting, char *err, size_t err_size)
{
    if (config_type_is_string(setting->type))
        return config_validate_text(setting, *config_string_field(config, setting), err, err_size);
    if (setting->type == CONFIG_TYPE_ENDPOINTS)
        return config_validate_list(setting, *config_list_field(config, setting), err, err_size);
    long long value = config_read_number(config, setting);
    if (value < setting->minimum || value > setting->maximum)
        return config_write_error(err, err_size, "%s: %lld is out of range (%lld..%lld)",
                                  setting->path, value, setting->minimum, setting->maximum);
    return 0;
}

static int config_validate_readable(const char *setting, const char *file, char *err,
                                    size_t err_size)
{
    if (file == NULL || access(file, R_OK) == 0)
        return 0;
    return config_write_error(err, err_size, "%s: cannot read \"%s\": %s", setting, file,
                              strerror(errno));
}

static int config_validate_tls(const struct relay_tls_config *tls, char *err, size_t err_size)
{
    if (tls->key_file != NULL && tls->cert_file == NULL)
        return config_write_error(err, err_size,
                                  "listen.tls.key is set but listen.tls.cert is not (TLS needs "
                                  "both)");
    if (tls->cert_file != NULL && tls->key_file == NULL)
        return config_write_error(err, err_size,
                                  "listen.tls.cert is set but listen.tls.key is not (TLS needs "
                                  "both)");
    if (tls->chain_file != NULL && tls->cert_file == NULL)
        return config_write_error(err, err_size,
                                  "listen.tls.chain is set but listen.tls.cert is not");
    if (config_validate_readable("listen.tls.cert", tls->cert_file, err, err_size) != 0 ||
        config_validate_readable("listen.tls.key", tls->key_file, err, err_size) != 0 ||
        config_validate_readable("listen.tls.chain", tls->chain_file, err, err_size) != 0)
        return -1;
    return 0;
}

/* inet_pton's bytes with the family; IPv4 fills the first four. */
static int config_address_bytes(const char *text, unsigned char bytes[sizeof(struct in6_addr)])
{
    memset(bytes, 0, sizeof(struct in6_addr));
    if (inet_pton(AF_INET, text, bytes) == 1)
        return AF_INET;
    return inet_pton(AF_INET6, text, bytes) == 1 ? AF_INET6 : AF_UNSPEC;
}

/* Two listeners on one port collide when their addresses are equal or
 * either is a wildcard ("0.0.0.0", "::"), whose bytes are all zero. */
static bool config_listeners_collide(const char *first, const char *second)
{
    static const unsigned char any[sizeof(struct in6_addr)] = {0};
    unsigned char first_bytes[sizeof(struct in6_addr)];
    unsigned char second_bytes[sizeof(struct in6_addr)];
    int first_family = config_address_bytes(first, first_bytes);
    int second_family = config_address_bytes(second, second_bytes);
    if (memcmp(first_bytes, any, sizeof(any)) == 0 || memcmp(second_bytes, any, sizeof(any)) == 0)
        return true;
    return first_family == second_family && memcmp(first_bytes, second_bytes, sizeof(any)) == 0;
}

static int config_validate_relations(const struct relay_config *config, char *err, size_t err_size)
{
    if (config->send_queue_low_water >= config->send_queue_high_water)
        return config_write_error(err, err_size,
                                  "limits.send_queue_low_water (%zu) must be below "
                                  "limits.send_queue_high_water (%zu)",
                                  config->send_queue_low_water, config->send_queue_high_water);
    if (config->admin_enabled && config->admin_port == config->port &&
        config_listeners_collide(config->bind_address, config->admin_bind_address))
        return config_write_error(
            err, err_size,
            "admin.port %d collides with listen.port (admin.bind %s, listen.bind %s)",
            config->admin_port, config->admin_bind_address, config->bind_address);
    return 0;
}

/* Mutual TLS between nodes needs all three files or none. */
static int config_validate_cluster_tls(const struct relay_cluster_config *cluster, char *err,
                                       size_t err_size)
{
    static const char *const names[] = {"cluster.tls.cert", "cluster.tls.key", "cluster.tls.ca"};
    const char *const files[] = {cluster->tls_cert_file, cluster->tls_key_file,
                                 cluster->tls_ca_file};
    const char *set = NULL;
    const char *unset = NULL;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (files[i] != NULL && set == NULL)
            set = names[i];
        if (files[i] == NULL && unset == NULL)
            unset = names[i];
    }
    if (set != NULL && unset != NULL)
        return config_write_error(err, err_size,
                                  "%s is set but %s is not (mutual TLS between nodes needs "
                                  "cluster.tls.cert, cluster.tls.key and cluster.tls.ca)",
                                  set, unset);
    return 0;
}

/* Checks that hold whether or not this node is a cluster member: a
 * contradictory cluster section is a mistake even while it is unused. */
static int config_validate_cluster_structure(const struct relay_cluster_config *cluster, char *err,
                                             size_t err_size)
{
    if (config_validate_cluster_tls(cluster, err, err_size) != 0)
        return -1;
    if (cluster->secret != NULL && cluster->secret_file != NULL)
        return config_write_error(err, err_size,
                                  "cluster.secret and cluster.secret_file are both set (set one)");
    bool have_sentinels = cluster->sentinels != NULL && cluster->sentinels[0] != NULL;
    if (cluster->sentinel_master != NULL && !have_sentinels)
        return config_write_error(
            err, err_size,
            "cluster.sentinel.master is set but cluster.sentinel.addresses is "
            "empty");
    if (have_sentinels && cluster->sentinel_master == NULL)
        return config_write_error(
            err, err_size,
            "cluster.sentinel.addresses is set but cluster.sentinel.master is "
            "not");
    if (cluster->redis_host != NULL && cluster->sentinel_master != NULL)
        return config_write_error(err, err_size,
                                  "cluster.redis.host and cluster.sentinel.master are both set "
                                  "(use a fixed Redis master or Sentinel, not both)");
    if (cluster->node_ttl_seconds <= cluster->heartbeat_interval_seconds)
        return config_write_error(
            err, err_size, "cluster.node_ttl (%d) must exceed cluster.heartbeat_interval (%d)",
            cluster->node_ttl_seconds, cluster->heartbeat_interval_seconds);
    if (cluster->link_timeout_seconds <= cluster->link_ping_interval_seconds)
        return config_write_error(
            err, err_size,
            "cluster.link.timeout (%d) must exceed cluster.link.ping_interval "
            "(%d)",
            cluster->link_timeout_seconds, cluster->link_ping_interval_seconds);
    return 0;
}

static bool config_address_is_wildcard(const char *text)
{
    static const unsigned char any[sizeof(struct in6_addr)] = {0};
    unsigned char bytes[sizeof(struct in6_addr)];
    return config_address_bytes(text, bytes) != AF_UNSPEC && memcmp(bytes, any, sizeof(any)) == 0;
}

/* Checks for a cluster member only: the listener, its files and peers. */
static int config_validate_cluster_member(const struct relay_config *config, char *err,
                                          size_t err_size)
{
    const struct relay_cluster_config *cluster = &config->cluster;
    if (cluster->tls_cert_file == NULL && cluster->secret == NULL && cluster->secret_file == NULL)
        return config_write_error(err, err_size,
                                  "cluster: nodes must authenticate each other: set "
                                  "cluster.secret_file (or cluster.secret), or cluster.tls.cert, "
                                  "cluster.tls.key and cluster.tls.ca");
    if (config_validate_readable("cluster.tls.cert", cluster->tls_cert_file, err, err_size) != 0 ||
        config_validate_readable("cluster.tls.key", cluster->tls_key_file, err, err_size) != 0 ||
        config_validate_readable("cluster.tls.ca", cluster->tls_ca_file, err, err_size) != 0 ||
        config_validate_readable("cluster.secret_file", cluster->secret_file, err, err_size) != 0)
        return -1;
    if (cluster->port == config->port &&
        config_listeners_collide(cluster->bind_address, config->bind_address))
        return config_write_error(
            err, err_size,
            "cluster.port %d collides with listen.port (cluster.bind %s, listen.bind %s)",
            cluster->port, cluster->bind_address, config->bind_address);
    if (config->admin_enabled && cluster->port == config->admin_port &&
        config_listeners_collide(cluster->bind_address, config->admin_bind_address))
        return config_write_error(
            err, err_size,
            "cluster.port %d collides with admin.port (cluster.bind %s, admin.bind %s)",
            cluster->port, cluster->bind_address, config->admin_bind_address);
    /* Peers cannot dial 0.0.0.0: the URL must be spelled out. */
    if (cluster->advertise_url == NULL && config_address_is_wildcard(cluster->bind_address))
        return config_write_error(err, err_size,
                                  "cluster.advertise must be set when cluster.bind is a wildcard "
                                  "address (%s): peers need an address they can reach",
                                  cluster->bind_address);
    return 0;
}

int config_validate(const struct relay_config *config, char *err, size_t err_size)
{
    for (size_t i = 0; i < CONFIG_SETTING_COUNT; i++)
        if (config_validate_setting(config, &config_settings[i], err, err_size) != 0)
            return -1;
    if (config_validate_tls(&config->tls, err, err_size) != 0)
        return -1;
    if (config_validate_relations(config, err, err_size) != 0)
        return -1;
    if (config_validate_cluster_structure(&config->cluster, err, err_size) != 0)
        return -1;
    if (config_cluster_enabled(config))
        return config_validate_cluster_member(config, err, err_size);
    return 0;
}

/* ------------------------------------------------------------------------
 * Printing
 * ------------------------------------------------------------------------ */

/* Strings go out with no tag and plain_implicit off, which makes the
 * emitter quote them: a file name such as "null", "true" or "8080" must
 * come back as that string. */
static int config_emit_scalar(yaml_emitter_t *emitter, const char *text, size_t length, bool quoted)
{
    yaml_event_t event;
    if (!yaml_scalar_event_initialize(&event, NULL, NULL, (const yaml_char_t *)text, (int)length,
                                      !quoted, 1, YAML_ANY_SCALAR_STYLE))
        return -1;
    return yaml_emitter_emit(emitter, &event) ? 0 : -1;
}

static int config_emit_plain(yaml_emitter_t *emitter, const char *text)
{
    return config_emit_scalar(emitter, text, strlen(text), false);
}

static int config_emit_mapping_start(yaml_emitter_t *emitter)
{
    yaml_event_t event;
    if (!yaml_mapping_start_event_initialize(&event, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE))
        return -1;
    return yaml_emitter_emit(emitter, &event) ? 0 : -1;
}

static int config_emit_mapping_end(yaml_emitter_t *emitter)
{
    yaml_event_t event;
    if (!yaml_mapping_end_event_initialize(&event))
        return -1;
    return yaml_emitter_emit(emitter, &event) ? 0 : -1;
}

static size_t config_section_depth(const char *path)
{
    size_t depth = 0;
    for (; *path != '\0'; path++)
        depth += *path == '.';
    return depth;
}

/* How many leading sections two setting paths share: "listen.tls.cert"
 * and "listen.port" share one. */
static size_t config_shared_sections(const char *first, const char *second)
{
    size_t shared = 0;
    for (;;) {
        const char *first_dot = strchr(first, '.');
        const char *second_dot = strchr(second, '.');
        if (first_dot == NULL || second_dot == NULL)
            return shared;
        size_t length = (size_t)(first_dot - first);
        if (length != (size_t)(second_dot - second) || memcmp(first, second, length) != 0)
            return shared;
        shared++;
        first = first_dot + 1;
        second = second_dot + 1;
    }
}

/* Close the sections of the previous setting that the next one leaves, open
 * the ones it enters, then emit its own key. */
static int config_emit_key(yaml_emitter_t *emitter, const char *previous, const char *path)
{
    size_t shared = config_shared_sections(previous, path);
    for (size_t depth = config_section_depth(previous); depth > shared; depth--)
        if (config_emit_mapping_end(emitter) != 0)
            return -1;
    const char *component = path;
    for (size_t depth = 0;; depth++) {
        const char *dot = strchr(component, '.');
        size_t length = dot != NULL ? (size_t)(dot - component) : strlen(component);
        if (depth >= shared && config_emit_scalar(emitter, component, length, false) != 0)
            return -1;
        if (dot == NULL)
            return 0;
        if (depth >= shared && config_emit_mapping_start(emitter) != 0)
            return -1;
        component = dot + 1;
    }
}

/* An empty list prints as "[]", others as a block sequence of quoted
 * strings. */
static int config_emit_list(yaml_emitter_t *emitter, char *const *list)
{
    bool empty = list == NULL || list[0] == NULL;
    yaml_event_t event;
    if (!yaml_sequence_start_event_initialize(
            &event, NULL, NULL, 1, empty ? YAML_FLOW_SEQUENCE_STYLE : YAML_BLOCK_SEQUENCE_STYLE) ||
        !yaml_emitter_emit(emitter, &event))
        return -1;
    for (; list != NULL && *list != NULL; list++)
        if (config_emit_scalar(emitter, *list, strlen(*list), true) != 0)
            return -1;
    if (!yaml_sequence_end_event_initialize(&event))
        return -1;
    return yaml_emitter_emit(emitter, &event) ? 0 : -1;
}

static int config_emit_value(yaml_emitter_t *emitter, const struct relay_config *config,
                             const struct config_setting *setting)
{
    if (config_type_is_string(setting->type)) {
        const char *text = *config_string_field(config, setting);
        if (text == NULL)
            return config_emit_plain(emitter, "null");
        if (setting->redacted)
            return config_emit_plain(emitter, CONFIG_REDACTED);
        return config_emit_scalar(emitter, text, strlen(text), true);
    }
    if (setting->type == CONFIG_TYPE_ENDPOINTS)
        return config_emit_list(emitter, *config_list_field(config, setting));
    long long value = config_read_number(config, setting);
    if (setting->type == CONFIG_TYPE_BOOLEAN)
        return config_emit_plain(emitter, value ? "true" : "false");
    if (setting->type == CONFIG_TYPE_LOG_LEVEL)
        return config_emit_plain(emitter, log_level_name((enum log_level)value));
    if (setting->type == CONFIG_TYPE_EVENT_LOOP)
        return config_emit_plain(emitter, config_event_loop_name((enum relay_event_loop)value));
    char number[32];
    snprintf(number, sizeof(number), "%lld", value);
    return config_emit_plain(emitter, number);
}

static int config_emit_settings(yaml_emitter_t *emitter, const struct relay_config *config)
{
    const char *previous = "";
    for (size_t i = 0; i < CONFIG_SETTING_COUNT; i++) {
        const struct config_setting *setting = &config_settings[i];
        if (config_emit_key(emitter, previous, setting->path) != 0 ||
            config_emit_value(emitter, config, setting) != 0)
            return -1;
        previous = setting->path;
    }
    for (size_t depth = config_section_depth(previous); depth > 0; depth--)
        if (config_emit_mapping_end(emitter) != 0)
            return -1;
    return 0;
}

static int config_emit_document(yaml_emitter_t *emitter, const struct relay_config *config)
{
    yaml_event_t event;
    if (!yaml_stream_start_event_initialize(&event, YAML_UTF8_ENCODING) ||
        !yaml_emitter_emit(emitter, &event))
        return -1;
    if (!yaml_document_start_event_initialize(&event, NULL, NULL, NULL, 1) ||
        !yaml_emitter_emit(emitter, &event))
        return -1;
    if (config_emit_mapping_start(emitter) != 0 || config_emit_settings(emitter, config) != 0 ||
        config_emit_mapping_end(emitter) != 0)
        return -1;
    if (!yaml_document_end_event_initialize(&event, 1) || !yaml_emitter_emit(emitter, &event))
        return -1;
    if (!yaml_stream_end_event_initialize(&event) || !yaml_emitter_emit(emitter, &event))
        return -1;
    return 0;
}

void config_print(const struct relay_config *config, FILE *out)
{
    yaml_emitter_t emitter;
    if (!yaml_emitter_initialize(&emitter))
        return;
    yaml_emitter_set_output_file(&emitter, out);
    yaml_emitter_set_unicode(&emitter, 1);
    /* No folding: a long file name stays on one line. */
    yaml_emitter_set_width(&emitter, -1);
    /* A failure here is a write error on out, which the caller sees through
     * ferror(out); the emitter has no better way to report it. */
    config_emit_document(&emitter, config);
    yaml_emitter_delete(&emitter);
}

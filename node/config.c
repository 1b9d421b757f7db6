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
 *   - booleans: true/false (YAML 1.2 core spellings); YAML 1.1's yes, no,
 *     on and off are rejected because they surprise people;
 *   - null, ~ or nothing: unset for optional strings; an empty section
 *     ("limits:" with every key commented out) keeps the defaults;
 *   - tags are ignored and merge keys ("<<") are not supported.
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

#include "relay/config.h"

#define CONFIG_KIB 1024LL
#define CONFIG_MIB (1024LL * CONFIG_KIB)
#define CONFIG_GIB (1024LL * CONFIG_MIB)
#define CONFIG_DAY (24LL * 3600)

/* A configuration file is a few kilobytes; the cap keeps a wrong path (a
 * log file, a device) from being read into memory whole. */
#define CONFIG_MAX_FILE_BYTES (1024 * 1024)

/* Longer than any setting path, so a truncated path never matches a row. */
#define CONFIG_PATH_MAX 256

/* How much of an offending value an error message quotes. */
#define CONFIG_QUOTE_MAX 40

enum config_type {
    CONFIG_TYPE_STRING,    /* char *, optional: null leaves it unset */
    CONFIG_TYPE_ADDRESS,   /* char *, an IPv4 or IPv6 literal */
    CONFIG_TYPE_INTEGER,   /* int, a plain decimal integer */
    CONFIG_TYPE_SIZE,      /* size_t, bytes with an optional suffix */
    CONFIG_TYPE_DURATION,  /* int, seconds with an optional suffix */
    CONFIG_TYPE_BOOLEAN,   /* bool */
    CONFIG_TYPE_LOG_LEVEL, /* enum log_level, by name */
};

/* Completes "expected ..." in type errors. */
static const char *const config_type_descriptions[] = {
    [CONFIG_TYPE_STRING] = "a string or null",
    [CONFIG_TYPE_ADDRESS] = "an IPv4 or IPv6 address",
    [CONFIG_TYPE_INTEGER] = "an integer",
    [CONFIG_TYPE_SIZE] =
        "a size in bytes (an integer, optionally with a B, KiB, MiB or GiB suffix)",
    [CONFIG_TYPE_DURATION] = "a duration in seconds (an integer, optionally with an s, m or h "
                             "suffix)",
    [CONFIG_TYPE_BOOLEAN] = "true or false",
    [CONFIG_TYPE_LOG_LEVEL] = "a log level (error, warn, info or debug)",
};

struct config_setting {
    const char *path;
    enum config_type type;
    size_t offset;
    long long minimum;
    long long maximum;
    long long default_number; /* every type but the strings */
    const char *default_text; /* the string types; NULL leaves them unset */
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
    SETTING_INTEGER("limits.max_connections", max_connections, 1, 1000000, 10000),
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
    return type == CONFIG_TYPE_STRING || type == CONFIG_TYPE_ADDRESS;
}

static char **config_string_field(const struct relay_config *config,
                                  const struct config_setting *setting)
{
    return (char **)config_field(config, setting);
}

static void config_store_number(struct relay_config *config, const struct config_setting *setting,
                                long long value)
{
    void *field = config_field(config, setting);
    switch (setting->type) {
    case CONFIG_TYPE_INTEGER:
    case CONFIG_TYPE_DURATION:
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
    case CONFIG_TYPE_STRING:
    case CONFIG_TYPE_ADDRESS:
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
        return *(const int *)field;
    case CONFIG_TYPE_SIZE:
        /* Saturate: anything this large is out of every range anyway. */
        return *(const size_t *)field > (size_t)LLONG_MAX ? LLONG_MAX
                                                          : (long long)*(const size_t *)field;
    case CONFIG_TYPE_BOOLEAN:
        return *(const bool *)field;
    case CONFIG_TYPE_LOG_LEVEL:
        return (long long)*(const enum log_level *)field;
    case CONFIG_TYPE_STRING:
    case CONFIG_TYPE_ADDRESS:
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

void config_set_defaults(struct relay_config *config)
{
    memset(config, 0, sizeof(*config));
    for (size_t i = 0; i < CONFIG_SETTING_COUNT; i++) {
        const struct config_setting *setting = &config_settings[i];
        if (config_type_is_string(setting->type))
            config_set_string(config_string_field(config, setting), setting->default_text);
        else
            config_store_number(config, setting, setting->default_number);
    }
}

void config_free(struct relay_config *config)
{
    for (size_t i = 0; i < CONFIG_SETTING_COUNT; i++) {
        if (!config_type_is_string(config_settings[i].type))
            continue;
        char **field = config_string_field(config, &config_settings[i]);
        free(*field);
        *field = NULL;
    }
}

static void config_copy(struct relay_config *target, const struct relay_config *source)
{
    *target = *source;
    for (size_t i = 0; i < CONFIG_SETTING_COUNT; i++) {
        if (!config_type_is_string(config_settings[i].type))
            continue;
        char **field = config_string_field(target, &config_settings[i]);
        *field = *field != NULL ? config_duplicate(*field) : NULL;
    }
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
    return config_integer_units;
}

static bool config_address_is_valid(const char *text)
{
    unsigned char address[sizeof(struct in6_addr)];
    return text != NULL &&
           (inet_pton(AF_INET, text, address) == 1 || inet_pton(AF_INET6, text, address) == 1);
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
    if (setting->type == CONFIG_TYPE_STRING && config_node_is_null(node)) {
        config_set_string(field, NULL);
        return 0;
    }
    if (config_node_is_null(node))
        return config_report_type(loader, setting, node);
    const char *text = config_scalar_text(node);
    if (config_scalar_has_nul(node))
        return config_report(loader, node->start_mark, "%s: contains a NUL character",
                             setting->path);
    if (setting->type == CONFIG_TYPE_ADDRESS && !config_address_is_valid(text))
        return config_report_type(loader, setting, node);
    if (text[0] == '\0')
        return config_report(loader, node->start_mark,
                             "%s: must not be empty (write null to leave it unset)", setting->path);
    config_set_string(field, text);
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

static int config_load_value(struct config_loader *loader, const struct config_setting *setting,
                             const yaml_node_t *node)
{
    if (node->type != YAML_SCALAR_NODE)
        return config_report_type(loader, setting, node);
    switch (setting->type) {
    case CONFIG_TYPE_STRING:
    case CONFIG_TYPE_ADDRESS:
        return config_load_text(loader, setting, node);
    case CONFIG_TYPE_INTEGER:
    case CONFIG_TYPE_SIZE:
    case CONFIG_TYPE_DURATION:
        return config_load_number(loader, setting, node);
    case CONFIG_TYPE_BOOLEAN:
        return config_load_boolean(loader, setting, node);
    case CONFIG_TYPE_LOG_LEVEL:
        return config_load_log_level(loader, setting, node);
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

/* The loader enforces ranges, but flags and code can set fields too. */
static int config_validate_setting(const struct relay_config *config,
                                   const struct config_setting *setting, char *err, size_t err_size)
{
    if (setting->type == CONFIG_TYPE_ADDRESS) {
        const char *address = *config_string_field(config, setting);
        if (!config_address_is_valid(address))
            return config_write_error(err, err_size, "%s: \"%s\" is not an IPv4 or IPv6 address",
                                      setting->path, address != NULL ? address : "(null)");
        return 0;
    }
    if (setting->type == CONFIG_TYPE_STRING) {
        const char *text = *config_string_field(config, setting);
        if (text != NULL && text[0] == '\0')
            return config_write_error(err, err_size, "%s: must not be empty", setting->path);
        return 0;
    }
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

int config_validate(const struct relay_config *config, char *err, size_t err_size)
{
    for (size_t i = 0; i < CONFIG_SETTING_COUNT; i++)
        if (config_validate_setting(config, &config_settings[i], err, err_size) != 0)
            return -1;
    if (config_validate_tls(&config->tls, err, err_size) != 0)
        return -1;
    return config_validate_relations(config, err, err_size);
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

static int config_emit_value(yaml_emitter_t *emitter, const struct relay_config *config,
                             const struct config_setting *setting)
{
    if (config_type_is_string(setting->type)) {
        const char *text = *config_string_field(config, setting);
        if (text == NULL)
            return config_emit_plain(emitter, "null");
        return config_emit_scalar(emitter, text, strlen(text), true);
    }
    long long value = config_read_number(config, setting);
    if (setting->type == CONFIG_TYPE_BOOLEAN)
        return config_emit_plain(emitter, value ? "true" : "false");
    if (setting->type == CONFIG_TYPE_LOG_LEVEL)
        return config_emit_plain(emitter, log_level_name((enum log_level)value));
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

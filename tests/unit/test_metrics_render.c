/*
 * test_metrics_render.c - unit tests for node/metrics.c.
 *
 * metrics_render() output is read by Prometheus and by the dashboards built
 * on it, so these tests check the exposition the way a scraper would: a small
 * validator walks it line by line (HELP, then TYPE, then samples of that one
 * family; valid metric and label names; quoted label values; numeric values)
 * and lookups by series check that every label value is present and that the
 * printed numbers are the ones stored in relay_metrics.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "relay/metrics.h"

#define EXPOSITION_MAX_FAMILIES 64
#define EXPOSITION_MAX_NAME 128

/* What the validator learned about one family. */
struct exposition_family {
    char name[EXPOSITION_MAX_NAME];
    char type[16];
    int help_count;
    int type_count;
    int sample_count;
};

struct exposition {
    struct exposition_family families[EXPOSITION_MAX_FAMILIES];
    size_t family_count;
};

/* A rendered exposition with its length, freed by the test's teardown. */
static char *rendered_text;
static size_t rendered_length;

static int reset_metrics(void **state)
{
    memset(&relay_metrics, 0, sizeof(relay_metrics));
    rendered_text = NULL;
    rendered_length = 0;
    return 0;
}

static int free_rendered(void **state)
{
    free(rendered_text);
    rendered_text = NULL;
    return 0;
}

static const char *render(int ready)
{
    free(rendered_text);
    rendered_text = metrics_render(&rendered_length, ready);
    assert_non_null(rendered_text);
    return rendered_text;
}

/* ---- The line-by-line validator ---- */

static bool is_name_start(char character, bool allow_colon)
{
    return (character >= 'a' && character <= 'z') || (character >= 'A' && character <= 'Z') ||
           character == '_' || (allow_colon && character == ':');
}

static bool is_name_character(char character, bool allow_colon)
{
    return is_name_start(character, allow_colon) || (character >= '0' && character <= '9');
}

/* Length of the metric name ([a-zA-Z_:][a-zA-Z0-9_:]*) or label name
 * ([a-zA-Z_][a-zA-Z0-9_]*) at text; 0 if there is none. */
static size_t scan_name(const char *text, bool allow_colon)
{
    if (!is_name_start(text[0], allow_colon))
        return 0;
    size_t length = 1;
    while (is_name_character(text[length], allow_colon))
        length++;
    return length;
}

/* Scan a quoted label value with the three escapes the format allows;
 * returns the position after the closing quote. */
static const char *scan_label_value(const char *cursor, const char *line_end)
{
    assert_true(cursor < line_end && *cursor == '"');
    cursor++;
    while (cursor < line_end && *cursor != '"') {
        if (*cursor == '\\') {
            cursor++;
            assert_true(cursor < line_end);
            assert_non_null(strchr("\\\"n", *cursor));
        }
        cursor++;
    }
    assert_true(cursor < line_end);
    return cursor + 1;
}

/* Scan {name="value",...}; returns the position after the closing brace. */
static const char *scan_labels(const char *cursor, const char *line_end)
{
    assert_int_equal(*cursor, '{');
    cursor++;
    for (;;) {
        size_t name_length = scan_name(cursor, false);
        assert_true(name_length > 0);
        cursor += name_length;
        assert_int_equal(*cursor, '=');
        cursor = scan_label_value(cursor + 1, line_end);
        assert_true(cursor < line_end);
        if (*cursor == '}')
            return cursor + 1;
        assert_int_equal(*cursor, ',');
        cursor++;
    }
}

static struct exposition_family *find_family(struct exposition *exposition, const char *name,
                                             size_t name_length)
{
    for (size_t i = 0; i < exposition->family_count; i++) {
        struct exposition_family *family = &exposition->families[i];
        if (strlen(family->name) == name_length && memcmp(family->name, name, name_length) == 0)
            return family;
    }
    return NULL;
}

/* "# HELP name text": opens a new family, which must not exist yet. */
static void validate_help_line(struct exposition *exposition, const char *line,
                               const char *line_end)
{
    const char *name = line + strlen("# HELP ");
    size_t name_length = scan_name(name, true);
    assert_true(name_length > 0 && name_length < EXPOSITION_MAX_NAME);
    assert_int_equal(name[name_length], ' ');
    assert_true(name + name_length + 1 < line_end); /* some help text */
    assert_null(find_family(exposition, name, name_length));
    assert_true(exposition->family_count < EXPOSITION_MAX_FAMILIES);

    struct exposition_family *family = &exposition->families[exposition->family_count++];
    memcpy(family->name, name, name_length);
    family->name[name_length] = '\0';
    family->help_count = 1;
}

/* "# TYPE name type": must directly follow the family's HELP line. */
static void validate_type_line(struct exposition *exposition, const char *line,
                               const char *line_end)
{
    const char *name = line + strlen("# TYPE ");
    size_t name_length = scan_name(name, true);
    assert_true(exposition->family_count > 0);
    struct exposition_family *family = &exposition->families[exposition->family_count - 1];
    assert_int_equal(strlen(family->name), name_length);
    assert_memory_equal(family->name, name, name_length);
    assert_int_equal(family->type_count, 0);
    assert_int_equal(family->sample_count, 0);

    const char *type = name + name_length + 1;
    size_t type_length = (size_t)(line_end - type);
    assert_true(type_length > 0 && type_length < sizeof(family->type));
    memcpy(family->type, type, type_length);
    family->type[type_length] = '\0';
    assert_true(strcmp(family->type, "counter") == 0 || strcmp(family->type, "gauge") == 0 ||
                strcmp(family->type, "histogram") == 0 || strcmp(family->type, "summary") == 0 ||
                strcmp(family->type, "untyped") == 0);
    family->type_count = 1;
}

/* "name{labels} value": belongs to the family whose HELP and TYPE came last. */
static void validate_sample_line(struct exposition *exposition, const char *line,
                                 const char *line_end)
{
    size_t name_length = scan_name(line, true);
    assert_true(name_length > 0);
    assert_true(exposition->family_count > 0);
    struct exposition_family *family = &exposition->families[exposition->family_count - 1];
    assert_int_equal(family->type_count, 1);
    /* Counters and gauges have no _bucket/_sum/_count suffixes: exact match. */
    assert_int_equal(strlen(family->name), name_length);
    assert_memory_equal(family->name, line, name_length);

    const char *cursor = line + name_length;
    if (*cursor == '{')
        cursor = scan_labels(cursor, line_end);
    assert_int_equal(*cursor, ' ');
    cursor++;
    assert_true(cursor < line_end);

    char value[64];
    size_t value_length = (size_t)(line_end - cursor);
    assert_true(value_length < sizeof(value));
    memcpy(value, cursor, value_length);
    value[value_length] = '\0';
    char *value_end;
    strtod(value, &value_end);
    assert_true(value_end == value + value_length); /* a number and nothing after it */
    family->sample_count++;
}

static void validate_exposition(const char *text, size_t length, struct exposition *exposition)
{
    memset(exposition, 0, sizeof(*exposition));
    assert_true(length > 0);
    assert_int_equal(strlen(text), length); /* no NUL inside */
    assert_int_equal(text[length - 1], '\n');

    const char *line = text;
    while (line < text + length) {
        const char *line_end = strchr(line, '\n');
        assert_non_null(line_end);
        assert_true(line_end > line); /* no empty lines */
        if (strncmp(line, "# HELP ", 7) == 0)
            validate_help_line(exposition, line, line_end);
        else if (strncmp(line, "# TYPE ", 7) == 0)
            validate_type_line(exposition, line, line_end);
        else
            validate_sample_line(exposition, line, line_end);
        line = line_end + 1;
    }
    for (size_t i = 0; i < exposition->family_count; i++) {
        assert_int_equal(exposition->families[i].type_count, 1);
        assert_true(exposition->families[i].sample_count > 0);
    }
}

/* Render, then validate (two statements: argument evaluation order would
 * otherwise decide whether rendered_length is read before or after). */
static const char *render_valid(int ready, struct exposition *exposition)
{
    const char *text = render(ready);
    validate_exposition(text, rendered_length, exposition);
    return text;
}

/* ---- Looking up series ---- */

/* The value text of the sample whose line starts with series followed by a
 * space (series is "name" or "name{label=\"value\"}"); NULL if absent. The
 * series must appear exactly once. */
static const char *find_sample_value(const char *text, const char *series)
{
    size_t series_length = strlen(series);
    const char *found = NULL;
    for (const char *line = text; *line != '\0'; line = strchr(line, '\n') + 1) {
        if (strncmp(line, series, series_length) == 0 && line[series_length] == ' ') {
            assert_null(found);
            found = line + series_length + 1;
        }
    }
    return found;
}

static uint64_t sample_unsigned(const char *text, const char *series)
{
    const char *value = find_sample_value(text, series);
    if (value == NULL)
        fail_msg("series %s missing", series);
    char *end;
    uint64_t number = strtoull(value, &end, 10);
    assert_int_equal(*end, '\n');
    return number;
}

static int64_t sample_signed(const char *text, const char *series)
{
    const char *value = find_sample_value(text, series);
    if (value == NULL)
        fail_msg("series %s missing", series);
    char *end;
    int64_t number = strtoll(value, &end, 10);
    assert_int_equal(*end, '\n');
    return number;
}

static void labelled_series(char *series, size_t size, const char *name, const char *label,
                            const char *value)
{
    snprintf(series, size, "%s{%s=\"%s\"}", name, label, value);
}

/* ---- Expected families and label values (the stable public contract) ---- */

struct expected_family {
    const char *name;
    const char *type;
};

static const struct expected_family expected_families[] = {
    {"relayd_connections", "gauge"},
    {"relayd_connections_accepted_total", "counter"},
    {"relayd_connections_refused_total", "counter"},
    {"relayd_connections_closed_total", "counter"},
    {"relayd_rendezvous_total", "counter"},
    {"relayd_frames_forwarded_total", "counter"},
    {"relayd_bytes_forwarded_total", "counter"},
    {"relayd_frames_dropped_pending_total", "counter"},
    {"relayd_limits_hit_total", "counter"},
    {"relayd_notifications_sent_total", "counter"},
    {"relayd_send_queue_bytes", "gauge"},
    {"relayd_ready", "gauge"},
    {"relayd_build_info", "gauge"},
    {"relayd_start_time_seconds", "gauge"},
    {"relayd_process_resident_memory_bytes", "gauge"},
    {"relayd_process_open_fds", "gauge"},
};

#define ARRAY_LENGTH(array) (sizeof(array) / sizeof((array)[0]))

static const char *const expected_states[] = {"awaiting_request", "pending", "paired"};
static const char *const expected_results[] = {"pending", "paired", "refused"};
static const char *const expected_refuse_reasons[] = {"max_connections", "shutting_down"};
static const char *const expected_close_reasons[] = {
    "peer_closed",      "partner_gone",   "third_peer",        "bad_request",
    "text_first_frame", "second_request", "message_too_large", "pending_timeout",
    "ping_timeout",     "shutdown",       "max_connections",   "internal_error"};
static const char *const expected_limits[] = {"max_message_bytes", "max_connections",
                                              "pending_timeout", "send_queue_high_water"};

/* A labelled counter family and where its values live in relay_metrics. */
struct labelled_counter {
    const char *name;
    const char *label;
    const char *const *values;
    size_t count;
    uint64_t *counters;
};

static size_t labelled_counters(struct labelled_counter *out)
{
    out[0] = (struct labelled_counter){
        "relayd_connections_refused_total", "reason", expected_refuse_reasons,
        ARRAY_LENGTH(expected_refuse_reasons), relay_metrics.connections_refused_total};
    out[1] = (struct labelled_counter){"relayd_connections_closed_total", "reason",
                                       expected_close_reasons, ARRAY_LENGTH(expected_close_reasons),
                                       relay_metrics.connections_closed_total};
    out[2] =
        (struct labelled_counter){"relayd_rendezvous_total", "result", expected_results,
                                  ARRAY_LENGTH(expected_results), relay_metrics.rendezvous_total};
    out[3] =
        (struct labelled_counter){"relayd_limits_hit_total", "limit", expected_limits,
                                  ARRAY_LENGTH(expected_limits), relay_metrics.limits_hit_total};
    return 4;
}

/* Fill every counter and gauge with a distinct value derived from seed. */
static void fill_metrics(uint64_t seed)
{
    struct labelled_counter families[4];
    size_t family_count = labelled_counters(families);
    uint64_t next = seed;
    for (size_t i = 0; i < family_count; i++)
        for (size_t j = 0; j < families[i].count; j++)
            families[i].counters[j] = next++;
    relay_metrics.connections_accepted_total = next++;
    relay_metrics.frames_forwarded_total = next++;
    relay_metrics.bytes_forwarded_total = next++;
    relay_metrics.frames_dropped_pending_total = next++;
    relay_metrics.notifications_sent_total = next++;
    relay_metrics.connections_awaiting_request = 7;
    relay_metrics.connections_pending = 11;
    relay_metrics.connections_paired = 13;
    relay_metrics.send_queue_bytes = 17;
}

/* ---- Tests ---- */

static void test_render_is_well_formed(void **state)
{
    struct exposition exposition;
    render_valid(1, &exposition);

    fill_metrics(1000);
    render_valid(0, &exposition);
}

static void test_every_family_has_one_help_and_type(void **state)
{
    struct exposition exposition;
    render_valid(1, &exposition);

    assert_int_equal(exposition.family_count, ARRAY_LENGTH(expected_families));
    for (size_t i = 0; i < ARRAY_LENGTH(expected_families); i++) {
        const char *name = expected_families[i].name;
        struct exposition_family *family = find_family(&exposition, name, strlen(name));
        if (family == NULL)
            fail_msg("family %s missing", name);
        assert_int_equal(family->help_count, 1);
        assert_int_equal(family->type_count, 1);
        assert_string_equal(family->type, expected_families[i].type);
    }
}

static void test_counters_end_in_total(void **state)
{
    struct exposition exposition;
    render_valid(1, &exposition);

    for (size_t i = 0; i < exposition.family_count; i++) {
        const char *name = exposition.families[i].name;
        size_t length = strlen(name);
        bool ends_in_total = length > 6 && strcmp(name + length - 6, "_total") == 0;
        bool is_counter = strcmp(exposition.families[i].type, "counter") == 0;
        assert_int_equal(ends_in_total, is_counter);
    }
}

static void test_every_label_value_is_present_at_zero(void **state)
{
    const char *text = render(1);
    char series[256];

    for (size_t i = 0; i < ARRAY_LENGTH(expected_states); i++) {
        labelled_series(series, sizeof(series), "relayd_connections", "state", expected_states[i]);
        assert_int_equal(sample_signed(text, series), 0);
    }
    struct labelled_counter families[4];
    size_t family_count = labelled_counters(families);
    for (size_t i = 0; i < family_count; i++) {
        for (size_t j = 0; j < families[i].count; j++) {
            labelled_series(series, sizeof(series), families[i].name, families[i].label,
                            families[i].values[j]);
            assert_int_equal(sample_unsigned(text, series), 0);
        }
    }
}

static void test_label_values_count_matches_enums(void **state)
{
    assert_int_equal(ARRAY_LENGTH(expected_results), RENDEZVOUS_RESULT_COUNT);
    assert_int_equal(ARRAY_LENGTH(expected_refuse_reasons), REFUSE_REASON_COUNT);
    assert_int_equal(ARRAY_LENGTH(expected_close_reasons), CLOSE_REASON_COUNT);
    assert_int_equal(ARRAY_LENGTH(expected_limits), LIMIT_KIND_COUNT);

    /* No extra series beyond the expected label values. */
    struct exposition exposition;
    render_valid(1, &exposition);
    struct labelled_counter families[4];
    size_t family_count = labelled_counters(families);
    for (size_t i = 0; i < family_count; i++) {
        const char *name = families[i].name;
        struct exposition_family *family = find_family(&exposition, name, strlen(name));
        assert_non_null(family);
        assert_int_equal(family->sample_count, (int)families[i].count);
    }
    struct exposition_family *connections =
        find_family(&exposition, "relayd_connections", strlen("relayd_connections"));
    assert_non_null(connections);
    assert_int_equal(connections->sample_count, ARRAY_LENGTH(expected_states));
}

static void test_name_functions(void **state)
{
    for (int i = 0; i < RENDEZVOUS_RESULT_COUNT; i++)
        assert_string_equal(metrics_rendezvous_result_name((enum rendezvous_result)i),
                            expected_results[i]);
    for (int i = 0; i < REFUSE_REASON_COUNT; i++)
        assert_string_equal(metrics_refuse_reason_name((enum refuse_reason)i),
                            expected_refuse_reasons[i]);
    for (int i = 0; i < CLOSE_REASON_COUNT; i++)
        assert_string_equal(metrics_close_reason_name((enum close_reason)i),
                            expected_close_reasons[i]);
    for (int i = 0; i < LIMIT_KIND_COUNT; i++)
        assert_string_equal(metrics_limit_kind_name((enum limit_kind)i), expected_limits[i]);

    assert_string_equal(metrics_close_reason_name(CLOSE_REASON_COUNT), "unknown");
    assert_string_equal(metrics_limit_kind_name((enum limit_kind) - 1), "unknown");
    assert_string_equal(metrics_rendezvous_result_name(RENDEZVOUS_RESULT_COUNT), "unknown");
    assert_string_equal(metrics_refuse_reason_name(REFUSE_REASON_COUNT), "unknown");
}

static void test_values_match_what_was_set(void **state)
{
    fill_metrics(1000);
    const char *text = render(1);
    char series[256];

    struct labelled_counter families[4];
    size_t family_count = labelled_counters(families);
    for (size_t i = 0; i < family_count; i++) {
        for (size_t j = 0; j < families[i].count; j++) {
            labelled_series(series, sizeof(series), families[i].name, families[i].label,
                            families[i].values[j]);
            assert_int_equal(sample_unsigned(text, series), families[i].counters[j]);
        }
    }
    assert_int_equal(sample_unsigned(text, "relayd_connections_accepted_total"),
                     relay_metrics.connections_accepted_total);
    assert_int_equal(sample_unsigned(text, "relayd_frames_forwarded_total"),
                     relay_metrics.frames_forwarded_total);
    assert_int_equal(sample_unsigned(text, "relayd_bytes_forwarded_total"),
                     relay_metrics.bytes_forwarded_total);
    assert_int_equal(sample_unsigned(text, "relayd_frames_dropped_pending_total"),
                     relay_metrics.frames_dropped_pending_total);
    assert_int_equal(sample_unsigned(text, "relayd_notifications_sent_total"),
                     relay_metrics.notifications_sent_total);
    assert_int_equal(sample_signed(text, "relayd_send_queue_bytes"), 17);
    assert_int_equal(sample_signed(text, "relayd_connections{state=\"awaiting_request\"}"), 7);
    assert_int_equal(sample_signed(text, "relayd_connections{state=\"pending\"}"), 11);
    assert_int_equal(sample_signed(text, "relayd_connections{state=\"paired\"}"), 13);
}

static void test_ready_reflects_argument(void **state)
{
    assert_int_equal(sample_signed(render(1), "relayd_ready"), 1);
    assert_int_equal(sample_signed(render(0), "relayd_ready"), 0);
    /* Any non-zero argument means ready; the gauge stays 0/1. */
    assert_int_equal(sample_signed(render(42), "relayd_ready"), 1);
}

static void test_output_ends_with_newline_without_nul(void **state)
{
    const char *text = render(1);
    assert_true(rendered_length > 0);
    assert_int_equal(text[rendered_length - 1], '\n');
    assert_int_equal(text[rendered_length], '\0'); /* terminated just after */
    assert_null(memchr(text, '\0', rendered_length));
}

static void test_large_counter_values(void **state)
{
    struct labelled_counter families[4];
    size_t family_count = labelled_counters(families);
    for (size_t i = 0; i < family_count; i++)
        for (size_t j = 0; j < families[i].count; j++)
            families[i].counters[j] = UINT64_MAX;
    relay_metrics.bytes_forwarded_total = UINT64_MAX;
    relay_metrics.frames_forwarded_total = UINT64_MAX - 1;
    relay_metrics.send_queue_bytes = INT64_MAX;
    relay_metrics.connections_paired = INT64_MIN;

    struct exposition exposition;
    const char *text = render_valid(1, &exposition);

    const char *printed = find_sample_value(text, "relayd_bytes_forwarded_total");
    assert_non_null(printed);
    assert_memory_equal(printed, "18446744073709551615\n", 21);
    assert_int_equal(sample_unsigned(text, "relayd_bytes_forwarded_total"), UINT64_MAX);
    assert_int_equal(sample_unsigned(text, "relayd_frames_forwarded_total"), UINT64_MAX - 1);
    assert_int_equal(sample_unsigned(text, "relayd_limits_hit_total{limit=\"max_connections\"}"),
                     UINT64_MAX);
    assert_int_equal(
        sample_unsigned(text, "relayd_connections_closed_total{reason=\"internal_error\"}"),
        UINT64_MAX);
    assert_true(sample_signed(text, "relayd_send_queue_bytes") == INT64_MAX);
    assert_true(sample_signed(text, "relayd_connections{state=\"paired\"}") == INT64_MIN);
}

static void test_build_info_carries_version(void **state)
{
    const char *text = render(1);
    char series[256];
    labelled_series(series, sizeof(series), "relayd_build_info", "version", RELAYD_VERSION);
    assert_int_equal(sample_unsigned(text, series), 1);
}

static void test_start_time_is_fixed_and_plausible(void **state)
{
    int64_t first = sample_signed(render(1), "relayd_start_time_seconds");
    int64_t now = (int64_t)time(NULL);
    assert_true(first > 1600000000); /* after 2020: a real epoch time */
    assert_true(first <= now);
    int64_t second = sample_signed(render(1), "relayd_start_time_seconds");
    assert_true(first == second);
}

static void test_process_figures_are_plausible(void **state)
{
    const char *text = render(1);
    /* A running process has some resident memory and at least its stdio. */
    assert_true(sample_signed(text, "relayd_process_resident_memory_bytes") > 4096);
    int64_t open_fds = sample_signed(text, "relayd_process_open_fds");
    assert_true(open_fds >= 1);

    FILE *extra = fopen("/dev/null", "r");
    assert_non_null(extra);
    int64_t with_extra = sample_signed(render(1), "relayd_process_open_fds");
    fclose(extra);
    assert_true(with_extra == open_fds + 1);
}

static void test_repeated_renders_are_identical(void **state)
{
    fill_metrics(5);
    char *first = metrics_render(&rendered_length, 1);
    assert_non_null(first);
    size_t first_length = rendered_length;
    const char *second = render(1);
    /* Only the process figures may move between scrapes: compare up to them. */
    const char *process = strstr(first, "# HELP relayd_process_");
    assert_non_null(process);
    size_t stable_length = (size_t)(process - first);
    assert_true(stable_length < first_length);
    assert_memory_equal(first, second, stable_length);
    free(first);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_render_is_well_formed, reset_metrics, free_rendered),
        cmocka_unit_test_setup_teardown(test_every_family_has_one_help_and_type, reset_metrics,
                                        free_rendered),
        cmocka_unit_test_setup_teardown(test_counters_end_in_total, reset_metrics, free_rendered),
        cmocka_unit_test_setup_teardown(test_every_label_value_is_present_at_zero, reset_metrics,
                                        free_rendered),
        cmocka_unit_test_setup_teardown(test_label_values_count_matches_enums, reset_metrics,
                                        free_rendered),
        cmocka_unit_test_setup_teardown(test_name_functions, reset_metrics, free_rendered),
        cmocka_unit_test_setup_teardown(test_values_match_what_was_set, reset_metrics,
                                        free_rendered),
        cmocka_unit_test_setup_teardown(test_ready_reflects_argument, reset_metrics, free_rendered),
        cmocka_unit_test_setup_teardown(test_output_ends_with_newline_without_nul, reset_metrics,
                                        free_rendered),
        cmocka_unit_test_setup_teardown(test_large_counter_values, reset_metrics, free_rendered),
        cmocka_unit_test_setup_teardown(test_build_info_carries_version, reset_metrics,
                                        free_rendered),
        cmocka_unit_test_setup_teardown(test_start_time_is_fixed_and_plausible, reset_metrics,
                                        free_rendered),
        cmocka_unit_test_setup_teardown(test_process_figures_are_plausible, reset_metrics,
                                        free_rendered),
        cmocka_unit_test_setup_teardown(test_repeated_renders_are_identical, reset_metrics,
                                        free_rendered),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

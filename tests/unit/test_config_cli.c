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
    assert_false(options.check_config);
    assert_false(options.show_version);
    assert_false(options.show_help);
    assert_int_equal(cli_parse(0, argv, &options, err, sizeof(err)), 0);
    assert_int_equal(options.port, -1);
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
    ASSERT_PARSE_ERROR("--bind: \"localhost\" is not an IPv4 or IPv6 address", "--bind",
                       "localhost");
    ASSERT_PARSE_ERROR("--bind: \"1.2.3\" is not an IPv4 or IPv6 address", "--bind", "1.2.3");
    ASSERT_PARSE_ERROR("--config: the file name is empty", "--config", "");
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
}

static void test_error_missing_values(void **state)
{
    ASSERT_PARSE_ERROR("--config needs a value (FILE)", "--config");
    ASSERT_PARSE_ERROR("--config needs a value (FILE)", "--check-config", "-c");
    ASSERT_PARSE_ERROR("--port needs a value (N)", "--port");
    ASSERT_PARSE_ERROR("--bind needs a value (ADDR)", "--bind");
    ASSERT_PARSE_ERROR("--log-level needs a value (LEVEL)", "--log-level");
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
                               "log:\n  level: debug\n  file: /var/log/relayd.log\n";
    struct relay_config config;
    char err[ERROR_SIZE] = "";
    config_set_defaults(&config);
    assert_int_equal(config_load_string(&config, yaml, strlen(yaml), "file.yaml", err, sizeof(err)),
                     0);

    struct cli_options options;
    assert_int_equal(
        PARSE(&options, err, "--bind", "::1", "--port", "8443", "--log-level", "error"), 0);
    assert_int_equal(cli_apply(&options, &config, err, sizeof(err)), 0);
    assert_string_equal(config.bind_address, "::1");
    assert_int_equal(config.port, 8443);
    assert_int_equal(config.log_level, LOG_LEVEL_ERROR);
    /* Settings without a flag keep the file's values. */
    assert_int_equal(config.max_connections, 7);
    assert_string_equal(config.log_file, "/var/log/relayd.log");
    assert_string_equal(config.admin_bind_address, "127.0.0.1");
    assert_int_equal(config.admin_port, 11061);
    config_free(&config);
}

static void test_apply_without_flags_changes_nothing(void **state)
{
    static const char yaml[] = "listen:\n  bind: 0.0.0.0\n  port: 9000\nlog:\n  level: warn\n";
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
    config_free(&config);
}

static void test_apply_rejects_bad_options(void **state)
{
    struct relay_config config;
    char err[ERROR_SIZE] = "";
    config_set_defaults(&config);
    struct cli_options options = {.port = 0, .log_level = -1};
    assert_int_equal(cli_apply(&options, &config, err, sizeof(err)), -1);
    assert_string_equal(err, "--port: 0 is out of range (1..65535)");
    options = (struct cli_options){.port = -1, .log_level = 9};
    assert_int_equal(cli_apply(&options, &config, err, sizeof(err)), -1);
    assert_string_equal(err, "--log-level: 9 is not a log level");
    options = (struct cli_options){.port = -1, .log_level = -1, .bind_address = "example.com"};
    assert_int_equal(cli_apply(&options, &config, err, sizeof(err)), -1);
    assert_string_equal(err, "--bind: \"example.com\" is not an IPv4 or IPv6 address");
    /* Nothing was applied. */
    assert_string_equal(config.bind_address, "127.0.0.1");
    assert_int_equal(config.port, 11060);
    config_free(&config);
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
        "Usage: relayd [options]\n", "With no arguments relayd serves ws://127.0.0.1:11060",
        "\n  -c, --config FILE ",    "\n      --bind ADDR ",
        "\n      --port N ",         "\n      --log-level LEVEL ",
        "\n      --check-config ",   "\n  -V, --version ",
        "\n  -h, --help ",
    };
    for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++)
        if (strstr(text, expected[i]) == NULL)
            fail_msg("usage lacks \"%s\":\n%s", expected[i], text);
    /* One line per flag. */
    size_t flag_lines = 0;
    for (const char *line = text; line != NULL; line = strchr(line + 1, '\n'))
        if (strncmp(line, "\n  -", 4) == 0 || strncmp(line, "\n      --", 9) == 0)
            flag_lines++;
    assert_int_equal(flag_lines, 7);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_arguments),
        cmocka_unit_test(test_config_flag),
        cmocka_unit_test(test_bind_flag),
        cmocka_unit_test(test_port_flag),
        cmocka_unit_test(test_log_level_flag),
        cmocka_unit_test(test_boolean_flags),
        cmocka_unit_test(test_all_flags_together),
        cmocka_unit_test(test_error_bad_values),
        cmocka_unit_test(test_error_unknown_flags),
        cmocka_unit_test(test_error_missing_values),
        cmocka_unit_test(test_error_stray_arguments),
        cmocka_unit_test(test_parse_is_repeatable),
        cmocka_unit_test(test_apply_overrides_file),
        cmocka_unit_test(test_apply_without_flags_changes_nothing),
        cmocka_unit_test(test_apply_rejects_bad_options),
        cmocka_unit_test(test_usage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * log.c - levelled, timestamped log lines to stderr or a log file.
 *
 * Every line is "2026-11-25T10:00:00.123Z LEVEL message". The relay is
 * single-threaded, so a static FILE pointer and level suffice. libwebsockets'
 * own messages are routed here (log_attach_lws) so operators see one stream
 * with one format.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <libwebsockets.h>

#include "relay/log.h"

static FILE *log_stream;
static enum log_level log_current_level = LOG_LEVEL_INFO;

static const char *const log_level_names[] = {"error", "warn", "info", "debug"};

int log_open(enum log_level level, const char *file)
{
    log_current_level = level;
    if (file == NULL || file[0] == '\0') {
        log_stream = NULL;
        return 0;
    }
    FILE *stream = fopen(file, "a");
    if (stream == NULL)
        return -1;
    /* Line-buffered so a crash or kill loses at most a partial line. */
    setvbuf(stream, NULL, _IOLBF, 0);
    log_stream = stream;
    return 0;
}

void log_close(void)
{
    if (log_stream != NULL)
        fclose(log_stream);
    log_stream = NULL;
}

void log_set_level(enum log_level level)
{
    log_current_level = level;
}

int log_level_enabled(enum log_level level)
{
    return level <= log_current_level;
}

int log_level_from_name(const char *name)
{
    for (size_t i = 0; i < sizeof(log_level_names) / sizeof(log_level_names[0]); i++)
        if (strcmp(name, log_level_names[i]) == 0)
            return (int)i;
    /* Accept the common spellings too. */
    if (strcmp(name, "warning") == 0)
        return LOG_LEVEL_WARN;
    if (strcmp(name, "err") == 0)
        return LOG_LEVEL_ERROR;
    return -1;
}

const char *log_level_name(enum log_level level)
{
    if ((unsigned)level >= sizeof(log_level_names) / sizeof(log_level_names[0]))
        return "unknown";
    return log_level_names[level];
}

static void log_write_line(enum log_level level, const char *message)
{
    FILE *out = log_stream != NULL ? log_stream : stderr;
    struct timespec now;
    struct tm utc;
    char stamp[32];

    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &utc);
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &utc);
    fprintf(out, "%s.%03ldZ %-5s %s\n", stamp, now.tv_nsec / 1000000L, log_level_name(level),
            message);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    if (!log_level_enabled(level))
        return;
    char message[1024];
    va_list args;
    va_start(args, fmt);
    vsnprintf(message, sizeof(message), fmt, args);
    va_end(args);
    log_write_line(level, message);
}

/* lws hands us lines that already end in '\n'; strip it and our own prefix
 * says which library spoke. */
static void log_emit_lws(int lws_level, const char *line)
{
    enum log_level level = (lws_level & LLL_ERR)      ? LOG_LEVEL_ERROR
                           : (lws_level & LLL_WARN)   ? LOG_LEVEL_WARN
                           : (lws_level & LLL_NOTICE) ? LOG_LEVEL_INFO
                                                      : LOG_LEVEL_DEBUG;
    if (!log_level_enabled(level))
        return;
    char message[1024];
    size_t length = strnlen(line, sizeof(message) - 1);
    memcpy(message, line, length);
    while (length > 0 && (message[length - 1] == '\n' || message[length - 1] == '\r'))
        length--;
    message[length] = '\0';
    log_msg(level, "lws: %s", message);
}

void log_attach_lws(enum log_level level)
{
    /* lws's notices are chatty start-up details; show them only at debug. */
    int mask = LLL_ERR | LLL_WARN;
    if (level >= LOG_LEVEL_DEBUG)
        mask |= LLL_NOTICE;
    lws_set_log_level(mask, log_emit_lws);
}

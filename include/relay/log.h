/*
 * log.h - levelled, timestamped log lines.
 *
 * Lines go to stderr unless a log file is configured. libwebsockets' own
 * warnings and errors are routed through here too (log_attach_lws).
 */
#ifndef RELAY_LOG_H
#define RELAY_LOG_H

enum log_level {
    LOG_LEVEL_ERROR = 0,
    LOG_LEVEL_WARN,
    LOG_LEVEL_INFO,
    LOG_LEVEL_DEBUG,
};

/* Returns -1 if the log file cannot be opened (the caller reports it). */
int log_open(enum log_level level, const char *file);
void log_close(void);
void log_set_level(enum log_level level);
int log_level_enabled(enum log_level level);

/* "error", "warn", "info", "debug" <-> enum; -1 for an unknown name. */
int log_level_from_name(const char *name);
const char *log_level_name(enum log_level level);

/* Route libwebsockets' log output through log_msg. */
void log_attach_lws(enum log_level level);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...)                                                                             \
    do {                                                                                           \
        if (log_level_enabled(LOG_LEVEL_DEBUG))                                                    \
            log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__);                                                 \
    } while (0)

#endif

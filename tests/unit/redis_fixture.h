/*
 * redis_fixture.h - real redis-server and redis-sentinel processes for the
 * cluster unit tests (test_core_redis_*.c), and an lws loop to drive.
 *
 * Header-only (static functions) because every unit test is one .c file.
 * Servers listen on free loopback ports with persistence off, in a private
 * temporary directory, and die with the test (PR_SET_PDEATHSIG) even when
 * it crashes. Checks from the test side use hiredis's blocking API.
 */
#ifndef RELAY_TEST_REDIS_FIXTURE_H
#define RELAY_TEST_REDIS_FIXTURE_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <libwebsockets.h>

#include "../../cluster/directory_redis.h"

#define REDIS_FIXTURE_MAX_ARGS 32

struct redis_server {
    pid_t pid;
    int port;
    bool sentinel;
    char directory[64];
    char password[64];
};

static inline long long redis_fixture_now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* A loopback port nobody listens on right now. */
static inline int redis_fixture_free_port(void)
{
    int descriptor = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t length = sizeof(address);
    if (descriptor < 0 || bind(descriptor, (struct sockaddr *)&address, sizeof(address)) != 0 ||
        getsockname(descriptor, (struct sockaddr *)&address, &length) != 0) {
        fprintf(stderr, "free port: %s\n", strerror(errno));
        abort();
    }
    close(descriptor);
    return ntohs(address.sin_port);
}

/* Blocking connection for checks; NULL if the server does not answer. */
static inline redisContext *redis_fixture_connect(const struct redis_server *server)
{
    struct timeval timeout = {1, 0};
    redisContext *context = redisConnectWithTimeout("127.0.0.1", server->port, timeout);
    if (context == NULL || context->err) {
        if (context != NULL)
            redisFree(context);
        return NULL;
    }
    redisSetTimeout(context, timeout);
    if (server->password[0] != '\0') {
        redisReply *reply = redisCommand(context, "AUTH %s", server->password);
        if (reply != NULL)
            freeReplyObject(reply);
    }
    return context;
}

/* One command on a fresh blocking connection; NULL on failure. */
static inline redisReply *redis_fixture_command(const struct redis_server *server,
                                                const char *format, ...)
{
    redisContext *context = redis_fixture_connect(server);
    if (context == NULL)
        return NULL;
    va_list arguments;
    va_start(arguments, format);
    redisReply *reply = redisvCommand(context, format, arguments);
    va_end(arguments);
    redisFree(context);
    return reply;
}

/* The string value of a key, or "" (absent or error), into buffer. */
static inline const char *redis_fixture_get(const struct redis_server *server, const char *key,
                                            char *buffer, size_t size)
{
    redisReply *reply = redis_fixture_command(server, "GET %s", key);
    buffer[0] = '\0';
    if (reply != NULL && reply->type == REDIS_REPLY_STRING)
        snprintf(buffer, size, "%s", reply->str);
    if (reply != NULL)
        freeReplyObject(reply);
    return buffer;
}

static inline long long redis_fixture_integer(const struct redis_server *server, const char *format,
                                              const char *key)
{
    redisReply *reply = redis_fixture_command(server, format, key);
    long long value = reply != NULL && reply->type == REDIS_REPLY_INTEGER ? reply->integer : -100;
    if (reply != NULL)
        freeReplyObject(reply);
    return value;
}

static inline bool redis_fixture_answers(const struct redis_server *server)
{
    redisReply *reply = redis_fixture_command(server, "PING");
    if (reply == NULL)
        return false;
    freeReplyObject(reply);
    return true;
}

static inline void redis_fixture_spawn(struct redis_server *server, const char *program,
                                       const char *const *arguments)
{
    char log_path[128];
    snprintf(log_path, sizeof(log_path), "%s/server.log", server->directory);
    pid_t pid = fork();
    if (pid < 0)
        abort();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int log_descriptor = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (log_descriptor >= 0) {
            dup2(log_descriptor, STDOUT_FILENO);
            dup2(log_descriptor, STDERR_FILENO);
        }
        execv(program, (char *const *)arguments);
        _exit(127);
    }
    server->pid = pid;
    long long give_up = redis_fixture_now_ms() + 10000;
    while (!redis_fixture_answers(server)) {
        if (redis_fixture_now_ms() > give_up) {
            fprintf(stderr, "%s on port %d did not start (see %s)\n", program, server->port,
                    log_path);
            abort();
        }
        usleep(20000);
    }
}

/* Start redis-server on port (0: a free one). extra: more "--option",
 * "value" arguments, NULL-terminated, or NULL. */
static inline void redis_fixture_start(struct redis_server *server, int port, const char *password,
                                       const char *const *extra)
{
    char port_text[16];
    const char *arguments[REDIS_FIXTURE_MAX_ARGS];
    int count = 0;

    if (server->directory[0] == '\0') {
        snprintf(server->directory, sizeof(server->directory), "/tmp/relay-redis-XXXXXX");
        if (mkdtemp(server->directory) == NULL)
            abort();
    }
    server->port = port != 0 ? port : redis_fixture_free_port();
    server->sentinel = false;
    snprintf(server->password, sizeof(server->password), "%s", password != NULL ? password : "");
    snprintf(port_text, sizeof(port_text), "%d", server->port);
    arguments[count++] = "redis-server";
    arguments[count++] = "--port";
    arguments[count++] = port_text;
    arguments[count++] = "--bind";
    arguments[count++] = "127.0.0.1";
    arguments[count++] = "--save";
    arguments[count++] = "";
    arguments[count++] = "--appendonly";
    arguments[count++] = "no";
    arguments[count++] = "--dir";
    arguments[count++] = server->directory;
    if (password != NULL) {
        arguments[count++] = "--requirepass";
        arguments[count++] = password;
    }
    for (int i = 0; extra != NULL && extra[i] != NULL && count < REDIS_FIXTURE_MAX_ARGS - 1; i++)
        arguments[count++] = extra[i];
    arguments[count] = NULL;
    redis_fixture_spawn(server, "/usr/bin/redis-server", arguments);
}

/* Start a sentinel watching master_name at 127.0.0.1:master_port. */
static inline void redis_fixture_start_sentinel(struct redis_server *server,
                                                const char *master_name, int master_port)
{
    char config_path[128];
    const char *arguments[3];

    snprintf(server->directory, sizeof(server->directory), "/tmp/relay-sentinel-XXXXXX");
    if (mkdtemp(server->directory) == NULL)
        abort();
    server->port = redis_fixture_free_port();
    server->sentinel = true;
    server->password[0] = '\0';
    snprintf(config_path, sizeof(config_path), "%s/sentinel.conf", server->directory);
    FILE *config = fopen(config_path, "w");
    if (config == NULL)
        abort();
    fprintf(config,
            "port %d\nbind 127.0.0.1\ndir %s\n"
            "sentinel monitor %s 127.0.0.1 %d 2\n"
            "sentinel down-after-milliseconds %s 1000\n"
            "sentinel failover-timeout %s 3000\n"
            "sentinel parallel-syncs %s 1\n",
            server->port, server->directory, master_name, master_port, master_name, master_name,
            master_name);
    fclose(config);
    arguments[0] = "redis-sentinel";
    arguments[1] = config_path;
    arguments[2] = NULL;
    redis_fixture_spawn(server, "/usr/bin/redis-sentinel", arguments);
}

static inline void redis_fixture_signal(struct redis_server *server, int signal_number)
{
    if (server->pid > 0)
        kill(server->pid, signal_number);
}

/* SIGKILL and reap; the directory stays for a restart on the same port. */
static inline void redis_fixture_kill(struct redis_server *server)
{
    if (server->pid <= 0)
        return;
    kill(server->pid, SIGKILL);
    waitpid(server->pid, NULL, 0);
    server->pid = 0;
}

static inline void redis_fixture_stop(struct redis_server *server)
{
    redis_fixture_kill(server);
    if (server->directory[0] == '\0')
        return;
    DIR *directory = opendir(server->directory);
    if (directory != NULL) {
        struct dirent *entry;
        char path[400];
        while ((entry = readdir(directory)) != NULL) {
            if (entry->d_name[0] == '.')
                continue;
            snprintf(path, sizeof(path), "%s/%s", server->directory, entry->d_name);
            unlink(path);
        }
        closedir(directory);
    }
    rmdir(server->directory);
    server->directory[0] = '\0';
}

static inline int redis_fixture_count_fds(void)
{
    int count = 0;
    DIR *directory = opendir("/proc/self/fd");
    struct dirent *entry;
    while (directory != NULL && (entry = readdir(directory)) != NULL)
        if (entry->d_name[0] != '.')
            count++;
    if (directory != NULL)
        closedir(directory);
    return count - 1; /* the directory stream itself */
}

/* ---- the lws loop ------------------------------------------------------- */

struct redis_loop {
    struct lws_context *context;
    struct lws_vhost *vhost;
    struct lws_protocols protocols[2];
    lws_sorted_usec_list_t tick;
};

/* lws 4.1.6 ignores lws_service's timeout and sleeps until the next timer:
 * a 10 ms tick bounds every wait. */
static inline void redis_loop_on_tick(lws_sorted_usec_list_t *timer)
{
    struct redis_loop *loop = lws_container_of(timer, struct redis_loop, tick);
    lws_sul_schedule(loop->context, 0, &loop->tick, redis_loop_on_tick, 10 * LWS_US_PER_MS);
}

static inline void redis_loop_init(struct redis_loop *loop)
{
    struct lws_context_creation_info info;
    memset(loop, 0, sizeof(*loop));
    memset(&info, 0, sizeof(info));
    lws_set_log_level(LLL_ERR, NULL);
    loop->protocols[0] = directory_redis_protocol;
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = loop->protocols;
    loop->context = lws_create_context(&info);
    if (loop->context == NULL)
        abort();
    loop->vhost = lws_get_vhost_by_name(loop->context, "default");
    if (loop->vhost == NULL)
        abort();
    lws_sul_schedule(loop->context, 0, &loop->tick, redis_loop_on_tick, 10 * LWS_US_PER_MS);
}

static inline void redis_loop_destroy(struct redis_loop *loop)
{
    lws_sul_cancel(&loop->tick);
    lws_context_destroy(loop->context);
    loop->context = NULL;
}

/* Serve until done(argument) or timeout_ms; returns done's last answer. */
static inline bool redis_loop_run_until(struct redis_loop *loop, bool (*done)(void *),
                                        void *argument, int timeout_ms)
{
    long long give_up = redis_fixture_now_ms() + timeout_ms;
    while (!done(argument)) {
        if (redis_fixture_now_ms() > give_up)
            return false;
        lws_service(loop->context, 0);
    }
    return true;
}

/* Serve for a while regardless. */
static inline void redis_loop_run_for(struct redis_loop *loop, int milliseconds)
{
    long long until = redis_fixture_now_ms() + milliseconds;
    while (redis_fixture_now_ms() < until)
        lws_service(loop->context, 0);
}

#endif

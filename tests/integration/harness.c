/*
 * harness.c - start, probe and stop relayd processes for integration tests
 * (see harness.h).
 *
 * Everything here is blocking and bounded by a deadline: the tests are
 * sequential programs and must never hang. Ports are found by binding port 0
 * on the loopback address and closing the socket again; the tiny window in
 * which another process could take the port is covered by retrying the start
 * with new ports when relayd exits during start-up.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "whole_file.h"
#include "ws_client.h"

#define HARNESS_START_ATTEMPTS 3
#define HARNESS_READY_TIMEOUT_MS 15000
#define HARNESS_HTTP_TIMEOUT_MS 3000
#define HARNESS_HTTP_MAX_BYTES (4 * 1024 * 1024)
#define HARNESS_MAX_ARGS 32

int harness_remaining_ms(int64_t deadline)
{
    int64_t left = deadline - ws_client_now_ms();

    return left > 0 ? (int)left : 0;
}

void harness_sleep_ms(int milliseconds)
{
    struct timespec pause = {milliseconds / 1000, (long)(milliseconds % 1000) * 1000000L};

    while (nanosleep(&pause, &pause) < 0 && errno == EINTR)
        ;
}

const char *harness_relayd_path(void)
{
    const char *path = getenv("RELAYD_BINARY");

    return path && *path ? path : RELAYD_BINARY;
}

long harness_raise_file_limit(void)
{
    struct rlimit limit;

    if (getrlimit(RLIMIT_NOFILE, &limit) < 0)
        return -1;
    if (limit.rlim_cur != limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &limit) < 0)
            return -1;
    }
    return (long)limit.rlim_cur;
}

int harness_make_directory(char *out, size_t out_size)
{
    const char *base = getenv("TMPDIR");
    int length = snprintf(out, out_size, "%s/relayd-test-XXXXXX", base && *base ? base : "/tmp");

    if (length < 0 || (size_t)length >= out_size || !mkdtemp(out))
        return -1;
    return 0;
}

/* Fill a sockaddr for a numeric loopback address. */
static socklen_t harness_make_address(const char *address, int port,
                                      struct sockaddr_storage *storage)
{
    struct sockaddr_in *ipv4 = (struct sockaddr_in *)storage;
    struct sockaddr_in6 *ipv6 = (struct sockaddr_in6 *)storage;

    memset(storage, 0, sizeof(*storage));
    if (inet_pton(AF_INET, address, &ipv4->sin_addr) == 1) {
        ipv4->sin_family = AF_INET;
        ipv4->sin_port = htons((uint16_t)port);
        return sizeof(*ipv4);
    }
    if (inet_pton(AF_INET6, address, &ipv6->sin6_addr) == 1) {
        ipv6->sin6_family = AF_INET6;
        ipv6->sin6_port = htons((uint16_t)port);
        return sizeof(*ipv6);
    }
    return 0;
}

/* Bind port 0 and report the port; the socket stays open in *fd so two
 * calls in a row cannot return the same port. */
static int harness_reserve_port(const char *address, int *fd)
{
    struct sockaddr_storage storage;
    socklen_t length = harness_make_address(address, 0, &storage);

    *fd = length ? socket(storage.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0) : -1;
    if (*fd < 0)
        return -1;
    if (bind(*fd, (struct sockaddr *)&storage, length) < 0 ||
        getsockname(*fd, (struct sockaddr *)&storage, &length) < 0) {
        close(*fd);
        *fd = -1;
        return -1;
    }
    if (storage.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&storage)->sin_port);
    return ntohs(((struct sockaddr_in6 *)&storage)->sin6_port);
}

int harness_free_port(const char *address)
{
    int fd, port = harness_reserve_port(address, &fd);

    if (fd >= 0)
        close(fd);
    return port;
}

bool harness_have_ipv6_loopback(void)
{
    return harness_free_port("::1") > 0;
}

static void harness_write_config(FILE *file, const struct harness_relay *relay,
                                 const struct harness_config *config)
{
    fprintf(file, "listen:\n  bind: \"%s\"\n  port: %d\n", relay->bind_address, relay->port);
    if (config->tls_cert) {
        fprintf(file, "  tls:\n    cert: \"%s\"\n    key: \"%s\"\n", config->tls_cert,
                config->tls_key);
        if (config->tls_chain)
            fprintf(file, "    chain: \"%s\"\n", config->tls_chain);
    }
    fprintf(file, "admin:\n  enabled: true\n  bind: \"127.0.0.1\"\n  port: %d\n",
            relay->admin_port);
    fprintf(file, "limits:\n");
    if (config->max_message_bytes)
        fprintf(file, "  max_message_bytes: %zu\n", config->max_message_bytes);
    if (config->max_connections)
        fprintf(file, "  max_connections: %d\n", config->max_connections);
    if (config->pending_timeout)
        fprintf(file, "  pending_timeout: %d\n", config->pending_timeout);
    if (config->handshake_timeout)
        fprintf(file, "  handshake_timeout: %d\n", config->handshake_timeout);
    if (config->send_queue_high_water)
        fprintf(file, "  send_queue_high_water: %zu\n", config->send_queue_high_water);
    if (config->send_queue_low_water)
        fprintf(file, "  send_queue_low_water: %zu\n", config->send_queue_low_water);
    fprintf(file, "keepalive:\n");
    if (config->ping_interval)
        fprintf(file, "  ping_interval: %d\n", config->ping_interval);
    if (config->ping_timeout)
        fprintf(file, "  ping_timeout: %d\n", config->ping_timeout);
    const char *level = config->log_level ? config->log_level : getenv("RELAY_TEST_LOG_LEVEL");

    fprintf(file, "log:\n  level: %s\n", level && *level ? level : "info");
    if (config->shutdown_timeout)
        fprintf(file, "shutdown:\n  timeout: %d\n", config->shutdown_timeout);
}

/* Choose ports and write the YAML. Returns 0 or -1. */
static int harness_prepare(struct harness_relay *relay, const struct harness_config *config)
{
    int port_fd, admin_fd;
    FILE *file;

    relay->port = harness_reserve_port(relay->bind_address, &port_fd);
    relay->admin_port = harness_reserve_port("127.0.0.1", &admin_fd);
    if (port_fd >= 0)
        close(port_fd);
    if (admin_fd >= 0)
        close(admin_fd);
    if (relay->port <= 0 || relay->admin_port <= 0)
        return -1;
    snprintf(relay->url, sizeof(relay->url),
             strchr(relay->bind_address, ':') ? "%s://[%s]:%d/" : "%s://%s:%d/",
             relay->tls ? "wss" : "ws", relay->bind_address, relay->port);
    file = fopen(relay->config_path, "w");
    if (!file)
        return -1;
    harness_write_config(file, relay, config);
    if (config->write_extra && config->write_extra(file, relay, config->extra_user) < 0) {
        fclose(file);
        return -1;
    }
    return fclose(file) == 0 ? 0 : -1;
}

pid_t harness_spawn(const char *const argv[], const char *output_path, int output_fd, int flags)
{
    bool own_group = flags & HARNESS_SPAWN_OWN_GROUP;
    pid_t parent = getpid();
    pid_t pid = fork();

    if (pid != 0) {
        if (pid > 0 && own_group)
            setpgid(pid, pid); /* also in the child: whichever runs first */
        return pid;
    }
    if (own_group)
        setpgid(0, 0);
    /* child: never outlive the test, even if it crashes */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) /* the test died before prctl */
        _exit(125);
    if (output_path)
        output_fd =
            open(output_path,
                 O_WRONLY | O_CREAT | ((flags & HARNESS_SPAWN_APPEND) ? O_APPEND : O_TRUNC), 0644);
    int null_fd = open("/dev/null", O_RDONLY);
    if (output_fd < 0 || null_fd < 0)
        _exit(126);
    dup2(null_fd, STDIN_FILENO);
    dup2(output_fd, STDOUT_FILENO);
    dup2(output_fd, STDERR_FILENO);
    /* the test's own sockets (lws client connections) are not the relay's */
    close_range(3, ~0u, 0);
    execvp(argv[0], (char *const *)argv);
    fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

static int harness_status_code(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return -1;
}

int harness_poll_exit(pid_t pid)
{
    int status;
    pid_t reaped = waitpid(pid, &status, WNOHANG);

    if (reaped == pid)
        return harness_status_code(status);
    return reaped == 0 ? -2 : -1;
}

/* Wait for /healthz 200 while checking that the process is alive. Returns
 * 0 when ready, 1 when it exited (worth another attempt), -1 on timeout. */
static int harness_wait_healthy(struct harness_relay *relay)
{
    int64_t deadline = ws_client_now_ms() + HARNESS_READY_TIMEOUT_MS;

    while (ws_client_now_ms() < deadline) {
        char *body = NULL;
        int status = 0;

        if (harness_poll_exit(relay->pid) != -2) {
            relay->pid = 0;
            return 1;
        }
        if (harness_http_get("127.0.0.1", relay->admin_port, "/healthz", 1000, &status, &body) ==
                0 &&
            status == 200) {
            free(body);
            return 0;
        }
        free(body);
        harness_sleep_ms(20);
    }
    return -1;
}

int harness_start_relay(struct harness_relay *relay, const struct harness_config *config,
                        const char *directory)
{
    struct harness_config defaults = {0};
    int attempt;

    if (!config)
        config = &defaults;
    memset(relay, 0, sizeof(*relay));
    if (directory)
        snprintf(relay->directory, sizeof(relay->directory), "%s", directory);
    else if (harness_make_directory(relay->directory, sizeof(relay->directory)) < 0)
        return -1;
    snprintf(relay->bind_address, sizeof(relay->bind_address), "%s",
             config->bind_address ? config->bind_address : "127.0.0.1");
    snprintf(relay->config_path, sizeof(relay->config_path), "%s/relayd.yaml", relay->directory);
    snprintf(relay->stderr_path, sizeof(relay->stderr_path), "%s/relayd.log", relay->directory);
    relay->tls = config->tls_cert != NULL;

    for (attempt = 0; attempt < HARNESS_START_ATTEMPTS; attempt++) {
        const char *argv[HARNESS_MAX_ARGS + 4] = {harness_relayd_path(), "--config",
                                                  relay->config_path};
        size_t count = 3;
        int ready;

        if (harness_prepare(relay, config) < 0)
            return -1;
        /* after harness_prepare: write_extra may have rewritten them */
        for (size_t i = 0; config->extra_args && config->extra_args[i] && count < HARNESS_MAX_ARGS;
             i++)
            argv[count++] = config->extra_args[i];
        argv[count] = NULL;
        relay->pid = harness_spawn(argv, relay->stderr_path, -1, 0);
        if (relay->pid < 0) {
            relay->pid = 0;
            return -1;
        }
        ready = harness_wait_healthy(relay);
        if (ready == 0)
            return 0;
        if (ready < 0)
            break;
    }
    fprintf(stderr, "harness: relayd did not become healthy (config %s)\n", relay->config_path);
    harness_print_relay_log(relay, 4000);
    if (relay->pid > 0)
        harness_stop_relay(relay, 2000);
    return -1;
}

int harness_wait_exit(struct harness_relay *relay, int timeout_ms)
{
    int64_t deadline = ws_client_now_ms() + timeout_ms;
    int status;

    if (relay->pid <= 0)
        return -1;
    while (ws_client_now_ms() < deadline) {
        int code = harness_poll_exit(relay->pid);

        if (code != -2) {
            relay->pid = 0;
            return code;
        }
        harness_sleep_ms(5);
    }
    kill(relay->pid, SIGKILL);
    waitpid(relay->pid, &status, 0);
    relay->pid = 0;
    fprintf(stderr, "harness: relayd did not exit within %d ms; killed\n", timeout_ms);
    return -1;
}

int harness_stop_relay(struct harness_relay *relay, int timeout_ms)
{
    int code;

    if (relay->pid <= 0)
        return -1;
    kill(relay->pid, SIGTERM);
    code = harness_wait_exit(relay, timeout_ms);
    if (code != 0) {
        fprintf(stderr, "harness: relayd exit status %d; its log:\n", code);
        harness_print_relay_log(relay, 6000);
    }
    return code;
}

static int harness_remove_entry(const char *path, const struct stat *info, int flag,
                                struct FTW *walk)
{
    (void)info;
    (void)flag;
    (void)walk;
    remove(path);
    return 0;
}

void harness_remove_directory(const char *directory)
{
    const char *keep = getenv("RELAY_TEST_KEEP");

    if (directory[0] && !(keep && !strcmp(keep, "1")))
        nftw(directory, harness_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void harness_cleanup(struct harness_relay *relay)
{
    if (relay->pid > 0) {
        kill(relay->pid, SIGKILL);
        harness_wait_exit(relay, 5000);
    }
    harness_remove_directory(relay->directory);
    relay->directory[0] = '\0';
}

long harness_relay_rss_kib(const struct harness_relay *relay)
{
    char path[64], line[256];
    long rss = -1;
    FILE *file;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)relay->pid);
    file = fopen(path, "r");
    if (!file)
        return -1;
    while (fgets(line, sizeof(line), file))
        if (sscanf(line, "VmRSS: %ld kB", &rss) == 1)
            break;
    fclose(file);
    return rss;
}

void harness_print_file_tail(const char *title, const char *path, size_t max_bytes)
{
    size_t length;
    char *text = whole_file_read(path, &length);

    if (!text)
        return;
    if (title)
        fprintf(stderr, "----- %s (%s) -----\n", title, path);
    else
        fprintf(stderr, "----- %s -----\n", path);
    fprintf(stderr, "%s%s\n-----\n", length > max_bytes ? "...\n" : "",
            length > max_bytes ? text + length - max_bytes : text);
    free(text);
}

void harness_print_relay_log(const struct harness_relay *relay, size_t max_bytes)
{
    harness_print_file_tail(NULL, relay->stderr_path, max_bytes);
}

bool harness_relay_log_contains(const struct harness_relay *relay, const char *text)
{
    size_t length;
    char *log = whole_file_read(relay->stderr_path, &length);
    bool found = log && strstr(log, text);

    free(log);
    return found;
}

int harness_connect(const char *host, int port, int64_t deadline)
{
    struct sockaddr_storage storage;
    socklen_t length = harness_make_address(host, port, &storage);
    struct pollfd wait;
    int fd, error = 0;
    socklen_t error_length = sizeof(error);

    fd = length ? socket(storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0) : -1;
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&storage, length) == 0)
        return fd;
    wait.fd = fd;
    wait.events = POLLOUT;
    if (errno != EINPROGRESS || poll(&wait, 1, harness_remaining_ms(deadline)) != 1 ||
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &error_length) < 0 || error) {
        close(fd);
        return -1;
    }
    return fd;
}

int harness_send_all(int fd, const void *data, size_t length, int64_t deadline)
{
    const char *bytes = data;

    while (length) {
        struct pollfd wait = {fd, POLLOUT, 0};
        ssize_t sent;

        if (poll(&wait, 1, harness_remaining_ms(deadline)) != 1)
            return -1;
        sent = send(fd, bytes, length, MSG_NOSIGNAL);
        if (sent < 0 && errno != EAGAIN && errno != EINTR)
            return -1;
        if (sent > 0) {
            bytes += sent;
            length -= (size_t)sent;
        }
    }
    return 0;
}

/* Decode a chunked body in place; returns its new length or -1. */
static long harness_dechunk(char *body, size_t length)
{
    size_t in = 0, out = 0;

    while (in < length) {
        char *end;
        unsigned long size = strtoul(body + in, &end, 16);
        char *line_end = strstr(end, "\r\n");

        if (end == body + in || !line_end)
            return -1;
        in = (size_t)(line_end - body) + 2;
        if (size == 0)
            return (long)out;
        if (in + size > length)
            return -1;
        memmove(body + out, body + in, size);
        out += size;
        in += size + 2;
    }
    return -1;
}

/* Whether the whole response is in: headers plus Content-Length bytes, or
 * the final chunk of a chunked body. */
static bool harness_response_complete(const char *response, size_t length)
{
    const char *body = strstr(response, "\r\n\r\n");
    const char *content_length;

    if (!body)
        return false;
    body += 4;
    content_length = strcasestr(response, "\r\ncontent-length:");
    if (content_length && content_length < body)
        return length - (size_t)(body - response) >= strtoul(content_length + 17, NULL, 10);
    if (strcasestr(response, "\r\ntransfer-encoding: chunked") && strstr(body, "\r\n0\r\n\r\n"))
        return true;
    return false;
}

static char *harness_read_response(int fd, int64_t deadline, size_t *length)
{
    size_t capacity = 8192;
    char *response = malloc(capacity);

    *length = 0;
    while (response) {
        struct pollfd wait = {fd, POLLIN, 0};
        ssize_t received;

        response[*length] = '\0';
        if (harness_response_complete(response, *length))
            return response;
        if (poll(&wait, 1, harness_remaining_ms(deadline)) != 1)
            break;
        if (capacity - *length < 4096) {
            char *grown =
                capacity < HARNESS_HTTP_MAX_BYTES ? realloc(response, capacity * 2) : NULL;
            if (!grown)
                break;
            response = grown;
            capacity *= 2;
        }
        received = recv(fd, response + *length, capacity - *length - 1, 0);
        if (received == 0) {
            response[*length] = '\0';
            return response; /* server closed: that is the end */
        }
        if (received < 0 && errno != EAGAIN && errno != EINTR)
            break;
        if (received > 0)
            *length += (size_t)received;
    }
    free(response);
    return NULL;
}

int harness_http_get(const char *host, int port, const char *path, int timeout_ms, int *status,
                     char **body)
{
    int64_t deadline = ws_client_now_ms() + timeout_ms;
    char request[512], *response, *body_start;
    size_t length;
    int fd;
    long body_length;

    *body = NULL;
    fd = harness_connect(host, port, deadline);
    if (fd < 0)
        return -1;
    snprintf(request, sizeof(request),
             "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: relayd-test\r\n"
             "Connection: close\r\n\r\n",
             path, host, port);
    if (harness_send_all(fd, request, strlen(request), deadline) < 0) {
        close(fd);
        return -1;
    }
    response = harness_read_response(fd, deadline, &length);
    close(fd);
    if (!response || sscanf(response, "HTTP/1.%*d %d", status) != 1 ||
        !(body_start = strstr(response, "\r\n\r\n"))) {
        free(response);
        return -1;
    }
    *body_start = '\0';
    body_start += 4;
    body_length = (long)(length - (size_t)(body_start - response));
    if (strcasestr(response, "\r\ntransfer-encoding: chunked"))
        body_length = harness_dechunk(body_start, (size_t)body_length);
    if (body_length < 0) {
        free(response);
        return -1;
    }
    memmove(response, body_start, (size_t)body_length);
    response[body_length] = '\0';
    *body = response;
    return 0;
}

int harness_admin_get(const struct harness_relay *relay, const char *path, char **body)
{
    int status = -1;

    if (harness_http_get("127.0.0.1", relay->admin_port, path, HARNESS_HTTP_TIMEOUT_MS, &status,
                         body) < 0)
        return -1;
    return status;
}

int harness_metric_value(const char *metrics_text, const char *series, double *value)
{
    size_t series_length = strlen(series);
    const char *line = metrics_text;

    while (line && *line) {
        const char *next = strchr(line, '\n');

        if (*line != '#' && !strncmp(line, series, series_length) &&
            (line[series_length] == ' ' || line[series_length] == '\t')) {
            *value = strtod(line + series_length + 1, NULL);
            return 0;
        }
        line = next ? next + 1 : NULL;
    }
    return -1;
}

double harness_fetch_metric(const struct harness_relay *relay, const char *series)
{
    char *body = NULL;
    double value = -1;

    if (harness_admin_get(relay, "/metrics", &body) != 200 ||
        harness_metric_value(body, series, &value) < 0)
        value = -1;
    free(body);
    return value;
}

int harness_run_command(char *const argv[], int timeout_ms, char **output)
{
    char path[] = "/tmp/relayd-test-output-XXXXXX";
    int fd = mkstemp(path), code = -1;
    int64_t deadline = ws_client_now_ms() + timeout_ms;
    size_t length;
    pid_t pid;

    if (output)
        *output = NULL;
    if (fd < 0)
        return -1;
    unlink(path); /* the open descriptor keeps the file */
    pid = harness_spawn((const char *const *)argv, NULL, fd, 0);
    while (pid > 0 && (code = harness_poll_exit(pid)) == -2 && ws_client_now_ms() < deadline)
        harness_sleep_ms(5);
    if (pid > 0 && code == -2) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        code = -1;
    }
    if (output && lseek(fd, 0, SEEK_SET) == 0) {
        struct stat info;

        if (fstat(fd, &info) == 0 && (*output = malloc((size_t)info.st_size + 1))) {
            ssize_t got = read(fd, *output, (size_t)info.st_size);
            length = got > 0 ? (size_t)got : 0;
            (*output)[length] = '\0';
        }
    }
    close(fd);
    return code;
}

int harness_openssl(const char *const *arguments)
{
    char *argv[HARNESS_MAX_ARGS + 1], *output = NULL;
    int count = 0, status;

    argv[count++] = "openssl";
    while (*arguments && count < HARNESS_MAX_ARGS)
        argv[count++] = (char *)*arguments++;
    argv[count] = NULL;
    status = harness_run_command(argv, 30000, &output);
    if (status != 0)
        fprintf(stderr, "openssl %s failed (%d): %s\n", argv[1], status, output ? output : "");
    free(output);
    return status == 0 ? 0 : -1;
}

int harness_make_ca(const char *cert, const char *key, const char *subject)
{
    const char *arguments[] = {"req",
                               "-x509",
                               "-newkey",
                               "ec",
                               "-pkeyopt",
                               "ec_paramgen_curve:prime256v1",
                               "-nodes",
                               "-keyout",
                               key,
                               "-out",
                               cert,
                               "-days",
                               "2",
                               "-subj",
                               subject,
                               "-addext",
                               "basicConstraints=critical,CA:TRUE",
                               "-addext",
                               "keyUsage=critical,keyCertSign,cRLSign",
                               NULL};

    return harness_openssl(arguments);
}

int harness_make_certificate(const char *cert, const char *key, const char *subject,
                             const char *ca_cert, const char *ca_key, const char *serial,
                             const char *extensions_file)
{
    char request[512];
    const char *make_request[] = {
        "req",    "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-keyout", key,  "-out",     request,
        "-subj",  subject,   NULL};
    const char *sign[] = {"x509",     "-req",          "-in",         request, "-CA",   ca_cert,
                          "-CAkey",   ca_key,          "-set_serial", serial,  "-days", "2",
                          "-extfile", extensions_file, "-out",        cert,    NULL};
    int length = snprintf(request, sizeof(request), "%s.csr", cert);

    if (length < 0 || (size_t)length >= sizeof(request))
        return -1;
    return harness_openssl(make_request) == 0 && harness_openssl(sign) == 0 ? 0 : -1;
}

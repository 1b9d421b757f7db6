/*
 * cluster_harness.c - Redis, sentinels, HAProxy and relayd nodes for the
 * cluster integration tests (see cluster_harness.h).
 *
 * Like harness.c everything is blocking and bounded by a deadline, except
 * the capturing proxy, which runs in a thread of its own so the test's
 * single-threaded client loop need not drive it. Helper processes lead their
 * own process group and die with the test (PR_SET_PDEATHSIG); the teardown
 * kills the whole group, which also takes Redis' replication children.
 * The steps it shares with the single-relay tests are not repeated here:
 * clocks, sockets, spawning and logs come from harness.c, the WebSocket
 * handshake and frames of the raw links from raw_ws.c (over a TLS-capable
 * stream), the notification checks from relay_test.c.
 */
#include "cluster_harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "raw_ws.h"
#include "whole_file.h"

#define CLUSTER_START_ATTEMPTS 3
#define CLUSTER_PROCESS_READY_MS 10000
#define CLUSTER_NOTIFY_TIMEOUT_MS 10000
#define CLUSTER_CONNECT_BATCH 250
#define CLUSTER_LOG_TAIL 3000
#define CLUSTER_REDIS_REPLY_MAX (1024 * 1024)

void cluster_service(int milliseconds)
{
    int64_t deadline = ws_client_now_ms() + milliseconds;

    /* the client loop keeps answering pings and reading closes meanwhile */
    do {
        int left = harness_remaining_ms(deadline);

        ws_client_service(relay_test_client, left < 50 ? left : 50);
    } while (ws_client_now_ms() < deadline);
}

static int cluster_write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    size_t length = strlen(text);
    bool written;

    if (fd < 0)
        return -1;
    written = write(fd, text, length) == (ssize_t)length;
    return close(fd) == 0 && written ? 0 : -1;
}

/* ---- helper processes ---------------------------------------------------- */

/* A helper leads its own process group (the teardown kills the group, with
 * Redis' replication children) and appends to its log: a restarted Redis
 * keeps the log of its first run. */
static pid_t cluster_spawn(char *const argv[], const char *log_path)
{
    return harness_spawn((const char *const *)argv, log_path, -1,
                         HARNESS_SPAWN_OWN_GROUP | HARNESS_SPAWN_APPEND);
}

/* Whether the process still runs (reaps it when not). */
static bool cluster_process_alive(struct cluster_process *process)
{
    if (process->pid <= 0)
        return false;
    if (harness_poll_exit(process->pid) == -2)
        return true;
    process->pid = 0;
    return false;
}

/* Kill the process' whole group and reap the leader. */
static void cluster_process_kill(struct cluster_process *process, int signal_number)
{
    int64_t deadline = ws_client_now_ms() + 5000;
    pid_t group = process->pid;

    if (group <= 0)
        return;
    kill(-group, SIGCONT); /* a stopped process does not act on SIGTERM */
    kill(-group, signal_number);
    while (cluster_process_alive(process) && ws_client_now_ms() < deadline)
        harness_sleep_ms(5);
    /* whatever is left of the group (Redis' replication child) goes too */
    kill(-group, SIGKILL);
    if (process->pid > 0) {
        waitpid(process->pid, NULL, 0);
        process->pid = 0;
    }
}

static int cluster_make_subdirectory(struct cluster *cluster, const char *name, char *out,
                                     size_t out_size)
{
    int length = snprintf(out, out_size, "%s/%s", cluster->directory, name);

    if (length < 0 || (size_t)length >= out_size)
        return -1;
    return mkdir(out, 0700) == 0 || errno == EEXIST ? 0 : -1;
}

/* ---- a minimal Redis client (RESP) -------------------------------------- */

struct cluster_text {
    char *data;
    size_t length, capacity;
};

static void cluster_text_append(struct cluster_text *text, const char *data, size_t length)
{
    if (text->length + length + 1 > text->capacity) {
        size_t capacity = (text->length + length + 1) * 2;
        char *grown = realloc(text->data, capacity);

        if (!grown)
            return;
        text->data = grown;
        text->capacity = capacity;
    }
    memcpy(text->data + text->length, data, length);
    text->length += length;
    text->data[text->length] = '\0';
}

/* Parse one RESP reply from buffer at *position into text. Returns 1 when
 * complete, 0 when more bytes are needed, -1 when malformed. */
static int cluster_resp_parse(const char *buffer, size_t length, size_t *position,
                              struct cluster_text *text)
{
    const char *line = buffer + *position;
    const char *end = memmem(line, length - *position, "\r\n", 2);
    long count, i;

    if (!end)
        return 0;
    switch (*line) {
    case '+':
    case ':':
    case '-':
        cluster_text_append(text, *line == '-' ? line : line + 1,
                            (size_t)(end - line) - (*line == '-' ? 0 : 1));
        *position = (size_t)(end - buffer) + 2;
        return 1;
    case '$':
        count = strtol(line + 1, NULL, 10);
        if (count < 0) {
            cluster_text_append(text, "(nil)", 5);
            *position = (size_t)(end - buffer) + 2;
            return 1;
        }
        if ((size_t)(end - buffer) + 2 + (size_t)count + 2 > length)
            return 0;
        cluster_text_append(text, end + 2, (size_t)count);
        *position = (size_t)(end - buffer) + 2 + (size_t)count + 2;
        return 1;
    case '*':
        count = strtol(line + 1, NULL, 10);
        *position = (size_t)(end - buffer) + 2;
        for (i = 0; i < count; i++) {
            int parsed;

            if (i > 0)
                cluster_text_append(text, "\n", 1);
            parsed = cluster_resp_parse(buffer, length, position, text);
            if (parsed <= 0)
                return parsed;
        }
        if (count < 0)
            cluster_text_append(text, "(nil)", 5);
        return 1;
    default:
        return -1;
    }
}

/* Send one command and read its reply. */
static char *cluster_resp_call(int fd, const char *const *argv, int64_t deadline)
{
    struct cluster_text request = {0}, reply = {0};
    char buffer[65536 + 1], header[32];
    size_t received = 0, count = 0, i;
    int parsed = 0;

    while (argv[count])
        count++;
    snprintf(header, sizeof(header), "*%zu\r\n", count);
    cluster_text_append(&request, header, strlen(header));
    for (i = 0; i < count; i++) {
        snprintf(header, sizeof(header), "$%zu\r\n", strlen(argv[i]));
        cluster_text_append(&request, header, strlen(header));
        cluster_text_append(&request, argv[i], strlen(argv[i]));
        cluster_text_append(&request, "\r\n", 2);
    }
    if (!request.data || harness_send_all(fd, request.data, request.length, deadline) < 0) {
        free(request.data);
        return NULL;
    }
    free(request.data);
    while (parsed == 0 && received < sizeof(buffer) - 1) {
        struct pollfd wait = {fd, POLLIN, 0};
        size_t position = 0;
        ssize_t got;

        if (poll(&wait, 1, harness_remaining_ms(deadline)) != 1)
            break;
        got = recv(fd, buffer + received, sizeof(buffer) - 1 - received, 0);
        if (got <= 0 && !(got < 0 && (errno == EAGAIN || errno == EINTR)))
            break;
        if (got > 0)
            received += (size_t)got;
        free(reply.data);
        memset(&reply, 0, sizeof(reply));
        parsed = cluster_resp_parse(buffer, received, &position, &reply);
    }
    if (parsed != 1) {
        free(reply.data);
        return NULL;
    }
    if (!reply.data)
        reply.data = strdup("");
    return reply.data;
}

char *cluster_redis_command(int port, const char *password, int timeout_ms, const char *const *argv)
{
    int64_t deadline = ws_client_now_ms() + timeout_ms;
    int fd = harness_connect("127.0.0.1", port, deadline);
    char *reply;

    if (fd < 0)
        return NULL;
    if (password && *password) {
        const char *auth[] = {"AUTH", password, NULL};

        reply = cluster_resp_call(fd, auth, deadline);
        if (!reply || strcmp(reply, "OK")) {
            free(reply);
            close(fd);
            return NULL;
        }
        free(reply);
    }
    reply = cluster_resp_call(fd, argv, deadline);
    close(fd);
    return reply;
}

/* Whether Redis on port answers PING with PONG. */
static bool cluster_redis_pong(int port, const char *password)
{
    const char *ping[] = {"PING", NULL};
    char *reply = cluster_redis_command(port, password, 1000, ping);
    bool pong = reply && !strcmp(reply, "PONG");

    free(reply);
    return pong;
}

/* The value of "field" in a flat "field\nvalue\n..." reply, or NULL. */
static const char *cluster_reply_field(const char *reply, const char *field, char *value,
                                       size_t value_size)
{
    const char *line = reply;
    size_t field_length = strlen(field);

    while (line && *line) {
        const char *next = strchr(line, '\n');

        if (!strncmp(line, field, field_length) && line[field_length] == '\n' && next) {
            const char *value_end = strchr(next + 1, '\n');
            size_t length = value_end ? (size_t)(value_end - next - 1) : strlen(next + 1);

            snprintf(value, value_size, "%.*s", (int)length, next + 1);
            return value;
        }
        line = next ? next + 1 : NULL;
    }
    return NULL;
}

/* ---- Redis -------------------------------------------------------------- */

/* Spawn redis-server for process (port and replica_of set) and wait for
 * PING. Returns 0, 1 when it exited (port taken?), -1 on timeout. */
static int cluster_redis_spawn(struct cluster *cluster, struct cluster_process *process)
{
    const char *password = cluster->options.redis_password;
    char port[16], master_port[16], directory[320];
    char *argv[32];
    size_t count = 0;
    int64_t deadline;

    snprintf(port, sizeof(port), "%d", process->port);
    snprintf(master_port, sizeof(master_port), "%d", process->replica_of);
    /* a replica writes the master's snapshot into its directory: one each */
    if (cluster_make_subdirectory(cluster, process->name, directory, sizeof(directory)) < 0)
        return -1;
    argv[count++] = "redis-server";
    argv[count++] = "--port";
    argv[count++] = port;
    argv[count++] = "--bind";
    argv[count++] = "127.0.0.1";
    argv[count++] = "--save";
    argv[count++] = "";
    argv[count++] = "--appendonly";
    argv[count++] = "no";
    argv[count++] = "--daemonize";
    argv[count++] = "no";
    argv[count++] = "--dir";
    argv[count++] = directory;
    if (password && *password) {
        argv[count++] = "--requirepass";
        argv[count++] = (char *)password;
        argv[count++] = "--masterauth";
        argv[count++] = (char *)password;
    }
    if (process->replica_of) {
        argv[count++] = "--replicaof";
        argv[count++] = "127.0.0.1";
        argv[count++] = master_port;
    }
    argv[count] = NULL;
    process->pid = cluster_spawn(argv, process->log_path);
    if (process->pid < 0) {
        process->pid = 0;
        return -1;
    }
    deadline = ws_client_now_ms() + CLUSTER_PROCESS_READY_MS;
    while (ws_client_now_ms() < deadline) {
        if (!cluster_process_alive(process))
            return 1;
        if (cluster_redis_pong(process->port, password))
            return 0;
        harness_sleep_ms(20);
    }
    return -1;
}

/* Start a Redis with a fresh port (retried when it dies at start). */
static void cluster_redis_start_new(struct cluster *cluster, struct cluster_process *process,
                                    const char *name, int replica_of)
{
    int attempt, result = -1;

    memset(process, 0, sizeof(*process));
    snprintf(process->name, sizeof(process->name), "%s", name);
    snprintf(process->log_path, sizeof(process->log_path), "%s/%s.log", cluster->directory, name);
    process->replica_of = replica_of;
    for (attempt = 0; attempt < CLUSTER_START_ATTEMPTS; attempt++) {
        process->port = harness_free_port("127.0.0.1");
        result = cluster_redis_spawn(cluster, process);
        if (result <= 0)
            break;
    }
    if (result != 0) {
        harness_print_file_tail(name, process->log_path, CLUSTER_LOG_TAIL);
        cluster_process_kill(process, SIGKILL);
        fail_msg("%s did not start (port %d)", name, process->port);
    }
}

void cluster_start_redis(struct cluster *cluster)
{
    cluster_redis_start_new(cluster, &cluster->redis, "redis", 0);
}

void cluster_stop_redis(struct cluster *cluster, bool graceful)
{
    cluster_process_kill(&cluster->redis, graceful ? SIGTERM : SIGKILL);
}

void cluster_restart_redis(struct cluster *cluster)
{
    int result;

    cluster_process_kill(&cluster->redis, SIGKILL);
    /* the same port: the nodes reconnect to the address they know */
    result = cluster_redis_spawn(cluster, &cluster->redis);
    if (result != 0) {
        harness_print_file_tail("redis", cluster->redis.log_path, CLUSTER_LOG_TAIL);
        cluster_process_kill(&cluster->redis, SIGKILL);
        fail_msg("redis did not start again on port %d", cluster->redis.port);
    }
}

/* ---- sentinels ---------------------------------------------------------- */

static bool cluster_replica_synced(struct cluster *cluster)
{
    const char *info[] = {"INFO", "replication", NULL};
    char *reply =
        cluster_redis_command(cluster->replica.port, cluster->options.redis_password, 1000, info);
    bool synced = reply && strstr(reply, "master_link_status:up");

    free(reply);
    return synced;
}

/* Whether this sentinel knows the master, the replica and both others. */
static bool cluster_sentinel_settled(const struct cluster_process *sentinel)
{
    const char *master[] = {"SENTINEL", "master", CLUSTER_MASTER_NAME, NULL};
    char *reply = cluster_redis_command(sentinel->port, NULL, 1000, master);
    char replicas[16], others[16], flags[64];
    bool settled = reply && cluster_reply_field(reply, "num-slaves", replicas, sizeof(replicas)) &&
                   cluster_reply_field(reply, "num-other-sentinels", others, sizeof(others)) &&
                   cluster_reply_field(reply, "flags", flags, sizeof(flags)) &&
                   atoi(replicas) >= 1 && atoi(others) == CLUSTER_SENTINELS - 1 &&
                   !strcmp(flags, "master");

    free(reply);
    return settled;
}

static void cluster_sentinel_write_config(struct cluster *cluster, struct cluster_process *sentinel)
{
    char text[2048], directory[320];
    const char *password = cluster->options.redis_password;
    int length;

    assert_int_equal(
        cluster_make_subdirectory(cluster, sentinel->name, directory, sizeof(directory)), 0);
    length = snprintf(text, sizeof(text),
                      "port %d\nbind 127.0.0.1\ndaemonize no\ndir \"%s\"\n"
                      "sentinel monitor %s 127.0.0.1 %d 2\n"
                      "sentinel down-after-milliseconds %s 1000\n"
                      "sentinel failover-timeout %s 3000\n"
                      "sentinel parallel-syncs %s 1\n",
                      sentinel->port, directory, CLUSTER_MASTER_NAME, cluster->redis.port,
                      CLUSTER_MASTER_NAME, CLUSTER_MASTER_NAME, CLUSTER_MASTER_NAME);
    if (password && *password)
        snprintf(text + length, sizeof(text) - (size_t)length, "sentinel auth-pass %s %s\n",
                 CLUSTER_MASTER_NAME, password);
    /* sentinels rewrite their configuration file: it lives in the temp dir */
    assert_int_equal(cluster_write_file(sentinel->config_path, text, 0600), 0);
}

void cluster_start_sentinels(struct cluster *cluster)
{
    int64_t deadline;
    size_t i;

    cluster_redis_start_new(cluster, &cluster->redis, "redis", 0);
    cluster_redis_start_new(cluster, &cluster->replica, "redis-replica", cluster->redis.port);
    /* a sentinel learns about replicas from the master's INFO, which it asks
     * for only every 10 s: start the sentinels once the replica is attached */
    deadline = ws_client_now_ms() + CLUSTER_PROCESS_READY_MS;
    while (!cluster_replica_synced(cluster) && ws_client_now_ms() < deadline)
        harness_sleep_ms(50);
    if (!cluster_replica_synced(cluster)) {
        harness_print_file_tail("replica", cluster->replica.log_path, CLUSTER_LOG_TAIL);
        fail_msg("the replica did not sync with the master");
    }
    for (i = 0; i < CLUSTER_SENTINELS; i++) {
        struct cluster_process *sentinel = &cluster->sentinels[i];
        char *argv[3];

        memset(sentinel, 0, sizeof(*sentinel));
        /* Built from a local copy: GCC cannot tell that name and the paths
         * are distinct members and warns of an overlap otherwise. */
        char name[32];
        snprintf(name, sizeof(name), "sentinel%zu", i + 1);
        snprintf(sentinel->name, sizeof(sentinel->name), "%s", name);
        snprintf(sentinel->log_path, sizeof(sentinel->log_path), "%s/%s.log", cluster->directory,
                 name);
        snprintf(sentinel->config_path, sizeof(sentinel->config_path), "%s/%s.conf",
                 cluster->directory, name);
        sentinel->port = harness_free_port("127.0.0.1");
        cluster_sentinel_write_config(cluster, sentinel);
        argv[0] = "redis-sentinel";
        argv[1] = sentinel->config_path;
        argv[2] = NULL;
        sentinel->pid = cluster_spawn(argv, sentinel->log_path);
        assert_true(sentinel->pid > 0);
    }
    /* hello messages every 2 s: they find each other within a few seconds */
    deadline = ws_client_now_ms() + 20000;
    for (i = 0; i < CLUSTER_SENTINELS; i++) {
        while (!cluster_sentinel_settled(&cluster->sentinels[i]) && ws_client_now_ms() < deadline) {
            if (!cluster_process_alive(&cluster->sentinels[i]))
                break;
            harness_sleep_ms(100);
        }
        if (!cluster_sentinel_settled(&cluster->sentinels[i])) {
            harness_print_file_tail(cluster->sentinels[i].name, cluster->sentinels[i].log_path,
                                    CLUSTER_LOG_TAIL);
            fail_msg("%s did not discover the replica and the other sentinels",
                     cluster->sentinels[i].name);
        }
    }
}

int cluster_sentinel_master_port(struct cluster *cluster)
{
    const char *query[] = {"SENTINEL", "get-master-addr-by-name", CLUSTER_MASTER_NAME, NULL};
    size_t i;

    for (i = 0; i < CLUSTER_SENTINELS; i++) {
        char *reply;
        const char *port;

        if (cluster->sentinels[i].pid <= 0)
            continue;
        reply = cluster_redis_command(cluster->sentinels[i].port, NULL, 1000, query);
        port = reply ? strchr(reply, '\n') : NULL;
        if (port) {
            int value = atoi(port + 1);

            free(reply);
            return value;
        }
        free(reply);
    }
    return -1;
}

int64_t cluster_fail_over(struct cluster *cluster, int timeout_ms)
{
    int old_port = cluster_sentinel_master_port(cluster);
    struct cluster_process *old_master =
        old_port == cluster->redis.port ? &cluster->redis : &cluster->replica;
    int64_t started = ws_client_now_ms(), deadline = started + timeout_ms;
    int port = old_port;

    assert_true(old_port > 0);
    assert_int_equal(old_master->port, old_port);
    cluster_process_kill(old_master, SIGKILL);
    while (ws_client_now_ms() < deadline) {
        port = cluster_sentinel_master_port(cluster);
        if (port > 0 && port != old_port)
            break;
        cluster_service(100);
    }
    if (port == old_port || port <= 0) {
        size_t i;

        for (i = 0; i < CLUSTER_SENTINELS; i++)
            harness_print_file_tail(cluster->sentinels[i].name, cluster->sentinels[i].log_path,
                                    CLUSTER_LOG_TAIL);
        fail_msg("the sentinels did not fail over within %d ms (master still %d)", timeout_ms,
                 port);
    }
    return ws_client_now_ms() - started;
}

/* ---- nodes -------------------------------------------------------------- */

static int cluster_make_secret_file(const char *path)
{
    unsigned char random_bytes[32];
    char text[2 * sizeof(random_bytes) + 2];
    FILE *source = fopen("/dev/urandom", "rb");
    size_t i;

    if (!source || fread(random_bytes, 1, sizeof(random_bytes), source) != sizeof(random_bytes)) {
        if (source)
            fclose(source);
        return -1;
    }
    fclose(source);
    for (i = 0; i < sizeof(random_bytes); i++)
        snprintf(text + 2 * i, 3, "%02x", random_bytes[i]);
    strcat(text, "\n");
    return cluster_write_file(path, text, 0600);
}

/* write_extra hook of harness_start_relay: the cluster: section. */
static int cluster_write_node_yaml(FILE *file, const struct harness_relay *relay, void *user)
{
    struct cluster_node *node = user;
    struct cluster *cluster = node->cluster;
    const struct cluster_options *options = &cluster->options;
    const char *password = options->redis_password;
    bool tls = node->tls_cert[0] != '\0';
    size_t i;

    (void)relay;
    if (node->settings.standalone)
        return 0;
    if (!node->settings.cluster_port && !node->cluster_port)
        node->cluster_port = harness_free_port("127.0.0.1");
    if (node->cluster_port <= 0)
        return -1;
    if (node->settings.advertise)
        snprintf(node->advertise, sizeof(node->advertise), "%s", node->settings.advertise);
    else
        snprintf(node->advertise, sizeof(node->advertise), "%s://127.0.0.1:%d", tls ? "wss" : "ws",
                 node->cluster_port);
    fprintf(file, "cluster:\n  bind: \"127.0.0.1\"\n");
    if (node->settings.use_flags) {
        /* identity, port, Redis and secret come from the flags */
        snprintf(node->flag_port, sizeof(node->flag_port), "%d", node->cluster_port);
        snprintf(node->flag_redis, sizeof(node->flag_redis), "127.0.0.1:%d", cluster->redis.port);
    } else {
        fprintf(file, "  node_id: \"%s\"\n  advertise: \"%s\"\n  port: %d\n", node->node_id,
                node->advertise, node->cluster_port);
        if (node->secret_file[0])
            fprintf(file, "  secret_file: \"%s\"\n", node->secret_file);
    }
    if (tls)
        fprintf(file, "  tls:\n    cert: \"%s\"\n    key: \"%s\"\n    ca: \"%s\"\n", node->tls_cert,
                node->tls_key, cluster->ca_cert);
    if (options->heartbeat_interval)
        fprintf(file, "  heartbeat_interval: %ds\n", options->heartbeat_interval);
    if (options->node_ttl)
        fprintf(file, "  node_ttl: %ds\n", options->node_ttl);
    if (options->claim_ttl)
        fprintf(file, "  claim_ttl: %ds\n", options->claim_ttl);
    fprintf(file, "  link:\n");
    if (options->link_ping_interval)
        fprintf(file, "    ping_interval: %ds\n", options->link_ping_interval);
    if (options->link_timeout)
        fprintf(file, "    timeout: %ds\n", options->link_timeout);
    if (options->stream_window)
        fprintf(file, "    stream_window: %s\n", options->stream_window);
    fprintf(file, "  redis:\n");
    if (!options->sentinel && !node->settings.use_flags)
        fprintf(file, "    host: \"127.0.0.1\"\n    port: %d\n", cluster->redis.port);
    if (password && *password)
        fprintf(file, "    password: \"%s\"\n", password);
    if (options->redis_timeout_ms)
        fprintf(file, "    connect_timeout: %dms\n    command_timeout: %dms\n",
                options->redis_timeout_ms, options->redis_timeout_ms);
    if (options->sentinel) {
        fprintf(file, "  sentinel:\n    master: \"%s\"\n    addresses:\n", CLUSTER_MASTER_NAME);
        for (i = 0; i < CLUSTER_SENTINELS; i++)
            fprintf(file, "      - \"127.0.0.1:%d\"\n", cluster->sentinels[i].port);
    }
    if (node->settings.extra_yaml)
        fprintf(file, "%s", node->settings.extra_yaml);
    return 0;
}

static void cluster_node_prepare(struct cluster *cluster, struct cluster_node *node,
                                 const struct cluster_node_settings *settings, size_t index)
{
    char directory[320];
    size_t count = 0;

    memset(node, 0, sizeof(*node));
    if (settings)
        node->settings = *settings;
    node->cluster = cluster;
    snprintf(node->node_id, sizeof(node->node_id), "%s",
             settings && settings->node_id ? settings->node_id : "");
    if (!node->node_id[0])
        snprintf(node->node_id, sizeof(node->node_id), "node%zu", index + 1);
    node->cluster_port = node->settings.cluster_port;
    snprintf(directory, sizeof(directory), "node-%zu", index + 1);
    assert_int_equal(cluster_make_subdirectory(cluster, directory, node->relay.directory,
                                               sizeof(node->relay.directory)),
                     0);
    if (node->settings.standalone)
        return;
    if (node->settings.secret) {
        char text[256];

        snprintf(node->secret_file, sizeof(node->secret_file), "%s/secret", node->relay.directory);
        snprintf(text, sizeof(text), "%s\n", node->settings.secret);
        assert_int_equal(cluster_write_file(node->secret_file, text, 0600), 0);
    } else if (!cluster->options.no_secret) {
        if (!cluster->secret_file[0]) {
            snprintf(cluster->secret_file, sizeof(cluster->secret_file), "%s/cluster-secret",
                     cluster->directory);
            assert_int_equal(cluster_make_secret_file(cluster->secret_file), 0);
        }
        snprintf(node->secret_file, sizeof(node->secret_file), "%s", cluster->secret_file);
    }
    if (cluster->options.tls) {
        if (!cluster->have_pki)
            cluster_make_pki(cluster);
        if (node->settings.tls_cert) {
            snprintf(node->tls_cert, sizeof(node->tls_cert), "%s", node->settings.tls_cert);
            snprintf(node->tls_key, sizeof(node->tls_key), "%s", node->settings.tls_key);
        } else {
            cluster_make_certificate(cluster, node->node_id, false, node->tls_cert, node->tls_key,
                                     sizeof(node->tls_cert));
        }
    }
    if (node->settings.use_flags) {
        node->flag_args[count++] = "--node-id";
        node->flag_args[count++] = node->node_id;
        node->flag_args[count++] = "--cluster-port";
        node->flag_args[count++] = node->flag_port;
        node->flag_args[count++] = "--advertise";
        node->flag_args[count++] = node->advertise;
        if (!cluster->options.sentinel) {
            node->flag_args[count++] = "--redis";
            node->flag_args[count++] = node->flag_redis;
        }
        if (node->secret_file[0]) {
            node->flag_args[count++] = "--cluster-secret-file";
            node->flag_args[count++] = node->secret_file;
        }
        node->flag_args[count] = NULL;
    }
}

/* Start (or restart) the node in its slot. Returns 0 or -1. */
static int cluster_node_launch(struct cluster *cluster, struct cluster_node *node)
{
    struct harness_config config = cluster->options.relay;
    char directory[sizeof(node->relay.directory)];

    config.write_extra = cluster_write_node_yaml;
    config.extra_user = node;
    config.extra_args = node->settings.use_flags ? node->flag_args : NULL;
    if (!config.shutdown_timeout)
        config.shutdown_timeout = 2; /* teardown stops every node */
    snprintf(directory, sizeof(directory), "%s", node->relay.directory);
    node->started = true;
    if (harness_start_relay(&node->relay, &config, directory) < 0) {
        /* harness_start_relay cleared the struct: keep the directory known */
        snprintf(node->relay.directory, sizeof(node->relay.directory), "%s", directory);
        node->expected = false;
        return -1;
    }
    node->expected = true;
    return 0;
}

int cluster_try_start_node(struct cluster *cluster, const struct cluster_node_settings *settings)
{
    size_t index = cluster->node_count;
    struct cluster_node *node = &cluster->nodes[index];

    assert_true(index < CLUSTER_MAX_NODES);
    cluster->node_count++;
    cluster_node_prepare(cluster, node, settings, index);
    return cluster_node_launch(cluster, node) == 0 ? (int)index : -1;
}

size_t cluster_start_node(struct cluster *cluster, const struct cluster_node_settings *settings)
{
    int index = cluster_try_start_node(cluster, settings);

    if (index < 0)
        fail_msg("node %s did not start (log above)",
                 cluster->nodes[cluster->node_count - 1].node_id);
    return (size_t)index;
}

void cluster_start_nodes(struct cluster *cluster, size_t count)
{
    size_t i;

    for (i = 0; i < count; i++)
        cluster_start_node(cluster, NULL);
}

void cluster_restart_node(struct cluster *cluster, size_t node)
{
    assert_true(node < cluster->node_count);
    assert_true(cluster->nodes[node].relay.pid <= 0);
    if (cluster_node_launch(cluster, &cluster->nodes[node]) < 0)
        fail_msg("node %s did not start again", cluster->nodes[node].node_id);
}

void cluster_kill_node(struct cluster *cluster, size_t node)
{
    struct harness_relay *relay = &cluster->nodes[node].relay;

    assert_true(node < cluster->node_count && relay->pid > 0);
    cluster->nodes[node].expected = false;
    kill(relay->pid, SIGKILL);
    waitpid(relay->pid, NULL, 0);
    relay->pid = 0;
}

void cluster_stop_node(struct cluster *cluster, size_t node)
{
    int status;

    assert_true(node < cluster->node_count && cluster->nodes[node].relay.pid > 0);
    cluster->nodes[node].expected = false;
    status = harness_stop_relay(&cluster->nodes[node].relay, 10000);
    if (status != 0)
        fail_msg("node %s exited with status %d after SIGTERM", cluster->nodes[node].node_id,
                 status);
}

struct cluster_process *cluster_spawn_helper(struct cluster *cluster, const char *name,
                                             char *const argv[])
{
    struct cluster_process *helper;
    char log_path[sizeof(helper->log_path)];

    assert_true(cluster->helper_count < CLUSTER_MAX_HELPERS);
    helper = &cluster->helpers[cluster->helper_count++];
    memset(helper, 0, sizeof(*helper));
    snprintf(helper->name, sizeof(helper->name), "%s", name);
    snprintf(log_path, sizeof(log_path), "%s/%s.log", cluster->directory, name);
    memcpy(helper->log_path, log_path, sizeof(log_path));
    helper->pid = cluster_spawn(argv, helper->log_path);
    assert_true(helper->pid > 0);
    return helper;
}

void cluster_suspend(pid_t pid)
{
    assert_true(pid > 0);
    assert_int_equal(kill(pid, SIGSTOP), 0);
}

void cluster_resume(pid_t pid)
{
    assert_true(pid > 0);
    assert_int_equal(kill(pid, SIGCONT), 0);
}

/* ---- HAProxy ------------------------------------------------------------ */

int cluster_haproxy_backends_up(struct cluster *cluster)
{
    char *body = NULL, *line, *save = NULL;
    int status = 0, up = 0, status_column = -1;

    if (cluster->haproxy_stats_port <= 0 ||
        harness_http_get("127.0.0.1", cluster->haproxy_stats_port, "/stats;csv", 1000, &status,
                         &body) < 0 ||
        status != 200) {
        free(body);
        return -1;
    }
    for (line = strtok_r(body, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *field, *rest = line;
        int column = 0;
        bool ours = false, server = false;

        /* strsep, not strtok: empty fields (",,") count as columns */
        for (field = strsep(&rest, ","); field; field = strsep(&rest, ","), column++) {
            /* the header names the columns: find "status" once */
            if (line[0] == '#') {
                if (!strcmp(field, "status"))
                    status_column = column;
                continue;
            }
            if (column == 0)
                ours = !strcmp(field, "relayd_nodes");
            if (column == 1)
                server = strcmp(field, "BACKEND") && strcmp(field, "FRONTEND");
            if (column == status_column && ours && server && !strncmp(field, "UP", 2))
                up++;
        }
    }
    free(body);
    return up;
}

void cluster_start_haproxy(struct cluster *cluster)
{
    struct cluster_process *haproxy = &cluster->haproxy;
    char text[8192];
    size_t length, i, backends = 0;
    int frontend_port, up = -1;
    int64_t deadline;
    char *argv[5];

    memset(haproxy, 0, sizeof(*haproxy));
    snprintf(haproxy->name, sizeof(haproxy->name), "haproxy");
    snprintf(haproxy->log_path, sizeof(haproxy->log_path), "%s/haproxy.log", cluster->directory);
    snprintf(haproxy->config_path, sizeof(haproxy->config_path), "%s/haproxy.cfg",
             cluster->directory);
    frontend_port = harness_free_port("127.0.0.1");
    cluster->haproxy_stats_port = harness_free_port("127.0.0.1");
    haproxy->port = frontend_port;
    length = (size_t)snprintf(text, sizeof(text),
                              "global\n    maxconn 4096\n    nbthread 1\n"
                              "defaults\n    mode tcp\n    timeout connect 2s\n"
                              "    timeout client 120s\n    timeout server 120s\n"
                              "    timeout check 1s\n"
                              "frontend relayd\n    bind 127.0.0.1:%d\n"
                              "    default_backend relayd_nodes\n"
                              "backend relayd_nodes\n    balance roundrobin\n"
                              "    option httpchk GET /readyz\n",
                              frontend_port);
    for (i = 0; i < cluster->node_count; i++) {
        const struct cluster_node *node = &cluster->nodes[i];

        if (node->relay.pid <= 0)
            continue;
        length +=
            (size_t)snprintf(text + length, sizeof(text) - length,
                             "    server %s 127.0.0.1:%d check port %d inter 500ms fall 2 rise 2\n",
                             node->node_id, node->relay.port, node->relay.admin_port);
        backends++;
    }
    snprintf(text + length, sizeof(text) - length,
             "listen stats\n    mode http\n    bind 127.0.0.1:%d\n    stats enable\n"
             "    stats uri /stats\n    timeout client 10s\n",
             cluster->haproxy_stats_port);
    assert_true(backends > 0);
    assert_int_equal(cluster_write_file(haproxy->config_path, text, 0600), 0);
    snprintf(cluster->haproxy_url, sizeof(cluster->haproxy_url), "ws://127.0.0.1:%d/",
             frontend_port);
    argv[0] = "haproxy";
    argv[1] = "-db"; /* foreground, no daemon */
    argv[2] = "-f";
    argv[3] = haproxy->config_path;
    argv[4] = NULL;
    haproxy->pid = cluster_spawn(argv, haproxy->log_path);
    assert_true(haproxy->pid > 0);
    /* every backend passes its /readyz check (rise 2 x inter 500 ms) */
    deadline = ws_client_now_ms() + CLUSTER_PROCESS_READY_MS;
    while (ws_client_now_ms() < deadline && cluster_process_alive(haproxy)) {
        up = cluster_haproxy_backends_up(cluster);
        if (up == (int)backends)
            return;
        cluster_service(100);
    }
    harness_print_file_tail("haproxy", haproxy->log_path, CLUSTER_LOG_TAIL);
    fail_msg("haproxy: %d of %zu backends up (haproxy %s)", up, backends,
             haproxy->pid > 0 ? "running" : "exited");
}

/* ---- readiness and metrics ---------------------------------------------- */

int cluster_readyz(struct cluster *cluster, size_t node)
{
    char *body = NULL;
    int status;

    if (cluster->nodes[node].relay.pid <= 0)
        return -1;
    status = harness_admin_get(&cluster->nodes[node].relay, "/readyz", &body);
    free(body);
    return status;
}

int64_t cluster_wait_readyz(struct cluster *cluster, size_t node, int status, int timeout_ms)
{
    int64_t started = ws_client_now_ms(), deadline = started + timeout_ms;
    int last = cluster_readyz(cluster, node);

    while (last != status && ws_client_now_ms() < deadline) {
        cluster_service(50);
        last = cluster_readyz(cluster, node);
    }
    if (last != status) {
        harness_print_relay_log(&cluster->nodes[node].relay, CLUSTER_LOG_TAIL);
        fail_msg("node %s: /readyz answered %d, not %d, for %d ms", cluster->nodes[node].node_id,
                 last, status, timeout_ms);
    }
    return ws_client_now_ms() - started;
}

void cluster_wait_all_ready(struct cluster *cluster, int timeout_ms)
{
    int64_t deadline = ws_client_now_ms() + timeout_ms;
    size_t i;

    for (i = 0; i < cluster->node_count; i++)
        if (cluster->nodes[i].relay.pid > 0)
            cluster_wait_readyz(cluster, i, 200, harness_remaining_ms(deadline));
}

/* Sum the series of name (labels containing filter) in Prometheus text. */
static double cluster_metric_parse_sum(const char *text, const char *name, const char *filter)
{
    size_t name_length = strlen(name);
    const char *line = text;
    bool found = false;
    double sum = 0;

    while (line && *line) {
        const char *next = strchr(line, '\n');
        const char *rest = line + name_length;

        if (*line != '#' && !strncmp(line, name, name_length) && (*rest == '{' || *rest == ' ')) {
            const char *labels_end = *rest == '{' ? strchr(rest, '}') : rest;
            size_t labels_length = (size_t)(labels_end ? labels_end - rest : 0);
            bool matches = !filter || !*filter ||
                           (labels_length && memmem(rest, labels_length, filter, strlen(filter)));

            if (labels_end && matches) {
                sum += strtod(labels_end + (*rest == '{' ? 1 : 0), NULL);
                found = true;
            }
        }
        line = next ? next + 1 : NULL;
    }
    return found ? sum : -1;
}

double cluster_metric_sum(struct cluster *cluster, size_t node, const char *name,
                          const char *label_filter)
{
    char *body = NULL;
    double value = -1;

    if (cluster->nodes[node].relay.pid > 0 &&
        harness_admin_get(&cluster->nodes[node].relay, "/metrics", &body) == 200)
        value = cluster_metric_parse_sum(body, name, label_filter);
    free(body);
    return value;
}

double cluster_metric_total(struct cluster *cluster, const char *name, const char *label_filter)
{
    double total = 0;
    size_t i;

    for (i = 0; i < cluster->node_count; i++) {
        double value = cluster_metric_sum(cluster, i, name, label_filter);

        if (value > 0)
            total += value;
    }
    return total;
}

double cluster_wait_metric_at_least(struct cluster *cluster, size_t node, const char *name,
                                    const char *label_filter, double minimum, int timeout_ms)
{
    int64_t deadline = ws_client_now_ms() + timeout_ms;
    double value = cluster_metric_sum(cluster, node, name, label_filter);

    while (value < minimum && ws_client_now_ms() < deadline) {
        cluster_service(50);
        value = cluster_metric_sum(cluster, node, name, label_filter);
    }
    return value;
}

/* ---- clients ------------------------------------------------------------ */

void cluster_track(struct cluster *cluster, struct ws_client_connection *connection)
{
    if (cluster->connection_count == cluster->connection_capacity) {
        size_t capacity = cluster->connection_capacity ? 2 * cluster->connection_capacity : 64;
        struct ws_client_connection **grown =
            realloc(cluster->connections, capacity * sizeof(*grown));

        if (!grown) {
            ws_client_free(connection);
            fail_msg("out of memory");
        }
        cluster->connections = grown;
        cluster->connection_capacity = capacity;
    }
    cluster->connections[cluster->connection_count++] = connection;
}

struct ws_client_connection *cluster_connect_url(struct cluster *cluster, const char *url)
{
    struct ws_client_connection *connection = relay_test_connect_url(url);

    cluster_track(cluster, connection);
    return connection;
}

struct ws_client_connection *cluster_connect(struct cluster *cluster, size_t node)
{
    assert_true(node < cluster->node_count && cluster->nodes[node].relay.pid > 0);
    return cluster_connect_url(cluster, cluster->nodes[node].relay.url);
}

void cluster_drop(struct cluster *cluster, struct ws_client_connection *connection)
{
    relay_test_drop_from(cluster->connections, &cluster->connection_count, connection);
}

void cluster_connect_many(struct cluster *cluster, const char *const *urls,
                          struct ws_client_connection **out, size_t count, int timeout_ms)
{
    size_t done = 0;

    /* batches: the relays' listen backlogs are not overrun */
    while (done < count) {
        size_t size = count - done < CLUSTER_CONNECT_BATCH ? count - done : CLUSTER_CONNECT_BATCH;
        size_t i, open;

        for (i = 0; i < size; i++) {
            char error[256] = "";

            out[done + i] =
                ws_client_connect_start(relay_test_client, urls[done + i], error, sizeof(error));
            if (!out[done + i])
                fail_msg("connecting to %s: %s", urls[done + i], error);
            cluster_track(cluster, out[done + i]);
        }
        open = ws_client_wait_connected(relay_test_client, out + done, size, timeout_ms);
        if (open != size)
            fail_msg("only %zu of %zu connections opened (after %zu): %s", open, size, done,
                     ws_client_error(out[done]));
        done += size;
    }
}

void cluster_expect_notification(struct ws_client_connection *connection, const char *name,
                                 const char *rid, const char *reference, int timeout_ms)
{
    struct moneysocket_message parsed;

    relay_test_receive_notification(connection, name, timeout_ms, &parsed);
    relay_test_check_notification(&parsed, name, rid, reference);
}

/* Receive notification name into *parsed (unchecked), taking one
 * NOTIFY_RENDEZVOUS_NOT_READY for reference before it if one comes first
 * (a node may answer before it asked the cluster). */
static void cluster_receive_after_not_ready(struct ws_client_connection *connection,
                                            const char *name, const char *rid,
                                            const char *reference, int timeout_ms,
                                            struct moneysocket_message *parsed)
{
    int64_t deadline = ws_client_now_ms() + timeout_ms;

    relay_test_receive_notification(connection, name, timeout_ms, parsed);
    if (!strcmp(parsed->notification_name.text, "NOTIFY_RENDEZVOUS_NOT_READY")) {
        relay_test_check_notification(parsed, "NOTIFY_RENDEZVOUS_NOT_READY", rid, reference);
        relay_test_receive_notification(connection, name, harness_remaining_ms(deadline), parsed);
    }
}

void cluster_expect_rendezvous(struct ws_client_connection *connection, const char *rid,
                               const char *reference, int timeout_ms)
{
    struct moneysocket_message parsed;

    cluster_receive_after_not_ready(connection, "NOTIFY_RENDEZVOUS", rid, reference, timeout_ms,
                                    &parsed);
    relay_test_check_notification(&parsed, "NOTIFY_RENDEZVOUS", rid, reference);
}

void cluster_expect_end(struct ws_client_connection *connection, const char *rid, int timeout_ms)
{
    int64_t deadline = ws_client_now_ms() + timeout_ms;

    cluster_expect_notification(connection, "NOTIFY_RENDEZVOUS_END", rid, NULL, timeout_ms);
    relay_test_expect_close_within(connection, 1000, false, harness_remaining_ms(deadline) + 1000);
}

void cluster_expect_refused(struct ws_client_connection *connection, const char *rid,
                            const char *reference, int timeout_ms)
{
    int64_t deadline = ws_client_now_ms() + timeout_ms;
    struct moneysocket_message parsed;

    cluster_receive_after_not_ready(connection, "NOTIFY_RENDEZVOUS_END", rid, reference, timeout_ms,
                                    &parsed);
    relay_test_check_notification(&parsed, "NOTIFY_RENDEZVOUS_END", rid, NULL);
    relay_test_expect_close_within(connection, 1000, false, harness_remaining_ms(deadline) + 1000);
}

bool cluster_expect_not_paired(struct ws_client_connection *connection, const char *rid,
                               int window_ms)
{
    int64_t deadline = ws_client_now_ms() + window_ms;

    for (;;) {
        struct ws_client_message message;
        struct moneysocket_message parsed;
        enum ws_client_result result =
            ws_client_receive(connection, &message, harness_remaining_ms(deadline));
        char copy[2048];
        size_t length;

        if (result == WS_CLIENT_TIMEOUT)
            return false;
        if (result == WS_CLIENT_CLOSED)
            return true;
        length = relay_test_copy_release(&message, copy, sizeof(copy));
        if (moneysocket_json_parse(copy, length, &parsed) < 0)
            fail_msg("rid %.8s: expected no pairing, got a %zu-byte data frame", rid, length);
        if (strcmp(parsed.notification_name.text, "NOTIFY_RENDEZVOUS_NOT_READY") &&
            strcmp(parsed.notification_name.text, "NOTIFY_RENDEZVOUS_END"))
            fail_msg("rid %.8s: expected no pairing, got %s", rid, parsed.notification_name.text);
    }
}

void cluster_pair_urls(struct cluster *cluster, const char *rid, const char *first_url,
                       struct relay_test_peer *first, const char *second_url,
                       struct relay_test_peer *second)
{
    first->connection = cluster_connect_url(cluster, first_url);
    relay_test_send_request(first->connection, rid, first->request_uuid);
    cluster_expect_notification(first->connection, "NOTIFY_RENDEZVOUS_NOT_READY", rid,
                                first->request_uuid, CLUSTER_NOTIFY_TIMEOUT_MS);
    second->connection = cluster_connect_url(cluster, second_url);
    relay_test_send_request(second->connection, rid, second->request_uuid);
    cluster_expect_rendezvous(second->connection, rid, second->request_uuid,
                              CLUSTER_NOTIFY_TIMEOUT_MS);
    cluster_expect_notification(first->connection, "NOTIFY_RENDEZVOUS", rid, first->request_uuid,
                                CLUSTER_NOTIFY_TIMEOUT_MS);
}

void cluster_pair(struct cluster *cluster, const char *rid, size_t first_node,
                  struct relay_test_peer *first, size_t second_node, struct relay_test_peer *second)
{
    assert_true(first_node < cluster->node_count && second_node < cluster->node_count);
    cluster_pair_urls(cluster, rid, cluster->nodes[first_node].relay.url, first,
                      cluster->nodes[second_node].relay.url, second);
}

void *cluster_alloc(struct cluster *cluster, size_t size)
{
    void *memory = calloc(1, size);

    assert_non_null(memory);
    assert_true(cluster->kept_count < sizeof(cluster->kept) / sizeof(cluster->kept[0]));
    cluster->kept[cluster->kept_count++] = memory;
    return memory;
}

/* ---- PKI ---------------------------------------------------------------- */

void cluster_make_pki(struct cluster *cluster)
{
    if (cluster->have_pki)
        return;
    snprintf(cluster->ca_cert, sizeof(cluster->ca_cert), "%s/cluster-ca.pem", cluster->directory);
    snprintf(cluster->ca_key, sizeof(cluster->ca_key), "%s/cluster-ca.key", cluster->directory);
    snprintf(cluster->foreign_ca_cert, sizeof(cluster->foreign_ca_cert), "%s/foreign-ca.pem",
             cluster->directory);
    snprintf(cluster->foreign_ca_key, sizeof(cluster->foreign_ca_key), "%s/foreign-ca.key",
             cluster->directory);
    if (harness_make_ca(cluster->ca_cert, cluster->ca_key, "/CN=relayd test cluster CA") < 0)
        fail_msg("making the cluster CA failed");
    /* same shape, another key: what an outsider's certificate chains to */
    if (harness_make_ca(cluster->foreign_ca_cert, cluster->foreign_ca_key,
                        "/CN=relayd test foreign CA") < 0)
        fail_msg("making the foreign CA failed");
    cluster->have_pki = true;
}

void cluster_make_certificate(struct cluster *cluster, const char *name, bool foreign,
                              char *cert_path, char *key_path, size_t path_size)
{
    static int serial = 100;
    char extensions_path[320], extensions[512], subject[128], serial_text[16];

    if (!cluster->have_pki)
        cluster_make_pki(cluster);
    snprintf(cert_path, path_size, "%s/%s%s.pem", cluster->directory, foreign ? "foreign-" : "",
             name);
    snprintf(key_path, path_size, "%s/%s%s.key", cluster->directory, foreign ? "foreign-" : "",
             name);
    snprintf(extensions_path, sizeof(extensions_path), "%s.ext", cert_path);
    snprintf(extensions, sizeof(extensions),
             "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
             "extendedKeyUsage=serverAuth,clientAuth\n"
             "subjectAltName=DNS:%s,IP:127.0.0.1\n",
             name);
    snprintf(subject, sizeof(subject), "/CN=%s", name);
    snprintf(serial_text, sizeof(serial_text), "%d", serial++);
    assert_int_equal(cluster_write_file(extensions_path, extensions, 0600), 0);
    if (harness_make_certificate(
            cert_path, key_path, subject, foreign ? cluster->foreign_ca_cert : cluster->ca_cert,
            foreign ? cluster->foreign_ca_key : cluster->ca_key, serial_text, extensions_path) < 0)
        fail_msg("making the certificate of %s failed", name);
}

/* ---- raw links ---------------------------------------------------------- */

static void cluster_link_tls_error(struct cluster_raw_link *link, const char *what)
{
    unsigned long error = ERR_get_error();
    char text[120] = "no details";

    if (error)
        ERR_error_string_n(error, text, sizeof(text));
    snprintf(link->error, sizeof(link->error), "%s: %s", what, text);
    ERR_clear_error();
}

/* Wait for the socket to be readable or writable as OpenSSL asked.
 * Returns false at the deadline. */
static bool cluster_link_wait(struct cluster_raw_link *link, int ssl_error, int64_t deadline)
{
    struct pollfd wait = {link->fd, ssl_error == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN, 0};
    int ready;

    do
        ready = poll(&wait, 1, harness_remaining_ms(deadline));
    while (ready < 0 && errno == EINTR);
    return ready == 1;
}

/* Read up to length bytes: > 0 bytes read, 0 on timeout, -1 when the
 * connection ended (EOF, reset, TLS alert). */
static ssize_t cluster_link_read_some(struct cluster_raw_link *link, void *buffer, size_t length,
                                      int64_t deadline)
{
    for (;;) {
        ssize_t got;

        if (link->tls) {
            int ssl_got = SSL_read(link->tls, buffer, (int)length);
            int ssl_error = ssl_got > 0 ? SSL_ERROR_NONE : SSL_get_error(link->tls, ssl_got);

            if (ssl_got > 0)
                return ssl_got;
            if (ssl_error == SSL_ERROR_WANT_READ || ssl_error == SSL_ERROR_WANT_WRITE) {
                if (!cluster_link_wait(link, ssl_error, deadline))
                    return 0;
                continue;
            }
            cluster_link_tls_error(link, "TLS read");
            return -1;
        }
        if (!cluster_link_wait(link, SSL_ERROR_WANT_READ, deadline))
            return 0;
        got = recv(link->fd, buffer, length, 0);
        if (got > 0)
            return got;
        if (got < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        snprintf(link->error, sizeof(link->error), "%s",
                 got == 0 ? "end of stream" : strerror(errno));
        return -1;
    }
}

/* read_exact of a link's raw_ws_stream (context: the link): 0 when all
 * read, -1 on timeout, -2 when the connection ended. */
static int cluster_link_read_exact(void *context, void *buffer, size_t length, int64_t deadline)
{
    struct cluster_raw_link *link = context;
    unsigned char *bytes = buffer;

    while (length) {
        ssize_t got = cluster_link_read_some(link, bytes, length, deadline);

        if (got == 0)
            return -1;
        if (got < 0)
            return -2;
        bytes += got;
        length -= (size_t)got;
    }
    return 0;
}

int cluster_raw_link_write(struct cluster_raw_link *link, const void *data, size_t length)
{
    int64_t deadline = ws_client_now_ms() + RELAY_TEST_TIMEOUT_MS;
    const unsigned char *bytes = data;

    while (length) {
        ssize_t sent;

        if (link->tls) {
            int ssl_sent = SSL_write(link->tls, bytes, (int)length);
            int ssl_error = ssl_sent > 0 ? SSL_ERROR_NONE : SSL_get_error(link->tls, ssl_sent);

            if (ssl_sent <= 0) {
                if ((ssl_error == SSL_ERROR_WANT_READ || ssl_error == SSL_ERROR_WANT_WRITE) &&
                    cluster_link_wait(link, ssl_error, deadline))
                    continue;
                cluster_link_tls_error(link, "TLS write");
                return -1;
            }
            sent = ssl_sent;
        } else {
            if (!cluster_link_wait(link, SSL_ERROR_WANT_WRITE, deadline))
                return -1;
            sent = send(link->fd, bytes, length, MSG_NOSIGNAL);
            if (sent < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            if (sent < 0)
                return -1;
        }
        bytes += sent;
        length -= (size_t)sent;
    }
    return 0;
}

/* write_all of a link's raw_ws_stream (context: the link). */
static int cluster_link_write_all(void *context, const void *data, size_t length)
{
    return cluster_raw_link_write(context, data, length);
}

/* The link as a byte stream for raw_ws' handshake and frame steps. */
static struct raw_ws_stream cluster_link_stream(struct cluster_raw_link *link)
{
    struct raw_ws_stream stream = {cluster_link_read_exact, cluster_link_write_all, link};

    return stream;
}

int cluster_raw_link_send(struct cluster_raw_link *link, int opcode, const void *data,
                          size_t length)
{
    struct raw_ws_stream stream = cluster_link_stream(link);

    return raw_ws_stream_send_frame(&stream, opcode, data, length);
}

int cluster_raw_link_read_frame(struct cluster_raw_link *link, int timeout_ms, int *opcode,
                                unsigned char **payload, size_t *length)
{
    struct raw_ws_stream stream = cluster_link_stream(link);

    /* lenient where raw_ws_read_frame is strict: a masked frame is read */
    return raw_ws_stream_read_frame(&stream, ws_client_now_ms() + timeout_ms, true, opcode, payload,
                                    length);
}

int cluster_raw_link_wait_closed(struct cluster_raw_link *link, int timeout_ms, int *data_frames)
{
    int64_t deadline = ws_client_now_ms() + timeout_ms;

    *data_frames = 0;
    for (;;) {
        unsigned char *payload;
        size_t length;
        int opcode, result;

        result = cluster_raw_link_read_frame(link, harness_remaining_ms(deadline), &opcode,
                                             &payload, &length);
        free(payload);
        if (result == -2)
            return 0;
        if (result == -1)
            return -1;
        if ((opcode & 0x0f) == 8)
            return 0;
        if ((opcode & 0x0f) <= 2)
            (*data_frames)++;
    }
}

void cluster_raw_link_close(struct cluster_raw_link *link)
{
    if (link->tls)
        SSL_free(link->tls);
    if (link->tls_context)
        SSL_CTX_free(link->tls_context);
    if (link->fd >= 0)
        close(link->fd);
    link->tls = NULL;
    link->tls_context = NULL;
    link->fd = -1;
}

static int cluster_link_start_tls(struct cluster_raw_link *link, const struct cluster_raw_tls *tls,
                                  int64_t deadline)
{
    static const unsigned char alpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};

    link->tls_context = SSL_CTX_new(TLS_client_method());
    if (!link->tls_context) {
        cluster_link_tls_error(link, "SSL_CTX_new");
        return -1;
    }
    if (tls->ca) {
        if (SSL_CTX_load_verify_locations(link->tls_context, tls->ca, NULL) != 1) {
            cluster_link_tls_error(link, "loading the CA");
            return -1;
        }
        SSL_CTX_set_verify(link->tls_context, SSL_VERIFY_PEER, NULL);
    } else {
        SSL_CTX_set_verify(link->tls_context, SSL_VERIFY_NONE, NULL);
    }
    if (tls->cert &&
        (SSL_CTX_use_certificate_chain_file(link->tls_context, tls->cert) != 1 ||
         SSL_CTX_use_PrivateKey_file(link->tls_context, tls->key, SSL_FILETYPE_PEM) != 1)) {
        cluster_link_tls_error(link, "loading the client certificate");
        return -1;
    }
    link->tls = SSL_new(link->tls_context);
    if (!link->tls || SSL_set_fd(link->tls, link->fd) != 1) {
        cluster_link_tls_error(link, "SSL_new");
        return -1;
    }
    SSL_set_mode(link->tls, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_set_alpn_protos(link->tls, alpn, sizeof(alpn));
    for (;;) {
        int result = SSL_connect(link->tls);
        int ssl_error = result == 1 ? SSL_ERROR_NONE : SSL_get_error(link->tls, result);

        if (result == 1)
            return 0;
        if ((ssl_error == SSL_ERROR_WANT_READ || ssl_error == SSL_ERROR_WANT_WRITE) &&
            cluster_link_wait(link, ssl_error, deadline))
            continue;
        cluster_link_tls_error(link, "TLS handshake");
        return -1;
    }
}

/* Read the response head (not past it: the HELLO follows) and note its
 * status and subprotocol. Returns 0, -1 on timeout, -2 when closed. */
static int cluster_link_read_head(struct cluster_raw_link *link, int64_t deadline)
{
    struct raw_ws_stream stream = cluster_link_stream(link);
    char head[4096], *protocol;
    int result = raw_ws_stream_read_head(&stream, deadline, head, sizeof(head), &link->http_status);

    if (result < 0)
        return result;
    protocol = strcasestr(head, "\r\nsec-websocket-protocol:");
    if (protocol) {
        protocol += strlen("\r\nsec-websocket-protocol:");
        while (*protocol == ' ')
            protocol++;
        snprintf(link->subprotocol, sizeof(link->subprotocol), "%.*s",
                 (int)strcspn(protocol, "\r\n"), protocol);
    }
    return 0;
}

int cluster_raw_link_open(struct cluster_raw_link *link, int port, const char *subprotocol,
                          const struct cluster_raw_tls *tls, int timeout_ms)
{
    int64_t deadline = ws_client_now_ms() + timeout_ms;
    struct raw_ws_stream stream;

    memset(link, 0, sizeof(*link));
    stream = cluster_link_stream(link);
    link->fd = harness_connect("127.0.0.1", port, deadline);
    if (link->fd < 0) {
        snprintf(link->error, sizeof(link->error), "TCP connect to %d failed", port);
        return -1;
    }
    if (tls && cluster_link_start_tls(link, tls, deadline) < 0)
        return -1;
    if (raw_ws_stream_send_upgrade(&stream, "127.0.0.1", port, "/cluster", subprotocol) < 0) {
        /* a TLS alert for a refused client certificate lands here or below */
        if (!link->error[0])
            snprintf(link->error, sizeof(link->error), "sending the upgrade failed");
        return -2;
    }
    if (cluster_link_read_head(link, deadline) < 0) {
        if (!link->error[0])
            snprintf(link->error, sizeof(link->error), "no upgrade response");
        return -2;
    }
    if (link->http_status != 101) {
        snprintf(link->error, sizeof(link->error), "upgrade answered %d", link->http_status);
        return -2;
    }
    return 0;
}

enum cluster_probe_result cluster_probe_link(int port, const char *subprotocol,
                                             const struct cluster_raw_tls *tls, int timeout_ms)
{
    int64_t deadline = ws_client_now_ms() + timeout_ms;
    struct cluster_raw_link link;
    enum cluster_probe_result outcome;
    int result = cluster_raw_link_open(&link, port, subprotocol, tls, timeout_ms);

    if (result == -1) {
        outcome = CLUSTER_PROBE_NO_CONNECTION;
    } else if (result == -2) {
        outcome = CLUSTER_PROBE_REFUSED;
    } else {
        outcome = CLUSTER_PROBE_SILENT;
        while (outcome == CLUSTER_PROBE_SILENT) {
            unsigned char *payload;
            size_t length;
            int opcode;

            result = cluster_raw_link_read_frame(&link, harness_remaining_ms(deadline), &opcode,
                                                 &payload, &length);
            free(payload);
            if (result == -1)
                break;
            if (result == -2 || (opcode & 0x0f) == 8)
                outcome = CLUSTER_PROBE_CLOSED;
            else if ((opcode & 0x0f) <= 2)
                outcome = CLUSTER_PROBE_HELLO;
        }
    }
    if (outcome != CLUSTER_PROBE_HELLO && link.error[0])
        fprintf(stderr, "  probe of port %d: %s (%s)\n", port, cluster_probe_name(outcome),
                link.error);
    cluster_raw_link_close(&link);
    return outcome;
}

const char *cluster_probe_name(enum cluster_probe_result result)
{
    switch (result) {
    case CLUSTER_PROBE_NO_CONNECTION:
        return "no connection";
    case CLUSTER_PROBE_REFUSED:
        return "refused";
    case CLUSTER_PROBE_CLOSED:
        return "closed before any frame";
    case CLUSTER_PROBE_HELLO:
        return "accepted (HELLO)";
    case CLUSTER_PROBE_SILENT:
        return "accepted, silent";
    }
    return "?";
}

/* ---- the link handshake ------------------------------------------------- */

int cluster_link_send_frame(struct cluster_raw_link *link, int type, int flags, uint32_t stream_id,
                            const void *payload, size_t length)
{
    unsigned char *message = malloc(8 + length);
    int result;

    if (!message)
        return -1;
    message[0] = (unsigned char)type;
    message[1] = (unsigned char)flags;
    message[2] = message[3] = 0;
    message[4] = (unsigned char)(stream_id >> 24);
    message[5] = (unsigned char)(stream_id >> 16);
    message[6] = (unsigned char)(stream_id >> 8);
    message[7] = (unsigned char)stream_id;
    if (length)
        memcpy(message + 8, payload, length);
    result = cluster_raw_link_send(link, 2, message, 8 + length);
    free(message);
    return result;
}

static uint64_t cluster_read_u64(const unsigned char *bytes)
{
    uint64_t value = 0;
    int i;

    for (i = 0; i < 8; i++)
        value = value << 8 | bytes[i];
    return value;
}

static void cluster_write_u64(unsigned char *bytes, uint64_t value)
{
    int i;

    for (i = 7; i >= 0; i--, value >>= 8)
        bytes[i] = (unsigned char)value;
}

int cluster_link_read_hello(struct cluster_raw_link *link, int timeout_ms,
                            struct cluster_link_hello *hello)
{
    unsigned char *message;
    size_t length, n;
    int opcode, result;

    memset(hello, 0, sizeof(*hello));
    result = cluster_raw_link_read_frame(link, timeout_ms, &opcode, &message, &length);
    if (result < 0) {
        snprintf(link->error, sizeof(link->error), "no HELLO (%s)",
                 result == -1 ? "timeout" : "closed");
        return -1;
    }
    n = length > 9 ? message[9] : 0;
    /* version, n, id, epoch, nonce: 42 + n payload bytes (the type table
     * of link-protocol.md says 43 + n; its byte layout adds up to 42 + n) */
    if (opcode != 0x82 || length < 8 + 42 + 1 || message[0] != CLUSTER_LINK_HELLO ||
        message[8] != 1 || n < 1 || n > 64 || length != 8 + 42 + n) {
        snprintf(link->error, sizeof(link->error), "not a HELLO: opcode 0x%x, %zu bytes, type %d",
                 opcode, length, length ? message[0] : -1);
        free(message);
        return -1;
    }
    memcpy(hello->node_id, message + 10, n);
    hello->node_id[n] = '\0';
    hello->epoch = cluster_read_u64(message + 10 + n);
    memcpy(hello->nonce, message + 18 + n, 32);
    free(message);
    return 0;
}

/* HMAC-SHA256(secret, label || T), link-protocol.md section 4.2. */
static void cluster_link_mac(const char *secret, const char *label,
                             const struct cluster_link_hello *hello,
                             const struct cluster_link_auth *auth, unsigned char *mac)
{
    unsigned char transcript[20 + 64 + 2 * (1 + 64 + 8)];
    size_t length = 0, server_length = strlen(hello->node_id),
           client_length = strlen(auth->node_id);
    unsigned int mac_length = 32;

    memcpy(transcript, label, 20);
    length = 20;
    memcpy(transcript + length, hello->nonce, 32);
    memcpy(transcript + length + 32, auth->nonce, 32);
    length += 64;
    transcript[length++] = (unsigned char)server_length;
    memcpy(transcript + length, hello->node_id, server_length);
    length += server_length;
    cluster_write_u64(transcript + length, hello->epoch);
    length += 8;
    transcript[length++] = (unsigned char)client_length;
    memcpy(transcript + length, auth->node_id, client_length);
    length += client_length;
    cluster_write_u64(transcript + length, auth->epoch);
    length += 8;
    HMAC(EVP_sha256(), secret, (int)strlen(secret), transcript, length, mac, &mac_length);
}

size_t cluster_link_make_auth(unsigned char *payload, size_t size,
                              const struct cluster_link_hello *hello, const char *node_id,
                              uint64_t epoch, const char *secret, struct cluster_link_auth *auth)
{
    size_t n = strlen(node_id);

    assert_true(n >= 1 && n <= 64 && size >= 73 + n);
    memset(auth, 0, sizeof(*auth));
    memcpy(auth->node_id, node_id, n);
    auth->epoch = epoch;
    assert_int_equal(RAND_bytes(auth->nonce, sizeof(auth->nonce)), 1);
    if (secret)
        cluster_link_mac(secret, CLUSTER_LINK_CLIENT_MAC_LABEL, hello, auth, auth->mac);
    payload[0] = (unsigned char)n;
    memcpy(payload + 1, node_id, n);
    cluster_write_u64(payload + 1 + n, epoch);
    memcpy(payload + 9 + n, auth->nonce, 32);
    memcpy(payload + 41 + n, auth->mac, 32);
    return 73 + n;
}

int cluster_link_await_auth_ok(struct cluster_raw_link *link, int timeout_ms,
                               const struct cluster_link_hello *hello,
                               const struct cluster_link_auth *auth, const char *secret)
{
    int64_t deadline = ws_client_now_ms() + timeout_ms;

    for (;;) {
        unsigned char *message, expected[32];
        size_t length;
        int opcode, result;

        result = cluster_raw_link_read_frame(link, harness_remaining_ms(deadline), &opcode,
                                             &message, &length);
        if (result == -1)
            return -1;
        if (result == -2 || (opcode & 0x0f) == 8) {
            free(message);
            return 0;
        }
        if ((opcode & 0x0f) == 9 || (opcode & 0x0f) == 10) { /* WebSocket ping, pong */
            free(message);
            continue;
        }
        if (length >= 8 && message[0] == CLUSTER_LINK_GOAWAY) {
            free(message);
            continue; /* the close follows */
        }
        if (opcode != 0x82 || length != 8 + 32 || message[0] != CLUSTER_LINK_AUTH_OK) {
            snprintf(link->error, sizeof(link->error), "expected AUTH_OK, got type %d (%zu bytes)",
                     length ? message[0] : -1, length);
            free(message);
            return -2;
        }
        if (secret) {
            cluster_link_mac(secret, CLUSTER_LINK_SERVER_MAC_LABEL, hello, auth, expected);
            if (CRYPTO_memcmp(expected, message + 8, 32)) {
                snprintf(link->error, sizeof(link->error), "AUTH_OK with a wrong server MAC");
                free(message);
                return -2;
            }
        }
        free(message);
        return 1;
    }
}

void cluster_shared_secret(struct cluster *cluster, char *out, size_t out_size)
{
    size_t length;
    char *text = whole_file_read(cluster->secret_file, &length);

    assert_non_null(text);
    while (length && (text[length - 1] == '\n' || text[length - 1] == '\r'))
        text[--length] = '\0';
    snprintf(out, out_size, "%s", text);
    free(text);
}

/* ---- capturing proxy ---------------------------------------------------- */

#define CLUSTER_PROXY_PAIRS 16

struct cluster_proxy_pair {
    int client, server;
    bool capture;
};

static void cluster_proxy_close_pair(struct cluster_proxy_pair *pair)
{
    close(pair->client);
    close(pair->server);
    pair->client = pair->server = -1;
}

/* Copy what is readable on from to to. Returns false when the pair ends. */
static bool cluster_proxy_pump(struct cluster_proxy *proxy, int from, int to, bool capture)
{
    unsigned char buffer[16384];
    ssize_t got = recv(from, buffer, sizeof(buffer), MSG_DONTWAIT);
    size_t done = 0;

    if (got < 0 && (errno == EAGAIN || errno == EINTR))
        return true;
    if (got <= 0)
        return false;
    if (capture) {
        pthread_mutex_lock(&proxy->lock);
        size_t room = sizeof(proxy->capture) - proxy->captured;
        size_t take = (size_t)got < room ? (size_t)got : room;

        memcpy(proxy->capture + proxy->captured, buffer, take);
        proxy->captured += take;
        pthread_mutex_unlock(&proxy->lock);
    }
    /* blocking with SO_SNDTIMEO: a peer that stops reading ends the pair */
    while (done < (size_t)got) {
        ssize_t sent = send(to, buffer + done, (size_t)got - done, MSG_NOSIGNAL);

        if (sent <= 0)
            return false;
        done += (size_t)sent;
    }
    return true;
}

static void cluster_proxy_accept(struct cluster_proxy *proxy, struct cluster_proxy_pair *pairs)
{
    struct sockaddr_in target = {.sin_family = AF_INET,
                                 .sin_port = htons((uint16_t)proxy->target_port)};
    struct timeval send_timeout = {1, 0};
    int client = accept4(proxy->listen_fd, NULL, NULL, SOCK_CLOEXEC), server;
    size_t i;

    if (client < 0)
        return;
    inet_pton(AF_INET, "127.0.0.1", &target.sin_addr);
    server = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (server < 0 || connect(server, (struct sockaddr *)&target, sizeof(target)) < 0) {
        close(client);
        if (server >= 0)
            close(server);
        return;
    }
    setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof(send_timeout));
    setsockopt(server, SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof(send_timeout));
    for (i = 0; i < CLUSTER_PROXY_PAIRS; i++) {
        if (pairs[i].client < 0) {
            pairs[i].client = client;
            pairs[i].server = server;
            pthread_mutex_lock(&proxy->lock);
            pairs[i].capture = proxy->connections++ == 0;
            pthread_mutex_unlock(&proxy->lock);
            return;
        }
    }
    close(client);
    close(server);
}

static void *cluster_proxy_main(void *argument)
{
    struct cluster_proxy *proxy = argument;
    struct cluster_proxy_pair pairs[CLUSTER_PROXY_PAIRS];
    size_t i;

    for (i = 0; i < CLUSTER_PROXY_PAIRS; i++)
        pairs[i].client = pairs[i].server = -1;
    for (;;) {
        struct pollfd fds[2 + 2 * CLUSTER_PROXY_PAIRS];
        size_t count = 2;

        fds[0] = (struct pollfd){proxy->stop_pipe[0], POLLIN, 0};
        fds[1] = (struct pollfd){proxy->listen_fd, POLLIN, 0};
        for (i = 0; i < CLUSTER_PROXY_PAIRS; i++) {
            fds[2 + 2 * i] = (struct pollfd){pairs[i].client, POLLIN, 0};
            fds[3 + 2 * i] = (struct pollfd){pairs[i].server, POLLIN, 0};
            count += 2;
        }
        if (poll(fds, count, 500) < 0 && errno != EINTR)
            break;
        if (fds[0].revents) {
            char command = 'x';

            if (read(proxy->stop_pipe[0], &command, 1) != 1 || command != 'c')
                break;
            /* cut: every connection carried now ends, the proxy goes on */
            for (i = 0; i < CLUSTER_PROXY_PAIRS; i++)
                if (pairs[i].client >= 0)
                    cluster_proxy_close_pair(&pairs[i]);
            continue;
        }
        if (fds[1].revents & POLLIN)
            cluster_proxy_accept(proxy, pairs);
        for (i = 0; i < CLUSTER_PROXY_PAIRS; i++) {
            bool alive = true;

            if (pairs[i].client < 0)
                continue;
            if (fds[2 + 2 * i].revents)
                alive =
                    cluster_proxy_pump(proxy, pairs[i].client, pairs[i].server, pairs[i].capture);
            if (alive && fds[3 + 2 * i].revents)
                alive = cluster_proxy_pump(proxy, pairs[i].server, pairs[i].client, false);
            if (!alive)
                cluster_proxy_close_pair(&pairs[i]);
        }
    }
    for (i = 0; i < CLUSTER_PROXY_PAIRS; i++)
        if (pairs[i].client >= 0)
            cluster_proxy_close_pair(&pairs[i]);
    return NULL;
}

size_t cluster_start_proxy(struct cluster *cluster, int target_port)
{
    struct cluster_proxy *proxy;
    struct sockaddr_in address = {.sin_family = AF_INET};
    socklen_t length = sizeof(address);

    assert_true(cluster->proxy_count < CLUSTER_MAX_PROXIES);
    proxy = &cluster->proxies[cluster->proxy_count];
    memset(proxy, 0, sizeof(*proxy));
    proxy->target_port = target_port;
    inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
    proxy->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(proxy->listen_fd >= 0);
    assert_int_equal(bind(proxy->listen_fd, (struct sockaddr *)&address, sizeof(address)), 0);
    assert_int_equal(listen(proxy->listen_fd, 64), 0);
    assert_int_equal(getsockname(proxy->listen_fd, (struct sockaddr *)&address, &length), 0);
    proxy->port = ntohs(address.sin_port);
    assert_int_equal(pipe2(proxy->stop_pipe, O_CLOEXEC), 0);
    pthread_mutex_init(&proxy->lock, NULL);
    assert_int_equal(pthread_create(&proxy->thread, NULL, cluster_proxy_main, proxy), 0);
    proxy->running = true;
    return cluster->proxy_count++;
}

void cluster_proxy_cut(struct cluster *cluster, size_t index)
{
    assert_true(index < cluster->proxy_count && cluster->proxies[index].running);
    assert_int_equal(write(cluster->proxies[index].stop_pipe[1], "c", 1), 1);
}

unsigned char *cluster_proxy_capture(struct cluster *cluster, size_t index, size_t *length)
{
    struct cluster_proxy *proxy = &cluster->proxies[index];
    unsigned char *copy = cluster_alloc(cluster, sizeof(proxy->capture));

    pthread_mutex_lock(&proxy->lock);
    memcpy(copy, proxy->capture, proxy->captured);
    *length = proxy->captured;
    pthread_mutex_unlock(&proxy->lock);
    return copy;
}

static void cluster_stop_proxies(struct cluster *cluster)
{
    size_t i;

    for (i = 0; i < cluster->proxy_count; i++) {
        struct cluster_proxy *proxy = &cluster->proxies[i];

        if (!proxy->running)
            continue;
        if (write(proxy->stop_pipe[1], "x", 1) != 1)
            fprintf(stderr, "cluster: cannot stop proxy %zu\n", i);
        pthread_join(proxy->thread, NULL);
        close(proxy->stop_pipe[0]);
        close(proxy->stop_pipe[1]);
        close(proxy->listen_fd);
        pthread_mutex_destroy(&proxy->lock);
        proxy->running = false;
    }
}

/* ---- fixtures ----------------------------------------------------------- */

int cluster_group_setup(void **state)
{
    /* nodes and helpers are children: ignore SIGPIPE from dead sockets */
    signal(SIGPIPE, SIG_IGN);
    return relay_test_group_setup(state);
}

int cluster_group_teardown(void **state)
{
    return relay_test_group_teardown(state);
}

int cluster_test_setup(void **state)
{
    struct cluster *cluster = calloc(1, sizeof(*cluster));

    *state = cluster;
    if (!cluster || harness_make_directory(cluster->directory, sizeof(cluster->directory)) < 0)
        return -1;
    /* short timers: failures are noticed within seconds */
    cluster->options.heartbeat_interval = 1;
    cluster->options.node_ttl = 3;
    cluster->options.claim_ttl = 30;
    cluster->options.link_ping_interval = 2;
    cluster->options.link_timeout = 6;
    cluster->options.redis_timeout_ms = 1000;
    return 0;
}

void cluster_finish(struct cluster *cluster)
{
    size_t i;

    for (i = 0; i < cluster->node_count; i++) {
        struct cluster_node *node = &cluster->nodes[i];
        int status;

        if (!node->expected || node->relay.pid <= 0)
            continue;
        if (waitpid(node->relay.pid, &status, WNOHANG) == node->relay.pid) {
            node->relay.pid = 0;
            harness_print_relay_log(&node->relay, CLUSTER_LOG_TAIL);
            fail_msg("node %s died during the test (%s %d)", node->node_id,
                     WIFSIGNALED(status) ? "signal" : "exit status",
                     WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
        }
    }
    cluster->finished = true;
}

static void cluster_print_logs(struct cluster *cluster)
{
    size_t i;

    for (i = 0; i < cluster->node_count; i++)
        if (cluster->nodes[i].started)
            harness_print_file_tail(cluster->nodes[i].node_id, cluster->nodes[i].relay.stderr_path,
                                    CLUSTER_LOG_TAIL);
    if (cluster->redis.log_path[0])
        harness_print_file_tail("redis", cluster->redis.log_path, 1500);
    if (cluster->haproxy.log_path[0])
        harness_print_file_tail("haproxy", cluster->haproxy.log_path, 1500);
    for (i = 0; i < cluster->helper_count; i++)
        harness_print_file_tail(cluster->helpers[i].name, cluster->helpers[i].log_path, 1500);
}

int cluster_test_teardown(void **state)
{
    struct cluster *cluster = *state;
    int result = 0;
    size_t i;

    if (!cluster)
        return 0;
    if (!cluster->finished && cluster->directory[0]) {
        fprintf(stderr, "cluster: the test did not complete; logs in %s\n", cluster->directory);
        cluster_print_logs(cluster);
    }
    for (i = 0; i < cluster->connection_count; i++)
        ws_client_free(cluster->connections[i]);
    free(cluster->connections);
    while (cluster->kept_count)
        free(cluster->kept[--cluster->kept_count]);
    /* all nodes at once: each may wait its shutdown timeout */
    for (i = 0; i < cluster->node_count; i++) {
        if (cluster->nodes[i].relay.pid > 0) {
            kill(cluster->nodes[i].relay.pid, SIGCONT);
            kill(cluster->nodes[i].relay.pid, SIGTERM);
        }
    }
    for (i = 0; i < cluster->node_count; i++) {
        struct cluster_node *node = &cluster->nodes[i];
        int status;

        if (node->relay.pid <= 0)
            continue;
        status = harness_wait_exit(&node->relay, 15000);
        if (status != 0) {
            fprintf(stderr, "cluster: node %s exited with status %d after SIGTERM\n", node->node_id,
                    status);
            harness_print_relay_log(&node->relay, 6000);
            result = -1;
        }
    }
    cluster_stop_proxies(cluster);
    cluster_process_kill(&cluster->haproxy, SIGKILL);
    for (i = 0; i < cluster->helper_count; i++)
        cluster_process_kill(&cluster->helpers[i], SIGKILL);
    for (i = 0; i < CLUSTER_SENTINELS; i++)
        cluster_process_kill(&cluster->sentinels[i], SIGKILL);
    cluster_process_kill(&cluster->replica, SIGKILL);
    cluster_process_kill(&cluster->redis, SIGKILL);
    harness_remove_directory(cluster->directory);
    free(cluster);
    *state = NULL;
    return result;
}

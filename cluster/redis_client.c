/*
 * redis_client.c - one logical connection to the Redis master, kept alive.
 *
 * A client owns up to three hiredis connections ("links"), each attached to
 * lws by redis_adapter.c:
 *
 *   master       the connection commands go over;
 *   query        short-lived, asks one sentinel where the master is
 *                (SENTINEL get-master-addr-by-name);
 *   subscription a sentinel connection subscribed to +switch-master, so a
 *                failover is followed as soon as the sentinels announce it.
 *
 * A link resolves its host without blocking (resolver.c, which answers IP
 * literals at once), connects, and ends with a reason. hiredis has no
 * timeouts of its own, so every link has a connect deadline and every
 * command on the master a reply deadline: when one passes, the connection
 * is dropped, which fails every command still waiting, and redialled.
 *
 * The client's life: CONNECTING (asking sentinels, resolving, connecting,
 * then AUTH / SELECT / ROLE / PING pipelined) -> UP (commands go straight
 * to hiredis, which pipelines them) -> on any failure WAITING for a backoff
 * with jitter -> CONNECTING again; through Sentinel every redial asks the
 * sentinels again. Commands submitted while CONNECTING are queued and sent
 * once UP; while WAITING they are refused at once so that callers (the
 * directory) can answer their own callers without delay.
 *
 * hiredis's callback rules shape the code: a context is never freed from
 * inside its connect callback (hiredis uses it afterwards), the end of a
 * link is learned from the adapter's release hook because hiredis reports
 * nothing for a context freed before it connected, and the reason for an
 * end is kept here because after redisAsyncFree hiredis says "OK".
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/async.h>

#include "redis_adapter.h"
#include "redis_client.h"
#include "relay/log.h"
#include "relay/metrics.h"
#include "resolver.h"

#define REDIS_HOST_MAX_LENGTH 255
#define REDIS_DEFAULT_PORT 6379
#define REDIS_DEFAULT_SENTINEL_PORT 26379
#define REDIS_DEFAULT_CONNECT_TIMEOUT_MS 3000
#define REDIS_DEFAULT_COMMAND_TIMEOUT_MS 2000
#define REDIS_BACKOFF_BASE_MS 100
#define REDIS_BACKOFF_MAX_MS 2000

struct redis_endpoint {
    char host[REDIS_HOST_MAX_LENGTH + 1];
    int port;
};

enum redis_link_state { LINK_IDLE, LINK_RESOLVING, LINK_CONNECTING, LINK_READY };

struct redis_link {
    struct redis_client *client;
    const char *role; /* for log lines */
    enum redis_link_state state;
    redisAsyncContext *hiredis;
    struct resolver_request *lookup; /* while LINK_RESOLVING */
    struct redis_endpoint endpoint;
    lws_sorted_usec_list_t deadline; /* until LINK_READY */
    /* TCP is up: send the role's first commands. Must not end the link
     * (hiredis is inside its connect callback). */
    void (*on_connected)(struct redis_link *link);
    /* The link ended for reason; it is idle again. */
    void (*on_lost)(struct redis_link *link, const char *reason);
};

struct redis_pending {
    struct lws_dll2 list; /* client->queued or client->in_flight */
    struct redis_client *client;
    redis_client_reply_callback on_reply;
    void *data;
    char *command; /* formatted, while queued */
    size_t length;
    lws_usec_t sent_at;
    lws_usec_t deadline;
};

enum redis_client_state { CLIENT_CONNECTING, CLIENT_UP, CLIENT_WAITING, CLIENT_STOPPED };
enum redis_client_step { STEP_DIAL_MASTER, STEP_ASK_SENTINEL };

struct redis_client {
    struct lws_context *context;
    struct lws_vhost *vhost;
    redis_client_state_callback on_state;
    void *owner;

    char *password;
    int database;
    struct redis_endpoint *sentinels;
    int sentinel_count;
    char *master_name;
    int connect_timeout_ms;
    int command_timeout_ms;

    enum redis_client_state state;
    struct redis_endpoint master_endpoint; /* configured, or the sentinels' answer */
    struct redis_endpoint switch_endpoint; /* announced by +switch-master */
    struct redis_link master;
    struct redis_link query;
    struct redis_link subscription;
    int handshake_remaining;

    struct lws_dll2_owner queued;
    struct lws_dll2_owner in_flight;
    lws_sorted_usec_list_t command_deadline;
    struct redis_pending *deadline_head; /* the pending the deadline is set for */

    enum redis_client_step next_step;
    lws_sorted_usec_list_t redial;
    unsigned failures; /* consecutive, for the backoff */
    bool ever_up;
    bool switching; /* the master link ends to follow +switch-master */

    int sentinel_next;  /* the sentinel to ask first */
    int sentinel_asked; /* asked in the current round */
    int subscription_next;
    unsigned subscription_failures;
    lws_sorted_usec_list_t resubscribe;

    bool destroying;
};

static void redis_link_end(struct redis_link *link, const char *reason);
static void redis_client_dial_master(struct redis_client *client);
static void redis_client_ask_sentinel(struct redis_client *client);
static void redis_client_subscribe(struct redis_client *client);

/* "host", "host:port", "[v6]:port" or a bare IPv6 literal. */
static int redis_endpoint_parse(struct redis_endpoint *endpoint, const char *text, int default_port)
{
    const char *host = text;
    size_t host_length = strlen(text);
    const char *port = NULL;

    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (close == NULL || (close[1] != '\0' && close[1] != ':'))
            return -1;
        host = text + 1;
        host_length = (size_t)(close - host);
        port = close[1] == ':' ? close + 2 : NULL;
    } else {
        const char *colon = strrchr(text, ':');
        if (colon != NULL && strchr(text, ':') == colon) {
            host_length = (size_t)(colon - text);
            port = colon + 1;
        }
    }
    if (host_length == 0 || host_length > REDIS_HOST_MAX_LENGTH)
        return -1;
    memcpy(endpoint->host, host, host_length);
    endpoint->host[host_length] = '\0';
    endpoint->port = default_port;
    if (port != NULL) {
        char *end;
        long value = strtol(port, &end, 10);
        if (*port == '\0' || *end != '\0' || value <= 0 || value > 65535)
            return -1;
        endpoint->port = (int)value;
    }
    return 0;
}

/* ---- links ---------------------------------------------------------------- */

/* Make the link idle without telling anyone. Returns the hiredis context it
 * had, for the caller to free after reporting. */
static redisAsyncContext *redis_link_reset(struct redis_link *link)
{
    redisAsyncContext *hiredis = link->hiredis;
    link->state = LINK_IDLE;
    link->hiredis = NULL;
    lws_sul_cancel(&link->deadline);
    /* The resolver keeps a lookup it cannot stop until it ends. */
    resolver_cancel(link->lookup);
    link->lookup = NULL;
    return hiredis;
}

/* End the link: report reason to its role, then free the context, which
 * fails the link's pending commands (their callbacks see the client already
 * down). Deferred by hiredis when called from one of the context's own
 * reply callbacks. */
static void redis_link_end(struct redis_link *link, const char *reason)
{
    if (link->state == LINK_IDLE)
        return;
    log_debug("redis: %s connection to %s:%d ended: %s", link->role, link->endpoint.host,
              link->endpoint.port, reason);
    redisAsyncContext *hiredis = redis_link_reset(link);
    link->on_lost(link, reason);
    if (hiredis != NULL)
        redisAsyncFree(hiredis);
}

/* End the link on purpose, without a report. */
static void redis_link_close(struct redis_link *link)
{
    redisAsyncContext *hiredis = redis_link_reset(link);
    if (hiredis != NULL)
        redisAsyncFree(hiredis);
}

/* hiredis freed the context (adapter release hook): if it is still the
 * link's, hiredis found the failure (refused, reset, EOF), so the link
 * ends with hiredis's message. */
static void redis_link_on_released(void *owner, const redisAsyncContext *hiredis)
{
    struct redis_link *link = owner;
    if (link->hiredis != hiredis)
        return;
    link->hiredis = NULL;
    redis_link_end(link, hiredis->c.errstr[0] != '\0' ? hiredis->c.errstr : "connection closed");
}

/* A NULL reply means hiredis is freeing the context: if it is still the
 * link's, end the link first so that the callbacks that follow see it
 * down. Returns whether the reply belongs to the link's live context. */
static bool redis_link_check_reply(struct redis_link *link, redisAsyncContext *hiredis, void *reply)
{
    if (link->hiredis != hiredis)
        return false;
    if (reply != NULL)
        return true;
    link->hiredis = NULL;
    redis_link_end(link, hiredis->c.errstr[0] != '\0' ? hiredis->c.errstr : "connection lost");
    return false;
}

static void redis_link_on_connect(const redisAsyncContext *hiredis, int status)
{
    struct redis_link *link = hiredis->data;
    /* On failure hiredis frees the context next; the release hook ends the
     * link with its message. */
    if (status != REDIS_OK || link->hiredis != hiredis)
        return;
    link->on_connected(link);
}

static void redis_link_on_deadline(lws_sorted_usec_list_t *timer)
{
    struct redis_link *link = lws_container_of(timer, struct redis_link, deadline);
    redis_link_end(link, "not ready within the connect timeout");
}

static void redis_link_connect(struct redis_link *link, const char *address)
{
    struct redis_client *client = link->client;
    redisAsyncContext *hiredis = redisAsyncConnect(address, link->endpoint.port);
    char reason[160];

    if (hiredis == NULL) {
        redis_link_end(link, "out of memory");
        return;
    }
    if (hiredis->err) {
        /* Failed at once (e.g. refused on loopback): not attached, so
         * hiredis just closes its socket. */
        snprintf(reason, sizeof(reason), "%s", hiredis->errstr);
        redisAsyncFree(hiredis);
        redis_link_end(link, reason);
        return;
    }
    if (redis_adapter_attach(hiredis, client->vhost, redis_link_on_released, link) != 0) {
        redisAsyncFree(hiredis);
        redis_link_end(link, "cannot adopt the socket into lws");
        return;
    }
    link->hiredis = hiredis;
    link->state = LINK_CONNECTING;
    hiredis->data = link;
    /* After attaching: setting it asks the adapter for write interest,
     * which is how hiredis learns that connect() completed. */
    redisAsyncSetConnectCallback(hiredis, redis_link_on_connect);
}

static void redis_link_on_resolved(void *argument, int status, const char *address)
{
    struct redis_link *link = argument;
    char reason[REDIS_HOST_MAX_LENGTH + 100];

    link->lookup = NULL;
    if (status != 0) {
        snprintf(reason, sizeof(reason), "cannot resolve %s: %s", link->endpoint.host, address);
        redis_link_end(link, reason);
        return;
    }
    link->state = LINK_CONNECTING;
    redis_link_connect(link, address);
}

/* Resolve (an IP literal is answered, and connected, before the lookup call
 * returns) and connect; the whole of it, and the role's first exchange,
 * must finish within timeout_ms. */
static void redis_link_dial(struct redis_link *link, const struct redis_endpoint *endpoint,
                            int timeout_ms)
{
    struct redis_client *client = link->client;
    link->endpoint = *endpoint;
    link->state = LINK_RESOLVING;
    lws_sul_schedule(client->context, 0, &link->deadline, redis_link_on_deadline,
                     (lws_usec_t)timeout_ms * LWS_US_PER_MS);
    resolver_lookup(&link->lookup, client->context, endpoint->host, redis_link_on_resolved, link);
}

static void redis_link_init(struct redis_link *link, struct redis_client *client, const char *role,
                            void (*on_connected)(struct redis_link *),
                            void (*on_lost)(struct redis_link *, const char *))
{
    link->client = client;
    link->role = role;
    link->on_connected = on_connected;
    link->on_lost = on_lost;
}

/* ---- redial scheduling ----------------------------------------------------- */

/* Exponential backoff with jitter, so that nodes that lost Redis together
 * do not redial together: a random delay in [d/2, d], d doubling per
 * consecutive failure up to REDIS_BACKOFF_MAX_MS. */
static lws_usec_t redis_client_backoff(struct redis_client *client, unsigned *failures)
{
    unsigned shift = *failures < 8 ? *failures : 8;
    unsigned delay_ms = REDIS_BACKOFF_BASE_MS << shift;
    uint32_t random_value = 0;

    if (delay_ms > REDIS_BACKOFF_MAX_MS)
        delay_ms = REDIS_BACKOFF_MAX_MS;
    (*failures)++;
    lws_get_random(client->context, &random_value, sizeof(random_value));
    delay_ms = delay_ms / 2 + random_value % (delay_ms / 2 + 1);
    return (lws_usec_t)delay_ms * LWS_US_PER_MS;
}

static void redis_client_on_redial(lws_sorted_usec_list_t *timer)
{
    struct redis_client *client = lws_container_of(timer, struct redis_client, redial);
    client->state = CLIENT_CONNECTING;
    if (client->next_step == STEP_ASK_SENTINEL)
        redis_client_ask_sentinel(client);
    else
        redis_client_dial_master(client);
}

/* Every dial goes through the loop, never from inside the failure that
 * prompted it: the failed context may still be on the stack. */
static void redis_client_schedule(struct redis_client *client, enum redis_client_step step,
                                  lws_usec_t delay)
{
    client->next_step = step;
    lws_sul_schedule(client->context, 0, &client->redial, redis_client_on_redial, delay);
}

static void redis_client_fail_queued(struct redis_client *client)
{
    struct lws_dll2 *item;
    while ((item = lws_dll2_get_head(&client->queued)) != NULL) {
        struct redis_pending *pending = lws_container_of(item, struct redis_pending, list);
        lws_dll2_remove(&pending->list);
        if (pending->on_reply != NULL)
            pending->on_reply(pending->data, NULL);
        free(pending->command);
        free(pending);
    }
}

/* The master connection failed or could not be made: go down, fail what
 * was queued, and redial after a backoff (at once to follow a switch). */
static void redis_client_on_failure(struct redis_client *client, const char *reason)
{
    bool was_up = client->state == CLIENT_UP;

    if (client->destroying)
        return;
    client->state = CLIENT_WAITING;
    relay_metrics.cluster.redis_connected = 0;
    relay_metrics.cluster.redis_errors_total++;
    lws_sul_cancel(&client->command_deadline);
    client->deadline_head = NULL;
    if (was_up)
        log_warn("redis: lost the master %s:%d: %s", client->master_endpoint.host,
                 client->master_endpoint.port, reason);
    else if (client->failures == 0)
        log_warn("redis: cannot reach the master: %s (retrying)", reason);
    else
        log_debug("redis: cannot reach the master: %s", reason);

    redis_client_fail_queued(client);
    if (was_up && client->on_state != NULL)
        client->on_state(client->owner, false);

    if (client->switching) {
        client->switching = false;
        client->master_endpoint = client->switch_endpoint;
        redis_client_schedule(client, STEP_DIAL_MASTER, 0);
    } else {
        redis_client_schedule(client,
                              client->sentinel_count > 0 ? STEP_ASK_SENTINEL : STEP_DIAL_MASTER,
                              redis_client_backoff(client, &client->failures));
    }
}

/* ---- commands ----------------------------------------------------------------- */

static void redis_client_on_command_deadline(lws_sorted_usec_list_t *timer);

/* Keep the deadline timer on the oldest command in flight: replies come in
 * order, so it is always the first to expire. */
static void redis_client_arm_deadline(struct redis_client *client)
{
    struct lws_dll2 *head = lws_dll2_get_head(&client->in_flight);
    if (head == NULL) {
        lws_sul_cancel(&client->command_deadline);
        client->deadline_head = NULL;
        return;
    }
    struct redis_pending *pending = lws_container_of(head, struct redis_pending, list);
    if (pending == client->deadline_head)
        return;
    client->deadline_head = pending;
    lws_usec_t now = lws_now_usecs();
    lws_sul_schedule(client->context, 0, &client->command_deadline,
                     redis_client_on_command_deadline,
                     pending->deadline > now ? pending->deadline - now : 1);
}

static void redis_client_on_command_deadline(lws_sorted_usec_list_t *timer)
{
    struct redis_client *client = lws_container_of(timer, struct redis_client, command_deadline);
    struct lws_dll2 *head = lws_dll2_get_head(&client->in_flight);
    char reason[96];

    client->deadline_head = NULL;
    if (head == NULL)
        return;
    struct redis_pending *pending = lws_container_of(head, struct redis_pending, list);
    if (pending->deadline > lws_now_usecs()) {
        redis_client_arm_deadline(client);
        return;
    }
    snprintf(reason, sizeof(reason), "no reply within %d ms", client->command_timeout_ms);
    redis_link_end(&client->master, reason);
}

static void redis_client_on_reply(redisAsyncContext *hiredis, void *reply_pointer, void *data)
{
    struct redis_pending *pending = data;
    struct redis_client *client = pending->client;
    redisReply *reply = reply_pointer;
    bool read_only = false;

    lws_dll2_remove(&pending->list);
    if (client->deadline_head == pending)
        client->deadline_head = NULL;
    if (redis_link_check_reply(&client->master, hiredis, reply)) {
        metrics_observe_redis_latency((double)(lws_now_usecs() - pending->sent_at) / 1e6);
        if (reply->type == REDIS_REPLY_ERROR) {
            relay_metrics.cluster.redis_errors_total++;
            /* The server was demoted (failover): nothing will succeed here. */
            read_only = strncmp(reply->str, "READONLY", 8) == 0;
        }
    }
    if (pending->on_reply != NULL)
        pending->on_reply(pending->data, reply);
    free(pending);
    if (read_only && client->master.hiredis == hiredis)
        redis_link_end(&client->master, "the server is a read-only replica");
    if (!client->destroying)
        redis_client_arm_deadline(client);
}

/* Hand a formatted command to hiredis on the master link. Takes command. */
static int redis_client_send(struct redis_client *client, redis_client_reply_callback on_reply,
                             void *data, char *command, size_t length)
{
    struct redis_pending *pending = calloc(1, sizeof(*pending));
    if (pending == NULL) {
        free(command);
        return -1;
    }
    pending->client = client;
    pending->on_reply = on_reply;
    pending->data = data;
    int status = redisAsyncFormattedCommand(client->master.hiredis, redis_client_on_reply, pending,
                                            command, length);
    free(command);
    if (status != REDIS_OK) {
        free(pending);
        return -1;
    }
    pending->sent_at = lws_now_usecs();
    pending->deadline = pending->sent_at + (lws_usec_t)client->command_timeout_ms * LWS_US_PER_MS;
    lws_dll2_add_tail(&pending->list, &client->in_flight);
    redis_client_arm_deadline(client);
    return 0;
}

static int redis_client_queue(struct redis_client *client, redis_client_reply_callback on_reply,
                              void *data, char *command, size_t length)
{
    struct redis_pending *pending = calloc(1, sizeof(*pending));
    if (pending == NULL) {
        free(command);
        return -1;
    }
    pending->client = client;
    pending->on_reply = on_reply;
    pending->data = data;
    pending->command = command;
    pending->length = length;
    lws_dll2_add_tail(&pending->list, &client->queued);
    return 0;
}

static void redis_client_send_queued(struct redis_client *client)
{
    struct lws_dll2 *item;
    while ((item = lws_dll2_get_head(&client->queued)) != NULL) {
        struct redis_pending *queued = lws_container_of(item, struct redis_pending, list);
        lws_dll2_remove(&queued->list);
        if (redis_client_send(client, queued->on_reply, queued->data, queued->command,
                              queued->length) != 0 &&
            queued->on_reply != NULL)
            queued->on_reply(queued->data, NULL);
        free(queued);
    }
}

static int redis_client_submit(struct redis_client *client, redis_client_reply_callback on_reply,
                               void *data, char *command, size_t length)
{
    switch (client->state) {
    case CLIENT_UP:
        return redis_client_send(client, on_reply, data, command, length);
    case CLIENT_CONNECTING:
        return redis_client_queue(client, on_reply, data, command, length);
    default:
        free(command);
        return -1;
    }
}

int redis_client_command_arguments(struct redis_client *client,
                                   redis_client_reply_callback on_reply, void *data,
                                   int argument_count, const char **arguments,
                                   const size_t *argument_lengths)
{
    char *command;
    if (client->state != CLIENT_UP && client->state != CLIENT_CONNECTING)
        return -1;
    int length = redisFormatCommandArgv(&command, argument_count, arguments, argument_lengths);
    if (length < 0)
        return -1;
    return redis_client_submit(client, on_reply, data, command, (size_t)length);
}

int redis_client_command(struct redis_client *client, redis_client_reply_callback on_reply,
                         void *data, const char *format, ...)
{
    char *command;
    va_list arguments;
    if (client->state != CLIENT_UP && client->state != CLIENT_CONNECTING)
        return -1;
    va_start(arguments, format);
    int length = redisvFormatCommand(&command, format, arguments);
    va_end(arguments);
    if (length < 0)
        return -1;
    return redis_client_submit(client, on_reply, data, command, (size_t)length);
}

bool redis_client_is_up(const struct redis_client *client)
{
    return client->state == CLIENT_UP;
}

/* ---- the master link ------------------------------------------------------------ */

static void redis_client_on_master_ready(struct redis_client *client)
{
    client->master.state = LINK_READY;
    lws_sul_cancel(&client->master.deadline);
    client->state = CLIENT_UP;
    client->failures = 0;
    relay_metrics.cluster.redis_connected = 1;
    if (client->ever_up)
        relay_metrics.cluster.redis_reconnects_total++;
    client->ever_up = true;
    log_info("redis: connected to the master %s:%d", client->master_endpoint.host,
             client->master_endpoint.port);
    redis_client_send_queued(client);
    if (client->on_state != NULL)
        client->on_state(client->owner, true);
}

static void redis_client_on_handshake_reply(void *data, const redisReply *reply)
{
    struct redis_client *client = data;
    char reason[200];

    if (reply == NULL || client->master.state != LINK_CONNECTING)
        return; /* the link already ended */
    if (reply->type == REDIS_REPLY_ERROR) {
        snprintf(reason, sizeof(reason), "handshake refused: %s", reply->str);
        redis_link_end(&client->master, reason);
        return;
    }
    /* The ROLE reply: through Sentinel, make sure the answer was not stale. */
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements > 0 &&
        reply->element[0]->type == REDIS_REPLY_STRING && strcmp(reply->element[0]->str, "master")) {
        snprintf(reason, sizeof(reason), "not the master (role %s)", reply->element[0]->str);
        redis_link_end(&client->master, reason);
        return;
    }
    if (--client->handshake_remaining == 0)
        redis_client_on_master_ready(client);
}

static void redis_client_send_handshake_command(struct redis_client *client, const char *format,
                                                ...)
{
    char *command;
    va_list arguments;
    va_start(arguments, format);
    int length = redisvFormatCommand(&command, format, arguments);
    va_end(arguments);
    /* A command that cannot be sent leaves the handshake unfinished: the
     * connect deadline then ends the link. */
    if (length >= 0 && redis_client_send(client, redis_client_on_handshake_reply, client, command,
                                         (size_t)length) == 0)
        client->handshake_remaining++;
}

/* AUTH, SELECT, ROLE (through Sentinel) and PING, pipelined. The client
 * becomes UP on the last reply, inside a reply callback, where hiredis lets
 * its user free the context. */
static void redis_client_on_master_connected(struct redis_link *link)
{
    struct redis_client *client = link->client;
    client->handshake_remaining = 0;
    if (client->password != NULL)
        redis_client_send_handshake_command(client, "AUTH %s", client->password);
    if (client->database != 0)
        redis_client_send_handshake_command(client, "SELECT %d", client->database);
    if (client->sentinel_count > 0)
        redis_client_send_handshake_command(client, "ROLE");
    redis_client_send_handshake_command(client, "PING");
}

static void redis_client_on_master_lost(struct redis_link *link, const char *reason)
{
    redis_client_on_failure(link->client, reason);
}

static void redis_client_dial_master(struct redis_client *client)
{
    redis_link_dial(&client->master, &client->master_endpoint, client->connect_timeout_ms);
}

void redis_client_reconnect(struct redis_client *client, const char *reason)
{
    redis_link_end(&client->master, reason);
}

/* ---- Sentinel --------------------------------------------------------------------- */

static void redis_client_on_sentinel_answer(redisAsyncContext *hiredis, void *reply_pointer,
                                            void *data)
{
    struct redis_client *client = data;
    redisReply *reply = reply_pointer;
    struct redis_endpoint answer;
    char reason[200];

    if (!redis_link_check_reply(&client->query, hiredis, reply))
        return;
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
        reply->element[0]->type == REDIS_REPLY_STRING &&
        reply->element[1]->type == REDIS_REPLY_STRING &&
        redis_endpoint_parse(&answer, reply->element[0]->str, 0) == 0 &&
        (answer.port = atoi(reply->element[1]->str)) > 0) {
        const struct redis_endpoint *sentinel = &client->query.endpoint;
        log_debug("redis: sentinel %s:%d: master %s is %s:%d", sentinel->host, sentinel->port,
                  client->master_name, answer.host, answer.port);
        redis_link_close(&client->query);
        client->master_endpoint = answer;
        client->sentinel_asked = 0;
        redis_client_schedule(client, STEP_DIAL_MASTER, 0);
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR)
        snprintf(reason, sizeof(reason), "%s", reply->str);
    else
        snprintf(reason, sizeof(reason), "does not know master %s", client->master_name);
    redis_link_end(&client->query, reason);
}

static void redis_client_on_query_connected(struct redis_link *link)
{
    struct redis_client *client = link->client;
    redisAsyncCommand(link->hiredis, redis_client_on_sentinel_answer, client,
                      "SENTINEL get-master-addr-by-name %s", client->master_name);
}

/* This sentinel could not answer: ask the next; when every sentinel failed
 * this round, the master counts as unreachable. */
static void redis_client_on_query_lost(struct redis_link *link, const char *reason)
{
    struct redis_client *client = link->client;
    if (client->destroying)
        return;
    log_warn("redis: sentinel %s:%d: %s", link->endpoint.host, link->endpoint.port, reason);
    client->sentinel_next = (client->sentinel_next + 1) % client->sentinel_count;
    if (++client->sentinel_asked < client->sentinel_count) {
        redis_client_schedule(client, STEP_ASK_SENTINEL, 0);
        return;
    }
    client->sentinel_asked = 0;
    redis_client_on_failure(client, "no sentinel could name the master");
}

static void redis_client_ask_sentinel(struct redis_client *client)
{
    redis_link_dial(&client->query, &client->sentinels[client->sentinel_next],
                    client->connect_timeout_ms + client->command_timeout_ms);
}

/* "+switch-master <name> <old ip> <old port> <new ip> <new port>": go to the
 * new master at once instead of waiting for the old one to fail. */
static void redis_client_follow_switch(struct redis_client *client, const char *message)
{
    char name[256], host[REDIS_HOST_MAX_LENGTH + 1];
    int port;

    if (sscanf(message, "%255s %*s %*s %255s %d", name, host, &port) != 3 ||
        strcmp(name, client->master_name) != 0 || port <= 0 || port > 65535)
        return;
    log_info("redis: sentinels switched master %s to %s:%d", name, host, port);
    if (strcmp(host, client->master_endpoint.host) == 0 && port == client->master_endpoint.port &&
        client->master.state != LINK_IDLE)
        return;
    snprintf(client->switch_endpoint.host, sizeof(client->switch_endpoint.host), "%s", host);
    client->switch_endpoint.port = port;
    client->failures = 0;
    client->switching = true;
    if (client->master.state != LINK_IDLE) {
        redis_link_end(&client->master, "the sentinels switched the master");
        return;
    }
    /* Waiting to redial, or asking a sentinel: dial the new master now. */
    redis_link_close(&client->query);
    client->sentinel_asked = 0;
    client->switching = false;
    client->master_endpoint = client->switch_endpoint;
    redis_client_schedule(client, STEP_DIAL_MASTER, 0);
}

static void redis_client_on_subscription_message(redisAsyncContext *hiredis, void *reply_pointer,
                                                 void *data)
{
    struct redis_client *client = data;
    redisReply *reply = reply_pointer;
    struct redis_link *link = &client->subscription;

    if (!redis_link_check_reply(link, hiredis, reply))
        return;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 ||
        reply->element[0]->type != REDIS_REPLY_STRING)
        return;
    if (strcmp(reply->element[0]->str, "subscribe") == 0) {
        link->state = LINK_READY;
        lws_sul_cancel(&link->deadline);
        client->subscription_failures = 0;
        log_debug("redis: following +switch-master through sentinel %s:%d", link->endpoint.host,
                  link->endpoint.port);
    } else if (strcmp(reply->element[0]->str, "message") == 0 &&
               reply->element[2]->type == REDIS_REPLY_STRING) {
        redis_client_follow_switch(client, reply->element[2]->str);
    }
}

/* The subscription is ready when the "subscribe" confirmation arrives; an
 * error reply to SUBSCRIBE is swallowed by hiredis's subscribe mode, so the
 * connect deadline covers it. */
static void redis_client_on_subscription_connected(struct redis_link *link)
{
    redisAsyncCommand(link->hiredis, redis_client_on_subscription_message, link->client,
                      "SUBSCRIBE +switch-master");
}

static void redis_client_on_resubscribe(lws_sorted_usec_list_t *timer)
{
    struct redis_client *client = lws_container_of(timer, struct redis_client, resubscribe);
    redis_client_subscribe(client);
}

static void redis_client_on_subscription_lost(struct redis_link *link, const char *reason)
{
    struct redis_client *client = link->client;
    if (client->destroying)
        return;
    log_warn("redis: sentinel subscription %s:%d: %s", link->endpoint.host, link->endpoint.port,
             reason);
    client->subscription_next = (client->subscription_next + 1) % client->sentinel_count;
    lws_sul_schedule(client->context, 0, &client->resubscribe, redis_client_on_resubscribe,
                     redis_client_backoff(client, &client->subscription_failures));
}

static void redis_client_subscribe(struct redis_client *client)
{
    redis_link_dial(&client->subscription, &client->sentinels[client->subscription_next],
                    client->connect_timeout_ms + client->command_timeout_ms);
}

/* ---- life cycle ------------------------------------------------------------------ */

static int redis_client_configure(struct redis_client *client,
                                  const struct relay_cluster_config *config)
{
    int count = 0;
    while (config->sentinels != NULL && config->sentinels[count] != NULL)
        count++;
    if (count > 0) {
        if (config->sentinel_master == NULL || config->sentinel_master[0] == '\0') {
            log_error("redis: sentinels configured without a master name");
            return -1;
        }
        client->sentinels = calloc((size_t)count, sizeof(*client->sentinels));
        client->master_name = strdup(config->sentinel_master);
        if (client->sentinels == NULL || client->master_name == NULL)
            return -1;
        for (int i = 0; i < count; i++)
            if (redis_endpoint_parse(&client->sentinels[i], config->sentinels[i],
                                     REDIS_DEFAULT_SENTINEL_PORT) != 0) {
                log_error("redis: bad sentinel address \"%s\"", config->sentinels[i]);
                return -1;
            }
        client->sentinel_count = count;
    } else {
        if (config->redis_host == NULL || config->redis_host[0] == '\0') {
            log_error("redis: neither a Redis host nor sentinels configured");
            return -1;
        }
        if (strlen(config->redis_host) > REDIS_HOST_MAX_LENGTH) {
            log_error("redis: host name too long");
            return -1;
        }
        snprintf(client->master_endpoint.host, sizeof(client->master_endpoint.host), "%s",
                 config->redis_host);
        client->master_endpoint.port =
            config->redis_port > 0 ? config->redis_port : REDIS_DEFAULT_PORT;
    }
    if (config->redis_password != NULL && config->redis_password[0] != '\0') {
        client->password = strdup(config->redis_password);
        if (client->password == NULL)
            return -1;
    }
    client->database = config->redis_database;
    client->connect_timeout_ms = config->redis_connect_timeout_ms > 0
                                     ? config->redis_connect_timeout_ms
                                     : REDIS_DEFAULT_CONNECT_TIMEOUT_MS;
    client->command_timeout_ms = config->redis_command_timeout_ms > 0
                                     ? config->redis_command_timeout_ms
                                     : REDIS_DEFAULT_COMMAND_TIMEOUT_MS;
    return 0;
}

static void redis_client_free(struct redis_client *client)
{
    free(client->password);
    free(client->sentinels);
    free(client->master_name);
    free(client);
}

struct redis_client *redis_client_new(struct lws_context *context, struct lws_vhost *vhost,
                                      const struct relay_cluster_config *config,
                                      redis_client_state_callback on_state, void *owner)
{
    struct redis_client *client = calloc(1, sizeof(*client));
    if (client == NULL)
        return NULL;
    if (redis_client_configure(client, config) != 0) {
        redis_client_free(client);
        return NULL;
    }
    client->context = context;
    client->vhost = vhost;
    client->on_state = on_state;
    client->owner = owner;
    redis_link_init(&client->master, client, "master", redis_client_on_master_connected,
                    redis_client_on_master_lost);
    redis_link_init(&client->query, client, "sentinel", redis_client_on_query_connected,
                    redis_client_on_query_lost);
    redis_link_init(&client->subscription, client, "sentinel subscription",
                    redis_client_on_subscription_connected, redis_client_on_subscription_lost);

    client->state = CLIENT_CONNECTING;
    if (client->sentinel_count > 0) {
        redis_client_subscribe(client);
        redis_client_ask_sentinel(client);
    } else {
        redis_client_dial_master(client);
    }
    return client;
}

void redis_client_destroy(struct redis_client *client)
{
    if (client == NULL)
        return;
    client->destroying = true;
    client->state = CLIENT_STOPPED;
    lws_sul_cancel(&client->redial);
    lws_sul_cancel(&client->resubscribe);
    lws_sul_cancel(&client->command_deadline);
    /* Best effort: whatever hiredis still buffers (a last DEL, say) goes
     * out now if the socket takes it. */
    if (client->master.state == LINK_READY && client->master.hiredis != NULL)
        redisAsyncHandleWrite(client->master.hiredis);
    /* A lookup a link cannot stop is left to the resolver, which waits for
     * it in resolver_shutdown: the client need not outlive glibc. */
    redis_link_close(&client->master);
    redis_link_close(&client->query);
    redis_link_close(&client->subscription);
    redis_client_fail_queued(client);
    if (client->ever_up)
        relay_metrics.cluster.redis_connected = 0;
    redis_client_free(client);
}

/*
 * ws_client.c - the WebSocket test client (see ws_client.h).
 *
 * One lws context in client mode owns every connection of the process. The
 * public functions never touch sockets themselves: they queue work on a
 * connection and run lws's poll loop (ws_client_service) until the work is
 * done or a deadline passes. Everything that talks to the socket happens in
 * ws_client_callback(), on the connection's own wsi, as libwebsockets requires.
 *
 * Outgoing messages are a singly linked FIFO of frames per connection, each
 * allocated with LWS_PRE bytes of headroom so lws_write() can prepend the
 * WebSocket header in place; one frame is written per WRITEABLE callback.
 * Incoming fragments are appended to a per-connection buffer that grows
 * geometrically; a completed message either moves (without a copy) onto a
 * FIFO of received messages or is handed to the connection's handler and the
 * buffer is reused.
 *
 * The wsi points back to its connection through lws's opaque user data.
 * Freeing a connection whose socket is still open first clears that pointer,
 * so no callback can reach freed memory, then kills the wsi synchronously.
 */
#include "ws_client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <libwebsockets.h>

#define WS_CLIENT_DEFAULT_RX_BUFFER (64 * 1024)
#define WS_CLIENT_ERROR_MAX 160
#define WS_CLIENT_MIN_CAPACITY 4096

struct ws_client_context {
    struct lws_context *lws;
    struct lws_protocols protocols[2]; /* must outlive the lws context */
    lws_sorted_usec_list_t wake_timer; /* bounds one poll() wait */
    lws_dll2_owner_t connections;      /* every connection not yet freed */
    bool verify_peer;
};

/* One outgoing WebSocket frame; payload starts LWS_PRE bytes into storage. */
struct ws_client_frame {
    struct ws_client_frame *next;
    size_t length;
    int write_flags; /* LWS_WRITE_* for lws_write() */
    unsigned char storage[];
};

/* One whole received message waiting for ws_client_receive(). */
struct ws_client_received {
    struct ws_client_received *next;
    unsigned char *data;
    size_t length;
    bool binary;
};

struct ws_client_connection {
    struct ws_client_context *context;
    lws_dll2_t list_node;
    struct lws *wsi; /* NULL once lws has let go of the socket */
    enum ws_client_state state;
    char error[WS_CLIENT_ERROR_MAX];
    char address[64]; /* host part of the url, kept alive for lws */
    char path[256];

    /* outgoing */
    struct ws_client_frame *send_head;
    struct ws_client_frame *send_tail;
    size_t send_queued_bytes;
    uint64_t bytes_sent;
    bool close_requested;
    int close_code_sent;
    char close_reason_sent[WS_CLIENT_REASON_MAX + 1];

    /* incoming */
    unsigned char *assembly; /* fragments of the message being received */
    size_t assembly_length;
    size_t assembly_capacity;
    bool assembly_binary;
    bool assembling;
    struct ws_client_received *receive_head;
    struct ws_client_received *receive_tail;
    size_t receive_count;
    ws_client_message_handler handler;
    void *handler_user;
    uint64_t messages_received;
    uint64_t bytes_received;
    bool reading_paused;

    /* how it ended */
    bool peer_sent_close;
    int close_code;
    char close_reason[WS_CLIENT_REASON_MAX + 1];
};

int64_t ws_client_now_ms(void)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static void ws_client_connection_set_error(struct ws_client_connection *connection,
                                           const char *text, size_t length)
{
    if (length >= sizeof(connection->error))
        length = sizeof(connection->error) - 1;
    memcpy(connection->error, text, length);
    connection->error[length] = '\0';
}

static void ws_client_connection_free_send_queue(struct ws_client_connection *connection)
{
    struct ws_client_frame *frame = connection->send_head;

    while (frame) {
        struct ws_client_frame *next = frame->next;
        free(frame);
        frame = next;
    }
    connection->send_head = NULL;
    connection->send_tail = NULL;
    connection->send_queued_bytes = 0;
}

/* The socket is gone: record how the connection ended. */
static void ws_client_connection_finish(struct ws_client_connection *connection, bool failed)
{
    connection->wsi = NULL;
    if (connection->state == WS_CLIENT_DONE || connection->state == WS_CLIENT_FAILED)
        return;
    connection->state = failed ? WS_CLIENT_FAILED : WS_CLIENT_DONE;
    ws_client_connection_free_send_queue(connection);
    if (connection->peer_sent_close)
        return;
    if (connection->close_requested) {
        /* our own close was answered (lws does not show us the echo) */
        connection->close_code = connection->close_code_sent;
        snprintf(connection->close_reason, sizeof(connection->close_reason), "%s",
                 connection->close_reason_sent);
        return;
    }
    connection->close_code = WS_CLIENT_CLOSE_ABNORMAL;
    if (!connection->error[0])
        snprintf(connection->error, sizeof(connection->error), "connection dropped");
}

/* The peer's close frame payload: 2-byte status, then the reason. */
static void ws_client_connection_record_peer_close(struct ws_client_connection *connection,
                                                   const unsigned char *payload, size_t length)
{
    connection->peer_sent_close = true;
    connection->close_code = WS_CLIENT_CLOSE_NO_STATUS;
    connection->close_reason[0] = '\0';
    if (length < 2)
        return;
    connection->close_code = (payload[0] << 8) | payload[1];
    length -= 2;
    if (length > WS_CLIENT_REASON_MAX)
        length = WS_CLIENT_REASON_MAX;
    memcpy(connection->close_reason, payload + 2, length);
    connection->close_reason[length] = '\0';
}

static int ws_client_connection_reserve(struct ws_client_connection *connection, size_t extra)
{
    size_t needed = connection->assembly_length + extra;
    size_t capacity = connection->assembly_capacity;
    unsigned char *grown;

    if (needed < connection->assembly_length)
        return -1; /* overflow */
    if (needed <= capacity)
        return 0;
    if (capacity < WS_CLIENT_MIN_CAPACITY)
        capacity = WS_CLIENT_MIN_CAPACITY;
    while (capacity < needed)
        capacity *= 2;
    grown = realloc(connection->assembly, capacity);
    if (!grown)
        return -1;
    connection->assembly = grown;
    connection->assembly_capacity = capacity;
    return 0;
}

/* A whole message is in the assembly buffer: hand it over. */
static int ws_client_connection_deliver_message(struct ws_client_connection *connection)
{
    struct ws_client_received *received;

    connection->messages_received++;
    connection->bytes_received += connection->assembly_length;
    connection->assembling = false;
    if (connection->handler) {
        connection->handler(connection, connection->assembly, connection->assembly_length,
                            connection->assembly_binary, connection->handler_user);
        connection->assembly_length = 0; /* keep the buffer for the next one */
        return 0;
    }
    received = malloc(sizeof(*received));
    if (!received)
        return -1;
    received->next = NULL;
    received->data = connection->assembly; /* ownership moves, no copy */
    received->length = connection->assembly_length;
    received->binary = connection->assembly_binary;
    connection->assembly = NULL;
    connection->assembly_length = 0;
    connection->assembly_capacity = 0;
    if (connection->receive_tail)
        connection->receive_tail->next = received;
    else
        connection->receive_head = received;
    connection->receive_tail = received;
    connection->receive_count++;
    return 0;
}

static int ws_client_connection_receive_chunk(struct ws_client_connection *connection,
                                              struct lws *wsi, const void *data, size_t length)
{
    if (!connection->assembling) {
        connection->assembling = true;
        connection->assembly_binary = lws_frame_is_binary(wsi);
        connection->assembly_length = 0;
    }
    if (ws_client_connection_reserve(connection, length) < 0) {
        ws_client_connection_set_error(connection, "out of memory", 13);
        return -1;
    }
    if (length) {
        memcpy(connection->assembly + connection->assembly_length, data, length);
        connection->assembly_length += length;
    }
    if (lws_is_final_fragment(wsi))
        return ws_client_connection_deliver_message(connection);
    return 0;
}

/* WRITEABLE: one queued frame, or the close once the queue is empty. */
static int ws_client_connection_write_next(struct ws_client_connection *connection, struct lws *wsi)
{
    struct ws_client_frame *frame = connection->send_head;

    if (!frame) {
        if (!connection->close_requested)
            return 0;
        lws_close_reason(wsi, (enum lws_close_status)connection->close_code_sent,
                         (unsigned char *)connection->close_reason_sent,
                         strlen(connection->close_reason_sent));
        return -1; /* lws sends the close frame and waits for the answer */
    }
    if (lws_write(wsi, frame->storage + LWS_PRE, frame->length,
                  (enum lws_write_protocol)frame->write_flags) < (int)frame->length) {
        ws_client_connection_set_error(connection, "write failed", 12);
        return -1;
    }
    connection->send_head = frame->next;
    if (!connection->send_head)
        connection->send_tail = NULL;
    connection->send_queued_bytes -= frame->length;
    connection->bytes_sent += frame->length;
    free(frame);
    if (connection->send_head || connection->close_requested)
        lws_callback_on_writable(wsi);
    return 0;
}

static void ws_client_connection_apply_read_state(struct ws_client_connection *connection)
{
    int enable = connection->reading_paused ? 0 : 1;

    if (connection->wsi && connection->state != WS_CLIENT_CONNECTING)
        lws_rx_flow_control(connection->wsi, enable | LWS_RXFLOW_REASON_FLAG_PROCESS_NOW);
}

static void ws_client_connection_on_established(struct ws_client_connection *connection,
                                                struct lws *wsi)
{
    connection->wsi = wsi;
    connection->state = WS_CLIENT_OPEN;
    if (connection->reading_paused)
        ws_client_connection_apply_read_state(connection);
    if (connection->send_head)
        lws_callback_on_writable(wsi);
}

static void ws_client_connection_on_error(struct ws_client_connection *connection, const char *text,
                                          size_t length)
{
    if (!text)
        ws_client_connection_set_error(connection, "connection error", 16);
    else
        ws_client_connection_set_error(connection, text, strnlen(text, length ? length : 1024));
    ws_client_connection_finish(connection, true);
}

static int ws_client_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                              void *in, size_t len)
{
    struct ws_client_connection *connection;

    switch (reason) {
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
    case LWS_CALLBACK_CLIENT_RECEIVE:
    case LWS_CALLBACK_CLIENT_WRITEABLE:
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
    case LWS_CALLBACK_CLIENT_CLOSED:
    case LWS_CALLBACK_WSI_DESTROY:
        break;
    default:
        return 0; /* not about one of our connections */
    }
    connection = lws_get_opaque_user_data(wsi);
    if (!connection)
        return reason == LWS_CALLBACK_CLIENT_WRITEABLE ? -1 : 0; /* detached */

    switch (reason) {
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        ws_client_connection_on_error(connection, in, len);
        break;
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        ws_client_connection_on_established(connection, wsi);
        break;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        return ws_client_connection_receive_chunk(connection, wsi, in, len);
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        return ws_client_connection_write_next(connection, wsi);
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        ws_client_connection_record_peer_close(connection, in, len);
        break;
    case LWS_CALLBACK_CLIENT_CLOSED:
        ws_client_connection_finish(connection, connection->state == WS_CLIENT_CONNECTING);
        break;
    case LWS_CALLBACK_WSI_DESTROY:
        ws_client_connection_finish(connection, connection->state == WS_CLIENT_CONNECTING);
        if (connection->state == WS_CLIENT_FAILED && !connection->error[0])
            ws_client_connection_set_error(connection, "connection failed", 17);
        break;
    default:
        break;
    }
    return 0;
}

static void ws_client_context_raise_file_limit(void)
{
    struct rlimit limit;

    if (getrlimit(RLIMIT_NOFILE, &limit) < 0 || limit.rlim_cur == limit.rlim_max)
        return;
    limit.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &limit) < 0)
        fprintf(stderr, "ws_client: cannot raise RLIMIT_NOFILE: %s\n", strerror(errno));
}

struct ws_client_context *ws_client_context_new(const struct ws_client_options *options)
{
    struct ws_client_options defaults = {0};
    struct lws_context_creation_info info;
    struct ws_client_context *context;

    if (!options)
        options = &defaults;
    /* lws sizes its descriptor table from the limit at creation time */
    if (options->raise_file_limit)
        ws_client_context_raise_file_limit();
    lws_set_log_level(options->log_level ? options->log_level : LLL_ERR, NULL);

    context = calloc(1, sizeof(*context));
    if (!context)
        return NULL;
    context->protocols[0].name = "relay-test-client";
    context->protocols[0].callback = ws_client_callback;
    context->protocols[0].rx_buffer_size =
        options->rx_buffer_size ? options->rx_buffer_size : WS_CLIENT_DEFAULT_RX_BUFFER;
    context->verify_peer = !options->skip_verification;

    memset(&info, 0, sizeof(info));
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = context->protocols;
    info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.client_ssl_ca_filepath = options->ca_file;
    info.gid = -1;
    info.uid = -1;
    context->lws = lws_create_context(&info);
    if (!context->lws) {
        fprintf(stderr, "ws_client: lws_create_context failed\n");
        free(context);
        return NULL;
    }
    return context;
}

void ws_client_context_free(struct ws_client_context *context)
{
    if (!context)
        return;
    /* detach what the caller did not free, so lws' closing callbacks cannot
     * reach it; the connections themselves stay valid until ws_client_free */
    lws_start_foreach_dll_safe(struct lws_dll2 *, node, next, context->connections.head)
    {
        struct ws_client_connection *connection =
            lws_container_of(node, struct ws_client_connection, list_node);

        if (connection->wsi)
            lws_set_opaque_user_data(connection->wsi, NULL);
        connection->wsi = NULL;
        connection->context = NULL;
        lws_dll2_remove(node);
    }
    lws_end_foreach_dll_safe(node, next);
    lws_sul_cancel(&context->wake_timer);
    lws_context_destroy(context->lws);
    free(context);
}

static void ws_client_context_wake(lws_sorted_usec_list_t *sul)
{
    (void)sul; /* only there to end poll() */
}

void ws_client_service(struct ws_client_context *context, int timeout_ms)
{
    if (timeout_ms <= 0) {
        lws_service(context->lws, -1); /* do not wait */
        return;
    }
    /* lws 4.1 ignores the timeout argument and sleeps until its next timer:
     * schedule one at our deadline */
    lws_sul_schedule(context->lws, 0, &context->wake_timer, ws_client_context_wake,
                     (lws_usec_t)timeout_ms * LWS_US_PER_MS);
    lws_service(context->lws, 0);
    lws_sul_cancel(&context->wake_timer);
}

bool ws_client_wait_until(struct ws_client_context *context, bool (*condition)(void *argument),
                          void *argument, int timeout_ms)
{
    int64_t deadline = ws_client_now_ms() + timeout_ms;

    while (!condition(argument)) {
        int64_t remaining = deadline - ws_client_now_ms();

        if (remaining <= 0)
            return condition(argument);
        ws_client_service(context, (int)remaining);
    }
    return true;
}

/* Split url into scheme, address, port and path; fills the connection. */
static int ws_client_connection_parse_url(struct ws_client_connection *connection, const char *url,
                                          bool *tls, int *port, char *error, size_t error_size)
{
    char copy[512];
    const char *scheme, *address, *path;

    if (strlen(url) >= sizeof(copy)) {
        snprintf(error, error_size, "url too long");
        return -1;
    }
    strcpy(copy, url);
    if (lws_parse_uri(copy, &scheme, &address, port, &path)) {
        snprintf(error, error_size, "cannot parse url %s", url);
        return -1;
    }
    if (strcmp(scheme, "ws") && strcmp(scheme, "wss")) {
        snprintf(error, error_size, "url %s is not ws:// or wss://", url);
        return -1;
    }
    *tls = !strcmp(scheme, "wss");
    if (!*address || strlen(address) >= sizeof(connection->address) ||
        strlen(path) + 2 > sizeof(connection->path)) {
        snprintf(error, error_size, "bad address in url %s", url);
        return -1;
    }
    strcpy(connection->address, address);
    snprintf(connection->path, sizeof(connection->path), "%s%s", path[0] == '/' ? "" : "/", path);
    return 0;
}

static int ws_client_connection_ssl_flags(const struct ws_client_context *context, bool tls)
{
    if (!tls)
        return 0;
    if (context->verify_peer)
        return LCCSCF_USE_SSL;
    return LCCSCF_USE_SSL | LCCSCF_ALLOW_SELFSIGNED | LCCSCF_ALLOW_INSECURE | LCCSCF_ALLOW_EXPIRED |
           LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK;
}

struct ws_client_connection *ws_client_connect_start(struct ws_client_context *context,
                                                     const char *url, char *error,
                                                     size_t error_size)
{
    struct lws_client_connect_info info;
    struct ws_client_connection *connection;
    char ignored[WS_CLIENT_ERROR_MAX];
    struct lws *wsi;
    bool tls = false;
    int port = 0;

    if (!error) {
        error = ignored;
        error_size = sizeof(ignored);
    }
    connection = calloc(1, sizeof(*connection));
    if (!connection) {
        snprintf(error, error_size, "out of memory");
        return NULL;
    }
    if (ws_client_connection_parse_url(connection, url, &tls, &port, error, error_size) < 0) {
        free(connection);
        return NULL;
    }
    connection->context = context;
    connection->state = WS_CLIENT_CONNECTING;
    lws_dll2_add_tail(&connection->list_node, &context->connections);

    memset(&info, 0, sizeof(info));
    info.context = context->lws;
    info.address = connection->address;
    info.port = port;
    info.path = connection->path;
    info.host = connection->address;
    info.origin = connection->address;
    info.ssl_connection = ws_client_connection_ssl_flags(context, tls);
    info.alpn = "http/1.1"; /* WebSocket over HTTP/2 ignores rx flow control */
    info.opaque_user_data = connection;
    info.pwsi = &connection->wsi;
    wsi = lws_client_connect_via_info(&info);
    if (!wsi) {
        /* an error callback may already have run and said why */
        connection->wsi = NULL;
        if (connection->state == WS_CLIENT_CONNECTING) {
            connection->state = WS_CLIENT_FAILED;
            snprintf(connection->error, sizeof(connection->error), "cannot start connection");
        }
    }
    return connection;
}

static void ws_client_connection_kill(struct ws_client_connection *connection)
{
    struct lws *wsi = connection->wsi;

    if (!wsi)
        return;
    lws_set_opaque_user_data(wsi, NULL);
    connection->wsi = NULL;
    lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_SYNC);
}

static bool ws_client_connections_settled(struct ws_client_connection **connections, size_t count,
                                          size_t *first_connecting)
{
    while (*first_connecting < count &&
           connections[*first_connecting]->state != WS_CLIENT_CONNECTING)
        (*first_connecting)++;
    return *first_connecting == count;
}

size_t ws_client_wait_connected(struct ws_client_context *context,
                                struct ws_client_connection **connections, size_t count,
                                int timeout_ms)
{
    int64_t deadline = ws_client_now_ms() + timeout_ms;
    size_t first_connecting = 0, open = 0, i;

    /* connections settle roughly in order, so the scan resumes where it
     * stopped instead of starting over each turn */
    while (!ws_client_connections_settled(connections, count, &first_connecting)) {
        int64_t remaining = deadline - ws_client_now_ms();

        if (remaining <= 0)
            break;
        ws_client_service(context, (int)remaining);
    }
    for (i = 0; i < count; i++) {
        struct ws_client_connection *connection = connections[i];

        if (connection->state == WS_CLIENT_CONNECTING) {
            ws_client_connection_kill(connection);
            connection->state = WS_CLIENT_FAILED;
            snprintf(connection->error, sizeof(connection->error), "connect timed out");
        }
        if (connection->state == WS_CLIENT_OPEN)
            open++;
    }
    return open;
}

struct ws_client_connection *ws_client_connect(struct ws_client_context *context, const char *url,
                                               int timeout_ms, char *error, size_t error_size)
{
    struct ws_client_connection *connection;

    connection = ws_client_connect_start(context, url, error, error_size);
    if (!connection)
        return NULL;
    if (ws_client_wait_connected(context, &connection, 1, timeout_ms) == 1)
        return connection;
    if (error)
        snprintf(error, error_size, "%s: %s", url, connection->error);
    ws_client_free(connection);
    return NULL;
}

enum ws_client_state ws_client_state(const struct ws_client_connection *connection)
{
    return connection->state;
}

const char *ws_client_error(const struct ws_client_connection *connection)
{
    return connection->error;
}

static bool ws_client_connection_accepts_sends(const struct ws_client_connection *connection)
{
    return connection->wsi && !connection->close_requested &&
           (connection->state == WS_CLIENT_OPEN || connection->state == WS_CLIENT_CONNECTING);
}

static int ws_client_connection_enqueue_frame(struct ws_client_connection *connection,
                                              const void *data, size_t length, int write_flags)
{
    struct ws_client_frame *frame = malloc(sizeof(*frame) + LWS_PRE + length);

    if (!frame)
        return -1;
    frame->next = NULL;
    frame->length = length;
    frame->write_flags = write_flags;
    if (length)
        memcpy(frame->storage + LWS_PRE, data, length);
    if (connection->send_tail)
        connection->send_tail->next = frame;
    else
        connection->send_head = frame;
    connection->send_tail = frame;
    connection->send_queued_bytes += length;
    return 0;
}

int ws_client_send_fragments(struct ws_client_connection *connection,
                             const struct ws_client_piece *pieces, size_t count, bool binary)
{
    int initial = binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT;
    size_t i;

    if (!ws_client_connection_accepts_sends(connection) || count == 0)
        return -1;
    for (i = 0; i < count; i++) {
        int flags = lws_write_ws_flags(initial, i == 0, i + 1 == count);

        if (ws_client_connection_enqueue_frame(connection, pieces[i].data, pieces[i].length,
                                               flags) < 0)
            return -1;
    }
    if (connection->state == WS_CLIENT_OPEN)
        lws_callback_on_writable(connection->wsi);
    return 0;
}

int ws_client_send(struct ws_client_connection *connection, const void *data, size_t length,
                   bool binary)
{
    struct ws_client_piece piece = {data, length};

    return ws_client_send_fragments(connection, &piece, 1, binary);
}

size_t ws_client_queued_bytes(const struct ws_client_connection *connection)
{
    return connection->send_queued_bytes;
}

struct ws_client_queue_wait {
    struct ws_client_connection *connection;
    size_t max_bytes;
};

static bool ws_client_queue_is_below(void *argument)
{
    struct ws_client_queue_wait *wait = argument;

    return wait->connection->send_queued_bytes <= wait->max_bytes ||
           !ws_client_connection_accepts_sends(wait->connection);
}

bool ws_client_wait_queue_below(struct ws_client_connection *connection, size_t max_bytes,
                                int timeout_ms)
{
    struct ws_client_queue_wait wait = {connection, max_bytes};

    if (!connection->context)
        return false;
    ws_client_wait_until(connection->context, ws_client_queue_is_below, &wait, timeout_ms);
    return ws_client_connection_accepts_sends(connection) &&
           connection->send_queued_bytes <= max_bytes;
}

static bool ws_client_connection_has_ended(const struct ws_client_connection *connection)
{
    return connection->state == WS_CLIENT_DONE || connection->state == WS_CLIENT_FAILED;
}

static bool ws_client_connection_has_news(void *argument)
{
    struct ws_client_connection *connection = argument;

    return connection->receive_head || ws_client_connection_has_ended(connection);
}

static void ws_client_message_take_received(struct ws_client_connection *connection,
                                            struct ws_client_message *message)
{
    struct ws_client_received *received = connection->receive_head;

    connection->receive_head = received->next;
    if (!connection->receive_head)
        connection->receive_tail = NULL;
    connection->receive_count--;
    message->result = received->binary ? WS_CLIENT_BINARY : WS_CLIENT_TEXT;
    message->data = received->data;
    message->length = received->length;
    free(received);
}

enum ws_client_result ws_client_receive(struct ws_client_connection *connection,
                                        struct ws_client_message *message, int timeout_ms)
{
    memset(message, 0, sizeof(*message));
    if (connection->context && !connection->receive_head)
        ws_client_wait_until(connection->context, ws_client_connection_has_news, connection,
                             timeout_ms);
    if (connection->receive_head) {
        ws_client_message_take_received(connection, message);
    } else if (ws_client_connection_has_ended(connection) || !connection->context) {
        message->result = WS_CLIENT_CLOSED;
        message->close_code = connection->close_code;
        snprintf(message->close_reason, sizeof(message->close_reason), "%s",
                 connection->close_reason);
    } else {
        message->result = WS_CLIENT_TIMEOUT;
    }
    return message->result;
}

void ws_client_message_release(struct ws_client_message *message)
{
    free(message->data);
    message->data = NULL;
    message->length = 0;
}

size_t ws_client_pending_messages(const struct ws_client_connection *connection)
{
    return connection->receive_count;
}

void ws_client_set_message_handler(struct ws_client_connection *connection,
                                   ws_client_message_handler handler, void *user)
{
    connection->handler = handler;
    connection->handler_user = user;
}

uint64_t ws_client_messages_received(const struct ws_client_connection *connection)
{
    return connection->messages_received;
}

uint64_t ws_client_bytes_received(const struct ws_client_connection *connection)
{
    return connection->bytes_received;
}

uint64_t ws_client_bytes_sent(const struct ws_client_connection *connection)
{
    return connection->bytes_sent;
}

void ws_client_pause_reading(struct ws_client_connection *connection)
{
    connection->reading_paused = true;
    ws_client_connection_apply_read_state(connection);
}

void ws_client_resume_reading(struct ws_client_connection *connection)
{
    connection->reading_paused = false;
    ws_client_connection_apply_read_state(connection);
}

static bool ws_client_connection_has_ended_callback(void *argument)
{
    return ws_client_connection_has_ended(argument);
}

bool ws_client_close(struct ws_client_connection *connection, int code, const char *reason,
                     int timeout_ms)
{
    if (ws_client_connection_has_ended(connection) || !connection->context)
        return true;
    if (connection->state == WS_CLIENT_CONNECTING) {
        ws_client_connection_kill(connection);
        connection->state = WS_CLIENT_FAILED;
        snprintf(connection->error, sizeof(connection->error), "closed while connecting");
        return true;
    }
    if (!connection->close_requested) {
        connection->close_requested = true;
        connection->close_code_sent = code;
        snprintf(connection->close_reason_sent, sizeof(connection->close_reason_sent), "%s",
                 reason ? reason : "");
        connection->state = WS_CLIENT_CLOSING;
        /* the peer's answer must be read for the close to complete */
        if (connection->reading_paused)
            ws_client_resume_reading(connection);
        lws_callback_on_writable(connection->wsi);
    }
    return ws_client_wait_until(connection->context, ws_client_connection_has_ended_callback,
                                connection, timeout_ms);
}

void ws_client_free(struct ws_client_connection *connection)
{
    struct ws_client_message message;

    if (!connection)
        return;
    ws_client_connection_kill(connection);
    if (connection->context)
        lws_dll2_remove(&connection->list_node);
    ws_client_connection_free_send_queue(connection);
    while (connection->receive_head) {
        ws_client_message_take_received(connection, &message);
        ws_client_message_release(&message);
    }
    free(connection->assembly);
    free(connection);
}

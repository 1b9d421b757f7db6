/*
 * echo_server.c - relay-echo, the reference server every benchmark run is
 * measured against (tests/bench/README.md).
 *
 * It is what a relay would be if forwarding were free of everything but the
 * WebSocket work itself: one lws context on relayd's event loop, one vhost,
 * the same receive buffer (64 KiB, relayd's default rx_buffer_bytes) and
 * service buffer as relayd, and the same forwarding discipline as relayd's
 * session.c: every received chunk is copied into a per-connection queue with
 * its opcode and fragment flags, one piece is written per WRITEABLE
 * callback, and when a connection's queue passes the high-water mark
 * (256 KiB) its reading is paused until the queue is below the low-water
 * mark (64 KiB). The only difference is the destination: the chunk goes back
 * to the connection it came from, so a benchmark "pair" on the echo server
 * is one connection talking to itself.
 *
 * Handshake: when the first message of a connection is a single-chunk binary
 * message naming REQUEST_RENDEZVOUS, the server answers with one
 * NOTIFY_RENDEZVOUS built like relayd's (same fields and layout, fresh
 * RAND_bytes UUID, timestamp now, the request's rendezvous_id and
 * request_uuid found by a plain text scan, no JSON parsing). That is the
 * least any relay must do per connection, so the benchmark's handshake and
 * pairing code runs unchanged against both servers. Every other message is
 * echoed.
 *
 * The event loop is relayd's (node/server.c), chosen the same way
 * (--event-loop epoll|poll, relayd's default when not given): epoll is lws's
 * libev plugin on a libev epoll loop this program creates and runs, with the
 * same 10 ms timer that wakes lws's timer service; poll is lws's own loop.
 *
 * --broken corrupt|reorder|drop damages every Nth echoed data message
 * (--broken-every N, default 50): flips one byte, swaps it with the next
 * message, or leaves it out. Only the benchmark's self-test uses it, to
 * prove that relay-bench notices.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <ev.h>
#include <libwebsockets.h>
#include <openssl/rand.h>

#define ECHO_RX_BUFFER_BYTES (64 * 1024)
#define ECHO_HIGH_WATER (256 * 1024)
#define ECHO_LOW_WATER (64 * 1024)
#define ECHO_NOTIFICATION_MAX 512
#define ECHO_RID_LENGTH 64
#define ECHO_UUID_LENGTH 36
/* As relayd's SERVER_EV_TICK_SECONDS (node/server.c). */
#define ECHO_EV_TICK_SECONDS 0.010

enum echo_broken_mode {
    ECHO_BROKEN_NONE,
    ECHO_BROKEN_CORRUPT,
    ECHO_BROKEN_REORDER,
    ECHO_BROKEN_DROP,
};

struct echo_settings {
    const char *bind_address;
    int port;
    size_t rx_buffer_bytes;
    size_t high_water;
    size_t low_water;
    enum echo_broken_mode broken;
    unsigned long broken_every;
    bool quiet;
    bool use_poll; /* --event-loop poll; otherwise epoll, relayd's default */
};

struct echo_piece {
    struct echo_piece *next;
    size_t length;
    int write_flags;        /* lws_write protocol: opcode, continuation, FIN */
    unsigned char buffer[]; /* LWS_PRE headroom, then the payload */
};

struct echo_queue {
    struct echo_piece *head;
    struct echo_piece *tail;
    size_t bytes;
};

struct echo_connection {
    struct lws *wsi;
    struct echo_queue queue;
    struct echo_queue held; /* reorder: the message waiting for its successor */
    bool first_seen;        /* the first message was judged (handshake or data) */
    bool in_message;        /* the current message is data (not the handshake) */
    bool reading_paused;
    uint64_t data_messages; /* completed data messages */
    /* what --broken does to the message being received */
    bool damage_current;
    bool corrupt_pending; /* corrupt: no non-empty chunk of it was seen yet */
    bool release_held;    /* reorder: append held after the current message */
};

static struct echo_settings echo_settings = {
    .bind_address = "127.0.0.1",
    .rx_buffer_bytes = ECHO_RX_BUFFER_BYTES,
    .high_water = ECHO_HIGH_WATER,
    .low_water = ECHO_LOW_WATER,
    .broken_every = 50,
};

static volatile sig_atomic_t echo_stop_requested;
static struct lws_context *echo_context;

/* The epoll loop and our watchers on it, as in relayd's server.c. */
static struct {
    struct ev_loop *loop;
    ev_prepare stop_check;
    ev_timer tick;
} echo_ev;

/* ---- the queue ----------------------------------------------------------- */

static struct echo_piece *echo_queue_push(struct echo_queue *queue, const void *data, size_t length,
                                          int write_flags)
{
    struct echo_piece *piece = malloc(sizeof(*piece) + LWS_PRE + length);
    if (piece == NULL)
        return NULL;
    piece->next = NULL;
    piece->length = length;
    piece->write_flags = write_flags;
    if (length > 0)
        memcpy(piece->buffer + LWS_PRE, data, length);
    if (queue->tail != NULL)
        queue->tail->next = piece;
    else
        queue->head = piece;
    queue->tail = piece;
    queue->bytes += length;
    return piece;
}

static struct echo_piece *echo_queue_pop(struct echo_queue *queue)
{
    struct echo_piece *piece = queue->head;
    if (piece == NULL)
        return NULL;
    queue->head = piece->next;
    if (queue->head == NULL)
        queue->tail = NULL;
    queue->bytes -= piece->length;
    return piece;
}

/* Move every piece of from to the tail of to (reorder's late message). */
static void echo_queue_append(struct echo_queue *to, struct echo_queue *from)
{
    if (from->head == NULL)
        return;
    if (to->tail != NULL)
        to->tail->next = from->head;
    else
        to->head = from->head;
    to->tail = from->tail;
    to->bytes += from->bytes;
    memset(from, 0, sizeof(*from));
}

static void echo_queue_clear(struct echo_queue *queue)
{
    struct echo_piece *piece;
    while ((piece = echo_queue_pop(queue)) != NULL)
        free(piece);
}

/* ---- backpressure (relayd's session.c discipline) ------------------------ */

static void echo_connection_check_high_water(struct echo_connection *connection)
{
    if (connection->reading_paused || connection->queue.bytes <= echo_settings.high_water)
        return;
    connection->reading_paused = true;
    lws_rx_flow_control(connection->wsi, 0 | LWS_RXFLOW_REASON_FLAG_PROCESS_NOW);
}

static void echo_connection_check_low_water(struct echo_connection *connection)
{
    if (!connection->reading_paused || connection->queue.bytes > echo_settings.low_water)
        return;
    connection->reading_paused = false;
    lws_rx_flow_control(connection->wsi, 1 | LWS_RXFLOW_REASON_FLAG_PROCESS_NOW);
}

/* ---- the handshake answer ------------------------------------------------ */

/* Find "key" and copy the string value after it (exactly length characters)
 * into out. A text scan, not a parser: the answer only has to be right for
 * well-formed requests such as the benchmark's. */
static bool echo_find_string_value(const char *text, size_t text_length, const char *key, char *out,
                                   size_t length)
{
    const char *found = memmem(text, text_length, key, strlen(key));
    if (found == NULL)
        return false;
    const char *position = found + strlen(key), *end = text + text_length;
    while (position < end && (*position == ' ' || *position == ':'))
        position++;
    if (position >= end || *position != '"' || (size_t)(end - position) < length + 2)
        return false;
    if (position[length + 1] != '"')
        return false;
    memcpy(out, position + 1, length);
    out[length] = '\0';
    return true;
}

static int echo_make_uuid(char *out)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char bytes[16];
    if (RAND_bytes(bytes, sizeof(bytes)) != 1)
        return -1;
    bytes[6] = (unsigned char)((bytes[6] & 0x0f) | 0x40);
    bytes[8] = (unsigned char)((bytes[8] & 0x3f) | 0x80);
    size_t position = 0;
    for (size_t index = 0; index < sizeof(bytes); index++) {
        if (position == 8 || position == 13 || position == 18 || position == 23)
            out[position++] = '-';
        out[position++] = hex[bytes[index] >> 4];
        out[position++] = hex[bytes[index] & 0x0f];
    }
    out[position] = '\0';
    return 0;
}

/* A NOTIFY_RENDEZVOUS answering request, laid out as relayd writes it.
 * Returns its length, or 0 when request is not a rendezvous request. */
static size_t echo_build_answer(char *out, size_t size, const void *request, size_t length)
{
    char rid[ECHO_RID_LENGTH + 1], request_uuid[ECHO_UUID_LENGTH + 1];
    char notification_uuid[ECHO_UUID_LENGTH + 1];
    const char *text = request;

    if (memmem(text, length, "\"REQUEST_RENDEZVOUS\"", 20) == NULL ||
        !echo_find_string_value(text, length, "\"rendezvous_id\"", rid, ECHO_RID_LENGTH) ||
        !echo_find_string_value(text, length, "\"request_uuid\"", request_uuid, ECHO_UUID_LENGTH) ||
        echo_make_uuid(notification_uuid) != 0)
        return 0;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int written =
        snprintf(out, size,
                 "{\"timestamp\": %lld.%06ld, \"protocol\": \"Moneysocket\", "
                 "\"protocol_version\": \"0.0.0\", \"message_class\": "
                 "\"NOTIFICATION\", \"notification_uuid\": \"%s\", "
                 "\"request_reference_uuid\": \"%s\", \"notification_name\": "
                 "\"NOTIFY_RENDEZVOUS\", \"rendezvous_id\": \"%s\"}",
                 (long long)now.tv_sec, now.tv_nsec / 1000, notification_uuid, request_uuid, rid);
    if (written <= 0 || (size_t)written >= size)
        return 0;
    return (size_t)written;
}

/* The first message: answered when it is a whole binary rendezvous request.
 * Returns 1 when answered, 0 when it is to be echoed as data, -1 on error. */
static int echo_connection_try_handshake(struct echo_connection *connection, const void *data,
                                         size_t length, bool first, bool final)
{
    connection->first_seen = true;
    if (!first || !final || !lws_frame_is_binary(connection->wsi))
        return 0;
    char answer[ECHO_NOTIFICATION_MAX];
    size_t answer_length = echo_build_answer(answer, sizeof(answer), data, length);
    if (answer_length == 0)
        return 0;
    if (echo_queue_push(&connection->queue, answer, answer_length, LWS_WRITE_BINARY) == NULL)
        return -1;
    lws_callback_on_writable(connection->wsi);
    return 1;
}

/* ---- echoing, and the deliberate damage of --broken ---------------------- */

static void echo_connection_begin_message(struct echo_connection *connection)
{
    unsigned long every = echo_settings.broken_every;
    connection->in_message = true;
    connection->damage_current = echo_settings.broken != ECHO_BROKEN_NONE && every > 0 &&
                                 (connection->data_messages + 1) % every == 0;
    connection->corrupt_pending = connection->damage_current;
}

/* Where this chunk goes: the send queue, the reorder hold, or nowhere. */
static struct echo_queue *echo_connection_chunk_destination(struct echo_connection *connection)
{
    if (!connection->damage_current)
        return &connection->queue;
    if (echo_settings.broken == ECHO_BROKEN_DROP)
        return NULL;
    if (echo_settings.broken == ECHO_BROKEN_REORDER)
        return &connection->held;
    return &connection->queue;
}

static void echo_connection_end_message(struct echo_connection *connection)
{
    connection->in_message = false;
    connection->data_messages++;
    if (connection->release_held) {
        /* the message after the held one is queued: now the held one */
        connection->release_held = false;
        echo_queue_append(&connection->queue, &connection->held);
    } else if (connection->damage_current && echo_settings.broken == ECHO_BROKEN_REORDER) {
        connection->release_held = true;
    }
    connection->damage_current = false;
}

static int echo_connection_echo_chunk(struct echo_connection *connection, const void *data,
                                      size_t length, bool first, bool final)
{
    if (first || !connection->in_message)
        echo_connection_begin_message(connection);
    int write_flags = lws_write_ws_flags(
        lws_frame_is_binary(connection->wsi) ? LWS_WRITE_BINARY : LWS_WRITE_TEXT, first, final);
    struct echo_queue *destination = echo_connection_chunk_destination(connection);
    if (destination != NULL) {
        struct echo_piece *piece = echo_queue_push(destination, data, length, write_flags);
        if (piece == NULL)
            return -1;
        if (connection->corrupt_pending && echo_settings.broken == ECHO_BROKEN_CORRUPT &&
            length > 0) {
            piece->buffer[LWS_PRE + length / 2] ^= 0x5a;
            connection->corrupt_pending = false;
        }
    }
    if (final)
        echo_connection_end_message(connection);
    if (connection->queue.head != NULL)
        lws_callback_on_writable(connection->wsi);
    echo_connection_check_high_water(connection);
    return 0;
}

static int echo_connection_receive(struct echo_connection *connection, const void *data,
                                   size_t length)
{
    bool first = lws_is_first_fragment(connection->wsi) != 0;
    bool final = lws_is_final_fragment(connection->wsi) != 0;

    if (!connection->first_seen) {
        int answered = echo_connection_try_handshake(connection, data, length, first, final);
        if (answered != 0)
            return answered < 0 ? -1 : 0;
    }
    return echo_connection_echo_chunk(connection, data, length, first, final);
}

static int echo_connection_writeable(struct echo_connection *connection)
{
    struct echo_piece *piece = echo_queue_pop(&connection->queue);
    if (piece == NULL)
        return 0;
    int written = lws_write(connection->wsi, piece->buffer + LWS_PRE, piece->length,
                            (enum lws_write_protocol)piece->write_flags);
    size_t expected = piece->length;
    free(piece);
    if (written < (int)expected)
        return -1;
    echo_connection_check_low_water(connection);
    if (connection->queue.head != NULL)
        lws_callback_on_writable(connection->wsi);
    return 0;
}

static int echo_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t length)
{
    struct echo_connection *connection = user;

    switch (reason) {
    case LWS_CALLBACK_ESTABLISHED:
        memset(connection, 0, sizeof(*connection));
        connection->wsi = wsi;
        return 0;
    case LWS_CALLBACK_RECEIVE:
        return echo_connection_receive(connection, in, length);
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return echo_connection_writeable(connection);
    case LWS_CALLBACK_CLOSED:
        echo_queue_clear(&connection->queue);
        echo_queue_clear(&connection->held);
        return 0;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, length);
}

/* ---- process ------------------------------------------------------------- */

static void echo_on_signal(int signal_number)
{
    (void)signal_number;
    echo_stop_requested = 1;
    if (echo_context != NULL)
        lws_cancel_service(echo_context);
}

static void echo_install_signals(void)
{
    struct sigaction action;
    memset(&action, 0, sizeof(action));
    action.sa_handler = echo_on_signal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGINT, &action, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* Thousands of idle connections need thousands of descriptors. The limit
 * is raised the way relayd's default does it (to the hard limit, at most
 * 65 536): lws sizes its descriptor table by it, and Debian's lws scans
 * that table on every accept and close, so a larger table would slow the
 * reference and flatter relayd. */
#define ECHO_FD_LIMIT_MAX 65536

static void echo_raise_fd_limit(void)
{
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0)
        return;
    rlim_t wanted = ECHO_FD_LIMIT_MAX;
    if (limit.rlim_max != RLIM_INFINITY && wanted > limit.rlim_max)
        wanted = limit.rlim_max;
    if (wanted != limit.rlim_cur) {
        limit.rlim_cur = wanted;
        setrlimit(RLIMIT_NOFILE, &limit);
    }
}

static void echo_print_usage(FILE *out)
{
    fprintf(out, "usage: relay-echo [--bind ADDR] [--port N] [--rx-buffer BYTES]\n"
                 "                  [--high-water BYTES] [--low-water BYTES]\n"
                 "                  [--event-loop epoll|poll]\n"
                 "                  [--broken corrupt|reorder|drop] [--broken-every N] [--quiet]\n"
                 "Echo server for relay-bench (port 0: the kernel picks one; the listening\n"
                 "URL is printed on stdout). The event loop is relayd's server.event_loop\n"
                 "(default epoll). SIGTERM or SIGINT stops it.\n");
}

static int echo_parse_broken(const char *text)
{
    if (strcmp(text, "corrupt") == 0)
        echo_settings.broken = ECHO_BROKEN_CORRUPT;
    else if (strcmp(text, "reorder") == 0)
        echo_settings.broken = ECHO_BROKEN_REORDER;
    else if (strcmp(text, "drop") == 0)
        echo_settings.broken = ECHO_BROKEN_DROP;
    else if (strcmp(text, "none") == 0)
        echo_settings.broken = ECHO_BROKEN_NONE;
    else
        return -1;
    return 0;
}

static int echo_parse_event_loop(const char *text)
{
    if (strcmp(text, "epoll") == 0)
        echo_settings.use_poll = false;
    else if (strcmp(text, "poll") == 0)
        echo_settings.use_poll = true;
    else
        return -1;
    return 0;
}

static int echo_parse_size(const char *text, size_t minimum, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long value = strtoull(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value < minimum || value > (1ULL << 30))
        return -1;
    *out = (size_t)value;
    return 0;
}

static int echo_parse_option(const char *name, const char *value)
{
    size_t number;
    if (strcmp(name, "--bind") == 0) {
        echo_settings.bind_address = value;
        return 0;
    }
    if (strcmp(name, "--broken") == 0)
        return echo_parse_broken(value);
    if (strcmp(name, "--event-loop") == 0)
        return echo_parse_event_loop(value);
    if (echo_parse_size(value, 0, &number) != 0)
        return -1;
    if (strcmp(name, "--port") == 0 && number <= 65535)
        echo_settings.port = (int)number;
    else if (strcmp(name, "--rx-buffer") == 0 && number >= 1024)
        echo_settings.rx_buffer_bytes = number;
    else if (strcmp(name, "--high-water") == 0 && number >= 4096)
        echo_settings.high_water = number;
    else if (strcmp(name, "--low-water") == 0)
        echo_settings.low_water = number;
    else if (strcmp(name, "--broken-every") == 0 && number >= 1)
        echo_settings.broken_every = number;
    else
        return -1;
    return 0;
}

static int echo_parse_arguments(int argc, char **argv)
{
    for (int index = 1; index < argc; index++) {
        if (strcmp(argv[index], "--help") == 0) {
            echo_print_usage(stdout);
            exit(0);
        }
        if (strcmp(argv[index], "--quiet") == 0) {
            echo_settings.quiet = true;
            continue;
        }
        if (index + 1 >= argc || echo_parse_option(argv[index], argv[index + 1]) != 0) {
            fprintf(stderr, "relay-echo: bad argument %s\n", argv[index]);
            echo_print_usage(stderr);
            return -1;
        }
        index++;
    }
    if (echo_settings.low_water >= echo_settings.high_water) {
        fprintf(stderr, "relay-echo: --low-water must be below --high-water\n");
        return -1;
    }
    return 0;
}

static struct lws_protocols echo_protocols[] = {
    {
        .name = "relay-echo",
        .callback = echo_callback,
        .per_session_data_size = sizeof(struct echo_connection),
    },
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static bool echo_is_ipv4(const char *address)
{
    struct in_addr parsed;
    return inet_pton(AF_INET, address, &parsed) == 1;
}

/* ---- the epoll loop (relayd's server.c, minus the shutdown phase) -------- */

static void echo_ev_on_prepare(struct ev_loop *loop, ev_prepare *watcher, int events)
{
    if (echo_stop_requested)
        ev_break(loop, EVBREAK_ALL);
}

/* lws 4.1.6's libev plugin may leave a timer waiting for unrelated socket
 * events; a wake-up is such an event (see node/server.c). */
static void echo_ev_on_tick(struct ev_loop *loop, ev_timer *watcher, int events)
{
    lws_cancel_service(echo_context);
}

static int echo_ev_create(void)
{
    echo_ev.loop = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV);
    if (echo_ev.loop == NULL)
        return -1;
    ev_prepare_init(&echo_ev.stop_check, echo_ev_on_prepare);
    ev_timer_init(&echo_ev.tick, echo_ev_on_tick, ECHO_EV_TICK_SECONDS, ECHO_EV_TICK_SECONDS);
    return 0;
}

static void echo_ev_run(void)
{
    ev_prepare_start(echo_ev.loop, &echo_ev.stop_check);
    ev_timer_start(echo_ev.loop, &echo_ev.tick);
    ev_run(echo_ev.loop, 0);
}

/* After lws_context_destroy, which stops lws's watchers synchronously. */
static void echo_ev_destroy(void)
{
    if (echo_ev.loop == NULL)
        return;
    ev_prepare_stop(echo_ev.loop, &echo_ev.stop_check);
    ev_timer_stop(echo_ev.loop, &echo_ev.tick);
    ev_loop_destroy(echo_ev.loop);
    echo_ev.loop = NULL;
}

/* One context and one vhost, created like relayd's (server.c and
 * client_port.c) so that the loop and buffers match. */
static struct lws_vhost *echo_create_server(void)
{
    /* As relayd: lws's own keepalive off (its per-connection timer makes
     * every new connection scan all idle ones; see node/server.c). */
    static const lws_retry_bo_t no_lws_keepalive = {.secs_since_valid_ping = 300,
                                                    .secs_since_valid_hangup = 0};
    struct lws_context_creation_info info;
    void *foreign_loops[1] = {NULL};
    memset(&info, 0, sizeof(info));
    info.retry_and_idle_policy = &no_lws_keepalive;
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
    if (!echo_settings.use_poll) {
        if (echo_ev_create() != 0)
            return NULL;
        info.options |= LWS_SERVER_OPTION_LIBEV;
        foreign_loops[0] = echo_ev.loop;
        info.foreign_loops = foreign_loops;
    }
    info.timeout_secs = 10;
    info.pt_serv_buf_size = 64 * 1024;
    echo_context = lws_create_context(&info);
    if (echo_context == NULL)
        return NULL;

    echo_protocols[0].rx_buffer_size = echo_settings.rx_buffer_bytes;
    memset(&info, 0, sizeof(info));
    info.vhost_name = "echo";
    info.iface = echo_settings.bind_address;
    info.port = echo_settings.port;
    info.protocols = echo_protocols;
    info.options = LWS_SERVER_OPTION_FAIL_UPON_UNABLE_TO_BIND;
    info.keepalive_timeout = 10;
    /* As relayd (listen_address.c): lws 4.1.6 binds an IPv4 literal on an
     * IPv6 socket to [::] unless the vhost is IPv4-only. */
    if (echo_is_ipv4(echo_settings.bind_address))
        info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
    return lws_create_vhost(echo_context, &info);
}

int main(int argc, char **argv)
{
    if (echo_parse_arguments(argc, argv) != 0)
        return 64;
    lws_set_log_level(LLL_ERR, NULL);
    echo_raise_fd_limit();
    echo_install_signals();
    struct lws_vhost *vhost = echo_create_server();
    if (vhost == NULL) {
        fprintf(stderr, "relay-echo: cannot listen on %s port %d\n", echo_settings.bind_address,
                echo_settings.port);
        if (echo_context != NULL)
            lws_context_destroy(echo_context);
        echo_ev_destroy();
        return 1;
    }
    bool ipv6 = strchr(echo_settings.bind_address, ':') != NULL;
    printf("relay-echo: listening on ws://%s%s%s:%d/\n", ipv6 ? "[" : "",
           echo_settings.bind_address, ipv6 ? "]" : "", lws_get_vhost_listen_port(vhost));
    fflush(stdout);
    /* Either loop waits for its next event or timer; a signal wakes it
     * through lws_cancel_service. */
    if (!echo_settings.use_poll)
        echo_ev_run();
    else
        while (!echo_stop_requested)
            if (lws_service(echo_context, 0) < 0)
                break;
    lws_context_destroy(echo_context);
    echo_ev_destroy();
    if (!echo_settings.quiet)
        fprintf(stderr, "relay-echo: stopped\n");
    return 0;
}

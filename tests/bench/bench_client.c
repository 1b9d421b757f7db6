/*
 * bench_client.c - the lean WebSocket client of relay-bench (bench_client.h).
 *
 * One epoll instance per process, level-triggered, non-blocking sockets. A
 * connection moves through TCP connect (until the HTTP upgrade request is
 * written) -> upgrade (the 101 answer and its Sec-WebSocket-Accept checked)
 * -> open -> done/failed.
 *
 * System calls are what a connection costs on a small VM (about a
 * microsecond of entry and exit each before any work), so a connection
 * makes as few as the protocol allows: socket, bind (source spreading),
 * connect, the upgrade request written at once (on loopback the handshake
 * is done when connect() returns; else the socket is watched for writing),
 * one epoll_ctl, a read for the 101, a write for the queued frames, a read
 * per answer, close. The socket is watched for writing only while a write
 * is held back by a full socket; TCP_NODELAY is set only on a write Nagle's
 * algorithm could delay (bench_client_nodelay). Freed connections keep
 * their small buffers on a spare list for the next connect.
 *
 * Buffers: frames are serialised (header + masked payload) into the
 * connection's output buffer when queued, and the buffer is written with
 * one send() per loop turn (connections with new output are on the
 * context's dirty list) - so a window of small frames costs one system call,
 * not one each. Frames queued before the upgrade completed wait in that
 * buffer. Input is read into a buffer that grows to hold the largest frame;
 * a complete unfragmented message is handed to the handler straight from
 * it, fragments are joined in a second buffer (relayd forwards a message in
 * the chunks it received it in, so fragments do arrive).
 *
 * Masking uses a per-connection key stream from a small PRNG and is applied
 * eight bytes at a time. Pings are answered; a close frame or EOF ends the
 * connection (the benchmark never needs a closing handshake of its own).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "bench_client.h"

#define BENCH_CLIENT_EVENTS 256
#define BENCH_CLIENT_READ_INITIAL 4096
#define BENCH_CLIENT_READ_CHUNK (256 * 1024)
#define BENCH_CLIENT_MAX_FRAME (64ULL * 1024 * 1024)
#define BENCH_CLIENT_MAX_RESPONSE 8192
#define BENCH_CLIENT_ERROR 160
#define BENCH_CLIENT_ADDRESSES 4
#define BENCH_CLIENT_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define BENCH_CLIENT_KEY_LENGTH 24 /* base64 of the 16-byte nonce */
#define BENCH_CLIENT_REQUEST_MAX 640
#define BENCH_CLIENT_REQUEST_TAIL "\r\nSec-WebSocket-Version: 13\r\n\r\n"
/* Freed connections kept for reuse, and the largest buffer one keeps (a
 * stream's 256 KiB read buffer is given back). */
#define BENCH_CLIENT_SPARES 256
#define BENCH_CLIENT_KEEP_BUFFER (16 * 1024)

enum bench_client_phase {
    BENCH_PHASE_TCP, /* connecting, or the upgrade request not all written */
    BENCH_PHASE_UPGRADE,
    BENCH_PHASE_OPEN,
    BENCH_PHASE_DONE,
    BENCH_PHASE_FAILED,
};

struct bench_client_buffer {
    unsigned char *data;
    size_t start; /* first unconsumed byte */
    size_t end;   /* one past the last byte */
    size_t capacity;
};

struct bench_client_stored {
    struct bench_client_stored *next;
    size_t length;
    bool binary;
    unsigned char data[];
};

/* A parsed URL, kept so that thousands of connects parse it once; the
 * upgrade request up to its key is written here once too. */
struct bench_client_address {
    char url[256];
    struct sockaddr_storage socket_address;
    socklen_t socket_length;
    char request_head[BENCH_CLIENT_REQUEST_MAX];
    size_t request_head_length;
};

struct bench_client_context {
    int epoll_fd;
    uint64_t random_state;
    struct bench_client_connection *dirty; /* connections with output to write */
    struct bench_client_connection *spare; /* freed, kept for reuse */
    size_t spare_count;
    struct bench_client_address addresses[BENCH_CLIENT_ADDRESSES];
    int address_count;
    unsigned source_counter; /* spreads loopback connections over sources */
};

struct bench_client_connection {
    struct bench_client_context *context;
    struct bench_client_connection *next_dirty;
    struct bench_client_connection *next_spare;
    bool dirty;
    int fd;
    enum bench_client_phase phase;
    uint32_t registered; /* epoll events asked for */
    bool reading_paused;
    bool write_blocked; /* the socket was full: wait for EPOLLOUT */
    bool wrote_open;    /* a write after the upgrade happened */
    bool nodelay;       /* TCP_NODELAY is set */
    char error[BENCH_CLIENT_ERROR];
    char expected_accept[32];
    uint64_t mask_state;
    char request[BENCH_CLIENT_REQUEST_MAX]; /* the upgrade request */
    size_t request_length;
    size_t request_sent;
    struct bench_client_buffer out; /* serialised frames */
    struct bench_client_buffer in;
    size_t read_size;                   /* what one read asks for; grows with the traffic */
    struct bench_client_buffer message; /* fragments being joined */
    bool message_open;
    bool message_binary;
    struct bench_client_stored *stored_head;
    struct bench_client_stored *stored_tail;
    size_t stored_count;
    bench_client_handler handler;
    void *handler_user;
    int64_t opened_ns; /* when the upgrade completed (CLOCK_MONOTONIC) */
};

/* ---- small helpers ------------------------------------------------------- */

static int64_t bench_client_now_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

int64_t bench_client_opened_ns(const struct bench_client_connection *connection)
{
    return connection->opened_ns;
}

static uint64_t bench_client_random(uint64_t *state)
{
    /* xorshift64*: masking keys and handshake nonces need to vary, not to be
     * secret (RFC 6455 masking protects intermediaries, not us). */
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return *state * 0x2545f4914f6cdd1dULL;
}

static void bench_client_set_error(struct bench_client_connection *connection, const char *what,
                                   int error_number)
{
    if (connection->error[0] != '\0')
        return;
    if (error_number != 0)
        snprintf(connection->error, sizeof(connection->error), "%s: %s", what,
                 strerror(error_number));
    else
        snprintf(connection->error, sizeof(connection->error), "%s", what);
}

static size_t bench_client_buffer_length(const struct bench_client_buffer *buffer)
{
    return buffer->end - buffer->start;
}

/* Room for extra more bytes at the end: compact first, grow if needed. */
static int bench_client_buffer_reserve(struct bench_client_buffer *buffer, size_t extra)
{
    if (buffer->capacity - buffer->end >= extra)
        return 0;
    size_t length = bench_client_buffer_length(buffer);
    if (buffer->start > 0) {
        memmove(buffer->data, buffer->data + buffer->start, length);
        buffer->start = 0;
        buffer->end = length;
        if (buffer->capacity - buffer->end >= extra)
            return 0;
    }
    size_t capacity =
        buffer->capacity < BENCH_CLIENT_READ_INITIAL ? BENCH_CLIENT_READ_INITIAL : buffer->capacity;
    while (capacity - length < extra)
        capacity *= 2;
    unsigned char *grown = realloc(buffer->data, capacity);
    if (grown == NULL)
        return -1;
    buffer->data = grown;
    buffer->capacity = capacity;
    return 0;
}

static void bench_client_buffer_consume(struct bench_client_buffer *buffer, size_t count)
{
    buffer->start += count;
    if (buffer->start == buffer->end)
        buffer->start = buffer->end = 0;
}

static void bench_client_buffer_free(struct bench_client_buffer *buffer)
{
    free(buffer->data);
    memset(buffer, 0, sizeof(*buffer));
}

/* Empty the buffer; a small one keeps its memory for the next connection. */
static void bench_client_buffer_release(struct bench_client_buffer *buffer)
{
    if (buffer->capacity > BENCH_CLIENT_KEEP_BUFFER)
        bench_client_buffer_free(buffer);
    buffer->start = buffer->end = 0;
}

/* ---- context ------------------------------------------------------------- */

struct bench_client_context *bench_client_context_new(void)
{
    struct bench_client_context *context = calloc(1, sizeof(*context));
    if (context == NULL)
        return NULL;
    context->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (context->epoll_fd < 0 || getrandom(&context->random_state, sizeof(context->random_state),
                                           0) != sizeof(context->random_state)) {
        if (context->epoll_fd >= 0)
            close(context->epoll_fd);
        free(context);
        return NULL;
    }
    context->random_state |= 1; /* xorshift must not start at zero */
    /* Thousands of idle connections need thousands of descriptors. */
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
    }
    return context;
}

static void bench_client_destroy(struct bench_client_connection *connection)
{
    bench_client_buffer_free(&connection->out);
    bench_client_buffer_free(&connection->in);
    bench_client_buffer_free(&connection->message);
    free(connection);
}

void bench_client_context_free(struct bench_client_context *context)
{
    if (context == NULL)
        return;
    while (context->spare != NULL) {
        struct bench_client_connection *spare = context->spare;
        context->spare = spare->next_spare;
        bench_client_destroy(spare);
    }
    close(context->epoll_fd);
    free(context);
}

/* A zeroed connection: a spare one (its buffers' memory kept) or a new one. */
static struct bench_client_connection *bench_client_take(struct bench_client_context *context)
{
    struct bench_client_connection *connection = context->spare;
    if (connection == NULL)
        return calloc(1, sizeof(*connection));
    context->spare = connection->next_spare;
    context->spare_count--;
    struct bench_client_buffer out = connection->out, in = connection->in,
                               message = connection->message;
    memset(connection, 0, sizeof(*connection));
    connection->out = out;
    connection->in = in;
    connection->message = message;
    return connection;
}

/* ---- connection state ---------------------------------------------------- */

static uint32_t bench_client_wanted_events(const struct bench_client_connection *connection)
{
    if (connection->phase == BENCH_PHASE_TCP)
        return EPOLLOUT;
    return (connection->reading_paused ? 0 : EPOLLIN) | (connection->write_blocked ? EPOLLOUT : 0);
}

static void bench_client_update_events(struct bench_client_connection *connection)
{
    if (connection->fd < 0)
        return;
    uint32_t wanted = bench_client_wanted_events(connection);
    if (wanted == connection->registered)
        return;
    struct epoll_event event = {.events = wanted, .data.ptr = connection};
    epoll_ctl(connection->context->epoll_fd, EPOLL_CTL_MOD, connection->fd, &event);
    connection->registered = wanted;
}

/* The socket is finished with: closed after being open, or failed. why is
 * NULL when the connection is being freed (nobody reads it then). */
static void bench_client_end(struct bench_client_connection *connection, const char *why,
                             int error_number)
{
    if (connection->fd < 0)
        return;
    if (why != NULL)
        bench_client_set_error(connection, why, error_number);
    close(connection->fd); /* also leaves the epoll set */
    connection->fd = -1;
    connection->phase =
        connection->phase == BENCH_PHASE_OPEN ? BENCH_PHASE_DONE : BENCH_PHASE_FAILED;
    bench_client_buffer_release(&connection->out);
    bench_client_buffer_release(&connection->in);
    bench_client_buffer_release(&connection->message);
}

static void bench_client_mark_dirty(struct bench_client_connection *connection)
{
    if (connection->dirty)
        return;
    connection->dirty = true;
    connection->next_dirty = connection->context->dirty;
    connection->context->dirty = connection;
}

/* ---- writing ------------------------------------------------------------- */

/* Write data[*sent..length). Returns 0 when all of it is out, 1 when the
 * socket is full (or still connecting), -1 on an error (errno says which). */
static int bench_client_write(int fd, const void *data, size_t length, size_t *sent)
{
    while (*sent < length) {
        ssize_t written =
            send(fd, (const unsigned char *)data + *sent, length - *sent, MSG_NOSIGNAL);
        if (written > 0) {
            *sent += (size_t)written;
            continue;
        }
        if (written < 0 && errno == EINTR)
            continue;
        if (written < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 1;
        if (written == 0)
            errno = EPIPE;
        return -1;
    }
    return 0;
}

/*
 * Nagle's algorithm holds a segment back only while earlier data is
 * unacknowledged. The first write after the upgrade finds the whole request
 * acknowledged (the server answered it with the 101), so when that write
 * fits in one segment it leaves at once with or without TCP_NODELAY. In
 * pairs and idle runs it is the only write after the upgrade, so the option
 * (a system call) is set on the first write Nagle could delay: a second
 * one, or a first one larger than the smallest segment.
 */
#define BENCH_CLIENT_SMALLEST_SEGMENT 536

static void bench_client_nodelay(struct bench_client_connection *connection, size_t length)
{
    if (connection->nodelay)
        return;
    if (!connection->wrote_open && length <= BENCH_CLIENT_SMALLEST_SEGMENT) {
        connection->wrote_open = true;
        return;
    }
    int one = 1;
    setsockopt(connection->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    connection->nodelay = connection->wrote_open = true;
}

/* Write the queued frames of an open connection. */
static void bench_client_flush(struct bench_client_connection *connection)
{
    struct bench_client_buffer *out = &connection->out;
    if (connection->fd < 0 || connection->phase != BENCH_PHASE_OPEN)
        return;
    size_t length = bench_client_buffer_length(out), sent = 0;
    int status = 0;
    if (length > 0) {
        bench_client_nodelay(connection, length);
        status = bench_client_write(connection->fd, out->data + out->start, length, &sent);
        bench_client_buffer_consume(out, sent);
    }
    if (status < 0)
        return bench_client_end(connection, "send failed", errno);
    connection->write_blocked = status > 0;
    bench_client_update_events(connection);
}

/* A connection whose socket is full waits for EPOLLOUT instead: trying
 * again every turn would cost a failing send() each. */
static void bench_client_flush_dirty(struct bench_client_context *context)
{
    while (context->dirty != NULL) {
        struct bench_client_connection *connection = context->dirty;
        context->dirty = connection->next_dirty;
        connection->dirty = false;
        if (!connection->write_blocked)
            bench_client_flush(connection);
    }
}

/* The upgrade request: first tried right after connect() (on loopback the
 * handshake is usually complete by then), else when the socket turns
 * writable. A failed connect shows as the error of this send. Returns 0
 * while the connection lives, -1 when it ended. */
static int bench_client_send_request(struct bench_client_connection *connection)
{
    int status = bench_client_write(connection->fd, connection->request, connection->request_length,
                                    &connection->request_sent);
    if (status < 0) {
        bench_client_end(connection,
                         connection->request_sent > 0 ? "send failed" : "connect failed", errno);
        return -1;
    }
    if (status == 0)
        connection->phase = BENCH_PHASE_UPGRADE;
    return 0;
}

/* Copy length bytes into out, XORed with the 4-byte key, 8 bytes a step. */
static void bench_client_mask_copy(unsigned char *out, const unsigned char *in, size_t length,
                                   const unsigned char key[4])
{
    uint32_t key32;
    memcpy(&key32, key, 4);
    uint64_t key64 = ((uint64_t)key32 << 32) | key32;
    size_t position = 0;
    for (; position + 8 <= length; position += 8) {
        uint64_t word;
        memcpy(&word, in + position, 8);
        word ^= key64;
        memcpy(out + position, &word, 8);
    }
    for (; position < length; position++)
        out[position] = in[position] ^ key[position & 3];
}

static int bench_client_queue_frame(struct bench_client_connection *connection, int opcode,
                                    const void *data, size_t length)
{
    if (bench_client_buffer_reserve(&connection->out, length + 14) != 0)
        return -1;
    unsigned char *header = connection->out.data + connection->out.end;
    size_t header_length = 2;
    header[0] = (unsigned char)(0x80 | opcode);
    if (length < 126) {
        header[1] = (unsigned char)(0x80 | length);
    } else if (length <= 0xffff) {
        header[1] = 0x80 | 126;
        header[2] = (unsigned char)(length >> 8);
        header[3] = (unsigned char)length;
        header_length = 4;
    } else {
        header[1] = 0x80 | 127;
        for (int index = 0; index < 8; index++)
            header[2 + index] = (unsigned char)((uint64_t)length >> (56 - 8 * index));
        header_length = 10;
    }
    uint32_t key = (uint32_t)bench_client_random(&connection->mask_state);
    memcpy(header + header_length, &key, 4);
    bench_client_mask_copy(header + header_length + 4, data, length, header + header_length);
    connection->out.end += header_length + 4 + length;
    if (connection->phase == BENCH_PHASE_OPEN)
        bench_client_mark_dirty(connection);
    return 0;
}

int bench_client_send(struct bench_client_connection *connection, const void *data, size_t length,
                      bool binary)
{
    if (connection->fd < 0)
        return -1;
    return bench_client_queue_frame(connection, binary ? 2 : 1, data, length);
}

size_t bench_client_queued_bytes(const struct bench_client_connection *connection)
{
    return bench_client_buffer_length(&connection->out);
}

/* ---- reading frames ------------------------------------------------------ */

static void bench_client_deliver(struct bench_client_connection *connection,
                                 const unsigned char *data, size_t length, bool binary)
{
    if (connection->handler != NULL) {
        connection->handler(connection, data, length, binary, connection->handler_user);
        return;
    }
    struct bench_client_stored *stored = malloc(sizeof(*stored) + length);
    if (stored == NULL) {
        bench_client_end(connection, "out of memory", 0);
        return;
    }
    stored->next = NULL;
    stored->length = length;
    stored->binary = binary;
    memcpy(stored->data, data, length);
    if (connection->stored_tail != NULL)
        connection->stored_tail->next = stored;
    else
        connection->stored_head = stored;
    connection->stored_tail = stored;
    connection->stored_count++;
}

static void bench_client_on_close_frame(struct bench_client_connection *connection,
                                        const unsigned char *payload, size_t length)
{
    char why[BENCH_CLIENT_ERROR];
    int code = length >= 2 ? (payload[0] << 8) | payload[1] : 1005;
    int reason_length = length > 2 ? (int)(length - 2) : 0;
    if (reason_length > 100)
        reason_length = 100;
    snprintf(why, sizeof(why), "server closed %d %.*s", code, reason_length,
             length > 2 ? (const char *)payload + 2 : "");
    bench_client_end(connection, why, 0);
}

/* A data frame: whole messages go straight out, fragments are joined. */
static void bench_client_on_data_frame(struct bench_client_connection *connection, int opcode,
                                       bool final, const unsigned char *payload, size_t length)
{
    if (opcode != 0 && connection->message_open)
        return bench_client_end(connection, "new message inside a fragmented one", 0);
    if (opcode == 0 && !connection->message_open)
        return bench_client_end(connection, "continuation without a message", 0);
    if (opcode != 0 && final)
        return bench_client_deliver(connection, payload, length, opcode == 2);
    if (opcode != 0) {
        connection->message_open = true;
        connection->message_binary = opcode == 2;
        connection->message.start = connection->message.end = 0;
    }
    if (bench_client_buffer_reserve(&connection->message, length) != 0)
        return bench_client_end(connection, "out of memory", 0);
    memcpy(connection->message.data + connection->message.end, payload, length);
    connection->message.end += length;
    if (!final)
        return;
    connection->message_open = false;
    bench_client_deliver(connection, connection->message.data,
                         bench_client_buffer_length(&connection->message),
                         connection->message_binary);
}

static void bench_client_on_frame(struct bench_client_connection *connection, int opcode,
                                  bool final, const unsigned char *payload, size_t length)
{
    switch (opcode) {
    case 0:
    case 1:
    case 2:
        bench_client_on_data_frame(connection, opcode, final, payload, length);
        return;
    case 8:
        bench_client_on_close_frame(connection, payload, length);
        return;
    case 9:
        if (bench_client_queue_frame(connection, 10, payload, length) != 0)
            bench_client_end(connection, "out of memory", 0);
        return;
    case 10:
        return;
    default:
        bench_client_end(connection, "unknown opcode", 0);
    }
}

/* Length of the frame header at data (avail bytes), 0 when incomplete;
 * *payload_length gets the payload length. */
static size_t bench_client_frame_header(const unsigned char *data, size_t avail,
                                        uint64_t *payload_length)
{
    if (avail < 2)
        return 0;
    uint64_t length = data[1] & 0x7f;
    size_t header = 2;
    if (length == 126) {
        if (avail < 4)
            return 0;
        length = ((uint64_t)data[2] << 8) | data[3];
        header = 4;
    } else if (length == 127) {
        if (avail < 10)
            return 0;
        length = 0;
        for (int index = 0; index < 8; index++)
            length = (length << 8) | data[2 + index];
        header = 10;
    }
    *payload_length = length;
    return header;
}

static void bench_client_parse_frames(struct bench_client_connection *connection)
{
    while (connection->phase == BENCH_PHASE_OPEN) {
        struct bench_client_buffer *in = &connection->in;
        const unsigned char *data = in->data + in->start;
        size_t avail = bench_client_buffer_length(in);
        uint64_t payload_length;
        size_t header = bench_client_frame_header(data, avail, &payload_length);
        if (header == 0)
            return;
        if ((data[1] & 0x80) != 0 || payload_length > BENCH_CLIENT_MAX_FRAME)
            return bench_client_end(connection, "server sent a masked or huge frame", 0);
        if (avail < header + payload_length) {
            /* make room for the whole frame before the next read */
            if (bench_client_buffer_reserve(in, header + payload_length - avail) != 0)
                bench_client_end(connection, "out of memory", 0);
            return;
        }
        int opcode = data[0] & 0x0f;
        bool final = (data[0] & 0x80) != 0;
        /* consumed first: a handler never sees its own bytes move */
        bench_client_buffer_consume(in, header + (size_t)payload_length);
        bench_client_on_frame(connection, opcode, final, data + header, (size_t)payload_length);
    }
}

/* ---- the upgrade --------------------------------------------------------- */

static void bench_client_base64(char *out, const unsigned char *in, size_t length)
{
    EVP_EncodeBlock((unsigned char *)out, in, (int)length);
}

/* The request is the address's head, a fresh key and a fixed tail (its
 * length was checked when the address was parsed). */
static void bench_client_prepare_upgrade(struct bench_client_connection *connection,
                                         const struct bench_client_address *address)
{
    unsigned char nonce[16], digest[SHA_DIGEST_LENGTH];
    char key[BENCH_CLIENT_KEY_LENGTH + 1], accept_input[BENCH_CLIENT_KEY_LENGTH + 40];

    for (size_t index = 0; index < sizeof(nonce); index += 8) {
        uint64_t word = bench_client_random(&connection->context->random_state);
        memcpy(nonce + index, &word, 8);
    }
    bench_client_base64(key, nonce, sizeof(nonce));
    memcpy(accept_input, key, BENCH_CLIENT_KEY_LENGTH);
    memcpy(accept_input + BENCH_CLIENT_KEY_LENGTH, BENCH_CLIENT_GUID, sizeof(BENCH_CLIENT_GUID));
    SHA1((const unsigned char *)accept_input, BENCH_CLIENT_KEY_LENGTH + strlen(BENCH_CLIENT_GUID),
         digest);
    bench_client_base64(connection->expected_accept, digest, sizeof(digest));
    char *request = connection->request;
    memcpy(request, address->request_head, address->request_head_length);
    request += address->request_head_length;
    memcpy(request, key, BENCH_CLIENT_KEY_LENGTH);
    request += BENCH_CLIENT_KEY_LENGTH;
    memcpy(request, BENCH_CLIENT_REQUEST_TAIL, strlen(BENCH_CLIENT_REQUEST_TAIL));
    request += strlen(BENCH_CLIENT_REQUEST_TAIL);
    connection->request_length = (size_t)(request - connection->request);
}

/* The server's answer: 101 and the right accept key. Returns 1 when the
 * connection is now open, 0 when more is needed, -1 when it ended. */
static int bench_client_parse_response(struct bench_client_connection *connection)
{
    struct bench_client_buffer *in = &connection->in;
    size_t avail = bench_client_buffer_length(in);
    const unsigned char *data = in->data + in->start;
    const unsigned char *end = memmem(data, avail, "\r\n\r\n", 4);
    if (end == NULL) {
        if (avail > BENCH_CLIENT_MAX_RESPONSE)
            bench_client_end(connection, "upgrade response too long", 0);
        return avail > BENCH_CLIENT_MAX_RESPONSE ? -1 : 0;
    }
    size_t head_length = (size_t)(end - data) + 4;
    char head[BENCH_CLIENT_MAX_RESPONSE + 8];
    if (head_length > BENCH_CLIENT_MAX_RESPONSE)
        head_length = BENCH_CLIENT_MAX_RESPONSE;
    memcpy(head, data, head_length);
    head[head_length] = '\0';
    const char *accept = strcasestr(head, "\r\nSec-WebSocket-Accept:");
    if (strncmp(head, "HTTP/1.1 101", 12) != 0 || accept == NULL) {
        char *line_end = strstr(head, "\r\n");
        if (line_end != NULL)
            *line_end = '\0';
        char why[BENCH_CLIENT_ERROR];
        snprintf(why, sizeof(why), "upgrade refused: %.100s", head);
        bench_client_end(connection, why, 0);
        return -1;
    }
    accept += strlen("\r\nSec-WebSocket-Accept:");
    while (*accept == ' ')
        accept++;
    if (strncmp(accept, connection->expected_accept, strlen(connection->expected_accept)) != 0) {
        bench_client_end(connection, "wrong Sec-WebSocket-Accept", 0);
        return -1;
    }
    bench_client_buffer_consume(in, (size_t)(end - data) + 4);
    connection->phase = BENCH_PHASE_OPEN;
    connection->opened_ns = bench_client_now_ns();
    /* written by bench_client_handle_event (or the turn's end) */
    if (bench_client_buffer_length(&connection->out) > 0)
        bench_client_mark_dirty(connection);
    return 1;
}

static void bench_client_read(struct bench_client_connection *connection)
{
    struct bench_client_buffer *in = &connection->in;
    if (connection->read_size == 0)
        connection->read_size = BENCH_CLIENT_READ_INITIAL;
    if (in->capacity - in->end < BENCH_CLIENT_READ_INITIAL &&
        bench_client_buffer_reserve(in, connection->read_size) != 0)
        return bench_client_end(connection, "out of memory", 0);
    size_t room = in->capacity - in->end;
    ssize_t got = recv(connection->fd, in->data + in->end, room, 0);
    if (got == 0)
        return bench_client_end(connection, "server closed the connection", 0);
    if (got < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            bench_client_end(connection, "recv failed", errno);
        return;
    }
    /* A read that filled the room: traffic flows, read more per turn. */
    if ((size_t)got == room && connection->read_size < BENCH_CLIENT_READ_CHUNK)
        connection->read_size *= 2;
    in->end += (size_t)got;
    if (connection->phase == BENCH_PHASE_UPGRADE && bench_client_parse_response(connection) <= 0)
        return;
    bench_client_parse_frames(connection);
}

static void bench_client_handle_event(struct bench_client_connection *connection, uint32_t events)
{
    if (connection->fd < 0)
        return;
    if (connection->phase == BENCH_PHASE_TCP) {
        if (bench_client_send_request(connection) == 0)
            bench_client_update_events(connection);
        return;
    }
    bool upgrading = connection->phase == BENCH_PHASE_UPGRADE;
    if ((events & EPOLLIN) || ((events & (EPOLLERR | EPOLLHUP)) && !connection->reading_paused)) {
        bench_client_read(connection);
        /* Frames queued before the 101 (the rendezvous request) leave at
         * once rather than at the end of the turn: the rendezvous latency
         * is timed from the 101, and it should time the server, not the
         * rest of this turn. It is one send() either way. */
        if (upgrading && connection->phase == BENCH_PHASE_OPEN)
            bench_client_flush(connection);
    } else if (events & (EPOLLERR | EPOLLHUP))
        return bench_client_end(connection, "connection reset", 0);
    if (connection->fd >= 0 && (events & EPOLLOUT))
        bench_client_flush(connection);
}

void bench_client_service(struct bench_client_context *context, int timeout_ms)
{
    struct epoll_event events[BENCH_CLIENT_EVENTS];

    bench_client_flush_dirty(context);
    int count =
        epoll_wait(context->epoll_fd, events, BENCH_CLIENT_EVENTS, timeout_ms > 0 ? timeout_ms : 0);
    for (int index = 0; index < count; index++)
        bench_client_handle_event(events[index].data.ptr, events[index].events);
    bench_client_flush_dirty(context);
}

/* ---- connecting ---------------------------------------------------------- */

/* ws://host:port/path into an address (resolved once per distinct url). */
static int bench_client_parse_url(const char *url, struct bench_client_address *address)
{
    char host[160] = "";
    const char *rest = url + 5, *path, *port_text;
    if (strncmp(url, "ws://", 5) != 0 || strlen(url) >= sizeof(address->url))
        return -1;
    if (*rest == '[') {
        const char *close_bracket = strchr(rest, ']');
        if (close_bracket == NULL || (size_t)(close_bracket - rest - 1) >= sizeof(host))
            return -1;
        memcpy(host, rest + 1, (size_t)(close_bracket - rest - 1));
        port_text = close_bracket + 1;
    } else {
        size_t host_length = strcspn(rest, ":/");
        if (host_length == 0 || host_length >= sizeof(host))
            return -1;
        memcpy(host, rest, host_length);
        port_text = rest + host_length;
    }
    path = strchr(port_text, '/');
    const char *port = *port_text == ':' ? port_text + 1 : "80";
    char port_copy[8];
    snprintf(port_copy, sizeof(port_copy), "%.*s", (int)strcspn(port, "/"), port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *found;
    if (getaddrinfo(host, port_copy, &hints, &found) != 0)
        return -1;
    memcpy(&address->socket_address, found->ai_addr, found->ai_addrlen);
    address->socket_length = found->ai_addrlen;
    freeaddrinfo(found);
    bool ipv6 = strchr(host, ':') != NULL;
    int length =
        snprintf(address->request_head, sizeof(address->request_head),
                 "GET %s HTTP/1.1\r\nHost: %s%s%s:%s\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Key: ",
                 path != NULL ? path : "/", ipv6 ? "[" : "", host, ipv6 ? "]" : "", port_copy);
    if (length < 0 || (size_t)length + BENCH_CLIENT_KEY_LENGTH + strlen(BENCH_CLIENT_REQUEST_TAIL) >
                          BENCH_CLIENT_REQUEST_MAX)
        return -1;
    address->request_head_length = (size_t)length;
    snprintf(address->url, sizeof(address->url), "%s", url);
    return 0;
}

static const struct bench_client_address *bench_client_lookup(struct bench_client_context *context,
                                                              const char *url)
{
    for (int index = 0; index < context->address_count; index++)
        if (strcmp(context->addresses[index].url, url) == 0)
            return &context->addresses[index];
    int slot = context->address_count < BENCH_CLIENT_ADDRESSES ? context->address_count++
                                                               : BENCH_CLIENT_ADDRESSES - 1;
    if (bench_client_parse_url(url, &context->addresses[slot]) != 0) {
        context->addresses[slot].url[0] = '\0';
        return NULL;
    }
    return &context->addresses[slot];
}

/*
 * Tens of thousands of connections from one source address to one server
 * address make the kernel's ephemeral-port search scan ever longer: with
 * 18 000 held it was 80 % of the client's time, and the bench, not the
 * server, set the pace. On IPv4 loopback every 127.x address is local, so
 * connections are spread over BENCH_CLIENT_LOOPBACK_SOURCES source addresses,
 * each with a port range of its own (the port is still chosen at connect).
 */
#define BENCH_CLIENT_LOOPBACK_SOURCES 64

static void bench_client_pick_source(struct bench_client_connection *connection,
                                     const struct sockaddr *target)
{
    if (target->sa_family != AF_INET)
        return;
    const struct sockaddr_in *ipv4 = (const struct sockaddr_in *)target;
    if ((ntohl(ipv4->sin_addr.s_addr) >> 24) != 127)
        return;
    unsigned index = connection->context->source_counter++ % BENCH_CLIENT_LOOPBACK_SOURCES;
    struct sockaddr_in source = {.sin_family = AF_INET};
    source.sin_addr.s_addr = htonl(0x7f000002u + index);
    int one = 1;
    setsockopt(connection->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    /* Failure only loses the spreading: the kernel then picks as usual. */
    (void)bind(connection->fd, (const struct sockaddr *)&source, sizeof(source));
}

/* Connect and write the upgrade request if the handshake is already
 * complete; then watch the socket for what comes next. */
static int bench_client_open_socket(struct bench_client_connection *connection,
                                    const struct bench_client_address *address)
{
    const struct sockaddr *target = (const struct sockaddr *)&address->socket_address;
    connection->fd = socket(target->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (connection->fd < 0)
        return -1;
    bench_client_pick_source(connection, target);
    connection->phase = BENCH_PHASE_TCP;
    if (connect(connection->fd, target, address->socket_length) != 0 && errno != EINPROGRESS)
        return -1;
    if (bench_client_send_request(connection) != 0)
        return 0; /* ended: the caller sees FAILED and why */
    connection->registered = bench_client_wanted_events(connection);
    struct epoll_event event = {.events = connection->registered, .data.ptr = connection};
    if (epoll_ctl(connection->context->epoll_fd, EPOLL_CTL_ADD, connection->fd, &event) != 0)
        return -1;
    return 0;
}

struct bench_client_connection *bench_client_connect(struct bench_client_context *context,
                                                     const char *url, char *error,
                                                     size_t error_size)
{
    const struct bench_client_address *address = bench_client_lookup(context, url);
    if (address == NULL) {
        snprintf(error, error_size, "cannot use url %s (ws://host:port/ only)", url);
        return NULL;
    }
    struct bench_client_connection *connection = bench_client_take(context);
    if (connection == NULL) {
        snprintf(error, error_size, "out of memory");
        return NULL;
    }
    connection->context = context;
    connection->fd = -1;
    connection->mask_state = bench_client_random(&context->random_state) | 1;
    bench_client_prepare_upgrade(connection, address);
    if (bench_client_open_socket(connection, address) != 0) {
        /* a failed connection is still returned: the caller sees FAILED */
        int error_number = errno;
        if (connection->fd < 0)
            connection->phase = BENCH_PHASE_FAILED;
        bench_client_set_error(connection, "connect failed", error_number);
        bench_client_end(connection, "connect failed", error_number);
    }
    return connection;
}

/* ---- the rest of the API ------------------------------------------------- */

enum bench_client_state bench_client_state(const struct bench_client_connection *connection)
{
    switch (connection->phase) {
    case BENCH_PHASE_TCP:
    case BENCH_PHASE_UPGRADE:
        return BENCH_CLIENT_CONNECTING;
    case BENCH_PHASE_OPEN:
        return BENCH_CLIENT_OPEN;
    case BENCH_PHASE_DONE:
        return BENCH_CLIENT_DONE;
    case BENCH_PHASE_FAILED:
        break;
    }
    return BENCH_CLIENT_FAILED;
}

const char *bench_client_error(const struct bench_client_connection *connection)
{
    return connection->error;
}

void bench_client_set_handler(struct bench_client_connection *connection,
                              bench_client_handler handler, void *user)
{
    connection->handler = handler;
    connection->handler_user = user;
}

size_t bench_client_pending_messages(const struct bench_client_connection *connection)
{
    return connection->stored_count;
}

bool bench_client_receive(struct bench_client_connection *connection,
                          struct bench_client_message *message)
{
    struct bench_client_stored *stored = connection->stored_head;
    memset(message, 0, sizeof(*message));
    if (stored == NULL)
        return false;
    connection->stored_head = stored->next;
    if (connection->stored_head == NULL)
        connection->stored_tail = NULL;
    connection->stored_count--;
    message->data = malloc(stored->length + 1);
    if (message->data != NULL) {
        memcpy(message->data, stored->data, stored->length);
        message->length = stored->length;
    }
    message->binary = stored->binary;
    free(stored);
    return true;
}

void bench_client_message_release(struct bench_client_message *message)
{
    free(message->data);
    memset(message, 0, sizeof(*message));
}

void bench_client_pause_reading(struct bench_client_connection *connection)
{
    connection->reading_paused = true;
    bench_client_update_events(connection);
}

void bench_client_free(struct bench_client_connection *connection)
{
    if (connection == NULL)
        return;
    struct bench_client_context *context = connection->context;
    if (connection->dirty) {
        /* unlink from the dirty list (short: this turn's writers) */
        struct bench_client_connection **link = &context->dirty;
        while (*link != connection)
            link = &(*link)->next_dirty;
        *link = connection->next_dirty;
    }
    bench_client_end(connection, NULL, 0);
    struct bench_client_stored *stored = connection->stored_head;
    while (stored != NULL) {
        struct bench_client_stored *next = stored->next;
        free(stored);
        stored = next;
    }
    if (context->spare_count >= BENCH_CLIENT_SPARES)
        return bench_client_destroy(connection);
    connection->next_spare = context->spare;
    context->spare = connection;
    context->spare_count++;
}

/*
 * bench_client.h - relay-bench's own lean WebSocket client (plain ws://).
 *
 * Why not tests/client's ws_client: the libwebsockets 4.1.6 client masks
 * outgoing payloads and parses incoming ones one byte at a time, so with
 * 16 KiB frames the client burned a whole core while the server under test
 * idled at 15%: the benchmark measured itself. This client does the same
 * protocol work in bulk (word-wise masking, frames delivered straight from
 * the read buffer) on one epoll loop per process, and batches every frame a
 * connection queued during one loop turn into one send(). The server sees
 * ordinary RFC 6455 clients: a standard upgrade (no subprotocol, no
 * extension), masked frames, pongs for its pings.
 *
 * The API follows ws_client's shape so the modes read the same: start a
 * connection (frames may be queued before it is open), run the loop,
 * receive messages either stored (read them with bench_client_receive) or
 * through a handler. Nothing blocks: callers bound their own waits.
 */
#ifndef RELAY_BENCH_CLIENT_H
#define RELAY_BENCH_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

struct bench_client_context;
struct bench_client_connection;

enum bench_client_state {
    BENCH_CLIENT_CONNECTING, /* TCP connect or upgrade in progress */
    BENCH_CLIENT_OPEN,
    BENCH_CLIENT_DONE,   /* closed after having been open */
    BENCH_CLIENT_FAILED, /* never opened */
};

struct bench_client_message {
    unsigned char *data; /* owned: bench_client_message_release() */
    size_t length;
    bool binary;
};

/* Called for each whole received message; data is valid during the call
 * only. The handler may send on any connection but must not free one. */
typedef void (*bench_client_handler)(struct bench_client_connection *connection,
                                     const unsigned char *data, size_t length, bool binary,
                                     void *user);

/* One per process (after fork). NULL on failure. */
struct bench_client_context *bench_client_context_new(void);
/* Every connection must have been freed before. */
void bench_client_context_free(struct bench_client_context *context);

/* One loop turn: write what is queued, wait up to timeout_ms for events
 * (0: none), handle them, write what the handlers queued. */
void bench_client_service(struct bench_client_context *context, int timeout_ms);

/* Start connecting to ws://host:port/path (host an IP literal or a name).
 * NULL only when the url is unusable or memory is short (error says why). */
struct bench_client_connection *bench_client_connect(struct bench_client_context *context,
                                                     const char *url, char *error,
                                                     size_t error_size);

/* Queue one whole message. Returns 0, or -1 when the connection has ended. */
int bench_client_send(struct bench_client_connection *connection, const void *data, size_t length,
                      bool binary);
/* Bytes queued and not yet written to the socket (frame headers included). */
size_t bench_client_queued_bytes(const struct bench_client_connection *connection);

enum bench_client_state bench_client_state(const struct bench_client_connection *connection);
/* When the WebSocket upgrade completed (CLOCK_MONOTONIC ns; 0 before):
 * messages queued earlier leave then. */
int64_t bench_client_opened_ns(const struct bench_client_connection *connection);
/* Why it failed or ended; "" while all is well. */
const char *bench_client_error(const struct bench_client_connection *connection);

void bench_client_set_handler(struct bench_client_connection *connection,
                              bench_client_handler handler, void *user);
/* Stored messages (no handler set), in arrival order. */
size_t bench_client_pending_messages(const struct bench_client_connection *connection);
/* Take the oldest stored message. Returns false when there is none. */
bool bench_client_receive(struct bench_client_connection *connection,
                          struct bench_client_message *message);
void bench_client_message_release(struct bench_client_message *message);

/* Stop reading the socket for good (a stalled receiver): the kernel
 * buffers fill and TCP pushes back on the server. */
void bench_client_pause_reading(struct bench_client_connection *connection);

/* Drop the socket (no close frame) and free everything. NULL is fine. */
void bench_client_free(struct bench_client_connection *connection);

#endif

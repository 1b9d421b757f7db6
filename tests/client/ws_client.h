/*
 * ws_client.h - a WebSocket client for tests and the benchmark.
 *
 * A thin layer over the libwebsockets client API with one lws context per
 * process and lws's own poll loop (no threads). It offers a synchronous-looking
 * API ("connect, send, receive the next message, with a timeout") that tests
 * read top to bottom, plus non-blocking variants (connect_start, callbacks on
 * received messages) so that thousands of connections and bulk transfers
 * work too.
 *
 * Every wait is bounded by a caller-given timeout: nothing here blocks for
 * ever. Sends are queued per connection and written one WebSocket frame per
 * WRITEABLE callback of that connection (libwebsockets' rule); received
 * fragments are joined into whole messages.
 *
 * Known libwebsockets 4.1.6 quirk: its client turns a received close status
 * 1012, 1013 or 1014 into 1002 before handing it to us, so a 1013 sent by a
 * server shows up here as 1002 (the reason text is kept). Tests that must see
 * the real status read the close frame with a raw socket instead.
 */
#ifndef RELAY_TEST_WS_CLIENT_H
#define RELAY_TEST_WS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ws_client_context;
struct ws_client_connection;

struct ws_client_options {
    const char *ca_file;    /* wss: trust anchors (PEM); NULL: the system store */
    bool skip_verification; /* wss: accept self-signed/untrusted, skip hostname */
    size_t rx_buffer_size;  /* lws receive chunk; 0: 64 KiB */
    bool raise_file_limit;  /* raise RLIMIT_NOFILE soft limit to the hard limit */
    int log_level;          /* lws log bitmask; 0: errors only */
};

/* What ws_client_receive() returned. */
enum ws_client_result {
    WS_CLIENT_BINARY = 1, /* a whole binary message */
    WS_CLIENT_TEXT,       /* a whole text message */
    WS_CLIENT_CLOSED,     /* the connection is closed; see close_code/close_reason */
    WS_CLIENT_TIMEOUT,    /* nothing arrived before the deadline */
};

/* Close status reported when the connection ended without a close frame. */
#define WS_CLIENT_CLOSE_NO_STATUS 1005
#define WS_CLIENT_CLOSE_ABNORMAL 1006
#define WS_CLIENT_REASON_MAX 124

struct ws_client_message {
    enum ws_client_result result;
    unsigned char *data; /* owned by the message: ws_client_message_release() */
    size_t length;
    int close_code; /* WS_CLIENT_CLOSED: status the peer sent, 1005, or 1006 */
    char close_reason[WS_CLIENT_REASON_MAX + 1];
};

enum ws_client_state {
    WS_CLIENT_CONNECTING,
    WS_CLIENT_OPEN,
    WS_CLIENT_CLOSING, /* we asked to close; waiting for the peer's answer */
    WS_CLIENT_DONE,    /* closed after having been open */
    WS_CLIENT_FAILED,  /* never opened: see ws_client_error() */
};

/* One piece of a fragmented message (ws_client_send_fragments). */
struct ws_client_piece {
    const void *data;
    size_t length;
};

/* Handler for received messages on a connection that does not store them.
 * data is valid only during the call. binary is false for text messages.
 * The handler must not free or close its own connection. */
typedef void (*ws_client_message_handler)(struct ws_client_connection *connection,
                                          const unsigned char *data, size_t length, bool binary,
                                          void *user);

/* Create the process' client context. NULL on failure (logged to stderr). */
struct ws_client_context *ws_client_context_new(const struct ws_client_options *options);
/* Force-close every connection still open and free the context. Connections
 * must have been freed with ws_client_free() before. */
void ws_client_context_free(struct ws_client_context *context);

/* Run the event loop once: wait at most timeout_ms for events (0: only what
 * is ready now) and dispatch them. */
void ws_client_service(struct ws_client_context *context, int timeout_ms);

/* Run the event loop until condition(argument) is true or timeout_ms passed.
 * Returns whether the condition became true. */
bool ws_client_wait_until(struct ws_client_context *context, bool (*condition)(void *argument),
                          void *argument, int timeout_ms);

/* Milliseconds on a monotonic clock, for callers' own deadlines. */
int64_t ws_client_now_ms(void);

/* Open a connection to url ("ws://127.0.0.1:1234/", "wss://[::1]:1234/") and
 * wait until the handshake completed. NULL on failure or timeout, with a
 * message in error (error may be NULL). */
struct ws_client_connection *ws_client_connect(struct ws_client_context *context, const char *url,
                                               int timeout_ms, char *error, size_t error_size);

/* Start opening a connection and return at once. Returns NULL only when the
 * url is invalid or memory is short; a connection that fails later ends in
 * WS_CLIENT_FAILED. */
struct ws_client_connection *ws_client_connect_start(struct ws_client_context *context,
                                                     const char *url, char *error,
                                                     size_t error_size);

/* Wait until none of the count connections is still CONNECTING. Returns how
 * many are OPEN. Connections still connecting at the deadline are failed. */
size_t ws_client_wait_connected(struct ws_client_context *context,
                                struct ws_client_connection **connections, size_t count,
                                int timeout_ms);

enum ws_client_state ws_client_state(const struct ws_client_connection *connection);
/* Why the connection failed or closed, "" when nothing went wrong. */
const char *ws_client_error(const struct ws_client_connection *connection);

/* Queue one whole message (a single frame). Returns 0, or -1 when the
 * connection is not open or memory is short. */
int ws_client_send(struct ws_client_connection *connection, const void *data, size_t length,
                   bool binary);

/* Queue one message as count frames: the first binary or text, the rest
 * continuations, FIN on the last. count must be at least 1. */
int ws_client_send_fragments(struct ws_client_connection *connection,
                             const struct ws_client_piece *pieces, size_t count, bool binary);

/* Payload bytes queued and not yet handed to the socket. */
size_t ws_client_queued_bytes(const struct ws_client_connection *connection);

/* Service until at most max_bytes are queued. Returns false on timeout or
 * when the connection is no longer open. */
bool ws_client_wait_queue_below(struct ws_client_connection *connection, size_t max_bytes,
                                int timeout_ms);

/* Next received message in arrival order, or WS_CLIENT_CLOSED once every
 * message before the close was returned, or WS_CLIENT_TIMEOUT. Returns
 * message->result. Release with ws_client_message_release(). */
enum ws_client_result ws_client_receive(struct ws_client_connection *connection,
                                        struct ws_client_message *message, int timeout_ms);
void ws_client_message_release(struct ws_client_message *message);

/* Stored messages waiting for ws_client_receive(). */
size_t ws_client_pending_messages(const struct ws_client_connection *connection);

/* Hand received messages to handler instead of storing them (NULL: store). */
void ws_client_set_message_handler(struct ws_client_connection *connection,
                                   ws_client_message_handler handler, void *user);

/* Counters of whole messages and their payload bytes. */
uint64_t ws_client_messages_received(const struct ws_client_connection *connection);
uint64_t ws_client_bytes_received(const struct ws_client_connection *connection);
uint64_t ws_client_bytes_sent(const struct ws_client_connection *connection);

/* Stop reading from the socket (the kernel buffers fill, pings go unanswered)
 * and start again. */
void ws_client_pause_reading(struct ws_client_connection *connection);
void ws_client_resume_reading(struct ws_client_connection *connection);

/* Send a close frame with code and reason after every queued message and wait
 * up to timeout_ms for the connection to end. Returns whether it ended. */
bool ws_client_close(struct ws_client_connection *connection, int code, const char *reason,
                     int timeout_ms);

/* Free the connection, dropping its socket at once if still open. */
void ws_client_free(struct ws_client_connection *connection);

#endif

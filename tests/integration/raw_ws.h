/*
 * raw_ws.h - a minimal WebSocket client on a plain blocking socket.
 *
 * For the few checks where the libwebsockets client stands in the way: lws
 * 4.1.6 rewrites a received close status 1013 to 1002, so "refused with 1013"
 * is read here from the raw close frame. Only what those checks need: the
 * upgrade handshake, masked frames out, unmasked frames in.
 *
 * The handshake and frame steps also work over any other byte stream
 * (struct raw_ws_stream): the cluster harness runs them over its raw links
 * to a node's /cluster port, which may be TLS.
 */
#ifndef RELAY_TEST_RAW_WS_H
#define RELAY_TEST_RAW_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Connect to host:port (numeric address), send the upgrade request for "/"
 * and read the response head. Returns the socket, or -1; *http_status gets
 * the response status (101 on success) when a response arrived. */
int raw_ws_open(const char *host, int port, int timeout_ms, int *http_status);

/* Send one masked frame (opcode 1 text, 2 binary, 8 close). */
int raw_ws_send(int fd, int opcode, const void *data, size_t length);

/* Read one frame. Returns 0 with *opcode (the FIN bit 0x80 and the opcode:
 * 0x82 is a whole binary message) and a malloc'd *payload, or -1 on
 * timeout, end of stream or a malformed frame. */
int raw_ws_read_frame(int fd, int timeout_ms, int *opcode, unsigned char **payload, size_t *length);

/* Read frames until a close frame; returns 0 with its status (1005 when it
 * had none) and reason, or -1 when no close frame came in time. */
int raw_ws_read_close(int fd, int timeout_ms, int *code, char *reason, size_t reason_size);

/* ---- over any byte stream ------------------------------------------------ */

/* Where the steps below read and write. read_exact fills buffer with
 * exactly length bytes before deadline (ws_client_now_ms()) and returns 0, -1
 * on timeout or -2 when the stream ended; write_all writes all of data and
 * returns 0 or -1. */
struct raw_ws_stream {
    int (*read_exact)(void *context, void *buffer, size_t length, int64_t deadline);
    int (*write_all)(void *context, const void *data, size_t length);
    void *context;
};

/* Send the upgrade request for path to host:port (the Host header),
 * offering subprotocol (NULL: no Sec-WebSocket-Protocol header). Returns 0
 * or -1. */
int raw_ws_stream_send_upgrade(const struct raw_ws_stream *stream, const char *host, int port,
                               const char *path, const char *subprotocol);

/* Read the response head byte by byte up to the blank line into head
 * (NUL-ended; reading further could swallow the first frame). Returns 0
 * with *http_status, -1 on timeout, or -2 when the stream ended, the head
 * did not fit or had no HTTP status line. */
int raw_ws_stream_read_head(const struct raw_ws_stream *stream, int64_t deadline, char *head,
                            size_t head_size, int *http_status);

/* Send one masked frame (opcode 1 text, 2 binary, 8 close). Returns 0 or -1. */
int raw_ws_stream_send_frame(const struct raw_ws_stream *stream, int opcode, const void *data,
                             size_t length);

/* Read one frame before the deadline: 0 with *opcode (FIN bit and opcode)
 * and a malloc'd NUL-ended *payload, -1 on timeout, -2 when the stream
 * ended or the frame is refused: a masked one (server frames never are)
 * unless accept_masked, one larger than 64 MiB. */
int raw_ws_stream_read_frame(const struct raw_ws_stream *stream, int64_t deadline,
                             bool accept_masked, int *opcode, unsigned char **payload,
                             size_t *length);

#endif

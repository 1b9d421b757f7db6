/*
 * raw_ws.h - a minimal WebSocket client on a plain blocking socket.
 *
 * For the few checks where the libwebsockets client stands in the way: lws
 * 4.1.6 rewrites a received close status 1013 to 1002, so "refused with 1013"
 * is read here from the raw close frame. Only what those checks need: the
 * upgrade handshake, masked frames out, unmasked frames in.
 */
#ifndef RELAY_TEST_RAW_WS_H
#define RELAY_TEST_RAW_WS_H

#include <stddef.h>

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

#endif

/*
 * link_websocket.h - the WebSocket client codec of the link's dialer
 * (RFC 6455, client side), as pure functions.
 *
 * The dialer of a link (link_dialer.c) speaks WebSocket itself on an lws raw
 * socket, because lws 4.1.6's own client parses every received byte with a
 * function call and masks byte by byte, which capped a link at a few hundred
 * MB/s of CPU-bound work. This module is the byte-level half of that client:
 * the upgrade request and the check of its answer, parsing the headers of the
 * server's frames, framing and masking ours. It never touches a socket and
 * never allocates; link_dialer.c feeds it bytes and keeps the state. The
 * acceptor's side of the WebSocket is lws's server and does not use it.
 */
#ifndef RELAY_LINK_WEBSOCKET_H
#define RELAY_LINK_WEBSOCKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes a client frame header can take: 2, 8 of extended length, 4 of mask
 * key. LWS_PRE (16) is at least this, so a queued message can be framed in
 * its own headroom. */
#define LINK_WEBSOCKET_HEADER_MAX_LENGTH 14
#define LINK_WEBSOCKET_CONTROL_MAX_LENGTH 125
/* Sec-WebSocket-Key: base64 of 16 random bytes; the answer's accept value:
 * base64 of a SHA-1. */
#define LINK_WEBSOCKET_KEY_LENGTH 24
#define LINK_WEBSOCKET_ACCEPT_LENGTH 28
/* An upgrade answer (status line and headers) longer than this is refused. */
#define LINK_WEBSOCKET_RESPONSE_MAX_LENGTH 4096

enum link_websocket_opcode {
    LINK_WEBSOCKET_CONTINUATION = 0x0,
    LINK_WEBSOCKET_TEXT = 0x1,
    LINK_WEBSOCKET_BINARY = 0x2,
    LINK_WEBSOCKET_CLOSE = 0x8,
    LINK_WEBSOCKET_PING = 0x9,
    LINK_WEBSOCKET_PONG = 0xa,
};

struct link_websocket_header {
    bool fin;
    uint8_t opcode;
    uint64_t length;      /* payload bytes */
    size_t header_length; /* bytes of the header itself */
};

/* Parse the header of a frame from the server (never masked) from the
 * available bytes at in. Returns 1 with *header filled in, 0 when more bytes
 * are needed, -1 with *error for a frame a client must refuse: reserved
 * bits, an unknown opcode, a mask, a fragmented or long control frame, a
 * 64-bit length with its top bit set. */
int link_websocket_parse_header(const uint8_t *in, size_t available,
                                struct link_websocket_header *header, const char **error);
/* Frame the length payload bytes at payload as one client frame (FIN set):
 * write the header, mask key included, in the LINK_WEBSOCKET_HEADER_MAX_LENGTH
 * bytes before payload and mask the payload in place. Returns the header
 * length; the frame starts that many bytes before payload. */
size_t link_websocket_frame_client(uint8_t *payload, size_t length, uint8_t opcode,
                                   const uint8_t mask[4]);
/* XOR data with the 4-byte mask, starting at mask byte 0. */
void link_websocket_mask(uint8_t *data, size_t length, const uint8_t mask[4]);

/* The key from 16 random bytes (NUL-terminated). */
void link_websocket_make_key(const uint8_t random[16], char key[LINK_WEBSOCKET_KEY_LENGTH + 1]);
/* The upgrade request for the link path and subprotocol; host is the
 * advertised host (an IPv6 literal is bracketed here). Returns its length,
 * or 0 when it does not fit in size bytes. */
size_t link_websocket_write_request(char *out, size_t size, const char *host, int port,
                                    const char key[LINK_WEBSOCKET_KEY_LENGTH + 1]);
/* Where the answer's header block ends (just past the blank line), 0 when
 * it is not complete within length bytes. */
size_t link_websocket_response_end(const uint8_t *in, size_t length);
/* Check a complete header block (status line to blank line): 101, Upgrade:
 * websocket, Connection: upgrade, the accept value for key, the link
 * subprotocol and no extension. Returns 0, or -1 with *error. */
int link_websocket_check_response(const uint8_t *head, size_t length,
                                  const char key[LINK_WEBSOCKET_KEY_LENGTH + 1],
                                  const char **error);

#endif

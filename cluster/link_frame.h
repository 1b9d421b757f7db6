/*
 * link_frame.h - the binary frames of the node-to-node link (relayd-link.2).
 *
 * A link frame is an 8-byte header (type, flags, a 16-bit length, a
 * big-endian stream id) and a payload. One binary WebSocket message carries
 * one or more frames (a batch): every frame but the last has the MORE flag
 * and its payload length in the header; the last frame's payload runs to the
 * end of the message, so a one-frame message is laid out as in
 * relayd-link.1. cluster/link-protocol.md is the specification; this module
 * only turns bytes into checked structs and back. It never touches a socket
 * and never allocates: encoders write at the pointer they are given (the
 * caller keeps LWS_PRE bytes of headroom in front of it) and return the
 * number of bytes written.
 *
 * The HELLO, AUTH and AUTH_OK payloads are built and read by link_auth.c;
 * link_frame_decode only checks that their sizes are consistent. The
 * WebSocket that carries the messages is link_websocket.h's business (the
 * dialer's side) or lws's (the acceptor's).
 */
#ifndef RELAY_LINK_FRAME_H
#define RELAY_LINK_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "relay/protocol.h"

#define LINK_PATH "/cluster"
#define LINK_SUBPROTOCOL "relayd-link.2"
/* The handshake version (HELLO's first byte): relayd-link.2 kept the
 * handshake of relayd-link.1 unchanged, byte for byte. */
#define LINK_VERSION 1

#define LINK_FRAME_HEADER_LENGTH 8
#define LINK_NODE_ID_MAX_LENGTH 64
#define LINK_NONCE_LENGTH 32
#define LINK_MAC_LENGTH 32
#define LINK_OPEN_PAYLOAD_LENGTH (RID_HEX_LENGTH + UUID_TEXT_LENGTH)
#define LINK_GOAWAY_TEXT_MAX_LENGTH 123
/* The largest frame of any type but DATA (an AUTH with a 64-byte node id):
 * one buffer of this size can hold any control frame. */
#define LINK_FRAME_CONTROL_MAX_LENGTH                                                              \
    (LINK_FRAME_HEADER_LENGTH + 1 + LINK_NODE_ID_MAX_LENGTH + 8 + LINK_NONCE_LENGTH +              \
     LINK_MAC_LENGTH)

enum link_frame_type {
    LINK_FRAME_HELLO = 1,
    LINK_FRAME_AUTH = 2,
    LINK_FRAME_AUTH_OK = 3,
    LINK_FRAME_OPEN = 4,
    LINK_FRAME_PAIRED = 5,
    LINK_FRAME_NOT_FOUND = 6,
    LINK_FRAME_BUSY = 7,
    LINK_FRAME_DATA = 8,
    LINK_FRAME_CREDIT = 9,
    LINK_FRAME_CLOSE = 10,
    LINK_FRAME_PING = 11,
    LINK_FRAME_PONG = 12,
    LINK_FRAME_GOAWAY = 13,
};

/* Any frame type: another frame follows in the same message, and header
 * bytes 2-3 hold this frame's payload length. */
#define LINK_FRAME_MORE 0x80u
/* A message holding more than one frame stays within this many bytes, so
 * every frame but a message's last has a payload that fits in 16 bits. A
 * single frame may be larger (it then travels alone). */
#define LINK_BATCH_MAX_LENGTH 65536u

/* DATA flags: the WebSocket message piece a DATA frame carries. */
#define LINK_DATA_FIRST 0x01u /* first piece of a client message */
#define LINK_DATA_FINAL 0x02u /* last piece of a client message */
#define LINK_DATA_TEXT 0x04u  /* the client message is a text message */
#define LINK_DATA_FLAGS_ALL (LINK_DATA_FIRST | LINK_DATA_FINAL | LINK_DATA_TEXT)

/* Reason codes of CLOSE (a stream) and GOAWAY (the whole link). */
enum link_close_code {
    LINK_CLOSE_NORMAL = 0,         /* normal end, or the client went away */
    LINK_CLOSE_PROTOCOL_ERROR = 1, /* the peer broke this protocol */
    LINK_CLOSE_SHUTTING_DOWN = 2,  /* the sender is shutting down */
    LINK_CLOSE_INTERNAL_ERROR = 3, /* the sender failed (allocation, ...) */
    LINK_CLOSE_AUTH_FAILED = 4,    /* GOAWAY only: the handshake failed */
};

struct link_frame {
    uint8_t type;
    uint8_t flags;
    uint32_t stream_id;
    const uint8_t *payload; /* points into the decoded message */
    size_t length;          /* payload bytes */
};

/* Check a message that holds exactly one frame (no MORE flag, length bytes
 * zero, payload to the end) and describe it in *frame. max_data bounds the
 * payload of a DATA frame. Returns 0, or -1 with a short static text in
 * *error (error may be NULL): a frame that fails here is a link-level
 * protocol error (GOAWAY 1, then close the link). Checks the header (length,
 * type, length bytes, flags, stream id 0 for link frames and non-zero for
 * stream frames), the exact payload size of every control type and the
 * content of OPEN, CREDIT and GOAWAY payloads. */
int link_frame_decode(const uint8_t *message, size_t length, size_t max_data,
                      struct link_frame *frame, const char **error);

/* Walks the frames of one received message (a batch). */
struct link_batch {
    const uint8_t *message;
    size_t length;
    size_t offset;   /* where the next frame starts */
    size_t max_data; /* bound of a DATA payload */
    bool ended;      /* the last frame (no MORE flag) was read */
    const char *bad; /* why the message is not a valid batch, once found */
};

void link_batch_start(struct link_batch *batch, const uint8_t *message, size_t length,
                      size_t max_data);
/* The next frame: 1 with *frame filled in (every link_frame_decode rule
 * checked), 0 after the message's last frame, -1 with *error when the
 * message is not a valid batch: empty, a truncated header, a MORE frame
 * whose length overruns the message or that ends it, length bytes on the
 * last frame, or a frame that breaks a single-frame rule. Once it returned
 * -1 it keeps doing so. */
int link_batch_next(struct link_batch *batch, struct link_frame *frame, const char **error);
/* Check a whole message before acting on any of its frames: 0, or -1 with
 * *error as link_batch_next. */
int link_batch_check(const uint8_t *message, size_t length, size_t max_data, const char **error);

/* Write the 8-byte header of a message's last (or only) frame: MORE clear,
 * length bytes zero; returns LINK_FRAME_HEADER_LENGTH. A PAIRED, NOT_FOUND
 * or BUSY frame is just this header. A DATA frame is this header followed
 * by the caller's bytes. */
size_t link_frame_write_header(uint8_t *out, uint8_t type, uint8_t flags, uint32_t stream_id);
/* Another frame is appended after the frame whose header is at frame and
 * whose payload is payload_length bytes: set its MORE flag and length.
 * Returns 0, or -1 when the payload does not fit in 16 bits. */
int link_frame_set_more(uint8_t *frame, size_t payload_length);

/* Encoders of whole frames (header and payload). Each returns the frame
 * length, or 0 when the arguments cannot make a valid frame. */
size_t link_frame_encode_open(uint8_t *out, uint32_t stream_id, const char *rid,
                              const char *request_uuid);
size_t link_frame_encode_credit(uint8_t *out, uint32_t stream_id, uint32_t bytes);
size_t link_frame_encode_close(uint8_t *out, uint32_t stream_id, uint16_t code);
size_t link_frame_encode_ping(uint8_t *out, uint64_t opaque);
size_t link_frame_encode_pong(uint8_t *out, uint64_t opaque);
/* text is cut to LINK_GOAWAY_TEXT_MAX_LENGTH bytes on a character boundary;
 * 0 if it is not UTF-8. */
size_t link_frame_encode_goaway(uint8_t *out, uint16_t code, const char *text);

/* Payload readers for frames that link_frame_decode accepted. Each returns
 * 0, or -1 when the frame is not of its type or its payload is invalid. */
int link_frame_decode_open(const struct link_frame *frame, char rid[RID_HEX_LENGTH + 1],
                           char request_uuid[UUID_TEXT_LENGTH + 1]);
int link_frame_decode_credit(const struct link_frame *frame, uint32_t *bytes);
int link_frame_decode_close(const struct link_frame *frame, uint16_t *code);
/* PING or PONG. */
int link_frame_decode_ping(const struct link_frame *frame, uint64_t *opaque);
int link_frame_decode_goaway(const struct link_frame *frame, uint16_t *code,
                             char text[LINK_GOAWAY_TEXT_MAX_LENGTH + 1]);

/* Whether the dialer (from_dialer) or the acceptor may send this type on a
 * link connection. Streams are opened only by the dialer. */
bool link_frame_allowed_from(uint8_t type, bool from_dialer);

/* "HELLO", "DATA", ...; "UNKNOWN" for any other value. */
const char *link_frame_type_name(uint8_t type);

/* Big-endian helpers, shared with link_auth.c and link_websocket.c. */
void link_put_u16(uint8_t *out, uint16_t value);
void link_put_u32(uint8_t *out, uint32_t value);
void link_put_u64(uint8_t *out, uint64_t value);
uint16_t link_get_u16(const uint8_t *in);
uint32_t link_get_u32(const uint8_t *in);
uint64_t link_get_u64(const uint8_t *in);

#endif

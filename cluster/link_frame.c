/*
 * link_frame.c - encode and check the frames of the node-to-node link.
 *
 * The link code (cluster/link*.c) receives binary WebSocket messages, each
 * a batch of one or more frames, and walks them with link_batch_next before
 * it looks at anything else, so every rule that can be checked on a message
 * lives here: batch framing (MORE flag, lengths), header layout, known
 * types, flags, which frames carry a stream id, exact payload sizes and the
 * content of the small fixed payloads. What needs state (is the link
 * authenticated, is this stream open, is there credit) is the link code's
 * business; cluster/link-protocol.md has both.
 *
 * A frame that fails here ends the whole link, not only a stream: a peer
 * that sends malformed frames is broken or hostile, and the framing gives no
 * way to trust anything else it sends.
 */
#include <string.h>

#include "link_frame.h"

/* What the protocol allows for one frame type. Payload sizes of HELLO and
 * AUTH depend on the node id length inside them; min and max bound them and
 * link_frame_check_auth_size does the exact check. */
struct link_frame_rule {
    const char *name;
    bool stream;        /* carries a non-zero stream id (else stream id 0) */
    bool from_dialer;   /* the dialer (link client) may send it */
    bool from_acceptor; /* the acceptor (link server) may send it */
    size_t min_length;
    size_t max_length; /* SIZE_MAX for DATA: bounded by max_data instead */
};

#define LINK_HELLO_FIXED_LENGTH (1 + 1 + 8 + LINK_NONCE_LENGTH)
#define LINK_AUTH_FIXED_LENGTH (1 + 8 + LINK_NONCE_LENGTH + LINK_MAC_LENGTH)

static const struct link_frame_rule link_frame_rules[] = {
    [LINK_FRAME_HELLO] = {"HELLO", false, false, true, LINK_HELLO_FIXED_LENGTH + 1,
                          LINK_HELLO_FIXED_LENGTH + LINK_NODE_ID_MAX_LENGTH},
    [LINK_FRAME_AUTH] = {"AUTH", false, true, false, LINK_AUTH_FIXED_LENGTH + 1,
                         LINK_AUTH_FIXED_LENGTH + LINK_NODE_ID_MAX_LENGTH},
    [LINK_FRAME_AUTH_OK] = {"AUTH_OK", false, false, true, LINK_MAC_LENGTH, LINK_MAC_LENGTH},
    [LINK_FRAME_OPEN] = {"OPEN", true, true, false, LINK_OPEN_PAYLOAD_LENGTH,
                         LINK_OPEN_PAYLOAD_LENGTH},
    [LINK_FRAME_PAIRED] = {"PAIRED", true, false, true, 0, 0},
    [LINK_FRAME_NOT_FOUND] = {"NOT_FOUND", true, false, true, 0, 0},
    [LINK_FRAME_BUSY] = {"BUSY", true, false, true, 0, 0},
    [LINK_FRAME_DATA] = {"DATA", true, true, true, 0, SIZE_MAX},
    [LINK_FRAME_CREDIT] = {"CREDIT", true, true, true, 4, 4},
    [LINK_FRAME_CLOSE] = {"CLOSE", true, true, true, 2, 2},
    [LINK_FRAME_PING] = {"PING", false, true, true, 8, 8},
    [LINK_FRAME_PONG] = {"PONG", false, true, true, 8, 8},
    [LINK_FRAME_GOAWAY] = {"GOAWAY", false, true, true, 2, 2 + LINK_GOAWAY_TEXT_MAX_LENGTH},
};

#define LINK_FRAME_TYPE_COUNT (sizeof(link_frame_rules) / sizeof(link_frame_rules[0]))

/* NULL for an unknown type (0 and anything past GOAWAY). */
static const struct link_frame_rule *link_frame_rule_of(uint8_t type)
{
    if (type == 0 || type >= LINK_FRAME_TYPE_COUNT)
        return NULL;
    return &link_frame_rules[type];
}

void link_put_u16(uint8_t *out, uint16_t value)
{
    out[0] = (uint8_t)(value >> 8);
    out[1] = (uint8_t)value;
}

void link_put_u32(uint8_t *out, uint32_t value)
{
    link_put_u16(out, (uint16_t)(value >> 16));
    link_put_u16(out + 2, (uint16_t)value);
}

void link_put_u64(uint8_t *out, uint64_t value)
{
    link_put_u32(out, (uint32_t)(value >> 32));
    link_put_u32(out + 4, (uint32_t)value);
}

uint16_t link_get_u16(const uint8_t *in)
{
    return (uint16_t)((uint16_t)in[0] << 8 | in[1]);
}

uint32_t link_get_u32(const uint8_t *in)
{
    return (uint32_t)link_get_u16(in) << 16 | link_get_u16(in + 2);
}

uint64_t link_get_u64(const uint8_t *in)
{
    return (uint64_t)link_get_u32(in) << 32 | link_get_u32(in + 4);
}

/* Length of the UTF-8 character at text (at most left bytes), or 0 when it
 * is not well-formed: overlong forms, surrogates and code points past
 * U+10FFFF are refused, as a WebSocket close reason would be. NUL is refused
 * too, so the decoded text can be handed around as a C string. */
static size_t link_frame_utf8_char_length(const uint8_t *text, size_t left)
{
    uint8_t lead = text[0];
    uint32_t code_point, minimum;
    size_t length;

    if (lead == 0)
        return 0;
    if (lead < 0x80)
        return 1;
    if (lead >= 0xc2 && lead <= 0xdf) {
        length = 2;
        code_point = lead & 0x1fu;
        minimum = 0x80;
    } else if ((lead & 0xf0) == 0xe0) {
        length = 3;
        code_point = lead & 0x0fu;
        minimum = 0x800;
    } else if (lead >= 0xf0 && lead <= 0xf4) {
        length = 4;
        code_point = lead & 0x07u;
        minimum = 0x10000;
    } else {
        return 0;
    }
    if (length > left)
        return 0;
    for (size_t i = 1; i < length; i++) {
        if ((text[i] & 0xc0) != 0x80)
            return 0;
        code_point = code_point << 6 | (text[i] & 0x3fu);
    }
    if (code_point < minimum || code_point > 0x10ffff ||
        (code_point >= 0xd800 && code_point <= 0xdfff))
        return 0;
    return length;
}

static bool link_frame_is_utf8(const uint8_t *text, size_t length)
{
    size_t position = 0;

    while (position < length) {
        size_t step = link_frame_utf8_char_length(text + position, length - position);
        if (step == 0)
            return false;
        position += step;
    }
    return true;
}

/* The owner's rid, as the dialer normalised it: exactly 64 lowercase hex
 * digits, so both nodes key their tables by identical strings. */
static bool link_frame_is_rid(const uint8_t *text)
{
    for (size_t i = 0; i < RID_HEX_LENGTH; i++) {
        bool digit = text[i] >= '0' && text[i] <= '9';
        bool lower = text[i] >= 'a' && text[i] <= 'f';
        if (!digit && !lower)
            return false;
    }
    return true;
}

static bool link_frame_is_open_payload(const uint8_t *payload)
{
    return link_frame_is_rid(payload) &&
           uuid_text_is_valid((const char *)payload + RID_HEX_LENGTH, UUID_TEXT_LENGTH);
}

/* HELLO and AUTH carry a length-prefixed node id; the payload must be
 * exactly as long as that prefix says. */
static bool link_frame_check_auth_size(const struct link_frame *frame)
{
    size_t id_offset = frame->type == LINK_FRAME_HELLO ? 1 : 0;
    size_t fixed =
        frame->type == LINK_FRAME_HELLO ? LINK_HELLO_FIXED_LENGTH : LINK_AUTH_FIXED_LENGTH;
    size_t id_length = frame->payload[id_offset];

    return id_length >= 1 && id_length <= LINK_NODE_ID_MAX_LENGTH &&
           frame->length == fixed + id_length;
}

static const char *link_frame_check_size(const struct link_frame *frame,
                                         const struct link_frame_rule *rule, size_t max_data)
{
    if (frame->type == LINK_FRAME_DATA)
        return frame->length <= max_data ? NULL : "DATA payload too large";
    if (frame->length < rule->min_length || frame->length > rule->max_length)
        return "wrong payload size";
    if (frame->type == LINK_FRAME_HELLO || frame->type == LINK_FRAME_AUTH)
        return link_frame_check_auth_size(frame) ? NULL : "bad node id length";
    return NULL;
}

static const char *link_frame_check_content(const struct link_frame *frame)
{
    switch (frame->type) {
    case LINK_FRAME_OPEN:
        return link_frame_is_open_payload(frame->payload) ? NULL : "bad OPEN rid or uuid";
    case LINK_FRAME_CREDIT:
        /* A zero grant means nothing; only a broken peer sends one. */
        return link_get_u32(frame->payload) != 0 ? NULL : "zero CREDIT";
    case LINK_FRAME_GOAWAY:
        return link_frame_is_utf8(frame->payload + 2, frame->length - 2)
                   ? NULL
                   : "GOAWAY text is not UTF-8";
    default:
        return NULL;
    }
}

static const char *link_frame_check_header(const struct link_frame *frame,
                                           const struct link_frame_rule *rule)
{
    if (frame->type == LINK_FRAME_DATA ? (frame->flags & ~LINK_DATA_FLAGS_ALL) != 0
                                       : frame->flags != 0)
        return "bad flags";
    if (rule->stream && frame->stream_id == 0)
        return "stream frame on stream 0";
    if (!rule->stream && frame->stream_id != 0)
        return "link frame on a stream";
    return NULL;
}

/* Decode the frame whose header is at header and whose payload is the
 * payload_length bytes after it (the batch framing has been checked). */
static const char *link_frame_decode_one(const uint8_t *header, size_t payload_length,
                                         size_t max_data, struct link_frame *frame)
{
    const struct link_frame_rule *rule;
    const char *problem;

    frame->type = header[0];
    frame->flags = header[1] & (uint8_t)~LINK_FRAME_MORE;
    frame->stream_id = link_get_u32(header + 4);
    frame->payload = header + LINK_FRAME_HEADER_LENGTH;
    frame->length = payload_length;
    rule = link_frame_rule_of(frame->type);
    if (rule == NULL)
        return "unknown frame type";
    problem = link_frame_check_header(frame, rule);
    if (problem == NULL)
        problem = link_frame_check_size(frame, rule, max_data);
    if (problem == NULL)
        problem = link_frame_check_content(frame);
    return problem;
}

/* The last frame of a message: no MORE flag, no length (its payload runs to
 * the end), exactly as a relayd-link.1 frame. */
static const char *link_frame_decode_last(const uint8_t *header, size_t length, size_t max_data,
                                          struct link_frame *frame)
{
    if (length < LINK_FRAME_HEADER_LENGTH)
        return "frame shorter than its header";
    if (header[1] & LINK_FRAME_MORE)
        return "MORE flag on the last frame of a message";
    if (header[2] != 0 || header[3] != 0)
        return "length bytes on the last frame of a message";
    return link_frame_decode_one(header, length - LINK_FRAME_HEADER_LENGTH, max_data, frame);
}

int link_frame_decode(const uint8_t *message, size_t length, size_t max_data,
                      struct link_frame *frame, const char **error)
{
    const char *problem = link_frame_decode_last(message, length, max_data, frame);

    if (problem != NULL && error != NULL)
        *error = problem;
    return problem == NULL ? 0 : -1;
}

void link_batch_start(struct link_batch *batch, const uint8_t *message, size_t length,
                      size_t max_data)
{
    batch->message = message;
    batch->length = length;
    batch->offset = 0;
    batch->max_data = max_data;
    batch->ended = false;
    batch->bad = NULL;
}

/* A MORE frame: its length must leave room for at least one more header. */
static const char *link_batch_decode_more(struct link_batch *batch, struct link_frame *frame)
{
    const uint8_t *header = batch->message + batch->offset;
    size_t left = batch->length - batch->offset - LINK_FRAME_HEADER_LENGTH;
    size_t payload_length = link_get_u16(header + 2);

    if (payload_length > left)
        return "frame length overruns the message";
    batch->offset += LINK_FRAME_HEADER_LENGTH + payload_length;
    return link_frame_decode_one(header, payload_length, batch->max_data, frame);
}

int link_batch_next(struct link_batch *batch, struct link_frame *frame, const char **error)
{
    size_t left = batch->length - batch->offset;
    const char *problem;

    if (batch->bad != NULL) {
        problem = batch->bad;
    } else if (batch->ended) {
        return 0;
    } else if (left == 0) {
        problem = batch->offset == 0 ? "empty message" : "MORE flag on the last frame of a message";
    } else if (left < LINK_FRAME_HEADER_LENGTH) {
        problem = "truncated frame header";
    } else if (batch->message[batch->offset + 1] & LINK_FRAME_MORE) {
        problem = link_batch_decode_more(batch, frame);
    } else {
        problem =
            link_frame_decode_last(batch->message + batch->offset, left, batch->max_data, frame);
        batch->offset = batch->length;
        batch->ended = true;
    }
    if (problem == NULL)
        return 1;
    batch->bad = problem; /* nothing after a bad frame can be trusted */
    if (error != NULL)
        *error = problem;
    return -1;
}

int link_batch_check(const uint8_t *message, size_t length, size_t max_data, const char **error)
{
    struct link_batch batch;
    struct link_frame frame;
    int result;

    link_batch_start(&batch, message, length, max_data);
    while ((result = link_batch_next(&batch, &frame, error)) == 1)
        continue;
    return result;
}

size_t link_frame_write_header(uint8_t *out, uint8_t type, uint8_t flags, uint32_t stream_id)
{
    out[0] = type;
    out[1] = flags;
    out[2] = 0;
    out[3] = 0;
    link_put_u32(out + 4, stream_id);
    return LINK_FRAME_HEADER_LENGTH;
}

int link_frame_set_more(uint8_t *frame, size_t payload_length)
{
    if (payload_length > UINT16_MAX)
        return -1;
    frame[1] |= LINK_FRAME_MORE;
    link_put_u16(frame + 2, (uint16_t)payload_length);
    return 0;
}

size_t link_frame_encode_open(uint8_t *out, uint32_t stream_id, const char *rid,
                              const char *request_uuid)
{
    uint8_t *payload = out + LINK_FRAME_HEADER_LENGTH;

    if (stream_id == 0 || rid == NULL || request_uuid == NULL || strlen(rid) != RID_HEX_LENGTH ||
        strlen(request_uuid) != UUID_TEXT_LENGTH)
        return 0;
    memcpy(payload, rid, RID_HEX_LENGTH);
    memcpy(payload + RID_HEX_LENGTH, request_uuid, UUID_TEXT_LENGTH);
    if (!link_frame_is_open_payload(payload))
        return 0;
    link_frame_write_header(out, LINK_FRAME_OPEN, 0, stream_id);
    return LINK_FRAME_HEADER_LENGTH + LINK_OPEN_PAYLOAD_LENGTH;
}

size_t link_frame_encode_credit(uint8_t *out, uint32_t stream_id, uint32_t bytes)
{
    if (stream_id == 0 || bytes == 0)
        return 0;
    link_frame_write_header(out, LINK_FRAME_CREDIT, 0, stream_id);
    link_put_u32(out + LINK_FRAME_HEADER_LENGTH, bytes);
    return LINK_FRAME_HEADER_LENGTH + 4;
}

size_t link_frame_encode_close(uint8_t *out, uint32_t stream_id, uint16_t code)
{
    if (stream_id == 0)
        return 0;
    link_frame_write_header(out, LINK_FRAME_CLOSE, 0, stream_id);
    link_put_u16(out + LINK_FRAME_HEADER_LENGTH, code);
    return LINK_FRAME_HEADER_LENGTH + 2;
}

static size_t link_frame_encode_ping_type(uint8_t *out, uint8_t type, uint64_t opaque)
{
    link_frame_write_header(out, type, 0, 0);
    link_put_u64(out + LINK_FRAME_HEADER_LENGTH, opaque);
    return LINK_FRAME_HEADER_LENGTH + 8;
}

size_t link_frame_encode_ping(uint8_t *out, uint64_t opaque)
{
    return link_frame_encode_ping_type(out, LINK_FRAME_PING, opaque);
}

size_t link_frame_encode_pong(uint8_t *out, uint64_t opaque)
{
    return link_frame_encode_ping_type(out, LINK_FRAME_PONG, opaque);
}

/* Cut a text to at most limit bytes without splitting a UTF-8 character:
 * back off while the first byte left out is a continuation byte. */
static size_t link_frame_cut_utf8(const char *text, size_t limit)
{
    size_t length = strlen(text);

    if (length <= limit)
        return length;
    length = limit;
    while (length > 0 && ((uint8_t)text[length] & 0xc0) == 0x80)
        length--;
    return length;
}

size_t link_frame_encode_goaway(uint8_t *out, uint16_t code, const char *text)
{
    size_t text_length = text == NULL ? 0 : link_frame_cut_utf8(text, LINK_GOAWAY_TEXT_MAX_LENGTH);

    if (!link_frame_is_utf8((const uint8_t *)text, text_length))
        return 0;
    link_frame_write_header(out, LINK_FRAME_GOAWAY, 0, 0);
    link_put_u16(out + LINK_FRAME_HEADER_LENGTH, code);
    if (text_length > 0)
        memcpy(out + LINK_FRAME_HEADER_LENGTH + 2, text, text_length);
    return LINK_FRAME_HEADER_LENGTH + 2 + text_length;
}

/* The payload readers re-check type and size so that a caller that skipped
 * link_frame_decode, or passed the wrong frame, gets -1 rather than reading
 * past the payload. */
static bool link_frame_is(const struct link_frame *frame, uint8_t type, size_t length)
{
    return frame->type == type && frame->length == length;
}

int link_frame_decode_open(const struct link_frame *frame, char rid[RID_HEX_LENGTH + 1],
                           char request_uuid[UUID_TEXT_LENGTH + 1])
{
    if (!link_frame_is(frame, LINK_FRAME_OPEN, LINK_OPEN_PAYLOAD_LENGTH) ||
        !link_frame_is_open_payload(frame->payload))
        return -1;
    memcpy(rid, frame->payload, RID_HEX_LENGTH);
    rid[RID_HEX_LENGTH] = '\0';
    memcpy(request_uuid, frame->payload + RID_HEX_LENGTH, UUID_TEXT_LENGTH);
    request_uuid[UUID_TEXT_LENGTH] = '\0';
    return 0;
}

int link_frame_decode_credit(const struct link_frame *frame, uint32_t *bytes)
{
    if (!link_frame_is(frame, LINK_FRAME_CREDIT, 4) || link_get_u32(frame->payload) == 0)
        return -1;
    *bytes = link_get_u32(frame->payload);
    return 0;
}

int link_frame_decode_close(const struct link_frame *frame, uint16_t *code)
{
    if (!link_frame_is(frame, LINK_FRAME_CLOSE, 2))
        return -1;
    *code = link_get_u16(frame->payload);
    return 0;
}

int link_frame_decode_ping(const struct link_frame *frame, uint64_t *opaque)
{
    if (!link_frame_is(frame, LINK_FRAME_PING, 8) && !link_frame_is(frame, LINK_FRAME_PONG, 8))
        return -1;
    *opaque = link_get_u64(frame->payload);
    return 0;
}

int link_frame_decode_goaway(const struct link_frame *frame, uint16_t *code,
                             char text[LINK_GOAWAY_TEXT_MAX_LENGTH + 1])
{
    size_t text_length;

    if (frame->type != LINK_FRAME_GOAWAY || frame->length < 2 ||
        frame->length > 2 + LINK_GOAWAY_TEXT_MAX_LENGTH)
        return -1;
    text_length = frame->length - 2;
    if (!link_frame_is_utf8(frame->payload + 2, text_length))
        return -1;
    *code = link_get_u16(frame->payload);
    memcpy(text, frame->payload + 2, text_length);
    text[text_length] = '\0';
    return 0;
}

bool link_frame_allowed_from(uint8_t type, bool from_dialer)
{
    const struct link_frame_rule *rule = link_frame_rule_of(type);

    if (rule == NULL)
        return false;
    return from_dialer ? rule->from_dialer : rule->from_acceptor;
}

const char *link_frame_type_name(uint8_t type)
{
    const struct link_frame_rule *rule = link_frame_rule_of(type);

    return rule == NULL ? "UNKNOWN" : rule->name;
}

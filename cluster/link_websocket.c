/*
 * link_websocket.c - RFC 6455 from the client's side, for the link's dialer.
 *
 * link_dialer.c runs a WebSocket client on an lws raw socket and hands the
 * bytes to these pure functions: the upgrade request (path and subprotocol
 * of link-protocol.md, section 1) and the check of the server's 101 answer,
 * the headers of the server's frames (never masked, so anything a client
 * must refuse is refused here), and our frames, masked eight bytes at a
 * time. Only what a link needs is accepted: no extension, the link
 * subprotocol, control frames within 125 bytes.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "link_frame.h"
#include "link_websocket.h"

static bool link_websocket_opcode_is_known(uint8_t opcode)
{
    return opcode <= LINK_WEBSOCKET_BINARY ||
           (opcode >= LINK_WEBSOCKET_CLOSE && opcode <= LINK_WEBSOCKET_PONG);
}

/* The payload length after the first two header bytes: 7 bits, or 16 or 64
 * bits that follow. Returns the header length, 0 when incomplete. */
static size_t link_websocket_parse_length(const uint8_t *in, size_t available, uint64_t *length)
{
    uint8_t short_length = in[1] & 0x7f;

    if (short_length < 126) {
        *length = short_length;
        return 2;
    }
    if (short_length == 126) {
        if (available < 4)
            return 0;
        *length = link_get_u16(in + 2);
        return 4;
    }
    if (available < 10)
        return 0;
    *length = link_get_u64(in + 2);
    return 10;
}

int link_websocket_parse_header(const uint8_t *in, size_t available,
                                struct link_websocket_header *header, const char **error)
{
    const char *problem = NULL;
    uint8_t opcode;

    if (available < 2)
        return 0;
    opcode = in[0] & 0x0f;
    if (in[0] & 0x70)
        problem = "WebSocket reserved bits set";
    else if (!link_websocket_opcode_is_known(opcode))
        problem = "unknown WebSocket opcode";
    else if (in[1] & 0x80)
        problem = "masked WebSocket frame from the server";
    if (problem == NULL) {
        header->header_length = link_websocket_parse_length(in, available, &header->length);
        if (header->header_length == 0)
            return 0;
        header->fin = (in[0] & 0x80) != 0;
        header->opcode = opcode;
        if (header->length >> 63)
            problem = "WebSocket length out of range";
        else if (opcode >= LINK_WEBSOCKET_CLOSE &&
                 (!header->fin || header->length > LINK_WEBSOCKET_CONTROL_MAX_LENGTH))
            problem = "bad WebSocket control frame";
    }
    if (problem == NULL)
        return 1;
    if (error != NULL)
        *error = problem;
    return -1;
}

void link_websocket_mask(uint8_t *data, size_t length, const uint8_t mask[4])
{
    uint8_t pattern[8];
    uint64_t mask_word, word;
    size_t i = 0;

    /* Eight bytes at a time: the pattern repeats every four, so a word
     * starting at a multiple of 8 always starts at mask byte 0. */
    memcpy(pattern, mask, 4);
    memcpy(pattern + 4, mask, 4);
    memcpy(&mask_word, pattern, 8);
    for (; i + 8 <= length; i += 8) {
        memcpy(&word, data + i, 8);
        word ^= mask_word;
        memcpy(data + i, &word, 8);
    }
    for (; i < length; i++)
        data[i] ^= mask[i & 3];
}

size_t link_websocket_frame_client(uint8_t *payload, size_t length, uint8_t opcode,
                                   const uint8_t mask[4])
{
    size_t header_length = length < 126 ? 6 : length <= UINT16_MAX ? 8 : 14;
    uint8_t *out = payload - header_length;

    out[0] = (uint8_t)(0x80 | opcode);
    if (length < 126) {
        out[1] = (uint8_t)(0x80 | length);
    } else if (length <= UINT16_MAX) {
        out[1] = 0x80 | 126;
        link_put_u16(out + 2, (uint16_t)length);
    } else {
        out[1] = 0x80 | 127;
        link_put_u64(out + 2, (uint64_t)length);
    }
    memcpy(out + header_length - 4, mask, 4);
    link_websocket_mask(payload, length, mask);
    return header_length;
}

void link_websocket_make_key(const uint8_t random[16], char key[LINK_WEBSOCKET_KEY_LENGTH + 1])
{
    EVP_EncodeBlock((unsigned char *)key, random, 16);
}

size_t link_websocket_write_request(char *out, size_t size, const char *host, int port,
                                    const char key[LINK_WEBSOCKET_KEY_LENGTH + 1])
{
    bool literal_ipv6 = strchr(host, ':') != NULL;
    int length = snprintf(out, size,
                          "GET " LINK_PATH " HTTP/1.1\r\n"
                          "Host: %s%s%s:%d\r\n"
                          "Upgrade: websocket\r\n"
                          "Connection: Upgrade\r\n"
                          "Sec-WebSocket-Key: %s\r\n"
                          "Sec-WebSocket-Version: 13\r\n"
                          "Sec-WebSocket-Protocol: " LINK_SUBPROTOCOL "\r\n"
                          "\r\n",
                          literal_ipv6 ? "[" : "", host, literal_ipv6 ? "]" : "", port, key);

    return length > 0 && (size_t)length < size ? (size_t)length : 0;
}

size_t link_websocket_response_end(const uint8_t *in, size_t length)
{
    for (size_t i = 0; i + 4 <= length; i++)
        if (memcmp(in + i, "\r\n\r\n", 4) == 0)
            return i + 4;
    return 0;
}

/* base64(SHA-1(key || the RFC 6455 GUID)). */
static void link_websocket_accept_of(const char key[LINK_WEBSOCKET_KEY_LENGTH + 1],
                                     char accept[LINK_WEBSOCKET_ACCEPT_LENGTH + 1])
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    char input[LINK_WEBSOCKET_KEY_LENGTH + sizeof(guid)];
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_length = 0;

    memcpy(input, key, LINK_WEBSOCKET_KEY_LENGTH);
    memcpy(input + LINK_WEBSOCKET_KEY_LENGTH, guid, sizeof(guid) - 1);
    if (EVP_Digest(input, LINK_WEBSOCKET_KEY_LENGTH + sizeof(guid) - 1, digest, &digest_length,
                   EVP_sha1(), NULL) != 1 ||
        digest_length != 20) {
        accept[0] = '\0'; /* matches no answer */
        return;
    }
    EVP_EncodeBlock((unsigned char *)accept, digest, 20);
}

/* Case-insensitive comparison of a counted string with a C string. */
static bool link_websocket_equals(const uint8_t *text, size_t length, const char *expected)
{
    if (strlen(expected) != length)
        return false;
    for (size_t i = 0; i < length; i++) {
        uint8_t a = text[i], b = (uint8_t)expected[i];
        if (a >= 'A' && a <= 'Z')
            a = (uint8_t)(a - 'A' + 'a');
        if (b >= 'A' && b <= 'Z')
            b = (uint8_t)(b - 'A' + 'a');
        if (a != b)
            return false;
    }
    return true;
}

/* Whether a comma-separated header value lists token (any case). */
static bool link_websocket_lists_token(const uint8_t *value, size_t length, const char *token)
{
    size_t start = 0;

    while (start <= length) {
        size_t end = start;
        while (end < length && value[end] != ',')
            end++;
        size_t first = start, last = end;
        while (first < last && (value[first] == ' ' || value[first] == '\t'))
            first++;
        while (last > first && (value[last - 1] == ' ' || value[last - 1] == '\t'))
            last--;
        if (link_websocket_equals(value + first, last - first, token))
            return true;
        start = end + 1;
    }
    return false;
}

/* What the header lines of the answer said. */
struct link_websocket_answer {
    bool upgrade;
    bool connection;
    bool accept;
    bool protocol;
    bool extensions;
};

static void link_websocket_note_header(struct link_websocket_answer *answer, const uint8_t *name,
                                       size_t name_length, const uint8_t *value,
                                       size_t value_length, const char *accept)
{
    if (link_websocket_equals(name, name_length, "upgrade"))
        answer->upgrade = link_websocket_equals(value, value_length, "websocket");
    else if (link_websocket_equals(name, name_length, "connection"))
        answer->connection = link_websocket_lists_token(value, value_length, "upgrade");
    else if (link_websocket_equals(name, name_length, "sec-websocket-accept"))
        answer->accept = value_length == strlen(accept) && value_length > 0 &&
                         memcmp(value, accept, value_length) == 0;
    else if (link_websocket_equals(name, name_length, "sec-websocket-protocol"))
        answer->protocol = value_length == strlen(LINK_SUBPROTOCOL) &&
                           memcmp(value, LINK_SUBPROTOCOL, value_length) == 0;
    else if (link_websocket_equals(name, name_length, "sec-websocket-extensions"))
        answer->extensions = true;
}

/* One "Name: value" line (without its CRLF); false when it has no colon. */
static bool link_websocket_read_header_line(struct link_websocket_answer *answer,
                                            const uint8_t *line, size_t length, const char *accept)
{
    const uint8_t *colon = memchr(line, ':', length);
    if (colon == NULL || colon == line)
        return false;
    size_t name_length = (size_t)(colon - line);
    size_t first = name_length + 1, last = length;
    while (first < last && (line[first] == ' ' || line[first] == '\t'))
        first++;
    while (last > first && (line[last - 1] == ' ' || line[last - 1] == '\t'))
        last--;
    link_websocket_note_header(answer, line, name_length, line + first, last - first, accept);
    return true;
}

static bool link_websocket_is_101(const uint8_t *line, size_t length)
{
    static const char status[] = "HTTP/1.1 101";
    size_t status_length = sizeof(status) - 1;

    return length >= status_length && memcmp(line, status, status_length) == 0 &&
           (length == status_length || line[status_length] == ' ');
}

static const char *link_websocket_verdict(const struct link_websocket_answer *answer)
{
    if (!answer->upgrade || !answer->connection)
        return "upgrade answer without Upgrade: websocket and Connection: upgrade";
    if (!answer->accept)
        return "upgrade answer with a wrong Sec-WebSocket-Accept";
    if (!answer->protocol)
        return "upgrade answer without the link subprotocol";
    if (answer->extensions)
        return "upgrade answer with a WebSocket extension";
    return NULL;
}

int link_websocket_check_response(const uint8_t *head, size_t length,
                                  const char key[LINK_WEBSOCKET_KEY_LENGTH + 1], const char **error)
{
    struct link_websocket_answer answer = {0};
    char accept[LINK_WEBSOCKET_ACCEPT_LENGTH + 1];
    const char *problem = "upgrade answer not terminated";
    size_t line_start = 0;
    bool status_seen = false;

    link_websocket_accept_of(key, accept);
    while (line_start < length) {
        const uint8_t *line = head + line_start;
        const uint8_t *crlf = NULL;
        for (size_t i = line_start; i + 1 < length && crlf == NULL; i++)
            if (head[i] == '\r' && head[i + 1] == '\n')
                crlf = head + i;
        if (crlf == NULL)
            break;
        size_t line_length = (size_t)(crlf - line);
        line_start += line_length + 2;
        if (!status_seen) {
            status_seen = true;
            if (!link_websocket_is_101(line, line_length)) {
                problem = "upgrade refused";
                break;
            }
        } else if (line_length == 0) {
            problem = link_websocket_verdict(&answer); /* the blank line ends the head */
            break;
        } else if (!link_websocket_read_header_line(&answer, line, line_length, accept)) {
            problem = "malformed header in the upgrade answer";
            break;
        }
    }
    if (problem == NULL)
        return 0;
    if (error != NULL)
        *error = problem;
    return -1;
}

/*
 * raw_ws.c - handshake and frames on a plain socket (see raw_ws.h).
 *
 * Every read is bounded by a deadline through poll(); the socket stays
 * blocking otherwise. The Sec-WebSocket-Key is a fixed sample value: the
 * accept hash is not verified, the tests only need the relay's close frame.
 * The steps themselves read and write through a struct raw_ws_stream, so
 * the cluster harness' TLS links share them; raw_ws_open's socket is just
 * the plainest such stream.
 */
#include "raw_ws.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "ws_client.h"

/* Bound on a frame's payload: a garbled length is not a 2^63-byte malloc. */
#define RAW_WS_MAX_PAYLOAD (64 * 1024 * 1024)

/* read_exact of a plain socket (context: the int descriptor). */
static int raw_ws_socket_read(void *context, void *buffer, size_t length, int64_t deadline)
{
    int fd = *(const int *)context;
    unsigned char *bytes = buffer;

    while (length) {
        int left = harness_remaining_ms(deadline);
        struct pollfd wait = {fd, POLLIN, 0};
        ssize_t got;

        if (left <= 0 || poll(&wait, 1, left) != 1)
            return -1;
        got = recv(fd, bytes, length, 0);
        if (got == 0 || (got < 0 && errno != EINTR))
            return -2;
        if (got > 0) {
            bytes += got;
            length -= (size_t)got;
        }
    }
    return 0;
}

/* write_all of a plain blocking socket: one send() takes it all. */
static int raw_ws_socket_write(void *context, const void *data, size_t length)
{
    return send(*(const int *)context, data, length, MSG_NOSIGNAL) == (ssize_t)length ? 0 : -1;
}

/* The stream of fd; fd must outlive it (the stream points to it). */
static struct raw_ws_stream raw_ws_socket_stream(int *fd)
{
    struct raw_ws_stream stream = {raw_ws_socket_read, raw_ws_socket_write, fd};

    return stream;
}

int raw_ws_stream_send_upgrade(const struct raw_ws_stream *stream, const char *host, int port,
                               const char *path, const char *subprotocol)
{
    char request[512];
    int length = snprintf(request, sizeof(request),
                          "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                          "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                          "Sec-WebSocket-Version: 13\r\n%s%s%s\r\n",
                          path, host, port, subprotocol ? "Sec-WebSocket-Protocol: " : "",
                          subprotocol ? subprotocol : "", subprotocol ? "\r\n" : "");

    if (length < 0 || (size_t)length >= sizeof(request))
        return -1;
    return stream->write_all(stream->context, request, (size_t)length);
}

int raw_ws_stream_read_head(const struct raw_ws_stream *stream, int64_t deadline, char *head,
                            size_t head_size, int *http_status)
{
    size_t length = 0;

    while (length < head_size - 1) {
        int result = stream->read_exact(stream->context, head + length, 1, deadline);

        if (result < 0)
            return result;
        length++;
        head[length] = '\0';
        if (length >= 4 && !memcmp(head + length - 4, "\r\n\r\n", 4))
            return sscanf(head, "HTTP/1.%*d %d", http_status) == 1 ? 0 : -2;
    }
    return -2;
}

int raw_ws_stream_send_frame(const struct raw_ws_stream *stream, int opcode, const void *data,
                             size_t length)
{
    const unsigned char mask[4] = {0x12, 0x34, 0x56, 0x78};
    unsigned char *frame = malloc(length + 14);
    size_t header = 2, i;
    int result;

    if (!frame)
        return -1;
    frame[0] = (unsigned char)(0x80 | opcode);
    if (length < 126) {
        frame[1] = (unsigned char)(0x80 | length);
    } else if (length < 65536) {
        frame[1] = 0x80 | 126;
        frame[2] = (unsigned char)(length >> 8);
        frame[3] = (unsigned char)length;
        header = 4;
    } else {
        frame[1] = 0x80 | 127;
        for (i = 0; i < 8; i++)
            frame[2 + i] = (unsigned char)((uint64_t)length >> (56 - 8 * i));
        header = 10;
    }
    memcpy(frame + header, mask, 4);
    header += 4;
    for (i = 0; i < length; i++)
        frame[header + i] = ((const unsigned char *)data)[i] ^ mask[i % 4];
    result = stream->write_all(stream->context, frame, header + length);
    free(frame);
    return result;
}

int raw_ws_stream_read_frame(const struct raw_ws_stream *stream, int64_t deadline,
                             bool accept_masked, int *opcode, unsigned char **payload,
                             size_t *length)
{
    unsigned char header[8], mask[4] = {0};
    bool masked;
    uint64_t size;
    int result, i;

    *payload = NULL;
    *length = 0;
    if ((result = stream->read_exact(stream->context, header, 2, deadline)) < 0)
        return result;
    masked = header[1] & 0x80;
    if (masked && !accept_masked)
        return -2;
    *opcode = header[0] & 0x8f; /* FIN bit and opcode */
    size = header[1] & 0x7f;
    if (size == 126) {
        if ((result = stream->read_exact(stream->context, header, 2, deadline)) < 0)
            return result;
        size = ((uint64_t)header[0] << 8) | header[1];
    } else if (size == 127) {
        if ((result = stream->read_exact(stream->context, header, 8, deadline)) < 0)
            return result;
        for (size = 0, i = 0; i < 8; i++)
            size = (size << 8) | header[i];
    }
    if (masked && (result = stream->read_exact(stream->context, mask, 4, deadline)) < 0)
        return result;
    if (size > RAW_WS_MAX_PAYLOAD || !(*payload = malloc(size + 1)))
        return -2;
    if ((result = stream->read_exact(stream->context, *payload, size, deadline)) < 0) {
        free(*payload);
        *payload = NULL;
        return result;
    }
    for (i = 0; masked && (uint64_t)i < size; i++)
        (*payload)[i] ^= mask[i % 4];
    (*payload)[size] = '\0';
    *length = size;
    return 0;
}

int raw_ws_open(const char *host, int port, int timeout_ms, int *http_status)
{
    int64_t deadline = ws_client_now_ms() + timeout_ms;
    int fd = harness_connect(host, port, deadline), flags;
    struct raw_ws_stream stream = raw_ws_socket_stream(&fd);
    char head[2048];

    *http_status = 0;
    if (fd < 0)
        return -1;
    /* blocking again: raw_ws_send writes a whole frame with one send() */
    flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0 ||
        raw_ws_stream_send_upgrade(&stream, host, port, "/", NULL) < 0 ||
        raw_ws_stream_read_head(&stream, deadline, head, sizeof(head), http_status) < 0 ||
        *http_status != 101) {
        close(fd);
        return -1;
    }
    return fd;
}

int raw_ws_send(int fd, int opcode, const void *data, size_t length)
{
    struct raw_ws_stream stream = raw_ws_socket_stream(&fd);

    return raw_ws_stream_send_frame(&stream, opcode, data, length);
}

int raw_ws_read_frame(int fd, int timeout_ms, int *opcode, unsigned char **payload, size_t *length)
{
    struct raw_ws_stream stream = raw_ws_socket_stream(&fd);

    /* server frames are never masked; every failure is -1 here */
    if (raw_ws_stream_read_frame(&stream, ws_client_now_ms() + timeout_ms, false, opcode, payload,
                                 length) < 0)
        return -1;
    return 0;
}

int raw_ws_read_close(int fd, int timeout_ms, int *code, char *reason, size_t reason_size)
{
    int64_t deadline = ws_client_now_ms() + timeout_ms;

    while (ws_client_now_ms() < deadline) {
        unsigned char *payload;
        size_t length;
        int opcode;

        if (raw_ws_read_frame(fd, harness_remaining_ms(deadline), &opcode, &payload, &length) < 0)
            return -1;
        if ((opcode & 0x0f) == 8) {
            *code = length >= 2 ? (payload[0] << 8) | payload[1] : 1005;
            snprintf(reason, reason_size, "%.*s", length > 2 ? (int)(length - 2) : 0,
                     length > 2 ? (const char *)payload + 2 : "");
            free(payload);
            return 0;
        }
        free(payload);
    }
    return -1;
}

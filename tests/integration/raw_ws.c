/*
 * raw_ws.c - handshake and frames on a plain socket (see raw_ws.h).
 *
 * Every read is bounded by a deadline through poll(); the socket stays
 * blocking otherwise. The Sec-WebSocket-Key is a fixed sample value: the
 * accept hash is not verified, the tests only need the relay's close frame.
 */
#include "raw_ws.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int64_t raw_ws_now_ms(void)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* Read exactly length bytes before the deadline. Returns 0 or -1. */
static int raw_ws_read_exact(int fd, void *buffer, size_t length, int64_t deadline)
{
    unsigned char *bytes = buffer;

    while (length) {
        int64_t left = deadline - raw_ws_now_ms();
        struct pollfd wait = {fd, POLLIN, 0};
        ssize_t got;

        if (left <= 0 || poll(&wait, 1, (int)left) != 1)
            return -1;
        got = recv(fd, bytes, length, 0);
        if (got == 0 || (got < 0 && errno != EINTR))
            return -1;
        if (got > 0) {
            bytes += got;
            length -= (size_t)got;
        }
    }
    return 0;
}

static int raw_ws_connect(const char *host, int port)
{
    struct sockaddr_in6 ipv6 = {0};
    struct sockaddr_in ipv4 = {0};
    int fd;

    if (inet_pton(AF_INET, host, &ipv4.sin_addr) == 1) {
        ipv4.sin_family = AF_INET;
        ipv4.sin_port = htons((uint16_t)port);
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&ipv4, sizeof(ipv4)) == 0)
            return fd;
    } else if (inet_pton(AF_INET6, host, &ipv6.sin6_addr) == 1) {
        ipv6.sin6_family = AF_INET6;
        ipv6.sin6_port = htons((uint16_t)port);
        fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&ipv6, sizeof(ipv6)) == 0)
            return fd;
    } else {
        return -1;
    }
    if (fd >= 0)
        close(fd);
    return -1;
}

/* Read the response head byte by byte up to the blank line (it is short;
 * reading further could swallow the first frame). */
static int raw_ws_read_head(int fd, int64_t deadline, int *http_status)
{
    char head[2048];
    size_t length = 0;

    while (length < sizeof(head) - 1) {
        if (raw_ws_read_exact(fd, head + length, 1, deadline) < 0)
            return -1;
        length++;
        head[length] = '\0';
        if (length >= 4 && !memcmp(head + length - 4, "\r\n\r\n", 4))
            return sscanf(head, "HTTP/1.1 %d", http_status) == 1 ? 0 : -1;
    }
    return -1;
}

int raw_ws_open(const char *host, int port, int timeout_ms, int *http_status)
{
    int64_t deadline = raw_ws_now_ms() + timeout_ms;
    char request[512];
    int fd, length;

    *http_status = 0;
    fd = raw_ws_connect(host, port);
    if (fd < 0)
        return -1;
    length = snprintf(request, sizeof(request),
                      "GET / HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                      "Sec-WebSocket-Version: 13\r\n\r\n",
                      host, port);
    if (send(fd, request, (size_t)length, MSG_NOSIGNAL) != length ||
        raw_ws_read_head(fd, deadline, http_status) < 0 || *http_status != 101) {
        close(fd);
        return -1;
    }
    return fd;
}

int raw_ws_send(int fd, int opcode, const void *data, size_t length)
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
    result = send(fd, frame, header + length, MSG_NOSIGNAL) == (ssize_t)(header + length) ? 0 : -1;
    free(frame);
    return result;
}

int raw_ws_read_frame(int fd, int timeout_ms, int *opcode, unsigned char **payload, size_t *length)
{
    int64_t deadline = raw_ws_now_ms() + timeout_ms;
    unsigned char header[8];
    uint64_t size;
    int i;

    *payload = NULL;
    if (raw_ws_read_exact(fd, header, 2, deadline) < 0 || (header[1] & 0x80))
        return -1;              /* server frames are never masked */
    *opcode = header[0] & 0x8f; /* FIN bit and opcode */
    size = header[1] & 0x7f;
    if (size == 126) {
        if (raw_ws_read_exact(fd, header, 2, deadline) < 0)
            return -1;
        size = ((uint64_t)header[0] << 8) | header[1];
    } else if (size == 127) {
        if (raw_ws_read_exact(fd, header, 8, deadline) < 0)
            return -1;
        for (size = 0, i = 0; i < 8; i++)
            size = (size << 8) | header[i];
    }
    if (size > 64 * 1024 * 1024 || !(*payload = malloc(size + 1)))
        return -1;
    if (raw_ws_read_exact(fd, *payload, size, deadline) < 0) {
        free(*payload);
        *payload = NULL;
        return -1;
    }
    (*payload)[size] = '\0';
    *length = size;
    return 0;
}

int raw_ws_read_close(int fd, int timeout_ms, int *code, char *reason, size_t reason_size)
{
    int64_t deadline = raw_ws_now_ms() + timeout_ms;

    while (raw_ws_now_ms() < deadline) {
        unsigned char *payload;
        size_t length;
        int opcode;

        if (raw_ws_read_frame(fd, (int)(deadline - raw_ws_now_ms()), &opcode, &payload, &length) <
            0)
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

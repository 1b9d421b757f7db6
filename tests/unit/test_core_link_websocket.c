/*
 * test_core_link_websocket.c - the dialer's WebSocket client codec
 * (cluster/link_websocket.c), checked against RFC 6455: headers of server
 * frames and the ones a client must refuse, masking and client frames of
 * every length form, the upgrade request and the check of its answer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "link_frame.h"
#include "link_websocket.h"

static void test_ws_parse_server_headers(void **state)
{
    struct link_websocket_header header;
    const char *error = NULL;
    static const uint8_t small[] = {0x82, 0x05};
    static const uint8_t medium[] = {0x02, 126, 0x01, 0x00};
    static const uint8_t large[] = {0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0};
    static const uint8_t ping[] = {0x89, 125};

    assert_int_equal(link_websocket_parse_header(small, 1, &header, &error), 0);
    assert_int_equal(link_websocket_parse_header(small, 2, &header, &error), 1);
    assert_true(header.fin);
    assert_int_equal(header.opcode, LINK_WEBSOCKET_BINARY);
    assert_int_equal(header.length, 5);
    assert_int_equal(header.header_length, 2);
    assert_int_equal(link_websocket_parse_header(medium, 3, &header, &error), 0);
    assert_int_equal(link_websocket_parse_header(medium, 4, &header, &error), 1);
    assert_false(header.fin);
    assert_int_equal(header.length, 256);
    assert_int_equal(header.header_length, 4);
    assert_int_equal(link_websocket_parse_header(large, 9, &header, &error), 0);
    assert_int_equal(link_websocket_parse_header(large, 10, &header, &error), 1);
    assert_int_equal(header.length, 65536);
    assert_int_equal(header.header_length, 10);
    assert_int_equal(link_websocket_parse_header(ping, 2, &header, &error), 1);
    assert_int_equal(header.opcode, LINK_WEBSOCKET_PING);
}

static void assert_ws_header_fails(const uint8_t *in, size_t length)
{
    struct link_websocket_header header;
    const char *error = NULL;

    assert_int_equal(link_websocket_parse_header(in, length, &header, &error), -1);
    assert_non_null(error);
}

static void test_ws_parse_refusals(void **state)
{
    static const uint8_t masked[] = {0x82, 0x85};
    static const uint8_t reserved[] = {0xc2, 0x01};
    static const uint8_t unknown[] = {0x83, 0x01};
    static const uint8_t fragmented_ping[] = {0x09, 0x00};
    static const uint8_t long_close[] = {0x88, 126, 0x00, 0x7e};
    static const uint8_t huge[] = {0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0};

    assert_ws_header_fails(masked, sizeof(masked));
    assert_ws_header_fails(reserved, sizeof(reserved));
    assert_ws_header_fails(unknown, sizeof(unknown));
    assert_ws_header_fails(fragmented_ping, sizeof(fragmented_ping));
    assert_ws_header_fails(long_close, sizeof(long_close));
    assert_ws_header_fails(huge, sizeof(huge));
}

/* Client frames: FIN, the mask bit, the shortest length form, the key, and
 * the payload XORed with it (masking twice gives the payload back). */
static void test_ws_client_frames(void **state)
{
    static const uint8_t mask[4] = {0x11, 0x22, 0x33, 0x44};
    uint8_t buffer[LINK_WEBSOCKET_HEADER_MAX_LENGTH + 70000], original[70000];
    size_t sizes[] = {0, 1, 125, 126, 65535, 65536, 69999};

    for (size_t i = 0; i < sizeof(original); i++)
        original[i] = (uint8_t)(i * 7 + 3);
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        size_t length = sizes[s];
        uint8_t *payload = buffer + LINK_WEBSOCKET_HEADER_MAX_LENGTH;
        memcpy(payload, original, length);
        size_t header_length =
            link_websocket_frame_client(payload, length, LINK_WEBSOCKET_BINARY, mask);
        const uint8_t *out = payload - header_length;
        assert_int_equal(out[0], 0x82);
        assert_int_equal(out[1] & 0x80, 0x80);
        if (length < 126) {
            assert_int_equal(header_length, 6);
            assert_int_equal(out[1] & 0x7f, length);
        } else if (length <= 65535) {
            assert_int_equal(header_length, 8);
            assert_int_equal(link_get_u16(out + 2), length);
        } else {
            assert_int_equal(header_length, 14);
            assert_true(link_get_u64(out + 2) == length);
        }
        assert_memory_equal(out + header_length - 4, mask, 4);
        for (size_t j = 0; j < length; j++)
            if (payload[j] != (original[j] ^ mask[j % 4]))
                fail_msg("size %zu: byte %zu not masked", length, j);
        link_websocket_mask(payload, length, mask);
        if (length > 0)
            assert_memory_equal(payload, original, length);
    }
}

static void test_ws_upgrade_request(void **state)
{
    static const uint8_t random[16] = "the sample nonce";
    char key[LINK_WEBSOCKET_KEY_LENGTH + 1], request[512];

    link_websocket_make_key(random, key);
    assert_string_equal(key, "dGhlIHNhbXBsZSBub25jZQ==");
    size_t length = link_websocket_write_request(request, sizeof(request), "10.0.0.1", 11062, key);
    assert_true(length > 0);
    assert_non_null(strstr(request, "GET /cluster HTTP/1.1\r\n"));
    assert_non_null(strstr(request, "Host: 10.0.0.1:11062\r\n"));
    assert_non_null(strstr(request, "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"));
    assert_non_null(strstr(request, "Sec-WebSocket-Protocol: " LINK_SUBPROTOCOL "\r\n"));
    assert_non_null(strstr(request, "Sec-WebSocket-Version: 13\r\n"));
    assert_int_equal(memcmp(request + length - 4, "\r\n\r\n", 4), 0);
    link_websocket_write_request(request, sizeof(request), "::1", 11062, key);
    assert_non_null(strstr(request, "Host: [::1]:11062\r\n"));
    assert_int_equal(link_websocket_write_request(request, 40, "10.0.0.1", 11062, key), 0);
}

#define ANSWER_HEAD "HTTP/1.1 101 Switching Protocols\r\n"
#define ANSWER_ACCEPT "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
#define ANSWER_PROTOCOL "Sec-WebSocket-Protocol: " LINK_SUBPROTOCOL "\r\n"
#define ANSWER_UPGRADE "Upgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\n"

static int check_answer(const char *answer)
{
    const char *error = NULL;
    size_t length = strlen(answer);
    int result = link_websocket_check_response((const uint8_t *)answer, length,
                                               "dGhlIHNhbXBsZSBub25jZQ==", &error);
    if (result != 0)
        assert_non_null(error);
    return result;
}

/* The RFC 6455 example key and accept value. */
static void test_ws_upgrade_answer(void **state)
{
    const char *good = ANSWER_HEAD ANSWER_UPGRADE ANSWER_ACCEPT ANSWER_PROTOCOL "\r\n";

    assert_int_equal(link_websocket_response_end((const uint8_t *)good, strlen(good)),
                     strlen(good));
    assert_int_equal(link_websocket_response_end((const uint8_t *)good, strlen(good) - 1), 0);
    assert_int_equal(check_answer(good), 0);
    assert_int_equal(check_answer("HTTP/1.1 403 Forbidden\r\n\r\n"), -1);
    assert_int_equal(
        check_answer("HTTP/1.1 1010 x\r\n" ANSWER_UPGRADE ANSWER_ACCEPT ANSWER_PROTOCOL "\r\n"),
        -1);
    assert_int_equal(
        check_answer(ANSWER_HEAD ANSWER_UPGRADE
                     "Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n" ANSWER_PROTOCOL
                     "\r\n"),
        -1);
    assert_int_equal(check_answer(ANSWER_HEAD ANSWER_UPGRADE ANSWER_ACCEPT "\r\n"), -1);
    assert_int_equal(check_answer(ANSWER_HEAD ANSWER_UPGRADE ANSWER_ACCEPT
                                  "Sec-WebSocket-Protocol: relayd-link.1\r\n\r\n"),
                     -1);
    assert_int_equal(check_answer(ANSWER_HEAD ANSWER_ACCEPT ANSWER_PROTOCOL "\r\n"), -1);
    assert_int_equal(check_answer(ANSWER_HEAD ANSWER_UPGRADE ANSWER_ACCEPT ANSWER_PROTOCOL
                                  "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n"),
                     -1);
    assert_int_equal(check_answer(ANSWER_HEAD "no colon here\r\n\r\n"), -1);
    assert_int_equal(check_answer(ANSWER_HEAD ANSWER_UPGRADE), -1); /* no blank line */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ws_parse_server_headers), cmocka_unit_test(test_ws_parse_refusals),
        cmocka_unit_test(test_ws_client_frames),        cmocka_unit_test(test_ws_upgrade_request),
        cmocka_unit_test(test_ws_upgrade_answer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_core_frame_queue.c - the session's pre-framed output queue: frame
 * headers at every length boundary and for every opcode/FIN combination,
 * blocks sized to the traffic (small or exact when the queue is empty,
 * coalescing behind a backlog), payload accounting and spare-block reuse.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "frame_queue.h"
#include "relay/metrics.h"

static void assert_header(size_t length, unsigned flags, const unsigned char *expected,
                          size_t expected_length)
{
    unsigned char header[FRAME_QUEUE_HEADER_MAX];
    size_t header_length = frame_queue_encode_header(header, length, flags);
    assert_int_equal(header_length, expected_length);
    assert_memory_equal(header, expected, expected_length);
}

static void test_header_lengths(void **state)
{
    (void)state;
    const unsigned flags = FRAME_FIRST | FRAME_FINAL;
    assert_header(0, flags, (const unsigned char[]){0x82, 0x00}, 2);
    assert_header(125, flags, (const unsigned char[]){0x82, 125}, 2);
    assert_header(126, flags, (const unsigned char[]){0x82, 126, 0x00, 126}, 4);
    assert_header(65535, flags, (const unsigned char[]){0x82, 126, 0xff, 0xff}, 4);
    assert_header(65536, flags, (const unsigned char[]){0x82, 127, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00},
                  10);
    assert_header(0x12345678, flags,
                  (const unsigned char[]){0x82, 127, 0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78}, 10);
}

static void test_header_opcodes(void **state)
{
    (void)state;
    /* text / binary only on a message's first piece; continuation after */
    assert_header(1, FRAME_FIRST | FRAME_FINAL | FRAME_TEXT, (const unsigned char[]){0x81, 1}, 2);
    assert_header(1, FRAME_FIRST | FRAME_TEXT, (const unsigned char[]){0x01, 1}, 2);
    assert_header(1, FRAME_FIRST, (const unsigned char[]){0x02, 1}, 2);
    assert_header(1, 0, (const unsigned char[]){0x00, 1}, 2);
    assert_header(1, FRAME_FINAL, (const unsigned char[]){0x80, 1}, 2);
    assert_header(1, FRAME_FINAL | FRAME_TEXT, (const unsigned char[]){0x80, 1}, 2);
}

static void test_lone_small_frames_share_a_small_block(void **state)
{
    (void)state;
    struct frame_queue queue = {0};
    assert_int_equal(frame_queue_push(&queue, "hello", 5, FRAME_FIRST | FRAME_FINAL), 0);
    assert_int_equal(frame_queue_push(&queue, "world!", 6, FRAME_FIRST | FRAME_FINAL), 0);
    assert_int_equal(queue.bytes, 11);
    assert_int_equal(relay_metrics.send_queue_bytes, 11);
    struct frame_block *block = frame_queue_pop(&queue);
    assert_non_null(block);
    assert_int_equal(block->capacity, FRAME_QUEUE_BLOCK_MIN);
    assert_int_equal(block->used, 15);
    assert_memory_equal(frame_block_data(block), "\x82\x05hello\x82\x06world!", 15);
    assert_true(frame_queue_is_empty(&queue));
    assert_int_equal(queue.bytes, 0);
    assert_int_equal(relay_metrics.send_queue_bytes, 0);
    frame_block_free(block);
}

static void test_lone_large_frame_gets_exact_block(void **state)
{
    (void)state;
    struct frame_queue queue = {0};
    unsigned char payload[5000];
    memset(payload, 0x5a, sizeof(payload));
    assert_int_equal(frame_queue_push(&queue, payload, sizeof(payload), FRAME_FIRST | FRAME_FINAL),
                     0);
    struct frame_block *block = frame_queue_pop(&queue);
    assert_non_null(block);
    assert_int_equal(block->capacity, 4 + sizeof(payload));
    assert_int_equal(block->used, 4 + sizeof(payload));
    assert_true(frame_queue_is_empty(&queue));
    frame_block_free(block);
}

static void test_backlog_coalesces(void **state)
{
    (void)state;
    struct frame_queue queue = {0};
    unsigned char payload[128];
    memset(payload, 0xab, sizeof(payload));
    /* 1 small block, then 64 KiB blocks of 132-byte frames */
    const int frames = 1000;
    for (int i = 0; i < frames; i++)
        assert_int_equal(
            frame_queue_push(&queue, payload, sizeof(payload), FRAME_FIRST | FRAME_FINAL), 0);
    assert_int_equal(queue.bytes, frames * sizeof(payload));

    int blocks = 0, decoded = 0;
    struct frame_block *block;
    while ((block = frame_queue_pop(&queue)) != NULL) {
        assert_true(block->used <= FRAME_QUEUE_BLOCK_MAX || blocks == 0);
        /* walk the frames in the block: whole frames only */
        const unsigned char *at = frame_block_data(block);
        size_t offset = 0;
        while (offset < block->used) {
            assert_int_equal(at[offset], 0x82);
            assert_int_equal(at[offset + 1], 126);
            size_t length = (size_t)at[offset + 2] << 8 | at[offset + 3];
            assert_int_equal(length, sizeof(payload));
            assert_memory_equal(at + offset + 4, payload, length);
            offset += 4 + length;
            decoded++;
        }
        assert_int_equal(offset, block->used);
        blocks++;
        frame_block_free(block);
    }
    assert_int_equal(decoded, frames);
    /* 132 000 bytes: a small block of 7 frames, then 496 per 64 KiB block */
    const int first = FRAME_QUEUE_BLOCK_MIN / 132;
    assert_int_equal(blocks, 1 + (frames - first + 495) / 496);
    assert_int_equal(relay_metrics.send_queue_bytes, 0);
    frame_queue_release_spares();
}

static void test_large_piece_own_block(void **state)
{
    (void)state;
    struct frame_queue queue = {0};
    size_t big = FRAME_QUEUE_BLOCK_MAX + 100;
    unsigned char *payload = calloc(1, big);
    assert_non_null(payload);
    assert_int_equal(frame_queue_push(&queue, "x", 1, FRAME_FIRST), 0);
    assert_int_equal(frame_queue_push(&queue, payload, big, 0), 0);
    assert_int_equal(frame_queue_push(&queue, "y", 1, FRAME_FINAL), 0);
    struct frame_block *first = frame_queue_pop(&queue);
    struct frame_block *second = frame_queue_pop(&queue);
    struct frame_block *third = frame_queue_pop(&queue);
    assert_null(frame_queue_pop(&queue));
    assert_int_equal(first->used, 3);
    assert_int_equal(second->used, 10 + big);
    assert_int_equal(frame_block_data(second)[0], 0x00);
    assert_int_equal(third->used, 3);
    assert_memory_equal(frame_block_data(third), "\x80\x01y", 3);
    frame_block_free(first);
    frame_block_free(second);
    frame_block_free(third);
    free(payload);
    frame_queue_release_spares();
}

static void test_clear_releases_everything(void **state)
{
    (void)state;
    struct frame_queue queue = {0};
    for (int i = 0; i < 3000; i++)
        assert_int_equal(frame_queue_push(&queue, "abcdefgh", 8, FRAME_FIRST | FRAME_FINAL), 0);
    frame_queue_clear(&queue);
    assert_true(frame_queue_is_empty(&queue));
    assert_null(queue.tail);
    assert_int_equal(queue.bytes, 0);
    assert_int_equal(relay_metrics.send_queue_bytes, 0);
    /* reused spares come back empty: fill a small block, then one more */
    unsigned char filler[FRAME_QUEUE_BLOCK_MIN - 4] = {0};
    assert_int_equal(frame_queue_push(&queue, filler, sizeof(filler), FRAME_FIRST | FRAME_FINAL),
                     0);
    assert_int_equal(frame_queue_push(&queue, "b", 1, FRAME_FIRST | FRAME_FINAL), 0);
    struct frame_block *lone = frame_queue_pop(&queue);
    struct frame_block *spare = frame_queue_pop(&queue);
    assert_int_equal(lone->used, FRAME_QUEUE_BLOCK_MIN);
    assert_int_equal(spare->capacity, FRAME_QUEUE_BLOCK_MAX);
    assert_int_equal(spare->used, 3);
    assert_memory_equal(frame_block_data(spare),
                        "\x82\x01"
                        "b",
                        3);
    frame_block_free(lone);
    frame_block_free(spare);
    frame_queue_release_spares();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_lengths),
        cmocka_unit_test(test_header_opcodes),
        cmocka_unit_test(test_lone_small_frames_share_a_small_block),
        cmocka_unit_test(test_lone_large_frame_gets_exact_block),
        cmocka_unit_test(test_backlog_coalesces),
        cmocka_unit_test(test_large_piece_own_block),
        cmocka_unit_test(test_clear_releases_everything),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

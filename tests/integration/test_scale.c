/*
 * test_scale.c - 2 000 concurrent pairs (4 000 connections) on one relayd:
 * all pair, each pair exchanges a frame each way, all verified, then one
 * side of every pair closes and every partner gets END and close 1000.
 *
 * The client side opens connections in batches with the non-blocking
 * ws_client_connect_start so the relay's listen backlog is not overrun.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "relay_test.h"

#define PAIRS 2000
#define CONNECT_BATCH 250
#define SCALE_TIMEOUT_MS 30000

struct scale_pair {
    struct relay_test_peer first;
    struct relay_test_peer second;
    char rid[65];
};

struct scale_test {
    struct relay_test *test; /* first: relay_test_teardown takes this struct's test */
    struct scale_pair pairs[PAIRS];
};

static int scale_setup(void **state)
{
    struct scale_test *scale = calloc(1, sizeof(*scale));
    void *relay_state = NULL;

    if (!scale || relay_test_setup(&relay_state) < 0) {
        free(scale);
        return -1;
    }
    scale->test = relay_state;
    *state = scale;
    return 0;
}

static int scale_teardown(void **state)
{
    struct scale_test *scale = *state;
    void *relay_state = scale->test;
    size_t i;

    for (i = 0; i < PAIRS; i++) {
        ws_client_free(scale->pairs[i].first.connection);
        ws_client_free(scale->pairs[i].second.connection);
    }
    free(scale);
    return relay_test_teardown(&relay_state);
}

/* Open count connections in batches; assert all opened. */
static void scale_connect_all(struct relay_test *test, struct ws_client_connection **slots[],
                              size_t count)
{
    struct ws_client_connection *batch[CONNECT_BATCH];
    size_t done = 0;

    while (done < count) {
        size_t size = count - done < CONNECT_BATCH ? count - done : CONNECT_BATCH, i, open;

        for (i = 0; i < size; i++) {
            batch[i] = ws_client_connect_start(relay_test_client, test->relay.url, NULL, 0);
            assert_non_null(batch[i]);
            *slots[done + i] = batch[i];
        }
        open = ws_client_wait_connected(relay_test_client, batch, size, SCALE_TIMEOUT_MS);
        if (open != size)
            fail_msg("only %zu of %zu connections opened (after %zu): %s", open, size, done,
                     ws_client_error(batch[0]));
        done += size;
    }
}

static bool all_first_ended(void *argument)
{
    struct scale_test *scale = argument;
    size_t i;

    for (i = 0; i < PAIRS; i++) {
        enum ws_client_state state = ws_client_state(scale->pairs[i].first.connection);

        if (state != WS_CLIENT_DONE && state != WS_CLIENT_FAILED)
            return false;
    }
    return true;
}

static void test_2000_pairs(void **state)
{
    struct scale_test *scale = *state;
    struct relay_test *test = scale->test;
    struct ws_client_connection **slots[2 * PAIRS];
    int64_t started = ws_client_now_ms();
    char message[64];
    size_t i;

    /* raised by the group setup, before the relay started (it inherits it) */
    if (harness_raise_file_limit() < 2 * PAIRS + 256)
        fail_msg("RLIMIT_NOFILE hard limit %ld is too low for %d connections",
                 harness_raise_file_limit(), 2 * PAIRS);
    for (i = 0; i < PAIRS; i++) {
        slots[2 * i] = &scale->pairs[i].first.connection;
        slots[2 * i + 1] = &scale->pairs[i].second.connection;
        assert_int_equal(moneysocket_json_new_rid(scale->pairs[i].rid), 0);
    }
    scale_connect_all(test, slots, 2 * PAIRS);
    fprintf(stderr, "  %d connections open after %lld ms\n", 2 * PAIRS,
            (long long)(ws_client_now_ms() - started));

    for (i = 0; i < PAIRS; i++)
        relay_test_send_request(scale->pairs[i].first.connection, scale->pairs[i].rid,
                                scale->pairs[i].first.request_uuid);
    for (i = 0; i < PAIRS; i++)
        relay_test_expect_notification(scale->pairs[i].first.connection,
                                       "NOTIFY_RENDEZVOUS_NOT_READY", scale->pairs[i].rid,
                                       scale->pairs[i].first.request_uuid);
    for (i = 0; i < PAIRS; i++)
        relay_test_send_request(scale->pairs[i].second.connection, scale->pairs[i].rid,
                                scale->pairs[i].second.request_uuid);
    for (i = 0; i < PAIRS; i++) {
        struct scale_pair *pair = &scale->pairs[i];

        relay_test_expect_notification(pair->second.connection, "NOTIFY_RENDEZVOUS", pair->rid,
                                       pair->second.request_uuid);
        relay_test_expect_notification(pair->first.connection, "NOTIFY_RENDEZVOUS", pair->rid,
                                       pair->first.request_uuid);
    }
    assert_true(relay_test_metric(test, "relayd_connections{state=\"paired\"}") == 2 * PAIRS);
    fprintf(stderr, "  %d pairs formed after %lld ms\n", PAIRS,
            (long long)(ws_client_now_ms() - started));

    for (i = 0; i < PAIRS; i++) {
        int length = snprintf(message, sizeof(message), "pair %zu forward", i);

        assert_int_equal(
            ws_client_send(scale->pairs[i].first.connection, message, (size_t)length, true), 0);
        length = snprintf(message, sizeof(message), "pair %zu backward", i);
        assert_int_equal(
            ws_client_send(scale->pairs[i].second.connection, message, (size_t)length, true), 0);
    }
    for (i = 0; i < PAIRS; i++) {
        int length = snprintf(message, sizeof(message), "pair %zu forward", i);

        relay_test_expect_message(scale->pairs[i].second.connection, true, message, (size_t)length);
        length = snprintf(message, sizeof(message), "pair %zu backward", i);
        relay_test_expect_message(scale->pairs[i].first.connection, true, message, (size_t)length);
    }
    assert_true(relay_test_metric(test, "relayd_frames_forwarded_total") == 2 * PAIRS);

    /* one side closes; every partner gets END then 1000 */
    for (i = 0; i < PAIRS; i++)
        ws_client_close(scale->pairs[i].first.connection, 1000, "done", 0);
    for (i = 0; i < PAIRS; i++)
        relay_test_expect_end(scale->pairs[i].second.connection, scale->pairs[i].rid);
    assert_true(ws_client_wait_until(relay_test_client, all_first_ended, scale, SCALE_TIMEOUT_MS));
    for (i = 0; i < PAIRS; i++)
        assert_int_equal(ws_client_state(scale->pairs[i].first.connection), WS_CLIENT_DONE);
    assert_true(relay_test_wait_metric(test, "relayd_connections{state=\"paired\"}", 0,
                                       SCALE_TIMEOUT_MS) == 0);
    assert_true(relay_test_metric(
                    test, "relayd_connections_closed_total{reason=\"partner_gone\"}") == PAIRS);
    assert_true(relay_test_metric(
                    test, "relayd_connections_closed_total{reason=\"peer_closed\"}") == PAIRS);
    fprintf(stderr, "  all closed after %lld ms\n", (long long)(ws_client_now_ms() - started));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_2000_pairs, scale_setup, scale_teardown),
    };

    return cmocka_run_group_tests_name("scale", tests, relay_test_group_setup,
                                       relay_test_group_teardown);
}

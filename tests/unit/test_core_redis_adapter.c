/*
 * test_core_redis_adapter.c - hiredis's async API on lws's poll loop
 * (cluster/redis_adapter.c) against a real redis-server.
 *
 * Raw hiredis contexts attached with redis_adapter_attach, so that the
 * adapter alone is under test: a long pipeline (which needs the re-requested
 * POLLOUT), a refused connection (an error, not a hang), the server killed
 * in the middle of a pipeline (every pending callback runs), and a clean
 * disconnect. Each test checks that no descriptor is left open.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../cluster/redis_adapter.h"
#include "redis_fixture.h"

#define PIPELINE_LENGTH 10000
#define KILL_PIPELINE_LENGTH 30000

struct probe {
    redisAsyncContext *hiredis;
    int connect_status; /* -1 until the connect callback */
    int released;
    int disconnected;
    long replies;
    long null_replies;
    long out_of_order;
    long kill_after; /* SIGKILL the server after this many replies (0: never) */
    struct redis_server *server;
};

static void probe_on_released(void *owner, const redisAsyncContext *hiredis)
{
    struct probe *probe = owner;
    assert_ptr_equal(hiredis, probe->hiredis);
    probe->released++;
}

static void probe_on_connect(const redisAsyncContext *hiredis, int status)
{
    struct probe *probe = hiredis->data;
    probe->connect_status = status;
}

static void probe_on_disconnect(const redisAsyncContext *hiredis, int status)
{
    struct probe *probe = hiredis->data;
    probe->disconnected++;
}

static void probe_on_reply(redisAsyncContext *hiredis, void *reply_pointer, void *data)
{
    struct probe *probe = hiredis->data;
    redisReply *reply = reply_pointer;
    long expected = (long)(intptr_t)data;

    if (reply == NULL) {
        probe->null_replies++;
        return;
    }
    probe->replies++;
    if (reply->type != REDIS_REPLY_INTEGER || reply->integer != expected)
        probe->out_of_order++;
    if (probe->kill_after != 0 && probe->replies == probe->kill_after)
        redis_fixture_kill(probe->server);
}

static void probe_on_set_reply(redisAsyncContext *hiredis, void *reply_pointer, void *data)
{
    struct probe *probe = hiredis->data;
    if (reply_pointer == NULL) {
        probe->null_replies++;
        return;
    }
    probe->replies++;
    if (probe->kill_after != 0 && probe->replies == probe->kill_after)
        redis_fixture_kill(probe->server);
}

static bool probe_is_released(void *argument)
{
    return ((struct probe *)argument)->released > 0;
}

static bool probe_replies_done(void *argument)
{
    struct probe *probe = argument;
    return probe->replies + probe->null_replies >= PIPELINE_LENGTH;
}

static bool probe_kill_pipeline_done(void *argument)
{
    struct probe *probe = argument;
    return probe->replies + probe->null_replies >= KILL_PIPELINE_LENGTH && probe->released;
}

static void probe_open(struct probe *probe, struct redis_loop *loop, int port)
{
    memset(probe, 0, sizeof(*probe));
    probe->connect_status = -1;
    probe->hiredis = redisAsyncConnect("127.0.0.1", port);
    assert_non_null(probe->hiredis);
    assert_int_equal(probe->hiredis->err, 0);
    probe->hiredis->data = probe;
    assert_int_equal(redis_adapter_attach(probe->hiredis, loop->vhost, probe_on_released, probe),
                     0);
    redisAsyncSetConnectCallback(probe->hiredis, probe_on_connect);
    redisAsyncSetDisconnectCallback(probe->hiredis, probe_on_disconnect);
}

static void test_pipeline_of_ten_thousand(void **state)
{
    struct redis_server server = {0};
    struct redis_loop loop;
    struct probe probe;

    redis_fixture_start(&server, 0, NULL, NULL);
    int fds_before = redis_fixture_count_fds();
    redis_loop_init(&loop);
    probe_open(&probe, &loop, server.port);
    /* Issued before the connection is even up: hiredis buffers, the adapter
     * must keep asking for POLLOUT until all of it is written. */
    for (long i = 1; i <= PIPELINE_LENGTH; i++)
        assert_int_equal(
            redisAsyncCommand(probe.hiredis, probe_on_reply, (void *)(intptr_t)i, "INCR counter"),
            REDIS_OK);
    assert_true(redis_loop_run_until(&loop, probe_replies_done, &probe, 20000));
    assert_int_equal(probe.connect_status, REDIS_OK);
    assert_int_equal(probe.replies, PIPELINE_LENGTH);
    assert_int_equal(probe.null_replies, 0);
    assert_int_equal(probe.out_of_order, 0);

    /* A clean disconnect from outside any callback closes the wsi at once. */
    redisAsyncDisconnect(probe.hiredis);
    assert_int_equal(probe.released, 1);
    assert_int_equal(probe.disconnected, 1);
    redis_loop_run_for(&loop, 20);
    redis_loop_destroy(&loop);
    assert_int_equal(redis_fixture_count_fds(), fds_before);
    redis_fixture_stop(&server);
}

static void test_refused_connection_reports_error(void **state)
{
    struct redis_loop loop;
    struct probe probe;
    int port = redis_fixture_free_port();
    int fds_before = redis_fixture_count_fds();
    long long started = redis_fixture_now_ms();

    redis_loop_init(&loop);
    memset(&probe, 0, sizeof(probe));
    probe.connect_status = -1;
    probe.hiredis = redisAsyncConnect("127.0.0.1", port);
    assert_non_null(probe.hiredis);
    if (probe.hiredis->err != 0) {
        /* Refused inside connect() already: nothing to attach. */
        print_message("refused inside connect()\n");
        redisAsyncFree(probe.hiredis);
    } else {
        probe.hiredis->data = &probe;
        assert_int_equal(redis_adapter_attach(probe.hiredis, loop.vhost, probe_on_released, &probe),
                         0);
        redisAsyncSetConnectCallback(probe.hiredis, probe_on_connect);
        redisAsyncCommand(probe.hiredis, probe_on_reply, (void *)1, "PING");
        /* An error callback and a release, not a hang. */
        assert_true(redis_loop_run_until(&loop, probe_is_released, &probe, 3000));
        assert_int_equal(probe.connect_status, REDIS_ERR);
        assert_int_equal(probe.null_replies, 1);
    }
    assert_true(redis_fixture_now_ms() - started < 3000);
    redis_loop_run_for(&loop, 20);
    redis_loop_destroy(&loop);
    assert_int_equal(redis_fixture_count_fds(), fds_before);
}

static void test_server_killed_mid_pipeline(void **state)
{
    struct redis_server server = {0};
    struct redis_loop loop;
    struct probe probe;
    static char value[512];

    memset(value, 'v', sizeof(value) - 1);
    redis_fixture_start(&server, 0, NULL, NULL);
    int fds_before = redis_fixture_count_fds();
    redis_loop_init(&loop);
    probe_open(&probe, &loop, server.port);
    probe.server = &server;
    probe.kill_after = 1000;
    for (long i = 0; i < KILL_PIPELINE_LENGTH; i++)
        assert_int_equal(
            redisAsyncCommand(probe.hiredis, probe_on_set_reply, NULL, "SET key:%ld %s", i, value),
            REDIS_OK);
    assert_true(redis_loop_run_until(&loop, probe_kill_pipeline_done, &probe, 20000));
    print_message("killed after %ld replies, %ld failed\n", probe.replies, probe.null_replies);
    assert_true(probe.replies >= 1000);
    assert_true(probe.null_replies > 0);
    assert_int_equal(probe.replies + probe.null_replies, KILL_PIPELINE_LENGTH);
    assert_int_equal(probe.released, 1);
    assert_int_equal(probe.disconnected, 1);
    redis_loop_run_for(&loop, 20);
    redis_loop_destroy(&loop);
    assert_int_equal(redis_fixture_count_fds(), fds_before);
    redis_fixture_stop(&server);
}

/* Freeing from outside any callback, with replies outstanding, fails them
 * at once and closes the socket synchronously. */
static void test_free_with_commands_pending(void **state)
{
    struct redis_server server = {0};
    struct redis_loop loop;
    struct probe probe;

    redis_fixture_start(&server, 0, NULL, NULL);
    int fds_before = redis_fixture_count_fds();
    redis_loop_init(&loop);
    probe_open(&probe, &loop, server.port);
    redis_fixture_signal(&server, SIGSTOP);
    for (long i = 1; i <= 10; i++)
        redisAsyncCommand(probe.hiredis, probe_on_reply, (void *)(intptr_t)i, "INCR counter");
    redis_loop_run_for(&loop, 100);
    assert_int_equal(probe.connect_status, REDIS_OK);
    assert_int_equal(probe.replies, 0);
    redisAsyncFree(probe.hiredis);
    assert_int_equal(probe.null_replies, 10);
    assert_int_equal(probe.released, 1);
    redis_fixture_signal(&server, SIGCONT);
    redis_loop_run_for(&loop, 20);
    redis_loop_destroy(&loop);
    assert_int_equal(redis_fixture_count_fds(), fds_before);
    redis_fixture_stop(&server);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pipeline_of_ten_thousand),
        cmocka_unit_test(test_refused_connection_reports_error),
        cmocka_unit_test(test_server_killed_mid_pipeline),
        cmocka_unit_test(test_free_with_commands_pending),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

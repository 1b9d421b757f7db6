/*
 * test_core_redis_client.c - the kept-alive master connection
 * (cluster/redis_client.c) against a real redis-server.
 *
 * Commands queued while connecting, the per-command deadline on a frozen
 * server (SIGSTOP) and the redial after it, the server killed under a
 * pipeline and restarted on the same port, AUTH and SELECT, a host name
 * resolved without blocking, and no descriptor left behind.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../cluster/redis_client.h"
#include "redis_fixture.h"
#include "relay/metrics.h"

struct watcher {
    int ups;
    int downs;
    bool up;
    long replies;
    long failures;
    long out_of_order;
    long expected_next;
    long long failed_at_ms;
};

static void watcher_on_state(void *owner, bool up)
{
    struct watcher *watcher = owner;
    watcher->up = up;
    if (up)
        watcher->ups++;
    else
        watcher->downs++;
}

static void watcher_on_reply(void *data, const redisReply *reply)
{
    struct watcher *watcher = data;
    if (reply == NULL) {
        watcher->failures++;
        watcher->failed_at_ms = redis_fixture_now_ms();
        return;
    }
    watcher->replies++;
    if (reply->type != REDIS_REPLY_INTEGER || reply->integer != ++watcher->expected_next)
        watcher->out_of_order++;
}

static void watcher_on_any_reply(void *data, const redisReply *reply)
{
    struct watcher *watcher = data;
    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        watcher->failures++;
        watcher->failed_at_ms = redis_fixture_now_ms();
    } else
        watcher->replies++;
}

static bool watcher_is_up(void *argument)
{
    return ((struct watcher *)argument)->up;
}
static bool watcher_is_down(void *argument)
{
    return !((struct watcher *)argument)->up;
}
static bool watcher_has_failure(void *argument)
{
    return ((struct watcher *)argument)->failures > 0;
}

static long watcher_target;
static bool watcher_reached_target(void *argument)
{
    struct watcher *watcher = argument;
    return watcher->replies + watcher->failures >= watcher_target;
}

static void config_for(struct relay_config *config, const char *host, int port)
{
    config_set_defaults(config);
    config_set_string(&config->cluster.redis_host, host);
    config->cluster.redis_port = port;
    config->cluster.redis_connect_timeout_ms = 1000;
    config->cluster.redis_command_timeout_ms = 300;
}

static void test_commands_queued_while_connecting(void **state)
{
    struct redis_server server = {0};
    struct redis_loop loop;
    struct relay_config config;
    struct watcher watcher = {0};

    redis_fixture_start(&server, 0, NULL, NULL);
    int fds_before = redis_fixture_count_fds();
    redis_loop_init(&loop);
    config_for(&config, "127.0.0.1", server.port);
    struct redis_client *client =
        redis_client_new(loop.context, loop.vhost, &config.cluster, watcher_on_state, &watcher);
    assert_non_null(client);
    assert_false(redis_client_is_up(client));
    for (int i = 0; i < 10000; i++)
        assert_int_equal(redis_client_command(client, watcher_on_reply, &watcher, "INCR n"), 0);
    watcher_target = 10000;
    assert_true(redis_loop_run_until(&loop, watcher_reached_target, &watcher, 10000));
    assert_int_equal(watcher.replies, 10000);
    assert_int_equal(watcher.out_of_order, 0);
    assert_int_equal(watcher.ups, 1);
    assert_int_equal(relay_metrics.cluster.redis_connected, 1);
    assert_true(relay_metrics.cluster.redis_latency_count >= 10000);

    redis_client_destroy(client);
    redis_loop_destroy(&loop);
    assert_int_equal(redis_fixture_count_fds(), fds_before);
    config_free(&config);
    redis_fixture_stop(&server);
}

static void test_frozen_server_hits_the_deadline(void **state)
{
    struct redis_server server = {0};
    struct redis_loop loop;
    struct relay_config config;
    struct watcher watcher = {0};

    redis_fixture_start(&server, 0, NULL, NULL);
    int fds_before = redis_fixture_count_fds();
    redis_loop_init(&loop);
    config_for(&config, "127.0.0.1", server.port);
    struct redis_client *client =
        redis_client_new(loop.context, loop.vhost, &config.cluster, watcher_on_state, &watcher);
    assert_true(redis_loop_run_until(&loop, watcher_is_up, &watcher, 5000));
    uint64_t reconnects = relay_metrics.cluster.redis_reconnects_total;

    redis_fixture_signal(&server, SIGSTOP);
    long long sent_at = redis_fixture_now_ms();
    assert_int_equal(redis_client_command(client, watcher_on_any_reply, &watcher, "PING"), 0);
    assert_true(redis_loop_run_until(&loop, watcher_has_failure, &watcher, 3000));
    long long waited = watcher.failed_at_ms - sent_at;
    assert_true(waited >= 250 && waited < 1500);
    assert_false(watcher.up);
    assert_int_equal(watcher.downs, 1);
    /* Down: refused at once rather than queued. */
    if (!redis_client_is_up(client))
        assert_int_equal(redis_client_command(client, watcher_on_any_reply, &watcher, "PING"), -1);

    redis_fixture_signal(&server, SIGCONT);
    assert_true(redis_loop_run_until(&loop, watcher_is_up, &watcher, 5000));
    assert_int_equal(relay_metrics.cluster.redis_reconnects_total, reconnects + 1);
    watcher.replies = 0;
    assert_int_equal(redis_client_command(client, watcher_on_any_reply, &watcher, "PING"), 0);
    watcher_target = 2;
    assert_true(redis_loop_run_until(&loop, watcher_reached_target, &watcher, 2000));
    assert_int_equal(watcher.replies, 1);

    redis_client_destroy(client);
    redis_loop_destroy(&loop);
    assert_int_equal(redis_fixture_count_fds(), fds_before);
    config_free(&config);
    redis_fixture_stop(&server);
}

static void test_killed_and_restarted_server(void **state)
{
    struct redis_server server = {0};
    struct redis_loop loop;
    struct relay_config config;
    struct watcher watcher = {0};

    redis_fixture_start(&server, 0, NULL, NULL);
    int fds_before = redis_fixture_count_fds();
    redis_loop_init(&loop);
    config_for(&config, "127.0.0.1", server.port);
    config.cluster.redis_command_timeout_ms = 5000;
    struct redis_client *client =
        redis_client_new(loop.context, loop.vhost, &config.cluster, watcher_on_state, &watcher);
    assert_true(redis_loop_run_until(&loop, watcher_is_up, &watcher, 5000));

    for (int i = 0; i < 50000; i++)
        redis_client_command(client, watcher_on_any_reply, &watcher, "SET key:%d %s", i,
                             "some value that takes a little room on the wire");
    redis_loop_run_for(&loop, 5);
    redis_fixture_kill(&server);
    watcher_target = 50000;
    assert_true(redis_loop_run_until(&loop, watcher_reached_target, &watcher, 10000));
    assert_int_equal(watcher.replies + watcher.failures, 50000);
    assert_true(redis_loop_run_until(&loop, watcher_is_down, &watcher, 2000));

    redis_fixture_start(&server, server.port, NULL, NULL);
    assert_true(redis_loop_run_until(&loop, watcher_is_up, &watcher, 5000));
    assert_int_equal(watcher.ups, 2);

    redis_client_destroy(client);
    redis_loop_destroy(&loop);
    assert_int_equal(redis_fixture_count_fds(), fds_before);
    config_free(&config);
    redis_fixture_stop(&server);
}

static void test_password_database_and_host_name(void **state)
{
    struct redis_server server = {0};
    struct redis_loop loop;
    struct relay_config config;
    struct watcher watcher = {0};

    redis_fixture_start(&server, 0, "s3cret", NULL);
    redis_loop_init(&loop);
    config_for(&config, "localhost", server.port);
    config_set_string(&config.cluster.redis_password, "s3cret");
    config.cluster.redis_database = 3;
    struct redis_client *client =
        redis_client_new(loop.context, loop.vhost, &config.cluster, watcher_on_state, &watcher);
    assert_true(redis_loop_run_until(&loop, watcher_is_up, &watcher, 5000));
    assert_int_equal(redis_client_command(client, watcher_on_any_reply, &watcher, "SET %s %s",
                                          "in-three", "yes"),
                     0);
    watcher_target = 1;
    assert_true(redis_loop_run_until(&loop, watcher_reached_target, &watcher, 2000));
    assert_int_equal(watcher.replies, 1);
    redis_client_destroy(client);

    redisContext *check = redis_fixture_connect(&server);
    assert_non_null(check);
    redisReply *reply = redisCommand(check, "SELECT 3");
    freeReplyObject(reply);
    reply = redisCommand(check, "GET in-three");
    assert_int_equal(reply->type, REDIS_REPLY_STRING);
    assert_string_equal(reply->str, "yes");
    freeReplyObject(reply);
    redisFree(check);

    /* A wrong password never comes up (and keeps retrying quietly). */
    struct watcher refused = {0};
    config_set_string(&config.cluster.redis_password, "wrong");
    client =
        redis_client_new(loop.context, loop.vhost, &config.cluster, watcher_on_state, &refused);
    redis_loop_run_for(&loop, 600);
    assert_int_equal(refused.ups, 0);
    assert_true(relay_metrics.cluster.redis_errors_total > 0);
    redis_client_destroy(client);

    redis_loop_destroy(&loop);
    config_free(&config);
    redis_fixture_stop(&server);
}

static void test_unreachable_host_fails_queued_commands(void **state)
{
    struct redis_loop loop;
    struct relay_config config;
    struct watcher watcher = {0};
    int fds_before = redis_fixture_count_fds();

    redis_loop_init(&loop);
    config_for(&config, "127.0.0.1", redis_fixture_free_port());
    struct redis_client *client =
        redis_client_new(loop.context, loop.vhost, &config.cluster, watcher_on_state, &watcher);
    /* Whether refused inside connect() or later, the queued command fails
     * within the connect deadline, never hangs. */
    if (redis_client_command(client, watcher_on_any_reply, &watcher, "PING") == 0)
        assert_true(redis_loop_run_until(&loop, watcher_has_failure, &watcher, 2000));
    assert_int_equal(watcher.ups, 0);
    redis_client_destroy(client);
    redis_loop_destroy(&loop);
    assert_int_equal(redis_fixture_count_fds(), fds_before);
    config_free(&config);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commands_queued_while_connecting),
        cmocka_unit_test(test_frozen_server_hits_the_deadline),
        cmocka_unit_test(test_killed_and_restarted_server),
        cmocka_unit_test(test_password_database_and_host_name),
        cmocka_unit_test(test_unreachable_host_fails_queued_commands),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

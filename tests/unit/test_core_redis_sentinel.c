/*
 * test_core_redis_sentinel.c - the Redis directory through Redis Sentinel,
 * across a real failover.
 *
 * One master, one replica and three sentinels (quorum 2, down after 1 s,
 * failover timeout 3 s) on loopback ports. The directory finds the master
 * by asking the sentinels, claims an id, then the master is killed: the
 * sentinels promote the replica and announce +switch-master, and the
 * directory must be ready again on the new master - with its id
 * re-asserted - within a generous bound, where a new claim works.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../cluster/cluster.h"
#include "../../cluster/directory_redis.h"
#include "redis_fixture.h"

#define MASTER_NAME "relaymaster"
#define SENTINEL_COUNT 3

static const char rid_a[] = "f66d7935fb71dafa8493e8194e9eda3ed95406bd1376f71dd1f47961581d5646";
static const char rid_b[] = "8b46c9a3728c589d7d7f8cdadb4b01e3e949253d2af9535b7fb54d527821b8fe";

struct answer {
    int count;
    enum directory_status status;
};

static void answer_record(void *context, const char *rid, enum directory_status status,
                          const struct directory_owner *owner)
{
    struct answer *answer = context;
    answer->count++;
    answer->status = status;
}

static bool answer_arrived(void *argument)
{
    return ((struct answer *)argument)->count > 0;
}

static struct directory *tested_directory;
static bool directory_ready(void *argument)
{
    return directory_is_ready(tested_directory);
}
static bool directory_not_ready(void *argument)
{
    return !directory_is_ready(tested_directory);
}

/* A field of "SENTINEL MASTER <name>" as a number, -1 if unknown. */
static long sentinel_master_field(const struct redis_server *sentinel, const char *field)
{
    long value = -1;
    redisReply *reply = redis_fixture_command(sentinel, "SENTINEL MASTER %s", MASTER_NAME);
    if (reply != NULL && reply->type == REDIS_REPLY_ARRAY)
        for (size_t i = 0; i + 1 < reply->elements; i += 2)
            if (reply->element[i]->type == REDIS_REPLY_STRING &&
                strcmp(reply->element[i]->str, field) == 0)
                value = strtol(reply->element[i + 1]->str, NULL, 10);
    if (reply != NULL)
        freeReplyObject(reply);
    return value;
}

/* A failover needs every sentinel to know the replica and the others. */
static void wait_for_sentinels(struct redis_server *sentinels)
{
    long long give_up = redis_fixture_now_ms() + 20000;
    for (;;) {
        bool settled = true;
        for (int i = 0; i < SENTINEL_COUNT; i++)
            settled =
                settled && sentinel_master_field(&sentinels[i], "num-slaves") == 1 &&
                sentinel_master_field(&sentinels[i], "num-other-sentinels") == SENTINEL_COUNT - 1;
        if (settled)
            return;
        assert_true(redis_fixture_now_ms() < give_up);
        usleep(100000);
    }
}

static bool replica_in_sync(const struct redis_server *replica)
{
    redisReply *reply = redis_fixture_command(replica, "INFO replication");
    bool in_sync = reply != NULL && reply->type == REDIS_REPLY_STRING &&
                   strstr(reply->str, "master_link_status:up") != NULL;
    if (reply != NULL)
        freeReplyObject(reply);
    return in_sync;
}

static void claim_and_wait(struct redis_loop *loop, struct directory *directory, const char *rid,
                           enum directory_status expected)
{
    struct answer answer = {0};
    directory_claim(directory, rid, answer_record, &answer);
    assert_true(redis_loop_run_until(loop, answer_arrived, &answer, 3000));
    assert_int_equal(answer.status, expected);
}

static void assert_owned_on(const struct redis_server *server, const char *rid,
                            const struct cluster_identity *identity)
{
    char key[128], value[128], expected[128];
    snprintf(key, sizeof(key), "msr:rdv:%s", rid);
    snprintf(expected, sizeof(expected), "%s:%llu", identity->node_id,
             (unsigned long long)identity->epoch);
    assert_string_equal(redis_fixture_get(server, key, value, sizeof(value)), expected);
}

static void test_failover_through_sentinel(void **state)
{
    struct redis_server master = {0}, replica = {0};
    struct redis_server sentinels[SENTINEL_COUNT] = {{0}};
    struct redis_loop loop;
    struct relay_config config;
    struct cluster_identity identity;
    char replica_of[32], err[256];

    redis_fixture_start(&master, 0, NULL, NULL);
    snprintf(replica_of, sizeof(replica_of), "127.0.0.1 %d", master.port);
    const char *replica_arguments[] = {"--replicaof", replica_of, NULL};
    redis_fixture_start(&replica, 0, NULL, replica_arguments);
    for (int i = 0; i < SENTINEL_COUNT; i++)
        redis_fixture_start_sentinel(&sentinels[i], MASTER_NAME, master.port);
    long long started = redis_fixture_now_ms();
    wait_for_sentinels(sentinels);
    while (!replica_in_sync(&replica) && redis_fixture_now_ms() - started < 10000)
        usleep(50000);
    print_message("sentinels settled in %lld ms\n", redis_fixture_now_ms() - started);

    config_set_defaults(&config);
    config_set_string(&config.cluster.node_id, "node-s");
    config_set_string(&config.cluster.advertise_url, "ws://node-s.test:11062");
    config.cluster.sentinels = calloc(SENTINEL_COUNT + 1, sizeof(char *));
    for (int i = 0; i < SENTINEL_COUNT; i++) {
        char address[32];
        snprintf(address, sizeof(address), "127.0.0.1:%d", sentinels[i].port);
        config.cluster.sentinels[i] = strdup(address);
    }
    config_set_string(&config.cluster.sentinel_master, MASTER_NAME);
    config.cluster.redis_connect_timeout_ms = 1000;
    config.cluster.redis_command_timeout_ms = 500;
    config.cluster.heartbeat_interval_seconds = 1;
    config.cluster.node_ttl_seconds = 3;
    config.cluster.claim_ttl_seconds = 30;

    redis_loop_init(&loop);
    assert_int_equal(cluster_identity_init(&identity, &config, err, sizeof(err)), 0);
    tested_directory = directory_redis_new(loop.context, loop.vhost, &config, &identity);
    assert_non_null(tested_directory);
    assert_true(redis_loop_run_until(&loop, directory_ready, NULL, 10000));
    claim_and_wait(&loop, tested_directory, rid_a, DIRECTORY_MINE);
    assert_owned_on(&master, rid_a, &identity);

    /* The master dies; the sentinels promote the replica. */
    redis_fixture_kill(&master);
    long long killed_at = redis_fixture_now_ms();
    assert_true(redis_loop_run_until(&loop, directory_not_ready, NULL, 3000));
    assert_true(redis_loop_run_until(&loop, directory_ready, NULL, 25000));
    print_message("ready on the promoted replica %lld ms after the kill\n",
                  redis_fixture_now_ms() - killed_at);

    redisReply *role = redis_fixture_command(&replica, "ROLE");
    assert_non_null(role);
    assert_string_equal(role->element[0]->str, "master");
    freeReplyObject(role);
    assert_owned_on(&replica, rid_a, &identity);
    claim_and_wait(&loop, tested_directory, rid_b, DIRECTORY_MINE);
    assert_owned_on(&replica, rid_b, &identity);

    directory_destroy(tested_directory);
    redis_loop_destroy(&loop);
    config_free(&config);
    for (int i = 0; i < SENTINEL_COUNT; i++)
        redis_fixture_stop(&sentinels[i]);
    redis_fixture_stop(&replica);
    redis_fixture_stop(&master);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_failover_through_sentinel),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

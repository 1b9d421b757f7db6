/*
 * test_core_redis_directory.c - the Redis directory (cluster/directory_redis.c)
 * and the node identity (cluster/identity.c) against a real redis-server.
 *
 * Two nodes are two directories with different identities, each on its own
 * lws context, so that one can be "frozen" (its loop not served, its
 * heartbeats stopped) while the other acts. Covered: claim, claim again,
 * lookup and release; a live owner answered as ELSEWHERE with its URL and
 * epoch; a dead (node key gone) or restarted (other epoch) owner taken over;
 * claim_over; Redis restarted empty and Redis unreachable, with ids
 * re-asserted before the directory is ready again; TTL refresh; password
 * and database.
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
#include "relay/metrics.h"

static const char rid_a[] = "f66d7935fb71dafa8493e8194e9eda3ed95406bd1376f71dd1f47961581d5646";
static const char rid_b[] = "8b46c9a3728c589d7d7f8cdadb4b01e3e949253d2af9535b7fb54d527821b8fe";
static const char rid_c[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

struct answer {
    int count;
    enum directory_status status;
    struct directory_owner owner;
    bool has_owner;
};

static void answer_record(void *context, const char *rid, enum directory_status status,
                          const struct directory_owner *owner)
{
    struct answer *answer = context;
    answer->count++;
    answer->status = status;
    answer->has_owner = owner != NULL;
    if (owner != NULL)
        answer->owner = *owner;
}

static bool answer_arrived(void *argument)
{
    return ((struct answer *)argument)->count > 0;
}

/* One node: its own loop, configuration, identity and directory. */
struct node {
    struct redis_loop loop;
    struct relay_config config;
    struct cluster_identity identity;
    struct directory *directory;
};

static void node_configure(struct node *node, const char *node_id, int port)
{
    char url[64];
    config_set_defaults(&node->config);
    struct relay_cluster_config *cluster = &node->config.cluster;
    config_set_string(&cluster->node_id, node_id);
    snprintf(url, sizeof(url), "ws://%s.test:11062", node_id);
    config_set_string(&cluster->advertise_url, url);
    config_set_string(&cluster->redis_host, "127.0.0.1");
    cluster->redis_port = port;
    cluster->redis_connect_timeout_ms = 1000;
    cluster->redis_command_timeout_ms = 400;
    cluster->heartbeat_interval_seconds = 1;
    cluster->node_ttl_seconds = 3;
    cluster->claim_ttl_seconds = 6;
}

static void node_start(struct node *node)
{
    char err[256];
    redis_loop_init(&node->loop);
    assert_int_equal(cluster_identity_init(&node->identity, &node->config, err, sizeof(err)), 0);
    node->directory =
        directory_redis_new(node->loop.context, node->loop.vhost, &node->config, &node->identity);
    assert_non_null(node->directory);
}

static bool node_is_ready(void *argument)
{
    return directory_is_ready(((struct node *)argument)->directory);
}
static bool node_is_not_ready(void *argument)
{
    return !directory_is_ready(((struct node *)argument)->directory);
}

static void node_wait_ready(struct node *node, int timeout_ms)
{
    assert_true(redis_loop_run_until(&node->loop, node_is_ready, node, timeout_ms));
}

static void node_stop(struct node *node)
{
    directory_destroy(node->directory);
    redis_loop_destroy(&node->loop);
    config_free(&node->config);
}

/* Run one directory call on node and wait for its answer. */
enum call { CALL_CLAIM, CALL_LOOKUP, CALL_RELEASE };

static struct answer node_call(struct node *node, enum call call, const char *rid)
{
    struct answer answer = {0};
    switch (call) {
    case CALL_CLAIM:
        directory_claim(node->directory, rid, answer_record, &answer);
        break;
    case CALL_LOOKUP:
        directory_lookup(node->directory, rid, answer_record, &answer);
        break;
    case CALL_RELEASE:
        directory_release(node->directory, rid, answer_record, &answer);
        break;
    }
    assert_true(redis_loop_run_until(&node->loop, answer_arrived, &answer, 3000));
    assert_int_equal(answer.count, 1);
    return answer;
}

static struct answer node_claim_over(struct node *node, const char *rid,
                                     const struct directory_owner *stale)
{
    struct answer answer = {0};
    directory_claim_over(node->directory, rid, stale, answer_record, &answer);
    assert_true(redis_loop_run_until(&node->loop, answer_arrived, &answer, 3000));
    return answer;
}

static void expected_value(const struct node *node, char *buffer, size_t size)
{
    snprintf(buffer, size, "%s:%llu", node->identity.node_id,
             (unsigned long long)node->identity.epoch);
}

static void assert_rid_owned_by(const struct redis_server *server, const char *rid,
                                const struct node *node)
{
    char key[128], value[128], expected[128];
    snprintf(key, sizeof(key), "msr:rdv:%s", rid);
    expected_value(node, expected, sizeof(expected));
    assert_string_equal(redis_fixture_get(server, key, value, sizeof(value)), expected);
}

static void test_identity(void **state)
{
    struct relay_config config;
    struct cluster_identity first, second;
    char err[256];

    config_set_defaults(&config);
    config_set_string(&config.cluster.bind_address, "10.1.2.3");
    config.cluster.port = 11062;
    assert_int_equal(cluster_identity_init(&first, &config, err, sizeof(err)), 0);
    assert_int_equal(cluster_identity_init(&second, &config, err, sizeof(err)), 0);
    /* <host>-<6 hex>, different each time */
    size_t length = strlen(first.node_id);
    assert_true(length > 7 && length <= NODE_ID_MAX_LENGTH);
    assert_int_equal(first.node_id[length - 7], '-');
    assert_string_not_equal(first.node_id, second.node_id);
    assert_string_equal(first.advertise_url, "ws://10.1.2.3:11062");
    assert_true(second.epoch > first.epoch);
    assert_true(first.epoch > 1700000000000ULL);

    /* A wildcard bind advertises the host name; a certificate means wss. */
    config_set_string(&config.cluster.bind_address, "0.0.0.0");
    config_set_string(&config.cluster.tls_cert_file, "/etc/relay/node.pem");
    assert_int_equal(cluster_identity_init(&first, &config, err, sizeof(err)), 0);
    char host[256], expected[300];
    gethostname(host, sizeof(host));
    snprintf(expected, sizeof(expected), "wss://%s:11062", host);
    assert_string_equal(first.advertise_url, expected);
    config_set_string(&config.cluster.bind_address, "::1");
    assert_int_equal(cluster_identity_init(&first, &config, err, sizeof(err)), 0);
    assert_string_equal(first.advertise_url, "wss://[::1]:11062");

    config_set_string(&config.cluster.node_id, "node-1.eu_west");
    config_set_string(&config.cluster.advertise_url, "wss://relay-1.example:7000");
    assert_int_equal(cluster_identity_init(&first, &config, err, sizeof(err)), 0);
    assert_string_equal(first.node_id, "node-1.eu_west");
    assert_string_equal(first.advertise_url, "wss://relay-1.example:7000");

    config_set_string(&config.cluster.node_id, "bad:id");
    assert_int_equal(cluster_identity_init(&first, &config, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "node id"));
    config_set_string(&config.cluster.node_id, "");
    assert_int_equal(cluster_identity_init(&first, &config, err, sizeof(err)), -1);
    char too_long[NODE_ID_MAX_LENGTH + 2];
    memset(too_long, 'n', sizeof(too_long) - 1);
    too_long[sizeof(too_long) - 1] = '\0';
    config_set_string(&config.cluster.node_id, too_long);
    assert_int_equal(cluster_identity_init(&first, &config, err, sizeof(err)), -1);
    too_long[NODE_ID_MAX_LENGTH] = '\0';
    config_set_string(&config.cluster.node_id, too_long);
    assert_int_equal(cluster_identity_init(&first, &config, err, sizeof(err)), 0);

    config_set_string(&config.cluster.advertise_url, "http://relay-1.example:7000");
    assert_int_equal(cluster_identity_init(&first, &config, err, sizeof(err)), -1);
    config_set_string(&config.cluster.advertise_url, "ws://");
    assert_int_equal(cluster_identity_init(&first, &config, err, sizeof(err)), -1);
    config_free(&config);
}

static void test_claim_lookup_release(void **state)
{
    struct redis_server server = {0};
    struct node node;
    char key[128], value[128];

    redis_fixture_start(&server, 0, NULL, NULL);
    int fds_before = redis_fixture_count_fds();
    node_configure(&node, "node-a", server.port);
    node_start(&node);
    assert_false(directory_is_ready(node.directory));
    node_wait_ready(&node, 5000);

    /* Registered: the node hash with its URL and epoch, and a TTL. */
    redisReply *reply = redis_fixture_command(&server, "HMGET msr:node:node-a advertise epoch");
    assert_int_equal(reply->type, REDIS_REPLY_ARRAY);
    assert_string_equal(reply->element[0]->str, "ws://node-a.test:11062");
    assert_int_equal(strtoull(reply->element[1]->str, NULL, 10), node.identity.epoch);
    freeReplyObject(reply);
    long long ttl = redis_fixture_integer(&server, "PTTL %s", "msr:node:node-a");
    assert_true(ttl > 0 && ttl <= 3000);

    assert_int_equal(node_call(&node, CALL_LOOKUP, rid_a).status, DIRECTORY_ABSENT);
    assert_int_equal(node_call(&node, CALL_CLAIM, rid_a).status, DIRECTORY_MINE);
    assert_rid_owned_by(&server, rid_a, &node);
    snprintf(key, sizeof(key), "msr:rdv:%s", rid_a);
    ttl = redis_fixture_integer(&server, "PTTL %s", key);
    assert_true(ttl > 0 && ttl <= 6000);
    assert_int_equal(relay_metrics.cluster.claims_held, 1);

    assert_int_equal(node_call(&node, CALL_CLAIM, rid_a).status, DIRECTORY_MINE);
    assert_int_equal(node_call(&node, CALL_LOOKUP, rid_a).status, DIRECTORY_MINE);
    assert_int_equal(relay_metrics.cluster.claims_held, 1);

    assert_int_equal(node_call(&node, CALL_RELEASE, rid_a).status, DIRECTORY_MINE);
    assert_string_equal(redis_fixture_get(&server, key, value, sizeof(value)), "");
    assert_int_equal(relay_metrics.cluster.claims_held, 0);
    assert_int_equal(node_call(&node, CALL_RELEASE, rid_a).status, DIRECTORY_ABSENT);
    assert_int_equal(node_call(&node, CALL_LOOKUP, rid_a).status, DIRECTORY_ABSENT);

    /* Destroying unregisters the node at once. */
    node_stop(&node);
    assert_int_equal(redis_fixture_integer(&server, "EXISTS %s", "msr:node:node-a"), 0);
    assert_int_equal(redis_fixture_count_fds(), fds_before);
    redis_fixture_stop(&server);
}

static void test_live_dead_and_restarted_owners(void **state)
{
    struct redis_server server = {0};
    struct node a, b;

    redis_fixture_start(&server, 0, NULL, NULL);
    node_configure(&a, "node-a", server.port);
    node_configure(&b, "node-b", server.port);
    node_start(&a);
    node_start(&b);
    node_wait_ready(&a, 5000);
    node_wait_ready(&b, 5000);

    assert_int_equal(node_call(&a, CALL_CLAIM, rid_a).status, DIRECTORY_MINE);
    assert_int_equal(node_call(&a, CALL_CLAIM, rid_b).status, DIRECTORY_MINE);
    struct answer answer = node_call(&b, CALL_CLAIM, rid_a);
    assert_int_equal(answer.status, DIRECTORY_ELSEWHERE);
    assert_true(answer.has_owner);
    assert_string_equal(answer.owner.node_id, "node-a");
    assert_string_equal(answer.owner.advertise_url, "ws://node-a.test:11062");
    assert_int_equal(answer.owner.epoch, a.identity.epoch);
    assert_int_equal(node_call(&b, CALL_LOOKUP, rid_a).status, DIRECTORY_ELSEWHERE);
    assert_rid_owned_by(&server, rid_a, &a);

    /* A dies (its loop is no longer served, its node key goes): B takes
     * rid_a over. */
    redisReply *reply = redis_fixture_command(&server, "DEL msr:node:node-a");
    freeReplyObject(reply);
    assert_int_equal(node_call(&b, CALL_LOOKUP, rid_a).status, DIRECTORY_ABSENT);
    assert_int_equal(node_call(&b, CALL_CLAIM, rid_a).status, DIRECTORY_MINE);
    assert_rid_owned_by(&server, rid_a, &b);

    /* A restarted elsewhere: its node key names another epoch. */
    reply = redis_fixture_command(&server, "HSET msr:node:node-a advertise x epoch 1");
    freeReplyObject(reply);
    assert_int_equal(node_call(&b, CALL_CLAIM, rid_b).status, DIRECTORY_MINE);
    assert_rid_owned_by(&server, rid_b, &b);

    /* A comes back to life: its next refresh finds live B holding both,
     * drops them, and its claims answer B. */
    reply = redis_fixture_command(&server, "DEL msr:node:node-a");
    freeReplyObject(reply);
    answer = node_call(&a, CALL_CLAIM, rid_a);
    assert_int_equal(answer.status, DIRECTORY_ELSEWHERE);
    assert_string_equal(answer.owner.node_id, "node-b");
    assert_int_equal(answer.owner.epoch, b.identity.epoch);

    node_stop(&a);
    node_stop(&b);
    redis_fixture_stop(&server);
}

static void test_claim_over(void **state)
{
    struct redis_server server = {0};
    struct node a, b;
    char key[128];

    redis_fixture_start(&server, 0, NULL, NULL);
    node_configure(&a, "node-a", server.port);
    node_configure(&b, "node-b", server.port);
    node_start(&a);
    node_start(&b);
    node_wait_ready(&a, 5000);
    node_wait_ready(&b, 5000);

    /* A is alive but told B it has no such id: B takes over A's exact
     * value. */
    assert_int_equal(node_call(&a, CALL_CLAIM, rid_a).status, DIRECTORY_MINE);
    struct directory_owner stale = {.epoch = a.identity.epoch};
    snprintf(stale.node_id, sizeof(stale.node_id), "node-a");
    assert_int_equal(node_claim_over(&b, rid_a, &stale).status, DIRECTORY_MINE);
    assert_rid_owned_by(&server, rid_a, &b);

    /* The key no longer names the stale owner but live B: answered B. */
    struct answer answer = node_claim_over(&a, rid_a, &stale);
    assert_int_equal(answer.status, DIRECTORY_ELSEWHERE);
    assert_string_equal(answer.owner.node_id, "node-b");
    assert_rid_owned_by(&server, rid_a, &b);

    /* Nobody holds it: taken. */
    assert_int_equal(node_claim_over(&a, rid_c, &stale).status, DIRECTORY_MINE);
    assert_rid_owned_by(&server, rid_c, &a);

    /* A dead third owner is no better than the stale one. */
    snprintf(key, sizeof(key), "msr:rdv:%s", rid_b);
    redisReply *reply = redis_fixture_command(&server, "SET %s ghost:1", key);
    freeReplyObject(reply);
    assert_int_equal(node_claim_over(&a, rid_b, &stale).status, DIRECTORY_MINE);
    assert_rid_owned_by(&server, rid_b, &a);

    node_stop(&a);
    node_stop(&b);
    redis_fixture_stop(&server);
}

static void test_redis_restarted_empty(void **state)
{
    struct redis_server server = {0};
    struct node node;

    redis_fixture_start(&server, 0, NULL, NULL);
    node_configure(&node, "node-a", server.port);
    node_start(&node);
    node_wait_ready(&node, 5000);
    assert_int_equal(node_call(&node, CALL_CLAIM, rid_a).status, DIRECTORY_MINE);
    assert_int_equal(node_call(&node, CALL_CLAIM, rid_b).status, DIRECTORY_MINE);

    redis_fixture_kill(&server);
    assert_true(redis_loop_run_until(&node.loop, node_is_not_ready, &node, 3000));
    redis_fixture_start(&server, server.port, NULL, NULL);
    node_wait_ready(&node, 5000);
    /* Ready means re-asserted: the keys are back before anyone asks. */
    assert_rid_owned_by(&server, rid_a, &node);
    assert_rid_owned_by(&server, rid_b, &node);
    assert_int_equal(redis_fixture_integer(&server, "EXISTS %s", "msr:node:node-a"), 1);
    assert_int_equal(relay_metrics.cluster.claims_held, 2);

    node_stop(&node);
    redis_fixture_stop(&server);
}

static void test_redis_unreachable_then_back(void **state)
{
    struct redis_server server = {0};
    struct node node;
    char key[128], value[128];

    redis_fixture_start(&server, 0, NULL, NULL);
    node_configure(&node, "node-a", server.port);
    node_start(&node);
    node_wait_ready(&node, 5000);
    assert_int_equal(node_call(&node, CALL_CLAIM, rid_a).status, DIRECTORY_MINE);

    /* Frozen: the next heartbeat misses its deadline. */
    redis_fixture_signal(&server, SIGSTOP);
    assert_true(redis_loop_run_until(&node.loop, node_is_not_ready, &node, 4000));
    struct answer answer = {0};
    directory_claim(node.directory, rid_b, answer_record, &answer);
    assert_int_equal(answer.count, 1); /* at once, not after a timeout */
    assert_int_equal(answer.status, DIRECTORY_ERROR);
    memset(&answer, 0, sizeof(answer));
    directory_release(node.directory, rid_a, answer_record, &answer);
    assert_int_equal(answer.count, 1);
    assert_int_equal(answer.status, DIRECTORY_ERROR);

    redis_fixture_signal(&server, SIGCONT);
    node_wait_ready(&node, 6000);
    /* The wanted id was asserted, the released one deleted. */
    assert_rid_owned_by(&server, rid_b, &node);
    redis_loop_run_for(&node.loop, 100);
    snprintf(key, sizeof(key), "msr:rdv:%s", rid_a);
    assert_string_equal(redis_fixture_get(&server, key, value, sizeof(value)), "");
    assert_int_equal(node_call(&node, CALL_LOOKUP, rid_b).status, DIRECTORY_MINE);

    node_stop(&node);
    redis_fixture_stop(&server);
}

static void test_ttl_refresh(void **state)
{
    struct redis_server server = {0};
    struct node node;
    char key[128];

    redis_fixture_start(&server, 0, NULL, NULL);
    node_configure(&node, "node-a", server.port);
    node.config.cluster.claim_ttl_seconds = 1;
    node.config.cluster.node_ttl_seconds = 2;
    node_start(&node);
    node_wait_ready(&node, 5000);
    assert_int_equal(node_call(&node, CALL_CLAIM, rid_a).status, DIRECTORY_MINE);
    redis_loop_run_for(&node.loop, 2500);
    snprintf(key, sizeof(key), "msr:rdv:%s", rid_a);
    assert_rid_owned_by(&server, rid_a, &node);
    long long ttl = redis_fixture_integer(&server, "PTTL %s", key);
    assert_true(ttl > 0 && ttl <= 1000);
    assert_int_equal(redis_fixture_integer(&server, "EXISTS %s", "msr:node:node-a"), 1);
    node_stop(&node);
    redis_fixture_stop(&server);
}

static void test_password_and_database(void **state)
{
    struct redis_server server = {0};
    struct node node;
    char key[128], expected[128];

    redis_fixture_start(&server, 0, "pa55word", NULL);
    node_configure(&node, "node-a", server.port);
    config_set_string(&node.config.cluster.redis_password, "pa55word");
    node.config.cluster.redis_database = 2;
    config_set_string(&node.config.cluster.key_prefix, "test:");
    node_start(&node);
    node_wait_ready(&node, 5000);
    assert_int_equal(node_call(&node, CALL_CLAIM, rid_a).status, DIRECTORY_MINE);

    redisContext *check = redis_fixture_connect(&server);
    redisReply *reply = redisCommand(check, "SELECT 2");
    freeReplyObject(reply);
    snprintf(key, sizeof(key), "test:rdv:%s", rid_a);
    reply = redisCommand(check, "GET %s", key);
    expected_value(&node, expected, sizeof(expected));
    assert_int_equal(reply->type, REDIS_REPLY_STRING);
    assert_string_equal(reply->str, expected);
    freeReplyObject(reply);
    redisFree(check);

    node_stop(&node);
    redis_fixture_stop(&server);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_identity),
        cmocka_unit_test(test_claim_lookup_release),
        cmocka_unit_test(test_live_dead_and_restarted_owners),
        cmocka_unit_test(test_claim_over),
        cmocka_unit_test(test_redis_restarted_empty),
        cmocka_unit_test(test_redis_unreachable_then_back),
        cmocka_unit_test(test_ttl_refresh),
        cmocka_unit_test(test_password_and_database),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * directory_redis.c - the cluster's directory of rendezvous ids, in Redis.
 *
 * Implements the directory seam (include/relay/directory.h) over
 * redis_client.c; the key layout is in directory_redis.h. Every write is a
 * small Lua script so that each decision is atomic on the server, and every
 * command touches one key so that rdv: keys can be sharded:
 *
 *   claim     set the id to us unless someone holds it (refresh the TTL if
 *             it is already ours); answers the owner after the call
 *   take_over set it to us only if it still names the given stale owner,
 *             nobody, or us; answers the owner after the call
 *   release   delete it only if it names us
 *   register  write our node hash and its TTL together (never a node key
 *             without a TTL, which would look alive forever)
 *   unregister delete our node hash only if it still has our epoch
 *
 * Scripts are loaded with SCRIPT LOAD on every new connection (a restarted
 * or newly promoted server has none), run with EVALSHA, and on NOSCRIPT
 * loaded again and retried once. Their SHA1s are computed here up front, so
 * the EVALSHAs can be pipelined right behind the loads.
 *
 * A claim answered with another owner checks that owner's liveness from C
 * (HMGET of its node key: alive iff the hash names the same epoch) and takes
 * a dead or stale owner's claim over with the take_over script, a few rounds
 * at most when other nodes race for the same id.
 *
 * The directory remembers every id this node owns or wants (a claim that
 * failed while Redis was unreachable): their TTLs are refreshed every
 * claim_ttl / 3, and after every (re)connection - Redis restarted empty,
 * a Sentinel failover, the network back - all of them are re-asserted before
 * is_ready() turns true again. An id a live node took meanwhile is dropped
 * with a warning. Ids released while Redis was unreachable are
 * compare-and-deleted once it is back.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "directory_redis.h"
#include "redis_client.h"
#include "relay/log.h"
#include "relay/metrics.h"
#include "rid_table.h"

#define DIRECTORY_TAKE_OVER_ROUNDS 3
#define DIRECTORY_KEY_MAX_LENGTH 255
#define DIRECTORY_PREFIX_MAX_LENGTH 64
/* "<node_id>:<epoch>" */
#define DIRECTORY_OWNER_VALUE_MAX_LENGTH (NODE_ID_MAX_LENGTH + 1 + 20)
#define DIRECTORY_DEFAULT_PREFIX "msr:"
#define DIRECTORY_DEFAULT_HEARTBEAT_SECONDS 1
#define DIRECTORY_DEFAULT_NODE_TTL_SECONDS 5
#define DIRECTORY_DEFAULT_CLAIM_TTL_SECONDS 60

enum directory_script {
    SCRIPT_CLAIM,
    SCRIPT_TAKE_OVER,
    SCRIPT_RELEASE,
    SCRIPT_REGISTER,
    SCRIPT_UNREGISTER,
    SCRIPT_COUNT
};

static const char *const directory_script_sources[SCRIPT_COUNT] = {
    /* claim: KEYS[1] rdv key; ARGV[1] us; ARGV[2] TTL ms */
    "if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return ARGV[1] end\n"
    "local owner = redis.call('GET', KEYS[1])\n"
    "if owner == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end\n"
    "return owner\n",
    /* take_over: KEYS[1] rdv key; ARGV[1] expected stale owner; ARGV[2] us;
     * ARGV[3] TTL ms */
    "local owner = redis.call('GET', KEYS[1])\n"
    "if owner == false or owner == ARGV[1] or owner == ARGV[2] then\n"
    "  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])\n"
    "  return ARGV[2]\n"
    "end\n"
    "return owner\n",
    /* release: KEYS[1] rdv key; ARGV[1] us */
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end\n"
    "return 0\n",
    /* register: KEYS[1] node key; ARGV[1] advertise URL; ARGV[2] epoch;
     * ARGV[3] TTL ms */
    "redis.call('HSET', KEYS[1], 'advertise', ARGV[1], 'epoch', ARGV[2])\n"
    "redis.call('PEXPIRE', KEYS[1], ARGV[3])\n"
    "return 1\n",
    /* unregister: KEYS[1] node key; ARGV[1] epoch */
    "if redis.call('HGET', KEYS[1], 'epoch') == ARGV[1] then return redis.call('DEL', KEYS[1]) "
    "end\n"
    "return 0\n",
};

/* Values of the claims table: what the directory knows about an id. */
static char directory_owned;  /* Redis names us */
static char directory_wanted; /* we asked, Redis could not answer yet */

struct directory_redis {
    struct directory base;
    struct lws_context *context;
    struct redis_client *client;
    struct cluster_identity self;
    char self_value[DIRECTORY_OWNER_VALUE_MAX_LENGTH + 1]; /* "<node_id>:<epoch>" */
    char epoch_text[21];
    char prefix[DIRECTORY_PREFIX_MAX_LENGTH + 1];
    char node_key[DIRECTORY_KEY_MAX_LENGTH + 1];
    char claim_ttl_text[24]; /* milliseconds */
    char node_ttl_text[24];
    lws_usec_t heartbeat_interval;
    lws_usec_t refresh_interval;
    char script_sha[SCRIPT_COUNT][41];

    struct rid_table *claims;     /* rid -> &directory_owned / &directory_wanted */
    struct rid_table *unreleased; /* rid -> &directory_owned */
    size_t owned_count;
    lws_sorted_usec_list_t heartbeat;
    lws_sorted_usec_list_t refresh;

    unsigned generation; /* bumped on every connection change */
    unsigned setup_remaining;
    bool ready;
    bool destroying;
};

enum directory_operation_kind {
    OPERATION_CLAIM,      /* user claim */
    OPERATION_CLAIM_OVER, /* user take-over of a stale owner */
    OPERATION_ASSERT,     /* re-assert or refresh an id we own or want */
    OPERATION_LOOKUP,
    OPERATION_RELEASE,
    OPERATION_FORGET, /* compare-and-delete without a caller */
    OPERATION_LOAD,   /* SCRIPT LOAD during setup */
    OPERATION_REGISTER,
    OPERATION_KIND_COUNT
};

static const char *const directory_operation_names[OPERATION_KIND_COUNT] = {
    "claim", "take-over", "re-assert", "lookup", "release", "release", "script load", "register"};

/* One request to the directory, alive until its last reply. */
struct directory_operation {
    struct directory_redis *directory;
    enum directory_operation_kind kind;
    char rid[RID_HEX_LENGTH + 1];
    directory_callback callback;
    void *context;
    unsigned generation;
    bool setup;      /* readiness of its generation waits for it */
    bool hard_error; /* an error reply or no reply, as opposed to contention */
    bool reloaded;   /* NOSCRIPT already handled once */
    enum directory_script script;
    int rounds_left;
    char other_value[DIRECTORY_OWNER_VALUE_MAX_LENGTH + 1]; /* the owner under examination */
    struct directory_owner other;
};

static struct directory_redis *directory_redis_of(struct directory *directory)
{
    return (struct directory_redis *)directory;
}

static void directory_redis_publish_count(struct directory_redis *directory)
{
    relay_metrics.cluster.claims_held = (int64_t)directory->owned_count;
}

static void directory_redis_rid_key(const struct directory_redis *directory, const char *rid,
                                    char *key, size_t size)
{
    snprintf(key, size, "%srdv:%s", directory->prefix, rid);
}

/* "<node_id>:<epoch>" -> owner (advertise left empty). */
static bool directory_redis_parse_owner(const char *value, struct directory_owner *owner)
{
    const char *colon = strchr(value, ':');
    char *end;

    if (colon == NULL || colon == value || colon - value > NODE_ID_MAX_LENGTH)
        return false;
    errno = 0;
    unsigned long long epoch = strtoull(colon + 1, &end, 10);
    if (end == colon + 1 || *end != '\0' || errno != 0)
        return false;
    memset(owner, 0, sizeof(*owner));
    memcpy(owner->node_id, value, (size_t)(colon - value));
    owner->epoch = epoch;
    return true;
}

/* ---- the claims table ------------------------------------------------------- */

static void directory_redis_mark_owned(struct directory_redis *directory, const char *rid)
{
    if (rid_table_get(directory->claims, rid) == &directory_owned)
        return;
    if (rid_table_put(directory->claims, rid, &directory_owned) == 0) {
        directory->owned_count++;
        directory_redis_publish_count(directory);
    }
}

static void directory_redis_forget(struct directory_redis *directory, const char *rid)
{
    if (rid_table_remove(directory->claims, rid) == &directory_owned) {
        directory->owned_count--;
        directory_redis_publish_count(directory);
    }
}

/* ---- operations ---------------------------------------------------------------- */

static struct directory_operation *directory_operation_new(struct directory_redis *directory,
                                                           enum directory_operation_kind kind,
                                                           const char *rid)
{
    struct directory_operation *operation = calloc(1, sizeof(*operation));
    if (operation == NULL)
        return NULL;
    operation->directory = directory;
    operation->kind = kind;
    operation->generation = directory->generation;
    operation->rounds_left = DIRECTORY_TAKE_OVER_ROUNDS;
    if (rid != NULL)
        snprintf(operation->rid, sizeof(operation->rid), "%s", rid);
    return operation;
}

static void directory_redis_setup_step_done(struct directory_redis *directory, unsigned generation,
                                            bool ok);
static void directory_redis_forget_in_redis(struct directory_redis *directory, const char *rid);

/* What an answer means for the ids we hold. */
static void directory_operation_record(struct directory_operation *operation,
                                       enum directory_status status)
{
    struct directory_redis *directory = operation->directory;
    void *entry = rid_table_get(directory->claims, operation->rid);

    if (status == DIRECTORY_MINE) {
        if (entry != NULL) {
            directory_redis_mark_owned(directory, operation->rid);
        } else {
            /* Released while this claim was in flight: a take-over may have
             * landed after the release's delete, so delete again. */
            directory_redis_forget_in_redis(directory, operation->rid);
        }
    } else if (status == DIRECTORY_ELSEWHERE && entry != NULL) {
        if (entry == &directory_owned)
            log_warn("directory: id %.16s... now belongs to live node %s; dropping our claim",
                     operation->rid, operation->other.node_id);
        directory_redis_forget(directory, operation->rid);
    }
}

static void directory_operation_finish(struct directory_operation *operation,
                                       enum directory_status status,
                                       const struct directory_owner *owner)
{
    struct directory_redis *directory = operation->directory;

    /* After destroy began nobody is told anything: the callers' state may
     * already be gone. */
    if (!directory->destroying) {
        switch (operation->kind) {
        case OPERATION_CLAIM:
        case OPERATION_CLAIM_OVER:
        case OPERATION_ASSERT:
            directory_operation_record(operation, status);
            break;
        case OPERATION_RELEASE:
        case OPERATION_FORGET:
            /* Not deleted: retry once Redis is back, unless claimed again. */
            if (status == DIRECTORY_ERROR && operation->hard_error &&
                rid_table_get(directory->claims, operation->rid) == NULL)
                rid_table_put(directory->unreleased, operation->rid, &directory_owned);
            break;
        default:
            break;
        }
        if (operation->callback != NULL)
            operation->callback(operation->context, operation->rid, status, owner);
        if (operation->setup)
            directory_redis_setup_step_done(directory, operation->generation,
                                            !operation->hard_error);
    }
    free(operation);
}

/* A failure to even send: Redis is down (or memory is out). */
static void directory_operation_send(struct directory_operation *operation,
                                     redis_client_reply_callback on_reply, int count,
                                     const char **arguments)
{
    if (redis_client_command_arguments(operation->directory->client, on_reply, operation, count,
                                       arguments, NULL) != 0) {
        operation->hard_error = true;
        directory_operation_finish(operation, DIRECTORY_ERROR, NULL);
    }
}

static void directory_operation_on_script_reply(void *data, const redisReply *reply);

/* EVALSHA of operation->script with the arguments its step needs. */
static void directory_operation_eval(struct directory_operation *operation,
                                     enum directory_script script)
{
    struct directory_redis *directory = operation->directory;
    char key[DIRECTORY_KEY_MAX_LENGTH + 1];
    const char *arguments[8] = {"EVALSHA", directory->script_sha[script], "1", key};
    int count = 4;

    operation->script = script;
    directory_redis_rid_key(directory, operation->rid, key, sizeof(key));
    switch (script) {
    case SCRIPT_CLAIM:
        arguments[count++] = directory->self_value;
        arguments[count++] = directory->claim_ttl_text;
        break;
    case SCRIPT_TAKE_OVER:
        arguments[count++] = operation->other_value;
        arguments[count++] = directory->self_value;
        arguments[count++] = directory->claim_ttl_text;
        break;
    case SCRIPT_RELEASE:
        arguments[count++] = directory->self_value;
        break;
    case SCRIPT_REGISTER:
        snprintf(key, sizeof(key), "%s", directory->node_key);
        arguments[count++] = directory->self.advertise_url;
        arguments[count++] = directory->epoch_text;
        arguments[count++] = directory->node_ttl_text;
        break;
    case SCRIPT_UNREGISTER:
        snprintf(key, sizeof(key), "%s", directory->node_key);
        arguments[count++] = directory->epoch_text;
        break;
    default:
        break;
    }
    directory_operation_send(operation, directory_operation_on_script_reply, count, arguments);
}

/* NOSCRIPT (server restarted, failed over or flushed behind our back): load
 * the script and run the same step again, once; both go out pipelined. */
static bool directory_operation_retry_script(struct directory_operation *operation,
                                             const redisReply *reply)
{
    struct directory_redis *directory = operation->directory;
    if (operation->reloaded || strncmp(reply->str, "NOSCRIPT", 8) != 0)
        return false;
    operation->reloaded = true;
    redis_client_command(directory->client, NULL, NULL, "SCRIPT LOAD %s",
                         directory_script_sources[operation->script]);
    directory_operation_eval(operation, operation->script);
    return true;
}

static void directory_operation_on_owner_reply(void *data, const redisReply *reply);

/* Another node's value is in the key: alive owners keep it, a dead or stale
 * one (its node key gone or naming another epoch) is taken over. */
static void directory_operation_examine(struct directory_operation *operation, const char *value)
{
    struct directory_redis *directory = operation->directory;
    char key[DIRECTORY_KEY_MAX_LENGTH + 1];

    snprintf(operation->other_value, sizeof(operation->other_value), "%s", value);
    if (!directory_redis_parse_owner(value, &operation->other)) {
        if (operation->kind == OPERATION_LOOKUP) {
            directory_operation_finish(operation, DIRECTORY_ABSENT, NULL);
            return;
        }
        log_warn("directory: id %.16s... holds a malformed owner \"%.80s\"; taking it over",
                 operation->rid, value);
        directory_operation_eval(operation, SCRIPT_TAKE_OVER);
        return;
    }
    snprintf(key, sizeof(key), "%snode:%s", directory->prefix, operation->other.node_id);
    const char *arguments[] = {"HMGET", key, "advertise", "epoch"};
    directory_operation_send(operation, directory_operation_on_owner_reply, 4, arguments);
}

/* The owner after a claim or take_over: us, or somebody to examine. */
static void directory_operation_on_owner_value(struct directory_operation *operation,
                                               const char *value)
{
    if (strcmp(value, operation->directory->self_value) == 0) {
        directory_operation_finish(operation, DIRECTORY_MINE, NULL);
        return;
    }
    if (operation->rounds_left-- <= 0) {
        log_warn("directory: id %.16s... keeps changing owner; giving up for now", operation->rid);
        directory_operation_finish(operation, DIRECTORY_ERROR, NULL);
        return;
    }
    directory_operation_examine(operation, value);
}

static void directory_operation_fail(struct directory_operation *operation, const redisReply *reply)
{
    operation->hard_error = true;
    if (reply != NULL)
        log_warn("directory: %s%s%.16s failed: %s", directory_operation_names[operation->kind],
                 operation->rid[0] != '\0' ? " of id " : "", operation->rid,
                 reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
    directory_operation_finish(operation, DIRECTORY_ERROR, NULL);
}

static void directory_operation_on_script_reply(void *data, const redisReply *reply)
{
    struct directory_operation *operation = data;

    if (reply == NULL) {
        directory_operation_fail(operation, NULL);
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        if (!directory_operation_retry_script(operation, reply))
            directory_operation_fail(operation, reply);
        return;
    }
    switch (operation->script) {
    case SCRIPT_CLAIM:
    case SCRIPT_TAKE_OVER:
        if (reply->type != REDIS_REPLY_STRING) {
            directory_operation_fail(operation, reply);
            return;
        }
        directory_operation_on_owner_value(operation, reply->str);
        return;
    case SCRIPT_RELEASE:
        directory_operation_finish(operation,
                                   reply->type == REDIS_REPLY_INTEGER && reply->integer == 1
                                       ? DIRECTORY_MINE
                                       : DIRECTORY_ABSENT,
                                   NULL);
        return;
    default:
        directory_operation_finish(operation, DIRECTORY_MINE, NULL);
        return;
    }
}

/* HMGET <prefix>node:<owner> advertise epoch */
static void directory_operation_on_owner_reply(void *data, const redisReply *reply)
{
    struct directory_operation *operation = data;
    struct directory_owner *other = &operation->other;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) {
        directory_operation_fail(operation, reply);
        return;
    }
    const redisReply *advertise = reply->element[0];
    const redisReply *epoch = reply->element[1];
    bool alive = advertise->type == REDIS_REPLY_STRING && epoch->type == REDIS_REPLY_STRING &&
                 strtoull(epoch->str, NULL, 10) == other->epoch;
    if (alive) {
        snprintf(other->advertise_url, sizeof(other->advertise_url), "%s", advertise->str);
        directory_operation_finish(operation, DIRECTORY_ELSEWHERE, other);
        return;
    }
    if (operation->kind == OPERATION_LOOKUP) {
        directory_operation_finish(operation, DIRECTORY_ABSENT, NULL);
        return;
    }
    log_debug("directory: id %.16s... held by dead or restarted node %s; taking it over",
              operation->rid, other->node_id);
    directory_operation_eval(operation, SCRIPT_TAKE_OVER);
}

static void directory_operation_on_get_reply(void *data, const redisReply *reply)
{
    struct directory_operation *operation = data;

    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        directory_operation_fail(operation, reply);
        return;
    }
    if (reply->type != REDIS_REPLY_STRING) {
        directory_operation_finish(operation, DIRECTORY_ABSENT, NULL);
        return;
    }
    if (strcmp(reply->str, operation->directory->self_value) == 0) {
        directory_operation_finish(operation, DIRECTORY_MINE, NULL);
        return;
    }
    directory_operation_examine(operation, reply->str);
}

/* Start an operation of kind on rid, or answer DIRECTORY_ERROR at once. */
static struct directory_operation *directory_redis_begin(struct directory_redis *directory,
                                                         enum directory_operation_kind kind,
                                                         const char *rid,
                                                         directory_callback callback, void *context)
{
    struct directory_operation *operation = NULL;
    if (redis_client_is_up(directory->client))
        operation = directory_operation_new(directory, kind, rid);
    if (operation == NULL) {
        if (callback != NULL)
            callback(context, rid, DIRECTORY_ERROR, NULL);
        return NULL;
    }
    operation->callback = callback;
    operation->context = context;
    return operation;
}

static void directory_redis_assert(struct directory_redis *directory, const char *rid, bool setup)
{
    struct directory_operation *operation =
        directory_operation_new(directory, OPERATION_ASSERT, rid);
    if (operation == NULL)
        return;
    operation->setup = setup;
    if (setup)
        directory->setup_remaining++;
    directory_operation_eval(operation, SCRIPT_CLAIM);
}

static void directory_redis_forget_in_redis(struct directory_redis *directory, const char *rid)
{
    struct directory_operation *operation =
        directory_operation_new(directory, OPERATION_FORGET, rid);
    if (operation != NULL)
        directory_operation_eval(operation, SCRIPT_RELEASE);
}

/* ---- directory ops -------------------------------------------------------------- */

/* The id is wanted from now on, whatever Redis answers (or fails to). */
static bool directory_redis_want(struct directory_redis *directory, const char *rid)
{
    rid_table_remove(directory->unreleased, rid);
    if (rid_table_get(directory->claims, rid) != NULL)
        return true;
    return rid_table_put(directory->claims, rid, &directory_wanted) == 0;
}

static void directory_redis_claim(struct directory *base, const char *rid,
                                  directory_callback callback, void *context)
{
    struct directory_redis *directory = directory_redis_of(base);
    if (!directory_redis_want(directory, rid)) {
        if (callback != NULL)
            callback(context, rid, DIRECTORY_ERROR, NULL);
        return;
    }
    struct directory_operation *operation =
        directory_redis_begin(directory, OPERATION_CLAIM, rid, callback, context);
    if (operation != NULL)
        directory_operation_eval(operation, SCRIPT_CLAIM);
}

static void directory_redis_claim_over(struct directory *base, const char *rid,
                                       const struct directory_owner *stale_owner,
                                       directory_callback callback, void *context)
{
    struct directory_redis *directory = directory_redis_of(base);
    if (!directory_redis_want(directory, rid)) {
        if (callback != NULL)
            callback(context, rid, DIRECTORY_ERROR, NULL);
        return;
    }
    struct directory_operation *operation =
        directory_redis_begin(directory, OPERATION_CLAIM_OVER, rid, callback, context);
    if (operation == NULL)
        return;
    snprintf(operation->other_value, sizeof(operation->other_value), "%s:%" PRIu64,
             stale_owner->node_id, stale_owner->epoch);
    operation->other = *stale_owner;
    directory_operation_eval(operation, SCRIPT_TAKE_OVER);
}

static void directory_redis_lookup(struct directory *base, const char *rid,
                                   directory_callback callback, void *context)
{
    struct directory_redis *directory = directory_redis_of(base);
    struct directory_operation *operation =
        directory_redis_begin(directory, OPERATION_LOOKUP, rid, callback, context);
    if (operation == NULL)
        return;
    char key[DIRECTORY_KEY_MAX_LENGTH + 1];
    directory_redis_rid_key(directory, rid, key, sizeof(key));
    const char *arguments[] = {"GET", key};
    directory_operation_send(operation, directory_operation_on_get_reply, 2, arguments);
}

static void directory_redis_release(struct directory *base, const char *rid,
                                    directory_callback callback, void *context)
{
    struct directory_redis *directory = directory_redis_of(base);
    directory_redis_forget(directory, rid);
    if (!redis_client_is_up(directory->client))
        rid_table_put(directory->unreleased, rid, &directory_owned);
    struct directory_operation *operation =
        directory_redis_begin(directory, OPERATION_RELEASE, rid, callback, context);
    if (operation != NULL)
        directory_operation_eval(operation, SCRIPT_RELEASE);
}

static bool directory_redis_is_ready(struct directory *base)
{
    return directory_redis_of(base)->ready;
}

/* ---- connection changes, setup, timers --------------------------------------- */

static void directory_redis_setup_step_done(struct directory_redis *directory, unsigned generation,
                                            bool ok)
{
    if (generation != directory->generation)
        return; /* a connection that is gone already */
    if (!ok) {
        redis_client_reconnect(directory->client, "directory setup failed");
        return;
    }
    if (--directory->setup_remaining > 0)
        return;
    directory->ready = true;
    log_info("directory: ready as %s (%zu ids held)", directory->self.node_id,
             directory->owned_count);
}

static void directory_redis_on_script_loaded(void *data, const redisReply *reply)
{
    struct directory_operation *operation = data;
    const char *expected = operation->directory->script_sha[operation->script];
    if (reply == NULL || reply->type != REDIS_REPLY_STRING || strcmp(reply->str, expected) != 0) {
        directory_operation_fail(operation, reply);
        return;
    }
    directory_operation_finish(operation, DIRECTORY_MINE, NULL);
}

static void directory_redis_setup_load(struct directory_redis *directory,
                                       enum directory_script script)
{
    struct directory_operation *operation =
        directory_operation_new(directory, OPERATION_LOAD, NULL);
    if (operation == NULL)
        return;
    operation->setup = true;
    operation->script = script;
    directory->setup_remaining++;
    const char *arguments[] = {"SCRIPT", "LOAD", directory_script_sources[script]};
    directory_operation_send(operation, directory_redis_on_script_loaded, 3, arguments);
}

static void directory_redis_register(struct directory_redis *directory, bool setup)
{
    struct directory_operation *operation =
        directory_operation_new(directory, OPERATION_REGISTER, NULL);
    if (operation == NULL)
        return;
    operation->setup = setup;
    if (setup)
        directory->setup_remaining++;
    directory_operation_eval(operation, SCRIPT_REGISTER);
}

/* During setup (not ready yet) each re-assert holds readiness back; the
 * periodic refresh runs only when ready. */
static void directory_redis_visit_assert(const char *rid, void *value, void *context)
{
    struct directory_redis *directory = context;
    directory_redis_assert(directory, rid, !directory->ready);
}

static void directory_redis_visit_unreleased(const char *rid, void *value, void *context)
{
    directory_redis_forget_in_redis(context, rid);
}

/* Collect the unreleased ids first: the table cannot change while visited. */
static void directory_redis_flush_unreleased(struct directory_redis *directory)
{
    struct rid_table *unreleased = directory->unreleased;
    struct rid_table *fresh = rid_table_new();
    if (fresh == NULL)
        return;
    directory->unreleased = fresh;
    rid_table_for_each(unreleased, directory_redis_visit_unreleased, directory);
    rid_table_free(unreleased);
}

/* Freshly connected (possibly to an empty or different server): load the
 * scripts, register, re-assert every id, all pipelined; ready when every
 * one of them answered. */
static void directory_redis_setup(struct directory_redis *directory)
{
    /* A failure while sending may already end this connection. */
    unsigned generation = directory->generation;
    directory->setup_remaining = 1; /* held until everything is sent */
    for (int script = 0; script < SCRIPT_COUNT; script++)
        directory_redis_setup_load(directory, (enum directory_script)script);
    directory_redis_register(directory, true);
    rid_table_for_each(directory->claims, directory_redis_visit_assert, directory);
    directory_redis_flush_unreleased(directory);
    directory_redis_setup_step_done(directory, generation, true);
}

static void directory_redis_on_state(void *owner, bool up)
{
    struct directory_redis *directory = owner;
    directory->generation++;
    directory->ready = false;
    directory->setup_remaining = 0;
    if (up)
        directory_redis_setup(directory);
    else
        log_warn("directory: not ready until Redis is back (%zu ids held)", directory->owned_count);
}

static void directory_redis_on_heartbeat(lws_sorted_usec_list_t *timer)
{
    struct directory_redis *directory = lws_container_of(timer, struct directory_redis, heartbeat);
    if (redis_client_is_up(directory->client))
        directory_redis_register(directory, false);
    lws_sul_schedule(directory->context, 0, &directory->heartbeat, directory_redis_on_heartbeat,
                     directory->heartbeat_interval);
}

/* Keep our claims' TTLs running (and win back wanted ids), pipelined. */
static void directory_redis_on_refresh(lws_sorted_usec_list_t *timer)
{
    struct directory_redis *directory = lws_container_of(timer, struct directory_redis, refresh);
    if (directory->ready)
        rid_table_for_each(directory->claims, directory_redis_visit_assert, directory);
    lws_sul_schedule(directory->context, 0, &directory->refresh, directory_redis_on_refresh,
                     directory->refresh_interval);
}

/* ---- life cycle ------------------------------------------------------------------ */

static void directory_redis_destroy(struct directory *base)
{
    struct directory_redis *directory = directory_redis_of(base);
    directory->destroying = true;
    lws_sul_cancel(&directory->heartbeat);
    lws_sul_cancel(&directory->refresh);
    /* Best effort: peers see us gone at once instead of after node_ttl. */
    if (redis_client_is_up(directory->client)) {
        struct directory_operation *operation =
            directory_operation_new(directory, OPERATION_REGISTER, NULL);
        if (operation != NULL)
            directory_operation_eval(operation, SCRIPT_UNREGISTER);
    }
    redis_client_destroy(directory->client);
    rid_table_free(directory->claims);
    rid_table_free(directory->unreleased);
    relay_metrics.cluster.claims_held = 0;
    free(directory);
}

static const struct directory_ops directory_redis_ops = {
    .name = "redis",
    .claim = directory_redis_claim,
    .claim_over = directory_redis_claim_over,
    .lookup = directory_redis_lookup,
    .release = directory_redis_release,
    .is_ready = directory_redis_is_ready,
    .destroy = directory_redis_destroy,
};

static int directory_redis_hash_scripts(struct directory_redis *directory)
{
    for (int script = 0; script < SCRIPT_COUNT; script++) {
        unsigned char digest[EVP_MAX_MD_SIZE];
        unsigned int length = 0;
        const char *source = directory_script_sources[script];
        if (EVP_Digest(source, strlen(source), digest, &length, EVP_sha1(), NULL) != 1)
            return -1;
        for (unsigned int i = 0; i < length && i < 20; i++)
            snprintf(directory->script_sha[script] + 2 * i, 3, "%02x", digest[i]);
    }
    return 0;
}

static int directory_redis_configure(struct directory_redis *directory,
                                     const struct relay_cluster_config *cluster,
                                     const struct cluster_identity *self)
{
    const char *prefix =
        cluster->key_prefix != NULL ? cluster->key_prefix : DIRECTORY_DEFAULT_PREFIX;
    int heartbeat = cluster->heartbeat_interval_seconds > 0 ? cluster->heartbeat_interval_seconds
                                                            : DIRECTORY_DEFAULT_HEARTBEAT_SECONDS;
    int node_ttl = cluster->node_ttl_seconds > 0 ? cluster->node_ttl_seconds
                                                 : DIRECTORY_DEFAULT_NODE_TTL_SECONDS;
    int claim_ttl = cluster->claim_ttl_seconds > 0 ? cluster->claim_ttl_seconds
                                                   : DIRECTORY_DEFAULT_CLAIM_TTL_SECONDS;

    if (strlen(prefix) > DIRECTORY_PREFIX_MAX_LENGTH) {
        log_error("directory: key prefix longer than 64 characters");
        return -1;
    }
    directory->self = *self;
    snprintf(directory->prefix, sizeof(directory->prefix), "%s", prefix);
    snprintf(directory->node_key, sizeof(directory->node_key), "%snode:%s", prefix, self->node_id);
    snprintf(directory->epoch_text, sizeof(directory->epoch_text), "%" PRIu64, self->epoch);
    snprintf(directory->self_value, sizeof(directory->self_value), "%s:%s", self->node_id,
             directory->epoch_text);
    snprintf(directory->claim_ttl_text, sizeof(directory->claim_ttl_text), "%lld",
             (long long)claim_ttl * 1000);
    snprintf(directory->node_ttl_text, sizeof(directory->node_ttl_text), "%lld",
             (long long)node_ttl * 1000);
    directory->heartbeat_interval = (lws_usec_t)heartbeat * LWS_US_PER_SEC;
    /* Three refreshes per TTL: one lost refresh never lets a claim lapse. */
    directory->refresh_interval = (lws_usec_t)claim_ttl * LWS_US_PER_SEC / 3;
    return directory_redis_hash_scripts(directory);
}

struct directory *directory_redis_new(struct lws_context *context, struct lws_vhost *vhost,
                                      const struct relay_config *config,
                                      const struct cluster_identity *self)
{
    struct directory_redis *directory = calloc(1, sizeof(*directory));
    if (directory == NULL)
        return NULL;
    directory->base.ops = &directory_redis_ops;
    directory->context = context;
    directory->claims = rid_table_new();
    directory->unreleased = rid_table_new();
    if (directory->claims == NULL || directory->unreleased == NULL ||
        directory_redis_configure(directory, &config->cluster, self) != 0)
        goto fail;
    directory->client =
        redis_client_new(context, vhost, &config->cluster, directory_redis_on_state, directory);
    if (directory->client == NULL)
        goto fail;
    lws_sul_schedule(context, 0, &directory->heartbeat, directory_redis_on_heartbeat,
                     directory->heartbeat_interval);
    lws_sul_schedule(context, 0, &directory->refresh, directory_redis_on_refresh,
                     directory->refresh_interval);
    return &directory->base;

fail:
    rid_table_free(directory->claims);
    rid_table_free(directory->unreleased);
    free(directory);
    return NULL;
}

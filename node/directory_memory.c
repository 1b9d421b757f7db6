/*
 * directory_memory.c - the standalone node's directory: every id is ours.
 *
 * Implements the directory seam (include/relay/directory.h) with an
 * in-process set of claimed ids. On a single node nobody else can own an id,
 * so a claim always answers DIRECTORY_MINE; the set exists so that lookup
 * and release behave like the Redis directory's and the matchmaker's use of
 * the seam is exercised identically in both modes. Answers are delivered
 * before the call returns.
 */
#include <stdlib.h>

#include "relay/directory.h"
#include "rid_table.h"

struct directory_memory {
    struct directory base;
    struct rid_table *claims;
};

static struct directory_memory *directory_memory_of(struct directory *directory)
{
    return (struct directory_memory *)directory;
}

/* The value stored for a claim: any non-NULL marker. */
static char directory_memory_claimed;

static void directory_memory_claim(struct directory *directory, const char *rid,
                                   directory_callback callback, void *context)
{
    struct directory_memory *memory = directory_memory_of(directory);
    enum directory_status status = DIRECTORY_MINE;
    if (rid_table_put(memory->claims, rid, &directory_memory_claimed) != 0)
        status = DIRECTORY_ERROR;
    if (callback != NULL)
        callback(context, rid, status, NULL);
}

/* Nobody else can own an id here: taking over is a plain claim. */
static void directory_memory_claim_over(struct directory *directory, const char *rid,
                                        const struct directory_owner *stale_owner,
                                        directory_callback callback, void *context)
{
    directory_memory_claim(directory, rid, callback, context);
}

static void directory_memory_lookup(struct directory *directory, const char *rid,
                                    directory_callback callback, void *context)
{
    struct directory_memory *memory = directory_memory_of(directory);
    enum directory_status status =
        rid_table_get(memory->claims, rid) != NULL ? DIRECTORY_MINE : DIRECTORY_ABSENT;
    if (callback != NULL)
        callback(context, rid, status, NULL);
}

static void directory_memory_release(struct directory *directory, const char *rid,
                                     directory_callback callback, void *context)
{
    struct directory_memory *memory = directory_memory_of(directory);
    enum directory_status status =
        rid_table_remove(memory->claims, rid) != NULL ? DIRECTORY_MINE : DIRECTORY_ABSENT;
    if (callback != NULL)
        callback(context, rid, status, NULL);
}

static bool directory_memory_is_ready(struct directory *directory)
{
    return true;
}

static void directory_memory_destroy(struct directory *directory)
{
    struct directory_memory *memory = directory_memory_of(directory);
    rid_table_free(memory->claims);
    free(memory);
}

static const struct directory_ops directory_memory_ops = {
    .name = "memory",
    .claim = directory_memory_claim,
    .claim_over = directory_memory_claim_over,
    .lookup = directory_memory_lookup,
    .release = directory_memory_release,
    .is_ready = directory_memory_is_ready,
    .destroy = directory_memory_destroy,
};

struct directory *directory_memory_new(void)
{
    struct directory_memory *memory = calloc(1, sizeof(*memory));
    if (memory == NULL)
        return NULL;
    memory->claims = rid_table_new();
    if (memory->claims == NULL) {
        free(memory);
        return NULL;
    }
    memory->base.ops = &directory_memory_ops;
    return &memory->base;
}

unsigned long directory_memory_count(struct directory *directory)
{
    return (unsigned long)rid_table_count(directory_memory_of(directory)->claims);
}

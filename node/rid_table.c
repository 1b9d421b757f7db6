/*
 * rid_table.c - chained hash table from rendezvous id to pointer.
 *
 * Buckets are singly linked lists; the bucket array doubles when the load
 * factor passes 1 and never shrinks below its initial size (a relay's id
 * count rises and falls with its connections, and rehashing down on every
 * dip would only add latency). Keys are copied into the entries.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rid_table.h"

#define RID_TABLE_INITIAL_BUCKETS 64

struct rid_entry {
    struct rid_entry *next;
    void *value;
    char rid[RID_HEX_LENGTH + 1];
};

struct rid_table {
    struct rid_entry **buckets;
    size_t bucket_count; /* a power of two */
    size_t count;
};

/* The first 16 hex digits of a SHA-256 output are uniformly distributed. */
static size_t rid_table_hash(const char *rid)
{
    uint64_t hash = 0;
    for (int i = 0; i < 16 && rid[i] != '\0'; i++) {
        char c = rid[i];
        unsigned digit =
            (c >= '0' && c <= '9') ? (unsigned)(c - '0') : (unsigned)((c | 0x20) - 'a' + 10);
        hash = (hash << 4) | (digit & 0xf);
    }
    return (size_t)hash;
}

struct rid_table *rid_table_new(void)
{
    struct rid_table *table = calloc(1, sizeof(*table));
    if (table == NULL)
        return NULL;
    table->buckets = calloc(RID_TABLE_INITIAL_BUCKETS, sizeof(*table->buckets));
    if (table->buckets == NULL) {
        free(table);
        return NULL;
    }
    table->bucket_count = RID_TABLE_INITIAL_BUCKETS;
    return table;
}

void rid_table_free(struct rid_table *table)
{
    if (table == NULL)
        return;
    for (size_t i = 0; i < table->bucket_count; i++) {
        struct rid_entry *entry = table->buckets[i];
        while (entry != NULL) {
            struct rid_entry *next = entry->next;
            free(entry);
            entry = next;
        }
    }
    free(table->buckets);
    free(table);
}

static struct rid_entry **rid_table_find_link(const struct rid_table *table, const char *rid)
{
    struct rid_entry **link = &table->buckets[rid_table_hash(rid) & (table->bucket_count - 1)];
    while (*link != NULL && strcmp((*link)->rid, rid) != 0)
        link = &(*link)->next;
    return link;
}

void *rid_table_get(const struct rid_table *table, const char *rid)
{
    struct rid_entry *entry = *rid_table_find_link(table, rid);
    return entry != NULL ? entry->value : NULL;
}

/* Doubling keeps chains short; a failed grow just leaves longer chains. */
static void rid_table_grow(struct rid_table *table)
{
    size_t new_count = table->bucket_count * 2;
    struct rid_entry **new_buckets = calloc(new_count, sizeof(*new_buckets));
    if (new_buckets == NULL)
        return;
    for (size_t i = 0; i < table->bucket_count; i++) {
        struct rid_entry *entry = table->buckets[i];
        while (entry != NULL) {
            struct rid_entry *next = entry->next;
            size_t slot = rid_table_hash(entry->rid) & (new_count - 1);
            entry->next = new_buckets[slot];
            new_buckets[slot] = entry;
            entry = next;
        }
    }
    free(table->buckets);
    table->buckets = new_buckets;
    table->bucket_count = new_count;
}

int rid_table_put(struct rid_table *table, const char *rid, void *value)
{
    struct rid_entry **link = rid_table_find_link(table, rid);
    if (*link != NULL) {
        (*link)->value = value;
        return 0;
    }
    struct rid_entry *entry = malloc(sizeof(*entry));
    if (entry == NULL)
        return -1;
    memcpy(entry->rid, rid, RID_HEX_LENGTH);
    entry->rid[RID_HEX_LENGTH] = '\0';
    entry->value = value;
    entry->next = NULL;
    *link = entry;
    table->count++;
    if (table->count > table->bucket_count)
        rid_table_grow(table);
    return 0;
}

void *rid_table_remove(struct rid_table *table, const char *rid)
{
    struct rid_entry **link = rid_table_find_link(table, rid);
    struct rid_entry *entry = *link;
    if (entry == NULL)
        return NULL;
    void *value = entry->value;
    *link = entry->next;
    free(entry);
    table->count--;
    return value;
}

size_t rid_table_count(const struct rid_table *table)
{
    return table->count;
}

void rid_table_for_each(const struct rid_table *table,
                        void (*visit)(const char *rid, void *value, void *context), void *context)
{
    for (size_t i = 0; i < table->bucket_count; i++)
        for (struct rid_entry *entry = table->buckets[i]; entry != NULL; entry = entry->next)
            visit(entry->rid, entry->value, context);
}

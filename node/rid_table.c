/*
 * rid_table.c - chained hash table from rendezvous id to pointer.
 *
 * Buckets are singly linked lists; the bucket array doubles when the load
 * factor passes 1 and never shrinks below its initial size (a relay's id
 * count rises and falls with its connections, and rehashing down on every
 * dip would only add latency). Keys are stored as the 32 bytes the 64 hex
 * digits stand for: a node holds an entry per pending connection in two
 * tables (matchmaker and directory), and the binary key halves what each
 * entry costs. Ids reach the table validated and lower-cased; anything else
 * is never stored and never found.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rid_table.h"

#define RID_TABLE_INITIAL_BUCKETS 64

#define RID_BYTES (RID_HEX_LENGTH / 2)

struct rid_entry {
    struct rid_entry *next;
    void *value;
    unsigned char rid[RID_BYTES];
};

struct rid_table {
    struct rid_entry **buckets;
    size_t bucket_count; /* a power of two */
    size_t count;
};

static int rid_table_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* 64 lower-case hex digits to 32 bytes. Returns 0, or -1 for anything else. */
static int rid_table_pack(const char *rid, unsigned char key[RID_BYTES])
{
    for (int i = 0; i < RID_BYTES; i++) {
        int high = rid_table_hex_digit(rid[2 * i]);
        int low = high < 0 ? -1 : rid_table_hex_digit(rid[2 * i + 1]);
        if (low < 0)
            return -1;
        key[i] = (unsigned char)(high << 4 | low);
    }
    return rid[RID_HEX_LENGTH] == '\0' ? 0 : -1;
}

static void rid_table_unpack(const unsigned char key[RID_BYTES], char rid[RID_HEX_LENGTH + 1])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < RID_BYTES; i++) {
        rid[2 * i] = digits[key[i] >> 4];
        rid[2 * i + 1] = digits[key[i] & 0xf];
    }
    rid[RID_HEX_LENGTH] = '\0';
}

/* The first 8 bytes of a SHA-256 output are uniformly distributed. */
static size_t rid_table_hash(const unsigned char key[RID_BYTES])
{
    uint64_t hash = 0;
    for (int i = 0; i < 8; i++)
        hash = (hash << 8) | key[i];
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

static struct rid_entry **rid_table_find_link(const struct rid_table *table,
                                              const unsigned char key[RID_BYTES])
{
    struct rid_entry **link = &table->buckets[rid_table_hash(key) & (table->bucket_count - 1)];
    while (*link != NULL && memcmp((*link)->rid, key, RID_BYTES) != 0)
        link = &(*link)->next;
    return link;
}

void *rid_table_get(const struct rid_table *table, const char *rid)
{
    unsigned char key[RID_BYTES];
    if (rid_table_pack(rid, key) != 0)
        return NULL;
    struct rid_entry *entry = *rid_table_find_link(table, key);
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
    unsigned char key[RID_BYTES];
    if (rid_table_pack(rid, key) != 0)
        return -1;
    struct rid_entry **link = rid_table_find_link(table, key);
    if (*link != NULL) {
        (*link)->value = value;
        return 0;
    }
    struct rid_entry *entry = malloc(sizeof(*entry));
    if (entry == NULL)
        return -1;
    memcpy(entry->rid, key, RID_BYTES);
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
    unsigned char key[RID_BYTES];
    if (rid_table_pack(rid, key) != 0)
        return NULL;
    struct rid_entry **link = rid_table_find_link(table, key);
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
    char rid[RID_HEX_LENGTH + 1];
    for (size_t i = 0; i < table->bucket_count; i++)
        for (struct rid_entry *entry = table->buckets[i]; entry != NULL; entry = entry->next) {
            rid_table_unpack(entry->rid, rid);
            visit(rid, entry->value, context);
        }
}

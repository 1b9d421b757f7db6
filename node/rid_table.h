/*
 * rid_table.h - a hash table keyed by rendezvous id.
 *
 * Maps a 64-hex-digit rid to a pointer. The matchmaker keeps one entry per id
 * it is matching, the in-memory directory one per claimed id. Ids are SHA-256
 * outputs, so their leading digits are already uniformly distributed and make
 * a good hash without further mixing.
 */
#ifndef RELAY_RID_TABLE_H
#define RELAY_RID_TABLE_H

#include <stddef.h>

#include "relay/protocol.h"

struct rid_table;

struct rid_table *rid_table_new(void);
/* Frees the table, not the values. */
void rid_table_free(struct rid_table *table);
/* NULL when absent. */
void *rid_table_get(const struct rid_table *table, const char *rid);
/* rid: 64 lower-case hex digits (what the request parser and the link
 * accept); any other key is never stored and never found. */
/* Insert or replace. Returns 0, or -1 when out of memory or rid is invalid. */
int rid_table_put(struct rid_table *table, const char *rid, void *value);
/* Returns the removed value, or NULL when absent. */
void *rid_table_remove(struct rid_table *table, const char *rid);
size_t rid_table_count(const struct rid_table *table);
/* Call visit for every entry; visit must not modify the table. */
void rid_table_for_each(const struct rid_table *table,
                        void (*visit)(const char *rid, void *value, void *context), void *context);

#endif

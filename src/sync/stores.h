/* stores: store configurations kept in ZooKeeper.
 *
 * <root>/stores/<name> holds the configuration as JSON:
 *   {"conflict":"cas"|"lww","maxValueBytes":N,"tombstoneTtlSeconds":N,
 *    "maxRecords":N,"maxBytes":N,        (quotas, optional)
 *    "schema":{...},                     (JSON Schema draft-07, optional)
 *    "horizon":"<cursor>"}   (horizon: once tombstones were collected)
 * and, while a deletion is under way, "deleting":true (the store is then
 * gone for readers; the next PUT or DELETE of that name finishes the job).
 * Creating a store creates, in one multi, its node, r/ and c/ and their 256
 * bucket children. All calls are synchronous and safe from any thread. */
#ifndef ZS_STORES_H
#define ZS_STORES_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sync/cursor.h"
#include "sync/store_schema.h"
#include "util/err.h"
#include "util/jraw.h"
#include "util/sbuf.h"
#include "zk/zkc.h"

#define STORES_MAX_VALUE_CEILING 1000000 /* what one znode holds, with room for the path */
#define STORES_MAX_QUOTA 1000000000000000LL /* 10^15: quotas are integers from 1 to this */

typedef struct store_cfg {
    char name[65];
    bool lww;
    int64_t max_value_bytes;
    int64_t tombstone_ttl;
    int64_t max_records; /* quota on live records; 0: none */
    int64_t max_bytes;   /* quota on keys + compact values of live records; 0: none */
    cursor_pos horizon;  /* newest collected deletion: older cursors expired */
    int64_t czxid;       /* identity of this incarnation of the store */
    int32_t zversion;    /* of the config znode */
    /* The schema: ONE counted reference owned by this struct, or NULL. A
     * store_cfg filled by stores_get / stores_put / stores_parse /
     * mirror_set_config owns one: drop it with store_cfg_release; copy with
     * store_cfg_copy (a plain `=` would share the reference). */
    store_schema *schema;
} store_cfg;

/* *dst = *src with a reference of its own to the schema (dst not released). */
void store_cfg_copy(store_cfg *dst, const store_cfg *src);
/* Drops c's schema reference (c->schema = NULL). */
void store_cfg_release(store_cfg *c);

/* Splits a JSON object's text into its compact form with the value of the
 * top-level member "schema" replaced by true (kept when null), for jansson,
 * and that value's compact text (schema->len 0 when absent or null): jansson
 * would round 0.1 and refuse big integers, which a schema may hold. 0, or
 * -1 and *err when in is not JSON. rest and schema are appended to. */
int stores_split_schema(const char *in, size_t n, sbuf *rest, sbuf *schema, jraw_err *err);

/* 0 and *out, or -1 and err (404 store_not_found, 503). */
int stores_get(zkc *z, const char *root, const char *name, store_cfg *out, zs_err *err);
/* Creates or updates from body (NULL or an object: only the fields given
 * change). body as stores_split_schema leaves it: a non-null "schema" member
 * stands for schema_text[0..schema_len) (compiled here: 400 naming the
 * keyword when it does not compile). 0 and *out and *created, or -1 and err
 * (400 bad_request, 503). */
int stores_put(zkc *z, const char *root, const char *name, const json_t *body, const char *schema_text,
               size_t schema_len, store_cfg *out, bool *created, zs_err *err);
/* 0, or -1 and err (404, 503). */
int stores_delete(zkc *z, const char *root, const char *name, zs_err *err);
/* Whether store `name` is being deleted (its config marked, a DELETE under
 * way on some gateway, or interrupted): 1 and how many of its *total
 * record buckets are left (deletion removes them one after another, each
 * with its records), 0 when it is not (absent, or a live store), -1 on a
 * ZooKeeper error. Two reads. */
int stores_deletion_progress(zkc *z, const char *root, const char *name, int *left, int *total);
/* Moves the store's horizon forward to h (never back). 0, or -1 and err. */
int stores_advance_horizon(zkc *z, const char *root, const char *name, const cursor_pos *h, zs_err *err);
/* Parses a config znode's data (for the mirror's config watch) over the
 * defaults of store `name`, distrusting it (every field checked as a PUT
 * body is; a horizon beyond mzxid, the config znode's own, refused);
 * czxid and zversion are left 0 (they come from the znode's stat). Returns
 * 1 when the store is being deleted, 0 when fine, -1 when not a config,
 * -2 when invalid (*why says what). stores_get answers 503 for an invalid
 * config (the store is unavailable until an admin PUT rewrites it). */
int stores_parse(store_cfg *c, const char *name, const char *data, int len, int64_t mzxid, const char **why);
/* Names of every store, sorted; free with stores_free_names. */
int stores_list(zkc *z, const char *root, char ***names, size_t *count, zs_err *err);
void stores_free_names(char **names, size_t count);
/* Appends the description object of PROTOCOL.md "Stores". */
void stores_describe(const store_cfg *c, size_t records, const char *cursor, sbuf *out);

#endif

/* stores: store configurations kept in ZooKeeper.
 *
 * <root>/stores/<name> holds the configuration as JSON (its form and its
 * parse: cache/store_cfg.h); while a deletion is under way, "deleting":true
 * (the store is then gone for readers; the next PUT or DELETE of that name
 * finishes the job). stores_get answers 503 for an invalid config (the
 * store is unavailable until an admin PUT rewrites it).
 * Creating a store creates, in one multi, its node, r/ and c/ and their 256
 * bucket children. All calls are synchronous and safe from any thread.
 * The calls that read a config take the gateway's schema cache (schemas,
 * cache/store_schema.h; owned by main): its schema is found there, or
 * compiled into it. */
#ifndef ZS_STORES_H
#define ZS_STORES_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/cursor.h"
#include "cache/store_cfg.h"
#include "util/err.h"
#include "util/jraw.h"
#include "util/sbuf.h"

/* The write session (zk/zkc.h): an opaque handle here, so that the layers
 * above sync need not see ZooKeeper. */
typedef struct zkc zkc;

/* 0 and *out, or -1 and err (404 store_not_found, 503). */
int stores_get(zkc *z, const char *root, store_schema_cache *schemas, const char *name, store_cfg *out, zs_err *err);
/* Whether incarnation czxid of the store is gone for requests: 1 when its
 * config is absent, another incarnation, or marked as being deleted; 0 when
 * it is there, unmarked; or ZooKeeper's error (< 0). One read; the config's
 * schema is not compiled. */
int stores_gone(zkc *z, const char *root, const char *name, int64_t czxid);
/* Creates or updates from body (NULL or an object: only the fields given
 * change). body as store_cfg_split_schema leaves it: a non-null "schema" member
 * stands for schema_text[0..schema_len) (compiled here: 400 naming the
 * keyword when it does not compile). 0 and *out and *created, or -1 and err
 * (400 bad_request, 503). */
int stores_put(zkc *z, const char *root, store_schema_cache *schemas, const char *name, const json_t *body,
               const char *schema_text, size_t schema_len, store_cfg *out, bool *created, zs_err *err);
/* 0, or -1 and err (404, 503). */
int stores_delete(zkc *z, const char *root, store_schema_cache *schemas, const char *name, zs_err *err);
/* Whether store `name` is being deleted (its config marked, a DELETE under
 * way on some gateway, or interrupted): 1 and how many of its *total
 * record buckets are left (deletion removes them one after another, each
 * with its records), 0 when it is not (absent, or a live store), -1 on a
 * ZooKeeper error. Two reads. */
int stores_deletion_progress(zkc *z, const char *root, store_schema_cache *schemas, const char *name, int *left,
                             int *total);
/* Moves the horizon of incarnation czxid of the store forward to h (never
 * back), provided its config is still at version expect (the one whose TTL
 * chose what h covers). 0 and *zversion (the config's version with that
 * horizon in it), or -1 and err: 404 also when the store is another
 * incarnation now, 409 when the config changed since expect. */
int stores_advance_horizon(zkc *z, const char *root, store_schema_cache *schemas, const char *name, int64_t czxid,
                           int32_t expect, const cursor_pos *h, int32_t *zversion, zs_err *err);
/* Names of every store, sorted; free with stores_free_names. */
int stores_list(zkc *z, const char *root, char ***names, size_t *count, zs_err *err);
void stores_free_names(char **names, size_t count);
/* Appends the description object of PROTOCOL.md "Stores". */
void stores_describe(const store_cfg *c, size_t records, const char *cursor, sbuf *out);

#endif

/* store_cfg: a store's configuration as the gateway holds it, and its
 * parse from the config znode's JSON. Below the mirror, which watches the
 * config znodes and parses what it reads (sync/stores reads and writes
 * them through the write session).
 *
 * The config znode <root>/stores/<name> holds:
 *   {"conflict":"cas"|"lww","maxValueBytes":N,"tombstoneTtlSeconds":N,
 *    "maxRecords":N,"maxBytes":N,        (quotas, optional)
 *    "schema":{...},                     (JSON Schema draft-07, optional)
 *    "horizon":"<cursor>"}   (horizon: once tombstones were collected)
 * and, while a deletion is under way, "deleting":true.
 *
 * Ownership: a store_cfg owns one counted reference to its schema (see
 * the struct); store_cfg_parse takes it from the caller's schema cache
 * (which is not kept). Threads: pure functions on the caller's struct; any
 * thread (the schema cache is thread-safe, cache/store_schema.h). */
#ifndef ZS_STORE_CFG_H
#define ZS_STORE_CFG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/cursor.h"
#include "cache/store_schema.h"
#include "util/jraw.h"
#include "util/names.h"
#include "util/sbuf.h"

#define STORE_CFG_MAX_VALUE_CEILING 1000000 /* what one znode holds, with room for the path */
#define STORE_CFG_MAX_QUOTA 1000000000000000LL /* 10^15: quotas are integers from 1 to this */
#define STORE_CFG_MAX_TTL 3153600000LL /* tombstoneTtlSeconds: at most 100 years */
#define STORE_CFG_DEFAULT_MAX_VALUE_BYTES 65536
#define STORE_CFG_DEFAULT_TTL 604800 /* a week */

typedef struct store_cfg {
    char name[NAMES_MAX_BYTES + 1];
    bool lww;
    int64_t max_value_bytes;
    int64_t tombstone_ttl;
    int64_t max_records; /* quota on live records; 0: none */
    int64_t max_bytes;   /* quota on keys + compact values of live records; 0: none */
    cursor_pos horizon;  /* newest collected deletion: older cursors expired */
    int64_t czxid;       /* identity of this incarnation of the store */
    int32_t zversion;    /* of the config znode */
    /* The schema: ONE counted reference owned by this struct, or NULL. A
     * store_cfg filled by stores_get / stores_put / store_cfg_parse /
     * mirror_set_config owns one: drop it with store_cfg_release; copy with
     * store_cfg_copy (a plain `=` would share the reference). */
    store_schema *schema;
} store_cfg;

/* The defaults of store `name` (no schema, no quota). */
void store_cfg_defaults(store_cfg *c, const char *name);
/* *dst = *src with a reference of its own to the schema (dst not released). */
void store_cfg_copy(store_cfg *dst, const store_cfg *src);
/* Drops c's schema reference (c->schema = NULL). */
void store_cfg_release(store_cfg *c);

/* Splits a JSON object's text into its compact form with the value of the
 * top-level member "schema" replaced by true (kept when null), for jansson,
 * and that value's compact text (schema->len 0 when absent or null): jansson
 * would round 0.1 and refuse big integers, which a schema may hold. 0, or
 * -1 and *err when in is not JSON. rest and schema are appended to. */
int store_cfg_split_schema(const char *in, size_t n, sbuf *rest, sbuf *schema, jraw_err *err);

/* A quota: an integer from 1 to STORE_CFG_MAX_QUOTA into *out, or null for
 * none (0). -1 otherwise. */
int store_cfg_quota_parse(const json_t *v, int64_t *out);

/* Parses a config znode's data over the defaults of store `name`,
 * distrusting it (anyone with write access to ZooKeeper could have written
 * it: every field checked as a PUT body is; a horizon beyond mzxid, the
 * config znode's own, refused; mzxid -1: unknown); czxid and zversion are
 * left 0 (they come from the znode's stat). The schema, when there is one,
 * comes from (or is compiled into) cache schemas. Returns 1 when the store
 * is being deleted, 0 when fine, -1 when not a config object, -2 when
 * invalid (why[0..whylen) says what, util/err.h). */
int store_cfg_parse(store_cfg *c, store_schema_cache *schemas, const char *name, const char *data, int len,
                    int64_t mzxid, char *why, size_t whylen);

#endif

#include "sync/stores.h"

#include "zk/zkc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/bounds.h"
#include "util/names.h"
#include "zk/layout.h"
#include "zk/zkerr.h"

/* A config znode: a few fields and a schema (SCHEMA_MAX_TEXT, compact). */
#define CFG_BUF ((int)(SCHEMA_MAX_TEXT + 64 * 1024))
#define STORES_CREATE_MAX_BYTES 1000000 /* below jute.maxbuffer (1 MiB) */
#define STORES_TOO_LARGE (-1001)
#define STORES_PATCH_FAILED (-1003)

/* The quotas that are set, as ,"maxRecords":N,"maxBytes":N. */
static void quotas_json(const store_cfg *c, sbuf *b) {
    if (c->max_records) sbuf_printf(b, ",\"maxRecords\":%lld", (long long)c->max_records);
    if (c->max_bytes) sbuf_printf(b, ",\"maxBytes\":%lld", (long long)c->max_bytes);
}

static void schema_json(const store_cfg *c, sbuf *b) {
    if (!c->schema) return;
    size_t n;
    const char *t = store_schema_text(c->schema, &n);
    sbuf_puts(b, ",\"schema\":");
    sbuf_append(b, t, n);
}

static char *cfg_json(const store_cfg *c, bool deleting) {
    char h[CURSOR_LEN + 1] = "";
    bool has_h = c->horizon.zxid || c->horizon.khash || c->horizon.version;
    if (has_h) cursor_format(&c->horizon, h);
    sbuf b = SBUF_INIT;
    sbuf_printf(&b, "{\"conflict\":\"%s\",\"maxValueBytes\":%lld,\"tombstoneTtlSeconds\":%lld",
                c->lww ? "lww" : "cas", (long long)c->max_value_bytes, (long long)c->tombstone_ttl);
    quotas_json(c, &b);
    schema_json(c, &b);
    if (has_h) sbuf_printf(&b, ",\"horizon\":\"%s\"", h);
    if (deleting) sbuf_puts(&b, ",\"deleting\":true");
    sbuf_putc(&b, '}');
    return sbuf_steal(&b, NULL);
}

/* Reads the config znode. Returns ZOK (with *deleting), ZNONODE, or an
 * error; CFG_INVALID (with why) for a config with an invalid field (then
 * *out has the defaults, its czxid and zversion). */
#define CFG_INVALID (-1000)
static int cfg_read_checked(zkc *z, store_schema_cache *schemas, const char *path, const char *name, store_cfg *out,
                            bool *deleting, char *why, size_t whylen) {
    int len = CFG_BUF;
    struct Stat st;
    store_cfg_defaults(out, name);
    char *buf = malloc(CFG_BUF);
    if (!buf) return ZSYSTEMERROR;
    int rc = zoo_get(zkc_zh(z), path, 0, buf, &len, &st);
    if (rc != ZOK) { free(buf); return rc; }
    int p = len < 0 || len >= CFG_BUF ? -2 : store_cfg_parse(out, schemas, name, buf, len, st.mzxid, why, whylen);
    if (len < 0 || len >= CFG_BUF) zs_errf(why, whylen, "too large");
    free(buf);
    out->czxid = st.czxid;
    out->zversion = st.version;
    if (p < 0) {
        /* Not a valid config (not even JSON): the store stays, unavailable
         * (503) until an admin PUT rewrites it or a DELETE removes it. The
         * defaults, but a horizon at the config's last write: whatever the
         * old horizon was, no cursor from before it is trusted (a reader
         * resyncs rather than miss a collected deletion). */
        store_cfg_defaults(out, name);
        out->czxid = st.czxid;
        out->zversion = st.version;
        out->horizon = cursor_after_zxid((uint64_t)st.mzxid);
        return CFG_INVALID;
    }
    *deleting = p == 1;
    out->czxid = st.czxid;
    out->zversion = st.version;
    return ZOK;
}

/* As cfg_read_checked, an invalid config taken as the defaults: for the
 * writers that replace it (PUT, DELETE). */
static int cfg_read(zkc *z, store_schema_cache *schemas, const char *path, const char *name, store_cfg *out,
                    bool *deleting) {
    int rc = cfg_read_checked(z, schemas, path, name, out, deleting, NULL, 0);
    return rc == CFG_INVALID ? ZOK : rc;
}

int stores_get(zkc *z, const char *root, store_schema_cache *schemas, const char *name, store_cfg *out, zs_err *err) {
    char *path = layout_store_path(root, name);
    if (!path) { zs_err_set(err, 500, "internal", "out of memory"); return -1; }
    bool deleting = false;
    char why[ZS_ERRLEN] = "";
    int rc = cfg_read_checked(z, schemas, path, name, out, &deleting, why, sizeof why);
    free(path);
    if (rc == CFG_INVALID) {
        zs_err_set(err, 503, "unavailable",
                   "store '%s' has an invalid configuration in ZooKeeper (%s); an admin PUT of the store rewrites it", name, why);
        err->retry_after = 5;
        return -1;
    }
    if (rc == ZOK && !deleting) return 0;
    store_cfg_release(out);
    if (rc == ZOK || rc == ZNONODE) {
        zs_err_set(err, 404, "store_not_found", "store '%s' does not exist", name);
        return -1;
    }
    zkerr_unavailable(err, rc, "reading the store");
    return -1;
}

int stores_gone(zkc *z, const char *root, const char *name, int64_t czxid) {
    char *path = layout_store_path(root, name);
    char *buf = malloc(CFG_BUF);
    int len = CFG_BUF, rc = ZSYSTEMERROR;
    struct Stat st;
    if (path && buf) rc = zoo_get(zkc_zh(z), path, 0, buf, &len, &st);
    free(path);
    if (rc == ZOK && st.czxid == czxid && len > 0 && len < CFG_BUF) {
        json_t *o = json_loadb(buf, (size_t)len, 0, NULL);
        rc = json_is_true(json_object_get(o, "deleting")) ? 1 : 0; /* (not JSON: not marked) */
        json_decref(o);
    } else if (rc == ZOK || rc == ZNONODE) {
        rc = rc == ZNONODE || st.czxid != czxid ? 1 : 0;
    }
    free(buf);
    return rc;
}

/* ---- validation of a PUT body ------------------------------------------ */

static int apply_patch(store_cfg *c, store_schema_cache *schemas, const json_t *body, const char *schema_text,
                       size_t schema_len, zs_err *err) {
    if (!body) return 0;
    if (!json_is_object(body)) {
        zs_err_set(err, 400, "bad_request", "the body must be a JSON object");
        return -1;
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)body, k, v) {
        if (strcmp(k, "conflict") == 0) {
            const char *s = json_string_value(v);
            if (!s || (strcmp(s, "cas") != 0 && strcmp(s, "lww") != 0)) {
                zs_err_set(err, 400, "bad_request", "conflict: must be \"cas\" or \"lww\"");
                return -1;
            }
            c->lww = strcmp(s, "lww") == 0;
        } else if (strcmp(k, "maxValueBytes") == 0) {
            if (!json_is_integer(v) || json_integer_value(v) < 1 ||
                json_integer_value(v) > STORE_CFG_MAX_VALUE_CEILING) {
                zs_err_set(err, 400, "bad_request",
                           "maxValueBytes: must be an integer from 1 to %d (what one ZooKeeper znode holds)",
                           STORE_CFG_MAX_VALUE_CEILING);
                return -1;
            }
            c->max_value_bytes = json_integer_value(v);
        } else if (strcmp(k, "tombstoneTtlSeconds") == 0) {
            if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > STORE_CFG_MAX_TTL) {
                zs_err_set(err, 400, "bad_request", "tombstoneTtlSeconds: must be an integer from 1 to 3153600000");
                return -1;
            }
            c->tombstone_ttl = json_integer_value(v);
        } else if (strcmp(k, "maxRecords") == 0 || strcmp(k, "maxBytes") == 0) {
            if (store_cfg_quota_parse(v, k[3] == 'R' ? &c->max_records : &c->max_bytes) < 0) {
                zs_err_set(err, 400, "bad_request", "%s: must be an integer from 1 to 10^15, or null for no quota", k);
                return -1;
            }
        } else if (strcmp(k, "schema") == 0) {
            store_schema *sc = NULL;
            if (!json_is_null(v)) {
                if (!schema_text) { zs_err_set(err, 400, "bad_request", "schema: not given as text"); return -1; }
                char msg[sizeof err->message];
                if (store_schema_get(schemas, schema_text, schema_len, &sc, msg, sizeof msg) < 0) {
                    zs_err_set(err, 400, "bad_request", "%s", msg);
                    return -1;
                }
            }
            store_cfg_release(c);
            c->schema = sc;
        } else {
            zs_err_set(err, 400, "bad_request",
                       "%s: unknown field (expected conflict, maxValueBytes, tombstoneTtlSeconds, maxRecords, maxBytes, schema)", k);
            return -1;
        }
    }
    return 0;
}

/* ---- deletion ----------------------------------------------------------- */

/* The incarnation a deletion is for: its config znode's path, czxid and
 * version once marked "deleting" (a DELETE marks it; a PUT or DELETE that
 * finds it marked finishes the deletion with the same fence). Every multi
 * of the deletion first reads the config (still this czxid and version?)
 * and checks that version inside the multi, and the config itself goes
 * with that version: a deletion overtaken by another gateway's (which
 * finished it, and the store may have been created again since) stops
 * with STORES_OVERTAKEN instead of deleting what a new store holds
 * (docs/ARCHITECTURE.md, "Deleting a store"). */
typedef struct del_fence {
    const char *path;
    int64_t czxid;
    int32_t version;
} del_fence;
#define STORES_OVERTAKEN (-1004)

/* ZOK while the fenced incarnation is there as marked; STORES_OVERTAKEN
 * when it is gone or changed; or ZooKeeper's error. */
static int fence_holds(zkc *z, const del_fence *f) {
    struct Stat st;
    int rc = zoo_exists(zkc_zh(z), f->path, 0, &st);
    if (rc == ZNONODE || (rc == ZOK && (st.czxid != f->czxid || st.version != f->version))) return STORES_OVERTAKEN;
    return rc;
}

static int delete_tree(zkc *z, const del_fence *f, const char *path);

/* Deletes paths[0..n) in one multi that begins with the fence's check:
 * ZOK, STORES_OVERTAKEN (the check failed), or the multi's error. */
static int fenced_multi(zkc *z, const del_fence *f, char **paths, int n) {
    zoo_op_t *ops = calloc((size_t)n + 1, sizeof *ops);
    zoo_op_result_t *res = calloc((size_t)n + 1, sizeof *res);
    int rc = ZSYSTEMERROR;
    if (ops && res) {
        zoo_check_op_init(&ops[0], f->path, f->version);
        for (int i = 0; i < n; i++) zoo_delete_op_init(&ops[i + 1], paths[i], -1);
        rc = zoo_multi(zkc_zh(z), n + 1, ops, res);
        /* (on a failed multi the op that failed holds the error; on a lost
         * connection nothing was filled in: zero, ZOK) */
        if (rc != ZOK && (res[0].err == ZBADVERSION || res[0].err == ZNONODE)) rc = STORES_OVERTAKEN;
    }
    free(ops);
    free(res);
    return rc;
}

/* The same after a read of the fence (czxid too, which a check cannot
 * see): one batch of a deletion. */
static int multi_delete(zkc *z, const del_fence *f, char **paths, int n) {
    if (n == 0) return ZOK;
    int rc = fence_holds(z, f);
    return rc != ZOK ? rc : fenced_multi(z, f, paths, n);
}

static int delete_children_of(zkc *z, const del_fence *f, char **paths, int n);

/* Deletes paths[0..n) and what is below them: one multi; when one of them
 * is not empty, the children of all of them first (delete_children_of: a
 * store's bucket directories hold its records), then the multi again; when
 * that fails too (someone adds or removes nodes meanwhile), one at a time,
 * recursing into non-empty ones, after one more look at the fence. */
static int delete_batch(zkc *z, const del_fence *f, char **paths, int n) {
    int rc = multi_delete(z, f, paths, n);
    if (rc == ZOK) return ZOK;
    if (rc != ZNOTEMPTY && rc != ZNONODE) return rc;
    if (rc == ZNOTEMPTY) {
        if ((rc = delete_children_of(z, f, paths, n)) != ZOK) return rc;
        if (multi_delete(z, f, paths, n) == ZOK) return ZOK;
    }
    if ((rc = fence_holds(z, f)) != ZOK) return rc;
    for (int i = 0; i < n; i++) {
        int r = fenced_multi(z, f, &paths[i], 1); /* each delete checks the fence too */
        if (r == ZNOTEMPTY) r = delete_tree(z, f, paths[i]);
        if (r != ZOK && r != ZNONODE) return r;
    }
    return ZOK;
}

/* Paths waiting to be deleted in one multi (owned), within BOUND_DELETE_OPS
 * and BOUND_DELETE_BYTES. */
typedef struct del_batch {
    char *paths[BOUND_DELETE_OPS];
    int n;
    size_t bytes;
} del_batch;

static int del_flush(zkc *z, const del_fence *f, del_batch *b) {
    int rc = delete_batch(z, f, b->paths, b->n);
    while (b->n) free(b->paths[--b->n]);
    b->bytes = 0;
    return rc;
}

/* Queues parent/name (flushing first a batch it would not fit in). The
 * fence's check rides in every multi: its bytes are counted from the start. */
static int del_add(zkc *z, const del_fence *f, del_batch *b, const char *parent, const char *name) {
    char *p = NULL;
    if (asprintf(&p, "%s/%s", parent, name) < 0) return ZSYSTEMERROR;
    size_t cost = strlen(p) + BOUND_DELETE_OP_BYTES;
    if (b->n == BOUND_DELETE_OPS || (b->n > 0 && b->bytes + cost > BOUND_DELETE_BYTES)) {
        int rc = del_flush(z, f, b);
        if (rc != ZOK) { free(p); return rc; }
    }
    if (b->n == 0) b->bytes = strlen(f->path) + BOUND_DELETE_OP_BYTES;
    b->paths[b->n++] = p;
    b->bytes += cost;
    return ZOK;
}

/* Deletes everything below each of paths[0..n) (one listing each, the
 * children in shared multis), not the paths themselves. */
static int delete_children_of(zkc *z, const del_fence *f, char **paths, int n) {
    del_batch *b = calloc(1, sizeof *b);
    if (!b) return ZSYSTEMERROR;
    int rc = ZOK;
    for (int i = 0; i < n && rc == ZOK; i++) {
        struct String_vector kids = {0, NULL};
        int r = zoo_get_children(zkc_zh(z), paths[i], 0, &kids);
        if (r != ZOK && r != ZNONODE) rc = r;
        for (int k = 0; r == ZOK && k < kids.count && rc == ZOK; k++) rc = del_add(z, f, b, paths[i], kids.data[k]);
        deallocate_String_vector(&kids);
    }
    int last = del_flush(z, f, b);
    free(b);
    return rc == ZOK ? last : rc;
}

/* Deletes everything below path and path itself, in batches of up to
 * BOUND_DELETE_OPS per multi; not atomic (the caller marked the store as
 * being deleted first). A store of N records costs ZooKeeper a listing per
 * bucket and about N / BOUND_DELETE_OPS writes (more with long keys);
 * deleting each bucket with a write of its own (an fsync each) took 12-14 s
 * for any store. The config itself (path == f->path) goes last, with the
 * fence's version. ZOK, STORES_OVERTAKEN or ZooKeeper's error. */
static int delete_tree(zkc *z, const del_fence *f, const char *path) {
    struct String_vector kids = {0, NULL};
    int rc = zoo_get_children(zkc_zh(z), path, 0, &kids);
    if (rc == ZNONODE) return ZOK;
    if (rc != ZOK) return rc;
    del_batch *b = calloc(1, sizeof *b);
    if (!b) rc = ZSYSTEMERROR;
    for (int i = 0; i < kids.count && rc == ZOK; i++) rc = del_add(z, f, b, path, kids.data[i]);
    if (b) {
        int last = del_flush(z, f, b);
        if (rc == ZOK) rc = last;
        free(b);
    }
    deallocate_String_vector(&kids);
    if (rc != ZOK) return rc;
    if (strcmp(path, f->path) == 0) { /* the config: last, with the fence's version */
        rc = zoo_delete(zkc_zh(z), path, f->version);
        return rc == ZBADVERSION ? STORES_OVERTAKEN : rc == ZNONODE ? ZOK : rc;
    }
    char *one = (char *)path;
    rc = fenced_multi(z, f, &one, 1);
    return rc == ZNONODE ? ZOK : rc;
}

/* Deletes the store whose config cfg_read just gave (czxid, version: marked
 * deleting). ZOK also when another deletion finished it first. */
static int delete_store_tree(zkc *z, const char *path, int64_t czxid, int32_t version) {
    del_fence f = {path, czxid, version};
    int rc = delete_tree(z, &f, path);
    return rc == STORES_OVERTAKEN ? ZOK : rc;
}

/* ---- create / update ---------------------------------------------------- */

static int create_store(zkc *z, const char *root, const store_cfg *c) {
    enum { NOPS = 3 + LAYOUT_BUCKETS + LAYOUT_CLIENT_BUCKETS };
    char *data = cfg_json(c, false);
    char **paths = calloc(NOPS, sizeof *paths);
    zoo_op_t *ops = calloc(NOPS, sizeof *ops);
    zoo_op_result_t *res = calloc(NOPS, sizeof *res);
    int rc = ZSYSTEMERROR, n = 0;
    if (!data || !paths || !ops || !res) goto out;
    if (!(paths[n++] = layout_store_path(root, c->name)) || !(paths[n++] = layout_records_path(root, c->name)) ||
        !(paths[n++] = layout_clients_path(root, c->name)))
        goto out;
    for (unsigned b = 0; b < LAYOUT_BUCKETS; b++)
        if (!(paths[n++] = layout_bucket_path(root, c->name, b))) goto out;
    for (unsigned b = 0; b < LAYOUT_CLIENT_BUCKETS; b++)
        if (!(paths[n++] = layout_client_bucket_path(root, c->name, b))) goto out;
    size_t bytes = 0;
    for (int i = 0; i < n; i++) {
        zoo_create_op_init(&ops[i], paths[i], i == 0 ? data : "", i == 0 ? (int)strlen(data) : 0,
                           zkc_acl(z), 0, NULL, 0);
        bytes += 32 + strlen(paths[i]) + zkc_acl_bytes(z) + (i == 0 ? strlen(data) : 0);
    }
    /* One transaction (all or nothing), which must stay below ZooKeeper's
     * jute.maxbuffer: a long --root or identity could pass it. */
    if (bytes > STORES_CREATE_MAX_BYTES) { rc = STORES_TOO_LARGE; goto out; }
    rc = zoo_multi(zkc_zh(z), n, ops, res);
out:
    if (paths)
        for (int i = 0; i < NOPS; i++) free(paths[i]);
    free(paths);
    free(ops);
    free(res);
    free(data);
    return rc;
}

int stores_put(zkc *z, const char *root, store_schema_cache *schemas, const char *name, const json_t *body,
               const char *schema_text, size_t schema_len, store_cfg *out, bool *created, zs_err *err) {
    store_cfg probe;
    store_cfg_defaults(&probe, name);
    store_cfg_defaults(out, name);
    /* Validate before touching anything (the schema compiled once: the
     * patches below find it in the cache, held by probe meanwhile). */
    int prc = apply_patch(&probe, schemas, body, schema_text, schema_len, err);
    if (prc < 0) { store_cfg_release(&probe); return -1; }
    char *path = layout_store_path(root, name);
    if (!path) { store_cfg_release(&probe); zs_err_set(err, 500, "internal", "out of memory"); return -1; }
    int rc = ZOK;
    for (int attempt = 0; attempt < BOUND_CONFIG_ATTEMPTS; attempt++) {
        bool deleting = false;
        store_cfg_release(out);
        rc = cfg_read(z, schemas, path, name, out, &deleting);
        if (rc == ZOK && deleting) {
            if ((rc = delete_store_tree(z, path, out->czxid, out->zversion)) != ZOK) break;
            rc = ZNONODE;
        }
        if (rc == ZNONODE) {
            store_cfg_release(out);
            store_cfg_defaults(out, name);
            if (apply_patch(out, schemas, body, schema_text, schema_len, err) < 0) { rc = STORES_PATCH_FAILED; break; }
            rc = create_store(z, root, out);
            if (rc == STORES_TOO_LARGE) {
                free(path);
                zs_err_set(err, 500, "internal",
                           "creating store '%s' takes more than %d bytes in one ZooKeeper transaction: use a shorter --root "
                           "or ZooKeeper identity", name, STORES_CREATE_MAX_BYTES);
                return -1;
            }
            if (rc == ZNODEEXISTS) continue; /* created meanwhile: update it */
            if (rc != ZOK) break;
            struct Stat st;
            if ((rc = zoo_exists(zkc_zh(z), path, 0, &st)) != ZOK) break;
            out->czxid = st.czxid;
            out->zversion = st.version;
            *created = true;
            free(path);
            store_cfg_release(&probe);
            return 0;
        }
        if (rc != ZOK) break;
        if (apply_patch(out, schemas, body, schema_text, schema_len, err) < 0) { rc = STORES_PATCH_FAILED; break; }
        char *data = cfg_json(out, false);
        if (!data) { rc = ZSYSTEMERROR; break; }
        struct Stat st;
        rc = zoo_set2(zkc_zh(z), path, data, (int)strlen(data), out->zversion, &st);
        free(data);
        if (rc == ZBADVERSION || rc == ZNONODE) continue;
        if (rc != ZOK) break;
        out->zversion = st.version;
        *created = false;
        free(path);
        store_cfg_release(&probe);
        return 0;
    }
    free(path);
    store_cfg_release(&probe);
    store_cfg_release(out);
    if (rc == STORES_PATCH_FAILED) return -1; /* err set by apply_patch (a schema that no longer compiles: memory) */
    zkerr_unavailable(err, rc, "writing the store");
    return -1;
}

static int stores_delete_try(zkc *z, const char *root, store_schema_cache *schemas, const char *name, zs_err *err,
                             int again) {
    char *path = layout_store_path(root, name);
    if (!path) { zs_err_set(err, 500, "internal", "out of memory"); return -1; }
    store_cfg c;
    bool deleting = false;
    int rc = cfg_read(z, schemas, path, name, &c, &deleting);
    if (rc == ZOK && deleting) { /* finish an earlier, interrupted deletion; then it does not exist */
        rc = delete_store_tree(z, path, c.czxid, c.zversion);
        store_cfg_release(&c);
        free(path);
        if (rc != ZOK) {
            zkerr_unavailable(err, rc, "finishing an earlier deletion of the store");
            return -1;
        }
        zs_err_set(err, 404, "store_not_found", "store '%s' does not exist", name);
        return -1;
    }
    if (rc == ZOK) {
        /* Marked with the version read: a deletion marked meanwhile by
         * another DELETE keeps its fence, and this one starts again (and
         * finishes that one, above). */
        char *data = cfg_json(&c, true);
        struct Stat st;
        rc = data ? zoo_set2(zkc_zh(z), path, data, (int)strlen(data), c.zversion, &st) : ZSYSTEMERROR;
        free(data);
        if (rc == ZBADVERSION && again < BOUND_CONFIG_ATTEMPTS) {
            store_cfg_release(&c);
            free(path);
            return stores_delete_try(z, root, schemas, name, err, again + 1);
        }
        if (rc == ZOK) rc = delete_store_tree(z, path, st.czxid, st.version);
    }
    store_cfg_release(&c);
    free(path);
    if (rc == ZOK) return 0;
    if (rc == ZNONODE) { /* gone before it could be marked: someone else's deletion */
        zs_err_set(err, 404, "store_not_found", "store '%s' does not exist", name);
        return -1;
    }
    zkerr_unavailable(err, rc, "deleting the store");
    return -1;
}

int stores_delete(zkc *z, const char *root, store_schema_cache *schemas, const char *name, zs_err *err) {
    return stores_delete_try(z, root, schemas, name, err, 0);
}

int stores_deletion_progress(zkc *z, const char *root, store_schema_cache *schemas, const char *name, int *left,
                             int *total) {
    char *path = layout_store_path(root, name);
    if (!path) return -1;
    store_cfg c;
    bool deleting = false;
    int rc = cfg_read(z, schemas, path, name, &c, &deleting);
    store_cfg_release(&c);
    int out = 0;
    if (rc == ZOK && deleting) {
        char *r = NULL;
        struct Stat st;
        if (asprintf(&r, "%s/r", path) < 0) { free(path); return -1; }
        rc = zoo_exists(zkc_zh(z), r, 0, &st);
        free(r);
        *total = LAYOUT_BUCKETS;
        *left = rc == ZOK ? (st.numChildren < LAYOUT_BUCKETS ? st.numChildren : LAYOUT_BUCKETS) : 0;
        out = rc == ZOK || rc == ZNONODE ? 1 : -1;
    } else if (rc != ZOK && rc != ZNONODE) {
        out = -1;
    }
    free(path);
    return out;
}

int stores_advance_horizon(zkc *z, const char *root, store_schema_cache *schemas, const char *name, int64_t czxid,
                           int32_t expect, const cursor_pos *h, int32_t *zversion, zs_err *err) {
    char *path = layout_store_path(root, name);
    if (!path) { zs_err_set(err, 500, "internal", "out of memory"); return -1; }
    int rc = ZOK;
    for (int attempt = 0; attempt < BOUND_CONFIG_ATTEMPTS; attempt++) {
        store_cfg c;
        bool deleting = false;
        /* An invalid config is left as it is (an admin's PUT rewrites it):
         * writing it back would put the defaults in its place. */
        rc = cfg_read_checked(z, schemas, path, name, &c, &deleting, NULL, 0);
        if (rc == ZOK && c.czxid != czxid) rc = ZNONODE; /* that incarnation is gone */
        if (rc != ZOK || deleting) { store_cfg_release(&c); break; }
        if (c.zversion != expect) {
            store_cfg_release(&c);
            free(path);
            zs_err_set(err, 409, "conflict", "the configuration of store '%s' changed", name);
            return -1;
        }
        if (cursor_cmp(&c.horizon, h) >= 0) {
            *zversion = c.zversion;
            store_cfg_release(&c);
            free(path);
            return 0;
        }
        c.horizon = *h;
        char *data = cfg_json(&c, false);
        store_cfg_release(&c);
        if (!data) { rc = ZSYSTEMERROR; break; }
        struct Stat st;
        rc = zoo_set2(zkc_zh(z), path, data, (int)strlen(data), c.zversion, &st);
        free(data);
        if (rc == ZBADVERSION) continue; /* (and then 409 above) */
        if (rc != ZOK) break;
        *zversion = st.version;
        free(path);
        return 0;
    }
    free(path);
    if (rc == ZOK || rc == ZNONODE) zs_err_set(err, 404, "store_not_found", "store '%s' does not exist", name);
    else if (rc == CFG_INVALID) zs_err_set(err, 503, "unavailable", "store '%s' has an invalid configuration in ZooKeeper", name);
    else zkerr_unavailable(err, rc, "moving the horizon");
    return -1;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int stores_list(zkc *z, const char *root, char ***names, size_t *count, zs_err *err) {
    char *path = layout_stores_path(root);
    if (!path) { zs_err_set(err, 500, "internal", "out of memory"); return -1; }
    struct String_vector kids = {0, NULL};
    int rc = zoo_get_children(zkc_zh(z), path, 0, &kids);
    free(path);
    *names = NULL;
    *count = 0;
    if (rc == ZNONODE) return 0;
    if (rc != ZOK) { zkerr_unavailable(err, rc, "listing stores"); return -1; }
    char **out = calloc(kids.count ? (size_t)kids.count : 1, sizeof *out);
    if (!out) { deallocate_String_vector(&kids); zs_err_set(err, 500, "internal", "out of memory"); return -1; }
    size_t n = 0;
    for (int i = 0; i < kids.count; i++)
        if (names_valid(kids.data[i]) && (out[n] = strdup(kids.data[i]))) n++;
    deallocate_String_vector(&kids);
    qsort(out, n, sizeof *out, cmp_str);
    *names = out;
    *count = n;
    return 0;
}

void stores_free_names(char **names, size_t count) {
    for (size_t i = 0; i < count; i++) free(names[i]);
    free(names);
}

void stores_describe(const store_cfg *c, size_t records, const char *cursor, sbuf *out) {
    sbuf_puts(out, "{\"name\":");
    sbuf_json_str(out, c->name, strlen(c->name));
    sbuf_printf(out, ",\"conflict\":\"%s\",\"maxValueBytes\":%lld,\"tombstoneTtlSeconds\":%lld",
                c->lww ? "lww" : "cas", (long long)c->max_value_bytes, (long long)c->tombstone_ttl);
    quotas_json(c, out);
    schema_json(c, out);
    sbuf_printf(out, ",\"records\":%zu,\"cursor\":\"%s\"}", records, cursor);
}

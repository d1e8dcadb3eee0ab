#include "sync/records.h"

#include "zk/zkc.h"

#include <stdlib.h>
#include <string.h>

#include "cache/cursor.h"
#include "sync/stores.h"
#include "util/bounds.h"
#include "util/jraw.h"
#include "zk/layout.h"
#include "zk/zkerr.h"

static void write_head(sbuf *out, const char *key, size_t klen) {
    sbuf_puts(out, "{\"key\":");
    sbuf_json_str(out, key, klen);
}

static void write_tail(sbuf *out, const struct Stat *st, uint64_t khash) {
    cursor_pos p = {(uint64_t)st->mzxid, khash, (uint32_t)st->version + 1};
    char cur[CURSOR_LEN + 1];
    cursor_format(&p, cur);
    sbuf_printf(out, ",\"version\":%ld,\"cursor\":\"%s\"}", (long)st->version + 1, cur);
}

static int not_found(zs_err *err, const char *key) {
    zs_err_set(err, 404, "not_found", "record '%.200s' does not exist", key);
    return -1;
}

static int precondition(zs_err *err, const char *what) {
    zs_err_set(err, 412, "precondition_failed", "%s", what);
    return -1;
}

int records_get(zkc *z, const char *root, const store_cfg *cfg, const char *key, size_t klen, sbuf *out,
                int32_t *version, zs_err *err) {
    char *path = layout_record_path(root, cfg->name, key, klen);
    int cap = STORE_CFG_MAX_VALUE_CEILING + 65536;
    char *buf = malloc((size_t)cap);
    if (!path || !buf) { free(path); free(buf); zs_err_set(err, 500, "internal", "out of memory"); return -1; }
    int len = cap;
    struct Stat st;
    int rc = zoo_get(zkc_zh(z), path, 0, buf, &len, &st);
    free(path);
    int ret = -1;
    sbuf v = SBUF_INIT;
    jraw_err je;
    if (rc == ZNONODE || (rc == ZOK && (len <= 0 || jraw_compact(buf, (size_t)len, &v, &je) < 0))) {
        not_found(err, key); /* absent, a tombstone, or (a foreign write) not JSON: served as deleted */
    } else if (rc != ZOK) {
        zkerr_unavailable(err, rc, "reading the record");
    } else {
        write_head(out, key, klen);
        sbuf_puts(out, ",\"value\":");
        sbuf_append(out, v.buf, v.len);
        write_tail(out, &st, layout_key_hash(key, klen));
        *version = st.version + 1;
        ret = 0;
    }
    sbuf_free(&v);
    free(buf);
    return ret;
}

/* Reserves the room a write takes from the state it replaces, counted as
 * the mirror counts it (a live record is one whose value is JSON; its
 * compact length), else from the znode (live: has data; was: its length);
 * 0, or -1 and err naming the quota it would pass. */
static int quota_take(mirror *m, const store_cfg *cfg, const char *key, bool live, int64_t was, size_t klen, size_t vlen,
                      int64_t *rec, int64_t *bytes, zs_err *err) {
    bool node;
    int32_t zver;
    char *cur = NULL;
    size_t clen = 0;
    int pk = mirror_peek(m, key, klen, &node, &zver, &cur, &clen);
    if (pk >= 0) {
        live = pk == 1 && cur != NULL;
        was = live ? (int64_t)clen : 0;
    }
    free(cur);
    *rec = live ? 0 : 1;
    *bytes = (int64_t)(klen + vlen) - (live ? (int64_t)klen + was : 0);
    if (*bytes < 0) *bytes = 0;
    if (!mirror_quota_reserve(m, *rec, 0, cfg->max_records, 0)) {
        zs_err_set(err, 413, "quota_exceeded", "the store holds its maxRecords (%lld) live records", (long long)cfg->max_records);
        return -1;
    }
    if (!mirror_quota_reserve(m, 0, *bytes, 0, cfg->max_bytes)) {
        mirror_quota_release(m, *rec, 0);
        zs_err_set(err, 413, "quota_exceeded", "the write would take the store past its maxBytes (%lld)",
                   (long long)cfg->max_bytes);
        return -1;
    }
    return 0;
}

/* A record's bucket is missing. A store's deletion removes them (after
 * marking its config, which goes last): the store gone, another
 * incarnation or marked is 404, as for any request that reads it. A
 * bucket missing from a store that is not being deleted was removed by
 * hand: 503, with the reason. */
static int bucket_missing(zkc *z, const char *root, const store_cfg *cfg, zs_err *err) {
    int rc = stores_gone(z, root, cfg->name, cfg->czxid);
    if (rc == 1) {
        zs_err_set(err, 404, "store_not_found", "store '%s' does not exist", cfg->name);
    } else if (rc == 0) {
        zs_err_set(err, 503, "unavailable", "a bucket znode of store '%s' is missing (removed by hand?)", cfg->name);
        err->retry_after = 1;
    } else {
        zkerr_unavailable(err, rc, "reading the store");
    }
    return -1;
}

int records_put(zkc *z, const char *root, const store_cfg *cfg, mirror *quota, const char *key, size_t klen,
                const char *value, size_t vlen, const records_precond *pre, sbuf *out, bool *created, int32_t *version,
                zs_err *err) {
    char *path = layout_record_path(root, cfg->name, key, klen);
    if (!path) { zs_err_set(err, 500, "internal", "out of memory"); return -1; }
    int rc = ZOK;
    for (int attempt = 0; attempt < BOUND_WRITE_ATTEMPTS; attempt++) {
        struct Stat st;
        rc = zoo_exists(zkc_zh(z), path, 0, &st);
        if (rc != ZOK && rc != ZNONODE) break;
        bool node = rc == ZOK, live = node && st.dataLength > 0;
        if (pre->if_match && (!live || pre->match_version != (int64_t)st.version + 1)) {
            free(path);
            return precondition(err, live ? "If-Match: the record's version differs" : "If-Match: the record does not exist");
        }
        if (pre->if_none_match && live) {
            free(path);
            return precondition(err, "If-None-Match: the record exists");
        }
        int64_t q_rec = 0, q_bytes = 0;
        if (quota && quota_take(quota, cfg, key, live, st.dataLength, klen, vlen, &q_rec, &q_bytes, err) < 0) {
            free(path);
            return -1;
        }
        if (node) rc = zoo_set2(zkc_zh(z), path, value, (int)vlen, st.version, &st);
        else rc = zoo_create2(zkc_zh(z), path, value, (int)vlen, zkc_acl(z), 0, NULL, 0, &st);
        if (quota) {
            if (rc == ZOK) {
                mirror_write w = {key, klen, value, vlen, st.version};
                mirror_note_writes(quota, cfg->czxid, &w, 1, (uint64_t)st.mzxid, st.mtime);
            }
            mirror_quota_release(quota, q_rec, q_bytes);
        }
        if (!node && rc == ZNONODE) { /* no bucket: a store's deletion removes them */
            free(path);
            return bucket_missing(z, root, cfg, err);
        }
        if (rc == ZBADVERSION || rc == ZNODEEXISTS || rc == ZNONODE) continue; /* lost a race: look again */
        if (rc != ZOK) break;
        write_head(out, key, klen);
        write_tail(out, &st, layout_key_hash(key, klen));
        *created = !live;
        *version = st.version + 1;
        free(path);
        return 0;
    }
    free(path);
    zkerr_unavailable(err, rc, "writing the record");
    return -1;
}

int records_delete(zkc *z, const char *root, const store_cfg *cfg, const char *key, size_t klen,
                   const records_precond *pre, zs_err *err) {
    char *path = layout_record_path(root, cfg->name, key, klen);
    if (!path) { zs_err_set(err, 500, "internal", "out of memory"); return -1; }
    int rc = ZOK;
    for (int attempt = 0; attempt < BOUND_WRITE_ATTEMPTS; attempt++) {
        struct Stat st;
        rc = zoo_exists(zkc_zh(z), path, 0, &st);
        if (rc != ZOK && rc != ZNONODE) break;
        if (rc == ZNONODE || st.dataLength <= 0) { free(path); return not_found(err, key); }
        if (pre->if_none_match) { /* "only if absent": it is not */
            free(path);
            return precondition(err, "If-None-Match: the record exists");
        }
        if (pre->if_match && pre->match_version != (int64_t)st.version + 1) {
            free(path);
            return precondition(err, "If-Match: the record's version differs");
        }
        /* A delete leaves a tombstone (empty data) so the version goes on. */
        rc = zoo_set(zkc_zh(z), path, "", 0, st.version);
        if (rc == ZBADVERSION || rc == ZNONODE) continue;
        if (rc != ZOK) break;
        free(path);
        return 0;
    }
    free(path);
    zkerr_unavailable(err, rc, "deleting the record");
    return -1;
}

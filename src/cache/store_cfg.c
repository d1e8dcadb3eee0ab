#include "cache/store_cfg.h"

#include <stdio.h>
#include <string.h>

#include "util/err.h"

void store_cfg_defaults(store_cfg *c, const char *name) {
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", name);
    c->lww = false;
    c->max_value_bytes = STORE_CFG_DEFAULT_MAX_VALUE_BYTES;
    c->tombstone_ttl = STORE_CFG_DEFAULT_TTL;
}

void store_cfg_copy(store_cfg *dst, const store_cfg *src) {
    *dst = *src;
    store_schema_ref(dst->schema);
}

void store_cfg_release(store_cfg *c) {
    store_schema_unref(c->schema);
    c->schema = NULL;
}

int store_cfg_split_schema(const char *in, size_t n, sbuf *rest, sbuf *schema, jraw_err *err) {
    sbuf c = SBUF_INIT;
    if (jraw_compact(in, n, &c, err) < 0) { sbuf_free(&c); return -1; }
    if (sbuf_failed(&c)) { sbuf_free(&c); err->text = "out of memory"; err->offset = 0; err->line = err->column = 0; return -1; }
    const char *it = c.buf + 1, *from = c.buf;
    jraw_span k, v;
    if (c.len && c.buf[0] == '{') {
        while (jraw_next_member(&it, &k, &v)) {
            if (!jraw_key_is(k, "schema")) continue;
            if (v.n == 4 && memcmp(v.p, "null", 4) == 0) break;
            sbuf_append(schema, v.p, v.n);
            sbuf_append(rest, from, (size_t)(v.p - from));
            sbuf_puts(rest, "true");
            from = v.p + v.n;
            break;
        }
    }
    sbuf_append(rest, from, (size_t)(c.buf + c.len - from));
    sbuf_free(&c);
    return 0;
}

int store_cfg_quota_parse(const json_t *v, int64_t *out) {
    if (json_is_null(v)) { *out = 0; return 0; }
    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > STORE_CFG_MAX_QUOTA) return -1;
    *out = json_integer_value(v);
    return 0;
}

/* Parses the stored config, distrusting it like a request: anyone with
 * write access to ZooKeeper could have written it. Returns 1 when the store
 * is being deleted, 0 when fine, -1 when the data is not a config object,
 * -2 when it is one with an invalid field (why says which). mzxid: the
 * config znode's, which no horizon can pass (the collector writes the
 * horizon after the deletion it covers); -1 when unknown. */
static int parse_checked(store_cfg *c, store_schema_cache *schemas, const char *data, int len, int64_t mzxid,
                         char *why, size_t whylen) {
    json_error_t je;
    sbuf rest = SBUF_INIT, st = SBUF_INIT;
    jraw_err jre;
    json_t *j = NULL;
    if (store_cfg_split_schema(data, len > 0 ? (size_t)len : 0, &rest, &st, &jre) == 0 && !sbuf_failed(&rest) &&
        !sbuf_failed(&st))
        j = json_loadb(rest.buf, rest.len, JSON_REJECT_DUPLICATES, &je);
    sbuf_free(&rest);
    if (!j || !json_is_object(j)) { json_decref(j); sbuf_free(&st); zs_errf(why, whylen, "not a JSON object"); return -1; }
    int rc = 0;
    json_t *v;
    if ((v = json_object_get(j, "deleting")) && !json_is_boolean(v)) { zs_errf(why, whylen, "deleting: not a boolean"); rc = -2; }
    else if (json_is_true(v)) rc = 1;
    if (rc >= 0 && (v = json_object_get(j, "conflict"))) {
        const char *s = json_string_value(v);
        if (!s || (strcmp(s, "cas") != 0 && strcmp(s, "lww") != 0)) { zs_errf(why, whylen, "conflict: not \"cas\" or \"lww\""); rc = -2; }
        else c->lww = strcmp(s, "lww") == 0;
    }
    if (rc >= 0 && (v = json_object_get(j, "maxValueBytes"))) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > STORE_CFG_MAX_VALUE_CEILING) {
            zs_errf(why, whylen, "maxValueBytes: not an integer from 1 to 1000000");
            rc = -2;
        } else {
            c->max_value_bytes = json_integer_value(v);
        }
    }
    if (rc >= 0 && (v = json_object_get(j, "tombstoneTtlSeconds"))) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > STORE_CFG_MAX_TTL) {
            zs_errf(why, whylen, "tombstoneTtlSeconds: not an integer from 1 to 3153600000");
            rc = -2;
        } else {
            c->tombstone_ttl = json_integer_value(v);
        }
    }
    if (rc >= 0 && (v = json_object_get(j, "maxRecords")) && store_cfg_quota_parse(v, &c->max_records) < 0) {
        zs_errf(why, whylen, "maxRecords: not an integer from 1 to 10^15");
        rc = -2;
    }
    if (rc >= 0 && (v = json_object_get(j, "maxBytes")) && store_cfg_quota_parse(v, &c->max_bytes) < 0) {
        zs_errf(why, whylen, "maxBytes: not an integer from 1 to 10^15");
        rc = -2;
    }
    if (rc >= 0 && (v = json_object_get(j, "horizon"))) {
        const char *h = json_string_value(v);
        if (!h || cursor_parse(h, &c->horizon) < 0) { zs_errf(why, whylen, "horizon: not a cursor"); rc = -2; }
        else if (mzxid >= 0 && c->horizon.zxid > (uint64_t)mzxid) { zs_errf(why, whylen, "horizon: beyond the config's own write"); rc = -2; }
    }
    if (rc >= 0 && st.len) { /* last: nothing to release on the paths above */
        char msg[256];
        if (store_schema_get(schemas, st.buf, st.len, &c->schema, msg, sizeof msg) < 0) {
            zs_errf(why, whylen, "schema: not a schema this gateway compiles");
            rc = -2;
        }
    }
    sbuf_free(&st);
    json_decref(j);
    return rc;
}


int store_cfg_parse(store_cfg *c, store_schema_cache *schemas, const char *name, const char *data, int len,
                    int64_t mzxid, char *why, size_t whylen) {
    store_cfg_defaults(c, name);
    return parse_checked(c, schemas, data, len, mzxid, why, whylen);
}

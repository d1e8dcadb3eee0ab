#include "http/api.h"

#include <glib.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http/route.h"
#include "http/static.h"
#include "schema/schema.h"
#include "sync/cursor.h"
#include "sync/push.h"
#include "sync/records.h"
#include "sync/stores.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/limit.h"
#include "util/jraw.h"
#include "util/sbuf.h"
#include "zk/layout.h"

#define CATCH_UP_MS 5000
#define LOAD_MS 5000
#define CHANGES_PAGE_BYTES (8 * 1024 * 1024) /* a page stops early past this (more: true) */

static const char *const route_names[] = {"other", "stores", "store", "record", "push", "changes", "events", "static"};
#define ROUTES (sizeof route_names / sizeof route_names[0])
static const char *const code_classes[] = {"2xx", "3xx", "4xx", "5xx"};

struct api {
    api_config cfg;
    push_env push;
    zs_limit *rate;       /* --rate-limit (NULL: off) */
    zs_hist http[ROUTES][4]; /* handler time by route and status class (atomics: no lock) */
    GMutex mu;            /* guards the counters below */
    GHashTable *requests; /* "route\tstatus" -> count */
};


api *api_new(const api_config *cfg) {
    api *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->cfg = *cfg;
    a->push = (push_env){cfg->z, cfg->mirrors, cfg->root, cfg->max_tx_bytes, cfg->lg, cfg->metrics, cfg->commit,
                         push_clients_new(), NULL, NULL};
    if (cfg->rate_limit > 0) a->rate = zs_limit_new(cfg->rate_limit, 2 * cfg->rate_limit);
    if (cfg->write_bytes_per_sec > 0) a->push.budget_bytes = zs_limit_new(cfg->write_bytes_per_sec, 2 * cfg->write_bytes_per_sec);
    if (cfg->write_mutations_per_sec > 0)
        a->push.budget_mutations = zs_limit_new(cfg->write_mutations_per_sec, 2 * cfg->write_mutations_per_sec);
    g_mutex_init(&a->mu);
    a->requests = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    return a;
}

void api_set_gc(api *a, gc *g) {
    g_mutex_lock(&a->mu);
    a->cfg.gc = g;
    g_mutex_unlock(&a->mu);
}

void api_free(api *a) {
    if (!a) return;
    push_clients_free(a->push.clients);
    zs_limit_free(a->rate);
    zs_limit_free(a->push.budget_bytes);
    zs_limit_free(a->push.budget_mutations);
    g_hash_table_destroy(a->requests);
    g_mutex_clear(&a->mu);
    free(a);
}

static void count_request(api *a, route_id r, int status) {
    char *k = g_strdup_printf("%s\t%d", route_names[r], status);
    g_mutex_lock(&a->mu);
    uint64_t *n = g_hash_table_lookup(a->requests, k);
    if (n) { (*n)++; g_free(k); }
    else { n = g_new(uint64_t, 1); *n = 1; g_hash_table_insert(a->requests, k, n); }
    g_mutex_unlock(&a->mu);
}

static void fail(http_resp *resp, const zs_err *e) {
    http_resp_error(resp, e->status, e->code, e->message);
    if (e->retry_after) http_resp_header(resp, "Retry-After", "%d", e->retry_after);
}

static void failf(http_resp *resp, int status, const char *code, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void failf(http_resp *resp, int status, const char *code, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    http_resp_error(resp, status, code, msg);
}

static void ok_json(http_resp *resp, int status, sbuf *b) {
    size_t len;
    char *body = sbuf_steal(b, &len);
    if (!body) { http_resp_error(resp, 500, "internal", "out of memory"); return; }
    http_resp_json(resp, status, body, len);
}

/* ---- routing ---------------------------------------------------------------- */

/* The right a route needs, and for which store (NULL: none in particular). */
static auth_perm needed_perm(const route *r, const char *method) {
    bool reading = strcmp(method, "GET") == 0;
    switch (r->id) {
    case R_STORE: return reading ? AUTH_READ : AUTH_ADMIN;
    case R_RECORD: return reading ? AUTH_READ : AUTH_WRITE;
    case R_PUSH: return AUTH_WRITE;
    default: return AUTH_READ;
    }
}

/* ---- helpers ------------------------------------------------------------------ */

static bool json_content_type(const http_req *req) {
    const char *ct = http_req_header(req, "Content-Type");
    if (!ct) return false;
    size_t n = strcspn(ct, ";");
    while (n && (ct[n - 1] == ' ' || ct[n - 1] == '\t')) n--;
    return n == 16 && strncasecmp(ct, "application/json", 16) == 0;
}

/* Loads the store's mirror and makes it current. */
static mirror *current_mirror(api *a, const store_cfg *cfg, bool catch_up, http_resp *resp) {
    mirror *m = NULL;
    if (mirror_set_acquire(a->cfg.mirrors, cfg->name, cfg->czxid, LOAD_MS, &m) < 0) {
        failf(resp, 503, "unavailable", "store '%s' is still loading; retry shortly", cfg->name);
        http_resp_header(resp, "Retry-After", "1");
        return NULL;
    }
    mirror_note_horizon(m, &cfg->horizon); /* at least what the config just read says */
    int64_t t0 = zs_now_us();
    int crc = catch_up ? mirror_catch_up(m, CATCH_UP_MS) : 0;
    if (catch_up) zs_metrics_zk(a->cfg.metrics, ZS_OP_SYNC, zs_now_us() - t0, crc < 0 ? ZOPERATIONTIMEOUT : ZOK);
    if (crc < 0) {
        failf(resp, 503, "unavailable", "could not catch up with ZooKeeper within %d ms; retry", CATCH_UP_MS);
        http_resp_header(resp, "Retry-After", "1");
        return NULL;
    }
    return m;
}

/* ---- prefix scopes: what a request may see ------------------------------------ */

/* The keys a request sees (PROTOCOL.md v1.1 "Prefix scopes"): the token's
 * read set in the store, narrowed by ?prefix=. all: no filter. */
typedef struct req_view {
    bool all;
    auth_keyset ks;     /* the read set (its prefixes point into the principal) */
    char *prefix;       /* the decoded ?prefix= (owned), or NULL */
    size_t plen;
    mirror_key *v;      /* the filter's prefixes (owned array) */
    mirror_filter f;
} req_view;

static void view_free(req_view *v) {
    auth_keyset_free(&v->ks);
    free(v->prefix);
    free(v->v);
    *v = (req_view){0};
}

/* NULL: every key. */
static const mirror_filter *view_filter(const req_view *v) { return v->all ? NULL : &v->f; }

/* Builds the view of who on store, with ?prefix= when with_query. 0, or -1
 * and resp: 400 for an empty or broken prefix, 403 for one outside the read
 * set. */
static int view_make(const auth_principal *who, const char *store, const http_req *req, bool with_query, req_view *v,
                     http_resp *resp) {
    *v = (req_view){0};
    if (auth_store_read_prefixes(who, store, &v->ks) < 0) {
        failf(resp, 500, "internal", "out of memory");
        return -1;
    }
    const char *q = with_query ? http_req_query(req, "prefix") : NULL;
    if (q) {
        v->prefix = http_pct_decode(q, strlen(q), &v->plen);
        const char *why = !*q ? "must not be empty" : !v->prefix ? "its percent-encoding is broken"
                          : layout_key_invalid(v->prefix, v->plen) ? "not a possible key prefix (UTF-8, no U+0000, at most 1024 bytes)"
                                                                   : NULL;
        if (why) {
            failf(resp, 400, "bad_request", "prefix: %s", why);
            view_free(v);
            return -1;
        }
        if (!auth_keyset_has(&v->ks, v->prefix, v->plen)) {
            failf(resp, 403, "forbidden", "prefix: wider than, or outside, the token's read prefixes in store '%s'", store);
            view_free(v);
            return -1;
        }
        /* within one read prefix: every key under it is readable */
        if (!(v->v = malloc(sizeof *v->v))) { failf(resp, 500, "internal", "out of memory"); view_free(v); return -1; }
        v->v[0] = (mirror_key){v->prefix, v->plen};
        v->f = (mirror_filter){v->v, 1};
        return 0;
    }
    if (v->ks.all) { v->all = true; return 0; }
    if (!(v->v = malloc((v->ks.n ? v->ks.n : 1) * sizeof *v->v))) {
        failf(resp, 500, "internal", "out of memory");
        view_free(v);
        return -1;
    }
    for (size_t i = 0; i < v->ks.n; i++) v->v[i] = (mirror_key){v->ks.v[i].p, v->ks.v[i].len};
    v->f = (mirror_filter){v->v, v->ks.n};
    return 0;
}

/* A description; records counts only what the view sees. */
static void describe(api *a, const store_cfg *cfg, mirror *m, const req_view *view, sbuf *out) {
    char cur[CURSOR_LEN + 1];
    cursor_pos p = cursor_after_zxid(mirror_watermark(m));
    cursor_format(&p, cur);
    (void)a;
    stores_describe(cfg, view && !view->all ? mirror_live_count_filtered(m, &view->f) : mirror_live_count(m), cur, out);
}

/* ---- handlers ------------------------------------------------------------------- */

static void h_list_stores(api *a, const auth_principal *who, http_resp *resp) {
    char **names;
    size_t n;
    zs_err e = {0};
    if (stores_list(a->cfg.z, a->cfg.root, &names, &n, &e) < 0) { fail(resp, &e); return; }
    sbuf b = SBUF_INIT;
    sbuf_puts(&b, "{\"stores\":[");
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        if (!auth_can(who, names[i], AUTH_READ)) continue; /* any grant in it */
        req_view view;
        http_resp scratch0 = {0};
        if (view_make(who, names[i], NULL, false, &view, &scratch0) < 0) { free(scratch0.body); continue; }
        store_cfg cfg;
        if (stores_get(a->cfg.z, a->cfg.root, names[i], &cfg, &e) < 0) { view_free(&view); continue; } /* deleted meanwhile */
        http_resp scratch = {0};
        mirror *m = current_mirror(a, &cfg, false, &scratch);
        free(scratch.body);
        if (m) {
            if (!first) sbuf_putc(&b, ',');
            describe(a, &cfg, m, &view, &b);
            first = false;
        }
        view_free(&view);
        store_cfg_release(&cfg);
    }
    sbuf_puts(&b, "]}");
    stores_free_names(names, n);
    ok_json(resp, 200, &b);
}

static void h_store(api *a, const http_req *req, const route *rt, const req_view *view, http_resp *resp) {
    const char *method = http_req_method(req);
    zs_err e = {0};
    store_cfg cfg;
    if (strcmp(method, "GET") == 0) {
        if (stores_get(a->cfg.z, a->cfg.root, rt->store, &cfg, &e) < 0) { fail(resp, &e); return; }
        mirror *m = current_mirror(a, &cfg, true, resp);
        if (m) {
            sbuf b = SBUF_INIT;
            describe(a, &cfg, m, view, &b);
            ok_json(resp, 200, &b);
        }
        store_cfg_release(&cfg);
    } else if (strcmp(method, "DELETE") == 0) {
        if (stores_delete(a->cfg.z, a->cfg.root, rt->store, &e) < 0) { fail(resp, &e); return; }
        resp->status = 204;
    } else { /* PUT */
        size_t len;
        const char *raw = http_req_body(req, &len);
        json_t *body = NULL;
        sbuf rest = SBUF_INIT, schema = SBUF_INIT;
        if (len > 0) {
            if (!json_content_type(req)) {
                failf(resp, 415, "unsupported_media_type", "Content-Type must be application/json");
                return;
            }
            /* The schema keeps its numbers as written (jansson would round
             * them): its text is taken apart from the rest. */
            jraw_err je;
            json_error_t jje;
            if (stores_split_schema(raw, len, &rest, &schema, &je) < 0) {
                failf(resp, 400, "invalid_json", "the body is not valid JSON: %s (line %d, column %d)", je.text, je.line,
                      je.column);
            } else if (sbuf_failed(&rest) || sbuf_failed(&schema)) {
                failf(resp, 500, "internal", "out of memory");
            } else if (!(body = json_loadb(rest.buf, rest.len, JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &jje))) {
                failf(resp, 400, "invalid_json", "the body is not valid JSON: %s", jje.text);
            }
            sbuf_free(&rest);
            if (!body) { sbuf_free(&schema); return; }
        }
        bool created = false;
        int rc = stores_put(a->cfg.z, a->cfg.root, rt->store, body, schema.len ? schema.buf : NULL, schema.len, &cfg,
                            &created, &e);
        json_decref(body);
        sbuf_free(&schema);
        if (rc < 0) { fail(resp, &e); return; }
        mirror *m = current_mirror(a, &cfg, true, resp);
        if (m) {
            sbuf b = SBUF_INIT;
            describe(a, &cfg, m, NULL, &b); /* (admin) */
            ok_json(resp, created ? 201 : 200, &b);
        }
        store_cfg_release(&cfg);
    }
}

/* Who a limit counts: the token's sub, else the client's address. A sub
 * too long for out is named by its SHA-256, so two never share a bucket. */
static void subject_of(const api *a, const auth_principal *who, const http_req *req, char *out, size_t n) {
    const char *sub = a->cfg.auth ? auth_principal_sub(who) : NULL;
    if (sub && strlen(sub) + 5 > n) {
        char *h = g_compute_checksum_for_string(G_CHECKSUM_SHA256, sub, -1);
        snprintf(out, n, "sub#%s", h);
        g_free(h);
    } else if (sub) {
        snprintf(out, n, "sub:%s", sub);
    } else {
        snprintf(out, n, "addr:%s", http_req_client_addr(req));
    }
}

/* The store's schema (PROTOCOL.md "Schemas"): false and 400 invalid_value
 * with the first errors, or 500 when the check itself failed. */
static bool schema_ok(const store_cfg *cfg, const char *value, size_t vlen, http_resp *resp) {
    schema_errors se = SCHEMA_ERRORS_INIT;
    int v = schema_validate(store_schema_program(cfg->schema), value, vlen, &se);
    if (v == SCHEMA_INVALID) {
        sbuf b = SBUF_INIT;
        sbuf_puts(&b, "\"errors\":");
        schema_errors_json(&se, &b);
        char msg[400];
        snprintf(msg, sizeof msg, "the value does not match the store's schema: at \"%.100s\": %.200s%s",
                 se.count ? se.e[0].path : "", se.count ? se.e[0].message : "", se.count > 1 ? " (and more: see errors)" : "");
        if (sbuf_failed(&b)) http_resp_error(resp, 500, "internal", "out of memory");
        else http_resp_error_extra(resp, 400, "invalid_value", msg, b.buf);
        sbuf_free(&b);
    } else if (v == SCHEMA_ERROR) {
        http_resp_error(resp, 500, "internal", "the schema check failed (out of memory)");
    }
    schema_errors_free(&se);
    return v == SCHEMA_VALID;
}

static void h_record(api *a, const http_req *req, const route *rt, const store_cfg *cfg, const char *subject,
                     http_resp *resp) {
    const char *method = http_req_method(req);
    zs_err e = {0};
    records_precond pre = {0};
    const char *im = http_req_header(req, "If-Match");
    const char *inm = http_req_header(req, "If-None-Match");
    if (im && strcmp(im, "*") != 0) {
        pre.if_match = true;
        if (route_if_match(im, &pre.match_version) < 0) pre.match_version = -1; /* matches nothing */
    }
    if (inm) {
        if (strcmp(inm, "*") != 0) {
            failf(resp, 400, "bad_request", "If-None-Match: only * is supported");
            return;
        }
        pre.if_none_match = true;
    }
    if (strcmp(method, "GET") == 0) {
        sbuf b = SBUF_INIT;
        int32_t version;
        if (records_get(a->cfg.z, a->cfg.root, cfg, rt->key, rt->klen, &b, &version, &e) < 0) {
            sbuf_free(&b);
            fail(resp, &e);
            return;
        }
        ok_json(resp, 200, &b);
        http_resp_header(resp, "ETag", "\"%ld\"", (long)version);
    } else if (strcmp(method, "DELETE") == 0) {
        if (push_budget(&a->push, subject, 1, rt->klen, &e) < 0) { fail(resp, &e); return; }
        if (records_delete(a->cfg.z, a->cfg.root, cfg, rt->key, rt->klen, &pre, &e) < 0) { fail(resp, &e); return; }
        resp->status = 204;
    } else { /* PUT */
        if (!json_content_type(req)) {
            failf(resp, 415, "unsupported_media_type", "Content-Type must be application/json");
            return;
        }
        size_t blen;
        const char *body = http_req_body(req, &blen);
        sbuf vb = SBUF_INIT;
        jraw_err je;
        if (jraw_compact(body, blen, &vb, &je) < 0) {
            sbuf_free(&vb);
            failf(resp, 400, "invalid_json", "the body is not valid JSON: %s (line %d, column %d)", je.text, je.line, je.column);
            return;
        }
        size_t vlen;
        char *value = sbuf_steal(&vb, &vlen);
        if (!value) { failf(resp, 500, "internal", "out of memory"); return; }
        if ((int64_t)vlen > cfg->max_value_bytes) {
            failf(resp, 413, "value_too_large", "value: %zu bytes, over the store's maxValueBytes (%lld)", vlen,
                  (long long)cfg->max_value_bytes);
            free(value);
            return;
        }
        if (vlen + PUSH_OP_OVERHEAD + 3 * LAYOUT_MAX_KEY_BYTES + zkc_acl_bytes(a->cfg.z) > a->cfg.max_tx_bytes) {
            failf(resp, 413, "value_too_large",
                  "value: %zu bytes, over what one ZooKeeper transaction of this gateway may carry (--max-tx-bytes %zu)", vlen,
                  a->cfg.max_tx_bytes);
            free(value);
            return;
        }
        if (cfg->schema && !schema_ok(cfg, value, vlen, resp)) { free(value); return; }
        if (push_budget(&a->push, subject, 1, rt->klen + vlen, &e) < 0) {
            fail(resp, &e);
            free(value);
            return;
        }
        mirror *quota = NULL;
        if ((cfg->max_records || cfg->max_bytes) && !(quota = current_mirror(a, cfg, true, resp))) { /* caught up: every write so far counts */
            free(value);
            return;
        }
        sbuf b = SBUF_INIT;
        bool created = false;
        int32_t version;
        int rc = records_put(a->cfg.z, a->cfg.root, cfg, quota, rt->key, rt->klen, value, vlen, &pre, &b, &created,
                             &version, &e);
        free(value);
        if (rc < 0) { sbuf_free(&b); fail(resp, &e); return; }
        ok_json(resp, created ? 201 : 200, &b);
        http_resp_header(resp, "ETag", "\"%ld\"", (long)version);
    }
}

static void h_push(api *a, const http_req *req, const store_cfg *cfg, const auth_principal *who, const char *subject,
                   http_resp *resp) {
    if (!json_content_type(req)) {
        failf(resp, 415, "unsupported_media_type", "Content-Type must be application/json");
        return;
    }
    size_t len;
    const char *body = http_req_body(req, &len);
    sbuf b = SBUF_INIT;
    zs_err e = {0};
    int rc = push_run(&a->push, who, subject, cfg, body, len, &b, &e);
    /* The config changed under the push (its multis check the config's
     * version): judge it again under the config ZooKeeper holds now. */
    for (int again = 0; rc == PUSH_RUN_CONFIG_CHANGED && again < 3; again++) {
        store_cfg fresh;
        zs_err ge = {0};
        if (stores_get(a->cfg.z, a->cfg.root, cfg->name, &fresh, &ge) < 0) { e = ge; break; }
        sbuf_reset(&b);
        e = (zs_err){0};
        rc = push_run(&a->push, who, subject, &fresh, body, len, &b, &e);
        store_cfg_release(&fresh);
    }
    if (rc < 0) { sbuf_free(&b); fail(resp, &e); return; }
    ok_json(resp, 200, &b);
}

/* Query checks of /changes: 400 before the store lookup. */
static int changes_query(const http_req *req, bool is_events, bool *has_since, cursor_pos *since, int *limit,
                         http_resp *resp) {
    const char *s = http_req_query(req, "since");
    const char *last = is_events ? http_req_header(req, "Last-Event-ID") : NULL;
    if (last && *last) s = last; /* a reconnecting EventSource: takes precedence */
    *has_since = s != NULL && *s;
    if (*has_since && cursor_parse(s, since) < 0) {
        failf(resp, 400, "invalid_cursor", "since: not a cursor this service issued");
        return -1;
    }
    *limit = 1000;
    const char *l = is_events ? NULL : http_req_query(req, "limit");
    if (l && route_limit(l, limit) < 0) {
        failf(resp, 400, "bad_request", "limit: must be an integer from 1 to 10000");
        return -1;
    }
    return 0;
}

static void h_changes(api *a, const store_cfg *cfg, const req_view *view, bool has_since, const cursor_pos *since, int limit,
                      http_resp *resp) {
    mirror *m = current_mirror(a, cfg, true, resp);
    if (!m) return;
    if (has_since && since->zxid > mirror_watermark(m)) {
        failf(resp, 400, "invalid_cursor", "since: a position beyond anything this store has issued");
        return;
    }
    sbuf b = SBUF_INIT;
    sbuf_puts(&b, "{\"changes\":[");
    mirror_page pg;
    mirror_changes(m, has_since ? since : NULL, view_filter(view), limit, CHANGES_PAGE_BYTES, &b, &pg);
    if (pg.expired) {
        sbuf_free(&b);
        failf(resp, 410, "cursor_expired",
              "since: older than the store's horizon (deletions it would need were collected); resync from the beginning");
        return;
    }
    if (!pg.loaded) { /* reloading after a new ZooKeeper session */
        sbuf_free(&b);
        failf(resp, 503, "unavailable", "store '%s' is reloading; retry shortly", cfg->name);
        http_resp_header(resp, "Retry-After", "1");
        return;
    }
    char cur[CURSOR_LEN + 1];
    cursor_format(&pg.next, cur);
    sbuf_printf(&b, "],\"cursor\":\"%s\",\"more\":%s}", cur, pg.more ? "true" : "false");
    ok_json(resp, 200, &b);
}

static void h_events(api *a, const http_req *req, const store_cfg *cfg, const req_view *view, bool has_since,
                     const cursor_pos *since, const auth_principal *who, http_resp *resp) {
    const char *sub = a->cfg.auth ? auth_principal_sub(who) : NULL;
    /* The stream ends with the token: its exp, on the monotonic clock. */
    long long exp = a->cfg.auth ? auth_principal_exp(who) : 0;
    int64_t expires_ms = exp > 0 ? zs_clock_ms() + (exp * 1000 - (int64_t)g_get_real_time() / 1000) : 0;
    mirror *m = current_mirror(a, cfg, true, resp);
    if (!m) return;
    if (has_since && since->zxid > mirror_watermark(m)) {
        failf(resp, 400, "invalid_cursor", "since: a position beyond anything this store has issued");
        return;
    }
    events_start(a->cfg.events, m, has_since ? since : NULL, view_filter(view), sub, http_req_client_addr(req), expires_ms,
                 resp);
}

/* ---- operations ------------------------------------------------------------------ */

static void h_metrics(api *a, http_resp *resp) {
    sbuf b = SBUF_INIT;
    sbuf_printf(&b, "# HELP zoosync_build_info The gateway's version.\n# TYPE zoosync_build_info gauge\n"
                    "zoosync_build_info{version=\"%s\"} 1\n", a->cfg.version ? a->cfg.version : "unknown");
    zs_metrics_render_process(&b);
    sbuf_puts(&b, "# HELP zoosync_http_request_seconds Time in the request's handler (an event stream: until it starts), "
                  "by route and status class.\n# TYPE zoosync_http_request_seconds histogram\n");
    for (size_t r = 0; r < ROUTES; r++)
        for (int c = 0; c < 4; c++) {
            if (!atomic_load(&a->http[r][c].count)) continue;
            char labels[64];
            snprintf(labels, sizeof labels, "route=\"%s\",code=\"%s\"", route_names[r], code_classes[c]);
            zs_hist_render(&a->http[r][c], "zoosync_http_request_seconds", labels, &b);
        }
    sbuf_puts(&b, "# HELP zoosync_http_requests_total HTTP requests by route and status.\n"
                  "# TYPE zoosync_http_requests_total counter\n");
    g_mutex_lock(&a->mu);
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, a->requests);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        const char *key = k;
        const char *tab = strchr(key, '\t');
        sbuf_printf(&b, "zoosync_http_requests_total{route=\"%.*s\",status=\"%s\"} %llu\n", (int)(tab - key), key,
                    tab + 1, (unsigned long long)*(uint64_t *)v);
    }
    g_mutex_unlock(&a->mu);
    mirror_stats ms;
    mirror_set_stats(a->cfg.mirrors, &ms);
    sbuf_printf(&b,
                "# HELP zoosync_mirror_records Live records held in memory.\n# TYPE zoosync_mirror_records gauge\n"
                "zoosync_mirror_records %zu\n"
                "# HELP zoosync_mirror_bytes Key and value bytes held in memory.\n# TYPE zoosync_mirror_bytes gauge\n"
                "zoosync_mirror_bytes %zu\n"
                "# HELP zoosync_mirror_entries Keys known to the mirror: live, tombstones and deletions.\n"
                "# TYPE zoosync_mirror_entries gauge\nzoosync_mirror_entries %zu\n"
                "# HELP zoosync_mirror_bucket_tables Bucket tables allocated (buckets holding a key).\n"
                "# TYPE zoosync_mirror_bucket_tables gauge\nzoosync_mirror_bucket_tables %zu\n"
                "# HELP zoosync_watch_events_total ZooKeeper watch events received.\n# TYPE zoosync_watch_events_total counter\n"
                "zoosync_watch_events_total %llu\n"
                "# HELP zoosync_zk_reads_total Reads sent by the mirror.\n# TYPE zoosync_zk_reads_total counter\n"
                "zoosync_zk_reads_total %llu\n"
                "# HELP zoosync_foreign_values_rejected_total Znodes whose data is not a JSON value or whose name is not a key.\n"
                "# TYPE zoosync_foreign_values_rejected_total counter\n"
                "zoosync_foreign_values_rejected_total %llu\n"
                "# HELP zoosync_zk_connected 1 while the ZooKeeper session is connected.\n# TYPE zoosync_zk_connected gauge\n"
                "zoosync_zk_connected %d\n"
                "# HELP zoosync_event_streams Open Server-Sent Events streams.\n# TYPE zoosync_event_streams gauge\n"
                "zoosync_event_streams %zu\n"
                "# HELP zoosync_event_stream_wakes_total Event streams woken because a change they may show arrived.\n"
                "# TYPE zoosync_event_stream_wakes_total counter\nzoosync_event_stream_wakes_total %llu\n"
                "# HELP zoosync_mirror_connected 1 while the mirror's own ZooKeeper session is connected.\n"
                "# TYPE zoosync_mirror_connected gauge\nzoosync_mirror_connected %d\n"
                "# HELP zoosync_mirror_recovering 1 while the mirror checks what changed during a disconnect.\n"
                "# TYPE zoosync_mirror_recovering gauge\nzoosync_mirror_recovering %d\n"
                "# HELP zoosync_mirror_watermark The zxid up to which every change is in the mirror.\n"
                "# TYPE zoosync_mirror_watermark gauge\nzoosync_mirror_watermark %llu\n"
                "# HELP zoosync_mirror_read_batches_total multiRead requests sent by the mirror.\n"
                "# TYPE zoosync_mirror_read_batches_total counter\nzoosync_mirror_read_batches_total %llu\n"
                "# HELP zoosync_mirror_reads_queued Reads waiting to be sent.\n"
                "# TYPE zoosync_mirror_reads_queued gauge\nzoosync_mirror_reads_queued %zu\n"
                "# HELP zoosync_mirror_recoveries_total Gap checks completed after a reconnect.\n"
                "# TYPE zoosync_mirror_recoveries_total counter\nzoosync_mirror_recoveries_total %llu\n"
                "# HELP zoosync_mirror_probe_sessions_total Short probe sessions opened by gap checks.\n"
                "# TYPE zoosync_mirror_probe_sessions_total counter\nzoosync_mirror_probe_sessions_total %llu\n"
                "# HELP zoosync_mirror_probe_events_total Changes found by gap checks.\n"
                "# TYPE zoosync_mirror_probe_events_total counter\nzoosync_mirror_probe_events_total %llu\n"
                "# HELP zoosync_mirror_last_recovery_seconds Duration of the last gap check.\n"
                "# TYPE zoosync_mirror_last_recovery_seconds gauge\nzoosync_mirror_last_recovery_seconds %.3f\n",
                ms.records, ms.bytes, ms.entries, ms.bucket_tables, (unsigned long long)ms.watch_events, (unsigned long long)ms.reads,
                (unsigned long long)ms.foreign_rejected, zkc_connected(a->cfg.z) ? 1 : 0,
                a->cfg.events ? events_count(a->cfg.events) : 0,
                a->cfg.events ? events_wakes(a->cfg.events) : 0ULL, ms.connected ? 1 : 0, ms.recovering ? 1 : 0,
                (unsigned long long)ms.watermark, (unsigned long long)ms.batches, ms.queued,
                (unsigned long long)ms.recoveries, (unsigned long long)ms.probes, (unsigned long long)ms.probe_events,
                (double)ms.last_recovery_ms / 1000.0);
    if (a->cfg.metrics) zs_metrics_render(a->cfg.metrics, &b);
    gc_stats gs = {0};
    g_mutex_lock(&a->mu);
    gc *collector = a->cfg.gc;
    g_mutex_unlock(&a->mu);
    if (collector) gc_get_stats(collector, &gs);
    sbuf_printf(&b,
                "# HELP zoosync_zk_invalid_data_total Data read from ZooKeeper and refused (distrusted like a request), by kind.\n"
                "# TYPE zoosync_zk_invalid_data_total counter\n"
                "zoosync_zk_invalid_data_total{kind=\"config\"} %llu\n"
                "zoosync_zk_invalid_data_total{kind=\"client\"} %llu\n"
                "zoosync_zk_invalid_data_total{kind=\"election\"} %llu\n"
                "# HELP zoosync_limited_total Requests refused with 429 by a per-subject limit.\n"
                "# TYPE zoosync_limited_total counter\n"
                "zoosync_limited_total{limit=\"rate\"} %llu\n"
                "zoosync_limited_total{limit=\"write_bytes\"} %llu\n"
                "zoosync_limited_total{limit=\"write_mutations\"} %llu\n",
                (unsigned long long)ms.invalid_configs,
                (unsigned long long)(a->cfg.metrics ? atomic_load(&a->cfg.metrics->zk_invalid_client) : 0),
                (unsigned long long)gs.invalid_candidates,
                (unsigned long long)(a->cfg.metrics ? atomic_load(&a->cfg.metrics->limited[ZS_LIMIT_RATE]) : 0),
                (unsigned long long)(a->cfg.metrics ? atomic_load(&a->cfg.metrics->limited[ZS_LIMIT_WRITE_BYTES]) : 0),
                (unsigned long long)(a->cfg.metrics ? atomic_load(&a->cfg.metrics->limited[ZS_LIMIT_WRITE_MUTATIONS]) : 0));
    sbuf_printf(&b,
                "# HELP zoosync_gc_leader 1 while this gateway is the tombstone collector.\n# TYPE zoosync_gc_leader gauge\n"
                "zoosync_gc_leader %d\n"
                "# HELP zoosync_gc_runs_total Collection rounds run as the collector.\n# TYPE zoosync_gc_runs_total counter\n"
                "zoosync_gc_runs_total %llu\n"
                "# HELP zoosync_gc_tombstones_collected_total Tombstone znodes deleted.\n"
                "# TYPE zoosync_gc_tombstones_collected_total counter\n"
                "zoosync_gc_tombstones_collected_total %llu\n",
                gs.leader, (unsigned long long)gs.runs, (unsigned long long)gs.collected);
    size_t len;
    char *body = sbuf_steal(&b, &len);
    http_resp_json(resp, 200, body, len);
    resp->content_type = "text/plain; version=0.0.4";
}

/* ---- the handler ------------------------------------------------------------------- */

static auth_principal *authenticate(api *a, const http_req *req, route_id rid, http_resp *resp) {
    if (!a->cfg.auth) return auth_principal_anonymous();
    const char *h = http_req_header(req, "Authorization");
    char *qtoken = NULL;
    const char *q = rid == R_EVENTS && !h ? http_req_query(req, "access_token") : NULL;
    if (q) { /* EventSource cannot send headers */
        size_t n;
        char *dec = http_pct_decode(q, strlen(q), &n);
        if (dec && asprintf(&qtoken, "Bearer %s", dec) < 0) qtoken = NULL;
        free(dec);
        h = qtoken;
    }
    if (!h || strncasecmp(h, "Bearer ", 7) != 0 || !h[7]) {
        free(qtoken);
        failf(resp, 401, "unauthorized", "an Authorization: Bearer <token> header is required");
        http_resp_header(resp, "WWW-Authenticate", "Bearer");
        return NULL;
    }
    auth_principal *p = NULL;
    char *why = NULL;
    int vrc = auth_verify(a->cfg.auth, h + 7, time(NULL), &p, &why);
    free(qtoken);
    if (vrc < 0) {
        failf(resp, 401, "unauthorized", "invalid token: %s", why ? why : "verification failed");
        http_resp_header(resp, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
        free(why);
        return NULL;
    }
    return p;
}

/* ZooKeeper unreachable: answer 503 now rather than wait for a reconnection
 * (every later call would block until then). */
static bool zk_down(api *a, http_resp *resp) {
    if (zkc_connected(a->cfg.z)) return false;
    failf(resp, 503, "unavailable", "ZooKeeper is unreachable; retry shortly");
    http_resp_header(resp, "Retry-After", "1");
    return true;
}

/* The scope check: fills resp with 403 and returns true when who lacks it. */
static bool forbidden(const auth_principal *who, const route *rt, const char *method, http_resp *resp) {
    auth_perm need = needed_perm(rt, method);
    if (auth_can(who, rt->store, need)) return false;
    failf(resp, 403, "forbidden", "the token lacks the scope %s%s%s", need == AUTH_ADMIN ? "admin" : rt->store,
          need == AUTH_ADMIN ? "" : ":", need == AUTH_ADMIN ? "" : need == AUTH_WRITE ? "write" : "read");
    return true;
}

/* Prefix scopes: a record's key (valid) against the read set (GET) or the
 * write set (PUT, DELETE): 403 after invalid_key and before any 404.
 * Fills resp and returns true when outside. */
static bool key_forbidden(const auth_principal *who, const route *rt, const char *method, http_resp *resp) {
    bool reading = strcmp(method, "GET") == 0;
    if (reading ? auth_key_readable(who, rt->store, rt->key, rt->klen) : auth_key_writable(who, rt->store, rt->key, rt->klen))
        return false;
    failf(resp, 403, "forbidden", "the token may not %s this key: it is outside its %s prefixes in store '%s'",
          reading ? "read" : "write", reading ? "read" : "write", rt->store);
    return true;
}

static void dispatch(api *a, const http_req *req, route *rt, http_resp *resp, char *sub_out, size_t sub_n) {
    const char *method = http_req_method(req);
    req_view view = {0};
    auth_principal *who = authenticate(a, req, rt->id, resp);
    if (!who) return;
    if (a->cfg.auth && auth_principal_sub(who)) snprintf(sub_out, sub_n, "%s", auth_principal_sub(who));
    char subject[320];
    subject_of(a, who, req, subject, sizeof subject);
    int retry = 0;
    if (a->rate && !zs_limit_take(a->rate, subject, 1, zs_clock_ms(), &retry)) {
        if (a->cfg.metrics) atomic_fetch_add(&a->cfg.metrics->limited[ZS_LIMIT_RATE], 1);
        failf(resp, 429, "too_many_requests", "over the rate limit of %g requests per second; retry in %d s",
              a->cfg.rate_limit, retry);
        http_resp_header(resp, "Retry-After", "%d", retry);
        goto out;
    }
    if (rt->id == R_NONE) {
        failf(resp, 404, "not_found", "no such route: %s %.200s", method, http_req_path(req));
        goto out;
    }
    if (!route_method_allowed(rt->id, method)) {
        failf(resp, 405, "method_not_allowed", "%s is not allowed here (allowed: %s)", method, route_allowed_methods(rt->id));
        http_resp_header(resp, "Allow", "%s", route_allowed_methods(rt->id));
        goto out;
    }
    if (rt->id == R_STORES) { /* lists only what the token may read: maybe nothing */
        if (!zk_down(a, resp)) h_list_stores(a, who, resp);
        goto out;
    }
    if (forbidden(who, rt, method, resp)) goto out;
    if (rt->store_broken || !layout_name_valid(rt->store)) {
        failf(resp, 400, "invalid_store", "store name must match ^[A-Za-z0-9_-]{1,64}$");
        goto out;
    }
    if (rt->id == R_RECORD) {
        const char *why = rt->key_broken ? "the key's percent-encoding is broken" : layout_key_invalid(rt->key, rt->klen);
        if (why) { failf(resp, 400, "invalid_key", "%s", why); goto out; }
        if (key_forbidden(who, rt, method, resp)) goto out;
    }
    bool has_since = false;
    cursor_pos since;
    int limit = 0;
    if ((rt->id == R_CHANGES || rt->id == R_EVENTS) &&
        changes_query(req, rt->id == R_EVENTS, &has_since, &since, &limit, resp) < 0)
        goto out;
    /* What the token sees of the store: its read set, narrowed by ?prefix=
     * (400 empty, 403 wider than the read set), before the store lookup. */
    bool viewing = rt->id == R_CHANGES || rt->id == R_EVENTS || (rt->id == R_STORE && strcmp(method, "GET") == 0);
    if (viewing && view_make(who, rt->store, req, true, &view, resp) < 0) goto out;
    if (zk_down(a, resp)) goto out;
    if (rt->id == R_STORE) { h_store(a, req, rt, &view, resp); goto out; }
    store_cfg cfg;
    zs_err e = {0};
    if (!mirror_set_config(a->cfg.mirrors, rt->store, &cfg) && stores_get(a->cfg.z, a->cfg.root, rt->store, &cfg, &e) < 0) {
        fail(resp, &e);
        goto out;
    }
    switch (rt->id) {
    case R_RECORD: h_record(a, req, rt, &cfg, subject, resp); break;
    case R_PUSH: h_push(a, req, &cfg, who, subject, resp); break;
    case R_CHANGES: h_changes(a, &cfg, &view, has_since, &since, limit, resp); break;
    case R_EVENTS: h_events(a, req, &cfg, &view, has_since, &since, who, resp); break;
    default: break;
    }
    store_cfg_release(&cfg);
out:
    view_free(&view);
    auth_principal_free(who);
}

/* Runs before the body is read (see api.h), on an HTTP thread, several at
 * once: 401, then 403 for a known route and method. Everything else waits
 * for dispatch, which checks again. */
bool api_check_early(void *app, const http_req *req, http_resp *resp) {
    api *a = app;
    const char *path = http_req_path(req);
    if (!a->cfg.auth || (strncmp(path, "/v1/", 4) != 0 && strcmp(path, "/v1") != 0)) return false;
    route rt;
    route_parse(path, &rt);
    const char *method = http_req_method(req);
    auth_principal *who = authenticate(a, req, rt.id, resp);
    bool known = rt.id != R_NONE && rt.id != R_STORES && route_method_allowed(rt.id, method);
    /* a record PUT outside the write set is refused before its body too,
     * once the store and key are known valid (invalid_key comes first) */
    bool key_ok = known && rt.id == R_RECORD && !rt.store_broken && layout_name_valid(rt.store) && !rt.key_broken &&
                  !layout_key_invalid(rt.key, rt.klen);
    bool answered = !who || (known && forbidden(who, &rt, method, resp)) || (key_ok && key_forbidden(who, &rt, method, resp));
    auth_principal_free(who);
    if (answered) count_request(a, rt.id, resp->status);
    route_free(&rt);
    return answered;
}

static bool ops_path(const char *path) {
    return strcmp(path, "/healthz") == 0 || strcmp(path, "/readyz") == 0 || strcmp(path, "/metrics") == 0;
}

/* /healthz, /readyz and /metrics read only memory (atomics and short
 * locks, never a ZooKeeper call), so api_handle may run them on an HTTP
 * thread (libmicrohttpd's; several at once, beside the workers: api_handle
 * keeps nothing per thread). */
bool api_handle_inline(void *app, const http_req *req, http_resp *resp) {
    if (!ops_path(http_req_path(req))) return false;
    api_handle(app, req, resp);
    return true;
}

/* The route as a template, for logs: never a key or a token. */
static const char *route_template(route_id r) {
    static const char *const t[] = {"other", "/v1/stores", "/v1/stores/{store}", "/v1/stores/{store}/records/{key}",
                                    "/v1/stores/{store}/push", "/v1/stores/{store}/changes", "/v1/stores/{store}/events",
                                    "static"};
    return (size_t)r < sizeof t / sizeof t[0] ? t[r] : "other";
}

void api_handle(void *app, const http_req *req, http_resp *resp) {
    api *a = app;
    int64_t t0 = zs_now_us();
    char sub[128] = "";
    /* A request id, in the answer's X-Request-Id and the access log. */
    char rid[17];
    snprintf(rid, sizeof rid, "%08x%08x", (unsigned)g_random_int(), (unsigned)g_random_int());
    const char *path = http_req_path(req);
    route rt;
    route_parse(path, &rt);
    bool ops = strcmp(path, "/healthz") == 0 || strcmp(path, "/readyz") == 0 || strcmp(path, "/metrics") == 0;
    const char *m = http_req_method(req);
    if (ops && strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0) {
        failf(resp, 405, "method_not_allowed", "%s is not allowed here (allowed: GET)", m);
        http_resp_header(resp, "Allow", "GET, HEAD");
    } else if (strcmp(path, "/healthz") == 0) {
        http_resp_json(resp, 200, strdup("{\"status\":\"ok\"}"), 15);
    } else if (strcmp(path, "/readyz") == 0) {
        sbuf why = SBUF_INIT;
        if (!atomic_load(a->cfg.ready)) sbuf_puts(&why, "starting");
        else if (!zkc_connected(a->cfg.z)) sbuf_puts(&why, "the ZooKeeper session for writes is not connected");
        else (void)mirror_set_ready(a->cfg.mirrors, &why);
        if (why.len == 0 && !sbuf_failed(&why)) http_resp_json(resp, 200, strdup("{\"status\":\"ready\"}"), 18);
        else {
            http_resp_error(resp, 503, "unavailable", why.len ? why.buf : "not ready");
            http_resp_header(resp, "Retry-After", "1");
        }
        sbuf_free(&why);
    } else if (strcmp(path, "/metrics") == 0) {
        h_metrics(a, resp);
    } else if (strncmp(path, "/v1/", 4) != 0 && strcmp(path, "/v1") != 0) {
        const char *method = http_req_method(req);
        bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
        if (a->cfg.client_dir && get && strncmp(path, "/client/", 8) == 0) {
            rt.id = R_STATIC;
            static_serve(a->cfg.client_dir, path + 8, resp);
        } else if (a->cfg.web_dir && get) {
            rt.id = R_STATIC;
            static_serve(a->cfg.web_dir, path, resp);
        } else {
            failf(resp, 404, "not_found", "no such route: %.200s", path);
        }
    } else if (!atomic_load(a->cfg.ready)) {
        http_resp_error(resp, 503, "unavailable", "the gateway is starting; retry shortly");
        http_resp_header(resp, "Retry-After", "1");
    } else {
        dispatch(a, req, &rt, resp, sub, sizeof sub);
    }
    count_request(a, rt.id, resp->status);
    int cls = resp->status / 100 - 2;
    if (!ops && cls >= 0 && cls < 4 && (size_t)rt.id < ROUTES) zs_hist_observe(&a->http[rt.id][cls], zs_now_us() - t0);
    http_resp_header(resp, "X-Request-Id", "%s", rid);
    /* The access log: one line per request at info (the operational
     * routes, which probes poll, at debug); the route as a template and
     * the store, never a key, a query or a token. */
    if (a->cfg.lg && a->cfg.lg->level >= (ops ? ZS_LOG_DEBUG : ZS_LOG_INFO))
        zs_log_at(a->cfg.lg, ops ? ZS_LOG_DEBUG : ZS_LOG_INFO,
                  "http %s %s store=%s status=%d ms=%.1f bytes=%zu sub=%s addr=%s rid=%s", http_req_method(req),
                  ops ? path : route_template(rt.id), rt.store && !rt.store_broken ? rt.store : "-", resp->status,
                  (double)(zs_now_us() - t0) / 1000.0, resp->stream_ops ? (size_t)0 : resp->len, *sub ? sub : "-",
                  http_req_client_addr(req), rid);
    route_free(&rt);
}

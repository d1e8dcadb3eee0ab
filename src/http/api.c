#include "http/api.h"
#include "http/openapi_doc.h"

#include <glib.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http/metrics_page.h"
#include "http/route.h"
#include "http/static.h"
#include "schema/schema.h"
#include "cache/cursor.h"
#include "sync/push.h"
#include "sync/records.h"
#include "sync/stores.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/limit.h"
#include "util/jraw.h"
#include "util/sbuf.h"
#include "util/bounds.h"
#include "util/names.h"

#define CHANGES_PAGE_BYTES (8 * 1024 * 1024) /* a page stops early past this (more: true) */

/* ---- the route table ------------------------------------------------------------- */

static void h_list_stores(route_ctx *c);
static void h_store_get(route_ctx *c);
static void h_store_put(route_ctx *c);
static void h_store_delete(route_ctx *c);
static void h_record_get(route_ctx *c);
static void h_record_put(route_ctx *c);
static void h_record_delete(route_ctx *c);
static void h_push(route_ctx *c);
static void h_changes(route_ctx *c);
static void h_events(route_ctx *c);
static void h_healthz(route_ctx *c);
static void h_readyz(route_ctx *c);
static void h_metrics(route_ctx *c);
static void h_openapi(route_ctx *c);

#define STORE "/v1/stores/{store}"
#define RECORD STORE "/records/{key}"

/* Every route: exactly the operations of docs/openapi.yaml (see route.h
 * for what each column drives). The checks before a handler, in this
 * order: readiness (503), the token (401), the rate limit (429), 404, 405,
 * access (403), {store} (400), {key} (400, then 403 outside the key
 * prefixes), ROUTE_FEED (400), ROUTE_VIEW (400, 403), ZooKeeper connected
 * (503), ROUTE_CONFIG (404). A ROUTE_PUBLIC route skips the first three. */
static const route_def routes[] = {
    {"GET", "/v1/stores", "stores", ROUTE_TOKEN, 0, h_list_stores},
    {"GET", STORE, "store", ROUTE_READ, ROUTE_VIEW, h_store_get},
    {"PUT", STORE, "store", ROUTE_ADMIN, 0, h_store_put},
    {"DELETE", STORE, "store", ROUTE_ADMIN, 0, h_store_delete},
    {"GET", RECORD, "record", ROUTE_READ, ROUTE_CONFIG, h_record_get},
    {"PUT", RECORD, "record", ROUTE_WRITE, ROUTE_CONFIG, h_record_put},
    {"DELETE", RECORD, "record", ROUTE_WRITE, ROUTE_CONFIG, h_record_delete},
    {"POST", STORE "/push", "push", ROUTE_WRITE, ROUTE_CONFIG, h_push},
    {"GET", STORE "/changes", "changes", ROUTE_READ, ROUTE_FEED | ROUTE_VIEW | ROUTE_CONFIG, h_changes},
    {"GET", STORE "/events", "events", ROUTE_READ, ROUTE_FEED | ROUTE_STREAM | ROUTE_VIEW | ROUTE_CONFIG, h_events},
    /* operations: counted under "other", as unknown paths are */
    {"GET", "/healthz", "other", ROUTE_PUBLIC, ROUTE_PROBE, h_healthz},
    {"HEAD", "/healthz", "other", ROUTE_PUBLIC, ROUTE_PROBE, h_healthz},
    {"GET", "/readyz", "other", ROUTE_PUBLIC, ROUTE_PROBE, h_readyz},
    {"HEAD", "/readyz", "other", ROUTE_PUBLIC, ROUTE_PROBE, h_readyz},
    {"GET", "/metrics", "other", ROUTE_PUBLIC, ROUTE_PROBE, h_metrics},
    {"HEAD", "/metrics", "other", ROUTE_PUBLIC, ROUTE_PROBE, h_metrics},
    /* the OpenAPI description (http/openapi_doc.h), no token needed */
    {"GET", "/v1/openapi.json", "other", ROUTE_PUBLIC, 0, h_openapi},
    {"HEAD", "/v1/openapi.json", "other", ROUTE_PUBLIC, 0, h_openapi},
};
#define NROUTES (sizeof routes / sizeof routes[0])

const route_def *api_routes(size_t *n) {
    *n = NROUTES;
    return routes;
}

/* The metrics' route labels: "other" (no route: unknown paths), each label
 * of the table once in table order, then "static" (the files). */
#define LABEL_OTHER 0
#define MAX_LABELS (NROUTES + 2)

struct api {
    api_config cfg;
    push_env push;
    zs_limit *rate;                  /* --rate-limit (NULL: off) */
    _Atomic(gc *) collector;         /* for /metrics; set once by api_set_gc */
    const char *labels[MAX_LABELS];
    size_t nlabels, label_static;
    size_t label_of[NROUTES];        /* each route's index in labels */
    metrics_page_counters *counters; /* requests by label and status */
    atomic_ullong auth_failures[AUTH_FAIL_COUNT]; /* 401s by reason (zoosync_auth_failures_total) */
    struct {                 /* the auth-failure log's rate limit: AUTH_LOG_MAX lines per AUTH_LOG_WINDOW_MS */
        pthread_mutex_t mu;  /* guards the rest; a leaf: only our logger's write is made under it */
        int64_t start_ms;    /* the window's start (zs_clock_ms) */
        unsigned logged;     /* lines written in this window */
        unsigned long long dropped; /* failures not logged in this window */
    } auth_log;
};

#define AUTH_LOG_MAX 10
#define AUTH_LOG_WINDOW_MS 10000
static void auth_log_roll(api *a, int64_t now);

/* The handler's context: the request and what the checks before the
 * handler established. Lives on the worker's (or the HTTP thread's) stack
 * for one request. */
struct route_ctx {
    api *a;
    const http_req *req;
    http_resp *resp;
    const route_match *m;         /* m->def: this route; m->store, m->key: its parameters */
    const auth_principal *who;
    const char *subject;          /* who the per-subject limits count */
    struct req_view *view;        /* ROUTE_VIEW */
    store_cfg cfg;                /* ROUTE_CONFIG: the store's config (owned) */
    bool has_since;               /* ROUTE_FEED */
    cursor_pos since;
    int limit;
};

static size_t label_index(api *a, const char *label) {
    for (size_t i = 0; i < a->nlabels; i++)
        if (strcmp(a->labels[i], label) == 0) return i;
    a->labels[a->nlabels] = label;
    return a->nlabels++;
}

api *api_new(const api_config *cfg) {
    api *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->cfg = *cfg;
    pthread_mutex_init(&a->auth_log.mu, NULL);
    a->auth_log.start_ms = INT64_MIN / 2; /* no window open */
    a->push = (push_env){cfg->z, cfg->mirrors, cfg->root, cfg->max_tx_bytes, cfg->lg, cfg->metrics, cfg->commit,
                         push_clients_new(), NULL, NULL};
    a->rate = zs_limit_new(cfg->rate_limit > 0 ? cfg->rate_limit : 0, cfg->rate_limit > 0 ? 2 * cfg->rate_limit : 0); /* 0: off */
    if (cfg->write_bytes_per_sec > 0) a->push.budget_bytes = zs_limit_new(cfg->write_bytes_per_sec, 2 * cfg->write_bytes_per_sec);
    if (cfg->write_mutations_per_sec > 0)
        a->push.budget_mutations = zs_limit_new(cfg->write_mutations_per_sec, 2 * cfg->write_mutations_per_sec);
    (void)label_index(a, "other");
    for (size_t i = 0; i < NROUTES; i++) a->label_of[i] = label_index(a, routes[i].label);
    a->label_static = label_index(a, "static");
    a->counters = metrics_page_counters_new(a->labels, a->nlabels);
    if (!a->counters) { api_free(a); return NULL; }
    return a;
}

void api_set_rate_limit(api *a, double per_s) { zs_limit_set(a->rate, per_s, 2 * per_s); }

void api_set_gc(api *a, gc *g) { atomic_store(&a->collector, g); }

void api_free(api *a) {
    if (!a) return;
    push_clients_free(a->push.clients);
    zs_limit_free(a->rate);
    zs_limit_free(a->push.budget_bytes);
    zs_limit_free(a->push.budget_mutations);
    metrics_page_counters_free(a->counters);
    if (a->auth_log.dropped && a->cfg.lg)
        LOG_WARN(a->cfg.lg, "auth failure: %llu more auth failures not logged", a->auth_log.dropped);
    pthread_mutex_destroy(&a->auth_log.mu);
    free(a);
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

static bool json_content_type(const http_req *req) {
    const char *ct = http_req_header(req, "Content-Type");
    if (!ct) return false;
    size_t n = strcspn(ct, ";");
    while (n && (ct[n - 1] == ' ' || ct[n - 1] == '\t')) n--;
    return n == 16 && strncasecmp(ct, "application/json", 16) == 0;
}

/* Loads the store's mirror and catches it up with ZooKeeper (every write
 * acknowledged before the call is in it): the mirror, or NULL and 503 (or
 * 404: the store was deleted since cfg was read). */
static mirror *current_mirror(api *a, const store_cfg *cfg, http_resp *resp) {
    mirror *m = NULL;
    int arc = mirror_set_acquire(a->cfg.mirrors, cfg->name, cfg->czxid, BOUND_LOAD_MS, &m);
    if (arc == MIRROR_GONE) {
        failf(resp, 404, "store_not_found", "store '%s' does not exist", cfg->name);
        return NULL;
    }
    if (arc < 0) {
        failf(resp, 503, "unavailable", "store '%s' is still loading; retry shortly", cfg->name);
        http_resp_header(resp, "Retry-After", "1");
        return NULL;
    }
    mirror_note_horizon(m, &cfg->horizon); /* at least what the config just read says */
    int64_t t0 = zs_clock_us();
    int crc = mirror_catch_up(m, cfg->czxid, BOUND_CATCH_UP_MS);
    zs_metrics_zk(a->cfg.metrics, ZS_OP_SYNC, zs_clock_us() - t0, crc == MIRROR_GONE ? 0 : crc); /* -1: an error */
    if (crc == MIRROR_GONE) {
        failf(resp, 404, "store_not_found", "store '%s' does not exist", cfg->name);
        return NULL;
    }
    if (crc < 0) {
        failf(resp, 503, "unavailable", "could not catch up with ZooKeeper within %d ms; retry", BOUND_CATCH_UP_MS);
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

/* Builds the view of who on store, with ?prefix=. 0, or -1
 * and resp: 400 for an empty or broken prefix, 403 for one outside the read
 * set. */
static int view_make(const auth_principal *who, const char *store, const http_req *req, req_view *v,
                     http_resp *resp) {
    *v = (req_view){0};
    if (auth_store_read_prefixes(who, store, &v->ks) < 0) {
        failf(resp, 500, "internal", "out of memory");
        return -1;
    }
    const char *q = http_req_query(req, "prefix");
    if (q) {
        v->prefix = http_pct_decode(q, strlen(q), &v->plen);
        const char *why = !*q ? "must not be empty" : !v->prefix ? "its percent-encoding is broken"
                          : names_key_invalid(v->prefix, v->plen) ? "not a possible key prefix (UTF-8, no U+0000, at most 1024 bytes)"
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

/* A description; records counts only what the view sees (NULL: all). */
static void describe(const store_cfg *cfg, mirror *m, const req_view *view, sbuf *out) {
    char cur[CURSOR_LEN + 1];
    cursor_pos p = cursor_after_zxid(mirror_watermark(m));
    cursor_format(&p, cur);
    stores_describe(cfg, view && !view->all ? mirror_live_count_filtered(m, &view->f) : mirror_live_count(m), cur, out);
}

/* ---- stores ---------------------------------------------------------------------- */

/* The view of who's read set in store alone (no ?prefix=). 0, or -1 (out of
 * memory). */
static int view_of_read_set(const auth_principal *who, const char *store, req_view *v) {
    *v = (req_view){0};
    if (auth_store_read_prefixes(who, store, &v->ks) < 0) return -1;
    if (v->ks.all) { v->all = true; return 0; }
    if (!(v->v = malloc((v->ks.n ? v->ks.n : 1) * sizeof *v->v))) { view_free(v); return -1; }
    for (size_t i = 0; i < v->ks.n; i++) v->v[i] = (mirror_key){v->ks.v[i].p, v->ks.v[i].len};
    v->f = (mirror_filter){v->v, v->ks.n};
    return 0;
}

/* Every store in which the token holds any grant, each as its description
 * (records counted in the token's read set, as GET /v1/stores/{store}),
 * from the mirrors every gateway loads at start and keeps: no catch-up with
 * ZooKeeper per store. A store created since then through another gateway
 * is loaded here (up to BOUND_LOAD_MS; one still loading is left out). */
static void h_list_stores(route_ctx *c) {
    api *a = c->a;
    char **names;
    size_t n;
    zs_err e = {0};
    if (stores_list(a->cfg.z, a->cfg.root, &names, &n, &e) < 0) { fail(c->resp, &e); return; }
    sbuf b = SBUF_INIT;
    sbuf_puts(&b, "{\"stores\":[");
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        if (!auth_can(c->who, names[i], AUTH_READ)) continue; /* any grant in it */
        store_cfg cfg;
        if (stores_get(a->cfg.z, a->cfg.root, a->cfg.schemas, names[i], &cfg, &e) < 0) continue; /* deleted meanwhile */
        req_view view;
        mirror *m = NULL;
        if (view_of_read_set(c->who, names[i], &view) == 0) {
            if (mirror_set_acquire(a->cfg.mirrors, cfg.name, cfg.czxid, BOUND_LOAD_MS, &m) == 0) {
                mirror_note_horizon(m, &cfg.horizon);
                if (!first) sbuf_putc(&b, ',');
                describe(&cfg, m, &view, &b);
                first = false;
            }
            view_free(&view);
        }
        store_cfg_release(&cfg);
    }
    sbuf_puts(&b, "]}");
    stores_free_names(names, n);
    ok_json(c->resp, 200, &b);
}

static void h_store_get(route_ctx *c) {
    api *a = c->a;
    zs_err e = {0};
    store_cfg cfg;
    if (stores_get(a->cfg.z, a->cfg.root, a->cfg.schemas, c->m->store, &cfg, &e) < 0) {
        int left, total;
        if (e.status == 404 &&
            stores_deletion_progress(a->cfg.z, a->cfg.root, a->cfg.schemas, c->m->store, &left, &total) == 1) {
            /* a deletion under way: how far it got (the CLI's progress) */
            sbuf b = SBUF_INIT;
            sbuf_printf(&b, "{\"error\":\"store_not_found\",\"message\":\"store '%s' is being deleted\","
                            "\"deleting\":{\"bucketsLeft\":%d,\"buckets\":%d}}", c->m->store, left, total);
            ok_json(c->resp, 404, &b);
            return;
        }
        fail(c->resp, &e);
        return;
    }
    mirror *m = current_mirror(a, &cfg, c->resp);
    if (m) {
        sbuf b = SBUF_INIT;
        describe(&cfg, m, c->view, &b);
        ok_json(c->resp, 200, &b);
    }
    store_cfg_release(&cfg);
}

static void h_store_delete(route_ctx *c) {
    zs_err e = {0};
    if (stores_delete(c->a->cfg.z, c->a->cfg.root, c->a->cfg.schemas, c->m->store, &e) < 0) { fail(c->resp, &e); return; }
    c->resp->status = 204;
}

static void h_store_put(route_ctx *c) {
    api *a = c->a;
    const http_req *req = c->req;
    http_resp *resp = c->resp;
    zs_err e = {0};
    store_cfg cfg;
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
        if (store_cfg_split_schema(raw, len, &rest, &schema, &je) < 0) {
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
    int rc = stores_put(a->cfg.z, a->cfg.root, a->cfg.schemas, c->m->store, body, schema.len ? schema.buf : NULL,
                        schema.len, &cfg, &created, &e);
    json_decref(body);
    sbuf_free(&schema);
    if (rc < 0) { fail(resp, &e); return; }
    mirror *m = current_mirror(a, &cfg, resp);
    if (m) {
        sbuf b = SBUF_INIT;
        describe(&cfg, m, NULL, &b); /* (admin) */
        ok_json(resp, created ? 201 : 200, &b);
    }
    store_cfg_release(&cfg);
}

/* ---- records ------------------------------------------------------------------------ */

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

/* If-Match and If-None-Match, for every method of a record: false and 400
 * when If-None-Match is other than *. */
static bool record_preconds(route_ctx *c, records_precond *pre) {
    *pre = (records_precond){0};
    const char *im = http_req_header(c->req, "If-Match");
    const char *inm = http_req_header(c->req, "If-None-Match");
    if (im && strcmp(im, "*") != 0) {
        pre->if_match = true;
        if (route_if_match(im, &pre->match_version) < 0) pre->match_version = -1; /* matches nothing */
    }
    if (inm) {
        if (strcmp(inm, "*") != 0) {
            failf(c->resp, 400, "bad_request", "If-None-Match: only * is supported");
            return false;
        }
        pre->if_none_match = true;
    }
    return true;
}

/* A conditional GET (If-None-Match listing the current ETag, or *) is 304
 * with the ETag and no body; If-Match is not looked at on a GET. */
static void h_record_get(route_ctx *c) {
    api *a = c->a;
    zs_err e = {0};
    sbuf b = SBUF_INIT;
    int32_t version;
    if (records_get(a->cfg.z, a->cfg.root, &c->cfg, c->m->key, c->m->klen, &b, &version, &e) < 0) {
        sbuf_free(&b);
        fail(c->resp, &e);
        return;
    }
    const char *inm = http_req_header(c->req, "If-None-Match");
    if (inm && route_etag_listed(inm, version)) {
        sbuf_free(&b);
        c->resp->status = 304;
    } else {
        ok_json(c->resp, 200, &b);
    }
    http_resp_header(c->resp, "ETag", "\"%ld\"", (long)version);
}

static void h_record_delete(route_ctx *c) {
    api *a = c->a;
    zs_err e = {0};
    records_precond pre;
    if (!record_preconds(c, &pre)) return;
    if (push_budget(&a->push, c->subject, 1, c->m->klen, &e) < 0) { fail(c->resp, &e); return; }
    if (records_delete(a->cfg.z, a->cfg.root, &c->cfg, c->m->key, c->m->klen, &pre, &e) < 0) { fail(c->resp, &e); return; }
    c->resp->status = 204;
}

static void h_record_put(route_ctx *c) {
    api *a = c->a;
    const http_req *req = c->req;
    http_resp *resp = c->resp;
    const store_cfg *cfg = &c->cfg;
    const char *subject = c->subject;
    zs_err e = {0};
    records_precond pre;
    if (!record_preconds(c, &pre)) return;
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
    if (!push_value_fits(&a->push, vlen)) {
        failf(resp, 413, "value_too_large",
              "value: %zu bytes, over what one ZooKeeper transaction of this gateway may carry (--max-tx-bytes %zu)", vlen,
              a->cfg.max_tx_bytes);
        free(value);
        return;
    }
    if (cfg->schema && !schema_ok(cfg, value, vlen, resp)) { free(value); return; }
    if (push_budget(&a->push, subject, 1, c->m->klen + vlen, &e) < 0) {
        fail(resp, &e);
        free(value);
        return;
    }
    mirror *quota = NULL;
    if ((cfg->max_records || cfg->max_bytes) && !(quota = current_mirror(a, cfg, resp))) { /* caught up: every write so far counts */
        free(value);
        return;
    }
    sbuf b = SBUF_INIT;
    bool created = false;
    int32_t version;
    int rc = records_put(a->cfg.z, a->cfg.root, cfg, quota, c->m->key, c->m->klen, value, vlen, &pre, &b, &created,
                         &version, &e);
    free(value);
    if (rc < 0) { sbuf_free(&b); fail(resp, &e); return; }
    ok_json(resp, created ? 201 : 200, &b);
    http_resp_header(resp, "ETag", "\"%ld\"", (long)version);
}

/* ---- sync ---------------------------------------------------------------------------- */

static void h_push(route_ctx *c) {
    api *a = c->a;
    const http_req *req = c->req;
    http_resp *resp = c->resp;
    const store_cfg *cfg = &c->cfg;
    const auth_principal *who = c->who;
    const char *subject = c->subject;
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
        if (stores_get(a->cfg.z, a->cfg.root, a->cfg.schemas, cfg->name, &fresh, &ge) < 0) { e = ge; break; }
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

static void h_changes(route_ctx *c) {
    api *a = c->a;
    http_resp *resp = c->resp;
    const store_cfg *cfg = &c->cfg;
    const req_view *view = c->view;
    bool has_since = c->has_since;
    const cursor_pos *since = &c->since;
    int limit = c->limit;
    mirror *m = current_mirror(a, cfg, resp);
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

static void h_events(route_ctx *c) {
    api *a = c->a;
    const http_req *req = c->req;
    http_resp *resp = c->resp;
    const store_cfg *cfg = &c->cfg;
    const req_view *view = c->view;
    bool has_since = c->has_since;
    const cursor_pos *since = &c->since;
    const auth_principal *who = c->who;
    const char *sub = a->cfg.auth ? auth_principal_sub(who) : NULL;
    /* The stream ends with the token: its exp, on the monotonic clock. */
    long long exp = a->cfg.auth ? auth_principal_exp(who) : 0;
    int64_t expires_ms = exp > 0 ? zs_clock_ms() + (exp * 1000 - (int64_t)g_get_real_time() / 1000) : 0;
    mirror *m = current_mirror(a, cfg, resp);
    if (!m) return;
    if (has_since && since->zxid > mirror_watermark(m)) {
        failf(resp, 400, "invalid_cursor", "since: a position beyond anything this store has issued");
        return;
    }
    events_start(a->cfg.events, m, has_since ? since : NULL, view_filter(view), sub, http_req_client_addr(req), expires_ms,
                 resp);
}

/* ---- operations: memory only (atomics and short locks), on the HTTP threads -------- */

static void h_healthz(route_ctx *c) { http_resp_json(c->resp, 200, strdup("{\"status\":\"ok\"}"), 15); }

static void h_readyz(route_ctx *c) {
    api *a = c->a;
    sbuf why = SBUF_INIT;
    if (!atomic_load(a->cfg.ready)) sbuf_puts(&why, "starting");
    else if (!session_connected(a->cfg.z)) sbuf_puts(&why, "the ZooKeeper session for writes is not connected");
    else (void)mirror_set_ready(a->cfg.mirrors, &why);
    if (why.len == 0 && !sbuf_failed(&why)) http_resp_json(c->resp, 200, strdup("{\"status\":\"ready\"}"), 18);
    else {
        http_resp_error(c->resp, 503, "unavailable", why.len ? why.buf : "not ready");
        http_resp_header(c->resp, "Retry-After", "1");
    }
    sbuf_free(&why);
}

static void h_openapi(route_ctx *c) {
    char *doc = malloc(zs_openapi_json_len + 1);
    if (!doc) { failf(c->resp, 500, "internal", "out of memory"); return; }
    memcpy(doc, zs_openapi_json, zs_openapi_json_len + 1);
    http_resp_json(c->resp, 200, doc, zs_openapi_json_len);
}

static void h_metrics(route_ctx *c) {
    api *a = c->a;
    mirror_stats ms;
    mirror_set_stats(a->cfg.mirrors, &ms);
    gc_stats gs = {0};
    gc *collector = atomic_load(&a->collector);
    if (collector) gc_get_stats(collector, &gs);
    pthread_mutex_lock(&a->auth_log.mu); /* a window that ended has its summary logged now */
    auth_log_roll(a, zs_clock_ms());
    pthread_mutex_unlock(&a->auth_log.mu);
    unsigned long long af[AUTH_FAIL_COUNT];
    for (int r = 0; r < AUTH_FAIL_COUNT; r++) af[r] = atomic_load(&a->auth_failures[r]);
    mirror_store_stat *st = NULL;
    size_t nst = mirror_set_store_stats(a->cfg.mirrors, &st);
    events_store_count *ev = NULL;
    size_t nev = a->cfg.events ? events_store_counts(a->cfg.events, &ev) : 0;
    metrics_page_in in = {
        .version = a->cfg.version,
        .allocator = a->cfg.allocator,
        .http = a->counters,
        .metrics = a->cfg.metrics,
        .mirror = &ms,
        .gc = &gs,
        .zk_connected = session_connected(a->cfg.z),
        .event_streams = a->cfg.events ? events_count(a->cfg.events) : 0,
        .stream_wakes = a->cfg.events ? events_wakes(a->cfg.events) : 0ULL,
        .stores = st,
        .nstores = nst,
        .streams = ev,
        .nstreams = nev,
        .auth_failures = af,
    };
    sbuf b = SBUF_INIT;
    metrics_page_render(&in, &b);
    mirror_store_stats_free(st, nst);
    free(ev);
    ok_json(c->resp, 200, &b);
    c->resp->content_type = "text/plain; version=0.0.4";
}

/* ---- the checks before a handler ------------------------------------------------------ */

/* Closes the window when it ended: logs the summary of the failures it did
 * not log. A window opens at the first failure after the last one closed.
 * Under auth_log.mu. */
static void auth_log_roll(api *a, int64_t now) {
    if (now - a->auth_log.start_ms < AUTH_LOG_WINDOW_MS) return;
    if (!a->auth_log.logged && !a->auth_log.dropped) { /* no window open: the next failure opens one */
        a->auth_log.start_ms = INT64_MIN / 2;
        return;
    }
    if (a->auth_log.dropped && a->cfg.lg)
        LOG_WARN(a->cfg.lg, "auth failure: %llu more auth failures not logged", a->auth_log.dropped);
    a->auth_log.start_ms = now;
    a->auth_log.logged = 0;
    a->auth_log.dropped = 0;
}

/* Counts a 401 by reason and logs it, at most AUTH_LOG_MAX lines per
 * window (then one summary line with the count at the next failure or
 * scrape after the window). Never the token. Any thread. */
static void auth_failed(api *a, const http_req *req, const route_def *route, auth_failure r) {
    atomic_fetch_add(&a->auth_failures[r < AUTH_FAIL_COUNT ? r : AUTH_FAIL_OTHER], 1);
    const char *addr = http_req_client_addr(req);
    pthread_mutex_lock(&a->auth_log.mu);
    int64_t now = zs_clock_ms();
    auth_log_roll(a, now);
    if (!a->auth_log.logged && !a->auth_log.dropped) a->auth_log.start_ms = now; /* a window opens at its first failure */
    if (a->auth_log.logged < AUTH_LOG_MAX) {
        a->auth_log.logged++;
        if (a->cfg.lg)
            LOG_WARN(a->cfg.lg, "auth failure: %s addr=%s route=%s", auth_failure_name(r), addr && *addr ? addr : "-",
                     route ? route->pattern : "-");
    } else {
        a->auth_log.dropped++;
    }
    pthread_mutex_unlock(&a->auth_log.mu);
}

/* 401, or the token's principal (anonymous when authentication is off).
 * route: the path's route (NULL: none); an event stream's token may come
 * as ?access_token=, EventSource sending no header. */
static auth_principal *authenticate(api *a, const http_req *req, const route_def *route, http_resp *resp) {
    if (!a->cfg.auth) return auth_principal_anonymous();
    const char *h = http_req_header(req, "Authorization");
    char *qtoken = NULL;
    const char *q = route && (route->flags & ROUTE_STREAM) && !h ? http_req_query(req, "access_token") : NULL;
    if (q) { /* EventSource cannot send headers */
        size_t n;
        char *dec = http_pct_decode(q, strlen(q), &n);
        if (dec && asprintf(&qtoken, "Bearer %s", dec) < 0) qtoken = NULL;
        free(dec);
        h = qtoken;
    }
    if (!h || strncasecmp(h, "Bearer ", 7) != 0 || !h[7]) {
        free(qtoken);
        auth_failed(a, req, route, AUTH_FAIL_MISSING);
        failf(resp, 401, "unauthorized", "an Authorization: Bearer <token> header is required");
        http_resp_header(resp, "WWW-Authenticate", "Bearer");
        return NULL;
    }
    auth_principal *p = NULL;
    auth_failure fail = AUTH_FAIL_OTHER;
    char why[ZS_ERRLEN] = "";
    int vrc = auth_verify(a->cfg.auth, h + 7, time(NULL), &p, &fail, why, sizeof why);
    free(qtoken);
    if (vrc < 0) {
        auth_failed(a, req, route, fail);
        failf(resp, 401, "unauthorized", "invalid token: %s", why[0] ? why : "verification failed");
        http_resp_header(resp, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
        return NULL;
    }
    return p;
}

/* ZooKeeper unreachable: answer 503 now rather than wait for a reconnection
 * (every later call would block until then). */
static bool zk_down(api *a, http_resp *resp) {
    if (session_connected(a->cfg.z)) return false;
    failf(resp, 503, "unavailable", "ZooKeeper is unreachable; retry shortly");
    http_resp_header(resp, "Retry-After", "1");
    return true;
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

static auth_perm perm_of(route_access acc) {
    return acc == ROUTE_ADMIN ? AUTH_ADMIN : acc == ROUTE_WRITE ? AUTH_WRITE : AUTH_READ;
}

static const char *store_of(const route_match *m) { return m->store ? m->store : ""; }

/* The route's access: fills resp with 403 and returns true when who lacks
 * it. ROUTE_TOKEN and ROUTE_PUBLIC need no scope. */
static bool forbidden(const auth_principal *who, const route_match *m, http_resp *resp) {
    route_access acc = m->def->access;
    if (acc == ROUTE_PUBLIC || acc == ROUTE_TOKEN) return false;
    auth_perm need = perm_of(acc);
    const char *store = store_of(m);
    if (auth_can(who, store, need)) return false;
    failf(resp, 403, "forbidden", "the token lacks the scope %s%s%s", need == AUTH_ADMIN ? "admin" : store,
          need == AUTH_ADMIN ? "" : ":", need == AUTH_ADMIN ? "" : need == AUTH_WRITE ? "write" : "read");
    return true;
}

static bool has_param(const route_def *d, const char *param) { return strstr(d->pattern, param) != NULL; }

/* The path's {store}: 400 when it is not a store name. */
static bool bad_store(const route_match *m, http_resp *resp) {
    if (!m->store_broken && m->store && names_valid(m->store)) return false;
    failf(resp, 400, "invalid_store", "store name must match ^[A-Za-z0-9_-]{1,64}$");
    return true;
}

/* The path's {key}: 400 when it is not a key. */
static bool bad_key(const route_match *m, http_resp *resp) {
    const char *why = m->key_broken ? "the key's percent-encoding is broken" : names_key_invalid(m->key, m->klen);
    if (!why) return false;
    failf(resp, 400, "invalid_key", "%s", why);
    return true;
}

/* Prefix scopes: a record's key (valid) against the read set (a route
 * needing ROUTE_READ) or the write set (the others): 403 after invalid_key
 * and before any 404. Fills resp and returns true when outside. */
static bool key_forbidden(const auth_principal *who, const route_match *m, http_resp *resp) {
    bool reading = m->def->access == ROUTE_READ;
    const char *store = store_of(m);
    if (reading ? auth_key_readable(who, store, m->key, m->klen) : auth_key_writable(who, store, m->key, m->klen))
        return false;
    failf(resp, 403, "forbidden", "the token may not %s this key: it is outside its %s prefixes in store '%s'",
          reading ? "read" : "write", reading ? "read" : "write", store);
    return true;
}

static void not_allowed(const route_match *m, const char *method, http_resp *resp) {
    failf(resp, 405, "method_not_allowed", "%s is not allowed here (allowed: %s)", method, m->allow);
    http_resp_header(resp, "Allow", "%s", m->allow);
}

/* Runs the checks of the route's columns after access (see the table),
 * then its handler. */
static void run_route(route_ctx *c) {
    const route_def *d = c->m->def;
    http_resp *resp = c->resp;
    bool store = has_param(d, "{store}"), key = has_param(d, "{key}");
    if (store && bad_store(c->m, resp)) return;
    if (key && (bad_key(c->m, resp) || key_forbidden(c->who, c->m, resp))) return;
    if ((d->flags & ROUTE_FEED) &&
        changes_query(c->req, d->flags & ROUTE_STREAM, &c->has_since, &c->since, &c->limit, resp) < 0)
        return;
    /* What the token sees of the store: its read set, narrowed by ?prefix=
     * (400 empty, 403 wider than the read set), before the store lookup. */
    req_view view = {0};
    if (d->flags & ROUTE_VIEW) {
        if (view_make(c->who, c->m->store, c->req, &view, resp) < 0) return;
        c->view = &view;
    }
    if (d->access != ROUTE_PUBLIC && zk_down(c->a, resp)) goto out;
    if (d->flags & ROUTE_CONFIG) {
        zs_err e = {0};
        api *a = c->a;
        if (!mirror_set_config(a->cfg.mirrors, c->m->store, &c->cfg) &&
            stores_get(a->cfg.z, a->cfg.root, a->cfg.schemas, c->m->store, &c->cfg, &e) < 0) {
            fail(resp, &e);
            goto out;
        }
    }
    d->handler(c);
    if (d->flags & ROUTE_CONFIG) store_cfg_release(&c->cfg);
out:
    view_free(&view);
}

/* An API request (a route that is not ROUTE_PUBLIC, or a path under
 * ROUTE_API_PREFIX that no route has): the token, the rate limit, 404,
 * 405, access, then run_route. */
static void dispatch(api *a, const http_req *req, const route_match *m, http_resp *resp, char *sub_out, size_t sub_n) {
    const char *method = http_req_method(req);
    auth_principal *who = authenticate(a, req, m->path, resp);
    if (!who) return;
    if (a->cfg.auth && auth_principal_sub(who)) snprintf(sub_out, sub_n, "%s", auth_principal_sub(who));
    char subject[320];
    subject_of(a, who, req, subject, sizeof subject);
    int retry = 0;
    if (a->rate && !zs_limit_take(a->rate, subject, 1, zs_clock_ms(), &retry)) {
        if (a->cfg.metrics) atomic_fetch_add(&a->cfg.metrics->limited[ZS_LIMIT_RATE], 1);
        failf(resp, 429, "too_many_requests", "over the rate limit of %g requests per second; retry in %d s",
              zs_limit_rate(a->rate), retry);
        http_resp_header(resp, "Retry-After", "%d", retry);
    } else if (!m->path) {
        failf(resp, 404, "not_found", "no such route: %s %.200s", method, http_req_path(req));
    } else if (!m->def) {
        not_allowed(m, method, resp);
    } else if (!forbidden(who, m, resp)) {
        route_ctx c = {.a = a, .req = req, .resp = resp, .m = m, .who = who, .subject = subject};
        run_route(&c);
    }
    auth_principal_free(who);
}

/* The route's metrics label (an index in a->labels). */
static size_t label_of(const api *a, const route_match *m) {
    return m->path ? a->label_of[m->path - routes] : LABEL_OTHER;
}

/* Whether the path is the API's: the token is checked before anything
 * else (but readiness) there. */
static bool api_request(const route_match *m, const char *path) {
    return m->path ? m->path->access != ROUTE_PUBLIC : route_in_api(path);
}

/* Runs before the body is read (see api.h): 401, then 403 for a route of
 * this method (its access, then a record key's prefixes once the store
 * and key are known valid: invalid_key comes first). Everything else waits
 * for dispatch, which checks again. */
bool api_check_early(void *app, const http_req *req, http_resp *resp) {
    api *a = app;
    if (!a->cfg.auth) return false;
    route_match m;
    route_find(routes, NROUTES, http_req_method(req), http_req_path(req), &m);
    bool answered = false;
    if (api_request(&m, http_req_path(req))) {
        auth_principal *who = authenticate(a, req, m.path, resp);
        bool key_ok = m.def && has_param(m.def, "{key}") && !m.store_broken && m.store && names_valid(m.store) &&
                      !m.key_broken && !names_key_invalid(m.key, m.klen);
        answered = !who || (m.def && forbidden(who, &m, resp)) || (key_ok && key_forbidden(who, &m, resp));
        auth_principal_free(who);
    }
    if (answered) metrics_page_count(a->counters, label_of(a, &m), resp->status, -1);
    route_match_free(&m);
    return answered;
}

/* The fallback for paths outside the API that no route has: the files of
 * --client-dir (under /client/) and --web, GET and HEAD. */
static bool serve_file(api *a, const http_req *req, http_resp *resp) {
    const char *path = http_req_path(req), *method = http_req_method(req);
    bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    if (a->cfg.client_dir && get && strncmp(path, "/client/", 8) == 0) {
        static_serve(a->cfg.client_dir, path + 8, resp);
        return true;
    }
    if (a->cfg.web_dir && get) {
        static_serve(a->cfg.web_dir, path, resp);
        return true;
    }
    failf(resp, 404, "not_found", "no such route: %.200s", path);
    return false;
}

static void handle(api *a, const http_req *req, const route_match *m, http_resp *resp) {
    int64_t t0 = zs_clock_us();
    char sub[128] = "";
    /* A request id, in the answer's X-Request-Id and the access log. */
    char rid[17];
    snprintf(rid, sizeof rid, "%08x%08x", (unsigned)g_random_int(), (unsigned)g_random_int());
    const char *path = http_req_path(req), *method = http_req_method(req);
    size_t label = label_of(a, m);
    const char *tmpl = m->path ? m->path->pattern : "other";
    if (m->path && !api_request(m, path)) { /* public: no readiness, no token */
        if (!m->def) not_allowed(m, method, resp);
        else {
            route_ctx c = {.a = a, .req = req, .resp = resp, .m = m};
            run_route(&c);
        }
    } else if (api_request(m, path)) {
        if (!atomic_load(a->cfg.ready)) {
            http_resp_error(resp, 503, "unavailable", "the gateway is starting; retry shortly");
            http_resp_header(resp, "Retry-After", "1");
        } else {
            dispatch(a, req, m, resp, sub, sizeof sub);
        }
    } else if (serve_file(a, req, resp)) {
        label = a->label_static;
        tmpl = "static";
    }
    bool probe = m->path && (m->path->flags & ROUTE_PROBE);
    metrics_page_count(a->counters, label, resp->status, probe ? -1 : zs_clock_us() - t0);
    http_resp_header(resp, "X-Request-Id", "%s", rid);
    /* The access log: one line per request at info (the probes' routes at
     * debug); the route as a template and the store, never a key, a query
     * or a token. */
    zs_log_level lvl = probe ? ZS_LOG_DEBUG : ZS_LOG_INFO;
    if (a->cfg.lg && a->cfg.lg->level >= lvl)
        zs_log_at(a->cfg.lg, lvl, "http %s %s store=%s status=%d ms=%.1f bytes=%zu sub=%s addr=%s rid=%s", method, tmpl,
                  m->store && !m->store_broken ? m->store : "-", resp->status, (double)(zs_clock_us() - t0) / 1000.0,
                  resp->stream_ops ? (size_t)0 : resp->len, *sub ? sub : "-", http_req_client_addr(req), rid);
}

void api_handle(void *app, const http_req *req, http_resp *resp) {
    route_match m;
    route_find(routes, NROUTES, http_req_method(req), http_req_path(req), &m);
    handle(app, req, &m, resp);
    route_match_free(&m);
}

/* The probes' routes read only memory (atomics and short locks, never a
 * ZooKeeper call), so they run on the connection's HTTP thread (several at
 * once, beside the workers: nothing here is kept per thread). */
bool api_handle_inline(void *app, const http_req *req, http_resp *resp) {
    route_match m;
    route_find(routes, NROUTES, http_req_method(req), http_req_path(req), &m);
    bool probe = m.path && (m.path->flags & ROUTE_PROBE);
    if (probe) handle(app, req, &m, resp);
    route_match_free(&m);
    return probe;
}

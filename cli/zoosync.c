/* zoosync: a command-line client for a zoosyncd gateway (libcurl).
 *
 *   zoosync [--url URL] [--token T] COMMAND ARGS...
 *
 * Prints the gateway's JSON answers on stdout; an error answer goes to
 * stderr as "zoosync: <code>: <message>" with exit status 1; a usage error
 * exits with 2. The token may also come from $ZOOSYNC_TOKEN, the URL from
 * $ZOOSYNC_URL (default http://127.0.0.1:8080). */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <glib.h>
#include <jansson.h>
#include <jwt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/jraw.h"
#include "util/sbuf.h"

/* A store's record buckets (PROTOCOL.md, "ZooKeeper layout"): before a
 * deletion is marked, all of them are left. */
#define LAYOUT_BUCKETS_CLI 4096

#ifndef ZOOSYNC_VERSION
#define ZOOSYNC_VERSION "unknown"
#endif

typedef struct cli {
    const char *url;
    const char *token;
    CURL *curl;
    bool json;    /* --json: machine-readable output, no progress */
    bool machine; /* summaries as JSON: --json, or stdout is not a terminal */
    bool tty;     /* progress on stderr: a terminal and no --json */
} cli;

static void usage(FILE *f) {
    fprintf(f,
            "usage: zoosync [--url URL] [--token TOKEN] COMMAND ARGS...\n"
            "commands:\n"
            "  stores                                   list the stores\n"
            "  store NAME [--conflict cas|lww] [--max-value-bytes N] [--ttl SECONDS]\n"
            "                                           create a store, or change the fields given\n"
            "  drop NAME                                delete a store and all its records (with progress)\n"
            "  get STORE KEY                            read one record\n"
            "  put STORE KEY JSON [--if-match V|--create]  write one record\n"
            "  del STORE KEY [--if-match V]             delete one record\n"
            "  changes STORE [--since CURSOR] [--limit N] [--all]\n"
            "                                           read the changes feed (--all: every page)\n"
            "  watch STORE [--since now|CURSOR]         follow changes, one JSON line per change\n"
            "                                           (now: live ones only; default: the backlog too;\n"
            "                                           ends with status 1 when the store is deleted)\n"
            "  push STORE FILE                          send a push body (JSON; FILE - reads stdin)\n"
            "  import STORE FILE [--mode create|overwrite|merge] [--state F]\n"
            "                                           write records from JSON lines of {key, value}\n"
            "                                           or a JSON array (FILE - reads stdin), resumable\n"
            "  export STORE                             the store's config and records, JSON lines\n"
            "  restore STORE FILE [--state F]           an export into an empty or absent store\n"
            "  backup FILE                              every store (config and records) into FILE (- stdout)\n"
            "  restore --all FILE                       every store of a backup, idempotent: creates missing\n"
            "                                           stores, sets configs, writes missing records (never\n"
            "                                           overwrites one) and says what it did\n"
            "  stats STORE                              records, bytes, value sizes, config\n"
            "  keys STORE [--prefix P]                  the live keys, one a line\n"
            "  token --scope SC [--sub S] [--ttl SEC] --secret-file F\n"
            "                                           mint an HS256 development token\n"
            "options: --json (machine-readable summaries, no progress), --version\n"
            "environment: ZOOSYNC_URL (default http://127.0.0.1:8080), ZOOSYNC_TOKEN\n");
}

static size_t collect(char *p, size_t size, size_t n, void *ud) {
    sbuf_append(ud, p, size * n);
    return size * n;
}

/* Percent-encodes s for a path segment. */
static void pct(sbuf *b, const char *s) {
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || strchr("-._~", *p)) {
            sbuf_putc(b, (char)*p);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            sbuf_append(b, e, 3);
        }
    }
}

/* One request; the answer's body in out. Returns the HTTP status, or -1. */
static long request(cli *c, const char *method, const char *path, const char *body, const char *extra_header, sbuf *out) {
    sbuf url = SBUF_INIT;
    sbuf_puts(&url, c->url);
    sbuf_puts(&url, path);
    struct curl_slist *h = NULL;
    sbuf auth = SBUF_INIT;
    if (c->token) {
        sbuf_printf(&auth, "Authorization: Bearer %s", c->token);
        h = curl_slist_append(h, auth.buf);
    }
    if (body) h = curl_slist_append(h, "Content-Type: application/json");
    if (extra_header) h = curl_slist_append(h, extra_header);
    curl_easy_reset(c->curl);
    curl_easy_setopt(c->curl, CURLOPT_URL, url.buf);
    curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, out);
    if (body) curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body);
    CURLcode rc = curl_easy_perform(c->curl);
    long status = -1;
    if (rc == CURLE_OK) curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
    else fprintf(stderr, "zoosync: %s: %s\n", url.buf, curl_easy_strerror(rc));
    curl_slist_free_all(h);
    sbuf_free(&auth);
    sbuf_free(&url);
    return status;
}

/* Prints an answer: the body on stdout for 2xx, the error on stderr else. */
static int report(long status, sbuf *out) {
    if (status < 0) return 1;
    if (status >= 200 && status < 300) {
        if (out->len) printf("%s\n", out->buf);
        return 0;
    }
    json_t *j = out->len ? json_loadb(out->buf, out->len, 0, NULL) : NULL;
    const char *code = json_string_value(json_object_get(j, "error"));
    const char *msg = json_string_value(json_object_get(j, "message"));
    fprintf(stderr, "zoosync: %s: %s (HTTP %ld)\n", code ? code : "error", msg ? msg : (out->buf ? out->buf : ""), status);
    json_decref(j);
    return 1;
}

static int simple(cli *c, const char *method, sbuf *path, const char *body, const char *hdr) {
    sbuf out = SBUF_INIT;
    int rc = report(request(c, method, path->buf, body, hdr, &out), &out);
    sbuf_free(&out);
    sbuf_free(path);
    return rc;
}

static void store_path(sbuf *p, const char *store, const char *rest) {
    sbuf_puts(p, "/v1/stores/");
    pct(p, store);
    if (rest) sbuf_puts(p, rest);
}

/* Prints each element of the "changes" array of a JSON answer on its own
 * line, exactly as the gateway wrote it (a JSON library would reformat
 * numbers), and returns the answer's "cursor" (malloc'd) and "more". */
static char *print_changes(const char *text, size_t n, bool *more) {
    sbuf c = SBUF_INIT;
    jraw_err e;
    char *cursor = NULL;
    *more = false;
    if (jraw_compact(text, n, &c, &e) < 0 || c.buf[0] != '{') { sbuf_free(&c); return NULL; }
    const char *it = c.buf + 1;
    jraw_span k, v;
    while (jraw_next_member(&it, &k, &v)) {
        if (jraw_key_is(k, "changes") && v.p[0] == '[') {
            const char *jt = v.p + 1;
            jraw_span el;
            while (jraw_next_elem(&jt, &el)) printf("%.*s\n", (int)el.n, el.p);
        } else if (jraw_key_is(k, "cursor")) {
            sbuf s = SBUF_INIT;
            if (jraw_string(v, &s)) cursor = sbuf_steal(&s, NULL);
            sbuf_free(&s);
        } else if (jraw_key_is(k, "more")) {
            *more = v.n == 4 && memcmp(v.p, "true", 4) == 0;
        }
    }
    sbuf_free(&c);
    fflush(stdout);
    return cursor;
}

static char *read_all(const char *file) {
    FILE *f = strcmp(file, "-") == 0 ? stdin : fopen(file, "rb");
    if (!f) { perror(file); return NULL; }
    sbuf b = SBUF_INIT;
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) sbuf_append(&b, buf, n);
    if (f != stdin) fclose(f);
    return sbuf_steal(&b, NULL);
}

/* changes: one page, or every page with --all. */
static int cmd_changes(cli *c, const char *store, const char *since, const char *limit, int all) {
    char *cur = since ? strdup(since) : NULL;
    int rc = 0;
    for (;;) {
        sbuf p = SBUF_INIT, out = SBUF_INIT;
        store_path(&p, store, "/changes?");
        if (cur) sbuf_printf(&p, "since=%s&", cur);
        if (limit) sbuf_printf(&p, "limit=%s", limit);
        long status = request(c, "GET", p.buf, NULL, NULL, &out);
        sbuf_free(&p);
        if (status != 200 || !all) { rc = report(status, &out); sbuf_free(&out); break; }
        bool more;
        free(cur);
        cur = print_changes(out.buf, out.len, &more);
        sbuf_free(&out);
        if (!more || !cur) break;
    }
    if (all && rc == 0 && cur) fprintf(stderr, "cursor %s\n", cur);
    free(cur);
    return rc;
}

/* watch: Server-Sent Events, each change printed as one JSON line. */
typedef struct sse {
    sbuf line, data;
    bool store_deleted; /* the gateway ended the stream with ": store deleted" */
} sse;

static size_t on_sse(char *p, size_t size, size_t n, void *ud) {
    sse *s = ud;
    for (size_t i = 0; i < size * n; i++) {
        if (p[i] != '\n') { sbuf_putc(&s->line, p[i]); continue; }
        const char *l = s->line.buf ? s->line.buf : "";
        if (strncmp(l, "data: ", 6) == 0) {
            sbuf_puts(&s->data, l + 6);
        } else if (strcmp(l, ": store deleted") == 0) {
            s->store_deleted = true;
        } else if (*l == '\0' && s->data.len) { /* end of an event */
            if (strstr(s->data.buf, "\"cursor_expired\"")) fprintf(stderr, "zoosync: resync: cursor_expired\n");
            bool more;
            free(print_changes(s->data.buf, s->data.len, &more));
            sbuf_reset(&s->data);
        }
        sbuf_reset(&s->line);
    }
    return size * n;
}

static int get_store(cli *c, const char *store, sbuf *desc, bool *missing);
static jraw_span member(const char *obj, const char *name);

static int cmd_watch(cli *c, const char *store, const char *since) {
    sbuf p = SBUF_INIT, url = SBUF_INIT, auth = SBUF_INIT, desc = SBUF_INIT, now = SBUF_INIT;
    if (since && strcmp(since, "now") == 0) { /* the store's present position: live changes only */
        if (get_store(c, store, &desc, NULL)) { sbuf_free(&desc); return 1; }
        if (!jraw_string(member(desc.buf, "cursor"), &now) || !now.buf) { sbuf_free(&desc); return 1; }
        since = now.buf;
    }
    store_path(&p, store, "/events");
    if (since) sbuf_printf(&p, "?since=%s", since);
    sbuf_printf(&url, "%s%s", c->url, p.buf);
    struct curl_slist *h = curl_slist_append(NULL, "Accept: text/event-stream");
    if (c->token) {
        sbuf_printf(&auth, "Authorization: Bearer %s", c->token);
        h = curl_slist_append(h, auth.buf);
    }
    sse s = {SBUF_INIT, SBUF_INIT, false};
    curl_easy_reset(c->curl);
    curl_easy_setopt(c->curl, CURLOPT_URL, url.buf);
    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_sse);
    curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(c->curl, CURLOPT_FAILONERROR, 1L);
    CURLcode rc = curl_easy_perform(c->curl);
    if (rc != CURLE_OK) fprintf(stderr, "zoosync: %s: %s\n", url.buf, curl_easy_strerror(rc));
    if (rc == CURLE_OK && s.store_deleted) fprintf(stderr, "zoosync: store_not_found: %s was deleted\n", store);
    curl_slist_free_all(h);
    sbuf_free(&s.line);
    sbuf_free(&s.data);
    sbuf_free(&auth);
    sbuf_free(&url);
    sbuf_free(&p);
    sbuf_free(&desc);
    sbuf_free(&now);
    return rc == CURLE_OK && !s.store_deleted ? 0 : 1;
}

/* ---- progress and summaries ------------------------------------------------------ */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

typedef struct progress {
    bool on;          /* stderr is a terminal and no --json */
    const char *what; /* "imported", "exported", ... */
    long long done, total; /* total 0: unknown */
    long long bytes;
    double t0, last;
} progress;

static void progress_start(progress *p, const cli *c, const char *what, long long total) {
    *p = (progress){.on = c->tty, .what = what, .total = total, .t0 = now_s()};
}

static void human_bytes(char *out, size_t n, double b) {
    const char *u[] = {"B", "KB", "MB", "GB", "TB"};
    int i = 0;
    while (b >= 1000 && i < 4) { b /= 1000; i++; }
    snprintf(out, n, i ? "%.1f %s" : "%.0f %s", b, u[i]);
}

/* One line on stderr, redrawn at most 10 times a second (always when final). */
static void progress_show(progress *p, bool final) {
    if (!p->on) return;
    double t = now_s();
    if (!final && t - p->last < 0.1) return;
    p->last = t;
    double el = t - p->t0 > 1e-3 ? t - p->t0 : 1e-3;
    double rate = p->done / el;
    char bb[32];
    human_bytes(bb, sizeof bb, (double)p->bytes);
    fprintf(stderr, "\r\033[K%s %lld", p->what, p->done);
    if (p->total) fprintf(stderr, "/%lld", p->total);
    fprintf(stderr, " records  %s  %.0f records/s", bb, rate);
    if (p->total && !final && rate > 0) fprintf(stderr, "  ETA %.0fs", (p->total - p->done) / rate);
    if (final) fprintf(stderr, "  %.1fs\n", el);
    fflush(stderr);
}

/* ---- requests with retries --------------------------------------------------------- */

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {}
}

/* Like request(), but a network error, 429 or 503 is tried again (the same
 * body: a push keeps its ids, so a retry is applied exactly once), for up to
 * about a minute. */
static long request_retry(cli *c, const char *method, const char *path, const char *body, sbuf *out) {
    long status = -1;
    for (int attempt = 0; attempt < 60; attempt++) {
        sbuf_reset(out);
        status = request(c, method, path, body, NULL, out);
        if (status >= 0 && status != 429 && status != 503) return status;
        sleep_ms(attempt < 3 ? 200 : 1000);
    }
    return status;
}

/* The error of an answer on stderr (report() without printing a success). */
static void report_error(long status, sbuf *out) {
    if (status >= 0 && (status < 200 || status >= 300)) report(status, out);
}

/* The compact text of an answer's JSON body (for jraw_next_*), or false. */
static bool compact_body(const sbuf *out, sbuf *c) {
    jraw_err e;
    return out->len && jraw_compact(out->buf, out->len, c, &e) == 0;
}

static jraw_span member(const char *obj, const char *name) {
    jraw_span k, v = {NULL, 0};
    if (!obj || obj[0] != '{') return v;
    const char *it = obj + 1;
    while (jraw_next_member(&it, &k, &v))
        if (jraw_key_is(k, name)) return v;
    return (jraw_span){NULL, 0};
}

/* ---- reading a store: snapshot pages -------------------------------------------- */

typedef int (*scan_fn)(void *ud, jraw_span key, jraw_span value, long long version, bool deleted);

/* Every record of the store's snapshot (GET /changes without since, page
 * by page), live or tombstone, given to fn. 0, or 1 after an error. */
static int scan(cli *c, const char *store, scan_fn fn, void *ud) {
    char *cur = NULL;
    int rc = 0;
    for (;;) {
        sbuf p = SBUF_INIT, out = SBUF_INIT, cb = SBUF_INIT;
        store_path(&p, store, "/changes?limit=1000");
        if (cur) sbuf_printf(&p, "&since=%s", cur);
        long status = request_retry(c, "GET", p.buf, NULL, &out);
        sbuf_free(&p);
        if (status != 200 || !compact_body(&out, &cb)) {
            report_error(status == 200 ? 500 : status, &out);
            rc = 1;
        }
        bool more = false;
        if (!rc) {
            jraw_span ch = member(cb.buf, "changes"), cu = member(cb.buf, "cursor"), mo = member(cb.buf, "more");
            more = mo.p && mo.n == 4 && memcmp(mo.p, "true", 4) == 0;
            if (ch.p && ch.p[0] == '[') {
                const char *it = ch.p + 1;
                jraw_span el;
                while (!rc && jraw_next_elem(&it, &el)) {
                    sbuf one = SBUF_INIT;
                    sbuf_append(&one, el.p, el.n);
                    jraw_span k = member(one.buf, "key"), v = member(one.buf, "value"), ver = member(one.buf, "version"),
                              d = member(one.buf, "deleted");
                    long long version = 0;
                    if (ver.p) jraw_int(ver, &version);
                    bool del = d.p && d.n == 4 && memcmp(d.p, "true", 4) == 0;
                    if (k.p && fn(ud, k, v, version, del || !v.p) != 0) rc = 1;
                    sbuf_free(&one);
                }
            }
            free(cur);
            cur = NULL;
            sbuf s = SBUF_INIT;
            if (cu.p && jraw_string(cu, &s)) cur = sbuf_steal(&s, NULL);
            sbuf_free(&s);
        }
        sbuf_free(&out);
        sbuf_free(&cb);
        if (rc || !more || !cur) break;
    }
    free(cur);
    return rc;
}

/* GET /v1/stores/{s}: 0 with the compact description in desc, 1 (not
 * found: *missing set, nothing printed) or 1 after printing the error. */
static int get_store(cli *c, const char *store, sbuf *desc, bool *missing) {
    sbuf p = SBUF_INIT, out = SBUF_INIT;
    store_path(&p, store, NULL);
    long status = request_retry(c, "GET", p.buf, NULL, &out);
    sbuf_free(&p);
    int rc = 0;
    if (missing) *missing = false;
    if (status == 404 && missing) {
        *missing = true;
        rc = 1;
    } else if (status != 200 || !compact_body(&out, desc)) {
        report_error(status == 200 ? 500 : status, &out);
        rc = 1;
    }
    sbuf_free(&out);
    return rc;
}

/* The configuration part of a store description (what PUT /v1/stores/{s}
 * takes): every member but name, records and cursor. */
static void store_config(const char *desc, sbuf *cfg) {
    sbuf_putc(cfg, '{');
    const char *it = desc + 1;
    jraw_span k, v;
    bool first = true;
    while (jraw_next_member(&it, &k, &v)) {
        if (jraw_key_is(k, "name") || jraw_key_is(k, "records") || jraw_key_is(k, "cursor")) continue;
        if (!first) sbuf_putc(cfg, ',');
        sbuf_append(cfg, k.p, k.n);
        sbuf_putc(cfg, ':');
        sbuf_append(cfg, v.p, v.n);
        first = false;
    }
    sbuf_putc(cfg, '}');
}

/* ---- export, stats, keys ------------------------------------------------------------ */

typedef struct export_ctx { progress pg; FILE *out; } export_ctx;

static int export_one(void *ud, jraw_span key, jraw_span value, long long version, bool deleted) {
    export_ctx *x = ud;
    if (deleted) return 0;
    fprintf(x->out, "{\"key\":%.*s,\"value\":%.*s,\"version\":%lld}\n", (int)key.n, key.p, (int)value.n, value.p, version);
    x->pg.done++;
    x->pg.bytes += (long long)(key.n + value.n);
    progress_show(&x->pg, false);
    return ferror(x->out) ? -1 : 0;
}

/* One store's export section on out (header line, then its records),
 * counted in pg. 0; 1 after printing an error; 2 when the store is gone. */
static int export_store(cli *c, const char *store, FILE *out, progress *pg) {
    sbuf desc = SBUF_INIT, cfg = SBUF_INIT;
    bool missing = false;
    if (get_store(c, store, &desc, &missing)) { sbuf_free(&desc); return missing ? 2 : 1; }
    store_config(desc.buf, &cfg);
    jraw_span n = member(desc.buf, "name"), r = member(desc.buf, "records"), cu = member(desc.buf, "cursor");
    fprintf(out, "{\"zoosync\":\"export\",\"format\":1,\"store\":%.*s,\"config\":%s,\"records\":%.*s,\"cursor\":%.*s}\n",
            (int)n.n, n.p, cfg.buf, (int)r.n, r.p, (int)cu.n, cu.p);
    export_ctx x = {.pg = *pg, .out = out};
    int rc = scan(c, store, export_one, &x);
    *pg = x.pg;
    sbuf_free(&desc);
    sbuf_free(&cfg);
    return rc;
}

/* export: a header line {"zoosync":"export","format":1,"store","config",...}
 * then one {"key","value","version"} line per live record. */
static int cmd_export(cli *c, const char *store) {
    sbuf desc = SBUF_INIT, cfg = SBUF_INIT;
    if (get_store(c, store, &desc, NULL)) { sbuf_free(&desc); return 1; }
    store_config(desc.buf, &cfg);
    jraw_span n = member(desc.buf, "name"), r = member(desc.buf, "records"), cu = member(desc.buf, "cursor");
    printf("{\"zoosync\":\"export\",\"format\":1,\"store\":%.*s,\"config\":%s,\"records\":%.*s,\"cursor\":%.*s}\n",
           (int)n.n, n.p, cfg.buf, (int)r.n, r.p, (int)cu.n, cu.p);
    long long total = 0;
    jraw_int(r, &total);
    export_ctx x = {.out = stdout};
    progress_start(&x.pg, c, "exported", total);
    int rc = scan(c, store, export_one, &x);
    if (fflush(stdout) != 0 || ferror(stdout)) { perror("zoosync: stdout"); rc = 1; }
    progress_show(&x.pg, true);
    if (rc == 0 && c->json)
        fprintf(stderr, "{\"store\":%.*s,\"exported\":%lld,\"bytes\":%lld,\"seconds\":%.3f}\n", (int)n.n, n.p, x.pg.done,
                x.pg.bytes, now_s() - x.pg.t0);
    sbuf_free(&desc);
    sbuf_free(&cfg);
    return rc;
}

typedef struct stats_ctx { long long live, kbytes, vbytes, vmax; } stats_ctx;

static int stats_one(void *ud, jraw_span key, jraw_span value, long long version, bool deleted) {
    stats_ctx *s = ud;
    (void)version;
    sbuf k = SBUF_INIT;
    jraw_string(key, &k);
    if (deleted) { sbuf_free(&k); return 0; } /* (a snapshot has none but foreign values) */
    s->live++;
    s->kbytes += (long long)k.len;
    s->vbytes += (long long)value.n;
    if ((long long)value.n > s->vmax) s->vmax = (long long)value.n;
    sbuf_free(&k);
    return 0;
}

/* stats: the description and counts from a full read of the snapshot. Bytes
 * are as the quotas count them: key (UTF-8) + compact value. */
static int cmd_stats(cli *c, const char *store) {
    sbuf desc = SBUF_INIT, cfg = SBUF_INIT;
    if (get_store(c, store, &desc, NULL)) { sbuf_free(&desc); return 1; }
    stats_ctx s = {0};
    double t0 = now_s();
    int rc = scan(c, store, stats_one, &s);
    if (rc == 0) {
        store_config(desc.buf, &cfg);
        jraw_span n = member(desc.buf, "name"), cu = member(desc.buf, "cursor");
        if (c->machine) {
            printf("{\"store\":%.*s,\"records\":%lld,\"keyBytes\":%lld,\"valueBytes\":%lld,"
                   "\"bytes\":%lld,\"largestValueBytes\":%lld,\"cursor\":%.*s,\"config\":%s,\"seconds\":%.3f}\n",
                   (int)n.n, n.p, s.live, s.kbytes, s.vbytes, s.kbytes + s.vbytes, s.vmax, (int)cu.n, cu.p,
                   cfg.buf, now_s() - t0);
        } else {
            char b1[32], b2[32], b3[32];
            human_bytes(b1, sizeof b1, (double)(s.kbytes + s.vbytes));
            human_bytes(b2, sizeof b2, s.live ? (double)s.vbytes / (double)s.live : 0);
            human_bytes(b3, sizeof b3, (double)s.vmax);
            printf("store       %.*s\nrecords     %lld\nbytes       %s (keys %lld, values %lld)\n"
                   "value size  average %s, largest %s\ncursor      %.*s\nconfig      %s\n",
                   (int)n.n - 2, n.p + 1, s.live, b1, s.kbytes, s.vbytes, b2, b3, (int)cu.n - 2, cu.p + 1, cfg.buf);
        }
    }
    sbuf_free(&desc);
    sbuf_free(&cfg);
    return rc;
}

typedef struct keys_ctx { const char *prefix; bool json; } keys_ctx;

static int keys_one(void *ud, jraw_span key, jraw_span value, long long version, bool deleted) {
    keys_ctx *x = ud;
    (void)value, (void)version;
    if (deleted) return 0;
    sbuf k = SBUF_INIT;
    jraw_string(key, &k);
    if (!x->prefix || (k.len >= strlen(x->prefix) && memcmp(k.buf, x->prefix, strlen(x->prefix)) == 0)) {
        if (x->json) printf("%.*s\n", (int)key.n, key.p);
        else { fwrite(k.buf ? k.buf : "", 1, k.len, stdout); putchar('\n'); }
    }
    sbuf_free(&k);
    return ferror(stdout) ? -1 : 0;
}

/* keys: the live keys in feed order; --json prints each as a JSON string
 * (a key may hold a newline). */
static int cmd_keys(cli *c, const char *store, const char *prefix) {
    keys_ctx x = {prefix, c->json};
    int rc = scan(c, store, keys_one, &x);
    if (fflush(stdout) != 0) rc = 1;
    return rc;
}

/* ---- import and restore ------------------------------------------------------------- */

typedef struct rec {
    size_t ko, kn, vo, vn; /* key and value: offsets in input.text (compact) */
    bool del;
    long src;              /* line (JSON lines) or element (array), from 1 */
} rec;

typedef struct input {
    sbuf text;
    rec *r;
    size_t n, cap;
    size_t ho, hn; /* header line (an export's), hn 0 if none */
    size_t bytes;  /* of the input as read */
    bool array;
} input;

static void input_free(input *in) {
    sbuf_free(&in->text);
    free(in->r);
}

/* One element (compact, at text[o..o+n)): a record, or an export header. */
static int input_elem(input *in, size_t o, size_t n, long src) {
    const char *it = in->text.buf + o + 1;
    const char *what = in->array ? "element" : "line";
    if (in->text.buf[o] != '{') {
        fprintf(stderr, "zoosync: %s %ld: expected an object {\"key\": ..., \"value\": ...}\n", what, src);
        return -1;
    }
    jraw_span k, v, key = {0}, value = {0};
    bool del = false, header = false;
    while (jraw_next_member(&it, &k, &v)) {
        if (jraw_key_is(k, "key")) key = v;
        else if (jraw_key_is(k, "value")) value = v;
        else if (jraw_key_is(k, "deleted")) del = v.n == 4 && memcmp(v.p, "true", 4) == 0;
        else if (jraw_key_is(k, "zoosync")) header = true;
        else if (jraw_key_is(k, "version") || jraw_key_is(k, "cursor")) continue; /* as exported or fed */
        else if (!header) {
            fprintf(stderr, "zoosync: %s %ld: unknown field %.*s (expected key, value, version, cursor, deleted)\n", what,
                    src, (int)k.n, k.p);
            return -1;
        }
    }
    if (header) {
        if (in->n || in->hn) {
            fprintf(stderr, "zoosync: %s %ld: an export header can only come first\n", what, src);
            return -1;
        }
        in->ho = o, in->hn = n;
        return 0;
    }
    if (!key.p || key.p[0] != '"') {
        fprintf(stderr, "zoosync: %s %ld: \"key\" must be a string\n", what, src);
        return -1;
    }
    if (!del && !value.p) {
        fprintf(stderr, "zoosync: %s %ld: \"value\" is missing\n", what, src);
        return -1;
    }
    if (in->n == in->cap) {
        in->cap = in->cap ? 2 * in->cap : 1024;
        in->r = realloc(in->r, in->cap * sizeof *in->r);
        if (!in->r) { fprintf(stderr, "zoosync: out of memory\n"); exit(1); }
    }
    const char *base = in->text.buf;
    in->r[in->n++] = (rec){(size_t)(key.p - base), key.n, value.p ? (size_t)(value.p - base) : 0, value.n, del, src};
    return 0;
}

/* Reads FILE (- for stdin): a JSON array of records, or JSON lines, an
 * export's header line allowed first. Values are kept as written. */
static int input_parse(const char *file, char *all, input *in);

static int input_read(const char *file, input *in) {
    *in = (input){.text = SBUF_INIT};
    char *all = read_all(file);
    if (!all) return -1;
    return input_parse(file, all, in);
}

/* input_read of text already read (all: malloc'd, freed here; file names
 * it in errors). */
static int input_parse(const char *file, char *all, input *in) {
    *in = (input){.text = SBUF_INIT};
    size_t len = strlen(all);
    in->bytes = len;
    const char *s = all;
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') s++;
    jraw_err e;
    int rc = 0;
    if (*s == '[') {
        in->array = true;
        if (jraw_compact(all, len, &in->text, &e) < 0) {
            fprintf(stderr, "zoosync: %s: not valid JSON: %s (line %d, column %d)\n", file, e.text, e.line, e.column);
            rc = -1;
        } else {
            const char *it = in->text.buf + 1;
            jraw_span el;
            long i = 0;
            while (rc == 0 && jraw_next_elem(&it, &el)) rc = input_elem(in, (size_t)(el.p - in->text.buf), el.n, ++i);
        }
    } else {
        /* compact every line first (offsets stay valid as the text grows) */
        typedef struct { size_t o, n; long line; } span;
        span *sp = NULL;
        size_t ns = 0, cap = 0;
        long line = 0;
        for (const char *p = all; rc == 0 && *p;) {
            const char *nl = strchr(p, '\n');
            size_t n = nl ? (size_t)(nl - p) : strlen(p);
            line++;
            size_t j = 0;
            while (j < n && (p[j] == ' ' || p[j] == '\t' || p[j] == '\r')) j++;
            if (j < n) {
                size_t o = in->text.len;
                if (jraw_compact(p, n, &in->text, &e) < 0) {
                    fprintf(stderr, "zoosync: %s: line %ld: not valid JSON: %s (column %d)\n", file, line, e.text, e.column);
                    rc = -1;
                    break;
                }
                if (ns == cap) sp = realloc(sp, (cap = cap ? 2 * cap : 1024) * sizeof *sp);
                sp[ns++] = (span){o, in->text.len - o, line};
                sbuf_putc(&in->text, '\n');
            }
            p = nl ? nl + 1 : p + n;
        }
        for (size_t i = 0; rc == 0 && i < ns; i++) rc = input_elem(in, sp[i].o, sp[i].n, sp[i].line);
        free(sp);
    }
    if (rc == 0 && sbuf_failed(&in->text)) { fprintf(stderr, "zoosync: out of memory\n"); rc = -1; }
    free(all);
    return rc;
}

/* What a store holds before an import (create and merge modes). */
typedef struct existing { long long version; char *value; } existing;

static int existing_one(void *ud, jraw_span key, jraw_span value, long long version, bool deleted) {
    GHashTable *h = ud;
    if (deleted) return 0;
    existing *x = g_new(existing, 1);
    x->version = version;
    x->value = g_strndup(value.p, value.n);
    g_hash_table_insert(h, g_strndup(key.p, key.n), x);
    return 0;
}

static void existing_free(void *p) {
    existing *x = p;
    g_free(x->value);
    g_free(x);
}

/* merge: the existing object's members the file's object does not have,
 * then the file's (objects only; both compact). */
static void merge_objects(const char *old, jraw_span nv, sbuf *out) {
    sbuf_putc(out, '{');
    bool first = true;
    const char *it = old + 1;
    jraw_span k, v;
    sbuf nvs = SBUF_INIT;
    sbuf_append(&nvs, nv.p, nv.n);
    while (jraw_next_member(&it, &k, &v)) {
        bool shadowed = false;
        const char *jt = nvs.buf + 1;
        jraw_span k2, v2;
        while (!shadowed && jraw_next_member(&jt, &k2, &v2)) shadowed = k2.n == k.n && memcmp(k2.p, k.p, k.n) == 0;
        if (shadowed) continue;
        if (!first) sbuf_putc(out, ',');
        sbuf_append(out, k.p, k.n);
        sbuf_putc(out, ':');
        sbuf_append(out, v.p, v.n);
        first = false;
    }
    if (nv.n > 2) {
        if (!first) sbuf_putc(out, ',');
        sbuf_append(out, nv.p + 1, nv.n - 2);
    }
    sbuf_putc(out, '}');
    sbuf_free(&nvs);
}

enum { MODE_CREATE, MODE_OVERWRITE, MODE_MERGE };
static const char *const mode_names[] = {"create", "overwrite", "merge"};

/* The state of an import in progress: its client id (so that a resumed
 * import's pushes are the same ids, answered "duplicate" where they were
 * applied), the records done and the counts so far. */
typedef struct import_state {
    char client[64];
    long long done, applied, duplicate, conflicts, rejected, deleted;
    size_t records, bytes; /* of the input: a resumed import must read the same */
    char store[512];
    int mode;
} import_state;

static bool state_load(const char *path, import_state *st) {
    char *t = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    fclose(f);
    t = read_all(path);
    json_t *j = t ? json_loads(t, 0, NULL) : NULL;
    free(t);
    const char *cl = json_string_value(json_object_get(j, "client")), *s = json_string_value(json_object_get(j, "store")),
               *m = json_string_value(json_object_get(j, "mode"));
    if (!cl || !s || !m) { json_decref(j); return false; }
    snprintf(st->client, sizeof st->client, "%s", cl);
    snprintf(st->store, sizeof st->store, "%s", s);
    st->mode = strcmp(m, "create") == 0 ? MODE_CREATE : strcmp(m, "merge") == 0 ? MODE_MERGE : MODE_OVERWRITE;
#define G(f) st->f = json_integer_value(json_object_get(j, #f))
    G(done); G(applied); G(duplicate); G(conflicts); G(rejected); G(deleted); G(records); G(bytes);
#undef G
    json_decref(j);
    return true;
}

/* Written to a temporary file, then renamed: never half-written. */
static int state_save(const char *path, const import_state *st) {
    json_t *j = json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "client", st->client, "store", st->store, "mode",
                          mode_names[st->mode], "done", (json_int_t)st->done, "applied", (json_int_t)st->applied,
                          "duplicate", (json_int_t)st->duplicate, "conflicts", (json_int_t)st->conflicts, "rejected",
                          (json_int_t)st->rejected, "deleted", (json_int_t)st->deleted, "records",
                          (json_int_t)st->records, "bytes", (json_int_t)st->bytes);
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int rc = json_dump_file(j, tmp, JSON_COMPACT);
    json_decref(j);
    if (rc == 0 && rename(tmp, path) < 0) rc = -1;
    if (rc < 0) fprintf(stderr, "zoosync: cannot write the state file %s: %s\n", path, strerror(errno));
    return rc;
}

typedef struct import_job {
    cli *c;
    const char *store;
    input *in;
    int mode;
    bool lww;
    GHashTable *have; /* key (compact JSON string) -> existing; NULL: not needed */
    import_state st;
    const char *state_path;
    GPtrArray *conflict_keys, *reasons; /* the first few conflicting keys; rejection reasons */
    progress pg;
    const char *what;   /* progress label: "imported" unless set */
    bool quiet;         /* restore --all: no summary (the caller prints its own) */
    bool same_ok;       /* restore --all: an existing key holding the same value is "already there" */
    long long same;     /* such keys */
    long long matched;  /* input keys found in have */
} import_job;

static void note(GPtrArray *a, jraw_span s) {
    if (a->len < 10) g_ptr_array_add(a, g_strndup(s.p, s.n));
}

/* Pushes records [from, to) as one request with ids from+1..to (some may be
 * skipped: create mode in an lww store, where base is not checked). Returns
 * 0, or 1 after printing the error; *too_big on 413 body_too_large. */
static int import_chunk(import_job *j, size_t from, size_t to, bool *too_big) {
    input *in = j->in;
    sbuf b = SBUF_INIT, out = SBUF_INIT, cb = SBUF_INIT, merged = SBUF_INIT;
    sbuf_printf(&b, "{\"client\":\"%s\",\"mutations\":[", j->st.client);
    bool first = true;
    long long skipped = 0;
    *too_big = false;
    for (size_t i = from; i < to; i++) {
        rec *r = &in->r[i];
        const char *key = in->text.buf + r->ko, *val = in->text.buf + r->vo;
        existing *ex = NULL;
        if (j->have) {
            char *k = g_strndup(key, r->kn);
            ex = g_hash_table_lookup(j->have, k);
            g_free(k);
        }
        if (ex && !r->del) j->matched++;
        if (j->same_ok && ex && !r->del && strlen(ex->value) == r->vn && memcmp(ex->value, val, r->vn) == 0) {
            j->same++; /* restored before: nothing to write */
            skipped++;
            continue;
        }
        if (j->mode == MODE_CREATE && ex && j->lww && !r->del) { /* the gateway cannot tell: judged here */
            j->st.conflicts++;
            note(j->conflict_keys, (jraw_span){key, r->kn});
            skipped++;
            continue;
        }
        if (!first) sbuf_putc(&b, ',');
        first = false;
        sbuf_printf(&b, "{\"id\":%zu,\"key\":%.*s,\"op\":\"%s\"", i + 1, (int)r->kn, key, r->del ? "delete" : "put");
        if (!r->del) {
            sbuf_reset(&merged);
            if (j->mode == MODE_MERGE && ex && ex->value[0] == '{' && val[0] == '{') {
                merge_objects(ex->value, (jraw_span){val, r->vn}, &merged);
                sbuf_printf(&b, ",\"value\":%.*s", (int)merged.len, merged.buf);
            } else {
                sbuf_printf(&b, ",\"value\":%.*s", (int)r->vn, val);
            }
        }
        if (j->mode == MODE_CREATE && !r->del) sbuf_puts(&b, ",\"base\":0");
        else if (j->mode == MODE_MERGE && !r->del) sbuf_printf(&b, ",\"base\":%lld", ex ? ex->version : 0);
        sbuf_putc(&b, '}');
    }
    sbuf_puts(&b, "]}");
    sbuf p = SBUF_INIT;
    store_path(&p, j->store, "/push");
    int rc = 0;
    if (first) goto done; /* nothing to send */
    long status = request_retry(j->c, "POST", p.buf, b.buf, &out);
    if (status == 413 && strstr(out.buf ? out.buf : "", "body_too_large")) {
        *too_big = true;
        rc = 1;
        goto done;
    }
    if (status != 200 || !compact_body(&out, &cb)) {
        report_error(status == 200 ? 500 : status, &out);
        rc = 1;
        goto done;
    }
    jraw_span res = member(cb.buf, "results");
    const char *it = res.p ? res.p + 1 : "]";
    jraw_span el;
    while (jraw_next_elem(&it, &el)) {
        sbuf one = SBUF_INIT;
        sbuf_append(&one, el.p, el.n);
        jraw_span st = member(one.buf, "status"), id = member(one.buf, "id");
        long long n = 0;
        jraw_int(id, &n);
        rec *r = n >= 1 && (size_t)n <= in->n ? &in->r[n - 1] : NULL;
        if (jraw_key_is(st, "applied")) {
            if (r && r->del) j->st.deleted++;
            else j->st.applied++;
        } else if (jraw_key_is(st, "duplicate")) {
            j->st.duplicate++;
        } else if (jraw_key_is(st, "conflict")) {
            j->st.conflicts++;
            if (r) note(j->conflict_keys, (jraw_span){in->text.buf + r->ko, r->kn});
        } else {
            j->st.rejected++;
            jraw_span why = member(one.buf, "reason");
            if (why.p && j->reasons->len < 10) {
                char *s = g_strdup_printf("%s: %.*s", r ? "" : "?", (int)why.n, why.p);
                if (r) { g_free(s); s = g_strdup_printf("%.*s: %.*s", (int)r->kn, in->text.buf + r->ko, (int)why.n, why.p); }
                g_ptr_array_add(j->reasons, s);
            }
        }
        sbuf_free(&one);
    }
done:
    (void)skipped;
    sbuf_free(&p);
    sbuf_free(&b);
    sbuf_free(&out);
    sbuf_free(&cb);
    sbuf_free(&merged);
    return rc;
}

static void print_list_json(GPtrArray *a, bool raw_json) {
    putchar('[');
    for (guint i = 0; i < a->len; i++) {
        if (i) putchar(',');
        if (raw_json) fputs(a->pdata[i], stdout);
        else {
            sbuf s = SBUF_INIT;
            sbuf_json_str(&s, a->pdata[i], strlen(a->pdata[i]));
            fputs(s.buf, stdout);
            sbuf_free(&s);
        }
    }
    putchar(']');
}

/* Chunks of at most 1,000 records and about chunk_bytes of body. */
#define CHUNK_RECORDS 1000
#define CHUNK_BYTES (1024 * 1024)

static int import_run(import_job *j, bool resumed) {
    input *in = j->in;
    progress_start(&j->pg, j->c, j->what ? j->what : "imported", (long long)in->n);
    j->pg.done = j->st.done;
    j->conflict_keys = g_ptr_array_new_with_free_func(g_free);
    j->reasons = g_ptr_array_new_with_free_func(g_free);
    int rc = 0;
    size_t i = (size_t)j->st.done, limit = CHUNK_RECORDS;
    while (rc == 0 && i < in->n) {
        size_t end = i, bytes = 0;
        while (end < in->n && end - i < limit && (end == i || bytes + in->r[end].kn + in->r[end].vn + 64 <= CHUNK_BYTES))
            bytes += in->r[end].kn + in->r[end].vn + 64, end++;
        bool too_big;
        rc = import_chunk(j, i, end, &too_big);
        if (rc && too_big && end - i > 1) { limit = (end - i) / 2; rc = 0; continue; }
        if (rc) break;
        for (size_t k = i; k < end; k++) j->pg.bytes += (long long)(in->r[k].kn + in->r[k].vn);
        j->st.done = (long long)end;
        j->pg.done = (long long)end;
        if (j->state_path && state_save(j->state_path, &j->st) < 0) rc = 1;
        progress_show(&j->pg, false);
        i = end;
        if (getenv("ZOOSYNC_IMPORT_PAUSE_MS")) sleep_ms(atol(getenv("ZOOSYNC_IMPORT_PAUSE_MS"))); /* tests: time to interrupt */
    }
    progress_show(&j->pg, true);
    import_state *s = &j->st;
    if (rc == 0 && j->state_path) unlink(j->state_path);
    if (j->quiet) {
    } else if (j->c->machine) {
        printf("{\"store\":");
        sbuf sn = SBUF_INIT;
        sbuf_json_str(&sn, j->store, strlen(j->store));
        printf("%s,\"mode\":\"%s\",\"records\":%zu,\"done\":%lld,\"applied\":%lld,\"deleted\":%lld,\"duplicate\":%lld,"
               "\"conflicts\":%lld,\"rejected\":%lld,\"resumed\":%s,\"complete\":%s,\"client\":\"%s\",\"conflictKeys\":",
               sn.buf, mode_names[j->mode], in->n, s->done, s->applied, s->deleted, s->duplicate, s->conflicts, s->rejected,
               resumed ? "true" : "false", rc == 0 ? "true" : "false", s->client);
        sbuf_free(&sn);
        print_list_json(j->conflict_keys, true);
        printf(",\"rejections\":");
        print_list_json(j->reasons, false);
        printf("}\n");
    } else {
        printf("%s: %lld of %zu records: %lld written, %lld deleted, %lld already there (a resumed import), %lld conflicts, "
               "%lld rejected\n",
               j->store, s->done, in->n, s->applied, s->deleted, s->duplicate, s->conflicts, s->rejected);
        if (s->conflicts) {
            printf("conflicts: %s", j->mode == MODE_CREATE ? "the key already existed (--mode overwrite or merge writes it)"
                                                         : "the record changed during the import (run it again to retry)");
            printf("; %s", j->conflict_keys->len < s->conflicts ? "the first ones" : "keys");
            for (guint k = 0; k < j->conflict_keys->len; k++) printf("%s%s", k ? ", " : ": ", (char *)j->conflict_keys->pdata[k]);
            if ((long long)j->conflict_keys->len < s->conflicts) printf(" and %lld more", s->conflicts - j->conflict_keys->len);
            putchar('\n');
        }
        for (guint k = 0; k < j->reasons->len; k++) printf("rejected %s\n", (char *)j->reasons->pdata[k]);
        if (rc && j->state_path) printf("interrupted: run the same command again to resume (state in %s)\n", j->state_path);
    }
    if (!j->quiet) {
        g_ptr_array_free(j->conflict_keys, TRUE);
        g_ptr_array_free(j->reasons, TRUE);
        j->conflict_keys = j->reasons = NULL;
    }
    if (rc) return 1;
    return s->conflicts || s->rejected ? 3 : 0;
}

static void random_client(char *out, size_t n) {
    unsigned char r[8] = {0};
    int fd = open("/dev/urandom", O_RDONLY);
    if (fd < 0 || read(fd, r, sizeof r) != (ssize_t)sizeof r) {
        unsigned long long t = (unsigned long long)time(NULL) ^ ((unsigned long long)getpid() << 20);
        memcpy(r, &t, sizeof r);
    }
    if (fd >= 0) close(fd);
    snprintf(out, n, "import-%02x%02x%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]);
}

/* import and restore. restore: an export (header required) into an absent
 * or empty store, its config first, records in create mode. */
/* PUT /v1/stores/STORE with the configuration cfg (an export's or a
 * backup's; none: {}). 0, or 1 after reporting the error. */
static int put_store_config(cli *c, const char *store, jraw_span cfg) {
    sbuf p = SBUF_INIT, out = SBUF_INIT, body = SBUF_INIT;
    sbuf_append(&body, cfg.p ? cfg.p : "{}", cfg.p ? cfg.n : 2);
    store_path(&p, store, NULL);
    long status = request_retry(c, "PUT", p.buf, body.buf, &out);
    int rc = 0;
    if (status != 200 && status != 201) { report_error(status, &out); rc = 1; }
    sbuf_free(&p);
    sbuf_free(&out);
    sbuf_free(&body);
    return rc;
}

static int cmd_import(cli *c, const char *store, const char *file, const char *mode_s, const char *state_opt, bool restore) {
    int mode = restore ? MODE_CREATE : MODE_OVERWRITE;
    if (mode_s) {
        for (mode = 0; mode < 3 && strcmp(mode_s, mode_names[mode]) != 0; mode++) {}
        if (mode == 3 || restore) {
            fprintf(stderr, "zoosync: --mode: %s\n", restore ? "restore writes into an empty store: no mode" : "create, overwrite or merge");
            return 2;
        }
    }
    char state_path[4096];
    if (state_opt) snprintf(state_path, sizeof state_path, "%s", state_opt);
    else if (strcmp(file, "-") != 0) snprintf(state_path, sizeof state_path, "%s.zoosync-state", file);
    else state_path[0] = '\0';
    input in;
    if (input_read(file, &in) < 0) { input_free(&in); return 1; }
    import_job j = {.c = c, .store = store, .in = &in, .mode = mode, .state_path = state_path[0] ? state_path : NULL};
    bool resumed = j.state_path && state_load(j.state_path, &j.st);
    int rc = 0;
    if (resumed && (strcmp(j.st.store, store) != 0 || j.st.records != in.n || j.st.bytes != in.bytes || j.st.mode != mode)) {
        fprintf(stderr,
                "zoosync: %s is the state of another import (store %s, %zu records, mode %s): remove it to start again\n",
                j.state_path, j.st.store, j.st.records, mode_names[j.st.mode]);
        rc = 2;
        goto out;
    }
    if (!resumed) {
        random_client(j.st.client, sizeof j.st.client);
        snprintf(j.st.store, sizeof j.st.store, "%s", store);
        j.st.mode = mode, j.st.records = in.n, j.st.bytes = in.bytes;
    } else if (c->tty) {
        fprintf(stderr, "resuming from record %lld of %zu (%s)\n", j.st.done, in.n, j.state_path);
    }
    sbuf desc = SBUF_INIT;
    bool missing = false;
    if (restore && !in.hn) {
        fprintf(stderr, "zoosync: %s: not an export (no header line {\"zoosync\":\"export\",...})\n", file);
        rc = 1;
    } else if (restore && !resumed) {
        if (get_store(c, store, &desc, &missing) && !missing) rc = 1;
        long long recs = 0;
        if (!rc && !missing) jraw_int(member(desc.buf, "records"), &recs);
        if (!rc && recs > 0) {
            fprintf(stderr, "zoosync: store %s holds %lld records: restore writes into an empty or absent store\n", store, recs);
            rc = 1;
        }
        if (!rc) rc = put_store_config(c, store, member(in.text.buf + in.ho, "config")); /* the export's config */
        sbuf_reset(&desc);
    }
    if (!rc && get_store(c, store, &desc, NULL)) rc = 1;
    if (!rc) {
        jraw_span cf = member(desc.buf, "conflict");
        j.lww = cf.p && cf.n == 5 && memcmp(cf.p, "\"lww\"", 5) == 0;
        long long recs = 0;
        jraw_int(member(desc.buf, "records"), &recs);
        if (mode != MODE_OVERWRITE && recs > 0) {
            j.have = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, existing_free);
            if (scan(c, store, existing_one, j.have)) rc = 1;
        }
    }
    sbuf_free(&desc);
    if (!rc && !resumed && j.state_path && state_save(j.state_path, &j.st) < 0) rc = 1;
    if (!rc) rc = import_run(&j, resumed);
    if (j.have) g_hash_table_destroy(j.have);
out:
    input_free(&in);
    return rc;
}

/* ---- backup and restore --all ------------------------------------------------------------ */

/* backup FILE (- for stdout): a header line {"zoosync":"backup","format":1,
 * "stores":N,"created"}, then each store's export (its header line with the
 * config, then its records), the stores in name order. Each store is read
 * as its own snapshot (not one instant across stores). A file is written
 * as FILE.tmp and renamed once complete. */
static int cmd_backup(cli *c, const char *file) {
    sbuf out = SBUF_INIT, cb = SBUF_INIT;
    long status = request_retry(c, "GET", "/v1/stores", NULL, &out);
    if (status != 200 || !compact_body(&out, &cb)) {
        report_error(status == 200 ? 500 : status, &out);
        sbuf_free(&out);
        return 1;
    }
    sbuf_free(&out);
    GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
    long long total = 0;
    jraw_span st = member(cb.buf, "stores");
    const char *it = st.p && st.p[0] == '[' ? st.p + 1 : "]";
    jraw_span el;
    while (jraw_next_elem(&it, &el)) {
        sbuf one = SBUF_INIT, name = SBUF_INIT;
        sbuf_append(&one, el.p, el.n);
        long long recs = 0;
        if (jraw_string(member(one.buf, "name"), &name) && name.buf) g_ptr_array_add(names, sbuf_steal(&name, NULL));
        if (jraw_int(member(one.buf, "records"), &recs)) total += recs;
        sbuf_free(&one);
        sbuf_free(&name);
    }
    sbuf_free(&cb);
    bool to_stdout = strcmp(file, "-") == 0;
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", file);
    FILE *f = to_stdout ? stdout : fopen(tmp, "wb");
    if (!f) {
        fprintf(stderr, "zoosync: %s: %s\n", tmp, strerror(errno));
        g_ptr_array_free(names, TRUE);
        return 1;
    }
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    fprintf(f, "{\"zoosync\":\"backup\",\"format\":1,\"stores\":%u,\"created\":\"%s\"}\n", names->len, when);
    progress pg;
    progress_start(&pg, c, "backed up", total);
    int rc = 0;
    unsigned stores = 0;
    for (guint i = 0; i < names->len && rc == 0; i++) {
        int r = export_store(c, names->pdata[i], f, &pg);
        if (r == 2) { /* deleted since the listing */
            if (c->tty) fprintf(stderr, "\r\033[Kstore %s: deleted meanwhile, skipped\n", (char *)names->pdata[i]);
            continue;
        }
        if (r) rc = 1;
        else stores++;
    }
    if (fflush(f) != 0 || ferror(f)) { fprintf(stderr, "zoosync: %s: %s\n", to_stdout ? "stdout" : tmp, strerror(errno)); rc = 1; }
    if (!to_stdout) {
        if (fsync(fileno(f)) != 0 && rc == 0) { fprintf(stderr, "zoosync: %s: %s\n", tmp, strerror(errno)); rc = 1; }
        if (fclose(f) != 0) rc = 1;
        if (rc == 0 && rename(tmp, file) < 0) { fprintf(stderr, "zoosync: %s: %s\n", file, strerror(errno)); rc = 1; }
        if (rc) unlink(tmp);
    }
    progress_show(&pg, true);
    if (rc == 0) {
        FILE *s = to_stdout ? stderr : stdout; /* the summary never mixes with the backup */
        char bb[32];
        human_bytes(bb, sizeof bb, (double)pg.bytes);
        sbuf fj = SBUF_INIT;
        sbuf_json_str(&fj, file, strlen(file));
        if (c->machine || to_stdout)
            fprintf(s, "{\"backup\":%s,\"stores\":%u,\"records\":%lld,\"bytes\":%lld,\"seconds\":%.3f}\n", fj.buf,
                    stores, pg.done, pg.bytes, now_s() - pg.t0);
        else
            fprintf(s, "backed up %u stores, %lld records (%s) to %s in %.1f s\n", stores, pg.done, bb, file,
                    now_s() - pg.t0);
        sbuf_free(&fj);
    }
    g_ptr_array_free(names, TRUE);
    return rc;
}

/* restore --all of one section (an export: header line first). Prints a
 * line saying what it did. 0, 1 (error) or 3 (conflicts or rejections). */
static int restore_section(cli *c, const char *file, char *text, long first_line) {
    input in;
    int rc = 0;
    char where[4200];
    snprintf(where, sizeof where, "%s (from line %ld)", file, first_line);
    if (input_parse(where, text, &in) < 0 || !in.hn) { input_free(&in); return 1; }
    const char *hdr = in.text.buf + in.ho;
    sbuf name = SBUF_INIT, desc = SBUF_INIT, cfg_now = SBUF_INIT, sn = SBUF_INIT;
    jraw_span cfg = member(hdr, "config");
    if (!jraw_string(member(hdr, "store"), &name) || !name.buf) {
        fprintf(stderr, "zoosync: %s: the export header names no store\n", where);
        input_free(&in);
        sbuf_free(&name);
        return 1;
    }
    const char *store = name.buf;
    sbuf_json_str(&sn, store, name.len);
    bool missing = false;
    const char *created = "existed", *config = "unchanged";
    if (get_store(c, store, &desc, &missing) && !missing) rc = 1;
    if (!rc && !missing) {
        store_config(desc.buf, &cfg_now);
        if (!cfg.p || (cfg.n == cfg_now.len && memcmp(cfg.p, cfg_now.buf, cfg.n) == 0)) cfg.p = NULL; /* nothing to set */
        else config = "updated";
    } else if (!rc) {
        created = "created", config = "set";
    }
    if (!rc && (missing || cfg.p)) rc = put_store_config(c, store, cfg); /* the backup's config */
    sbuf_reset(&desc);
    char what[128];
    snprintf(what, sizeof what, "restored %.64s", store);
    import_job j = {.c = c, .store = store, .in = &in, .mode = MODE_CREATE, .what = what, .quiet = true, .same_ok = true};
    random_client(j.st.client, sizeof j.st.client);
    snprintf(j.st.store, sizeof j.st.store, "%s", store);
    j.st.records = in.n, j.st.bytes = in.bytes;
    if (!rc && get_store(c, store, &desc, NULL)) rc = 1;
    if (!rc) {
        jraw_span cf = member(desc.buf, "conflict");
        j.lww = cf.p && cf.n == 5 && memcmp(cf.p, "\"lww\"", 5) == 0;
        long long recs = 0;
        jraw_int(member(desc.buf, "records"), &recs);
        if (recs > 0) {
            j.have = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, existing_free);
            if (scan(c, store, existing_one, j.have)) rc = 1;
        }
    }
    if (!rc) rc = import_run(&j, false);
    long long kept = j.have ? (long long)g_hash_table_size(j.have) - j.matched : 0;
    if (kept < 0) kept = 0;
    import_state *s = &j.st;
    if (rc != 1) {
        if (c->machine) {
            printf("{\"store\":%s,\"store_action\":\"%s\",\"config\":\"%s\",\"records\":%zu,\"written\":%lld,"
                   "\"alreadyThere\":%lld,\"conflicts\":%lld,\"rejected\":%lld,\"otherRecordsKept\":%lld,\"conflictKeys\":",
                   sn.buf, created, config, in.n, s->applied, j.same, s->conflicts, s->rejected, kept);
            print_list_json(j.conflict_keys, true);
            printf(",\"rejections\":");
            print_list_json(j.reasons, false);
            printf("}\n");
        } else {
            printf("%s: %s, config %s; %zu records: %lld written, %lld already there, %lld conflicts, %lld rejected",
                   store, created, config, in.n, s->applied, j.same, s->conflicts, s->rejected);
            if (kept) printf("; %lld records not in the backup kept", kept);
            putchar('\n');
            for (guint k = 0; k < j.conflict_keys->len; k++)
                printf("  conflict (a different value is there, left as is): %s\n", (char *)j.conflict_keys->pdata[k]);
            for (guint k = 0; k < j.reasons->len; k++) printf("  rejected %s\n", (char *)j.reasons->pdata[k]);
        }
        fflush(stdout);
    } else {
        fprintf(stderr, "zoosync: store %s: not restored (see above); run the same command again to go on\n", store);
    }
    if (j.conflict_keys) g_ptr_array_free(j.conflict_keys, TRUE);
    if (j.reasons) g_ptr_array_free(j.reasons, TRUE);
    if (j.have) g_hash_table_destroy(j.have);
    sbuf_free(&name);
    sbuf_free(&desc);
    sbuf_free(&cfg_now);
    sbuf_free(&sn);
    input_free(&in);
    return rc;
}

/* restore --all FILE: every store of a backup (or of exports put one after
 * another). Idempotent: a store is created with the backup's config, or,
 * when it exists, given the backup's config where it differs; each record
 * is written where its key is absent, counted as already there where the
 * store holds the same value, and left (a conflict, exit 3) where it holds
 * another. Records the backup does not have are kept. */
static int cmd_restore_all(cli *c, const char *file) {
    char *all = read_all(file);
    if (!all) return 1;
    GArray *starts = g_array_new(FALSE, FALSE, sizeof(size_t)), *lines = g_array_new(FALSE, FALSE, sizeof(long));
    long line = 0;
    int rc = 0;
    for (char *p = all; *p && rc == 0;) {
        char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        line++;
        const char *q = p;
        while (q < p + n && (*q == ' ' || *q == '\t' || *q == '\r')) q++;
        bool blank = q == p + n, export_hdr = false, backup_hdr = false;
        if (!blank && *q == '{' && memmem(q, n - (size_t)(q - p), "\"zoosync\"", 9)) {
            sbuf cl = SBUF_INIT;
            jraw_err e;
            if (jraw_compact(q, n - (size_t)(q - p), &cl, &e) == 0) {
                jraw_span z = member(cl.buf, "zoosync");
                export_hdr = jraw_key_is(z, "export");
                backup_hdr = jraw_key_is(z, "backup");
            }
            sbuf_free(&cl);
        }
        if (backup_hdr && line != 1) {
            fprintf(stderr, "zoosync: %s: line %ld: a backup header can only come first\n", file, line);
            rc = 1;
        } else if (export_hdr) {
            size_t o = (size_t)(p - all);
            g_array_append_val(starts, o);
            g_array_append_val(lines, line);
        } else if (!blank && !backup_hdr && starts->len == 0) {
            fprintf(stderr, "zoosync: %s: line %ld: a record before any export header line (not a backup?)\n", file, line);
            rc = 1;
        }
        p = nl ? nl + 1 : p + n;
    }
    if (rc == 0 && starts->len == 0) {
        fprintf(stderr, "zoosync: %s: no store in it (not a backup or an export)\n", file);
        rc = 1;
    }
    size_t len = strlen(all);
    bool parsed = rc == 0;
    for (guint i = 0; parsed && i < starts->len; i++) {
        size_t from = g_array_index(starts, size_t, i), to = i + 1 < starts->len ? g_array_index(starts, size_t, i + 1) : len;
        char *text = strndup(all + from, to - from);
        int r = text ? restore_section(c, file, text, g_array_index(lines, long, i)) : 1;
        if (r == 1) rc = 1; /* the others are still restored: each says what it did */
        else if (r == 3 && rc == 0) rc = 3;
    }
    g_array_free(starts, TRUE);
    g_array_free(lines, TRUE);
    free(all);
    return rc;
}

/* ---- drop, with progress ------------------------------------------------------------- */

typedef struct drop_call {
    cli c;                 /* a copy with a curl handle of its own */
    const char *path;
    long status;
    sbuf out;
    atomic_bool done;
} drop_call;

static void *drop_main(void *arg) {
    drop_call *d = arg;
    d->status = request(&d->c, "DELETE", d->path, NULL, NULL, &d->out);
    atomic_store(&d->done, true);
    return NULL;
}

/* drop STORE: the DELETE runs on a thread of its own; meanwhile the store
 * is polled (GET /v1/stores/{s} answers 404 with "deleting" while its
 * record buckets are being removed: PROTOCOL.md, "Stores"), and the
 * progress shown: a line redrawn on a terminal, otherwise a line on stderr
 * every ZOOSYNC_PROGRESS_MS (default 2000) ms (JSON with --json or when
 * stdout is not a terminal). The summary goes to stdout. */
static int cmd_drop(cli *c, const char *store) {
    sbuf desc = SBUF_INIT, path = SBUF_INIT;
    bool missing = false;
    long long records = -1;
    if (get_store(c, store, &desc, &missing) == 0) jraw_int(member(desc.buf, "records"), &records);
    else if (!missing) { sbuf_free(&desc); return 1; }
    sbuf_free(&desc);
    store_path(&path, store, NULL);
    drop_call d = {.c = *c, .path = path.buf, .status = -1, .out = SBUF_INIT};
    atomic_init(&d.done, false);
    d.c.curl = curl_easy_init();
    pthread_t th;
    if (!d.c.curl || pthread_create(&th, NULL, drop_main, &d) != 0) {
        fprintf(stderr, "zoosync: cannot start the request\n");
        if (d.c.curl) curl_easy_cleanup(d.c.curl);
        sbuf_free(&path);
        return 1;
    }
    const char *env_ms = getenv("ZOOSYNC_PROGRESS_MS");
    long every_ms = env_ms && atol(env_ms) > 0 ? atol(env_ms) : 2000;
    double t0 = now_s(), last_line = t0;
    long long left = -1, total = 0;
    while (!atomic_load(&d.done)) {
        for (int i = 0; i < (c->tty ? 2 : 10) && !atomic_load(&d.done); i++) sleep_ms(c->tty ? 100 : every_ms / 10 > 0 ? every_ms / 10 : 1);
        if (atomic_load(&d.done)) break;
        sbuf out = SBUF_INIT, cb = SBUF_INIT;
        long st = request(c, "GET", path.buf, NULL, NULL, &out);
        if (st == 200) left = LAYOUT_BUCKETS_CLI, total = LAYOUT_BUCKETS_CLI; /* not marked yet */
        else if (st == 404 && compact_body(&out, &cb)) {
            jraw_span dl = member(cb.buf, "deleting");
            sbuf dd = SBUF_INIT;
            if (dl.p) {
                sbuf_append(&dd, dl.p, dl.n);
                jraw_int(member(dd.buf, "bucketsLeft"), &left);
                jraw_int(member(dd.buf, "buckets"), &total);
            } else if (left >= 0) {
                left = 0; /* gone */
            }
            sbuf_free(&dd);
        }
        sbuf_free(&out);
        sbuf_free(&cb);
        double t = now_s(), frac = total > 0 && left >= 0 ? 1.0 - (double)left / (double)total : 0;
        if (c->tty) {
            fprintf(stderr, "\r\033[Kdeleting %s: %3.0f%%", store, 100 * frac);
            if (records >= 0) fprintf(stderr, "  ~%lld of %lld records", (long long)(frac * (double)records), records);
            fprintf(stderr, "  %.0fs", t - t0);
            if (frac > 0.02 && frac < 1) fprintf(stderr, "  ETA %.0fs", (t - t0) * (1 - frac) / frac);
            fflush(stderr);
        } else if ((t - last_line) * 1000 >= (double)every_ms - 1) {
            last_line = t;
            if (c->machine)
                fprintf(stderr, "{\"store\":\"%s\",\"deleting\":true,\"bucketsLeft\":%lld,\"buckets\":%lld,\"done\":%.3f,\"seconds\":%.1f}\n",
                        store, left, total, frac, t - t0);
            else
                fprintf(stderr, "deleting %s: %.0f%% (%lld of %lld record buckets left), %.0f s\n", store, 100 * frac, left,
                        total, t - t0);
        }
    }
    pthread_join(th, NULL);
    curl_easy_cleanup(d.c.curl);
    if (c->tty) fprintf(stderr, "\r\033[K");
    int rc = 0;
    double secs = now_s() - t0;
    if (d.status == 204) {
        if (c->machine)
            printf("{\"store\":\"%s\",\"dropped\":true,\"records\":%lld,\"seconds\":%.3f}\n", store, records < 0 ? 0 : records, secs);
        else if (records >= 0)
            printf("dropped store %s (%lld records) in %.1f s\n", store, records, secs);
        else
            printf("dropped store %s (an earlier deletion finished) in %.1f s\n", store, secs);
    } else {
        rc = report(d.status, &d.out);
        if (!rc) rc = 1;
    }
    sbuf_free(&d.out);
    sbuf_free(&path);
    return rc;
}

/* ---- token ------------------------------------------------------------------------------ */

/* token: an HS256 token for development, signed with the gateway's secret
 * file (read as the gateway reads it: one trailing newline dropped). */
static int cmd_token(const char *sub, const char *scope, const char *ttl_s, const char *secret_file) {
    if (!secret_file || !scope) {
        fprintf(stderr, "zoosync: token needs --scope and --secret-file\n");
        return 2;
    }
    char *end = NULL;
    long long ttl = ttl_s ? strtoll(ttl_s, &end, 10) : 3600;
    if (ttl_s && (*end || ttl < 1 || ttl > 31536000)) {
        fprintf(stderr, "zoosync: --ttl: seconds from 1 to 31536000\n");
        return 2;
    }
    FILE *f = fopen(secret_file, "rb");
    if (!f) { fprintf(stderr, "zoosync: %s: %s\n", secret_file, strerror(errno)); return 1; }
    unsigned char key[8192];
    size_t n = fread(key, 1, sizeof key, f);
    fclose(f);
    if (n > 0 && key[n - 1] == '\n') n--;
    if (n > 0 && key[n - 1] == '\r') n--;
    if (n < 32) {
        fprintf(stderr, "zoosync: %s: the secret must be at least 32 bytes\n", secret_file);
        return 1;
    }
    jwt_t *jwt = NULL;
    long long now = (long long)time(NULL);
    char *tok = NULL;
    if (jwt_new(&jwt) == 0 && (!sub || jwt_add_grant(jwt, "sub", sub) == 0) && jwt_add_grant(jwt, "scope", scope) == 0 &&
        jwt_add_grant_int(jwt, "iat", now) == 0 && jwt_add_grant_int(jwt, "exp", now + ttl) == 0 &&
        jwt_set_alg(jwt, JWT_ALG_HS256, key, (int)n) == 0)
        tok = jwt_encode_str(jwt);
    memset(key, 0, sizeof key);
    jwt_free(jwt);
    if (!tok) { fprintf(stderr, "zoosync: cannot make the token\n"); return 1; }
    printf("%s\n", tok);
    free(tok);
    return 0;
}

int main(int argc, char **argv) {
    cli c = {getenv("ZOOSYNC_URL") ? getenv("ZOOSYNC_URL") : "http://127.0.0.1:8080", getenv("ZOOSYNC_TOKEN"), NULL, false, false, false};
    enum { O_URL = 1, O_TOKEN, O_SINCE, O_LIMIT, O_ALL, O_IFMATCH, O_CREATE, O_CONFLICT, O_MAXV, O_TTL, O_HELP,
           O_JSON, O_MODE, O_STATE, O_PREFIX, O_SUB, O_SCOPE, O_SECRET, O_VERSION };
    static const struct option longs[] = {
        {"url", required_argument, NULL, O_URL},           {"token", required_argument, NULL, O_TOKEN},
        {"since", required_argument, NULL, O_SINCE},       {"limit", required_argument, NULL, O_LIMIT},
        {"all", no_argument, NULL, O_ALL},                 {"if-match", required_argument, NULL, O_IFMATCH},
        {"create", no_argument, NULL, O_CREATE},           {"conflict", required_argument, NULL, O_CONFLICT},
        {"max-value-bytes", required_argument, NULL, O_MAXV}, {"ttl", required_argument, NULL, O_TTL},
        {"help", no_argument, NULL, O_HELP},               {"json", no_argument, NULL, O_JSON},
        {"mode", required_argument, NULL, O_MODE},         {"state", required_argument, NULL, O_STATE},
        {"prefix", required_argument, NULL, O_PREFIX},     {"sub", required_argument, NULL, O_SUB},
        {"scope", required_argument, NULL, O_SCOPE},       {"secret-file", required_argument, NULL, O_SECRET},
        {"version", no_argument, NULL, O_VERSION},         {NULL, 0, NULL, 0}};
    const char *since = NULL, *limit = NULL, *if_match = NULL, *conflict = NULL, *maxv = NULL, *ttl = NULL;
    const char *mode = NULL, *state = NULL, *prefix = NULL, *sub = NULL, *scope = NULL, *secret = NULL;
    int all = 0, create = 0, opt;
    while ((opt = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        switch (opt) {
        case O_URL: c.url = optarg; break;
        case O_TOKEN: c.token = optarg; break;
        case O_SINCE: since = optarg; break;
        case O_LIMIT: limit = optarg; break;
        case O_ALL: all = 1; break;
        case O_IFMATCH: if_match = optarg; break;
        case O_CREATE: create = 1; break;
        case O_CONFLICT: conflict = optarg; break;
        case O_MAXV: maxv = optarg; break;
        case O_TTL: ttl = optarg; break;
        case O_HELP: usage(stdout); return 0;
        case O_JSON: c.json = true; break;
        case O_MODE: mode = optarg; break;
        case O_STATE: state = optarg; break;
        case O_PREFIX: prefix = optarg; break;
        case O_SUB: sub = optarg; break;
        case O_SCOPE: scope = optarg; break;
        case O_SECRET: secret = optarg; break;
        case O_VERSION: printf("zoosync %s\n", ZOOSYNC_VERSION); return 0;
        default: usage(stderr); return 2;
        }
    }
    int nargs = argc - optind;
    char **a = argv + optind;
    if (nargs < 1) { usage(stderr); return 2; }
    const char *cmd = a[0];
    /* Each command and its word count, checked before anything is set up. */
    static const struct { const char *name; int words; } cmds[] = {
        {"stores", 1}, {"store", 2}, {"drop", 2}, {"get", 3}, {"del", 3}, {"put", 4},
        {"changes", 2}, {"watch", 2}, {"push", 3}, {"import", 3}, {"export", 2}, {"restore", 3},
        {"stats", 2}, {"keys", 2}, {"token", 1}, {"backup", 2},
    };
    int want = -1;
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (strcmp(cmd, cmds[i].name) == 0) want = cmds[i].words;
    if (want < 0) {
        fprintf(stderr, "zoosync: unknown command '%s'\n", cmd);
        usage(stderr);
        return 2;
    }
    if (all && strcmp(cmd, "restore") == 0) want = 2; /* restore --all FILE */
    if (nargs != want) {
        fprintf(stderr, "zoosync: %s takes %d argument%s\n", cmd, want - 1, want == 2 ? "" : "s");
        usage(stderr);
        return 2;
    }
    c.tty = !c.json && isatty(2);
    c.machine = c.json || !isatty(1);
    if (strcmp(cmd, "token") == 0) return cmd_token(sub, scope, ttl, secret);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0 || !(c.curl = curl_easy_init())) {
        fprintf(stderr, "zoosync: cannot start libcurl\n");
        return 1;
    }
    int rc = 2;
    sbuf p = SBUF_INIT;
    char hdr[128];
    if (strcmp(cmd, "stores") == 0) {
        sbuf_puts(&p, "/v1/stores");
        rc = simple(&c, "GET", &p, NULL, NULL);
    } else if (strcmp(cmd, "store") == 0) {
        json_t *body = json_object();
        if (conflict) json_object_set_new(body, "conflict", json_string(conflict));
        if (maxv) json_object_set_new(body, "maxValueBytes", json_integer(strtoll(maxv, NULL, 10)));
        if (ttl) json_object_set_new(body, "tombstoneTtlSeconds", json_integer(strtoll(ttl, NULL, 10)));
        char *b = json_dumps(body, JSON_COMPACT);
        json_decref(body);
        store_path(&p, a[1], NULL);
        rc = simple(&c, "PUT", &p, b, NULL);
        free(b);
    } else if (strcmp(cmd, "drop") == 0) {
        rc = cmd_drop(&c, a[1]);
    } else if (strcmp(cmd, "get") == 0 || strcmp(cmd, "del") == 0) {
        store_path(&p, a[1], "/records/");
        pct(&p, a[2]);
        snprintf(hdr, sizeof hdr, "If-Match: \"%s\"", if_match ? if_match : "");
        rc = simple(&c, cmd[0] == 'g' ? "GET" : "DELETE", &p, NULL, if_match ? hdr : NULL);
    } else if (strcmp(cmd, "put") == 0) {
        store_path(&p, a[1], "/records/");
        pct(&p, a[2]);
        if (if_match) snprintf(hdr, sizeof hdr, "If-Match: \"%s\"", if_match);
        else snprintf(hdr, sizeof hdr, "If-None-Match: *");
        rc = simple(&c, "PUT", &p, a[3], if_match || create ? hdr : NULL);
    } else if (strcmp(cmd, "changes") == 0) {
        rc = cmd_changes(&c, a[1], since, limit, all);
    } else if (strcmp(cmd, "watch") == 0) {
        rc = cmd_watch(&c, a[1], since);
    } else if (strcmp(cmd, "restore") == 0 && all) {
        rc = cmd_restore_all(&c, a[1]);
    } else if (strcmp(cmd, "backup") == 0) {
        rc = cmd_backup(&c, a[1]);
    } else if (strcmp(cmd, "import") == 0 || strcmp(cmd, "restore") == 0) {
        rc = cmd_import(&c, a[1], a[2], mode, state, cmd[0] == 'r');
    } else if (strcmp(cmd, "export") == 0) {
        rc = cmd_export(&c, a[1]);
    } else if (strcmp(cmd, "stats") == 0) {
        rc = cmd_stats(&c, a[1]);
    } else if (strcmp(cmd, "keys") == 0) {
        rc = cmd_keys(&c, a[1], prefix);
    } else if (strcmp(cmd, "push") == 0) {
        char *b = read_all(a[2]);
        if (b) {
            store_path(&p, a[1], "/push");
            rc = simple(&c, "POST", &p, b, NULL);
            free(b);
        } else {
            rc = 1;
        }
    }
    sbuf_free(&p);
    curl_easy_cleanup(c.curl);
    curl_global_cleanup();
    return rc;
}

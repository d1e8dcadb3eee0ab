/* zoosync: a command-line client for a zoosyncd gateway (libcurl).
 *
 *   zoosync [--url URL] [--token T] COMMAND ARGS...
 *
 * Prints the gateway's JSON answers on stdout; an error answer goes to
 * stderr as "zoosync: <code>: <message>" with exit status 1; a usage error
 * exits with 2. The token may also come from $ZOOSYNC_TOKEN, the URL from
 * $ZOOSYNC_URL (default http://127.0.0.1:8080). */
#include <curl/curl.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/jraw.h"
#include "util/sbuf.h"

typedef struct cli {
    const char *url;
    const char *token;
    CURL *curl;
} cli;

static void usage(FILE *f) {
    fprintf(f,
            "usage: zoosync [--url URL] [--token TOKEN] COMMAND ARGS...\n"
            "commands:\n"
            "  stores                                   list the stores\n"
            "  store NAME [--conflict cas|lww] [--max-value-bytes N] [--ttl SECONDS]\n"
            "                                           create a store, or change the fields given\n"
            "  drop NAME                                delete a store and all its records\n"
            "  get STORE KEY                            read one record\n"
            "  put STORE KEY JSON [--if-match V|--create]  write one record\n"
            "  del STORE KEY [--if-match V]             delete one record\n"
            "  changes STORE [--since CURSOR] [--limit N] [--all]\n"
            "                                           read the changes feed (--all: every page)\n"
            "  watch STORE [--since CURSOR]             follow live changes, one JSON line per change\n"
            "  push STORE FILE                          send a push body (JSON; FILE - reads stdin)\n"
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
typedef struct sse { sbuf line; sbuf data; } sse;

static size_t on_sse(char *p, size_t size, size_t n, void *ud) {
    sse *s = ud;
    for (size_t i = 0; i < size * n; i++) {
        if (p[i] != '\n') { sbuf_putc(&s->line, p[i]); continue; }
        const char *l = s->line.buf ? s->line.buf : "";
        if (strncmp(l, "data: ", 6) == 0) {
            sbuf_puts(&s->data, l + 6);
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

static int cmd_watch(cli *c, const char *store, const char *since) {
    sbuf p = SBUF_INIT, url = SBUF_INIT, auth = SBUF_INIT;
    store_path(&p, store, "/events");
    if (since) sbuf_printf(&p, "?since=%s", since);
    sbuf_printf(&url, "%s%s", c->url, p.buf);
    struct curl_slist *h = curl_slist_append(NULL, "Accept: text/event-stream");
    if (c->token) {
        sbuf_printf(&auth, "Authorization: Bearer %s", c->token);
        h = curl_slist_append(h, auth.buf);
    }
    sse s = {SBUF_INIT, SBUF_INIT};
    curl_easy_reset(c->curl);
    curl_easy_setopt(c->curl, CURLOPT_URL, url.buf);
    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_sse);
    curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(c->curl, CURLOPT_FAILONERROR, 1L);
    CURLcode rc = curl_easy_perform(c->curl);
    if (rc != CURLE_OK) fprintf(stderr, "zoosync: %s: %s\n", url.buf, curl_easy_strerror(rc));
    curl_slist_free_all(h);
    sbuf_free(&s.line);
    sbuf_free(&s.data);
    sbuf_free(&auth);
    sbuf_free(&url);
    sbuf_free(&p);
    return rc == CURLE_OK ? 0 : 1;
}

int main(int argc, char **argv) {
    cli c = {getenv("ZOOSYNC_URL") ? getenv("ZOOSYNC_URL") : "http://127.0.0.1:8080", getenv("ZOOSYNC_TOKEN"), NULL};
    enum { O_URL = 1, O_TOKEN, O_SINCE, O_LIMIT, O_ALL, O_IFMATCH, O_CREATE, O_CONFLICT, O_MAXV, O_TTL, O_HELP };
    static const struct option longs[] = {
        {"url", required_argument, NULL, O_URL},           {"token", required_argument, NULL, O_TOKEN},
        {"since", required_argument, NULL, O_SINCE},       {"limit", required_argument, NULL, O_LIMIT},
        {"all", no_argument, NULL, O_ALL},                 {"if-match", required_argument, NULL, O_IFMATCH},
        {"create", no_argument, NULL, O_CREATE},           {"conflict", required_argument, NULL, O_CONFLICT},
        {"max-value-bytes", required_argument, NULL, O_MAXV}, {"ttl", required_argument, NULL, O_TTL},
        {"help", no_argument, NULL, O_HELP},               {NULL, 0, NULL, 0}};
    const char *since = NULL, *limit = NULL, *if_match = NULL, *conflict = NULL, *maxv = NULL, *ttl = NULL;
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
        {"changes", 2}, {"watch", 2}, {"push", 3},
    };
    int want = -1;
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (strcmp(cmd, cmds[i].name) == 0) want = cmds[i].words;
    if (want < 0) {
        fprintf(stderr, "zoosync: unknown command '%s'\n", cmd);
        usage(stderr);
        return 2;
    }
    if (nargs != want) {
        fprintf(stderr, "zoosync: %s takes %d argument%s\n", cmd, want - 1, want == 2 ? "" : "s");
        usage(stderr);
        return 2;
    }
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
        store_path(&p, a[1], NULL);
        rc = simple(&c, "DELETE", &p, NULL, NULL);
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

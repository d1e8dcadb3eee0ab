#include "http/route.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/server.h"

void route_match_free(route_match *m) {
    free(m->store);
    free(m->key);
    m->store = m->key = NULL;
}

bool route_in_api(const char *path) {
    size_t n = strlen(ROUTE_API_PREFIX);
    return strncmp(path, ROUTE_API_PREFIX, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* A parameter's place in the path: where it starts and how long it is. */
typedef struct span { const char *p; size_t n; bool set; } span;

/* Whether path matches pattern: literal text byte for byte, {key} the
 * rest of the path, any other {name} one segment (up to the next '/',
 * maybe empty). Fills *store and *key when the pattern has them. */
static bool match(const char *pat, const char *path, span *store, span *key) {
    const char *p = pat, *s = path;
    *store = *key = (span){0};
    while (*p) {
        if (*p != '{') {
            if (*p != *s) return false;
            p++, s++;
            continue;
        }
        const char *close = strchr(p, '}');
        if (!close) return false; /* a broken pattern matches nothing */
        size_t nlen = (size_t)(close - p - 1);
        bool is_key = nlen == 3 && memcmp(p + 1, "key", 3) == 0;
        size_t len = is_key ? strlen(s) : strcspn(s, "/");
        if (is_key) *key = (span){s, len, true};
        else if (nlen == 5 && memcmp(p + 1, "store", 5) == 0) *store = (span){s, len, true};
        s += len;
        p = close + 1;
    }
    return *s == '\0';
}

/* Appends method to the ", "-separated list in buf (size n), unless it
 * would not fit whole. */
static void allow_add(char *buf, size_t n, const char *method) {
    size_t used = strlen(buf), add = strlen(method) + (used ? 2 : 0);
    if (used + add >= n) return;
    snprintf(buf + used, n - used, "%s%s", used ? ", " : "", method);
}

void route_find(const route_def *table, size_t n, const char *method, const char *path, route_match *m) {
    memset(m, 0, sizeof *m);
    for (size_t i = 0; i < n; i++) {
        span st, k;
        if (!match(table[i].pattern, path, &st, &k)) continue;
        if (!m->path) {
            m->path = &table[i];
            if (st.set) {
                size_t dlen;
                m->store = http_pct_decode(st.p, st.n, &dlen);
                if (!m->store || strlen(m->store) != dlen) { /* "todos%00other" is not "todos" */
                    free(m->store);
                    m->store = strdup("");
                    m->store_broken = true;
                }
            }
            if (k.set) {
                m->key = http_pct_decode(k.p, k.n, &m->klen);
                if (!m->key) m->key_broken = true;
            }
        }
        allow_add(m->allow, sizeof m->allow, table[i].method);
        if (!m->def && *method && strcmp(table[i].method, method) == 0) m->def = &table[i];
    }
    if (m->def) m->path = m->def;
}

/* s[0..n) as a decimal number of digits only (strtoll would also take
 * leading white space and a sign), at most max. 0 and *out, or -1. */
static int route_digits(const char *s, size_t n, long long max, long long *out) {
    if (n == 0) return -1;
    long long x = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        int d = s[i] - '0';
        if (x > (max - d) / 10) return -1;
        x = x * 10 + d;
    }
    *out = x;
    return 0;
}

/* Only the form the gateway's ETag has ("3"): " 3", "+3" or "03" is not
 * that version's tag, so it matches nothing. */
int route_if_match(const char *h, int64_t *v) {
    size_t n = strlen(h);
    long long x;
    if (n < 3 || h[0] != '"' || h[n - 1] != '"' || (n > 3 && h[1] == '0')) return -1;
    if (route_digits(h + 1, n - 2, INT64_MAX, &x) < 0) return -1;
    *v = x;
    return 0;
}

bool route_etag_listed(const char *h, int64_t v) {
    for (const char *p = h; *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',') p++;
        const char *e = p;
        while (*e && *e != ',') e++;
        size_t n = (size_t)(e - p);
        while (n && (p[n - 1] == ' ' || p[n - 1] == '\t')) n--;
        if (n == 1 && p[0] == '*') return true;
        if (n >= 2 && p[0] == 'W' && p[1] == '/') p += 2, n -= 2;
        long long x;
        if (n >= 3 && p[0] == '"' && p[n - 1] == '"' && !(n > 3 && p[1] == '0') &&
            route_digits(p + 1, n - 2, INT64_MAX, &x) == 0 && x == v)
            return true;
        p = e;
    }
    return false;
}

int route_limit(const char *l, int *out) {
    long long v;
    if (route_digits(l, strlen(l), 10000, &v) < 0 || v < 1) return -1;
    *out = (int)v;
    return 0;
}

#include "http/route.h"

#include <stdlib.h>
#include <string.h>

#include "http/server.h"

void route_free(route *r) {
    free(r->store);
    free(r->key);
}

/* Splits /v1/stores/{s}[/records/{key...}|/push|/changes]. */
void route_parse(const char *path, route *r) {
    memset(r, 0, sizeof *r);
    const char *p = path;
    if (strncmp(p, "/v1/stores", 10) != 0) return;
    p += 10;
    if (*p == '\0') { r->id = R_STORES; return; }
    if (*p != '/') return;
    p++;
    const char *slash = strchr(p, '/');
    size_t slen = slash ? (size_t)(slash - p) : strlen(p);
    size_t dlen;
    r->store = http_pct_decode(p, slen, &dlen);
    if (!r->store || strlen(r->store) != dlen) { /* "todos%00other" is not "todos" */
        free(r->store);
        r->store = strdup("");
        r->store_broken = true;
    }
    if (!slash) { r->id = R_STORE; return; }
    const char *rest = slash + 1;
    if (strcmp(rest, "push") == 0) r->id = R_PUSH;
    else if (strcmp(rest, "changes") == 0) r->id = R_CHANGES;
    else if (strcmp(rest, "events") == 0) r->id = R_EVENTS;
    else if (strncmp(rest, "records/", 8) == 0) {
        r->id = R_RECORD;
        const char *k = rest + 8;
        r->key = http_pct_decode(k, strlen(k), &r->klen);
        if (!r->key) r->key_broken = true;
    }
}

const char *route_allowed_methods(route_id id) {
    switch (id) {
    case R_STORES: return "GET";
    case R_STORE: return "GET, PUT, DELETE";
    case R_RECORD: return "GET, PUT, DELETE";
    case R_PUSH: return "POST";
    case R_CHANGES: return "GET";
    case R_EVENTS: return "GET";
    default: return "";
    }
}

/* m must be one whole entry of the ", "-separated list. (A substring
 * search let "GET, PUT" pass, and an empty method read past the list.) */
bool route_method_allowed(route_id id, const char *m) {
    size_t n = strlen(m);
    if (n == 0) return false;
    for (const char *p = route_allowed_methods(id); *p;) {
        size_t t = strcspn(p, ",");
        if (t == n && memcmp(p, m, n) == 0) return true;
        p += t;
        while (*p == ',' || *p == ' ') p++;
    }
    return false;
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

int route_limit(const char *l, int *out) {
    long long v;
    if (route_digits(l, strlen(l), 10000, &v) < 0 || v < 1) return -1;
    *out = (int)v;
    return 0;
}

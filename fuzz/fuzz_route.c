/* The route lookup and query parser: route_find on the gateway's route
 * table (with http_pct_decode on the store and key parameters),
 * route_if_match, route_etag_listed, route_limit, and http_pct_decode itself (also used on
 * the access_token query value).
 *
 * The input (up to its first NUL) is used as a path, a method, an
 * If-Match value and a limit value; the whole input (NULs included) is
 * percent-decoded.
 *
 * Properties: no crash, leak or undefined behaviour; http_pct_decode
 * refuses exactly the broken escapes and otherwise returns the bytes an
 * independent decoder gives; route_find's store and key are the decoded
 * segments (a store with a NUL is broken); a method finds a route exactly
 * when it is one of the path's Allow list; If-Match is
 * accepted exactly as "\"<version>\"" in canonical decimal; limit exactly
 * as 1..10000 in digits. */
#include <stdbool.h>
#include <stdio.h>

#include "fuzz.h"
#include "http/api.h"
#include "http/route.h"
#include "http/server.h"

static int hexv(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* The reference decoder: -1 when broken, else the length written to out. */
static long ref_decode(const char *s, size_t n, char *out) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') { out[o++] = s[i]; continue; }
        if (n - i < 3 || hexv(s[i + 1]) < 0 || hexv(s[i + 2]) < 0) return -1;
        out[o++] = (char)(hexv(s[i + 1]) * 16 + hexv(s[i + 2]));
        i += 2;
    }
    return (long)o;
}

static void check_decode(const char *s, size_t n, const char *got, size_t glen) {
    char *want = malloc(n + 1);
    long w = ref_decode(s, n, want);
    if (w < 0) CHECK(!got);
    else CHECK(got && (size_t)w == glen && memcmp(got, want, glen) == 0 && got[glen] == '\0');
    free(want);
}

static bool in_list(const char *list, const char *m) {
    if (!*m) return false;
    char *copy = strdup(list), *save = NULL;
    bool found = false;
    for (char *t = strtok_r(copy, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) found = found || strcmp(t, m) == 0;
    free(copy);
    return found;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* percent-decoding, NULs included */
    char *raw = fuzz_dup(data, size);
    size_t dlen = 0;
    char *dec = http_pct_decode(raw, size, &dlen);
    check_decode(raw, size, dec, dlen);
    free(dec);
    free(raw);

    char *s = fuzz_cstr(data, size);
    size_t n;
    const route_def *table = api_routes(&n);
    /* the path, with each route's method and with the input as the method */
    for (size_t i = 0; i <= n; i++) {
        const char *method = i < n ? table[i].method : s;
        route_match m;
        route_find(table, n, method, s, &m);
        if (m.def) CHECK(m.path == m.def && strcmp(m.def->method, method) == 0);
        if (m.path) {
            CHECK(in_list(m.allow, m.path->method));
            CHECK(!!m.def == in_list(m.allow, method)); /* 405 exactly when the method is not listed */
        } else {
            CHECK(!m.def && !m.store && !m.key && !m.allow[0]);
        }
        if (m.path && strstr(m.path->pattern, "{store}")) {
            CHECK(strncmp(s, "/v1/stores/", 11) == 0);
            const char *seg = s + 11, *slash = strchr(seg, '/');
            size_t sn = slash ? (size_t)(slash - seg) : strlen(seg);
            char *want = malloc(sn + 1);
            long w = ref_decode(seg, sn, want);
            CHECK(m.store);
            if (w < 0 || memchr(want, 0, (size_t)w)) CHECK(m.store_broken && m.store[0] == '\0');
            else CHECK(!m.store_broken && strlen(m.store) == (size_t)w && memcmp(m.store, want, (size_t)w) == 0);
            free(want);
            if (strstr(m.path->pattern, "{key}")) {
                const char *k = strstr(slash, "/records/") + 9;
                if (m.key_broken) CHECK(!m.key);
                check_decode(k, strlen(k), m.key, m.klen);
            } else {
                CHECK(!m.key && !m.key_broken);
            }
        } else {
            CHECK(!m.store && !m.key && !m.key_broken);
        }
        route_match_free(&m);
    }

    /* If-Match */
    int64_t v = -7;
    int rc = route_if_match(s, &v);
    if (rc == 0) {
        char canon[32];
        snprintf(canon, sizeof canon, "\"%lld\"", (long long)v);
        if (v < 0 || strcmp(canon, s) != 0) {
            fprintf(stderr, "If-Match %s read as %lld\n", s, (long long)v);
            CHECK(0);
        }
    }

    /* If-None-Match: a list taken to name version probe holds its canonical
     * tag (strong, or weak after W/) or "*" */
    for (int64_t probe = 0; probe < 3; probe++)
        if (route_etag_listed(s, probe)) {
            char canon[40];
            snprintf(canon, sizeof canon, "\"%lld\"", (long long)probe);
            CHECK(strstr(s, canon) != NULL || strchr(s, '*') != NULL);
        }

    /* limit */
    int lim = -7;
    rc = route_limit(s, &lim);
    if (rc == 0) {
        bool digits = s[0] != '\0';
        for (const char *p = s; *p; p++) digits = digits && *p >= '0' && *p <= '9';
        if (!digits || lim < 1 || lim > 10000 || atoi(s) != lim) {
            fprintf(stderr, "limit '%s' read as %d\n", s, lim);
            CHECK(0);
        }
    }
    free(s);
    return 0;
}

/* The route and query parser: route_parse (the /v1 path split, with
 * http_pct_decode on the store and key segments), route_method_allowed,
 * route_if_match, route_limit, and http_pct_decode itself (also used on
 * the access_token query value).
 *
 * The input (up to its first NUL) is used as a path, a method, an
 * If-Match value and a limit value; the whole input (NULs included) is
 * percent-decoded.
 *
 * Properties: no crash, leak or undefined behaviour; http_pct_decode
 * refuses exactly the broken escapes and otherwise returns the bytes an
 * independent decoder gives; route_parse's store and key are the decoded
 * segments (a store with a NUL is broken); a method is allowed exactly
 * when it is one of the route's comma-separated list; If-Match is
 * accepted exactly as "\"<version>\"" in canonical decimal; limit exactly
 * as 1..10000 in digits. */
#include <stdbool.h>
#include <stdio.h>

#include "fuzz.h"
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
    /* the path */
    route r;
    route_parse(s, &r);
    CHECK(r.id >= R_NONE && r.id <= R_EVENTS);
    if (r.id != R_NONE) CHECK(strncmp(s, "/v1/stores", 10) == 0);
    if (r.id != R_NONE && r.id != R_STORES) {
        const char *seg = s + 11, *slash = strchr(seg, '/');
        size_t sn = slash ? (size_t)(slash - seg) : strlen(seg);
        char *want = malloc(sn + 1);
        long w = ref_decode(seg, sn, want);
        CHECK(r.store);
        if (w < 0 || memchr(want, 0, (size_t)w)) CHECK(r.store_broken && r.store[0] == '\0');
        else CHECK(!r.store_broken && strlen(r.store) == (size_t)w && memcmp(r.store, want, (size_t)w) == 0);
        free(want);
        if (r.id == R_RECORD) {
            const char *k = strstr(slash, "/records/") + 9;
            if (r.key_broken) CHECK(!r.key);
            check_decode(k, strlen(k), r.key, r.klen);
        } else {
            CHECK(!r.key && !r.key_broken);
        }
    } else {
        CHECK(!r.key && (r.id == R_NONE || !r.store)); /* R_NONE: "/v1/stores/s/other" keeps its store */
    }
    route_free(&r);

    /* the method */
    for (route_id id = R_NONE; id <= R_STATIC; id++)
        CHECK(route_method_allowed(id, s) == in_list(route_allowed_methods(id), s));

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

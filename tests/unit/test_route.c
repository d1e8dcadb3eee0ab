/* Unit tests for src/http/route.c on the gateway's route table
 * (api_routes): the lookup of method and path with the parameters'
 * percent-decoding, the 405s and their Allow lists, the table against
 * docs/openapi.yaml both ways, and the If-Match and limit values. Cases
 * found by fuzz/fuzz_route.c are marked "fuzz:". */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/api.h"
#include "http/route.h"

static const route_def *table(size_t *n) { return api_routes(n); }

/* Finds method and path in the gateway's table. */
static void find(const char *method, const char *path, route_match *m) {
    size_t n;
    const route_def *t = table(&n);
    route_find(t, n, method, path, m);
}

/* method path is the route of pattern (NULL: no route has the path). */
static void expect_route(const char *method, const char *path, const char *pattern) {
    route_match m;
    find(method, path, &m);
    if (!pattern) {
        if (m.def || m.path) fail_msg("%s %s: found %s", method, path, m.path->pattern);
    } else {
        if (!m.def) fail_msg("%s %s: no route", method, path);
        assert_string_equal(m.def->method, method);
        assert_string_equal(m.def->pattern, pattern);
        assert_ptr_equal(m.path, m.def);
    }
    route_match_free(&m);
}

static void test_find(void **state) {
    (void)state;
    expect_route("GET", "/v1/stores", "/v1/stores");
    expect_route("GET", "/v1/stores/todos", "/v1/stores/{store}");
    expect_route("PUT", "/v1/stores/todos", "/v1/stores/{store}");
    expect_route("DELETE", "/v1/stores/todos", "/v1/stores/{store}");
    expect_route("POST", "/v1/stores/todos/push", "/v1/stores/{store}/push");
    expect_route("GET", "/v1/stores/todos/changes", "/v1/stores/{store}/changes");
    expect_route("GET", "/v1/stores/todos/events", "/v1/stores/{store}/events");
    expect_route("GET", "/v1/stores/todos/records/k", "/v1/stores/{store}/records/{key}");
    expect_route("PUT", "/v1/stores/todos/records/a/b", "/v1/stores/{store}/records/{key}");
    expect_route("DELETE", "/v1/stores/todos/records/", "/v1/stores/{store}/records/{key}");
    expect_route("GET", "/healthz", "/healthz");
    expect_route("HEAD", "/readyz", "/readyz");
    expect_route("HEAD", "/metrics", "/metrics");
    expect_route("GET", "/v1/stores/", "/v1/stores/{store}"); /* an empty store: 400 invalid_store, not 404 */
    expect_route("POST", "/v1/stores//push", "/v1/stores/{store}/push");
    static const char *const none[] = {
        "/", "/v1", "/v1/", "/v1/storesx", "/v1/stores/todos/other", "/v1/stores/todos/push/", "/v1/stores/todos/records",
        "/v1/stores/a/b", "/healthz/", "/healthzx", "/metric", "/index.html", "/client/zoosync.js", "",
    };
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) expect_route("GET", none[i], NULL);
}

static void test_params(void **state) {
    (void)state;
    route_match m;
    find("GET", "/v1/stores/todos", &m);
    assert_string_equal(m.store, "todos");
    assert_false(m.store_broken);
    assert_null(m.key);
    assert_false(m.key_broken);
    route_match_free(&m);
    find("GET", "/v1/stores/to%64os/records/a%2Fb%00c", &m);
    assert_string_equal(m.store, "todos");
    assert_false(m.key_broken);
    assert_int_equal(m.klen, 5);
    assert_memory_equal(m.key, "a/b\0c", 5);
    route_match_free(&m);
    find("GET", "/v1/stores/todos/records/x/y", &m); /* an unencoded '/' is a key byte */
    assert_int_equal(m.klen, 3);
    assert_memory_equal(m.key, "x/y", 3);
    route_match_free(&m);
    find("PUT", "/v1/stores/todos/records/%zz", &m);
    assert_non_null(m.def);
    assert_true(m.key_broken);
    assert_null(m.key);
    route_match_free(&m);
    find("GET", "/v1/stores/todos%00other/records/x", &m); /* issue 16: not store "todos" */
    assert_non_null(m.def);
    assert_true(m.store_broken);
    assert_string_equal(m.store, "");
    route_match_free(&m);
    find("GET", "/v1/stores/%4/changes", &m);
    assert_true(m.store_broken);
    route_match_free(&m);
    find("GET", "/v1/stores", &m);
    assert_null(m.store);
    assert_null(m.key);
    route_match_free(&m);
}

/* A path some route has, with a method none of them takes: the 405 and its
 * Allow, from the table. */
static void expect_405(const char *method, const char *path, const char *allow) {
    route_match m;
    find(method, path, &m);
    if (m.def) fail_msg("%s %s: found %s %s", method, path, m.def->method, m.def->pattern);
    assert_non_null(m.path);
    assert_string_equal(m.allow, allow);
    route_match_free(&m);
}

static void test_methods(void **state) {
    (void)state;
    expect_405("POST", "/v1/stores/todos", "GET, PUT, DELETE");
    expect_405("PATCH", "/v1/stores/todos/records/k", "GET, PUT, DELETE");
    expect_405("GET", "/v1/stores/todos/push", "POST");
    expect_405("POST", "/v1/stores/todos/changes", "GET");
    expect_405("POST", "/v1/stores/todos/events", "GET");
    expect_405("DELETE", "/v1/stores", "GET");
    expect_405("POST", "/healthz", "GET, HEAD");
    expect_405("DELETE", "/metrics", "GET, HEAD");
    expect_405("HEAD", "/v1/stores/todos", "GET, PUT, DELETE");
    /* methods are compared whole and case-sensitively */
    expect_405("get", "/v1/stores/todos", "GET, PUT, DELETE");
    expect_405("ET", "/v1/stores/todos", "GET, PUT, DELETE");
    expect_405("GETX", "/v1/stores/todos", "GET, PUT, DELETE");
    /* fuzz: a method that spans two entries of the list was allowed */
    expect_405("PUT, DELETE", "/v1/stores/todos", "GET, PUT, DELETE");
    expect_405("GET, PUT", "/v1/stores/todos", "GET, PUT, DELETE");
    /* fuzz: the empty method was allowed (and read past the end of the list) */
    expect_405("", "/v1/stores/todos", "GET, PUT, DELETE");
    expect_405("", "/healthz", "GET, HEAD");
    route_match m;
    find("", "/nowhere", &m);
    assert_null(m.path);
    assert_string_equal(m.allow, "");
    route_match_free(&m);
}

/* The table's own consistency: every method of a path shares its label
 * and its parameters' meaning; access and flags agree with the path. */
static void test_table(void **state) {
    (void)state;
    size_t n;
    const route_def *t = table(&n);
    assert_true(n > 0);
    for (size_t i = 0; i < n; i++) {
        const route_def *d = &t[i];
        assert_non_null(d->handler);
        assert_non_null(d->label);
        for (size_t j = 0; j < i; j++) {
            if (strcmp(t[j].pattern, d->pattern) != 0) continue;
            if (strcmp(t[j].method, d->method) == 0) fail_msg("%s %s: twice", d->method, d->pattern);
            assert_string_equal(t[j].label, d->label);
        }
        bool store = strstr(d->pattern, "{store}") != NULL, in_api = route_in_api(d->pattern);
        /* a scope names a store; the public routes are the probes, outside
         * the API, and the API's own description inside it */
        if (d->access == ROUTE_READ || d->access == ROUTE_WRITE) assert_true(store);
        if (d->access == ROUTE_PUBLIC && in_api) assert_string_equal(d->pattern, "/v1/openapi.json");
        else assert_true((d->access == ROUTE_PUBLIC) == !in_api);
        assert_true(!!(d->flags & ROUTE_PROBE) == (d->access == ROUTE_PUBLIC && !in_api));
        if (d->flags & (ROUTE_FEED | ROUTE_VIEW | ROUTE_CONFIG)) assert_true(store);
        if (d->flags & ROUTE_STREAM) assert_true(d->flags & ROUTE_FEED);
        /* {key} ends a pattern: it takes the rest of the path */
        const char *k = strstr(d->pattern, "{key}");
        if (k) assert_string_equal(k, "{key}");
        /* the Allow list of every path fits */
        route_match m;
        route_find(t, n, "", d->pattern, &m);
        assert_non_null(m.path);
        assert_non_null(strstr(m.allow, d->method));
        route_match_free(&m);
    }
    assert_true(route_in_api("/v1"));
    assert_true(route_in_api("/v1/"));
    assert_true(route_in_api("/v1/x"));
    assert_false(route_in_api("/v1x"));
    assert_false(route_in_api("/v"));
    assert_false(route_in_api("/healthz"));
}

/* docs/openapi.yaml, next to this file's tree (or $ZOOSYNC_OPENAPI). */
static FILE *open_openapi(char *path, size_t n) {
    const char *env = getenv("ZOOSYNC_OPENAPI");
    if (env) {
        snprintf(path, n, "%s", env);
    } else {
        const char *here = __FILE__, *t = strstr(here, "tests/unit/");
        snprintf(path, n, "%.*sdocs/openapi.yaml", t ? (int)(t - here) : 0, here);
    }
    return fopen(path, "r");
}

#define MAX_OPS 64

/* Every operation of docs/openapi.yaml is a route of the table, and every
 * route an operation: "METHOD /path" both ways. Reads the YAML as its
 * layout writes it: under the top-level "paths:", a path at two spaces of
 * indentation, its methods at four. */
static void test_table_is_openapi(void **state) {
    (void)state;
    char file[4096];
    FILE *f = open_openapi(file, sizeof file);
    if (!f) fail_msg("cannot open %s (set ZOOSYNC_OPENAPI)", file);
    static const char *const verbs[] = {"get", "put", "post", "delete", "patch", "head", "options", "trace"};
    char ops[MAX_OPS][160];
    size_t nops = 0;
    char line[1024], cur[128] = "";
    bool in_paths = false;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] && line[0] != ' ' && line[0] != '#') { in_paths = strcmp(line, "paths:") == 0; continue; }
        if (!in_paths) continue;
        if (strncmp(line, "  /", 3) == 0) {
            size_t len = strcspn(line + 2, ":");
            assert_true(len < sizeof cur);
            snprintf(cur, sizeof cur, "%.*s", (int)len, line + 2);
            continue;
        }
        if (strncmp(line, "    ", 4) != 0 || line[4] == ' ' || !*cur) continue;
        for (size_t v = 0; v < sizeof verbs / sizeof verbs[0]; v++) {
            size_t vl = strlen(verbs[v]);
            if (strncmp(line + 4, verbs[v], vl) != 0 || line[4 + vl] != ':') continue;
            assert_true(nops < MAX_OPS);
            char up[16];
            for (size_t i = 0; i <= vl; i++) up[i] = (char)(verbs[v][i] >= 'a' ? verbs[v][i] - 32 : verbs[v][i]);
            snprintf(ops[nops++], sizeof ops[0], "%s %s", up, cur);
        }
    }
    fclose(f);
    if (nops < 10) fail_msg("%s: only %zu operations read: has its layout changed?", file, nops);
    size_t n;
    const route_def *t = table(&n);
    for (size_t i = 0; i < nops; i++) {
        bool found = false;
        for (size_t r = 0; r < n && !found; r++) {
            char op[160];
            snprintf(op, sizeof op, "%s %s", t[r].method, t[r].pattern);
            found = strcmp(op, ops[i]) == 0;
        }
        if (!found) fail_msg("%s describes %s, which the route table (src/http/api.c) lacks", file, ops[i]);
    }
    for (size_t r = 0; r < n; r++) {
        char op[160];
        snprintf(op, sizeof op, "%s %s", t[r].method, t[r].pattern);
        bool found = false;
        for (size_t i = 0; i < nops && !found; i++) found = strcmp(op, ops[i]) == 0;
        if (!found) fail_msg("the route table (src/http/api.c) has %s, which %s does not describe", op, file);
    }
}

static void test_if_match(void **state) {
    (void)state;
    int64_t v = -1;
    assert_int_equal(route_if_match("\"3\"", &v), 0);
    assert_int_equal(v, 3);
    assert_int_equal(route_if_match("\"0\"", &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(route_if_match("\"9223372036854775807\"", &v), 0);
    assert_true(v == INT64_MAX);
    static const char *const bad[] = {
        "", "\"", "\"\"", "3", "\"3", "3\"", "\"-1\"", "\"3x\"", "\"9223372036854775808\"", "W/\"3\"",
        /* fuzz: strtoll's leniency read these as version 3 */
        "\" 3\"", "\"+3\"", "\"\t3\"", "\"03\"",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (route_if_match(bad[i], &v) == 0) fail_msg("If-Match %s accepted as %lld", bad[i], (long long)v);
}

static void test_etag_listed(void **state) {
    (void)state;
    static const char *const yes[] = {
        "\"3\"", "W/\"3\"", "*", " * ", "\"1\", \"3\"", "\"1\",W/\"3\"", "garbage, \"3\"", "\"3\" ,", ",,\"3\"",
    };
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        if (!route_etag_listed(yes[i], 3)) fail_msg("If-None-Match %s does not list 3", yes[i]);
    static const char *const no[] = {
        "", ",", "\"\"", "3", "\"03\"", "\"30\"", "\"1\", \"4\"", "w/\"3\"", "W/3", "\" 3\"", "\"+3\"", "**", "\"3\"x", "W/ \"3\"",
    };
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        if (route_etag_listed(no[i], 3)) fail_msg("If-None-Match %s taken to list 3", no[i]);
    assert_true(route_etag_listed("\"9223372036854775807\"", INT64_MAX));
}

static void test_limit(void **state) {
    (void)state;
    int l = 0;
    assert_int_equal(route_limit("1", &l), 0);
    assert_int_equal(l, 1);
    assert_int_equal(route_limit("10000", &l), 0);
    assert_int_equal(l, 10000);
    assert_int_equal(route_limit("0500", &l), 0);
    assert_int_equal(l, 500);
    static const char *const bad[] = {
        "", "0", "10001", "-5", "+5", " 5", "5 ", "1e3", "5x", "99999999999999999999",
        /* fuzz: strtol skips any white space, not only ' ' */
        "\t5", "\n5", "\v5",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (route_limit(bad[i], &l) == 0) fail_msg("limit '%s' accepted as %d", bad[i], l);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_find),
        cmocka_unit_test(test_params),
        cmocka_unit_test(test_methods),
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_table_is_openapi),
        cmocka_unit_test(test_if_match),
        cmocka_unit_test(test_etag_listed),
        cmocka_unit_test(test_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

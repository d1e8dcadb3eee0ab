/* Unit tests for src/http/route.c: the /v1 path split with its
 * percent-decoding, the allowed methods, and the If-Match and limit
 * values. Cases found by fuzz/fuzz_route.c are marked "fuzz:". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/route.h"

static void test_parse(void **state) {
    (void)state;
    route r;
    route_parse("/v1/stores", &r);
    assert_int_equal(r.id, R_STORES);
    route_free(&r);
    route_parse("/v1/stores/todos", &r);
    assert_int_equal(r.id, R_STORE);
    assert_string_equal(r.store, "todos");
    route_free(&r);
    route_parse("/v1/stores/todos/push", &r);
    assert_int_equal(r.id, R_PUSH);
    route_free(&r);
    route_parse("/v1/stores/todos/changes", &r);
    assert_int_equal(r.id, R_CHANGES);
    route_free(&r);
    route_parse("/v1/stores/todos/events", &r);
    assert_int_equal(r.id, R_EVENTS);
    route_free(&r);
    route_parse("/v1/stores/todos/records/a%2Fb%00c", &r);
    assert_int_equal(r.id, R_RECORD);
    assert_false(r.key_broken);
    assert_int_equal(r.klen, 5);
    assert_memory_equal(r.key, "a/b\0c", 5);
    route_free(&r);
    route_parse("/v1/stores/todos/records/%zz", &r);
    assert_int_equal(r.id, R_RECORD);
    assert_true(r.key_broken);
    route_free(&r);
    route_parse("/v1/stores/todos%00other/records/x", &r); /* issue 16: not store "todos" */
    assert_true(r.store_broken);
    assert_string_equal(r.store, "");
    route_free(&r);
    route_parse("/v1/storesx", &r);
    assert_int_equal(r.id, R_NONE);
    route_free(&r);
    route_parse("/v1/stores/todos/other", &r);
    assert_int_equal(r.id, R_NONE);
    route_free(&r);
}

static void test_methods(void **state) {
    (void)state;
    assert_true(route_method_allowed(R_STORES, "GET"));
    assert_true(route_method_allowed(R_STORE, "GET"));
    assert_true(route_method_allowed(R_STORE, "PUT"));
    assert_true(route_method_allowed(R_STORE, "DELETE"));
    assert_true(route_method_allowed(R_PUSH, "POST"));
    assert_false(route_method_allowed(R_PUSH, "GET"));
    assert_false(route_method_allowed(R_STORE, "POST"));
    assert_false(route_method_allowed(R_STORE, "ET"));
    assert_false(route_method_allowed(R_STORE, "GETX"));
    assert_false(route_method_allowed(R_STORE, "get"));
    assert_false(route_method_allowed(R_NONE, "GET"));
    /* fuzz: a method that spans two entries of the list was allowed */
    assert_false(route_method_allowed(R_STORE, "PUT, DELETE"));
    assert_false(route_method_allowed(R_STORE, "GET, PUT"));
    /* fuzz: the empty method was allowed on R_NONE and read past the end
     * of the list on every other route (ASan: global-buffer-overflow) */
    for (route_id id = R_NONE; id <= R_STATIC; id++) assert_false(route_method_allowed(id, ""));
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
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_methods),
        cmocka_unit_test(test_if_match),
        cmocka_unit_test(test_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

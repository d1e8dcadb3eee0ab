/* Unit tests for src/cache/store_schema.c: a cache is an object of its
 * own (two caches share nothing), the same text compiles once per cache,
 * idle entries are kept up to STORE_SCHEMA_IDLE_MAX, references outlive
 * an unref by others, and store_cfg_parse takes its schema from the cache
 * it is given. Run under ASan too (make unit): a cache freed with every
 * reference dropped leaves nothing behind. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cache/store_cfg.h"
#include "cache/store_schema.h"
#include "util/err.h"

static const char S1[] = "{\"type\":\"object\"}";
static const char S2[] = "{\"type\":\"string\"}";

static void assert_stats(store_schema_cache *c, size_t entries, unsigned long long compiles) {
    size_t e = 99;
    unsigned long long n = 99;
    store_schema_cache_stats(c, &e, &n);
    assert_int_equal(e, entries);
    assert_int_equal(n, compiles);
}

static store_schema *get_ok(store_schema_cache *c, const char *text, size_t len) {
    store_schema *s = NULL;
    char err[256] = "";
    assert_int_equal(store_schema_get(c, text, len, &s, err, sizeof err), 0);
    assert_non_null(s);
    return s;
}

static void test_empty(void **state) {
    (void)state;
    store_schema_cache *c = store_schema_cache_new();
    assert_non_null(c);
    assert_stats(c, 0, 0);
    store_schema_cache_stats(c, NULL, NULL); /* either output may be left out */
    store_schema_cache_free(c);
    store_schema_cache_free(NULL);
}

static void test_same_text_compiled_once(void **state) {
    (void)state;
    store_schema_cache *c = store_schema_cache_new();
    store_schema *a = get_ok(c, S1, strlen(S1));
    store_schema *b = get_ok(c, S1, strlen(S1));
    assert_ptr_equal(a, b);
    assert_stats(c, 1, 1);
    size_t n = 0;
    assert_memory_equal(store_schema_text(a, &n), S1, strlen(S1));
    assert_int_equal(n, strlen(S1));
    assert_non_null(store_schema_program(a));
    store_schema *d = get_ok(c, S2, strlen(S2));
    assert_ptr_not_equal(a, d);
    assert_stats(c, 2, 2);
    store_schema_unref(a);
    store_schema_unref(b);
    store_schema_unref(d);
    /* idle entries stay cached: no compilation when the text comes back */
    assert_stats(c, 2, 2);
    store_schema *again = get_ok(c, S1, strlen(S1));
    assert_stats(c, 2, 2);
    store_schema_unref(again);
    store_schema_cache_free(c);
}

static void test_caches_are_apart(void **state) {
    (void)state;
    store_schema_cache *c1 = store_schema_cache_new();
    store_schema_cache *c2 = store_schema_cache_new();
    store_schema *a = get_ok(c1, S1, strlen(S1));
    store_schema *b = get_ok(c2, S1, strlen(S1));
    assert_ptr_not_equal(a, b); /* each cache compiled its own */
    assert_stats(c1, 1, 1);
    assert_stats(c2, 1, 1);
    store_schema_unref(a);
    store_schema_cache_free(c1); /* c2 and its entry unaffected */
    assert_non_null(store_schema_program(b));
    store_schema *b2 = get_ok(c2, S1, strlen(S1));
    assert_ptr_equal(b, b2);
    assert_stats(c2, 1, 1);
    store_schema_unref(b);
    store_schema_unref(b2);
    store_schema_cache_free(c2);
}

static void test_ref_outlives_unref(void **state) {
    (void)state;
    store_schema_cache *c = store_schema_cache_new();
    store_schema *a = get_ok(c, S1, strlen(S1));
    store_schema *b = store_schema_ref(a);
    assert_ptr_equal(a, b);
    assert_null(store_schema_ref(NULL));
    store_schema_unref(NULL);
    store_schema_unref(a);
    /* b still holds it: many other idle entries do not evict it */
    char text[64];
    for (int i = 0; i < STORE_SCHEMA_IDLE_MAX + 10; i++) {
        int n = snprintf(text, sizeof text, "{\"maxLength\":%d}", i);
        store_schema_unref(get_ok(c, text, (size_t)n));
    }
    size_t n = 0;
    assert_memory_equal(store_schema_text(b, &n), S1, strlen(S1));
    store_schema_unref(b);
    store_schema_cache_free(c);
}

static void test_idle_cap(void **state) {
    (void)state;
    store_schema_cache *c = store_schema_cache_new();
    char text[64];
    int total = STORE_SCHEMA_IDLE_MAX * 2;
    for (int i = 0; i < total; i++) {
        int n = snprintf(text, sizeof text, "{\"minLength\":%d}", i);
        store_schema_unref(get_ok(c, text, (size_t)n));
    }
    /* each new entry is referenced while it is inserted: the cap holds
     * the idle ones before it, plus the newest */
    size_t e = 0;
    unsigned long long compiles = 0;
    store_schema_cache_stats(c, &e, &compiles);
    assert_int_equal(compiles, (unsigned long long)total);
    assert_true(e <= STORE_SCHEMA_IDLE_MAX + 1);
    assert_true(e >= STORE_SCHEMA_IDLE_MAX);
    store_schema_cache_free(c);
}

static void test_refusals(void **state) {
    (void)state;
    store_schema_cache *c = store_schema_cache_new();
    store_schema *s = NULL;
    char err[256] = "";
    const char bad[] = "{\"type\":12}";
    assert_int_equal(store_schema_get(c, bad, strlen(bad), &s, err, sizeof err), -1);
    assert_true(err[0] != '\0');
    err[0] = '\0';
    const char nul[] = "{\"a\":\0}";
    assert_int_equal(store_schema_get(c, nul, sizeof nul - 1, &s, err, sizeof err), -1);
    assert_true(err[0] != '\0');
    assert_null(s);
    assert_stats(c, 0, 0);
    store_schema_cache_free(c);
}

static void test_store_cfg_parse_uses_the_cache(void **state) {
    (void)state;
    store_schema_cache *c = store_schema_cache_new();
    const char data[] = "{\"conflict\":\"lww\",\"schema\":{\"type\": \"object\"}}";
    store_cfg a, b;
    char why[ZS_ERRLEN] = "";
    assert_int_equal(store_cfg_parse(&a, c, "s", data, (int)strlen(data), -1, why, sizeof why), 0);
    assert_int_equal(store_cfg_parse(&b, c, "s", data, (int)strlen(data), -1, why, sizeof why), 0);
    assert_string_equal(why, ""); /* untouched on success */
    assert_true(a.lww);
    assert_non_null(a.schema);
    assert_ptr_equal(a.schema, b.schema); /* one compilation, keyed by the compact text */
    size_t n = 0;
    assert_memory_equal(store_schema_text(a.schema, &n), S1, strlen(S1));
    assert_stats(c, 1, 1);
    store_cfg copy;
    store_cfg_copy(&copy, &a);
    store_cfg_release(&a);
    store_cfg_release(&b);
    assert_null(a.schema);
    assert_non_null(store_schema_program(copy.schema));
    store_cfg_release(&copy);
    const char bad[] = "{\"schema\":{\"type\":12}}";
    assert_int_equal(store_cfg_parse(&a, c, "s", bad, (int)strlen(bad), -1, why, sizeof why), -2);
    assert_string_equal(why, "schema: not a schema this gateway compiles");
    assert_null(a.schema);
    store_schema_cache_free(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_same_text_compiled_once),
        cmocka_unit_test(test_caches_are_apart),
        cmocka_unit_test(test_ref_outlives_unref),
        cmocka_unit_test(test_idle_cap),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_store_cfg_parse_uses_the_cache),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

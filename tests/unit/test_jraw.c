/* jraw: validation and compact form of JSON text, and walking it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "util/jraw.h"

static char *compact(const char *in, size_t n, jraw_err *e) {
    sbuf b = SBUF_INIT;
    if (jraw_compact(in, n, &b, e) < 0) { sbuf_free(&b); return NULL; }
    return sbuf_steal(&b, NULL);
}

static void expect(const char *in, const char *want) {
    jraw_err e;
    char *got = compact(in, strlen(in), &e);
    if (!got) fail_msg("'%s' refused: %s", in, e.text);
    assert_string_equal(got, want);
    free(got);
}

static void refuse(const char *in, size_t n) {
    jraw_err e;
    char *got = compact(in, n, &e);
    if (got) fail_msg("'%.*s' accepted as '%s'", (int)n, in, got);
    assert_non_null(e.text);
}
#define REFUSE(s) refuse(s, sizeof(s) - 1)

static void test_numbers_kept_exactly(void **state) {
    (void)state;
    expect("0.1", "0.1");
    expect(" 3.14159 ", "3.14159");
    expect("1e2", "1e2");
    expect("-0", "-0");
    expect("123456789012345678901234567890", "123456789012345678901234567890");
    expect("[1.5e300, 2E-7, -0.0]", "[1.5e300,2E-7,-0.0]");
}

static void test_whitespace_removed(void **state) {
    (void)state;
    expect("{ \"a\" : [ 1 , 2 ] ,\n\t\"b\" : { } , \"c\":[ ] }", "{\"a\":[1,2],\"b\":{},\"c\":[]}");
    expect("  true ", "true");
    expect("null", "null");
    expect("\"x y\"", "\"x y\"");
}

static void test_strings_minimally_escaped(void **state) {
    (void)state;
    expect("\"\\u00e9\\u4e2d\"", "\"\xc3\xa9\xe4\xb8\xad\"");             /* non-ASCII raw */
    expect("\"\\/\\\"\\\\\"", "\"/\\\"\\\\\"");                           /* \/ is just / */
    expect("\"\\ud83d\\ude00\"", "\"\xf0\x9f\x98\x80\"");                 /* surrogate pair */
    expect("\"a\\u0000b\\u001f\\n\"", "\"a\\u0000b\\u001f\\n\"");        /* controls stay escaped */
    expect("\"\xc3\xa9\"", "\"\xc3\xa9\"");
}

static void test_refused(void **state) {
    (void)state;
    REFUSE("");
    REFUSE("   ");
    REFUSE("{");
    REFUSE("[1,]");
    REFUSE("{\"a\":1,}");
    REFUSE("{\"a\" 1}");
    REFUSE("{1:2}");
    REFUSE("01");
    REFUSE("1.");
    REFUSE("1e");
    REFUSE("+1");
    REFUSE(".5");
    REFUSE("tru");
    REFUSE("nul");
    REFUSE("[1] 2");
    REFUSE("\"abc");
    REFUSE("\"a\nb\"");          /* raw control character */
    REFUSE("\"\\x\"");
    REFUSE("\"\\ud800\"");       /* lone high surrogate */
    REFUSE("\"\\udc00\"");       /* lone low surrogate */
    REFUSE("\"\\ud800\\u0041\"");
    REFUSE("\"\xc0\xaf\"");      /* overlong */
    REFUSE("\"\xed\xa0\x80\"");  /* UTF-8 surrogate */
    REFUSE("\"\xff\"");
    REFUSE("\"\xe4\xb8\"");      /* truncated */
    refuse("[1,\0 2]", 6);       /* NUL byte */
    REFUSE("{\"a\":1,\"a\":2}");                  /* duplicate keys */
    REFUSE("[{\"x\":{},\"y\":[{\"k\":1,\"k\":1}]}]"); /* nested */
    REFUSE("{\"\\u0061\":1,\"a\":2}");          /* same key, one escaped */
}

static void test_same_keys_in_different_objects(void **state) {
    (void)state;
    expect("{\"a\":{\"a\":1},\"b\":[{\"a\":1},{\"a\":2}]}", "{\"a\":{\"a\":1},\"b\":[{\"a\":1},{\"a\":2}]}");
    expect("{\"ab\":1,\"a\":2,\"b\":3}", "{\"ab\":1,\"a\":2,\"b\":3}");
}

static void test_error_position(void **state) {
    (void)state;
    jraw_err e;
    assert_null(compact("{\n  \"a\": tru\n}", 14, &e));
    assert_int_equal(e.line, 2);
    assert_int_equal(e.column, 8);
}

static void test_depth_limit(void **state) {
    (void)state;
    size_t n = 100000;
    char *deep = malloc(2 * n);
    for (size_t i = 0; i < n; i++) { deep[i] = '['; deep[2 * n - 1 - i] = ']'; }
    jraw_err e;
    assert_null(compact(deep, 2 * n, &e));
    assert_string_equal(e.text, "nesting too deep");
    /* exactly the limit is fine */
    size_t k = JRAW_MAX_DEPTH;
    for (size_t i = 0; i < k; i++) { deep[i] = '['; deep[2 * k - 1 - i] = ']'; }
    char *ok = compact(deep, 2 * k, &e);
    assert_non_null(ok);
    free(ok);
    free(deep);
}

static void test_walk(void **state) {
    (void)state;
    jraw_err e;
    const char *in = "{\"client\":\"c\",\"mutations\":[{\"id\":1,\"value\":{\"a\":[1,\"]\"]}},{\"id\":-2}],\"x\":\"a\\\"b\"}";
    char *t = compact(in, strlen(in), &e);
    assert_non_null(t);
    const char *it = t + 1;
    jraw_span k, v;
    assert_true(jraw_next_member(&it, &k, &v));
    assert_true(jraw_key_is(k, "client"));
    assert_int_equal(v.n, 3);
    assert_true(jraw_next_member(&it, &k, &v));
    assert_true(jraw_key_is(k, "mutations"));
    const char *jt = v.p + 1;
    jraw_span el, mk, mv;
    assert_true(jraw_next_elem(&jt, &el));
    const char *kt = el.p + 1;
    assert_true(jraw_next_member(&kt, &mk, &mv));
    long long x;
    assert_true(jraw_int(mv, &x));
    assert_int_equal(x, 1);
    assert_true(jraw_next_member(&kt, &mk, &mv));
    assert_true(jraw_key_is(mk, "value"));
    assert_memory_equal(mv.p, "{\"a\":[1,\"]\"]}", mv.n);
    assert_false(jraw_next_member(&kt, &mk, &mv));
    assert_true(jraw_next_elem(&jt, &el));
    assert_false(jraw_next_elem(&jt, &el));
    assert_true(jraw_next_member(&it, &k, &v));
    sbuf s = SBUF_INIT;
    assert_true(jraw_string(v, &s));
    assert_string_equal(s.buf, "a\"b");
    sbuf_free(&s);
    assert_false(jraw_next_member(&it, &k, &v));
    free(t);
}

static void test_int(void **state) {
    (void)state;
    long long x;
    jraw_span s = {"9223372036854775807", 19};
    assert_true(jraw_int(s, &x));
    assert_true(x == 9223372036854775807LL);
    jraw_span big = {"9223372036854775808", 19}, fr = {"1.0", 3}, ex = {"1e3", 3}, str = {"\"1\"", 3};
    assert_false(jraw_int(big, &x));
    /* fuzz (fuzz_jraw against jansson): the smallest int64 was refused */
    jraw_span min = {"-9223372036854775808", 20}, below = {"-9223372036854775809", 20}, neg = {"-42", 3};
    assert_true(jraw_int(min, &x));
    assert_true(x == INT64_MIN);
    assert_false(jraw_int(below, &x));
    assert_true(jraw_int(neg, &x));
    assert_true(x == -42);
    assert_false(jraw_int(fr, &x));
    assert_false(jraw_int(ex, &x));
    assert_false(jraw_int(str, &x));
}

static void test_string_decode_nul(void **state) {
    (void)state;
    jraw_err e;
    char *t = compact("\"a\\u0000b\"", 10, &e);
    jraw_span v = {t, strlen(t)};
    sbuf s = SBUF_INIT;
    assert_true(jraw_string(v, &s));
    assert_int_equal(s.len, 3);
    assert_memory_equal(s.buf, "a\0b", 3);
    sbuf_free(&s);
    free(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numbers_kept_exactly), cmocka_unit_test(test_whitespace_removed),
        cmocka_unit_test(test_strings_minimally_escaped), cmocka_unit_test(test_refused),
        cmocka_unit_test(test_error_position), cmocka_unit_test(test_same_keys_in_different_objects), cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_walk), cmocka_unit_test(test_int), cmocka_unit_test(test_string_decode_nul),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

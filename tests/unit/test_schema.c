/* schema: what the official suite (tests/unit/schema_suite.c) does not cover:
 * exact numbers, error paths, limits, refusals, $id references, threads. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/schema.h"

static schema_t *compile_lim(const char *json, const schema_limits *lim) {
    schema_t *s = NULL;
    char err[512];
    if (schema_compile(json, strlen(json), lim, &s, err, sizeof err) < 0) fail_msg("refused %s: %s", json, err);
    return s;
}
static schema_t *compile(const char *json) { return compile_lim(json, NULL); }

/* The compile error, which must happen. */
static void refused(const char *json, const char *want1, const char *want2) {
    schema_t *s = NULL;
    char err[512];
    if (schema_compile(json, strlen(json), NULL, &s, err, sizeof err) == 0) {
        schema_free(s);
        fail_msg("accepted %s", json);
    }
    assert_null(s);
    if (want1 && !strstr(err, want1)) fail_msg("%s: '%s' lacks '%s'", json, err, want1);
    if (want2 && !strstr(err, want2)) fail_msg("%s: '%s' lacks '%s'", json, err, want2);
}

static int check(const schema_t *s, const char *v) { return schema_validate(s, v, strlen(v), NULL); }

static void valid(const char *schema, const char *v) {
    schema_t *s = compile(schema);
    schema_errors e = SCHEMA_ERRORS_INIT;
    int r = schema_validate(s, v, strlen(v), &e);
    if (r != SCHEMA_VALID)
        fail_msg("%s against %s: %d %s %s", v, schema, r, e.count ? e.e[0].keyword : "",
                 e.count ? e.e[0].message : "");
    assert_int_equal(check(s, v), SCHEMA_VALID);
    schema_errors_free(&e);
    schema_free(s);
}

/* Invalid, with the first error's keyword and path. */
static void invalid(const char *schema, const char *v, const char *kw, const char *path) {
    schema_t *s = compile(schema);
    schema_errors e = SCHEMA_ERRORS_INIT;
    int r = schema_validate(s, v, strlen(v), &e);
    if (r != SCHEMA_INVALID) fail_msg("%s against %s: %d, want invalid", v, schema, r);
    assert_true(e.count >= 1);
    if (kw && strcmp(e.e[0].keyword, kw)) fail_msg("%s: keyword %s, want %s (%s)", v, e.e[0].keyword, kw, e.e[0].message);
    if (path && strcmp(e.e[0].path, path)) fail_msg("%s: path '%s', want '%s'", v, e.e[0].path, path);
    assert_int_equal(check(s, v), SCHEMA_INVALID);
    schema_errors_free(&e);
    schema_free(s);
}

static void test_big_numbers_exact(void **state) {
    (void)state;
    const char *s = "{\"maximum\":18446744073709551615}";
    valid(s, "18446744073709551615");
    valid(s, "18446744073709551614.999999999999999999999");
    invalid(s, "18446744073709551616", "maximum", "");
    invalid(s, "18446744073709551615.000000000000000000001", "maximum", "");
    /* a double would round both to 0.3 */
    invalid("{\"maximum\":0.3}", "0.30000000000000001", "maximum", "");
    valid("{\"maximum\":0.3}", "0.3000000000000000000");
    valid("{\"minimum\":1e400}", "10e399");
    invalid("{\"exclusiveMinimum\":1e400}", "1E+400", "exclusiveMinimum", "");
    invalid("{\"minimum\":-1e-400}", "-2e-400", "minimum", "");
    valid("{\"type\":\"integer\"}", "123456789012345678901234567890123456789");
    valid("{\"type\":\"integer\"}", "1.0");
    valid("{\"type\":\"integer\"}", "1.5e1");
    valid("{\"type\":\"integer\"}", "-0.0");
    invalid("{\"type\":\"integer\"}", "1.5", "type", "");
    invalid("{\"type\":\"integer\"}", "12345678901234567890.5", "type", "");
    valid("{\"const\":100}", "1e2");
    valid("{\"const\":0}", "-0.000e7");
    valid("{\"enum\":[1.10, \"x\"]}", "1.1");
    invalid("{\"const\":9007199254740993}", "9007199254740992", "const", "");
    /* a count as a big number: saturates, never wraps */
    valid("{\"maxLength\":99999999999999999999999}", "\"abc\"");
    invalid("{\"minItems\":1e30}", "[1]", "minItems", "");
}

static void test_multiple_of_decimal(void **state) {
    (void)state;
    valid("{\"multipleOf\":0.1}", "0.3");
    valid("{\"multipleOf\":0.1}", "12345678901234567890.7");
    invalid("{\"multipleOf\":0.1}", "0.30000000000000004", "multipleOf", "");
    valid("{\"multipleOf\":0.01}", "19.99");
    invalid("{\"multipleOf\":0.01}", "19.999", "multipleOf", "");
    valid("{\"multipleOf\":1e-8}", "1e-7");
}

static void test_multiple_of_exact(void **state) {
    (void)state;
    valid("{\"multipleOf\":0.0001}", "0.0075");
    invalid("{\"multipleOf\":3}", "1e30", "multipleOf", "");
    valid("{\"multipleOf\":3}", "3e30");
    valid("{\"multipleOf\":2.5}", "1e1000000000");
    invalid("{\"multipleOf\":7}", "1e1000000", "multipleOf", "");
    valid("{\"multipleOf\":7}", "7e1000000");
}

static void test_multiple_of_big_divisor(void **state) {
    (void)state;
    /* 123456789012345678901234567890 * 98765432109876543210987 */
    const char *s = "{\"multipleOf\":123456789012345678901234567890}";
    valid(s, "12193263113702179522618422492992648986186782045407430");
    invalid(s, "12193263113702179522618422492992648986186782045407431", "multipleOf", "");
    valid(s, "0");
    valid(s, "1234567890123456789012345678900000");
    valid("{\"multipleOf\":1.23456789012345678901234567890}", "2.4691357802469135780246913578");
    /* 10^200000 mod a 30-digit divisor: more steps than allowed */
    schema_limits lim = {0, 0, 100000};
    schema_t *t = compile_lim("{\"multipleOf\":123456789012345678901234567891}", &lim);
    schema_errors e = SCHEMA_ERRORS_INIT;
    assert_int_equal(schema_validate(t, "1e200000", 8, &e), SCHEMA_INVALID);
    assert_string_equal(e.e[0].keyword, "budget");
    schema_errors_free(&e);
    schema_free(t);
}

static void test_strings_code_points(void **state) {
    (void)state;
    valid("{\"maxLength\":2}", "\"\xc3\xa9\xf0\x9f\x98\x80\"");
    invalid("{\"maxLength\":1}", "\"\xc3\xa9\xf0\x9f\x98\x80\"", "maxLength", "");
    valid("{\"minLength\":2,\"maxLength\":2}", "\"\\u00e9\\ud83d\\ude00\"");
}

static void test_json_equality(void **state) {
    (void)state;
    invalid("{\"uniqueItems\":true}", "[1,2,1.0]", "uniqueItems", "");
    invalid("{\"uniqueItems\":true}", "[{\"a\":1,\"b\":[2]},{\"b\":[2.00],\"a\":1}]", "uniqueItems", "");
    valid("{\"uniqueItems\":true}", "[{\"a\":1},{\"a\":1,\"b\":1},[1],[1,1],\"1\",1,true,null]");
    valid("{\"const\":{\"x\":[1,{\"y\":null}],\"z\":\"s\"}}", "{\"z\":\"s\",\"x\":[1.0,{\"y\":null}]}");
    invalid("{\"const\":{\"x\":1}}", "{\"x\":1,\"y\":1}", "const", "");
    valid("{\"enum\":[[0]]}", "[-0]");
    invalid("{\"enum\":[false]}", "0", "enum", "");
}

static void test_error_paths(void **state) {
    (void)state;
    const char *s = "{\"properties\":{\"a/b\":{\"items\":{\"type\":\"string\"}},\"t~\":{\"required\":[\"q\"]}},"
                    "\"additionalProperties\":false}";
    invalid(s, "{\"a/b\":[\"x\",1]}", "type", "/a~1b/1");
    invalid(s, "{\"t~\":{}}", "required", "/t~0");
    invalid(s, "{\"zz\":1}", "additionalProperties", "/zz");

    /* several errors, the first ones in document order, capped */
    schema_t *t = compile("{\"items\":{\"type\":\"integer\",\"minimum\":0}}");
    schema_errors e = SCHEMA_ERRORS_INIT;
    const char *v = "[1,\"a\",-1,2.5,-3,\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\"]";
    assert_int_equal(schema_validate(t, v, strlen(v), &e), SCHEMA_INVALID);
    assert_int_equal(e.count, 10);
    assert_string_equal(e.e[0].path, "/1");
    assert_string_equal(e.e[0].keyword, "type");
    assert_string_equal(e.e[1].path, "/2");
    assert_string_equal(e.e[1].keyword, "minimum");
    assert_string_equal(e.e[2].path, "/3");
    assert_string_equal(e.e[3].path, "/4");
    sbuf b = SBUF_INIT;
    schema_errors_json(&e, &b);
    assert_non_null(strstr(b.buf, "[{\"path\":\"/1\",\"keyword\":\"type\",\"message\":\"expected integer, got string\"}"));
    sbuf_free(&b);
    schema_errors_free(&e);
    schema_errors two = SCHEMA_ERRORS_INIT;
    two.max = 2;
    assert_int_equal(schema_validate(t, v, strlen(v), &two), SCHEMA_INVALID);
    assert_int_equal(two.count, 2);
    schema_errors_free(&two);
    schema_free(t);

    /* not JSON */
    t = compile("true");
    schema_errors j = SCHEMA_ERRORS_INIT;
    assert_int_equal(schema_validate(t, "[1,", 3, &j), SCHEMA_ERROR);
    assert_string_equal(j.e[0].keyword, "json");
    schema_errors_free(&j);
    assert_int_equal(schema_validate(t, "{\"a\":1,\"a\":2}", 13, NULL), SCHEMA_ERROR);
    assert_int_equal(schema_validate(t, "\"\\ud800\"", 8, NULL), SCHEMA_ERROR);
    schema_free(t);
}

static void test_budget(void **state) {
    (void)state;
    schema_limits lim = {0, 0, 200};
    schema_t *s = compile_lim("{\"items\":{\"type\":\"integer\"}}", &lim);
    sbuf b = SBUF_INIT;
    sbuf_putc(&b, '[');
    for (int i = 0; i < 1000; i++) sbuf_printf(&b, "%s%d", i ? "," : "", i);
    sbuf_putc(&b, ']');
    schema_errors e = SCHEMA_ERRORS_INIT;
    assert_int_equal(schema_validate(s, b.buf, b.len, &e), SCHEMA_INVALID);
    assert_int_equal(e.count, 1);
    assert_string_equal(e.e[0].keyword, "budget");
    schema_errors_free(&e);
    schema_free(s);
    /* a limit is never a pass, not even under "not" */
    s = compile_lim("{\"not\":{\"items\":{\"type\":\"integer\"}}}", &lim);
    assert_int_equal(schema_validate(s, b.buf, b.len, NULL), SCHEMA_INVALID);
    schema_free(s);
    /* the default budget takes a large value */
    s = compile("{\"items\":{\"type\":\"integer\"},\"uniqueItems\":true}");
    assert_int_equal(schema_validate(s, b.buf, b.len, NULL), SCHEMA_VALID);
    schema_free(s);
    sbuf_free(&b);

    /* a catastrophic regex hits PCRE2's match limit, quickly */
    s = compile("{\"pattern\":\"^(a+)+$\"}");
    e = (schema_errors)SCHEMA_ERRORS_INIT;
    const char *v = "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!\"";
    assert_int_equal(schema_validate(s, v, strlen(v), &e), SCHEMA_INVALID);
    assert_string_equal(e.e[0].keyword, "budget");
    schema_errors_free(&e);
    s = (schema_free(s), compile("{\"not\":{\"pattern\":\"^(a+)+$\"}}"));
    assert_int_equal(schema_validate(s, v, strlen(v), NULL), SCHEMA_INVALID);
    schema_free(s);
}

static char *nested(int depth, const char *open, const char *mid, const char *close) {
    sbuf b = SBUF_INIT;
    for (int i = 0; i < depth; i++) sbuf_puts(&b, open);
    sbuf_puts(&b, mid);
    for (int i = 0; i < depth; i++) sbuf_puts(&b, close);
    return sbuf_steal(&b, NULL);
}

static void test_depth(void **state) {
    (void)state;
    /* values as deep as the gateway keeps them are fine, deeper is not JSON here */
    schema_t *s = compile("{\"items\":{\"$ref\":\"#\"},\"type\":\"array\"}");
    char *v = nested(SCHEMA_MAX_VALUE_DEPTH - 1, "[", "[]", "]");
    assert_int_equal(schema_validate(s, v, strlen(v), NULL), SCHEMA_VALID);
    free(v);
    v = nested(SCHEMA_MAX_VALUE_DEPTH + 5, "[", "", "]");
    schema_errors e = SCHEMA_ERRORS_INIT;
    assert_int_equal(schema_validate(s, v, strlen(v), &e), SCHEMA_ERROR);
    assert_string_equal(e.e[0].keyword, "json");
    schema_errors_free(&e);
    free(v);
    schema_free(s);

    /* schema text nesting */
    char *deep = nested(SCHEMA_MAX_SCHEMA_DEPTH + 1, "{\"not\":", "true", "}");
    refused(deep, "too deep", NULL);
    free(deep);

    /* a chain of same-value references longer than the evaluation depth */
    sbuf b = SBUF_INIT;
    sbuf_puts(&b, "{\"$ref\":\"#/definitions/d0\",\"definitions\":{");
    for (int i = 0; i < SCHEMA_MAX_EVAL_DEPTH + 10; i++)
        sbuf_printf(&b, "\"d%d\":{\"allOf\":[{\"$ref\":\"#/definitions/d%d\"}]},", i, i + 1);
    sbuf_printf(&b, "\"d%d\":true}}", SCHEMA_MAX_EVAL_DEPTH + 10);
    s = compile(b.buf);
    e = (schema_errors)SCHEMA_ERRORS_INIT;
    assert_int_equal(schema_validate(s, "1", 1, &e), SCHEMA_INVALID);
    assert_string_equal(e.e[0].keyword, "depth");
    schema_errors_free(&e);
    schema_free(s);
    sbuf_free(&b);
}

static void test_ref_cycles(void **state) {
    (void)state;
    refused("{\"$ref\":\"#\"}", "$ref", "cycle");
    refused("{\"definitions\":{\"a\":{\"$ref\":\"#/definitions/b\"},\"b\":{\"$ref\":\"#/definitions/a\"}},"
            "\"properties\":{\"p\":{\"$ref\":\"#/definitions/a\"}}}",
            "cycle", "/definitions/");
    refused("{\"anyOf\":[{\"type\":\"string\"},{\"$ref\":\"#\"}]}", "cycle", "/anyOf/1");
    refused("{\"not\":{\"$ref\":\"#\"}}", "cycle", NULL);
    /* a cycle that goes down the value is fine, and bounded by its depth */
    valid("{\"properties\":{\"x\":{\"$ref\":\"#\"}},\"additionalProperties\":false}", "{\"x\":{\"x\":{}}}");
    invalid("{\"properties\":{\"x\":{\"$ref\":\"#\"}},\"additionalProperties\":false}", "{\"x\":{\"y\":1}}",
            "additionalProperties", "/x/y");
}

static void test_later_drafts_refused(void **state) {
    (void)state;
    static const char *kws[] = {"$defs", "prefixItems", "unevaluatedProperties", "unevaluatedItems",
                                "dependentRequired", "dependentSchemas", "$anchor", "$recursiveRef",
                                "$dynamicRef", "minContains", "maxContains", "$vocabulary"};
    for (size_t i = 0; i < sizeof kws / sizeof *kws; i++) {
        char s[256];
        snprintf(s, sizeof s, "{\"properties\":{\"a\":{\"type\":\"object\",\"%s\":{}}}}", kws[i]);
        refused(s, kws[i], "\"/properties/a\"");
    }
    refused("{\"items\":[{\"$defs\":{}}]}", "$defs", "/items/0");
    refused("{\"$ref\":\"#/definitions/x\",\"definitions\":{\"x\":{\"unevaluatedItems\":false}}}", "unevaluatedItems",
            "/definitions/x");
    refused("{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\"}", "$schema", NULL);
    refused("{\"$schema\":\"http://json-schema.org/draft-04/schema#\"}", "$schema", NULL);
    /* not keywords where they stand: property names, values */
    valid("{\"properties\":{\"$defs\":{\"type\":\"integer\"}},\"enum\":[{\"prefixItems\":1},{\"$defs\":1}]}",
          "{\"$defs\":1}");
    valid("{\"$schema\":\"http://json-schema.org/draft-07/schema#\",\"foo\":{\"$defs\":1},\"x-bar\":[1]}", "1");
}

static void test_refs(void **state) {
    (void)state;
    refused("{\"$ref\":\"http://example.com/other.json\"}", "$ref", "not in this schema");
    refused("{\"properties\":{\"a\":{\"$ref\":\"other.json#/x\"}}}", "/properties/a", "other.json");
    refused("{\"$ref\":\"#/definitions/missing\"}", "$ref", "points to nothing");
    refused("{\"$ref\":\"#nowhere\"}", "$ref", NULL);
    /* the draft-07 meta-schema is known */
    const char *m = "{\"$ref\":\"http://json-schema.org/draft-07/schema#\"}";
    valid(m, "{\"type\":\"string\",\"properties\":{\"a\":{\"minimum\":1}}}");
    invalid(m, "{\"type\":\"strin\"}", NULL, "/type");
    invalid(m, "{\"properties\":{\"a\":{\"minLength\":-1}}}", NULL, "/properties/a/minLength");
    valid("{\"properties\":{\"n\":{\"$ref\":\"http://json-schema.org/draft-07/schema#/definitions/nonNegativeInteger\"}}}",
          "{\"n\":3}");
    /* $id: plain-name fragments, relative URIs against the base, pointers with escapes */
    const char *a = "{\"allOf\":[{\"$ref\":\"#foo\"}],\"definitions\":{\"A\":{\"$id\":\"#foo\",\"type\":\"integer\"}}}";
    valid(a, "1");
    invalid(a, "\"x\"", "type", "");
    const char *r = "{\"$id\":\"http://example.com/a/root.json\",\"properties\":{\"p\":{\"$ref\":\"item.json\"},"
                    "\"q\":{\"$ref\":\"../a/item.json#/properties/v\"}},"
                    "\"definitions\":{\"i\":{\"$id\":\"item.json\",\"type\":\"object\",\"properties\":{\"v\":{\"type\":\"string\"}}}}}";
    valid(r, "{\"p\":{\"v\":\"s\"},\"q\":\"t\"}");
    invalid(r, "{\"p\":{\"v\":1}}", "type", "/p/v");
    invalid(r, "{\"q\":1}", "type", "/q");
    /* $ref ignores a sibling $id (draft-07) */
    const char *sib = "{\"$id\":\"http://example.com/s/base/\",\"definitions\":{"
                      "\"foo\":{\"$id\":\"http://example.com/s/foo.json\",\"type\":\"string\"},"
                      "\"base_foo\":{\"$id\":\"foo.json\",\"type\":\"number\"}},"
                      "\"allOf\":[{\"$id\":\"http://example.com/s/\",\"$ref\":\"foo.json\"}]}";
    valid(sib, "1");
    invalid(sib, "\"a\"", "type", "");
    /* JSON pointers: ~0 ~1 and percent-encoding, array indexes */
    const char *p = "{\"definitions\":{\"a~b/c d\":{\"type\":\"null\"}},\"x-l\":[{\"type\":\"boolean\"}],"
                    "\"properties\":{\"x\":{\"$ref\":\"#/definitions/a~0b~1c%20d\"},\"y\":{\"$ref\":\"#/x-l/0\"}}}";
    valid(p, "{\"x\":null,\"y\":true}");
    invalid(p, "{\"x\":1}", "type", "/x");
    invalid(p, "{\"y\":1}", "type", "/y");
    refused("{\"$ref\":\"#/x-l/01\",\"x-l\":[true,true]}", "points to nothing", NULL);
    refused("{\"$id\":\"http://e.com/x\",\"definitions\":{\"a\":{\"$id\":\"http://e.com/x\"}}}", "$id", "twice");
}

static void test_invalid_schemas(void **state) {
    (void)state;
    refused("{\"type\":\"strin\"}", "\"/type\"", NULL);
    refused("{\"minLength\":-1}", "\"/minLength\"", NULL);
    refused("{\"minLength\":1.5}", "\"/minLength\"", NULL);
    refused("{\"multipleOf\":0}", "\"/multipleOf\"", NULL);
    refused("{\"required\":[\"a\",\"a\"]}", "/required", NULL);
    refused("{\"allOf\":[]}", "/allOf", NULL);
    refused("{\"properties\":{\"a\":{\"pattern\":\"(\"}}}", "pattern", "/properties/a");
    refused("{\"patternProperties\":{\"[\":true}}", "patternProperties", "/patternProperties/[");
    refused("[]", NULL, NULL);
    refused("{\"a\":1,\"a\":2}", "not JSON", NULL);
    refused("", "not JSON", NULL);
    /* the limits */
    schema_limits lim = {16, 0, 0};
    schema_t *s = NULL;
    char err[256];
    assert_int_equal(schema_compile("{\"type\":\"integer\"}", 18, &lim, &s, err, sizeof err), -1);
    assert_non_null(strstr(err, "longer than 16"));
    schema_limits nodes = {0, 3, 0};
    const char *j = "{\"allOf\":[true,true,true]}";
    assert_int_equal(schema_compile(j, strlen(j), &nodes, &s, err, sizeof err), -1);
    assert_non_null(strstr(err, "more than 3"));
    /* unknown keywords and format: ignored */
    valid("{\"format\":\"email\",\"x-unknown\":{\"type\":\"string\"},\"contentMediaType\":\"application/json\"}",
          "\"not an email\"");
}

static void test_regex_dialect(void **state) {
    (void)state;
    valid("{\"pattern\":\"^\\\\u00e9+$\"}", "\"\xc3\xa9\xc3\xa9\"");
    invalid("{\"pattern\":\"^a$\"}", "\"a\\n\"", "pattern", ""); /* $ is the end only, as in ECMA-262 */
    valid("{\"pattern\":\"b\"}", "\"abc\"");                    /* not anchored */
    invalid("{\"pattern\":\"^.$\"}", "\"\\r\"", "pattern", "");
    valid("{\"pattern\":\"^.$\"}", "\"\xf0\x9f\x98\x80\"");   /* one code point */
    valid("{\"patternProperties\":{\"^x-\":{\"type\":\"string\"}},\"additionalProperties\":false}",
          "{\"x-a\":\"s\"}");
    invalid("{\"patternProperties\":{\"^x-\":{\"type\":\"string\"}},\"additionalProperties\":false}",
            "{\"x-a\":\"s\",\"y\":1}", "additionalProperties", "/y");
    invalid("{\"propertyNames\":{\"maxLength\":2}}", "{\"ab\":1,\"abc\":2}", "propertyNames", "/abc");
}

/* ---- threads ---- */

typedef struct job {
    const schema_t *s;
    int bad;
} job;

static void *worker(void *arg) {
    job *j = arg;
    for (int i = 0; i < 3000; i++) {
        char v[128];
        snprintf(v, sizeof v, "{\"name\":\"n%d\",\"n\":%d.5,\"tags\":[\"a\",\"b%d\"]}", i, i, i % 3);
        int want = (2 * i + 1) % 3 == 0 ? SCHEMA_VALID : SCHEMA_INVALID; /* i.5 / 1.5 = (2i+1)/3 */
        schema_errors e = SCHEMA_ERRORS_INIT;
        int r = schema_validate(j->s, v, strlen(v), &e);
        if (r != want) j->bad++;
        if (r == SCHEMA_INVALID && (e.count != 1 || strcmp(e.e[0].path, "/n") != 0)) j->bad++;
        schema_errors_free(&e);
    }
    return NULL;
}

static void test_threads(void **state) {
    (void)state;
    /* n must be a multiple of 1.5 */
    schema_t *s = compile("{\"type\":\"object\",\"required\":[\"name\"],\"properties\":{\"name\":{\"pattern\":"
                          "\"^n[0-9]+$\"},\"n\":{\"multipleOf\":1.5},\"tags\":{\"uniqueItems\":true,\"items\":"
                          "{\"pattern\":\"^[a-z][0-9]*$\"}}}}");
    pthread_t t[2];
    job j[2] = {{s, 0}, {s, 0}};
    for (int i = 0; i < 2; i++) assert_int_equal(pthread_create(&t[i], NULL, worker, &j[i]), 0);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    assert_int_equal(j[0].bad, 0);
    assert_int_equal(j[1].bad, 0);
    schema_free(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_big_numbers_exact),
        cmocka_unit_test(test_multiple_of_decimal),
        cmocka_unit_test(test_multiple_of_exact),
        cmocka_unit_test(test_multiple_of_big_divisor),
        cmocka_unit_test(test_strings_code_points),
        cmocka_unit_test(test_json_equality),
        cmocka_unit_test(test_error_paths),
        cmocka_unit_test(test_budget),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_ref_cycles),
        cmocka_unit_test(test_later_drafts_refused),
        cmocka_unit_test(test_refs),
        cmocka_unit_test(test_invalid_schemas),
        cmocka_unit_test(test_regex_dialect),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* jraw: jraw_compact (validation and compact form) and the jraw_next_* /
 * jraw_string / jraw_int / jraw_key_is walkers.
 *
 * Properties, for any bytes:
 *  - a refusal has a reason and a position inside the input;
 *  - an accepted text compacts to NUL-free text that compacts to itself;
 *  - jansson (the gateway's other JSON parser) agrees: what it accepts,
 *    jraw accepts with the same value (but for jraw's depth limit and
 *    jansson skipping a NUL byte after a literal); what jraw accepts, jansson accepts
 *    unless the reason is one of jansson's known limits (numbers beyond
 *    int64/double, a NUL in a key);
 *  - walking the compact text with the jraw_next_* functions visits spans
 *    inside the text that put back together give the text again; strings
 *    decode (jraw_string) to jansson's bytes, integers (jraw_int) to its
 *    integers. */
#include <jansson.h>
#include <stdbool.h>

#include "fuzz.h"
#include "util/jraw.h"

static const char *base, *limit;

static void in_text(jraw_span s) {
    CHECK(s.p >= base && s.p <= limit && s.n <= (size_t)(limit - s.p));
}

static void walk(jraw_span v, sbuf *re, const json_t *ref) {
    in_text(v);
    CHECK(v.n > 0);
    char c = v.p[0];
    if (c == '{') {
        CHECK(!ref || json_is_object(ref));
        sbuf_putc(re, '{');
        const char *it = v.p + 1;
        jraw_span k, val;
        bool first = true;
        while (jraw_next_member(&it, &k, &val)) {
            in_text(k);
            if (!first) sbuf_putc(re, ',');
            first = false;
            sbuf_append(re, k.p, k.n);
            sbuf_putc(re, ':');
            sbuf key = SBUF_INIT;
            CHECK(jraw_string(k, &key));
            CHECK(!sbuf_failed(&key));
            bool is_id = key.len == 2 && memcmp(key.buf, "id", 2) == 0;
            CHECK(jraw_key_is(k, "id") == is_id);
            const json_t *sub = ref ? json_object_getn(ref, key.buf ? key.buf : "", key.len) : NULL;
            CHECK(!ref || sub);
            sbuf_free(&key);
            walk(val, re, sub);
        }
        CHECK(*it == '}');
        CHECK(it == v.p + v.n - 1);
        sbuf_putc(re, '}');
        return;
    }
    if (c == '[') {
        CHECK(!ref || json_is_array(ref));
        sbuf_putc(re, '[');
        const char *it = v.p + 1;
        jraw_span e;
        size_t i = 0;
        while (jraw_next_elem(&it, &e)) {
            if (i) sbuf_putc(re, ',');
            const json_t *sub = ref ? json_array_get(ref, i) : NULL;
            CHECK(!ref || sub);
            walk(e, re, sub);
            i++;
        }
        CHECK(!ref || i == json_array_size(ref));
        CHECK(*it == ']');
        CHECK(it == v.p + v.n - 1);
        sbuf_putc(re, ']');
        return;
    }
    sbuf_append(re, v.p, v.n);
    long long x;
    bool is_int = jraw_int(v, &x);
    if (c == '"') {
        CHECK(!is_int);
        sbuf s = SBUF_INIT;
        CHECK(jraw_string(v, &s));
        if (ref) {
            CHECK(json_is_string(ref));
            CHECK(json_string_length(ref) == s.len);
            CHECK(s.len == 0 || memcmp(json_string_value(ref), s.buf, s.len) == 0);
        }
        sbuf_free(&s);
    } else if (c == '-' || (c >= '0' && c <= '9')) {
        bool plain = !memchr(v.p, '.', v.n) && !memchr(v.p, 'e', v.n) && !memchr(v.p, 'E', v.n);
        if (is_int) CHECK(plain);
        if (ref && json_is_integer(ref)) CHECK(is_int && x == json_integer_value(ref));
        if (ref && plain && is_int) CHECK(json_is_integer(ref));
    } else {
        CHECK(!is_int);
        CHECK((v.n == 4 && (!memcmp(v.p, "true", 4) || !memcmp(v.p, "null", 4))) || (v.n == 5 && !memcmp(v.p, "false", 5)));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *in = fuzz_dup(data, size);
    sbuf out = SBUF_INIT;
    jraw_err e = {0};
    int rc = jraw_compact(in, size, &out, &e);
    json_error_t je;
    json_t *j = json_loadb(in, size, JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &je);
    if (rc < 0) {
        CHECK(e.text && *e.text);
        CHECK(e.offset <= size);
        CHECK(e.line >= 1 && e.column >= 1);
        /* jansson takes it: only jraw's depth limit may differ, and
         * jansson's lexer skipping a NUL byte after a literal or a number
         * ("true\0" and "[1\0,2]" are taken) */
        if (j && !memchr(in, 0, size)) {
            if (strcmp(e.text, "nesting too deep") != 0) {
                fprintf(stderr, "jraw refused what jansson takes: %s at %zu\n", e.text, e.offset);
                CHECK(0);
            }
        }
    } else {
        CHECK(!sbuf_failed(&out) && out.len > 0 && out.buf[out.len] == '\0');
        CHECK(!memchr(out.buf, 0, out.len));
        sbuf again = SBUF_INIT;
        jraw_err e2;
        CHECK(jraw_compact(out.buf, out.len, &again, &e2) == 0);
        CHECK(again.len == out.len && memcmp(again.buf, out.buf, out.len) == 0);
        sbuf_free(&again);
        if (!j) {
            bool limit_of_jansson = strstr(je.text, "too big") || strstr(je.text, "overflow") ||
                                    strstr(je.text, "NUL") || strstr(je.text, "nul");
            if (!limit_of_jansson) {
                fprintf(stderr, "jansson refused what jraw takes: %s\n", je.text);
                CHECK(0);
            }
        }
        json_t *k = j ? json_loadb(out.buf, out.len, JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, NULL) : NULL;
        if (j) CHECK(k && json_equal(j, k));
        base = out.buf;
        limit = out.buf + out.len;
        sbuf re = SBUF_INIT;
        walk((jraw_span){out.buf, out.len}, &re, k);
        CHECK(re.len == out.len && memcmp(re.buf, out.buf, out.len) == 0);
        sbuf_free(&re);
        json_decref(k);
    }
    json_decref(j);
    sbuf_free(&out);
    free(in);
    return 0;
}

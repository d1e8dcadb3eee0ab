/* Unit tests for src/util/utf8.c and src/util/hex.h, the one decoder of
 * UTF-8 and of hex digits every parser uses: every code point round trips,
 * every ill-formed form (overlong, surrogate, past U+10FFFF, truncated,
 * stray continuation) is refused, and the digit cases are kept apart. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "util/hex.h"
#include "util/utf8.h"

static void every_code_point_round_trips(void **state) {
    (void)state;
    for (unsigned cp = 0; cp <= 0x10ffff; cp++) {
        char b[4];
        size_t n = utf8_encode(cp, b);
        assert_int_equal(n, cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4);
        unsigned back = 0xffffffff;
        size_t m = utf8_decode((const unsigned char *)b, n, &back);
        if (cp >= 0xd800 && cp <= 0xdfff) { /* a surrogate is never well-formed */
            assert_int_equal(m, 0);
            continue;
        }
        assert_int_equal(m, n);
        assert_int_equal(back, cp);
        if (n > 1) assert_int_equal(utf8_decode((const unsigned char *)b, n - 1, NULL), 0); /* truncated */
    }
}

static void ill_formed_refused(void **state) {
    (void)state;
    static const struct { const char *s; size_t n; } bad[] = {
        {"\x80", 1},             /* stray continuation */
        {"\xc0\x80", 2},         /* overlong U+0000 */
        {"\xc1\xbf", 2},         /* overlong U+007F */
        {"\xe0\x9f\xbf", 3},     /* overlong U+07FF */
        {"\xf0\x8f\xbf\xbf", 4}, /* overlong U+FFFF */
        {"\xed\xa0\x80", 3},     /* U+D800 */
        {"\xf4\x90\x80\x80", 4}, /* U+110000 */
        {"\xf5\x80\x80\x80", 4},
        {"\xff", 1},
        {"\xc3\x28", 2},         /* bad continuation */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(utf8_decode((const unsigned char *)bad[i].s, bad[i].n, NULL), 0);
    assert_int_equal(utf8_decode((const unsigned char *)"\xed\x9f\xbf", 3, NULL), 3); /* U+D7FF */
    assert_int_equal(utf8_decode((const unsigned char *)"\xf4\x8f\xbf\xbf", 4, NULL), 4); /* U+10FFFF */
}

static void hex_digits(void **state) {
    (void)state;
    for (int c = 0; c < 256; c++) {
        int want = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        assert_int_equal(hex_value((char)c), want);
        assert_int_equal(hex_value_lower((char)c), c >= 'A' && c <= 'F' ? -1 : want);
        assert_int_equal(hex_value_upper((char)c), c >= 'a' && c <= 'f' ? -1 : want);
    }
    unsigned v = 0;
    assert_true(hex_quad("00e9", &v));
    assert_int_equal(v, 0xe9);
    assert_true(hex_quad("FfFf", &v));
    assert_int_equal(v, 0xffff);
    assert_false(hex_quad("12g4", &v));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_code_point_round_trips),
        cmocka_unit_test(ill_formed_refused),
        cmocka_unit_test(hex_digits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests for src/cache/cursor.c: the 40-hex-digit wire form, its parse
 * errors, the agreement of byte-wise order with cursor_cmp, and where
 * cursor_after_zxid() falls. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cache/cursor.h"

#define ITERATIONS 10000

/* splitmix64: a small deterministic generator whose state the test owns. */
static uint64_t rng_next(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A 64-bit field value: often an edge (0, 1, max, near a nibble boundary),
 * often small (so that fields tie), otherwise uniform. */
static uint64_t random_field(uint64_t *rng, uint64_t max) {
    static const uint64_t edges[] = {0, 1, 2, 0xf, 0x10, 0xff, 0x100, 0x7fffffff, 0x80000000, 0xffffffff};
    uint64_t v;
    switch (rng_next(rng) % 4) {
    case 0: v = edges[rng_next(rng) % (sizeof edges / sizeof edges[0])]; break;
    case 1: v = max - rng_next(rng) % 3; break;
    case 2: v = rng_next(rng) % 4; break;
    default: v = rng_next(rng); break;
    }
    return v > max ? v & max : v;
}

/* A random position with fields drawn by random_field(). */
static cursor_pos random_pos(uint64_t *rng) {
    cursor_pos p;
    p.zxid = random_field(rng, UINT64_MAX);
    p.khash = random_field(rng, UINT64_MAX);
    p.version = (uint32_t)random_field(rng, UINT32_MAX);
    return p;
}

/* Sign of an int: -1, 0 or 1. */
static int sign(int v) { return (v > 0) - (v < 0); }

/* Asserts that s is exactly 40 lowercase hex digits. */
static void assert_wire_form(const char *s) {
    assert_int_equal(strlen(s), CURSOR_LEN);
    for (size_t i = 0; i < CURSOR_LEN; i++)
        assert_true((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'));
}

static void test_format_known(void **state) {
    (void)state;
    char out[CURSOR_LEN + 1];
    cursor_pos p = {0, 0, 0};
    cursor_format(&p, out);
    assert_string_equal(out, "0000000000000000000000000000000000000000");

    cursor_pos q = {0x100000002ULL, 0xaf63dc4c8601ec8cULL, 7};
    cursor_format(&q, out);
    assert_string_equal(out, "0000000100000002af63dc4c8601ec8c00000007");

    cursor_pos m = {UINT64_MAX, UINT64_MAX, UINT32_MAX};
    cursor_format(&m, out);
    assert_string_equal(out, "ffffffffffffffffffffffffffffffffffffffff");
}

static void test_round_trip(void **state) {
    (void)state;
    uint64_t rng = 10000;
    for (int i = 0; i < ITERATIONS; i++) {
        cursor_pos p = random_pos(&rng), back = {1, 2, 3};
        char out[CURSOR_LEN + 1];
        cursor_format(&p, out);
        assert_wire_form(out);
        assert_int_equal(cursor_parse(out, &back), 0);
        assert_true(back.zxid == p.zxid);
        assert_true(back.khash == p.khash);
        assert_int_equal(back.version, p.version);
        assert_int_equal(cursor_cmp(&p, &back), 0);
    }
}

/* strcmp on the wire form orders positions exactly as cursor_cmp does. */
static void test_bytewise_order_is_feed_order(void **state) {
    (void)state;
    uint64_t rng = 20000;
    int seen[3] = {0, 0, 0};
    for (int i = 0; i < ITERATIONS; i++) {
        cursor_pos a = random_pos(&rng), b = random_pos(&rng);
        if (i % 4 == 0) b.zxid = a.zxid; /* force ties on leading fields */
        if (i % 8 == 0) b.khash = a.khash;
        char sa[CURSOR_LEN + 1], sb[CURSOR_LEN + 1];
        cursor_format(&a, sa);
        cursor_format(&b, sb);
        int c = cursor_cmp(&a, &b);
        assert_int_equal(sign(strcmp(sa, sb)), sign(c));
        assert_int_equal(sign(cursor_cmp(&b, &a)), -sign(c));
        seen[sign(c) + 1]++;
    }
    assert_true(seen[0] > 0 && seen[1] > 0 && seen[2] > 0);
}

static void test_cmp_field_priority(void **state) {
    (void)state;
    cursor_pos a = {1, UINT64_MAX, UINT32_MAX}, b = {2, 0, 0};
    assert_true(cursor_cmp(&a, &b) < 0); /* zxid first */
    cursor_pos c = {5, 1, UINT32_MAX}, d = {5, 2, 0};
    assert_true(cursor_cmp(&c, &d) < 0); /* then key digest */
    cursor_pos e = {5, 2, 1}, f = {5, 2, 2};
    assert_true(cursor_cmp(&e, &f) < 0); /* then version */
    assert_true(cursor_cmp(&f, &e) > 0);
    assert_int_equal(cursor_cmp(&f, &f), 0);
}

static void test_parse_rejects(void **state) {
    (void)state;
    static const char *bad[] = {
        "",
        "000000000000000000000000000000000000000",   /* 39 */
        "00000000000000000000000000000000000000000", /* 41 */
        "000000000000000000000000000000000000000A",  /* uppercase */
        "ABCDEF0000000000000000000000000000000000",
        "000000000000000g000000000000000000000000",  /* non-hex */
        "0x00000000000000000000000000000000000000",
        "-000000000000000000000000000000000000000",
        " 000000000000000000000000000000000000000",
        "000000000000000000000000000000000000000 ",
        "0000000000000000000000000000000000000\n00",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cursor_pos p = {11, 22, 33};
        if (cursor_parse(bad[i], &p) != -1) fail_msg("cursor_parse accepted \"%s\"", bad[i]);
        /* a refused cursor leaves the output untouched */
        assert_true(p.zxid == 11 && p.khash == 22 && p.version == 33);
    }
    cursor_pos p;
    assert_int_equal(cursor_parse(NULL, &p), -1);
}

/* Asserts after < p (strictly) both by cursor_cmp and on the wire. */
static void assert_before(const cursor_pos *a, const cursor_pos *b) {
    char sa[CURSOR_LEN + 1], sb[CURSOR_LEN + 1];
    cursor_format(a, sa);
    cursor_format(b, sb);
    assert_true(cursor_cmp(a, b) < 0);
    assert_true(strcmp(sa, sb) < 0);
}

/* cursor_after_zxid(z) is after every position of transaction z and before
 * every position of transaction z + 1. The one position of z it does not
 * strictly follow is its own value (z, max digest, max version), which it
 * equals: a feed that resumes strictly after the cursor still skips it. */
static void test_after_zxid(void **state) {
    (void)state;
    uint64_t rng = 30000;
    for (int i = 0; i < ITERATIONS; i++) {
        uint64_t z = rng_next(&rng) % 3 == 0 ? (uint64_t)(i % 5) : rng_next(&rng) % (UINT64_MAX - 1);
        cursor_pos after = cursor_after_zxid(z);
        assert_true(after.zxid == z);

        cursor_pos same = random_pos(&rng), next = random_pos(&rng);
        same.zxid = z;
        next.zxid = z + 1;
        if (same.khash == UINT64_MAX && same.version == UINT32_MAX)
            assert_int_equal(cursor_cmp(&same, &after), 0);
        else
            assert_before(&same, &after);
        assert_before(&after, &next);
    }
    /* the edges of the neighbouring transactions */
    cursor_pos first_same = {7, 0, 0}, last_same = {7, UINT64_MAX, UINT32_MAX - 1},
               last_same2 = {7, UINT64_MAX - 1, UINT32_MAX}, first_next = {8, 0, 0};
    cursor_pos after = cursor_after_zxid(7);
    assert_before(&first_same, &after);
    assert_before(&last_same, &after);
    assert_before(&last_same2, &after);
    assert_before(&after, &first_next);

    /* and it survives the wire */
    char s[CURSOR_LEN + 1];
    cursor_format(&after, s);
    cursor_pos back;
    assert_int_equal(cursor_parse(s, &back), 0);
    assert_int_equal(cursor_cmp(&back, &after), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_known),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_bytewise_order_is_feed_order),
        cmocka_unit_test(test_cmp_field_priority),
        cmocka_unit_test(test_parse_rejects),
        cmocka_unit_test(test_after_zxid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

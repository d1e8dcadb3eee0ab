/* Unit tests for src/zk/layout.c: FNV-1a, buckets, the canonical key
 * encoding (round trip, alphabet, refusal of non-canonical names), key and
 * name validation, and the shape of every path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/names.h"
#include "zk/layout.h"

#define ROUND_TRIPS 10000

/* ---- helpers ------------------------------------------------------------ */

/* splitmix64: a small deterministic generator whose state the test owns. */
static uint64_t rng_next(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Uniform-ish integer in [0, n). */
static size_t rng_below(uint64_t *state, size_t n) { return (size_t)(rng_next(state) % n); }

/* Asserts that name only uses bytes 0x21..0x7e, has no '/', and is neither
 * "." nor "..", i.e. that it is a legal znode name. */
static void assert_legal_name(const char *name) {
    assert_non_null(name);
    assert_true(name[0] != '\0');
    for (const char *p = name; *p; p++) {
        unsigned char c = (unsigned char)*p;
        assert_true(c >= 0x21 && c <= 0x7e);
        assert_true(c != '/');
    }
    assert_string_not_equal(name, ".");
    assert_string_not_equal(name, "..");
}

/* Encodes key, checks the name is legal, decodes it back, checks the bytes
 * are identical and that the name re-encodes to itself. */
static void assert_round_trip(const char *key, size_t len) {
    char *name = layout_key_encode(key, len);
    assert_legal_name(name);
    size_t dlen = 0;
    char *back = layout_key_decode(name, &dlen);
    if (!back) fail_msg("decode refused the encoding of a %zu-byte key: \"%s\"", len, name);
    assert_int_equal(dlen, len);
    assert_memory_equal(back, key, len);
    assert_int_equal(back[dlen], '\0');
    free(back);
    free(name);
}

/* Asserts that decode refuses name. The name is copied into a heap block of
 * exactly its size, so a read past its NUL shows up under AddressSanitizer. */
static void assert_refused(const char *name) {
    char *copy = strdup(name);
    assert_non_null(copy);
    size_t len = 12345;
    char *key = layout_key_decode(copy, &len);
    free(copy);
    if (key) {
        free(key);
        fail_msg("decode accepted non-canonical name \"%s\"", name);
    }
}

/* Appends code point cp (a Unicode scalar value) to out as UTF-8; returns
 * the number of bytes written. */
static size_t put_utf8(uint32_t cp, unsigned char *out) {
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xc0 | cp >> 6);
        out[1] = (unsigned char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xe0 | cp >> 12);
        out[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
        out[2] = (unsigned char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (unsigned char)(0xf0 | cp >> 18);
    out[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
    out[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
    out[3] = (unsigned char)(0x80 | (cp & 0x3f));
    return 4;
}

/* A random Unicode scalar value other than U+0000, spread over the 1-, 2-,
 * 3- and 4-byte forms and biased towards the characters the encoding cares
 * about ('/', '%', '.', controls, DEL, space). */
static uint32_t random_scalar(uint64_t *rng) {
    static const uint32_t special[] = {'/', '%', '.', ' ', 0x7f, 0x01, 0x1f, '\t', '\n', 0x80, 0xff,
                                       0x7ff, 0x800, 0xd7ff, 0xe000, 0xfffd, 0xffff, 0x10000, 0x10ffff};
    switch (rng_below(rng, 5)) {
    case 0: return special[rng_below(rng, sizeof special / sizeof special[0])];
    case 1: return 1 + (uint32_t)rng_below(rng, 0x7f);
    case 2: return 0x80 + (uint32_t)rng_below(rng, 0x800 - 0x80);
    case 3: {
        uint32_t cp = 0x800 + (uint32_t)rng_below(rng, 0x10000 - 0x800 - 0x800);
        return cp >= 0xd800 ? cp + 0x800 : cp; /* skip the surrogates */
    }
    default: return 0x10000 + (uint32_t)rng_below(rng, 0x110000 - 0x10000);
    }
}

/* ---- FNV-1a and buckets ------------------------------------------------- */

static void test_fnv1a_vectors(void **state) {
    (void)state;
    assert_true(layout_key_hash("", 0) == 0xcbf29ce484222325ULL);
    assert_true(layout_key_hash("a", 1) == 0xaf63dc4c8601ec8cULL);
    assert_true(layout_key_hash("foobar", 6) == 0x85944171f73967e8ULL);
    /* only len bytes count, not what follows */
    assert_true(layout_key_hash("ab", 1) == layout_key_hash("a", 1));
    /* bytes >= 0x80 are hashed as unsigned */
    assert_true(layout_key_hash("\xff", 1) == ((0xcbf29ce484222325ULL ^ 0xff) * 1099511628211ULL));
}

static void test_bucket(void **state) {
    (void)state;
    assert_int_equal(LAYOUT_BUCKETS, 4096);
    assert_int_equal(layout_bucket(0), 0);
    assert_int_equal(layout_bucket(0xfff), 0xfff);
    assert_int_equal(layout_bucket(0x1000), 0);
    assert_int_equal(layout_bucket(0xaf63dc4c8601ec8cULL), 0xc8c);
    assert_int_equal(layout_bucket(UINT64_MAX), 0xfff);
    assert_int_equal(layout_client_bucket(0xaf63dc4c8601ec8cULL), 0x8c);
    assert_int_equal(layout_client_bucket(UINT64_MAX), 0xff);
    uint64_t rng = 42;
    for (int i = 0; i < 1000; i++) {
        uint64_t h = rng_next(&rng);
        assert_true(layout_bucket(h) < LAYOUT_BUCKETS);
        assert_true(layout_client_bucket(h) < LAYOUT_CLIENT_BUCKETS);
    }
}

/* ---- encoding ----------------------------------------------------------- */

static void test_encode_exact(void **state) {
    (void)state;
    static const struct {
        const char *key;
        size_t len;
        const char *name;
    } cases[] = {
        {"a", 1, "a"},
        {"hello-World_1.txt", 17, "hello-World_1.txt"},
        {"/", 1, "%2F"},
        {"%", 1, "%25"},
        {".", 1, "%2E"},
        {"..", 2, "%2E%2E"},
        {"...", 3, "..."},
        {"a.", 2, "a."},
        {".a", 2, ".a"},
        {" ", 1, "%20"},
        {"\x7f", 1, "%7F"},
        {"\x01\x1f", 2, "%01%1F"},
        {"\0", 1, "%00"},
        {"a/b%c", 5, "a%2Fb%25c"},
        {"~!", 2, "~!"},
        {"\xc3\xa9", 2, "%C3%A9"},
        {"\xf0\x9f\x98\x80", 4, "%F0%9F%98%80"},
        {"\xff", 1, "%FF"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *name = layout_key_encode(cases[i].key, cases[i].len);
        assert_non_null(name);
        assert_string_equal(name, cases[i].name);
        free(name);
        assert_round_trip(cases[i].key, cases[i].len);
    }
}

static void test_round_trip_every_byte(void **state) {
    (void)state;
    for (int b = 0; b < 256; b++) {
        char one = (char)b;
        assert_round_trip(&one, 1);
        char two[2] = {(char)b, (char)b};
        assert_round_trip(two, 2);
        char three[3] = {'x', (char)b, 'x'};
        assert_round_trip(three, 3);
    }
}

static void test_round_trip_random_bytes(void **state) {
    (void)state;
    static const char special[] = {'/', '%', '.', ' ', 0x7f, 0x00, 0x01, '\n', (char)0x80, (char)0xff};
    uint64_t rng = 10000;
    char key[NAMES_KEY_MAX_BYTES + 8];
    for (int it = 0; it < ROUND_TRIPS; it++) {
        size_t len = 1 + rng_below(&rng, it % 100 == 0 ? sizeof key : 40);
        for (size_t i = 0; i < len; i++)
            key[i] = rng_below(&rng, 3) == 0 ? special[rng_below(&rng, sizeof special)]
                                             : (char)rng_below(&rng, 256);
        assert_round_trip(key, len);
    }
}

static void test_round_trip_random_utf8(void **state) {
    (void)state;
    uint64_t rng = 20000;
    unsigned char key[NAMES_KEY_MAX_BYTES];
    for (int it = 0; it < ROUND_TRIPS; it++) {
        size_t want = 1 + rng_below(&rng, 60), len = 0;
        while (len < want && len + 4 <= sizeof key) len += put_utf8(random_scalar(&rng), key + len);
        /* every generated key is valid, and round-trips */
        const char *why = names_key_invalid((const char *)key, len);
        if (why) fail_msg("valid UTF-8 key of %zu bytes refused: %s", len, why);
        assert_round_trip((const char *)key, len);
    }
}

/* Decoding a random string over an alphabet rich in '%', hex digits and '.'
 * either fails or yields a key that encodes back to exactly that string:
 * no two names ever decode to the same key. */
static void test_decode_is_canonical_random(void **state) {
    (void)state;
    static const char alphabet[] = "%%%%0123456789ABCDEFabcdef..2E/x";
    uint64_t rng = 30000;
    char name[16];
    int accepted = 0;
    for (int it = 0; it < ROUND_TRIPS * 5; it++) {
        size_t len = 1 + rng_below(&rng, sizeof name - 1);
        for (size_t i = 0; i < len; i++) name[i] = alphabet[rng_below(&rng, sizeof alphabet - 1)];
        name[len] = '\0';
        size_t klen = 0;
        char *key = layout_key_decode(name, &klen);
        if (!key) continue;
        accepted++;
        char *again = layout_key_encode(key, klen);
        assert_non_null(again);
        assert_string_equal(again, name);
        free(again);
        free(key);
    }
    assert_true(accepted > 100); /* the test exercised the accepting path */
}

static void test_decode_refuses_non_canonical(void **state) {
    (void)state;
    static const char *bad[] = {
        "",          /* empty name */
        ".",         /* raw dot names */
        "..",
        "%2e",       /* lowercase hex */
        "%2f",
        "a%c3%a9",
        "%C3%a9",
        "%41",       /* 'A' needn't be escaped */
        "a%2Eb",     /* '.' escaped outside "." / ".." */
        "%2E.",
        ".%2E",
        "%2E%2E%2E",
        "%2Ea",
        "%7E",       /* '~' needn't be escaped */
        "%21",       /* '!' needn't be escaped */
        "%",         /* truncated escapes */
        "a%",
        "%2",
        "a%F",
        "%G0",       /* non-hex */
        "%0G",
        "%-1",
        "% 1",
        "a/b",       /* raw bytes that must be escaped */
        "a b",
        "\x7f",
        "\x01",
        "caf\xc3\xa9",
        "100%",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) assert_refused(bad[i]);
    assert_null(layout_key_decode(NULL, NULL));
}

static void test_decode_accepts_canonical(void **state) {
    (void)state;
    static const struct {
        const char *name;
        const char *key;
        size_t len;
    } good[] = {
        {"%2E", ".", 1}, {"%2E%2E", "..", 2}, {"...", "...", 3}, {"%25", "%", 1},
        {"%00", "\0", 1}, {"a%2F", "a/", 2}, {"%20%7F%80", " \x7f\x80", 3},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        size_t len = 0;
        char *key = layout_key_decode(good[i].name, &len);
        assert_non_null(key);
        assert_int_equal(len, good[i].len);
        assert_memory_equal(key, good[i].key, len);
        free(key);
    }
    /* len may be NULL */
    char *key = layout_key_decode("abc", NULL);
    assert_non_null(key);
    assert_string_equal(key, "abc");
    free(key);
}

/* ---- validation --------------------------------------------------------- */

static void test_key_invalid(void **state) {
    (void)state;
    char big[NAMES_KEY_MAX_BYTES + 1];
    memset(big, 'k', sizeof big);

    assert_null(names_key_invalid("a", 1));
    assert_null(names_key_invalid("caf\xc3\xa9", 5));
    assert_null(names_key_invalid("\xe2\x82\xac", 3));         /* U+20AC */
    assert_null(names_key_invalid("\xf0\x9f\x98\x80", 4));     /* U+1F600 */
    assert_null(names_key_invalid("\xf4\x8f\xbf\xbf", 4));     /* U+10FFFF */
    assert_null(names_key_invalid("\xed\x9f\xbf", 3));         /* U+D7FF */
    assert_null(names_key_invalid("\xee\x80\x80", 3));         /* U+E000 */
    assert_null(names_key_invalid("/%. \x7f\x01", 6));
    assert_null(names_key_invalid(big, NAMES_KEY_MAX_BYTES)); /* 1024 ok */

    assert_string_equal(names_key_invalid("", 0), "key is empty");
    assert_string_equal(names_key_invalid(big, NAMES_KEY_MAX_BYTES + 1), "key is longer than 1024 bytes");

    static const struct {
        const char *s;
        size_t len;
    } bad_utf8[] = {
        {"\xc0\xaf", 2},             /* overlong '/' */
        {"\xc1\xbf", 2},             /* overlong */
        {"\xe0\x80\xaf", 3},         /* overlong '/' */
        {"\xe0\x9f\xbf", 3},         /* overlong U+07FF */
        {"\xf0\x80\x80\xaf", 4},     /* overlong '/' */
        {"\xf0\x8f\xbf\xbf", 4},     /* overlong U+FFFF */
        {"\xed\xa0\x80", 3},         /* U+D800 */
        {"\xed\xbf\xbf", 3},         /* U+DFFF */
        {"\xf4\x90\x80\x80", 4},     /* U+110000 */
        {"\xf5\x80\x80\x80", 4},
        {"\xff", 1},
        {"\x80", 1},                 /* lone continuation */
        {"a\xbf", 2},
        {"\xc3", 1},                 /* truncated */
        {"ab\xe2\x82", 4},
        {"\xf0\x9f\x98", 3},
        {"\xc3(", 2},                /* bad continuation */
        {"\xe2\x28\xa1", 3},
        {"\xf0\x9f\x98\x28", 4},
    };
    for (size_t i = 0; i < sizeof bad_utf8 / sizeof bad_utf8[0]; i++) {
        const char *why = names_key_invalid(bad_utf8[i].s, bad_utf8[i].len);
        if (!why) fail_msg("invalid UTF-8 case %zu accepted", i);
        assert_string_equal(why, "key is not valid UTF-8");
    }

    /* truncation is by len, not by the bytes that happen to follow */
    assert_string_equal(names_key_invalid("\xc3\xa9", 1), "key is not valid UTF-8");
    assert_string_equal(names_key_invalid("a\xe2\x82\xac", 3), "key is not valid UTF-8");
    assert_string_equal(names_key_invalid("\xf0\x9f\x98\x80", 3), "key is not valid UTF-8");

    assert_string_equal(names_key_invalid("\0", 1), "key contains U+0000");
    assert_string_equal(names_key_invalid("a\0b", 3), "key contains U+0000");
    assert_string_equal(names_key_invalid("ab\0", 3), "key contains U+0000");
}

static void test_name_valid(void **state) {
    (void)state;
    char s[80];
    memset(s, 'a', sizeof s);
    s[64] = '\0';
    assert_int_equal(names_valid(s), 1); /* 64 ok */
    s[64] = 'a';
    s[65] = '\0';
    assert_int_equal(names_valid(s), 0); /* 65 bad */

    assert_int_equal(names_valid("a"), 1);
    assert_int_equal(names_valid("AZaz09_-"), 1);
    assert_int_equal(names_valid("-"), 1);
    assert_int_equal(names_valid(""), 0);
    assert_int_equal(names_valid(NULL), 0);
    assert_int_equal(names_valid("a.b"), 0);
    assert_int_equal(names_valid("."), 0);
    assert_int_equal(names_valid("a b"), 0);
    assert_int_equal(names_valid("a/b"), 0);
    assert_int_equal(names_valid("a\n"), 0);
    assert_int_equal(names_valid("caf\xc3\xa9"), 0);
}

/* ---- paths -------------------------------------------------------------- */

/* The record bucket of bytes as the three lowercase hex digits a path uses. */
static void expected_bucket(const char *s, size_t len, char out[4]) {
    snprintf(out, 4, "%03x", layout_bucket(layout_key_hash(s, len)));
}

/* The client bucket: two lowercase hex digits. */
static void expected_client_bucket(const char *s, size_t len, char out[3]) {
    snprintf(out, 3, "%02x", layout_client_bucket(layout_key_hash(s, len)));
}

static void test_store_path(void **state) {
    (void)state;
    char *p = layout_store_path("/zoosync", "todo");
    assert_non_null(p);
    assert_string_equal(p, "/zoosync/stores/todo");
    free(p);
}

static void test_record_path(void **state) {
    (void)state;
    /* FNV-1a("a") = 0xaf63dc4c8601ec8c: record bucket c8c */
    char *p = layout_record_path("/zoosync", "todo", "a", 1);
    assert_non_null(p);
    assert_string_equal(p, "/zoosync/stores/todo/r/c8c/a");
    free(p);

    /* the bucket is of the key's bytes, the name is the encoded key */
    char bb[4], want[128];
    expected_bucket("a/b", 3, bb);
    snprintf(want, sizeof want, "/zs/stores/s/r/%s/a%%2Fb", bb);
    p = layout_record_path("/zs", "s", "a/b", 3);
    assert_non_null(p);
    assert_string_equal(p, want);
    free(p);

    expected_bucket("..", 2, bb);
    snprintf(want, sizeof want, "/zs/stores/s/r/%s/%%2E%%2E", bb);
    p = layout_record_path("/zs", "s", "..", 2);
    assert_non_null(p);
    assert_string_equal(p, want);
    free(p);

    /* every bucket component is exactly three lowercase hex digits */
    uint64_t rng = 7;
    for (int i = 0; i < 1000; i++) {
        char key[8];
        for (size_t j = 0; j < sizeof key; j++) key[j] = (char)rng_below(&rng, 256);
        p = layout_record_path("/zs", "s", key, sizeof key);
        assert_non_null(p);
        const char *prefix = "/zs/stores/s/r/";
        assert_memory_equal(p, prefix, strlen(prefix));
        const char *b = p + strlen(prefix);
        for (int k = 0; k < 3; k++)
            assert_true((b[k] >= '0' && b[k] <= '9') || (b[k] >= 'a' && b[k] <= 'f'));
        assert_int_equal(b[3], '/');
        expected_bucket(key, sizeof key, bb);
        assert_memory_equal(b, bb, 3);
        assert_null(strchr(b + 4, '/'));
        free(p);
    }
}

static void test_client_path(void **state) {
    (void)state;
    char bb[3], want[128];
    expected_client_bucket("client-1", 8, bb);
    snprintf(want, sizeof want, "/zoosync/stores/todo/c/%s/client-1", bb);
    char *p = layout_client_path("/zoosync", "todo", "client-1");
    assert_non_null(p);
    assert_string_equal(p, want);
    free(p);

    p = layout_client_path("/zoosync", "todo", "a");
    assert_non_null(p);
    assert_string_equal(p, "/zoosync/stores/todo/c/8c/a");
    free(p);
}

/* Every path the gateway writes or reads is made here, and the mirror's
 * reading of event paths is their inverse. */
static void expect_path(char *p, const char *want) {
    assert_non_null(p);
    assert_string_equal(p, want);
    free(p);
}

static void test_tree_paths(void **state) {
    (void)state;
    expect_path(layout_stores_path("/zs"), "/zs/stores");
    expect_path(layout_records_path("/zs", "s"), "/zs/stores/s/r");
    expect_path(layout_clients_path("/zs", "s"), "/zs/stores/s/c");
    expect_path(layout_bucket_path("/zs", "s", 0), "/zs/stores/s/r/000");
    expect_path(layout_bucket_path("/zs", "s", 0xfff), "/zs/stores/s/r/fff");
    expect_path(layout_client_bucket_path("/zs", "s", 0), "/zs/stores/s/c/00");
    expect_path(layout_client_bucket_path("/zs", "s", 0xab), "/zs/stores/s/c/ab");
    expect_path(layout_named_record_path("/zs", "s", 0xc8c, "a%2Fb"), "/zs/stores/s/r/c8c/a%2Fb");
    expect_path(layout_gc_path("/zs"), "/zs/gc");
    /* a record's path is its named path under its bucket */
    char *name = layout_key_encode("a/b", 3);
    char *p = layout_named_record_path("/zs", "s", layout_bucket(layout_key_hash("a/b", 3)), name);
    expect_path(layout_record_path("/zs", "s", "a/b", 3), p);
    free(p);
    free(name);
}

static void test_classify(void **state) {
    (void)state;
    char store[NAMES_MAX_BYTES + 1];
    unsigned b = 0;
    const char *name = NULL;
    size_t nlen = 0;
#define CLASSIFY(s) layout_classify((s), strlen(s), store, &b, &name, &nlen)
    assert_int_equal(CLASSIFY("todo"), LAYOUT_CONFIG);
    assert_string_equal(store, "todo");
    assert_int_equal(CLASSIFY("todo/r/0a1"), LAYOUT_BUCKET);
    assert_int_equal(b, 0x0a1);
    assert_int_equal(CLASSIFY("todo/r/fff/a%2Fb"), LAYOUT_RECORD);
    assert_int_equal(b, 0xfff);
    assert_int_equal(nlen, 5);
    assert_memory_equal(name, "a%2Fb", 5);
    assert_int_equal(CLASSIFY(""), LAYOUT_NONE);
    assert_int_equal(CLASSIFY("todo/r"), LAYOUT_NONE);
    assert_int_equal(CLASSIFY("todo/c/00/x"), LAYOUT_NONE);
    assert_int_equal(CLASSIFY("todo/r/0A1"), LAYOUT_NONE); /* lowercase only */
    assert_int_equal(CLASSIFY("todo/r/0a1/"), LAYOUT_NONE);
    assert_int_equal(CLASSIFY("todo/r/0a1/x/y"), LAYOUT_NONE);
    char longname[NAMES_MAX_BYTES + 2];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    assert_int_equal(CLASSIFY(longname), LAYOUT_NONE);
#undef CLASSIFY
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fnv1a_vectors),
        cmocka_unit_test(test_bucket),
        cmocka_unit_test(test_encode_exact),
        cmocka_unit_test(test_round_trip_every_byte),
        cmocka_unit_test(test_round_trip_random_bytes),
        cmocka_unit_test(test_round_trip_random_utf8),
        cmocka_unit_test(test_decode_is_canonical_random),
        cmocka_unit_test(test_decode_refuses_non_canonical),
        cmocka_unit_test(test_decode_accepts_canonical),
        cmocka_unit_test(test_key_invalid),
        cmocka_unit_test(test_name_valid),
        cmocka_unit_test(test_store_path),
        cmocka_unit_test(test_record_path),
        cmocka_unit_test(test_client_path),
        cmocka_unit_test(test_tree_paths),
        cmocka_unit_test(test_classify),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

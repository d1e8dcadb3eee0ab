/* cursor: cursor_parse / cursor_format / cursor_cmp.
 *
 * Properties: cursor_parse accepts exactly the strings of 40 lowercase hex
 * digits, and format(parse(s)) == s; for any position p (the first 20
 * input bytes), parse(format(p)) == p; cursor_cmp orders positions as
 * strcmp orders their wire forms (byte-wise order is feed order). */
#include <stdbool.h>

#include "fuzz.h"
#include "cache/cursor.h"

static cursor_pos pos_from(const uint8_t *b) {
    cursor_pos p;
    memcpy(&p.zxid, b, 8);
    memcpy(&p.khash, b + 8, 8);
    memcpy(&p.version, b + 16, 4);
    return p;
}

static int sign(int x) { return (x > 0) - (x < 0); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *s = fuzz_cstr(data, size);
    bool shape = strlen(s) == CURSOR_LEN;
    for (size_t i = 0; shape && i < CURSOR_LEN; i++) shape = (s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f');
    cursor_pos p;
    int rc = cursor_parse(s, &p);
    CHECK((rc == 0) == shape);
    if (rc == 0) {
        char out[CURSOR_LEN + 1];
        cursor_format(&p, out);
        CHECK(strcmp(out, s) == 0);
    }
    free(s);
    if (size >= 20) {
        cursor_pos a = pos_from(data), back;
        char fa[CURSOR_LEN + 1];
        cursor_format(&a, fa);
        CHECK(strlen(fa) == CURSOR_LEN);
        CHECK(cursor_parse(fa, &back) == 0 && cursor_cmp(&a, &back) == 0);
        CHECK(back.zxid == a.zxid && back.khash == a.khash && back.version == a.version);
        if (size >= 40) {
            cursor_pos b = pos_from(data + 20);
            char fb[CURSOR_LEN + 1];
            cursor_format(&b, fb);
            CHECK(sign(cursor_cmp(&a, &b)) == sign(strcmp(fa, fb)));
            CHECK(cursor_cmp(&a, &b) == -cursor_cmp(&b, &a));
        }
        cursor_pos after = cursor_after_zxid(a.zxid);
        CHECK(cursor_cmp(&a, &after) <= 0);
    }
    return 0;
}

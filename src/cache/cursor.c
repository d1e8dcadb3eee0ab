#include "cache/cursor.h"

#include <stdio.h>
#include <string.h>

#include "util/hex.h"

cursor_pos cursor_after_zxid(uint64_t zxid) {
    cursor_pos p = {zxid, UINT64_MAX, UINT32_MAX};
    return p;
}

void cursor_format(const cursor_pos *p, char out[CURSOR_LEN + 1]) {
    snprintf(out, CURSOR_LEN + 1, "%016llx%016llx%08x", (unsigned long long)p->zxid,
             (unsigned long long)p->khash, (unsigned)p->version);
}

static uint64_t hexfield(const char *s, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v = (v << 4) | (uint64_t)hex_value_lower(s[i]);
    return v;
}

int cursor_parse(const char *s, cursor_pos *out) {
    if (!s || strlen(s) != CURSOR_LEN) return -1;
    for (int i = 0; i < CURSOR_LEN; i++)
        if (hex_value_lower(s[i]) < 0) return -1;
    out->zxid = hexfield(s, 16);
    out->khash = hexfield(s + 16, 16);
    out->version = (uint32_t)hexfield(s + 32, 8);
    return 0;
}

int cursor_cmp(const cursor_pos *a, const cursor_pos *b) {
    if (a->zxid != b->zxid) return a->zxid < b->zxid ? -1 : 1;
    if (a->khash != b->khash) return a->khash < b->khash ? -1 : 1;
    if (a->version != b->version) return a->version < b->version ? -1 : 1;
    return 0;
}

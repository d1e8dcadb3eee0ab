/* names: store names, client ids and keys; see names.h. */
#include "util/names.h"

#include <string.h>

bool names_valid_n(const char *s, size_t len) {
    if (!s || len == 0 || len > NAMES_MAX_BYTES) return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return true;
}

bool names_valid(const char *s) { return s && names_valid_n(s, strnlen(s, NAMES_MAX_BYTES + 1)); }

/* Length of the well-formed UTF-8 sequence at p (1..4), or 0 when the bytes
 * at p (n of them available) are not one: bad lead byte, bad or missing
 * continuation, overlong form, surrogate, or a code point above U+10FFFF.
 * Follows the table of well-formed sequences in Unicode 15, section 3.9. */
static size_t utf8_seq_len(const unsigned char *p, size_t n) {
    unsigned char b = p[0];
    if (b < 0x80) return 1;
    size_t need;
    unsigned char lo = 0x80, hi = 0xbf; /* bounds of the second byte */
    if (b >= 0xc2 && b <= 0xdf) {
        need = 2;
    } else if (b >= 0xe0 && b <= 0xef) {
        need = 3;
        if (b == 0xe0) lo = 0xa0;      /* overlong */
        else if (b == 0xed) hi = 0x9f; /* surrogates */
    } else if (b >= 0xf0 && b <= 0xf4) {
        need = 4;
        if (b == 0xf0) lo = 0x90;      /* overlong */
        else if (b == 0xf4) hi = 0x8f; /* above U+10FFFF */
    } else {
        return 0; /* continuation byte, 0xc0/0xc1 overlong, or 0xf5.. */
    }
    if (n < need) return 0;
    if (p[1] < lo || p[1] > hi) return 0;
    for (size_t i = 2; i < need; i++)
        if (p[i] < 0x80 || p[i] > 0xbf) return 0;
    return need;
}

const char *names_key_invalid(const char *key, size_t len) {
    if (len == 0) return "key is empty";
    if (len > NAMES_KEY_MAX_BYTES) return "key is longer than 1024 bytes";
    const unsigned char *p = (const unsigned char *)key;
    bool has_nul = false;
    for (size_t i = 0; i < len;) {
        size_t s = utf8_seq_len(p + i, len - i);
        if (s == 0) return "key is not valid UTF-8";
        if (p[i] == 0) has_nul = true;
        i += s;
    }
    return has_nul ? "key contains U+0000" : NULL;
}

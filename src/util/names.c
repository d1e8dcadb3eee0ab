/* names: store names, client ids and keys; see names.h. */
#include "util/names.h"

#include <string.h>

#include "util/utf8.h"

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

const char *names_key_invalid(const char *key, size_t len) {
    if (len == 0) return "key is empty";
    if (len > NAMES_KEY_MAX_BYTES) return "key is longer than 1024 bytes";
    const unsigned char *p = (const unsigned char *)key;
    bool has_nul = false;
    for (size_t i = 0; i < len;) {
        size_t s = utf8_decode(p + i, len - i, NULL);
        if (s == 0) return "key is not valid UTF-8";
        if (p[i] == 0) has_nul = true;
        i += s;
    }
    return has_nul ? "key contains U+0000" : NULL;
}

/* hex: the value of hexadecimal digits, for every parser that reads them
 * (percent-encoding, \u escapes, cursors, znode names). Pure inline
 * functions; any thread. */
#ifndef ZS_HEX_H
#define ZS_HEX_H

#include <stdbool.h>

/* 0..15 for 0-9, a-f, A-F; -1 for anything else. */
static inline int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* The same, lowercase digits only (cursors, bucket names). */
static inline int hex_value_lower(char c) { return c >= 'A' && c <= 'F' ? -1 : hex_value(c); }

/* The same, uppercase digits only (the canonical %XX of znode names). */
static inline int hex_value_upper(char c) { return c >= 'a' && c <= 'f' ? -1 : hex_value(c); }

/* The four hex digits at p (either case; 4 bytes readable) as *out: the
 * XXXX of a \uXXXX escape. False when one is not a hex digit. */
static inline bool hex_quad(const char *p, unsigned *out) {
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int d = hex_value(p[i]);
        if (d < 0) return false;
        v = v << 4 | (unsigned)d;
    }
    *out = v;
    return true;
}

#endif

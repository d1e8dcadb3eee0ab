#include "util/sbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool sbuf_reserve(sbuf *b, size_t extra) {
    if (b->failed) return false;
    if (b->len + extra + 1 <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra + 1) {
        if (cap > SIZE_MAX / 2) { b->failed = true; return false; }
        cap *= 2;
    }
    char *nb = realloc(b->buf, cap);
    if (!nb) { b->failed = true; return false; }
    b->buf = nb;
    b->cap = cap;
    return true;
}

void sbuf_append(sbuf *b, const void *data, size_t len) {
    if (!sbuf_reserve(b, len)) return;
    if (len) memcpy(b->buf + b->len, data, len);
    b->len += len;
    b->buf[b->len] = '\0';
}

void sbuf_puts(sbuf *b, const char *s) { sbuf_append(b, s, strlen(s)); }

void sbuf_putc(sbuf *b, char c) { sbuf_append(b, &c, 1); }

void sbuf_printf(sbuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) { b->failed = true; return; }
    if ((size_t)n < sizeof small) { sbuf_append(b, small, (size_t)n); return; }
    if (!sbuf_reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->buf + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void sbuf_json_str(sbuf *b, const char *s, size_t len) {
    static const char hex[] = "0123456789abcdef";
    if (!sbuf_reserve(b, len + 2)) return;
    sbuf_putc(b, '"');
    size_t run = 0; /* start of the current run of bytes that need no escape */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        sbuf_append(b, s + run, i - run);
        run = i + 1;
        switch (c) {
        case '"': sbuf_append(b, "\\\"", 2); break;
        case '\\': sbuf_append(b, "\\\\", 2); break;
        case '\n': sbuf_append(b, "\\n", 2); break;
        case '\r': sbuf_append(b, "\\r", 2); break;
        case '\t': sbuf_append(b, "\\t", 2); break;
        default: {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            sbuf_append(b, e, 6);
        }
        }
    }
    sbuf_append(b, s + run, len - run);
    sbuf_putc(b, '"');
}

bool sbuf_failed(const sbuf *b) { return b->failed; }

char *sbuf_steal(sbuf *b, size_t *len) {
    if (!b->buf) sbuf_reserve(b, 0);
    if (b->failed) { sbuf_free(b); if (len) *len = 0; return NULL; }
    b->buf[b->len] = '\0';
    char *out = b->buf;
    if (len) *len = b->len;
    b->buf = NULL; b->len = b->cap = 0;
    return out;
}

void sbuf_reset(sbuf *b) { b->len = 0; if (b->buf) b->buf[0] = '\0'; }

void sbuf_free(sbuf *b) { free(b->buf); b->buf = NULL; b->len = b->cap = 0; b->failed = false; }

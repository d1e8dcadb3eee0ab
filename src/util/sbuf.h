/* sbuf: a growable byte buffer with JSON helpers, in the spirit of Redis' sds.
 *
 * An sbuf is a small value type the caller owns (usually on the stack);
 * sbuf_free() releases its heap block. Appends never fail silently: on
 * allocation failure the buffer is marked failed (sbuf_failed) and further
 * appends do nothing, so a writer can check once at the end. The content is
 * always NUL-terminated when len > 0. */
#ifndef ZS_SBUF_H
#define ZS_SBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sbuf {
    char *buf;
    size_t len;
    size_t cap;
    bool failed;
} sbuf;

#define SBUF_INIT {NULL, 0, 0, false}

void sbuf_append(sbuf *b, const void *data, size_t len);
void sbuf_puts(sbuf *b, const char *s);
void sbuf_putc(sbuf *b, char c);
void sbuf_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s (len bytes of UTF-8) as a quoted JSON string; non-ASCII is kept
 * as is, control characters, '"' and '\\' are escaped. */
void sbuf_json_str(sbuf *b, const char *s, size_t len);
bool sbuf_failed(const sbuf *b);
/* Hands the heap block to the caller (NUL-terminated, never NULL unless the
 * buffer failed) and resets b. */
char *sbuf_steal(sbuf *b, size_t *len);
void sbuf_reset(sbuf *b);
void sbuf_free(sbuf *b);

#endif

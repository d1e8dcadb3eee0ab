/* jraw: JSON kept as text.
 *
 * jraw_compact() validates one JSON value (RFC 8259, UTF-8, any value at the
 * top) without building a tree, and writes its compact form: no
 * insignificant whitespace, numbers exactly as written (so 0.1 stays 0.1
 * and 123456789012345678901234567890 is kept, which a double- or
 * int64-based parser would change or refuse), strings with their escapes
 * decoded and written back minimally (only '"', '\\' and control characters
 * escaped; other characters as raw UTF-8). This is "the gateway's compact
 * serialization" of PROTOCOL.md, on which sizes are measured. It runs in
 * constant stack space; nesting deeper than JRAW_MAX_DEPTH is refused.
 *
 * The jraw_next_* functions walk compact text that jraw_compact produced
 * (they assume it is well-formed). */
#ifndef ZS_JRAW_H
#define ZS_JRAW_H

#include <stdbool.h>
#include <stddef.h>

#include "util/sbuf.h"

#define JRAW_MAX_DEPTH 512

typedef struct jraw_err {
    size_t offset;   /* byte offset of the problem */
    int line, column;
    const char *text; /* static reason */
} jraw_err;

typedef struct jraw_span {
    const char *p;
    size_t n;
} jraw_span;

/* Appends the compact form of in[0..n) to out. 0, or -1 and *err. */
int jraw_compact(const char *in, size_t n, sbuf *out, jraw_err *err);

/* Object members: *it starts just after '{' (i.e. at span.p + 1). Returns
 * false at the end. key includes its quotes. */
bool jraw_next_member(const char **it, jraw_span *key, jraw_span *val);
/* Array elements: *it starts just after '['. */
bool jraw_next_elem(const char **it, jraw_span *val);
/* Does the quoted key span equal name (a plain ASCII name)? */
bool jraw_key_is(jraw_span key, const char *name);
/* Decodes a compact string span (with quotes) into raw bytes, appended to
 * out (NUL bytes included). false if v is not a string. */
bool jraw_string(jraw_span v, sbuf *out);
/* An integer literal (no fraction, no exponent) within int64. */
bool jraw_int(jraw_span v, long long *out);

#endif

/* utf8: decoding and encoding one UTF-8 sequence, for every parser and
 * writer of text (keys, JSON text, schemas, error messages). Strict: the
 * well-formed sequences of Unicode 15, section 3.9 (RFC 3629): no overlong
 * forms, no surrogates, nothing above U+10FFFF. Pure; any thread. */
#ifndef ZS_UTF8_H
#define ZS_UTF8_H

#include <stddef.h>

/* Length (1..4) of the well-formed sequence at p (n bytes available, n >= 1)
 * and its code point in *cp (cp may be NULL); 0 when there is none. */
size_t utf8_decode(const unsigned char *p, size_t n, unsigned *cp);
/* Writes code point cp (at most U+10FFFF) into out; returns its length. */
size_t utf8_encode(unsigned cp, char out[4]);

#endif

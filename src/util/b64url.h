/* b64url: strict unpadded base64url decoding (RFC 4648 section 5), for JWT
 * segments and JWK members. Pure functions; any thread. */
#ifndef ZS_B64URL_H
#define ZS_B64URL_H

#include <stddef.h>

/* Decodes n bytes of unpadded base64url into a malloc'd block (*outlen
 * bytes plus a NUL). NULL when the input is not base64url (a padding '=',
 * a character outside the alphabet, a length of 4k+1) or on OOM. */
char *zs_b64url_decode(const char *s, size_t n, size_t *outlen);
/* Whether c is a base64url character. */
int zs_b64url_char(unsigned char c);

#endif

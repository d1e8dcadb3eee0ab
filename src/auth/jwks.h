/* jwks: a JSON Web Key Set (RFC 7517) turned into verification keys for
 * auth: RSA keys (RS256, at least 2048 bits), EC P-256 keys (ES256) and
 * symmetric "oct" keys (HS256, at least 32 bytes). Public keys come out as
 * PEM (SubjectPublicKeyInfo), which libjwt verifies with.
 *
 * Rules: the document is {"keys":[...]} with 1 to JWKS_MAX_KEYS keys; each
 * key's "kid" is a non-empty string of at most 256 bytes, unique in the set
 * (a set of one key may omit it); "use", when present, is "sig"; "alg",
 * when present, is the one the key type gives; other members are ignored.
 * A key that breaks a rule makes the whole set invalid (never a partial
 * set). Pure functions; any thread; the caller owns the result. */
#ifndef ZS_JWKS_H
#define ZS_JWKS_H

#include <jwt.h>
#include <stddef.h>

#define JWKS_MAX_KEYS 64

typedef struct jwks_key {
    char *kid;          /* NULL only in a set of one key without "kid" */
    jwt_alg_t alg;      /* JWT_ALG_RS256, JWT_ALG_ES256 or JWT_ALG_HS256 */
    unsigned char *key; /* PEM text (RS/ES) or the secret (HS), NUL-terminated */
    size_t len;         /* without the terminator */
} jwks_key;

/* 0 and *keys (n of them); -1 and a sentence in err[0..errlen) naming the
 * key (by index and kid) and the rule it breaks (util/err.h). */
int jwks_parse(const char *json, size_t len, jwks_key **keys, size_t *n, char *err, size_t errlen);
void jwks_free(jwks_key *keys, size_t n);

#endif

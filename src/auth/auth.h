/* auth: bearer-token verification (libjwt) and scope checks.
 *
 * An auth_verifier holds its verification keys: an HS256 shared secret, an
 * RS256 / ES256 public key (PEM), or a JSON Web Key Set whose keys tokens
 * select by "kid" (src/auth/jwks.h). Safe to share between threads: its
 * key set is swapped whole by auth_verifier_reload (under its mutex, with a
 * reference a verification under way keeps), and nothing else changes
 * after creation. auth_verify() turns a compact JWT into a principal the
 * caller owns and frees with auth_principal_free().
 *
 * Token rules (PROTOCOL.md "Authentication and scopes"): the token's `alg`
 * must be the verifier's algorithm (never "none"); `exp` is required and must
 * be in the future; `nbf`, when present, must not be in the future; the
 * NumericDates are integers; the policy (audience, issuer, lifetime) holds;
 * an HS256 secret has at least 32 bytes; `scope`
 * is a space-separated list of "<store>:read", "<store>:write", "*:read",
 * "*:write", "admin". write implies read; admin implies everything.
 *
 * Prefix scopes (PROTOCOL.md v1.1 "Prefix scopes"): "<store>:read:<prefix>",
 * "<store>:write:<prefix>" and the same with "*". Each literal "{sub}" in
 * the prefix becomes the token's sub, the rest is percent-decoded (UTF-8);
 * an empty or undecodable prefix, or "{sub}" without a sub, grants nothing.
 * The read set of a store is the union of its read and write grants, the
 * write set of its write grants; a grant without prefix covers the store,
 * admin everything. */
#ifndef ZS_AUTH_H
#define ZS_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

typedef struct auth_verifier auth_verifier;
typedef struct auth_principal auth_principal;

typedef enum { AUTH_READ = 1, AUTH_WRITE = 2, AUTH_ADMIN = 3 } auth_perm;

/* Errors: err[0..errlen) receives a sentence on failure (util/err.h,
 * docs/ARCHITECTURE.md "Errors"); err may be NULL. */

/* Creates a verifier. On failure returns NULL and the reason in err. */
auth_verifier *auth_verifier_hs256(const unsigned char *secret, size_t len, char *err, size_t errlen);
/* PEM public key; the algorithm (RS256 or ES256) follows from the key type. */
auth_verifier *auth_verifier_pubkey(const char *pem, size_t len, char *err, size_t errlen);
/* Sets the claim policy; call once, before the verifier is shared.
 * audience: required in "aud" (a string, or an array holding it); issuer:
 * required as "iss"; either NULL to skip. max_lifetime (seconds, 0: none):
 * exp - iat (exp - now when there is no iat) above it is refused. Returns
 * 0, or -1 and err for an empty name or a negative limit. */
int auth_verifier_set_policy(auth_verifier *v, const char *audience, const char *issuer, long long max_lifetime,
                             char *err, size_t errlen);
/* Reads a file and calls one of the above. */
auth_verifier *auth_verifier_from_secret_file(const char *path, char *err, size_t errlen);
auth_verifier *auth_verifier_from_pubkey_file(const char *path, char *err, size_t errlen);
/* A JSON Web Key Set file (RSA, EC P-256 and oct keys, by "kid"). */
auth_verifier *auth_verifier_from_jwks_file(const char *path, char *err, size_t errlen);
/* Reads the verifier's file again (secret, PEM or key set, as created) and
 * swaps in its keys; a verification under way finishes with the old ones.
 * 0 and summary[0..summarylen) ("2 keys (RS256 a, ES256 b)"; summary may
 * be NULL); -1 and err, the keys in use kept. For SIGHUP. */
int auth_verifier_reload(auth_verifier *v, char *summary, size_t summarylen, char *err, size_t errlen);
void auth_verifier_free(auth_verifier *v);

/* Why a token was refused, as a short fixed word (for logs and metrics):
 * what auth_verify gives in *fail beside its sentence (AUTH_FAIL_MISSING
 * also when the caller found no token at all). */
typedef enum {
    AUTH_FAIL_MISSING = 0,    /* no bearer token */
    AUTH_FAIL_MALFORMED,      /* not a well-formed JWT, bad header or claim types */
    AUTH_FAIL_SIGNATURE,      /* signature, algorithm or key ("kid") refused */
    AUTH_FAIL_EXPIRED,        /* exp passed */
    AUTH_FAIL_NOT_YET_VALID,  /* nbf in the future */
    AUTH_FAIL_LIFETIME,       /* over the policy's max lifetime */
    AUTH_FAIL_AUDIENCE,       /* aud lacks the policy's audience */
    AUTH_FAIL_ISSUER,         /* iss is not the policy's issuer */
    AUTH_FAIL_OTHER,          /* anything else (out of memory, no verifier) */
    AUTH_FAIL_COUNT
} auth_failure;
/* The fixed word of r ("missing", "malformed", "signature", "expired",
 * "not_yet_valid", "lifetime", "audience", "issuer", "other"); static. */
const char *auth_failure_name(auth_failure r);

/* Verifies token at time now. Returns 0 and *out on success; -1 on any
 * failure, with its class in *fail (fail may be NULL) and its sentence in
 * why[0..whylen) (e.g. "token expired"; why may be NULL). */
int auth_verify(const auth_verifier *v, const char *token, time_t now, auth_principal **out, auth_failure *fail,
                char *why, size_t whylen);

/* The principal used when authentication is off: sub "anonymous", admin. */
auth_principal *auth_principal_anonymous(void);

/* Parses a scope string directly (used by auth_verify and by the tests). */
auth_principal *auth_principal_new(const char *sub, const char *scope);

/* May p do perm on store? store NULL asks for a store-independent right
 * (only admin has AUTH_ADMIN; AUTH_READ with NULL store asks "may list"). */
bool auth_can(const auth_principal *p, const char *store, auth_perm perm);
const char *auth_principal_sub(const auth_principal *p);
/* The token's exp (Unix seconds), 0 when there is none (authentication off). */
long long auth_principal_exp(const auth_principal *p);

bool auth_is_admin(const auth_principal *p);

/* Is key[0..klen) in p's read set (write set) of store? */
bool auth_key_readable(const auth_principal *p, const char *store, const char *key, size_t klen);
bool auth_key_writable(const auth_principal *p, const char *store, const char *key, size_t klen);

/* A read set, for filtering feeds: all (the whole store), or the keys
 * starting with one of v[0..n) (n 0: none). The prefixes are sorted
 * byte-wise and none starts with another (covered ones are dropped). They
 * point into the principal: valid while it lives. */
typedef struct auth_prefix {
    const char *p;
    size_t len;
} auth_prefix;
typedef struct auth_keyset {
    bool all;
    auth_prefix *v; /* malloc'd array (auth_keyset_free) */
    size_t n;
} auth_keyset;
/* p's read set in store. 0, or -1 on OOM. */
int auth_store_read_prefixes(const auth_principal *p, const char *store, auth_keyset *out);
/* Is key in s? (NULL s: everything) */
bool auth_keyset_has(const auth_keyset *s, const char *key, size_t klen);
void auth_keyset_free(auth_keyset *s);

/* The prefix of a scope entry, everything after its second ':' (raw[0..len))
 * with "{sub}" replaced and percent-decoded; NULL when it grants nothing (see
 * above). malloc'd, *outlen bytes plus a NUL. Exposed for the tests. */
char *auth_scope_prefix(const char *raw, size_t len, const char *sub, size_t *outlen);
void auth_principal_free(auth_principal *p);

#endif

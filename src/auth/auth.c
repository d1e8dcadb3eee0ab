/* auth: bearer-token verification (libjwt) and scope checks. See auth.h.
 *
 * Verification order in auth_verify(), first failure wins:
 *   1. shape: three non-empty base64url segments, at most AUTH_MAX_TOKEN bytes;
 *   2. header: a JSON object whose "alg" is exactly the verifier's algorithm
 *      (so "none" and every algorithm confusion is refused before any
 *      signature code runs) and without "crit";
 *   3. payload: a JSON object, duplicate member names refused;
 *   4. signature: jwt_decode() with the verifier's key, then jwt_get_alg() is
 *      checked again;
 *   5. claims (only once the signature holds):
 *      `exp` required, `nbf` honoured (now >= nbf), `exp`, `nbf` and `iat`
 *      integers from 0 to year 9999 (1e300 or 1.5 is refused); the
 *      lifetime (exp - iat, or exp - now without iat) at most the
 *      verifier's maximum; `iss` equal to the verifier's issuer and `aud`
 *      (a string or an array) naming its audience, when those are set;
 *      `sub` and `scope` optional strings.
 *
 * Decisions where the contract is silent:
 *   - a missing `sub` gives the empty string; a missing `scope` gives no
 *     rights (the token authenticates, every scoped request is then 403);
 *   - `sub` or `scope` of another JSON type makes the token invalid;
 *   - scope entries that are not one of the five forms (or name an invalid
 *     store) are ignored, so tokens carrying foreign scopes still work;
 *   - no clock leeway: the caller passes `now`;
 *   - public keys: RSA of at least 2048 bits (RS256) or EC P-256 (ES256);
 *   - HS256 secrets of at least 32 bytes (the SHA-256 output size). */
#include "auth/auth.h"

#include "auth/jwks.h"
#include "util/b64url.h"
#include "util/err.h"
#include "util/hex.h"
#include "util/names.h"

#include <errno.h>
#include <jansson.h>
#include <jwt.h>
#include <limits.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest compact token accepted; far above any real bearer token. */
#define AUTH_MAX_TOKEN 65536
/* Largest key or secret file read. */
#define AUTH_MAX_KEY_FILE (1024 * 1024)
#define AUTH_MIN_RSA_BITS 2048
/* Shortest HS256 secret: the hash's output size (RFC 7518 3.2). */
#define AUTH_MIN_HS256_SECRET 32
/* Latest NumericDate accepted: 9999-12-31T23:59:59Z. */
#define AUTH_MAX_TIME 253402300799LL

/* The keys a verifier holds at one moment: swapped whole by a reload, and
 * reference-counted so that a verification under way keeps the set it
 * started with. */
typedef struct auth_keyring {
    atomic_int refs;
    size_t n;
    jwks_key *keys;     /* kid NULL: a single key that any token may use */
} auth_keyring;

typedef enum { AUTH_SRC_NONE, AUTH_SRC_SECRET, AUTH_SRC_PUBKEY, AUTH_SRC_JWKS } auth_source;

struct auth_verifier {
    pthread_mutex_t mu; /* guards ks (a reload swaps it); held only to take a reference */
    auth_keyring *ks;
    auth_source source; /* the file the keys come from, read again by auth_verifier_reload */
    char *path;
    char *audience;     /* required in "aud" (NULL: not checked) */
    char *issuer;       /* required as "iss" (NULL: not checked) */
    long long max_lifetime; /* seconds; exp - iat (or exp - now) above it is refused; 0: none */
};

/* One scope grant: "<store>:read|write[:<prefix>]" or "*:read|write[:<prefix>]". */
typedef struct auth_grant {
    char *store;     /* NULL: every store ("*") */
    auth_perm level; /* AUTH_READ or AUTH_WRITE */
    char *prefix;    /* decoded key prefix (UTF-8, no NUL); NULL: the whole store */
    size_t plen;
} auth_grant;

struct auth_principal {
    char *sub;
    long long exp; /* the token's exp (Unix seconds); 0: none (authentication off) */
    bool admin;
    auth_grant *grants;
    size_t ngrants;
};

/* ---- small helpers ---------------------------------------------------- */

/* Why auth_verify refuses a token: the class (for logs and metrics) and
 * the sentence (for the client), in the caller's buffer. */
typedef struct auth_why {
    auth_failure r;
    char *buf;
    size_t len;
} auth_why;

/* Sets w's class to r and its sentence. Returns -1. */
__attribute__((format(printf, 3, 4))) static int auth_refuse(auth_why *w, auth_failure r, const char *fmt, ...) {
    w->r = r;
    if (w->buf && w->len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(w->buf, w->len, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Copies len bytes into a new NUL-terminated block; NULL on OOM. */
static unsigned char *auth_memdup0(const void *src, size_t len) {
    unsigned char *p = malloc(len + 1);
    if (!p) return NULL;
    if (len) memcpy(p, src, len);
    p[len] = '\0';
    return p;
}

static auth_keyring *auth_keyring_new(jwks_key *keys, size_t n) {
    auth_keyring *ks = malloc(sizeof *ks);
    if (!ks) return NULL;
    atomic_init(&ks->refs, 1);
    ks->n = n;
    ks->keys = keys;
    return ks;
}

static void auth_keyring_unref(auth_keyring *ks) {
    if (ks && atomic_fetch_sub(&ks->refs, 1) == 1) {
        jwks_free(ks->keys, ks->n);
        free(ks);
    }
}

/* A verifier owning keys (taken, also on failure). */
static auth_verifier *auth_verifier_of(jwks_key *keys, size_t n, char *err, size_t errlen) {
    auth_verifier *v = calloc(1, sizeof *v);
    auth_keyring *ks = v ? auth_keyring_new(keys, n) : NULL;
    if (!ks) {
        free(v);
        jwks_free(keys, n);
        zs_errf(err, errlen, "out of memory creating the token verifier");
        return NULL;
    }
    pthread_mutex_init(&v->mu, NULL);
    v->ks = ks;
    return v;
}

/* Allocates a verifier owning a copy of one key (no kid). */
static auth_verifier *auth_verifier_make(jwt_alg_t alg, const void *key, size_t len, char *err, size_t errlen) {
    jwks_key *k = calloc(1, sizeof *k);
    if (k && !(k->key = auth_memdup0(key, len))) {
        free(k);
        k = NULL;
    }
    if (!k) {
        zs_errf(err, errlen, "out of memory creating the token verifier");
        return NULL;
    }
    k->alg = alg;
    k->len = len;
    return auth_verifier_of(k, 1, err, errlen);
}

/* Reads a whole regular file (at most AUTH_MAX_KEY_FILE bytes) into a
 * malloc'd NUL-terminated block. Returns NULL and a sentence in err on
 * failure. */
static char *auth_read_file(const char *path, size_t *len, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        zs_errf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(AUTH_MAX_KEY_FILE + 1);
    if (!buf) {
        fclose(f);
        zs_errf(err, errlen, "out of memory reading %s", path);
        return NULL;
    }
    size_t n = fread(buf, 1, AUTH_MAX_KEY_FILE + 1, f);
    int failed = ferror(f);
    fclose(f);
    if (failed || n > AUTH_MAX_KEY_FILE) {
        free(buf);
        if (failed)
            zs_errf(err, errlen, "cannot read %s", path);
        else
            zs_errf(err, errlen, "%s is larger than %d bytes", path, AUTH_MAX_KEY_FILE);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* ---- verifiers -------------------------------------------------------- */

auth_verifier *auth_verifier_hs256(const unsigned char *secret, size_t len, char *err, size_t errlen) {
    if (!secret || len == 0) {
        zs_errf(err, errlen, "the HS256 secret is empty");
        return NULL;
    }
    if (len > INT_MAX) {
        zs_errf(err, errlen, "the HS256 secret is too long");
        return NULL;
    }
    if (len < AUTH_MIN_HS256_SECRET) {
        zs_errf(err, errlen, "the HS256 secret is %zu bytes; it must be at least %d bytes "
                       "(make one with: openssl rand -hex 32)", len, AUTH_MIN_HS256_SECRET);
        return NULL;
    }
    return auth_verifier_make(JWT_ALG_HS256, secret, len, err, errlen);
}

/* Maps a parsed public key to its JWT algorithm: RSA (>= 2048 bits) is
 * RS256, EC on P-256 is ES256. Returns JWT_ALG_INVAL and a sentence in err for any
 * other key. */
static jwt_alg_t auth_pkey_alg(EVP_PKEY *pkey, char *err, size_t errlen) {
    int type = EVP_PKEY_base_id(pkey);
    if (type == EVP_PKEY_RSA) {
        if (EVP_PKEY_get_bits(pkey) < AUTH_MIN_RSA_BITS) {
            zs_errf(err, errlen, "the RSA public key has %d bits; at least %d are required",
                      EVP_PKEY_get_bits(pkey), AUTH_MIN_RSA_BITS);
            return JWT_ALG_INVAL;
        }
        return JWT_ALG_RS256;
    }
    if (type == EVP_PKEY_EC) {
        char group[64] = "";
        size_t glen = 0;
        if (EVP_PKEY_get_group_name(pkey, group, sizeof group, &glen) != 1 ||
            (strcmp(group, "prime256v1") != 0 && strcmp(group, "P-256") != 0)) {
            zs_errf(err, errlen, "the EC public key is on curve \"%s\"; ES256 needs P-256 (prime256v1)", group);
            return JWT_ALG_INVAL;
        }
        return JWT_ALG_ES256;
    }
    zs_errf(err, errlen, "unsupported public key type (%s); use an RSA or EC P-256 key",
              OBJ_nid2sn(type) ? OBJ_nid2sn(type) : "unknown");
    return JWT_ALG_INVAL;
}

auth_verifier *auth_verifier_pubkey(const char *pem, size_t len, char *err, size_t errlen) {
    if (!pem || len == 0) {
        zs_errf(err, errlen, "the public key is empty");
        return NULL;
    }
    if (len > INT_MAX) {
        zs_errf(err, errlen, "the public key is too long");
        return NULL;
    }
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    if (!bio) {
        zs_errf(err, errlen, "out of memory reading the public key");
        return NULL;
    }
    EVP_PKEY *pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (!pkey) {
        ERR_clear_error();
        zs_errf(err, errlen, "not a PEM public key (expected \"-----BEGIN PUBLIC KEY-----\")");
        return NULL;
    }
    jwt_alg_t alg = auth_pkey_alg(pkey, err, errlen);
    EVP_PKEY_free(pkey);
    if (alg == JWT_ALG_INVAL) return NULL;
    return auth_verifier_make(alg, pem, len, err, errlen);
}

/* Length of buf once ONE trailing "\n" or "\r\n" is removed. */
static size_t auth_strip_newline(const char *buf, size_t len) {
    if (len > 0 && buf[len - 1] == '\n') {
        len--;
        if (len > 0 && buf[len - 1] == '\r') len--;
    }
    return len;
}

static auth_verifier *auth_verifier_from(auth_verifier *v, auth_source src, const char *path, char *err, size_t errlen) {
    if (v && !(v->path = strdup(path))) {
        auth_verifier_free(v);
        zs_errf(err, errlen, "out of memory");
        return NULL;
    }
    if (v) v->source = src;
    return v;
}

static auth_verifier *auth_secret_file(const char *path, char *err, size_t errlen) {
    size_t size = 0;
    char *buf = auth_read_file(path, &size, err, errlen);
    if (!buf) return NULL;
    size_t len = auth_strip_newline(buf, size);
    auth_verifier *v = NULL;
    if (len == 0)
        zs_errf(err, errlen, "the secret file %s is empty", path);
    else
        v = auth_verifier_hs256((const unsigned char *)buf, len, err, errlen);
    memset(buf, 0, size); /* do not leave the secret in freed memory */
    free(buf);
    return v;
}

auth_verifier *auth_verifier_from_secret_file(const char *path, char *err, size_t errlen) {
    return auth_verifier_from(auth_secret_file(path, err, errlen), AUTH_SRC_SECRET, path, err, errlen);
}

static auth_verifier *auth_pubkey_file(const char *path, char *err, size_t errlen) {
    size_t len = 0;
    char *buf = auth_read_file(path, &len, err, errlen);
    if (!buf) return NULL;
    char why[ZS_ERRLEN] = "";
    auth_verifier *v = auth_verifier_pubkey(buf, len, why, sizeof why);
    free(buf);
    if (!v) zs_errf(err, errlen, "%s: %s", path, why[0] ? why : "invalid public key");
    return v;
}

auth_verifier *auth_verifier_from_pubkey_file(const char *path, char *err, size_t errlen) {
    return auth_verifier_from(auth_pubkey_file(path, err, errlen), AUTH_SRC_PUBKEY, path, err, errlen);
}

static auth_verifier *auth_jwks_file(const char *path, char *err, size_t errlen) {
    size_t len = 0;
    char *buf = auth_read_file(path, &len, err, errlen);
    if (!buf) return NULL;
    jwks_key *keys;
    size_t n;
    char why[ZS_ERRLEN] = "";
    int rc = jwks_parse(buf, len, &keys, &n, why, sizeof why);
    memset(buf, 0, len); /* it may hold secrets */
    free(buf);
    if (rc < 0) {
        zs_errf(err, errlen, "%s: %s", path, why[0] ? why : "invalid key set");
        return NULL;
    }
    return auth_verifier_of(keys, n, err, errlen);
}

auth_verifier *auth_verifier_from_jwks_file(const char *path, char *err, size_t errlen) {
    return auth_verifier_from(auth_jwks_file(path, err, errlen), AUTH_SRC_JWKS, path, err, errlen);
}

int auth_verifier_reload(auth_verifier *v, char *summary, size_t summarylen, char *err, size_t errlen) {
    if (!v->path) return zs_errf(err, errlen, "the token keys were not read from a file");
    auth_verifier *fresh = v->source == AUTH_SRC_SECRET   ? auth_secret_file(v->path, err, errlen)
                         : v->source == AUTH_SRC_PUBKEY ? auth_pubkey_file(v->path, err, errlen)
                                                        : auth_jwks_file(v->path, err, errlen);
    if (!fresh) return -1; /* the keys in use stay */
    pthread_mutex_lock(&v->mu);
    auth_keyring *old = v->ks;
    v->ks = fresh->ks;
    pthread_mutex_unlock(&v->mu);
    fresh->ks = old; /* freed with fresh, once no verification holds it */
    if (summary && summarylen) {
        char buf[1024];
        int off = snprintf(buf, sizeof buf, "%zu key%s", v->ks->n, v->ks->n == 1 ? "" : "s");
        for (size_t i = 0; i < v->ks->n && off < (int)sizeof buf - 80; i++)
            off += snprintf(buf + off, sizeof buf - (size_t)off, "%s%s %s", i ? ", " : " (", jwt_alg_str(v->ks->keys[i].alg),
                            v->ks->keys[i].kid ? v->ks->keys[i].kid : "(no kid)");
        if (v->ks->n && off < (int)sizeof buf - 2) snprintf(buf + off, sizeof buf - (size_t)off, ")");
        snprintf(summary, summarylen, "%s", buf);
    }
    auth_verifier_free(fresh);
    return 0;
}

int auth_verifier_set_policy(auth_verifier *v, const char *audience, const char *issuer, long long max_lifetime,
                             char *err, size_t errlen) {
    if ((audience && !*audience) || (issuer && !*issuer)) {
        zs_errf(err, errlen, "the token audience and issuer must not be empty");
        return -1;
    }
    if (max_lifetime < 0 || max_lifetime > AUTH_MAX_TIME) {
        zs_errf(err, errlen, "the maximum token lifetime is out of range");
        return -1;
    }
    char *a = audience ? strdup(audience) : NULL, *i = issuer ? strdup(issuer) : NULL;
    if ((audience && !a) || (issuer && !i)) {
        free(a);
        free(i);
        zs_errf(err, errlen, "out of memory");
        return -1;
    }
    free(v->audience);
    free(v->issuer);
    v->audience = a;
    v->issuer = i;
    v->max_lifetime = max_lifetime;
    return 0;
}

void auth_verifier_free(auth_verifier *v) {
    if (!v) return;
    free(v->audience);
    free(v->issuer);
    free(v->path);
    auth_keyring_unref(v->ks);
    pthread_mutex_destroy(&v->mu);
    free(v);
}

/* ---- token parsing ---------------------------------------------------- */

/* The three segments of a compact JWS. */
typedef struct auth_parts {
    const char *seg[3];
    size_t len[3];
} auth_parts;

/* Splits token into header.payload.signature; each must be non-empty
 * base64url. Returns 0, or -1 with the reason in w. */
static int auth_split(const char *token, auth_parts *p, auth_why *w) {
    size_t n = strnlen(token, AUTH_MAX_TOKEN + 1);
    if (n == 0) return auth_refuse(w, AUTH_FAIL_MALFORMED, "token is empty");
    if (n > AUTH_MAX_TOKEN) return auth_refuse(w, AUTH_FAIL_MALFORMED, "token is longer than %d bytes", AUTH_MAX_TOKEN);
    int k = 0;
    p->seg[0] = token;
    for (size_t i = 0; i < n; i++) {
        if (token[i] == '.') {
            if (k == 2) return auth_refuse(w, AUTH_FAIL_MALFORMED, "malformed token: more than three segments");
            p->len[k] = (size_t)(token + i - p->seg[k]);
            p->seg[++k] = token + i + 1;
        } else if (!zs_b64url_char((unsigned char)token[i])) {
            return auth_refuse(w, AUTH_FAIL_MALFORMED, "malformed token: character at offset %zu is not base64url", i);
        }
    }
    if (k != 2) return auth_refuse(w, AUTH_FAIL_MALFORMED, "malformed token: expected three dot-separated segments");
    p->len[2] = (size_t)(token + n - p->seg[2]);
    if (!p->len[0] || !p->len[1] || !p->len[2])
        return auth_refuse(w, AUTH_FAIL_MALFORMED, "malformed token: empty segment (unsigned tokens are not accepted)");
    return 0;
}

/* Decodes a base64url segment holding a JSON object (duplicate member names
 * refused). Returns a new reference or NULL. */
static json_t *auth_segment_json(const char *seg, size_t len) {
    size_t n = 0;
    char *raw = zs_b64url_decode(seg, len, &n);
    if (!raw) return NULL;
    json_t *j = json_loadb(raw, n, JSON_REJECT_DUPLICATES, NULL);
    free(raw);
    if (j && !json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

/* Checks the JOSE header: alg must equal the verifier's, no "crit".
 * Returns 0, or -1 with the reason in w. */
/* The key a token names: its "kid" in the set, or the set's only key (a
 * single key without a kid takes any token, as a lone PEM or secret
 * does). NULL with the reason in w when there is none. */
static const jwks_key *auth_select_key(const auth_keyring *ks, json_t *h, auth_why *w) {
    json_t *kidj = json_object_get(h, "kid");
    const char *kid = json_string_value(kidj);
    if (kidj && !kid) return auth_refuse(w, AUTH_FAIL_MALFORMED, "token header \"kid\" is not a string"), NULL;
    if (ks->n == 1 && (!ks->keys[0].kid || (kid && strcmp(kid, ks->keys[0].kid) == 0) || !kid)) return &ks->keys[0];
    if (!kid) return auth_refuse(w, AUTH_FAIL_MALFORMED, "token header has no \"kid\" and this gateway holds several keys"), NULL;
    for (size_t i = 0; i < ks->n; i++)
        if (ks->keys[i].kid && strcmp(ks->keys[i].kid, kid) == 0) return &ks->keys[i];
    return auth_refuse(w, AUTH_FAIL_SIGNATURE, "token \"kid\" \"%.64s\" is not one of this gateway's keys", kid), NULL;
}

static int auth_check_header(const auth_keyring *ks, const auth_parts *p, const jwks_key **key, auth_why *w) {
    json_t *h = auth_segment_json(p->seg[0], p->len[0]);
    if (!h) return auth_refuse(w, AUTH_FAIL_MALFORMED, "malformed token: header is not a base64url JSON object");
    const char *alg = json_string_value(json_object_get(h, "alg"));
    int rc = -1;
    const jwks_key *k = alg ? auth_select_key(ks, h, w) : NULL;
    const char *want = k ? jwt_alg_str(k->alg) : "";
    *key = k;
    if (!alg)
        auth_refuse(w, AUTH_FAIL_MALFORMED, "token header has no \"alg\"");
    else if (!k)
        ; /* w says which key was missing */
    else if (strcmp(alg, want) != 0)
        auth_refuse(w, AUTH_FAIL_SIGNATURE, "token algorithm \"%.32s\" is not accepted (expected %s)", alg, want);
    else if (json_object_get(h, "crit"))
        auth_refuse(w, AUTH_FAIL_MALFORMED, "token header has unsupported critical extensions (\"crit\")");
    else
        rc = 0;
    json_decref(h);
    return rc;
}

/* Verifies the signature with libjwt and re-checks the algorithm it saw.
 * Returns 0, or -1 with the reason in w. */
static int auth_check_signature(const jwks_key *v, const char *token, auth_why *w) {
    jwt_t *jwt = NULL;
    int rc = jwt_decode(&jwt, token, v->key, (int)v->len);
    if (rc != 0 || !jwt) {
        if (jwt) jwt_free(jwt);
        ERR_clear_error(); /* libjwt leaves OpenSSL's reasons on this thread */
        if (rc == ENOMEM) return auth_refuse(w, AUTH_FAIL_OTHER, "out of memory verifying the token");
        return auth_refuse(w, AUTH_FAIL_SIGNATURE, "token signature is invalid");
    }
    jwt_alg_t seen = jwt_get_alg(jwt);
    jwt_free(jwt);
    if (seen != v->alg) {
        auth_refuse(w, AUTH_FAIL_SIGNATURE, "token algorithm is not accepted (expected %s)", jwt_alg_str(v->alg));
        return -1;
    }
    return 0;
}

/* Reads the NumericDate claim name: 1 and *out when present, 0 when
 * absent, -1 (the reason in w) when it is not an integer from 0 to year 9999
 * (so 1e300, 1.5 and "123" are refused, and exp - iat cannot overflow). */
static int auth_claim_time(json_t *claims, const char *name, long long *out, auth_why *w) {
    json_t *j = json_object_get(claims, name);
    if (!j) return 0;
    if (!json_is_integer(j)) return auth_refuse(w, AUTH_FAIL_MALFORMED, "token claim \"%s\" is not an integer NumericDate", name);
    json_int_t t = json_integer_value(j);
    if (t < 0 || t > AUTH_MAX_TIME) return auth_refuse(w, AUTH_FAIL_MALFORMED, "token claim \"%s\" is out of range", name);
    *out = (long long)t;
    return 1;
}

/* The lifetime limit: exp - iat, or exp - now without iat. */
static int auth_check_lifetime(const auth_verifier *v, long long exp, int has_iat, long long iat, time_t now,
                               auth_why *w) {
    if (v->max_lifetime <= 0) return 0;
    long long life = exp - (has_iat ? iat : (long long)now);
    if (life > v->max_lifetime)
        return auth_refuse(w, AUTH_FAIL_LIFETIME, "token lifetime (%s) of %lld s is over the limit of %lld s",
                         has_iat ? "exp - iat" : "exp - now", life, v->max_lifetime), -1;
    return 0;
}

/* exp required and in the future; nbf, if any, not in the future; iat, if
 * any, an integer; the lifetime within the verifier's limit. */
static int auth_check_times(const auth_verifier *v, json_t *claims, time_t now, auth_why *w) {
    long long exp = 0, nbf = 0, iat = 0;
    int has = auth_claim_time(claims, "exp", &exp, w);
    if (has < 0) return -1;
    if (has == 0) return auth_refuse(w, AUTH_FAIL_MALFORMED, "token has no \"exp\" claim");
    if ((long long)now >= exp) return auth_refuse(w, AUTH_FAIL_EXPIRED, "token expired");
    has = auth_claim_time(claims, "nbf", &nbf, w);
    if (has < 0) return -1;
    if (has && (long long)now < nbf) return auth_refuse(w, AUTH_FAIL_NOT_YET_VALID, "token is not valid yet (nbf is in the future)");
    has = auth_claim_time(claims, "iat", &iat, w);
    if (has < 0) return -1;
    return auth_check_lifetime(v, exp, has, iat, now, w);
}

/* "aud" must be the verifier's audience, or an array containing it. */
static int auth_check_audience(const auth_verifier *v, json_t *claims, auth_why *w) {
    if (!v->audience) return 0;
    json_t *aud = json_object_get(claims, "aud");
    if (json_is_string(aud) && strcmp(json_string_value(aud), v->audience) == 0) return 0;
    if (json_is_array(aud)) {
        size_t i;
        json_t *e;
        json_array_foreach(aud, i, e)
            if (json_is_string(e) && strcmp(json_string_value(e), v->audience) == 0) return 0;
    }
    return auth_refuse(w, AUTH_FAIL_AUDIENCE, "token \"aud\" does not include this service's audience");
}

/* "iss" must equal the verifier's issuer exactly. */
static int auth_check_issuer(const auth_verifier *v, json_t *claims, auth_why *w) {
    if (!v->issuer) return 0;
    const char *iss = json_string_value(json_object_get(claims, "iss"));
    if (iss && strcmp(iss, v->issuer) == 0) return 0;
    return auth_refuse(w, AUTH_FAIL_ISSUER, "token \"iss\" is not the accepted issuer");
}

/* Reads the optional string claim name into *out (NULL when absent).
 * Returns -1 with the reason in w when present but not a string. */
static int auth_claim_str(json_t *claims, const char *name, const char **out, auth_why *w) {
    json_t *j = json_object_get(claims, name);
    *out = NULL;
    if (!j) return 0;
    if (!json_is_string(j)) return auth_refuse(w, AUTH_FAIL_MALFORMED, "token claim \"%s\" is not a string", name);
    /* A U+0000 would cut the C string short: "alice\u0000x" must not act
     * as "alice" (a {sub} prefix is built from it). */
    if (strlen(json_string_value(j)) != json_string_length(j))
        return auth_refuse(w, AUTH_FAIL_MALFORMED, "token claim \"%s\" holds U+0000", name);
    *out = json_string_value(j);
    return 0;
}

/* Turns the verified claims into a principal. Returns 0, or -1 with the
 * reason in w. */
static int auth_claims_principal(const auth_verifier *v, json_t *claims, time_t now, auth_principal **out,
                                 auth_why *w) {
    const char *sub = NULL, *scope = NULL;
    if (auth_check_times(v, claims, now, w) < 0) return -1;
    if (auth_check_issuer(v, claims, w) < 0) return -1;
    if (auth_check_audience(v, claims, w) < 0) return -1;
    if (auth_claim_str(claims, "sub", &sub, w) < 0) return -1;
    if (auth_claim_str(claims, "scope", &scope, w) < 0) return -1;
    *out = auth_principal_new(sub, scope);
    if (!*out) return auth_refuse(w, AUTH_FAIL_OTHER, "out of memory");
    long long exp = 0;
    (void)auth_claim_time(claims, "exp", &exp, w); /* checked above */
    (*out)->exp = exp;
    return 0;
}

long long auth_principal_exp(const auth_principal *p) { return p ? p->exp : 0; }

const char *auth_failure_name(auth_failure r) {
    static const char *const names[AUTH_FAIL_COUNT] = {"missing",       "malformed", "signature", "expired",
                                                       "not_yet_valid", "lifetime",  "audience",  "issuer",
                                                       "other"};
    return (unsigned)r < AUTH_FAIL_COUNT ? names[r] : "other";
}

/* auth_verify, the reason in w. */
static int auth_verify_why(const auth_verifier *v, const char *token, time_t now, auth_principal **out, auth_why *w) {
    auth_parts parts;
    if (!v || !out) return auth_refuse(w, AUTH_FAIL_OTHER, "no token verifier");
    if (!token) return auth_refuse(w, AUTH_FAIL_MISSING, "no token");
    if (auth_split(token, &parts, w) < 0) return -1;
    auth_verifier *mv = (auth_verifier *)v; /* the lock is not part of its value */
    pthread_mutex_lock(&mv->mu);
    auth_keyring *ks = v->ks;
    atomic_fetch_add(&ks->refs, 1);
    pthread_mutex_unlock(&mv->mu);
    const jwks_key *key = NULL;
    int rc = auth_check_header(ks, &parts, &key, w);
    /* Parsed before the signature check only to name the failure well; its
     * claims are used only once the signature holds. */
    json_t *claims = rc == 0 ? auth_segment_json(parts.seg[1], parts.len[1]) : NULL;
    if (rc == 0 && !claims) {
        rc = auth_refuse(w, AUTH_FAIL_MALFORMED, "malformed token: payload is not a base64url JSON object");
    }
    if (rc == 0) rc = auth_check_signature(key, token, w);
    if (rc == 0) rc = auth_claims_principal(v, claims, now, out, w);
    json_decref(claims);
    auth_keyring_unref(ks);
    return rc;
}

int auth_verify(const auth_verifier *v, const char *token, time_t now, auth_principal **out, auth_failure *fail,
                char *why, size_t whylen) {
    auth_why w = {AUTH_FAIL_OTHER, why, whylen};
    if (out) *out = NULL;
    int rc = auth_verify_why(v, token, now, out, &w);
    if (rc < 0 && fail) *fail = w.r;
    return rc;
}

/* ---- principals and scopes -------------------------------------------- */

/* Adds a grant (store s[0..slen) or every store when s is NULL; prefix
 * pre[0..plen), taken over, or NULL for the whole store). Returns -1 on OOM
 * (pre is then freed). */
static int auth_grant_add(auth_principal *p, const char *s, size_t slen, auth_perm level, char *pre, size_t plen) {
    auth_grant *g = realloc(p->grants, (p->ngrants + 1) * sizeof *g);
    if (!g) { free(pre); return -1; }
    p->grants = g;
    char *name = NULL;
    if (s && !(name = (char *)auth_memdup0(s, slen))) { free(pre); return -1; }
    g[p->ngrants] = (auth_grant){name, level, pre, plen};
    p->ngrants++;
    return 0;
}

/* The key prefix of a scope entry (PROTOCOL.md v1.1 "Prefix scopes"): each
 * literal "{sub}" in raw[0..len) replaced by sub (as is, not decoded), the
 * rest percent-decoded. NULL (the entry grants nothing) when the result is
 * empty, a "%" is not followed by two hex digits, "{sub}" appears and the
 * token has no (or an empty) sub, or the result is not a possible key
 * prefix: not UTF-8, holding U+0000 (no key holds it), or longer than a
 * key. A malloc'd NUL-terminated block and *outlen otherwise. */
char *auth_scope_prefix(const char *raw, size_t len, const char *sub, size_t *outlen) {
    size_t sublen = sub ? strlen(sub) : 0, cap = len + 1;
    for (size_t i = 0; i + 5 <= len; i++)
        if (memcmp(raw + i, "{sub}", 5) == 0) cap += sublen;
    char *out = malloc(cap);
    if (!out) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        if (i + 5 <= len && memcmp(raw + i, "{sub}", 5) == 0) {
            if (!sublen) goto bad;
            memcpy(out + o, sub, sublen);
            o += sublen;
            i += 5;
        } else if (raw[i] == '%') {
            if (i + 3 > len) goto bad;
            int h = hex_value(raw[i + 1]), l = hex_value(raw[i + 2]);
            if (h < 0 || l < 0) goto bad;
            out[o++] = (char)(h << 4 | l);
            i += 3;
        } else {
            out[o++] = raw[i++];
        }
    }
    out[o] = '\0';
    if (names_key_invalid(out, o)) goto bad; /* empty, too long, not UTF-8, or U+0000 */
    *outlen = o;
    return out;
bad:
    free(out);
    return NULL;
}

/* Applies one scope entry e[0..len) to p; unknown entries are ignored, and
 * so are prefix entries whose prefix grants nothing. Returns -1 on OOM. */
static int auth_scope_entry(auth_principal *p, const char *e, size_t len) {
    if (len == 5 && memcmp(e, "admin", 5) == 0) {
        p->admin = true;
        return 0;
    }
    const char *colon = memchr(e, ':', len);
    if (!colon) return 0;
    size_t slen = (size_t)(colon - e), rlen = len - slen - 1;
    const char *colon2 = memchr(colon + 1, ':', rlen);
    const char *pre = NULL;
    size_t prelen = 0;
    if (colon2) {
        pre = colon2 + 1;
        prelen = (size_t)(e + len - pre);
        rlen = (size_t)(colon2 - colon - 1);
    }
    auth_perm level;
    if (rlen == 4 && memcmp(colon + 1, "read", 4) == 0)
        level = AUTH_READ;
    else if (rlen == 5 && memcmp(colon + 1, "write", 5) == 0)
        level = AUTH_WRITE;
    else
        return 0;
    bool any = slen == 1 && e[0] == '*';
    if (!any && !names_valid_n(e, slen)) return 0;
    char *prefix = NULL;
    size_t plen = 0;
    if (colon2) {
        prefix = auth_scope_prefix(pre, prelen, p->sub, &plen);
        if (!prefix) return 0; /* grants nothing (or OOM: fails closed) */
    }
    return auth_grant_add(p, any ? NULL : e, slen, level, prefix, plen);
}
/* Parses a space-separated scope string into p. Returns -1 on OOM. */
static int auth_scope_parse(auth_principal *p, const char *scope) {
    const char *s = scope;
    while (*s) {
        while (*s == ' ') s++;
        const char *e = s;
        while (*e && *e != ' ') e++;
        if (e > s && auth_scope_entry(p, s, (size_t)(e - s)) < 0) return -1;
        s = e;
    }
    return 0;
}

auth_principal *auth_principal_new(const char *sub, const char *scope) {
    auth_principal *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->sub = strdup(sub ? sub : "");
    if (!p->sub || (scope && auth_scope_parse(p, scope) < 0)) {
        auth_principal_free(p);
        return NULL;
    }
    return p;
}

auth_principal *auth_principal_anonymous(void) {
    return auth_principal_new("anonymous", "admin");
}

/* Does grant g apply to store (NULL: any store)? */
static bool auth_grant_on(const auth_grant *g, const char *store) {
    return !store || !g->store || strcmp(g->store, store) == 0;
}

/* store NULL asks for a store-independent right: AUTH_ADMIN only for admin;
 * AUTH_READ ("may list") / AUTH_WRITE when p may read / write at least one
 * store. With a store: whether p holds any grant of that level in it, a
 * prefix grant included (the key-level checks are auth_key_*). */
bool auth_can(const auth_principal *p, const char *store, auth_perm perm) {
    if (!p) return false;
    if (p->admin) return true;
    if (perm != AUTH_READ && perm != AUTH_WRITE) return false;
    for (size_t i = 0; i < p->ngrants; i++)
        if (auth_grant_on(&p->grants[i], store) && p->grants[i].level >= perm) return true;
    return false;
}

bool auth_is_admin(const auth_principal *p) { return p && p->admin; }

/* Is key in the set of p's grants on store of at least level? */
static bool auth_key_in(const auth_principal *p, const char *store, const char *key, size_t klen, auth_perm level) {
    if (!p) return false;
    if (p->admin) return true;
    for (size_t i = 0; i < p->ngrants; i++) {
        const auth_grant *g = &p->grants[i];
        if (g->level < level || !auth_grant_on(g, store)) continue;
        if (!g->prefix || (klen >= g->plen && memcmp(key, g->prefix, g->plen) == 0)) return true;
    }
    return false;
}

bool auth_key_readable(const auth_principal *p, const char *store, const char *key, size_t klen) {
    return auth_key_in(p, store, key, klen, AUTH_READ);
}

bool auth_key_writable(const auth_principal *p, const char *store, const char *key, size_t klen) {
    return auth_key_in(p, store, key, klen, AUTH_WRITE);
}

static int auth_prefix_cmp(const void *a, const void *b) {
    const auth_prefix *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->p, y->p, n);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

int auth_store_read_prefixes(const auth_principal *p, const char *store, auth_keyset *out) {
    *out = (auth_keyset){0};
    if (!p) return 0;
    if (p->admin) { out->all = true; return 0; }
    size_t n = 0;
    for (size_t i = 0; i < p->ngrants; i++) {
        const auth_grant *g = &p->grants[i];
        if (!auth_grant_on(g, store)) continue;
        if (!g->prefix) { out->all = true; return 0; }
        n++;
    }
    if (!n) return 0;
    auth_prefix *v = malloc(n * sizeof *v);
    if (!v) return -1;
    n = 0;
    for (size_t i = 0; i < p->ngrants; i++)
        if (auth_grant_on(&p->grants[i], store)) v[n++] = (auth_prefix){p->grants[i].prefix, p->grants[i].plen};
    /* Sorted byte-wise, a prefix comes right before the prefixes it covers:
     * keep only those no kept one covers (no key is then in two). */
    qsort(v, n, sizeof *v, auth_prefix_cmp);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (k && v[i].len >= v[k - 1].len && memcmp(v[i].p, v[k - 1].p, v[k - 1].len) == 0) continue;
        v[k++] = v[i];
    }
    out->v = v;
    out->n = k;
    return 0;
}

bool auth_keyset_has(const auth_keyset *s, const char *key, size_t klen) {
    if (!s || s->all) return true;
    for (size_t i = 0; i < s->n; i++)
        if (klen >= s->v[i].len && memcmp(key, s->v[i].p, s->v[i].len) == 0) return true;
    return false;
}

void auth_keyset_free(auth_keyset *s) {
    if (!s) return;
    free(s->v);
    *s = (auth_keyset){0};
}

const char *auth_principal_sub(const auth_principal *p) {
    return p ? p->sub : NULL;
}

void auth_principal_free(auth_principal *p) {
    if (!p) return;
    for (size_t i = 0; i < p->ngrants; i++) {
        free(p->grants[i].store);
        free(p->grants[i].prefix);
    }
    free(p->grants);
    free(p->sub);
    free(p);
}

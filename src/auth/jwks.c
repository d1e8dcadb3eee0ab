#include "auth/jwks.h"

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/b64url.h"
#include "util/err.h"

#define JWKS_MIN_RSA_BITS 2048
#define JWKS_MIN_SECRET 32
#define JWKS_MAX_KID 256


/* The base64url member name of k, decoded; NULL when absent or invalid. */
static unsigned char *member_b64(json_t *k, const char *name, size_t *len) {
    const char *s = json_string_value(json_object_get(k, name));
    return s ? (unsigned char *)zs_b64url_decode(s, strlen(s), len) : NULL;
}

/* PEM (SubjectPublicKeyInfo) of pkey, malloc'd. */
static unsigned char *pem_of(EVP_PKEY *pkey, size_t *len) {
    BIO *bio = BIO_new(BIO_s_mem());
    unsigned char *out = NULL;
    if (bio && PEM_write_bio_PUBKEY(bio, pkey) == 1) {
        char *data;
        long n = BIO_get_mem_data(bio, &data);
        if (n > 0 && (out = malloc((size_t)n + 1))) {
            memcpy(out, data, (size_t)n);
            out[n] = 0;
            *len = (size_t)n;
        }
    }
    BIO_free(bio);
    return out;
}

/* EVP_PKEY from OSSL parameters of one type. */
static EVP_PKEY *pkey_from(const char *type, OSSL_PARAM *params) {
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    EVP_PKEY *pkey = NULL;
    if (ctx && EVP_PKEY_fromdata_init(ctx) == 1) EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params);
    EVP_PKEY_CTX_free(ctx);
    return pkey;
}

static int rsa_key(json_t *k, jwks_key *out, const char *who, char *err, size_t errlen) {
    size_t nl = 0, el = 0;
    unsigned char *n = member_b64(k, "n", &nl), *e = member_b64(k, "e", &el);
    int rc = -1;
    BIGNUM *bn = n ? BN_bin2bn(n, (int)nl, NULL) : NULL, *be = e ? BN_bin2bn(e, (int)el, NULL) : NULL;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY *pkey = NULL;
    if (!n || !e || nl == 0 || el == 0) {
        zs_errf(err, errlen, "%s: an RSA key needs base64url \"n\" and \"e\"", who);
    } else if (!bn || !be || !bld || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) ||
               !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) || !(params = OSSL_PARAM_BLD_to_param(bld)) ||
               !(pkey = pkey_from("RSA", params))) {
        zs_errf(err, errlen, "%s: not a valid RSA public key", who);
    } else if (EVP_PKEY_get_bits(pkey) < JWKS_MIN_RSA_BITS) {
        zs_errf(err, errlen, "%s: the RSA key has %d bits; at least %d are required", who, EVP_PKEY_get_bits(pkey), JWKS_MIN_RSA_BITS);
    } else if (!(out->key = pem_of(pkey, &out->len))) {
        zs_errf(err, errlen, "out of memory");
    } else {
        out->alg = JWT_ALG_RS256;
        rc = 0;
    }
    EVP_PKEY_free(pkey);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn);
    BN_free(be);
    free(n);
    free(e);
    ERR_clear_error();
    return rc;
}

static int ec_key(json_t *k, jwks_key *out, const char *who, char *err, size_t errlen) {
    const char *crv = json_string_value(json_object_get(k, "crv"));
    if (!crv || strcmp(crv, "P-256") != 0) return zs_errf(err, errlen, "%s: an EC key must be on curve \"P-256\" (ES256)", who);
    size_t xl = 0, yl = 0;
    unsigned char *x = member_b64(k, "x", &xl), *y = member_b64(k, "y", &yl);
    int rc = -1;
    unsigned char point[65];
    OSSL_PARAM params[3];
    EVP_PKEY *pkey = NULL;
    if (!x || !y || xl != 32 || yl != 32) {
        zs_errf(err, errlen, "%s: an EC P-256 key needs base64url \"x\" and \"y\" of 32 bytes each", who);
    } else {
        point[0] = 0x04; /* uncompressed */
        memcpy(point + 1, x, 32);
        memcpy(point + 33, y, 32);
        params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)"prime256v1", 0);
        params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point);
        params[2] = OSSL_PARAM_construct_end();
        /* fromdata does not check that the point is on the curve: do it */
        EVP_PKEY_CTX *chk = NULL;
        if (!(pkey = pkey_from("EC", params)) || !(chk = EVP_PKEY_CTX_new(pkey, NULL)) || EVP_PKEY_public_check(chk) != 1) {
            zs_errf(err, errlen, "%s: not a valid EC P-256 public key (the point is not on the curve)", who);
        } else if (!(out->key = pem_of(pkey, &out->len))) {
            zs_errf(err, errlen, "out of memory");
        } else {
            out->alg = JWT_ALG_ES256;
            rc = 0;
        }
        EVP_PKEY_CTX_free(chk);
    }
    EVP_PKEY_free(pkey);
    free(x);
    free(y);
    ERR_clear_error();
    return rc;
}

static int oct_key(json_t *k, jwks_key *out, const char *who, char *err, size_t errlen) {
    size_t len = 0;
    unsigned char *s = member_b64(k, "k", &len);
    if (!s) return zs_errf(err, errlen, "%s: an oct key needs base64url \"k\"", who);
    if (len < JWKS_MIN_SECRET) {
        memset(s, 0, len);
        free(s);
        return zs_errf(err, errlen, "%s: the HS256 secret is %zu bytes; it must be at least %d", who, len, JWKS_MIN_SECRET);
    }
    out->key = s;
    out->len = len;
    out->alg = JWT_ALG_HS256;
    return 0;
}

void jwks_free(jwks_key *keys, size_t n) {
    for (size_t i = 0; keys && i < n; i++) {
        if (keys[i].key && keys[i].alg == JWT_ALG_HS256) memset(keys[i].key, 0, keys[i].len);
        free(keys[i].key);
        free(keys[i].kid);
    }
    free(keys);
}

int jwks_parse(const char *json, size_t len, jwks_key **keys, size_t *n, char *err, size_t errlen) {
    *keys = NULL;
    *n = 0;
    json_error_t je;
    json_t *doc = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
    json_t *arr = doc ? json_object_get(doc, "keys") : NULL;
    if (!doc || !json_is_object(doc) || !json_is_array(arr)) {
        json_decref(doc);
        return zs_errf(err, errlen, "not a JSON Web Key Set (expected {\"keys\":[...]})");
    }
    size_t count = json_array_size(arr);
    if (count == 0 || count > JWKS_MAX_KEYS) {
        json_decref(doc);
        return zs_errf(err, errlen, "the key set holds %zu keys; 1 to %d are accepted", count, JWKS_MAX_KEYS);
    }
    jwks_key *out = calloc(count, sizeof *out);
    if (!out) { json_decref(doc); return zs_errf(err, errlen, "out of memory"); }
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < count; i++) {
        json_t *k = json_array_get(arr, i);
        json_t *kidj = json_is_object(k) ? json_object_get(k, "kid") : NULL;
        const char *kid = json_string_value(kidj);
        char who[320];
        snprintf(who, sizeof who, "keys[%zu]%s%.256s%s", i, kid ? " (kid \"" : "", kid ? kid : "", kid ? "\")" : "");
        if (!json_is_object(k)) { rc = zs_errf(err, errlen, "%s: not an object", who); break; }
        if (kidj && (!kid || !*kid || strlen(kid) > JWKS_MAX_KID)) {
            rc = zs_errf(err, errlen, "%s: \"kid\" must be a non-empty string of at most %d bytes", who, JWKS_MAX_KID);
            break;
        }
        if (!kid && count > 1) { rc = zs_errf(err, errlen, "%s: a set of several keys needs a \"kid\" on each", who); break; }
        for (size_t j = 0; kid && j < i; j++)
            if (out[j].kid && strcmp(out[j].kid, kid) == 0) rc = zs_errf(err, errlen, "%s: \"kid\" used twice", who);
        if (rc) break;
        const char *use = json_string_value(json_object_get(k, "use"));
        if (json_object_get(k, "use") && (!use || strcmp(use, "sig") != 0)) {
            rc = zs_errf(err, errlen, "%s: \"use\" must be \"sig\"", who);
            break;
        }
        const char *kty = json_string_value(json_object_get(k, "kty"));
        if (!kty) rc = zs_errf(err, errlen, "%s: no \"kty\"", who);
        else if (strcmp(kty, "RSA") == 0) rc = rsa_key(k, &out[i], who, err, errlen);
        else if (strcmp(kty, "EC") == 0) rc = ec_key(k, &out[i], who, err, errlen);
        else if (strcmp(kty, "oct") == 0) rc = oct_key(k, &out[i], who, err, errlen);
        else rc = zs_errf(err, errlen, "%s: key type \"%.32s\" is not supported (RSA, EC or oct)", who, kty);
        if (rc) break;
        const char *alg = json_string_value(json_object_get(k, "alg"));
        if (json_object_get(k, "alg") && (!alg || strcmp(alg, jwt_alg_str(out[i].alg)) != 0)) {
            rc = zs_errf(err, errlen, "%s: \"alg\" must be \"%s\" for this key", who, jwt_alg_str(out[i].alg));
            break;
        }
        if (kid && !(out[i].kid = strdup(kid))) rc = zs_errf(err, errlen, "out of memory");
    }
    json_decref(doc);
    if (rc) {
        jwks_free(out, count);
        return -1;
    }
    *keys = out;
    *n = count;
    return 0;
}

/* jwks: JSON Web Key Set parsing (jwks_parse), hostile bytes as the file.
 *
 * Properties: no crash, leak or undefined behaviour; a refusal has a
 * reason; an accepted set holds 1 to JWKS_MAX_KEYS keys, each with a known
 * algorithm and a non-empty key (PEM text for RS256/ES256, which OpenSSL
 * parses back; at least 32 bytes for HS256), a kid on every key of a set
 * of several, and no kid twice. */
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <string.h>

#include "auth/jwks.h"
#include "fuzz.h"
#include "util/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    jwks_key *keys = NULL;
    size_t n = 0;
    char err[ZS_ERRLEN] = "";
    if (jwks_parse((const char *)data, size, &keys, &n, err, sizeof err) < 0) {
        CHECK(*err);
        return 0;
    }
    CHECK(!*err); /* untouched on success */
    CHECK(n >= 1 && n <= JWKS_MAX_KEYS);
    for (size_t i = 0; i < n; i++) {
        CHECK(keys[i].key && keys[i].len > 0);
        CHECK(n == 1 || keys[i].kid);
        for (size_t j = 0; j < i; j++)
            CHECK(!keys[i].kid || !keys[j].kid || strcmp(keys[i].kid, keys[j].kid) != 0);
        if (keys[i].alg == JWT_ALG_HS256) {
            CHECK(keys[i].len >= 32);
        } else {
            CHECK(keys[i].alg == JWT_ALG_RS256 || keys[i].alg == JWT_ALG_ES256);
            BIO *bio = BIO_new_mem_buf(keys[i].key, (int)keys[i].len);
            EVP_PKEY *pkey = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
            CHECK(pkey != NULL);
            EVP_PKEY_free(pkey);
            BIO_free(bio);
            ERR_clear_error();
        }
    }
    jwks_free(keys, n);
    return 0;
}

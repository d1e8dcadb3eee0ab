/* Unit tests for src/auth: token verification (HS256, RS256, ES256), the
 * refusals (bad signature, tampering, expiry, nbf, alg none, algorithm
 * confusion, malformed tokens and claims), scope rules, and key files.
 * Tokens are minted here with libjwt, or assembled by hand and signed with
 * OpenSSL's HMAC when libjwt cannot produce the shape under test. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/auth.h"
#include "util/err.h"

#define NOW ((time_t)1700000000)
#define HOUR 3600L
#define SECRET "s3cr3t-shared-key-for-zoosync-tests"

/* Test keys generated with the openssl CLI for these tests only. */
static const char RSA_PRIV[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQDaowDpqO7M0ITI\n"
    "t1qjw2U7OAbByBumOkV1eo7OTMB+mr8wYbln919OZleH8vi6MrJs+6PbPqW006en\n"
    "zHq2Oaa0S+FSus4HNEkWxmXfSEVp8jokE7dL3d8Q6+li0u+FO9D7ltk3YK7lZd8i\n"
    "sJg1B2g7wzhqdXmNflgD59kFo41lUapG/eUdrQDspjkcx24NI2XOneEbnnPijF7g\n"
    "svVsXR+d0GYPk9zV2V1H6kQgXb9Zzd3tgLYMeprtxtovJidZURTtbwUFQfOy6H8h\n"
    "hWNHfFooplYFI+iiCfTIL75IU6A5ebVScvuGsP85gHD/xNuCMFW5X648cZHrnZ/c\n"
    "/RNVeRAFAgMBAAECggEAGzruqStgxTePN3nGmzDXJyn82skJJd80uW37N+x36QzC\n"
    "6naxYyZ8be+cepJ4sfq7HYxgcF+mvxUWrh/EhMo8s1COuVa0xFGZwhwRogkxRAG8\n"
    "MLQX7HtaBenWlnf+XDytSY2/HgDiUjB+5aYoPtUzq9sjkqFw8yjHiNepFY+005Jo\n"
    "8kNxW05y53zzjswcw6CQums942U/hEC0FQg0pTr7wUl8SR382LONwa7hxR5CBdmZ\n"
    "qL82kKSJeTn4efJwoX11/6ETAd3lyzX3GfhUKrC2PlbJkw+psV2jrXk9VUXNWq4R\n"
    "YvjDtBuUkQIEnxTeSm7G2sG4kFJaM5KLs9R7DZSpfQKBgQD1Ovgwmpeg3mYXR7I/\n"
    "tjMw2iLSn5fPEK/mdRbq76AJ7fYcEhk/NfcUNXKG5fwTn53vS+cBKpqB9L8hJknB\n"
    "hqzuSpQFdu34eM9MwEdkxzk6Hff0MJ32hsOLTrrve/DCD2kcDGskFmgsA6mNaIU6\n"
    "6iv8AoxQYnJaJGpN5rYSJU7X0wKBgQDkPQ1hVU8pRqLlBriBQztNEEppmLrUkh+e\n"
    "qS1757s+w8V/d5Gd5/c+K8zIch0dtalrL6ERNfU7ow8iSG1U5i2Ha9zEGlk4IbHV\n"
    "Y4yxCEo0d+Cz1xkZ1TV2v4ZuA+U/WvqRpqWJkRz9LV+yuSXNrLxaACgUfaTv5Ske\n"
    "Tgw+UFepxwKBgEMPx0NzYzfI2d5P6vzlVIZtgMxcfGVRyOia6JOCyB8vBfiTMnhI\n"
    "x7KtEw604gRzx/ripN96yRn01je4gr77l1rq5iPAbD9guj/g7SUwHgQ4odATY39B\n"
    "R0RXWWOYXzSShkn3U21g+0feEIXtKVH9K94UzE5HPcJM5w06pFu9/BulAoGAVRcR\n"
    "0vTME3ZbKolr5f0bsapeI6omFTP5B9zIsUX+f/LawZ/hMP6XJZ2Mtjoc8sOUSvqx\n"
    "0MnOCJLNBJn98MXzuWYUIyQzmQKu2wBHJoURrSf4JPQPTps3WHMk+gUHxav0eLKp\n"
    "SnVIWnc9E1OFbX11pxQh3SnOgQVtY/fzBpRLamcCgYADF6PwZZq+gufChF+tHjst\n"
    "KYtA01GSFJGrNYyF4tvKPggw/+CBgYpb/IyojF3C3XWfiRmv07CIlu7B5olBznw3\n"
    "5vqnEwueKN0oQ47VlBc8NVjRRU/vZk4hoyNGhHV0qsuDy4bhQnp1c34siCv/Yt9A\n"
    "Yh2XSmefvm0zubnF/DV4jw==\n"
    "-----END PRIVATE KEY-----\n";
static const char RSA_PUB[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA2qMA6ajuzNCEyLdao8Nl\n"
    "OzgGwcgbpjpFdXqOzkzAfpq/MGG5Z/dfTmZXh/L4ujKybPuj2z6ltNOnp8x6tjmm\n"
    "tEvhUrrOBzRJFsZl30hFafI6JBO3S93fEOvpYtLvhTvQ+5bZN2Cu5WXfIrCYNQdo\n"
    "O8M4anV5jX5YA+fZBaONZVGqRv3lHa0A7KY5HMduDSNlzp3hG55z4oxe4LL1bF0f\n"
    "ndBmD5Pc1dldR+pEIF2/Wc3d7YC2DHqa7cbaLyYnWVEU7W8FBUHzsuh/IYVjR3xa\n"
    "KKZWBSPoogn0yC++SFOgOXm1UnL7hrD/OYBw/8TbgjBVuV+uPHGR652f3P0TVXkQ\n"
    "BQIDAQAB\n"
    "-----END PUBLIC KEY-----\n";
static const char EC_PRIV[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgs5xHUHekobePsILa\n"
    "H7BaHwgTVCcgtOEko+0YWjSDATqhRANCAAReGk1YE5gtfsNOsmpBFo2zef5brPyQ\n"
    "H6IrnDoidLLhWZ8VU4jOgxitwGumQa/5dmefxVIidztxGvshm1/mf7rC\n"
    "-----END PRIVATE KEY-----\n";
static const char EC_PUB[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEXhpNWBOYLX7DTrJqQRaNs3n+W6z8\n"
    "kB+iK5w6InSy4VmfFVOIzoMYrcBrpkGv+XZnn8VSInc7cRr7IZtf5n+6wg==\n"
    "-----END PUBLIC KEY-----\n";
/* Keys the verifier must refuse: wrong curve, short RSA, Ed25519. */
static const char EC384_PUB[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEU4wNrlBCy5jcQsgnUrq81mTtI93W3ck/\n"
    "ItQWLnWFriVr0H7YJx0iknOE6KEys993gCK3pPjLfG3S099iFfAoljCohKYycMVc\n"
    "Y6oDsbMT9KTtigUIeIzmsRYYPOR4Z5T/\n"
    "-----END PUBLIC KEY-----\n";
static const char RSA1024_PUB[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDu0zV/jtbfB4W1V6R0bklO3/BI\n"
    "3v0I9rNIB7Qvea+tn1NWmYVHOcEuvJNMjMVT92jJmlRzrR6BYqi/oJiHoboE8Ll5\n"
    "mxJna69EspcpEu8lXY9FvlCef+PTV5sVyCpVlYihplnxJZ/4ZCaXXqvwKlEfBWFp\n"
    "Q1f7RvfUY1WzD2XsvwIDAQAB\n"
    "-----END PUBLIC KEY-----\n";
static const char ED25519_PUB[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MCowBQYDK2VwAyEANC8VORbWhbF4Y/IBngbZ8woNwCTnwqGOFpdN7JwftqE=\n"
    "-----END PUBLIC KEY-----\n";

typedef struct fixture {
    auth_verifier *hs, *rs, *es;
} fixture;

/* ---- helpers ---------------------------------------------------------- */

/* Mints a token with libjwt. exp / nbf of 0 are left out; sub / scope NULL
 * are left out. Caller frees. */
static char *mint(jwt_alg_t alg, const char *key, size_t keylen, const char *sub, const char *scope, long exp,
                  long nbf) {
    jwt_t *j = NULL;
    assert_int_equal(jwt_new(&j), 0);
    if (sub) assert_int_equal(jwt_add_grant(j, "sub", sub), 0);
    if (scope) assert_int_equal(jwt_add_grant(j, "scope", scope), 0);
    if (exp) assert_int_equal(jwt_add_grant_int(j, "exp", exp), 0);
    if (nbf) assert_int_equal(jwt_add_grant_int(j, "nbf", nbf), 0);
    assert_int_equal(jwt_set_alg(j, alg, (const unsigned char *)key, (int)keylen), 0);
    char *tok = jwt_encode_str(j);
    jwt_free(j);
    assert_non_null(tok);
    return tok;
}

static char *mint_hs(const char *scope, long exp, long nbf) {
    return mint(JWT_ALG_HS256, SECRET, strlen(SECRET), "alice", scope, exp, nbf);
}

/* Mints an HS256 token whose claims are the JSON object text claims. */
static char *mint_hs_json(const char *claims) {
    jwt_t *j = NULL;
    assert_int_equal(jwt_new(&j), 0);
    assert_int_equal(jwt_add_grants_json(j, claims), 0);
    assert_int_equal(jwt_set_alg(j, JWT_ALG_HS256, (const unsigned char *)SECRET, (int)strlen(SECRET)), 0);
    char *tok = jwt_encode_str(j);
    jwt_free(j);
    assert_non_null(tok);
    return tok;
}

/* Appends the unpadded base64url encoding of data to out. */
static void b64url(char *out, const void *data, size_t len) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const unsigned char *d = data;
    char *o = out + strlen(out);
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)d[i] << 16;
        if (i + 1 < len) v |= (uint32_t)d[i + 1] << 8;
        if (i + 2 < len) v |= d[i + 2];
        *o++ = tab[(v >> 18) & 63];
        *o++ = tab[(v >> 12) & 63];
        if (i + 1 < len) *o++ = tab[(v >> 6) & 63];
        if (i + 2 < len) *o++ = tab[v & 63];
    }
    *o = '\0';
}

/* Assembles header.payload from raw JSON texts and signs it with HS256 over
 * SECRET (a correct signature on an arbitrary shape). Caller frees. */
static char *forge_hs(const char *header, const char *payload) {
    char *tok = calloc(1, 4 * (strlen(header) + strlen(payload)) + 128);
    assert_non_null(tok);
    b64url(tok, header, strlen(header));
    strcat(tok, ".");
    b64url(tok, payload, strlen(payload));
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    assert_non_null(HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), (const unsigned char *)tok, strlen(tok), mac,
                         &maclen));
    strcat(tok, ".");
    b64url(tok, mac, maclen);
    return tok;
}

/* Verifies tok and expects success; returns the principal. */
static auth_principal *expect_ok(const auth_verifier *v, const char *tok) {
    auth_principal *p = NULL;
    auth_failure r = AUTH_FAIL_COUNT;
    char why[ZS_ERRLEN] = "";
    int rc = auth_verify(v, tok, NOW, &p, &r, why, sizeof why);
    if (rc != 0) fail_msg("expected success for %s, got: %s", tok ? tok : "(null)", why);
    assert_string_equal(why, ""); /* untouched on success */
    assert_int_equal(r, AUTH_FAIL_COUNT);
    assert_non_null(p);
    return p;
}

/* Verifies tok and expects failure with a reason containing needle;
 * returns the class auth_verify gave. */
static auth_failure expect_fail(const auth_verifier *v, const char *tok, const char *needle) {
    auth_principal *p = (auth_principal *)&p; /* must be reset to NULL */
    auth_failure r = AUTH_FAIL_COUNT;
    char why[ZS_ERRLEN] = "";
    int rc = auth_verify(v, tok, NOW, &p, &r, why, sizeof why);
    if (rc != -1) fail_msg("expected failure (%s) for %s", needle, tok ? tok : "(null)");
    assert_null(p);
    if (!strstr(why, needle)) fail_msg("reason \"%s\" does not mention \"%s\"", why, needle);
    /* every refusal of a token has a reason word other than "other" */
    if (r >= AUTH_FAIL_OTHER) fail_msg("reason \"%s\" classified as %s", why, auth_failure_name(r));
    return r;
}

/* Returns a copy of a with its payload segment replaced by b's. */
static char *splice_payload(const char *a, const char *b) {
    const char *a1 = strchr(a, '.'), *a2 = strrchr(a, '.');
    const char *b1 = strchr(b, '.'), *b2 = strrchr(b, '.');
    char *out = malloc(strlen(a) + strlen(b) + 1);
    assert_non_null(out);
    sprintf(out, "%.*s%.*s%s", (int)(a1 - a), a, (int)(b2 - b1), b1, a2);
    return out;
}

/* Writes len bytes to a new temp file; returns its malloc'd path. */
static char *temp_file(const void *data, size_t len) {
    char *path = strdup("/tmp/zoosync-test-auth-XXXXXX");
    assert_non_null(path);
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    assert_int_equal(close(fd), 0);
    return path;
}

static void drop_file(char *path) {
    assert_int_equal(unlink(path), 0);
    free(path);
}

/* ---- fixtures --------------------------------------------------------- */

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    char err[ZS_ERRLEN] = "";
    if (!f) return -1;
    f->hs = auth_verifier_hs256((const unsigned char *)SECRET, strlen(SECRET), err, sizeof err);
    f->rs = auth_verifier_pubkey(RSA_PUB, strlen(RSA_PUB), err, sizeof err);
    f->es = auth_verifier_pubkey(EC_PUB, strlen(EC_PUB), err, sizeof err);
    *state = f;
    if (!f->hs || !f->rs || !f->es) {
        fprintf(stderr, "setup: %s\n", err);
        return -1;
    }
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    auth_verifier_free(f->hs);
    auth_verifier_free(f->rs);
    auth_verifier_free(f->es);
    free(f);
    return 0;
}

/* ---- valid tokens ----------------------------------------------------- */

static void test_hs256_valid(void **state) {
    fixture *f = *state;
    char *tok = mint_hs("notes:write", NOW + HOUR, NOW - HOUR);
    auth_principal *p = expect_ok(f->hs, tok);
    assert_string_equal(auth_principal_sub(p), "alice");
    assert_true(auth_can(p, "notes", AUTH_WRITE));
    assert_true(auth_can(p, "notes", AUTH_READ));
    assert_false(auth_can(p, "other", AUTH_READ));
    assert_false(auth_can(p, NULL, AUTH_ADMIN));
    auth_principal_free(p);
    free(tok);
}

static void test_rs256_valid(void **state) {
    fixture *f = *state;
    char *tok = mint(JWT_ALG_RS256, RSA_PRIV, strlen(RSA_PRIV), "bob", "notes:read", NOW + HOUR, 0);
    auth_principal *p = expect_ok(f->rs, tok);
    assert_string_equal(auth_principal_sub(p), "bob");
    assert_true(auth_can(p, "notes", AUTH_READ));
    assert_false(auth_can(p, "notes", AUTH_WRITE));
    auth_principal_free(p);
    free(tok);
}

static void test_es256_valid(void **state) {
    fixture *f = *state;
    char *tok = mint(JWT_ALG_ES256, EC_PRIV, strlen(EC_PRIV), "carol", "admin", NOW + HOUR, NOW);
    auth_principal *p = expect_ok(f->es, tok);
    assert_string_equal(auth_principal_sub(p), "carol");
    assert_true(auth_can(p, NULL, AUTH_ADMIN));
    auth_principal_free(p);
    free(tok);
}

/* No sub: empty string. No scope: authenticated, no rights. A fractional
 * NumericDate is a number too. */
static void test_optional_claims(void **state) {
    fixture *f = *state;
    char *tok = mint(JWT_ALG_HS256, SECRET, strlen(SECRET), NULL, NULL, NOW + 1, 0);
    auth_principal *p = expect_ok(f->hs, tok);
    assert_string_equal(auth_principal_sub(p), "");
    assert_false(auth_can(p, "notes", AUTH_READ));
    assert_false(auth_can(p, NULL, AUTH_READ));
    auth_principal_free(p);
    free(tok);

    tok = forge_hs("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", "{\"exp\":1700003600,\"sub\":\"dan\"}");
    p = expect_ok(f->hs, tok);
    assert_string_equal(auth_principal_sub(p), "dan");
    auth_principal_free(p);
    free(tok);
}

/* ---- failure reasons -------------------------------------------------- */

/* auth_verify classifies each refusal itself (no sentence is parsed): each
 * class from a token that provokes it, with its sentence and its word. */
static void test_failure_reasons(void **state) {
    (void)state;
    char err[ZS_ERRLEN] = "";
    auth_verifier *hs = auth_verifier_hs256((const unsigned char *)SECRET, strlen(SECRET), err, sizeof err);
    auth_verifier *pol = auth_verifier_hs256((const unsigned char *)SECRET, strlen(SECRET), err, sizeof err);
    assert_non_null(hs);
    assert_non_null(pol);
    assert_int_equal(auth_verifier_set_policy(pol, "a", "i", 10, err, sizeof err), 0);
    /* two keys by kid: a token naming another kid names no key */
    char jwks[512] = "{\"keys\":[{\"kty\":\"oct\",\"kid\":\"k1\",\"k\":\"";
    b64url(jwks, SECRET, strlen(SECRET));
    strcat(jwks, "\"},{\"kty\":\"oct\",\"kid\":\"k2\",\"k\":\"");
    b64url(jwks, SECRET, strlen(SECRET));
    strcat(jwks, "\"}]}");
    char *path = temp_file(jwks, strlen(jwks));
    auth_verifier *set = auth_verifier_from_jwks_file(path, err, sizeof err);
    if (!set) fail_msg("key set: %s", err);
    drop_file(path);

    const char *hdr = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    char *expired = mint_hs("", NOW, 0), *early = mint_hs("", NOW + HOUR, NOW + 60);
    const char osecret[] = "another-secret-of-at-least-32-bytes!";
    char *other = mint(JWT_ALG_HS256, osecret, strlen(osecret), "eve", "", NOW + HOUR, 0);
    char *sub7 = forge_hs(hdr, "{\"exp\":1700003600,\"sub\":7}"), *noexp = forge_hs(hdr, "{}");
    char *noalg = forge_hs("{\"typ\":\"JWT\"}", "{\"exp\":1700003600}");
    char *none = forge_hs("{\"alg\":\"none\"}", "{\"exp\":1700003600}");
    char *kid = forge_hs("{\"alg\":\"HS256\",\"kid\":\"x\"}", "{\"exp\":1700003600}");
    char *life = forge_hs(hdr, "{\"exp\":1700000099,\"iat\":1700000000,\"iss\":\"i\",\"aud\":\"a\"}");
    char *aud = forge_hs(hdr, "{\"exp\":1700000005,\"iss\":\"i\"}"), *iss = forge_hs(hdr, "{\"exp\":1700000005,\"aud\":\"a\"}");
    const struct {
        const auth_verifier *v;
        const char *token;
        const char *why;
        auth_failure r;
        const char *name;
    } cases[] = {
        {hs, NULL, "no token", AUTH_FAIL_MISSING, "missing"},
        {hs, "", "token is empty", AUTH_FAIL_MALFORMED, "malformed"},
        {hs, "a.b.", "malformed token: empty segment (unsigned tokens are not accepted)", AUTH_FAIL_MALFORMED, "malformed"},
        {hs, sub7, "token claim \"sub\" is not a string", AUTH_FAIL_MALFORMED, "malformed"},
        {hs, noexp, "token has no \"exp\" claim", AUTH_FAIL_MALFORMED, "malformed"},
        {hs, noalg, "token header has no \"alg\"", AUTH_FAIL_MALFORMED, "malformed"},
        {hs, other, "token signature is invalid", AUTH_FAIL_SIGNATURE, "signature"},
        {hs, none, "token algorithm \"none\" is not accepted (expected HS256)", AUTH_FAIL_SIGNATURE, "signature"},
        {set, kid, "token \"kid\" \"x\" is not one of this gateway's keys", AUTH_FAIL_SIGNATURE, "signature"},
        {hs, expired, "token expired", AUTH_FAIL_EXPIRED, "expired"},
        {hs, early, "token is not valid yet (nbf is in the future)", AUTH_FAIL_NOT_YET_VALID, "not_yet_valid"},
        {pol, life, "token lifetime (exp - iat) of 99 s is over the limit of 10 s", AUTH_FAIL_LIFETIME, "lifetime"},
        {pol, aud, "token \"aud\" does not include this service's audience", AUTH_FAIL_AUDIENCE, "audience"},
        {pol, iss, "token \"iss\" is not the accepted issuer", AUTH_FAIL_ISSUER, "issuer"},
        {NULL, expired, "no token verifier", AUTH_FAIL_OTHER, "other"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        auth_principal *p = NULL;
        auth_failure r = AUTH_FAIL_COUNT;
        char why[ZS_ERRLEN] = "";
        assert_int_equal(auth_verify(cases[i].v, cases[i].token, NOW, &p, &r, why, sizeof why), -1);
        assert_null(p);
        assert_string_equal(why, cases[i].why);
        if (r != cases[i].r) fail_msg("\"%s\": classified as %s", why, auth_failure_name(r));
        assert_string_equal(auth_failure_name(r), cases[i].name);
    }
    assert_string_equal(auth_failure_name(AUTH_FAIL_COUNT), "other");
    /* A sentence cut short by a small buffer keeps its class. */
    auth_failure r = AUTH_FAIL_COUNT;
    char small[6] = "";
    auth_principal *p = NULL;
    assert_int_equal(auth_verify(hs, expired, NOW, &p, &r, small, sizeof small), -1);
    assert_string_equal(small, "token");
    assert_int_equal(r, AUTH_FAIL_EXPIRED);
    free(expired);
    free(early);
    free(other);
    free(sub7);
    free(noexp);
    free(noalg);
    free(none);
    free(kid);
    free(life);
    free(aud);
    free(iss);
    auth_verifier_free(hs);
    auth_verifier_free(pol);
    auth_verifier_free(set);
}

/* ---- signatures ------------------------------------------------------- */

static void test_wrong_secret(void **state) {
    fixture *f = *state;
    const char other[] = "not-the-shared-secret";
    char *tok = mint(JWT_ALG_HS256, other, strlen(other), "eve", "admin", NOW + HOUR, 0);
    expect_fail(f->hs, tok, "signature");
    free(tok);
    /* The secret plus a newline is another secret. */
    tok = mint(JWT_ALG_HS256, SECRET "\n", strlen(SECRET) + 1, "eve", "admin", NOW + HOUR, 0);
    expect_fail(f->hs, tok, "signature");
    free(tok);
}

/* A payload swapped under a valid signature, and a flipped signature byte. */
static void test_tampered(void **state) {
    fixture *f = *state;
    struct {
        const auth_verifier *v;
        jwt_alg_t alg;
        const char *key;
    } cases[] = {{f->hs, JWT_ALG_HS256, SECRET}, {f->rs, JWT_ALG_RS256, RSA_PRIV}, {f->es, JWT_ALG_ES256, EC_PRIV}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *good = mint(cases[i].alg, cases[i].key, strlen(cases[i].key), "eve", "notes:read", NOW + HOUR, 0);
        char *evil = mint(cases[i].alg, cases[i].key, strlen(cases[i].key), "eve", "admin", NOW + HOUR, 0);
        char *forged = splice_payload(good, evil);
        expect_fail(cases[i].v, forged, "signature");
        free(forged);

        char *flipped = strdup(good);
        assert_non_null(flipped);
        char *sig = strrchr(flipped, '.') + 1;
        sig[2] = sig[2] == 'A' ? 'B' : 'A';
        expect_fail(cases[i].v, flipped, "signature");
        free(flipped);

        char *nosig = strdup(good);
        assert_non_null(nosig);
        strrchr(nosig, '.')[1] = '\0';
        expect_fail(cases[i].v, nosig, "empty segment");
        free(nosig);

        auth_principal_free(expect_ok(cases[i].v, good));
        free(good);
        free(evil);
    }
}

/* ---- time claims ------------------------------------------------------ */

static void test_expired(void **state) {
    fixture *f = *state;
    char *tok = mint_hs("admin", NOW - 1, 0);
    expect_fail(f->hs, tok, "expired");
    free(tok);
    tok = mint_hs("admin", NOW, 0); /* exp is the first instant it is invalid */
    expect_fail(f->hs, tok, "expired");
    free(tok);
    tok = mint_hs("admin", NOW + 1, 0);
    auth_principal_free(expect_ok(f->hs, tok));
    free(tok);
    tok = mint(JWT_ALG_ES256, EC_PRIV, strlen(EC_PRIV), "x", "admin", NOW - HOUR, 0);
    expect_fail(f->es, tok, "expired");
    free(tok);
}

static void test_missing_exp(void **state) {
    fixture *f = *state;
    char *tok = mint_hs("admin", 0, 0);
    expect_fail(f->hs, tok, "exp");
    free(tok);
    tok = mint(JWT_ALG_RS256, RSA_PRIV, strlen(RSA_PRIV), "x", "admin", 0, NOW - HOUR);
    expect_fail(f->rs, tok, "exp");
    free(tok);
}

static void test_nbf(void **state) {
    fixture *f = *state;
    char *tok = mint_hs("admin", NOW + HOUR, NOW + 60);
    expect_fail(f->hs, tok, "nbf");
    free(tok);
    tok = mint_hs("admin", NOW + HOUR, NOW + 1);
    expect_fail(f->hs, tok, "nbf");
    free(tok);
    tok = mint_hs("admin", NOW + HOUR, NOW); /* valid from exactly now */
    auth_principal_free(expect_ok(f->hs, tok));
    free(tok);
}

/* Claims of the wrong JSON type make the token invalid. */
static void test_bad_claim_types(void **state) {
    fixture *f = *state;
    static const struct {
        const char *claims, *needle;
    } cases[] = {
        {"{\"exp\":\"2100-01-01\"}", "exp"},
        {"{\"exp\":null}", "exp"},
        {"{\"exp\":true}", "exp"},
        {"{\"exp\":1800000000,\"nbf\":\"soon\"}", "nbf"},
        {"{\"exp\":1800000000,\"sub\":42}", "sub"},
        {"{\"exp\":1800000000,\"scope\":[\"admin\"]}", "scope"},
        {"{\"exp\":1800000000,\"scope\":{\"admin\":true}}", "scope"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *tok = mint_hs_json(cases[i].claims);
        expect_fail(f->hs, tok, cases[i].needle);
        free(tok);
    }
    /* a sub holding U+0000 would act as the shorter sub ({sub} prefixes);
     * (libjwt will not mint it: signed by hand) */
    char *tok = forge_hs("{\"alg\":\"HS256\",\"typ\":\"JWT\"}",
                         "{\"exp\":1800000000,\"sub\":\"alice\\u0000x\",\"scope\":\"s:write:{sub}/\"}");
    expect_fail(f->hs, tok, "malformed"); /* jansson refuses U+0000 without JSON_ALLOW_NUL */
    free(tok);
}

/* ---- algorithms ------------------------------------------------------- */

static void test_alg_none(void **state) {
    fixture *f = *state;
    char *tok = mint(JWT_ALG_NONE, NULL, 0, "eve", "admin", NOW + HOUR, 0);
    expect_fail(f->hs, tok, "empty segment"); /* libjwt leaves the signature empty */
    expect_fail(f->rs, tok, "empty segment");
    expect_fail(f->es, tok, "empty segment");
    free(tok);
    /* With something in the signature slot, the header is what refuses. */
    static const char *const headers[] = {"{\"alg\":\"none\"}", "{\"alg\":\"None\"}", "{\"alg\":\"NONE\"}",
                                          "{\"alg\":\"\"}"};
    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++) {
        tok = forge_hs(headers[i], "{\"exp\":1800000000,\"scope\":\"admin\"}");
        expect_fail(f->hs, tok, "is not accepted");
        expect_fail(f->rs, tok, "is not accepted");
        expect_fail(f->es, tok, "is not accepted");
        free(tok);
    }
}

/* HS256 signed with the public key bytes as HMAC secret (the classic
 * confusion attack), and every other cross-algorithm pairing. */
static void test_alg_confusion(void **state) {
    fixture *f = *state;
    char *tok = mint(JWT_ALG_HS256, RSA_PUB, strlen(RSA_PUB), "eve", "admin", NOW + HOUR, 0);
    expect_fail(f->rs, tok, "HS256");
    free(tok);
    tok = mint(JWT_ALG_HS256, EC_PUB, strlen(EC_PUB), "eve", "admin", NOW + HOUR, 0);
    expect_fail(f->es, tok, "HS256");
    free(tok);

    tok = mint_hs("admin", NOW + HOUR, 0);
    expect_fail(f->rs, tok, "expected RS256");
    expect_fail(f->es, tok, "expected ES256");
    free(tok);
    tok = mint(JWT_ALG_RS256, RSA_PRIV, strlen(RSA_PRIV), "x", "admin", NOW + HOUR, 0);
    expect_fail(f->hs, tok, "expected HS256");
    expect_fail(f->es, tok, "expected ES256");
    free(tok);
    tok = mint(JWT_ALG_ES256, EC_PRIV, strlen(EC_PRIV), "x", "admin", NOW + HOUR, 0);
    expect_fail(f->hs, tok, "expected HS256");
    expect_fail(f->rs, tok, "expected RS256");
    free(tok);
    tok = mint(JWT_ALG_HS512, SECRET, strlen(SECRET), "x", "admin", NOW + HOUR, 0);
    expect_fail(f->hs, tok, "HS512");
    free(tok);
    tok = mint(JWT_ALG_RS512, RSA_PRIV, strlen(RSA_PRIV), "x", "admin", NOW + HOUR, 0);
    expect_fail(f->rs, tok, "RS512");
    free(tok);
}

/* Headers libjwt would not mint: critical extensions, duplicates, no alg. */
static void test_odd_headers(void **state) {
    fixture *f = *state;
    static const struct {
        const char *header, *payload, *needle;
    } cases[] = {
        {"{\"alg\":\"HS256\",\"crit\":[\"b64\"],\"b64\":false}", "{\"exp\":1800000000}", "crit"},
        {"{\"typ\":\"JWT\"}", "{\"exp\":1800000000}", "no \"alg\""},
        {"{\"alg\":256}", "{\"exp\":1800000000}", "no \"alg\""},
        {"{\"alg\":\"HS256\",\"alg\":\"none\"}", "{\"exp\":1800000000}", "header"},
        {"[\"HS256\"]", "{\"exp\":1800000000}", "header"},
        {"{\"alg\":\"HS256\"", "{\"exp\":1800000000}", "header"},
        {"{\"alg\":\"HS256\"}", "{\"exp\":1800000000,\"exp\":1}", "payload"},
        {"{\"alg\":\"HS256\"}", "[1800000000]", "payload"},
        {"{\"alg\":\"HS256\"}", "{\"exp\":1800000000} x", "payload"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *tok = forge_hs(cases[i].header, cases[i].payload);
        expect_fail(f->hs, tok, cases[i].needle);
        free(tok);
    }
    /* The forging helper itself makes acceptable tokens. */
    char *tok = forge_hs("{\"alg\":\"HS256\"}", "{\"exp\":1800000000,\"scope\":\"a:read\"}");
    auth_principal *p = expect_ok(f->hs, tok);
    assert_true(auth_can(p, "a", AUTH_READ));
    auth_principal_free(p);
    free(tok);
}

static void test_garbage(void **state) {
    fixture *f = *state;
    static const char *const junk[] = {
        "",          "abc",     "a.b",     "a.b.c",     "a.b.c.d",       "..",          "...",
        "a..c",      ".b.c",    "a.b.",    "Bearer x",  "a b.c.d",       "a+b.c/d.e==", "eyJ.eyJ.x",
        "\xff.\xfe.\xfd", "e30.e30.e30", "bnVsbA.bnVsbA.bnVsbA", "x.y.z\n",
    };
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        for (int k = 0; k < 3; k++) {
            const auth_verifier *v = k == 0 ? f->hs : k == 1 ? f->rs : f->es;
            auth_principal *p = NULL;
            auth_failure r = AUTH_FAIL_COUNT;
            char why[ZS_ERRLEN] = "";
            assert_int_equal(auth_verify(v, junk[i], NOW, &p, &r, why, sizeof why), -1);
            assert_null(p);
            assert_true(strlen(why) > 0);
            /* not even a token: malformed, or a header naming no key of ours */
            if (r != AUTH_FAIL_MALFORMED && r != AUTH_FAIL_SIGNATURE) fail_msg("\"%s\": %s", why, auth_failure_name(r));
        }
    }
    expect_fail(f->hs, NULL, "no token");

    /* Oversized token. */
    size_t big = 70000;
    char *huge = malloc(big + 1);
    assert_non_null(huge);
    memset(huge, 'A', big);
    huge[10] = '.';
    huge[20] = '.';
    huge[big] = '\0';
    expect_fail(f->hs, huge, "longer");
    free(huge);

    /* A NULL why (and a NULL class) is allowed. */
    auth_principal *p = NULL;
    assert_int_equal(auth_verify(f->hs, "nope", NOW, &p, NULL, NULL, 0), -1);
    assert_null(p);
}

/* ---- scopes ----------------------------------------------------------- */

static void test_scope_store_read(void **state) {
    (void)state;
    auth_principal *p = auth_principal_new("u", "notes:read");
    assert_non_null(p);
    assert_true(auth_can(p, "notes", AUTH_READ));
    assert_false(auth_can(p, "notes", AUTH_WRITE)); /* read-only cannot write */
    assert_false(auth_can(p, "notes", AUTH_ADMIN));
    assert_false(auth_can(p, "todos", AUTH_READ)); /* another store */
    assert_false(auth_can(p, "Notes", AUTH_READ)); /* names are case-sensitive */
    assert_false(auth_can(p, "note", AUTH_READ));
    assert_false(auth_can(p, "notes2", AUTH_READ));
    assert_true(auth_can(p, NULL, AUTH_READ)); /* may list (sees notes) */
    assert_false(auth_can(p, NULL, AUTH_WRITE));
    assert_false(auth_can(p, NULL, AUTH_ADMIN));
    auth_principal_free(p);
}

static void test_scope_store_write(void **state) {
    (void)state;
    auth_principal *p = auth_principal_new("u", "notes:write");
    assert_non_null(p);
    assert_true(auth_can(p, "notes", AUTH_WRITE));
    assert_true(auth_can(p, "notes", AUTH_READ)); /* write implies read */
    assert_false(auth_can(p, "notes", AUTH_ADMIN));
    assert_false(auth_can(p, "todos", AUTH_READ));
    assert_false(auth_can(p, "todos", AUTH_WRITE));
    assert_true(auth_can(p, NULL, AUTH_READ));
    assert_true(auth_can(p, NULL, AUTH_WRITE));
    assert_false(auth_can(p, NULL, AUTH_ADMIN));
    auth_principal_free(p);
}

static void test_scope_wildcards(void **state) {
    (void)state;
    auth_principal *r = auth_principal_new("u", "*:read");
    auth_principal *w = auth_principal_new("u", "*:write");
    assert_non_null(r);
    assert_non_null(w);
    const char *stores[] = {"notes", "todos", "a", "Z_9-x"};
    for (size_t i = 0; i < sizeof stores / sizeof stores[0]; i++) {
        assert_true(auth_can(r, stores[i], AUTH_READ));
        assert_false(auth_can(r, stores[i], AUTH_WRITE));
        assert_false(auth_can(r, stores[i], AUTH_ADMIN));
        assert_true(auth_can(w, stores[i], AUTH_READ));
        assert_true(auth_can(w, stores[i], AUTH_WRITE));
        assert_false(auth_can(w, stores[i], AUTH_ADMIN));
    }
    assert_true(auth_can(r, NULL, AUTH_READ));
    assert_false(auth_can(r, NULL, AUTH_ADMIN));
    assert_false(auth_can(w, NULL, AUTH_ADMIN));
    auth_principal_free(r);
    auth_principal_free(w);
}

static void test_scope_admin(void **state) {
    (void)state;
    auth_principal *p = auth_principal_new("root", "admin");
    assert_non_null(p);
    assert_true(auth_can(p, "notes", AUTH_READ));
    assert_true(auth_can(p, "notes", AUTH_WRITE));
    assert_true(auth_can(p, "notes", AUTH_ADMIN));
    assert_true(auth_can(p, NULL, AUTH_READ));
    assert_true(auth_can(p, NULL, AUTH_WRITE));
    assert_true(auth_can(p, NULL, AUTH_ADMIN));
    auth_principal_free(p);

    p = auth_principal_anonymous();
    assert_non_null(p);
    assert_string_equal(auth_principal_sub(p), "anonymous");
    assert_true(auth_can(p, NULL, AUTH_ADMIN));
    assert_true(auth_can(p, "any", AUTH_WRITE));
    auth_principal_free(p);
}

static void test_scope_mixed(void **state) {
    (void)state;
    auth_principal *p = auth_principal_new("u", "  a:read   b:write *:read a:read\tc:write ");
    assert_non_null(p);
    assert_true(auth_can(p, "a", AUTH_READ));
    assert_false(auth_can(p, "a", AUTH_WRITE));
    assert_true(auth_can(p, "b", AUTH_WRITE));
    assert_true(auth_can(p, "zzz", AUTH_READ)); /* from *:read */
    assert_false(auth_can(p, "zzz", AUTH_WRITE));
    /* "a:read\tc:write" is one unknown entry: only spaces separate. */
    assert_false(auth_can(p, "c", AUTH_WRITE));
    assert_false(auth_can(p, NULL, AUTH_ADMIN));
    auth_principal_free(p);

    /* Read then write of one store: the higher level wins. */
    p = auth_principal_new("u", "a:read a:write a:read");
    assert_non_null(p);
    assert_true(auth_can(p, "a", AUTH_WRITE));
    auth_principal_free(p);
}

static void test_scope_empty_and_unknown(void **state) {
    (void)state;
    static const char *const scopes[] = {
        NULL,        "",          "   ",           "openid profile email", "Admin",       "ADMIN",
        "admin:",    "a:delete",  "a:Read",        "a:read:",              ":read",       "*:",
        "*",         "**:read",   "a.b:read",      "a/b:write",            "a b:c",       "adminx",
        "a:readx",   "a:writ",    "é:read",    "a:read:%zz",    "a:write:%",            "a:read:%e9/",
        "a:read:%00", "a:read:%ff", "*:read:",   "a:delete:x",    "a::x",
    };
    for (size_t i = 0; i < sizeof scopes / sizeof scopes[0]; i++) {
        auth_principal *p = auth_principal_new("u", scopes[i]);
        assert_non_null(p);
        assert_false(auth_can(p, NULL, AUTH_READ));
        assert_false(auth_can(p, NULL, AUTH_WRITE));
        assert_false(auth_can(p, NULL, AUTH_ADMIN));
        assert_false(auth_can(p, "a", AUTH_READ));
        assert_false(auth_can(p, "admin", AUTH_READ));
        auth_principal_free(p);
    }
    /* "admin:read" is a store named admin, not the admin scope. */
    auth_principal *p = auth_principal_new("u", "admin:read");
    assert_true(auth_can(p, "admin", AUTH_READ));
    assert_false(auth_can(p, "other", AUTH_READ));
    assert_false(auth_can(p, NULL, AUTH_ADMIN));
    auth_principal_free(p);

    /* Store names follow ^[A-Za-z0-9_-]{1,64}$. */
    char scope[80], name[70];
    memset(name, 'n', 64);
    name[64] = '\0';
    snprintf(scope, sizeof scope, "%s:write", name);
    p = auth_principal_new("u", scope);
    assert_true(auth_can(p, name, AUTH_WRITE));
    auth_principal_free(p);
    name[64] = 'n';
    name[65] = '\0';
    snprintf(scope, sizeof scope, "%s:write", name);
    p = auth_principal_new("u", scope);
    assert_false(auth_can(p, name, AUTH_READ));
    auth_principal_free(p);

    p = auth_principal_new(NULL, "a:read");
    assert_string_equal(auth_principal_sub(p), "");
    auth_principal_free(p);
    assert_false(auth_can(NULL, "a", AUTH_READ));
    auth_principal_free(NULL);
}

/* Scopes read from a verified token. */
static void test_scope_from_token(void **state) {
    fixture *f = *state;
    char *tok = mint_hs("todos:read notes:write", NOW + HOUR, 0);
    auth_principal *p = expect_ok(f->hs, tok);
    assert_true(auth_can(p, "todos", AUTH_READ));
    assert_false(auth_can(p, "todos", AUTH_WRITE));
    assert_true(auth_can(p, "notes", AUTH_WRITE));
    assert_false(auth_can(p, "secret", AUTH_READ));
    assert_false(auth_can(p, NULL, AUTH_ADMIN));
    auth_principal_free(p);
    free(tok);

    tok = mint_hs("", NOW + HOUR, 0);
    p = expect_ok(f->hs, tok);
    assert_false(auth_can(p, NULL, AUTH_READ));
    assert_false(auth_can(p, "todos", AUTH_READ));
    auth_principal_free(p);
    free(tok);
}

/* ---- key files -------------------------------------------------------- */

/* Writes content to a secret file and checks which secret it yields. */
static void check_secret_file(const char *content, const char *expect_secret) {
    char *path = temp_file(content, strlen(content));
    char err[ZS_ERRLEN] = "";
    auth_verifier *v = auth_verifier_from_secret_file(path, err, sizeof err);
    if (!v) fail_msg("secret file %s: %s", path, err);
    assert_string_equal(err, ""); /* untouched on success */
    char *tok = mint(JWT_ALG_HS256, expect_secret, strlen(expect_secret), "u", "a:read", NOW + HOUR, 0);
    auth_principal_free(expect_ok(v, tok));
    free(tok);
    /* The unstripped content is a different secret. */
    if (strcmp(content, expect_secret) != 0) {
        tok = mint(JWT_ALG_HS256, content, strlen(content), "u", "a:read", NOW + HOUR, 0);
        expect_fail(v, tok, "signature");
        free(tok);
    }
    auth_verifier_free(v);
    drop_file(path);
}

static void test_secret_file(void **state) {
    (void)state;
#define TS "topsecret-0123456789abcdefghijklmn" /* 34 bytes: over the 32-byte minimum */
    check_secret_file(TS, TS);
    check_secret_file(TS "\n", TS);
    check_secret_file(TS "\r\n", TS);
    check_secret_file(TS "\n\n", TS "\n"); /* only ONE newline */
    check_secret_file("top " TS " \n", "top " TS " ");
    check_secret_file("\n" TS, "\n" TS);
    check_secret_file(TS "\r", TS "\r");
#undef TS

    /* Binary secret with a NUL byte: all bytes count. */
    unsigned char bin[41];
    memset(bin, 'k', sizeof bin);
    bin[1] = 0;
    bin[40] = '\n';
    char *path = temp_file(bin, sizeof bin);
    char err[ZS_ERRLEN] = "";
    auth_verifier *v = auth_verifier_from_secret_file(path, err, sizeof err);
    assert_non_null(v);
    char *tok = mint(JWT_ALG_HS256, (const char *)bin, 40, "u", "a:read", NOW + HOUR, 0);
    auth_principal_free(expect_ok(v, tok));
    free(tok);
    tok = mint(JWT_ALG_HS256, "k", 1, "u", "a:read", NOW + HOUR, 0);
    expect_fail(v, tok, "signature");
    free(tok);
    auth_verifier_free(v);
    drop_file(path);
}

static void test_secret_file_errors(void **state) {
    (void)state;
    static const char *const empties[] = {"", "\n", "\r\n"};
    for (size_t i = 0; i < sizeof empties / sizeof empties[0]; i++) {
        char *path = temp_file(empties[i], strlen(empties[i]));
        char err[ZS_ERRLEN] = "";
        assert_null(auth_verifier_from_secret_file(path, err, sizeof err));
        assert_true(err[0]);
        assert_non_null(strstr(err, "empty"));
        drop_file(path);
    }
    char err[ZS_ERRLEN] = "";
    assert_null(auth_verifier_from_secret_file("/nonexistent/zoosync-secret", err, sizeof err));
    assert_true(err[0]);
    assert_non_null(strstr(err, "/nonexistent/zoosync-secret"));
    err[0] = '\0';
    assert_null(auth_verifier_hs256((const unsigned char *)"", 0, err, sizeof err));
    assert_true(err[0]);
    assert_null(auth_verifier_hs256(NULL, 5, NULL, 0)); /* err may be NULL */
    auth_verifier_free(NULL);
}

/* ---- issue 16: short secrets, NumericDates, audience, issuer, lifetime -- */

static void test_short_secret(void **state) {
    (void)state;
    char err[ZS_ERRLEN] = "";
    const char s31[] = "0123456789abcdef0123456789abcde"; /* 31 bytes */
    assert_null(auth_verifier_hs256((const unsigned char *)s31, 31, err, sizeof err));
    assert_true(err[0]);
    assert_non_null(strstr(err, "at least 32 bytes"));
    err[0] = '\0';
    assert_null(auth_verifier_hs256((const unsigned char *)"k", 1, err, sizeof err));
    char *path = temp_file("short-secret\n", 13);
    err[0] = '\0';
    assert_null(auth_verifier_from_secret_file(path, err, sizeof err));
    assert_true(err[0]);
    assert_non_null(strstr(err, "12 bytes"));
    drop_file(path);
    auth_verifier *v = auth_verifier_hs256((const unsigned char *)"0123456789abcdef0123456789abcdef", 32, err, sizeof err);
    assert_non_null(v);
    auth_verifier_free(v);
}

/* Forges a token with payload text and expects failure mentioning needle. */
static void forged_fails(const auth_verifier *v, const char *payload, const char *needle) {
    char *tok = forge_hs("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", payload);
    expect_fail(v, tok, needle);
    free(tok);
}

static void forged_ok(const auth_verifier *v, const char *payload) {
    char *tok = forge_hs("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", payload);
    auth_principal_free(expect_ok(v, tok));
    free(tok);
}

static void test_numeric_dates(void **state) {
    fixture *f = *state;
    forged_fails(f->hs, "{\"exp\":1e300}", "exp");
    forged_fails(f->hs, "{\"exp\":1700003600.5}", "integer");
    forged_fails(f->hs, "{\"exp\":\"1700003600\"}", "integer");
    forged_fails(f->hs, "{\"exp\":99999999999999}", "out of range");
    forged_fails(f->hs, "{\"exp\":1700003600,\"nbf\":-5}", "out of range");
    forged_fails(f->hs, "{\"exp\":1700003600,\"nbf\":1.5}", "integer");
    forged_fails(f->hs, "{\"exp\":1700003600,\"iat\":1e3}", "iat");
    forged_fails(f->hs, "{\"exp\":1700003600,\"iat\":-1}", "iat");
    forged_ok(f->hs, "{\"exp\":253402300799,\"iat\":1699999000}"); /* no lifetime limit set */
}

/* A verifier over SECRET with the given policy. */
static auth_verifier *policy_verifier(const char *aud, const char *iss, long long life) {
    char err[ZS_ERRLEN] = "";
    auth_verifier *v = auth_verifier_hs256((const unsigned char *)SECRET, strlen(SECRET), err, sizeof err);
    assert_non_null(v);
    assert_int_equal(auth_verifier_set_policy(v, aud, iss, life, err, sizeof err), 0);
    assert_string_equal(err, ""); /* untouched on success */
    return v;
}

static void test_audience(void **state) {
    (void)state;
    auth_verifier *v = policy_verifier("zoosync", NULL, 0);
    forged_ok(v, "{\"exp\":1700003600,\"aud\":\"zoosync\"}");
    forged_ok(v, "{\"exp\":1700003600,\"aud\":[\"other\",\"zoosync\"]}");
    forged_fails(v, "{\"exp\":1700003600}", "aud");
    forged_fails(v, "{\"exp\":1700003600,\"aud\":\"other\"}", "aud");
    forged_fails(v, "{\"exp\":1700003600,\"aud\":\"zoosync2\"}", "aud");
    forged_fails(v, "{\"exp\":1700003600,\"aud\":[]}", "aud");
    forged_fails(v, "{\"exp\":1700003600,\"aud\":[7,null]}", "aud");
    forged_fails(v, "{\"exp\":1700003600,\"aud\":{\"zoosync\":1}}", "aud");
    auth_verifier_free(v);
}

static void test_issuer(void **state) {
    (void)state;
    auth_verifier *v = policy_verifier(NULL, "https://idp.example", 0);
    forged_ok(v, "{\"exp\":1700003600,\"iss\":\"https://idp.example\"}");
    forged_fails(v, "{\"exp\":1700003600}", "iss");
    forged_fails(v, "{\"exp\":1700003600,\"iss\":\"https://idp.example/\"}", "iss");
    forged_fails(v, "{\"exp\":1700003600,\"iss\":[\"https://idp.example\"]}", "iss");
    auth_verifier_free(v);
    v = policy_verifier("a", "i", 0); /* both: both needed */
    forged_ok(v, "{\"exp\":1700003600,\"iss\":\"i\",\"aud\":\"a\"}");
    forged_fails(v, "{\"exp\":1700003600,\"iss\":\"i\"}", "aud");
    forged_fails(v, "{\"exp\":1700003600,\"aud\":\"a\"}", "iss");
    auth_verifier_free(v);
}

static void test_max_lifetime(void **state) {
    (void)state;
    auth_verifier *v = policy_verifier(NULL, NULL, 3600);
    /* NOW is 1700000000. */
    forged_ok(v, "{\"exp\":1700003000,\"iat\":1699999500}");     /* 3500 s */
    forged_ok(v, "{\"exp\":1700003600,\"iat\":1700000000}");     /* exactly 3600 */
    forged_fails(v, "{\"exp\":1700003601,\"iat\":1700000000}", "lifetime");
    forged_fails(v, "{\"exp\":1700003000,\"iat\":1699990000}", "lifetime");
    forged_ok(v, "{\"exp\":1700003600}");                            /* no iat: exp - now */
    forged_fails(v, "{\"exp\":1700003601}", "exp - now");
    forged_fails(v, "{\"exp\":253402300799,\"iat\":0}", "lifetime");
    auth_verifier_free(v);
}

static void test_policy_errors(void **state) {
    (void)state;
    char err[ZS_ERRLEN] = "";
    auth_verifier *v = auth_verifier_hs256((const unsigned char *)SECRET, strlen(SECRET), err, sizeof err);
    assert_non_null(v);
    assert_int_equal(auth_verifier_set_policy(v, "", NULL, 0, err, sizeof err), -1);
    assert_true(err[0]);
    err[0] = '\0';
    assert_int_equal(auth_verifier_set_policy(v, NULL, "", 0, err, sizeof err), -1);
    err[0] = '\0';
    assert_int_equal(auth_verifier_set_policy(v, NULL, NULL, -1, err, sizeof err), -1);
    /* Setting twice replaces (no leak under ASan). */
    assert_int_equal(auth_verifier_set_policy(v, "a", "b", 10, NULL, 0), 0);
    assert_int_equal(auth_verifier_set_policy(v, "c", NULL, 0, NULL, 0), 0);
    auth_verifier_free(v);
}

static void test_pubkey_file(void **state) {
    (void)state;
    const char *pems[] = {RSA_PUB, EC_PUB};
    const jwt_alg_t algs[] = {JWT_ALG_RS256, JWT_ALG_ES256};
    const char *privs[] = {RSA_PRIV, EC_PRIV};
    for (int i = 0; i < 2; i++) {
        char *path = temp_file(pems[i], strlen(pems[i]));
        char err[ZS_ERRLEN] = "";
        auth_verifier *v = auth_verifier_from_pubkey_file(path, err, sizeof err);
        if (!v) fail_msg("pubkey file: %s", err);
        char *tok = mint(algs[i], privs[i], strlen(privs[i]), "u", "a:write", NOW + HOUR, 0);
        auth_principal *p = expect_ok(v, tok);
        assert_true(auth_can(p, "a", AUTH_WRITE));
        auth_principal_free(p);
        free(tok);
        auth_verifier_free(v);
        drop_file(path);
    }
    char err[ZS_ERRLEN] = "";
    assert_null(auth_verifier_from_pubkey_file("/nonexistent/zoosync.pem", err, sizeof err));
    assert_true(err[0]);
    assert_non_null(strstr(err, "/nonexistent/zoosync.pem"));

    char *path = temp_file("hello\n", 6);
    err[0] = '\0';
    assert_null(auth_verifier_from_pubkey_file(path, err, sizeof err));
    assert_true(err[0]);
    assert_non_null(strstr(err, path));
    drop_file(path);
}

static void test_pubkey_errors(void **state) {
    (void)state;
    static const struct {
        const char *pem, *needle;
    } cases[] = {
        {RSA_PRIV, "public key"}, /* a private key is not accepted as the key file */
        {EC_PRIV, "public key"},
        {EC384_PUB, "P-256"},
        {RSA1024_PUB, "2048"},
        {ED25519_PUB, "unsupported"},
        {"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "public key"},
        {SECRET, "public key"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[ZS_ERRLEN] = "";
        assert_null(auth_verifier_pubkey(cases[i].pem, strlen(cases[i].pem), err, sizeof err));
        assert_true(err[0]);
        if (!strstr(err, cases[i].needle)) fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err, cases[i].needle);
    }
    char err[ZS_ERRLEN] = "";
    assert_null(auth_verifier_pubkey("", 0, err, sizeof err));
    assert_true(err[0]);
    /* A key embedded in a larger buffer: only len bytes count. */
    assert_null(auth_verifier_pubkey(RSA_PUB, 40, NULL, 0));
}


/* Prefix scopes: {sub}, percent-decoding, what grants nothing. */
static void expect_prefix(const char *raw, const char *sub, const char *want, size_t wlen) {
    size_t n = 0;
    char *got = auth_scope_prefix(raw, strlen(raw), sub, &n);
    if (!want) {
        if (got) fail_msg("prefix '%s' (sub %s) should grant nothing, got '%s'", raw, sub ? sub : "(none)", got);
        return;
    }
    if (!got) fail_msg("prefix '%s' (sub %s) should decode", raw, sub ? sub : "(none)");
    assert_int_equal(n, wlen);
    assert_memory_equal(got, want, wlen);
    free(got);
}

static void test_scope_prefix_decoding(void **state) {
    (void)state;
    expect_prefix("users/{sub}/", "alice", "users/alice/", 12);
    expect_prefix("{sub}", "bob", "bob", 3);
    expect_prefix("{sub}/{sub}/", "bob", "bob/bob/", 8);             /* twice */
    expect_prefix("{sub}{sub}", "x", "xx", 2);
    expect_prefix("a%2Fb/", NULL, "a/b/", 4);                         /* %2F is a slash */
    expect_prefix("a%2fb", NULL, "a/b", 3);                           /* either case */
    expect_prefix("%20%25", NULL, " %", 2);                           /* space, percent */
    expect_prefix("caf%C3%A9/", NULL, "caf\xc3\xa9/", 6);             /* UTF-8, encoded */
    expect_prefix("日記/", NULL, "日記/", strlen("日記/"));            /* UTF-8, literal */
    expect_prefix("u/{sub}/", "zoë", "u/zo\xc3\xab/", 7);             /* a UTF-8 sub */
    expect_prefix("u/{sub}/", "a%41", "u/a%41/", 7);                  /* the sub is not decoded */
    expect_prefix("%7Bsub%7D/", "alice", "{sub}/", 6);                /* an encoded {sub} is literal */
    expect_prefix("{sub", "alice", "{sub", 4);
    expect_prefix("{SUB}", "alice", "{SUB}", 5);
    expect_prefix("a:b", NULL, "a:b", 3);                             /* colons are prefix bytes */
    /* grant nothing */
    expect_prefix("", "alice", NULL, 0);
    expect_prefix("%zz", NULL, NULL, 0);
    expect_prefix("%", NULL, NULL, 0);
    expect_prefix("ab%4", NULL, NULL, 0);
    expect_prefix("%00", NULL, NULL, 0);                              /* no key holds U+0000 */
    expect_prefix("a%C3", NULL, NULL, 0);                             /* cut UTF-8 */
    expect_prefix("%C0%AF", NULL, NULL, 0);                           /* overlong */
    expect_prefix("%ED%A0%80", NULL, NULL, 0);                        /* a surrogate */
    expect_prefix("users/{sub}/", NULL, NULL, 0);                     /* no sub */
    expect_prefix("users/{sub}/", "", NULL, 0);                       /* an empty sub is no sub */
    char big[1100];
    memset(big, 'k', 1030);
    big[1030] = 0;
    expect_prefix(big, NULL, NULL, 0);                                /* longer than any key */
}

static void test_scope_prefix_sets(void **state) {
    (void)state;
    auth_principal *p = auth_principal_new("alice", "notes:write:users/{sub}/ notes:read:shared/ *:read:pub/");
    assert_non_null(p);
    /* the coarse checks: any grant of the level in the store */
    assert_true(auth_can(p, "notes", AUTH_READ));
    assert_true(auth_can(p, "notes", AUTH_WRITE));
    assert_true(auth_can(p, "todos", AUTH_READ)); /* *:read:pub/ */
    assert_false(auth_can(p, "todos", AUTH_WRITE));
    assert_false(auth_can(p, NULL, AUTH_ADMIN));
    assert_true(auth_can(p, NULL, AUTH_WRITE));
#define K(s) s, strlen(s)
    assert_true(auth_key_writable(p, "notes", K("users/alice/n1")));
    assert_true(auth_key_writable(p, "notes", K("users/alice/")));   /* the prefix itself */
    assert_false(auth_key_writable(p, "notes", K("users/alice")));   /* shorter */
    assert_false(auth_key_writable(p, "notes", K("users/alice2/x"))); /* the trailing delimiter */
    assert_false(auth_key_writable(p, "notes", K("users/bob/n1")));
    assert_false(auth_key_writable(p, "notes", K("shared/x")));      /* read only */
    assert_true(auth_key_readable(p, "notes", K("shared/x")));
    assert_true(auth_key_readable(p, "notes", K("users/alice/n1"))); /* write implies read */
    assert_false(auth_key_readable(p, "notes", K("users/bob/n1")));
    assert_true(auth_key_readable(p, "notes", K("pub/1")));
    assert_true(auth_key_readable(p, "other", K("pub/1")));
    assert_false(auth_key_readable(p, "other", K("users/alice/n1")));
    assert_false(auth_key_writable(p, "other", K("pub/1")));
    auth_keyset ks;
    assert_int_equal(auth_store_read_prefixes(p, "notes", &ks), 0);
    assert_false(ks.all);
    assert_int_equal(ks.n, 3);
    assert_memory_equal(ks.v[0].p, "pub/", 4);
    assert_memory_equal(ks.v[1].p, "shared/", 7);
    assert_memory_equal(ks.v[2].p, "users/alice/", 12);
    assert_true(auth_keyset_has(&ks, K("shared/1")));
    assert_false(auth_keyset_has(&ks, K("users/bob/1")));
    auth_keyset_free(&ks);
    assert_int_equal(auth_store_read_prefixes(p, "nothing-here", &ks), 0);
    assert_false(ks.all);
    assert_int_equal(ks.n, 1); /* pub/ from * */
    auth_keyset_free(&ks);
    auth_principal_free(p);

    /* covered prefixes are dropped; a whole-store grant makes the set all */
    p = auth_principal_new("bob", "s:read:a/ s:write:a/b/ s:read:a/ s:read:b");
    assert_int_equal(auth_store_read_prefixes(p, "s", &ks), 0);
    assert_int_equal(ks.n, 2);
    assert_memory_equal(ks.v[0].p, "a/", 2);
    assert_memory_equal(ks.v[1].p, "b", 1);
    auth_keyset_free(&ks);
    assert_true(auth_key_writable(p, "s", K("a/b/c")));
    assert_false(auth_key_writable(p, "s", K("a/c")));
    auth_principal_free(p);
    p = auth_principal_new("bob", "s:read:a/ s:read");
    assert_int_equal(auth_store_read_prefixes(p, "s", &ks), 0);
    assert_true(ks.all);
    auth_keyset_free(&ks);
    assert_true(auth_key_readable(p, "s", K("zzz")));
    assert_false(auth_key_writable(p, "s", K("a/1")));
    auth_principal_free(p);
    p = auth_principal_new("bob", "s:write:a/ *:write");
    assert_true(auth_key_writable(p, "s", K("zzz")));
    auth_principal_free(p);
    /* admin covers every key */
    p = auth_principal_new("root", "admin s:read:a/");
    assert_true(auth_key_writable(p, "s", K("zzz")));
    assert_int_equal(auth_store_read_prefixes(p, "s", &ks), 0);
    assert_true(ks.all);
    auth_keyset_free(&ks);
    assert_true(auth_is_admin(p));
    auth_principal_free(p);
    /* a {sub} scope on a token without sub grants nothing; the others stay */
    p = auth_principal_new(NULL, "s:write:users/{sub}/ s:read:pub/");
    assert_true(auth_can(p, "s", AUTH_READ));
    assert_false(auth_can(p, "s", AUTH_WRITE));
    assert_false(auth_key_readable(p, "s", K("users//x")));
    assert_false(auth_is_admin(p));
    auth_principal_free(p);
    /* percent-decoded grants match the decoded key bytes */
    p = auth_principal_new("u", "s:write:a%2Fb%20c/ s:write:caf%C3%A9/");
    assert_true(auth_key_writable(p, "s", K("a/b c/1")));
    assert_false(auth_key_writable(p, "s", K("a%2Fb%20c/1")));
    assert_true(auth_key_writable(p, "s", K("caf\xc3\xa9/x")));
    assert_false(auth_key_writable(p, "s", K("cafe/x")));
    auth_principal_free(p);
#undef K
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hs256_valid),
        cmocka_unit_test(test_rs256_valid),
        cmocka_unit_test(test_es256_valid),
        cmocka_unit_test(test_optional_claims),
        cmocka_unit_test(test_wrong_secret),
        cmocka_unit_test(test_tampered),
        cmocka_unit_test(test_expired),
        cmocka_unit_test(test_missing_exp),
        cmocka_unit_test(test_nbf),
        cmocka_unit_test(test_bad_claim_types),
        cmocka_unit_test(test_alg_none),
        cmocka_unit_test(test_alg_confusion),
        cmocka_unit_test(test_odd_headers),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_scope_store_read),
        cmocka_unit_test(test_scope_store_write),
        cmocka_unit_test(test_scope_wildcards),
        cmocka_unit_test(test_scope_admin),
        cmocka_unit_test(test_scope_mixed),
        cmocka_unit_test(test_scope_empty_and_unknown),
        cmocka_unit_test(test_scope_from_token),
        cmocka_unit_test(test_scope_prefix_decoding),
        cmocka_unit_test(test_scope_prefix_sets),
        cmocka_unit_test(test_secret_file),
        cmocka_unit_test(test_secret_file_errors),
        cmocka_unit_test(test_short_secret),
        cmocka_unit_test(test_numeric_dates),
        cmocka_unit_test(test_audience),
        cmocka_unit_test(test_issuer),
        cmocka_unit_test(test_max_lifetime),
        cmocka_unit_test(test_policy_errors),
        cmocka_unit_test(test_pubkey_file),
        cmocka_unit_test(test_pubkey_errors),
        cmocka_unit_test(test_failure_reasons),
    };
    return cmocka_run_group_tests_name("auth", tests, setup, teardown);
}

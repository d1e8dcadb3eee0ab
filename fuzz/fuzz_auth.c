/* auth: token parsing and verification (auth_verify with an HS256
 * verifier on a fixed 32-byte secret), claims and scopes.
 *
 * The first byte picks how the rest is used:
 *  0: the rest is a token as it arrives (hostile bytes);
 *  1: the rest is "<header JSON>\0<payload JSON>" (or just the payload,
 *     under {"alg":"HS256","typ":"JWT"}): the harness signs it with the
 *     secret, so the claims and scope code behind the signature check is
 *     reached;
 *  2: the rest is "<sub>\0<scope>" for auth_principal_new.
 * Two verifiers: one without a claim policy, one with audience, issuer and
 * a 1-hour maximum lifetime.
 *
 * Properties: no crash, leak or undefined behaviour; a failure has a
 * reason and a class (never "missing"; "other" only out of memory), a
 * success leaves both untouched; an accepted token has alg HS256, an integer exp after now, no
 * nbf after now, its sub, and under the policy its iss, aud and lifetime;
 * the same token with one signature character changed is refused; the
 * principal's rights are those its scope string names. */
#include <glib.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdbool.h>
#include <time.h>

#include "auth/auth.h"
#include "fuzz.h"
#include "util/err.h"
#include "util/sbuf.h"
#include "util/names.h"

#define NOW ((time_t)1700000000)
static const unsigned char SECRET[] = "zoosync-fuzz-secret-0123456789abcdef";
static auth_verifier *plain, *policy;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc; (void)argv;
    char err[ZS_ERRLEN];
    plain = auth_verifier_hs256(SECRET, sizeof SECRET - 1, err, sizeof err);
    policy = auth_verifier_hs256(SECRET, sizeof SECRET - 1, err, sizeof err);
    if (!plain || !policy || auth_verifier_set_policy(policy, "zoosync", "https://idp.example", 3600, err, sizeof err) < 0) abort();
    return 0;
}

static void b64url(sbuf *b, const unsigned char *p, size_t n) {
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        char c[4] = {t[v >> 18], t[v >> 12 & 63], t[v >> 6 & 63], t[v & 63]};
        sbuf_append(b, c, 4);
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        char c[2] = {t[v >> 18], t[v >> 12 & 63]};
        sbuf_append(b, c, 2);
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        char c[3] = {t[v >> 18], t[v >> 12 & 63], t[v >> 6 & 63]};
        sbuf_append(b, c, 3);
    }
}


/* The principal's rights are what scope names. */
static void check_scope(const auth_principal *p, const char *scope) {
    bool admin = false;
    gchar **parts = g_strsplit(scope ? scope : "", " ", -1);
    for (gchar **e = parts; *e; e++) {
        if (strcmp(*e, "admin") == 0) admin = true;
        char *colon = strrchr(*e, ':');
        if (!colon || strchr(*e, ':') != colon) continue;
        size_t sl = (size_t)(colon - *e);
        bool w = strcmp(colon + 1, "write") == 0, r = w || strcmp(colon + 1, "read") == 0;
        if (!r) continue;
        if (sl == 1 && (*e)[0] == '*') {
            CHECK(auth_can(p, "any-store", AUTH_READ));
            if (w) CHECK(auth_can(p, "any-store", AUTH_WRITE));
        } else if (fuzz_name_rule(*e, sl)) {
            *colon = '\0';
            CHECK(auth_can(p, *e, AUTH_READ));
            CHECK(auth_can(p, NULL, AUTH_READ));
            if (w) CHECK(auth_can(p, *e, AUTH_WRITE));
        }
    }
    g_strfreev(parts);
    CHECK(auth_can(p, NULL, AUTH_ADMIN) == admin);
    if (admin) CHECK(auth_can(p, "x", AUTH_WRITE));
    CHECK(!auth_can(NULL, "x", AUTH_READ));
}

/* Prefix scopes: a read set's prefixes are possible keys, readable
 * themselves, sorted, none covering another. */
static void check_prefixes(const auth_principal *p) {
    static const char *const stores[] = {"any-store", "a", "s", "notes"};
    for (size_t k = 0; k < sizeof stores / sizeof stores[0]; k++) {
        auth_keyset ks;
        CHECK(auth_store_read_prefixes(p, stores[k], &ks) == 0);
        for (size_t i = 0; i < ks.n; i++) {
            const auth_prefix *x = &ks.v[i];
            CHECK(x->len > 0 && !names_key_invalid(x->p, x->len));
            CHECK(auth_key_readable(p, stores[k], x->p, x->len));
            if (i) {
                const auth_prefix *w = &ks.v[i - 1];
                CHECK(!(x->len >= w->len && memcmp(x->p, w->p, w->len) == 0)); /* not covered */
                size_t n = x->len < w->len ? x->len : w->len;
                int c = memcmp(w->p, x->p, n);
                CHECK(c < 0 || (c == 0 && w->len < x->len));
            }
        }
        auth_keyset_free(&ks);
    }
}

static void check_accepted(const char *token, const auth_principal *p, bool with_policy) {
    /* the claims, read again with jansson */
    const char *d1 = strchr(token, '.'), *d2 = strchr(d1 + 1, '.');
    gsize n = 0;
    char *seg = g_strndup(d1 + 1, (gsize)(d2 - d1 - 1));
    size_t sl = strlen(seg);
    char *padded = g_malloc(sl + 4);
    memcpy(padded, seg, sl);
    for (size_t i = 0; i < sl; i++) padded[i] = padded[i] == '-' ? '+' : padded[i] == '_' ? '/' : padded[i];
    while (sl % 4) padded[sl++] = '=';
    padded[sl] = '\0';
    guchar *raw = g_base64_decode(padded, &n);
    json_t *c = json_loadb((const char *)raw, n, JSON_REJECT_DUPLICATES, NULL);
    CHECK(json_is_object(c));
    json_t *exp = json_object_get(c, "exp"), *nbf = json_object_get(c, "nbf"), *sub = json_object_get(c, "sub");
    CHECK(json_is_integer(exp) && json_integer_value(exp) > NOW);
    CHECK(!nbf || (json_is_integer(nbf) && json_integer_value(nbf) <= NOW));
    CHECK(strcmp(auth_principal_sub(p), sub ? json_string_value(sub) : "") == 0);
    if (with_policy) {
        const char *iss = json_string_value(json_object_get(c, "iss"));
        CHECK(iss && strcmp(iss, "https://idp.example") == 0);
        json_t *aud = json_object_get(c, "aud");
        CHECK(json_is_string(aud) || json_is_array(aud));
        json_t *iat = json_object_get(c, "iat");
        long long from = iat ? json_integer_value(iat) : (long long)NOW;
        CHECK(json_integer_value(exp) - from <= 3600);
    }
    check_scope(p, json_string_value(json_object_get(c, "scope")));
    json_decref(c);
    g_free(raw);
    g_free(padded);
    g_free(seg);
    /* one signature character changed: refused */
    char *t = g_strdup(token);
    char *sig = strrchr(t, '.') + 1;
    sig[0] = sig[0] == 'A' ? 'B' : 'A';
    auth_principal *q = NULL;
    auth_failure fail = AUTH_FAIL_COUNT;
    char why[ZS_ERRLEN] = "";
    CHECK(auth_verify(with_policy ? policy : plain, t, NOW, &q, &fail, why, sizeof why) < 0 && !q && *why);
    CHECK(fail == AUTH_FAIL_SIGNATURE || fail == AUTH_FAIL_MALFORMED);
    g_free(t);
}

static void verify(const char *token) {
    for (int k = 0; k < 2; k++) {
        auth_principal *p = NULL;
        auth_failure fail = AUTH_FAIL_COUNT;
        char why[ZS_ERRLEN] = "";
        int rc = auth_verify(k ? policy : plain, token, NOW, &p, &fail, why, sizeof why);
        if (rc == 0) {
            CHECK(p && !*why && fail == AUTH_FAIL_COUNT); /* both untouched */
            check_accepted(token, p, k == 1);
        } else {
            /* a refusal has a sentence and a class: never "missing" (there
             * is a token) and "other" only when memory ran out */
            CHECK(!p && *why && fail > AUTH_FAIL_MISSING && fail < AUTH_FAIL_COUNT);
            CHECK(fail != AUTH_FAIL_OTHER || strstr(why, "out of memory"));
        }
        auth_principal_free(p);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int mode = data[0] % 3;
    data++, size--;
    if (mode == 0) {
        char *tok = fuzz_cstr(data, size);
        verify(tok);
        free(tok);
        return 0;
    }
    const uint8_t *nul = memchr(data, 0, size);
    if (mode == 2) {
        char *sub = fuzz_cstr(data, size);
        char *scope = nul ? fuzz_cstr(nul + 1, size - (size_t)(nul + 1 - data)) : NULL;
        auth_principal *p = auth_principal_new(sub, scope);
        CHECK(p && strcmp(auth_principal_sub(p), sub) == 0);
        check_scope(p, scope);
        check_prefixes(p);
        auth_principal_free(p);
        free(sub);
        free(scope);
        return 0;
    }
    static const char def_header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    const uint8_t *h = nul ? data : (const uint8_t *)def_header, *pl = nul ? nul + 1 : data;
    size_t hn = nul ? (size_t)(nul - data) : sizeof def_header - 1, pn = nul ? size - hn - 1 : size;
    sbuf t = SBUF_INIT;
    b64url(&t, h, hn);
    sbuf_putc(&t, '.');
    b64url(&t, pl, pn);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned maclen = 0;
    if (!HMAC(EVP_sha256(), SECRET, sizeof SECRET - 1, (const unsigned char *)t.buf, t.len, mac, &maclen)) abort();
    sbuf_putc(&t, '.');
    b64url(&t, mac, maclen);
    CHECK(!sbuf_failed(&t));
    verify(t.buf);
    sbuf_free(&t);
    return 0;
}

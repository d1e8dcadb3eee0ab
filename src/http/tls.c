#include "http/tls.h"

#include "util/err.h"

#include <assert.h>
#include <glib.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct tls_creds {
    _Atomic int refs;
    unsigned n;                        /* certificates in chain, >= 1 */
    gnutls_pcert_st chain[TLS_MAX_CHAIN];
    gnutls_privkey_t key;
    char *subject;
    int64_t not_after;
};

/* Reads path whole (at most TLS_MAX_PEM bytes) into *out. */
static int read_pem(const char *flag, const char *path, char **out, char *why, size_t whylen) {
    gchar *text = NULL;
    gsize len = 0;
    GError *e = NULL;
    if (!g_file_get_contents(path, &text, &len, &e)) {
        zs_errf(why, whylen, "%s %s: %s", flag, path, e ? e->message : "cannot read");
        g_clear_error(&e);
        return -1;
    }
    if (len == 0 || len > TLS_MAX_PEM || memchr(text, 0, len)) {
        g_free(text);
        return zs_errf(why, whylen, "%s %s: not a PEM file of at most %d bytes", flag, path, TLS_MAX_PEM);
    }
    *out = strdup(text);
    g_free(text);
    if (!*out) return zs_errf(why, whylen, "out of memory");
    return 0;
}

/* "--tls-cert C / --tls-key K: [what: ]<GnuTLS's reason>" */
static void pair_error(char *why, size_t whylen, const char *cert_file, const char *key_file, const char *what, int rc) {
    zs_errf(why, whylen, "--tls-cert %s / --tls-key %s: %s%s%s", cert_file, key_file, what, *what ? ": " : "",
            gnutls_strerror(rc));
}

/* Whether GnuTLS accepts the pair as a server's: parses both and checks the
 * key belongs to the first certificate. */
static int check_pair(const char *cert, const char *key) {
    gnutls_certificate_credentials_t cred;
    int rc = gnutls_certificate_allocate_credentials(&cred);
    if (rc < 0) return rc;
    gnutls_datum_t c = {(unsigned char *)cert, (unsigned)strlen(cert)}, k = {(unsigned char *)key, (unsigned)strlen(key)};
    rc = gnutls_certificate_set_x509_key_mem(cred, &c, &k, GNUTLS_X509_FMT_PEM);
    gnutls_certificate_free_credentials(cred);
    return rc;
}

static void creds_free(tls_creds *t) {
    for (unsigned i = 0; i < t->n; i++) gnutls_pcert_deinit(&t->chain[i]);
    if (t->key) gnutls_privkey_deinit(t->key);
    free(t->subject);
    free(t);
}

tls_creds *tls_creds_load(const char *cert_file, const char *key_file, char *why, size_t whylen) {
    char *cert = NULL, *key = NULL;
    tls_creds *t = NULL;
    if (read_pem("--tls-cert", cert_file, &cert, why, whylen) < 0 || read_pem("--tls-key", key_file, &key, why, whylen) < 0)
        goto out;
    int rc = check_pair(cert, key);
    if (rc < 0) { pair_error(why, whylen, cert_file, key_file, "", rc); goto out; } /* e.g. "Base64 decoding error" */
    t = calloc(1, sizeof *t);
    if (!t) { zs_errf(why, whylen, "out of memory"); goto out; }
    atomic_init(&t->refs, 1);
    gnutls_datum_t c = {(unsigned char *)cert, (unsigned)strlen(cert)}, k = {(unsigned char *)key, (unsigned)strlen(key)};
    unsigned n = TLS_MAX_CHAIN;
    /* sorted leaf first, as GnuTLS's own credentials do (TLS 1.2 requires the order) */
    rc = gnutls_pcert_list_import_x509_raw(t->chain, &n, &c, GNUTLS_X509_FMT_PEM,
                                           GNUTLS_X509_CRT_LIST_SORT | GNUTLS_X509_CRT_LIST_IMPORT_FAIL_IF_EXCEED);
    if (rc < 0 || n == 0) {
        pair_error(why, whylen, cert_file, key_file, rc == GNUTLS_E_SHORT_MEMORY_BUFFER ? "a chain of more than 16 certificates"
                                                                                  : "the certificate chain", rc);
        goto fail;
    }
    t->n = n;
    if ((rc = gnutls_privkey_init(&t->key)) < 0 ||
        (rc = gnutls_privkey_import_x509_raw(t->key, &k, GNUTLS_X509_FMT_PEM, NULL, 0)) < 0) {
        pair_error(why, whylen, cert_file, key_file, "the private key", rc);
        goto fail;
    }
    /* A pair no handshake could use is refused like a bad file: outside its
     * validity period, or a key usage without digitalSignature (every suite
     * of the priority string signs). */
    gnutls_x509_crt_t crt;
    if ((rc = gnutls_pcert_export_x509(&t->chain[0], &crt)) < 0) { pair_error(why, whylen, cert_file, key_file, "the certificate", rc); goto fail; }
    gnutls_datum_t dn = {NULL, 0};
    if (gnutls_x509_crt_get_dn3(crt, &dn, 0) >= 0) {
        t->subject = strndup((const char *)dn.data, dn.size);
        gnutls_free(dn.data);
    }
    t->not_after = (int64_t)gnutls_x509_crt_get_expiration_time(crt);
    int64_t not_before = (int64_t)gnutls_x509_crt_get_activation_time(crt), now = (int64_t)time(NULL);
    unsigned usage = 0;
    int has_usage = gnutls_x509_crt_get_key_usage(crt, &usage, NULL) >= 0;
    gnutls_x509_crt_deinit(crt);
    if (now > t->not_after || now < not_before) {
        pair_error(why, whylen, cert_file, key_file, now > t->not_after ? "the certificate has expired" : "the certificate is not valid yet",
                          GNUTLS_E_EXPIRED);
        goto fail;
    }
    if (has_usage && !(usage & GNUTLS_KEY_DIGITAL_SIGNATURE)) {
        pair_error(why, whylen, cert_file, key_file, "the certificate's key usage lacks digitalSignature", GNUTLS_E_KEY_USAGE_VIOLATION);
        goto fail;
    }
    if (!t->subject) t->subject = strdup("?");
    if (!t->subject) { zs_errf(why, whylen, "out of memory"); goto fail; }
    goto out;
fail:
    creds_free(t);
    t = NULL;
out:
    free(cert);
    free(key);
    return t;
}

tls_creds *tls_creds_ref(tls_creds *c) {
    if (c) {
        int was = atomic_fetch_add(&c->refs, 1);
        assert(was > 0);
        (void)was;
    }
    return c;
}

void tls_creds_unref(tls_creds *c) {
    if (!c) return;
    int was = atomic_fetch_sub(&c->refs, 1);
    assert(was > 0);
    if (was == 1) creds_free(c);
}

void tls_creds_select(tls_creds *c, gnutls_pcert_st **chain, unsigned *n, gnutls_privkey_t *key) {
    assert(c && c->n > 0);
    *chain = c->chain;
    *n = c->n;
    *key = c->key;
}

const char *tls_creds_subject(const tls_creds *c) { return c->subject; }
int64_t tls_creds_not_after(const tls_creds *c) { return c->not_after; }

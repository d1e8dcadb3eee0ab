#include "http/tls.h"

#include <glib.h>
#include <gnutls/gnutls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reads path whole (at most TLS_MAX_PEM bytes) into *out. */
static int read_pem(const char *flag, const char *path, char **out, char **why) {
    gchar *text = NULL;
    gsize len = 0;
    GError *e = NULL;
    if (!g_file_get_contents(path, &text, &len, &e)) {
        *why = g_strdup_printf("%s %s: %s", flag, path, e ? e->message : "cannot read");
        g_clear_error(&e);
        return -1;
    }
    if (len == 0 || len > TLS_MAX_PEM || memchr(text, 0, len)) {
        *why = g_strdup_printf("%s %s: not a PEM file of at most %d bytes", flag, path, TLS_MAX_PEM);
        g_free(text);
        return -1;
    }
    *out = strdup(text);
    g_free(text);
    if (!*out) { *why = strdup("out of memory"); return -1; }
    return 0;
}

int tls_load_pair(const char *cert_file, const char *key_file, char **cert, char **key, char **why) {
    *cert = *key = NULL;
    *why = NULL;
    if (read_pem("--tls-cert", cert_file, cert, why) < 0 || read_pem("--tls-key", key_file, key, why) < 0) goto fail;
    gnutls_certificate_credentials_t cred;
    if (gnutls_certificate_allocate_credentials(&cred) < 0) { *why = strdup("GnuTLS: cannot allocate credentials"); goto fail; }
    gnutls_datum_t c = {(unsigned char *)*cert, (unsigned)strlen(*cert)}, k = {(unsigned char *)*key, (unsigned)strlen(*key)};
    int rc = gnutls_certificate_set_x509_key_mem(cred, &c, &k, GNUTLS_X509_FMT_PEM);
    gnutls_certificate_free_credentials(cred);
    if (rc < 0) {
        /* e.g. "The given DSA key is incompatible..." or "Base64 decoding error" */
        char msg[512];
        snprintf(msg, sizeof msg, "--tls-cert %s / --tls-key %s: %s", cert_file, key_file, gnutls_strerror(rc));
        *why = strdup(msg);
        goto fail;
    }
    return 0;
fail:
    free(*cert);
    free(*key);
    *cert = *key = NULL;
    if (!*why) *why = strdup("out of memory");
    return -1;
}

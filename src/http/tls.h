/* tls: the gateway's HTTPS certificate and key (--tls-cert, --tls-key).
 * The serving is libmicrohttpd's, with GnuTLS; this module reads the two PEM
 * files (at most TLS_MAX_PEM bytes each, a chain of at most TLS_MAX_CHAIN
 * certificates) and checks with GnuTLS that they parse and that the key
 * belongs to the first certificate, so a mistake is a clear message at start
 * (or on SIGHUP, where the pair in use stays) rather than a server that
 * cannot listen or a failed handshake.
 *
 * Ownership: a tls_creds is immutable once loaded and reference counted;
 * tls_creds_load returns one reference. The server holds one for the pair
 * it hands to new handshakes and each TLS connection holds one for the pair
 * it was given, so a reload never frees credentials a session still uses.
 * Threads: any; ref/unref are atomic, the rest reads immutable fields. */
#ifndef ZS_HTTP_TLS_H
#define ZS_HTTP_TLS_H

#include <gnutls/abstract.h>
#include <stddef.h>
#include <stdint.h>

#define TLS_MAX_PEM (1024 * 1024)
#define TLS_MAX_CHAIN 16

typedef struct tls_creds tls_creds;

/* One reference, or NULL and a sentence naming the files in why[0..whylen)
 * (util/err.h). */
tls_creds *tls_creds_load(const char *cert_file, const char *key_file, char *why, size_t whylen);
tls_creds *tls_creds_ref(tls_creds *c);
void tls_creds_unref(tls_creds *c); /* NULL: nothing */

/* For GnuTLS's certificate retrieval callback: the chain and the key, owned
 * by c (valid while the caller holds its reference). */
void tls_creds_select(tls_creds *c, gnutls_pcert_st **chain, unsigned *n, gnutls_privkey_t *key);

/* The first certificate's subject (e.g. "CN=localhost") and its expiry
 * (Unix seconds), for logs. */
const char *tls_creds_subject(const tls_creds *c);
int64_t tls_creds_not_after(const tls_creds *c);

#endif

/* tls: loading the gateway's HTTPS certificate and key (--tls-cert,
 * --tls-key). The serving is libmicrohttpd's, with GnuTLS; this module reads
 * the two PEM files (at most TLS_MAX_PEM bytes each) and checks with GnuTLS,
 * before the server starts, that they parse and that the key belongs to
 * the certificate, so a mistake is a clear message at start rather than a
 * server that cannot listen. Pure functions; any thread. */
#ifndef ZS_HTTP_TLS_H
#define ZS_HTTP_TLS_H

#define TLS_MAX_PEM (1024 * 1024)

/* 0 and malloc'd NUL-terminated *cert and *key; -1 and a malloc'd sentence
 * in *why (naming the file). */
int tls_load_pair(const char *cert_file, const char *key_file, char **cert, char **key, char **why);

#endif

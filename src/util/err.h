/* err: how fallible functions report why (docs/ARCHITECTURE.md "Errors").
 *
 * Below the protocol layer a function that can fail takes a buffer the
 * caller owns, `char *err, size_t errlen` as its last two parameters, and
 * writes a sentence there with zs_errf: nothing is allocated, nothing can
 * leak, and it works when memory is out. ZS_ERRLEN is the size callers
 * give.
 *
 * What becomes the client's answer is a zs_err: a protocol error on its way
 * to the client: HTTP status, the protocol's error code and a sentence
 * naming the field. A zs_err is a small value the caller owns; functions
 * that can fail fill it in. Pure functions; any thread. */
#ifndef ZS_ERR_H
#define ZS_ERR_H

#include <stddef.h>

/* The size of a caller's error buffer: room for a sentence that names two
 * files and a library's reason (a longer one is cut short). */
#define ZS_ERRLEN 1024

/* Formats a sentence into err[0..errlen), always NUL-terminated (cut short
 * if it must); nothing when err is NULL or errlen is 0. Returns -1, so that
 * `return zs_errf(err, errlen, ...);` ends a function that fails. */
int zs_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

typedef struct zs_err {
    int status;          /* HTTP status, 0 = no error */
    const char *code;    /* "bad_request", ... (static) */
    int retry_after;     /* seconds for 429/503, 0 = none */
    char message[512];
} zs_err;

void zs_err_set(zs_err *e, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* (A ZooKeeper error code becomes one in zk/zkerr.h.) */

#endif

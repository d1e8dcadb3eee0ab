/* err: a protocol error on its way to the client: HTTP status, the
 * protocol's error code and a sentence naming the field. A zs_err is a
 * small value the caller owns; functions that can fail fill it in. Pure
 * functions; any thread. */
#ifndef ZS_ERR_H
#define ZS_ERR_H

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

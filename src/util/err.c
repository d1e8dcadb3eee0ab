#include "util/err.h"

#include <stdarg.h>
#include <stdio.h>

void zs_err_set(zs_err *e, int status, const char *code, const char *fmt, ...) {
    e->status = status;
    e->code = code;
    e->retry_after = (status == 503 || status == 429) ? 1 : 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
}

int zs_errf(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || errlen == 0) return -1;
    err[0] = '\0'; /* terminated even if the formatting fails */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

#include "util/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <zookeeper/zookeeper.h>

void zs_err_set(zs_err *e, int status, const char *code, const char *fmt, ...) {
    e->status = status;
    e->code = code;
    e->retry_after = (status == 503 || status == 429) ? 1 : 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
}

void zs_err_zk(zs_err *e, int zrc, const char *what) {
    zs_err_set(e, 503, "unavailable", "ZooKeeper is not available (%s: %s); retry later", what, zerror(zrc));
}

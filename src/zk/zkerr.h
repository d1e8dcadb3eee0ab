/* zkerr: a ZooKeeper error code as the protocol's error (util/err): 503
 * unavailable with Retry-After, naming what failed and ZooKeeper's word for
 * it. Here, not in util, so that only the layers that speak ZooKeeper see
 * its codes. Pure function; any thread. */
#ifndef ZS_ZKERR_H
#define ZS_ZKERR_H

#include "util/err.h"

void zkerr_unavailable(zs_err *e, int zrc, const char *what);

#endif

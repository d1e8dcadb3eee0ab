#include "zk/zkerr.h"

#include <zookeeper/zookeeper.h>

void zkerr_unavailable(zs_err *e, int zrc, const char *what) {
    zs_err_set(e, 503, "unavailable", "ZooKeeper is not available (%s: %s); retry later", what, zerror(zrc));
}

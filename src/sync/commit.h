/* commit: group commit of many requests' multis into one zoo_multi.
 *
 * Workers hand their ready multi (record writes + their client node) to
 * the committer and wait. Each of a few committer threads takes everything
 * queued when it is free and sends it as ONE zoo_multi (up to max_bytes), so
 * under load many pushes share one ZooKeeper transaction and proposal, and
 * the multis in flight share fsyncs. Each caller still gets the outcome of its own operations: when the
 * combined multi fails on one caller's operation, that caller gets the
 * error and the others are sent again without it, so callers never fail
 * because of each other. */
#ifndef ZS_COMMIT_H
#define ZS_COMMIT_H

#include <stddef.h>
#include <zookeeper/zookeeper.h>

#include "util/log.h"
#include "util/metrics.h"

/* The write session (zk/zkc.h): an opaque handle here, so that the layers
 * above sync need not see ZooKeeper. */
typedef struct zkc zkc;

typedef struct committer committer;

committer *committer_start(zkc *z, size_t max_bytes, zs_metrics *m, const zs_log *lg);
/* After every caller returned (a caller signals the committers after its
 * unlock of the queue: nothing else orders that signal before the free). */
void committer_stop(committer *c);

/* Commits ops[0..n) atomically, perhaps in one multi with other callers'
 * operations. bytes is their estimated size in a multi. Returns ZOK with
 * res filled; or the error of one of these ops, with *failed its index; or
 * a session-level error (connection loss...) with *failed = -1. */
int committer_multi(committer *c, const zoo_op_t *ops, zoo_op_result_t *res, int n, size_t bytes, int *failed);

#endif

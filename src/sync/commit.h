/* commit: group commit of many requests' multis into one zoo_multi.
 *
 * Workers hand their ready multi (record writes + their client node) to
 * the committer and wait. A free committer thread (when it may, below)
 * takes what is queued, up to max_bytes, and sends it as ONE zoo_multi, so
 * under load many pushes share one ZooKeeper transaction and proposal, and
 * the multis in flight share fsyncs. Each caller still gets the outcome of
 * its own operations: when the combined multi fails on one caller's
 * operation, that caller gets the error and the others are sent again
 * without it, so callers never fail because of each other.
 *
 * Threads: committer_multi from any thread, several at once (each caller
 * sleeps until its own answer); COMMIT_THREADS committer threads. One lock,
 * the queue's, a leaf, never held across a multi. */
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

/* Multis in flight at once. One at a time leaves ZooKeeper one fsync per
 * round trip; a few let it fold their log writes into one, as it does for
 * any concurrent requests. Each batch is independent (every job carries its
 * own version checks), so their order does not matter.
 *
 * Up to COMMIT_BASE multis are sent whenever something is queued; up to
 * COMMIT_THREADS only while at least COMMIT_BACKLOG jobs wait (a free
 * thread is woken only then). These are counts of multis in flight, not
 * roles: any free thread takes what is queued, up to max_bytes. So a
 * multi stays large (what a push costs both sides falls with the pushes it
 * shares a multi with), and a backlog need not wait for one of the first
 * COMMIT_BASE to be answered (each push then spends less time outside
 * ZooKeeper). The price: with COMMIT_BASE multis in flight, fewer than
 * COMMIT_BACKLOG jobs wait for one of them to be answered, as they did
 * with COMMIT_BASE threads alone. Measured (docs/PERFORMANCE.md, "Round 2,
 * fourteenth session"): four plain slots against three gave smaller multis
 * at more CPU per push, two made each push wait for its slot, and three
 * with three more for backlogs of 8 raised B2's gateway throughput by
 * about a tenth over three alone. */
#define COMMIT_THREADS 6
#define COMMIT_BASE 3
#define COMMIT_BACKLOG 8

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

/* gc: the tombstone collector.
 *
 * Every gateway runs a gc thread; one at a time collects, chosen with
 * ZooKeeper's leader-election recipe: each gateway holds an ephemeral
 * sequential znode <root>/gc/g-<session>-NNNNNNNNNN, and the lowest
 * sequence number is the leader
 * (a gateway that dies or loses its session drops out at once). Every
 * interval the leader, for each store, takes from its mirror the tombstones
 * (and foreign hard deletes) older than tombstoneTtlSeconds, FIRST moves the
 * store's horizon to the newest of them (so any cursor that could need them
 * is answered cursor_expired from then on), THEN deletes their znodes, each
 * with its version (one that came back to life meanwhile stays). */
#ifndef ZS_GC_H
#define ZS_GC_H

#include <stdint.h>

#include "cache/mirror.h"
#include "util/log.h"

/* The write session (zk/zkc.h): an opaque handle here, so that the layers
 * above sync need not see ZooKeeper. */
typedef struct zkc zkc;

typedef struct gc gc;

/* schemas: the gateway's schema cache, for the configs the collector reads
 * (owned by the caller; it outlives the collector, like z and mirrors). */
gc *gc_start(zkc *z, mirror_set *mirrors, const char *root, store_schema_cache *schemas, int interval_s,
             const zs_log *lg);
void gc_stop(gc *g);

typedef struct gc_stats {
    uint64_t runs;        /* collection rounds run as leader */
    uint64_t collected;   /* tombstone znodes deleted */
    int leader;           /* 1 while this gateway is the collector */
    uint64_t invalid_candidates; /* election nodes ignored: not ephemeral (no live session) */
    uint64_t errors;      /* stores (or a pass's listing) not collected for a failure, each logged */
} gc_stats;
void gc_get_stats(gc *g, gc_stats *out);

#endif

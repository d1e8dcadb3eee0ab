/* bounds: every wait and every retry loop of the gateway has a bound, and
 * each bound is named here, once (docs/ARCHITECTURE.md, "Deadlines").
 * Constants only. */
#ifndef ZS_BOUNDS_H
#define ZS_BOUNDS_H

/* Waits, in milliseconds. */
#define BOUND_LOAD_MS 5000        /* a store's mirror loading (then 503) */
#define BOUND_CATCH_UP_MS 5000    /* a mirror catching up with ZooKeeper: a sync, then W reaches its zxid */
#define BOUND_SYNC_MS 5000        /* one ZooKeeper sync (zkc_sync) */
#define BOUND_READ_MS 10000       /* one pipelined read of many znodes (zkc_get_many) */
#define BOUND_QUOTA_DRAIN_MS 2000 /* one wait for other pushes' quota reservations */

/* Retries after a lost race (a version check failed: someone wrote first). */
#define BOUND_WRITE_ATTEMPTS 25   /* a push chunk or a records write, read and judged again */
#define BOUND_CONFIG_ATTEMPTS 20  /* a store config rewrite (PUT, the horizon) */
#define BOUND_CLIENT_READS 3      /* reading (or creating) a client node */
#define BOUND_QUOTA_WAITS 8       /* quota drains before a quota rejection stands */

/* One multi of a store's deletion: at most this many operations and this
 * many bytes of paths, counting
 * BOUND_DELETE_OP_BYTES more for each operation's framing, so that the
 * request stays well below ZooKeeper's jute.maxbuffer (1 MiB), which the
 * server answers by dropping the connection. A record's znode name may be
 * 3,072 bytes: 500 of them would pass it. (The collector deletes 200 at a
 * time, at most about 650 KB: sync/gc.c.) */
#define BOUND_DELETE_OPS 500
#define BOUND_DELETE_BYTES (512 * 1024)
#define BOUND_DELETE_OP_BYTES 32

#endif

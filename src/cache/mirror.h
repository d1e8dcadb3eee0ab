/* mirror: an in-memory copy of one store's records, fed by ZooKeeper.
 *
 * The mirror loads a store by listing its 4096 bucket znodes and reading every
 * record, leaving a child watch on each bucket and a data watch on each
 * record. A watch is only a hint: on every event the mirror reads the znode
 * again (data and stat) and re-arms the watch, so coalesced events still end
 * in the latest state.
 *
 * Cursor safety. Reads are numbered in the order they are sent; ZooKeeper
 * answers them in that order on one session, and delivers the watch event of
 * a change before any reply that shows the change or anything later. So when
 * reply j shows zxid z, every change with zxid <= z has already produced an
 * event, and the reads those events caused were all sent before reply j was
 * handled. Once those reads are answered, and the reads THEY caused (a bucket
 * listing that finds a new name reads that record), transitively, the
 * mirror reflects every change with zxid <= z: only then does z become the
 * watermark W. The feed returns
 * only changes at or below W and cursors no greater than "after W".
 *
 * Linearizable reads: mirror_catch_up() runs a ZooKeeper sync (shared by
 * concurrent callers) and then waits until the reads sent before the sync
 * completed, and those they depend on, are answered.
 *
 * Threads: each mirror has one mutex; completions run on the ZooKeeper
 * completion thread, requests on worker threads. Mirrors live until
 * mirror_set_free(), which must run after the ZooKeeper session is closed
 * (watch contexts point at them). */
#ifndef ZS_MIRROR_H
#define ZS_MIRROR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

#include "sync/cursor.h"
#include "zk/layout.h"
#include "util/log.h"
#include "util/sbuf.h"
#include "zk/zkc.h"

typedef struct mirror_set mirror_set;
typedef struct mirror mirror;

mirror_set *mirror_set_new(zkc *z, const char *root, const zs_log *lg);
void mirror_set_free(mirror_set *s);

/* Calls fn(ctx, m) on the ZooKeeper completion thread, with no mirror lock
 * held, each time m's watermark advances. Set it before the first acquire. */
void mirror_set_on_advance(mirror_set *s, void (*fn)(void *ctx, mirror *m), void *ctx);

/* Returns the mirror of store, creating it if needed. The store's identity
 * is its znode's czxid: when it differs from the one the mirror was loaded
 * for (the store was deleted and created again), the mirror reloads. Waits up
 * to timeout_ms for the load. Returns 0, or -1 on timeout. */
int mirror_set_acquire(mirror_set *s, const char *store, int64_t store_czxid, int timeout_ms, mirror **out);

/* The session expired (watches are gone): every mirror stops vouching for
 * anything until it is reloaded. */
void mirror_set_invalidate_all(mirror_set *s);
/* A new session is connected: reload every mirror. Cursors stay valid; W
 * never moves back. */
void mirror_set_reload_all(mirror_set *s);

/* ZooKeeper sync, then drain: afterwards the mirror reflects every write
 * acknowledged before the call. Returns 0, or -1 after timeout_ms. */
int mirror_catch_up(mirror *m, int timeout_ms);

/* The watermark W: every change with zxid <= W is reflected. */
uint64_t mirror_watermark(mirror *m);
/* Live records (tombstones and rejected values excluded). */
size_t mirror_live_count(mirror *m);

typedef struct mirror_page {
    size_t count;     /* changes written */
    bool more;        /* another page is ready now */
    cursor_pos next;  /* where to read on from */
    bool loaded;      /* false: the mirror is (re)loading and vouched for nothing */
    bool expired;     /* since is older than the store's horizon: resync */
} mirror_page;

/* Appends to out, as JSON array elements separated by commas (no brackets),
 * the changes after *since (NULL: every live record, no deletions), at most
 * limit and, past the first change, at most about max_bytes, in cursor
 * order, each key once in its latest state. */
void mirror_changes(mirror *m, const cursor_pos *since, int limit, size_t max_bytes, sbuf *out, mirror_page *page);
const char *mirror_store(const mirror *m);

/* What the mirror holds for key, a hint for a writer (its multi's version
 * checks catch a stale one). Returns 1 and sets *node (the znode exists),
 * *zver and *value (malloc'd compact JSON, NULL for a tombstone or a value
 * that is not JSON); 0 when the mirror has no such key; -1 when it cannot
 * say (not loaded, or the record not read yet). */
int mirror_peek(mirror *m, const char *key, size_t klen, bool *node, int32_t *zver, char **value, size_t *vlen);

/* The store's horizon (from its config znode, which the mirror watches). */
cursor_pos mirror_horizon(mirror *m);
/* A horizon seen elsewhere (a fresh config read): moves it forward only. */
void mirror_note_horizon(mirror *m, const cursor_pos *h);

/* Tombstones and hard-deleted records whose change is older than
 * older_than_ms (ms since the epoch), sorted by position: what the
 * collector may forget. A GArray of mirror_collectable (caller frees). */
typedef struct mirror_collectable {
    cursor_pos pos;
    unsigned bucket;
    int32_t zver;     /* the tombstone znode's version (for a checked delete) */
    bool gone;        /* no znode left (a foreign hard delete) */
    char name[3 * LAYOUT_MAX_KEY_BYTES + 1];
} mirror_collectable;
GArray *mirror_list_collectable(mirror *m, int64_t older_than_ms);

/* Counters for /metrics. */
typedef struct mirror_stats {
    uint64_t watch_events;
    uint64_t reads;
    uint64_t foreign_rejected;
    size_t records;
    size_t bytes;
} mirror_stats;
void mirror_set_stats(mirror_set *s, mirror_stats *out);

#endif

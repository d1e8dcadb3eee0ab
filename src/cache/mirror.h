/* mirror: an in-memory copy of the stores' records, fed by ZooKeeper.
 *
 * The mirrors of a gateway share one ZooKeeper session of their own (zk/zkw)
 * holding TWO persistent watches per store it mirrors (recursive on
 * <store>/r, plain on the store's config node), recorded before the store's
 * first read and removed when the store is seen deleted. An event only
 * says "look again": its path is queued, and queued reads go out as
 * multiRead batches. A store's mirror is loaded at first use (its config,
 * its 4096 bucket listings, then every record).
 *
 * Cursor safety (the full argument is in docs/ARCHITECTURE.md, "The mirror
 * and the watermark"): each reply's header carries the zxid Z the server had
 * applied, and the events of every change up to Z arrive before that reply.
 * Reads are counted as queued and as answered (in queue order); when a reply
 * has been handled, the checkpoint (queued now, Z) is recorded, and W moves
 * to Z once that many reads are answered. After a disconnect W freezes until
 * the gap (changes after W) is found with short probe sessions and read.
 *
 * Threads and locks: one mutex, mirror_set.mu, guards the set and every
 * mirror in it; replies and events are applied on the session's I/O thread,
 * requests come from worker threads, the gap check runs on its own thread.
 * Lock order: mirror_set.mu -> zkw.mu (zkw calls back with no lock held).
 * Mirrors live until mirror_set_free(). */
#ifndef ZS_MIRROR_H
#define ZS_MIRROR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

#include "cache/cursor.h"
#include "cache/store_cfg.h"
#include "util/log.h"
#include "util/names.h"
#include "util/sbuf.h"

typedef struct mirror_set mirror_set;
typedef struct mirror mirror;

/* Opens the mirrors' own session to hosts ("host:port,..."), authenticated
 * with the digest credentials cred ("user:password", or NULL). The configs
 * the mirrors read take their schemas from schemas (owned by the caller;
 * it outlives the set). NULL on bad arguments or out of memory
 * (why[0..whylen) says which, util/err.h). */
mirror_set *mirror_set_new(const char *hosts, int session_timeout_ms, const char *cred, const char *root,
                           store_schema_cache *schemas, const zs_log *lg, char *why, size_t whylen);
/* Closes the session and stops the gap-check thread: no hook runs after it.
 * Requests must be over. */
void mirror_set_stop(mirror_set *s);
void mirror_set_free(mirror_set *s);

/* A key (or a key prefix): bytes, not NUL-terminated in general. */
typedef struct mirror_key {
    const char *p;
    size_t len;
} mirror_key;
/* A feed filter: the keys starting with one of v[0..n), sorted, none a
 * prefix of another. A NULL filter: every key. */
typedef struct mirror_filter {
    const mirror_key *v;
    size_t n;
} mirror_filter;

/* Calls fn(ctx, m, keys) on the ZooKeeper completion thread, with no mirror
 * lock held, each time m's watermark advances. keys: a GPtrArray of
 * mirror_key* (NUL-terminated), the keys changed and now at or below the
 * watermark since the last call, or NULL for "any key" (too many, or a
 * load). Set it before the first acquire. */
void mirror_set_on_advance(mirror_set *s, void (*fn)(void *ctx, mirror *m, const GPtrArray *keys), void *ctx);

/* Returns the mirror of store, creating it if needed. The store's identity
 * is its znode's czxid: when it differs from the one the mirror was loaded
 * for (the store was deleted and created again), the mirror reloads. Waits up
 * to timeout_ms for the load. Returns 0, -1 on timeout, or MIRROR_GONE when
 * the mirror's session has since seen incarnation store_czxid deleted (the
 * store does not exist: answer as for a missing store). */
#define MIRROR_GONE (-2)
int mirror_set_acquire(mirror_set *s, const char *store, int64_t store_czxid, int timeout_ms, mirror **out);

/* The config of store as its loaded mirror last read it (through the
 * watch, as fresh as the mirror's data): true and *out, or false when there
 * is no loaded mirror, the session is away, or the store is absent or being
 * deleted (the caller then asks ZooKeeper). Saves a request per request.
 * *out owns a reference to the config's schema: store_cfg_release it. */
bool mirror_set_config(mirror_set *s, const char *store, store_cfg *out);

/* Whether every mirror can answer now; when not, appends why to *why: a
 * description of readiness for /readyz, not a failure report, hence an
 * sbuf rather than an error buffer (docs/ARCHITECTURE.md "Errors"). */
bool mirror_set_ready(mirror_set *s, sbuf *why);

/* ZooKeeper sync, then drain: afterwards the mirror reflects every write
 * acknowledged before the call. Returns 0, -1 after timeout_ms, or
 * MIRROR_GONE when incarnation czxid (the caller's read of the store) is
 * seen deleted meanwhile. */
int mirror_catch_up(mirror *m, int64_t czxid, int timeout_ms);

/* The watermark W: every change with zxid <= W is reflected. */
uint64_t mirror_watermark(mirror *m);
/* Live records (tombstones and rejected values excluded). */
size_t mirror_live_count(mirror *m);
/* The same under filter f (NULL: all), counted on the key index. */
size_t mirror_live_count_filtered(mirror *m, const mirror_filter *f);
/* Quotas (PROTOCOL.md "Quotas"), counted on the mirror: live records and
 * their bytes (keys plus compact values), plus what writers of this gateway
 * reserved for multis under way. A writer judges its mutations against
 * mirror_quota_totals, then reserves the growth it found (false: the totals
 * moved meanwhile past a quota; judge again), and releases the reservation
 * once its multi is answered (after mirror_note_writes: the room is counted
 * all along, as reserved or as held). Other gateways' writes show up
 * only when the mirror reads them: the overshoot the contract allows. */
void mirror_quota_totals(mirror *m, int64_t *records, int64_t *bytes);
bool mirror_quota_reserve(mirror *m, int64_t records, int64_t bytes, int64_t max_records, int64_t max_bytes);
void mirror_quota_release(mirror *m, int64_t records, int64_t bytes);
/* Whether writers hold reservations now; waiting until none do (or
 * timeout_ms): a quota rejection is final, so a writer makes it on the
 * mirror's totals alone, not while others hold room they may not use (a
 * multi that fails) or that the mirror already counts (their records read
 * before their reservation is released). */
bool mirror_quota_busy(mirror *m);
void mirror_quota_drain(mirror *m, int timeout_ms);

typedef struct mirror_page {
    size_t count;     /* changes written */
    bool more;        /* another page is ready now */
    cursor_pos next;  /* where to read on from */
    bool loaded;      /* false: the mirror is (re)loading and vouched for nothing */
    bool expired;     /* since is older than the store's horizon: resync */
    bool gone;        /* (not loaded) the store was seen deleted: a request for it loads it again */
} mirror_page;

/* Appends to out, as JSON array elements separated by commas (no brackets),
 * the changes after *since (NULL: every live record, no deletions) of the
 * keys in filter (NULL: all), at most limit and, past the first change, at
 * most about max_bytes, in cursor order, each key once in its latest
 * state. A filtered page costs in proportion to the records under the
 * filter, or (a broad filter) walks the feed at most FEED_SCAN_MAX records
 * and may then end, more and possibly empty, past invisible changes (see
 * docs/ARCHITECTURE.md, "Prefix scopes"). */
void mirror_changes(mirror *m, const cursor_pos *since, const mirror_filter *filter, int limit, size_t max_bytes, sbuf *out,
                    mirror_page *page);
const char *mirror_store(const mirror *m);

/* What the mirror holds for key, a hint for a writer (its multi's version
 * checks catch a stale one). Returns 1 and sets *node (the znode exists),
 * *zver and *value (malloc'd compact JSON, NULL for a tombstone or a value
 * that is not JSON); 0 when the mirror has no such key; -1 when it cannot
 * say (not loaded, or the record not read yet). */
int mirror_peek(mirror *m, const char *key, size_t klen, bool *node, int32_t *zver, char **value, size_t *vlen);

/* What this gateway's own multi wrote, from its result: the mirror takes
 * it at once instead of waiting for the event's read, so the next push's
 * version guess is right. Safe for cursors: a state is only ever replaced by
 * a newer one (higher zxid), and the feed shows it only once W reaches zxid,
 * when the mirror would hold it (or a newer one) anyway. Ignored when the
 * mirror holds another incarnation of the store than czxid. */
typedef struct mirror_write {
    const char *key;
    size_t klen;
    const char *value; /* compact JSON; NULL for a tombstone */
    size_t vlen;
    int32_t zver;      /* the znode's version after the write */
} mirror_write;
void mirror_note_writes(mirror *m, int64_t czxid, const mirror_write *w, size_t n, uint64_t zxid, int64_t mtime_ms);

/* The store's horizon (from its config znode, which the mirror watches). */
cursor_pos mirror_horizon(mirror *m);
/* A horizon seen elsewhere (a fresh config read): moves it forward only. */
void mirror_note_horizon(mirror *m, const cursor_pos *h);

/* What the collector may forget of incarnation czxid (another one, or none
 * loaded: nothing, and false): tombstones and hard-deleted records whose
 * change is older than older_than_ms (ms since the epoch) and at or below
 * W, in feed order from the first record after *from (a zero position: from
 * the start). Appends at most max of them to out (a GArray of
 * mirror_collectable) and visits at most MIRROR_COLLECT_VISIT records, so
 * that neither the caller's memory nor the time the mirrors' lock is held
 * grows with the store. Sets *from to the last record visited. Returns true
 * when the walk stopped early (call again from *from), false at its end. */
#define MIRROR_COLLECT_VISIT 65536
typedef struct mirror_collectable {
    cursor_pos pos;
    unsigned bucket;
    int32_t zver;     /* the tombstone znode's version (for a checked delete) */
    bool gone;        /* no znode left (a foreign hard delete) */
    char name[3 * NAMES_KEY_MAX_BYTES + 1]; /* the key's znode name (LAYOUT_MAX_NAME_BYTES) */
} mirror_collectable;
bool mirror_list_collectable(mirror *m, int64_t czxid, int64_t older_than_ms, cursor_pos *from, size_t max, GArray *out);

/* Counters for /metrics. */
typedef struct mirror_stats {
    uint64_t watch_events;   /* events of the persistent watches */
    uint64_t watches;        /* persistent watches the session holds (two per store mirrored) */
    uint64_t set_watches;    /* SetWatches2 packets sent to re-register them after reconnects */
    uint64_t reads;          /* reads sent (operations inside multiReads) */
    uint64_t batches;        /* multiReads sent */
    uint64_t foreign_rejected;
    uint64_t invalid_configs;  /* store configs read from ZooKeeper and refused */
    size_t records;
    size_t bytes;
    size_t entries;          /* every key known: live, tombstones, deletions not yet past the horizon */
    size_t bucket_tables;    /* bucket tables allocated (one per bucket holding an entry) */
    size_t queued;           /* reads waiting to be sent */
    uint64_t recoveries, probes, probe_events;
    uint64_t probe_paths;    /* paths gap checks probed (records, configs, buckets) */
    int64_t last_recovery_ms;
    bool connected, recovering;
    uint64_t watermark;
} mirror_stats;
void mirror_set_stats(mirror_set *s, mirror_stats *out);
/* One loaded store's mirror, for the per-store gauges of /metrics. */
typedef struct mirror_store_stat {
    char *store;   /* malloc'd */
    size_t records; /* live records */
    size_t bytes;   /* their key and value bytes */
} mirror_store_stat;
/* A snapshot of every loaded store (not being deleted), taken under
 * mirror_set.mu briefly. Returns the count and *out (malloc'd, NULL when
 * none or out of memory; free with mirror_store_stats_free). Any thread. */
size_t mirror_set_store_stats(mirror_set *s, mirror_store_stat **out);
void mirror_store_stats_free(mirror_store_stat *v, size_t n);

#endif

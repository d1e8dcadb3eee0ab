#include "cache/mirror.h"
#include "cache/watermark.h"

#include <assert.h>
#include <errno.h>
#include <glib.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zookeeper/zookeeper.h> /* error codes */

#include "cache/store_cfg.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/jraw.h"
#include "util/mutex.h"
#include "util/treap.h"
#include "zk/jute.h"
#include "zk/layout.h"

_Static_assert(sizeof ((mirror_collectable *)0)->name == LAYOUT_MAX_NAME_BYTES + 1,
               "mirror.h's name holds any key's znode name");
#include "zk/zkw.h"

enum {
    BATCH_OPS = 128,             /* operations in one multiRead */
    BATCH_BYTES = 512 * 1024,    /* request bytes of one multiRead (jute.maxbuffer is 1 MiB) */
    MAX_INFLIGHT = 16,           /* multiReads in flight, when full batches wait (a load, a burst) */
    EVENT_INFLIGHT = 2,          /* multiReads in flight for a partial batch (see flush) */
    PROBE_WATCHES = 50000,       /* watches one gap probe session holds at most */
    PROBE_TIMEOUT_MS = 30000,
    PROBE_ATTEMPTS = 3,          /* tries of one probe chunk before the check starts over */
    PROBE_PARALLEL = 4,          /* probe sessions at once */
    BATCH_REPLY_BYTES = 4 * 1024 * 1024, /* expected reply bytes of one multiRead */
    UNKNOWN_VALUE_BYTES = 65536, /* expected size of a value not read yet (the default maxValueBytes) */
    RECOVERY_RETRY_MS = 500,
    KEY_SCAN_MAX = 8192,         /* a filter's key runs up to this size are paged from the key index */
    FEED_SCAN_MAX = 65536,       /* records a filtered walk of the feed tree visits per page at most */
    CHANGED_MAX = 1024,          /* keys remembered between two notifications; more: "everything" */
};

/* A key changed since the streams were last told (see mirror_set_on_advance). */
typedef struct mkey {
    mirror_key k; /* first: the hook sees a mirror_key* (k.p owned) */
    uint64_t zxid;
} mkey;

/* One key the mirror knows (docs/ARCHITECTURE.md, "The record"): one
 * allocation holding the fields, the links of the three structures it is
 * in, and its name (then its key, when the two differ); the value is a
 * second, exact-size allocation. Owned by its bucket's table; guarded by
 * mirror_set.mu. Its feed position (zxid, key digest, zver + 1) is derived,
 * not stored. */
typedef struct rec {
    struct rec *hnext; /* the next record of its bucket's chain */
    treap_node feed;   /* in m->tree, by feed position, while in_tree */
    treap_node bykey;  /* in m->bykey, by key bytes, while in its bucket */
    char *value;     /* compact JSON, NUL-terminated; NULL for a tombstone, a gone or rejected value */
    uint64_t zxid;   /* zxid of the change this state comes from */
    int64_t mtime;   /* ms since the epoch: the znode's mtime, or when it was seen gone */
    int32_t zver;    /* znode version; protocol version = zver + 1; -1 = not read yet */
    uint32_t vlen;
    uint16_t klen;   /* key bytes (NAMES_KEY_MAX_BYTES fits) */
    uint16_t nlen;   /* name bytes (LAYOUT_MAX_NAME_BYTES fits) */
    bool in_tree : 1;
    bool gone : 1;         /* znode hard-deleted by someone */
    bool gone_pending : 1; /* read found no znode; waiting for the bucket's pzxid */
    bool rejected : 1;     /* data is not valid JSON */
    bool key_apart : 1;    /* the key differs from the name: it follows the name's NUL */
    char name[];     /* znode name (canonical encoding of the key), NUL-terminated */
} rec;
_Static_assert(NAMES_KEY_MAX_BYTES <= UINT16_MAX && LAYOUT_MAX_NAME_BYTES <= UINT16_MAX, "rec's lengths are 16 bits");

/* A bucket's records: a chained hash table by name, intrusive (rec.hnext).
 * Made at the bucket's first record, dropped with the records. */
typedef struct rbucket {
    rec **slot;      /* size heads of chains */
    uint32_t size;   /* a power of two */
    uint32_t n;      /* records */
} rbucket;

/* One read, queued then sent in a multiRead. */
enum { OP_DATA, OP_LIST, OP_BSTAT, OP_CONFIG };
typedef struct op {
    struct op *next;
    mirror *m;
    uint64_t gen;
    uint8_t kind;
    bool load;       /* part of m's load: counted in m->load_pending */
    uint64_t seq;    /* its number in queue order (see cache/watermark.h) */
    uint16_t bucket;
    char *qkey;      /* key in m->queued while unsent (NULL for load ops) */
    char name[];     /* record name, OP_DATA */
} op;

typedef struct opq {
    op *head, *tail;
    size_t len;
} opq;

typedef struct batch {
    mirror_set *s;
    size_t n;
    op *ops[];
} batch;

struct mirror {
    mirror_set *set;
    char *store;
    char *spath;             /* <root>/stores/<store> (the config): a persistent watch while loading or loaded */
    char *rpath;             /* <root>/stores/<store>/r: a persistent recursive watch, the same */
    /* everything below: guarded by set->mu */
    cursor_pos horizon;      /* from the config: older cursors are expired */
    int64_t czxid;           /* identity of the store znode loaded */
    uint64_t gen;            /* bumped at every reload; older replies are ignored */
    bool loaded;
    bool gone;               /* records, watches and config dropped: the store was seen deleted
                              * (unload), or a load ran out of memory (drop_all) */
    int64_t deleted_upto;    /* the newest incarnation (czxid) proven deleted, -1 for none
                              * (apply_config): it and every older one never exist again.
                              * Only ever grows. */
    uint64_t load_pending;   /* load operations not answered yet */
    /* name -> rec (owns rec), by bucket: LAYOUT_BUCKETS pointers, each NULL
     * until its bucket has a record. The table itself (32 KiB) is made by
     * start_load and freed with the records (buckets_drop): NULL while the
     * mirror never loaded or is unloaded (its store deleted). Read it
     * through bucket_at. */
    rbucket **buckets;
    treap tree;                      /* rec.feed: by feed position, the records in_tree */
    treap bykey;                     /* rec.bykey: by key bytes, every rec of the buckets */
    GPtrArray *changed;      /* mkey*: changed since the streams were last told (owned) */
    bool changed_all;        /* too many, or a load: tell every stream until W reaches all_until */
    uint64_t all_until;      /* the highest zxid changed while changed_all */
    size_t live, bytes;
    int64_t res_records, res_bytes; /* quota room reserved by writers whose multi is under way */
    GHashTable *queued;      /* qkey -> op: reads queued and not sent (no duplicates) */
    uint64_t newest;         /* highest zxid applied */
    uint64_t notified;       /* W when the streams were last told */
    store_cfg cfg;           /* the store's config as last read (owns its schema reference) */
    bool cfg_valid;          /* cfg is this incarnation's, and the store is not being deleted */
    bool tell_gone;          /* unloaded since the streams were last told */
    uint64_t rejected;
    uint64_t invalid_configs;  /* config reads refused */
};

struct mirror_set {
    char *root;
    char *stores_path;       /* <root>/stores: what event paths are classified against */
    size_t stores_path_len;
    char *hosts;
    char *cred;              /* digest credentials for the probes, or NULL */
    store_schema_cache *schemas; /* the configs' schemas (not owned; outlives the set) */
    const zs_log *lg;
    zkw *w;
    void (*on_advance)(void *ctx, mirror *m, const GPtrArray *keys); /* immutable once mirrors exist */
    void *on_advance_ctx;

    zs_mutex mu;             /* guards everything below and every mirror's fields */
    pthread_cond_t cond;     /* W moved, a load ended, a sync ended, recovery ended */
    pthread_cond_t rcond;    /* the recovery thread's own: recover_wanted, connected or stopping set.
                              * (On cond it woke at every advance of W, about a thousand
                              * times a second under B2's load, to sleep again.) */
    GHashTable *stores;      /* name -> mirror */
    opq q;                   /* queued, not sent */
    opq lost;                /* sent on a connection that went: re-queued at the disconnect */
    unsigned inflight;
    wm wm;                   /* reads queued / answered, the checkpoints, the watermark W */
    bool connected, recovering, ever_connected;
    uint64_t rgen;           /* bumped at every disconnect */
    /* coalesced sync */
    bool sync_inflight, sync_again;
    uint64_t sync_sent, sync_done, sync_failed_seq;
    uint64_t sync_z;
    /* recovery thread */
    pthread_t rthr;
    bool rthr_started, stopping, recover_wanted;
    atomic_bool cancel;      /* set with stopping: cuts a gap probe short */
    uint64_t rsync_sent, rsync_done; /* the gap check's sync on the main session */
    int rsync_rc;
    int64_t rsync_zxid;
    /* stats */
    uint64_t watch_events, reads, batches, recoveries, probes, probe_paths, probe_events;
    int64_t last_recovery_ms;
};

#define REC_OF_FEED(n) TREAP_ENTRY(n, rec, feed)
#define REC_OF_KEY(n) TREAP_ENTRY(n, rec, bykey)

/* The decoded key: the name itself, or what follows its NUL. */
static const char *rec_key(const rec *r) { return r->key_apart ? r->name + r->nlen + 1 : r->name; }

/* The feed position of r's state (meaningful once read: zver >= 0). */
static cursor_pos rec_pos(const rec *r) {
    return (cursor_pos){r->zxid, layout_key_hash(rec_key(r), r->klen), (uint32_t)r->zver + 1u};
}

/* Key order: bytes, then length (a prefix sorts first). */
static int key_cmp(const char *a, size_t al, const char *b, size_t bl) {
    int c = memcmp(a, b, al < bl ? al : bl);
    return c ? c : (al > bl) - (al < bl);
}

/* Feed order; ties (a digest collision inside one transaction) by key
 * bytes. The digest is computed only when the zxids tie. */
static int rec_cmp(const rec *ra, const rec *rb) {
    if (ra->zxid != rb->zxid) return ra->zxid < rb->zxid ? -1 : 1;
    if (ra == rb) return 0;
    cursor_pos pa = rec_pos(ra), pb = rec_pos(rb);
    int c = cursor_cmp(&pa, &pb);
    return c ? c : key_cmp(rec_key(ra), ra->klen, rec_key(rb), rb->klen);
}

static int feed_cmp(const treap_node *a, const treap_node *b, void *unused) {
    (void)unused;
    return rec_cmp(REC_OF_FEED(a), REC_OF_FEED(b));
}

/* A record against a position probe: at the probe's position it sorts
 * first (so the upper bound is the first record after the position). */
static int feed_vs_pos(const treap_node *n, const void *probe) {
    const rec *r = REC_OF_FEED(n);
    const cursor_pos *p = probe;
    if (r->zxid != p->zxid) return r->zxid < p->zxid ? -1 : 1;
    cursor_pos rp = rec_pos(r);
    int c = cursor_cmp(&rp, p);
    return c ? c : -1;
}

static int bykey_cmp(const treap_node *a, const treap_node *b, void *unused) {
    (void)unused;
    const rec *ra = REC_OF_KEY(a), *rb = REC_OF_KEY(b);
    return key_cmp(rec_key(ra), ra->klen, rec_key(rb), rb->klen);
}

static int bykey_vs_key(const treap_node *n, const void *probe) {
    const rec *r = REC_OF_KEY(n);
    const mirror_key *k = probe;
    return key_cmp(rec_key(r), r->klen, k->p, k->len);
}

static void rec_free(rec *r) {
    if (!r) return;
    free(r->value);
    free(r);
}

static void tree_remove(mirror *m, rec *r) {
    ZS_MUTEX_ASSERT_HELD(&m->set->mu);
    if (!r->in_tree) return;
    treap_remove(&m->tree, &r->feed);
    r->in_tree = false;
    if (r->value) { m->live--; m->bytes -= r->vlen + r->klen; }
}

static void changed_free(gpointer p) {
    mkey *c = p;
    g_free((char *)c->k.p);
    g_free(c);
}

/* Remembers that r changed, for the streams (see resolve). */
static void to_all(mirror *m) {
    for (guint i = 0; i < m->changed->len; i++) {
        const mkey *c = g_ptr_array_index(m->changed, i);
        if (c->zxid > m->all_until) m->all_until = c->zxid;
    }
    g_ptr_array_set_size(m->changed, 0); /* (frees them) */
    m->changed_all = true;
}

static void note_changed(mirror *m, const rec *r) {
    ZS_MUTEX_ASSERT_HELD(&m->set->mu);
    if (!m->loaded || m->changed->len >= CHANGED_MAX) to_all(m);
    if (m->changed_all) {
        if (r->zxid > m->all_until) m->all_until = r->zxid;
        return;
    }
    mkey *c = g_try_malloc(sizeof *c);
    char *k = c ? g_try_malloc(r->klen + 1) : NULL;
    if (!k) {
        g_free(c);
        to_all(m);
        if (r->zxid > m->all_until) m->all_until = r->zxid;
        return;
    }
    memcpy(k, rec_key(r), r->klen);
    k[r->klen] = 0;
    c->zxid = r->zxid;
    c->k = (mirror_key){k, r->klen};
    g_ptr_array_add(m->changed, c);
}

static void tree_insert(mirror *m, rec *r) {
    ZS_MUTEX_ASSERT_HELD(&m->set->mu);
    assert(!r->in_tree && r->zver >= 0);
    treap_insert(&m->tree, &r->feed);
    r->in_tree = true;
    if (r->value) { m->live++; m->bytes += r->vlen + r->klen; }
    if (r->zxid > m->newest) m->newest = r->zxid;
    note_changed(m, r);
}

/* ---- the buckets' tables (caller holds mu) ------------------------------
 *
 * A bucket's table is made at its first record (a small store fills few of
 * its 4,096 buckets) and dropped with the records. Chains are searched by
 * name; the slot is a mix of the name's FNV-1a digest (whose low 12 bits,
 * for a name equal to its key, are the bucket itself: hence the mix). */

enum { BUCKET_MIN_SLOTS = 8 };

/* Bucket b's table, NULL when it holds nothing. */
static rbucket *bucket_at(const mirror *m, unsigned b) {
    assert(b < LAYOUT_BUCKETS);
    return m->buckets ? m->buckets[b] : NULL;
}

static uint32_t name_slot(const rbucket *bk, const char *name) {
    uint64_t x = layout_key_hash(name, strlen(name));
    x ^= x >> 33;
    x *= UINT64_C(0xff51afd7ed558ccd);
    x ^= x >> 33;
    return (uint32_t)x & (bk->size - 1);
}

static rec *bucket_lookup(const mirror *m, unsigned b, const char *name) {
    const rbucket *bk = bucket_at(m, b);
    if (!bk) return NULL;
    for (rec *r = bk->slot[name_slot(bk, name)]; r; r = r->hnext)
        if (strcmp(r->name, name) == 0) return r;
    return NULL;
}

/* Rehashes bk into size slots (a power of two). false: out of memory (bk
 * unchanged, still correct, only slower). */
static bool bucket_resize(rbucket *bk, uint32_t size) {
    rec **slot = calloc(size, sizeof *slot);
    if (!slot) return false;
    rbucket old = *bk;
    bk->slot = slot;
    bk->size = size;
    for (uint32_t i = 0; i < old.size; i++)
        for (rec *r = old.slot[i], *next; r; r = next) {
            next = r->hnext;
            uint32_t j = name_slot(bk, r->name);
            r->hnext = slot[j];
            slot[j] = r;
        }
    free(old.slot);
    return true;
}

/* The table of bucket b, made if needed; NULL when out of memory or when
 * the mirror holds no bucket table (not loading: it keeps nothing). */
static rbucket *bucket_make(mirror *m, unsigned b) {
    if (!m->buckets) return NULL;
    if (m->buckets[b]) return m->buckets[b];
    rbucket *bk = calloc(1, sizeof *bk);
    if (!bk || !(bk->slot = calloc(BUCKET_MIN_SLOTS, sizeof *bk->slot))) { free(bk); return NULL; }
    bk->size = BUCKET_MIN_SLOTS;
    m->buckets[b] = bk;
    return bk;
}

/* A record the mirror knows from now on (its bucket's table owns it). */
static void rec_add(mirror *m, rbucket *bk, rec *r) {
    ZS_MUTEX_ASSERT_HELD(&m->set->mu);
    assert(!r->in_tree);
    if (bk->n >= bk->size) bucket_resize(bk, bk->size * 2); /* (failing: longer chains) */
    uint32_t i = name_slot(bk, r->name);
    r->hnext = bk->slot[i];
    bk->slot[i] = r;
    bk->n++;
    treap_insert(&m->bykey, &r->bykey);
}

/* Takes r (pointed to by *link, in its chain) out of every structure and
 * frees it. */
static void rec_forget_at(mirror *m, rbucket *bk, rec **link) {
    ZS_MUTEX_ASSERT_HELD(&m->set->mu);
    rec *r = *link;
    tree_remove(m, r);
    treap_remove(&m->bykey, &r->bykey);
    *link = r->hnext;
    bk->n--;
    rec_free(r);
}

static void rec_forget(mirror *m, unsigned b, rec *r) {
    rbucket *bk = bucket_at(m, b);
    assert(bk);
    rec **link = &bk->slot[name_slot(bk, r->name)];
    while (*link != r) {
        assert(*link && "mirror: a record not in its bucket's chain");
        link = &(*link)->hnext;
    }
    rec_forget_at(m, bk, link);
}

static void bucket_free(rbucket *bk) {
    if (!bk) return;
    for (uint32_t i = 0; i < bk->size; i++)
        for (rec *r = bk->slot[i], *next; r; r = next) {
            next = r->hnext;
            rec_free(r);
        }
    free(bk->slot);
    free(bk);
}

/* Drops every record, and the bucket table with them (the feed tree must
 * be emptied by the caller first, or with it). */
static void buckets_drop(mirror *m) {
    treap_init(&m->tree, feed_cmp, NULL);
    treap_init(&m->bykey, bykey_cmp, NULL); /* before the recs it points to */
    to_all(m); /* every stream looks again */
    for (unsigned b = 0; m->buckets && b < LAYOUT_BUCKETS; b++) bucket_free(m->buckets[b]);
    free(m->buckets);
    m->buckets = NULL;
}

/* Returns the value to keep, in compact form (a foreign writer's pretty
 * print becomes one line, as the feed and the event stream need), in an
 * allocation of its exact size (the compacting buffer grows by doubling),
 * or NULL when v is not JSON (or on allocation failure). */
static char *json_value_copy(const char *v, int len, uint32_t *out_len) {
    sbuf b = SBUF_INIT;
    jraw_err e;
    if (jraw_compact(v, (size_t)len, &b, &e) < 0 || sbuf_failed(&b)) { sbuf_free(&b); return NULL; }
    char *out = malloc(b.len + 1);
    if (out) {
        memcpy(out, b.buf, b.len);
        out[b.len] = 0;
        *out_len = (uint32_t)b.len;
    }
    sbuf_free(&b);
    return out;
}

/* A record for the znode name of bucket, not read yet (zver -1), in one
 * allocation: the fields, the name and (only when it differs) the key.
 * NULL when name is not a zoosync key's, or out of memory. */
static rec *rec_new(const char *name, unsigned bucket_no) {
    size_t klen;
    char *key = layout_key_decode(name, &klen);
    if (!key) return NULL;
    size_t nlen = strlen(name);
    bool apart = klen != nlen || memcmp(key, name, nlen) != 0;
    if (layout_bucket(layout_key_hash(key, klen)) != bucket_no || names_key_invalid(key, klen) ||
        nlen > LAYOUT_MAX_NAME_BYTES) {
        free(key);
        return NULL;
    }
    rec *r = malloc(offsetof(rec, name) + nlen + 1 + (apart ? klen + 1 : 0));
    if (!r) { free(key); return NULL; }
    memset(r, 0, offsetof(rec, name));
    memcpy(r->name, name, nlen + 1);
    if (apart) memcpy(r->name + nlen + 1, key, klen + 1);
    free(key);
    r->klen = (uint16_t)klen;
    r->nlen = (uint16_t)nlen;
    r->key_apart = apart;
    r->zver = -1;
    return r;
}

/* ---- the queue of reads (caller holds s->mu) ---------------------------- */

static void opq_push(opq *q, op *o) {
    o->next = NULL;
    if (q->tail) q->tail->next = o;
    else q->head = o;
    q->tail = o;
    q->len++;
}

static op *opq_pop(opq *q) {
    op *o = q->head;
    if (!o) return NULL;
    q->head = o->next;
    if (!q->head) q->tail = NULL;
    q->len--;
    o->next = NULL;
    return o;
}

/* Puts every op of src before dst's. */
static void opq_prepend(opq *dst, opq *src) {
    if (!src->head) return;
    src->tail->next = dst->head;
    if (!dst->tail) dst->tail = src->tail;
    dst->head = src->head;
    dst->len += src->len;
    src->head = src->tail = NULL;
    src->len = 0;
}

/* Puts every op of src after dst's. */
static void opq_append(opq *dst, opq *src) {
    if (!src->head) return;
    if (dst->tail) dst->tail->next = src->head;
    else dst->head = src->head;
    dst->tail = src->tail;
    dst->len += src->len;
    src->head = src->tail = NULL;
    src->len = 0;
}

static void op_free(op *o) {
    if (!o) return;
    free(o->qkey);
    free(o);
}

static char *op_path(const op *o) {
    const mirror *m = o->m;
    const char *root = m->set->root;
    return o->kind == OP_CONFIG ? strdup(m->spath)
           : o->kind == OP_DATA ? layout_named_record_path(root, m->store, o->bucket, o->name)
                                : layout_bucket_path(root, m->store, o->bucket);
}

/* Queues a read. A load read is always queued (and counted in the load); any
 * other read is skipped when the same read is queued and not sent yet: that
 * one goes out after the event that asked for this one, so it shows at
 * least as much. */
static void enqueue(mirror *m, int kind, unsigned bucket, const char *name, bool load) {
    ZS_MUTEX_ASSERT_HELD(&m->set->mu);
    mirror_set *s = m->set;
    size_t nlen = name ? strlen(name) : 0;
    char *qkey = NULL;
    if (!load) {
        if (asprintf(&qkey, "%d/%03x/%s", kind, bucket, name ? name : "") < 0) qkey = NULL;
        if (qkey && g_hash_table_contains(m->queued, qkey)) { free(qkey); return; }
    }
    op *o = malloc(sizeof *o + nlen + 1);
    if (!o || (!load && !qkey)) {
        /* Out of memory: the read is lost, so W must not pass it. Make the
         * session look disconnected to the accounting: recovery re-checks. */
        LOG_ERROR(s->lg, "mirror %s: out of memory queueing a read; forcing a gap check", m->store);
        free(o);
        free(qkey);
        s->recover_wanted = true;
        s->recovering = true;
        pthread_cond_broadcast(&s->cond);
        pthread_cond_signal(&s->rcond);
        return;
    }
    o->m = m;
    o->gen = m->gen;
    o->kind = (uint8_t)kind;
    o->load = load;
    o->bucket = (uint16_t)bucket;
    o->qkey = qkey;
    memcpy(o->name, name ? name : "", nlen + 1);
    if (qkey) g_hash_table_insert(m->queued, qkey, o);
    if (load) m->load_pending++;
    opq_push(&s->q, o);
    o->seq = wm_enqueue(&s->wm);
}

static void batch_done(void *ctx, int rc, int64_t zxid, jute_in *body);
static void start_load(mirror *m, int64_t czxid);
static void unload(mirror *m);

/* What an operation's reply may weigh: a known record's value, or the
 * default maxValueBytes for one not read yet (a listing: its names). So a
 * batch's reply stays near BATCH_REPLY_BYTES, for ZooKeeper's memory and
 * ours. */
static size_t expected_reply(const op *o) {
    if (o->kind == OP_LIST) return (size_t)NAMES_KEY_MAX_BYTES * 8;
    if (o->kind != OP_DATA) return 1024;
    const rec *r = bucket_lookup(o->m, o->bucket, o->name);
    return r && r->zver >= 0 ? 128 + r->vlen + strlen(o->name) : UNKNOWN_VALUE_BYTES;
}

/* Sends queued reads as multiReads: full batches while fewer than
 * MAX_INFLIGHT are out, a partial one only while fewer than EVENT_INFLIGHT
 * are. Under a steady stream of events (the gateway's own writes come back
 * as events too) the reads that arrive while two batches are on the wire
 * wait for one of them and go out together: one multiRead for many, where
 * sending each at once made about one request per write (B2's ZooKeeper
 * CPU). A read waits at most two round trips; the order of batches, which
 * the watermark relies on, is the queue's as before. */
static void flush(mirror_set *s) {
    ZS_MUTEX_ASSERT_HELD(&s->mu);
    while (!s->stopping && s->connected && s->q.head &&
           (s->inflight < EVENT_INFLIGHT || (s->inflight < MAX_INFLIGHT && s->q.len >= BATCH_OPS))) {
        batch *b = malloc(sizeof *b + BATCH_OPS * sizeof(op *));
        if (!b) return;
        b->s = s;
        b->n = 0;
        sbuf body = SBUF_INIT;
        size_t expect = 0; /* reply bytes to expect: the values, as far as known */
        while (b->n < BATCH_OPS && s->q.head && body.len < BATCH_BYTES && (b->n == 0 || expect < BATCH_REPLY_BYTES)) {
            op *o = opq_pop(&s->q);
            expect += expected_reply(o);
            if (o->qkey) {
                g_hash_table_remove(o->m->queued, o->qkey);
                free(o->qkey);
                o->qkey = NULL;
            }
            char *path = op_path(o);
            int type = o->kind == OP_LIST ? JUTE_OP_GET_CHILDREN : JUTE_OP_GET_DATA;
            jute_multi_op(&body, type, path ? path : "/", false);
            if (!path) body.failed = true;
            free(path);
            b->ops[b->n++] = o;
        }
        jute_multi_end(&body);
        int rc = sbuf_failed(&body) ? -1 : zkw_submit(s->w, JUTE_OP_MULTI_READ, body.buf, body.len, batch_done, b);
        sbuf_free(&body);
        if (rc < 0) { /* not connected any more (or out of memory): back to the front, in order */
            opq back = {NULL, NULL, 0};
            for (size_t i = 0; i < b->n; i++) opq_push(&back, b->ops[i]);
            opq_prepend(&s->q, &back);
            free(b);
            return;
        }
        s->inflight++;
        s->batches++;
        s->reads += b->n;
    }
}

/* ---- W -------------------------------------------------------------------------- */

/* Mirrors whose streams are to be told that W moved (filled under mu,
 * called after it is released). */
typedef struct notify_list {
    GPtrArray *v;    /* mirror*, NULL until needed */
    GPtrArray *keys; /* per mirror of v: GPtrArray of mkey* now at or below W, or NULL for every stream */
} notify_list;

/* Hands the keys of m changed at or below w to the list (the others wait
 * for a later advance). NULL: every stream. Caller holds mu. */
static GPtrArray *take_changed(mirror *m, uint64_t w) {
    if (m->changed_all) { /* (then the list is empty) */
        if (m->all_until <= w) m->changed_all = false;
        return NULL;
    }
    GPtrArray *out = g_ptr_array_new_with_free_func(changed_free);
    guint k = 0;
    for (guint i = 0; i < m->changed->len; i++) {
        mkey *c = g_ptr_array_index(m->changed, i);
        if (c->zxid > w) { m->changed->pdata[k++] = c; continue; }
        g_ptr_array_add(out, c);
    }
    m->changed->len = k; /* (set directly: the moved entries are not freed) */
    return out;
}

/* W moved: wakes the waiters and lists the mirrors whose streams are to be
 * told. Caller holds mu. */
static void advanced(mirror_set *s, notify_list *nl) {
    ZS_MUTEX_ASSERT_HELD(&s->mu);
    uint64_t w = wm_value(&s->wm);
    pthread_cond_broadcast(&s->cond);
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, s->stores);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        mirror *m = v;
        if (m->tell_gone) { /* unloaded: every stream looks (and ends) */
            m->tell_gone = false;
            if (!nl->v) {
                nl->v = g_ptr_array_new();
                nl->keys = g_ptr_array_new();
            }
            g_ptr_array_add(nl->v, m);
            g_ptr_array_add(nl->keys, NULL);
            continue;
        }
        if (!m->loaded || m->newest <= m->notified) continue;
        m->notified = w;
        if (!nl->v) {
            nl->v = g_ptr_array_new();
            nl->keys = g_ptr_array_new();
        }
        g_ptr_array_add(nl->v, m);
        g_ptr_array_add(nl->keys, take_changed(m, w));
    }
}

/* Records the checkpoint of a reply showing zxid z, handled just now (its
 * results applied, their reads queued). Caller holds mu. */
static void checkpoint_at(mirror_set *s, uint64_t z, notify_list *nl) {
    ZS_MUTEX_ASSERT_HELD(&s->mu);
    if (s->recovering) return; /* the gap is not read yet: W stays */
    if (wm_checkpoint(&s->wm, z)) advanced(s, nl);
}

static void unlock_and_notify(mirror_set *s, notify_list *nl) {
    ZS_MUTEX_ASSERT_HELD(&s->mu);
    zs_mutex_unlock(&s->mu);
    if (!nl->v) return;
    for (guint i = 0; i < nl->v->len; i++) {
        GPtrArray *keys = g_ptr_array_index(nl->keys, i);
        if (s->on_advance) s->on_advance(s->on_advance_ctx, g_ptr_array_index(nl->v, i), keys);
        if (keys) g_ptr_array_free(keys, TRUE);
    }
    g_ptr_array_free(nl->v, TRUE);
    g_ptr_array_free(nl->keys, TRUE);
    nl->v = nl->keys = NULL;
}

/* ---- applying what a read showed (caller holds mu) -------------------------------- */

/* Drops hard-deleted records at or before the horizon, which has just moved
 * up from old: those in (old, horizon] of the feed. The ones at or before
 * old went when the horizon reached old, and a deletion seen later at a
 * position the horizon already covers is forgotten at once (mark_gone), so
 * a collector's rounds cost the span they cover, not the store. */
static void prune_gone(mirror *m, const cursor_pos *old) {
    ZS_MUTEX_ASSERT_HELD(&m->set->mu);
    bool start = !old->zxid && !old->khash && !old->version;
    treap_node *n = start ? treap_first(&m->tree) : treap_upper_bound(&m->tree, feed_vs_pos, old);
    while (n) {
        rec *r = REC_OF_FEED(n);
        if (r->zxid > m->horizon.zxid) break; /* (positions order by zxid first) */
        cursor_pos p = rec_pos(r);
        if (cursor_cmp(&p, &m->horizon) > 0) break;
        n = treap_next(n);
        if (r->gone) rec_forget(m, layout_bucket(p.khash), r);
    }
}

static void apply_data(mirror *m, const op *o, int err, jute_bytes data, const jute_stat *st) {
    ZS_MUTEX_ASSERT_HELD(&m->set->mu);
    rec *r = bucket_lookup(m, o->bucket, o->name);
    if (err == ZOK) {
        if (!r && (r = rec_new(o->name, o->bucket))) {
            rbucket *bk = bucket_make(m, o->bucket);
            if (bk) rec_add(m, bk, r);
            else { rec_free(r); r = NULL; } /* (out of memory: counted as refused) */
        }
        if (!r) {
            m->rejected++;
            LOG_WARN(m->set->lg, "mirror %s: ignoring znode %03x/%s: not a zoosync key name", m->store, o->bucket, o->name);
            return;
        }
        r->gone_pending = false;
        if (r->in_tree && r->zxid == (uint64_t)st->mzxid && r->zver == st->version && !r->gone) return; /* no news */
        tree_remove(m, r);
        free(r->value);
        r->value = NULL;
        r->vlen = 0;
        r->rejected = false;
        if (data.len > 0 && !(r->value = json_value_copy(data.p, data.len, &r->vlen))) {
            r->rejected = true;
            m->rejected++;
            LOG_WARN(m->set->lg, "mirror %s: record %s holds no JSON value; served as deleted", m->store, o->name);
        }
        r->zver = st->version;
        r->zxid = (uint64_t)st->mzxid;
        r->mtime = st->mtime;
        r->gone = false;
        tree_insert(m, r);
        return;
    }
    if (err != ZNONODE) {
        LOG_WARN(m->set->lg, "mirror %s: reading %03x/%s: %s", m->store, o->bucket, o->name, zerror(err));
        return;
    }
    if (!r || r->gone) return;
    cursor_pos rp = rec_pos(r);
    if (r->zver < 0 || (!r->value && !r->rejected && cursor_cmp(&rp, &m->horizon) <= 0)) {
        /* Never read, or a tombstone the collector removed (it moved the
         * horizon past it first): no news. */
        rec_forget(m, o->bucket, r);
        return;
    }
    /* Hard-deleted by someone: the deletion takes the bucket's pzxid. */
    if (!r->gone_pending) {
        r->gone_pending = true;
        enqueue(m, OP_BSTAT, o->bucket, NULL, o->load);
    }
}

static void mark_gone(mirror *m, unsigned b, uint64_t zxid) {
    ZS_MUTEX_ASSERT_HELD(&m->set->mu);
    rbucket *bk = bucket_at(m, b);
    for (uint32_t i = 0; bk && i < bk->size; i++)
        for (rec **link = &bk->slot[i]; *link;) {
            rec *r = *link;
            if (!r->gone_pending) { link = &r->hnext; continue; }
            r->gone_pending = false;
            tree_remove(m, r);
            free(r->value);
            r->value = NULL;
            r->vlen = 0;
            r->gone = true;
            r->zxid = zxid > r->zxid ? zxid : r->zxid + 1;
            r->mtime = g_get_real_time() / 1000;
            cursor_pos p = rec_pos(r);
            if (cursor_cmp(&p, &m->horizon) <= 0) { /* a deletion the horizon already covers (seen late): */
                note_changed(m, r);                  /* (its streams look now, and resync if behind) */
                rec_forget_at(m, bk, link);          /* prune_gone only looks above the horizon */
                continue;
            }
            tree_insert(m, r);
            link = &r->hnext;
        }
}

static void apply_list(mirror *m, const op *o, int err, jute_in *in) {
    ZS_MUTEX_ASSERT_HELD(&m->set->mu);
    const rbucket *bk = bucket_at(m, o->bucket); /* NULL: no record known in it */
    if (err != ZOK) {
        if (err != ZNONODE) LOG_WARN(m->set->lg, "mirror %s: listing bucket %03x: %s", m->store, o->bucket, zerror(err));
        /* No bucket: every record it had is to be read again (and found gone). */
        for (uint32_t i = 0; bk && i < bk->size; i++)
            for (const rec *r = bk->slot[i]; r; r = r->hnext)
                if (!r->gone) enqueue(m, OP_DATA, o->bucket, r->name, o->load);
        return;
    }
    int32_t n = jute_get_int(in);
    if (in->bad || n < 0) return;
    GHashTable *seen = o->load ? NULL : g_hash_table_new(g_str_hash, g_str_equal);
    char name[LAYOUT_MAX_NAME_BYTES + 1];
    for (int32_t i = 0; i < n && !in->bad; i++) {
        jute_bytes b = jute_get_buffer(in);
        if (in->bad || b.len <= 0 || (size_t)b.len >= sizeof name) continue;
        memcpy(name, b.p, (size_t)b.len);
        name[b.len] = 0;
        rec *r = bk ? bucket_lookup(m, o->bucket, name) : NULL;
        if (seen && r) g_hash_table_add(seen, r->name);
        if (!r || r->gone || r->zver < 0 || o->load) enqueue(m, OP_DATA, o->bucket, name, o->load);
    }
    if (!seen || !bk) {
        if (seen) g_hash_table_destroy(seen);
        return;
    }
    /* Names the mirror has that the listing lacks: read them (gone, or a
     * tombstone collected). */
    for (uint32_t i = 0; i < bk->size; i++)
        for (const rec *r = bk->slot[i]; r; r = r->hnext)
            if (!r->gone && !g_hash_table_contains(seen, r->name)) enqueue(m, OP_DATA, o->bucket, r->name, false);
    g_hash_table_destroy(seen);
}

/* The store's config, as read by a reply whose server had applied zxid. A
 * config of another incarnation (the store was deleted and created again)
 * reloads the mirror. No node, from a server that has applied the
 * incarnation's creation (zxid >= czxid), proves it deleted: unloaded, even
 * mid-load, and marked so that requests for it answer "gone"
 * (docs/ARCHITECTURE.md, "A store deleted while its mirror loads"). */
static void apply_config(mirror *m, int err, jute_bytes data, const jute_stat *st, int64_t zxid) {
    ZS_MUTEX_ASSERT_HELD(&m->set->mu);
    m->cfg_valid = false;
    if (err == ZNONODE && m->czxid >= 0) {
        bool proven = zxid >= m->czxid;
        /* Unproven (a server behind the creation): a load waits for the
         * config watch; a mirror with something to give back unloads. */
        if (!m->gone && (proven || m->loaded || m->tree.count > 0)) unload(m);
        if (proven && m->czxid > m->deleted_upto) {
            m->deleted_upto = m->czxid;
            pthread_cond_broadcast(&m->set->cond); /* acquire and catch-up stop waiting */
        }
        return;
    }
    if (err != ZOK) return;
    store_cfg cfg;
    char why[ZS_ERRLEN] = "";
    int p = store_cfg_parse(&cfg, m->set->schemas, m->store, data.p, data.len, st->mzxid, why, sizeof why);
    if (p < 0) {
        /* Distrusted: the store is served as unavailable (requests fall
         * back to ZooKeeper, which answers 503) and the horizon stays. */
        m->invalid_configs++;
        LOG_ERROR(m->set->lg, "mirror %s: invalid store config in ZooKeeper (%s); the store is unavailable", m->store, why);
        return;
    }
    cfg.czxid = st->czxid;
    cfg.zversion = st->version;
    if (m->czxid >= 0 && st->czxid > m->czxid) {
        store_cfg_release(&cfg);
        LOG_INFO(m->set->lg, "mirror %s: the store was created again; reloading", m->store);
        start_load(m, st->czxid);
        return;
    }
    if (st->czxid != m->czxid) { store_cfg_release(&cfg); return; } /* an older incarnation's, seen late */
    store_cfg_release(&m->cfg); /* requests that copied it hold their own references */
    m->cfg = cfg;
    m->cfg_valid = p == 0; /* a store being deleted is served as absent */
    if (cursor_cmp(&cfg.horizon, &m->horizon) > 0) {
        cursor_pos old = m->horizon;
        m->horizon = cfg.horizon;
        prune_gone(m, &old);
    }
}

/* One operation's result from a multiRead. Returns -1 on a malformed body. */
static int apply_result(mirror_set *s, op *o, jute_in *in, int64_t zxid) {
    ZS_MUTEX_ASSERT_HELD(&s->mu);
    jute_multi_header h;
    jute_get_multi_header(in, &h);
    if (in->bad || h.done) return -1;
    int err = ZOK;
    jute_bytes data = {NULL, -1};
    jute_stat st;
    memset(&st, 0, sizeof st);
    if (h.type == JUTE_OP_ERROR) {
        err = jute_get_int(in);
        if (err == ZOK) err = ZSYSTEMERROR;
    } else if (h.type == JUTE_OP_GET_DATA && o->kind != OP_LIST) {
        data = jute_get_buffer(in);
        jute_get_stat(in, &st);
    } else if (!(h.type == JUTE_OP_GET_CHILDREN && o->kind == OP_LIST)) {
        return -1;
    }
    if (in->bad) return -1;
    mirror *m = o->m;
    bool current = o->gen == m->gen;
    uint64_t queued_before = wm_queued(&s->wm);
    if (current) {
        switch (o->kind) {
        case OP_DATA: apply_data(m, o, err, data, &st); break;
        case OP_LIST: apply_list(m, o, err, in); break;
        case OP_BSTAT: mark_gone(m, o->bucket, err == ZOK ? (uint64_t)st.pzxid : (uint64_t)zxid); break;
        case OP_CONFIG: apply_config(m, err, data, &st, zxid); break;
        }
    } else if (o->kind == OP_LIST && err == ZOK) { /* skip the names of an old incarnation's listing */
        int32_t n = jute_get_int(in);
        for (int32_t i = 0; i < n && !in->bad; i++) (void)jute_get_buffer(in);
    }
    if (wm_queued(&s->wm) > queued_before) wm_caused(&s->wm, o->seq);
    current = o->gen == m->gen; /* applying it may have started a reload */
    if (current && o->load && --m->load_pending == 0 && !m->loaded) {
        m->loaded = true;
        pthread_cond_broadcast(&s->cond);
        LOG_INFO(s->lg, "mirror %s: loaded (%zu records)", m->store, m->live);
    }
    return in->bad ? -1 : 0;
}

/* A multiRead's reply, on the session's I/O thread. */
static void batch_done(void *ctx, int rc, int64_t zxid, jute_in *body) {
    batch *b = ctx;
    mirror_set *s = b->s;
    notify_list nl = {NULL, NULL};
    zs_mutex_lock(&s->mu);
    s->inflight--;
    size_t i = 0;
    if (rc == ZOK) {
        for (; i < b->n; i++)
            if (apply_result(s, b->ops[i], body, zxid) < 0) break;
    }
    if (i < b->n) {
        /* Not applied: the connection went, or the server refused the batch,
         * or its reply does not parse. Read them again after a reconnect
         * (forced in the latter cases: the accounting restarts there, and the
         * gap check covers whatever this reply held). */
        if (rc == ZOK) LOG_ERROR(s->lg, "mirror: malformed multiRead reply; reconnecting");
        else if (rc != ZCONNECTIONLOSS) LOG_ERROR(s->lg, "mirror: multiRead failed: %s; reconnecting", zerror(rc));
        if (rc != ZCONNECTIONLOSS) zkw_reconnect(s->w);
        opq again = {NULL, NULL, 0};
        for (; i < b->n; i++) opq_push(&again, b->ops[i]), b->ops[i] = NULL;
        opq_append(&s->lost, &again); /* batches fail in order; re-queued at the disconnect */
        s->recovering = true; /* no checkpoint until the gap check */
    }
    wm_answered(&s->wm, b->n);
    for (size_t j = 0; j < b->n; j++) op_free(b->ops[j]);
    free(b);
    flush(s);
    if (rc == ZOK) checkpoint_at(s, (uint64_t)zxid, &nl);
    unlock_and_notify(s, &nl);
}

/* ---- events ------------------------------------------------------------------------ */

/* What a path below <root>/stores names (zk/layout: layout_classify). */
static layout_what classify(const mirror_set *s, const char *path, size_t len, char store[NAMES_MAX_BYTES + 1],
                            unsigned *bucket, const char **name, size_t *nlen) {
    size_t n = s->stores_path_len;
    if (len <= n + 1 || memcmp(path, s->stores_path, n) != 0 || path[n] != '/') return LAYOUT_NONE;
    return layout_classify(path + n + 1, len - n - 1, store, bucket, name, nlen);
}

/* "Look again" at path. Caller holds mu. */
static void look_again(mirror_set *s, int type, const char *path, size_t len) {
    char store[NAMES_MAX_BYTES + 1], name[LAYOUT_MAX_NAME_BYTES + 1];
    unsigned bucket = 0;
    const char *nm = NULL;
    size_t nlen = 0;
    layout_what what = classify(s, path, len, store, &bucket, &nm, &nlen);
    if (what == LAYOUT_NONE) return;
    mirror *m = g_hash_table_lookup(s->stores, store);
    if (!m || m->czxid < 0) return; /* not mirrored: its load will read it */
    /* Unloaded (its store was deleted): only its config matters, which may
     * show the store created again (apply_config then loads it). */
    if (m->gone && what != LAYOUT_CONFIG) return;
    if (what == LAYOUT_CONFIG) enqueue(m, OP_CONFIG, 0, NULL, false);
    else if (what == LAYOUT_BUCKET && (type == JUTE_EV_CHILD || type == JUTE_EV_DELETED)) enqueue(m, OP_LIST, bucket, NULL, false);
    else if (what == LAYOUT_RECORD && nlen < sizeof name) {
        memcpy(name, nm, nlen);
        name[nlen] = 0;
        enqueue(m, OP_DATA, bucket, name, false);
    }
}

/* An event of the persistent watches (probe false) or of a gap probe. */
static void event_seen(mirror_set *s, bool probe, int type, const char *path, size_t len) {
    zs_mutex_lock(&s->mu);
    (*(probe ? &s->probe_events : &s->watch_events))++;
    look_again(s, type, path, len);
    flush(s);
    zs_mutex_unlock(&s->mu);
}

static void on_event(void *ctx, int type, const char *path, size_t len) { event_seen(ctx, false, type, path, len); }
static void on_probe_event(void *ctx, int type, const char *path, size_t len) { event_seen(ctx, true, type, path, len); }

static void watch_added(void *ctx, int rc, int64_t zxid, jute_in *body) {
    (void)zxid; (void)body;
    mirror_set *s = ctx;
    if (rc == ZOK || rc == ZCONNECTIONLOSS) return; /* a lost one is re-sent with the next connection */
    /* Without its watch the mirror would vouch for what it cannot see: drop
     * the connection; the next one registers the watch again, and the gap
     * check covers the time in between. */
    LOG_ERROR(s->lg, "mirror: addWatch refused: %s; reconnecting", zerror(rc));
    zs_mutex_lock(&s->mu);
    s->recovering = true;
    if (s->w && !s->stopping) zkw_reconnect(s->w);
    zs_mutex_unlock(&s->mu);
}

static void on_state(void *ctx, int state, bool fresh) {
    mirror_set *s = ctx;
    zs_mutex_lock(&s->mu);
    if (state == ZKW_DISCONNECTED) {
        /* W freezes until the gap is read. What was in flight is read again,
         * first; the accounting restarts from the queue. */
        s->connected = false;
        s->recovering = true;
        s->rgen++;
        opq_prepend(&s->q, &s->lost);
        assert(s->inflight == 0);
        wm_reset(&s->wm);
        for (op *o = s->q.head; o; o = o->next) o->seq = wm_enqueue(&s->wm); /* queue order again */
        pthread_cond_broadcast(&s->cond);
        zs_mutex_unlock(&s->mu);
        return;
    }
    s->connected = true; /* (the mirrors' watches were re-registered first: zkw) */
    if (s->ever_connected || fresh == false) {
        s->recover_wanted = true; /* the recovery thread checks the gap */
    } else {
        s->recovering = false; /* nothing was mirrored before this session: no gap */
    }
    s->ever_connected = true;
    flush(s);
    pthread_cond_broadcast(&s->cond);
    pthread_cond_signal(&s->rcond);
    zs_mutex_unlock(&s->mu);
}

/* ---- the gap check (recovery thread) ----------------------------------------------------- */

static void sync_path_body(sbuf *b) { jute_put_string(b, "/"); }

static void recovery_sync_done(void *ctx, int rc, int64_t zxid, jute_in *body) {
    (void)body;
    mirror_set *s = ctx;
    zs_mutex_lock(&s->mu);
    s->rsync_done++;
    s->rsync_rc = rc;
    s->rsync_zxid = zxid;
    pthread_cond_broadcast(&s->cond);
    zs_mutex_unlock(&s->mu);
}

/* Where the gap check's path collection is: a mirror (by index in a list of
 * the set's mirrors, which live until the set is freed) and a bucket. */
typedef struct gap_cursor {
    GPtrArray *mirrors;
    guint mi;
    unsigned bucket;
} gap_cursor;

/* Adds path to out; out of memory aborts, as GLib's allocations do. */
static void add_path(GPtrArray *out, char *path) {
    if (!path) g_error("mirror: out of memory");
    g_ptr_array_add(out, path);
}

/* Appends the paths of the next buckets (every known record and, with a
 * mirror's first bucket, its config; or the bucket paths themselves when
 * buckets is true) until about `want` paths. Caller holds mu. Returns false
 * when there is nothing left. */
static bool gap_next(gap_cursor *gc, bool buckets, GPtrArray *out, guint want) {
    while (gc->mi < gc->mirrors->len && out->len < want) {
        mirror *m = g_ptr_array_index(gc->mirrors, gc->mi);
        /* Not yet loading: nothing of it to check. Unloaded (its store
         * deleted: it vouches for nothing and holds no watch): only its
         * config, which shows a store created again meanwhile (its event
         * then loads it, as look_again does for the watch's). */
        if (m->czxid < 0 || gc->bucket >= LAYOUT_BUCKETS || (m->gone && (buckets || gc->bucket > 0))) {
            gc->mi++;
            gc->bucket = 0;
            continue;
        }
        unsigned b = gc->bucket++;
        if (buckets) { add_path(out, layout_bucket_path(m->set->root, m->store, b)); continue; }
        if (b == 0) g_ptr_array_add(out, g_strdup(m->spath));
        const rbucket *bk = bucket_at(m, b);
        for (uint32_t i = 0; bk && i < bk->size; i++)
            for (const rec *r = bk->slot[i]; r; r = r->hnext)
                if (r->zver >= 0 && !r->gone) add_path(out, layout_named_record_path(m->set->root, m->store, b, r->name));
    }
    return out->len > 0;
}

/* One pass of the gap check (records, or buckets): chunks of PROBE_WATCHES
 * paths, collected under the lock, probed without it by PROBE_PARALLEL
 * threads (each probe is its own session, so ZooKeeper serves them side by
 * side); a failed chunk is tried again a few times before the whole check
 * gives up. */
typedef struct gap_pass_st {
    mirror_set *s;
    uint64_t rel;
    bool buckets;
    gap_cursor gc;   /* guarded by s->mu */
    atomic_int rc;
    atomic_uint probes;
    atomic_size_t paths;
} gap_pass_st;

static void *gap_worker(void *arg) {
    gap_pass_st *g = arg;
    mirror_set *s = g->s;
    while (atomic_load(&g->rc) == 0) {
        GPtrArray *chunk = g_ptr_array_new_with_free_func(g_free);
        zs_mutex_lock(&s->mu);
        bool more = !s->stopping && gap_next(&g->gc, g->buckets, chunk, PROBE_WATCHES);
        zs_mutex_unlock(&s->mu);
        if (!more) { g_ptr_array_free(chunk, TRUE); break; }
        atomic_fetch_add(&g->paths, chunk->len);
        const char *const *pv = (const char *const *)chunk->pdata;
        int rc = -1;
        for (int attempt = 0; attempt < PROBE_ATTEMPTS && rc < 0 && !atomic_load(&s->cancel); attempt++) {
            atomic_fetch_add(&g->probes, 1);
            rc = g->buckets ? zkw_probe(s->hosts, s->cred, PROBE_TIMEOUT_MS, (int64_t)g->rel, NULL, 0, pv, chunk->len,
                                        on_probe_event, s, &s->cancel, s->lg)
                            : zkw_probe(s->hosts, s->cred, PROBE_TIMEOUT_MS, (int64_t)g->rel, pv, chunk->len, NULL, 0,
                                        on_probe_event, s, &s->cancel, s->lg);
        }
        g_ptr_array_free(chunk, TRUE);
        if (rc < 0) atomic_store(&g->rc, -1);
    }
    return NULL;
}

static int gap_pass(mirror_set *s, uint64_t rel, bool buckets, unsigned *probes, size_t *paths) {
    gap_pass_st g = {.s = s, .rel = rel, .buckets = buckets, .gc = {g_ptr_array_new(), 0, 0}};
    zs_mutex_lock(&s->mu);
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, s->stores);
    while (g_hash_table_iter_next(&it, &k, &v)) g_ptr_array_add(g.gc.mirrors, v);
    zs_mutex_unlock(&s->mu);
    pthread_t t[PROBE_PARALLEL];
    int started = 0;
    for (int i = 0; i < PROBE_PARALLEL; i++)
        if (pthread_create(&t[started], NULL, gap_worker, &g) == 0) started++;
    if (started == 0) gap_worker(&g); /* no thread to be had: this one does it */
    for (int i = 0; i < started; i++) pthread_join(t[i], NULL);
    g_ptr_array_free(g.gc.mirrors, TRUE);
    *probes += atomic_load(&g.probes);
    *paths += atomic_load(&g.paths);
    return atomic_load(&g.rc);
}

/* One gap check. Returns 0 when the gap is queued (or there is none). */
static int recover_once(mirror_set *s, uint64_t rgen) {
    int64_t t0 = zs_clock_ms();
    sbuf body = SBUF_INIT;
    sync_path_body(&body);
    zs_mutex_lock(&s->mu);
    uint64_t rel = wm_value(&s->wm);
    /* A sync on the main session first: its reply comes after SetWatches2's,
     * so the persistent watches are registered when it arrives, and its zxid
     * says whether anything at all was written since W. */
    int rc = s->stopping || sbuf_failed(&body) ? -1 : zkw_submit(s->w, JUTE_OP_SYNC, body.buf, body.len, recovery_sync_done, s);
    sbuf_free(&body);
    if (rc < 0) { zs_mutex_unlock(&s->mu); return -1; }
    uint64_t mine = ++s->rsync_sent;
    /* zkw calls back exactly once (a lost connection or a close fails it);
     * at shutdown the session closes after this thread ends: stop waiting
     * (the callback's context is the set, which outlives it). */
    while (s->rsync_done < mine && !s->stopping) zs_mutex_wait(&s->cond, &s->mu);
    if (s->rsync_rc != ZOK || s->rgen != rgen || s->stopping) { zs_mutex_unlock(&s->mu); return -1; }
    if ((uint64_t)s->rsync_zxid <= rel) { /* nothing was written anywhere since W */
        zs_mutex_unlock(&s->mu);
        LOG_INFO(s->lg, "mirror: reconnected; nothing changed since zxid 0x%llx", (unsigned long long)rel);
        return 0;
    }
    zs_mutex_unlock(&s->mu);
    unsigned probes = 0;
    size_t records = 0, buckets = 0;
    int out = gap_pass(s, rel, false, &probes, &records);
    if (out == 0) out = gap_pass(s, rel, true, &probes, &buckets);
    LOG_INFO(s->lg, "mirror: gap check of %zu records and %zu buckets since zxid 0x%llx: %s in %lld ms (%u probe sessions)",
             records, buckets, (unsigned long long)rel, out == 0 ? "done" : "failed", (long long)(zs_clock_ms() - t0), probes);
    zs_mutex_lock(&s->mu);
    s->probes += probes;
    s->probe_paths += records + buckets;
    zs_mutex_unlock(&s->mu);
    return out;
}

static void *recovery_main(void *arg) {
    mirror_set *s = arg;
    zs_mutex_lock(&s->mu);
    for (;;) {
        while (!s->stopping && !(s->recover_wanted && s->connected)) zs_mutex_wait(&s->rcond, &s->mu);
        if (s->stopping) break;
        s->recover_wanted = false;
        uint64_t rgen = s->rgen;
        int64_t t0 = zs_clock_ms();
        zs_mutex_unlock(&s->mu);
        int rc = recover_once(s, rgen);
        zs_mutex_lock(&s->mu);
        if (rc == 0 && s->rgen == rgen && s->connected && !s->recover_wanted && !s->stopping) {
            /* The gap is queued: from now on checkpoints need its reads. */
            s->recovering = false;
            s->recoveries++;
            s->last_recovery_ms = zs_clock_ms() - t0;
            flush(s);
            pthread_cond_broadcast(&s->cond);
        } else if (rc < 0 && !s->stopping) {
            s->recover_wanted = true;
            /* Backs off only when the session stayed the same. A failure
             * that a disconnect caused goes back to the wait above: the
             * reconnect may already have signalled rcond, with nobody
             * waiting (this thread was in recover_once), and the check is
             * due at once then. */
            if (s->rgen == rgen) {
                struct timespec dl = zs_clock_deadline(RECOVERY_RETRY_MS);
                zs_mutex_timedwait(&s->rcond, &s->mu, &dl); /* wakes early when stopping */
            }
        }
    }
    zs_mutex_unlock(&s->mu);
    return NULL;
}

/* ---- load and lifecycle ------------------------------------------------------------ */

/* Drops every record (replies to reads sent before are ignored: gen), the
 * watches and the config, and marks the mirror gone. The incarnation
 * (czxid) stays, so only a newer one loads again (or, gone, a request that
 * sees this one: mirror_set_acquire). Caller holds mu. */
static void drop_all(mirror *m) {
    m->gen++;
    /* Its watches go (a store created again is loaded again by the first
     * request for it, which adds them first): churned stores leave no
     * watch behind, on the server or in the session's list. */
    zkw_remove_watch(m->set->w, m->spath, JUTE_WATCH_PERSISTENT);
    zkw_remove_watch(m->set->w, m->rpath, JUTE_WATCH_PERSISTENT_RECURSIVE);
    buckets_drop(m);
    store_cfg_release(&m->cfg); /* its schema's reference too (cfg_valid is false) */
    m->live = m->bytes = 0;
    m->loaded = false;
    m->load_pending = 0;
    m->cfg_valid = false;
    m->gone = true; /* not loading: /readyz must not wait for it */
    m->tell_gone = true; /* its streams end at the next advance of W (at their next keepalive at the latest) */
}

/* The store was seen deleted: give its memory and watches back. */
static void unload(mirror *m) {
    drop_all(m);
    LOG_INFO(m->set->lg, "mirror %s: the store is gone; its records dropped", m->store);
}

/* Drops every record and starts a fresh load with a new bucket table, its
 * watches recorded in the session before its first read
 * (docs/ARCHITECTURE.md, "Its own session, two watches per store"; known
 * ones are kept as they are). Out of memory for the table or the watches:
 * the mirror is left as unload leaves it (drop_all: nothing served, no
 * watch, czxid kept), and the next request for the store tries again.
 * Caller holds mu. */
static void start_load(mirror *m, int64_t czxid) {
    ZS_MUTEX_ASSERT_HELD(&m->set->mu);
    buckets_drop(m);
    if (!(m->buckets = calloc(LAYOUT_BUCKETS, sizeof *m->buckets)) ||
        zkw_add_watch(m->set->w, m->spath, JUTE_WATCH_PERSISTENT, watch_added, m->set) < 0 ||
        zkw_add_watch(m->set->w, m->rpath, JUTE_WATCH_PERSISTENT_RECURSIVE, watch_added, m->set) < 0) {
        /* Serve nothing of what it held (a reload: the old incarnation's),
         * keep no watch, and let the next request for the store try again:
         * left as unload leaves it (czxid stays). */
        LOG_ERROR(m->set->lg, "mirror %s: out of memory for its bucket table or its watches; not loaded", m->store);
        drop_all(m);
        return;
    }
    m->gen++;
    m->czxid = czxid;
    m->live = m->bytes = 0;
    m->loaded = false;
    m->gone = false;
    m->load_pending = 0;
    m->cfg_valid = false;
    enqueue(m, OP_CONFIG, 0, NULL, true);
    for (unsigned b = 0; b < LAYOUT_BUCKETS; b++) enqueue(m, OP_LIST, b, NULL, true);
    flush(m->set);
}

static mirror *mirror_new(mirror_set *s, const char *store) {
    mirror *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->set = s;
    if (!(m->store = strdup(store)) || !(m->spath = layout_store_path(s->root, store)) ||
        !(m->rpath = layout_records_path(s->root, store))) {
        free(m->spath);
        free(m->store);
        free(m);
        return NULL;
    }
    treap_init(&m->tree, feed_cmp, NULL);
    treap_init(&m->bykey, bykey_cmp, NULL);
    m->changed = g_ptr_array_new_with_free_func(changed_free);
    m->queued = g_hash_table_new(g_str_hash, g_str_equal); /* keys owned by their op */
    m->czxid = -1;
    m->deleted_upto = -1;
    return m;
}

static void mirror_free(gpointer p) {
    mirror *m = p;
    store_cfg_release(&m->cfg);
    buckets_drop(m);
    g_ptr_array_free(m->changed, TRUE);
    g_hash_table_destroy(m->queued);
    free(m->spath);
    free(m->rpath);
    free(m->store);
    free(m);
}

void mirror_set_on_advance(mirror_set *s, void (*fn)(void *ctx, mirror *m, const GPtrArray *keys), void *ctx) {
    zs_mutex_lock(&s->mu);
    s->on_advance = fn;
    s->on_advance_ctx = ctx;
    zs_mutex_unlock(&s->mu);
}

const char *mirror_store(const mirror *m) { return m->store; }

mirror_set *mirror_set_new(const char *hosts, int session_timeout_ms, const char *cred, const char *root,
                           store_schema_cache *schemas, const zs_log *lg, char *why, size_t whylen) {
    mirror_set *s = calloc(1, sizeof *s);
    if (!s) { zs_errf(why, whylen, "cannot start the mirror"); return NULL; }
    s->schemas = schemas;
    s->lg = lg;
    if (cred && !(s->cred = strdup(cred))) { free(s); zs_errf(why, whylen, "cannot start the mirror"); return NULL; }
    if (!(s->root = strdup(root)) || !(s->hosts = strdup(hosts)) || !(s->stores_path = layout_stores_path(root))) {
        free(s->root);
        free(s->hosts);
        free(s->cred);
        free(s);
        zs_errf(why, whylen, "cannot start the mirror");
        return NULL;
    }
    s->stores_path_len = strlen(s->stores_path);
    zs_mutex_init(&s->mu);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cond, &ca);
    pthread_cond_init(&s->rcond, &ca);
    pthread_condattr_destroy(&ca);
    s->stores = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, mirror_free);
    wm_init(&s->wm);
    s->recovering = true; /* until the first connection */
    if (pthread_create(&s->rthr, NULL, recovery_main, s) == 0) s->rthr_started = true;
    zkw_callbacks cb = {on_state, on_event, s};
    /* Under the lock: the session's thread may connect and call on_state
     * (which uses s->w) before zkw_open returns; it waits for the lock. */
    zs_mutex_lock(&s->mu);
    if (!s->rthr_started) zs_errf(why, whylen, "cannot start the mirror");
    s->w = s->rthr_started ? zkw_open(hosts, session_timeout_ms, cred, &cb, lg, why, whylen) : NULL;
    zs_mutex_unlock(&s->mu);
    if (!s->w) {
        mirror_set_free(s);
        return NULL;
    }
    return s;
}

void mirror_set_stop(mirror_set *s) {
    if (!s) return;
    /* First nothing new: no batch, no sync, no probe; then the gap check's
     * thread ends (a probe is cut short); then the session (which fails
     * what is in flight, into s->lost, and joins its thread). */
    zs_mutex_lock(&s->mu);
    s->stopping = true;
    s->connected = false;
    atomic_store(&s->cancel, true);
    pthread_cond_broadcast(&s->cond);
    pthread_cond_signal(&s->rcond);
    zs_mutex_unlock(&s->mu);
    if (s->rthr_started) pthread_join(s->rthr, NULL);
    s->rthr_started = false;
    zkw_close(s->w);
    zs_mutex_lock(&s->mu);
    s->w = NULL;
    zs_mutex_unlock(&s->mu);
}

void mirror_set_free(mirror_set *s) {
    if (!s) return;
    mirror_set_stop(s);
    op *o;
    while ((o = opq_pop(&s->q))) op_free(o);
    while ((o = opq_pop(&s->lost))) op_free(o);
    g_hash_table_destroy(s->stores);
    wm_destroy(&s->wm);
    pthread_cond_destroy(&s->cond);
    pthread_cond_destroy(&s->rcond);
    zs_mutex_destroy(&s->mu);
    free(s->stores_path);
    free(s->hosts);
    free(s->cred);
    free(s->root);
    free(s);
}

int mirror_set_acquire(mirror_set *s, const char *store, int64_t czxid, int timeout_ms, mirror **out) {
    struct timespec dl = zs_clock_deadline(timeout_ms);
    zs_mutex_lock(&s->mu);
    if (s->stopping || !s->w) { /* (mirror_new would record watches in a closed session) */
        zs_mutex_unlock(&s->mu);
        return -1;
    }
    mirror *m = g_hash_table_lookup(s->stores, store);
    if (!m && (m = mirror_new(s, store))) g_hash_table_insert(s->stores, m->store, m);
    if (!m) { zs_mutex_unlock(&s->mu); return -1; }
    /* New, or deleted and created again; or seen deleted by a mirror session
     * whose server applied the deletion of an older incarnation after this
     * load had begun (it unloaded, czxid kept): the request's read shows the
     * store, so it exists. Unless that incarnation was proven deleted since
     * the request read it: nothing to load. */
    if (czxid > m->deleted_upto && (czxid > m->czxid || (m->gone && czxid == m->czxid))) start_load(m, czxid);
    int rc = 0;
    while (!m->loaded) {
        if (czxid <= m->deleted_upto) { rc = MIRROR_GONE; break; }
        if (zs_mutex_timedwait(&s->cond, &s->mu, &dl) == ETIMEDOUT) { rc = m->loaded ? 0 : -1; break; }
    }
    zs_mutex_unlock(&s->mu);
    *out = m;
    return rc;
}

static void catch_up_sync_done(void *ctx, int rc, int64_t zxid, jute_in *body);

/* Sends the coalesced sync. Caller holds mu. */
static void send_sync(mirror_set *s) {
    if (s->stopping) return;
    sbuf body = SBUF_INIT;
    sync_path_body(&body);
    uint64_t seq = s->sync_sent + 1;
    if (!sbuf_failed(&body) && zkw_submit(s->w, JUTE_OP_SYNC, body.buf, body.len, catch_up_sync_done, s) == 0) {
        s->sync_sent = seq;
        s->sync_inflight = true;
    }
    sbuf_free(&body);
}

static void catch_up_sync_done(void *ctx, int rc, int64_t zxid, jute_in *body) {
    (void)body;
    mirror_set *s = ctx;
    notify_list nl = {NULL, NULL};
    zs_mutex_lock(&s->mu);
    s->sync_inflight = false;
    s->sync_done++;
    if (rc == ZOK) {
        if ((uint64_t)zxid > s->sync_z) s->sync_z = (uint64_t)zxid;
        checkpoint_at(s, (uint64_t)zxid, &nl);
    } else {
        s->sync_failed_seq = s->sync_done;
    }
    if (s->sync_again) {
        s->sync_again = false;
        send_sync(s);
    }
    pthread_cond_broadcast(&s->cond);
    unlock_and_notify(s, &nl);
}

int mirror_catch_up(mirror *m, int64_t czxid, int timeout_ms) {
    mirror_set *s = m->set;
    struct timespec dl = zs_clock_deadline(timeout_ms);
    zs_mutex_lock(&s->mu);
    uint64_t target;
    if (!s->sync_inflight) {
        send_sync(s);
        if (!s->sync_inflight) { zs_mutex_unlock(&s->mu); return -1; } /* not connected */
        target = s->sync_sent;
    } else {
        s->sync_again = true; /* one sent after this caller arrived */
        target = s->sync_sent + 1;
    }
    int rc = 0;
    while (rc == 0 && s->sync_done < target)
        if (zs_mutex_timedwait(&s->cond, &s->mu, &dl) == ETIMEDOUT) rc = -1;
    if (rc == 0 && s->sync_failed_seq >= target) rc = -1;
    uint64_t need = s->sync_z;
    while (rc == 0 && (wm_value(&s->wm) < need || s->recovering || !m->loaded)) {
        if (czxid <= m->deleted_upto) rc = MIRROR_GONE; /* seen deleted meanwhile: it will not load */
        else if (zs_mutex_timedwait(&s->cond, &s->mu, &dl) == ETIMEDOUT) rc = -1;
    }
    zs_mutex_unlock(&s->mu);
    return rc;
}

uint64_t mirror_watermark(mirror *m) {
    zs_mutex_lock(&m->set->mu);
    uint64_t w = wm_value(&m->set->wm);
    zs_mutex_unlock(&m->set->mu);
    return w;
}

size_t mirror_live_count(mirror *m) {
    zs_mutex_lock(&m->set->mu);
    size_t n = m->live;
    zs_mutex_unlock(&m->set->mu);
    return n;
}

void mirror_quota_totals(mirror *m, int64_t *records, int64_t *bytes) {
    zs_mutex_lock(&m->set->mu);
    *records = (int64_t)m->live + m->res_records;
    *bytes = (int64_t)m->bytes + m->res_bytes;
    zs_mutex_unlock(&m->set->mu);
}

bool mirror_quota_reserve(mirror *m, int64_t records, int64_t bytes, int64_t max_records, int64_t max_bytes) {
    assert(records >= 0 && bytes >= 0);
    zs_mutex_lock(&m->set->mu);
    bool ok = (!max_records || !records || (int64_t)m->live + m->res_records + records <= max_records) &&
              (!max_bytes || !bytes || (int64_t)m->bytes + m->res_bytes + bytes <= max_bytes);
    if (ok) {
        m->res_records += records;
        m->res_bytes += bytes;
    }
    zs_mutex_unlock(&m->set->mu);
    return ok;
}

void mirror_quota_release(mirror *m, int64_t records, int64_t bytes) {
    zs_mutex_lock(&m->set->mu);
    assert(m->res_records >= records && m->res_bytes >= bytes);
    m->res_records -= records;
    m->res_bytes -= bytes;
    if (!m->res_records && !m->res_bytes) pthread_cond_broadcast(&m->set->cond); /* mirror_quota_drain */
    zs_mutex_unlock(&m->set->mu);
}

bool mirror_quota_busy(mirror *m) {
    zs_mutex_lock(&m->set->mu);
    bool busy = m->res_records || m->res_bytes;
    zs_mutex_unlock(&m->set->mu);
    return busy;
}

void mirror_quota_drain(mirror *m, int timeout_ms) {
    struct timespec dl = zs_clock_deadline(timeout_ms);
    zs_mutex_lock(&m->set->mu);
    while ((m->res_records || m->res_bytes) && zs_mutex_timedwait(&m->set->cond, &m->set->mu, &dl) != ETIMEDOUT) {}
    zs_mutex_unlock(&m->set->mu);
}

bool mirror_set_config(mirror_set *s, const char *store, store_cfg *out) {
    zs_mutex_lock(&s->mu);
    mirror *m = g_hash_table_lookup(s->stores, store);
    bool ok = m && m->loaded && m->cfg_valid && !s->recovering && s->connected;
    if (ok) store_cfg_copy(out, &m->cfg); /* its own schema reference: m->cfg may change meanwhile */
    zs_mutex_unlock(&s->mu);
    return ok;
}

bool mirror_set_ready(mirror_set *s, sbuf *why) {
    zs_mutex_lock(&s->mu);
    bool ok = true;
    if (!s->connected) {
        ok = false;
        sbuf_puts(why, "the mirror session is not connected to ZooKeeper");
    } else if (s->recovering) {
        ok = false;
        sbuf_printf(why, "checking what changed in ZooKeeper since zxid 0x%llx (after a reconnect)",
                    (unsigned long long)wm_value(&s->wm));
    } else {
        GHashTableIter it;
        gpointer k, v;
        g_hash_table_iter_init(&it, s->stores);
        while (ok && g_hash_table_iter_next(&it, &k, &v)) {
            mirror *m = v;
            if (m->czxid >= 0 && !m->loaded && !m->gone) {
                ok = false;
                sbuf_printf(why, "store '%s' is loading", m->store);
            }
        }
    }
    zs_mutex_unlock(&s->mu);
    return ok;
}

/* ---- the feed ----------------------------------------------------------- */

static void write_change(sbuf *out, const rec *r, bool first) {
    char cur[CURSOR_LEN + 1];
    cursor_pos pos = rec_pos(r);
    cursor_format(&pos, cur);
    if (!first) sbuf_putc(out, ',');
    sbuf_puts(out, "{\"key\":");
    sbuf_json_str(out, rec_key(r), r->klen);
    if (r->value) {
        sbuf_puts(out, ",\"value\":");
        sbuf_append(out, r->value, r->vlen);
    } else {
        sbuf_puts(out, ",\"deleted\":true");
    }
    sbuf_printf(out, ",\"version\":%lu,\"cursor\":\"%s\"}", (unsigned long)pos.version, cur);
}

/* Does key start with one of f's prefixes? (f NULL: everything) */
static bool filter_has(const mirror_filter *f, const char *key, size_t klen) {
    if (!f) return true;
    for (size_t i = 0; i < f->n; i++)
        if (klen >= f->v[i].len && memcmp(key, f->v[i].p, f->v[i].len) == 0) return true;
    return false;
}

/* The first record of the key run of prefix p (NULL: none). */
static treap_node *run_first(mirror *m, const mirror_key *p) {
    return treap_lower_bound(&m->bykey, bykey_vs_key, p);
}

/* Is n (a node of the key index, or NULL) in the run of prefix p? */
static bool run_has(const treap_node *n, const mirror_key *p) {
    if (!n) return false;
    const rec *r = REC_OF_KEY(n);
    return r->klen >= p->len && memcmp(rec_key(r), p->p, p->len) == 0;
}

/* Records under f's prefixes, counted up to max (returns max + 1 past it). */
static size_t filter_count(mirror *m, const mirror_filter *f, size_t max) {
    size_t k = 0;
    for (size_t i = 0; i < f->n && k <= max; i++)
        for (treap_node *n = run_first(m, &f->v[i]); k <= max && run_has(n, &f->v[i]); n = treap_next(n))
            k++;
    return k;
}

static gint rec_ptr_cmp(gconstpointer a, gconstpointer b) {
    return rec_cmp(*(rec *const *)a, *(rec *const *)b);
}

/* One page's walk: writes changes while limit and max_bytes allow.
 * Returns false (and sets page->more) when r does not fit any more. */
typedef struct page_walk {
    sbuf *out;
    size_t start;
    int limit;
    size_t max_bytes;
    mirror_page *page;
    const rec *last;
} page_walk;

static bool walk_emit(page_walk *pw, const rec *r) {
    mirror_page *page = pw->page;
    if ((int)page->count == pw->limit || (page->count > 0 && pw->out->len - pw->start >= pw->max_bytes)) {
        page->more = true;
        return false;
    }
    write_change(pw->out, r, page->count == 0);
    page->count++;
    pw->last = r;
    return true;
}

void mirror_changes(mirror *m, const cursor_pos *since, const mirror_filter *filter, int limit, size_t max_bytes, sbuf *out,
                    mirror_page *page) {
    zs_mutex_lock(&m->set->mu);
    uint64_t w = wm_value(&m->set->wm);
    page->count = 0;
    page->more = false;
    page->loaded = m->loaded;
    page->gone = m->gone;
    /* A snapshot (no since) is listed in feed order; a full page of it ends
     * with a continuation token: the last record's zxid and digest with
     * version 0xffffffff, which no change has (znode versions stop at
     * 2^31). It sorts right after that record, means "after it", and is not
     * held against the horizon: the untouched records of a snapshot are
     * older than any collected deletion, and a snapshot client needs no
     * deletion from before it started. (cursor_after_zxid's digest is all
     * ones: that is an ordinary cursor.) */
    bool cont = since && since->version == UINT32_MAX && since->khash != UINT64_MAX;
    page->expired = since && ((!cont && cursor_cmp(since, &m->horizon) < 0) ||
                              (m->czxid > 0 && since->zxid < (uint64_t)m->czxid)); /* or an older incarnation */
    if (!m->loaded || page->expired) { /* (re)loading: vouch for nothing; or too old */
        page->next = since ? *since : (cursor_pos){0, 0, 0};
        zs_mutex_unlock(&m->set->mu);
        return;
    }
    page_walk pw = {out, out->len, limit, max_bytes, page, NULL};
    const rec *passed = NULL; /* a feed walk: the last record written or skipped */
    if (filter && filter_count(m, filter, KEY_SCAN_MAX) <= KEY_SCAN_MAX) {
        /* The key runs (docs/ARCHITECTURE.md, "Prefix scopes"): the
         * records after the cursor, sorted by position. */
        GPtrArray *v = g_ptr_array_new();
        for (size_t i = 0; i < filter->n; i++)
            for (treap_node *n = run_first(m, &filter->v[i]); run_has(n, &filter->v[i]); n = treap_next(n)) {
                const rec *r = REC_OF_KEY(n);
                if (!r->in_tree || r->zxid > w || (!since && !r->value)) continue;
                cursor_pos rp = rec_pos(r);
                if (since && cursor_cmp(&rp, since) <= 0) continue;
                g_ptr_array_add(v, (gpointer)r);
            }
        g_ptr_array_sort(v, rec_ptr_cmp);
        for (guint i = 0; i < v->len && walk_emit(&pw, g_ptr_array_index(v, i)); i++) {}
        g_ptr_array_free(v, TRUE);
    } else {
        /* After every record at since (a digest collision's ties included). */
        treap_node *n = since ? treap_upper_bound(&m->tree, feed_vs_pos, since) : treap_first(&m->tree);
        size_t visited = 0;
        for (; n; n = treap_next(n)) {
            const rec *r = REC_OF_FEED(n);
            if (r->zxid > w) break;               /* not vouched for yet */
            if (filter && ++visited > FEED_SCAN_MAX) { /* bounded: go on from here next time */
                page->more = true;
                break;
            }
            if ((since || r->value) && filter_has(filter, rec_key(r), r->klen) && !walk_emit(&pw, r)) break;
            passed = r; /* (a snapshot lists live records only; a filter skips the others) */
        }
    }
    /* A feed walk that stopped at its cap goes on after what it passed,
     * past changes the token cannot see (PROTOCOL.md v1.1 allows it). */
    const rec *last = passed ? passed : pw.last;
    page->next = page->more && last ? rec_pos(last) : cursor_after_zxid(w);
    if (page->more && last && (!since || cont)) page->next.version = UINT32_MAX; /* a snapshot goes on */
    if (since && cursor_cmp(&page->next, since) < 0) page->next = *since;
    zs_mutex_unlock(&m->set->mu);
}

size_t mirror_live_count_filtered(mirror *m, const mirror_filter *f) {
    if (!f) return mirror_live_count(m);
    size_t k = 0;
    zs_mutex_lock(&m->set->mu);
    for (size_t i = 0; i < f->n; i++)
        for (treap_node *n = run_first(m, &f->v[i]); run_has(n, &f->v[i]); n = treap_next(n)) {
            const rec *r = REC_OF_KEY(n);
            if (r->in_tree && r->value) k++;
        }
    zs_mutex_unlock(&m->set->mu);
    return k;
}

int mirror_peek(mirror *m, const char *key, size_t klen, bool *node, int32_t *zver, char **value, size_t *vlen) {
    char *name = layout_key_encode(key, klen);
    if (!name) return -1;
    unsigned b = layout_bucket(layout_key_hash(key, klen));
    int rc;
    zs_mutex_lock(&m->set->mu);
    rec *r = m->loaded ? bucket_lookup(m, b, name) : NULL;
    if (!m->loaded || (r && r->zver < 0)) {
        rc = -1;
    } else if (!r) {
        rc = 0;
    } else {
        rc = 1;
        *node = !r->gone;
        *zver = r->zver;
        *value = NULL;
        *vlen = 0;
        if (r->value && !(*value = malloc(r->vlen + 1))) {
            rc = -1;
        } else if (r->value) {
            memcpy(*value, r->value, r->vlen + 1);
            *vlen = r->vlen;
        }
    }
    zs_mutex_unlock(&m->set->mu);
    free(name);
    return rc;
}

void mirror_note_writes(mirror *m, int64_t czxid, const mirror_write *w, size_t n, uint64_t zxid, int64_t mtime_ms) {
    zs_mutex_lock(&m->set->mu);
    for (size_t i = 0; m->loaded && m->czxid == czxid && i < n; i++) {
        char *name = layout_key_encode(w[i].key, w[i].klen);
        if (!name) break;
        unsigned b = layout_bucket(layout_key_hash(w[i].key, w[i].klen));
        rec *r = bucket_lookup(m, b, name);
        if (!r && (r = rec_new(name, b))) {
            rbucket *bk = bucket_make(m, b);
            if (bk) rec_add(m, bk, r);
            else { rec_free(r); r = NULL; }
        }
        free(name);
        /* It may already show this write, or a later one (a key written
         * twice in one multi: the later write has the higher version). */
        if (!r || (r->zver >= 0 && (r->zxid > zxid || (r->zxid == zxid && r->zver >= w[i].zver)))) continue;
        char *v = NULL;
        if (w[i].value && !(v = malloc(w[i].vlen + 1))) continue;
        if (v) {
            memcpy(v, w[i].value, w[i].vlen);
            v[w[i].vlen] = 0;
        }
        tree_remove(m, r);
        free(r->value);
        r->value = v;
        r->vlen = v ? (uint32_t)w[i].vlen : 0;
        r->rejected = false;
        r->gone = false;
        r->gone_pending = false;
        r->zver = w[i].zver;
        r->zxid = zxid;
        r->mtime = mtime_ms;
        tree_insert(m, r);
    }
    zs_mutex_unlock(&m->set->mu);
}

cursor_pos mirror_horizon(mirror *m) {
    zs_mutex_lock(&m->set->mu);
    cursor_pos h = m->horizon;
    zs_mutex_unlock(&m->set->mu);
    return h;
}

void mirror_note_horizon(mirror *m, const cursor_pos *h) {
    zs_mutex_lock(&m->set->mu);
    if (cursor_cmp(h, &m->horizon) > 0) {
        cursor_pos old = m->horizon;
        m->horizon = *h;
        prune_gone(m, &old);
    }
    zs_mutex_unlock(&m->set->mu);
}

bool mirror_list_collectable(mirror *m, int64_t czxid, int64_t older_than_ms, cursor_pos *from, size_t max, GArray *out) {
    zs_mutex_lock(&m->set->mu);
    if (!m->loaded || m->czxid != czxid) { zs_mutex_unlock(&m->set->mu); return false; }
    uint64_t w = wm_value(&m->set->wm);
    bool start = !from->zxid && !from->khash && !from->version;
    treap_node *n = start ? treap_first(&m->tree) : treap_upper_bound(&m->tree, feed_vs_pos, from);
    const rec *last = NULL;
    size_t seen = 0, got = 0;
    for (; n && got < max && seen < MIRROR_COLLECT_VISIT; n = treap_next(n), seen++) {
        const rec *r = REC_OF_FEED(n);
        if (r->zxid > w) { n = NULL; break; } /* this one and all after it: not vouched for yet */
        last = r;
        if (r->value || r->rejected || r->mtime >= older_than_ms) continue;
        cursor_pos p = rec_pos(r);
        mirror_collectable c = {p, layout_bucket(p.khash), r->zver, r->gone, {0}};
        snprintf(c.name, sizeof c.name, "%s", r->name);
        g_array_append_val(out, c);
        got++;
    }
    if (last) *from = rec_pos(last);
    zs_mutex_unlock(&m->set->mu);
    return n != NULL;
}

void mirror_set_stats(mirror_set *s, mirror_stats *out) {
    memset(out, 0, sizeof *out);
    zs_mutex_lock(&s->mu);
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, s->stores);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        mirror *m = v;
        out->foreign_rejected += m->rejected;
        out->invalid_configs += m->invalid_configs;
        out->records += m->live;
        out->bytes += m->bytes;
        for (unsigned b = 0; m->buckets && b < LAYOUT_BUCKETS; b++) {
            if (!m->buckets[b]) continue;
            out->bucket_tables++;
            out->entries += m->buckets[b]->n;
        }
    }
    out->watch_events = s->watch_events;
    if (s->w && !s->stopping) { /* (mirror_set_stop closes the session) */
        zkw_stats zs;
        zkw_get_stats(s->w, &zs);
        out->watches = zs.watches;
        out->set_watches = zs.set_watches;
    }
    out->reads = s->reads;
    out->batches = s->batches;
    out->queued = s->q.len;
    out->recoveries = s->recoveries;
    out->probes = s->probes;
    out->probe_paths = s->probe_paths;
    out->probe_events = s->probe_events;
    out->last_recovery_ms = s->last_recovery_ms;
    out->connected = s->connected;
    out->recovering = s->recovering;
    out->watermark = wm_value(&s->wm);
    zs_mutex_unlock(&s->mu);
}

size_t mirror_set_store_stats(mirror_set *s, mirror_store_stat **out) {
    *out = NULL;
    zs_mutex_lock(&s->mu);
    size_t cap = g_hash_table_size(s->stores), n = 0;
    mirror_store_stat *v = cap ? calloc(cap, sizeof *v) : NULL;
    GHashTableIter it;
    gpointer k, val;
    g_hash_table_iter_init(&it, s->stores);
    while (v && g_hash_table_iter_next(&it, &k, &val)) {
        mirror *m = val;
        if (!m->loaded || m->gone) continue;
        char *name = strdup(m->store);
        if (!name) break;
        v[n++] = (mirror_store_stat){name, m->live, m->bytes};
    }
    zs_mutex_unlock(&s->mu);
    if (!n) { free(v); return 0; }
    *out = v;
    return n;
}

void mirror_store_stats_free(mirror_store_stat *v, size_t n) {
    for (size_t i = 0; i < n; i++) free(v[i].store);
    free(v);
}

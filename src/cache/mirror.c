#include "cache/mirror.h"

#include <errno.h>
#include <glib.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sync/stores.h"
#include "util/jraw.h"
#include "zk/layout.h"

typedef struct rec {
    char *name;      /* znode name (canonical encoding of key); owned */
    char *key;       /* decoded key; owned */
    uint32_t klen;
    uint64_t khash;
    char *value;     /* compact JSON; NULL for a tombstone, a gone or rejected value */
    uint32_t vlen;
    int32_t zver;    /* znode version; protocol version = zver + 1; -1 = not read yet */
    uint64_t zxid;   /* zxid of the change this state comes from */
    cursor_pos pos;  /* feed position, the tree's order (then key bytes) */
    int64_t mtime;   /* ms since the epoch: the znode's mtime, or when it was seen gone */
    bool in_tree;
    bool armed;      /* a data watch is set (the last read found the znode) */
    bool gone;       /* znode hard-deleted by someone */
    bool rejected;   /* data is not valid JSON */
} rec;

typedef struct checkpoint {
    uint64_t need;      /* reads sent when the reply was handled */
    uint64_t zxid;      /* what the reply showed */
    uint64_t reply_seq; /* which reply */
} checkpoint;

struct mirror {
    mirror_set *set;
    char *store;
    char *spath;             /* <root>/stores/<store> (the config) */
    char *rpath;             /* <root>/stores/<store>/r */
    size_t rpath_len;
    cursor_pos horizon;      /* from the config: older cursors are expired */
    pthread_mutex_t mu;      /* guards everything below */
    pthread_cond_t cond;
    int64_t czxid;           /* identity of the store znode loaded */
    uint64_t gen;            /* bumped at every reload; older replies are ignored */
    bool loading, loaded;
    uint64_t load_mark;
    uint64_t load_wmark;                 /* what W becomes when the load completes */
    GHashTable *buckets[LAYOUT_BUCKETS]; /* name -> rec (owns rec) */
    GTree *tree;                         /* rec -> rec, by feed position */
    size_t live, bytes;
    uint64_t issued, completed;          /* reads sent / answered */
    uint64_t wmark;                      /* the watermark W */
    uint64_t popped_reply;               /* newest reply whose checkpoint is resolved */
    uint64_t sync_mark;                  /* reads sent when the last sync completed */
    GArray *cps;                         /* checkpoints, resolved from cp_head on */
    guint cp_head;
    uint64_t watch_events, reads, rejected;
    bool advanced;                       /* W moved since the hook last ran */
};

struct mirror_set {
    zkc *z;
    char *root;
    const zs_log *lg;
    pthread_mutex_t mu; /* guards stores; never held while taking a mirror's mu... except in sync_hook, in that order */
    GHashTable *stores; /* name -> mirror */
    void (*on_advance)(void *ctx, mirror *m); /* immutable once mirrors exist */
    void *on_advance_ctx;
};

enum { RD_DATA, RD_CHILDREN, RD_CONFIG };

typedef struct read_ctx {
    mirror *m;
    uint64_t gen;
    uint64_t seq;
    int kind;
    unsigned bucket;
    char name[]; /* record name for RD_DATA */
} read_ctx;

static void rec_set_pos(rec *r) {
    r->pos.zxid = r->zxid;
    r->pos.khash = r->khash;
    r->pos.version = (uint32_t)r->zver + 1u;
}

/* Feed order; ties (a digest collision inside one transaction) by key bytes.
 * A probe (key NULL) sorts after every record at its position. */
static gint rec_cmp(gconstpointer a, gconstpointer b, gpointer unused) {
    (void)unused;
    const rec *ra = a, *rb = b;
    int c = cursor_cmp(&ra->pos, &rb->pos);
    if (c || ra == rb) return c;
    if (!ra->key) return 1;
    if (!rb->key) return -1;
    size_t n = ra->klen < rb->klen ? ra->klen : rb->klen;
    c = memcmp(ra->key, rb->key, n);
    return c ? c : (ra->klen < rb->klen ? -1 : ra->klen > rb->klen);
}

static void rec_free(gpointer p) {
    rec *r = p;
    if (!r) return;
    free(r->name);
    free(r->key);
    free(r->value);
    free(r);
}

static void tree_remove(mirror *m, rec *r) {
    if (!r->in_tree) return;
    g_tree_remove(m->tree, r);
    r->in_tree = false;
    if (r->value) { m->live--; m->bytes -= r->vlen + r->klen; }
}

static void tree_insert(mirror *m, rec *r) {
    rec_set_pos(r);
    g_tree_insert(m->tree, r, r);
    r->in_tree = true;
    if (r->value) { m->live++; m->bytes += r->vlen + r->klen; }
}

/* ---- reads ------------------------------------------------------------ */

static void data_done(int rc, const char *value, int len, const struct Stat *st, const void *data);
static void config_done(int rc, const char *value, int len, const struct Stat *st, const void *data);
static void children_done(int rc, const struct String_vector *names, const struct Stat *st, const void *data);
static void watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx);

static char *bucket_path(const mirror *m, unsigned b) {
    char *p = NULL;
    if (asprintf(&p, "%s/%03x", m->rpath, b) < 0) return NULL;
    return p;
}

static void account_reply(mirror *m, uint64_t seq, uint64_t zobs);

/* Sends one read. Caller holds m->mu. A read that cannot be sent counts as
 * answered at once, so the accounting never waits for it. */
static void send_read(mirror *m, int kind, unsigned bucket, const char *name) {
    size_t nlen = name ? strlen(name) : 0;
    read_ctx *rc = malloc(sizeof *rc + nlen + 1);
    char *path = NULL;
    if (rc) {
        rc->m = m; rc->gen = m->gen; rc->seq = ++m->issued; rc->kind = kind; rc->bucket = bucket;
        memcpy(rc->name, name ? name : "", nlen + 1);
        char *bp = kind == RD_CONFIG ? strdup(m->spath) : bucket_path(m, bucket);
        if (bp && kind == RD_DATA) {
            if (asprintf(&path, "%s/%s", bp, name) < 0) path = NULL;
            free(bp);
        } else {
            path = bp;
        }
    }
    if (!rc || !path) {
        LOG_ERROR(m->set->lg, "mirror %s: out of memory sending a read", m->store);
        if (rc) m->issued--; /* never sent: no reply will come */
        free(rc);
        free(path);
        return;
    }
    m->reads++;
    zhandle_t *zh = zkc_zh(m->set->z);
    int err = kind == RD_DATA     ? zoo_awget(zh, path, watcher, m, data_done, rc)
              : kind == RD_CONFIG ? zoo_awget(zh, path, watcher, m, config_done, rc)
                                  : zoo_awget_children2(zh, path, watcher, m, children_done, rc);
    free(path);
    if (err != ZOK) {
        /* The handle is unusable (session expired or closing): the session
         * reset reloads every mirror. Under m->mu no other read was numbered
         * meanwhile, so the number can be taken back. */
        LOG_WARN(m->set->lg, "mirror %s: read not sent: %s", m->store, zerror(err));
        m->issued--;
        free(rc);
    }
}

/* Unlocks m and tells the hook when the watermark moved. */
static void unlock_and_notify(mirror *m) {
    bool adv = m->advanced;
    m->advanced = false;
    pthread_mutex_unlock(&m->mu);
    if (adv && m->set->on_advance) m->set->on_advance(m->set->on_advance_ctx, m);
}

/* Resolves checkpoints whose reads are all answered. Caller holds m->mu. */
static void resolve(mirror *m) {
    while (m->cp_head < m->cps->len) {
        checkpoint *c = &g_array_index(m->cps, checkpoint, m->cp_head);
        if (c->need > m->completed) break;
        if (m->loading) {
            if (c->zxid > m->load_wmark) m->load_wmark = c->zxid;
        } else if (c->zxid > m->wmark) {
            m->wmark = c->zxid;
            m->advanced = true;
        }
        m->popped_reply = c->reply_seq;
        m->cp_head++;
    }
    if (m->cp_head == m->cps->len) {
        g_array_set_size(m->cps, 0);
        m->cp_head = 0;
    } else if (m->cp_head > 1024 && m->cp_head * 2 > m->cps->len) {
        g_array_remove_range(m->cps, 0, m->cp_head);
        m->cp_head = 0;
    }
    if (m->loading && m->popped_reply >= m->load_mark) {
        /* Only now is the whole store read: W may move (never back). */
        m->loading = false;
        m->loaded = true;
        if (m->load_wmark > m->wmark) { m->wmark = m->load_wmark; m->advanced = true; }
    }
    pthread_cond_broadcast(&m->cond);
}

/* Notes that reply seq (showing zxid zobs) was handled. Caller holds m->mu. */
static void account_reply(mirror *m, uint64_t seq, uint64_t zobs) {
    checkpoint c = {m->issued, zobs, seq};
    /* The checkpoints still waiting for this reply (need >= seq) also wait
     * for what handling it caused: the reads just sent (a bucket listing's
     * reads of new records), and so on, transitively. Needs only grow along
     * the queue, so those checkpoints are its tail: fold them into this one,
     * which needs everything sent so far. The queue stays short. */
    while (m->cps->len > m->cp_head) {
        checkpoint *b = &g_array_index(m->cps, checkpoint, m->cps->len - 1);
        if (b->need < seq) break;
        if (b->zxid > c.zxid) c.zxid = b->zxid;
        g_array_set_size(m->cps, m->cps->len - 1);
    }
    g_array_append_val(m->cps, c);
    m->completed++;
    resolve(m);
}

/* The end of every read's completion (the caller holds m->mu): account for
 * the reply, unlock (notifying if W moved) and free the context. */
static void reply_end(read_ctx *c, uint64_t zobs) {
    mirror *m = c->m;
    account_reply(m, c->seq, zobs);
    unlock_and_notify(m);
    free(c);
}

static bool transient(int rc) {
    return rc == ZCONNECTIONLOSS || rc == ZOPERATIONTIMEOUT || rc == ZSESSIONMOVED;
}

/* Returns the value to keep, in compact form (a foreign writer's pretty
 * print becomes one line, as the feed and the event stream need), or NULL
 * when v is not JSON (or on allocation failure). */
static char *json_value_copy(const char *v, int len, uint32_t *out_len) {
    sbuf b = SBUF_INIT;
    jraw_err e;
    if (jraw_compact(v, (size_t)len, &b, &e) < 0) { sbuf_free(&b); return NULL; }
    size_t n;
    char *out = sbuf_steal(&b, &n);
    if (out) *out_len = (uint32_t)n;
    return out;
}

static rec *rec_new(const char *name, unsigned bucket) {
    size_t klen;
    char *key = layout_key_decode(name, &klen);
    if (!key) return NULL;
    uint64_t h = layout_key_hash(key, klen);
    if (layout_bucket(h) != bucket || layout_key_invalid(key, klen)) { free(key); return NULL; }
    rec *r = calloc(1, sizeof *r);
    if (!r || !(r->name = strdup(name))) { free(r); free(key); return NULL; }
    r->key = key;
    r->klen = (uint32_t)klen;
    r->khash = h;
    r->zver = -1;
    return r;
}

static void data_done(int rc, const char *value, int len, const struct Stat *st, const void *data) {
    read_ctx *c = (read_ctx *)data;
    mirror *m = c->m;
    uint64_t zobs = 0;
    pthread_mutex_lock(&m->mu);
    if (c->gen == m->gen) {
        if (rc == ZOK) {
            zobs = (uint64_t)st->mzxid;
            rec *r = g_hash_table_lookup(m->buckets[c->bucket], c->name);
            if (!r && (r = rec_new(c->name, c->bucket)))
                g_hash_table_insert(m->buckets[c->bucket], r->name, r);
            if (r) r->armed = true;
            if (r && !(r->in_tree && r->zxid == (uint64_t)st->mzxid && r->zver == st->version && !r->gone)) {
                tree_remove(m, r);
                free(r->value);
                r->value = NULL;
                r->vlen = 0;
                r->rejected = false;
                if (len > 0 && value) {
                    if (!(r->value = json_value_copy(value, len, &r->vlen))) {
                        r->rejected = true;
                        m->rejected++;
                        LOG_WARN(m->set->lg, "mirror %s: record %s holds no JSON value; served as deleted",
                                 m->store, c->name);
                    }
                }
                r->zver = st->version;
                r->zxid = (uint64_t)st->mzxid;
                r->mtime = st->mtime;
                r->gone = false;
                tree_insert(m, r);
            } else if (!r) {
                m->rejected++;
                LOG_WARN(m->set->lg, "mirror %s: ignoring znode %03x/%s: not a zoosync key name",
                         m->store, c->bucket, c->name);
            }
        } else if (transient(rc)) {
            send_read(m, RD_DATA, c->bucket, c->name);
        } else {
            /* ZNONODE: no watch was set. The bucket's child watch reports the
             * removal, and its next listing reads the name again if it is
             * back. */
            rec *r = g_hash_table_lookup(m->buckets[c->bucket], c->name);
            if (r) r->armed = false;
            if (rc != ZNONODE) LOG_WARN(m->set->lg, "mirror %s: reading %03x/%s: %s", m->store, c->bucket, c->name, zerror(rc));
        }
    }
    reply_end(c, zobs);
}

static void children_done(int rc, const struct String_vector *names, const struct Stat *st, const void *data) {
    read_ctx *c = (read_ctx *)data;
    mirror *m = c->m;
    uint64_t zobs = 0;
    pthread_mutex_lock(&m->mu);
    if (c->gen == m->gen) {
        if (rc == ZOK) {
            zobs = (uint64_t)st->pzxid;
            GHashTable *b = m->buckets[c->bucket];
            GHashTable *seen = g_hash_table_new(g_str_hash, g_str_equal);
            for (int i = 0; i < names->count; i++) {
                const char *n = names->data[i];
                g_hash_table_add(seen, (gpointer)n);
                rec *r = g_hash_table_lookup(b, n);
                if (!r || r->gone || !r->armed) send_read(m, RD_DATA, c->bucket, n);
            }
            GHashTableIter it;
            gpointer k, v;
            g_hash_table_iter_init(&it, b);
            while (g_hash_table_iter_next(&it, &k, &v)) {
                rec *r = v;
                if (g_hash_table_contains(seen, k) || r->gone) continue;
                if (r->zver < 0) { /* never read: forget it */
                    g_hash_table_iter_remove(&it);
                    continue;
                }
                if (!r->value && !r->rejected && cursor_cmp(&r->pos, &m->horizon) <= 0) {
                    /* A tombstone was collected (the horizon moved past it
                     * first): forget it, it is no news. One removed by
                     * anyone else is reported as a hard delete below. */
                    tree_remove(m, r);
                    g_hash_table_iter_remove(&it);
                    continue;
                }
                /* Hard-deleted by someone: a deletion at the bucket's pzxid,
                 * with the last version we knew. */
                tree_remove(m, r);
                free(r->value);
                r->value = NULL;
                r->vlen = 0;
                r->gone = true;
                r->zxid = (uint64_t)st->pzxid;
                r->mtime = g_get_real_time() / 1000;
                tree_insert(m, r);
            }
            g_hash_table_destroy(seen);
        } else if (transient(rc)) {
            send_read(m, RD_CHILDREN, c->bucket, NULL);
        } else if (rc != ZNONODE) {
            LOG_WARN(m->set->lg, "mirror %s: listing bucket %03x: %s", m->store, c->bucket, zerror(rc));
        }
    }
    reply_end(c, zobs);
}

/* Drops hard-deleted records at or before the horizon. Caller holds m->mu. */
static void prune_gone(mirror *m) {
    for (unsigned b = 0; b < LAYOUT_BUCKETS; b++) {
        GHashTableIter it;
        gpointer k, v;
        g_hash_table_iter_init(&it, m->buckets[b]);
        while (g_hash_table_iter_next(&it, &k, &v)) {
            rec *r = v;
            if (!r->gone || cursor_cmp(&r->pos, &m->horizon) > 0) continue;
            tree_remove(m, r);
            g_hash_table_iter_remove(&it);
        }
    }
}

static void config_done(int rc, const char *value, int len, const struct Stat *st, const void *data) {
    read_ctx *c = (read_ctx *)data;
    mirror *m = c->m;
    uint64_t zobs = 0;
    pthread_mutex_lock(&m->mu);
    if (c->gen == m->gen) {
        if (rc == ZOK) {
            zobs = (uint64_t)st->mzxid;
            store_cfg cfg;
            memset(&cfg, 0, sizeof cfg);
            if (stores_parse(&cfg, value, len) >= 0 && cursor_cmp(&cfg.horizon, &m->horizon) > 0) {
                m->horizon = cfg.horizon;
                prune_gone(m);
            }
        } else if (transient(rc)) {
            send_read(m, RD_CONFIG, 0, NULL);
        }
    }
    reply_end(c, zobs);
}

/* Watch events: "look again". Runs on the completion thread. */
static void watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx) {
    (void)zh; (void)state;
    mirror *m = ctx;
    if (type == ZOO_SESSION_EVENT || !path) return;
    pthread_mutex_lock(&m->mu);
    m->watch_events++;
    if (strcmp(path, m->spath) == 0) {
        if (type == ZOO_CHANGED_EVENT) send_read(m, RD_CONFIG, 0, NULL);
        unlock_and_notify(m);
        return;
    }
    size_t n = m->rpath_len;
    /* <rpath>/<bbb> (a bucket) or <rpath>/<bbb>/<name> (a record) */
    if (strncmp(path, m->rpath, n) == 0 && path[n] == '/' && path[n + 1] && path[n + 2] && path[n + 3]) {
        char hex[4] = {path[n + 1], path[n + 2], path[n + 3], 0};
        char *end;
        unsigned long b = strtoul(hex, &end, 16);
        const char *rest = path + n + 4;
        if (*end == '\0' && b < LAYOUT_BUCKETS) {
            if (*rest == '\0' && type != ZOO_DELETED_EVENT)
                send_read(m, RD_CHILDREN, (unsigned)b, NULL);
            else if (*rest == '/' && (type == ZOO_CHANGED_EVENT || type == ZOO_DELETED_EVENT)) {
                /* The watch is spent: read again (which re-arms it, or finds
                 * the znode gone and leaves it to the bucket's listing). */
                rec *r = g_hash_table_lookup(m->buckets[b], rest + 1);
                if (r) r->armed = false;
                send_read(m, RD_DATA, (unsigned)b, rest + 1);
            }
        }
    }
    unlock_and_notify(m);
}

/* ---- load and lifecycle ------------------------------------------------- */

/* Drops every record and starts a fresh load. Caller holds m->mu. */
static void start_load(mirror *m, int64_t czxid) {
    m->gen++;
    m->czxid = czxid;
    g_tree_destroy(m->tree);
    m->tree = g_tree_new_full(rec_cmp, NULL, NULL, NULL);
    for (unsigned b = 0; b < LAYOUT_BUCKETS; b++) g_hash_table_remove_all(m->buckets[b]);
    m->live = m->bytes = 0;
    m->load_wmark = 0;
    m->loading = true;
    m->loaded = false;
    send_read(m, RD_CONFIG, 0, NULL);
    for (unsigned b = 0; b < LAYOUT_BUCKETS; b++) send_read(m, RD_CHILDREN, b, NULL);
    m->load_mark = m->issued;
    resolve(m);
}

static mirror *mirror_new(mirror_set *s, const char *store) {
    mirror *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->set = s;
    if (!(m->store = strdup(store)) || asprintf(&m->spath, "%s/stores/%s", s->root, store) < 0) {
        free(m->store);
        free(m);
        return NULL;
    }
    if (asprintf(&m->rpath, "%s/r", m->spath) < 0) {
        free(m->spath);
        free(m->store);
        free(m);
        return NULL;
    }
    m->rpath_len = strlen(m->rpath);
    pthread_mutex_init(&m->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&m->cond, &ca);
    pthread_condattr_destroy(&ca);
    for (unsigned b = 0; b < LAYOUT_BUCKETS; b++)
        m->buckets[b] = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, rec_free);
    m->tree = g_tree_new_full(rec_cmp, NULL, NULL, NULL);
    m->cps = g_array_new(FALSE, FALSE, sizeof(checkpoint));
    m->czxid = -1;
    return m;
}

static void mirror_free(gpointer p) {
    mirror *m = p;
    g_tree_destroy(m->tree);
    for (unsigned b = 0; b < LAYOUT_BUCKETS; b++) g_hash_table_destroy(m->buckets[b]);
    g_array_free(m->cps, TRUE);
    pthread_cond_destroy(&m->cond);
    pthread_mutex_destroy(&m->mu);
    free(m->rpath);
    free(m->spath);
    free(m->store);
    free(m);
}

static void sync_hook(void *ctx) {
    mirror_set *s = ctx;
    pthread_mutex_lock(&s->mu);
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, s->stores);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        mirror *m = v;
        pthread_mutex_lock(&m->mu);
        m->sync_mark = m->issued;
        pthread_mutex_unlock(&m->mu);
    }
    pthread_mutex_unlock(&s->mu);
}

void mirror_set_on_advance(mirror_set *s, void (*fn)(void *ctx, mirror *m), void *ctx) {
    pthread_mutex_lock(&s->mu);
    s->on_advance = fn;
    s->on_advance_ctx = ctx;
    pthread_mutex_unlock(&s->mu);
}

const char *mirror_store(const mirror *m) { return m->store; }

void mirror_set_invalidate_all(mirror_set *s) {
    pthread_mutex_lock(&s->mu);
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, s->stores);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        mirror *m = v;
        pthread_mutex_lock(&m->mu);
        m->gen++;          /* replies on the dead session no longer count */
        m->loaded = false; /* pulls answer 503 until the reload */
        pthread_mutex_unlock(&m->mu);
    }
    pthread_mutex_unlock(&s->mu);
}

void mirror_set_reload_all(mirror_set *s) {
    pthread_mutex_lock(&s->mu);
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, s->stores);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        mirror *m = v;
        pthread_mutex_lock(&m->mu);
        if (m->czxid >= 0) start_load(m, m->czxid);
        pthread_mutex_unlock(&m->mu);
    }
    pthread_mutex_unlock(&s->mu);
}

static void reset_hook(void *ctx, bool fresh) {
    if (fresh) mirror_set_reload_all(ctx);
    else mirror_set_invalidate_all(ctx);
}

mirror_set *mirror_set_new(zkc *z, const char *root, const zs_log *lg) {
    mirror_set *s = calloc(1, sizeof *s);
    if (!s || !(s->root = strdup(root))) { free(s); return NULL; }
    s->z = z;
    s->lg = lg;
    pthread_mutex_init(&s->mu, NULL);
    s->stores = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, mirror_free);
    zkc_set_sync_hook(z, sync_hook, s);
    zkc_set_reset_hook(z, reset_hook, s);
    return s;
}

void mirror_set_free(mirror_set *s) {
    if (!s) return;
    g_hash_table_destroy(s->stores);
    pthread_mutex_destroy(&s->mu);
    free(s->root);
    free(s);
}

static struct timespec deadline_in(int timeout_ms) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
    return ts;
}

int mirror_set_acquire(mirror_set *s, const char *store, int64_t czxid, int timeout_ms, mirror **out) {
    pthread_mutex_lock(&s->mu);
    mirror *m = g_hash_table_lookup(s->stores, store);
    if (!m && (m = mirror_new(s, store))) g_hash_table_insert(s->stores, m->store, m);
    pthread_mutex_unlock(&s->mu);
    if (!m) return -1;
    struct timespec dl = deadline_in(timeout_ms);
    pthread_mutex_lock(&m->mu);
    if (czxid > m->czxid) start_load(m, czxid); /* new, or deleted and created again */
    int rc = 0;
    while (!m->loaded) {
        if (pthread_cond_timedwait(&m->cond, &m->mu, &dl) == ETIMEDOUT) { rc = m->loaded ? 0 : -1; break; }
    }
    pthread_mutex_unlock(&m->mu);
    *out = m;
    return rc;
}

int mirror_catch_up(mirror *m, int timeout_ms) {
    int64_t start = zkc_now_ms();
    if (zkc_sync(m->set->z, timeout_ms) != ZOK) return -1;
    int left = timeout_ms - (int)(zkc_now_ms() - start);
    struct timespec dl = deadline_in(left > 0 ? left : 0);
    pthread_mutex_lock(&m->mu);
    uint64_t mark = m->sync_mark;
    int rc = 0;
    while (m->popped_reply < mark && m->completed < m->issued) {
        if (pthread_cond_timedwait(&m->cond, &m->mu, &dl) == ETIMEDOUT) {
            rc = (m->popped_reply >= mark || m->completed == m->issued) ? 0 : -1;
            break;
        }
    }
    if (rc == 0 && !m->loaded) rc = -1;
    pthread_mutex_unlock(&m->mu);
    return rc;
}

uint64_t mirror_watermark(mirror *m) {
    pthread_mutex_lock(&m->mu);
    uint64_t w = m->wmark;
    pthread_mutex_unlock(&m->mu);
    return w;
}

size_t mirror_live_count(mirror *m) {
    pthread_mutex_lock(&m->mu);
    size_t n = m->live;
    pthread_mutex_unlock(&m->mu);
    return n;
}

/* ---- the feed ----------------------------------------------------------- */

static void write_change(sbuf *out, const rec *r, bool first) {
    char cur[CURSOR_LEN + 1];
    cursor_format(&r->pos, cur);
    if (!first) sbuf_putc(out, ',');
    sbuf_puts(out, "{\"key\":");
    sbuf_json_str(out, r->key, r->klen);
    if (r->value) {
        sbuf_puts(out, ",\"value\":");
        sbuf_append(out, r->value, r->vlen);
    } else {
        sbuf_puts(out, ",\"deleted\":true");
    }
    sbuf_printf(out, ",\"version\":%lu,\"cursor\":\"%s\"}", (unsigned long)r->pos.version, cur);
}

void mirror_changes(mirror *m, const cursor_pos *since, int limit, size_t max_bytes, sbuf *out, mirror_page *page) {
    size_t start = out->len;
    pthread_mutex_lock(&m->mu);
    uint64_t w = m->wmark;
    page->count = 0;
    page->more = false;
    page->loaded = m->loaded;
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
        pthread_mutex_unlock(&m->mu);
        return;
    }
    GTreeNode *n;
    if (since) {
        rec probe = {.pos = *since}; /* key NULL: after every record at since */
        n = g_tree_upper_bound(m->tree, &probe);
    } else {
        n = g_tree_node_first(m->tree);
    }
    const rec *last = NULL;
    for (; n; n = g_tree_node_next(n)) {
        const rec *r = g_tree_node_key(n);
        if (r->zxid > w) break;               /* not vouched for yet */
        if (!since && !r->value) continue;    /* from the beginning: live records only */
        if ((int)page->count == limit || (page->count > 0 && out->len - start >= max_bytes)) {
            page->more = true;
            break;
        }
        write_change(out, r, page->count == 0);
        page->count++;
        last = r;
    }
    page->next = page->more && last ? last->pos : cursor_after_zxid(w);
    if (page->more && last && (!since || cont)) page->next.version = UINT32_MAX; /* a snapshot goes on */
    if (since && cursor_cmp(&page->next, since) < 0) page->next = *since;
    pthread_mutex_unlock(&m->mu);
}

int mirror_peek(mirror *m, const char *key, size_t klen, bool *node, int32_t *zver, char **value, size_t *vlen) {
    char *name = layout_key_encode(key, klen);
    if (!name) return -1;
    unsigned b = layout_bucket(layout_key_hash(key, klen));
    int rc;
    pthread_mutex_lock(&m->mu);
    rec *r = m->loaded ? g_hash_table_lookup(m->buckets[b], name) : NULL;
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
    pthread_mutex_unlock(&m->mu);
    free(name);
    return rc;
}

cursor_pos mirror_horizon(mirror *m) {
    pthread_mutex_lock(&m->mu);
    cursor_pos h = m->horizon;
    pthread_mutex_unlock(&m->mu);
    return h;
}

void mirror_note_horizon(mirror *m, const cursor_pos *h) {
    pthread_mutex_lock(&m->mu);
    if (cursor_cmp(h, &m->horizon) > 0) {
        m->horizon = *h;
        prune_gone(m);
    }
    pthread_mutex_unlock(&m->mu);
}

static gint collectable_cmp(gconstpointer a, gconstpointer b) {
    return cursor_cmp(&((const mirror_collectable *)a)->pos, &((const mirror_collectable *)b)->pos);
}

GArray *mirror_list_collectable(mirror *m, int64_t older_than_ms) {
    GArray *out = g_array_new(FALSE, FALSE, sizeof(mirror_collectable));
    pthread_mutex_lock(&m->mu);
    if (m->loaded) {
        for (unsigned b = 0; b < LAYOUT_BUCKETS; b++) {
            GHashTableIter it;
            gpointer k, v;
            g_hash_table_iter_init(&it, m->buckets[b]);
            while (g_hash_table_iter_next(&it, &k, &v)) {
                rec *r = v;
                if (r->value || r->rejected || !r->in_tree || r->mtime >= older_than_ms) continue;
                if (r->zxid > m->wmark) continue; /* not vouched for yet */
                mirror_collectable c = {r->pos, b, r->zver, r->gone, {0}};
                snprintf(c.name, sizeof c.name, "%s", r->name);
                g_array_append_val(out, c);
            }
        }
    }
    pthread_mutex_unlock(&m->mu);
    g_array_sort(out, collectable_cmp);
    return out;
}

void mirror_set_stats(mirror_set *s, mirror_stats *out) {
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&s->mu);
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, s->stores);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        mirror *m = v;
        pthread_mutex_lock(&m->mu);
        out->watch_events += m->watch_events;
        out->reads += m->reads;
        out->foreign_rejected += m->rejected;
        out->records += m->live;
        out->bytes += m->bytes;
        pthread_mutex_unlock(&m->mu);
    }
    pthread_mutex_unlock(&s->mu);
}

#include "sync/gc.h"

#include "zk/zkc.h"

#include <glib.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sync/stores.h"
#include "util/bounds.h"
#include "util/clock.h"
#include "zk/layout.h"

#define DELETE_BATCH 200
/* Tombstones one horizon move covers: what a round of a store holds in
 * memory (about 3 KB each: the longest znode name), however many the store
 * has. A store with more takes several rounds, one after another. */
#define ROUND_MAX 1000

struct gc {
    zkc *z;
    mirror_set *mirrors;
    store_schema_cache *schemas; /* not owned */
    char *root;
    char *dir;            /* <root>/gc */
    int interval_s;
    const zs_log *lg;
    pthread_t thread;
    pthread_mutex_t mu;   /* guards everything below */
    pthread_cond_t cond;  /* stop was set (zs_cond_init: monotonic) */
    bool stop;
    char *mine;           /* our election znode's name, NULL when we have none */
    int64_t mine_session; /* the session that created it */
    gc_stats stats;
};

/* The sequence number ZooKeeper appended: the last 10 characters. */
static const char *seq_of(const char *name) {
    size_t n = strlen(name);
    return n >= 10 ? name + n - 10 : name;
}

/* Creates our election znode, g-<session>-<sequence>, if we have none
 * (again after a new session). The session in the name lets us find a node
 * whose creation reply was lost, instead of leaving an orphan that would
 * hold the lead for nobody until our session ends. */
static void ensure_candidate(gc *g) {
    zhandle_t *zh = zkc_zh(g->z);
    const clientid_t *id = zoo_client_id(zh);
    int64_t session = id ? id->client_id : 0;
    if (g->mine && g->mine_session == session) return;
    free(g->mine);
    g->mine = NULL;
    if (zkc_ensure_path(g->z, g->dir) != ZOK) return;
    char prefix[1024], made[1024], tag[40];
    snprintf(tag, sizeof tag, "g-%016llx-", (unsigned long long)session);
    struct String_vector kids = {0, NULL};
    if (zoo_get_children(zh, g->dir, 0, &kids) == ZOK) {
        for (int i = 0; i < kids.count && !g->mine; i++)
            if (strncmp(kids.data[i], tag, strlen(tag)) == 0) g->mine = strdup(kids.data[i]);
        deallocate_String_vector(&kids);
    }
    if (!g->mine) {
        snprintf(prefix, sizeof prefix, "%s/%s", g->dir, tag);
        if (zoo_create(zh, prefix, "", 0, zkc_acl(g->z), ZOO_EPHEMERAL | ZOO_SEQUENCE, made, sizeof made) != ZOK)
            return; /* a lost reply is found by its tag next round */
        const char *slash = strrchr(made, '/');
        g->mine = strdup(slash ? slash + 1 : made);
    }
    g->mine_session = session;
}

/* Whether the candidate node is ephemeral (held by a live session): only
 * those count. A persistent node with a low number, planted by anyone who
 * can write there, would otherwise win every election and stop collection
 * for good. */
static bool live_candidate(gc *g, const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", g->dir, name);
    struct Stat st;
    if (zoo_exists(zkc_zh(g->z), path, 0, &st) != ZOK) return false; /* gone meanwhile */
    /* Ours are g-<session, 16 hex>-<sequence, 10 digits>, held by that
     * very session: a node named otherwise (not one ZooKeeper numbered) or
     * held by another session is not a candidate. */
    unsigned long long owner = 0;
    int used = 0;
    bool named = strlen(name) == 2 + 16 + 1 + 10 && sscanf(name, "g-%16llx-%*10[0-9]%n", &owner, &used) == 1 &&
                 used == (int)strlen(name);
    if (st.ephemeralOwner != 0 && named && (int64_t)owner == st.ephemeralOwner) return true;
    pthread_mutex_lock(&g->mu);
    g->stats.invalid_candidates++;
    pthread_mutex_unlock(&g->mu);
    LOG_WARN(g->lg, "gc: ignoring election node %s: not held by the live session its name gives", path);
    return false;
}

/* By sequence number, then by name: a deterministic order when a planted
 * node ties with a real one. */
static gint by_seq(gconstpointer a, gconstpointer b) {
    const char *x = *(char *const *)a, *y = *(char *const *)b;
    int c = strcmp(seq_of(x), seq_of(y));
    return c ? c : strcmp(x, y);
}

static bool is_leader(gc *g) {
    if (!g->mine) return false;
    struct String_vector kids = {0, NULL};
    if (zoo_get_children(zkc_zh(g->z), g->dir, 0, &kids) != ZOK) return false;
    GPtrArray *cands = g_ptr_array_new();
    bool present = false;
    for (int i = 0; i < kids.count; i++) {
        if (strncmp(kids.data[i], "g-", 2) != 0) continue;
        g_ptr_array_add(cands, kids.data[i]);
        if (strcmp(kids.data[i], g->mine) == 0) present = true;
    }
    g_ptr_array_sort(cands, by_seq);
    bool leader = false;
    /* The lowest live candidate leads: is it us? Those before us are checked. */
    for (guint i = 0; present && i < cands->len; i++) {
        const char *c = g_ptr_array_index(cands, i);
        if (strcmp(c, g->mine) == 0) { leader = true; break; }
        if (live_candidate(g, c)) break;
    }
    g_ptr_array_free(cands, TRUE);
    deallocate_String_vector(&kids);
    if (!present) { free(g->mine); g->mine = NULL; } /* lost with an old session */
    return leader;
}

/* The store config a round's deletes are for: its path and the version the
 * round's horizon write left (or found). Each delete multi begins with a
 * check of it, so that a round never deletes in a store deleted and
 * created again meanwhile, nor after any other config change (the next
 * pass takes those tombstones up again). */
typedef struct gc_fence {
    const char *path;
    int32_t version;
} gc_fence;

/* Deletes the tombstones of c[0..n) (n <= DELETE_BATCH), each with its
 * version: one multi, or when one of them changed or vanished meanwhile,
 * one multi each. Returns how many it deleted; *stale when the fence's
 * check failed (stop the round). */
static int delete_batch(gc *g, const char *store, const gc_fence *f, const mirror_collectable *c, size_t n,
                        bool *stale) {
    zoo_op_t ops[DELETE_BATCH + 1];
    zoo_op_result_t res[DELETE_BATCH + 1];
    char *paths[DELETE_BATCH];
    memset(res, 0, sizeof res); /* a lost connection fills in nothing: ZOK, not stale */
    size_t k = 0;
    zoo_check_op_init(&ops[0], f->path, f->version);
    for (size_t i = 0; i < n && k < DELETE_BATCH; i++) {
        if (c[i].gone) continue;
        if (!(paths[k] = layout_named_record_path(g->root, store, c[i].bucket, c[i].name))) break;
        zoo_delete_op_init(&ops[k + 1], paths[k], c[i].zver);
        k++;
    }
    int done = 0;
    int rc = k > 0 ? zoo_multi(zkc_zh(g->z), (int)k + 1, ops, res) : ZOK;
    if (rc == ZOK) {
        done = (int)k;
    } else if (res[0].err == ZBADVERSION || res[0].err == ZNONODE) {
        *stale = true;
    } else if (rc != ZCONNECTIONLOSS && rc != ZINVALIDSTATE && rc != ZSESSIONEXPIRED && rc != ZOPERATIONTIMEOUT) {
        for (size_t i = 0; i < k && !*stale; i++) { /* one changed or vanished meanwhile: one at a time */
            zoo_op_t one[2] = {ops[0], ops[i + 1]};
            zoo_op_result_t r1[2];
            memset(r1, 0, sizeof r1);
            int r = zoo_multi(zkc_zh(g->z), 2, one, r1);
            if (r == ZOK) done++;
            else if (r1[0].err == ZBADVERSION || r1[0].err == ZNONODE) *stale = true;
        }
    }
    for (size_t i = 0; i < k; i++) free(paths[i]);
    return done;
}

/* A store (or a pass) not collected: logged and counted. */
#define GC_FAILED(g, ...)                          \
    do {                                           \
        LOG_WARN((g)->lg, __VA_ARGS__);            \
        pthread_mutex_lock(&(g)->mu);              \
        (g)->stats.errors++;                       \
        pthread_mutex_unlock(&(g)->mu);            \
    } while (0)

static bool stopping(gc *g) {
    pthread_mutex_lock(&g->mu);
    bool s = g->stop;
    pthread_mutex_unlock(&g->mu);
    return s;
}

/* One round of the config cfg read (its incarnation and version): the
 * horizon moved to the last of cands, then their deletes. Returns false
 * when the store is to be left for this pass (the horizon could not move;
 * the config changed meanwhile: its TTL may have, so cands may be wrong). */
static bool collect_round(gc *g, mirror *m, const char *name, const store_cfg *cfg, const GArray *cands) {
    const mirror_collectable *c = (const mirror_collectable *)cands->data;
    cursor_pos h = c[cands->len - 1].pos;
    zs_err e = {0};
    /* The horizon first: from now on a cursor that could need these
     * deletions is expired, on every gateway (their mirrors watch the config). */
    char *spath = layout_store_path(g->root, name);
    gc_fence f = {spath, 0};
    if (!spath) return false;
    if (stores_advance_horizon(g->z, g->root, g->schemas, name, cfg->czxid, cfg->zversion, &h, &f.version, &e) < 0) {
        if (e.status == 409) LOG_INFO(g->lg, "gc %s: its config changed during the round; the next pass goes on", name);
        else if (e.status != 404) GC_FAILED(g, "gc %s: cannot move the horizon: %s", name, e.message);
        free(spath);
        return false;
    }
    mirror_note_horizon(m, &h);
    int deleted = 0;
    bool stale = false;
    for (size_t i = 0; i < cands->len && !stale; i += DELETE_BATCH) {
        size_t n = cands->len - i < DELETE_BATCH ? cands->len - i : DELETE_BATCH;
        deleted += delete_batch(g, name, &f, c + i, n, &stale);
    }
    free(spath);
    pthread_mutex_lock(&g->mu);
    g->stats.collected += (uint64_t)deleted;
    pthread_mutex_unlock(&g->mu);
    LOG_INFO(g->lg, "gc %s: collected %d tombstones; horizon now %016llx", name, deleted, (unsigned long long)h.zxid);
    return !stale;
}

/* The store's config and its caught-up mirror: 0, or -1 (logged and
 * counted unless the store is simply gone, or not incarnation czxid when
 * czxid is not 0). */
static int store_state(gc *g, const char *name, int64_t czxid, store_cfg *cfg, mirror **m) {
    zs_err e = {0};
    if (stores_get(g->z, g->root, g->schemas, name, cfg, &e) < 0) {
        if (e.status != 404) GC_FAILED(g, "gc %s: cannot read the store: %s", name, e.message); /* 404: deleted since the listing */
        return -1;
    }
    store_cfg_release(cfg); /* only czxid, zversion and the ttl are used */
    if (czxid && cfg->czxid != czxid) return -1; /* created again: the next pass */
    int rc = mirror_set_acquire(g->mirrors, name, cfg->czxid, BOUND_LOAD_MS, m);
    if (rc == 0) rc = mirror_catch_up(*m, cfg->czxid, BOUND_CATCH_UP_MS);
    if (rc < 0 && rc != MIRROR_GONE)
        GC_FAILED(g, "gc %s: its mirror did not load or catch up within %d ms", name, BOUND_LOAD_MS);
    return rc < 0 ? -1 : 0;
}

static void collect_store(gc *g, const char *name) {
    store_cfg cfg;
    mirror *m = NULL;
    if (store_state(g, name, 0, &cfg, &m) < 0) return;
    int64_t czxid = cfg.czxid;
    /* In rounds of at most ROUND_MAX, in feed order: the walk goes on
     * after the last record the previous round visited. Each round reads
     * the config again (its TTL may have changed; another incarnation, or
     * another collector now, ends the pass for this store). */
    GArray *cands = g_array_sized_new(FALSE, FALSE, sizeof(mirror_collectable), ROUND_MAX);
    cursor_pos from = {0, 0, 0};
    bool more = true;
    for (unsigned round = 0; more && !stopping(g) && zkc_connected(g->z); round++) {
        if (round > 0 && (!is_leader(g) || store_state(g, name, czxid, &cfg, &m) < 0)) break;
        int64_t cutoff = g_get_real_time() / 1000 - cfg.tombstone_ttl * 1000;
        g_array_set_size(cands, 0);
        more = mirror_list_collectable(m, czxid, cutoff, &from, ROUND_MAX, cands);
        if (cands->len > 0 && !collect_round(g, m, name, &cfg, cands)) break;
    }
    g_array_free(cands, TRUE);
}

static void round_once(gc *g) {
    if (!zkc_connected(g->z)) return;
    ensure_candidate(g);
    bool leader = is_leader(g);
    pthread_mutex_lock(&g->mu);
    g->stats.leader = leader;
    if (leader) g->stats.runs++;
    pthread_mutex_unlock(&g->mu);
    if (!leader) return;
    char **names;
    size_t n;
    zs_err e = {0};
    if (stores_list(g->z, g->root, &names, &n, &e) < 0) {
        GC_FAILED(g, "gc: cannot list the stores: %s", e.message);
        return;
    }
    for (size_t i = 0; i < n && !stopping(g); i++) collect_store(g, names[i]);
    stores_free_names(names, n);
}

static void *gc_main(void *data) {
    gc *g = data;
    pthread_mutex_lock(&g->mu);
    while (!g->stop) {
        int64_t until = zs_clock_ms() + (int64_t)g->interval_s * 1000;
        while (!g->stop && zs_cond_wait_until(&g->cond, &g->mu, until) == 0) {}
        if (g->stop) break;
        pthread_mutex_unlock(&g->mu);
        round_once(g);
        pthread_mutex_lock(&g->mu);
    }
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

gc *gc_start(zkc *z, mirror_set *mirrors, const char *root, store_schema_cache *schemas, int interval_s,
             const zs_log *lg) {
    gc *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    g->z = z;
    g->mirrors = mirrors;
    g->schemas = schemas;
    g->interval_s = interval_s;
    g->lg = lg;
    if (!(g->root = strdup(root)) || !(g->dir = layout_gc_path(root))) {
        free(g->root);
        free(g);
        return NULL;
    }
    pthread_mutex_init(&g->mu, NULL);
    zs_cond_init(&g->cond);
    int rc = pthread_create(&g->thread, NULL, gc_main, g);
    if (rc != 0) {
        LOG_ERROR(lg, "gc: cannot start its thread: %s", strerror(rc));
        pthread_cond_destroy(&g->cond);
        pthread_mutex_destroy(&g->mu);
        free(g->dir);
        free(g->root);
        free(g);
        return NULL;
    }
    (void)pthread_setname_np(g->thread, "zs-gc");
    return g;
}

void gc_stop(gc *g) {
    if (!g) return;
    pthread_mutex_lock(&g->mu);
    g->stop = true;
    pthread_cond_signal(&g->cond);
    pthread_mutex_unlock(&g->mu);
    pthread_join(g->thread, NULL);
    pthread_cond_destroy(&g->cond);
    pthread_mutex_destroy(&g->mu);
    free(g->mine);
    free(g->dir);
    free(g->root);
    free(g);
}

void gc_get_stats(gc *g, gc_stats *out) {
    pthread_mutex_lock(&g->mu);
    *out = g->stats;
    pthread_mutex_unlock(&g->mu);
}

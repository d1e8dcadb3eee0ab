#include "zk/zkc.h"

#include "util/clock.h"
#include "zk/zklog.h"

#include <errno.h>
#include <glib.h>
#include <stdatomic.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GRAVE_MS 30000 /* an expired handle is closed this long after its replacement */

typedef struct grave { zhandle_t *zh; int64_t since_ms; } grave;

struct zkc {
    _Atomic(zhandle_t *) zh;  /* the live handle; replaced after a session expiry */
    char *hosts;
    int session_timeout_ms;
    const zs_log *lg;
    zklog *zlog;              /* the library's own log lines, into lg */
    const zk_ident *ident;    /* owned by main; NULL or off: no authentication */
    pthread_t manager;        /* replaces expired sessions */
    bool expired, stopping;   /* guarded by mu */
    grave graves[8];
    int ngraves;
    pthread_mutex_t mu; /* guards everything below */
    pthread_cond_t cond;
    int state;          /* last session state seen by the watcher */
    /* sync coalescing: generations issued / completed */
    uint64_t sync_issued, sync_done;
    bool sync_in_flight;
    int sync_rc;              /* the last failed round's error */
    uint64_t sync_last_ok;    /* the last round that succeeded */
};


/* A session state in words, for the log. */
static const char *state_name(int state) {
    if (state == ZOO_CONNECTING_STATE) return "connection lost; connecting";
    if (state == ZOO_ASSOCIATING_STATE) return "associating";
    if (state == ZOO_AUTH_FAILED_STATE) return "authentication failed (check --zk-digest-file)";
    if (state == ZOO_READONLY_STATE) return "connected to a read-only server";
    if (state == ZOO_NOTCONNECTED_STATE || state == 0) return "not connected";
    return "unknown session state";
}

static void session_watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx) {
    (void)path;
    zkc *z = ctx;
    if (type != ZOO_SESSION_EVENT) return;
    pthread_mutex_lock(&z->mu);
    z->state = state;
    pthread_cond_broadcast(&z->cond);
    pthread_mutex_unlock(&z->mu);
    if (state == ZOO_CONNECTED_STATE) {
        LOG_INFO(z->lg, "zookeeper: connected");
    } else if (state == ZOO_EXPIRED_SESSION_STATE) {
        LOG_ERROR(z->lg, "zookeeper: session expired; opening a new one");
        pthread_mutex_lock(&z->mu);
        bool live = zh == atomic_load(&z->zh);
        if (live) z->expired = true;
        pthread_cond_broadcast(&z->cond);
        pthread_mutex_unlock(&z->mu);
    } else {
        LOG_WARN(z->lg, "zookeeper: %s", state_name(state));
    }
}

/* By default the client re-resolves the host names every time it polls its
 * socket: a getaddrinfo (netlink, DNS) per request under load. Once every
 * 10 s is plenty to follow DNS changes. */
static void tune(zhandle_t *zh) { zoo_set_servers_resolution_delay(zh, 10000); }

/* The identity goes with the session (the client library re-sends it after
 * every reconnect of that session). */
static void authenticate(zkc *z, zhandle_t *zh) {
    if (!z->ident || !z->ident->on) return;
    int rc = zoo_add_auth(zh, "digest", z->ident->cred, (int)strlen(z->ident->cred), NULL, NULL);
    if (rc != ZOK) LOG_ERROR(z->lg, "zookeeper: cannot add the digest identity: %s", zerror(rc));
}

/* The manager thread: replaces an expired session with a new one, and
 * closes old handles once no caller can still be in them. */
static void *manager_main(void *arg) {
    zkc *z = arg;
    pthread_mutex_lock(&z->mu);
    while (!z->stopping) {
        struct timespec dl;
        dl = zs_clock_deadline(1000);
        pthread_cond_timedwait(&z->cond, &z->mu, &dl);
        int64_t now = zs_clock_ms();
        for (int i = 0; i < z->ngraves;) {
            if (now - z->graves[i].since_ms < GRAVE_MS) { i++; continue; }
            zhandle_t *old = z->graves[i].zh;
            z->graves[i] = z->graves[--z->ngraves];
            pthread_mutex_unlock(&z->mu);
            zookeeper_close(old);
            pthread_mutex_lock(&z->mu);
        }
        if (!z->expired || z->stopping || z->ngraves == (int)(sizeof z->graves / sizeof z->graves[0])) continue;
        z->expired = false;
        pthread_mutex_unlock(&z->mu);
        zhandle_t *fresh = zookeeper_init(z->hosts, session_watcher, z->session_timeout_ms, NULL, z, 0);
        if (fresh) { tune(fresh); authenticate(z, fresh); }
        pthread_mutex_lock(&z->mu);
        if (!fresh) { z->expired = true; continue; } /* try again in a second */
        z->graves[z->ngraves++] = (grave){atomic_exchange(&z->zh, fresh), now};
    }
    pthread_mutex_unlock(&z->mu);
    return NULL;
}

zkc *zkc_open(const char *hosts, int session_timeout_ms, const zk_ident *ident, const zs_log *lg) {
    zkc *z = calloc(1, sizeof *z);
    if (!z) return NULL;
    z->lg = lg;
    z->ident = ident;
    z->session_timeout_ms = session_timeout_ms;
    if (!(z->hosts = strdup(hosts))) { free(z); return NULL; }
    pthread_mutex_init(&z->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&z->cond, &ca);
    pthread_condattr_destroy(&ca);
    if ((z->zlog = zklog_new(lg))) zklog_install(z->zlog);
    else zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);
    zhandle_t *zh = zookeeper_init(hosts, session_watcher, session_timeout_ms, NULL, z, 0);
    if (zh) { tune(zh); authenticate(z, zh); }
    if (!zh || pthread_create(&z->manager, NULL, manager_main, z) != 0) {
        LOG_ERROR(lg, "zookeeper_init(%s) failed: %s", hosts, strerror(errno));
        if (zh) zookeeper_close(zh);
        pthread_cond_destroy(&z->cond);
        pthread_mutex_destroy(&z->mu);
        zklog_free(z->zlog);
        free(z->hosts);
        free(z);
        return NULL;
    }
    atomic_store(&z->zh, zh);
    return z;
}

void zkc_close(zkc *z) {
    if (!z) return;
    pthread_mutex_lock(&z->mu);
    z->stopping = true;
    pthread_cond_broadcast(&z->cond);
    pthread_mutex_unlock(&z->mu);
    pthread_join(z->manager, NULL);
    zookeeper_close(atomic_load(&z->zh));
    for (int i = 0; i < z->ngraves; i++) zookeeper_close(z->graves[i].zh);
    zklog_free(z->zlog);
    pthread_cond_destroy(&z->cond);
    pthread_mutex_destroy(&z->mu);
    free(z->hosts);
    free(z);
}

zhandle_t *zkc_zh(zkc *z) { return atomic_load(&z->zh); }

/* One wave of zkc_apply_acl: the children of every path, and its ACL set,
 * all sent at once (pipelined on the session). */
typedef struct acl_wave {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int pending;
    int rc;              /* the first error other than ZNONODE */
    size_t set;          /* ACLs set */
    GPtrArray *next;     /* the children found: the next wave */
} acl_wave;

typedef struct acl_call {
    acl_wave *w;
    char *path;
} acl_call;

static void acl_wave_done(acl_wave *w, int rc, bool was_set) {
    pthread_mutex_lock(&w->mu);
    if (rc != ZOK && rc != ZNONODE && w->rc == ZOK) w->rc = rc;
    if (was_set && rc == ZOK) w->set++;
    w->pending--;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->mu);
}

static void acl_children_done(int rc, const struct String_vector *kids, const void *data) {
    acl_call *c = (acl_call *)data;
    if (rc == ZOK) {
        pthread_mutex_lock(&c->w->mu);
        for (int i = 0; i < kids->count; i++) g_ptr_array_add(c->w->next, g_strdup_printf("%s/%s", c->path, kids->data[i]));
        pthread_mutex_unlock(&c->w->mu);
    }
    acl_wave_done(c->w, rc, false);
    g_free(c->path);
    g_free(c);
}

static void acl_set_done(int rc, const void *data) { acl_wave_done((acl_wave *)data, rc, true); }

int zkc_apply_acl(zkc *z, const char *root, size_t *count) {
    *count = 0;
    GPtrArray *wave = g_ptr_array_new_with_free_func(g_free);
    g_ptr_array_add(wave, g_strdup(root));
    int rc = ZOK;
    while (wave->len && rc == ZOK) {
        acl_wave w = {.rc = ZOK, .next = g_ptr_array_new_with_free_func(g_free)};
        pthread_mutex_init(&w.mu, NULL);
        pthread_cond_init(&w.cond, NULL);
        zhandle_t *zh = zkc_zh(z);
        for (guint i = 0; i < wave->len; i++) {
            const char *path = g_ptr_array_index(wave, i);
            acl_call *c = g_new(acl_call, 1);
            c->w = &w;
            c->path = g_strdup(path);
            pthread_mutex_lock(&w.mu);
            w.pending += 2;
            pthread_mutex_unlock(&w.mu);
            int r1 = zoo_aget_children(zh, path, 0, acl_children_done, c);
            if (r1 != ZOK) { g_free(c->path); g_free(c); acl_wave_done(&w, r1, false); }
            /* the library takes the ACL as non-const but only reads it */
            int r2 = zoo_aset_acl(zh, path, -1, (struct ACL_vector *)zkc_acl(z), acl_set_done, &w);
            if (r2 != ZOK) acl_wave_done(&w, r2, true);
        }
        pthread_mutex_lock(&w.mu);
        while (w.pending > 0) pthread_cond_wait(&w.cond, &w.mu); /* the library answers every call */
        pthread_mutex_unlock(&w.mu);
        rc = w.rc;
        *count += w.set;
        if (rc != ZOK) LOG_ERROR(z->lg, "zookeeper: setting the ACL under %s: %s", root, zerror(rc));
        g_ptr_array_free(wave, TRUE);
        wave = w.next;
        pthread_cond_destroy(&w.cond);
        pthread_mutex_destroy(&w.mu);
    }
    g_ptr_array_free(wave, TRUE);
    return rc;
}

const struct ACL_vector *zkc_acl(zkc *z) { return zk_ident_acl(z ? z->ident : NULL); }

static bool acl_open(zkc *z, const char *path) {
    struct ACL_vector acl = {0, NULL};
    struct Stat st;
    if (zoo_get_acl(zkc_zh(z), path, &acl, &st) != ZOK) return false;
    const zk_ident *id = z->ident;
    bool open = false;
    for (int i = 0; i < acl.count && !open; i++) {
        bool mine = id && id->on && strcmp(acl.data[i].id.scheme, "digest") == 0 && strcmp(acl.data[i].id.id, id->id) == 0;
        open = !mine && (acl.data[i].perms & ~ZOO_PERM_READ) != 0;
    }
    deallocate_ACL_vector(&acl);
    return open;
}

bool zkc_open_acl(zkc *z, const char *a, const char *b) { return acl_open(z, a) || acl_open(z, b); }

size_t zkc_acl_bytes(zkc *z) {
    const struct ACL_vector *v = zkc_acl(z);
    size_t n = 4;
    for (int i = 0; i < v->count; i++) n += 4 + 4 + strlen(v->data[i].id.scheme) + 4 + strlen(v->data[i].id.id);
    return n;
}

bool zkc_connected(zkc *z) { return zoo_state(zkc_zh(z)) == ZOO_CONNECTED_STATE; }

int zkc_wait_connected(zkc *z, int timeout_ms) {
    struct timespec dl;
    dl = zs_clock_deadline(timeout_ms);
    pthread_mutex_lock(&z->mu);
    int rc = 0;
    while (zoo_state(zkc_zh(z)) != ZOO_CONNECTED_STATE) {
        if (pthread_cond_timedwait(&z->cond, &z->mu, &dl) == ETIMEDOUT) {
            rc = zoo_state(zkc_zh(z)) == ZOO_CONNECTED_STATE ? 0 : -1;
            break;
        }
    }
    pthread_mutex_unlock(&z->mu);
    return rc;
}

static void issue_sync_locked(zkc *z);

static void sync_done(int rc, const char *value, const void *data) {
    (void)value;
    zkc *z = (zkc *)data;
    pthread_mutex_lock(&z->mu);
    z->sync_done++;
    if (rc == ZOK) z->sync_last_ok = z->sync_done;
    else z->sync_rc = rc;
    z->sync_in_flight = false;
    if (z->sync_issued > z->sync_done) issue_sync_locked(z); /* callers arrived meanwhile */
    pthread_cond_broadcast(&z->cond);
    pthread_mutex_unlock(&z->mu);
}

/* Sends the sync for generation sync_done + 1. Caller holds z->mu. */
static void issue_sync_locked(zkc *z) {
    z->sync_in_flight = true;
    int rc = zoo_async(zkc_zh(z), "/", sync_done, z);
    if (rc != ZOK) {
        z->sync_in_flight = false;
        z->sync_done = z->sync_issued; /* fail every waiter of this round */
        z->sync_rc = rc;
        pthread_cond_broadcast(&z->cond);
    }
}

int zkc_sync(zkc *z, int timeout_ms) {
    struct timespec dl;
    dl = zs_clock_deadline(timeout_ms);
    pthread_mutex_lock(&z->mu);
    /* The round we need is one issued after now: the next one if a round is
     * in flight (it may have been sent before we arrived). */
    uint64_t want = z->sync_done + (z->sync_in_flight ? 2 : 1);
    if (z->sync_issued < want) z->sync_issued = want;
    if (!z->sync_in_flight) issue_sync_locked(z);
    int rc = ZOK;
    while (z->sync_done < want) {
        if (pthread_cond_timedwait(&z->cond, &z->mu, &dl) == ETIMEDOUT) { rc = ZOPERATIONTIMEOUT; break; }
    }
    if (rc == ZOK && z->sync_last_ok < want) rc = z->sync_rc ? z->sync_rc : ZSYSTEMERROR;
    pthread_mutex_unlock(&z->mu);
    return rc;
}

int zkc_ensure_path(zkc *z, const char *path) {
    char *p = strdup(path);
    if (!p) return ZSYSTEMERROR;
    int rc = ZOK;
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0') continue;
        char c = *s;
        *s = '\0';
        rc = zoo_create(zkc_zh(z), p, "", 0, zkc_acl(z), 0, NULL, 0);
        *s = c;
        if (rc != ZOK && rc != ZNODEEXISTS) break;
        rc = ZOK;
        if (c == '\0') break;
    }
    free(p);
    return rc;
}

/* ---- pipelined reads ---------------------------------------------------------- */

/* Shared by the waiter and the completions; the last one out frees it, so a
 * waiter that gives up never leaves a completion writing into freed memory. */
typedef struct get_batch {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;      /* pending completions + the waiter */
    int pending;
    zkc_got *res;  /* owned by the batch until handed over */
    int n;
} get_batch;

typedef struct get_slot { get_batch *b; int i; } get_slot;

static void batch_unref_locked(get_batch *b) {
    if (--b->refs > 0) { pthread_mutex_unlock(&b->mu); return; }
    pthread_mutex_unlock(&b->mu);
    zkc_got_free(b->res, b->n);
    pthread_cond_destroy(&b->cv);
    pthread_mutex_destroy(&b->mu);
    free(b);
}

static void got_one(int rc, const char *value, int len, const struct Stat *st, const void *data) {
    get_slot *slot = (get_slot *)data;
    get_batch *b = slot->b;
    zkc_got *g = &b->res[slot->i];
    free(slot);
    pthread_mutex_lock(&b->mu);
    if (b->res) {
        g->rc = rc;
        g->len = -1;
        if (rc == ZOK) {
            g->st = *st;
            g->len = len;
            if (len >= 0 && (g->data = malloc((size_t)len + 1))) {
                if (len) memcpy(g->data, value, (size_t)len);
                g->data[len] = '\0';
            } else if (len >= 0) {
                g->rc = ZSYSTEMERROR;
            }
        }
    }
    b->pending--;
    pthread_cond_signal(&b->cv);
    batch_unref_locked(b);
}

void zkc_got_free(zkc_got *g, int n) {
    if (!g) return;
    for (int i = 0; i < n; i++) free(g[i].data);
    free(g);
}

int zkc_get_many(zkc *z, const char *const *paths, int n, zkc_got *out, int timeout_ms) {
    if (n == 0) return ZOK;
    get_batch *b = calloc(1, sizeof *b);
    zkc_got *res = calloc((size_t)n, sizeof *res);
    if (!b || !res) { free(b); free(res); return ZSYSTEMERROR; }
    pthread_mutex_init(&b->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&b->cv, &ca);
    pthread_condattr_destroy(&ca);
    b->res = res;
    b->n = n;
    b->refs = 1;
    int rc = ZOK;
    zhandle_t *zh = zkc_zh(z);
    pthread_mutex_lock(&b->mu);
    for (int i = 0; i < n; i++) {
        get_slot *slot = malloc(sizeof *slot);
        if (!slot) { rc = ZSYSTEMERROR; break; }
        *slot = (get_slot){b, i};
        b->refs++;
        b->pending++;
        int sent = zoo_aget(zh, paths[i], 0, got_one, slot);
        if (sent != ZOK) { b->refs--; b->pending--; free(slot); rc = sent; break; }
    }
    struct timespec dl;
    dl = zs_clock_deadline(timeout_ms);
    while (b->pending > 0)
        if (pthread_cond_timedwait(&b->cv, &b->mu, &dl) == ETIMEDOUT) { if (rc == ZOK) rc = ZOPERATIONTIMEOUT; break; }
    if (rc == ZOK) {
        memcpy(out, res, (size_t)n * sizeof *out); /* hand the data over */
        memset(res, 0, (size_t)n * sizeof *res);
    }
    batch_unref_locked(b); /* unlocks; frees when the last completion is done */
    return rc;
}

#include "zk/zkc.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct zkc {
    zhandle_t *zh;
    const zs_log *lg;
    pthread_mutex_t mu; /* guards everything below */
    pthread_cond_t cond;
    int state;          /* last session state seen by the watcher */
    /* sync coalescing: generations issued / completed */
    uint64_t sync_issued, sync_done;
    bool sync_in_flight;
    int sync_rc;
    void (*sync_hook)(void *);
    void *sync_hook_ctx;
};

int64_t zkc_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void abs_deadline(struct timespec *ts, int timeout_ms) {
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += timeout_ms / 1000;
    ts->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) { ts->tv_sec++; ts->tv_nsec -= 1000000000L; }
}

static void session_watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx) {
    (void)zh; (void)path;
    zkc *z = ctx;
    if (type != ZOO_SESSION_EVENT) return;
    pthread_mutex_lock(&z->mu);
    z->state = state;
    pthread_cond_broadcast(&z->cond);
    pthread_mutex_unlock(&z->mu);
    if (state == ZOO_CONNECTED_STATE) LOG_INFO(z->lg, "zookeeper: connected");
    else if (state == ZOO_EXPIRED_SESSION_STATE) LOG_ERROR(z->lg, "zookeeper: session expired");
    else LOG_WARN(z->lg, "zookeeper: session state %d", state);
}

zkc *zkc_open(const char *hosts, int session_timeout_ms, const zs_log *lg) {
    zkc *z = calloc(1, sizeof *z);
    if (!z) return NULL;
    z->lg = lg;
    pthread_mutex_init(&z->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&z->cond, &ca);
    pthread_condattr_destroy(&ca);
    zoo_set_debug_level(lg && lg->level >= ZS_LOG_DEBUG ? ZOO_LOG_LEVEL_INFO : ZOO_LOG_LEVEL_ERROR);
    z->zh = zookeeper_init(hosts, session_watcher, session_timeout_ms, NULL, z, 0);
    if (!z->zh) {
        LOG_ERROR(lg, "zookeeper_init(%s) failed: %s", hosts, strerror(errno));
        pthread_cond_destroy(&z->cond);
        pthread_mutex_destroy(&z->mu);
        free(z);
        return NULL;
    }
    return z;
}

void zkc_close(zkc *z) {
    if (!z) return;
    zookeeper_close(z->zh);
    pthread_cond_destroy(&z->cond);
    pthread_mutex_destroy(&z->mu);
    free(z);
}

zhandle_t *zkc_zh(zkc *z) { return z->zh; }

bool zkc_connected(zkc *z) { return zoo_state(z->zh) == ZOO_CONNECTED_STATE; }

int zkc_wait_connected(zkc *z, int timeout_ms) {
    struct timespec dl;
    abs_deadline(&dl, timeout_ms);
    pthread_mutex_lock(&z->mu);
    int rc = 0;
    while (zoo_state(z->zh) != ZOO_CONNECTED_STATE) {
        if (pthread_cond_timedwait(&z->cond, &z->mu, &dl) == ETIMEDOUT) {
            rc = zoo_state(z->zh) == ZOO_CONNECTED_STATE ? 0 : -1;
            break;
        }
    }
    pthread_mutex_unlock(&z->mu);
    return rc;
}

void zkc_set_sync_hook(zkc *z, void (*hook)(void *ctx), void *ctx) {
    pthread_mutex_lock(&z->mu);
    z->sync_hook = hook;
    z->sync_hook_ctx = ctx;
    pthread_mutex_unlock(&z->mu);
}

static void issue_sync_locked(zkc *z);

static void sync_done(int rc, const char *value, const void *data) {
    (void)value;
    zkc *z = (zkc *)data;
    pthread_mutex_lock(&z->mu);
    void (*hook)(void *) = z->sync_hook;
    void *hctx = z->sync_hook_ctx;
    pthread_mutex_unlock(&z->mu);
    if (hook && rc == ZOK) hook(hctx); /* outside our lock: it takes the mirror locks */
    pthread_mutex_lock(&z->mu);
    z->sync_done++;
    z->sync_rc = rc;
    z->sync_in_flight = false;
    if (z->sync_issued > z->sync_done) issue_sync_locked(z); /* callers arrived meanwhile */
    pthread_cond_broadcast(&z->cond);
    pthread_mutex_unlock(&z->mu);
}

/* Sends the sync for generation sync_done + 1. Caller holds z->mu. */
static void issue_sync_locked(zkc *z) {
    z->sync_in_flight = true;
    int rc = zoo_async(z->zh, "/", sync_done, z);
    if (rc != ZOK) {
        z->sync_in_flight = false;
        z->sync_done = z->sync_issued; /* fail every waiter of this round */
        z->sync_rc = rc;
        pthread_cond_broadcast(&z->cond);
    }
}

int zkc_sync(zkc *z, int timeout_ms) {
    struct timespec dl;
    abs_deadline(&dl, timeout_ms);
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
    if (rc == ZOK) rc = z->sync_rc;
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
        rc = zoo_create(z->zh, p, "", 0, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0);
        *s = c;
        if (rc != ZOK && rc != ZNODEEXISTS) break;
        rc = ZOK;
        if (c == '\0') break;
    }
    free(p);
    return rc;
}

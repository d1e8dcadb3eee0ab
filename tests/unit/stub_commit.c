/* The group committer (src/sync/commit.c) under concurrent callers, with
 * ZooKeeper stubbed (zoo_multi below; not linked to libzookeeper): CALLERS
 * threads each commit ROUNDS multis of 1..3 ops through its committer
 * threads; one multi in five holds an op that fails, so the combined multi
 * fails and the innocent jobs are sent again. Each caller checks its own
 * answer (rc, the failed index, its results filled). A lost wake-up hangs
 * it (its 120 s ctest timeout), a wrong hand-over answers someone else's
 * result, and a job used after its caller returned shows as wrong answers
 * or, in the sanitized build, a heap-buffer-overflow (the job is on its
 * caller's stack: ASan names a use after return only with
 * detect_stack_use_after_return). Written by a reviewer of 44747a9 (one
 * lock and condition per job then; a semaphore per job since deba548).
 * Since the slots for backlogs (commit.h), a second part holds multis in
 * flight at a gate: with COMMIT_BASE held, COMMIT_BACKLOG - 1 more jobs
 * must start no multi, one more must start exactly one (the backlog's
 * wake), and once the gate opens every job is answered (a committer whose
 * multi is answered takes what waits, unsignalled). Its own link line:
 * CMakeLists.txt. */
#include <assert.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sync/commit.h"

#define CALLERS 48
#define ROUNDS 1000

/* ---- stubs ---- */
struct zkc { int unused; };
#include "zk/zkc.h"
zhandle_t *zkc_zh(zkc *z) { (void)z; return NULL; }
void zs_metrics_zk(zs_metrics *m, zs_op_kind kind, int64_t us, int rc) { (void)m; (void)kind; (void)us; (void)rc; }
void zs_log_at(const zs_log *lg, zs_log_level level, const char *fmt, ...) { (void)lg; (void)level; (void)fmt; }

static atomic_int inflight, most;
static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static bool gated; /* under gate_mu: zoo_multi waits while set */

/* An op "fails" when its path is "bad": ZBADVERSION for it, ZRUNTIMEINCONSISTENCY for the others. */
int zoo_multi(zhandle_t *zh, int count, const zoo_op_t *ops, zoo_op_result_t *results) {
    (void)zh;
    int now = atomic_fetch_add(&inflight, 1) + 1;
    for (int m = atomic_load(&most); now > m && !atomic_compare_exchange_weak(&most, &m, now);) {}
    pthread_mutex_lock(&gate_mu);
    while (gated) pthread_cond_wait(&gate_cv, &gate_mu);
    pthread_mutex_unlock(&gate_mu);
    int bad = -1;
    for (int i = 0; i < count; i++)
        if (ops[i].set_op.path && strcmp(ops[i].set_op.path, "bad") == 0) { bad = i; break; }
    for (int i = 0; i < count; i++) {
        results[i].err = bad < 0 ? ZOK : i == bad ? ZBADVERSION : ZRUNTIMEINCONSISTENCY;
        results[i].value = (char *)(intptr_t)(bad < 0 ? 1000 + i : 0); /* marks "filled" */
    }
    int dice = rand() & 31;
    if (dice == 0) usleep(300); /* a slow multi: the queue grows behind it */
    else if (dice < 4) sched_yield();
    atomic_fetch_sub(&inflight, 1);
    return bad < 0 ? ZOK : ZBADVERSION;
}

static committer *C;
static atomic_int wrong;

static void *caller(void *arg) {
    unsigned seed = (unsigned)(uintptr_t)arg;
    for (int r = 0; r < ROUNDS; r++) {
        int n = 1 + (int)(rand_r(&seed) % 3);
        int badat = (rand_r(&seed) % 5) == 0 ? (int)(rand_r(&seed) % (unsigned)n) : -1;
        zoo_op_t ops[3];
        zoo_op_result_t res[3];
        memset(ops, 0, sizeof ops);
        memset(res, 0, sizeof res);
        for (int i = 0; i < n; i++) ops[i].set_op.path = i == badat ? "bad" : "ok";
        int failed = -2;
        int rc = committer_multi(C, ops, res, n, 10, &failed);
        if (badat < 0) {
            if (rc != ZOK || failed != -1) atomic_fetch_add(&wrong, 1);
            for (int i = 0; i < n; i++) if (res[i].value == NULL) atomic_fetch_add(&wrong, 1);
        } else if (rc != ZBADVERSION || failed != badat) {
            atomic_fetch_add(&wrong, 1);
        }
    }
    return NULL;
}

/* One job of one op, checked. */
static void *one(void *arg) {
    (void)arg;
    zoo_op_t op;
    zoo_op_result_t res;
    memset(&op, 0, sizeof op);
    memset(&res, 0, sizeof res);
    op.set_op.path = "ok";
    int failed = -2;
    if (committer_multi(C, &op, &res, 1, 10, &failed) != ZOK || failed != -1 || !res.value) atomic_fetch_add(&wrong, 1);
    return NULL;
}

/* Waits up to 5 s for want multis in flight; returns how many there are. */
static int await_inflight(int want) {
    for (int i = 0; i < 5000 && atomic_load(&inflight) != want; i++) usleep(1000);
    return atomic_load(&inflight);
}

/* The gate part: returns the number of failed checks. */
static int gate_part(void) {
    enum { N = COMMIT_BASE + COMMIT_BACKLOG };
    pthread_t t[N];
    int bad = 0, k = 0;
    pthread_mutex_lock(&gate_mu);
    gated = true;
    pthread_mutex_unlock(&gate_mu);
    /* COMMIT_BASE callers, one at a time: each its own multi, held */
    for (; k < COMMIT_BASE; k++) {
        pthread_create(&t[k], NULL, one, NULL);
        if (await_inflight(k + 1) != k + 1) { fprintf(stderr, "gate: caller %d started no multi\n", k); bad++; }
    }
    /* one short of a backlog: no multi more */
    for (; k < N - 1; k++) pthread_create(&t[k], NULL, one, NULL);
    usleep(100 * 1000);
    if (atomic_load(&inflight) != COMMIT_BASE) {
        fprintf(stderr, "gate: %d multis in flight with %d jobs waiting (want %d)\n", atomic_load(&inflight),
                COMMIT_BACKLOG - 1, COMMIT_BASE);
        bad++;
    }
    /* the backlog: exactly one multi more (it takes up to max_bytes of
     * the queue, which leaves less than a backlog) */
    pthread_create(&t[k++], NULL, one, NULL);
    if (await_inflight(COMMIT_BASE + 1) != COMMIT_BASE + 1) {
        fprintf(stderr, "gate: a backlog of %d started no multi (%d in flight)\n", COMMIT_BACKLOG, atomic_load(&inflight));
        bad++;
    }
    usleep(100 * 1000);
    if (atomic_load(&inflight) != COMMIT_BASE + 1) {
        fprintf(stderr, "gate: %d multis in flight after the backlog's (want %d)\n", atomic_load(&inflight), COMMIT_BASE + 1);
        bad++;
    }
    pthread_mutex_lock(&gate_mu);
    gated = false;
    pthread_cond_broadcast(&gate_cv);
    pthread_mutex_unlock(&gate_mu);
    for (int i = 0; i < k; i++) pthread_join(t[i], NULL); /* a job stranded hangs here (ctest's timeout) */
    return bad;
}

int main(void) {
    static struct zkc z;
    static zs_metrics m;
    static zs_log lg;
    C = committer_start(&z, 25 /* a few jobs per batch */, &m, &lg);
    assert(C);
    pthread_t t[CALLERS];
    for (int i = 0; i < CALLERS; i++) pthread_create(&t[i], NULL, caller, (void *)(uintptr_t)(i + 1));
    for (int i = 0; i < CALLERS; i++) pthread_join(t[i], NULL);
    int storm = atomic_load(&most);
    int gate_bad = gate_part();
    committer_stop(C); /* after every caller returned, as main.c */
    printf("stub_commit: %d callers x %d multis, %d wrong answers; at most %d multis in flight (%d slots, %d always); "
           "gate: %d failed checks\n",
           CALLERS, ROUNDS, atomic_load(&wrong), storm, COMMIT_THREADS, COMMIT_BASE, gate_bad);
    return atomic_load(&wrong) != 0 || gate_bad != 0;
}

/* The group committer (src/sync/commit.c) under concurrent callers, with
 * ZooKeeper stubbed (zoo_multi below; not linked to libzookeeper): CALLERS
 * threads each commit ROUNDS multis of 1..3 ops through its 4 committer
 * threads; one multi in five holds an op that fails, so the combined multi
 * fails and the innocent jobs are sent again. Each caller checks its own
 * answer (rc, the failed index, its results filled). A lost wake-up hangs
 * it (its 120 s ctest timeout), a wrong hand-over answers someone else's
 * result, and a job used after its caller returned shows as wrong answers
 * or, in the sanitized build, a heap-buffer-overflow (the job is on its
 * caller's stack: ASan names a use after return only with
 * detect_stack_use_after_return). Written by a reviewer of 44747a9 (one
 * lock and condition per job then; a semaphore per job since deba548).
 * Its own link line: CMakeLists.txt. */
#include <assert.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sync/commit.h"

#define CALLERS 48
#define ROUNDS 1000

/* ---- stubs ---- */
struct zkc { int unused; };
#include "zk/zkc.h"
zhandle_t *zkc_zh(zkc *z) { (void)z; return NULL; }
void zs_metrics_zk(zs_metrics *m, zs_op_kind kind, int64_t us, int rc) { (void)m; (void)kind; (void)us; (void)rc; }
void zs_log_at(const zs_log *lg, zs_log_level level, const char *fmt, ...) { (void)lg; (void)level; (void)fmt; }

/* An op "fails" when its path is "bad": ZBADVERSION for it, ZRUNTIMEINCONSISTENCY for the others. */
int zoo_multi(zhandle_t *zh, int count, const zoo_op_t *ops, zoo_op_result_t *results) {
    (void)zh;
    int bad = -1;
    for (int i = 0; i < count; i++)
        if (ops[i].set_op.path && strcmp(ops[i].set_op.path, "bad") == 0) { bad = i; break; }
    for (int i = 0; i < count; i++) {
        results[i].err = bad < 0 ? ZOK : i == bad ? ZBADVERSION : ZRUNTIMEINCONSISTENCY;
        results[i].value = (char *)(intptr_t)(bad < 0 ? 1000 + i : 0); /* marks "filled" */
    }
    if ((rand() & 7) == 0) sched_yield();
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

int main(void) {
    static struct zkc z;
    static zs_metrics m;
    static zs_log lg;
    C = committer_start(&z, 25 /* a few jobs per batch */, &m, &lg);
    assert(C);
    pthread_t t[CALLERS];
    for (int i = 0; i < CALLERS; i++) pthread_create(&t[i], NULL, caller, (void *)(uintptr_t)(i + 1));
    for (int i = 0; i < CALLERS; i++) pthread_join(t[i], NULL);
    committer_stop(C); /* after every caller returned, as main.c */
    printf("stub_commit: %d callers x %d multis, %d wrong answers\n", CALLERS, ROUNDS, atomic_load(&wrong));
    return atomic_load(&wrong) != 0;
}

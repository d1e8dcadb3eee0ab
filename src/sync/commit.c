#include "sync/commit.h"

#include "util/clock.h"
#include "zk/zkc.h"

#include <assert.h>
#include <errno.h>
#include <glib.h>
#include <limits.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(COMMIT_BASE >= 1 && COMMIT_BASE <= COMMIT_THREADS, "at least one slot always serves");

#define JOB_PENDING INT_MIN /* not a ZooKeeper error code */

typedef struct job {
    const zoo_op_t *ops;
    zoo_op_result_t *res;
    int n;
    size_t bytes;
    int rc;                  /* the answer (JOB_PENDING until then): written by the one */
    int failed;              /* committer answering, read by the caller once answered is posted */
    /* Its caller sleeps on this semaphore alone: one wake per answer (none
     * if the answer comes first) and no lock to take again on waking. A
     * condition under the queue's lock, shared by every caller and
     * committer, made each woken caller wait for that lock again; one under
     * a lock of the job's own still cost the caller a second sleep when it
     * woke before the unlock. */
    sem_t answered;
    struct job *next;        /* the queue's, under committer.mu */
} job;

struct committer {
    zkc *z;
    size_t max_bytes;
    zs_metrics *metrics;
    const zs_log *lg;
    pthread_t threads[COMMIT_THREADS];
    int nthreads;             /* started */
    pthread_mutex_t mu;       /* guards the queue, its counts and stop; a leaf */
    pthread_cond_t queued;    /* a committer waits for work it may take (see may_take) */
    job *head, *tail;
    int nqueued;              /* jobs in the queue */
    int active;               /* committers between taking a batch and its answers */
    bool stop;
};

/* Answers j: its caller returns, and j (on the caller's stack) is gone as
 * soon as the post is made. sem_post touches the semaphore no more once
 * the waiter can return (glibc's wake call only names its address), which
 * is what POSIX's "safe to destroy once no thread is blocked" needs here. */
static void finish(committer *c, job *j, int rc, int failed) {
    (void)c;
    assert(j->rc == JOB_PENDING); /* a job is answered once */
    j->rc = rc;
    j->failed = failed;
    sem_post(&j->answered); /* rc and failed are seen by the caller (memory synchronization) */
}

/* Sends jobs[0..n) as one multi, again without any job whose op failed. */
static void run_batch(committer *c, job **jobs, int n) {
    while (n > 0) {
        int total = 0;
        for (int i = 0; i < n; i++) total += jobs[i]->n;
        zoo_op_t *ops = malloc((size_t)total * sizeof *ops);
        zoo_op_result_t *res = calloc((size_t)total, sizeof *res);
        if (!ops || !res) {
            free(ops);
            free(res);
            for (int i = 0; i < n; i++) finish(c, jobs[i], ZSYSTEMERROR, -1);
            return;
        }
        int off = 0;
        for (int i = 0; i < n; i++) {
            memcpy(ops + off, jobs[i]->ops, (size_t)jobs[i]->n * sizeof *ops);
            off += jobs[i]->n;
        }
        int64_t t0 = zs_clock_us();
        int rc = zoo_multi(zkc_zh(c->z), total, ops, res);
        zs_metrics_zk(c->metrics, ZS_OP_MULTI, zs_clock_us() - t0, rc);
        int bad = -1;
        if (rc != ZOK)
            for (int i = 0; i < total; i++)
                if (res[i].err != ZOK && res[i].err != ZRUNTIMEINCONSISTENCY) { bad = i; break; }
        off = 0;
        int keep = 0;
        for (int i = 0; i < n; i++) {
            job *j = jobs[i];
            int jn = j->n; /* j lives on its caller's stack: gone once finished */
            if (rc == ZOK) {
                memcpy(j->res, res + off, (size_t)j->n * sizeof *res);
                finish(c, j, ZOK, -1);
            } else if (bad < 0) {
                finish(c, j, rc, -1); /* the session's fault: everyone's */
            } else if (bad >= off && bad < off + jn) {
                memcpy(j->res, res + off, (size_t)j->n * sizeof *res);
                finish(c, j, res[bad].err, bad - off);
            } else {
                jobs[keep++] = j; /* innocent: send again */
            }
            off += jn;
        }
        free(ops);
        free(res);
        n = rc == ZOK || bad < 0 ? 0 : keep;
    }
}

/* May a free committer take the queue now? Always while fewer than
 * COMMIT_BASE multis are in flight; beyond that only a backlog. Caller
 * holds mu. Nothing is left queued for good: each active committer, once
 * answered, counts itself out and asks again, so the one whose answer
 * brings the count below COMMIT_BASE takes what is queued. */
static bool may_take(const committer *c) {
    return c->head && (c->active < COMMIT_BASE || c->nqueued >= COMMIT_BACKLOG);
}

static void *committer_main(void *data) {
    committer *c = data;
    GPtrArray *batch = g_ptr_array_new();
    pthread_mutex_lock(&c->mu);
    for (;;) {
        /* (once stopping, whatever is queued goes, backlog or not: the stop's
         * one broadcast must not find a thread that sleeps again) */
        while (!c->stop && !may_take(c)) pthread_cond_wait(&c->queued, &c->mu);
        if (!c->head) break; /* stopping, and nothing left */
        assert(c->active < COMMIT_THREADS);
        c->active++;
        size_t bytes = 0;
        g_ptr_array_set_size(batch, 0);
        while (c->head && (batch->len == 0 || bytes + c->head->bytes <= c->max_bytes)) {
            job *j = c->head;
            c->head = j->next;
            if (!c->head) c->tail = NULL;
            bytes += j->bytes;
            c->nqueued--;
            g_ptr_array_add(batch, j);
        }
        assert(c->nqueued >= 0);
        assert((c->nqueued > 0) == (c->head != NULL));
        pthread_mutex_unlock(&c->mu);
        run_batch(c, (job **)batch->pdata, (int)batch->len);
        pthread_mutex_lock(&c->mu);
        c->active--;
    }
    pthread_mutex_unlock(&c->mu);
    g_ptr_array_free(batch, TRUE);
    return NULL;
}

committer *committer_start(zkc *z, size_t max_bytes, zs_metrics *m, const zs_log *lg) {
    committer *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->z = z;
    c->max_bytes = max_bytes;
    c->metrics = m;
    c->lg = lg;
    pthread_mutex_init(&c->mu, NULL);
    zs_cond_init(&c->queued);   /* (untimed waits: the clock only keeps every condition alike) */
    for (; c->nthreads < COMMIT_THREADS; c->nthreads++) {
        int rc = pthread_create(&c->threads[c->nthreads], NULL, committer_main, c);
        if (rc != 0) {
            LOG_ERROR(lg, "committer: cannot start a thread: %s", strerror(rc));
            committer_stop(c); /* the ones started: nothing is queued, they exit at once */
            return NULL;
        }
        (void)pthread_setname_np(c->threads[c->nthreads], "zs-commit");
    }
    return c;
}

void committer_stop(committer *c) {
    if (!c) return;
    pthread_mutex_lock(&c->mu);
    c->stop = true;
    pthread_cond_broadcast(&c->queued);
    pthread_mutex_unlock(&c->mu);
    for (int i = 0; i < c->nthreads; i++) pthread_join(c->threads[i], NULL);
    pthread_cond_destroy(&c->queued);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

int committer_multi(committer *c, const zoo_op_t *ops, zoo_op_result_t *res, int n, size_t bytes, int *failed) {
    job j = {.ops = ops, .res = res, .n = n, .bytes = bytes, .rc = JOB_PENDING, .failed = -1};
    /* Before it is queued: the committer may post at once. (sem_init fails
     * only for a value over SEM_VALUE_MAX or a process-shared one.) */
    sem_init(&j.answered, 0, 0);
    pthread_mutex_lock(&c->mu);
    if (c->tail) c->tail->next = &j;
    else c->head = &j;
    c->tail = &j;
    c->nqueued++;
    bool wake = may_take(c); /* else the active committers take it when answered */
    pthread_mutex_unlock(&c->mu);
    /* after the unlock: the committer woken does not wait for this lock */
    if (wake) pthread_cond_signal(&c->queued);
    while (sem_wait(&j.answered) != 0) assert(errno == EINTR);
    sem_destroy(&j.answered);
    *failed = j.failed;
    return j.rc;
}

#include "util/workq.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "util/clock.h"

struct workq {
    workq_run run;
    void *ctx;
    pthread_mutex_t mu;      /* guards head, tail and stop */
    pthread_cond_t cond;     /* an item was queued, or stop was set */
    workq_item *head, *tail;
    bool stop;               /* workq_free has begun: no more pushes */
    atomic_uint signalling;  /* pushes accepted (under mu) whose signal, after the unlock, is not done */
    unsigned nthreads;       /* started */
    pthread_t threads[];
};

/* Takes the head while there is one; exits once the queue is empty and
 * stopping (a workq_free without drain empties it at once). */
static void *worker_main(void *data) {
    workq *q = data;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        while (!q->head && !q->stop) pthread_cond_wait(&q->cond, &q->mu);
        workq_item *it = q->head;
        if (!it) break; /* stopping, nothing left */
        q->head = it->next;
        if (!q->head) q->tail = NULL;
        it->next = NULL;
        pthread_mutex_unlock(&q->mu);
        q->run(it, q->ctx);
        pthread_mutex_lock(&q->mu);
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

static void stop_and_free(workq *q, bool drain) {
    pthread_mutex_lock(&q->mu);
    q->stop = true;
    if (!drain) q->head = q->tail = NULL; /* dropped: the caller's again */
    pthread_cond_broadcast(&q->cond);
    pthread_mutex_unlock(&q->mu);
    for (unsigned i = 0; i < q->nthreads; i++) pthread_join(q->threads[i], NULL);
    /* A push accepted before stop may still be about to signal cond (it
     * signals after its unlock): the condition must outlive that signal. */
    while (atomic_load_explicit(&q->signalling, memory_order_acquire) != 0) sched_yield();
    pthread_cond_destroy(&q->cond);
    pthread_mutex_destroy(&q->mu);
    free(q);
}

workq *workq_new(unsigned nthreads, const char *name, workq_run run, void *ctx, int *err) {
    if (nthreads == 0 || !run) {
        *err = EINVAL;
        return NULL;
    }
    workq *q = calloc(1, sizeof *q + (size_t)nthreads * sizeof q->threads[0]);
    if (!q) {
        *err = ENOMEM;
        return NULL;
    }
    q->run = run;
    q->ctx = ctx;
    pthread_mutex_init(&q->mu, NULL);
    zs_cond_init(&q->cond); /* (untimed waits: the clock only keeps every condition alike) */
    for (; q->nthreads < nthreads; q->nthreads++) {
        int rc = pthread_create(&q->threads[q->nthreads], NULL, worker_main, q);
        if (rc != 0) {
            stop_and_free(q, false); /* nothing was pushed: the started ones exit at once */
            *err = rc;
            return NULL;
        }
        if (name) (void)pthread_setname_np(q->threads[q->nthreads], name);
    }
    return q;
}

int workq_push(workq *q, workq_item *it) {
    pthread_mutex_lock(&q->mu);
    if (q->stop) {
        pthread_mutex_unlock(&q->mu);
        return -1;
    }
    it->next = NULL;
    if (q->tail) q->tail->next = it;
    else q->head = it;
    q->tail = it;
    /* counted under mu, before stop can be set: workq_free, which sets stop
     * under mu, sees it and waits for the signal below before destroying */
    atomic_fetch_add_explicit(&q->signalling, 1, memory_order_relaxed);
    pthread_mutex_unlock(&q->mu);
    /* Signalled after the unlock, so the woken worker does not wait on the
     * lock this thread still holds (a second sleep and wake per job). A
     * workq_free begun meanwhile waits for it (signalling). */
    pthread_cond_signal(&q->cond);
    atomic_fetch_sub_explicit(&q->signalling, 1, memory_order_release);
    return 0;
}

void workq_free(workq *q, bool drain) {
    if (q) stop_and_free(q, drain);
}

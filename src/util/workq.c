#include "util/workq.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdlib.h>

/* A worker, and how a push hands it an item directly when it is idle. */
typedef struct worker {
    workq *q;
    pthread_t thread;
    sem_t wake;              /* its own sleep: posted with item set, or for stop with item NULL */
    workq_item *item;        /* handed over by a push (written under mu, read after the wake) */
    struct worker *next_idle; /* the idle stack's, under mu */
} worker;

struct workq {
    workq_run run;
    void *ctx;
    pthread_mutex_t mu;      /* guards head, tail, idle and stop */
    workq_item *head, *tail; /* items no worker was idle for, in order */
    worker *idle;            /* workers asleep on their wake, the last to sleep first; only while head is NULL */
    bool stop;               /* workq_free has begun: no more pushes */
    unsigned nthreads;       /* started */
    worker workers[];
};

/* Takes the head while there is one; else sleeps on its own wake until a
 * push hands it an item; exits once the queue is empty and stopping (a
 * workq_free without drain empties it at once). */
static void *worker_main(void *data) {
    worker *w = data;
    workq *q = w->q;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        workq_item *it = q->head;
        if (it) {
            q->head = it->next;
            if (!q->head) q->tail = NULL;
            it->next = NULL;
            pthread_mutex_unlock(&q->mu);
        } else {
            if (q->stop) break;
            w->item = NULL;
            w->next_idle = q->idle;
            q->idle = w;
            pthread_mutex_unlock(&q->mu);
            /* No lock to take again on waking: the push chose this worker
             * under mu and handed the item over. (Each post pairs with one
             * wait: a worker is on the idle stack at most once, and only
             * there can a post find it.) */
            while (sem_wait(&w->wake) != 0) assert(errno == EINTR);
            it = w->item; /* NULL: woken to stop */
        }
        if (it) q->run(it, q->ctx); /* mu is not held here, whichever way the item came */
        pthread_mutex_lock(&q->mu);
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

static void stop_and_free(workq *q, bool drain) {
    pthread_mutex_lock(&q->mu);
    q->stop = true;
    if (!drain) q->head = q->tail = NULL; /* dropped: the caller's again */
    for (worker *w = q->idle; w; w = w->next_idle) sem_post(&w->wake); /* item NULL: stop */
    q->idle = NULL;
    pthread_mutex_unlock(&q->mu);
    /* A push that handed a worker its item before stop posts its wake after
     * its unlock: that worker waits for the post, so the joins below cannot
     * end before it (only the wake call itself may come later, and it does
     * not touch the semaphore: glibc's only names its address). */
    for (unsigned i = 0; i < q->nthreads; i++) {
        pthread_join(q->workers[i].thread, NULL);
        sem_destroy(&q->workers[i].wake);
    }
    pthread_mutex_destroy(&q->mu);
    free(q);
}

workq *workq_new(unsigned nthreads, const char *name, workq_run run, void *ctx, int *err) {
    if (nthreads == 0 || !run) {
        *err = EINVAL;
        return NULL;
    }
    workq *q = calloc(1, sizeof *q + (size_t)nthreads * sizeof q->workers[0]);
    if (!q) {
        *err = ENOMEM;
        return NULL;
    }
    q->run = run;
    q->ctx = ctx;
    pthread_mutex_init(&q->mu, NULL);
    for (; q->nthreads < nthreads; q->nthreads++) {
        worker *w = &q->workers[q->nthreads];
        w->q = q;
        sem_init(&w->wake, 0, 0); /* fails only for a value over SEM_VALUE_MAX or a shared one */
        int rc = pthread_create(&w->thread, NULL, worker_main, w);
        if (rc != 0) {
            sem_destroy(&w->wake);
            stop_and_free(q, false); /* nothing was pushed: the started ones exit at once */
            *err = rc;
            return NULL;
        }
        if (name) (void)pthread_setname_np(w->thread, name);
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
    worker *w = q->idle;
    if (!w) {
        if (q->tail) q->tail->next = it;
        else q->head = it;
        q->tail = it;
        pthread_mutex_unlock(&q->mu);
        return 0; /* every worker is busy: the first to finish takes it */
    }
    assert(!q->head); /* a worker sleeps only on an empty queue */
    q->idle = w->next_idle;
    w->item = it;
    pthread_mutex_unlock(&q->mu);
    /* After the unlock, so the worker woken has nothing to wait for. */
    sem_post(&w->wake);
    return 0;
}

void workq_free(workq *q, bool drain) {
    if (q) stop_and_free(q, drain);
}

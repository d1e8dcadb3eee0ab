/* workq_push overlapping workq_free, which util/workq.h allows ("workq_push
 * from any thread"; "-1 once workq_free has begun"). A push wakes the idle
 * worker it chose after it unlocks the queue; a pusher preempted between
 * the two must not touch a queue workq_free has freed meanwhile (found by
 * a review of 44747a9, when the wake was a condition's signal: ASan
 * reported a heap use after free here before workq_free waited for it; the
 * worker's own wake now lives in the queue, and the worker it was handed
 * to waits for it).
 *
 * The preemption is forced: sem_post is wrapped (linked with
 * -Wl,--wrap=sem_post, see CMakeLists.txt) to sleep before the real call
 * in the pushing thread, and first to read the semaphore as glibc's post
 * does, an access ASan sees. Not a cmocka test: it needs its own link line, and what it checks
 * is ASan's silence plus two counts. */
#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <semaphore.h>

#include "util/workq.h"

int __real_sem_post(sem_t *s);
int __wrap_sem_post(sem_t *s);

static _Thread_local bool slow_signal;
static atomic_bool in_window; /* the pusher is between its unlock and its signal */

int __wrap_sem_post(sem_t *w) {
    if (slow_signal) {
        atomic_store(&in_window, true);
        struct timespec t = {0, 100 * 1000000L};
        nanosleep(&t, NULL); /* the scheduler's preemption, made long */
        sem_t seen;
        memcpy(&seen, w, sizeof seen); /* the word the real post exchanges */
        (void)seen;
    }
    return __real_sem_post(w);
}

static atomic_int ran;
static void run(workq_item *it, void *ctx) {
    (void)it;
    (void)ctx;
    atomic_fetch_add(&ran, 1);
}

static workq *Q;
static workq_item item;
static atomic_int push_rc = 99;

static void *pusher(void *arg) {
    (void)arg;
    slow_signal = true;
    atomic_store(&push_rc, workq_push(Q, &item)); /* before workq_free began: accepted */
    return NULL;
}

int main(void) {
    int err = 0;
    Q = workq_new(1, NULL, run, NULL, &err);
    if (!Q) return 1;
    /* The push hands its item to an idle worker (and wakes it after the
     * unlock) only once the worker sleeps: give it time to. */
    struct timespec settle = {0, 200 * 1000000L};
    nanosleep(&settle, NULL);
    pthread_t t;
    if (pthread_create(&t, NULL, pusher, NULL) != 0) return 1;
    for (int ms = 0; !atomic_load(&in_window); ms++) {
        if (ms == 5000) {
            fprintf(stderr, "wrap_workq_free: the push never woke a worker (was the worker not idle?)\n");
            return 1;
        }
        struct timespec s = {0, 1000000L};
        nanosleep(&s, NULL);
    }
    workq_free(Q, true); /* from another thread, while the push is still in workq_push */
    pthread_join(t, NULL);
    if (atomic_load(&push_rc) != 0 || atomic_load(&ran) != 1) {
        fprintf(stderr, "wrap_workq_free: push returned %d, the item ran %d times (want 0 and 1)\n", atomic_load(&push_rc),
                atomic_load(&ran));
        return 1;
    }
    return 0;
}

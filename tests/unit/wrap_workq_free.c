/* workq_push overlapping workq_free, which util/workq.h allows ("workq_push
 * from any thread"; "-1 once workq_free has begun"). A push signals the
 * workers after it unlocks the queue; a pusher preempted between the two
 * must not signal a condition workq_free has destroyed and freed meanwhile
 * (found by a review of 44747a9: ASan reported a heap use after free here
 * before workq_free waited for such a signal).
 *
 * The preemption is forced: pthread_cond_signal is wrapped (linked with
 * -Wl,--wrap=pthread_cond_signal, see CMakeLists.txt) to sleep before the
 * real call in the pushing thread, and first to read the condition as
 * glibc's signal does, an access ASan sees. Not a cmocka test: it needs its
 * own link line, and what it checks is ASan's silence plus two counts. */
#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/workq.h"

int __real_pthread_cond_signal(pthread_cond_t *c);
int __wrap_pthread_cond_signal(pthread_cond_t *c);

static _Thread_local bool slow_signal;
static atomic_bool in_window; /* the pusher is between its unlock and its signal */

int __wrap_pthread_cond_signal(pthread_cond_t *c) {
    if (slow_signal) {
        atomic_store(&in_window, true);
        struct timespec t = {0, 100 * 1000000L};
        nanosleep(&t, NULL); /* the scheduler's preemption, made long */
        pthread_cond_t seen;
        memcpy(&seen, c, sizeof seen); /* what glibc's signal reads first */
        (void)seen;
    }
    return __real_pthread_cond_signal(c);
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
    pthread_t t;
    if (pthread_create(&t, NULL, pusher, NULL) != 0) return 1;
    while (!atomic_load(&in_window)) {
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

/* Unit tests for src/util/workq.c: every item runs exactly once; the
 * threads run side by side (as many as asked); workq_free with drain runs
 * everything queued before it, without drain drops what had not started and
 * lets the running item finish; a push once workq_free has begun is refused
 * and the item stays the caller's; several pushers at once, each item
 * handed to a sleeping worker or queued, still run exactly once; the
 * condition helpers of util/clock (a monotonic
 * deadline that passed, a signal before it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sched.h>
#include <time.h>

#include "util/clock.h"
#include "util/workq.h"

typedef struct job {
    workq_item link;
    atomic_int runs;
    bool gate;                 /* waits for the test's release first */
    pthread_barrier_t *meet;   /* NULL, or waits there */
} job;

/* The gate: a job that holds its worker until release(). */
static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static bool gate_open, gate_entered;
static atomic_int still_linked; /* items run with their link set (cmocka asserts on the main thread only) */

static void gate_reset(void) {
    pthread_mutex_lock(&gate_mu);
    gate_open = gate_entered = false;
    pthread_mutex_unlock(&gate_mu);
}

static void release(void) {
    pthread_mutex_lock(&gate_mu);
    gate_open = true;
    pthread_cond_broadcast(&gate_cond);
    pthread_mutex_unlock(&gate_mu);
}

static void wait_entered(void) {
    pthread_mutex_lock(&gate_mu);
    while (!gate_entered) pthread_cond_wait(&gate_cond, &gate_mu);
    pthread_mutex_unlock(&gate_mu);
}

static void run(workq_item *it, void *ctx) {
    atomic_int *total = ctx;
    job *j = (job *)((char *)it - offsetof(job, link));
    if (it->next) atomic_fetch_add(&still_linked, 1);
    if (j->gate) {
        pthread_mutex_lock(&gate_mu);
        gate_entered = true;
        pthread_cond_broadcast(&gate_cond);
        while (!gate_open) pthread_cond_wait(&gate_cond, &gate_mu);
        pthread_mutex_unlock(&gate_mu);
    }
    if (j->meet) pthread_barrier_wait(j->meet);
    atomic_fetch_add(&j->runs, 1);
    atomic_fetch_add(total, 1);
}

#define MANY 20000

static void each_item_once(void **state) {
    (void)state;
    static job jobs[MANY];
    atomic_int total = 0;
    int err = 0;
    workq *q = workq_new(4, "zs-test", run, &total, &err);
    assert_non_null(q);
    for (int i = 0; i < MANY; i++) assert_int_equal(workq_push(q, &jobs[i].link), 0);
    workq_free(q, true);
    assert_int_equal(atomic_load(&total), MANY);
    assert_int_equal(atomic_load(&still_linked), 0);
    for (int i = 0; i < MANY; i++) assert_int_equal(atomic_load(&jobs[i].runs), 1);
}

/* Four threads push at once into eight workers that keep falling idle
 * (each item hands itself to a sleeping worker or joins the queue): every
 * item still runs once. */
#define PUSHERS 4
typedef struct pusher { workq *q; job *jobs; int n; } pusher;

static void *pusher_main(void *data) {
    pusher *p = data;
    for (int i = 0; i < p->n; i++) {
        if (workq_push(p->q, &p->jobs[i].link) != 0) return (void *)1;
        if (i % 64 == 0) sched_yield(); /* lets workers drain and sleep again */
    }
    return NULL;
}

static void pushers_side_by_side(void **state) {
    (void)state;
    static job jobs[MANY];
    for (int i = 0; i < MANY; i++) atomic_store(&jobs[i].runs, 0);
    atomic_int total = 0;
    int err = 0;
    workq *q = workq_new(8, NULL, run, &total, &err);
    assert_non_null(q);
    pthread_t t[PUSHERS];
    pusher p[PUSHERS];
    for (int i = 0; i < PUSHERS; i++) {
        p[i] = (pusher){q, jobs + i * (MANY / PUSHERS), MANY / PUSHERS};
        assert_int_equal(pthread_create(&t[i], NULL, pusher_main, &p[i]), 0);
    }
    for (int i = 0; i < PUSHERS; i++) {
        void *rc;
        pthread_join(t[i], &rc);
        assert_null(rc);
    }
    workq_free(q, true);
    assert_int_equal(atomic_load(&total), MANY);
    for (int i = 0; i < MANY; i++) assert_int_equal(atomic_load(&jobs[i].runs), 1);
}

/* Four jobs that can only finish together: four workers run at once. */
static void threads_side_by_side(void **state) {
    (void)state;
    pthread_barrier_t b;
    pthread_barrier_init(&b, NULL, 4);
    job jobs[4] = {0};
    atomic_int total = 0;
    int err = 0;
    workq *q = workq_new(4, NULL, run, &total, &err);
    assert_non_null(q);
    for (int i = 0; i < 4; i++) {
        jobs[i].meet = &b;
        assert_int_equal(workq_push(q, &jobs[i].link), 0);
    }
    workq_free(q, true);
    assert_int_equal(atomic_load(&total), 4);
    pthread_barrier_destroy(&b);
}

typedef struct freer { workq *q; bool drain; } freer;

static void *free_main(void *data) {
    freer *f = data;
    workq_free(f->q, f->drain);
    return NULL;
}

#define QUEUED 10
#define EXTRA 20000

/* One worker held by a gate job, QUEUED jobs behind it; workq_free starts on
 * another thread while the gate is closed. Pushing extras until one is
 * refused shows that workq_free has begun (and, without drain, emptied the
 * queue: the same critical section); then the gate opens. */
static void free_while_busy(bool drain) {
    static job extra[EXTRA];
    job gate = {.gate = true};
    job queued[QUEUED] = {0};
    atomic_int total = 0;
    int err = 0;
    gate_reset();
    for (int i = 0; i < EXTRA; i++) atomic_store(&extra[i].runs, 0);
    workq *q = workq_new(1, NULL, run, &total, &err);
    assert_non_null(q);
    assert_int_equal(workq_push(q, &gate.link), 0);
    wait_entered();
    for (int i = 0; i < QUEUED; i++) assert_int_equal(workq_push(q, &queued[i].link), 0);
    freer f = {q, drain};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, free_main, &f), 0);
    int pushed = 0;
    struct timespec pause = {0, 50000L}; /* leaves the freeing thread the CPU */
    while (pushed < EXTRA && workq_push(q, &extra[pushed].link) == 0) {
        pushed++;
        nanosleep(&pause, NULL);
    }
    assert_true(pushed < EXTRA); /* refused once workq_free began */
    release();
    pthread_join(t, NULL);
    assert_int_equal(atomic_load(&gate.runs), 1); /* the running one finished */
    for (int i = 0; i < QUEUED; i++) assert_int_equal(atomic_load(&queued[i].runs), drain ? 1 : 0);
    for (int i = 0; i < pushed; i++) assert_int_equal(atomic_load(&extra[i].runs), drain ? 1 : 0);
    assert_int_equal(atomic_load(&extra[pushed].runs), 0); /* the refused one */
    assert_int_equal(atomic_load(&total), drain ? 1 + QUEUED + pushed : 1);
}

static void free_drains(void **state) {
    (void)state;
    free_while_busy(true);
}

static void free_without_drain_drops(void **state) {
    (void)state;
    free_while_busy(false);
}

static void bad_arguments(void **state) {
    (void)state;
    int err = 0;
    atomic_int total = 0;
    assert_null(workq_new(0, NULL, run, &total, &err));
    assert_int_equal(err, EINVAL);
    workq_free(NULL, true);
}

static void cond_deadline(void **state) {
    (void)state;
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t c;
    assert_int_equal(zs_cond_init(&c), 0);
    pthread_mutex_lock(&mu);
    int64_t t0 = zs_clock_ms();
    int rc;
    while ((rc = zs_cond_wait_until(&c, &mu, t0 + 50)) == 0) {} /* spurious wakes */
    assert_int_equal(rc, ETIMEDOUT);
    assert_true(zs_clock_ms() >= t0 + 50);
    assert_int_equal(zs_cond_wait_until(&c, &mu, t0), ETIMEDOUT); /* passed: at once */
    assert_int_equal(zs_cond_wait_until(&c, &mu, -5), ETIMEDOUT);
    pthread_mutex_unlock(&mu);
    pthread_cond_destroy(&c);
}

typedef struct signaller { pthread_mutex_t *mu; pthread_cond_t *c; bool *flag; } signaller;

static void *signal_main(void *data) {
    signaller *s = data;
    struct timespec t = {0, 20 * 1000000L};
    nanosleep(&t, NULL);
    pthread_mutex_lock(s->mu);
    *s->flag = true;
    pthread_cond_signal(s->c);
    pthread_mutex_unlock(s->mu);
    return NULL;
}

static void cond_signalled(void **state) {
    (void)state;
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t c;
    bool flag = false;
    assert_int_equal(zs_cond_init(&c), 0);
    signaller s = {&mu, &c, &flag};
    pthread_t t;
    pthread_mutex_lock(&mu);
    assert_int_equal(pthread_create(&t, NULL, signal_main, &s), 0);
    int64_t until = zs_clock_ms() + 60000;
    int rc = 0;
    while (!flag && (rc = zs_cond_wait_until(&c, &mu, until)) == 0) {}
    assert_true(flag);
    assert_int_equal(rc, 0);
    assert_true(zs_clock_ms() < until);
    pthread_mutex_unlock(&mu);
    pthread_join(t, NULL);
    pthread_cond_destroy(&c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(each_item_once),
        cmocka_unit_test(threads_side_by_side),
        cmocka_unit_test(pushers_side_by_side),
        cmocka_unit_test(free_drains),
        cmocka_unit_test(free_without_drain_drops),
        cmocka_unit_test(bad_arguments),
        cmocka_unit_test(cond_deadline),
        cmocka_unit_test(cond_signalled),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests for src/util/mutex.h: the mutex locks and unlocks; a timed
 * wait returns ETIMEDOUT and holds the lock again; in checked builds (no
 * NDEBUG: the sanitized build) the owner is the locking thread while it
 * holds the lock, nobody once it is unlocked or while its holder waits on
 * a condition, and another thread never sees itself as the owner. The
 * release build runs the first part only, and says so. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <time.h>

#include "util/clock.h"
#include "util/mutex.h"

typedef struct shared {
    zs_mutex mu;
    pthread_cond_t cond;
    bool waiting;   /* the main thread is in its wait */
    bool mine;      /* the other thread saw itself as the owner while it held mu */
} shared;

static void *other(void *data) {
    shared *sh = data;
    zs_mutex_lock(&sh->mu);
    while (!sh->waiting) zs_mutex_wait(&sh->cond, &sh->mu);
#ifndef NDEBUG
    sh->mine = ZS_MUTEX_HELD(&sh->mu);
#else
    sh->mine = true;
#endif
    sh->waiting = false;
    pthread_cond_broadcast(&sh->cond);
    zs_mutex_unlock(&sh->mu);
    return NULL;
}

static void test_lock_wait(void **state) {
    (void)state;
    shared sh = {0};
    zs_mutex_init(&sh.mu);
    assert_int_equal(zs_cond_init(&sh.cond), 0);

    zs_mutex_lock(&sh.mu);
#ifndef NDEBUG
    assert_true(ZS_MUTEX_HELD(&sh.mu));
#endif
    /* a deadline in the past: ETIMEDOUT at once, the lock held again */
    struct timespec past;
    clock_gettime(CLOCK_MONOTONIC, &past);
    past.tv_sec -= 1;
    assert_int_equal(zs_mutex_timedwait(&sh.cond, &sh.mu, &past), ETIMEDOUT);
#ifndef NDEBUG
    assert_true(ZS_MUTEX_HELD(&sh.mu));
#endif
    zs_mutex_unlock(&sh.mu);
#ifndef NDEBUG
    assert_false(ZS_MUTEX_HELD(&sh.mu));
#endif

    /* while the main thread waits, the other thread holds it as its own */
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, other, &sh), 0);
    zs_mutex_lock(&sh.mu);
    sh.waiting = true;
    pthread_cond_broadcast(&sh.cond);
    while (sh.waiting) zs_mutex_wait(&sh.cond, &sh.mu);
#ifndef NDEBUG
    assert_true(ZS_MUTEX_HELD(&sh.mu)); /* restored after the wait */
#endif
    zs_mutex_unlock(&sh.mu);
    pthread_join(t, NULL);
    assert_true(sh.mine);
    pthread_cond_destroy(&sh.cond);
    zs_mutex_destroy(&sh.mu);
#ifdef NDEBUG
    print_message("release build (NDEBUG): ownership is not recorded; only locking and waits were checked\n");
#endif
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lock_wait),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* mutex: a pthread mutex that knows its owner in checked builds, so that
 * code which must run with the lock held can say so in an assertion
 * (ZS_MUTEX_ASSERT_HELD), as SQLite's sqlite3_mutex_held does.
 *
 * Checked builds are those without NDEBUG (the sanitized build of
 * `make test`); there the owner is recorded at each lock and cleared at
 * each unlock, and a condition wait clears and restores it around the
 * wait. Release builds (NDEBUG) compile it to the bare mutex: no field, no
 * check.
 *
 * Ownership: the caller owns the zs_mutex (embedded in its struct).
 * Threads: any. The owner field is atomic: an assertion in a thread that
 * does not hold the lock reads it while the holder may write it. */
#ifndef ZS_MUTEX_H
#define ZS_MUTEX_H

#include <assert.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#ifndef NDEBUG
#include <stdatomic.h>
#endif

typedef struct zs_mutex {
    pthread_mutex_t mu;
#ifndef NDEBUG
    atomic_uintptr_t owner; /* the holder's pthread_self(), 0 when free */
#endif
} zs_mutex;

#ifndef NDEBUG
#define ZS_MUTEX_SELF_ ((uintptr_t)pthread_self())
/* Only in checked builds: does the calling thread hold m? */
#define ZS_MUTEX_HELD(m) (atomic_load(&(m)->owner) == ZS_MUTEX_SELF_)
#define ZS_MUTEX_ASSERT_HELD(m) assert(ZS_MUTEX_HELD(m))
#define ZS_MUTEX_ASSERT_NOT_HELD(m) assert(!ZS_MUTEX_HELD(m))
#else
#define ZS_MUTEX_ASSERT_HELD(m) ((void)0)
#define ZS_MUTEX_ASSERT_NOT_HELD(m) ((void)0)
#endif

static inline void zs_mutex_init(zs_mutex *m) {
    pthread_mutex_init(&m->mu, NULL);
#ifndef NDEBUG
    atomic_init(&m->owner, 0);
#endif
}

static inline void zs_mutex_destroy(zs_mutex *m) {
    ZS_MUTEX_ASSERT_NOT_HELD(m);
    pthread_mutex_destroy(&m->mu);
}

static inline void zs_mutex_lock(zs_mutex *m) {
    ZS_MUTEX_ASSERT_NOT_HELD(m); /* not recursive: a second lock would deadlock */
    pthread_mutex_lock(&m->mu);
#ifndef NDEBUG
    atomic_store(&m->owner, ZS_MUTEX_SELF_);
#endif
}

static inline void zs_mutex_unlock(zs_mutex *m) {
    ZS_MUTEX_ASSERT_HELD(m);
#ifndef NDEBUG
    atomic_store(&m->owner, 0);
#endif
    pthread_mutex_unlock(&m->mu);
}

/* pthread_cond_wait / pthread_cond_timedwait on m, which the caller holds;
 * the same results. */
static inline int zs_mutex_wait(pthread_cond_t *c, zs_mutex *m) {
    ZS_MUTEX_ASSERT_HELD(m);
#ifndef NDEBUG
    atomic_store(&m->owner, 0);
#endif
    int rc = pthread_cond_wait(c, &m->mu);
#ifndef NDEBUG
    atomic_store(&m->owner, ZS_MUTEX_SELF_);
#endif
    return rc;
}

static inline int zs_mutex_timedwait(pthread_cond_t *c, zs_mutex *m, const struct timespec *abstime) {
    ZS_MUTEX_ASSERT_HELD(m);
#ifndef NDEBUG
    atomic_store(&m->owner, 0);
#endif
    int rc = pthread_cond_timedwait(c, &m->mu, abstime);
#ifndef NDEBUG
    atomic_store(&m->owner, ZS_MUTEX_SELF_);
#endif
    return rc;
}

#endif

/* wake: one thread sleeps until another posts, on a futex word of its own.
 *
 * What a pthread condition costs here and this does not: a condition is
 * waited on under a mutex, and a woken thread takes that mutex again before
 * it returns. Where the waker still holds it, or other threads want it (the
 * request workers' queue, a committer job), the woken thread sleeps a
 * second time on the mutex and its holder makes a second system call to
 * wake it. A zs_wake is one word and no mutex: the waiter sleeps on the
 * word, the poster sets it and wakes the waiter only if it sleeps (no
 * system call when the post comes first). Linux futexes (the gateway is
 * Linux-only: epoll, accept4).
 *
 * A zs_wake is used by one waiter at a time and posted once per arm:
 *   zs_wake_arm (by the waiter, or before it is published) -> the waiter's
 *   zs_wake_wait, and one zs_wake_post from any thread.
 * The word's states: ZS_WAKE_ARMED (nobody sleeps), ZS_WAKE_SLEEPING (the
 * waiter sleeps or is about to), ZS_WAKE_POSTED.
 *
 * Ownership and lifetime: the word is the waiter's (on its stack, or in a
 * struct it owns). zs_wake_post reads and writes it once (the exchange) and
 * then may make the wake system call on its address after the waiter has
 * returned and freed it: the kernel only hashes a private futex's address,
 * it never touches the memory, and a waiter on a word reusing that address
 * takes it as a spurious wake (every zs_wake_wait loops on the state).
 * pthread mutexes have the same property, which is what lets POSIX destroy
 * a mutex right after its unlock.
 *
 * Memory order: everything the poster wrote before zs_wake_post is visible
 * to the waiter after zs_wake_wait returns (release / acquire on the word). */
#ifndef ZS_WAKE_H
#define ZS_WAKE_H

#include <stdatomic.h>
#include <stdint.h>

enum { ZS_WAKE_ARMED = 0, ZS_WAKE_SLEEPING = 1, ZS_WAKE_POSTED = 2 };

typedef struct zs_wake {
    _Atomic uint32_t state;
} zs_wake;

/* Ready for one wait and one post. Not while a waiter sleeps on it. */
static inline void zs_wake_arm(zs_wake *w) { atomic_store_explicit(&w->state, ZS_WAKE_ARMED, memory_order_relaxed); }

/* Whether it was posted (acquire: what the poster wrote is visible then). */
static inline int zs_wake_posted(zs_wake *w) {
    return atomic_load_explicit(&w->state, memory_order_acquire) == ZS_WAKE_POSTED;
}

/* Returns once zs_wake_post was called (at once if it was). */
void zs_wake_wait(zs_wake *w);

/* Posts: the waiter returns (or will not sleep). Once per arm. */
void zs_wake_post(zs_wake *w);

#endif

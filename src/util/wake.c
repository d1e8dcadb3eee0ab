#include "util/wake.h"

#include <assert.h>
#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

static long futex(_Atomic uint32_t *addr, int op, uint32_t val) {
    return syscall(SYS_futex, addr, op, val, NULL, NULL, 0);
}

void zs_wake_wait(zs_wake *w) {
    uint32_t s = atomic_load_explicit(&w->state, memory_order_acquire);
    while (s != ZS_WAKE_POSTED) {
        assert(s == ZS_WAKE_ARMED || s == ZS_WAKE_SLEEPING);
        /* Say that we sleep (the poster then makes the wake call); a post in
         * between fails the exchange and leaves s POSTED. */
        if (s == ZS_WAKE_ARMED &&
            !atomic_compare_exchange_weak_explicit(&w->state, &s, ZS_WAKE_SLEEPING, memory_order_acquire,
                                                   memory_order_acquire))
            continue;
        /* Sleeps only while the word is still SLEEPING (EAGAIN otherwise);
         * EINTR and spurious wakes loop. */
        (void)futex(&w->state, FUTEX_WAIT_PRIVATE, ZS_WAKE_SLEEPING);
        s = atomic_load_explicit(&w->state, memory_order_acquire);
    }
}

void zs_wake_post(zs_wake *w) {
    uint32_t was = atomic_exchange_explicit(&w->state, ZS_WAKE_POSTED, memory_order_release);
    assert(was != ZS_WAKE_POSTED); /* once per arm */
    /* The waiter may have returned and freed w by now: the call only names
     * the address (see wake.h). */
    if (was == ZS_WAKE_SLEEPING) (void)futex(&w->state, FUTEX_WAKE_PRIVATE, 1);
}

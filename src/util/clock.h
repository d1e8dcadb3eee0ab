/* clock: the monotonic clock for deadlines and durations, absolute
 * deadlines for pthread_cond_timedwait on a CLOCK_MONOTONIC condition, and
 * the helpers of a timed wait in zs_clock_ms terms: a condition made for
 * the monotonic clock, and a wait on it until a deadline. The one clock of
 * the gateway's deadlines and durations. A pthread condition's default
 * clock is CLOCK_REALTIME, which jumps with the wall clock: every condition
 * of the gateway with a timed wait is made with CLOCK_MONOTONIC
 * (zs_cond_init; mirror and zkc set the same attribute themselves), see
 * docs/ARCHITECTURE.md "Threads and locks". Pure functions (a wait blocks
 * only its caller); any thread. */
#ifndef ZS_CLOCK_H
#define ZS_CLOCK_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

/* Monotonic milliseconds, and microseconds (for latencies). */
int64_t zs_clock_ms(void);
int64_t zs_clock_us(void);
/* The CLOCK_MONOTONIC instant timeout_ms from now (negative counts as 0). */
struct timespec zs_clock_deadline(int timeout_ms);

/* pthread_cond_init with CLOCK_MONOTONIC as the condition's clock; its
 * result (0, or an error number). */
int zs_cond_init(pthread_cond_t *c);
/* With m held: waits on c (made by zs_cond_init) until it is signalled or
 * the monotonic instant deadline_ms (zs_clock_ms) passes; m is held again
 * on return. 0: woken (a signal, or spuriously: the caller checks its
 * predicate); ETIMEDOUT: the deadline passed (at once if it had); another
 * error number: pthread_cond_timedwait's. */
int zs_cond_wait_until(pthread_cond_t *c, pthread_mutex_t *m, int64_t deadline_ms);

#endif

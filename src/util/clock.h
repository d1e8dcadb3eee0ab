/* clock: the monotonic clock for deadlines and durations, and absolute
 * deadlines for pthread_cond_timedwait on a CLOCK_MONOTONIC condition.
 * Pure functions; any thread. */
#ifndef ZS_CLOCK_H
#define ZS_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Monotonic milliseconds. */
int64_t zs_clock_ms(void);
/* The CLOCK_MONOTONIC instant timeout_ms from now (negative counts as 0). */
struct timespec zs_clock_deadline(int timeout_ms);

#endif

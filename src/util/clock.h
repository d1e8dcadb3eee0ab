/* clock: the monotonic clock for deadlines and durations, and absolute
 * deadlines for pthread_cond_timedwait on a CLOCK_MONOTONIC condition.
 * The one clock of the gateway's deadlines and durations (GLib's timed
 * waits, g_cond_wait_until, keep GLib's own monotonic time, which is the
 * same clock). Pure functions; any thread. */
#ifndef ZS_CLOCK_H
#define ZS_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Monotonic milliseconds, and microseconds (for latencies). */
int64_t zs_clock_ms(void);
int64_t zs_clock_us(void);
/* The CLOCK_MONOTONIC instant timeout_ms from now (negative counts as 0). */
struct timespec zs_clock_deadline(int timeout_ms);

#endif

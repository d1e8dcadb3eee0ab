/* events: Server-Sent Events streams of a store's changes feed.
 *
 * A stream owns no queue of events: it remembers its cursor and, each time
 * the connection can take more, reads the next frame straight from the
 * store's mirror (at most EVENTS_FRAME_CHANGES changes or about
 * EVENTS_FRAME_BYTES). So memory per stream is bounded by one frame whatever
 * the reader's speed; a slow reader simply lags and catches up. When the
 * mirror's watermark advances, the streams of that store are woken; when
 * nothing is sent for keepalive_ms, a ": keepalive" comment is. An idle
 * stream costs no thread and no timer of its own (one ticker thread serves
 * all streams). A stream's own state (cursor, frame) is touched by one
 * thread at a time (http_stream_ops: attach, then read and done on the
 * thread writing the stream); streams on different threads read at once,
 * and what they share (the registry, the caps) is under events.mu.
 *
 * Locks: events.mu (the registry) is taken before a stream's wake lock, never
 * after; a stream's read takes only the mirror's lock. */
#ifndef ZS_HTTP_EVENTS_H
#define ZS_HTTP_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "cache/mirror.h"
#include "http/server.h"
#include "cache/cursor.h"
#include "util/log.h"

#define EVENTS_FRAME_CHANGES 200
#define EVENTS_FRAME_BYTES (256 * 1024)

typedef struct events events;

/* Registers on the mirror set's advance hook and starts the ticker. At
 * most max_streams streams are open at once. */
events *events_new(mirror_set *ms, int keepalive_ms, size_t max_streams, const zs_log *lg);
/* After httpd_stop (no stream left). */
void events_free(events *e);

/* Fairness caps (0: none): streams per token subject and per client
 * address. Call before the first events_start. */
void events_set_caps(events *e, size_t per_sub, size_t per_addr);
/* Turns resp into a stream of m's changes after *since (NULL: first every
 * live record, then live changes) of the keys in filter (NULL: all; copied),
 * registered by the filter's prefixes so that only matching changes wake
 * it, or into 429 too_many_requests (with
 * Retry-After) when max_streams are open, or sub (NULL: not counted) or
 * addr ("" or NULL: not counted) holds its cap. At expires_ms (monotonic,
 * zs_clock_ms; 0: never), the token's exp, the stream sends
 * "event: reauth" with {"error":"token_expired"} and ends (within the
 * ticker's step, at most a second). */
void events_start(events *e, mirror *m, const cursor_pos *since, const mirror_filter *filter, const char *sub,
                  const char *addr, int64_t expires_ms, http_resp *resp);
size_t events_count(events *e);
/* Open (attached) streams of one store, for /metrics. */
typedef struct events_store_count {
    const char *store; /* mirror_store(): the mirror's, valid while the mirror set lives */
    size_t streams;
} events_store_count;
/* A snapshot of the stores with open streams, taken under events.mu. Returns
 * the count and *out (malloc'd, caller frees; NULL when none or out of
 * memory). Any thread. */
size_t events_store_counts(events *e, events_store_count **out);
/* Streams woken by watermark advances so far (a stream woken for two keys
 * counts twice), for /metrics: shows that a change wakes only the streams
 * whose prefix matches. */
unsigned long long events_wakes(events *e);

#endif

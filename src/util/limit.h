/* limit: token buckets per subject (a token's sub, or a client address),
 * for request rate limits (--rate-limit) and write budgets
 * (--write-bytes-per-sec, --write-mutations-per-sec).
 *
 * Each subject has a bucket of `burst` tokens refilled at `rate` per
 * second. A take of `cost` passes when the bucket holds min(cost, burst)
 * tokens, and then removes cost: a cost larger than the burst passes from a
 * full bucket and leaves it in debt, so nothing is refused for ever and the
 * long-run rate still holds.
 *
 * At most ZS_LIMIT_SUBJECTS subjects are tracked. When the table is full,
 * the subjects whose bucket has refilled (idle ones, as good as new) are
 * dropped, at most once a second; when none has, new subjects are refused
 * (fail closed: the gateway is then under a flood of distinct subjects).
 *
 * Owns its table; every call is thread-safe (one mutex, held for a hash
 * lookup). The clock is passed in, so tests need no sleeping. */
#ifndef ZS_LIMIT_H
#define ZS_LIMIT_H

#include <stdbool.h>
#include <stdint.h>

#define ZS_LIMIT_SUBJECTS 100000

typedef struct zs_limit zs_limit;

/* rate > 0 tokens per second, burst >= rate; or rate 0: off (every take
 * passes) until zs_limit_set. */
zs_limit *zs_limit_new(double rate, double burst);
/* Changes the rate and burst (as above) for later takes; buckets keep their
 * tokens, at most the new burst. 0: off, and the table is emptied. */
void zs_limit_set(zs_limit *l, double rate, double burst);
double zs_limit_rate(zs_limit *l);
void zs_limit_free(zs_limit *l);

/* Takes cost (>= 0) tokens from subject's bucket at now_ms (monotonic).
 * True when allowed; false with *retry_s, the whole seconds (>= 1, at most
 * 86400) after which the same take would pass. */
bool zs_limit_take(zs_limit *l, const char *subject, double cost, int64_t now_ms, int *retry_s);
/* Gives back tokens taken (a later check refused the request). */
void zs_limit_refund(zs_limit *l, const char *subject, double cost);
/* Subjects tracked now. */
unsigned zs_limit_subjects(zs_limit *l);

#endif

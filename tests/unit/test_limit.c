/* Unit tests for src/util/limit.c: burst, refill, Retry-After, a cost
 * larger than the burst (debt), refunds, subjects kept apart, and the
 * bounded table (idle subjects dropped; fail closed when none is idle), and
 * the rate turned off, on and changed live (SIGHUP). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "util/limit.h"

static void burst_then_refill(void **state) {
    (void)state;
    zs_limit *l = zs_limit_new(10, 20);
    int retry = 0;
    for (int i = 0; i < 20; i++) assert_true(zs_limit_take(l, "alice", 1, 1000, &retry));
    assert_false(zs_limit_take(l, "alice", 1, 1000, &retry));
    assert_int_equal(retry, 1);
    /* 100 ms later: one token back. */
    assert_true(zs_limit_take(l, "alice", 1, 1100, &retry));
    assert_false(zs_limit_take(l, "alice", 1, 1100, &retry));
    /* Others are not affected. */
    assert_true(zs_limit_take(l, "bob", 20, 1100, &retry));
    /* 10 s later the bucket is full again, never more than the burst. */
    for (int i = 0; i < 20; i++) assert_true(zs_limit_take(l, "alice", 1, 11100, &retry));
    assert_false(zs_limit_take(l, "alice", 1, 11100, &retry));
    zs_limit_free(l);
}

static void retry_after_in_whole_seconds(void **state) {
    (void)state;
    zs_limit *l = zs_limit_new(2, 4);
    int retry = 0;
    assert_true(zs_limit_take(l, "s", 4, 0, &retry));
    assert_false(zs_limit_take(l, "s", 3, 0, &retry));
    assert_int_equal(retry, 2); /* 3 tokens at 2/s: 1.5 s, rounded up */
    assert_false(zs_limit_take(l, "s", 3, 1499, &retry));
    assert_true(zs_limit_take(l, "s", 3, 1500, &retry));
    zs_limit_free(l);
}

static void larger_than_burst_passes_full_bucket_and_leaves_debt(void **state) {
    (void)state;
    zs_limit *l = zs_limit_new(100, 200);
    int retry = 0;
    assert_true(zs_limit_take(l, "s", 1000, 0, &retry)); /* full: passes, tokens -800 */
    assert_false(zs_limit_take(l, "s", 1, 0, &retry));
    assert_int_equal(retry, 9); /* from -800 to 1: 8.01 s */
    assert_false(zs_limit_take(l, "s", 1000, 9000, &retry)); /* 100 of the 200 it needs */
    assert_int_equal(retry, 1);
    assert_true(zs_limit_take(l, "s", 1000, 10000, &retry));
    zs_limit_free(l);
}

static void refund(void **state) {
    (void)state;
    zs_limit *l = zs_limit_new(1, 5);
    int retry = 0;
    assert_true(zs_limit_take(l, "s", 5, 0, &retry));
    zs_limit_refund(l, "s", 3);
    assert_true(zs_limit_take(l, "s", 3, 0, &retry));
    assert_false(zs_limit_take(l, "s", 1, 0, &retry));
    zs_limit_refund(l, "s", 100); /* never past the burst */
    assert_true(zs_limit_take(l, "s", 5, 0, &retry));
    assert_false(zs_limit_take(l, "s", 1, 0, &retry));
    zs_limit_refund(l, "unknown", 1); /* no-op */
    zs_limit_free(l);
}

static void bounded_table(void **state) {
    (void)state;
    zs_limit *l = zs_limit_new(1, 1);
    int retry = 0;
    char name[32];
    for (int i = 0; i < ZS_LIMIT_SUBJECTS; i++) {
        snprintf(name, sizeof name, "s%d", i);
        assert_true(zs_limit_take(l, name, 1, 0, &retry));
    }
    assert_int_equal(zs_limit_subjects(l), ZS_LIMIT_SUBJECTS);
    /* Full and nobody idle: a new subject is refused. */
    assert_false(zs_limit_take(l, "new", 1, 0, &retry));
    assert_int_equal(retry, 1);
    /* A known one is still served by its bucket. */
    assert_false(zs_limit_take(l, "s7", 1, 0, &retry));
    /* One second on, every bucket is full again: the idle are dropped, the new one tracked. */
    assert_true(zs_limit_take(l, "new", 1, 1000, &retry));
    assert_int_equal(zs_limit_subjects(l), 1);
    zs_limit_free(l);
}

/* Rate 0 is off (every take passes, nothing tracked); zs_limit_set turns
 * it on, lowers it (buckets cut to the new burst) and off again. */
static void off_and_changed_live(void **state) {
    (void)state;
    zs_limit *l = zs_limit_new(0, 0);
    int retry = 0;
    for (int i = 0; i < 1000; i++) assert_true(zs_limit_take(l, "alice", 1, 1000, &retry));
    assert_int_equal(zs_limit_subjects(l), 0);
    zs_limit_set(l, 10, 20);
    assert_true(zs_limit_rate(l) == 10);
    for (int i = 0; i < 20; i++) assert_true(zs_limit_take(l, "alice", 1, 2000, &retry));
    assert_false(zs_limit_take(l, "alice", 1, 2000, &retry));
    zs_limit_set(l, 1, 2); /* a full bucket is cut to the new burst */
    assert_true(zs_limit_take(l, "bob", 2, 2000, &retry));
    assert_false(zs_limit_take(l, "bob", 1, 2000, &retry));
    assert_int_equal(retry, 1);
    zs_limit_set(l, 0, 0);
    assert_int_equal(zs_limit_subjects(l), 0);
    assert_true(zs_limit_take(l, "bob", 100, 2000, &retry));
    zs_limit_free(l);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(burst_then_refill),
        cmocka_unit_test(retry_after_in_whole_seconds),
        cmocka_unit_test(larger_than_burst_passes_full_bucket_and_leaves_debt),
        cmocka_unit_test(refund),
        cmocka_unit_test(bounded_table),
        cmocka_unit_test(off_and_changed_live),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

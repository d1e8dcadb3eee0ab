/* Unit tests for commit_lay_out (src/sync/commit.c): how the group
 * committer turns its callers' ops into one multi. Every op keeps its
 * place and order; an identical version check (same path, same version) of
 * a later caller is sent once and maps to the first; a check is never
 * shared across a write of its path, nor between different versions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include <string.h>

#include "sync/commit.h"

#define MAXOPS 32

typedef struct laid {
    zoo_op_t ops[MAXOPS];
    int where[MAXOPS];
    int placed;
} laid;

static laid lay(const commit_part *parts, int n) {
    laid l;
    memset(&l, 0, sizeof l);
    int total = 0;
    for (int i = 0; i < n; i++) total += parts[i].n;
    assert_true(total <= MAXOPS);
    for (int k = 0; k < MAXOPS; k++) l.where[k] = -7;
    l.placed = commit_lay_out(parts, n, l.ops, l.where);
    assert_true(l.placed >= 0 && l.placed <= total);
    for (int k = 0; k < total; k++) assert_true(l.where[k] >= 0 && l.where[k] < l.placed);
    return l;
}

/* A push as the push path builds it: its record, its client node, the
 * store config check. */
static void push_ops(zoo_op_t *o, const char *rec, const char *client, const char *cfg, int cfg_version) {
    zoo_set_op_init(&o[0], rec, "v", 1, 3, NULL);
    zoo_set_op_init(&o[1], client, "c", 1, 5, NULL);
    zoo_check_op_init(&o[2], cfg, cfg_version);
}

static void shared_config_check(void **state) {
    (void)state;
    zoo_op_t a[3], b[3], c[3];
    push_ops(a, "/r/s/a", "/r/c/1", "/r/stores/s", 4);
    push_ops(b, "/r/s/b", "/r/c/2", "/r/stores/s", 4);
    push_ops(c, "/r/s/c", "/r/c/3", "/r/stores/s", 4);
    commit_part parts[] = {{a, 3}, {b, 3}, {c, 3}};
    laid l = lay(parts, 3);
    assert_int_equal(l.placed, 7); /* 3 x 2 writes and one check */
    /* the writes keep their order, the check sits where the first caller had it */
    int want[9] = {0, 1, 2, 3, 4, 2, 5, 6, 2};
    for (int k = 0; k < 9; k++) assert_int_equal(l.where[k], want[k]);
    assert_int_equal(l.ops[2].type, ZOO_CHECK_OP);
    assert_string_equal(l.ops[2].check_op.path, "/r/stores/s");
    assert_int_equal(l.ops[2].check_op.version, 4);
    assert_string_equal(l.ops[3].set_op.path, "/r/s/b");
    assert_string_equal(l.ops[6].set_op.path, "/r/c/3");
}

static void different_stores_or_versions_are_not_shared(void **state) {
    (void)state;
    zoo_op_t a[3], b[3], c[3];
    push_ops(a, "/r/s/a", "/r/c/1", "/r/stores/s", 4);
    push_ops(b, "/r/t/b", "/r/c/2", "/r/stores/t", 4); /* another store */
    push_ops(c, "/r/s/c", "/r/c/3", "/r/stores/s", 5); /* judged under a newer config */
    commit_part parts[] = {{a, 3}, {b, 3}, {c, 3}};
    laid l = lay(parts, 3);
    assert_int_equal(l.placed, 9);
    for (int k = 0; k < 9; k++) assert_int_equal(l.where[k], k);
}

static void a_write_of_the_path_ends_the_sharing(void **state) {
    (void)state;
    zoo_op_t a[3], w[1], b[3], d[3];
    push_ops(a, "/r/s/a", "/r/c/1", "/r/stores/s", 4);
    zoo_set_op_init(&w[0], "/r/stores/s", "{}", 2, 4, NULL); /* a caller rewriting the config */
    push_ops(b, "/r/s/b", "/r/c/2", "/r/stores/s", 4);
    push_ops(d, "/r/s/d", "/r/c/4", "/r/stores/s", 4);
    commit_part parts[] = {{a, 3}, {w, 1}, {b, 3}, {d, 3}};
    laid l = lay(parts, 4);
    /* b's check comes after the write: it is sent (and fails in ZooKeeper,
     * as it would alone); d's check may share b's, placed after the write */
    assert_int_equal(l.placed, 9);
    assert_int_equal(l.where[2], 2);
    assert_int_equal(l.where[3], 3);
    assert_int_equal(l.where[6], 6);
    assert_int_equal(l.where[9], 6);
    assert_int_equal(l.ops[6].type, ZOO_CHECK_OP);
}

static void record_checks_are_shared_only_when_identical(void **state) {
    (void)state;
    zoo_op_t a[2], b[2];
    zoo_check_op_init(&a[0], "/r/s/k", 7);
    zoo_set_op_init(&a[1], "/r/c/1", "c", 1, 1, NULL);
    zoo_check_op_init(&b[0], "/r/s/k", 7);
    zoo_delete_op_init(&b[1], "/r/s/k", 7); /* b deletes what it checked */
    commit_part parts[] = {{a, 2}, {b, 2}};
    laid l = lay(parts, 2);
    assert_int_equal(l.placed, 3);
    assert_int_equal(l.where[2], 0);
    assert_int_equal(l.where[3], 2);
    assert_int_equal(l.ops[2].type, ZOO_DELETE_OP);
}

static void empty_and_single(void **state) {
    (void)state;
    laid l = lay(NULL, 0);
    assert_int_equal(l.placed, 0);
    zoo_op_t a[3];
    push_ops(a, "/r/s/a", "/r/c/1", "/r/stores/s", 4);
    commit_part one[] = {{a, 3}};
    l = lay(one, 1);
    assert_int_equal(l.placed, 3);
    for (int k = 0; k < 3; k++) assert_int_equal(l.where[k], k);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(shared_config_check),
        cmocka_unit_test(different_stores_or_versions_are_not_shared),
        cmocka_unit_test(a_write_of_the_path_ends_the_sharing),
        cmocka_unit_test(record_checks_are_shared_only_when_identical),
        cmocka_unit_test(empty_and_single),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

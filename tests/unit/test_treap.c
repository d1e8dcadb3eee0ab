/* Unit tests for src/util/treap.c: random inserts and removals checked
 * against a plain sorted array after every 50 steps: the
 * invariants (order, heap on address priorities, parent links, count), an
 * in-order walk, lower and upper bounds of present and absent keys; and a
 * sequential load stays shallow. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "util/treap.h"

typedef struct item {
    int key;
    treap_node node;
} item;

static int item_cmp(const treap_node *a, const treap_node *b, void *ctx) {
    (void)ctx;
    int x = TREAP_ENTRY(a, item, node)->key, y = TREAP_ENTRY(b, item, node)->key;
    return (x > y) - (x < y);
}

static int item_vs(const treap_node *n, const void *probe) {
    int x = TREAP_ENTRY(n, item, node)->key, y = *(const int *)probe;
    return (x > y) - (x < y);
}

static int key_of(const treap_node *n) { return n ? TREAP_ENTRY(n, item, node)->key : -1; }

enum { KEYS = 600 };

/* present[k]: the item holding key k, or NULL. */
static void check_against(const treap *t, item *const *present) {
    assert_true(treap_check(t));
    size_t n = 0;
    const treap_node *w = treap_first(t);
    for (int k = 0; k < KEYS; k++) {
        if (!present[k]) continue;
        n++;
        assert_non_null(w);
        assert_int_equal(key_of(w), k);
        assert_ptr_equal(w, &present[k]->node);
        w = treap_next(w);
    }
    assert_null(w);
    assert_int_equal(n, t->count);
    /* Bounds of every key, present or not (and one past the end). */
    for (int k = -1; k <= KEYS; k += 7) {
        int lo = -1, hi = -1;
        for (int j = k < 0 ? 0 : k; j < KEYS; j++)
            if (present[j]) { lo = j; break; }
        for (int j = k + 1 < 0 ? 0 : k + 1; j < KEYS; j++)
            if (present[j]) { hi = j; break; }
        assert_int_equal(key_of(treap_lower_bound(t, item_vs, &k)), lo);
        assert_int_equal(key_of(treap_upper_bound(t, item_vs, &k)), hi);
    }
}

static void random_against_array(void **state) {
    (void)state;
    treap t;
    treap_init(&t, item_cmp, NULL);
    item *present[KEYS] = {0};
    assert_null(treap_first(&t));
    srand(12345);
    for (int step = 0; step < 6000; step++) {
        int k = rand() % KEYS;
        if (!present[k]) {
            item *it = malloc(sizeof *it);
            assert_non_null(it);
            it->key = k;
            treap_insert(&t, &it->node);
            present[k] = it;
        } else {
            treap_remove(&t, &present[k]->node);
            free(present[k]);
            present[k] = NULL;
        }
        if (step % 50 == 0) check_against(&t, present);
    }
    check_against(&t, present);
    for (int k = 0; k < KEYS; k++) {
        if (!present[k]) continue;
        treap_remove(&t, &present[k]->node);
        free(present[k]);
        present[k] = NULL;
    }
    assert_int_equal(t.count, 0);
    assert_null(t.root);
}

static int depth(const treap_node *n) {
    if (!n) return 0;
    int l = depth(n->left), r = depth(n->right);
    return 1 + (l > r ? l : r);
}

/* Sorted insertion (a feed loaded in zxid order) does not degenerate. */
static void sequential_stays_shallow(void **state) {
    (void)state;
    enum { N = 100000 };
    item *v = calloc(N, sizeof *v);
    assert_non_null(v);
    treap t;
    treap_init(&t, item_cmp, NULL);
    for (int i = 0; i < N; i++) {
        v[i].key = i;
        treap_insert(&t, &v[i].node);
    }
    assert_true(treap_check(&t));
    int d = depth(t.root);
    assert_true(d < 80); /* log2(100,000) is 17; a random BST's expected height is ~4.3 ln n = 50 */
    for (int i = 0; i < N; i += 2) treap_remove(&t, &v[i].node);
    assert_true(treap_check(&t));
    assert_int_equal(t.count, N / 2);
    free(v);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(random_against_array),
        cmocka_unit_test(sequential_stays_shallow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* treap: an intrusive ordered set (a randomized balanced binary search
 * tree) whose node is embedded in the caller's element, so an element in a
 * tree costs three pointers and no allocation of its own (GLib's GTree
 * allocates a 40-byte node, 48 with malloc's header, per element).
 *
 * Balance: each node's priority is a hash of its address (no field); a
 * treap is a heap on priorities and a search tree on keys, so its shape is
 * that of a random binary search tree whatever the order of insertion:
 * expected depth about 1.39 log2 n (28 for a million elements). Insert and
 * remove are O(log n) expected, next O(1) amortized (parent pointers).
 *
 * Order: cmp(a, b, ctx) over nodes, < 0, 0 or > 0. Elements of one tree
 * must be distinct under cmp (an insert of an equal element is a caller
 * bug: asserted). Lookups take a probe (any value: a key, a position) and
 * a function placing a node against it, consistent with cmp: lower bound
 * (the first node >= probe) and upper bound (the first node > probe).
 *
 * Ownership: the tree owns nothing; elements live as long as their owner
 * keeps them, and must be removed before they are freed or moved.
 * Threads: none of its own; the caller's lock guards a tree and its nodes.
 * Pure data structure: no allocation, no global state. */
#ifndef ZS_TREAP_H
#define ZS_TREAP_H

#include <stdbool.h>
#include <stddef.h>

typedef struct treap_node {
    struct treap_node *left, *right, *parent;
} treap_node;

typedef int (*treap_cmp)(const treap_node *a, const treap_node *b, void *ctx);
/* Node n against a probe: < 0, 0 or > 0, in the tree's order. */
typedef int (*treap_probe_cmp)(const treap_node *n, const void *probe);

typedef struct treap {
    treap_node *root;
    size_t count;
    treap_cmp cmp;
    void *ctx;
} treap;

static inline void treap_init(treap *t, treap_cmp cmp, void *ctx) {
    t->root = NULL;
    t->count = 0;
    t->cmp = cmp;
    t->ctx = ctx;
}

/* Inserts n (not in any tree; equal to no element of t). */
void treap_insert(treap *t, treap_node *n);
/* Removes n (an element of t); n's links are cleared. */
void treap_remove(treap *t, treap_node *n);

treap_node *treap_first(const treap *t);
/* The element after n in order, or NULL. */
treap_node *treap_next(const treap_node *n);
/* The first element not below probe (cmp >= 0), or NULL. */
treap_node *treap_lower_bound(const treap *t, treap_probe_cmp vs, const void *probe);
/* The first element above probe (cmp > 0), or NULL. */
treap_node *treap_upper_bound(const treap *t, treap_probe_cmp vs, const void *probe);

/* Checks every invariant (order, heap, parent links, count); for tests.
 * Returns true when they hold. O(n) stack depth of the tree's height. */
bool treap_check(const treap *t);

/* The element holding node n (n non-NULL), as container_of. */
#define TREAP_ENTRY(n, type, member) ((type *)(void *)((char *)(n) - offsetof(type, member)))

#endif

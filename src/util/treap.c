#include "util/treap.h"

#include <assert.h>
#include <stdint.h>

/* A node's priority: a bijective mix (murmur3's finalizer) of its address,
 * so distinct nodes never tie and the priorities look random whatever the
 * allocator's order. */
static uint64_t prio(const treap_node *n) {
    uint64_t x = (uint64_t)(uintptr_t)n;
    x ^= x >> 33;
    x *= UINT64_C(0xff51afd7ed558ccd);
    x ^= x >> 33;
    x *= UINT64_C(0xc4ceb9fe1a85ec53);
    x ^= x >> 33;
    return x;
}

/* Makes x's parent p point to x's replacement c (or the root). */
static void relink_parent(treap *t, treap_node *p, treap_node *x, treap_node *c) {
    if (!p) t->root = c;
    else if (p->left == x) p->left = c;
    else p->right = c;
}

/* Rotates x above its parent (order kept). */
static void rotate_up(treap *t, treap_node *x) {
    treap_node *p = x->parent, *g = p->parent;
    if (p->left == x) {
        p->left = x->right;
        if (x->right) x->right->parent = p;
        x->right = p;
    } else {
        p->right = x->left;
        if (x->left) x->left->parent = p;
        x->left = p;
    }
    p->parent = x;
    x->parent = g;
    relink_parent(t, g, p, x);
}

void treap_insert(treap *t, treap_node *n) {
    treap_node *p = NULL, **at = &t->root;
    while (*at) {
        p = *at;
        int c = t->cmp(n, p, t->ctx);
        assert(c != 0 && "treap: equal elements");
        at = c < 0 ? &p->left : &p->right;
    }
    n->left = n->right = NULL;
    n->parent = p;
    *at = n;
    t->count++;
    uint64_t pn = prio(n);
    while (n->parent && pn > prio(n->parent)) rotate_up(t, n);
}

void treap_remove(treap *t, treap_node *n) {
    assert(t->count > 0);
    /* Down to a leaf, rotating up the child of higher priority. */
    while (n->left || n->right) {
        treap_node *c = !n->left ? n->right : !n->right ? n->left : prio(n->left) > prio(n->right) ? n->left : n->right;
        rotate_up(t, c);
    }
    relink_parent(t, n->parent, n, NULL);
    n->parent = NULL;
    t->count--;
}

static treap_node *leftmost(treap_node *n) {
    while (n && n->left) n = n->left;
    return n;
}

treap_node *treap_first(const treap *t) { return leftmost(t->root); }

treap_node *treap_next(const treap_node *n) {
    if (n->right) return leftmost(n->right);
    while (n->parent && n->parent->right == n) n = n->parent;
    return n->parent;
}

treap_node *treap_lower_bound(const treap *t, treap_probe_cmp vs, const void *probe) {
    treap_node *best = NULL, *n = t->root;
    while (n) {
        if (vs(n, probe) >= 0) {
            best = n;
            n = n->left;
        } else {
            n = n->right;
        }
    }
    return best;
}

treap_node *treap_upper_bound(const treap *t, treap_probe_cmp vs, const void *probe) {
    treap_node *best = NULL, *n = t->root;
    while (n) {
        if (vs(n, probe) > 0) {
            best = n;
            n = n->left;
        } else {
            n = n->right;
        }
    }
    return best;
}

static bool check_node(const treap *t, const treap_node *n, const treap_node *parent, size_t *count) {
    if (!n) return true;
    if (n->parent != parent) return false;
    if (parent && prio(n) > prio(parent)) return false;
    if (n->left && t->cmp(n->left, n, t->ctx) >= 0) return false;
    if (n->right && t->cmp(n->right, n, t->ctx) <= 0) return false;
    (*count)++;
    return check_node(t, n->left, n, count) && check_node(t, n->right, n, count);
}

bool treap_check(const treap *t) {
    size_t count = 0;
    if (!check_node(t, t->root, NULL, &count) || count != t->count) return false;
    /* In-order walk: strictly increasing. */
    const treap_node *prev = NULL;
    for (const treap_node *n = treap_first(t); n; n = treap_next(n)) {
        if (prev && t->cmp(prev, n, t->ctx) >= 0) return false;
        prev = n;
    }
    return true;
}

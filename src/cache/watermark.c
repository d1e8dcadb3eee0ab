#include "cache/watermark.h"

#include <assert.h>

/* Pending checkpoints are cps[head..len). */
static wm_cp *tail(wm *q) { return &g_array_index(q->cps, wm_cp, q->cps->len - 1); }
static bool any_pending(const wm *q) { return q->cps->len > q->head; }

void wm_init(wm *q) {
    q->enq = q->done = 0;
    q->cps = g_array_new(FALSE, FALSE, sizeof(wm_cp));
    q->head = 0;
    q->w = 0;
}

void wm_destroy(wm *q) {
    if (q->cps) g_array_free(q->cps, TRUE);
    q->cps = NULL;
}

uint64_t wm_enqueue(wm *q) { return ++q->enq; }

void wm_answered(wm *q, uint64_t n) {
    q->done += n;
    assert(q->done <= q->enq); /* an answered read was queued */
}

/* Resolves the checkpoints whose reads are all answered. */
static bool resolve(wm *q) {
    uint64_t w0 = q->w;
    assert(q->done <= q->enq); /* an answered read was queued */
    while (q->head < q->cps->len) {
        wm_cp *c = &g_array_index(q->cps, wm_cp, q->head);
        if (c->need > q->done) break;
        if (c->zxid > q->w) q->w = c->zxid;
        q->head++;
    }
    if (q->head == q->cps->len) {
        g_array_set_size(q->cps, 0);
        q->head = 0;
    } else if (q->head > 1024 && q->head * 2 > q->cps->len) {
        g_array_remove_range(q->cps, 0, q->head);
        q->head = 0;
    }
    assert(q->w >= w0); /* W never goes back */
    /* what is left waits for reads not answered yet */
    assert(!any_pending(q) || g_array_index(q->cps, wm_cp, q->head).need > q->done);
    return q->w != w0;
}

bool wm_checkpoint(wm *q, uint64_t zxid) {
    wm_cp c = {q->enq, zxid};
    /* Needs grow along the queue: a checkpoint whose need is not above an
     * older one's only moves W further; fold the tail (keeps it short). */
    while (any_pending(q)) {
        wm_cp *b = tail(q);
        if (b->need < c.need) break;
        if (b->zxid > c.zxid) c.zxid = b->zxid;
        g_array_set_size(q->cps, q->cps->len - 1);
    }
    /* the queue of checkpoints: needs strictly increasing */
    assert(!any_pending(q) || tail(q)->need < c.need);
    g_array_append_val(q->cps, c);
    return resolve(q);
}

/* Every checkpoint that waits for seq (need >= seq) waits for what it
 * caused too, transitively: raise them to everything queued now. Needs grow
 * along the queue, so they are its tail; fold them into one. */
void wm_caused(wm *q, uint64_t seq) {
    assert(seq <= q->enq);
    assert(seq > q->done); /* seq is being handled: not counted yet */
    wm_cp c = {q->enq, 0};
    bool any = false;
    while (any_pending(q)) {
        wm_cp *b = tail(q);
        if (b->need < seq) break;
        if (b->zxid > c.zxid) c.zxid = b->zxid;
        g_array_set_size(q->cps, q->cps->len - 1);
        any = true;
    }
    if (any) g_array_append_val(q->cps, c);
    assert(!any_pending(q) || tail(q)->need <= q->enq);
}

void wm_reset(wm *q) {
    g_array_set_size(q->cps, 0);
    q->head = 0;
    q->done = 0;
    q->enq = 0;
}

uint64_t wm_value(const wm *q) { return q->w; }
uint64_t wm_queued(const wm *q) { return q->enq; }
uint64_t wm_done(const wm *q) { return q->done; }
size_t wm_pending(const wm *q) { return q->cps->len - q->head; }

bool wm_valid(const wm *q) {
    if (q->done > q->enq || q->head > q->cps->len) return false;
    uint64_t prev = 0;
    for (guint i = q->head; i < q->cps->len; i++) {
        const wm_cp *c = &g_array_index(q->cps, wm_cp, i);
        if (c->need > q->enq || (i > q->head && c->need <= prev)) return false;
        prev = c->need;
    }
    return true;
}

/* Unit tests for src/cache/watermark.c: the read accounting behind the
 * watermark W (docs/ARCHITECTURE.md, "The watermark W" and "Disconnects").
 * Each test drives the queue the way mirror.c does (reads queued, batches
 * answered in queue order, a checkpoint after each reply is handled, reads
 * caused by a reply's results, a disconnect) through one interleaving the
 * argument depends on, and fails when the queue breaks it. The last one
 * runs random interleavings against two models: W must be exactly what the
 * queue's own rule allows, and every checkpoint resolved must have its
 * explicit set of reads (those queued before it and, transitively, those
 * they caused) answered. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cache/watermark.h"

/* A batch of n reads answered, then its reply's checkpoint at zxid z (what
 * batch_done does for a reply that parses). Returns whether W moved. */
static bool reply(wm *q, uint64_t n, uint64_t z) {
    wm_answered(q, n);
    bool moved = wm_checkpoint(q, z);
    assert_true(wm_valid(q));
    return moved;
}

static void enqueue_n(wm *q, unsigned n) {
    for (unsigned i = 0; i < n; i++) wm_enqueue(q);
}

/* Reads are numbered in queue order, from 1; W starts at 0. */
static void test_numbering(void **state) {
    (void)state;
    wm q;
    wm_init(&q);
    assert_int_equal(wm_value(&q), 0);
    assert_int_equal(wm_enqueue(&q), 1);
    assert_int_equal(wm_enqueue(&q), 2);
    assert_int_equal(wm_queued(&q), 2);
    assert_int_equal(wm_done(&q), 0);
    assert_int_equal(wm_pending(&q), 0);
    assert_true(wm_valid(&q));
    wm_destroy(&q);
}

/* Step 2: the events received before reply j queued their reads before
 * j's checkpoint, so W reaches Z_j only once those reads are answered,
 * even when they were queued after the reads j answered. */
static void test_checkpoint_waits_for_reads_queued_before_it(void **state) {
    (void)state;
    wm q;
    wm_init(&q);
    enqueue_n(&q, 2);                /* reads 1-2 sent as a batch */
    enqueue_n(&q, 1);                /* an event (change <= 100) queues read 3 */
    assert_false(reply(&q, 2, 100)); /* the batch's reply: Z = 100, need 3 */
    assert_int_equal(wm_value(&q), 0);
    assert_int_equal(wm_pending(&q), 1);
    assert_true(reply(&q, 1, 105)); /* read 3 answered */
    assert_int_equal(wm_value(&q), 105);
    assert_int_equal(wm_pending(&q), 0);
    wm_destroy(&q);
}

/* Reads in flight (sent in another batch, not answered) hold W back: a
 * reply of an earlier batch, or a sync's reply, cannot move W past them. */
static void test_reads_in_flight_hold_w_back(void **state) {
    (void)state;
    wm q;
    wm_init(&q);
    enqueue_n(&q, 4);                /* batch A = reads 1-2, batch B = reads 3-4, both sent */
    assert_false(reply(&q, 2, 100)); /* A answered: B is in flight */
    assert_int_equal(wm_value(&q), 0);
    assert_false(wm_checkpoint(&q, 120)); /* a catch-up sync's reply (no reads answered) */
    assert_int_equal(wm_value(&q), 0);
    assert_true(reply(&q, 2, 130)); /* B answered */
    assert_int_equal(wm_value(&q), 130);
    wm_destroy(&q);
}

/* A sync's checkpoint alone moves W when nothing is queued or in flight
 * (mirror_catch_up on an idle mirror). */
static void test_sync_on_idle_queue(void **state) {
    (void)state;
    wm q;
    wm_init(&q);
    enqueue_n(&q, 1);
    assert_true(reply(&q, 1, 10));
    assert_true(wm_checkpoint(&q, 50));
    assert_int_equal(wm_value(&q), 50);
    assert_false(wm_checkpoint(&q, 50)); /* the same zxid again: W does not "move" */
    wm_destroy(&q);
}

/* Reads queued after a checkpoint (events of changes after Z_j) do not
 * hold it back: W moves under a steady stream of events. */
static void test_later_reads_do_not_hold_w_back(void **state) {
    (void)state;
    wm q;
    wm_init(&q);
    uint64_t z = 100;
    enqueue_n(&q, 1);
    for (int i = 0; i < 50; i++) {
        enqueue_n(&q, 1); /* the next event arrives while a read is in flight */
        reply(&q, 1, z);   /* the previous read answered: its checkpoint needs the new read */
        /* W lags by exactly one reply: the one whose read is in flight */
        assert_int_equal(wm_value(&q), i == 0 ? 0 : z - 10);
        z += 10;
    }
    assert_int_equal(wm_pending(&q), 1);
    reply(&q, 1, z);
    assert_int_equal(wm_value(&q), z);
    wm_destroy(&q);
}

/* Checkpoints resolve in order; answering many reads at once resolves
 * every checkpoint they satisfy, and W is the highest of their zxids. */
static void test_checkpoints_resolve_in_order(void **state) {
    (void)state;
    wm q;
    wm_init(&q);
    enqueue_n(&q, 2);
    assert_false(wm_checkpoint(&q, 100)); /* need 2 */
    enqueue_n(&q, 3);
    assert_false(wm_checkpoint(&q, 200)); /* need 5 */
    enqueue_n(&q, 1);
    assert_false(wm_checkpoint(&q, 300)); /* need 6 */
    assert_int_equal(wm_pending(&q), 3);
    wm_answered(&q, 3);
    assert_true(wm_checkpoint(&q, 310)); /* need 6 again: folds into the last */
    assert_int_equal(wm_value(&q), 100); /* only the first is satisfied */
    wm_answered(&q, 2);
    assert_true(wm_checkpoint(&q, 320));
    assert_int_equal(wm_value(&q), 200);
    wm_answered(&q, 1);
    assert_true(wm_checkpoint(&q, 330));
    assert_int_equal(wm_value(&q), 330);
    assert_int_equal(wm_pending(&q), 0);
    wm_destroy(&q);
}

/* Zxids that come out of order (a reply showing a lower zxid after a
 * higher one): W is the highest zxid resolved and never moves back; a
 * checkpoint folded into a later one keeps the higher zxid. */
static void test_w_never_moves_back(void **state) {
    (void)state;
    wm q;
    wm_init(&q);
    enqueue_n(&q, 1);
    assert_true(reply(&q, 1, 500));
    enqueue_n(&q, 1);
    assert_false(reply(&q, 1, 400));
    assert_int_equal(wm_value(&q), 500);
    /* folding: two checkpoints with the same need, the higher zxid first */
    enqueue_n(&q, 1);
    assert_false(wm_checkpoint(&q, 900));
    assert_false(wm_checkpoint(&q, 600)); /* same need: folded, keeps 900 */
    assert_int_equal(wm_pending(&q), 1);
    assert_true(reply(&q, 1, 0));
    assert_int_equal(wm_value(&q), 900);
    wm_destroy(&q);
}

/* Reads caused by answering a read (a listing's names, the bucket of a
 * vanished record) hold back every checkpoint that waited for that read:
 * the change the first read was queued for may only be seen through them. */
static void test_caused_reads_hold_back_waiting_checkpoints(void **state) {
    (void)state;
    wm q;
    wm_init(&q);
    enqueue_n(&q, 3);                     /* reads 1-3, one batch in flight */
    assert_false(wm_checkpoint(&q, 100)); /* a sync's reply: need 3 */
    /* the batch's reply: handling read 2 (a record read finding no znode)
     * queues read 4 (its bucket), before the batch is counted */
    uint64_t before = wm_queued(&q);
    wm_enqueue(&q);
    assert_true(wm_queued(&q) > before);
    wm_caused(&q, 2);
    assert_true(wm_valid(&q));
    assert_false(reply(&q, 3, 110));
    assert_int_equal(wm_value(&q), 0); /* 100 needs read 4 too */
    assert_true(reply(&q, 1, 120));
    assert_int_equal(wm_value(&q), 120);
    wm_destroy(&q);
}

/* ... every one of them, not only the newest. */
static void test_caused_reads_hold_back_every_waiting_checkpoint(void **state) {
    (void)state;
    wm q;
    wm_init(&q);
    enqueue_n(&q, 2);
    assert_false(wm_checkpoint(&q, 100)); /* need 2 */
    enqueue_n(&q, 1);
    assert_false(wm_checkpoint(&q, 200)); /* need 3 */
    assert_int_equal(wm_pending(&q), 2);
    wm_enqueue(&q); /* handling read 1 causes read 4: both wait for it */
    wm_caused(&q, 1);
    assert_true(wm_valid(&q));
    assert_false(reply(&q, 3, 210));
    assert_int_equal(wm_value(&q), 0);
    assert_true(reply(&q, 1, 220));
    assert_int_equal(wm_value(&q), 220);
    wm_destroy(&q);
}

/* ... transitively: read 4, caused by read 2, causes read 5. */
static void test_caused_reads_are_transitive(void **state) {
    (void)state;
    wm q;
    wm_init(&q);
    enqueue_n(&q, 2);
    assert_false(wm_checkpoint(&q, 100)); /* need 2 */
    wm_enqueue(&q);                        /* read 2 causes read 3 */
    wm_caused(&q, 2);
    wm_answered(&q, 2);
    /* (no checkpoint recorded here: the test looks at the old one alone) */
    wm_enqueue(&q); /* handling read 3 causes read 4 */
    wm_caused(&q, 3);
    wm_answered(&q, 1);
    assert_false(wm_checkpoint(&q, 0)); /* resolves what it can, adds nothing higher */
    assert_int_equal(wm_value(&q), 0);
    assert_true(reply(&q, 1, 0));
    assert_int_equal(wm_value(&q), 100);
    wm_destroy(&q);
}

/* ... and no other: a checkpoint that did not wait for the read (it was
 * queued after the checkpoint) is not held back by what it caused. */
static void test_caused_reads_spare_earlier_checkpoints(void **state) {
    (void)state;
    wm q;
    wm_init(&q);
    enqueue_n(&q, 2);
    assert_false(wm_checkpoint(&q, 100)); /* need 2 */
    enqueue_n(&q, 1);                      /* read 3, after the checkpoint */
    wm_answered(&q, 2);                    /* reads 1-2 answered (a failed reply: no checkpoint) */
    wm_enqueue(&q);                        /* handling read 3 causes read 4 */
    wm_caused(&q, 3);
    wm_answered(&q, 1);
    assert_true(wm_checkpoint(&q, 130)); /* need 4: not satisfied, but 100 is */
    assert_int_equal(wm_value(&q), 100);
    assert_true(reply(&q, 1, 140));
    assert_int_equal(wm_value(&q), 140);
    wm_destroy(&q);
}

/* Answered reads alone never move W, only a checkpoint does: a batch that
 * failed is counted (it holds its place in the FIFO) and the mirror records
 * no checkpoint until the disconnect resets the queue. */
static void test_answered_alone_never_moves_w(void **state) {
    (void)state;
    wm q;
    wm_init(&q);
    enqueue_n(&q, 4);
    assert_false(wm_checkpoint(&q, 100)); /* need 4 */
    wm_answered(&q, 4);                    /* a failed batch, counted */
    assert_int_equal(wm_value(&q), 0);
    assert_int_equal(wm_pending(&q), 1);
    wm_reset(&q); /* the disconnect */
    assert_int_equal(wm_value(&q), 0);
    assert_int_equal(wm_pending(&q), 0);
    wm_destroy(&q);
}

/* A disconnect drops the checkpoints and keeps W; the counts restart with
 * the reads still queued (the lost ones first). A checkpoint recorded
 * before the disconnect is never resolved by reads counted after it. */
static void test_reset_drops_checkpoints_and_keeps_w(void **state) {
    (void)state;
    wm q;
    wm_init(&q);
    enqueue_n(&q, 2);
    assert_true(reply(&q, 2, 50)); /* W = 50 */
    enqueue_n(&q, 10);
    assert_false(reply(&q, 3, 300)); /* need 12, done 5 */
    assert_int_equal(wm_pending(&q), 1);
    /* disconnect: 7 reads lost or still queued; only 2 of them are
     * renumbered here (the rest belonged to a store since reloaded) */
    wm_reset(&q);
    assert_int_equal(wm_value(&q), 50);
    assert_int_equal(wm_queued(&q), 0);
    assert_int_equal(wm_done(&q), 0);
    assert_int_equal(wm_pending(&q), 0);
    assert_int_equal(wm_enqueue(&q), 1);
    assert_int_equal(wm_enqueue(&q), 2);
    /* after recovery: the first reply shows zxid 250. With the old
     * checkpoint (need 12, zxid 300) kept, the new one (need 2) would fold
     * it in and W would claim 300. */
    assert_true(reply(&q, 2, 250));
    assert_int_equal(wm_value(&q), 250);
    wm_destroy(&q);
}

/* Thousands of pending checkpoints: each one resolves at exactly its own
 * need, while new ones keep coming and while the queue drains (past 1024
 * resolved ones the array is compacted: nothing pending may be lost or
 * revived). */
static void test_long_queue(void **state) {
    (void)state;
    wm q;
    wm_init(&q);
    enum { N = 3000 };
    for (uint64_t i = 1; i <= N; i++) {
        wm_enqueue(&q);
        assert_false(wm_checkpoint(&q, 1000 + i)); /* need i */
    }
    assert_int_equal(wm_pending(&q), N);
    /* steady: one read answered, one queued, one checkpoint each time */
    for (uint64_t i = 1; i <= N; i++) {
        wm_answered(&q, 1);
        wm_enqueue(&q);
        assert_true(wm_checkpoint(&q, 1000 + N + i)); /* need N + i: folds nothing older */
        assert_int_equal(wm_value(&q), 1000 + i);
        assert_int_equal(wm_pending(&q), N); /* one resolved, one added */
        if (i % 97 == 0) assert_true(wm_valid(&q));
    }
    /* draining: reads answered one at a time, nothing new queued */
    for (uint64_t i = 1; i <= N; i++) {
        wm_answered(&q, 1);
        assert_true(wm_checkpoint(&q, 1)); /* need 2N: folds into the last */
        assert_int_equal(wm_value(&q), 1000 + N + i);
        assert_int_equal(wm_pending(&q), N - i);
        if (i % 97 == 0) assert_true(wm_valid(&q));
    }
    wm_destroy(&q);
}

/* ---- two models ------------------------------------------------------------ */

enum { MAXR = 192, MAXC = 128 };

/* Reads are numbered 1.. since the last reset.
 *
 * What the argument needs (soundness): a checkpoint's set is the reads
 * queued when it was recorded, plus every read those caused, and so on; W
 * may be a checkpoint's zxid only once its whole set is answered.
 *
 * What the queue does (a prefix, which is cheaper and may wait longer):
 * a checkpoint waits for reads 1..N, N its need, raised to raised_to[a]
 * (the reads queued once a was handled) for every read a <= N that caused
 * reads. W must be exactly what this allows, at every checkpoint: never
 * less, so W moves as soon as the queue may move it. */
typedef struct model {
    uint64_t enq, done, w;
    bool caused_by[MAXR + 1][MAXR + 1]; /* caused_by[a][b]: handling a queued b */
    uint64_t raised_to[MAXR + 1];       /* reads queued once a was handled (0: a caused none) */
    uint64_t need[MAXC];                /* reads queued when recorded */
    uint64_t zxid[MAXC];
    bool resolved[MAXC];
    unsigned ncp;
} model;

/* Whether every read of checkpoint c's set is answered. */
static bool set_satisfied(const model *m, unsigned c) {
    bool want[MAXR + 1] = {false};
    for (uint64_t r = 1; r <= m->need[c]; r++) want[r] = true;
    for (uint64_t a = 1; a <= m->enq; a++) /* caused reads have higher numbers: one pass */
        if (want[a])
            for (uint64_t b = a + 1; b <= m->enq; b++)
                if (m->caused_by[a][b]) want[b] = true;
    for (uint64_t r = 1; r <= m->enq; r++)
        if (want[r] && r > m->done) return false;
    return true;
}

/* Whether the prefix checkpoint c waits for is answered. */
static bool prefix_satisfied(const model *m, unsigned c) {
    uint64_t n = m->need[c];
    for (uint64_t a = 1; a <= n; a++) /* raised_to[a] > a: one pass as n grows */
        if (m->raised_to[a] > n) n = m->raised_to[a];
    return n <= m->done;
}

/* At a checkpoint: what the queue may resolve, each one checked against
 * the argument's sets. */
static void model_resolve(model *m) {
    for (unsigned c = 0; c < m->ncp; c++) {
        if (m->resolved[c] || !prefix_satisfied(m, c)) continue;
        assert_true(set_satisfied(m, c));
        m->resolved[c] = true;
        if (m->zxid[c] > m->w) m->w = m->zxid[c];
    }
}

static uint64_t rng_next(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* One run: events queue reads; batches (of the reads at the front) are
 * sent, then answered in order, their results sometimes queueing more reads
 * (caused), their reply's checkpoint recorded after; syncs' replies record
 * checkpoints too; now and then a failed batch and a disconnect. The zxids
 * mostly grow, sometimes not. After every checkpoint W must be exactly
 * what the prefix model allows, and each checkpoint it resolves must have
 * its whole set answered. */
static void run_model(uint64_t seed) {
    wm q;
    wm_init(&q);
    model *m = calloc(1, sizeof *m);
    assert_non_null(m);
    uint64_t rng = seed, zxid = 1, sent = 0;
    bool failed = false; /* a batch failed: no checkpoint until the reset */
    for (int step = 0; step < 400; step++) {
        if (m->enq + 8 > MAXR || m->ncp + 2 > MAXC) break;
        unsigned what = (unsigned)(rng_next(&rng) % 100);
        if (what < 35) { /* an event: a read queued */
            assert_int_equal(wm_enqueue(&q), ++m->enq);
            zxid += rng_next(&rng) % 3;
        } else if (what < 50) { /* a batch sent: the next reads in queue order */
            uint64_t n = 1 + rng_next(&rng) % 4;
            if (sent + n > m->enq) n = m->enq - sent;
            sent += n;
        } else if (what < 80 && sent > m->done) { /* the oldest batch in flight answered */
            uint64_t n = 1 + rng_next(&rng) % (sent - m->done);
            if (failed || rng_next(&rng) % 30 == 0) { /* a failed reply: counted, no checkpoint */
                wm_answered(&q, n);
                m->done += n;
                failed = true;
                continue;
            }
            for (uint64_t r = m->done + 1; r <= m->done + n; r++) {
                uint64_t before = wm_queued(&q);
                unsigned k = rng_next(&rng) % 4 == 0 ? (unsigned)(1 + rng_next(&rng) % 3) : 0;
                for (unsigned i = 0; i < k && m->enq < MAXR; i++) {
                    wm_enqueue(&q);
                    m->caused_by[r][++m->enq] = true;
                }
                if (wm_queued(&q) > before) {
                    wm_caused(&q, r);
                    m->raised_to[r] = m->enq;
                }
            }
            wm_answered(&q, n);
            m->done += n;
            uint64_t z = rng_next(&rng) % 8 == 0 ? zxid - (zxid > 3 ? 3 : 0) : zxid;
            m->need[m->ncp] = m->enq;
            m->zxid[m->ncp++] = z;
            wm_checkpoint(&q, z);
            model_resolve(m);
            assert_int_equal(wm_value(&q), m->w);
        } else if (what < 90 && !failed) { /* a sync's reply */
            m->need[m->ncp] = m->enq;
            m->zxid[m->ncp++] = zxid;
            wm_checkpoint(&q, zxid);
            model_resolve(m);
            assert_int_equal(wm_value(&q), m->w);
        } else if (what < 93 || failed) { /* a disconnect: the unanswered reads renumbered */
            uint64_t left = m->enq - m->done;
            if (failed) left += rng_next(&rng) % 2; /* (the failed batch's reads come back too) */
            wm_reset(&q);
            uint64_t w = m->w;
            memset(m, 0, sizeof *m);
            m->w = w;
            for (uint64_t i = 0; i < left && m->enq < MAXR; i++) assert_int_equal(wm_enqueue(&q), ++m->enq);
            sent = 0;
            failed = false;
            assert_int_equal(wm_value(&q), m->w);
        }
        assert_true(wm_valid(&q));
        assert_true(wm_done(&q) == m->done && wm_queued(&q) == m->enq);
    }
    free(m);
    wm_destroy(&q);
}

static void test_model(void **state) {
    (void)state;
    for (uint64_t seed = 1; seed <= 400; seed++) run_model(seed);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numbering),
        cmocka_unit_test(test_checkpoint_waits_for_reads_queued_before_it),
        cmocka_unit_test(test_reads_in_flight_hold_w_back),
        cmocka_unit_test(test_sync_on_idle_queue),
        cmocka_unit_test(test_later_reads_do_not_hold_w_back),
        cmocka_unit_test(test_checkpoints_resolve_in_order),
        cmocka_unit_test(test_w_never_moves_back),
        cmocka_unit_test(test_caused_reads_hold_back_waiting_checkpoints),
        cmocka_unit_test(test_caused_reads_hold_back_every_waiting_checkpoint),
        cmocka_unit_test(test_caused_reads_are_transitive),
        cmocka_unit_test(test_caused_reads_spare_earlier_checkpoints),
        cmocka_unit_test(test_answered_alone_never_moves_w),
        cmocka_unit_test(test_reset_drops_checkpoints_and_keeps_w),
        cmocka_unit_test(test_long_queue),
        cmocka_unit_test(test_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* watermark: the mirror session's read accounting and its watermark W
 * (docs/ARCHITECTURE.md, "The watermark W", steps 2 and 3).
 *
 * Every read the mirrors queue is numbered (wm_enqueue: 1, 2, ...); reads
 * are sent and answered in queue order, so "answered" is a count
 * (wm_answered). When a reply has been handled (its results applied, the
 * reads they caused queued), the caller records a checkpoint
 * (wm_checkpoint: need = reads queued now, zxid = the reply header's Z).
 * A checkpoint resolves once `need` reads are answered, and W becomes the
 * highest zxid resolved. When handling read `seq` queued more reads, every
 * checkpoint waiting for `seq` waits for those too (wm_caused): a change
 * whose event queued `seq` may only be seen through them (a listing's
 * names, a vanished record's bucket).
 *
 * Invariants (asserted in debug builds, checked whole by wm_valid):
 *   done <= enq;
 *   the pending checkpoints' needs strictly increase, and none passes enq;
 *   after a checkpoint is recorded, none pending is satisfied (need > done);
 *   W never moves back.
 *
 * W moves only in wm_checkpoint, never in wm_answered. The mirror relies on
 * that: a batch that failed is counted as answered (it holds its place in
 * the FIFO) and no checkpoint is recorded until wm_reset, so reads that
 * were never answered cannot move W.
 *
 * Ownership, threads and locks: a wm is a plain value embedded in its
 * owner (the mirror_set), initialised by wm_init and freed by wm_destroy.
 * It has no lock and no thread of its own: every call, reads included, is
 * made under the owner's lock (mirror_set.mu), from whichever thread holds
 * it (the session's I/O thread, workers starting a load, the gap probes'
 * threads queueing reads). It calls nothing outside itself. */
#ifndef ZS_WATERMARK_H
#define ZS_WATERMARK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

/* A checkpoint. */
typedef struct wm_cp {
    uint64_t need; /* reads queued when the reply was handled */
    uint64_t zxid; /* the reply header's zxid */
} wm_cp;

/* Fields are private: use the functions. */
typedef struct wm {
    uint64_t enq, done; /* reads queued / answered (FIFO) */
    GArray *cps;        /* wm_cp, pending from head on */
    guint head;
    uint64_t w;         /* the watermark W */
} wm;

void wm_init(wm *q);
void wm_destroy(wm *q);

/* Counts one read queued; returns its number in queue order (from 1). */
uint64_t wm_enqueue(wm *q);
/* Counts the next n reads of the queue as answered (or failed: see above).
 * Does not move W. */
void wm_answered(wm *q, uint64_t n);
/* Handling read seq (queued, not yet counted as answered) queued more
 * reads: every pending checkpoint that waits for seq now waits for every
 * read queued so far. Call it only when reads were queued meanwhile. */
void wm_caused(wm *q, uint64_t seq);
/* Records the checkpoint (reads queued now, zxid) of a reply handled just
 * now, then resolves what the answered reads allow. Returns whether W
 * moved. */
bool wm_checkpoint(wm *q, uint64_t zxid);
/* The connection went: the pending checkpoints are dropped and the counts
 * restart from 0 (the caller numbers the reads still queued again with
 * wm_enqueue, in queue order). W stays. */
void wm_reset(wm *q);

/* The watermark W: every change with zxid <= W is reflected. */
uint64_t wm_value(const wm *q);
/* Reads queued since the last reset (the number of the last one). */
uint64_t wm_queued(const wm *q);
/* Reads answered since the last reset. */
uint64_t wm_done(const wm *q);
/* Checkpoints recorded and not resolved yet. */
size_t wm_pending(const wm *q);
/* Every invariant above, checked over the whole queue (O(pending)); for
 * tests. The debug build asserts the cheap ones on every call. */
bool wm_valid(const wm *q);

#endif

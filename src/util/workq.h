/* workq: a fixed pool of threads running jobs from one FIFO queue: the
 * request workers of the HTTP layer (--workers). GLib's thread pool did
 * this before; the gateway's threads and locks are pthreads only
 * (docs/ARCHITECTURE.md, "Threads and locks").
 *
 * Ownership: the caller owns every item. The queue only links them, through
 * the workq_item embedded in the caller's job (not to be touched while
 * queued), and allocates nothing after workq_new, so a push cannot fail for
 * want of memory. An item pushed is either handed to run() once, on one
 * worker, or (workq_free without drain) dropped unrun: back to the caller,
 * as it was.
 *
 * Threads: workq_new starts nthreads workers, which live until workq_free.
 * workq_push from any thread, workq_free from one thread that is not a
 * worker, once.
 *
 * Locks: workq.mu guards the queue, the idle workers and the stop flag. It
 * is a leaf: never held while run() runs, and nothing is taken under it.
 * An idle worker sleeps on a semaphore of its own, not on a condition
 * under mu: a push takes the last worker to fall idle off the
 * idle stack under mu, hands it the item, and posts its wake after the
 * unlock, so the woken worker runs the item without taking mu again (with
 * a condition, each woken worker first slept again on mu, held by its
 * waker or by the other workers). Items are queued, in order, only while no
 * worker is idle.
 */
#ifndef ZS_WORKQ_H
#define ZS_WORKQ_H

#include <stdbool.h>

typedef struct workq_item {
    struct workq_item *next; /* the queue's; NULL when handed to run() */
} workq_item;

/* Runs one item on a worker thread. ctx is workq_new's. */
typedef void (*workq_run)(workq_item *it, void *ctx);

typedef struct workq workq;

/* Starts nthreads (>= 1) workers, named name (at most 15 bytes; NULL: not
 * named). NULL on failure, with *err the error number (EINVAL, ENOMEM or
 * pthread_create's); no thread is left running then. */
workq *workq_new(unsigned nthreads, const char *name, workq_run run, void *ctx, int *err);

/* Hands it to an idle worker and wakes it, or, every worker busy, queues
 * it at the tail. 0; -1 once workq_free has begun (it is not queued: the
 * caller still owns it). */
int workq_push(workq *q, workq_item *it);

/* Stops the queue (later pushes get -1) and frees it; returns when every
 * worker has exited. drain: the items queued until now all run first (as
 * GLib's pool freed with immediate FALSE, wait TRUE); otherwise they are
 * dropped unrun and only the items already handed to a worker (running, or
 * handed over and about to) finish (immediate TRUE, wait TRUE). NULL:
 * nothing. */
void workq_free(workq *q, bool drain);

#endif

/* sloop: the gateway's own loop for event streams (plain HTTP).
 *
 * Why it exists: libmicrohttpd 0.9.75 keeps an idle stream as a suspended
 * connection and walks a thread's whole list of suspended connections on
 * every resume, so each wake (and each answered push, whose connection is
 * suspended too) cost O(open streams) (docs/PERFORMANCE.md, B9b). Once a
 * stream's response head is decided, server.c takes the socket out of
 * libmicrohttpd (docs/ARCHITECTURE.md, "Event streams outside
 * libmicrohttpd") and hands it here: a wake is a push on a ready list, an
 * idle stream costs an epoll registration and no thread.
 *
 * One thread (zs-streams) owns every stream's socket: it sends the head,
 * then what the stream's read callback gives, until read says the end, the
 * client closes (or sends more than SLOOP_MAX_INPUT bytes: an event stream
 * carries nothing from the client), a send fails, or the client takes
 * nothing for stall_ms while a send waits. A stream sends at most
 * SLOOP_TURN_BYTES per turn before the others get theirs. What a send could
 * not take waits in the stream's own buffer (at most SLOOP_CHUNK bytes); the
 * stream reads again only once it is out.
 *
 * Threads: sloop_wake from any thread; every other call from one thread at
 * a time per stream (server.c: the stream's HTTP thread until sloop_start,
 * then the loop). The callbacks run on the loop thread. Locks: sloop.mu
 * guards the ready list and the flags a wake reads; it is never held across
 * a callback, so a callback may take any lock a waker holds while waking. */
#ifndef ZS_HTTP_SLOOP_H
#define ZS_HTTP_SLOOP_H

#include <stdbool.h>
#include <stddef.h>

#include "util/log.h"
#include "util/metrics.h"

#define SLOOP_CHUNK 16384
#define SLOOP_TURN_BYTES (256 * 1024)
#define SLOOP_MAX_INPUT 65536

typedef struct sloop sloop;
typedef struct sloop_stream sloop_stream;

typedef struct sloop_ops {
    /* Fills buf with at most max bytes: the count, 0 when there is nothing
     * now (the stream sleeps until sloop_wake), -1 to end the stream. */
    long (*read)(void *cls, char *buf, size_t max);
    /* The stream has ended (for any reason above, or sloop_free): release
     * cls. Called once, on the loop thread; once it returns, no sloop_wake
     * of this stream may come or be running (the waker's registry must drop
     * it here, under the lock its wakes run under). The socket is closed
     * before. */
    void (*end)(void *cls);
} sloop_ops;

/* Starts the loop thread. stall_ms: how long a waiting send may make no
 * progress before the stream is ended. Each end is counted in
 * m->stream_ends by reason (m may be NULL). NULL on failure (logged). */
sloop *sloop_new(int stall_ms, zs_metrics *m, const zs_log *lg);
/* Ends every stream still open (end is called for each), stops the thread
 * and frees l. No sloop_prepare or sloop_start may run at the same time. */
void sloop_free(sloop *l);

/* A stream of fd (a connected stream socket, owned from here on), that will
 * send head (copied) first. Not yet served: sloop_wake only marks it until
 * sloop_start. NULL when out of memory or when the loop cannot watch fd
 * (fd is closed). */
sloop_stream *sloop_prepare(sloop *l, int fd, const char *head, size_t head_len, const sloop_ops *ops, void *cls);
/* Hands s to the loop, which serves it at once. Returns false (nothing
 * called, s untouched) when the loop is stopping (sloop_free has begun):
 * then sloop_discard it. */
bool sloop_start(sloop_stream *s);
/* Frees a stream that was prepared and never started (closes its socket;
 * end is not called). */
void sloop_discard(sloop_stream *s);
/* Any thread: there may be something to send; read will be called. */
void sloop_wake(sloop_stream *s);
/* Streams started and not yet ended. */
size_t sloop_count(sloop *l);

#endif

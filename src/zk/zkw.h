/* zkw: a small ZooKeeper client speaking the documented wire protocol, for
 * what the mirror needs and the Debian C client (3.8) lacks: persistent
 * recursive watches (addWatch), multiRead, SetWatches2 kept small, and the
 * zxid of every reply's header. Pushes keep using libzookeeper (zk/zkc).
 *
 * One zkw is one session with its own I/O thread: it connects to the hosts
 * in turn, resumes the session after a disconnect (or opens a new one when
 * ZooKeeper says it expired), pings, and after every (re)connect first
 * re-registers the persistent watches it was asked for, in SetWatches2
 * packets of at most ZKW_SET_WATCHES_MAX bytes of paths.
 *
 * Threads and locks: zkw_submit may be called from any thread, including
 * from inside a callback. Every callback (replies, watch events, state
 * changes) runs on the session's I/O thread, in the order the server sent
 * the frames, with no zkw lock held; a callback may take its caller's locks
 * (the lock order is caller's locks -> zkw.mu, and zkw never calls out
 * holding zkw.mu). Replies come in the order requests were submitted.
 *
 * Ownership: the zkw owns its socket, buffers and thread; zkw_close stops
 * the thread, closes the session and fails what is pending (with
 * ZCONNECTIONLOSS) before returning. */
#ifndef ZS_ZKW_H
#define ZS_ZKW_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/log.h"
#include "util/sbuf.h"
#include "zk/jute.h"

typedef struct zkw zkw;

enum { ZKW_DISCONNECTED = 0, ZKW_CONNECTED = 1 };

typedef struct zkw_callbacks {
    /* state ZKW_CONNECTED (new_session: the previous session expired, or
     * this is the first) or ZKW_DISCONNECTED (after every pending request
     * was failed). On CONNECTED the persistent watches were already re-sent. */
    void (*on_state)(void *ctx, int state, bool new_session);
    /* A watch event: type JUTE_EV_*, the path (not NUL-terminated). */
    void (*on_event)(void *ctx, int type, const char *path, size_t len);
    void *ctx;
} zkw_callbacks;

/* rc: ZOK (0), a ZooKeeper error code from the reply header, or
 * ZCONNECTIONLOSS when the connection went before the reply (body NULL).
 * zxid: the reply header's zxid (the server's last applied zxid). */
typedef void (*zkw_reply_fn)(void *ctx, int rc, int64_t zxid, jute_in *body);

/* hosts: "host:port,host:port" (no chroot: zoosync has --root). Starts
 * connecting; does not wait. NULL on bad arguments (why[0..whylen) says
 * which, util/err.h). */
/* cred: digest credentials "user:password" sent after every connect (NULL:
 * none). */
zkw *zkw_open(const char *hosts, int session_timeout_ms, const char *cred, const zkw_callbacks *cb, const zs_log *lg,
              char *why, size_t whylen);
void zkw_close(zkw *w);

/* Sends a request whose body (the request record, without header) is in
 * body. Returns 0 (fn will be called exactly once), or -1 when the session
 * is not connected (fn is not called). */
int zkw_submit(zkw *w, int32_t type, const void *body, size_t len, zkw_reply_fn fn, void *ctx);

/* Adds a persistent (mode JUTE_WATCH_PERSISTENT) or persistent recursive
 * watch and remembers it for the life of the zkw, so that every later
 * connect re-registers it before any other request (in SetWatches2 packets
 * of at most ZKW_SET_WATCHES_MAX bytes of paths). Returns 0 once it is
 * remembered: then any request this thread submits after this call reaches
 * the server after the watch. When connected, an addWatch is queued in the
 * same critical section and fn is called with its reply, as for submit;
 * when not (or when its output is lost, which drops the connection), or
 * when the same watch is already remembered, nothing is sent and fn is not
 * called. Returns -1 (out of memory) when it could not be remembered. */
int zkw_add_watch(zkw *w, const char *path, int mode, zkw_reply_fn fn, void *ctx);

/* Forgets a watch added by zkw_add_watch (no longer re-registered) and,
 * when connected, asks the server to remove it (removeWatches, any type:
 * the session's watcher on path; "no watcher" is an answer like any
 * other). When not connected there is nothing to remove: the server
 * dropped the connection's watches. Best effort: out of memory, the
 * server keeps it until the connection ends. */
void zkw_remove_watch(zkw *w, const char *path, int mode);

/* Drops the connection (the session is resumed): for a caller that cannot
 * trust what it got on it. Any thread, callbacks included. */
void zkw_reconnect(zkw *w);
bool zkw_connected(zkw *w);
/* The highest zxid seen in a reply header. */
int64_t zkw_last_zxid(zkw *w);
/* Counters for /metrics and the logs. */
typedef struct zkw_stats {
    uint64_t connects, disconnects, expirations, frames_in, events;
    uint64_t set_watches; /* SetWatches2 packets sent to re-register the persistent watches */
    uint64_t watches;     /* persistent watches remembered (a gauge) */
} zkw_stats;
void zkw_get_stats(zkw *w, zkw_stats *out);

/* The gap probe (see docs/ARCHITECTURE.md): opens a short-lived session of
 * its own, syncs it, sends SetWatches2 with relative_zxid and one-shot data
 * watches on data[] and child watches on child[] (split into packets of at
 * most 128 KiB), calls on_event for every event the server answers with,
 * and closes the session (freeing its watches on the server). Blocks the
 * calling thread up to timeout_ms, or until *cancel (may be NULL) is set.
 * Returns 0, or -1 (the caller retries). */
int zkw_probe(const char *hosts, const char *cred, int timeout_ms, int64_t relative_zxid, const char *const *data, size_t ndata,
              const char *const *child, size_t nchild,
              void (*on_event)(void *ctx, int type, const char *path, size_t len), void *ctx,
              const atomic_bool *cancel, const zs_log *lg);

/* The largest SetWatches2 packet the client sends (the Java client's). */
#define ZKW_SET_WATCHES_MAX 131072

#endif

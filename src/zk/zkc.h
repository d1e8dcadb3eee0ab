/* zkc: the gateway's ZooKeeper session for writes (libzookeeper_mt):
 * pushes, stores, the collector. The mirrors have their own (zk/zkw).
 *
 * Session expiry (the gateway was cut off longer than the session timeout):
 * a manager thread opens a new session and swaps it in (zkc_zh() returns the
 * live handle: fetch it for each call, never keep it), and closes the old
 * handle 30 s later.
 *
 * The library's own log lines go into the gateway's logger (zk/zklog.h).
 *
 * Threads: the ZooKeeper client runs its own I/O and completion threads.
 * Synchronous calls (zoo_get, zoo_multi, ...) on zkc_zh() are safe from any
 * worker thread; watch callbacks and async completions run on the single
 * completion thread, in the order the server sent them.
 *
 * zkc_sync() is ZooKeeper's `sync` (zoo_async) with coalescing: concurrent
 * callers share one round trip, and each caller returns only after a sync
 * that was issued after it arrived has completed. */
#ifndef ZS_ZKC_H
#define ZS_ZKC_H

#include <stdbool.h>
#include <stdint.h>
#include <zookeeper/zookeeper.h>

#include "util/log.h"
#include "zk/acl.h"

typedef struct zkc zkc;

/* Starts connecting; does not wait. ident (may be NULL; owned by the
 * caller, outliving the zkc) is the digest identity the session
 * authenticates as. Returns NULL on bad arguments. */
zkc *zkc_open(const char *hosts, int session_timeout_ms, const zk_ident *ident, const zs_log *lg);
/* The ACL of every znode the gateway creates (see zk/acl.h); z may be NULL
 * (no session, as in the fuzz targets): the open ACL. */
const struct ACL_vector *zkc_acl(zkc *z);
/* What that ACL adds to a create operation on the wire (jute bytes). */
size_t zkc_acl_bytes(zkc *z);
void zkc_close(zkc *z);
zhandle_t *zkc_zh(zkc *z);
bool zkc_connected(zkc *z);
/* Waits up to timeout_ms for the session to be connected: 0 or -1. */
int zkc_wait_connected(zkc *z, int timeout_ms);

/* Returns ZOK, or ZOPERATIONTIMEOUT after timeout_ms, or the sync's error. */
int zkc_sync(zkc *z, int timeout_ms);

/* Creates path and its missing parents with empty data (ZNODEEXISTS is
 * fine). Returns ZOK or the first other error. */
int zkc_ensure_path(zkc *z, const char *path);

/* Whether a or b (znodes that exist) grants anyone but the gateway's
 * identity more than reading: a tree made before --zk-digest-file. */
bool zkc_open_acl(zkc *z, const char *a, const char *b);

/* Sets the gateway's ACL (zkc_acl) on root and every znode below it: for a
 * tree created before --zk-digest-file was given (or by an older version).
 * One request per znode. Returns ZOK (and *count) or the first error. */
int zkc_apply_acl(zkc *z, const char *root, size_t *count);

/* One znode read by zkc_get_many. */
typedef struct zkc_got {
    int rc;          /* ZOK, ZNONODE, or another error */
    char *data;      /* malloc'd copy of the data (NUL-terminated), NULL when none */
    int len;         /* data length, -1 for none */
    struct Stat st;
} zkc_got;

/* Reads n znodes at once (pipelined on the session: one round trip, not n)
 * and waits up to timeout_ms. Returns ZOK when every read has an answer in
 * out[i] (each with its own rc), else ZOPERATIONTIMEOUT or the error that
 * kept the reads from being sent. Free with zkc_got_free. */
int zkc_get_many(zkc *z, const char *const *paths, int n, zkc_got *out, int timeout_ms);
void zkc_got_free(zkc_got *g, int n);

#endif

/* records: the plain REST view of one record (PROTOCOL.md "Records").
 * Synchronous ZooKeeper calls; safe from any thread. A write is one setData
 * with the version read (or a create), retried when another writer wins the
 * race, so preconditions hold against the state actually replaced. */
#ifndef ZS_RECORDS_H
#define ZS_RECORDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/mirror.h"
#include "sync/stores.h"
#include "util/err.h"
#include "util/sbuf.h"

/* The write session (zk/zkc.h): an opaque handle here, so that the layers
 * above sync need not see ZooKeeper. */
typedef struct zkc zkc;

typedef struct records_precond {
    bool if_match;          /* If-Match: "<version>" */
    int64_t match_version;
    bool if_none_match;     /* If-None-Match: * */
} records_precond;

/* 0: out has {"key","value","version","cursor"}, *version set; -1: err. */
int records_get(zkc *z, const char *root, const store_cfg *cfg, const char *key, size_t klen, sbuf *out,
                int32_t *version, zs_err *err);
/* value: compact JSON already checked against maxValueBytes. quota: the
 * store's mirror when the store has a quota (then a write that would take
 * the store past it is 413 quota_exceeded; the mirror also takes the write
 * at once, as after a push), else NULL. 0: out has {"key","version",
 * "cursor"}, *created and *version set; -1: err. */
int records_put(zkc *z, const char *root, const store_cfg *cfg, mirror *quota, const char *key, size_t klen,
                const char *value, size_t vlen, const records_precond *pre, sbuf *out, bool *created, int32_t *version,
                zs_err *err);
/* 0 when deleted; -1: err (404, 412, 503). */
int records_delete(zkc *z, const char *root, const store_cfg *cfg, const char *key, size_t klen,
                   const records_precond *pre, zs_err *err);

#endif

/* push: client mutations into ZooKeeper, exactly once (PROTOCOL.md "Push").
 *
 * A request is validated whole before anything is written. Mutations whose
 * id is at or below the client's recorded last id are answered from the
 * client's record (duplicate, or conflict again). The rest is cut into
 * chunks, each one ZooKeeper multi no larger than max_tx_bytes: a tx group is
 * never cut. Each multi holds the record writes (setData with the version
 * read, or create) AND the new state of the client node
 * <root>/stores/<s>/c/<bb>/<client> (setData with its version), so a gateway
 * killed at any instant leaves all or nothing, and two gateways handling a
 * retry of the same request at once cannot both apply it: one multi fails
 * on the client node's version and re-reads.
 *
 * The client node holds {"last":N,"sub":"<sub>","conflicts":[ids],"aborted":[ids]}
 * ("sub": the user the client id is bound to, PROTOCOL.md v1.1; absent for
 * ids used only by admin tokens or without authentication) and,
 * once a mutation was rejected, "rejected":[[id,"reason"],...]: the most
 * recent PUSH_CONFLICT_MEMORY outcomes other than "applied" (of the three
 * lists together), so a retry answers "conflict" or "rejected" again rather
 * than "duplicate".
 *
 * Quotas (maxRecords, maxBytes) are judged on the mirror's totals plus
 * what concurrent pushes of this gateway reserved (mirror_quota_*). */
#ifndef ZS_PUSH_H
#define ZS_PUSH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "auth/auth.h"
#include "cache/mirror.h"
#include "sync/stores.h"
#include "util/err.h"
#include "util/limit.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/sbuf.h"

/* The write session (zk/zkc.h): an opaque handle here, so that the layers
 * above sync need not see ZooKeeper. */
typedef struct zkc zkc;
/* The group committer (sync/commit.h), opaque here: its header speaks
 * ZooKeeper's operations. */
typedef struct committer committer;

#define PUSH_MAX_MUTATIONS 1000
#define PUSH_CONFLICT_MEMORY 1000
/* Bytes one operation adds to a multi beyond its path and data. */
#define PUSH_OP_OVERHEAD 64

/* The gateway's memory of client nodes (their version, last id and
 * conflict lists), so a push needs no read of its client node: the multi's
 * version check on the client node catches a stale entry (another gateway
 * pushed for that client), and the push then reads it and tries again.
 * Keyed by the store's incarnation (czxid) and the node's path. At most
 * PUSH_CLIENTS_MAX entries (when full it is emptied). Thread-safe. */
#define PUSH_CLIENTS_MAX 100000
typedef struct push_clients push_clients;
push_clients *push_clients_new(void);
void push_clients_free(push_clients *c);

typedef struct push_env {
    zkc *z;
    mirror_set *mirrors;
    const char *root;
    size_t max_tx_bytes;
    const zs_log *lg;
    zs_metrics *metrics;      /* may be NULL */
    committer *commit;        /* group commit */
    push_clients *clients;    /* may be NULL: every push reads its client node */
    zs_limit *budget_bytes;     /* write budgets per subject (NULL: none) */
    zs_limit *budget_mutations;
} push_env;

/* Takes a write of `mutations` mutations carrying `bytes` (keys and
 * values) from subject's write budgets. 0, or -1 and err (429
 * too_many_requests with retry_after). For pushes (push_run calls it once
 * the request is validated) and records PUT and DELETE. */
int push_budget(const push_env *env, const char *subject, size_t mutations, size_t bytes, zs_err *err);

/* Whether one record write with a value of vlen bytes (and the longest
 * key) fits in one ZooKeeper transaction of this gateway (--max-tx-bytes):
 * every write is one proposal, which bounds the memory ZooKeeper holds for
 * recent ones. For pushes and records PUT alike. */
bool push_value_fits(const push_env *env, size_t vlen);

/* push_run's answer when the store's config changed between judgement and
 * commit (another gateway's PUT, a horizon moved): err says 503, and the
 * caller may read the config again and run the request again (its applied
 * chunks then answer "duplicate"). */
#define PUSH_RUN_CONFIG_CHANGED (-2)

/* Runs one push request of the token who (prefix scopes: a mutation
 * outside its write set is rejected, forbidden) and subject (whose write
 * budgets it spends): the
 * raw body is validated and compacted here (values kept exactly as
 * written), then applied. The store's mirror gives the response cursor
 * when the request changed nothing. Returns 0 and appends the response
 * JSON to out, or -1 and err. */
int push_run(const push_env *env, const auth_principal *who, const char *subject, const store_cfg *cfg, const char *body, size_t len, sbuf *out,
             zs_err *err);

#endif

/* push_eval: the judgement half of a push (sync/push), shared by push.c
 * and its unit tests (tests/unit/test_push_eval.c); not an interface for
 * other modules.
 *
 * push_evaluate judges units[u0..u1) of a request, in id order, against
 * states (record path -> kstate*: the present state of every key of those
 * units, as push.c took it from the mirror or from ZooKeeper), each
 * mutation against the state the previous one left:
 *   - a unit whose first id is at or below r->cl.last (applied meanwhile
 *     by a retry elsewhere) is left pending, to be answered from the
 *     client's record;
 *   - a unit with a member the store's rules refuse whatever the state
 *     (m->refused: write scope, schema) is rejected whole: those members
 *     with their reason, the rest of a group tx_aborted;
 *   - otherwise each member in turn: a base that does not match the key's
 *     state (unless the store is lww) is a conflict (m->cur_value and
 *     cur_version: the state at its point); with quotas (r->quotas), growth
 *     past max_records or max_bytes, counted from r->q_records and
 *     r->q_bytes, is rejected (quota_exceeded); else it applies: its
 *     operation (create, setData with the version read, or for a delete of
 *     an absent key inside a group a check or a create+delete guard) is
 *     appended to o, and states is updated;
 *   - in a group, a quota rejection rejects the group (the rest
 *     tx_aborted); else a conflict aborts it (the rest conflict, aborted,
 *     with the pre-group state): its operations are dropped from o, and
 *     states and the totals restored.
 * The operations in o point into the mutations (path, value): they live as
 * long as r->muts. states owns its kstates (freed with free(k->value) and
 * free(k)); push_evaluate replaces some. Reads nothing but r, units and
 * states; calls no ZooKeeper. Returns 0, or -1 when out of memory (then
 * the outcomes are unusable).
 *
 * Threads: a request is evaluated by the worker that runs it; nothing here
 * is shared. */
#ifndef ZS_PUSH_EVAL_H
#define ZS_PUSH_EVAL_H

#include <glib.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zookeeper/zookeeper.h>

#include "sync/push.h"

enum { ST_PENDING, ST_APPLIED, ST_CONFLICT, ST_DUPLICATE, ST_REJECTED };

/* Why a mutation was rejected (PROTOCOL.md "rejected"): it never applies. */
typedef enum { REJ_NONE, REJ_FORBIDDEN, REJ_INVALID_VALUE, REJ_QUOTA, REJ_TX_ABORTED, REJ_KINDS } rej_reason;

typedef struct mut {
    json_int_t id;
    char *key;       /* decoded (owned); may hold any byte but NUL (validated) */
    size_t klen;
    bool put;
    char *value;     /* compact JSON (owned), puts only */
    size_t vlen;
    bool has_base;
    json_int_t base;
    char *tx;        /* owned; NULL outside groups */
    char *path;      /* record znode (owned) */
    uint64_t khash;
    rej_reason refused; /* the store's rules refuse it whatever the state (scopes, schema) */
    char *refused_errors; /* with REJ_INVALID_VALUE: the "errors" JSON array (owned) */
    /* outcome */
    int status;
    rej_reason reason; /* ST_REJECTED */
    bool aborted;    /* conflict because its group aborted */
    bool changed;    /* applied and wrote the key */
    bool has_version;
    int32_t version; /* protocol version after it (or present one) */
    char *cur_value; /* conflict: the value at that point (owned), NULL = none */
    int32_t cur_version;
    uint64_t zxid;   /* of the multi that applied it */
} mut;

/* muts[first..end): a tx group (group: one tx, consecutive) or a single
 * mutation; bytes: what it takes in a multi. */
typedef struct unit { size_t first, end; bool group; size_t bytes; } unit;

/* The state of one key while a chunk is evaluated. */
typedef struct kstate {
    bool node;       /* the znode exists */
    int32_t zver;
    char *value;     /* owned; NULL = tombstone (or no node) */
    size_t vlen;
} kstate;

typedef struct client_rec {
    char *path;
    bool exists;
    int32_t zver;
    json_int_t last;
    GArray *memo;    /* memo, ascending ids, at most PUSH_CONFLICT_MEMORY */
    char *sub;       /* the sub the client id is bound to (owned); NULL: none yet */
} client_rec;

typedef struct push_req {
    const push_env *env;
    const auth_principal *who; /* NULL: no scope checks (push_validate) */
    const store_cfg *cfg;
    char *client;    /* owned */
    char *spath;     /* the store's config znode (owned): checked in every multi */
    sbuf body;       /* the request body, compact */
    mut *muts;
    size_t n;
    client_rec cl;
    char *buf;       /* READ_BUF bytes for zoo_get, taken at the first client-node read (else NULL) */
    mirror *mirror;  /* the store's mirror: first guess of the keys' states */
    bool synced;     /* a ZooKeeper sync was made for this request */
    bool quotas;     /* the store has a quota: evaluation counts */
    bool caught_up;  /* the mirror was caught up with ZooKeeper for this request (quotas) */
    int64_t q_records, q_bytes; /* the store's totals as the evaluation goes */
} push_req;

/* The operations of one multi, as evaluation appends them. */
typedef struct opbuf {
    zoo_op_t *ops;
    mut **owner;   /* the mutation each op belongs to (NULL: client node) */
    size_t n, cap;
    const struct ACL_vector *acl; /* of the znodes it creates */
} opbuf;

int push_evaluate(push_req *r, const unit *units, size_t u0, size_t u1, GHashTable *states, opbuf *o);

#endif

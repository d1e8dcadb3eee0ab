#include "sync/push.h"
#include "sync/push_eval.h"
#include "schema/schema.h"

#include <assert.h>
#include <stdarg.h>
#include <glib.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/cursor.h"
#include "sync/commit.h"
#include "sync/push_validate.h"
#include "util/bounds.h"
#include "util/clock.h"
#include "util/jraw.h"
#include "util/names.h"
#include "zk/layout.h"
#include "zk/zkc.h"
#include "zk/zkerr.h"

#define PUSH_INVALID_CLIENT (-1000) /* client_read: the record does not parse */
#define PUSH_FOREIGN_CLIENT (-1001) /* the client id is bound to another sub */
#define PUSH_CONFIG_CHANGED (-1002) /* the store's config is not the one judged against */
#define READ_BUF (STORE_CFG_MAX_VALUE_CEILING + 65536)
/* The most one remembered outcome takes in the client node: a 19-digit id
 * in "aborted" and [id,"quota_exceeded"], in "rejected". */
#define MEMO_BYTES 64

static const char *const REJ_NAMES[REJ_KINDS] = {"", "forbidden", "invalid_value", "quota_exceeded", "tx_aborted"};

/* What the client node remembers of an id at or below its last, so a
 * retry answers the same: a conflict, a conflict of an aborted group, or a
 * rejection and its reason. Kept in ascending id order. */
typedef enum { MEMO_CONFLICT = 1, MEMO_ABORTED, MEMO_REJECTED } memo_kind;
typedef struct memo {
    json_int_t id;
    uint8_t kind;   /* memo_kind */
    uint8_t reason; /* rej_reason, MEMO_REJECTED only */
} memo;

/* ---- validation ----------------------------------------------------------- */

/* 400 bad_request naming mutations[i] and what is wrong with it. */
static int bad(zs_err *err, size_t i, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad(zs_err *err, size_t i, const char *fmt, ...) {
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    zs_err_set(err, 400, "bad_request", "mutations[%zu]%s", i, what);
    return -1;
}

/* Checks one mutation object (compact JSON) into m. */
static int validate_mut(push_req *r, size_t i, jraw_span mj, GHashTable *txs, zs_err *err) {
    mut *m = &r->muts[i];
    if (mj.p[0] != '{') return bad(err, i, ": must be an object");
    jraw_span k, v, id = {0}, key = {0}, op = {0}, val = {0}, base = {0}, tx = {0};
    const char *it = mj.p + 1;
    while (jraw_next_member(&it, &k, &v)) {
        jraw_span *slot = jraw_key_is(k, "id") ? &id : jraw_key_is(k, "key") ? &key : jraw_key_is(k, "op") ? &op
                        : jraw_key_is(k, "value") ? &val : jraw_key_is(k, "base") ? &base : jraw_key_is(k, "tx") ? &tx : NULL;
        if (!slot) {
            zs_err_set(err, 400, "bad_request", "mutations[%zu].%.*s: unknown field", i, (int)(k.n - 2 > 64 ? 64 : k.n - 2), k.p + 1);
            return -1;
        }
        if (slot->p) {
            zs_err_set(err, 400, "bad_request", "mutations[%zu].%.*s: given twice", i, (int)(k.n - 2), k.p + 1);
            return -1;
        }
        *slot = v;
    }
    long long x;
    if (!id.p || !jraw_int(id, &x) || x < 1) return bad(err, i, ".id: must be an integer >= 1");
    m->id = x;
    if (i > 0 && m->id <= r->muts[i - 1].id) return bad(err, i, ".id: ids must strictly increase within a request");
    sbuf kb = SBUF_INIT;
    if (!key.p || !jraw_string(key, &kb)) { sbuf_free(&kb); return bad(err, i, ".key: must be a string"); }
    m->key = sbuf_steal(&kb, &m->klen);
    if (!m->key) { zs_err_set(err, 500, "internal", "out of memory"); return -1; }
    const char *why = names_key_invalid(m->key, m->klen);
    if (why) { zs_err_set(err, 400, "invalid_key", "mutations[%zu].key: %s", i, why); return -1; }
    if (!op.p || (op.n != 5 && op.n != 8) || (memcmp(op.p, "\"put\"", 5) && memcmp(op.p, "\"delete\"", op.n)))
        return bad(err, i, ".op: must be \"put\" or \"delete\"");
    m->put = op.n == 5;
    if (m->put && !val.p) return bad(err, i, ".value: required with op put");
    if (!m->put && val.p) return bad(err, i, ".value: not allowed with op delete");
    if (base.p) {
        if (!jraw_int(base, &x) || x < 0) return bad(err, i, ".base: must be an integer >= 0");
        m->has_base = true;
        m->base = x;
    }
    if (tx.p) {
        sbuf tb = SBUF_INIT;
        if (!jraw_string(tx, &tb) || tb.len == 0 || tb.len > 256 || memchr(tb.buf, 0, tb.len)) {
            sbuf_free(&tb);
            return bad(err, i, ".tx: must be a non-empty string of at most 256 bytes");
        }
        m->tx = sbuf_steal(&tb, NULL);
        if (!m->tx) { zs_err_set(err, 500, "internal", "out of memory"); return -1; }
        bool continues = i > 0 && r->muts[i - 1].tx && strcmp(r->muts[i - 1].tx, m->tx) == 0;
        if (!continues) {
            if (g_hash_table_contains(txs, m->tx))
                return bad(err, i, ".tx: the mutations of group '%s' must be consecutive", m->tx);
            g_hash_table_add(txs, m->tx);
        }
    }
    if (m->put) {
        m->vlen = val.n;
        if ((int64_t)m->vlen > r->cfg->max_value_bytes) {
            zs_err_set(err, 413, "value_too_large", "mutations[%zu].value: %zu bytes, over the store's maxValueBytes (%lld)",
                       i, m->vlen, (long long)r->cfg->max_value_bytes);
            return -1;
        }
        /* Every write is one ZooKeeper proposal of at most --max-tx-bytes:
         * what bounds the memory ZooKeeper holds for recent proposals. */
        if (!push_value_fits(r->env, m->vlen)) {
            zs_err_set(err, 413, "value_too_large",
                       "mutations[%zu].value: %zu bytes, over what one ZooKeeper transaction of this gateway may carry "
                       "(--max-tx-bytes %zu)", i, m->vlen, r->env->max_tx_bytes);
            return -1;
        }
        if (!(m->value = strndup(val.p, val.n))) { zs_err_set(err, 500, "internal", "out of memory"); return -1; }
    }
    m->khash = layout_key_hash(m->key, m->klen);
    m->path = layout_record_path(r->env->root, r->cfg->name, m->key, m->klen);
    if (!m->path) { zs_err_set(err, 500, "internal", "out of memory"); return -1; }
    return 0;
}

static int validate(push_req *r, const char *raw, size_t rawlen, zs_err *err) {
    jraw_err je;
    if (jraw_compact(raw, rawlen, &r->body, &je) < 0) {
        zs_err_set(err, 400, "invalid_json", "the body is not valid JSON: %s (line %d, column %d)", je.text, je.line, je.column);
        return -1;
    }
    const char *text = r->body.buf;
    if (text[0] != '{') { zs_err_set(err, 400, "bad_request", "the body must be a JSON object"); return -1; }
    jraw_span k, v, client = {0}, muts = {0};
    const char *it = text + 1;
    while (jraw_next_member(&it, &k, &v)) {
        if (jraw_key_is(k, "client") && !client.p) client = v;
        else if (jraw_key_is(k, "mutations") && !muts.p) muts = v;
        else {
            zs_err_set(err, 400, "bad_request", "%.*s: unknown or repeated field (expected client, mutations)",
                       (int)(k.n - 2 > 64 ? 64 : k.n - 2), k.p + 1);
            return -1;
        }
    }
    sbuf cb = SBUF_INIT;
    if (!client.p || !jraw_string(client, &cb) || !cb.buf || strlen(cb.buf) != cb.len || !names_valid(cb.buf)) {
        sbuf_free(&cb);
        zs_err_set(err, 400, "bad_request", "client: must be a string matching ^[A-Za-z0-9_-]{1,64}$");
        return -1;
    }
    r->client = sbuf_steal(&cb, NULL);
    if (!muts.p || muts.p[0] != '[') { zs_err_set(err, 400, "bad_request", "mutations: must be an array"); return -1; }
    size_t n = 0;
    jraw_span e;
    it = muts.p + 1;
    while (jraw_next_elem(&it, &e)) n++;
    if (n > PUSH_MAX_MUTATIONS) {
        zs_err_set(err, 400, "bad_request", "mutations: %zu mutations, at most %d per request", n, PUSH_MAX_MUTATIONS);
        return -1;
    }
    r->muts = calloc(n ? n : 1, sizeof *r->muts);
    if (!r->muts) { zs_err_set(err, 500, "internal", "out of memory"); return -1; }
    r->n = n;
    GHashTable *txs = g_hash_table_new(g_str_hash, g_str_equal);
    int rc = 0;
    it = muts.p + 1;
    for (size_t i = 0; rc == 0 && jraw_next_elem(&it, &e); i++) rc = validate_mut(r, i, e, txs, err);
    g_hash_table_destroy(txs);
    return rc;
}

/* Bytes a mutation may take in a multi: one op, or for a delete inside a
 * group, the create+delete guard of an absent key. */
static size_t mut_bytes(const push_req *r, const mut *m) {
    /* a put may create: its ACL travels with it */
    size_t one = PUSH_OP_OVERHEAD + strlen(m->path) + m->vlen + zkc_acl_bytes(r->env->z);
    return !m->put && m->tx ? 2 * one : one;
}

/* Splits muts[from..] into units (a group or a single mutation) and checks
 * each group's size. */
static int make_units(push_req *r, size_t from, unit **out, size_t *nunits, zs_err *err) {
    unit *u = calloc(r->n - from + 1, sizeof *u);
    if (!u) { zs_err_set(err, 500, "internal", "out of memory"); return -1; }
    size_t k = 0;
    for (size_t i = from; i < r->n;) {
        size_t j = i + 1, bytes = mut_bytes(r, &r->muts[i]);
        if (r->muts[i].tx)
            while (j < r->n && r->muts[j].tx && strcmp(r->muts[j].tx, r->muts[i].tx) == 0) bytes += mut_bytes(r, &r->muts[j++]);
        u[k] = (unit){i, j, r->muts[i].tx != NULL, bytes};
        if (u[k].group && bytes > r->env->max_tx_bytes) {
            zs_err_set(err, 413, "tx_too_large",
                       "tx group '%s' (mutations %zu..%zu) takes %zu bytes in one ZooKeeper multi, over --max-tx-bytes (%zu)",
                       r->muts[i].tx, i, j - 1, bytes, r->env->max_tx_bytes);
            free(u);
            return -1;
        }
        k++;
        i = j;
    }
    *out = u;
    *nunits = k;
    return 0;
}

/* ---- the client node ----------------------------------------------------- */

static rej_reason reason_from_name(const char *s) {
    for (int i = 1; s && i < REJ_KINDS; i++)
        if (strcmp(s, REJ_NAMES[i]) == 0) return (rej_reason)i;
    return REJ_NONE;
}

/* Adds the ids of arr (absent, or an array of integers >= 1) as kind. */
static bool memo_ids(GArray *out, const json_t *arr, memo_kind kind) {
    if (!arr) return true;
    if (!json_is_array(arr)) return false;
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        if (!json_is_integer(v) || json_integer_value(v) < 1) return false;
        memo e = {json_integer_value(v), (uint8_t)kind, REJ_NONE};
        g_array_append_val(out, e);
    }
    return true;
}

/* Adds "rejected": absent, or an array of [id, reason]. */
static bool memo_rejected(GArray *out, const json_t *arr) {
    if (!arr) return true;
    if (!json_is_array(arr)) return false;
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        json_t *id = json_array_get(v, 0);
        rej_reason why = reason_from_name(json_string_value(json_array_get(v, 1)));
        if (!json_is_array(v) || json_array_size(v) != 2 || !json_is_integer(id) || json_integer_value(id) < 1 ||
            why == REJ_NONE)
            return false;
        memo e = {json_integer_value(id), MEMO_REJECTED, (uint8_t)why};
        g_array_append_val(out, e);
    }
    return true;
}

static gint memo_cmp(gconstpointer a, gconstpointer b) {
    json_int_t x = ((const memo *)a)->id, y = ((const memo *)b)->id;
    return x < y ? -1 : x > y;
}

/* Reads the remembered outcomes of a client node j into out (sorted).
 * A rejected id is also listed in "aborted" (see client_data): the pair
 * reads as the rejection. False when one of the lists is malformed, names
 * an id twice otherwise, or one past the node's last (what a push appends
 * must come after all of them). */
static bool memo_from_json(GArray *out, const json_t *j, json_int_t last) {
    g_array_set_size(out, 0);
    bool ok = memo_ids(out, json_object_get(j, "conflicts"), MEMO_CONFLICT) &&
              memo_ids(out, json_object_get(j, "aborted"), MEMO_ABORTED) &&
              memo_rejected(out, json_object_get(j, "rejected")) && out->len <= 4 * PUSH_CONFLICT_MEMORY;
    g_array_sort(out, memo_cmp);
    guint n = 0; /* entries kept, merging each (aborted, rejected) pair */
    for (guint i = 0; ok && i < out->len; i++) {
        memo e = g_array_index(out, memo, i);
        ok = e.id <= last;
        if (ok && n > 0 && g_array_index(out, memo, n - 1).id == e.id) {
            memo *prev = &g_array_index(out, memo, n - 1);
            bool pair = (prev->kind == MEMO_ABORTED && e.kind == MEMO_REJECTED) ||
                        (prev->kind == MEMO_REJECTED && e.kind == MEMO_ABORTED);
            bool merged_already = prev->kind == MEMO_REJECTED && prev->reason & 0x80;
            ok = pair && !merged_already;
            if (ok) {
                if (e.kind == MEMO_REJECTED) *prev = e;
                prev->reason |= 0x80; /* marks a merged pair while reading */
            }
            continue;
        }
        g_array_index(out, memo, n++) = e;
    }
    g_array_set_size(out, ok ? n : 0);
    for (guint i = 0; i < out->len; i++) {
        memo *e = &g_array_index(out, memo, i);
        /* A rejection must come with its "aborted" twin: without it, a
         * gateway older than rejections would answer "duplicate". */
        if (e->kind == MEMO_REJECTED && !(e->reason & 0x80)) ok = false;
        e->reason &= 0x7f;
    }
    if (ok && out->len > PUSH_CONFLICT_MEMORY) g_array_remove_range(out, 0, out->len - PUSH_CONFLICT_MEMORY);
    return ok;
}

/* The remembered outcome of id, or NULL (then it was applied). */
static const memo *memo_find(const GArray *a, json_int_t id) {
    guint lo = 0, hi = a->len;
    while (lo < hi) {
        guint mid = lo + (hi - lo) / 2;
        const memo *e = &g_array_index(a, memo, mid);
        if (e->id == id) return e;
        if (e->id < id) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

/* Appends the outcomes of muts[from..end) worth remembering, then keeps
 * the newest PUSH_CONFLICT_MEMORY. */
static void memo_add(GArray *a, const mut *ms, size_t from, size_t end) {
    for (size_t i = from; i < end; i++) {
        const mut *m = &ms[i];
        memo e = {m->id, 0, REJ_NONE};
        if (m->status == ST_CONFLICT) e.kind = m->aborted ? MEMO_ABORTED : MEMO_CONFLICT;
        else if (m->status == ST_REJECTED) { e.kind = MEMO_REJECTED; e.reason = (uint8_t)m->reason; }
        else continue;
        assert(a->len == 0 || g_array_index(a, memo, a->len - 1).id < e.id);
        g_array_append_val(a, e);
    }
    if (a->len > PUSH_CONFLICT_MEMORY) g_array_remove_range(a, 0, a->len - PUSH_CONFLICT_MEMORY);
}

/* ---- the client-node cache ------------------------------------------------ */

typedef struct cached_client {
    int32_t zver;
    json_int_t last;
    GArray *memo;
    char *sub;
} cached_client;

#define PUSH_STRIPES 256

struct push_clients {
    pthread_mutex_t mu;
    GHashTable *map; /* "<czxid>:<path>" -> cached_client */
    /* One push per (store, client) at a time on this gateway: two at once
     * are a client's retry racing its original, and the retry must not be
     * judged against the original's quota reservation (it would reject a
     * mutation that fits, for ever). Striped: a push holds
     * stripes[hash(store, client) % PUSH_STRIPES] from reading the client's
     * record to its answer, and no other lock of this module meanwhile but
     * mu (briefly). */
    pthread_mutex_t stripes[PUSH_STRIPES];
};

static void cached_free(gpointer p) {
    cached_client *c = p;
    g_array_free(c->memo, TRUE);
    g_free(c->sub);
    g_free(c);
}

push_clients *push_clients_new(void) {
    push_clients *c = g_new0(push_clients, 1);
    pthread_mutex_init(&c->mu, NULL);
    for (int i = 0; i < PUSH_STRIPES; i++) pthread_mutex_init(&c->stripes[i], NULL);
    c->map = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, cached_free);
    return c;
}

void push_clients_free(push_clients *c) {
    if (!c) return;
    g_hash_table_destroy(c->map);
    pthread_mutex_destroy(&c->mu);
    for (int i = 0; i < PUSH_STRIPES; i++) pthread_mutex_destroy(&c->stripes[i]);
    g_free(c);
}

static char *cache_key(const push_req *r) { return g_strdup_printf("%lld:%s", (long long)r->cfg->czxid, r->cl.path); }

/* Fills r->cl from the cache. */
static bool cache_get(push_req *r) {
    push_clients *pc = r->env->clients;
    if (!pc) return false;
    char *k = cache_key(r);
    pthread_mutex_lock(&pc->mu);
    cached_client *c = g_hash_table_lookup(pc->map, k);
    if (c) {
        r->cl.exists = true;
        r->cl.zver = c->zver;
        r->cl.last = c->last;
        g_array_set_size(r->cl.memo, 0);
        g_array_append_vals(r->cl.memo, c->memo->data, c->memo->len);
        free(r->cl.sub);
        r->cl.sub = c->sub ? strdup(c->sub) : NULL;
    }
    pthread_mutex_unlock(&pc->mu);
    g_free(k);
    return c != NULL;
}

/* Remembers r->cl (what ZooKeeper holds after this request). */
static void cache_put(push_req *r) {
    push_clients *pc = r->env->clients;
    if (!pc) return;
    cached_client *c = g_new0(cached_client, 1);
    c->zver = r->cl.zver;
    c->last = r->cl.last;
    c->memo = g_array_copy(r->cl.memo);
    c->sub = g_strdup(r->cl.sub);
    char *k = cache_key(r);
    pthread_mutex_lock(&pc->mu);
    if (g_hash_table_size(pc->map) >= PUSH_CLIENTS_MAX && !g_hash_table_contains(pc->map, k))
        g_hash_table_remove_all(pc->map); /* bounded: start over */
    g_hash_table_replace(pc->map, k, c);
    pthread_mutex_unlock(&pc->mu);
}

static void cache_drop(push_req *r) {
    push_clients *pc = r->env->clients;
    if (!pc) return;
    char *k = cache_key(r);
    pthread_mutex_lock(&pc->mu);
    g_hash_table_remove(pc->map, k);
    pthread_mutex_unlock(&pc->mu);
    g_free(k);
}

/* Reads the client node, creating it when the request has mutations (a
 * request without any only asks lastMutationId: an absent node then reads
 * as last 0, and nothing is written). Returns ZOK or an error. */
static int client_read(push_req *r) {
    client_rec *c = &r->cl;
    /* Taken here, not per push: most pushes never read the node (the
     * mirror has it), and a block this size is an mmap and a munmap per
     * push, whose TLB shootdowns every worker thread pays for. */
    if (!r->buf && !(r->buf = malloc(READ_BUF))) return ZSYSTEMERROR;
    for (int attempt = 0; attempt < BOUND_CLIENT_READS; attempt++) {
        int len = READ_BUF;
        struct Stat st;
        int64_t t0 = zs_clock_us();
        int rc = zoo_get(zkc_zh(r->env->z), c->path, 0, r->buf, &len, &st);
        zs_metrics_zk(r->env->metrics, ZS_OP_READ, zs_clock_us() - t0, rc == ZNONODE ? ZOK : rc);
        free(c->sub);
        c->sub = NULL;
        if (rc == ZNONODE && r->n == 0) {
            c->exists = false;
            c->last = 0;
            g_array_set_size(c->memo, 0);
            return ZOK;
        }
        if (rc == ZNONODE) {
            rc = zoo_create(zkc_zh(r->env->z), c->path, "{\"last\":0}", 10, zkc_acl(r->env->z), 0, NULL, 0);
            if (rc != ZOK && rc != ZNODEEXISTS) return rc;
            continue;
        }
        if (rc != ZOK) return rc;
        c->exists = true;
        c->zver = st.version;
        c->last = 0;
        /* Fail closed: a record that does not parse must never read as
         * "nothing applied yet" (that would apply mutations again). */
        json_t *j = json_loadb(r->buf, len > 0 ? (size_t)len : 0, JSON_REJECT_DUPLICATES, NULL);
        json_t *last = j ? json_object_get(j, "last") : NULL;
        json_t *sub = j ? json_object_get(j, "sub") : NULL; /* absent: not bound yet (or written before v1.1) */
        bool ok = j && json_is_object(j) && json_is_integer(last) && json_integer_value(last) >= 0 &&
                  memo_from_json(c->memo, j, json_integer_value(last)) &&
                  (!sub || (json_is_string(sub) && strlen(json_string_value(sub)) == json_string_length(sub)));
        if (ok) c->last = json_integer_value(last);
        if (ok && sub && !(c->sub = strdup(json_string_value(sub)))) ok = false;
        json_decref(j);
        if (!ok) {
            if (r->env->metrics) atomic_fetch_add(&r->env->metrics->zk_invalid_client, 1);
            LOG_ERROR(r->env->lg, "push: the exactly-once record %s in ZooKeeper is not valid; refusing the push", c->path);
            return PUSH_INVALID_CLIENT;
        }
        return ZOK;
    }
    return ZNONODE;
}

/* Writes the ids of a's entries of kind as a JSON array (for "aborted",
 * the rejected ids too). */
static void memo_ids_json(sbuf *b, const GArray *a, memo_kind kind) {
    sbuf_putc(b, '[');
    bool first = true;
    for (guint i = 0; i < a->len; i++) {
        const memo *e = &g_array_index(a, memo, i);
        if (e->kind != kind && !(kind == MEMO_ABORTED && e->kind == MEMO_REJECTED)) continue;
        sbuf_printf(b, "%s%lld", first ? "" : ",", (long long)e->id);
        first = false;
    }
    sbuf_putc(b, ']');
}

/* The client node's data after a chunk: last id and the most recent
 * remembered outcomes (the chunk's appended to a copy of the recorded
 * ones): {"last":N,"conflicts":[ids],"aborted":[ids]} and, once there is
 * one, "rejected":[[id,"reason"],...]. A rejected id is listed in
 * "aborted" too, so that a gateway that predates rejections (a rolling
 * upgrade or a rollback) answers it "conflict", never "duplicate" (which a
 * client takes as applied), and keeps it when it rewrites the node. */
static char *client_data(const client_rec *c, const char *sub, json_int_t last, const mut *ms, size_t from, size_t end) {
    GArray *all = g_array_copy(c->memo);
    memo_add(all, ms, from, end);
    sbuf b = SBUF_INIT;
    sbuf_printf(&b, "{\"last\":%lld,", (long long)last);
    if (sub) {
        sbuf_puts(&b, "\"sub\":");
        sbuf_json_str(&b, sub, strlen(sub));
        sbuf_putc(&b, ',');
    }
    sbuf_puts(&b, "\"conflicts\":");
    memo_ids_json(&b, all, MEMO_CONFLICT);
    sbuf_puts(&b, ",\"aborted\":");
    memo_ids_json(&b, all, MEMO_ABORTED);
    bool first = true;
    for (guint i = 0; i < all->len; i++) {
        const memo *e = &g_array_index(all, memo, i);
        if (e->kind != MEMO_REJECTED) continue;
        sbuf_printf(&b, "%s[%lld,\"%s\"]", first ? ",\"rejected\":[" : ",", (long long)e->id, REJ_NAMES[e->reason]);
        first = false;
    }
    if (!first) sbuf_putc(&b, ']');
    sbuf_putc(&b, '}');
    g_array_free(all, TRUE);
    return sbuf_steal(&b, NULL);
}

/* ---- key state ------------------------------------------------------------ */

static void kstate_free(gpointer p) {
    kstate *k = p;
    free(k->value);
    free(k);
}

static kstate *kstate_copy(const kstate *k) {
    kstate *c = malloc(sizeof *c);
    if (!c) return NULL;
    *c = *k;
    c->value = k->value ? strndup(k->value, k->vlen) : NULL;
    if (k->value && !c->value) { /* not a tombstone: out of memory */
        free(c);
        return NULL;
    }
    return c;
}

/* The fast path: the keys' states from the mirror. The multi's version
 * checks (setData with the version, create of an absent key) catch a stale
 * mirror; a verdict the multi cannot check (a conflict, a delete of an
 * absent key) is never taken from it (see run_chunk). Returns false, with
 * states empty again, when the mirror cannot say for some key. */
static bool mirror_states(push_req *r, size_t from, size_t end, GHashTable *states) {
    for (size_t i = from; i < end; i++) {
        mut *m = &r->muts[i];
        if (g_hash_table_contains(states, m->path)) continue;
        kstate *k = calloc(1, sizeof *k);
        int32_t zver = 0;
        int rc = k ? mirror_peek(r->mirror, m->key, m->klen, &k->node, &zver, &k->value, &k->vlen) : -1;
        if (rc < 0) {
            /* Given up: leave nothing of the mirror's behind. read_states
             * keeps what states already holds, and a key judged on the
             * mirror's state alone is what the slow path is for. */
            free(k);
            g_hash_table_remove_all(states);
            return false;
        }
        if (rc == 0) k->node = false;
        k->zver = zver;
        g_hash_table_insert(states, m->path, k);
    }
    return true;
}

/* Did the evaluation reach a verdict the multi will not check? (A quota
 * rejection rests on the key's state too: a key the mirror thinks absent
 * may exist.) */
static bool unchecked_verdict(const push_req *r, size_t from, size_t end) {
    for (size_t i = from; i < end; i++) {
        const mut *m = &r->muts[i];
        if (m->status == ST_CONFLICT || (m->status == ST_APPLIED && !m->changed && !m->tx) ||
            (m->status == ST_REJECTED && m->reason == REJ_QUOTA))
            return true;
    }
    return false;
}

/* Reads the present state of every key of muts[from..end) into states
 * (path -> kstate), all reads pipelined in one round trip, after a
 * ZooKeeper sync (once per request: a server may lag behind the leader, and
 * conflicts are judged on these states). Returns ZOK or an error. */
static int read_states(push_req *r, size_t from, size_t end, GHashTable *states) {
    if (!r->synced) {
        int64_t t0 = zs_clock_us();
        int src = zkc_sync(r->env->z, BOUND_SYNC_MS);
        zs_metrics_zk(r->env->metrics, ZS_OP_SYNC, zs_clock_us() - t0, src);
        if (src != ZOK) return src;
        r->synced = true;
    }
    const char **paths = calloc(end - from + 1, sizeof *paths);
    if (!paths) return ZSYSTEMERROR;
    int n = 0;
    GHashTable *asked = g_hash_table_new(g_str_hash, g_str_equal);
    for (size_t i = from; i < end; i++) {
        const char *p = r->muts[i].path;
        if (g_hash_table_contains(states, p) || g_hash_table_contains(asked, p)) continue;
        g_hash_table_add(asked, (gpointer)p);
        paths[n++] = p;
    }
    g_hash_table_destroy(asked);
    zkc_got *got = calloc((size_t)n + 1, sizeof *got);
    int64_t t0 = zs_clock_us();
    int rc = got ? zkc_get_many(r->env->z, paths, n, got, BOUND_READ_MS) : ZSYSTEMERROR;
    zs_metrics_zk(r->env->metrics, ZS_OP_READ, zs_clock_us() - t0, rc);
    for (int i = 0; rc == ZOK && i < n; i++) {
        if (got[i].rc != ZOK && got[i].rc != ZNONODE) { rc = got[i].rc; break; }
        kstate *k = calloc(1, sizeof *k);
        if (!k) { rc = ZSYSTEMERROR; break; }
        if (got[i].rc == ZOK) {
            k->node = true;
            k->zver = got[i].st.version;
            sbuf v = SBUF_INIT;
            jraw_err je;
            /* A value that is not JSON (a foreign write) counts as deleted,
             * as the feed serves it; running out of memory is not that. */
            if (got[i].len > 0 && jraw_compact(got[i].data, (size_t)got[i].len, &v, &je) == 0) {
                k->vlen = v.len;
                k->value = sbuf_steal(&v, NULL);
                if (!k->value) { free(k); rc = ZSYSTEMERROR; break; }
            } else if (sbuf_failed(&v)) {
                sbuf_free(&v);
                free(k);
                rc = ZSYSTEMERROR;
                break;
            }
            sbuf_free(&v);
        }
        g_hash_table_insert(states, (gpointer)paths[i], k);
    }
    zkc_got_free(got, n);
    free(paths);
    return rc;
}

static bool base_matches(const kstate *k, json_int_t base) {
    if (base == 0) return k->value == NULL; /* absent or deleted */
    return k->node && base == (json_int_t)k->zver + 1;
}

static void set_current(mut *m, const kstate *k) {
    free(m->cur_value);
    m->cur_value = k->value ? strndup(k->value, k->vlen) : NULL;
    m->cur_version = k->node ? k->zver + 1 : 0;
}

/* ---- evaluation of one chunk ---------------------------------------------- */

/* Makes room for one operation at o->n, owned by owner (NULL: the client
 * node's or the config check); the caller then writes o->ops[o->n++]. */
static int op_push(opbuf *o, mut *owner) {
    if (o->n == o->cap) {
        /* A one-put push needs 3. (64 to start, 4 KiB, was a large-bin
         * request: malloc_consolidate on every push.) */
        size_t cap = o->cap ? o->cap * 2 : 8;
        zoo_op_t *ops = realloc(o->ops, cap * sizeof *ops);
        if (!ops) return -1;
        o->ops = ops;
        mut **ow = realloc(o->owner, cap * sizeof *ow);
        if (!ow) return -1;
        o->owner = ow;
        o->cap = cap;
    }
    o->owner[o->n] = owner;
    return 0;
}

/* Applies m to k in memory and adds its operation. -1 on allocation failure. */
static int apply_one(mut *m, kstate *k, opbuf *o) {
    if (!m->put && k->value == NULL) { /* deleting what is absent: nothing to write */
        if (m->tx) {
            /* Inside a group the verdict must still hold at commit: check
             * the tombstone's version, or that the key is still absent (a
             * create and delete of it fail with ZNODEEXISTS if someone
             * created it meanwhile; then the chunk is evaluated again). */
            if (op_push(o, m) < 0) return -1;
            if (k->node) {
                zoo_check_op_init(&o->ops[o->n++], m->path, k->zver);
            } else {
                zoo_create_op_init(&o->ops[o->n++], m->path, "", 0, o->acl, 0, NULL, 0);
                if (op_push(o, m) < 0) return -1;
                zoo_delete_op_init(&o->ops[o->n++], m->path, 0);
            }
        }
        m->status = ST_APPLIED;
        m->changed = false;
        m->has_version = k->node;
        m->version = k->node ? k->zver + 1 : 0;
        return 0;
    }
    if (op_push(o, m) < 0) return -1;
    if (m->put && !k->node) {
        zoo_create_op_init(&o->ops[o->n], m->path, m->value, (int)m->vlen, o->acl, 0, NULL, 0);
        k->node = true;
        k->zver = 0;
    } else {
        zoo_set_op_init(&o->ops[o->n], m->path, m->put ? m->value : "", m->put ? (int)m->vlen : 0, k->zver, NULL);
        k->zver++;
    }
    o->n++;
    free(k->value);
    k->value = m->put ? strndup(m->value, m->vlen) : NULL;
    k->vlen = m->put ? m->vlen : 0;
    if (m->put && !k->value) return -1;
    m->status = ST_APPLIED;
    m->changed = true;
    m->has_version = true;
    m->version = k->zver + 1;
    return 0;
}

static void reset_outcome(mut *m) {
    m->status = ST_PENDING;
    m->reason = REJ_NONE;
    m->aborted = m->changed = m->has_version = false;
    free(m->cur_value);
    m->cur_value = NULL;
}

static void reject(mut *m, rej_reason why) {
    reset_outcome(m);
    m->status = ST_REJECTED;
    m->reason = why;
}

/* Would m, applied to the key's state k, take the store past a quota
 * (PROTOCOL.md "Quotas")? When not, counts it in the request's totals.
 * Only growth is refused: deletes and replacements by no larger values
 * always pass. */
static bool over_quota(push_req *r, const mut *m, const kstate *k) {
    if (!r->quotas) return false;
    int64_t was_live = k->value != NULL, live = m->put;
    int64_t was = was_live ? (int64_t)(m->klen + k->vlen) : 0, now = m->put ? (int64_t)(m->klen + m->vlen) : 0;
    int64_t drec = live - was_live, dbytes = now - was;
    if (drec > 0 && r->cfg->max_records && r->q_records + drec > r->cfg->max_records) return true;
    if (dbytes > 0 && r->cfg->max_bytes && r->q_bytes + dbytes > r->cfg->max_bytes) return true;
    r->q_records += drec;
    r->q_bytes += dbytes;
    return false;
}

/* Rejects a unit whose members the store's rules refuse whatever the state
 * (write scopes, schema): those with their reason, the rest of a group
 * tx_aborted. Returns whether it did. */
static bool refuse_unit(push_req *r, const unit *un) {
    bool any = false;
    for (size_t i = un->first; i < un->end; i++) any |= r->muts[i].refused != REJ_NONE;
    if (!any) return false;
    for (size_t i = un->first; i < un->end; i++) {
        mut *m = &r->muts[i];
        reject(m, m->refused != REJ_NONE ? m->refused : REJ_TX_ABORTED);
    }
    return true;
}

/* Evaluates units[u0..u1) in id order against states, filling ops. Per
 * unit: a refusal by the store's rules first (it rejects a group that would
 * also conflict), then each member's base and quota in turn. In a group, a
 * quota rejection rejects the group (the rest tx_aborted); else a conflict
 * aborts it (the rest conflict with reason tx_aborted). */
int push_evaluate(push_req *r, const unit *units, size_t u0, size_t u1, GHashTable *states, opbuf *o) {
    for (size_t u = u0; u < u1; u++) {
        const unit *un = &units[u];
        if (r->muts[un->first].id <= r->cl.last) { /* applied meanwhile by a retry elsewhere */
            for (size_t i = un->first; i < un->end; i++) reset_outcome(&r->muts[i]);
            continue;
        }
        if (refuse_unit(r, un)) continue;
        size_t ops_before = o->n;
        int64_t q_records0 = r->q_records, q_bytes0 = r->q_bytes;
        GHashTable *snap = NULL;
        if (un->group) {
            snap = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, kstate_free);
            for (size_t i = un->first; i < un->end; i++) {
                const mut *m = &r->muts[i];
                if (!g_hash_table_contains(snap, m->path)) {
                    kstate *c = kstate_copy(g_hash_table_lookup(states, m->path));
                    if (!c) { g_hash_table_destroy(snap); return -1; }
                    g_hash_table_insert(snap, m->path, c);
                }
            }
        }
        size_t culprit = SIZE_MAX; /* the mutation that made its group fail */
        bool rejected = false;     /* ... by a quota */
        for (size_t i = un->first; i < un->end; i++) {
            mut *m = &r->muts[i];
            reset_outcome(m);
            kstate *k = g_hash_table_lookup(states, m->path);
            bool ok = r->cfg->lww || !m->has_base || base_matches(k, m->base);
            if (!ok) {
                m->status = ST_CONFLICT;
                set_current(m, k); /* the state at its point, inside a group too */
                /* The group fails; the rest is still judged, for a quota
                 * rejection that would outrank the conflict. */
                if (un->group && culprit == SIZE_MAX) culprit = i;
                continue;
            }
            if (over_quota(r, m, k)) {
                reject(m, REJ_QUOTA);
                if (un->group) { culprit = i; rejected = true; break; }
                continue;
            }
            if (apply_one(m, k, o) < 0) { if (snap) g_hash_table_destroy(snap); return -1; }
        }
        if (culprit != SIZE_MAX) {
            /* Abort: restore the keys, the totals, and drop the group's
             * ops; the other members report the present (pre-group) state,
             * or are rejected with the group. */
            o->n = ops_before;
            r->q_records = q_records0;
            r->q_bytes = q_bytes0;
            GHashTableIter it;
            gpointer pk, pv;
            g_hash_table_iter_init(&it, snap);
            while (g_hash_table_iter_next(&it, &pk, &pv)) {
                g_hash_table_iter_steal(&it);
                g_hash_table_insert(states, pk, pv);
            }
            for (size_t i = un->first; i < un->end; i++) {
                if (i == culprit) continue;
                mut *m = &r->muts[i];
                if (rejected) {
                    reject(m, REJ_TX_ABORTED);
                    continue;
                }
                reset_outcome(m);
                m->status = ST_CONFLICT;
                m->aborted = true;
                set_current(m, g_hash_table_lookup(states, m->path));
            }
        }
        if (snap) g_hash_table_destroy(snap);
    }
    return 0;
}

/* ---- running a request ------------------------------------------------------ */

/* Hands what the multi wrote to the mirror (its result's zxid is the client
 * node's mzxid: one transaction). */
static void note_writes(push_req *r, size_t from, size_t end, const struct Stat *cstat) {
    if (!r->mirror) return;
    mirror_write *w = calloc(end - from + 1, sizeof *w);
    if (!w) return; /* only a hint: the event's read brings the same */
    size_t n = 0;
    for (size_t i = from; i < end; i++) {
        const mut *m = &r->muts[i];
        if (m->status != ST_APPLIED || !m->changed) continue;
        w[n++] = (mirror_write){m->key, m->klen, m->put ? m->value : NULL, m->put ? m->vlen : 0, m->version - 1};
    }
    mirror_note_writes(r->mirror, r->cfg->czxid, w, n, (uint64_t)cstat->mzxid, cstat->mtime);
    free(w);
}

/* PROTOCOL.md v1.1 "Client ids belong to a user": the sub a push records
 * in the client node when it holds none yet: the token's, except for
 * admin tokens and gateways without authentication (anonymous admin), which
 * are exempt and bind nothing. */
static const char *binding_sub(const push_req *r) {
    if (r->cl.sub) return r->cl.sub; /* kept as is, whoever writes */
    return r->who && !auth_is_admin(r->who) ? auth_principal_sub(r->who) : NULL;
}

/* Is the client id bound to another sub than the token's? */
static bool client_foreign(const push_req *r) {
    if (!r->who || auth_is_admin(r->who) || !r->cl.sub) return false;
    const char *sub = auth_principal_sub(r->who);
    return strcmp(r->cl.sub, sub ? sub : "") != 0;
}

static bool retryable(int rc) { return rc == ZBADVERSION || rc == ZNODEEXISTS || rc == ZNONODE; }

/* Applies units[u0..u1) as one multi. Returns ZOK, or a ZooKeeper error
 * that is not a lost race (races are retried here). */
/* Did the evaluation of muts[from..end) reject one for a quota? */
static bool quota_rejected(const push_req *r, size_t from, size_t end) {
    for (size_t i = from; i < end; i++)
        if (r->muts[i].status == ST_REJECTED && r->muts[i].reason == REJ_QUOTA) return true;
    return false;
}

static int run_chunk(push_req *r, const unit *units, size_t u0, size_t u1) {
    size_t from = units[u0].first, end = units[u1 - 1].end;
    int rc = ZOK, quota_waits = 0;
    for (int attempt = 0; attempt < BOUND_WRITE_ATTEMPTS; attempt++) {
        /* Someone (a retry through another gateway) may have applied part of
         * this meanwhile: answer those from the client record. */
        if (r->muts[end - 1].id <= r->cl.last) {
            for (size_t i = from; i < end; i++) reset_outcome(&r->muts[i]);
            return ZOK;
        }
        /* A quota is judged on the mirror's totals: first make them
         * reflect everything committed before this request (another
         * gateway's writes included), once per request. */
        if (r->quotas && !r->caught_up) {
            int crc = mirror_catch_up(r->mirror, r->cfg->czxid, BOUND_CATCH_UP_MS);
            if (crc == MIRROR_GONE) return PUSH_CONFIG_CHANGED; /* deleted: the caller reads it again (404) */
            if (crc < 0) return ZOPERATIONTIMEOUT;
            r->caught_up = true;
        }
        GHashTable *states = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, kstate_free);
        opbuf o = {.acl = zkc_acl(r->env->z)};
        char *cdata = NULL;
        zoo_op_result_t *res = NULL;
        struct Stat cstat;
        int failed = -1;
        int64_t q_records0 = 0, q_bytes0 = 0, res_records = 0, res_bytes = 0;
        if (r->quotas) {
            mirror_quota_totals(r->mirror, &q_records0, &q_bytes0);
            r->q_records = q_records0;
            r->q_bytes = q_bytes0;
        }
        /* First try: the mirror's states, unless a verdict would rest on
         * them alone; then (and after any lost race) ZooKeeper's. */
        bool fast = attempt == 0 && r->mirror && mirror_states(r, from, end, states);
        if (fast && push_evaluate(r, units, u0, u1, states, &o) == 0 && !unchecked_verdict(r, from, end)) {
            rc = ZOK;
        } else {
            if (fast) {
                g_hash_table_remove_all(states);
                o.n = 0;
                r->q_records = q_records0;
                r->q_bytes = q_bytes0;
            }
            rc = read_states(r, from, end, states);
            if (rc == ZOK && push_evaluate(r, units, u0, u1, states, &o) < 0) rc = ZSYSTEMERROR;
        }
        /* A quota rejection is for ever: not while other pushes hold room
         * (see mirror_quota_drain); wait for them, then judge again. */
        bool quota_wait = false;
        if (rc == ZOK && r->quotas && quota_waits < BOUND_QUOTA_WAITS && quota_rejected(r, from, end) &&
            mirror_quota_busy(r->mirror)) {
            quota_wait = true;
            quota_waits++;
            rc = ZBADVERSION;
        }
        if (rc == ZOK && r->quotas) {
            /* Hold the room this chunk takes until the mirror holds it. */
            res_records = r->q_records > q_records0 ? r->q_records - q_records0 : 0;
            res_bytes = r->q_bytes > q_bytes0 ? r->q_bytes - q_bytes0 : 0;
            if (!mirror_quota_reserve(r->mirror, res_records, res_bytes, r->cfg->max_records, r->cfg->max_bytes)) {
                res_records = res_bytes = 0;
                rc = ZBADVERSION; /* others took the room meanwhile: judge again */
            }
        }
        int cfg_op = -1;
        if (rc == ZOK) {
            cdata = client_data(&r->cl, binding_sub(r), r->muts[end - 1].id, r->muts, from, end);
            /* (op_push makes room for the one operation at o.n: each is
             * pushed right before it is written. Two pushes before two
             * writes made room for one, and a chunk whose evaluation
             * ended one short of the buffer's size wrote past its end.) */
            if (!cdata || op_push(&o, NULL) < 0) rc = ZSYSTEMERROR;
            else zoo_set_op_init(&o.ops[o.n++], r->cl.path, cdata, (int)strlen(cdata), r->cl.zver, &cstat);
        }
        if (rc == ZOK && op_push(&o, NULL) < 0) rc = ZSYSTEMERROR;
        if (rc == ZOK) {
            /* The multi holds only under the store config it was judged
             * against (schema, quotas, conflict mode, value size): a change
             * made meanwhile, through any gateway, fails it, and the push is
             * judged again under the new config (see api.c h_push). */
            cfg_op = (int)o.n;
            zoo_check_op_init(&o.ops[o.n++], r->spath, r->cfg->zversion);
            res = calloc(o.n, sizeof *res);
            size_t bytes = 2 * PUSH_OP_OVERHEAD + strlen(r->cl.path) + strlen(cdata) + strlen(r->spath);
            for (size_t i = from; i < end; i++) bytes += mut_bytes(r, &r->muts[i]);
            rc = res ? committer_multi(r->env->commit, o.ops, res, (int)o.n, bytes, &failed) : ZSYSTEMERROR;
        }
        int bad_op = rc == ZOK ? -1 : failed;
        bool cfg_changed = bad_op >= 0 && bad_op == cfg_op;
        bool client_raced = bad_op >= 0 && o.owner[bad_op] == NULL && !cfg_changed;
        free(res);
        free(o.ops);
        free(o.owner);
        free(cdata);
        g_hash_table_destroy(states);
        if (rc == ZOK) note_writes(r, from, end, &cstat);
        if (res_records || res_bytes) mirror_quota_release(r->mirror, res_records, res_bytes);
        if (rc == ZOK) {
            r->cl.zver = cstat.version;
            r->cl.last = r->muts[end - 1].id;
            for (size_t i = from; i < end; i++) r->muts[i].zxid = (uint64_t)cstat.mzxid;
            memo_add(r->cl.memo, r->muts, from, end); /* as client_data wrote them */
            if (!r->cl.sub && binding_sub(r)) r->cl.sub = strdup(binding_sub(r)); /* NULL on OOM: the cache just lacks it */
            return ZOK;
        }
        if (cfg_changed) return PUSH_CONFIG_CHANGED;
        if (quota_wait) {
            mirror_quota_drain(r->mirror, BOUND_QUOTA_DRAIN_MS);
            continue;
        }
        if (!retryable(rc)) return rc;
        if (client_raced || rc == ZNONODE) {
            if (!r->synced) { /* our server may lag behind: catch up before reading again */
                int src = zkc_sync(r->env->z, BOUND_SYNC_MS);
                if (src != ZOK) return src;
                r->synced = true;
            }
            int crc = client_read(r);
            if (crc != ZOK) return crc;
            /* another user's first push may have bound the id meanwhile */
            if (client_foreign(r)) return PUSH_FOREIGN_CLIENT;
        }
    }
    return rc;
}

static void write_current(const push_req *r, sbuf *b, const mut *m) {
    sbuf_puts(b, ",\"current\":");
    if (r->who && !auth_key_readable(r->who, r->cfg->name, m->key, m->klen)) {
        /* outside the read set: the version only (PROTOCOL.md v1.1, Push) */
        sbuf_printf(b, "{\"version\":%ld}", (long)m->cur_version);
        return;
    }
    if (!m->cur_value) { sbuf_puts(b, "null"); return; }
    sbuf_puts(b, "{\"value\":");
    sbuf_puts(b, m->cur_value);
    sbuf_printf(b, ",\"version\":%ld}", (long)m->cur_version);
}

/* Answers a mutation at or below the recorded last id. */
static int answer_old(push_req *r, mut *m) {
    const memo *e = memo_find(r->cl.memo, m->id);
    if (!e) { m->status = ST_DUPLICATE; return ZOK; }
    if (e->kind == MEMO_REJECTED) { reject(m, (rej_reason)e->reason); return ZOK; }
    GHashTable *states = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, kstate_free);
    int rc = read_states(r, (size_t)(m - r->muts), (size_t)(m - r->muts) + 1, states);
    if (rc == ZOK) {
        m->status = ST_CONFLICT;
        m->aborted = e->kind == MEMO_ABORTED;
        set_current(m, g_hash_table_lookup(states, m->path));
    }
    g_hash_table_destroy(states);
    return rc;
}

static void write_response(push_req *r, mirror *mr, sbuf *out) {
    cursor_pos best = {0, 0, 0};
    bool any = false, dup = false;
    sbuf_puts(out, "{\"results\":[");
    for (size_t i = 0; i < r->n; i++) {
        mut *m = &r->muts[i];
        static const char *const names[] = {[ST_APPLIED] = "applied", [ST_CONFLICT] = "conflict",
                                            [ST_DUPLICATE] = "duplicate", [ST_REJECTED] = "rejected"};
        assert(m->status != ST_PENDING);
        sbuf_printf(out, "%s{\"id\":%lld,\"status\":\"%s\"", i ? "," : "", (long long)m->id, names[m->status]);
        if (m->status == ST_APPLIED) {
            if (m->has_version) sbuf_printf(out, ",\"version\":%ld", (long)m->version);
            if (m->changed) {
                cursor_pos p = {m->zxid, m->khash, (uint32_t)m->version};
                char cur[CURSOR_LEN + 1];
                cursor_format(&p, cur);
                sbuf_printf(out, ",\"cursor\":\"%s\"", cur);
                if (!any || cursor_cmp(&p, &best) > 0) best = p;
                any = true;
            }
        } else if (m->status == ST_CONFLICT) {
            if (m->aborted) sbuf_puts(out, ",\"reason\":\"tx_aborted\"");
            write_current(r, out, m);
        } else if (m->status == ST_REJECTED) {
            sbuf_printf(out, ",\"reason\":\"%s\"", REJ_NAMES[m->reason]);
            /* the errors of a first answer (a retry answers from the memo, without them) */
            if (m->reason == REJ_INVALID_VALUE && m->refused_errors) sbuf_printf(out, ",\"errors\":%s", m->refused_errors);
        } else {
            dup = true;
        }
        sbuf_putc(out, '}');
        if (r->env->metrics) {
            int k = m->status == ST_APPLIED ? ZS_PUSH_APPLIED : m->status == ST_CONFLICT ? ZS_PUSH_CONFLICT
                  : m->status == ST_REJECTED ? ZS_PUSH_REJECTED : ZS_PUSH_DUPLICATE;
            atomic_fetch_add(&r->env->metrics->push_outcome[k], 1);
        }
    }
    if (r->env->lg && r->env->lg->level >= ZS_LOG_DEBUG) {
        size_t k[ST_REJECTED + 1] = {0};
        for (size_t i = 0; i < r->n; i++) k[r->muts[i].status]++;
        LOG_DEBUG(r->env->lg, "push %s client %s ids %lld..%lld: %zu applied, %zu conflict, %zu duplicate, %zu rejected; last %lld",
                  r->cfg->name, r->client, r->n ? (long long)r->muts[0].id : 0LL, r->n ? (long long)r->muts[r->n - 1].id : 0LL,
                  k[ST_APPLIED], k[ST_CONFLICT], k[ST_DUPLICATE], k[ST_REJECTED], (long long)r->cl.last);
    }
    /* Read-your-writes: from this cursor on, the feed reflects every applied
     * mutation. Duplicates were applied earlier at unknown positions: the
     * mirror's watermark after a sync covers them. */
    if (dup) (void)mirror_catch_up(mr, r->cfg->czxid, BOUND_CATCH_UP_MS);
    cursor_pos w = cursor_after_zxid(mirror_watermark(mr));
    if (!any || (dup && cursor_cmp(&w, &best) > 0)) best = w;
    char cur[CURSOR_LEN + 1];
    cursor_format(&best, cur);
    sbuf_printf(out, "],\"lastMutationId\":%lld,\"cursor\":\"%s\"}", (long long)r->cl.last, cur);
}

static void req_free(push_req *r) {
    for (size_t i = 0; i < r->n; i++) {
        free(r->muts[i].value);
        free(r->muts[i].key);
        free(r->muts[i].tx);
        free(r->muts[i].path);
        free(r->muts[i].cur_value);
        free(r->muts[i].refused_errors);
    }
    free(r->muts);
    free(r->client);
    free(r->spath);
    sbuf_free(&r->body);
    free(r->cl.path);
    if (r->cl.memo) g_array_free(r->cl.memo, TRUE);
    free(r->cl.sub);
    free(r->buf);
}

int push_budget(const push_env *env, const char *subject, size_t mutations, size_t bytes, zs_err *err) {
    int64_t now = zs_clock_ms();
    int retry = 0;
    if (mutations && env->budget_mutations &&
        !zs_limit_take(env->budget_mutations, subject, (double)mutations, now, &retry)) {
        if (env->metrics) atomic_fetch_add(&env->metrics->limited[ZS_LIMIT_WRITE_MUTATIONS], 1);
        zs_err_set(err, 429, "too_many_requests", "over this subject's write budget of mutations per second; retry in %d s", retry);
        err->retry_after = retry;
        return -1;
    }
    if (bytes && env->budget_bytes && !zs_limit_take(env->budget_bytes, subject, (double)bytes, now, &retry)) {
        if (mutations && env->budget_mutations) zs_limit_refund(env->budget_mutations, subject, (double)mutations);
        if (env->metrics) atomic_fetch_add(&env->metrics->limited[ZS_LIMIT_WRITE_BYTES], 1);
        zs_err_set(err, 429, "too_many_requests", "over this subject's write budget of bytes per second; retry in %d s", retry);
        err->retry_after = retry;
        return -1;
    }
    return 0;
}

/* The store's schema (PROTOCOL.md "Schemas"): each new put whose value
 * fails it is refused (rejected, invalid_value, with the first errors);
 * evaluation then rejects its group whole. Old ids are answered from the
 * client record (a retry's "rejected" carries no errors). The schema is the
 * one of the config this push evaluates (r->cfg owns a reference). -1 and
 * err (500) when validation itself failed (memory): nothing is applied. */
static int check_schema(push_req *r, size_t from, zs_err *err) {
    if (!r->cfg->schema) return 0;
    const schema_t *sc = store_schema_program(r->cfg->schema);
    for (size_t i = from; i < r->n; i++) {
        mut *m = &r->muts[i];
        if (!m->put || m->refused != REJ_NONE) continue;
        schema_errors se = SCHEMA_ERRORS_INIT;
        int v = schema_validate(sc, m->value, m->vlen, &se);
        if (v == SCHEMA_INVALID) {
            sbuf b = SBUF_INIT;
            schema_errors_json(&se, &b);
            m->refused = REJ_INVALID_VALUE;
            m->refused_errors = sbuf_steal(&b, NULL); /* NULL on no memory: rejected without errors */
        }
        schema_errors_free(&se);
        if (v == SCHEMA_ERROR) {
            zs_err_set(err, 500, "internal", "mutation %zu: the schema check failed (out of memory); nothing was applied", i);
            return -1;
        }
    }
    return 0;
}

int push_run(const push_env *env, const auth_principal *who, const char *subject, const store_cfg *cfg, const char *body,
             size_t len, sbuf *out, zs_err *err) {
    push_req r = {.env = env, .who = who, .cfg = cfg};
    unit *units = NULL;
    size_t nunits = 0;
    int rc = -1;
    pthread_mutex_t *stripe = NULL; /* held while this client's record is read and written */
    if (validate(&r, body, len, err) < 0) goto out;
    if (make_units(&r, 0, &units, &nunits, err) < 0) goto out; /* size checks before any write */
    /* Prefix scopes: a key outside the write set is refused whatever its
     * state (rejected, forbidden; its tx group with it). */
    for (size_t i = 0; who && i < r.n; i++)
        if (!auth_key_writable(who, cfg->name, r.muts[i].key, r.muts[i].klen)) r.muts[i].refused = REJ_FORBIDDEN;
    size_t wbytes = 0;
    for (size_t i = 0; i < r.n; i++) wbytes += r.muts[i].klen + r.muts[i].vlen;
    /* (a push without mutations writes nothing: it only asks lastMutationId) */
    if (r.n && push_budget(env, subject, r.n, wbytes, err) < 0) goto out;
    mirror *mr = NULL;
    int arc = mirror_set_acquire(env->mirrors, cfg->name, cfg->czxid, BOUND_LOAD_MS, &mr);
    if (arc == MIRROR_GONE) { /* deleted since cfg was read */
        zs_err_set(err, 404, "store_not_found", "store '%s' does not exist", cfg->name);
        goto out;
    }
    if (arc < 0) {
        zs_err_set(err, 503, "unavailable", "store '%s' is still loading; retry shortly", cfg->name);
        goto out;
    }
    free(units);
    units = NULL;
    r.cl.path = layout_client_path(env->root, cfg->name, r.client);
    r.spath = layout_store_path(env->root, cfg->name);
    r.cl.memo = g_array_new(FALSE, FALSE, sizeof(memo));
    if (!r.cl.path || !r.spath) { zs_err_set(err, 500, "internal", "out of memory"); goto out; }
    r.mirror = mr;
    r.quotas = cfg->max_records > 0 || cfg->max_bytes > 0;
    /* The cached client state is trusted only for a push that writes: its
     * multi checks the client node's version. A push with nothing new
     * answers lastMutationId (and duplicates) from ZooKeeper itself. */
    json_int_t min_id = r.n ? r.muts[0].id : 0;
    for (size_t i = 0; i < r.n; i++) if (r.muts[i].id < min_id) min_id = r.muts[i].id;
    if (env->clients) {
        uint64_t h = layout_key_hash(cfg->name, strlen(cfg->name)) ^ layout_key_hash(r.client, strlen(r.client));
        stripe = &env->clients->stripes[h % PUSH_STRIPES];
        pthread_mutex_lock(stripe);
    }
    /* (only when every id is new to the cache: a stale entry can then cost
     * a retry, never a wrong "duplicate") */
    int zrc = cache_get(&r) && r.n > 0 && min_id > r.cl.last ? ZOK : client_read(&r);
    if (zrc == PUSH_INVALID_CLIENT) {
        zs_err_set(err, 503, "unavailable",
                   "the exactly-once record of client '%s' in ZooKeeper is not valid; nothing was applied", r.client);
        err->retry_after = 5;
        goto out;
    }
    if (zrc != ZOK) { zkerr_unavailable(err, zrc, "reading the client's state"); goto out; }
    if (client_foreign(&r)) {
        zs_err_set(err, 403, "forbidden", "client id '%s' belongs to another user (sub) in store '%s'; use an id of your own",
                   r.client, cfg->name);
        goto out;
    }

    /* Mutations already recorded are answered; the rest is applied in
     * chunks of whole units, each chunk one multi. */
    json_int_t recorded = r.cl.last;
    size_t first_new = 0;
    while (first_new < r.n && r.muts[first_new].id <= recorded) first_new++;
    if (check_schema(&r, first_new, err) < 0) goto out;
    if (make_units(&r, first_new, &units, &nunits, err) < 0) goto out;
    /* The client node rides in every multi: its present size and, per
     * mutation, one more remembered outcome (at most MEMO_BYTES). A unit
     * alone may pass the budget by that much (each value was checked
     * against --max-tx-bytes; the node is at most ~40 KB): the multi stays
     * well below ZooKeeper's jute.maxbuffer. */
    const char *bsub = binding_sub(&r); /* written in the node too, JSON-escaped (at most 6 bytes a byte) */
    size_t client_bytes = PUSH_OP_OVERHEAD + strlen(r.cl.path) + 64 + MEMO_BYTES * (size_t)r.cl.memo->len +
                          (bsub ? 6 * strlen(bsub) + 8 : 0) +
                          PUSH_OP_OVERHEAD + strlen(r.spath); /* and the config's version check */
    size_t budget = env->max_tx_bytes > client_bytes ? env->max_tx_bytes - client_bytes : 0;
    size_t *ends = calloc(nunits + 1, sizeof *ends), nchunks = 0; /* the chunks: units [ends[i-1], ends[i]) */
    if (!ends) { zs_err_set(err, 500, "internal", "out of memory"); goto out; }
    for (size_t u0 = 0; u0 < nunits;) {
        size_t u1 = u0 + 1, bytes = units[u0].bytes;
        while (u1 < nunits && bytes + units[u1].bytes + MEMO_BYTES * (units[u1].end - units[u0].first) <= budget)
            bytes += units[u1++].bytes;
        ends[nchunks++] = u0 = u1;
    }
    /* Every chunk also rewrites the client node: the bytes budget pays for
     * what ZooKeeper writes, not only for the values. */
    if (nchunks && push_budget(env, subject, 0, nchunks * (client_bytes + MEMO_BYTES * (r.n - first_new) / nchunks), err) < 0) {
        if (env->budget_mutations) zs_limit_refund(env->budget_mutations, subject, (double)r.n);
        if (env->budget_bytes) zs_limit_refund(env->budget_bytes, subject, (double)wbytes);
        free(ends);
        goto out;
    }
    for (size_t c = 0, u0 = 0; c < nchunks; u0 = ends[c++]) {
        zrc = run_chunk(&r, units, u0, ends[c]);
        if (zrc == PUSH_CONFIG_CHANGED) {
            free(ends);
            zs_err_set(err, 503, "unavailable", "the configuration of store '%s' changed while this push was judged; retry",
                       cfg->name);
            err->retry_after = 1;
            rc = PUSH_RUN_CONFIG_CHANGED;
            goto out;
        }
        if (zrc == PUSH_FOREIGN_CLIENT) {
            free(ends);
            cache_drop(&r);
            zs_err_set(err, 403, "forbidden", "client id '%s' belongs to another user (sub) in store '%s'; use an id of your own",
                       r.client, cfg->name);
            goto out;
        }
        if (zrc != ZOK) {
            free(ends);
            cache_drop(&r);
            zkerr_unavailable(err, zrc, "applying mutations");
            goto out;
        }
    }
    free(ends);
    /* Answer from the client record: old ids, and any chunk a concurrent
     * retry applied first. */
    for (size_t i = 0; i < r.n; i++) {
        if (r.muts[i].status != ST_PENDING) continue;
        zrc = answer_old(&r, &r.muts[i]);
        if (zrc != ZOK) { zkerr_unavailable(err, zrc, "reading a record"); goto out; }
    }
    if (r.cl.exists) cache_put(&r);
    write_response(&r, mr, out);
    rc = 0;
out:
    if (stripe) pthread_mutex_unlock(stripe);
    free(units);
    req_free(&r);
    return rc;
}

int push_validate(const store_cfg *cfg, const char *root, size_t max_tx_bytes, const char *body, size_t len,
                  zs_err *err) {
    push_env env = {.root = root, .max_tx_bytes = max_tx_bytes};
    push_req r = {.env = &env, .cfg = cfg};
    unit *units = NULL;
    size_t nunits = 0;
    int rc = validate(&r, body, len, err) < 0 || make_units(&r, 0, &units, &nunits, err) < 0 ? -1 : 0;
    free(units);
    req_free(&r);
    return rc;
}

bool push_value_fits(const push_env *env, size_t vlen) {
    return vlen + PUSH_OP_OVERHEAD + LAYOUT_MAX_NAME_BYTES + zkc_acl_bytes(env->z) <= env->max_tx_bytes;
}

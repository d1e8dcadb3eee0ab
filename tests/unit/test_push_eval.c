/* Unit tests for push_evaluate (src/sync/push.c, src/sync/push_eval.h):
 * the judgement of a push's mutations against the present state of their
 * keys, without ZooKeeper. Id order (each mutation against the state the
 * previous one left), ids applied meanwhile, bases on tombstones and absent
 * keys, tx groups (all or nothing, the state restored), lww, refusals by the
 * store's rules, quotas, and the operations each verdict puts in the multi. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sync/push_eval.h"

enum { MAXM = 16 };

/* One request under evaluation: its mutations, units, key states, ops. */
typedef struct fx {
    store_cfg cfg;
    push_req r;
    mut m[MAXM];
    unit u[MAXM];
    size_t nu;
    GHashTable *states; /* path -> kstate* */
    opbuf o;
} fx;

static void kst_free(gpointer p) {
    kstate *k = p;
    free(k->value);
    free(k);
}

static fx *fx_new(void) {
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    strcpy(f->cfg.name, "s");
    f->r.cfg = &f->cfg;
    f->r.muts = f->m;
    f->states = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, kst_free);
    f->o.acl = &ZOO_OPEN_ACL_UNSAFE;
    return f;
}

static void fx_free(fx *f) {
    for (size_t i = 0; i < f->r.n; i++) free(f->m[i].cur_value);
    g_hash_table_destroy(f->states);
    free(f->o.ops);
    free(f->o.owner);
    free(f);
}

/* The record path of key (the states' key): a string that lives as long as
 * the test (a literal). */
#define PATH(key) ("/s/r/" key)

/* The present state of a key: no znode (node false), a tombstone (value
 * NULL) or a value, at znode version zver (protocol version zver + 1). */
static void state(fx *f, const char *path, bool node, int32_t zver, const char *value) {
    kstate *k = calloc(1, sizeof *k);
    assert_non_null(k);
    k->node = node;
    k->zver = zver;
    if (value) {
        k->value = strdup(value);
        assert_non_null(k->value);
        k->vlen = strlen(value);
    }
    g_hash_table_insert(f->states, (gpointer)path, k);
}

static const kstate *st(fx *f, const char *path) { return g_hash_table_lookup(f->states, path); }

#define NO_BASE (-1)

/* Appends a mutation: a put of value (NULL: a delete) to key (its path,
 * from PATH), with base (NO_BASE: none), in group tx (NULL: none). */
static mut *add(fx *f, json_int_t id, const char *path, const char *value, json_int_t base, const char *tx) {
    assert_true(f->r.n < MAXM);
    mut *m = &f->m[f->r.n++];
    memset(m, 0, sizeof *m);
    m->id = id;
    m->path = (char *)path;
    m->key = (char *)path + strlen("/s/r/");
    m->klen = strlen(m->key);
    m->put = value != NULL;
    m->value = (char *)value;
    m->vlen = value ? strlen(value) : 0;
    m->has_base = base != NO_BASE;
    m->base = base == NO_BASE ? 0 : base;
    m->tx = (char *)tx;
    return m;
}

/* Cuts the mutations into units as push.c does (a group: consecutive
 * mutations of one tx) and evaluates them all. */
static void evaluate_all(fx *f) {
    f->nu = 0;
    for (size_t i = 0; i < f->r.n;) {
        size_t j = i + 1;
        if (f->m[i].tx)
            while (j < f->r.n && f->m[j].tx && strcmp(f->m[j].tx, f->m[i].tx) == 0) j++;
        f->u[f->nu++] = (unit){i, j, f->m[i].tx != NULL, 0};
        i = j;
    }
    f->o.n = 0;
    assert_int_equal(push_evaluate(&f->r, f->u, 0, f->nu, f->states, &f->o), 0);
}

static void assert_applied(const mut *m, bool changed, int32_t version) {
    assert_int_equal(m->status, ST_APPLIED);
    assert_int_equal(m->changed, changed);
    assert_true(m->has_version);
    assert_int_equal(m->version, version);
}

static void assert_conflict(const mut *m, bool aborted, const char *cur_value, int32_t cur_version) {
    assert_int_equal(m->status, ST_CONFLICT);
    assert_int_equal(m->aborted, aborted);
    if (cur_value) assert_string_equal(m->cur_value, cur_value);
    else assert_null(m->cur_value);
    assert_int_equal(m->cur_version, cur_version);
}

static void assert_rejected(const mut *m, rej_reason why) {
    assert_int_equal(m->status, ST_REJECTED);
    assert_int_equal(m->reason, why);
    assert_false(m->changed);
}

static void assert_op(const fx *f, size_t i, int type, const char *path, int version, const mut *owner) {
    assert_true(i < f->o.n);
    const zoo_op_t *op = &f->o.ops[i];
    assert_int_equal(op->type, type);
    assert_ptr_equal(f->o.owner[i], owner);
    switch (type) {
    case ZOO_CREATE_OP: assert_string_equal(op->create_op.path, path); break;
    case ZOO_SETDATA_OP:
        assert_string_equal(op->set_op.path, path);
        assert_int_equal(op->set_op.version, version);
        break;
    case ZOO_CHECK_OP:
        assert_string_equal(op->check_op.path, path);
        assert_int_equal(op->check_op.version, version);
        break;
    case ZOO_DELETE_OP:
        assert_string_equal(op->delete_op.path, path);
        assert_int_equal(op->delete_op.version, version);
        break;
    default: fail();
    }
}

/* ---- id order -------------------------------------------------------------- */

/* Each mutation is judged against the state the previous one left: a
 * create, then a replacement and a delete whose bases are the versions the
 * earlier ones produced, each a setData with the version it read. */
static void test_each_against_the_previous(void **state_) {
    (void)state_;
    fx *f = fx_new();
    state(f, PATH("a"), false, 0, NULL);
    mut *m1 = add(f, 1, PATH("a"), "1", 0, NULL);
    mut *m2 = add(f, 2, PATH("a"), "2", 1, NULL);
    mut *m3 = add(f, 3, PATH("a"), NULL, 2, NULL);
    evaluate_all(f);
    assert_applied(m1, true, 1);
    assert_applied(m2, true, 2);
    assert_applied(m3, true, 3);
    assert_int_equal(f->o.n, 3);
    assert_op(f, 0, ZOO_CREATE_OP, PATH("a"), 0, m1);
    assert_op(f, 1, ZOO_SETDATA_OP, PATH("a"), 0, m2);
    assert_op(f, 2, ZOO_SETDATA_OP, PATH("a"), 1, m3);
    assert_int_equal(f->o.ops[2].set_op.datalen, 0); /* a tombstone */
    const kstate *k = st(f, PATH("a"));
    assert_true(k->node);
    assert_int_equal(k->zver, 2);
    assert_null(k->value);
    fx_free(f);
}

/* ... so a base read before an earlier mutation of the same request is
 * stale: a conflict reporting the state that mutation left. */
static void test_stale_base_after_earlier_mutation(void **state_) {
    (void)state_;
    fx *f = fx_new();
    state(f, PATH("a"), true, 4, "\"old\"");
    mut *m1 = add(f, 1, PATH("a"), "\"new\"", 5, NULL);
    mut *m2 = add(f, 2, PATH("a"), "\"other\"", 5, NULL);
    evaluate_all(f);
    assert_applied(m1, true, 6);
    assert_conflict(m2, false, "\"new\"", 6);
    assert_int_equal(f->o.n, 1);
    assert_op(f, 0, ZOO_SETDATA_OP, PATH("a"), 4, m1);
    fx_free(f);
}

/* A unit whose first id the client record already holds (a retry through
 * another gateway applied it meanwhile) is left pending, to be answered
 * from the record; an outcome of an earlier evaluation is cleared. */
static void test_ids_applied_meanwhile_stay_pending(void **state_) {
    (void)state_;
    fx *f = fx_new();
    f->r.cl.last = 5;
    state(f, PATH("a"), false, 0, NULL);
    state(f, PATH("b"), false, 0, NULL);
    mut *m1 = add(f, 4, PATH("a"), "1", NO_BASE, "g");
    mut *m2 = add(f, 5, PATH("b"), "1", NO_BASE, "g");
    mut *m3 = add(f, 6, PATH("a"), "2", NO_BASE, NULL);
    m1->status = m2->status = ST_APPLIED; /* as a first evaluation left them */
    m1->changed = true;
    evaluate_all(f);
    assert_int_equal(m1->status, ST_PENDING);
    assert_int_equal(m2->status, ST_PENDING);
    assert_false(m1->changed);
    assert_applied(m3, true, 1); /* judged against the state, not m1's */
    assert_int_equal(f->o.n, 1);
    assert_op(f, 0, ZOO_CREATE_OP, PATH("a"), 0, m3);
    fx_free(f);
}

/* ---- bases --------------------------------------------------------------- */

/* Base 0 means "absent or deleted": it matches no znode and a tombstone
 * alike (a put on a tombstone is a setData with its version), and not a
 * value. A tombstone's own version matches too; another one does not. */
static void test_bases_on_tombstones(void **state_) {
    (void)state_;
    fx *f = fx_new();
    state(f, PATH("t0"), true, 3, NULL);    /* tombstones, protocol version 4 */
    state(f, PATH("t4"), true, 3, NULL);
    state(f, PATH("t3"), true, 3, NULL);
    state(f, PATH("v"), true, 0, "1");      /* a value, version 1 */
    state(f, PATH("n"), false, 0, NULL);    /* no znode */
    state(f, PATH("n1"), false, 0, NULL);
    mut *m1 = add(f, 1, PATH("t0"), "1", 0, NULL);
    mut *m2 = add(f, 2, PATH("t4"), "1", 4, NULL);
    mut *m3 = add(f, 3, PATH("t3"), "1", 3, NULL);
    mut *m4 = add(f, 4, PATH("v"), "2", 0, NULL);
    mut *m5 = add(f, 5, PATH("n"), "1", 0, NULL);
    mut *m6 = add(f, 6, PATH("n1"), "1", 1, NULL);
    evaluate_all(f);
    assert_applied(m1, true, 5);
    assert_applied(m2, true, 5);
    assert_conflict(m3, false, NULL, 4);
    assert_conflict(m4, false, "1", 1);
    assert_applied(m5, true, 1);
    assert_conflict(m6, false, NULL, 0);
    assert_int_equal(f->o.n, 3);
    assert_op(f, 0, ZOO_SETDATA_OP, PATH("t0"), 3, m1);
    assert_op(f, 1, ZOO_SETDATA_OP, PATH("t4"), 3, m2);
    assert_op(f, 2, ZOO_CREATE_OP, PATH("n"), 0, m5);
    fx_free(f);
}

/* Deleting what is absent (a tombstone, or no znode) writes nothing
 * outside a group; inside one the verdict is guarded: a check of the
 * tombstone's version, or a create+delete of the absent key. */
static void test_delete_of_absent_keys(void **state_) {
    (void)state_;
    fx *f = fx_new();
    state(f, PATH("t"), true, 3, NULL);
    state(f, PATH("n"), false, 0, NULL);
    state(f, PATH("gt"), true, 7, NULL);
    state(f, PATH("gn"), false, 0, NULL);
    mut *m1 = add(f, 1, PATH("t"), NULL, 0, NULL);
    mut *m2 = add(f, 2, PATH("n"), NULL, NO_BASE, NULL);
    mut *m3 = add(f, 3, PATH("gt"), NULL, 8, "g");
    mut *m4 = add(f, 4, PATH("gn"), NULL, 0, "g");
    evaluate_all(f);
    assert_applied(m1, false, 4);
    assert_int_equal(m2->status, ST_APPLIED);
    assert_false(m2->changed);
    assert_false(m2->has_version);
    assert_int_equal(m2->version, 0);
    assert_applied(m3, false, 8);
    assert_int_equal(m4->status, ST_APPLIED);
    assert_false(m4->changed);
    assert_int_equal(f->o.n, 3);
    assert_op(f, 0, ZOO_CHECK_OP, PATH("gt"), 7, m3);
    assert_op(f, 1, ZOO_CREATE_OP, PATH("gn"), 0, m4);
    assert_op(f, 2, ZOO_DELETE_OP, PATH("gn"), 0, m4);
    fx_free(f);
}

/* lww: bases are not checked; writes still carry the version read. */
static void test_lww_ignores_bases(void **state_) {
    (void)state_;
    fx *f = fx_new();
    f->cfg.lww = true;
    state(f, PATH("a"), true, 2, "\"x\"");
    state(f, PATH("b"), false, 0, NULL);
    mut *m1 = add(f, 1, PATH("a"), "\"y\"", 1, NULL);
    mut *m2 = add(f, 2, PATH("b"), "\"y\"", 9, NULL);
    mut *m3 = add(f, 3, PATH("a"), NULL, 0, NULL);
    evaluate_all(f);
    assert_applied(m1, true, 4);
    assert_applied(m2, true, 1);
    assert_applied(m3, true, 5);
    assert_op(f, 0, ZOO_SETDATA_OP, PATH("a"), 2, m1);
    assert_op(f, 1, ZOO_CREATE_OP, PATH("b"), 0, m2);
    assert_op(f, 2, ZOO_SETDATA_OP, PATH("a"), 3, m3);
    fx_free(f);
}

/* ---- groups -------------------------------------------------------------- */

/* A group that holds applies whole, each member against the state the
 * previous member left. */
static void test_group_applies_whole(void **state_) {
    (void)state_;
    fx *f = fx_new();
    state(f, PATH("a"), false, 0, NULL);
    state(f, PATH("b"), true, 0, "1");
    mut *m1 = add(f, 1, PATH("a"), "1", 0, "g");
    mut *m2 = add(f, 2, PATH("b"), "2", 1, "g");
    mut *m3 = add(f, 3, PATH("a"), "2", 1, "g");
    evaluate_all(f);
    assert_applied(m1, true, 1);
    assert_applied(m2, true, 2);
    assert_applied(m3, true, 2);
    assert_int_equal(f->o.n, 3);
    fx_free(f);
}

/* A conflict aborts its group: no operation of the group is kept, the keys
 * are back to their state before it (the next unit is judged against
 * that), the conflicting member reports the state at its point and the
 * others conflict as aborted, reporting the state before the group. */
static void test_group_conflict_aborts_and_restores(void **state_) {
    (void)state_;
    fx *f = fx_new();
    state(f, PATH("a"), false, 0, NULL);
    state(f, PATH("b"), true, 1, "\"b\"");
    mut *m0 = add(f, 1, PATH("b"), "\"b1\"", 2, NULL);   /* applies before the group */
    mut *m1 = add(f, 2, PATH("a"), "1", 0, "g");
    mut *m2 = add(f, 3, PATH("a"), "2", 1, "g");         /* sees m1's state */
    mut *m3 = add(f, 4, PATH("b"), "\"b2\"", 2, "g");    /* stale: m0 made it 3 */
    mut *m4 = add(f, 5, PATH("a"), "\"after\"", 0, NULL); /* a is absent again */
    evaluate_all(f);
    assert_applied(m0, true, 3);
    assert_conflict(m1, true, NULL, 0);
    assert_conflict(m2, true, NULL, 0);
    assert_conflict(m3, false, "\"b1\"", 3);
    assert_applied(m4, true, 1);
    assert_int_equal(f->o.n, 2);
    assert_op(f, 0, ZOO_SETDATA_OP, PATH("b"), 1, m0);
    assert_op(f, 1, ZOO_CREATE_OP, PATH("a"), 0, m4);
    fx_free(f);
}

/* The first conflict is the culprit; a later one in the same group is
 * reported as aborted. */
static void test_group_first_conflict_is_the_culprit(void **state_) {
    (void)state_;
    fx *f = fx_new();
    state(f, PATH("a"), true, 0, "1");
    state(f, PATH("b"), true, 0, "1");
    mut *m1 = add(f, 1, PATH("a"), "2", 7, "g");
    mut *m2 = add(f, 2, PATH("b"), "2", 7, "g");
    evaluate_all(f);
    assert_conflict(m1, false, "1", 1);
    assert_conflict(m2, true, "1", 1);
    assert_int_equal(f->o.n, 0);
    fx_free(f);
}

/* Evaluating again (after a lost race, against fresh states) starts from
 * scratch: the earlier outcomes are cleared, cur_value included. */
static void test_evaluate_again(void **state_) {
    (void)state_;
    fx *f = fx_new();
    state(f, PATH("a"), true, 0, "1");
    mut *m1 = add(f, 1, PATH("a"), "2", 2, NULL);
    evaluate_all(f);
    assert_conflict(m1, false, "1", 1);
    state(f, PATH("a"), true, 1, "\"x\""); /* what ZooKeeper now says */
    evaluate_all(f);
    assert_applied(m1, true, 3);
    assert_null(m1->cur_value);
    assert_int_equal(f->o.n, 1);
    fx_free(f);
}

/* ---- rejections ------------------------------------------------------------ */

/* A mutation the store's rules refuse (write scope, schema) is rejected
 * with its reason whatever the state; its group with it (tx_aborted), a
 * conflict in the group included; other units go on. */
static void test_refused_rejects_its_unit(void **state_) {
    (void)state_;
    fx *f = fx_new();
    state(f, PATH("a"), true, 0, "1");
    state(f, PATH("b"), false, 0, NULL);
    state(f, PATH("c"), false, 0, NULL);
    mut *m1 = add(f, 1, PATH("a"), "2", 9, "g");    /* would conflict */
    mut *m2 = add(f, 2, PATH("b"), "2", NO_BASE, "g");
    m2->refused = REJ_FORBIDDEN;
    mut *m3 = add(f, 3, PATH("c"), "\"bad\"", 0, NULL);
    m3->refused = REJ_INVALID_VALUE;
    mut *m4 = add(f, 4, PATH("c"), "3", 0, NULL);
    evaluate_all(f);
    assert_rejected(m1, REJ_TX_ABORTED);
    assert_null(m1->cur_value);
    assert_rejected(m2, REJ_FORBIDDEN);
    assert_rejected(m3, REJ_INVALID_VALUE);
    assert_applied(m4, true, 1); /* c untouched by the rejected put */
    assert_int_equal(f->o.n, 1);
    assert_op(f, 0, ZOO_CREATE_OP, PATH("c"), 0, m4);
    fx_free(f);
}

/* Quotas count growth only, in id order: a new live record or more bytes
 * past the quota is rejected (quota_exceeded); a replacement by no larger
 * a value and a delete always pass, and the room a delete frees is there
 * for the next mutation. */
static void test_quota_counts_growth_in_order(void **state_) {
    (void)state_;
    fx *f = fx_new();
    f->r.quotas = true;
    f->cfg.max_records = 2;
    f->r.q_records = 1; /* "a" */
    f->r.q_bytes = 2;   /* key "a" + value "1" */
    state(f, PATH("a"), true, 0, "1");
    state(f, PATH("b"), false, 0, NULL);
    state(f, PATH("c"), false, 0, NULL);
    mut *m1 = add(f, 1, PATH("b"), "1", NO_BASE, NULL); /* 2 records */
    mut *m2 = add(f, 2, PATH("c"), "1", NO_BASE, NULL); /* 3: over */
    mut *m3 = add(f, 3, PATH("a"), "2", NO_BASE, NULL); /* replacement */
    mut *m4 = add(f, 4, PATH("a"), NULL, NO_BASE, NULL); /* frees one */
    mut *m5 = add(f, 5, PATH("c"), "1", NO_BASE, NULL); /* fits now */
    evaluate_all(f);
    assert_applied(m1, true, 1);
    assert_rejected(m2, REJ_QUOTA);
    assert_applied(m3, true, 2);
    assert_applied(m4, true, 3);
    assert_applied(m5, true, 1);
    assert_int_equal(f->r.q_records, 2);
    assert_int_equal(f->r.q_bytes, 4);
    assert_int_equal(f->o.n, 4);
    fx_free(f);
}

static void test_quota_bytes(void **state_) {
    (void)state_;
    fx *f = fx_new();
    f->r.quotas = true;
    f->cfg.max_bytes = 10;
    f->r.q_records = 1;
    f->r.q_bytes = 6; /* "a" + "12345" */
    state(f, PATH("a"), true, 0, "12345");
    state(f, PATH("b"), false, 0, NULL);
    mut *m1 = add(f, 1, PATH("a"), "123456789", NO_BASE, NULL); /* 10 bytes: fits */
    mut *m2 = add(f, 2, PATH("b"), "1", NO_BASE, NULL);         /* 12: over */
    mut *m3 = add(f, 3, PATH("a"), "1234567", NO_BASE, NULL);   /* smaller: passes */
    mut *m4 = add(f, 4, PATH("b"), "1", NO_BASE, NULL);         /* 10: fits now */
    evaluate_all(f);
    assert_applied(m1, true, 2);
    assert_rejected(m2, REJ_QUOTA);
    assert_applied(m3, true, 3);
    assert_applied(m4, true, 1);
    assert_int_equal(f->r.q_bytes, 10);
    fx_free(f);
}

/* In a group, a quota rejection rejects the group (the rest tx_aborted,
 * a conflict before it included: the rejection outranks it), and its
 * operations and counts are undone. Without quotas nothing is counted. */
static void test_group_quota_rejection(void **state_) {
    (void)state_;
    fx *f = fx_new();
    f->r.quotas = true;
    f->cfg.max_records = 2;
    f->r.q_records = 1;
    state(f, PATH("a"), true, 0, "1");
    state(f, PATH("b"), false, 0, NULL);
    state(f, PATH("c"), false, 0, NULL);
    state(f, PATH("d"), false, 0, NULL);
    mut *m1 = add(f, 1, PATH("a"), "2", 9, "g");         /* conflict */
    mut *m2 = add(f, 2, PATH("b"), "1", NO_BASE, "g");   /* 2 records */
    mut *m3 = add(f, 3, PATH("c"), "1", NO_BASE, "g");   /* 3: over */
    mut *m4 = add(f, 4, PATH("d"), "1", NO_BASE, "g");   /* not judged */
    mut *m5 = add(f, 5, PATH("b"), "1", 0, NULL);        /* b absent, room for it */
    evaluate_all(f);
    assert_rejected(m1, REJ_TX_ABORTED);
    assert_null(m1->cur_value);
    assert_rejected(m2, REJ_TX_ABORTED);
    assert_rejected(m3, REJ_QUOTA);
    assert_rejected(m4, REJ_TX_ABORTED);
    assert_applied(m5, true, 1);
    assert_int_equal(f->r.q_records, 2);
    assert_int_equal(f->o.n, 1);
    assert_op(f, 0, ZOO_CREATE_OP, PATH("b"), 0, m5);
    fx_free(f);

    f = fx_new(); /* the same without r->quotas: the config's quota is not judged here */
    f->cfg.max_records = 1;
    f->r.q_records = 5;
    state(f, PATH("b"), false, 0, NULL);
    mut *n1 = add(f, 1, PATH("b"), "1", NO_BASE, "g");
    evaluate_all(f);
    assert_applied(n1, true, 1);
    assert_int_equal(f->r.q_records, 5);
    fx_free(f);
}

/* Only units[u0..u1) are judged (push.c evaluates a chunk at a time). */
static void test_only_the_chunk(void **state_) {
    (void)state_;
    fx *f = fx_new();
    state(f, PATH("a"), false, 0, NULL);
    state(f, PATH("b"), false, 0, NULL);
    mut *m1 = add(f, 1, PATH("a"), "1", NO_BASE, NULL);
    mut *m2 = add(f, 2, PATH("b"), "1", NO_BASE, NULL);
    f->u[0] = (unit){0, 1, false, 0};
    f->u[1] = (unit){1, 2, false, 0};
    assert_int_equal(push_evaluate(&f->r, f->u, 1, 2, f->states, &f->o), 0);
    assert_int_equal(m1->status, ST_PENDING);
    assert_applied(m2, true, 1);
    assert_int_equal(f->o.n, 1);
    fx_free(f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_against_the_previous),
        cmocka_unit_test(test_stale_base_after_earlier_mutation),
        cmocka_unit_test(test_ids_applied_meanwhile_stay_pending),
        cmocka_unit_test(test_bases_on_tombstones),
        cmocka_unit_test(test_delete_of_absent_keys),
        cmocka_unit_test(test_lww_ignores_bases),
        cmocka_unit_test(test_group_applies_whole),
        cmocka_unit_test(test_group_conflict_aborts_and_restores),
        cmocka_unit_test(test_group_first_conflict_is_the_culprit),
        cmocka_unit_test(test_evaluate_again),
        cmocka_unit_test(test_refused_rejects_its_unit),
        cmocka_unit_test(test_quota_counts_growth_in_order),
        cmocka_unit_test(test_quota_bytes),
        cmocka_unit_test(test_group_quota_rejection),
        cmocka_unit_test(test_only_the_chunk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

#include "cache/store_schema.h"

#include <assert.h>
#include <glib.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct store_schema {
    atomic_uint refs;
    char *text; /* NUL-terminated compact JSON; the cache's key */
    size_t len;
    schema_t *prog;
};

struct store_schema_cache {
    pthread_mutex_t mu;            /* guards the two below; nests nothing, never held while compiling */
    GHashTable *entries;           /* text -> store_schema (not owned by the key) */
    unsigned long long compiles;
};

static void entry_free(store_schema *s) {
    schema_free(s->prog);
    free(s->text);
    free(s);
}

store_schema_cache *store_schema_cache_new(void) {
    store_schema_cache *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    pthread_mutex_init(&c->mu, NULL);
    c->entries = g_hash_table_new(g_str_hash, g_str_equal);
    return c;
}

/* Under c->mu: frees idle entries while more than the cap are idle. */
static void evict_idle(store_schema_cache *c) {
    size_t idle = 0;
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, c->entries);
    while (g_hash_table_iter_next(&it, &k, &v))
        if (atomic_load(&((store_schema *)v)->refs) == 0) idle++;
    if (idle <= STORE_SCHEMA_IDLE_MAX) return;
    g_hash_table_iter_init(&it, c->entries);
    while (idle > STORE_SCHEMA_IDLE_MAX && g_hash_table_iter_next(&it, &k, &v)) {
        store_schema *s = v;
        /* refs only rises from 0 under c->mu (a lookup): 0 here stays 0. */
        if (atomic_load(&s->refs) != 0) continue;
        g_hash_table_iter_remove(&it);
        entry_free(s);
        idle--;
    }
    assert(idle == STORE_SCHEMA_IDLE_MAX);
}

int store_schema_get(store_schema_cache *c, const char *text, size_t len, store_schema **out, char *err,
                     size_t errlen) {
    char *key = malloc(len + 1);
    if (!key) { snprintf(err, errlen, "schema: out of memory"); return -1; }
    memcpy(key, text, len);
    key[len] = 0;
    if (strlen(key) != len) { /* compact JSON escapes NUL: never from the gateway */
        free(key);
        snprintf(err, errlen, "schema: not JSON text (a NUL byte)");
        return -1;
    }
    pthread_mutex_lock(&c->mu);
    store_schema *s = g_hash_table_lookup(c->entries, key);
    if (s) atomic_fetch_add(&s->refs, 1);
    pthread_mutex_unlock(&c->mu);
    if (s) { free(key); *out = s; return 0; }
    schema_t *prog = NULL;
    if (schema_compile(text, len, NULL, &prog, err, errlen) < 0) { free(key); return -1; }
    s = calloc(1, sizeof *s);
    if (!s) { schema_free(prog); free(key); snprintf(err, errlen, "schema: out of memory"); return -1; }
    atomic_init(&s->refs, 1);
    s->text = key;
    s->len = len;
    s->prog = prog;
    pthread_mutex_lock(&c->mu);
    c->compiles++;
    store_schema *other = g_hash_table_lookup(c->entries, key);
    if (other) { /* compiled meanwhile by another thread: use that one */
        atomic_fetch_add(&other->refs, 1);
    } else {
        g_hash_table_insert(c->entries, s->text, s);
        evict_idle(c); /* s is referenced: never evicted here */
    }
    pthread_mutex_unlock(&c->mu);
    if (other) { entry_free(s); s = other; }
    *out = s;
    return 0;
}

store_schema *store_schema_ref(store_schema *s) {
    if (s) {
        /* The caller holds a reference, so refs > 0 here: it rises from 0
         * only in a lookup, under the cache's mutex (see evict_idle). */
        unsigned was = atomic_fetch_add(&s->refs, 1);
        assert(was > 0);
        (void)was;
    }
    return s;
}

void store_schema_unref(store_schema *s) {
    /* The entry stays in the cache at 0 (idle); evict_idle frees it. */
    if (!s) return;
    unsigned was = atomic_fetch_sub(&s->refs, 1);
    assert(was > 0); /* never below 0: each unref drops a reference a get or ref gave */
    (void)was;
}

const char *store_schema_text(const store_schema *s, size_t *len) {
    if (len) *len = s->len;
    return s->text;
}

const schema_t *store_schema_program(const store_schema *s) { return s->prog; }

void store_schema_cache_free(store_schema_cache *c) {
    if (!c) return;
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, c->entries);
    while (g_hash_table_iter_next(&it, &k, &v))
        if (atomic_load(&((store_schema *)v)->refs) == 0) entry_free(v);
    g_hash_table_destroy(c->entries);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

void store_schema_cache_stats(store_schema_cache *c, size_t *entries, unsigned long long *n) {
    pthread_mutex_lock(&c->mu);
    if (entries) *entries = g_hash_table_size(c->entries);
    if (n) *n = c->compiles;
    pthread_mutex_unlock(&c->mu);
}

#include "cache/store_schema.h"

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

static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static GHashTable *cache; /* text -> store_schema (not owned by the key) */
static unsigned long long compiles;

static void entry_free(store_schema *s) {
    schema_free(s->prog);
    free(s->text);
    free(s);
}

/* Under cache_mu: frees idle entries while more than the cap are idle. */
static void evict_idle(void) {
    size_t idle = 0;
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, cache);
    while (g_hash_table_iter_next(&it, &k, &v))
        if (atomic_load(&((store_schema *)v)->refs) == 0) idle++;
    if (idle <= STORE_SCHEMA_IDLE_MAX) return;
    g_hash_table_iter_init(&it, cache);
    while (idle > STORE_SCHEMA_IDLE_MAX && g_hash_table_iter_next(&it, &k, &v)) {
        store_schema *s = v;
        /* refs only rises from 0 under cache_mu (a lookup): 0 here stays 0. */
        if (atomic_load(&s->refs) != 0) continue;
        g_hash_table_iter_remove(&it);
        entry_free(s);
        idle--;
    }
}

int store_schema_get(const char *text, size_t len, store_schema **out, char *err, size_t errlen) {
    char *key = malloc(len + 1);
    if (!key) { snprintf(err, errlen, "schema: out of memory"); return -1; }
    memcpy(key, text, len);
    key[len] = 0;
    if (strlen(key) != len) { /* compact JSON escapes NUL: never from the gateway */
        free(key);
        snprintf(err, errlen, "schema: not JSON text (a NUL byte)");
        return -1;
    }
    pthread_mutex_lock(&cache_mu);
    if (!cache) cache = g_hash_table_new(g_str_hash, g_str_equal);
    store_schema *s = g_hash_table_lookup(cache, key);
    if (s) atomic_fetch_add(&s->refs, 1);
    pthread_mutex_unlock(&cache_mu);
    if (s) { free(key); *out = s; return 0; }
    schema_t *prog = NULL;
    if (schema_compile(text, len, NULL, &prog, err, errlen) < 0) { free(key); return -1; }
    s = calloc(1, sizeof *s);
    if (!s) { schema_free(prog); free(key); snprintf(err, errlen, "schema: out of memory"); return -1; }
    atomic_init(&s->refs, 1);
    s->text = key;
    s->len = len;
    s->prog = prog;
    pthread_mutex_lock(&cache_mu);
    compiles++;
    store_schema *other = g_hash_table_lookup(cache, key);
    if (other) { /* compiled meanwhile by another thread: use that one */
        atomic_fetch_add(&other->refs, 1);
    } else {
        g_hash_table_insert(cache, s->text, s);
        evict_idle();
    }
    pthread_mutex_unlock(&cache_mu);
    if (other) { entry_free(s); s = other; }
    *out = s;
    return 0;
}

store_schema *store_schema_ref(store_schema *s) {
    if (s) atomic_fetch_add(&s->refs, 1);
    return s;
}

void store_schema_unref(store_schema *s) {
    /* The entry stays in the cache at 0 (idle); evict_idle frees it. */
    if (s) atomic_fetch_sub(&s->refs, 1);
}

const char *store_schema_text(const store_schema *s, size_t *len) {
    if (len) *len = s->len;
    return s->text;
}

const schema_t *store_schema_program(const store_schema *s) { return s->prog; }

void store_schema_cache_shutdown(void) {
    pthread_mutex_lock(&cache_mu);
    if (cache) {
        GHashTableIter it;
        gpointer k, v;
        g_hash_table_iter_init(&it, cache);
        while (g_hash_table_iter_next(&it, &k, &v))
            if (atomic_load(&((store_schema *)v)->refs) == 0) entry_free(v);
        g_hash_table_destroy(cache);
        cache = NULL;
    }
    pthread_mutex_unlock(&cache_mu);
}

void store_schema_cache_stats(size_t *entries, unsigned long long *n) {
    pthread_mutex_lock(&cache_mu);
    if (entries) *entries = cache ? g_hash_table_size(cache) : 0;
    if (n) *n = compiles;
    pthread_mutex_unlock(&cache_mu);
}

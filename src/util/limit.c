#include "util/limit.h"

#include <assert.h>
#include <glib.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>

typedef struct bucket {
    double tokens;
    int64_t at_ms; /* when tokens was computed */
} bucket;

struct zs_limit {
    double rate, burst;
    pthread_mutex_t mu;   /* guards rate, burst and everything below; a leaf */
    GHashTable *subjects; /* char* -> bucket* */
    int64_t swept_ms;     /* last sweep of a full table */
};

zs_limit *zs_limit_new(double rate, double burst) {
    assert(rate >= 0 && burst >= rate);
    zs_limit *l = g_new0(zs_limit, 1);
    l->rate = rate;
    l->burst = burst;
    pthread_mutex_init(&l->mu, NULL);
    l->subjects = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    return l;
}

void zs_limit_free(zs_limit *l) {
    if (!l) return;
    g_hash_table_destroy(l->subjects);
    pthread_mutex_destroy(&l->mu);
    g_free(l);
}

static void refill(const zs_limit *l, bucket *b, int64_t now_ms) {
    if (now_ms > b->at_ms) {
        b->tokens = fmin(l->burst, b->tokens + (double)(now_ms - b->at_ms) * l->rate / 1000.0);
        b->at_ms = now_ms;
    }
}

/* Drops every subject whose bucket is full again. */
static void sweep(zs_limit *l, int64_t now_ms) {
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, l->subjects);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        bucket *b = v;
        refill(l, b, now_ms);
        if (b->tokens >= l->burst) g_hash_table_iter_remove(&it);
    }
}

void zs_limit_set(zs_limit *l, double rate, double burst) {
    assert(rate >= 0 && burst >= rate);
    pthread_mutex_lock(&l->mu);
    l->rate = rate;
    l->burst = burst;
    if (rate == 0) {
        g_hash_table_remove_all(l->subjects);
    } else {
        GHashTableIter it;
        gpointer v;
        g_hash_table_iter_init(&it, l->subjects);
        while (g_hash_table_iter_next(&it, NULL, &v)) ((bucket *)v)->tokens = fmin(burst, ((bucket *)v)->tokens);
    }
    pthread_mutex_unlock(&l->mu);
}

double zs_limit_rate(zs_limit *l) {
    pthread_mutex_lock(&l->mu);
    double r = l->rate;
    pthread_mutex_unlock(&l->mu);
    return r;
}

bool zs_limit_take(zs_limit *l, const char *subject, double cost, int64_t now_ms, int *retry_s) {
    assert(cost >= 0);
    pthread_mutex_lock(&l->mu);
    if (l->rate == 0) { /* off */
        pthread_mutex_unlock(&l->mu);
        return true;
    }
    bucket *b = g_hash_table_lookup(l->subjects, subject);
    if (!b) {
        /* A full table is swept at most once a second: O(table) under the lock. */
        if (g_hash_table_size(l->subjects) >= ZS_LIMIT_SUBJECTS && (l->swept_ms == 0 || now_ms - l->swept_ms >= 1000)) {
            sweep(l, now_ms);
            l->swept_ms = now_ms;
        }
        if (g_hash_table_size(l->subjects) >= ZS_LIMIT_SUBJECTS) {
            pthread_mutex_unlock(&l->mu);
            *retry_s = 1;
            return false;
        }
        b = g_new(bucket, 1);
        b->tokens = l->burst;
        b->at_ms = now_ms;
        g_hash_table_insert(l->subjects, g_strdup(subject), b);
    }
    refill(l, b, now_ms);
    double need = fmin(cost, l->burst);
    bool ok = b->tokens >= need;
    if (ok) b->tokens -= cost;
    else *retry_s = (int)fmin(86400.0, fmax(1.0, ceil((need - b->tokens) / l->rate)));
    pthread_mutex_unlock(&l->mu);
    return ok;
}

void zs_limit_refund(zs_limit *l, const char *subject, double cost) {
    pthread_mutex_lock(&l->mu);
    bucket *b = g_hash_table_lookup(l->subjects, subject);
    if (b) b->tokens = fmin(l->burst, b->tokens + cost);
    pthread_mutex_unlock(&l->mu);
}

unsigned zs_limit_subjects(zs_limit *l) {
    pthread_mutex_lock(&l->mu);
    unsigned n = g_hash_table_size(l->subjects);
    pthread_mutex_unlock(&l->mu);
    return n;
}

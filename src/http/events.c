#include "http/events.h"

#include "util/clock.h"

#include <glib.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "util/sbuf.h"
#include "util/names.h"

/* The streams of one mirror: all of them (for the ticker), the unfiltered
 * ones, and the filtered ones by prefix (docs/ARCHITECTURE.md, "Prefix
 * scopes"): a changed key wakes the streams registered under one of its
 * first L bytes, for each prefix length L in use. */
typedef struct ev_mirror {
    GHashTable *all;       /* set of ev_stream* */
    GHashTable *plain;     /* set of ev_stream* without a filter */
    GHashTable *byprefix;  /* prefix (NUL-terminated) -> GHashTable set of ev_stream* */
    GHashTable *lengths;   /* prefix length -> number of registrations */
} ev_mirror;

struct events {
    pthread_mutex_t mu;    /* guards byst and stop */
    pthread_cond_t cond;   /* stop was set (zs_cond_init: monotonic) */
    GHashTable *byst;      /* mirror* -> ev_mirror* */
    size_t count;          /* attached streams */
    size_t reserved;       /* started, not yet attached or done */
    size_t max_streams;
    size_t per_sub, per_addr; /* 0: no cap */
    GHashTable *by_sub;    /* sub -> streams (reserved or attached) */
    GHashTable *by_addr;   /* client address -> streams */
    int keepalive_ms;
    atomic_ullong wakes;   /* streams woken because the watermark advanced */
    bool stop;
    pthread_t ticker;
    const zs_log *lg;
};

typedef struct ev_stream {
    events *e;
    mirror *m;
    http_stream *hs;       /* set by attach; NULL until then */
    bool has_cur;          /* false: still sending the initial snapshot's first page */
    cursor_pos cur;
    sbuf out;              /* the frame being sent */
    size_t off;
    atomic_bool keepalive_due;
    bool ending;           /* the resync, reauth or store-deleted frame is out: end after it */
    int64_t expires_ms;    /* the token's end (zs_clock_ms); 0: never */
    _Atomic int64_t last_write_ms;
    char *sub;             /* counted in by_sub (NULL: not) */
    char *addr;            /* counted in by_addr (NULL: not) */
    bool filtered;         /* false: every key */
    mirror_key *fv;        /* the filter's prefixes (each p owned, NUL-terminated) */
    mirror_filter f;
} ev_stream;

static ev_mirror *evm_new(void) {
    ev_mirror *x = g_new0(ev_mirror, 1);
    x->all = g_hash_table_new(g_direct_hash, g_direct_equal);
    x->plain = g_hash_table_new(g_direct_hash, g_direct_equal);
    x->byprefix = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_hash_table_destroy);
    x->lengths = g_hash_table_new(g_direct_hash, g_direct_equal);
    return x;
}

static void evm_free(gpointer p) {
    ev_mirror *x = p;
    g_hash_table_destroy(x->all);
    g_hash_table_destroy(x->plain);
    g_hash_table_destroy(x->byprefix);
    g_hash_table_destroy(x->lengths);
    g_free(x);
}

static void evm_add(ev_mirror *x, ev_stream *st) {
    g_hash_table_add(x->all, st);
    if (!st->filtered) { g_hash_table_add(x->plain, st); return; }
    for (size_t i = 0; i < st->f.n; i++) {
        GHashTable *set = g_hash_table_lookup(x->byprefix, st->fv[i].p);
        if (!set) {
            set = g_hash_table_new(g_direct_hash, g_direct_equal);
            g_hash_table_insert(x->byprefix, g_strdup(st->fv[i].p), set);
        }
        g_hash_table_add(set, st);
        gpointer len = GSIZE_TO_POINTER(st->fv[i].len);
        g_hash_table_insert(x->lengths, len, GSIZE_TO_POINTER(GPOINTER_TO_SIZE(g_hash_table_lookup(x->lengths, len)) + 1));
    }
}

/* Returns whether st was registered. */
static bool evm_remove(ev_mirror *x, ev_stream *st) {
    if (!g_hash_table_remove(x->all, st)) return false;
    if (!st->filtered) { g_hash_table_remove(x->plain, st); return true; }
    for (size_t i = 0; i < st->f.n; i++) {
        GHashTable *set = g_hash_table_lookup(x->byprefix, st->fv[i].p);
        if (set && g_hash_table_remove(set, st) && g_hash_table_size(set) == 0) g_hash_table_remove(x->byprefix, st->fv[i].p);
        gpointer len = GSIZE_TO_POINTER(st->fv[i].len);
        size_t n = GPOINTER_TO_SIZE(g_hash_table_lookup(x->lengths, len));
        if (n <= 1) g_hash_table_remove(x->lengths, len);
        else g_hash_table_insert(x->lengths, len, GSIZE_TO_POINTER(n - 1));
    }
    return true;
}

static void wake_set(events *e, GHashTable *set) {
    GHashTableIter it;
    gpointer k;
    g_hash_table_iter_init(&it, set);
    while (g_hash_table_iter_next(&it, &k, NULL)) http_stream_wake(((ev_stream *)k)->hs);
    atomic_fetch_add(&e->wakes, g_hash_table_size(set));
}

/* Wakes the streams a change of key concerns. (A stream woken twice reads
 * once.) */
static void wake_key(events *e, ev_mirror *x, const mirror_key *key) {
    if (g_hash_table_size(x->byprefix) == 0) return;
    char buf[NAMES_KEY_MAX_BYTES + 1];
    GHashTableIter it;
    gpointer k;
    g_hash_table_iter_init(&it, x->lengths);
    while (g_hash_table_iter_next(&it, &k, NULL)) {
        size_t len = GPOINTER_TO_SIZE(k);
        if (len > key->len || len > NAMES_KEY_MAX_BYTES) continue;
        memcpy(buf, key->p, len);
        buf[len] = 0;
        GHashTable *set = g_hash_table_lookup(x->byprefix, buf);
        if (set) wake_set(e, set);
    }
}

static size_t cnt_get(GHashTable *t, const char *k) { return GPOINTER_TO_SIZE(g_hash_table_lookup(t, k)); }

static void cnt_add(GHashTable *t, const char *k, long d) {
    size_t n = cnt_get(t, k) + (size_t)d;
    if (n == 0) g_hash_table_remove(t, k);
    else g_hash_table_replace(t, g_strdup(k), GSIZE_TO_POINTER(n));
}

/* With e->mu held: gives back a stream's place in the caps. */
static void uncount(events *e, ev_stream *st) {
    if (st->sub) cnt_add(e->by_sub, st->sub, -1);
    if (st->addr) cnt_add(e->by_addr, st->addr, -1);
}

static void on_advance(void *ctx, mirror *m, const GPtrArray *keys) {
    events *e = ctx;
    pthread_mutex_lock(&e->mu);
    ev_mirror *x = g_hash_table_lookup(e->byst, m);
    if (x && !keys) {
        wake_set(e, x->all);
    } else if (x && keys->len) {
        wake_set(e, x->plain);
        for (guint i = 0; i < keys->len; i++) wake_key(e, x, g_ptr_array_index(keys, i));
    }
    pthread_mutex_unlock(&e->mu);
}

static void *ticker(void *data) {
    events *e = data;
    int step = e->keepalive_ms / 4 > 0 ? e->keepalive_ms / 4 : 1;
    if (step > 1000) step = 1000;
    pthread_mutex_lock(&e->mu);
    while (!e->stop) {
        zs_cond_wait_until(&e->cond, &e->mu, zs_clock_ms() + step);
        if (e->stop) break;
        int64_t now = zs_clock_ms();
        GHashTableIter it;
        gpointer k, v;
        g_hash_table_iter_init(&it, e->byst);
        while (g_hash_table_iter_next(&it, &k, &v)) {
            GHashTableIter jt;
            gpointer s;
            g_hash_table_iter_init(&jt, ((ev_mirror *)v)->all);
            while (g_hash_table_iter_next(&jt, &s, NULL)) {
                ev_stream *st = s;
                /* due a step early, so the gap never exceeds keepalive_ms;
                 * a stream whose token ended is woken to say so */
                if (now - atomic_load(&st->last_write_ms) >= e->keepalive_ms - step ||
                    (st->expires_ms && now >= st->expires_ms)) {
                    atomic_store(&st->keepalive_due, true);
                    http_stream_wake(st->hs);
                }
            }
        }
    }
    pthread_mutex_unlock(&e->mu);
    return NULL;
}

/* Frees e's tables, lock and condition, and e (no thread is left). */
static void release(events *e) {
    g_hash_table_destroy(e->byst);
    g_hash_table_destroy(e->by_sub);
    g_hash_table_destroy(e->by_addr);
    pthread_cond_destroy(&e->cond);
    pthread_mutex_destroy(&e->mu);
    free(e);
}

events *events_new(mirror_set *ms, int keepalive_ms, size_t max_streams, const zs_log *lg) {
    events *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    pthread_mutex_init(&e->mu, NULL);
    zs_cond_init(&e->cond);
    e->byst = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, evm_free);
    e->keepalive_ms = keepalive_ms;
    e->max_streams = max_streams;
    e->by_sub = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    e->by_addr = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    e->lg = lg;
    int rc = pthread_create(&e->ticker, NULL, ticker, e);
    if (rc != 0) {
        LOG_ERROR(lg, "events: cannot start the keepalive thread: %s", strerror(rc));
        release(e);
        return NULL;
    }
    (void)pthread_setname_np(e->ticker, "zs-keepalive");
    mirror_set_on_advance(ms, on_advance, e);
    return e;
}

void events_free(events *e) {
    if (!e) return;
    pthread_mutex_lock(&e->mu);
    e->stop = true;
    pthread_cond_signal(&e->cond);
    pthread_mutex_unlock(&e->mu);
    pthread_join(e->ticker, NULL);
    release(e);
}

void events_set_caps(events *e, size_t per_sub, size_t per_addr) {
    pthread_mutex_lock(&e->mu);
    e->per_sub = per_sub;
    e->per_addr = per_addr;
    pthread_mutex_unlock(&e->mu);
}

unsigned long long events_wakes(events *e) { return atomic_load(&e->wakes); }

size_t events_count(events *e) {
    pthread_mutex_lock(&e->mu);
    size_t n = e->count;
    pthread_mutex_unlock(&e->mu);
    return n;
}

size_t events_store_counts(events *e, events_store_count **out) {
    *out = NULL;
    pthread_mutex_lock(&e->mu);
    size_t cap = g_hash_table_size(e->byst), n = 0;
    events_store_count *v = cap ? calloc(cap, sizeof *v) : NULL;
    GHashTableIter it;
    gpointer k, val;
    g_hash_table_iter_init(&it, e->byst);
    while (v && g_hash_table_iter_next(&it, &k, &val)) {
        size_t c = g_hash_table_size(((ev_mirror *)val)->all);
        if (c) v[n++] = (events_store_count){mirror_store(k), c};
    }
    pthread_mutex_unlock(&e->mu);
    if (!n) { free(v); return 0; }
    *out = v;
    return n;
}

/* ---- one stream --------------------------------------------------------------- */

static void st_free(ev_stream *st) {
    for (size_t i = 0; st->fv && i < st->f.n; i++) free((char *)st->fv[i].p);
    free(st->fv);
    free(st->sub);
    free(st->addr);
    free(st);
}

/* Copies filter into st (NULL: every key). -1 on OOM. */
static int st_set_filter(ev_stream *st, const mirror_filter *f) {
    if (!f) return 0;
    st->filtered = true;
    st->fv = calloc(f->n ? f->n : 1, sizeof *st->fv);
    if (!st->fv) return -1;
    for (size_t i = 0; i < f->n; i++) {
        char *p = malloc(f->v[i].len + 1);
        if (!p) return -1;
        memcpy(p, f->v[i].p, f->v[i].len);
        p[f->v[i].len] = 0;
        st->fv[i] = (mirror_key){p, f->v[i].len};
        st->f.n = i + 1;
    }
    st->f.v = st->fv;
    return 0;
}

static void st_attach(void *cls, http_stream *hs) {
    ev_stream *st = cls;
    events *e = st->e;
    st->hs = hs;
    pthread_mutex_lock(&e->mu);
    ev_mirror *x = g_hash_table_lookup(e->byst, st->m);
    if (!x) {
        x = evm_new();
        g_hash_table_insert(e->byst, st->m, x);
    }
    evm_add(x, st);
    e->count++;
    e->reserved--;
    pthread_mutex_unlock(&e->mu);
}

static void st_done(void *cls) {
    ev_stream *st = cls;
    events *e = st->e;
    pthread_mutex_lock(&e->mu);
    if (st->hs) {
        ev_mirror *x = g_hash_table_lookup(e->byst, st->m);
        if (x && evm_remove(x, st)) e->count--;
        if (x && g_hash_table_size(x->all) == 0) g_hash_table_remove(e->byst, st->m);
    } else {
        e->reserved--; /* never attached */
    }
    uncount(e, st);
    pthread_mutex_unlock(&e->mu);
    sbuf_free(&st->out);
    st_free(st);
}

/* Puts the next frame into st->out, if there is one. */
static void next_frame(ev_stream *st) {
    sbuf_reset(&st->out);
    st->off = 0;
    if (st->expires_ms && zs_clock_ms() >= st->expires_ms) { /* PROTOCOL.md "Token lifetime on streams" */
        sbuf_puts(&st->out, "event: reauth\ndata: {\"error\":\"token_expired\"}\n\n");
        st->ending = true;
        return;
    }
    sbuf body = SBUF_INIT;
    mirror_page pg;
    const mirror_filter *f = st->filtered ? &st->f : NULL;
    mirror_changes(st->m, st->has_cur ? &st->cur : NULL, f, EVENTS_FRAME_CHANGES, EVENTS_FRAME_BYTES, &body, &pg);
    /* A broad filter's page may end, empty, past changes the stream does
     * not see: go on from there (nothing is sent for them). */
    while (pg.loaded && !pg.expired && pg.count == 0 && pg.more) {
        st->has_cur = true;
        st->cur = pg.next;
        sbuf_reset(&body);
        mirror_changes(st->m, &st->cur, f, EVENTS_FRAME_CHANGES, EVENTS_FRAME_BYTES, &body, &pg);
    }
    if (pg.expired) { /* older than the horizon: the client must start over */
        sbuf_free(&body);
        sbuf_puts(&st->out, "event: resync\ndata: {\"error\":\"cursor_expired\"}\n\n");
        st->ending = true;
        return;
    }
    if (!pg.loaded && pg.gone) { /* the store was deleted: a reconnect gets 404, or a resync if it is back */
        sbuf_free(&body);
        sbuf_puts(&st->out, ": store deleted\n\n");
        st->ending = true;
        return;
    }
    if (!pg.loaded) { /* the mirror is reloading: send nothing it cannot vouch for */
        sbuf_free(&body);
        if (atomic_load(&st->keepalive_due)) sbuf_puts(&st->out, ": keepalive\n\n");
        if (st->out.len) atomic_store(&st->keepalive_due, false);
        return;
    }
    bool first = !st->has_cur;
    st->has_cur = true;
    /* (a filtered stream also moves past the changes it does not see, so
     * that it does not walk them again) */
    if (pg.count > 0 || first || st->filtered) st->cur = pg.next;
    if (pg.count > 0) {
        char cur[CURSOR_LEN + 1];
        cursor_format(&pg.next, cur);
        sbuf_printf(&st->out, "id: %s\nevent: change\ndata: {\"changes\":[", cur);
        sbuf_append(&st->out, body.buf, body.len);
        sbuf_printf(&st->out, "],\"cursor\":\"%s\"}\n\n", cur);
    } else if (atomic_load(&st->keepalive_due)) {
        sbuf_puts(&st->out, ": keepalive\n\n");
    }
    sbuf_free(&body);
    if (st->out.len) atomic_store(&st->keepalive_due, false);
}

static long st_read(void *cls, char *buf, size_t max) {
    ev_stream *st = cls;
    if (st->off >= st->out.len) {
        if (st->ending) return -1;
        if (st->out.cap > 4096) sbuf_free(&st->out); /* an idle stream keeps no big frame buffer */
        next_frame(st);
        if (sbuf_failed(&st->out)) return -1;
        if (st->out.len == 0) sbuf_free(&st->out); /* nor any: most streams are idle */
    }
    if (sbuf_failed(&st->out)) return -1;
    size_t left = st->out.len - st->off;
    if (left == 0) return 0;
    size_t n = left < max ? left : max;
    memcpy(buf, st->out.buf + st->off, n);
    st->off += n;
    atomic_store(&st->last_write_ms, zs_clock_ms());
    return (long)n;
}

static const http_stream_ops stream_ops = {st_attach, st_read, st_done};

void events_start(events *e, mirror *m, const cursor_pos *since, const mirror_filter *filter, const char *sub,
                  const char *addr, int64_t expires_ms, http_resp *resp) {
    ev_stream *st = calloc(1, sizeof *st);
    if (st && sub && e->per_sub) st->sub = strdup(sub);
    if (st && addr && *addr && e->per_addr) st->addr = strdup(addr);
    if (!st || (sub && e->per_sub && !st->sub) || (addr && *addr && e->per_addr && !st->addr) || st_set_filter(st, filter) < 0) {
        if (st) st_free(st);
        http_resp_error(resp, 500, "internal", "out of memory");
        return;
    }
    const char *why = NULL;
    pthread_mutex_lock(&e->mu);
    if (e->count + e->reserved >= e->max_streams)
        why = "this gateway has as many event streams open as it serves; retry later or elsewhere";
    else if (st->sub && cnt_get(e->by_sub, st->sub) >= e->per_sub)
        why = "this token's subject has as many event streams open as one may (--max-streams-per-sub); close one";
    else if (st->addr && cnt_get(e->by_addr, st->addr) >= e->per_addr)
        why = "this address has as many event streams open as one may (--max-streams-per-ip); close one";
    if (!why) {
        e->reserved++;
        if (st->sub) cnt_add(e->by_sub, st->sub, 1);
        if (st->addr) cnt_add(e->by_addr, st->addr, 1);
    }
    pthread_mutex_unlock(&e->mu);
    if (why) {
        st_free(st);
        http_resp_error(resp, 429, "too_many_requests", why);
        http_resp_header(resp, "Retry-After", "5");
        return;
    }
    st->e = e;
    st->m = m;
    st->expires_ms = expires_ms;
    if (since) { st->has_cur = true; st->cur = *since; }
    atomic_store(&st->last_write_ms, zs_clock_ms());
    /* A comment first, so the client sees the stream open at once. */
    sbuf_puts(&st->out, ": zoosync events\n\n");
    http_resp_stream(resp, &stream_ops, st);
    http_resp_header(resp, "Cache-Control", "no-cache");
}

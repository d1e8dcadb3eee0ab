#include "http/metrics_page.h"

#include <glib.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLASSES 4 /* status classes 2xx to 5xx */
static const char *const code_classes[CLASSES] = {"2xx", "3xx", "4xx", "5xx"};

struct metrics_page_counters {
    const char *const *labels;
    size_t n;
    zs_hist (*hist)[CLASSES]; /* [n][CLASSES], atomics: no lock */
    pthread_mutex_t mu;       /* guards requests */
    GHashTable *requests;     /* route * 1000 + status -> uint64_t count */
};

metrics_page_counters *metrics_page_counters_new(const char *const *labels, size_t n) {
    metrics_page_counters *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->labels = labels;
    c->n = n;
    c->hist = calloc(n ? n : 1, sizeof *c->hist);
    if (!c->hist) { free(c); return NULL; }
    pthread_mutex_init(&c->mu, NULL);
    c->requests = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
    return c;
}

void metrics_page_counters_free(metrics_page_counters *c) {
    if (!c) return;
    g_hash_table_destroy(c->requests);
    pthread_mutex_destroy(&c->mu);
    free(c->hist);
    free(c);
}

void metrics_page_count(metrics_page_counters *c, size_t route, int status, int64_t us) {
    if (route >= c->n || status < 0 || status > 999) return;
    int cls = status / 100 - 2;
    if (us >= 0 && cls >= 0 && cls < CLASSES) zs_hist_observe(&c->hist[route][cls], us);
    gpointer k = GSIZE_TO_POINTER(route * 1000 + (size_t)status);
    pthread_mutex_lock(&c->mu);
    uint64_t *n = g_hash_table_lookup(c->requests, k);
    if (n) (*n)++;
    else { n = g_new(uint64_t, 1); *n = 1; g_hash_table_insert(c->requests, k, n); }
    pthread_mutex_unlock(&c->mu);
}

static void render_http(metrics_page_counters *c, sbuf *out) {
    sbuf_puts(out, "# HELP zoosync_http_request_seconds Time in the request's handler (an event stream: until it starts), "
                   "by route and status class.\n# TYPE zoosync_http_request_seconds histogram\n");
    for (size_t r = 0; r < c->n; r++)
        for (int k = 0; k < CLASSES; k++) {
            if (!atomic_load(&c->hist[r][k].count)) continue;
            char labels[64];
            snprintf(labels, sizeof labels, "route=\"%s\",code=\"%s\"", c->labels[r], code_classes[k]);
            zs_hist_render(&c->hist[r][k], "zoosync_http_request_seconds", labels, out);
        }
    sbuf_puts(out, "# HELP zoosync_http_requests_total HTTP requests by route and status.\n"
                   "# TYPE zoosync_http_requests_total counter\n");
    pthread_mutex_lock(&c->mu);
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, c->requests);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        size_t key = GPOINTER_TO_SIZE(k);
        sbuf_printf(out, "zoosync_http_requests_total{route=\"%s\",status=\"%zu\"} %llu\n", c->labels[key / 1000],
                    key % 1000, (unsigned long long)*(uint64_t *)v);
    }
    pthread_mutex_unlock(&c->mu);
}

void metrics_page_label_value(sbuf *out, const char *s) {
    for (; *s; s++) {
        if (*s == '\\') sbuf_puts(out, "\\\\");
        else if (*s == '"') sbuf_puts(out, "\\\"");
        else if (*s == '\n') sbuf_puts(out, "\\n");
        else sbuf_append(out, s, 1);
    }
}

/* name{store="..."} value */
static void store_sample(sbuf *out, const char *name, const char *store, size_t value) {
    sbuf_printf(out, "%s{store=\"", name);
    metrics_page_label_value(out, store);
    sbuf_printf(out, "\"} %zu\n", value);
}

static void render_stores(const metrics_page_in *in, sbuf *out) {
    sbuf_puts(out, "# HELP zoosync_store_records Live records in a loaded store's mirror.\n"
                   "# TYPE zoosync_store_records gauge\n");
    for (size_t i = 0; i < in->nstores; i++) store_sample(out, "zoosync_store_records", in->stores[i].store, in->stores[i].records);
    sbuf_puts(out, "# HELP zoosync_store_bytes Key and value bytes of a loaded store's live records.\n"
                   "# TYPE zoosync_store_bytes gauge\n");
    for (size_t i = 0; i < in->nstores; i++) store_sample(out, "zoosync_store_bytes", in->stores[i].store, in->stores[i].bytes);
    /* every loaded store (0 when none is open), and any other store with streams */
    sbuf_puts(out, "# HELP zoosync_store_event_streams Open Server-Sent Events streams by store.\n"
                   "# TYPE zoosync_store_event_streams gauge\n");
    for (size_t i = 0; i < in->nstores; i++) {
        size_t n = 0;
        for (size_t j = 0; j < in->nstreams; j++)
            if (strcmp(in->streams[j].store, in->stores[i].store) == 0) n += in->streams[j].streams;
        store_sample(out, "zoosync_store_event_streams", in->stores[i].store, n);
    }
    for (size_t j = 0; j < in->nstreams; j++) {
        bool listed = false;
        for (size_t i = 0; i < in->nstores && !listed; i++) listed = strcmp(in->streams[j].store, in->stores[i].store) == 0;
        for (size_t k = 0; k < j && !listed; k++) listed = strcmp(in->streams[j].store, in->streams[k].store) == 0;
        if (listed) continue;
        size_t n = 0;
        for (size_t k = j; k < in->nstreams; k++)
            if (strcmp(in->streams[j].store, in->streams[k].store) == 0) n += in->streams[k].streams;
        store_sample(out, "zoosync_store_event_streams", in->streams[j].store, n);
    }
}

static void render_auth(const metrics_page_in *in, sbuf *out) {
    sbuf_puts(out, "# HELP zoosync_auth_failures_total Requests refused with 401, by reason.\n"
                   "# TYPE zoosync_auth_failures_total counter\n");
    for (int r = 0; r < AUTH_FAIL_COUNT; r++) {
        sbuf_puts(out, "zoosync_auth_failures_total{reason=\"");
        metrics_page_label_value(out, auth_failure_name((auth_failure)r));
        sbuf_printf(out, "\"} %llu\n", in->auth_failures ? in->auth_failures[r] : 0ULL);
    }
}

void metrics_page_render(const metrics_page_in *in, sbuf *out) {
    const mirror_stats *ms = in->mirror;
    const gc_stats *gs = in->gc;
    const zs_metrics *m = in->metrics;
    sbuf_puts(out, "# HELP zoosync_build_info The gateway's version and memory allocator.\n# TYPE zoosync_build_info gauge\n"
                   "zoosync_build_info{version=\"");
    metrics_page_label_value(out, in->version ? in->version : "unknown");
    sbuf_puts(out, "\",allocator=\"");
    metrics_page_label_value(out, in->allocator ? in->allocator : "unknown");
    sbuf_puts(out, "\"} 1\n");
    zs_metrics_render_process(out);
    render_http(in->http, out);
    sbuf_printf(out,
                "# HELP zoosync_mirror_records Live records held in memory.\n# TYPE zoosync_mirror_records gauge\n"
                "zoosync_mirror_records %zu\n"
                "# HELP zoosync_mirror_bytes Key and value bytes held in memory.\n# TYPE zoosync_mirror_bytes gauge\n"
                "zoosync_mirror_bytes %zu\n"
                "# HELP zoosync_mirror_entries Keys known to the mirror: live, tombstones and deletions.\n"
                "# TYPE zoosync_mirror_entries gauge\nzoosync_mirror_entries %zu\n"
                "# HELP zoosync_mirror_bucket_tables Bucket tables allocated (buckets holding a key).\n"
                "# TYPE zoosync_mirror_bucket_tables gauge\nzoosync_mirror_bucket_tables %zu\n"
                "# HELP zoosync_watch_events_total ZooKeeper watch events received.\n# TYPE zoosync_watch_events_total counter\n"
                "zoosync_watch_events_total %llu\n"
                "# HELP zoosync_zk_reads_total Reads sent by the mirror.\n# TYPE zoosync_zk_reads_total counter\n"
                "zoosync_zk_reads_total %llu\n"
                "# HELP zoosync_mirror_watches Persistent watches the mirror's session holds (two per store mirrored).\n"
                "# TYPE zoosync_mirror_watches gauge\nzoosync_mirror_watches %llu\n"
                "# HELP zoosync_mirror_set_watches_packets_total SetWatches2 packets sent to register them at each connect.\n"
                "# TYPE zoosync_mirror_set_watches_packets_total counter\nzoosync_mirror_set_watches_packets_total %llu\n"
                "# HELP zoosync_foreign_values_rejected_total Znodes whose data is not a JSON value or whose name is not a key.\n"
                "# TYPE zoosync_foreign_values_rejected_total counter\n"
                "zoosync_foreign_values_rejected_total %llu\n"
                "# HELP zoosync_zk_connected 1 while the ZooKeeper session is connected.\n# TYPE zoosync_zk_connected gauge\n"
                "zoosync_zk_connected %d\n"
                "# HELP zoosync_event_streams Open Server-Sent Events streams.\n# TYPE zoosync_event_streams gauge\n"
                "zoosync_event_streams %zu\n"
                "# HELP zoosync_event_stream_wakes_total Event streams woken because a change they may show arrived.\n"
                "# TYPE zoosync_event_stream_wakes_total counter\nzoosync_event_stream_wakes_total %llu\n"
                "# HELP zoosync_mirror_connected 1 while the mirror's own ZooKeeper session is connected.\n"
                "# TYPE zoosync_mirror_connected gauge\nzoosync_mirror_connected %d\n"
                "# HELP zoosync_mirror_recovering 1 while the mirror checks what changed during a disconnect.\n"
                "# TYPE zoosync_mirror_recovering gauge\nzoosync_mirror_recovering %d\n"
                "# HELP zoosync_mirror_watermark The zxid up to which every change is in the mirror.\n"
                "# TYPE zoosync_mirror_watermark gauge\nzoosync_mirror_watermark %llu\n"
                "# HELP zoosync_mirror_read_batches_total multiRead requests sent by the mirror.\n"
                "# TYPE zoosync_mirror_read_batches_total counter\nzoosync_mirror_read_batches_total %llu\n"
                "# HELP zoosync_mirror_reads_queued Reads waiting to be sent.\n"
                "# TYPE zoosync_mirror_reads_queued gauge\nzoosync_mirror_reads_queued %zu\n"
                "# HELP zoosync_mirror_recoveries_total Gap checks completed after a reconnect.\n"
                "# TYPE zoosync_mirror_recoveries_total counter\nzoosync_mirror_recoveries_total %llu\n"
                "# HELP zoosync_mirror_probe_sessions_total Short probe sessions opened by gap checks.\n"
                "# TYPE zoosync_mirror_probe_sessions_total counter\nzoosync_mirror_probe_sessions_total %llu\n"
                "# HELP zoosync_mirror_probe_paths_total Paths probed by gap checks (records, store configs, buckets of the stores mirrored).\n"
                "# TYPE zoosync_mirror_probe_paths_total counter\nzoosync_mirror_probe_paths_total %llu\n"
                "# HELP zoosync_mirror_probe_events_total Changes found by gap checks.\n"
                "# TYPE zoosync_mirror_probe_events_total counter\nzoosync_mirror_probe_events_total %llu\n"
                "# HELP zoosync_mirror_last_recovery_seconds Duration of the last gap check.\n"
                "# TYPE zoosync_mirror_last_recovery_seconds gauge\nzoosync_mirror_last_recovery_seconds %.3f\n",
                ms->records, ms->bytes, ms->entries, ms->bucket_tables, (unsigned long long)ms->watch_events, (unsigned long long)ms->reads,
                (unsigned long long)ms->watches, (unsigned long long)ms->set_watches,
                (unsigned long long)ms->foreign_rejected, in->zk_connected ? 1 : 0,
                in->event_streams,
                in->stream_wakes, ms->connected ? 1 : 0, ms->recovering ? 1 : 0,
                (unsigned long long)ms->watermark, (unsigned long long)ms->batches, ms->queued,
                (unsigned long long)ms->recoveries, (unsigned long long)ms->probes, (unsigned long long)ms->probe_paths,
                (unsigned long long)ms->probe_events,
                (double)ms->last_recovery_ms / 1000.0);
    render_stores(in, out);
    render_auth(in, out);
    if (m) zs_metrics_render(m, out);
    sbuf_printf(out,
                "# HELP zoosync_zk_invalid_data_total Data read from ZooKeeper and refused (distrusted like a request), by kind.\n"
                "# TYPE zoosync_zk_invalid_data_total counter\n"
                "zoosync_zk_invalid_data_total{kind=\"config\"} %llu\n"
                "zoosync_zk_invalid_data_total{kind=\"client\"} %llu\n"
                "zoosync_zk_invalid_data_total{kind=\"election\"} %llu\n"
                "# HELP zoosync_limited_total Requests refused with 429 by a per-subject limit.\n"
                "# TYPE zoosync_limited_total counter\n"
                "zoosync_limited_total{limit=\"rate\"} %llu\n"
                "zoosync_limited_total{limit=\"write_bytes\"} %llu\n"
                "zoosync_limited_total{limit=\"write_mutations\"} %llu\n",
                (unsigned long long)ms->invalid_configs,
                (unsigned long long)(m ? atomic_load(&m->zk_invalid_client) : 0),
                (unsigned long long)gs->invalid_candidates,
                (unsigned long long)(m ? atomic_load(&m->limited[ZS_LIMIT_RATE]) : 0),
                (unsigned long long)(m ? atomic_load(&m->limited[ZS_LIMIT_WRITE_BYTES]) : 0),
                (unsigned long long)(m ? atomic_load(&m->limited[ZS_LIMIT_WRITE_MUTATIONS]) : 0));
    sbuf_printf(out,
                "# HELP zoosync_gc_leader 1 while this gateway is the tombstone collector.\n# TYPE zoosync_gc_leader gauge\n"
                "zoosync_gc_leader %d\n"
                "# HELP zoosync_gc_runs_total Collection rounds run as the collector.\n# TYPE zoosync_gc_runs_total counter\n"
                "zoosync_gc_runs_total %llu\n"
                "# HELP zoosync_gc_tombstones_collected_total Tombstone znodes deleted.\n"
                "# TYPE zoosync_gc_tombstones_collected_total counter\n"
                "zoosync_gc_tombstones_collected_total %llu\n"
                "# HELP zoosync_gc_errors_total Stores the collector could not collect (each logged at warn).\n"
                "# TYPE zoosync_gc_errors_total counter\n"
                "zoosync_gc_errors_total %llu\n",
                gs->leader, (unsigned long long)gs->runs, (unsigned long long)gs->collected,
                (unsigned long long)gs->errors);
}

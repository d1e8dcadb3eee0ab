/* metrics_page: the /metrics page in Prometheus' text format (0.0.4), and
 * the HTTP request counters it shows.
 *
 * The page gathers what the modules count: util/metrics' zs_metrics, the
 * mirror set's and the collector's stats, the event streams, the HTTP
 * requests. The caller (http/api) reads those into a metrics_page_in, so
 * this module calls no other module and holds no lock while rendering
 * except, briefly, its own counters'.
 *
 * The request counters: for each route label (given at creation) and
 * status, zoosync_http_requests_total; for each label and status class,
 * the zoosync_http_request_seconds histogram. Owned by their creator.
 * Threads: any; the histograms are atomics, the per-status counts sit in a
 * table under metrics_page_counters.mu, which nests nothing. */
#ifndef ZS_HTTP_METRICS_PAGE_H
#define ZS_HTTP_METRICS_PAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/auth.h"
#include "cache/mirror.h"
#include "http/events.h"
#include "sync/gc.h"
#include "util/metrics.h"
#include "util/sbuf.h"

typedef struct metrics_page_counters metrics_page_counters;

/* labels[0..n): the route labels, by index (static strings, kept by
 * pointer). NULL when out of memory. */
metrics_page_counters *metrics_page_counters_new(const char *const *labels, size_t n);
void metrics_page_counters_free(metrics_page_counters *c);
/* One answer of the route labelled labels[route] with status; us >= 0:
 * the time its handler took, for the histogram (< 0: not timed). */
void metrics_page_count(metrics_page_counters *c, size_t route, int status, int64_t us);

/* What the page shows; every pointer but the optional ones must be set. */
typedef struct metrics_page_in {
    const char *version;                  /* zoosync_build_info (NULL: "unknown") */
    const char *allocator;                /* its allocator label (NULL: "unknown") */
    metrics_page_counters *http;          /* its lock is taken while rendering */
    const zs_metrics *metrics;            /* NULL: none (its counters show 0) */
    const mirror_stats *mirror;
    const gc_stats *gc;                   /* zeros before the collector starts */
    bool zk_connected;                    /* the session for writes */
    size_t event_streams;
    unsigned long long stream_wakes;
    const mirror_store_stat *stores;      /* the loaded stores (zoosync_store_records, _bytes) */
    size_t nstores;
    const events_store_count *streams;    /* open streams by store (zoosync_store_event_streams) */
    size_t nstreams;
    const unsigned long long *auth_failures; /* [AUTH_FAIL_COUNT] by reason; NULL: zeros */
} metrics_page_in;

/* Appends s as a label value of the text format: backslash, double quote
 * and line feed escaped (\\, \", \n); every label value goes through it. */
void metrics_page_label_value(sbuf *out, const char *s);

/* Appends the whole page to out. */
void metrics_page_render(const metrics_page_in *in, sbuf *out);

#endif

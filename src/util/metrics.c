#include "util/metrics.h"

#include <time.h>

static const double bounds_s[ZS_HIST_BUCKETS] = {0.0005, 0.001, 0.002, 0.005, 0.01, 0.02,
                                                 0.05,   0.1,   0.25,  0.5,   1.0,  5.0};
static const char *const op_names[ZS_OP_KINDS] = {"sync", "multi", "read", "write"};
static const char *const outcome_names[ZS_PUSH_OUTCOMES] = {"applied", "conflict", "duplicate", "rejected"};

int64_t zs_now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void zs_hist_observe(zs_hist *h, int64_t us) {
    if (us < 0) us = 0;
    for (int i = 0; i < ZS_HIST_BUCKETS; i++) {
        if ((double)us <= bounds_s[i] * 1e6) { atomic_fetch_add(&h->le[i], 1); break; }
    }
    atomic_fetch_add(&h->count, 1);
    atomic_fetch_add(&h->sum_us, (uint64_t)us);
}

void zs_metrics_zk(zs_metrics *m, zs_op_kind kind, int64_t us, int rc) {
    if (!m) return;
    zs_hist_observe(&m->zk_latency[kind], us);
    if (rc != 0) atomic_fetch_add(&m->zk_errors[kind], 1);
}

void zs_metrics_render(const zs_metrics *m, sbuf *out) {
    sbuf_puts(out, "# HELP zoosync_zk_op_seconds Latency of the gateway's ZooKeeper calls by operation.\n"
                   "# TYPE zoosync_zk_op_seconds histogram\n");
    for (int k = 0; k < ZS_OP_KINDS; k++) {
        const zs_hist *h = &m->zk_latency[k];
        uint64_t cum = 0;
        for (int i = 0; i < ZS_HIST_BUCKETS; i++) {
            cum += atomic_load(&h->le[i]);
            sbuf_printf(out, "zoosync_zk_op_seconds_bucket{op=\"%s\",le=\"%g\"} %llu\n", op_names[k], bounds_s[i],
                        (unsigned long long)cum);
        }
        sbuf_printf(out, "zoosync_zk_op_seconds_bucket{op=\"%s\",le=\"+Inf\"} %llu\n", op_names[k],
                    (unsigned long long)atomic_load(&h->count));
        sbuf_printf(out, "zoosync_zk_op_seconds_sum{op=\"%s\"} %.6f\n", op_names[k], (double)atomic_load(&h->sum_us) / 1e6);
        sbuf_printf(out, "zoosync_zk_op_seconds_count{op=\"%s\"} %llu\n", op_names[k],
                    (unsigned long long)atomic_load(&h->count));
    }
    sbuf_puts(out, "# HELP zoosync_zk_op_errors_total ZooKeeper calls that returned an error, by operation.\n"
                   "# TYPE zoosync_zk_op_errors_total counter\n");
    for (int k = 0; k < ZS_OP_KINDS; k++)
        sbuf_printf(out, "zoosync_zk_op_errors_total{op=\"%s\"} %llu\n", op_names[k],
                    (unsigned long long)atomic_load(&m->zk_errors[k]));
    sbuf_puts(out, "# HELP zoosync_push_mutations_total Pushed mutations by outcome.\n"
                   "# TYPE zoosync_push_mutations_total counter\n");
    for (int i = 0; i < ZS_PUSH_OUTCOMES; i++)
        sbuf_printf(out, "zoosync_push_mutations_total{outcome=\"%s\"} %llu\n", outcome_names[i],
                    (unsigned long long)atomic_load(&m->push_outcome[i]));
}

#include "util/metrics.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const double bounds_s[ZS_HIST_BUCKETS] = {0.0005, 0.001, 0.002, 0.005, 0.01, 0.02,
                                                 0.05,   0.1,   0.25,  0.5,   1.0,  5.0};
static const char *const op_names[ZS_OP_KINDS] = {"sync", "multi", "read", "write"};
static const char *const outcome_names[ZS_PUSH_OUTCOMES] = {"applied", "conflict", "duplicate", "rejected"};
static const char *const stream_end_names[ZS_STREAM_ENDS] = {"server", "client_closed", "send_failed", "stalled", "client_sent"};

void zs_hist_observe(zs_hist *h, int64_t us) {
    if (us < 0) us = 0;
    for (int i = 0; i < ZS_HIST_BUCKETS; i++) {
        if ((double)us <= bounds_s[i] * 1e6) { atomic_fetch_add(&h->le[i], 1); break; }
    }
    atomic_fetch_add(&h->count, 1);
    atomic_fetch_add(&h->sum_us, (uint64_t)us);
}

void zs_hist_render(const zs_hist *h, const char *name, const char *labels, sbuf *out) {
    uint64_t cum = 0;
    for (int i = 0; i < ZS_HIST_BUCKETS; i++) {
        cum += atomic_load(&h->le[i]);
        sbuf_printf(out, "%s_bucket{%s,le=\"%g\"} %llu\n", name, labels, bounds_s[i], (unsigned long long)cum);
    }
    sbuf_printf(out, "%s_bucket{%s,le=\"+Inf\"} %llu\n", name, labels, (unsigned long long)atomic_load(&h->count));
    sbuf_printf(out, "%s_sum{%s} %.6f\n", name, labels, (double)atomic_load(&h->sum_us) / 1e6);
    sbuf_printf(out, "%s_count{%s} %llu\n", name, labels, (unsigned long long)atomic_load(&h->count));
}

void zs_metrics_render_process(sbuf *out) {
    long page = sysconf(_SC_PAGESIZE), ticks = sysconf(_SC_CLK_TCK);
    unsigned long long rss_pages = 0, utime = 0, stime = 0, start = 0;
    long threads = 0;
    FILE *f = fopen("/proc/self/stat", "r");
    if (f) {
        char buf[1024];
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = 0;
        fclose(f);
        char *p = strrchr(buf, ')'); /* the command name may hold spaces */
        /* after ") ": state(3) ... utime(14) stime(15) ... num_threads(20) ... starttime(22) ... rss(24) */
        if (p) sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %ld %*d %llu %*u %llu",
                      &utime, &stime, &threads, &start, &rss_pages);
    }
    double boot = 0;
    if ((f = fopen("/proc/stat", "r"))) {
        char line[256];
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "btime %lf", &boot) == 1) break;
        fclose(f);
    }
    long fds = 0;
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        for (struct dirent *e; (e = readdir(d));)
            if (e->d_name[0] != '.') fds++;
        closedir(d);
        fds--; /* the one opendir holds */
    }
    sbuf_printf(out,
                "# HELP process_resident_memory_bytes Resident memory size in bytes.\n# TYPE process_resident_memory_bytes gauge\n"
                "process_resident_memory_bytes %llu\n"
                "# HELP process_open_fds Number of open file descriptors.\n# TYPE process_open_fds gauge\nprocess_open_fds %ld\n"
                "# HELP process_threads Number of OS threads.\n# TYPE process_threads gauge\nprocess_threads %ld\n"
                "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
                "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total %.2f\n"
                "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n"
                "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds %.2f\n",
                rss_pages * (unsigned long long)page, fds, threads, ticks > 0 ? (double)(utime + stime) / (double)ticks : 0.0,
                ticks > 0 ? boot + (double)start / (double)ticks : 0.0);
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
    sbuf_puts(out, "# HELP zoosync_event_stream_ends_total Event streams ended by the gateway's streams loop (plain HTTP), by reason.\n"
                   "# TYPE zoosync_event_stream_ends_total counter\n");
    for (int i = 0; i < ZS_STREAM_ENDS; i++)
        sbuf_printf(out, "zoosync_event_stream_ends_total{reason=\"%s\"} %llu\n", stream_end_names[i],
                    (unsigned long long)atomic_load(&m->stream_ends[i]));
}

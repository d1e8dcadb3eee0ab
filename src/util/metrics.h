/* metrics: counters and latency histograms shared by the modules, rendered
 * by /metrics in Prometheus text format. main() owns the one zs_metrics and
 * hands a pointer to each module; every field is atomic, so any thread
 * may add to it without a lock. */
#ifndef ZS_METRICS_H
#define ZS_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "util/sbuf.h"

#define ZS_HIST_BUCKETS 12

typedef struct zs_hist {
    _Atomic uint64_t le[ZS_HIST_BUCKETS]; /* counts per upper bound (not cumulative) */
    _Atomic uint64_t count;
    _Atomic uint64_t sum_us;
} zs_hist;

typedef enum { ZS_OP_SYNC, ZS_OP_MULTI, ZS_OP_READ, ZS_OP_WRITE, ZS_OP_KINDS } zs_op_kind;
/* The per-subject limits, in the order of zoosync_limited_total's labels. */
typedef enum { ZS_LIMIT_RATE, ZS_LIMIT_WRITE_BYTES, ZS_LIMIT_WRITE_MUTATIONS, ZS_LIMITS } zs_limit_kind;
/* Push outcomes, in the order of zoosync_push_mutations_total's labels. */
enum { ZS_PUSH_APPLIED, ZS_PUSH_CONFLICT, ZS_PUSH_DUPLICATE, ZS_PUSH_REJECTED, ZS_PUSH_OUTCOMES };
/* Why the streams loop (http/sloop) ended an event stream, in the order of
 * zoosync_event_stream_ends_total's labels: the stream's own end (resync,
 * reauth, its store deleted, the gateway stopping), the client's close, a failed send, a send
 * stalled past its limit, a client that sent data on its stream. */
typedef enum { ZS_STREAM_END_SERVER, ZS_STREAM_END_CLIENT, ZS_STREAM_END_SEND_FAILED, ZS_STREAM_END_STALLED,
               ZS_STREAM_END_CLIENT_SENT, ZS_STREAM_ENDS } zs_stream_end;

typedef struct zs_metrics {
    zs_hist zk_latency[ZS_OP_KINDS];        /* worker-side ZooKeeper calls */
    _Atomic uint64_t zk_errors[ZS_OP_KINDS];
    _Atomic uint64_t push_outcome[ZS_PUSH_OUTCOMES]; /* applied, conflict, duplicate, rejected */
    _Atomic uint64_t zk_invalid_client;     /* exactly-once records read from ZooKeeper and refused */
    _Atomic uint64_t limited[ZS_LIMITS];    /* 429s by limit (zs_limit_kind) */
    _Atomic uint64_t stream_ends[ZS_STREAM_ENDS]; /* event streams ended by the streams loop, by zs_stream_end */
} zs_metrics;

void zs_hist_observe(zs_hist *h, int64_t us);
/* Appends one histogram series (buckets, sum, count) of name with the
 * given label text (e.g. "route=\"push\",code=\"2xx\""). */
void zs_hist_render(const zs_hist *h, const char *name, const char *labels, sbuf *out);
/* Appends the process metrics (Prometheus conventions, from /proc/self):
 * process_resident_memory_bytes, process_open_fds, process_threads,
 * process_cpu_seconds_total, process_start_time_seconds. */
void zs_metrics_render_process(sbuf *out);
/* Notes one ZooKeeper call of kind that took us microseconds and returned rc
 * (0 for success, anything else an error: a ZooKeeper error code, or -1).
 * m may be NULL. */
void zs_metrics_zk(zs_metrics *m, zs_op_kind kind, int64_t us, int rc);
/* Appends the metrics in Prometheus text format. */
void zs_metrics_render(const zs_metrics *m, sbuf *out);

#endif

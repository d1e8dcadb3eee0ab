/* api: the /v1 routes, /healthz, /readyz and /metrics on top of the sync
 * modules, as one route table (api_routes; the types are http/route's):
 * method, path, the access it needs, the checks before its handler, the
 * handler. One entry point, run on worker threads (the probes' routes on
 * libmicrohttpd's HTTP threads, see api_handle_inline); it applies PROTOCOL.md's
 * order of checks: 401 authentication, 405 method, 403 scope, 400 path and
 * query, 404 store or record, 415 media type, then the body.
 *
 * The api owns its per-subject limiters, the HTTP request counters
 * (http/metrics_page) and the auth failures: counted by reason (atomics)
 * and logged at most 10 lines per 10 s (PROTOCOL.md "Operations"). Its one
 * lock, api.auth_log.mu, guards that log's window and is a leaf (only the
 * logger's write is made under it); any HTTP or worker thread takes it. */
#ifndef ZS_HTTP_API_H
#define ZS_HTTP_API_H

#include <stdatomic.h>
#include <stddef.h>

#include "auth/auth.h"
#include "cache/mirror.h"
#include "http/events.h"
#include "http/route.h"
#include "http/server.h"
#include "sync/gc.h"
#include "sync/push.h" /* committer, zkc: opaque handles */
#include "sync/session.h"
#include "util/log.h"
#include "util/metrics.h"

typedef struct api api;

typedef struct api_config {
    zkc *z;
    const char *root;
    mirror_set *mirrors;
    store_schema_cache *schemas; /* the configs' schemas (sync/stores.h); outlives the api */
    const auth_verifier *auth; /* NULL: authentication off */
    size_t max_tx_bytes;
    const zs_log *lg;
    const atomic_bool *ready;  /* set by main once the root exists */
    events *events;            /* Server-Sent Events streams */
    const char *web_dir;       /* served at / (NULL: none) */
    const char *client_dir;    /* served at /client/ (NULL: none) */
    zs_metrics *metrics;
    committer *commit;         /* group commit of pushes */
    /* Per subject (a token's sub; the client address without one), on this
     * gateway; 0: off. Requests per second (burst twice that), and the
     * write budgets (burst two seconds' worth). */
    double rate_limit;
    double write_bytes_per_sec;
    double write_mutations_per_sec;
    const char *version;       /* for zoosync_build_info (NULL: "unknown") */
    const char *allocator;     /* for zoosync_build_info: "jemalloc 5.3.0-…", "glibc" (NULL: "unknown") */
} api_config;

api *api_new(const api_config *cfg);
void api_free(api *a);
/* The collector starts after setup; /metrics reports it from then on. Any
 * thread, once. */
void api_set_gc(api *a, gc *g);
/* --rate-limit changed live (SIGHUP): requests per second per subject, burst
 * twice that; 0 turns it off. Any thread. */
void api_set_rate_limit(api *a, double per_s);
/* The route table, *n entries: exactly the operations of docs/openapi.yaml.
 * Static; for tests. */
const route_def *api_routes(size_t *n);
/* The httpd_handler: app is the api. */
void api_handle(void *app, const http_req *req, http_resp *resp);
/* The httpd_inline hook: answers the ROUTE_PROBE routes (/healthz, /readyz,
 * /metrics) on the connection's HTTP thread (they read only memory: atomics
 * and short locks), so they never queue behind ZooKeeper-bound requests.
 * Thread-safe: several HTTP threads and the workers run it at once. False
 * for other paths. */
bool api_handle_inline(void *app, const http_req *req, http_resp *resp);
/* The httpd early hook: "may this method on this path be asked with these
 * headers?", run once the headers are complete, before the body is read, on
 * the connection's HTTP thread (several at once; thread-safe).
 * Answers 401 (no or bad token) or 403 (the access the table gives the
 * route of this method and path is missing, or a record key outside the
 * token's prefixes) and returns true; false lets the request go on. */
bool api_check_early(void *app, const http_req *req, http_resp *resp);

#endif

/* server: the HTTP front (libmicrohttpd) and the worker pool.
 *
 * libmicrohttpd runs limits.http_threads threads (a thread pool, each
 * thread a worker daemon with its own epoll set; one thread when 1). A
 * connection stays on the thread that accepted it, so every callback for one
 * connection (request, completion, stream, TLS certificate) runs on that
 * connection's thread, while callbacks for different connections run on
 * several threads at once: everything they share is behind a lock or atomic.
 * Each thread keeps its own list of suspended connections, which
 * libmicrohttpd 0.9.75 walks whole on every resume: with N threads a resume
 * walks about 1/N of them (docs/PERFORMANCE.md, B9). Over plain HTTP an
 * event stream leaves libmicrohttpd once its head is decided: its socket
 * goes to the gateway's own loop (http/sloop.h; docs/ARCHITECTURE.md,
 * "Event streams outside libmicrohttpd"), so idle streams are on no such
 * list; over HTTPS they stay suspended connections.
 * An HTTP thread reads a request (the body up to max_body bytes; a larger
 * declared or received body is answered 413 body_too_large at once), then
 * suspends the connection and hands the request to a worker thread, which
 * runs the handler with blocking ZooKeeper calls and resumes the connection
 * with the response. So no request ever blocks an HTTP thread, and an idle
 * connection costs no thread. CORS (allowed origins, preflight) is handled
 * here.
 *
 * Before a body byte is read, each request is checked, and refused with the
 * connection closed: more than 100 headers (431) or query parameters (414),
 * a repeated framing/authorization/precondition header, Content-Length
 * with Transfer-Encoding, a non-numeric Content-Length, HTTP/1.1 without
 * Host, a repeated query parameter (400), a transfer coding other than
 * chunked (501), and with loopback_hosts_only a Host that is not loopback
 * with the listening port (421, against DNS rebinding).
 *
 * Before a body byte is read, too, the early hook (authentication and scope)
 * runs for a request that carries a body, a declared length over max_body
 * is 413, and a body that would take the bytes in flight past
 * limits.body_inflight is 503: the body is then never read. An answer given
 * before the body was read closes the connection gracefully: the socket is
 * shut for writing after the answer and drained for a few seconds (a
 * lingering close), so the client reads the answer rather than a reset.
 *
 * Slow clients: the headers must be complete within limits.header_timeout_s
 * of the accept (or of the end of the previous response on a kept-alive
 * connection), the body within limits.body_timeout_s of the headers; past a
 * deadline the connection is closed. At most limits.conns_per_ip
 * connections per client address (counted across the HTTP threads); at most
 * the open-file limit minus limits.fd_reserve connections in all (split
 * evenly between the HTTP threads: a thread at its share stops accepting and
 * the others take the new connections), and when a new connection comes
 * within 16 of that cap, the oldest connection still waiting for its
 * headers, on any thread, is closed to make room (so probes of /healthz get
 * in).
 *
 * The URL is kept percent-encoded (the handler decodes path segments and
 * query values itself), so an encoded '/' in a record key stays a key byte. */
#ifndef ZS_HTTP_SERVER_H
#define ZS_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "util/log.h"
#include "util/metrics.h"
#include "http/tls.h"

typedef struct httpd httpd;
typedef struct http_req http_req;

#define HTTP_MAX_HEADERS_OUT 6

typedef struct http_stream http_stream;

/* A streamed response body (Server-Sent Events). The callbacks of one
 * stream never run at once: attach on its connection's HTTP thread, then
 * read and done on the thread that writes the stream, the same HTTP thread
 * (HTTPS) or the streams' loop (plain HTTP). Different streams' callbacks
 * run on several threads at once. */
typedef struct http_stream_ops {
    /* The stream exists; keep s to wake it. Called once, before any read. */
    void (*attach)(void *cls, http_stream *s);
    /* Fills buf with at most max bytes. Returns the count, 0 when there is
     * nothing to send now (the connection then sleeps, costing no thread,
     * until http_stream_wake), or -1 to end the stream. */
    long (*read)(void *cls, char *buf, size_t max);
    /* The stream is gone (or never started): release cls. Called once. */
    void (*done)(void *cls);
} http_stream_ops;

typedef struct http_resp {
    int status;
    char *body;               /* owned, handed to libmicrohttpd */
    size_t len;
    const char *content_type; /* static; default application/json */
    const char *hname[HTTP_MAX_HEADERS_OUT];
    char *hvalue[HTTP_MAX_HEADERS_OUT]; /* owned; at most 127 bytes each */
    int nheaders;
    const http_stream_ops *stream_ops; /* set: the body is a stream */
    void *stream_cls;
} http_resp;

/* Runs on a worker thread (model pool) or on the connection's own thread
 * (model connection), several at once; fills resp. */
typedef void (*httpd_handler)(void *app, const http_req *req, http_resp *resp);
/* Runs on the connection's HTTP thread once the request is complete, before
 * it is handed to a worker (model pool) or takes a request slot (model
 * connection): returns true when it answered (filled resp). It
 * must never block (no ZooKeeper call, only short locks), and it runs on
 * several HTTP threads (and beside the workers) at once. */
typedef bool (*httpd_inline)(void *app, const http_req *req, http_resp *resp);

/* The edge limits (issue 16) and the number of HTTP threads; flags of
 * zoosyncd, parsed here so that main.c only forwards them. 0 means "no
 * limit" where it says so. */
typedef struct httpd_limits {
    size_t body_inflight;        /* --max-body-inflight: body bytes held at once, all requests */
    unsigned header_timeout_s;   /* --header-timeout */
    unsigned body_timeout_s;     /* --body-timeout */
    unsigned conns_per_ip;       /* --max-conns-per-ip (0: none) */
    unsigned fd_reserve;         /* --fd-reserve: descriptors kept from HTTP connections */
    size_t streams_per_sub;      /* --max-streams-per-sub (0: none); for events.c */
    size_t streams_per_ip;       /* --max-streams-per-ip (0: none); for events.c */
    unsigned http_threads;       /* --http-threads: libmicrohttpd's threads (1: no pool); model pool */
    size_t header_bytes;         /* --max-header-bytes: each connection's buffer (request head, send buffer) */
    int model;                   /* --http-model: HTTPD_MODEL_* */
    unsigned http_connections;   /* --http-connections: connections in libmicrohttpd at once; model connection */
} httpd_limits;

/* How connections are served (--http-model). CONNECTION: each connection
 * has a thread of its own while it is in libmicrohttpd, and its requests
 * run on it (at most --workers at once); plain HTTP only. POOL:
 * --http-threads epoll threads share the connections and hand each request
 * to a worker (util/workq). AUTO: CONNECTION over plain HTTP, POOL over
 * HTTPS, where event streams stay in libmicrohttpd. */
enum { HTTPD_MODEL_AUTO, HTTPD_MODEL_CONNECTION, HTTPD_MODEL_POOL };

#define HTTPD_LIMITS_DEFAULT {128u * 1024 * 1024, 10, 60, 1024, 64, 256, 512, 4, 11264, HTTPD_MODEL_AUTO, 4096}

/* Parses one of the flags above (name without "--"): returns 0, or -1
 * after printing why to stderr. */
int httpd_limits_parse(httpd_limits *l, const char *flag, const char *value);
void httpd_limits_usage(FILE *f);

typedef struct httpd_config {
    const char *listen_host;  /* numeric IPv4 or IPv6 address */
    uint16_t listen_port;     /* 0: any free port */
    size_t max_body;
    int workers;
    const char *const *cors_origins; /* NULL-terminated; may be NULL */
    httpd_inline inline_handler;     /* may be NULL: everything goes to workers */
    bool loopback_hosts_only;        /* authentication off: serve only a loopback
                                        Host with the listening port (else 421) */
    httpd_inline early_handler;      /* may be NULL: runs on the connection's HTTP
                                        thread (several at once, see httpd_inline)
                                        once the headers are complete, for a request
                                        with a body, before a byte of it is read;
                                        true when it answered (401, 403) */
    httpd_limits limits;
    /* HTTPS only (libmicrohttpd with GnuTLS, TLS 1.2 and 1.3) when set: the
     * certificate chain and key (the server takes its own reference). NULL:
     * plain HTTP. */
    tls_creds *tls;
    /* Counters the server adds to (the streams loop's ends); may be NULL. */
    zs_metrics *metrics;
} httpd_config;

httpd *httpd_start(const httpd_config *cfg, httpd_handler h, void *app, const zs_log *lg);
uint16_t httpd_port(const httpd *s);
/* The allowed CORS origins from now on (copied; NULL or empty: none), e.g.
 * changed on SIGHUP. Any thread. */
void httpd_set_cors(httpd *s, const char *const *origins);
/* HTTPS: the pair every later handshake gets (e.g. reloaded on SIGHUP); the
 * connections already open keep theirs. The server takes its own reference.
 * Any thread; only for a server started with cfg->tls. */
void httpd_set_tls(httpd *s, tls_creds *c);
/* Stops accepting, lets in-flight requests finish (up to grace_ms), stops. */
void httpd_stop(httpd *s, int grace_ms);

const char *http_req_method(const http_req *r);
const char *http_req_path(const http_req *r);     /* still percent-encoded */
const char *http_req_header(const http_req *r, const char *name); /* case-insensitive; NULL if absent */
/* The raw (percent-encoded) query value; NULL if absent. */
const char *http_req_query(const http_req *r, const char *name);
const char *http_req_body(const http_req *r, size_t *len);
/* The client's numeric address ("127.0.0.1", "::1"); "" when unknown. */
const char *http_req_client_addr(const http_req *r);

void http_resp_header(http_resp *resp, const char *name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Sets a JSON error body {"error","message"}. The message is made valid
 * UTF-8 (a character cut at the end is dropped, other bad bytes become
 * U+FFFD), so callers may truncate by bytes. */
void http_resp_error(http_resp *resp, int status, const char *code, const char *message);
/* As http_resp_error, with more members: extra is `"name":value,...`
 * (well-formed JSON members, e.g. "errors":[...]), or NULL. */
void http_resp_error_extra(http_resp *resp, int status, const char *code, const char *message, const char *extra);
/* Takes ownership of body (malloc'd). */
void http_resp_json(http_resp *resp, int status, char *body, size_t len);

/* Makes resp a 200 text/event-stream whose body comes from ops. */
void http_resp_stream(http_resp *resp, const http_stream_ops *ops, void *cls);
/* Thread-safe: there may be something to send; read will be called. */
void http_stream_wake(http_stream *s);
/* Open streams, for /metrics. */
size_t httpd_stream_count(httpd *s);

/* Decodes %XX in place-independent fashion: returns malloc'd bytes and
 * *len, or NULL when the encoding is broken. '+' is kept as is. */
char *http_pct_decode(const char *s, size_t n, size_t *len);

#endif

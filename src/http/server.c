#include "http/server.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "util/clock.h"
#include "util/hex.h"
#include "util/sbuf.h"
#include "util/utf8.h"
#include "util/workq.h"
#include "http/sloop.h"

/* Past these, a request is refused (431 / 414), never cut short: a dropped
 * If-Match would turn a compare-and-set into a blind write. */
#define MAX_HEADERS_IN 100
#define MAX_QUERY_IN 100
/* Bytes of the connection buffer (--max-header-bytes) a request's head
 * leaves free for the answer's status line and headers: a head that takes
 * more is refused (431) before anything runs. Without it, a head just short
 * of the buffer's end was served (a write applied) and then the answer did
 * not fit and the connection was closed with nothing sent. */
#define HEAD_ANSWER_ROOM 2048

/* A connection answered before its body was read is drained for at most
 * this long after the answer (lingering close). */
#define LINGER_MS 5000
/* Connections kept for probes: past cap - OPS_RESERVE, a new connection
 * closes the oldest one still waiting for its headers. */
#define OPS_RESERVE 16
/* Connections one HTTP thread accepts per pass of its loop (libmicrohttpd
 * 0.9.75): past the cap, at most this many refused sockets per thread are
 * open at once. */
#define REFUSED_PER_PASS 10

/* An event stream's response block. Over HTTP/1.1 (chunked) libmicrohttpd
 * has stream_read write into the connection's own send buffer and never
 * touches the block; only an HTTP/1.0 stream (e.g. behind a proxy speaking
 * HTTP/1.0 upstream) is sent through it, a block at a time. Each stream
 * holds its block for its whole life: at 4 KiB for every stream it was a
 * fifth of an idle stream's memory. */
#define STREAM_BLOCK_HTTP11 16
#define STREAM_BLOCK_HTTP10 4096
#define GUARD_TICK_MS 100
/* libmicrohttpd's idle timeout (MHD_OPTION_CONNECTION_TIMEOUT): it closes a
 * connection idle this long, whatever --header-timeout says. */
#define MHD_IDLE_S 120
/* A loop stream whose waiting send makes no progress this long is ended
 * (as libmicrohttpd's connection timeout, 120 s, ended its streams). */
#define STREAM_STALL_MS (120 * 1000)

enum { CI_HEADERS, CI_BODY, CI_BUSY };

/* One TCP connection (libmicrohttpd's socket context). Created and
 * destroyed on the connection's HTTP thread (model pool) or on
 * libmicrohttpd's accepting thread (model connection, before the
 * connection's thread starts and after it was joined); its phase and
 * deadline change on the thread serving the connection, under httpd.conn_mu, which the guard thread (and another HTTP
 * thread making room, evict_one) holds while it shuts a socket down: the
 * descriptor is closed only after the connection left the list. */
typedef struct conn_info {
    GList link;          /* in httpd.waiting (CI_HEADERS, CI_BODY) or httpd.busy (CI_BUSY); data = this */
    int fd;
    int phase;           /* CI_*: what the deadline is for */
    int64_t deadline_ms; /* 0: none */
    bool shut;           /* shut down by a deadline or to make room */
    bool linger;         /* answered before its body was read */
    httpd *srv;
    tls_creds *tls;      /* the pair its handshake was given (a reference); its HTTP thread only */
} conn_info;

typedef struct lingerer { int fd; int64_t until_ms; } lingerer;

struct httpd {
    struct MHD_Daemon *d;
    workq *pool;         /* model pool: the request workers (--workers); NULL in model connection */
    bool per_conn;       /* model connection (set at start): requests run on their connection's thread */
    sem_t slots;         /* model connection: --workers requests running at once, each takes one */
    bool slots_ready;    /* slots was initialised */
    atomic_size_t admitted; /* model connection: requests past the "stopping" check and not yet answered */
    pthread_cond_t drained; /* model connection: admitted fell to 0 while stopping (under stop_mu) */
    int placeholder;     /* model connection: an unconnected socket, dup3'd over a detached stream's number; else -1 */
    size_t thread_cap;   /* model connection: connections in libmicrohttpd (each a thread) at most; 0: none */
    httpd_handler handler;
    void *app;
    const zs_log *lg;
    size_t max_body;
    pthread_mutex_t cors_mu; /* guards cors */
    char **cors;         /* allowed origins (owned, NULL-terminated; NULL: none) */
    httpd_inline inline_handler;
    bool loopback_hosts_only;
    char listen_host[64];  /* the numeric listen address, for the Host check */
    uint16_t port;
    pthread_mutex_t stop_mu; /* orders "stopping" against pushes to the pool and (model connection) admissions; guards streams */
    bool stopping;
    GHashTable *streams; /* open http_streams (set) */
    httpd_inline early;
    httpd_limits lim;
    char keepalive_hint[32]; /* "timeout=<N>", the Keep-Alive header: the idle close, min(header_timeout_s, MHD_IDLE_S) (set at start) */
    size_t conn_cap, evict_at, linger_max;
    atomic_size_t body_inflight; /* bytes reserved by bodies being read or held */
    pthread_mutex_t conn_mu; /* guards waiting, busy and every conn_info's phase, deadline, shut */
    /* conn_info by phase, each oldest first. Only the waiting ones have a
     * deadline or can be evicted, so the guard's tick and an eviction walk
     * them alone, not the busy ones (requests in flight and every open
     * event stream: 10,000 streams made each tick walk 10,000 nodes). */
    GQueue waiting;      /* CI_HEADERS, CI_BODY */
    GQueue busy;         /* CI_BUSY */
    /* Of those, the ones shut by the gateway (evicted, refused, past a
     * deadline) whose end libmicrohttpd has not reaped yet: their threads
     * are ending, so they do not count against the thread cap (a probe
     * right behind a burst was refused for them; libmicrohttpd's own
     * limit, the cap plus 16, still bounds them). Under conn_mu. */
    size_t shut_n;
    pthread_mutex_t linger_mu; /* guards linger_new */
    GArray *linger_new;  /* lingerers handed to the guard thread */
    atomic_size_t lingering;
    pthread_t guard;     /* deadlines, lingering closes, closed streams */
    bool guard_started;
    int stream_ep;       /* epoll set of the streams' sockets (EPOLLRDHUP), under stop_mu */
    atomic_bool guard_stop;
    pthread_mutex_t tls_mu; /* guards tls */
    tls_creds *tls;      /* the pair new handshakes get (a reference); NULL: plain HTTP */
    sloop *loop;         /* plain HTTP: the event streams taken out of libmicrohttpd; NULL over TLS */
    atomic_size_t detached; /* streams on loop: connections libmicrohttpd no longer counts */
};

struct http_stream {
    httpd *srv;
    struct MHD_Connection *conn; /* libmicrohttpd's stream (TLS); NULL when on srv->loop */
    sloop_stream *ls;    /* on srv->loop (plain HTTP); NULL: libmicrohttpd's */
    pthread_mutex_t mu; /* guards suspended; never held across ops->read */
    bool suspended;
    atomic_bool wake_pending;
    atomic_bool closing; /* the server is stopping, or the client left: end the stream */
    int fd;              /* the connection's socket, watched for the client's close */
    const http_stream_ops *ops;
    void *cls;
};

typedef struct kv { char *k, *v; } kv;

enum { PH_RECEIVING, PH_DISPATCHED, PH_DONE };

struct http_req {
    workq_item job;   /* its place in the pool's queue */
    httpd *srv;
    struct MHD_Connection *conn;
    int phase;
    char *method, *path;
    kv *headers;      /* every request header, in order (owned) */
    int nheaders;
    kv *query;        /* every query parameter, in order (owned) */
    int nquery;
    sbuf body;
    bool too_large;
    bool over_budget;   /* the body would pass limits.body_inflight */
    size_t reserved;    /* bytes of body_inflight held by this request */
    bool http10;        /* an HTTP/1.0 request */
    char addr[INET6_ADDRSTRLEN];
    http_resp resp;
};

/* ---- request accessors ---------------------------------------------------- */

const char *http_req_method(const http_req *r) { return r->method; }
const char *http_req_path(const http_req *r) { return r->path; }

const char *http_req_header(const http_req *r, const char *name) {
    for (int i = 0; i < r->nheaders; i++)
        if (strcasecmp(r->headers[i].k, name) == 0) return r->headers[i].v;
    return NULL;
}

const char *http_req_query(const http_req *r, const char *name) {
    for (int i = 0; i < r->nquery; i++)
        if (strcmp(r->query[i].k, name) == 0) return r->query[i].v;
    return NULL;
}

const char *http_req_client_addr(const http_req *r) { return r->addr; }

const char *http_req_body(const http_req *r, size_t *len) {
    *len = r->body.len;
    return r->body.buf ? r->body.buf : "";
}

/* ---- responses -------------------------------------------------------------- */

void http_resp_header(http_resp *resp, const char *name, const char *fmt, ...) {
    assert(resp->nheaders < HTTP_MAX_HEADERS_OUT);
    if (resp->nheaders == HTTP_MAX_HEADERS_OUT) return;
    char v[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v, sizeof v, fmt, ap);
    va_end(ap);
    char *copy = strdup(v);
    if (!copy) return; /* out of memory: the header is left out, as MHD_add_response_header would */
    resp->hvalue[resp->nheaders] = copy;
    resp->hname[resp->nheaders++] = name;
}

/* The header values, once libmicrohttpd has its own copies. */
static void resp_headers_free(http_resp *resp) {
    for (int i = 0; i < resp->nheaders; i++) free(resp->hvalue[i]);
    resp->nheaders = 0;
}

void http_resp_json(http_resp *resp, int status, char *body, size_t len) {
    free(resp->body);
    resp->status = status;
    resp->body = body;
    resp->len = len;
    resp->content_type = "application/json";
}

void http_resp_stream(http_resp *resp, const http_stream_ops *ops, void *cls) {
    free(resp->body);
    resp->body = NULL;
    resp->len = 0;
    resp->status = 200;
    resp->content_type = "text/event-stream";
    resp->stream_ops = ops;
    resp->stream_cls = cls;
}

/* Appends m as a JSON string that is valid UTF-8 whatever m holds: a
 * sequence cut short at the end (a message truncated by bytes) is dropped,
 * any other ill-formed byte becomes U+FFFD. */
static void put_utf8_json(sbuf *b, const char *m) {
    size_t n = strlen(m), o = 0;
    char *clean = malloc(n * 3 + 1);
    if (!clean) { sbuf_json_str(b, "", 0); return; }
    const unsigned char *u = (const unsigned char *)m;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_decode(u + i, n - i, NULL);
        if (k) { memcpy(clean + o, m + i, k); o += k; i += k; continue; }
        bool cut = true; /* only continuation bytes up to the end: a cut character */
        for (size_t j = i + 1; j < n; j++) cut = cut && (u[j] & 0xc0) == 0x80;
        size_t want = u[i] >= 0xf0 ? 4 : u[i] >= 0xe0 ? 3 : 2;
        if (cut && u[i] >= 0xc2 && u[i] <= 0xf4 && n - i < want) break;
        memcpy(clean + o, "\xef\xbf\xbd", 3);
        o += 3;
        i++;
    }
    sbuf_json_str(b, clean, o);
    free(clean);
}

void http_resp_error(http_resp *resp, int status, const char *code, const char *message) {
    http_resp_error_extra(resp, status, code, message, NULL);
}

void http_resp_error_extra(http_resp *resp, int status, const char *code, const char *message, const char *extra) {
    sbuf b = SBUF_INIT;
    sbuf_puts(&b, "{\"error\":");
    sbuf_json_str(&b, code, strlen(code));
    sbuf_puts(&b, ",\"message\":");
    put_utf8_json(&b, message);
    if (extra) {
        sbuf_putc(&b, ',');
        sbuf_puts(&b, extra);
    }
    sbuf_putc(&b, '}');
    size_t len;
    char *body = sbuf_steal(&b, &len);
    http_resp_json(resp, status, body, body ? len : 0);
}

char *http_pct_decode(const char *s, size_t n, size_t *len) {
    char *out = malloc(n + 1);
    if (!out) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') { out[o++] = s[i]; continue; }
        if (i + 2 >= n) { free(out); return NULL; }
        int h = hex_value(s[i + 1]), l = hex_value(s[i + 2]);
        if (h < 0 || l < 0) { free(out); return NULL; }
        out[o++] = (char)(h * 16 + l);
        i += 2;
    }
    out[o] = '\0';
    *len = o;
    return out;
}

/* ---- CORS ------------------------------------------------------------------ */

/* Whether origin is one of the allowed origins (which httpd_set_cors may
 * replace at any time, hence the lock). */
static bool cors_allowed(httpd *s, const char *origin) {
    if (!origin) return false;
    bool ok = false;
    pthread_mutex_lock(&s->cors_mu);
    for (char **o = s->cors; o && *o && !ok; o++) ok = strcmp(*o, origin) == 0;
    pthread_mutex_unlock(&s->cors_mu);
    return ok;
}

#define CORS_EXPOSE "ETag, Retry-After, Allow"

/* The request's Origin when it is allowed (echoed as it came), else NULL. */
static const char *cors_origin(httpd *s, const http_req *r) {
    const char *o = http_req_header(r, "Origin");
    return cors_allowed(s, o) ? o : NULL;
}

static void add_cors(httpd *s, const http_req *r, struct MHD_Response *mr) {
    const char *o = cors_origin(s, r);
    if (!o) return;
    MHD_add_response_header(mr, "Access-Control-Allow-Origin", o); /* the same text as the allowed one */
    MHD_add_response_header(mr, "Vary", "Origin");
    MHD_add_response_header(mr, "Access-Control-Expose-Headers", CORS_EXPOSE);
}

/* ---- libmicrohttpd glue ------------------------------------------------------- */

/* ---- streams ----------------------------------------------------------------- */

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    http_stream *st = cls;
    for (;;) {
        atomic_store(&st->wake_pending, false);
        long n = atomic_load(&st->closing) ? -1 : st->ops->read(st->cls, buf, max);
        if (n != 0) return n < 0 ? MHD_CONTENT_READER_END_OF_STREAM : (ssize_t)n;
        /* Nothing now: sleep until http_stream_wake. A wake that came
         * during the read is seen here, under mu, and the read runs again;
         * a later one finds the stream suspended and resumes it. */
        pthread_mutex_lock(&st->mu);
        if (atomic_load(&st->wake_pending) || atomic_load(&st->closing)) {
            pthread_mutex_unlock(&st->mu);
            continue;
        }
        st->suspended = true;
        MHD_suspend_connection(st->conn);
        pthread_mutex_unlock(&st->mu);
        return 0;
    }
}

static void stream_free(void *cls) {
    http_stream *st = cls;
    pthread_mutex_lock(&st->srv->stop_mu);
    g_hash_table_remove(st->srv->streams, st);
    /* the descriptor is still open: libmicrohttpd closes it after this */
    if (st->fd >= 0 && st->srv->stream_ep >= 0) epoll_ctl(st->srv->stream_ep, EPOLL_CTL_DEL, st->fd, NULL);
    pthread_mutex_unlock(&st->srv->stop_mu);
    st->ops->done(st->cls);
    pthread_mutex_destroy(&st->mu);
    free(st);
}

void http_stream_wake(http_stream *st) {
    if (st->ls) { sloop_wake(st->ls); return; }
    atomic_store(&st->wake_pending, true);
    pthread_mutex_lock(&st->mu);
    if (st->suspended) {
        st->suspended = false;
        MHD_resume_connection(st->conn);
    }
    pthread_mutex_unlock(&st->mu);
}

size_t httpd_stream_count(httpd *s) {
    pthread_mutex_lock(&s->stop_mu);
    size_t n = g_hash_table_size(s->streams);
    pthread_mutex_unlock(&s->stop_mu);
    return n;
}

static struct MHD_Response *stream_response(httpd *s, http_req *r) {
    http_stream *st = calloc(1, sizeof *st);
    if (!st) return NULL;
    st->srv = s;
    st->conn = r->conn;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    st->fd = ci ? ci->connect_fd : -1;
    st->ops = r->resp.stream_ops;
    st->cls = r->resp.stream_cls;
    pthread_mutex_init(&st->mu, NULL);
    struct MHD_Response *mr = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, r->http10 ? STREAM_BLOCK_HTTP10 : STREAM_BLOCK_HTTP11, stream_read, st, stream_free);
    if (!mr) { pthread_mutex_destroy(&st->mu); free(st); return NULL; }
    r->resp.stream_ops = NULL; /* stream_free owns cls from here on */
    pthread_mutex_lock(&s->stop_mu);
    g_hash_table_add(s->streams, st);
    if (st->fd >= 0 && s->stream_ep >= 0) {
        struct epoll_event ev = {.events = EPOLLRDHUP | EPOLLONESHOT, .data.ptr = st};
        epoll_ctl(s->stream_ep, EPOLL_CTL_ADD, st->fd, &ev);
    }
    atomic_store(&st->closing, s->stopping);
    pthread_mutex_unlock(&s->stop_mu);
    st->ops->attach(st->cls, st);
    MHD_add_response_header(mr, "X-Accel-Buffering", "no");
    return mr;
}

/* ---- streams on the gateway's own loop (plain HTTP) ---------------------------- */

static conn_info *conn_of(struct MHD_Connection *c);

static long lstream_read(void *cls, char *buf, size_t max) {
    http_stream *st = cls;
    return atomic_load(&st->closing) ? -1 : st->ops->read(st->cls, buf, max);
}

static void lstream_end(void *cls) {
    http_stream *st = cls;
    httpd *s = st->srv;
    pthread_mutex_lock(&s->stop_mu);
    g_hash_table_remove(s->streams, st);
    pthread_mutex_unlock(&s->stop_mu);
    st->ops->done(st->cls); /* drops it from the waker's registry: no wake after this */
    atomic_fetch_sub(&s->detached, 1);
    pthread_mutex_destroy(&st->mu);
    free(st);
}

static const sloop_ops lstream_ops = {lstream_read, lstream_end};

/* Whether a header line may carry this text (no CR, LF or NUL). */
static bool head_safe(const char *t) { return t && !strpbrk(t, "\r\n"); }

/* The response head of a stream sent by the loop: a 200 whose body runs to
 * the close (no chunking: the loop writes frames as they are). False when a
 * header would break the head (never from the gateway's own values). */
static bool stream_head(httpd *s, const http_req *r, sbuf *h) {
    const http_resp *resp = &r->resp;
    assert(resp->status == 200);
    char date[64];
    time_t now = time(NULL);
    struct tm tm;
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", gmtime_r(&now, &tm));
    sbuf_printf(h, "HTTP/1.1 200 OK\r\nDate: %s\r\nContent-Type: %s\r\n", date,
                resp->content_type ? resp->content_type : "text/event-stream");
    bool cache_set = false;
    for (int i = 0; i < resp->nheaders; i++) {
        if (!head_safe(resp->hname[i]) || !head_safe(resp->hvalue[i])) return false;
        sbuf_printf(h, "%s: %s\r\n", resp->hname[i], resp->hvalue[i]);
        if (strcasecmp(resp->hname[i], "Cache-Control") == 0) cache_set = true;
    }
    if (!cache_set) sbuf_puts(h, "Cache-Control: no-store\r\n");
    const char *o = cors_origin(s, r);
    if (o && !head_safe(o)) return false;
    if (o) sbuf_printf(h, "Access-Control-Allow-Origin: %s\r\nVary: Origin\r\nAccess-Control-Expose-Headers: %s\r\n", o, CORS_EXPOSE);
    sbuf_puts(h, "X-Accel-Buffering: no\r\nConnection: close\r\n\r\n");
    return !sbuf_failed(h);
}

/* The connection's descriptor is no longer libmicrohttpd's to shut: neither
 * a deadline nor an eviction may touch it between now and its close. */
static void conn_forget_fd(httpd *s, struct MHD_Connection *c) {
    conn_info *ci = conn_of(c);
    if (!ci) return;
    pthread_mutex_lock(&s->conn_mu);
    ci->fd = -1;
    pthread_mutex_unlock(&s->conn_mu);
}

/* Takes the stream's socket out of libmicrohttpd onto s->loop
 * (docs/ARCHITECTURE.md, "Event streams outside libmicrohttpd"): a
 * duplicate of the descriptor goes to the loop with the head to send, and
 * the caller returns MHD_NO, so libmicrohttpd closes its own descriptor
 * without a byte sent or a shutdown (MHD_USE_TURBO) while the socket lives
 * on in the duplicate. Returns false, with nothing changed, when the socket
 * cannot be duplicated or watched or the head built: the stream then stays
 * libmicrohttpd's. */
static bool stream_detach(httpd *s, http_req *r) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci) return false;
    /* Model connection: the connection's thread, on its way out, shuts the
     * socket for writing whatever the flags (libmicrohttpd 0.9.75,
     * thread_main_handle_connection), which would end the stream. So the
     * descriptor number libmicrohttpd holds is made to name an unconnected
     * socket (httpd.placeholder, one for all, so this needs no
     * descriptor of its own), which that shutdown (ENOTCONN) and the close
     * then hit, while the stream's duplicate keeps the connection. Nothing
     * uses the number meanwhile: this runs on that very thread, which polls
     * its own socket alone. Never in the pool model: an epoll set there
     * names the socket by this number. */
    sbuf head = SBUF_INIT;
    http_stream *st = calloc(1, sizeof *st);
    int fd = -1;
    if (!st || !stream_head(s, r, &head) || (fd = fcntl(ci->connect_fd, F_DUPFD_CLOEXEC, 0)) < 0) {
        free(st);
        sbuf_free(&head);
        return false;
    }
    int one = 1, zero = 0;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_CORK, &zero, sizeof zero); /* frames go out as they are written */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    st->ls = sloop_prepare(s->loop, fd, head.buf, head.len, &lstream_ops, st); /* owns fd */
    sbuf_free(&head);
    if (!st->ls) {
        free(st);
        return false;
    }
    if (s->per_conn && dup3(s->placeholder, ci->connect_fd, O_CLOEXEC) < 0) { /* (EINTR, EBUSY: the number is as it was) */
        sloop_discard(st->ls); /* closes the duplicate only */
        free(st);
        return false;
    }
    st->srv = s;
    st->fd = -1;
    st->ops = r->resp.stream_ops;
    st->cls = r->resp.stream_cls;
    pthread_mutex_init(&st->mu, NULL);
    r->resp.stream_ops = NULL; /* the stream owns cls from here on */
    conn_forget_fd(s, r->conn);
    atomic_fetch_add(&s->detached, 1);
    pthread_mutex_lock(&s->stop_mu);
    g_hash_table_add(s->streams, st);
    atomic_store(&st->closing, s->stopping);
    pthread_mutex_unlock(&s->stop_mu);
    st->ops->attach(st->cls, st); /* wakes from here on are marked, and served from the start */
    if (!sloop_start(st->ls)) { /* the loop is stopping (cannot happen: it stops after the HTTP threads) */
        sloop_stream *ls = st->ls;
        lstream_end(st);  /* out of the wake registry first: no wake can touch ls after this */
        sloop_discard(ls);
    }
    return true;
}

static void req_shed(http_req *r);

/* Whether libmicrohttpd keeps the connection after this answer as far as the
 * request decides it: not for "Connection: close", nor for HTTP/1.0 (0.9.75
 * answers every HTTP/1.0 request "Connection: close"). */
static bool client_keeps(const http_req *r) {
    const char *h = http_req_header(r, "Connection");
    return !r->http10 && !(h && strcasestr(h, "close"));
}

static enum MHD_Result queue(httpd *s, http_req *r) {
    http_resp *resp = &r->resp;
    if (resp->status == 0) http_resp_error(resp, 500, "internal", "no response");
    struct MHD_Response *mr;
    bool stream = resp->stream_ops != NULL;
    if (stream && s->loop && strcmp(r->method, "GET") == 0 && stream_detach(s, r)) {
        resp_headers_free(resp);
        req_shed(r);
        return MHD_NO; /* libmicrohttpd closes its descriptor; the loop's keeps the socket */
    }
    if (stream) {
        mr = stream_response(s, r);
    } else {
        mr = MHD_create_response_from_buffer(resp->len, resp->body ? resp->body : (void *)"",
                                             resp->body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
        if (mr) resp->body = NULL; /* libmicrohttpd owns it now */
    }
    if (!mr) {
        LOG_ERROR(s->lg, "http: out of memory for a response; closing the connection");
        return MHD_NO;
    }
    if (resp->len || resp->status >= 400 || resp->content_type)
        MHD_add_response_header(mr, "Content-Type", resp->content_type ? resp->content_type : "application/json");
    bool cache_set = false, closing = false;
    for (int i = 0; i < resp->nheaders; i++) {
        MHD_add_response_header(mr, resp->hname[i], resp->hvalue[i]);
        if (strcasecmp(resp->hname[i], "Cache-Control") == 0) cache_set = true;
        if (strcasecmp(resp->hname[i], "Connection") == 0) closing = true; /* only ever "close" */
    }
    if (!cache_set) MHD_add_response_header(mr, "Cache-Control", "no-store");
    /* A kept-alive connection is closed once idle for --header-timeout (its
     * next request's deadline). Said in every answer, so a client that
     * keeps idle sockets closes one before the gateway does, rather than
     * send a request as it is closed and read a reset (Node's http.Agent
     * and undici honour it). */
    if (!stream && !closing && client_keeps(r)) MHD_add_response_header(mr, "Keep-Alive", s->keepalive_hint);
    add_cors(s, r, mr);
    resp_headers_free(resp);
    enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned)resp->status, mr);
    MHD_destroy_response(mr);
    /* A stream lives for hours on this request: keep none of its copies. */
    if (stream && ret == MHD_YES) req_shed(r);
    return ret;
}

static void body_too_large(httpd *s, http_req *r) {
    char msg[128];
    snprintf(msg, sizeof msg, "the body is larger than the limit of %zu bytes (--max-body)", s->max_body);
    http_resp_error(&r->resp, 413, "body_too_large", msg);
}

/* A list being filled by collect(). */
typedef struct kv_list { kv *arr; int n, cap; bool oom; } kv_list;

/* MHD_get_connection_values iterator: appends one header or query value. */
static enum MHD_Result collect(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
    (void)kind;
    kv_list *l = cls;
    if (!key) return MHD_YES;
    if (l->n == l->cap) { l->oom = true; return MHD_NO; } /* cannot happen: counted first */
    kv *e = &l->arr[l->n];
    e->k = strdup(key);
    e->v = strdup(value ? value : "");
    if (!e->k || !e->v) { free(e->k); free(e->v); l->oom = true; return MHD_NO; }
    l->n++;
    return MHD_YES;
}

/* Copies every value of kind into *arr / *n (allocated to the exact
 * count). Returns 0; -1 when there are more than max (nothing copied);
 * -2 on OOM. */
static int collect_all(struct MHD_Connection *c, enum MHD_ValueKind kind, int max, kv **arr, int *n) {
    int count = MHD_get_connection_values(c, kind, NULL, NULL);
    if (count > max) return -1;
    if (count <= 0) return 0;
    kv_list l = {calloc((size_t)count, sizeof(kv)), 0, count, false};
    if (!l.arr) return -2;
    MHD_get_connection_values(c, kind, collect, &l);
    *arr = l.arr; /* freed with the request, whatever was filled */
    *n = l.n;
    return l.oom ? -2 : 0;
}

static int count_header(const http_req *r, const char *name) {
    int n = 0;
    for (int i = 0; i < r->nheaders; i++) n += strcasecmp(r->headers[i].k, name) == 0;
    return n;
}

/* Headers that must appear at most once: a second one would be a second,
 * different meaning (which Authorization, which precondition?). */
static const char *const single_headers[] = {
    "Host", "Authorization", "Content-Length", "Transfer-Encoding", "Content-Type",
    "If-Match", "If-None-Match", "Last-Event-ID", "Origin", NULL,
};

/* Strict framing (no request smuggling): a Content-Length of digits only,
 * never with Transfer-Encoding, and "chunked" as the only transfer coding.
 * Fills resp and returns true when the request must be refused. */
static bool bad_framing(const http_req *r, const char *version, http_resp *resp) {
    for (const char *const *h = single_headers; *h; h++) {
        if (count_header(r, *h) > 1) {
            char msg[96];
            snprintf(msg, sizeof msg, "the %s header is given more than once", *h);
            http_resp_error(resp, 400, "bad_request", msg);
            return true;
        }
    }
    const char *cl = http_req_header(r, "Content-Length");
    const char *te = http_req_header(r, "Transfer-Encoding");
    if (cl && te) {
        http_resp_error(resp, 400, "bad_request", "Content-Length and Transfer-Encoding together are refused");
        return true;
    }
    if (cl && (!*cl || strspn(cl, "0123456789") != strlen(cl))) {
        http_resp_error(resp, 400, "bad_request", "Content-Length must be a decimal number");
        return true;
    }
    if (te && strcasecmp(te, "chunked") != 0) {
        http_resp_error(resp, 501, "not_implemented", "the only transfer coding supported is chunked");
        return true;
    }
    if (strcmp(version, MHD_HTTP_VERSION_1_1) == 0 && !http_req_header(r, "Host")) {
        http_resp_error(resp, 400, "bad_request", "an HTTP/1.1 request needs a Host header");
        return true;
    }
    return false;
}

/* A query parameter given twice is ambiguous: refused. */
static bool bad_query(const http_req *r, http_resp *resp) {
    for (int i = 0; i < r->nquery; i++) {
        for (int j = 0; j < i; j++) {
            if (strcmp(r->query[i].k, r->query[j].k) == 0) {
                char msg[160];
                snprintf(msg, sizeof msg, "the query parameter '%.64s' is given more than once", r->query[i].k);
                http_resp_error(resp, 400, "bad_request", msg);
                return true;
            }
        }
    }
    return false;
}

/* Is host (a Host header value) a loopback name with the listening port?
 * Accepted names: localhost, 127.0.0.1, [::1] and the listen address;
 * the port may be left out only when it is 80. */
static bool loopback_host(const httpd *s, const char *host) {
    if (!host) return false;
    const char *colon = strrchr(host, ':');
    if (colon && strchr(colon, ']')) colon = NULL; /* "[::1]" without a port */
    size_t hl = colon ? (size_t)(colon - host) : strlen(host);
    char port[8];
    snprintf(port, sizeof port, "%u", (unsigned)s->port);
    if (colon ? strcmp(colon + 1, port) != 0 : s->port != 80) return false;
    char listen[70];
    snprintf(listen, sizeof listen, strchr(s->listen_host, ':') ? "[%s]" : "%s", s->listen_host);
    const char *names[] = {"localhost", "127.0.0.1", "[::1]", listen};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i]) == hl && strncasecmp(host, names[i], hl) == 0) return true;
    return false;
}

/* Copies the headers and query, then applies every check that needs only
 * them. Fills resp and returns true when the request is answered now
 * (before any body byte is read; the connection is then closed). */
/* What the request's head takes of libmicrohttpd's connection buffer
 * (--max-header-bytes), measured rather than rebuilt: libmicrohttpd 0.9.75
 * parses the request line and headers in place, so they span one stretch
 * of the buffer from the method on (spaces, line ends and all); what lies
 * outside that stretch (the Cookie header's copy that is split into
 * cookies, a folded header's joined copy) takes room of its own; and every
 * header, query parameter and cookie has a 64-byte record (52 bytes,
 * aligned). The addresses are compared as integers: they may lie in
 * different allocations. */
enum { HEAD_ITEM_BYTES = 64 };
typedef struct head_span {
    uintptr_t lo, hi, cap; /* the stretch: [lo, hi), at most cap bytes from lo */
    size_t outside;        /* bytes of copies outside it */
    size_t items;
} head_span;

static void span_add(head_span *h, const char *p) {
    if (!p) return;
    size_t len = strlen(p);
    uintptr_t a = (uintptr_t)p;
    if (a >= h->lo && a - h->lo < h->cap) {
        if (a + len + 1 > h->hi) h->hi = a + len + 1;
    } else {
        h->outside += len + 1;
    }
}

static enum MHD_Result span_item(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
    (void)kind;
    head_span *h = cls;
    h->items++;
    span_add(h, key);
    span_add(h, value);
    return MHD_YES;
}

static size_t head_bytes(httpd *s, struct MHD_Connection *c, const char *method, const char *url) {
    head_span h = {.lo = (uintptr_t)method, .hi = (uintptr_t)method, .cap = s->lim.header_bytes};
    span_add(&h, method);
    span_add(&h, url);
    MHD_get_connection_values(c, MHD_HEADER_KIND | MHD_GET_ARGUMENT_KIND | MHD_COOKIE_KIND, span_item, &h);
    return (size_t)(h.hi - h.lo) + 4 /* the blank line */ + h.outside + h.items * HEAD_ITEM_BYTES;
}

static bool refuse_early(httpd *s, http_req *r, const char *method, const char *url, const char *version) {
    http_resp *resp = &r->resp;
    size_t head = head_bytes(s, r->conn, method, url);
    int nh = collect_all(r->conn, MHD_HEADER_KIND, MAX_HEADERS_IN, &r->headers, &r->nheaders);
    int nq = nh < 0 ? 0 : collect_all(r->conn, MHD_GET_ARGUMENT_KIND, MAX_QUERY_IN, &r->query, &r->nquery);
    if (nh == -2 || nq == -2) {
        http_resp_error(resp, 500, "internal", "out of memory");
    } else if (nh == -1) {
        http_resp_error(resp, 431, "headers_too_large", "more than 100 request headers");
    } else if (nq == -1) {
        http_resp_error(resp, 414, "uri_too_long", "more than 100 query parameters");
    } else if (head > s->lim.header_bytes - HEAD_ANSWER_ROOM) {
        char msg[200];
        snprintf(msg, sizeof msg, "the request line and headers take %zu bytes of the connection's buffer; at most %zu "
                 "(--max-header-bytes minus %d kept for the answer)", head,
                 s->lim.header_bytes - HEAD_ANSWER_ROOM, HEAD_ANSWER_ROOM);
        http_resp_error(resp, 431, "headers_too_large", msg);
    } else if (bad_framing(r, version, resp) || bad_query(r, resp)) {
        /* filled */
    } else if (s->loopback_hosts_only && !loopback_host(s, http_req_header(r, "Host"))) {
        http_resp_error(resp, 421, "misdirected_request",
                        "authentication is off: only a loopback Host with the listening port is served");
    } else {
        return false;
    }
    http_resp_header(resp, "Connection", "close");
    return true;
}


/* Reserves n bytes of the global body budget; false when they do not fit. */
static bool budget_take(httpd *s, size_t n) {
    size_t cur = atomic_load(&s->body_inflight);
    do {
        if (n > s->lim.body_inflight || cur > s->lim.body_inflight - n) return false;
    } while (!atomic_compare_exchange_weak(&s->body_inflight, &cur, cur + n));
    return true;
}

static void budget_give(httpd *s, http_req *r) {
    if (r->reserved) atomic_fetch_sub(&s->body_inflight, r->reserved);
    r->reserved = 0;
}

static void over_budget(http_resp *resp) {
    http_resp_error(resp, 503, "unavailable",
                    "the gateway holds as many request bodies as it may (--max-body-inflight); retry shortly");
    http_resp_header(resp, "Retry-After", "1");
    http_resp_header(resp, "Connection", "close");
}

static bool has_body(const http_req *r) {
    const char *cl = http_req_header(r, "Content-Length");
    return (cl && strspn(cl, "0") != strlen(cl)) || http_req_header(r, "Transfer-Encoding");
}

/* The checks that keep a body from being read at all: the early hook
 * (401/403), a declared length over max_body (413), and the global budget
 * (503; a declared length is reserved whole). Fills resp and returns true
 * when the request is answered now. */
static bool refuse_body(httpd *s, http_req *r) {
    if (!has_body(r)) return false;
    http_resp *resp = &r->resp;
    if (s->early && s->early(s->app, r, resp)) {
        http_resp_header(resp, "Connection", "close");
        return true;
    }
    const char *cl = http_req_header(r, "Content-Length");
    unsigned long long declared = cl ? strtoull(cl, NULL, 10) : 0;
    if (declared > s->max_body) {
        body_too_large(s, r);
        http_resp_header(resp, "Connection", "close");
        return true;
    }
    if (declared) {
        if (!budget_take(s, (size_t)declared)) { over_budget(resp); return true; }
        r->reserved = (size_t)declared;
    }
    return false;
}

static conn_info *conn_of(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *i = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return i ? i->socket_context : NULL;
}

/* Moves the connection to phase, with a deadline of secs from now (0: none).
 * Returns false, changing nothing, when the gateway has shut it (evicted,
 * refused, past a deadline): its request may still have arrived whole
 * (shutdown keeps what the socket received, and libmicrohttpd parses it),
 * but nothing must run for it, as its answer could not be sent. Checked
 * under conn_mu with the move, so no eviction comes in between (evict_one
 * takes only connections waiting for headers). */
static bool conn_phase(httpd *s, struct MHD_Connection *c, int phase, unsigned secs, bool linger) {
    conn_info *ci = conn_of(c);
    if (!ci) return true;
    pthread_mutex_lock(&s->conn_mu);
    if (ci->shut) {
        pthread_mutex_unlock(&s->conn_mu);
        return false;
    }
    if ((ci->phase == CI_BUSY) != (phase == CI_BUSY)) {
        g_queue_unlink(ci->phase == CI_BUSY ? &s->busy : &s->waiting, &ci->link);
        g_queue_push_tail_link(phase == CI_BUSY ? &s->busy : &s->waiting, &ci->link);
    }
    ci->phase = phase;
    ci->deadline_ms = secs ? zs_clock_ms() + (int64_t)secs * 1000 : 0;
    ci->linger = ci->linger || linger;
    pthread_mutex_unlock(&s->conn_mu);
    return true;
}

static void addr_string(const struct sockaddr *sa, char *out, size_t n) {
    out[0] = '\0';
    if (!sa) return;
    if (sa->sa_family == AF_INET) inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)n);
    else if (sa->sa_family == AF_INET6) inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)n);
}

/* Drops the request's copies (headers, query, body): for an event stream,
 * whose request object lives as long as the connection, once answered. */
static void req_shed(http_req *r) {
    for (int i = 0; i < r->nheaders; i++) { free(r->headers[i].k); free(r->headers[i].v); }
    for (int i = 0; i < r->nquery; i++) { free(r->query[i].k); free(r->query[i].v); }
    free(r->headers);
    free(r->query);
    r->headers = r->query = NULL;
    r->nheaders = r->nquery = 0;
    sbuf_free(&r->body);
    budget_give(r->srv, r);
}

static void req_free(http_req *r) {
    req_shed(r);
    free(r->method);
    free(r->path);
    resp_headers_free(&r->resp);
    free(r->resp.body);
    if (r->resp.stream_ops) r->resp.stream_ops->done(r->resp.stream_cls); /* never started */
    free(r);
}

static void run_job(workq_item *job, void *user) {
    http_req *r = (http_req *)((char *)job - offsetof(http_req, job));
    httpd *s = user;
    s->handler(s->app, r, &r->resp);
    r->phase = PH_DONE;
    MHD_resume_connection(r->conn);
}

/* Model connection: a request admitted under stop_mu has been answered (or
 * refused); the last one while stopping wakes httpd_stop. */
static void request_done(httpd *s) {
    if (atomic_fetch_sub(&s->admitted, 1) != 1) return;
    pthread_mutex_lock(&s->stop_mu);
    if (s->stopping) pthread_cond_broadcast(&s->drained);
    pthread_mutex_unlock(&s->stop_mu);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    httpd *s = cls;
    http_req *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r) return MHD_NO;
        *con_cls = r;
        r->srv = s;
        r->conn = c;
        r->method = strdup(method);
        r->path = strdup(url);
        r->http10 = strcmp(version, MHD_HTTP_VERSION_1_0) == 0;
        if (!r->method || !r->path) return MHD_NO;
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        addr_string(ci ? ci->client_addr : NULL, r->addr, sizeof r->addr);
        if (refuse_early(s, r, method, url, version) || refuse_body(s, r)) {
            /* answered before a byte of body: linger on close so that the
             * client reads the answer, not a reset */
            bool declared = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length") ||
                            MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Transfer-Encoding");
            if (!conn_phase(s, c, CI_BUSY, 0, declared)) return MHD_NO; /* shut meanwhile: no answer can go */
            r->phase = PH_DONE;
            return queue(s, r);
        }
        bool body = has_body(r);
        if (!conn_phase(s, c, body ? CI_BODY : CI_BUSY, body ? s->lim.body_timeout_s : 0, false)) return MHD_NO;
        return MHD_YES;
    }
    if (r->phase == PH_DONE) return queue(s, r);
    if (*upload_size) {
        size_t n = *upload_size;
        if (!r->too_large && r->body.len + n > s->max_body) {
            r->too_large = true;
            sbuf_free(&r->body);
            budget_give(s, r);
        }
        if (!r->too_large && !r->over_budget && r->body.len + n > r->reserved) {
            /* a chunked body: reserve as it grows, 64 KiB at a time */
            size_t want = (r->body.len + n - r->reserved + 65535) / 65536 * 65536;
            if (budget_take(s, want)) {
                r->reserved += want;
            } else {
                r->over_budget = true;
                sbuf_free(&r->body);
                budget_give(s, r);
            }
        }
        if (!r->too_large && !r->over_budget) sbuf_append(&r->body, upload, n);
        *upload_size = 0;
        return MHD_YES;
    }
    if (r->phase != PH_RECEIVING) return MHD_YES;
    if (!conn_phase(s, c, CI_BUSY, 0, false)) return MHD_NO; /* past its body deadline, shut: run nothing */
    if (r->too_large) {
        body_too_large(s, r);
        return queue(s, r);
    }
    if (r->over_budget) {
        over_budget(&r->resp);
        return queue(s, r);
    }
    if (sbuf_failed(&r->body)) return MHD_NO;
    if (MHD_get_connection_values(c, MHD_FOOTER_KIND, NULL, NULL) > 0) {
        /* Trailer fields would take the connection buffer's room for the
         * answer after the head was measured; no route needs them. */
        http_resp_error(&r->resp, 400, "bad_request", "trailer fields after a chunked body are not accepted");
        http_resp_header(&r->resp, "Connection", "close");
        return queue(s, r);
    }
    if (strcmp(method, "OPTIONS") == 0 && cors_allowed(s, http_req_header(r, "Origin"))) {
        r->resp.status = 204;
        http_resp_header(&r->resp, "Access-Control-Allow-Methods", "GET, PUT, POST, DELETE, OPTIONS");
        http_resp_header(&r->resp, "Access-Control-Allow-Headers",
                         "Authorization, Content-Type, If-Match, If-None-Match, Last-Event-ID");
        http_resp_header(&r->resp, "Access-Control-Max-Age", "600");
        return queue(s, r);
    }
    if (s->inline_handler && s->inline_handler(s->app, r, &r->resp)) {
        r->phase = PH_DONE; /* answered on this thread: it never blocks */
        return queue(s, r);
    }
    pthread_mutex_lock(&s->stop_mu);
    if (s->stopping) {
        pthread_mutex_unlock(&s->stop_mu);
        http_resp_error(&r->resp, 503, "unavailable", "the gateway is shutting down; retry on another");
        http_resp_header(&r->resp, "Retry-After", "1");
        http_resp_header(&r->resp, "Connection", "close");
        return queue(s, r);
    }
    if (s->per_conn) {
        /* This connection's own thread: run the request here, at most
         * --workers at once. A request busy here cannot be evicted, so at
         * most --http-connections less 16 are admitted: the rest of the
         * threads stay for probes and new connections (evict_one makes room
         * among those waiting for headers) while ZooKeeper stalls. */
        if (atomic_fetch_add(&s->admitted, 1) >= s->thread_cap - OPS_RESERVE) {
            pthread_mutex_unlock(&s->stop_mu);
            request_done(s);
            /* (the body was read: the connection may stay, and a retry on it
             * costs no new connection and thread) */
            http_resp_error(&r->resp, 503, "unavailable",
                            "the gateway is serving as many requests as it has threads for (--http-connections); retry shortly");
            http_resp_header(&r->resp, "Retry-After", "1");
            r->phase = PH_DONE;
            return queue(s, r);
        }
        pthread_mutex_unlock(&s->stop_mu);
        while (sem_wait(&s->slots) != 0) assert(errno == EINTR);
        s->handler(s->app, r, &r->resp);
        sem_post(&s->slots);
        r->phase = PH_DONE;
        enum MHD_Result q = queue(s, r);
        /* httpd_stop waits for this before its grace for the last answers
         * begins, as it drains the pool's workers */
        request_done(s);
        return q;
    }
    r->phase = PH_DISPATCHED;
    MHD_suspend_connection(c);
    int queued = workq_push(s->pool, &r->job); /* refused only once httpd_stop set stopping, under stop_mu */
    assert(queued == 0);
    (void)queued;
    pthread_mutex_unlock(&s->stop_mu);
    return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    httpd *s = cls;
    (void)toe;
    http_req *r = *con_cls;
    if (r) req_free(r);
    *con_cls = NULL;
    /* a kept-alive connection: the next request's headers have a deadline too */
    (void)conn_phase(s, c, CI_HEADERS, s->lim.header_timeout_s, false);
}

/* ---- connections: deadlines, room, lingering close ------------------------------ */

/* Called with conn_mu held, on the new connection's HTTP thread: closes the
 * oldest connection still waiting for its headers, whichever HTTP thread
 * serves it (its thread sees the socket fail, and takes conn_mu before the
 * descriptor is closed). */
static void evict_one(httpd *s) {
    for (GList *l = s->waiting.head; l; l = l->next) {
        conn_info *ci = l->data;
        assert(ci->phase != CI_BUSY);
        if (ci->phase != CI_HEADERS || ci->shut || ci->fd < 0) continue;
        shutdown(ci->fd, SHUT_RDWR);
        ci->shut = true;
        s->shut_n++;
        LOG_DEBUG(s->lg, "http: %u connections: closed the oldest one still waiting for its headers",
                  s->waiting.length + s->busy.length);
        return;
    }
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe) {
    httpd *s = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        conn_info *ci = calloc(1, sizeof *ci);
        *socket_context = ci;
        if (!ci) return; /* untracked: no deadline, no linger */
        const union MHD_ConnectionInfo *i = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        ci->fd = i ? i->connect_fd : -1;
        ci->srv = s;
        ci->link.data = ci;
        ci->phase = CI_HEADERS;
        ci->deadline_ms = zs_clock_ms() + (int64_t)s->lim.header_timeout_s * 1000;
        /* the loop's streams hold descriptors libmicrohttpd no longer counts */
        size_t held = atomic_load(&s->detached);
        pthread_mutex_lock(&s->conn_mu);
        size_t in_mhd = s->waiting.length + s->busy.length; /* model connection: each a thread */
        assert(s->shut_n <= in_mhd);
        size_t live = in_mhd - s->shut_n; /* the shut ones' threads are ending */
        held += in_mhd;                   /* but each still holds its descriptor */
        bool no_thread = s->thread_cap && live >= s->thread_cap;
        if ((held >= s->conn_cap || no_thread) && ci->fd >= 0) {
            shutdown(ci->fd, SHUT_RDWR); /* no descriptor (or thread) left for it: refused */
            ci->shut = true;
            s->shut_n++;
            LOG_DEBUG(s->lg, "http: %zu connections and event streams open (%zu in libmicrohttpd): refused a new connection",
                      held, in_mhd);
        } else if (held >= s->evict_at || (s->thread_cap && live + 1 >= s->thread_cap)) {
            /* (model connection: only when this one takes the last thread.
             * The admission bound already keeps 16 threads from requests;
             * evicting earlier, as at the descriptors' cap, made clients
             * retrying their 503s evict the probes before their headers
             * came: a reviewer's finding) */
            evict_one(s);
        }
        g_queue_push_tail_link(&s->waiting, &ci->link);
        pthread_mutex_unlock(&s->conn_mu);
        return;
    }
    conn_info *ci = *socket_context;
    *socket_context = NULL;
    if (!ci) return;
    pthread_mutex_lock(&s->conn_mu);
    g_queue_unlink(ci->phase == CI_BUSY ? &s->busy : &s->waiting, &ci->link);
    if (ci->shut) {
        assert(s->shut_n > 0);
        s->shut_n--;
    }
    pthread_mutex_unlock(&s->conn_mu);
    tls_creds_unref(ci->tls);
    /* libmicrohttpd has sent the answer (and over TLS shut the session; with
     * MHD_USE_TURBO, over plain HTTP, it does not shut the socket, except
     * that in model connection the connection's thread shut it for writing
     * as it ended); it closes the descriptor after this. A duplicate, shut
     * for writing here, keeps the socket open while the guard drains what
     * the client still sends. */
    if (ci->linger && !ci->shut && ci->fd >= 0) {
        if (atomic_fetch_add(&s->lingering, 1) < s->linger_max) {
            int d = fcntl(ci->fd, F_DUPFD_CLOEXEC, 0);
            if (d >= 0) {
                shutdown(d, SHUT_WR); /* the answer is all: FIN now, then drain */
                lingerer l = {d, zs_clock_ms() + LINGER_MS};
                pthread_mutex_lock(&s->linger_mu);
                g_array_append_val(s->linger_new, l);
                pthread_mutex_unlock(&s->linger_mu);
            } else {
                atomic_fetch_sub(&s->lingering, 1);
            }
        } else {
            atomic_fetch_sub(&s->lingering, 1);
        }
    }
    free(ci);
}

/* Closes every connection past its deadline (headers or body). */
static void reap(httpd *s, int64_t now) {
    pthread_mutex_lock(&s->conn_mu);
    for (GList *l = s->waiting.head; l; l = l->next) {
        conn_info *ci = l->data;
        if (ci->shut || !ci->deadline_ms || now < ci->deadline_ms || ci->fd < 0) continue;
        shutdown(ci->fd, SHUT_RDWR);
        ci->shut = true;
        s->shut_n++;
        LOG_DEBUG(s->lg, "http: closed a connection past its %s deadline", ci->phase == CI_BODY ? "body" : "header");
    }
    pthread_mutex_unlock(&s->conn_mu);
}

/* Ends the streams whose client has gone: a suspended connection is not
 * watched by libmicrohttpd, so without this the slot would be held until
 * the next keepalive write fails. Under stop_mu, so every stream the epoll
 * set reports is still registered (stream_free removes it under stop_mu). */
static void watch_streams(httpd *s) {
    struct epoll_event evs[256];
    pthread_mutex_lock(&s->stop_mu);
    int n = s->stream_ep >= 0 ? epoll_wait(s->stream_ep, evs, 256, 0) : 0;
    for (int i = 0; i < n; i++) {
        http_stream *st = evs[i].data.ptr;
        atomic_store(&st->closing, true);
        pthread_mutex_lock(&st->mu);
        if (st->suspended) { st->suspended = false; MHD_resume_connection(st->conn); }
        pthread_mutex_unlock(&st->mu);
    }
    pthread_mutex_unlock(&s->stop_mu);
}

static void *guard_main(void *data) {
    httpd *s = data;
    GArray *lg = g_array_new(FALSE, FALSE, sizeof(lingerer));
    struct pollfd *pf = NULL;
    size_t pcap = 0;
    char sink[16384];
    while (!atomic_load(&s->guard_stop)) {
        pthread_mutex_lock(&s->linger_mu);
        g_array_append_vals(lg, s->linger_new->data, s->linger_new->len);
        g_array_set_size(s->linger_new, 0);
        pthread_mutex_unlock(&s->linger_mu);
        if (lg->len > pcap) {
            struct pollfd *p2 = realloc(pf, lg->len * sizeof *pf);
            if (p2) { pf = p2; pcap = lg->len; }
        }
        size_t n = lg->len <= pcap ? lg->len : pcap;
        for (size_t i = 0; i < n; i++) pf[i] = (struct pollfd){g_array_index(lg, lingerer, i).fd, POLLIN, 0};
        if (n) {
            (void)poll(pf, n, GUARD_TICK_MS);
        } else {
            struct timespec t = {0, GUARD_TICK_MS * 1000000L};
            nanosleep(&t, NULL);
        }
        int64_t now = zs_clock_ms();
        for (size_t i = n; i-- > 0;) {
            lingerer *l = &g_array_index(lg, lingerer, i);
            bool done = now >= l->until_ms;
            if (!done && pf[i].revents) {
                for (int rounds = 0; rounds < 64; rounds++) { /* discard what came */
                    ssize_t got = recv(l->fd, sink, sizeof sink, MSG_DONTWAIT);
                    if (got > 0) continue;
                    if (got == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) done = true;
                    break;
                }
            }
            if (done) {
                close(l->fd);
                g_array_remove_index_fast(lg, i);
                atomic_fetch_sub(&s->lingering, 1);
            }
        }
        reap(s, now);
        watch_streams(s);
    }
    for (size_t i = 0; i < lg->len; i++) close(g_array_index(lg, lingerer, i).fd);
    g_array_free(lg, TRUE);
    free(pf);
    return NULL;
}

/* ---- flags ---------------------------------------------------------------------- */

static int parse_num(const char *flag, const char *v, unsigned long long min, unsigned long long max,
                     unsigned long long *out) {
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (!*v || *end || errno || v[0] < '0' || v[0] > '9' || x < min || x > max) {
        fprintf(stderr, "zoosyncd: --%s: '%s' is not a number from %llu to %llu\n", flag, v, min, max);
        return -1;
    }
    *out = x;
    return 0;
}

int httpd_limits_parse(httpd_limits *l, const char *flag, const char *value) {
    unsigned long long x;
    if (strcmp(flag, "max-body-inflight") == 0) {
        if (parse_num(flag, value, 65536, (unsigned long long)SIZE_MAX / 2, &x) < 0) return -1;
        l->body_inflight = (size_t)x;
    } else if (strcmp(flag, "header-timeout") == 0) {
        if (parse_num(flag, value, 1, 3600, &x) < 0) return -1;
        l->header_timeout_s = (unsigned)x;
    } else if (strcmp(flag, "body-timeout") == 0) {
        if (parse_num(flag, value, 1, 86400, &x) < 0) return -1;
        l->body_timeout_s = (unsigned)x;
    } else if (strcmp(flag, "max-conns-per-ip") == 0) {
        if (parse_num(flag, value, 0, 1000000, &x) < 0) return -1;
        l->conns_per_ip = (unsigned)x;
    } else if (strcmp(flag, "max-header-bytes") == 0) {
        if (parse_num(flag, value, 4096, 1048576, &x) < 0) return -1;
        l->header_bytes = (size_t)x;
    } else if (strcmp(flag, "fd-reserve") == 0) {
        if (parse_num(flag, value, 16, 100000, &x) < 0) return -1;
        l->fd_reserve = (unsigned)x;
    } else if (strcmp(flag, "max-streams-per-sub") == 0) {
        if (parse_num(flag, value, 0, 10000000, &x) < 0) return -1;
        l->streams_per_sub = (size_t)x;
    } else if (strcmp(flag, "max-streams-per-ip") == 0) {
        if (parse_num(flag, value, 0, 10000000, &x) < 0) return -1;
        l->streams_per_ip = (size_t)x;
    } else if (strcmp(flag, "http-threads") == 0) {
        if (parse_num(flag, value, 1, 64, &x) < 0) return -1;
        l->http_threads = (unsigned)x;
    } else if (strcmp(flag, "http-model") == 0) {
        if (strcmp(value, "connection") == 0) l->model = HTTPD_MODEL_CONNECTION;
        else if (strcmp(value, "pool") == 0) l->model = HTTPD_MODEL_POOL;
        else {
            fprintf(stderr, "zoosyncd: --http-model: '%s': connection or pool\n", value);
            return -1;
        }
    } else if (strcmp(flag, "http-connections") == 0) {
        if (parse_num(flag, value, 64, 100000, &x) < 0) return -1;
        l->http_connections = (unsigned)x;
    } else {
        fprintf(stderr, "zoosyncd: --%s: not an HTTP limit\n", flag);
        return -1;
    }
    return 0;
}

void httpd_limits_usage(FILE *f) {
    fprintf(f, "  --max-body-inflight BYTES request body bytes held at once, all requests (default 134217728; past it 503)\n"
               "  --header-timeout S        a request's headers must arrive within S seconds (default 10)\n"
               "  --body-timeout S          its body within S seconds of the headers (default 60)\n"
               "  --max-header-bytes N      buffer of each connection, for a request's line and headers (past it 431)\n"
               "                            and the bytes being sent (default 11264, 4096 to 1048576); each event\n"
               "                            stream holds one, most of its memory\n"
               "  --max-conns-per-ip N      connections per client address (default 1024; 0 = no limit)\n"
               "  --fd-reserve N            descriptors kept from HTTP connections for ZooKeeper (default 64)\n"
               "  --max-streams-per-sub N   event streams per token subject (default 256; 0 = no limit)\n"
               "  --max-streams-per-ip N    event streams per client address (default 512; 0 = no limit)\n"
               "  --http-model M            connection: each connection has a thread of its own while in libmicrohttpd,\n"
               "                            and its requests run on it (default over plain HTTP; not over HTTPS);\n"
               "                            pool: --http-threads threads share the connections and hand requests to\n"
               "                            the --workers (default over HTTPS)\n"
               "  --http-connections N      model connection: connections (and so threads) in libmicrohttpd at once,\n"
               "                            event streams over plain HTTP not counted (default 4096, 64 to 100000)\n"
               "  --http-threads N          model pool: libmicrohttpd threads accepting and serving connections\n"
               "                            (default 4, 1 to 64); each keeps its own share of the connections (and\n"
               "                            over HTTPS of the event streams)\n");
}

/* Keep the URL and query values percent-encoded: the handler decodes. */
static size_t keep_escaped(void *cls, struct MHD_Connection *c, char *s) {
    (void)cls; (void)c;
    return strlen(s);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void mhd_log(void *cls, const char *fmt, va_list ap) {
    httpd *s = cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n') msg[--n] = '\0';
    /* what libmicrohttpd says of every MHD_NO: for an event stream handed to
     * the loop it is no error (queue() logs a real failure itself) */
    if (strncmp(msg, "Application reported internal error", 35) == 0) return;
    LOG_DEBUG(s->lg, "http: %s", msg);
}

/* The number at the start of a file of /proc or /sys; SIZE_MAX when it
 * cannot be read, or says "max". */
static size_t read_count(const char *path) {
    FILE *f = fopen(path, "re");
    if (!f) return SIZE_MAX;
    unsigned long long v = 0;
    int n = fscanf(f, "%llu", &v);
    fclose(f);
    return n == 1 ? (size_t)v : SIZE_MAX;
}

/* The fewest tasks left to start under the pids controller, in the cgroup
 * dir (under root) and each of its ancestors: pids.max - pids.current. */
static size_t cgroup_room(const char *root, char *dir) {
    size_t b = SIZE_MAX;
    for (;;) {
        char path[PATH_MAX];
        int n = snprintf(path, sizeof path, "%s%s/pids.max", root, dir);
        if (n > 0 && (size_t)n < sizeof path) {
            size_t max = read_count(path);
            snprintf(path, sizeof path, "%s%s/pids.current", root, dir);
            size_t cur = read_count(path);
            if (max != SIZE_MAX) {
                size_t left = cur == SIZE_MAX ? max : cur < max ? max - cur : 0;
                if (left < b) b = left;
            }
        }
        char *slash = strrchr(dir, '/');
        if (!slash || (slash == dir && dir[1] == '\0')) break;
        if (slash == dir) slash[1] = '\0'; /* "/x" -> "/" */
        else *slash = '\0';
    }
    return b;
}

/* About how many more threads this process may start: the lowest of its
 * RLIMIT_NPROC (which counts every thread of the user; root is exempt),
 * what its cgroups' pids controller leaves (v2, or v1's "pids"
 * hierarchy; each ancestor too, as far as this process can see: a limit
 * above its cgroup namespace is invisible), and the kernel's threads-max
 * and pid_max; SIZE_MAX when none can be read. */
static size_t thread_budget(void) {
    size_t b = SIZE_MAX;
    struct rlimit rl;
    if (getuid() != 0 && getrlimit(RLIMIT_NPROC, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && (size_t)rl.rlim_cur < b)
        b = (size_t)rl.rlim_cur;
    size_t k = read_count("/proc/sys/kernel/threads-max");
    if (k < b) b = k;
    k = read_count("/proc/sys/kernel/pid_max");
    if (k < b) b = k;
    FILE *f = fopen("/proc/self/cgroup", "re");
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while (f && (len = getline(&line, &cap, f)) > 0) {
        if (line[len - 1] == '\n') line[--len] = '\0';
        /* "0::/path" (v2) or "N:...pids...:/path" (v1) */
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2 || c2[1] != '/') continue;
        *c1 = *c2 = '\0';
        const char *ctrl = c1 + 1;
        bool v2 = strcmp(line, "0") == 0 && *ctrl == '\0';
        bool v1 = false;
        for (char *save = NULL, *t = strtok_r((char *)ctrl, ",", &save); t; t = strtok_r(NULL, ",", &save))
            if (strcmp(t, "pids") == 0) v1 = true;
        if (!v2 && !v1) continue;
        /* (v2 sits at /sys/fs/cgroup, or at .../unified beside v1's) */
        const char *root = !v2 ? "/sys/fs/cgroup/pids"
                           : access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0 ? "/sys/fs/cgroup"
                                                                                   : "/sys/fs/cgroup/unified";
        k = cgroup_room(root, c2 + 1);
        if (k < b) b = k;
    }
    free(line);
    if (f) fclose(f);
    return b;
}

/* Undoes httpd_start's setup: before the daemon runs, or when it did not
 * start (nothing was handed to the pool). Returns NULL. */
static httpd *start_failed(httpd *s) {
    if (s->guard_started) {
        atomic_store(&s->guard_stop, true);
        pthread_join(s->guard, NULL);
    }
    workq_free(s->pool, false); /* no drain: nothing was queued */
    if (s->slots_ready) sem_destroy(&s->slots);
    if (s->placeholder >= 0) close(s->placeholder);
    pthread_cond_destroy(&s->drained);
    sloop_free(s->loop);
    g_hash_table_destroy(s->streams);
    pthread_mutex_destroy(&s->stop_mu);
    pthread_mutex_destroy(&s->conn_mu);
    pthread_mutex_destroy(&s->linger_mu);
    tls_creds_unref(s->tls);
    pthread_mutex_destroy(&s->tls_mu);
    g_strfreev(s->cors);
    pthread_mutex_destroy(&s->cors_mu);
    g_array_free(s->linger_new, TRUE);
    if (s->stream_ep >= 0) close(s->stream_ep);
    free(s);
    return NULL;
}

/* GnuTLS asks for the server's certificate (libmicrohttpd 0.9.75 sets the
 * session's pointer to its connection when it creates the session, before
 * notifying MHD_CONNECTION_NOTIFY_STARTED; not documented, but kept in later
 * versions, and tls.test.mjs fails if it changes): the pair current when the handshake began,
 * held by the connection until it closes. On the connection's HTTP thread,
 * the only one that touches ci->tls; s->tls is shared (tls_mu). */
static int on_tls_cert(gnutls_session_t session, const gnutls_datum_t *req_ca_dn, int nreqs,
                       const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length, gnutls_pcert_st **chain,
                       unsigned int *n, gnutls_privkey_t *key) {
    (void)req_ca_dn, (void)nreqs, (void)pk_algos, (void)pk_algos_length;
    struct MHD_Connection *c = gnutls_session_get_ptr(session);
    conn_info *ci = c ? conn_of(c) : NULL;
    if (!ci) return -1; /* untracked (out of memory): no certificate, the handshake fails */
    if (!ci->tls) {
        pthread_mutex_lock(&ci->srv->tls_mu);
        ci->tls = tls_creds_ref(ci->srv->tls);
        pthread_mutex_unlock(&ci->srv->tls_mu);
    }
    if (!ci->tls) return -1;
    tls_creds_select(ci->tls, chain, n, key);
    return 0;
}

void httpd_set_cors(httpd *s, const char *const *origins) {
    char **fresh = g_strdupv((char **)origins);
    pthread_mutex_lock(&s->cors_mu);
    char **old = s->cors;
    s->cors = fresh;
    pthread_mutex_unlock(&s->cors_mu);
    g_strfreev(old);
}

void httpd_set_tls(httpd *s, tls_creds *c) {
    assert(c);
    tls_creds_ref(c);
    pthread_mutex_lock(&s->tls_mu);
    tls_creds *old = s->tls;
    s->tls = c;
    pthread_mutex_unlock(&s->tls_mu);
    tls_creds_unref(old);
}

httpd *httpd_start(const httpd_config *cfg, httpd_handler h, void *app, const zs_log *lg) {
    int model = cfg->limits.model != HTTPD_MODEL_AUTO ? cfg->limits.model : cfg->tls ? HTTPD_MODEL_POOL : HTTPD_MODEL_CONNECTION;
    if (model == HTTPD_MODEL_CONNECTION && cfg->tls) {
        LOG_ERROR(lg, "--http-model connection is for plain HTTP only: over HTTPS every event stream would hold a "
                      "thread; use --http-model pool");
        return NULL;
    }
    httpd *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->placeholder = -1;
    s->handler = h;
    s->app = app;
    s->lg = lg;
    s->max_body = cfg->max_body;
    pthread_mutex_init(&s->cors_mu, NULL);
    pthread_cond_init(&s->drained, NULL);
    s->cors = g_strdupv((char **)cfg->cors_origins);
    s->inline_handler = cfg->inline_handler;
    s->loopback_hosts_only = cfg->loopback_hosts_only;
    s->early = cfg->early_handler;
    s->lim = cfg->limits;
    if (!s->lim.body_inflight) s->lim = (httpd_limits)HTTPD_LIMITS_DEFAULT; /* a config without limits */
    /* the sooner of the two closes of an idle connection: ours (the next
     * request's header deadline) and libmicrohttpd's idle timeout */
    snprintf(s->keepalive_hint, sizeof s->keepalive_hint, "timeout=%u",
             s->lim.header_timeout_s < MHD_IDLE_S ? s->lim.header_timeout_s : MHD_IDLE_S);
    /* Connections: the open-file limit minus the reserve and the lingering
     * sockets (at most an eighth of the limit, 1024). */
    struct rlimit rl;
    size_t nofile = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY ? (size_t)rl.rlim_cur : 65536;
    s->linger_max = nofile / 8 < 1024 ? nofile / 8 : 1024;
    size_t used = (size_t)s->lim.fd_reserve + s->linger_max;
    s->conn_cap = nofile > used + 2 * OPS_RESERVE ? nofile - used : 2 * OPS_RESERVE;
    if (s->conn_cap > 65000) s->conn_cap = 65000;
    s->evict_at = s->conn_cap - OPS_RESERVE;
    /* The model (--http-model): a thread per connection over plain HTTP
     * unless told otherwise. Over HTTPS event streams stay in libmicrohttpd
     * (the TLS session is its own): a thread each, for as long as the
     * stream lives, is what the pool model exists to avoid. */
    s->per_conn = model == HTTPD_MODEL_CONNECTION;
    /* libmicrohttpd splits the connection cap evenly between its threads:
     * keep at least 16 for each. (Model connection: one thread accepts.) */
    unsigned threads = s->per_conn ? 1 : s->lim.http_threads ? s->lim.http_threads : 1;
    if (threads > s->conn_cap / 16) threads = s->conn_cap / 16 ? (unsigned)(s->conn_cap / 16) : 1;
    s->lim.http_threads = threads;
    /* Plain HTTP: event streams leave libmicrohttpd's count, so past the cap
     * libmicrohttpd still accepts, and on_connection shuts each new
     * connection at once. Each HTTP thread accepts at most 10 connections
     * per pass (libmicrohttpd 0.9.75, MHD_epoll): keep room for them, so
     * that connections, streams and refused sockets never take the
     * descriptors kept for ZooKeeper. */
    if (!cfg->tls) {
        size_t room = (size_t)threads * REFUSED_PER_PASS;
        s->conn_cap = s->conn_cap > 2 * room + 2 * OPS_RESERVE ? s->conn_cap - room : s->conn_cap / 2 + 1;
        s->evict_at = s->conn_cap > OPS_RESERVE ? s->conn_cap - OPS_RESERVE : 1;
    }
    pthread_mutex_init(&s->conn_mu, NULL);
    pthread_mutex_init(&s->linger_mu, NULL);
    pthread_mutex_init(&s->tls_mu, NULL);
    g_queue_init(&s->waiting);
    g_queue_init(&s->busy);
    s->stream_ep = epoll_create1(EPOLL_CLOEXEC);
    s->linger_new = g_array_new(FALSE, FALSE, sizeof(lingerer));
    snprintf(s->listen_host, sizeof s->listen_host, "%s", cfg->listen_host);
    s->port = cfg->listen_port; /* before the HTTP threads start (the Host check reads it); 0: set below */
    pthread_mutex_init(&s->stop_mu, NULL);
    s->streams = g_hash_table_new(g_direct_hash, g_direct_equal);
    int err = 0;
    if (s->per_conn) {
        /* every connection in libmicrohttpd is a thread: at most
         * --http-connections of them, at most half of what the system lets
         * this process start, and the descriptors' cap holds too */
        s->thread_cap = s->lim.http_connections < s->conn_cap ? s->lim.http_connections : s->conn_cap;
        size_t budget = thread_budget();
        if (budget / 2 < s->thread_cap) {
            size_t was = s->thread_cap;
            s->thread_cap = budget / 2 > 2 * OPS_RESERVE ? budget / 2 : 2 * OPS_RESERVE + 1;
            LOG_WARN(lg, "http: at most %zu connections at once (not %zu): this process may start about %zu more threads "
                         "(the lowest of RLIMIT_NPROC, what its cgroups' pids.max leave, kernel.threads-max and kernel.pid_max)",
                     s->thread_cap, was, budget);
        }
        if (s->thread_cap <= 2 * OPS_RESERVE) s->thread_cap = 2 * OPS_RESERVE + 1;
        s->slots_ready = sem_init(&s->slots, 0, cfg->workers > 0 ? (unsigned)cfg->workers : 1) == 0;
        if (!s->slots_ready) {
            LOG_ERROR(lg, "cannot set up the request slots: %s", strerror(errno));
            return start_failed(s);
        }
        s->placeholder = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s->placeholder < 0) {
            LOG_ERROR(lg, "cannot open the streams' placeholder socket: %s", strerror(errno));
            return start_failed(s);
        }
    } else {
        s->pool = workq_new(cfg->workers > 0 ? (unsigned)cfg->workers : 1, "zs-worker", run_job, s, &err);
        if (!s->pool) {
            LOG_ERROR(lg, "cannot start the %d request workers: %s", cfg->workers, strerror(err));
            return start_failed(s);
        }
    }
    /* The guard before the daemon: it has nothing to watch until then, and
     * a failure here has no connection to undo. */
    err = pthread_create(&s->guard, NULL, guard_main, s);
    if (err != 0) {
        LOG_ERROR(lg, "cannot start the HTTP guard thread: %s", strerror(err));
        return start_failed(s);
    }
    s->guard_started = true;
    (void)pthread_setname_np(s->guard, "zs-http-guard");
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    /* Model connection: poll, not select, in each connection's thread (a
     * descriptor past FD_SETSIZE must work); suspending stays allowed for
     * an event stream that could not leave (stream_detach). */
    unsigned flags = (s->per_conn ? MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL_INTERNAL_THREAD : MHD_USE_EPOLL_INTERNAL_THREAD) |
                     MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    /* Plain HTTP: event streams leave libmicrohttpd for the gateway's own
     * loop (stream_detach). MHD_USE_TURBO is what lets the socket survive
     * libmicrohttpd's close: without it the library shuts it for writing
     * first. (Its other effect, trying a read or write before epoll says
     * ready, is harmless; a lingering close shuts the socket itself.) */
    if (!cfg->tls) {
        s->loop = sloop_new(STREAM_STALL_MS, cfg->metrics, lg);
        if (!s->loop) return start_failed(s);
        flags |= MHD_USE_TURBO;
    }
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, cfg->listen_host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons(cfg->listen_port);
    } else if (inet_pton(AF_INET6, cfg->listen_host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(cfg->listen_port);
        flags |= MHD_USE_IPv6;
    } else {
        LOG_ERROR(lg, "--listen: '%s' is not a numeric IP address", cfg->listen_host);
        return start_failed(s);
    }
    /* TLS 1.2 and 1.3 only, GnuTLS's NORMAL suites otherwise. The pair is
     * picked per handshake (on_tls_cert), so httpd_set_tls can replace it. */
    struct MHD_OptionItem tls_opts[3] = {{MHD_OPTION_END, 0, NULL}};
    if (cfg->tls) {
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES ||
            MHD_is_feature_supported(MHD_FEATURE_HTTPS_CERT_CALLBACK) != MHD_YES) {
            LOG_ERROR(lg, "this libmicrohttpd was built without TLS or its certificate callback");
            return start_failed(s);
        }
        flags |= MHD_USE_TLS;
        s->tls = tls_creds_ref(cfg->tls);
        tls_opts[0] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_CERT_CALLBACK, 0, (void *)on_tls_cert};
        tls_opts[1] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0,
                                              (void *)"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"};
        tls_opts[2] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    }
    /* Several HTTP threads (worker daemons, each with its own epoll set and
     * its own list of suspended connections); 1 is libmicrohttpd's single
     * internal thread. */
    struct MHD_OptionItem pool_opts[2] = {{MHD_OPTION_END, 0, NULL}, {MHD_OPTION_END, 0, NULL}};
    if (threads > 1) pool_opts[0] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, (intptr_t)threads, NULL};
    s->d = MHD_start_daemon(flags, cfg->listen_port, NULL, NULL, on_request, s,
                            MHD_OPTION_ARRAY, tls_opts,
                            MHD_OPTION_ARRAY, pool_opts,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                            MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
                            MHD_OPTION_PER_IP_CONNECTION_LIMIT, s->lim.conns_per_ip,
                            MHD_OPTION_UNESCAPE_CALLBACK, keep_escaped, s,
                            MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
                            /* (model connection: on_connection refuses past
                             * thread_cap; libmicrohttpd stops a little past it) */
                            MHD_OPTION_CONNECTION_LIMIT,
                            (unsigned)(s->per_conn && s->thread_cap + OPS_RESERVE < s->conn_cap ? s->thread_cap + OPS_RESERVE
                                                                                              : s->conn_cap),
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)MHD_IDLE_S,
                            MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024,
                            /* per-connection pool: the request head and the
                             * send buffer (--max-header-bytes). Every idle
                             * event stream holds all of it: it is most of a
                             * stream's memory (docs/PERFORMANCE.md, B5) */
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, s->lim.header_bytes,
                            MHD_OPTION_END);
    if (!s->d) {
        LOG_ERROR(lg, "cannot listen on %s:%u", cfg->listen_host, (unsigned)cfg->listen_port);
        return start_failed(s);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : cfg->listen_port;
    if (s->per_conn)
        LOG_DEBUG(lg, "http: a thread per connection, at most %zu in libmicrohttpd and %zu with event streams (%u per address), "
                      "%d requests at once, %zu lingering",
                  s->thread_cap, s->conn_cap, s->lim.conns_per_ip, cfg->workers, s->linger_max);
    else
        LOG_DEBUG(lg, "http: %u threads, at most %zu connections (%u per address), %zu lingering", threads, s->conn_cap,
                  s->lim.conns_per_ip, s->linger_max);
    return s;
}

uint16_t httpd_port(const httpd *s) { return s->port; }

void httpd_stop(httpd *s, int grace_ms) {
    if (!s) return;
    MHD_socket lsock = MHD_quiesce_daemon(s->d);
    /* Finish the requests already handed to workers; their responses are
     * sent by the HTTP threads, which keep running meanwhile. (With a pool,
     * MHD_quiesce_daemon takes the listening socket out of every HTTP
     * thread's epoll set. In 0.9.75 it aborts if a thread takes it out at
     * the same instant because it reached its share of the connection cap:
     * a race of two epoll_ctl calls, at shutdown, at the cap only.) */
    pthread_mutex_lock(&s->stop_mu);
    s->stopping = true;
    GList *open = g_hash_table_get_keys(s->streams);
    for (GList *l = open; l; l = l->next) { /* end every stream: clients reconnect elsewhere */
        http_stream *st = l->data;
        atomic_store(&st->closing, true);
        if (st->ls) { sloop_wake(st->ls); continue; }
        pthread_mutex_lock(&st->mu);
        if (st->suspended) { st->suspended = false; MHD_resume_connection(st->conn); }
        pthread_mutex_unlock(&st->mu);
    }
    g_list_free(open);
    /* model connection: every request admitted before "stopping" is
     * answered first (queued to its connection; the grace below lets it go
     * out), as the pool's drain below does for the workers */
    while (atomic_load(&s->admitted) > 0) pthread_cond_wait(&s->drained, &s->stop_mu);
    pthread_mutex_unlock(&s->stop_mu);
    workq_free(s->pool, true); /* drain: every request handed over runs, and resumes its connection */
    struct timespec step = {0, 20 * 1000000L};
    for (int waited = 0; waited < grace_ms; waited += 20) {
        const union MHD_DaemonInfo *i = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
        if (!i || i->num_connections == 0) break;
        nanosleep(&step, NULL);
    }
    atomic_store(&s->guard_stop, true);
    pthread_join(s->guard, NULL);
    MHD_stop_daemon(s->d);
    if (s->slots_ready) sem_destroy(&s->slots);
    if (s->placeholder >= 0) close(s->placeholder);
    pthread_cond_destroy(&s->drained);
    sloop_free(s->loop); /* ends the loop's streams that are left (each was told to close above) */
    if (lsock != MHD_INVALID_SOCKET) close(lsock);
    for (guint i = 0; i < s->linger_new->len; i++) close(g_array_index(s->linger_new, lingerer, i).fd);
    g_array_free(s->linger_new, TRUE);
    g_hash_table_destroy(s->streams);
    pthread_mutex_destroy(&s->stop_mu);
    pthread_mutex_destroy(&s->conn_mu);
    pthread_mutex_destroy(&s->linger_mu);
    tls_creds_unref(s->tls);
    pthread_mutex_destroy(&s->tls_mu);
    g_strfreev(s->cors);
    pthread_mutex_destroy(&s->cors_mu);
    if (s->stream_ep >= 0) close(s->stream_ep);
    free(s);
}

#include "zk/zkw.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zookeeper/zookeeper.h> /* error codes only */

#include "util/clock.h"
#include "util/err.h"

enum {
    CONNECT_STEP_MS = 3000,  /* one host's TCP connect + handshake */
    BACKOFF_MIN_MS = 50,
    BACKOFF_MAX_MS = 1000,
    CLOSE_WAIT_MS = 1000,    /* how long close waits for closeSession's reply */
};
/* The largest frame of a handshake or a probe (no data is read there). */
#define SMALL_FRAME (1024u * 1024u)

typedef struct pending {
    int32_t xid;
    zkw_reply_fn fn;
    void *ctx;
} pending;

typedef struct pwatch {
    int mode;
    char path[];
} pwatch;

typedef struct host {
    char *name;
    char *port;
} host;

struct zkw {
    host *hosts;
    size_t nhosts, next_host;
    int timeout_req;
    char *cred;                /* digest "user:password", or NULL */
    const zs_log *lg;
    zkw_callbacks cb;
    pthread_t thr;
    int wake[2];

    pthread_mutex_t mu;        /* guards the fields down to `st` */
    bool connected, stopping;
    sbuf out;
    size_t out_off;
    GQueue pending;            /* pending*, in submission order */
    int32_t xid;
    GPtrArray *watches;        /* pwatch*: re-registered at every connect, in the order added */
    GHashTable *watch_keys;    /* "<mode>:<path>" of every watch (owned): no duplicates */
    zkw_stats st;

    _Atomic int64_t last_zxid;
    atomic_bool reset_wanted;  /* zkw_reconnect: drop the connection */

    /* I/O thread only */
    int fd;
    int64_t session_id;
    char passwd[16];
    int timeout_neg;
    char *in;
    size_t in_len, in_cap;
    int64_t last_recv_ms, last_send_ms;
    int64_t connected_ms;      /* when the current/last connection was made */
};

/* ---- sockets ------------------------------------------------------------ */

static int parse_hosts(const char *spec, host **out, size_t *n, char *why, size_t whylen) {
    *out = NULL;
    *n = 0;
    if (!spec || !*spec) { zs_errf(why, whylen, "no ZooKeeper hosts"); return -1; }
    if (strchr(spec, '/')) { zs_errf(why, whylen, "a chroot in the ZooKeeper connect string is not supported (use --root)"); return -1; }
    char *copy = strdup(spec);
    if (!copy) { zs_errf(why, whylen, "out of memory"); return -1; }
    size_t cap = 1;
    for (const char *c = spec; *c; c++) cap += *c == ',';
    host *h = calloc(cap, sizeof *h);
    if (!h) { free(copy); zs_errf(why, whylen, "out of memory"); return -1; }
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *name = tok, *port = NULL;
        if (*tok == '[') { /* [v6]:port */
            char *close = strchr(tok, ']');
            if (!close) continue;
            *close = 0;
            name = tok + 1;
            if (close[1] == ':') port = close + 2;
        } else {
            char *colon = strrchr(tok, ':');
            if (colon) { *colon = 0; port = colon + 1; }
        }
        if (!*name) continue;
        h[*n].name = strdup(name);
        h[*n].port = strdup(port && *port ? port : "2181");
        if (!h[*n].name || !h[*n].port) { free(h[*n].name); free(h[*n].port); break; }
        (*n)++;
    }
    free(copy);
    if (*n == 0) { free(h); zs_errf(why, whylen, "no usable ZooKeeper host"); return -1; }
    *out = h;
    return 0;
}

/* A deadline for the blocking helpers, and a flag that cancels them. */
typedef struct dl {
    int64_t at;
    const atomic_bool *cancel; /* may be NULL */
} dl;

static void hosts_free(host *h, size_t n) {
    for (size_t i = 0; i < n; i++) { free(h[i].name); free(h[i].port); }
    free(h);
}

static int wait_fd(int fd, short ev, const dl *d) {
    for (;;) {
        if (d->cancel && atomic_load(d->cancel)) return -1;
        int64_t left = d->at - zs_clock_ms();
        if (left <= 0) return -1;
        struct pollfd p = {fd, ev, 0};
        int r = poll(&p, 1, left > 200 ? 200 : (int)left);
        if (r > 0) return 0;
        if (r < 0 && errno != EINTR) return -1;
    }
}

/* Non-blocking TCP connection to one host, within deadline. */
static int tcp_connect(const host *h, const dl *deadline) {
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(h->name, h->port, &hints, &ai) != 0) return -1;
    int fd = -1;
    for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) continue;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
        int err = 0;
        socklen_t el = sizeof err;
        if (errno != EINPROGRESS || wait_fd(fd, POLLOUT, deadline) < 0 ||
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0 || err != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(ai);
    return fd;
}

static int write_all(int fd, const char *p, size_t n, const dl *deadline) {
    while (n) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k > 0) { p += k; n -= (size_t)k; continue; }
        if (k < 0 && errno == EINTR) continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && wait_fd(fd, POLLOUT, deadline) == 0) continue;
        return -1;
    }
    return 0;
}

/* A frame read whole by the blocking helpers; the caller frees p. */
typedef struct frame {
    char *p;
    size_t len, cap;
} frame;

static int recv_exact(int fd, char *dst, size_t n, const dl *deadline) {
    while (n) {
        ssize_t k = recv(fd, dst, n, 0);
        if (k == 0) return -1;
        if (k < 0) {
            if (errno == EINTR) continue;
            if ((errno == EAGAIN || errno == EWOULDBLOCK) && wait_fd(fd, POLLIN, deadline) == 0) continue;
            return -1;
        }
        dst += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Reads one whole frame's body (at most max bytes) into *f, within deadline. */
static int read_frame(int fd, frame *f, uint32_t max, const dl *deadline) {
    unsigned char lb[4];
    if (recv_exact(fd, (char *)lb, 4, deadline) < 0) return -1;
    uint32_t n = ((uint32_t)lb[0] << 24) | ((uint32_t)lb[1] << 16) | ((uint32_t)lb[2] << 8) | lb[3];
    if (n > max) return -1;
    if (f->cap < n) {
        char *p = realloc(f->p, n);
        if (!p) return -1;
        f->p = p;
        f->cap = n;
    }
    f->len = n;
    return recv_exact(fd, f->p, n, deadline);
}

/* Opens a connection and a session (resumed when session_id != 0).
 * Returns the socket, or -1; *expired when the server said the session is
 * gone. */
static int handshake(const host *h, int timeout_req, int64_t last_zxid, int64_t session_id, const char passwd[16],
                     const atomic_bool *cancel, jute_connect_response *resp, bool *expired) {
    *expired = false;
    dl dd = {zs_clock_ms() + CONNECT_STEP_MS, cancel}, *deadline = &dd;
    int fd = tcp_connect(h, deadline);
    if (fd < 0) return -1;
    sbuf b = SBUF_INIT;
    frame in = {0};
    jute_connect_request(&b, last_zxid, timeout_req, session_id, passwd);
    int ok = !sbuf_failed(&b) && write_all(fd, b.buf, b.len, deadline) == 0 && read_frame(fd, &in, SMALL_FRAME, deadline) == 0 &&
             jute_parse_connect_response(in.p, in.len, resp) == 0;
    sbuf_free(&b);
    free(in.p);
    if (!ok) { close(fd); return -1; }
    if (resp->timeout_ms <= 0) { *expired = true; close(fd); return -1; }
    return fd;
}

/* ---- the session's I/O thread --------------------------------------------- */

static void wake(zkw *w) {
    char c = 1;
    ssize_t r = write(w->wake[1], &c, 1);
    (void)r; /* a full pipe already wakes the thread */
}

/* Appends one frame to the output (caller holds mu). */
static void queue_frame(zkw *w, int32_t xid, int32_t type, const void *body, size_t len) {
    size_t f = jute_frame_begin(&w->out);
    jute_request_header(&w->out, xid, type);
    if (len) sbuf_append(&w->out, body, len);
    jute_frame_end(&w->out, f);
}

static void lost(zkw *w, const char *why) {
    if (w->fd >= 0) close(w->fd);
    w->fd = -1;
    w->in_len = 0;
    pthread_mutex_lock(&w->mu);
    bool was = w->connected;
    w->connected = false;
    GQueue q = w->pending;
    g_queue_init(&w->pending);
    sbuf_free(&w->out); /* also clears a latched allocation failure */
    w->out_off = 0;
    if (was) w->st.disconnects++;
    bool stopping = w->stopping;
    pthread_mutex_unlock(&w->mu);
    if (was) LOG_WARN(w->lg, "mirror session 0x%llx: connection lost (%s)", (unsigned long long)w->session_id, why);
    pending *p;
    while ((p = g_queue_pop_head(&q))) {
        p->fn(p->ctx, ZCONNECTIONLOSS, 0, NULL);
        free(p);
    }
    if (was && !stopping && w->cb.on_state) w->cb.on_state(w->cb.ctx, ZKW_DISCONNECTED, false);
}

static bool stopping(zkw *w) {
    pthread_mutex_lock(&w->mu);
    bool s = w->stopping;
    pthread_mutex_unlock(&w->mu);
    return s;
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Appends to w->out the SetWatches2 packets that re-register every
 * persistent watch, each with at most ZKW_SET_WATCHES_MAX bytes of paths
 * (one per about 2,000 stores: jute.maxbuffer, 1 MiB by default, is never
 * approached, whatever the number of watches). Caller holds mu. */
static void put_watches(zkw *w) {
    guint n = w->watches->len;
    if (n == 0) return;
    const char **pers = calloc(n, sizeof *pers), **rec = calloc(n, sizeof *rec);
    if (!pers || !rec) w->out.failed = true;
    jute_str_list none = {NULL, 0};
    for (guint i = 0; pers && rec && i < n;) {
        size_t np = 0, nr = 0, bytes = 0;
        for (; i < n; i++) {
            const pwatch *pw = g_ptr_array_index(w->watches, i);
            size_t add = strlen(pw->path) + 4; /* as jute writes it: length, then bytes */
            if (bytes > 0 && bytes + add > ZKW_SET_WATCHES_MAX) break;
            bytes += add;
            if (pw->mode == JUTE_WATCH_PERSISTENT_RECURSIVE) rec[nr++] = pw->path;
            else pers[np++] = pw->path;
        }
        assert(np + nr > 0);
        jute_set_watches2(&w->out, atomic_load(&w->last_zxid), none, none, none, (jute_str_list){pers, np},
                          (jute_str_list){rec, nr});
        w->st.set_watches++;
    }
    free(pers);
    free(rec);
}

/* Connects (resuming the session when it can), re-registers the persistent
 * watches first, and reports the new state. Returns false when stopping. */
static bool do_connect(zkw *w) {
    int backoff = BACKOFF_MIN_MS;
    /* A connection that lasted under a second (the server closes at once,
     * or refused what it was sent): not a tight loop against it. */
    if (w->connected_ms && zs_clock_ms() - w->connected_ms < 1000) sleep_ms(BACKOFF_MAX_MS / 2);
    for (;;) {
        if (stopping(w)) return false;
        const host *h = &w->hosts[w->next_host++ % w->nhosts];
        jute_connect_response r;
        bool expired;
        int fd = handshake(h, w->timeout_req, atomic_load(&w->last_zxid), w->session_id, w->passwd, NULL, &r, &expired);
        if (fd < 0 && expired) {
            LOG_WARN(w->lg, "mirror session 0x%llx expired; opening a new one", (unsigned long long)w->session_id);
            pthread_mutex_lock(&w->mu);
            w->st.expirations++;
            pthread_mutex_unlock(&w->mu);
            w->session_id = 0;
            memset(w->passwd, 0, sizeof w->passwd);
            w->next_host--; /* the same host, for a new session */
            continue;
        }
        if (fd < 0) {
            sleep_ms(backoff);
            backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
            continue;
        }
        bool fresh = r.session_id != w->session_id;
        w->fd = fd;
        w->session_id = r.session_id;
        memcpy(w->passwd, r.passwd, 16);
        w->timeout_neg = r.timeout_ms;
        w->last_recv_ms = w->last_send_ms = w->connected_ms = zs_clock_ms();
        atomic_store(&w->reset_wanted, false);
        pthread_mutex_lock(&w->mu);
        assert(w->out.len == 0 && g_queue_is_empty(&w->pending));
        if (w->cred) jute_auth(&w->out, "digest", w->cred); /* first: what follows may need it */
        put_watches(w);
        bool failed = sbuf_failed(&w->out);
        w->connected = !failed;
        w->st.connects++;
        pthread_mutex_unlock(&w->mu);
        if (failed) { lost(w, "out of memory"); continue; }
        LOG_INFO(w->lg, "mirror session 0x%llx %s on %s:%s (timeout %d ms)", (unsigned long long)w->session_id,
                 fresh ? "established" : "resumed", h->name, h->port, w->timeout_neg);
        if (w->cb.on_state) w->cb.on_state(w->cb.ctx, ZKW_CONNECTED, fresh);
        return true;
    }
}

static void note_zxid(zkw *w, int64_t z) {
    int64_t cur = atomic_load(&w->last_zxid);
    while (z > cur && !atomic_compare_exchange_weak(&w->last_zxid, &cur, z)) {}
}

/* Handles one frame. Returns 0, or -1 when the connection must go. */
/* Parses a frame's reply header; for a notification, also its event.
 * Returns 1 (a notification, *ev set), 0 (a reply, in positioned on its
 * body) or -1 (malformed). */
static int frame_open(const char *p, size_t n, jute_in *in, jute_reply_header *h, jute_event *ev) {
    jute_in_init(in, p, n);
    jute_get_reply_header(in, h);
    if (in->bad) return -1;
    if (h->xid != JUTE_XID_NOTIFICATION) return 0;
    return jute_parse_event(in, ev) < 0 ? -1 : 1;
}

static int handle_frame(zkw *w, const char *p, size_t n) {
    jute_in in;
    jute_reply_header h;
    jute_event ev;
    int kind = frame_open(p, n, &in, &h, &ev);
    if (kind < 0) return -1;
    if (kind == 1) {
        pthread_mutex_lock(&w->mu);
        w->st.events++;
        pthread_mutex_unlock(&w->mu);
        if (w->cb.on_event) w->cb.on_event(w->cb.ctx, ev.type, ev.path.p, (size_t)ev.path.len);
        return 0;
    }
    if (h.zxid > 0) note_zxid(w, h.zxid);
    if (h.xid == JUTE_XID_PING) return 0;
    if (h.xid == JUTE_XID_SET_WATCHES) {
        if (h.err != ZOK) { LOG_ERROR(w->lg, "mirror session: SetWatches2 refused: %s", zerror(h.err)); return -1; }
        return 0;
    }
    if (h.xid == JUTE_XID_AUTH) {
        if (h.err != ZOK) LOG_ERROR(w->lg, "mirror session: authentication refused: %s", zerror(h.err));
        return h.err == ZOK ? 0 : -1;
    }
    pthread_mutex_lock(&w->mu);
    pending *q = g_queue_peek_head(&w->pending);
    if (q && q->xid == h.xid) g_queue_pop_head(&w->pending);
    pthread_mutex_unlock(&w->mu);
    if (!q || q->xid != h.xid) {
        LOG_ERROR(w->lg, "mirror session: reply xid %d out of order (expected %d)", (int)h.xid, q ? (int)q->xid : 0);
        return -1;
    }
    q->fn(q->ctx, h.err, h.zxid, h.err == ZOK ? &in : NULL);
    free(q);
    return 0;
}

/* Reads what the socket has and handles every whole frame. */
static int read_some(zkw *w) {
    for (;;) {
        if (w->in_cap - w->in_len < 65536) {
            size_t cap = w->in_cap ? w->in_cap * 2 : 262144;
            char *n = realloc(w->in, cap);
            if (!n) return -1;
            w->in = n;
            w->in_cap = cap;
        }
        ssize_t k = recv(w->fd, w->in + w->in_len, w->in_cap - w->in_len, 0);
        if (k == 0) return -1;
        if (k < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            return -1;
        }
        w->in_len += (size_t)k;
        w->last_recv_ms = zs_clock_ms();
        size_t off = 0;
        while (w->in_len - off >= 4) {
            const unsigned char *c = (const unsigned char *)w->in + off;
            uint32_t n = ((uint32_t)c[0] << 24) | ((uint32_t)c[1] << 16) | ((uint32_t)c[2] << 8) | c[3];
            if (n > JUTE_MAX_FRAME || n < 16) return -1;
            if (w->in_len - off - 4 < n) {
                if (w->in_cap < (size_t)n + 4) { /* room for the whole frame */
                    char *nb = realloc(w->in, (size_t)n + 4 + 65536);
                    if (!nb) return -1;
                    w->in = nb;
                    w->in_cap = (size_t)n + 4 + 65536;
                }
                break;
            }
            pthread_mutex_lock(&w->mu);
            w->st.frames_in++;
            pthread_mutex_unlock(&w->mu);
            if (handle_frame(w, w->in + off + 4, n) < 0 || atomic_load(&w->reset_wanted)) return -1;
            off += 4 + (size_t)n;
        }
        memmove(w->in, w->in + off, w->in_len - off);
        w->in_len -= off;
        if ((size_t)k < 65536) break; /* drained for now */
    }
    if (w->in_cap > 4u * 1024 * 1024 && w->in_len < 65536) { /* give back a large buffer */
        char *n = realloc(w->in, 262144);
        if (n) { w->in = n; w->in_cap = 262144; }
    }
    return 0;
}

/* Writes what can be written now. Caller holds mu. */
static int flush_locked(zkw *w) {
    while (w->out_off < w->out.len) {
        ssize_t k = send(w->fd, w->out.buf + w->out_off, w->out.len - w->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k > 0) { w->out_off += (size_t)k; w->last_send_ms = zs_clock_ms(); continue; }
        if (k < 0 && errno == EINTR) continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        return -1;
    }
    if (w->out_off == w->out.len) {
        w->out_off = 0;
        sbuf_reset(&w->out);
        if (w->out.cap > 4u * 1024 * 1024) sbuf_free(&w->out);
    }
    return 0;
}

static void close_session(zkw *w) {
    pthread_mutex_lock(&w->mu);
    bool c = w->connected;
    pthread_mutex_unlock(&w->mu);
    if (!c || w->fd < 0) return;
    sbuf b = SBUF_INIT;
    size_t f = jute_frame_begin(&b);
    jute_request_header(&b, 0x7ffffff0, JUTE_OP_CLOSE);
    jute_frame_end(&b, f);
    dl dd = {zs_clock_ms() + CLOSE_WAIT_MS, NULL}, *deadline = &dd;
    pthread_mutex_lock(&w->mu);
    /* what was queued goes first; output lost (out of memory) would send
     * a garbled frame: no close then, the session times out */
    int wr = sbuf_failed(&w->out) ? -1 : flush_locked(w);
    if (w->out_off != w->out.len) wr = -1; /* a frame half sent: a close now would garble it */
    pthread_mutex_unlock(&w->mu);
    if (wr == 0 && !sbuf_failed(&b) && write_all(w->fd, b.buf, b.len, deadline) == 0) {
        frame in = {0};
        while (read_frame(w->fd, &in, JUTE_MAX_FRAME, deadline) == 0) {
            jute_in r;
            jute_in_init(&r, in.p, in.len);
            if (jute_get_int(&r) == 0x7ffffff0) break;
        }
        free(in.p);
    }
    sbuf_free(&b);
}

static void *io_main(void *arg) {
    zkw *w = arg;
    while (!stopping(w)) {
        if (w->fd < 0 && !do_connect(w)) break;
        int64_t now = zs_clock_ms();
        int ping_every = w->timeout_neg / 3 > 0 ? w->timeout_neg / 3 : 1000;
        int read_limit = w->timeout_neg * 2 / 3 > 0 ? w->timeout_neg * 2 / 3 : 2000;
        if (now - w->last_recv_ms > read_limit) { lost(w, "no answer within two thirds of the session timeout"); continue; }
        pthread_mutex_lock(&w->mu);
        if (now - w->last_send_ms >= ping_every && w->out_off == w->out.len) {
            queue_frame(w, JUTE_XID_PING, JUTE_OP_PING, NULL, 0);
            w->last_send_ms = now;
        }
        int fr = sbuf_failed(&w->out) ? -1 : flush_locked(w);
        bool want_out = w->out_off < w->out.len;
        pthread_mutex_unlock(&w->mu);
        if (fr < 0) { lost(w, "write failed"); continue; }
        int64_t until_ping = ping_every - (now - w->last_send_ms);
        int64_t until_dead = read_limit - (now - w->last_recv_ms);
        int64_t t = until_ping < until_dead ? until_ping : until_dead;
        struct pollfd p[2] = {{w->fd, (short)(POLLIN | (want_out ? POLLOUT : 0)), 0}, {w->wake[0], POLLIN, 0}};
        int r = poll(p, 2, t < 1 ? 1 : (int)t);
        if (r < 0 && errno != EINTR) { lost(w, "poll failed"); continue; }
        if (atomic_load(&w->reset_wanted)) { lost(w, "asked to reconnect"); continue; }
        if (p[1].revents & POLLIN) {
            char buf[256];
            while (read(w->wake[0], buf, sizeof buf) > 0) {}
        }
        if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            if (read_some(w) < 0) { lost(w, "connection closed or a bad frame"); continue; }
        }
    }
    close_session(w);
    lost(w, "closing");
    return NULL;
}

/* ---- API ------------------------------------------------------------------ */

/* Frees what zkw_open allocated (the thread is not running). */
static void zkw_free_parts(zkw *w) {
    sbuf_free(&w->out);
    free(w->in);
    free(w->cred);
    g_ptr_array_free(w->watches, TRUE);
    g_hash_table_destroy(w->watch_keys);
    hosts_free(w->hosts, w->nhosts);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

zkw *zkw_open(const char *hosts, int session_timeout_ms, const char *cred, const zkw_callbacks *cb, const zs_log *lg,
              char *why, size_t whylen) {
    zkw *w = calloc(1, sizeof *w);
    if (!w) { zs_errf(why, whylen, "out of memory"); return NULL; }
    if (parse_hosts(hosts, &w->hosts, &w->nhosts, why, whylen) < 0) { free(w); return NULL; }
    if (cred && !(w->cred = strdup(cred))) {
        hosts_free(w->hosts, w->nhosts);
        free(w);
        zs_errf(why, whylen, "out of memory");
        return NULL;
    }
    w->timeout_req = session_timeout_ms;
    w->timeout_neg = session_timeout_ms;
    w->lg = lg;
    if (cb) w->cb = *cb;
    w->fd = -1;
    w->xid = 1;
    w->watches = g_ptr_array_new_with_free_func(free);
    w->watch_keys = g_hash_table_new_full(g_str_hash, g_str_equal, free, NULL);
    g_queue_init(&w->pending);
    pthread_mutex_init(&w->mu, NULL);
    w->wake[0] = w->wake[1] = -1;
    if (pipe2(w->wake, O_NONBLOCK | O_CLOEXEC) < 0 || pthread_create(&w->thr, NULL, io_main, w) != 0) {
        zs_errf(why, whylen, "cannot start the mirror session's thread");
        if (w->wake[0] >= 0) { close(w->wake[0]); close(w->wake[1]); }
        zkw_free_parts(w);
        return NULL;
    }
    return w;
}

void zkw_close(zkw *w) {
    if (!w) return;
    pthread_mutex_lock(&w->mu);
    w->stopping = true;
    pthread_mutex_unlock(&w->mu);
    wake(w);
    pthread_join(w->thr, NULL);
    close(w->wake[0]);
    close(w->wake[1]);
    zkw_free_parts(w);
}

/* Queues a request with p (allocated by the caller). Caller holds mu.
 * Returns 0 (p is pending: fn will be called once; *wake_io says whether
 * the I/O thread must be woken), or -1 when not connected or when the
 * output was lost (then the connection goes: its I/O thread sees the
 * failure at the next flush); p is not taken then. */
static int submit_locked(zkw *w, pending *p, int32_t type, const void *body, size_t len, zkw_reply_fn fn, void *ctx,
                         bool *wake_io) {
    if (!w->connected || w->stopping) return -1;
    *wake_io = w->out_off == w->out.len;
    p->xid = w->xid;
    w->xid = w->xid >= 0x7fff0000 ? 1 : w->xid + 1;
    p->fn = fn;
    p->ctx = ctx;
    queue_frame(w, p->xid, type, body, len);
    if (sbuf_failed(&w->out)) {
        *wake_io = true; /* to drop the connection now */
        return -1;
    }
    g_queue_push_tail(&w->pending, p);
    return 0;
}

int zkw_submit(zkw *w, int32_t type, const void *body, size_t len, zkw_reply_fn fn, void *ctx) {
    assert(fn);
    pending *p = malloc(sizeof *p);
    if (!p) return -1;
    bool wake_io = false;
    pthread_mutex_lock(&w->mu);
    int rc = submit_locked(w, p, type, body, len, fn, ctx, &wake_io);
    pthread_mutex_unlock(&w->mu);
    if (rc < 0) free(p);
    if (wake_io) wake(w);
    return rc;
}

/* A watch's key in watch_keys (malloc'd), or NULL out of memory: the one
 * spelling that adding and removing share. */
static char *watch_key(const char *path, int mode) {
    char *key = NULL;
    return asprintf(&key, "%d:%s", mode, path) < 0 ? NULL : key;
}

int zkw_add_watch(zkw *w, const char *path, int mode, zkw_reply_fn fn, void *ctx) {
    assert(fn);
    size_t n = strlen(path);
    pwatch *pw = malloc(sizeof *pw + n + 1);
    pending *p = malloc(sizeof *p);
    char *key = watch_key(path, mode);
    sbuf b = SBUF_INIT;
    jute_put_string(&b, path);
    jute_put_int(&b, mode);
    if (!pw || !p || !key || sbuf_failed(&b)) {
        free(pw);
        free(p);
        free(key);
        sbuf_free(&b);
        return -1;
    }
    pw->mode = mode;
    memcpy(pw->path, path, n + 1);
    /* Remembering it and sending it in one critical section: a connection
     * either was made before (and gets the addWatch ahead of whatever is
     * submitted after this call), or is made after (and carries the watch
     * in its SetWatches2). When the addWatch cannot be queued on a live
     * connection (its output lost), that connection goes, and the next one
     * carries the watch. */
    bool wake_io = false, sent = false;
    pthread_mutex_lock(&w->mu);
    bool known = g_hash_table_contains(w->watch_keys, key);
    if (known) {
        free(pw);
        free(key);
    } else {
        g_hash_table_add(w->watch_keys, key);
        g_ptr_array_add(w->watches, pw); /* from now on re-registered at every connect */
        sent = submit_locked(w, p, JUTE_OP_ADD_WATCH, b.buf, b.len, fn, ctx, &wake_io) == 0;
    }
    pthread_mutex_unlock(&w->mu);
    if (!sent) free(p);
    if (wake_io) wake(w);
    sbuf_free(&b);
    return 0;
}

static void watch_removed(void *ctx, int rc, int64_t zxid, jute_in *body) {
    (void)zxid; (void)body;
    zkw *w = ctx;
    if (rc != ZOK && rc != ZNOWATCHER && rc != ZCONNECTIONLOSS)
        LOG_WARN(w->lg, "mirror session: removeWatches refused: %s", zerror(rc));
}

void zkw_remove_watch(zkw *w, const char *path, int mode) {
    char *key = watch_key(path, mode);
    if (!key) return;
    pending *p = malloc(sizeof *p);
    sbuf b = SBUF_INIT;
    jute_put_string(&b, path);
    jute_put_int(&b, 3); /* WatcherType.Any: 3.8 has no Persistent types yet, and Any removes them */
    bool wake_io = false, sent = false;
    pthread_mutex_lock(&w->mu);
    if (g_hash_table_remove(w->watch_keys, key)) {
        for (guint i = 0; i < w->watches->len; i++) {
            const pwatch *pw = g_ptr_array_index(w->watches, i);
            if (pw->mode == mode && strcmp(pw->path, path) == 0) {
                g_ptr_array_remove_index(w->watches, i); /* (keeps the order: frees pw) */
                break;
            }
        }
        if (p && !sbuf_failed(&b))
            sent = submit_locked(w, p, JUTE_OP_REMOVE_WATCHES, b.buf, b.len, watch_removed, w, &wake_io) == 0;
    }
    pthread_mutex_unlock(&w->mu);
    if (!sent) free(p);
    if (wake_io) wake(w);
    sbuf_free(&b);
    free(key);
}

void zkw_reconnect(zkw *w) {
    atomic_store(&w->reset_wanted, true);
    wake(w);
}

bool zkw_connected(zkw *w) {
    pthread_mutex_lock(&w->mu);
    bool c = w->connected;
    pthread_mutex_unlock(&w->mu);
    return c;
}

int64_t zkw_last_zxid(zkw *w) { return atomic_load(&w->last_zxid); }

void zkw_get_stats(zkw *w, zkw_stats *out) {
    pthread_mutex_lock(&w->mu);
    *out = w->st;
    out->watches = w->watches->len;
    pthread_mutex_unlock(&w->mu);
}

/* ---- the gap probe ------------------------------------------------------------ */

/* Reads frames until the reply with xid, passing events on. */
static int probe_wait(int fd, int32_t xid, const dl *deadline, void (*on_event)(void *, int, const char *, size_t),
                      void *ctx, frame *buf) {
    for (;;) {
        if (read_frame(fd, buf, SMALL_FRAME, deadline) < 0) return -1;
        jute_in in;
        jute_reply_header h;
        jute_event ev;
        int kind = frame_open(buf->p, buf->len, &in, &h, &ev);
        if (kind < 0) return -1;
        if (kind == 1) {
            on_event(ctx, ev.type, ev.path.p, (size_t)ev.path.len);
            continue;
        }
        if (h.xid == xid) return h.err == ZOK ? 0 : -1;
    }
}

/* Sends one SetWatches2 packet of data[*di..] then child[*ci..], at most
 * ZKW_SET_WATCHES_MAX bytes of paths, and advances the indexes. */
static int probe_packet(int fd, int64_t rel, const char *const *data, size_t ndata, size_t *di,
                        const char *const *child, size_t nchild, size_t *ci, const dl *deadline, sbuf *b) {
    size_t d0 = *di, c0 = *ci, bytes = 0;
    while (*di < ndata && (bytes == 0 || bytes + strlen(data[*di]) + 4 <= ZKW_SET_WATCHES_MAX)) bytes += strlen(data[(*di)++]) + 4;
    while (*di == ndata && *ci < nchild && (bytes == 0 || bytes + strlen(child[*ci]) + 4 <= ZKW_SET_WATCHES_MAX))
        bytes += strlen(child[(*ci)++]) + 4;
    jute_str_list none = {NULL, 0};
    sbuf_reset(b);
    jute_set_watches2(b, rel, (jute_str_list){data + d0, *di - d0}, none, (jute_str_list){child + c0, *ci - c0}, none,
                      none);
    if (sbuf_failed(b)) return -1;
    return write_all(fd, b->buf, b->len, deadline);
}

int zkw_probe(const char *hosts, const char *cred, int timeout_ms, int64_t relative_zxid, const char *const *data, size_t ndata,
              const char *const *child, size_t nchild,
              void (*on_event)(void *ctx, int type, const char *path, size_t len), void *ctx,
              const atomic_bool *cancel, const zs_log *lg) {
    host *hs;
    size_t nh;
    if (parse_hosts(hosts, &hs, &nh, NULL, 0) < 0) return -1;
    dl dd = {zs_clock_ms() + timeout_ms, cancel}, *deadline = &dd;
    int fd = -1;
    jute_connect_response r;
    for (size_t i = 0; i < nh && fd < 0 && zs_clock_ms() < dd.at && !(cancel && atomic_load(cancel)); i++) {
        bool expired;
        fd = handshake(&hs[i], timeout_ms, relative_zxid, 0, NULL, cancel, &r, &expired);
    }
    hosts_free(hs, nh);
    if (fd < 0) return -1;
    sbuf b = SBUF_INIT;
    frame in = {0};
    int rc = -1;
    /* authenticate (when asked to), then sync: this server then has applied
     * at least what the leader had committed when the sync arrived. */
    if (cred) jute_auth(&b, "digest", cred);
    size_t f = jute_frame_begin(&b);
    jute_request_header(&b, 1, JUTE_OP_SYNC);
    jute_put_string(&b, "/");
    jute_frame_end(&b, f);
    if (sbuf_failed(&b) || write_all(fd, b.buf, b.len, deadline) < 0 || probe_wait(fd, 1, deadline, on_event, ctx, &in) < 0)
        goto out;
    size_t di = 0, ci = 0;
    while (di < ndata || ci < nchild) {
        if (probe_packet(fd, relative_zxid, data, ndata, &di, child, nchild, &ci, deadline, &b) < 0 ||
            probe_wait(fd, JUTE_XID_SET_WATCHES, deadline, on_event, ctx, &in) < 0)
            goto out;
    }
    rc = 0;
    /* Close the session: its one-shot watches go with it. */
    sbuf_reset(&b);
    f = jute_frame_begin(&b);
    jute_request_header(&b, 2, JUTE_OP_CLOSE);
    jute_frame_end(&b, f);
    if (!sbuf_failed(&b) && write_all(fd, b.buf, b.len, deadline) == 0) {
        dl cd = {zs_clock_ms() + CLOSE_WAIT_MS, cancel};
        if (cd.at > dd.at) cd.at = dd.at;
        (void)probe_wait(fd, 2, &cd, on_event, ctx, &in);
    }
out:
    if (rc < 0) LOG_WARN(lg, "mirror: gap probe of %zu records and %zu buckets failed; retrying", ndata, nchild);
    close(fd);
    sbuf_free(&b);
    free(in.p);
    return rc;
}

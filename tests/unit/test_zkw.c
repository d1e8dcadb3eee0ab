/* Unit tests for src/zk/jute.c and src/zk/zkw.c: parsing of frames
 * recorded from a real ZooKeeper 3.8 server (tests/unit/record_frames.mjs
 * made them), every truncation of them refused without a crash, hostile
 * lengths, and the session's behaviour against a scripted fake server:
 * replies matched to requests, a truncated frame, a server that closes
 * after SetWatches2, an expired session, a reply out of order. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zookeeper/zookeeper.h>

#include "util/clock.h"
#include "util/err.h"
#include "zk/jute.h"
#include "zk/zkw.h"

/* ---- recorded frames (bodies, without the 4-byte length) ---- */
/* connect_response */
static const char connect_response[] = "\x00\x00\x00\x00\x00\x00\x27\x10\x01\x00\x00\x0e\x46\xcb\x00\x00\x00\x00\x00\x10\xb7\x28\x3f\xca\x78\xf1\xc1\xe2\xed\x6b\x26\x1e\x81\x2a\x71\xf5\x00";

/* add_watch_reply */
static const char add_watch_reply[] = "\x00\x00\x00\x03\x00\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00\x00\x00\x00\x00\x00";

/* multi_read_reply */
static const char multi_read_reply[] = "\x00\x00\x00\x04\x00\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00\x00\x00\x00\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x07\x7b\x22\x61\x22\x3a\x31\x7d\x00\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00\x00\x00\x00\x00\x03\x00\x00\x01\xa2\x4a\x4d\x45\x58\x00\x00\x01\xa2\x4a\x4d\x45\x58\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x07\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00\x08\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x01\x78\xff\xff\xff\xff\x00\xff\xff\xff\x9b\xff\xff\xff\x9b\xff\xff\xff\xff\x01\xff\xff\xff\xff";

/* notification_changed */
static const char notification_changed[] = "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x00\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00\x03\x00\x00\x00\x0b\x2f\x72\x65\x63\x32\x35\x30\x37\x37\x2f\x78";

/* set_data_reply */
static const char set_data_reply[] = "\x00\x00\x00\x05\x00\x00\x00\x00\x00\x00\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00\x00\x00\x00\x00\x04\x00\x00\x01\xa2\x4a\x4d\x45\x58\x00\x00\x01\xa2\x4a\x4d\x45\x6a\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x07\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x03";

/* sync_reply */
static const char sync_reply[] = "\x00\x00\x00\x06\x00\x00\x00\x00\x00\x00\x00\x04\x00\x00\x00\x00\x00\x00\x00\x01\x2f";

/* set_watches_event */
static const char set_watches_event[] = "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x00\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00\x03\x00\x00\x00\x0b\x2f\x72\x65\x63\x32\x35\x30\x37\x37\x2f\x78";

/* set_watches_reply */
static const char set_watches_reply[] = "\xff\xff\xff\xf8\x00\x00\x00\x00\x00\x00\x00\x04\x00\x00\x00\x00";


#define LEN(a) (sizeof(a) - 1)

static void test_connect_response(void **st) {
    (void)st;
    jute_connect_response r;
    assert_int_equal(jute_parse_connect_response(connect_response, LEN(connect_response), &r), 0);
    assert_int_equal(r.timeout_ms, 10000);
    assert_true(r.session_id != 0);
    for (size_t n = 0; n < 4 + 4 + 8 + 4 + 16; n++)
        assert_int_equal(jute_parse_connect_response(connect_response, n, &r), -1);
}

/* Walks the recorded multiRead reply: getData ok, getChildren ok, getData NoNode. */
static int walk_multi(const char *p, size_t n, int *ops) {
    jute_in in;
    jute_in_init(&in, p, n);
    jute_reply_header h;
    jute_get_reply_header(&in, &h);
    *ops = 0;
    for (;;) {
        jute_multi_header mh;
        jute_get_multi_header(&in, &mh);
        if (in.bad) return -1;
        if (mh.done) break;
        if (mh.type == JUTE_OP_GET_DATA) {
            jute_bytes d = jute_get_buffer(&in);
            jute_stat stt;
            jute_get_stat(&in, &stt);
            if (!in.bad && *ops == 0 && (d.len != 7 || memcmp(d.p, "{\"a\":1}", 7) != 0)) return -2;
        } else if (mh.type == JUTE_OP_GET_CHILDREN) {
            int32_t c = jute_get_int(&in);
            for (int32_t i = 0; i < c && !in.bad; i++) (void)jute_get_buffer(&in);
        } else if (mh.type == JUTE_OP_ERROR) {
            if (jute_get_int(&in) != ZNONODE && !in.bad) return -3;
        } else {
            return -4;
        }
        if (in.bad) return -1;
        (*ops)++;
    }
    return in.bad ? -1 : 0;
}

static void test_multi_read(void **st) {
    (void)st;
    int ops;
    assert_int_equal(walk_multi(multi_read_reply, LEN(multi_read_reply), &ops), 0);
    assert_int_equal(ops, 3);
    jute_in in;
    jute_in_init(&in, multi_read_reply, LEN(multi_read_reply));
    jute_reply_header h;
    jute_get_reply_header(&in, &h);
    assert_int_equal(h.xid, 4);
    assert_int_equal(h.err, 0);
    assert_true(h.zxid > 0);
    /* every truncation is refused, never read past the end */
    for (size_t n = 0; n < LEN(multi_read_reply); n++) assert_int_equal(walk_multi(multi_read_reply, n, &ops), -1);
}

static void test_notification(void **st) {
    (void)st;
    jute_in in;
    jute_in_init(&in, notification_changed, LEN(notification_changed));
    jute_reply_header h;
    jute_get_reply_header(&in, &h);
    assert_int_equal(h.xid, JUTE_XID_NOTIFICATION);
    jute_event ev;
    assert_int_equal(jute_parse_event(&in, &ev), 0);
    assert_int_equal(ev.type, JUTE_EV_CHANGED);
    assert_int_equal(ev.path.len, 11);
    assert_memory_equal(ev.path.p + ev.path.len - 2, "/x", 2);
    for (size_t n = 12; n < LEN(notification_changed); n++) {
        jute_in_init(&in, notification_changed, n);
        jute_get_reply_header(&in, &h);
        assert_int_equal(jute_parse_event(&in, &ev), -1);
    }
    /* SetWatches2 answers a stale data watch with an event first, then its reply */
    jute_in_init(&in, set_watches_event, LEN(set_watches_event));
    jute_get_reply_header(&in, &h);
    assert_int_equal(jute_parse_event(&in, &ev), 0);
    assert_int_equal(ev.type, JUTE_EV_CHANGED);
    jute_in_init(&in, set_watches_reply, LEN(set_watches_reply));
    jute_get_reply_header(&in, &h);
    assert_int_equal(h.xid, JUTE_XID_SET_WATCHES);
    assert_int_equal(h.err, 0);
    assert_int_equal(jute_left(&in), 0);
}

static void test_set_data_reply(void **st) {
    (void)st;
    jute_in in;
    jute_in_init(&in, set_data_reply, LEN(set_data_reply));
    jute_reply_header h;
    jute_get_reply_header(&in, &h);
    jute_stat stt;
    jute_get_stat(&in, &stt);
    assert_false(in.bad);
    assert_int_equal(jute_left(&in), 0);
    assert_int_equal(stt.version, 1);
    assert_int_equal(stt.data_length, 7);
    assert_int_equal(stt.mzxid, h.zxid); /* the reply shows its own write */
}

static void test_hostile_lengths(void **st) {
    (void)st;
    /* a buffer length of -2, of 2^31-1, and a vector count beyond the data */
    static const char neg[] = "\xff\xff\xff\xfe" "abc";
    static const char huge[] = "\x7f\xff\xff\xff" "abc";
    jute_in in;
    jute_in_init(&in, neg, LEN(neg));
    jute_bytes b = jute_get_buffer(&in);
    assert_true(in.bad);
    assert_null(b.p);
    jute_in_init(&in, huge, LEN(huge));
    b = jute_get_buffer(&in);
    assert_true(in.bad);
    assert_int_equal(jute_get_int(&in), 0); /* latched */
    static const char nul[] = "\xff\xff\xff\xff";
    jute_in_init(&in, nul, LEN(nul));
    b = jute_get_buffer(&in);
    assert_false(in.bad);
    assert_int_equal(b.len, -1);
}

static void test_writers_round_trip(void **st) {
    (void)st;
    sbuf b = SBUF_INIT;
    const char *data[] = {"/a/b", "/c"};
    jute_str_list none = {NULL, 0};
    jute_set_watches2(&b, 0x1234, (jute_str_list){data, 2}, none, none, none, (jute_str_list){data + 1, 1});
    assert_false(sbuf_failed(&b));
    jute_in in;
    jute_in_init(&in, b.buf, b.len);
    assert_int_equal(jute_get_int(&in), (int32_t)b.len - 4);
    assert_int_equal(jute_get_int(&in), JUTE_XID_SET_WATCHES);
    assert_int_equal(jute_get_int(&in), JUTE_OP_SET_WATCHES2);
    assert_int_equal(jute_get_long(&in), 0x1234);
    assert_int_equal(jute_get_int(&in), 2);
    jute_bytes s1 = jute_get_buffer(&in), s2 = jute_get_buffer(&in);
    assert_int_equal(s1.len, 4);
    assert_int_equal(s2.len, 2);
    for (int i = 0; i < 3; i++) assert_int_equal(jute_get_int(&in), 0);
    assert_int_equal(jute_get_int(&in), 1);
    jute_bytes s3 = jute_get_buffer(&in);
    assert_memory_equal(s3.p, "/c", 2);
    assert_int_equal(jute_left(&in), 0);
    sbuf_free(&b);
}

/* ---- a scripted fake server ---------------------------------------------------- */

typedef struct fake {
    int lfd;
    int port;
    pthread_t thr;
    void (*script)(struct fake *);
    int ok;             /* the script's own verdict */
    int connects;
    int64_t sessions[8]; /* sessionId of each ConnectRequest */
    bool saw_setwatches;
} fake;

static int fk_read_frame(int fd, char *buf, size_t cap, size_t *len) {
    unsigned char lb[4];
    size_t got = 0;
    while (got < 4) {
        ssize_t k = recv(fd, lb + got, 4 - got, 0);
        if (k <= 0) return -1;
        got += (size_t)k;
    }
    uint32_t n = ((uint32_t)lb[0] << 24) | ((uint32_t)lb[1] << 16) | ((uint32_t)lb[2] << 8) | lb[3];
    if (n > cap) return -1;
    for (got = 0; got < n;) {
        ssize_t k = recv(fd, buf + got, n - got, 0);
        if (k <= 0) return -1;
        got += (size_t)k;
    }
    *len = n;
    return 0;
}

static void fk_send(int fd, const void *p, size_t n) {
    unsigned char lb[4] = {(unsigned char)(n >> 24), (unsigned char)(n >> 16), (unsigned char)(n >> 8), (unsigned char)n};
    ssize_t r = send(fd, lb, 4, MSG_NOSIGNAL);
    r = send(fd, p, n, MSG_NOSIGNAL);
    (void)r;
}

/* Accepts one connection and answers its ConnectRequest (expired: timeout 0). */
static int fk_accept(fake *f, bool expired) {
    int fd = accept(f->lfd, NULL, NULL);
    if (fd < 0) return -1;
    char buf[256];
    size_t n;
    if (fk_read_frame(fd, buf, sizeof buf, &n) < 0) { close(fd); return -1; }
    jute_in in;
    jute_in_init(&in, buf, n);
    (void)jute_get_int(&in);
    (void)jute_get_long(&in);
    (void)jute_get_int(&in);
    int64_t sid = jute_get_long(&in);
    if (f->connects < 8) f->sessions[f->connects] = sid;
    f->connects++;
    if (expired) {
        static const char exp[] = "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00";
        fk_send(fd, exp, LEN(exp));
    } else {
        fk_send(fd, connect_response, LEN(connect_response));
    }
    return fd;
}

/* Reads request frames until one that is not a ping; returns its xid. */
static int32_t fk_next_request(int fd, int32_t *type, char *buf, size_t cap, size_t *len) {
    for (;;) {
        if (fk_read_frame(fd, buf, cap, len) < 0) return INT32_MIN;
        jute_in in;
        jute_in_init(&in, buf, *len);
        int32_t xid = jute_get_int(&in);
        *type = jute_get_int(&in);
        if (*type != JUTE_OP_PING) return xid;
    }
}

/* A recorded reply, its xid changed to xid. */
static void fk_reply_with(int fd, int32_t xid, const char *tmpl, size_t n) {
    char r[256];
    memcpy(r, tmpl, n);
    r[0] = (char)(xid >> 24); r[1] = (char)(xid >> 16); r[2] = (char)(xid >> 8); r[3] = (char)xid;
    fk_send(fd, r, n);
}
static void fk_reply(int fd, int32_t xid) { fk_reply_with(fd, xid, sync_reply, LEN(sync_reply)); }

static void *fk_main(void *arg) {
    fake *f = arg;
    f->script(f);
    return NULL;
}

static void fk_start(fake *f, void (*script)(fake *)) {
    memset(f, 0, sizeof *f);
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(f->lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(f->lfd, 8), 0);
    socklen_t al = sizeof a;
    getsockname(f->lfd, (struct sockaddr *)&a, &al);
    f->port = ntohs(a.sin_port);
    f->script = script;
    pthread_create(&f->thr, NULL, fk_main, f);
}

static void fk_join(fake *f) {
    pthread_join(f->thr, NULL);
    close(f->lfd);
}

/* What the client saw. */
typedef struct seen {
    pthread_mutex_t mu;
    int connected, disconnected, fresh, replies, lost, events;
    int last_rc;
} seen;

static void on_state(void *ctx, int state, bool fresh) {
    seen *s = ctx;
    pthread_mutex_lock(&s->mu);
    if (state == ZKW_CONNECTED) { s->connected++; s->fresh += fresh; }
    else s->disconnected++;
    pthread_mutex_unlock(&s->mu);
}
static void on_event(void *ctx, int type, const char *path, size_t len) {
    (void)type; (void)path; (void)len;
    seen *s = ctx;
    pthread_mutex_lock(&s->mu);
    s->events++;
    pthread_mutex_unlock(&s->mu);
}
static void on_reply(void *ctx, int rc, int64_t zxid, jute_in *body) {
    (void)zxid; (void)body;
    seen *s = ctx;
    pthread_mutex_lock(&s->mu);
    s->last_rc = rc;
    if (rc == ZCONNECTIONLOSS) s->lost++;
    else s->replies++;
    pthread_mutex_unlock(&s->mu);
}

static int seen_get(seen *s, int *field) {
    pthread_mutex_lock(&s->mu);
    int v = *field;
    pthread_mutex_unlock(&s->mu);
    return v;
}

static bool wait_for(seen *s, int *field, int at_least) {
    int64_t end = zs_clock_ms() + 5000;
    while (zs_clock_ms() < end) {
        if (seen_get(s, field) >= at_least) return true;
        usleep(5000);
    }
    return false;
}

static zkw *open_client(fake *f, seen *s) {
    char hosts[64];
    snprintf(hosts, sizeof hosts, "127.0.0.1:%d", f->port);
    zkw_callbacks cb = {on_state, on_event, s};
    zs_log lg = {ZS_LOG_ERROR};
    static zs_log quiet;
    quiet = lg;
    char why[ZS_ERRLEN] = "";
    zkw *w = zkw_open(hosts, 6000, NULL, &cb, &quiet, why, sizeof why);
    assert_non_null(w);
    return w;
}

static int submit_sync(zkw *w, seen *s) {
    sbuf b = SBUF_INIT;
    jute_put_string(&b, "/");
    int rc = zkw_submit(w, JUTE_OP_SYNC, b.buf, b.len, on_reply, s);
    sbuf_free(&b);
    return rc;
}

/* Replies, an event, then a truncated frame and a close; the client must
 * fail the pending request, reconnect with the same session, and send its
 * persistent watch in SetWatches2 before anything else. Then the server
 * closes right after SetWatches2, and the client comes back again. */
static void script_truncate(fake *f) {
    char buf[4096];
    size_t n;
    int32_t type;
    int fd = fk_accept(f, false);
    int32_t xid = fk_next_request(fd, &type, buf, sizeof buf, &n); /* addWatch */
    if (type != JUTE_OP_ADD_WATCH) return;
    fk_reply_with(fd, xid, add_watch_reply, LEN(add_watch_reply));
    xid = fk_next_request(fd, &type, buf, sizeof buf, &n); /* sync */
    fk_send(fd, notification_changed, LEN(notification_changed));
    fk_reply(fd, xid);
    xid = fk_next_request(fd, &type, buf, sizeof buf, &n); /* sync, answered by half a frame */
    unsigned char lb[4] = {0, 0, 0, 40};
    ssize_t r = send(fd, lb, 4, MSG_NOSIGNAL);
    r = send(fd, sync_reply, 10, MSG_NOSIGNAL);
    (void)r;
    close(fd);
    /* second connection: SetWatches2 first, then close at once */
    fd = fk_accept(f, false);
    xid = fk_next_request(fd, &type, buf, sizeof buf, &n);
    f->saw_setwatches = xid == JUTE_XID_SET_WATCHES && type == JUTE_OP_SET_WATCHES2 && memmem(buf, n, "/watched", 8);
    close(fd);
    /* third connection: SetWatches2 again, answered; then a sync answered */
    fd = fk_accept(f, false);
    xid = fk_next_request(fd, &type, buf, sizeof buf, &n);
    f->ok = xid == JUTE_XID_SET_WATCHES && type == JUTE_OP_SET_WATCHES2;
    fk_send(fd, set_watches_reply, LEN(set_watches_reply));
    xid = fk_next_request(fd, &type, buf, sizeof buf, &n);
    if (type == JUTE_OP_SYNC) fk_reply(fd, xid);
    else f->ok = 0;
    /* wait for the client to go */
    while (fk_read_frame(fd, buf, sizeof buf, &n) == 0) {}
    close(fd);
}

static void test_session_faults(void **st) {
    (void)st;
    fake f;
    fk_start(&f, script_truncate);
    seen s = {.mu = PTHREAD_MUTEX_INITIALIZER};
    zkw *w = open_client(&f, &s);
    assert_true(wait_for(&s, &s.connected, 1));
    assert_int_equal(zkw_add_watch(w, "/watched", JUTE_WATCH_PERSISTENT_RECURSIVE, on_reply, &s), 0);
    assert_true(wait_for(&s, &s.replies, 1));
    assert_int_equal(submit_sync(w, &s), 0);
    assert_true(wait_for(&s, &s.replies, 2));
    assert_int_equal(seen_get(&s, &s.events), 1); /* the event came before the reply */
    assert_int_equal(submit_sync(w, &s), 0);
    assert_true(wait_for(&s, &s.lost, 1));        /* failed by the truncated frame */
    assert_true(wait_for(&s, &s.disconnected, 1));
    assert_true(wait_for(&s, &s.connected, 3));   /* two reconnects */
    int64_t end = zs_clock_ms() + 5000;
    while (submit_sync(w, &s) < 0 && zs_clock_ms() < end) usleep(5000);
    assert_true(wait_for(&s, &s.replies, 3));
    zkw_close(w);
    fk_join(&f);
    assert_true(f.saw_setwatches);
    assert_true(f.ok);
    assert_int_equal(f.connects, 3);
    assert_true(f.sessions[0] == 0);
    assert_true(f.sessions[1] != 0 && f.sessions[2] == f.sessions[1]); /* resumed, not new */
    assert_int_equal(s.fresh, 1);
}

/* The first answer says the session expired: the client starts a new one. */
static void script_expired(fake *f) {
    char buf[4096];
    size_t n;
    int32_t type;
    int fd = fk_accept(f, false);
    close(fd); /* drop: the client resumes session X */
    fd = fk_accept(f, true); /* "expired" */
    close(fd);
    fd = fk_accept(f, false); /* a new session */
    while (fk_next_request(fd, &type, buf, sizeof buf, &n) != INT32_MIN) {}
    close(fd);
}

static void test_session_expired(void **st) {
    (void)st;
    fake f;
    fk_start(&f, script_expired);
    seen s = {.mu = PTHREAD_MUTEX_INITIALIZER};
    zkw *w = open_client(&f, &s);
    assert_true(wait_for(&s, &s.connected, 2));
    zkw_stats zs;
    zkw_get_stats(w, &zs);
    assert_int_equal(zs.expirations, 1);
    zkw_close(w);
    fk_join(&f);
    assert_int_equal(f.connects, 3);
    assert_true(f.sessions[1] != 0); /* tried to resume */
    assert_true(f.sessions[2] == 0); /* then asked for a new one */
    assert_int_equal(s.fresh, 2);   /* the first session and the new one */
}

/* A reply whose xid is not the oldest pending one: the connection goes. */
static void script_out_of_order(fake *f) {
    char buf[4096];
    size_t n;
    int32_t type;
    int fd = fk_accept(f, false);
    int32_t x1 = fk_next_request(fd, &type, buf, sizeof buf, &n);
    int32_t x2 = fk_next_request(fd, &type, buf, sizeof buf, &n);
    fk_reply(fd, x2);
    (void)x1;
    while (fk_read_frame(fd, buf, sizeof buf, &n) == 0) {}
    close(fd);
    fd = fk_accept(f, false);
    while (fk_read_frame(fd, buf, sizeof buf, &n) == 0) {}
    close(fd);
}

static void test_out_of_order(void **st) {
    (void)st;
    fake f;
    fk_start(&f, script_out_of_order);
    seen s = {.mu = PTHREAD_MUTEX_INITIALIZER};
    zkw *w = open_client(&f, &s);
    assert_true(wait_for(&s, &s.connected, 1));
    assert_int_equal(submit_sync(w, &s), 0);
    assert_int_equal(submit_sync(w, &s), 0);
    assert_true(wait_for(&s, &s.lost, 2)); /* both failed, neither answered */
    assert_int_equal(seen_get(&s, &s.replies), 0);
    assert_true(wait_for(&s, &s.connected, 2));
    zkw_close(w);
    fk_join(&f);
}

/* A watch added before the first connection is up: no addWatch, and the
 * connection's first request is the SetWatches2 that carries it, ahead of
 * a request submitted after the add. */
static void script_early(fake *f) {
    char buf[4096];
    size_t n;
    int32_t type;
    usleep(800 * 1000); /* the client's handshake waits: it is not connected */
    int fd = fk_accept(f, false);
    int32_t xid = fk_next_request(fd, &type, buf, sizeof buf, &n);
    f->saw_setwatches = xid == JUTE_XID_SET_WATCHES && type == JUTE_OP_SET_WATCHES2 && memmem(buf, n, "/early", 6);
    fk_send(fd, set_watches_reply, LEN(set_watches_reply));
    xid = fk_next_request(fd, &type, buf, sizeof buf, &n);
    f->ok = type == JUTE_OP_SYNC;
    if (f->ok) fk_reply(fd, xid);
    while (fk_read_frame(fd, buf, sizeof buf, &n) == 0) {}
    close(fd);
}

static void test_watch_before_connect(void **st) {
    (void)st;
    fake f;
    fk_start(&f, script_early);
    seen s = {.mu = PTHREAD_MUTEX_INITIALIZER};
    zkw *w = open_client(&f, &s);
    assert_int_equal(zkw_add_watch(w, "/early", JUTE_WATCH_PERSISTENT_RECURSIVE, on_reply, &s), 0);
    assert_int_equal(seen_get(&s, &s.connected), 0);
    assert_true(wait_for(&s, &s.connected, 1));
    assert_int_equal(submit_sync(w, &s), 0);
    assert_true(wait_for(&s, &s.replies, 1));
    zkw_close(w);
    fk_join(&f);
    assert_true(f.saw_setwatches);
    assert_true(f.ok);
    assert_int_equal(s.replies, 1); /* the sync's: no addWatch was sent, so none answered */
}

/* Many persistent watches: each added once (a second add of the same one
 * sends nothing), and after a reconnect re-registered before any request in
 * several SetWatches2 packets, each within ZKW_SET_WATCHES_MAX bytes of
 * paths, every watch exactly once and in its own mode (ZOOKEEPER-706: one
 * packet past jute.maxbuffer is dropped by the server, for ever). */
enum { MANY_WATCHES = 3000 };
typedef struct many {
    fake f;
    int adds;           /* addWatch requests on the first connection */
    int removes;        /* removeWatches requests on it, for /zoosync/stores/store-00005-r... */
    int packets;        /* SetWatches2 packets on the second */
    size_t max_bytes;   /* the most path bytes (as jute writes them) in one packet */
    int seen[MANY_WATCHES]; /* times each watch was re-registered, in its mode */
    bool bad;           /* a path not added, or in the wrong mode, or a malformed packet */
    bool sync_last;     /* the sync came after every SetWatches2 */
} many;

static void many_path(int i, char *out, size_t cap) {
    /* about 100 bytes, like a store's path under a long root */
    snprintf(out, cap, "/zoosync/stores/store-%05d-%s%s", i, i % 2 ? "r" : "c",
             "/padding-padding-padding-padding-padding-padding-padding-padding-padding-pad");
}

static void script_many(fake *f) {
    many *m = (many *)f;
    size_t cap = 4 * ZKW_SET_WATCHES_MAX;
    char *buf = malloc(cap);
    size_t n;
    int32_t type;
    int fd = fk_accept(f, false);
    for (;;) {
        int32_t xid = fk_next_request(fd, &type, buf, cap, &n);
        if (xid == INT32_MIN) break;
        if (type == JUTE_OP_ADD_WATCH) {
            m->adds++;
            fk_reply_with(fd, xid, add_watch_reply, LEN(add_watch_reply));
            continue;
        }
        if (type == JUTE_OP_REMOVE_WATCHES) {
            jute_in in;
            jute_in_init(&in, buf, n);
            (void)jute_get_int(&in);
            (void)jute_get_int(&in);
            jute_bytes p = jute_get_buffer(&in);
            int32_t wt = jute_get_int(&in);
            char want[160];
            many_path(5, want, sizeof want);
            if (!in.bad && wt == 3 && (size_t)p.len == strlen(want) && memcmp(p.p, want, (size_t)p.len) == 0) m->removes++;
            else m->bad = true;
            fk_reply(fd, xid);
            continue;
        }
        if (type == JUTE_OP_SYNC) fk_reply(fd, xid);
        break;
    }
    close(fd); /* the client reconnects */
    fd = fk_accept(f, false);
    for (;;) {
        int32_t xid = fk_next_request(fd, &type, buf, cap, &n);
        if (xid == INT32_MIN) break;
        if (type == JUTE_OP_SYNC) {
            m->sync_last = m->packets > 0;
            fk_reply(fd, xid);
            break;
        }
        if (xid != JUTE_XID_SET_WATCHES || type != JUTE_OP_SET_WATCHES2) { m->bad = true; break; }
        m->packets++;
        jute_in in;
        jute_in_init(&in, buf, n);
        (void)jute_get_int(&in);
        (void)jute_get_int(&in);
        (void)jute_get_long(&in);
        size_t bytes = 0;
        for (int list = 0; list < 5 && !in.bad; list++) {
            int32_t k = jute_get_int(&in);
            for (int32_t j = 0; j < k && !in.bad; j++) {
                jute_bytes p = jute_get_buffer(&in);
                if (in.bad || p.len < 0) break;
                bytes += (size_t)p.len + 4;
                int i = -1;
                if (p.len > 22 && sscanf(p.p + 22, "%5d", &i) != 1) i = -1;
                char want[160];
                if (i >= 0 && i < MANY_WATCHES) many_path(i, want, sizeof want);
                bool mode_ok = (list == 3 && i % 2 == 0) || (list == 4 && i % 2 == 1);
                if (i < 0 || i >= MANY_WATCHES || !mode_ok || (size_t)p.len != strlen(want) || memcmp(p.p, want, (size_t)p.len) != 0)
                    m->bad = true;
                else
                    m->seen[i]++;
            }
        }
        if (in.bad || jute_left(&in) != 0) m->bad = true;
        if (bytes > m->max_bytes) m->max_bytes = bytes;
        fk_send(fd, set_watches_reply, LEN(set_watches_reply));
    }
    while (fk_read_frame(fd, buf, cap, &n) == 0) {}
    close(fd);
    free(buf);
}

static void test_many_watches(void **st) {
    (void)st;
    many *m = calloc(1, sizeof *m);
    fk_start(&m->f, script_many);
    seen s = {.mu = PTHREAD_MUTEX_INITIALIZER};
    zkw *w = open_client(&m->f, &s);
    assert_true(wait_for(&s, &s.connected, 1));
    char path[160];
    for (int i = 0; i < MANY_WATCHES; i++) {
        many_path(i, path, sizeof path);
        assert_int_equal(zkw_add_watch(w, path, i % 2 ? JUTE_WATCH_PERSISTENT_RECURSIVE : JUTE_WATCH_PERSISTENT, on_reply, &s), 0);
    }
    many_path(7, path, sizeof path);
    assert_int_equal(zkw_add_watch(w, path, JUTE_WATCH_PERSISTENT_RECURSIVE, on_reply, &s), 0); /* known: nothing sent */
    assert_true(wait_for(&s, &s.replies, MANY_WATCHES));
    many_path(5, path, sizeof path);
    zkw_remove_watch(w, path, JUTE_WATCH_PERSISTENT_RECURSIVE); /* removeWatches, then never re-registered */
    zkw_remove_watch(w, path, JUTE_WATCH_PERSISTENT_RECURSIVE); /* not known any more: nothing sent */
    assert_int_equal(submit_sync(w, &s), 0);
    assert_true(wait_for(&s, &s.disconnected, 1));
    assert_true(wait_for(&s, &s.connected, 2));
    int64_t end = zs_clock_ms() + 5000;
    while (submit_sync(w, &s) < 0 && zs_clock_ms() < end) usleep(5000);
    assert_true(wait_for(&s, &s.replies, MANY_WATCHES + 2));
    zkw_stats zs;
    zkw_get_stats(w, &zs);
    zkw_close(w);
    fk_join(&m->f);
    assert_int_equal(m->adds, MANY_WATCHES);
    assert_int_equal(m->removes, 1);
    assert_int_equal(zs.watches, MANY_WATCHES - 1);
    assert_false(m->bad);
    assert_true(m->sync_last);
    assert_true(m->packets >= 2);
    assert_int_equal((uint64_t)m->packets, zs.set_watches);
    assert_true(m->max_bytes <= ZKW_SET_WATCHES_MAX);
    for (int i = 0; i < MANY_WATCHES; i++) assert_int_equal(m->seen[i], i == 5 ? 0 : 1);
    free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connect_response),
        cmocka_unit_test(test_multi_read),
        cmocka_unit_test(test_notification),
        cmocka_unit_test(test_set_data_reply),
        cmocka_unit_test(test_hostile_lengths),
        cmocka_unit_test(test_writers_round_trip),
        cmocka_unit_test(test_session_faults),
        cmocka_unit_test(test_session_expired),
        cmocka_unit_test(test_out_of_order),
        cmocka_unit_test(test_watch_before_connect),
        cmocka_unit_test(test_many_watches),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

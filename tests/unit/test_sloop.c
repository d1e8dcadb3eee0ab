/* Unit tests for src/http/sloop.c, on socket pairs: the head goes out
 * before the body; a wake before start is harmless; every byte arrives in order
 * through a socket that takes little at a time; a read's -1, the peer's
 * close, a peer that talks past SLOOP_MAX_INPUT and a send stalled past
 * stall_ms each end the stream, calling end exactly once and closing the
 * socket; sloop_free ends the streams left; a descriptor the loop cannot
 * watch is refused by prepare, and a stream prepared and discarded is
 * closed, with nothing called in either case. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http/sloop.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/metrics.h"

/* A source of `total` bytes, byte i being (i * 7 + i / 251) & 0xff, given
 * `avail` at a time (then 0 until the test adds more), -1 at the end when
 * `end_after` is set. */
typedef struct src {
    pthread_mutex_t mu;
    size_t given, avail, total;
    bool end_after;
    atomic_int reads, ends;
} src;

static unsigned char byte_at(size_t i) { return (unsigned char)((i * 7 + i / 251) & 0xff); }

static long src_read(void *cls, char *buf, size_t max) {
    src *s = cls;
    atomic_fetch_add(&s->reads, 1);
    pthread_mutex_lock(&s->mu);
    long n;
    if (s->given >= s->total && s->end_after) {
        n = -1;
    } else {
        size_t k = s->avail < max ? s->avail : max;
        for (size_t i = 0; i < k; i++) buf[i] = (char)byte_at(s->given + i);
        s->given += k;
        s->avail -= k;
        n = (long)k;
    }
    pthread_mutex_unlock(&s->mu);
    return n;
}

static void src_end(void *cls) { atomic_fetch_add(&((src *)cls)->ends, 1); }

static const sloop_ops ops = {src_read, src_end};

static void src_init(src *s, size_t total, size_t avail, bool end_after) {
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    s->total = total;
    s->avail = avail;
    s->end_after = end_after;
}

static void src_add(src *s, size_t n) {
    pthread_mutex_lock(&s->mu);
    s->avail += n;
    pthread_mutex_unlock(&s->mu);
}

static void nap(int ms) {
    struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

static bool wait_ends(src *s, int want, int ms) {
    for (int i = 0; i < ms / 5 && atomic_load(&s->ends) < want; i++) nap(5);
    return atomic_load(&s->ends) == want;
}

/* Reads from fd until n bytes came, EOF or ms passed. Returns the count. */
static size_t read_upto(int fd, char *buf, size_t n, int ms) {
    size_t got = 0;
    int64_t until = zs_clock_ms() + ms;
    while (got < n && zs_clock_ms() < until) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0) continue;
        ssize_t r = read(fd, buf + got, n - got);
        if (r <= 0) break;
        got += (size_t)r;
    }
    return got;
}

/* Whether the peer sees end of stream within ms. */
static bool sees_eof(int fd, int ms) {
    char b[4096];
    int64_t until = zs_clock_ms() + ms;
    while (zs_clock_ms() < until) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0) continue;
        ssize_t r = read(fd, b, sizeof b);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) return true;
    }
    return false;
}

static zs_log lg = {ZS_LOG_ERROR, false};

static void pair(int sv[2], int sndbuf) {
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    if (sndbuf) {
        assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf), 0);
        assert_int_equal(setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &sndbuf, sizeof sndbuf), 0);
    }
}

/* Starts on l an idle stream of s (10 bytes, none available) whose peer is
 * sv[1]: its head, "H", is sent at once. */
static void start_idle(sloop *l, src *s, int sv[2]) {
    src_init(s, 10, 0, false);
    pair(sv, 0);
    assert_true(sloop_start(sloop_prepare(l, sv[0], "H", 1, &ops, s)));
}

static void head_then_body_and_end(void **state) {
    (void)state;
    zs_metrics m = {0};
    sloop *l = sloop_new(5000, &m, &lg);
    assert_non_null(l);
    src s;
    src_init(&s, 1000, 0, true);
    int sv[2];
    pair(sv, 0);
    sloop_stream *st = sloop_prepare(l, sv[0], "HEAD\r\n\r\n", 8, &ops, &s);
    assert_non_null(st);
    src_add(&s, 300);
    sloop_wake(st); /* before start: only marked (start serves it anyway) */
    assert_true(sloop_start(st));
    assert_int_equal(sloop_count(l), 1);
    char buf[2048];
    assert_int_equal(read_upto(sv[1], buf, 8 + 300, 2000), 8 + 300);
    assert_memory_equal(buf, "HEAD\r\n\r\n", 8);
    for (size_t i = 0; i < 300; i++) assert_int_equal((unsigned char)buf[8 + i], byte_at(i));
    nap(50);
    assert_int_equal(atomic_load(&s.ends), 0); /* read says 0: it sleeps */
    src_add(&s, 700);
    sloop_wake(st);
    assert_int_equal(read_upto(sv[1], buf, 700, 2000), 700);
    for (size_t i = 0; i < 700; i++) assert_int_equal((unsigned char)buf[i], byte_at(300 + i));
    /* everything given: the next read (the same turn, no wake) says -1 */
    assert_true(wait_ends(&s, 1, 2000));
    assert_true(sees_eof(sv[1], 2000));
    for (int i = 0; i < 400 && sloop_count(l) != 0; i++) nap(5); /* counted down after end returns */
    assert_int_equal(sloop_count(l), 0);
    sloop_free(l);
    assert_int_equal(atomic_load(&m.stream_ends[ZS_STREAM_END_SERVER]), 1); /* counted by its reason */
    assert_int_equal(atomic_load(&s.ends), 1);
    close(sv[1]);
}

static void slow_peer_gets_every_byte_in_order(void **state) {
    (void)state;
    sloop *l = sloop_new(10000, NULL, &lg);
    src s;
    const size_t total = 3 * 1024 * 1024;
    src_init(&s, total, total, true);
    int sv[2];
    pair(sv, 4096);
    sloop_stream *st = sloop_prepare(l, sv[0], NULL, 0, &ops, &s);
    assert_true(sloop_start(st));
    char *buf = malloc(total);
    size_t got = 0;
    while (got < total) { /* a slow reader: small reads, pauses */
        size_t n = read_upto(sv[1], buf + got, got % 3 ? 1000 : 70000, 5000);
        if (n == 0) break;
        got += n;
        if (got % 7 == 0) nap(1);
    }
    assert_int_equal(got, total);
    for (size_t i = 0; i < total; i++)
        if ((unsigned char)buf[i] != byte_at(i)) fail_msg("byte %zu differs", i);
    free(buf);
    assert_true(wait_ends(&s, 1, 2000));
    sloop_free(l);
    close(sv[1]);
}

static void peer_close_ends(void **state) {
    (void)state;
    zs_metrics m = {0};
    sloop *l = sloop_new(5000, &m, &lg);
    src s;
    int sv[2];
    start_idle(l, &s, sv);
    char b[4];
    assert_int_equal(read_upto(sv[1], b, 1, 2000), 1);
    close(sv[1]);
    assert_true(wait_ends(&s, 1, 2000));
    sloop_free(l);
    assert_int_equal(atomic_load(&m.stream_ends[ZS_STREAM_END_CLIENT]), 1); /* counted by its reason */
    assert_int_equal(atomic_load(&s.ends), 1);
}

static void talking_peer_ends(void **state) {
    (void)state;
    zs_metrics m = {0};
    sloop *l = sloop_new(5000, &m, &lg);
    src s;
    int sv[2];
    start_idle(l, &s, sv);
    char junk[8192];
    memset(junk, 'z', sizeof junk);
    assert_int_equal(write(sv[1], junk, 100), 100); /* a little: ignored */
    nap(100);
    assert_int_equal(atomic_load(&s.ends), 0);
    for (int i = 0; i < 12; i++) (void)write(sv[1], junk, sizeof junk); /* 96 KiB more */
    assert_true(wait_ends(&s, 1, 2000));
    sloop_free(l);
    assert_int_equal(atomic_load(&m.stream_ends[ZS_STREAM_END_CLIENT_SENT]), 1); /* counted by its reason */
    close(sv[1]);
}

static void stalled_send_ends(void **state) {
    (void)state;
    zs_metrics m = {0};
    sloop *l = sloop_new(300, &m, &lg);
    src s;
    src_init(&s, 8u << 20, 8u << 20, false);
    int sv[2];
    pair(sv, 4096);
    int64_t t0 = zs_clock_ms();
    assert_true(sloop_start(sloop_prepare(l, sv[0], NULL, 0, &ops, &s)));
    /* the peer reads nothing: the send waits, then the stall ends it */
    assert_true(wait_ends(&s, 1, 4000));
    int64_t took = zs_clock_ms() - t0;
    assert_true(took >= 300);
    assert_true(took < 3000);
    sloop_free(l);
    assert_int_equal(atomic_load(&m.stream_ends[ZS_STREAM_END_STALLED]), 1); /* counted by its reason */
    close(sv[1]);
}

static void free_ends_the_rest_unwatchable_and_discarded_call_nothing(void **state) {
    (void)state;
    sloop *l = sloop_new(5000, NULL, &lg);
    enum { N = 50 };
    src s[N];
    int peers[N];
    for (int i = 0; i < N; i++) {
        src_init(&s[i], 10, 0, false);
        int sv[2];
        pair(sv, 0);
        peers[i] = sv[1];
        assert_true(sloop_start(sloop_prepare(l, sv[0], "H", 1, &ops, &s[i])));
    }
    char b[2];
    for (int i = 0; i < N; i++) assert_int_equal(read_upto(peers[i], b, 1, 2000), 1);
    assert_int_equal(sloop_count(l), N);
    sloop_free(l);
    for (int i = 0; i < N; i++) {
        assert_int_equal(atomic_load(&s[i].ends), 1);
        assert_true(sees_eof(peers[i], 1000));
        close(peers[i]);
    }
    /* a descriptor the loop cannot watch (here /dev/null): prepare refuses
     * it (the caller can still serve the stream another way), calls
     * nothing, and closes it */
    sloop *l2 = sloop_new(5000, NULL, &lg);
    src x;
    src_init(&x, 10, 0, false);
    int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_null(sloop_prepare(l2, fd, "H", 1, &ops, &x));
    assert_int_equal(fcntl(fd, F_GETFD), -1); /* closed */
    /* a prepared stream never started: discard closes it, calls nothing */
    int sv[2];
    pair(sv, 0);
    sloop_stream *st = sloop_prepare(l2, sv[0], "H", 1, &ops, &x);
    assert_non_null(st);
    sloop_wake(st); /* only marked */
    sloop_discard(st);
    assert_true(sees_eof(sv[1], 1000));
    close(sv[1]);
    assert_int_equal(sloop_count(l2), 0);
    sloop_free(l2);
    assert_int_equal(atomic_load(&x.ends), 0);
    assert_int_equal(atomic_load(&x.reads), 0);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN); /* the peers write to sockets the loop has closed */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(head_then_body_and_end),
        cmocka_unit_test(slow_peer_gets_every_byte_in_order),
        cmocka_unit_test(peer_close_ends),
        cmocka_unit_test(talking_peer_ends),
        cmocka_unit_test(stalled_send_ends),
        cmocka_unit_test(free_ends_the_rest_unwatchable_and_discarded_call_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

#include "http/sloop.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/clock.h"

/* A circular intrusive list: a lone node points at itself. */
typedef struct sl_link { struct sl_link *prev, *next; } sl_link;

static void sl_init(sl_link *n) { n->prev = n->next = n; }
static bool sl_linked(const sl_link *n) { return n->next != n; }
static void sl_unlink(sl_link *n) {
    n->prev->next = n->next;
    n->next->prev = n->prev;
    sl_init(n);
}
static void sl_push(sl_link *head, sl_link *n) {
    assert(!sl_linked(n));
    n->prev = head->prev;
    n->next = head;
    head->prev->next = n;
    head->prev = n;
}

#define SL_OF(ptr, field) ((sloop_stream *)((char *)(ptr) - offsetof(sloop_stream, field)))

struct sloop_stream {
    sloop *l;
    int fd;
    const sloop_ops *ops;
    void *cls;
    /* under l->mu */
    sl_link ready;     /* in l->ready while queued and live */
    bool queued;       /* woken since its last turn (before start: only marked) */
    bool live;         /* started */
    bool fresh;        /* started, not yet taken into l->all by the loop */
    /* the loop thread only (after start) */
    sl_link all;       /* in l->all */
    sl_link waiting;   /* in l->waiting while a send waits for room */
    char *pend;        /* what a send did not take yet (owned; NULL: nothing) */
    size_t pend_len, pend_off;
    int64_t progress_ms; /* the last send that moved bytes, or the start of the wait */
    size_t input;      /* bytes the client sent (discarded) */
};

struct sloop {
    pthread_mutex_t mu;  /* guards ready, nready, signaled, stop and every stream's ready, queued, live, fresh */
    sl_link ready;       /* streams woken, oldest first */
    size_t nready;
    bool signaled;       /* efd written since the loop last reset it */
    bool stop;
    int ep, efd;
    pthread_t thread;
    atomic_size_t count; /* started, not ended */
    int stall_ms;
    zs_metrics *metrics; /* may be NULL */
    const zs_log *lg;
    /* the loop thread only */
    sl_link all;         /* every stream it serves */
    sl_link waiting;     /* streams whose send waits for room (EPOLLOUT armed) */
    char buf[SLOOP_CHUNK];
};

static void watch(sloop *l, sloop_stream *s, bool out) {
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | (out ? EPOLLOUT : 0), .data.ptr = s};
    (void)epoll_ctl(l->ep, EPOLL_CTL_MOD, s->fd, &ev);
}

/* Ends s (why: a zs_stream_end): closes its socket, lets its owner release
 * it, frees it. */
static void finish(sloop *l, sloop_stream *s, zs_stream_end why) {
    if (l->metrics) atomic_fetch_add(&l->metrics->stream_ends[why], 1);
    (void)epoll_ctl(l->ep, EPOLL_CTL_DEL, s->fd, NULL);
    close(s->fd);
    sl_unlink(&s->all);
    if (sl_linked(&s->waiting)) sl_unlink(&s->waiting);
    s->ops->end(s->cls); /* from here on no wake of s comes */
    pthread_mutex_lock(&l->mu);
    if (s->queued && sl_linked(&s->ready)) {
        sl_unlink(&s->ready);
        l->nready--;
    }
    pthread_mutex_unlock(&l->mu);
    free(s->pend);
    free(s);
    atomic_fetch_sub(&l->count, 1);
}

/* Queues s for another turn (the loop thread, for a stream that used its
 * turn's bytes). */
static void requeue(sloop *l, sloop_stream *s) {
    pthread_mutex_lock(&l->mu);
    if (!s->queued) {
        s->queued = true;
        sl_push(&l->ready, &s->ready);
        l->nready++;
    }
    pthread_mutex_unlock(&l->mu);
}

static void wait_room(sloop *l, sloop_stream *s) {
    if (sl_linked(&s->waiting)) return;
    sl_push(&l->waiting, &s->waiting);
    s->progress_ms = zs_clock_ms();
    watch(l, s, true);
}

static bool would_block(void) { return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR; }

/* Keeps the n bytes at p that a send did not take. False: out of memory. */
static bool stash(sloop_stream *s, const char *p, size_t n) {
    assert(s->pend_off == s->pend_len && n <= SLOOP_CHUNK);
    if (!s->pend) s->pend = malloc(SLOOP_CHUNK);
    if (!s->pend) return false;
    memcpy(s->pend, p, n);
    s->pend_off = 0;
    s->pend_len = n;
    return true;
}

/* Sends what s has, at most a turn's worth. */
static void service(sloop *l, sloop_stream *s) {
    size_t sent = 0;
    for (;;) {
        if (s->pend_off < s->pend_len) {
            ssize_t w = send(s->fd, s->pend + s->pend_off, s->pend_len - s->pend_off, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w < 0 && !would_block()) { finish(l, s, ZS_STREAM_END_SEND_FAILED); return; }
            if (w > 0) { s->pend_off += (size_t)w; sent += (size_t)w; s->progress_ms = zs_clock_ms(); }
            if (s->pend_off < s->pend_len) { wait_room(l, s); return; }
            free(s->pend); /* an idle stream keeps no buffer */
            s->pend = NULL;
            s->pend_off = s->pend_len = 0;
        }
        if (sl_linked(&s->waiting)) {
            sl_unlink(&s->waiting);
            watch(l, s, false);
        }
        if (sent >= SLOOP_TURN_BYTES) { requeue(l, s); return; }
        long n = s->ops->read(s->cls, l->buf, sizeof l->buf);
        if (n < 0) { finish(l, s, ZS_STREAM_END_SERVER); return; }
        if (n == 0) return;
        assert((size_t)n <= sizeof l->buf);
        ssize_t w = send(s->fd, l->buf, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && !would_block()) { finish(l, s, ZS_STREAM_END_SEND_FAILED); return; }
        if (w < 0) w = 0;
        sent += (size_t)w;
        if (w < n) {
            if (!stash(s, l->buf + w, (size_t)(n - w))) {
                LOG_WARN(l->lg, "event stream: out of memory for a frame the client has not taken; ending the stream");
                finish(l, s, ZS_STREAM_END_SEND_FAILED);
                return;
            }
            wait_room(l, s);
            return;
        }
    }
}

/* The socket of s is readable, closed or failed. */
static void on_io(sloop *l, sloop_stream *s, uint32_t ev) {
    if (ev & (EPOLLERR | EPOLLHUP | EPOLLRDHUP)) { finish(l, s, ZS_STREAM_END_CLIENT); return; }
    if (ev & EPOLLIN) {
        char sink[4096];
        for (;;) {
            ssize_t got = recv(s->fd, sink, sizeof sink, MSG_DONTWAIT);
            if (got > 0) {
                s->input += (size_t)got;
                if (s->input <= SLOOP_MAX_INPUT) continue;
                LOG_DEBUG(l->lg, "event stream: the client sent more than %d bytes; ending the stream", SLOOP_MAX_INPUT);
                finish(l, s, ZS_STREAM_END_CLIENT_SENT);
                return;
            }
            if (got < 0 && would_block()) break;
            finish(l, s, ZS_STREAM_END_CLIENT); /* closed or failed */
            return;
        }
    }
    if (ev & EPOLLOUT) service(l, s);
}

/* One turn for each stream queued when the round began. */
static void ready_round(sloop *l) {
    eventfd_t v;
    (void)eventfd_read(l->efd, &v); /* non-blocking: reset before the list is read */
    pthread_mutex_lock(&l->mu);
    l->signaled = false;
    size_t n = l->nready;
    pthread_mutex_unlock(&l->mu);
    for (size_t i = 0; i < n; i++) {
        pthread_mutex_lock(&l->mu);
        if (!sl_linked(&l->ready)) { pthread_mutex_unlock(&l->mu); break; }
        sloop_stream *s = SL_OF(l->ready.next, ready);
        sl_unlink(&s->ready);
        l->nready--;
        s->queued = false;
        bool fresh = s->fresh;
        s->fresh = false;
        pthread_mutex_unlock(&l->mu);
        if (fresh) sl_push(&l->all, &s->all);
        service(l, s);
    }
}

/* Ends the streams whose waiting send made no progress for stall_ms. */
static void reap_stalled(sloop *l, int64_t now) {
    for (sl_link *p = l->waiting.next; p != &l->waiting;) {
        sloop_stream *s = SL_OF(p, waiting);
        p = p->next;
        if (now - s->progress_ms < l->stall_ms) continue;
        LOG_INFO(l->lg, "event stream: the client took nothing for %d ms; ending the stream", l->stall_ms);
        finish(l, s, ZS_STREAM_END_STALLED);
    }
}

static void stop_all(sloop *l) {
    pthread_mutex_lock(&l->mu);
    for (sl_link *p = l->ready.next; p != &l->ready; p = p->next) {
        sloop_stream *s = SL_OF(p, ready);
        if (s->fresh) { s->fresh = false; sl_push(&l->all, &s->all); }
    }
    pthread_mutex_unlock(&l->mu);
    while (sl_linked(&l->all)) finish(l, SL_OF(l->all.next, all), ZS_STREAM_END_SERVER);
}

static void *loop_main(void *arg) {
    sloop *l = arg;
    struct epoll_event evs[256];
    int64_t next_reap = zs_clock_ms() + 1000;
    for (;;) {
        pthread_mutex_lock(&l->mu);
        bool stop = l->stop, busy = l->nready > 0;
        pthread_mutex_unlock(&l->mu);
        if (stop) break;
        int timeout = busy ? 0 : sl_linked(&l->waiting) ? 1000 : -1;
        int n = epoll_wait(l->ep, evs, 256, timeout);
        if (n < 0 && errno != EINTR) {
            LOG_ERROR(l->lg, "event streams: epoll_wait: %s", strerror(errno));
            struct timespec t = {0, 10 * 1000000L};
            nanosleep(&t, NULL);
        }
        for (int i = 0; i < n; i++)
            if (evs[i].data.ptr) on_io(l, evs[i].data.ptr, evs[i].events);
        ready_round(l);
        int64_t now = zs_clock_ms();
        if (now >= next_reap) {
            reap_stalled(l, now);
            next_reap = now + 1000;
        }
    }
    stop_all(l);
    return NULL;
}

sloop *sloop_new(int stall_ms, zs_metrics *m, const zs_log *lg) {
    sloop *l = calloc(1, sizeof *l);
    if (!l) return NULL;
    l->stall_ms = stall_ms;
    l->metrics = m;
    l->lg = lg;
    sl_init(&l->ready);
    sl_init(&l->all);
    sl_init(&l->waiting);
    pthread_mutex_init(&l->mu, NULL);
    l->ep = epoll_create1(EPOLL_CLOEXEC);
    l->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    int rc = -1;
    if (l->ep >= 0 && l->efd >= 0 && epoll_ctl(l->ep, EPOLL_CTL_ADD, l->efd, &ev) == 0)
        rc = pthread_create(&l->thread, NULL, loop_main, l);
    if (rc != 0) {
        LOG_ERROR(lg, "cannot start the event streams' thread: %s", strerror(rc > 0 ? rc : errno));
        if (l->ep >= 0) close(l->ep);
        if (l->efd >= 0) close(l->efd);
        pthread_mutex_destroy(&l->mu);
        free(l);
        return NULL;
    }
    (void)pthread_setname_np(l->thread, "zs-streams");
    return l;
}

void sloop_free(sloop *l) {
    if (!l) return;
    pthread_mutex_lock(&l->mu);
    l->stop = true;
    pthread_mutex_unlock(&l->mu);
    (void)eventfd_write(l->efd, 1);
    pthread_join(l->thread, NULL);
    assert(atomic_load(&l->count) == 0);
    close(l->ep);
    close(l->efd);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

sloop_stream *sloop_prepare(sloop *l, int fd, const char *head, size_t head_len, const sloop_ops *ops, void *cls) {
    sloop_stream *s = calloc(1, sizeof *s);
    char *h = head_len ? malloc(head_len) : NULL;
    /* Registered now, parked: no event asked (EPOLLHUP and EPOLLERR come
     * anyway, once: EPOLLONESHOT) and the eventfd's NULL as its data, so
     * until sloop_start it only wakes the loop. What can fail fails here,
     * before the caller has made the stream known anywhere. */
    struct epoll_event ev = {.events = EPOLLONESHOT, .data.ptr = NULL};
    if (!s || (head_len && !h) || epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
        free(s);
        free(h);
        close(fd);
        return NULL;
    }
    if (head_len) memcpy(h, head, head_len);
    s->l = l;
    s->fd = fd;
    s->ops = ops;
    s->cls = cls;
    s->pend = h;
    s->pend_len = head_len;
    sl_init(&s->ready);
    sl_init(&s->all);
    sl_init(&s->waiting);
    return s;
}

bool sloop_start(sloop_stream *s) {
    sloop *l = s->l;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = s};
    pthread_mutex_lock(&l->mu);
    if (l->stop || epoll_ctl(l->ep, EPOLL_CTL_MOD, s->fd, &ev) != 0) {
        pthread_mutex_unlock(&l->mu);
        return false;
    }
    s->live = s->fresh = s->queued = true;
    sl_push(&l->ready, &s->ready);
    l->nready++;
    atomic_fetch_add(&l->count, 1);
    bool sig = !l->signaled;
    l->signaled = true;
    pthread_mutex_unlock(&l->mu);
    if (sig) (void)eventfd_write(l->efd, 1);
    return true;
}

void sloop_discard(sloop_stream *s) {
    if (!s) return;
    assert(!s->live);
    (void)epoll_ctl(s->l->ep, EPOLL_CTL_DEL, s->fd, NULL);
    close(s->fd);
    free(s->pend);
    free(s);
}

void sloop_wake(sloop_stream *s) {
    sloop *l = s->l;
    bool sig = false;
    pthread_mutex_lock(&l->mu);
    if (!s->queued) {
        s->queued = true;
        if (s->live) {
            sl_push(&l->ready, &s->ready);
            l->nready++;
            sig = !l->signaled;
            l->signaled = true;
        }
    }
    pthread_mutex_unlock(&l->mu);
    if (sig) (void)eventfd_write(l->efd, 1);
}

size_t sloop_count(sloop *l) { return atomic_load(&l->count); }

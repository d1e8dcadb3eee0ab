#include "zk/zklog.h"

#include "util/clock.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <zookeeper/zookeeper.h>

struct zklog {
    const zs_log *lg;
    FILE *stream;       /* fopencookie over this zklog; NULL until installed */
    pthread_mutex_t mu; /* guards everything below */
    char part[1024];    /* a line not ended yet */
    size_t npart;
    int64_t window_ms;  /* start of the current window */
    int in_window;      /* lines let through in it */
    long dropped;       /* lines dropped since the last report */
};

zklog *zklog_new(const zs_log *lg) {
    zklog *k = calloc(1, sizeof *k);
    if (!k) return NULL;
    k->lg = lg;
    k->window_ms = -1;
    pthread_mutex_init(&k->mu, NULL);
    return k;
}

/* "...:ZOO_ERROR@func@123: message" -> level, "func", message. */
static void parse(const char *line, size_t n, zs_log_level *lvl, const char **msg, size_t *mlen, const char **fn,
                  size_t *fnlen) {
    *lvl = ZS_LOG_WARN;
    *msg = line, *mlen = n, *fn = NULL, *fnlen = 0;
    const char *z = memmem(line, n, ":ZOO_", 5);
    if (!z) return;
    const char *lv = z + 5, *end = line + n;
    const char *at = memchr(lv, '@', (size_t)(end - lv));
    if (!at) return;
    size_t ln = (size_t)(at - lv);
    if (ln == 5 && memcmp(lv, "ERROR", 5) == 0) *lvl = ZS_LOG_ERROR;
    else if (ln == 4 && memcmp(lv, "WARN", 4) == 0) *lvl = ZS_LOG_WARN;
    else *lvl = ZS_LOG_DEBUG; /* INFO, DEBUG */
    const char *f = at + 1;
    const char *at2 = memchr(f, '@', (size_t)(end - f));
    if (!at2) return;
    const char *colon = memchr(at2, ':', (size_t)(end - at2));
    if (!colon) return;
    *fn = f, *fnlen = (size_t)(at2 - f);
    const char *m = colon + 1;
    while (m < end && *m == ' ') m++;
    *msg = m, *mlen = (size_t)(end - m);
}

static void report_dropped(zklog *k) {
    if (k->dropped)
        LOG_WARN(k->lg, "zookeeper client: %ld more lines not logged (rate limit: %d per %d s)", k->dropped, ZKLOG_BURST,
                 ZKLOG_WINDOW_S);
    k->dropped = 0;
}

/* Under k->mu. */
static void one_line(zklog *k, const char *line, size_t n, int64_t now_ms) {
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) n--;
    if (!n) return;
    zs_log_level lvl;
    const char *msg, *fn;
    size_t mlen, fnlen;
    parse(line, n, &lvl, &msg, &mlen, &fn, &fnlen);
    if (k->lg && lvl > k->lg->level) return; /* not counted either */
    if (k->window_ms < 0 || now_ms - k->window_ms >= (int64_t)ZKLOG_WINDOW_S * 1000) {
        report_dropped(k);
        k->window_ms = now_ms;
        k->in_window = 0;
    }
    if (k->in_window >= ZKLOG_BURST) {
        if (k->dropped++ == 0)
            LOG_WARN(k->lg, "zookeeper client: more than %d lines in %d s; the rest are counted, not logged", ZKLOG_BURST,
                     ZKLOG_WINDOW_S);
        return;
    }
    k->in_window++;
    if (fn) zs_log_at(k->lg, lvl, "zookeeper client: %.*s (%.*s)", (int)mlen, msg, (int)fnlen, fn);
    else zs_log_at(k->lg, lvl, "zookeeper client: %.*s", (int)mlen, msg);
}

void zklog_line(zklog *k, const char *line, size_t n, int64_t now_ms) {
    pthread_mutex_lock(&k->mu);
    one_line(k, line, n, now_ms);
    pthread_mutex_unlock(&k->mu);
}

/* The stream's write function: whole lines are handled, a partial one is
 * kept (a line longer than the buffer is cut). */
static ssize_t sink_write(void *cookie, const char *buf, size_t size) {
    zklog *k = cookie;
    int64_t now = zs_clock_ms();
    pthread_mutex_lock(&k->mu);
    for (size_t i = 0; i < size; i++) {
        if (buf[i] == '\n') {
            one_line(k, k->part, k->npart, now);
            k->npart = 0;
        } else if (k->npart < sizeof k->part) {
            k->part[k->npart++] = buf[i];
        }
    }
    pthread_mutex_unlock(&k->mu);
    return (ssize_t)size;
}

void zklog_install(zklog *k) {
    if (!k->stream) {
        cookie_io_functions_t io = {.read = NULL, .write = sink_write, .seek = NULL, .close = NULL};
        k->stream = fopencookie(k, "w", io);
        if (!k->stream) return; /* the library keeps writing to stderr */
        setvbuf(k->stream, NULL, _IOLBF, 4096);
    }
    /* The library's info lines too (a few per connection): they are ours
     * at debug, filtered here, so a log level changed live applies. */
    zoo_set_debug_level(ZOO_LOG_LEVEL_INFO);
    zoo_set_log_stream(k->stream);
}

void zklog_free(zklog *k) {
    if (!k) return;
    if (k->stream) {
        zoo_set_log_stream(NULL);
        fclose(k->stream);
    }
    pthread_mutex_lock(&k->mu);
    report_dropped(k);
    pthread_mutex_unlock(&k->mu);
    pthread_mutex_destroy(&k->mu);
    free(k);
}

/* ssesub: many Server-Sent Events subscribers in one epoll loop, the load
 * generator of B4 (fan-out latency) and B5 (idle streams). A C program so
 * that the generator's own cost stays small next to the gateway's on a
 * 2-core machine.
 *
 *   ssesub --port P [--host 127.0.0.1] [--path /v1/stores/bench/events]
 *          --conns N [--writes W] [--out FILE] [--connect-batch B] [--sparse 1]
 *          [--sources K]
 *
 * Opens N streams (GET PATH, Accept: text/event-stream), prints
 * "ready <opened> <failed>" on stdout once every stream has sent its first
 * bytes, then reads until stdin reaches EOF (the parent closes it) or
 * SIGTERM. Then it prints one JSON line of statistics and, with --out,
 * writes N*W doubles (native endian): for subscriber i and write s, the
 * CLOCK_MONOTONIC time in ms when `"key":"w<s>"` first appeared on stream i
 * (NaN if never), the same clock as Node's process.hrtime.bigint().
 *
 * A PATH holding %ld gets each stream's index there (stream i asks
 * ?prefix=u/<i>/: B9). With --sparse 1 (B9) the streams are expected to
 * see few of the writes: instead of the N*W table, --out gets one record of
 * four doubles per sighting of `"key":"u/<p>/w<s>"`: stream, p, s, time
 * (a sighting may repeat when a key lies in the tail kept between reads:
 * the reader keeps the first).
 *
 * With --sources K (B4, B5 at tens of thousands of streams) stream i
 * connects from 127.0.0.<2 + i % K>: one source address has only the
 * ephemeral port range (about 28,000 ports) towards one server port. The
 * program lifts its own open-file limit to the hard limit (the parent
 * raises the hard one, e.g. with prlimit).
 *
 * Statistics: for each stream the longest silence between two reads after
 * the first one (keepalives: B5), the number of streams that ended or
 * failed, bytes and reads. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF 65536
#define KEEP 32
#define HDR 2048

typedef struct conn {
    int fd;
    bool ok;        /* got "HTTP/1.1 200" */
    bool first;     /* got any byte */
    bool dead;
    bool chunked;   /* Transfer-Encoding: chunked */
    int state;      /* where in the response the next byte is */
    size_t left;    /* bytes left in the current chunk */
    double last;    /* time of the last read */
    double maxgap;  /* longest silence between reads */
    size_t hlen;    /* header bytes seen (kept up to HDR) */
    char hdr[HDR];
    size_t keep;    /* decoded bytes kept from the previous read */
    char tailbuf[KEEP];
} conn;

enum { S_HEADERS, S_SIZE, S_SIZE_EXT, S_SIZE_LF, S_DATA, S_DATA_CR, S_DATA_LF, S_RAW };

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static volatile sig_atomic_t stop;
static int ep;
static long nwrites, ended, events, failed, firsts;
static double *rtimes;
static unsigned long long bytes, reads;
static char scanbuf[BUF + KEEP];
static FILE **dumps; /* SSESUB_DUMP=PREFIX:K: the raw bytes of streams 0..K-1 go to PREFIX.<i> (debugging) */
static long ndump;
static bool sparse;
static double *sp;          /* --sparse: stream, prefix, seq, time; 4 doubles a sighting */
static size_t sp_n, sp_cap; /* sightings, capacity */

static void sp_add(long ci, long pfx, long seq, double t) {
    if (sp_n == sp_cap) {
        size_t cap = sp_cap ? sp_cap * 2 : 4096;
        double *q = realloc(sp, cap * 4 * sizeof *q);
        if (!q) { fprintf(stderr, "ssesub: out of memory\n"); exit(1); }
        sp = q;
        sp_cap = cap;
    }
    double *r = sp + sp_n++ * 4;
    r[0] = (double)ci; r[1] = (double)pfx; r[2] = (double)seq; r[3] = t;
    events++;
}

/* --sparse: "key":"u/<p>/w<s>" in the decoded bytes (tail in front, as scan()). */
static void scan_sparse(conn *c, long ci, const char *p, size_t n, double t) {
    static const char pat[] = "\"key\":\"u/";
    const size_t patlen = sizeof pat - 1;
    if (!n) return;
    memcpy(scanbuf, c->tailbuf, c->keep);
    memcpy(scanbuf + c->keep, p, n);
    size_t len = c->keep + n;
    char *s = scanbuf, *end = scanbuf + len;
    while ((s = memmem(s, (size_t)(end - s), pat, patlen)) != NULL) {
        char *q = s + patlen;
        long a = 0, b = 0;
        int da = 0, db = 0;
        while (q < end && *q >= '0' && *q <= '9') { a = a * 10 + (*q - '0'); q++; da++; }
        if (da && q + 1 < end && q[0] == '/' && q[1] == 'w') {
            q += 2;
            while (q < end && *q >= '0' && *q <= '9') { b = b * 10 + (*q - '0'); q++; db++; }
            if (db && q < end) sp_add(ci, a, b, t);
        }
        s++;
    }
    c->keep = len < KEEP ? len : KEEP;
    memcpy(c->tailbuf, scanbuf + len - c->keep, c->keep);
}

/* Looks for "key":"w<seq>" in the decoded body bytes of stream ci (with
 * the tail of its previous bytes in front, so a pattern cut by a read or a
 * chunk boundary is still found once). */
static void scan(conn *c, long ci, const char *p, size_t n, double t) {
    static const char pat[] = "\"key\":\"w";
    const size_t patlen = sizeof pat - 1;
    if (sparse) { scan_sparse(c, ci, p, n, t); return; }
    if (!nwrites || !n) return;
    memcpy(scanbuf, c->tailbuf, c->keep);
    memcpy(scanbuf + c->keep, p, n);
    size_t len = c->keep + n;
    char *s = scanbuf, *end = scanbuf + len;
    while ((s = memmem(s, (size_t)(end - s), pat, patlen)) != NULL) {
        char *q = s + patlen;
        long v = 0;
        int digits = 0;
        while (q < end && *q >= '0' && *q <= '9') { v = v * 10 + (*q - '0'); q++; digits++; }
        if (digits && q < end && v < nwrites) {
            double *slot = &rtimes[ci * nwrites + v];
            if (isnan(*slot)) { *slot = t; events++; }
        }
        s++;
    }
    c->keep = len < KEEP ? len : KEEP;
    memcpy(c->tailbuf, scanbuf + len - c->keep, c->keep);
}

static int hexval(char ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* Feeds n raw bytes of the response to c's decoder. */
static void feed(conn *c, long ci, const char *p, size_t n, double t) {
    size_t i = 0;
    while (i < n) {
        switch (c->state) {
        case S_HEADERS: {
            char ch = p[i++];
            if (c->hlen < HDR - 1) c->hdr[c->hlen++] = ch;
            c->hdr[c->hlen] = 0;
            if (c->hlen >= 4 && memcmp(c->hdr + c->hlen - 4, "\r\n\r\n", 4) == 0) {
                c->ok = strncmp(c->hdr, "HTTP/1.1 200", 12) == 0 || strncmp(c->hdr, "HTTP/1.0 200", 12) == 0;
                if (!c->ok) failed++;
                c->chunked = strcasestr(c->hdr, "transfer-encoding: chunked") != NULL;
                c->state = c->chunked ? S_SIZE : S_RAW;
                c->left = 0;
            }
            break;
        }
        case S_SIZE: {
            int h = hexval(p[i]);
            if (h >= 0) { c->left = c->left * 16 + (size_t)h; i++; }
            else if (p[i] == '\r') { c->state = S_SIZE_LF; i++; }
            else { c->state = S_SIZE_EXT; i++; }
            break;
        }
        case S_SIZE_EXT:
            if (p[i++] == '\r') c->state = S_SIZE_LF;
            break;
        case S_SIZE_LF:
            i++;
            c->state = c->left ? S_DATA : S_DATA_CR; /* a 0 chunk ends the body; the server closes */
            break;
        case S_DATA: {
            size_t take = n - i < c->left ? n - i : c->left;
            scan(c, ci, p + i, take, t);
            i += take;
            c->left -= take;
            if (!c->left) c->state = S_DATA_CR;
            break;
        }
        case S_DATA_CR:
            i++;
            c->state = S_DATA_LF;
            break;
        case S_DATA_LF:
            i++;
            c->state = S_SIZE;
            c->left = 0;
            break;
        default: /* S_RAW */
            scan(c, ci, p + i, n - i, t);
            i = n;
        }
    }
}

static void handle(conn *cs, long ci) {
    static char buf[BUF];
    conn *c = &cs[ci];
    for (;;) {
        ssize_t r = read(c->fd, buf, BUF);
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (r <= 0) {
            c->dead = true;
            ended++;
            epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
            close(c->fd);
            if (!c->first) { c->first = true; firsts++; failed++; }
            return;
        }
        double t = now_ms();
        bytes += (unsigned long long)r;
        reads++;
        if (!c->first) {
            c->first = true;
            firsts++;
        } else if (t - c->last > c->maxgap) {
            c->maxgap = t - c->last;
        }
        c->last = t;
        if (ci < ndump && dumps[ci]) fwrite(buf, 1, (size_t)r, dumps[ci]);
        feed(c, ci, buf, (size_t)r, t);
    }
}

static void on_term(int sig) { (void)sig; stop = 1; }

static int open_conn(const struct sockaddr_in *sa, const struct sockaddr_in *src, const char *req, size_t reqlen) {
    if (!reqlen) return -1;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    /* The port is chosen at connect(), for the whole 4-tuple: a plain bind
     * to port 0 takes a port no socket on the address holds, TIME_WAIT
     * ones included, so a run right after another (its 17,000 sockets
     * closed by this side) found only ~11,000 free. */
    int no_port = 1;
    if (src) (void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &no_port, sizeof no_port);
    if (src && bind(fd, (const struct sockaddr *)src, sizeof *src) < 0) { close(fd); return -1; }
    if (connect(fd, (const struct sockaddr *)sa, sizeof *sa) < 0) { close(fd); return -1; }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (write(fd, req, reqlen) != (ssize_t)reqlen) { close(fd); return -1; }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

int main(int argc, char **argv) {
    const char *host = "127.0.0.1", *path = "/v1/stores/bench/events", *out = NULL;
    int port = 0, batch = 200, sources = 0;
    long n = 0, writes = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--host") == 0) host = argv[i + 1];
        else if (strcmp(argv[i], "--port") == 0) port = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--path") == 0) path = argv[i + 1];
        else if (strcmp(argv[i], "--conns") == 0) n = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--writes") == 0) writes = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--out") == 0) out = argv[i + 1];
        else if (strcmp(argv[i], "--connect-batch") == 0) batch = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--sparse") == 0) sparse = atoi(argv[i + 1]) != 0;
        else if (strcmp(argv[i], "--sources") == 0) sources = atoi(argv[i + 1]);
        else { fprintf(stderr, "ssesub: unknown flag %s\n", argv[i]); return 2; }
    }
    if (!port || n < 1 || batch < 1) { fprintf(stderr, "ssesub: --port and --conns are required\n"); return 2; }
    if (sources < 0 || sources > 250) { fprintf(stderr, "ssesub: --sources is 0..250\n"); return 2; }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && (rlim_t)n + 64 > rl.rlim_cur)
        fprintf(stderr, "ssesub: open-file limit %llu is too low for %ld streams\n", (unsigned long long)rl.rlim_cur, n);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);

    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) { fprintf(stderr, "ssesub: bad host %s\n", host); return 2; }
    char req[2048];
    bool per_stream = strstr(path, "%ld") != NULL;
    if (per_stream && (strchr(strstr(path, "%ld") + 1, '%') || strchr(path, '%') != strstr(path, "%ld"))) {
        fprintf(stderr, "ssesub: --path may hold one %%ld and no other %%\n");
        return 2;
    }
    char tmpl[1024];
    snprintf(tmpl, sizeof tmpl, "GET %s HTTP/1.1\r\nHost: %s:%d\r\nAccept: text/event-stream\r\n\r\n", path, host, port);
    int reqlen = per_stream ? 0 : snprintf(req, sizeof req, "%s", tmpl);

    conn *cs = calloc((size_t)n, sizeof *cs);
    nwrites = writes;
    if (sparse) writes = nwrites = 0;
    rtimes = writes ? malloc(sizeof(double) * (size_t)n * (size_t)writes) : NULL;
    if (!cs || (writes && !rtimes)) { fprintf(stderr, "ssesub: out of memory\n"); return 1; }
    for (long i = 0; i < (long)n * writes; i++) rtimes[i] = NAN;

    const char *dump = getenv("SSESUB_DUMP");
    if (dump && strchr(dump, ':')) {
        ndump = atol(strrchr(dump, ':') + 1);
        dumps = calloc((size_t)ndump, sizeof *dumps);
        for (long i = 0; i < ndump && dumps; i++) {
            char fn[4096];
            snprintf(fn, sizeof fn, "%.*s.%ld", (int)(strrchr(dump, ':') - dump), dump, i);
            dumps[i] = fopen(fn, "wb");
        }
    }
    ep = epoll_create1(0);
    struct epoll_event evs[512];
    long opened = 0;

    /* Connect in batches, serving what arrives meanwhile. */
    for (long i = 0; i < n && !stop;) {
        long until = i + batch < n ? i + batch : n;
        for (; i < until; i++) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
            if (per_stream) reqlen = snprintf(req, sizeof req, tmpl, i);
#pragma GCC diagnostic pop
            struct sockaddr_in src = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000002u + (uint32_t)(i % (sources ? sources : 1)))};
            int fd = open_conn(&sa, sources ? &src : NULL, req, reqlen > 0 && (size_t)reqlen < sizeof req ? (size_t)reqlen : 0);
            cs[i].fd = fd;
            if (fd < 0) { cs[i].dead = true; failed++; ended++; continue; }
            opened++;
            struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)i};
            epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        }
        double dl = now_ms() + 10000;
        while (firsts + (n - opened) < i && now_ms() < dl && !stop) {
            int k = epoll_wait(ep, evs, 512, 100);
            for (int e = 0; e < k; e++) handle(cs, (long)evs[e].data.u64);
        }
    }
    printf("ready %ld %ld\n", firsts - failed, failed);
    fflush(stdout);

    struct pollfd in = {.fd = 0, .events = POLLIN};
    double t_ready = now_ms();
    for (long i = 0; i < n; i++) { cs[i].maxgap = 0; if (cs[i].first) cs[i].last = t_ready; }
    while (!stop) {
        int k = epoll_wait(ep, evs, 512, 50);
        for (int e = 0; e < k; e++) handle(cs, (long)evs[e].data.u64);
        if (poll(&in, 1, 0) > 0) {
            char b[64];
            if (read(0, b, sizeof b) <= 0) break;
        }
    }
    /* Silence up to now counts too. */
    double t_end = now_ms();
    double maxgap = 0, sumgap = 0;
    long live = 0;
    for (long i = 0; i < n; i++) {
        if (cs[i].dead || !cs[i].ok) continue;
        live++;
        if (t_end - cs[i].last > cs[i].maxgap) cs[i].maxgap = t_end - cs[i].last;
        if (cs[i].maxgap > maxgap) maxgap = cs[i].maxgap;
        sumgap += cs[i].maxgap;
    }
    if (out) {
        FILE *f = fopen(out, "wb");
        if (!f || (writes && fwrite(rtimes, sizeof(double), (size_t)n * (size_t)writes, f) != (size_t)n * (size_t)writes) ||
            (sparse && sp_n && fwrite(sp, 4 * sizeof(double), sp_n, f) != sp_n)) {
            fprintf(stderr, "ssesub: cannot write %s\n", out);
            return 1;
        }
        fclose(f);
        /* Longest silences per stream, for percentiles. */
        char gp[4096];
        snprintf(gp, sizeof gp, "%s.gaps", out);
        f = fopen(gp, "wb");
        if (f) {
            for (long i = 0; i < n; i++) {
                double g = cs[i].dead || !cs[i].ok ? NAN : cs[i].maxgap;
                fwrite(&g, sizeof g, 1, f);
            }
            fclose(f);
        }
    }
    printf("{\"conns\":%ld,\"opened\":%ld,\"failed\":%ld,\"ended\":%ld,\"live\":%ld,\"events\":%ld,\"bytes\":%llu,"
           "\"reads\":%llu,\"max_gap_ms\":%.1f,\"mean_max_gap_ms\":%.1f,\"seconds\":%.3f}\n",
           n, opened, failed, ended, live, events, bytes, reads, maxgap, live ? sumgap / (double)live : 0.0,
           (t_end - t_ready) / 1e3);
    fflush(stdout);
    for (long i = 0; i < n; i++)
        if (!cs[i].dead && cs[i].fd >= 0) close(cs[i].fd);
    for (long i = 0; i < ndump && dumps; i++)
        if (dumps[i]) fclose(dumps[i]);
    free(dumps);
    free(cs);
    free(rtimes);
    free(sp);
    close(ep);
    return 0;
}

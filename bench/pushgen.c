/* pushgen: the HTTP load generator of B1 and B2 (push throughput), in C so
 * that the generator costs the 2-core machine about what the raw ceiling's
 * generator (zkbench, C) costs it. Node's http client, the generator before,
 * took a third of a core at B2's rate and answered 64 clients' trivial
 * requests (GET /healthz against a gateway doing nothing else) at only
 * about the raw ceiling's rate: it measured itself as much as the gateway.
 *
 *   pushgen --port P [--host 127.0.0.1] --store S --clients N --per-push K
 *           [--bytes B] [--seconds S] [--warmup W] [--id PREFIX]
 *
 * N keep-alive connections, one client each (client id PREFIXc<i>, keys
 * PREFIXc<i>:k<j>), each with one push in flight: K puts of values of
 * exactly B bytes ({"i":N,"p":"xxx…"}, as bench/lib.mjs value()), each with
 * `base` = the version the client last saw (0 at first: the keys are new),
 * so every mutation must be `applied`; anything else is an error. Counted:
 * the mutations of the pushes answered within [W, W + S) seconds of the
 * start. Prints one JSON line: pushes, mutations, per_s, the push latency
 * p50/p99 (ms), errors, and the generator's own CPU (cores) in the window.
 * An answer other than 200 is an error and its push is sent again (the
 * same ids: exactly once makes that safe), on a new connection when the
 * answer closed its own; the retry's results may then be `duplicate` (the
 * first attempt was applied: a 503 of unknown outcome), and the next push
 * of such a key goes without `base` to learn its version. More than 10
 * errors, a mutation neither `applied` nor so `duplicate`, or a malformed
 * answer end it with exit status 1. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_ANSWER (8 << 20)

typedef struct client {
    int fd;
    int idx;
    long next_id;   /* the next mutation id */
    long seq;       /* the value's "i" */
    long *ver;      /* per key: the version last seen; -1: unknown (no base sent) */
    bool retried;   /* the push in flight is sent again after an error */
    char *out;      /* the request being sent */
    size_t out_len, out_off;
    char *in;       /* the answer being read */
    size_t in_len, in_cap;
    double sent_at; /* ms */
} client;

typedef struct opts {
    const char *host, *store, *id;
    int port, clients, per_push, bytes;
    double seconds, warmup;
} opts;

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static double cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           (double)ru.ru_stime.tv_usec / 1e6;
}

static void die(const char *what) {
    fprintf(stderr, "pushgen: %s\n", what);
    exit(1);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int connect_to(const opts *o) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o->port)};
    if (inet_pton(AF_INET, o->host, &a.sin_addr) != 1) die("bad --host (an IPv4 address)");
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) die("connect");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* Builds the client's next push into c->out. */
static void build(const opts *o, client *c) {
    size_t cap = 256 + (size_t)o->per_push * (160 + strlen(o->id) * 2 + (size_t)o->bytes);
    char *body = malloc(cap), *req = malloc(cap + 512);
    if (!body || !req) die("out of memory");
    size_t n = (size_t)snprintf(body, cap, "{\"client\":\"%sc%d\",\"mutations\":[", o->id, c->idx);
    for (int j = 0; j < o->per_push; j++) {
        char head[64];
        int hl = snprintf(head, sizeof head, "{\"i\":%ld,\"p\":\"", c->seq);
        int pad = o->bytes - hl - 2;
        n += (size_t)snprintf(body + n, cap - n, "%s{\"id\":%ld,\"key\":\"%sc%d:k%d\",\"op\":\"put\",\"value\":%s", j ? "," : "",
                              c->next_id++, o->id, c->idx, j, head);
        for (int k = 0; k < pad; k++) body[n++] = 'x';
        if (c->ver[j] >= 0) n += (size_t)snprintf(body + n, cap - n, "\"},\"base\":%ld}", c->ver[j]);
        else n += (size_t)snprintf(body + n, cap - n, "\"}}");
    }
    n += (size_t)snprintf(body + n, cap - n, "]}");
    if (n >= cap) die("request too large");
    int hl = snprintf(req, 512,
                      "POST /v1/stores/%s/push HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
                      "Content-Length: %zu\r\n\r\n",
                      o->store, o->host, o->port, n);
    if (hl < 0 || hl >= 512) die("--store or --host too long");
    memcpy(req + hl, body, n);
    free(body);
    free(c->out);
    c->out = req;
    c->out_len = (size_t)hl + n;
    c->out_off = 0;
    c->in_len = 0;
    c->seq++;
    c->retried = false;
}

/* The answer's length once its headers are in (0: not yet); -1 if malformed. */
static long answer_len(client *c, size_t *hdr_end, int *status) {
    char *e = memmem(c->in, c->in_len, "\r\n\r\n", 4);
    if (!e) return 0;
    *hdr_end = (size_t)(e - c->in) + 4;
    if (c->in_len < 12 || strncmp(c->in, "HTTP/1.1 ", 9) != 0) return -1;
    *status = atoi(c->in + 9);
    for (char *p = c->in; p < e; p++) {
        if ((p == c->in || p[-1] == '\n') && strncasecmp(p, "Content-Length:", 15) == 0) return atol(p + 15);
    }
    return -1; /* the gateway's answers to a push carry a length */
}

/* Takes the versions from a complete 200 answer; false if a result is not
 * `applied` (or, for a push sent again, `duplicate`: version unknown). */
static bool take_results(const opts *o, client *c, const char *body) {
    const char *p = strstr(body, "\"results\":[");
    if (!p) return false;
    for (int j = 0; j < o->per_push; j++) {
        p = strstr(p, "{\"id\":");
        if (!p) return false;
        const char *end = strchr(p, '}');
        const char *st = strstr(p, "\"status\":\"applied\"");
        const char *v = strstr(p, "\"version\":");
        const char *dup = c->retried ? strstr(p, "\"status\":\"duplicate\"") : NULL;
        if (end && dup && dup < end && (!st || st > end)) {
            c->ver[j] = -1;
            p = end;
            continue;
        }
        if (!end || !st || st > end || !v || v > end) return false;
        c->ver[j] = strtol(v + 10, NULL, 10);
        p = end;
    }
    return true;
}

int main(int argc, char **argv) {
    opts o = {.host = "127.0.0.1", .store = "bench", .id = "g", .clients = 64, .per_push = 1, .bytes = 100,
              .seconds = 8, .warmup = 2};
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--host")) o.host = v;
        else if (!strcmp(k, "--port")) o.port = atoi(v);
        else if (!strcmp(k, "--store")) o.store = v;
        else if (!strcmp(k, "--id")) o.id = v;
        else if (!strcmp(k, "--clients")) o.clients = atoi(v);
        else if (!strcmp(k, "--per-push")) o.per_push = atoi(v);
        else if (!strcmp(k, "--bytes")) o.bytes = atoi(v);
        else if (!strcmp(k, "--seconds")) o.seconds = atof(v);
        else if (!strcmp(k, "--warmup")) o.warmup = atof(v);
        else die("unknown flag (see the comment at the top of bench/pushgen.c)");
    }
    if (o.port <= 0 || o.clients <= 0 || o.per_push <= 0 || o.bytes < 16 || o.seconds <= 0 || o.warmup < 0)
        die("usage: pushgen --port P --store S --clients N --per-push K [--bytes B>=16] [--seconds S] [--warmup W] [--id X]");

    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) die("epoll_create1");
    client *cl = calloc((size_t)o.clients, sizeof *cl);
    if (!cl) die("out of memory");
    size_t lat_cap = 1 << 16, nlat = 0;
    double *lat = malloc(lat_cap * sizeof *lat);
    if (!lat) die("out of memory");

    double t0 = now_ms(), t_start = t0 + o.warmup * 1e3, t_end = t_start + o.seconds * 1e3;
    double cpu_start = -1, cpu_end = -1;
    long pushes = 0, mutations = 0, errors = 0;
    int busy = 0;
    for (int i = 0; i < o.clients; i++) {
        client *c = &cl[i];
        c->idx = i;
        c->next_id = 1;
        c->ver = calloc((size_t)o.per_push, sizeof *c->ver);
        c->in_cap = 4096;
        c->in = malloc(c->in_cap + 1);
        if (!c->ver || !c->in) die("out of memory");
        c->fd = connect_to(&o);
        build(&o, c);
        c->sent_at = now_ms();
        struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) die("epoll_ctl");
        busy++;
    }
    struct epoll_event evs[256];
    while (busy > 0) {
        double t = now_ms();
        if (cpu_start < 0 && t >= t_start) cpu_start = cpu_s();
        if (cpu_end < 0 && t >= t_end) cpu_end = cpu_s();
        if (t > t_end + 30000) die("answers still missing 30 s after the end");
        int n = epoll_wait(ep, evs, 256, 100);
        if (n < 0 && errno != EINTR) die("epoll_wait");
        for (int i = 0; i < n; i++) {
            client *c = evs[i].data.ptr;
            if (c->out_off < c->out_len) { /* sending */
                ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (w < 0 && (errno == EAGAIN || errno == EINTR)) continue;
                if (w < 0) die("send");
                c->out_off += (size_t)w;
                if (c->out_off == c->out_len) {
                    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
                    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0) die("epoll_ctl");
                }
                continue;
            }
            if (c->in_len == c->in_cap) {
                if (c->in_cap >= MAX_ANSWER) die("answer too large");
                c->in_cap *= 2;
                c->in = realloc(c->in, c->in_cap + 1);
                if (!c->in) die("out of memory");
            }
            ssize_t r = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, MSG_DONTWAIT);
            if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
            if (r <= 0) die(r == 0 ? "the gateway closed a connection" : "recv");
            c->in_len += (size_t)r;
            size_t hdr = 0;
            int status = 0;
            long blen = answer_len(c, &hdr, &status);
            if (blen < 0) die("malformed answer");
            if (blen == 0 && hdr == 0) continue;
            if (c->in_len < hdr + (size_t)blen) continue;
            if (c->in_len > hdr + (size_t)blen) die("bytes after the answer");
            c->in[c->in_len] = '\0';
            double done = now_ms();
            if (status != 200) { /* (a 503 while the store loads): the same push again, same ids */
                fprintf(stderr, "pushgen: answer %d: %.300s\n", status, c->in + hdr);
                if (++errors > 10) die("more than 10 errors");
                bool closes = false;
                for (char *p = c->in; p < c->in + hdr; p++)
                    if ((p == c->in || p[-1] == '\n') && strncasecmp(p, "Connection:", 11) == 0 &&
                        strncasecmp(p + 11 + strspn(p + 11, " "), "close", 5) == 0) closes = true;
                if (closes) { /* its connection ends with this answer: the retry takes a new one */
                    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                    close(c->fd);
                    c->fd = connect_to(&o);
                    struct epoll_event add = {.events = EPOLLOUT, .data.ptr = c};
                    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &add) < 0) die("epoll_ctl");
                }
                c->retried = true;
                c->out_off = 0;
                c->in_len = 0;
                if (closes) continue;
                struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
                if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0) die("epoll_ctl");
                continue;
            }
            if (!take_results(&o, c, c->in + hdr)) {
                fprintf(stderr, "pushgen: answer: %.300s\n", c->in + hdr);
                die("a mutation was not applied");
            }
            pushes++;
            if (done >= t_start && done < t_end) {
                mutations += o.per_push;
                if (nlat == lat_cap) {
                    lat_cap *= 2;
                    lat = realloc(lat, lat_cap * sizeof *lat);
                    if (!lat) die("out of memory");
                }
                lat[nlat++] = done - c->sent_at;
            }
            if (done >= t_end) { /* this client is done */
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                busy--;
                continue;
            }
            build(&o, c);
            c->sent_at = done;
            struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
            if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0) die("epoll_ctl");
        }
    }
    if (cpu_start < 0) cpu_start = cpu_s();
    if (cpu_end < 0) cpu_end = cpu_s();
    qsort(lat, nlat, sizeof *lat, cmp_double);
    double p50 = nlat ? lat[nlat / 2] : 0, p99 = nlat ? lat[(size_t)((double)nlat * 0.99)] : 0;
    printf("{\"pushes\":%ld,\"mutations\":%ld,\"per_s\":%.1f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"errors\":%ld,"
           "\"cpu_cores\":%.3f}\n",
           pushes, mutations, (double)mutations / o.seconds, p50, p99, errors, (cpu_end - cpu_start) / o.seconds);
    for (int i = 0; i < o.clients; i++) {
        close(cl[i].fd);
        free(cl[i].ver);
        free(cl[i].out);
        free(cl[i].in);
    }
    free(cl);
    free(lat);
    close(ep);
    return 0;
}

/* ssefloor: the B4 floor. A storage-less server with the gateway's two
 * routes, in one epoll loop: GET .../events opens a Server-Sent Events
 * stream (chunked, like the gateway's); POST .../push answers 200 with an
 * "applied" result per mutation at once, then sends one `change` event
 * carrying the pushed keys to every open stream. Fan-out latency measured
 * against it is what the load generator, loopback TCP and the kernel cost
 * on this machine, with no ZooKeeper and no gateway.
 *
 *   ssefloor            prints "listening on http://127.0.0.1:PORT", runs until SIGTERM */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAXFD 65536
#define INBUF 65536

typedef struct cn {
    bool used, stream;
    char *in;
    size_t len;
} cn;

static cn conns[MAXFD];
static int streams[MAXFD];
static int nstreams;
static unsigned long long seq;
static volatile sig_atomic_t stop;
static void on_term(int s) { (void)s; stop = 1; }

static void drop(int ep, int fd) {
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
    if (conns[fd].stream)
        for (int i = 0; i < nstreams; i++)
            if (streams[i] == fd) { streams[i] = streams[--nstreams]; break; }
    free(conns[fd].in);
    memset(&conns[fd], 0, sizeof conns[fd]);
}

static void write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return; /* a stream that cannot take it loses the frame: shows as missing */
        p += w;
        n -= (size_t)w;
    }
}

/* Appends to out the "key":"..." members found in body, as change objects. */
static size_t changes_of(const char *body, size_t blen, char *out, size_t cap, const char *cur) {
    size_t o = 0;
    const char *p = body, *end = body + blen;
    static const char k[] = "\"key\":\"";
    while ((p = memmem(p, (size_t)(end - p), k, sizeof k - 1)) != NULL) {
        const char *s = p + sizeof k - 1, *e = memchr(s, '"', (size_t)(end - s));
        if (!e) break;
        int n = snprintf(out + o, cap - o, "%s{\"key\":\"%.*s\",\"version\":1,\"cursor\":\"%s\"}", o ? "," : "", (int)(e - s), s, cur);
        if (n < 0 || (size_t)n >= cap - o) break;
        o += (size_t)n;
        p = e;
    }
    return o;
}

static void handle(int ep, int fd) {
    cn *c = &conns[fd];
    for (;;) {
        char *hend = memmem(c->in, c->len, "\r\n\r\n", 4);
        if (!hend) return;
        size_t hlen = (size_t)(hend - c->in) + 4, blen = 0;
        char *cl = memmem(c->in, hlen, "Content-Length:", 15);
        if (!cl) cl = memmem(c->in, hlen, "content-length:", 15);
        if (cl) blen = strtoul(cl + 15, NULL, 10);
        if (c->len < hlen + blen) return;
        if (strncmp(c->in, "GET ", 4) == 0 && memmem(c->in, hlen, "/events", 7)) {
            static const char h[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                                    "Transfer-Encoding: chunked\r\n\r\n10\r\n: floor events\n\n\r\n";
            write_all(fd, h, sizeof h - 1);
            c->stream = true;
            streams[nstreams++] = fd;
        } else if (strncmp(c->in, "POST ", 5) == 0) {
            char cur[41], resp[1024], *frame = malloc(INBUF), *ch = malloc(INBUF);
            snprintf(cur, sizeof cur, "%040llx", ++seq);
            const char *body = c->in + hlen;
            long id = 0;
            char *ip = memmem(body, blen, "\"id\":", 5);
            if (ip) id = strtol(ip + 5, NULL, 10);
            char rb[256];
            int rn = snprintf(rb, sizeof rb, "{\"results\":[{\"id\":%ld,\"status\":\"applied\",\"version\":1,\"cursor\":\"%s\"}],"
                              "\"lastMutationId\":%ld,\"cursor\":\"%s\"}", id, cur, id, cur);
            int n = snprintf(resp, sizeof resp, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", rn, rb);
            write_all(fd, resp, (size_t)n);
            size_t cl2 = changes_of(body, blen, ch, INBUF / 2, cur);
            int fl = snprintf(frame + 16, INBUF - 32, "id: %s\nevent: change\ndata: {\"changes\":[%.*s],\"cursor\":\"%s\"}\n\n", cur, (int)cl2, ch, cur);
            char hdr[16];
            int hl = snprintf(hdr, sizeof hdr, "%x\r\n", fl);
            memcpy(frame + 16 - hl, hdr, (size_t)hl);
            memcpy(frame + 16 + fl, "\r\n", 2);
            for (int i = 0; i < nstreams; i++) write_all(streams[i], frame + 16 - hl, (size_t)(hl + fl + 2));
            free(frame);
            free(ch);
        } else {
            static const char nf[] = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
            write_all(fd, nf, sizeof nf - 1);
        }
        memmove(c->in, c->in + hlen + blen, c->len - hlen - blen);
        c->len -= hlen + blen;
        (void)ep;
    }
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    if (bind(ls, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(ls, 4096) < 0 || getsockname(ls, (struct sockaddr *)&sa, &sl) < 0) {
        perror("ssefloor");
        return 1;
    }
    printf("listening on http://127.0.0.1:%d\n", ntohs(sa.sin_port));
    fflush(stdout);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = ls}, evs[256];
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
    while (!stop) {
        int k = epoll_wait(ep, evs, 256, 200);
        for (int e = 0; e < k; e++) {
            int fd = evs[e].data.fd;
            if (fd == ls) {
                int c = accept(ls, NULL, NULL);
                if (c < 0) continue;
                if (c >= MAXFD) { close(c); continue; }
                setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                conns[c] = (cn){.used = true, .in = malloc(INBUF)};
                struct epoll_event ce = {.events = EPOLLIN, .data.fd = c};
                epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
                continue;
            }
            cn *c = &conns[fd];
            ssize_t r = read(fd, c->in + c->len, INBUF - c->len);
            if (r <= 0) { if (r < 0 && errno == EAGAIN) continue; drop(ep, fd); continue; }
            c->len += (size_t)r;
            handle(ep, fd);
            if (c->len == INBUF) drop(ep, fd);
        }
    }
    return 0;
}

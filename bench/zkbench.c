/* zkbench: the raw ZooKeeper side of the benchmarks (bench/run.sh).
 *
 *   zkbench multi --zk C --path P --threads T --ops K --bytes B --seconds S [--warmup W] [--sessions N]
 *       T threads, each a loop of synchronous zoo_multi of K setData (K
 *       znodes of its own under P, created first), B-byte values. The B1
 *       ceiling. --sessions: how many ZooKeeper sessions the threads share
 *       (default 1, like the gateway).
 *   zkbench aset --zk C --path P --inflight F --keys K --bytes B --seconds S [--warmup W]
 *       zoo_aset on K znodes under P with F requests in flight. The B2 ceiling.
 *   zkbench load --zk C --root R --store S --count N --bytes B [--first I] [--prefix X] [--per-prefix P]
 *       creates N records (keys X%08d from I) straight in the store's znode
 *       layout (the store must exist), values of B bytes of compact JSON,
 *       with zoo_amulti batches of 500 creates, 16 in flight. With
 *       --per-prefix P the keys are X<i/P>/n<i%P> instead (u/7/n42): P
 *       records under each of N/P prefixes, as many users in one store (B9).
 *   zkbench read --zk C --root R --store S [--watch]
 *       lists the store's record buckets and reads every record with async gets
 *       (data watches with --watch, as a gateway's mirror does). The ceiling
 *       for reading a store: what the ZooKeeper C client alone takes.
 *
 * Every command takes --resolve-delay MS (default 60000): see connect_zk(),
 * and --digest-file F: authenticate as the gateway's ZooKeeper identity
 * (one line user:password) and create with its ACL.
 *
 * Each prints one JSON object on stdout. The timing is done here, in the
 * load generator, never by the gateway. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <zookeeper/zookeeper.h>

#include "zk/acl.h"
#include "zk/layout.h"
#include "util/err.h"

/* ---- common ------------------------------------------------------------- */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Prints "zkbench: <what><a>" (and the ZooKeeper error rc, when not 0), exits 1. */
static void die(const char *what, const char *a, int rc) {
    fprintf(stderr, "zkbench: %s%s", what, a);
    if (rc) fprintf(stderr, ": %s (%d)", zerror(rc), rc);
    fputc('\n', stderr);
    exit(1);
}

typedef struct opts {
    const char *zk, *path, *root, *store, *prefix, *digest_file;
    int threads, ops, bytes, inflight, keys, sessions, resolve_delay;
    long count, first, per_prefix;
    double seconds, warmup;
    bool watch;
} opts;

static void parse(int argc, char **argv, opts *o) {
    *o = (opts){.zk = "127.0.0.1:2181", .path = "/zkbench", .root = "/zoosync", .store = "bench", .prefix = "r",
                .threads = 16, .ops = 100, .bytes = 100, .inflight = 64, .keys = 1024, .sessions = 1,
                .count = 1000, .first = 0, .seconds = 5, .warmup = 1, .resolve_delay = 60000};
    for (int i = 2; i < argc; i++) {
        const char *f = argv[i];
        if (strcmp(f, "--watch") == 0) { o->watch = true; continue; }
        if (i + 1 >= argc) die("a value is needed after ", f, 0);
        const char *v = argv[++i];
        if (strcmp(f, "--zk") == 0) o->zk = v;
        else if (strcmp(f, "--path") == 0) o->path = v;
        else if (strcmp(f, "--root") == 0) o->root = v;
        else if (strcmp(f, "--store") == 0) o->store = v;
        else if (strcmp(f, "--prefix") == 0) o->prefix = v;
        else if (strcmp(f, "--threads") == 0) o->threads = atoi(v);
        else if (strcmp(f, "--ops") == 0) o->ops = atoi(v);
        else if (strcmp(f, "--bytes") == 0) o->bytes = atoi(v);
        else if (strcmp(f, "--inflight") == 0) o->inflight = atoi(v);
        else if (strcmp(f, "--keys") == 0) o->keys = atoi(v);
        else if (strcmp(f, "--sessions") == 0) o->sessions = atoi(v);
        else if (strcmp(f, "--resolve-delay") == 0) o->resolve_delay = atoi(v);
        else if (strcmp(f, "--digest-file") == 0) o->digest_file = v;
        else if (strcmp(f, "--count") == 0) o->count = atol(v);
        else if (strcmp(f, "--first") == 0) o->first = atol(v);
        else if (strcmp(f, "--per-prefix") == 0) o->per_prefix = atol(v);
        else if (strcmp(f, "--seconds") == 0) o->seconds = atof(v);
        else if (strcmp(f, "--warmup") == 0) o->warmup = atof(v);
        else die("unknown flag ", f, 0);
    }
    if (o->threads < 1 || o->ops < 1 || o->bytes < 8 || o->inflight < 1 || o->keys < 1 || o->sessions < 1)
        die("bad numbers", "", 0);
}

static pthread_mutex_t conn_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t conn_cv = PTHREAD_COND_INITIALIZER;

static void conn_watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx) {
    (void)zh; (void)path; (void)ctx;
    if (type == ZOO_SESSION_EVENT) {
        pthread_mutex_lock(&conn_mu);
        pthread_cond_broadcast(&conn_cv);
        pthread_mutex_unlock(&conn_mu);
        if (state == ZOO_EXPIRED_SESSION_STATE) { fprintf(stderr, "zkbench: session expired\n"); exit(1); }
    }
}

/* The C client re-resolves the server list (getaddrinfo, which asks the
 * kernel for every interface address over netlink) each time it checks its
 * socket, unless told otherwise: on a busy client that is a fifth of its CPU.
 * The ceilings use the client as tuned as it gets (--resolve-delay 0 gives
 * the library default). */
static int resolve_delay_ms = 60000;
/* --digest-file F: the identity to authenticate as, and the ACL of what
 * load creates (as the gateway's own znodes: see src/zk/acl.h). */
static zk_ident ident;

static zhandle_t *connect_zk(const char *hosts) {
    zhandle_t *zh = zookeeper_init(hosts, conn_watcher, 15000, NULL, NULL, 0);
    if (!zh) die("cannot connect to ", hosts, errno);
    if (resolve_delay_ms && zoo_set_servers_resolution_delay(zh, resolve_delay_ms) != ZOK) die("resolution delay", "", 0);
    if (ident.on && zoo_add_auth(zh, "digest", ident.cred, (int)strlen(ident.cred), NULL, NULL) != ZOK) die("add_auth", "", 0);
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 20;
    pthread_mutex_lock(&conn_mu);
    while (zoo_state(zh) != ZOO_CONNECTED_STATE)
        if (pthread_cond_timedwait(&conn_cv, &conn_mu, &dl) == ETIMEDOUT) die("no session in 20 s with ", hosts, 0);
    pthread_mutex_unlock(&conn_mu);
    return zh;
}

/* A compact JSON value of exactly n bytes (n >= 8): {"i":N,"p":"xxx"}. */
static char *json_value(long i, int n) {
    char *v = malloc((size_t)n + 1);
    if (!v) exit(1);
    int h = snprintf(v, (size_t)n + 1, "{\"i\":%ld,\"p\":\"", i);
    if (h + 2 > n) { snprintf(v, (size_t)n + 1, "%*ld", n, i); return v; }
    memset(v + h, 'x', (size_t)(n - h - 2));
    v[n - 2] = '"';
    v[n - 1] = '}';
    v[n] = 0;
    return v;
}

static void ensure_path(zhandle_t *zh, const char *path) {
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == 0) {
            char c = *p;
            *p = 0;
            int rc = zoo_create(zh, buf, "", 0, zk_ident_acl(&ident), 0, NULL, 0);
            if (rc != ZOK && rc != ZNODEEXISTS) die("create ", buf, rc);
            *p = c;
            if (!c) break;
        }
    }
}

/* Creates count znodes path/<tag>-<i> (if missing) with multis of 500. */
static char **make_nodes(zhandle_t *zh, const char *path, const char *tag, int count, const char *val, int vlen) {
    char **paths = calloc((size_t)count, sizeof *paths);
    zoo_op_t *ops = calloc(500, sizeof *ops);
    zoo_op_result_t *res = calloc(500, sizeof *res);
    if (!paths || !ops || !res) exit(1);
    for (int i = 0; i < count; i++)
        if (asprintf(&paths[i], "%s/%s-%06d", path, tag, i) < 0) exit(1);
    for (int i = 0; i < count; i += 500) {
        int n = count - i < 500 ? count - i : 500;
        for (int j = 0; j < n; j++) zoo_create_op_init(&ops[j], paths[i + j], val, vlen, zk_ident_acl(&ident), 0, NULL, 0);
        int rc = zoo_multi(zh, n, ops, res);
        if (rc == ZNODEEXISTS) {
            for (int j = 0; j < n; j++) {
                rc = zoo_create(zh, paths[i + j], val, vlen, zk_ident_acl(&ident), 0, NULL, 0);
                if (rc != ZOK && rc != ZNODEEXISTS) die("create ", paths[i + j], rc);
            }
        } else if (rc != ZOK) {
            die("multi create under ", path, rc);
        }
    }
    free(ops);
    free(res);
    return paths;
}

/* ---- multi: T threads of synchronous zoo_multi of K setData ---------------- */

typedef struct mthread {
    zhandle_t *zh;
    char **paths;
    const opts *o;
    double t_start, t_end;  /* counting window */
    long counted, multis;
    int failures;
} mthread;

static void *multi_loop(void *arg) {
    mthread *t = arg;
    const opts *o = t->o;
    zoo_op_t *ops = calloc((size_t)o->ops, sizeof *ops);
    zoo_op_result_t *res = calloc((size_t)o->ops, sizeof *res);
    char *val = json_value(0, o->bytes);
    if (!ops || !res) exit(1);
    for (;;) {
        double t0 = now_s();
        if (t0 >= t->t_end) break;
        for (int j = 0; j < o->ops; j++) zoo_set_op_init(&ops[j], t->paths[j], val, o->bytes, -1, NULL);
        int rc = zoo_multi(t->zh, o->ops, ops, res);
        double t1 = now_s();
        if (rc != ZOK) { t->failures++; continue; }
        t->multis++;
        if (t1 >= t->t_start && t1 < t->t_end) t->counted += o->ops;
    }
    free(ops);
    free(res);
    free(val);
    return NULL;
}

static int cmd_multi(const opts *o) {
    zhandle_t **zhs = calloc((size_t)o->sessions, sizeof *zhs);
    for (int s = 0; s < o->sessions; s++) zhs[s] = connect_zk(o->zk);
    ensure_path(zhs[0], o->path);
    char *val = json_value(0, o->bytes);
    mthread *ts = calloc((size_t)o->threads, sizeof *ts);
    pthread_t *th = calloc((size_t)o->threads, sizeof *th);
    for (int i = 0; i < o->threads; i++) {
        char tag[32];
        snprintf(tag, sizeof tag, "t%03d", i);
        ts[i].zh = zhs[i % o->sessions];
        ts[i].paths = make_nodes(zhs[0], o->path, tag, o->ops, val, o->bytes);
        ts[i].o = o;
    }
    double t0 = now_s();
    for (int i = 0; i < o->threads; i++) {
        ts[i].t_start = t0 + o->warmup;
        ts[i].t_end = t0 + o->warmup + o->seconds;
        pthread_create(&th[i], NULL, multi_loop, &ts[i]);
    }
    long counted = 0, multis = 0;
    int failures = 0;
    for (int i = 0; i < o->threads; i++) {
        pthread_join(th[i], NULL);
        counted += ts[i].counted;
        multis += ts[i].multis;
        failures += ts[i].failures;
    }
    printf("{\"mode\":\"multi\",\"threads\":%d,\"sessions\":%d,\"ops_per_multi\":%d,\"bytes\":%d,\"seconds\":%.3f,"
           "\"mutations\":%ld,\"per_s\":%.1f,\"multis\":%ld,\"failures\":%d}\n",
           o->threads, o->sessions, o->ops, o->bytes, o->seconds, counted, (double)counted / o->seconds, multis, failures);
    for (int s = 0; s < o->sessions; s++) zookeeper_close(zhs[s]);
    for (int i = 0; i < o->threads; i++) {
        for (int j = 0; j < o->ops; j++) free(ts[i].paths[j]);
        free(ts[i].paths);
    }
    free(ts);
    free(th);
    free(zhs);
    free(val);
    return failures ? 1 : 0;
}

/* ---- aset: F async setData in flight ---------------------------------------- */

static struct {
    zhandle_t *zh;
    char **paths;
    char *val;
    int bytes, keys;
    double t_start, t_end;
    atomic_long counted, issued_total, failures;
    atomic_int inflight;
    atomic_uint next;
} as;

static void aset_issue(void);

static void aset_done(int rc, const struct Stat *st, const void *data) {
    (void)st; (void)data;
    double t = now_s();
    if (rc != ZOK) atomic_fetch_add(&as.failures, 1);
    else if (t >= as.t_start && t < as.t_end) atomic_fetch_add(&as.counted, 1);
    if (t < as.t_end) aset_issue();
    else atomic_fetch_sub(&as.inflight, 1);
}

static void aset_issue(void) {
    unsigned k = atomic_fetch_add(&as.next, 1) % (unsigned)as.keys;
    atomic_fetch_add(&as.issued_total, 1);
    int rc = zoo_aset(as.zh, as.paths[k], as.val, as.bytes, -1, aset_done, NULL);
    if (rc != ZOK) { atomic_fetch_add(&as.failures, 1); atomic_fetch_sub(&as.inflight, 1); }
}

static int cmd_aset(const opts *o) {
    as.zh = connect_zk(o->zk);
    ensure_path(as.zh, o->path);
    as.val = json_value(0, o->bytes);
    as.bytes = o->bytes;
    as.keys = o->keys;
    as.paths = make_nodes(as.zh, o->path, "a", o->keys, as.val, o->bytes);
    double t0 = now_s();
    as.t_start = t0 + o->warmup;
    as.t_end = t0 + o->warmup + o->seconds;
    atomic_store(&as.inflight, o->inflight);
    for (int i = 0; i < o->inflight; i++) aset_issue();
    while (atomic_load(&as.inflight) > 0) {
        if (now_s() > as.t_end + 30) die("async requests still pending 30 s after the end", "", 0);
        usleep(10000);
    }
    long counted = atomic_load(&as.counted);
    printf("{\"mode\":\"aset\",\"inflight\":%d,\"keys\":%d,\"bytes\":%d,\"seconds\":%.3f,\"mutations\":%ld,"
           "\"per_s\":%.1f,\"failures\":%ld}\n",
           o->inflight, o->keys, o->bytes, o->seconds, counted, (double)counted / o->seconds, atomic_load(&as.failures));
    zookeeper_close(as.zh);
    for (int i = 0; i < o->keys; i++) free(as.paths[i]);
    free(as.paths);
    free(as.val);
    return atomic_load(&as.failures) ? 1 : 0;
}

/* ---- load: records straight into a store's layout ------------------------------ */

#define LOAD_BATCH 500
#define LOAD_INFLIGHT 16

#define LOAD_ATTEMPTS 50

typedef struct ld_batch {
    int n;
    int attempts; /* submissions so far */
    struct ld_batch *next; /* in ld_retry */
    zoo_op_t ops[LOAD_BATCH];
    zoo_op_result_t res[LOAD_BATCH];
    char *paths[LOAD_BATCH];
    char *vals[LOAD_BATCH];
} ld_batch;

static pthread_mutex_t ld_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ld_cv = PTHREAD_COND_INITIALIZER;
static int ld_inflight, ld_failed, ld_retried;
static ld_batch *ld_retry; /* batches to send again (under ld_mu) */

static void ld_free(ld_batch *b) {
    for (int i = 0; i < b->n; i++) { free(b->paths[i]); free(b->vals[i]); }
    free(b);
}

/* A batch whose answer was lost (the connection, a slow ensemble) is sent
 * again; a multi is all or nothing, so "node exists" on a later attempt
 * means an earlier one was applied. */
static void ld_done(int rc, const void *data) {
    ld_batch *b = (ld_batch *)data;
    bool again = (rc == ZCONNECTIONLOSS || rc == ZOPERATIONTIMEOUT) && b->attempts < LOAD_ATTEMPTS;
    if (rc == ZNODEEXISTS && b->attempts > 1) rc = ZOK;
    if (rc != ZOK && !again) {
        fprintf(stderr, "zkbench: load multi failed: %s\n", zerror(rc));
        ld_failed = 1;
    }
    if (!again) ld_free(b);
    pthread_mutex_lock(&ld_mu);
    ld_inflight--;
    if (again) { b->next = ld_retry; ld_retry = b; ld_retried++; }
    pthread_cond_signal(&ld_cv);
    pthread_mutex_unlock(&ld_mu);
}

static void ld_submit(zhandle_t *zh, ld_batch *b) {
    pthread_mutex_lock(&ld_mu);
    while (ld_inflight >= LOAD_INFLIGHT) pthread_cond_wait(&ld_cv, &ld_mu);
    ld_inflight++;
    pthread_mutex_unlock(&ld_mu);
    b->attempts++;
    int rc = zoo_amulti(zh, b->n, b->ops, b->res, ld_done, b);
    if (rc != ZOK) die("zoo_amulti", "", rc);
}

/* Sends the batches waiting to be sent again (after a pause: the ensemble
 * is reconnecting). */
static void ld_resend(zhandle_t *zh) {
    pthread_mutex_lock(&ld_mu);
    ld_batch *list = ld_retry;
    ld_retry = NULL;
    pthread_mutex_unlock(&ld_mu);
    if (list) usleep(200000);
    while (list) {
        ld_batch *b = list;
        list = b->next;
        ld_submit(zh, b);
    }
}

static int cmd_load(const opts *o) {
    zhandle_t *zh = connect_zk(o->zk);
    char *spath = layout_store_path(o->root, o->store);
    struct Stat st;
    int rc = zoo_exists(zh, spath, 0, &st);
    if (rc != ZOK) die("store znode ", spath, rc);
    double t0 = now_s();
    long raw_bytes = 0;
    for (long i = 0; i < o->count && !ld_failed; i += LOAD_BATCH) {
        ld_batch *b = calloc(1, sizeof *b);
        if (!b) exit(1);
        b->n = (int)(o->count - i < LOAD_BATCH ? o->count - i : LOAD_BATCH);
        for (int j = 0; j < b->n; j++) {
            char key[64];
            long k = o->first + i + j;
            int klen = o->per_prefix > 0 ? snprintf(key, sizeof key, "%s%ld/n%ld", o->prefix, k / o->per_prefix, k % o->per_prefix)
                                         : snprintf(key, sizeof key, "%s%08ld", o->prefix, k);
            b->paths[j] = layout_record_path(o->root, o->store, key, (size_t)klen);
            b->vals[j] = json_value(o->first + i + j, o->bytes);
            raw_bytes += klen + o->bytes;
            zoo_create_op_init(&b->ops[j], b->paths[j], b->vals[j], o->bytes, zk_ident_acl(&ident), 0, NULL, 0);
        }
        ld_submit(zh, b);
        ld_resend(zh);
    }
    for (;;) { /* the last answers, and what must be sent again */
        pthread_mutex_lock(&ld_mu);
        while (ld_inflight > 0 && !ld_retry) pthread_cond_wait(&ld_cv, &ld_mu);
        bool done = ld_inflight == 0 && !ld_retry;
        pthread_mutex_unlock(&ld_mu);
        if (done || ld_failed) break;
        ld_resend(zh);
    }
    pthread_mutex_lock(&ld_mu);
    while (ld_inflight > 0) pthread_cond_wait(&ld_cv, &ld_mu);
    pthread_mutex_unlock(&ld_mu);
    if (ld_retried) fprintf(stderr, "zkbench: load: %d batches sent again after a lost answer\n", ld_retried);
    double t = now_s() - t0;
    printf("{\"mode\":\"load\",\"records\":%ld,\"raw_bytes\":%ld,\"seconds\":%.3f,\"per_s\":%.1f}\n", o->count, raw_bytes, t,
           (double)o->count / t);
    zookeeper_close(zh);
    free(spath);
    return ld_failed;
}

/* ---- read: the whole store, straight from ZooKeeper ------------------------------ */

#define READ_INFLIGHT 20000

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    long inflight, records, bytes, failures;
} rd = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, 0};

static void rd_watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx) {
    (void)zh; (void)type; (void)state; (void)path; (void)ctx;
}

static void rd_done(int rc, const char *value, int len, const struct Stat *st, const void *data) {
    (void)value; (void)st;
    free((void *)data);
    pthread_mutex_lock(&rd.mu);
    if (rc == ZOK) { rd.records++; rd.bytes += len > 0 ? len : 0; }
    else rd.failures++;
    rd.inflight--;
    pthread_cond_signal(&rd.cv);
    pthread_mutex_unlock(&rd.mu);
}

static int cmd_read(const opts *o) {
    zhandle_t *zh = connect_zk(o->zk);
    char *spath = layout_store_path(o->root, o->store);
    double t0 = now_s();
    long names = 0;
    /* The buckets, whatever the layout names them: the children of <store>/r. */
    char rpath[1100];
    snprintf(rpath, sizeof rpath, "%s/r", spath);
    struct String_vector buckets = {0, NULL};
    int rc0 = zoo_get_children(zh, rpath, 0, &buckets);
    if (rc0 != ZOK) die("list ", rpath, rc0);
    for (int b = 0; b < buckets.count; b++) {
        char bpath[1200];
        snprintf(bpath, sizeof bpath, "%s/%s", rpath, buckets.data[b]);
        struct String_vector kids = {0, NULL};
        int rc = o->watch ? zoo_wget_children(zh, bpath, rd_watcher, NULL, &kids) : zoo_get_children(zh, bpath, 0, &kids);
        if (rc != ZOK) die("list ", bpath, rc);
        for (int i = 0; i < kids.count; i++) {
            char *p = NULL;
            if (asprintf(&p, "%s/%s", bpath, kids.data[i]) < 0) exit(1);
            pthread_mutex_lock(&rd.mu);
            while (rd.inflight >= READ_INFLIGHT) pthread_cond_wait(&rd.cv, &rd.mu);
            rd.inflight++;
            pthread_mutex_unlock(&rd.mu);
            rc = o->watch ? zoo_awget(zh, p, rd_watcher, NULL, rd_done, p) : zoo_aget(zh, p, 0, rd_done, p);
            if (rc != ZOK) die("get ", p, rc);
            names++;
        }
        deallocate_String_vector(&kids);
    }
    int buckets_count = buckets.count;
    deallocate_String_vector(&buckets);
    pthread_mutex_lock(&rd.mu);
    while (rd.inflight > 0) pthread_cond_wait(&rd.cv, &rd.mu);
    pthread_mutex_unlock(&rd.mu);
    double t = now_s() - t0;
    printf("{\"mode\":\"read\",\"watch\":%s,\"buckets\":%d,\"names\":%ld,\"records\":%ld,\"value_bytes\":%ld,\"seconds\":%.3f,"
           "\"per_s\":%.1f,\"failures\":%ld}\n",
           o->watch ? "true" : "false", buckets_count, names, rd.records, rd.bytes, t, (double)rd.records / t, rd.failures);
    zookeeper_close(zh);
    free(spath);
    return rd.failures ? 1 : 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: zkbench multi|aset|load|read [flags] (see the top of bench/zkbench.c)\n");
        return 2;
    }
    zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);
    opts o;
    parse(argc, argv, &o);
    resolve_delay_ms = o.resolve_delay;
    char why[ZS_ERRLEN] = "";
    if (o.digest_file && zk_ident_load(&ident, o.digest_file, true, why, sizeof why) < 0) die("--digest-file: ", why, 0);
    if (strcmp(argv[1], "multi") == 0) return cmd_multi(&o);
    if (strcmp(argv[1], "aset") == 0) return cmd_aset(&o);
    if (strcmp(argv[1], "load") == 0) return cmd_load(&o);
    if (strcmp(argv[1], "read") == 0) return cmd_read(&o);
    fprintf(stderr, "zkbench: unknown command %s\n", argv[1]);
    return 2;
}

/* zoosyncd: the zoosync gateway. Parses flags, wires the modules together,
 * and waits for SIGTERM/SIGINT. All process-wide state lives here. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#ifdef ZOOSYNC_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

#include "auth/auth.h"
#include "cache/mirror.h"
#include "http/api.h"
#include "http/events.h"
#include "sync/commit.h"
#include "sync/gc.h"
#include "http/server.h"
#include "http/tls.h"
#include "sync/stores.h"
#include "util/clock.h"
#include "util/err.h"
#include "util/log.h"
#include "util/metrics.h"
#include "zk/layout.h"
#include "zk/zkc.h"

#define MAX_LIST 64

typedef struct options {
    char listen_host[64];
    uint16_t listen_port;
    const char *zk;
    const char *root;
    const char *jwt_secret_file;
    const char *jwt_public_key;
    const char *jwt_jwks;
    const char *jwt_audience;
    const char *jwt_issuer;
    size_t jwt_max_lifetime;
    size_t max_body;
    size_t max_tx_bytes;       /* 0 until given or derived from zk_heap_mb */
    size_t zk_heap_mb;
    size_t rate_limit;              /* requests/s per subject, 0: off */
    long long write_bytes_per_sec;  /* -1 until given or derived from zk_heap_mb; 0: off */
    long long write_mutations_per_sec;
    const char *create_store[MAX_LIST + 1];
    int ncreate;
    const char *cors[MAX_LIST + 1];
    int ncors;
    int workers;
    int session_timeout_ms;
    int keepalive_ms;
    size_t max_streams;
    int gc_interval_s;
    const char *web_dir;
    const char *client_dir;
    const char *zk_digest_file;
    const char *tls_cert_file;  /* both or neither: HTTPS only */
    const char *tls_key_file;
    bool zk_world_read;
    bool zk_apply_acl;
    httpd_limits limits; /* the HTTP edge flags, parsed by server.c */
    zs_log log;
    char **cfg_argv;  /* the --config file's settings as flags (owned: optarg points into them) */
    char *cors_owned[MAX_LIST]; /* copies of the CORS origins applied on SIGHUP (owned) */
    int ncors_owned;
    int cfg_argc;
} options;

static void usage(FILE *f) {
    fprintf(f,
            "usage: zoosyncd [options]   (--version: print the version)\n"
            "  --listen ADDR:PORT        where to serve HTTP (default 127.0.0.1:8080; port 0 = any free port)\n"
            "  --zk HOST:PORT,...        ZooKeeper ensemble (default 127.0.0.1:2181)\n"
            "  --root PATH               znode under which zoosync keeps its data (default /zoosync;\n"
            "                            a plain absolute path of at most 256 bytes)\n"
            "  --jwt-secret-file F       verify HS256 tokens with the secret in F (one trailing newline ignored)\n"
            "  --jwt-public-key F        verify RS256/ES256 tokens with the PEM public key in F\n"
            "  --jwt-jwks F              verify tokens with the JSON Web Key Set in F (RSA, EC P-256, oct keys),\n"
            "                            chosen by the token's kid; SIGHUP reads the file (and the others) again\n"
            "  --jwt-audience AUD        require AUD in the tokens' aud claim\n"
            "  --jwt-issuer ISS          require the tokens' iss claim to be ISS\n"
            "  --jwt-max-lifetime S      refuse tokens living longer than S seconds, exp - iat (default 86400)\n"
            "  --max-body BYTES          largest request body (default 4194304)\n"
            "  --max-tx-bytes BYTES      largest ZooKeeper transaction (multi) the gateway sends, and so the largest\n"
            "                            value and tx group (default: from --zk-heap-mb, at most 1000000)\n"
            "  --zk-heap-mb MB           heap of the smallest ZooKeeper server (default 1024): ZooKeeper keeps its\n"
            "                            last 500 transactions in memory, so one may carry at most MB*1MiB/3600 bytes\n"
            "  --rate-limit N            at most N requests per second per subject (token sub, or client address\n"
            "                            without one), burst 2N, on this gateway; past it 429 (default 0: off)\n"
            "  --write-bytes-per-sec B   write budget per subject: bytes ZooKeeper writes for pushes and PUTs per\n"
            "                            second, burst 2B (default with authentication: MB*1MiB/256 from\n"
            "                            --zk-heap-mb; without: 0, off)\n"
            "  --write-mutations-per-sec M  write budget per subject: mutations per second, burst 2M\n"
            "                            (default with authentication: MB*4 from --zk-heap-mb; without: 0, off)\n"
            "  --create-store NAME       create this store at start if missing (repeatable)\n"
            "  --cors-origin ORIGIN      allow cross-origin requests from ORIGIN (repeatable)\n"
            "  --workers N               requests served at once (default 64; each waits on ZooKeeper while it holds one):\n"
            "                            the worker threads of --http-model pool; in model connection, how many\n"
            "                            connection threads may run a request at once\n"
            "  --web DIR                 serve the static files in DIR at / (the demo app)\n"
            "  --client-dir DIR          serve DIR at /client/ (zoosync.js)\n"
            "  --keepalive-ms MS         event-stream keepalive interval (default 15000)\n"
            "  --max-streams N           most event streams open at once (default 20000)\n"
            "  --gc-interval S           collect old tombstones at least every S seconds (default 60)\n"
            "  --session-timeout MS      ZooKeeper session timeout (default 10000)\n"
            "  --tls-cert F --tls-key F  serve HTTPS only (TLS 1.2 and 1.3) with the PEM certificate chain in F\n"
            "                            and its private key (read again on SIGHUP; open connections keep theirs)\n"
            "  --zk-digest-file F        authenticate to ZooKeeper as user:password (one line in F); every znode\n"
            "                            created gets the ACL \"this identity: all; world: read\"\n"
            "  --zk-acl-world-read yes|no  with --zk-digest-file: whether anyone may read (default yes)\n"
            "  --zk-apply-acl            at start, set that ACL on --root and everything below it (a tree made\n"
            "                            before --zk-digest-file; pipelined a level at a time)\n");
    httpd_limits_usage(f);
    fprintf(f,
            "  --log-level LEVEL         error, warn, info (default) or debug\n"
            "  --log-format text|json    one line per entry as text (default) or as a JSON object\n"
            "  --config FILE             settings, one \"name = value\" per line (these flags without their dashes);\n"
            "                            flags given on the command line override them; SIGHUP reads it again\n"
            "                            (log-level, log-format, cors-origin, rate-limit change live)\n"
            "  --help                    this text\n"
            "Without --jwt-secret-file or --jwt-public-key, authentication is off and\n"
            "zoosyncd listens on loopback addresses only.\n");
}

static int parse_size(const char *flag, const char *s, size_t min, size_t *out) {
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end || v < min) {
        fprintf(stderr, "zoosyncd: %s: '%s' is not a number >= %zu\n", flag, s, min);
        return -1;
    }
    *out = (size_t)v;
    return 0;
}

static int parse_listen(const char *s, options *o) {
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s) { fprintf(stderr, "zoosyncd: --listen: expected ADDR:PORT, got '%s'\n", s); return -1; }
    size_t hl = (size_t)(colon - s);
    if (s[0] == '[' && hl > 2 && s[hl - 1] == ']') { s++; hl -= 2; }
    if (hl >= sizeof o->listen_host) { fprintf(stderr, "zoosyncd: --listen: address too long\n"); return -1; }
    memcpy(o->listen_host, s, hl);
    o->listen_host[hl] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (!colon[1] || *end || port < 0 || port > 65535) {
        fprintf(stderr, "zoosyncd: --listen: bad port in '%s'\n", s);
        return -1;
    }
    o->listen_port = (uint16_t)port;
    return 0;
}

static bool is_loopback(const char *host) {
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, host, &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1) return IN6_IS_ADDR_LOOPBACK(&a6);
    return false;
}

/* Reads a --config file: one setting per line, "name = value" (a long flag
 * without its dashes; "name = true" for a flag without value), blank lines
 * and lines starting with '#' ignored. Fills o->cfg_argv with "--name" and
 * value strings. Unknown names, a missing value, or "config" itself are
 * errors naming the line. */
static int config_args(const char *path, const struct option *longs, options *o) {
    FILE *f = fopen(path, "r");
    if (!f) { fprintf(stderr, "zoosyncd: --config %s: %s\n", path, strerror(errno)); return -1; }
    GPtrArray *out = g_ptr_array_new();
    char line[4096];
    int n = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        n++;
        size_t len = strlen(line);
        if (len == sizeof line - 1 && line[len - 1] != '\n') { fprintf(stderr, "zoosyncd: %s:%d: line too long\n", path, n); rc = -1; break; }
        g_strstrip(line);
        if (!line[0] || line[0] == '#') continue;
        char *eq = strchr(line, '=');
        char *name = line, *value = NULL;
        if (eq) { *eq = 0; value = g_strstrip(eq + 1); }
        g_strstrip(name);
        const struct option *opt = NULL;
        for (const struct option *l = longs; l->name; l++)
            if (strcmp(l->name, name) == 0) opt = l;
        if (!opt || strcmp(name, "config") == 0 || strcmp(name, "help") == 0 || strcmp(name, "version") == 0) {
            fprintf(stderr, "zoosyncd: %s:%d: unknown setting '%s' (the long flags of --help, without their dashes)\n", path, n, name);
            rc = -1;
        } else if (opt->has_arg == required_argument && (!value || !*value)) {
            fprintf(stderr, "zoosyncd: %s:%d: '%s' needs a value (%s = ...)\n", path, n, name, name);
            rc = -1;
        } else if (opt->has_arg == no_argument && value && strcmp(value, "true") != 0) {
            fprintf(stderr, "zoosyncd: %s:%d: '%s' takes no value (write '%s' or '%s = true')\n", path, n, name, name, name);
            rc = -1;
        } else {
            g_ptr_array_add(out, g_strdup_printf("--%s", name));
            if (opt->has_arg == required_argument) g_ptr_array_add(out, g_strdup(value));
        }
    }
    fclose(f);
    if (rc < 0) {
        g_ptr_array_set_free_func(out, g_free);
        g_ptr_array_free(out, TRUE);
        return -1;
    }
    o->cfg_argc = (int)out->len;
    o->cfg_argv = (char **)g_ptr_array_free(out, FALSE);
    return 0;
}

/* Every path the gateway builds starts with the root, some in fixed
 * buffers and all in ZooKeeper requests of bounded size: a plain absolute
 * path ("/a/b": no empty, "." or ".." part, no trailing '/') of at most
 * ROOT_MAX_BYTES. Says why on stderr when not. */
#define ROOT_MAX_BYTES 256
static bool root_invalid(const char *r) {
    size_t n = strlen(r);
    const char *why = NULL;
    if (n > ROOT_MAX_BYTES) why = "at most 256 bytes";
    else if (r[0] != '/' || n < 2 || r[n - 1] == '/') why = "must start with '/' and not end with '/'";
    else if (strstr(r, "//") || strstr(r, "/./") || strstr(r, "/../") || (n >= 2 && strcmp(r + n - 2, "/.") == 0) ||
             (n >= 3 && strcmp(r + n - 3, "/..") == 0))
        why = "no empty, '.' or '..' part";
    if (why) fprintf(stderr, "zoosyncd: --root: %s\n", why);
    return why != NULL;
}

static int parse_args(int argc, char **argv, options *o) {
    enum { O_LISTEN = 1, O_ZK, O_ROOT, O_SECRET, O_PUBKEY, O_BODY, O_TX, O_CREATE, O_CORS, O_WORKERS, O_SESSION, O_LOG, O_HELP, O_WEB, O_CLIENT, O_KEEPALIVE, O_STREAMS, O_GC, O_AUD, O_ISS, O_LIFE, O_DIGEST, O_WORLD, O_APPLY, O_HEAP, O_EDGE, O_RATE, O_WBYTES, O_WMUTS, O_TLSCERT, O_TLSKEY, O_JWKS, O_VERSION, O_LOGFMT, O_CONFIG };
    static const struct option longs[] = {
        {"listen", required_argument, NULL, O_LISTEN},     {"zk", required_argument, NULL, O_ZK},
        {"root", required_argument, NULL, O_ROOT},         {"jwt-secret-file", required_argument, NULL, O_SECRET},
        {"jwt-public-key", required_argument, NULL, O_PUBKEY}, {"max-body", required_argument, NULL, O_BODY},
        {"max-tx-bytes", required_argument, NULL, O_TX},   {"create-store", required_argument, NULL, O_CREATE},
        {"cors-origin", required_argument, NULL, O_CORS},  {"workers", required_argument, NULL, O_WORKERS},
        {"session-timeout", required_argument, NULL, O_SESSION}, {"log-level", required_argument, NULL, O_LOG},
        {"web", required_argument, NULL, O_WEB},           {"client-dir", required_argument, NULL, O_CLIENT},
        {"keepalive-ms", required_argument, NULL, O_KEEPALIVE}, {"max-streams", required_argument, NULL, O_STREAMS},
        {"gc-interval", required_argument, NULL, O_GC},
        {"jwt-audience", required_argument, NULL, O_AUD}, {"jwt-issuer", required_argument, NULL, O_ISS},
        {"jwt-max-lifetime", required_argument, NULL, O_LIFE},
        {"zk-digest-file", required_argument, NULL, O_DIGEST}, {"zk-acl-world-read", required_argument, NULL, O_WORLD},
        {"zk-apply-acl", no_argument, NULL, O_APPLY},   {"zk-heap-mb", required_argument, NULL, O_HEAP},
        {"rate-limit", required_argument, NULL, O_RATE}, {"write-bytes-per-sec", required_argument, NULL, O_WBYTES},
        {"write-mutations-per-sec", required_argument, NULL, O_WMUTS},
        {"jwt-jwks", required_argument, NULL, O_JWKS}, {"tls-cert", required_argument, NULL, O_TLSCERT}, {"tls-key", required_argument, NULL, O_TLSKEY},
        {"help", no_argument, NULL, O_HELP}, {"version", no_argument, NULL, O_VERSION},
        {"log-format", required_argument, NULL, O_LOGFMT}, {"config", required_argument, NULL, O_CONFIG},
        /* the HTTP edge limits, parsed by httpd_limits_parse (src/http/server.c) */
        {"max-body-inflight", required_argument, NULL, O_EDGE}, {"header-timeout", required_argument, NULL, O_EDGE},
        {"body-timeout", required_argument, NULL, O_EDGE}, {"max-conns-per-ip", required_argument, NULL, O_EDGE},
        {"fd-reserve", required_argument, NULL, O_EDGE}, {"max-streams-per-sub", required_argument, NULL, O_EDGE},
        {"max-streams-per-ip", required_argument, NULL, O_EDGE}, {"http-threads", required_argument, NULL, O_EDGE},
        {"max-header-bytes", required_argument, NULL, O_EDGE}, {"http-model", required_argument, NULL, O_EDGE},
        {"http-connections", required_argument, NULL, O_EDGE},
        {NULL, 0, NULL, 0}};
    /* --config FILE: its settings go first, so flags on the command line
     * override them (repeatable ones add up). */
    const char *cfg_file = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) cfg_file = argv[i + 1];
        else if (strncmp(argv[i], "--config=", 9) == 0) cfg_file = argv[i] + 9;
    }
    if (cfg_file) {
        if (config_args(cfg_file, longs, o) < 0) return -1;
        char **all = calloc((size_t)(o->cfg_argc + argc + 1), sizeof *all);
        if (!all) return -1;
        all[0] = argv[0];
        memcpy(all + 1, o->cfg_argv, (size_t)o->cfg_argc * sizeof *all);
        memcpy(all + 1 + o->cfg_argc, argv + 1, (size_t)(argc - 1) * sizeof *all);
        free(o->cfg_argv);
        o->cfg_argv = all; /* owns the settings' strings from index 1 to cfg_argc */
        argv = all;
        argc += o->cfg_argc;
    }
    int c, idx = 0;
    size_t v;
    while ((c = getopt_long(argc, argv, "", longs, &idx)) != -1) {
        switch (c) {
        case O_LISTEN: if (parse_listen(optarg, o) < 0) return -1; break;
        case O_ZK: o->zk = optarg; break;
        case O_ROOT:
            if (root_invalid(optarg)) return -1;
            o->root = optarg;
            break;
        case O_SECRET: o->jwt_secret_file = optarg; break;
        case O_PUBKEY: o->jwt_public_key = optarg; break;
        case O_BODY: if (parse_size("--max-body", optarg, 1024, &o->max_body) < 0) return -1; break;
        case O_TX:
            if (parse_size("--max-tx-bytes", optarg, 1024, &o->max_tx_bytes) < 0) return -1;
            if (o->max_tx_bytes > 1000000) {
                fprintf(stderr, "zoosyncd: --max-tx-bytes: at most 1000000 (ZooKeeper's jute.maxbuffer is 1 MiB)\n");
                return -1;
            }
            break;
        case O_CREATE:
            if (o->ncreate == MAX_LIST) { fprintf(stderr, "zoosyncd: too many --create-store\n"); return -1; }
            o->create_store[o->ncreate++] = optarg;
            break;
        case O_CORS:
            if (o->ncors == MAX_LIST) { fprintf(stderr, "zoosyncd: too many --cors-origin\n"); return -1; }
            o->cors[o->ncors++] = optarg;
            break;
        case O_WORKERS:
            if (parse_size("--workers", optarg, 1, &v) < 0 || v > 1024) return -1;
            o->workers = (int)v;
            break;
        case O_SESSION:
            if (parse_size("--session-timeout", optarg, 1000, &v) < 0) return -1;
            o->session_timeout_ms = (int)v;
            break;
        case O_LOG: {
            int l = zs_log_parse_level(optarg);
            if (l < 0) { fprintf(stderr, "zoosyncd: --log-level: error, warn, info or debug\n"); return -1; }
            o->log.level = (zs_log_level)l;
            break;
        }
        case O_DIGEST: o->zk_digest_file = optarg; break;
        case O_WORLD:
            if (strcmp(optarg, "yes") && strcmp(optarg, "no")) {
                fprintf(stderr, "zoosyncd: --zk-acl-world-read: yes or no\n");
                return -1;
            }
            o->zk_world_read = strcmp(optarg, "yes") == 0;
            break;
        case O_APPLY: o->zk_apply_acl = true; break;
        case O_HEAP:
            if (parse_size("--zk-heap-mb", optarg, 64, &o->zk_heap_mb) < 0 || o->zk_heap_mb > 1048576) return -1;
            break;
        case O_RATE:
            if (parse_size("--rate-limit", optarg, 0, &o->rate_limit) < 0 || o->rate_limit > 1000000) return -1;
            break;
        case O_WBYTES: case O_WMUTS:
            if (parse_size(c == O_WBYTES ? "--write-bytes-per-sec" : "--write-mutations-per-sec", optarg, 0, &v) < 0 ||
                v > (size_t)1 << 40)
                return -1;
            *(c == O_WBYTES ? &o->write_bytes_per_sec : &o->write_mutations_per_sec) = (long long)v;
            break;
        case O_JWKS: o->jwt_jwks = optarg; break;
        case O_CONFIG: break; /* read above */
        case O_LOGFMT:
            if (strcmp(optarg, "text") && strcmp(optarg, "json")) {
                fprintf(stderr, "zoosyncd: --log-format: text or json\n");
                return -1;
            }
            o->log.json = strcmp(optarg, "json") == 0;
            break;
        case O_TLSCERT: o->tls_cert_file = optarg; break;
        case O_TLSKEY: o->tls_key_file = optarg; break;
        case O_WEB: o->web_dir = optarg; break;
        case O_CLIENT: o->client_dir = optarg; break;
        case O_KEEPALIVE:
            if (parse_size("--keepalive-ms", optarg, 10, &v) < 0 || v > 15000) {
                fprintf(stderr, "zoosyncd: --keepalive-ms: from 10 to 15000\n");
                return -1;
            }
            o->keepalive_ms = (int)v;
            break;
        case O_STREAMS: if (parse_size("--max-streams", optarg, 1, &o->max_streams) < 0) return -1; break;
        case O_GC:
            if (parse_size("--gc-interval", optarg, 1, &v) < 0 || v > 86400) return -1;
            o->gc_interval_s = (int)v;
            break;
        case O_AUD: case O_ISS:
            if (!*optarg) { fprintf(stderr, "zoosyncd: --jwt-audience/--jwt-issuer must not be empty\n"); return -1; }
            *(c == O_AUD ? &o->jwt_audience : &o->jwt_issuer) = optarg;
            break;
        case O_LIFE:
            if (parse_size("--jwt-max-lifetime", optarg, 1, &o->jwt_max_lifetime) < 0 || o->jwt_max_lifetime > 31536000) {
                fprintf(stderr, "zoosyncd: --jwt-max-lifetime: from 1 to 31536000 seconds\n");
                return -1;
            }
            break;
        case O_EDGE: if (httpd_limits_parse(&o->limits, longs[idx].name, optarg) < 0) return -1; break;
        case O_HELP: usage(stdout); exit(0);
        case O_VERSION: printf("zoosyncd %s\n", ZOOSYNC_VERSION); exit(0);
        default: usage(stderr); return -1;
        }
    }
    if (optind < argc) { fprintf(stderr, "zoosyncd: unexpected argument '%s'\n", argv[optind]); return -1; }
    if (o->jwt_secret_file && o->jwt_public_key) {
        fprintf(stderr, "zoosyncd: give --jwt-secret-file or --jwt-public-key, not both\n");
        return -1;
    }
    if ((o->jwt_audience || o->jwt_issuer) && !o->jwt_secret_file && !o->jwt_public_key) {
        fprintf(stderr, "zoosyncd: --jwt-audience and --jwt-issuer need --jwt-secret-file or --jwt-public-key\n");
        return -1;
    }
    for (int i = 0; i < o->ncreate; i++) {
        const char *s = o->create_store[i];
        size_t n = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-");
        if (n == 0 || n > 64 || s[n]) { fprintf(stderr, "zoosyncd: --create-store: invalid store name '%s'\n", s); return -1; }
    }
    return 0;
}

/* The defaults, then the --config file and the flags, then what derives from
 * them. 0, or -1 after printing why to stderr. */
static int options_load(int argc, char **argv, options *o) {
    *o = (options){.zk_world_read = true, .listen_host = "127.0.0.1", .listen_port = 8080, .zk = "127.0.0.1:2181", .root = "/zoosync",
                   .max_body = 4194304, .max_tx_bytes = 0, .zk_heap_mb = 1024, .write_bytes_per_sec = -1, .write_mutations_per_sec = -1, .workers = 64, .session_timeout_ms = 10000, .keepalive_ms = 15000, .max_streams = 20000, .gc_interval_s = 60, .jwt_max_lifetime = 86400,
                   .limits = HTTPD_LIMITS_DEFAULT, .log = {ZS_LOG_INFO}};
    optind = 0; /* getopt_long starts afresh (SIGHUP parses a second time) */
    if (parse_args(argc, argv, o) < 0) return -1;
    /* ZooKeeper keeps its last 500 committed transactions in memory (for
     * followers catching up), several copies of each while in flight: a
     * writer of large multis could otherwise exhaust its heap (measured: a
     * 256 MiB server died after 92 back-to-back 0.9 MB pushes, and lived
     * through 400 at 70 kB per transaction). docs/PROTOCOL.md, "Limits". */
    if (o->max_tx_bytes == 0) {
        size_t derived = o->zk_heap_mb * 1048576 / 3600;
        o->max_tx_bytes = derived > 1000000 ? 1000000 : derived;
    }
    /* Write budgets per subject: what one token may ask of the ensemble.
     * At the defaults one subject needs over four minutes of non-stop
     * writing to send a heap's worth of bytes (MB*1MiB/256 per second), and
     * MB*4 mutations per second (4096 at 1 GiB) stays well below what one
     * ZooKeeper ensemble commits (docs/PROTOCOL.md, "Rate limits and write
     * budgets"). On by default with authentication only: without it every
     * client behind the same proxy would share one subject (the address),
     * and the gateway then serves loopback alone. */
    bool auth_on = o->jwt_secret_file || o->jwt_public_key || o->jwt_jwks;
    if (o->write_bytes_per_sec < 0) o->write_bytes_per_sec = auth_on ? (long long)(o->zk_heap_mb * 1048576 / 256) : 0;
    if (o->write_mutations_per_sec < 0) o->write_mutations_per_sec = auth_on ? (long long)o->zk_heap_mb * 4 : 0;
    return 0;
}

/* The allocator in use, for zoosync_build_info: jemalloc and its version
 * when linked with it (CMake's ZOOSYNC_JEMALLOC), else glibc's. */
static const char *allocator_name(char *buf, size_t n) {
#ifdef ZOOSYNC_JEMALLOC
    const char *v = NULL;
    size_t len = sizeof v;
    if (mallctl("version", &v, &len, NULL, 0) == 0 && v) {
        snprintf(buf, n, "jemalloc %s", v);
        return buf;
    }
    return "jemalloc";
#else
    (void)buf;
    (void)n;
    return "glibc";
#endif
}

/* Each stream is a socket: lift the soft descriptor limit to the hard one. */
static void raise_fd_limit(options *o) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        unsigned long long was = (unsigned long long)rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            LOG_WARN(&o->log, "cannot raise the open-file limit from %llu to its hard limit: %s", was, strerror(errno));
        else
            LOG_INFO(&o->log, "open-file limit raised from %llu to its hard limit %llu", was,
                     (unsigned long long)rl.rlim_max);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < o->max_streams + 256) {
        size_t fit = rl.rlim_cur > 512 ? (size_t)rl.rlim_cur - 256 : 256;
        LOG_WARN(&o->log, "open-file limit %llu: at most %zu event streams (not %zu)", (unsigned long long)rl.rlim_cur,
                 fit, o->max_streams);
        o->max_streams = fit;
    }
}

/* Waits for ZooKeeper, creates the root and the --create-store stores.
 * Returns 0 once done, -1 when a signal arrived first, -2 on failure. */
static int setup(zkc *z, store_schema_cache *schemas, const options *o, sigset_t *sigs) {
    char *stores = NULL;
    if (!(stores = layout_stores_path(o->root))) return -1;
    for (;;) {
        if (zkc_wait_connected(z, 1000) == 0 && zkc_ensure_path(z, stores) == ZOK) break;
        LOG_WARN(&o->log, "waiting for ZooKeeper at %s", o->zk);
        struct timespec zero = {0, 0};
        if (sigtimedwait(sigs, NULL, &zero) > 0) { free(stores); return -1; }
    }
    if (o->zk_digest_file && !o->zk_apply_acl && zkc_open_acl(z, o->root, stores))
        LOG_WARN(&o->log, "%s or %s was created without the identity's ACL (anyone may create stores under it): "
                          "start once with --zk-apply-acl", o->root, stores);
    free(stores);
    if (o->zk_apply_acl) {
        size_t n = 0;
        int64_t t0 = zs_clock_ms();
        if (zkc_apply_acl(z, o->root, &n) != ZOK) return -2;
        LOG_INFO(&o->log, "--zk-apply-acl: the ACL of %zu znodes under %s set in %lld ms", n, o->root,
                 (long long)(zs_clock_ms() - t0));
    }
    for (int i = 0; i < o->ncreate; i++) {
        store_cfg cfg;
        zs_err e = {0};
        if (stores_get(z, o->root, schemas, o->create_store[i], &cfg, &e) == 0) { store_cfg_release(&cfg); continue; }
        bool created = false;
        if (stores_put(z, o->root, schemas, o->create_store[i], NULL, NULL, 0, &cfg, &created, &e) < 0) {
            LOG_ERROR(&o->log, "--create-store %s: %s", o->create_store[i], e.message);
            return -2;
        }
        store_cfg_release(&cfg);
        LOG_INFO(&o->log, "store '%s' created", o->create_store[i]);
    }
    return 0;
}

/* Starts loading the mirror of every store there is, without waiting:
 * /readyz says "loading" until they are loaded, so a gateway is not ready
 * while a store's first pull would fail. (A store created later is loaded
 * at its first request: it starts empty.) */
static void preload(zkc *z, store_schema_cache *schemas, mirror_set *mirrors, const options *o) {
    char **names = NULL;
    size_t n = 0;
    zs_err e = {0};
    if (stores_list(z, o->root, &names, &n, &e) < 0) {
        LOG_WARN(&o->log, "listing the stores to load them: %s", e.message);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        store_cfg cfg;
        zs_err ge = {0};
        mirror *m;
        if (stores_get(z, o->root, schemas, names[i], &cfg, &ge) == 0) {
            (void)mirror_set_acquire(mirrors, names[i], cfg.czxid, 0, &m);
            store_cfg_release(&cfg);
        }
    }
    if (n) LOG_INFO(&o->log, "loading %zu store%s", n, n == 1 ? "" : "s");
    stores_free_names(names, n);
}

/* Frees what parse_args allocated (the --config settings). */
static void options_free(options *o) {
    for (int i = 0; i < o->ncors_owned; i++) g_free(o->cors_owned[i]);
    o->ncors_owned = 0;
    if (!o->cfg_argv) return;
    for (int i = 1; i <= o->cfg_argc; i++) g_free(o->cfg_argv[i]);
    free(o->cfg_argv);
    o->cfg_argv = NULL;
}

/* SIGHUP: what can change without a restart, read again and logged. */
/* The certificate, as at start: "subject, expires <date>". */
static void log_tls(const options *o, const char *what, const tls_creds *c) {
    char when[32] = "?";
    time_t t = (time_t)tls_creds_not_after(c);
    struct tm tm;
    if (gmtime_r(&t, &tm)) strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    LOG_INFO(&o->log, "%s: %s, expires %s", what, tls_creds_subject(c), when);
    if (t - time(NULL) < 14 * 86400)
        LOG_WARN(&o->log, "the TLS certificate %s in less than 14 days (%s)", t < time(NULL) ? "has expired" : "expires", when);
}

static bool same_str(const char *a, const char *b) { return a == b || (a && b && strcmp(a, b) == 0); }

static bool same_list(const char *const *a, int na, const char *const *b, int nb) {
    if (na != nb) return false;
    for (int i = 0; i < na; i++)
        if (!same_str(a[i], b[i])) return false;
    return true;
}

/* SIGHUP, settings: the flags and the --config file read again. What can
 * change live is applied to o and logged (log level and format, CORS
 * origins, --rate-limit); any other setting that differs from given (as
 * configured at start) is named as needing a restart. */
static void reload_settings(int argc, char **argv, const options *given, options *o, api *a, httpd *h) {
    options n;
    if (options_load(argc, argv, &n) < 0) { /* why: on stderr, like at start */
        LOG_ERROR(&o->log, "settings NOT reloaded: the flags or the --config file are invalid (see above); nothing changed");
        options_free(&n);
        return;
    }
    static const char *const level_names[] = {"error", "warn", "info", "debug"};
    GString *live = g_string_new(NULL), *restart = g_string_new(NULL);
    if (n.log.level != o->log.level) {
        g_string_append_printf(live, " log-level %s -> %s;", level_names[o->log.level], level_names[n.log.level]);
        atomic_store(&o->log.level, atomic_load(&n.log.level));
    }
    if (n.log.json != o->log.json) {
        g_string_append_printf(live, " log-format %s;", n.log.json ? "json" : "text");
        atomic_store(&o->log.json, atomic_load(&n.log.json));
    }
    if (n.rate_limit != o->rate_limit) {
        g_string_append_printf(live, " rate-limit %zu -> %zu;", o->rate_limit, n.rate_limit);
        api_set_rate_limit(a, (double)n.rate_limit);
        o->rate_limit = n.rate_limit;
    }
    if (!same_list(n.cors, n.ncors, o->cors, o->ncors)) {
        g_string_append_printf(live, " cors-origin now %d origin%s;", n.ncors, n.ncors == 1 ? "" : "s");
        httpd_set_cors(h, n.ncors ? n.cors : NULL);
        /* o keeps its own copies: n's strings go with n */
        for (int i = 0; i < o->ncors_owned; i++) g_free(o->cors_owned[i]);
        o->ncors_owned = o->ncors = n.ncors;
        for (int i = 0; i < n.ncors; i++) o->cors[i] = o->cors_owned[i] = g_strdup(n.cors[i]);
        o->cors[n.ncors] = NULL;
    }
#define RESTART_IF(cond, name) \
    do { if (cond) g_string_append(restart, " " name); } while (0)
    RESTART_IF(strcmp(n.listen_host, given->listen_host) || n.listen_port != given->listen_port, "listen");
    RESTART_IF(!same_str(n.zk, given->zk), "zk");
    RESTART_IF(!same_str(n.root, given->root), "root");
    RESTART_IF(!same_str(n.jwt_secret_file, given->jwt_secret_file) || !same_str(n.jwt_public_key, given->jwt_public_key) ||
                   !same_str(n.jwt_jwks, given->jwt_jwks), "jwt-secret-file/jwt-public-key/jwt-jwks (the path; the file itself is read again)");
    RESTART_IF(!same_str(n.jwt_audience, given->jwt_audience) || !same_str(n.jwt_issuer, given->jwt_issuer) ||
                   n.jwt_max_lifetime != given->jwt_max_lifetime, "jwt-audience/jwt-issuer/jwt-max-lifetime");
    RESTART_IF(n.max_body != given->max_body, "max-body");
    RESTART_IF(n.max_tx_bytes != given->max_tx_bytes || n.zk_heap_mb != given->zk_heap_mb, "max-tx-bytes/zk-heap-mb");
    RESTART_IF(n.write_bytes_per_sec != given->write_bytes_per_sec || n.write_mutations_per_sec != given->write_mutations_per_sec,
               "write-bytes-per-sec/write-mutations-per-sec");
    RESTART_IF(!same_list(n.create_store, n.ncreate, given->create_store, given->ncreate), "create-store");
    RESTART_IF(n.workers != given->workers, "workers");
    RESTART_IF(n.session_timeout_ms != given->session_timeout_ms, "session-timeout");
    RESTART_IF(n.keepalive_ms != given->keepalive_ms, "keepalive-ms");
    RESTART_IF(n.max_streams != given->max_streams, "max-streams");
    RESTART_IF(n.gc_interval_s != given->gc_interval_s, "gc-interval");
    RESTART_IF(!same_str(n.web_dir, given->web_dir) || !same_str(n.client_dir, given->client_dir), "web/client-dir");
    RESTART_IF(!same_str(n.zk_digest_file, given->zk_digest_file) || n.zk_world_read != given->zk_world_read ||
                   n.zk_apply_acl != given->zk_apply_acl, "zk-digest-file/zk-acl-world-read/zk-apply-acl");
    RESTART_IF(!same_str(n.tls_cert_file, given->tls_cert_file) || !same_str(n.tls_key_file, given->tls_key_file),
               "tls-cert/tls-key (the paths; the files themselves are read again)");
    RESTART_IF(memcmp(&n.limits, &given->limits, sizeof n.limits) != 0, "the HTTP edge limits (max-body-inflight, max-header-bytes, timeouts, per-address caps, http-model/threads/connections)");
#undef RESTART_IF
    if (live->len) LOG_INFO(&o->log, "settings changed live:%.*s", (int)live->len - 1, live->str);
    else LOG_INFO(&o->log, "settings: nothing that can change live has changed");
    if (restart->len) LOG_WARN(&o->log, "settings changed that need a restart to take effect:%s", restart->str);
    g_string_free(live, TRUE);
    g_string_free(restart, TRUE);
    options_free(&n);
}

/* SIGHUP: what can change without a restart, read again and logged. h: the
 * HTTPS server whose certificate files are read again (NULL: plain HTTP). */
static void reload(int argc, char **argv, const options *given, options *o, auth_verifier *verifier, api *a, httpd *h) {
    LOG_INFO(&o->log, "SIGHUP: reloading");
    reload_settings(argc, argv, given, o, a, h);
    if (o->tls_cert_file) {
        char why[ZS_ERRLEN] = "";
        tls_creds *c = tls_creds_load(o->tls_cert_file, o->tls_key_file, why, sizeof why);
        if (c) {
            httpd_set_tls(h, c);
            log_tls(o, "TLS certificate reloaded (new connections)", c);
            tls_creds_unref(c);
        } else {
            LOG_ERROR(&o->log, "TLS certificate NOT reloaded, the previous one stays: %s", why[0] ? why : "failed");
        }
    }
    if (verifier) {
        char summary[1024] = "", err[ZS_ERRLEN] = "";
        if (auth_verifier_reload(verifier, summary, sizeof summary, err, sizeof err) == 0)
            LOG_INFO(&o->log, "token keys reloaded: %s", summary);
        else
            LOG_ERROR(&o->log, "token keys NOT reloaded, the previous ones stay: %s", err[0] ? err : "failed");
    }
}

int main(int argc, char **argv) {
    /* OpenSSL (through libjwt) would clean up in an atexit handler, which
     * can crash after worker threads that used it are gone; everything it
     * holds goes with the process anyway. */
    OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, NULL);
    options o;
    if (options_load(argc, argv, &o) < 0) return options_free(&o), 2;
    const options given = o; /* as configured, for SIGHUP to compare with (shares o's strings) */
    auth_verifier *verifier = NULL;
    char err[ZS_ERRLEN] = "";
    if (!!o.jwt_secret_file + !!o.jwt_public_key + !!o.jwt_jwks > 1) {
        fprintf(stderr, "zoosyncd: give one of --jwt-secret-file, --jwt-public-key and --jwt-jwks\n");
        return options_free(&o), 2;
    }
    if (o.jwt_secret_file) verifier = auth_verifier_from_secret_file(o.jwt_secret_file, err, sizeof err);
    else if (o.jwt_public_key) verifier = auth_verifier_from_pubkey_file(o.jwt_public_key, err, sizeof err);
    else if (o.jwt_jwks) verifier = auth_verifier_from_jwks_file(o.jwt_jwks, err, sizeof err);
    if (verifier && auth_verifier_set_policy(verifier, o.jwt_audience, o.jwt_issuer, (long long)o.jwt_max_lifetime, err,
                                             sizeof err) < 0) {
        auth_verifier_free(verifier);
        verifier = NULL;
    }
    if ((o.jwt_secret_file || o.jwt_public_key || o.jwt_jwks) && !verifier) {
        fprintf(stderr, "zoosyncd: %s\n", err[0] ? err : "cannot load the token key");
        return options_free(&o), 2;
    }
    if (!verifier && !is_loopback(o.listen_host)) {
        fprintf(stderr, "zoosyncd: refusing to listen on %s with authentication off: "
                        "give --jwt-secret-file or --jwt-public-key, or listen on 127.0.0.1\n", o.listen_host);
        return options_free(&o), 2;
    }

    /* Signals are taken synchronously by this thread; every other thread
     * inherits the blocked mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigset_t waits = sigs; /* once ready: the stop signals, and SIGHUP (reload) */
    sigaddset(&waits, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &waits, NULL);
    signal(SIGPIPE, SIG_IGN);

    zk_ident ident = {0};
    if (o.zk_digest_file) {
        char why[ZS_ERRLEN] = "";
        if (zk_ident_load(&ident, o.zk_digest_file, o.zk_world_read, why, sizeof why) < 0) {
            fprintf(stderr, "zoosyncd: --zk-digest-file %s: %s\n", o.zk_digest_file, why);
            auth_verifier_free(verifier);
            return options_free(&o), 2;
        }
    } else if (o.zk_apply_acl || !o.zk_world_read) {
        fprintf(stderr, "zoosyncd: --zk-apply-acl and --zk-acl-world-read need --zk-digest-file\n");
        auth_verifier_free(verifier);
        return options_free(&o), 2;
    }

    tls_creds *tls = NULL;
    if (o.tls_cert_file || o.tls_key_file) {
        char why_tls[ZS_ERRLEN] = "";
        if (!o.tls_cert_file || !o.tls_key_file) zs_errf(why_tls, sizeof why_tls, "--tls-cert and --tls-key go together");
        else if (o.limits.model == HTTPD_MODEL_CONNECTION)
            zs_errf(why_tls, sizeof why_tls, "--http-model connection is for plain HTTP only (over HTTPS every event "
                                             "stream would hold a thread); leave it out or use --http-model pool");
        else tls = tls_creds_load(o.tls_cert_file, o.tls_key_file, why_tls, sizeof why_tls);
        if (!tls) {
            fprintf(stderr, "zoosyncd: %s\n", why_tls);
            auth_verifier_free(verifier);
            return options_free(&o), 2;
        }
    }

    int rc = 1;
    atomic_bool ready = false;
    zkc *z = zkc_open(o.zk, o.session_timeout_ms, &ident, &o.log);
    /* The compiled store schemas, shared by every config read (mirrors,
     * api, collector, setup); freed last. */
    store_schema_cache *schemas = z ? store_schema_cache_new() : NULL;
    char why[ZS_ERRLEN] = "";
    mirror_set *mirrors = schemas ? mirror_set_new(o.zk, o.session_timeout_ms, ident.on ? ident.cred : NULL, o.root,
                                                   schemas, &o.log, why, sizeof why)
                                  : NULL;
    if (z && !mirrors) fprintf(stderr, "zoosyncd: %s\n", why[0] ? why : "cannot start the mirror");
    raise_fd_limit(&o);
    events *ev = mirrors ? events_new(mirrors, o.keepalive_ms, o.max_streams, &o.log) : NULL;
    if (ev) events_set_caps(ev, o.limits.streams_per_sub, o.limits.streams_per_ip);
    gc *collector = NULL;
    zs_metrics metrics = {0};
    char alloc[96];
    committer *commit = z ? committer_start(z, o.max_tx_bytes, &metrics, &o.log) : NULL;
    api_config acfg = {z, o.root, mirrors, schemas, verifier, o.max_tx_bytes, &o.log, &ready, ev, o.web_dir, o.client_dir,
                       &metrics, commit, (double)o.rate_limit, (double)o.write_bytes_per_sec,
                       (double)o.write_mutations_per_sec, ZOOSYNC_VERSION, allocator_name(alloc, sizeof alloc)};
    api *a = ev && commit ? api_new(&acfg) : NULL;
    httpd_config hcfg = {o.listen_host, o.listen_port, o.max_body, o.workers, o.ncors ? o.cors : NULL,
                         api_handle_inline, verifier == NULL, api_check_early, o.limits, tls, &metrics};
    httpd *h = a ? httpd_start(&hcfg, api_handle, a, &o.log) : NULL;
    if (h) {
        printf("zoosyncd: listening on %s://%s%s%s:%u\n", tls ? "https" : "http", strchr(o.listen_host, ':') ? "[" : "", o.listen_host,
               strchr(o.listen_host, ':') ? "]" : "", (unsigned)httpd_port(h));
        fflush(stdout);
        if (tls) log_tls(&o, "TLS certificate", tls);
        LOG_INFO(&o.log, "largest ZooKeeper transaction %zu bytes (--max-tx-bytes%s)", o.max_tx_bytes,
                 o.max_tx_bytes == (o.zk_heap_mb * 1048576 / 3600 > 1000000 ? 1000000 : o.zk_heap_mb * 1048576 / 3600)
                     ? ", from --zk-heap-mb" : "");
        LOG_INFO(&o.log, "per subject: rate limit %s, write budget %lld bytes/s and %lld mutations/s (0: off)",
                 o.rate_limit ? "on" : "off", o.write_bytes_per_sec, o.write_mutations_per_sec);
        LOG_INFO(&o.log, "zookeeper %s, root %s, auth %s, znodes %s", o.zk, o.root,
                 verifier ? (o.jwt_secret_file ? "HS256" : o.jwt_jwks ? "key set" : "public key") : "off",
                 !ident.on ? "open (no --zk-digest-file)" : o.zk_world_read ? "digest identity: all, world: read" : "digest identity only");
        int s = setup(z, schemas, &o, &sigs);
        if (s == 0) {
            preload(z, schemas, mirrors, &o);
            collector = gc_start(z, mirrors, o.root, schemas, o.gc_interval_s, &o.log);
            api_set_gc(a, collector);
            atomic_store(&ready, true);
            LOG_INFO(&o.log, "ready");
            int sig;
            while (sigwait(&waits, &sig) == 0 && sig == SIGHUP) reload(argc, argv, &given, &o, verifier, a, h);
            LOG_INFO(&o.log, "signal %d: stopping", sig);
        }
        rc = s == -2 ? 1 : 0; /* a signal during setup is a normal stop */
    }
    httpd_stop(h, 3000);      /* stop accepting, end streams, finish in-flight requests */
    gc_stop(collector);
    committer_stop(commit);   /* every worker has returned */
    mirror_set_stop(mirrors); /* the mirror session: no on_advance hook after this */
    zkc_close(z);             /* closes the session (ephemeral state goes at once) and
                                 stops the completion thread, the only caller of the hooks */
    events_free(ev);          /* no stream is left, no hook can run */
    api_free(a);
    mirror_set_free(mirrors); /* closes the mirror session; its hooks are done */
    store_schema_cache_free(schemas); /* every config holder is gone (mirrors, api, collector, committer) */
    auth_verifier_free(verifier);
    tls_creds_unref(tls);
    options_free(&o);
    return rc;
}

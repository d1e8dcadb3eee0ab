/* route: the routes' table type and its lookup, and the small header and
 * query values the handlers read (If-Match, limit). Pure: no I/O, no state
 * of its own; any thread. Every input here comes straight from the network.
 *
 * The table itself (one route_def per method and path, with the access it
 * needs and its handler, as Redis' command table) belongs to http/api
 * (api_routes), which alone defines the handlers' context: route_ctx is
 * opaque here. Everything the gateway derives from a route comes from that
 * table: the handler, the authorization checked before the body is read
 * and again before the handler, the 405 answer with its Allow header, the
 * access log's route template and the metrics' route label. It lists
 * exactly the operations of docs/openapi.yaml (tests/unit/test_route.c
 * checks both ways); the static files (--web, --client-dir) are not routes
 * but the fallback for other paths outside ROUTE_API_PREFIX. */
#ifndef ZS_HTTP_ROUTE_H
#define ZS_HTTP_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Paths at or under this prefix are the API's: a path there that no route
 * has is 404 only after the token was checked. */
#define ROUTE_API_PREFIX "/v1"

/* What a request must show to reach the handler. */
typedef enum {
    ROUTE_PUBLIC, /* nothing: no token is read */
    ROUTE_TOKEN,  /* a valid token, whatever its scopes (the handler filters what it shows) */
    ROUTE_READ,   /* a grant to read the path's {store} (any read or write grant, prefix or not) */
    ROUTE_WRITE,  /* a grant to write in the path's {store} */
    ROUTE_ADMIN,  /* admin */
} route_access;

/* What runs before the handler, in the order of checks of PROTOCOL.md. */
enum {
    ROUTE_PROBE = 1u << 0,  /* polled by probes: reads only memory, so answered on the event-loop
                               thread; logged at debug; not in the time histogram */
    ROUTE_FEED = 1u << 1,   /* ?since= (a cursor), and ?limit= unless ROUTE_STREAM (400s) */
    ROUTE_STREAM = 1u << 2, /* an event stream: Last-Event-ID over ?since=; the token may come
                               as ?access_token= (EventSource sends no header) */
    ROUTE_VIEW = 1u << 3,   /* the keys the token sees: its read set, narrowed by ?prefix= (400, 403) */
    ROUTE_CONFIG = 1u << 4, /* the store's config is looked up before the handler (404) */
};

/* The handler's context, defined by the table's owner (http/api.c). */
typedef struct route_ctx route_ctx;

typedef struct route_def {
    const char *method;   /* "GET", "PUT", ... */
    /* The path as docs/openapi.yaml writes it, also the access log's route
     * template: literal text and the parameters {store} (one segment, may
     * be empty) and {key} (the rest of the path, '/' included: a key
     * byte). Parameters are percent-decoded, never logged. */
    const char *pattern;
    const char *label;    /* the route label of the HTTP metrics (same for every method of a path) */
    route_access access;
    unsigned flags;       /* ROUTE_* above */
    void (*handler)(route_ctx *c);
} route_def;

typedef struct route_match {
    const route_def *def;  /* the route of this method and path; NULL: none */
    const route_def *path; /* the first route of this path, whatever its method (def when
                              there is one); NULL: no route has this path */
    char allow[64];        /* the methods of path's routes, in table order: "GET, PUT, DELETE" */
    char *store;           /* the decoded {store} (owned); "" when broken */
    bool store_broken;     /* its percent-encoding is broken, or it holds a NUL */
    char *key;             /* the decoded {key} (owned); NULL when broken */
    size_t klen;
    bool key_broken;       /* its percent-encoding is broken */
} route_match;

/* Finds method and path (still percent-encoded) in table[0..n): fills *m
 * (free with route_match_free, whatever it found). */
void route_find(const route_def *table, size_t n, const char *method, const char *path, route_match *m);
void route_match_free(route_match *m);
/* Whether path is ROUTE_API_PREFIX or below it. */
bool route_in_api(const char *path);

/* If-Match: "\"<version>\"", the version in decimal as the ETag writes it
 * (digits only, no leading zero). 0 and *v, or -1. */
int route_if_match(const char *h, int64_t *v);
/* Whether an If-None-Match header h lists version v's ETag ("<v>", weak
 * W/"<v>" alike) or is "*": the comma-separated list of RFC 9110, whose
 * malformed members match nothing. */
bool route_etag_listed(const char *h, int64_t v);
/* The limit query value of /changes: an integer from 1 to 10000, digits
 * only (no sign, no white space). 0 and *out, or -1. */
int route_limit(const char *l, int *out);

#endif

/* route: the pure parsing behind the /v1 routes of http/api, split out so
 * it can be unit tested and fuzzed without a server: the path split with
 * its percent-decoding, the methods a route allows, and the small header
 * and query values api.c reads (If-Match, limit). No I/O, no state; any
 * thread. Every input here comes straight from the network. */
#ifndef ZS_HTTP_ROUTE_H
#define ZS_HTTP_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { R_NONE, R_STORES, R_STORE, R_RECORD, R_PUSH, R_CHANGES, R_EVENTS, R_STATIC } route_id;

typedef struct route {
    route_id id;
    char *store;        /* decoded store segment (owned) */
    char *key;          /* decoded key (owned) */
    size_t klen;
    bool key_broken;    /* the key's percent-encoding is broken */
    bool store_broken;  /* the store segment's encoding is broken or holds a NUL */
} route;

/* Splits /v1/stores/{s}[/records/{key...}|/push|/changes|/events] (path
 * still percent-encoded). Any other path gives R_NONE. Free with
 * route_free. */
void route_parse(const char *path, route *r);
void route_free(route *r);

/* "GET, PUT, DELETE" and so on ("" for R_NONE and R_STATIC). */
const char *route_allowed_methods(route_id id);
bool route_method_allowed(route_id id, const char *method);

/* If-Match: "\"<version>\"", the version in decimal as the ETag writes it
 * (digits only, no leading zero). 0 and *v, or -1. */
int route_if_match(const char *h, int64_t *v);
/* The limit query value of /changes: an integer from 1 to 10000, digits
 * only (no sign, no white space). 0 and *out, or -1. */
int route_limit(const char *l, int *out);

#endif

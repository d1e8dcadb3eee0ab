/* store_schema: a store's schema as the gateway holds it: its compact text
 * (for the config znode and the description) and its compiled program (for
 * validation), counted references, shared through a store_schema_cache.
 *
 * The cache is keyed by the compact text itself: two configurations with
 * the same schema text share one compiled program, and the program a
 * request uses is by construction the one compiled from the text of the
 * configuration it evaluated (no version bookkeeping, no stale entry).
 *
 * Ownership: the gateway has one cache, created and freed by main, which
 * hands it to whoever reads configs (the mirror set, the api, the
 * collector, its own setup); it outlives all of them (freed last, after
 * mirror_set_free). store_schema_get and store_schema_ref each give the
 * caller one reference, dropped with store_schema_unref. A store_cfg owns
 * the reference in its `schema` field (see store_cfg.h: store_cfg_copy,
 * store_cfg_release). An entry holds no pointer to its cache: ref, unref
 * and the accessors never touch the cache.
 *
 * Threads and locks: ref/unref are atomic (no lock). get and stats take the
 * cache's own mutex, which nests nothing and is never held while compiling;
 * any thread. new and free: one thread, with no other user of the cache.
 * Entries nobody references stay cached (up to STORE_SCHEMA_IDLE_MAX of
 * them) so that re-reading an unchanged config does not compile again;
 * past that they are freed. */
#ifndef ZS_STORE_SCHEMA_H
#define ZS_STORE_SCHEMA_H

#include <stddef.h>

#include "schema/schema.h"

#define STORE_SCHEMA_IDLE_MAX 64

typedef struct store_schema store_schema;
typedef struct store_schema_cache store_schema_cache;

/* An empty cache; NULL when out of memory. */
store_schema_cache *store_schema_cache_new(void);
/* Frees the idle entries and the cache, and forgets the referenced entries
 * (at exit: an entry still referenced then is a leak, which LeakSanitizer
 * reports; its reference stays valid, as the entry never reaches back to
 * the cache). c may be NULL. No store_schema_get on c may run or follow. */
void store_schema_cache_free(store_schema_cache *c);

/* The schema for compact JSON text[0..len): from cache c, else compiled
 * (and cached in c). 0 and *out (one reference), or -1 and a sentence in
 * err. */
int store_schema_get(store_schema_cache *c, const char *text, size_t len, store_schema **out, char *err,
                     size_t errlen);
store_schema *store_schema_ref(store_schema *s); /* s may be NULL; the caller holds a reference */
void store_schema_unref(store_schema *s);        /* s may be NULL */

const char *store_schema_text(const store_schema *s, size_t *len);
const schema_t *store_schema_program(const store_schema *s);

/* Entries in cache c, and how many compilations it ran (tests, metrics). */
void store_schema_cache_stats(store_schema_cache *c, size_t *entries, unsigned long long *compiles);

#endif

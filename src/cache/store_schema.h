/* store_schema: a store's schema as the gateway holds it: its compact text
 * (for the config znode and the description) and its compiled program (for
 * validation), counted references, shared through one per-process cache.
 *
 * The cache is keyed by the compact text itself: two configurations with
 * the same schema text share one compiled program, and the program a
 * request uses is by construction the one compiled from the text of the
 * configuration it evaluated (no version bookkeeping, no stale entry).
 *
 * Ownership: store_schema_get and store_schema_ref each give the caller one
 * reference, dropped with store_schema_unref. A store_cfg owns the
 * reference in its `schema` field (see stores.h: store_cfg_copy,
 * store_cfg_release). Threads: ref/unref are atomic (no lock); get takes
 * the cache mutex (compilation runs outside it). Entries nobody references
 * stay cached (up to STORE_SCHEMA_IDLE_MAX of them) so that re-reading an
 * unchanged config does not compile again; past that they are freed. */
#ifndef ZS_STORE_SCHEMA_H
#define ZS_STORE_SCHEMA_H

#include <stddef.h>

#include "schema/schema.h"

#define STORE_SCHEMA_IDLE_MAX 64

typedef struct store_schema store_schema;

/* The schema for compact JSON text[0..len): from the cache, else compiled
 * (and cached). 0 and *out (one reference), or -1 and a sentence in err. */
int store_schema_get(const char *text, size_t len, store_schema **out, char *err, size_t errlen);
store_schema *store_schema_ref(store_schema *s); /* s may be NULL */
void store_schema_unref(store_schema *s);        /* s may be NULL */

const char *store_schema_text(const store_schema *s, size_t *len);
const schema_t *store_schema_program(const store_schema *s);

/* Frees the idle entries and forgets the rest (at exit: an entry still
 * referenced then is a leak, which LeakSanitizer reports). */
void store_schema_cache_shutdown(void);
/* Entries in the cache, and how many compilations it ran (tests, metrics). */
void store_schema_cache_stats(size_t *entries, unsigned long long *compiles);

#endif

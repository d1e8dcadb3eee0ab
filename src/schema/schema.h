/* schema: JSON Schema draft-07, compiled once, checked per value.
 *
 * schema_compile() turns the text of one schema (a store's `schema`) into an
 * immutable program: every draft-07 validation keyword, local `$ref`s
 * resolved (JSON pointers, `$id`s, the draft-07 meta-schema itself), regular
 * expressions compiled with PCRE2. A schema that is not valid draft-07 (it
 * is checked against the draft-07 meta-schema), that uses a keyword of a
 * later draft, a `$ref` that is not local, a regex PCRE2 refuses, or that
 * passes a limit, is refused with a sentence naming the keyword and the
 * JSON pointer in the schema (for a 400 body). Never partly enforced.
 *
 * schema_validate() checks one JSON value (any JSON text; the gateway passes
 * its compact form). Numbers are compared exactly as written (decimal
 * arithmetic on the digits: 1 == 1.0 == 10e-1, 0.3 is a multiple of 0.1,
 * integers of any length). Work is bounded: a step budget per value, a
 * depth limit, PCRE2 match limits; passing one is a validation failure with
 * keyword "budget" or "depth" (never a pass).
 *
 * Ownership: schema_compile hands the caller a schema_t freed with
 * schema_free. schema_errors owns its strings (schema_errors_free).
 * Threads: a compiled schema_t is never modified after schema_compile
 * returns; any number of threads may call schema_validate on the same one
 * at once (PCRE2 match data is per call). No global mutable state, no
 * locks. See docs/SCHEMA.md. */
#ifndef ZS_SCHEMA_H
#define ZS_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/sbuf.h"

typedef struct schema schema_t;

/* Limits; a zero field takes its default. */
typedef struct schema_limits {
    size_t max_text;      /* bytes of schema text (SCHEMA_MAX_TEXT) */
    uint32_t max_nodes;   /* compiled subschemas, booleans and $refs included (SCHEMA_MAX_NODES) */
    uint64_t max_steps;   /* validation steps per value (SCHEMA_MAX_STEPS) */
} schema_limits;

#define SCHEMA_MAX_TEXT (256u * 1024u)
#define SCHEMA_MAX_NODES 10000u
#define SCHEMA_MAX_STEPS 2000000u
/* JSON nesting of a schema's text, and of a validated value. */
#define SCHEMA_MAX_SCHEMA_DEPTH 128
#define SCHEMA_MAX_VALUE_DEPTH 512
/* Nested evaluations of subschemas while validating one value (a subschema
 * per level of the value, plus allOf/anyOf/... on one level). */
#define SCHEMA_MAX_EVAL_DEPTH 1024
/* PCRE2: per match, pcre2_set_match_limit / depth_limit / heap_limit (KiB). */
#define SCHEMA_REGEX_MATCH_LIMIT 100000u
#define SCHEMA_REGEX_DEPTH_LIMIT 2000u
#define SCHEMA_REGEX_HEAP_LIMIT 4096u

/* Compiles json[0..len). 0 and *out, or -1 and a sentence in err (always
 * NUL-terminated when errlen > 0; out untouched). lim may be NULL. */
int schema_compile(const char *json, size_t len, const schema_limits *lim, schema_t **out, char *err,
                   size_t errlen);
void schema_free(schema_t *s);

/* ---- validation ---- */

#define SCHEMA_ERRORS_MAX 32

typedef struct schema_error {
    char *path;          /* JSON pointer (RFC 6901) in the value; "" is the value itself */
    const char *keyword; /* static: "type", "required", ..., or "budget", "depth" */
    char *message;       /* a sentence */
} schema_error;

typedef struct schema_errors {
    size_t max;   /* in: errors to collect, 1..SCHEMA_ERRORS_MAX (0: 10) */
    size_t count; /* out */
    schema_error e[SCHEMA_ERRORS_MAX];
} schema_errors;

#define SCHEMA_ERRORS_INIT {10, 0, {{0}}}

enum {
    SCHEMA_VALID = 0,
    SCHEMA_INVALID = 1, /* out holds the first errors found (at least one) */
    SCHEMA_ERROR = -1,  /* not JSON, or out of memory; out holds one error, keyword "json" or "internal" */
};

/* Validates json[0..len) against s. out may be NULL (a yes/no answer,
 * faster: the first failure ends the walk); otherwise it must be empty
 * (count 0) and is filled. Returns SCHEMA_VALID, SCHEMA_INVALID or
 * SCHEMA_ERROR. Reentrant; s is only read. */
int schema_validate(const schema_t *s, const char *json, size_t len, schema_errors *out);

void schema_errors_free(schema_errors *out);
/* Appends out's errors as a JSON array of {"path","keyword","message"}. */
void schema_errors_json(const schema_errors *out, sbuf *b);

/* What the compiled schema holds (tests, metrics). */
uint32_t schema_nodes(const schema_t *s);

#endif

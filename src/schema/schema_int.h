/* schema internals: the JSON tree both schemas and values are parsed into,
 * exact decimal numbers, JSON equality. Private to src/schema/. Pure
 * functions over caller-owned memory; any thread. */
#ifndef ZS_SCHEMA_INT_H
#define ZS_SCHEMA_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- arena: many small blocks freed at once ---- */
typedef struct schema_arena_blk schema_arena_blk;
typedef struct schema_arena {
    schema_arena_blk *head;
    bool failed;
} schema_arena;
void *schema_arena_alloc(schema_arena *a, size_t n); /* 8-aligned; NULL when out of memory */
void schema_arena_free(schema_arena *a);

/* ---- exact decimals: value = (neg ? -1 : 1) * D * 10^exp, where D is the
 * digit string d[0..nd) with no leading or trailing zero; zero is nd == 0
 * (and never negative). Exponents saturate at +-SCHEMA_DEC_EXP_MAX. ---- */
#define SCHEMA_DEC_EXP_MAX 1000000000000000LL
typedef struct schema_dec {
    bool neg;
    uint32_t nd;
    int64_t exp;
    const char *d; /* ASCII digits */
} schema_dec;

/* Parses a JSON number literal (already validated) into *out; the digits go
 * to the arena. false when out of memory. */
bool schema_dec_parse(schema_arena *a, const char *p, size_t n, schema_dec *out);
int schema_dec_cmp(const schema_dec *x, const schema_dec *y); /* -1, 0, 1 */
bool schema_dec_is_int(const schema_dec *x);
/* Is x an integer multiple of m (m > 0)? 1 yes, 0 no, -1 when the exact
 * answer would take more than *budget steps (which it decrements). */
int schema_dec_multiple(const schema_dec *x, const schema_dec *m, uint64_t *budget);
/* x as an unsigned integer, saturated (negative: 0, fraction dropped). */
uint64_t schema_dec_u64(const schema_dec *x);
/* Writes x in a short form (for messages), at most cap-1 chars. */
void schema_dec_str(const schema_dec *x, char *buf, size_t cap);

/* ---- the JSON tree ---- */
enum { JV_NULL, JV_FALSE, JV_TRUE, JV_NUM, JV_STR, JV_ARR, JV_OBJ };

typedef struct schema_jv schema_jv;
typedef struct schema_jmem {
    const char *k; /* decoded, NUL-terminated (may hold NUL bytes: use kn) */
    uint32_t kn;
    schema_jv *v;
} schema_jmem;

struct schema_jv {
    uint8_t t;
    uint32_t n;   /* string bytes, array elements, object members */
    uint32_t aux; /* free for the compiler (memo) */
    union {
        const char *s;         /* JV_STR: decoded UTF-8, NUL-terminated */
        schema_dec num;        /* JV_NUM */
        schema_jv **a;         /* JV_ARR */
        struct {
            schema_jmem *m;    /* in document order */
            schema_jmem **byk; /* sorted by key (bytes, then length) */
        } o;
    } u;
};

/* Parses JSON text (RFC 8259, UTF-8, no duplicate keys, nesting up to
 * max_depth) into the arena. NULL and a static reason in *why (and the
 * byte offset in *at) when it is not JSON or memory ran out (*why then
 * "out of memory"). */
schema_jv *schema_json_parse(schema_arena *a, const char *p, size_t n, int max_depth, const char **why, size_t *at);

/* Member of an object by key, or NULL. */
schema_jv *schema_json_get(const schema_jv *o, const char *k, size_t kn);
/* JSON equality (numbers by value, object members in any order). Costs one
 * step per value visited from *budget; false with *budget at 0 when spent. */
bool schema_json_eq(const schema_jv *x, const schema_jv *y, uint64_t *budget);
/* A hash consistent with schema_json_eq. */
uint64_t schema_json_hash(const schema_jv *x);
/* Code points in a UTF-8 string. */
size_t schema_utf8_len(const char *s, size_t n);
/* Drops the bytes of s that are not valid UTF-8 (a message cut short). */
void schema_utf8_clean(char *s);

/* ---- the compiled program (compile.c builds it, validate.c runs it) ---- */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "schema/schema.h"

#define SN_NONE UINT32_MAX
enum { SN_TRUE, SN_FALSE, SN_REF, SN_OBJ };
/* type bits */
enum { T_NULL = 1, T_BOOL = 2, T_OBJ = 4, T_ARR = 8, T_NUM = 16, T_STR = 32, T_INT = 64 };
/* which number keywords */
enum { H_MIN = 1, H_MAX = 2, H_XMIN = 4, H_XMAX = 8, H_MULT = 16 };

typedef struct sn_prop {
    const char *k;
    uint32_t kn;
    uint32_t s;
} sn_prop;

typedef struct sn_pat {
    pcre2_code *re;
    const char *src;
    uint32_t s;
} sn_pat;

typedef struct sn_dep {
    const char *k;
    uint32_t kn;
    uint32_t s;             /* a schema, or SN_NONE: */
    const schema_jv *names; /* an array of property names */
} sn_dep;

typedef struct sn_list {
    uint32_t *v;
    uint32_t n;
} sn_list;

typedef struct snode {
    uint8_t kind;
    uint8_t has;      /* H_* */
    bool items_array; /* items is an array (items_list) */
    bool unique;
    uint32_t types;   /* T_*; 0: no "type" */
    uint32_t ref;     /* SN_REF */
    const char *ptr;  /* JSON pointer in the schema */
    schema_dec min, max, xmin, xmax, mult;
    uint64_t minlen, maxlen, minitems, maxitems, minprops, maxprops; /* absent: 0 / UINT64_MAX */
    pcre2_code *pattern;
    const char *pattern_src;
    uint32_t items, additems, contains, addprops, propnames, not_, if_, then_, else_;
    sn_list items_list, allof, anyof, oneof;
    sn_prop *props; /* sorted by key as schema_json_get sorts */
    uint32_t nprops;
    sn_pat *pats;
    uint32_t npats;
    sn_dep *deps;
    uint32_t ndeps;
    const schema_jv *required; /* array of strings, or NULL */
    const schema_jv *enum_;    /* array, or NULL */
    const schema_jv *const_;   /* or NULL */
} snode;

struct schema {
    schema_arena arena; /* the schema's tree, strings, lists */
    snode *nodes;
    uint32_t nn, cap;
    uint32_t root;
    uint64_t max_steps;
    bool explain; /* the meta-schema: a failed anyOf/oneOf reports its closest branch's error */
    pcre2_match_context *mctx;
    pcre2_code **res; /* every compiled regex, to free */
    uint32_t nres, capres;
};

extern const char schema_meta_draft07[];
extern const size_t schema_meta_draft07_len;

/* validate.c: checks a parsed tree; what schema_validate does after parsing.
 * max_depth: the deepest path the value can have. */
int schema_validate_tree(const schema_t *s, const schema_jv *v, int max_depth, schema_errors *out);
/* compile.c: key order of sn_prop (the same as an object's byk). */
int schema_key_cmp(const char *a, uint32_t an, const char *b, uint32_t bn);

#endif

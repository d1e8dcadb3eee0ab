/* schema: the JSON tree (parser, lookup, equality, hash) and the arena. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "schema/schema_int.h"
#include "util/hex.h"
#include "util/utf8.h"

/* ---- arena ---- */

struct schema_arena_blk {
    schema_arena_blk *next;
    size_t used, cap;
    _Alignas(8) unsigned char data[];
};

#define ARENA_BLOCK 16384u

void *schema_arena_alloc(schema_arena *a, size_t n) {
    if (a->failed) return NULL;
    n = (n + 7u) & ~(size_t)7u;
    schema_arena_blk *b = a->head;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > ARENA_BLOCK ? n : ARENA_BLOCK;
        b = malloc(sizeof *b + cap);
        if (!b) {
            a->failed = true;
            return NULL;
        }
        b->used = 0;
        b->cap = cap;
        /* a big block goes behind the current one, so the rest of the
         * current block stays in use */
        if (a->head && cap > ARENA_BLOCK) {
            b->next = a->head->next;
            a->head->next = b;
        } else {
            b->next = a->head;
            a->head = b;
        }
    }
    void *p = b->data + b->used;
    b->used += n;
    return p;
}

void schema_arena_free(schema_arena *a) {
    schema_arena_blk *b = a->head;
    while (b) {
        schema_arena_blk *n = b->next;
        free(b);
        b = n;
    }
    a->head = NULL;
    a->failed = false;
}

/* ---- parser ---- */

typedef struct parser {
    schema_arena *a;
    const char *p, *end, *start;
    int max_depth;
    const char *why;
    const char *at;
} parser;

static schema_jv *perr(parser *ps, const char *why, const char *at) {
    if (!ps->why) {
        ps->why = why;
        ps->at = at;
    }
    return NULL;
}

static void ws(parser *ps) {
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')) ps->p++;
}

static schema_jv *newv(parser *ps, uint8_t t) {
    schema_jv *v = schema_arena_alloc(ps->a, sizeof *v);
    if (!v) return perr(ps, "out of memory", ps->p);
    memset(v, 0, sizeof *v);
    v->t = t;
    return v;
}

static bool hex4(parser *ps, const char *q, unsigned *out) {
    if (ps->end - q < 4) return false;
    return hex_quad(q, out);
}

/* ps->p at the opening quote. Decoded string into the arena. */
static bool pstring(parser *ps, const char **out, uint32_t *outn) {
    const char *q = ps->p + 1;
    /* first pass: find the end, validate */
    const char *s = q;
    bool esc = false;
    while (s < ps->end && *s != '"') {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20) return perr(ps, "control character in string", s), false;
        if (c == '\\') {
            if (ps->end - s < 2) break;
            esc = true;
            s += 2;
            continue;
        }
        int n = (int)utf8_decode((const unsigned char *)s, (size_t)(ps->end - s), NULL);
        if (!n) return perr(ps, "invalid UTF-8", s), false;
        s += n;
    }
    if (s >= ps->end || *s != '"') return perr(ps, "unterminated string", ps->p), false;
    size_t raw = (size_t)(s - q);
    if (raw > UINT32_MAX - 1) return perr(ps, "string too long", q), false;
    char *o = schema_arena_alloc(ps->a, raw + 1);
    if (!o) return perr(ps, "out of memory", q), false;
    size_t on = 0;
    if (!esc) {
        memcpy(o, q, raw);
        on = raw;
    } else {
        const char *r = q;
        while (r < s) {
            if (*r != '\\') {
                o[on++] = *r++;
                continue;
            }
            char e = r[1];
            const char *at = r;
            r += 2;
            switch (e) {
            case '"': o[on++] = '"'; break;
            case '\\': o[on++] = '\\'; break;
            case '/': o[on++] = '/'; break;
            case 'b': o[on++] = '\b'; break;
            case 'f': o[on++] = '\f'; break;
            case 'n': o[on++] = '\n'; break;
            case 'r': o[on++] = '\r'; break;
            case 't': o[on++] = '\t'; break;
            case 'u': {
                unsigned cp;
                if (!hex4(ps, r, &cp)) return perr(ps, "bad \\u escape", at), false;
                r += 4;
                if (cp >= 0xdc00 && cp <= 0xdfff) return perr(ps, "lone surrogate", at), false;
                if (cp >= 0xd800 && cp <= 0xdbff) {
                    unsigned lo;
                    if (s - r < 6 || r[0] != '\\' || r[1] != 'u' || !hex4(ps, r + 2, &lo) || lo < 0xdc00 ||
                        lo > 0xdfff)
                        return perr(ps, "lone surrogate", at), false;
                    r += 6;
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                }
                on += utf8_encode(cp, o + on); /* never longer than the escape */
                break;
            }
            default: return perr(ps, "bad escape", at), false;
            }
        }
        if (r != s) return perr(ps, "bad escape", s), false;
    }
    o[on] = '\0';
    *out = o;
    *outn = (uint32_t)on;
    ps->p = s + 1;
    return true;
}

static schema_jv *pvalue(parser *ps, int depth);

static int key_cmp(const schema_jmem *x, const schema_jmem *y) {
    uint32_t n = x->kn < y->kn ? x->kn : y->kn;
    int c = memcmp(x->k, y->k, n);
    if (c) return c;
    return x->kn < y->kn ? -1 : x->kn > y->kn;
}

static int key_cmp_q(const void *a, const void *b) {
    return key_cmp(*(const schema_jmem *const *)a, *(const schema_jmem *const *)b);
}

/* A growable vector on the heap for one container being parsed. */
typedef struct vec {
    void *p;
    size_t n, cap, sz;
} vec;

static void *vec_push(vec *v) {
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 8;
        void *p = realloc(v->p, cap * v->sz);
        if (!p) return NULL;
        v->p = p;
        v->cap = cap;
    }
    return (char *)v->p + v->sz * v->n++;
}

static schema_jv *parray(parser *ps, int depth) {
    schema_jv *v = newv(ps, JV_ARR);
    if (!v) return NULL;
    ps->p++;
    ws(ps);
    if (ps->p < ps->end && *ps->p == ']') {
        ps->p++;
        return v;
    }
    vec el = {NULL, 0, 0, sizeof(schema_jv *)};
    for (;;) {
        schema_jv *e = pvalue(ps, depth + 1);
        if (!e) goto bad;
        schema_jv **slot = vec_push(&el);
        if (!slot) {
            perr(ps, "out of memory", ps->p);
            goto bad;
        }
        *slot = e;
        ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == ']') {
            ps->p++;
            break;
        }
        perr(ps, "expected ',' or ']'", ps->p);
        goto bad;
    }
    if (el.n > UINT32_MAX) {
        perr(ps, "array too long", ps->p);
        goto bad;
    }
    v->u.a = schema_arena_alloc(ps->a, el.n * sizeof(schema_jv *));
    if (!v->u.a) {
        perr(ps, "out of memory", ps->p);
        goto bad;
    }
    memcpy(v->u.a, el.p, el.n * sizeof(schema_jv *));
    v->n = (uint32_t)el.n;
    free(el.p);
    return v;
bad:
    free(el.p);
    return NULL;
}

static schema_jv *pobject(parser *ps, int depth) {
    schema_jv *v = newv(ps, JV_OBJ);
    if (!v) return NULL;
    const char *open = ps->p;
    ps->p++;
    ws(ps);
    if (ps->p < ps->end && *ps->p == '}') {
        ps->p++;
        return v;
    }
    vec mem = {NULL, 0, 0, sizeof(schema_jmem)};
    for (;;) {
        ws(ps);
        if (ps->p >= ps->end || *ps->p != '"') {
            perr(ps, "expected a string key", ps->p);
            goto bad;
        }
        schema_jmem m;
        if (!pstring(ps, &m.k, &m.kn)) goto bad;
        ws(ps);
        if (ps->p >= ps->end || *ps->p != ':') {
            perr(ps, "expected ':'", ps->p);
            goto bad;
        }
        ps->p++;
        m.v = pvalue(ps, depth + 1);
        if (!m.v) goto bad;
        schema_jmem *slot = vec_push(&mem);
        if (!slot) {
            perr(ps, "out of memory", ps->p);
            goto bad;
        }
        *slot = m;
        ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == '}') {
            ps->p++;
            break;
        }
        perr(ps, "expected ',' or '}'", ps->p);
        goto bad;
    }
    if (mem.n > UINT32_MAX) {
        perr(ps, "object too long", ps->p);
        goto bad;
    }
    v->n = (uint32_t)mem.n;
    v->u.o.m = schema_arena_alloc(ps->a, mem.n * sizeof(schema_jmem));
    v->u.o.byk = schema_arena_alloc(ps->a, mem.n * sizeof(schema_jmem *));
    if (!v->u.o.m || !v->u.o.byk) {
        perr(ps, "out of memory", ps->p);
        goto bad;
    }
    memcpy(v->u.o.m, mem.p, mem.n * sizeof(schema_jmem));
    free(mem.p);
    for (uint32_t i = 0; i < v->n; i++) v->u.o.byk[i] = &v->u.o.m[i];
    qsort(v->u.o.byk, v->n, sizeof(schema_jmem *), key_cmp_q);
    for (uint32_t i = 1; i < v->n; i++)
        if (key_cmp(v->u.o.byk[i - 1], v->u.o.byk[i]) == 0) return perr(ps, "duplicate object key", open);
    return v;
bad:
    free(mem.p);
    return NULL;
}

static schema_jv *pnumber(parser *ps) {
    const char *q = ps->p, *s = q;
    if (s < ps->end && *s == '-') s++;
    if (s >= ps->end) return perr(ps, "bad number", q);
    if (*s == '0') s++;
    else if (*s >= '1' && *s <= '9')
        while (s < ps->end && *s >= '0' && *s <= '9') s++;
    else return perr(ps, "bad number", q);
    if (s < ps->end && *s == '.') {
        s++;
        if (s >= ps->end || !(*s >= '0' && *s <= '9')) return perr(ps, "bad number", q);
        while (s < ps->end && *s >= '0' && *s <= '9') s++;
    }
    if (s < ps->end && (*s == 'e' || *s == 'E')) {
        s++;
        if (s < ps->end && (*s == '+' || *s == '-')) s++;
        if (s >= ps->end || !(*s >= '0' && *s <= '9')) return perr(ps, "bad number", q);
        while (s < ps->end && *s >= '0' && *s <= '9') s++;
    }
    schema_jv *v = newv(ps, JV_NUM);
    if (!v) return NULL;
    if (!schema_dec_parse(ps->a, q, (size_t)(s - q), &v->u.num)) return perr(ps, "out of memory", q);
    ps->p = s;
    return v;
}

static bool lit(parser *ps, const char *w, size_t n) {
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, w, n) != 0) return false;
    ps->p += n;
    return true;
}

static schema_jv *pvalue(parser *ps, int depth) {
    ws(ps);
    if (ps->p >= ps->end) return perr(ps, "unexpected end", ps->p);
    if ((*ps->p == '{' || *ps->p == '[') && depth > ps->max_depth) return perr(ps, "nesting too deep", ps->p);
    switch (*ps->p) {
    case '{': return pobject(ps, depth);
    case '[': return parray(ps, depth);
    case '"': {
        schema_jv *v = newv(ps, JV_STR);
        if (!v || !pstring(ps, &v->u.s, &v->n)) return NULL;
        return v;
    }
    case 't': return lit(ps, "true", 4) ? newv(ps, JV_TRUE) : perr(ps, "bad literal", ps->p);
    case 'f': return lit(ps, "false", 5) ? newv(ps, JV_FALSE) : perr(ps, "bad literal", ps->p);
    case 'n': return lit(ps, "null", 4) ? newv(ps, JV_NULL) : perr(ps, "bad literal", ps->p);
    default:
        if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9')) return pnumber(ps);
        return perr(ps, "unexpected character", ps->p);
    }
}

schema_jv *schema_json_parse(schema_arena *a, const char *p, size_t n, int max_depth, const char **why, size_t *at) {
    parser ps = {a, p, p + n, p, max_depth, NULL, NULL};
    schema_jv *v = pvalue(&ps, 1);
    if (v) {
        ws(&ps);
        if (ps.p != ps.end) v = perr(&ps, "text after the value", ps.p);
    }
    if (!v) {
        *why = ps.why ? ps.why : "out of memory";
        *at = ps.at ? (size_t)(ps.at - p) : 0;
    }
    return v;
}

/* ---- lookup, equality, hash ---- */

schema_jv *schema_json_get(const schema_jv *o, const char *k, size_t kn) {
    if (o->t != JV_OBJ) return NULL;
    size_t lo = 0, hi = o->n;
    schema_jmem key = {k, (uint32_t)kn, NULL};
    if (kn > UINT32_MAX) return NULL;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = key_cmp(o->u.o.byk[mid], &key);
        if (c == 0) return o->u.o.byk[mid]->v;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

bool schema_json_eq(const schema_jv *x, const schema_jv *y, uint64_t *budget) {
    if (*budget == 0) return false;
    (*budget)--;
    if (x->t != y->t) return false;
    switch (x->t) {
    case JV_NUM: return schema_dec_cmp(&x->u.num, &y->u.num) == 0;
    case JV_STR: return x->n == y->n && memcmp(x->u.s, y->u.s, x->n) == 0;
    case JV_ARR:
        if (x->n != y->n) return false;
        for (uint32_t i = 0; i < x->n; i++)
            if (!schema_json_eq(x->u.a[i], y->u.a[i], budget)) return false;
        return true;
    case JV_OBJ:
        if (x->n != y->n) return false;
        for (uint32_t i = 0; i < x->n; i++) {
            const schema_jmem *a = x->u.o.byk[i], *b = y->u.o.byk[i];
            if (key_cmp(a, b) != 0 || !schema_json_eq(a->v, b->v, budget)) return false;
        }
        return true;
    default: return true;
    }
}

static uint64_t mix(uint64_t h, uint64_t v) {
    h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    return h * 0xff51afd7ed558ccdULL;
}

static uint64_t hbytes(uint64_t h, const char *p, size_t n) {
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)p[i]) * 0x100000001b3ULL;
    return h;
}

uint64_t schema_json_hash(const schema_jv *x) {
    uint64_t h = mix(0xcbf29ce484222325ULL, x->t);
    switch (x->t) {
    case JV_NUM:
        h = mix(h, x->u.num.neg);
        h = mix(h, (uint64_t)x->u.num.exp);
        return hbytes(h, x->u.num.d, x->u.num.nd);
    case JV_STR: return hbytes(h, x->u.s, x->n);
    case JV_ARR:
        for (uint32_t i = 0; i < x->n; i++) h = mix(h, schema_json_hash(x->u.a[i]));
        return h;
    case JV_OBJ:
        for (uint32_t i = 0; i < x->n; i++) {
            h = hbytes(h, x->u.o.byk[i]->k, x->u.o.byk[i]->kn);
            h = mix(h, schema_json_hash(x->u.o.byk[i]->v));
        }
        return h;
    default: return h;
    }
}

size_t schema_utf8_len(const char *s, size_t n) {
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xc0) != 0x80) c++;
    return c;
}

void schema_utf8_clean(char *s) {
    const unsigned char *r = (const unsigned char *)s, *end = r + strlen(s);
    char *w = s;
    while (r < end) {
        int n = (int)utf8_decode(r, (size_t)(end - r), NULL);
        if (!n) {
            r++;
            continue;
        }
        memmove(w, r, (size_t)n);
        w += n;
        r += n;
    }
    *w = '\0';
}

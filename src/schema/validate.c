/* schema: validating one value against a compiled schema (see schema.h).
 *
 * A recursive walk of the schema's nodes over the value's tree. Two modes:
 * collecting (errors recorded, up to out->max, the walk goes on to find
 * more) and quiet (inside anyOf, oneOf, not, if, contains, propertyNames:
 * only a yes/no, the first failure ends it). Limits end the whole walk as
 * a failure, in either mode, so a limit can never turn into a pass (e.g.
 * under "not"). */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/schema_int.h"

typedef struct seg {
    const char *k; /* NULL: an array index */
    uint32_t kn;
    uint32_t idx;
} seg;

typedef struct vctx {
    const schema_t *s;
    uint64_t budget;
    int depth;
    schema_errors *out;
    size_t max;
    bool full;        /* out has max errors: stop */
    const char *stop; /* a limit was hit: "budget", "depth", "internal" */
    pcre2_match_data *md;
    seg *path;
    int npath, cappath;
} vctx;

static void path_str(const vctx *c, sbuf *b) {
    for (int i = 0; i < c->npath; i++) {
        sbuf_putc(b, '/');
        const seg *g = &c->path[i];
        if (!g->k) {
            sbuf_printf(b, "%u", g->idx);
            continue;
        }
        for (uint32_t j = 0; j < g->kn; j++) {
            if (g->k[j] == '~') sbuf_puts(b, "~0");
            else if (g->k[j] == '/') sbuf_puts(b, "~1");
            else sbuf_putc(b, g->k[j]);
        }
    }
}

static void record(vctx *c, const char *kw, const char *fmt, va_list ap) __attribute__((format(printf, 3, 0)));
static void record(vctx *c, const char *kw, const char *fmt, va_list ap) {
    if (!c->out || c->out->count >= c->max) return;
    schema_error *e = &c->out->e[c->out->count];
    sbuf p = SBUF_INIT;
    path_str(c, &p);
    char msg[400];
    vsnprintf(msg, sizeof msg, fmt, ap);
    schema_utf8_clean(msg);
    e->path = sbuf_failed(&p) ? NULL : sbuf_steal(&p, NULL);
    if (!e->path) e->path = strdup("");
    e->message = strdup(msg);
    e->keyword = kw;
    sbuf_free(&p);
    if (!e->path || !e->message) {
        free(e->path);
        free(e->message);
        e->path = e->message = NULL;
        c->stop = "internal";
        return;
    }
    c->out->count++;
    if (c->out->count >= c->max) c->full = true;
}

/* A keyword failed. Returns true when the walk must stop here. */
static bool err(vctx *c, bool quiet, const char *kw, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static bool err(vctx *c, bool quiet, const char *kw, const char *fmt, ...) {
    if (!quiet && !c->full) {
        va_list ap;
        va_start(ap, fmt);
        record(c, kw, fmt, ap);
        va_end(ap);
    }
    return quiet || c->full || c->stop;
}

static void limit(vctx *c, const char *kw, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void limit(vctx *c, const char *kw, const char *fmt, ...) {
    if (c->stop) return;
    va_list ap;
    va_start(ap, fmt);
    record(c, kw, fmt, ap);
    va_end(ap);
    c->stop = kw;
}

static bool step(vctx *c, uint64_t n) {
    if (c->stop) return false;
    if (c->budget < n) {
        c->budget = 0;
        limit(c, "budget", "validation took more than %llu steps; the value or the schema is too costly",
              (unsigned long long)c->s->max_steps);
        return false;
    }
    c->budget -= n;
    return true;
}

static bool push(vctx *c, const char *k, uint32_t kn, uint32_t idx) {
    if (c->npath >= c->cappath) {
        limit(c, "depth", "the value is nested too deeply");
        return false;
    }
    c->path[c->npath++] = (seg){k, kn, idx};
    return true;
}

static const char *type_name(const schema_jv *v) {
    switch (v->t) {
    case JV_NULL: return "null";
    case JV_TRUE:
    case JV_FALSE: return "boolean";
    case JV_NUM: return schema_dec_is_int(&v->u.num) ? "integer" : "number";
    case JV_STR: return "string";
    case JV_ARR: return "array";
    default: return "object";
    }
}

static bool type_ok(uint32_t types, const schema_jv *v) {
    switch (v->t) {
    case JV_NULL: return types & T_NULL;
    case JV_TRUE:
    case JV_FALSE: return types & T_BOOL;
    case JV_NUM: return (types & T_NUM) || ((types & T_INT) && schema_dec_is_int(&v->u.num));
    case JV_STR: return types & T_STR;
    case JV_ARR: return types & T_ARR;
    default: return types & T_OBJ;
    }
}

static void types_str(uint32_t types, char *buf, size_t cap) {
    static const char *names[] = {"null", "boolean", "object", "array", "number", "string", "integer"};
    size_t n = 0;
    buf[0] = '\0';
    for (int k = 0; k < 7; k++)
        if (types & (1u << k)) {
            int w = snprintf(buf + n, cap - n, "%s%s", n ? " or " : "", names[k]);
            if (w < 0 || (size_t)w >= cap - n) break;
            n += (size_t)w;
        }
}

/* 1 match, 0 none, -1 a limit */
static int match(vctx *c, const pcre2_code *re, const char *s, size_t n) {
    if (!step(c, 1 + n / 64)) return -1;
    if (!c->md) {
        c->md = pcre2_match_data_create(1, NULL);
        if (!c->md) {
            limit(c, "internal", "out of memory");
            return -1;
        }
    }
    int r = pcre2_match(re, (PCRE2_SPTR)s, n, 0, 0, c->md, c->s->mctx);
    if (r >= 0) return 1;
    if (r == PCRE2_ERROR_NOMATCH) return 0;
    if (r == PCRE2_ERROR_NOMEMORY) limit(c, "internal", "out of memory");
    else limit(c, "budget", "a regular expression took too long on this value (PCRE2 error %d)", r);
    return -1;
}

static bool ev(vctx *c, uint32_t si, const schema_jv *v, bool quiet);

/* Moves t's errors to c->out (as many as fit). */
static void take(vctx *c, schema_errors *t) {
    for (size_t i = 0; i < t->count; i++) {
        if (c->out->count < c->max) {
            c->out->e[c->out->count++] = t->e[i];
            if (c->out->count >= c->max) c->full = true;
        } else {
            free(t->e[i].path);
            free(t->e[i].message);
        }
    }
    t->count = 0;
}

/* For the meta-schema's messages: when no branch of an anyOf/oneOf
 * matched, record the first error of the branch that got deepest into the
 * value (the longest path), the likeliest meant. false when there was none
 * to record. */
static bool explain(vctx *c, const sn_list *l, const schema_jv *v) {
    schema_errors *save = c->out;
    size_t savemax = c->max;
    bool savefull = c->full;
    schema_errors best = {0}, t = {0};
    size_t bestlen = 0;
    for (uint32_t i = 0; i < l->n && !c->stop; i++) {
        memset(&t, 0, sizeof t);
        c->out = &t;
        c->max = 1;
        c->full = false;
        ev(c, l->v[i], v, false);
        c->out = save;
        c->max = savemax;
        c->full = savefull;
        if (c->stop) break;
        if (t.count && (!best.count || strlen(t.e[0].path) > bestlen)) {
            schema_errors_free(&best);
            best = t;
            bestlen = strlen(t.e[0].path);
        } else {
            schema_errors_free(&t);
        }
    }
    if (c->stop) { /* the limit's own error */
        schema_errors_free(&best);
        take(c, &t);
        return true;
    }
    bool any = best.count > 0;
    take(c, &best);
    return any;
}

typedef struct hidx {
    uint64_t h;
    uint32_t i;
} hidx;

static int hidx_cmp(const void *a, const void *b) {
    const hidx *x = a, *y = b;
    if (x->h != y->h) return x->h < y->h ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

/* uniqueItems: sort by hash, compare equal hashes. 1 unique, 0 not (*i, *j
 * the first pair found), -1 a limit. */
static int unique(vctx *c, const schema_jv *v, uint32_t *pi, uint32_t *pj) {
    if (v->n < 2) return 1;
    if (!step(c, (uint64_t)v->n * 2)) return -1;
    hidx *h = malloc((size_t)v->n * sizeof *h);
    if (!h) {
        limit(c, "internal", "out of memory");
        return -1;
    }
    for (uint32_t i = 0; i < v->n; i++) h[i] = (hidx){schema_json_hash(v->u.a[i]), i};
    qsort(h, v->n, sizeof *h, hidx_cmp);
    int r = 1;
    for (uint32_t a = 0; a < v->n && r == 1; a++)
        for (uint32_t b = a + 1; b < v->n && h[b].h == h[a].h; b++) {
            if (schema_json_eq(v->u.a[h[a].i], v->u.a[h[b].i], &c->budget)) {
                *pi = h[a].i;
                *pj = h[b].i;
                r = 0;
                break;
            }
            if (c->budget == 0) {
                step(c, 1);
                r = -1;
                break;
            }
        }
    free(h);
    return r;
}

/* Is v one of the values of the array e? -1 a limit. */
static int in_enum(vctx *c, const schema_jv *e, const schema_jv *v) {
    for (uint32_t i = 0; i < e->n; i++) {
        if (schema_json_eq(v, e->u.a[i], &c->budget)) return 1;
        if (c->budget == 0) return step(c, 1), -1;
    }
    return 0;
}

#define STOP_IF(cond)                                                                                                  \
    do {                                                                                                               \
        if (cond) {                                                                                                    \
            ok = false;                                                                                                \
            goto done;                                                                                                 \
        }                                                                                                              \
    } while (0)
/* a keyword failed: record it; stop when quiet, full or a limit */
#define FAIL(...)                                                                                                      \
    do {                                                                                                               \
        ok = false;                                                                                                    \
        if (err(c, quiet, __VA_ARGS__)) goto done;                                                                     \
    } while (0)
/* a subschema failed (it recorded its own errors) */
#define SUBFAIL()                                                                                                      \
    do {                                                                                                               \
        ok = false;                                                                                                    \
        if (quiet || c->full || c->stop) goto done;                                                                    \
    } while (0)

static bool ev_number(vctx *c, const snode *n, const schema_jv *v, bool quiet) {
    bool ok = true;
    char a[64], b[64];
    const schema_dec *x = &v->u.num;
#define NUMSTR(d1, d2) (schema_dec_str(d1, a, sizeof a), schema_dec_str(d2, b, sizeof b))
    if ((n->has & H_MIN) && schema_dec_cmp(x, &n->min) < 0) {
        NUMSTR(x, &n->min);
        FAIL("minimum", "%s is less than the minimum %s", a, b);
    }
    if ((n->has & H_MAX) && schema_dec_cmp(x, &n->max) > 0) {
        NUMSTR(x, &n->max);
        FAIL("maximum", "%s is greater than the maximum %s", a, b);
    }
    if ((n->has & H_XMIN) && schema_dec_cmp(x, &n->xmin) <= 0) {
        NUMSTR(x, &n->xmin);
        FAIL("exclusiveMinimum", "%s is not greater than %s", a, b);
    }
    if ((n->has & H_XMAX) && schema_dec_cmp(x, &n->xmax) >= 0) {
        NUMSTR(x, &n->xmax);
        FAIL("exclusiveMaximum", "%s is not less than %s", a, b);
    }
    if (n->has & H_MULT) {
        int r = schema_dec_multiple(x, &n->mult, &c->budget);
        if (r < 0) {
            if (c->budget == 0) step(c, 1);
            else limit(c, "internal", "out of memory");
            STOP_IF(true);
        }
        if (r == 0) {
            NUMSTR(x, &n->mult);
            FAIL("multipleOf", "%s is not a multiple of %s", a, b);
        }
    }
#undef NUMSTR
done:
    return ok;
}

static bool ev_string(vctx *c, const snode *n, const schema_jv *v, bool quiet) {
    bool ok = true;
    if (n->minlen > 0 || n->maxlen != UINT64_MAX) {
        STOP_IF(!step(c, 1 + v->n / 256));
        uint64_t len = schema_utf8_len(v->u.s, v->n);
        if (len < n->minlen)
            FAIL("minLength", "the string is %llu characters long, shorter than %llu", (unsigned long long)len,
                 (unsigned long long)n->minlen);
        if (len > n->maxlen)
            FAIL("maxLength", "the string is %llu characters long, longer than %llu", (unsigned long long)len,
                 (unsigned long long)n->maxlen);
    }
    if (n->pattern) {
        int r = match(c, n->pattern, v->u.s, v->n);
        STOP_IF(r < 0);
        if (!r) FAIL("pattern", "the string does not match the pattern \"%.100s\"", n->pattern_src);
    }
done:
    return ok;
}

static bool ev_array(vctx *c, const snode *n, const schema_jv *v, bool quiet) {
    bool ok = true;
    if (v->n < n->minitems)
        FAIL("minItems", "the array has %u items, fewer than %llu", v->n, (unsigned long long)n->minitems);
    if (v->n > n->maxitems)
        FAIL("maxItems", "the array has %u items, more than %llu", v->n, (unsigned long long)n->maxitems);
    if (n->unique) {
        uint32_t i = 0, j = 0;
        int r = unique(c, v, &i, &j);
        STOP_IF(r < 0);
        if (r == 0) FAIL("uniqueItems", "items %u and %u are equal", i, j);
    }
    if (n->items != SN_NONE || n->items_array) {
        for (uint32_t i = 0; i < v->n; i++) {
            uint32_t si = n->items;
            const char *kw = "items";
            if (n->items_array) {
                si = i < n->items_list.n ? n->items_list.v[i] : n->additems;
                if (i >= n->items_list.n) kw = "additionalItems";
            }
            if (si == SN_NONE) break;
            STOP_IF(!step(c, 1));
            STOP_IF(!push(c, NULL, 0, i));
            bool good;
            if (c->s->nodes[si].kind == SN_FALSE) {
                good = false;
                if (err(c, quiet, kw, "item %u is not allowed (the array may have at most %u items)", i,
                        n->items_list.n)) {
                    c->npath--;
                    ok = false;
                    goto done;
                }
            } else {
                good = ev(c, si, v->u.a[i], quiet);
            }
            c->npath--;
            if (!good) SUBFAIL();
        }
    }
    if (n->contains != SN_NONE) {
        bool found = false;
        for (uint32_t i = 0; i < v->n && !found; i++) {
            STOP_IF(!step(c, 1));
            found = ev(c, n->contains, v->u.a[i], true);
            STOP_IF(c->stop);
        }
        if (!found) FAIL("contains", "no item of the array matches \"contains\"");
    }
done:
    return ok;
}

static bool has_key(const schema_jv *o, const schema_jv *name) { return schema_json_get(o, name->u.s, name->n) != NULL; }

static bool ev_object(vctx *c, const snode *n, const schema_jv *v, bool quiet) {
    bool ok = true;
    if (v->n < n->minprops)
        FAIL("minProperties", "the object has %u properties, fewer than %llu", v->n, (unsigned long long)n->minprops);
    if (v->n > n->maxprops)
        FAIL("maxProperties", "the object has %u properties, more than %llu", v->n, (unsigned long long)n->maxprops);
    if (n->required) {
        for (uint32_t i = 0; i < n->required->n; i++) {
            STOP_IF(!step(c, 1));
            if (!has_key(v, n->required->u.a[i]))
                FAIL("required", "the property \"%.200s\" is required", n->required->u.a[i]->u.s);
        }
    }
    for (uint32_t d = 0; d < n->ndeps; d++) {
        const sn_dep *dep = &n->deps[d];
        STOP_IF(!step(c, 1));
        if (!schema_json_get(v, dep->k, dep->kn)) continue;
        if (dep->names) {
            for (uint32_t i = 0; i < dep->names->n; i++)
                if (!has_key(v, dep->names->u.a[i]))
                    FAIL("dependencies", "the property \"%.200s\" is required when \"%.200s\" is present",
                         dep->names->u.a[i]->u.s, dep->k);
        } else if (!ev(c, dep->s, v, quiet)) {
            SUBFAIL();
        }
    }
    if (n->propnames != SN_NONE) {
        for (uint32_t i = 0; i < v->n; i++) {
            const schema_jmem *m = &v->u.o.m[i];
            schema_jv key = {.t = JV_STR, .n = m->kn, .u.s = m->k};
            STOP_IF(!step(c, 1));
            bool good = ev(c, n->propnames, &key, true);
            STOP_IF(c->stop);
            if (!good) {
                STOP_IF(!push(c, m->k, m->kn, 0));
                bool stop = err(c, quiet, "propertyNames", "the property name \"%.200s\" is not allowed", m->k);
                c->npath--;
                ok = false;
                if (stop) goto done;
            }
        }
    }
    if (n->nprops || n->npats || n->addprops != SN_NONE) {
        for (uint32_t i = 0; i < v->n; i++) {
            const schema_jmem *m = &v->u.o.m[i];
            STOP_IF(!step(c, 1));
            bool matched = false, good = true;
            STOP_IF(!push(c, m->k, m->kn, 0));
            /* properties: binary search over the sorted names */
            uint32_t lo = 0, hi = n->nprops;
            while (lo < hi) {
                uint32_t mid = lo + (hi - lo) / 2;
                int r = schema_key_cmp(n->props[mid].k, n->props[mid].kn, m->k, m->kn);
                if (r == 0) {
                    matched = true;
                    if (!ev(c, n->props[mid].s, m->v, quiet)) good = false;
                    break;
                }
                if (r < 0) lo = mid + 1;
                else hi = mid;
            }
            for (uint32_t p = 0; p < n->npats && (good || !(quiet || c->full)) && !c->stop; p++) {
                int r = match(c, n->pats[p].re, m->k, m->kn);
                if (r < 0) break;
                if (r) {
                    matched = true;
                    if (!ev(c, n->pats[p].s, m->v, quiet)) good = false;
                }
            }
            if (!matched && n->addprops != SN_NONE && !c->stop && (good || !(quiet || c->full))) {
                if (c->s->nodes[n->addprops].kind == SN_FALSE) {
                    good = false;
                    err(c, quiet, "additionalProperties", "the property \"%.200s\" is not allowed", m->k);
                } else if (!ev(c, n->addprops, m->v, quiet)) {
                    good = false;
                }
            }
            c->npath--;
            STOP_IF(c->stop);
            if (!good) SUBFAIL();
        }
    }
done:
    return ok;
}

static bool ev(vctx *c, uint32_t si, const schema_jv *v, bool quiet) {
    const snode *n = &c->s->nodes[si];
    while (n->kind == SN_REF) {
        if (!step(c, 1)) return false;
        n = &c->s->nodes[n->ref];
    }
    if (n->kind == SN_TRUE) return true;
    if (n->kind == SN_FALSE) {
        err(c, quiet, "false", "no value is allowed here (the schema is false)");
        return false;
    }
    if (!step(c, 1)) return false;
    if (++c->depth > SCHEMA_MAX_EVAL_DEPTH) {
        c->depth--;
        limit(c, "depth", "the schema applies to the value more than %d levels deep", SCHEMA_MAX_EVAL_DEPTH);
        return false;
    }
    bool ok = true;
    if (n->types && !type_ok(n->types, v)) {
        char want[96];
        types_str(n->types, want, sizeof want);
        FAIL("type", "expected %s, got %s", want, type_name(v));
    }
    if (n->const_) {
        bool eq = schema_json_eq(v, n->const_, &c->budget);
        STOP_IF(c->budget == 0 && !step(c, 1));
        if (!eq) FAIL("const", "the value is not the one allowed");
    }
    if (n->enum_) {
        int r = in_enum(c, n->enum_, v);
        STOP_IF(r < 0);
        if (!r) FAIL("enum", "the value is not one of the %u allowed", n->enum_->n);
    }
    switch (v->t) {
    case JV_NUM:
        if (n->has && !ev_number(c, n, v, quiet)) SUBFAIL();
        break;
    case JV_STR:
        if (!ev_string(c, n, v, quiet)) SUBFAIL();
        break;
    case JV_ARR:
        if (!ev_array(c, n, v, quiet)) SUBFAIL();
        break;
    case JV_OBJ:
        if (!ev_object(c, n, v, quiet)) SUBFAIL();
        break;
    default: break;
    }
    for (uint32_t i = 0; i < n->allof.n; i++)
        if (!ev(c, n->allof.v[i], v, quiet)) SUBFAIL();
    if (n->anyof.n) {
        bool any = false;
        for (uint32_t i = 0; i < n->anyof.n && !any; i++) {
            any = ev(c, n->anyof.v[i], v, true);
            STOP_IF(c->stop);
        }
        if (!any && !quiet && c->s->explain && !c->full && explain(c, &n->anyof, v)) SUBFAIL();
        if (!any) FAIL("anyOf", "the value matches none of the %u schemas of \"anyOf\"", n->anyof.n);
    }
    if (n->oneof.n) {
        uint32_t hits = 0, first = 0, second = 0;
        for (uint32_t i = 0; i < n->oneof.n && hits < 2; i++) {
            if (ev(c, n->oneof.v[i], v, true)) {
                if (hits++) second = i;
                else first = i;
            }
            STOP_IF(c->stop);
        }
        if (hits == 0 && !quiet && c->s->explain && !c->full && explain(c, &n->oneof, v)) SUBFAIL();
        if (hits == 0) FAIL("oneOf", "the value matches none of the %u schemas of \"oneOf\"", n->oneof.n);
        if (hits > 1) FAIL("oneOf", "the value matches schemas %u and %u of \"oneOf\", not exactly one", first, second);
    }
    if (n->not_ != SN_NONE) {
        bool m = ev(c, n->not_, v, true);
        STOP_IF(c->stop);
        if (m) FAIL("not", "the value matches the schema of \"not\"");
    }
    if (n->if_ != SN_NONE && (n->then_ != SN_NONE || n->else_ != SN_NONE)) {
        bool m = ev(c, n->if_, v, true);
        STOP_IF(c->stop);
        uint32_t next = m ? n->then_ : n->else_;
        if (next != SN_NONE && !ev(c, next, v, quiet)) SUBFAIL();
    }
done:
    c->depth--;
    return ok && !c->stop;
}

int schema_validate_tree(const schema_t *s, const schema_jv *v, int max_depth, schema_errors *out) {
    vctx c = {0};
    c.s = s;
    c.budget = s->max_steps;
    c.out = out;
    if (out) {
        c.max = out->max == 0 ? 10 : out->max > SCHEMA_ERRORS_MAX ? SCHEMA_ERRORS_MAX : out->max;
        assert(out->count == 0);
    }
    c.cappath = max_depth + 1;
    c.path = malloc((size_t)c.cappath * sizeof(seg));
    if (!c.path) {
        limit(&c, "internal", "out of memory");
        return SCHEMA_ERROR;
    }
    bool ok = ev(&c, s->root, v, out == NULL);
    pcre2_match_data_free(c.md);
    free(c.path);
    if (c.stop && !strcmp(c.stop, "internal")) return SCHEMA_ERROR;
    if (ok) return SCHEMA_VALID;
    if (out && out->count == 0) { /* cannot happen but for memory: say why */
        c.npath = 0;
        limit(&c, "internal", "out of memory");
    }
    return SCHEMA_INVALID;
}

int schema_validate(const schema_t *s, const char *json, size_t len, schema_errors *out) {
    schema_arena a = {0};
    const char *why;
    size_t at;
    schema_jv *v = schema_json_parse(&a, json, len, SCHEMA_MAX_VALUE_DEPTH, &why, &at);
    if (!v) {
        if (out && out->count < SCHEMA_ERRORS_MAX) {
            bool oom = !strcmp(why, "out of memory");
            char msg[160];
            snprintf(msg, sizeof msg, "%s at byte %zu", why, at);
            schema_error *e = &out->e[out->count];
            e->path = strdup("");
            e->message = strdup(msg);
            e->keyword = oom ? "internal" : "json";
            if (e->path && e->message) out->count++;
            else free(e->path), free(e->message);
        }
        schema_arena_free(&a);
        return SCHEMA_ERROR;
    }
    int r = schema_validate_tree(s, v, SCHEMA_MAX_VALUE_DEPTH, out);
    schema_arena_free(&a);
    return r;
}

void schema_errors_free(schema_errors *out) {
    if (!out) return;
    for (size_t i = 0; i < out->count; i++) {
        free(out->e[i].path);
        free(out->e[i].message);
    }
    out->count = 0;
}

void schema_errors_json(const schema_errors *out, sbuf *b) {
    sbuf_putc(b, '[');
    for (size_t i = 0; out && i < out->count; i++) {
        if (i) sbuf_putc(b, ',');
        sbuf_puts(b, "{\"path\":");
        sbuf_json_str(b, out->e[i].path, strlen(out->e[i].path));
        sbuf_puts(b, ",\"keyword\":");
        sbuf_json_str(b, out->e[i].keyword, strlen(out->e[i].keyword));
        sbuf_puts(b, ",\"message\":");
        sbuf_json_str(b, out->e[i].message, strlen(out->e[i].message));
        sbuf_putc(b, '}');
    }
    sbuf_putc(b, ']');
}

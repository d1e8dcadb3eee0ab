/* schema: compiling a draft-07 schema into nodes (see schema.h).
 *
 * Steps: parse the text; check it against the draft-07 meta-schema; index
 * the `$id`s of both documents (the schema, then the meta-schema, so a
 * `$ref` to the meta-schema's URI resolves like any local one); compile
 * from the root, each subschema once (memo in the tree's aux), `$ref`s
 * queued and resolved after; refuse later-draft keywords on every compiled
 * schema object; refuse `$ref` cycles that apply to the same instance (they
 * would never end). */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/schema_int.h"
#include "util/hex.h"

/* Keywords of 2019-09 and 2020-12 that draft-07 does not have: a schema
 * using one was written for another draft and is refused. */
static const char *const LATER[] = {
    "$defs", "$anchor", "$dynamicRef", "$dynamicAnchor", "$recursiveRef", "$recursiveAnchor", "$vocabulary",
    "prefixItems", "unevaluatedProperties", "unevaluatedItems", "dependentRequired", "dependentSchemas",
    "minContains", "maxContains", "contentSchema",
};

typedef struct res_entry {
    const char *key; /* absolute URI without fragment, or with a #name */
    schema_jv *v;
    const char *ptr;
    const char *base; /* in effect where v is, before its own $id */
} res_entry;

typedef struct pending {
    uint32_t node;
    const char *uri; /* resolved */
    const char *ref; /* as written */
} pending;

typedef struct comp {
    schema_t *s;
    uint32_t max_nodes;
    char *err;
    size_t errlen;
    bool failed;
    res_entry *ids;
    size_t nids, capids;
    pending *pend;
    size_t npend, cappend;
    pcre2_compile_context *cctx;
    bool meta_loaded;
} comp;

static void fail(comp *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(comp *c, const char *fmt, ...) {
    if (c->failed) return;
    c->failed = true;
    if (c->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err, c->errlen, fmt, ap);
        va_end(ap);
    }
}

int schema_key_cmp(const char *a, uint32_t an, const char *b, uint32_t bn) {
    uint32_t n = an < bn ? an : bn;
    int r = memcmp(a, b, n);
    if (r) return r;
    return an < bn ? -1 : an > bn;
}

static char *astr(comp *c, const char *p, size_t n) {
    char *o = schema_arena_alloc(&c->s->arena, n + 1);
    if (!o) {
        fail(c, "out of memory");
        return NULL;
    }
    memcpy(o, p, n);
    o[n] = '\0';
    return o;
}

/* ptr + "/" + escaped key */
static const char *ptr_child(comp *c, const char *ptr, const char *k, size_t kn) {
    sbuf b = SBUF_INIT;
    sbuf_puts(&b, ptr);
    sbuf_putc(&b, '/');
    for (size_t i = 0; i < kn; i++) {
        if (k[i] == '~') sbuf_puts(&b, "~0");
        else if (k[i] == '/') sbuf_puts(&b, "~1");
        else if (k[i] == '\0') sbuf_puts(&b, "\\u0000");
        else sbuf_putc(&b, k[i]);
    }
    const char *r = sbuf_failed(&b) ? NULL : astr(c, b.buf ? b.buf : "", b.len);
    if (sbuf_failed(&b)) fail(c, "out of memory");
    sbuf_free(&b);
    return r;
}

static const char *ptr_index(comp *c, const char *ptr, uint32_t i) {
    char num[16];
    int n = snprintf(num, sizeof num, "%u", i);
    return ptr_child(c, ptr, num, (size_t)n);
}

/* For messages: the pointer, "" shown as "(root)"... no: RFC 6901 "" is
 * the root; messages quote it. */

/* ---- URIs (RFC 3986 section 5.2, enough for $id and $ref) ---- */

typedef struct uparts {
    const char *scheme, *auth, *path, *query, *frag;
    size_t nscheme, nauth, npath, nquery, nfrag;
    bool has_scheme, has_auth, has_query, has_frag;
} uparts;

static void usplit(const char *u, uparts *p) {
    memset(p, 0, sizeof *p);
    const char *s = u;
    /* scheme: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":" */
    const char *q = s;
    if ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z')) {
        while ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') || *q == '+' ||
               *q == '-' || *q == '.')
            q++;
        if (*q == ':') {
            p->has_scheme = true;
            p->scheme = s;
            p->nscheme = (size_t)(q - s);
            s = q + 1;
        }
    }
    if (s[0] == '/' && s[1] == '/') {
        p->has_auth = true;
        s += 2;
        p->auth = s;
        while (*s && *s != '/' && *s != '?' && *s != '#') s++;
        p->nauth = (size_t)(s - p->auth);
    }
    p->path = s;
    while (*s && *s != '?' && *s != '#') s++;
    p->npath = (size_t)(s - p->path);
    if (*s == '?') {
        p->has_query = true;
        p->query = ++s;
        while (*s && *s != '#') s++;
        p->nquery = (size_t)(s - p->query);
    }
    if (*s == '#') {
        p->has_frag = true;
        p->frag = ++s;
        p->nfrag = strlen(s);
    }
}

/* RFC 3986 5.2.4 on in[0..n), appended to out. */
static void remove_dots(const char *in, size_t n, sbuf *out) {
    sbuf o = SBUF_INIT;
    size_t i = 0;
    while (i < n) {
        const char *r = in + i;
        size_t left = n - i;
        if (left >= 3 && !memcmp(r, "../", 3)) i += 3;
        else if (left >= 2 && !memcmp(r, "./", 2)) i += 2;
        else if (left >= 3 && !memcmp(r, "/./", 3)) i += 2;
        else if (left == 2 && !memcmp(r, "/.", 2)) {
            sbuf_putc(&o, '/');
            i += 2;
        } else if ((left >= 4 && !memcmp(r, "/../", 4)) || (left == 3 && !memcmp(r, "/..", 3))) {
            if (left == 3) {
                i += 3;
                while (o.len > 0 && o.buf[o.len - 1] != '/') o.len--;
                if (o.len > 0) o.len--;
                sbuf_putc(&o, '/');
            } else {
                i += 3;
                while (o.len > 0 && o.buf[o.len - 1] != '/') o.len--;
                if (o.len > 0) o.len--;
            }
        } else if ((left == 1 && r[0] == '.') || (left == 2 && !memcmp(r, "..", 2))) {
            i = n;
        } else {
            size_t j = r[0] == '/' ? 1 : 0;
            while (j < left && r[j] != '/') j++;
            sbuf_append(&o, r, j);
            i += j;
        }
    }
    if (o.buf) o.buf[o.len] = '\0';
    sbuf_append(out, o.buf ? o.buf : "", o.len);
    if (sbuf_failed(&o)) out->failed = true;
    sbuf_free(&o);
}

/* base and ref resolved into a string in the arena. */
static const char *uresolve(comp *c, const char *base, const char *ref) {
    uparts b, r;
    usplit(base, &b);
    usplit(ref, &r);
    sbuf o = SBUF_INIT;
    const uparts *sch = r.has_scheme ? &r : &b;
    if (sch->has_scheme) {
        sbuf_append(&o, sch->scheme, sch->nscheme);
        sbuf_putc(&o, ':');
    }
    if (r.has_scheme || r.has_auth) {
        if (r.has_auth) {
            sbuf_puts(&o, "//");
            sbuf_append(&o, r.auth, r.nauth);
        }
        remove_dots(r.path, r.npath, &o);
        if (r.has_query) sbuf_putc(&o, '?'), sbuf_append(&o, r.query, r.nquery);
    } else {
        if (b.has_auth) {
            sbuf_puts(&o, "//");
            sbuf_append(&o, b.auth, b.nauth);
        }
        if (r.npath == 0) {
            sbuf_append(&o, b.path, b.npath);
            if (r.has_query) sbuf_putc(&o, '?'), sbuf_append(&o, r.query, r.nquery);
            else if (b.has_query) sbuf_putc(&o, '?'), sbuf_append(&o, b.query, b.nquery);
        } else {
            if (r.path[0] == '/') {
                remove_dots(r.path, r.npath, &o);
            } else {
                sbuf m = SBUF_INIT;
                if (b.has_auth && b.npath == 0) {
                    sbuf_putc(&m, '/');
                } else {
                    size_t k = b.npath;
                    while (k > 0 && b.path[k - 1] != '/') k--;
                    sbuf_append(&m, b.path, k);
                }
                sbuf_append(&m, r.path, r.npath);
                remove_dots(m.buf ? m.buf : "", m.len, &o);
                if (sbuf_failed(&m)) o.failed = true;
                sbuf_free(&m);
            }
            if (r.has_query) sbuf_putc(&o, '?'), sbuf_append(&o, r.query, r.nquery);
        }
    }
    if (r.has_frag && r.nfrag > 0) {
        sbuf_putc(&o, '#');
        sbuf_append(&o, r.frag, r.nfrag);
    }
    const char *res = NULL;
    if (sbuf_failed(&o)) fail(c, "out of memory");
    else res = astr(c, o.buf ? o.buf : "", o.len);
    sbuf_free(&o);
    return res;
}

/* ---- the $id index ---- */

static bool add_id(comp *c, const char *key, schema_jv *v, const char *ptr, const char *base, bool quiet_dup) {
    for (size_t i = 0; i < c->nids; i++)
        if (!strcmp(c->ids[i].key, key)) {
            if (quiet_dup) return true;
            fail(c, "\"$id\" at \"%s\": the identifier \"%s\" is used twice in the schema", ptr, key);
            return false;
        }
    if (c->nids == c->capids) {
        size_t cap = c->capids ? c->capids * 2 : 16;
        res_entry *n = realloc(c->ids, cap * sizeof *n);
        if (!n) return fail(c, "out of memory"), false;
        c->ids = n;
        c->capids = cap;
    }
    c->ids[c->nids++] = (res_entry){key, v, ptr, base};
    return true;
}

static res_entry *find_id(comp *c, const char *key) {
    for (size_t i = 0; i < c->nids; i++)
        if (!strcmp(c->ids[i].key, key)) return &c->ids[i];
    return NULL;
}

/* Split uri at '#': the part before into the arena. */
static const char *uabs(comp *c, const char *uri, const char **frag) {
    const char *h = strchr(uri, '#');
    *frag = h ? h + 1 : "";
    return h ? astr(c, uri, (size_t)(h - uri)) : uri;
}

static const char *const SUB_ONE[] = {"additionalItems", "additionalProperties", "contains", "propertyNames",
                                      "not", "if", "then", "else"};
static const char *const SUB_ARR[] = {"allOf", "anyOf", "oneOf"};
static const char *const SUB_MAP[] = {"properties", "patternProperties", "definitions"};

static void walk(comp *c, schema_jv *v, const char *base, const char *ptr, bool doc_quiet, int depth);

static void walk_sub(comp *c, schema_jv *v, const char *base, const char *ptr, bool q, int depth) {
    if (v->t == JV_OBJ) walk(c, v, base, ptr, q, depth + 1);
}

/* Records the $ids of every schema position under v. */
static void walk(comp *c, schema_jv *v, const char *base, const char *ptr, bool q, int depth) {
    if (c->failed || depth > SCHEMA_MAX_SCHEMA_DEPTH) return;
    schema_jv *id = schema_json_get(v, "$id", 3);
    if (id && id->t == JV_STR && !schema_json_get(v, "$ref", 4)) {
        const char *u = uresolve(c, base, id->u.s);
        if (!u) return;
        const char *frag;
        const char *abs = uabs(c, u, &frag);
        if (!abs) return;
        if (*frag) {
            if (*frag != '/' && !add_id(c, u, v, ptr, base, q)) return;
        } else {
            if (!add_id(c, abs, v, ptr, base, q)) return;
            base = abs;
        }
    }
    for (size_t i = 0; i < sizeof SUB_ONE / sizeof *SUB_ONE; i++) {
        schema_jv *s = schema_json_get(v, SUB_ONE[i], strlen(SUB_ONE[i]));
        if (s) walk_sub(c, s, base, ptr_child(c, ptr, SUB_ONE[i], strlen(SUB_ONE[i])), q, depth);
    }
    schema_jv *it = schema_json_get(v, "items", 5);
    if (it && it->t == JV_ARR) {
        const char *p = ptr_child(c, ptr, "items", 5);
        for (uint32_t i = 0; p && i < it->n; i++) walk_sub(c, it->u.a[i], base, ptr_index(c, p, i), q, depth);
    } else if (it) {
        walk_sub(c, it, base, ptr_child(c, ptr, "items", 5), q, depth);
    }
    for (size_t k = 0; k < sizeof SUB_ARR / sizeof *SUB_ARR; k++) {
        schema_jv *a = schema_json_get(v, SUB_ARR[k], strlen(SUB_ARR[k]));
        if (!a || a->t != JV_ARR) continue;
        const char *p = ptr_child(c, ptr, SUB_ARR[k], strlen(SUB_ARR[k]));
        for (uint32_t i = 0; p && i < a->n; i++) walk_sub(c, a->u.a[i], base, ptr_index(c, p, i), q, depth);
    }
    for (size_t k = 0; k < sizeof SUB_MAP / sizeof *SUB_MAP + 1; k++) {
        const char *name = k < 3 ? SUB_MAP[k] : "dependencies";
        schema_jv *m = schema_json_get(v, name, strlen(name));
        if (!m || m->t != JV_OBJ) continue;
        const char *p = ptr_child(c, ptr, name, strlen(name));
        for (uint32_t i = 0; p && i < m->n; i++)
            walk_sub(c, m->u.o.m[i].v, base, ptr_child(c, p, m->u.o.m[i].k, m->u.o.m[i].kn), q, depth);
    }
}

/* ---- compiling one schema ---- */

static uint32_t compile(comp *c, schema_jv *v, const char *base, const char *ptr);

static uint32_t new_node(comp *c, schema_jv *v, uint8_t kind, const char *ptr) {
    schema_t *s = c->s;
    if (s->nn >= c->max_nodes) {
        fail(c, "the schema has more than %u subschemas (at \"%s\")", c->max_nodes, ptr);
        return SN_NONE;
    }
    if (s->nn == s->cap) {
        uint32_t cap = s->cap ? s->cap * 2 : 64;
        snode *n = realloc(s->nodes, cap * sizeof *n);
        if (!n) return fail(c, "out of memory"), SN_NONE;
        s->nodes = n;
        s->cap = cap;
    }
    uint32_t i = s->nn++;
    snode *n = &s->nodes[i];
    memset(n, 0, sizeof *n);
    n->kind = kind;
    n->ptr = ptr;
    n->ref = n->items = n->additems = n->contains = n->addprops = n->propnames = SN_NONE;
    n->not_ = n->if_ = n->then_ = n->else_ = SN_NONE;
    n->maxlen = n->maxitems = n->maxprops = UINT64_MAX;
    v->aux = i + 1;
    return i;
}

static const char *TYPE_NAMES[] = {"null", "boolean", "object", "array", "number", "string", "integer"};

static bool type_bits(comp *c, const schema_jv *t, const char *ptr, uint32_t *out) {
    const schema_jv *one = t;
    uint32_t n = 1;
    if (t->t == JV_ARR) {
        n = t->n;
        if (n == 0) return fail(c, "\"type\" at \"%s\": an empty list of types", ptr), false;
    }
    uint32_t bits = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (t->t == JV_ARR) one = t->u.a[i];
        if (one->t != JV_STR) return fail(c, "\"type\" at \"%s\": must be a type name or a list of them", ptr), false;
        uint32_t b = 0;
        for (int k = 0; k < 7; k++)
            if (!strcmp(one->u.s, TYPE_NAMES[k])) b = 1u << k;
        if (!b) return fail(c, "\"type\" at \"%s\": unknown type \"%s\"", ptr, one->u.s), false;
        if (bits & b) return fail(c, "\"type\" at \"%s\": \"%s\" listed twice", ptr, one->u.s), false;
        bits |= b;
    }
    *out = bits;
    return true;
}

static bool get_num(comp *c, const schema_jv *v, const char *kw, const char *ptr, schema_dec *out) {
    if (v->t != JV_NUM) return fail(c, "\"%s\" at \"%s\": must be a number", kw, ptr), false;
    *out = v->u.num;
    return true;
}

static bool get_count(comp *c, const schema_jv *v, const char *kw, const char *ptr, uint64_t *out) {
    if (v->t != JV_NUM || v->u.num.neg || !schema_dec_is_int(&v->u.num))
        return fail(c, "\"%s\" at \"%s\": must be a non-negative integer", kw, ptr), false;
    *out = schema_dec_u64(&v->u.num);
    return true;
}

static bool get_names(comp *c, const schema_jv *v, const char *kw, const char *ptr) {
    if (v->t != JV_ARR) return fail(c, "\"%s\" at \"%s\": must be an array of strings", kw, ptr), false;
    for (uint32_t i = 0; i < v->n; i++) {
        if (v->u.a[i]->t != JV_STR) return fail(c, "\"%s\" at \"%s\": must be an array of strings", kw, ptr), false;
        for (uint32_t j = 0; j < i; j++)
            if (v->u.a[j]->n == v->u.a[i]->n && !memcmp(v->u.a[j]->u.s, v->u.a[i]->u.s, v->u.a[i]->n))
                return fail(c, "\"%s\" at \"%s\": \"%s\" listed twice", kw, ptr, v->u.a[i]->u.s), false;
    }
    return true;
}

static pcre2_code *regex(comp *c, const schema_jv *p, const char *kw, const char *ptr) {
    if (p->t != JV_STR) return fail(c, "\"%s\" at \"%s\": must be a string", kw, ptr), NULL;
    int code;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)p->u.s, p->n,
                                   PCRE2_UTF | PCRE2_DOLLAR_ENDONLY | PCRE2_ALT_BSUX | PCRE2_NEVER_BACKSLASH_C, &code,
                                   &off, c->cctx);
    if (!re) {
        PCRE2_UCHAR msg[160];
        if (pcre2_get_error_message(code, msg, sizeof msg) < 0) snprintf((char *)msg, sizeof msg, "error %d", code);
        fail(c, "\"%s\" at \"%s\": the regular expression \"%.80s\" does not compile: %s at offset %zu", kw, ptr,
             p->u.s, (const char *)msg, (size_t)off);
        return NULL;
    }
    schema_t *s = c->s;
    if (s->nres == s->capres) {
        uint32_t cap = s->capres ? s->capres * 2 : 8;
        pcre2_code **n = realloc(s->res, cap * sizeof *n);
        if (!n) {
            pcre2_code_free(re);
            return fail(c, "out of memory"), NULL;
        }
        s->res = n;
        s->capres = cap;
    }
    s->res[s->nres++] = re;
    return re;
}

static uint32_t sub(comp *c, schema_jv *v, const char *base, const char *ptr, const char *kw) {
    if (c->failed) return SN_NONE;
    const char *p = ptr_child(c, ptr, kw, strlen(kw));
    return p ? compile(c, v, base, p) : SN_NONE;
}

static bool sub_list(comp *c, schema_jv *a, const char *base, const char *ptr, const char *kw, sn_list *out,
                     bool nonempty) {
    if (a->t != JV_ARR || (nonempty && a->n == 0))
        return fail(c, "\"%s\" at \"%s\": must be a non-empty array of schemas", kw, ptr), false;
    const char *p = ptr_child(c, ptr, kw, strlen(kw));
    uint32_t *l = schema_arena_alloc(&c->s->arena, (size_t)a->n * sizeof(uint32_t) + 1);
    if (!p || !l) return fail(c, "out of memory"), false;
    for (uint32_t i = 0; i < a->n; i++) {
        const char *pi = ptr_index(c, p, i);
        l[i] = pi ? compile(c, a->u.a[i], base, pi) : SN_NONE;
        if (c->failed) return false;
    }
    out->v = l;
    out->n = a->n;
    return true;
}

static bool is_draft07_uri(const char *u) {
    return !strcmp(u, "http://json-schema.org/draft-07/schema#") || !strcmp(u, "http://json-schema.org/draft-07/schema") ||
           !strcmp(u, "https://json-schema.org/draft-07/schema#") || !strcmp(u, "https://json-schema.org/draft-07/schema");
}

static void queue_ref(comp *c, uint32_t node, const char *uri, const char *ref) {
    if (c->npend == c->cappend) {
        size_t cap = c->cappend ? c->cappend * 2 : 16;
        pending *n = realloc(c->pend, cap * sizeof *n);
        if (!n) return fail(c, "out of memory");
        c->pend = n;
        c->cappend = cap;
    }
    c->pend[c->npend++] = (pending){node, uri, ref};
}

static uint32_t compile_obj(comp *c, schema_jv *v, const char *base, const char *ptr);

static uint32_t compile(comp *c, schema_jv *v, const char *base, const char *ptr) {
    if (c->failed) return SN_NONE;
    if (v->aux) return v->aux - 1;
    if (v->t == JV_TRUE) return new_node(c, v, SN_TRUE, ptr);
    if (v->t == JV_FALSE) return new_node(c, v, SN_FALSE, ptr);
    if (v->t != JV_OBJ) {
        fail(c, "schema at \"%s\": must be an object or a boolean", ptr);
        return SN_NONE;
    }
    return compile_obj(c, v, base, ptr);
}

static uint32_t compile_obj(comp *c, schema_jv *v, const char *base, const char *ptr) {
    for (size_t i = 0; i < sizeof LATER / sizeof *LATER; i++)
        if (schema_json_get(v, LATER[i], strlen(LATER[i]))) {
            fail(c, "\"%s\" at \"%s\": a keyword of a later draft (2019-09/2020-12); only draft-07 is supported",
                 LATER[i], ptr);
            return SN_NONE;
        }
    schema_jv *k;
    if ((k = schema_json_get(v, "$schema", 7)) && (k->t != JV_STR || !is_draft07_uri(k->u.s))) {
        fail(c, "\"$schema\" at \"%s\": only draft-07 (\"http://json-schema.org/draft-07/schema#\") is supported",
             ptr);
        return SN_NONE;
    }
    if ((k = schema_json_get(v, "$ref", 4))) {
        if (k->t != JV_STR) return fail(c, "\"$ref\" at \"%s\": must be a string", ptr), SN_NONE;
        uint32_t i = new_node(c, v, SN_REF, ptr);
        const char *u = uresolve(c, base, k->u.s);
        if (i != SN_NONE && u) queue_ref(c, i, u, k->u.s);
        return i; /* draft-07: every other keyword next to $ref is ignored */
    }
    if ((k = schema_json_get(v, "$id", 3))) {
        if (k->t != JV_STR) return fail(c, "\"$id\" at \"%s\": must be a string", ptr), SN_NONE;
        const char *u = uresolve(c, base, k->u.s), *frag;
        const char *abs = u ? uabs(c, u, &frag) : NULL;
        if (!abs) return SN_NONE;
        if (!*frag) base = abs;
    }
    uint32_t idx = new_node(c, v, SN_OBJ, ptr);
    if (idx == SN_NONE) return idx;
    /* Fill a local copy (compiling children may move c->s->nodes). */
    snode n = c->s->nodes[idx];
    schema_arena *A = &c->s->arena;

    if ((k = schema_json_get(v, "type", 4)) && !type_bits(c, k, ptr, &n.types)) return SN_NONE;
    if ((k = schema_json_get(v, "enum", 4))) {
        if (k->t != JV_ARR) return fail(c, "\"enum\" at \"%s\": must be an array", ptr), SN_NONE;
        n.enum_ = k;
    }
    n.const_ = schema_json_get(v, "const", 5);
    static const struct {
        const char *kw;
        uint8_t bit;
        size_t off;
    } NUMS[] = {{"minimum", H_MIN, offsetof(snode, min)},
                {"maximum", H_MAX, offsetof(snode, max)},
                {"exclusiveMinimum", H_XMIN, offsetof(snode, xmin)},
                {"exclusiveMaximum", H_XMAX, offsetof(snode, xmax)},
                {"multipleOf", H_MULT, offsetof(snode, mult)}};
    for (size_t i = 0; i < sizeof NUMS / sizeof *NUMS; i++) {
        if (!(k = schema_json_get(v, NUMS[i].kw, strlen(NUMS[i].kw)))) continue;
        if (!get_num(c, k, NUMS[i].kw, ptr, (schema_dec *)((char *)&n + NUMS[i].off))) return SN_NONE;
        n.has |= NUMS[i].bit;
    }
    if ((n.has & H_MULT) && (n.mult.nd == 0 || n.mult.neg))
        return fail(c, "\"multipleOf\" at \"%s\": must be greater than 0", ptr), SN_NONE;
    static const struct {
        const char *kw;
        size_t off;
    } COUNTS[] = {{"minLength", offsetof(snode, minlen)},     {"maxLength", offsetof(snode, maxlen)},
                  {"minItems", offsetof(snode, minitems)},    {"maxItems", offsetof(snode, maxitems)},
                  {"minProperties", offsetof(snode, minprops)}, {"maxProperties", offsetof(snode, maxprops)}};
    for (size_t i = 0; i < sizeof COUNTS / sizeof *COUNTS; i++) {
        if (!(k = schema_json_get(v, COUNTS[i].kw, strlen(COUNTS[i].kw)))) continue;
        if (!get_count(c, k, COUNTS[i].kw, ptr, (uint64_t *)((char *)&n + COUNTS[i].off))) return SN_NONE;
    }
    if ((k = schema_json_get(v, "pattern", 7))) {
        if (!(n.pattern = regex(c, k, "pattern", ptr))) return SN_NONE;
        n.pattern_src = k->u.s;
    }
    if ((k = schema_json_get(v, "uniqueItems", 11))) {
        if (k->t != JV_TRUE && k->t != JV_FALSE)
            return fail(c, "\"uniqueItems\" at \"%s\": must be a boolean", ptr), SN_NONE;
        n.unique = k->t == JV_TRUE;
    }
    if ((k = schema_json_get(v, "items", 5))) {
        if (k->t == JV_ARR) {
            n.items_array = true;
            if (!sub_list(c, k, base, ptr, "items", &n.items_list, false)) return SN_NONE;
        } else if ((n.items = sub(c, k, base, ptr, "items")) == SN_NONE) {
            return SN_NONE;
        }
    }
    static const struct {
        const char *kw;
        size_t off;
    } ONE[] = {{"additionalItems", offsetof(snode, additems)}, {"contains", offsetof(snode, contains)},
               {"additionalProperties", offsetof(snode, addprops)}, {"propertyNames", offsetof(snode, propnames)},
               {"not", offsetof(snode, not_)}, {"if", offsetof(snode, if_)}, {"then", offsetof(snode, then_)},
               {"else", offsetof(snode, else_)}};
    for (size_t i = 0; i < sizeof ONE / sizeof *ONE; i++) {
        if (!(k = schema_json_get(v, ONE[i].kw, strlen(ONE[i].kw)))) continue;
        uint32_t si = sub(c, k, base, ptr, ONE[i].kw);
        if (si == SN_NONE) return SN_NONE;
        *(uint32_t *)((char *)&n + ONE[i].off) = si;
    }
    static const struct {
        const char *kw;
        size_t off;
    } LISTS[] = {{"allOf", offsetof(snode, allof)}, {"anyOf", offsetof(snode, anyof)}, {"oneOf", offsetof(snode, oneof)}};
    for (size_t i = 0; i < sizeof LISTS / sizeof *LISTS; i++) {
        if (!(k = schema_json_get(v, LISTS[i].kw, strlen(LISTS[i].kw)))) continue;
        if (!sub_list(c, k, base, ptr, LISTS[i].kw, (sn_list *)((char *)&n + LISTS[i].off), true)) return SN_NONE;
    }
    if ((k = schema_json_get(v, "properties", 10))) {
        if (k->t != JV_OBJ) return fail(c, "\"properties\" at \"%s\": must be an object", ptr), SN_NONE;
        const char *p = ptr_child(c, ptr, "properties", 10);
        n.props = schema_arena_alloc(A, (size_t)k->n * sizeof(sn_prop) + 1);
        if (!p || !n.props) return fail(c, "out of memory"), SN_NONE;
        for (uint32_t i = 0; i < k->n; i++) { /* byk: sorted by key */
            const schema_jmem *m = k->u.o.byk[i];
            const char *pi = ptr_child(c, p, m->k, m->kn);
            uint32_t si = pi ? compile(c, m->v, base, pi) : SN_NONE;
            if (si == SN_NONE) return SN_NONE;
            n.props[i] = (sn_prop){m->k, m->kn, si};
        }
        n.nprops = k->n;
    }
    if ((k = schema_json_get(v, "patternProperties", 17))) {
        if (k->t != JV_OBJ) return fail(c, "\"patternProperties\" at \"%s\": must be an object", ptr), SN_NONE;
        const char *p = ptr_child(c, ptr, "patternProperties", 17);
        n.pats = schema_arena_alloc(A, (size_t)k->n * sizeof(sn_pat) + 1);
        if (!p || !n.pats) return fail(c, "out of memory"), SN_NONE;
        for (uint32_t i = 0; i < k->n; i++) {
            const schema_jmem *m = &k->u.o.m[i];
            schema_jv key = {.t = JV_STR, .n = m->kn, .u.s = m->k};
            const char *pi = ptr_child(c, p, m->k, m->kn);
            pcre2_code *re = pi ? regex(c, &key, "patternProperties", pi) : NULL;
            uint32_t si = re ? compile(c, m->v, base, pi) : SN_NONE;
            if (si == SN_NONE) return SN_NONE;
            n.pats[i] = (sn_pat){re, m->k, si};
        }
        n.npats = k->n;
    }
    if ((k = schema_json_get(v, "required", 8))) {
        if (!get_names(c, k, "required", ptr)) return SN_NONE;
        n.required = k;
    }
    if ((k = schema_json_get(v, "dependencies", 12))) {
        if (k->t != JV_OBJ) return fail(c, "\"dependencies\" at \"%s\": must be an object", ptr), SN_NONE;
        const char *p = ptr_child(c, ptr, "dependencies", 12);
        n.deps = schema_arena_alloc(A, (size_t)k->n * sizeof(sn_dep) + 1);
        if (!p || !n.deps) return fail(c, "out of memory"), SN_NONE;
        for (uint32_t i = 0; i < k->n; i++) {
            const schema_jmem *m = &k->u.o.m[i];
            const char *pi = ptr_child(c, p, m->k, m->kn);
            if (!pi) return SN_NONE;
            n.deps[i] = (sn_dep){m->k, m->kn, SN_NONE, NULL};
            if (m->v->t == JV_ARR) {
                if (!get_names(c, m->v, "dependencies", pi)) return SN_NONE;
                n.deps[i].names = m->v;
            } else if ((n.deps[i].s = compile(c, m->v, base, pi)) == SN_NONE) {
                return SN_NONE;
            }
        }
        n.ndeps = k->n;
    }
    if ((k = schema_json_get(v, "definitions", 11))) {
        if (k->t != JV_OBJ) return fail(c, "\"definitions\" at \"%s\": must be an object", ptr), SN_NONE;
        const char *p = ptr_child(c, ptr, "definitions", 11);
        for (uint32_t i = 0; p && i < k->n; i++) {
            const char *pi = ptr_child(c, p, k->u.o.m[i].k, k->u.o.m[i].kn);
            if (!pi || compile(c, k->u.o.m[i].v, base, pi) == SN_NONE) return SN_NONE;
        }
    }
    if (c->failed) return SN_NONE;
    c->s->nodes[idx] = n;
    return idx;
}

/* ---- $ref resolution ---- */

/* A JSON pointer (percent-encoded, as in a URI fragment) from v. */
static schema_jv *follow(schema_jv *v, const char *frag, bool *ok) {
    *ok = true;
    /* percent-decode first */
    size_t n = strlen(frag);
    char *d = malloc(n + 1);
    if (!d) return *ok = false, NULL;
    size_t dn = 0;
    for (size_t i = 0; i < n; i++) {
        if (frag[i] == '%' && i + 2 < n + 1 && hex_value(frag[i + 1]) >= 0 && hex_value(frag[i + 2]) >= 0) {
            d[dn++] = (char)(hex_value(frag[i + 1]) * 16 + hex_value(frag[i + 2]));
            i += 2;
        } else {
            d[dn++] = frag[i];
        }
    }
    size_t i = 0;
    schema_jv *cur = v;
    char *seg = malloc(dn + 1);
    if (!seg) {
        free(d);
        return *ok = false, NULL;
    }
    while (cur && i < dn) {
        if (d[i] != '/') {
            cur = NULL;
            break;
        }
        i++;
        size_t sn = 0;
        while (i < dn && d[i] != '/') {
            if (d[i] == '~' && i + 1 < dn && d[i + 1] == '0') seg[sn++] = '~', i += 2;
            else if (d[i] == '~' && i + 1 < dn && d[i + 1] == '1') seg[sn++] = '/', i += 2;
            else if (d[i] == '~') {
                cur = NULL;
                break;
            } else seg[sn++] = d[i++];
        }
        if (!cur) break;
        if (cur->t == JV_OBJ) {
            cur = schema_json_get(cur, seg, sn);
        } else if (cur->t == JV_ARR) {
            uint64_t ix = 0;
            bool good = sn > 0 && sn <= 10 && !(sn > 1 && seg[0] == '0');
            for (size_t j = 0; good && j < sn; j++) {
                if (seg[j] < '0' || seg[j] > '9') good = false;
                else ix = ix * 10 + (uint64_t)(seg[j] - '0');
            }
            cur = good && ix < cur->n ? cur->u.a[ix] : NULL;
        } else {
            cur = NULL;
        }
    }
    free(seg);
    free(d);
    return cur;
}

/* The meta-schema's document, indexed after the schema's own $ids (which
 * win), once a $ref names something the schema does not hold. */
static bool load_meta(comp *c) {
    if (c->meta_loaded) return true;
    c->meta_loaded = true;
    const char *why;
    size_t at;
    schema_jv *meta = schema_json_parse(&c->s->arena, schema_meta_draft07, schema_meta_draft07_len, 64, &why, &at);
    if (!meta) return fail(c, "out of memory"), false;
    walk(c, meta, "", "http://json-schema.org/draft-07/schema#", true, 0);
    return !c->failed;
}

static bool resolve_refs(comp *c) {
    for (size_t i = 0; i < c->npend && !c->failed; i++) {
        pending p = c->pend[i];
        const char *rptr = c->s->nodes[p.node].ptr;
        const char *frag;
        const char *abs = uabs(c, p.uri, &frag);
        if (!abs) return false;
        schema_jv *target = NULL;
        const char *tptr = NULL, *tbase = abs;
        if (!*frag || *frag == '/') {
            res_entry *r = find_id(c, abs);
            if (!r && !c->meta_loaded) {
                if (!load_meta(c)) return false;
                r = find_id(c, abs);
            }
            if (!r) {
                fail(c, "\"$ref\" at \"%s\": \"%s\" is not in this schema (only local references and the draft-07 "
                        "meta-schema are allowed)",
                     rptr, p.ref);
                return false;
            }
            bool ok;
            target = follow(r->v, frag, &ok);
            if (target == r->v) tbase = r->base;
            if (!ok) return fail(c, "out of memory"), false;
            if (!target) {
                fail(c, "\"$ref\" at \"%s\": \"%s\" points to nothing in the schema", rptr, p.ref);
                return false;
            }
            /* the pointer in the schema, for messages */
            tptr = *frag ? astr(c, frag, strlen(frag)) : r->ptr;
            if (tptr && *frag && r->ptr[0]) {
                sbuf b = SBUF_INIT;
                sbuf_puts(&b, r->ptr);
                sbuf_puts(&b, frag);
                tptr = sbuf_failed(&b) ? NULL : astr(c, b.buf, b.len);
                sbuf_free(&b);
            }
        } else {
            res_entry *r = find_id(c, p.uri);
            if (!r && !c->meta_loaded) {
                if (!load_meta(c)) return false;
                r = find_id(c, p.uri);
            }
            if (!r) {
                fail(c, "\"$ref\" at \"%s\": \"%s\" names no \"$id\" in this schema", rptr, p.ref);
                return false;
            }
            target = r->v;
            tptr = r->ptr;
            tbase = r->base;
        }
        if (!tptr) return fail(c, "out of memory"), false;
        uint32_t t = compile(c, target, tbase, tptr);
        if (t == SN_NONE) return false;
        c->s->nodes[p.node].ref = t;
    }
    return !c->failed;
}

/* ---- cycles that apply to the same instance ---- */

/* Edges that stay on the same instance: $ref, allOf, anyOf, oneOf, not,
 * if/then/else, schema dependencies. The i-th (SN_NONE: none there). */
static uint32_t edge_count(const snode *n) {
    if (n->kind == SN_REF) return 1;
    if (n->kind != SN_OBJ) return 0;
    return n->allof.n + n->anyof.n + n->oneof.n + 4 + n->ndeps;
}

static uint32_t edge_at(const snode *n, uint32_t i) {
    if (n->kind == SN_REF) return n->ref;
    if (i < n->allof.n) return n->allof.v[i];
    i -= n->allof.n;
    if (i < n->anyof.n) return n->anyof.v[i];
    i -= n->anyof.n;
    if (i < n->oneof.n) return n->oneof.v[i];
    i -= n->oneof.n;
    switch (i) {
    case 0: return n->not_;
    case 1: return n->if_;
    case 2: return n->then_;
    case 3: return n->else_;
    default: return n->deps[i - 4].s;
    }
}

static bool check_cycles(comp *c) {
    schema_t *s = c->s;
    uint8_t *color = calloc(s->nn, 1);
    uint32_t *stack = malloc((size_t)s->nn * sizeof(uint32_t));
    uint32_t *pos = malloc((size_t)s->nn * sizeof(uint32_t));
    bool ok = color && stack && pos;
    if (!ok) fail(c, "out of memory");
    for (uint32_t r = 0; ok && r < s->nn; r++) {
        if (color[r]) continue;
        uint32_t sp = 0;
        stack[sp] = r;
        pos[sp++] = 0;
        color[r] = 1;
        while (sp && ok) {
            uint32_t u = stack[sp - 1];
            const snode *n = &s->nodes[u];
            uint32_t cnt = edge_count(n);
            if (pos[sp - 1] >= cnt) {
                color[u] = 2;
                sp--;
                continue;
            }
            uint32_t w = edge_at(n, pos[sp - 1]++);
            if (w == SN_NONE) continue;
            if (color[w] == 1) {
                /* a cycle: name a $ref on it */
                const char *where = s->nodes[w].ptr;
                for (uint32_t j = sp; j-- > 0;) {
                    if (s->nodes[stack[j]].kind == SN_REF) where = s->nodes[stack[j]].ptr;
                    if (stack[j] == w) break;
                }
                fail(c, "\"$ref\" at \"%s\": a reference cycle that applies to the same value without end", where);
                ok = false;
            } else if (!color[w]) {
                color[w] = 1;
                stack[sp] = w;
                pos[sp++] = 0;
            }
        }
    }
    free(color);
    free(stack);
    free(pos);
    return ok && !c->failed;
}

/* ---- putting it together ---- */

static void comp_free(comp *c) {
    free(c->ids);
    free(c->pend);
    pcre2_compile_context_free(c->cctx);
}

/* Compiles the parsed tree v (its memory is s->arena's) into s. */
static int compile_tree(schema_t *s, schema_jv *v, const schema_limits *lim, char *err, size_t errlen) {
    comp c = {0};
    c.s = s;
    c.max_nodes = lim && lim->max_nodes ? lim->max_nodes : SCHEMA_MAX_NODES;
    c.err = err;
    c.errlen = errlen;
    s->max_steps = lim && lim->max_steps ? lim->max_steps : SCHEMA_MAX_STEPS;
    c.cctx = pcre2_compile_context_create(NULL);
    s->mctx = pcre2_match_context_create(NULL);
    if (!c.cctx || !s->mctx) {
        fail(&c, "out of memory");
        goto out;
    }
    pcre2_set_newline(c.cctx, PCRE2_NEWLINE_ANYCRLF);
    pcre2_set_compile_extra_options(c.cctx, PCRE2_EXTRA_ALT_BSUX);
    pcre2_set_max_pattern_length(c.cctx, 4096);
    pcre2_set_match_limit(s->mctx, SCHEMA_REGEX_MATCH_LIMIT);
    pcre2_set_depth_limit(s->mctx, SCHEMA_REGEX_DEPTH_LIMIT);
    pcre2_set_heap_limit(s->mctx, SCHEMA_REGEX_HEAP_LIMIT);

    walk(&c, v, "", "", false, 0);
    if (!find_id(&c, "") && !c.failed) add_id(&c, "", v, "", "", false);
    if (c.failed) goto out;
    s->root = compile(&c, v, "", "");
    if (c.failed || !resolve_refs(&c) || !check_cycles(&c)) goto out;
out:
    comp_free(&c);
    return c.failed ? -1 : 0;
}

void schema_free(schema_t *s) {
    if (!s) return;
    for (uint32_t i = 0; i < s->nres; i++) pcre2_code_free(s->res[i]);
    free(s->res);
    pcre2_match_context_free(s->mctx);
    free(s->nodes);
    schema_arena_free(&s->arena);
    free(s);
}

uint32_t schema_nodes(const schema_t *s) { return s->nn; }

/* The meta-schema compiled on its own (no check of itself). */
static schema_t *meta_schema(char *err, size_t errlen) {
    schema_t *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    const char *why;
    size_t at;
    schema_jv *v = schema_json_parse(&m->arena, schema_meta_draft07, schema_meta_draft07_len, 64, &why, &at);
    schema_limits lim = {0, 0, 20u * SCHEMA_MAX_STEPS};
    if (!v || compile_tree(m, v, &lim, err, errlen) < 0) {
        schema_free(m);
        return NULL;
    }
    m->explain = true;
    return m;
}

int schema_compile(const char *json, size_t len, const schema_limits *lim, schema_t **out, char *err, size_t errlen) {
    if (errlen) err[0] = '\0';
    size_t max_text = lim && lim->max_text ? lim->max_text : SCHEMA_MAX_TEXT;
    if (len > max_text) {
        snprintf(err, errlen, "schema: the text is longer than %zu bytes", max_text);
        return -1;
    }
    schema_t *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    const char *why;
    size_t at;
    schema_jv *v = schema_json_parse(&s->arena, json, len, SCHEMA_MAX_SCHEMA_DEPTH, &why, &at);
    if (!v) {
        snprintf(err, errlen, "schema: not JSON: %s at byte %zu", why, at);
        schema_free(s);
        return -1;
    }
    /* valid draft-07? */
    schema_t *meta = meta_schema(err, errlen);
    if (!meta) {
        if (errlen && !err[0]) snprintf(err, errlen, "out of memory");
        schema_free(s);
        return -1;
    }
    schema_errors e = SCHEMA_ERRORS_INIT;
    e.max = 1;
    int r = schema_validate_tree(meta, v, SCHEMA_MAX_SCHEMA_DEPTH + 1, &e);
    schema_free(meta);
    if (r != SCHEMA_VALID) {
        if (r == SCHEMA_INVALID && e.count)
            snprintf(err, errlen, "schema: not a valid draft-07 schema at \"%s\": %s (meta-schema keyword \"%s\")",
                     e.e[0].path, e.e[0].message, e.e[0].keyword);
        else snprintf(err, errlen, "out of memory");
        if (errlen) schema_utf8_clean(err);
        schema_errors_free(&e);
        schema_free(s);
        return -1;
    }
    schema_errors_free(&e);
    char msg[512];
    if (compile_tree(s, v, lim, msg, sizeof msg) < 0) {
        snprintf(err, errlen, "schema: %s", msg);
        if (errlen) schema_utf8_clean(err);
        schema_free(s);
        return -1;
    }
    *out = s;
    return 0;
}

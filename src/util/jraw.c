#include "util/jraw.h"

#include <glib.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "util/hex.h"
#include "util/utf8.h"

typedef struct scan {
    const char *s, *end, *p;
    sbuf *out;
    jraw_err *err;
} scan;

static int fail(scan *sc, const char *why) {
    jraw_err *e = sc->err;
    e->offset = (size_t)(sc->p - sc->s);
    e->text = why;
    e->line = 1;
    e->column = 1;
    for (const char *q = sc->s; q < sc->p; q++) {
        if (*q == '\n') { e->line++; e->column = 1; }
        else if (((unsigned char)*q & 0xc0) != 0x80) e->column++;
    }
    return -1;
}

static void skip_ws(scan *sc) {
    while (sc->p < sc->end && (*sc->p == ' ' || *sc->p == '\t' || *sc->p == '\n' || *sc->p == '\r')) sc->p++;
}

static void put_utf8(sbuf *o, unsigned cp) {
    char b[4];
    sbuf_append(o, b, utf8_encode(cp, b));
}

/* Writes code point cp into a JSON string, escaping only what must be. */
static void put_char(sbuf *o, unsigned cp) {
    static const char hex[] = "0123456789abcdef";
    if (cp == '"') sbuf_append(o, "\\\"", 2);
    else if (cp == '\\') sbuf_append(o, "\\\\", 2);
    else if (cp == '\n') sbuf_append(o, "\\n", 2);
    else if (cp == '\r') sbuf_append(o, "\\r", 2);
    else if (cp == '\t') sbuf_append(o, "\\t", 2);
    else if (cp == '\b') sbuf_append(o, "\\b", 2);
    else if (cp == '\f') sbuf_append(o, "\\f", 2);
    else if (cp < 0x20) {
        char e[6] = {'\\', 'u', '0', '0', hex[cp >> 4], hex[cp & 15]};
        sbuf_append(o, e, 6);
    } else put_utf8(o, cp);
}

static int scan_string(scan *sc) {
    sc->p++; /* opening quote */
    sbuf_putc(sc->out, '"');
    while (sc->p < sc->end) {
        unsigned char c = (unsigned char)*sc->p;
        if (c == '"') { sc->p++; sbuf_putc(sc->out, '"'); return 0; }
        if (c < 0x20) return fail(sc, "control character in a string");
        if (c == '\\') {
            if (sc->end - sc->p < 2) break;
            char e = sc->p[1];
            unsigned cp;
            switch (e) {
            case '"': cp = '"'; break;
            case '\\': cp = '\\'; break;
            case '/': cp = '/'; break;
            case 'b': cp = '\b'; break;
            case 'f': cp = '\f'; break;
            case 'n': cp = '\n'; break;
            case 'r': cp = '\r'; break;
            case 't': cp = '\t'; break;
            case 'u':
                if (sc->end - sc->p < 6 || !hex_quad(sc->p + 2, &cp)) return fail(sc, "bad \\u escape");
                if (cp >= 0xdc00 && cp <= 0xdfff) return fail(sc, "lone low surrogate escape");
                if (cp >= 0xd800 && cp <= 0xdbff) {
                    unsigned lo;
                    if (sc->end - sc->p < 12 || sc->p[6] != '\\' || sc->p[7] != 'u' || !hex_quad(sc->p + 8, &lo) ||
                        lo < 0xdc00 || lo > 0xdfff)
                        return fail(sc, "lone high surrogate escape");
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                    sc->p += 6;
                }
                sc->p += 4;
                break;
            default: return fail(sc, "bad escape");
            }
            sc->p += 2;
            put_char(sc->out, cp);
            continue;
        }
        unsigned cp;
        size_t n = utf8_decode((const unsigned char *)sc->p, (size_t)(sc->end - sc->p), &cp);
        if (!n) return fail(sc, "invalid UTF-8");
        if (cp == 0x7f || cp < 0x80) sbuf_putc(sc->out, (char)c);
        else sbuf_append(sc->out, sc->p, n);
        sc->p += n;
    }
    return fail(sc, "unterminated string");
}

static bool digit(char c) { return c >= '0' && c <= '9'; }

static int scan_number(scan *sc) {
    const char *b = sc->p;
    if (sc->p < sc->end && *sc->p == '-') sc->p++;
    if (sc->p >= sc->end || !digit(*sc->p)) return fail(sc, "bad number");
    if (*sc->p == '0') sc->p++;
    else while (sc->p < sc->end && digit(*sc->p)) sc->p++;
    if (sc->p < sc->end && *sc->p == '.') {
        sc->p++;
        if (sc->p >= sc->end || !digit(*sc->p)) return fail(sc, "bad number: digits expected after '.'");
        while (sc->p < sc->end && digit(*sc->p)) sc->p++;
    }
    if (sc->p < sc->end && (*sc->p == 'e' || *sc->p == 'E')) {
        sc->p++;
        if (sc->p < sc->end && (*sc->p == '+' || *sc->p == '-')) sc->p++;
        if (sc->p >= sc->end || !digit(*sc->p)) return fail(sc, "bad number: digits expected in the exponent");
        while (sc->p < sc->end && digit(*sc->p)) sc->p++;
    }
    sbuf_append(sc->out, b, (size_t)(sc->p - b));
    return 0;
}

static int scan_literal(scan *sc, const char *lit) {
    size_t n = strlen(lit);
    if ((size_t)(sc->end - sc->p) < n || memcmp(sc->p, lit, n) != 0) return fail(sc, "unexpected character");
    sbuf_append(sc->out, lit, n);
    sc->p += n;
    return 0;
}

typedef struct keyspan { size_t off, len; } keyspan;

static gint keyspan_cmp(gconstpointer a, gconstpointer b, gpointer base) {
    const keyspan *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp((const char *)base + x->off, (const char *)base + y->off, n);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* At the end of an object: are two of its (compact) keys the same? */
static bool has_duplicate(GArray *keys, const char *base) {
    if (keys->len < 2) return false;
    g_array_sort_with_data(keys, keyspan_cmp, (gpointer)base);
    for (guint i = 1; i < keys->len; i++)
        if (keyspan_cmp(&g_array_index(keys, keyspan, i - 1), &g_array_index(keys, keyspan, i), (gpointer)base) == 0)
            return true;
    return false;
}

static int compact(scan *sc, GArray **keys);

/* The parser: an explicit stack of open containers ('[' or '{'), and for
 * each open object the spans of its keys in out (duplicates are refused:
 * which one wins is undefined in JSON, so a value could mean different
 * things to different readers). */
int jraw_compact(const char *in, size_t n, sbuf *out, jraw_err *err) {
    scan sc = {in, in + n, in, out, err};
    GArray *keys[JRAW_MAX_DEPTH] = {0};
    int rc = compact(&sc, keys);
    for (int i = 0; i < JRAW_MAX_DEPTH; i++)
        if (keys[i]) g_array_free(keys[i], TRUE);
    return rc;
}

static int compact(scan *sc_, GArray **keys) {
    scan sc = *sc_;
    sbuf *out = sc.out;
    size_t n = (size_t)(sc.end - sc.s);
    char stack[JRAW_MAX_DEPTH];
    int depth = 0;
    enum { VALUE, AFTER_VALUE, FIRST_VALUE_OR_END, KEY, FIRST_KEY_OR_END } want = VALUE;
    for (;;) {
        skip_ws(&sc);
        if (want == AFTER_VALUE) {
            if (depth == 0) {
                if (sc.p != sc.end) return fail(&sc, "trailing data after the value");
                return sbuf_failed(out) ? fail(&sc, "out of memory") : 0;
            }
            if (sc.p >= sc.end) return fail(&sc, "unexpected end of input");
            char c = *sc.p;
            if (c == ',') { sc.p++; sbuf_putc(out, ','); want = stack[depth - 1] == '{' ? KEY : VALUE; continue; }
            if ((c == ']' && stack[depth - 1] == '[') || (c == '}' && stack[depth - 1] == '{')) {
                if (c == '}' && has_duplicate(keys[depth - 1], out->buf)) return fail(&sc, "duplicate object key");
                sc.p++;
                sbuf_putc(out, c);
                depth--;
                continue;
            }
            return fail(&sc, stack[depth - 1] == '{' ? "',' or '}' expected" : "',' or ']' expected");
        }
        if (sc.p >= sc.end) return fail(&sc, "unexpected end of input");
        char c = *sc.p;
        if (want == FIRST_KEY_OR_END && c == '}') { sc.p++; sbuf_putc(out, '}'); depth--; want = AFTER_VALUE; continue; }
        if (want == FIRST_VALUE_OR_END && c == ']') { sc.p++; sbuf_putc(out, ']'); depth--; want = AFTER_VALUE; continue; }
        if (want == KEY || want == FIRST_KEY_OR_END) {
            if (c != '"') return fail(&sc, "string key expected");
            size_t at = out->len;
            if (scan_string(&sc) < 0) return -1;
            keyspan ks = {at, out->len - at};
            g_array_append_val(keys[depth - 1], ks);
            skip_ws(&sc);
            if (sc.p >= sc.end || *sc.p != ':') return fail(&sc, "':' expected");
            sc.p++;
            sbuf_putc(out, ':');
            want = VALUE;
            continue;
        }
        /* a value */
        if (c == '{' || c == '[') {
            if (depth == JRAW_MAX_DEPTH) return fail(&sc, "nesting too deep");
            if (c == '{') {
                if (!keys[depth]) keys[depth] = g_array_new(FALSE, FALSE, sizeof(keyspan));
                g_array_set_size(keys[depth], 0);
            }
            stack[depth++] = c;
            sbuf_putc(out, c);
            sc.p++;
            want = c == '{' ? FIRST_KEY_OR_END : FIRST_VALUE_OR_END;
            continue;
        }
        int rc;
        if (c == '"') rc = scan_string(&sc);
        else if (c == '-' || digit(c)) rc = scan_number(&sc);
        else if (c == 't') rc = scan_literal(&sc, "true");
        else if (c == 'f') rc = scan_literal(&sc, "false");
        else if (c == 'n') rc = scan_literal(&sc, "null");
        else rc = fail(&sc, n == 0 ? "empty body" : "unexpected character");
        if (rc < 0) return -1;
        want = AFTER_VALUE;
    }
}

/* ---- walking compact text ---------------------------------------------------- */

/* One past the end of the value at p (compact, well-formed). */
static const char *skip_value(const char *p) {
    int depth = 0;
    bool in_str = false;
    for (;; p++) {
        char c = *p;
        if (in_str) {
            if (c == '\\') p++;
            else if (c == '"') { in_str = false; if (depth == 0) return p + 1; }
            continue;
        }
        switch (c) {
        case '"': in_str = true; break;
        case '{': case '[': depth++; break;
        case '}': case ']':
            if (depth == 0) return p; /* end of a scalar at the container's end */
            if (--depth == 0) return p + 1;
            break;
        case ',': case ':':
            if (depth == 0) return p;
            break;
        case '\0': return p;
        default: break;
        }
    }
}

bool jraw_next_member(const char **it, jraw_span *key, jraw_span *val) {
    const char *p = *it;
    if (*p == ',') p++;
    if (*p != '"') return false;
    const char *k = skip_value(p);
    key->p = p;
    key->n = (size_t)(k - p);
    p = k + 1; /* ':' */
    const char *v = skip_value(p);
    val->p = p;
    val->n = (size_t)(v - p);
    *it = v;
    return true;
}

bool jraw_next_elem(const char **it, jraw_span *val) {
    const char *p = *it;
    if (*p == ',') p++;
    if (*p == ']' || *p == '\0') return false;
    const char *v = skip_value(p);
    val->p = p;
    val->n = (size_t)(v - p);
    *it = v;
    return true;
}

bool jraw_key_is(jraw_span key, const char *name) {
    size_t n = strlen(name);
    return key.n == n + 2 && memcmp(key.p + 1, name, n) == 0;
}

bool jraw_string(jraw_span v, sbuf *out) {
    if (v.n < 2 || v.p[0] != '"') return false;
    const char *p = v.p + 1, *end = v.p + v.n - 1;
    while (p < end) {
        if (*p != '\\') { sbuf_putc(out, *p++); continue; }
        char e = p[1];
        unsigned cp;
        switch (e) {
        case 'n': sbuf_putc(out, '\n'); p += 2; break;
        case 'r': sbuf_putc(out, '\r'); p += 2; break;
        case 't': sbuf_putc(out, '\t'); p += 2; break;
        case 'b': sbuf_putc(out, '\b'); p += 2; break;
        case 'f': sbuf_putc(out, '\f'); p += 2; break;
        case 'u': /* only \u00XX control characters remain after compaction */
            if (!hex_quad(p + 2, &cp)) return false;
            put_utf8(out, cp);
            p += 6;
            break;
        default: sbuf_putc(out, e); p += 2; break; /* '"' and '\\' */
        }
    }
    return true;
}

bool jraw_int(jraw_span v, long long *out) {
    if (v.n == 0 || v.n > 20) return false;
    const char *p = v.p, *end = v.p + v.n;
    bool neg = *p == '-';
    if (neg) p++;
    if (p == end) return false;
    /* magnitude up to 2^63 when negative: -9223372036854775808 is an int64 */
    unsigned long long x = 0, max = neg ? 9223372036854775808ULL : 9223372036854775807ULL;
    for (; p < end; p++) {
        if (!digit(*p)) return false;
        unsigned d = (unsigned)(*p - '0');
        if (x > (max - d) / 10) return false;
        x = x * 10 + d;
    }
    *out = !neg ? (long long)x : x == 9223372036854775808ULL ? LLONG_MIN : -(long long)x;
    return true;
}

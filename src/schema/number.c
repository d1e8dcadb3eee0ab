/* schema: exact decimal numbers on the digits as written. No floating
 * point anywhere: a JSON number is a sign, a digit string and a power of
 * ten, compared and divided exactly. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/schema_int.h"

bool schema_dec_parse(schema_arena *a, const char *p, size_t n, schema_dec *out) {
    const char *end = p + n;
    bool neg = false;
    if (p < end && *p == '-') neg = true, p++;
    char *d = schema_arena_alloc(a, n + 1);
    if (!d) return false;
    size_t nd = 0;
    int64_t frac = 0;
    bool seen = false; /* a nonzero digit: leading zeros are dropped */
    while (p < end && *p >= '0' && *p <= '9') {
        if (*p != '0' || seen) d[nd++] = *p, seen = true;
        p++;
    }
    if (p < end && *p == '.') {
        p++;
        while (p < end && *p >= '0' && *p <= '9') {
            if (*p != '0' || seen) d[nd++] = *p, seen = true;
            frac++;
            p++;
        }
    }
    int64_t e = 0;
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        bool eneg = false;
        if (p < end && (*p == '+' || *p == '-')) eneg = *p == '-', p++;
        while (p < end && *p >= '0' && *p <= '9') {
            if (e < SCHEMA_DEC_EXP_MAX) e = e * 10 + (*p - '0');
            p++;
        }
        if (e > SCHEMA_DEC_EXP_MAX) e = SCHEMA_DEC_EXP_MAX;
        if (eneg) e = -e;
    }
    size_t trail = 0;
    while (nd > 0 && d[nd - 1] == '0') nd--, trail++;
    d[nd] = '\0';
    out->d = d;
    out->nd = (uint32_t)nd;
    if (nd == 0) {
        out->neg = false;
        out->exp = 0;
        return true;
    }
    out->neg = neg;
    e = e - frac + (int64_t)trail;
    if (e > SCHEMA_DEC_EXP_MAX) e = SCHEMA_DEC_EXP_MAX;
    if (e < -SCHEMA_DEC_EXP_MAX) e = -SCHEMA_DEC_EXP_MAX;
    out->exp = e;
    return true;
}

static int cmp_mag(const schema_dec *x, const schema_dec *y) {
    int64_t ax = x->exp + (int64_t)x->nd, ay = y->exp + (int64_t)y->nd;
    if (ax != ay) return ax < ay ? -1 : 1;
    uint32_t n = x->nd < y->nd ? x->nd : y->nd;
    int c = memcmp(x->d, y->d, n);
    if (c) return c < 0 ? -1 : 1;
    return x->nd < y->nd ? -1 : x->nd > y->nd;
}

int schema_dec_cmp(const schema_dec *x, const schema_dec *y) {
    int sx = x->nd == 0 ? 0 : x->neg ? -1 : 1;
    int sy = y->nd == 0 ? 0 : y->neg ? -1 : 1;
    if (sx != sy) return sx < sy ? -1 : 1;
    if (sx == 0) return 0;
    int m = cmp_mag(x, y);
    return sx < 0 ? -m : m;
}

bool schema_dec_is_int(const schema_dec *x) { return x->nd == 0 || x->exp >= 0; }

/* a*b mod m without overflow, a, b < m < 2^62 */
static uint64_t mulmod(uint64_t a, uint64_t b, uint64_t m) {
    uint64_t r = 0;
    while (b) {
        if (b & 1) {
            r += a;
            if (r >= m) r -= m;
        }
        a += a;
        if (a >= m) a -= m;
        b >>= 1;
    }
    return r;
}

static uint64_t powmod10(uint64_t e, uint64_t m) {
    uint64_t r = 1 % m, b = 10 % m;
    while (e) {
        if (e & 1) r = mulmod(r, b, m);
        b = mulmod(b, b, m);
        e >>= 1;
    }
    return r;
}

/* r (n+1 digits, r[0] most significant, value < 10*m) reduced mod m (n digits). */
static void reduce(unsigned char *r, const char *m, uint32_t n) {
    for (;;) {
        /* compare r (n+1 digits) with m (n digits, i.e. a leading zero) */
        int c = r[0] ? 1 : 0;
        for (uint32_t i = 0; !c && i < n; i++) c = r[i + 1] - (m[i] - '0');
        if (c < 0) return;
        int borrow = 0;
        for (uint32_t i = n + 1; i-- > 0;) {
            int v = r[i] - borrow - (i ? m[i - 1] - '0' : 0);
            borrow = v < 0;
            r[i] = (unsigned char)(v < 0 ? v + 10 : v);
        }
    }
}

int schema_dec_multiple(const schema_dec *x, const schema_dec *m, uint64_t *budget) {
    if (x->nd == 0) return 1;
    if (m->nd == 0) return 0; /* not a valid multipleOf; never compiled */
    int64_t e = x->exp - m->exp;
    if (e < 0) return 0; /* x's last digit is not 0: x / 10^-e is no integer */
    if (m->nd <= 18) {
        uint64_t mv = 0;
        for (uint32_t i = 0; i < m->nd; i++) mv = mv * 10 + (uint64_t)(m->d[i] - '0');
        if (*budget < x->nd) return *budget = 0, -1;
        *budget -= x->nd;
        uint64_t r = 0;
        for (uint32_t i = 0; i < x->nd; i++) r = (r * 10 + (uint64_t)(x->d[i] - '0')) % mv;
        if (r == 0) return 1;
        return mulmod(r, powmod10((uint64_t)e, mv), mv) == 0;
    }
    /* m has more than 18 digits: long division by digit strings */
    uint32_t n = m->nd;
    unsigned char *r = calloc((size_t)n + 1, 1);
    if (!r) return -1;
    int res = -1;
    uint64_t steps = (uint64_t)x->nd + (uint64_t)e;
    for (uint64_t i = 0; i < steps; i++) {
        if (*budget < n) {
            *budget = 0;
            goto out;
        }
        *budget -= n;
        memmove(r, r + 1, n);
        r[n] = (unsigned char)(i < x->nd ? x->d[i] - '0' : 0);
        reduce(r, m->d, n);
        if (i >= x->nd) {
            bool zero = true;
            for (uint32_t j = 0; zero && j <= n; j++) zero = r[j] == 0;
            if (zero) {
                res = 1;
                goto out;
            }
        }
    }
    res = 1;
    for (uint32_t j = 0; j <= n; j++)
        if (r[j]) res = 0;
out:
    free(r);
    return res;
}

uint64_t schema_dec_u64(const schema_dec *x) {
    if (x->neg || x->nd == 0) return 0;
    int64_t ndig = (int64_t)x->nd + x->exp; /* digits before the point */
    if (ndig <= 0) return 0;
    if (ndig > 20) return UINT64_MAX;
    uint64_t v = 0;
    for (int64_t i = 0; i < ndig; i++) {
        unsigned dg = i < (int64_t)x->nd ? (unsigned)(x->d[i] - '0') : 0;
        if (v > (UINT64_MAX - dg) / 10) return UINT64_MAX;
        v = v * 10 + dg;
    }
    return v;
}

void schema_dec_str(const schema_dec *x, char *buf, size_t cap) {
    if (cap == 0) return;
    if (x->nd == 0) {
        snprintf(buf, cap, "0");
        return;
    }
    const char *sg = x->neg ? "-" : "";
    int nd = x->nd > 24 ? 24 : (int)x->nd;
    const char *more = x->nd > 24 ? "..." : "";
    if (x->exp >= 0 && x->exp <= 12 && x->nd <= 24)
        snprintf(buf, cap, "%s%.*s%.*s", sg, nd, x->d, (int)x->exp, "000000000000");
    else if (x->exp < 0 && -x->exp < (int64_t)x->nd && x->nd <= 24)
        snprintf(buf, cap, "%s%.*s.%.*s", sg, (int)(x->nd + x->exp), x->d, (int)-x->exp, x->d + x->nd + x->exp);
    else if (x->exp < 0 && -x->exp - (int64_t)x->nd <= 6 && x->nd <= 24)
        snprintf(buf, cap, "%s0.%.*s%.*s", sg, (int)(-x->exp - (int64_t)x->nd), "000000", nd, x->d);
    else
        snprintf(buf, cap, "%s%.*s%se%lld", sg, nd, x->d, more,
                 (long long)(x->exp + (int64_t)x->nd - nd));
}

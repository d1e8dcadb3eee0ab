/* schema: schema_compile and schema_validate (src/schema).
 *
 * Input: a schema's text, a NUL byte, a value's text (no NUL: the value is
 * the schema itself). Properties, for any bytes:
 *  - a refused schema has a non-empty reason that is valid UTF-8 (it goes
 *    into a 400 body);
 *  - a compiled schema validates the value: the answer is one of VALID,
 *    INVALID, ERROR; ERROR exactly when jraw (the gateway's JSON reader)
 *    refuses the value; INVALID comes with 1..max errors, each with a path
 *    that is a JSON pointer ("" or starting with '/'), a keyword and a
 *    message, and the errors as JSON parse back (jansson) as an array;
 *  - the yes/no answer (no error list) is the same as the collecting one,
 *    and the same on the compact form of the value (whitespace changes
 *    nothing);
 *  - nothing hangs: the step budget and PCRE2's limits bound the work. */
#include <jansson.h>
#include <stdbool.h>

#include "fuzz.h"
#include "schema/schema.h"
#include "util/jraw.h"

static bool utf8_ok(const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int n = *p < 0x80 ? 1 : (*p & 0xe0) == 0xc0 ? 2 : (*p & 0xf0) == 0xe0 ? 3 : (*p & 0xf8) == 0xf0 ? 4 : 0;
        if (!n) return false;
        for (int i = 1; i < n; i++)
            if ((p[i] & 0xc0) != 0x80) return false;
        p += n;
    }
    return true;
}

static void check_errors(const schema_errors *e, size_t max) {
    CHECK(e->count >= 1 && e->count <= max);
    for (size_t i = 0; i < e->count; i++) {
        CHECK(e->e[i].path && (e->e[i].path[0] == '\0' || e->e[i].path[0] == '/'));
        CHECK(e->e[i].keyword && e->e[i].keyword[0]);
        CHECK(e->e[i].message && e->e[i].message[0]);
        CHECK(utf8_ok(e->e[i].message));
    }
    sbuf b = SBUF_INIT;
    schema_errors_json(e, &b);
    CHECK(!sbuf_failed(&b));
    json_t *j = json_loadb(b.buf, b.len, 0, NULL);
    CHECK(j && json_is_array(j) && json_array_size(j) == e->count);
    json_decref(j);
    sbuf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *nul = memchr(data, 0, size);
    size_t sn = nul ? (size_t)(nul - data) : size;
    char *stext = fuzz_dup(data, sn);
    char *vtext = nul ? fuzz_dup(nul + 1, size - sn - 1) : fuzz_dup(data, sn);
    size_t vn = nul ? size - sn - 1 : sn;

    schema_limits lim = {0, 2000, 200000};
    schema_t *s = NULL;
    char err[512];
    int rc = schema_compile(stext, sn, &lim, &s, err, sizeof err);
    if (rc < 0) {
        CHECK(s == NULL);
        CHECK(err[0] != '\0');
        CHECK(utf8_ok(err));
    } else {
        CHECK(s != NULL);
        schema_errors e = SCHEMA_ERRORS_INIT;
        e.max = 3;
        int r = schema_validate(s, vtext, vn, &e);
        CHECK(r == SCHEMA_VALID || r == SCHEMA_INVALID || r == SCHEMA_ERROR);
        sbuf c = SBUF_INIT;
        jraw_err je;
        bool json = jraw_compact(vtext, vn, &c, &je) == 0;
        if (r == SCHEMA_ERROR) {
            CHECK(e.count == 1 && !strcmp(e.e[0].keyword, "json"));
            CHECK(!json);
        } else {
            CHECK(json);
        }
        if (r == SCHEMA_INVALID) check_errors(&e, 3);
        if (r == SCHEMA_VALID) CHECK(e.count == 0);
        int quiet = schema_validate(s, vtext, vn, NULL);
        /* a limit (budget) may be reached on one walk and not the other */
        bool limited = r == SCHEMA_INVALID && (!strcmp(e.e[e.count - 1].keyword, "budget") ||
                                               !strcmp(e.e[e.count - 1].keyword, "depth"));
        if (!limited) CHECK(quiet == r);
        if (json && !limited) CHECK(schema_validate(s, c.buf, c.len, NULL) == quiet);
        sbuf_free(&c);
        schema_errors_free(&e);
        schema_free(s);
    }
    free(stext);
    free(vtext);
    return 0;
}

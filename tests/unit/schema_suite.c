/* The official JSON Schema Test Suite (Debian: json-schema-test-suite),
 * draft-07, against src/schema.
 *
 *   schema_suite [DIR]     (default /usr/share/json-schema-test-suite/tests/draft7)
 *
 * Runs every .json file of DIR but refRemote.json (remote references are refused
 * by design: the gateway fetches nothing) and prints "passed P of T"; exits
 * 1 unless every one passes. Then runs DIR/optional/ (and optional/format/)
 * and prints that figure, which does not change the exit status (formats
 * are annotations here; see docs/SCHEMA.md). -v lists every failing case.
 *
 * The files are read with jraw (compact text, numbers exactly as written),
 * so each schema and value reaches schema_compile / schema_validate as the
 * gateway would hand it over. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/schema.h"
#include "util/jraw.h"

/* Cases of the required suite that cannot pass, with the reason. Empty:
 * every case passes. (Listed here, never skipped silently.) */
static const struct {
    const char *file, *group, *test, *why;
} IMPOSSIBLE[] = {
    {NULL, NULL, NULL, NULL},
};

static int verbose;

typedef struct tally {
    int passed, total, skipped;
} tally;

static char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    sbuf b = SBUF_INIT;
    char buf[65536];
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, f)) > 0) sbuf_append(&b, buf, k);
    fclose(f);
    if (sbuf_failed(&b)) return sbuf_free(&b), NULL;
    return sbuf_steal(&b, n);
}

static char *str_of(jraw_span v) {
    sbuf b = SBUF_INIT;
    if (!jraw_string(v, &b)) sbuf_puts(&b, "?");
    sbuf_putc(&b, '\0');
    return sbuf_steal(&b, NULL);
}

static bool impossible(const char *file, const char *group, const char *test) {
    for (size_t i = 0; i < sizeof IMPOSSIBLE / sizeof *IMPOSSIBLE; i++) {
        if (!IMPOSSIBLE[i].file) continue;
        if (!strcmp(IMPOSSIBLE[i].file, file) && !strcmp(IMPOSSIBLE[i].group, group) &&
            !strcmp(IMPOSSIBLE[i].test, test)) {
            printf("  listed as impossible: %s / %s / %s: %s\n", file, group, test, IMPOSSIBLE[i].why);
            return true;
        }
    }
    return false;
}

static int run_file(const char *path, const char *name, tally *t) {
    size_t n;
    char *text = slurp(path, &n);
    if (!text) {
        fprintf(stderr, "cannot read %s\n", path);
        return -1;
    }
    sbuf c = SBUF_INIT;
    jraw_err e;
    if (jraw_compact(text, n, &c, &e) < 0) {
        fprintf(stderr, "%s: not JSON: %s at %zu\n", path, e.text, e.offset);
        free(text);
        return -1;
    }
    free(text);
    const char *it = c.buf + 1;
    jraw_span group;
    while (jraw_next_elem(&it, &group)) {
        const char *g = group.p + 1;
        jraw_span k, v, schema = {0}, tests = {0}, gdesc = {0};
        while (jraw_next_member(&g, &k, &v)) {
            if (jraw_key_is(k, "schema")) schema = v;
            else if (jraw_key_is(k, "tests")) tests = v;
            else if (jraw_key_is(k, "description")) gdesc = v;
        }
        char *gd = str_of(gdesc);
        char err[512];
        schema_t *s = NULL;
        int rc = schema_compile(schema.p, schema.n, NULL, &s, err, sizeof err);
        const char *ti = tests.p + 1;
        jraw_span test;
        while (jraw_next_elem(&ti, &test)) {
            const char *m = test.p + 1;
            jraw_span data = {0}, valid = {0}, tdesc = {0};
            while (jraw_next_member(&m, &k, &v)) {
                if (jraw_key_is(k, "data")) data = v;
                else if (jraw_key_is(k, "valid")) valid = v;
                else if (jraw_key_is(k, "description")) tdesc = v;
            }
            char *td = str_of(tdesc);
            bool want = valid.n == 4;
            t->total++;
            if (impossible(name, gd, td)) {
                t->skipped++;
                free(td);
                continue;
            }
            if (rc < 0) {
                if (verbose) printf("FAIL %s / %s / %s: schema refused: %s\n", name, gd, td, err);
                free(td);
                continue;
            }
            schema_errors es = SCHEMA_ERRORS_INIT;
            int r = schema_validate(s, data.p, data.n, &es);
            bool got = r == SCHEMA_VALID;
            if (r != SCHEMA_ERROR && got == want) {
                t->passed++;
            } else if (verbose) {
                printf("FAIL %s / %s / %s: want %s, got %s", name, gd, td, want ? "valid" : "invalid",
                       r == SCHEMA_ERROR ? "error" : got ? "valid" : "invalid");
                if (es.count) printf(" (%s at \"%s\": %s)", es.e[0].keyword, es.e[0].path, es.e[0].message);
                printf("\n");
            }
            schema_errors_free(&es);
            free(td);
        }
        free(gd);
        schema_free(s);
    }
    sbuf_free(&c);
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int run_dir(const char *dir, const char *prefix, bool skip_remote, tally *t) {
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "cannot open %s (apt-get install json-schema-test-suite)\n", dir);
        return -1;
    }
    char *names[256];
    size_t nn = 0;
    struct dirent *de;
    while ((de = readdir(d)) && nn < 256) {
        size_t l = strlen(de->d_name);
        if (l < 6 || strcmp(de->d_name + l - 5, ".json") != 0) continue;
        if (skip_remote && !strcmp(de->d_name, "refRemote.json")) continue;
        names[nn++] = strdup(de->d_name);
    }
    closedir(d);
    qsort(names, nn, sizeof *names, cmp_str);
    int rc = 0;
    for (size_t i = 0; i < nn; i++) {
        char path[4096], name[512];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        snprintf(name, sizeof name, "%s%s", prefix, names[i]);
        tally f = {0};
        if (run_file(path, name, &f) < 0) rc = -1;
        if (verbose) printf("%-40s %d of %d\n", name, f.passed, f.total);
        t->passed += f.passed;
        t->total += f.total;
        t->skipped += f.skipped;
        free(names[i]);
    }
    return rc;
}

int main(int argc, char **argv) {
    const char *dir = "/usr/share/json-schema-test-suite/tests/draft7";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-v")) verbose = 1;
        else dir = argv[i];
    }
    tally req = {0}, opt = {0};
    if (run_dir(dir, "", true, &req) < 0 || req.total == 0) {
        fprintf(stderr, "schema_suite: the draft-07 suite is missing or unreadable at %s\n", dir);
        return 1;
    }
    char sub[4096];
    snprintf(sub, sizeof sub, "%s/optional", dir);
    run_dir(sub, "optional/", false, &opt);
    snprintf(sub, sizeof sub, "%s/optional/format", dir);
    run_dir(sub, "optional/format/", false, &opt);
    printf("draft-07 (all but refRemote.json): passed %d of %d", req.passed, req.total);
    if (req.skipped) printf(" (%d listed as impossible)", req.skipped);
    printf("\ndraft-07 optional/ (not required): passed %d of %d\n", opt.passed, opt.total);
    return req.passed + req.skipped == req.total ? 0 : 1;
}

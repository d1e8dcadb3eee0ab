#include "http/static.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define STATIC_MAX_FILE (16 * 1024 * 1024)

static const char *content_type(const char *path) {
    static const struct { const char *ext, *type; } types[] = {
        {".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"}, {".css", "text/css; charset=utf-8"},
        {".json", "application/json"}, {".svg", "image/svg+xml"}, {".png", "image/png"},
        {".ico", "image/x-icon"}, {".ts", "text/plain; charset=utf-8"}, {".md", "text/plain; charset=utf-8"},
        {".txt", "text/plain; charset=utf-8"}, {".webmanifest", "application/manifest+json"},
    };
    const char *dot = strrchr(path, '.');
    if (dot && !strchr(dot, '/'))
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
            if (strcmp(dot, types[i].ext) == 0) return types[i].type;
    return "application/octet-stream";
}

/* No backslash, and no segment starting with '.': that refuses ".", ".."
 * and every dotfile or dot-directory (.env, .git/...). */
static bool safe(const char *rel) {
    if (strchr(rel, '\\')) return false;
    for (const char *p = rel; *p;) {
        if (*p == '.') return false;
        const char *e = strchr(p, '/');
        if (!e) break;
        p = e + 1;
    }
    return true;
}

/* Does path, with every symlink resolved, stay inside dir (also resolved)? */
static bool inside(const char *dir, const char *path) {
    char *rd = realpath(dir, NULL);
    char *rp = realpath(path, NULL);
    size_t n = rd ? strlen(rd) : 0;
    bool ok = rd && rp && strncmp(rp, rd, n) == 0 && (rp[n] == '/' || (n == 1 && rd[0] == '/'));
    free(rd);
    free(rp);
    return ok;
}

void static_serve(const char *dir, const char *rel, http_resp *resp) {
    size_t dlen;
    char *dec = http_pct_decode(rel, strlen(rel), &dlen);
    char *path = NULL;
    FILE *f = NULL;
    char *body = NULL;
    if (!dec || strlen(dec) != dlen) goto missing; /* a NUL inside */
    while (dec[0] == '/') memmove(dec, dec + 1, strlen(dec));
    if (!safe(dec)) goto missing;
    if (asprintf(&path, "%s/%s%s", dir, dec, (!*dec || dec[strlen(dec) - 1] == '/') ? "index.html" : "") < 0) {
        path = NULL;
        goto missing;
    }
    if (!inside(dir, path)) goto missing; /* a symlink out of dir */
    struct stat st;
    if (stat(path, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > STATIC_MAX_FILE) goto missing;
    if (!(f = fopen(path, "rb"))) goto missing;
    size_t n = (size_t)st.st_size;
    body = malloc(n ? n : 1);
    if (!body || fread(body, 1, n, f) != n) goto missing;
    http_resp_json(resp, 200, body, n);
    resp->content_type = content_type(path);
    http_resp_header(resp, "Cache-Control", "no-cache");
    fclose(f);
    free(path);
    free(dec);
    return;
missing:
    if (f) fclose(f);
    free(body);
    free(path);
    free(dec);
    http_resp_error(resp, 404, "not_found", "no such file");
}

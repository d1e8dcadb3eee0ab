/* layout: znode paths and the canonical key <-> znode-name encoding.
 * See layout.h for the layout and the encoding rules. */
#include "zk/layout.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/hex.h"

#define FNV64_OFFSET 14695981039346656037ULL
#define FNV64_PRIME 1099511628211ULL

static const char HEX_UPPER[] = "0123456789ABCDEF";

uint64_t layout_key_hash(const char *key, size_t len) {
    const unsigned char *p = (const unsigned char *)key;
    uint64_t h = FNV64_OFFSET;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= FNV64_PRIME;
    }
    return h;
}

unsigned layout_bucket(uint64_t hash) { return (unsigned)(hash & 0xfff); }

unsigned layout_client_bucket(uint64_t hash) { return (unsigned)(hash & 0xff); }

/* ---- key encoding ------------------------------------------------------ */

/* True when byte b must be written %XX wherever it appears in a name. */
static bool must_escape(unsigned char b) { return b < 0x21 || b > 0x7e || b == '/' || b == '%'; }

/* True when key is "." or "..", the two keys written with every byte escaped. */
static bool is_dot_key(const char *key, size_t len) {
    return (len == 1 && key[0] == '.') || (len == 2 && key[0] == '.' && key[1] == '.');
}

char *layout_key_encode(const char *key, size_t len) {
    bool dots = is_dot_key(key, len);
    size_t out_len = 0;
    for (size_t i = 0; i < len; i++)
        out_len += (dots || must_escape((unsigned char)key[i])) ? 3 : 1;
    char *out = malloc(out_len + 1);
    if (!out) return NULL;
    char *w = out;
    for (size_t i = 0; i < len; i++) {
        unsigned char b = (unsigned char)key[i];
        if (dots || must_escape(b)) {
            *w++ = '%';
            *w++ = HEX_UPPER[b >> 4];
            *w++ = HEX_UPPER[b & 0xf];
        } else {
            *w++ = (char)b;
        }
    }
    *w = '\0';
    return out;
}

/* True when name is the encoding of "." or "..", the only names in which an
 * escaped '.' is canonical. */
static bool is_dot_name(const char *name) { return strcmp(name, "%2E") == 0 || strcmp(name, "%2E%2E") == 0; }

char *layout_key_decode(const char *name, size_t *len) {
    if (!name || !name[0]) return NULL;
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) return NULL;
    bool dots = is_dot_name(name);
    size_t n = strlen(name);
    char *out = malloc(n + 1); /* a key is never longer than its name */
    if (!out) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c != '%') {
            if (must_escape(c)) goto refuse; /* raw byte that should be %XX */
            out[k++] = (char)c;
            continue;
        }
        if (i + 2 >= n) goto refuse; /* truncated: "%" or "%X" at the end */
        int hi = hex_value_upper(name[i + 1]), lo = hex_value_upper(name[i + 2]);
        if (hi < 0 || lo < 0) goto refuse; /* lowercase or non-hex */
        unsigned char b = (unsigned char)(hi << 4 | lo);
        if (!must_escape(b) && !dots) goto refuse; /* needless escape */
        out[k++] = (char)b;
        i += 2;
    }
    out[k] = '\0';
    if (len) *len = k;
    return out;
refuse:
    free(out);
    return NULL;
}

/* ---- paths ------------------------------------------------------------- */

/* Concatenates the n NUL-terminated parts into one malloc'd string. */
static char *concat(const char *const *parts, size_t n) {
    size_t total = 1;
    for (size_t i = 0; i < n; i++) total += strlen(parts[i]);
    char *out = malloc(total);
    if (!out) return NULL;
    char *w = out;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(parts[i]);
        memcpy(w, parts[i], l);
        w += l;
    }
    *w = '\0';
    return out;
}

char *layout_stores_path(const char *root) {
    const char *parts[] = {root, "/stores"};
    return concat(parts, 2);
}

char *layout_store_path(const char *root, const char *store) {
    const char *parts[] = {root, "/stores/", store};
    return concat(parts, 3);
}

char *layout_records_path(const char *root, const char *store) {
    const char *parts[] = {root, "/stores/", store, "/r"};
    return concat(parts, 4);
}

char *layout_clients_path(const char *root, const char *store) {
    const char *parts[] = {root, "/stores/", store, "/c"};
    return concat(parts, 4);
}

/* A record bucket's name: three lowercase hex digits; a client bucket's: two. */
static void bucket_name(unsigned bucket, char out[4]) { snprintf(out, 4, "%03x", bucket % LAYOUT_BUCKETS); }
static void client_bucket_name(unsigned bucket, char out[3]) { snprintf(out, 3, "%02x", bucket % LAYOUT_CLIENT_BUCKETS); }

char *layout_bucket_path(const char *root, const char *store, unsigned bucket) {
    char bb[4];
    bucket_name(bucket, bb);
    const char *parts[] = {root, "/stores/", store, "/r/", bb};
    return concat(parts, 5);
}

char *layout_client_bucket_path(const char *root, const char *store, unsigned bucket) {
    char bb[3];
    client_bucket_name(bucket, bb);
    const char *parts[] = {root, "/stores/", store, "/c/", bb};
    return concat(parts, 5);
}

char *layout_named_record_path(const char *root, const char *store, unsigned bucket, const char *name) {
    char bb[4];
    bucket_name(bucket, bb);
    const char *parts[] = {root, "/stores/", store, "/r/", bb, "/", name};
    return concat(parts, 7);
}

char *layout_record_path(const char *root, const char *store, const char *key, size_t len) {
    char *name = layout_key_encode(key, len);
    if (!name) return NULL;
    char *path = layout_named_record_path(root, store, layout_bucket(layout_key_hash(key, len)), name);
    free(name);
    return path;
}

char *layout_client_path(const char *root, const char *store, const char *client) {
    char bb[3];
    client_bucket_name(layout_client_bucket(layout_key_hash(client, strlen(client))), bb);
    const char *parts[] = {root, "/stores/", store, "/c/", bb, "/", client};
    return concat(parts, 7);
}

char *layout_gc_path(const char *root) {
    const char *parts[] = {root, "/gc"};
    return concat(parts, 2);
}

layout_what layout_classify(const char *rel, size_t len, char store[NAMES_MAX_BYTES + 1], unsigned *bucket,
                            const char **name, size_t *nlen) {
    const char *p = rel, *end = rel + len;
    const char *slash = memchr(p, '/', len);
    size_t sl = (size_t)((slash ? slash : end) - p);
    if (sl == 0 || sl > NAMES_MAX_BYTES) return LAYOUT_NONE;
    memcpy(store, p, sl);
    store[sl] = 0;
    if (!slash) return LAYOUT_CONFIG;
    p = slash + 1;
    if (end - p < 5 || p[0] != 'r' || p[1] != '/') return LAYOUT_NONE;
    p += 2;
    unsigned b = 0;
    for (int i = 0; i < 3; i++) {
        int d = hex_value_lower(p[i]);
        if (d < 0) return LAYOUT_NONE;
        b = b * 16 + (unsigned)d;
    }
    *bucket = b;
    p += 3;
    if (p == end) return LAYOUT_BUCKET;
    if (*p != '/' || p + 1 == end || memchr(p + 1, '/', (size_t)(end - p - 1))) return LAYOUT_NONE;
    *name = p + 1;
    *nlen = (size_t)(end - p - 1);
    return LAYOUT_RECORD;
}

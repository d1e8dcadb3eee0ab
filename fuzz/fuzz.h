/* Shared by the fuzz targets: a property check that aborts (libFuzzer
 * then saves the input as a crash), and a NUL-terminated copy of the
 * input in a block of exactly that size (so ASan sees any over-read). */
#ifndef ZS_FUZZ_H
#define ZS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                                                  \
    do {                                                                                             \
        if (!(cond)) {                                                                               \
            fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__, #cond);              \
            abort();                                                                                 \
        }                                                                                            \
    } while (0)

/* data[0..size) as a C string (cut at the first NUL byte), malloc'd. */
static inline char *fuzz_cstr(const uint8_t *data, size_t size) {
    size_t n = strnlen((const char *)data, size);
    char *s = malloc(n + 1);
    if (!s) abort();
    memcpy(s, data, n);
    s[n] = '\0';
    return s;
}

/* data[0..size) copied into a block of exactly size bytes (1 when empty). */
static inline char *fuzz_dup(const uint8_t *data, size_t size) {
    char *s = malloc(size ? size : 1);
    if (!s) abort();
    if (size) memcpy(s, data, size);
    return s;
}

/* The oracle of ^[A-Za-z0-9_-]{1,64}$ (store names, client ids), written
 * apart from src/ so that the targets check names_valid and the
 * token scopes against it. */
static inline int fuzz_name_rule(const char *s, size_t n) {
    if (n < 1 || n > 64) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

#endif

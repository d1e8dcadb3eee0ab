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

#endif

/* layout: the canonical key <-> znode-name encoding, key and name
 * validation, record paths.
 *
 * The input is read three ways:
 *  - as key bytes: encode gives a legal znode name (bytes 0x21..0x7e, no
 *    '/', not "." or ".."), and decode(encode(k)) == k (every non-empty
 *    key, valid or not);
 *  - as a znode name (up to the first NUL): when decode accepts it,
 *    encode(decode(n)) == n (the encoding is canonical);
 *  - names_key_invalid agrees with GLib's UTF-8 validator (1..1024
 *    bytes, well-formed UTF-8, no U+0000), and a valid key written as a
 *    JSON string (sbuf_json_str) reads back (jraw) as the same bytes;
 *    names_valid agrees with ^[A-Za-z0-9_-]{1,64}$. */
#include <glib.h>
#include <stdbool.h>

#include "fuzz.h"
#include "util/jraw.h"
#include "util/names.h"
#include "zk/layout.h"

static void legal_name(const char *n) {
    CHECK(n[0] != '\0');
    for (const char *p = n; *p; p++) CHECK((unsigned char)*p >= 0x21 && (unsigned char)*p <= 0x7e && *p != '/');
    CHECK(strcmp(n, ".") != 0 && strcmp(n, "..") != 0);
}


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *key = fuzz_dup(data, size);
    /* key -> name -> key */
    char *name = layout_key_encode(key, size);
    CHECK(name);
    if (size > 0) {
        legal_name(name);
        size_t back_len = 0;
        char *back = layout_key_decode(name, &back_len);
        CHECK(back);
        CHECK(back_len == size && memcmp(back, key, size) == 0 && back[back_len] == '\0');
        free(back);
    } else {
        CHECK(name[0] == '\0' && !layout_key_decode(name, NULL));
    }
    free(name);

    /* name -> key -> name */
    char *s = fuzz_cstr(data, size);
    size_t klen = 0;
    char *k = layout_key_decode(s, &klen);
    if (k) {
        legal_name(s);
        CHECK(klen >= 1 && klen <= strlen(s));
        char *again = layout_key_encode(k, klen);
        CHECK(again && strcmp(again, s) == 0);
        free(again);
        free(k);
    }

    /* validation */
    const char *why = names_key_invalid(key, size);
    bool valid = size >= 1 && size <= NAMES_KEY_MAX_BYTES && g_utf8_validate_len(key, size, NULL);
    if ((why == NULL) != valid) {
        fprintf(stderr, "names_key_invalid: %s, GLib: %s\n", why ? why : "valid", valid ? "valid" : "invalid");
        CHECK(0);
    }
    if (!why) {
        sbuf j = SBUF_INIT, c = SBUF_INIT, d = SBUF_INIT;
        jraw_err e;
        sbuf_json_str(&j, key, size);
        CHECK(!sbuf_failed(&j));
        CHECK(jraw_compact(j.buf, j.len, &c, &e) == 0);
        CHECK(jraw_string((jraw_span){c.buf, c.len}, &d));
        CHECK(d.len == size && memcmp(d.buf, key, size) == 0);
        sbuf_free(&j);
        sbuf_free(&c);
        sbuf_free(&d);
        char *path = layout_record_path("/zoosync", "todos", key, size);
        CHECK(path && strncmp(path, "/zoosync/stores/todos/r/", 24) == 0);
        free(path);
    }
    CHECK((names_valid(s) != 0) == (fuzz_name_rule(s, strlen(s)) != 0));
    free(s);
    free(key);
    return 0;
}

/* push body validation: push_validate(), i.e. push_run's validate() and
 * make_units(), the code a push body goes through before ZooKeeper.
 *
 * The input is the body. The store allows 512-byte values and the gateway
 * 2048-byte tx groups, so 413s are reachable with small inputs.
 *
 * Properties: no crash, leak or undefined behaviour; a refusal is a
 * 400 or 413 with a code and a message; and an independent reading of the
 * protocol's rules with jansson agrees: a body jansson parses and that
 * follows every rule (PROTOCOL.md "Push") is accepted unless for a size
 * (413), and an accepted body follows every rule. */
#include <jansson.h>
#include <stdbool.h>

#include "fuzz.h"
#include "sync/push_validate.h"
#include "util/names.h"

#define MAX_VALUE 512
#define MAX_TX 2048

/* The rules, read with jansson. 1: valid, 0: not, -1: cannot tell (a
 * number jansson cannot hold). */
static int rules(const json_t *body) {
    if (!json_is_object(body)) return 0;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)body, k, v) {
        if (strcmp(k, "client") != 0 && strcmp(k, "mutations") != 0) return 0;
    }
    json_t *client = json_object_get(body, "client"), *muts = json_object_get(body, "mutations");
    if (!json_is_string(client) || strlen(json_string_value(client)) != json_string_length(client) ||
        !names_valid(json_string_value(client)))
        return 0;
    if (!json_is_array(muts) || json_array_size(muts) > 1000) return 0;
    size_t i;
    json_t *m;
    json_int_t prev = 0;
    const char *prev_tx = NULL;
    json_t *seen_tx = json_object();
    int ok = 1;
    json_array_foreach(muts, i, m) {
        if (!json_is_object(m)) { ok = 0; break; }
        json_object_foreach(m, k, v) {
            if (strcmp(k, "id") && strcmp(k, "key") && strcmp(k, "op") && strcmp(k, "value") && strcmp(k, "base") &&
                strcmp(k, "tx")) { ok = 0; break; }
        }
        if (!ok) break;
        json_t *id = json_object_get(m, "id"), *key = json_object_get(m, "key"), *op = json_object_get(m, "op"),
               *val = json_object_get(m, "value"), *base = json_object_get(m, "base"), *tx = json_object_get(m, "tx");
        if (!json_is_integer(id) || json_integer_value(id) < 1 || json_integer_value(id) <= prev) { ok = 0; break; }
        prev = json_integer_value(id);
        if (!json_is_string(key) || names_key_invalid(json_string_value(key), json_string_length(key))) { ok = 0; break; }
        const char *o = json_string_value(op);
        if (!o || json_string_length(op) != strlen(o) || (strcmp(o, "put") && strcmp(o, "delete"))) { ok = 0; break; }
        if ((strcmp(o, "put") == 0) != (val != NULL)) { ok = 0; break; }
        if (base && (!json_is_integer(base) || json_integer_value(base) < 0)) { ok = 0; break; }
        const char *t = NULL;
        if (tx) {
            t = json_string_value(tx);
            if (!t || json_string_length(tx) == 0 || json_string_length(tx) > 256 || strlen(t) != json_string_length(tx)) {
                ok = 0;
                break;
            }
            bool continues = prev_tx && strcmp(prev_tx, t) == 0;
            if (!continues) {
                if (json_object_get(seen_tx, t)) { ok = 0; break; }
                json_object_set_new(seen_tx, t, json_true());
            }
        }
        prev_tx = t;
    }
    json_decref(seen_tx);
    return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *body = fuzz_dup(data, size);
    store_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    strcpy(cfg.name, "todos");
    cfg.max_value_bytes = MAX_VALUE;
    cfg.tombstone_ttl = 604800;
    zs_err err = {0};
    int rc = push_validate(&cfg, "/zoosync", MAX_TX, body, size, &err);
    if (rc < 0) {
        CHECK(err.status == 400 || err.status == 413);
        CHECK(err.code && *err.code && err.message[0]);
    } else {
        CHECK(err.status == 0);
    }
    json_t *j = json_loadb(body, size, JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, NULL);
    if (j) {
        int want = rules(j);
        /* jansson skips a NUL byte after a literal or number ("[1\0,2]"
         * is [1,2] to it); jraw refuses any NUL outside strings */
        if (want == 1 && rc < 0 && err.status != 413 && !memchr(body, 0, size)) {
            fprintf(stderr, "refused a valid push: %d %s: %s\n", err.status, err.code, err.message);
            CHECK(0);
        }
        if (want == 0 && rc == 0) {
            fprintf(stderr, "accepted an invalid push\n");
            CHECK(0);
        }
        json_decref(j);
    }
    free(body);
    return 0;
}

/* jute: ZooKeeper frames as the mirror's session reads them (src/zk/zkw.c
 * handle_frame, src/cache/mirror.c apply_result / apply_list / apply_data
 * / apply_config).
 *
 * The input is one frame body (without its 4-byte length), read twice:
 *  - as a ConnectResponse (jute_parse_connect_response);
 *  - as a reply: the reply header, then a watch event (xid -1:
 *    jute_parse_event, the record name decoded as mirror.c would) or a
 *    multiRead reply walked as mirror.c walks it: a MultiHeader per
 *    result, then an error code, a getData result (data + Stat; the data
 *    compacted with jraw as a record value and parsed with store_cfg_parse
 *    as a store config) or a getChildren result (a count, then names, each
 *    decoded with layout_key_decode and validated as mirror.c's rec_new
 *    does), until the closing header or a bad read.
 *
 * Properties: no crash, leak or undefined behaviour; every read stays in
 * the frame (jute_in's offset never passes its length; every jute_bytes
 * points inside the frame, or is null with length -1); a bad read latches
 * (later reads return zeros and jute_left is 0). */
#include <stdbool.h>

#include "fuzz.h"
#include "cache/store_cfg.h"
#include "util/err.h"
#include "util/jraw.h"
#include "zk/jute.h"
#include "util/names.h"
#include "zk/layout.h"

static const char *frame;
static size_t frame_len;
/* A schema cache of its own for each input (as the gateway has one per
 * process): freed at the end of the input, which leaves nothing behind
 * when every config released its schema. */
static store_schema_cache *schemas;

static void check_in(const jute_in *in) {
    CHECK(in->off <= in->len);
    if (in->bad) {
        CHECK(jute_left(in) == 0);
    } else {
        CHECK(jute_left(in) == in->len - in->off);
    }
}

static void check_bytes(const jute_in *in, jute_bytes b) {
    check_in(in);
    if (!b.p) {
        CHECK(b.len == -1);
        return;
    }
    CHECK(b.len >= 0);
    CHECK(b.p >= frame && (size_t)(b.p - frame) + (size_t)b.len <= frame_len);
}

static void record_name(const char *p, size_t n) {
    char name[LAYOUT_MAX_NAME_BYTES + 1];
    if (n == 0 || n >= sizeof name) return;
    memcpy(name, p, n);
    name[n] = '\0';
    size_t klen = 0;
    char *key = layout_key_decode(name, &klen);
    if (!key) return;
    (void)layout_bucket(layout_key_hash(key, klen));
    (void)names_key_invalid(key, klen);
    char *again = layout_key_encode(key, klen);
    CHECK(again && strcmp(again, name) == 0);
    free(again);
    free(key);
}

static void value(jute_bytes d, int64_t mzxid) {
    if (d.len <= 0) return;
    sbuf b = SBUF_INIT;
    jraw_err e;
    (void)jraw_compact(d.p, (size_t)d.len, &b, &e);
    sbuf_free(&b);
    store_cfg cfg;
    char why[ZS_ERRLEN] = "";
    int p = store_cfg_parse(&cfg, schemas, "fuzz", d.p, d.len, mzxid, why, sizeof why);
    CHECK(p >= 0 ? why[0] == 0 : why[0] != 0);                  /* a refusal says why; success leaves it */
    CHECK(p < 0 || (cfg.max_value_bytes >= 1 && cfg.tombstone_ttl >= 1)); /* accepted: in range */
    store_cfg_release(&cfg);                                    /* a schema reference, when it held one */
}

static void walk_multi(jute_in *in) {
    for (int ops = 0; ops < 100000; ops++) {
        jute_multi_header h;
        jute_get_multi_header(in, &h);
        check_in(in);
        if (in->bad || h.done) return;
        if (h.type == JUTE_OP_ERROR) {
            (void)jute_get_int(in);
        } else if (h.type == JUTE_OP_GET_DATA) {
            jute_bytes d = jute_get_buffer(in);
            check_bytes(in, d);
            jute_stat st;
            jute_get_stat(in, &st);
            check_in(in);
            if (in->bad) return;
            value(d, st.mzxid);
        } else if (h.type == JUTE_OP_GET_CHILDREN) {
            int32_t n = jute_get_int(in);
            if (in->bad || n < 0) return;
            for (int32_t i = 0; i < n && !in->bad; i++) {
                jute_bytes b = jute_get_buffer(in);
                check_bytes(in, b);
                if (!in->bad && b.len > 0) record_name(b.p, (size_t)b.len);
            }
        } else {
            return;
        }
        check_in(in);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *p = fuzz_dup(data, size);
    frame = p;
    frame_len = size;
    schemas = store_schema_cache_new();
    CHECK(schemas);

    jute_connect_response cr;
    if (jute_parse_connect_response(p, size, &cr) == 0) CHECK(size >= 20);

    jute_in in;
    jute_in_init(&in, p, size);
    jute_reply_header h;
    jute_get_reply_header(&in, &h);
    check_in(&in);
    if (!in.bad) {
        if (h.xid == JUTE_XID_NOTIFICATION) {
            jute_event ev;
            int rc = jute_parse_event(&in, &ev);
            check_bytes(&in, ev.path);
            if (rc == 0) {
                CHECK(ev.path.p && ev.path.len >= 1);
                const char *slash = memrchr(ev.path.p, '/', (size_t)ev.path.len);
                if (slash) record_name(slash + 1, (size_t)(ev.path.p + ev.path.len - slash - 1));
            }
        } else if (h.err == 0) {
            walk_multi(&in);
        }
    }
    /* once bad, always bad */
    if (in.bad) {
        CHECK(jute_get_int(&in) == 0 && jute_get_long(&in) == 0 && !jute_get_bool(&in));
        jute_bytes b = jute_get_buffer(&in);
        CHECK(!b.p && b.len == -1 && jute_left(&in) == 0);
    }
    store_schema_cache_free(schemas);
    schemas = NULL;
    free(p);
    return 0;
}

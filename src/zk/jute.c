#include "zk/jute.h"

#include <assert.h>
#include <string.h>

void jute_put_int(sbuf *b, int32_t v) {
    uint32_t u = (uint32_t)v;
    unsigned char c[4] = {(unsigned char)(u >> 24), (unsigned char)(u >> 16), (unsigned char)(u >> 8), (unsigned char)u};
    sbuf_append(b, c, 4);
}

void jute_put_long(sbuf *b, int64_t v) {
    uint64_t u = (uint64_t)v;
    jute_put_int(b, (int32_t)(uint32_t)(u >> 32));
    jute_put_int(b, (int32_t)(uint32_t)u);
}

void jute_put_bool(sbuf *b, bool v) { sbuf_putc(b, v ? 1 : 0); }

void jute_put_buffer(sbuf *b, const void *p, int32_t len) {
    if (!p || len < 0) { jute_put_int(b, -1); return; }
    jute_put_int(b, len);
    if (len) sbuf_append(b, p, (size_t)len);
}

void jute_put_string(sbuf *b, const char *s) { jute_put_buffer(b, s, s ? (int32_t)strlen(s) : -1); }

size_t jute_frame_begin(sbuf *b) {
    size_t at = b->len;
    jute_put_int(b, 0);
    return at;
}

void jute_frame_end(sbuf *b, size_t start) {
    if (sbuf_failed(b)) return;
    assert(b->len >= start + 4);
    uint32_t n = (uint32_t)(b->len - start - 4);
    unsigned char *c = (unsigned char *)b->buf + start;
    c[0] = (unsigned char)(n >> 24); c[1] = (unsigned char)(n >> 16); c[2] = (unsigned char)(n >> 8); c[3] = (unsigned char)n;
}

void jute_connect_request(sbuf *b, int64_t last_zxid, int32_t timeout_ms, int64_t session_id, const char passwd[16]) {
    static const char zero[16] = {0};
    size_t f = jute_frame_begin(b);
    jute_put_int(b, 0); /* protocolVersion */
    jute_put_long(b, last_zxid);
    jute_put_int(b, timeout_ms);
    jute_put_long(b, session_id);
    jute_put_buffer(b, passwd ? passwd : zero, 16);
    jute_put_bool(b, false); /* readOnly */
    jute_frame_end(b, f);
}

void jute_request_header(sbuf *b, int32_t xid, int32_t type) {
    jute_put_int(b, xid);
    jute_put_int(b, type);
}

/* ---- reading ---- */

void jute_in_init(jute_in *in, const void *p, size_t len) {
    in->p = p;
    in->len = len;
    in->off = 0;
    in->bad = false;
}

size_t jute_left(const jute_in *in) { return in->bad ? 0 : in->len - in->off; }

static const unsigned char *take(jute_in *in, size_t n) {
    if (in->bad || in->len - in->off < n) { in->bad = true; return NULL; }
    const unsigned char *c = (const unsigned char *)in->p + in->off;
    in->off += n;
    return c;
}

int32_t jute_get_int(jute_in *in) {
    const unsigned char *c = take(in, 4);
    if (!c) return 0;
    return (int32_t)(((uint32_t)c[0] << 24) | ((uint32_t)c[1] << 16) | ((uint32_t)c[2] << 8) | (uint32_t)c[3]);
}

int64_t jute_get_long(jute_in *in) {
    uint64_t hi = (uint32_t)jute_get_int(in);
    uint64_t lo = (uint32_t)jute_get_int(in);
    return (int64_t)((hi << 32) | lo);
}

bool jute_get_bool(jute_in *in) {
    const unsigned char *c = take(in, 1);
    return c && *c;
}

jute_bytes jute_get_buffer(jute_in *in) {
    jute_bytes r = {NULL, -1};
    int32_t n = jute_get_int(in);
    if (in->bad || n == -1) return r;
    if (n < -1) { in->bad = true; return r; }
    const unsigned char *c = take(in, (size_t)n);
    if (!c) return r;
    r.p = (const char *)c;
    r.len = n;
    return r;
}

void jute_get_stat(jute_in *in, jute_stat *st) {
    st->czxid = jute_get_long(in);
    st->mzxid = jute_get_long(in);
    st->ctime = jute_get_long(in);
    st->mtime = jute_get_long(in);
    st->version = jute_get_int(in);
    st->cversion = jute_get_int(in);
    st->aversion = jute_get_int(in);
    st->ephemeral_owner = jute_get_long(in);
    st->data_length = jute_get_int(in);
    st->num_children = jute_get_int(in);
    st->pzxid = jute_get_long(in);
}

void jute_get_reply_header(jute_in *in, jute_reply_header *h) {
    h->xid = jute_get_int(in);
    h->zxid = jute_get_long(in);
    h->err = jute_get_int(in);
}

int jute_parse_connect_response(const void *p, size_t len, jute_connect_response *out) {
    jute_in in;
    jute_in_init(&in, p, len);
    memset(out, 0, sizeof *out);
    out->protocol_version = jute_get_int(&in);
    out->timeout_ms = jute_get_int(&in);
    out->session_id = jute_get_long(&in);
    jute_bytes pw = jute_get_buffer(&in);
    if (in.bad || pw.len != 16) {
        /* An expired session is answered with timeout 0, session 0 and an
         * empty password by some servers: accept that shape too. */
        if (!in.bad && out->timeout_ms <= 0 && pw.len <= 0) return 0;
        return -1;
    }
    memcpy(out->passwd, pw.p, 16);
    if (jute_left(&in) >= 1) out->read_only = jute_get_bool(&in); /* optional (older servers omit it) */
    return in.bad ? -1 : 0;
}

int jute_parse_event(jute_in *in, jute_event *ev) {
    ev->type = jute_get_int(in);
    ev->state = jute_get_int(in);
    ev->path = jute_get_buffer(in);
    return in->bad || ev->path.len < 1 ? -1 : 0;
}

void jute_auth(sbuf *b, const char *scheme, const char *cred) {
    size_t f = jute_frame_begin(b);
    jute_request_header(b, JUTE_XID_AUTH, JUTE_OP_AUTH);
    jute_put_int(b, 0);
    jute_put_string(b, scheme);
    jute_put_buffer(b, cred, (int32_t)strlen(cred));
    jute_frame_end(b, f);
}

void jute_multi_op(sbuf *b, int32_t type, const char *path, bool watch) {
    jute_put_int(b, type);
    jute_put_bool(b, false);
    jute_put_int(b, -1);
    jute_put_string(b, path);
    jute_put_bool(b, watch);
}

void jute_multi_end(sbuf *b) {
    jute_put_int(b, -1);
    jute_put_bool(b, true);
    jute_put_int(b, -1);
}

void jute_get_multi_header(jute_in *in, jute_multi_header *h) {
    h->type = jute_get_int(in);
    h->done = jute_get_bool(in);
    h->err = jute_get_int(in);
}

static void put_list(sbuf *b, jute_str_list l) {
    jute_put_int(b, (int32_t)l.n);
    for (size_t i = 0; i < l.n; i++) jute_put_string(b, l.v[i]);
}

void jute_set_watches2(sbuf *b, int64_t relative_zxid, jute_str_list data, jute_str_list exist, jute_str_list child,
                       jute_str_list persistent, jute_str_list recursive) {
    size_t f = jute_frame_begin(b);
    jute_request_header(b, JUTE_XID_SET_WATCHES, JUTE_OP_SET_WATCHES2);
    jute_put_long(b, relative_zxid);
    put_list(b, data);
    put_list(b, exist);
    put_list(b, child);
    put_list(b, persistent);
    put_list(b, recursive);
    jute_frame_end(b, f);
}

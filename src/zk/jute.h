/* jute: the binary encoding of ZooKeeper's wire protocol (zookeeper.jute),
 * just the records the mirror's session needs, with every read bounds
 * checked: a frame from the network is hostile until parsed.
 *
 * Encoding: big-endian int (4 bytes) and long (8), boolean one byte, a
 * buffer or string as an int length then the bytes (-1 = null), a vector as
 * an int count then the elements. A frame on the socket is an int length
 * then that many bytes.
 *
 * Writers append to an sbuf (failure latches there). Readers work on a
 * jute_in cursor: any read past the end, a negative or oversized length,
 * latches jin->bad, and later reads return zeros, so a parser checks once at
 * the end. No allocation on the read side: strings and buffers point into
 * the frame. Pure functions; no state; any thread. */
#ifndef ZS_JUTE_H
#define ZS_JUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/sbuf.h"

/* Op codes (ZooDefs.OpCode) and special xids (ClientCnxn). */
enum {
    JUTE_OP_NOTIFICATION = 0,
    JUTE_OP_GET_DATA = 4,
    JUTE_OP_GET_CHILDREN = 8,
    JUTE_OP_SYNC = 9,
    JUTE_OP_PING = 11,
    JUTE_OP_REMOVE_WATCHES = 18,
    JUTE_OP_MULTI_READ = 22,
    JUTE_OP_AUTH = 100,
    JUTE_OP_SET_WATCHES2 = 105,
    JUTE_OP_ADD_WATCH = 106,
    JUTE_OP_CLOSE = -11,
    JUTE_OP_ERROR = -1,
};
enum { JUTE_XID_NOTIFICATION = -1, JUTE_XID_PING = -2, JUTE_XID_AUTH = -4, JUTE_XID_SET_WATCHES = -8 };
/* Watch event types (Watcher.Event.EventType). */
enum { JUTE_EV_CREATED = 1, JUTE_EV_DELETED = 2, JUTE_EV_CHANGED = 3, JUTE_EV_CHILD = 4 };
/* AddWatchMode. */
enum { JUTE_WATCH_PERSISTENT = 0, JUTE_WATCH_PERSISTENT_RECURSIVE = 1 };

/* The largest frame the client accepts: a multiRead reply (the mirror
 * sizes its batches to a few MiB; one foreign value may be 1 MiB). */
#define JUTE_MAX_FRAME (128u * 1024u * 1024u)

typedef struct jute_stat {
    int64_t czxid, mzxid, ctime, mtime;
    int32_t version, cversion, aversion;
    int64_t ephemeral_owner;
    int32_t data_length, num_children;
    int64_t pzxid;
} jute_stat;

/* A string or buffer inside a frame; len -1 = null. */
typedef struct jute_bytes {
    const char *p;
    int32_t len;
} jute_bytes;

/* ---- writing ---- */
void jute_put_int(sbuf *b, int32_t v);
void jute_put_long(sbuf *b, int64_t v);
void jute_put_bool(sbuf *b, bool v);
void jute_put_buffer(sbuf *b, const void *p, int32_t len); /* len -1: null */
void jute_put_string(sbuf *b, const char *s);              /* NULL: null */

/* Starts a frame (reserves its length) and returns where it starts; end it
 * with jute_frame_end, which writes the length. */
size_t jute_frame_begin(sbuf *b);
void jute_frame_end(sbuf *b, size_t start);

/* Whole frames for the requests the client sends. */
void jute_connect_request(sbuf *b, int64_t last_zxid, int32_t timeout_ms, int64_t session_id, const char passwd[16]);
void jute_request_header(sbuf *b, int32_t xid, int32_t type);

/* ---- reading ---- */
typedef struct jute_in {
    const char *p;
    size_t len, off;
    bool bad;
} jute_in;

void jute_in_init(jute_in *in, const void *p, size_t len);
int32_t jute_get_int(jute_in *in);
int64_t jute_get_long(jute_in *in);
bool jute_get_bool(jute_in *in);
jute_bytes jute_get_buffer(jute_in *in);
void jute_get_stat(jute_in *in, jute_stat *st);
/* Bytes left; a parser that expects the end checks it is 0. */
size_t jute_left(const jute_in *in);

typedef struct jute_reply_header {
    int32_t xid;
    int64_t zxid;
    int32_t err;
} jute_reply_header;
void jute_get_reply_header(jute_in *in, jute_reply_header *h);

typedef struct jute_connect_response {
    int32_t protocol_version;
    int32_t timeout_ms;
    int64_t session_id;
    char passwd[16];
    bool read_only;
} jute_connect_response;
/* Returns 0, or -1 when the frame is not a ConnectResponse. */
int jute_parse_connect_response(const void *p, size_t len, jute_connect_response *out);

typedef struct jute_event {
    int32_t type, state;
    jute_bytes path;
} jute_event;
/* The body of a notification (after the reply header). 0 or -1. */
int jute_parse_event(jute_in *in, jute_event *ev);

/* An AuthPacket frame (xid -4) for scheme with credentials cred. */
void jute_auth(sbuf *b, const char *scheme, const char *cred);

/* multiRead / multi bodies: a MultiHeader before each op, and a closing
 * header {-1, true, -1}. */
void jute_multi_op(sbuf *b, int32_t type, const char *path, bool watch);
void jute_multi_end(sbuf *b);
typedef struct jute_multi_header {
    int32_t type;
    bool done;
    int32_t err;
} jute_multi_header;
void jute_get_multi_header(jute_in *in, jute_multi_header *h);

/* A SetWatches2 frame (xid -8). Vectors are given as arrays of strings. */
typedef struct jute_str_list {
    const char *const *v;
    size_t n;
} jute_str_list;
void jute_set_watches2(sbuf *b, int64_t relative_zxid, jute_str_list data, jute_str_list exist, jute_str_list child,
                       jute_str_list persistent, jute_str_list recursive);

#endif

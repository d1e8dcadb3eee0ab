/* cursor: positions in a store's changes feed.
 *
 * A position is (zxid, key digest, version): the ZooKeeper transaction that
 * made the change, then a fixed digest of the key (layout_key_hash), then the
 * record's protocol version, which orders two changes of one key inside one
 * transaction. Every gateway computes the same position for the same change
 * from what it reads, and it never changes. On the wire a cursor is 40
 * lowercase hex digits (16 + 16 + 8), so byte-wise order is feed order.
 * Values only: pure functions; any thread. */
#ifndef ZS_CURSOR_H
#define ZS_CURSOR_H

#include <stdbool.h>
#include <stdint.h>

#define CURSOR_LEN 40

typedef struct cursor_pos {
    uint64_t zxid;
    uint64_t khash;
    uint32_t version;
} cursor_pos;

/* The position just after every change of transaction zxid. */
cursor_pos cursor_after_zxid(uint64_t zxid);
void cursor_format(const cursor_pos *p, char out[CURSOR_LEN + 1]);
/* Returns 0 on success, -1 when s is not exactly 40 lowercase hex digits. */
int cursor_parse(const char *s, cursor_pos *out);
int cursor_cmp(const cursor_pos *a, const cursor_pos *b);

#endif

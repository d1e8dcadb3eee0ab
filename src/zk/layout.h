/* layout: where zoosync keeps things in ZooKeeper, and how a record key
 * becomes a legal znode name.
 *
 *   <root>/stores/<store>                   store config (JSON)
 *   <root>/stores/<store>/r/<bbb>/<name>    record: data = compact JSON value,
 *                                           empty data = tombstone
 *   <root>/stores/<store>/c/<bb>/<client>   exactly-once state of one client
 *   <root>/gc/g-<session>-<seq>             the collector's election (sync/gc)
 *
 * <bbb> is the record bucket: three lowercase hex digits, the low 12 bits of
 * the key's 64-bit FNV-1a hash, so no parent holds more than 1/4096 of a
 * store (a creation makes the mirror re-list one bucket: it must stay
 * short). <bb>, the client bucket, is the low byte of the client id's hash.
 * <name> is the key, UTF-8, with every byte outside printable ASCII
 * (0x21..0x7e), and '/' and '%', written as %XX (uppercase hex); the keys
 * "." and ".." are written "%2E" and "%2E%2E". The encoding is canonical:
 * layout_key_decode() refuses any name that layout_key_encode() would not
 * have produced, so one key has exactly one znode. Which keys and names
 * are valid is util/names' rule. Pure functions; any thread. */
#ifndef ZS_LAYOUT_H
#define ZS_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#include "util/names.h" /* keys and names: what is valid */

#define LAYOUT_BUCKETS 4096       /* record buckets: r/000 .. r/fff */
#define LAYOUT_CLIENT_BUCKETS 256 /* client buckets: c/00 .. c/ff */
/* The longest znode name of a key: every byte written %XX. */
#define LAYOUT_MAX_NAME_BYTES (3 * NAMES_KEY_MAX_BYTES)

/* 64-bit FNV-1a of the key's bytes: the bucket and the cursor's digest. */
uint64_t layout_key_hash(const char *key, size_t len);
unsigned layout_bucket(uint64_t hash);        /* record bucket, < LAYOUT_BUCKETS */
unsigned layout_client_bucket(uint64_t hash); /* < LAYOUT_CLIENT_BUCKETS */

/* Returns a malloc'd NUL-terminated znode name, NULL on allocation failure. */
char *layout_key_encode(const char *key, size_t len);
/* Returns the malloc'd key (NUL-terminated; *len excludes the NUL), or NULL
 * when name is not a canonical encoding. */
char *layout_key_decode(const char *name, size_t *len);

/* Paths; each returns a malloc'd string (NULL on allocation failure). */
char *layout_stores_path(const char *root);                    /* <root>/stores */
char *layout_store_path(const char *root, const char *store);  /* <root>/stores/<store> */
char *layout_records_path(const char *root, const char *store); /* .../<store>/r */
char *layout_clients_path(const char *root, const char *store); /* .../<store>/c */
char *layout_bucket_path(const char *root, const char *store, unsigned bucket);        /* .../r/<bbb> */
char *layout_client_bucket_path(const char *root, const char *store, unsigned bucket); /* .../c/<bb> */
/* .../r/<bbb>/<name>, name already encoded (layout_key_encode). */
char *layout_named_record_path(const char *root, const char *store, unsigned bucket, const char *name);
char *layout_record_path(const char *root, const char *store, const char *key, size_t len);
char *layout_client_path(const char *root, const char *store, const char *client);
/* <root>/gc: the collector's election (sync/gc). */
char *layout_gc_path(const char *root);

/* What a path below <root>/stores names. rel[0..len) is the path with
 * "<root>/stores/" removed: "<store>" (the config), "<store>/r/<bbb>" (a
 * bucket) or "<store>/r/<bbb>/<name>" (a record); anything else is
 * LAYOUT_NONE. Sets store (NUL-terminated; not checked against
 * names_valid), and *bucket, *name and *nlen (name: inside rel, not
 * decoded) as far as the path goes. */
typedef enum { LAYOUT_NONE, LAYOUT_CONFIG, LAYOUT_BUCKET, LAYOUT_RECORD } layout_what;
layout_what layout_classify(const char *rel, size_t len, char store[NAMES_MAX_BYTES + 1], unsigned *bucket,
                            const char **name, size_t *nlen);

#endif

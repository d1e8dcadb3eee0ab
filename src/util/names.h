/* names: what the protocol accepts as a store name, a client id and a
 * record key (docs/PROTOCOL.md). The one place these rules live: the HTTP
 * layer, the scopes (auth), the push validation and the mirror (which
 * distrusts what it reads from ZooKeeper) all ask here.
 * Pure functions; any thread. */
#ifndef ZS_NAMES_H
#define ZS_NAMES_H

#include <stdbool.h>
#include <stddef.h>

#define NAMES_MAX_BYTES 64        /* a store name or a client id */
#define NAMES_KEY_MAX_BYTES 1024  /* a record key */

/* ^[A-Za-z0-9_-]{1,64}$ : store names and client ids. s may be NULL. */
bool names_valid(const char *s);
/* The same for s[0..len) (not NUL-terminated). */
bool names_valid_n(const char *s, size_t len);

/* Validates a key: 1..1024 bytes of valid UTF-8 (no lone surrogates, no
 * overlongs), no U+0000. Returns NULL when valid, else a static sentence
 * saying why. */
const char *names_key_invalid(const char *key, size_t len);

#endif

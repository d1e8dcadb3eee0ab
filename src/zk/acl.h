/* acl: the gateway's ZooKeeper identity (digest scheme) and the ACL of every
 * znode it creates (PROTOCOL.md, "Transport and ZooKeeper security").
 *
 * With --zk-digest-file F (one line "user:password"), both sessions
 * authenticate as that identity and every znode the gateway creates gets
 * "this identity: all; world: read" (world read dropped with
 * --zk-acl-world-read no). Without it, znodes are created open, as in v1.
 *
 * A zk_ident is filled once by main (which owns it) and only read after:
 * any thread. */
#ifndef ZS_ACL_H
#define ZS_ACL_H

#include <stdbool.h>
#include <stddef.h>
#include <zookeeper/zookeeper.h>

typedef struct zk_ident {
    bool on;                 /* false: no identity, open ACL */
    char cred[256];          /* "user:password", what the digest scheme sends */
    char id[512];            /* "user:base64(sha1(user:password))", the ACL id */
    struct ACL acl[2];
    struct ACL_vector vec;
} zk_ident;

/* Reads file (one line "user:password"; a trailing newline ignored).
 * Returns 0, or -1 with a sentence in why[0..whylen) (util/err.h). */
int zk_ident_load(zk_ident *out, const char *file, bool world_read, char *why, size_t whylen);
/* The digest id of cred ("user:password"), as ZooKeeper computes it, into
 * out (size n). Returns 0 or -1. */
int zk_ident_digest(const char *cred, char *out, size_t n);
/* The ACL for a znode the gateway creates: the identity's, or open. */
const struct ACL_vector *zk_ident_acl(const zk_ident *i);

#endif

#include "zk/acl.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

#include "util/err.h"

int zk_ident_digest(const char *cred, char *out, size_t n) {
    const char *colon = strchr(cred, ':');
    if (!colon) return -1;
    unsigned char md[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)cred, strlen(cred), md);
    unsigned char b64[4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1];
    EVP_EncodeBlock(b64, md, SHA_DIGEST_LENGTH);
    int k = snprintf(out, n, "%.*s:%s", (int)(colon - cred), cred, (const char *)b64);
    return k < 0 || (size_t)k >= n ? -1 : 0;
}

int zk_ident_load(zk_ident *out, const char *file, bool world_read, char *why, size_t whylen) {
    memset(out, 0, sizeof *out);
    FILE *f = fopen(file, "r");
    if (!f) return zs_errf(why, whylen, "cannot open the ZooKeeper digest file");
    char *line = NULL;
    size_t cap = 0;
    ssize_t got = getline(&line, &cap, f);
    int extra = got > 0 ? fgetc(f) : EOF;
    fclose(f);
    int rc = -1;
    size_t n = got > 0 ? (size_t)got : 0;
    if (got <= 0) { zs_errf(why, whylen, "the ZooKeeper digest file is empty"); goto out; }
    if (strlen(line) != n) { zs_errf(why, whylen, "the ZooKeeper digest file holds a NUL byte"); goto out; }
    if (n && line[n - 1] == '\n') line[--n] = 0;
    if (n && line[n - 1] == '\r') line[--n] = 0;
    if (extra != EOF) { zs_errf(why, whylen, "the ZooKeeper digest file must hold one line, user:password"); goto out; }
    const char *colon = strchr(line, ':');
    if (n >= sizeof out->cred) { zs_errf(why, whylen, "the ZooKeeper digest credentials are too long"); goto out; }
    if (colon && colon - line > 64) { zs_errf(why, whylen, "the ZooKeeper digest user name is longer than 64 bytes"); goto out; }
    if (!colon || colon == line || !colon[1]) { zs_errf(why, whylen, "the ZooKeeper digest file must hold user:password"); goto out; }
    for (const char *p = line; *p; p++)
        if ((unsigned char)*p < 0x20) { zs_errf(why, whylen, "the ZooKeeper digest credentials hold a control character"); goto out; }
    memcpy(out->cred, line, n + 1);
    if (zk_ident_digest(out->cred, out->id, sizeof out->id) < 0) { zs_errf(why, whylen, "cannot compute the digest id"); goto out; }
    rc = 0;
out:
    if (line) explicit_bzero(line, cap); /* the password */
    free(line);
    if (rc < 0) return -1;
    out->on = true;
    out->acl[0] = (struct ACL){ZOO_PERM_ALL, {"digest", out->id}};
    out->acl[1] = (struct ACL){ZOO_PERM_READ, {"world", "anyone"}};
    out->vec = (struct ACL_vector){world_read ? 2 : 1, out->acl};
    return 0;
}

const struct ACL_vector *zk_ident_acl(const zk_ident *i) { return i && i->on ? &i->vec : &ZOO_OPEN_ACL_UNSAFE; }

/* static: serves files from a directory (the demo app, the browser client).
 * Read-only, GET and HEAD, no directory listings; a path with a segment
 * starting with '.' (dotfiles, "..", "."), a NUL, or a backslash is
 * refused, and so is a file whose resolved path (symlinks followed) is
 * outside dir; "/" maps to index.html. Runs on worker threads; no state. */
#ifndef ZS_HTTP_STATIC_H
#define ZS_HTTP_STATIC_H

#include "http/server.h"

/* Serves rel (the URL path below the mount point, percent-encoded) from
 * dir into resp: 200 with the file, or 404 not_found. */
void static_serve(const char *dir, const char *rel, http_resp *resp);

#endif

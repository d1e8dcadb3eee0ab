/* openapi_doc: docs/openapi.json (the OpenAPI description, made from
 * docs/openapi.yaml by scripts/openapi-json.mjs), embedded at build time by
 * cmake/embed.cmake and served at GET /v1/openapi.json. Read-only data. */
#ifndef ZS_OPENAPI_DOC_H
#define ZS_OPENAPI_DOC_H

#include <stddef.h>

extern const unsigned char zs_openapi_json[]; /* NUL-terminated */
extern const size_t zs_openapi_json_len;      /* without the NUL */

#endif

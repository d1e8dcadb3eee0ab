/* push_validate: the validation half of push_run (sync/push), callable
 * without ZooKeeper, for tests and fuzzing. It runs the very code push_run
 * runs before its first ZooKeeper call: the body compacted (jraw), its
 * shape, every mutation (id order, key, op, value size against cfg, base,
 * tx groups consecutive), and every tx group's size against max_tx_bytes.
 * root only sizes the record paths. Pure; any thread. */
#ifndef ZS_PUSH_VALIDATE_H
#define ZS_PUSH_VALIDATE_H

#include <stddef.h>

#include "sync/stores.h"
#include "util/err.h"

/* Returns 0 when push_run would go on to ZooKeeper with this body, or -1
 * and err (400 invalid_json / bad_request / invalid_key, 413
 * value_too_large / tx_too_large; 500 on allocation failure). */
int push_validate(const store_cfg *cfg, const char *root, size_t max_tx_bytes, const char *body, size_t len,
                  zs_err *err);

#endif

/* session: what the layers above sync may know of the write session
 * (zk/zkc) without speaking ZooKeeper: whether it is connected, for
 * readiness, the 503 of a request that needs ZooKeeper, and /metrics.
 * Any thread (an atomic read of the session's state). */
#ifndef ZS_SESSION_H
#define ZS_SESSION_H

#include <stdbool.h>

/* The write session (zk/zkc.h), opaque here. */
typedef struct zkc zkc;

bool session_connected(zkc *z);

#endif

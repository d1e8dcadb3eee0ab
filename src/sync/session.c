#include "sync/session.h"

#include "zk/zkc.h"

bool session_connected(zkc *z) { return zkc_connected(z); }

/* zklog: the ZooKeeper C client's own log lines, routed into the gateway's
 * logger (util/log.h), in its format (text or JSON), at mapped levels and
 * rate-limited.
 *
 * libzookeeper writes each line as "<time>:<pid>(0x<tid>):ZOO_<LEVEL>@<func>@
 * <line>: <message>" either to a per-handle callback that gets no context
 * pointer, or to one FILE* for the whole process (zoo_set_log_stream). So a
 * zklog is a FILE* made with fopencookie whose cookie is the zklog: no global
 * of ours. The stream is the library's, process-wide: the last zklog
 * installed receives every handle's lines (the gateway has one).
 *
 * Levels: ZOO_ERROR -> error, ZOO_WARN -> warn, ZOO_INFO and ZOO_DEBUG ->
 * debug (the library's info lines are its connection chatter). The library
 * is asked for its info lines always and they are filtered here, against
 * the level in force (which may change while running); lines below it are
 * not counted by the rate limit.
 *
 * Rate limit: at most ZKLOG_BURST lines per ZKLOG_WINDOW_S seconds; past
 * that, lines are counted and dropped, and the first line let through after
 * the window (or zklog_free) says how many were dropped. During a ZooKeeper
 * outage the library logs a refused connection several times a second:
 * the gateway's own "zookeeper: connection lost" line says what matters.
 *
 * Threads: the library writes from its I/O and completion threads and from
 * callers'; every line is handled under the zklog's mutex. */
#ifndef ZS_ZKLOG_H
#define ZS_ZKLOG_H

#include <stdint.h>
#include <stdio.h>

#include "util/log.h"

#define ZKLOG_BURST 5
#define ZKLOG_WINDOW_S 30

typedef struct zklog zklog;

/* A sink writing to lg (owned by the caller, outliving the zklog). NULL on
 * failure (out of memory). */
zklog *zklog_new(const zs_log *lg);
/* Makes the sink the ZooKeeper client's log stream, the library at its
 * info level. */
void zklog_install(zklog *k);
/* Gives the library back its default stream (stderr), reports what the
 * rate limit dropped, and frees k. Call after every zookeeper_close. */
void zklog_free(zklog *k);

/* One line as the library writes it (no trailing newline needed), at
 * now_ms (monotonic): parsed, mapped, rate-limited and logged. For tests,
 * and the stream's write function. */
void zklog_line(zklog *k, const char *line, size_t n, int64_t now_ms);

#endif

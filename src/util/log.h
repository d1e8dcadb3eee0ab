/* log: leveled logging to stderr. The threshold lives in a zs_log value that
 * main() owns and passes down; nothing here is global. Thread-safe (one
 * fprintf per line); level and format are atomic, so main() may change
 * them while other threads log (SIGHUP). */
#ifndef ZS_LOG_H
#define ZS_LOG_H

#include <stdatomic.h>
#include <stdbool.h>

typedef enum { ZS_LOG_ERROR = 0, ZS_LOG_WARN, ZS_LOG_INFO, ZS_LOG_DEBUG } zs_log_level;

typedef struct zs_log {
    _Atomic zs_log_level level;
    atomic_bool json; /* one JSON object per line: {"ts","level","msg"} (--log-format json) */
} zs_log;

/* Parses "error", "warn", "info" or "debug"; returns -1 for anything else. */
int zs_log_parse_level(const char *s);
void zs_log_at(const zs_log *lg, zs_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define LOG_ERROR(lg, ...) zs_log_at((lg), ZS_LOG_ERROR, __VA_ARGS__)
#define LOG_WARN(lg, ...) zs_log_at((lg), ZS_LOG_WARN, __VA_ARGS__)
#define LOG_INFO(lg, ...) zs_log_at((lg), ZS_LOG_INFO, __VA_ARGS__)
#define LOG_DEBUG(lg, ...) zs_log_at((lg), ZS_LOG_DEBUG, __VA_ARGS__)

#endif

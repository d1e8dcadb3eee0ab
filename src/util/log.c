#include "util/log.h"

#include "util/sbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int zs_log_parse_level(const char *s) {
    for (int i = 0; i < 4; i++)
        if (strcmp(s, level_names[i]) == 0) return i;
    return -1;
}

void zs_log_at(const zs_log *lg, zs_log_level lvl, const char *fmt, ...) {
    if (lg && lvl > lg->level) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    if (lg && lg->json) {
        sbuf b = SBUF_INIT;
        sbuf_printf(&b, "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\",\"msg\":", when, ts.tv_nsec / 1000000L, level_names[lvl]);
        sbuf_json_str(&b, msg, strlen(msg));
        sbuf_puts(&b, "}\n");
        if (!sbuf_failed(&b)) fwrite(b.buf, 1, b.len, stderr);
        sbuf_free(&b);
        return;
    }
    /* One line per entry whatever a message holds (a token's sub, a store
     * name from a request): control characters become '?'. */
    for (char *p = msg; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = '?';
    fprintf(stderr, "%s.%03ldZ %-5s %s\n", when, ts.tv_nsec / 1000000L, level_names[lvl], msg);
}

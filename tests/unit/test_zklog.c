/* Unit tests for src/zk/zklog.c: the ZooKeeper C client's lines parsed,
 * their levels mapped, written in our format, and rate-limited. stderr
 * (where util/log writes) is redirected to a temporary file per test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "zk/zklog.h"

#define ERR_LINE "2026-12-06 13:20:13,084:22951(0x7f46b15ff6c0):ZOO_ERROR@check_events@3011: Socket 127.0.0.1:2181 zk retcode=-4, errno=111(Connection refused): server refused to accept the client"
#define INFO_LINE "2026-12-06 13:20:13,084:22951(0x7f46b15ff6c0):ZOO_INFO@log_env@1250: Client environment:zookeeper.version=zookeeper C client 3.8.0"

/* Runs fn with stderr going to a file; returns what was written (malloc'd). */
static char *capture(void (*fn)(void *), void *arg) {
    fflush(stderr);
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    int saved = dup(2);
    dup2(fileno(tmp), 2);
    fn(arg);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    long n = ftell(tmp) >= 0 ? (fseek(tmp, 0, SEEK_END), ftell(tmp)) : 0;
    rewind(tmp);
    char *out = calloc(1, (size_t)n + 1);
    assert_int_equal(fread(out, 1, (size_t)n, tmp), (size_t)n);
    fclose(tmp);
    return out;
}

static int count(const char *s, const char *what) {
    int n = 0;
    for (const char *p = s; (p = strstr(p, what)); p += strlen(what)) n++;
    return n;
}

static void one_error_json(void *arg) {
    zklog *k = arg;
    zklog_line(k, ERR_LINE "\n", strlen(ERR_LINE) + 1, 1000);
}

static void test_format_and_level(void **state) {
    (void)state;
    zs_log lg = {ZS_LOG_INFO, true};
    zklog *k = zklog_new(&lg);
    char *out = capture(one_error_json, k);
    assert_non_null(strstr(out, "\"level\""));
    assert_string_equal(strstr(out, "\"level\""), "\"level\":\"error\",\"msg\":\"zookeeper client: Socket 127.0.0.1:2181 zk retcode=-4, "
                                  "errno=111(Connection refused): server refused to accept the client (check_events)\"}\n");
    assert_memory_equal(out, "{\"ts\":\"", 7);
    free(out);
    zklog_free(k);
}

typedef struct many { zklog *k; const char *line; int n; int64_t t0, step_ms; } many;

static void send_many(void *arg) {
    many *m = arg;
    for (int i = 0; i < m->n; i++) zklog_line(m->k, m->line, strlen(m->line), m->t0 + i * m->step_ms);
}

static void free_it(void *arg) { zklog_free(arg); }

static void test_info_is_debug(void **state) {
    (void)state;
    zs_log lg = {ZS_LOG_INFO, false};
    zklog *k = zklog_new(&lg);
    many m = {k, INFO_LINE, 3, 0, 1};
    char *out = capture(send_many, &m);
    assert_string_equal(out, ""); /* the library's info is our debug */
    free(out);
    lg.level = ZS_LOG_DEBUG;
    out = capture(send_many, &m);
    assert_int_equal(count(out, " debug zookeeper client: Client environment:zookeeper.version="), 3);
    free(out);
    zklog_free(k);
}

static void test_rate_limit(void **state) {
    (void)state;
    zs_log lg = {ZS_LOG_INFO, false};
    zklog *k = zklog_new(&lg);
    /* 100 lines in 10 s: the burst, one note, nothing else */
    many m = {k, ERR_LINE, 100, 5000, 100};
    char *out = capture(send_many, &m);
    assert_int_equal(count(out, "\n"), ZKLOG_BURST + 1);
    assert_int_equal(count(out, " error zookeeper client: Socket "), ZKLOG_BURST);
    assert_int_equal(count(out, "the rest are counted, not logged"), 1);
    free(out);
    /* the next window: the count of what was dropped, then lines again */
    many later = {k, ERR_LINE, 1, 5000 + ZKLOG_WINDOW_S * 1000, 0};
    out = capture(send_many, &later);
    assert_int_equal(count(out, "95 more lines not logged"), 1);
    assert_int_equal(count(out, " error zookeeper client: Socket "), 1);
    free(out);
    /* the rest of the count is reported when freed */
    many again = {k, ERR_LINE, 10, 5000 + ZKLOG_WINDOW_S * 1000 + 1, 1};
    out = capture(send_many, &again);
    free(out);
    out = capture(free_it, k);
    assert_int_equal(count(out, "6 more lines not logged"), 1);
    free(out);
}

static void test_not_a_library_line(void **state) {
    (void)state;
    zs_log lg = {ZS_LOG_INFO, false};
    zklog *k = zklog_new(&lg);
    many m = {k, "something else\x01", 1, 0, 0};
    char *out = capture(send_many, &m);
    assert_non_null(strstr(out, " warn  zookeeper client: something else?\n")); /* kept whole, at warn, neutralised */
    free(out);
    zklog_free(k);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_and_level),
        cmocka_unit_test(test_info_is_debug),
        cmocka_unit_test(test_rate_limit),
        cmocka_unit_test(test_not_a_library_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

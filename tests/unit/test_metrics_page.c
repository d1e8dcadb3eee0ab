/* Unit tests for src/http/metrics_page.c: label values escaped as the text
 * format says, the per-store gauges (a store with streams but no loaded
 * mirror still shows its streams), and every auth-failure reason present
 * from the start. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/metrics_page.h"

static void has_line(const char *page, const char *line) {
    size_t n = strlen(line);
    for (const char *p = page; (p = strstr(p, line)); p += n)
        if ((p == page || p[-1] == '\n') && p[n] == '\n') return;
    fail_msg("no line \"%s\" in the page", line);
}

static void test_label_value(void **state) {
    (void)state;
    sbuf b = SBUF_INIT;
    metrics_page_label_value(&b, "a\"b\\c\nd-e_f");
    sbuf_putc(&b, '\0');
    assert_string_equal(b.buf, "a\\\"b\\\\c\\nd-e_f");
    sbuf_free(&b);
}

static void render(const metrics_page_in *in, sbuf *out) {
    metrics_page_render(in, out);
    sbuf_putc(out, '\0');
    assert_false(out->failed);
}

static void test_stores_and_auth(void **state) {
    (void)state;
    static const char *const labels[] = {"other"};
    metrics_page_counters *c = metrics_page_counters_new(labels, 1);
    assert_non_null(c);
    mirror_stats ms = {0};
    gc_stats gs = {0};
    mirror_store_stat st[] = {{"todos", 3, 40}, {"we\"ird", 0, 0}};
    events_store_count ev[] = {{"todos", 2}, {"unloaded", 1}, {"unloaded", 1}};
    metrics_page_in in = {.http = c, .mirror = &ms, .gc = &gs, .stores = st, .nstores = 2, .streams = ev, .nstreams = 3};
    sbuf b = SBUF_INIT;
    render(&in, &b);
    has_line(b.buf, "zoosync_store_records{store=\"todos\"} 3");
    has_line(b.buf, "zoosync_store_bytes{store=\"todos\"} 40");
    has_line(b.buf, "zoosync_store_records{store=\"we\\\"ird\"} 0");
    has_line(b.buf, "zoosync_store_event_streams{store=\"todos\"} 2");
    has_line(b.buf, "zoosync_store_event_streams{store=\"we\\\"ird\"} 0");
    has_line(b.buf, "zoosync_store_event_streams{store=\"unloaded\"} 2");
    has_line(b.buf, "# TYPE zoosync_auth_failures_total counter");
    for (int r = 0; r < AUTH_FAIL_COUNT; r++) {
        char line[128];
        snprintf(line, sizeof line, "zoosync_auth_failures_total{reason=\"%s\"} 0", auth_failure_name((auth_failure)r));
        has_line(b.buf, line);
    }
    sbuf_free(&b);

    unsigned long long af[AUTH_FAIL_COUNT] = {0};
    af[AUTH_FAIL_EXPIRED] = 7;
    in.auth_failures = af;
    render(&in, &b);
    has_line(b.buf, "zoosync_auth_failures_total{reason=\"expired\"} 7");
    has_line(b.buf, "zoosync_auth_failures_total{reason=\"missing\"} 0");
    sbuf_free(&b);
    metrics_page_counters_free(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_label_value),
        cmocka_unit_test(test_stores_and_auth),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

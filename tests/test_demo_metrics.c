/* GET /metrics of the demo through its route table: Prometheus text, no
 * guard (a scrape makes no guest), and the counts the visits before it
 * made. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "demo_testlib.h"

#define SCHEMA "t_demo_metrics"

/* The value of the sample line for @p name (no labels), or -1. */
static long long value_of(const char *text, const char *name)
{
    char needle[128];
    snprintf(needle, sizeof needle, "\n%s ", name);
    const char *p = strstr(text, needle);
    return p ? strtoll(p + strlen(needle), NULL, 10) : -1;
}

START_TEST(metrics_route_serves_prometheus_text)
{
    tl_drop_schema(SCHEMA);
    guest_ctx *ctx = tl_ctx(SCHEMA, NULL);
    tl_http h;
    dt_get(ctx, &h, "/allow_guest_user/", NULL);
    ck_assert_int_eq(h.status, 200);
    char cookie[128];
    ck_assert(tl_http_cookie(&h, "sessionid", cookie, sizeof cookie));
    tl_http_free(&h);
    dt_get(ctx, &h, "/allow_guest_user/", cookie);
    ck_assert_int_eq(h.status, 200);
    tl_http_free(&h);

    for (int scrape = 0; scrape < 2; scrape++) {
        dt_get(ctx, &h, "/metrics", NULL);
        ck_assert_int_eq(h.status, 200);
        ck_assert_str_eq(tl_http_res_header(&h, "Content-Type"),
                         "text/plain; version=0.0.4");
        /* no guard: the scraper stays anonymous, no cookie, no guest */
        ck_assert(!tl_http_cookie(&h, "sessionid", cookie, sizeof cookie));
        ck_assert_uint_eq(strlen(h.res_body), h.res_len);
        ck_assert_ptr_nonnull(
            strstr(h.res_body, "# HELP guestuser_guests_created_total "));
        ck_assert_ptr_nonnull(strstr(
            h.res_body, "# TYPE guestuser_guests_created_total counter\n"));
        ck_assert_int_eq(value_of(h.res_body, "guestuser_guests_created_total"),
                         1);
        ck_assert_int_eq(
            value_of(h.res_body, "guestuser_sessions_resolved_total"), 1);
        ck_assert_ptr_nonnull(strstr(
            h.res_body, "guestuser_pool_wait_seconds_bucket{le=\"+Inf\"} "));
        tl_http_free(&h);
    }
    guest_ctx_free(ctx);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("demo_metrics");
    TCase *tc = tcase_create("metrics");
    tcase_add_test(tc, metrics_route_serves_prometheus_text);
    suite_add_tcase(s, tc);
    return tl_run(s);
}

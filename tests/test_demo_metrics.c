/* GET /metrics of the demo: Prometheus text, no guard (a scrape makes no
 * guest), and the counts the visits before it made; only for a client
 * that came straight from this host, or with --metrics-token-file's token.
 * Through the route table in process, then over real HTTP against the
 * guestuser-demo program. */
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "demo_proc.h"
#include "demo_testlib.h"

#define SCHEMA "t_demo_metrics"
#define TOKEN "3f9c1a7e5b2d8046c1e9a3f7b5d2c8e04a6f1b9d3c7e5a2f8b0d4c6e1a9f3b7d"

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
        dt_get(ctx, &h, "/metrics", NULL); /* the peer is 127.0.0.1 */
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

/* GET /metrics from @p peer with up to two extra headers (NULL names are
 * left out); the status. A refusal must look like an unknown path. */
static int scrape(guest_ctx *ctx, const char *peer, const char *n1,
                  const char *v1, const char *n2, const char *v2)
{
    tl_http h;
    tl_http_init(&h, "GET", "/metrics");
    h.peer = peer;
    tl_http_add(&h, "Host", "testserver");
    if (n1)
        tl_http_add(&h, n1, v1);
    if (n2)
        tl_http_add(&h, n2, v2);
    tl_http_run(ctx, &h, dt_handler, NULL);
    int status = h.status;
    if (status == 200)
        ck_assert_ptr_nonnull(strstr(h.res_body, "guestuser_"));
    else
        ck_assert_str_eq(h.res_body, "Not Found\n");
    tl_http_free(&h);
    return status;
}

static void trust_loopback(guest_config *cfg)
{
    cfg->trusted_proxies = "127.0.0.1/32,::1/128";
}

START_TEST(only_loopback_clients_without_a_token)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, NULL);
    ck_assert_int_eq(scrape(ctx, "127.0.0.1", NULL, NULL, NULL, NULL), 200);
    ck_assert_int_eq(scrape(ctx, "127.8.9.10", NULL, NULL, NULL, NULL), 200);
    ck_assert_int_eq(scrape(ctx, "::1", NULL, NULL, NULL, NULL), 200);
    ck_assert_int_eq(scrape(ctx, "::ffff:127.0.0.1", NULL, NULL, NULL, NULL),
                     200);
    ck_assert_int_eq(scrape(ctx, "203.0.113.5", NULL, NULL, NULL, NULL), 404);
    ck_assert_int_eq(scrape(ctx, "2001:db8::1", NULL, NULL, NULL, NULL), 404);
    ck_assert_int_eq(scrape(ctx, "10.0.0.1", NULL, NULL, NULL, NULL), 404);
    /* No proxy is trusted, so the library ignores the header and the peer
     * stays the client; claiming loopback changes nothing. */
    ck_assert_int_eq(
        scrape(ctx, "203.0.113.5", "X-Forwarded-For", "127.0.0.1", NULL, NULL),
        404);
    /* A loopback peer that forwards for someone is a proxy on this host
     * (nginx without trusted_proxies): every visitor would look local. */
    ck_assert_int_eq(
        scrape(ctx, "127.0.0.1", "X-Forwarded-For", "203.0.113.5", NULL, NULL),
        404);
    ck_assert_int_eq(
        scrape(ctx, "127.0.0.1", "Forwarded", "for=203.0.113.5", NULL, NULL),
        404);
    ck_assert_int_eq(
        scrape(ctx, "127.0.0.1", "X-Real-IP", "203.0.113.5", NULL, NULL), 404);
    /* Without a token configured, no Authorization opens it. */
    ck_assert_int_eq(scrape(ctx, "203.0.113.5", "Authorization",
                            "Bearer " TOKEN, NULL, NULL),
                     404);
    guest_ctx_free(ctx);

    /* Behind trusted proxies the client the library decided on counts:
     * the visitor nginx names, not nginx's loopback address. */
    ctx = tl_ctx(SCHEMA, trust_loopback);
    ck_assert_int_eq(
        scrape(ctx, "127.0.0.1", "X-Forwarded-For", "203.0.113.5", NULL, NULL),
        404);
    ck_assert_int_eq(
        scrape(ctx, "::1", "X-Forwarded-For", "2001:db8::7", NULL, NULL), 404);
    /* Even a visitor the proxy calls local came through the proxy. */
    ck_assert_int_eq(
        scrape(ctx, "127.0.0.1", "X-Forwarded-For", "127.0.0.1", NULL, NULL),
        404);
    /* A scraper on this host that skips the proxy. */
    ck_assert_int_eq(scrape(ctx, "127.0.0.1", NULL, NULL, NULL, NULL), 200);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(the_token_opens_it_from_anywhere)
{
    ck_assert_int_eq(demo_metrics_set_token(TOKEN), 0);
    guest_ctx *ctx = tl_ctx(SCHEMA, trust_loopback);
    const char *far = "203.0.113.5";
    ck_assert_int_eq(
        scrape(ctx, far, "Authorization", "Bearer " TOKEN, NULL, NULL), 200);
    ck_assert_int_eq(
        scrape(ctx, far, "Authorization", "bearer  " TOKEN " ", NULL, NULL),
        200);
    ck_assert_int_eq(scrape(ctx, "127.0.0.1", "X-Forwarded-For", far,
                            "Authorization", "Bearer " TOKEN),
                     200);
    /* Wrong, cut short, longer, another scheme, empty, none. */
    static const char *const refused[] = {
        "Bearer " TOKEN "0",
        "Bearer "
        "3f9c1a7e5b2d8046c1e9a3f7b5d2c8e04a6f1b9d3c7e5a2f8b0d4c6e1a9f3b7c",
        "Bearer 3f9c1a7e5b2d8046c1e9a3f7b5d2c8e0",
        "Bearer " TOKEN TOKEN,
        "Basic " TOKEN,
        TOKEN,
        "Bearer ",
        "Bearer",
        "",
    };
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++)
        ck_assert_msg(
            scrape(ctx, far, "Authorization", refused[i], NULL, NULL) == 404,
            "Authorization: \"%s\" was accepted", refused[i]);
    ck_assert_int_eq(scrape(ctx, far, NULL, NULL, NULL, NULL), 404);
    ck_assert_int_eq(scrape(ctx, "127.0.0.1", "X-Forwarded-For", far,
                            "Authorization", "Bearer wrong"),
                     404);
    /* A direct client on this host needs none. */
    ck_assert_int_eq(scrape(ctx, "127.0.0.1", NULL, NULL, NULL, NULL), 200);
    guest_ctx_free(ctx);
    ck_assert_int_eq(demo_metrics_set_token(NULL), 0);
}
END_TEST

/* Writes @p text to a new file of mode 0600; its path into @p path. */
static void token_file(char path[64], const char *text)
{
    snprintf(path, 64, "/tmp/guestuser-metrics-XXXXXX");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

START_TEST(metrics_token_file_flag)
{
    char path[64];
    token_file(path, "  " TOKEN "\r\n");
    demo_options o;
    char *argv[] = {"demo", "--metrics-token-file", path, NULL};
    ck_assert_int_eq(demo_parse_args(&o, 3, argv), 0);
    ck_assert_str_eq(o.metrics_token, TOKEN);
    demo_options_free(&o);
    ck_assert_ptr_null(o.metrics_token);
    unlink(path);
    static const char *const bad[] = {"", "\n", "short-token\n",
                                      "two words that are long enough ok\n",
                                      "3f9c1a7e5b2d8046c1e9a3f7b5d2c8e\n"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        token_file(path, bad[i]);
        ck_assert_msg(demo_parse_args(&o, 3, argv) == -1,
                      "token file \"%s\" was accepted", bad[i]);
        demo_options_free(&o);
        unlink(path);
    }
    char *missing[] = {"demo", "--metrics-token-file", "/nonexistent/t", NULL};
    ck_assert_int_eq(demo_parse_args(&o, 3, missing), -1);
    demo_options_free(&o);
}
END_TEST

/* ---- the guestuser-demo program over loopback ---- */

/* Starts the demo on a free port with @p extra (NULL-terminated) after the
 * database flags. */
static void demo_start(demo_proc *d, const char *const *extra)
{
    const char *args[32] = {"--port",          "0",        "--db",
                            tl_conninfo(),     "--schema", SCHEMA "_http",
                            "--db-timeout-ms", "30000"};
    int argc = 8;
    for (; extra && *extra; extra++)
        args[argc++] = *extra;
    args[argc] = NULL;
    demo_proc_start(d, args);
}

static void demo_stop(demo_proc *d)
{
    demo_proc_stop(d, false);
}

/* GET /metrics over real HTTP with @p headers (CRLF-terminated lines, may
 * be ""); the status. */
static int http_scrape(const demo_proc *d, const char *headers)
{
    char req[1024];
    snprintf(req, sizeof req,
             "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n%s"
             "Connection: close\r\n\r\n",
             headers);
    char *res = tl_http_raw(d->port, req, 30000);
    ck_assert_ptr_nonnull(res);
    int status = tl_raw_status(res);
    if (status == 200)
        ck_assert_ptr_nonnull(
            strstr(tl_raw_body(res), "guestuser_guests_created_total "));
    else
        ck_assert_ptr_null(strstr(tl_raw_body(res), "guestuser_"));
    free(res);
    return status;
}

START_TEST(over_http_loopback_proxy_and_token)
{
    char path[64];
    token_file(path, TOKEN "\n");
    demo_proc d;
    /* nginx on this host in front, as docs/deployment.md configures it */
    const char *const extra[] = {"--trusted-proxy", "127.0.0.1/32",
                                 "--metrics-token-file", path, NULL};
    demo_start(&d, extra);
    unlink(path);
    /* The scraper on this host, straight to the demo. */
    ck_assert_int_eq(http_scrape(&d, ""), 200);
    /* A visitor through the proxy: the library's client is theirs. */
    ck_assert_int_eq(http_scrape(&d, "X-Forwarded-For: 203.0.113.5\r\n"), 404);
    ck_assert_int_eq(http_scrape(&d, "X-Forwarded-For: 127.0.0.1\r\n"), 404);
    /* With the token, from anywhere. */
    ck_assert_int_eq(http_scrape(&d, "X-Forwarded-For: 203.0.113.5\r\n"
                                     "Authorization: Bearer " TOKEN "\r\n"),
                     200);
    ck_assert_int_eq(http_scrape(&d, "X-Forwarded-For: 203.0.113.5\r\n"
                                     "Authorization: Bearer not-the-token\r\n"),
                     404);
    ck_assert_int_eq(http_scrape(&d, "X-Forwarded-For: 203.0.113.5\r\n"
                                     "Authorization: Bearer " TOKEN "x\r\n"),
                     404);
    demo_stop(&d);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("demo_metrics");
    TCase *tc = tcase_create("metrics");
    tcase_add_test(tc, metrics_route_serves_prometheus_text);
    tcase_add_test(tc, only_loopback_clients_without_a_token);
    tcase_add_test(tc, the_token_opens_it_from_anywhere);
    tcase_add_test(tc, metrics_token_file_flag);
    tcase_add_test(tc, over_http_loopback_proxy_and_token);
    suite_add_tcase(s, tc);
    return tl_run(s);
}

/* The checks that need their own configuration, over real loopback sockets,
 * against every server adapter this build has: allowed_hosts and
 * trusted_proxies, and CivetWeb's own server options. One TCase per server,
 * built from one list. What every adapter must do with the library's
 * defaults (routes and visitors, cookies, bodies and limits, HEAD,
 * keep-alive, framing) is the conformance kit's: the conformance_<server>
 * tests run guestuser-conformance against each. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef TEST_WITH_MHD
#include <guestuser/adapters/mhd.h>
#endif
#ifdef TEST_WITH_CIVETWEB
#include <guestuser/adapters/civetweb.h>
#endif
#ifdef TEST_WITH_ULFIUS
#include <guestuser/adapters/ulfius.h>
#endif
#ifdef TEST_WITH_EVHTTP
#include <guestuser/adapters/evhttp.h>
#endif

#include "routes.h"
#include "testlib.h"

#define MAX_BODY 4096
/* a bound on each wait for the server, generous for a loaded machine */
#define TIMEOUT_MS 30000

typedef struct running running;

typedef struct server_kind {
    const char *name;
    const char *schema;
    void (*start)(running *s, guest_handler_fn handler, void *userdata);
    void (*stop)(running *s);
} server_kind;

struct running {
    const server_kind *kind;
    guest_ctx *ctx;
    int port;
    void *app;
    void *server;
};

#ifdef TEST_WITH_MHD
/* @p workers 0: a thread per connection; else the event mode. */
static void mhd_start_with(running *s, guest_handler_fn handler, void *userdata,
                           unsigned workers)
{
    guest_mhd *app = NULL;
    struct MHD_Daemon *d = NULL;
    guest_mhd_limits l;
    guest_mhd_limits_init(&l);
    l.workers = workers;
    ck_assert_int_eq(guest_mhd_new(s->ctx, handler, userdata, &app), GUEST_OK);
    ck_assert_int_eq(guest_mhd_set_limits(app, &l), GUEST_OK);
    ck_assert_int_eq(guest_mhd_start(app, "127.0.0.1", 0, &d), GUEST_OK);
    const union MHD_DaemonInfo *di =
        MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    ck_assert_ptr_nonnull(di);
    s->port = di->port;
    s->app = app;
    s->server = d;
}

static void mhd_start(running *s, guest_handler_fn handler, void *userdata)
{
    mhd_start_with(s, handler, userdata, 0);
}

static void mhd_event_start(running *s, guest_handler_fn handler,
                            void *userdata)
{
    mhd_start_with(s, handler, userdata, 8);
}

static void mhd_stop(running *s)
{
    guest_mhd_stop(s->app, s->server);
    guest_mhd_free(s->app);
}
#endif

#ifdef TEST_WITH_CIVETWEB
static void civetweb_start(running *s, guest_handler_fn handler, void *userdata)
{
    guest_civetweb *app = NULL;
    struct mg_context *mg = NULL;
    ck_assert_int_eq(guest_civetweb_new(s->ctx, handler, userdata, &app),
                     GUEST_OK);
    ck_assert_int_eq(guest_civetweb_start(app, "127.0.0.1", 0, &mg), GUEST_OK);
    struct mg_server_port sp;
    ck_assert_int_eq(mg_get_server_ports(mg, 1, &sp), 1);
    ck_assert_int_gt(sp.port, 0);
    s->port = sp.port;
    s->app = app;
    s->server = mg;
}

static void civetweb_stop(running *s)
{
    mg_stop(s->server);
    guest_civetweb_free(s->app);
}
#endif

#ifdef TEST_WITH_ULFIUS
static void ulfius_start(running *s, guest_handler_fn handler, void *userdata)
{
    guest_ulfius *app = NULL;
    struct _u_instance *in = NULL;
    ck_assert_int_eq(guest_ulfius_new(s->ctx, handler, userdata, &app),
                     GUEST_OK);
    ck_assert_int_eq(guest_ulfius_start(app, "127.0.0.1", 0, &in), GUEST_OK);
    const union MHD_DaemonInfo *di =
        MHD_get_daemon_info(in->mhd_daemon, MHD_DAEMON_INFO_BIND_PORT);
    ck_assert_ptr_nonnull(di);
    s->port = di->port;
    s->app = app;
    s->server = in;
}

static void ulfius_stop(running *s)
{
    guest_ulfius_free(s->app);
}
#endif

#ifdef TEST_WITH_EVHTTP
static void evhttp_start(running *s, guest_handler_fn handler, void *userdata)
{
    guest_evhttp *app = NULL;
    uint16_t port = 0;
    ck_assert_int_eq(guest_evhttp_new(s->ctx, handler, userdata, &app),
                     GUEST_OK);
    ck_assert_int_eq(guest_evhttp_start(app, "127.0.0.1", 0, &port), GUEST_OK);
    ck_assert_int_gt(port, 0);
    s->port = port;
    s->app = app;
}

static void evhttp_stop(running *s)
{
    guest_evhttp_free(s->app);
}
#endif

static const server_kind kinds[] = {
#ifdef TEST_WITH_MHD
    {"mhd", "t_srv_mhd", mhd_start, mhd_stop},
    {"mhd_event", "t_srv_mhd_event", mhd_event_start, mhd_stop},
#endif
#ifdef TEST_WITH_ULFIUS
    {"ulfius", "t_srv_ulfius", ulfius_start, ulfius_stop},
#endif
#ifdef TEST_WITH_CIVETWEB
    {"civetweb", "t_srv_civet", civetweb_start, civetweb_stop},
#endif
#ifdef TEST_WITH_EVHTTP
    {"evhttp", "t_srv_evhttp", evhttp_start, evhttp_stop},
#endif
};
#define NKINDS ((int)(sizeof kinds / sizeof *kinds))

static void down(running *s)
{
    s->kind->stop(s);
    guest_ctx_free(s->ctx);
}

/* ---- a few SQL helpers on the server's schema ---- */

static long long rows(const running *s, const char *table)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s.%s", s->kind->schema,
             table);
    return tl_scalar(sql);
}

/* First column of the first row as text, copied into @p out ("" if none). */
/* ---- HTTP over loopback ---- */

typedef struct resp {
    char *raw;
    int status;
} resp;

/* One request with Connection: close. @p headers are extra header lines
 * ("Name: value\r\n"...), @p body is sent with a Content-Length. */
static resp request(const running *s, const char *method, const char *target,
                    const char *headers, const char *body)
{
    size_t blen = body ? strlen(body) : 0;
    size_t cap = strlen(target) + (headers ? strlen(headers) : 0) + blen + 256;
    char *req = malloc(cap);
    ck_assert_ptr_nonnull(req);
    char cl[48] = "";
    if (body)
        snprintf(cl, sizeof cl, "Content-Length: %zu\r\n", blen);
    snprintf(req, cap,
             "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
             "%s%s\r\n%s",
             method, target, headers ? headers : "", cl, body ? body : "");
    resp r = {tl_http_raw(s->port, req, TIMEOUT_MS), 0};
    free(req);
    ck_assert_msg(r.raw, "%s: no connection to port %d", s->kind->name,
                  s->port);
    r.status = tl_raw_status(r.raw);
    ck_assert_msg(r.status, "%s %s %s: no response: '%s'", s->kind->name,
                  method, target, r.raw);
    return r;
}

/* ---- what a handler saw ---- */

static void has_line(const char *raw, const char *line)
{
    ck_assert_msg(strstr(tl_raw_body(raw), line), "'%s' not in '%s'", line,
                  tl_raw_body(raw));
}

/* ---- allowed_hosts and trusted_proxies through each server ---- */

/* up() with allowed_hosts and trusted_proxies set. */
static running up_with(int i, guest_handler_fn handler, const char *hosts,
                       const char *proxies)
{
    running s = {.kind = &kinds[i]};
    tl_drop_schema(s.kind->schema);
    guest_config c;
    tl_config(&c, s.kind->schema);
    c.max_body_size = MAX_BODY;
    c.allowed_hosts = hosts;
    c.trusted_proxies = proxies;
    s.ctx = tl_ctx_new(&c);
    s.kind->start(&s, handler, NULL);
    return s;
}

/* The status of GET @p target with the header lines @p headers verbatim
 * (Host among them, or not); the raw response into *raw when asked. */
static int host_request(const running *s, const char *version,
                        const char *target, const char *headers, char **raw)
{
    char req[512];
    snprintf(req, sizeof req, "GET %s %s\r\n%sConnection: close\r\n\r\n",
             target, version, headers);
    char *r = tl_http_raw(s->port, req, TIMEOUT_MS);
    ck_assert_msg(r, "%s: no connection", s->kind->name);
    int status = tl_raw_status(r);
    if (raw)
        *raw = r;
    else
        free(r);
    return status;
}

START_TEST(foreign_hosts_get_400_before_any_handler)
{
    running s =
        up_with(_i, tl_routes_handler, "example.com,.example.org", NULL);
    static const char *const yes[] = {
        "Host: example.com\r\n", "Host: EXAMPLE.com:8080\r\n",
        "Host: www.example.org\r\n", "Host: example.org:80\r\n"};
    for (size_t k = 0; k < sizeof yes / sizeof *yes; k++)
        ck_assert_msg(host_request(&s, "HTTP/1.1", "/healthz", yes[k], NULL) ==
                          200,
                      "%s: refused %s", s.kind->name, yes[k]);
    static const char *const no[] = {
        "Host: evil.example\r\n", "Host: 127.0.0.1\r\n",
        "Host: www.example.com\r\n", "Host: example.com:x\r\n",
        "Host: badexample.org\r\n"};
    for (size_t k = 0; k < sizeof no / sizeof *no; k++) {
        char *raw;
        int st =
            host_request(&s, "HTTP/1.1", "/allow_guest_user/", no[k], &raw);
        ck_assert_msg(st == 400, "%s: %s got %d", s.kind->name, no[k], st);
        ck_assert_str_eq(tl_raw_body(raw),
                         "Bad Request (invalid Host header)\n");
        char *sc = tl_raw_header(raw, "Set-Cookie");
        ck_assert_msg(!sc, "%s: Set-Cookie %s", s.kind->name, sc);
        free(raw);
    }
    /* HTTP/1.0 may leave Host out; with allowed_hosts that is refused */
    ck_assert_int_eq(
        host_request(&s, "HTTP/1.0", "/allow_guest_user/", "", NULL), 400);
    /* the handler never ran: no guest was made for any of them */
    ck_assert_int_eq(rows(&s, "guests"), 0);
    ck_assert_int_eq(host_request(&s, "HTTP/1.1", "/allow_guest_user/",
                                  "Host: example.com\r\n", NULL),
                     200);
    ck_assert_int_eq(rows(&s, "guests"), 1);
    down(&s);
}
END_TEST

START_TEST(forwarded_for_counts_only_from_trusted_proxies)
{
    /* the test client is 127.0.0.1: once a trusted proxy, once not */
    running s = up_with(_i, tl_echo, NULL, "127.0.0.1/32");
    resp r = request(&s, "GET", "/echo",
                     "X-Forwarded-For: 6.6.6.6, 203.0.113.9\r\n", NULL);
    ck_assert_int_eq(r.status, 200);
    has_line(r.raw, "addr=203.0.113.9\n");
    free(r.raw);
    down(&s);
    s = up_with(_i, tl_echo, NULL, "10.0.0.0/8,::1/128");
    r = request(&s, "GET", "/echo", "X-Forwarded-For: 203.0.113.9\r\n", NULL);
    ck_assert_int_eq(r.status, 200);
    has_line(r.raw, "addr=127.0.0.1\n");
    free(r.raw);
    down(&s);
}
END_TEST

#ifdef TEST_WITH_CIVETWEB
/* ---- CivetWeb only: its own server start and option handling ---- */

static guest_ctx *plain_ctx(void)
{
    tl_drop_schema("t_srv_civet_own");
    guest_config c;
    tl_config(&c, "t_srv_civet_own");
    return tl_ctx_new(&c);
}

START_TEST(civetweb_handler_registered_by_the_application)
{
    /* CivetWeb's own defaults: decode_url on, keep-alive off. */
    guest_ctx *ctx = plain_ctx();
    guest_civetweb *app;
    ck_assert_int_eq(guest_civetweb_new(ctx, tl_echo, NULL, &app), GUEST_OK);
    const char *opts[] = {"listening_ports", "127.0.0.1:0", NULL};
    struct mg_context *mg = mg_start(NULL, NULL, opts);
    ck_assert_ptr_nonnull(mg);
    mg_set_request_handler(mg, "/app", guest_civetweb_handler, app);
    struct mg_server_port sp;
    ck_assert_int_eq(mg_get_server_ports(mg, 1, &sp), 1);
    running s = {.port = sp.port, .kind = &kinds[NKINDS - 1]};

    /* The decoded path is encoded again, so "?" stays in the path and the
     * query string is untouched; an escape of a plain character reads as
     * the character. */
    resp r = request(&s, "GET", "/app/a%20b/c%3Fd/%41/%C3%A9?x=%41&y=%26", NULL,
                     NULL);
    ck_assert_int_eq(r.status, 200);
    has_line(r.raw, "target=/app/a%20b/c%3Fd/A/%C3%A9?x=%41&y=%26\n");
    has_line(r.raw, "path=/app/a%20b/c%3Fd/A/%C3%A9\n");
    free(r.raw);
    r = request(&s, "GET", "/app/100%25", NULL, NULL);
    has_line(r.raw, "path=/app/100%25\n");
    free(r.raw);
    /* paths outside the registered prefix are CivetWeb's */
    r = request(&s, "GET", "/elsewhere", NULL, NULL);
    ck_assert_int_eq(r.status, 404);
    free(r.raw);

    mg_stop(mg);
    guest_civetweb_free(app);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(civetweb_misuse_is_refused)
{
    guest_ctx *ctx = plain_ctx();
    guest_civetweb *app = NULL;
    ck_assert_int_eq(guest_civetweb_new(NULL, tl_echo, NULL, &app),
                     GUEST_ERR_INVALID);
    ck_assert_int_eq(guest_civetweb_new(ctx, NULL, NULL, &app),
                     GUEST_ERR_INVALID);
    ck_assert_int_eq(guest_civetweb_new(ctx, tl_echo, NULL, NULL),
                     GUEST_ERR_INVALID);
    guest_civetweb_free(NULL);

    ck_assert_int_eq(guest_civetweb_new(ctx, tl_echo, NULL, &app), GUEST_OK);
    struct mg_context *mg = (struct mg_context *)1, *mg2 = NULL;
    ck_assert_int_eq(guest_civetweb_start(NULL, NULL, 0, &mg),
                     GUEST_ERR_INVALID);
    ck_assert_int_eq(guest_civetweb_start(app, NULL, 0, NULL),
                     GUEST_ERR_INVALID);
    ck_assert_int_eq(guest_civetweb_start(app, "localhost", 0, &mg),
                     GUEST_ERR_INVALID);
    ck_assert_ptr_null(mg);
    ck_assert_int_eq(guest_civetweb_start(app, "127.0.0.1:80", 0, &mg),
                     GUEST_ERR_INVALID);

    /* a port in use */
    ck_assert_int_eq(guest_civetweb_start(app, NULL, 0, &mg), GUEST_OK);
    struct mg_server_port sp;
    ck_assert_int_eq(mg_get_server_ports(mg, 1, &sp), 1);
    ck_assert_int_eq(
        guest_civetweb_start(app, "127.0.0.1", (uint16_t)sp.port, &mg2),
        GUEST_ERR_CONFIG);
    ck_assert_ptr_null(mg2);

    /* IPv6 works where CivetWeb was built with it, else a clear refusal */
    guest_status st = guest_civetweb_start(app, "::1", 0, &mg2);
    if (mg_check_feature(MG_FEATURES_IPV6)) {
        ck_assert_int_eq(st, GUEST_OK);
        mg_stop(mg2);
    } else {
        ck_assert_int_eq(st, GUEST_ERR_CONFIG);
    }
    mg_stop(mg);
    guest_civetweb_free(app);
    guest_ctx_free(ctx);
}
END_TEST
#endif

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    Suite *suite = suite_create("servers");
    for (int i = 0; i < NKINDS; i++) {
        TCase *tc = tcase_create(kinds[i].name);
        tcase_set_timeout(tc, 120);
        tcase_add_loop_test(tc, foreign_hosts_get_400_before_any_handler, i,
                            i + 1);
        tcase_add_loop_test(tc, forwarded_for_counts_only_from_trusted_proxies,
                            i, i + 1);
        suite_add_tcase(suite, tc);
    }
#ifdef TEST_WITH_CIVETWEB
    TCase *own = tcase_create("civetweb_only");
    tcase_set_timeout(own, 120);
    tcase_add_test(own, civetweb_handler_registered_by_the_application);
    tcase_add_test(own, civetweb_misuse_is_refused);
    suite_add_tcase(suite, own);
#endif
    return tl_run(suite);
}

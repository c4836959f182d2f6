/* What the Ulfius adapter does about Ulfius's own ways, checked on the
 * wire: one value per response header name (Set-Cookie), empty bodies,
 * bodies Ulfius would cut at its limit, HEAD, request header lines Ulfius
 * joins, ambiguous framing; and an instance the application made itself
 * (guest_ulfius_attach), where the adapter has only Ulfius's request. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <guestuser/adapters/ulfius.h>

#include "routes.h"
#include "testlib.h"

#define SCHEMA "t_ulfius"
#define MAX_BODY 4096
#define TIMEOUT_MS 30000

static atomic_int handler_runs;

/* /cookies: three Set-Cookie lines, one with an empty value; /302 and
 * /204: no body; anything else: tl_routes. */
static void handler(guest_req *req, void *userdata)
{
    atomic_fetch_add(&handler_runs, 1);
    const char *path = guest_req_path(req);
    if (!strcmp(path, "/cookies")) {
        ck_assert_int_eq(
            guest_res_add_header(req, "Set-Cookie", "a=1; Path=/; HttpOnly"),
            GUEST_OK);
        ck_assert_int_eq(
            guest_res_add_header(req, "Set-Cookie", "b=2; SameSite=Lax"),
            GUEST_OK);
        ck_assert_int_eq(
            guest_res_add_header(req, "Set-Cookie", "c=; Max-Age=0; Path=/"),
            GUEST_OK);
        ck_assert_int_eq(guest_res_add_header(req, "Vary", "Accept"), GUEST_OK);
        guest_res_send(req, 200, "text/plain", "ok\n");
    } else if (!strcmp(path, "/login")) {
        /* A new session and a new CSRF secret: two cookies. */
        guest_form_errors errors;
        guest_error err;
        guest_status st = guest_login(req, "alice", TL_PASSWORD, &errors, &err);
        guest_res_send(req, st == GUEST_OK ? 200 : 500, "text/plain",
                       guest_strerror(st));
    } else if (!strcmp(path, "/302")) {
        guest_res_set_status(req, 302);
        ck_assert_int_eq(guest_res_add_header(req, "Location", "/there"),
                         GUEST_OK);
    } else if (!strcmp(path, "/204")) {
        guest_res_set_status(req, 204);
    } else {
        tl_routes_handler(req, userdata);
    }
}

typedef struct server {
    guest_ctx *ctx;
    guest_ulfius *app;
    struct _u_instance *in; /* the application's own, or NULL */
    int port;
} server;

static void start(server *s)
{
    tl_drop_schema(SCHEMA);
    guest_config c;
    tl_config(&c, SCHEMA);
    c.max_body_size = MAX_BODY;
    s->ctx = tl_ctx_new(&c);
    ck_assert_int_eq(guest_ulfius_new(s->ctx, handler, NULL, &s->app),
                     GUEST_OK);
    struct _u_instance *in = NULL;
    ck_assert_int_eq(guest_ulfius_start(s->app, "127.0.0.1", 0, &in), GUEST_OK);
    const union MHD_DaemonInfo *di =
        MHD_get_daemon_info(in->mhd_daemon, MHD_DAEMON_INFO_BIND_PORT);
    ck_assert_ptr_nonnull(di);
    s->port = di->port;
    atomic_store(&handler_runs, 0);
}

/* A port nothing listens on right now (Ulfius's own start refuses 0). */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* The application makes and starts the instance; the adapter only
 * attaches to it. */
static void start_own(server *s)
{
    tl_drop_schema(SCHEMA);
    guest_config c;
    tl_config(&c, SCHEMA);
    c.max_body_size = MAX_BODY;
    s->ctx = tl_ctx_new(&c);
    ck_assert_int_eq(guest_ulfius_new(s->ctx, handler, NULL, &s->app),
                     GUEST_OK);
    s->in = calloc(1, sizeof *s->in);
    ck_assert_ptr_nonnull(s->in);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->port = free_port();
    a.sin_port = htons((uint16_t)s->port);
    ck_assert_int_eq(ulfius_init_instance(s->in, (unsigned)s->port, &a, NULL),
                     U_OK);
    ck_assert_int_eq(guest_ulfius_attach(s->app, s->in, NULL), GUEST_OK);
    ck_assert_int_eq(ulfius_start_framework(s->in), U_OK);
    atomic_store(&handler_runs, 0);
}

static void stop(server *s)
{
    if (s->in) {
        ulfius_stop_framework(s->in);
        ulfius_clean_instance(s->in);
        free(s->in);
    }
    guest_ulfius_free(s->app);
    guest_ctx_free(s->ctx);
}

static char *get(const server *s, const char *request)
{
    char *r = tl_http_raw(s->port, request, TIMEOUT_MS);
    ck_assert_msg(r, "no answer to: %s", request);
    return r;
}

/* The values of every @p name line of a raw response's head, "|" between. */
static void lines_of(const char *raw, const char *name, char *out, size_t size)
{
    out[0] = 0;
    size_t n = strlen(name);
    const char *end = strstr(raw, "\r\n\r\n");
    for (const char *p = strstr(raw, "\r\n"); p && p < end;
         p = strstr(p + 2, "\r\n")) {
        const char *l = p + 2;
        if (strncasecmp(l, name, n) != 0 || l[n] != ':')
            continue;
        const char *v = l + n + 1;
        while (*v == ' ')
            v++;
        const char *e = strstr(v, "\r\n");
        if (out[0])
            strncat(out, "|", size - strlen(out) - 1);
        strncat(out, v,
                (size_t)(e - v) < size - strlen(out) - 1
                    ? (size_t)(e - v)
                    : size - strlen(out) - 1);
    }
}

static void expect_lines(const char *raw, const char *name, const char *want)
{
    char got[1024];
    lines_of(raw, name, got, sizeof got);
    ck_assert_msg(!strcmp(got, want), "%s: want [%s], got [%s] in:\n%s", name,
                  want, got, raw);
}

/* Every Set-Cookie the handler sets is a line of its own, attributes and
 * empty values intact; other repeated fields join. */
static void check_cookies(const server *s)
{
    char *r = get(s, "GET /cookies HTTP/1.1\r\nHost: localhost\r\n"
                     "Connection: close\r\n\r\n");
    ck_assert_int_eq(tl_raw_status(r), 200);
    expect_lines(r, "Set-Cookie",
                 "a=1; Path=/; HttpOnly|b=2; SameSite=Lax|c=; Max-Age=0; "
                 "Path=/");
    expect_lines(r, "Vary", "Accept");
    ck_assert_str_eq(tl_raw_body(r), "ok\n");
    free(r);

    /* The library's own pair: a login's new session and CSRF secret. */
    tl_new_user(s->ctx, "alice", TL_PASSWORD);
    r = get(s, "POST /login HTTP/1.1\r\nHost: localhost\r\n"
               "Content-Length: 0\r\nConnection: close\r\n\r\n");
    ck_assert_int_eq(tl_raw_status(r), 200);
    char got[1024];
    lines_of(r, "Set-Cookie", got, sizeof got);
    ck_assert_msg(strstr(got, "sessionid=") && strstr(got, "csrftoken=") &&
                      strchr(got, '|'),
                  "want sessionid and csrftoken on two lines: %s", r);
    free(r);
}

START_TEST(set_cookie_lines_each_reach_the_client)
{
    server s = {0};
    start(&s);
    check_cookies(&s);
    stop(&s);
}
END_TEST

static void check_empty_bodies(const server *s)
{
    char *r = get(s, "GET /302 HTTP/1.1\r\nHost: localhost\r\n"
                     "Connection: close\r\n\r\n");
    ck_assert_int_eq(tl_raw_status(r), 302);
    expect_lines(r, "Location", "/there");
    expect_lines(r, "Content-Length", "0");
    ck_assert_str_eq(tl_raw_body(r), "");
    free(r);
    r = get(s, "GET /204 HTTP/1.1\r\nHost: localhost\r\n"
               "Connection: close\r\n\r\n");
    ck_assert_int_eq(tl_raw_status(r), 204);
    ck_assert_str_eq(tl_raw_body(r), "");
    free(r);
}

START_TEST(empty_302_and_204_keep_their_status)
{
    server s = {0};
    start(&s);
    check_empty_bodies(&s);
    stop(&s);
}
END_TEST

static void check_body_limits(const server *s)
{
    char req[MAX_BODY + 512];
    char body[MAX_BODY + 2];
    memset(body, 'x', sizeof body - 1);
    body[sizeof body - 1] = 0;

    /* One byte over: Ulfius keeps MAX_BODY + 1 bytes and says nothing. */
    snprintf(req, sizeof req,
             "POST /echo HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
             "Content-Length: %d\r\n\r\n%s",
             MAX_BODY + 1, body);
    char *r = get(s, req);
    ck_assert_int_eq(tl_raw_status(r), 413);
    free(r);
    /* The same, chunked: no Content-Length to go by. */
    snprintf(req, sizeof req,
             "POST /echo HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
             "Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n",
             MAX_BODY + 1, body);
    r = get(s, req);
    ck_assert_int_eq(tl_raw_status(r), 413);
    free(r);
    /* Far over, as a form: Ulfius's form parser stays off. */
    snprintf(req, sizeof req,
             "POST /echo HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
             "Content-Type: application/x-www-form-urlencoded\r\n"
             "Content-Length: %d\r\n\r\n%s",
             MAX_BODY + 1, body);
    r = get(s, req);
    ck_assert_int_eq(tl_raw_status(r), 413);
    free(r);
    ck_assert_int_eq(atomic_load(&handler_runs), 0);

    /* Exactly at the limit: whole. */
    body[MAX_BODY] = 0;
    snprintf(req, sizeof req,
             "POST /echo HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
             "Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n",
             MAX_BODY, body);
    r = get(s, req);
    ck_assert_int_eq(tl_raw_status(r), 200);
    char want[32];
    snprintf(want, sizeof want, "body=%d:xxx", MAX_BODY);
    ck_assert_msg(strstr(r, want), "%s", r);
    free(r);
    ck_assert_int_eq(atomic_load(&handler_runs), 1);
}

START_TEST(body_over_the_limit_is_413_never_cut)
{
    server s = {0};
    start(&s);
    check_body_limits(&s);
    stop(&s);
}
END_TEST

START_TEST(head_has_the_length_and_no_body)
{
    server s = {0};
    start(&s);
    char *g = get(&s, "GET /cookies HTTP/1.1\r\nHost: localhost\r\n"
                      "Connection: close\r\n\r\n");
    char *h = get(&s, "HEAD /cookies HTTP/1.1\r\nHost: localhost\r\n"
                      "Connection: close\r\n\r\n");
    ck_assert_int_eq(tl_raw_status(h), 200);
    char gl[64], hl[64];
    lines_of(g, "Content-Length", gl, sizeof gl);
    lines_of(h, "Content-Length", hl, sizeof hl);
    ck_assert_str_eq(gl, "3");
    ck_assert_str_eq(hl, gl);
    ck_assert_str_eq(tl_raw_body(h), "");
    free(g);
    free(h);
    stop(&s);
}
END_TEST

/* Repeated lines read whole (Ulfius would give "a=1,b=2" for Cookie),
 * ambiguous framing refused before the handler. With only Ulfius's request
 * to go by (@p own_instance), lines whose names differ in case come in
 * separate map entries, in an order Ulfius does not keep, and lines of one
 * spelling joined by a bare ",". */
static void check_request_headers(const server *s, bool own_instance)
{
    char *r =
        get(s, own_instance ? "GET /echo HTTP/1.1\r\nHost: localhost\r\n"
                              "X-Test: one\r\nX-Test: two\r\nX-Test: three\r\n"
                              "Connection: close\r\n\r\n"
                            : "GET /echo HTTP/1.1\r\nHost: localhost\r\n"
                              "X-Test: one\r\nx-test: two\r\nX-Test: three\r\n"
                              "Connection: close\r\n\r\n");
    ck_assert_int_eq(tl_raw_status(r), 200);
    ck_assert_msg(strstr(r, own_instance ? "x-test=one,two,three\n"
                                         : "x-test=one, two, three\n"),
                  "%s", r);
    ck_assert_msg(strstr(r, "addr=127.0.0.1\n"), "%s", r);
    ck_assert_msg(strstr(r, "https=0\n"), "%s", r);
    free(r);

    /* A session cookie on the second Cookie line is still found. */
    char cookie[256];
    tl_new_guest(s->ctx, cookie, sizeof cookie);
    char req[512];
    snprintf(req, sizeof req,
             "GET /guest_user_required/ HTTP/1.1\r\nHost: localhost\r\n"
             "Cookie: theme=dark\r\nCookie: %s\r\nConnection: close\r\n\r\n",
             cookie);
    r = get(s, req);
    ck_assert_int_eq(tl_raw_status(r), 200);
    ck_assert_msg(strstr(r, "Only guests see this page"), "%s", r);
    free(r);

    int before = atomic_load(&handler_runs);
    static const char *const ambiguous[] = {
        "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\n"
        "Content-Length: 3\r\nConnection: close\r\n\r\nabc",
        "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\n"
        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        "3\r\nabc\r\n0\r\n\r\n",
        "GET /echo HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\n"
        "Connection: close\r\n\r\n",
        "GET /echo HTTP/1.1\r\nHost: localhost\r\nhost: evil.example\r\n"
        "Connection: close\r\n\r\n",
        /* libmicrohttpd reads the first line; Ulfius's map joins them. */
        "POST /echo HTTP/1.1\r\nHost: localhost\r\n"
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n"
        "Connection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        "POST /echo HTTP/1.0\r\nHost: localhost\r\n"
        "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof ambiguous / sizeof *ambiguous; i++) {
        r = get(s, ambiguous[i]);
        ck_assert_msg(tl_raw_status(r) == 400, "#%zu: %s", i, r);
        free(r);
    }
    ck_assert_int_eq(atomic_load(&handler_runs), before);
}

START_TEST(request_headers_whole_and_framing_checked)
{
    server s = {0};
    start(&s);
    check_request_headers(&s, false);
    stop(&s);
}
END_TEST

/* The same checks when the application made the instance and the adapter
 * sees only what Ulfius put in its request. */
START_TEST(application_instance_with_attach)
{
    server s = {0};
    start_own(&s);
    check_cookies(&s);
    check_empty_bodies(&s);
    check_request_headers(&s, true);
    atomic_store(&handler_runs, 0);
    check_body_limits(&s);
    stop(&s);
}
END_TEST

START_TEST(ipv6_peer_address_is_whole)
{
    server s = {0};
    tl_drop_schema(SCHEMA);
    guest_config c;
    tl_config(&c, SCHEMA);
    s.ctx = tl_ctx_new(&c);
    ck_assert_int_eq(guest_ulfius_new(s.ctx, handler, NULL, &s.app), GUEST_OK);
    struct _u_instance *in = NULL;
    if (guest_ulfius_start(s.app, "::1", 0, &in) != GUEST_OK) {
        /* No IPv6 loopback on this machine. */
        stop(&s);
        return;
    }
    const union MHD_DaemonInfo *di =
        MHD_get_daemon_info(in->mhd_daemon, MHD_DAEMON_INFO_BIND_PORT);
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in6 a = {.sin6_family = AF_INET6,
                             .sin6_port = htons(di->port)};
    a.sin6_addr = in6addr_loopback;
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    static const char req[] = "GET /echo HTTP/1.1\r\nHost: localhost\r\n"
                              "Connection: close\r\n\r\n";
    ck_assert_int_eq(write(fd, req, sizeof req - 1), (ssize_t)sizeof req - 1);
    char buf[4096];
    size_t got = 0;
    ssize_t n;
    while (got < sizeof buf - 1 &&
           (n = read(fd, buf + got, sizeof buf - 1 - got)) > 0)
        got += (size_t)n;
    buf[got] = 0;
    close(fd);
    ck_assert_msg(strstr(buf, "addr=::1\n"), "%s", buf);
    stop(&s);
}
END_TEST

START_TEST(misuse_is_refused)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, NULL);
    guest_ulfius *app = NULL;
    ck_assert_int_eq(guest_ulfius_new(NULL, handler, NULL, &app),
                     GUEST_ERR_INVALID);
    ck_assert_int_eq(guest_ulfius_new(ctx, NULL, NULL, &app),
                     GUEST_ERR_INVALID);
    ck_assert_int_eq(guest_ulfius_new(ctx, handler, NULL, NULL),
                     GUEST_ERR_INVALID);
    guest_ulfius_free(NULL);
    guest_ulfius_limits_init(NULL);
    ck_assert_int_eq(guest_ulfius_new(ctx, handler, NULL, &app), GUEST_OK);
    guest_ulfius_limits l;
    guest_ulfius_limits_init(&l);
    ck_assert_int_eq(guest_ulfius_set_limits(NULL, &l), GUEST_ERR_INVALID);
    ck_assert_int_eq(guest_ulfius_set_limits(app, NULL), GUEST_ERR_INVALID);
    l.max_connections = 0;
    ck_assert_int_eq(guest_ulfius_set_limits(app, &l), GUEST_ERR_INVALID);
    guest_ulfius_limits_init(&l);
    l.idle_timeout_s = 0;
    ck_assert_int_eq(guest_ulfius_set_limits(app, &l), GUEST_ERR_INVALID);
    guest_ulfius_limits_init(&l);
    ck_assert_int_eq(guest_ulfius_set_limits(app, &l), GUEST_OK);
    struct _u_instance *in = NULL;
    ck_assert_int_eq(guest_ulfius_start(NULL, NULL, 0, &in), GUEST_ERR_INVALID);
    ck_assert_int_eq(guest_ulfius_start(app, NULL, 0, NULL), GUEST_ERR_INVALID);
    ck_assert_int_eq(guest_ulfius_start(app, "localhost", 0, &in),
                     GUEST_ERR_INVALID);
    ck_assert_int_eq(guest_ulfius_attach(NULL, in, NULL), GUEST_ERR_INVALID);
    ck_assert_int_eq(guest_ulfius_attach(app, NULL, NULL), GUEST_ERR_INVALID);
    ck_assert_int_eq(guest_ulfius_start(app, NULL, 0, &in), GUEST_OK);
    /* The port taken: a second adapter cannot bind it. */
    const union MHD_DaemonInfo *di =
        MHD_get_daemon_info(in->mhd_daemon, MHD_DAEMON_INFO_BIND_PORT);
    guest_ulfius *app2 = NULL;
    ck_assert_int_eq(guest_ulfius_new(ctx, handler, NULL, &app2), GUEST_OK);
    struct _u_instance *in2 = NULL;
    ck_assert_int_eq(guest_ulfius_start(app2, "127.0.0.1", di->port, &in2),
                     GUEST_ERR_CONFIG);
    guest_ulfius_free(app2);
    /* One instance per adapter; its limits are set. */
    ck_assert_int_eq(guest_ulfius_start(app, NULL, 0, &in2), GUEST_ERR_INVALID);
    ck_assert_int_eq(guest_ulfius_set_limits(app, &l), GUEST_ERR_INVALID);
    ck_assert_int_eq(guest_ulfius_callback(NULL, NULL, app), U_CALLBACK_ERROR);
    /* Stopped by the application first, then freed: both fine. */
    ulfius_stop_framework(in);
    guest_ulfius_free(app);
    guest_ctx_free(ctx);
}
END_TEST

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    Suite *suite = suite_create("ulfius");
    TCase *tc = tcase_create("ulfius");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, set_cookie_lines_each_reach_the_client);
    tcase_add_test(tc, empty_302_and_204_keep_their_status);
    tcase_add_test(tc, body_over_the_limit_is_413_never_cut);
    tcase_add_test(tc, head_has_the_length_and_no_body);
    tcase_add_test(tc, request_headers_whole_and_framing_checked);
    tcase_add_test(tc, application_instance_with_attach);
    tcase_add_test(tc, ipv6_peer_address_is_whole);
    tcase_add_test(tc, misuse_is_refused);
    suite_add_tcase(suite, tc);
    return tl_run(suite);
}

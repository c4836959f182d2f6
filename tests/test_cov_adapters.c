/* What the adapters do on paths the route and limit suites leave out:
 * serving over IPv6 (the client address as the handler sees it), the
 * methods evhttp knows beyond GET and POST, a full worker queue answered
 * 503 while the workers are busy, requests still queued when libmicrohttpd's
 * event mode is stopped, evhttp without a header time limit, a Set-Cookie
 * line Ulfius cannot represent, CivetWeb keeping a connection itself, and
 * misuse of the start calls. Over real loopback sockets; every wait is
 * bounded. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifdef TEST_WITH_MHD
#include <guestuser/adapters/mhd.h>
#endif
#ifdef TEST_WITH_EVHTTP
#include <guestuser/adapters/evhttp.h>
#endif
#ifdef TEST_WITH_ULFIUS
#include <guestuser/adapters/ulfius.h>
#endif
#ifdef TEST_WITH_CIVETWEB
#include <guestuser/adapters/civetweb.h>
#endif

#include "routes.h"
#include "testlib.h"

#define SCHEMA "t_cov_adapters"
#define TIMEOUT_MS 30000

/* ---- a client over either address family ---- */

/* Connects to @p host (an IPv4 or IPv6 literal) on @p port and sends
 * @p request; the socket, or -1. */
static int send_to(const char *host, int port, const char *request)
{
    struct sockaddr_storage ss = {0};
    socklen_t len;
    if (strchr(host, ':')) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        ck_assert_int_eq(inet_pton(AF_INET6, host, &a->sin6_addr), 1);
        len = sizeof *a;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        ck_assert_int_eq(inet_pton(AF_INET, host, &a->sin_addr), 1);
        len = sizeof *a;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    if (connect(fd, (struct sockaddr *)&ss, len) != 0) {
        close(fd);
        return -1;
    }
    size_t n = strlen(request), off = 0;
    while (off < n) {
        ssize_t w = send(fd, request + off, n - off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    return fd;
}

/* Everything @p fd sends until it closes (or TIMEOUT_MS), NUL-ended;
 * closes @p fd. */
static char *read_all(int fd)
{
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    ck_assert_ptr_nonnull(buf);
    long long until = tl_now_ms() + TIMEOUT_MS;
    for (;;) {
        long long left = until - tl_now_ms();
        if (left <= 0)
            break;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int rc = poll(&p, 1, (int)left);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0)
            break;
        if (len + 1024 > cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            ck_assert_ptr_nonnull(buf);
        }
        ssize_t r = recv(fd, buf + len, cap - len - 1, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    buf[len] = '\0';
    close(fd);
    return buf;
}

static char *fetch(const char *host, int port, const char *request)
{
    int fd = send_to(host, port, request);
    ck_assert_msg(fd >= 0, "no connection to [%s]:%d", host, port);
    return read_all(fd);
}

/* Which of @p fds answers first (within TIMEOUT_MS): its index, or -1. */
static int first_to_answer(const int *fds, int n)
{
    struct pollfd p[4];
    ck_assert_int_le(n, 4);
    for (int i = 0; i < n; i++)
        p[i] = (struct pollfd){.fd = fds[i], .events = POLLIN};
    long long until = tl_now_ms() + TIMEOUT_MS;
    for (;;) {
        long long left = until - tl_now_ms();
        if (left <= 0)
            return -1;
        int rc = poll(p, (nfds_t)n, (int)left);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0)
            return -1;
        for (int i = 0; i < n; i++)
            if (p[i].revents)
                return i;
    }
}

/* ---- a handler that holds its worker until the test lets it go ---- */

static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static int entered;
static bool open_gate;

static void gate_reset(void)
{
    pthread_mutex_lock(&gate_mu);
    entered = 0;
    open_gate = false;
    pthread_mutex_unlock(&gate_mu);
}

static void gated(guest_req *req, void *userdata)
{
    (void)userdata;
    pthread_mutex_lock(&gate_mu);
    entered++;
    pthread_cond_broadcast(&gate_cv);
    while (!open_gate)
        pthread_cond_wait(&gate_cv, &gate_mu);
    pthread_mutex_unlock(&gate_mu);
    guest_res_send(req, 200, "text/plain", "gated\n");
}

/* Waits (at most TIMEOUT_MS) until @p n handlers have entered. */
static bool entered_reaches(int n)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += TIMEOUT_MS / 1000;
    pthread_mutex_lock(&gate_mu);
    int rc = 0;
    while (entered < n && rc == 0)
        rc = pthread_cond_timedwait(&gate_cv, &gate_mu, &until);
    bool ok = entered >= n;
    pthread_mutex_unlock(&gate_mu);
    return ok;
}

static void gate_release(void)
{
    pthread_mutex_lock(&gate_mu);
    open_gate = true;
    pthread_cond_broadcast(&gate_cv);
    pthread_mutex_unlock(&gate_mu);
}

static int entered_now(void)
{
    pthread_mutex_lock(&gate_mu);
    int n = entered;
    pthread_mutex_unlock(&gate_mu);
    return n;
}

static const char GATED[] = "GET /gated HTTP/1.1\r\nHost: localhost\r\n"
                            "Connection: close\r\n\r\n";

/* A request is taken by the one worker and held there; of two more, one
 * waits in the queue of one and the other finds it full: 503 at once.
 * Returns the sockets: [0] the held request, [1] the queued one; the 503
 * is checked here. */
static void fill_the_queue(const char *host, int port, int held_queued[2])
{
    gate_reset();
    held_queued[0] = send_to(host, port, GATED);
    ck_assert_int_ge(held_queued[0], 0);
    ck_assert_msg(entered_reaches(1), "the first request never ran");
    int two[2] = {send_to(host, port, GATED), send_to(host, port, GATED)};
    ck_assert_int_ge(two[0], 0);
    ck_assert_int_ge(two[1], 0);
    int refused = first_to_answer(two, 2);
    ck_assert_msg(refused >= 0, "neither request was answered");
    char *r = read_all(two[refused]);
    ck_assert_int_eq(tl_raw_status(r), 503);
    free(r);
    held_queued[1] = two[1 - refused];
    /* Nothing more ran while the one worker was held. */
    ck_assert_int_eq(entered_now(), 1);
}

/* A Set-Cookie line with no name=value in it. */
static void bad_cookie(guest_req *req)
{
    guest_res_set_status(req, 200);
    if (guest_res_add_header(req, "Set-Cookie", "no-equals-sign") != GUEST_OK)
        guest_res_set_status(req, 503);
    guest_res_printf(req, "set\n");
}

/* A handler that says the connection may stay open. */
static void keep_alive(guest_req *req)
{
    guest_res_set_status(req, 200);
    if (guest_res_add_header(req, "Connection", "keep-alive") != GUEST_OK)
        guest_res_set_status(req, 503);
    guest_res_printf(req, "kept\n");
}

static void gated_routes(guest_req *req, void *userdata)
{
    const char *path = guest_req_path(req);
    if (path && strcmp(path, "/gated") == 0)
        gated(req, userdata);
    else if (path && strcmp(path, "/bad-cookie") == 0)
        bad_cookie(req);
    else if (path && strcmp(path, "/keep-alive") == 0)
        keep_alive(req);
    else
        tl_routes_handler(req, userdata);
}

static guest_ctx *ctx_new(void)
{
    guest_config cfg;
    tl_config(&cfg, SCHEMA);
    return tl_ctx_new(&cfg);
}

/* ---- libmicrohttpd ---- */
#ifdef TEST_WITH_MHD
static struct MHD_Daemon *mhd_up(guest_ctx *ctx, const char *host,
                                 unsigned workers, unsigned max_queued,
                                 guest_mhd **app, int *port)
{
    guest_mhd_limits l;
    guest_mhd_limits_init(&l);
    l.workers = workers;
    if (max_queued)
        l.max_queued = max_queued;
    ck_assert_int_eq(guest_mhd_new(ctx, gated_routes, NULL, app), GUEST_OK);
    ck_assert_int_eq(guest_mhd_set_limits(*app, &l), GUEST_OK);
    struct MHD_Daemon *d = NULL;
    ck_assert_int_eq(guest_mhd_start(*app, host, 0, &d), GUEST_OK);
    const union MHD_DaemonInfo *di =
        MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    ck_assert_ptr_nonnull(di);
    *port = di->port;
    return d;
}

START_TEST(mhd_serves_ipv6_with_the_client_address)
{
    guest_ctx *ctx = ctx_new();
    guest_mhd *app = NULL;
    int port = 0;
    struct MHD_Daemon *d = mhd_up(ctx, "::1", 0, 0, &app, &port);
    char *r = fetch("::1", port,
                    "GET /echo HTTP/1.1\r\nHost: localhost\r\n"
                    "Connection: close\r\n\r\n");
    ck_assert_int_eq(tl_raw_status(r), 200);
    ck_assert_msg(strstr(tl_raw_body(r), "addr=::1\n"), "%s", r);
    free(r);
    guest_mhd_stop(app, d);
    guest_mhd_free(app);
    guest_ctx_free(ctx);
}
END_TEST

/* Stopping the event mode with a request still queued answers it 503 (or
 * closes it) without running the handler, and waits for the one on the
 * worker. */
typedef struct stopper {
    guest_mhd *app;
    struct MHD_Daemon *d;
    atomic_bool done;
} stopper;

static void *stop_thread(void *arg)
{
    stopper *s = arg;
    guest_mhd_stop(s->app, s->d);
    atomic_store(&s->done, true);
    return NULL;
}

START_TEST(mhd_event_mode_queue_full_then_stopped_with_a_request_queued)
{
    guest_ctx *ctx = ctx_new();
    guest_mhd *app = NULL;
    int port = 0;
    struct MHD_Daemon *d = mhd_up(ctx, "127.0.0.1", 1, 1, &app, &port);
    int fds[2];
    fill_the_queue("127.0.0.1", port, fds);

    stopper s = {.app = app, .d = d};
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, stop_thread, &s), 0);
    /* The queued request is given back with a 503 (MHD may close it
     * before sending): it never reaches a handler. */
    char *queued = read_all(fds[1]);
    ck_assert_msg(tl_raw_status(queued) == 503 || queued[0] == '\0', "%s",
                  queued);
    free(queued);
    ck_assert_int_eq(entered_now(), 1);
    gate_release();
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert(atomic_load(&s.done));
    close(fds[0]);
    ck_assert_int_eq(entered_now(), 1);
    guest_mhd_free(app);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(mhd_start_misuse_is_refused)
{
    guest_ctx *ctx = ctx_new();
    guest_mhd *app = NULL;
    ck_assert_int_eq(guest_mhd_new(NULL, tl_routes_handler, NULL, &app),
                     GUEST_ERR_INVALID);
    ck_assert_int_eq(guest_mhd_new(ctx, NULL, NULL, &app), GUEST_ERR_INVALID);
    ck_assert_int_eq(guest_mhd_new(ctx, tl_routes_handler, NULL, NULL),
                     GUEST_ERR_INVALID);
    ck_assert_int_eq(guest_mhd_new(ctx, tl_routes_handler, NULL, &app),
                     GUEST_OK);
    struct MHD_Daemon *d = NULL;
    ck_assert_int_eq(guest_mhd_start(NULL, "127.0.0.1", 0, &d),
                     GUEST_ERR_INVALID);
    ck_assert_int_eq(guest_mhd_start(app, "127.0.0.1", 0, NULL),
                     GUEST_ERR_INVALID);
    ck_assert_int_eq(guest_mhd_start(app, "localhost", 0, &d),
                     GUEST_ERR_INVALID);
    ck_assert_int_eq(guest_mhd_start(app, "::1::2", 0, &d), GUEST_ERR_INVALID);
    ck_assert_ptr_null(d);
    guest_mhd_free(app);
    guest_ctx_free(ctx);
}
END_TEST
#endif

/* ---- evhttp ---- */
#ifdef TEST_WITH_EVHTTP
static guest_evhttp *evhttp_up(guest_ctx *ctx, const char *host,
                               unsigned workers, unsigned max_queued, int *port)
{
    guest_evhttp *app = NULL;
    ck_assert_int_eq(guest_evhttp_new(ctx, gated_routes, NULL, &app), GUEST_OK);
    guest_evhttp_limits l;
    guest_evhttp_limits_init(&l);
    if (workers)
        l.workers = workers;
    if (max_queued)
        l.max_queued = max_queued;
    ck_assert_int_eq(guest_evhttp_set_limits(app, &l), GUEST_OK);
    uint16_t p = 0;
    ck_assert_int_eq(guest_evhttp_start(app, host, 0, &p), GUEST_OK);
    ck_assert_int_gt(p, 0);
    *port = p;
    return app;
}

START_TEST(evhttp_serves_ipv6_and_every_method_it_knows)
{
    guest_ctx *ctx = ctx_new();
    int port = 0;
    guest_evhttp *app = evhttp_up(ctx, "::1", 0, 0, &port);
    static const char *const methods[] = {"GET",     "PUT",   "DELETE", "PATCH",
                                          "OPTIONS", "TRACE", "CONNECT"};
    for (size_t i = 0; i < sizeof methods / sizeof *methods; i++) {
        char req[256], want[64];
        snprintf(req, sizeof req,
                 "%s /echo HTTP/1.1\r\nHost: localhost\r\n"
                 "Content-Length: 0\r\nConnection: close\r\n\r\n",
                 methods[i]);
        char *r = fetch("::1", port, req);
        ck_assert_msg(tl_raw_status(r) == 200, "%s: %s", methods[i], r);
        const char *body = tl_raw_body(r);
        snprintf(want, sizeof want, "method=%s\n", methods[i]);
        ck_assert_msg(strncmp(body, want, strlen(want)) == 0, "%s: %s",
                      methods[i], body);
        ck_assert_msg(strstr(body, "addr=::1\n"), "%s", body);
        free(r);
    }
    guest_evhttp_free(app);
    guest_ctx_free(ctx);
}
END_TEST

/* Without a header time limit a connection has no timer and is served;
 * limits not filled by guest_evhttp_limits_init() are refused. */
START_TEST(evhttp_without_a_header_timeout_and_unfilled_limits)
{
    guest_ctx *ctx = ctx_new();
    guest_evhttp *app = NULL;
    ck_assert_int_eq(guest_evhttp_new(ctx, gated_routes, NULL, &app), GUEST_OK);
    guest_evhttp_limits l;
    memset(&l, 0, sizeof l);
    ck_assert_int_eq(guest_evhttp_set_limits(app, &l), GUEST_ERR_INVALID);
    guest_evhttp_limits_init(&l);
    l.header_timeout_s = 0;
    ck_assert_int_eq(guest_evhttp_set_limits(app, &l), GUEST_OK);
    uint16_t port = 0;
    ck_assert_int_eq(guest_evhttp_start(app, "127.0.0.1", 0, &port), GUEST_OK);
    char *r = fetch("127.0.0.1", port,
                    "GET /echo HTTP/1.1\r\nHost: localhost\r\n"
                    "Connection: close\r\n\r\n");
    ck_assert_int_eq(tl_raw_status(r), 200);
    ck_assert_ptr_nonnull(strstr(tl_raw_body(r), "method=GET\n"));
    free(r);
    ck_assert_uint_eq(guest_evhttp_timed_out(app), 0);
    guest_evhttp_free(app);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(evhttp_full_queue_is_answered_503_at_once)
{
    guest_ctx *ctx = ctx_new();
    int port = 0;
    guest_evhttp *app = evhttp_up(ctx, "127.0.0.1", 1, 1, &port);
    int fds[2];
    fill_the_queue("127.0.0.1", port, fds);
    gate_release();
    char *held = read_all(fds[0]);
    ck_assert_int_eq(tl_raw_status(held), 200);
    ck_assert_str_eq(tl_raw_body(held), "gated\n");
    free(held);
    /* The queued request runs once the worker is free. */
    char *queued = read_all(fds[1]);
    ck_assert_int_eq(tl_raw_status(queued), 200);
    free(queued);
    ck_assert_int_eq(entered_now(), 2);
    guest_evhttp_free(app);
    guest_ctx_free(ctx);
}
END_TEST
#endif

static void setup(void)
{
    tl_drop_schema(SCHEMA);
}

/* ---- CivetWeb ---- */
#ifdef TEST_WITH_CIVETWEB
static int count_of(const char *s, const char *what)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, what)) != NULL; p += strlen(what))
        n++;
    return n;
}

/* CivetWeb keeps the connection itself: a handler's "Connection:
 * keep-alive" is not passed on (no second Connection line), and the
 * connection serves the next request. */
START_TEST(civetweb_leaves_keep_alive_to_civetweb)
{
    guest_ctx *ctx = ctx_new();
    guest_civetweb *app = NULL;
    struct mg_context *mg = NULL;
    ck_assert_int_eq(guest_civetweb_new(ctx, gated_routes, NULL, &app),
                     GUEST_OK);
    ck_assert_int_eq(guest_civetweb_start(app, "127.0.0.1", 0, &mg), GUEST_OK);
    struct mg_server_port sp;
    ck_assert_int_eq(mg_get_server_ports(mg, 1, &sp), 1);
    char *r = fetch("127.0.0.1", sp.port,
                    "GET /keep-alive HTTP/1.1\r\nHost: localhost\r\n\r\n"
                    "GET /keep-alive HTTP/1.1\r\nHost: localhost\r\n"
                    "Connection: close\r\n\r\n");
    ck_assert_msg(count_of(r, "HTTP/1.1 200") == 2, "%s", r);
    ck_assert_msg(count_of(r, "kept\n") == 2, "%s", r);
    /* One Connection line per response: CivetWeb's own. */
    ck_assert_msg(count_of(r, "\r\nConnection: ") == 2, "%s", r);
    free(r);
    mg_stop(mg);
    guest_civetweb_free(app);
    guest_ctx_free(ctx);
}
END_TEST
#endif

/* ---- Ulfius ---- */
#ifdef TEST_WITH_ULFIUS
/* Ulfius keeps cookies as name and value: a line it cannot split is
 * answered 500 rather than sent without its cookie. */
START_TEST(ulfius_refuses_a_set_cookie_it_cannot_represent)
{
    guest_ctx *ctx = ctx_new();
    guest_ulfius *app = NULL;
    struct _u_instance *in = NULL;
    ck_assert_int_eq(guest_ulfius_new(ctx, gated_routes, NULL, &app), GUEST_OK);
    ck_assert_int_eq(guest_ulfius_start(app, "127.0.0.1", 0, &in), GUEST_OK);
    const union MHD_DaemonInfo *di =
        MHD_get_daemon_info(in->mhd_daemon, MHD_DAEMON_INFO_BIND_PORT);
    ck_assert_ptr_nonnull(di);
    char *r = fetch("127.0.0.1", di->port,
                    "GET /bad-cookie HTTP/1.1\r\nHost: localhost\r\n"
                    "Connection: close\r\n\r\n");
    ck_assert_msg(tl_raw_status(r) == 500, "%s", r);
    ck_assert_ptr_null(strstr(r, "no-equals-sign"));
    free(r);
    /* The next request is served as usual. */
    r = fetch("127.0.0.1", di->port,
              "GET /echo HTTP/1.1\r\nHost: localhost\r\n"
              "Connection: close\r\n\r\n");
    ck_assert_int_eq(tl_raw_status(r), 200);
    free(r);
    guest_ulfius_free(app);
    guest_ctx_free(ctx);
}
END_TEST
#endif

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    Suite *s = suite_create("cov_adapters");
    TCase *tc = tcase_create("adapters");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 120);
#ifdef TEST_WITH_MHD
    tcase_add_test(tc, mhd_serves_ipv6_with_the_client_address);
    tcase_add_test(
        tc, mhd_event_mode_queue_full_then_stopped_with_a_request_queued);
    tcase_add_test(tc, mhd_start_misuse_is_refused);
#endif
#ifdef TEST_WITH_EVHTTP
    tcase_add_test(tc, evhttp_serves_ipv6_and_every_method_it_knows);
    tcase_add_test(tc, evhttp_full_queue_is_answered_503_at_once);
    tcase_add_test(tc, evhttp_without_a_header_timeout_and_unfilled_limits);
#endif
#ifdef TEST_WITH_ULFIUS
    tcase_add_test(tc, ulfius_refuses_a_set_cookie_it_cannot_represent);
#endif
#ifdef TEST_WITH_CIVETWEB
    tcase_add_test(tc, civetweb_leaves_keep_alive_to_civetweb);
#endif
    suite_add_tcase(s, tc);
    return tl_run(s);
}

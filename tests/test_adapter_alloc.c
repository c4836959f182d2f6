/* Each server adapter created, started, serving one request and stopped
 * with every allocation of the process failing in turn while it is
 * created and started (alloc_fail.h): it fails with an error status and
 * leaves nothing running, or it starts and serves; with memory back, the
 * next start works. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc_fail.h"
#include "testlib.h"

#ifdef TEST_WITH_MHD
#include "guestuser/adapters/mhd.h"
#endif
#ifdef TEST_WITH_CIVETWEB
#include "guestuser/adapters/civetweb.h"
#endif
#ifdef TEST_WITH_ULFIUS
#include <ulfius.h>

#include "guestuser/adapters/ulfius.h"
#endif
#ifdef TEST_WITH_EVHTTP
#include "guestuser/adapters/evhttp.h"
#endif

#define SCHEMA "t_adapter_alloc"

static guest_ctx *ctx;

static void setup(void)
{
    tl_drop_schema(SCHEMA);
    ctx = tl_ctx(SCHEMA, NULL);
}

static void teardown(void)
{
    guest_ctx_free(ctx);
    ctx = NULL;
}

/* Reads what a handler reads (headers, the body, the client's address),
 * then answers the page. */
static void hello(guest_req *req, void *ud)
{
    (void)ud;
    const char *data = NULL;
    size_t len = 0;
    if (guest_req_body(req, &data, &len) != GUEST_OK ||
        !guest_req_header(req, "X-Repeated") || !guest_req_client_addr(req)) {
        guest_res_set_status(req, 500);
        return;
    }
    /* a page cut short must not go out as a 200 */
    if (guest_res_send(req, 200, "text/plain", "hello") != GUEST_OK) {
        if (guest_res_reset(req) == GUEST_OK)
            guest_res_send(req, 500, "text/plain", "no memory");
        else
            guest_res_set_status(req, 500);
    }
}

/* GET / from the server on @p port: its status (0: no answer), and
 * whether the body was the page. */
static int get(int port, bool *page)
{
    char *res = tl_http_raw(port,
                            "POST /page/?a=1&b=2 HTTP/1.1\r\n"
                            "Host: 127.0.0.1\r\nCookie: a=1\r\n"
                            "Cookie: sessionid=nothing\r\n"
                            "X-Repeated: one\r\nX-Repeated: two\r\n"
                            "Content-Type: text/plain\r\n"
                            "Content-Length: 5\r\nConnection: close\r\n"
                            "\r\nabcde",
                            30000);
    int status = res ? tl_raw_status(res) : 0;
    const char *body = res ? tl_raw_body(res) : NULL;
    *page = body && !strcmp(body, "hello");
    free(res);
    return status;
}

/* One adapter: start it (armed at @p n) and stop it; the outcome. */
typedef struct server_ops {
    const char *name;
    /* Creates and starts; the port, or 0 with *st set. */
    int (*start)(guest_status *st, void **state);
    void (*stop)(void *state);
} server_ops;

static void each_allocation(const server_ops *s)
{
    long n = 0;
    for (;; n++) {
        void *state = NULL;
        guest_status st = GUEST_OK;
        /* Only the library's allocations count (alloc_fail.h): the
         * test's client and check's own run as usual while armed. */
        alloc_fail_arm(n);
        int port = s->start(&st, &state);
        bool page = false;
        int status = port ? get(port, &page) : 0;
        if (port)
            s->stop(state);
        bool hit = alloc_fail_disarm();
        if (port) {
            /* the page, or a refusal; never a 200 with something else */
            ck_assert_msg((status == 200 && page) || status >= 500 ||
                              (hit && status == 0),
                          "%s, allocation %ld: %d", s->name, n, status);
            ck_assert_msg(hit || (status == 200 && page), "%s: %d", s->name,
                          status);
        } else {
            ck_assert_msg(st != GUEST_OK, "%s, allocation %ld", s->name, n);
            ck_assert_msg(hit, "%s, allocation %ld: %s without a failure",
                          s->name, n, guest_strerror(st));
        }
        if (!hit)
            break;
    }
    ck_assert_int_gt(n, 1);
}

#ifdef TEST_WITH_MHD
typedef struct mhd_state {
    guest_mhd *app;
    struct MHD_Daemon *d;
} mhd_state;

static int mhd_start(guest_status *st, void **state)
{
    static mhd_state s;
    s = (mhd_state){0};
    *state = &s;
    if ((*st = guest_mhd_new(ctx, hello, NULL, &s.app)) != GUEST_OK)
        return 0;
    if ((*st = guest_mhd_start(s.app, "127.0.0.1", 0, &s.d)) != GUEST_OK) {
        guest_mhd_free(s.app);
        return 0;
    }
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(s.d, MHD_DAEMON_INFO_BIND_PORT);
    return info ? info->port : 0;
}

static void mhd_stop(void *state)
{
    mhd_state *s = state;
    guest_mhd_stop(s->app, s->d);
    guest_mhd_free(s->app);
}

START_TEST(mhd_starts_or_fails_cleanly_at_every_allocation)
{
    const server_ops s = {"mhd", mhd_start, mhd_stop};
    each_allocation(&s);
}
END_TEST
#endif

#ifdef TEST_WITH_CIVETWEB
typedef struct civetweb_state {
    guest_civetweb *app;
    struct mg_context *mg;
} civetweb_state;

static int civetweb_start(guest_status *st, void **state)
{
    static civetweb_state s;
    s = (civetweb_state){0};
    *state = &s;
    if ((*st = guest_civetweb_new(ctx, hello, NULL, &s.app)) != GUEST_OK)
        return 0;
    if ((*st = guest_civetweb_start(s.app, "127.0.0.1", 0, &s.mg)) !=
        GUEST_OK) {
        guest_civetweb_free(s.app);
        return 0;
    }
    struct mg_server_port sp;
    return mg_get_server_ports(s.mg, 1, &sp) == 1 ? sp.port : 0;
}

static void civetweb_stop(void *state)
{
    civetweb_state *s = state;
    mg_stop(s->mg);
    guest_civetweb_free(s->app);
}

START_TEST(civetweb_starts_or_fails_cleanly_at_every_allocation)
{
    const server_ops s = {"civetweb", civetweb_start, civetweb_stop};
    each_allocation(&s);
}
END_TEST
#endif

#ifdef TEST_WITH_EVHTTP
static int evhttp_start(guest_status *st, void **state)
{
    guest_evhttp *app = NULL;
    *state = NULL;
    if ((*st = guest_evhttp_new(ctx, hello, NULL, &app)) != GUEST_OK)
        return 0;
    uint16_t port = 0;
    if ((*st = guest_evhttp_start(app, "127.0.0.1", 0, &port)) != GUEST_OK) {
        guest_evhttp_free(app);
        return 0;
    }
    *state = app;
    return port;
}

static void evhttp_stop(void *state)
{
    guest_evhttp_free(state);
}

START_TEST(evhttp_starts_or_fails_cleanly_at_every_allocation)
{
    const server_ops s = {"evhttp", evhttp_start, evhttp_stop};
    each_allocation(&s);
}
END_TEST
#endif

#ifdef TEST_WITH_ULFIUS
static int ulfius_start(guest_status *st, void **state)
{
    guest_ulfius *app = NULL;
    *state = NULL;
    if ((*st = guest_ulfius_new(ctx, hello, NULL, &app)) != GUEST_OK)
        return 0;
    struct _u_instance *in = NULL;
    if ((*st = guest_ulfius_start(app, "127.0.0.1", 0, &in)) != GUEST_OK) {
        guest_ulfius_free(app);
        return 0;
    }
    *state = app;
    const union MHD_DaemonInfo *di =
        MHD_get_daemon_info(in->mhd_daemon, MHD_DAEMON_INFO_BIND_PORT);
    return di ? di->port : 0;
}

static void ulfius_stop(void *state)
{
    guest_ulfius_free(state);
}

START_TEST(ulfius_starts_or_fails_cleanly_at_every_allocation)
{
    const server_ops s = {"ulfius", ulfius_start, ulfius_stop};
    each_allocation(&s);
}
END_TEST
#endif

int main(void)
{
    Suite *s = suite_create("adapter_alloc");
    TCase *t = tcase_create("every allocation");
    tcase_set_timeout(t, 240);
    tcase_add_checked_fixture(t, setup, teardown);
#ifdef TEST_WITH_MHD
    tcase_add_test(t, mhd_starts_or_fails_cleanly_at_every_allocation);
#endif
#ifdef TEST_WITH_CIVETWEB
    tcase_add_test(t, civetweb_starts_or_fails_cleanly_at_every_allocation);
#endif
#ifdef TEST_WITH_EVHTTP
    tcase_add_test(t, evhttp_starts_or_fails_cleanly_at_every_allocation);
#endif
#ifdef TEST_WITH_ULFIUS
    tcase_add_test(t, ulfius_starts_or_fails_cleanly_at_every_allocation);
#endif
    suite_add_tcase(s, t);
    return tl_run(s);
}

/* The three guards, through their macros, for every kind of visitor. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "testlib.h"

#define SCHEMA "t_guards"

typedef struct seen {
    int calls;
    int64_t id;
    bool guest;
    char header[64];
} seen;

static void remember(guest_req *req, void *userdata)
{
    seen *s = userdata;
    const guest_user *u = NULL;
    ck_assert_int_eq(guest_req_user(req, &u, NULL), GUEST_OK);
    s->calls++;
    s->id = guest_user_id(u);
    s->guest = guest_is_guest_user(u);
    guest_res_send(req, 200, "text/plain", "handler ran");
}

GUEST_ALLOW(allow_view)
{
    remember(req, userdata);
}
GUEST_REQUIRED(guest_view)
{
    remember(req, userdata);
}
REGULAR_REQUIRED(regular_view)
{
    remember(req, userdata);
}
static GUEST_REQUIRED_TO(guest_to_view, "/why-anon/", "/why-user/")
{
    remember(req, userdata);
}

static int evaluations;
static const char *counted(const char *s)
{
    evaluations++;
    return s;
}
static REGULAR_REQUIRED_TO(regular_to_view, counted("/signin/?lang=en"),
                           counted("/join/"), counted("goto"))
{
    remember(req, userdata);
}

static guest_ctx *ctx_for(void (*tweak)(guest_config *))
{
    guest_config c;
    tl_config(&c, SCHEMA);
    if (tweak)
        tweak(&c);
    return tl_ctx_new(&c);
}

static void setup(void)
{
    tl_drop_schema(SCHEMA);
}

/* One request; returns the response in *h (caller tl_http_free). */
static void call(guest_ctx *ctx, tl_http *h, const char *target,
                 const char *cookie, const char *agent, guest_handler_fn fn,
                 seen *s)
{
    tl_http_init(h, "GET", target);
    if (cookie && *cookie)
        tl_http_add(h, "Cookie", cookie);
    if (agent)
        tl_http_add(h, "User-Agent", agent);
    tl_http_run(ctx, h, fn, s);
}

/* A guest's cookie, made through GUEST_ALLOW. */
static void new_guest(guest_ctx *ctx, char *cookie, size_t size)
{
    tl_http h;
    seen s = {0};
    call(ctx, &h, "/", NULL, NULL, allow_view, &s);
    ck_assert(tl_http_cookie(&h, "sessionid", cookie, size));
    tl_http_free(&h);
}

/* A registered user's cookie: a guest whose guests row is gone, which is
 * exactly what conversion does to guest status. */
static void new_registered(guest_ctx *ctx, char *cookie, size_t size)
{
    new_guest(ctx, cookie, size);
    tl_exec("DELETE FROM t_guards.guests");
}

START_TEST(allow_makes_an_anonymous_visitor_a_guest)
{
    guest_ctx *ctx = ctx_for(NULL);
    tl_http h;
    seen s = {0};
    call(ctx, &h, "/hello/", NULL, "Mozilla/5.0 Firefox/120", allow_view, &s);
    ck_assert_int_eq(h.status, 200);
    ck_assert_int_eq(s.calls, 1);
    ck_assert(s.guest);
    ck_assert_int_gt(s.id, 0);
    const char *sc = tl_http_res_header(&h, "Set-Cookie");
    ck_assert_ptr_nonnull(sc);
    ck_assert(!strncmp(sc, "sessionid=", 10));
    ck_assert_ptr_nonnull(strstr(sc, "; Max-Age=1209600"));
    ck_assert_ptr_nonnull(strstr(sc, "; Path=/"));
    ck_assert_ptr_nonnull(strstr(sc, "; HttpOnly"));
    ck_assert_ptr_nonnull(strstr(sc, "; SameSite=Lax"));
    ck_assert_ptr_null(strstr(sc, "Secure"));
    ck_assert_ptr_null(strstr(sc, "Domain"));
    /* the page depends on the cookie: shared caches must keep it apart,
     * and say so once */
    int vary = 0;
    for (int i = 0; i < h.nres_headers; i++)
        vary += !strcasecmp(h.res_headers[i][0], "Vary");
    ck_assert_int_eq(vary, 1);
    ck_assert_str_eq(tl_http_res_header(&h, "Vary"), "Cookie");
    char cookie[128];
    ck_assert(tl_http_cookie(&h, "sessionid", cookie, sizeof cookie));
    tl_http_free(&h);

    /* the same visitor comes back: same user, no new cookie, no new row */
    seen again = {0};
    call(ctx, &h, "/hello/", cookie, NULL, allow_view, &again);
    ck_assert_int_eq(again.id, s.id);
    ck_assert_ptr_null(tl_http_res_header(&h, "Set-Cookie"));
    ck_assert_str_eq(tl_http_res_header(&h, "Vary"), "Cookie");
    ck_assert_int_eq(tl_scalar("SELECT count(*) FROM t_guards.users"), 1);
    tl_http_free(&h);

    /* a registered user passes through untouched */
    tl_exec("DELETE FROM t_guards.guests");
    seen reg = {0};
    call(ctx, &h, "/hello/", cookie, NULL, allow_view, &reg);
    ck_assert_int_eq(reg.id, s.id);
    ck_assert(!reg.guest);
    ck_assert_ptr_null(tl_http_res_header(&h, "Set-Cookie"));
    tl_http_free(&h);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(crawlers_get_no_guest)
{
    guest_ctx *ctx = ctx_for(NULL);
    const char *bots[] = {
        ("Mozilla/5.0 (compatible; Googlebot/2.1; "
         "+http://www.google.com/bot.html)"),
        "Mozilla/5.0 (compatible; YandexBot/3.0)",
        "Mozilla/5.0 (compatible; bingbot/2.0)",
        "DuckDuckBot/1.1",
        "facebookexternalhit/1.1",
        "Sogou web spider/4.0",
    };
    for (size_t i = 0; i < sizeof bots / sizeof *bots; i++) {
        tl_http h;
        seen s = {0};
        call(ctx, &h, "/", NULL, bots[i], allow_view, &s);
        ck_assert_int_eq(h.status, 200);
        ck_assert_int_eq(s.calls, 1); /* the view runs, anonymous */
        ck_assert_int_eq(s.id, 0);
        ck_assert_ptr_null(tl_http_res_header(&h, "Set-Cookie"));
        tl_http_free(&h);
    }
    ck_assert_int_eq(tl_scalar("SELECT count(*) FROM t_guards.users"), 0);
    guest_ctx_free(ctx);
}
END_TEST

/* HEAD, OPTIONS and other methods run the page for an anonymous visitor
 * and make no guest (uptime monitors would fill the table); GET and POST
 * do. */
START_TEST(only_get_and_post_make_guests)
{
    guest_ctx *ctx = ctx_for(NULL);
    const char *methods[] = {"HEAD", "OPTIONS", "PUT", "DELETE", "PATCH"};
    for (size_t i = 0; i < sizeof methods / sizeof *methods; i++) {
        tl_http h;
        seen s = {0};
        tl_http_init(&h, methods[i], "/");
        tl_http_run(ctx, &h, allow_view, &s);
        ck_assert_int_eq(s.calls, 1);
        ck_assert_int_eq(s.id, 0);
        ck_assert_ptr_null(tl_http_res_header(&h, "Set-Cookie"));
        tl_http_free(&h);
    }
    ck_assert_int_eq(tl_scalar("SELECT count(*) FROM t_guards.users"), 0);
    const char *makers[] = {"GET", "POST"};
    for (size_t i = 0; i < 2; i++) {
        tl_http h;
        seen s = {0};
        tl_http_init(&h, makers[i], "/");
        tl_http_run(ctx, &h, allow_view, &s);
        ck_assert_int_gt(s.id, 0);
        ck_assert(s.guest);
        tl_http_free(&h);
    }
    ck_assert_int_eq(tl_scalar("SELECT count(*) FROM t_guards.users"), 2);
    guest_ctx_free(ctx);
}
END_TEST

static void custom_agents(guest_config *c)
{
    static const char *const agents[] = {"^curl/", "MyCrawler[0-9]+", NULL};
    c->blocked_user_agents = agents;
}

START_TEST(blocked_agents_are_configurable)
{
    guest_ctx *ctx = ctx_for(custom_agents);
    tl_http h;
    seen s = {0};
    call(ctx, &h, "/", NULL, "curl/8.0", allow_view, &s);
    ck_assert_int_eq(s.id, 0);
    tl_http_free(&h);
    call(ctx, &h, "/", NULL, "x mycrawler42 y", allow_view, &s);
    ck_assert_int_eq(s.id, 0);
    tl_http_free(&h);
    /* Googlebot is no longer on the list */
    call(ctx, &h, "/", NULL, "Googlebot/2.1", allow_view, &s);
    ck_assert_int_gt(s.id, 0);
    tl_http_free(&h);
    guest_ctx_free(ctx);
}
END_TEST

static void disabled(guest_config *c)
{
    c->enabled = false;
}

START_TEST(disabled_leaves_visitors_anonymous)
{
    guest_ctx *ctx = ctx_for(disabled);
    tl_http h;
    seen s = {0};
    call(ctx, &h, "/", NULL, NULL, allow_view, &s);
    ck_assert_int_eq(s.calls, 1);
    ck_assert_int_eq(s.id, 0);
    ck_assert_ptr_null(tl_http_res_header(&h, "Set-Cookie"));
    ck_assert_int_eq(tl_scalar("SELECT count(*) FROM t_guards.users"), 0);
    tl_http_free(&h);
    guest_ctx_free(ctx);
}
END_TEST

typedef struct hook_seen {
    int calls;
    int64_t id;
    char agent[64];
    char target[64];
} hook_seen;
static hook_seen hooked;

static void on_created(const guest_user *user, guest_req *req, void *ud)
{
    hook_seen *h = ud;
    h->calls++;
    h->id = guest_user_id(user);
    snprintf(h->agent, sizeof h->agent, "%s",
             guest_req_header(req, "User-Agent"));
    snprintf(h->target, sizeof h->target, "%s", guest_req_target(req));
}

static void with_hook(guest_config *c)
{
    c->on_guest_created = on_created;
    c->on_guest_created_userdata = &hooked;
}

START_TEST(guest_created_hook_sees_user_and_request)
{
    memset(&hooked, 0, sizeof hooked);
    guest_ctx *ctx = ctx_for(with_hook);
    tl_http h;
    seen s = {0};
    call(ctx, &h, "/start/?ref=ad", NULL, "TestBrowser/1.0", allow_view, &s);
    ck_assert_int_eq(hooked.calls, 1);
    ck_assert_int_eq(hooked.id, s.id);
    ck_assert_str_eq(hooked.agent, "TestBrowser/1.0");
    ck_assert_str_eq(hooked.target, "/start/?ref=ad");
    char cookie[128];
    ck_assert(tl_http_cookie(&h, "sessionid", cookie, sizeof cookie));
    tl_http_free(&h);
    call(ctx, &h, "/", cookie, NULL, allow_view, &s);
    ck_assert_int_eq(hooked.calls, 1); /* not for a returning guest */
    tl_http_free(&h);
    guest_ctx_free(ctx);
}
END_TEST

static void cookie_settings(guest_config *c)
{
    c->cookie_name = "gsid";
    c->cookie_secure = true;
    c->cookie_domain = "example.org";
    c->cookie_path = "/app";
    c->cookie_samesite = "Strict";
    c->max_age = 3600;
}

START_TEST(cookie_settings_are_applied)
{
    guest_ctx *ctx = ctx_for(cookie_settings);
    tl_http h;
    seen s = {0};
    call(ctx, &h, "/", NULL, NULL, allow_view, &s);
    const char *sc = tl_http_res_header(&h, "Set-Cookie");
    ck_assert(!strncmp(sc, "gsid=", 5));
    ck_assert_ptr_nonnull(strstr(sc, "; Max-Age=3600"));
    ck_assert_ptr_nonnull(strstr(sc, "; Path=/app"));
    ck_assert_ptr_nonnull(strstr(sc, "; Domain=example.org"));
    ck_assert_ptr_nonnull(strstr(sc, "; SameSite=Strict"));
    ck_assert_ptr_nonnull(strstr(sc, "; Secure"));
    char cookie[128];
    ck_assert(tl_http_cookie(&h, "gsid", cookie, sizeof cookie));
    tl_http_free(&h);
    seen back = {0};
    call(ctx, &h, "/", cookie, NULL, allow_view, &back);
    ck_assert_int_eq(back.id, s.id);
    tl_http_free(&h);
    ck_assert_int_eq(tl_scalar("SELECT round(extract(epoch FROM expires_at - "
                               "now()) / 60) FROM t_guards.sessions"),
                     60);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(guest_required_for_each_visitor)
{
    guest_ctx *ctx = ctx_for(NULL);
    tl_http h;
    seen s = {0};
    call(ctx, &h, "/guest/?x=1", NULL, NULL, guest_view, &s);
    ck_assert_int_eq(h.status, 302);
    ck_assert_str_eq(tl_http_res_header(&h, "Location"), "/accounts/login/");
    ck_assert_int_eq(s.calls, 0);
    ck_assert_ptr_null(tl_http_res_header(&h, "Set-Cookie"));
    tl_http_free(&h);

    char cookie[128];
    new_guest(ctx, cookie, sizeof cookie);
    call(ctx, &h, "/guest/", cookie, NULL, guest_view, &s);
    ck_assert_int_eq(h.status, 200);
    ck_assert_int_eq(s.calls, 1);
    ck_assert(s.guest);
    tl_http_free(&h);

    call(ctx, &h, "/guest/", cookie, NULL, guest_to_view, &s);
    ck_assert_int_eq(h.status, 200);
    tl_http_free(&h);

    tl_exec("DELETE FROM t_guards.guests");
    call(ctx, &h, "/guest/", cookie, NULL, guest_view, &s);
    ck_assert_int_eq(h.status, 302);
    ck_assert_str_eq(tl_http_res_header(&h, "Location"), "/accounts/profile/");
    tl_http_free(&h);

    /* per-handler targets */
    call(ctx, &h, "/guest/", cookie, NULL, guest_to_view, &s);
    ck_assert_str_eq(tl_http_res_header(&h, "Location"), "/why-user/");
    tl_http_free(&h);
    call(ctx, &h, "/guest/", NULL, NULL, guest_to_view, &s);
    ck_assert_str_eq(tl_http_res_header(&h, "Location"), "/why-anon/");
    tl_http_free(&h);
    ck_assert_int_eq(s.calls, 2);
    guest_ctx_free(ctx);
}
END_TEST

static void required_targets(guest_config *c)
{
    c->required_anon_url = "/signup/";
    c->required_user_url = "/home/";
}

START_TEST(guest_required_targets_from_config)
{
    guest_ctx *ctx = ctx_for(required_targets);
    tl_http h;
    seen s = {0};
    call(ctx, &h, "/guest/", NULL, NULL, guest_view, &s);
    ck_assert_str_eq(tl_http_res_header(&h, "Location"), "/signup/");
    tl_http_free(&h);
    char cookie[128];
    new_registered(ctx, cookie, sizeof cookie);
    call(ctx, &h, "/guest/", cookie, NULL, guest_view, &s);
    ck_assert_str_eq(tl_http_res_header(&h, "Location"), "/home/");
    tl_http_free(&h);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(regular_required_for_each_visitor)
{
    guest_ctx *ctx = ctx_for(NULL);
    tl_http h;
    seen s = {0};
    call(ctx, &h, "/regular_user_required/", NULL, NULL, regular_view, &s);
    ck_assert_int_eq(h.status, 302);
    ck_assert_str_eq(tl_http_res_header(&h, "Location"),
                     "/accounts/login/?next=/regular_user_required/");
    tl_http_free(&h);
    /* the query string travels along, encoded as Django does */
    call(ctx, &h, "/r/?a=1&b=x%20y#", NULL, NULL, regular_view, &s);
    ck_assert_str_eq(tl_http_res_header(&h, "Location"),
                     "/accounts/login/?next=/r/%3Fa%3D1%26b%3Dx%2520y%23");
    tl_http_free(&h);

    char cookie[128];
    new_guest(ctx, cookie, sizeof cookie);
    call(ctx, &h, "/regular_user_required/?p=2", cookie, NULL, regular_view,
         &s);
    ck_assert_int_eq(h.status, 302);
    ck_assert_str_eq(tl_http_res_header(&h, "Location"),
                     "/convert/?next=/regular_user_required/%3Fp%3D2");
    ck_assert_int_eq(s.calls, 0);
    tl_http_free(&h);

    tl_exec("DELETE FROM t_guards.guests");
    call(ctx, &h, "/regular_user_required/", cookie, NULL, regular_view, &s);
    ck_assert_int_eq(h.status, 200);
    ck_assert_int_eq(s.calls, 1);
    ck_assert(!s.guest);
    tl_http_free(&h);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(regular_required_to_evaluates_arguments_once)
{
    guest_ctx *ctx = ctx_for(NULL);
    tl_http h;
    seen s = {0};
    evaluations = 0;
    call(ctx, &h, "/private/", NULL, NULL, regular_to_view, &s);
    ck_assert_int_eq(evaluations, 3);
    ck_assert_str_eq(tl_http_res_header(&h, "Location"),
                     "/signin/?lang=en&goto=/private/");
    tl_http_free(&h);
    char cookie[128];
    new_guest(ctx, cookie, sizeof cookie);
    evaluations = 0;
    call(ctx, &h, "/private/", cookie, NULL, regular_to_view, &s);
    ck_assert_int_eq(evaluations, 3);
    ck_assert_str_eq(tl_http_res_header(&h, "Location"),
                     "/join/?goto=/private/");
    tl_http_free(&h);
    guest_ctx_free(ctx);
}
END_TEST

static void no_escape(guest_req *req, void *ud)
{
    (void)ud;
    ck_assert_int_eq(
        guest_res_add_header(req, "X-Evil", "a\r\nSet-Cookie: x=1"),
        GUEST_ERR_INVALID);
    ck_assert_int_eq(guest_res_add_header(req, "Bad Name:", "v"),
                     GUEST_ERR_INVALID);
    ck_assert_int_eq(guest_res_redirect(req, "/x\nLocation: //evil"),
                     GUEST_ERR_INVALID);
    ck_assert_int_eq(guest_res_set_status(req, 42), GUEST_ERR_INVALID);
    guest_res_set_status(req, 201);
    guest_res_write_html(req, "<a href=\"x\">Tom & 'Jerry'</a>");
}

START_TEST(responses_refuse_header_injection_and_escape_html)
{
    guest_ctx *ctx = ctx_for(NULL);
    tl_http h;
    tl_http_init(&h, "GET", "/");
    tl_http_run(ctx, &h, no_escape, NULL);
    ck_assert_int_eq(h.status, 201);
    ck_assert_int_eq(h.nres_headers, 0);
    ck_assert_str_eq(h.res_body, "&lt;a href=&quot;x&quot;&gt;Tom &amp; "
                                 "&#x27;Jerry&#x27;&lt;/a&gt;");
    tl_http_free(&h);
    guest_ctx_free(ctx);
}
END_TEST

static void mark(guest_req *req, void *ud)
{
    guest_res_send(req, 200, "text/plain", ud);
}

static const guest_route dispatch_table[] = {
    {"GET", "/a", mark, "a"},    {"POST", "/a", mark, "a-post"},
    {NULL, "/any", mark, "any"}, {"GET", "/files/*", mark, "files"},
    {NULL, NULL, NULL, NULL},
};

/* The table through a call, to count how often GUEST_ROUTES evaluates it. */
static int table_calls;
static const guest_route *counted_table(void)
{
    table_calls++;
    return dispatch_table;
}

static GUEST_ROUTES(dispatch_handler, counted_table())

    START_TEST(routes_dispatch_404_405)
{
    guest_ctx *ctx = ctx_for(NULL);
    struct {
        const char *method, *target, *body;
        int status;
    } cases[] = {
        {"GET", "/a?x=1", "a", 200},    {"POST", "/a", "a-post", 200},
        {"HEAD", "/a", "a", 200},       {"PUT", "/a", NULL, 405},
        {"DELETE", "/any", "any", 200}, {"GET", "/files/x/y", "files", 200},
        {"GET", "/b", NULL, 404},       {"GET", "/a/", NULL, 404},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        tl_http h;
        tl_http_init(&h, cases[i].method, cases[i].target);
        table_calls = 0;
        tl_http_run(ctx, &h, dispatch_handler, NULL);
        ck_assert_int_eq(table_calls, 1);
        ck_assert_int_eq(h.status, cases[i].status);
        if (cases[i].body)
            ck_assert_str_eq(h.res_body, cases[i].body);
        if (h.status == 405)
            ck_assert_str_eq(tl_http_res_header(&h, "Allow"), "GET, POST");
        tl_http_free(&h);
    }
    guest_ctx_free(ctx);
}
END_TEST

/* The test adapter's table cut to @p size bytes, in a block of exactly that
 * size: under ASan a read past it fails the test. */
static guest_http_ops *ops_cut(size_t size)
{
    guest_http_ops *o = malloc(size < sizeof(size_t) ? sizeof(size_t) : size);
    ck_assert_ptr_nonnull(o);
    memcpy(o, tl_http_ops(), size < sizeof(size_t) ? sizeof(size_t) : size);
    o->size = size;
    return o;
}

static void plain_page(guest_req *req, void *userdata)
{
    (void)userdata;
    guest_res_send(req, 200, "text/plain", "ok");
}

/* An adapter built against an older, shorter guest_http_ops: the members
 * past its size count as absent and nothing beyond it is read. */
START_TEST(http_ops_size_older_adapters_work)
{
    guest_ctx *ctx = ctx_for(NULL);
    const size_t cuts[] = {offsetof(guest_http_ops, reset),
                           offsetof(guest_http_ops, is_https),
                           GUEST_HTTP_OPS_MIN_SIZE};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        size_t size = cuts[i];
        guest_http_ops *o = ops_cut(size);
        tl_http h;
        tl_http_init(&h, "POST", "/x");
        h.https = true;
        h.body = "a=1";
        guest_req *req = NULL;
        ck_assert_int_eq(guest_req_new(ctx, o, &h, &req), GUEST_OK);
        bool has_https = size > offsetof(guest_http_ops, is_https);
        bool has_body = size > offsetof(guest_http_ops, body);
        ck_assert_int_eq(guest_req_is_https(req), has_https);
        const char *data = NULL;
        size_t len = 99;
        ck_assert_int_eq(guest_req_body(req, &data, &len), GUEST_OK);
        ck_assert_uint_eq(len, has_body ? 3 : 0);
        /* no reset callback: the library says so instead of calling it */
        guest_res_set_status(req, 201);
        ck_assert_int_eq(guest_res_reset(req), GUEST_ERR_INVALID);
        ck_assert_int_eq(guest_res_status_code(req), 201);
        /* a guarded page on the short table makes a guest as usual */
        ck_assert_int_eq(guest_allow(req, plain_page, NULL), GUEST_OK);
        ck_assert_int_eq(h.status, 200);
        ck_assert_str_eq(h.res_body, "ok");
        ck_assert_ptr_nonnull(tl_http_res_header(&h, "Set-Cookie"));
        guest_req_free(req);
        tl_http_free(&h);
        free(o);
    }
    guest_ctx_free(ctx);
}
END_TEST

/* A size below the required members, or none, is refused before any
 * callback runs. */
START_TEST(http_ops_size_too_small_is_refused)
{
    guest_ctx *ctx = ctx_for(NULL);
    const size_t sizes[] = {0, sizeof(size_t), GUEST_HTTP_OPS_MIN_SIZE - 1};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        guest_http_ops *o = ops_cut(sizes[i]);
        tl_http h;
        tl_http_init(&h, "GET", "/");
        guest_req *req = (guest_req *)o;
        ck_assert_int_eq(guest_req_new(ctx, o, &h, &req), GUEST_ERR_INVALID);
        ck_assert_ptr_null(req);
        ck_assert_ptr_null(h.res_body);
        free(o);
    }
    /* a newer adapter's longer table: the members the library knows work */
    struct {
        guest_http_ops ops;
        void *future[4];
    } longer = {.ops = *tl_http_ops()};
    longer.ops.size = sizeof longer;
    tl_http h;
    tl_http_init(&h, "GET", "/");
    guest_req *req = NULL;
    ck_assert_int_eq(guest_req_new(ctx, &longer.ops, &h, &req), GUEST_OK);
    ck_assert_int_eq(guest_res_reset(req), GUEST_OK);
    guest_req_free(req);
    tl_http_free(&h);
    guest_ctx_free(ctx);
}
END_TEST

/* guest_routes_dispatch() called from an application's own handler, with
 * a table chosen per request; NULL is an empty table. */
static void own_dispatcher(guest_req *req, void *userdata)
{
    (void)userdata;
    const char *pick = guest_req_header(req, "X-Table");
    guest_routes_dispatch(req, pick ? dispatch_table : NULL);
}

START_TEST(routes_dispatch_from_own_handler)
{
    guest_ctx *ctx = ctx_for(NULL);
    tl_http h;
    tl_http_init(&h, "GET", "/any");
    tl_http_add(&h, "X-Table", "1");
    tl_http_run(ctx, &h, own_dispatcher, NULL);
    ck_assert_int_eq(h.status, 200);
    ck_assert_str_eq(h.res_body, "any");
    tl_http_free(&h);
    tl_http_init(&h, "GET", "/any");
    tl_http_run(ctx, &h, own_dispatcher, NULL);
    ck_assert_int_eq(h.status, 404);
    tl_http_free(&h);
    guest_ctx_free(ctx);
}
END_TEST

/* ---- a name generator in trouble never becomes a 500 ---- */

static struct {
    int count;
    guest_log_level level;
    char last[512];
} logged;

static void capture_log(guest_log_level level, const char *message, void *ud)
{
    (void)ud;
    logged.count++;
    logged.level = level;
    snprintf(logged.last, sizeof logged.last, "%s", message);
}

static guest_status same_name(const guest_config *c, char *buf, size_t n,
                              void *ud)
{
    (void)c, (void)ud;
    snprintf(buf, n, "always-me");
    return GUEST_OK;
}

static guest_status broken_name(const guest_config *c, char *buf, size_t n,
                                void *ud)
{
    (void)c, (void)buf, (void)n, (void)ud;
    return GUEST_ERR_HOOK;
}

static guest_status odd_name(const guest_config *c, char *buf, size_t n,
                             void *ud)
{
    (void)c, (void)ud;
    snprintf(buf, n, "two\nlines");
    return GUEST_OK;
}

static guest_name_fn generator;

static void with_generator(guest_config *c)
{
    c->name_generator = generator;
    c->name_max_attempts = 3;
    c->log = capture_log;
    c->log_userdata = NULL;
    memset(&logged, 0, sizeof logged);
}

/* GUEST_ALLOW for a new visitor: the handler ran, anonymously, with 200. */
static void allow_runs_anonymous(guest_ctx *ctx)
{
    tl_http h;
    seen s = {0};
    call(ctx, &h, "/", NULL, NULL, allow_view, &s);
    ck_assert_int_eq(h.status, 200);
    ck_assert_int_eq(s.calls, 1);
    ck_assert_int_eq(s.id, 0);
    ck_assert_str_eq(h.res_body, "handler ran");
    ck_assert_ptr_null(tl_http_res_header(&h, "Set-Cookie"));
    tl_http_free(&h);
}

START_TEST(a_clashing_generator_leaves_visitors_anonymous)
{
    generator = same_name;
    guest_ctx *ctx = ctx_for(with_generator);
    /* The first visitor takes the only name there is. */
    tl_http h;
    seen first = {0};
    call(ctx, &h, "/", NULL, NULL, allow_view, &first);
    ck_assert_int_eq(h.status, 200);
    ck_assert(first.guest);
    tl_http_free(&h);
    ck_assert_int_eq(logged.count, 0);
    /* The second one still gets the page, and the operator one line. */
    allow_runs_anonymous(ctx);
    ck_assert_int_eq(logged.count, 1);
    ck_assert_int_eq(logged.level, GUEST_LOG_ERROR);
    ck_assert_ptr_nonnull(strstr(logged.last, "already existed"));
    ck_assert_ptr_nonnull(strstr(logged.last, "GUEST_ERR_NAME_EXHAUSTED"));
    /* More of the same within the minute: served, not logged again. */
    allow_runs_anonymous(ctx);
    ck_assert_int_eq(logged.count, 1);
    ck_assert_int_eq(tl_scalar("SELECT count(*) FROM t_guards.users"), 1);
    /* A direct caller still learns why no guest was made. */
    tl_created r;
    tl_http_init(&h, "GET", "/");
    tl_http_run(ctx, &h, tl_create_handler, &r);
    ck_assert_int_eq(r.st, GUEST_ERR_NAME_EXHAUSTED);
    tl_http_free(&h);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(a_failing_generator_leaves_visitors_anonymous)
{
    generator = broken_name;
    guest_ctx *ctx = ctx_for(with_generator);
    allow_runs_anonymous(ctx);
    allow_runs_anonymous(ctx);
    ck_assert_int_eq(logged.count, 1);
    ck_assert_int_eq(logged.level, GUEST_LOG_ERROR);
    ck_assert_ptr_nonnull(strstr(logged.last, "name generator failed"));
    ck_assert_ptr_nonnull(strstr(logged.last, "GUEST_ERR_HOOK"));
    guest_ctx_free(ctx);

    generator = odd_name;
    ctx = ctx_for(with_generator);
    allow_runs_anonymous(ctx);
    ck_assert_int_eq(logged.count, 1);
    ck_assert_ptr_nonnull(strstr(logged.last, "control-character name"));
    ck_assert_int_eq(tl_scalar("SELECT count(*) FROM t_guards.users"), 0);
    guest_ctx_free(ctx);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("guards");
    TCase *tc = tcase_create("guards");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, allow_makes_an_anonymous_visitor_a_guest);
    tcase_add_test(tc, crawlers_get_no_guest);
    tcase_add_test(tc, only_get_and_post_make_guests);
    tcase_add_test(tc, blocked_agents_are_configurable);
    tcase_add_test(tc, disabled_leaves_visitors_anonymous);
    tcase_add_test(tc, guest_created_hook_sees_user_and_request);
    tcase_add_test(tc, cookie_settings_are_applied);
    tcase_add_test(tc, guest_required_for_each_visitor);
    tcase_add_test(tc, guest_required_targets_from_config);
    tcase_add_test(tc, regular_required_for_each_visitor);
    tcase_add_test(tc, regular_required_to_evaluates_arguments_once);
    tcase_add_test(tc, responses_refuse_header_injection_and_escape_html);
    tcase_add_test(tc, routes_dispatch_404_405);
    tcase_add_test(tc, routes_dispatch_from_own_handler);
    tcase_add_test(tc, http_ops_size_older_adapters_work);
    tcase_add_test(tc, http_ops_size_too_small_is_refused);
    tcase_add_test(tc, a_clashing_generator_leaves_visitors_anonymous);
    tcase_add_test(tc, a_failing_generator_leaves_visitors_anonymous);
    suite_add_tcase(s, tc);
    return tl_run(s);
}

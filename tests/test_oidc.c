/* libguestuser-oidc against real providers on loopback (the `oidc`
 * fixture, tests/oidc/README.md) and the fixture database, through the
 * views over the in-process test adapter: every row of the outcome table
 * with the real oidc-provider (and each of its client kinds: basic, post,
 * ES256, PS256), the refusals of the flow itself (no CSRF, a GET, a
 * replay, another browser, an expired flow, access_denied), every mode of
 * the hostile provider (each refused with the visitor unchanged and no
 * identity written, or accepted), the concurrency bound, the identities
 * page and the settings' checks. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guestuser/oidc.h"
#include "oidc_browser.h"
#include "oidc_env.h"
#include "testlib.h"

#define SCHEMA "t_oidc"
#define LOGIN "/accounts/oidc/"
#define COOKIE "guestuser_oidc"

static const char *env(const char *key)
{
    const char *v = oidc_env(key);
    ck_assert_msg(v != NULL, "%s missing from the oidc fixture's env file %s",
                  key, oidc_env_file());
    return v;
}

static long long count(const char *sql)
{
    return tl_scalar_in(SCHEMA, sql);
}

/* What the context's log received, for the one-line-per-failure check. */
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static char last_log[512];
static int log_lines;

static void capture_log(guest_log_level level, const char *message, void *ud)
{
    (void)level;
    (void)ud;
    pthread_mutex_lock(&log_mu);
    snprintf(last_log, sizeof last_log, "%s", message);
    log_lines++;
    pthread_mutex_unlock(&log_mu);
}

static void with_log(guest_config *c)
{
    c->log = capture_log;
}

static void no_signup(guest_config *c)
{
    with_log(c);
    c->identity_signup = false;
}

static guest_ctx *new_ctx(void (*tweak)(guest_config *))
{
    tl_drop_schema(SCHEMA);
    return tl_ctx(SCHEMA, tweak ? tweak : with_log);
}

/* A registry with the real provider's four clients: op (basic), post,
 * es (ES256) and ps (PS256). */
static guest_oidc *new_oidc(guest_ctx *ctx, unsigned timeout_ms)
{
    guest_oidc_config cfg;
    guest_oidc_config_init(&cfg);
    cfg.public_url = "http://127.0.0.1";
    if (timeout_ms)
        cfg.http_timeout_ms = timeout_ms;
    guest_oidc *o = NULL;
    guest_error err = {0};
    ck_assert_int_eq(guest_oidc_new(ctx, &cfg, &o, &err), GUEST_OK);
    static const char *const clients[][3] = {
        {"op", "OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET"},
        {"post", "OIDC_POST_CLIENT_ID", "OIDC_POST_CLIENT_SECRET"},
        {"es", "OIDC_ES256_CLIENT_ID", "OIDC_ES256_CLIENT_SECRET"},
        {"ps", "OIDC_PS256_CLIENT_ID", "OIDC_PS256_CLIENT_SECRET"},
    };
    for (size_t i = 0; i < 4; i++) {
        guest_status st = guest_oidc_add_provider(
            o, clients[i][0], env("OIDC_ISSUER"), env(clients[i][1]),
            env(clients[i][2]), &err);
        ck_assert_msg(st == GUEST_OK, "%s: %s", clients[i][0], err.message);
    }
    return o;
}

static char run_tag[32], refetch_tag[40];

/* Adds the hostile provider's MODE.TAG issuer as "h-MODE". */
static void add_hostile(guest_oidc *o, const char *mode, const char *tag)
{
    char issuer[256], name[64];
    ck_assert_ptr_nonnull(
        oidc_hostile_issuer(mode, tag, issuer, sizeof issuer));
    snprintf(name, sizeof name, "h-%s", mode);
    guest_error err = {0};
    guest_status st =
        guest_oidc_add_provider(o, name, issuer, env("HOSTILE_CLIENT_ID"),
                                env("HOSTILE_CLIENT_SECRET"), &err);
    ck_assert_msg(st == GUEST_OK, "%s: %s", name, err.message);
}

/* One browser: its session cookie ("sessionid=..." or "") and its binding
 * cookie ("guestuser_oidc=..." or ""). */
typedef struct browser {
    char session[256];
    char binding[256];
} browser;

static void cookies(const browser *b, char *out, size_t size)
{
    snprintf(out, size, "csrftoken=" TL_CSRF "%s%s%s%s",
             *b->session ? "; " : "", b->session, *b->binding ? "; " : "",
             b->binding);
}

/* Keeps the cookies a response set. */
static void keep(browser *b, const tl_http *h)
{
    char c[256];
    if (tl_http_cookie(h, "sessionid", c, sizeof c))
        snprintf(b->session, sizeof b->session, "%s", c);
    if (tl_http_cookie(h, COOKIE, c, sizeof c))
        snprintf(b->binding, sizeof b->binding, "%s", c);
}

/* POSTs the login button of provider @p name (with @p next_field, e.g.
 * "&next=/notes/", or NULL) and returns the authorization URL (free). */
static char *start(guest_ctx *ctx, guest_oidc *o, const char *name, browser *b,
                   const char *next_field)
{
    char target[128], cookie[600], body[256];
    snprintf(target, sizeof target, LOGIN "%s/login/", name);
    cookies(b, cookie, sizeof cookie);
    snprintf(body, sizeof body, "csrfmiddlewaretoken=" TL_CSRF "%s",
             next_field ? next_field : "");
    tl_http h;
    tl_request(ctx, &h, "POST", target, cookie, NULL, body, guest_oidc_view, o);
    ck_assert_msg(h.status == 302, "login POST %s: %d %s", name, h.status,
                  h.res_body ? h.res_body : "");
    const char *loc = tl_http_res_header(&h, "Location");
    ck_assert_ptr_nonnull(loc);
    char *url = strdup(loc);
    keep(b, &h);
    ck_assert(*b->binding);
    tl_http_free(&h);
    return url;
}

/* GETs the callback URL the provider sent the browser to, with @p b's
 * cookies; the response stays in @p h (tl_http_free). */
static void finish(guest_ctx *ctx, guest_oidc *o, browser *b,
                   const char *callback_url, tl_http *h)
{
    const char *path = strstr(callback_url, LOGIN);
    ck_assert_msg(path != NULL, "callback %s", callback_url);
    char cookie[600];
    cookies(b, cookie, sizeof cookie);
    tl_request(ctx, h, "GET", path, cookie, NULL, NULL, guest_oidc_view, o);
    keep(b, h);
}

/* The whole journey at provider @p name as @p user; the callback's
 * response in @p h. */
static void journey(guest_ctx *ctx, guest_oidc *o, const char *name,
                    const char *user, browser *b, tl_http *h)
{
    char *auth = start(ctx, o, name, b, NULL);
    char cb[4096];
    ck_assert_msg(oidc_browser_login(auth, user, cb, sizeof cb) == 0,
                  "provider login at %s", auth);
    free(auth);
    finish(ctx, o, b, cb, h);
}

/* Who the browser is now: the user id (0: anonymous) and whether a guest. */
static int64_t who(guest_ctx *ctx, const browser *b, bool *is_guest)
{
    return tl_whoami(ctx, b->session, is_guest);
}

static browser guest_browser(guest_ctx *ctx, int64_t *id)
{
    browser b = {0};
    *id = tl_new_guest(ctx, b.session, sizeof b.session);
    return b;
}

/* A registered user with a password, logged in through the login view. */
static browser user_browser(guest_ctx *ctx, const char *name, int64_t *id)
{
    browser b = {0};
    *id = tl_new_user(ctx, name, TL_PASSWORD);
    char body[256];
    snprintf(body, sizeof body,
             "username=%s&password=" TL_PASSWORD
             "&csrfmiddlewaretoken=" TL_CSRF,
             name);
    tl_http h;
    tl_request(ctx, &h, "POST", "/accounts/login/", "csrftoken=" TL_CSRF, NULL,
               body, guest_login_view, NULL);
    ck_assert_int_eq(h.status, 302);
    keep(&b, &h);
    tl_http_free(&h);
    return b;
}

static void expect_redirect(const tl_http *h, const char *location)
{
    ck_assert_msg(h->status == 302, "callback: %d %s", h->status,
                  h->res_body ? h->res_body : "");
    ck_assert_str_eq(tl_http_res_header(h, "Location"), location);
}

/* ---- the outcome table with the real provider ---- */

START_TEST(guest_is_converted)
{
    guest_ctx *ctx = new_ctx(NULL);
    guest_oidc *o = new_oidc(ctx, 0);
    int64_t gid;
    browser b = guest_browser(ctx, &gid);
    char before[256];
    snprintf(before, sizeof before, "%s", b.session);
    tl_http h;
    journey(ctx, o, "op", "alice", &b, &h);
    expect_redirect(&h, "/accounts/profile/");
    tl_http_free(&h);
    ck_assert_str_ne(b.session, before); /* the session was rotated */
    bool is_guest = true;
    ck_assert_int_eq(who(ctx, &b, &is_guest), gid);
    ck_assert(!is_guest);
    char name[64];
    tl_text_in(SCHEMA,
               "SELECT username FROM @.users WHERE id = (SELECT "
               "user_id FROM @.identities)",
               name, sizeof name);
    ck_assert_str_eq(name, "alice");
    ck_assert_int_eq(count("SELECT count(*) FROM @.identities"), 1);
    char sub[64];
    tl_text_in(SCHEMA, "SELECT subject FROM @.identities", sub, sizeof sub);
    ck_assert_str_eq(sub, env("OIDC_SUB_ALICE"));
    ck_assert_int_eq(count("SELECT count(*) FROM @.flows"), 0);
    guest_oidc_free(o);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(anonymous_signed_up_and_logs_in_again)
{
    guest_ctx *ctx = new_ctx(NULL);
    guest_oidc *o = new_oidc(ctx, 0);
    browser b = {0};
    tl_http h;
    journey(ctx, o, "op", "carol", &b, &h);
    expect_redirect(&h, "/accounts/profile/");
    tl_http_free(&h);
    bool is_guest = true;
    int64_t id = who(ctx, &b, &is_guest);
    ck_assert_int_gt(id, 0);
    ck_assert(!is_guest);
    char name[64];
    tl_text_in(SCHEMA, "SELECT username FROM @.users", name, sizeof name);
    ck_assert_str_eq(name, "carol.danvers");

    /* Linked to U, anonymous: logged in as U. */
    browser again = {0};
    journey(ctx, o, "op", "carol", &again, &h);
    expect_redirect(&h, "/accounts/profile/");
    tl_http_free(&h);
    ck_assert_int_eq(who(ctx, &again, NULL), id);

    /* Linked to U, the visitor is U: still U, nothing added. */
    journey(ctx, o, "op", "carol", &again, &h);
    expect_redirect(&h, "/accounts/profile/");
    tl_http_free(&h);
    ck_assert_int_eq(who(ctx, &again, NULL), id);
    ck_assert_int_eq(count("SELECT count(*) FROM @.users"), 1);
    ck_assert_int_eq(count("SELECT count(*) FROM @.identities"), 1);
    guest_oidc_free(o);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(registered_linked_then_guest_logs_in)
{
    guest_ctx *ctx = new_ctx(NULL);
    guest_oidc *o = new_oidc(ctx, 0);
    int64_t uid;
    browser b = user_browser(ctx, "someone", &uid);
    tl_http h;
    journey(ctx, o, "op", "bob", &b, &h);
    expect_redirect(&h, "/accounts/profile/");
    tl_http_free(&h);
    ck_assert_int_eq(who(ctx, &b, NULL), uid);
    ck_assert_int_eq(count("SELECT count(*) FROM @.identities"), 1);
    ck_assert_int_eq(
        count("SELECT count(*) FROM @.identities WHERE user_id = (SELECT id "
              "FROM @.users WHERE username = 'someone')"),
        1);

    /* Linked to U, a guest: logged in as U, the guest gone. */
    int64_t gid;
    browser g = guest_browser(ctx, &gid);
    journey(ctx, o, "op", "bob", &g, &h);
    expect_redirect(&h, "/accounts/profile/");
    tl_http_free(&h);
    bool is_guest = true;
    ck_assert_int_eq(who(ctx, &g, &is_guest), uid);
    ck_assert(!is_guest);
    ck_assert_int_eq(count("SELECT count(*) FROM @.guests"), 0);

    /* Linked to U, another registered user: 409, nothing changes. */
    int64_t other;
    browser x = user_browser(ctx, "another", &other);
    char before[256];
    snprintf(before, sizeof before, "%s", x.session);
    journey(ctx, o, "op", "bob", &x, &h);
    ck_assert_int_eq(h.status, 409);
    ck_assert_ptr_nonnull(
        strstr(h.res_body, "That account is linked to another user"));
    tl_http_free(&h);
    ck_assert_str_eq(x.session, before);
    ck_assert_int_eq(who(ctx, &x, NULL), other);
    ck_assert_int_eq(count("SELECT count(*) FROM @.identities"), 1);
    guest_oidc_free(o);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(same_email_never_merged)
{
    guest_ctx *ctx = new_ctx(NULL);
    guest_oidc *o = new_oidc(ctx, 0);
    browser a = {0}, m = {0};
    tl_http h;
    journey(ctx, o, "op", "alice", &a, &h);
    tl_http_free(&h);
    /* mallory asserts alice's username and verified e-mail. */
    journey(ctx, o, "op", "mallory", &m, &h);
    expect_redirect(&h, "/accounts/profile/");
    tl_http_free(&h);
    int64_t ida = who(ctx, &a, NULL), idm = who(ctx, &m, NULL);
    ck_assert_int_gt(idm, 0);
    ck_assert_int_ne(ida, idm);
    ck_assert_int_eq(count("SELECT count(*) FROM @.identities"), 2);
    guest_oidc_free(o);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(signup_closed)
{
    guest_ctx *ctx = new_ctx(no_signup);
    guest_oidc *o = new_oidc(ctx, 0);
    browser b = {0};
    tl_http h;
    journey(ctx, o, "op", "dave", &b, &h);
    ck_assert_int_eq(h.status, 403);
    tl_http_free(&h);
    ck_assert_int_eq(who(ctx, &b, NULL), 0);
    ck_assert_int_eq(count("SELECT count(*) FROM @.users"), 0);
    /* A guest may still convert. */
    int64_t gid;
    browser g = guest_browser(ctx, &gid);
    journey(ctx, o, "op", "dave", &g, &h);
    expect_redirect(&h, "/accounts/profile/");
    tl_http_free(&h);
    bool is_guest = true;
    ck_assert_int_eq(who(ctx, &g, &is_guest), gid);
    ck_assert(!is_guest);
    guest_oidc_free(o);
    guest_ctx_free(ctx);
}
END_TEST

/* The other client kinds: client_secret_post, ES256 and PS256 tokens. */
START_TEST(client_kinds)
{
    static const char *const names[] = {"post", "es", "ps"};
    guest_ctx *ctx = new_ctx(NULL);
    guest_oidc *o = new_oidc(ctx, 0);
    for (size_t i = 0; i < 3; i++) {
        int64_t gid;
        browser g = guest_browser(ctx, &gid);
        tl_http h;
        journey(ctx, o, names[i], "erin", &g, &h);
        expect_redirect(&h, "/accounts/profile/");
        tl_http_free(&h);
        bool is_guest = true;
        int64_t id = who(ctx, &g, &is_guest);
        ck_assert(!is_guest);
        /* The first converted; the next ones log in as that user. */
        if (i == 0)
            ck_assert_int_eq(id, gid);
    }
    ck_assert_int_eq(count("SELECT count(*) FROM @.identities"), 1);
    ck_assert_int_eq(count("SELECT count(*) FROM @.users"), 1);
    guest_oidc_free(o);
    guest_ctx_free(ctx);
}
END_TEST

/* ---- the flow's own refusals ---- */

START_TEST(login_page_and_csrf)
{
    guest_ctx *ctx = new_ctx(NULL);
    guest_oidc *o = new_oidc(ctx, 0);
    tl_http h;
    tl_request(ctx, &h, "GET", LOGIN "op/login/?next=/notes/", NULL, NULL, NULL,
               guest_oidc_view, o);
    ck_assert_int_eq(h.status, 200);
    ck_assert_ptr_nonnull(strstr(h.res_body, "Continue with op"));
    ck_assert_ptr_nonnull(strstr(h.res_body, "value=\"/notes/\""));
    ck_assert_ptr_null(tl_http_res_header(&h, "Location"));
    char c[128];
    ck_assert(!tl_http_cookie(&h, COOKIE, c, sizeof c));
    tl_http_free(&h);
    /* No CSRF token: 403, no flow. */
    tl_request(ctx, &h, "POST", LOGIN "op/login/", "csrftoken=" TL_CSRF, NULL,
               "next=/", guest_oidc_view, o);
    ck_assert_int_eq(h.status, 403);
    tl_http_free(&h);
    ck_assert_int_eq(count("SELECT count(*) FROM @.flows"), 0);
    /* Unknown provider and action: 404; PUT: 405. */
    tl_request(ctx, &h, "GET", LOGIN "nope/login/", NULL, NULL, NULL,
               guest_oidc_view, o);
    ck_assert_int_eq(h.status, 404);
    tl_http_free(&h);
    tl_request(ctx, &h, "GET", LOGIN "op/other/", NULL, NULL, NULL,
               guest_oidc_view, o);
    ck_assert_int_eq(h.status, 404);
    tl_http_free(&h);
    tl_request(ctx, &h, "PUT", LOGIN "op/login/", NULL, NULL, NULL,
               guest_oidc_view, o);
    ck_assert_int_eq(h.status, 405);
    tl_http_free(&h);
    tl_request(ctx, &h, "HEAD", LOGIN "op/callback/?state=x&code=y", NULL, NULL,
               NULL, guest_oidc_view, o);
    ck_assert_int_eq(h.status, 405);
    ck_assert_str_eq(tl_http_res_header(&h, "Allow"), "GET");
    tl_http_free(&h);
    /* The authorization request. */
    browser b = {0};
    char *auth = start(ctx, o, "op", &b, NULL);
    char buf[256];
    ck_assert_str_eq(oidc_url_param(auth, "response_type", buf, sizeof buf),
                     "code");
    ck_assert_str_eq(oidc_url_param(auth, "scope", buf, sizeof buf),
                     "openid email profile");
    ck_assert_str_eq(
        oidc_url_param(auth, "code_challenge_method", buf, sizeof buf), "S256");
    ck_assert_str_eq(oidc_url_param(auth, "redirect_uri", buf, sizeof buf),
                     "http://127.0.0.1/accounts/oidc/op/callback/");
    ck_assert_uint_ge(strlen(oidc_url_param(auth, "state", buf, sizeof buf)),
                      43);
    ck_assert_ptr_nonnull(oidc_url_param(auth, "nonce", buf, sizeof buf));
    free(auth);
    ck_assert_int_eq(count("SELECT count(*) FROM @.flows"), 1);
    guest_oidc_free(o);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(next_carried)
{
    guest_ctx *ctx = new_ctx(NULL);
    guest_oidc *o = new_oidc(ctx, 0);
    browser b = {0};
    char *auth = start(ctx, o, "op", &b, "&next=/notes/%3Fpage%3D2");
    char cb[4096];
    ck_assert_int_eq(oidc_browser_login(auth, "alice", cb, sizeof cb), 0);
    free(auth);
    tl_http h;
    finish(ctx, o, &b, cb, &h);
    expect_redirect(&h, "/notes/?page=2");
    tl_http_free(&h);
    /* An unsafe next is dropped. */
    browser c = {0};
    auth = start(ctx, o, "op", &c, "&next=//evil.example/");
    ck_assert_int_eq(oidc_browser_login(auth, "bob", cb, sizeof cb), 0);
    free(auth);
    finish(ctx, o, &c, cb, &h);
    expect_redirect(&h, "/accounts/profile/");
    tl_http_free(&h);
    guest_oidc_free(o);
    guest_ctx_free(ctx);
}
END_TEST

static void buttons_handler(guest_req *req, void *ud)
{
    guest_res_set_status(req, 200);
    ck_assert_int_eq(guest_oidc_write_buttons(req, ud, "/notes/"), GUEST_OK);
}

static void buttons_unsafe_next(guest_req *req, void *ud)
{
    guest_res_set_status(req, 200);
    ck_assert_int_eq(guest_oidc_write_buttons(req, ud, "https://evil.example/"),
                     GUEST_OK);
}

/* The buttons other pages show, and the views' JSON mode. */
START_TEST(buttons_and_json)
{
    guest_ctx *ctx = new_ctx(NULL);
    guest_oidc *o = new_oidc(ctx, 0);
    tl_http h;
    tl_request(ctx, &h, "GET", "/convert/", NULL, NULL, NULL, buttons_handler,
               o);
    for (size_t i = 0; i < 4; i++) {
        char action[128];
        snprintf(action, sizeof action, "action=\"" LOGIN "%s/login/\"",
                 guest_oidc_provider_name(o, i));
        ck_assert_ptr_nonnull(strstr(h.res_body, action));
    }
    ck_assert_ptr_nonnull(strstr(h.res_body, "Continue with ps"));
    ck_assert_ptr_nonnull(strstr(h.res_body, "value=\"/notes/\""));
    ck_assert_ptr_nonnull(strstr(h.res_body, GUEST_CSRF_FIELD));
    tl_http_free(&h);
    tl_request(ctx, &h, "GET", "/convert/", NULL, NULL, NULL,
               buttons_unsafe_next, o);
    ck_assert_ptr_null(strstr(h.res_body, "evil"));
    tl_http_free(&h);

    /* JSON: the login POST answers the URL, the callback who and what. */
    int64_t gid;
    browser b = guest_browser(ctx, &gid);
    char cookie[600];
    cookies(&b, cookie, sizeof cookie);
    tl_http_init(&h, "POST", LOGIN "op/login/");
    tl_http_add(&h, "Host", "testserver");
    tl_http_add(&h, "Cookie", cookie);
    tl_http_add(&h, "Content-Type", "application/json");
    tl_http_add(&h, "X-CSRFToken", TL_CSRF);
    h.body = "{}";
    tl_http_run(ctx, &h, guest_oidc_view, o);
    ck_assert_int_eq(h.status, 200);
    const char *loc = strstr(h.res_body, "\"location\":\"");
    ck_assert_ptr_nonnull(loc);
    loc += strlen("\"location\":\"");
    char auth[2048];
    size_t n = strcspn(loc, "\"");
    ck_assert_uint_lt(n, sizeof auth);
    /* Taken as it is: jansson escapes no '/' by default, and nothing else
     * in the URL needs escaping. */
    memcpy(auth, loc, n);
    auth[n] = '\0';
    keep(&b, &h);
    tl_http_free(&h);
    char cb[4096];
    ck_assert_int_eq(oidc_browser_login(auth, "alice", cb, sizeof cb), 0);
    cookies(&b, cookie, sizeof cookie);
    tl_http_init(&h, "GET", strstr(cb, LOGIN));
    tl_http_add(&h, "Host", "testserver");
    tl_http_add(&h, "Cookie", cookie);
    tl_http_add(&h, "Accept", "application/json");
    tl_http_run(ctx, &h, guest_oidc_view, o);
    ck_assert_int_eq(h.status, 200);
    ck_assert_ptr_nonnull(strstr(h.res_body, "\"outcome\":\"converted\""));
    ck_assert_ptr_nonnull(strstr(h.res_body, "\"username\":\"alice\""));
    tl_http_free(&h);
    /* A JSON refusal. */
    tl_http_init(&h, "GET", strstr(cb, LOGIN));
    tl_http_add(&h, "Host", "testserver");
    tl_http_add(&h, "Cookie", cookie);
    tl_http_add(&h, "Accept", "application/json");
    tl_http_run(ctx, &h, guest_oidc_view, o);
    ck_assert_int_eq(h.status, 400);
    ck_assert_ptr_nonnull(strstr(h.res_body, "\"errors\""));
    tl_http_free(&h);
    guest_oidc_free(o);
    guest_ctx_free(ctx);
}
END_TEST

/* The visitor is unchanged and nothing was written. */
static void unchanged(guest_ctx *ctx, const browser *b, int64_t gid)
{
    bool is_guest = false;
    ck_assert_int_eq(who(ctx, b, &is_guest), gid);
    ck_assert(is_guest);
    ck_assert_int_eq(count("SELECT count(*) FROM @.identities"), 0);
    ck_assert_int_eq(count("SELECT count(*) FROM @.users"), 1);
}

START_TEST(replay_other_browser_expired_denied)
{
    guest_ctx *ctx = new_ctx(NULL);
    guest_oidc *o = new_oidc(ctx, 0);
    int64_t gid;
    browser b = guest_browser(ctx, &gid);
    tl_http h;

    /* Another browser (its own binding) brings this flow's callback. */
    char *auth = start(ctx, o, "op", &b, NULL);
    char cb[4096];
    ck_assert_int_eq(oidc_browser_login(auth, "alice", cb, sizeof cb), 0);
    free(auth);
    browser other = {0};
    snprintf(other.binding, sizeof other.binding, COOKIE "=%s",
             "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    finish(ctx, o, &other, cb, &h);
    ck_assert_int_eq(h.status, 400);
    tl_http_free(&h);
    /* Without any binding cookie. */
    browser none = {0};
    finish(ctx, o, &none, cb, &h);
    ck_assert_int_eq(h.status, 400);
    tl_http_free(&h);
    unchanged(ctx, &b, gid);

    /* A replay: the first use works, the second finds nothing. */
    browser r = {0};
    auth = start(ctx, o, "op", &r, NULL);
    ck_assert_int_eq(oidc_browser_login(auth, "bob", cb, sizeof cb), 0);
    free(auth);
    finish(ctx, o, &r, cb, &h);
    ck_assert_int_eq(h.status, 302);
    tl_http_free(&h);
    int64_t bob = who(ctx, &r, NULL);
    browser replay = b; /* the guest's browser, with r's binding */
    snprintf(replay.binding, sizeof replay.binding, "%s", r.binding);
    finish(ctx, o, &replay, cb, &h);
    ck_assert_int_eq(h.status, 400);
    ck_assert_ptr_nonnull(strstr(h.res_body, "already used"));
    tl_http_free(&h);
    ck_assert_int_eq(who(ctx, &b, NULL), gid);
    ck_assert_int_eq(who(ctx, &r, NULL), bob);

    /* An expired flow. */
    auth = start(ctx, o, "op", &b, NULL);
    ck_assert_int_eq(oidc_browser_login(auth, "alice", cb, sizeof cb), 0);
    free(auth);
    tl_exec_in(SCHEMA,
               "UPDATE @.flows SET expires_at = now() - interval '1 s'");
    finish(ctx, o, &b, cb, &h);
    ck_assert_int_eq(h.status, 400);
    tl_http_free(&h);
    ck_assert_int_eq(who(ctx, &b, NULL), gid);

    /* The user cancels at the provider. */
    auth = start(ctx, o, "op", &b, NULL);
    ck_assert_int_eq(oidc_browser_deny(auth, cb, sizeof cb), 0);
    free(auth);
    int lines = log_lines;
    finish(ctx, o, &b, cb, &h);
    ck_assert_int_eq(h.status, 400);
    ck_assert_ptr_nonnull(strstr(h.res_body, "access_denied"));
    tl_http_free(&h);
    ck_assert_int_eq(log_lines, lines + 1);
    ck_assert_ptr_nonnull(strstr(last_log, "access_denied"));
    bool is_guest = false;
    ck_assert_int_eq(who(ctx, &b, &is_guest), gid);
    ck_assert(is_guest);
    ck_assert_int_eq(
        count("SELECT count(*) FROM @.identities i JOIN @.guests g ON "
              "g.user_id = i.user_id"),
        0);
    guest_oidc_free(o);
    guest_ctx_free(ctx);
}
END_TEST

/* ---- the hostile provider ---- */

typedef struct mode_case {
    const char *mode;
    int status; /* the callback's answer */
} mode_case;

static const mode_case refused[] = {
    {"wrong-signature", 400}, {"wrong-aud", 400},
    {"wrong-iss", 400},       {"iss-trailing-slash", 400},
    {"expired", 400},         {"iat-future", 400},
    {"wrong-nonce", 400},     {"missing-nonce", 400},
    {"alg-none", 400},        {"hs256-public-key", 400},
    {"unknown-kid", 400},     {"azp-mismatch", 400},
    {"huge-jwks", 502},       {"huge-token", 502},
    {"jwks-hangs", 502},      {"token-hangs", 502},
    {"token-error", 400},     {"error-access-denied", 400},
    {"wrong-state", 400},     {"wrong-iss-param", 400},
};

static const char *const accepted[] = {
    "good",          "good-ps256",          "good-es256",  "no-iss-param",
    "multi-aud-azp", "expired-within-skew", "missing-kid", "post-only",
};

static void hostile_journey(guest_ctx *ctx, guest_oidc *o, const char *mode,
                            browser *b, tl_http *h)
{
    char name[64];
    snprintf(name, sizeof name, "h-%s", mode);
    journey(ctx, o, name, "anyone", b, h);
}

START_TEST(hostile_refused)
{
    const mode_case *mc = &refused[_i];
    guest_ctx *ctx = new_ctx(NULL);
    guest_oidc *o = new_oidc(ctx, 1500);
    add_hostile(o, mc->mode, run_tag);
    int64_t gid;
    browser b = guest_browser(ctx, &gid);
    char before[256];
    snprintf(before, sizeof before, "%s", b.session);
    tl_http h;
    int lines = log_lines;
    long long t0 = tl_now_ms();
    hostile_journey(ctx, o, mc->mode, &b, &h);
    long long took = tl_now_ms() - t0;
    ck_assert_msg(h.status == mc->status, "%s: %d, expected %d: %s", mc->mode,
                  h.status, mc->status, h.res_body ? h.res_body : "");
    ck_assert_str_eq(tl_http_res_header(&h, "Content-Type"),
                     "text/html; charset=utf-8");
    char c[256];
    ck_assert(!tl_http_cookie(&h, "sessionid", c, sizeof c));
    tl_http_free(&h);
    ck_assert_str_eq(b.session, before);
    /* TEST_OIDC_SHOW=1: why each mode was refused, as the log said. */
    if (getenv("TEST_OIDC_SHOW"))
        fprintf(stderr, "%s: %d %s\n", mc->mode, mc->status, last_log);
    ck_assert_msg(log_lines == lines + 1, "%s: %d log lines", mc->mode,
                  log_lines - lines);
    unchanged(ctx, &b, gid);
    /* The hanging ones end at the deadline, not the provider's whim. */
    ck_assert_msg(took < 10000, "%s took %lld ms", mc->mode, took);
    guest_oidc_free(o);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(hostile_accepted)
{
    const char *mode = accepted[_i];
    guest_ctx *ctx = new_ctx(NULL);
    guest_oidc *o = new_oidc(ctx, 0);
    add_hostile(o, mode, run_tag);
    int64_t gid;
    browser b = guest_browser(ctx, &gid);
    tl_http h;
    hostile_journey(ctx, o, mode, &b, &h);
    ck_assert_msg(h.status == 302, "%s: %d %s", mode, h.status,
                  h.res_body ? h.res_body : "");
    tl_http_free(&h);
    bool is_guest = true;
    ck_assert_int_eq(who(ctx, &b, &is_guest), gid);
    ck_assert(!is_guest);
    ck_assert_int_eq(count("SELECT count(*) FROM @.identities"), 1);
    guest_oidc_free(o);
    guest_ctx_free(ctx);
}
END_TEST

/* The value of "key": N in a JSON text (0 when absent). */
static long json_count(const char *json, const char *key)
{
    char k[64];
    snprintf(k, sizeof k, "\"%s\":", key);
    const char *p = json ? strstr(json, k) : NULL;
    return p ? strtol(p + strlen(k), NULL, 10) : 0;
}

static long stats(const char *mode, const char *key)
{
    char issuer[256], url[300];
    ck_assert_ptr_nonnull(
        oidc_hostile_issuer(mode, refetch_tag, issuer, sizeof issuer));
    snprintf(url, sizeof url, "%s/stats", issuer);
    char *body = NULL;
    ck_assert_int_eq(oidc_http_get(url, &body), 200);
    long n = json_count(body, key);
    free(body);
    return n;
}

/* Keys rotated after the first fetch are found by one refetch; an unknown
 * kid refetches at most once a minute. */
START_TEST(jwks_refetch)
{
    guest_ctx *ctx = new_ctx(NULL);
    guest_oidc *o = new_oidc(ctx, 0);
    add_hostile(o, "rotating", refetch_tag);
    add_hostile(o, "unknown-kid", refetch_tag);
    tl_http h;
    for (int round = 0; round < 2; round++) {
        if (round == 1) {
            char issuer[256], url[300], *body = NULL;
            oidc_hostile_issuer("rotating", refetch_tag, issuer, sizeof issuer);
            snprintf(url, sizeof url, "%s/rotate", issuer);
            ck_assert_int_eq(oidc_http_post_form(url, "", NULL, NULL, &body),
                             200);
            free(body);
        }
        int64_t gid;
        browser b = guest_browser(ctx, &gid);
        hostile_journey(ctx, o, "rotating", &b, &h);
        ck_assert_msg(h.status == 302, "round %d: %d %s", round, h.status,
                      h.res_body);
        tl_http_free(&h);
    }
    ck_assert_int_eq(stats("rotating", "jwks"), 2);
    for (int round = 0; round < 3; round++) {
        int64_t gid;
        browser b = guest_browser(ctx, &gid);
        hostile_journey(ctx, o, "unknown-kid", &b, &h);
        ck_assert_int_eq(h.status, 400);
        tl_http_free(&h);
    }
    /* The first fetch, and one refetch for the unknown kid. */
    ck_assert_int_eq(stats("unknown-kid", "jwks"), 2);
    guest_oidc_free(o);
    guest_ctx_free(ctx);
}
END_TEST

/* Provider calls beyond `concurrency` wait wait_ms, then 503. */
typedef struct racer {
    guest_ctx *ctx;
    guest_oidc *o;
    char cb[4096];
    browser b;
    int status;
    char retry[16];
} racer;

static void *race(void *arg)
{
    racer *r = arg;
    tl_http h;
    finish(r->ctx, r->o, &r->b, r->cb, &h);
    r->status = h.status;
    const char *ra = tl_http_res_header(&h, "Retry-After");
    snprintf(r->retry, sizeof r->retry, "%s", ra ? ra : "");
    tl_http_free(&h);
    return NULL;
}

START_TEST(concurrency_bound)
{
    guest_ctx *ctx = new_ctx(NULL);
    guest_oidc_config cfg;
    guest_oidc_config_init(&cfg);
    cfg.public_url = "http://127.0.0.1";
    cfg.concurrency = 1;
    cfg.wait_ms = 100;
    cfg.http_timeout_ms = 1500;
    guest_oidc *o = NULL;
    ck_assert_int_eq(guest_oidc_new(ctx, &cfg, &o, NULL), GUEST_OK);
    add_hostile(o, "token-hangs", run_tag);
    racer r[2] = {{.ctx = ctx, .o = o}, {.ctx = ctx, .o = o}};
    for (int i = 0; i < 2; i++) {
        char *auth = start(ctx, o, "h-token-hangs", &r[i].b, NULL);
        ck_assert_int_eq(oidc_browser_login(auth, "x", r[i].cb, sizeof r[i].cb),
                         0);
        free(auth);
    }
    pthread_t t;
    pthread_create(&t, NULL, race, &r[0]);
    /* Let the first take the one place and hang at the token endpoint. */
    struct timespec ts = {0, 300 * 1000000L};
    nanosleep(&ts, NULL);
    race(&r[1]);
    pthread_join(t, NULL);
    ck_assert_int_eq(r[0].status, 502);
    ck_assert_int_eq(r[1].status, 503);
    ck_assert_str_eq(r[1].retry, "1");
    /* The refused one still has its flow to come back with. */
    ck_assert_int_eq(count("SELECT count(*) FROM @.flows"), 1);
    guest_oidc_free(o);
    guest_ctx_free(ctx);
}
END_TEST

/* ---- the identities page ---- */

START_TEST(identities_page)
{
    guest_ctx *ctx = new_ctx(NULL);
    guest_oidc *o = new_oidc(ctx, 0);
    tl_http h;
    /* Anonymous: to the login page with next. */
    tl_request(ctx, &h, "GET", "/accounts/identities/", NULL, NULL, NULL,
               guest_oidc_identities_view, o);
    ck_assert_int_eq(h.status, 302);
    ck_assert_str_eq(tl_http_res_header(&h, "Location"),
                     "/accounts/login/?next=%2Faccounts%2Fidentities%2F");
    tl_http_free(&h);

    /* alice signs up through the provider: her only way in. */
    browser b = {0};
    journey(ctx, o, "op", "alice", &b, &h);
    tl_http_free(&h);
    char cookie[600];
    cookies(&b, cookie, sizeof cookie);
    tl_request(ctx, &h, "GET", "/accounts/identities/", cookie, NULL, NULL,
               guest_oidc_identities_view, o);
    ck_assert_int_eq(h.status, 200);
    ck_assert_ptr_nonnull(strstr(h.res_body, "alice@example.com"));
    ck_assert_ptr_nonnull(strstr(h.res_body, "Unlink"));
    ck_assert_ptr_nonnull(strstr(h.res_body, "Continue with op"));
    tl_http_free(&h);
    char body[512];
    char *iss = strdup(env("OIDC_ISSUER"));
    /* Unlinking the only way in is refused. */
    snprintf(body, sizeof body,
             "csrfmiddlewaretoken=" TL_CSRF "&issuer=%s&subject=%s", iss,
             env("OIDC_SUB_ALICE"));
    tl_request(ctx, &h, "POST", "/accounts/identities/", cookie, NULL, body,
               guest_oidc_identities_view, o);
    ck_assert_int_eq(h.status, 400);
    ck_assert_ptr_nonnull(strstr(h.res_body, "only way to log in"));
    tl_http_free(&h);
    /* Linked a second identity (the PS256 client's is the same sub at the
     * same issuer, so link mallory instead), the first can go. */
    journey(ctx, o, "op", "mallory", &b, &h);
    ck_assert_int_eq(h.status, 302);
    tl_http_free(&h);
    cookies(&b, cookie, sizeof cookie);
    tl_request(ctx, &h, "POST", "/accounts/identities/", cookie, NULL, body,
               guest_oidc_identities_view, o);
    ck_assert_int_eq(h.status, 302);
    tl_http_free(&h);
    ck_assert_int_eq(count("SELECT count(*) FROM @.identities"), 1);
    /* Without the CSRF token: 403. */
    tl_request(ctx, &h, "POST", "/accounts/identities/", cookie, NULL,
               "issuer=x&subject=y", guest_oidc_identities_view, o);
    ck_assert_int_eq(h.status, 403);
    tl_http_free(&h);
    /* JSON. */
    tl_http_init(&h, "GET", "/accounts/identities/");
    tl_http_add(&h, "Host", "testserver");
    tl_http_add(&h, "Cookie", cookie);
    tl_http_add(&h, "Accept", "application/json");
    tl_http_run(ctx, &h, guest_oidc_identities_view, o);
    ck_assert_int_eq(h.status, 200);
    ck_assert_ptr_nonnull(strstr(h.res_body, env("OIDC_SUB_MALLORY")));
    tl_http_free(&h);
    free(iss);
    guest_oidc_free(o);
    guest_ctx_free(ctx);
}
END_TEST

/* ---- settings ---- */

START_TEST(settings_checked)
{
    guest_ctx *ctx = new_ctx(NULL);
    guest_oidc_config cfg;
    guest_oidc_config_init(&cfg);
    guest_oidc *o = NULL;
    guest_error err = {0};
    ck_assert_int_eq(guest_oidc_new(ctx, &cfg, &o, &err), GUEST_ERR_CONFIG);
    cfg.public_url = "ftp://example.com";
    ck_assert_int_eq(guest_oidc_new(ctx, &cfg, &o, &err), GUEST_ERR_CONFIG);
    cfg.public_url = "https://example.com/?x=1";
    ck_assert_int_eq(guest_oidc_new(ctx, &cfg, &o, &err), GUEST_ERR_CONFIG);
    cfg.public_url = "https://example.com/";
    cfg.concurrency = 0;
    ck_assert_int_eq(guest_oidc_new(ctx, &cfg, &o, &err), GUEST_ERR_CONFIG);
    cfg.concurrency = 8;
    /* a struct not filled by guest_oidc_config_init(), or a newer one */
    cfg.size = 0;
    ck_assert_int_eq(guest_oidc_new(ctx, &cfg, &o, &err), GUEST_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(err.message, "guest_oidc_config_init"));
    cfg.size = sizeof cfg + 8;
    ck_assert_int_eq(guest_oidc_new(ctx, &cfg, &o, &err), GUEST_ERR_CONFIG);
    cfg.size = sizeof cfg;
    ck_assert_int_eq(guest_oidc_new(NULL, &cfg, &o, &err), GUEST_ERR_INVALID);
    ck_assert_int_eq(guest_oidc_new(ctx, &cfg, &o, &err), GUEST_OK);
    static const char *const bad_issuers[] = {
        "http://example.com",
        "http://10.0.0.1",
        "https://example.com/#frag",
        "https://example.com/?q=1",
        "https://user:pw@example.com",
        "example.com",
        "javascript:alert(1)",
        "http://127.0.0.1.example.com",
        "",
    };
    for (size_t i = 0; i < sizeof bad_issuers / sizeof *bad_issuers; i++)
        ck_assert_msg(guest_oidc_add_provider(o, "p", bad_issuers[i], "c", "s",
                                              &err) == GUEST_ERR_CONFIG,
                      "%s accepted", bad_issuers[i]);
    static const char *const good_issuers[] = {
        "https://accounts.google.com", "http://127.0.0.1:8080",
        "http://127.1.2.3/realms/x",   "http://localhost:9000/",
        "http://[::1]:9000",
    };
    for (size_t i = 0; i < sizeof good_issuers / sizeof *good_issuers; i++) {
        char name[8];
        snprintf(name, sizeof name, "g%zu", i);
        ck_assert_msg(guest_oidc_add_provider(o, name, good_issuers[i], "c",
                                              "s", &err) == GUEST_OK,
                      "%s: %s", good_issuers[i], err.message);
    }
    static const char *const bad_names[] = {
        "", "Upper", "a b", "a/b", "123456789012345678901234567890123", "g0"};
    for (size_t i = 0; i < sizeof bad_names / sizeof *bad_names; i++)
        ck_assert_int_eq(guest_oidc_add_provider(o, bad_names[i],
                                                 "https://x.example", "c", "s",
                                                 &err),
                         GUEST_ERR_CONFIG);
    ck_assert_int_eq(
        guest_oidc_add_provider(o, "e", "https://x.example", "", "s", &err),
        GUEST_ERR_CONFIG);
    ck_assert_int_eq(guest_oidc_provider_count(o), 5);
    ck_assert_str_eq(guest_oidc_provider_name(o, 1), "g1");
    ck_assert_ptr_null(guest_oidc_provider_name(o, 5));
    guest_oidc_free(o);
    guest_oidc_free(NULL);
    guest_ctx_free(ctx);
}
END_TEST

/* A provider whose discovery document is unreachable: 502 at the login
 * POST, no flow. */
START_TEST(provider_down)
{
    guest_ctx *ctx = new_ctx(NULL);
    guest_oidc_config cfg;
    guest_oidc_config_init(&cfg);
    cfg.public_url = "http://127.0.0.1";
    cfg.http_timeout_ms = 1000;
    guest_oidc *o = NULL;
    ck_assert_int_eq(guest_oidc_new(ctx, &cfg, &o, NULL), GUEST_OK);
    ck_assert_int_eq(guest_oidc_add_provider(o, "down", "http://127.0.0.1:1",
                                             "c", "s", NULL),
                     GUEST_OK);
    tl_http h;
    tl_request(ctx, &h, "POST", LOGIN "down/login/", "csrftoken=" TL_CSRF, NULL,
               "csrfmiddlewaretoken=" TL_CSRF, guest_oidc_view, o);
    ck_assert_int_eq(h.status, 502);
    tl_http_free(&h);
    ck_assert_int_eq(count("SELECT count(*) FROM @.flows"), 0);
    guest_oidc_free(o);
    guest_ctx_free(ctx);
}
END_TEST

int main(void)
{
    /* Issuers of the hostile provider of our own for this run, so that a
     * second run against the same fixture starts with fresh counters. */
    snprintf(run_tag, sizeof run_tag, "r%lld", tl_now_ms());
    snprintf(refetch_tag, sizeof refetch_tag, "%sj", run_tag);
    Suite *s = suite_create("oidc");
    TCase *t = tcase_create("flows");
    tcase_set_timeout(t, 120);
    tcase_add_test(t, settings_checked);
    tcase_add_test(t, provider_down);
    tcase_add_test(t, login_page_and_csrf);
    tcase_add_test(t, guest_is_converted);
    tcase_add_test(t, anonymous_signed_up_and_logs_in_again);
    tcase_add_test(t, registered_linked_then_guest_logs_in);
    tcase_add_test(t, same_email_never_merged);
    tcase_add_test(t, signup_closed);
    tcase_add_test(t, client_kinds);
    tcase_add_test(t, next_carried);
    tcase_add_test(t, buttons_and_json);
    tcase_add_test(t, replay_other_browser_expired_denied);
    tcase_add_loop_test(t, hostile_refused, 0,
                        (int)(sizeof refused / sizeof *refused));
    tcase_add_loop_test(t, hostile_accepted, 0,
                        (int)(sizeof accepted / sizeof *accepted));
    tcase_add_test(t, jwks_refetch);
    tcase_add_test(t, concurrency_bound);
    tcase_add_test(t, identities_page);
    suite_add_tcase(s, t);
    return tl_run(s);
}

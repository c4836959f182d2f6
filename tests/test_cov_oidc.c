/* libguestuser-oidc's callback where test_oidc.c does not go: each outcome
 * a script asking for JSON is told (signed_up, logged_in, linked), and an
 * identity whose user was deactivated is refused with 403 and nobody is
 * logged in; a JSON unlink answers the list left; a registry without
 * providers writes no buttons; an issuer the discovery document does not
 * name is refused. Against the `oidc` fixture's real provider and the fixture
 * database, through the in-process test adapter. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guestuser/oidc.h"
#include "oidc_browser.h"
#include "oidc_env.h"
#include "testlib.h"

#define SCHEMA "t_cov_oidc"
#define LOGIN "/accounts/oidc/"
#define COOKIE "guestuser_oidc"

static const char *env(const char *key)
{
    const char *v = oidc_env(key);
    ck_assert_msg(v != NULL, "%s missing from the oidc fixture's env file %s",
                  key, oidc_env_file());
    return v;
}

static guest_oidc *new_oidc(guest_ctx *ctx)
{
    guest_oidc_config cfg;
    guest_oidc_config_init(&cfg);
    cfg.public_url = "http://127.0.0.1";
    guest_oidc *o = NULL;
    guest_error err = {0};
    ck_assert_int_eq(guest_oidc_new(ctx, &cfg, &o, &err), GUEST_OK);
    ck_assert_int_eq(guest_oidc_add_provider(o, "op", env("OIDC_ISSUER"),
                                             env("OIDC_CLIENT_ID"),
                                             env("OIDC_CLIENT_SECRET"), &err),
                     GUEST_OK);
    return o;
}

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

static void keep(browser *b, const tl_http *h)
{
    char c[256];
    if (tl_http_cookie(h, "sessionid", c, sizeof c))
        snprintf(b->session, sizeof b->session, "%s", c);
    if (tl_http_cookie(h, COOKIE, c, sizeof c))
        snprintf(b->binding, sizeof b->binding, "%s", c);
}

/* The login button, the provider's login as @p user, then the callback
 * asking for JSON (@p json) or a page; its response stays in @p h. */
static void journey(guest_ctx *ctx, guest_oidc *o, const char *user, browser *b,
                    bool json, tl_http *h)
{
    char cookie[600];
    cookies(b, cookie, sizeof cookie);
    tl_request(ctx, h, "POST", LOGIN "op/login/", cookie, NULL,
               "csrfmiddlewaretoken=" TL_CSRF, guest_oidc_view, o);
    ck_assert_msg(h->status == 302, "login POST: %d %s", h->status,
                  h->res_body ? h->res_body : "");
    char *auth = strdup(tl_http_res_header(h, "Location"));
    ck_assert_ptr_nonnull(auth);
    keep(b, h);
    tl_http_free(h);
    char cb[4096];
    ck_assert_msg(oidc_browser_login(auth, user, cb, sizeof cb) == 0,
                  "provider login at %s", auth);
    free(auth);
    const char *path = strstr(cb, LOGIN);
    ck_assert_msg(path != NULL, "callback %s", cb);
    cookies(b, cookie, sizeof cookie);
    tl_http_init(h, "GET", path);
    tl_http_add(h, "Host", "testserver");
    tl_http_add(h, "Cookie", cookie);
    if (json)
        tl_http_add(h, "Accept", "application/json");
    tl_http_run(ctx, h, guest_oidc_view, o);
    keep(b, h);
}

static void expect_outcome(const tl_http *h, const char *outcome,
                           const char *username)
{
    ck_assert_msg(h->status == 200, "callback: %d %s", h->status,
                  h->res_body ? h->res_body : "");
    char want[128];
    snprintf(want, sizeof want, "\"outcome\":\"%s\"", outcome);
    ck_assert_msg(strstr(h->res_body, want), "%s", h->res_body);
    snprintf(want, sizeof want, "\"username\":\"%s\"", username);
    ck_assert_msg(strstr(h->res_body, want), "%s", h->res_body);
    ck_assert_ptr_nonnull(strstr(h->res_body, "\"is_guest\":false"));
}

START_TEST(each_outcome_is_told_in_json)
{
    tl_drop_schema(SCHEMA);
    guest_ctx *ctx = tl_ctx(SCHEMA, NULL);
    guest_oidc *o = new_oidc(ctx);
    tl_http h;

    /* Anonymous, an identity nobody has: a new user. */
    browser first = {0};
    journey(ctx, o, "alice", &first, true, &h);
    expect_outcome(&h, "signed_up", "alice");
    tl_http_free(&h);
    int64_t alice = tl_whoami(ctx, first.session, NULL);
    ck_assert_int_gt(alice, 0);

    /* Anonymous again, the same identity: logged in as that user. */
    browser again = {0};
    journey(ctx, o, "alice", &again, true, &h);
    expect_outcome(&h, "logged_in", "alice");
    tl_http_free(&h);
    ck_assert_int_eq(tl_whoami(ctx, again.session, NULL), alice);

    /* A registered user adds an identity: linked to them. */
    int64_t uid = tl_new_user(ctx, "someone", TL_PASSWORD);
    browser reg = {0};
    tl_request(ctx, &h, "POST", "/accounts/login/", "csrftoken=" TL_CSRF, NULL,
               "username=someone&password=" TL_PASSWORD
               "&csrfmiddlewaretoken=" TL_CSRF,
               guest_login_view, NULL);
    ck_assert_int_eq(h.status, 302);
    keep(&reg, &h);
    tl_http_free(&h);
    journey(ctx, o, "bob", &reg, true, &h);
    expect_outcome(&h, "linked", "someone");
    tl_http_free(&h);
    ck_assert_int_eq(tl_whoami(ctx, reg.session, NULL), uid);
    ck_assert_int_eq(tl_scalar_in(SCHEMA, "SELECT count(*) FROM @.identities"),
                     2);

    /* The registered user unlinks it again, asking for JSON: the list
     * that is left. */
    char cookie[600], body[512];
    cookies(&reg, cookie, sizeof cookie);
    snprintf(body, sizeof body,
             "csrfmiddlewaretoken=" TL_CSRF "&issuer=%s&subject=%s",
             env("OIDC_ISSUER"), env("OIDC_SUB_BOB"));
    tl_http_init(&h, "POST", "/accounts/identities/");
    tl_http_add(&h, "Host", "testserver");
    tl_http_add(&h, "Cookie", cookie);
    tl_http_add(&h, "Accept", "application/json");
    tl_http_add(&h, "Content-Type", "application/x-www-form-urlencoded");
    h.body = body;
    tl_http_run(ctx, &h, guest_oidc_identities_view, o);
    ck_assert_msg(h.status == 200, "%d %s", h.status, h.res_body);
    ck_assert_msg(strstr(h.res_body, "Unlinked."), "%s", h.res_body);
    tl_http_free(&h);
    ck_assert_int_eq(tl_scalar_in(SCHEMA, "SELECT count(*) FROM @.identities"),
                     1);
    guest_oidc_free(o);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(a_deactivated_users_identity_is_refused)
{
    tl_drop_schema(SCHEMA);
    guest_ctx *ctx = tl_ctx(SCHEMA, NULL);
    guest_oidc *o = new_oidc(ctx);
    tl_http h;
    browser first = {0};
    journey(ctx, o, "alice", &first, false, &h);
    ck_assert_int_eq(h.status, 302);
    tl_http_free(&h);
    ck_assert_int_gt(tl_whoami(ctx, first.session, NULL), 0);
    ck_assert_int_eq(guest_user_set_active(ctx, "alice", false, NULL),
                     GUEST_OK);
    ck_assert_int_eq(tl_whoami(ctx, first.session, NULL), 0);

    browser b = {0};
    journey(ctx, o, "alice", &b, false, &h);
    ck_assert_int_eq(h.status, 403);
    ck_assert_msg(strstr(h.res_body, "disabled"), "%s", h.res_body);
    tl_http_free(&h);
    ck_assert_int_eq(tl_whoami(ctx, b.session, NULL), 0);
    /* Nobody was added or logged in. */
    ck_assert_int_eq(tl_scalar_in(SCHEMA, "SELECT count(*) FROM @.users"), 1);
    ck_assert_int_eq(tl_scalar_in(SCHEMA, "SELECT count(*) FROM @.sessions"),
                     0);
    guest_oidc_free(o);
    guest_ctx_free(ctx);
}
END_TEST

/* The buttons without a registry. */
static void buttons_of_none(guest_req *req, void *ud)
{
    guest_res_set_status(req, 200);
    *(guest_status *)ud = guest_oidc_write_buttons(req, NULL, NULL);
}

typedef struct with_registry {
    guest_oidc *o;
    guest_status st;
} with_registry;

static void buttons_of(guest_req *req, void *ud)
{
    with_registry *w = ud;
    guest_res_set_status(req, 200);
    w->st = guest_oidc_write_buttons(req, w->o, "/next/");
}

/* A provider configured with an issuer its discovery document does not
 * name (here with a trailing '/') is not that provider: the sign-in is
 * refused before the browser is sent anywhere. */
START_TEST(an_issuer_the_provider_does_not_name_is_refused)
{
    tl_drop_schema(SCHEMA);
    guest_ctx *ctx = tl_ctx(SCHEMA, NULL);
    guest_oidc_config cfg;
    guest_oidc_config_init(&cfg);
    cfg.public_url = "http://127.0.0.1";
    guest_oidc *o = NULL;
    guest_error err = {0};
    ck_assert_int_eq(guest_oidc_new(ctx, &cfg, &o, &err), GUEST_OK);

    /* No provider yet: no buttons, and no registry at all is refused. */
    with_registry w = {.o = o, .st = GUEST_ERR_DB};
    tl_http h;
    tl_http_init(&h, "GET", "/convert/");
    tl_http_run(ctx, &h, buttons_of, &w);
    ck_assert_int_eq(w.st, GUEST_OK);
    ck_assert_int_eq(h.status, 200);
    ck_assert(h.res_body == NULL || strstr(h.res_body, "<form") == NULL);
    tl_http_free(&h);
    guest_status none = GUEST_OK;
    tl_http_init(&h, "GET", "/convert/");
    tl_http_run(ctx, &h, buttons_of_none, &none);
    tl_http_free(&h);
    ck_assert_int_eq(none, GUEST_ERR_INVALID);

    char issuer[512];
    snprintf(issuer, sizeof issuer, "%s/", env("OIDC_ISSUER"));
    ck_assert_int_eq(guest_oidc_add_provider(o, "op", issuer,
                                             env("OIDC_CLIENT_ID"),
                                             env("OIDC_CLIENT_SECRET"), &err),
                     GUEST_OK);
    browser b = {0};
    char cookie[600];
    cookies(&b, cookie, sizeof cookie);
    tl_request(ctx, &h, "POST", LOGIN "op/login/", cookie, NULL,
               "csrfmiddlewaretoken=" TL_CSRF, guest_oidc_view, o);
    ck_assert_msg(h.status >= 500, "%d", h.status);
    ck_assert_ptr_null(tl_http_res_header(&h, "Location"));
    tl_http_free(&h);
    ck_assert_int_eq(tl_scalar_in(SCHEMA, "SELECT count(*) FROM @.users"), 0);
    guest_oidc_free(o);
    guest_ctx_free(ctx);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cov_oidc");
    TCase *tc = tcase_create("oidc");
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, each_outcome_is_told_in_json);
    tcase_add_test(tc, a_deactivated_users_identity_is_refused);
    tcase_add_test(tc, an_issuer_the_provider_does_not_name_is_refused);
    suite_add_tcase(s, tc);
    return tl_run(s);
}

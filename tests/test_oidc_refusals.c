/* What libguestuser-oidc's pages refuse, each with its status and no
 * change to the visitor: a query or form field sent twice, a form of
 * another type, a callback without state, without a live flow, without a
 * code or without the iss its provider promises; methods and visitors the
 * identities page does not serve. Against the real provider of the oidc
 * fixture where a live flow is needed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc_fail.h"
#include "guestuser/oidc.h"
#include "oidc_env.h"
#include "testlib.h"

#define SCHEMA "t_oidc_refusals"
#define LOGIN "/accounts/oidc/"
#define COOKIE "guestuser_oidc"

static guest_ctx *ctx;
static guest_oidc *o;

static void setup(void)
{
    tl_drop_schema(SCHEMA);
    ctx = tl_ctx(SCHEMA, NULL);
    guest_oidc_config cfg;
    guest_oidc_config_init(&cfg);
    cfg.public_url = "http://127.0.0.1";
    guest_error err = {0};
    ck_assert_int_eq(guest_oidc_new(ctx, &cfg, &o, &err), GUEST_OK);
    const char *issuer = oidc_env("OIDC_ISSUER");
    const char *id = oidc_env("OIDC_CLIENT_ID");
    const char *secret = oidc_env("OIDC_CLIENT_SECRET");
    ck_assert_msg(issuer && id && secret, "oidc fixture env %s",
                  oidc_env_file());
    ck_assert_int_eq(guest_oidc_add_provider(o, "op", issuer, id, secret, &err),
                     GUEST_OK);
}

static void teardown(void)
{
    guest_oidc_free(o);
    o = NULL;
    guest_ctx_free(ctx);
    ctx = NULL;
}

static long long flows(void)
{
    return tl_scalar_in(SCHEMA, "SELECT count(*) FROM @.flows");
}

/* One request to @p fn; JSON asked for when @p json. */
static void call(tl_http *h, guest_handler_fn fn, bool json, const char *method,
                 const char *target, const char *cookie, const char *ctype,
                 const char *body)
{
    tl_http_init(h, method, target);
    if (json)
        tl_http_add(h, "Accept", "application/json");
    if (cookie)
        tl_http_add(h, "Cookie", cookie);
    if (ctype || body)
        tl_http_add(h, "Content-Type",
                    ctype ? ctype : "application/x-www-form-urlencoded");
    h->body = body;
    tl_http_run(ctx, h, fn, o);
}

static void expect(guest_handler_fn fn, bool json, const char *method,
                   const char *target, const char *cookie, const char *ctype,
                   const char *body, int status, const char *text)
{
    tl_http h;
    call(&h, fn, json, method, target, cookie, ctype, body);
    ck_assert_msg(h.status == status, "%s %s: %d, not %d: %s", method, target,
                  h.status, status, h.res_body ? h.res_body : "");
    if (text)
        ck_assert_msg(h.res_body && strstr(h.res_body, text),
                      "%s %s: no \"%s\" in %s", method, target, text,
                      h.res_body ? h.res_body : "(none)");
    if (json)
        ck_assert_str_eq(tl_http_res_header(&h, "Content-Type"),
                         "application/json");
    tl_http_free(&h);
}

START_TEST(login_fields_sent_twice_or_in_another_type_are_refused)
{
    expect(guest_oidc_view, false, "GET", LOGIN "op/login/?next=/a&next=/b",
           NULL, NULL, NULL, 400, "sent twice");
    expect(guest_oidc_view, true, "POST", LOGIN "op/login/",
           "csrftoken=" TL_CSRF, "text/plain", "x", 415, NULL);
    expect(guest_oidc_view, false, "POST", LOGIN "op/login/",
           "csrftoken=" TL_CSRF, NULL,
           "csrfmiddlewaretoken=" TL_CSRF "&next=/a&next=/b", 400,
           "was sent more than once");
    ck_assert_int_eq(flows(), 0);
    /* each view on its own answers 404 for a provider it does not have */
    expect(guest_oidc_login_view, true, "GET", LOGIN "nope/login/", NULL, NULL,
           NULL, 404, NULL);
    expect(guest_oidc_callback_view, false, "GET", LOGIN "nope/callback/", NULL,
           NULL, NULL, 404, NULL);
    /* and nothing without a request */
    guest_oidc_login_view(NULL, o);
    guest_oidc_callback_view(NULL, o);
    guest_oidc_view(NULL, o);
}
END_TEST

/* A flow started with the provider; its state and the browser's
 * binding cookie ("guestuser_oidc=...") into @p state and @p binding. */
static void start(char *state, size_t state_size, char *binding,
                  size_t binding_size)
{
    tl_http h;
    call(&h, guest_oidc_view, false, "POST", LOGIN "op/login/",
         "csrftoken=" TL_CSRF, NULL, "csrfmiddlewaretoken=" TL_CSRF);
    ck_assert_msg(h.status == 302, "login POST: %d %s", h.status,
                  h.res_body ? h.res_body : "");
    const char *loc = tl_http_res_header(&h, "Location");
    const char *s = loc ? strstr(loc, "state=") : NULL;
    ck_assert_ptr_nonnull(s);
    s += strlen("state=");
    snprintf(state, state_size, "%.*s", (int)strcspn(s, "&"), s);
    ck_assert(tl_http_cookie(&h, COOKIE, binding, binding_size));
    tl_http_free(&h);
}

START_TEST(callbacks_without_state_flow_code_or_iss_are_refused)
{
    char cookie[512], target[512], state[128], binding[256];
    /* no state at all */
    expect(guest_oidc_view, false, "GET", LOGIN "op/callback/?code=x", NULL,
           NULL, NULL, 400, "only finishes a sign-in that was started here");
    /* a state this browser never started */
    snprintf(cookie, sizeof cookie, COOKIE "=%s",
             "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    expect(guest_oidc_view, true, "GET", LOGIN "op/callback/?state=s&code=x",
           cookie, NULL, NULL, 400, "has expired");

    /* a live flow, brought back without a code: refused, and used up */
    start(state, sizeof state, binding, sizeof binding);
    ck_assert_int_eq(flows(), 1);
    snprintf(target, sizeof target, LOGIN "op/callback/?state=%s", state);
    expect(guest_oidc_view, false, "GET", target, binding, NULL, NULL, 400,
           "could not be completed");
    ck_assert_int_eq(flows(), 0);

    /* the provider promises iss in its answer (RFC 9207): an answer
     * without it is refused before the code is exchanged */
    start(state, sizeof state, binding, sizeof binding);
    snprintf(target, sizeof target, LOGIN "op/callback/?state=%s&code=abc",
             state);
    expect(guest_oidc_view, false, "GET", target, binding, NULL, NULL, 400,
           "could not be completed");
    ck_assert_int_eq(flows(), 0);
    ck_assert_int_eq(tl_scalar_in(SCHEMA, "SELECT count(*) FROM @.users"), 0);
}
END_TEST

START_TEST(the_identities_page_serves_only_its_methods_and_users)
{
    expect(guest_oidc_identities_view, false, "DELETE", "/accounts/linked/",
           NULL, NULL, NULL, 405, NULL);
    /* a guest asking for JSON is told where to go */
    char cookie[400];
    tl_new_guest(ctx, cookie, sizeof cookie);
    expect(guest_oidc_identities_view, true, "GET", "/accounts/linked/", cookie,
           NULL, NULL, 403, "Create an account");
    /* a registered user: a form of another type, an unlink naming no
     * identity */
    tl_new_user(ctx, "ada", TL_PASSWORD);
    tl_http h;
    tl_request(ctx, &h, "POST", "/accounts/login/", "csrftoken=" TL_CSRF, NULL,
               "username=ada&password=" TL_PASSWORD
               "&csrfmiddlewaretoken=" TL_CSRF,
               guest_login_view, NULL);
    ck_assert_int_eq(h.status, 302);
    char session[256];
    ck_assert(tl_http_cookie(&h, "sessionid", session, sizeof session));
    tl_http_free(&h);
    snprintf(cookie, sizeof cookie, "%s; csrftoken=" TL_CSRF, session);
    expect(guest_oidc_identities_view, false, "POST", "/accounts/linked/",
           cookie, "text/plain", "x", 415, NULL);
    expect(guest_oidc_identities_view, true, "POST", "/accounts/linked/",
           cookie, NULL, "csrfmiddlewaretoken=" TL_CSRF "&issuer=x", 404,
           "No such linked account.");
    expect(guest_oidc_identities_view, true, "GET", "/accounts/linked/", cookie,
           NULL, NULL, 200, "\"identities\":[]");
    expect(guest_oidc_identities_view, false, "GET", "/accounts/linked/",
           cookie, NULL, NULL, 200, "No account of another site is linked");
}
END_TEST

START_TEST(settings_out_of_range_are_refused)
{
    guest_oidc_config cfg;
    guest_error err = {0};
    guest_oidc *other = (guest_oidc *)1;
    for (int i = 0; i < 6; i++) {
        guest_oidc_config_init(&cfg);
        cfg.public_url = "http://127.0.0.1";
        const char *named = NULL;
        switch (i) {
        case 0:
            cfg.login_url_prefix = "accounts/oidc";
            named = "login_url_prefix";
            break;
        case 1:
            cfg.login_url_prefix = "/a b/";
            named = "login_url_prefix";
            break;
        case 2:
            cfg.http_timeout_ms = 0;
            named = "http_timeout_ms";
            break;
        case 3:
            cfg.max_response_bytes = 1023;
            named = "max_response_bytes";
            break;
        case 4:
            cfg.concurrency = 0;
            named = "concurrency";
            break;
        default:
            cfg.wait_ms = 60001;
            named = "wait_ms";
            break;
        }
        ck_assert_int_eq(guest_oidc_new(ctx, &cfg, &other, &err),
                         GUEST_ERR_CONFIG);
        ck_assert_ptr_null(other);
        ck_assert_msg(strstr(err.message, named), "%d: %s", i, err.message);
    }
    ck_assert_int_eq(guest_oidc_add_provider(o, "x", NULL, "c", "s", &err),
                     GUEST_ERR_INVALID);
    ck_assert_int_eq(guest_oidc_provider_count(o), 1);
}
END_TEST

#ifndef TEST_NO_ALLOC_FAIL
/* ---- each of the component's allocations failing in turn
 * (alloc_fail.h: only the library's own count) ---- */

typedef struct page_case {
    guest_handler_fn fn;
    const char *method, *target, *body;
    bool json, user;
} page_case;

START_TEST(pages_fail_cleanly_at_every_allocation)
{
    char user[400], session[256];
    tl_new_user(ctx, "cy", TL_PASSWORD);
    tl_http h;
    tl_request(ctx, &h, "POST", "/accounts/login/", "csrftoken=" TL_CSRF, NULL,
               "username=cy&password=" TL_PASSWORD
               "&csrfmiddlewaretoken=" TL_CSRF,
               guest_login_view, NULL);
    ck_assert(tl_http_cookie(&h, "sessionid", session, sizeof session));
    tl_http_free(&h);
    snprintf(user, sizeof user, "%s; csrftoken=" TL_CSRF, session);
    const page_case pages[] = {
        {guest_oidc_view, "GET", LOGIN "op/login/?next=/n/", NULL, false,
         false},
        {guest_oidc_view, "GET", LOGIN "op/login/", NULL, true, false},
        {guest_oidc_view, "POST", LOGIN "op/login/",
         "csrfmiddlewaretoken=" TL_CSRF "&next=/n/", false, false},
        {guest_oidc_view, "POST", LOGIN "op/login/",
         "csrfmiddlewaretoken=" TL_CSRF, true, false},
        {guest_oidc_view, "GET", LOGIN "op/callback/?code=x", NULL, true,
         false},
        {guest_oidc_identities_view, "GET", "/accounts/linked/", NULL, false,
         true},
        {guest_oidc_identities_view, "GET", "/accounts/linked/", NULL, true,
         true},
        {guest_oidc_identities_view, "POST", "/accounts/linked/",
         "csrfmiddlewaretoken=" TL_CSRF "&issuer=x&subject=y", true, true},
    };
    for (size_t i = 0; i < sizeof pages / sizeof *pages; i++) {
        const page_case *p = &pages[i];
        const char *cookie = p->user ? user : "csrftoken=" TL_CSRF;
        call(&h, p->fn, p->json, p->method, p->target, cookie, NULL, p->body);
        int expected = h.status;
        tl_http_free(&h);
        for (long n = 0;; n++) {
            tl_http_init(&h, p->method, p->target);
            if (p->json)
                tl_http_add(&h, "Accept", "application/json");
            tl_http_add(&h, "Cookie", cookie);
            if (p->body)
                tl_http_add(&h, "Content-Type",
                            "application/x-www-form-urlencoded");
            h.body = p->body;
            guest_req *req = NULL;
            alloc_fail_arm(n);
            /* an adapter answers 500 when it gets no request */
            if (guest_req_new(ctx, tl_http_ops(), &h, &req) == GUEST_OK) {
                p->fn(req, o);
                guest_req_free(req);
            } else {
                h.status = 500;
            }
            bool hit = alloc_fail_disarm();
            ck_assert_msg(h.status == expected || h.status >= 500,
                          "%s %s, allocation %ld: %d, not %d", p->method,
                          p->target, n, h.status, expected);
            tl_http_free(&h);
            if (!hit)
                break;
        }
    }
}
END_TEST
#endif

int main(void)
{
    Suite *s = suite_create("oidc_refusals");
    TCase *t = tcase_create("refusals");
    tcase_set_timeout(t, 120);
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, login_fields_sent_twice_or_in_another_type_are_refused);
    tcase_add_test(t, callbacks_without_state_flow_code_or_iss_are_refused);
    tcase_add_test(t, the_identities_page_serves_only_its_methods_and_users);
    tcase_add_test(t, settings_out_of_range_are_refused);
#ifndef TEST_NO_ALLOC_FAIL
    tcase_add_test(t, pages_fail_cleanly_at_every_allocation);
#endif
    suite_add_tcase(s, t);
    return tl_run(s);
}

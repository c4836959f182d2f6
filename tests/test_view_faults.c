/* The ready-made views when the database fails under them (the fault hook
 * of src/store/faults.c): an outage at the session lookup or at a view's
 * own statement answers 503, with Retry-After in JSON mode, and changes
 * nothing; a site without mail settings answers the reset form with 503
 * too. Each view is reached through the in-process adapter. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "testlib.h"

#define SCHEMA "t_view_faults"
#define TOKEN "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
#define CSRF_FIELD "csrfmiddlewaretoken=" TL_CSRF

static guest_ctx *ctx;

static void mail_on(guest_config *c)
{
    c->mail_from = "Test site <noreply@example.test>";
    c->public_url = "https://example.test/";
}

static void setup(void)
{
    guest__fault_arm(NULL);
    tl_drop_schema(SCHEMA);
    ctx = tl_ctx(SCHEMA, mail_on);
}

static void teardown(void)
{
    guest__fault_arm(NULL);
    guest_ctx_free(ctx);
    ctx = NULL;
}

/* The next statement whose name or text holds @p match reports that the
 * server is going away (an outage, SQLSTATE 57P01). */
static void outage_at(const char *match)
{
    const guest__fault f = {.kind = GUEST__FAULT_SQLSTATE,
                            .sqlstate = "57P01",
                            .match = match,
                            .count = 1};
    guest__fault_arm(&f);
}

/* One request; its status, and in JSON mode the Retry-After checked. */
static int run(guest_handler_fn fn, bool json, const char *method,
               const char *target, const char *cookie, const char *body)
{
    tl_http h;
    tl_http_init(&h, method, target);
    if (json)
        tl_http_add(&h, "Accept", "application/json");
    if (cookie)
        tl_http_add(&h, "Cookie", cookie);
    if (body)
        tl_http_add(&h, "Content-Type", "application/x-www-form-urlencoded");
    h.body = body;
    tl_http_run(ctx, &h, fn, NULL);
    int status = h.status;
    if (status == 503) {
        const char *after = tl_http_res_header(&h, "Retry-After");
        ck_assert_ptr_nonnull(after);
        ck_assert_int_gt(atoi(after), 0);
    }
    tl_http_free(&h);
    return status;
}

/* "sessionid=...; csrftoken=..." of a logged-in registered user. */
static void user_cookie(const char *name, char *cookie, size_t size)
{
    tl_new_user(ctx, name, TL_PASSWORD);
    char body[256];
    snprintf(body, sizeof body,
             "username=%s&password=" TL_PASSWORD "&" CSRF_FIELD, name);
    tl_http h;
    tl_request(ctx, &h, "POST", "/accounts/login/", "csrftoken=" TL_CSRF, NULL,
               body, guest_login_view, NULL);
    ck_assert_int_eq(h.status, 302);
    char session[256];
    ck_assert(tl_http_cookie(&h, "sessionid", session, sizeof session));
    tl_http_free(&h);
    tl_cookie_header(cookie, size, session, true);
}

typedef struct view_case {
    guest_handler_fn fn;
    const char *target;
} view_case;

START_TEST(an_outage_at_the_session_lookup_is_503_on_every_view)
{
    char cookie[400];
    tl_new_guest(ctx, cookie, sizeof cookie);
    const view_case views[] = {
        {guest_login_view, "/accounts/login/"},
        {guest_convert_view, "/convert/"},
        {guest_password_change_view, "/accounts/password/change/"},
        {guest_password_reset_view, "/accounts/password/reset/"},
        {guest_password_reset_confirm_view,
         "/accounts/password/reset/" TOKEN "/"},
        {guest_email_view, "/accounts/email/"},
        {guest_email_verify_view, "/accounts/email/verify/" TOKEN "/"},
    };
    for (size_t i = 0; i < sizeof views / sizeof *views; i++) {
        for (int json = 0; json < 2; json++) {
            outage_at("guest_resolve");
            ck_assert_msg(run(views[i].fn, json, "GET", views[i].target, cookie,
                              NULL) == 503,
                          "%s (json %d)", views[i].target, json);
            ck_assert_uint_eq(guest__fault_fired(), 1);
        }
    }
    /* the guest is still there, and still served */
    bool is_guest = false;
    ck_assert_int_gt(tl_whoami(ctx, cookie, &is_guest), 0);
    ck_assert(is_guest);
}
END_TEST

START_TEST(an_outage_at_a_views_own_statement_is_503)
{
    char cookie[400];
    user_cookie("ada", cookie, sizeof cookie);
    tl_exec_in(SCHEMA, "UPDATE @.users SET email = 'ada' || chr(64) ||"
                       " 'example.test', email_verified_at = now()");
    for (int json = 0; json < 2; json++) {
        /* the reset form's lookup of the address */
        outage_at("lower(u.email) = lower($1)");
        ck_assert_int_eq(run(guest_password_reset_view, json, "POST",
                             "/accounts/password/reset/", cookie,
                             "email=ada%40example.test&" CSRF_FIELD),
                         503);
        ck_assert_uint_eq(guest__fault_fired(), 1);
        /* the reset and verification links' check of their token */
        outage_at("SELECT u.username FROM");
        ck_assert_int_eq(run(guest_password_reset_confirm_view, json, "GET",
                             "/accounts/password/reset/" TOKEN "/", cookie,
                             NULL),
                         503);
        ck_assert_uint_eq(guest__fault_fired(), 1);
        outage_at("SELECT u.username FROM");
        ck_assert_int_eq(run(guest_email_verify_view, json, "GET",
                             "/accounts/email/verify/" TOKEN "/", cookie, NULL),
                         503);
        ck_assert_uint_eq(guest__fault_fired(), 1);
        /* the address page's read of the current address */
        outage_at("coalesce(email, '')");
        ck_assert_int_eq(run(guest_email_view, json, "GET", "/accounts/email/",
                             cookie, NULL),
                         503);
        ck_assert_uint_eq(guest__fault_fired(), 1);
    }
    /* no mail was queued, no link made */
    ck_assert_int_eq(
        tl_scalar_in(SCHEMA, "SELECT count(*) FROM @.email_tokens"), 0);
    /* and with the database back, the pages are served */
    ck_assert_int_eq(
        run(guest_email_view, false, "GET", "/accounts/email/", cookie, NULL),
        200);
    ck_assert_int_eq(run(guest_password_reset_confirm_view, false, "GET",
                         "/accounts/password/reset/" TOKEN "/", cookie, NULL),
                     400); /* a link that was never sent */
}
END_TEST

START_TEST(a_site_without_mail_settings_cannot_send_a_reset)
{
    guest_ctx_free(ctx);
    ctx = tl_ctx(SCHEMA, NULL);
    tl_new_user(ctx, "bea", TL_PASSWORD);
    tl_exec_in(SCHEMA, "UPDATE @.users SET email = 'bea' || chr(64) ||"
                       " 'example.test', email_verified_at = now()");
    for (int json = 0; json < 2; json++) {
        tl_http h;
        tl_http_init(&h, "POST", "/accounts/password/reset/");
        if (json)
            tl_http_add(&h, "Accept", "application/json");
        tl_http_add(&h, "Cookie", "csrftoken=" TL_CSRF);
        tl_http_add(&h, "Content-Type", "application/x-www-form-urlencoded");
        h.body = "email=bea%40example.test&" CSRF_FIELD;
        tl_http_run(ctx, &h, guest_password_reset_view, NULL);
        ck_assert_int_eq(h.status, 503);
        ck_assert_ptr_nonnull(strstr(h.res_body, "cannot send mail"));
        tl_http_free(&h);
    }
    ck_assert_int_eq(
        tl_scalar_in(SCHEMA, "SELECT count(*) FROM @.email_tokens"), 0);
}
END_TEST

START_TEST(logout_and_the_success_page_in_json_and_under_an_outage)
{
    char cookie[400];
    user_cookie("cy", cookie, sizeof cookie);
    /* the page after a conversion, in JSON: the user */
    tl_http h;
    tl_http_init(&h, "GET", "/convert/success/");
    tl_http_add(&h, "Accept", "application/json");
    tl_http_add(&h, "Cookie", cookie);
    tl_http_run(ctx, &h, guest_convert_success_view, NULL);
    ck_assert_int_eq(h.status, 200);
    ck_assert_ptr_nonnull(strstr(h.res_body, "\"cy\""));
    tl_http_free(&h);
    outage_at("guest_resolve");
    ck_assert_int_eq(run(guest_convert_success_view, true, "GET",
                         "/convert/success/", cookie, NULL),
                     503);
    /* a logout whose session cannot be deleted: 503, still logged in */
    outage_at("sessions WHERE token_hash = $1");
    ck_assert_int_eq(run(guest_logout_view, true, "POST", "/accounts/logout/",
                         cookie, CSRF_FIELD),
                     503);
    ck_assert_uint_eq(guest__fault_fired(), 1);
    bool is_guest = true;
    ck_assert_int_gt(tl_whoami(ctx, cookie, &is_guest), 0);
    ck_assert(!is_guest);
    /* then in JSON: no user */
    tl_http_init(&h, "POST", "/accounts/logout/");
    tl_http_add(&h, "Accept", "application/json");
    tl_http_add(&h, "Cookie", cookie);
    tl_http_add(&h, "Content-Type", "application/x-www-form-urlencoded");
    h.body = CSRF_FIELD;
    tl_http_run(ctx, &h, guest_logout_view, NULL);
    ck_assert_int_eq(h.status, 200);
    ck_assert_str_eq(h.res_body, "{\"user\":null}\n");
    tl_http_free(&h);
    ck_assert_int_eq(tl_whoami(ctx, cookie, NULL), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("view_faults");
    TCase *t = tcase_create("views");
    tcase_set_timeout(t, 120);
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, an_outage_at_the_session_lookup_is_503_on_every_view);
    tcase_add_test(t, an_outage_at_a_views_own_statement_is_503);
    tcase_add_test(t, a_site_without_mail_settings_cannot_send_a_reset);
    tcase_add_test(t, logout_and_the_success_page_in_json_and_under_an_outage);
    suite_add_tcase(s, t);
    return tl_run(s);
}

/* E-mail on accounts at sign-up and sign-in, against the fixture database:
 * signup_email off, optional and required (HTML, JSON and
 * guest_convert_email), and login_with_email (a verified address in place
 * of the username, an unverified one never, the same round trips for known
 * and unknown addresses). */
#include <stdio.h>
#include <string.h>

#include "store/store.h"
#include "testlib.h"

#define SCHEMA "t_email_signup"

static void setup(void)
{
    tl_drop_schema(SCHEMA);
}

static void mail_on(guest_config *c)
{
    c->mail_from = "Test site <noreply@example.test>";
    c->public_url = "https://example.test/";
}

static void login_with_email_on(guest_config *c)
{
    mail_on(c);
    c->login_with_email = true;
}

/* tl_exec_in() reads every '@' as the schema: the address goes in with
 * chr(64) for its '@'. */
static void set_address(int64_t id, const char *email, bool verified)
{
    const char *at = strchr(email, '@');
    char sql[512];
    snprintf(sql, sizeof sql,
             "UPDATE @.users SET email = '%.*s' || chr(64) || '%s',"
             " email_verified_at = %s WHERE id = %lld",
             (int)(at - email), email, at + 1, verified ? "now()" : "NULL",
             (long long)id);
    tl_exec_in(SCHEMA, sql);
}

static bool can_log_in(guest_ctx *ctx, const char *name, const char *password)
{
    tl_http h;
    char body[256];
    snprintf(body, sizeof body,
             "username=%s&password=%s&csrfmiddlewaretoken=" TL_CSRF, name,
             password);
    tl_request(ctx, &h, "POST", "/accounts/login/", "csrftoken=" TL_CSRF, NULL,
               body, guest_login_view, NULL);
    bool ok = h.status == 302;
    tl_http_free(&h);
    return ok;
}

static void mode_optional(guest_config *c)
{
    mail_on(c);
    c->signup_email = GUEST_EMAIL_OPTIONAL;
}

static void mode_required(guest_config *c)
{
    mail_on(c);
    c->signup_email = GUEST_EMAIL_REQUIRED;
}

static void required_no_mail(guest_config *c)
{
    c->signup_email = GUEST_EMAIL_REQUIRED;
}

static long long count(const char *sql)
{
    return tl_scalar_in(SCHEMA, sql);
}

/* POST /convert/ as a new guest with @p extra appended to the form;
 * the status, and the page into @p page when given. */
static int convert_post(guest_ctx *ctx, const char *username, const char *extra,
                        char *page, size_t size)
{
    char session[128], cookie[256], body[512];
    tl_new_guest(ctx, session, sizeof session);
    snprintf(cookie, sizeof cookie, "%s; csrftoken=" TL_CSRF, session);
    snprintf(body, sizeof body,
             "username=%s&password1=" TL_PASSWORD "&password2=" TL_PASSWORD
             "&csrfmiddlewaretoken=" TL_CSRF "%s",
             username, extra);
    tl_http h;
    tl_request(ctx, &h, "GET", "/convert/", cookie, NULL, NULL,
               guest_convert_view, NULL);
    if (page && size) {
        snprintf(page, size, "%s", h.res_body ? h.res_body : "");
    }
    tl_http_free(&h);
    tl_request(ctx, &h, "POST", "/convert/", cookie, NULL, body,
               guest_convert_view, NULL);
    int status = h.status;
    if (page && size && status != 302)
        snprintf(page, size, "%s", h.res_body ? h.res_body : "");
    tl_http_free(&h);
    return status;
}

typedef struct api_call {
    const char *username, *email;
    guest_form_errors errors;
    guest_status st;
} api_call;

static void call_convert(guest_req *req, void *ud)
{
    api_call *c = ud;
    c->st = guest_convert_email(req, c->username, c->email, TL_PASSWORD,
                                TL_PASSWORD, &c->errors, NULL);
}

/* guest_convert_email() as a new guest. */
static guest_status api_convert(guest_ctx *ctx, api_call *call)
{
    char session[128];
    tl_new_guest(ctx, session, sizeof session);
    tl_http h;
    tl_http_init(&h, "POST", "/api/");
    tl_http_add(&h, "Cookie", session);
    tl_http_run(ctx, &h, call_convert, call);
    tl_http_free(&h);
    return call->st;
}

START_TEST(signup_email_off_asks_nothing)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, mail_on);
    static char page[16384];
    ck_assert_int_eq(convert_post(ctx, "fay", "&email=fay%40example.test", page,
                                  sizeof page),
                     302);
    ck_assert_int_eq(count("SELECT count(*) FROM @.users WHERE email IS NOT"
                           " NULL"),
                     0);
    ck_assert_int_eq(count("SELECT count(*) FROM @.outbox"), 0);
    ck_assert_ptr_null(strstr(page, "name=\"email\""));
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(signup_email_optional)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, mode_optional);
    static char page[16384];
    /* the form shows the field, not required; empty is fine */
    ck_assert_int_eq(convert_post(ctx, "gus", "&email=", page, sizeof page),
                     302);
    ck_assert_ptr_nonnull(strstr(page, "name=\"email\""));
    ck_assert_int_eq(count("SELECT count(*) FROM @.outbox"), 0);
    /* given: stored unverified, a verification mail queued */
    ck_assert_int_eq(
        convert_post(ctx, "hal", "&email=Hal%40Example.test", NULL, 0), 302);
    ck_assert_int_eq(count("SELECT count(*) FROM @.users WHERE username ="
                           " 'hal' AND lower(email) = 'hal' || chr(64) ||"
                           " 'example.test' AND email_verified_at IS NULL"),
                     1);
    ck_assert_int_eq(count("SELECT count(*) FROM @.outbox"), 1);
    ck_assert_int_eq(count("SELECT count(*) FROM @.email_tokens"), 1);
    /* a taken username: nothing stored, no mail */
    ck_assert_int_eq(
        convert_post(ctx, "hal", "&email=other%40example.test", NULL, 0), 200);
    ck_assert_int_eq(count("SELECT count(*) FROM @.outbox"), 1);
    /* the address taken, whatever its case */
    ck_assert_int_eq(convert_post(ctx, "ida", "&email=HAL%40example.TEST", page,
                                  sizeof page),
                     200);
    ck_assert_ptr_nonnull(
        strstr(page, "A user with that email address already exists."));
    ck_assert_int_eq(count("SELECT count(*) FROM @.outbox"), 1);
    /* malformed */
    ck_assert_int_eq(convert_post(ctx, "ida", "&email=nope", page, sizeof page),
                     200);
    ck_assert_ptr_nonnull(strstr(page, "Enter a valid email address."));
    ck_assert_int_eq(count("SELECT count(*) FROM @.users WHERE username ="
                           " 'ida'"),
                     0);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(signup_email_required)
{
    /* a mode that is none of the three is refused */
    guest_config bad;
    tl_config(&bad, SCHEMA);
    bad.signup_email = (guest_email_mode)7;
    guest_ctx *none = NULL;
    guest_error err;
    ck_assert_int_eq(guest_ctx_new(&bad, &none, &err), GUEST_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(err.message, "signup_email"));
    guest_ctx *ctx = tl_ctx(SCHEMA, mode_required);
    static char page[16384];
    ck_assert_int_eq(convert_post(ctx, "jo", "", page, sizeof page), 200);
    ck_assert_ptr_nonnull(strstr(page, "This field is required."));
    ck_assert_int_eq(count("SELECT count(*) FROM @.users WHERE username ="
                           " 'jo'"),
                     0);
    ck_assert_int_eq(
        convert_post(ctx, "jo", "&email=jo%40example.test", NULL, 0), 302);
    ck_assert_int_eq(count("SELECT count(*) FROM @.outbox"), 1);
    /* JSON */
    char session[128], cookie[256];
    tl_new_guest(ctx, session, sizeof session);
    snprintf(cookie, sizeof cookie, "%s; csrftoken=" TL_CSRF, session);
    tl_http h;
    tl_http_init(&h, "POST", "/convert/");
    tl_http_add(&h, "Host", "testserver");
    tl_http_add(&h, "Accept", "application/json");
    tl_http_add(&h, "Cookie", cookie);
    tl_http_add(&h, "X-CSRFToken", TL_CSRF);
    tl_http_add(&h, "Content-Type", "application/json");
    h.body = "{\"username\": \"kim\", \"password1\": \"" TL_PASSWORD
             "\", \"password2\": \"" TL_PASSWORD
             "\", \"email\": \"kim@example.test\"}";
    tl_http_run(ctx, &h, guest_convert_view, NULL);
    ck_assert_int_eq(h.status, 200);
    tl_http_free(&h);
    ck_assert_int_eq(count("SELECT count(*) FROM @.users WHERE username ="
                           " 'kim' AND email IS NOT NULL"),
                     1);
    ck_assert_int_eq(count("SELECT count(*) FROM @.outbox"), 2);
    guest_ctx_free(ctx);
}
END_TEST

/* guest_convert_email(), and an address with no mail settings. */
START_TEST(convert_email_api)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, mode_required);
    api_call call = {.username = "lu", .email = "lu@example.test"};
    ck_assert_int_eq(api_convert(ctx, &call), GUEST_OK);
    ck_assert_int_eq(count("SELECT count(*) FROM @.users WHERE username ="
                           " 'lu' AND email IS NOT NULL"),
                     1);
    ck_assert_int_eq(count("SELECT count(*) FROM @.outbox"), 1);
    call = (api_call){.username = "mo", .email = ""};
    ck_assert_int_eq(api_convert(ctx, &call), GUEST_ERR_VALIDATION);
    ck_assert_str_eq(guest_form_errors_get(&call.errors, "email"),
                     "This field is required.");
    guest_ctx_free(ctx);
    ctx = tl_ctx(SCHEMA, required_no_mail);
    api_call call2 = {.username = "ned", .email = "ned@example.test"};
    ck_assert_int_eq(api_convert(ctx, &call2), GUEST_ERR_CONFIG);
    guest_ctx_free(ctx);
}
END_TEST

/* login_with_email: a verified address (any case) in place of the name;
 * an unverified one never; off, an address is only a name. A refusal
 * costs the same round trips for a known, an unverified and an unknown
 * address. */
START_TEST(login_with_a_verified_address)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, login_with_email_on);
    int64_t dee = tl_new_user(ctx, "dee", TL_PASSWORD);
    set_address(dee, "dee@example.test", true);
    int64_t eve = tl_new_user(ctx, "eve", TL_PASSWORD);
    set_address(eve, "eve@example.test", false);
    ck_assert(can_log_in(ctx, "DEE@example.test", TL_PASSWORD));
    ck_assert(can_log_in(ctx, "dee", TL_PASSWORD));
    ck_assert(!can_log_in(ctx, "dee@example.test", "Wrong-Quill-11"));
    ck_assert(!can_log_in(ctx, "eve@example.test", TL_PASSWORD));
    ck_assert(!can_log_in(ctx, "nobody@example.test", TL_PASSWORD));
    const char *asks[] = {"dee@example.test", "eve@example.test",
                          "who@example.test"};
    unsigned long trips[3];
    for (int i = 0; i < 3; i++) {
        unsigned long before = guest__db_round_trips;
        ck_assert(!can_log_in(ctx, asks[i], "Wrong-Quill-12"));
        trips[i] = guest__db_round_trips - before;
    }
    ck_assert_uint_eq(trips[0], trips[1]);
    ck_assert_uint_eq(trips[0], trips[2]);
    guest_ctx_free(ctx);
    /* off: an address is a name nobody has */
    ctx = tl_ctx(SCHEMA, mail_on);
    ck_assert(!can_log_in(ctx, "dee@example.test", TL_PASSWORD));
    ck_assert(can_log_in(ctx, "dee", TL_PASSWORD));
    guest_ctx_free(ctx);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("email_signup");
    TCase *t = tcase_create("db");
    tcase_add_checked_fixture(t, setup, NULL);
    tcase_set_timeout(t, 120);
    tcase_add_test(t, login_with_a_verified_address);
    tcase_add_test(t, signup_email_off_asks_nothing);
    tcase_add_test(t, signup_email_optional);
    tcase_add_test(t, signup_email_required);
    tcase_add_test(t, convert_email_api);
    suite_add_tcase(s, t);
    return tl_run(s);
}

/* A registered user changes their password: guest_password_change() and
 * the ready-made page, against the fixture database. Other sessions end,
 * this one continues under a new cookie, the CSRF secret is renewed; every
 * refusal changes nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "testlib.h"

#define SCHEMA "t_pwchange"
#define PATH "/accounts/password/"
#define NEW_PASSWORD "Brand-New-Horse-77"
#define MSG_OLD_WRONG                                                          \
    "Your old password was entered incorrectly. Please enter it again."

static void setup(void)
{
    tl_drop_schema(SCHEMA);
}

static long long count(const char *sql)
{
    return tl_scalar_in(SCHEMA, sql);
}

static void login_handler(guest_req *req, void *ud)
{
    *(guest_status *)ud = guest_login(req, "alice", TL_PASSWORD, NULL, NULL);
}

/* A login of alice: "sessionid=..." into @p cookie. */
static void login(guest_ctx *ctx, char *cookie, size_t size)
{
    tl_http h;
    guest_status st = GUEST_ERR_INVALID;
    tl_request(ctx, &h, "POST", "/login/", NULL, NULL, NULL, login_handler,
               &st);
    ck_assert_int_eq(st, GUEST_OK);
    ck_assert(tl_http_cookie(&h, "sessionid", cookie, size));
    tl_http_free(&h);
}

/* alice, logged in twice: this browser and another one. */
typedef struct alice {
    int64_t id;
    char session[128], other[128];
    char cookie[300]; /* session + the fixed CSRF cookie */
    char hash[GUEST_PASSWORD_HASH_BUF];
} alice;

static void stored_hash(char *out, size_t size)
{
    tl_text_in(SCHEMA, "SELECT password FROM @.users WHERE username = 'alice'",
               out, size);
}

static void new_alice(guest_ctx *ctx, alice *a)
{
    a->id = tl_new_user(ctx, "alice", TL_PASSWORD);
    login(ctx, a->session, sizeof a->session);
    login(ctx, a->other, sizeof a->other);
    tl_cookie_header(a->cookie, sizeof a->cookie, a->session, true);
    stored_hash(a->hash, sizeof a->hash);
}

/* Nothing changed: same hash, both sessions alive. */
static void assert_unchanged(guest_ctx *ctx, const alice *a)
{
    char now[GUEST_PASSWORD_HASH_BUF];
    stored_hash(now, sizeof now);
    ck_assert_str_eq(now, a->hash);
    ck_assert_int_eq(tl_whoami(ctx, a->session, NULL), a->id);
    ck_assert_int_eq(tl_whoami(ctx, a->other, NULL), a->id);
}

static void post(guest_ctx *ctx, tl_http *h, const char *cookie,
                 const char *target, const char *old, const char *new1,
                 const char *new2)
{
    char body[512];
    snprintf(body, sizeof body,
             "old_password=%s&new_password1=%s&new_password2=%s"
             "&csrfmiddlewaretoken=" TL_CSRF,
             old, new1, new2);
    tl_request(ctx, h, "POST", target, cookie, NULL, body,
               guest_password_change_view, NULL);
}

START_TEST(get_shows_the_form)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, NULL);
    alice a;
    new_alice(ctx, &a);
    tl_http h;
    tl_request(ctx, &h, "GET", PATH "?next=/notes/", a.session, NULL, NULL,
               guest_password_change_view, NULL);
    ck_assert_int_eq(h.status, 200);
    ck_assert_ptr_nonnull(strstr(h.res_body, "Password change"));
    const char *names[] = {"old_password", "new_password1", "new_password2",
                           "csrfmiddlewaretoken", "next"};
    for (size_t i = 0; i < 5; i++) {
        char key[64];
        snprintf(key, sizeof key, "name=\"%s\"", names[i]);
        ck_assert_msg(strstr(h.res_body, key), "no field %s", names[i]);
    }
    char value[128];
    ck_assert(tl_input_value(h.res_body, "next", value, sizeof value));
    ck_assert_str_eq(value, "/notes/");
    ck_assert(tl_http_cookie(&h, "csrftoken", value, sizeof value));
    ck_assert_ptr_nonnull(
        strstr(tl_http_res_header(&h, "Cache-Control"), "no-store"));
    tl_http_free(&h);
    /* 405 for other methods */
    tl_request(ctx, &h, "PUT", PATH, a.session, NULL, NULL,
               guest_password_change_view, NULL);
    ck_assert_int_eq(h.status, 405);
    ck_assert_str_eq(tl_http_res_header(&h, "Allow"), "GET, HEAD, POST");
    tl_http_free(&h);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(anonymous_and_guests_are_sent_away)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, NULL);
    const guest_config *c = guest_ctx_config(ctx);
    tl_http h;
    char want[256];
    tl_request(ctx, &h, "GET", PATH, NULL, NULL, NULL,
               guest_password_change_view, NULL);
    ck_assert_int_eq(h.status, 302);
    snprintf(want, sizeof want, "%s?next=/accounts/password/", c->login_url);
    ck_assert_str_eq(tl_http_res_header(&h, "Location"), want);
    tl_http_free(&h);

    char gcookie[128], both[300];
    tl_new_guest(ctx, gcookie, sizeof gcookie);
    tl_cookie_header(both, sizeof both, gcookie, true);
    post(ctx, &h, both, PATH, TL_PASSWORD, NEW_PASSWORD, NEW_PASSWORD);
    ck_assert_int_eq(h.status, 302);
    snprintf(want, sizeof want, "%s?next=/accounts/password/", c->convert_url);
    ck_assert_str_eq(tl_http_res_header(&h, "Location"), want);
    tl_http_free(&h);
    ck_assert_int_eq(count("SELECT count(*) FROM @.users WHERE password = ''"),
                     1);

    /* JSON: 403 with where to go */
    tl_http_init(&h, "GET", PATH);
    tl_http_add(&h, "Host", "testserver");
    tl_http_add(&h, "Accept", "application/json");
    tl_http_run(ctx, &h, guest_password_change_view, NULL);
    ck_assert_int_eq(h.status, 403);
    json_t *j = json_loads(h.res_body, 0, NULL);
    ck_assert_ptr_nonnull(j);
    snprintf(want, sizeof want, "%s?next=/accounts/password/", c->login_url);
    ck_assert_str_eq(json_string_value(json_object_get(j, "redirect")), want);
    ck_assert(json_is_null(json_object_get(j, "user")));
    json_decref(j);
    tl_http_free(&h);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(change_ends_other_sessions_and_rotates_this_one)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, NULL);
    alice a;
    new_alice(ctx, &a);
    tl_new_user(ctx, "bob", TL_PASSWORD);
    tl_http h;
    post(ctx, &h, a.cookie, PATH, TL_PASSWORD, NEW_PASSWORD, NEW_PASSWORD);
    ck_assert_int_eq(h.status, 200);
    ck_assert_ptr_nonnull(strstr(h.res_body, "Password change successful"));
    char renewed[128], csrf[128];
    ck_assert(tl_http_cookie(&h, "sessionid", renewed, sizeof renewed));
    ck_assert(tl_http_cookie(&h, "csrftoken", csrf, sizeof csrf));
    tl_http_free(&h);
    ck_assert_str_ne(renewed, a.session);
    ck_assert_str_ne(csrf, "csrftoken=" TL_CSRF);
    /* this browser goes on under the new cookie; every other session,
     * and this one's old token, are gone */
    ck_assert_int_eq(tl_whoami(ctx, renewed, NULL), a.id);
    ck_assert_int_eq(tl_whoami(ctx, a.session, NULL), 0);
    ck_assert_int_eq(tl_whoami(ctx, a.other, NULL), 0);
    ck_assert_int_eq(count("SELECT count(*) FROM @.sessions"), 1);
    char now[GUEST_PASSWORD_HASH_BUF];
    stored_hash(now, sizeof now);
    ck_assert(guest_password_verify(NEW_PASSWORD, now));
    ck_assert(!guest_password_verify(TL_PASSWORD, now));
    /* bob was not touched */
    ck_assert_int_eq(count("SELECT count(*) FROM @.users"
                           " WHERE username = 'bob' AND password LIKE"
                           " 'pbkdf2_sha256$1000$%'"),
                     1);

    /* with a safe `next`: 302 there; an unsafe one is ignored */
    char cookie[300];
    tl_cookie_header(cookie, sizeof cookie, renewed, true);
    post(ctx, &h, cookie, PATH "?next=/notes/", NEW_PASSWORD, TL_PASSWORD,
         TL_PASSWORD);
    ck_assert_int_eq(h.status, 302);
    ck_assert_str_eq(tl_http_res_header(&h, "Location"), "/notes/");
    ck_assert(tl_http_cookie(&h, "sessionid", renewed, sizeof renewed));
    tl_http_free(&h);
    tl_cookie_header(cookie, sizeof cookie, renewed, true);
    post(ctx, &h, cookie, PATH "?next=https://evil.example/", TL_PASSWORD,
         NEW_PASSWORD, NEW_PASSWORD);
    ck_assert_int_eq(h.status, 200);
    ck_assert_ptr_nonnull(strstr(h.res_body, "Password change successful"));
    tl_http_free(&h);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(refusals_change_nothing)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, NULL);
    alice a;
    new_alice(ctx, &a);
    tl_http h;

    /* wrong old password: the form again with the message */
    post(ctx, &h, a.cookie, PATH, "Wrong-Horse-00", NEW_PASSWORD, NEW_PASSWORD);
    ck_assert_int_eq(h.status, 200);
    ck_assert_ptr_nonnull(strstr(h.res_body, MSG_OLD_WRONG));
    char none[128];
    ck_assert(!tl_http_cookie(&h, "sessionid", none, sizeof none));
    tl_http_free(&h);
    assert_unchanged(ctx, &a);

    /* the new ones differ */
    post(ctx, &h, a.cookie, PATH, TL_PASSWORD, NEW_PASSWORD, "Other-Horse-11");
    ck_assert_int_eq(h.status, 200);
    ck_assert_ptr_nonnull(
        strstr(h.res_body, "The two password fields didn&#x27;t match."));
    ck_assert_ptr_null(strstr(h.res_body, MSG_OLD_WRONG));
    tl_http_free(&h);
    assert_unchanged(ctx, &a);

    /* a validator refuses; with a wrong old password too, both are told */
    post(ctx, &h, a.cookie, PATH, "Wrong-Horse-00", "123", "123");
    ck_assert_int_eq(h.status, 200);
    ck_assert_ptr_nonnull(strstr(h.res_body, "This password is too short."));
    ck_assert_ptr_nonnull(
        strstr(h.res_body, "This password is entirely numeric."));
    ck_assert_ptr_nonnull(strstr(h.res_body, MSG_OLD_WRONG));
    tl_http_free(&h);
    /* similar to the username */
    post(ctx, &h, a.cookie, PATH, TL_PASSWORD, "alice7Qz", "alice7Qz");
    ck_assert_ptr_nonnull(strstr(h.res_body, "too similar to the username"));
    tl_http_free(&h);
    /* missing fields */
    post(ctx, &h, a.cookie, PATH, "", "", "");
    ck_assert_int_eq(h.status, 200);
    ck_assert_ptr_nonnull(strstr(h.res_body, "This field is required."));
    tl_http_free(&h);
    assert_unchanged(ctx, &a);

    /* no CSRF cookie, or a wrong token: 403 */
    post(ctx, &h, a.session, PATH, TL_PASSWORD, NEW_PASSWORD, NEW_PASSWORD);
    ck_assert_int_eq(h.status, 403);
    tl_http_free(&h);
    tl_request(ctx, &h, "POST", PATH, a.cookie, NULL,
               "old_password=" TL_PASSWORD "&new_password1=" NEW_PASSWORD
               "&new_password2=" NEW_PASSWORD,
               guest_password_change_view, NULL);
    ck_assert_int_eq(h.status, 403);
    tl_http_free(&h);
    /* a field sent twice */
    tl_request(ctx, &h, "POST", PATH, a.cookie, NULL,
               "old_password=" TL_PASSWORD
               "&old_password=x&new_password1=" NEW_PASSWORD
               "&new_password2=" NEW_PASSWORD "&csrfmiddlewaretoken=" TL_CSRF,
               guest_password_change_view, NULL);
    ck_assert_int_eq(h.status, 400);
    tl_http_free(&h);
    assert_unchanged(ctx, &a);

    /* deactivated meanwhile: the page is no longer this visitor's */
    ck_assert_int_eq(guest_user_set_active(ctx, "alice", false, NULL),
                     GUEST_OK);
    post(ctx, &h, a.cookie, PATH, TL_PASSWORD, NEW_PASSWORD, NEW_PASSWORD);
    ck_assert_int_eq(h.status, 302);
    ck_assert_str_eq(tl_http_res_header(&h, "Location"),
                     "/accounts/login/?next=/accounts/password/");
    tl_http_free(&h);
    char now[GUEST_PASSWORD_HASH_BUF];
    stored_hash(now, sizeof now);
    ck_assert_str_eq(now, a.hash);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(json_mode)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, NULL);
    alice a;
    new_alice(ctx, &a);
    tl_http h;
    /* GET: who and a token */
    tl_http_init(&h, "GET", PATH);
    tl_http_add(&h, "Host", "testserver");
    tl_http_add(&h, "Accept", "application/json");
    tl_http_add(&h, "Cookie", a.cookie);
    tl_http_run(ctx, &h, guest_password_change_view, NULL);
    ck_assert_int_eq(h.status, 200);
    json_t *j = json_loads(h.res_body, 0, NULL);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(j, "user"), "username")),
                     "alice");
    ck_assert_ptr_nonnull(json_string_value(json_object_get(j, "csrf_token")));
    json_decref(j);
    tl_http_free(&h);

    /* refused: 400 with the messages per field */
    const char *bad = "{\"old_password\": \"Wrong-Horse-00\","
                      " \"new_password1\": \"" NEW_PASSWORD "\","
                      " \"new_password2\": \"x\"}";
    tl_http_init(&h, "POST", PATH);
    tl_http_add(&h, "Host", "testserver");
    tl_http_add(&h, "Accept", "application/json");
    tl_http_add(&h, "Cookie", a.cookie);
    tl_http_add(&h, "X-CSRFToken", TL_CSRF);
    tl_http_add(&h, "Content-Type", "application/json");
    h.body = bad;
    tl_http_run(ctx, &h, guest_password_change_view, NULL);
    ck_assert_int_eq(h.status, 400);
    j = json_loads(h.res_body, 0, NULL);
    ck_assert_ptr_nonnull(j);
    json_t *errors = json_object_get(j, "errors");
    ck_assert_str_eq(json_string_value(json_array_get(
                         json_object_get(errors, "old_password"), 0)),
                     MSG_OLD_WRONG);
    ck_assert(json_is_array(json_object_get(errors, "new_password2")));
    json_decref(j);
    tl_http_free(&h);
    assert_unchanged(ctx, &a);

    /* accepted: 200 with the user and the renewed token */
    const char *good = "{\"old_password\": \"" TL_PASSWORD "\","
                       " \"new_password1\": \"" NEW_PASSWORD "\","
                       " \"new_password2\": \"" NEW_PASSWORD "\"}";
    tl_http_init(&h, "POST", PATH);
    tl_http_add(&h, "Host", "testserver");
    tl_http_add(&h, "Accept", "application/json");
    tl_http_add(&h, "Cookie", a.cookie);
    tl_http_add(&h, "X-CSRFToken", TL_CSRF);
    tl_http_add(&h, "Content-Type", "application/json");
    h.body = good;
    tl_http_run(ctx, &h, guest_password_change_view, NULL);
    ck_assert_int_eq(h.status, 200);
    j = json_loads(h.res_body, 0, NULL);
    ck_assert_ptr_nonnull(j);
    ck_assert_int_eq(
        json_integer_value(json_object_get(json_object_get(j, "user"), "id")),
        a.id);
    const char *token = json_string_value(json_object_get(j, "csrf_token"));
    ck_assert_ptr_nonnull(token);
    ck_assert_str_ne(token, TL_CSRF);
    json_decref(j);
    char renewed[128];
    ck_assert(tl_http_cookie(&h, "sessionid", renewed, sizeof renewed));
    tl_http_free(&h);
    ck_assert_int_eq(tl_whoami(ctx, renewed, NULL), a.id);
    ck_assert_int_eq(tl_whoami(ctx, a.other, NULL), 0);
    guest_ctx_free(ctx);
}
END_TEST

static guest_status record_kind(guest_req *req, const guest_page *page,
                                void *ud)
{
    *(guest_page_kind *)ud = page->kind;
    return guest_render_default_content(req, page);
}

START_TEST(render_callback_draws_both_pages)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, NULL);
    alice a;
    new_alice(ctx, &a);
    guest_page_kind seen = GUEST_PAGE_LOGIN;
    guest_views v;
    guest_views_init(&v);
    v.render = record_kind;
    v.render_userdata = &seen;
    tl_http h;
    tl_request(ctx, &h, "GET", PATH, a.session, NULL, NULL,
               guest_password_change_view, &v);
    ck_assert_int_eq(h.status, 200);
    ck_assert_int_eq(seen, GUEST_PAGE_PASSWORD_CHANGE);
    ck_assert_ptr_null(strstr(h.res_body, "<html")); /* content only */
    ck_assert_ptr_nonnull(strstr(h.res_body, "name=\"new_password2\""));
    tl_http_free(&h);
    tl_request(ctx, &h, "POST", PATH, a.cookie, NULL,
               "old_password=" TL_PASSWORD "&new_password1=" NEW_PASSWORD
               "&new_password2=" NEW_PASSWORD "&csrfmiddlewaretoken=" TL_CSRF,
               guest_password_change_view, &v);
    ck_assert_int_eq(h.status, 200);
    ck_assert_int_eq(seen, GUEST_PAGE_PASSWORD_CHANGE_DONE);
    ck_assert_ptr_nonnull(strstr(h.res_body, "Your password was changed."));
    tl_http_free(&h);
    ck_assert_str_eq(guest_page_title(GUEST_PAGE_PASSWORD_CHANGE),
                     "Password change");
    ck_assert_str_eq(guest_page_title(GUEST_PAGE_PASSWORD_CHANGE_DONE),
                     "Password change successful");
    guest_ctx_free(ctx);
}
END_TEST

/* ---- the plain call ---- */

typedef struct change {
    const char *old, *new1, *new2;
    guest_status st;
    guest_form_errors errors;
    guest_error err;
} change;

static void change_handler(guest_req *req, void *ud)
{
    change *c = ud;
    c->st = guest_password_change(req, c->old, c->new1, c->new2, &c->errors,
                                  &c->err);
}

static void run_change(guest_ctx *ctx, const char *cookie, change *c)
{
    tl_http h;
    tl_request(ctx, &h, "POST", PATH, cookie, NULL, NULL, change_handler, c);
    if (c->st == GUEST_ERR_RATE_LIMITED) {
        ck_assert_int_eq(h.status, 200); /* the call itself sends nothing */
        ck_assert_ptr_null(tl_http_res_header(&h, "Set-Cookie"));
    }
    tl_http_free(&h);
}

static void login_limit(guest_config *c)
{
    c->login_rate_limit = 2;
}

START_TEST(api_refusals_and_the_login_limit)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, login_limit);
    change c = {.old = TL_PASSWORD, .new1 = NEW_PASSWORD, .new2 = NEW_PASSWORD};
    run_change(ctx, NULL, &c);
    ck_assert_int_eq(c.st, GUEST_ERR_AUTH);
    ck_assert_str_eq(c.err.message, "the visitor is not logged in");
    char gcookie[128];
    tl_new_guest(ctx, gcookie, sizeof gcookie);
    run_change(ctx, gcookie, &c);
    ck_assert_int_eq(c.st, GUEST_ERR_AUTH);
    ck_assert_int_eq(guest_password_change(NULL, "a", "b", "b", NULL, NULL),
                     GUEST_ERR_INVALID);

    alice a;
    new_alice(ctx, &a);
    /* two wrong old passwords reach the limit: the right one is refused
     * too, before any hashing */
    change w = {
        .old = "Wrong-Horse-00", .new1 = NEW_PASSWORD, .new2 = NEW_PASSWORD};
    for (int i = 0; i < 2; i++) {
        run_change(ctx, a.session, &w);
        ck_assert_int_eq(w.st, GUEST_ERR_VALIDATION);
        ck_assert_str_eq(guest_form_errors_get(&w.errors, "old_password"),
                         MSG_OLD_WRONG);
    }
    run_change(ctx, a.session, &c);
    ck_assert_int_eq(c.st, GUEST_ERR_RATE_LIMITED);
    ck_assert_ptr_nonnull(guest_form_errors_get(&c.errors, "__all__"));
    assert_unchanged(ctx, &a);
    /* new passwords refused alone do not count as guesses */
    tl_exec_in(SCHEMA, "DELETE FROM @.rate_windows");
    change v = {.old = TL_PASSWORD, .new1 = "123", .new2 = "123"};
    for (int i = 0; i < 3; i++) {
        run_change(ctx, a.session, &v);
        ck_assert_int_eq(v.st, GUEST_ERR_VALIDATION);
    }
    run_change(ctx, a.session, &c);
    ck_assert_int_eq(c.st, GUEST_OK);
    ck_assert_int_eq(tl_whoami(ctx, a.session, NULL), 0);
    guest_ctx_free(ctx);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("password_change");
    TCase *tc = tcase_create("password_change");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, get_shows_the_form);
    tcase_add_test(tc, anonymous_and_guests_are_sent_away);
    tcase_add_test(tc, change_ends_other_sessions_and_rotates_this_one);
    tcase_add_test(tc, refusals_change_nothing);
    tcase_add_test(tc, json_mode);
    tcase_add_test(tc, render_callback_draws_both_pages);
    tcase_add_test(tc, api_refusals_and_the_login_limit);
    suite_add_tcase(s, tc);
    return tl_run(s);
}

/* The ready-made handlers over the in-process adapter: redirects, forms,
 * CSRF refusals that change nothing, methods, duplicate fields, unsafe
 * `next` values, JSON mode, custom fields, the render callback, and the
 * conversion race as a browser sees it. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "testlib.h"

#define SCHEMA "t_views"

static void setup(void)
{
    tl_drop_schema(SCHEMA);
}

static guest_ctx *ctx_new(void)
{
    return tl_ctx(SCHEMA, NULL);
}

/* A guest with its session and the fixed CSRF cookie, ready to POST. */
typedef struct visitor {
    int64_t id;
    char session[128];
    char cookie[256]; /* session + csrftoken */
    char name[GUEST_USERNAME_BUF];
} visitor;

static void new_visitor(guest_ctx *ctx, visitor *v)
{
    v->id = tl_new_guest(ctx, v->session, sizeof v->session);
    tl_cookie_header(v->cookie, sizeof v->cookie, v->session, true);
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT username FROM @.users WHERE id = %lld",
             (long long)v->id);
    tl_text_in(SCHEMA, sql, v->name, sizeof v->name);
}

/* The visitor is still the same untouched guest. */
static void assert_still_guest(guest_ctx *ctx, const visitor *v)
{
    bool g = false;
    ck_assert_int_eq(tl_whoami(ctx, v->session, &g), v->id);
    ck_assert(g);
    char sql[800];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM @.users WHERE id = %lld AND username = '%s'"
             " AND password = ''",
             (long long)v->id, v->name);
    ck_assert_int_eq(tl_scalar_in(SCHEMA, sql), 1);
}

static const char *location(const tl_http *h)
{
    const char *l = tl_http_res_header(h, "Location");
    return l ? l : "(none)";
}

#define GOOD_FORM                                                              \
    "username=newname&password1=" TL_PASSWORD "&password2=" TL_PASSWORD        \
    "&csrfmiddlewaretoken=" TL_CSRF

/* ---- convert: who may see it ---- */

START_TEST(convert_redirects_non_guests)
{
    guest_ctx *ctx = ctx_new();
    tl_http h;
    tl_request(ctx, &h, "GET", "/convert/", NULL, NULL, NULL,
               guest_convert_view, NULL);
    ck_assert_int_eq(h.status, 302);
    ck_assert_str_eq(location(&h), "/accounts/login/");
    tl_http_free(&h);

    tl_new_user(ctx, "reg", TL_PASSWORD);
    tl_request(ctx, &h, "POST", "/accounts/login/", "csrftoken=" TL_CSRF, NULL,
               "username=reg&password=" TL_PASSWORD
               "&csrfmiddlewaretoken=" TL_CSRF,
               guest_login_view, NULL);
    ck_assert_int_eq(h.status, 302);
    char s[128];
    ck_assert(tl_http_cookie(&h, "sessionid", s, sizeof s));
    tl_http_free(&h);
    tl_request(ctx, &h, "GET", "/convert/", s, NULL, NULL, guest_convert_view,
               NULL);
    ck_assert_int_eq(h.status, 302);
    ck_assert_str_eq(location(&h), "/accounts/profile/");
    tl_http_free(&h);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(convert_form_for_a_guest)
{
    guest_ctx *ctx = ctx_new();
    visitor v;
    new_visitor(ctx, &v);
    tl_http h;
    tl_request(ctx, &h, "GET", "/convert/?next=/notes/%3Fpage%3D2", v.session,
               NULL, NULL, guest_convert_view, NULL);
    ck_assert_int_eq(h.status, 200);
    ck_assert_str_eq(tl_http_res_header(&h, "Content-Type"),
                     "text/html; charset=utf-8");
    ck_assert_ptr_nonnull(
        strstr(tl_http_res_header(&h, "Cache-Control"), "no-store"));
    const char *names[] = {"username", "password1", "password2",
                           "csrfmiddlewaretoken", "next"};
    for (size_t i = 0; i < 5; i++) {
        char key[64];
        snprintf(key, sizeof key, "name=\"%s\"", names[i]);
        ck_assert_msg(strstr(h.res_body, key), "no field %s", names[i]);
    }
    char value[256];
    ck_assert(tl_input_value(h.res_body, "next", value, sizeof value));
    ck_assert_str_eq(value, "/notes/?page=2");
    /* no prefill by default */
    ck_assert(tl_input_value(h.res_body, "username", value, sizeof value));
    ck_assert_str_eq(value, "");
    /* a CSRF cookie and a masked token of it */
    char csrf[128];
    ck_assert(tl_http_cookie(&h, "csrftoken", csrf, sizeof csrf));
    char token[128];
    ck_assert(
        tl_input_value(h.res_body, "csrfmiddlewaretoken", token, sizeof token));
    ck_assert_uint_eq(strlen(token), 64);
    tl_http_free(&h);

    /* that token and cookie make a valid POST */
    char cookie[300], body[512];
    snprintf(cookie, sizeof cookie, "%s; %s", v.session, csrf);
    snprintf(body, sizeof body,
             "username=fromform&password1=%s&password2=%s"
             "&csrfmiddlewaretoken=%s&next=%%2Fnotes%%2F%%3Fpage%%3D2",
             TL_PASSWORD, TL_PASSWORD, token);
    tl_request(ctx, &h, "POST", "/convert/", cookie, NULL, body,
               guest_convert_view, NULL);
    ck_assert_int_eq(h.status, 302);
    ck_assert_str_eq(location(&h), "/notes/?page=2");
    tl_http_free(&h);
    ck_assert_int_eq(tl_scalar_in(SCHEMA, "SELECT count(*) FROM @.users"
                                          " WHERE username = 'fromform'"),
                     1);
    guest_ctx_free(ctx);
}
END_TEST

static void prefill(guest_config *c)
{
    c->convert_prefill_username = true;
}

START_TEST(convert_form_prefills_when_asked)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, prefill);
    visitor v;
    new_visitor(ctx, &v);
    tl_http h;
    tl_request(ctx, &h, "GET", "/convert/", v.session, NULL, NULL,
               guest_convert_view, NULL);
    char value[256];
    ck_assert(tl_input_value(h.res_body, "username", value, sizeof value));
    ck_assert_str_eq(value, v.name);
    tl_http_free(&h);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(valid_post_converts_and_redirects)
{
    guest_ctx *ctx = ctx_new();
    visitor v;
    new_visitor(ctx, &v);
    tl_http h;
    tl_request(ctx, &h, "POST", "/convert/", v.cookie, NULL, GOOD_FORM,
               guest_convert_view, NULL);
    ck_assert_int_eq(h.status, 302);
    ck_assert_str_eq(location(&h), "/convert/success/");
    char s[128];
    ck_assert(tl_http_cookie(&h, "sessionid", s, sizeof s));
    tl_http_free(&h);
    bool g = true;
    ck_assert_int_eq(tl_whoami(ctx, s, &g), v.id);
    ck_assert(!g);
    ck_assert_int_eq(tl_whoami(ctx, v.session, NULL), 0);

    /* the success page */
    tl_request(ctx, &h, "GET", "/convert/success/", s, NULL, NULL,
               guest_convert_success_view, NULL);
    ck_assert_int_eq(h.status, 200);
    ck_assert_ptr_nonnull(strstr(h.res_body, "newname"));
    tl_http_free(&h);
    tl_request(ctx, &h, "POST", "/convert/success/", s, NULL, "",
               guest_convert_success_view, NULL);
    ck_assert_int_eq(h.status, 405);
    ck_assert_str_eq(tl_http_res_header(&h, "Allow"), "GET, HEAD");
    tl_http_free(&h);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(invalid_post_shows_errors_escaped)
{
    guest_ctx *ctx = ctx_new();
    tl_new_user(ctx, "taken", TL_PASSWORD);
    visitor v;
    new_visitor(ctx, &v);
    tl_http h;
    tl_request(ctx, &h, "POST", "/convert/", v.cookie, NULL,
               "username=%3Cscript%3Ealert(1)%3C%2Fscript%3E&password1=a"
               "&password2=b&csrfmiddlewaretoken=" TL_CSRF,
               guest_convert_view, NULL);
    ck_assert_int_eq(h.status, 200);
    ck_assert_ptr_null(strstr(h.res_body, "<script>"));
    ck_assert_ptr_nonnull(
        strstr(h.res_body, "value=\"&lt;script&gt;alert(1)&lt;/script&gt;\""));
    ck_assert_ptr_nonnull(strstr(h.res_body, "Enter a valid username."));
    ck_assert_ptr_nonnull(
        strstr(h.res_body, "The two password fields didn&#x27;t match."));
    /* passwords are never sent back */
    char tmp[128];
    ck_assert(!tl_input_value(h.res_body, "password1", tmp, sizeof tmp));
    ck_assert(!tl_http_cookie(&h, "sessionid", tmp, sizeof tmp));
    tl_http_free(&h);

    tl_request(ctx, &h, "POST", "/convert/", v.cookie, NULL,
               "username=taken&password1=" TL_PASSWORD "&password2=" TL_PASSWORD
               "&csrfmiddlewaretoken=" TL_CSRF,
               guest_convert_view, NULL);
    ck_assert_int_eq(h.status, 200);
    ck_assert_ptr_nonnull(
        strstr(h.res_body, "A user with that username already exists."));
    tl_http_free(&h);
    assert_still_guest(ctx, &v);
    guest_ctx_free(ctx);
}
END_TEST

/* ---- CSRF, methods, malformed forms ---- */

START_TEST(csrf_failures_are_403_and_change_nothing)
{
    guest_ctx *ctx = ctx_new();
    visitor v;
    new_visitor(ctx, &v);
    const char *form_no_token =
        "username=newname&password1=" TL_PASSWORD "&password2=" TL_PASSWORD;
    struct {
        const char *cookie_csrf;
        const char *token;
        bool https;
        const char *origin, *referer;
    } cases[] = {
        {NULL, TL_CSRF, false, NULL, NULL}, /* no cookie */
        {TL_CSRF, NULL, false, NULL, NULL}, /* no token */
        {TL_CSRF, "bbcdefghijklmnopqrstuvwxyzABCDEF", false, NULL, NULL},
        {"bbcdefghijklmnopqrstuvwxyzABCDEF", TL_CSRF, false, NULL, NULL},
        {TL_CSRF, TL_CSRF, true, "https://evil.com", NULL},
        {TL_CSRF, TL_CSRF, true, NULL, NULL}, /* https, no referer */
        {TL_CSRF, TL_CSRF, true, NULL, "https://evil.com/form"},
        {TL_CSRF, TL_CSRF, true, "http://testserver", NULL}, /* downgrade */
        {TL_CSRF, TL_CSRF, false, "http://evil.com", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char cookie[300], body[400];
        if (cases[i].cookie_csrf)
            snprintf(cookie, sizeof cookie, "%s; csrftoken=%s", v.session,
                     cases[i].cookie_csrf);
        else
            snprintf(cookie, sizeof cookie, "%s", v.session);
        snprintf(body, sizeof body, "%s%s%s", form_no_token,
                 cases[i].token ? "&csrfmiddlewaretoken=" : "",
                 cases[i].token ? cases[i].token : "");
        tl_http h;
        tl_http_init(&h, "POST", "/convert/");
        tl_http_add(&h, "Host", "testserver");
        tl_http_add(&h, "Cookie", cookie);
        tl_http_add(&h, "Content-Type", "application/x-www-form-urlencoded");
        if (cases[i].origin)
            tl_http_add(&h, "Origin", cases[i].origin);
        if (cases[i].referer)
            tl_http_add(&h, "Referer", cases[i].referer);
        h.https = cases[i].https;
        h.body = body;
        tl_http_run(ctx, &h, guest_convert_view, NULL);
        ck_assert_msg(h.status == 403, "case %zu: %d", i, h.status);
        ck_assert_ptr_nonnull(strstr(h.res_body, "CSRF verification failed"));
        ck_assert_ptr_null(tl_http_res_header(&h, "Location"));
        tl_http_free(&h);
        assert_still_guest(ctx, &v);
    }
    /* the same over HTTPS with a matching Origin goes through */
    tl_http h;
    tl_http_init(&h, "POST", "/convert/");
    tl_http_add(&h, "Host", "testserver");
    tl_http_add(&h, "Cookie", v.cookie);
    tl_http_add(&h, "Origin", "https://testserver");
    tl_http_add(&h, "Content-Type", "application/x-www-form-urlencoded");
    h.https = true;
    h.body = GOOD_FORM;
    tl_http_run(ctx, &h, guest_convert_view, NULL);
    ck_assert_int_eq(h.status, 302);
    tl_http_free(&h);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(wrong_method_is_405_before_csrf)
{
    guest_ctx *ctx = ctx_new();
    visitor v;
    new_visitor(ctx, &v);
    struct {
        guest_handler_fn fn;
        const char *method, *allow;
    } cases[] = {
        {guest_convert_view, "PUT", "GET, HEAD, POST"},
        {guest_convert_view, "DELETE", "GET, HEAD, POST"},
        {guest_login_view, "PATCH", "GET, HEAD, POST"},
        {guest_logout_view, "GET", "POST"},
        {guest_logout_view, "HEAD", "POST"},
        {guest_convert_success_view, "POST", "GET, HEAD"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        tl_http h;
        /* no CSRF cookie or token at all: still 405, not 403 */
        tl_request(ctx, &h, cases[i].method, "/x/", v.session, NULL,
                   "username=a", cases[i].fn, NULL);
        ck_assert_msg(h.status == 405, "case %zu: %d", i, h.status);
        ck_assert_str_eq(tl_http_res_header(&h, "Allow"), cases[i].allow);
        tl_http_free(&h);
    }
    assert_still_guest(ctx, &v);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(duplicate_fields_are_400)
{
    guest_ctx *ctx = ctx_new();
    visitor v;
    new_visitor(ctx, &v);
    struct {
        guest_handler_fn fn;
        const char *target, *body;
    } cases[] = {
        {guest_convert_view, "/convert/", GOOD_FORM "&username=other"},
        {guest_convert_view, "/convert/",
         GOOD_FORM "&csrfmiddlewaretoken=" TL_CSRF},
        {guest_convert_view, "/convert/", GOOD_FORM "&next=/a&next=/b"},
        {guest_convert_view, "/convert/?next=/a&next=//evil.com", GOOD_FORM},
        {guest_login_view, "/accounts/login/",
         "username=a&username=b&password=x&csrfmiddlewaretoken=" TL_CSRF},
        {guest_logout_view, "/accounts/logout/",
         "csrfmiddlewaretoken=" TL_CSRF "&csrfmiddlewaretoken=" TL_CSRF},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        tl_http h;
        tl_request(ctx, &h, "POST", cases[i].target, v.cookie, NULL,
                   cases[i].body, cases[i].fn, NULL);
        ck_assert_msg(h.status == 400, "case %zu: %d", i, h.status);
        tl_http_free(&h);
        assert_still_guest(ctx, &v);
    }
    /* a GET with the redirect field twice in its query */
    tl_http h;
    tl_request(ctx, &h, "GET", "/accounts/login/?next=/a&next=/b", NULL, NULL,
               NULL, guest_login_view, NULL);
    ck_assert_int_eq(h.status, 400);
    tl_http_free(&h);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(malformed_bodies)
{
    guest_ctx *ctx = ctx_new();
    visitor v;
    new_visitor(ctx, &v);
    tl_http h;
    /* NUL and bad UTF-8 in credentials */
    tl_request(ctx, &h, "POST", "/convert/", v.cookie, NULL,
               "username=a%00b&password1=x&password2=x"
               "&csrfmiddlewaretoken=" TL_CSRF,
               guest_convert_view, NULL);
    ck_assert_int_eq(h.status, 400);
    tl_http_free(&h);
    tl_request(ctx, &h, "POST", "/accounts/login/", v.cookie, NULL,
               "username=a%FFb&password=x&csrfmiddlewaretoken=" TL_CSRF,
               guest_login_view, NULL);
    ck_assert_int_eq(h.status, 400);
    tl_http_free(&h);
    /* multipart is not spoken */
    tl_request(ctx, &h, "POST", "/convert/", v.cookie,
               "multipart/form-data; boundary=x", "--x--", guest_convert_view,
               NULL);
    ck_assert_int_eq(h.status, 415);
    tl_http_free(&h);
    /* larger than max_body_size */
    size_t n = 70000;
    char *big = malloc(n + 1);
    memset(big, 'a', n);
    big[n] = '\0';
    memcpy(big, "username=", 9);
    tl_request(ctx, &h, "POST", "/convert/", v.cookie, NULL, big,
               guest_convert_view, NULL);
    ck_assert_int_eq(h.status, 413);
    tl_http_free(&h);
    free(big);
    /* malformed JSON */
    tl_request(ctx, &h, "POST", "/convert/", v.cookie, "application/json",
               "{\"username\": ", guest_convert_view, NULL);
    ck_assert_int_eq(h.status, 400);
    ck_assert_str_eq(tl_http_res_header(&h, "Content-Type"),
                     "application/json");
    tl_http_free(&h);
    assert_still_guest(ctx, &v);
    guest_ctx_free(ctx);
}
END_TEST

/* ---- next ---- */

START_TEST(unsafe_next_is_never_followed_or_echoed)
{
    guest_ctx *ctx = ctx_new();
    /* urlencoded as a browser would send them */
    const char *unsafe[] = {
        "%2F%2Fevil.com",
        "%2F%5Cevil.com",
        "%5C%5Cevil.com",
        "javascript%3Aalert(1)",
        "http%3A%2F%2Fevil.com",
        "https%3A%2F%2Fevil.com%2F",
        "%2Fok%0D%0ASet-Cookie%3A%20x%3D1",
        "%2Fok%0Ax",
        "%2Fok%0Dx",
        "%2Fok%09x",
        "%2Fok%00x",
        "%0A%2Fok",
        "%2Fok%250d%250aSet-Cookie%3Ax",
        "%252F%252Fevil.com",
        "%2F%252Fevil.com",
        "http%3A%2F%2Ftestserver%2Fdowngrade",
    };
    for (size_t i = 0; i < sizeof unsafe / sizeof *unsafe; i++) {
        /* the last one is fine over http, a downgrade over https */
        bool https = i == sizeof unsafe / sizeof *unsafe - 1;
        visitor v;
        new_visitor(ctx, &v);
        char body[600], target[300];
        snprintf(body, sizeof body, GOOD_FORM "&next=%s", unsafe[i]);
        /* each conversion needs its own username */
        body[9] = (char)('A' + i);
        tl_http h;
        tl_http_init(&h, "POST", "/convert/");
        tl_http_add(&h, "Host", "testserver");
        tl_http_add(&h, "Cookie", v.cookie);
        tl_http_add(&h, "Content-Type", "application/x-www-form-urlencoded");
        if (https)
            tl_http_add(&h, "Origin", "https://testserver");
        h.https = https;
        h.body = body;
        tl_http_run(ctx, &h, guest_convert_view, NULL);
        ck_assert_msg(h.status == 302, "case %zu: %d", i, h.status);
        ck_assert_msg(!strcmp(location(&h), "/convert/success/"),
                      "case %zu: Location %s", i, location(&h));
        tl_http_free(&h);

        /* on a GET form it is not carried along either */
        snprintf(target, sizeof target, "/accounts/login/?next=%s", unsafe[i]);
        tl_http_init(&h, "GET", target);
        tl_http_add(&h, "Host", "testserver");
        h.https = https;
        tl_http_run(ctx, &h, guest_login_view, NULL);
        ck_assert_int_eq(h.status, 200);
        ck_assert_msg(!strstr(h.res_body, "name=\"next\""), "case %zu echoed",
                      i);
        tl_http_free(&h);
    }
    /* a safe absolute URL on this host is followed */
    visitor v;
    new_visitor(ctx, &v);
    tl_http h;
    tl_request(ctx, &h, "POST", "/convert/", v.cookie, NULL,
               GOOD_FORM "&next=http%3A%2F%2Ftestserver%2Fhome%2F",
               guest_convert_view, NULL);
    ck_assert_int_eq(h.status, 302);
    ck_assert_str_eq(location(&h), "http://testserver/home/");
    tl_http_free(&h);
    guest_ctx_free(ctx);
}
END_TEST

/* ---- login and logout views ---- */

START_TEST(login_view_flow)
{
    guest_ctx *ctx = ctx_new();
    int64_t uid = tl_new_user(ctx, "alice", TL_PASSWORD);
    tl_http h;
    tl_request(ctx, &h, "GET", "/accounts/login/?next=/private/", NULL, NULL,
               NULL, guest_login_view, NULL);
    ck_assert_int_eq(h.status, 200);
    const char *names[] = {"username", "password", "csrfmiddlewaretoken",
                           "next"};
    for (size_t i = 0; i < 4; i++) {
        char key[64];
        snprintf(key, sizeof key, "name=\"%s\"", names[i]);
        ck_assert_msg(strstr(h.res_body, key), "no field %s", names[i]);
    }
    tl_http_free(&h);

    tl_request(ctx, &h, "POST", "/accounts/login/", "csrftoken=" TL_CSRF, NULL,
               "username=alice&password=wrong-one-1&next=%2Fprivate%2F"
               "&csrfmiddlewaretoken=" TL_CSRF,
               guest_login_view, NULL);
    ck_assert_int_eq(h.status, 200);
    ck_assert_ptr_nonnull(strstr(h.res_body, "Please enter a correct username "
                                             "and password."));
    char value[64];
    ck_assert(tl_input_value(h.res_body, "username", value, sizeof value));
    ck_assert_str_eq(value, "alice");
    ck_assert(tl_input_value(h.res_body, "next", value, sizeof value));
    ck_assert_str_eq(value, "/private/");
    tl_http_free(&h);

    tl_request(ctx, &h, "POST", "/accounts/login/", "csrftoken=" TL_CSRF, NULL,
               "username=alice&password=" TL_PASSWORD "&next=%2Fprivate%2F"
               "&csrfmiddlewaretoken=" TL_CSRF,
               guest_login_view, NULL);
    ck_assert_int_eq(h.status, 302);
    ck_assert_str_eq(location(&h), "/private/");
    char s[128];
    ck_assert(tl_http_cookie(&h, "sessionid", s, sizeof s));
    tl_http_free(&h);
    ck_assert_int_eq(tl_whoami(ctx, s, NULL), uid);

    tl_request(ctx, &h, "POST", "/accounts/login/", "csrftoken=" TL_CSRF, NULL,
               "username=alice&password=" TL_PASSWORD
               "&csrfmiddlewaretoken=" TL_CSRF,
               guest_login_view, NULL);
    ck_assert_int_eq(h.status, 302);
    ck_assert_str_eq(location(&h), "/accounts/profile/");
    tl_http_free(&h);

    /* without CSRF: 403, no session */
    tl_request(ctx, &h, "POST", "/accounts/login/", NULL, NULL,
               "username=alice&password=" TL_PASSWORD, guest_login_view, NULL);
    ck_assert_int_eq(h.status, 403);
    ck_assert(!tl_http_cookie(&h, "sessionid", s, sizeof s));
    tl_http_free(&h);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(logout_view_flow)
{
    guest_ctx *ctx = ctx_new();
    visitor v;
    new_visitor(ctx, &v);
    tl_http h;
    /* CSRF first */
    tl_request(ctx, &h, "POST", "/accounts/logout/", v.session, NULL, "",
               guest_logout_view, NULL);
    ck_assert_int_eq(h.status, 403);
    tl_http_free(&h);
    ck_assert_int_eq(tl_whoami(ctx, v.session, NULL), v.id);

    tl_request(ctx, &h, "POST", "/accounts/logout/", v.cookie, NULL,
               "csrfmiddlewaretoken=" TL_CSRF, guest_logout_view, NULL);
    ck_assert_int_eq(h.status, 302);
    ck_assert_str_eq(location(&h), "/");
    tl_http_free(&h);
    ck_assert_int_eq(tl_whoami(ctx, v.session, NULL), 0);
    /* the guest account stays until cleanup */
    char sql[96];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM @.guests WHERE user_id = %lld",
             (long long)v.id);
    ck_assert_int_eq(tl_scalar_in(SCHEMA, sql), 1);
    guest_ctx_free(ctx);
}
END_TEST

/* ---- JSON ---- */

static json_t *body_json(const tl_http *h)
{
    json_error_t e;
    json_t *j = json_loads(h->res_body, 0, &e);
    ck_assert_msg(j != NULL, "not JSON: %s", h->res_body);
    return j;
}

static void json_request(guest_ctx *ctx, tl_http *h, const char *method,
                         const char *target, const char *cookie,
                         const char *token, const char *body,
                         guest_handler_fn fn)
{
    tl_http_init(h, method, target);
    tl_http_add(h, "Host", "testserver");
    tl_http_add(h, "Accept", "application/json");
    if (cookie)
        tl_http_add(h, "Cookie", cookie);
    if (token)
        tl_http_add(h, "X-CSRFToken", token);
    if (body) {
        tl_http_add(h, "Content-Type", "application/json");
        h->body = body;
    }
    tl_http_run(ctx, h, fn, NULL);
}

START_TEST(json_mode)
{
    guest_ctx *ctx = ctx_new();
    visitor v;
    new_visitor(ctx, &v);
    tl_http h;
    json_request(ctx, &h, "GET", "/convert/", v.session, NULL, NULL,
                 guest_convert_view);
    ck_assert_int_eq(h.status, 200);
    ck_assert_str_eq(tl_http_res_header(&h, "Content-Type"),
                     "application/json");
    json_t *j = body_json(&h);
    ck_assert(
        json_is_true(json_object_get(json_object_get(j, "user"), "is_guest")));
    const char *token = json_string_value(json_object_get(j, "csrf_token"));
    ck_assert_uint_eq(strlen(token), 64);
    char csrf[128], cookie[300], tok[80];
    snprintf(tok, sizeof tok, "%s", token);
    json_decref(j);
    ck_assert(tl_http_cookie(&h, "csrftoken", csrf, sizeof csrf));
    snprintf(cookie, sizeof cookie, "%s; %s", v.session, csrf);
    tl_http_free(&h);

    /* invalid: 400 with every message per field */
    json_request(ctx, &h, "POST", "/convert/", cookie, tok,
                 "{\"username\": \"bad name\", \"password1\": \"a\","
                 " \"password2\": \"b\"}",
                 guest_convert_view);
    ck_assert_int_eq(h.status, 400);
    j = body_json(&h);
    json_t *errors = json_object_get(j, "errors");
    ck_assert_str_eq(json_string_value(json_array_get(
                         json_object_get(errors, "password2"), 0)),
                     "The two password fields didn't match.");
    ck_assert(json_is_array(json_object_get(errors, "username")));
    json_decref(j);
    tl_http_free(&h);

    /* no X-CSRFToken: 403 in JSON, nothing changed */
    json_request(ctx, &h, "POST", "/convert/", cookie, NULL,
                 "{\"username\": \"jsonuser\", \"password1\": \"" TL_PASSWORD
                 "\", \"password2\": \"" TL_PASSWORD "\"}",
                 guest_convert_view);
    ck_assert_int_eq(h.status, 403);
    j = body_json(&h);
    ck_assert(json_is_array(
        json_object_get(json_object_get(j, "errors"), "__all__")));
    json_decref(j);
    tl_http_free(&h);
    assert_still_guest(ctx, &v);

    /* valid: 200 with the user, no redirect */
    json_request(ctx, &h, "POST", "/convert/", cookie, tok,
                 "{\"username\": \"jsonuser\", \"password1\": \"" TL_PASSWORD
                 "\", \"password2\": \"" TL_PASSWORD "\"}",
                 guest_convert_view);
    ck_assert_int_eq(h.status, 200);
    ck_assert_ptr_null(tl_http_res_header(&h, "Location"));
    j = body_json(&h);
    json_t *user = json_object_get(j, "user");
    ck_assert_str_eq(json_string_value(json_object_get(user, "username")),
                     "jsonuser");
    ck_assert_int_eq(json_integer_value(json_object_get(user, "id")), v.id);
    ck_assert(json_is_false(json_object_get(user, "is_guest")));
    /* one Cache-Control, the strict one, though a session was set */
    int cache_controls = 0;
    for (int i = 0; i < h.nres_headers; i++)
        cache_controls += !strcasecmp(h.res_headers[i][0], "Cache-Control");
    ck_assert_int_eq(cache_controls, 1);
    ck_assert_str_eq(tl_http_res_header(&h, "Cache-Control"),
                     "no-cache, no-store, must-revalidate, private");
    /* a token for the new CSRF secret */
    ck_assert_str_ne(json_string_value(json_object_get(j, "csrf_token")), tok);
    json_decref(j);
    char s[128];
    ck_assert(tl_http_cookie(&h, "sessionid", s, sizeof s));
    tl_http_free(&h);

    /* registered now: the convert page refuses in JSON too */
    json_request(ctx, &h, "GET", "/convert/", s, NULL, NULL,
                 guest_convert_view);
    ck_assert_int_eq(h.status, 403);
    j = body_json(&h);
    ck_assert_str_eq(json_string_value(json_object_get(j, "redirect")),
                     "/accounts/profile/");
    json_decref(j);
    tl_http_free(&h);

    /* login in JSON */
    json_request(ctx, &h, "POST", "/accounts/login/", "csrftoken=" TL_CSRF,
                 TL_CSRF, "{\"username\": \"jsonuser\", \"password\": \"x\"}",
                 guest_login_view);
    ck_assert_int_eq(h.status, 400);
    j = body_json(&h);
    ck_assert_str_eq(
        json_string_value(json_array_get(
            json_object_get(json_object_get(j, "errors"), "__all__"), 0)),
        "Please enter a correct username and password. Note that both "
        "fields may be case-sensitive.");
    json_decref(j);
    tl_http_free(&h);
    json_request(
        ctx, &h, "POST", "/accounts/login/", "csrftoken=" TL_CSRF, TL_CSRF,
        "{\"username\": \"jsonuser\", \"password\": \"" TL_PASSWORD "\"}",
        guest_login_view);
    ck_assert_int_eq(h.status, 200);
    j = body_json(&h);
    ck_assert_int_eq(
        json_integer_value(json_object_get(json_object_get(j, "user"), "id")),
        v.id);
    json_decref(j);
    tl_http_free(&h);
    guest_ctx_free(ctx);
}
END_TEST

/* ---- custom fields and the render callback ---- */

static const guest_signup_field fields[] = {
    {"email", "Email <address>", "email", true},
    {"terms", "I accept the terms", "checkbox", true},
};

static guest_status app_validate(const guest_form *form,
                                 guest_form_errors *errors, void *ud)
{
    (void)ud;
    const char *email = guest_form_get(form, "email");
    if (email && *email && !strchr(email, '@'))
        guest_form_errors_add(errors, "email", "Enter a valid email address.");
    return GUEST_OK;
}

static guest_status app_store(guest_db *db, const guest_user *user,
                              const guest_form *form, guest_form_errors *errors,
                              void *ud)
{
    (void)errors, (void)ud;
    char id[32];
    snprintf(id, sizeof id, "%lld", (long long)guest_user_id(user));
    const char *params[] = {id, guest_form_get(form, "email")};
    return guest_db_exec(db,
                         "INSERT INTO t_views_app.profiles (user_id, email)"
                         " VALUES ($1, $2)",
                         2, params, NULL);
}

START_TEST(custom_fields_in_the_view)
{
    guest_ctx *ctx = ctx_new();
    tl_exec("DROP SCHEMA IF EXISTS t_views_app CASCADE");
    tl_exec("CREATE SCHEMA t_views_app");
    tl_exec("CREATE TABLE t_views_app.profiles (user_id bigint PRIMARY KEY"
            " REFERENCES t_views.users(id) ON DELETE CASCADE, email text)");
    guest_views views;
    guest_views_init(&views);
    views.signup = (guest_signup){fields, 2, app_validate, app_store, NULL};
    visitor v;
    new_visitor(ctx, &v);
    tl_http h;
    tl_request(ctx, &h, "GET", "/convert/", v.session, NULL, NULL,
               guest_convert_view, &views);
    ck_assert_int_eq(h.status, 200);
    ck_assert_ptr_nonnull(strstr(h.res_body, "name=\"email\""));
    ck_assert_ptr_nonnull(strstr(h.res_body, "type=\"checkbox\""));
    ck_assert_ptr_nonnull(strstr(h.res_body, "Email &lt;address&gt;"));
    tl_http_free(&h);

    tl_request(ctx, &h, "POST", "/convert/", v.cookie, NULL,
               GOOD_FORM "&email=%22%3E%3Cb%3Enot-an-email", guest_convert_view,
               &views);
    ck_assert_int_eq(h.status, 200);
    ck_assert_ptr_nonnull(strstr(h.res_body, "Enter a valid email address."));
    ck_assert_ptr_nonnull(strstr(h.res_body, "This field is required."));
    char value[128];
    ck_assert(tl_input_value(h.res_body, "email", value, sizeof value));
    ck_assert_str_eq(value, "&quot;&gt;&lt;b&gt;not-an-email");
    tl_http_free(&h);
    assert_still_guest(ctx, &v);

    tl_request(ctx, &h, "POST", "/convert/", v.cookie, NULL,
               GOOD_FORM "&email=me%40example.org&terms=on", guest_convert_view,
               &views);
    ck_assert_int_eq(h.status, 302);
    tl_http_free(&h);
    char sql[128];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM t_views_app.profiles WHERE user_id = %lld"
             " AND email = 'me@example.org'",
             (long long)v.id);
    ck_assert_int_eq(tl_scalar(sql), 1);

    /* a field named like a built-in one is a configuration error */
    static const guest_signup_field clash[] = {{"password1", "x", NULL, false}};
    guest_views bad;
    guest_views_init(&bad);
    bad.signup.fields = clash;
    bad.signup.field_count = 1;
    visitor w;
    new_visitor(ctx, &w);
    tl_request(ctx, &h, "GET", "/convert/", w.session, NULL, NULL,
               guest_convert_view, &bad);
    ck_assert_int_eq(h.status, 500);
    tl_http_free(&h);
    guest_ctx_free(ctx);
}
END_TEST

typedef struct seen_page {
    int calls;
    guest_page_kind kind;
    char token[80], next[64], username[64];
    size_t nerrors;
} seen_page;

static guest_status my_render(guest_req *req, const guest_page *page, void *ud)
{
    seen_page *s = ud;
    s->calls++;
    s->kind = page->kind;
    snprintf(s->token, sizeof s->token, "%s", page->csrf_token);
    snprintf(s->next, sizeof s->next, "%s", page->next);
    snprintf(s->username, sizeof s->username, "%s", page->username);
    s->nerrors = page->errors->count;
    if (page->kind == GUEST_PAGE_LOGIN)
        return guest_render_default(req, page);
    if (page->kind == GUEST_PAGE_CONVERT && page->errors->count) {
        /* the built-in form inside the application's own frame */
        guest_res_printf(req, "<frame-start>");
        guest_status st = guest_render_default_content(req, page);
        guest_res_printf(req, "<frame-end>");
        return st;
    }
    return guest_res_printf(req, "<p>my page %d</p>", (int)page->kind);
}

static guest_status broken_render(guest_req *req, const guest_page *page,
                                  void *ud)
{
    (void)page, (void)ud;
    guest_res_printf(req, "<html><body>half a pa");
    return GUEST_ERR_HOOK;
}

START_TEST(a_failing_render_answers_a_clean_500)
{
    guest_ctx *ctx = ctx_new();
    guest_views views;
    guest_views_init(&views);
    views.render = broken_render;
    tl_http h;
    tl_request(ctx, &h, "GET", "/accounts/login/", NULL, NULL, NULL,
               guest_login_view, &views);
    ck_assert_int_eq(h.status, 500);
    ck_assert_ptr_null(strstr(h.res_body, "half a pa"));
    int types = 0;
    for (int i = 0; i < h.nres_headers; i++)
        types += !strcasecmp(h.res_headers[i][0], "Content-Type");
    ck_assert_int_eq(types, 1);
    tl_http_free(&h);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(render_callback_replaces_html)
{
    guest_ctx *ctx = ctx_new();
    seen_page s = {0};
    guest_views views;
    guest_views_init(&views);
    views.render = my_render;
    views.render_userdata = &s;
    visitor v;
    new_visitor(ctx, &v);
    tl_http h;
    tl_request(ctx, &h, "GET", "/convert/?next=/back/", v.session, NULL, NULL,
               guest_convert_view, &views);
    ck_assert_int_eq(h.status, 200);
    ck_assert_str_eq(h.res_body, "<p>my page 0</p>");
    ck_assert_int_eq(s.kind, GUEST_PAGE_CONVERT);
    ck_assert_uint_eq(strlen(s.token), 64);
    ck_assert_str_eq(s.next, "/back/");
    tl_http_free(&h);

    tl_request(
        ctx, &h, "POST", "/convert/", v.cookie, NULL,
        "username=x&password1=a&password2=b&csrfmiddlewaretoken=" TL_CSRF,
        guest_convert_view, &views);
    ck_assert_int_eq(h.status, 200);
    ck_assert_str_eq(s.username, "x");
    ck_assert_uint_gt(s.nerrors, 0);
    /* content only: the form and its errors, no document around them */
    ck_assert(!strncmp(h.res_body, "<frame-start><p>", 16));
    ck_assert_ptr_nonnull(strstr(h.res_body, "name=\"password1\""));
    ck_assert_ptr_nonnull(strstr(h.res_body, "errorlist"));
    ck_assert_ptr_null(strstr(h.res_body, "<html"));
    ck_assert_ptr_null(strstr(h.res_body, "<h1>"));
    ck_assert_ptr_nonnull(strstr(h.res_body, "</form>\n<frame-end>"));
    tl_http_free(&h);

    tl_request(ctx, &h, "GET", "/accounts/login/", NULL, NULL, NULL,
               guest_login_view, &views);
    ck_assert_int_eq(s.kind, GUEST_PAGE_LOGIN);
    ck_assert_ptr_nonnull(strstr(h.res_body, "name=\"password\""));
    tl_http_free(&h);
    tl_request(ctx, &h, "GET", "/convert/success/", NULL, NULL, NULL,
               guest_convert_success_view, &views);
    ck_assert_str_eq(h.res_body, "<p>my page 1</p>");
    tl_http_free(&h);
    ck_assert_int_eq(s.calls, 4);
    ck_assert_str_eq(guest_page_title(GUEST_PAGE_LOGIN), "Log in");
    ck_assert_str_eq(guest_page_title(GUEST_PAGE_CONVERT),
                     "Create your account");
    ck_assert_str_eq(guest_page_title((guest_page_kind)99), "");
    ck_assert_str_eq(guest_page_title((guest_page_kind)-1), "");
    /* every kind has its title (the pages' table has no hole) */
    for (int k = GUEST_PAGE_CONVERT; k <= GUEST_PAGE_EMAIL_VERIFIED; k++)
        ck_assert_str_ne(guest_page_title((guest_page_kind)k), "");
    guest_ctx_free(ctx);
}
END_TEST

/* ---- the race as browsers see it ---- */

typedef struct browser {
    guest_ctx *ctx;
    const visitor *v;
    const char *username;
    pthread_barrier_t *b;
    int status;
    char location[128];
} browser;

static void *submit(void *arg)
{
    browser *br = arg;
    char body[300];
    snprintf(body, sizeof body,
             "username=%s&password1=" TL_PASSWORD "&password2=" TL_PASSWORD
             "&csrfmiddlewaretoken=" TL_CSRF,
             br->username);
    tl_http h;
    pthread_barrier_wait(br->b);
    guest_views views;
    guest_views_init(&views);
    views.signup.store = tl_slow_store;
    tl_request(br->ctx, &h, "POST", "/convert/", br->v->cookie, NULL, body,
               guest_convert_view, &views);
    br->status = h.status;
    snprintf(br->location, sizeof br->location, "%s", location(&h));
    tl_http_free(&h);
    return NULL;
}

START_TEST(double_submit_converts_once)
{
    guest_ctx *ctx = ctx_new();
    for (int round = 0; round < 5; round++) {
        visitor v;
        new_visitor(ctx, &v);
        pthread_barrier_t b;
        pthread_barrier_init(&b, NULL, 2);
        char names[2][32];
        browser br[2];
        pthread_t t[2];
        for (int i = 0; i < 2; i++) {
            snprintf(names[i], sizeof names[i], "double%d_%d", round, i);
            br[i] = (browser){ctx, &v, names[i], &b, 0, ""};
            pthread_create(&t[i], NULL, submit, &br[i]);
        }
        for (int i = 0; i < 2; i++)
            pthread_join(t[i], NULL);
        pthread_barrier_destroy(&b);
        int success = 0, to_login = 0;
        for (int i = 0; i < 2; i++) {
            ck_assert_int_eq(br[i].status, 302);
            if (!strcmp(br[i].location, "/convert/success/"))
                success++;
            else if (!strcmp(br[i].location, "/accounts/login/") ||
                     !strcmp(br[i].location, "/accounts/profile/"))
                to_login++;
        }
        ck_assert_int_eq(success, 1);
        ck_assert_int_eq(to_login, 1);
        char sql[160];
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM @.users WHERE id = %lld AND username"
                 " IN ('%s', '%s')",
                 (long long)v.id, names[0], names[1]);
        ck_assert_int_eq(tl_scalar_in(SCHEMA, sql), 1);
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM @.sessions WHERE user_id = %lld",
                 (long long)v.id);
        ck_assert_int_eq(tl_scalar_in(SCHEMA, sql), 1);
    }
    guest_ctx_free(ctx);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("views");
    TCase *tc = tcase_create("views");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, convert_redirects_non_guests);
    tcase_add_test(tc, convert_form_for_a_guest);
    tcase_add_test(tc, convert_form_prefills_when_asked);
    tcase_add_test(tc, valid_post_converts_and_redirects);
    tcase_add_test(tc, invalid_post_shows_errors_escaped);
    tcase_add_test(tc, csrf_failures_are_403_and_change_nothing);
    tcase_add_test(tc, wrong_method_is_405_before_csrf);
    tcase_add_test(tc, duplicate_fields_are_400);
    tcase_add_test(tc, malformed_bodies);
    tcase_add_test(tc, unsafe_next_is_never_followed_or_echoed);
    tcase_add_test(tc, login_view_flow);
    tcase_add_test(tc, logout_view_flow);
    tcase_add_test(tc, json_mode);
    tcase_add_test(tc, custom_fields_in_the_view);
    tcase_add_test(tc, render_callback_replaces_html);
    tcase_add_test(tc, a_failing_render_answers_a_clean_500);
    tcase_add_test(tc, double_submit_converts_once);
    suite_add_tcase(s, tc);
    return tl_run(s);
}

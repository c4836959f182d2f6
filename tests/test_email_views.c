/* The ready-made e-mail pages over the in-process adapter, against the
 * fixture database, with mail delivered through a transport of the test's
 * own: the reset form and its answer (the same for every address), the
 * reset link's form (Referrer-Policy, dead links, the whole flow), the
 * address page and the verification link's button, CSRF and JSON mode. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "testlib.h"

#define SCHEMA "t_email_views"
#define RESET "/accounts/password/reset/"
#define VERIFY "/accounts/email/verify/"
#define EMAIL "/accounts/email/"
#define NEW_PASSWORD "Brand-New-Horse-77"
#define CSRF_FIELD "&csrfmiddlewaretoken=" TL_CSRF

static void setup(void)
{
    tl_drop_schema(SCHEMA);
}

static long long count(const char *sql)
{
    return tl_scalar_in(SCHEMA, sql);
}

static void mail_on(guest_config *c)
{
    c->mail_from = "Test site <noreply@example.test>";
    c->public_url = "https://example.test/";
}

#define CAPTURED_MAX 16
typedef struct capture {
    int n;
    char to[CAPTURED_MAX][64];
    char text[CAPTURED_MAX][2048];
} capture;

static capture cap;

static guest_mail_result capture_send(const guest_mail *m, void *ud, char *e,
                                      size_t es)
{
    (void)ud;
    (void)e;
    (void)es;
    if (cap.n < CAPTURED_MAX) {
        snprintf(cap.to[cap.n], sizeof cap.to[0], "%s", m->to);
        snprintf(cap.text[cap.n], sizeof cap.text[0], "%s", m->text);
        cap.n++;
    }
    return GUEST_MAIL_SENT;
}

static unsigned deliver(guest_ctx *ctx)
{
    guest_mail_transport t = {.send = capture_send};
    unsigned sent = 0;
    ck_assert_int_eq(guest_mail_send_due(ctx, &t, 0, &sent, NULL, NULL),
                     GUEST_OK);
    return sent;
}

/* The token of the link in captured mail @p i after @p path. */
static void link_token(int i, const char *path, char *out, size_t size)
{
    const char *p = strstr(cap.text[i], path);
    ck_assert_ptr_nonnull(p);
    p += strlen(path);
    size_t n = strcspn(p, "/");
    ck_assert_uint_lt(n, size);
    memcpy(out, p, n);
    out[n] = '\0';
}

static void set_address(int64_t id, const char *local, const char *domain)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "UPDATE @.users SET email = '%s' || chr(64) || '%s',"
             " email_verified_at = now() WHERE id = %lld",
             local, domain, (long long)id);
    tl_exec_in(SCHEMA, sql);
}

static void login_handler(guest_req *req, void *ud)
{
    const char **up = ud;
    guest_status st = guest_login(req, up[0], up[1], NULL, NULL);
    ck_assert_int_eq(st, up[2] ? GUEST_OK : GUEST_ERR_AUTH);
}

/* A login of @p name: "sessionid=...; csrftoken=..." into @p cookie, or
 * (expect_ok false) a refused login. */
static void login(guest_ctx *ctx, const char *name, const char *password,
                  char *cookie, size_t size, bool expect_ok)
{
    tl_http h;
    const char *up[3] = {name, password, expect_ok ? "" : NULL};
    tl_request(ctx, &h, "POST", "/login/", NULL, NULL, NULL, login_handler,
               (void *)up);
    if (expect_ok) {
        char session[128];
        ck_assert(tl_http_cookie(&h, "sessionid", session, sizeof session));
        tl_cookie_header(cookie, size, session, true);
    }
    tl_http_free(&h);
}

static void json_req(guest_ctx *ctx, tl_http *h, const char *method,
                     const char *target, const char *cookie, const char *body,
                     guest_handler_fn fn)
{
    tl_http_init(h, method, target);
    tl_http_add(h, "Host", "testserver");
    tl_http_add(h, "Accept", "application/json");
    if (cookie)
        tl_http_add(h, "Cookie", cookie);
    if (body) {
        tl_http_add(h, "X-CSRFToken", TL_CSRF);
        tl_http_add(h, "Content-Type", "application/json");
        h->body = body;
    }
    tl_http_run(ctx, h, fn, NULL);
}

static const char *csrf_only(void)
{
    static char c[128];
    tl_cookie_header(c, sizeof c, NULL, true);
    return c;
}

/* POST the reset form for @p email (urlencoded) and return the body. */
static char *reset_post(guest_ctx *ctx, const char *email_enc, int *status)
{
    tl_http h;
    char body[256];
    snprintf(body, sizeof body, "email=%s" CSRF_FIELD, email_enc);
    tl_request(ctx, &h, "POST", RESET, csrf_only(), NULL, body,
               guest_password_reset_view, NULL);
    *status = h.status;
    char *out = strdup(h.res_body ? h.res_body : "");
    tl_http_free(&h);
    return out;
}

START_TEST(reset_form_and_the_same_answer_for_every_address)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, mail_on);
    int64_t id = tl_new_user(ctx, "alice", TL_PASSWORD);
    set_address(id, "alice", "example.test");
    tl_http h;
    tl_request(ctx, &h, "GET", RESET, NULL, NULL, NULL,
               guest_password_reset_view, NULL);
    ck_assert_int_eq(h.status, 200);
    ck_assert_ptr_nonnull(strstr(h.res_body, "name=\"email\""));
    ck_assert_ptr_nonnull(strstr(h.res_body, "csrfmiddlewaretoken"));
    tl_http_free(&h);
    tl_request(ctx, &h, "HEAD", RESET, NULL, NULL, NULL,
               guest_password_reset_view, NULL);
    ck_assert_int_eq(h.status, 200);
    tl_http_free(&h);

    int s1, s2;
    char *known = reset_post(ctx, "alice%40example.test", &s1);
    char *unknown = reset_post(ctx, "nobody%40example.test", &s2);
    ck_assert_int_eq(s1, 200);
    ck_assert_int_eq(s2, 200);
    ck_assert_str_eq(known, unknown);
    ck_assert_ptr_nonnull(strstr(known, "a link"));
    free(known);
    free(unknown);
    ck_assert_uint_eq(deliver(ctx), 1);
    ck_assert_str_eq(cap.to[0], "alice@example.test");

    /* CSRF refused: nothing queued */
    tl_request(ctx, &h, "POST", RESET, NULL, NULL, "email=alice%40example.test",
               guest_password_reset_view, NULL);
    ck_assert_int_eq(h.status, 403);
    tl_http_free(&h);
    ck_assert_int_eq(count("SELECT count(*) FROM @.outbox"), 1);
    /* wrong method */
    tl_request(ctx, &h, "PUT", RESET, NULL, NULL, NULL,
               guest_password_reset_view, NULL);
    ck_assert_int_eq(h.status, 405);
    tl_http_free(&h);
    /* empty address: the form again */
    int s3;
    char *empty = reset_post(ctx, "", &s3);
    ck_assert_int_eq(s3, 200);
    ck_assert_ptr_nonnull(strstr(empty, "This field is required."));
    free(empty);
    guest_ctx_free(ctx);
}
END_TEST

static void limits(guest_config *c)
{
    mail_on(c);
    c->password_reset_rate_limit = 2;
}

START_TEST(reset_rate_limited_is_429)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, limits);
    int st;
    free(reset_post(ctx, "a%40example.test", &st));
    ck_assert_int_eq(st, 200);
    free(reset_post(ctx, "b%40example.test", &st));
    ck_assert_int_eq(st, 200);
    tl_http h;
    tl_request(ctx, &h, "POST", RESET, csrf_only(), NULL,
               "email=c%40example.test" CSRF_FIELD, guest_password_reset_view,
               NULL);
    ck_assert_int_eq(h.status, 429);
    ck_assert_ptr_nonnull(tl_http_res_header(&h, "Retry-After"));
    tl_http_free(&h);
    guest_ctx_free(ctx);
}
END_TEST

/* The whole reset: request, mail, link, form, new password, login. */
START_TEST(reset_flow_end_to_end)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, mail_on);
    int64_t id = tl_new_user(ctx, "alice", TL_PASSWORD);
    set_address(id, "alice", "example.test");
    char old_cookie[300];
    login(ctx, "alice", TL_PASSWORD, old_cookie, sizeof old_cookie, true);
    int st;
    free(reset_post(ctx, "alice%40example.test", &st));
    ck_assert_int_eq(st, 200);
    ck_assert_uint_eq(deliver(ctx), 1);
    char token[64], target[128];
    link_token(0, RESET, token, sizeof token);
    snprintf(target, sizeof target, RESET "%s/", token);

    /* GET: the form, twice (opening does not use the link up) */
    tl_http h;
    for (int i = 0; i < 2; i++) {
        tl_request(ctx, &h, "GET", target, NULL, NULL, NULL,
                   guest_password_reset_confirm_view, NULL);
        ck_assert_int_eq(h.status, 200);
        ck_assert_str_eq(tl_http_res_header(&h, "Referrer-Policy"),
                         "same-origin");
        ck_assert_ptr_nonnull(strstr(h.res_body, "name=\"new_password1\""));
        ck_assert_ptr_nonnull(strstr(h.res_body, "alice"));
        tl_http_free(&h);
    }
    /* a wrong method, still with the header */
    tl_request(ctx, &h, "PUT", target, NULL, NULL, NULL,
               guest_password_reset_confirm_view, NULL);
    ck_assert_int_eq(h.status, 405);
    ck_assert_str_eq(tl_http_res_header(&h, "Allow"), "GET, HEAD, POST");
    ck_assert_str_eq(tl_http_res_header(&h, "Referrer-Policy"), "same-origin");
    tl_http_free(&h);
    /* CSRF refused, still with the header */
    tl_request(ctx, &h, "POST", target, NULL, NULL,
               "new_password1=" NEW_PASSWORD "&new_password2=" NEW_PASSWORD,
               guest_password_reset_confirm_view, NULL);
    ck_assert_int_eq(h.status, 403);
    ck_assert_str_eq(tl_http_res_header(&h, "Referrer-Policy"), "same-origin");
    tl_http_free(&h);
    /* passwords that differ: the form again with its message */
    tl_request(ctx, &h, "POST", target, csrf_only(), NULL,
               "new_password1=" NEW_PASSWORD "&new_password2=other" CSRF_FIELD,
               guest_password_reset_confirm_view, NULL);
    ck_assert_int_eq(h.status, 200);
    ck_assert_ptr_nonnull(strstr(h.res_body, "errorlist"));
    ck_assert_str_eq(tl_http_res_header(&h, "Referrer-Policy"), "same-origin");
    tl_http_free(&h);
    /* set */
    tl_request(ctx, &h, "POST", target, csrf_only(), NULL,
               "new_password1=" NEW_PASSWORD
               "&new_password2=" NEW_PASSWORD CSRF_FIELD,
               guest_password_reset_confirm_view, NULL);
    ck_assert_int_eq(h.status, 200);
    ck_assert_ptr_nonnull(strstr(h.res_body, "Your password was set"));
    ck_assert_ptr_nonnull(strstr(h.res_body, "/accounts/login/"));
    ck_assert_str_eq(tl_http_res_header(&h, "Referrer-Policy"), "same-origin");
    tl_http_free(&h);
    /* old session gone, old password refused, new one works */
    char session[128];
    ck_assert(sscanf(old_cookie, "%127[^;]", session) == 1);
    ck_assert_int_eq(tl_whoami(ctx, session, NULL), 0);
    char c2[300];
    login(ctx, "alice", TL_PASSWORD, c2, sizeof c2, false);
    login(ctx, "alice", NEW_PASSWORD, c2, sizeof c2, true);
    /* the link is used: a clear page, 400, the header */
    tl_request(ctx, &h, "GET", target, NULL, NULL, NULL,
               guest_password_reset_confirm_view, NULL);
    ck_assert_int_eq(h.status, 400);
    ck_assert_ptr_nonnull(strstr(h.res_body, "invalid or was used"));
    ck_assert_str_eq(tl_http_res_header(&h, "Referrer-Policy"), "same-origin");
    tl_http_free(&h);
    tl_request(ctx, &h, "POST", target, csrf_only(), NULL,
               "new_password1=" NEW_PASSWORD
               "&new_password2=" NEW_PASSWORD CSRF_FIELD,
               guest_password_reset_confirm_view, NULL);
    ck_assert_int_eq(h.status, 400);
    tl_http_free(&h);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(dead_and_foreign_tokens_are_refused)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, mail_on);
    int64_t id = tl_new_user(ctx, "alice", TL_PASSWORD);
    set_address(id, "alice", "example.test");
    int st;
    free(reset_post(ctx, "alice%40example.test", &st));
    ck_assert_uint_eq(deliver(ctx), 1);
    char token[64], target[160];
    link_token(0, RESET, token, sizeof token);
    static const char *const bad[] = {
        RESET "/",
        RESET "short/",
        RESET "..%2f..%2f/",
        RESET "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/",
        RESET "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA!/",
        RESET "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/extra/",
        NULL};
    tl_http h;
    for (const char *const *b = bad; *b; b++) {
        tl_request(ctx, &h, "GET", *b, NULL, NULL, NULL,
                   guest_password_reset_confirm_view, NULL);
        ck_assert_int_eq(h.status, 400);
        tl_http_free(&h);
        tl_request(ctx, &h, "GET", *b, NULL, NULL, NULL,
                   guest_email_verify_view, NULL);
        ck_assert_int_eq(h.status, 400);
        tl_http_free(&h);
    }
    /* a reset token is no verification token */
    snprintf(target, sizeof target, VERIFY "%s/", token);
    tl_request(ctx, &h, "POST", target, csrf_only(), NULL, CSRF_FIELD + 1,
               guest_email_verify_view, NULL);
    ck_assert_int_eq(h.status, 400);
    tl_http_free(&h);
    /* expired */
    tl_exec_in(SCHEMA, "UPDATE @.email_tokens SET expires_at = now()"
                       " - interval '1 second'");
    snprintf(target, sizeof target, RESET "%s/", token);
    tl_request(ctx, &h, "GET", target, NULL, NULL, NULL,
               guest_password_reset_confirm_view, NULL);
    ck_assert_int_eq(h.status, 400);
    ck_assert_ptr_nonnull(strstr(h.res_body, "invalid or was used"));
    tl_http_free(&h);
    json_req(ctx, &h, "GET", target, NULL, NULL,
             guest_password_reset_confirm_view);
    ck_assert_int_eq(h.status, 400);
    json_t *j = json_loads(h.res_body, 0, NULL);
    ck_assert_ptr_nonnull(
        json_object_get(json_object_get(j, "errors"), "token"));
    json_decref(j);
    tl_http_free(&h);
    guest_ctx_free(ctx);
}
END_TEST

/* The address page, a new address, its link, the button. */
START_TEST(change_and_verify_flow)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, mail_on);
    tl_new_user(ctx, "bob", TL_PASSWORD);
    char cookie[300];
    login(ctx, "bob", TL_PASSWORD, cookie, sizeof cookie, true);
    tl_http h;
    /* anonymous and guests are sent away */
    tl_request(ctx, &h, "GET", EMAIL, NULL, NULL, NULL, guest_email_view, NULL);
    ck_assert_int_eq(h.status, 302);
    ck_assert_ptr_nonnull(
        strstr(tl_http_res_header(&h, "Location"), "/accounts/login/"));
    tl_http_free(&h);
    char guest[128];
    tl_new_guest(ctx, guest, sizeof guest);
    tl_request(ctx, &h, "GET", EMAIL, guest, NULL, NULL, guest_email_view,
               NULL);
    ck_assert_int_eq(h.status, 302);
    tl_http_free(&h);

    tl_request(ctx, &h, "GET", EMAIL, cookie, NULL, NULL, guest_email_view,
               NULL);
    ck_assert_int_eq(h.status, 200);
    ck_assert_ptr_nonnull(strstr(h.res_body, "no email address"));
    ck_assert_ptr_nonnull(strstr(h.res_body, "name=\"password\""));
    tl_http_free(&h);
    /* a wrong password: the form again, nothing queued */
    tl_request(ctx, &h, "POST", EMAIL, cookie, NULL,
               "email=bob%40example.test&password=wrong" CSRF_FIELD,
               guest_email_view, NULL);
    ck_assert_int_eq(h.status, 200);
    ck_assert_ptr_nonnull(strstr(h.res_body, "errorlist"));
    tl_http_free(&h);
    ck_assert_int_eq(count("SELECT count(*) FROM @.outbox"), 0);
    /* CSRF refused */
    tl_request(ctx, &h, "POST", EMAIL, cookie, NULL,
               "email=bob%40example.test&password=" TL_PASSWORD,
               guest_email_view, NULL);
    ck_assert_int_eq(h.status, 403);
    tl_http_free(&h);
    tl_request(ctx, &h, "POST", EMAIL, cookie, NULL,
               "email=bob%40example.test&password=" TL_PASSWORD CSRF_FIELD,
               guest_email_view, NULL);
    ck_assert_int_eq(h.status, 200);
    ck_assert_ptr_nonnull(strstr(h.res_body, "A link is on its way to"));
    ck_assert_ptr_nonnull(strstr(h.res_body, "bob@example.test"));
    tl_http_free(&h);
    ck_assert_uint_eq(deliver(ctx), 1);
    ck_assert_str_eq(cap.to[0], "bob@example.test");
    char token[64], target[128];
    link_token(0, VERIFY, token, sizeof token);
    snprintf(target, sizeof target, VERIFY "%s/", token);

    /* GET only shows the button: twice, nothing verified; the token in
     * the path stays on this site */
    for (int i = 0; i < 2; i++) {
        tl_request(ctx, &h, "GET", target, NULL, NULL, NULL,
                   guest_email_verify_view, NULL);
        ck_assert_int_eq(h.status, 200);
        ck_assert_str_eq(tl_http_res_header(&h, "Referrer-Policy"),
                         "same-origin");
        ck_assert_ptr_nonnull(strstr(h.res_body, "Confirm my address"));
        ck_assert_ptr_nonnull(strstr(h.res_body, "method=\"post\""));
        tl_http_free(&h);
    }
    ck_assert_int_eq(
        count("SELECT count(*) FROM @.users WHERE email IS NOT NULL"), 0);
    /* the button without CSRF: refused */
    tl_request(ctx, &h, "POST", target, NULL, NULL, "", guest_email_verify_view,
               NULL);
    ck_assert_int_eq(h.status, 403);
    tl_http_free(&h);
    tl_request(ctx, &h, "POST", target, csrf_only(), NULL, CSRF_FIELD + 1,
               guest_email_verify_view, NULL);
    ck_assert_int_eq(h.status, 200);
    ck_assert_ptr_nonnull(strstr(h.res_body, "bob@example.test"));
    ck_assert_ptr_nonnull(strstr(h.res_body, "is verified"));
    tl_http_free(&h);
    /* used */
    tl_request(ctx, &h, "POST", target, csrf_only(), NULL, CSRF_FIELD + 1,
               guest_email_verify_view, NULL);
    ck_assert_int_eq(h.status, 400);
    ck_assert_ptr_nonnull(strstr(h.res_body, "invalid or was used"));
    ck_assert_str_eq(tl_http_res_header(&h, "Referrer-Policy"), "same-origin");
    tl_http_free(&h);
    tl_request(ctx, &h, "DELETE", target, NULL, NULL, NULL,
               guest_email_verify_view, NULL);
    ck_assert_int_eq(h.status, 405);
    ck_assert_str_eq(tl_http_res_header(&h, "Referrer-Policy"), "same-origin");
    tl_http_free(&h);
    /* the page shows it, verified */
    tl_request(ctx, &h, "GET", EMAIL, cookie, NULL, NULL, guest_email_view,
               NULL);
    ck_assert_int_eq(h.status, 200);
    ck_assert_ptr_nonnull(strstr(h.res_body, "bob@example.test"));
    ck_assert_ptr_nonnull(strstr(h.res_body, "(verified)"));
    tl_http_free(&h);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(json_mode)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, mail_on);
    int64_t id = tl_new_user(ctx, "carol", TL_PASSWORD);
    set_address(id, "carol", "example.test");
    char cookie[300];
    login(ctx, "carol", TL_PASSWORD, cookie, sizeof cookie, true);
    tl_http h;
    json_req(ctx, &h, "GET", EMAIL, cookie, NULL, guest_email_view);
    ck_assert_int_eq(h.status, 200);
    json_t *j = json_loads(h.res_body, 0, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(j, "email")),
                     "carol@example.test");
    ck_assert(json_is_true(json_object_get(j, "email_verified")));
    ck_assert(json_is_true(json_object_get(j, "has_password")));
    ck_assert_ptr_nonnull(json_string_value(json_object_get(j, "csrf_token")));
    json_decref(j);
    tl_http_free(&h);
    /* a refused change: 400 with the field */
    json_req(ctx, &h, "POST", EMAIL, cookie,
             "{\"email\": \"not an address\", \"password\": \"" TL_PASSWORD
             "\"}",
             guest_email_view);
    ck_assert_int_eq(h.status, 400);
    j = json_loads(h.res_body, 0, NULL);
    ck_assert_ptr_nonnull(
        json_object_get(json_object_get(j, "errors"), "email"));
    json_decref(j);
    tl_http_free(&h);
    /* anonymous: 403 with a redirect */
    json_req(ctx, &h, "GET", EMAIL, NULL, NULL, guest_email_view);
    ck_assert_int_eq(h.status, 403);
    tl_http_free(&h);

    /* reset request and confirm */
    json_req(ctx, &h, "POST", RESET, csrf_only(),
             "{\"email\": \"carol@example.test\"}", guest_password_reset_view);
    ck_assert_int_eq(h.status, 200);
    ck_assert_str_eq(h.res_body, "{\"sent\":true}\n");
    tl_http_free(&h);
    json_req(ctx, &h, "POST", RESET, csrf_only(),
             "{\"email\": \"nobody@example.test\"}", guest_password_reset_view);
    ck_assert_int_eq(h.status, 200);
    ck_assert_str_eq(h.res_body, "{\"sent\":true}\n");
    tl_http_free(&h);
    ck_assert_uint_eq(deliver(ctx), 1);
    char token[64], target[128];
    link_token(0, RESET, token, sizeof token);
    snprintf(target, sizeof target, RESET "%s/", token);
    json_req(ctx, &h, "GET", target, NULL, NULL,
             guest_password_reset_confirm_view);
    ck_assert_int_eq(h.status, 200);
    j = json_loads(h.res_body, 0, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(j, "username")),
                     "carol");
    json_decref(j);
    ck_assert_str_eq(tl_http_res_header(&h, "Referrer-Policy"), "same-origin");
    tl_http_free(&h);
    json_req(ctx, &h, "POST", target, csrf_only(),
             "{\"new_password1\": \"" NEW_PASSWORD
             "\", \"new_password2\": \"x\"}",
             guest_password_reset_confirm_view);
    ck_assert_int_eq(h.status, 400);
    tl_http_free(&h);
    json_req(ctx, &h, "POST", target, csrf_only(),
             "{\"new_password1\": \"" NEW_PASSWORD
             "\", \"new_password2\": \"" NEW_PASSWORD "\"}",
             guest_password_reset_confirm_view);
    ck_assert_int_eq(h.status, 200);
    j = json_loads(h.res_body, 0, NULL);
    ck_assert(json_is_true(json_object_get(j, "done")));
    json_decref(j);
    tl_http_free(&h);
    char c2[300];
    login(ctx, "carol", NEW_PASSWORD, c2, sizeof c2, true);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(json_change_and_verify)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, mail_on);
    tl_new_user(ctx, "dave", TL_PASSWORD);
    int64_t erin = tl_new_user(ctx, "erin", TL_PASSWORD);
    char cookie[300];
    login(ctx, "dave", TL_PASSWORD, cookie, sizeof cookie, true);
    tl_http h;
    /* the reset form in JSON: its token */
    json_req(ctx, &h, "GET", RESET, NULL, NULL, guest_password_reset_view);
    ck_assert_int_eq(h.status, 200);
    json_t *j = json_loads(h.res_body, 0, NULL);
    ck_assert_ptr_nonnull(json_string_value(json_object_get(j, "csrf_token")));
    json_decref(j);
    tl_http_free(&h);
    /* a field that is not UTF-8 */
    tl_request(ctx, &h, "POST", EMAIL, cookie, NULL,
               "email=%FF%FE&password=x" CSRF_FIELD, guest_email_view, NULL);
    ck_assert_int_eq(h.status, 400);
    ck_assert_ptr_nonnull(strstr(h.res_body, "not valid text"));
    tl_http_free(&h);
    /* a change: sent */
    cap.n = 0;
    json_req(ctx, &h, "POST", EMAIL, cookie,
             "{\"email\": \"dave@example.test\", \"password\": \"" TL_PASSWORD
             "\"}",
             guest_email_view);
    ck_assert_int_eq(h.status, 200);
    ck_assert_str_eq(h.res_body,
                     "{\"sent\":true,\"email\":\"dave@example.test\"}\n");
    tl_http_free(&h);
    ck_assert_uint_eq(deliver(ctx), 1);
    char token[64], target[128];
    link_token(0, VERIFY, token, sizeof token);
    snprintf(target, sizeof target, VERIFY "%s/", token);
    /* the link in JSON: live, then verified */
    json_req(ctx, &h, "GET", target, NULL, NULL, guest_email_verify_view);
    ck_assert_int_eq(h.status, 200);
    ck_assert_ptr_nonnull(strstr(h.res_body, "csrf_token"));
    tl_http_free(&h);
    json_req(ctx, &h, "POST", target, csrf_only(), "{}",
             guest_email_verify_view);
    ck_assert_int_eq(h.status, 200);
    ck_assert_str_eq(h.res_body,
                     "{\"email\":\"dave@example.test\",\"verified\":true}\n");
    tl_http_free(&h);
    /* a second change to an address erin verifies before dave's link is
     * used: the link is refused */
    cap.n = 0;
    json_req(ctx, &h, "POST", EMAIL, cookie,
             "{\"email\": \"shared@example.test\", \"password\": \"" TL_PASSWORD
             "\"}",
             guest_email_view);
    ck_assert_int_eq(h.status, 200);
    tl_http_free(&h);
    ck_assert_uint_eq(deliver(ctx), 1);
    link_token(0, VERIFY, token, sizeof token);
    snprintf(target, sizeof target, VERIFY "%s/", token);
    set_address(erin, "shared", "example.test");
    json_req(ctx, &h, "POST", target, csrf_only(), "{}",
             guest_email_verify_view);
    ck_assert_int_eq(h.status, 400);
    ck_assert_ptr_nonnull(strstr(h.res_body, "already exists"));
    tl_http_free(&h);
    ck_assert_int_eq(count("SELECT count(*) FROM @.users WHERE"
                           " username = 'dave' AND email LIKE 'dave%'"),
                     1);
    /* without a request, nothing happens */
    guest_password_reset_view(NULL, NULL);
    guest_password_reset_confirm_view(NULL, NULL);
    guest_email_view(NULL, NULL);
    guest_email_verify_view(NULL, NULL);
    guest_ctx_free(ctx);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("email_views");
    TCase *t = tcase_create("db");
    tcase_add_checked_fixture(t, setup, NULL);
    tcase_set_timeout(t, 120);
    tcase_add_test(t, reset_form_and_the_same_answer_for_every_address);
    tcase_add_test(t, reset_rate_limited_is_429);
    tcase_add_test(t, reset_flow_end_to_end);
    tcase_add_test(t, dead_and_foreign_tokens_are_refused);
    tcase_add_test(t, change_and_verify_flow);
    tcase_add_test(t, json_mode);
    tcase_add_test(t, json_change_and_verify);
    suite_add_tcase(s, t);
    return tl_run(s);
}

/* Password reset in the guestuser-demo program over real HTTP, with each
 * --server it has (DEMO_EMAIL_SERVERS, comma-separated), the outbox
 * delivered by its own --smtp-url sender to the `smtp` fixture's real
 * server: the reset form, the mail as received, its link, the new
 * password, the old session gone and a login with the new password; and
 * the address change: the form, the verification mail, its link's button,
 * the address verified on the profile, the old address told. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "demo_proc.h"
#include "smtp_env.h"
#include "testlib.h"

#define NEW_PASSWORD "Brand-New-Horse-77"
#define CSRF_COOKIE "csrftoken=" TL_CSRF
#define CSRF_FIELD "csrfmiddlewaretoken=" TL_CSRF

/* The demo on @p server and @p schema with its sender on the smtp
 * fixture. */
static void demo_start(demo_proc *d, const char *server, const char *schema)
{
    const char *smtp_url = smtp_server_env(smtp_fixture(), "SMTP_URL");
    ck_assert_ptr_nonnull(smtp_url);
    const char *more[] = {"--smtp-url",
                          smtp_url,
                          "--smtp-starttls",
                          "off",
                          "--mail-from",
                          "Demo <noreply@example.test>",
                          "--password-reset-timeout",
                          "900",
                          NULL};
    demo_proc_start_on(d, server, schema, more);
}

static void demo_stop(demo_proc *d)
{
    demo_proc_stop(d, true);
}

static char *http(const demo_proc *d, const char *method, const char *path,
                  const char *cookie, const char *body)
{
    return demo_proc_http(d, method, path, cookie, body);
}

static void login_handler(guest_req *req, void *ud)
{
    const char **up = ud;
    guest_status st = guest_login(req, up[0], up[1], NULL, NULL);
    ck_assert_int_eq(st, up[2] ? GUEST_OK : GUEST_ERR_AUTH);
}

/* A login through the library on the demo's schema: the session into
 * @p session ("sessionid=..."), or a refused one. */
static void login(guest_ctx *ctx, const char *name, const char *password,
                  char *session, size_t size, bool ok)
{
    tl_http h;
    const char *up[3] = {name, password, ok ? "" : NULL};
    tl_request(ctx, &h, "POST", "/login/", NULL, NULL, NULL, login_handler,
               (void *)up);
    if (ok)
        ck_assert(tl_http_cookie(&h, "sessionid", session, size));
    tl_http_free(&h);
}

static void reset_on(const char *server)
{
    char schema[64], user[64], rcpt[96], sql[512];
    snprintf(schema, sizeof schema, "t_demo_email_%s", server);
    snprintf(user, sizeof user, "reset_%s", server);
    snprintf(rcpt, sizeof rcpt, "reset-%s-%d@example.test", server,
             (int)getpid());
    demo_proc d;
    demo_start(&d, server, schema);
    guest_ctx *ctx = tl_ctx(schema, NULL);
    int64_t id = tl_new_user(ctx, user, TL_PASSWORD);
    const char *at = strchr(rcpt, '@');
    snprintf(sql, sizeof sql,
             "UPDATE @.users SET email = '%.*s' || chr(64) || '%s',"
             " email_verified_at = now() WHERE id = %lld",
             (int)(at - rcpt), rcpt, at + 1, (long long)id);
    tl_exec_in(schema, sql);
    char old_session[128];
    login(ctx, user, TL_PASSWORD, old_session, sizeof old_session, true);

    /* the login page links to the form; the form; the answer */
    char *res = http(&d, "GET", "/accounts/login/", NULL, NULL);
    ck_assert_int_eq(tl_raw_status(res), 200);
    ck_assert_ptr_nonnull(strstr(res, "/accounts/password/reset/"));
    free(res);
    res = http(&d, "GET", "/accounts/password/reset/", NULL, NULL);
    ck_assert_int_eq(tl_raw_status(res), 200);
    free(res);
    char body[512];
    snprintf(body, sizeof body, "email=%.*s%%40%s&" CSRF_FIELD,
             (int)(at - rcpt), rcpt, at + 1);
    res = http(&d, "POST", "/accounts/password/reset/", CSRF_COOKIE, body);
    ck_assert_int_eq(tl_raw_status(res), 200);
    ck_assert_ptr_nonnull(strstr(tl_raw_body(res), "a link"));
    free(res);

    /* the mail, as the SMTP server got it */
    smtp_message *msgs = NULL;
    size_t n = smtp_wait_messages(smtp_fixture(), rcpt, 1, 30000, &msgs);
    ck_assert_uint_eq(n, 1);
    char *text = smtp_inspect(msgs[0].path, "text");
    ck_assert_ptr_nonnull(text);
    char path[160];
    demo_proc_link(&d, text, "/accounts/password/reset/", path, sizeof path);
    free(text);
    smtp_messages_free(msgs, n);

    /* the link: the form, twice, never referring */
    for (int i = 0; i < 2; i++) {
        res = http(&d, "GET", path, NULL, NULL);
        ck_assert_int_eq(tl_raw_status(res), 200);
        char *rp = tl_raw_header(res, "Referrer-Policy");
        ck_assert_ptr_nonnull(rp);
        ck_assert_str_eq(rp, "same-origin");
        free(rp);
        ck_assert_ptr_nonnull(strstr(res, "new_password1"));
        free(res);
    }
    res = http(&d, "POST", path, CSRF_COOKIE,
               "new_password1=" NEW_PASSWORD "&new_password2=" NEW_PASSWORD
               "&" CSRF_FIELD);
    ck_assert_int_eq(tl_raw_status(res), 200);
    ck_assert_ptr_nonnull(strstr(res, "Your password was set"));
    free(res);
    /* used up */
    res = http(&d, "GET", path, NULL, NULL);
    ck_assert_int_eq(tl_raw_status(res), 400);
    free(res);
    /* the old session is gone, the old password refused, the new works */
    ck_assert_int_eq(tl_whoami(ctx, old_session, NULL), 0);
    char s2[128];
    login(ctx, user, TL_PASSWORD, s2, sizeof s2, false);
    login(ctx, user, NEW_PASSWORD, s2, sizeof s2, true);
    guest_ctx_free(ctx);
    demo_stop(&d);
}

/* Changes the address of the user logged in as @p cookies (session and
 * CSRF) to @p local@example.test and verifies it through the mailed link;
 * the profile then shows it verified. */
static void change_address(const demo_proc *d, const char *cookies,
                           const char *local)
{
    char rcpt[128], body[512], path[256];
    snprintf(rcpt, sizeof rcpt, "%s@example.test", local);
    char *res = http(d, "GET", "/accounts/email/", cookies, NULL);
    ck_assert_int_eq(tl_raw_status(res), 200);
    free(res);
    snprintf(body, sizeof body,
             "email=%s%%40example.test&password=%s&" CSRF_FIELD, local,
             TL_PASSWORD);
    res = http(d, "POST", "/accounts/email/", cookies, body);
    ck_assert_msg(tl_raw_status(res) == 200, "%s", res);
    free(res);
    smtp_message *msgs = NULL;
    size_t n = smtp_wait_messages(smtp_fixture(), rcpt, 1, 30000, &msgs);
    ck_assert_uint_eq(n, 1);
    char *subject = smtp_inspect(msgs[0].path, "subject");
    ck_assert_ptr_nonnull(subject);
    ck_assert_ptr_nonnull(strstr(subject, "Confirm your e-mail address"));
    free(subject);
    char *text = smtp_inspect(msgs[0].path, "text");
    ck_assert_ptr_nonnull(text);
    demo_proc_link(d, text, "/accounts/email/verify/", path, sizeof path);
    free(text);
    smtp_messages_free(msgs, n);
    /* the link shows a button and uses up nothing */
    for (int i = 0; i < 2; i++) {
        res = http(d, "GET", path, NULL, NULL);
        ck_assert_int_eq(tl_raw_status(res), 200);
        ck_assert_ptr_nonnull(strstr(res, "<button"));
        free(res);
    }
    /* not yet: the profile does not show the new address as verified */
    res = http(d, "GET", "/accounts/profile/", cookies, NULL);
    ck_assert_int_eq(tl_raw_status(res), 200);
    char shown[256];
    snprintf(shown, sizeof shown, "<strong>%s</strong> (verified)", rcpt);
    ck_assert_ptr_null(strstr(res, shown));
    free(res);
    res = http(d, "POST", path, CSRF_COOKIE, CSRF_FIELD);
    ck_assert_msg(tl_raw_status(res) == 200, "%s", res);
    free(res);
    /* used up */
    res = http(d, "POST", path, CSRF_COOKIE, CSRF_FIELD);
    ck_assert_int_eq(tl_raw_status(res), 400);
    free(res);
    res = http(d, "GET", path, NULL, NULL);
    ck_assert_int_eq(tl_raw_status(res), 400);
    ck_assert_ptr_null(strstr(res, "<button"));
    free(res);
    res = http(d, "GET", "/accounts/profile/", cookies, NULL);
    ck_assert_int_eq(tl_raw_status(res), 200);
    ck_assert_msg(strstr(res, shown) != NULL, "not %s in: %s", shown, res);
    free(res);
}

static void change_on(const char *server)
{
    char schema[64], user[64], first[96], second[96], old[128];
    snprintf(schema, sizeof schema, "t_demo_email_change_%s", server);
    snprintf(user, sizeof user, "change_%s", server);
    snprintf(first, sizeof first, "first-%s-%d", server, (int)getpid());
    snprintf(second, sizeof second, "second-%s-%d", server, (int)getpid());
    demo_proc d;
    demo_start(&d, server, schema);
    guest_ctx *ctx = tl_ctx(schema, NULL);
    (void)tl_new_user(ctx, user, TL_PASSWORD);
    guest_ctx_free(ctx);

    /* logged in through the demo's own form */
    char body[512], session[256], cookies[512];
    snprintf(body, sizeof body, "username=%s&password=%s&" CSRF_FIELD, user,
             TL_PASSWORD);
    char *res = http(&d, "POST", "/accounts/login/", CSRF_COOKIE, body);
    ck_assert_msg(tl_raw_status(res) == 302, "%s", res);
    ck_assert(demo_proc_cookie(res, "sessionid", session, sizeof session));
    free(res);
    snprintf(cookies, sizeof cookies, "%s; " CSRF_COOKIE, session);

    /* a first address: nobody to tell */
    change_address(&d, cookies, first);
    /* a second: the first, verified, is told */
    change_address(&d, cookies, second);
    snprintf(old, sizeof old, "%s@example.test", first);
    smtp_message *msgs = NULL;
    size_t n = smtp_wait_messages(smtp_fixture(), old, 2, 30000, &msgs);
    ck_assert_uint_eq(n, 2);
    bool told = false;
    for (size_t i = 0; i < n; i++) {
        char *subject = smtp_inspect(msgs[i].path, "subject");
        ck_assert_ptr_nonnull(subject);
        if (strstr(subject, "Your e-mail address was changed")) {
            char *text = smtp_inspect(msgs[i].path, "text");
            ck_assert_ptr_nonnull(text);
            ck_assert_msg(strstr(text, second) != NULL, "%s", text);
            free(text);
            told = true;
        }
        free(subject);
    }
    ck_assert(told);
    smtp_messages_free(msgs, n);
    demo_stop(&d);
}

START_TEST(reset_on_each_server)
{
    const char *list = getenv("DEMO_EMAIL_SERVERS");
    char servers[128];
    snprintf(servers, sizeof servers, "%s", list && *list ? list : "mhd");
    int done = 0;
    for (char *save, *s = strtok_r(servers, ",", &save); s;
         s = strtok_r(NULL, ",", &save)) {
        reset_on(s);
        done++;
    }
    ck_assert_int_gt(done, 0);
}
END_TEST

START_TEST(address_change_on_each_server)
{
    const char *list = getenv("DEMO_EMAIL_SERVERS");
    char servers[128];
    snprintf(servers, sizeof servers, "%s", list && *list ? list : "mhd");
    int done = 0;
    for (char *save, *s = strtok_r(servers, ",", &save); s;
         s = strtok_r(NULL, ",", &save)) {
        change_on(s);
        done++;
    }
    ck_assert_int_gt(done, 0);
}
END_TEST

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    Suite *s = suite_create("demo_email");
    TCase *t = tcase_create("demo");
    tcase_set_timeout(t, 240);
    tcase_add_test(t, reset_on_each_server);
    tcase_add_test(t, address_change_on_each_server);
    suite_add_tcase(s, t);
    return tl_run(s);
}

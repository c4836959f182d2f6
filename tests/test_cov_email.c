/* E-mail on accounts where test_email.c does not go: a render callback
 * that returns no subject or runs out of memory queues nothing, a reset
 * confirmed with empty passwords and an address change with neither
 * address nor password are refused field by field, and one pass of the
 * sender delivers no more than its limit, however large the limit; the
 * queue's listing stops when told and refuses NULL; the address page
 * locks out password guessing. Against the fixture database, through a
 * transport of the test's own. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"

#define SCHEMA "t_cov_email"

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

/* The mails a transport of the test's got: the last text, how many. */
typedef struct got {
    int n;
    char text[2048];
} got;

static guest_mail_result keep(const guest_mail *m, void *ud, char *e, size_t es)
{
    (void)e;
    (void)es;
    got *g = ud;
    g->n++;
    snprintf(g->text, sizeof g->text, "%s", m->text);
    return GUEST_MAIL_SENT;
}

static unsigned deliver(guest_ctx *ctx, got *g, size_t limit)
{
    guest_mail_transport t = {.send = keep, .userdata = g};
    unsigned sent = 0, failed = 9;
    ck_assert_int_eq(guest_mail_send_due(ctx, &t, limit, &sent, &failed, NULL),
                     GUEST_OK);
    ck_assert_uint_eq(failed, 0);
    return sent;
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

typedef struct call {
    enum { RESET_REQUEST, RESET_CONFIRM, EMAIL_CHANGE } what;
    const char *a, *b, *c;
    guest_status st;
    guest_form_errors errors;
    guest_error err;
} call;

static void call_handler(guest_req *req, void *ud)
{
    call *c = ud;
    if (c->what == RESET_REQUEST)
        c->st = guest_password_reset_request(req, c->a, &c->err);
    else if (c->what == RESET_CONFIRM)
        c->st = guest_password_reset_confirm(req, c->a, c->b, c->c, &c->errors,
                                             &c->err);
    else
        c->st = guest_email_change(req, c->a, c->b, &c->errors, &c->err);
}

static void run(guest_ctx *ctx, const char *cookie, call *c)
{
    tl_http h;
    tl_http_init(&h, "POST", "/");
    if (cookie)
        tl_http_add(&h, "Cookie", cookie);
    tl_http_run(ctx, &h, call_handler, c);
    tl_http_free(&h);
}

/* ---- a render callback that fails ---- */

static guest_status render_no_subject(const guest_mail_vars *v,
                                      guest_mail_content *out, void *ud)
{
    (void)ud;
    guest_status st = guest_mail_render_default(v, out);
    free(out->subject);
    out->subject = NULL;
    return st;
}

static guest_status render_nomem(const guest_mail_vars *v,
                                 guest_mail_content *out, void *ud)
{
    (void)v;
    (void)out;
    (void)ud;
    return GUEST_ERR_NOMEM;
}

static void no_subject(guest_config *c)
{
    mail_on(c);
    c->render_mail = render_no_subject;
}

static void nomem(guest_config *c)
{
    mail_on(c);
    c->render_mail = render_nomem;
}

START_TEST(a_mail_that_cannot_be_rendered_queues_nothing)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, no_subject);
    int64_t id = tl_new_user(ctx, "ida", TL_PASSWORD);
    set_address(id, "ida", "example.test");
    call c = {.what = RESET_REQUEST, .a = "ida@example.test"};
    run(ctx, NULL, &c);
    ck_assert_int_eq(c.st, GUEST_ERR_HOOK);
    ck_assert_msg(strstr(c.err.message, "could not be rendered"), "%s",
                  c.err.message);
    ck_assert_int_eq(count("SELECT count(*) FROM @.outbox"), 0);
    ck_assert_int_eq(count("SELECT count(*) FROM @.email_tokens"), 0);
    guest_ctx_free(ctx);

    /* Out of memory stays out of memory, not the hook's fault. */
    ctx = tl_ctx(SCHEMA, nomem);
    call d = {.what = RESET_REQUEST, .a = "ida@example.test"};
    run(ctx, NULL, &d);
    ck_assert_int_eq(d.st, GUEST_ERR_NOMEM);
    ck_assert_int_eq(count("SELECT count(*) FROM @.outbox"), 0);
    ck_assert_int_eq(count("SELECT count(*) FROM @.email_tokens"), 0);
    guest_ctx_free(ctx);
}
END_TEST

/* ---- fields left empty ---- */

static void login_cookie(guest_ctx *ctx, const char *name, char *out,
                         size_t size)
{
    tl_http h;
    char body[256];
    snprintf(body, sizeof body,
             "username=%s&password=" TL_PASSWORD
             "&csrfmiddlewaretoken=" TL_CSRF,
             name);
    tl_request(ctx, &h, "POST", "/accounts/login/", "csrftoken=" TL_CSRF, NULL,
               body, guest_login_view, NULL);
    ck_assert_int_eq(h.status, 302);
    ck_assert(tl_http_cookie(&h, "sessionid", out, size));
    tl_http_free(&h);
}

START_TEST(empty_fields_are_each_required)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, mail_on);
    int64_t id = tl_new_user(ctx, "jo", TL_PASSWORD);
    set_address(id, "jo", "example.test");

    /* A live reset link, then empty new passwords. */
    call r = {.what = RESET_REQUEST, .a = "jo@example.test"};
    run(ctx, NULL, &r);
    ck_assert_int_eq(r.st, GUEST_OK);
    got g = {0};
    ck_assert_uint_eq(deliver(ctx, &g, 0), 1);
    const char *path = "https://example.test/accounts/password/reset/";
    const char *p = strstr(g.text, path);
    ck_assert_ptr_nonnull(p);
    p += strlen(path);
    char token[128];
    size_t n = strcspn(p, "/");
    ck_assert_uint_lt(n, sizeof token);
    memcpy(token, p, n);
    token[n] = '\0';
    call c = {.what = RESET_CONFIRM, .a = token, .b = "", .c = NULL};
    run(ctx, NULL, &c);
    ck_assert_int_eq(c.st, GUEST_ERR_VALIDATION);
    ck_assert_str_eq(guest_form_errors_get(&c.errors, "new_password1"),
                     "This field is required.");
    ck_assert_str_eq(guest_form_errors_get(&c.errors, "new_password2"),
                     "This field is required.");
    /* The link still works. */
    ck_assert_int_eq(guest_password_reset_check(ctx, token, NULL, NULL),
                     GUEST_OK);

    /* An address change with neither address nor password. */
    char cookie[128];
    login_cookie(ctx, "jo", cookie, sizeof cookie);
    call e = {.what = EMAIL_CHANGE, .a = "", .b = NULL};
    run(ctx, cookie, &e);
    ck_assert_int_eq(e.st, GUEST_ERR_VALIDATION);
    ck_assert_str_eq(guest_form_errors_get(&e.errors, "email"),
                     "This field is required.");
    ck_assert_str_eq(guest_form_errors_get(&e.errors, "password"),
                     "This field is required.");
    ck_assert_int_eq(count("SELECT count(*) FROM @.outbox WHERE sent_at IS NULL"
                           " AND failed_at IS NULL"),
                     0);
    guest_ctx_free(ctx);
}
END_TEST

/* ---- the sender's limit ---- */

static bool count_mail(const guest_mail_info *m, void *ud)
{
    ck_assert_ptr_nonnull(strstr(m->to, "@example.test"));
    (*(int *)ud)++;
    return true;
}

static bool stop_after_one(const guest_mail_info *m, void *ud)
{
    (void)m;
    (*(int *)ud)++;
    return false;
}

START_TEST(one_pass_delivers_no_more_than_its_limit)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, mail_on);
    const char *names[] = {"kai", "lea", "max"};
    for (int i = 0; i < 3; i++) {
        int64_t id = tl_new_user(ctx, names[i], TL_PASSWORD);
        set_address(id, names[i], "example.test");
        char email[64];
        snprintf(email, sizeof email, "%s@example.test", names[i]);
        call r = {.what = RESET_REQUEST, .a = email};
        run(ctx, NULL, &r);
        ck_assert_int_eq(r.st, GUEST_OK);
    }
    /* The queue as listed: all three, or as many as the callback wants. */
    int listed = 0;
    ck_assert_int_eq(guest_mail_queue_list(ctx, 0, count_mail, &listed, NULL),
                     GUEST_OK);
    ck_assert_int_eq(listed, 3);
    listed = 0;
    ck_assert_int_eq(
        guest_mail_queue_list(ctx, 0, stop_after_one, &listed, NULL), GUEST_OK);
    ck_assert_int_eq(listed, 1);
    ck_assert_int_eq(guest_mail_queue_list(NULL, 0, count_mail, &listed, NULL),
                     GUEST_ERR_INVALID);
    uint64_t retried = 7;
    ck_assert_int_eq(guest_mail_retry_failed(NULL, &retried, NULL),
                     GUEST_ERR_INVALID);
    ck_assert_uint_eq(retried, 0);
    got g = {0};
    /* A limit reached exactly stops the pass. */
    ck_assert_uint_eq(deliver(ctx, &g, 1), 1);
    ck_assert_int_eq(g.n, 1);
    /* A limit over one batch takes what there is. */
    ck_assert_uint_eq(deliver(ctx, &g, 100000), 2);
    ck_assert_int_eq(g.n, 3);
    ck_assert_uint_eq(deliver(ctx, &g, 100000), 0);
    guest_ctx_free(ctx);
}
END_TEST

/* Guessing one's own password on the address page counts as failed
 * logins: past login_rate_limit the page answers 429 with Retry-After and
 * the lock-out message, and sends no link. */
START_TEST(the_address_page_locks_out_password_guessing)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, mail_on);
    tl_new_user(ctx, "pat", TL_PASSWORD);
    char cookie[128];
    login_cookie(ctx, "pat", cookie, sizeof cookie);
    guest_config def;
    guest_config_init(&def);
    char session_csrf[256];
    snprintf(session_csrf, sizeof session_csrf, "%s; csrftoken=" TL_CSRF,
             cookie);
    int status = 0;
    for (unsigned i = 0; i <= def.login_rate_limit; i++) {
        tl_http h;
        tl_request(ctx, &h, "POST", "/accounts/email/", session_csrf, NULL,
                   "email=pat%40new.test&password=wrong"
                   "&csrfmiddlewaretoken=" TL_CSRF,
                   guest_email_view, NULL);
        status = h.status;
        if (i < def.login_rate_limit) {
            ck_assert_msg(status == 200, "attempt %u: %d", i, status);
            ck_assert_ptr_nonnull(strstr(h.res_body, "password"));
        } else {
            ck_assert_msg(status == 429, "attempt %u: %d", i, status);
            ck_assert_ptr_nonnull(tl_http_res_header(&h, "Retry-After"));
            ck_assert_ptr_nonnull(
                strstr(h.res_body, "Too many failed login attempts."));
        }
        tl_http_free(&h);
    }
    ck_assert_int_eq(count("SELECT count(*) FROM @.outbox"), 0);
    ck_assert_int_eq(count("SELECT count(*) FROM @.email_tokens"), 0);
    guest_ctx_free(ctx);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cov_email");
    TCase *tc = tcase_create("email");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, a_mail_that_cannot_be_rendered_queues_nothing);
    tcase_add_test(tc, empty_fields_are_each_required);
    tcase_add_test(tc, one_pass_delivers_no_more_than_its_limit);
    tcase_add_test(tc, the_address_page_locks_out_password_guessing);
    suite_add_tcase(s, tc);
    return tl_run(s);
}

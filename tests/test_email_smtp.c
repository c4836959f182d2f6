/* Mail that is never lost: password resets requested while the real SMTP
 * server (the fixture's aiosmtpd, a private one so it can be stopped) is
 * down are answered at once, and every mail arrives once after it comes
 * back, delivered by two senders of two contexts sharing the outbox. The
 * link in the received mail resets the password. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <guestuser/smtp.h>

#include "smtp_env.h"
#include "testlib.h"

#define SCHEMA "t_email_smtp"
#define USERS 12

static void mail_on(guest_config *c)
{
    c->mail_from = "Test site <noreply@example.test>";
    c->public_url = "http://127.0.0.1:8000";
    c->mail_poll_ms = 50;
    c->password_reset_rate_limit = 0;
}

typedef struct call {
    const char *email;
    guest_status st;
} call;

static void reset_handler(guest_req *req, void *ud)
{
    call *c = ud;
    c->st = guest_password_reset_request(req, c->email, NULL);
}

START_TEST(resets_queued_while_the_server_is_down_arrive_once)
{
    tl_drop_schema(SCHEMA);
    smtp_server *srv = smtp_private_start("resets");
    ck_assert_ptr_nonnull(srv);
    guest_ctx *a = tl_ctx(SCHEMA, mail_on), *b = tl_ctx(SCHEMA, mail_on);
    for (int i = 0; i < USERS; i++) {
        char name[32], sql[256];
        snprintf(name, sizeof name, "user%d", i);
        int64_t id = tl_new_user(a, name, TL_PASSWORD);
        snprintf(sql, sizeof sql,
                 "UPDATE @.users SET email = 'user%d' || chr(64) ||"
                 " 'mail.test', email_verified_at = now() WHERE id = %lld",
                 i, (long long)id);
        tl_exec_in(SCHEMA, sql);
    }
    guest_smtp_config sc;
    guest_smtp_config_init(&sc);
    sc.url = smtp_server_env(srv, "SMTP_URL");
    sc.starttls = GUEST_SMTP_STARTTLS_OFF;
    sc.timeout_ms = 2000;
    guest_smtp *smtp;
    ck_assert_int_eq(guest_smtp_new(&sc, &smtp, NULL), GUEST_OK);
    guest_mail_transport t = guest_smtp_transport(smtp);
    guest_mail_sender *sa, *sb;
    ck_assert_int_eq(guest_mail_sender_start(a, &t, &sa, NULL), GUEST_OK);
    ck_assert_int_eq(guest_mail_sender_start(b, &t, &sb, NULL), GUEST_OK);

    /* the mail server goes away; the requests are answered all the same */
    ck_assert(smtp_server_stop(srv));
    for (int i = 0; i < USERS; i++) {
        char email[64];
        snprintf(email, sizeof email, "user%d@mail.test", i);
        tl_http h;
        call c = {.email = email};
        tl_http_init(&h, "POST", "/accounts/password/reset/");
        tl_http_run(i % 2 ? b : a, &h, reset_handler, &c);
        tl_http_free(&h);
        ck_assert_int_eq(c.st, GUEST_OK);
    }
    /* the senders try, and keep the mails */
    for (int i = 0; i < 100 && tl_scalar_in(SCHEMA, "SELECT count(*) FROM"
                                                    " @.outbox WHERE"
                                                    " attempts > 0") < USERS;
         i++)
        usleep(100 * 1000);
    ck_assert_int_eq(tl_scalar_in(SCHEMA, "SELECT count(*) FROM @.outbox"
                                          " WHERE sent_at IS NULL AND"
                                          " failed_at IS NULL"),
                     USERS);
    smtp_message *none;
    ck_assert_uint_eq(smtp_messages(srv, NULL, &none), 0);
    /* back: the waits are cut short so the test need not sit them out */
    ck_assert(smtp_server_resume(srv));
    tl_exec_in(SCHEMA, "UPDATE @.outbox SET next_attempt_at = now()"
                       " WHERE sent_at IS NULL");
    smtp_message *got;
    size_t n = smtp_wait_messages(srv, NULL, USERS, 60000, &got);
    ck_assert_uint_eq(n, USERS);
    guest_mail_sender_stop(sa);
    guest_mail_sender_stop(sb);
    /* none twice: no more arrive, and each address got one */
    smtp_messages_free(got, n);
    n = smtp_messages(srv, NULL, &got);
    ck_assert_uint_eq(n, USERS);
    for (int i = 0; i < USERS; i++) {
        char email[64];
        snprintf(email, sizeof email, "user%d@mail.test", i);
        smtp_message *one;
        size_t k = smtp_messages(srv, email, &one);
        ck_assert_msg(k == 1, "%s got %zu mails", email, k);
        smtp_messages_free(one, k);
    }
    ck_assert_int_eq(tl_scalar_in(SCHEMA, "SELECT count(*) FROM @.outbox"
                                          " WHERE sent_at IS NOT NULL"),
                     USERS);
    /* the link in the mail resets the password */
    char *text = smtp_inspect(got[0].path, "text");
    ck_assert_ptr_nonnull(text);
    const char *p = strstr(text, "/accounts/password/reset/");
    ck_assert_ptr_nonnull(p);
    char token[64];
    snprintf(token, sizeof token, "%.43s",
             p + strlen("/accounts/password/reset/"));
    char who[GUEST_USERNAME_BUF];
    ck_assert_int_eq(guest_password_reset_check(a, token, who, NULL), GUEST_OK);
    ck_assert_int_eq(strncmp(who, "user", 4), 0);
    free(text);
    smtp_messages_free(got, n);
    guest_smtp_free(smtp);
    guest_ctx_free(a);
    guest_ctx_free(b);
    smtp_private_free(srv);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("email_smtp");
    TCase *t = tcase_create("smtp");
    tcase_set_timeout(t, 240);
    tcase_add_test(t, resets_queued_while_the_server_is_down_arrive_once);
    suite_add_tcase(s, t);
    return tl_run(s);
}

/* Mail paths the SMTP and e-mail suites leave out: display names that must
 * be quoted (with quotes and backslashes escaped), blanks around addresses,
 * names and addresses too long, a mail without From, a missing credentials
 * file; the built-in mails escaping HTML and refusing an unknown kind; the
 * sender's calls refusing NULL; and, outside the sanitizers, a message
 * whose building runs out of memory is retried, not lost. Against the
 * `smtp` fixture's real server; no database. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "guestuser/guestuser.h"
#include "guestuser/smtp.h"
#include "smtp_env.h"
#ifndef TEST_NO_ALLOC_FAIL
#include "alloc_fail.h"
#endif

#define FROM "noreply@guestuser.test"

static const char *addr(const char *tag)
{
    static char buf[8][128];
    static int next;
    char *out = buf[next++ % 8];
    snprintf(out, sizeof buf[0], "%s-%ld@example.test", tag, (long)getpid());
    return out;
}

static guest_smtp *smtp_plain(void)
{
    const char *url = smtp_env("SMTP_URL");
    ck_assert_msg(url, "SMTP_URL missing from the smtp fixture's env file");
    guest_smtp_config cfg;
    guest_smtp_config_init(&cfg);
    cfg.url = url;
    cfg.starttls = GUEST_SMTP_STARTTLS_OFF;
    cfg.timeout_ms = 10000;
    guest_smtp *smtp = NULL;
    guest_error err = {0};
    ck_assert_msg(guest_smtp_new(&cfg, &smtp, &err) == GUEST_OK, "%s",
                  err.message);
    return smtp;
}

static guest_mail_result send_mail(guest_smtp *smtp, const guest_mail *m,
                                   char *error, size_t size)
{
    guest_mail_transport t = guest_smtp_transport(smtp);
    return t.send(m, t.userdata, error, size);
}

static guest_mail mail_to(const char *to)
{
    guest_mail m = {.id = 1,
                    .message_id = "<1.cov@guestuser>",
                    .from = FROM,
                    .to = to,
                    .subject = "Hello",
                    .text = "Hello.\n",
                    .attempt = 1};
    return m;
}

static smtp_message *one_message(const char *rcpt)
{
    smtp_message *msgs = NULL;
    size_t n = smtp_wait_messages(smtp_fixture(), rcpt, 1, 10000, &msgs);
    ck_assert_msg(n == 1, "%zu messages for %s, 1 expected", n, rcpt);
    return msgs;
}

static void assert_field(const smtp_message *m, const char *field,
                         const char *want)
{
    char *got = smtp_inspect(m->path, field);
    ck_assert_msg(got, "smtp-inspect.py %s %s failed", m->path, field);
    ck_assert_msg(strcmp(got, want) == 0, "%s: \"%s\", expected \"%s\"", field,
                  got, want);
    free(got);
}

START_TEST(names_that_need_quoting_arrive_quoted)
{
    guest_smtp *smtp = smtp_plain();
    char to[160], to_field[200];
    const char *rcpt = addr("quoted");
    /* Blanks around a bare address are not part of it. */
    snprintf(to, sizeof to, "  %s  ", rcpt);
    guest_mail m = mail_to(to);
    /* A quoted name with a comma, blanks around it and after '>'. */
    m.from = "  \"Doe, Jane\" <" FROM ">  ";
    char error[256] = "";
    ck_assert_msg(send_mail(smtp, &m, error, sizeof error) == GUEST_MAIL_SENT,
                  "%s", error);
    smtp_message *msg = one_message(rcpt);
    ck_assert_str_eq(msg->mail_from, FROM);
    ck_assert_str_eq(msg->rcpt_to, rcpt);
    ck_assert_ptr_nonnull(
        strstr(msg->raw, "\r\nFrom: \"Doe, Jane\" <" FROM ">\r\n"));
    snprintf(to_field, sizeof to_field, "\r\nTo: %s\r\n", rcpt);
    ck_assert_ptr_nonnull(strstr(msg->raw, to_field));
    assert_field(msg, "defects", "0");
    assert_field(msg, "from", "\"Doe, Jane\" <" FROM ">");
    smtp_messages_free(msg, 1);

    /* Quotes and a backslash inside a name are escaped. */
    const char *rcpt2 = addr("escaped");
    m = mail_to(rcpt2);
    m.from = "Jane \"JD\" Back\\slash <" FROM ">";
    ck_assert_msg(send_mail(smtp, &m, error, sizeof error) == GUEST_MAIL_SENT,
                  "%s", error);
    msg = one_message(rcpt2);
    ck_assert_ptr_nonnull(
        strstr(msg->raw,
               "\r\nFrom: \"Jane \\\"JD\\\" Back\\\\slash\" <" FROM ">\r\n"));
    assert_field(msg, "defects", "0");
    smtp_messages_free(msg, 1);
    guest_smtp_free(smtp);
}
END_TEST

START_TEST(mails_that_cannot_be_sent_are_permanent_and_never_sent)
{
    guest_smtp *smtp = smtp_plain();
    const char *rcpt = addr("refused");
    char error[256];
    guest_mail m = mail_to(rcpt);
    m.from = NULL;
    error[0] = '\0';
    ck_assert_int_eq(send_mail(smtp, &m, error, sizeof error),
                     GUEST_MAIL_PERMANENT);
    ck_assert_ptr_nonnull(strstr(error, "no From or To"));

    /* A display name of 256 bytes or more. */
    char from[400];
    memset(from, 'n', 300);
    snprintf(from + 300, sizeof from - 300, " <%s>", FROM);
    m = mail_to(rcpt);
    m.from = from;
    error[0] = '\0';
    ck_assert_int_eq(send_mail(smtp, &m, error, sizeof error),
                     GUEST_MAIL_PERMANENT);
    ck_assert_msg(strstr(error, "From is no ASCII address"), "%s", error);

    /* An address over the SMTP path limit. */
    char to[400];
    memset(to, 'a', 300);
    snprintf(to + 300, sizeof to - 300, "@example.test");
    m = mail_to(to);
    error[0] = '\0';
    ck_assert_int_eq(send_mail(smtp, &m, error, sizeof error),
                     GUEST_MAIL_PERMANENT);
    ck_assert_msg(strstr(error, "To is no ASCII address"), "%s", error);

    /* No transport or no mail at all. */
    guest_mail_transport t = guest_smtp_transport(smtp);
    error[0] = '\0';
    ck_assert_int_eq(t.send(NULL, t.userdata, error, sizeof error),
                     GUEST_MAIL_PERMANENT);
    ck_assert_ptr_nonnull(strstr(error, "no mail"));

    usleep(300 * 1000);
    smtp_message *msgs = NULL;
    size_t n = smtp_messages(smtp_fixture(), rcpt, &msgs);
    smtp_messages_free(msgs, n);
    ck_assert_uint_eq(n, 0);
    guest_smtp_free(smtp);
}
END_TEST

START_TEST(a_credentials_file_that_cannot_be_read_is_a_config_error)
{
    guest_smtp_config cfg;
    guest_smtp_config_init(&cfg);
    cfg.url = "smtp://127.0.0.1:1";
    cfg.credentials_file = "/nonexistent/guestuser-smtp-credentials";
    guest_smtp *smtp = NULL;
    guest_error err = {0};
    ck_assert_int_eq(guest_smtp_new(&cfg, &smtp, &err), GUEST_ERR_CONFIG);
    ck_assert_ptr_null(smtp);
    ck_assert_msg(strstr(err.message, "cannot read"), "%s", err.message);
}
END_TEST

START_TEST(built_in_mails_escape_html_and_refuse_unknown_kinds)
{
    guest_mail_vars v = {.kind = GUEST_MAIL_PASSWORD_RESET,
                         .username = "<b>Tom & \"Jerry\"'s</b>",
                         .address = "tom@example.test",
                         .link = "https://example.test/r/?a=1&b=2",
                         .valid_s = 3600,
                         .new_address = ""};
    guest_mail_content c = {0};
    ck_assert_int_eq(guest_mail_render_default(&v, &c), GUEST_OK);
    ck_assert_ptr_nonnull(c.html);
    ck_assert_msg(strstr(c.html, "&lt;b&gt;Tom &amp; &quot;Jerry&quot;&#39;s"
                                 "&lt;/b&gt;"),
                  "%s", c.html);
    ck_assert_msg(strstr(c.html, "?a=1&amp;b=2"), "%s", c.html);
    ck_assert_ptr_null(strstr(c.html, "<b>Tom"));
    /* The plain text says it as it is. */
    ck_assert_ptr_nonnull(strstr(c.text, "<b>Tom & \"Jerry\"'s</b>"));
    free(c.subject);
    free(c.text);
    free(c.html);

    v.kind = (guest_mail_kind)42;
    memset(&c, 0xA5, sizeof c);
    ck_assert_int_eq(guest_mail_render_default(&v, &c), GUEST_ERR_INVALID);
    ck_assert_ptr_null(c.subject);
    ck_assert_ptr_null(c.text);
    ck_assert_ptr_null(c.html);
    ck_assert_int_eq(guest_mail_render_default(NULL, &c), GUEST_ERR_INVALID);
    ck_assert_int_eq(guest_mail_render_default(&v, NULL), GUEST_ERR_INVALID);
}
END_TEST

START_TEST(the_sender_refuses_null_arguments)
{
    guest_smtp *smtp = smtp_plain();
    guest_mail_transport t = guest_smtp_transport(smtp);
    guest_mail_transport none = {0};
    guest_mail_sender *sender = (guest_mail_sender *)&t;
    guest_error err = {0};
    ck_assert_int_eq(guest_mail_sender_start(NULL, &t, &sender, &err),
                     GUEST_ERR_INVALID);
    ck_assert_ptr_null(sender);
    unsigned sent = 7, failed = 7;
    ck_assert_int_eq(guest_mail_send_due(NULL, &t, 0, &sent, &failed, &err),
                     GUEST_ERR_INVALID);
    ck_assert_uint_eq(sent, 0);
    ck_assert_uint_eq(failed, 0);
    ck_assert_int_eq(guest_mail_send_due(NULL, &none, 0, NULL, NULL, NULL),
                     GUEST_ERR_INVALID);
    guest_smtp_free(smtp);
}
END_TEST

#ifndef TEST_NO_ALLOC_FAIL
/* Each allocation of building and sending one mail fails in turn: the
 * mail is RETRY (never PERMANENT: nothing is wrong with it) and arrives
 * once memory is back; likewise guest_smtp_new() fails cleanly. */
START_TEST(out_of_memory_is_retried_never_lost)
{
    const char *url = smtp_env("SMTP_URL");
    ck_assert_ptr_nonnull(url);
    guest_smtp_config cfg;
    guest_smtp_config_init(&cfg);
    cfg.url = url;
    cfg.starttls = GUEST_SMTP_STARTTLS_OFF;
    cfg.timeout_ms = 10000;
    cfg.username = "u";
    cfg.password = "p";
    for (long n = 0;; n++) {
        guest_smtp *smtp = NULL;
        alloc_fail_arm(n);
        guest_status st = guest_smtp_new(&cfg, &smtp, NULL);
        bool failed = alloc_fail_disarm();
        if (!failed) {
            ck_assert_int_eq(st, GUEST_OK);
            guest_smtp_free(smtp);
            break;
        }
        ck_assert_int_eq(st, GUEST_ERR_NOMEM);
        ck_assert_ptr_null(smtp);
        ck_assert_int_lt(n, 100);
    }

    guest_smtp *smtp = smtp_plain();
    const char *rcpt = addr("nomem");
    guest_mail m = mail_to(rcpt);
    m.html = "<p>Hello.</p>";
    /* Long enough for the message buffer to grow more than once. */
    char text[6000];
    memset(text, 'x', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    m.text = text;
    unsigned retried = 0;
    for (long n = 0;; n++) {
        char error[256] = "";
        alloc_fail_arm(n);
        guest_mail_result r = send_mail(smtp, &m, error, sizeof error);
        bool failed = alloc_fail_disarm();
        if (!failed) {
            ck_assert_msg(r == GUEST_MAIL_SENT, "%d: %s", r, error);
            break;
        }
        ck_assert_msg(r == GUEST_MAIL_RETRY, "allocation %ld: %d %s", n, r,
                      error);
        ck_assert_msg(strstr(error, "out of memory"), "%s", error);
        retried++;
        ck_assert_int_lt(n, 100);
    }
    ck_assert_uint_gt(retried, 0);
    smtp_message *msg = one_message(rcpt);
    char *text_got = smtp_inspect(msg->path, "text");
    ck_assert_ptr_nonnull(text_got);
    size_t got_len = strlen(text_got);
    ck_assert_msg(
        got_len >= strlen(text) && strncmp(text_got, text, strlen(text)) == 0 &&
            strspn(text_got + strlen(text), "\r\n") == got_len - strlen(text),
        "%zu bytes: %.60s...", got_len, text_got);
    free(text_got);
    smtp_messages_free(msg, 1);
    guest_smtp_free(smtp);
}
END_TEST
#endif

int main(void)
{
    Suite *s = suite_create("cov_mail");
    TCase *tc = tcase_create("mail");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, names_that_need_quoting_arrive_quoted);
    tcase_add_test(tc, mails_that_cannot_be_sent_are_permanent_and_never_sent);
    tcase_add_test(tc,
                   a_credentials_file_that_cannot_be_read_is_a_config_error);
    tcase_add_test(tc, built_in_mails_escape_html_and_refuse_unknown_kinds);
    tcase_add_test(tc, the_sender_refuses_null_arguments);
#ifndef TEST_NO_ALLOC_FAIL
    tcase_add_test(tc, out_of_memory_is_retried_never_lost);
#endif
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

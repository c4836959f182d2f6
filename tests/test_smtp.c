/* libguestuser-mail against the real SMTP server of the fixture `smtp`
 * (tests/smtp/README.md): what arrives, read back with python's email
 * package; AUTH, STARTTLS and smtps; how 4xx, 5xx, a timeout and a server
 * that is down are reported; refused header injection; eight threads on
 * one handle. No database. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#include "guestuser/smtp.h"
#include "smtp_env.h"

#define FROM "noreply@guestuser.test"

static const char *env(const char *key)
{
    const char *v = smtp_env(key);
    ck_assert_msg(v, "%s missing from the smtp fixture's env file", key);
    return v;
}

/* An address of this test run's own: TAG-PID@example.test. */
static const char *addr(const char *tag)
{
    static __thread char buf[8][128];
    static __thread int next;
    char *out = buf[next++ % 8];
    snprintf(out, sizeof buf[0], "%s-%ld@example.test", tag, (long)getpid());
    return out;
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static guest_smtp *smtp_new(const char *url, guest_smtp_starttls starttls,
                            const char *user, const char *password,
                            const char *ca_file)
{
    guest_smtp_config cfg;
    guest_smtp_config_init(&cfg);
    cfg.url = url;
    cfg.starttls = starttls;
    cfg.username = user;
    cfg.password = password;
    cfg.ca_file = ca_file;
    cfg.timeout_ms = 5000;
    guest_smtp *smtp = NULL;
    guest_error err = {0};
    guest_status st = guest_smtp_new(&cfg, &smtp, &err);
    ck_assert_msg(st == GUEST_OK, "guest_smtp_new(%s): %s", url, err.message);
    return smtp;
}

static guest_mail mail_to(const char *to, const char *subject)
{
    guest_mail m = {.id = 1,
                    .message_id = "<1.abc123@guestuser>",
                    .from = FROM,
                    .to = to,
                    .subject = subject,
                    .text = "Hello.\n",
                    .attempt = 1};
    return m;
}

static guest_mail_result send_mail(guest_smtp *smtp, const guest_mail *m,
                                   char *error, size_t size)
{
    guest_mail_transport t = guest_smtp_transport(smtp);
    ck_assert_ptr_nonnull(t.send);
    return t.send(m, t.userdata, error, size);
}

/* The one message for RCPT on SRV (waits up to 5 s for it). */
static smtp_message *one_message(const smtp_server *srv, const char *rcpt)
{
    smtp_message *msgs = NULL;
    size_t n = smtp_wait_messages(srv, rcpt, 1, 5000, &msgs);
    ck_assert_msg(n == 1, "%zu messages for %s, 1 expected", n, rcpt);
    return msgs;
}

static size_t count_for(const smtp_server *srv, const char *rcpt)
{
    smtp_message *msgs = NULL;
    size_t n = smtp_messages(srv, rcpt, &msgs);
    smtp_messages_free(msgs, n);
    return n;
}

static void assert_field(const smtp_message *m, const char *field,
                         const char *want)
{
    char *got = smtp_inspect(m->path, field);
    ck_assert_msg(got, "smtp-inspect.py %s %s failed", m->path, field);
    ck_assert_msg(strcmp(got, want) == 0,
                  "%s: \"%.300s\" (%zu bytes), expected \"%.300s\" (%zu)",
                  field, got, strlen(got), want, strlen(want));
    free(got);
}

/* ---- settings ---- */

START_TEST(config_defaults_and_refusals)
{
    guest_smtp_config cfg;
    guest_smtp_config_init(&cfg);
    ck_assert_ptr_null(cfg.url);
    ck_assert_int_eq(cfg.starttls, GUEST_SMTP_STARTTLS_REQUIRED);
    ck_assert_uint_eq(cfg.timeout_ms, 10000);
    ck_assert(cfg.tls_verify);
    guest_smtp_free(NULL);

    guest_smtp *smtp = (guest_smtp *)&cfg;
    guest_error err = {0};
    ck_assert_int_eq(guest_smtp_new(NULL, &smtp, &err), GUEST_ERR_INVALID);
    ck_assert_ptr_null(smtp);
    ck_assert_int_eq(guest_smtp_new(&cfg, NULL, &err), GUEST_ERR_INVALID);
    ck_assert_int_eq(guest_smtp_new(&cfg, &smtp, &err), GUEST_ERR_CONFIG);
    /* a struct not filled by guest_smtp_config_init(), or a newer one */
    cfg.url = "smtp://mail.example.com:587";
    cfg.size = 0;
    ck_assert_int_eq(guest_smtp_new(&cfg, &smtp, &err), GUEST_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(err.message, "guest_smtp_config_init"));
    cfg.size = sizeof cfg + 8;
    ck_assert_int_eq(guest_smtp_new(&cfg, &smtp, &err), GUEST_ERR_CONFIG);
    cfg.size = sizeof cfg;

    static const char *const bad_urls[] = {"http://mail.example.com",
                                           "mail.example.com:25", "smtp://",
                                           "smtp:///x", ""};
    for (size_t i = 0; i < sizeof bad_urls / sizeof *bad_urls; i++) {
        cfg.url = bad_urls[i];
        ck_assert_msg(guest_smtp_new(&cfg, &smtp, &err) == GUEST_ERR_CONFIG,
                      "%s accepted", bad_urls[i]);
        ck_assert_ptr_null(smtp);
    }
    cfg.url = "smtp://mail.example.com:587";
    cfg.timeout_ms = 50;
    ck_assert_int_eq(guest_smtp_new(&cfg, &smtp, &err), GUEST_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(err.message, "timeout_ms"));
    cfg.timeout_ms = 10000;
    cfg.starttls = (guest_smtp_starttls)7;
    ck_assert_int_eq(guest_smtp_new(&cfg, &smtp, &err), GUEST_ERR_CONFIG);
    cfg.starttls = GUEST_SMTP_STARTTLS_REQUIRED;

    /* Credentials: both or neither, not twice. */
    cfg.username = "u";
    ck_assert_int_eq(guest_smtp_new(&cfg, &smtp, &err), GUEST_ERR_CONFIG);
    cfg.password = "p";
    cfg.credentials_file = "/nonexistent";
    ck_assert_int_eq(guest_smtp_new(&cfg, &smtp, &err), GUEST_ERR_CONFIG);
    cfg.credentials_file = NULL;
    ck_assert_int_eq(guest_smtp_new(&cfg, &smtp, &err), GUEST_OK);
    guest_smtp_free(smtp);

    /* ... and never in cleartext over the network; loopback is spared. */
    cfg.starttls = GUEST_SMTP_STARTTLS_OPTIONAL;
    ck_assert_int_eq(guest_smtp_new(&cfg, &smtp, &err), GUEST_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(err.message, "cleartext"));
    cfg.starttls = GUEST_SMTP_STARTTLS_OFF;
    ck_assert_int_eq(guest_smtp_new(&cfg, &smtp, &err), GUEST_ERR_CONFIG);
    cfg.url = "smtps://mail.example.com";
    ck_assert_int_eq(guest_smtp_new(&cfg, &smtp, &err), GUEST_OK);
    guest_smtp_free(smtp);
    static const char *const loopback[] = {
        "smtp://127.0.0.1:25", "smtp://127.1.2.3", "smtp://localhost:2525",
        "smtp://[::1]:25"};
    for (size_t i = 0; i < sizeof loopback / sizeof *loopback; i++) {
        cfg.url = loopback[i];
        ck_assert_msg(guest_smtp_new(&cfg, &smtp, &err) == GUEST_OK, "%s: %s",
                      loopback[i], err.message);
        guest_smtp_free(smtp);
    }
    cfg.url = "smtp://127.evil.example.com";
    ck_assert_int_eq(guest_smtp_new(&cfg, &smtp, &err), GUEST_ERR_CONFIG);

    /* A credentials file: one line USER:PASSWORD, the password may hold
     * ':'. */
    char path[] = "/tmp/test_smtp_credsXXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    FILE *f = fdopen(fd, "w");
    fputs("no colon here\n", f);
    fclose(f);
    cfg.url = "smtps://mail.example.com";
    cfg.username = cfg.password = NULL;
    cfg.credentials_file = path;
    ck_assert_int_eq(guest_smtp_new(&cfg, &smtp, &err), GUEST_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(err.message, "USER:PASSWORD"));
    f = fopen(path, "w");
    fclose(f);
    ck_assert_int_eq(guest_smtp_new(&cfg, &smtp, &err), GUEST_ERR_CONFIG);
    f = fopen(path, "w");
    fputs("user:pa:ss\r\nignored\n", f);
    fclose(f);
    ck_assert_int_eq(guest_smtp_new(&cfg, &smtp, &err), GUEST_OK);
    guest_smtp_free(smtp);
    unlink(path);
}
END_TEST

/* ---- what arrives ---- */

START_TEST(plain_mail_arrives_with_headers_and_body)
{
    const char *to = addr("plain");
    guest_smtp *smtp =
        smtp_new(env("SMTP_URL"), GUEST_SMTP_STARTTLS_OFF, NULL, NULL, NULL);
    /* A line longer than 76 characters, one starting with '.', trailing
     * spaces, '=', non-ASCII, CRLF and LF line ends. */
    const char *text =
        "Hello Zoë,\n\nOpen this link to reset your password:\n"
        "https://example.com/accounts/password/reset/"
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef/"
        "?a=1&b=2\r\n.a line that starts with a dot\nspaces at the end   \n"
        "tab at the end\t\n=3D is not decoded twice\n\n-- \nThe site\n";
    guest_mail m = mail_to(to, "Reset your password");
    m.from = "The Site <" FROM ">";
    m.text = text;
    char error[256] = "";
    ck_assert_int_eq(send_mail(smtp, &m, error, sizeof error), GUEST_MAIL_SENT);

    const smtp_server *srv = smtp_fixture();
    smtp_message *msg = one_message(srv, to);
    ck_assert_str_eq(msg->mail_from, FROM);
    ck_assert_str_eq(msg->rcpt_to, to);
    ck_assert_str_eq(msg->listener, "plain");
    ck_assert(!msg->tls);
    assert_field(msg, "wire", "ok");
    assert_field(msg, "defects", "0");
    assert_field(msg, "subject", "Reset your password");
    assert_field(msg, "from", "The Site <" FROM ">");
    assert_field(msg, "to", to);
    assert_field(msg, "message-id", "<1.abc123@guestuser>");
    assert_field(msg, "content-type", "text/plain");
    assert_field(msg, "charsets", "utf-8");
    assert_field(msg, "encodings", "quoted-printable");
    assert_field(msg, "header:MIME-Version", "1.0");
    assert_field(msg, "header:Auto-Submitted", "auto-generated");
    char want[1024];
    snprintf(want, sizeof want, "%s", text);
    for (char *p; (p = strstr(want, "\r\n"));)
        memmove(p, p + 1, strlen(p));
    assert_field(msg, "text", want);
    /* The Date is now, give or take a minute. */
    char *date = smtp_inspect(msg->path, "date");
    ck_assert_ptr_nonnull(date);
    ck_assert_msg(strstr(date, "+00:00"), "Date: %s", date);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    char ymd[16];
    strftime(ymd, sizeof ymd, "%Y-%m-%d", &tm);
    if (tm.tm_hour != 0 || tm.tm_min != 0)
        ck_assert_msg(strncmp(date, ymd, 10) == 0, "Date: %s", date);
    free(date);
    /* Every line of the body within 76 characters. */
    const char *body = strstr(msg->raw, "\r\n\r\n");
    ck_assert_ptr_nonnull(body);
    for (const char *p = body + 4; *p;) {
        const char *eol = strstr(p, "\r\n");
        ck_assert_ptr_nonnull(eol);
        ck_assert_int_le(eol - p, 76);
        p = eol + 2;
    }
    smtp_messages_free(msg, 1);
    guest_smtp_free(smtp);
}
END_TEST

START_TEST(html_mail_is_multipart_alternative)
{
    const char *to = addr("html");
    guest_smtp *smtp =
        smtp_new(env("SMTP_URL"), GUEST_SMTP_STARTTLS_OFF, NULL, NULL, NULL);
    guest_mail m = mail_to(to, "Verify your address");
    m.text = "Open https://example.com/v/abc/ to verify.\n";
    m.html = "<!doctype html>\n<p>Open <a href=\"https://example.com/v/abc/\">"
             "this link</a> to verify, Zoë.</p>\n";
    char error[256] = "";
    ck_assert_int_eq(send_mail(smtp, &m, error, sizeof error), GUEST_MAIL_SENT);
    smtp_message *msg = one_message(smtp_fixture(), to);
    assert_field(msg, "wire", "ok");
    assert_field(msg, "defects", "0");
    assert_field(msg, "content-type", "multipart/alternative");
    assert_field(msg, "parts", "text/plain,text/html");
    assert_field(msg, "charsets", "utf-8,utf-8");
    assert_field(msg, "text", m.text);
    assert_field(msg, "html", m.html);
    smtp_messages_free(msg, 1);
    guest_smtp_free(smtp);
}
END_TEST

START_TEST(non_ascii_subject_and_name_arrive_decoded)
{
    const char *to = addr("utf8");
    guest_smtp *smtp =
        smtp_new(env("SMTP_URL"), GUEST_SMTP_STARTTLS_OFF, NULL, NULL, NULL);
    /* Long enough for several encoded-words, with 2-, 3- and 4-byte
     * characters across their borders. */
    const char *subject = "Réinitialisez votre mot de passe — ça prend "
                          "une minute 🔑 パスワードをリセット ✓ àéîõü";
    guest_mail m = mail_to(to, subject);
    m.from = "Ça Marche Élève <" FROM ">";
    char error[256] = "";
    ck_assert_int_eq(send_mail(smtp, &m, error, sizeof error), GUEST_MAIL_SENT);
    smtp_message *msg = one_message(smtp_fixture(), to);
    assert_field(msg, "wire", "ok");
    assert_field(msg, "defects", "0");
    assert_field(msg, "subject", subject);
    assert_field(msg, "from", "Ça Marche Élève <" FROM ">");
    ck_assert_ptr_nonnull(strstr(msg->raw, "Subject: =?UTF-8?B?"));
    /* Header lines stay within 78 characters. */
    for (const char *p = msg->raw; p && strncmp(p, "\r\n", 2) != 0;) {
        const char *eol = strstr(p, "\r\n");
        ck_assert_ptr_nonnull(eol);
        ck_assert_int_le(eol - p, 78);
        p = eol + 2;
    }
    smtp_messages_free(msg, 1);

    /* ASCII that looks like an encoded-word reads as written. */
    const char *to2 = addr("utf8-literal");
    m = mail_to(to2, "=?UTF-8?B?SGk=?= is not decoded");
    ck_assert_int_eq(send_mail(smtp, &m, error, sizeof error), GUEST_MAIL_SENT);
    msg = one_message(smtp_fixture(), to2);
    assert_field(msg, "subject", "=?UTF-8?B?SGk=?= is not decoded");
    smtp_messages_free(msg, 1);
    guest_smtp_free(smtp);
}
END_TEST

START_TEST(long_lines_and_generated_message_id)
{
    const char *to = addr("long");
    guest_smtp *smtp =
        smtp_new(env("SMTP_URL"), GUEST_SMTP_STARTTLS_OFF, NULL, NULL, NULL);
    size_t n = 5000;
    char *text = malloc(n + 2), *html = malloc(n + 20);
    for (size_t i = 0; i < n; i++)
        text[i] = (char)('a' + i % 26);
    text[n] = '\n';
    text[n + 1] = '\0';
    strcpy(html, "<p>");
    for (size_t i = 0; i < n / 2; i++)
        strcat(html, i % 2 ? "é" : "=");
    strcat(html, "</p>\n");
    guest_mail m = mail_to(to, "Long lines");
    m.message_id = NULL;
    m.text = text;
    m.html = html;
    char error[256] = "";
    ck_assert_int_eq(send_mail(smtp, &m, error, sizeof error), GUEST_MAIL_SENT);
    smtp_message *msg = one_message(smtp_fixture(), to);
    assert_field(msg, "wire", "ok");
    assert_field(msg, "defects", "0");
    assert_field(msg, "text", text);
    assert_field(msg, "html", html);
    char *id = smtp_inspect(msg->path, "message-id");
    ck_assert_ptr_nonnull(id);
    ck_assert_msg(id[0] == '<' && strstr(id, "@guestuser.test>"),
                  "Message-ID: %s", id);
    free(id);
    smtp_messages_free(msg, 1);
    free(text);
    free(html);
    guest_smtp_free(smtp);
}
END_TEST

/* ---- AUTH, STARTTLS, smtps ---- */

START_TEST(auth_with_and_without_credentials)
{
    const char *url = env("SMTP_AUTH_URL");
    const char *user = env("SMTP_USERNAME"), *password = env("SMTP_PASSWORD");
    char error[256] = "";

    const char *to = addr("auth-ok");
    guest_smtp *smtp =
        smtp_new(url, GUEST_SMTP_STARTTLS_OFF, user, password, NULL);
    guest_mail m = mail_to(to, "With AUTH");
    ck_assert_int_eq(send_mail(smtp, &m, error, sizeof error), GUEST_MAIL_SENT);
    smtp_message *msg = one_message(smtp_fixture(), to);
    ck_assert_str_eq(msg->listener, "auth");
    ck_assert_str_eq(msg->auth_user, user);
    smtp_messages_free(msg, 1);
    guest_smtp_free(smtp);

    /* The credentials file. */
    const char *to_file = addr("auth-file");
    guest_smtp_config cfg;
    guest_smtp_config_init(&cfg);
    cfg.url = url;
    cfg.starttls = GUEST_SMTP_STARTTLS_OFF;
    cfg.credentials_file = env("SMTP_CREDENTIALS_FILE");
    guest_error err = {0};
    ck_assert_int_eq(guest_smtp_new(&cfg, &smtp, &err), GUEST_OK);
    m = mail_to(to_file, "With AUTH from a file");
    ck_assert_int_eq(send_mail(smtp, &m, error, sizeof error), GUEST_MAIL_SENT);
    msg = one_message(smtp_fixture(), to_file);
    ck_assert_str_eq(msg->auth_user, user);
    smtp_messages_free(msg, 1);
    guest_smtp_free(smtp);

    /* Without credentials (530) and with a wrong password (535): the
     * site's settings are wrong, not the mail: RETRY, nothing sent. */
    const char *to_none = addr("auth-none");
    smtp = smtp_new(url, GUEST_SMTP_STARTTLS_OFF, NULL, NULL, NULL);
    m = mail_to(to_none, "Without AUTH");
    ck_assert_int_eq(send_mail(smtp, &m, error, sizeof error),
                     GUEST_MAIL_RETRY);
    ck_assert_msg(strstr(error, "530"), "error: %s", error);
    guest_smtp_free(smtp);
    smtp = smtp_new(url, GUEST_SMTP_STARTTLS_OFF, user, "wrong", NULL);
    ck_assert_int_eq(send_mail(smtp, &m, error, sizeof error),
                     GUEST_MAIL_RETRY);
    ck_assert_msg(strstr(error, "535"), "error: %s", error);
    ck_assert_msg(!strstr(error, password), "error: %s", error);
    guest_smtp_free(smtp);
    ck_assert_uint_eq(count_for(smtp_fixture(), to_none), 0);
}
END_TEST

START_TEST(starttls_and_smtps)
{
    const char *url = env("SMTP_STARTTLS_URL");
    const char *user = env("SMTP_USERNAME"), *password = env("SMTP_PASSWORD");
    const char *ca = env("SMTP_CA_FILE");
    char error[256] = "";

    /* STARTTLS, verified against the fixture's certificate. */
    const char *to = addr("starttls");
    guest_smtp *smtp =
        smtp_new(url, GUEST_SMTP_STARTTLS_REQUIRED, user, password, ca);
    guest_mail m = mail_to(to, "Over STARTTLS");
    ck_assert_msg(send_mail(smtp, &m, error, sizeof error) == GUEST_MAIL_SENT,
                  "%s", error);
    smtp_message *msg = one_message(smtp_fixture(), to);
    ck_assert_str_eq(msg->listener, "starttls");
    ck_assert(msg->tls);
    ck_assert_str_eq(msg->auth_user, user);
    smtp_messages_free(msg, 1);
    guest_smtp_free(smtp);

    /* Without verification. */
    const char *to_noverify = addr("starttls-noverify");
    guest_smtp_config cfg;
    guest_smtp_config_init(&cfg);
    cfg.url = url;
    cfg.username = user;
    cfg.password = password;
    cfg.tls_verify = false;
    guest_error err = {0};
    ck_assert_int_eq(guest_smtp_new(&cfg, &smtp, &err), GUEST_OK);
    m = mail_to(to_noverify, "Over STARTTLS, unverified");
    ck_assert_int_eq(send_mail(smtp, &m, error, sizeof error), GUEST_MAIL_SENT);
    msg = one_message(smtp_fixture(), to_noverify);
    ck_assert(msg->tls);
    smtp_messages_free(msg, 1);
    guest_smtp_free(smtp);

    /* Verification on, the system's CAs: the self-signed certificate is
     * refused before anything is sent. */
    const char *to_bad = addr("starttls-unknown-ca");
    smtp = smtp_new(url, GUEST_SMTP_STARTTLS_REQUIRED, user, password, NULL);
    m = mail_to(to_bad, "Unknown CA");
    ck_assert_int_eq(send_mail(smtp, &m, error, sizeof error),
                     GUEST_MAIL_RETRY);
    guest_smtp_free(smtp);
    ck_assert_uint_eq(count_for(smtp_fixture(), to_bad), 0);

    /* STARTTLS required by a server that does not offer it: nothing goes
     * in cleartext. Optional: it goes in cleartext. */
    const char *to_plain = addr("starttls-not-offered");
    smtp =
        smtp_new(env("SMTP_URL"), GUEST_SMTP_STARTTLS_REQUIRED, NULL, NULL, ca);
    m = mail_to(to_plain, "No STARTTLS here");
    ck_assert_int_eq(send_mail(smtp, &m, error, sizeof error),
                     GUEST_MAIL_RETRY);
    ck_assert_uint_eq(count_for(smtp_fixture(), to_plain), 0);
    guest_smtp_free(smtp);
    smtp =
        smtp_new(env("SMTP_URL"), GUEST_SMTP_STARTTLS_OPTIONAL, NULL, NULL, ca);
    ck_assert_int_eq(send_mail(smtp, &m, error, sizeof error), GUEST_MAIL_SENT);
    msg = one_message(smtp_fixture(), to_plain);
    ck_assert(!msg->tls);
    smtp_messages_free(msg, 1);
    guest_smtp_free(smtp);

    /* STARTTLS off against a server that requires it: 530, RETRY. */
    const char *to_off = addr("starttls-off");
    smtp = smtp_new(url, GUEST_SMTP_STARTTLS_OFF, user, password, NULL);
    m = mail_to(to_off, "Cleartext refused");
    ck_assert_int_eq(send_mail(smtp, &m, error, sizeof error),
                     GUEST_MAIL_RETRY);
    ck_assert_msg(strstr(error, "530"), "error: %s", error);
    guest_smtp_free(smtp);
    ck_assert_uint_eq(count_for(smtp_fixture(), to_off), 0);

    /* smtps://: TLS from the first byte. */
    const char *to_smtps = addr("smtps");
    smtp = smtp_new(env("SMTPS_URL"), GUEST_SMTP_STARTTLS_REQUIRED, user,
                    password, ca);
    m = mail_to(to_smtps, "Over smtps");
    ck_assert_msg(send_mail(smtp, &m, error, sizeof error) == GUEST_MAIL_SENT,
                  "%s", error);
    msg = one_message(smtp_fixture(), to_smtps);
    ck_assert_str_eq(msg->listener, "smtps");
    ck_assert(msg->tls);
    smtp_messages_free(msg, 1);
    guest_smtp_free(smtp);
}
END_TEST

/* ---- failures ---- */

START_TEST(temporary_and_permanent_refusals)
{
    guest_smtp *smtp =
        smtp_new(env("SMTP_URL"), GUEST_SMTP_STARTTLS_OFF, NULL, NULL, NULL);
    char error[256] = "";
    guest_mail m = mail_to("tempfail@example.test", "451 at RCPT");
    ck_assert_int_eq(send_mail(smtp, &m, error, sizeof error),
                     GUEST_MAIL_RETRY);
    ck_assert_msg(strstr(error, "451"), "error: %s", error);
    ck_assert_msg(strstr(error, "tempfail: try again later"), "error: %s",
                  error);
    m = mail_to("reject@example.test", "550 at RCPT");
    ck_assert_int_eq(send_mail(smtp, &m, error, sizeof error),
                     GUEST_MAIL_PERMANENT);
    ck_assert_msg(strstr(error, "550"), "error: %s", error);
    ck_assert_msg(strstr(error, "no such mailbox"), "error: %s", error);
    m = mail_to("datafail@example.test", "451 after DATA");
    ck_assert_int_eq(send_mail(smtp, &m, error, sizeof error),
                     GUEST_MAIL_RETRY);
    ck_assert_msg(strstr(error, "451"), "error: %s", error);
    guest_smtp_free(smtp);
}
END_TEST

START_TEST(timeout_is_retry_within_the_deadline)
{
    guest_smtp_config cfg;
    guest_smtp_config_init(&cfg);
    cfg.url = env("SMTP_URL");
    cfg.starttls = GUEST_SMTP_STARTTLS_OFF;
    cfg.timeout_ms = 1000;
    guest_smtp *smtp = NULL;
    guest_error err = {0};
    ck_assert_int_eq(guest_smtp_new(&cfg, &smtp, &err), GUEST_OK);
    guest_mail m = mail_to("slow@example.test", "The server stalls at RCPT");
    char error[256] = "";
    long t0 = now_ms();
    ck_assert_int_eq(send_mail(smtp, &m, error, sizeof error),
                     GUEST_MAIL_RETRY);
    long took = now_ms() - t0;
    ck_assert_msg(took >= 900 && took < 4000, "took %ld ms", took);
    guest_smtp_free(smtp);
}
END_TEST

/* A server of this test's own, so that stopping it disturbs no other
 * test: down is RETRY at once, and once it is back the next send goes
 * through; what it had received is still there. */
START_TEST(server_down_then_back)
{
    smtp_server *srv = smtp_private_start("test_smtp");
    ck_assert_ptr_nonnull(srv);
    const char *url = smtp_server_env(srv, "SMTP_URL");
    ck_assert_ptr_nonnull(url);
    guest_smtp *smtp = smtp_new(url, GUEST_SMTP_STARTTLS_OFF, NULL, NULL, NULL);
    const char *to = addr("outage");
    char error[256] = "";
    guest_mail m = mail_to(to, "Before the outage");
    ck_assert_int_eq(send_mail(smtp, &m, error, sizeof error), GUEST_MAIL_SENT);

    ck_assert(smtp_server_stop(srv));
    m = mail_to(to, "During the outage");
    long t0 = now_ms();
    ck_assert_int_eq(send_mail(smtp, &m, error, sizeof error),
                     GUEST_MAIL_RETRY);
    ck_assert_int_lt(now_ms() - t0, 5000);
    ck_assert_msg(error[0], "no error text");

    ck_assert(smtp_server_resume(srv));
    ck_assert_str_eq(smtp_server_env(srv, "SMTP_URL"), url);
    ck_assert_int_eq(send_mail(smtp, &m, error, sizeof error), GUEST_MAIL_SENT);
    smtp_message *msgs = NULL;
    ck_assert_uint_eq(smtp_wait_messages(srv, to, 2, 5000, &msgs), 2);
    assert_field(&msgs[0], "subject", "Before the outage");
    assert_field(&msgs[1], "subject", "During the outage");
    smtp_messages_free(msgs, 2);
    guest_smtp_free(smtp);
    smtp_private_free(srv);
}
END_TEST

START_TEST(header_injection_is_refused_before_sending)
{
    guest_smtp *smtp =
        smtp_new(env("SMTP_URL"), GUEST_SMTP_STARTTLS_OFF, NULL, NULL, NULL);
    const char *to = addr("inject");
    char victim[128];
    snprintf(victim, sizeof victim, "%s\r\nBcc: %s", to, addr("victim"));
    char error[256];
    struct {
        guest_mail mail;
        const char *why;
    } cases[] = {
        {mail_to(to, "Hi\r\nBcc: victim@example.test"), "Subject"},
        {mail_to(to, "Hi\nX-Injected: 1"), "Subject"},
        {mail_to(to, "Hi\rthere"), "Subject"},
        {mail_to(victim, "Hi"), "To"},
        {mail_to(to, "Hi"), "From"},
        {mail_to(to, "Hi"), "Message-ID"},
        {mail_to("zoë@example.test", "Hi"), "To"},
        {mail_to("no-at-sign", "Hi"), "To"},
        {mail_to("a@b@example.test", "Hi"), "To"},
        {mail_to("Name <unclosed@example.test", "Hi"), "To"},
    };
    cases[4].mail.from = FROM "\nBcc: victim@example.test";
    cases[5].mail.message_id = "<x@y>\r\nBcc: victim@example.test";
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        error[0] = '\0';
        ck_assert_msg(send_mail(smtp, &cases[i].mail, error, sizeof error) ==
                          GUEST_MAIL_PERMANENT,
                      "case %zu sent", i);
        ck_assert_msg(strstr(error, cases[i].why), "case %zu: %s", i, error);
    }
    usleep(300 * 1000);
    ck_assert_uint_eq(count_for(smtp_fixture(), to), 0);
    ck_assert_uint_eq(count_for(smtp_fixture(), "victim@example.test"), 0);
    guest_smtp_free(smtp);
}
END_TEST

/* ---- threads ---- */

enum { THREADS = 8, PER_THREAD = 3 };

typedef struct worker {
    guest_smtp *smtp;
    int index;
    int sent;
} worker;

static void *send_some(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        char id[64], subject[64], error[256];
        snprintf(id, sizeof id, "<%d.%d@guestuser>", w->index, i);
        snprintf(subject, sizeof subject, "Thread %d mail %d", w->index, i);
        guest_mail m = mail_to(addr("threads"), subject);
        m.message_id = id;
        guest_mail_transport t = guest_smtp_transport(w->smtp);
        if (t.send(&m, t.userdata, error, sizeof error) == GUEST_MAIL_SENT)
            w->sent++;
    }
    return NULL;
}

START_TEST(threads_share_one_handle)
{
    guest_smtp *smtp =
        smtp_new(env("SMTP_URL"), GUEST_SMTP_STARTTLS_OFF, NULL, NULL, NULL);
    pthread_t th[THREADS];
    worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker){.smtp = smtp, .index = i};
        ck_assert_int_eq(pthread_create(&th[i], NULL, send_some, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_eq(w[i].sent, PER_THREAD);
    }
    smtp_message *msgs = NULL;
    size_t n = smtp_wait_messages(smtp_fixture(), addr("threads"),
                                  THREADS * PER_THREAD, 60000, &msgs);
    ck_assert_uint_eq(n, THREADS * PER_THREAD);
    bool seen[THREADS][PER_THREAD] = {{false}};
    for (size_t i = 0; i < n; i++) {
        /* Read from the raw text: a parser process per message is slow
         * on a busy machine, and the header is ours, on one line. */
        const char *id = strstr(msgs[i].raw, "\r\nMessage-ID: ");
        int a = -1, b = -1;
        ck_assert_ptr_nonnull(id);
        ck_assert_int_eq(
            sscanf(id, "\r\nMessage-ID: <%d.%d@guestuser>", &a, &b), 2);
        ck_assert(a >= 0 && a < THREADS && b >= 0 && b < PER_THREAD);
        ck_assert(!seen[a][b]);
        seen[a][b] = true;
    }
    smtp_messages_free(msgs, n);
    guest_smtp_free(smtp);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("smtp");
    TCase *tc = tcase_create("smtp");
    tcase_add_test(tc, config_defaults_and_refusals);
    tcase_add_test(tc, plain_mail_arrives_with_headers_and_body);
    tcase_add_test(tc, html_mail_is_multipart_alternative);
    tcase_add_test(tc, non_ascii_subject_and_name_arrive_decoded);
    tcase_add_test(tc, long_lines_and_generated_message_id);
    tcase_add_test(tc, auth_with_and_without_credentials);
    tcase_add_test(tc, starttls_and_smtps);
    tcase_add_test(tc, temporary_and_permanent_refusals);
    tcase_add_test(tc, timeout_is_retry_within_the_deadline);
    tcase_add_test(tc, server_down_then_back);
    tcase_add_test(tc, header_injection_is_refused_before_sending);
    tcase_add_test(tc, threads_share_one_handle);
    tcase_set_timeout(tc, 240);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

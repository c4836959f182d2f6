/* E-mail on accounts against the fixture database, delivered through a
 * transport of the test's own (the SMTP transport has its own suite):
 * password reset, the same answer for every address, links that die,
 * the reset limits under a burst, changing and verifying an address, and
 * the outbox: retries, failures, two senders sharing it. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"
#include "testlib.h"

#define SCHEMA "t_email"

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
    c->hash_concurrency = 8;
}

/* What a transport of the test's got. */
#define CAPTURED_MAX 512
typedef struct capture {
    pthread_mutex_t mu;
    int n;
    char to[CAPTURED_MAX][64];
    char text[CAPTURED_MAX][1024];
    char subject[CAPTURED_MAX][128];
    int64_t ids[CAPTURED_MAX];
    guest_mail_result answer; /* what send answers */
} capture;

static guest_mail_result capture_send(const guest_mail *m, void *ud, char *e,
                                      size_t es)
{
    capture *c = ud;
    pthread_mutex_lock(&c->mu);
    guest_mail_result r = c->answer;
    if (r == GUEST_MAIL_SENT && c->n < CAPTURED_MAX) {
        snprintf(c->to[c->n], sizeof c->to[0], "%s", m->to);
        snprintf(c->text[c->n], sizeof c->text[0], "%s", m->text);
        snprintf(c->subject[c->n], sizeof c->subject[0], "%s", m->subject);
        c->ids[c->n] = m->id;
        c->n++;
    }
    pthread_mutex_unlock(&c->mu);
    if (r != GUEST_MAIL_SENT)
        snprintf(e, es, "the test says %s",
                 r == GUEST_MAIL_RETRY ? "later" : "never");
    return r;
}

static capture cap;

static guest_mail_transport transport(void)
{
    return (guest_mail_transport){.send = capture_send, .userdata = &cap};
}

static void cap_reset(void)
{
    pthread_mutex_destroy(&cap.mu);
    memset(&cap, 0, sizeof cap);
    pthread_mutex_init(&cap.mu, NULL);
    cap.answer = GUEST_MAIL_SENT;
}

static unsigned deliver(guest_ctx *ctx)
{
    guest_mail_transport t = transport();
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

typedef struct call {
    const char *a, *b, *c;
    guest_status st;
    guest_form_errors errors;
    int what;
} call;

enum { RESET_REQUEST, RESET_CONFIRM, EMAIL_CHANGE };

static void call_handler(guest_req *req, void *ud)
{
    call *c = ud;
    if (c->what == RESET_REQUEST)
        c->st = guest_password_reset_request(req, c->a, NULL);
    else if (c->what == RESET_CONFIRM)
        c->st = guest_password_reset_confirm(req, c->a, c->b, c->c, &c->errors,
                                             NULL);
    else
        c->st = guest_email_change(req, c->a, c->b, &c->errors, NULL);
}

static guest_status run(guest_ctx *ctx, const char *cookie, const char *peer,
                        int what, const char *a, const char *b, const char *c,
                        guest_form_errors *errors)
{
    tl_http h;
    call x = {.a = a, .b = b, .c = c, .what = what};
    tl_http_init(&h, "POST", "/");
    if (peer)
        h.peer = peer;
    if (cookie && *cookie)
        tl_http_add(&h, "Cookie", cookie);
    tl_http_run(ctx, &h, call_handler, &x);
    tl_http_free(&h);
    if (errors)
        *errors = x.errors;
    return x.st;
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

/* A registered user with a verified address. */
static int64_t user_with_address(guest_ctx *ctx, const char *name,
                                 const char *email)
{
    int64_t id = tl_new_user(ctx, name, TL_PASSWORD);
    set_address(id, email, true);
    return id;
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

START_TEST(reset_by_link_sets_a_password_and_ends_sessions)
{
    cap_reset();
    guest_ctx *ctx = tl_ctx(SCHEMA, mail_on);
    int64_t id = user_with_address(ctx, "ann", "Ann@Example.test");
    /* a session that the reset must end */
    char cookie[128];
    tl_http h;
    tl_request(ctx, &h, "POST", "/accounts/login/", "csrftoken=" TL_CSRF, NULL,
               "username=ann&password=" TL_PASSWORD
               "&csrfmiddlewaretoken=" TL_CSRF,
               guest_login_view, NULL);
    ck_assert(tl_http_cookie(&h, "sessionid", cookie, sizeof cookie));
    tl_http_free(&h);
    ck_assert_int_eq(tl_whoami(ctx, cookie, NULL), id);
    /* any case of the address */
    ck_assert_int_eq(
        run(ctx, "", NULL, RESET_REQUEST, "ann@EXAMPLE.test", NULL, NULL, NULL),
        GUEST_OK);
    ck_assert_int_eq(count("SELECT count(*) FROM @.outbox"), 1);
    ck_assert_uint_eq(deliver(ctx), 1);
    ck_assert_int_eq(cap.n, 1);
    ck_assert_str_eq(cap.to[0], "ann@EXAMPLE.test");
    ck_assert_str_eq(cap.subject[0], "Reset your password");
    ck_assert_ptr_nonnull(strstr(cap.text[0], "username: ann"));
    char token[64];
    link_token(0, "https://example.test/accounts/password/reset/", token,
               sizeof token);
    /* only the hash is stored */
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM @.email_tokens WHERE position('%s' IN"
             " encode(token_hash, 'escape')) > 0",
             token);
    ck_assert_int_eq(count(sql), 0);
    /* opening the link does not use it up */
    char name[GUEST_USERNAME_BUF];
    ck_assert_int_eq(guest_password_reset_check(ctx, token, name, NULL),
                     GUEST_OK);
    ck_assert_str_eq(name, "ann");
    ck_assert_int_eq(guest_password_reset_check(ctx, token, NULL, NULL),
                     GUEST_OK);
    /* the new passwords are checked like any */
    guest_form_errors errors;
    ck_assert_int_eq(run(ctx, "", NULL, RESET_CONFIRM, token, "Fresh-Quill-93",
                         "other", &errors),
                     GUEST_ERR_VALIDATION);
    ck_assert_ptr_nonnull(guest_form_errors_get(&errors, "new_password2"));
    ck_assert_int_eq(run(ctx, "", NULL, RESET_CONFIRM, token, "Fresh-Quill-93",
                         "Fresh-Quill-93", &errors),
                     GUEST_OK);
    ck_assert_int_eq(tl_whoami(ctx, cookie, NULL), 0);
    ck_assert(can_log_in(ctx, "ann", "Fresh-Quill-93"));
    ck_assert(!can_log_in(ctx, "ann", TL_PASSWORD));
    /* single use */
    ck_assert_int_eq(guest_password_reset_check(ctx, token, NULL, NULL),
                     GUEST_ERR_NOT_FOUND);
    ck_assert_int_eq(run(ctx, "", NULL, RESET_CONFIRM, token, "Other-Quill-94",
                         "Other-Quill-94", NULL),
                     GUEST_ERR_NOT_FOUND);
    ck_assert_int_eq(guest_password_reset_check(ctx, "garbage", NULL, NULL),
                     GUEST_ERR_NOT_FOUND);
    guest_ctx_free(ctx);
}
END_TEST

/* Whoever asks, the same answer after the same statements: a known and
 * verified address, an unverified one, an unknown one, a guest's. */
START_TEST(every_address_gets_the_same_answer)
{
    cap_reset();
    guest_ctx *ctx = tl_ctx(SCHEMA, mail_on);
    user_with_address(ctx, "bea", "bea@example.test");
    int64_t cy = tl_new_user(ctx, "cy", TL_PASSWORD);
    set_address(cy, "cy@example.test", false);
    const char *asks[] = {"bea@example.test", "cy@example.test",
                          "nobody@example.test", "bea@example.test"};
    unsigned long trips[4];
    for (int i = 0; i < 4; i++) {
        unsigned long before = guest__db_round_trips;
        ck_assert_int_eq(run(ctx, "", i == 3 ? "192.0.2.9" : NULL,
                             RESET_REQUEST, asks[i], NULL, NULL, NULL),
                         GUEST_OK);
        trips[i] = guest__db_round_trips - before;
    }
    ck_assert_uint_eq(trips[0], trips[1]);
    ck_assert_uint_eq(trips[0], trips[2]);
    /* only the verified one got mail, twice */
    ck_assert_uint_eq(deliver(ctx), 2);
    ck_assert_str_eq(cap.to[0], "bea@example.test");
    ck_assert_str_eq(cap.to[1], "bea@example.test");
    /* a malformed address: the same answer, no work */
    ck_assert_int_eq(
        run(ctx, "", NULL, RESET_REQUEST, "x\r\nBcc: a@b", NULL, NULL, NULL),
        GUEST_OK);
    ck_assert_int_eq(count("SELECT count(*) FROM @.outbox"), 2);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(a_link_dies_with_any_password_change_or_time)
{
    cap_reset();
    guest_ctx *ctx = tl_ctx(SCHEMA, mail_on);
    user_with_address(ctx, "dee", "dee@example.test");
    ck_assert_int_eq(
        run(ctx, "", NULL, RESET_REQUEST, "dee@example.test", NULL, NULL, NULL),
        GUEST_OK);
    ck_assert_int_eq(
        run(ctx, "", NULL, RESET_REQUEST, "dee@example.test", NULL, NULL, NULL),
        GUEST_OK);
    ck_assert_uint_eq(deliver(ctx), 2);
    char t1[64], t2[64];
    link_token(0, "/accounts/password/reset/", t1, sizeof t1);
    link_token(1, "/accounts/password/reset/", t2, sizeof t2);
    ck_assert_int_eq(guest_password_reset_check(ctx, t1, NULL, NULL), GUEST_OK);
    /* any change of the password: by an admin here */
    ck_assert_int_eq(
        guest_user_set_password(ctx, "dee", "Admin-Chose-77", NULL, NULL),
        GUEST_OK);
    ck_assert_int_eq(guest_password_reset_check(ctx, t1, NULL, NULL),
                     GUEST_ERR_NOT_FOUND);
    ck_assert_int_eq(guest_password_reset_check(ctx, t2, NULL, NULL),
                     GUEST_ERR_NOT_FOUND);
    /* and time */
    ck_assert_int_eq(
        run(ctx, "", NULL, RESET_REQUEST, "dee@example.test", NULL, NULL, NULL),
        GUEST_OK);
    ck_assert_uint_eq(deliver(ctx), 1);
    char t3[64];
    link_token(2, "/accounts/password/reset/", t3, sizeof t3);
    tl_exec_in(SCHEMA, "UPDATE @.email_tokens SET expires_at = now()"
                       " - interval '1 second'");
    ck_assert_int_eq(guest_password_reset_check(ctx, t3, NULL, NULL),
                     GUEST_ERR_NOT_FOUND);
    guest_ctx_free(ctx);
}
END_TEST

typedef struct burst {
    guest_ctx *ctx;
    pthread_barrier_t *go;
    char peer[32];
    guest_status st;
} burst;

static void *burst_request(void *arg)
{
    burst *b = arg;
    pthread_barrier_wait(b->go);
    b->st = run(b->ctx, "", b->peer, RESET_REQUEST, "eve@example.test", NULL,
                NULL, NULL);
    return NULL;
}

/* 32 requests for one address at the same instant, from 32 addresses: the
 * per-address limit of 3 holds; 11 from one client: its limit of 10. */
START_TEST(reset_limits_hold_for_32_at_once)
{
    cap_reset();
    guest_ctx *ctx = tl_ctx(SCHEMA, mail_on);
    user_with_address(ctx, "eve", "eve@example.test");
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, 32);
    burst b[32];
    pthread_t t[32];
    for (int i = 0; i < 32; i++) {
        b[i] = (burst){.ctx = ctx, .go = &go};
        snprintf(b[i].peer, sizeof b[i].peer, "10.9.%d.1", i);
        ck_assert_int_eq(pthread_create(&t[i], NULL, burst_request, &b[i]), 0);
    }
    int ok = 0, limited = 0;
    for (int i = 0; i < 32; i++) {
        pthread_join(t[i], NULL);
        ok += b[i].st == GUEST_OK;
        limited += b[i].st == GUEST_ERR_RATE_LIMITED;
    }
    pthread_barrier_destroy(&go);
    ck_assert_int_eq(ok, 3);
    ck_assert_int_eq(limited, 29);
    ck_assert_int_eq(count("SELECT count(*) FROM @.outbox"), 3);
    /* one client, many addresses: 10 an hour */
    int from_one = 0;
    for (int i = 0; i < 11; i++) {
        char addr[64];
        snprintf(addr, sizeof addr, "someone%d@example.test", i);
        from_one += run(ctx, "", "192.0.2.77", RESET_REQUEST, addr, NULL, NULL,
                        NULL) == GUEST_OK;
    }
    ck_assert_int_eq(from_one, 10);
    guest_ctx_free(ctx);
}
END_TEST

/* A session cookie of @p name after a password login. */
static void login_cookie(guest_ctx *ctx, const char *name, char *cookie,
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
    ck_assert(tl_http_cookie(&h, "sessionid", cookie, size));
    tl_http_free(&h);
}

START_TEST(an_address_changes_only_when_verified)
{
    cap_reset();
    guest_ctx *ctx = tl_ctx(SCHEMA, mail_on);
    int64_t id = user_with_address(ctx, "fin", "fin@old.test");
    user_with_address(ctx, "gil", "gil@example.test");
    char cookie[128];
    login_cookie(ctx, "fin", cookie, sizeof cookie);
    guest_form_errors errors;
    /* the password is asked for, and checked */
    ck_assert_int_eq(run(ctx, cookie, NULL, EMAIL_CHANGE, "fin@new.test",
                         "wrong", NULL, &errors),
                     GUEST_ERR_VALIDATION);
    ck_assert_ptr_nonnull(guest_form_errors_get(&errors, "password"));
    ck_assert_int_eq(run(ctx, cookie, NULL, EMAIL_CHANGE, "not an address",
                         TL_PASSWORD, NULL, &errors),
                     GUEST_ERR_VALIDATION);
    ck_assert_ptr_nonnull(guest_form_errors_get(&errors, "email"));
    ck_assert_int_eq(run(ctx, cookie, NULL, EMAIL_CHANGE, "GIL@example.test",
                         TL_PASSWORD, NULL, &errors),
                     GUEST_ERR_VALIDATION);
    ck_assert_str_eq(guest_form_errors_get(&errors, "email"),
                     "A user with that email address already exists.");
    ck_assert_int_eq(run(ctx, cookie, NULL, EMAIL_CHANGE, "fin@new.test",
                         TL_PASSWORD, NULL, NULL),
                     GUEST_OK);
    /* not yet */
    char addr[GUEST_EMAIL_MAX + 1];
    bool verified;
    ck_assert_int_eq(
        guest_user_email(ctx, id, addr, sizeof addr, &verified, NULL),
        GUEST_OK);
    ck_assert_str_eq(addr, "fin@old.test");
    ck_assert_uint_eq(deliver(ctx), 1);
    ck_assert_str_eq(cap.to[0], "fin@new.test");
    char token[64];
    link_token(0, "https://example.test/accounts/email/verify/", token,
               sizeof token);
    char now_addr[GUEST_EMAIL_MAX + 1];
    ck_assert_int_eq(guest_email_verify(ctx, token, now_addr, NULL), GUEST_OK);
    ck_assert_str_eq(now_addr, "fin@new.test");
    ck_assert_int_eq(
        guest_user_email(ctx, id, addr, sizeof addr, &verified, NULL),
        GUEST_OK);
    ck_assert_str_eq(addr, "fin@new.test");
    ck_assert(verified);
    /* the old verified address is told */
    ck_assert_uint_eq(deliver(ctx), 1);
    ck_assert_str_eq(cap.to[1], "fin@old.test");
    ck_assert_ptr_nonnull(strstr(cap.text[1], "fin@new.test"));
    /* single use */
    ck_assert_int_eq(guest_email_verify(ctx, token, NULL, NULL),
                     GUEST_ERR_NOT_FOUND);
    /* a guest has no address to change */
    char guest[128];
    tl_new_guest(ctx, guest, sizeof guest);
    ck_assert_int_eq(run(ctx, guest, NULL, EMAIL_CHANGE, "g@x.test",
                         TL_PASSWORD, NULL, NULL),
                     GUEST_ERR_AUTH);
    guest_ctx_free(ctx);
}
END_TEST

static void no_mail(guest_config *c)
{
    (void)c;
}

START_TEST(without_mail_settings_nothing_is_sent)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, no_mail);
    ck_assert_int_eq(
        run(ctx, "", NULL, RESET_REQUEST, "a@example.test", NULL, NULL, NULL),
        GUEST_ERR_CONFIG);
    ck_assert_int_eq(count("SELECT count(*) FROM @.outbox"), 0);
    guest_ctx_free(ctx);
}
END_TEST

/* Mails queued straight into the outbox, as a request would. */
static void queue(guest_ctx *ctx, int n)
{
    for (int i = 0; i < n; i++) {
        guest_db tx;
        ck_assert_int_eq(guest__tx_begin(ctx, &tx, NULL), GUEST_OK);
        char to[64];
        snprintf(to, sizeof to, "m%d@example.test", i);
        ck_assert_int_eq(
            guest__outbox_put(&tx, to, "Subject", "Body", NULL, NULL),
            GUEST_OK);
        ck_assert_int_eq(guest__tx_commit(&tx, NULL), GUEST_OK);
    }
}

START_TEST(a_mail_is_retried_then_kept_as_failed)
{
    cap_reset();
    guest_ctx *ctx = tl_ctx(SCHEMA, mail_on);
    queue(ctx, 2);
    cap.answer = GUEST_MAIL_RETRY;
    ck_assert_uint_eq(deliver(ctx), 0);
    ck_assert_int_eq(count("SELECT count(*) FROM @.outbox WHERE attempts = 1"
                           " AND next_attempt_at > now() + interval '5 s'"
                           " AND last_error = 'the test says later'"),
                     2);
    /* not due again yet */
    ck_assert_uint_eq(deliver(ctx), 0);
    ck_assert_int_eq(count("SELECT max(attempts) FROM @.outbox"), 1);
    /* due: the server is back */
    tl_exec_in(SCHEMA, "UPDATE @.outbox SET next_attempt_at = now()");
    cap.answer = GUEST_MAIL_SENT;
    ck_assert_uint_eq(deliver(ctx), 2);
    ck_assert_int_eq(count("SELECT count(*) FROM @.outbox WHERE sent_at IS"
                           " NOT NULL"),
                     2);
    /* a permanent refusal is kept as failed at once */
    queue(ctx, 1);
    cap.answer = GUEST_MAIL_PERMANENT;
    guest_mail_transport t = transport();
    unsigned sent, failed;
    ck_assert_int_eq(guest_mail_send_due(ctx, &t, 0, &sent, &failed, NULL),
                     GUEST_OK);
    ck_assert_uint_eq(failed, 1);
    ck_assert_int_eq(count("SELECT count(*) FROM @.outbox WHERE failed_at IS"
                           " NOT NULL AND last_error = 'the test says never'"),
                     1);
    /* and so is one that never goes through */
    queue(ctx, 1);
    cap.answer = GUEST_MAIL_RETRY;
    tl_exec_in(SCHEMA, "UPDATE @.outbox SET attempts = 11 WHERE sent_at IS"
                       " NULL AND failed_at IS NULL");
    ck_assert_int_eq(guest_mail_send_due(ctx, &t, 0, &sent, &failed, NULL),
                     GUEST_OK);
    ck_assert_uint_eq(failed, 1);
    ck_assert_int_eq(count("SELECT count(*) FROM @.outbox WHERE failed_at IS"
                           " NOT NULL"),
                     2);
    guest_ctx_free(ctx);
}
END_TEST

/* The mail counters and the queued gauge after send passes. */
START_TEST(mail_metrics_count_sent_failed_and_queued)
{
    cap_reset();
    guest_ctx *ctx = tl_ctx(SCHEMA, mail_on);
    guest_metrics m;
    guest_metrics_get(ctx, &m);
    ck_assert_uint_eq(m.mail_sent, 0);
    ck_assert_uint_eq(m.mail_failed, 0);
    ck_assert_int_eq(m.mail_queued, 0);
    queue(ctx, 3);
    /* a retry counts as neither; the three stay queued */
    cap.answer = GUEST_MAIL_RETRY;
    ck_assert_uint_eq(deliver(ctx), 0);
    guest_metrics_get(ctx, &m);
    ck_assert_uint_eq(m.mail_sent, 0);
    ck_assert_uint_eq(m.mail_failed, 0);
    ck_assert_int_eq(m.mail_queued, 3);
    /* one refused for good, two delivered */
    tl_exec_in(SCHEMA, "UPDATE @.outbox SET next_attempt_at = now() + "
                       "interval '1 hour' WHERE id > (SELECT min(id)"
                       " FROM @.outbox)");
    tl_exec_in(SCHEMA, "UPDATE @.outbox SET next_attempt_at = now()"
                       " WHERE id = (SELECT min(id) FROM @.outbox)");
    cap.answer = GUEST_MAIL_PERMANENT;
    ck_assert_uint_eq(deliver(ctx), 0);
    guest_metrics_get(ctx, &m);
    ck_assert_uint_eq(m.mail_failed, 1);
    ck_assert_int_eq(m.mail_queued, 2);
    tl_exec_in(SCHEMA, "UPDATE @.outbox SET next_attempt_at = now()");
    cap.answer = GUEST_MAIL_SENT;
    ck_assert_uint_eq(deliver(ctx), 2);
    guest_metrics_get(ctx, &m);
    ck_assert_uint_eq(m.mail_sent, 2);
    ck_assert_uint_eq(m.mail_failed, 1);
    ck_assert_int_eq(m.mail_queued, 0);
    char *text = NULL;
    ck_assert_int_eq(guest_metrics_text(ctx, &text, NULL, NULL), GUEST_OK);
    ck_assert_ptr_nonnull(strstr(text, "\nguestuser_mail_sent_total 2\n"));
    ck_assert_ptr_nonnull(strstr(text, "\nguestuser_mail_failed_total 1\n"));
    ck_assert_ptr_nonnull(strstr(text, "# TYPE guestuser_mail_queued gauge\n"
                                       "guestuser_mail_queued 0\n"));
    free(text);
    guest_ctx_free(ctx);
}
END_TEST

static void fast_poll(guest_config *c)
{
    mail_on(c);
    c->mail_poll_ms = 20;
}

/* Two processes' senders share the outbox: every mail once. (Two contexts
 * with pools of their own stand for two processes.) */
START_TEST(two_senders_deliver_each_mail_once)
{
    cap_reset();
    guest_ctx *a = tl_ctx(SCHEMA, fast_poll), *b = tl_ctx(SCHEMA, fast_poll);
    queue(a, 200);
    guest_mail_transport t = transport();
    guest_mail_sender *sa, *sb;
    ck_assert_int_eq(guest_mail_sender_start(a, &t, &sa, NULL), GUEST_OK);
    ck_assert_int_eq(guest_mail_sender_start(b, &t, &sb, NULL), GUEST_OK);
    /* bounded wait, generous */
    for (int i = 0; i < 600 && count("SELECT count(*) FROM @.outbox WHERE"
                                     " sent_at IS NULL") > 0;
         i++)
        usleep(100 * 1000);
    guest_mail_sender_stop(sa);
    guest_mail_sender_stop(sb);
    ck_assert_int_eq(count("SELECT count(*) FROM @.outbox WHERE sent_at IS"
                           " NULL"),
                     0);
    ck_assert_int_eq(cap.n, 200);
    for (int i = 0; i < cap.n; i++)
        for (int j = i + 1; j < cap.n; j++)
            ck_assert_msg(cap.ids[i] != cap.ids[j], "mail %lld twice",
                          (long long)cap.ids[i]);
    ck_assert_int_eq(count("SELECT max(attempts) FROM @.outbox"), 1);
    /* cleanup keeps delivered mails a week, then deletes them */
    guest_cleanup_options o;
    guest_cleanup_options_init(&o);
    guest_cleanup_result r;
    ck_assert_int_eq(guest_delete_expired(a, &o, &r, NULL), GUEST_OK);
    ck_assert_int_eq(count("SELECT count(*) FROM @.outbox"), 200);
    tl_exec_in(SCHEMA, "UPDATE @.outbox SET sent_at = now() - interval"
                       " '8 days' WHERE id % 2 = 0");
    ck_assert_int_eq(guest_delete_expired(a, &o, &r, NULL), GUEST_OK);
    ck_assert_int_eq(count("SELECT count(*) FROM @.outbox"), 100);
    guest_ctx_free(a);
    guest_ctx_free(b);
}
END_TEST

static guest_status bad_subject(const guest_mail_vars *v,
                                guest_mail_content *out, void *ud)
{
    (void)ud;
    guest_status st = guest_mail_render_default(v, out);
    if (st == GUEST_OK) {
        free(out->subject);
        out->subject = strdup("Hi\r\nBcc: everyone@example.test");
    }
    return st;
}

static void injecting(guest_config *c)
{
    mail_on(c);
    c->render_mail = bad_subject;
}

START_TEST(a_subject_with_a_line_break_sends_nothing)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, injecting);
    user_with_address(ctx, "hal", "hal@example.test");
    ck_assert_int_eq(
        run(ctx, "", NULL, RESET_REQUEST, "hal@example.test", NULL, NULL, NULL),
        GUEST_ERR_HOOK);
    ck_assert_int_eq(count("SELECT count(*) FROM @.outbox"), 0);
    ck_assert_int_eq(count("SELECT count(*) FROM @.email_tokens"), 0);
    guest_ctx_free(ctx);
}
END_TEST

/* What guest_email_change() says without mail settings, seen by the
 * handler. */
static void change_without_mail(guest_req *req, void *ud)
{
    guest_error err = {0};
    guest_form_errors errors;
    *(guest_status *)ud =
        guest_email_change(req, "x@example.test", "pw", &errors, &err);
    guest_res_send(req, 200, "text/plain", "ok");
}

START_TEST(misuse_is_refused)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, NULL);
    guest_error err = {0};
    char name[GUEST_USERNAME_BUF], email[GUEST_EMAIL_MAX + 1];
    const char *token = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    ck_assert_int_eq(guest_password_reset_request(NULL, "a@b.c", &err),
                     GUEST_ERR_INVALID);
    ck_assert_int_eq(guest_password_reset_check(NULL, token, name, &err),
                     GUEST_ERR_INVALID);
    ck_assert_int_eq(
        guest_password_reset_confirm(NULL, token, "a", "a", NULL, &err),
        GUEST_ERR_INVALID);
    ck_assert_int_eq(guest_email_change(NULL, "a@b.c", "pw", NULL, &err),
                     GUEST_ERR_INVALID);
    ck_assert_int_eq(guest_email_verify(NULL, token, email, &err),
                     GUEST_ERR_INVALID);
    /* not a token at all: no such link */
    ck_assert_int_eq(guest_email_verify(ctx, "short", email, &err),
                     GUEST_ERR_NOT_FOUND);
    ck_assert_int_eq(guest_user_email(ctx, 1, NULL, 0, NULL, &err),
                     GUEST_ERR_INVALID);
    /* a change needs mail_from and public_url */
    guest_status st = GUEST_OK;
    tl_http h;
    tl_http_init(&h, "POST", "/accounts/email/");
    tl_http_run(ctx, &h, change_without_mail, &st);
    tl_http_free(&h);
    ck_assert_int_eq(st, GUEST_ERR_CONFIG);
    ck_assert_int_eq(count("SELECT count(*) FROM @.email_tokens"), 0);
    guest_ctx_free(ctx);
}
END_TEST

int main(void)
{
    pthread_mutex_init(&cap.mu, NULL);
    Suite *s = suite_create("email");
    TCase *t = tcase_create("db");
    tcase_add_checked_fixture(t, setup, NULL);
    tcase_set_timeout(t, 120);
    tcase_add_test(t, reset_by_link_sets_a_password_and_ends_sessions);
    tcase_add_test(t, every_address_gets_the_same_answer);
    tcase_add_test(t, a_link_dies_with_any_password_change_or_time);
    tcase_add_test(t, reset_limits_hold_for_32_at_once);
    tcase_add_test(t, an_address_changes_only_when_verified);
    tcase_add_test(t, without_mail_settings_nothing_is_sent);
    tcase_add_test(t, a_mail_is_retried_then_kept_as_failed);
    tcase_add_test(t, mail_metrics_count_sent_failed_and_queued);
    tcase_add_test(t, two_senders_deliver_each_mail_once);
    tcase_add_test(t, a_subject_with_a_line_break_sends_nothing);
    tcase_add_test(t, misuse_is_refused);
    suite_add_tcase(s, t);
    return tl_run(s);
}

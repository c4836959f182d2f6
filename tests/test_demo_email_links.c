/* E-mail flows in the guestuser-demo program over real HTTP, with each
 * --server it has (DEMO_EMAIL_SERVERS), the mail delivered by the demo's
 * own sender to the `smtp` fixture's real server:
 * - sign-up with an address (--signup-email required): a guest converts
 *   with one, and verifies it through the mailed link; with
 *   --login-with-email the address logs in once verified, not before;
 * - links that must not work: a changed, a verification link used for a
 *   reset and the other way round, an expired one, and one sent before
 *   the password changed; the same answer for a known and an unknown
 *   address;
 * - the reset limits, each hit by 32 requests at the same instant: one
 *   client address (10 an hour) and one e-mail address (3 mails an hour,
 *   from 32 client addresses);
 * - a mail server outage under two demo processes sharing one outbox:
 *   pages answered, every mail delivered once when it is back. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "demo_proc.h"
#include "smtp_env.h"
#include "testlib.h"

#define CSRF_COOKIE "csrftoken=" TL_CSRF
#define CSRF_FIELD "csrfmiddlewaretoken=" TL_CSRF
#define NEW_PASSWORD "Brand-New-Horse-77"
#define BURST 32

static void demo_start(demo_proc *d, const char *server, const char *schema,
                       const char *const *extra)
{
    const char *smtp_url = smtp_server_env(smtp_fixture(), "SMTP_URL");
    ck_assert_ptr_nonnull(smtp_url);
    const char *more[32] = {"--smtp-url",         smtp_url,
                            "--smtp-starttls",    "off",
                            "--mail-from",        "Demo <noreply@example.test>",
                            "--max-conns-per-ip", "0",
                            "--trusted-proxy",    "127.0.0.1/32"};
    size_t n = 10;
    for (; extra && *extra; extra++)
        more[n++] = *extra;
    more[n] = NULL;
    demo_proc_start_on(d, server, schema, more);
}

static int status_of(const demo_proc *d, const char *method, const char *path,
                     const char *cookie, const char *body)
{
    char *res = demo_proc_http(d, method, path, cookie, body);
    int status = tl_raw_status(res);
    free(res);
    return status;
}

/* The newest mail to @p rcpt once there are @p count: the path of its
 * link to @p route (a demo path such as "/accounts/password/reset/"). */
static void mail_link(const demo_proc *d, const char *rcpt, size_t count,
                      const char *route, char *out, size_t size)
{
    smtp_message *msgs = NULL;
    size_t n = smtp_wait_messages(smtp_fixture(), rcpt, count, 30000, &msgs);
    ck_assert_uint_eq(n, count);
    /* Names sort by arrival (the fixture's own counter). */
    char *text = smtp_inspect(msgs[n - 1].path, "text");
    ck_assert_ptr_nonnull(text);
    demo_proc_link(d, text, route, out, size);
    free(text);
    smtp_messages_free(msgs, n);
}

/* "local%40example.test" of "local@example.test", for a form body. */
static void form_address(const char *addr, char *out, size_t size)
{
    const char *at = strchr(addr, '@');
    ck_assert_ptr_nonnull(at);
    snprintf(out, size, "%.*s%%40%s", (int)(at - addr), addr, at + 1);
}

/* A registered user @p user with the verified address @p addr, made
 * through SQL on the demo's schema. */
static void verified_user(const char *schema, const char *user,
                          const char *addr)
{
    guest_ctx *ctx = tl_ctx(schema, NULL);
    int64_t id = tl_new_user(ctx, user, TL_PASSWORD);
    guest_ctx_free(ctx);
    const char *at = strchr(addr, '@');
    char sql[512];
    snprintf(sql, sizeof sql,
             "UPDATE @.users SET email = '%.*s' || chr(64) || '%s',"
             " email_verified_at = now() WHERE id = %lld",
             (int)(at - addr), addr, at + 1, (long long)id);
    tl_exec_in(schema, sql);
}

/* Logged in through the demo's form: "sessionid=...; csrftoken=..." */
static void form_login(const demo_proc *d, const char *user,
                       const char *password, char *cookies, size_t size)
{
    char body[256], session[256];
    snprintf(body, sizeof body, "username=%s&password=%s&" CSRF_FIELD, user,
             password);
    char *res =
        demo_proc_http(d, "POST", "/accounts/login/", CSRF_COOKIE, body);
    ck_assert_msg(tl_raw_status(res) == 302, "%s", res);
    ck_assert(demo_proc_cookie(res, "sessionid", session, sizeof session));
    free(res);
    snprintf(cookies, size, "%s; " CSRF_COOKIE, session);
}

/* The body of @p res with every @p addr in it written as "ADDRESS". */
static char *body_without(const char *res, const char *addr)
{
    const char *body = tl_raw_body(res);
    char *out = calloc(1, strlen(body) + 1);
    ck_assert_ptr_nonnull(out);
    size_t n = 0, alen = strlen(addr);
    for (const char *p = body; *p;) {
        if (strncmp(p, addr, alen) == 0) {
            memcpy(out + n, "ADDRESS", 7);
            n += 7;
            p += alen;
        } else {
            out[n++] = *p++;
        }
    }
    out[n] = '\0';
    return out;
}

static void signup_on(const char *server)
{
    char schema[64], user[64], rcpt[96], addr[128], body[512], session[256];
    char cookies[512], path[256];
    snprintf(schema, sizeof schema, "t_demo_signup_email_%s", server);
    snprintf(user, sizeof user, "signup_%s", server);
    snprintf(rcpt, sizeof rcpt, "signup-%s-%d@example.test", server,
             (int)getpid());
    form_address(rcpt, addr, sizeof addr);
    const char *extra[] = {"--signup-email", "required", "--login-with-email",
                           NULL};
    demo_proc d;
    demo_start(&d, server, schema, extra);

    /* a guest */
    char *res = demo_proc_http(&d, "GET", "/allow_guest_user/", NULL, NULL);
    ck_assert_int_eq(tl_raw_status(res), 200);
    ck_assert(demo_proc_cookie(res, "sessionid", session, sizeof session));
    free(res);
    snprintf(cookies, sizeof cookies, "%s; " CSRF_COOKIE, session);

    /* the form asks for an address, and it is required */
    res = demo_proc_http(&d, "GET", "/convert/", cookies, NULL);
    ck_assert_int_eq(tl_raw_status(res), 200);
    ck_assert_ptr_nonnull(strstr(res, "name=\"email\""));
    free(res);
    snprintf(body, sizeof body,
             "username=%s&password1=%s&password2=%s&" CSRF_FIELD, user,
             TL_PASSWORD, TL_PASSWORD);
    res = demo_proc_http(&d, "POST", "/convert/", cookies, body);
    ck_assert_msg(tl_raw_status(res) != 302, "converted without an address");
    ck_assert_ptr_nonnull(strstr(res, "name=\"email\""));
    free(res);
    ck_assert_int_eq(tl_scalar_in(schema,
                                  "SELECT count(*) FROM @.users u WHERE NOT"
                                  " EXISTS (SELECT 1 FROM @.guests g"
                                  " WHERE g.user_id = u.id)"),
                     0);

    /* with one: converted, the address stored unverified, a mail */
    snprintf(body, sizeof body,
             "username=%s&password1=%s&password2=%s&email=%s&" CSRF_FIELD, user,
             TL_PASSWORD, TL_PASSWORD, addr);
    res = demo_proc_http(&d, "POST", "/convert/", cookies, body);
    ck_assert_msg(tl_raw_status(res) == 302, "%s", res);
    if (demo_proc_cookie(res, "sessionid", session, sizeof session))
        snprintf(cookies, sizeof cookies, "%s; " CSRF_COOKIE, session);
    free(res);
    res = demo_proc_http(&d, "GET", "/accounts/profile/", cookies, NULL);
    ck_assert_int_eq(tl_raw_status(res), 200);
    ck_assert_ptr_nonnull(strstr(res, "(not verified)"));
    free(res);
    mail_link(&d, rcpt, 1, "/accounts/email/verify/", path, sizeof path);
    /* an unverified address does not log in */
    snprintf(body, sizeof body, "username=%s&password=%s&" CSRF_FIELD, addr,
             TL_PASSWORD);
    ck_assert_int_ne(
        status_of(&d, "POST", "/accounts/login/", CSRF_COOKIE, body), 302);

    /* the link's button verifies it */
    ck_assert_int_eq(status_of(&d, "POST", path, CSRF_COOKIE, CSRF_FIELD), 200);
    res = demo_proc_http(&d, "GET", "/accounts/profile/", cookies, NULL);
    ck_assert_int_eq(tl_raw_status(res), 200);
    char shown[256];
    snprintf(shown, sizeof shown, "<strong>%s</strong> (verified)", rcpt);
    ck_assert_msg(strstr(res, shown) != NULL, "not %s in: %s", shown, res);
    free(res);
    /* --login-with-email: the verified address logs in */
    char again[512];
    form_login(&d, addr, TL_PASSWORD, again, sizeof again);
    demo_proc_stop(&d, true);
}

static void links_on(const char *server)
{
    char schema[64], user[64], rcpt[96], other[96], addr[128], body[512];
    char cookies[512], reset1[256], reset2[256], verify[256], bad[320];
    snprintf(schema, sizeof schema, "t_demo_email_links_%s", server);
    snprintf(user, sizeof user, "links_%s", server);
    snprintf(rcpt, sizeof rcpt, "links-%s-%d@example.test", server,
             (int)getpid());
    snprintf(other, sizeof other, "nobody-%s-%d@example.test", server,
             (int)getpid());
    demo_proc d;
    demo_start(&d, server, schema, NULL);
    verified_user(schema, user, rcpt);

    /* a known and an unknown address get the same page */
    form_address(rcpt, addr, sizeof addr);
    snprintf(body, sizeof body, "email=%s&" CSRF_FIELD, addr);
    char *known = demo_proc_http(&d, "POST", "/accounts/password/reset/",
                                 CSRF_COOKIE, body);
    form_address(other, addr, sizeof addr);
    snprintf(body, sizeof body, "email=%s&" CSRF_FIELD, addr);
    char *unknown = demo_proc_http(&d, "POST", "/accounts/password/reset/",
                                   CSRF_COOKIE, body);
    ck_assert_int_eq(tl_raw_status(known), 200);
    ck_assert_int_eq(tl_raw_status(unknown), 200);
    char *a = body_without(known, rcpt), *b = body_without(unknown, other);
    ck_assert_str_eq(a, b);
    free(a);
    free(b);
    free(known);
    free(unknown);
    mail_link(&d, rcpt, 1, "/accounts/password/reset/", reset1, sizeof reset1);
    ck_assert_int_eq(status_of(&d, "GET", reset1, NULL, NULL), 200);

    /* a changed token: the same length, one character off */
    snprintf(bad, sizeof bad, "%s", reset1);
    char *last = bad + strlen(bad) - 2; /* before the closing '/' */
    *last = *last == 'A' ? 'B' : 'A';
    ck_assert_int_eq(status_of(&d, "GET", bad, NULL, NULL), 400);
    ck_assert_int_eq(status_of(&d, "POST", bad, CSRF_COOKIE,
                               "new_password1=" NEW_PASSWORD
                               "&new_password2=" NEW_PASSWORD "&" CSRF_FIELD),
                     400);
    ck_assert_int_eq(status_of(&d, "GET",
                               "/accounts/password/reset/not-a-token/", NULL,
                               NULL),
                     400);
    ck_assert_int_eq(
        status_of(&d, "GET", "/accounts/email/verify/x/", NULL, NULL), 400);

    /* a verification link is not a reset link, nor the other way round */
    form_login(&d, user, TL_PASSWORD, cookies, sizeof cookies);
    char newaddr[128], newform[160];
    snprintf(newaddr, sizeof newaddr, "new-%s", rcpt);
    form_address(newaddr, newform, sizeof newform);
    snprintf(body, sizeof body, "email=%s&password=%s&" CSRF_FIELD, newform,
             TL_PASSWORD);
    ck_assert_int_eq(status_of(&d, "POST", "/accounts/email/", cookies, body),
                     200);
    mail_link(&d, newaddr, 1, "/accounts/email/verify/", verify, sizeof verify);
    const char *vtoken = verify + strlen("/accounts/email/verify/");
    const char *rtoken = reset1 + strlen("/accounts/password/reset/");
    snprintf(bad, sizeof bad, "/accounts/password/reset/%s", vtoken);
    ck_assert_int_eq(status_of(&d, "GET", bad, NULL, NULL), 400);
    snprintf(bad, sizeof bad, "/accounts/email/verify/%s", rtoken);
    ck_assert_int_eq(status_of(&d, "GET", bad, NULL, NULL), 400);
    ck_assert_int_eq(status_of(&d, "POST", bad, CSRF_COOKIE, CSRF_FIELD), 400);

    /* an expired link, though never used */
    tl_exec_in(schema, "UPDATE @.email_tokens SET expires_at = now() -"
                       " interval '1 second' WHERE kind = 'reset'");
    ck_assert_int_eq(status_of(&d, "GET", reset1, NULL, NULL), 400);
    ck_assert_int_eq(status_of(&d, "POST", reset1, CSRF_COOKIE,
                               "new_password1=" NEW_PASSWORD
                               "&new_password2=" NEW_PASSWORD "&" CSRF_FIELD),
                     400);

    /* a link sent before the password changed dies with the change */
    form_address(rcpt, addr, sizeof addr);
    snprintf(body, sizeof body, "email=%s&" CSRF_FIELD, addr);
    ck_assert_int_eq(
        status_of(&d, "POST", "/accounts/password/reset/", CSRF_COOKIE, body),
        200);
    mail_link(&d, rcpt, 2, "/accounts/password/reset/", reset2, sizeof reset2);
    ck_assert_str_ne(reset1, reset2);
    ck_assert_int_eq(status_of(&d, "GET", reset2, NULL, NULL), 200);
    snprintf(body, sizeof body,
             "old_password=%s&new_password1=%s&new_password2=%s&" CSRF_FIELD,
             TL_PASSWORD, "Changed-Otter-Nine-42", "Changed-Otter-Nine-42");
    char *res =
        demo_proc_http(&d, "POST", "/accounts/password/", cookies, body);
    ck_assert_msg(tl_raw_status(res) == 302 || tl_raw_status(res) == 200, "%s",
                  res);
    free(res);
    ck_assert_int_eq(status_of(&d, "GET", reset2, NULL, NULL), 400);
    ck_assert_int_eq(status_of(&d, "POST", reset2, CSRF_COOKIE,
                               "new_password1=" NEW_PASSWORD
                               "&new_password2=" NEW_PASSWORD "&" CSRF_FIELD),
                     400);
    /* the changed password is the one that works */
    char again[512];
    form_login(&d, user, "Changed-Otter-Nine-42", again, sizeof again);
    snprintf(body, sizeof body, "username=%s&password=%s&" CSRF_FIELD, user,
             NEW_PASSWORD);
    ck_assert_int_ne(
        status_of(&d, "POST", "/accounts/login/", CSRF_COOKIE, body), 302);
    demo_proc_stop(&d, true);
}

/* ---- 32 reset requests released at once ---- */

typedef struct burst_req {
    pthread_barrier_t *go;
    int port;
    char request[2048];
    int status;
    bool retry_after;
} burst_req;

static void *burst_one(void *arg)
{
    burst_req *r = arg;
    pthread_barrier_wait(r->go);
    char *res = tl_http_raw(r->port, r->request, 60000);
    r->status = res ? tl_raw_status(res) : -1;
    char *ra = res ? tl_raw_header(res, "Retry-After") : NULL;
    r->retry_after = ra && strtol(ra, NULL, 10) > 0;
    free(ra);
    free(res);
    return NULL;
}

/* POSTs the reset form for addresses[i] from client client[i] (sent as
 * X-Forwarded-For; the demo trusts loopback as its proxy), all at once;
 * the number answered 200, every other one having been a 429 with a
 * Retry-After. */
static int burst(const demo_proc *d, char addresses[BURST][96],
                 char clients[BURST][48])
{
    static burst_req r[BURST];
    pthread_t t[BURST];
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, BURST);
    for (int i = 0; i < BURST; i++) {
        char addr[128], body[256];
        form_address(addresses[i], addr, sizeof addr);
        snprintf(body, sizeof body, "email=%s&" CSRF_FIELD, addr);
        r[i] = (burst_req){.go = &go, .port = d->port};
        snprintf(r[i].request, sizeof r[i].request,
                 "POST /accounts/password/reset/ HTTP/1.1\r\n"
                 "Host: 127.0.0.1:%d\r\nConnection: close\r\n"
                 "X-Forwarded-For: %s\r\nCookie: " CSRF_COOKIE "\r\n"
                 "Content-Type: application/x-www-form-urlencoded\r\n"
                 "Content-Length: %zu\r\n\r\n%s",
                 d->port, clients[i], strlen(body), body);
        ck_assert_int_eq(pthread_create(&t[i], NULL, burst_one, &r[i]), 0);
    }
    int ok = 0;
    for (int i = 0; i < BURST; i++) {
        pthread_join(t[i], NULL);
        if (r[i].status == 200) {
            ok++;
            continue;
        }
        ck_assert_msg(r[i].status == 429, "request %d: status %d", i,
                      r[i].status);
        ck_assert_msg(r[i].retry_after, "request %d: a 429 without a wait", i);
    }
    pthread_barrier_destroy(&go);
    return ok;
}

static void limits_on(const char *server)
{
    char schema[64], user[64], rcpt[96];
    snprintf(schema, sizeof schema, "t_demo_email_limits_%s", server);
    snprintf(user, sizeof user, "limits_%s", server);
    snprintf(rcpt, sizeof rcpt, "limits-%s-%d@example.test", server,
             (int)getpid());
    demo_proc d;
    demo_start(&d, server, schema, NULL);
    verified_user(schema, user, rcpt);
    static char addresses[BURST][96], clients[BURST][48];

    /* one client, 32 addresses: 10 an hour */
    for (int i = 0; i < BURST; i++) {
        snprintf(addresses[i], sizeof addresses[i], "a%d-%s-%d@example.test", i,
                 server, (int)getpid());
        snprintf(clients[i], sizeof clients[i], "198.51.100.7");
    }
    ck_assert_int_eq(burst(&d, addresses, clients), 10);

    /* one address, 32 clients: 3 an hour, and 3 mails */
    for (int i = 0; i < BURST; i++) {
        snprintf(addresses[i], sizeof addresses[i], "%s", rcpt);
        snprintf(clients[i], sizeof clients[i], "203.0.113.%d", i + 1);
    }
    ck_assert_int_eq(burst(&d, addresses, clients), 3);
    ck_assert_int_eq(tl_scalar_in(schema, "SELECT count(*) FROM @.outbox"), 3);
    smtp_message *msgs = NULL;
    size_t n = smtp_wait_messages(smtp_fixture(), rcpt, 3, 30000, &msgs);
    smtp_messages_free(msgs, n);
    ck_assert_uint_eq(n, 3);
    /* nothing more on its way: every queued mail is out, and three came */
    long long deadline = tl_now_ms() + 30000;
    while (tl_scalar_in(schema, "SELECT count(*) FROM @.outbox"
                                " WHERE sent_at IS NULL") > 0 &&
           tl_now_ms() < deadline)
        usleep(50 * 1000);
    ck_assert_int_eq(
        tl_scalar_in(schema, "SELECT count(*) FROM @.outbox WHERE sent_at IS"
                             " NULL"),
        0);
    n = smtp_messages(smtp_fixture(), rcpt, &msgs);
    smtp_messages_free(msgs, n);
    ck_assert_uint_eq(n, 3);
    demo_proc_stop(&d, true);
}

/* Two demos on one schema, sharing its outbox, and a mail server of their
 * own that goes away while resets are asked of both: every page answers
 * (its time printed), nothing is sent, and once the server is back every
 * mail arrives, once. */
#define OUTAGE_USERS 8
static void outage_on(const char *server)
{
    char schema[64], name[64], user[64];
    snprintf(schema, sizeof schema, "t_demo_email_outage_%s", server);
    snprintf(name, sizeof name, "outage-%s", server);
    smtp_server *srv = smtp_private_start(name);
    ck_assert_ptr_nonnull(srv);
    const char *url = smtp_server_env(srv, "SMTP_URL");
    ck_assert_ptr_nonnull(url);
    const char *mail[] = {
        "--smtp-url", url,           "--smtp-starttls",
        "off",        "--mail-from", "Demo <noreply@example.test>",
        NULL};
    demo_proc d[2];
    demo_proc_start_on(&d[0], server, schema, mail);
    /* the second joins the first's schema as it is */
    char port[16];
    snprintf(port, sizeof port, "%d", demo_proc_free_port());
    const char *args[] = {"--server",
                          server,
                          "--port",
                          port,
                          "--db",
                          tl_conninfo(),
                          "--schema",
                          schema,
                          "--db-timeout-ms",
                          "30000",
                          "--smtp-url",
                          url,
                          "--smtp-starttls",
                          "off",
                          "--mail-from",
                          "Demo <noreply@example.test>",
                          NULL};
    demo_proc_start(&d[1], args);
    char rcpt[OUTAGE_USERS][96];
    for (int i = 0; i < OUTAGE_USERS; i++) {
        snprintf(user, sizeof user, "outage%d_%s", i, server);
        snprintf(rcpt[i], sizeof rcpt[i], "outage%d-%s@example.test", i,
                 server);
        verified_user(schema, user, rcpt[i]);
    }

    ck_assert(smtp_server_stop(srv));
    long long slowest = 0;
    for (int i = 0; i < OUTAGE_USERS; i++) {
        char addr[128], body[256];
        form_address(rcpt[i], addr, sizeof addr);
        snprintf(body, sizeof body, "email=%s&" CSRF_FIELD, addr);
        long long t0 = tl_now_ms();
        ck_assert_int_eq(status_of(&d[i % 2], "POST",
                                   "/accounts/password/reset/", CSRF_COOKIE,
                                   body),
                         200);
        long long took = tl_now_ms() - t0;
        slowest = took > slowest ? took : slowest;
    }
    printf("%s: %d reset pages with the mail server down, slowest %lld ms\n",
           server, OUTAGE_USERS, slowest);
    /* both senders try and keep every mail */
    long long deadline = tl_now_ms() + 60000;
    while (tl_scalar_in(schema, "SELECT count(*) FROM @.outbox"
                                " WHERE attempts > 0") < OUTAGE_USERS &&
           tl_now_ms() < deadline)
        usleep(100 * 1000);
    ck_assert_int_eq(tl_scalar_in(schema, "SELECT count(*) FROM @.outbox"
                                          " WHERE sent_at IS NULL AND"
                                          " failed_at IS NULL"),
                     OUTAGE_USERS);
    smtp_message *got = NULL;
    ck_assert_uint_eq(smtp_messages(srv, NULL, &got), 0);

    /* back: the backoff is cut short so the test need not sit it out */
    ck_assert(smtp_server_resume(srv));
    tl_exec_in(schema, "UPDATE @.outbox SET next_attempt_at = now()"
                       " WHERE sent_at IS NULL");
    size_t n = smtp_wait_messages(srv, NULL, OUTAGE_USERS, 60000, &got);
    smtp_messages_free(got, n);
    ck_assert_uint_eq(n, OUTAGE_USERS);
    deadline = tl_now_ms() + 30000;
    while (tl_scalar_in(schema, "SELECT count(*) FROM @.outbox"
                                " WHERE sent_at IS NULL") > 0 &&
           tl_now_ms() < deadline)
        usleep(50 * 1000);
    demo_proc_stop(&d[0], true);
    demo_proc_stop(&d[1], true);
    /* with both senders stopped, what arrived is final: one each */
    for (int i = 0; i < OUTAGE_USERS; i++) {
        n = smtp_messages(srv, rcpt[i], &got);
        smtp_messages_free(got, n);
        ck_assert_msg(n == 1, "%s got %zu mails", rcpt[i], n);
    }
    ck_assert_int_eq(tl_scalar_in(schema, "SELECT count(*) FROM @.outbox"
                                          " WHERE sent_at IS NOT NULL"),
                     OUTAGE_USERS);
    smtp_private_free(srv);
}

typedef void (*per_server_fn)(const char *server);

static void each_server(per_server_fn fn)
{
    const char *list = getenv("DEMO_EMAIL_SERVERS");
    char servers[128];
    snprintf(servers, sizeof servers, "%s", list && *list ? list : "mhd");
    int done = 0;
    for (char *save, *s = strtok_r(servers, ",", &save); s;
         s = strtok_r(NULL, ",", &save)) {
        fn(s);
        done++;
    }
    ck_assert_int_gt(done, 0);
}

START_TEST(signup_with_address_on_each_server)
{
    each_server(signup_on);
}
END_TEST

START_TEST(dead_links_on_each_server)
{
    each_server(links_on);
}
END_TEST

START_TEST(reset_limits_on_each_server)
{
    each_server(limits_on);
}
END_TEST

START_TEST(outage_on_each_server)
{
    each_server(outage_on);
}
END_TEST

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    Suite *s = suite_create("demo_email_links");
    TCase *t = tcase_create("demo");
    tcase_set_timeout(t, 240);
    tcase_add_test(t, signup_with_address_on_each_server);
    tcase_add_test(t, dead_links_on_each_server);
    tcase_add_test(t, reset_limits_on_each_server);
    tcase_add_test(t, outage_on_each_server);
    suite_add_tcase(s, t);
    return tl_run(s);
}

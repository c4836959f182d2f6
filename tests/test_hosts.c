/* trusted_proxies and allowed_hosts over the in-process adapter and the
 * real database: which address is the client behind proxies, which Host
 * headers reach a handler, what redirect targets and CSRF origins are
 * judged against, and Secure cookies over HTTPS. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "core/core.h"
#include "testlib.h"

#define SCHEMA "t_hosts"

static void setup(void)
{
    tl_drop_schema(SCHEMA);
}

static guest_ctx *ctx_with(const char *allowed_hosts,
                           const char *trusted_proxies)
{
    guest_config c;
    tl_config(&c, SCHEMA);
    c.password_iterations = 1000;
    c.allowed_hosts = allowed_hosts;
    c.trusted_proxies = trusted_proxies;
    return tl_ctx_new(&c);
}

/* guest_ctx_new's status and message for one setting. */
static guest_status try_config(const char *allowed_hosts,
                               const char *trusted_proxies, guest_error *err)
{
    guest_config c;
    tl_config(&c, SCHEMA);
    c.allowed_hosts = allowed_hosts;
    c.trusted_proxies = trusted_proxies;
    guest_ctx *ctx = NULL;
    memset(err, 0, sizeof *err);
    guest_status st = guest_ctx_new(&c, &ctx, err);
    guest_ctx_free(ctx);
    return st;
}

/* ---- configuration ---- */

START_TEST(trusted_proxies_are_validated_at_start)
{
    static const char *const bad[] = {
        "10.0.0.1/8", /* host bits set */
        "10.0.0.0/33",   "::1/129",      "10.0.0.0/",
        "10.0.0.0/-1",   "10.0.0.0/8/8", "example.com",
        "127.0.0.1/32,", ",::1",         "10.0.0.0/8 10.1.0.0/16",
        "fe80::1%eth0",  "[::1]",        "1.2.3",
        "010.0.0.0/8",   "10.0.0.0/0008"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        guest_error err;
        guest_status st = try_config(NULL, bad[i], &err);
        ck_assert_msg(st == GUEST_ERR_CONFIG, "\"%s\": %s", bad[i],
                      guest_status_name(st));
        ck_assert_msg(strstr(err.message, "trusted_proxies"), "%s",
                      err.message);
    }
    static const char *const good[] = {"127.0.0.1/32, 10.0.0.0/8,::1/128",
                                       "192.0.2.7",
                                       "2001:db8::/32",
                                       "0.0.0.0/0",
                                       "::/0",
                                       "",
                                       "  ",
                                       "::ffff:10.0.0.0/104"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        guest_error err;
        guest_status st = try_config(NULL, good[i], &err);
        ck_assert_msg(st == GUEST_OK, "\"%s\": %s %s", good[i],
                      guest_status_name(st), err.message);
    }
}
END_TEST

START_TEST(allowed_hosts_are_validated_at_start)
{
    static const char *const bad[] = {"",
                                      "example.com:8080",
                                      "exa mple.com",
                                      "example.com,,example.org",
                                      "example.com,",
                                      "[::1",
                                      ".[::1]",
                                      "[::g]",
                                      "ex_ample.com",
                                      "http://example.com",
                                      "*.example.com",
                                      "."};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        guest_error err;
        guest_status st = try_config(bad[i], NULL, &err);
        ck_assert_msg(st == GUEST_ERR_CONFIG, "\"%s\": %s", bad[i],
                      guest_status_name(st));
        ck_assert_msg(strstr(err.message, "allowed_hosts"), "%s", err.message);
    }
    guest_error err;
    guest_status st =
        try_config("example.com, .Example.ORG,*,[::1],::2,127.0.0.1,localhost.",
                   NULL, &err);
    ck_assert_msg(st == GUEST_OK, "%s", err.message);
}
END_TEST

/* ---- the client address ---- */

typedef struct seen {
    char client[64];
    char peer[64];
    bool has_ip;
    unsigned char ip[16];
    int family;
} seen;

static void addr_handler(guest_req *req, void *userdata)
{
    seen *s = userdata;
    const char *c = guest_req_client_addr(req);
    const char *p = guest_req_peer_addr(req);
    snprintf(s->client, sizeof s->client, "%s", c ? c : "(null)");
    snprintf(s->peer, sizeof s->peer, "%s", p ? p : "(null)");
    /* decided once: the same pointer every time */
    ck_assert_ptr_eq(guest_req_client_addr(req), c);
    s->family = 0;
    s->has_ip = guest__req_client_ip(req, s->ip, &s->family);
}

static seen through(guest_ctx *ctx, const char *peer, const char *xff)
{
    seen s;
    memset(&s, 0, sizeof s);
    tl_http h;
    tl_http_init(&h, "GET", "/");
    h.peer = peer;
    if (xff)
        tl_http_add(&h, "X-Forwarded-For", xff);
    tl_http_run(ctx, &h, addr_handler, &s);
    ck_assert_int_eq(h.status, 200);
    tl_http_free(&h);
    return s;
}

static void client_is(guest_ctx *ctx, const char *peer, const char *xff,
                      const char *want)
{
    seen s = through(ctx, peer, xff);
    ck_assert_msg(!strcmp(s.client, want),
                  "peer %s, X-Forwarded-For \"%s\": "
                  "want %s, got %s",
                  peer ? peer : "default", xff ? xff : "(none)", want,
                  s.client);
    ck_assert_str_eq(s.peer, peer ? peer : "127.0.0.1");
}

START_TEST(spoofed_forwarded_for_from_an_untrusted_peer_changes_nothing)
{
    /* no trusted proxies at all */
    guest_ctx *ctx = ctx_with(NULL, NULL);
    client_is(ctx, NULL, NULL, "127.0.0.1");
    client_is(ctx, NULL, "6.6.6.6", "127.0.0.1");
    client_is(ctx, NULL, "6.6.6.6, 127.0.0.1", "127.0.0.1");
    client_is(ctx, "2001:db8::7", "6.6.6.6", "2001:db8::7");
    /* a dual-stack socket's IPv4 peer reads as IPv4 */
    client_is(ctx, "::ffff:192.0.2.9", "6.6.6.6", "192.0.2.9");
    guest_ctx_free(ctx);

    /* trusted proxies, but this peer is not one */
    ctx = ctx_with(NULL, "10.0.0.0/8,::1/128");
    client_is(ctx, NULL, "10.0.0.1", "127.0.0.1");
    client_is(ctx, "192.0.2.50", "203.0.113.9, 10.0.0.2", "192.0.2.50");
    client_is(ctx, "2001:db8::1", "203.0.113.9", "2001:db8::1");
    seen s = through(ctx, "192.0.2.50", "203.0.113.9");
    ck_assert(s.has_ip);
    ck_assert_int_eq(s.family, AF_INET);
    static const unsigned char want[16] = {0, 0, 0,    0,    0,   0, 0, 0,
                                           0, 0, 0xff, 0xff, 192, 0, 2, 50};
    ck_assert_mem_eq(s.ip, want, 16);
    /* an adapter whose peer is no IP address: its text, no binary form */
    s = through(ctx, "unix:/run/app.sock", "203.0.113.9");
    ck_assert_str_eq(s.client, "unix:/run/app.sock");
    ck_assert(!s.has_ip);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(trusted_proxies_hand_over_the_right_hop)
{
    guest_ctx *ctx = ctx_with(NULL, "127.0.0.1/32,10.0.0.0/8,::1/128");
    /* one proxy */
    client_is(ctx, NULL, "203.0.113.9", "203.0.113.9");
    client_is(ctx, NULL, " 203.0.113.9 ", "203.0.113.9");
    /* a client's own spoofed entries stay to the left of what it is */
    client_is(ctx, NULL, "6.6.6.6, 203.0.113.9", "203.0.113.9");
    /* trusted hops are skipped, right to left */
    client_is(ctx, NULL, "6.6.6.6, 203.0.113.9, 10.1.2.3, 10.0.0.4",
              "203.0.113.9");
    /* all trusted: the leftmost */
    client_is(ctx, NULL, "10.0.0.5,10.0.0.6", "10.0.0.5");
    /* no or an empty header: the proxy itself */
    client_is(ctx, NULL, NULL, "127.0.0.1");
    client_is(ctx, NULL, "", "127.0.0.1");
    /* IPv6: peer, hops, brackets and ports */
    client_is(ctx, "::1", "2001:db8::1", "2001:db8::1");
    client_is(ctx, "::1", "2001:DB8:0:0::2, ::1", "2001:db8::2");
    client_is(ctx, NULL, "[2001:db8::3]:4711, 10.0.0.1", "2001:db8::3");
    client_is(ctx, NULL, "198.51.100.4:8080", "198.51.100.4");
    client_is(ctx, NULL, "::ffff:198.51.100.5", "198.51.100.5");
    client_is(ctx, "::ffff:127.0.0.1", "198.51.100.6", "198.51.100.6");
    seen s = through(ctx, "::1", "2001:db8::1");
    ck_assert(s.has_ip);
    ck_assert_int_eq(s.family, AF_INET6);
    static const unsigned char v6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
                                         0,    0,    0,    0,    0, 0, 0, 1};
    ck_assert_mem_eq(s.ip, v6, 16);
    /* malformed entries: the walk stops at the last good hop */
    client_is(ctx, NULL, "6.6.6.6, garbage, 10.0.0.7", "10.0.0.7");
    client_is(ctx, NULL, "203.0.113.9,", "127.0.0.1");
    client_is(ctx, NULL, "203.0.113.9,,10.0.0.8", "10.0.0.8");
    client_is(ctx, NULL, "unknown", "127.0.0.1");
    client_is(ctx, NULL, "6.6.6.6, 999.1.1.1", "127.0.0.1");
    client_is(ctx, NULL, "1.2.3.4 5.6.7.8", "127.0.0.1");
    client_is(ctx, NULL, "1.2.3.4:99999", "127.0.0.1");
    client_is(ctx, NULL, "[1.2.3.4]", "127.0.0.1");
    client_is(ctx, NULL, "[2001:db8::1", "127.0.0.1");
    client_is(ctx, NULL, "2001:db8::1]:80", "127.0.0.1");
    /* an untrusted hop behind garbage is still the client */
    client_is(ctx, NULL, "garbage, 203.0.113.10", "203.0.113.10");
    guest_ctx_free(ctx);
}
END_TEST

/* ---- allowed hosts ---- */

static void count_handler(guest_req *req, void *userdata)
{
    (*(int *)userdata)++;
    guest_res_send(req, 200, "text/plain", "ok");
}

/* Runs a request with Host @p host (NULL: none) and says whether the
 * handler ran; a refusal must be the adapters' 400 and nothing else. */
static bool host_passes(guest_ctx *ctx, const char *host)
{
    int runs = 0;
    tl_http h;
    tl_http_init(&h, "GET", "/");
    if (host)
        tl_http_add(&h, "Host", host);
    tl_http_run(ctx, &h, count_handler, &runs);
    if (runs) {
        ck_assert_int_eq(h.status, 200);
    } else {
        ck_assert_int_eq(h.status, 400);
        ck_assert_str_eq(h.res_body, "Bad Request (invalid Host header)\n");
        ck_assert_int_eq(h.nres_headers, 0);
    }
    tl_http_free(&h);
    return runs == 1;
}

START_TEST(only_allowed_hosts_reach_a_handler)
{
    guest_ctx *ctx =
        ctx_with("example.com, .example.org,[::1],192.0.2.1", NULL);
    static const char *const yes[] = {"example.com",         "EXAMPLE.com",
                                      "example.com:8080",    "example.com.",
                                      "example.org",         "www.example.org",
                                      "a.b.example.org:443", "[::1]",
                                      "[::1]:8080",          "[0:0::1]",
                                      "192.0.2.1",           "192.0.2.1:80"};
    static const char *const no[] = {"www.example.com",
                                     "badexample.org",
                                     "example.org.evil.example",
                                     "evil.example",
                                     "",
                                     "example.com:",
                                     "example.com:80x",
                                     "[::2]",
                                     "[::1",
                                     "::1",
                                     "example.com@evil.example",
                                     "example.com/x",
                                     "exa mple.com",
                                     "example.com:8080:1",
                                     "192.0.2.10",
                                     "example..com"};
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++)
        ck_assert_msg(host_passes(ctx, yes[i]), "refused \"%s\"", yes[i]);
    for (size_t i = 0; i < sizeof no / sizeof *no; i++)
        ck_assert_msg(!host_passes(ctx, no[i]), "let \"%s\" in", no[i]);
    ck_assert(!host_passes(ctx, NULL));
    guest_ctx_free(ctx);

    /* "*": any well-formed name, still no missing or malformed Host */
    ctx = ctx_with("*", NULL);
    ck_assert(host_passes(ctx, "evil.example"));
    ck_assert(host_passes(ctx, "[2001:db8::1]:81"));
    ck_assert(!host_passes(ctx, "evil example"));
    ck_assert(!host_passes(ctx, NULL));
    guest_ctx_free(ctx);

    /* unset: every Host, or none, as before */
    ctx = ctx_with(NULL, NULL);
    ck_assert(host_passes(ctx, "evil example"));
    ck_assert(host_passes(ctx, NULL));
    guest_ctx_free(ctx);
}
END_TEST

/* A login POST for user "reg" with @p next, under Host @p host. */
static void login_with_next(guest_ctx *ctx, tl_http *h, const char *host,
                            const char *next)
{
    char body[512];
    snprintf(body, sizeof body,
             "username=reg&password=" TL_PASSWORD
             "&csrfmiddlewaretoken=" TL_CSRF "&next=%s",
             next);
    tl_http_init(h, "POST", "/accounts/login/");
    tl_http_add(h, "Host", host);
    tl_http_add(h, "Cookie", "csrftoken=" TL_CSRF);
    tl_http_add(h, "Content-Type", "application/x-www-form-urlencoded");
    h->body = body;
    tl_http_run(ctx, h, guest_login_view, NULL);
    h->body = NULL;
}

static const char *location(const tl_http *h)
{
    const char *l = tl_http_res_header(h, "Location");
    return l ? l : "(none)";
}

START_TEST(absolute_next_is_judged_against_allowed_hosts)
{
    const char *phish = "http%3A%2F%2Fevil.example%2Fphish";
    /* Without allowed_hosts the Host header is believed: the attack. */
    guest_ctx *ctx = ctx_with(NULL, NULL);
    tl_new_user(ctx, "reg", TL_PASSWORD);
    tl_http h;
    login_with_next(ctx, &h, "evil.example", phish);
    ck_assert_int_eq(h.status, 302);
    ck_assert_str_eq(location(&h), "http://evil.example/phish");
    tl_http_free(&h);
    guest_ctx_free(ctx);

    ctx = ctx_with("testserver", NULL);
    long long sessions =
        tl_scalar_in(SCHEMA, "SELECT count(*) FROM @.sessions");
    login_with_next(ctx, &h, "evil.example", phish);
    ck_assert_int_eq(h.status, 400);
    ck_assert_ptr_null(tl_http_res_header(&h, "Location"));
    ck_assert_ptr_null(tl_http_res_header(&h, "Set-Cookie"));
    tl_http_free(&h);
    ck_assert_int_eq(tl_scalar_in(SCHEMA, "SELECT count(*) FROM @.sessions"),
                     sessions);
    /* on the real host the phishing target falls back to the default */
    login_with_next(ctx, &h, "testserver", phish);
    ck_assert_int_eq(h.status, 302);
    ck_assert_str_eq(location(&h), "/accounts/profile/");
    tl_http_free(&h);
    /* while an absolute URL on the request's own host is followed */
    login_with_next(ctx, &h, "testserver:8000",
                    "http%3A%2F%2Ftestserver%3A8000%2Fhome%2F");
    ck_assert_int_eq(h.status, 302);
    ck_assert_str_eq(location(&h), "http://testserver:8000/home/");
    tl_http_free(&h);
    guest_ctx_free(ctx);

    /* "*" lets any name in and, as with Django, the request's Host is then
     * believed: only named hosts protect redirects. */
    ctx = ctx_with("*", NULL);
    login_with_next(ctx, &h, "evil.example", phish);
    ck_assert_int_eq(h.status, 302);
    ck_assert_str_eq(location(&h), "http://evil.example/phish");
    tl_http_free(&h);
    guest_ctx_free(ctx);
}
END_TEST

/* A request made without guest_req_new, as a careless custom adapter
 * might: the helpers still judge by allowed_hosts, not by its Host. */
static const char *raw_header(void *c, const char *name)
{
    tl_http *h = c;
    for (int i = 0; i < h->nreq_headers; i++)
        if (!strcasecmp(h->req_headers[i][0], name))
            return h->req_headers[i][1];
    return NULL;
}
static const char *raw_method(void *c)
{
    return ((tl_http *)c)->method;
}
static const char *raw_target(void *c)
{
    return ((tl_http *)c)->target;
}
static int raw_status(void *c, int s)
{
    ((tl_http *)c)->status = s;
    return 0;
}
static int raw_add_header(void *c, const char *n, const char *v)
{
    (void)c;
    (void)n;
    (void)v;
    return 0;
}
static int raw_write(void *c, const void *d, size_t n)
{
    (void)c;
    (void)d;
    (void)n;
    return 0;
}
static const guest_http_ops raw_ops = {
    GUEST_HTTP_OPS_INIT,      .header = raw_header,
    .method = raw_method,     .target = raw_target,
    .set_status = raw_status, .add_header = raw_add_header,
    .write = raw_write,
};

START_TEST(helpers_judge_by_allowed_hosts_even_without_the_gate)
{
    guest_ctx *ctx = ctx_with("testserver", NULL);
    tl_http h;
    tl_http_init(&h, "GET",
                 "/accounts/login/?next=http%3A%2F%2Fevil.example%2Fphish");
    tl_http_add(&h, "Host", "evil.example");
    tl_http_add(&h, "Origin", "http://evil.example");
    tl_http_add(&h, "Cookie", "csrftoken=" TL_CSRF);
    guest_req *req = calloc(1, sizeof *req);
    ck_assert_ptr_nonnull(req);
    req->ctx = ctx;
    req->ops = &raw_ops;
    req->conn = &h;
    char unset = 'x';
    char *next = &unset;
    ck_assert_int_eq(guest_req_safe_next(req, NULL, &next), GUEST_OK);
    ck_assert_ptr_null(next);
    guest_error err;
    ck_assert_int_eq(guest_csrf_check(req, TL_CSRF, &err), GUEST_ERR_CSRF);
    ck_assert_ptr_nonnull(strstr(err.message, "Origin checking failed"));
    guest_req_free(req);
    guest_ctx_free(ctx);
}
END_TEST

/* ---- CSRF origins ---- */

typedef struct csrf_seen {
    guest_status st;
    guest_error err;
} csrf_seen;

static void csrf_handler(guest_req *req, void *userdata)
{
    csrf_seen *c = userdata;
    c->st = guest_csrf_check(req, TL_CSRF, &c->err);
}

static guest_status csrf_for(guest_ctx *ctx, const char *host,
                             const char *origin, const char *referer,
                             bool https)
{
    csrf_seen c = {GUEST_ERR_INVALID, {0}};
    tl_http h;
    tl_http_init(&h, "POST", "/form/");
    tl_http_add(&h, "Host", host);
    tl_http_add(&h, "Cookie", "csrftoken=" TL_CSRF);
    if (origin)
        tl_http_add(&h, "Origin", origin);
    if (referer)
        tl_http_add(&h, "Referer", referer);
    h.https = https;
    tl_http_run(ctx, &h, csrf_handler, &c);
    if (h.status == 400)
        c.st = GUEST_ERR_BAD_HOST;
    tl_http_free(&h);
    return c.st;
}

START_TEST(csrf_origins_are_judged_against_allowed_hosts)
{
    guest_ctx *ctx = ctx_with("testserver,.example.com", NULL);
    ck_assert_int_eq(
        csrf_for(ctx, "testserver", "http://testserver", NULL, false),
        GUEST_OK);
    ck_assert_int_eq(
        csrf_for(ctx, "www.example.com", "http://www.example.com", NULL, false),
        GUEST_OK);
    ck_assert_int_eq(csrf_for(ctx, "www.example.com:8443",
                              "https://www.example.com:8443", NULL, true),
                     GUEST_OK);
    ck_assert_int_eq(
        csrf_for(ctx, "testserver", NULL, "https://testserver/form/", true),
        GUEST_OK);
    /* another allowed host is still another origin, as with Django */
    ck_assert_int_eq(
        csrf_for(ctx, "www.example.com", "http://example.com", NULL, false),
        GUEST_ERR_CSRF);
    ck_assert_int_eq(
        csrf_for(ctx, "testserver", "http://evil.example", NULL, false),
        GUEST_ERR_CSRF);
    ck_assert_int_eq(
        csrf_for(ctx, "testserver", NULL, "https://evil.example/form/", true),
        GUEST_ERR_CSRF);
    /* a foreign Host matching its own Origin never gets that far */
    ck_assert_int_eq(
        csrf_for(ctx, "evil.example", "http://evil.example", NULL, false),
        GUEST_ERR_BAD_HOST);
    guest_ctx_free(ctx);
}
END_TEST

/* ---- Secure follows the connection ---- */

static void cookies_handler(guest_req *req, void *userdata)
{
    tl_created *made = userdata;
    const char *token;
    ck_assert_int_eq(guest_csrf_token(req, &token), GUEST_OK);
    tl_create_handler(req, made);
}

/* Whether every Set-Cookie of a new guest's response has Secure; asserts
 * that all agree. */
static bool cookies_secure(guest_ctx *ctx, bool https, const char *proto)
{
    tl_created made = {0};
    tl_http h;
    tl_http_init(&h, "GET", "/");
    h.https = https;
    if (proto)
        tl_http_add(&h, "X-Forwarded-Proto", proto);
    tl_http_run(ctx, &h, cookies_handler, &made);
    ck_assert_int_eq(made.st, GUEST_OK);
    int cookies = 0, secure = 0;
    for (int i = 0; i < h.nres_headers; i++) {
        if (strcasecmp(h.res_headers[i][0], "Set-Cookie"))
            continue;
        cookies++;
        secure += strstr(h.res_headers[i][1], "; Secure") != NULL;
    }
    tl_http_free(&h);
    ck_assert_int_eq(cookies, 2); /* csrftoken and sessionid */
    ck_assert_msg(secure == 0 || secure == cookies, "%d of %d Secure", secure,
                  cookies);
    return secure == cookies;
}

START_TEST(cookies_are_secure_over_https_without_cookie_secure)
{
    guest_config c;
    tl_config(&c, SCHEMA);
    ck_assert(!c.cookie_secure);
    guest_ctx *ctx = tl_ctx_new(&c);
    ck_assert(cookies_secure(ctx, true, NULL));
    ck_assert(!cookies_secure(ctx, false, NULL));
    /* the proxy header counts only when configured */
    ck_assert(!cookies_secure(ctx, false, "https"));
    guest_ctx_free(ctx);

    c.secure_proxy_header = "X-Forwarded-Proto";
    ctx = tl_ctx_new(&c);
    ck_assert(cookies_secure(ctx, false, "https"));
    ck_assert(!cookies_secure(ctx, false, "http"));
    guest_ctx_free(ctx);

    /* cookie_secure still means always */
    c.secure_proxy_header = NULL;
    c.cookie_secure = true;
    ctx = tl_ctx_new(&c);
    ck_assert(cookies_secure(ctx, false, NULL));
    guest_ctx_free(ctx);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("hosts");
    TCase *tc = tcase_create("hosts");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, trusted_proxies_are_validated_at_start);
    tcase_add_test(tc, allowed_hosts_are_validated_at_start);
    tcase_add_test(
        tc, spoofed_forwarded_for_from_an_untrusted_peer_changes_nothing);
    tcase_add_test(tc, trusted_proxies_hand_over_the_right_hop);
    tcase_add_test(tc, only_allowed_hosts_reach_a_handler);
    tcase_add_test(tc, absolute_next_is_judged_against_allowed_hosts);
    tcase_add_test(tc, helpers_judge_by_allowed_hosts_even_without_the_gate);
    tcase_add_test(tc, csrf_origins_are_judged_against_allowed_hosts);
    tcase_add_test(tc, cookies_are_secure_over_https_without_cookie_secure);
    suite_add_tcase(s, tc);
    return tl_run(s);
}

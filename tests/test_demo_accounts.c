/* The demo's account routes through its own route table, as a visitor goes
 * through them, its account flags and its server flags. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "demo_testlib.h"
#include "routes.h"

#define SCHEMA "t_demo_accounts"

static void setup(void)
{
    tl_drop_schema(SCHEMA);
}

START_TEST(a_visitor_signs_up_logs_out_and_in)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, NULL);
    tl_http h;
    /* anonymous: the home page offers to start */
    dt_get(ctx, &h, "/", NULL);
    ck_assert_int_eq(h.status, 200);
    ck_assert_ptr_nonnull(strstr(h.res_body, "href=\"/allow_guest_user/\""));
    ck_assert(!tl_http_cookie(&h, "sessionid", (char[128]){0}, 128));
    tl_http_free(&h);
    dt_get(ctx, &h, "/accounts/profile/", NULL);
    ck_assert_int_eq(h.status, 302);
    ck_assert_str_eq(tl_http_res_header(&h, "Location"),
                     "/accounts/login/?next=/accounts/profile/");
    tl_http_free(&h);

    /* a guest: the sign-up link */
    char session[128], cookie[300];
    dt_get(ctx, &h, "/allow_guest_user/", NULL);
    ck_assert(tl_http_cookie(&h, "sessionid", session, sizeof session));
    tl_http_free(&h);
    tl_cookie_header(cookie, sizeof cookie, session, true);
    dt_get(ctx, &h, "/", cookie);
    ck_assert_ptr_nonnull(strstr(h.res_body, "<a href=\"/convert/\">Sign up "
                                             "and save your work!</a>"));
    tl_http_free(&h);
    dt_get(ctx, &h, "/accounts/profile/", cookie);
    ck_assert_int_eq(h.status, 302);
    ck_assert_str_eq(tl_http_res_header(&h, "Location"),
                     "/convert/?next=/accounts/profile/");
    tl_http_free(&h);

    /* sign up, back to the profile */
    dt_post(ctx, &h, "/convert/", cookie,
            "username=demo_user&password1=" TL_PASSWORD
            "&password2=" TL_PASSWORD
            "&next=%2Faccounts%2Fprofile%2F&csrfmiddlewaretoken=" TL_CSRF);
    ck_assert_int_eq(h.status, 302);
    ck_assert_str_eq(tl_http_res_header(&h, "Location"), "/accounts/profile/");
    ck_assert(tl_http_cookie(&h, "sessionid", session, sizeof session));
    tl_http_free(&h);
    tl_cookie_header(cookie, sizeof cookie, session, true);
    dt_get(ctx, &h, "/accounts/profile/", cookie);
    ck_assert_int_eq(h.status, 200);
    ck_assert_ptr_nonnull(strstr(h.res_body, "demo_user"));
    tl_http_free(&h);
    dt_get(ctx, &h, "/", cookie);
    ck_assert_ptr_nonnull(strstr(h.res_body, "<strong>demo_user</strong>"));
    ck_assert_ptr_nonnull(strstr(h.res_body, "action=\"/accounts/logout/\""));
    ck_assert_ptr_nonnull(strstr(h.res_body, "name=\"csrfmiddlewaretoken\""));
    tl_http_free(&h);

    /* log out (POST only), then log in again */
    dt_get(ctx, &h, "/accounts/logout/", cookie);
    ck_assert_int_eq(h.status, 405);
    tl_http_free(&h);
    dt_post(ctx, &h, "/accounts/logout/", cookie,
            "csrfmiddlewaretoken=" TL_CSRF);
    ck_assert_int_eq(h.status, 302);
    ck_assert_str_eq(tl_http_res_header(&h, "Location"), "/");
    tl_http_free(&h);
    ck_assert_int_eq(tl_whoami(ctx, session, NULL), 0);
    dt_post(ctx, &h, "/accounts/login/", "csrftoken=" TL_CSRF,
            "username=demo_user&password=" TL_PASSWORD
            "&csrfmiddlewaretoken=" TL_CSRF);
    ck_assert_int_eq(h.status, 302);
    ck_assert_str_eq(tl_http_res_header(&h, "Location"), "/accounts/profile/");
    tl_http_free(&h);
    dt_get(ctx, &h, "/convert/success/", NULL);
    ck_assert_int_eq(h.status, 200);
    tl_http_free(&h);
    guest_ctx_free(ctx);
}
END_TEST

static void three_days(guest_config *c)
{
    c->max_age = 3 * 86400;
}

START_TEST(guest_expiry_and_password_page)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, NULL);
    tl_http h;
    /* a guest is told when the account expires, on the demo's pages and
     * the library's pages in its frame */
    char session[128], cookie[300];
    dt_get(ctx, &h, "/allow_guest_user/", NULL);
    ck_assert(tl_http_cookie(&h, "sessionid", session, sizeof session));
    tl_http_free(&h);
    tl_cookie_header(cookie, sizeof cookie, session, true);
    const char *pages[] = {"/", "/convert/"};
    for (size_t i = 0; i < 2; i++) {
        dt_get(ctx, &h, pages[i], cookie);
        ck_assert_int_eq(h.status, 200);
        ck_assert_msg(strstr(h.res_body, "Your guest account expires in 14 "
                                         "days unless you sign up."),
                      "%s", pages[i]);
        tl_http_free(&h);
    }
    /* the password page: registered users only */
    dt_get(ctx, &h, "/accounts/password/", cookie);
    ck_assert_int_eq(h.status, 302);
    ck_assert_str_eq(tl_http_res_header(&h, "Location"),
                     "/convert/?next=/accounts/password/");
    tl_http_free(&h);
    dt_get(ctx, &h, "/accounts/password/", NULL);
    ck_assert_int_eq(h.status, 302);
    ck_assert_str_eq(tl_http_res_header(&h, "Location"),
                     "/accounts/login/?next=/accounts/password/");
    tl_http_free(&h);

    /* signed up: no expiry; the profile links to the password page */
    dt_post(ctx, &h, "/convert/", cookie,
            "username=demo_user&password1=" TL_PASSWORD
            "&password2=" TL_PASSWORD "&csrfmiddlewaretoken=" TL_CSRF);
    ck_assert_int_eq(h.status, 302);
    ck_assert(tl_http_cookie(&h, "sessionid", session, sizeof session));
    tl_http_free(&h);
    tl_cookie_header(cookie, sizeof cookie, session, true);
    dt_get(ctx, &h, "/accounts/profile/", cookie);
    ck_assert_ptr_nonnull(strstr(h.res_body, "href=\"/accounts/password/\""));
    ck_assert_ptr_null(strstr(h.res_body, "guest-expiry"));
    tl_http_free(&h);
    dt_get(ctx, &h, "/accounts/password/", cookie);
    ck_assert_int_eq(h.status, 200);
    ck_assert_ptr_nonnull(strstr(h.res_body, "libguestuser demo"));
    ck_assert_ptr_nonnull(strstr(h.res_body, "name=\"old_password\""));
    tl_http_free(&h);
    dt_post(ctx, &h, "/accounts/password/", cookie,
            "old_password=" TL_PASSWORD "&new_password1=Brand-New-Horse-77"
            "&new_password2=Brand-New-Horse-77&csrfmiddlewaretoken=" TL_CSRF);
    ck_assert_int_eq(h.status, 200);
    ck_assert_ptr_nonnull(strstr(h.res_body, "Password change successful"));
    char renewed[128];
    ck_assert(tl_http_cookie(&h, "sessionid", renewed, sizeof renewed));
    tl_http_free(&h);
    ck_assert_int_eq(tl_whoami(ctx, session, NULL), 0);
    ck_assert_int_gt(tl_whoami(ctx, renewed, NULL), 0);
    guest_ctx_free(ctx);

    /* the days follow max_age */
    ctx = tl_ctx(SCHEMA, three_days);
    dt_get(ctx, &h, "/allow_guest_user/", NULL);
    ck_assert(tl_http_cookie(&h, "sessionid", session, sizeof session));
    tl_http_free(&h);
    dt_get(ctx, &h, "/", session);
    ck_assert_ptr_nonnull(strstr(h.res_body, "expires in 3 days"));
    tl_http_free(&h);
    guest_ctx_free(ctx);
}
END_TEST

/* GET /hello: no guard, no database, the floor benchmarks compare with. */
START_TEST(hello_makes_no_guest)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, NULL);
    tl_http h;
    dt_get(ctx, &h, "/hello", NULL);
    ck_assert_int_eq(h.status, 200);
    ck_assert_uint_eq(h.res_len, 6);
    ck_assert_mem_eq(h.res_body, "hello\n", 6);
    char session[128];
    ck_assert(!tl_http_cookie(&h, "sessionid", session, sizeof session));
    ck_assert_ptr_null(tl_http_res_header(&h, "Vary"));
    tl_http_free(&h);
    ck_assert_int_eq(tl_scalar_in(SCHEMA, "SELECT count(*) FROM @.users"), 0);
    guest_ctx_free(ctx);
}
END_TEST

/* The home page when the visitor cannot be looked up (the library's tables
 * gone, as in an outage): a 503 page that says so, not a greeting. */
START_TEST(home_says_when_the_database_is_out_of_reach)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, NULL);
    tl_http h;
    dt_get(ctx, &h, "/allow_guest_user/", NULL);
    char session[128];
    ck_assert(tl_http_cookie(&h, "sessionid", session, sizeof session));
    tl_http_free(&h);
    tl_drop_schema(SCHEMA);
    dt_get(ctx, &h, "/", session);
    ck_assert_int_eq(h.status, 503);
    ck_assert_str_eq(tl_http_res_header(&h, "Content-Type"),
                     "text/html; charset=utf-8");
    ck_assert_ptr_nonnull(strstr(h.res_body, "cannot reach its database"));
    ck_assert_ptr_null(strstr(h.res_body, "browsing as a guest"));
    tl_http_free(&h);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(account_flags)
{
    demo_options o;
    char *argv[] = {"demo",
                    "--prefill-username",
                    "--password-iterations",
                    "1234",
                    "--password-min-length",
                    "12",
                    "--password-checks",
                    "numeric,common",
                    "--secure-proxy-header",
                    "X-Forwarded-Proto",
                    NULL};
    ck_assert_int_eq(demo_parse_args(&o, 10, argv), 0);
    ck_assert(o.cfg.convert_prefill_username);
    ck_assert_uint_eq(o.cfg.password_iterations, 1234);
    ck_assert_uint_eq(o.cfg.password_min_length, 12);
    ck_assert_uint_eq(o.cfg.password_checks,
                      GUEST_PW_CHECK_NUMERIC | GUEST_PW_CHECK_COMMON);
    ck_assert_str_eq(o.cfg.secure_proxy_header, "X-Forwarded-Proto");
    char *defaults[] = {"demo", NULL};
    ck_assert_int_eq(demo_parse_args(&o, 1, defaults), 0);
    ck_assert(!o.cfg.convert_prefill_username);
    ck_assert_uint_eq(o.cfg.password_checks, GUEST_PW_CHECK_ALL);
    unsigned bits;
    ck_assert_int_eq(demo_parse_password_checks("none", &bits), 0);
    ck_assert_uint_eq(bits, 0);
    ck_assert_int_eq(demo_parse_password_checks("all", &bits), 0);
    ck_assert_uint_eq(bits, GUEST_PW_CHECK_ALL);
    ck_assert_int_eq(demo_parse_password_checks("min-length,bogus", &bits), -1);
    ck_assert_int_eq(demo_parse_password_checks("", &bits), -1);
}
END_TEST

START_TEST(hash_flags)
{
    demo_options o;
    char *argv[] = {"demo", "--hash-concurrency", "3", "--hash-wait-ms", "250",
                    NULL};
    ck_assert_int_eq(demo_parse_args(&o, 5, argv), 0);
    ck_assert_uint_eq(o.cfg.hash_concurrency, 3);
    ck_assert_uint_eq(o.cfg.hash_wait_ms, 250);
    char *defaults[] = {"demo", NULL};
    ck_assert_int_eq(demo_parse_args(&o, 1, defaults), 0);
    ck_assert_uint_eq(o.cfg.hash_concurrency, 0);
    ck_assert_uint_eq(o.cfg.hash_wait_ms, 2000);
    char *bad[] = {"demo", "--hash-wait-ms", "-1", NULL};
    ck_assert_int_eq(demo_parse_args(&o, 3, bad), -1);
}
END_TEST

START_TEST(limit_flags)
{
    demo_options o;
    char *argv[] = {"demo", "--rate-limit",  "30/hour", "--rate-limit-action",
                    "429",  "--login-limit", "5/HOUR",  "--login-address-limit",
                    "40",   "--max-guests",  "100000",  NULL};
    ck_assert_int_eq(demo_parse_args(&o, 11, argv), 0);
    ck_assert_uint_eq(o.cfg.guest_rate_limit, 30);
    ck_assert_uint_eq(o.cfg.guest_rate_window, 3600);
    ck_assert_int_eq(o.cfg.guest_rate_limit_action, GUEST_RATE_ACTION_429);
    ck_assert_uint_eq(o.cfg.login_rate_limit, 5);
    ck_assert_uint_eq(o.cfg.login_address_rate_limit, 40);
    ck_assert_int_eq(o.cfg.max_guests, 100000);
    char *minute[] = {"demo", "--rate-limit", "3/minute", NULL};
    ck_assert_int_eq(demo_parse_args(&o, 3, minute), 0);
    ck_assert_uint_eq(o.cfg.guest_rate_limit, 3);
    ck_assert_uint_eq(o.cfg.guest_rate_window, 60);
    ck_assert_int_eq(o.cfg.guest_rate_limit_action,
                     GUEST_RATE_ACTION_ANONYMOUS);
    ck_assert_int_eq(o.cfg.db_pooler, GUEST_DB_POOLER_AUTO);
    char *pooler[] = {"demo", "--db-pooler", "transaction", NULL};
    ck_assert_int_eq(demo_parse_args(&o, 3, pooler), 0);
    ck_assert_int_eq(o.cfg.db_pooler, GUEST_DB_POOLER_TRANSACTION);
    ck_assert_uint_eq(o.cfg.session_cache_ttl, 0);
    ck_assert_uint_eq(o.cfg.session_cache_size, 10000);
    /* the guessing limits are on unless turned off; the IPv6 prefixes and
     * the per-network share */
    ck_assert_uint_eq(o.cfg.login_rate_limit, 5);
    ck_assert_uint_eq(o.cfg.login_address_rate_limit, 100);
    char *off[] = {"demo",   "--login-limit",
                   "0",      "--login-address-limit",
                   "0/HOUR", "--ipv6-56-multiplier",
                   "0",      "--ipv6-48-multiplier",
                   "16",     "--max-guests-per-network",
                   "7",      NULL};
    ck_assert_int_eq(demo_parse_args(&o, 11, off), 0);
    ck_assert_uint_eq(o.cfg.login_rate_limit, 0);
    ck_assert_uint_eq(o.cfg.login_address_rate_limit, 0);
    ck_assert_uint_eq(o.cfg.ipv6_prefix56_multiplier, 0);
    ck_assert_uint_eq(o.cfg.ipv6_prefix48_multiplier, 16);
    ck_assert_int_eq(o.cfg.max_guests_per_network, 7);
    char *cache[] = {"demo", "--session-cache-ttl",
                     "30",   "--session-cache-size",
                     "500",  NULL};
    ck_assert_int_eq(demo_parse_args(&o, 5, cache), 0);
    ck_assert_uint_eq(o.cfg.session_cache_ttl, 30);
    ck_assert_uint_eq(o.cfg.session_cache_size, 500);
    const char *bad[][2] = {{"--rate-limit", "0/hour"},
                            {"--ipv6-48-multiplier", "70000"},
                            {"--max-guests-per-network", "-1"},
                            {"--rate-limit", "5/day"},
                            {"--rate-limit", "x"},
                            {"--rate-limit-action", "drop"},
                            {"--login-limit", "5/minute"},
                            {"--max-guests", "-1"},
                            {"--db-pooler", "session"},
                            {"--session-cache-ttl", "3601"},
                            {"--session-cache-ttl", "-1"},
                            {"--session-cache-size", "0"},
                            {"--session-cache-size", "1000001"}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char *args[] = {"demo", (char *)bad[i][0], (char *)bad[i][1], NULL};
        ck_assert_int_eq(demo_parse_args(&o, 3, args), -1);
    }
}
END_TEST

/* --secret-key-file loads the keys into cfg.secret_keys; the demo then
 * hands out signed session cookies, and a weak file stops it. */
START_TEST(secret_key_file_flag)
{
    char path[] = "/tmp/guestuser-demo-key-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    const char *text = "# made with openssl rand -base64 48\n"
                       "xq3H9v0bYk1Zr6dC2mW8nT5pL7sJ4aE0fGhUiOoQwRtY\n";
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    demo_options o;
    char *argv[] = {"demo", "--secret-key-file", path, NULL};
    ck_assert_int_eq(demo_parse_args(&o, 3, argv), 0);
    ck_assert_ptr_nonnull(o.cfg.secret_keys);
    ck_assert_str_eq(o.cfg.secret_keys[0],
                     "xq3H9v0bYk1Zr6dC2mW8nT5pL7sJ4aE0fGhUiOoQwRtY");
    ck_assert_ptr_null(o.cfg.secret_keys[1]);
    guest_config c;
    tl_config(&c, SCHEMA);
    c.secret_keys = o.cfg.secret_keys;
    guest_ctx *ctx = tl_ctx_new(&c);
    demo_options_free(&o);
    ck_assert_ptr_null(o.cfg.secret_keys);
    tl_http h;
    dt_get(ctx, &h, "/allow_guest_user/", NULL);
    char cookie[160];
    ck_assert(tl_http_cookie(&h, "sessionid", cookie, sizeof cookie));
    tl_http_free(&h);
    /* token "." signature */
    ck_assert_uint_eq(strlen(cookie), strlen("sessionid=") + 43 + 1 + 43);
    ck_assert_int_eq(cookie[strlen("sessionid=") + 43], '.');
    guest_ctx_free(ctx);

    fd = open(path, O_WRONLY | O_TRUNC);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "secret\n", 7), 7);
    close(fd);
    ck_assert_int_eq(demo_parse_args(&o, 3, argv), -1);
    demo_options_free(&o);
    unlink(path);
    char *missing[] = {"demo", "--secret-key-file", "/nonexistent/k", NULL};
    ck_assert_int_eq(demo_parse_args(&o, 3, missing), -1);
    demo_options_free(&o);
}
END_TEST

/* --allowed-hosts and --trusted-proxy reach the config: a request for
 * another Host is refused, and X-Forwarded-For counts from the proxy. */
START_TEST(demo_flags_set_allowed_hosts_and_trusted_proxies)
{
    demo_options o;
    char *argv[] = {"demo",
                    "--allowed-hosts",
                    "example.com",
                    "--trusted-proxy",
                    "127.0.0.1/32,::1/128",
                    NULL};
    ck_assert_int_eq(demo_parse_args(&o, 5, argv), 0);
    ck_assert_str_eq(o.cfg.allowed_hosts, "example.com");
    ck_assert_str_eq(o.cfg.trusted_proxies, "127.0.0.1/32,::1/128");
    o.cfg.db_conninfo = tl_conninfo();
    o.cfg.db_schema = SCHEMA;
    o.cfg.db_timeout_ms = 30000;
    guest_ctx *ctx = tl_ctx_new(&o.cfg);
    /* the in-process client's peer address is 127.0.0.1, a trusted proxy */
    tl_http h;
    tl_http_init(&h, "GET", "/echo");
    tl_http_add(&h, "Host", "example.com");
    tl_http_add(&h, "X-Forwarded-For", "203.0.113.9");
    tl_http_run(ctx, &h, tl_echo, NULL);
    ck_assert_int_eq(h.status, 200);
    ck_assert_msg(strstr(h.res_body, "addr=203.0.113.9\n"), "%s", h.res_body);
    tl_http_free(&h);
    tl_http_init(&h, "GET", "/echo");
    tl_http_add(&h, "Host", "127.0.0.1");
    tl_http_run(ctx, &h, tl_echo, NULL);
    ck_assert_int_eq(h.status, 400);
    tl_http_free(&h);
    guest_ctx_free(ctx);
    demo_options_free(&o);
}
END_TEST

/* --oidc, --public-url and --identity-signup; with libguestuser-oidc the
 * providers' buttons on the sign-up and login pages and their routes. */
START_TEST(identity_provider_flags)
{
    char secret[64] = "/tmp/guestuser-oidc-secret-XXXXXX";
    int fd = mkstemp(secret);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "  s3cr3t-value\r\n", 16), 16);
    close(fd);
    char spec[256], spec2[256];
    snprintf(spec, sizeof spec, "op,http://127.0.0.1:9/,client-1,%s", secret);
    snprintf(spec2, sizeof spec2, "other_2,https://idp.example,c2,%s", secret);
    demo_options o;
    char *argv[] = {
        "demo",   "--public-url", "https://site.example", "--oidc", spec,
        "--oidc", spec2,          "--identity-signup",    "off",    NULL};
    char *defaults[] = {"demo", NULL};
#ifdef GUESTUSER_DEMO_OIDC
    ck_assert(demo_oidc_built());
    ck_assert_int_eq(demo_parse_args(&o, 9, argv), 0);
    ck_assert_str_eq(o.public_url, "https://site.example");
    ck_assert(!o.cfg.identity_signup);
    ck_assert_int_eq(o.noidc, 2);
    ck_assert_str_eq(o.oidc[0].name, "op");
    ck_assert_str_eq(o.oidc[0].issuer, "http://127.0.0.1:9/");
    ck_assert_str_eq(o.oidc[0].client_id, "client-1");
    ck_assert_str_eq(o.oidc[0].secret, "s3cr3t-value"); /* trimmed */
    ck_assert_str_eq(o.oidc[1].name, "other_2");

    /* the registry from those flags: buttons carrying `next`, routes */
    o.cfg.db_conninfo = tl_conninfo();
    o.cfg.db_schema = SCHEMA;
    o.cfg.db_timeout_ms = 30000;
    guest_ctx *ctx = tl_ctx_new(&o.cfg);
    char err[512];
    ck_assert_int_eq(
        demo_oidc_start(ctx, &o, "http://127.0.0.1:8080", err, sizeof err), 0);
    demo_options_free(&o);
    ck_assert(demo_oidc_enabled());
    tl_http h;
    dt_get(ctx, &h, "/accounts/login/?next=/notes/", NULL);
    ck_assert_int_eq(h.status, 200);
    ck_assert_ptr_nonnull(strstr(h.res_body, "Continue with op"));
    ck_assert_ptr_nonnull(strstr(h.res_body, "Continue with other_2"));
    ck_assert_ptr_nonnull(
        strstr(h.res_body, "action=\"/accounts/oidc/op/login/\""));
    ck_assert_ptr_nonnull(strstr(h.res_body, "value=\"/notes/\""));
    tl_http_free(&h);
    /* the login page of a provider: a CSRF-protected POST form */
    dt_get(ctx, &h, "/accounts/oidc/op/login/", NULL);
    ck_assert_int_eq(h.status, 200);
    ck_assert_ptr_nonnull(strstr(h.res_body, "name=\"csrfmiddlewaretoken\""));
    tl_http_free(&h);
    dt_get(ctx, &h, "/accounts/oidc/nobody/login/", NULL);
    ck_assert_int_eq(h.status, 404);
    tl_http_free(&h);
    /* the identities page is for registered users */
    dt_get(ctx, &h, "/accounts/identities/", NULL);
    ck_assert_int_eq(h.status, 302);
    tl_http_free(&h);
    demo_oidc_stop();
    ck_assert(!demo_oidc_enabled());
    /* a public URL the component refuses */
    ck_assert_int_eq(demo_parse_args(&o, 9, argv), 0);
    ck_assert_int_eq(demo_oidc_start(ctx, &o, "http://x/?q=1", err, sizeof err),
                     -1);
    ck_assert_ptr_nonnull(strstr(err, "--public-url"));
    demo_options_free(&o);
    ck_assert_int_eq(o.noidc, 0);
    guest_ctx_free(ctx);

    /* usage errors, each with its reason */
    char three[256], badname[256], empty[256], empty_file[64], missing[256];
    snprintf(three, sizeof three, "op,http://127.0.0.1:9/,%s", secret);
    snprintf(badname, sizeof badname, "Google,https://a.example,c,%s", secret);
    snprintf(missing, sizeof missing, "op,https://a.example,c,/nonexistent/s");
    snprintf(empty_file, sizeof empty_file, "/tmp/guestuser-oidc-empty-XXXXXX");
    fd = mkstemp(empty_file);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, " \n", 2), 2);
    close(fd);
    snprintf(empty, sizeof empty, "op,https://a.example,c,%s", empty_file);
    const char *bad[][2] = {
        {"--oidc", three},
        {"--oidc", badname},
        {"--oidc", missing},
        {"--oidc", empty}, /* an empty secret file */
        {"--oidc", "op,ftp://a.example,c,/etc/hostname"},
        {"--oidc", "op,https://a.example,,/etc/hostname"},
        {"--public-url", "example.com"},
        {"--public-url", "https://"},
        {"--identity-signup", "maybe"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char *args[] = {"demo", (char *)bad[i][0], (char *)bad[i][1], NULL};
        ck_assert_msg(demo_parse_args(&o, 3, args) == -1, "%s %s accepted",
                      bad[i][0], bad[i][1]);
        demo_options_free(&o);
    }
    char *dup[] = {"demo", "--oidc", spec, "--oidc", spec, NULL};
    ck_assert_int_eq(demo_parse_args(&o, 5, dup), -1);
    demo_options_free(&o);
    unlink(empty_file);
#else
    ck_assert(!demo_oidc_built());
    char *one[] = {"demo", "--oidc", spec, NULL};
    ck_assert_int_eq(demo_parse_args(&o, 3, one), -1);
    demo_options_free(&o);
    (void)argv;
#endif
    ck_assert_int_eq(demo_parse_args(&o, 1, defaults), 0);
    ck_assert(o.cfg.identity_signup);
    ck_assert_ptr_null(o.public_url);
    ck_assert_int_eq(o.noidc, 0);
    demo_options_free(&o);
    unlink(secret);
}
END_TEST

/* --smtp-url, --smtp-credentials-file, --smtp-starttls, --mail-from and
 * --password-reset-timeout; the e-mail pages mounted, the login page's
 * link to the reset form. */
START_TEST(mail_flags)
{
    demo_options o;
    char *argv[] = {"demo",
                    "--smtp-url",
                    "smtp://127.0.0.1:2525",
                    "--smtp-credentials-file",
                    "/nonexistent/cred",
                    "--smtp-starttls",
                    "off",
                    "--mail-from",
                    "Site <noreply@example.test>",
                    "--password-reset-timeout",
                    "600",
                    NULL};
    ck_assert_int_eq(demo_parse_args(&o, 11, argv), 0);
    ck_assert_str_eq(o.smtp_url, "smtp://127.0.0.1:2525");
    ck_assert_str_eq(o.smtp_credentials_file, "/nonexistent/cred");
    ck_assert_int_eq(o.smtp_starttls, 2);
    ck_assert_str_eq(o.cfg.mail_from, "Site <noreply@example.test>");
    ck_assert_uint_eq(o.cfg.password_reset_timeout, 600);
    demo_options_free(&o);
    char *optional[] = {"demo", "--smtp-starttls", "optional", NULL};
    ck_assert_int_eq(demo_parse_args(&o, 3, optional), 0);
    ck_assert_int_eq(o.smtp_starttls, 1);
    demo_options_free(&o);
    char *by_email[] = {"demo", "--login-with-email", NULL};
    ck_assert_int_eq(demo_parse_args(&o, 2, by_email), 0);
    ck_assert(o.cfg.login_with_email);
    demo_options_free(&o);
    char *required[] = {"demo", "--signup-email", "required", NULL};
    ck_assert_int_eq(demo_parse_args(&o, 3, required), 0);
    ck_assert_int_eq(o.cfg.signup_email, GUEST_EMAIL_REQUIRED);
    demo_options_free(&o);
    char *opt_email[] = {"demo", "--signup-email", "optional", NULL};
    ck_assert_int_eq(demo_parse_args(&o, 3, opt_email), 0);
    ck_assert_int_eq(o.cfg.signup_email, GUEST_EMAIL_OPTIONAL);
    demo_options_free(&o);
    char *defaults[] = {"demo", NULL};
    ck_assert_int_eq(demo_parse_args(&o, 1, defaults), 0);
    ck_assert_ptr_null(o.smtp_url);
    ck_assert_ptr_null(o.smtp_credentials_file);
    ck_assert_int_eq(o.smtp_starttls, 0); /* required */
    ck_assert_ptr_null(o.cfg.mail_from);
    ck_assert_uint_eq(o.cfg.password_reset_timeout, 3600);
    ck_assert(!o.cfg.login_with_email);
    ck_assert_int_eq(o.cfg.signup_email, GUEST_EMAIL_OFF);
    /* no --smtp-url: no sender, nothing to start */
    char err[256] = "";
    ck_assert_int_eq(demo_mail_start(NULL, &o, err, sizeof err), 0);
    demo_mail_stop();
    demo_options_free(&o);
    static const char *const bad[][2] = {
        {"--smtp-url", "http://mail.example"},
        {"--smtp-url", "mail.example:25"},
        {"--smtp-starttls", "maybe"},
        {"--signup-email", "maybe"},
        {"--mail-from", ""},
        {"--mail-from", "a@b\r\nBcc: x@y"},
        {"--password-reset-timeout", "0"},
        {"--password-reset-timeout", "abc"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char *args[] = {"demo", (char *)bad[i][0], (char *)bad[i][1], NULL};
        ck_assert_msg(demo_parse_args(&o, 3, args) == -1, "%s %s accepted",
                      bad[i][0], bad[i][1]);
        demo_options_free(&o);
    }
#ifdef GUESTUSER_DEMO_MAIL
    ck_assert(demo_mail_built());
#else
    ck_assert(!demo_mail_built());
    char *smtp[] = {"demo", "--smtp-url", "smtp://127.0.0.1:2525", NULL};
    ck_assert_int_eq(demo_parse_args(&o, 3, smtp), 0);
    ck_assert_int_eq(demo_mail_start(NULL, &o, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "libguestuser-mail"));
    demo_options_free(&o);
#endif

    /* the pages, through the demo's routes */
    guest_ctx *ctx = tl_ctx(SCHEMA, NULL);
    tl_http h;
    dt_get(ctx, &h, "/accounts/login/", NULL);
    ck_assert_int_eq(h.status, 200);
    ck_assert_ptr_nonnull(strstr(h.res_body, "/accounts/password/reset/"));
    tl_http_free(&h);
    dt_get(ctx, &h, "/accounts/password/reset/", NULL);
    ck_assert_int_eq(h.status, 200);
    ck_assert_ptr_nonnull(strstr(h.res_body, "name=\"email\""));
    tl_http_free(&h);
    dt_get(ctx, &h, "/accounts/password/reset/not-a-token/", NULL);
    ck_assert_int_eq(h.status, 400);
    ck_assert_str_eq(tl_http_res_header(&h, "Referrer-Policy"), "same-origin");
    tl_http_free(&h);
    dt_get(ctx, &h, "/accounts/email/verify/not-a-token/", NULL);
    ck_assert_int_eq(h.status, 400);
    tl_http_free(&h);
    dt_get(ctx, &h, "/accounts/email/", NULL);
    ck_assert_int_eq(h.status, 302);
    tl_http_free(&h);
    guest_ctx_free(ctx);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("demo_accounts");
    TCase *tc = tcase_create("demo_accounts");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, a_visitor_signs_up_logs_out_and_in);
    tcase_add_test(tc, guest_expiry_and_password_page);
    tcase_add_test(tc, hello_makes_no_guest);
    tcase_add_test(tc, home_says_when_the_database_is_out_of_reach);
    tcase_add_test(tc, account_flags);
    tcase_add_test(tc, hash_flags);
    tcase_add_test(tc, limit_flags);
    tcase_add_test(tc, secret_key_file_flag);
    tcase_add_test(tc, demo_flags_set_allowed_hosts_and_trusted_proxies);
    tcase_add_test(tc, identity_provider_flags);
    tcase_add_test(tc, mail_flags);
    suite_add_tcase(s, tc);
    return tl_run(s);
}

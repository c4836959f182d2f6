/* The test client of guestuser/testing.h against the fixture database, as
 * an application's own tests use it: the three guards with a cookie jar,
 * conversion through the library's form with its CSRF token, logout, a
 * post without a token; and what it shares with the server adapters
 * (joined header lines, the body limit, the Host refusal, HEAD, framing),
 * the jar's Path, Max-Age and Expires rules, and its misuse; and the
 * conformance kit's route table, with the checks of guestuser-conformance
 * that do not concern sockets, through the client. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <guestuser/adapter.h>
#include <guestuser/testing.h>
#ifdef TEST_WITH_CONFORMANCE
#include <guestuser/conformance.h>
#endif

#include "routes.h"
#include "testlib.h"

#define SCHEMA "t_testing_client"

static void setup(void)
{
    tl_drop_schema(SCHEMA);
}

static guest_test_client *client_for(guest_ctx *ctx, guest_handler_fn fn)
{
    guest_test_client *c = NULL;
    ck_assert_int_eq(guest_test_client_new(ctx, fn, NULL, &c), GUEST_OK);
    return c;
}

/* GET @p target; the response, which the caller frees. */
static guest_test_response *get(guest_test_client *c, const char *target)
{
    guest_test_response *r = NULL;
    ck_assert_int_eq(guest_test_get(c, target, &r), GUEST_OK);
    ck_assert_ptr_nonnull(r);
    return r;
}

/* GET @p target and check status and, when not NULL, a body part. */
static void expect(guest_test_client *c, const char *target, int status,
                   const char *in_body)
{
    guest_test_response *r = get(c, target);
    const char *body = guest_test_response_body(r, NULL);
    ck_assert_msg(guest_test_response_status(r) == status, "%s: %d %s", target,
                  guest_test_response_status(r), body);
    if (in_body)
        ck_assert_msg(strstr(body, in_body), "%s: no \"%s\" in %s", target,
                      in_body, body);
    guest_test_response_free(r);
}

static const char *location_of(guest_test_response *r)
{
    const char *l = guest_test_response_header(r, "Location");
    return l ? l : "(none)";
}

/* ---- the guards, with the jar ---- */

START_TEST(a_guest_is_made_on_the_first_get_and_kept_by_the_jar)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, NULL);
    guest_test_client *c = client_for(ctx, tl_routes_handler);
    ck_assert_ptr_null(guest_test_client_cookie(c, "sessionid"));

    guest_test_response *r = get(c, "/allow_guest_user/");
    ck_assert_int_eq(guest_test_response_status(r), 200);
    size_t len = 0;
    const char *body = guest_test_response_body(r, &len);
    ck_assert_ptr_nonnull(strstr(body, "<p>Hello, "));
    ck_assert_uint_eq(len, strlen(body));
    const char *set = guest_test_response_header(r, "Set-Cookie");
    ck_assert_ptr_nonnull(set);
    ck_assert(!strncmp(set, "sessionid=", 10));
    char first[256];
    snprintf(first, sizeof first, "%s", body);
    guest_test_response_free(r);
    const char *session = guest_test_client_cookie(c, "sessionid");
    ck_assert_ptr_nonnull(session);
    ck_assert_uint_gt(strlen(session), 20);
    ck_assert_int_eq(tl_scalar_in(SCHEMA, "SELECT count(*) FROM @.guests"), 1);

    /* the jar sends the cookie back: the same guest, no new one */
    r = get(c, "/allow_guest_user/");
    ck_assert_int_eq(guest_test_response_status(r), 200);
    ck_assert_str_eq(guest_test_response_body(r, NULL), first);
    ck_assert_ptr_null(guest_test_response_header(r, "Set-Cookie"));
    guest_test_response_free(r);
    expect(c, "/whoami", 200, "\"guest\":true");
    ck_assert_int_eq(tl_scalar_in(SCHEMA, "SELECT count(*) FROM @.guests"), 1);

    /* an emptied jar is a new visitor */
    guest_test_client_clear_cookies(c);
    ck_assert_ptr_null(guest_test_client_cookie(c, "sessionid"));
    expect(c, "/allow_guest_user/", 200, "Hello, ");
    ck_assert_int_eq(tl_scalar_in(SCHEMA, "SELECT count(*) FROM @.guests"), 2);
    guest_test_client_free(c);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(guest_required_and_regular_required_for_each_visitor)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, NULL);
    guest_test_client *c = client_for(ctx, tl_routes_handler);
    /* a stranger: both send it to log in, and no guest is made */
    guest_test_response *r = get(c, "/guest_user_required/");
    ck_assert_int_eq(guest_test_response_status(r), 302);
    ck_assert(!strncmp(location_of(r), "/accounts/login/", 16));
    guest_test_response_free(r);
    r = get(c, "/regular_user_required/");
    ck_assert_int_eq(guest_test_response_status(r), 302);
    ck_assert_str_eq(location_of(r),
                     "/accounts/login/?next=/regular_user_required/");
    guest_test_response_free(r);
    ck_assert_int_eq(tl_scalar_in(SCHEMA, "SELECT count(*) FROM @.guests"), 0);

    /* a guest: in for guests, sent to sign up for registered users */
    expect(c, "/allow_guest_user/", 200, NULL);
    expect(c, "/guest_user_required/", 200, "Only guests see this page");
    r = get(c, "/regular_user_required/");
    ck_assert_int_eq(guest_test_response_status(r), 302);
    ck_assert_str_eq(location_of(r), "/convert/?next=/regular_user_required/");
    guest_test_response_free(r);
    guest_test_client_free(c);
    guest_ctx_free(ctx);
}
END_TEST

/* ---- forms and CSRF through the library's views ---- */

static const char *const convert_fields[] = {
    "username",  "client user", "password1", TL_PASSWORD,
    "password2", TL_PASSWORD,   NULL};

START_TEST(convert_through_the_form_then_regular_required_passes)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, NULL);
    guest_test_client *c = client_for(ctx, tl_routes_handler);
    expect(c, "/allow_guest_user/", 200, NULL);
    ck_assert_ptr_null(guest_test_client_csrf_token(c));

    /* the form page hands out the CSRF cookie and a masked token */
    guest_test_response *r = get(c, "/convert/");
    ck_assert_int_eq(guest_test_response_status(r), 200);
    const char *hidden = guest_test_response_input(r, GUEST_CSRF_FIELD);
    ck_assert_ptr_nonnull(hidden);
    ck_assert_uint_eq(strlen(hidden), 64);
    const char *username = guest_test_response_input(r, "username");
    ck_assert_ptr_nonnull(username);
    ck_assert_str_eq(username, "");
    ck_assert_ptr_null(guest_test_response_input(r, "no-such-field"));
    guest_test_response_free(r);
    const char *token = guest_test_client_csrf_token(c);
    ck_assert_ptr_nonnull(token);
    ck_assert_uint_eq(strlen(token), 32);

    /* space in the username: encoded as a browser does, and refused by the
     * validators, the form shown again with the value escaped back */
    ck_assert_int_eq(guest_test_post_form(c, "/convert/", convert_fields, &r),
                     GUEST_OK);
    ck_assert_int_eq(guest_test_response_status(r), 200);
    ck_assert_str_eq(guest_test_response_input(r, "username"), "client user");
    guest_test_response_free(r);

    const char *const good[] = {"username",  "client.user", "password1",
                                TL_PASSWORD, "password2",   TL_PASSWORD,
                                NULL};
    ck_assert_int_eq(guest_test_post_form(c, "/convert/", good, &r), GUEST_OK);
    ck_assert_int_eq(guest_test_response_status(r), 302);
    ck_assert_str_eq(location_of(r), "/convert/success/");
    guest_test_response_free(r);

    expect(c, "/regular_user_required/", 200,
           "Only registered users see this page, client.user.");
    expect(c, "/whoami", 200, "\"guest\":false");
    r = get(c, "/guest_user_required/");
    ck_assert_int_eq(guest_test_response_status(r), 302);
    guest_test_response_free(r);
    expect(c, "/convert/success/", 200, "client.user");
    guest_test_client_free(c);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(a_post_without_the_csrf_token_is_refused)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, NULL);
    guest_test_client *c = client_for(ctx, tl_routes_handler);
    expect(c, "/allow_guest_user/", 200, NULL);
    /* never loaded the form: no CSRF cookie, so no token is sent */
    guest_test_response *r = NULL;
    ck_assert_int_eq(guest_test_post_form(c, "/convert/", convert_fields, &r),
                     GUEST_OK);
    ck_assert_int_eq(guest_test_response_status(r), 403);
    ck_assert_ptr_nonnull(
        strstr(guest_test_response_body(r, NULL), "CSRF verification failed"));
    guest_test_response_free(r);

    /* with the cookie but a wrong token in the form */
    expect(c, "/convert/", 200, NULL);
    const char *const wrong[] = {"username",
                                 "someone",
                                 "password1",
                                 TL_PASSWORD,
                                 "password2",
                                 TL_PASSWORD,
                                 GUEST_CSRF_FIELD,
                                 "bbcdefghijklmnopqrstuvwxyzABCDEF",
                                 NULL};
    ck_assert_int_eq(guest_test_post_form(c, "/convert/", wrong, &r), GUEST_OK);
    ck_assert_int_eq(guest_test_response_status(r), 403);
    guest_test_response_free(r);
    /* and a raw POST with no field at all */
    ck_assert_int_eq(guest_test_request(c, "POST", "/convert/",
                                        "application/x-www-form-urlencoded",
                                        "username=x", 10, &r),
                     GUEST_OK);
    ck_assert_int_eq(guest_test_response_status(r), 403);
    guest_test_response_free(r);
    expect(c, "/whoami", 200, "\"guest\":true");
    ck_assert_int_eq(tl_scalar_in(SCHEMA, "SELECT count(*) FROM @.users"), 1);
    guest_test_client_free(c);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(logout_clears_the_session_cookie)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, NULL);
    guest_test_client *c = client_for(ctx, tl_routes_handler);
    expect(c, "/allow_guest_user/", 200, NULL);
    /* the logout form is on every page of a site; here the convert page
     * hands out the CSRF cookie */
    expect(c, "/convert/", 200, NULL);
    ck_assert_ptr_nonnull(guest_test_client_cookie(c, "sessionid"));
    guest_test_response *r = NULL;
    ck_assert_int_eq(guest_test_post_form(c, "/accounts/logout/", NULL, &r),
                     GUEST_OK);
    ck_assert_int_eq(guest_test_response_status(r), 302);
    ck_assert_str_eq(location_of(r), "/");
    /* Max-Age=0 took the cookie out of the jar */
    const char *set = NULL;
    for (size_t i = 0;
         (set = guest_test_response_header_at(r, "Set-Cookie", i)) != NULL; i++)
        if (!strncmp(set, "sessionid=", 10))
            break;
    ck_assert_ptr_nonnull(set);
    ck_assert_ptr_nonnull(strstr(set, "Max-Age=0"));
    guest_test_response_free(r);
    ck_assert_ptr_null(guest_test_client_cookie(c, "sessionid"));
    expect(c, "/whoami", 200, "\"authenticated\":false");
    expect(c, "/guest_user_required/", 302, NULL);
    guest_test_client_free(c);
    guest_ctx_free(ctx);
}
END_TEST

static void signing(guest_config *cfg)
{
    static const char *const keys[] = {
        "Rj8tQw2LzN5vXc7BmP0kHs4GdY9fAe1UoTi6WnKq", NULL};
    cfg->secret_keys = keys;
}

START_TEST(signed_cookies_and_their_csrf_token_work_the_same)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, signing);
    guest_test_client *c = client_for(ctx, tl_routes_handler);
    expect(c, "/allow_guest_user/", 200, NULL);
    expect(c, "/convert/", 200, NULL);
    /* with keys the cookie is "secret.signature", which a script may send
     * as its token */
    const char *token = guest_test_client_csrf_token(c);
    ck_assert_ptr_nonnull(token);
    ck_assert_ptr_nonnull(strchr(token, '.'));
    ck_assert_ptr_nonnull(
        strchr(guest_test_client_cookie(c, "sessionid"), '.'));
    expect(c, "/guest_user_required/", 200, NULL);
    guest_test_response *r = NULL;
    ck_assert_int_eq(guest_test_post_form(c, "/accounts/logout/", NULL, &r),
                     GUEST_OK);
    ck_assert_int_eq(guest_test_response_status(r), 302);
    guest_test_response_free(r);
    ck_assert_ptr_null(guest_test_client_cookie(c, "sessionid"));
    guest_test_client_free(c);
    guest_ctx_free(ctx);
}
END_TEST

/* ---- what it shares with the server adapters ---- */

START_TEST(headers_body_and_address_reach_the_handler)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, NULL);
    guest_test_client *c = client_for(ctx, tl_echo);
    ck_assert_int_eq(guest_test_client_set_header(c, "X-Test", "one"),
                     GUEST_OK);
    ck_assert_int_eq(guest_test_client_add_header(c, "X-Test", "two"),
                     GUEST_OK);
    ck_assert_int_eq(guest_test_client_set_remote_addr(c, "192.0.2.7"),
                     GUEST_OK);
    guest_test_client_set_https(c, true);
    guest_test_response *r = NULL;
    ck_assert_int_eq(
        guest_test_request(c, "PUT", "/echo?q=1", "text/plain", "a\0b", 3, &r),
        GUEST_OK);
    ck_assert_int_eq(guest_test_response_status(r), 200);
    size_t len = 0;
    const char *body = guest_test_response_body(r, &len);
    const char want[] = "method=PUT\ntarget=/echo?q=1\npath=/echo\n"
                        "addr=192.0.2.7\nx-test=one, two\nhttps=1\n"
                        "body=3:a\0b";
    ck_assert_uint_eq(len, sizeof want - 1);
    ck_assert(!memcmp(body, want, len));
    ck_assert_str_eq(guest_test_response_header(r, "content-type"),
                     "text/plain");
    char length[24];
    snprintf(length, sizeof length, "%zu", len);
    ck_assert_str_eq(guest_test_response_header(r, "Content-Length"), length);
    guest_test_response_free(r);

    /* set replaces every line; NULL removes; an unknown address */
    ck_assert_int_eq(guest_test_client_set_header(c, "x-test", "three"),
                     GUEST_OK);
    ck_assert_int_eq(guest_test_client_set_remote_addr(c, NULL), GUEST_OK);
    guest_test_client_set_https(c, false);
    expect(c, "/echo", 200, "addr=(null)\nx-test=three\nhttps=0\nbody=0:");
    ck_assert_int_eq(guest_test_client_set_header(c, "X-Test", NULL), GUEST_OK);
    expect(c, "/echo", 200, "x-test=(null)");

    /* HEAD: GET's headers, no body */
    ck_assert_int_eq(guest_test_request(c, "HEAD", "/echo", NULL, NULL, 0, &r),
                     GUEST_OK);
    ck_assert_int_eq(guest_test_response_status(r), 200);
    ck_assert_str_eq(guest_test_response_body(r, &len), "");
    ck_assert_uint_eq(len, 0);
    ck_assert_str_ne(guest_test_response_header(r, "Content-Length"), "0");
    guest_test_response_free(r);
    guest_test_client_free(c);
    guest_ctx_free(ctx);
}
END_TEST

/* Sets what the query asks of the response. */
static void answer(guest_req *req, void *userdata)
{
    (void)userdata;
    const char *t = guest_req_target(req);
    const char *cookie = guest_req_header(req, "Cookie");
    guest_status st = GUEST_OK;
    if (strstr(t, "set")) {
        st = guest_res_add_header(req, "Set-Cookie", "a=1; Path=/");
        if (st == GUEST_OK)
            st = guest_res_add_header(req, "Set-Cookie",
                                      "b=2; Path=/deep; HttpOnly");
        if (st == GUEST_OK) /* default path: /dir */
            st = guest_res_add_header(req, "Set-Cookie", " c = 3 ");
        if (st == GUEST_OK) /* ignored: no '=' */
            st = guest_res_add_header(req, "Set-Cookie", "junk; Path=/");
    }
    if (st == GUEST_OK && strstr(t, "drop-a"))
        st = guest_res_add_header(req, "Set-Cookie", "a=\"\"; Max-Age=0");
    if (st == GUEST_OK && strstr(t, "expire-b"))
        st = guest_res_add_header(
            req, "Set-Cookie",
            "b=; Path=/deep; Expires=Thu, 01 Jan 1970 00:00:00 GMT");
    if (st == GUEST_OK && strstr(t, "framing")) {
        st = guest_res_add_header(req, "Content-Length", "999");
        if (st == GUEST_OK)
            st = guest_res_add_header(req, "Transfer-Encoding", "chunked");
    }
    ck_assert_int_eq(st, GUEST_OK);
    guest_res_set_status(req, strstr(t, "nocontent") ? 204 : 200);
    guest_res_printf(req, "cookie=%s", cookie ? cookie : "(none)");
}

START_TEST(the_jar_keeps_path_max_age_and_expires)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, NULL);
    guest_test_client *c = client_for(ctx, answer);
    expect(c, "/dir/page?set", 200, "cookie=(none)");
    ck_assert_str_eq(guest_test_client_cookie(c, "a"), "1");
    ck_assert_str_eq(guest_test_client_cookie(c, "b"), "2");
    ck_assert_str_eq(guest_test_client_cookie(c, "c"), "3");
    ck_assert_ptr_null(guest_test_client_cookie(c, "junk"));
    /* each path gets its own; the longest path first */
    expect(c, "/", 200, "cookie=a=1");
    expect(c, "/deep/x", 200, "cookie=b=2; a=1");
    expect(c, "/deeper", 200, "cookie=a=1");
    expect(c, "/dir", 200, "cookie=c=3; a=1");
    /* an application's own Cookie line comes first */
    ck_assert_int_eq(guest_test_client_set_header(c, "Cookie", "own=0"),
                     GUEST_OK);
    expect(c, "/", 200, "cookie=own=0; a=1");
    ck_assert_int_eq(guest_test_client_set_header(c, "Cookie", NULL), GUEST_OK);
    /* Max-Age=0 deletes only the cookie of its path (here /, the default
     * of "/drop-a") */
    expect(c, "/drop-a", 200, NULL);
    ck_assert_ptr_null(guest_test_client_cookie(c, "a"));
    expect(c, "/deep/?expire-b", 200, "cookie=b=2");
    ck_assert_ptr_null(guest_test_client_cookie(c, "b"));
    expect(c, "/deep/", 200, "cookie=(none)");
    /* planted by the test, replaced, removed */
    ck_assert_int_eq(guest_test_client_set_cookie(c, "a", "9"), GUEST_OK);
    ck_assert_int_eq(guest_test_client_set_cookie(c, "a", "10"), GUEST_OK);
    expect(c, "/", 200, "cookie=a=10");
    ck_assert_int_eq(guest_test_client_set_cookie(c, "a", NULL), GUEST_OK);
    ck_assert_ptr_null(guest_test_client_cookie(c, "a"));
    ck_assert_int_eq(guest_test_client_set_cookie(c, "a", "x y"),
                     GUEST_ERR_INVALID);
    ck_assert_int_eq(guest_test_client_set_cookie(c, "a=b", "1"),
                     GUEST_ERR_INVALID);
    ck_assert_int_eq(guest_test_client_set_cookie(c, "", "1"),
                     GUEST_ERR_INVALID);

    /* the adapters' framing replaces the handler's; 204 has no body */
    guest_test_response *r = get(c, "/?framing");
    ck_assert_str_eq(guest_test_response_header(r, "Content-Length"),
                     "13"); /* "cookie=(none)" */
    ck_assert_ptr_null(guest_test_response_header_at(r, "Content-Length", 1));
    ck_assert_ptr_null(guest_test_response_header(r, "Transfer-Encoding"));
    guest_test_response_free(r);
    r = get(c, "/?nocontent");
    ck_assert_int_eq(guest_test_response_status(r), 204);
    ck_assert_str_eq(guest_test_response_body(r, NULL), "");
    ck_assert_ptr_null(guest_test_response_header(r, "Content-Length"));
    guest_test_response_free(r);
    guest_test_client_free(c);
    guest_ctx_free(ctx);
}
END_TEST

/* Cookies a browser keeps although their Expires cannot be read, and a
 * page's inputs as a browser reads them. */
static void odd_page(guest_req *req, void *userdata)
{
    (void)userdata;
    static const char *const lines[] = {
        "d=4; Max-Age=99999999999",
        "e=5; Expires=Thu, 01 Jan 1970 00:00:0x GMT",
        "f=6; Expires=yesterday",
        "g=7; Expires=Thu, 01 Foo 1970 00:00:00 GMT",
        "h=8; Expires=Fri, 01 Jan 2100 00:00:00 GMT",
        "i=9; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=60",
        "a=1; Path=/",
        "a=2; Path=/dir"};
    for (size_t i = 0; i < sizeof lines / sizeof *lines; i++)
        ck_assert_int_eq(guest_res_add_header(req, "Set-Cookie", lines[i]),
                         GUEST_OK);
    guest_res_send(req, 200, "text/html",
                   "<form><input name=\"a&amp;b\" value=\"x&lt;y&#39;z\">"
                   "<input type=checkbox name=flag >"
                   "<input name='single' value='it&quot;s' />"
                   "<input name=\"late\" value=\"v\"");
}

START_TEST(the_jar_and_inputs_read_odd_pages_as_a_browser_does)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, NULL);
    guest_test_client *c = client_for(ctx, odd_page);
    guest_test_response *r = get(c, "/dir/page");
    ck_assert_int_eq(guest_test_response_status(r), 200);
    /* a Max-Age past time_t's reach, and Expires dates that are not
     * dates, leave the cookie kept */
    ck_assert_str_eq(guest_test_client_cookie(c, "d"), "4");
    ck_assert_str_eq(guest_test_client_cookie(c, "e"), "5");
    ck_assert_str_eq(guest_test_client_cookie(c, "f"), "6");
    ck_assert_str_eq(guest_test_client_cookie(c, "g"), "7");
    ck_assert_str_eq(guest_test_client_cookie(c, "h"), "8");
    /* Max-Age wins over a past Expires */
    ck_assert_str_eq(guest_test_client_cookie(c, "i"), "9");
    /* of two cookies of one name, the longer path's */
    ck_assert_str_eq(guest_test_client_cookie(c, "a"), "2");
    /* references decoded in names and values, unquoted attributes, a
     * missing value, single quotes; an unclosed tag is no input */
    ck_assert_str_eq(guest_test_response_input(r, "a&b"), "x<y'z");
    ck_assert_str_eq(guest_test_response_input(r, "flag"), "");
    ck_assert_str_eq(guest_test_response_input(r, "single"), "it\"s");
    ck_assert_ptr_null(guest_test_response_input(r, "late"));
    guest_test_response_free(r);
    /* no place for the response, or no client */
    ck_assert_int_eq(guest_test_request(c, "GET", "/", NULL, NULL, 0, NULL),
                     GUEST_ERR_INVALID);
    const char *fields[] = {"a", "b", NULL};
    ck_assert_int_eq(guest_test_post_form(c, "/", fields, NULL),
                     GUEST_ERR_INVALID);
    r = (guest_test_response *)1;
    ck_assert_int_eq(guest_test_post_form(NULL, "/", fields, &r),
                     GUEST_ERR_INVALID);
    ck_assert_ptr_null(r);
    guest_test_client_free(c);
    guest_ctx_free(ctx);
}
END_TEST

static void small_and_hosts(guest_config *cfg)
{
    cfg->max_body_size = 1024; /* the smallest allowed */
    cfg->allowed_hosts = "example.org";
}

static int handler_runs;
static void count_runs(guest_req *req, void *userdata)
{
    (void)userdata;
    handler_runs++;
    guest_res_send(req, 200, "text/plain", "ran");
}

START_TEST(body_limit_and_host_are_refused_before_the_handler)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, small_and_hosts);
    guest_test_client *c = client_for(ctx, count_runs);
    handler_runs = 0;
    /* "testserver" is not an allowed host */
    guest_test_response *r = get(c, "/");
    ck_assert_int_eq(guest_test_response_status(r), 400);
    ck_assert_str_eq(guest_test_response_body(r, NULL), GUEST_BAD_HOST_TEXT);
    guest_test_response_free(r);
    ck_assert_int_eq(guest_test_client_set_header(c, "Host", "example.org"),
                     GUEST_OK);
    char body[1025];
    memset(body, 'x', sizeof body);
    ck_assert_int_eq(
        guest_test_request(c, "POST", "/", "text/plain", body, sizeof body, &r),
        GUEST_OK);
    ck_assert_int_eq(guest_test_response_status(r), 413);
    guest_test_response_free(r);
    ck_assert_int_eq(handler_runs, 0);
    ck_assert_int_eq(guest_test_request(c, "POST", "/", "text/plain", body,
                                        sizeof body - 1, &r),
                     GUEST_OK);
    ck_assert_int_eq(guest_test_response_status(r), 200);
    guest_test_response_free(r);
    ck_assert_int_eq(handler_runs, 1);
    guest_test_client_free(c);
    guest_ctx_free(ctx);
}
END_TEST

/* guest_run_handler(), which every adapter runs a request with, over a
 * request of this test's own: the handler runs, or the answer the adapter
 * must give instead is named. */
typedef struct kit_conn {
    const char *host;
    guest_response res;
} kit_conn;

static const char *kit_header(void *c, const char *name)
{
    return strcasecmp(name, "Host") == 0 ? ((kit_conn *)c)->host : NULL;
}

static const char *kit_method(void *c)
{
    (void)c;
    return "GET";
}

static const char *kit_target(void *c)
{
    (void)c;
    return "/";
}

GUEST_RESPONSE_CALLBACKS(kit, kit_conn, res)

START_TEST(the_adapter_kit_runs_the_handler_or_names_the_answer)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, small_and_hosts);
    const guest_http_ops ops = {
        GUEST_HTTP_OPS_INIT,  .header = kit_header,    .method = kit_method,
        .target = kit_target, GUEST_RESPONSE_OPS(kit),
    };
    kit_conn c = {.host = "example.org"};
    guest_response_init(&c.res);
    handler_runs = 0;
    const char *text = NULL;
    ck_assert_int_eq(guest_run_handler(ctx, &ops, &c, count_runs, NULL, &text),
                     0);
    ck_assert_int_eq(handler_runs, 1);
    ck_assert_str_eq(text, "");
    ck_assert_int_eq(c.res.status, 200);
    ck_assert_str_eq(c.res.body.data, "ran");
    guest_response_cleanup(&c.res);

    c.host = "evil.example";
    guest_response_init(&c.res);
    ck_assert_int_eq(guest_run_handler(ctx, &ops, &c, count_runs, NULL, &text),
                     400);
    ck_assert_str_eq(text, GUEST_BAD_HOST_TEXT);
    ck_assert_int_eq(handler_runs, 1);
    /* An ops table without its required calls: no request, 500. */
    const guest_http_ops none = {GUEST_HTTP_OPS_INIT, .header = kit_header};
    c.host = "example.org";
    ck_assert_int_eq(guest_run_handler(ctx, &none, &c, count_runs, NULL, &text),
                     500);
    ck_assert_str_eq(text, "Internal Server Error\n");
    ck_assert_int_eq(handler_runs, 1);
    ck_assert_uint_eq(c.res.body.len, 0);
    guest_response_cleanup(&c.res);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(misuse_is_refused)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, NULL);
    guest_test_client *c = NULL;
    ck_assert_int_eq(guest_test_client_new(NULL, count_runs, NULL, &c),
                     GUEST_ERR_INVALID);
    ck_assert_ptr_null(c);
    ck_assert_int_eq(guest_test_client_new(ctx, NULL, NULL, &c),
                     GUEST_ERR_INVALID);
    ck_assert_int_eq(guest_test_client_new(ctx, count_runs, NULL, NULL),
                     GUEST_ERR_INVALID);
    c = client_for(ctx, count_runs);
    guest_test_response *r = (guest_test_response *)1;
    ck_assert_int_eq(guest_test_get(c, "relative", &r), GUEST_ERR_INVALID);
    ck_assert_ptr_null(r);
    ck_assert_int_eq(guest_test_get(c, "/a b", &r), GUEST_ERR_INVALID);
    ck_assert_int_eq(guest_test_get(c, "/a\r\nX: y", &r), GUEST_ERR_INVALID);
    ck_assert_int_eq(guest_test_get(NULL, "/", &r), GUEST_ERR_INVALID);
    ck_assert_int_eq(guest_test_request(c, "GE T", "/", NULL, NULL, 0, &r),
                     GUEST_ERR_INVALID);
    ck_assert_int_eq(guest_test_request(c, "POST", "/", NULL, NULL, 4, &r),
                     GUEST_ERR_INVALID);
    ck_assert_int_eq(guest_test_client_set_header(c, "Bad Name", "v"),
                     GUEST_ERR_INVALID);
    ck_assert_int_eq(guest_test_client_set_header(c, "X", "a\r\nB: c"),
                     GUEST_ERR_INVALID);
    ck_assert_int_eq(guest_test_client_add_header(c, "X", NULL),
                     GUEST_ERR_INVALID);
    ck_assert_int_eq(handler_runs, 0);
    /* NULL everywhere else is harmless */
    ck_assert_int_eq(guest_test_response_status(NULL), 0);
    ck_assert_ptr_null(guest_test_response_header(NULL, "X"));
    ck_assert_str_eq(guest_test_response_body(NULL, NULL), "");
    ck_assert_ptr_null(guest_test_response_input(NULL, "x"));
    ck_assert_ptr_null(guest_test_client_cookie(NULL, "x"));
    ck_assert_ptr_null(guest_test_client_csrf_token(NULL));
    guest_test_client_clear_cookies(NULL);
    guest_test_client_set_https(NULL, true);
    guest_test_response_free(NULL);
    guest_test_client_free(NULL);
    guest_test_client_free(c);
    guest_ctx_free(ctx);
}
END_TEST

#ifdef TEST_WITH_CONFORMANCE
/* ---- the conformance kit's table, in process ---- */

static void kit_config(guest_config *cfg)
{
    guest_conformance_config(cfg);
}

static guest_test_response *req(guest_test_client *c, const char *method,
                                const char *target, const char *body,
                                size_t len)
{
    guest_test_response *r = NULL;
    ck_assert_int_eq(guest_test_request(c, method, target,
                                        body ? "text/plain" : NULL, body, len,
                                        &r),
                     GUEST_OK);
    return r;
}

START_TEST(the_conformance_table_answers_as_the_kit_expects)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, kit_config);
    guest_test_client *c = client_for(ctx, guest_conformance_handler);
    /* crawlers-stay-anonymous, not-found, method-not-allowed, head: no
     * guest made by any of them */
    ck_assert_int_eq(
        guest_test_client_set_header(c, "User-Agent", "Googlebot/2.1"),
        GUEST_OK);
    expect(c, "/allow_guest_user/", 200, NULL);
    ck_assert_ptr_null(guest_test_client_cookie(c, "sessionid"));
    ck_assert_int_eq(guest_test_client_set_header(c, "User-Agent", NULL),
                     GUEST_OK);
    expect(c, "/nowhere/", 404, NULL);
    guest_test_response *r = req(c, "DELETE", "/whoami", NULL, 0);
    ck_assert_int_eq(guest_test_response_status(r), 405);
    ck_assert_ptr_nonnull(guest_test_response_header(r, "Allow"));
    guest_test_response_free(r);
    r = req(c, "HEAD", "/allow_guest_user/", NULL, 0);
    ck_assert_int_eq(guest_test_response_status(r), 200);
    ck_assert_str_eq(guest_test_response_body(r, NULL), "");
    guest_test_response_free(r);
    ck_assert_int_eq(tl_scalar_in(SCHEMA, "SELECT count(*) FROM @.guests"), 0);

    /* session-and-csrf-cookies: two Set-Cookie lines, both in the jar */
    r = get(c, "/cookies/");
    ck_assert_int_eq(guest_test_response_status(r), 200);
    ck_assert_ptr_nonnull(guest_test_response_header_at(r, "Set-Cookie", 1));
    ck_assert_ptr_null(guest_test_response_header_at(r, "Set-Cookie", 2));
    ck_assert_uint_eq(strlen(guest_test_response_body(r, NULL)), 64);
    guest_test_response_free(r);
    ck_assert_ptr_nonnull(guest_test_client_cookie(c, "sessionid"));
    ck_assert_ptr_nonnull(guest_test_client_csrf_token(c));
    expect(c, "/guest_user_required/", 200, NULL);

    /* csrf: the jar's token passes, none is refused */
    const char *const fields[] = {"value", "a b&c", NULL};
    ck_assert_int_eq(guest_test_post_form(c, "/csrf/", fields, &r), GUEST_OK);
    ck_assert_int_eq(guest_test_response_status(r), 200);
    ck_assert_str_eq(guest_test_response_body(r, NULL), "ok a b&c\n");
    guest_test_response_free(r);
    ck_assert_int_eq(guest_test_request(c, "POST", "/csrf/",
                                        "application/x-www-form-urlencoded",
                                        "value=x", 7, &r),
                     GUEST_OK);
    ck_assert_int_eq(guest_test_response_status(r), 403);
    guest_test_response_free(r);

    /* repeated-request-headers, request-passthrough */
    ck_assert_int_eq(guest_test_client_set_header(c, "X-Test", "1"), GUEST_OK);
    ck_assert_int_eq(guest_test_client_add_header(c, "X-Test", "2"), GUEST_OK);
    ck_assert_int_eq(guest_test_client_set_header(c, "Cookie", "k=v"),
                     GUEST_OK);
    r = req(c, "POST", "/echo/a%20b?x=%2F", "hi", 2);
    const char *body = guest_test_response_body(r, NULL);
    ck_assert_ptr_nonnull(strstr(body, "target=/echo/a%20b?x=%2F\n"));
    ck_assert_ptr_nonnull(strstr(body, "x-test=1, 2\n"));
    ck_assert_ptr_nonnull(strstr(body, "cookie=k=v; sessionid="));
    ck_assert_ptr_nonnull(strstr(body, "body=2:hi"));
    guest_test_response_free(r);

    /* body-limit: exactly the limit passes, one byte more is 413 */
    char *big = malloc(GUEST_CONFORMANCE_MAX_BODY + 1);
    ck_assert_ptr_nonnull(big);
    memset(big, 'b', GUEST_CONFORMANCE_MAX_BODY + 1);
    r = req(c, "POST", "/echo", big, GUEST_CONFORMANCE_MAX_BODY);
    ck_assert_int_eq(guest_test_response_status(r), 200);
    guest_test_response_free(r);
    r = req(c, "POST", "/echo", big, GUEST_CONFORMANCE_MAX_BODY + 1);
    ck_assert_int_eq(guest_test_response_status(r), 413);
    guest_test_response_free(r);
    free(big);

    /* no-content, handler-framing, many-headers */
    r = get(c, "/no-content");
    ck_assert_int_eq(guest_test_response_status(r), 204);
    ck_assert_str_eq(guest_test_response_body(r, NULL), "");
    guest_test_response_free(r);
    r = get(c, "/framing");
    ck_assert_str_eq(guest_test_response_body(r, NULL), "abc");
    ck_assert_str_eq(guest_test_response_header(r, "Content-Length"), "3");
    ck_assert_ptr_null(guest_test_response_header_at(r, "Content-Length", 1));
    guest_test_response_free(r);
    r = get(c, "/many-headers");
    ck_assert_str_eq(guest_test_response_body(r, NULL), "100");
    ck_assert_str_eq(guest_test_response_header(r, "X-H99"), "v");
    guest_test_response_free(r);
    guest_test_client_free(c);
    guest_ctx_free(ctx);
}
END_TEST
#endif

int main(void)
{
    Suite *s = suite_create("testing_client");
    TCase *t = tcase_create("testing_client");
    tcase_add_checked_fixture(t, setup, NULL);
    tcase_add_test(t, a_guest_is_made_on_the_first_get_and_kept_by_the_jar);
    tcase_add_test(t, guest_required_and_regular_required_for_each_visitor);
    tcase_add_test(t, convert_through_the_form_then_regular_required_passes);
    tcase_add_test(t, a_post_without_the_csrf_token_is_refused);
    tcase_add_test(t, logout_clears_the_session_cookie);
    tcase_add_test(t, signed_cookies_and_their_csrf_token_work_the_same);
    tcase_add_test(t, headers_body_and_address_reach_the_handler);
    tcase_add_test(t, the_jar_keeps_path_max_age_and_expires);
    tcase_add_test(t, body_limit_and_host_are_refused_before_the_handler);
    tcase_add_test(t, the_adapter_kit_runs_the_handler_or_names_the_answer);
    tcase_add_test(t, misuse_is_refused);
    tcase_add_test(t, the_jar_and_inputs_read_odd_pages_as_a_browser_does);
#ifdef TEST_WITH_CONFORMANCE
    tcase_add_test(t, the_conformance_table_answers_as_the_kit_expects);
#endif
    suite_add_tcase(s, t);
    return tl_run(s);
}

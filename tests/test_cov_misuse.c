/* Refusals and early stops of the public API that the area suites leave
 * out: identity listing that stops when its callback says so, an unlink
 * for a user that does not exist, lookups of names that cannot exist
 * (invalid UTF-8), NULL arguments, and the test client's refusal of
 * header lines it could not send, a rate-limit key reset alone, writes of
 * nothing, unsafe sign-up fields, empty
 * and malformed settings. Against the fixture database. */
#define _GNU_SOURCE /* strcasestr */
#include <stdio.h>
#include <string.h>

#include "guestuser/testing.h"
#include "testlib.h"

#define SCHEMA "t_cov_misuse"

static void setup(void)
{
    tl_drop_schema(SCHEMA);
}

typedef struct sign_in {
    const char *subject;
    guest_status st;
    guest_identity_outcome oc;
    guest_error err;
} sign_in;

static void sign_in_handler(guest_req *req, void *ud)
{
    sign_in *s = ud;
    guest_identity id = {.issuer = "https://issuer.example",
                         .subject = s->subject,
                         .email = NULL,
                         .preferred_username = "linked"};
    s->st = guest_identity_sign_in(req, &id, &s->oc, &s->err);
}

static void reset_request(guest_req *req, void *ud)
{
    *(guest_status *)ud =
        guest_password_reset_request(req, "x@example.test", NULL);
}

static bool stop_after_one(const guest_identity_info *info, void *ud)
{
    int *n = ud;
    (*n)++;
    ck_assert_str_eq(info->issuer, "https://issuer.example");
    return false;
}

static bool count_all(const guest_identity_info *info, void *ud)
{
    (void)info;
    (*(int *)ud)++;
    return true;
}

START_TEST(listing_identities_stops_when_told)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, NULL);
    int64_t uid = tl_new_user(ctx, "holder", TL_PASSWORD);
    tl_http h;
    tl_request(ctx, &h, "POST", "/accounts/login/", "csrftoken=" TL_CSRF, NULL,
               "username=holder&password=" TL_PASSWORD
               "&csrfmiddlewaretoken=" TL_CSRF,
               guest_login_view, NULL);
    ck_assert_int_eq(h.status, 302);
    char session[256], cookie[300];
    ck_assert(tl_http_cookie(&h, "sessionid", session, sizeof session));
    tl_http_free(&h);
    snprintf(cookie, sizeof cookie, "%s", session);
    const char *subjects[] = {"sub-one", "sub-two"};
    for (int i = 0; i < 2; i++) {
        sign_in s = {.subject = subjects[i]};
        tl_http_init(&h, "POST", "/");
        tl_http_add(&h, "Cookie", cookie);
        tl_http_run(ctx, &h, sign_in_handler, &s);
        tl_http_free(&h);
        ck_assert_msg(s.st == GUEST_OK, "%s: %s", guest_status_name(s.st),
                      s.err.message);
        ck_assert_int_eq(s.oc, GUEST_IDENTITY_LINKED);
    }
    int n = 0;
    ck_assert_int_eq(guest_identities_list(ctx, uid, count_all, &n, NULL),
                     GUEST_OK);
    ck_assert_int_eq(n, 2);
    n = 0;
    ck_assert_int_eq(guest_identities_list(ctx, uid, stop_after_one, &n, NULL),
                     GUEST_OK);
    ck_assert_int_eq(n, 1);
    guest_error err = {0};
    ck_assert_int_eq(guest_identities_list(NULL, uid, count_all, &n, &err),
                     GUEST_ERR_INVALID);
    ck_assert_int_eq(guest_identities_list(ctx, uid, NULL, &n, &err),
                     GUEST_ERR_INVALID);
    /* Unlinking from a user that does not exist. */
    ck_assert_int_eq(guest_identity_unlink(ctx, uid + 1000,
                                           "https://issuer.example", "sub-one",
                                           &err),
                     GUEST_ERR_NOT_FOUND);
    n = 0;
    ck_assert_int_eq(guest_identities_list(ctx, uid, count_all, &n, NULL),
                     GUEST_OK);
    ck_assert_int_eq(n, 2);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(names_that_cannot_exist_are_not_found)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, NULL);
    tl_new_user(ctx, "real", TL_PASSWORD);
    static const char bad[] = "re\xff"
                              "al";
    guest_error err = {0};
    int64_t id = -1;
    bool has_password = true;
    ck_assert_int_eq(guest_user_lookup(ctx, bad, &id, &has_password, &err),
                     GUEST_ERR_NOT_FOUND);
    ck_assert_int_eq(guest_user_lookup(NULL, "real", &id, &has_password, &err),
                     GUEST_ERR_INVALID);
    ck_assert_int_eq(guest_user_lookup(ctx, "real", &id, &has_password, &err),
                     GUEST_OK);
    ck_assert_int_gt(id, 0);
    ck_assert(has_password);
    ck_assert_int_eq(guest_user_set_active(ctx, bad, false, &err),
                     GUEST_ERR_NOT_FOUND);
    guest_form_errors errors;
    ck_assert_int_eq(
        guest_user_set_password(ctx, bad, "Other-Quill-94", &errors, &err),
        GUEST_ERR_NOT_FOUND);
    ck_assert_int_eq(
        guest_user_set_password(ctx, "", "Other-Quill-94", &errors, &err),
        GUEST_ERR_NOT_FOUND);
    char *payload = (char *)"untouched";
    ck_assert_int_eq(guest_flow_take(NULL, "key", "binding", &payload, &err),
                     GUEST_ERR_INVALID);
    ck_assert_ptr_null(payload);
    /* The real one is still there and active. */
    ck_assert_int_eq(tl_scalar_in(SCHEMA, "SELECT count(*) FROM @.users"
                                          " WHERE is_active"),
                     1);
    guest_ctx_free(ctx);
}
END_TEST

/* What the handler saw of the request's framing headers. */
static void lengths(guest_req *req, void *ud)
{
    (void)ud;
    const char *len = guest_req_header(req, "Content-Length");
    guest_res_send(req, 200, "text/plain", len ? len : "(none)");
}

START_TEST(the_test_client_refuses_what_it_could_not_send)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, NULL);
    guest_test_client *c = NULL;
    ck_assert_int_eq(guest_test_client_new(ctx, lengths, NULL, &c), GUEST_OK);
    ck_assert_int_eq(guest_test_client_set_header(c, "X-Test", "a\r\nX-B: 1"),
                     GUEST_ERR_INVALID);
    ck_assert_int_eq(guest_test_client_set_header(c, "", "v"),
                     GUEST_ERR_INVALID);
    ck_assert_int_eq(guest_test_client_set_remote_addr(NULL, "10.0.0.1"),
                     GUEST_ERR_INVALID);
    guest_test_response *r = NULL;
    ck_assert_int_eq(guest_test_request(c, "", "/", NULL, NULL, 0, &r),
                     GUEST_ERR_INVALID);
    ck_assert_ptr_null(r);
    /* The body's real length, whatever the client was told. */
    ck_assert_int_eq(guest_test_client_set_header(c, "Content-Length", "99"),
                     GUEST_OK);
    ck_assert_int_eq(
        guest_test_request(c, "POST", "/", "text/plain", "hello", 5, &r),
        GUEST_OK);
    ck_assert_int_eq(guest_test_response_status(r), 200);
    ck_assert_str_eq(guest_test_response_body(r, NULL), "5");
    guest_test_response_free(r);
    guest_test_client_free(c);
    guest_ctx_free(ctx);
}
END_TEST

/* Guests made from an IPv6 address count in its /64, /56 and /48; a key
 * as listed lifts that counter only. */
static bool count_guest_rows(const guest_rate_limit_info *info, void *ud)
{
    if (!strcmp(info->kind, "guest"))
        (*(int *)ud)++;
    return true;
}

static void guest_limited(guest_config *c)
{
    c->guest_rate_limit = 100;
}

START_TEST(a_client_key_as_listed_is_reset_alone)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, guest_limited);
    tl_http h;
    tl_created made = {0};
    tl_http_init(&h, "GET", "/");
    h.peer = "2001:db8:1:2::5";
    tl_http_run(ctx, &h, tl_create_handler, &made);
    tl_http_free(&h);
    ck_assert_int_eq(made.st, GUEST_OK);
    int rows = 0;
    ck_assert_int_eq(
        guest_rate_limits_list(ctx, 0, count_guest_rows, &rows, NULL),
        GUEST_OK);
    ck_assert_int_eq(rows, 3);
    uint64_t deleted = 9;
    ck_assert_int_eq(
        guest_rate_limits_reset(ctx, "2001:db8:1::/48", &deleted, NULL),
        GUEST_OK);
    ck_assert_uint_eq(deleted, 1);
    rows = 0;
    ck_assert_int_eq(
        guest_rate_limits_list(ctx, 0, count_guest_rows, &rows, NULL),
        GUEST_OK);
    ck_assert_int_eq(rows, 2);
    /* No client without an address here: nothing to lift. */
    ck_assert_int_eq(guest_rate_limits_reset(ctx, "unknown", &deleted, NULL),
                     GUEST_OK);
    ck_assert_uint_eq(deleted, 0);
    guest_ctx_free(ctx);
}
END_TEST

/* A handler's writes of nothing: NULL with a length is refused, NULL HTML
 * writes nothing; the page is what was written. */
static void null_writes(guest_req *req, void *ud)
{
    guest_status *st = ud;
    guest_res_set_status(req, 200);
    st[0] = guest_res_write(req, NULL, 5);
    st[1] = guest_res_write_html(req, NULL);
    st[2] = guest_res_write_html(req, "<a&b>");
}

START_TEST(writing_nothing_writes_nothing)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, NULL);
    guest_status st[3] = {GUEST_OK, GUEST_ERR_DB, GUEST_ERR_DB};
    tl_http h;
    tl_http_init(&h, "GET", "/");
    tl_http_run(ctx, &h, null_writes, st);
    ck_assert_int_eq(st[0], GUEST_ERR_INVALID);
    ck_assert_int_eq(st[1], GUEST_OK);
    ck_assert_int_eq(st[2], GUEST_OK);
    ck_assert_int_eq(h.status, 200);
    ck_assert_str_eq(h.res_body, "&lt;a&amp;b&gt;");
    tl_http_free(&h);
    /* A view given no request does nothing. */
    guest_logout_view(NULL, NULL);
    guest_ctx_free(ctx);
}
END_TEST

/* Extra sign-up fields the convert view cannot render safely are a
 * configuration error (500), never a page with broken markup. */
START_TEST(unsafe_signup_fields_are_a_configuration_error)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, NULL);
    char cookie[128];
    tl_new_guest(ctx, cookie, sizeof cookie);
    static const guest_signup_field spaced[] = {{"bad name", "x", NULL, false}};
    static const guest_signup_field next[] = {{"next", "x", NULL, false}};
    static const guest_signup_field fine[] = {{"terms", "x", NULL, false}};
    struct {
        const guest_signup_field *fields;
        size_t count;
        int status;
    } cases[] = {
        {NULL, 1, 500}, {spaced, 1, 500}, {next, 1, 500}, {fine, 1, 200}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        guest_views v;
        guest_views_init(&v);
        v.signup.fields = cases[i].fields;
        v.signup.field_count = cases[i].count;
        tl_http h;
        tl_request(ctx, &h, "GET", "/convert/", cookie, NULL, NULL,
                   guest_convert_view, &v);
        ck_assert_msg(h.status == cases[i].status, "case %zu: %d", i, h.status);
        if (cases[i].status == 500)
            ck_assert_ptr_null(strstr(h.res_body, "<form"));
        tl_http_free(&h);
    }
    guest_ctx_free(ctx);
}
END_TEST

/* Empty strings in the optional settings mean "not set"; an empty cookie
 * name and a config struct of an unknown size are refused. */
START_TEST(empty_settings_are_unset_and_malformed_ones_refused)
{
    guest_config cfg;
    tl_config(&cfg, SCHEMA);
    cfg.mail_from = "";
    cfg.public_url = "";
    cfg.cookie_domain = "";
    cfg.db_read_conninfo = "";
    cfg.session_cache_listen_conninfo = "";
    guest_ctx *ctx = tl_ctx_new(&cfg);
    const guest_config *got = guest_ctx_config(ctx);
    ck_assert_ptr_null(got->mail_from);
    ck_assert_ptr_null(got->public_url);
    ck_assert_ptr_null(got->cookie_domain);
    ck_assert_ptr_null(got->db_read_conninfo);
    ck_assert_ptr_null(got->session_cache_listen_conninfo);
    /* Without mail settings a reset sends nothing: a configuration error. */
    tl_http h;
    tl_http_init(&h, "POST", "/");
    guest_status st = GUEST_OK;
    tl_http_run(ctx, &h, reset_request, &st);
    tl_http_free(&h);
    ck_assert_int_eq(st, GUEST_ERR_CONFIG);
    /* No cookie is scoped to a domain. */
    char cookie[128];
    tl_new_guest(ctx, cookie, sizeof cookie);
    tl_http_init(&h, "GET", "/");
    tl_created made = {0};
    tl_http_run(ctx, &h, tl_create_handler, &made);
    ck_assert_int_eq(made.st, GUEST_OK);
    const char *set = tl_http_res_header(&h, "Set-Cookie");
    ck_assert_ptr_nonnull(set);
    ck_assert_ptr_null(strcasestr(set, "Domain="));
    tl_http_free(&h);
    guest_ctx_free(ctx);

    guest_error err = {0};
    tl_config(&cfg, SCHEMA);
    cfg.cookie_name = "";
    ctx = NULL;
    ck_assert_int_eq(guest_ctx_new(&cfg, &ctx, &err), GUEST_ERR_CONFIG);
    ck_assert_ptr_null(ctx);
    tl_config(&cfg, SCHEMA);
    cfg.size = 3;
    ck_assert_int_eq(guest_ctx_new(&cfg, &ctx, &err), GUEST_ERR_CONFIG);
    ck_assert_ptr_null(ctx);

    /* The name generators refuse what they cannot write into. */
    char name[GUEST_USERNAME_BUF];
    ck_assert_int_eq(guest_name_numbered(NULL, name, sizeof name, NULL),
                     GUEST_ERR_INVALID);
    ck_assert_int_eq(guest_name_friendly(&cfg, NULL, 0, NULL),
                     GUEST_ERR_INVALID);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cov_misuse");
    TCase *tc = tcase_create("misuse");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, listing_identities_stops_when_told);
    tcase_add_test(tc, names_that_cannot_exist_are_not_found);
    tcase_add_test(tc, the_test_client_refuses_what_it_could_not_send);
    tcase_add_test(tc, a_client_key_as_listed_is_reset_alone);
    tcase_add_test(tc, writing_nothing_writes_nothing);
    tcase_add_test(tc, unsafe_signup_fields_are_a_configuration_error);
    tcase_add_test(tc, empty_settings_are_unset_and_malformed_ones_refused);
    suite_add_tcase(s, tc);
    return tl_run(s);
}

/* E-mail on accounts at sign-in, against the fixture database:
 * login_with_email (a verified address in place of the username, an
 * unverified one never, the same round trips for known and unknown
 * addresses). */
#include <stdio.h>
#include <string.h>

#include "store/store.h"
#include "testlib.h"

#define SCHEMA "t_email_signup"

static void setup(void)
{
    tl_drop_schema(SCHEMA);
}

static void mail_on(guest_config *c)
{
    c->mail_from = "Test site <noreply@example.test>";
    c->public_url = "https://example.test/";
}

static void login_with_email_on(guest_config *c)
{
    mail_on(c);
    c->login_with_email = true;
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

/* login_with_email: a verified address (any case) in place of the name;
 * an unverified one never; off, an address is only a name. A refusal
 * costs the same round trips for a known, an unverified and an unknown
 * address. */
START_TEST(login_with_a_verified_address)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, login_with_email_on);
    int64_t dee = tl_new_user(ctx, "dee", TL_PASSWORD);
    set_address(dee, "dee@example.test", true);
    int64_t eve = tl_new_user(ctx, "eve", TL_PASSWORD);
    set_address(eve, "eve@example.test", false);
    ck_assert(can_log_in(ctx, "DEE@example.test", TL_PASSWORD));
    ck_assert(can_log_in(ctx, "dee", TL_PASSWORD));
    ck_assert(!can_log_in(ctx, "dee@example.test", "Wrong-Quill-11"));
    ck_assert(!can_log_in(ctx, "eve@example.test", TL_PASSWORD));
    ck_assert(!can_log_in(ctx, "nobody@example.test", TL_PASSWORD));
    const char *asks[] = {"dee@example.test", "eve@example.test",
                          "who@example.test"};
    unsigned long trips[3];
    for (int i = 0; i < 3; i++) {
        unsigned long before = guest__db_round_trips;
        ck_assert(!can_log_in(ctx, asks[i], "Wrong-Quill-12"));
        trips[i] = guest__db_round_trips - before;
    }
    ck_assert_uint_eq(trips[0], trips[1]);
    ck_assert_uint_eq(trips[0], trips[2]);
    guest_ctx_free(ctx);
    /* off: an address is a name nobody has */
    ctx = tl_ctx(SCHEMA, mail_on);
    ck_assert(!can_log_in(ctx, "dee@example.test", TL_PASSWORD));
    ck_assert(can_log_in(ctx, "dee", TL_PASSWORD));
    guest_ctx_free(ctx);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("email_signup");
    TCase *t = tcase_create("db");
    tcase_add_checked_fixture(t, setup, NULL);
    tcase_set_timeout(t, 120);
    tcase_add_test(t, login_with_a_verified_address);
    suite_add_tcase(s, t);
    return tl_run(s);
}

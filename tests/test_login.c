/* guest_login() and guest_logout(, NULL) against the fixture database: session
 * rotation, last_login, the on_guest_login hook, hash renewal, Django
 * hashes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"

#define SCHEMA "t_login"

typedef struct attempt {
    const char *username, *password;
    guest_status st;
    guest_form_errors errors;
    int64_t after_id;
    bool logout;
    guest_error err;
} attempt;

static void login_handler(guest_req *req, void *ud)
{
    attempt *a = ud;
    a->err = (guest_error){0};
    a->st = a->logout ? guest_logout(req, &a->err)
                      : guest_login(req, a->username, a->password, &a->errors,
                                    &a->err);
    const guest_user *u;
    ck_assert_int_eq(guest_req_user(req, &u, NULL), GUEST_OK);
    a->after_id = guest_user_id(u);
}

static void run(guest_ctx *ctx, tl_http *h, const char *cookie, attempt *a)
{
    tl_http_init(h, "POST", "/accounts/login/");
    if (cookie && *cookie)
        tl_http_add(h, "Cookie", cookie);
    tl_http_run(ctx, h, login_handler, a);
}

static long long count(const char *sql)
{
    return tl_scalar_in(SCHEMA, sql);
}

START_TEST(login_rotates_session_and_sets_last_login)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, NULL);
    int64_t id = tl_new_user(ctx, "alice", TL_PASSWORD);
    ck_assert_int_eq(count("SELECT count(*) FROM @.users"
                           " WHERE last_login IS NULL"),
                     1);
    tl_http h;
    attempt a = {.username = "alice", .password = TL_PASSWORD};
    run(ctx, &h, NULL, &a);
    ck_assert_int_eq(a.st, GUEST_OK);
    ck_assert_int_eq(a.after_id, id);
    char s1[128];
    ck_assert(tl_http_cookie(&h, "sessionid", s1, sizeof s1));
    const char *set = NULL;
    for (int i = 0; i < h.nres_headers; i++)
        if (!strncmp(h.res_headers[i][1], "sessionid=", 10))
            set = h.res_headers[i][1];
    ck_assert_ptr_nonnull(strstr(set, "HttpOnly"));
    char csrf[128];
    ck_assert(tl_http_cookie(&h, "csrftoken", csrf, sizeof csrf));
    tl_http_free(&h);
    ck_assert_int_eq(count("SELECT count(*) FROM @.users"
                           " WHERE last_login > now() - interval '1 minute'"),
                     1);
    ck_assert_int_eq(tl_whoami(ctx, s1, NULL), id);

    /* logging in again from that session replaces its row */
    run(ctx, &h, s1, &a);
    ck_assert_int_eq(a.st, GUEST_OK);
    char s2[128];
    ck_assert(tl_http_cookie(&h, "sessionid", s2, sizeof s2));
    tl_http_free(&h);
    ck_assert_str_ne(s1, s2);
    ck_assert_int_eq(tl_whoami(ctx, s1, NULL), 0);
    ck_assert_int_eq(tl_whoami(ctx, s2, NULL), id);
    ck_assert_int_eq(count("SELECT count(*) FROM @.sessions"), 1);

    /* another account from the same browser: the first session ends */
    int64_t bob = tl_new_user(ctx, "bob", TL_PASSWORD);
    attempt b = {.username = "bob", .password = TL_PASSWORD};
    run(ctx, &h, s2, &b);
    ck_assert_int_eq(b.st, GUEST_OK);
    char s3[128];
    ck_assert(tl_http_cookie(&h, "sessionid", s3, sizeof s3));
    tl_http_free(&h);
    ck_assert_int_eq(tl_whoami(ctx, s2, NULL), 0);
    ck_assert_int_eq(tl_whoami(ctx, s3, NULL), bob);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(bad_credentials_are_refused_alike)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, NULL);
    tl_new_user(ctx, "alice", TL_PASSWORD);
    tl_new_user(ctx, "inactive", TL_PASSWORD);
    tl_exec_in(SCHEMA, "UPDATE @.users SET is_active = false"
                       " WHERE username = 'inactive'");
    char gcookie[128], gname[GUEST_USERNAME_BUF];
    tl_new_guest(ctx, gcookie, sizeof gcookie);
    tl_text_in(SCHEMA,
               "SELECT u.username FROM @.users u JOIN @.guests g"
               " ON g.user_id = u.id",
               gname, sizeof gname);
    /* even a guest that somehow has a password never logs in by name */
    char hash[GUEST_PASSWORD_HASH_BUF];
    ck_assert_int_eq(guest_password_hash(TL_PASSWORD, 1000, hash, sizeof hash),
                     GUEST_OK);
    char sql[1024];
    snprintf(sql, sizeof sql,
             "UPDATE @.users SET password = '%s' WHERE username = '%s'", hash,
             gname);
    tl_exec_in(SCHEMA, sql);
    tl_new_user(ctx, "unusable", TL_PASSWORD);
    tl_exec_in(SCHEMA, "UPDATE @.users SET password = '!' || password"
                       " WHERE username = 'unusable'");

    const char *msg = "Please enter a correct username and password. Note "
                      "that both fields may be case-sensitive.";
    struct {
        const char *u, *p;
    } cases[] = {
        {"alice", "wrong-password-1"}, {"Alice", TL_PASSWORD},
        {"nobody", TL_PASSWORD},       {"inactive", TL_PASSWORD},
        {gname, TL_PASSWORD},          {"unusable", TL_PASSWORD},
        {"bad\xff", TL_PASSWORD},      {"a' OR '1'='1", TL_PASSWORD},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        tl_http h;
        attempt a = {.username = cases[i].u, .password = cases[i].p};
        run(ctx, &h, NULL, &a);
        ck_assert_msg(a.st == GUEST_ERR_AUTH, "case %zu: %s", i,
                      guest_status_name(a.st));
        ck_assert_str_eq(guest_form_errors_get(&a.errors, "__all__"), msg);
        ck_assert_ptr_null(tl_http_res_header(&h, "Set-Cookie"));
        ck_assert_int_eq(a.after_id, 0);
        tl_http_free(&h);
    }
    /* missing fields */
    tl_http h;
    attempt a = {.username = ""};
    run(ctx, &h, NULL, &a);
    tl_http_free(&h);
    ck_assert_int_eq(a.st, GUEST_ERR_VALIDATION);
    ck_assert_str_eq(guest_form_errors_get(&a.errors, "username"),
                     "This field is required.");
    ck_assert_str_eq(guest_form_errors_get(&a.errors, "password"),
                     "This field is required.");
    /* only the guest's own session was ever made */
    ck_assert_int_eq(count("SELECT count(*) FROM @.sessions"), 1);
    ck_assert_int_eq(count("SELECT count(*) FROM @.users"
                           " WHERE last_login IS NOT NULL"),
                     0);
    ck_assert_int_eq(guest_login(NULL, "a", "b", NULL, NULL),
                     GUEST_ERR_INVALID);
    guest_ctx_free(ctx);
}
END_TEST

/* ---- a guest logging into an existing account ---- */

typedef enum { HOOK_MOVE, HOOK_FAIL, HOOK_BAD_SQL } hook_mode;
static struct {
    hook_mode mode;
    int calls;
    int64_t guest_id, user_id;
    bool guest_was_guest;
} hook;

static guest_status on_guest_login(const guest_user *guest,
                                   const guest_user *user, guest_db *db,
                                   void *ud)
{
    ck_assert_ptr_eq(ud, &hook);
    hook.calls++;
    hook.guest_id = guest_user_id(guest);
    hook.user_id = guest_user_id(user);
    hook.guest_was_guest = guest_is_guest_user(guest);
    ck_assert(guest_is_regular_user(user));
    if (hook.mode == HOOK_FAIL)
        return GUEST_ERR_CANCELLED;
    char from[32], to[32];
    snprintf(from, sizeof from, "%lld", (long long)hook.guest_id);
    snprintf(to, sizeof to, "%lld", (long long)hook.user_id);
    const char *params[] = {from, to};
    if (hook.mode == HOOK_BAD_SQL) {
        /* the hook ignores its failed statement; the library does not */
        guest_status ignored = guest_db_exec(
            db, "UPDATE t_login_app.notes SET nope = 1", 0, NULL, NULL);
        (void)ignored;
        return GUEST_OK;
    }
    return guest_db_exec(db,
                         "UPDATE t_login_app.notes SET owner = $2"
                         " WHERE owner = $1",
                         2, params, NULL);
}

static void setup(void)
{
    tl_drop_schema(SCHEMA);
    memset(&hook, 0, sizeof hook);
}

static void with_hook(guest_config *c)
{
    c->on_guest_login = on_guest_login;
    c->on_guest_login_userdata = &hook;
}

static void notes_table(void)
{
    tl_exec("DROP SCHEMA IF EXISTS t_login_app CASCADE");
    tl_exec("CREATE SCHEMA t_login_app");
    tl_exec("CREATE TABLE t_login_app.notes (id serial PRIMARY KEY,"
            " owner bigint NOT NULL REFERENCES t_login.users(id)"
            " ON DELETE CASCADE, body text)");
}

START_TEST(guest_login_hook_moves_data_then_guest_is_deleted)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, with_hook);
    notes_table();
    int64_t uid = tl_new_user(ctx, "alice", TL_PASSWORD);
    char cookie[128];
    int64_t gid = tl_new_guest(ctx, cookie, sizeof cookie);
    char sql[160];
    snprintf(sql, sizeof sql,
             "INSERT INTO t_login_app.notes (owner, body) VALUES (%lld, 'a'),"
             " (%lld, 'b')",
             (long long)gid, (long long)gid);
    tl_exec(sql);

    /* a failing hook: nothing happens */
    hook.mode = HOOK_FAIL;
    tl_http h;
    attempt a = {.username = "alice", .password = TL_PASSWORD};
    run(ctx, &h, cookie, &a);
    ck_assert_int_eq(a.st, GUEST_ERR_HOOK);
    /* the detail names the hook and what it returned */
    ck_assert_int_eq(a.err.status, GUEST_ERR_HOOK);
    ck_assert_ptr_nonnull(strstr(a.err.message, "on_guest_login"));
    ck_assert_ptr_nonnull(strstr(a.err.message, "GUEST_ERR_CANCELLED"));
    ck_assert_ptr_null(tl_http_res_header(&h, "Set-Cookie"));
    tl_http_free(&h);
    bool g = false;
    ck_assert_int_eq(tl_whoami(ctx, cookie, &g), gid);
    ck_assert(g);
    ck_assert_int_eq(count("SELECT count(*) FROM @.users"
                           " WHERE last_login IS NOT NULL"),
                     0);

    /* a hook whose statement fails: rolled back too */
    hook.mode = HOOK_BAD_SQL;
    run(ctx, &h, cookie, &a);
    tl_http_free(&h);
    ck_assert_int_eq(a.st, GUEST_ERR_DB);
    /* libpq's detail of the hook's statement reaches the caller, although
     * the hook passed no guest_error of its own */
    ck_assert_int_eq(a.err.status, GUEST_ERR_DB);
    ck_assert_msg(strstr(a.err.message, "42703") &&
                      strstr(a.err.message, "nope"),
                  "%s", a.err.message);
    ck_assert_int_eq(tl_whoami(ctx, cookie, &g), gid);

    /* the hook moves the notes; the guest is gone with its session */
    hook.mode = HOOK_MOVE;
    hook.calls = 0;
    run(ctx, &h, cookie, &a);
    ck_assert_int_eq(a.st, GUEST_OK);
    ck_assert_int_eq(a.after_id, uid);
    char fresh[128];
    ck_assert(tl_http_cookie(&h, "sessionid", fresh, sizeof fresh));
    tl_http_free(&h);
    ck_assert_int_eq(hook.calls, 1);
    ck_assert_int_eq(hook.guest_id, gid);
    ck_assert_int_eq(hook.user_id, uid);
    ck_assert(hook.guest_was_guest);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM t_login_app.notes WHERE owner = %lld",
             (long long)uid);
    ck_assert_int_eq(tl_scalar(sql), 2);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM @.users WHERE id = %lld",
             (long long)gid);
    ck_assert_int_eq(count(sql), 0);
    ck_assert_int_eq(count("SELECT count(*) FROM @.guests"), 0);
    ck_assert_int_eq(count("SELECT count(*) FROM @.sessions"), 1);
    ck_assert_int_eq(tl_whoami(ctx, cookie, NULL), 0);
    ck_assert_int_eq(tl_whoami(ctx, fresh, NULL), uid);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(guest_login_without_hook_still_deletes_guest)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, NULL);
    int64_t uid = tl_new_user(ctx, "alice", TL_PASSWORD);
    char cookie[128];
    tl_new_guest(ctx, cookie, sizeof cookie);
    tl_http h;
    attempt a = {.username = "alice", .password = TL_PASSWORD};
    run(ctx, &h, cookie, &a);
    tl_http_free(&h);
    ck_assert_int_eq(a.st, GUEST_OK);
    ck_assert_int_eq(a.after_id, uid);
    ck_assert_int_eq(count("SELECT count(*) FROM @.users"), 1);
    guest_ctx_free(ctx);
}
END_TEST

/* ---- hashes ---- */

static void iterations_500(guest_config *c)
{
    c->password_iterations = 500;
}

START_TEST(old_iteration_count_is_renewed_on_login)
{
    guest_ctx *old = tl_ctx(SCHEMA, iterations_500);
    tl_new_user(old, "alice", TL_PASSWORD);
    guest_ctx_free(old);
    char hash[256];
    tl_text_in(SCHEMA, "SELECT password FROM @.users", hash, sizeof hash);
    ck_assert(!strncmp(hash, "pbkdf2_sha256$500$", 18));

    guest_ctx *ctx = tl_ctx(SCHEMA, NULL);
    tl_http h;
    /* a wrong password leaves the stored hash as it was */
    attempt bad = {.username = "alice", .password = "wrong-password-1"};
    run(ctx, &h, NULL, &bad);
    tl_http_free(&h);
    ck_assert_int_eq(bad.st, GUEST_ERR_AUTH);
    char unchanged[256];
    tl_text_in(SCHEMA, "SELECT password FROM @.users", unchanged,
               sizeof unchanged);
    ck_assert_str_eq(unchanged, hash);
    attempt a = {.username = "alice", .password = TL_PASSWORD};
    run(ctx, &h, NULL, &a);
    tl_http_free(&h);
    ck_assert_int_eq(a.st, GUEST_OK);
    tl_text_in(SCHEMA, "SELECT password FROM @.users", hash, sizeof hash);
    ck_assert(!strncmp(hash, "pbkdf2_sha256$1000$", 19));
    ck_assert(guest_password_verify(TL_PASSWORD, hash));
    run(ctx, &h, NULL, &a);
    tl_http_free(&h);
    ck_assert_int_eq(a.st, GUEST_OK);
    guest_ctx_free(ctx);
}
END_TEST

static void iterations_5000(guest_config *c)
{
    c->password_iterations = 5000;
}

START_TEST(higher_iteration_count_is_kept_on_login)
{
    guest_ctx *strong = tl_ctx(SCHEMA, iterations_5000);
    tl_new_user(strong, "alice", TL_PASSWORD);
    guest_ctx_free(strong);
    char before[256], after[256];
    tl_text_in(SCHEMA, "SELECT password FROM @.users", before, sizeof before);
    ck_assert(!strncmp(before, "pbkdf2_sha256$5000$", 19));

    /* a context configured lower never weakens a stored hash */
    guest_ctx *ctx = tl_ctx(SCHEMA, NULL);
    tl_http h;
    attempt a = {.username = "alice", .password = TL_PASSWORD};
    run(ctx, &h, NULL, &a);
    tl_http_free(&h);
    ck_assert_int_eq(a.st, GUEST_OK);
    tl_text_in(SCHEMA, "SELECT password FROM @.users", after, sizeof after);
    ck_assert_str_eq(after, before);
    ck_assert_int_eq(count("SELECT count(*) FROM @.users"
                           " WHERE last_login IS NOT NULL"),
                     1);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(django_made_hash_logs_in)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, NULL);
    /* as Django's make_password stores it (see test_accounts_units) */
    tl_exec_in(SCHEMA, "INSERT INTO @.users (username, password) VALUES"
                       " ('django', 'pbkdf2_sha256$1000$seasalt0123456789abcd$"
                       "DaSjmvXI8JE4pKdqqSQ68oJC9FcMvsWEzKI7yFiPhG4=')");
    tl_http h;
    attempt a = {.username = "django",
                 .password = "correct horse battery staple"};
    run(ctx, &h, NULL, &a);
    tl_http_free(&h);
    ck_assert_int_eq(a.st, GUEST_OK);
    /* iterations match the config: the stored hash is left alone */
    char hash[256];
    tl_text_in(SCHEMA, "SELECT password FROM @.users", hash, sizeof hash);
    ck_assert_str_eq(hash, "pbkdf2_sha256$1000$seasalt0123456789abcd$"
                           "DaSjmvXI8JE4pKdqqSQ68oJC9FcMvsWEzKI7yFiPhG4=");
    guest_ctx_free(ctx);
}
END_TEST

/* ---- logout ---- */

START_TEST(logout_ends_the_session_only)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, NULL);
    int64_t uid = tl_new_user(ctx, "alice", TL_PASSWORD);
    tl_http h;
    attempt a = {.username = "alice", .password = TL_PASSWORD};
    run(ctx, &h, NULL, &a);
    char s[128];
    ck_assert(tl_http_cookie(&h, "sessionid", s, sizeof s));
    tl_http_free(&h);
    ck_assert_int_eq(tl_whoami(ctx, s, NULL), uid);

    attempt out = {.logout = true};
    run(ctx, &h, s, &out);
    ck_assert_int_eq(out.st, GUEST_OK);
    ck_assert_int_eq(out.after_id, 0);
    char cleared[128];
    ck_assert(tl_http_cookie(&h, "sessionid", cleared, sizeof cleared));
    ck_assert_str_eq(cleared, "sessionid=\"\"");
    ck_assert_ptr_nonnull(
        strstr(tl_http_res_header(&h, "Set-Cookie"), "Max-Age=0"));
    tl_http_free(&h);
    ck_assert_int_eq(tl_whoami(ctx, s, NULL), 0);
    ck_assert_int_eq(count("SELECT count(*) FROM @.sessions"), 0);
    ck_assert_int_eq(count("SELECT count(*) FROM @.users"), 1);

    /* a guest logs out: its session ends, the account waits for cleanup */
    char g[128];
    int64_t gid = tl_new_guest(ctx, g, sizeof g);
    run(ctx, &h, g, &out);
    tl_http_free(&h);
    ck_assert_int_eq(out.st, GUEST_OK);
    ck_assert_int_eq(tl_whoami(ctx, g, NULL), 0);
    char sql[96];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM @.guests WHERE user_id = %lld",
             (long long)gid);
    ck_assert_int_eq(count(sql), 1);

    /* no session at all is fine too */
    run(ctx, &h, NULL, &out);
    tl_http_free(&h);
    ck_assert_int_eq(out.st, GUEST_OK);
    ck_assert_int_eq(guest_logout(NULL, NULL), GUEST_ERR_INVALID);
    guest_ctx_free(ctx);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("login");
    TCase *tc = tcase_create("login");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, login_rotates_session_and_sets_last_login);
    tcase_add_test(tc, bad_credentials_are_refused_alike);
    tcase_add_test(tc, guest_login_hook_moves_data_then_guest_is_deleted);
    tcase_add_test(tc, guest_login_without_hook_still_deletes_guest);
    tcase_add_test(tc, old_iteration_count_is_renewed_on_login);
    tcase_add_test(tc, higher_iteration_count_is_kept_on_login);
    tcase_add_test(tc, django_made_hash_logs_in);
    tcase_add_test(tc, logout_ends_the_session_only);
    suite_add_tcase(s, tc);
    return tl_run(s);
}

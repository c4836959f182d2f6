/* guest_convert(), guest_user_create() and custom sign-up fields against
 * the fixture database, including the two races. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testlib.h"

#define SCHEMA "t_convert"

/* What a conversion on one request saw and did. */
typedef struct conv {
    const char *username, *password1, *password2;
    const guest_signup *signup;
    const char *form_body; /* urlencoded extra fields, or NULL */
    pthread_barrier_t *barrier;
    guest_status st;
    guest_form_errors errors;
    bool after_is_regular;
    int64_t after_id;
    char after_name[GUEST_USERNAME_BUF];
} conv;

static void convert_handler(guest_req *req, void *ud)
{
    conv *c = ud;
    const guest_user *u;
    /* Both racers look at the visitor first, so both start as guests. */
    ck_assert_int_eq(guest_req_user(req, &u, NULL), GUEST_OK);
    if (c->barrier)
        pthread_barrier_wait(c->barrier);
    guest_form *form = NULL;
    if (c->form_body)
        ck_assert_int_eq(
            guest_form_parse(c->form_body, strlen(c->form_body), &form, NULL),
            GUEST_OK);
    c->st = guest_convert_with(req, c->username, c->password1, c->password2,
                               c->signup, form, &c->errors, NULL);
    guest_form_free(form);
    ck_assert_int_eq(guest_req_user(req, &u, NULL), GUEST_OK);
    c->after_is_regular = guest_is_regular_user(u);
    c->after_id = guest_user_id(u);
    snprintf(c->after_name, sizeof c->after_name, "%s", guest_user_name(u));
}

static void run_convert(guest_ctx *ctx, tl_http *h, const char *cookie, conv *c)
{
    tl_http_init(h, "POST", "/convert/");
    if (cookie)
        tl_http_add(h, "Cookie", cookie);
    tl_http_run(ctx, h, convert_handler, c);
}

static conv simple(const char *name, const char *p1, const char *p2)
{
    conv c = {.username = name, .password1 = p1, .password2 = p2};
    return c;
}

/* Observed by on_converted, with what the database said at that moment. */
static struct {
    int calls;
    int64_t id;
    char name[GUEST_USERNAME_BUF];
    long long guest_rows;
} converted;

static void on_converted(const guest_user *user, void *ud)
{
    ck_assert_ptr_eq(ud, &converted);
    converted.calls++;
    converted.id = guest_user_id(user);
    snprintf(converted.name, sizeof converted.name, "%s",
             guest_user_name(user));
    ck_assert(guest_is_regular_user(user));
    char sql[128];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM t_convert.guests WHERE user_id = %lld",
             (long long)converted.id);
    /* a separate connection: only committed rows are visible */
    converted.guest_rows = tl_scalar(sql);
}

static void setup(void)
{
    tl_drop_schema(SCHEMA);
    memset(&converted, 0, sizeof converted);
}

static void with_hook(guest_config *c)
{
    c->on_converted = on_converted;
    c->on_converted_userdata = &converted;
}

START_TEST(conversion_keeps_id_and_rotates_session)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, with_hook);
    char cookie[128];
    int64_t id = tl_new_guest(ctx, cookie, sizeof cookie);
    char old_name[GUEST_USERNAME_BUF];
    tl_text_in(SCHEMA, "SELECT username FROM @.users", old_name,
               sizeof old_name);

    tl_http h;
    conv c = simple("alice", TL_PASSWORD, TL_PASSWORD);
    run_convert(ctx, &h, cookie, &c);
    ck_assert_int_eq(c.st, GUEST_OK);
    ck_assert_uint_eq(c.errors.count, 0);
    /* the request's user is the account now */
    ck_assert(c.after_is_regular);
    ck_assert_int_eq(c.after_id, id);
    ck_assert_str_eq(c.after_name, "alice");

    /* same row, new name and Django hash, guest marker gone, last_login */
    ck_assert_int_eq(tl_scalar_in(SCHEMA, "SELECT count(*) FROM @.users"), 1);
    char hash[256];
    tl_text_in(SCHEMA, "SELECT password FROM @.users WHERE username = 'alice'",
               hash, sizeof hash);
    ck_assert(!strncmp(hash, "pbkdf2_sha256$1000$", 19));
    ck_assert(guest_password_verify(TL_PASSWORD, hash));
    ck_assert_int_eq(tl_scalar_in(SCHEMA, "SELECT count(*) FROM @.guests"), 0);
    ck_assert_int_eq(tl_scalar_in(SCHEMA, "SELECT count(*) FROM @.users"
                                          " WHERE last_login IS NOT NULL"),
                     1);

    /* a new session and cookie; the old token is dead at once */
    char fresh[128];
    ck_assert(tl_http_cookie(&h, "sessionid", fresh, sizeof fresh));
    ck_assert_str_ne(fresh, cookie);
    ck_assert_int_eq(tl_scalar_in(SCHEMA, "SELECT count(*) FROM @.sessions"),
                     1);
    bool g = true;
    ck_assert_int_eq(tl_whoami(ctx, cookie, NULL), 0);
    ck_assert_int_eq(tl_whoami(ctx, fresh, &g), id);
    ck_assert(!g);
    /* and a new CSRF secret */
    char csrf[128];
    ck_assert(tl_http_cookie(&h, "csrftoken", csrf, sizeof csrf));
    tl_http_free(&h);

    /* on_converted once, after the commit */
    ck_assert_int_eq(converted.calls, 1);
    ck_assert_int_eq(converted.id, id);
    ck_assert_str_eq(converted.name, "alice");
    ck_assert_int_eq(converted.guest_rows, 0);

    /* converting again: not a guest, nothing changes */
    conv again = simple("alice2", TL_PASSWORD, TL_PASSWORD);
    run_convert(ctx, &h, fresh, &again);
    tl_http_free(&h);
    ck_assert_int_eq(again.st, GUEST_ERR_NOT_GUEST);
    ck_assert_int_eq(tl_scalar_in(SCHEMA, "SELECT count(*) FROM @.users"
                                          " WHERE username = 'alice'"),
                     1);
    ck_assert_int_eq(converted.calls, 1);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(anonymous_and_registered_are_not_guests)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, with_hook);
    tl_http h;
    conv c = simple("bob", TL_PASSWORD, TL_PASSWORD);
    run_convert(ctx, &h, NULL, &c);
    tl_http_free(&h);
    ck_assert_int_eq(c.st, GUEST_ERR_NOT_GUEST);
    run_convert(ctx, &h, "sessionid=garbage", &c);
    tl_http_free(&h);
    ck_assert_int_eq(c.st, GUEST_ERR_NOT_GUEST);
    ck_assert_int_eq(tl_scalar_in(SCHEMA, "SELECT count(*) FROM @.users"), 0);
    ck_assert_int_eq(converted.calls, 0);
    ck_assert_int_eq(guest_convert(NULL, "a", "b", "b", NULL, NULL),
                     GUEST_ERR_INVALID);
    guest_ctx_free(ctx);
}
END_TEST

/* The guest is untouched: same name, still a guest, same session. */
static void assert_unchanged(guest_ctx *ctx, const char *cookie, int64_t id,
                             const char *name)
{
    bool g = false;
    ck_assert_int_eq(tl_whoami(ctx, cookie, &g), id);
    ck_assert(g);
    char now[GUEST_USERNAME_BUF];
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT username FROM @.users WHERE id = %lld",
             (long long)id);
    tl_text_in(SCHEMA, sql, now, sizeof now);
    ck_assert_str_eq(now, name);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM @.users WHERE id = %lld AND password = ''"
             " AND last_login IS NULL",
             (long long)id);
    ck_assert_int_eq(tl_scalar_in(SCHEMA, sql), 1);
}

START_TEST(invalid_input_changes_nothing)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, with_hook);
    tl_new_user(ctx, "taken", TL_PASSWORD);
    char cookie[128], name[GUEST_USERNAME_BUF];
    int64_t id = tl_new_guest(ctx, cookie, sizeof cookie);
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT username FROM @.users WHERE id = %lld",
             (long long)id);
    tl_text_in(SCHEMA, sql, name, sizeof name);

    static const struct {
        const char *u, *p1, *p2;
        guest_status st;
        const char *field, *message;
    } cases[] = {
        {"", TL_PASSWORD, TL_PASSWORD, GUEST_ERR_VALIDATION, "username",
         "This field is required."},
        {NULL, TL_PASSWORD, TL_PASSWORD, GUEST_ERR_VALIDATION, "username",
         "This field is required."},
        {"no spaces", TL_PASSWORD, TL_PASSWORD, GUEST_ERR_VALIDATION,
         "username",
         "Enter a valid username. This value may contain only letters, "
         "numbers, and @/./+/-/_ characters."},
        {"carol", "", TL_PASSWORD, GUEST_ERR_VALIDATION, "password1",
         "This field is required."},
        {"carol", TL_PASSWORD, NULL, GUEST_ERR_VALIDATION, "password2",
         "This field is required."},
        {"carol", TL_PASSWORD, "Quartz-Lantern-59", GUEST_ERR_VALIDATION,
         "password2", "The two password fields didn't match."},
        {"carol", "Qz-7", "Qz-7", GUEST_ERR_VALIDATION, "password2",
         "This password is too short. It must contain at least 8 "
         "characters."},
        {"carol", "password", "password", GUEST_ERR_VALIDATION, "password2",
         "This password is too common."},
        {"carol", "58204619377", "58204619377", GUEST_ERR_VALIDATION,
         "password2", "This password is entirely numeric."},
        {"carolinemiller", "CarolineMiller7", "CarolineMiller7",
         GUEST_ERR_VALIDATION, "password2",
         "The password is too similar to the username."},
        {"taken", TL_PASSWORD, TL_PASSWORD, GUEST_ERR_USERNAME_TAKEN,
         "username", "A user with that username already exists."},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        tl_http h;
        conv c = simple(cases[i].u, cases[i].p1, cases[i].p2);
        run_convert(ctx, &h, cookie, &c);
        ck_assert_msg(c.st == cases[i].st, "case %zu: %s", i,
                      guest_status_name(c.st));
        const char *msg = guest_form_errors_get(&c.errors, cases[i].field);
        ck_assert_msg(msg && !strcmp(msg, cases[i].message), "case %zu: %s", i,
                      msg ? msg : "(none)");
        ck_assert_ptr_null(tl_http_res_header(&h, "Set-Cookie"));
        ck_assert(!c.after_is_regular);
        tl_http_free(&h);
        assert_unchanged(ctx, cookie, id, name);
    }

    /* every problem at once: the taken name is reported with the rest */
    tl_http h;
    conv c = simple("taken", "Qz-7", "Qz-8");
    run_convert(ctx, &h, cookie, &c);
    tl_http_free(&h);
    ck_assert_int_eq(c.st, GUEST_ERR_VALIDATION);
    ck_assert_str_eq(guest_form_errors_get(&c.errors, "username"),
                     "A user with that username already exists.");
    ck_assert_str_eq(guest_form_errors_get(&c.errors, "password2"),
                     "The two password fields didn't match.");
    ck_assert_int_eq(converted.calls, 0);
    assert_unchanged(ctx, cookie, id, name);

    /* keeping the generated name is allowed (prefilled forms) */
    conv keep = simple(name, TL_PASSWORD, TL_PASSWORD);
    run_convert(ctx, &h, cookie, &keep);
    tl_http_free(&h);
    ck_assert_int_eq(keep.st, GUEST_OK);
    guest_ctx_free(ctx);
}
END_TEST

/* ---- the races ---- */

static const guest_signup slow = {NULL, 0, NULL, tl_slow_store, NULL};

typedef struct racer {
    guest_ctx *ctx;
    const char *cookie;
    conv c;
    char set_cookie[128];
    bool got_cookie;
} racer;

static void *race(void *arg)
{
    racer *r = arg;
    tl_http h;
    run_convert(r->ctx, &h, r->cookie, &r->c);
    r->got_cookie =
        tl_http_cookie(&h, "sessionid", r->set_cookie, sizeof r->set_cookie);
    tl_http_free(&h);
    return NULL;
}

START_TEST(two_conversions_of_one_guest_one_wins)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, with_hook);
    for (int round = 0; round < 6; round++) {
        char cookie[128];
        int64_t id = tl_new_guest(ctx, cookie, sizeof cookie);
        pthread_barrier_t b;
        pthread_barrier_init(&b, NULL, 2);
        racer r[2] = {0};
        char names[2][32];
        pthread_t t[2];
        for (int i = 0; i < 2; i++) {
            snprintf(names[i], sizeof names[i], "racer%d_%d", round, i);
            r[i].ctx = ctx;
            r[i].cookie = cookie;
            r[i].c = simple(names[i], TL_PASSWORD, TL_PASSWORD);
            r[i].c.barrier = &b;
            r[i].c.signup = &slow;
            pthread_create(&t[i], NULL, race, &r[i]);
        }
        for (int i = 0; i < 2; i++)
            pthread_join(t[i], NULL);
        pthread_barrier_destroy(&b);
        int won = r[0].c.st == GUEST_OK ? 0 : 1, lost = 1 - won;
        ck_assert_int_eq(r[won].c.st, GUEST_OK);
        ck_assert_msg(r[lost].c.st == GUEST_ERR_NOT_GUEST, "round %d: %s",
                      round, guest_status_name(r[lost].c.st));
        ck_assert(r[won].got_cookie);
        ck_assert(!r[lost].got_cookie);
        /* the loser's request no longer holds a guest */
        ck_assert(!r[lost].c.after_is_regular || r[lost].c.after_id == 0);
        ck_assert_int_eq(r[lost].c.after_id, 0);
        /* exactly the winner's change, one session */
        char sql[160], now[64];
        snprintf(sql, sizeof sql,
                 "SELECT username FROM @.users WHERE id = %lld", (long long)id);
        tl_text_in(SCHEMA, sql, now, sizeof now);
        ck_assert_str_eq(now, names[won]);
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM @.sessions WHERE user_id = %lld",
                 (long long)id);
        ck_assert_int_eq(tl_scalar_in(SCHEMA, sql), 1);
        ck_assert_int_eq(tl_whoami(ctx, r[won].set_cookie, NULL), id);
    }
    ck_assert_int_eq(converted.calls, 6);
    ck_assert_int_eq(tl_scalar_in(SCHEMA, "SELECT count(*) FROM @.guests"), 0);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(two_guests_claiming_one_name_one_wins)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, with_hook);
    for (int round = 0; round < 6; round++) {
        char cookies[2][128];
        int64_t ids[2];
        for (int i = 0; i < 2; i++)
            ids[i] = tl_new_guest(ctx, cookies[i], sizeof cookies[i]);
        char name[32];
        snprintf(name, sizeof name, "claimed%d", round);
        pthread_barrier_t b;
        pthread_barrier_init(&b, NULL, 2);
        racer r[2] = {0};
        pthread_t t[2];
        for (int i = 0; i < 2; i++) {
            r[i].ctx = ctx;
            r[i].cookie = cookies[i];
            r[i].c = simple(name, TL_PASSWORD, TL_PASSWORD);
            r[i].c.barrier = &b;
            r[i].c.signup = &slow;
            pthread_create(&t[i], NULL, race, &r[i]);
        }
        for (int i = 0; i < 2; i++)
            pthread_join(t[i], NULL);
        pthread_barrier_destroy(&b);
        int won = r[0].c.st == GUEST_OK ? 0 : 1, lost = 1 - won;
        ck_assert_int_eq(r[won].c.st, GUEST_OK);
        ck_assert_msg(r[lost].c.st == GUEST_ERR_USERNAME_TAKEN, "round %d: %s",
                      round, guest_status_name(r[lost].c.st));
        ck_assert_str_eq(guest_form_errors_get(&r[lost].c.errors, "username"),
                         "A user with that username already exists.");
        ck_assert(!r[lost].got_cookie);
        /* the loser is still a guest with its session */
        bool g = false;
        ck_assert_int_eq(tl_whoami(ctx, cookies[lost], &g), ids[lost]);
        ck_assert(g);
        ck_assert_int_eq(tl_whoami(ctx, r[won].set_cookie, &g), ids[won]);
        ck_assert(!g);
    }
    ck_assert_int_eq(tl_scalar_in(SCHEMA, "SELECT count(*) FROM @.guests"), 6);
    guest_ctx_free(ctx);
}
END_TEST

typedef struct creator {
    guest_ctx *ctx;
    pthread_barrier_t *b;
    guest_status st;
    guest_form_errors e;
} creator;

static void *create_same(void *arg)
{
    creator *c = arg;
    pthread_barrier_wait(c->b);
    c->st =
        guest_user_create(c->ctx, "sameuser", TL_PASSWORD, NULL, &c->e, NULL);
    return NULL;
}

START_TEST(user_create_validates_and_races)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, NULL);
    int64_t id = 0;
    guest_form_errors e;
    ck_assert_int_eq(guest_user_create(ctx, "dave", TL_PASSWORD, &id, &e, NULL),
                     GUEST_OK);
    ck_assert_int_gt(id, 0);
    ck_assert_uint_eq(e.count, 0);
    char hash[256];
    tl_text_in(SCHEMA, "SELECT password FROM @.users WHERE username = 'dave'",
               hash, sizeof hash);
    ck_assert(guest_password_verify(TL_PASSWORD, hash));
    ck_assert_int_eq(tl_scalar_in(SCHEMA, "SELECT count(*) FROM @.guests"), 0);

    ck_assert_int_eq(
        guest_user_create(ctx, "dave", TL_PASSWORD, NULL, &e, NULL),
        GUEST_ERR_USERNAME_TAKEN);
    ck_assert_str_eq(guest_form_errors_get(&e, "username"),
                     "A user with that username already exists.");
    ck_assert_int_eq(guest_user_create(ctx, "eve", "password", NULL, &e, NULL),
                     GUEST_ERR_VALIDATION);
    ck_assert_str_eq(guest_form_errors_get(&e, "password"),
                     "This password is too common.");
    ck_assert_int_eq(guest_user_create(ctx, "eve", NULL, NULL, &e, NULL),
                     GUEST_ERR_VALIDATION);
    ck_assert_str_eq(guest_form_errors_get(&e, "password"),
                     "This field is required.");
    ck_assert_int_eq(
        guest_user_create(ctx, "bad name", TL_PASSWORD, NULL, NULL, NULL),
        GUEST_ERR_VALIDATION);
    ck_assert_int_eq(guest_user_create(NULL, "x", TL_PASSWORD, NULL, &e, NULL),
                     GUEST_ERR_INVALID);
    ck_assert_int_eq(tl_scalar_in(SCHEMA, "SELECT count(*) FROM @.users"), 1);

    pthread_barrier_t b;
    pthread_barrier_init(&b, NULL, 2);
    creator c[2] = {{ctx, &b, 0, {0}}, {ctx, &b, 0, {0}}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, create_same, &c[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&b);
    ck_assert((c[0].st == GUEST_OK) != (c[1].st == GUEST_OK));
    ck_assert(c[0].st == GUEST_ERR_USERNAME_TAKEN ||
              c[1].st == GUEST_ERR_USERNAME_TAKEN);
    ck_assert_int_eq(tl_scalar_in(SCHEMA, "SELECT count(*) FROM @.users"
                                          " WHERE username = 'sameuser'"),
                     1);
    guest_ctx_free(ctx);
}
END_TEST

/* ---- custom sign-up fields ---- */

static const guest_signup_field fields[] = {
    {"email", "Email address", "email", true},
    {"terms", "I accept the terms", "checkbox", true},
};

typedef enum { STORE_OK, STORE_FAIL, STORE_BAD_SQL, STORE_SWALLOW } store_mode;

typedef struct app {
    store_mode mode;
    int validated, stored;
} app;

static guest_status app_validate(const guest_form *form,
                                 guest_form_errors *errors, void *ud)
{
    app *a = ud;
    a->validated++;
    const char *email = guest_form_get(form, "email");
    if (email && *email && !strchr(email, '@'))
        guest_form_errors_add(errors, "email", "Enter a valid email address.");
    return GUEST_OK;
}

static guest_status app_store(guest_db *db, const guest_user *user,
                              const guest_form *form, guest_form_errors *errors,
                              void *ud)
{
    app *a = ud;
    a->stored++;
    ck_assert(guest_is_regular_user(user));
    char id[32];
    snprintf(id, sizeof id, "%lld", (long long)guest_user_id(user));
    const char *params[] = {id, guest_form_get(form, "email")};
    guest_error err = {0};
    if (a->mode == STORE_BAD_SQL || a->mode == STORE_SWALLOW) {
        guest_status st = guest_db_exec(db, "INSERT INTO nowhere VALUES ($1)",
                                        1, params, &err);
        ck_assert_int_eq(st, GUEST_ERR_DB);
        ck_assert_ptr_nonnull(strstr(err.message, "SQLSTATE 42P01"));
        /* the transaction is aborted: later statements fail too */
        ck_assert_int_eq(guest_db_exec(db, "SELECT 1", 0, NULL, &err),
                         GUEST_ERR_DB);
        return a->mode == STORE_SWALLOW ? GUEST_OK : st;
    }
    guest_status st = guest_db_exec(db,
                                    "INSERT INTO t_convert_app.profiles"
                                    " (user_id, email) VALUES ($1, $2)",
                                    2, params, &err);
    if (st == GUEST_ERR_DB && strstr(err.message, "SQLSTATE 23505")) {
        guest_form_errors_add(errors, "email", "That email is in use.");
        return GUEST_ERR_VALIDATION;
    }
    if (st != GUEST_OK)
        return st;
    return a->mode == STORE_FAIL ? GUEST_ERR_CANCELLED : GUEST_OK;
}

static void app_tables(void)
{
    tl_exec("DROP SCHEMA IF EXISTS t_convert_app CASCADE");
    tl_exec("CREATE SCHEMA t_convert_app");
    tl_exec("CREATE TABLE t_convert_app.profiles (user_id bigint PRIMARY KEY"
            " REFERENCES t_convert.users(id) ON DELETE CASCADE,"
            " email text NOT NULL UNIQUE)");
}

START_TEST(custom_fields_validated_and_stored_in_the_transaction)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, with_hook);
    app_tables();
    app a = {0};
    guest_signup su = {fields, 2, app_validate, app_store, &a};
    char cookie[128], name[GUEST_USERNAME_BUF];
    int64_t id = tl_new_guest(ctx, cookie, sizeof cookie);
    tl_text_in(SCHEMA, "SELECT username FROM @.users", name, sizeof name);

    /* required fields and the application's own message */
    tl_http h;
    conv c = simple("frank", TL_PASSWORD, TL_PASSWORD);
    c.signup = &su;
    c.form_body = "email=nope";
    run_convert(ctx, &h, cookie, &c);
    tl_http_free(&h);
    ck_assert_int_eq(c.st, GUEST_ERR_VALIDATION);
    ck_assert_str_eq(guest_form_errors_get(&c.errors, "email"),
                     "Enter a valid email address.");
    ck_assert_str_eq(guest_form_errors_get(&c.errors, "terms"),
                     "This field is required.");
    ck_assert_int_eq(a.stored, 0);
    assert_unchanged(ctx, cookie, id, name);

    /* the store callback fails or its SQL does: all rolled back */
    store_mode modes[] = {STORE_FAIL, STORE_BAD_SQL, STORE_SWALLOW};
    guest_status want[] = {GUEST_ERR_HOOK, GUEST_ERR_DB, GUEST_ERR_DB};
    for (int i = 0; i < 3; i++) {
        a.mode = modes[i];
        c = simple("frank", TL_PASSWORD, TL_PASSWORD);
        c.signup = &su;
        c.form_body = "email=frank%40example.org&terms=on";
        run_convert(ctx, &h, cookie, &c);
        ck_assert_ptr_null(tl_http_res_header(&h, "Set-Cookie"));
        tl_http_free(&h);
        ck_assert_msg(c.st == want[i], "mode %d: %s", i,
                      guest_status_name(c.st));
        assert_unchanged(ctx, cookie, id, name);
        ck_assert_int_eq(tl_scalar("SELECT count(*) FROM"
                                   " t_convert_app.profiles"),
                         0);
    }
    ck_assert_int_eq(converted.calls, 0);

    /* success: the profile row is written with the conversion */
    a.mode = STORE_OK;
    c = simple("frank", TL_PASSWORD, TL_PASSWORD);
    c.signup = &su;
    c.form_body = "email=frank%40example.org&terms=on";
    run_convert(ctx, &h, cookie, &c);
    tl_http_free(&h);
    ck_assert_int_eq(c.st, GUEST_OK);
    char sql[128];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM t_convert_app.profiles WHERE user_id = %lld"
             " AND email = 'frank@example.org'",
             (long long)id);
    ck_assert_int_eq(tl_scalar(sql), 1);

    /* a second guest with the same email: the app's unique index speaks,
     * the guest stays a guest */
    char cookie2[128], name2[GUEST_USERNAME_BUF];
    int64_t id2 = tl_new_guest(ctx, cookie2, sizeof cookie2);
    snprintf(sql, sizeof sql, "SELECT username FROM @.users WHERE id = %lld",
             (long long)id2);
    tl_text_in(SCHEMA, sql, name2, sizeof name2);
    c = simple("grace", TL_PASSWORD, TL_PASSWORD);
    c.signup = &su;
    c.form_body = "email=frank%40example.org&terms=on";
    run_convert(ctx, &h, cookie2, &c);
    tl_http_free(&h);
    ck_assert_int_eq(c.st, GUEST_ERR_VALIDATION);
    ck_assert_str_eq(guest_form_errors_get(&c.errors, "email"),
                     "That email is in use.");
    assert_unchanged(ctx, cookie2, id2, name2);
    ck_assert_int_eq(tl_scalar_in(SCHEMA, "SELECT count(*) FROM @.users"
                                          " WHERE username = 'grace'"),
                     0);
    guest_ctx_free(ctx);
}
END_TEST

static guest_status refuse_validate(const guest_form *form,
                                    guest_form_errors *errors, void *ud)
{
    (void)form, (void)errors, (void)ud;
    return GUEST_ERR_CANCELLED;
}

static guest_status misuse_store(guest_db *db, const guest_user *user,
                                 const guest_form *form,
                                 guest_form_errors *errors, void *ud)
{
    (void)user, (void)form, (void)errors, (void)ud;
    const char *too_many[GUEST_DB_MAX_PARAMS + 1] = {0};
    ck_assert_int_eq(
        guest_db_exec(db, "SELECT 1", GUEST_DB_MAX_PARAMS + 1, too_many, NULL),
        GUEST_ERR_INVALID);
    ck_assert_int_eq(guest_db_exec(db, NULL, 0, NULL, NULL), GUEST_ERR_INVALID);
    ck_assert_int_eq(guest_db_exec(NULL, "SELECT 1", 0, NULL, NULL),
                     GUEST_ERR_INVALID);
    ck_assert_int_eq(guest_db_exec(db, "SELECT 1", 1, NULL, NULL),
                     GUEST_ERR_INVALID);
    /* one statement only: a second one cannot be smuggled in */
    guest_error err;
    ck_assert_int_eq(guest_db_exec(db, "SELECT 1; SELECT 2", 0, NULL, &err),
                     GUEST_ERR_DB);
    return GUEST_OK;
}

/* A callback that tries to end the library's transaction early. */
static guest_status committing_store(guest_db *db, const guest_user *user,
                                     const guest_form *form,
                                     guest_form_errors *errors, void *ud)
{
    (void)user, (void)form, (void)errors;
    const char *sql = ud;
    guest_error err;
    ck_assert_int_eq(guest_db_exec(db, sql, 0, NULL, &err), GUEST_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(err.message, "transaction"));
    /* and the handle stays refused afterwards */
    ck_assert_int_ne(guest_db_exec(db, "SELECT 1", 0, NULL, NULL), GUEST_OK);
    return GUEST_OK;
}

START_TEST(signup_callback_failures)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, NULL);
    char cookie[128], name[GUEST_USERNAME_BUF];
    int64_t id = tl_new_guest(ctx, cookie, sizeof cookie);
    tl_text_in(SCHEMA, "SELECT username FROM @.users", name, sizeof name);
    guest_signup su = {NULL, 0, refuse_validate, NULL, NULL};
    tl_http h;
    conv c = simple("henry", TL_PASSWORD, TL_PASSWORD);
    c.signup = &su;
    run_convert(ctx, &h, cookie, &c);
    tl_http_free(&h);
    ck_assert_int_eq(c.st, GUEST_ERR_HOOK);
    assert_unchanged(ctx, cookie, id, name);

    guest_signup su2 = {NULL, 0, NULL, misuse_store, NULL};
    c = simple("henry", TL_PASSWORD, TL_PASSWORD);
    c.signup = &su2;
    run_convert(ctx, &h, cookie, &c);
    tl_http_free(&h);
    ck_assert_int_eq(c.st, GUEST_ERR_DB);
    assert_unchanged(ctx, cookie, id, name);

    /* transaction control from a callback is refused and nothing is
     * written, not even what ran before the callback */
    const char *control[] = {"COMMIT",      "  rollback",  "/* x */ END",
                             "-- c\nBEGIN", "savepoint s", "SET ROLE x",
                             "(COMMIT)",    "abort"};
    for (size_t i = 0; i < sizeof control / sizeof *control; i++) {
        guest_signup su3 = {NULL, 0, NULL, committing_store,
                            (void *)control[i]};
        c = simple("henry", TL_PASSWORD, TL_PASSWORD);
        c.signup = &su3;
        run_convert(ctx, &h, cookie, &c);
        tl_http_free(&h);
        ck_assert_int_ne(c.st, GUEST_OK);
        assert_unchanged(ctx, cookie, id, name);
    }
    guest_ctx_free(ctx);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("convert");
    TCase *tc = tcase_create("convert");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, conversion_keeps_id_and_rotates_session);
    tcase_add_test(tc, anonymous_and_registered_are_not_guests);
    tcase_add_test(tc, invalid_input_changes_nothing);
    tcase_add_test(tc, two_conversions_of_one_guest_one_wins);
    tcase_add_test(tc, two_guests_claiming_one_name_one_wins);
    tcase_add_test(tc, user_create_validates_and_races);
    tcase_add_test(tc, custom_fields_validated_and_stored_in_the_transaction);
    tcase_add_test(tc, signup_callback_failures);
    suite_add_tcase(s, tc);
    return tl_run(s);
}

/* Managing users against the fixture database: listing, deleting,
 * setting passwords, deactivating and activating; and a guest's creation
 * and expiry times on guest_user, read without an extra round trip.
 * Static: the library's round-trip counter and hashing slots. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/core.h"
#include "testlib.h"

#define SCHEMA "t_users"

static void setup(void)
{
    tl_drop_schema(SCHEMA);
}

static long long count(const char *sql)
{
    return tl_scalar_in(SCHEMA, sql);
}

/* ---- guest_users_list ---- */

typedef struct listed {
    int n;
    int stop_after; /* 0: never stop */
    char names[16][GUEST_USERNAME_BUF];
    guest_user_info info[16];
} listed;

static bool collect(const guest_user_info *u, void *ud)
{
    listed *l = ud;
    ck_assert_int_lt(l->n, 16);
    snprintf(l->names[l->n], sizeof l->names[l->n], "%s", u->username);
    l->info[l->n] = *u;
    l->info[l->n].username = NULL; /* borrowed: gone after the call */
    l->n++;
    return !l->stop_after || l->n < l->stop_after;
}

static void list(guest_ctx *ctx, guest_user_kind kind, size_t limit, listed *l)
{
    int stop = l->stop_after;
    memset(l, 0, sizeof *l);
    l->stop_after = stop;
    guest_error err = {0};
    guest_status st = guest_users_list(ctx, kind, limit, collect, l, &err);
    ck_assert_msg(st == GUEST_OK, "%s", err.message);
}

START_TEST(list_users_newest_first_by_kind)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, NULL);
    int64_t alice = tl_new_user(ctx, "alice", TL_PASSWORD);
    char cookie[128];
    int64_t g1 = tl_new_guest(ctx, cookie, sizeof cookie);
    int64_t bob = tl_new_user(ctx, "bob", TL_PASSWORD);
    int64_t g2 = tl_new_guest(ctx, cookie, sizeof cookie);
    /* distinct, known join times; bob logged in once and is inactive */
    char sql[512];
    snprintf(
        sql, sizeof sql,
        "UPDATE @.users SET date_joined = '2030-01-01T00:00:00Z'::timestamptz"
        " + id * interval '1 hour'");
    tl_exec_in(SCHEMA, sql);
    tl_exec_in(SCHEMA, "UPDATE @.guests SET created_at = u.date_joined"
                       " FROM @.users u WHERE u.id = user_id");
    tl_exec_in(SCHEMA, "UPDATE @.users SET is_active = false,"
                       " last_login = '2030-02-01T00:00:00Z'"
                       " WHERE username = 'bob'");

    listed l = {0};
    list(ctx, GUEST_USERS_ALL, 0, &l);
    ck_assert_int_eq(l.n, 4);
    int64_t want[] = {g2, bob, g1, alice};
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(l.info[i].id, want[i]);
    ck_assert_str_eq(l.names[1], "bob");
    ck_assert(l.info[0].is_guest && !l.info[1].is_guest);
    ck_assert(!l.info[1].is_active && l.info[3].is_active);
    ck_assert_int_eq(l.info[1].last_login, 1896134400); /* 2030-02-01 */
    ck_assert_int_eq(l.info[3].last_login, 0);
    ck_assert_int_eq(l.info[3].date_joined, 1893456000 + alice * 3600);
    /* a guest expires max_age after it was made; a registered user never */
    ck_assert_int_eq(l.info[0].expires_at,
                     1893456000 + g2 * 3600 + guest_ctx_config(ctx)->max_age);
    ck_assert_int_eq(l.info[1].expires_at, 0);

    list(ctx, GUEST_USERS_GUESTS, 0, &l);
    ck_assert_int_eq(l.n, 2);
    ck_assert_int_eq(l.info[0].id, g2);
    ck_assert_int_eq(l.info[1].id, g1);
    list(ctx, GUEST_USERS_REGISTERED, 0, &l);
    ck_assert_int_eq(l.n, 2);
    ck_assert_str_eq(l.names[0], "bob");
    ck_assert_str_eq(l.names[1], "alice");
    list(ctx, GUEST_USERS_ALL, 3, &l);
    ck_assert_int_eq(l.n, 3);
    l.stop_after = 2;
    list(ctx, GUEST_USERS_ALL, 0, &l);
    ck_assert_int_eq(l.n, 2);

    guest_error err = {0};
    ck_assert_int_eq(
        guest_users_list(ctx, (guest_user_kind)7, 0, collect, &l, &err),
        GUEST_ERR_INVALID);
    ck_assert_int_eq(
        guest_users_list(ctx, GUEST_USERS_ALL, 0, NULL, NULL, &err),
        GUEST_ERR_INVALID);
    ck_assert_int_eq(
        guest_users_list(NULL, GUEST_USERS_ALL, 0, collect, &l, &err),
        GUEST_ERR_INVALID);
    guest_ctx_free(ctx);
}
END_TEST

/* ---- guest_user_delete ---- */

typedef struct login_try {
    const char *username, *password;
    guest_status st;
    char cookie[128];
} login_try;

static void login_handler(guest_req *req, void *ud)
{
    login_try *t = ud;
    t->st = guest_login(req, t->username, t->password, NULL, NULL);
}

/* A password login through the in-process adapter; its session cookie
 * into t->cookie. */
static guest_status login(guest_ctx *ctx, login_try *t)
{
    tl_http h;
    tl_request(ctx, &h, "POST", "/login/", NULL, NULL, NULL, login_handler, t);
    t->cookie[0] = '\0';
    if (t->st == GUEST_OK)
        ck_assert(tl_http_cookie(&h, "sessionid", t->cookie, sizeof t->cookie));
    tl_http_free(&h);
    return t->st;
}

START_TEST(delete_user_ends_its_sessions)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, NULL);
    int64_t alice = tl_new_user(ctx, "alice", TL_PASSWORD);
    tl_new_user(ctx, "bob", TL_PASSWORD);
    login_try a = {.username = "alice", .password = TL_PASSWORD},
              b = {.username = "bob", .password = TL_PASSWORD};
    ck_assert_int_eq(login(ctx, &a), GUEST_OK);
    ck_assert_int_eq(login(ctx, &b), GUEST_OK);
    char gcookie[128];
    int64_t g = tl_new_guest(ctx, gcookie, sizeof gcookie);
    char gname[GUEST_USERNAME_BUF];
    tl_text_in(SCHEMA,
               "SELECT username FROM @.users u JOIN @.guests g"
               " ON g.user_id = u.id",
               gname, sizeof gname);

    int64_t id = 0;
    guest_error err = {0};
    ck_assert_int_eq(guest_user_delete(ctx, "alice", &id, &err), GUEST_OK);
    ck_assert_int_eq(id, alice);
    ck_assert_int_eq(tl_whoami(ctx, a.cookie, NULL), 0);
    ck_assert_int_gt(tl_whoami(ctx, b.cookie, NULL), 0);
    ck_assert_int_eq(count("SELECT count(*) FROM @.users"
                           " WHERE username = 'alice'"),
                     0);
    /* a guest too, by its generated name */
    ck_assert_int_eq(guest_user_delete(ctx, gname, &id, NULL), GUEST_OK);
    ck_assert_int_eq(id, g);
    ck_assert_int_eq(tl_whoami(ctx, gcookie, NULL), 0);
    ck_assert_int_eq(count("SELECT count(*) FROM @.guests"), 0);

    /* unknown, impossible and missing names */
    err = (guest_error){0};
    ck_assert_int_eq(guest_user_delete(ctx, "alice", NULL, &err),
                     GUEST_ERR_NOT_FOUND);
    ck_assert_str_eq(err.message, "no user named \"alice\"");
    char longname[400];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    ck_assert_int_eq(guest_user_delete(ctx, longname, NULL, NULL),
                     GUEST_ERR_NOT_FOUND);
    ck_assert_int_eq(guest_user_delete(ctx, "bad\xff", NULL, NULL),
                     GUEST_ERR_NOT_FOUND);
    ck_assert_int_eq(guest_user_delete(ctx, "", NULL, NULL),
                     GUEST_ERR_NOT_FOUND);
    ck_assert_int_eq(guest_user_delete(ctx, NULL, NULL, NULL),
                     GUEST_ERR_INVALID);
    ck_assert_int_eq(guest_user_delete(NULL, "bob", NULL, NULL),
                     GUEST_ERR_INVALID);
    ck_assert_str_eq(guest_status_name(GUEST_ERR_NOT_FOUND),
                     "GUEST_ERR_NOT_FOUND");

    /* an application table that refers to users without a cascade keeps
     * its user: nothing is deleted and the database says why */
    tl_exec_in(SCHEMA, "CREATE TABLE @.orders (user_id bigint NOT NULL"
                       " REFERENCES @.users(id))");
    tl_exec_in(SCHEMA, "INSERT INTO @.orders SELECT id FROM @.users"
                       " WHERE username = 'bob'");
    err = (guest_error){0};
    ck_assert_int_eq(guest_user_delete(ctx, "bob", NULL, &err), GUEST_ERR_DB);
    ck_assert_ptr_nonnull(strstr(err.message, "23503"));
    ck_assert_int_gt(tl_whoami(ctx, b.cookie, NULL), 0);
    guest_ctx_free(ctx);
}
END_TEST

/* ---- guest_user_set_active ---- */

START_TEST(deactivation_is_immediate_and_stops_logins)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, NULL);
    int64_t alice = tl_new_user(ctx, "alice", TL_PASSWORD);
    login_try a = {.username = "alice", .password = TL_PASSWORD};
    ck_assert_int_eq(login(ctx, &a), GUEST_OK);
    char second[128];
    snprintf(second, sizeof second, "%s", a.cookie);
    ck_assert_int_eq(login(ctx, &a), GUEST_OK);
    ck_assert_int_eq(count("SELECT count(*) FROM @.sessions"), 2);

    guest_error err = {0};
    ck_assert_int_eq(guest_user_set_active(ctx, "alice", false, &err),
                     GUEST_OK);
    ck_assert_int_eq(tl_whoami(ctx, a.cookie, NULL), 0);
    ck_assert_int_eq(tl_whoami(ctx, second, NULL), 0);
    ck_assert_int_eq(count("SELECT count(*) FROM @.sessions"), 0);
    ck_assert_int_eq(count("SELECT count(*) FROM @.users WHERE is_active"), 0);
    ck_assert_int_eq(login(ctx, &a), GUEST_ERR_AUTH);
    /* idempotent */
    ck_assert_int_eq(guest_user_set_active(ctx, "alice", false, NULL),
                     GUEST_OK);

    ck_assert_int_eq(guest_user_set_active(ctx, "alice", true, &err), GUEST_OK);
    ck_assert_int_eq(login(ctx, &a), GUEST_OK);
    ck_assert_int_eq(tl_whoami(ctx, a.cookie, NULL), alice);
    /* activating does not end sessions */
    ck_assert_int_eq(guest_user_set_active(ctx, "alice", true, &err), GUEST_OK);
    ck_assert_int_eq(tl_whoami(ctx, a.cookie, NULL), alice);

    /* a guest's session stops too */
    char gcookie[128], gname[GUEST_USERNAME_BUF];
    tl_new_guest(ctx, gcookie, sizeof gcookie);
    tl_text_in(SCHEMA,
               "SELECT username FROM @.users u JOIN @.guests g"
               " ON g.user_id = u.id",
               gname, sizeof gname);
    ck_assert_int_eq(guest_user_set_active(ctx, gname, false, NULL), GUEST_OK);
    ck_assert_int_eq(tl_whoami(ctx, gcookie, NULL), 0);

    err = (guest_error){0};
    ck_assert_int_eq(guest_user_set_active(ctx, "nobody", false, &err),
                     GUEST_ERR_NOT_FOUND);
    ck_assert_str_eq(err.message, "no user named \"nobody\"");
    ck_assert_int_eq(guest_user_set_active(ctx, NULL, true, NULL),
                     GUEST_ERR_INVALID);
    guest_ctx_free(ctx);
}
END_TEST

/* ---- guest_user_set_password ---- */

START_TEST(set_password_validates_hashes_and_logs_out)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, NULL);
    int64_t alice = tl_new_user(ctx, "alice", TL_PASSWORD);
    tl_new_user(ctx, "bob", TL_PASSWORD);
    login_try a = {.username = "alice", .password = TL_PASSWORD},
              b = {.username = "bob", .password = TL_PASSWORD};
    ck_assert_int_eq(login(ctx, &a), GUEST_OK);
    ck_assert_int_eq(login(ctx, &b), GUEST_OK);
    char before[GUEST_PASSWORD_HASH_BUF];
    tl_text_in(SCHEMA, "SELECT password FROM @.users WHERE username = 'alice'",
               before, sizeof before);

    /* refused by the validators: every message, nothing written */
    guest_form_errors e;
    ck_assert_int_eq(guest_user_set_password(ctx, "alice", "123", &e, NULL),
                     GUEST_ERR_VALIDATION);
    ck_assert_uint_ge(e.count, 2);
    ck_assert_str_eq(e.items[0].field, "password");
    ck_assert_ptr_nonnull(guest_form_errors_get(&e, "password"));
    ck_assert_int_eq(guest_user_set_password(ctx, "alice", "", &e, NULL),
                     GUEST_ERR_VALIDATION);
    ck_assert_str_eq(e.items[0].message, "This field is required.");
    ck_assert_int_eq(guest_user_set_password(ctx, "alice", NULL, NULL, NULL),
                     GUEST_ERR_VALIDATION);
    char now[GUEST_PASSWORD_HASH_BUF];
    tl_text_in(SCHEMA, "SELECT password FROM @.users WHERE username = 'alice'",
               now, sizeof now);
    ck_assert_str_eq(now, before);
    ck_assert_int_eq(tl_whoami(ctx, a.cookie, NULL), alice);

    guest_error err = {0};
    ck_assert_int_eq(
        guest_user_set_password(ctx, "alice", "Brand-New-Horse-77", &e, &err),
        GUEST_OK);
    ck_assert_uint_eq(e.count, 0);
    /* every session of alice ended, bob's stays */
    ck_assert_int_eq(tl_whoami(ctx, a.cookie, NULL), 0);
    ck_assert_int_gt(tl_whoami(ctx, b.cookie, NULL), 0);
    tl_text_in(SCHEMA, "SELECT password FROM @.users WHERE username = 'alice'",
               now, sizeof now);
    ck_assert(guest_password_verify("Brand-New-Horse-77", now));
    ck_assert(!strncmp(now, "pbkdf2_sha256$1000$", 19));
    ck_assert_int_eq(login(ctx, &a), GUEST_ERR_AUTH);
    a.password = "Brand-New-Horse-77";
    ck_assert_int_eq(login(ctx, &a), GUEST_OK);

    /* an inactive user's password can be set too */
    ck_assert_int_eq(guest_user_set_active(ctx, "bob", false, NULL), GUEST_OK);
    ck_assert_int_eq(
        guest_user_set_password(ctx, "bob", "Other-New-Horse-78", NULL, NULL),
        GUEST_OK);

    /* a guest has no password; unknown names are not found */
    char gcookie[128], gname[GUEST_USERNAME_BUF];
    tl_new_guest(ctx, gcookie, sizeof gcookie);
    tl_text_in(SCHEMA,
               "SELECT username FROM @.users u JOIN @.guests g"
               " ON g.user_id = u.id",
               gname, sizeof gname);
    err = (guest_error){0};
    ck_assert_int_eq(
        guest_user_set_password(ctx, gname, "Brand-New-Horse-77", &e, &err),
        GUEST_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(err.message, "is a guest"));
    ck_assert_int_eq(count("SELECT count(*) FROM @.users WHERE password = ''"),
                     1);
    ck_assert_int_gt(tl_whoami(ctx, gcookie, NULL), 0);
    ck_assert_int_eq(
        guest_user_set_password(ctx, "nobody", "Brand-New-Horse-77", &e, &err),
        GUEST_ERR_NOT_FOUND);
    ck_assert_int_eq(guest_user_set_password(NULL, "alice", "x", &e, &err),
                     GUEST_ERR_INVALID);
    guest_ctx_free(ctx);
}
END_TEST

static void one_slot(guest_config *c)
{
    c->hash_concurrency = 1;
    c->hash_wait_ms = 0;
}

START_TEST(set_password_takes_a_hashing_slot)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, one_slot);
    tl_new_user(ctx, "alice", TL_PASSWORD);
    char before[GUEST_PASSWORD_HASH_BUF], now[GUEST_PASSWORD_HASH_BUF];
    tl_text_in(SCHEMA, "SELECT password FROM @.users", before, sizeof before);
    /* the only slot is taken: refused at once, nothing hashed or written */
    ck_assert_int_eq(guest__hash_slot_take(ctx), GUEST_OK);
    ck_assert_int_eq(
        guest_user_set_password(ctx, "alice", "Brand-New-Horse-77", NULL, NULL),
        GUEST_ERR_BUSY);
    tl_text_in(SCHEMA, "SELECT password FROM @.users", now, sizeof now);
    ck_assert_str_eq(now, before);
    guest__hash_slot_give(ctx);
    ck_assert_int_eq(
        guest_user_set_password(ctx, "alice", "Brand-New-Horse-77", NULL, NULL),
        GUEST_OK);
    guest_ctx_free(ctx);
}
END_TEST

/* ---- a guest's creation and expiry on guest_user ---- */

typedef struct times {
    guest_status st;
    int64_t id, created, expires;
    bool is_guest;
} times;

static void record(times *t, const guest_user *u)
{
    t->id = guest_user_id(u);
    t->is_guest = guest_is_guest_user(u);
    t->created = guest_user_created_at(u);
    t->expires = guest_user_expires_at(u);
}

static void create_handler(guest_req *req, void *ud)
{
    const guest_user *u = NULL;
    times *t = ud;
    t->st = guest_req_create_guest(req, &u, NULL);
    record(t, u);
}

static void whoami_handler(guest_req *req, void *ud)
{
    const guest_user *u = NULL;
    times *t = ud;
    t->st = guest_req_user(req, &u, NULL);
    record(t, u);
}

static void check_creation_times(guest_ctx *ctx)
{
    const int64_t max_age = guest_ctx_config(ctx)->max_age;
    int64_t t0 = (int64_t)time(NULL);
    times made = {0};
    tl_http h;
    tl_request(ctx, &h, "GET", "/", NULL, NULL, NULL, create_handler, &made);
    int64_t t1 = (int64_t)time(NULL);
    ck_assert_int_eq(made.st, GUEST_OK);
    char cookie[128];
    ck_assert(tl_http_cookie(&h, "sessionid", cookie, sizeof cookie));
    tl_http_free(&h);
    /* the database's clock, on this machine: within the call, give or take
     * a second of rounding */
    ck_assert_int_ge(made.created, t0 - 1);
    ck_assert_int_le(made.created, t1 + 1);
    ck_assert_int_eq(made.expires, made.created + max_age);
    char sql[160];
    snprintf(sql, sizeof sql,
             "SELECT floor(extract(epoch FROM created_at))::bigint"
             " FROM @.guests WHERE user_id = %lld",
             (long long)made.id);
    ck_assert_int_eq(count(sql), made.created);

    /* the next request reads them with the session, in its one statement
     * (once the connection has the statement prepared) */
    times seen = {0};
    tl_request(ctx, &h, "GET", "/", cookie, NULL, NULL, whoami_handler, &seen);
    tl_http_free(&h);
    unsigned long rt0 = guest__db_round_trips;
    tl_request(ctx, &h, "GET", "/", cookie, NULL, NULL, whoami_handler, &seen);
    ck_assert_uint_eq(guest__db_round_trips - rt0, 1);
    tl_http_free(&h);
    ck_assert_int_eq(seen.id, made.id);
    ck_assert(seen.is_guest);
    ck_assert_int_eq(seen.created, made.created);
    ck_assert_int_eq(seen.expires, made.created + max_age);
}

static void limited(guest_config *c)
{
    c->guest_rate_limit = 100;
    c->max_guests = 1000;
    c->max_age = 7 * 86400;
}

START_TEST(guest_user_tells_creation_and_expiry)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, NULL);
    check_creation_times(ctx);
    /* an older guest: its own creation time, not the request's */
    char cookie[128];
    int64_t g = tl_new_guest(ctx, cookie, sizeof cookie);
    char sql[160];
    snprintf(sql, sizeof sql,
             "UPDATE @.guests SET created_at = '2030-01-01T00:00:00.75Z'"
             " WHERE user_id = %lld",
             (long long)g);
    tl_exec_in(SCHEMA, sql);
    times seen = {0};
    tl_http h;
    tl_request(ctx, &h, "GET", "/", cookie, NULL, NULL, whoami_handler, &seen);
    tl_http_free(&h);
    ck_assert_int_eq(seen.created, 1893456000);
    ck_assert_int_eq(seen.expires, 1893456000 + 1209600);

    /* a registered user: no guest creation, no expiry */
    tl_new_user(ctx, "alice", TL_PASSWORD);
    login_try a = {.username = "alice", .password = TL_PASSWORD};
    ck_assert_int_eq(login(ctx, &a), GUEST_OK);
    tl_request(ctx, &h, "GET", "/", a.cookie, NULL, NULL, whoami_handler,
               &seen);
    tl_http_free(&h);
    ck_assert(!seen.is_guest);
    ck_assert_int_gt(seen.id, 0);
    ck_assert_int_eq(seen.created, 0);
    ck_assert_int_eq(seen.expires, 0);
    ck_assert_int_eq(guest_user_created_at(NULL), 0);
    ck_assert_int_eq(guest_user_expires_at(NULL), 0);
    guest_ctx_free(ctx);

    /* the creation statement with the abuse limits on */
    tl_drop_schema(SCHEMA);
    ctx = tl_ctx(SCHEMA, limited);
    check_creation_times(ctx);
    guest_ctx_free(ctx);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("users");
    TCase *tc = tcase_create("users");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, list_users_newest_first_by_kind);
    tcase_add_test(tc, delete_user_ends_its_sessions);
    tcase_add_test(tc, deactivation_is_immediate_and_stops_logins);
    tcase_add_test(tc, set_password_validates_hashes_and_logs_out);
    tcase_add_test(tc, set_password_takes_a_hashing_slot);
    tcase_add_test(tc, guest_user_tells_creation_and_expiry);
    suite_add_tcase(s, tc);
    return tl_run(s);
}

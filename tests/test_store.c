/* The PostgreSQL store: migrations, guest creation, session resolution,
 * concurrency. Runs against the fixture cluster. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "testlib.h"

#define SCHEMA "t_store"

static guest_ctx *fresh_ctx(void)
{
    guest_config c;
    tl_config(&c, SCHEMA);
    return tl_ctx_new(&c);
}

static void setup(void)
{
    tl_drop_schema(SCHEMA);
}

START_TEST(schema_is_created_with_documented_tables)
{
    guest_ctx *ctx = fresh_ctx();
    ck_assert_int_eq(tl_scalar("SELECT count(*) FROM information_schema.tables"
                               " WHERE table_schema = 't_store' AND table_name"
                               " IN ('users', 'guests', 'sessions',"
                               " 'schema_migrations')"),
                     4);
    ck_assert_int_eq(
        tl_scalar("SELECT max(version) FROM t_store.schema_migrations"),
        guest__schema_version_latest());
    /* the documented column set of users */
    ck_assert_int_eq(tl_scalar("SELECT count(*) FROM information_schema.columns"
                               " WHERE table_schema = 't_store' AND table_name"
                               " = 'users' AND column_name IN ('id', "
                               "'username', 'password', 'date_joined', "
                               "'last_login', 'is_active')"),
                     6);
    guest_ctx_free(ctx);
    /* a second start finds the schema current and changes nothing */
    ctx = fresh_ctx();
    ck_assert_int_eq(
        tl_scalar("SELECT count(*) FROM t_store.schema_migrations"),
        guest__schema_version_latest());
    ck_assert_int_eq(guest_ping(ctx, NULL), GUEST_OK);
    guest_ctx_free(ctx);
}
END_TEST

/* Column count and types of what @p sql (with '@' for the schema) would
 * return, as "n:oid,oid,...". */
static void result_shape(PGconn *db, const char *name, const char *tmpl,
                         int nparams, char *out, size_t size)
{
    char *sql = guest__schema_sql(tmpl, SCHEMA);
    PGresult *r = PQprepare(db, name, sql, nparams, NULL);
    ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK, "%s: %s", sql,
                  PQresultErrorMessage(r));
    PQclear(r);
    free(sql);
    r = PQdescribePrepared(db, name);
    ck_assert_int_eq(PQresultStatus(r), PGRES_COMMAND_OK);
    size_t o = (size_t)snprintf(out, size, "%d:", PQnfields(r));
    for (int i = 0; i < PQnfields(r) && o < size; i++)
        o += (size_t)snprintf(out + o, size - o, "%u,", PQftype(r, i));
    PQclear(r);
}

/* Migration 3 wrote the session lookup and guest creation into functions
 * for connections behind a pooler; the library reads their rows by column
 * number, so each must still answer with its statement's columns. */
START_TEST(schema_functions_answer_like_the_statements)
{
    guest_ctx *ctx = fresh_ctx();
    PGconn *db = tl_db();
    char a[256], b[256];
    result_shape(db, "s1", GUEST__RESOLVE_SESSION_SQL, 1, a, sizeof a);
    result_shape(db, "f1", "SELECT * FROM @.resolve_session($1)", 1, b,
                 sizeof b);
    ck_assert_str_eq(a, b);
    result_shape(db, "s2", GUEST__CREATE_GUEST_SQL, 3, a, sizeof a);
    result_shape(db, "f2", "SELECT * FROM @.create_guest($1, $2, $3)", 3, b,
                 sizeof b);
    ck_assert_str_eq(a, b);
    PQfinish(db);
    guest_ctx_free(ctx);
}
END_TEST

static void *start_ctx(void *arg)
{
    (void)arg;
    guest_config c;
    tl_config(&c, SCHEMA);
    guest_ctx *ctx = NULL;
    guest_status st = guest_ctx_new(&c, &ctx, NULL);
    guest_ctx_free(ctx);
    return (void *)(intptr_t)st;
}

START_TEST(concurrent_starts_migrate_once)
{
    pthread_t t[8];
    for (int i = 0; i < 8; i++)
        pthread_create(&t[i], NULL, start_ctx, NULL);
    for (int i = 0; i < 8; i++) {
        void *rv;
        pthread_join(t[i], &rv);
        ck_assert_int_eq((int)(intptr_t)rv, GUEST_OK);
    }
    ck_assert_int_eq(
        tl_scalar("SELECT count(*) FROM t_store.schema_migrations"),
        guest__schema_version_latest());
}
END_TEST

START_TEST(newer_schema_is_refused)
{
    guest_ctx *ctx = fresh_ctx();
    guest_ctx_free(ctx);
    tl_exec("INSERT INTO t_store.schema_migrations (version) VALUES (999)");
    guest_config c;
    tl_config(&c, SCHEMA);
    guest_error err;
    ck_assert_int_eq(guest_ctx_new(&c, &ctx, &err), GUEST_ERR_DB);
    ck_assert_ptr_nonnull(strstr(err.message, "999"));
}
END_TEST

static tl_created run(guest_ctx *ctx, guest_handler_fn fn, const char *cookie,
                      char *set_cookie, size_t size)
{
    tl_created out;
    memset(&out, 0, sizeof out);
    tl_http h;
    tl_http_init(&h, "GET", "/");
    if (cookie)
        tl_http_add(&h, "Cookie", cookie);
    tl_http_run(ctx, &h, fn, &out);
    if (set_cookie && !tl_http_cookie(&h, "sessionid", set_cookie, size))
        set_cookie[0] = '\0';
    tl_http_free(&h);
    return out;
}

START_TEST(guest_creation_writes_three_rows_and_token_hash_only)
{
    guest_config c;
    tl_config(&c, SCHEMA);
    c.db_pool_size = 1;
    guest_ctx *ctx = tl_ctx_new(&c);
    char cookie[128];
    /* Warm up: each connection prepares a statement on its first use (one
     * extra round trip, once); every request after that is one trip. */
    run(ctx, tl_whoami_handler,
        "sessionid=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", NULL, 0);
    run(ctx, tl_create_handler, NULL, NULL, 0);
    tl_exec("TRUNCATE t_store.users CASCADE");
    unsigned long rt0 = guest__db_round_trips;
    tl_created made = run(ctx, tl_create_handler, NULL, cookie, sizeof cookie);
    ck_assert_int_eq(made.st, GUEST_OK);
    ck_assert_uint_eq(guest__db_round_trips - rt0, 1); /* one round trip */
    ck_assert(made.is_guest);
    ck_assert_int_gt(made.id, 0);
    ck_assert_int_eq(tl_scalar("SELECT count(*) FROM t_store.users"), 1);
    ck_assert_int_eq(tl_scalar("SELECT count(*) FROM t_store.guests"), 1);
    ck_assert_int_eq(tl_scalar("SELECT count(*) FROM t_store.sessions"), 1);
    /* the session expires max_age from now */
    ck_assert_int_eq(tl_scalar("SELECT round(extract(epoch FROM expires_at - "
                               "now()) / 3600) FROM t_store.sessions"),
                     336);
    /* The row holds SHA-256 of the decoded token, never the token. */
    const char *token = cookie + strlen("sessionid=");
    ck_assert_uint_eq(strlen(token), 43);
    unsigned char raw[32], hash[32];
    ck_assert(guest__b64url_decode(token, 43, raw, 32));
    ck_assert_int_eq(guest__sha256(raw, 32, hash), GUEST_OK);
    char hex[65], sql[256];
    for (int i = 0; i < 32; i++)
        sprintf(hex + 2 * i, "%02x", hash[i]);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM t_store.sessions WHERE token_hash = "
             "'\\x%s'::bytea",
             hex);
    ck_assert_int_eq(tl_scalar(sql), 1);

    /* a returning visitor resolves in one round trip */
    rt0 = guest__db_round_trips;
    tl_created back = run(ctx, tl_whoami_handler, cookie, NULL, 0);
    ck_assert_uint_eq(guest__db_round_trips - rt0, 1);
    ck_assert_int_eq(back.st, GUEST_OK);
    ck_assert_int_eq(back.id, made.id);
    ck_assert_str_eq(back.name, made.name);
    ck_assert(back.is_guest);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(guest_status_follows_the_guests_row_only)
{
    guest_ctx *ctx = fresh_ctx();
    char cookie[128];
    tl_created made = run(ctx, tl_create_handler, NULL, cookie, sizeof cookie);
    ck_assert_int_eq(made.st, GUEST_OK);
    tl_exec("DELETE FROM t_store.guests");
    tl_created back = run(ctx, tl_whoami_handler, cookie, NULL, 0);
    ck_assert_int_eq(back.id, made.id);
    ck_assert(!back.is_guest);
    guest_ctx_free(ctx);
}
END_TEST

/* A failing session lookup says why: libpq's detail reaches the caller's
 * guest_error. */
START_TEST(user_lookup_failure_has_detail)
{
    guest_ctx *ctx = fresh_ctx();
    char cookie[128];
    ck_assert_int_eq(
        run(ctx, tl_create_handler, NULL, cookie, sizeof cookie).st, GUEST_OK);
    tl_exec("ALTER TABLE t_store.sessions RENAME TO sessions_gone");
    tl_created r = run(ctx, tl_whoami_handler, cookie, NULL, 0);
    tl_exec("ALTER TABLE t_store.sessions_gone RENAME TO sessions");
    ck_assert_int_eq(r.st, GUEST_ERR_DB);
    ck_assert_int_eq(r.err.status, GUEST_ERR_DB);
    ck_assert_msg(strstr(r.err.message, "sessions"), "%s", r.err.message);
    ck_assert_int_gt(run(ctx, tl_whoami_handler, cookie, NULL, 0).id, 0);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(dead_sessions_are_anonymous)
{
    guest_ctx *ctx = fresh_ctx();
    char cookie[128];
    ck_assert_int_eq(
        run(ctx, tl_create_handler, NULL, cookie, sizeof cookie).st, GUEST_OK);
    ck_assert_int_gt(run(ctx, tl_whoami_handler, cookie, NULL, 0).id, 0);
    /* expired, even though no cleanup ran */
    tl_exec("UPDATE t_store.sessions SET expires_at = now() - interval '1 s'");
    tl_created r = run(ctx, tl_whoami_handler, cookie, NULL, 0);
    ck_assert_int_eq(r.st, GUEST_OK);
    ck_assert_int_eq(r.id, 0);
    /* inactive user */
    tl_exec("UPDATE t_store.sessions SET expires_at = now() + interval '1 h'");
    tl_exec("UPDATE t_store.users SET is_active = false");
    ck_assert_int_eq(run(ctx, tl_whoami_handler, cookie, NULL, 0).id, 0);
    tl_exec("UPDATE t_store.users SET is_active = true");
    ck_assert_int_gt(run(ctx, tl_whoami_handler, cookie, NULL, 0).id, 0);

    /* forged, malformed, oversized: anonymous, and no error */
    const char *bad[] = {
        "sessionid=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "sessionid=",
        "sessionid",
        "sessionid=short",
        "sessionid=%00%0d%0a",
        "sessionid=++++++++++++++++++++++++++++++++++++++++++=",
        "sessionid=\"unterminated",
        ";;;;",
        "=",
        "sessionid==",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        tl_created b = run(ctx, tl_whoami_handler, bad[i], NULL, 0);
        ck_assert_int_eq(b.st, GUEST_OK);
        ck_assert_int_eq(b.id, 0);
    }
    char *big = malloc(70000);
    memset(big, 'A', 69999);
    memcpy(big, "sessionid=", 10);
    big[69999] = '\0';
    ck_assert_int_eq(run(ctx, tl_whoami_handler, big, NULL, 0).id, 0);
    free(big);
    /* first of two cookies decides */
    char two[256];
    snprintf(two, sizeof two, "sessionid=garbage; %s", cookie);
    ck_assert_int_eq(run(ctx, tl_whoami_handler, two, NULL, 0).id, 0);
    snprintf(two, sizeof two, "%s; sessionid=garbage", cookie);
    ck_assert_int_gt(run(ctx, tl_whoami_handler, two, NULL, 0).id, 0);
    guest_ctx_free(ctx);
}
END_TEST

typedef struct worker {
    guest_ctx *ctx;
    int made;
    int64_t ids[50];
} worker;

static void *create_many(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < 50; i++) {
        tl_created r = run(w->ctx, tl_create_handler, NULL, NULL, 0);
        if (r.st == GUEST_OK)
            w->ids[w->made++] = r.id;
    }
    return NULL;
}

START_TEST(threads_create_guests_at_once)
{
    guest_config c;
    tl_config(&c, SCHEMA);
    /* our own application_name, so suites running beside this one on the
     * same cluster do not count */
    char conninfo[600];
    snprintf(conninfo, sizeof conninfo, "%s application_name=t_store_threads",
             tl_conninfo());
    c.db_conninfo = conninfo;
    c.db_pool_size = 3; /* fewer connections than threads: they queue */
    c.name_generator = guest_name_numbered;
    c.name_suffix_digits = 6;
    guest_ctx *ctx = tl_ctx_new(&c);
    enum { T = 8 };
    worker w[T];
    pthread_t t[T];
    for (int i = 0; i < T; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].ctx = ctx;
        pthread_create(&t[i], NULL, create_many, &w[i]);
    }
    int total = 0;
    for (int i = 0; i < T; i++) {
        pthread_join(t[i], NULL);
        total += w[i].made;
    }
    ck_assert_int_eq(total, T * 50);
    ck_assert_int_eq(tl_scalar("SELECT count(DISTINCT id) FROM t_store.users"),
                     T * 50);
    ck_assert_int_eq(tl_scalar("SELECT count(*) FROM t_store.guests"), T * 50);
    ck_assert_int_eq(tl_scalar("SELECT count(*) FROM t_store.sessions"),
                     T * 50);
    ck_assert_int_le(tl_scalar("SELECT count(*) FROM pg_stat_activity WHERE "
                               "application_name = 't_store_threads'"),
                     3);
    ck_assert_int_ge(tl_scalar("SELECT count(*) FROM pg_stat_activity WHERE "
                               "application_name = 't_store_threads'"),
                     1);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(ping_and_blocked_agents)
{
    guest_ctx *ctx = fresh_ctx();
    ck_assert_int_eq(guest_ping(ctx, NULL), GUEST_OK);
    ck_assert_int_eq(guest_ping(NULL, NULL), GUEST_ERR_INVALID);
    ck_assert(
        guest_is_blocked_agent(ctx, "Mozilla/5.0 (compatible; Googlebot/2.1)"));
    ck_assert(
        guest_is_blocked_agent(ctx, "mozilla/5.0 (compatible; yandexbot/3.0)"));
    ck_assert(guest_is_blocked_agent(
        ctx, "Mozilla/5.0 (compatible; YandexMobileBot/3.0)"));
    ck_assert(guest_is_blocked_agent(ctx, "facebookexternalhit/1.1"));
    ck_assert(guest_is_blocked_agent(ctx, "ia_archiver"));
    ck_assert(!guest_is_blocked_agent(
        ctx, "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0"));
    ck_assert(!guest_is_blocked_agent(ctx, NULL));
    ck_assert(!guest_is_blocked_agent(ctx, ""));
    /* the context copied the list: the config's own array may go away */
    const guest_config *cfg = guest_ctx_config(ctx);
    ck_assert_str_eq(cfg->blocked_user_agents[6], "Yandex(Mobile)?Bot");
    ck_assert_str_eq(cfg->required_anon_url, "/accounts/login/");
    ck_assert_str_eq(cfg->required_user_url, "/accounts/profile/");
    guest_ctx_free(ctx);

    /* a NULL string setting means its documented default */
    guest_config c;
    tl_config(&c, SCHEMA);
    c.name_prefix = NULL;
    c.cookie_name = NULL;
    ctx = tl_ctx_new(&c);
    ck_assert_str_eq(guest_ctx_config(ctx)->name_prefix, "Guest");
    ck_assert_str_eq(guest_ctx_config(ctx)->cookie_name, "sessionid");
    guest_ctx_free(ctx);
}
END_TEST

/* A thread that gives its connection back and at once asks again wins
 * the freed slot over a thread the pool must wake for it: it needs no
 * context switch. Left at that, a waiter could lose every round until its
 * deadline while others were served. Once a waiter has waited a while
 * (10 ms), a released connection goes to it first. */
typedef struct waiter_case {
    guest_ctx *ctx;
    atomic_bool got;
    guest_status st;
} waiter_case;

static void *borrow_once(void *arg)
{
    waiter_case *w = arg;
    PGconn *c = NULL;
    w->st = guest_db_borrow(w->ctx, &c, NULL);
    atomic_store(&w->got, w->st == GUEST_OK);
    if (c)
        guest_db_return(w->ctx, c);
    return NULL;
}

static unsigned pool_waiting(guest_ctx *c)
{
    guest_metrics m;
    guest_metrics_get(c, &m);
    return m.pool_waiting;
}

static void pool_of_one(guest_config *c)
{
    c->db_pool_size = 1;
    c->db_timeout_ms = 10000;
}

START_TEST(a_long_waiter_goes_before_a_thread_asking_again)
{
    guest_ctx *one = tl_ctx(SCHEMA, pool_of_one);
    PGconn *c = NULL;
    ck_assert_int_eq(guest_db_borrow(one, &c, NULL), GUEST_OK);
    waiter_case w = {.ctx = one};
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, borrow_once, &w), 0);
    /* Until the other thread waits, and then until the pool itself says
     * it has waited past its patience: the condition the release below
     * depends on, observed rather than slept for (bounded: 10 s each, the
     * waiter's own deadline). */
    for (int i = 0; i < 1000 && pool_waiting(one) == 0; i++)
        usleep(10 * 1000);
    ck_assert_uint_eq(pool_waiting(one), 1);
    for (int i = 0; i < 10000 && guest__pool_longest_wait_ms(one->pool) <=
                                     GUEST__POOL_PATIENCE_MS;
         i++)
        usleep(1000);
    ck_assert_int_gt(guest__pool_longest_wait_ms(one->pool),
                     GUEST__POOL_PATIENCE_MS);
    guest_db_return(one, c);
    c = NULL;
    /* Asking again at once: the waiter is served first, so by the time
     * this borrow returns it has had the connection and given it back. */
    ck_assert_int_eq(guest_db_borrow(one, &c, NULL), GUEST_OK);
    bool waiter_first = atomic_load(&w.got);
    guest_db_return(one, c);
    pthread_join(t, NULL);
    ck_assert_int_eq(w.st, GUEST_OK);
    ck_assert_msg(waiter_first, "the thread asking again went first");
    ck_assert_uint_eq(pool_waiting(one), 0);
    guest_ctx_free(one);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("store");
    TCase *tc = tcase_create("store");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, schema_is_created_with_documented_tables);
    tcase_add_test(tc, schema_functions_answer_like_the_statements);
    tcase_add_test(tc, concurrent_starts_migrate_once);
    tcase_add_test(tc, newer_schema_is_refused);
    tcase_add_test(tc, guest_creation_writes_three_rows_and_token_hash_only);
    tcase_add_test(tc, guest_status_follows_the_guests_row_only);
    tcase_add_test(tc, dead_sessions_are_anonymous);
    tcase_add_test(tc, user_lookup_failure_has_detail);
    tcase_add_test(tc, threads_create_guests_at_once);
    tcase_add_test(tc, ping_and_blocked_agents);
    tcase_add_test(tc, a_long_waiter_goes_before_a_thread_asking_again);
    suite_add_tcase(s, tc);
    return tl_run(s);
}

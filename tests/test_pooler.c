/* db_pooler: what the library leaves on its connections and sends per
 * transaction in each mode (checked on PostgreSQL itself), a statement past
 * its deadline cancelled on the server, and PgBouncer in transaction mode
 * detected by AUTO and refused by NONE (with the pgbouncer fixture). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testlib.h"

#define SCHEMA "pooler_test"

static void setup(void)
{
    tl_drop_schema(SCHEMA);
}

/* The suite itself talks to PostgreSQL directly, whatever
 * GUESTUSER_TEST_DB_POOLER says. */
static guest_ctx *ctx_with(guest_db_pooler mode, const char *conninfo)
{
    guest_config c;
    tl_config(&c, SCHEMA);
    c.password_iterations = 1000;
    c.db_pooler = mode;
    if (conninfo)
        c.db_conninfo = conninfo;
    return tl_ctx_new(&c);
}

/* A few requests' worth of the library's statements. */
static void some_requests(guest_ctx *ctx)
{
    for (int i = 0; i < 3; i++) {
        char cookie[256];
        tl_new_guest(ctx, cookie, sizeof cookie);
        bool is_guest = false;
        ck_assert_int_ne(tl_whoami(ctx, cookie, &is_guest), 0);
        ck_assert(is_guest);
    }
}

/* Prepared statements and statement_timeout of a pooled connection. */
static void session_state(guest_ctx *ctx, long long *prepared, char *timeout,
                          size_t size)
{
    *prepared = 0;
    timeout[0] = '\0';
    /* every pooled connection (the pool has 4) */
    PGconn *conns[4];
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(guest_db_borrow(ctx, &conns[i], NULL), GUEST_OK);
        PGresult *r = PQexec(conns[i], "SELECT (SELECT count(*) FROM "
                                       "pg_prepared_statements),"
                                       " current_setting('statement_timeout')");
        ck_assert_int_eq(PQresultStatus(r), PGRES_TUPLES_OK);
        *prepared += strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        snprintf(timeout, size, "%s", PQgetvalue(r, 0, 1));
        PQclear(r);
    }
    for (int i = 0; i < 4; i++)
        guest_db_return(ctx, conns[i]);
}

START_TEST(transaction_mode_leaves_no_session_state)
{
    long long prepared;
    char timeout[32];

    guest_ctx *ctx = ctx_with(GUEST_DB_POOLER_NONE, tl_conninfo());
    some_requests(ctx);
    session_state(ctx, &prepared, timeout, sizeof timeout);
    /* direct: named statements and the timeout as a startup option */
    ck_assert_int_gt(prepared, 0);
    ck_assert_str_eq(timeout, "30s");
    guest_ctx_free(ctx);

    tl_drop_schema(SCHEMA);
    ctx = ctx_with(GUEST_DB_POOLER_TRANSACTION, tl_conninfo());
    some_requests(ctx);
    session_state(ctx, &prepared, timeout, sizeof timeout);
    /* nothing a pooler could hand to another client */
    ck_assert_int_eq(prepared, 0);
    ck_assert_str_eq(timeout, "0");
    guest_ctx_free(ctx);
}
END_TEST

/* Behind a pooler the session lookup and guest creation cannot be prepared
 * statements; they call the schema's functions resolve_session() and
 * create_guest(), whose plans the server keeps. They must answer as the
 * prepared statements do, and must be what runs: without the functions,
 * transaction mode fails and direct does not. */
static guest_status lookup(guest_ctx *ctx, const char *cookie, int64_t *id)
{
    tl_created seen;
    tl_resolve(ctx, cookie, &seen);
    *id = seen.id;
    return seen.st;
}

static guest_status create(guest_ctx *ctx)
{
    tl_http h;
    tl_created made = {0};
    tl_http_init(&h, "GET", "/");
    tl_http_run(ctx, &h, tl_create_handler, &made);
    tl_http_free(&h);
    return made.st;
}

START_TEST(transaction_mode_resolves_through_the_schema_function)
{
    guest_ctx *direct = ctx_with(GUEST_DB_POOLER_NONE, tl_conninfo());
    guest_ctx *pooled = ctx_with(GUEST_DB_POOLER_TRANSACTION, tl_conninfo());
    char cookie[256];
    int64_t made = tl_new_guest(direct, cookie, sizeof cookie), id = 0;
    ck_assert_int_eq(lookup(pooled, cookie, &id), GUEST_OK);
    ck_assert_int_eq(id, made);
    ck_assert_int_eq(lookup(direct, cookie, &id), GUEST_OK);
    ck_assert_int_eq(id, made);
    /* the same row, to the second */
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM " SCHEMA ".resolve_session((SELECT "
             "token_hash FROM " SCHEMA ".sessions WHERE user_id = %lld)) f"
             " JOIN " SCHEMA ".guests g ON g.user_id = f.out_id"
             " WHERE f.out_is_guest AND f.out_created ="
             " floor(extract(epoch FROM g.created_at))"
             " AND f.out_ms_left > 0",
             (long long)made);
    ck_assert_int_eq(tl_scalar(sql), 1);

    /* guest creation too: made through the function, found directly */
    int64_t made2 = tl_new_guest(pooled, cookie, sizeof cookie);
    ck_assert_int_eq(lookup(direct, cookie, &id), GUEST_OK);
    ck_assert_int_eq(id, made2);

    tl_exec("DROP FUNCTION " SCHEMA ".resolve_session(bytea)");
    tl_exec("DROP FUNCTION " SCHEMA ".create_guest(text, bytea, float8)");
    ck_assert_int_ne(lookup(pooled, cookie, &id), GUEST_OK);
    ck_assert_int_ne(create(pooled), GUEST_OK);
    ck_assert_int_eq(lookup(direct, cookie, &id), GUEST_OK);
    ck_assert_int_eq(id, made2);
    ck_assert_int_eq(create(direct), GUEST_OK);
    guest_ctx_free(pooled);
    guest_ctx_free(direct);
}
END_TEST

static void rate_limited(guest_config *c)
{
    c->db_pooler = GUEST_DB_POOLER_TRANSACTION;
    c->guest_rate_limit = 1000;
}

/* With abuse limits the creation statement is built from the settings and
 * has no function: it goes unnamed, as it is. */
START_TEST(transaction_mode_creates_limited_guests_without_the_function)
{
    guest_ctx *direct = ctx_with(GUEST_DB_POOLER_NONE, tl_conninfo());
    tl_exec("DROP FUNCTION " SCHEMA ".create_guest(text, bytea, float8)");
    guest_ctx *limited = tl_ctx(SCHEMA, rate_limited);
    ck_assert_int_eq(create(limited), GUEST_OK);
    guest_ctx_free(limited);
    guest_ctx_free(direct);
}
END_TEST

/* The library's transactions carry their own timeouts in transaction
 * mode: a signup store callback records what is in force inside one. */
static guest_status record_timeouts(guest_db *db, const guest_user *user,
                                    const guest_form *form,
                                    guest_form_errors *errors, void *ud)
{
    (void)user;
    (void)form;
    (void)errors;
    (void)ud;
    return guest_db_exec(db,
                         "INSERT INTO " SCHEMA
                         ".seen SELECT current_setting('statement_timeout'),"
                         " current_setting('lock_timeout')",
                         0, NULL, NULL);
}

static void convert_handler(guest_req *req, void *ud)
{
    const guest_signup *signup = ud;
    guest_form_errors errors;
    guest_error err;
    guest_status st =
        guest_convert_with(req, "pooled_user", TL_PASSWORD, TL_PASSWORD, signup,
                           NULL, &errors, &err);
    guest_res_send(req, st == GUEST_OK ? 200 : 500, "text/plain",
                   guest_status_name(st));
}

START_TEST(transaction_mode_sets_timeouts_per_transaction)
{
    guest_ctx *ctx = ctx_with(GUEST_DB_POOLER_TRANSACTION, tl_conninfo());
    tl_exec("CREATE TABLE " SCHEMA ".seen (st text, lt text)");
    char cookie[256];
    tl_new_guest(ctx, cookie, sizeof cookie);
    guest_signup signup = {.store = record_timeouts};
    tl_http h;
    tl_request(ctx, &h, "POST", "/", cookie, NULL, "", convert_handler,
               &signup);
    ck_assert_msg(h.status == 200, "convert: %s", h.res_body);
    tl_http_free(&h);
    char st[32], lt[32];
    tl_text_in(SCHEMA, "SELECT st FROM @.seen", st, sizeof st);
    tl_text_in(SCHEMA, "SELECT lt FROM @.seen", lt, sizeof lt);
    ck_assert_str_eq(st, "30s");
    ck_assert_str_eq(lt, "30s");
    guest_ctx_free(ctx);
}
END_TEST

/* With no statement_timeout on the connection (transaction mode), a
 * statement the client gave up on is cancelled on the server: without the
 * cancel, pg_sleep(120) would still run when the wait below gives up. */
START_TEST(statement_past_deadline_is_cancelled)
{
    guest_config c;
    tl_config(&c, SCHEMA);
    c.db_pooler = GUEST_DB_POOLER_TRANSACTION;
    c.db_timeout_ms = 1000;
    guest_ctx *ctx = tl_ctx_new(&c);
    PGresult *r = NULL;
    ck_assert_int_eq(guest_db_query(ctx, "SELECT pg_sleep(120), 'cancel-me'", 0,
                                    NULL, &r, NULL),
                     GUEST_ERR_DB_UNAVAILABLE);
    ck_assert_ptr_null(r);
    long long running = 1;
    /* a generous bound for a loaded machine, well short of 120 s */
    for (long long start = tl_now_ms(); tl_now_ms() - start < 60000;) {
        running = tl_scalar("SELECT count(*) FROM pg_stat_activity WHERE "
                            "query LIKE '%cancel-me%' AND state = 'active' "
                            "AND pid <> pg_backend_pid()");
        if (running == 0)
            break;
        struct timespec ts = {0, 100000000};
        nanosleep(&ts, NULL);
    }
    ck_assert_int_eq(running, 0);
    guest_ctx_free(ctx);
}
END_TEST

/* ---- through PgBouncer (pool_mode = transaction) ---- */

static const char *conninfo_from(const char *var)
{
    static char buf[256];
    const char *path = getenv(var);
    if (!path)
        return NULL;
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot read %s", path);
    ck_assert(fgets(buf, sizeof buf, f));
    fclose(f);
    buf[strcspn(buf, "\n")] = '\0';
    return buf;
}

static const char *bouncer_conninfo(void)
{
    return conninfo_from("GUESTUSER_TEST_PGBOUNCER_CONNINFO_FILE");
}

typedef struct log_seen {
    int infos;
    char last[512];
} log_seen;

static void capture_log(guest_log_level level, const char *message, void *ud)
{
    log_seen *l = ud;
    if (level == GUEST_LOG_INFO)
        l->infos++;
    snprintf(l->last, sizeof l->last, "%s", message);
}

/* A context in AUTO mode on @p conninfo whose log lines land in @p seen. */
static guest_ctx *ctx_logged(const char *conninfo, log_seen *seen)
{
    guest_config c;
    tl_config(&c, SCHEMA);
    if (conninfo)
        c.db_conninfo = conninfo;
    c.password_iterations = 1000;
    c.log = capture_log;
    c.log_userdata = seen;
    return tl_ctx_new(&c);
}

START_TEST(auto_detects_pgbouncer)
{
    const char *bouncer = bouncer_conninfo();
    if (!bouncer)
        return; /* no fixture: the pgbouncer_ variant of this suite runs it */
    log_seen seen = {0};
    guest_ctx *ctx = ctx_logged(bouncer, &seen);
    ck_assert_int_eq(seen.infos, 1);
    ck_assert_ptr_nonnull(strstr(seen.last, "pooler"));
    some_requests(ctx);
    guest_ctx_free(ctx);
}
END_TEST

/* A PgBouncer that lists `options` in ignore_startup_parameters refuses
 * nothing: AUTO sees that the server's statement_timeout is not the one it
 * sent, switches, and leaves no state on the server connections. */
START_TEST(auto_detects_pgbouncer_that_ignores_options)
{
    const char *bouncer =
        conninfo_from("GUESTUSER_TEST_PGBOUNCER_LENIENT_CONNINFO_FILE");
    if (!bouncer)
        return;
    log_seen seen = {0};
    guest_ctx *ctx = ctx_logged(bouncer, &seen);
    ck_assert_int_eq(seen.infos, 1);
    ck_assert_ptr_nonnull(strstr(seen.last, "ignored startup options"));
    some_requests(ctx);
    long long prepared;
    char timeout[32];
    session_state(ctx, &prepared, timeout, sizeof timeout);
    ck_assert_int_eq(prepared, 0);
    ck_assert_int_eq(seen.infos, 1);
    guest_ctx_free(ctx);
}
END_TEST

/* Directly on PostgreSQL the options arrive: AUTO stays as it is. */
START_TEST(auto_stays_direct_on_postgresql)
{
    log_seen seen = {0};
    guest_ctx *ctx = ctx_logged(NULL, &seen);
    some_requests(ctx);
    long long prepared;
    char timeout[32];
    session_state(ctx, &prepared, timeout, sizeof timeout);
    ck_assert_int_gt(prepared, 0);
    ck_assert_int_eq(seen.infos, 0);
    guest_ctx_free(ctx);
}
END_TEST

/* An `options` of the application's own in the conninfo arrives together
 * with the library's: its setting and our timeouts both hold, and AUTO
 * sees no pooler. */
START_TEST(conninfo_options_arrive_with_ours)
{
    char conninfo[512];
    snprintf(conninfo, sizeof conninfo, "%s options='-c work_mem=7MB'",
             tl_conninfo());
    log_seen seen = {0};
    guest_ctx *ctx = ctx_logged(conninfo, &seen);
    some_requests(ctx);
    PGconn *conn = NULL;
    ck_assert_int_eq(guest_db_borrow(ctx, &conn, NULL), GUEST_OK);
    PGresult *r = PQexec(conn, "SELECT current_setting('work_mem'),"
                               " current_setting('statement_timeout')");
    ck_assert_int_eq(PQresultStatus(r), PGRES_TUPLES_OK);
    ck_assert_str_eq(PQgetvalue(r, 0, 0), "7MB");
    ck_assert_str_eq(PQgetvalue(r, 0, 1), "30s");
    PQclear(r);
    guest_db_return(ctx, conn);
    ck_assert_int_eq(seen.infos, 0);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(none_mode_names_the_refusal)
{
    const char *bouncer = bouncer_conninfo();
    if (!bouncer)
        return;
    guest_config c;
    tl_config(&c, SCHEMA);
    c.db_conninfo = bouncer;
    c.db_pooler = GUEST_DB_POOLER_NONE;
    guest_ctx *ctx = NULL;
    guest_error err = {0};
    ck_assert_int_eq(guest_ctx_new(&c, &ctx, &err), GUEST_ERR_DB_UNAVAILABLE);
    ck_assert_ptr_null(ctx);
    ck_assert_ptr_nonnull(strstr(err.message, "options"));
}
END_TEST

START_TEST(bad_pooler_value_is_a_config_error)
{
    guest_config c;
    tl_config(&c, SCHEMA);
    c.db_pooler = (guest_db_pooler)42;
    guest_ctx *ctx = NULL;
    guest_error err = {0};
    ck_assert_int_eq(guest_ctx_new(&c, &ctx, &err), GUEST_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(err.message, "db_pooler"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pooler");
    TCase *tc = tcase_create("pooler");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, transaction_mode_leaves_no_session_state);
    tcase_add_test(tc, transaction_mode_resolves_through_the_schema_function);
    tcase_add_test(
        tc, transaction_mode_creates_limited_guests_without_the_function);
    tcase_add_test(tc, transaction_mode_sets_timeouts_per_transaction);
    tcase_add_test(tc, statement_past_deadline_is_cancelled);
    tcase_add_test(tc, auto_detects_pgbouncer);
    tcase_add_test(tc, auto_detects_pgbouncer_that_ignores_options);
    tcase_add_test(tc, auto_stays_direct_on_postgresql);
    tcase_add_test(tc, conninfo_options_arrive_with_ours);
    tcase_add_test(tc, none_mode_names_the_refusal);
    tcase_add_test(tc, bad_pooler_value_is_a_config_error);
    suite_add_tcase(s, tc);
    return tl_run(s);
}

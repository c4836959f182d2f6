/* The pool lent to the application (guestuser/db.h) and the cleanup hook
 * on_guests_deleted, on the fixture database. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"

#define SCHEMA "appdb_test"

static guest_ctx *ctx;

static void short_timeout(guest_config *c)
{
    /* long enough for a loaded machine, short enough for pg_sleep(30) to
     * overrun it */
    c->db_timeout_ms = 3000;
}

static void setup(void)
{
    tl_drop_schema(SCHEMA);
    ctx = tl_ctx(SCHEMA, short_timeout);
    tl_exec("CREATE TABLE " SCHEMA ".things (id int PRIMARY KEY, label text)");
}

static void teardown(void)
{
    guest_ctx_free(ctx);
    ctx = NULL;
}

START_TEST(query_returns_rows_with_parameters)
{
    PGresult *r = NULL;
    guest_error err = {0};
    const char *params[] = {"40", "2", NULL};
    ck_assert_int_eq(guest_db_query(ctx,
                                    "SELECT $1::int + $2::int, $3::text IS "
                                    "NULL",
                                    3, params, &r, &err),
                     GUEST_OK);
    ck_assert_int_eq(PQresultStatus(r), PGRES_TUPLES_OK);
    ck_assert_str_eq(PQgetvalue(r, 0, 0), "42");
    ck_assert_str_eq(PQgetvalue(r, 0, 1), "t");
    PQclear(r);
}
END_TEST

START_TEST(query_sql_error_keeps_its_result)
{
    PGresult *r = NULL;
    guest_error err = {0};
    const char *params[] = {"1", "a"};
    ck_assert_int_eq(
        guest_db_query(ctx, "INSERT INTO " SCHEMA ".things VALUES ($1, $2)", 2,
                       params, &r, &err),
        GUEST_OK);
    PQclear(r);
    ck_assert_int_eq(
        guest_db_query(ctx, "INSERT INTO " SCHEMA ".things VALUES ($1, $2)", 2,
                       params, &r, &err),
        GUEST_ERR_DB);
    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq(PQresultErrorField(r, PG_DIAG_SQLSTATE), "23505");
    ck_assert_ptr_nonnull(strstr(err.message, "23505"));
    PQclear(r);
}
END_TEST

START_TEST(query_refuses_bad_arguments_and_scripts)
{
    PGresult *r = (PGresult *)1;
    guest_error err = {0};
    ck_assert_int_eq(guest_db_query(NULL, "SELECT 1", 0, NULL, &r, &err),
                     GUEST_ERR_INVALID);
    ck_assert_ptr_null(r);
    ck_assert_int_eq(guest_db_query(ctx, NULL, 0, NULL, &r, &err),
                     GUEST_ERR_INVALID);
    ck_assert_int_eq(guest_db_query(ctx, "SELECT 1", 0, NULL, NULL, &err),
                     GUEST_ERR_INVALID);
    ck_assert_int_eq(guest_db_query(ctx, "SELECT 1", 1, NULL, &r, &err),
                     GUEST_ERR_INVALID);
    const char *many[GUEST_DB_MAX_PARAMS + 1] = {0};
    ck_assert_int_eq(guest_db_query(ctx, "SELECT 1", GUEST_DB_MAX_PARAMS + 1,
                                    many, &r, &err),
                     GUEST_ERR_INVALID);
    /* exactly one statement: a second one cannot ride along */
    ck_assert_int_eq(guest_db_query(ctx,
                                    "SELECT 1; DROP TABLE " SCHEMA ".things", 0,
                                    NULL, &r, &err),
                     GUEST_ERR_DB);
    PQclear(r);
    ck_assert_int_eq(
        tl_scalar("SELECT count(*) FROM pg_tables WHERE schemaname = '" SCHEMA
                  "' AND tablename = 'things'"),
        1);
}
END_TEST

START_TEST(borrowed_connection_rolls_back_what_was_left_open)
{
    PGconn *c = NULL;
    guest_error err = {0};
    ck_assert_int_eq(guest_db_borrow(ctx, &c, &err), GUEST_OK);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(PQisnonblocking(c), 0);
    PGresult *r = PQexec(c, "BEGIN; INSERT INTO " SCHEMA
                            ".things VALUES (7, 'left open')");
    ck_assert_int_eq(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    ck_assert_int_eq(PQtransactionStatus(c), PQTRANS_INTRANS);
    int pid = PQbackendPID(c);
    guest_db_return(ctx, c);
    ck_assert_int_eq(tl_scalar("SELECT count(*) FROM " SCHEMA ".things"), 0);

    /* rolled back, not closed: the pool lends the same backend again, in
     * no transaction */
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(guest_db_borrow(ctx, &c, &err), GUEST_OK);
        ck_assert_int_eq(PQbackendPID(c), pid);
        ck_assert_int_eq(PQtransactionStatus(c), PQTRANS_IDLE);
        guest_db_return(ctx, c);
    }
    guest_db_return(ctx, NULL);
    ck_assert_int_eq(guest_db_borrow(NULL, &c, &err), GUEST_ERR_INVALID);
    ck_assert_ptr_null(c);
}
END_TEST

START_TEST(borrowed_connection_busy_when_returned_is_closed)
{
    PGconn *c = NULL;
    ck_assert_int_eq(guest_db_borrow(ctx, &c, NULL), GUEST_OK);
    int pid = PQbackendPID(c);
    /* a statement sent and never read: the connection cannot be reused */
    ck_assert_int_eq(PQsendQuery(c, "SELECT pg_sleep(0.2)"), 1);
    guest_db_return(ctx, c);
    /* every pooled connection afterwards is another backend */
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(guest_db_borrow(ctx, &c, NULL), GUEST_OK);
        ck_assert_int_ne(PQbackendPID(c), pid);
        PGresult *r = PQexec(c, "SELECT 1");
        ck_assert_int_eq(PQresultStatus(r), PGRES_TUPLES_OK);
        PQclear(r);
        guest_db_return(ctx, c);
    }
}
END_TEST

/* A connection given back twice, or one the pool never lent, is ignored
 * untouched: the second return of a dropped connection would otherwise
 * read freed memory, and a foreign one would lose its transaction. */
START_TEST(foreign_and_repeated_returns_are_ignored)
{
    PGconn *c = NULL;
    ck_assert_int_eq(guest_db_borrow(ctx, &c, NULL), GUEST_OK);
    ck_assert_int_eq(PQsendQuery(c, "SELECT pg_sleep(0.2)"), 1);
    guest_db_return(ctx, c); /* busy: closed by the pool */
    guest_db_return(ctx, c); /* ignored (ASan would see a use after free) */

    PGconn *mine = tl_db();
    PQclear(PQexec(mine, "BEGIN"));
    guest_db_return(ctx, mine);
    ck_assert_int_eq(PQstatus(mine), CONNECTION_OK);
    ck_assert_int_eq(PQtransactionStatus(mine), PQTRANS_INTRANS);
    ck_assert_int_eq(PQisnonblocking(mine), 0);
    PQfinish(mine);

    /* the pool still lends working connections */
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(guest_db_borrow(ctx, &c, NULL), GUEST_OK);
        PGresult *r = PQexec(c, "SELECT 1");
        ck_assert_int_eq(PQresultStatus(r), PGRES_TUPLES_OK);
        PQclear(r);
        guest_db_return(ctx, c);
    }
}
END_TEST

/* ---- the request's connection ---- */

typedef struct req_case {
    char backend[16]; /* the server process of the handler's transaction */
    guest_status st[4];
    int pid[2];
    char sqlstate[6];
} req_case;

/* Opens a transaction on the request's connection, inserts, and returns
 * without committing. */
static void left_open(guest_req *req, void *ud)
{
    req_case *rc = ud;
    PGconn *c = NULL;
    rc->st[0] = guest_req_db(req, &c, NULL);
    rc->pid[0] = c ? PQbackendPID(c) : 0;
    PGresult *r = NULL;
    rc->st[1] = guest_req_query(req, "BEGIN", 0, NULL, &r, NULL);
    PQclear(r);
    r = NULL;
    if (guest_req_query(req, "SELECT pg_backend_pid()", 0, NULL, &r, NULL) ==
        GUEST_OK)
        snprintf(rc->backend, sizeof rc->backend, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    const char *p[] = {"1", "never committed"};
    rc->st[2] = guest_req_query(
        req, "INSERT INTO " SCHEMA ".things VALUES ($1, $2)", 2, p, &r, NULL);
    PQclear(r);
    /* the same connection, so the same transaction */
    rc->st[3] = guest_req_db(req, &c, NULL);
    rc->pid[1] = c ? PQbackendPID(c) : 0;
    guest_res_send(req, 200, "text/plain", "ok");
}

START_TEST(request_connection_is_one_and_rolled_back_at_the_end)
{
    req_case rc = {0};
    tl_http h;
    tl_http_init(&h, "GET", "/");
    tl_http_run(ctx, &h, left_open, &rc);
    ck_assert_int_eq(h.status, 200);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(rc.st[i], GUEST_OK);
    ck_assert_int_ne(rc.pid[0], 0);
    ck_assert_int_eq(rc.pid[0], rc.pid[1]);
    tl_http_free(&h);
    ck_assert_int_eq(tl_scalar("SELECT count(*) FROM " SCHEMA ".things"), 0);
    /* that server process left the transaction (other suites' may be in
     * theirs) */
    ck_assert_str_ne(rc.backend, "");
    char sql[160];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM pg_stat_activity WHERE pid = %s AND state "
             "LIKE 'idle in transaction%%'",
             rc.backend);
    ck_assert_int_eq(tl_scalar(sql), 0);
}
END_TEST

static void commits(guest_req *req, void *ud)
{
    req_case *rc = ud;
    PGresult *r = NULL;
    const char *p[] = {"2", "kept"};
    rc->st[0] = guest_req_query(req, "BEGIN", 0, NULL, &r, NULL);
    PQclear(r);
    rc->st[1] = guest_req_query(
        req, "INSERT INTO " SCHEMA ".things VALUES ($1, $2)", 2, p, &r, NULL);
    PQclear(r);
    rc->st[2] = guest_req_query(req, "COMMIT", 0, NULL, &r, NULL);
    PQclear(r);
    guest_res_send(req, 204, "text/plain", "");
}

START_TEST(request_transaction_commits)
{
    req_case rc = {0};
    tl_http h;
    tl_http_init(&h, "POST", "/");
    tl_http_run(ctx, &h, commits, &rc);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(rc.st[i], GUEST_OK);
    tl_http_free(&h);
    ck_assert_int_eq(
        tl_scalar("SELECT count(*) FROM " SCHEMA ".things WHERE id = 2"), 1);
}
END_TEST

/* The request's backend is terminated from outside mid-request: the next
 * statement fails as an outage, and so does every later use in the
 * request, even though the pool could lend another connection. */
static void loses_connection(guest_req *req, void *ud)
{
    req_case *rc = ud;
    PGconn *c = NULL;
    rc->st[0] = guest_req_db(req, &c, NULL);
    /* Inside a transaction the server process stays the same, also behind
     * a transaction-mode pooler; pg_backend_pid() names it either way. */
    PGresult *r = NULL;
    PQclear(r);
    if (guest_req_query(req, "BEGIN", 0, NULL, &r, NULL) == GUEST_OK) {
        PQclear(r);
        r = NULL;
        if (guest_req_query(req, "SELECT pg_backend_pid()", 0, NULL, &r,
                            NULL) == GUEST_OK) {
            char sql[128];
            snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%s)",
                     PQgetvalue(r, 0, 0));
            PGconn *other = tl_db();
            PQclear(PQexec(other, sql));
            PQfinish(other);
        }
    }
    PQclear(r);
    r = NULL;
    rc->st[1] = guest_req_query(req, "SELECT 1", 0, NULL, &r, NULL);
    PQclear(r);
    rc->st[2] = guest_req_query(req, "SELECT 1", 0, NULL, &r, NULL);
    PQclear(r);
    rc->st[3] = guest_req_db(req, &c, NULL);
    guest_res_send(req, rc->st[1] == GUEST_ERR_DB_UNAVAILABLE ? 503 : 200,
                   "text/plain", "");
}

START_TEST(request_connection_lost_stays_lost)
{
    req_case rc = {0};
    tl_http h;
    tl_http_init(&h, "GET", "/");
    tl_http_run(ctx, &h, loses_connection, &rc);
    ck_assert_int_eq(rc.st[0], GUEST_OK);
    ck_assert_int_eq(rc.st[1], GUEST_ERR_DB_UNAVAILABLE);
    ck_assert_int_eq(rc.st[2], GUEST_ERR_DB_UNAVAILABLE);
    ck_assert_int_eq(rc.st[3], GUEST_ERR_DB_UNAVAILABLE);
    ck_assert_int_eq(h.status, 503);
    tl_http_free(&h);
    /* the next request is served */
    PGresult *r = NULL;
    ck_assert_int_eq(guest_db_query(ctx, "SELECT 1", 0, NULL, &r, NULL),
                     GUEST_OK);
    PQclear(r);
}
END_TEST

/* A statement that outlasts db_timeout_ms: the client stops waiting and
 * answers an outage; the server's statement_timeout ends it too. */
static void too_slow(guest_req *req, void *ud)
{
    req_case *rc = ud;
    PGresult *r = NULL;
    guest_error err = {0};
    rc->st[0] = guest_req_query(req, "SELECT pg_sleep(30)", 0, NULL, &r, &err);
    if (r)
        snprintf(rc->sqlstate, sizeof rc->sqlstate, "%s",
                 PQresultErrorField(r, PG_DIAG_SQLSTATE));
    PQclear(r);
    rc->st[1] = guest_req_query(req, "SELECT 1", 0, NULL, &r, NULL);
    PQclear(r);
    guest_res_send(req, 200, "text/plain", "");
}

START_TEST(request_query_has_the_deadline)
{
    req_case rc = {0};
    tl_http h;
    tl_http_init(&h, "GET", "/");
    tl_http_run(ctx, &h, too_slow, &rc);
    /* Either side may stop it first: the client's deadline (outage, the
     * connection dropped) or the server's statement_timeout (57014). */
    if (rc.st[0] == GUEST_ERR_DB) {
        ck_assert_str_eq(rc.sqlstate, "57014");
        ck_assert_int_eq(rc.st[1], GUEST_OK);
    } else {
        ck_assert_int_eq(rc.st[0], GUEST_ERR_DB_UNAVAILABLE);
        ck_assert_int_eq(rc.st[1], GUEST_ERR_DB_UNAVAILABLE);
    }
    tl_http_free(&h);
}
END_TEST

/* A statement the server cancels (statement_timeout) is that statement's
 * failure, with its SQLSTATE, on a connection that goes on working. */
static void server_timeout(guest_req *req, void *ud)
{
    req_case *rc = ud;
    PGresult *r = NULL;
    rc->st[0] = guest_req_query(req, "BEGIN", 0, NULL, &r, NULL);
    PQclear(r);
    r = NULL;
    rc->st[1] = guest_req_query(req, "SET LOCAL statement_timeout = 50", 0,
                                NULL, &r, NULL);
    PQclear(r);
    r = NULL;
    rc->st[2] = guest_req_query(req, "SELECT pg_sleep(5)", 0, NULL, &r, NULL);
    if (r)
        snprintf(rc->sqlstate, sizeof rc->sqlstate, "%s",
                 PQresultErrorField(r, PG_DIAG_SQLSTATE));
    PQclear(r);
    r = NULL;
    rc->st[3] = guest_req_query(req, "ROLLBACK", 0, NULL, &r, NULL);
    PQclear(r);
    guest_res_send(req, 200, "text/plain", "");
}

START_TEST(server_side_timeout_is_an_sql_error)
{
    req_case rc = {0};
    tl_http h;
    tl_http_init(&h, "GET", "/");
    tl_http_run(ctx, &h, server_timeout, &rc);
    ck_assert_int_eq(rc.st[0], GUEST_OK);
    ck_assert_int_eq(rc.st[1], GUEST_OK);
    ck_assert_int_eq(rc.st[2], GUEST_ERR_DB);
    ck_assert_str_eq(rc.sqlstate, "57014");
    ck_assert_int_eq(rc.st[3], GUEST_OK);
    tl_http_free(&h);
}
END_TEST

static void bad_arguments(guest_req *req, void *ud)
{
    req_case *rc = ud;
    PGresult *r = NULL;
    rc->st[0] = guest_req_query(req, NULL, 0, NULL, &r, NULL);
    rc->st[1] = guest_req_query(req, "SELECT 1", -1, NULL, &r, NULL);
    rc->st[2] = guest_req_db(req, NULL, NULL);
    rc->st[3] = guest_req_query(NULL, "SELECT 1", 0, NULL, &r, NULL);
    guest_res_send(req, 200, "text/plain", "");
}

START_TEST(request_calls_refuse_bad_arguments)
{
    req_case rc = {0};
    tl_http h;
    tl_http_init(&h, "GET", "/");
    tl_http_run(ctx, &h, bad_arguments, &rc);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(rc.st[i], GUEST_ERR_INVALID);
    tl_http_free(&h);
}
END_TEST

/* ---- on_guests_deleted ---- */

typedef struct deleted_log {
    int calls;
    size_t total;
    int64_t ids[64];
    long long present_during_call; /* rows still there when called */
} deleted_log;

static deleted_log dlog;

static void record_deleted(const int64_t *ids, size_t count, void *ud)
{
    deleted_log *l = ud;
    l->calls++;
    for (size_t i = 0; i < count && l->total < 64; i++) {
        char sql[128];
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM " SCHEMA ".users WHERE id = %lld",
                 (long long)ids[i]);
        l->present_during_call += tl_scalar(sql);
        l->ids[l->total++] = ids[i];
    }
}

static void with_hook(guest_config *c)
{
    c->on_guests_deleted = record_deleted;
    c->on_guests_deleted_userdata = &dlog;
}

static int cmp_ids(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

START_TEST(cleanup_hook_gets_each_batch_after_commit)
{
    memset(&dlog, 0, sizeof dlog);
    guest_ctx *hooked = tl_ctx(SCHEMA, with_hook);
    /* 5 expired guests, 2 live ones, one registered user */
    tl_exec("INSERT INTO " SCHEMA ".users (username) SELECT 'old' || i FROM "
            "generate_series(1, 5) i");
    tl_exec("INSERT INTO " SCHEMA ".guests (user_id, created_at) SELECT id, "
            "now() - interval '400 days' FROM " SCHEMA
            ".users WHERE username LIKE 'old%'");
    tl_exec("INSERT INTO " SCHEMA ".users (username) SELECT 'new' || i FROM "
            "generate_series(1, 2) i");
    tl_exec("INSERT INTO " SCHEMA ".guests (user_id) SELECT id FROM " SCHEMA
            ".users WHERE username LIKE 'new%'");
    tl_exec("INSERT INTO " SCHEMA ".users (username, password) VALUES "
            "('reg', 'x')");
    int64_t expected[5];
    PGconn *c = tl_db();
    PGresult *r = PQexec(c, "SELECT id FROM " SCHEMA
                            ".users WHERE username LIKE 'old%' ORDER BY id");
    ck_assert_int_eq(PQntuples(r), 5);
    for (int i = 0; i < 5; i++)
        expected[i] = strtoll(PQgetvalue(r, i, 0), NULL, 10);
    PQclear(r);
    PQfinish(c);

    guest_cleanup_options o;
    guest_cleanup_options_init(&o);
    o.batch_size = 2;
    guest_cleanup_result res;
    guest_error err = {0};
    ck_assert_int_eq(guest_delete_expired(hooked, &o, &res, &err), GUEST_OK);
    ck_assert_uint_eq(res.users_deleted, 5);
    ck_assert_int_eq(dlog.calls, 3); /* 2 + 2 + 1 */
    ck_assert_uint_eq(dlog.total, 5);
    ck_assert_int_eq(dlog.present_during_call, 0);
    qsort(dlog.ids, dlog.total, sizeof dlog.ids[0], cmp_ids);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(dlog.ids[i], expected[i]);

    /* nothing left to delete: no call */
    memset(&dlog, 0, sizeof dlog);
    ck_assert_int_eq(guest_delete_expired(hooked, &o, &res, &err), GUEST_OK);
    ck_assert_int_eq(dlog.calls, 0);
    /* a dry run deletes nothing and calls nothing */
    tl_exec("UPDATE " SCHEMA ".guests SET created_at = now() - interval '400 "
            "days'");
    o.dry_run = true;
    ck_assert_int_eq(guest_delete_expired(hooked, &o, &res, &err), GUEST_OK);
    ck_assert_int_eq(dlog.calls, 0);
    guest_ctx_free(hooked);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("app_db");
    TCase *tc = tcase_create("pool");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, query_returns_rows_with_parameters);
    tcase_add_test(tc, query_sql_error_keeps_its_result);
    tcase_add_test(tc, query_refuses_bad_arguments_and_scripts);
    tcase_add_test(tc, borrowed_connection_rolls_back_what_was_left_open);
    tcase_add_test(tc, borrowed_connection_busy_when_returned_is_closed);
    tcase_add_test(tc, foreign_and_repeated_returns_are_ignored);
    tcase_add_test(tc, request_connection_is_one_and_rolled_back_at_the_end);
    tcase_add_test(tc, request_transaction_commits);
    tcase_add_test(tc, request_connection_lost_stays_lost);
    tcase_add_test(tc, request_query_has_the_deadline);
    tcase_add_test(tc, request_calls_refuse_bad_arguments);
    tcase_add_test(tc, server_side_timeout_is_an_sql_error);
    tcase_add_test(tc, cleanup_hook_gets_each_batch_after_commit);
    suite_add_tcase(s, tc);
    return tl_run(s);
}

/* Faults injected into the library's own statements (src/store/faults.c,
 * built only into the test library guestuser_faults): an outage reported
 * by SQLSTATE, a connection that dies under a statement, BEGIN retried on
 * another connection, a conversion cut off at COMMIT, a transaction whose
 * statement failed never committed, and the guest_db_exec backstop. Each
 * is driven through the public API where the public API reaches it, and
 * each checks the outcome, that nothing was half written, and that the
 * pool serves the next request. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "routes.h"
#include "store/store.h"
#include "testlib.h"

#define SCHEMA "t_faults"

static guest_ctx *ctx;

static void setup(void)
{
    guest__fault_arm(NULL);
    tl_drop_schema(SCHEMA);
    ctx = tl_ctx(SCHEMA, NULL);
    tl_exec("CREATE TABLE " SCHEMA ".profiles (user_id bigint, note text)");
}

static void teardown(void)
{
    guest__fault_arm(NULL);
    guest_ctx_free(ctx);
    ctx = NULL;
}

static void arm(guest__fault_kind kind, const char *sqlstate, const char *match,
                unsigned count)
{
    const guest__fault f = {
        .kind = kind, .sqlstate = sqlstate, .match = match, .count = count};
    guest__fault_arm(&f);
}

static guest_metrics metrics(void)
{
    guest_metrics m;
    guest_metrics_get(ctx, &m);
    return m;
}

/* GET /allow_guest_user/ through the test routes (GUEST_ALLOW): its
 * status. */
static int allow(const char *cookie)
{
    tl_http h;
    tl_http_init(&h, "GET", "/allow_guest_user/");
    if (cookie)
        tl_http_add(&h, "Cookie", cookie);
    tl_http_run(ctx, &h, tl_routes_handler, NULL);
    int status = h.status;
    tl_http_free(&h);
    return status;
}

static long long count_in(const char *sql)
{
    return tl_scalar_in(SCHEMA, sql);
}

/* ---- an outage reported by SQLSTATE ---- */

START_TEST(sqlstate_08_and_57p_are_an_outage_the_pool_recovers_from)
{
    char cookie[128];
    int64_t id = tl_new_guest(ctx, cookie, sizeof cookie);
    const char *states[] = {"57P01", "08006", "57P03"};
    for (size_t i = 0; i < sizeof states / sizeof *states; i++) {
        guest_metrics before = metrics();
        arm(GUEST__FAULT_SQLSTATE, states[i], "guest_resolve", 1);
        /* the session lookup says the database went away: 503, not 500,
         * and not an anonymous visitor given a new guest */
        ck_assert_int_eq(allow(cookie), 503);
        ck_assert_uint_eq(guest__fault_fired(), 1);
        guest_metrics after = metrics();
        ck_assert_uint_eq(after.db_errors, before.db_errors + 1);
        /* the connection it came on is not kept */
        ck_assert_uint_eq(after.pool_open + 1, before.pool_open);
        /* the next request is served, by the same user */
        bool g = false;
        ck_assert_int_eq(tl_whoami(ctx, cookie, &g), id);
        ck_assert(g);
    }
    ck_assert_int_eq(count_in("SELECT count(*) FROM @.guests"), 1);
}
END_TEST

START_TEST(other_sqlstates_fail_the_statement_and_keep_the_connection)
{
    char cookie[128];
    int64_t id = tl_new_guest(ctx, cookie, sizeof cookie);
    guest_metrics before = metrics();
    arm(GUEST__FAULT_SQLSTATE, "XX000", "guest_resolve", 1);
    tl_created seen;
    tl_resolve(ctx, cookie, &seen);
    ck_assert_int_eq(seen.st, GUEST_ERR_DB);
    ck_assert_ptr_nonnull(strstr(seen.err.message, "XX000"));
    guest_metrics after = metrics();
    ck_assert_uint_eq(after.db_errors, before.db_errors + 1);
    ck_assert_uint_eq(after.pool_open, before.pool_open);
    ck_assert_int_eq(tl_whoami(ctx, cookie, NULL), id);
}
END_TEST

START_TEST(creating_a_guest_during_an_outage_writes_nothing)
{
    arm(GUEST__FAULT_SQLSTATE, "08006", "guest_create", 1);
    ck_assert_int_eq(allow(NULL), 503);
    ck_assert_uint_eq(guest__fault_fired(), 1);
    ck_assert_int_eq(count_in("SELECT count(*) FROM @.users"), 0);
    ck_assert_int_eq(count_in("SELECT count(*) FROM @.guests"), 0);
    /* the next visitor gets a guest */
    ck_assert_int_eq(allow(NULL), 200);
    ck_assert_int_eq(count_in("SELECT count(*) FROM @.guests"), 1);
}
END_TEST

/* ---- a connection that dies under a statement ---- */

START_TEST(a_statement_that_never_left_is_sent_once_more)
{
    char cookie[128];
    int64_t id = tl_new_guest(ctx, cookie, sizeof cookie);
    /* The socket dies before the lookup is sent: it cannot have run, so
     * it goes again on another connection and the visitor notices
     * nothing. */
    arm(GUEST__FAULT_DEAD, NULL, "guest_resolve", 1);
    bool g = false;
    ck_assert_int_eq(tl_whoami(ctx, cookie, &g), id);
    ck_assert(g);
    ck_assert_uint_eq(guest__fault_fired(), 1);

    /* Both connections die: once only, then 503 within the budget. */
    arm(GUEST__FAULT_DEAD, NULL, "guest_resolve", 2);
    ck_assert_int_eq(allow(cookie), 503);
    ck_assert_uint_eq(guest__fault_fired(), 2);
    /* The third connection works. */
    ck_assert_int_eq(allow(cookie), 200);
    ck_assert_int_eq(tl_whoami(ctx, cookie, NULL), id);
    guest_metrics m = metrics();
    ck_assert_uint_eq(m.pool_busy, 0);
}
END_TEST

START_TEST(an_application_query_on_a_dead_connection)
{
    /* The lending API's guest_db_query: the same rule as the library's
     * own statements. Lost on the way, it may have run: not repeated. */
    arm(GUEST__FAULT_LOST, NULL, "fault_probe", 1);
    PGresult *r = NULL;
    guest_error err = {.message = ""};
    ck_assert_int_eq(
        guest_db_query(ctx, "SELECT 'fault_probe'", 0, NULL, &r, &err),
        GUEST_ERR_DB_UNAVAILABLE);
    ck_assert_ptr_null(r);
    ck_assert_uint_eq(guest__fault_fired(), 1);
    /* Found dead before it left, it goes once more: here both die. */
    arm(GUEST__FAULT_DEAD, NULL, "fault_probe", 2);
    ck_assert_int_eq(
        guest_db_query(ctx, "SELECT 'fault_probe'", 0, NULL, &r, &err),
        GUEST_ERR_DB_UNAVAILABLE);
    ck_assert_ptr_null(r);
    ck_assert_uint_eq(guest__fault_fired(), 2);
    ck_assert_int_eq(
        guest_db_query(ctx, "SELECT 'fault_probe'", 0, NULL, &r, &err),
        GUEST_OK);
    ck_assert_str_eq(PQgetvalue(r, 0, 0), "fault_probe");
    PQclear(r);
}
END_TEST

/* ---- conversion ---- */

typedef struct conv {
    guest_status st;
    guest_error err;
    const guest_signup *signup;
} conv;

static void convert_handler(guest_req *req, void *ud)
{
    conv *c = ud;
    c->err = (guest_error){.message = ""};
    c->st = guest_convert_with(req, "faulty", TL_PASSWORD, TL_PASSWORD,
                               c->signup, NULL, NULL, &c->err);
    guest_res_send(req, 200, "text/plain", "done");
}

static guest_status convert(const char *cookie, const guest_signup *signup)
{
    conv c = {.signup = signup};
    tl_http h;
    tl_http_init(&h, "POST", "/convert/");
    tl_http_add(&h, "Cookie", cookie);
    tl_http_run(ctx, &h, convert_handler, &c);
    tl_http_free(&h);
    return c.st;
}

/* Still the guest it was: no name, no password, no new session, no row
 * of the application's. */
static void assert_still_guest(const char *cookie, int64_t id)
{
    bool g = false;
    ck_assert_int_eq(tl_whoami(ctx, cookie, &g), id);
    ck_assert(g);
    ck_assert_int_eq(count_in("SELECT count(*) FROM @.users WHERE username ="
                              " 'faulty' OR password <> ''"),
                     0);
    ck_assert_int_eq(count_in("SELECT count(*) FROM @.guests"), 1);
    ck_assert_int_eq(count_in("SELECT count(*) FROM @.profiles"), 0);
}

static void assert_converted(const char *cookie, int64_t id)
{
    ck_assert_int_eq(convert(cookie, NULL), GUEST_OK);
    ck_assert_int_eq(count_in("SELECT count(*) FROM @.users WHERE username ="
                              " 'faulty' AND password <> ''"),
                     1);
    ck_assert_int_eq(count_in("SELECT count(*) FROM @.guests"), 0);
    ck_assert_int_eq(count_in("SELECT id FROM @.users"), id);
}

START_TEST(begin_on_a_dead_connection_is_retried)
{
    char cookie[128];
    int64_t id = tl_new_guest(ctx, cookie, sizeof cookie);
    /* BEGIN changes nothing: one more try on another connection. */
    arm(GUEST__FAULT_DEAD, NULL, "BEGIN", 1);
    ck_assert_int_eq(convert(cookie, NULL), GUEST_OK);
    ck_assert_uint_eq(guest__fault_fired(), 1);
    ck_assert_int_eq(count_in("SELECT count(*) FROM @.users WHERE username ="
                              " 'faulty'"),
                     1);
    ck_assert_int_eq(count_in("SELECT id FROM @.users"), id);
}
END_TEST

START_TEST(begin_failing_twice_is_an_outage)
{
    char cookie[128];
    int64_t id = tl_new_guest(ctx, cookie, sizeof cookie);
    arm(GUEST__FAULT_DEAD, NULL, "BEGIN", 2);
    ck_assert_int_eq(convert(cookie, NULL), GUEST_ERR_DB_UNAVAILABLE);
    ck_assert_uint_eq(guest__fault_fired(), 2);
    assert_still_guest(cookie, id);
    /* lost as it left: BEGIN changes nothing, so it goes again */
    arm(GUEST__FAULT_LOST, NULL, "BEGIN", 1);
    ck_assert_int_eq(convert(cookie, NULL), GUEST_OK);
    ck_assert_uint_eq(guest__fault_fired(), 1);
    ck_assert_int_eq(count_in("SELECT count(*) FROM @.users WHERE username ="
                              " 'faulty'"),
                     1);
}
END_TEST

START_TEST(begin_refused_is_not_tried_again)
{
    char cookie[128];
    int64_t id = tl_new_guest(ctx, cookie, sizeof cookie);
    arm(GUEST__FAULT_SQLSTATE, "XX000", "BEGIN", 2);
    ck_assert_int_eq(convert(cookie, NULL), GUEST_ERR_DB);
    ck_assert_uint_eq(guest__fault_fired(), 1);
    guest__fault_arm(NULL);
    assert_converted(cookie, id);
}
END_TEST

START_TEST(a_conversion_cut_off_at_commit_leaves_a_guest)
{
    char cookie[128];
    int64_t id = tl_new_guest(ctx, cookie, sizeof cookie);
    /* The connection dies as COMMIT goes out: the library cannot tell
     * whether it ran and says the database is unavailable; here it did
     * not arrive, and the server rolled back. */
    arm(GUEST__FAULT_LOST, NULL, "COMMIT", 1);
    ck_assert_int_eq(convert(cookie, NULL), GUEST_ERR_DB_UNAVAILABLE);
    ck_assert_uint_eq(guest__fault_fired(), 1);
    assert_still_guest(cookie, id);
    /* COMMIT refused (a serialization failure) or answered with an
     * outage: the same. */
    arm(GUEST__FAULT_SQLSTATE, "40001", "COMMIT", 1);
    ck_assert_int_eq(convert(cookie, NULL), GUEST_ERR_DB);
    assert_still_guest(cookie, id);
    arm(GUEST__FAULT_SQLSTATE, "57P01", "COMMIT", 1);
    ck_assert_int_eq(convert(cookie, NULL), GUEST_ERR_DB_UNAVAILABLE);
    assert_still_guest(cookie, id);
    ck_assert_int_eq(allow(cookie), 200);
    assert_converted(cookie, id);
    ck_assert_uint_eq(metrics().pool_busy, 0);
}
END_TEST

START_TEST(an_outage_inside_the_transaction_rolls_it_back)
{
    char cookie[128];
    int64_t id = tl_new_guest(ctx, cookie, sizeof cookie);
    /* The rename's UPDATE: the guest row is locked and the user renamed
     * in the server's view when the next statement meets the outage. */
    arm(GUEST__FAULT_SQLSTATE, "57P01", "INSERT INTO \"" SCHEMA "\".sessions",
        1);
    ck_assert_int_eq(convert(cookie, NULL), GUEST_ERR_DB_UNAVAILABLE);
    ck_assert_uint_eq(guest__fault_fired(), 1);
    assert_still_guest(cookie, id);
    arm(GUEST__FAULT_LOST, NULL, "INSERT INTO \"" SCHEMA "\".sessions", 1);
    ck_assert_int_eq(convert(cookie, NULL), GUEST_ERR_DB_UNAVAILABLE);
    ck_assert_uint_eq(guest__fault_fired(), 1);
    assert_still_guest(cookie, id);
    assert_converted(cookie, id);
}
END_TEST

/* A sign-up store whose statement fails and which carries on as if it
 * had not. */
static guest_status ignoring_store(guest_db *db, const guest_user *user,
                                   const guest_form *form,
                                   guest_form_errors *errors, void *ud)
{
    (void)form, (void)errors, (void)ud;
    char id[32];
    snprintf(id, sizeof id, "%lld", (long long)guest_user_id(user));
    const char *p[] = {id};
    if (guest_db_exec(db,
                      "INSERT INTO " SCHEMA ".profiles VALUES ($1, 'first')", 1,
                      p, NULL) == GUEST_OK)
        return GUEST_OK;
    /* refused: the transaction's first failure stands */
    guest_error err = {.message = ""};
    ck_assert_int_eq(guest_db_exec(db,
                                   "INSERT INTO " SCHEMA
                                   ".profiles VALUES ($1, 'second')",
                                   1, p, &err),
                     GUEST_ERR_DB);
    ck_assert_ptr_nonnull(strstr(err.message, "earlier statement"));
    return GUEST_OK;
}

START_TEST(a_failed_transaction_is_never_committed)
{
    char cookie[128];
    int64_t id = tl_new_guest(ctx, cookie, sizeof cookie);
    /* Through the public API: the conversion sees the failure the
     * callback ignored and does not commit. */
    guest_signup su = {NULL, 0, NULL, ignoring_store, NULL};
    arm(GUEST__FAULT_SQLSTATE, "23505", "'first'", 1);
    ck_assert_int_eq(convert(cookie, &su), GUEST_ERR_DB);
    ck_assert_uint_eq(guest__fault_fired(), 1);
    assert_still_guest(cookie, id);

    /* guest__tx_commit itself, for a caller that did not look: every
     * caller in the library checks first, so only a direct call reaches
     * this backstop. COMMIT would roll back quietly; it is never reported
     * as success, and the connection goes back to the pool. */
    guest_db tx;
    guest_error err = {.message = ""};
    ck_assert_int_eq(guest__tx_begin(ctx, &tx, &err), GUEST_OK);
    const guest__stmt s = {
        .tmpl = "INSERT INTO @.profiles VALUES (1, 'in a failed tx')"};
    arm(GUEST__FAULT_SQLSTATE, "23505", "in a failed tx", 1);
    ck_assert_int_eq(guest__sql_run(ctx, &tx, &s, NULL, NULL), GUEST_ERR_DB);
    /* every later statement is refused without a round trip */
    const guest__stmt later = {.tmpl = "SELECT count(*) FROM @.profiles"};
    ck_assert_int_eq(guest__sql_run(ctx, &tx, &later, NULL, &err),
                     GUEST_ERR_DB);
    ck_assert_ptr_nonnull(strstr(err.message, "earlier statement"));
    ck_assert_ptr_nonnull(strstr(err.message, "injected fault"));
    ck_assert_int_eq(guest__tx_commit(&tx, &err), GUEST_ERR_DB);
    ck_assert_ptr_nonnull(strstr(err.message, "the transaction had failed"));
    ck_assert_ptr_null(tx.conn);
    /* and once it has ended, nothing runs in it */
    ck_assert_int_eq(guest__tx_commit(&tx, &err), GUEST_ERR_INVALID);
    ck_assert_int_eq(guest__sql_run(ctx, &tx, &later, NULL, &err),
                     GUEST_ERR_INVALID);
    guest__tx_abort(&tx);
    ck_assert_int_eq(count_in("SELECT count(*) FROM @.profiles"), 0);
    ck_assert_uint_eq(metrics().pool_busy, 0);
    assert_converted(cookie, id);
}
END_TEST

/* ---- the guest_db_exec backstop ---- */

static guest_status profile_store(guest_db *db, const guest_user *user,
                                  const guest_form *form,
                                  guest_form_errors *errors, void *ud)
{
    (void)form, (void)errors;
    guest_status *seen = ud;
    char id[32];
    snprintf(id, sizeof id, "%lld", (long long)guest_user_id(user));
    const char *p[] = {id};
    guest_error err = {.message = ""};
    *seen = guest_db_exec(
        db, "INSERT INTO " SCHEMA ".profiles VALUES ($1, 'profile')", 1, p,
        &err);
    if (*seen == GUEST_ERR_INVALID)
        ck_assert_ptr_nonnull(strstr(err.message, "ended the library's"));
    return GUEST_OK;
}

/* A statement the keyword check cannot read (a comment never closed):
 * the server refuses it, and the conversion with it. */
static guest_status unreadable_store(guest_db *db, const guest_user *user,
                                     const guest_form *form,
                                     guest_form_errors *errors, void *ud)
{
    (void)user, (void)form, (void)errors, (void)ud;
    ck_assert_int_eq(guest_db_exec(db, "/* COMMIT", 0, NULL, NULL),
                     GUEST_ERR_DB);
    return GUEST_OK;
}

START_TEST(a_statement_the_check_cannot_read_is_the_servers_to_refuse)
{
    char cookie[128];
    int64_t id = tl_new_guest(ctx, cookie, sizeof cookie);
    guest_signup su = {NULL, 0, NULL, unreadable_store, NULL};
    ck_assert_int_eq(convert(cookie, &su), GUEST_ERR_DB);
    assert_still_guest(cookie, id);
}
END_TEST

START_TEST(a_statement_that_ends_the_transaction_is_caught)
{
    char cookie[128];
    int64_t id = tl_new_guest(ctx, cookie, sizeof cookie);
    guest_status seen = GUEST_OK;
    guest_signup su = {NULL, 0, NULL, profile_store, &seen};
    /* The keyword check lets the INSERT through; what runs ends the
     * transaction (as a function could, were the server to allow it).
     * The check after the statement catches it: the conversion fails and
     * nothing of it stays, not even what ran before the callback. */
    arm(GUEST__FAULT_END_TX, NULL, "'profile'", 1);
    ck_assert_int_eq(convert(cookie, &su), GUEST_ERR_INVALID);
    ck_assert_int_eq(seen, GUEST_ERR_INVALID);
    ck_assert_uint_eq(guest__fault_fired(), 1);
    assert_still_guest(cookie, id);
    /* The connection, in no transaction, serves the next request. */
    ck_assert_int_eq(allow(cookie), 200);
    ck_assert_uint_eq(metrics().pool_busy, 0);
    ck_assert_int_eq(convert(cookie, &su), GUEST_OK);
    ck_assert_int_eq(seen, GUEST_OK);
    ck_assert_int_eq(count_in("SELECT count(*) FROM @.profiles"), 1);
}
END_TEST

/* ---- new connections ---- */

START_TEST(a_new_connection_failing_its_check_is_not_used)
{
    /* A new connection is asked whether the startup options arrived
     * (db_pooler AUTO) before its first statement. An outage there leaves
     * no connection behind. */
    /* The connections left open by the migrations are dropped first, by
     * an outage each. */
    for (int i = 0; i < 4 && metrics().pool_open > 0; i++) {
        arm(GUEST__FAULT_SQLSTATE, "57P01", "fault_drop", 1);
        PGresult *r = NULL;
        ck_assert_int_eq(
            guest_db_query(ctx, "SELECT 'fault_drop'", 0, NULL, &r, NULL),
            GUEST_ERR_DB_UNAVAILABLE);
    }
    ck_assert_uint_eq(metrics().pool_open, 0);
    arm(GUEST__FAULT_SQLSTATE, "57P01", "guestuser.startup", 1);
    ck_assert_int_eq(allow(NULL), 503);
    ck_assert_uint_eq(guest__fault_fired(), 1);
    ck_assert_uint_eq(metrics().pool_open, 0);
    /* the same for a connection the application borrows */
    arm(GUEST__FAULT_LOST, NULL, "guestuser.startup", 1);
    PGconn *c = NULL;
    guest_error err = {.message = ""};
    ck_assert_int_eq(guest_db_borrow(ctx, &c, &err), GUEST_ERR_DB_UNAVAILABLE);
    ck_assert_ptr_null(c);
    ck_assert_uint_eq(guest__fault_fired(), 1);
    ck_assert_uint_eq(metrics().pool_open, 0);
    ck_assert_uint_eq(metrics().pool_busy, 0);
    ck_assert_int_eq(allow(NULL), 200);
    ck_assert_uint_eq(metrics().pool_open, 1);
}
END_TEST

START_TEST(a_missing_database_is_refused_at_the_start)
{
    /* The server answers the connection with an error (no such
     * database): the context is not made, and the reason is given. */
    guest_config c;
    tl_config(&c, SCHEMA);
    char conninfo[512];
    snprintf(conninfo, sizeof conninfo, "%s dbname=guestuser_no_such_db",
             tl_conninfo());
    c.db_conninfo = conninfo;
    c.db_timeout_ms = 10000;
    guest_ctx *none = NULL;
    guest_error err = {.message = ""};
    ck_assert_int_eq(guest_ctx_new(&c, &none, &err), GUEST_ERR_DB_UNAVAILABLE);
    ck_assert_ptr_null(none);
    ck_assert_ptr_nonnull(strstr(err.message, "guestuser_no_such_db"));
}
END_TEST

START_TEST(an_idle_connection_the_server_ended_is_replaced)
{
    char cookie[128];
    int64_t id = tl_new_guest(ctx, cookie, sizeof cookie);
    PGresult *r = NULL;
    ck_assert_int_eq(
        guest_db_query(ctx, "SELECT pg_backend_pid()", 0, NULL, &r, NULL),
        GUEST_OK);
    char pid[32], sql[128];
    snprintf(pid, sizeof pid, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    /* Ended by the server (an administrator, an idle timeout) while it
     * sat in the pool; the call returns once the backend is gone. */
    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%s, 30000)", pid);
    tl_exec(sql);
    /* The pool finds its goodbye before using it: the visitor notices
     * nothing, and a new backend serves. */
    bool g = false;
    ck_assert_int_eq(tl_whoami(ctx, cookie, &g), id);
    ck_assert(g);
    ck_assert_int_eq(
        guest_db_query(ctx, "SELECT pg_backend_pid()", 0, NULL, &r, NULL),
        GUEST_OK);
    ck_assert_str_ne(PQgetvalue(r, 0, 0), pid);
    PQclear(r);
}
END_TEST

START_TEST(a_returned_connection_whose_rollback_fails_is_closed)
{
    PGconn *c = NULL;
    ck_assert_int_eq(guest_db_borrow(ctx, &c, NULL), GUEST_OK);
    int pid = PQbackendPID(c);
    PGresult *r = PQexec(c, "BEGIN");
    ck_assert_int_eq(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    /* The application left a transaction open; the rollback on its
     * return meets a dead connection, which is closed, not pooled. */
    arm(GUEST__FAULT_LOST, NULL, "ROLLBACK", 1);
    guest_db_return(ctx, c);
    ck_assert_uint_eq(guest__fault_fired(), 1);
    ck_assert_uint_eq(metrics().pool_busy, 0);
    ck_assert_int_eq(guest_db_borrow(ctx, &c, NULL), GUEST_OK);
    ck_assert_int_ne(PQbackendPID(c), pid);
    ck_assert_int_eq(PQtransactionStatus(c), PQTRANS_IDLE);
    guest_db_return(ctx, c);
}
END_TEST

/* ---- failures without the hook ---- */

START_TEST(a_backend_that_ends_under_its_statement_is_an_outage)
{
    /* The server ends the connection while running the statement (as an
     * administrator's pg_terminate_backend or a crash does): an outage,
     * the connection dropped, the next statement served. */
    PGresult *r = NULL;
    guest_metrics before = metrics();
    ck_assert_int_eq(guest_db_query(ctx,
                                    "SELECT pg_terminate_backend("
                                    "pg_backend_pid())",
                                    0, NULL, &r, NULL),
                     GUEST_ERR_DB_UNAVAILABLE);
    ck_assert_ptr_null(r);
    ck_assert_uint_eq(metrics().pool_open + 1, before.pool_open);
    ck_assert_int_eq(guest_db_query(ctx, "SELECT 1", 0, NULL, &r, NULL),
                     GUEST_OK);
    PQclear(r);
}
END_TEST

START_TEST(a_statement_larger_than_the_socket_buffer_is_sent_whole)
{
    /* Sent without blocking: the send waits for room within the deadline
     * and the statement arrives whole. */
    size_t n = 16u << 20;
    char *big = malloc(n + 1);
    ck_assert_ptr_nonnull(big);
    memset(big, 'x', n);
    big[n] = '\0';
    const char *p[] = {big};
    PGresult *r = NULL;
    ck_assert_int_eq(
        guest_db_query(ctx, "SELECT length($1::text)", 1, p, &r, NULL),
        GUEST_OK);
    ck_assert_str_eq(PQgetvalue(r, 0, 0), "16777216");
    PQclear(r);
    free(big);
}
END_TEST

/* A statement failing with a message longer than a guest_error holds. */
static guest_status long_error_store(guest_db *db, const guest_user *user,
                                     const guest_form *form,
                                     guest_form_errors *errors, void *ud)
{
    (void)user, (void)form, (void)errors, (void)ud;
    ck_assert_int_eq(guest_db_exec(db,
                                   "DO $$BEGIN RAISE EXCEPTION '%', "
                                   "repeat('long ', 400); END$$",
                                   0, NULL, NULL),
                     GUEST_ERR_DB);
    return GUEST_OK;
}

START_TEST(a_long_failure_is_kept_cut_to_size)
{
    char cookie[128];
    int64_t id = tl_new_guest(ctx, cookie, sizeof cookie);
    guest_signup su = {NULL, 0, NULL, long_error_store, NULL};
    conv c = {.signup = &su};
    tl_http h;
    tl_http_init(&h, "POST", "/convert/");
    tl_http_add(&h, "Cookie", cookie);
    tl_http_run(ctx, &h, convert_handler, &c);
    tl_http_free(&h);
    ck_assert_int_eq(c.st, GUEST_ERR_DB);
    ck_assert_ptr_nonnull(strstr(c.err.message, "long long"));
    ck_assert_uint_lt(strlen(c.err.message), sizeof c.err.message);
    assert_still_guest(cookie, id);
}
END_TEST

/* ---- cleanup and the admin lists ---- */

static bool count_one(const guest_info *g, void *ud)
{
    (void)g;
    (*(int *)ud)++;
    return true;
}

START_TEST(cleanup_and_the_admin_lists_report_an_outage)
{
    char cookie[128];
    tl_new_guest(ctx, cookie, sizeof cookie);
    guest_error err = {0};
    /* each reads the server's clock first */
    arm(GUEST__FAULT_SQLSTATE, "57P01", "extract(epoch FROM now())", 1);
    guest_cleanup_options opts;
    guest_cleanup_options_init(&opts);
    opts.max_age = 1;
    guest_cleanup_result r;
    ck_assert_int_eq(guest_delete_expired(ctx, &opts, &r, &err),
                     GUEST_ERR_DB_UNAVAILABLE);
    ck_assert_uint_eq(guest__fault_fired(), 1);
    int n = 0;
    arm(GUEST__FAULT_SQLSTATE, "57P01", "extract(epoch FROM now())", 1);
    ck_assert_int_eq(guest_guests_list(ctx, false, 0, 0, count_one, &n, &err),
                     GUEST_ERR_DB_UNAVAILABLE);
    ck_assert_int_eq(n, 0);
    arm(GUEST__FAULT_SQLSTATE, "57P01", "extract(epoch FROM now())", 1);
    guest_stats stats;
    ck_assert_int_eq(guest_stats_get(ctx, 0, &stats, &err),
                     GUEST_ERR_DB_UNAVAILABLE);
    /* a negative age is refused before the database is asked */
    ck_assert_int_eq(guest_guests_list(ctx, false, -1, 0, count_one, &n, &err),
                     GUEST_ERR_INVALID);
    /* nothing was deleted, and everything works again */
    ck_assert_int_eq(count_in("SELECT count(*) FROM @.guests"), 1);
    ck_assert_int_eq(guest_guests_list(ctx, false, 0, 0, count_one, &n, &err),
                     GUEST_OK);
    ck_assert_int_eq(n, 1);
}
END_TEST

START_TEST(a_migration_that_fails_leaves_no_schema)
{
    /* The migrations run in one transaction: a failure in the middle
     * leaves nothing, and the next start applies them all. */
    tl_drop_schema("t_faults_mig");
    guest_config c;
    tl_config(&c, "t_faults_mig");
    arm(GUEST__FAULT_SQLSTATE, "XX000",
        "INSERT INTO \"t_faults_mig\".schema_migrations", 1);
    guest_ctx *mig = NULL;
    guest_error err = {.message = ""};
    ck_assert_int_eq(guest_ctx_new(&c, &mig, &err), GUEST_ERR_DB);
    ck_assert_ptr_null(mig);
    ck_assert_uint_eq(guest__fault_fired(), 1);
    ck_assert_int_eq(tl_scalar("SELECT count(*) FROM pg_namespace WHERE"
                               " nspname = 't_faults_mig'"),
                     0);
    mig = tl_ctx_new(&c);
    ck_assert_int_gt(tl_scalar("SELECT count(*) FROM"
                               " t_faults_mig.schema_migrations"),
                     1);
    guest_ctx_free(mig);
    tl_drop_schema("t_faults_mig");
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("faults");
    TCase *t = tcase_create("faults");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_set_timeout(t, 120);
    tcase_add_test(t, sqlstate_08_and_57p_are_an_outage_the_pool_recovers_from);
    tcase_add_test(t,
                   other_sqlstates_fail_the_statement_and_keep_the_connection);
    tcase_add_test(t, creating_a_guest_during_an_outage_writes_nothing);
    tcase_add_test(t, a_statement_that_never_left_is_sent_once_more);
    tcase_add_test(t, an_application_query_on_a_dead_connection);
    tcase_add_test(t, begin_on_a_dead_connection_is_retried);
    tcase_add_test(t, begin_failing_twice_is_an_outage);
    tcase_add_test(t, begin_refused_is_not_tried_again);
    tcase_add_test(t, a_conversion_cut_off_at_commit_leaves_a_guest);
    tcase_add_test(t, an_outage_inside_the_transaction_rolls_it_back);
    tcase_add_test(t, a_failed_transaction_is_never_committed);
    tcase_add_test(t, a_statement_that_ends_the_transaction_is_caught);
    tcase_add_test(t, a_new_connection_failing_its_check_is_not_used);
    tcase_add_test(t, a_missing_database_is_refused_at_the_start);
    tcase_add_test(t, an_idle_connection_the_server_ended_is_replaced);
    tcase_add_test(t, a_returned_connection_whose_rollback_fails_is_closed);
    tcase_add_test(t,
                   a_statement_the_check_cannot_read_is_the_servers_to_refuse);
    tcase_add_test(t, a_backend_that_ends_under_its_statement_is_an_outage);
    tcase_add_test(t, a_statement_larger_than_the_socket_buffer_is_sent_whole);
    tcase_add_test(t, a_long_failure_is_kept_cut_to_size);
    tcase_add_test(t, a_migration_that_fails_leaves_no_schema);
    tcase_add_test(t, cleanup_and_the_admin_lists_report_an_outage);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return tl_run(suite());
}

/* The pool across a database restart and a statement the client gave up
 * on. Brings its own cluster up and down (like test_outage), so other
 * suites keep theirs. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "testlib.h"

static const char *pg_dir = "restart-pg";

static const char *conninfo(void)
{
    static char buf[256];
    tl_pg_conninfo(pg_dir, buf, sizeof buf);
    return buf;
}

static guest_ctx *ctx_on_cluster(unsigned pool, unsigned timeout_ms)
{
    guest_config c;
    guest_config_init(&c);
    c.db_conninfo = conninfo();
    c.db_schema = "t_restart";
    c.db_pool_size = pool;
    c.db_timeout_ms = timeout_ms;
    return tl_ctx_new(&c);
}

START_TEST(idle_connections_survive_a_restart)
{
    tl_pg("start", pg_dir, NULL);
    guest_ctx *ctx = ctx_on_cluster(4, 30000);
    /* open every connection of the pool, then leave them idle */
    PGconn *held[4];
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(guest__pool_acquire_by(
                             ctx->pool, guest__now_ms() + 3000, &held[i], NULL),
                         GUEST_OK);
    for (int i = 0; i < 4; i++)
        guest__pool_release(ctx->pool, held[i], false);

    tl_pg("pause", pg_dir, NULL);
    tl_pg("resume", pg_dir, NULL);
    /* Every idle connection is dead now, yet no request may notice. */
    for (int i = 0; i < 6; i++) {
        guest_error err = {0};
        ck_assert_msg(guest_ping(ctx, &err) == GUEST_OK, "ping %d: %s", i,
                      err.message);
    }
    guest_ctx_free(ctx);
    tl_pg("stop", pg_dir, NULL);
}
END_TEST

START_TEST(an_abandoned_statement_stops_on_the_server)
{
    tl_pg("start", pg_dir, NULL);
    guest_ctx *ctx = ctx_on_cluster(2, 500);
    /* A statement far longer than the timeout and than the generous bound
     * below: returning before that bound means it was abandoned. */
    guest__params p = {0};
    guest__param_text(&p, "120");
    PGresult *res = NULL;
    guest_error err = {0};
    long long t0 = tl_now_ms();
    const guest__stmt s = {.sql = "SELECT pg_sleep($1::float8)", .params = &p};
    guest_status st = guest__sql_run(ctx, NULL, &s, &res, &err);
    long long took = tl_now_ms() - t0;
    /* Whichever stops it first: the client's deadline (an outage, the
     * connection dropped and the statement cancelled) or the server's
     * statement_timeout (the statement's own error, 57014). */
    if (st == GUEST_ERR_DB)
        ck_assert_str_eq(PQresultErrorField(res, PG_DIAG_SQLSTATE), "57014");
    else
        ck_assert_int_eq(st, GUEST_ERR_DB_UNAVAILABLE);
    PQclear(res);
    ck_assert_int_lt(took, 30000);
    /* the server was told the same limit: nothing keeps sleeping (waited
     * for up to 30 s) */
    PGconn *c = PQconnectdb(conninfo());
    ck_assert_int_eq(PQstatus(c), CONNECTION_OK);
    long long left = -1;
    for (int i = 0; i < 300 && left != 0; i++) {
        PGresult *r = PQexec(c, "SELECT count(*) FROM pg_stat_activity WHERE "
                                "query LIKE 'SELECT pg_sleep(%' AND "
                                "state = 'active'");
        left = atoll(PQgetvalue(r, 0, 0));
        PQclear(r);
        if (left)
            usleep(100 * 1000);
    }
    PQfinish(c);
    ck_assert_int_eq(left, 0);
    /* and the pool still works */
    ck_assert_int_eq(guest_ping(ctx, NULL), GUEST_OK);
    guest_ctx_free(ctx);
    tl_pg("stop", pg_dir, NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("restart");
    TCase *tc = tcase_create("restart");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, idle_connections_survive_a_restart);
    tcase_add_test(tc, an_abandoned_statement_stops_on_the_server);
    suite_add_tcase(s, tc);
    return tl_run(s);
}

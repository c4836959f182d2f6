/* The pool lent to the application (guestuser/db.h): one statement on a
 * pooled connection, or a whole connection borrowed and given back. The
 * application's SQL runs with the same deadline and outage rules as the
 * library's own, so a database outage answers 503 in db_timeout_ms on
 * every route, not only the library's. */
#include <string.h>

#include "store/store.h"

static guest_status check_args(const void *ctx, const char *sql, int nparams,
                               const char *const *params, PGresult **res,
                               guest_error *err)
{
    if (res)
        *res = NULL;
    if (!ctx || !sql || !res || nparams < 0 || nparams > GUEST_DB_MAX_PARAMS ||
        (nparams > 0 && !params))
        return guest__fail(err, GUEST_ERR_INVALID,
                           "a context or request, sql and res are required, "
                           "with at most %d parameters",
                           GUEST_DB_MAX_PARAMS);
    return GUEST_OK;
}

/* Only an SQL error leaves its result for the caller to read. */
static void drop_unless_sql_error(guest_status st, PGresult **res)
{
    if (st != GUEST_OK && st != GUEST_ERR_DB && *res) {
        PQclear(*res);
        *res = NULL;
    }
}

static void text_params(guest__params *p, int nparams,
                        const char *const *params)
{
    memset(p, 0, sizeof *p);
    for (int i = 0; i < nparams; i++)
        guest__param_text(p, params[i]);
}

guest_status guest_db_query(guest_ctx *ctx, const char *sql, int nparams,
                            const char *const *params, PGresult **res,
                            guest_error *err)
{
    guest_status st = check_args(ctx, sql, nparams, params, res, err);
    if (st != GUEST_OK)
        return st;
    guest__params p;
    text_params(&p, nparams, params);
    /* Never the simple protocol: one statement, even without parameters. */
    st = guest__sql_run(ctx, NULL, &(guest__stmt){.sql = sql, .params = &p},
                        res, err);
    drop_unless_sql_error(st, res);
    return st;
}

guest_status guest__db_lend(guest_ctx *ctx, PGconn **conn, guest_error *err)
{
    int64_t deadline = guest__now_ms() + ctx->cfg.db_timeout_ms;
    guest_status st = guest__pool_acquire_by(ctx->pool, deadline, conn, err);
    if (st != GUEST_OK)
        return guest__db_down(ctx, st, err);
    /* The pool keeps its connections non-blocking for its own deadlines.
     * The application gets libpq's ordinary mode, in which every libpq
     * call (PQputCopyData included) behaves as its manual says; the
     * server-side statement_timeout bounds each statement. */
    if (PQsetnonblocking(*conn, 0) != 0) {
        guest__pool_release(ctx->pool, *conn, true);
        *conn = NULL;
        return guest__fail(err, GUEST_ERR_DB_UNAVAILABLE,
                           "cannot switch a connection to blocking mode");
    }
    return GUEST_OK;
}

void guest__db_take_back(guest_ctx *ctx, PGconn *conn, bool broken)
{
    if (!conn)
        return;
    /* Nothing is read from @p conn before the pool vouches for it: a
     * connection given back twice may be closed already, and a foreign
     * one is the application's to keep. */
    if (!guest__pool_lent(ctx->pool, conn)) {
        guest__log(ctx, GUEST_LOG_ERROR,
                   "guest_db_return: a connection this context did not lend, "
                   "or one given back already: ignored");
        return;
    }
    PGTransactionStatusType ts = PQtransactionStatus(conn);
    if (PQstatus(conn) != CONNECTION_OK || ts == PQTRANS_ACTIVE ||
        ts == PQTRANS_UNKNOWN)
        broken = true;
    if (PQsetnonblocking(conn, 1) != 0)
        broken = true;
    /* A transaction the application left open is rolled back here rather
     * than by closing the connection: reconnecting costs more than one
     * round trip. Within the usual deadline; a failure drops it. */
    if (!broken && (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR)) {
        bool sent;
        const guest__stmt s = {.sql = "ROLLBACK", .script = true};
        if (guest__sql_send_on(conn, ctx->cfg.db_timeout_ms, &s, s.sql, NULL,
                               &broken, &sent, NULL) != GUEST_OK)
            broken = true;
    }
    guest__pool_release(ctx->pool, conn, broken);
}

guest_status guest_db_borrow(guest_ctx *ctx, PGconn **conn, guest_error *err)
{
    if (conn)
        *conn = NULL;
    if (!ctx || !conn)
        return guest__fail(err, GUEST_ERR_INVALID, "ctx and conn required");
    return guest__db_lend(ctx, conn, err);
}

void guest_db_return(guest_ctx *ctx, PGconn *conn)
{
    if (ctx)
        guest__db_take_back(ctx, conn, false);
}

guest_status guest__db_query_on(guest_ctx *ctx, PGconn *conn, const char *sql,
                                int nparams, const char *const *params,
                                PGresult **res, bool *broken, guest_error *err)
{
    guest_status st = check_args(ctx, sql, nparams, params, res, err);
    if (st != GUEST_OK)
        return st;
    guest__params p;
    text_params(&p, nparams, params);
    bool sent;
    *broken = false;
    st = guest__sql_send_on(conn, ctx->cfg.db_timeout_ms,
                            &(guest__stmt){.sql = sql, .params = &p}, sql, res,
                            broken, &sent, err);
    drop_unless_sql_error(st, res);
    return guest__db_down(ctx, st, err);
}

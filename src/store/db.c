/* Running statements with a deadline, and the retry-once rule. */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <time.h>

#include "internal.h"

/* Counts statements sent, so tests can hold the one-round-trip promise. */
_Atomic unsigned long guest__db_round_trips;

void guest__param_text(guest__params *p, const char *value)
{
    p->values[p->n] = value;
    p->lengths[p->n] = 0;
    p->formats[p->n] = 0;
    p->n++;
}

void guest__param_bin(guest__params *p, const void *value, int len)
{
    p->values[p->n] = value;
    p->lengths[p->n] = len;
    p->formats[p->n] = 1;
    p->n++;
}

int64_t guest__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool wait_socket(PGconn *conn, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - guest__now_ms();
        if (left <= 0)
            return false;
        struct pollfd pfd = {.fd = PQsocket(conn), .events = events};
        int rc = poll(&pfd, 1, (int)left);
        if (rc > 0)
            return true;
        if (rc < 0 && errno != EINTR)
            return false;
    }
}

static guest_status conn_failure(PGconn *conn, bool *broken, guest_error *err,
                                 const char *what)
{
    *broken = true;
    return guest__fail_pq(err, GUEST_ERR_DB_UNAVAILABLE, what, conn);
}

/* Waits for the result of what was just queued. *sent turns true once the
 * whole statement left: from then on it may have run, whatever happens to
 * the connection. */
static guest_status collect(PGconn *conn, int64_t deadline, unsigned timeout_ms,
                            PGresult **res, bool *broken, bool *sent,
                            guest_error *err)
{
    int f;
    while ((f = PQflush(conn)) == 1)
        if (!wait_socket(conn, POLLOUT | POLLIN, deadline))
            goto timeout;
    if (f < 0)
        return conn_failure(conn, broken, err, "sending a statement");
    *sent = true;

    PGresult *last = NULL;
    guest_status st = GUEST_OK;
    for (;;) {
        while (PQisBusy(conn)) {
            if (!wait_socket(conn, POLLIN, deadline)) {
                PQclear(last);
                goto timeout;
            }
            if (!PQconsumeInput(conn)) {
                PQclear(last);
                return conn_failure(conn, broken, err, "reading a result");
            }
        }
        PGresult *r = PQgetResult(conn);
        if (!r)
            break;
        /* Keep the first error of a script, else the last result. */
        ExecStatusType rs = PQresultStatus(r);
        if (last && rs != PGRES_FATAL_ERROR &&
            PQresultStatus(last) == PGRES_FATAL_ERROR) {
            PQclear(r);
            continue;
        }
        PQclear(last);
        last = r;
    }
    if (!last)
        return conn_failure(conn, broken, err, "no result");
    ExecStatusType es = PQresultStatus(last);
    if (es != PGRES_COMMAND_OK && es != PGRES_TUPLES_OK) {
        if (PQstatus(conn) != CONNECTION_OK) {
            PQclear(last);
            return conn_failure(conn, broken, err, "statement failed");
        }
        const char *state = PQresultErrorField(last, PG_DIAG_SQLSTATE);
        const char *msg = PQresultErrorField(last, PG_DIAG_MESSAGE_PRIMARY);
        st = guest__fail(err, GUEST_ERR_DB, "SQLSTATE %s: %s",
                         state ? state : "?????", msg ? msg : "unknown");
        /* The server shutting down or a crash recovery is an outage, not
         * a bad statement: class 57 (operator intervention) and 08. */
        if (state && (!strncmp(state, "57", 2) || !strncmp(state, "08", 2))) {
            *broken = true;
            st = GUEST_ERR_DB_UNAVAILABLE;
            if (err)
                err->status = st;
        }
    }
    if (res)
        *res = last;
    else
        PQclear(last);
    return st;
timeout:
    /* The connection is mid-statement: it cannot be reused, so it is
     * dropped (the server cancels the statement when it notices). */
    *broken = true;
    return guest__fail(err, GUEST_ERR_DB_UNAVAILABLE,
                       "the database did not answer within %u ms", timeout_ms);
}

static guest_status run_text(PGconn *conn, unsigned timeout_ms, const char *sql,
                             const guest__params *p, PGresult **res,
                             bool *broken, bool *sent, guest_error *err)
{
    int64_t deadline = guest__now_ms() + timeout_ms;
    *broken = false;
    *sent = false;
    guest__db_round_trips++;
    if (res)
        *res = NULL;
    /* Without parameters the simple protocol is used, which allows a script
     * of several statements (migrations); with them, exactly one. */
    int ok = p ? PQsendQueryParams(conn, sql, p->n, NULL, p->values, p->lengths,
                                   p->formats, 0)
               : PQsendQuery(conn, sql);
    if (!ok)
        return conn_failure(conn, broken, err, "sending a statement");
    return collect(conn, deadline, timeout_ms, res, broken, sent, err);
}

guest_status guest__db_run(PGconn *conn, unsigned timeout_ms, const char *sql,
                           const guest__params *p, PGresult **res, bool *broken,
                           guest_error *err)
{
    bool sent;
    return run_text(conn, timeout_ms, sql, p, res, broken, &sent, err);
}

static bool is_missing_statement(PGresult *r)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    return state && !strcmp(state, "26000");
}

/* Runs the named prepared statement, preparing it first on a connection
 * that does not have it yet. Preparing on demand needs no per-connection
 * bookkeeping and costs one extra round trip per connection, once; after
 * that each request skips parsing and planning. */
static guest_status run_prepared(PGconn *conn, unsigned timeout_ms,
                                 const char *name, const char *sql,
                                 const guest__params *p, PGresult **res,
                                 bool *broken, bool *sent, guest_error *err)
{
    int64_t deadline = guest__now_ms() + timeout_ms;
    *broken = false;
    *sent = false;
    *res = NULL;
    for (int attempt = 0; attempt < 2; attempt++) {
        guest__db_round_trips++;
        if (!PQsendQueryPrepared(conn, name, p->n, p->values, p->lengths,
                                 p->formats, 0))
            return conn_failure(conn, broken, err, "sending a statement");
        guest_status st =
            collect(conn, deadline, timeout_ms, res, broken, sent, err);
        if (st != GUEST_ERR_DB || attempt || !is_missing_statement(*res))
            return st;
        PQclear(*res);
        *res = NULL;
        if (!PQsendPrepare(conn, name, sql, p->n, NULL))
            return conn_failure(conn, broken, err, "preparing a statement");
        bool prepared_sent;
        st = collect(conn, deadline, timeout_ms, res, broken, &prepared_sent,
                     err);
        PQclear(*res);
        *res = NULL;
        if (st != GUEST_OK)
            return st;
    }
    return GUEST_ERR_DB;
}

static guest_status exec(guest_ctx *ctx, const char *name, const char *sql,
                         const guest__params *p, PGresult **res,
                         guest_error *err)
{
    guest_status st = GUEST_ERR_DB_UNAVAILABLE;
    int64_t deadline = guest__now_ms() + ctx->cfg.db_timeout_ms;
    if (res)
        *res = NULL;
    /* The pool hands out connections it has just checked, yet one can still
     * die between that check and the send; a statement that never left is
     * sent once more on another connection. One that left may have run
     * (a guest created, a batch deleted), so it is never repeated. Both
     * tries share one deadline: an outage answers within db_timeout_ms. */
    for (int attempt = 0; attempt < 2; attempt++) {
        PGconn *conn;
        st = guest__pool_acquire_by(ctx->pool, deadline, &conn, err);
        if (st != GUEST_OK)
            return st;
        bool broken = false, sent = false;
        int64_t left = deadline - guest__now_ms();
        unsigned budget = left > 1 ? (unsigned)left : 1;
        st = name ? run_prepared(conn, budget, name, sql, p, res, &broken,
                                 &sent, err)
                  : run_text(conn, budget, sql, p, res, &broken, &sent, err);
        guest__pool_release(ctx->pool, conn, broken);
        if (!broken || sent || guest__now_ms() >= deadline)
            return st;
        if (res && *res) {
            PQclear(*res);
            *res = NULL;
        }
    }
    return st;
}

guest_status guest__db_exec(guest_ctx *ctx, const char *sql,
                            const guest__params *p, PGresult **res,
                            guest_error *err)
{
    return exec(ctx, NULL, sql, p, res, err);
}

guest_status guest__db_exec_prepared(guest_ctx *ctx, const char *name,
                                     const char *sql, const guest__params *p,
                                     PGresult **res, guest_error *err)
{
    return exec(ctx, name, sql, p, res, err);
}

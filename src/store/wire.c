/* One statement on one connection, within a deadline: sent (prepared or
 * as text), waited for without blocking past the deadline, its result
 * collected, a broken connection told apart from a refused statement.
 * Below both the pool (which checks new connections with it) and the
 * statement runner in db.c, so neither has to call the other. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "store/store.h"

guest_status guest__fail_pq(guest_error *err, guest_status st, const char *what,
                            const PGconn *conn)
{
    /* libpq's messages end in a newline (sometimes two lines); keep the
     * text, drop the trailing line break. */
    const char *msg = conn ? PQerrorMessage(conn) : "";
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        n--;
    return guest__fail(err, st, "%s: %.*s", what, (int)n, msg);
}

static _Atomic int cancels_running;

static void *cancel_thread(void *arg)
{
    PGcancel *c = arg;
    char buf[256];
    (void)PQcancel(c, buf, sizeof buf);
    PQfreeCancel(c);
    cancels_running--;
    return NULL;
}

void guest__conn_cancel_async(PGconn *conn)
{
    /* PQcancel opens a new connection and blocks while it does; in its own
     * thread it cannot hold up the request that gave up. A handful at a
     * time is enough: past that the database is down, and cancelling
     * cannot help. */
    if (++cancels_running > 4) {
        cancels_running--;
        return;
    }
    PGcancel *c = PQgetCancel(conn);
    pthread_t t;
    pthread_attr_t attr;
    bool started = false;
    if (c && pthread_attr_init(&attr) == 0) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        started = pthread_create(&t, &attr, cancel_thread, c) == 0;
        pthread_attr_destroy(&attr);
    }
    if (!started) {
        PQfreeCancel(c);
        cancels_running--;
    }
}

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

void guest__param_int(guest__params *p, char buf[GUEST__INT_BUF], int64_t value)
{
    snprintf(buf, GUEST__INT_BUF, "%lld", (long long)value);
    guest__param_text(p, buf);
}

void guest__param_limit(guest__params *p, char buf[GUEST__INT_BUF],
                        size_t limit)
{
    snprintf(buf, GUEST__INT_BUF, "%zu", limit);
    guest__param_text(p, limit ? buf : NULL);
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
        /* The server shutting down, a crash recovery or a lost connection
         * is an outage, not a bad statement: class 08 and 57P01..57P05.
         * 57014 (query_canceled: statement_timeout, a cancel) is the
         * statement's own failure, on a connection that still works. */
        if (state && (!strncmp(state, "08", 2) || !strncmp(state, "57P", 3))) {
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
     * dropped. The server would notice only when it next writes to it, so
     * it is asked to stop now: behind a transaction-mode pooler there is no
     * statement_timeout of ours to do it. */
    guest__conn_cancel_async(conn);
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

guest_status guest__sql_send_on(PGconn *conn, unsigned timeout_ms,
                                const guest__stmt *s, const char *sql,
                                PGresult **res, bool *broken, bool *sent,
                                guest_error *err)
{
    static const guest__params none = {0};
#ifdef GUESTUSER_FAULTS
    /* A test's fault stands in for the statement here, below every caller,
     * so the pool, the retries and the transactions above meet it as they
     * would meet the real failure. */
    const char *instead = guest__fault_take(conn, s->prepared, sql);
    if (instead) {
        static const guest__stmt simple = {.script = true};
        s = &simple;
        sql = instead;
    }
#endif
    const guest__params *p = s->params ? s->params : &none;
    PGresult *r = NULL;
    guest_status st =
        s->prepared ? run_prepared(conn, timeout_ms, s->prepared, sql, p, &r,
                                   broken, sent, err)
                    : run_text(conn, timeout_ms, sql, s->script ? NULL : p, &r,
                               broken, sent, err);
    if (res)
        *res = r;
    else
        PQclear(r);
    return st;
}

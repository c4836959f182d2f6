/* The one way the library runs SQL: statements with a deadline, prepared
 * or not, on a pooled connection with the retry-once rule or inside a
 * transaction; the transactions themselves, and the guest_db handle lent
 * to application callbacks inside them. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "store/store.h"

/* The one schema expansion (declared in store.h). */
char *guest__schema_sql(const char *tmpl, const char *schema)
{
    /* The schema name was validated as [a-z_][a-z0-9_]* by the config, so
     * quoting it needs no escaping. */
    size_t n = 0, slen = strlen(schema);
    for (const char *p = tmpl; *p; p++)
        n += *p == '@' ? slen + 2 : 1;
    char *out = malloc(n + 1), *o = out;
    if (!out)
        return NULL;
    for (const char *p = tmpl; *p; p++) {
        if (*p != '@') {
            *o++ = *p;
            continue;
        }
        *o++ = '"';
        memcpy(o, schema, slen);
        o += slen;
        *o++ = '"';
    }
    *o = '\0';
    return out;
}

static guest_status run_pooled(guest_ctx *ctx, guest__pool *pool,
                               const guest__stmt *s, const char *sql,
                               PGresult **res, guest_error *err)
{
    guest_status st = GUEST_ERR_DB_UNAVAILABLE;
    int64_t deadline = guest__now_ms() + ctx->cfg.db_timeout_ms;
    /* The pool hands out connections it has just checked, yet one can still
     * die between that check and the send; a statement that never left is
     * sent once more on another connection. One that left may have run
     * (a guest created, a batch deleted), so it is never repeated. Both
     * tries share one deadline: an outage answers within db_timeout_ms. */
    for (int attempt = 0; attempt < 2; attempt++) {
        PGconn *conn;
        st = guest__pool_acquire_by(pool, deadline, &conn, err);
        if (st != GUEST_OK)
            return st;
        bool broken = false, sent = false;
        int64_t left = deadline - guest__now_ms();
        unsigned budget = left > 1 ? (unsigned)left : 1;
        st = guest__sql_send_on(conn, budget, s, sql, res, &broken, &sent, err);
        guest__pool_release(pool, conn, broken);
        if (!broken || sent || guest__now_ms() >= deadline)
            return st;
        if (res && *res) {
            PQclear(*res);
            *res = NULL;
        }
    }
    return st;
}

static guest_status run_in(guest_db *tx, const guest__stmt *s, const char *sql,
                           PGresult **res, guest_error *err)
{
    if (!tx->conn)
        return guest__fail(err, GUEST_ERR_INVALID, "no open transaction");
    /* Between statements a healthy transaction is idle inside BEGIN: any
     * other state means a statement was left running or the transaction
     * ended behind our back. */
    assert(tx->failed != GUEST_OK || tx->broken ||
           PQtransactionStatus(tx->conn) == PQTRANS_INTRANS);
    if (tx->failed != GUEST_OK)
        return guest__fail(err, tx->failed,
                           "an earlier statement of this transaction "
                           "failed: %s",
                           tx->failed_message);
    bool broken = false, sent = false;
    /* The detail is kept even when this caller does not want it: a later
     * caller of the same transaction may. */
    guest_error local = {.message = ""};
    guest_error *e = err ? err : &local;
    guest_status st = guest__sql_send_on(tx->conn, tx->timeout_ms, s, sql, res,
                                         &broken, &sent, e);
    tx->broken |= broken;
    if (st != GUEST_OK)
        guest__tx_failed(tx, st, e);
    return st;
}

void guest__tx_failed(guest_db *tx, guest_status st, const guest_error *err)
{
    if (tx->failed != GUEST_OK)
        return;
    tx->failed = st;
    const char *m = err && *err->message ? err->message : guest_strerror(st);
    size_t n = strlen(m);
    if (n >= sizeof tx->failed_message)
        n = sizeof tx->failed_message - 1;
    memcpy(tx->failed_message, m, n);
    tx->failed_message[n] = '\0';
}

guest_status guest__db_down(const guest_ctx *ctx, guest_status st,
                            const guest_error *err)
{
    guest__metric_db(ctx, st);
    if (st == GUEST_ERR_DB_UNAVAILABLE)
        guest__log_every(ctx, &((guest_ctx *)ctx)->db_down_logged_ms, 10000,
                         GUEST_LOG_ERROR, "database unavailable: %s",
                         err && *err->message ? err->message
                                              : guest_strerror(st));
    return st;
}

guest_status guest__sql_run(guest_ctx *ctx, guest_db *tx, const guest__stmt *s,
                            PGresult **res, guest_error *err)
{
    guest_error local = {.message = ""};
    if (!err)
        err = &local;
    if (res)
        *res = NULL;
    char *expanded = NULL;
    if (s->tmpl) {
        expanded = guest__schema_sql(s->tmpl, ctx->cfg.db_schema);
        if (!expanded)
            return guest__fail(err, GUEST_ERR_NOMEM, "out of memory");
    }
    const char *sql = expanded ? expanded : s->sql;
    /* Behind a transaction-mode pooler consecutive statements may reach
     * different server connections, so a named statement prepared on one
     * is missing on the next: each goes unnamed (parsed every time). */
    guest__pool *pool =
        !tx && s->replica && ctx->read_pool ? ctx->read_pool : ctx->pool;
    guest__stmt unnamed;
    if (s->prepared && guest__pool_transaction_mode(pool)) {
        unnamed = *s;
        unnamed.prepared = NULL;
        s = &unnamed;
        if (unnamed.unprepared)
            sql = unnamed.unprepared;
    }
    guest_status st = tx ? run_in(tx, s, sql, res, err)
                         : run_pooled(ctx, pool, s, sql, res, err);
    free(expanded);
    return guest__db_down(ctx, st, err);
}

guest_status guest__sql_run_id(guest_ctx *ctx, guest_db *tx, const char *tmpl,
                               int64_t id, PGresult **res, guest_error *err)
{
    char buf[GUEST__INT_BUF];
    guest__params p = {0};
    guest__param_int(&p, buf, id);
    return guest__sql_run(ctx, tx, &(guest__stmt){.tmpl = tmpl, .params = &p},
                          res, err);
}

bool guest__sql_state_is(const PGresult *res, const char *state)
{
    const char *got = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    return got && !strcmp(got, state);
}

guest_status guest__sql_run_unique(guest_db *tx, const guest__stmt *s,
                                   guest_status taken, const char *why,
                                   guest_error *err)
{
    PGresult *res = NULL;
    guest_status st = guest__sql_run(tx->ctx, tx, s, &res, err);
    bool dup = guest__sql_state_is(res, "23505");
    PQclear(res);
    return dup ? guest__fail(err, taken, "%s", why) : st;
}

/* BEGIN, COMMIT and ROLLBACK on the transaction's own connection. */
static guest_status control(PGconn *conn, unsigned timeout_ms, const char *sql,
                            bool *broken, guest_error *err)
{
    bool sent;
    const guest__stmt s = {.sql = sql, .script = true};
    return guest__sql_send_on(conn, timeout_ms, &s, sql, NULL, broken, &sent,
                              err);
}

guest_status guest__tx_begin(guest_ctx *ctx, guest_db *tx, guest_error *err)
{
    memset(tx, 0, sizeof *tx);
    tx->ctx = ctx;
    tx->timeout_ms = ctx->cfg.db_timeout_ms;
    /* A connection can die between the pool's check and BEGIN; BEGIN
     * changes nothing, so it gets one more try, within the same deadline. */
    int64_t deadline = guest__now_ms() + ctx->cfg.db_timeout_ms;
    /* Behind a transaction-mode pooler the connection has no timeouts of
     * ours (no startup options): the transaction sets its own, in the same
     * round trip as BEGIN, and they end with it. */
    char begin[128] = "BEGIN";
    if (guest__pool_transaction_mode(ctx->pool))
        snprintf(begin, sizeof begin,
                 "BEGIN; SET LOCAL statement_timeout = %u;"
                 " SET LOCAL lock_timeout = %u",
                 ctx->cfg.db_timeout_ms, ctx->cfg.db_timeout_ms);
    guest_status st = GUEST_ERR_DB_UNAVAILABLE;
    for (int attempt = 0; attempt < 2; attempt++) {
        st = guest__pool_acquire_by(ctx->pool, deadline, &tx->conn, err);
        if (st != GUEST_OK) {
            tx->conn = NULL;
            return guest__db_down(ctx, st, err);
        }
        int64_t left = deadline - guest__now_ms();
        bool broken = false;
        st = control(tx->conn, left > 1 ? (unsigned)left : 1, begin, &broken,
                     err);
        if (st == GUEST_OK)
            return GUEST_OK;
        guest__pool_release(ctx->pool, tx->conn, broken);
        tx->conn = NULL;
        if (!broken || guest__now_ms() >= deadline)
            break;
    }
    return guest__db_down(ctx, st, err);
}

guest_status guest__tx_commit(guest_db *tx, guest_error *err)
{
    if (!tx->conn)
        return guest__fail(err, GUEST_ERR_INVALID, "no open transaction");
    /* COMMIT of a failed transaction quietly rolls back; never report that
     * as success. */
    if (tx->failed != GUEST_OK) {
        guest_status st = tx->failed;
        guest__tx_abort(tx);
        return guest__fail(err, st, "the transaction had failed: %s",
                           tx->failed_message);
    }
    bool broken = false;
    guest_status st = control(tx->conn, tx->timeout_ms, "COMMIT", &broken, err);
    guest__metric_db(tx->ctx, st);
    tx->broken |= broken;
    /* A connection still inside a transaction is closed by the pool. */
    guest__pool_release(tx->ctx->pool, tx->conn, tx->broken);
    tx->conn = NULL;
    return st;
}

void guest__tx_abort(guest_db *tx)
{
    if (!tx->conn)
        return;
    if (!tx->broken && PQstatus(tx->conn) == CONNECTION_OK) {
        bool broken = false;
        control(tx->conn, tx->timeout_ms, "ROLLBACK", &broken, NULL);
        tx->broken |= broken;
    }
    guest__pool_release(tx->ctx->pool, tx->conn, tx->broken);
    tx->conn = NULL;
}

/* True when @p sql starts (after blanks and comments) with a statement that
 * would begin, end or split the transaction the library runs the callback
 * in. The extended protocol runs one statement, so its first keyword is
 * enough. */
static bool controls_transaction(const char *sql)
{
    static const char *const words[] = {
        "BEGIN", "START",     "COMMIT",  "ROLLBACK", "END",
        "ABORT", "SAVEPOINT", "RELEASE", "PREPARE",  "SET",
        "RESET", "DISCARD",   NULL};
    const char *p = sql;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' ||
               *p == '\f' || *p == '(')
            p++;
        if (p[0] == '-' && p[1] == '-') {
            p += strcspn(p, "\n");
        } else if (p[0] == '/' && p[1] == '*') {
            const char *e = strstr(p + 2, "*/");
            if (!e)
                return false; /* the server refuses it anyway */
            p = e + 2;
        } else {
            break;
        }
    }
    size_t n = 0;
    while ((p[n] >= 'A' && p[n] <= 'Z') || (p[n] >= 'a' && p[n] <= 'z'))
        n++;
    for (const char *const *w = words; *w; w++)
        if (strlen(*w) == n && !strncasecmp(p, *w, n))
            return true;
    return false;
}

guest_status guest_db_exec(guest_db *db, const char *sql, int nparams,
                           const char *const *params, guest_error *err)
{
    if (!db || !sql || nparams < 0 || nparams > GUEST_DB_MAX_PARAMS ||
        (nparams > 0 && !params))
        return guest__fail(err, GUEST_ERR_INVALID,
                           "db and sql required, at most %d parameters",
                           GUEST_DB_MAX_PARAMS);
    if (!db->conn)
        return guest__fail(err, GUEST_ERR_INVALID,
                           "the database handle is used outside its "
                           "callback");
    if (db->failed != GUEST_OK)
        return guest__fail(err, db->failed,
                           "an earlier statement of this transaction "
                           "failed: %s",
                           db->failed_message);
    /* COMMIT or ROLLBACK from a callback would end the library's
     * transaction and leave the rest of the operation in autocommit, half
     * written on a later failure; SET and friends would outlive it on the
     * pooled connection. Refused, and the operation rolls back. */
    if (controls_transaction(sql)) {
        guest_error e;
        guest__fail(&e, GUEST_ERR_INVALID,
                    "transaction control and session settings are not "
                    "allowed through guest_db_exec");
        guest__tx_failed(db, e.status, &e);
        if (err)
            *err = e;
        return e.status;
    }
    /* Always the extended protocol, even without parameters: it runs
     * exactly one statement, so no text can smuggle in a second. */
    guest__params p = {0};
    for (int i = 0; i < nparams; i++)
        guest__param_text(&p, params[i]);
    const guest__stmt s = {.sql = sql, .params = &p};
    guest_status st = guest__sql_run(db->ctx, db, &s, NULL, err);
    /* A backstop for what the keyword check cannot see. */
    if (st == GUEST_OK && PQtransactionStatus(db->conn) != PQTRANS_INTRANS) {
        guest_error e;
        st = guest__fail(&e, GUEST_ERR_INVALID,
                         "a callback's statement ended the library's "
                         "transaction");
        guest__tx_failed(db, st, &e);
        if (err)
            *err = e;
    }
    return st;
}

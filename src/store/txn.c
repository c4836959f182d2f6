/* Transactions of the account operations, the guest_db handle lent to
 * application callbacks inside them, and the request's session. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "account_internal.h"

char *guest__sql_expand(const guest_ctx *ctx, const char *tmpl)
{
    return guest__schema_sql(tmpl, ctx->cfg.db_schema);
}

guest_status guest__run(guest_ctx *ctx, const char *tmpl,
                        const guest__params *p, PGresult **res,
                        guest_error *err)
{
    if (res)
        *res = NULL;
    char *sql = guest__sql_expand(ctx, tmpl);
    if (!sql)
        return guest__fail(err, GUEST_ERR_NOMEM, "out of memory");
    guest__params none = {0};
    guest_status st = guest__db_exec(ctx, sql, p ? p : &none, res, err);
    free(sql);
    return st;
}

guest_status guest__tx_begin(guest_ctx *ctx, guest_db *tx, guest_error *err)
{
    memset(tx, 0, sizeof *tx);
    tx->ctx = ctx;
    tx->timeout_ms = ctx->cfg.db_timeout_ms;
    /* A connection can die between the pool's check and BEGIN; BEGIN
     * changes nothing, so it gets one more try, within the same deadline. */
    int64_t deadline = guest__now_ms() + ctx->cfg.db_timeout_ms;
    guest_status st = GUEST_ERR_DB_UNAVAILABLE;
    for (int attempt = 0; attempt < 2; attempt++) {
        st = guest__pool_acquire_by(ctx->pool, deadline, &tx->conn, err);
        if (st != GUEST_OK) {
            tx->conn = NULL;
            return st;
        }
        int64_t left = deadline - guest__now_ms();
        bool broken = false;
        st = guest__db_run(tx->conn, left > 1 ? (unsigned)left : 1, "BEGIN",
                           NULL, NULL, &broken, err);
        if (st == GUEST_OK)
            return GUEST_OK;
        guest__pool_release(ctx->pool, tx->conn, broken);
        tx->conn = NULL;
        if (!broken || guest__now_ms() >= deadline)
            break;
    }
    return st;
}

guest_status guest__tx_run(guest_db *tx, const char *tmpl,
                           const guest__params *p, PGresult **res,
                           bool *unique_violation, guest_error *err)
{
    if (res)
        *res = NULL;
    if (unique_violation)
        *unique_violation = false;
    if (!tx->conn)
        return guest__fail(err, GUEST_ERR_INVALID, "no open transaction");
    if (tx->failed != GUEST_OK)
        return guest__fail(err, tx->failed,
                           "an earlier statement of this transaction failed");
    char *sql = guest__sql_expand(tx->ctx, tmpl);
    if (!sql)
        return guest__fail(err, GUEST_ERR_NOMEM, "out of memory");
    guest__params none = {0};
    PGresult *r = NULL;
    bool broken = false;
    guest_status st = guest__db_run(tx->conn, tx->timeout_ms, sql,
                                    p ? p : &none, &r, &broken, err);
    free(sql);
    tx->broken |= broken;
    if (st != GUEST_OK) {
        tx->failed = st;
        const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
        if (unique_violation && state && !strcmp(state, "23505"))
            *unique_violation = true;
    }
    if (res)
        *res = r;
    else
        PQclear(r);
    return st;
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
        return guest__fail(err, st, "the transaction had failed");
    }
    bool broken = false;
    guest_status st = guest__db_run(tx->conn, tx->timeout_ms, "COMMIT", NULL,
                                    NULL, &broken, err);
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
        guest__db_run(tx->conn, tx->timeout_ms, "ROLLBACK", NULL, NULL, &broken,
                      NULL);
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
                           "an earlier statement of this transaction failed");
    /* COMMIT or ROLLBACK from a callback would end the library's
     * transaction and leave the rest of the operation in autocommit, half
     * written on a later failure; SET and friends would outlive it on the
     * pooled connection. Refused, and the operation rolls back. */
    if (controls_transaction(sql)) {
        db->failed = GUEST_ERR_INVALID;
        return guest__fail(err, GUEST_ERR_INVALID,
                           "transaction control and session settings are "
                           "not allowed through guest_db_exec");
    }
    /* Always the extended protocol, even without parameters: it runs
     * exactly one statement, so no text can smuggle in a second. */
    guest__params p = {0};
    for (int i = 0; i < nparams; i++)
        guest__param_text(&p, params[i]);
    bool broken = false;
    guest_status st =
        guest__db_run(db->conn, db->timeout_ms, sql, &p, NULL, &broken, err);
    db->broken |= broken;
    /* A backstop for what the keyword check cannot see. */
    if (st == GUEST_OK && PQtransactionStatus(db->conn) != PQTRANS_INTRANS)
        st = guest__fail(err, GUEST_ERR_INVALID,
                         "a callback's statement ended the library's "
                         "transaction");
    if (st != GUEST_OK)
        db->failed = st;
    return st;
}

void guest__req_set_user(guest_req *req, const guest_user *user)
{
    req->user_resolved = true;
    req->has_user = user != NULL;
    if (user && user != &req->user)
        req->user = *user;
}

void guest__req_forget_user(guest_req *req)
{
    req->user_resolved = false;
    req->has_user = false;
}

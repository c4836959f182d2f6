/* The request's own database connection (guest_req_db, guest_req_query):
 * borrowed from the pool at first use, the same one for the rest of the
 * request so the handler's transaction spans its statements, and given
 * back when the request is freed, so no handler can leak it. */
#include "core/core.h"

static guest_status lost(guest_error *err)
{
    return guest__fail(err, GUEST_ERR_DB_UNAVAILABLE,
                       "this request's database connection was lost");
}

guest_status guest_req_db(guest_req *req, PGconn **conn, guest_error *err)
{
    if (conn)
        *conn = NULL;
    if (!req || !conn)
        return guest__fail(err, GUEST_ERR_INVALID, "req and conn required");
    /* A connection that died mid-transaction must not be replaced behind
     * the handler's back: its next statements would run outside the
     * transaction it believes open. */
    if (req->db_lost)
        return lost(err);
    if (!req->db_conn) {
        guest_status st = guest__db_lend(req->ctx, &req->db_conn, err);
        if (st != GUEST_OK)
            return st;
    }
    *conn = req->db_conn;
    return GUEST_OK;
}

guest_status guest_req_query(guest_req *req, const char *sql, int nparams,
                             const char *const *params, PGresult **res,
                             guest_error *err)
{
    if (res)
        *res = NULL;
    if (!req || !sql || !res)
        return guest__fail(err, GUEST_ERR_INVALID, "req, sql and res required");
    PGconn *conn;
    guest_status st = guest_req_db(req, &conn, err);
    if (st != GUEST_OK)
        return st;
    bool broken = false;
    st = guest__db_query_on(req->ctx, conn, sql, nparams, params, res, &broken,
                            err);
    /* Kept until the request ends, only marked: the handler may still
     * hold the pointer from guest_req_db(), and libpq calls on a dead
     * connection fail cleanly where a freed one would not. */
    if (broken)
        req->db_lost = true;
    return st;
}

void guest__req_db_release(guest_req *req)
{
    if (req->db_conn)
        guest__db_take_back(req->ctx, req->db_conn, req->db_lost);
    req->db_conn = NULL;
}

/* libguestuser: the library's connection pool for the application's own
 * SQL — one statement, or a borrowed libpq connection, with the library's
 * deadlines and outage behaviour. Guide: docs/database.md.
 *
 * Reading a PGresult needs libpq's own header, <libpq-fe.h>, and linking
 * libpq: the CMake component `db` (guestuser::db) or pkg-config module
 * guestuser-db bring both. This header only names the types. */
#ifndef GUESTUSER_DB_H
#define GUESTUSER_DB_H

#include "http.h"

#ifdef __cplusplus
extern "C" {
#endif

/* libpq's own declarations, repeated (C11 allows an identical typedef), so
 * this header compiles without libpq's. */
typedef struct pg_conn PGconn;
typedef struct pg_result PGresult;

/** Most parameters of one statement: guest_db_query(), guest_req_query(),
 * guest_db_exec() (also defined in accounts.h). */
#define GUEST_DB_MAX_PARAMS 16

/**
 * Runs one SQL statement on a pooled connection: @p nparams text
 * parameters ($1, $2...; a NULL element is SQL NULL), extended protocol
 * (exactly one statement, so parameters cannot smuggle in a second). Waits
 * at most db_timeout_ms in all for a connection and the answer; a
 * statement that never reached the server is sent once more on another
 * connection, one that did is never repeated. Runs in its own transaction
 * (autocommit).
 *
 * *res (required) gets the result on GUEST_OK, and the error result on
 * GUEST_ERR_DB (PQresultErrorField() tells the SQLSTATE); else NULL. The
 * caller PQclear()s it in every case (NULL is fine). GUEST_ERR_DB with
 * "SQLSTATE xxxxx: message" in @p err; GUEST_ERR_DB_UNAVAILABLE (no
 * connection or no answer in time: answer 503); GUEST_ERR_INVALID for NULL
 * arguments or more than GUEST_DB_MAX_PARAMS parameters. Thread-safe.
 */
GUEST_API GUEST_NODISCARD guest_status
guest_db_query(guest_ctx *ctx, const char *sql, int nparams,
               const char *const *params, PGresult **res, guest_error *err);

/**
 * Lends one of the pool's connections to the caller (setup work, a
 * background thread), waiting at most db_timeout_ms for it. It is open,
 * in blocking mode, with the server-side statement_timeout and
 * lock_timeout set to db_timeout_ms (not behind a transaction-mode pooler,
 * db_pooler, which allows no session settings). The caller owns it until
 * guest_db_return(); do not PQfinish() it. GUEST_ERR_DB_UNAVAILABLE;
 * GUEST_ERR_INVALID for NULL arguments. Thread-safe.
 */
GUEST_API GUEST_NODISCARD guest_status guest_db_borrow(guest_ctx *ctx,
                                                       PGconn **conn,
                                                       guest_error *err);

/**
 * Gives back a connection from guest_db_borrow(), exactly once. A
 * transaction left open is rolled back first; a connection that failed, or
 * is busy with a statement, is closed instead of being reused. NULL
 * @p conn is a no-op; a connection this context did not lend, or one given
 * back already, is left untouched and logged as an error.
 * Session settings changed with SET stay on the connection: use SET LOCAL
 * inside a transaction. Thread-safe.
 */
GUEST_API void guest_db_return(guest_ctx *ctx, PGconn *conn);

/**
 * The request's own database connection, borrowed from the pool at the
 * first call (waiting at most db_timeout_ms) and the same one at every
 * later call for this request; it goes back to the pool by itself when the
 * request ends (after the handler returns), with any open transaction
 * rolled back. Transactions the handler opens on it are the handler's own.
 * While it is held the request occupies one pooled connection: the
 * library's own statements (guest_login(), guest_convert()...) take
 * another, so size db_pool_size for the threads that do both.
 *
 * GUEST_ERR_DB_UNAVAILABLE (answer 503), also for every call after the
 * connection was lost within this request (a half-done transaction must
 * not go on elsewhere); GUEST_ERR_INVALID for NULL arguments. Call from
 * the request's thread; do not PQfinish() it, give it to guest_db_return()
 * or keep it past the handler. Behind a transaction-mode pooler
 * (db_pooler) it carries no statement_timeout of the library's.
 */
GUEST_API GUEST_NODISCARD guest_status guest_req_db(guest_req *req,
                                                    PGconn **conn,
                                                    guest_error *err);

/**
 * guest_db_query() on the request's connection (guest_req_db()), so it
 * runs inside a transaction the handler opened there with "BEGIN" (sent
 * through this call or through libpq). The answer is waited for at most
 * db_timeout_ms; past that the connection is dropped and the request's
 * later calls fail with GUEST_ERR_DB_UNAVAILABLE. Results and statuses as
 * for guest_db_query(). Call from the request's thread.
 */
GUEST_API GUEST_NODISCARD guest_status
guest_req_query(guest_req *req, const char *sql, int nparams,
                const char *const *params, PGresult **res, guest_error *err);

#ifdef __cplusplus
}
#endif
#endif

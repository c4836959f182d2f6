/* The store layer: PostgreSQL. The connection pool, the one way to run a
 * statement (in or out of a transaction), migrations, the guest and
 * session rows, rate-limit windows and cleanup. Calls only base/.
 * Internal; never installed. */
#ifndef GUESTUSER_STORE_H
#define GUESTUSER_STORE_H

#include <libpq-fe.h>

#include "base/base.h"

/* A user row as the library reads it. */
struct guest_user {
    int64_t id;
    bool is_guest;
    char username[GUEST_USERNAME_BUF];
    /* A guest's: when its guests row was made and when cleanup may delete
     * it (created_at + max_age), Unix seconds; 0 for a registered user. */
    int64_t created_at;
    int64_t expires_at;
};

/* pool.c: a fixed-size, thread-safe libpq connection pool. */
/* From @p ctx's db_conninfo, db_pool_size, db_timeout_ms and db_pooler;
 * logs through @p ctx, which must outlive the pool. */
guest_status guest__pool_new(const guest_ctx *ctx, const char *conninfo,
                             guest__pool **out, guest_error *err);
void guest__pool_free(guest__pool *pool);
/* A connection, waiting for a free one or connecting until @p deadline
 * (guest__now_ms() time): callers share one deadline per operation. */
guest_status guest__pool_acquire_by(guest__pool *pool, int64_t deadline,
                                    PGconn **conn, guest_error *err);
/* True once the pool talks to a transaction-mode pooler (db_pooler): no
 * named prepared statements, no session state, timeouts per transaction. */
bool guest__pool_transaction_mode(const guest__pool *pool);
/* A connection to the pool's database with the pool's settings, started
 * without blocking (PQconnectStartParams; NULL when out of memory), named
 * @p app_name unless the conninfo names it: for pipe.c too, which polls it
 * on an event loop. guest__conn_ready() makes a connection that reached
 * CONNECTION_OK non-blocking and quiet. */
PGconn *guest__pool_connect_start(const guest__pool *pool,
                                  const char *app_name);
void guest__conn_ready(PGconn *conn);
/* True when @p conn is one of @p pool's connections and out on loan: what
 * must hold before anything touches a connection an application gives
 * back (it may be foreign, or returned twice and already closed). */
bool guest__pool_lent(guest__pool *pool, const PGconn *conn);
/* @p broken: the connection failed; it is closed and reopened on demand. */
void guest__pool_release(guest__pool *pool, PGconn *conn, bool broken);
/* How long a waiter lets newcomers take freed slots before it is served
 * first (pool.c says why 10). */
#define GUEST__POOL_PATIENCE_MS 10
/* How long the oldest thread waiting for a connection has waited, in ms;
 * -1 when none waits. */
int64_t guest__pool_longest_wait_ms(guest__pool *pool);
/* The pool's size, its open connections, those lent out now (a slot being
 * connected counts as lent, not yet open) and the threads waiting. */
void guest__pool_gauges(guest__pool *pool, unsigned *size, unsigned *open,
                        unsigned *busy, unsigned *waiting);

/* wire.c: one statement on one connection, below the pool and db.c. */
/* @p what + libpq's last message for @p conn, in @p err. */
guest_status guest__fail_pq(guest_error *err, guest_status st, const char *what,
                            const PGconn *conn);
/* Asks the server, from another thread, to cancel what @p conn is running
 * (a statement past its deadline behind a pooler, which has no
 * statement_timeout of ours); at most a few at a time, else skipped. */
void guest__conn_cancel_async(PGconn *conn);

/* db.c: the one way the library runs SQL. */
/* Room for the most any statement takes: the library's own and the
 * application's (GUEST_DB_MAX_PARAMS). */
#define GUEST__PARAMS_MAX 16
typedef struct guest__params {
    int n;
    const char *values[GUEST__PARAMS_MAX];
    int lengths[GUEST__PARAMS_MAX];
    int formats[GUEST__PARAMS_MAX];
} guest__params;
/* Counts statements sent, so tests can hold the one-round-trip promise. */
extern _Atomic unsigned long guest__db_round_trips;
void guest__param_text(guest__params *p, const char *value);
void guest__param_bin(guest__params *p, const void *value, int len);
/* Room for an int64_t as decimal text, sign and NUL included. */
#define GUEST__INT_BUF 24
/* @p value as a text parameter, written into @p buf (which must live until
 * the statement ran). */
void guest__param_int(guest__params *p, char buf[GUEST__INT_BUF],
                      int64_t value);
/* A LIMIT parameter, written into @p buf like guest__param_int: NULL, no
 * limit, for 0. */
void guest__param_limit(guest__params *p, char buf[GUEST__INT_BUF],
                        size_t limit);

/* rows.c: a result's columns, each read at the position that an enum next
 * to its statement names. */
/* The number of rows (0 for NULL). */
int guest__rows(const PGresult *res);
bool guest__col_null(const PGresult *res, int row, int col);
/* The column as an integer; 0 when NULL. */
int64_t guest__col_int(const PGresult *res, int row, int col);
/* True when the boolean column is true (NULL: false). */
bool guest__col_bool(const PGresult *res, int row, int col);
/* The column's text, borrowed from @p res ("" when NULL). */
const char *guest__col_text(const PGresult *res, int row, int col);
/* The column's text into @p out, cut to @p size. */
void guest__col_copy(const PGresult *res, int row, int col, char *out,
                     size_t size);
/* The column's text, malloc'd (caller frees); NULL when out of memory. */
char *guest__col_dup(const PGresult *res, int row, int col);

/* sessions.c: the sessions table. The one text that inserts a session row,
 * for every statement that writes one: follow it with VALUES or a SELECT
 * of (token_hash, user_id, GUEST__SESSION_EXPIRES(max_age seconds)). */
#define GUEST__SESSION_INSERT                                                  \
    "INSERT INTO @.sessions (token_hash, user_id, expires_at)"
#define GUEST__SESSION_EXPIRES(secs) "now() + make_interval(secs => " secs ")"

/* @p tmpl with every '@' replaced by the quoted schema name: for SQL built
 * once per context; caller frees (NULL when out of memory). */
char *guest__schema_sql(const char *tmpl, const char *schema);

/* guests.c: what a creation statement did. */
typedef enum guest__created {
    GUEST__CREATED,      /* user filled */
    GUEST__NAME_CLASH,   /* try another name */
    GUEST__RATE_LIMITED, /* *retry_after: seconds until one more fits */
    GUEST__AT_CAPACITY   /* max_guests live guests already */
} guest__created;

/* pipe.c: session lookups and guest creations of many requests on one
 * non-blocking connection in libpq's pipeline mode, driven by an event
 * loop: the statements go out one after another without waiting, and each
 * answer calls its request's function. One thread only (the loop's). */
typedef struct guest__pipe guest__pipe;
/* A statement's answer: for a lookup, @p user is the live session's user
 * (found false: none) with the session's ms left; for a creation, the
 * outcome, with @p user when it is GUEST__CREATED. */
typedef struct guest__pipe_answer {
    bool found;
    guest_user user;
    int64_t ms_left;
    guest__created outcome;
    int64_t retry_after;
} guest__pipe_answer;
/* A statement's outcome: GUEST_OK with @p a; GUEST_ERR_DB_UNAVAILABLE when
 * the answer did not come within db_timeout_ms (the database hangs or is
 * gone); GUEST_ERR_DB for the statement's own failure; GUEST_ERR_BUSY
 * when the connection broke or the pipe was freed before the answer: ask
 * again the usual way. @p a is NULL unless GUEST_OK. */
typedef void (*guest__pipe_fn)(void *arg, guest_status st,
                               const guest__pipe_answer *a);
guest_status guest__pipe_new(guest_ctx *ctx, guest__pipe **out);
/* Every statement still waiting gets GUEST_ERR_BUSY first. */
void guest__pipe_free(guest__pipe *pipe);
/* Queues a lookup of @p token_hash; false when the pipe cannot take it now
 * (not connected yet, reconnecting, full): then @p fn is never called. */
bool guest__pipe_resolve(guest__pipe *pipe, const unsigned char *token_hash,
                         guest__pipe_fn fn, void *arg);
/* Queues guest__store_create_guest's statement, as guest__pipe_resolve
 * queues a lookup. */
bool guest__pipe_create(guest__pipe *pipe, const char *username,
                        const unsigned char *token_hash,
                        const guest__client_keys *keys, guest__pipe_fn fn,
                        void *arg);
/* What the loop must wait for: the socket (-1: none) and in *gen the
 * number of the connection it belongs to; GUEST_IO_READ and
 * GUEST_IO_WRITE, and *timeout_ms (-1: none) after which to call
 * guest__pipe_io() anyway. */
int guest__pipe_fd(const guest__pipe *pipe, unsigned *gen);
unsigned guest__pipe_events(guest__pipe *pipe, int64_t *timeout_ms);
/* Does whatever the socket and the clock allow: connects, sends, reads
 * answers (calling their functions), times out. */
void guest__pipe_io(guest__pipe *pipe);

/* The session lookup of every returning visitor: token hash in, the
 * user's id, name, whether a guest, the guest's creation (Unix s) and the
 * session's time left (ms) out. Run as a prepared statement (guests.c);
 * migration 3 wrote the same query into the schema's function
 * resolve_session() for connections that cannot keep prepared statements
 * (behind a transaction-mode pooler): a change here needs a migration that
 * replaces that function. */
#define GUEST__RESOLVE_SESSION_SQL                                             \
    "SELECT u.id, u.username, g.user_id IS NOT NULL,"                          \
    " floor(extract(epoch FROM g.created_at))::bigint,"                        \
    " floor(extract(epoch FROM s.expires_at - now()) * 1000)::bigint"          \
    " FROM @.sessions s"                                                       \
    " JOIN @.users u ON u.id = s.user_id"                                      \
    " LEFT JOIN @.guests g ON g.user_id = u.id"                                \
    " WHERE s.token_hash = $1 AND s.expires_at > now() AND u.is_active"

/* Guest creation without abuse limits: username, token hash and max_age
 * (seconds) in; the user's id, name and creation (Unix s) out, or no row
 * on a name clash. Written into the schema's function create_guest() by
 * migration 3, as the lookup above; the limited variants (guests.c) are
 * built from the configuration and have no function. */
#define GUEST__CREATE_GUEST_SQL                                                \
    "WITH u AS (INSERT INTO @.users (username) VALUES ($1)"                    \
    " ON CONFLICT (username) DO NOTHING RETURNING id, username),"              \
    " g AS (INSERT INTO @.guests (user_id) SELECT id FROM u"                   \
    " RETURNING user_id),"                                                     \
    " s AS (" GUEST__SESSION_INSERT                                            \
    " SELECT $2, user_id, " GUEST__SESSION_EXPIRES(                            \
        "$3") " FROM g RETURNING user_id)"                                     \
              " SELECT u.id, u.username, floor(extract(epoch FROM "            \
              "now()))::bigint"                                                \
              " FROM u JOIN s ON s.user_id = u.id"

/* One statement for guest__sql_run. Exactly one of tmpl and sql. */
typedef struct guest__stmt {
    /* The library's SQL: every '@' stands for the quoted schema name. */
    const char *tmpl;
    /* SQL run as written: built with the schema already in, or the
     * application's (guest_db_exec). */
    const char *sql;
    /* Runs as this prepared statement, prepared on each connection at its
     * first use: for the statements of every request. */
    const char *prepared;
    /* Sent instead of a prepared statement where there can be none (behind
     * a transaction-mode pooler): the same work at less planning, such as
     * a call of a function whose plan the server keeps. NULL: the text
     * itself, unnamed. */
    const char *unprepared;
    /* Parameters (NULL: none). */
    const guest__params *params;
    /* The simple protocol: the text may be a script of several statements
     * and takes no parameters (migrations, BEGIN/COMMIT). Otherwise the
     * extended protocol runs exactly one statement. */
    bool script;
    /* A read that db_read_conninfo's replica may answer (outside a
     * transaction, when there is one); the caller falls back itself. */
    bool replica;
} guest__stmt;

/* A transaction on one pooled connection; lent to application callbacks
 * as a guest_db. */
struct guest_db {
    guest_ctx *ctx;
    PGconn *conn;
    unsigned timeout_ms;
    bool broken;
    /* The first failure inside the transaction; PostgreSQL refuses every
     * later statement, so it decides the outcome. Its detail (libpq's
     * message) is kept for the caller's guest_error. */
    guest_status failed;
    char failed_message[sizeof(((guest_error *)0)->message)];
};

/* Records the first failure of @p tx with @p err's message (may be NULL). */
void guest__tx_failed(guest_db *tx, guest_status st, const guest_error *err);

/* Runs @p s within the context's db_timeout_ms: inside @p tx when given
 * (its first failure is kept and refuses every later statement), else on a
 * pooled connection, sent once more on another connection when the first
 * broke before the statement left. *res (may be NULL) gets the result to
 * PQclear: the successful one, or on GUEST_ERR_DB the error result (for its
 * SQLSTATE); NULL otherwise. */
guest_status guest__sql_run(guest_ctx *ctx, guest_db *tx, const guest__stmt *s,
                            PGresult **res, guest_error *err);
/* guest__sql_run of library SQL @p tmpl whose one parameter, $1, is
 * @p id (a user's, mostly). */
guest_status guest__sql_run_id(guest_ctx *ctx, guest_db *tx, const char *tmpl,
                               int64_t id, PGresult **res, guest_error *err);
/* wire.c: sends @p sql (the text of @p s) on @p conn, a connection the caller
 * holds, and waits at most @p timeout_ms for its result; *res gets it as
 * guest__sql_run says. *broken: the connection must be dropped; *sent: the
 * statement left, so it may have run. */
guest_status guest__sql_send_on(PGconn *conn, unsigned timeout_ms,
                                const guest__stmt *s, const char *sql,
                                PGresult **res, bool *broken, bool *sent,
                                guest_error *err);
#ifdef GUESTUSER_FAULTS
/* faults.c: faults a test injects into the statements of this process.
 * Built only into the test library guestuser_faults (CMake option
 * GUESTUSER_FAULTS), never into libguestuser; docs/testing.md. */
typedef enum guest__fault_kind {
    /* The server answers the statement with an error of SQLSTATE .sqlstate
     * (raised by a DO block sent instead): class 08 or 57P reads as an
     * outage, any other as the statement's own failure. */
    GUEST__FAULT_SQLSTATE,
    /* The connection is found dead just before the statement is sent (its
     * socket shut down under libpq, and the end read): the statement never
     * leaves. */
    GUEST__FAULT_DEAD,
    /* The connection dies as the statement leaves (its socket shut down,
     * which libpq finds only when it reads the result): the statement may
     * have run, as far as the library can tell. */
    GUEST__FAULT_LOST,
    /* ROLLBACK is sent instead: it succeeds and ends the transaction the
     * statement ran in, as nothing the library sends ever should. */
    GUEST__FAULT_END_TX,
} guest__fault_kind;
typedef struct guest__fault {
    guest__fault_kind kind;
    const char *sqlstate; /* five characters, for GUEST__FAULT_SQLSTATE */
    /* A substring of the statement's prepared name or of its text; NULL
     * or "" for any statement. */
    const char *match;
    unsigned count; /* how many of the next matching statements fail */
} guest__fault;
/* Arms @p f, replacing what was armed and zeroing the fired count; NULL
 * (or a count of 0) disarms. */
void guest__fault_arm(const guest__fault *f);
/* How many statements failed by the fault armed last. */
unsigned guest__fault_fired(void);
/* wire.c, before each statement on @p conn (@p name: its prepared name,
 * or NULL): when an armed fault matches, counts it and either breaks the
 * connection (NULL returned) or returns the text to send instead, valid
 * until the next guest__fault_arm. */
const char *guest__fault_take(PGconn *conn, const char *name, const char *sql);
#endif

/* Passes @p st through; when it is GUEST_ERR_DB_UNAVAILABLE, says so in
 * the log (at most every 10 s) with @p err's detail (may be NULL): the
 * operator of a server answering 503 must be able to see why. Counts
 * GUEST_ERR_DB and GUEST_ERR_DB_UNAVAILABLE in guestuser_db_errors_total:
 * every end of guest__sql_run, guest__tx_begin and a lent connection
 * passes here. */
guest_status guest__db_down(const guest_ctx *ctx, guest_status st,
                            const guest_error *err);
/* True when @p res failed with SQLSTATE @p state (e.g. "23505"). */
bool guest__sql_state_is(const PGresult *res, const char *state);
/* Runs @p s in @p tx, its rows unread; a unique violation (SQLSTATE 23505:
 * a row another transaction committed first) is @p taken, with @p why. */
guest_status guest__sql_run_unique(guest_db *tx, const guest__stmt *s,
                                   guest_status taken, const char *why,
                                   guest_error *err);
guest_status guest__tx_begin(guest_ctx *ctx, guest_db *tx, guest_error *err);
guest_status guest__tx_commit(guest_db *tx, guest_error *err);
/* Rolls back (when still open) and returns the connection to the pool. */
void guest__tx_abort(guest_db *tx);

/* lend.c: pooled connections lent to the application (guestuser/db.h). */
/* Lends a pooled connection within db_timeout_ms, in blocking mode. */
guest_status guest__db_lend(guest_ctx *ctx, PGconn **conn, guest_error *err);
/* Takes @p conn back: rolls back an open transaction, drops it when
 * @p broken or unusable. */
void guest__db_take_back(guest_ctx *ctx, PGconn *conn, bool broken);
/* One application statement on the lent @p conn within db_timeout_ms;
 * *broken turns true when the connection must not be used again. */
guest_status guest__db_query_on(guest_ctx *ctx, PGconn *conn, const char *sql,
                                int nparams, const char *const *params,
                                PGresult **res, bool *broken, guest_error *err);

/* listen.c: the session cache's LISTEN connection, on a thread of its
 * own (not a pooled connection). */
typedef struct guest__listener guest__listener;
typedef enum guest__listen_event {
    GUEST__LISTEN_UP,     /* LISTEN took effect: changes are heard from now */
    GUEST__LISTEN_DOWN,   /* the connection is gone: changes may be missed */
    GUEST__LISTEN_PAYLOAD /* a notification's payload ("flush" for many) */
} guest__listen_event;
/* Called on the listener's thread; @p payload is borrowed for the call
 * (NULL but for GUEST__LISTEN_PAYLOAD). */
typedef void (*guest__listen_fn)(void *arg, guest__listen_event ev,
                                 const char *payload);
/* "guestuser_cache_" and 32 hex digits of SHA-256 of the schema name. */
#define GUEST__LISTEN_CHANNEL_BUF 64
/* The channel the schema's triggers (migration 7) notify. */
void guest__listen_channel(const char *schema,
                           char out[GUEST__LISTEN_CHANNEL_BUF]);
/* Starts the thread, which connects to @p conninfo, listens on the
 * channel of ctx's schema and reconnects with backoff; waits up to
 * db_timeout_ms for its first attempt (whose failure is no error).
 * GUEST_ERR_CONFIG for a malformed conninfo. */
guest_status guest__listener_start(const guest_ctx *ctx, const char *conninfo,
                                   guest__listen_fn fn, void *arg,
                                   guest__listener **out, guest_error *err);
/* Stops the thread promptly (no call of fn after it returns) and frees
 * it; NULL is a no-op. */
void guest__listener_stop(guest__listener *l);

/* migrate.c */
int guest__schema_version_latest(void);
/* Brings cfg.db_schema to the latest version, in one transaction. */
guest_status guest__migrate(guest_ctx *ctx, guest_error *err);
/* Checks, reading only, that cfg.db_schema is at the latest version. */
guest_status guest__schema_check(guest_ctx *ctx, guest_error *err);

/* settings.c: with @p write and both set, records the context's
 * password_iterations and max_age as the site's; a value that is 0 (a
 * tool's) is read from the site's record instead (1500000 and 1209600 when
 * none is recorded), and nothing is written. */
guest_status guest__store_site_settings(guest_ctx *ctx, bool write,
                                        guest_error *err);

/* guests.c: the guest, user and session rows of the request path. */
/* The creation statement depends on which limits the config turns on. */
guest_status guest__sql_build(guest__sql *sql, const guest_config *cfg);
void guest__sql_free(guest__sql *sql);
/* The creation statement's parameters into @p p; @p age holds max_age's
 * text and must live as long as @p p. */
void guest__store_create_params(const guest_ctx *ctx, const char *username,
                                const unsigned char *token_hash,
                                const guest__client_keys *keys,
                                char age[GUEST__INT_BUF], guest__params *p);
/* Reads the creation statement's result: the outcome, with @p user filled
 * when it is GUEST__CREATED. */
void guest__store_create_row(const guest_ctx *ctx, const PGresult *res,
                             guest_user *user, guest__created *outcome,
                             int64_t *retry_after);
guest_status guest__store_create_guest(guest_ctx *ctx, const char *username,
                                       const unsigned char *token_hash,
                                       const guest__client_keys *keys,
                                       guest_user *user,
                                       guest__created *outcome,
                                       int64_t *retry_after, guest_error *err);
/* The user of the live session @p token_hash (*found false: none);
 * *ms_left (may be NULL) gets how long the session still lives, by the
 * database's clock. */
/* Reads a GUEST__RESOLVE_SESSION_SQL result into @p user: true when it has
 * a row, with the session's ms left in *ms_left. */
bool guest__store_resolve_row(const guest_ctx *ctx, const PGresult *res,
                              guest_user *user, int64_t *ms_left);
guest_status guest__store_resolve(guest_ctx *ctx,
                                  const unsigned char *token_hash,
                                  guest_user *user, bool *found,
                                  int64_t *ms_left, guest_error *err);

/* guests.c: the guests table. Locks guest @p user_id's row FOR UPDATE;
 * *still_guest says whether it is still a guest (a concurrent conversion
 * removes the row). */
guest_status guest__store_guest_lock(guest_db *tx, int64_t user_id,
                                     bool *still_guest, guest_error *err);

/* sessions.c: the session rows, each statement in one round trip. */
/* A new session @p token_hash for @p user_id, living @p max_age s. */
guest_status guest__store_session_insert(guest_db *tx, int64_t user_id,
                                         const unsigned char *token_hash,
                                         int64_t max_age, guest_error *err);
/* Deletes the session @p token_hash, in @p tx (NULL: pooled). */
guest_status guest__store_session_delete(guest_ctx *ctx, guest_db *tx,
                                         const unsigned char *token_hash,
                                         guest_error *err);
/* Deletes every session of @p user_id. */
guest_status guest__store_sessions_end(guest_db *tx, int64_t user_id,
                                       guest_error *err);
/* Replaces the visitor's session: deletes @p old_hash's row (NULL: none),
 * or every session of @p user_id when @p all, and inserts @p new_hash's
 * for @p user_id, living @p max_age seconds; sets last_login. */
guest_status guest__store_session_replace(guest_db *tx, int64_t user_id,
                                          const unsigned char *old_hash,
                                          bool all,
                                          const unsigned char *new_hash,
                                          int64_t max_age, guest_error *err);
/* A converted guest's: deletes @p user_id's guests row and every session
 * and inserts @p new_hash's, living @p max_age seconds (none when the
 * guests row was gone). */
guest_status guest__store_sessions_convert(guest_db *tx, int64_t user_id,
                                           const unsigned char *new_hash,
                                           int64_t max_age, guest_error *err);

/* users.c: the users table. */
/* *taken: a user other than *@p except_id (NULL: anyone) holds
 * @p username. In @p tx when given. */
guest_status guest__store_username_taken(guest_ctx *ctx, guest_db *tx,
                                         const char *username,
                                         const int64_t *except_id, bool *taken,
                                         guest_error *err);
/* A new registered user with the password text @p password, outside a
 * transaction; *created false when the name is taken, else *id. */
guest_status guest__store_user_create(guest_ctx *ctx, const char *username,
                                      const char *password, bool *created,
                                      int64_t *id, guest_error *err);
/* What a login reads of the user it names. */
typedef struct guest__login_row {
    bool found; /* an active registered user of that name or address */
    int64_t id;
    char username[GUEST_USERNAME_BUF];
    char *password; /* stored text, malloc'd (caller frees); NULL: !found */
    /* The most iterations of any stored hash (0: none), at most
     * UINT32_MAX. */
    unsigned site_max;
} guest__login_row;
/* The active registered user named @p name, or with the verified address
 * @p name when @p by_email, and the slowest stored hash: one statement
 * either way. */
guest_status guest__store_login_lookup(guest_ctx *ctx, const char *name,
                                       bool by_email, guest__login_row *row,
                                       guest_error *err);
/* The active user's stored password text (caller frees; NULL when the
 * user is gone or inactive). In @p tx (NULL: pooled) the row is locked
 * FOR NO KEY UPDATE. */
guest_status guest__store_user_password_read(guest_ctx *ctx, guest_db *tx,
                                             int64_t user_id, char **password,
                                             guest_error *err);
/* As guest__store_user_password_read, GUEST_ERR_AUTH when none. */
guest_status guest__store_user_password(guest_ctx *ctx, int64_t user_id,
                                        char **password, guest_error *err);
/* Sets last_login, and the password text to @p rehash unless NULL. */
guest_status guest__store_user_logged_in(guest_db *tx, int64_t user_id,
                                         const char *rehash, guest_error *err);
/* Sets the password text to @p password while the active user's is still
 * @p old; *changed. */
guest_status guest__store_user_password_swap(guest_db *tx, int64_t user_id,
                                             const char *password,
                                             const char *old, bool *changed,
                                             guest_error *err);
/* Names the user @p username with the password text @p password and sets
 * last_login; *taken on a clash (the transaction is then failed). */
guest_status guest__store_user_rename(guest_db *tx, int64_t user_id,
                                      const char *username,
                                      const char *password, bool *taken,
                                      guest_error *err);
/* Deletes user @p user_id; its rows cascade. */
guest_status guest__store_user_delete_id(guest_db *tx, int64_t user_id,
                                         guest_error *err);
/* Deletes the user named @p username; *found, then *id. */
guest_status guest__store_user_delete(guest_ctx *ctx, const char *username,
                                      bool *found, int64_t *id,
                                      guest_error *err);
/* Whether a user named @p username exists (*found) and is a guest. */
guest_status guest__store_user_is_guest(guest_ctx *ctx, const char *username,
                                        bool *found, bool *guest,
                                        guest_error *err);
/* What guest__store_user_update sets. */
typedef enum guest__user_field {
    GUEST__USER_ACTIVE,  /* is_active, from "true" or "false" */
    GUEST__USER_PASSWORD /* the password text; never a guest's */
} guest__user_field;
/* Sets @p field of the user named @p username to @p value; *found, then
 * *id. */
guest_status guest__store_user_update(guest_db *tx, guest__user_field field,
                                      const char *username, const char *value,
                                      bool *found, int64_t *id,
                                      guest_error *err);

/* identities.c: provider identities, pending flows, and the user and
 * session rows an identity sign-in writes. Each takes a transaction @p tx
 * (NULL: a pooled connection). */
/* The user linked to (@p issuer, @p subject): *found, *user_id, and
 * whether that user is active. In a transaction the identity row is
 * locked. */
guest_status guest__store_identity_owner(guest_ctx *ctx, guest_db *tx,
                                         const char *issuer,
                                         const char *subject, bool *found,
                                         int64_t *user_id, bool *active,
                                         char username[GUEST_USERNAME_BUF],
                                         guest_error *err);
/* Links the identity to @p user_id; GUEST_ERR_IDENTITY_TAKEN when
 * another link holds it (the transaction is then failed). */
guest_status guest__store_identity_link(guest_db *tx, int64_t user_id,
                                        const guest_identity *identity,
                                        guest_error *err);
/* Notes a login with the identity and the provider's current e-mail. */
guest_status guest__store_identity_used(guest_db *tx,
                                        const guest_identity *identity,
                                        guest_error *err);
/* *id and whether the user has a usable password; GUEST_ERR_NOT_FOUND. */
guest_status guest__store_user_lookup(guest_ctx *ctx, const char *username,
                                      int64_t *id, bool *has_password,
                                      guest_error *err);
/* The first of @p n candidate usernames no user holds (*found false:
 * all are taken), into @p out. */
guest_status guest__store_free_username(guest_db *tx,
                                        const char *const *candidates, size_t n,
                                        char *out, size_t size, bool *found,
                                        guest_error *err);
/* Makes the guest @p user_id a registered user named @p username with the
 * password text @p password, deleting its guests row; GUEST_ERR_NOT_GUEST
 * when it is no guest any more, GUEST_ERR_USERNAME_TAKEN on a clash (the
 * transaction is then failed). */
guest_status guest__store_guest_register(guest_db *tx, int64_t user_id,
                                         const char *username,
                                         const char *password,
                                         guest_error *err);
/* A new active registered user; *id. GUEST_ERR_USERNAME_TAKEN on a
 * clash. */
guest_status guest__store_user_insert(guest_db *tx, const char *username,
                                      const char *password, int64_t *id,
                                      guest_error *err);

/* outbox.c: mails queued in a transaction, taken by one sender. */
guest_status guest__outbox_put(guest_db *tx, const char *to,
                               const char *subject, const char *text,
                               const char *html, guest_error *err);
typedef struct guest__outbox_mail {
    int64_t id;
    const char *message_id, *to, *subject, *text, *html;
    int attempts;
} guest__outbox_mail;
typedef void (*guest__outbox_fn)(const guest__outbox_mail *mail,
                                 void *userdata);
/* Takes up to @p limit due mails (0: 100), leases them to this caller and
 * hands each to @p fn; *taken (may be NULL) says how many. */
guest_status guest__outbox_take(guest_ctx *ctx, size_t limit,
                                guest__outbox_fn fn, void *userdata,
                                size_t *taken, guest_error *err);
typedef enum guest__outbox_outcome {
    GUEST__OUTBOX_SENT,
    GUEST__OUTBOX_RETRY, /* after @p retry_in_s */
    GUEST__OUTBOX_FAILED
} guest__outbox_outcome;
/* How many mails are pending (neither sent nor failed). */
guest_status guest__outbox_pending(guest_ctx *ctx, int64_t *count,
                                   guest_error *err);
guest_status guest__outbox_done(guest_ctx *ctx, int64_t id,
                                guest__outbox_outcome outcome,
                                unsigned retry_in_s, const char *error,
                                guest_error *err);

/* email.c: addresses on users and the links sent to them. */
/* The user a reset link for @p email would go to (*found). */
guest_status guest__store_reset_target(guest_db *tx, const char *email,
                                       bool *found, int64_t *user_id,
                                       char username[GUEST_USERNAME_BUF],
                                       guest_error *err);
/* A link of @p kind ("verify", "reset") for user @p user_id to @p email,
 * by its hash, living @p ttl_s. */
guest_status guest__store_token_put(guest_db *tx, const unsigned char *hash,
                                    const char *kind, int64_t user_id,
                                    const char *email, unsigned ttl_s,
                                    guest_error *err);
/* Whether the link is live, without using it. */
guest_status guest__store_token_peek(guest_ctx *ctx, const unsigned char *hash,
                                     const char *kind, bool *found,
                                     char username[GUEST_USERNAME_BUF],
                                     guest_error *err);
typedef struct guest__token_use {
    bool found;
    int64_t user_id;
    char username[GUEST_USERNAME_BUF];
    char email[GUEST_EMAIL_MAX + 1];     /* the link's address */
    char old_email[GUEST_EMAIL_MAX + 1]; /* the user's before */
    bool old_verified;
} guest__token_use;
/* Uses a live link up, locking it and its user. */
guest_status guest__store_token_use(guest_db *tx, const unsigned char *hash,
                                    const char *kind, guest__token_use *out,
                                    guest_error *err);
/* A new password hash, every session of the user ended. */
guest_status guest__store_password_reset(guest_db *tx, int64_t user_id,
                                         const char *hash, guest_error *err);
/* The user's address, verified now or not; GUEST_ERR_VALIDATION when
 * another user has it (the transaction is then failed). */
guest_status guest__store_email_set(guest_db *tx, int64_t user_id,
                                    const char *email, bool verified,
                                    guest_error *err);
guest_status guest__store_email_taken(guest_db *tx, const char *email,
                                      int64_t except_user, bool *taken,
                                      guest_error *err);

/* windows.c: the rate_windows table's sliding-window counters. */
/* "ON CONFLICT ... DO UPDATE" that moves a rate_windows row (alias r) to
 * the bucket of the row being inserted and adds one; with @p limit_param
 * (an SQL expression) only while the estimate stays within it. Caller
 * frees. */
char *guest__window_upsert(const char *limit_param);
/* "SELECT kind, client, subject, bucket, window_secs, 0, 1, stale_at"
 * for an insert into rate_windows, from SQL expressions. Caller frees. */
char *guest__window_values(const char *kind, const char *client,
                           const char *subject, const char *window);
/* Seconds (at least 1) until a window of @p window seconds holding @p prev
 * and @p curr in @p bucket admits one more under @p limit at epoch time
 * @p now; 0 when it admits one now. */
int64_t guest__window_wait(double now, int64_t window, int64_t bucket,
                           int64_t prev, int64_t curr, int64_t limit);

/* Each row that still counts, highest estimate first, at most @p limit
 * (0: all). */
guest_status guest__windows_each(guest_ctx *ctx, size_t limit,
                                 guest_rate_limit_list_fn fn, void *userdata,
                                 guest_error *err);
/* Deletes the rows of the @p n client keys, or with @p subject those
 * per-username rows of any client; *deleted. */
guest_status guest__windows_delete(guest_ctx *ctx, const char *const *clients,
                                   size_t n, const unsigned char *subject,
                                   uint64_t *deleted, guest_error *err);
/* One window of a take: the row (kind, client, subject) and its budget.
 * @p kind is library text (it goes into the SQL as a literal), @p client
 * a client key, @p subject NULL or GUEST__SHA256_BYTES bytes. */
typedef struct guest__window_limit {
    const char *kind;
    const char *client;
    const unsigned char *subject;
    uint64_t limit;  /* events per window, at least 1 */
    unsigned window; /* seconds */
} guest__window_limit;
/* Most windows one take names. */
#define GUEST__WINDOW_LIMITS_MAX 4
/* Counts one event in each of @p n windows, in one statement, only while
 * every window before it in the list admitted it: each row's check and
 * count happen under that row's lock, so concurrent takes can never pass a
 * limit together. *admitted false: *retry_after holds the seconds until the
 * first full window admits one more (a window listed after the full one
 * is not charged; one listed before it is). */
guest_status guest__window_take(guest_ctx *ctx, const guest__window_limit *w,
                                size_t n, bool *admitted, int64_t *retry_after,
                                guest_error *err);
/* Gives back one event taken in this bucket from each of @p n windows, in
 * one statement; windows whose @p reset is true are emptied instead. */
guest_status guest__window_give_back(guest_ctx *ctx,
                                     const guest__window_limit *w,
                                     const bool *reset, size_t n,
                                     guest_error *err);

#endif

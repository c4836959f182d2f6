/* Session lookups and guest creations of an event loop on one connection
 * in libpq's pipeline mode. Each is its own statement followed by its own
 * sync point, so a statement that fails aborts only itself (a creation is
 * its own implicit transaction); the answers come back in the order the
 * statements went out, which is the order of the ring. */
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

/* Lookups in flight on the connection at most; past it a request resolves
 * the blocking way (a worker's pooled connection), which is also what
 * keeps a slow database from piling up the loop's requests here. */
#define PIPE_MAX 256
/* Pause before connecting again after a failure: doubled each time, from
 * the first to the last. */
#define RETRY_FIRST_MS 100
#define RETRY_LAST_MS 5000

typedef enum pipe_state { P_DOWN, P_CONNECTING, P_READY } pipe_state;

typedef struct lookup {
    guest__pipe_fn fn; /* NULL: a PREPARE sent after connecting */
    void *arg;
    int64_t deadline;
    bool create; /* a creation's answer, else a lookup's */
} lookup;

struct guest__pipe {
    guest_ctx *ctx;
    PGconn *conn;
    unsigned conn_gen; /* counts connections started */
    pipe_state state;
    PostgresPollingStatusType polling; /* while P_CONNECTING */
    int64_t connect_deadline;
    int64_t retry_at;
    unsigned retry_ms;
    /* Named statements on this connection; behind a transaction-mode
     * pooler the schema's functions instead (or the creation's text),
     * unnamed. */
    bool prepared;
    bool unflushed; /* PQflush() said 1: wait until writable */
    bool served;    /* a lookup was answered on this connection */
    /* Found broken while queueing: dropped at the next guest__pipe_io(),
     * so that no lookup's function runs inside guest__pipe_resolve(). */
    bool broken;
    lookup ring[PIPE_MAX + 1];
    unsigned first, count;
    /* The answer of the statement at the ring's head, until its sync. */
    guest_status st;
    guest__pipe_answer ans;
};

guest_status guest__pipe_new(guest_ctx *ctx, guest__pipe **out)
{
    guest__pipe *p = calloc(1, sizeof *p);
    if (!p)
        return GUEST_ERR_NOMEM;
    p->ctx = ctx;
    p->retry_ms = RETRY_FIRST_MS;
    *out = p;
    return GUEST_OK;
}

/* Hands back every lookup in flight with @p st, oldest first. */
static void fail_all(guest__pipe *p, guest_status st)
{
    while (p->count) {
        lookup l = p->ring[p->first];
        p->first = (p->first + 1) % (PIPE_MAX + 1);
        p->count--;
        if (l.fn)
            l.fn(l.arg, st, NULL);
    }
    p->first = 0;
}

/* The connection is of no more use: lookups in flight go back with @p st,
 * and the next connection comes after a pause. */
static void drop(guest__pipe *p, guest_status st, bool cancel)
{
    if (p->conn) {
        /* A statement left running is asked to stop, off this thread. */
        if (cancel && p->count)
            guest__conn_cancel_async(p->conn);
        PQfinish(p->conn);
        p->conn = NULL;
    }
    /* A connection that never answered a lookup (refused, or its PREPARE
     * failed) is tried again later and later. */
    bool served = p->served;
    p->served = false;
    p->state = P_DOWN;
    p->unflushed = false;
    p->broken = false;
    /* What a statement of this connection failed with is not the next
     * connection's. */
    p->st = GUEST_OK;
    p->ans = (guest__pipe_answer){0};
    p->retry_at = guest__now_ms() + p->retry_ms;
    if (!served && p->retry_ms < RETRY_LAST_MS)
        p->retry_ms =
            p->retry_ms * 2 > RETRY_LAST_MS ? RETRY_LAST_MS : p->retry_ms * 2;
    fail_all(p, st);
}

void guest__pipe_free(guest__pipe *p)
{
    if (!p)
        return;
    fail_all(p, GUEST_ERR_BUSY);
    if (p->conn)
        PQfinish(p->conn);
    free(p);
}

static void push(guest__pipe *p, guest__pipe_fn fn, void *arg, bool create)
{
    unsigned i = (p->first + p->count) % (PIPE_MAX + 1);
    p->ring[i] = (lookup){
        .fn = fn,
        .arg = arg,
        .deadline = guest__now_ms() + p->ctx->cfg.db_timeout_ms,
        .create = create,
    };
    p->count++;
}

/* Sends what libpq holds; what the socket does not take now waits for
 * GUEST_IO_WRITE. False (the connection dropped) when it broke. */
static bool flush(guest__pipe *p)
{
    int f = PQflush(p->conn);
    p->unflushed = f == 1;
    if (f < 0)
        drop(p, GUEST_ERR_BUSY, false);
    return f >= 0;
}

static const Oid bytea_type[] = {17};

/* Connected: pipeline mode, and the named statements prepared in the same
 * pipeline (their answers are the ring's first entries, with no
 * function). */
static void on_connected(guest__pipe *p)
{
    const guest__sql *sql = &p->ctx->sql;
    guest__conn_ready(p->conn);
    p->prepared = !guest__pool_transaction_mode(p->ctx->pool);
    if (!PQenterPipelineMode(p->conn) ||
        (p->prepared &&
         (!PQsendPrepare(p->conn, "guest_resolve", sql->resolve_session, 1,
                         bytea_type) ||
          !PQpipelineSync(p->conn) ||
          /* no types given: the server takes the parameters and their
           * types from the text, which guests.c built for this config */
          !PQsendPrepare(p->conn, "guest_create", sql->create_guest, 0, NULL) ||
          !PQpipelineSync(p->conn)))) {
        drop(p, GUEST_ERR_BUSY, false);
        return;
    }
    if (p->prepared) {
        push(p, NULL, NULL, false);
        push(p, NULL, NULL, false);
    }
    p->state = P_READY;
    flush(p);
}

static void connect_step(guest__pipe *p)
{
    if (!p->conn) {
        /* Named apart in pg_stat_activity from the pool's connections. */
        p->conn = guest__pool_connect_start(p->ctx->pool, "libguestuser-loop");
        p->conn_gen++;
        p->state = P_CONNECTING;
        p->polling = PGRES_POLLING_WRITING;
        p->connect_deadline = guest__now_ms() + p->ctx->cfg.db_timeout_ms;
        /* libpq's rule: the first PQconnectPoll waits for a writable
         * socket; a connection that failed at once (out of memory, a
         * conninfo it cannot use) goes now. */
        if (p->conn && PQstatus(p->conn) != CONNECTION_BAD)
            return;
        p->polling = PGRES_POLLING_FAILED;
    } else {
        p->polling = PQstatus(p->conn) == CONNECTION_BAD
                         ? PGRES_POLLING_FAILED
                         : PQconnectPoll(p->conn);
    }
    if (p->polling == PGRES_POLLING_OK)
        on_connected(p);
    else if (p->polling == PGRES_POLLING_FAILED)
        drop(p, GUEST_ERR_BUSY, false);
}

/* Whether a statement can be queued now; starts connecting when it is
 * time to. */
static bool can_send(guest__pipe *p)
{
    if (p->state == P_DOWN && guest__now_ms() >= p->retry_at)
        connect_step(p);
    return p->state == P_READY && !p->broken && p->count < PIPE_MAX;
}

/* After a statement was given to libpq (@p ok): its sync point, its entry
 * in the ring, and as much of it sent as the socket takes. */
static bool sent(guest__pipe *p, int ok, guest__pipe_fn fn, void *arg,
                 bool create)
{
    /* A connection found broken here is dropped at the next
     * guest__pipe_io(), so that no statement's function runs inside the
     * caller's call; what is queued already may still be answered. */
    p->broken = !ok || !PQpipelineSync(p->conn);
    if (p->broken)
        return false;
    guest__db_round_trips++;
    push(p, fn, arg, create);
    int f = PQflush(p->conn);
    p->broken = f < 0;
    p->unflushed = f == 1;
    return true;
}

bool guest__pipe_resolve(guest__pipe *p, const unsigned char *token_hash,
                         guest__pipe_fn fn, void *arg)
{
    if (!can_send(p))
        return false;
    const char *values[1] = {(const char *)token_hash};
    const int lengths[1] = {GUEST__SHA256_BYTES};
    const int formats[1] = {1};
    int ok = p->prepared
                 ? PQsendQueryPrepared(p->conn, "guest_resolve", 1, values,
                                       lengths, formats, 0)
                 : PQsendQueryParams(p->conn, p->ctx->sql.resolve_session_fn, 1,
                                     NULL, values, lengths, formats, 0);
    return sent(p, ok, fn, arg, false);
}

bool guest__pipe_create(guest__pipe *p, const char *username,
                        const unsigned char *token_hash,
                        const guest__client_keys *keys, guest__pipe_fn fn,
                        void *arg)
{
    if (!can_send(p))
        return false;
    const guest__sql *sql = &p->ctx->sql;
    char age[GUEST__INT_BUF];
    guest__params q;
    guest__store_create_params(p->ctx, username, token_hash, keys, age, &q);
    /* libpq copies the parameters into its buffer: they may go now. */
    int ok =
        p->prepared
            ? PQsendQueryPrepared(p->conn, "guest_create", q.n, q.values,
                                  q.lengths, q.formats, 0)
            : PQsendQueryParams(p->conn,
                                sql->create_guest_fn ? sql->create_guest_fn
                                                     : sql->create_guest,
                                q.n, NULL, q.values, q.lengths, q.formats, 0);
    return sent(p, ok, fn, arg, true);
}

int guest__pipe_fd(const guest__pipe *p, unsigned *gen)
{
    *gen = p->conn_gen;
    return p->conn ? PQsocket(p->conn) : -1;
}

unsigned guest__pipe_events(guest__pipe *p, int64_t *timeout_ms)
{
    int64_t now = guest__now_ms();
    int64_t due = p->state == P_CONNECTING ? p->connect_deadline
                  : p->broken              ? now
                  : p->count               ? p->ring[p->first].deadline
                                           : -1;
    *timeout_ms = due < 0 ? -1 : due > now ? due - now : 0;
    if (p->state == P_CONNECTING)
        return p->polling == PGRES_POLLING_READING ? GUEST_IO_READ
                                                   : GUEST_IO_WRITE;
    /* Always readable when connected: a server closing the connection says
     * so there. */
    return p->state == P_READY
               ? GUEST_IO_READ | (p->unflushed ? GUEST_IO_WRITE : 0)
               : 0;
}

/* One result of the statement at the ring's head. False when the
 * connection must go. */
static bool take(guest__pipe *p, PGresult *r)
{
    ExecStatusType es = PQresultStatus(r);
    if (es == PGRES_PIPELINE_SYNC) {
        lookup l = p->ring[p->first];
        p->first = (p->first + 1) % (PIPE_MAX + 1);
        p->count--;
        guest_status st = p->st;
        p->st = GUEST_OK;
        if (!l.fn) /* a PREPARE: without it no statement can work */
            return st == GUEST_OK;
        p->served = true;
        p->retry_ms = RETRY_FIRST_MS;
        /* A creation answered without its row (never so from the
         * statement itself) must not pass for one that made a guest. */
        if (l.create && st == GUEST_OK && !p->ans.found)
            st = GUEST_ERR_DB;
        st = guest__metric_db(p->ctx, st);
        l.fn(l.arg, st, st == GUEST_OK ? &p->ans : NULL);
        p->ans = (guest__pipe_answer){0};
        return true;
    }
    if (es == PGRES_TUPLES_OK || es == PGRES_COMMAND_OK) {
        lookup *l = &p->ring[p->first];
        if (!l->fn || es != PGRES_TUPLES_OK)
            return true;
        if (l->create) {
            guest__store_create_row(p->ctx, r, &p->ans.user, &p->ans.outcome,
                                    &p->ans.retry_after);
            p->ans.found = true; /* the outcome was read */
        } else
            p->ans.found = guest__store_resolve_row(p->ctx, r, &p->ans.user,
                                                    &p->ans.ms_left);
        return true;
    }
    /* A failed statement: the outage classes end the connection, and so
     * does 26000 (the named statement is not there, as behind a pooler
     * that moved the session to another server connection: the next
     * connection decides anew, and the request is looked up the blocking
     * way); any other failure only its request. */
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    p->st = GUEST_ERR_DB;
    return state && strncmp(state, "08", 2) != 0 &&
           strncmp(state, "57P", 3) != 0 && strcmp(state, "26000") != 0;
}

static void read_answers(guest__pipe *p)
{
    bool ok = PQconsumeInput(p->conn);
    while (ok && p->state == P_READY && p->count && !PQisBusy(p->conn)) {
        PGresult *r = PQgetResult(p->conn);
        if (!r)
            continue; /* the end of one statement's results */
        ok = take(p, r);
        PQclear(r);
    }
    if (p->state == P_READY && (!ok || PQstatus(p->conn) != CONNECTION_OK))
        drop(p, GUEST_ERR_BUSY, false);
}

void guest__pipe_io(guest__pipe *p)
{
    int64_t now = guest__now_ms();
    if (p->state == P_CONNECTING) {
        if (now >= p->connect_deadline)
            drop(p, GUEST_ERR_BUSY, false);
        else
            connect_step(p);
        return;
    }
    if (p->state == P_READY && p->broken)
        drop(p, GUEST_ERR_BUSY, false);
    if (p->state == P_READY && (!p->unflushed || flush(p)))
        read_answers(p);
    /* The oldest statement past db_timeout_ms: the database hangs. Its
     * request and every later one answer as a blocking lookup would. */
    if (p->state == P_READY && p->count && now >= p->ring[p->first].deadline) {
        guest__log_every(p->ctx, &p->ctx->db_down_logged_ms, 10000,
                         GUEST_LOG_ERROR,
                         "database unavailable: no answer to a session "
                         "lookup within %u ms",
                         p->ctx->cfg.db_timeout_ms);
        drop(p, GUEST_ERR_DB_UNAVAILABLE, true);
    }
}

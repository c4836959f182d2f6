/* A fixed-size libpq connection pool shared by all server threads. */
#include <errno.h>
#include <poll.h>
#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store.h"

typedef struct slot {
    PGconn *conn;
    bool busy;
} slot;

/* A thread waiting for a slot, on its own stack, in arrival order. */
typedef struct waiter {
    struct waiter *next;
    pthread_cond_t wake;
    int64_t since_ms;
    int handed; /* the slot a releasing thread gave it, else -1 */
} waiter;

/* How long a waiter lets newcomers take freed slots before it. Barging
 * keeps a hot pool fast: the thread that releases a connection and asks
 * again at once needs no context switch, while handing every slot to the
 * oldest waiter made a convoy (measured: 11.7k against 15.9k requests/s).
 * Pure barging, though, left the tail open: a waiter could lose round after
 * round (98 ms with 32 threads on 2 connections; once, in a benchmark, a
 * whole db_timeout_ms). Past this wait the oldest waiter is served first.
 * Measured with 8 to 32 threads on 2 to 4 connections: the longest wait
 * fell to 10-13 ms with no loss of throughput; 20 ms left the tail at 20,
 * and 5 ms cost a sixth of the throughput at 32 threads on 2.
 * (GUEST__POOL_PATIENCE_MS, in store.h so a test can wait past it.) */
#define PATIENCE_MS GUEST__POOL_PATIENCE_MS

struct guest__pool {
    const guest_ctx *ctx; /* for log lines */
    guest_db_pooler mode;
    /* Behind a transaction-mode pooler: set from the start, or by AUTO when
     * a server refused the startup options. Never goes back. */
    _Atomic bool transaction_mode;
    pthread_mutex_t lock;
    pthread_condattr_t clock_attr; /* monotonic, for each waiter's wake */
    waiter *head, *tail;
    unsigned waiting; /* threads in that queue */
    slot *slots;
    unsigned size;
    unsigned timeout_ms;
    char *conninfo;
    /* "-c statement_timeout=N -c lock_timeout=N -c guestuser.startup=on",
     * then the conninfo's own options, which win where they overlap */
    char *options;
};

guest_status guest__pool_new(const guest_ctx *ctx, const char *conninfo,
                             guest__pool **out, guest_error *err)
{
    unsigned size = ctx->cfg.db_pool_size, timeout_ms = ctx->cfg.db_timeout_ms;
    guest__pool *p = calloc(1, sizeof *p);
    if (!p)
        return guest__fail(err, GUEST_ERR_NOMEM, "out of memory");
    p->slots = calloc(size, sizeof *p->slots);
    p->conninfo = guest__strdup(conninfo ? conninfo : "");
    if (!p->slots || !p->conninfo) {
        free(p->slots);
        free(p->conninfo);
        free(p);
        return guest__fail(err, GUEST_ERR_NOMEM, "out of memory");
    }
    /* Check the conninfo's syntax now, so a typo is a configuration error
     * at start rather than an outage at the first request. */
    char *why = NULL;
    PQconninfoOption *opts = PQconninfoParse(p->conninfo, &why);
    if (!opts) {
        guest__fail(err, GUEST_ERR_CONFIG, "db_conninfo: %s",
                    why ? why : "out of memory");
        PQfreemem(why);
        free(p->slots);
        free(p->conninfo);
        free(p);
        return GUEST_ERR_CONFIG;
    }
    const char *theirs = "";
    for (PQconninfoOption *o = opts; o->keyword; o++)
        if (!strcmp(o->keyword, "options") && o->val)
            theirs = o->val;
    /* The client gives up on a statement after timeout_ms; the server is
     * told the same, so an abandoned statement stops there too instead of
     * holding its locks on a connection nobody reads any more. The
     * placeholder setting guestuser.startup only shows, when read back,
     * that the options arrived (see check_options_arrived). */
    p->options =
        guest__asprintf("-c statement_timeout=%u -c lock_timeout=%u"
                        " -c guestuser.startup=on%s%s",
                        timeout_ms, timeout_ms, *theirs ? " " : "", theirs);
    PQconninfoFree(opts);
    int n = p->options ? 0 : -1;
    /* Waits are measured on the monotonic clock, like every deadline here,
     * so setting the wall clock back cannot stretch them. */
    bool attr_ok = pthread_condattr_init(&p->clock_attr) == 0;
    bool clock_ok = attr_ok && pthread_condattr_setclock(&p->clock_attr,
                                                         CLOCK_MONOTONIC) == 0;
    bool mutex_ok = clock_ok && pthread_mutex_init(&p->lock, NULL) == 0;
    if (n < 0 || !mutex_ok) {
        if (mutex_ok)
            pthread_mutex_destroy(&p->lock);
        if (attr_ok)
            pthread_condattr_destroy(&p->clock_attr);
        free(p->options);
        free(p->slots);
        free(p->conninfo);
        free(p);
        return guest__fail(err, GUEST_ERR_NOMEM,
                           "cannot set up the connection pool");
    }
    p->size = size;
    p->timeout_ms = timeout_ms;
    p->ctx = ctx;
    p->mode = ctx->cfg.db_pooler;
    p->transaction_mode = p->mode == GUEST_DB_POOLER_TRANSACTION;
    *out = p;
    return GUEST_OK;
}

void guest__pool_free(guest__pool *p)
{
    if (!p)
        return;
    for (unsigned i = 0; i < p->size; i++)
        if (p->slots[i].conn)
            PQfinish(p->slots[i].conn);
    pthread_mutex_destroy(&p->lock);
    pthread_condattr_destroy(&p->clock_attr);
    free(p->options);
    free(p->slots);
    free(p->conninfo);
    free(p);
}

/* Server notices ("relation already exists, skipping" from idempotent
 * migrations) are not the application's business; libpq would print them
 * to stderr. */
static void ignore_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

PGconn *guest__pool_connect_start(const guest__pool *p, const char *app_name)
{
    /* A later keyword wins over the caller's conninfo (expanded from
     * dbname), an earlier one loses to it: the caller's application_name
     * wins; `options` carries ours followed by the caller's own, so both
     * arrive and theirs win where they overlap. A transaction-mode pooler
     * refuses `options` (and would hand the settings to whichever client
     * gets that server connection next), so there the timeouts travel
     * with each transaction instead. */
    static const char *const with[] = {"application_name", "dbname", "options",
                                       NULL};
    static const char *const without[] = {"application_name", "dbname", NULL};
    bool options = !p->transaction_mode;
    const char *vals_with[] = {app_name, p->conninfo, p->options, NULL};
    const char *vals_without[] = {app_name, p->conninfo, NULL};
    return PQconnectStartParams(options ? with : without,
                                options ? vals_with : vals_without, 1);
}

void guest__conn_ready(PGconn *conn)
{
    PQsetnonblocking(conn, 1);
    PQsetNoticeProcessor(conn, ignore_notice, NULL);
}

/* Connects without blocking past @p deadline: libpq's connect_timeout counts
 * whole seconds per host, too coarse for a request budget. */
static PGconn *connect_once(const guest__pool *p, int64_t deadline,
                            guest_error *err)
{
    PGconn *c = guest__pool_connect_start(p, "libguestuser");
    if (!c) {
        guest__fail(err, GUEST_ERR_NOMEM, "out of memory");
        return NULL;
    }
    PostgresPollingStatusType ps = PGRES_POLLING_WRITING;
    while (PQstatus(c) != CONNECTION_BAD) {
        if (ps == PGRES_POLLING_OK) {
            guest__conn_ready(c);
            return c;
        }
        if (ps == PGRES_POLLING_FAILED)
            break;
        int64_t left = deadline - guest__now_ms();
        if (left <= 0) {
            guest__fail(err, GUEST_ERR_DB_UNAVAILABLE,
                        "connecting to the database timed out");
            PQfinish(c);
            return NULL;
        }
        struct pollfd pfd = {.fd = PQsocket(c),
                             .events = ps == PGRES_POLLING_READING ? POLLIN
                                                                   : POLLOUT};
        int rc = poll(&pfd, 1, (int)left);
        if (rc < 0 && errno != EINTR)
            break;
        if (rc > 0)
            ps = PQconnectPoll(c);
    }
    guest__fail_pq(err, GUEST_ERR_DB_UNAVAILABLE, "cannot connect", c);
    PQfinish(c);
    return NULL;
}

/* AUTO's switch, once: from then on no startup options, no named
 * statements, timeouts with each transaction. */
static void switch_to_transaction_mode(guest__pool *p, const char *why)
{
    bool was = false;
    if (atomic_compare_exchange_strong(&p->transaction_mode, &was, true))
        guest__log(p->ctx, GUEST_LOG_INFO,
                   "%s: a connection pooler in transaction mode is assumed "
                   "from now on (db_pooler; docs/scaling.md)",
                   why);
}

/* A pooler may also drop `options` without a word (PgBouncer with options
 * in ignore_startup_parameters): nothing is refused, yet the connection
 * has none of our timeouts and its statements may move between servers.
 * Our options set the placeholder guestuser.startup, which nothing else
 * sets: read back, it says whether they arrived. (The value of
 * statement_timeout could not say: a role's setting may equal ours.) One
 * round trip per new connection, under AUTO only, until it switches.
 * False (with @p err) when the connection failed; a statement refused
 * (a proxy that cannot run it) decides nothing and keeps the connection. */
static bool check_options_arrived(guest__pool *p, PGconn *c, int64_t deadline,
                                  guest_error *err)
{
    static const char sql[] =
        "SELECT current_setting('guestuser.startup', true) = 'on'";
    const guest__stmt s = {.sql = sql, .script = true};
    int64_t left = deadline - guest__now_ms();
    PGresult *res = NULL;
    bool broken = false, sent = false;
    guest_status st = guest__sql_send_on(c, left > 1 ? (unsigned)left : 1, &s,
                                         sql, &res, &broken, &sent, err);
    if (st == GUEST_OK && PQntuples(res) == 1 &&
        PQgetvalue(res, 0, 0)[0] != 't')
        switch_to_transaction_mode(p, "the database ignored startup options");
    PQclear(res);
    return !broken && PQstatus(c) == CONNECTION_OK;
}

static PGconn *connect_by(guest__pool *p, int64_t deadline, guest_error *err)
{
    guest_error local = {.message = ""};
    guest_error *e = err ? err : &local;
    bool with_options = !p->transaction_mode;
    PGconn *c = connect_once(p, deadline, e);
    if (c && with_options && p->mode == GUEST_DB_POOLER_AUTO &&
        !p->transaction_mode && !check_options_arrived(p, c, deadline, e)) {
        PQfinish(c);
        return NULL;
    }
    /* PgBouncer answers the startup parameter `options` with "unsupported
     * startup parameter: options"; PostgreSQL itself accepts it. Every
     * thread refused so retries, also when another one switched first. */
    if (!c && p->mode == GUEST_DB_POOLER_AUTO && with_options &&
        strstr(e->message, "unsupported startup parameter")) {
        switch_to_transaction_mode(p, "the database refused startup options");
        c = connect_once(p, deadline, e);
    }
    return c;
}

bool guest__pool_transaction_mode(const guest__pool *p)
{
    return p->transaction_mode;
}

/* A free slot, preferring an open connection over opening a new one;
 * -1 when every slot is busy. Called with the lock held. */
static int free_slot(const guest__pool *p)
{
    int empty = -1;
    for (unsigned i = 0; i < p->size; i++) {
        if (p->slots[i].busy)
            continue;
        if (p->slots[i].conn)
            return (int)i;
        if (empty < 0)
            empty = (int)i;
    }
    return empty;
}

static bool starving(const waiter *w, int64_t now_ms)
{
    return w && now_ms - w->since_ms >= PATIENCE_MS;
}

static void unlink_waiter(guest__pool *p, waiter *w)
{
    waiter **at = &p->head, *prev = NULL;
    while (*at && *at != w) {
        prev = *at;
        at = &(*at)->next;
    }
    if (!*at)
        return;
    assert(p->waiting > 0);
    p->waiting--;
    *at = w->next;
    if (p->tail == w)
        p->tail = prev;
}

/* After a waiter left the queue: a slot still free must not wait for a
 * release that may never come, so the next waiter is woken to take it. */
static void pass_on(guest__pool *p)
{
    if (p->head && free_slot(p) >= 0)
        pthread_cond_signal(&p->head->wake);
}

/* Gives slot @p i back (its connection already set or cleared) with the
 * lock held: straight to the oldest waiter once it has waited past
 * PATIENCE_MS, else to whoever asks first, the oldest waiter woken. */
static void give_back(guest__pool *p, unsigned i)
{
    /* Only a slot taken (busy) is given back, and only once. */
    assert(i < p->size && p->slots[i].busy);
    waiter *w = p->head;
    if (w && starving(w, guest__now_ms())) {
        w->handed = (int)i; /* the slot stays busy: it is w's now */
        unlink_waiter(p, w);
        pthread_cond_signal(&w->wake);
        return;
    }
    p->slots[i].busy = false;
    if (w)
        pthread_cond_signal(&w->wake);
}

/* Takes a slot for the caller within @p deadline and marks it busy, with
 * the lock held. */
static bool wait_for_slot(guest__pool *p, int64_t deadline, unsigned *index)
{
    int i = free_slot(p);
    /* A newcomer goes ahead of the queue unless its oldest has waited too
     * long (see PATIENCE_MS). */
    if (i >= 0 && (!p->head || !starving(p->head, guest__now_ms()))) {
        assert((unsigned)i < p->size && !p->slots[i].busy);
        *index = (unsigned)i;
        p->slots[i].busy = true;
        return true;
    }
    waiter w = {.since_ms = guest__now_ms(), .handed = -1};
    if (pthread_cond_init(&w.wake, &p->clock_attr) != 0)
        return false;
    if (p->tail)
        p->tail->next = &w;
    else
        p->head = &w;
    p->tail = &w;
    p->waiting++;
    bool got = false;
    for (;;) {
        int64_t now = guest__now_ms();
        if (w.handed < 0 && (p->head == &w || !starving(p->head, now)) &&
            (i = free_slot(p)) >= 0) {
            unlink_waiter(p, &w);
            *index = (unsigned)i;
            got = true;
            break;
        }
        if (w.handed >= 0 || now >= deadline)
            break;
        int64_t left = deadline - now;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += left / 1000;
        ts.tv_nsec += (left % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&w.wake, &p->lock, &ts);
    }
    /* A slot handed over (already unlinked by the giver) is this thread's
     * unless the deadline passed meanwhile: a statement with no time left
     * would only time out and cost the connection, so it goes to the next
     * waiter instead. */
    if (w.handed >= 0) {
        if (guest__now_ms() < deadline) {
            *index = (unsigned)w.handed;
            got = true;
        } else {
            give_back(p, (unsigned)w.handed);
        }
    } else if (!got) {
        unlink_waiter(p, &w);
    }
    pthread_cond_destroy(&w.wake);
    /* Taken before the next waiter looks, so it is not woken for this. */
    if (got)
        p->slots[*index].busy = true;
    pass_on(p);
    return got;
}

/* An idle connection whose server went away (restart, failover, idle
 * timeout) still says CONNECTION_OK until it is read; reading what is
 * pending, without blocking, finds the goodbye before a request is spent
 * on it. */
static bool still_alive(PGconn *c)
{
    /* A server that went away left a FATAL message and then the end of the
     * stream, so the socket reads as ready; one that is still there has
     * sent nothing to an idle connection. One poll tells the two apart,
     * and only a ready socket is read. A few reads at most: the first
     * takes the message, the next meets the end. */
    if (PQstatus(c) != CONNECTION_OK)
        return false;
    for (int reads = 0; reads < 4; reads++) {
        struct pollfd pfd = {.fd = PQsocket(c), .events = POLLIN};
        if (poll(&pfd, 1, 0) <= 0)
            return !PQisBusy(c);
        if (pfd.revents & (POLLHUP | POLLERR | POLLNVAL))
            return false;
        if (!PQconsumeInput(c) || PQstatus(c) != CONNECTION_OK)
            return false;
    }
    return false;
}

guest_status guest__pool_acquire_by(guest__pool *p, int64_t deadline,
                                    PGconn **conn, guest_error *err)
{
    unsigned i;
    int64_t waited_from = guest__now_us();
    pthread_mutex_lock(&p->lock);
    bool got = wait_for_slot(p, deadline, &i); /* marks the slot busy */
    assert(!got || (i < p->size && p->slots[i].busy));
    PGconn *c = got ? p->slots[i].conn : NULL;
    pthread_mutex_unlock(&p->lock);
    guest__observe_since(p->ctx, GUEST__H_POOL_WAIT, waited_from);
    if (!got)
        return guest__fail(err, GUEST_ERR_DB_UNAVAILABLE,
                           "no database connection free within %u ms",
                           p->timeout_ms);
    if (c && !still_alive(c)) {
        /* Off the slot before it is freed: a connection opened meanwhile
         * may get the same address, and release finds slots by address. */
        pthread_mutex_lock(&p->lock);
        p->slots[i].conn = NULL;
        pthread_mutex_unlock(&p->lock);
        PQfinish(c);
        c = NULL;
    }
    /* Connecting happens outside the lock so one slow connect does not
     * stall threads that could use an idle open connection. */
    if (!c)
        c = connect_by(p, deadline, err);
    pthread_mutex_lock(&p->lock);
    p->slots[i].conn = c;
    if (!c)
        give_back(p, i);
    pthread_mutex_unlock(&p->lock);
    if (!c)
        return err ? err->status : GUEST_ERR_DB_UNAVAILABLE;
    *conn = c;
    return GUEST_OK;
}

void guest__pool_gauges(guest__pool *p, unsigned *size, unsigned *open,
                        unsigned *busy, unsigned *waiting)
{
    unsigned o = 0, b = 0, w;
    pthread_mutex_lock(&p->lock);
    for (unsigned i = 0; i < p->size; i++) {
        o += p->slots[i].conn != NULL;
        b += p->slots[i].busy;
    }
    w = p->waiting;
    pthread_mutex_unlock(&p->lock);
    *size = p->size;
    *open = o;
    *busy = b;
    *waiting = w;
}

int64_t guest__pool_longest_wait_ms(guest__pool *p)
{
    pthread_mutex_lock(&p->lock);
    int64_t ms = p->head ? guest__now_ms() - p->head->since_ms : -1;
    pthread_mutex_unlock(&p->lock);
    return ms;
}

bool guest__pool_lent(guest__pool *p, const PGconn *conn)
{
    bool lent = false;
    pthread_mutex_lock(&p->lock);
    for (unsigned i = 0; i < p->size && !lent; i++)
        lent = p->slots[i].conn == conn && p->slots[i].busy;
    pthread_mutex_unlock(&p->lock);
    return lent;
}

void guest__pool_release(guest__pool *p, PGconn *conn, bool broken)
{
    if (!conn)
        return;
    /* A connection left mid-transaction or failed is not safe to hand to
     * the next request. */
    bool drop = broken || PQtransactionStatus(conn) != PQTRANS_IDLE;
    pthread_mutex_lock(&p->lock);
    for (unsigned i = 0; i < p->size; i++) {
        if (p->slots[i].conn == conn) {
            if (drop)
                p->slots[i].conn = NULL;
            if (p->slots[i].busy)
                give_back(p, i);
            break;
        }
    }
    pthread_mutex_unlock(&p->lock);
    if (drop)
        PQfinish(conn);
}

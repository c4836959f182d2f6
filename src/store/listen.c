/* One LISTEN connection of its own, on a thread of its own, for the
 * session cache: what the schema's triggers announce (store/migrate.c,
 * version 7) is handed to the caller, and so is every time the connection
 * goes up or down. Not a pooled connection: a pooled one goes back to the
 * pool between statements, and behind a transaction-mode pooler to another
 * server connection, so it would not hear anything. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"

/* The first reconnect waits this long, each next one twice as long, up to
 * BACKOFF_MAX_MS: a database that is down is not hammered, one that comes
 * back is heard again within seconds. */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
/* An idle connection sends an empty query this often, and is given up
 * when the answer takes longer than db_timeout_ms: a silent network
 * failure (no reset, no FIN) would otherwise look like a quiet database
 * while notifications are lost. */
#define HEARTBEAT_MS 5000
/* More notifications than this in one read are handed over as one flush:
 * walking the cache once per user of a bulk change costs more than
 * asking the database again. */
#define COLLAPSE_AFTER 64

struct guest__listener {
    const guest_ctx *ctx;
    guest__listen_fn fn;
    void *arg;
    char *conninfo;
    char channel[GUEST__LISTEN_CHANNEL_BUF];
    unsigned timeout_ms;
    int wake[2]; /* a byte in wake[1] stops the thread */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int first; /* 0 until the first attempt ended; 1 up, -1 failed */
    _Atomic int64_t down_logged; /* guest__log_every */
};

void guest__listen_channel(const char *schema,
                           char out[GUEST__LISTEN_CHANNEL_BUF])
{
    /* A channel name is at most 63 bytes, like a schema name: a prefix
     * would not fit every schema, so the name is hashed. The triggers
     * compute the same from TG_TABLE_SCHEMA. */
    unsigned char h[GUEST__SHA256_BYTES];
    static const char hex[] = "0123456789abcdef";
    if (guest__sha256(schema, strlen(schema), h) != GUEST_OK)
        memset(h, 0, sizeof h);
    char *o = out + sprintf(out, "guestuser_cache_");
    for (int i = 0; i < 16; i++) {
        *o++ = hex[h[i] >> 4];
        *o++ = hex[h[i] & 15];
    }
    *o = '\0';
}

static void ignore_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static bool stopping(const guest__listener *l)
{
    struct pollfd pfd = {.fd = l->wake[0], .events = POLLIN};
    return poll(&pfd, 1, 0) > 0;
}

/* Waits for @p events on @p fd until @p deadline; 1 ready, 0 timed out,
 * -1 asked to stop (or poll failed). */
static int wait_for(const guest__listener *l, int fd, short events,
                    int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - guest__now_ms();
        if (left < 0)
            left = 0;
        struct pollfd pfd[2] = {{.fd = l->wake[0], .events = POLLIN},
                                {.fd = fd, .events = events}};
        int rc = poll(pfd, fd >= 0 ? 2 : 1, (int)left);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0 || pfd[0].revents)
            return -1;
        if (rc == 0)
            return 0;
        return 1;
    }
}

/* libpq's message without its line breaks at the end: a log line is one
 * line. */
static int msg_len(const char *m)
{
    size_t n = strlen(m);
    while (n && (m[n - 1] == '\n' || m[n - 1] == '\r'))
        n--;
    return (int)n;
}

/* Connects without blocking on the network, giving up at @p deadline or
 * when asked to stop. NULL on failure (the last message logged by the
 * caller). */
static PGconn *connect_listener(guest__listener *l, int64_t deadline)
{
    /* The conninfo (expanded from dbname) comes later, so its own
     * application_name wins over ours. */
    static const char *const keys[] = {"application_name", "dbname", NULL};
    const char *vals[] = {"libguestuser-listen", l->conninfo, NULL};
    PGconn *c = PQconnectStartParams(keys, vals, 1);
    if (!c)
        return NULL;
    PostgresPollingStatusType ps = PGRES_POLLING_WRITING;
    while (PQstatus(c) != CONNECTION_BAD && ps != PGRES_POLLING_FAILED) {
        if (ps == PGRES_POLLING_OK) {
            PQsetNoticeProcessor(c, ignore_notice, NULL);
            return c;
        }
        int rc =
            wait_for(l, PQsocket(c),
                     ps == PGRES_POLLING_READING ? POLLIN : POLLOUT, deadline);
        if (rc < 0) { /* stopping: nothing to report */
            PQfinish(c);
            return NULL;
        }
        if (rc == 0)
            break;
        ps = PQconnectPoll(c);
    }
    const char *why =
        PQstatus(c) == CONNECTION_BAD ? PQerrorMessage(c) : "timed out";
    guest__log_every(l->ctx, &l->down_logged, 10000, GUEST_LOG_WARNING,
                     "session cache off: its LISTEN connection cannot "
                     "connect (retrying): %.*s",
                     msg_len(why), why);
    PQfinish(c);
    return NULL;
}

/* Reads what arrived; false when the connection is gone. Finished
 * results (LISTEN's, a heartbeat's) are taken, which clears *waiting. */
static bool take_input(PGconn *c, bool *waiting)
{
    if (!PQconsumeInput(c) || PQstatus(c) != CONNECTION_OK)
        return false;
    while (*waiting && !PQisBusy(c)) {
        PGresult *r = PQgetResult(c);
        if (!r) {
            *waiting = false;
            break;
        }
        ExecStatusType s = PQresultStatus(r);
        PQclear(r);
        if (s != PGRES_COMMAND_OK && s != PGRES_EMPTY_QUERY)
            return false;
    }
    return true;
}

/* Hands over the notifications read so far: each payload, or one flush
 * when there are many. */
static void deliver(guest__listener *l, PGconn *c)
{
    PGnotify *n[COLLAPSE_AFTER];
    size_t count = 0;
    bool many = false;
    PGnotify *one;
    while ((one = PQnotifies(c)) != NULL) {
        if (count < COLLAPSE_AFTER) {
            n[count++] = one;
        } else {
            many = true;
            PQfreemem(one);
        }
    }
    for (size_t i = 0; i < count; i++) {
        if (!many)
            l->fn(l->arg, GUEST__LISTEN_PAYLOAD, n[i]->extra);
        PQfreemem(n[i]);
    }
    if (many)
        l->fn(l->arg, GUEST__LISTEN_PAYLOAD, "flush");
}

static void first_outcome(guest__listener *l, int outcome)
{
    pthread_mutex_lock(&l->mu);
    if (!l->first) {
        l->first = outcome;
        pthread_cond_broadcast(&l->cv);
    }
    pthread_mutex_unlock(&l->mu);
}

/* One connection's life: LISTEN, then notifications and heartbeats until
 * it fails or the thread is stopped. True when LISTEN took effect. */
static bool listen_once(guest__listener *l, PGconn *c)
{
    char sql[GUEST__LISTEN_CHANNEL_BUF + 16];
    snprintf(sql, sizeof sql, "LISTEN \"%s\"", l->channel);
    bool waiting = PQsendQuery(c, sql) == 1;
    int64_t deadline = guest__now_ms() + l->timeout_ms;
    while (waiting) {
        if (wait_for(l, PQsocket(c), POLLIN, deadline) <= 0 ||
            !take_input(c, &waiting))
            return false;
    }
    if (PQstatus(c) != CONNECTION_OK)
        return false;
    /* Up: from here on every committed change is heard. */
    l->fn(l->arg, GUEST__LISTEN_UP, NULL);
    first_outcome(l, 1);
    deliver(l, c);
    int64_t next_beat = guest__now_ms() + HEARTBEAT_MS;
    for (;;) {
        int64_t until = waiting ? deadline : next_beat;
        int rc = wait_for(l, PQsocket(c), POLLIN, until);
        if (rc < 0)
            break;
        if (rc > 0) {
            if (!take_input(c, &waiting))
                break;
            deliver(l, c);
            continue;
        }
        if (waiting) /* the heartbeat went unanswered */
            break;
        if (PQsendQuery(c, "") != 1)
            break;
        waiting = true;
        deadline = guest__now_ms() + l->timeout_ms;
        next_beat = guest__now_ms() + HEARTBEAT_MS;
    }
    /* At once, before any log line or reconnect: from now on a change may
     * go unheard. */
    l->fn(l->arg, GUEST__LISTEN_DOWN, NULL);
    return true;
}

static void *run(void *arg)
{
    guest__listener *l = arg;
    int64_t backoff = BACKOFF_MIN_MS;
    while (!stopping(l)) {
        PGconn *c = connect_listener(l, guest__now_ms() + l->timeout_ms);
        bool was_up = c && listen_once(l, c);
        const char *why = !c ? ""
                          : was_up && PQstatus(c) == CONNECTION_OK
                              ? "no answer in time"
                              : PQerrorMessage(c);
        if (c && !stopping(l))
            guest__log_every(l->ctx, &l->down_logged, 10000, GUEST_LOG_WARNING,
                             "session cache off until its LISTEN connection "
                             "is back (retrying): %.*s",
                             msg_len(why), why);
        PQfinish(c);
        if (!was_up)
            first_outcome(l, -1);
        if (was_up)
            backoff = BACKOFF_MIN_MS;
        if (wait_for(l, -1, 0, guest__now_ms() + backoff) < 0)
            break;
        backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
    }
    return NULL;
}

guest_status guest__listener_start(const guest_ctx *ctx, const char *conninfo,
                                   guest__listen_fn fn, void *arg,
                                   guest__listener **out, guest_error *err)
{
    *out = NULL;
    char *why = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &why);
    if (!opts) {
        guest__fail(err, GUEST_ERR_CONFIG, "session_cache_listen_conninfo: %s",
                    why ? why : "out of memory");
        PQfreemem(why);
        return GUEST_ERR_CONFIG;
    }
    PQconninfoFree(opts);
    guest__listener *l = calloc(1, sizeof *l);
    if (!l)
        return guest__fail(err, GUEST_ERR_NOMEM, "out of memory");
    l->ctx = ctx;
    l->fn = fn;
    l->arg = arg;
    l->timeout_ms = ctx->cfg.db_timeout_ms;
    guest__listen_channel(ctx->cfg.db_schema, l->channel);
    l->conninfo = guest__strdup(conninfo);
    bool piped = pipe(l->wake) == 0;
    bool mu = pthread_mutex_init(&l->mu, NULL) == 0;
    /* Waits on the monotonic clock, like every deadline here. */
    pthread_condattr_t attr;
    bool cv = pthread_condattr_init(&attr) == 0;
    if (cv) {
        cv = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0 &&
             pthread_cond_init(&l->cv, &attr) == 0;
        pthread_condattr_destroy(&attr);
    }
    if (!l->conninfo || !piped || !mu || !cv ||
        pthread_create(&l->thread, NULL, run, l) != 0) {
        if (piped) {
            close(l->wake[0]);
            close(l->wake[1]);
        }
        if (mu)
            pthread_mutex_destroy(&l->mu);
        if (cv)
            pthread_cond_destroy(&l->cv);
        free(l->conninfo);
        free(l);
        return guest__fail(err, GUEST_ERR_NOMEM,
                           "cannot start the session cache's listener");
    }
    /* The first attempt is waited for (within db_timeout_ms), so that a
     * context is ready with its cache on when the database is; a failed
     * one does not fail the start: the cache stays off until it is up. */
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += l->timeout_ms / 1000;
    until.tv_nsec += (long)(l->timeout_ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&l->mu);
    while (!l->first &&
           pthread_cond_timedwait(&l->cv, &l->mu, &until) != ETIMEDOUT) {
    }
    pthread_mutex_unlock(&l->mu);
    *out = l;
    return GUEST_OK;
}

void guest__listener_stop(guest__listener *l)
{
    if (!l)
        return;
    /* Every wait of the thread polls the pipe, so it ends within one
     * poll; only a name lookup inside libpq cannot be interrupted. */
    ssize_t w;
    do
        w = write(l->wake[1], "x", 1);
    while (w < 0 && errno == EINTR);
    pthread_join(l->thread, NULL);
    close(l->wake[0]);
    close(l->wake[1]);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
    free(l->conninfo);
    free(l);
}

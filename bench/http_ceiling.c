/* The ceiling for the HTTP column of bench/run.sh: the least an HTTP front
 * end can do around one statement per request. One thread, one epoll loop,
 * libpq in non-blocking mode on a few connections, requests queued when all
 * are busy; no library, no guard, no cookie signing, a fixed answer.
 *
 *   http_ceiling CONNINFO --case returning|new|ping [--conns N] [--port P]
 *                [--pipeline]
 *
 * It prints "listening on http://127.0.0.1:PORT/" and serves until SIGINT
 * or SIGTERM. The statements are bench/pgbench's: "returning" takes the
 * number of a session bench/run.sh made for pgbench from the request's
 * cookie "b=N"; "new" creates a guest under a random name. It is the server
 * an event-driven design would be at best, so bench/run.sh can show how far
 * from pgbench any HTTP front end stays on the same machine. With
 * --pipeline each connection is in libpq's pipeline mode: a request's
 * statement goes out at once behind those already in flight, each followed
 * by its own sync point (so a failing statement would fail only its own
 * request), and answers come back in order; the case bench/run.sh's
 * "pipeline" row compares with the plain one. Not a server:
 * no limits, no timeouts, nothing a hostile client could not break. */
#define _GNU_SOURCE
#include <errno.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *const returning_sql =
    "SELECT u.id, u.username, g.user_id IS NOT NULL,"
    " floor(extract(epoch FROM g.created_at))::bigint,"
    " floor(extract(epoch FROM s.expires_at - now()) * 1000)::bigint"
    " FROM guestuser.sessions s"
    " JOIN guestuser.users u ON u.id = s.user_id"
    " LEFT JOIN guestuser.guests g ON g.user_id = u.id"
    " WHERE s.token_hash = sha256(int8send(-($1::bigint)))"
    " AND s.expires_at > now() AND u.is_active";

static const char *const new_sql =
    "WITH u AS (INSERT INTO guestuser.users (username)"
    " VALUES ('ceiling-' || $1) ON CONFLICT (username) DO NOTHING"
    " RETURNING id, username),"
    " g AS (INSERT INTO guestuser.guests (user_id) SELECT id FROM u"
    " RETURNING user_id),"
    " s AS (INSERT INTO guestuser.sessions (token_hash, user_id, expires_at)"
    " SELECT sha256(int8send($1::bigint)), user_id,"
    " now() + make_interval(secs => 1209600) FROM g RETURNING user_id)"
    " SELECT u.id, u.username, floor(extract(epoch FROM now()))::bigint"
    " FROM u JOIN s ON s.user_id = u.id";

static const char *const ping_sql = "SELECT 1 WHERE $1::bigint IS NOT NULL";

enum { MAX_DB = 64, BUF = 8192, MAX_INFLIGHT = 64 };

typedef struct client {
    int fd;    /* -1 once closed */
    bool dead; /* closed and not waiting: freed after this epoll batch */
    size_t len;
    bool waiting; /* a statement queued or running for it */
    struct client *next_queued;
    char buf[BUF];
} client;

typedef struct {
    PGconn *conn;
    client *serving; /* plain mode: the one statement's client */
    /* pipeline mode: the clients of the statements in flight, oldest first
     * (a ring), and the answer read for the oldest so far */
    client *inflight[MAX_INFLIGHT];
    int first, count;
    char who[64];
} dbconn;

static volatile sig_atomic_t stop;
static dbconn db[MAX_DB];
static int ndb = 8, ep;
static client *queue_head, *queue_tail;
/* Clients closed during one epoll batch: a later event of the same batch
 * may still name them, so they are freed only after it. */
static client *graveyard[1024];
static int buried;
static bool from_cookie, pipelined;
static const char *sql;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void die(const char *what, const char *why)
{
    fprintf(stderr, "http_ceiling: %s: %s\n", what, why);
    exit(1);
}

/* Tags in epoll data: clients are pointers (even), databases odd numbers. */
static uint64_t db_tag(int i)
{
    return ((uint64_t)i << 1) | 1;
}

static void bury(client *c)
{
    if (c->dead)
        return;
    c->dead = true;
    if (buried < (int)(sizeof graveyard / sizeof *graveyard))
        graveyard[buried++] = c;
    /* else leaked: a benchmark never closes a thousand in one batch */
}

/* Closes the client's socket; it is freed once no statement runs for it. */
static void drop(client *c)
{
    if (c->fd >= 0) {
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
    }
    if (!c->waiting)
        bury(c);
}

static void answer(client *c, const char *who)
{
    char body[512], out[768];
    int n = snprintf(body, sizeof body,
                     "<!doctype html><html><head><meta charset=\"utf-8\">"
                     "<title>ceiling</title></head><body><p>Hello, %s!</p>"
                     "</body></html>",
                     who);
    int m = snprintf(out, sizeof out,
                     "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
                     "Content-Length: %d\r\n\r\n%s",
                     n, body);
    /* A small answer to a client that reads: the socket takes it whole. */
    if (send(c->fd, out, (size_t)m, MSG_NOSIGNAL) != m)
        drop(c);
}

static void finish(client *c)
{
    c->waiting = false;
    if (c->fd < 0) {
        bury(c);
        return;
    }
    /* Drop the request just answered; keep what followed it. */
    char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
    size_t used = end ? (size_t)(end + 4 - c->buf) : c->len;
    memmove(c->buf, c->buf + used, c->len - used);
    c->len -= used;
}

static void start_statement(int i, client *c)
{
    char param[32];
    long long n = 0;
    if (from_cookie) {
        char *k = memmem(c->buf, c->len, "Cookie: b=", 10);
        n = k ? strtoll(k + 10, NULL, 10) : 0;
    } else {
        uint64_t r;
        if (getrandom(&r, sizeof r, 0) != sizeof r)
            r = (uint64_t)rand();
        n = (long long)(r >> 1);
    }
    snprintf(param, sizeof param, "%lld", n);
    const char *values[1] = {param};
    if (pipelined) {
        dbconn *d = &db[i];
        d->inflight[(d->first + d->count++) % MAX_INFLIGHT] = c;
        if (!PQsendQueryPrepared(d->conn, "s", 1, values, NULL, NULL, 0) ||
            !PQpipelineSync(d->conn))
            die("send", PQerrorMessage(d->conn));
    } else {
        db[i].serving = c;
        if (!PQsendQueryPrepared(db[i].conn, "s", 1, values, NULL, NULL, 0))
            die("send", PQerrorMessage(db[i].conn));
    }
    /* Statements are small: the socket takes them whole. */
    if (PQflush(db[i].conn) < 0)
        die("flush", PQerrorMessage(db[i].conn));
}

static void dispatch(client *c)
{
    if (pipelined) {
        /* The connection with the fewest statements in flight. */
        int best = 0;
        for (int i = 1; i < ndb; i++)
            if (db[i].count < db[best].count)
                best = i;
        if (db[best].count < MAX_INFLIGHT) {
            start_statement(best, c);
            return;
        }
    } else {
        for (int i = 0; i < ndb; i++)
            if (!db[i].serving) {
                start_statement(i, c);
                return;
            }
    }
    c->next_queued = NULL;
    if (queue_tail)
        queue_tail->next_queued = c;
    else
        queue_head = c;
    queue_tail = c;
}

/* Connection @p i has room: the oldest queued request, if any, goes out. */
static void start_queued(int i)
{
    if (!queue_head)
        return;
    client *next = queue_head;
    queue_head = next->next_queued;
    if (!queue_head)
        queue_tail = NULL;
    start_statement(i, next);
}

/* Pipeline mode: each request's results end with a NULL, then its sync's
 * PGRES_PIPELINE_SYNC, which answers the oldest client in flight. */
static void on_db_pipelined(int i)
{
    dbconn *d = &db[i];
    if (!PQconsumeInput(d->conn))
        die("read", PQerrorMessage(d->conn));
    while (d->count > 0 && !PQisBusy(d->conn)) {
        PGresult *r = PQgetResult(d->conn);
        if (!r)
            continue; /* the end of one statement's results */
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_FATAL_ERROR)
            die("statement", PQresultErrorMessage(r));
        if (st == PGRES_TUPLES_OK && PQntuples(r) == 1)
            snprintf(d->who, sizeof d->who, "%s", PQgetvalue(r, 0, 1));
        PQclear(r);
        if (st != PGRES_PIPELINE_SYNC)
            continue;
        client *c = d->inflight[d->first];
        d->first = (d->first + 1) % MAX_INFLIGHT;
        d->count--;
        if (c->fd >= 0)
            answer(c, d->who[0] ? d->who : "nobody");
        d->who[0] = '\0';
        finish(c);
        start_queued(i);
    }
}

static void on_db(int i)
{
    if (pipelined) {
        on_db_pipelined(i);
        return;
    }
    PGconn *conn = db[i].conn;
    if (!PQconsumeInput(conn))
        die("read", PQerrorMessage(conn));
    if (PQisBusy(conn))
        return;
    client *c = db[i].serving;
    if (!c)
        die("read", "the database spoke on an idle connection (shut down?)");
    PGresult *r;
    char who[64] = "nobody";
    while ((r = PQgetResult(conn))) {
        if (PQresultStatus(r) == PGRES_FATAL_ERROR)
            die("statement", PQresultErrorMessage(r));
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
            snprintf(who, sizeof who, "%s", PQgetvalue(r, 0, 1));
        PQclear(r);
    }
    db[i].serving = NULL;
    if (c->fd >= 0)
        answer(c, who);
    finish(c);
    start_queued(i);
}

static void on_client(client *c)
{
    if (c->fd < 0)
        return; /* closed earlier in this batch */
    ssize_t n = recv(c->fd, c->buf + c->len, BUF - c->len, 0);
    if (n <= 0 || (size_t)n == BUF - c->len) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        drop(c);
        return;
    }
    c->len += (size_t)n;
    if (!c->waiting && memmem(c->buf, c->len, "\r\n\r\n", 4)) {
        c->waiting = true;
        dispatch(c);
    }
}

int main(int argc, char **argv)
{
    const char *conninfo = argc > 1 ? argv[1] : NULL;
    int port = 0;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--case")) {
            from_cookie = !strcmp(argv[i + 1], "returning");
            sql = from_cookie                    ? returning_sql
                  : !strcmp(argv[i + 1], "new")  ? new_sql
                  : !strcmp(argv[i + 1], "ping") ? ping_sql
                                                 : NULL;
        } else if (!strcmp(argv[i], "--conns")) {
            ndb = atoi(argv[i + 1]);
        } else if (!strcmp(argv[i], "--port")) {
            port = atoi(argv[i + 1]);
        }
    }
    for (int i = 2; i < argc; i++)
        if (!strcmp(argv[i], "--pipeline"))
            pipelined = true;
    if (!conninfo || !sql || ndb < 1 || ndb > MAX_DB) {
        fprintf(stderr, "usage: http_ceiling CONNINFO --case "
                        "returning|new|ping [--conns 1..64] [--port P] "
                        "[--pipeline]\n");
        return 2;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    ep = epoll_create1(0);
    for (int i = 0; i < ndb; i++) {
        db[i].conn = PQconnectdb(conninfo);
        if (PQstatus(db[i].conn) != CONNECTION_OK)
            die("connect", PQerrorMessage(db[i].conn));
        PGresult *r = PQprepare(db[i].conn, "s", sql, 1, NULL);
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            die("prepare", PQresultErrorMessage(r));
        PQclear(r);
        PQsetnonblocking(db[i].conn, 1);
        if (pipelined && !PQenterPipelineMode(db[i].conn))
            die("pipeline", PQerrorMessage(db[i].conn));
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = db_tag(i)};
        epoll_ctl(ep, EPOLL_CTL_ADD, PQsocket(db[i].conn), &ev);
    }
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    if (bind(ls, (struct sockaddr *)&sa, sizeof sa) || listen(ls, 512) ||
        getsockname(ls, (struct sockaddr *)&sa, &sl))
        die("listen", strerror(errno));
    struct epoll_event lev = {.events = EPOLLIN, .data.u64 = 0};
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &lev);
    printf("listening on http://127.0.0.1:%d/\n", ntohs(sa.sin_port));
    fflush(stdout);

    struct epoll_event evs[64];
    while (!stop) {
        int n = epoll_wait(ep, evs, 64, 500);
        for (int k = 0; k < n; k++) {
            uint64_t tag = evs[k].data.u64;
            if (tag == 0) {
                int fd;
                while ((fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    client *c = calloc(1, sizeof *c);
                    if (!c) {
                        close(fd);
                        continue;
                    }
                    c->fd = fd;
                    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
                }
            } else if (tag & 1) {
                on_db((int)(tag >> 1));
            } else {
                on_client(evs[k].data.ptr);
            }
        }
        while (buried > 0)
            free(graveyard[--buried]);
    }
    for (int i = 0; i < ndb; i++)
        PQfinish(db[i].conn);
    return 0;
}

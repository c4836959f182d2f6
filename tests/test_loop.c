/* Requests on an event loop (guestuser/loop.h) through the evhttp adapter
 * with its handlers tried on the loop, and the resolver driven by hand as
 * an adapter of one's own would: a returning visitor's page runs once, on
 * the loop's thread, with its session looked up in the pipeline; a new
 * visitor's guest is made through the same pipeline while the request is
 * parked, within the limits with 32 at once, and falls back to a worker
 * when that connection dies; 32 clients at once each get their own
 * user back; a hung database answers 503 within db_timeout_ms and the
 * next requests recover; the database's connections killed fall back to
 * the blocking lookup. Over real loopback sockets. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <guestuser/adapters/evhttp.h>
#include <libpq-fe.h>

#include "testlib.h"

#define SCHEMA "t_loop"
#define TIMEOUT_MS 60000

/* ---- the application: who ran where ---- */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_t outer_thread[4], inner_thread[4];
static int outer_n, inner_n;
/* Pages run off the loop's thread, once that thread is known. */
static pthread_t known_loop;
static bool loop_known;
static int inner_off_loop;

static void reset_log(void)
{
    pthread_mutex_lock(&mu);
    outer_n = inner_n = 0;
    pthread_mutex_unlock(&mu);
}

static void whoami(guest_req *req, void *userdata)
{
    (void)userdata;
    pthread_mutex_lock(&mu);
    if (inner_n < 4)
        inner_thread[inner_n] = pthread_self();
    inner_n++;
    if (loop_known && !pthread_equal(pthread_self(), known_loop))
        inner_off_loop++;
    pthread_mutex_unlock(&mu);
    const guest_user *u = NULL;
    if (guest_req_user(req, &u, NULL) != GUEST_OK) {
        guest_res_send(req, 503, "text/plain", "unavailable\n");
        return;
    }
    char body[64];
    snprintf(body, sizeof body, "id=%lld\n", (long long)guest_user_id(u));
    guest_res_send(req, 200, "text/plain", body);
}

static void app(guest_req *req, void *userdata)
{
    pthread_mutex_lock(&mu);
    if (outer_n < 4)
        outer_thread[outer_n] = pthread_self();
    outer_n++;
    pthread_mutex_unlock(&mu);
    guest_status st = guest_allow(req, whoami, userdata);
    (void)st;
}

/* ---- a server ---- */

typedef struct server {
    guest_ctx *ctx;
    guest_evhttp *ev;
    int port;
} server;

static server up_with(const guest_config *c)
{
    server s = {.ctx = tl_ctx_new(c)};
    ck_assert_int_eq(guest_evhttp_new(s.ctx, app, NULL, &s.ev), GUEST_OK);
    ck_assert_int_eq(guest_evhttp_set_loop_handlers(s.ev, true), GUEST_OK);
    uint16_t port = 0;
    ck_assert_int_eq(guest_evhttp_start(s.ev, "127.0.0.1", 0, &port), GUEST_OK);
    /* started: the setting is fixed now */
    ck_assert_int_eq(guest_evhttp_set_loop_handlers(s.ev, false),
                     GUEST_ERR_INVALID);
    s.port = port;
    return s;
}

static server up(void)
{
    guest_config c;
    tl_config(&c, SCHEMA);
    c.password_iterations = 1000;
    return up_with(&c);
}

static void down(server *s)
{
    guest_evhttp_free(s->ev);
    guest_ctx_free(s->ctx);
}

/* GET / with @p cookie (NULL: none): the status, the body's id into *id
 * (0: none), and the session cookie it set into @p set ("" when none;
 * @p set may be NULL). */
static int request(int port, const char *cookie, long long *id, char set[128])
{
    char request[512];
    snprintf(request, sizeof request,
             "GET / HTTP/1.1\r\nHost: localhost\r\n%s%s%sConnection: "
             "close\r\n\r\n",
             cookie ? "Cookie: " : "", cookie ? cookie : "",
             cookie ? "\r\n" : "");
    char *r = tl_http_raw(port, request, TIMEOUT_MS);
    ck_assert_ptr_nonnull(r);
    int status = tl_raw_status(r);
    const char *b = tl_raw_body(r);
    if (id)
        *id = b && !strncmp(b, "id=", 3) ? atoll(b + 3) : 0;
    if (set) {
        char *h = tl_raw_header(r, "Set-Cookie");
        set[0] = '\0';
        if (h)
            snprintf(set, 128, "%.*s", (int)strcspn(h, ";"), h);
        free(h);
    }
    free(r);
    return status;
}

static int get(int port, const char *cookie, long long *id)
{
    return request(port, cookie, id, NULL);
}

/* The loop's thread: a new visitor's page is tried there first. */
static pthread_t loop_thread(int port)
{
    reset_log();
    ck_assert_int_eq(get(port, NULL, NULL), 200);
    ck_assert_int_eq(outer_n, 2);
    return outer_thread[0];
}

/* Requests in a row served on the loop before the helpers below return,
 * so that the loop's connection is up and stays up. */
#define IN_A_ROW 4

/* Requests with @p cookie until they are looked up and served on the loop
 * (the first ones start the loop's connections and go to a worker). */
static void until_on_loop(int port, const char *cookie, int64_t id,
                          pthread_t loop)
{
    long long until = tl_now_ms() + TIMEOUT_MS, got;
    for (int row = 0; row < IN_A_ROW;) {
        ck_assert_int_lt(tl_now_ms(), until);
        reset_log();
        ck_assert_int_eq(get(port, cookie, &got), 200);
        ck_assert_int_eq(got, id);
        row = pthread_equal(outer_thread[0], loop) ? row + 1 : 0;
    }
}

/* ---- the evhttp adapter on the loop ---- */

START_TEST(returning_visitor_runs_once_on_the_loop)
{
    server s = up();
    char cookie[128];
    int64_t id = tl_new_guest(s.ctx, cookie, sizeof cookie);

    /* The first new visitor: tried on the loop, deferred by the guard
     * (making a guest is a statement, and the loop's connection is only
     * being made), run again on a worker. */
    reset_log();
    long long got = -1;
    ck_assert_int_eq(get(s.port, NULL, &got), 200);
    ck_assert_int_gt(got, 0);
    ck_assert_int_eq(outer_n, 2);
    ck_assert_int_eq(inner_n, 1);
    pthread_t loop = outer_thread[0];
    ck_assert(!pthread_equal(outer_thread[1], loop));
    ck_assert(pthread_equal(inner_thread[0], outer_thread[1]));

    /* A returning visitor, no session cache: the lookup goes out on the
     * loop's pipelined connection, then the page runs once, there. Until
     * that connection is up (the first request starts it), a worker looks
     * the session up. */
    until_on_loop(s.port, cookie, id, loop);
    for (int i = 0; i < 5; i++) {
        reset_log();
        ck_assert_int_eq(get(s.port, cookie, &got), 200);
        ck_assert_int_eq(got, id);
        ck_assert_int_eq(outer_n, 1);
        ck_assert_int_eq(inner_n, 1);
        ck_assert(pthread_equal(outer_thread[0], loop));
        ck_assert(pthread_equal(inner_thread[0], loop));
    }

    /* A cookie of no session: anonymous on the loop, so a guest is made,
     * its page run twice on the loop (parked between). */
    reset_log();
    ck_assert_int_eq(
        get(s.port, "sessionid=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            &got),
        200);
    ck_assert_int_gt(got, 0);
    ck_assert_int_ne(got, id);
    ck_assert_int_eq(outer_n, 2);
    down(&s);
}
END_TEST

#define CLIENTS 32
#define ROUNDS 10

typedef struct visitor {
    int port;
    char cookie[128];
    long long id;
    int ok;
} visitor;

static pthread_barrier_t start_line;

static void *visit(void *arg)
{
    visitor *v = arg;
    pthread_barrier_wait(&start_line);
    for (int i = 0; i < ROUNDS; i++) {
        long long got = 0;
        if (get(v->port, v->cookie, &got) == 200 && got == v->id)
            v->ok++;
    }
    return NULL;
}

/* The answers of a pipeline come back in order: each must reach the
 * request that asked, with 32 clients at the same instant. */
START_TEST(thirty_two_clients_each_get_their_own_user)
{
    server s = up();
    visitor v[CLIENTS];
    pthread_t t[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        v[i] = (visitor){.port = s.port};
        v[i].id = tl_new_guest(s.ctx, v[i].cookie, sizeof v[i].cookie);
    }
    /* the pipeline connected before the crowd comes */
    ck_assert_int_eq(get(s.port, v[0].cookie, NULL), 200);
    pthread_barrier_init(&start_line, NULL, CLIENTS);
    for (int i = 0; i < CLIENTS; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, visit, &v[i]), 0);
    for (int i = 0; i < CLIENTS; i++) {
        pthread_join(t[i], NULL);
        ck_assert_int_eq(v[i].ok, ROUNDS);
    }
    pthread_barrier_destroy(&start_line);
    down(&s);
}
END_TEST

/* A connection of the test's own that holds the sessions table locked:
 * every lookup waits, as on a hung database. */
static PGconn *lock_sessions(void)
{
    PGconn *c = PQconnectdb(tl_conninfo());
    ck_assert_int_eq(PQstatus(c), CONNECTION_OK);
    PGresult *r = PQexec(c, "BEGIN; LOCK TABLE " SCHEMA
                            ".sessions IN ACCESS EXCLUSIVE MODE");
    ck_assert_int_eq(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    return c;
}

static void unlock_sessions(PGconn *c)
{
    PQclear(PQexec(c, "ROLLBACK"));
    PQfinish(c);
}

static void short_timeout(guest_config *c)
{
    tl_config(c, SCHEMA);
    c->password_iterations = 1000;
    c->db_timeout_ms = 1500;
}

START_TEST(hung_database_answers_503_then_recovers)
{
    guest_config c;
    short_timeout(&c);
    server s = up_with(&c);
    char cookie[128];
    int64_t id = tl_new_guest(s.ctx, cookie, sizeof cookie);
    long long got;
    ck_assert_int_eq(get(s.port, cookie, &got), 200);
    ck_assert_int_eq(get(s.port, cookie, &got), 200);

    PGconn *lock = lock_sessions();
    long long t0 = tl_now_ms();
    ck_assert_int_eq(get(s.port, cookie, NULL), 503);
    /* answered once db_timeout_ms passed, not after a second wait on a
     * worker: bounded generously for a loaded machine */
    ck_assert_int_lt(tl_now_ms() - t0, TIMEOUT_MS);
    unlock_sessions(lock);

    /* Recovered: the pipeline reconnects, meanwhile a worker looks up. On
     * a machine loaded by ctest -j4 a lookup just after the lock may still
     * pass this test's short db_timeout_ms (1.5 s) and answer 503, as
     * documented: so the first 200 within a generous bound, then every
     * request answered, each with its own user. */
    long long until = tl_now_ms() + TIMEOUT_MS;
    while (get(s.port, cookie, &got) != 200)
        ck_assert_int_lt(tl_now_ms(), until);
    ck_assert_int_eq(got, id);
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(get(s.port, cookie, &got), 200);
        ck_assert_int_eq(got, id);
    }
    down(&s);
}
END_TEST

/* The adapter freed while a lookup hangs in its pipeline: the request is
 * dropped with its connection, nothing is answered or leaked. */
START_TEST(freed_with_a_lookup_in_flight)
{
    server s = up();
    char cookie[128];
    int64_t id = tl_new_guest(s.ctx, cookie, sizeof cookie);
    until_on_loop(s.port, cookie, id, loop_thread(s.port));
    PGconn *lock = lock_sessions();
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)s.port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    char request[512];
    int n = snprintf(request, sizeof request,
                     "GET / HTTP/1.1\r\nHost: localhost\r\nCookie: %s\r\n"
                     "Connection: close\r\n\r\n",
                     cookie);
    ck_assert_int_eq(send(fd, request, (size_t)n, 0), n);
    /* until the lookup is waiting on the lock */
    long long until = tl_now_ms() + TIMEOUT_MS;
    while (tl_scalar("SELECT count(*) FROM pg_stat_activity WHERE "
                     "wait_event_type = 'Lock' AND query LIKE '%\"" SCHEMA
                     "\"%'") == 0)
        ck_assert_int_lt(tl_now_ms(), until);
    down(&s);
    unlock_sessions(lock);
    char buf[64];
    ck_assert_int_le(recv(fd, buf, sizeof buf, 0), 0); /* closed, unanswered */
    close(fd);
}
END_TEST

/* The pid of this suite's loop connection (its statement names the
 * schema); 0 when there is none. Not behind PgBouncer, whose server
 * connections are its own. */
static long long loop_backend(void)
{
    return tl_scalar("SELECT coalesce(max(pid), 0) FROM pg_stat_activity "
                     "WHERE application_name = 'libguestuser-loop' AND "
                     "query LIKE '%\"" SCHEMA "\"%'");
}

static bool behind_pooler(void)
{
    const char *pooler = getenv("GUESTUSER_TEST_DB_POOLER");
    return pooler && !strcmp(pooler, "transaction");
}

/* A lookup that fails as a statement (its table gone for a moment) is a
 * 503 for its request only: the pipeline's connection stays, and the next
 * lookups go through it at once. */
START_TEST(failed_statement_fails_only_its_request)
{
    server s = up();
    char cookie[128];
    int64_t id = tl_new_guest(s.ctx, cookie, sizeof cookie);
    pthread_t loop = loop_thread(s.port);
    until_on_loop(s.port, cookie, id, loop);
    long long pid = behind_pooler() ? 0 : loop_backend();
    if (!behind_pooler())
        ck_assert_int_gt(pid, 0);

    tl_exec("ALTER TABLE " SCHEMA ".sessions RENAME TO sessions_away");
    reset_log();
    ck_assert_int_eq(get(s.port, cookie, NULL), 503);
    /* answered on the loop: the guard's 503, no worker involved */
    ck_assert_int_eq(outer_n, 1);
    ck_assert(pthread_equal(outer_thread[0], loop));
    tl_exec("ALTER TABLE " SCHEMA ".sessions_away RENAME TO sessions");

    reset_log();
    long long got;
    ck_assert_int_eq(get(s.port, cookie, &got), 200);
    ck_assert_int_eq(got, id);
    ck_assert(pthread_equal(outer_thread[0], loop));
    if (!behind_pooler())
        ck_assert_int_eq(loop_backend(), pid);
    down(&s);
}
END_TEST

/* The database ends the pipeline's connection (as a failover or a
 * restart would): the request waiting on it is looked up again the
 * blocking way, and later ones go through a new connection. */
START_TEST(killed_connection_falls_back)
{
    /* Behind PgBouncer the server connections are the pooler's, under its
     * name: nothing of ours to pick out and end. */
    if (behind_pooler())
        return;
    server s = up();
    char cookie[128];
    int64_t id = tl_new_guest(s.ctx, cookie, sizeof cookie);
    long long got;
    pthread_t loop = loop_thread(s.port);
    for (int round = 0; round < 3; round++) {
        until_on_loop(s.port, cookie, id, loop);
        /* this suite's loop connection only: other suites share the
         * cluster */
        long long pid = loop_backend();
        ck_assert_int_gt(pid, 0);
        char sql[128];
        snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%lld)", pid);
        tl_exec(sql);
        for (int i = 0; i < 3; i++) {
            ck_assert_int_eq(get(s.port, cookie, &got), 200);
            ck_assert_int_eq(got, id);
        }
    }
    down(&s);
}
END_TEST

/* A cluster of this suite's own, stopped under the server and started
 * again: the loop's connection fails, every request is answered (503 from
 * the blocking lookup's timeout or refusal, never a hang), and once the
 * database is back the loop's connection comes back too. */
static const char *pg_dir = "loop-pg";

START_TEST(stopped_database_then_back)
{
    tl_pg("start", pg_dir, NULL);
    char conninfo[256];
    tl_pg_conninfo(pg_dir, conninfo, sizeof conninfo);
    guest_config c;
    tl_config(&c, SCHEMA);
    c.password_iterations = 1000;
    c.db_conninfo = conninfo;
    c.db_timeout_ms = 3000;
    server s = up_with(&c);
    char cookie[128];
    int64_t id = tl_new_guest(s.ctx, cookie, sizeof cookie);
    pthread_t loop = loop_thread(s.port);
    until_on_loop(s.port, cookie, id, loop);

    tl_pg("pause", pg_dir, NULL);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(get(s.port, cookie, NULL), 503);
    tl_pg("resume", pg_dir, NULL);
    long long until = tl_now_ms() + TIMEOUT_MS, got = 0;
    while (get(s.port, cookie, &got) != 200)
        ck_assert_int_lt(tl_now_ms(), until);
    ck_assert_int_eq(got, id);
    until_on_loop(s.port, cookie, id, loop);
    down(&s);
    tl_pg("stop", pg_dir, NULL);
}
END_TEST

/* ---- new visitors: the guest made through the loop's pipeline ---- */

/* GET / without a cookie; the cookie it set into @p cookie. */
static int visit_new(int port, long long *id, char cookie[128])
{
    return request(port, NULL, id, cookie);
}

/* New visitors until their pages run wholly on the loop: tried there,
 * parked while the guest was made, and run there again (the first ones
 * start the loop's connections and go to a worker). The last one's id. */
static long long until_made_on_loop(int port, pthread_t loop, char cookie[128])
{
    long long until = tl_now_ms() + TIMEOUT_MS, id = 0;
    for (int row = 0; row < IN_A_ROW;) {
        ck_assert_int_lt(tl_now_ms(), until);
        reset_log();
        ck_assert_int_eq(visit_new(port, &id, cookie), 200);
        ck_assert_int_gt(id, 0);
        ck_assert_str_ne(cookie, "");
        row =
            outer_n == 2 && pthread_equal(outer_thread[1], loop) ? row + 1 : 0;
    }
    ck_assert(pthread_equal(outer_thread[0], loop));
    ck_assert_int_eq(inner_n, 1);
    ck_assert(pthread_equal(inner_thread[0], loop));
    return id;
}

#define CROWD 32

/* A new visitor on a thread of its own; with @p crowd set, it waits for
 * the others at the start line. */
typedef struct newcomer {
    int port;
    bool crowd;
    int status;
    long long id;
    char cookie[128];
} newcomer;

static void *come_new(void *arg)
{
    newcomer *n = arg;
    if (n->crowd)
        pthread_barrier_wait(&start_line);
    n->status = visit_new(n->port, &n->id, n->cookie);
    return NULL;
}

/* 32 new visitors at the same instant, after the loop's connection is up
 * (a returning visitor's lookup brings it up without making a guest):
 * their answers in @p n, the guests in @p schema before them in *used,
 * and how many pages ran off the loop. */
static int crowd(server *s, const char *schema, long long *used,
                 newcomer n[CROWD])
{
    char cookie[128];
    int64_t id = tl_new_guest(s->ctx, cookie, sizeof cookie);
    pthread_t loop = loop_thread(s->port);
    until_on_loop(s->port, cookie, id, loop);
    *used = tl_scalar_in(schema, "SELECT count(*) FROM @.guests");
    pthread_mutex_lock(&mu);
    known_loop = loop;
    loop_known = true;
    inner_off_loop = 0;
    pthread_mutex_unlock(&mu);
    pthread_t t[CROWD];
    pthread_barrier_init(&start_line, NULL, CROWD);
    for (int i = 0; i < CROWD; i++) {
        n[i] = (newcomer){.port = s->port, .crowd = true};
        ck_assert_int_eq(pthread_create(&t[i], NULL, come_new, &n[i]), 0);
    }
    for (int i = 0; i < CROWD; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&start_line);
    pthread_mutex_lock(&mu);
    loop_known = false;
    int off = inner_off_loop;
    pthread_mutex_unlock(&mu);
    return off;
}

/* guest_rate_limit holds for 32 new visitors of one address at once, each
 * made through the loop's pipeline: the budget left is taken exactly, the
 * others get 429, and every page that ran, ran on the loop. */
START_TEST(crowd_of_new_visitors_within_the_rate_limit)
{
    tl_drop_schema(SCHEMA "_rl");
    guest_config c;
    tl_config(&c, SCHEMA "_rl");
    c.guest_rate_limit = 12;
    c.guest_rate_limit_action = GUEST_RATE_ACTION_429;
    server s = up_with(&c);
    newcomer n[CROWD];
    long long used;
    int off = crowd(&s, SCHEMA "_rl", &used, n);
    /* the warm-up's guests are this address's too */
    ck_assert_int_lt(used, 12);
    int made = 0, refused = 0;
    for (int i = 0; i < CROWD; i++) {
        if (n[i].status == 200 && n[i].id > 0 && n[i].cookie[0])
            made++;
        else if (n[i].status == 429 && !n[i].cookie[0])
            refused++;
    }
    ck_assert_int_eq(made, 12 - used);
    ck_assert_int_eq(refused, CROWD - made);
    ck_assert_int_eq(off, 0);
    ck_assert_int_eq(
        tl_scalar_in(SCHEMA "_rl", "SELECT count(*) FROM @.guests"), 12);
    down(&s);
    tl_drop_schema(SCHEMA "_rl");
}
END_TEST

/* max_guests holds the same way: past it the page is served to an
 * anonymous visitor, on the loop. */
START_TEST(crowd_of_new_visitors_within_max_guests)
{
    tl_drop_schema(SCHEMA "_cap");
    guest_config c;
    tl_config(&c, SCHEMA "_cap");
    c.max_guests = 10;
    c.max_guests_per_network = 10;
    server s = up_with(&c);
    newcomer n[CROWD];
    long long used;
    int off = crowd(&s, SCHEMA "_cap", &used, n);
    ck_assert_int_lt(used, 10);
    int made = 0, anonymous = 0;
    for (int i = 0; i < CROWD; i++) {
        ck_assert_int_eq(n[i].status, 200);
        if (n[i].id > 0 && n[i].cookie[0])
            made++;
        else if (n[i].id == 0 && !n[i].cookie[0])
            anonymous++;
    }
    /* Exact: the loop's creations run one after another on its one
     * connection (across connections the cap may be overshot by the
     * creations running at the same instant, docs/configuration.md). */
    ck_assert_int_eq(made, 10 - used);
    ck_assert_int_eq(anonymous, CROWD - made);
    ck_assert_int_eq(off, 0);
    ck_assert_int_eq(
        tl_scalar_in(SCHEMA "_cap", "SELECT count(*) FROM @.guests"),
        used + made);
    down(&s);
    tl_drop_schema(SCHEMA "_cap");
}
END_TEST

/* A connection of the test's own holding @p table locked, so that every
 * statement on it waits. */
static PGconn *lock_table(const char *table)
{
    PGconn *c = PQconnectdb(tl_conninfo());
    ck_assert_int_eq(PQstatus(c), CONNECTION_OK);
    char sql[128];
    snprintf(sql, sizeof sql, "BEGIN; LOCK TABLE %s IN ACCESS EXCLUSIVE MODE",
             table);
    PGresult *r = PQexec(c, sql);
    ck_assert_int_eq(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    return c;
}

/* The users table locked past db_timeout_ms: the new visitor parked on the
 * loop gets 503 as a blocking creation would, and once the lock goes new
 * visitors get their guests on the loop again. */
START_TEST(new_visitor_past_db_timeout_answers_503)
{
    guest_config c;
    short_timeout(&c);
    server s = up_with(&c);
    pthread_t loop = loop_thread(s.port);
    char cookie[128];
    (void)until_made_on_loop(s.port, loop, cookie);
    long long before = tl_scalar("SELECT count(*) FROM " SCHEMA ".guests");
    PGconn *lock = lock_table(SCHEMA ".users");
    long long id;
    reset_log();
    ck_assert_int_eq(visit_new(s.port, &id, cookie), 503);
    ck_assert_str_eq(cookie, "");
    ck_assert(pthread_equal(outer_thread[outer_n - 1], loop));
    /* The statement is cancelled (off the loop's thread): once it has
     * stopped waiting, the lock can go and nothing was made. Behind
     * PgBouncer the cancel may not reach it, and the insert then runs
     * when the lock goes: a guest nobody holds a cookie for, which
     * cleanup removes when it expires. */
    long long until = tl_now_ms() + TIMEOUT_MS;
    while (!behind_pooler() &&
           tl_scalar("SELECT count(*) FROM pg_stat_activity WHERE "
                     "wait_event_type = 'Lock' AND query LIKE '%\"" SCHEMA
                     "\"%'") > 0)
        ck_assert_int_lt(tl_now_ms(), until);
    unlock_sessions(lock);
    ck_assert_int_le(tl_scalar("SELECT count(*) FROM " SCHEMA ".guests"),
                     before + behind_pooler());
    ck_assert_int_ge(tl_scalar("SELECT count(*) FROM " SCHEMA ".guests"),
                     before);
    /* Recovered: the loop's connection comes back (meanwhile a worker
     * makes the guests), then guests are made on the loop again. */
    (void)until_made_on_loop(s.port, loop, cookie);
    down(&s);
}
END_TEST

/* The database ends the loop's connection while a new guest's statement
 * waits on it: the request is not lost but made again on a worker, and
 * only one guest exists for it. */
START_TEST(loop_connection_killed_mid_insert)
{
    if (behind_pooler())
        return; /* its server connections are the pooler's */
    server s = up();
    pthread_t loop = loop_thread(s.port);
    char cookie[128];
    (void)until_made_on_loop(s.port, loop, cookie);
    long long before = tl_scalar("SELECT count(*) FROM " SCHEMA ".guests");
    PGconn *lock = lock_table(SCHEMA ".users");
    newcomer w = {.port = s.port};
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, come_new, &w), 0);
    long long until = tl_now_ms() + TIMEOUT_MS, pid;
    while ((pid = tl_scalar("SELECT coalesce(max(pid), 0) FROM "
                            "pg_stat_activity WHERE application_name = "
                            "'libguestuser-loop' AND wait_event_type = "
                            "'Lock' AND query LIKE '%\"" SCHEMA "\"%'")) == 0)
        ck_assert_int_lt(tl_now_ms(), until);
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%lld)", pid);
    tl_exec(sql);
    unlock_sessions(lock);
    pthread_join(t, NULL);
    ck_assert_int_eq(w.status, 200);
    ck_assert_int_gt(w.id, 0);
    ck_assert_str_ne(w.cookie, "");
    ck_assert_int_eq(tl_scalar("SELECT count(*) FROM " SCHEMA ".guests"),
                     before + 1);
    long long got;
    ck_assert_int_eq(get(s.port, w.cookie, &got), 200);
    ck_assert_int_eq(got, w.id);
    down(&s);
}
END_TEST

/* Clashing names on the loop: each clash sends the next name, and the
 * numbered generator grows a digit once its one-digit names are taken;
 * every visitor gets a guest of their own, every page on the loop. */
START_TEST(name_clashes_on_the_loop)
{
    tl_drop_schema(SCHEMA "_nm");
    guest_config c;
    tl_config(&c, SCHEMA "_nm");
    c.name_generator = guest_name_numbered;
    c.name_prefix = "Lc";
    c.name_suffix_digits = 1;
    c.name_max_attempts = 5;
    server s = up_with(&c);
    pthread_t loop = loop_thread(s.port);
    char cookie[128];
    (void)until_made_on_loop(s.port, loop, cookie);
    pthread_mutex_lock(&mu);
    known_loop = loop;
    loop_known = true;
    inner_off_loop = 0;
    pthread_mutex_unlock(&mu);
    long long last = 0, id;
    for (int i = 0; i < 14; i++) {
        ck_assert_int_eq(visit_new(s.port, &id, cookie), 200);
        ck_assert_int_gt(id, last);
        ck_assert_str_ne(cookie, "");
        last = id;
    }
    pthread_mutex_lock(&mu);
    loop_known = false;
    ck_assert_int_eq(inner_off_loop, 0);
    pthread_mutex_unlock(&mu);
    ck_assert_int_ge(
        tl_scalar_in(SCHEMA "_nm", "SELECT count(*) FROM @.guests"), 15);
    ck_assert_int_gt(tl_scalar_in(SCHEMA "_nm",
                                  "SELECT count(*) FROM @.users WHERE "
                                  "length(username) = 4"),
                     0);
    down(&s);
    tl_drop_schema(SCHEMA "_nm");
}
END_TEST

START_TEST(new_visitor_made_on_the_loop)
{
    server s = up();
    pthread_t loop = loop_thread(s.port);
    long long before = tl_scalar("SELECT count(*) FROM " SCHEMA ".guests");
    char cookie[128];
    long long id = until_made_on_loop(s.port, loop, cookie);
    /* the guest is real, with its session, and its cookie works on the
     * loop */
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM " SCHEMA ".guests g JOIN " SCHEMA
             ".sessions x USING (user_id) WHERE g.user_id = %lld",
             id);
    ck_assert_int_eq(tl_scalar(sql), 1);
    long long got;
    reset_log();
    ck_assert_int_eq(get(s.port, cookie, &got), 200);
    ck_assert_int_eq(got, id);
    ck_assert(pthread_equal(inner_thread[0], loop));
    /* one guest per request that was answered: none made twice */
    long long made = tl_scalar("SELECT count(*) FROM " SCHEMA ".guests");
    ck_assert_int_gt(made, before);
    for (int i = 0; i < 5; i++) {
        reset_log();
        ck_assert_int_eq(visit_new(s.port, &got, cookie), 200);
        ck_assert_int_gt(got, id);
        ck_assert_int_eq(outer_n, 2);
        ck_assert(pthread_equal(outer_thread[1], loop));
        id = got;
    }
    ck_assert_int_eq(tl_scalar("SELECT count(*) FROM " SCHEMA ".guests"),
                     made + 5);
    /* HEAD makes no guest, on the loop either */
    char *r = tl_http_raw(s.port,
                          "HEAD / HTTP/1.1\r\nHost: localhost\r\n"
                          "Connection: close\r\n\r\n",
                          TIMEOUT_MS);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(tl_raw_status(r), 200);
    free(r);
    ck_assert_int_eq(tl_scalar("SELECT count(*) FROM " SCHEMA ".guests"),
                     made + 5);
    down(&s);
}
END_TEST

typedef struct done_log {
    int calls;
    guest_req *req;
} done_log;

static void on_done(guest_req *req, void *arg)
{
    done_log *d = arg;
    d->calls++;
    d->req = req;
}

/* Waits at most @p max_ms for what @p r watches, then lets it work. */
static void pump(guest_resolver *r, int max_ms)
{
    unsigned ev;
    int ms;
    int fd = guest_resolver_watch(r, &ev, &ms);
    if (fd >= 0) {
        struct pollfd p = {.fd = fd,
                           .events =
                               (short)(((ev & GUEST_IO_READ) ? POLLIN : 0) |
                                       ((ev & GUEST_IO_WRITE) ? POLLOUT : 0))};
        (void)poll(&p, 1, ms < 0 || ms > max_ms ? max_ms : ms);
    }
    guest_resolver_io(r);
}

/* Pumps @p r until @p d has been called. */
static void drive(guest_resolver *r, done_log *d)
{
    long long until = tl_now_ms() + TIMEOUT_MS;
    while (!d->calls && tl_now_ms() < until)
        pump(r, 1000);
    ck_assert_int_eq(d->calls, 1);
}

START_TEST(resolver_driven_by_hand)
{
    guest_config c;
    tl_config(&c, SCHEMA);
    c.password_iterations = 1000;
    guest_ctx *ctx = tl_ctx_new(&c);
    char cookie[128];
    int64_t id = tl_new_guest(ctx, cookie, sizeof cookie);
    guest_resolver *r = NULL;
    ck_assert_int_eq(guest_resolver_new(ctx, &r), GUEST_OK);

    /* The first lookup finds it unconnected: nothing to wait for, it
     * starts connecting. Once connected, lookups go out and come back. */
    long long until = tl_now_ms() + TIMEOUT_MS;
    for (;;) {
        tl_http h;
        tl_http_init(&h, "GET", "/");
        tl_http_add(&h, "Cookie", cookie);
        guest_req *req = NULL;
        ck_assert_int_eq(guest_req_new(ctx, tl_http_ops(), &h, &req), GUEST_OK);
        done_log d = {0};
        bool pending = guest_req_resolve(req, r, on_done, &d);
        if (pending) {
            /* a second call while in flight changes nothing */
            ck_assert(!guest_req_resolve(req, r, on_done, &d));
            drive(r, &d);
            ck_assert_ptr_eq(d.req, req);
            const guest_user *u = NULL;
            ck_assert_int_eq(guest_req_user(req, &u, NULL), GUEST_OK);
            ck_assert_ptr_nonnull(u);
            ck_assert_int_eq(guest_user_id(u), id);
            guest_req_free(req);
            tl_http_free(&h);
            break;
        }
        ck_assert_int_eq(d.calls, 0);
        guest_req_free(req);
        tl_http_free(&h);
        ck_assert_int_lt(tl_now_ms(), until);
        pump(r, 100); /* let the connection come up */
    }

    /* No cookie: known at once, no lookup. */
    tl_http h;
    tl_http_init(&h, "GET", "/");
    guest_req *req = NULL;
    ck_assert_int_eq(guest_req_new(ctx, tl_http_ops(), &h, &req), GUEST_OK);
    done_log d = {0};
    ck_assert(!guest_req_resolve(req, r, on_done, &d));
    const guest_user *u = (const guest_user *)1;
    ck_assert_int_eq(guest_req_user(req, &u, NULL), GUEST_OK);
    ck_assert_ptr_null(u);
    /* Not on a loop: nothing is deferred, a handler runs as it is. */
    ck_assert(!guest_req_defer(req));
    ck_assert(!guest_req_deferred(req));
    guest_req_free(req);
    tl_http_free(&h);

    /* A lookup in flight when the resolver goes: handed back unresolved,
     * and the guard would look it up itself. */
    tl_http_init(&h, "GET", "/");
    tl_http_add(&h, "Cookie", cookie);
    ck_assert_int_eq(guest_req_new(ctx, tl_http_ops(), &h, &req), GUEST_OK);
    d = (done_log){0};
    ck_assert(guest_req_resolve(req, r, on_done, &d));
    guest_resolver_free(r);
    ck_assert_int_eq(d.calls, 1);
    u = NULL;
    ck_assert_int_eq(guest_req_user(req, &u, NULL), GUEST_OK);
    ck_assert_int_eq(guest_user_id(u), id);
    guest_req_free(req);
    tl_http_free(&h);
    guest_ctx_free(ctx);
}
END_TEST

/* With the session cache on, a session read once is known without a
 * lookup: nothing to wait for. */
/* A page under GUEST_ALLOW, answering with its user's id. */
static void allow_page(guest_req *req, void *userdata)
{
    (void)guest_allow(req, whoami, userdata);
}

/* Parking by hand, as an adapter of one's own that allows it: a request
 * without a cookie (guest_req_resolve() returns false) is parked by the
 * guard, its function runs once the guest is made, and the page then
 * answers on the loop with the new session's cookie. Without parking
 * allowed the same request is deferred. */
START_TEST(parking_driven_by_hand)
{
    guest_config c;
    tl_config(&c, SCHEMA);
    guest_ctx *ctx = tl_ctx_new(&c);
    guest_resolver *r = NULL;
    ck_assert_int_eq(guest_resolver_new(ctx, &r), GUEST_OK);
    long long until = tl_now_ms() + TIMEOUT_MS;
    for (int allowed = 0; allowed < 2; allowed++) {
        guest_resolver_allow_parking(r, allowed);
        for (;;) {
            ck_assert_int_lt(tl_now_ms(), until);
            tl_http h;
            tl_http_init(&h, "GET", "/");
            guest_req *req = NULL;
            ck_assert_int_eq(guest_req_new(ctx, tl_http_ops(), &h, &req),
                             GUEST_OK);
            done_log d = {0};
            ck_assert(!guest_req_resolve(req, r, on_done, &d));
            bool answered = guest_req_try_on_loop(req, allow_page, NULL);
            ck_assert(!answered);
            bool parked = guest_req_parked(req);
            if (parked) {
                ck_assert(allowed);
                ck_assert(!guest_req_deferred(req)); /* off the loop now */
                drive(r, &d);
                ck_assert_ptr_eq(d.req, req);
                ck_assert(!guest_req_parked(req));
                ck_assert(guest_req_try_on_loop(req, allow_page, NULL));
            } else {
                allow_page(req, NULL); /* the worker's run */
            }
            guest_req_free(req);
            ck_assert_int_eq(h.status, 200);
            char cookie[128];
            ck_assert(tl_http_cookie(&h, "sessionid", cookie, sizeof cookie));
            tl_http_free(&h);
            if (parked || !allowed)
                break;
            pump(r, 100); /* the connection is still being made */
        }
    }
    guest_resolver_free(r);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(cached_session_needs_no_lookup)
{
    /* behind PgBouncer the cache needs a LISTEN connection of its own
     * (session_cache_listen_conninfo), so it stays off there */
    if (behind_pooler())
        return;
    guest_config c;
    tl_config(&c, SCHEMA);
    c.password_iterations = 1000;
    c.session_cache_ttl = 60;
    guest_ctx *ctx = tl_ctx_new(&c);
    char cookie[128];
    int64_t id = tl_new_guest(ctx, cookie, sizeof cookie);
    bool is_guest = false;
    ck_assert_int_eq(tl_whoami(ctx, cookie, &is_guest), id); /* cached */
    guest_resolver *r = NULL;
    ck_assert_int_eq(guest_resolver_new(ctx, &r), GUEST_OK);
    tl_http h;
    tl_http_init(&h, "GET", "/");
    tl_http_add(&h, "Cookie", cookie);
    guest_req *req = NULL;
    ck_assert_int_eq(guest_req_new(ctx, tl_http_ops(), &h, &req), GUEST_OK);
    done_log d = {0};
    ck_assert(!guest_req_resolve(req, r, on_done, &d));
    ck_assert_int_eq(d.calls, 0);
    const guest_user *u = NULL;
    ck_assert_int_eq(guest_req_user(req, &u, NULL), GUEST_OK);
    ck_assert_int_eq(guest_user_id(u), id);
    /* and the resolver never connected: no socket to watch */
    unsigned ev = 9;
    int ms = 9;
    ck_assert_int_eq(guest_resolver_watch(r, &ev, &ms), -1);
    ck_assert_uint_eq(ev, 0);
    guest_req_free(req);
    tl_http_free(&h);
    guest_resolver_free(r);
    guest_ctx_free(ctx);
}
END_TEST

static void deferring(guest_req *req, void *userdata)
{
    int *calls = userdata;
    ++*calls;
    if (guest_req_defer(req))
        return;
    guest_res_send(req, 200, "text/plain", "ok\n");
}

START_TEST(loop_calls_refuse_misuse)
{
    ck_assert_int_eq(guest_resolver_new(NULL, NULL), GUEST_ERR_INVALID);
    guest_resolver_free(NULL);
    guest_resolver_io(NULL);
    unsigned ev = 9;
    int ms = 9;
    ck_assert_int_eq(guest_resolver_watch(NULL, &ev, &ms), -1);
    ck_assert_uint_eq(ev, 0);
    ck_assert_int_eq(ms, -1);
    ck_assert(!guest_req_resolve(NULL, NULL, NULL, NULL));
    ck_assert(!guest_req_try_on_loop(NULL, deferring, NULL));
    ck_assert(!guest_req_defer(NULL));
    ck_assert(!guest_req_deferred(NULL));
    ck_assert(!guest_req_parked(NULL));
    guest_resolver_allow_parking(NULL, true);
    ck_assert_int_eq(guest_evhttp_set_loop_handlers(NULL, true),
                     GUEST_ERR_INVALID);

    /* A handler that defers itself on the loop, and answers on a worker. */
    guest_config c;
    tl_config(&c, SCHEMA);
    guest_ctx *ctx = tl_ctx_new(&c);
    tl_http h;
    tl_http_init(&h, "GET", "/");
    guest_req *req = NULL;
    ck_assert_int_eq(guest_req_new(ctx, tl_http_ops(), &h, &req), GUEST_OK);
    guest_resolver *r = NULL;
    ck_assert_int_eq(guest_resolver_new(ctx, &r), GUEST_OK);
    ck_assert(!guest_req_resolve(req, r, on_done, NULL)); /* no cookie */
    int calls = 0;
    ck_assert(!guest_req_try_on_loop(req, deferring, &calls));
    ck_assert_int_eq(calls, 1);
    deferring(req, &calls); /* the worker's run */
    ck_assert_int_eq(calls, 2);
    guest_req_free(req);
    guest_resolver_free(r);
    tl_http_free(&h);
    ck_assert_int_eq(h.status, 200);
    guest_ctx_free(ctx);
}
END_TEST

static void fresh_schema(void)
{
    tl_drop_schema(SCHEMA);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    Suite *s = suite_create("loop");
    TCase *tc = tcase_create("loop");
    tcase_set_timeout(tc, 300);
    tcase_add_unchecked_fixture(tc, fresh_schema, NULL);
    tcase_add_test(tc, returning_visitor_runs_once_on_the_loop);
    tcase_add_test(tc, thirty_two_clients_each_get_their_own_user);
    tcase_add_test(tc, new_visitor_made_on_the_loop);
    tcase_add_test(tc, crowd_of_new_visitors_within_the_rate_limit);
    tcase_add_test(tc, crowd_of_new_visitors_within_max_guests);
    tcase_add_test(tc, new_visitor_past_db_timeout_answers_503);
    tcase_add_test(tc, loop_connection_killed_mid_insert);
    tcase_add_test(tc, name_clashes_on_the_loop);
    tcase_add_test(tc, hung_database_answers_503_then_recovers);
    tcase_add_test(tc, failed_statement_fails_only_its_request);
    tcase_add_test(tc, freed_with_a_lookup_in_flight);
    tcase_add_test(tc, killed_connection_falls_back);
    tcase_add_test(tc, stopped_database_then_back);
    tcase_add_test(tc, resolver_driven_by_hand);
    tcase_add_test(tc, cached_session_needs_no_lookup);
    tcase_add_test(tc, parking_driven_by_hand);
    tcase_add_test(tc, loop_calls_refuse_misuse);
    suite_add_tcase(s, tc);
    const char *const dirs[] = {pg_dir, NULL};
    return tl_run_stopping(s, dirs);
}

/* Failover on real components: a primary and its streaming standby
 * (pg_basebackup), a server reaching them through one conninfo with two
 * hosts and target_session_attrs=read-write. The primary crashes and the
 * standby is promoted while a client keeps asking: every answer is 200 or
 * 503, service comes back without a restart, and no guest is left half
 * made. Uses clusters of its own, so other suites keep theirs. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <guestuser/adapters/mhd.h>

#include "routes.h"
#include "testlib.h"

static const char *primary_dir = "failover-primary";
static const char *standby_dir = "failover-standby";

/* Generous bounds for a loaded machine. */
#define WAIT_MS 90000

typedef struct client {
    int port;
    atomic_bool stop;
    atomic_int ok, unavailable, other, last_other;
    /* answers since the main thread reset it (after the promotion) */
    atomic_int ok_since;
} client;

static int get(int port, const char *path, const char *cookie, char **body)
{
    char req[512];
    snprintf(req, sizeof req,
             "GET %s HTTP/1.1\r\nHost: localhost\r\n%s%s%sConnection: "
             "close\r\n\r\n",
             path, cookie ? "Cookie: " : "", cookie ? cookie : "",
             cookie ? "\r\n" : "");
    char *res = tl_http_raw(port, req, 60000);
    if (!res)
        return 0;
    int st = tl_raw_status(res);
    if (body)
        *body = res;
    else
        free(res);
    return st;
}

/* New visitors, each then coming back once with the cookie it got. */
static void *run_client(void *arg)
{
    client *c = arg;
    while (!c->stop) {
        char *res = NULL;
        int st = get(c->port, "/allow_guest_user/", NULL, &res);
        char *cookie = res ? tl_raw_header(res, "Set-Cookie") : NULL;
        free(res);
        if (st == 200 && cookie) {
            cookie[strcspn(cookie, ";")] = '\0';
            st = get(c->port, "/guest_user_required/", cookie, NULL);
        }
        free(cookie);
        if (st == 200) {
            c->ok++;
            c->ok_since++;
        } else if (st == 503) {
            c->unavailable++;
        } else {
            c->other++;
            c->last_other = st;
        }
    }
    return NULL;
}

static void wait_for(const client *c, atomic_int *counter, int at_least,
                     const char *what)
{
    long long deadline = tl_now_ms() + WAIT_MS;
    while (*counter < at_least) {
        ck_assert_msg(tl_now_ms() < deadline,
                      "%s: not within %d s (so far %d ok, %d 503, %d other, "
                      "last other %d)",
                      what, WAIT_MS / 1000, (int)c->ok, (int)c->unavailable,
                      (int)c->other, (int)c->last_other);
        struct timespec ts = {0, 50000000};
        nanosleep(&ts, NULL);
    }
}

START_TEST(primary_crash_then_promotion)
{
    signal(SIGPIPE, SIG_IGN);
    tl_pg("start", primary_dir, NULL);
    tl_pg("standby", standby_dir, primary_dir);
    char conninfo[256];
    snprintf(conninfo, sizeof conninfo,
             "host=127.0.0.1,127.0.0.1 port=%d,%d user=postgres "
             "dbname=postgres target_session_attrs=read-write",
             tl_pg_port(primary_dir), tl_pg_port(standby_dir));

    guest_config c;
    guest_config_init(&c);
    c.db_conninfo = conninfo;
    c.db_schema = "t_failover";
    c.db_pool_size = 4;
    /* short enough that the switch shows as 503s, long enough for a
     * loaded machine */
    c.db_timeout_ms = 5000;
    guest_ctx *ctx = tl_ctx_new(&c);
    /* Replication is asynchronous: commits of the last moment before a
     * crash may never reach the standby. The schema the context just made
     * must, or nothing could work after the switch. */
    char standby[128];
    snprintf(standby, sizeof standby,
             "host=127.0.0.1 port=%d user=postgres dbname=postgres",
             tl_pg_port(standby_dir));
    long long until = tl_now_ms() + WAIT_MS;
    for (;;) {
        PGconn *sb = PQconnectdb(standby);
        PGresult *r = PQexec(sb, "SELECT count(*) FROM pg_tables WHERE "
                                 "schemaname = 't_failover' AND tablename = "
                                 "'sessions'");
        bool there = PQresultStatus(r) == PGRES_TUPLES_OK &&
                     !strcmp(PQgetvalue(r, 0, 0), "1");
        PQclear(r);
        PQfinish(sb);
        if (there)
            break;
        ck_assert_msg(tl_now_ms() < until, "the standby never got the schema");
        struct timespec ts = {0, 100000000};
        nanosleep(&ts, NULL);
    }
    guest_mhd *app;
    struct MHD_Daemon *d;
    ck_assert_int_eq(guest_mhd_new(ctx, tl_routes_handler, NULL, &app),
                     GUEST_OK);
    ck_assert_int_eq(guest_mhd_start(app, "127.0.0.1", 0, &d), GUEST_OK);
    client cl = {.port =
                     MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)->port};
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, run_client, &cl), 0);

    wait_for(&cl, &cl.ok, 20, "service on the primary");
    tl_pg("crash", primary_dir, NULL);
    /* the standby is read-only: no host takes writes until it is promoted */
    wait_for(&cl, &cl.unavailable, 3, "503s while no primary");
    tl_pg("promote", standby_dir, NULL);
    cl.ok_since = 0;
    wait_for(&cl, &cl.ok_since, 20, "service on the promoted standby");
    cl.stop = true;
    pthread_join(t, NULL);

    ck_assert_msg(cl.other == 0,
                  "%d answers were neither 200 nor 503 (last %d)",
                  (int)cl.other, (int)cl.last_other);
    fprintf(stderr,
            "failover: %d full visits, %d answered 503 during the switch\n",
            (int)cl.ok, (int)cl.unavailable);

    /* Guest creation is one statement: what the promoted server has is
     * whole. (Asynchronous replication may have lost the primary's last
     * commits; it cannot have split one.) */
    PGconn *db = PQconnectdb(conninfo);
    ck_assert_int_eq(PQstatus(db), CONNECTION_OK);
    PGresult *r = PQexec(
        db, "SELECT (SELECT count(*) FROM t_failover.users u WHERE NOT EXISTS"
            " (SELECT 1 FROM t_failover.guests g WHERE g.user_id = u.id)),"
            " (SELECT count(*) FROM t_failover.guests g WHERE NOT EXISTS"
            " (SELECT 1 FROM t_failover.sessions s WHERE s.user_id = "
            "g.user_id)),"
            " (SELECT count(*) FROM t_failover.guests)");
    ck_assert_int_eq(PQresultStatus(r), PGRES_TUPLES_OK);
    ck_assert_str_eq(PQgetvalue(r, 0, 0), "0");
    ck_assert_str_eq(PQgetvalue(r, 0, 1), "0");
    ck_assert_int_ge(atoi(PQgetvalue(r, 0, 2)), 20);
    PQclear(r);
    PQfinish(db);

    MHD_stop_daemon(d);
    guest_mhd_free(app);
    guest_ctx_free(ctx);
    tl_pg("stop", standby_dir, NULL);
    tl_pg("stop", primary_dir, NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("failover");
    TCase *tc = tcase_create("failover");
    tcase_set_timeout(tc, 400);
    tcase_add_test(tc, primary_crash_then_promotion);
    suite_add_tcase(s, tc);
    const char *const dirs[] = {standby_dir, primary_dir, NULL};
    return tl_run_stopping(s, dirs);
}

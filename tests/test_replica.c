/* db_read_conninfo on real components: a primary and its streaming standby
 * (clusters of this suite's own). Returning visitors are resolved on the
 * replica; a miss there (replication lag, a guest made a moment ago) goes
 * to the primary, so lag never logs anyone out; a replica that is down
 * costs nothing but the fallback. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testlib.h"

static const char *primary_dir = "replica-primary";
static const char *standby_dir = "replica-standby";

#define SCHEMA "t_replica"

static char primary[256], standby[256];

/* Waits (generously) until the standby has replayed everything the
 * primary has written so far. */
static void caught_up(void)
{
    char sql[160];
    PGconn *c = PQconnectdb(primary);
    /* The insert position, not the write position: the fixture commits
     * asynchronously, so the last commit may be inserted and not yet
     * written, and waiting for the write position would miss it. */
    PGresult *r = PQexec(c, "SELECT pg_current_wal_insert_lsn()");
    snprintf(sql, sizeof sql, "SELECT (pg_last_wal_replay_lsn() >= '%s')::int",
             PQgetvalue(r, 0, 0));
    PQclear(r);
    PQfinish(c);
    long long until = tl_now_ms() + 60000;
    while (tl_scalar_on(standby, sql) != 1) {
        ck_assert_msg(tl_now_ms() < until, "the standby did not catch up");
        struct timespec ts = {0, 50000000};
        nanosleep(&ts, NULL);
    }
}

static guest_ctx *ctx_with_replica(const char *read)
{
    guest_config c;
    guest_config_init(&c);
    c.db_conninfo = primary;
    c.db_read_conninfo = read;
    c.db_schema = SCHEMA;
    c.db_pool_size = 2;
    c.db_timeout_ms = 30000;
    return tl_ctx_new(&c);
}

static void setup(void)
{
    tl_pg("start", primary_dir, NULL);
    tl_pg("standby", standby_dir, primary_dir);
    tl_pg_conninfo(primary_dir, primary, sizeof primary);
    tl_pg_conninfo(standby_dir, standby, sizeof standby);
}

static void teardown(void)
{
    tl_pg("stop", standby_dir, NULL);
    tl_pg("stop", primary_dir, NULL);
}

START_TEST(lag_never_logs_anyone_out)
{
    guest_ctx *ctx = ctx_with_replica(standby);
    caught_up();
    char before[256];
    tl_new_guest(ctx, before, sizeof before);
    caught_up();

    /* Replay stopped: the replica now lags behind every write. */
    ck_assert_int_eq(tl_scalar_on(standby, "SELECT count(*) FROM (SELECT "
                                           "pg_wal_replay_pause()) p"),
                     1);
    /* Guests made from now on are unknown to the replica, and each is still
     * recognised at once: the primary answers the miss. */
    for (int i = 0; i < 50; i++) {
        char cookie[256];
        int64_t id = tl_new_guest(ctx, cookie, sizeof cookie);
        bool is_guest = false;
        ck_assert_int_eq(tl_whoami(ctx, cookie, &is_guest), id);
        ck_assert(is_guest);
    }
    /* A session the replica knows is resolved there: deleted on the
     * primary, it still resolves until the replica replays the delete
     * (the documented staleness), which shows who answered. */
    bool is_guest = false;
    int64_t id = tl_whoami(ctx, before, &is_guest);
    ck_assert_int_ne(id, 0);
    char sql[128];
    snprintf(sql, sizeof sql,
             "DELETE FROM " SCHEMA ".sessions WHERE user_id = %lld",
             (long long)id);
    PGconn *c = PQconnectdb(primary);
    PQclear(PQexec(c, sql));
    PQfinish(c);
    ck_assert_int_eq(tl_whoami(ctx, before, &is_guest), id);

    ck_assert_int_eq(tl_scalar_on(standby, "SELECT count(*) FROM (SELECT "
                                           "pg_wal_replay_resume()) p"),
                     1);
    caught_up();
    ck_assert_int_eq(tl_whoami(ctx, before, &is_guest), 0);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(replica_down_falls_back_to_the_primary)
{
    guest_ctx *ctx = ctx_with_replica(standby);
    char cookie[256];
    int64_t id = tl_new_guest(ctx, cookie, sizeof cookie);
    tl_pg("pause", standby_dir, NULL);
    bool is_guest = false;
    for (int i = 0; i < 20; i++)
        ck_assert_int_eq(tl_whoami(ctx, cookie, &is_guest), id);
    tl_pg("resume", standby_dir, NULL);
    guest_ctx_free(ctx);

    /* a replica that was never there does not stop a start either */
    ctx = ctx_with_replica("host=127.0.0.1 port=1 dbname=postgres");
    id = tl_new_guest(ctx, cookie, sizeof cookie);
    ck_assert_int_eq(tl_whoami(ctx, cookie, &is_guest), id);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(bad_replica_conninfo_is_a_config_error)
{
    guest_config c;
    guest_config_init(&c);
    c.db_conninfo = primary;
    c.db_read_conninfo = "this is = not a conninfo";
    c.db_schema = SCHEMA;
    guest_ctx *ctx = NULL;
    guest_error err = {0};
    ck_assert_int_eq(guest_ctx_new(&c, &ctx, &err), GUEST_ERR_CONFIG);
    ck_assert_ptr_null(ctx);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("replica");
    TCase *tc = tcase_create("replica");
    tcase_set_timeout(tc, 300);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, lag_never_logs_anyone_out);
    tcase_add_test(tc, replica_down_falls_back_to_the_primary);
    tcase_add_test(tc, bad_replica_conninfo_is_a_config_error);
    suite_add_tcase(s, tc);
    return tl_run(s);
}

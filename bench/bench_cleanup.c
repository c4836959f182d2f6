/* Prints how fast guest_delete_expired() deletes expired guests, next to a
 * single raw SQL DELETE of the same rows on the same server, and next to a
 * row-at-a-time loop like the reference's management command:
 *   bench_cleanup [CONNINFO] [--rows N] [--batch-size N] [--repeat N]
 *                 [--row-at-a-time N]
 * CONNINFO else env GUESTUSER_DB. Uses its own schemas (bench_cleanup,
 * bench_cleanup_app), dropped at start and at the end. bench/run.sh runs it
 * against a private, throwaway cluster. A benchmark prints figures; it
 * asserts nothing but that every method deleted every expired guest. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include <guestuser/guestuser.h>

#define SCHEMA "bench_cleanup"
#define APP "bench_cleanup_app"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *msg)
{
    fprintf(stderr, "bench_cleanup: %s: %s\n", what, msg);
    exit(2);
}

static PGresult *exec_ok(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType s = PQresultStatus(r);
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK)
        die(sql, PQerrorMessage(c));
    return r;
}

static void exec_sql(PGconn *c, const char *sql)
{
    PQclear(exec_ok(c, sql));
}

static void quiet(void *arg, const char *msg)
{
    (void)arg, (void)msg;
}

/* Empties the tables and creates @p rows expired guests, each with a live
 * session and one application row, among 10% fresh guests and 10%
 * registered users that must survive. Vacuumed and analyzed, so every
 * method starts from the same state. */
static void populate(PGconn *c, long rows)
{
    char sql[2048];
    exec_sql(c, "TRUNCATE " SCHEMA ".users CASCADE");
    snprintf(
        sql, sizeof sql,
        "WITH u AS (INSERT INTO " SCHEMA ".users (username)"
        " SELECT 'bench' || i FROM generate_series(1, %1$ld) i RETURNING id),"
        " g AS (INSERT INTO " SCHEMA ".guests (user_id, created_at)"
        " SELECT id, now() - interval '30 days' - id * interval '1 ms'"
        " FROM u RETURNING user_id),"
        " s AS (INSERT INTO " SCHEMA ".sessions (token_hash, user_id,"
        " expires_at) SELECT sha256(int8send(user_id)), user_id,"
        " now() + interval '1 day' FROM g RETURNING user_id)"
        " INSERT INTO " APP ".notes (user_id, body) SELECT user_id, 'note'"
        " FROM s;"
        "WITH u AS (INSERT INTO " SCHEMA ".users (username)"
        " SELECT 'fresh' || i FROM generate_series(1, %2$ld) i RETURNING id)"
        " INSERT INTO " SCHEMA ".guests (user_id) SELECT id FROM u;"
        "INSERT INTO " SCHEMA ".users (username, password)"
        " SELECT 'registered' || i, 'x' FROM generate_series(1, %2$ld) i;"
        "INSERT INTO " APP
        ".notes (user_id, body) SELECT id, 'keep' FROM " SCHEMA
        ".users WHERE username NOT LIKE 'bench%%'",
        rows, rows / 10);
    exec_sql(c, sql);
    exec_sql(c, "VACUUM ANALYZE " SCHEMA ".users, " SCHEMA ".guests, " SCHEMA
                ".sessions, " APP ".notes");
}

static long long scalar(PGconn *c, const char *sql)
{
    PGresult *r = exec_ok(c, sql);
    long long v = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

static void check_left(PGconn *c, long rows)
{
    long long expired = scalar(c, "SELECT count(*) FROM " SCHEMA ".guests"
                                  " WHERE created_at < now() - interval "
                                  "'14 days'");
    long long users = scalar(c, "SELECT count(*) FROM " SCHEMA ".users");
    long long notes = scalar(c, "SELECT count(*) FROM " APP ".notes");
    if (expired != 0 || users != 2 * (rows / 10) || notes != users)
        die("check", "a method left expired guests or deleted others");
}

static double run_library(guest_ctx *ctx, PGconn *c, long rows, unsigned batch,
                          uint64_t *batches)
{
    populate(c, rows);
    guest_cleanup_options o;
    guest_cleanup_options_init(&o);
    o.batch_size = batch;
    guest_cleanup_result r;
    guest_error err = {0};
    double t0 = now_s();
    guest_status st = guest_delete_expired(ctx, &o, &r, &err);
    double t = now_s() - t0;
    if (st != GUEST_OK)
        die("guest_delete_expired", err.message);
    if (r.users_deleted != (uint64_t)rows)
        die("guest_delete_expired", "deleted a different number of users");
    check_left(c, rows);
    *batches = r.batches;
    return t;
}

static double run_raw(PGconn *c, long rows)
{
    populate(c, rows);
    double t0 = now_s();
    PGresult *r = exec_ok(c, "DELETE FROM " SCHEMA ".users WHERE id IN"
                             " (SELECT user_id FROM " SCHEMA ".guests"
                             " WHERE created_at < now() - interval "
                             "'14 days')");
    double t = now_s() - t0;
    if (atol(PQcmdTuples(r)) != rows)
        die("raw DELETE", "deleted a different number of users");
    PQclear(r);
    check_left(c, rows);
    return t;
}

/* What the reference does: read the expired guests, then delete each user
 * in its own statement and transaction. (Django also reads the related rows
 * first, so its real cost is higher still.) */
static double run_row_at_a_time(PGconn *c, long rows, long sample)
{
    populate(c, rows);
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT user_id FROM " SCHEMA ".guests WHERE created_at < now() -"
             " interval '14 days' ORDER BY created_at LIMIT %ld",
             sample);
    double t0 = now_s();
    PGresult *ids = exec_ok(c, sql);
    for (int i = 0; i < PQntuples(ids); i++) {
        const char *v[1] = {PQgetvalue(ids, i, 0)};
        PGresult *r =
            PQexecParams(c, "DELETE FROM " SCHEMA ".users WHERE id = $1", 1,
                         NULL, v, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            die("row DELETE", PQerrorMessage(c));
        PQclear(r);
    }
    double t = now_s() - t0;
    PQclear(ids);
    return t;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static long arg_number(const char *name, const char *s, long min, long max)
{
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || errno || *end || v < min || v > max) {
        fprintf(stderr, "bench_cleanup: %s must be %ld..%ld\n", name, min, max);
        exit(1);
    }
    return v;
}

int main(int argc, char **argv)
{
    const char *conninfo = getenv("GUESTUSER_DB");
    long rows = 100000, batch = GUEST_CLEANUP_BATCH_DEFAULT, repeat = 3,
         sample = 10000;
    for (int i = 1; i < argc; i++) {
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--rows"))
            rows = arg_number("--rows", next, 10, 10000000), i++;
        else if (!strcmp(argv[i], "--batch-size"))
            batch =
                arg_number("--batch-size", next, 1, GUEST_CLEANUP_BATCH_MAX),
            i++;
        else if (!strcmp(argv[i], "--repeat"))
            repeat = arg_number("--repeat", next, 1, 15), i++;
        else if (!strcmp(argv[i], "--row-at-a-time"))
            sample = arg_number("--row-at-a-time", next, 0, 10000000), i++;
        else if (argv[i][0] == '-') {
            fprintf(stderr,
                    "usage: bench_cleanup [CONNINFO] [--rows N] "
                    "[--batch-size N] [--repeat N] [--row-at-a-time N]\n");
            return argv[i][1] == 'h' || !strcmp(argv[i], "--help") ? 0 : 1;
        } else
            conninfo = argv[i];
    }
    if (sample > rows)
        sample = rows;

    PGconn *c = PQconnectdb(conninfo ? conninfo : "");
    if (PQstatus(c) != CONNECTION_OK)
        die("connect", PQerrorMessage(c));
    PQsetNoticeProcessor(c, quiet, NULL);
    exec_sql(c, "DROP SCHEMA IF EXISTS " APP " CASCADE;"
                "DROP SCHEMA IF EXISTS " SCHEMA " CASCADE");

    guest_config cfg;
    guest_config_init(&cfg);
    cfg.db_conninfo = conninfo;
    cfg.db_schema = SCHEMA;
    cfg.db_pool_size = 1;
    guest_ctx *ctx = NULL;
    guest_error err = {0};
    if (guest_ctx_new(&cfg, &ctx, &err) != GUEST_OK)
        die("guest_ctx_new", err.message);
    exec_sql(c, "CREATE SCHEMA " APP ";"
                "CREATE TABLE " APP ".notes (id bigserial PRIMARY KEY,"
                " user_id bigint NOT NULL REFERENCES " SCHEMA ".users (id)"
                " ON DELETE CASCADE, body text);"
                "CREATE INDEX ON " APP ".notes (user_id)");

    printf("bench_cleanup: %ld expired guests, each with 1 session and 1 "
           "application row (ON DELETE CASCADE),\n"
           "  among %ld fresh guests and %ld registered users; PostgreSQL "
           "%s; median of %ld runs\n",
           rows, rows / 10, rows / 10, PQparameterStatus(c, "server_version"),
           repeat);
    fflush(stdout);

    double lib[15], raw[15];
    uint64_t batches = 0;
    for (long i = 0; i < repeat; i++) {
        /* Alternate the order so neither method always runs on a warmer
         * cache. */
        if (i % 2) {
            raw[i] = run_raw(c, rows);
            lib[i] = run_library(ctx, c, rows, (unsigned)batch, &batches);
        } else {
            lib[i] = run_library(ctx, c, rows, (unsigned)batch, &batches);
            raw[i] = run_raw(c, rows);
        }
        fprintf(stderr,
                "  run %ld: guest_delete_expired %.3f s, raw DELETE "
                "%.3f s\n",
                i + 1, lib[i], raw[i]);
    }
    double tl = median(lib, (int)repeat), tr = median(raw, (int)repeat);
    printf("  %-34s %8ld users %8.3f s %10.0f users/s  (%" PRIu64
           " batches of %ld)\n",
           "guest_delete_expired", rows, tl, (double)rows / tl, batches, batch);
    printf("  %-34s %8ld users %8.3f s %10.0f users/s  (one transaction)\n",
           "raw DELETE ... WHERE id IN (...)", rows, tr, (double)rows / tr);
    printf("  ratio: guest_delete_expired runs at %.2f x the raw DELETE's "
           "speed\n",
           tr / tl);
    if (sample > 0) {
        double t = run_row_at_a_time(c, rows, sample);
        printf("  %-34s %8ld users %8.3f s %10.0f users/s  (one DELETE per "
               "user)\n",
               "row at a time (the reference)", sample, t, (double)sample / t);
    }

    guest_ctx_free(ctx);
    exec_sql(c, "DROP SCHEMA IF EXISTS " APP " CASCADE;"
                "DROP SCHEMA IF EXISTS " SCHEMA " CASCADE");
    PQfinish(c);
    return 0;
}

/* guest_delete_expired, guest_stats_get and guest_guests_list against the
 * fixture cluster. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testlib.h"

#define SCHEMA "t_cleanup"
#define APP "t_cleanup_app"
/* An arbitrary fixed instant (2023-11-14T22:13:20Z) for explicit cutoffs. */
#define CUTOFF 1700000000

static void setup(void)
{
    tl_drop_schema(APP);
    tl_drop_schema(SCHEMA);
}

static guest_ctx *fresh_ctx_age(int64_t max_age)
{
    guest_config c;
    tl_config(&c, SCHEMA);
    if (max_age)
        c.max_age = max_age;
    return tl_ctx_new(&c);
}

static guest_ctx *fresh_ctx(void)
{
    return fresh_ctx_age(0);
}

/* Inserts one guest created at @p created_at (an SQL expression); returns
 * its id. */
static long long add_guest(const char *name, const char *created_at)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "WITH u AS (INSERT INTO " SCHEMA ".users (username) VALUES "
             "('%s') RETURNING id) INSERT INTO " SCHEMA
             ".guests (user_id, created_at) SELECT id, %s FROM u "
             "RETURNING user_id",
             name, created_at);
    return tl_scalar(sql);
}

/* A registered user (no guests row), joined long ago. */
static long long add_registered(const char *name)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "INSERT INTO " SCHEMA ".users (username, password, date_joined)"
             " VALUES ('%s', 'pbkdf2_sha256$1$x$y', now() - interval "
             "'400 days') RETURNING id",
             name);
    return tl_scalar(sql);
}

/* @p n guests named PREFIX1..PREFIXn, all created at @p created_at, each
 * with one live session. */
static void add_guests(int n, const char *prefix, const char *created_at)
{
    char sql[1024];
    snprintf(sql, sizeof sql,
             "WITH u AS (INSERT INTO " SCHEMA ".users (username)"
             " SELECT '%s' || i FROM generate_series(1, %d) i RETURNING id),"
             " g AS (INSERT INTO " SCHEMA ".guests (user_id, created_at)"
             " SELECT id, %s FROM u RETURNING user_id)"
             " INSERT INTO " SCHEMA ".sessions (token_hash, user_id,"
             " expires_at) SELECT sha256(('%s' || user_id)::bytea), user_id,"
             " now() + interval '1 day' FROM g",
             prefix, n, created_at, prefix);
    tl_exec(sql);
}

/* A session for @p user_id expiring at @p expires_at (SQL expression). */
static void add_session(long long user_id, const char *tag,
                        const char *expires_at)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "INSERT INTO " SCHEMA ".sessions (token_hash, user_id,"
             " expires_at) VALUES (sha256('%s'::bytea), %lld, %s)",
             tag, user_id, expires_at);
    tl_exec(sql);
}

static long long count(const char *what)
{
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", what);
    return tl_scalar(sql);
}

static bool user_exists(long long id)
{
    char sql[128];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM " SCHEMA ".users"
             " WHERE id = %lld",
             id);
    return tl_scalar(sql) == 1;
}

static guest_status run_cleanup(guest_ctx *ctx, const guest_cleanup_options *o,
                                guest_cleanup_result *r)
{
    guest_error err = {0};
    guest_status st = guest_delete_expired(ctx, o, r, &err);
    if (st != GUEST_OK)
        fprintf(stderr, "guest_delete_expired: %s: %s\n", guest_status_name(st),
                err.message);
    return st;
}

START_TEST(options_init_sets_documented_defaults)
{
    guest_cleanup_options o;
    memset(&o, 0xA5, sizeof o);
    guest_cleanup_options_init(&o);
    ck_assert_uint_eq(o.batch_size, 1000);
    ck_assert_uint_eq(o.batch_size, GUEST_CLEANUP_BATCH_DEFAULT);
    ck_assert_int_eq(o.max_age, 0);
    ck_assert_int_eq(o.cutoff, 0);
    ck_assert(!o.dry_run);
    ck_assert_ptr_null(o.progress);
    ck_assert_ptr_null(o.progress_userdata);
    guest_cleanup_options_init(NULL); /* no-op, no crash */
}
END_TEST

START_TEST(bad_arguments_are_rejected_without_deleting)
{
    guest_ctx *ctx = fresh_ctx();
    add_guest("old", "now() - interval '30 days'");
    guest_cleanup_result r;
    guest_error err = {0};
    memset(&r, 0xA5, sizeof r);
    ck_assert_int_eq(guest_delete_expired(NULL, NULL, &r, &err),
                     GUEST_ERR_INVALID);
    ck_assert_uint_eq(r.users_deleted, 0);
    ck_assert_uint_eq(r.batches, 0);
    ck_assert_ptr_nonnull(strstr(err.message, "ctx"));

    struct {
        unsigned batch;
        int64_t max_age, cutoff;
        const char *says;
    } bad[] = {
        {0, 0, 0, "batch_size"},
        {GUEST_CLEANUP_BATCH_MAX + 1, 0, 0, "batch_size"},
        {1000, -1, 0, "max_age"},
        {1000, 0, -5, "cutoff"},
        {1000, 0, GUEST_CLEANUP_CUTOFF_MAX + 1, "cutoff"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        guest_cleanup_options o;
        guest_cleanup_options_init(&o);
        o.batch_size = bad[i].batch;
        o.max_age = bad[i].max_age;
        o.cutoff = bad[i].cutoff;
        memset(&err, 0, sizeof err);
        ck_assert_int_eq(guest_delete_expired(ctx, &o, &r, &err),
                         GUEST_ERR_INVALID);
        ck_assert_int_eq(err.status, GUEST_ERR_INVALID);
        ck_assert_msg(strstr(err.message, bad[i].says), "case %zu: %s", i,
                      err.message);
    }
    /* NULL err and NULL result are allowed */
    guest_cleanup_options o;
    guest_cleanup_options_init(&o);
    o.batch_size = 0;
    ck_assert_int_eq(guest_delete_expired(ctx, &o, NULL, NULL),
                     GUEST_ERR_INVALID);
    ck_assert_int_eq(count(SCHEMA ".guests"), 1);

    guest_stats s;
    ck_assert_int_eq(guest_stats_get(NULL, 0, &s, NULL), GUEST_ERR_INVALID);
    ck_assert_int_eq(guest_stats_get(ctx, 0, NULL, NULL), GUEST_ERR_INVALID);
    ck_assert_int_eq(guest_stats_get(ctx, -1, &s, NULL), GUEST_ERR_INVALID);
    ck_assert_int_eq(guest_guests_list(ctx, false, 0, 10, NULL, NULL, NULL),
                     GUEST_ERR_INVALID);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(cutoff_boundary_is_strictly_before)
{
    guest_ctx *ctx = fresh_ctx();
    long long long_before =
        add_guest("long_before", "to_timestamp(1700000000) - interval '1 day'");
    long long just_before = add_guest(
        "just_before", "to_timestamp(1700000000) - interval '1 microsecond'");
    long long at = add_guest("at", "to_timestamp(1700000000)");
    long long just_after = add_guest(
        "just_after", "to_timestamp(1700000000) + interval '1 microsecond'");
    long long fresh = add_guest("fresh", "now()");

    guest_cleanup_options o;
    guest_cleanup_options_init(&o);
    o.cutoff = CUTOFF;
    guest_cleanup_result r;
    ck_assert_int_eq(run_cleanup(ctx, &o, &r), GUEST_OK);
    ck_assert_uint_eq(r.users_deleted, 2);
    ck_assert_uint_eq(r.batches, 1);
    ck_assert_int_eq(r.cutoff, CUTOFF);
    ck_assert(!user_exists(long_before));
    ck_assert(!user_exists(just_before));
    ck_assert(user_exists(at));
    ck_assert(user_exists(just_after));
    ck_assert(user_exists(fresh));

    /* a second run finds nothing more */
    ck_assert_int_eq(run_cleanup(ctx, &o, &r), GUEST_OK);
    ck_assert_uint_eq(r.users_deleted, 0);
    ck_assert_uint_eq(r.batches, 0);

    /* the same boundary one second later: 'at' moves to a microsecond
     * before the new cutoff, 'just_after' to exactly on it */
    tl_exec("UPDATE " SCHEMA ".guests g SET created_at = CASE u.username"
            " WHEN 'at' THEN to_timestamp(1700000001) - interval"
            " '1 microsecond' ELSE to_timestamp(1700000001) END FROM " SCHEMA
            ".users u WHERE u.id = g.user_id AND u.username IN ('at',"
            " 'just_after')");
    o.cutoff = CUTOFF + 1;
    ck_assert_int_eq(run_cleanup(ctx, &o, &r), GUEST_OK);
    ck_assert_uint_eq(r.users_deleted, 1);
    ck_assert(!user_exists(at));
    ck_assert(user_exists(just_after));
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(cutoffs_far_from_now_are_exact)
{
    /* Cutoffs before 1970 are not accepted (cutoff > 0), but ones far in
     * the future must still land on the exact second. */
    guest_ctx *ctx = fresh_ctx();
    long long a = add_guest("y9999a", "'9999-12-31 23:59:58.999999+00'");
    long long b = add_guest("y9999b", "'9999-12-31 23:59:59+00'");
    guest_cleanup_options o;
    guest_cleanup_options_init(&o);
    o.cutoff = GUEST_CLEANUP_CUTOFF_MAX;
    guest_cleanup_result r;
    ck_assert_int_eq(run_cleanup(ctx, &o, &r), GUEST_OK);
    ck_assert_uint_eq(r.users_deleted, 1);
    ck_assert_int_eq(r.cutoff, GUEST_CLEANUP_CUTOFF_MAX);
    ck_assert(!user_exists(a));
    ck_assert(user_exists(b));
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(max_age_comes_from_context_or_options)
{
    guest_ctx *ctx = fresh_ctx_age(3600);
    long long older = add_guest("older", "now() - interval '3700 seconds'");
    long long younger = add_guest("younger", "now() - interval '3500 seconds'");
    long long fresh = add_guest("fresh", "now()");

    guest_cleanup_result r;
    ck_assert_int_eq(run_cleanup(ctx, NULL, &r), GUEST_OK);
    ck_assert_uint_eq(r.users_deleted, 1);
    ck_assert(!user_exists(older));
    ck_assert(user_exists(younger));
    /* the cutoff is the database's now() - max_age */
    long long want = (long long)time(NULL) - 3600;
    ck_assert_int_le(r.cutoff, want + 60);
    ck_assert_int_ge(r.cutoff, want - 60);

    guest_cleanup_options o;
    guest_cleanup_options_init(&o);
    o.max_age = 1000;
    ck_assert_int_eq(run_cleanup(ctx, &o, &r), GUEST_OK);
    ck_assert_uint_eq(r.users_deleted, 1);
    ck_assert(!user_exists(younger));
    ck_assert(user_exists(fresh));

    /* an absurd max_age reaches back before any guest: nothing expires */
    o.max_age = INT64_MAX;
    ck_assert_int_eq(run_cleanup(ctx, &o, &r), GUEST_OK);
    ck_assert_uint_eq(r.users_deleted, 0);
    ck_assert(user_exists(fresh));

    /* an explicit cutoff wins over max_age */
    o.cutoff = GUEST_CLEANUP_CUTOFF_MAX;
    ck_assert_int_eq(run_cleanup(ctx, &o, &r), GUEST_OK);
    ck_assert_uint_eq(r.users_deleted, 1);
    ck_assert(!user_exists(fresh));
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(deletion_cascades_into_application_tables)
{
    guest_ctx *ctx = fresh_ctx();
    /* A guest created by the library itself, then aged. */
    tl_created made = {0};
    tl_http h;
    tl_http_init(&h, "GET", "/");
    tl_http_run(ctx, &h, tl_create_handler, &made);
    tl_http_free(&h);
    ck_assert_int_eq(made.st, GUEST_OK);
    long long expired = made.id;
    char sql[512];
    snprintf(sql, sizeof sql,
             "UPDATE " SCHEMA ".guests SET created_at = now() - interval "
             "'30 days' WHERE user_id = %lld",
             expired);
    tl_exec(sql);
    long long fresh = add_guest("fresh", "now()");

    tl_exec("CREATE SCHEMA " APP ";"
            "CREATE TABLE " APP ".notes (id serial PRIMARY KEY, user_id bigint"
            " NOT NULL REFERENCES " SCHEMA ".users (id) ON DELETE CASCADE,"
            " body text);"
            "CREATE TABLE " APP ".orders (id serial PRIMARY KEY, user_id"
            " bigint REFERENCES " SCHEMA ".users (id) ON DELETE SET NULL,"
            " total int)");
    snprintf(sql, sizeof sql,
             "INSERT INTO " APP ".notes (user_id, body) VALUES (%1$lld, 'a'),"
             " (%1$lld, 'b'), (%2$lld, 'c');"
             "INSERT INTO " APP ".orders (user_id, total) VALUES (%1$lld, 1),"
             " (%2$lld, 2)",
             expired, fresh);
    tl_exec(sql);
    ck_assert_int_eq(count(SCHEMA ".sessions"), 1);

    guest_cleanup_result r;
    ck_assert_int_eq(run_cleanup(ctx, NULL, &r), GUEST_OK);
    ck_assert_uint_eq(r.users_deleted, 1);
    /* the guest's own session went by cascade, not by the session pass */
    ck_assert_uint_eq(r.sessions_deleted, 0);
    ck_assert(!user_exists(expired));
    ck_assert(user_exists(fresh));
    ck_assert_int_eq(count(SCHEMA ".sessions"), 0);
    ck_assert_int_eq(count(SCHEMA ".guests"), 1);
    /* ON DELETE CASCADE: the notes went; the fresh guest's stayed */
    ck_assert_int_eq(count(APP ".notes"), 1);
    ck_assert_int_eq(tl_scalar("SELECT user_id FROM " APP ".notes"), fresh);
    /* ON DELETE SET NULL: the order stayed, without its user */
    ck_assert_int_eq(count(APP ".orders"), 2);
    ck_assert_int_eq(count(APP ".orders WHERE user_id IS NULL AND total = 1"),
                     1);
    ck_assert_int_eq(count(APP ".orders WHERE user_id IS NOT NULL"), 1);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(blocking_foreign_key_fails_whole_batch_with_advice)
{
    guest_ctx *ctx = fresh_ctx();
    add_guests(5, "old", "now() - interval '30 days'");
    tl_exec("CREATE SCHEMA " APP ";"
            "CREATE TABLE " APP ".audit (user_id bigint REFERENCES " SCHEMA
            ".users (id))");
    tl_exec("INSERT INTO " APP ".audit SELECT min(user_id) FROM " SCHEMA
            ".guests");

    guest_cleanup_result r;
    guest_error err = {0};
    ck_assert_int_eq(guest_delete_expired(ctx, NULL, &r, &err), GUEST_ERR_DB);
    ck_assert_int_eq(err.status, GUEST_ERR_DB);
    ck_assert_msg(strstr(err.message, "ON DELETE CASCADE") &&
                      strstr(err.message, "audit"),
                  "%s", err.message);
    ck_assert_uint_eq(r.users_deleted, 0);
    /* the batch rolled back whole: no half-deleted state */
    ck_assert_int_eq(count(SCHEMA ".guests"), 5);
    ck_assert_int_eq(count(SCHEMA ".users"), 5);
    ck_assert_int_eq(count(SCHEMA ".sessions"), 5);

    /* SET NULL on a NOT NULL column: also a clear refusal */
    tl_exec("DROP TABLE " APP ".audit;"
            "CREATE TABLE " APP
            ".strict (user_id bigint NOT NULL REFERENCES " SCHEMA
            ".users (id) ON DELETE SET NULL)");
    tl_exec("INSERT INTO " APP ".strict SELECT min(user_id) FROM " SCHEMA
            ".guests");
    memset(&err, 0, sizeof err);
    ck_assert_int_eq(guest_delete_expired(ctx, NULL, &r, &err), GUEST_ERR_DB);
    ck_assert_msg(strstr(err.message, "allows NULL"), "%s", err.message);
    ck_assert_int_eq(count(SCHEMA ".guests"), 5);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(converted_and_registered_users_are_untouched)
{
    guest_ctx *ctx = fresh_ctx();
    long long reg = add_registered("registered");
    add_session(reg, "reg-live", "now() + interval '1 day'");
    /* converted: was a guest long ago, the guests row went at conversion */
    long long conv = add_guest("converted", "now() - interval '300 days'");
    char sql[256];
    snprintf(sql, sizeof sql,
             "DELETE FROM " SCHEMA ".guests WHERE user_id = %lld", conv);
    tl_exec(sql);
    add_session(conv, "conv-live", "now() + interval '1 day'");
    long long expired = add_guest("expired", "now() - interval '300 days'");
    long long fresh = add_guest("fresh", "now() - interval '1 day'");

    guest_cleanup_options o;
    guest_cleanup_options_init(&o);
    o.cutoff = GUEST_CLEANUP_CUTOFF_MAX; /* even a cutoff far ahead */
    o.batch_size = 1;
    guest_cleanup_result r;
    ck_assert_int_eq(run_cleanup(ctx, &o, &r), GUEST_OK);
    ck_assert_uint_eq(r.users_deleted, 2);
    ck_assert_uint_eq(r.batches, 2);
    ck_assert(!user_exists(expired));
    ck_assert(!user_exists(fresh));
    ck_assert(user_exists(reg));
    ck_assert(user_exists(conv));
    ck_assert_int_eq(count(SCHEMA ".sessions"), 2);
    ck_assert_int_eq(count(SCHEMA ".users"), 2);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(expired_sessions_are_deleted)
{
    guest_ctx *ctx = fresh_ctx();
    long long reg = add_registered("registered");
    add_session(reg, "reg-old", "now() - interval '1 hour'");
    add_session(reg, "reg-live", "now() + interval '1 day'");
    long long fresh = add_guest("fresh", "now()");
    add_session(fresh, "fresh-old", "now() - interval '1 second'");
    add_session(fresh, "fresh-live", "now() + interval '1 hour'");

    guest_cleanup_result r;
    ck_assert_int_eq(run_cleanup(ctx, NULL, &r), GUEST_OK);
    ck_assert_uint_eq(r.users_deleted, 0);
    ck_assert_uint_eq(r.sessions_deleted, 2);
    ck_assert_uint_eq(r.batches, 1);
    ck_assert_int_eq(count(SCHEMA ".sessions"), 2);
    ck_assert_int_eq(count(SCHEMA ".sessions WHERE expires_at <= now()"), 0);
    ck_assert(user_exists(reg));
    ck_assert(user_exists(fresh));
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(dry_run_counts_and_deletes_nothing)
{
    guest_ctx *ctx = fresh_ctx();
    add_guests(7, "old", "now() - interval '30 days'");
    add_guests(2, "new", "now()");
    long long reg = add_registered("registered");
    add_session(reg, "reg-old-1", "now() - interval '1 hour'");
    add_session(reg, "reg-old-2", "now() - interval '2 hours'");
    /* an expired session of an expired guest goes with the guest: it is not
     * counted twice */
    tl_exec(
        "INSERT INTO " SCHEMA ".sessions (token_hash, user_id, expires_at)"
        " SELECT sha256('x'::bytea), min(user_id), now() - interval '1 hour'"
        " FROM " SCHEMA ".guests WHERE created_at < now() - interval "
        "'1 day'");
    long long users = count(SCHEMA ".users"),
              sessions = count(SCHEMA ".sessions");

    guest_cleanup_options o;
    guest_cleanup_options_init(&o);
    o.dry_run = true;
    guest_cleanup_result r;
    ck_assert_int_eq(run_cleanup(ctx, &o, &r), GUEST_OK);
    ck_assert_uint_eq(r.users_deleted, 7);
    ck_assert_uint_eq(r.sessions_deleted, 2);
    ck_assert_uint_eq(r.batches, 0);
    ck_assert_int_eq(count(SCHEMA ".users"), users);
    ck_assert_int_eq(count(SCHEMA ".sessions"), sessions);

    /* the real run then does exactly what the dry run said */
    o.dry_run = false;
    guest_cleanup_result real;
    ck_assert_int_eq(run_cleanup(ctx, &o, &real), GUEST_OK);
    ck_assert_uint_eq(real.users_deleted, r.users_deleted);
    ck_assert_uint_eq(real.sessions_deleted, r.sessions_deleted);
    ck_assert_int_eq(count(SCHEMA ".users"), users - 7);
    guest_ctx_free(ctx);
}
END_TEST

typedef struct progress_log {
    int calls;
    int stop_after; /* 0: never stop */
    guest_cleanup_result seen[16];
} progress_log;

static bool log_progress(const guest_cleanup_result *so_far, void *userdata)
{
    progress_log *log = userdata;
    if (log->calls < 16)
        log->seen[log->calls] = *so_far;
    log->calls++;
    return !(log->stop_after && log->calls >= log->stop_after);
}

START_TEST(progress_is_reported_after_each_batch)
{
    guest_ctx *ctx = fresh_ctx();
    add_guests(2500, "old", "now() - interval '30 days'");
    long long reg = add_registered("registered");
    tl_exec("INSERT INTO " SCHEMA ".sessions (token_hash, user_id, expires_at)"
            " SELECT sha256(('e' || i)::bytea), (SELECT id FROM " SCHEMA
            ".users WHERE username = 'registered'), now() - interval '1 day'"
            " FROM generate_series(1, 1500) i");
    (void)reg;

    progress_log log = {0};
    guest_cleanup_options o;
    guest_cleanup_options_init(&o);
    o.progress = log_progress;
    o.progress_userdata = &log;
    guest_cleanup_result r;
    ck_assert_int_eq(run_cleanup(ctx, &o, &r), GUEST_OK);
    ck_assert_int_eq(log.calls, 5);
    uint64_t users[] = {1000, 2000, 2500, 2500, 2500};
    uint64_t sessions[] = {0, 0, 0, 1000, 1500};
    for (int i = 0; i < 5; i++) {
        ck_assert_uint_eq(log.seen[i].batches, (uint64_t)i + 1);
        ck_assert_uint_eq(log.seen[i].users_deleted, users[i]);
        ck_assert_uint_eq(log.seen[i].sessions_deleted, sessions[i]);
        ck_assert_int_eq(log.seen[i].cutoff, r.cutoff);
    }
    ck_assert_uint_eq(r.users_deleted, 2500);
    ck_assert_uint_eq(r.sessions_deleted, 1500);
    ck_assert_uint_eq(r.batches, 5);
    ck_assert_int_eq(count(SCHEMA ".sessions"), 0);
    ck_assert_int_eq(count(SCHEMA ".users"), 1);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(progress_callback_stops_between_batches)
{
    guest_ctx *ctx = fresh_ctx();
    add_guests(2500, "old", "now() - interval '30 days'");
    progress_log log = {.stop_after = 1};
    guest_cleanup_options o;
    guest_cleanup_options_init(&o);
    o.progress = log_progress;
    o.progress_userdata = &log;
    guest_cleanup_result r;
    guest_error err = {0};
    ck_assert_int_eq(guest_delete_expired(ctx, &o, &r, &err),
                     GUEST_ERR_CANCELLED);
    ck_assert_int_eq(err.status, GUEST_ERR_CANCELLED);
    ck_assert_int_eq(log.calls, 1);
    ck_assert_uint_eq(r.users_deleted, 1000);
    ck_assert_uint_eq(r.batches, 1);
    ck_assert_int_eq(count(SCHEMA ".guests"), 1500);
    /* the oldest went first */
    ck_assert_int_eq(count(SCHEMA ".guests WHERE created_at < now() - "
                                  "interval '1 day'"),
                     1500);

    /* stopping in the session pass skips the rest of it */
    long long reg = add_registered("registered");
    (void)reg;
    tl_exec("INSERT INTO " SCHEMA ".sessions (token_hash, user_id, expires_at)"
            " SELECT sha256(('e' || i)::bytea), (SELECT id FROM " SCHEMA
            ".users WHERE username = 'registered'), now() - interval '1 day'"
            " FROM generate_series(1, 1500) i");
    log = (progress_log){.stop_after = 3};
    ck_assert_int_eq(guest_delete_expired(ctx, &o, &r, &err),
                     GUEST_ERR_CANCELLED);
    ck_assert_int_eq(log.calls, 3);
    ck_assert_uint_eq(r.users_deleted, 1500);
    ck_assert_uint_eq(r.sessions_deleted, 1000);
    ck_assert_int_eq(count(SCHEMA ".sessions WHERE expires_at <= now()"), 500);

    /* a later run finishes the job */
    ck_assert_int_eq(run_cleanup(ctx, NULL, &r), GUEST_OK);
    ck_assert_uint_eq(r.users_deleted, 0);
    ck_assert_uint_eq(r.sessions_deleted, 500);
    guest_ctx_free(ctx);
}
END_TEST

typedef struct racer {
    guest_ctx *ctx;
    pthread_barrier_t *start;
    unsigned batch_size;
    guest_status st;
    guest_cleanup_result r;
    guest_error err;
} racer;

static void *race(void *arg)
{
    racer *x = arg;
    guest_cleanup_options o;
    guest_cleanup_options_init(&o);
    o.batch_size = x->batch_size;
    pthread_barrier_wait(x->start);
    x->st = guest_delete_expired(x->ctx, &o, &x->r, &x->err);
    return NULL;
}

/* Two cleanups at once over 20,000 expired guests, each with a session and
 * an application row: every guest is deleted and counted exactly once. */
static void race_two(bool shared_ctx, unsigned batch_size)
{
    guest_ctx *a = fresh_ctx(), *b = shared_ctx ? a : fresh_ctx();
    add_guests(20000, "old", "now() - interval '30 days'");
    add_guests(100, "new", "now()");
    tl_exec("CREATE SCHEMA " APP ";"
            "CREATE TABLE " APP
            ".notes (user_id bigint NOT NULL REFERENCES " SCHEMA
            ".users (id) ON DELETE CASCADE);"
            "INSERT INTO " APP ".notes SELECT user_id FROM " SCHEMA ".guests");
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, 2);
    racer x[2] = {{.ctx = a, .start = &start, .batch_size = batch_size},
                  {.ctx = b, .start = &start, .batch_size = batch_size}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, race, &x[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&start);
    for (int i = 0; i < 2; i++)
        ck_assert_msg(x[i].st == GUEST_OK, "racer %d: %s: %s", i,
                      guest_status_name(x[i].st), x[i].err.message);
    fprintf(stderr, "race (%s ctx, batch %u): %llu + %llu users\n",
            shared_ctx ? "shared" : "own", batch_size,
            (unsigned long long)x[0].r.users_deleted,
            (unsigned long long)x[1].r.users_deleted);
    ck_assert_uint_eq(x[0].r.users_deleted + x[1].r.users_deleted, 20000);
    ck_assert_int_eq(count(SCHEMA ".guests"), 100);
    ck_assert_int_eq(count(SCHEMA ".users"), 100);
    ck_assert_int_eq(count(SCHEMA ".sessions"), 100);
    ck_assert_int_eq(count(APP ".notes"), 100);
    ck_assert_int_eq(
        count(SCHEMA ".guests WHERE created_at < now() - interval '1 day'"), 0);
    if (b != a)
        guest_ctx_free(b);
    guest_ctx_free(a);
}

START_TEST(two_cleanups_at_once_delete_each_guest_once)
{
    race_two(false, GUEST_CLEANUP_BATCH_DEFAULT);
}
END_TEST

START_TEST(two_threads_sharing_a_context_delete_each_guest_once)
{
    race_two(true, 250);
}
END_TEST

START_TEST(locked_guests_are_skipped_not_waited_for)
{
    guest_ctx *ctx = fresh_ctx();
    add_guests(10, "old", "now() - interval '30 days'");
    /* Another transaction (a conversion, say) holds one guest's users row. */
    PGconn *other = tl_db();
    PGresult *res = PQexec(other, "BEGIN; SELECT id FROM " SCHEMA ".users"
                                  " WHERE username = 'old3' FOR UPDATE");
    ck_assert_int_eq(PQresultStatus(res), PGRES_TUPLES_OK);
    PQclear(res);

    /* The lock is held until after this run: had the run waited for it,
     * it would not return with the other nine deleted. */
    guest_cleanup_result r;
    ck_assert_int_eq(run_cleanup(ctx, NULL, &r), GUEST_OK);
    ck_assert_uint_eq(r.users_deleted, 9);
    ck_assert_int_eq(count(SCHEMA ".users"), 1);

    res = PQexec(other, "COMMIT");
    PQclear(res);
    PQfinish(other);
    /* the next run takes the one left */
    ck_assert_int_eq(run_cleanup(ctx, NULL, &r), GUEST_OK);
    ck_assert_uint_eq(r.users_deleted, 1);
    ck_assert_int_eq(count(SCHEMA ".users"), 0);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(database_errors_are_reported)
{
    guest_ctx *ctx = fresh_ctx();
    tl_drop_schema(SCHEMA); /* the tables vanish under a running context */
    guest_cleanup_result r;
    guest_error err = {0};
    ck_assert_int_eq(guest_delete_expired(ctx, NULL, &r, &err), GUEST_ERR_DB);
    ck_assert_msg(strstr(err.message, "does not exist"), "%s", err.message);
    guest_cleanup_options o;
    guest_cleanup_options_init(&o);
    o.dry_run = true;
    memset(&err, 0, sizeof err);
    ck_assert_int_eq(guest_delete_expired(ctx, &o, &r, &err), GUEST_ERR_DB);
    ck_assert_msg(strstr(err.message, "does not exist"), "%s", err.message);
    guest_stats s;
    ck_assert_int_eq(guest_stats_get(ctx, 0, &s, &err), GUEST_ERR_DB);
    ck_assert_int_eq(err.status, GUEST_ERR_DB);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(stats_count_users_guests_expired_and_live_sessions)
{
    guest_ctx *ctx = fresh_ctx_age(86400);
    guest_stats s;
    ck_assert_int_eq(guest_stats_get(ctx, 0, &s, NULL), GUEST_OK);
    ck_assert_uint_eq(s.users, 0);
    ck_assert_uint_eq(s.live_sessions, 0);

    long long reg = add_registered("registered");
    add_session(reg, "reg-live", "now() + interval '1 day'");
    add_session(reg, "reg-old", "now() - interval '1 day'");
    add_registered("registered2");
    long long g1 = add_guest("g1", "now() - interval '2 days'");
    add_guest("g2", "now() - interval '1 hour'");
    add_guest("g3", "now()");
    add_session(g1, "g1-live", "now() + interval '1 hour'");

    ck_assert_int_eq(guest_stats_get(ctx, 0, &s, NULL), GUEST_OK);
    ck_assert_uint_eq(s.users, 5);
    ck_assert_uint_eq(s.guests, 3);
    ck_assert_uint_eq(s.expired_guests, 1);
    ck_assert_uint_eq(s.live_sessions, 2);
    ck_assert_int_eq(guest_stats_get(ctx, 600, &s, NULL), GUEST_OK);
    ck_assert_uint_eq(s.expired_guests, 2);
    guest_ctx_free(ctx);
}
END_TEST

typedef struct listing {
    int n;
    int stop_after;
    char names[8][GUEST_USERNAME_BUF];
    bool expired[8];
    int64_t created_at[8];
} listing;

static bool collect(const guest_info *g, void *userdata)
{
    listing *l = userdata;
    ck_assert_int_lt(l->n, 8);
    ck_assert_int_gt(g->id, 0);
    snprintf(l->names[l->n], sizeof l->names[l->n], "%s", g->username);
    l->expired[l->n] = g->expired;
    l->created_at[l->n] = g->created_at;
    l->n++;
    return !(l->stop_after && l->n >= l->stop_after);
}

START_TEST(list_guests_newest_first_with_limit_and_filter)
{
    guest_ctx *ctx = fresh_ctx_age(86400);
    add_registered("registered");
    add_guest("g1", "to_timestamp(1700000000) + interval '0.9 seconds'");
    add_guest("g2", "now() - interval '1 hour'");
    add_guest("g3", "now()");

    listing l = {0};
    ck_assert_int_eq(guest_guests_list(ctx, false, 0, 0, collect, &l, NULL),
                     GUEST_OK);
    ck_assert_int_eq(l.n, 3);
    ck_assert_str_eq(l.names[0], "g3");
    ck_assert_str_eq(l.names[1], "g2");
    ck_assert_str_eq(l.names[2], "g1");
    ck_assert(!l.expired[0] && !l.expired[1] && l.expired[2]);
    ck_assert_int_eq(l.created_at[2], CUTOFF); /* rounded down */
    long long now = (long long)time(NULL);
    ck_assert_int_le(l.created_at[0], now + 60);
    ck_assert_int_ge(l.created_at[0], now - 60);

    memset(&l, 0, sizeof l);
    ck_assert_int_eq(guest_guests_list(ctx, false, 0, 2, collect, &l, NULL),
                     GUEST_OK);
    ck_assert_int_eq(l.n, 2);
    ck_assert_str_eq(l.names[1], "g2");

    memset(&l, 0, sizeof l);
    ck_assert_int_eq(guest_guests_list(ctx, true, 0, 0, collect, &l, NULL),
                     GUEST_OK);
    ck_assert_int_eq(l.n, 1);
    ck_assert_str_eq(l.names[0], "g1");

    memset(&l, 0, sizeof l);
    ck_assert_int_eq(guest_guests_list(ctx, true, 600, 50, collect, &l, NULL),
                     GUEST_OK);
    ck_assert_int_eq(l.n, 2);
    ck_assert_str_eq(l.names[0], "g2");
    ck_assert(l.expired[0] && l.expired[1]);

    /* the callback can stop early */
    memset(&l, 0, sizeof l);
    l.stop_after = 1;
    ck_assert_int_eq(guest_guests_list(ctx, false, 0, 0, collect, &l, NULL),
                     GUEST_OK);
    ck_assert_int_eq(l.n, 1);

    /* a limit beyond bigint means no limit */
    memset(&l, 0, sizeof l);
    ck_assert_int_eq(
        guest_guests_list(ctx, false, 0, SIZE_MAX, collect, &l, NULL),
        GUEST_OK);
    ck_assert_int_eq(l.n, 3);
    guest_ctx_free(ctx);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cleanup");
    TCase *tc = tcase_create("cleanup");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, options_init_sets_documented_defaults);
    tcase_add_test(tc, bad_arguments_are_rejected_without_deleting);
    tcase_add_test(tc, cutoff_boundary_is_strictly_before);
    tcase_add_test(tc, cutoffs_far_from_now_are_exact);
    tcase_add_test(tc, max_age_comes_from_context_or_options);
    tcase_add_test(tc, deletion_cascades_into_application_tables);
    tcase_add_test(tc, blocking_foreign_key_fails_whole_batch_with_advice);
    tcase_add_test(tc, converted_and_registered_users_are_untouched);
    tcase_add_test(tc, expired_sessions_are_deleted);
    tcase_add_test(tc, dry_run_counts_and_deletes_nothing);
    tcase_add_test(tc, progress_is_reported_after_each_batch);
    tcase_add_test(tc, progress_callback_stops_between_batches);
    tcase_add_test(tc, two_cleanups_at_once_delete_each_guest_once);
    tcase_add_test(tc, two_threads_sharing_a_context_delete_each_guest_once);
    tcase_add_test(tc, locked_guests_are_skipped_not_waited_for);
    tcase_add_test(tc, database_errors_are_reported);
    tcase_add_test(tc, stats_count_users_guests_expired_and_live_sessions);
    tcase_add_test(tc, list_guests_newest_first_with_limit_and_filter);
    suite_add_tcase(s, tc);
    return tl_run(s);
}

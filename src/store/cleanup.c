/* Deleting expired guests in batches, and the counts behind the admin tool. */
#include <inttypes.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store.h"

#define US_PER_S INT64_C(1000000)
/* 0001-01-01T00:00:00Z. Earlier instants would need PostgreSQL's "BC"
 * syntax; no guest was created then, so cutoffs are clamped to it. */
#define MIN_UNIX_S INT64_C(-62135596800)
/* "YYYY-MM-DD HH:MM:SS.ffffff+00" plus room to spare */
#define TS_BUF 48

/* The options of 1.0, the smallest struct a program can have. */
#define OPTIONS_SIZE_1_0                                                       \
    (offsetof(guest_cleanup_options, progress_userdata) + sizeof(void *))

static void options_defaults(guest_cleanup_options *o)
{
    memset(o, 0, sizeof *o);
    o->size = sizeof *o;
    o->batch_size = GUEST_CLEANUP_BATCH_DEFAULT;
}

#undef guest_cleanup_options_init
void guest_cleanup_options_init_size(guest_cleanup_options *opts, size_t size)
{
    guest_cleanup_options d;
    options_defaults(&d);
    guest_sized_init(opts, size, &d, sizeof d);
}

/* Statement texts for one call. They are built per call rather than per
 * context: cleanup runs rarely, and this keeps the per-request set in
 * guests.c to what requests need. */
typedef struct cleanup_sql {
    char *delete_users;
    char *delete_sessions;
    char *count_users;
    char *count_sessions;
    char *delete_windows;
    char *count_windows;
} cleanup_sql;

static void cleanup_sql_free(cleanup_sql *sql)
{
    free(sql->delete_users);
    free(sql->delete_sessions);
    free(sql->count_users);
    free(sql->count_sessions);
    free(sql->delete_windows);
    free(sql->count_windows);
}

static bool cleanup_sql_build(cleanup_sql *sql, const char *schema,
                              bool returning)
{
    /* The users row of a guest is locked together with its guests row, and
     * locked rows are skipped: a guest being converted, logging in, or
     * gaining an application row at this moment is left for the next run
     * instead of being waited for (or deadlocking with that transaction),
     * and a second cleanup process takes the next unlocked guests. Deleting
     * the users row lets the foreign keys cascade to guests, sessions and
     * the application's tables. The batch is handed over as an array, not
     * joined: with a join the planner hashes the whole users table for
     * every batch, which made each batch cost as much as the table is big. */
#define DELETE_USERS                                                           \
    "DELETE FROM @.users WHERE id = ANY (ARRAY("                               \
    "SELECT g.user_id FROM @.guests g"                                         \
    " JOIN @.users u ON u.id = g.user_id"                                      \
    " WHERE g.created_at < $1::timestamptz"                                    \
    " ORDER BY g.created_at LIMIT $2::integer"                                 \
    " FOR UPDATE OF g, u SKIP LOCKED))"
    /* The ids travel back only when on_guests_deleted wants them. */
    sql->delete_users = guest__schema_sql(
        returning ? DELETE_USERS " RETURNING id" : DELETE_USERS, schema);
#undef DELETE_USERS
    sql->delete_sessions = guest__schema_sql(
        "DELETE FROM @.sessions WHERE token_hash = ANY (ARRAY("
        "SELECT token_hash FROM @.sessions"
        " WHERE expires_at <= $1::timestamptz LIMIT $2::integer"
        " FOR UPDATE SKIP LOCKED))",
        schema);
    sql->count_users =
        guest__schema_sql("SELECT count(*) FROM @.guests WHERE created_at < "
                          "$1::timestamptz",
                          schema);
    /* A real run deletes the expired guests first, taking their sessions
     * with them; the session count leaves those out to match it. */
    sql->count_sessions = guest__schema_sql(
        "SELECT count(*) FROM @.sessions s"
        " WHERE s.expires_at <= $2::timestamptz AND NOT EXISTS ("
        "SELECT 1 FROM @.guests g WHERE g.user_id = s.user_id"
        " AND g.created_at < $1::timestamptz)",
        schema);
    /* A window row is stale once both of its windows have passed: it then
     * counts nothing, and the next hit from that client starts afresh.
     * The row's own stale_at says when, whatever the limits' settings. */
    sql->delete_windows =
        guest__schema_sql("DELETE FROM @.rate_windows WHERE ctid = ANY (ARRAY("
                          "SELECT ctid FROM @.rate_windows"
                          " WHERE stale_at <= $1::timestamptz LIMIT $2::integer"
                          " FOR UPDATE SKIP LOCKED))",
                          schema);
    sql->count_windows = guest__schema_sql(
        "SELECT count(*) FROM @.rate_windows WHERE stale_at <= $1::timestamptz",
        schema);
    if (!sql->delete_users || !sql->delete_sessions || !sql->count_users ||
        !sql->count_sessions || !sql->delete_windows || !sql->count_windows) {
        cleanup_sql_free(sql);
        memset(sql, 0, sizeof *sql);
        return false;
    }
    return true;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}

/* Writes @p us (microseconds since the epoch) as an ISO 8601 UTC timestamp
 * that PostgreSQL reads the same whatever the session's DateStyle and
 * TimeZone, without the rounding a float epoch would bring. */
static bool format_ts(int64_t us, char buf[TS_BUF])
{
    int64_t secs = floor_div(us, US_PER_S);
    int frac = (int)(us - secs * US_PER_S);
    time_t t = (time_t)secs;
    struct tm tm;
    if (!gmtime_r(&t, &tm))
        return false;
    int n = snprintf(buf, TS_BUF, "%04d-%02d-%02d %02d:%02d:%02d.%06d+00",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                     tm.tm_min, tm.tm_sec, frac);
    return n > 0 && n < TS_BUF;
}

/* guest__sql_run, with a foreign key that blocks the deletion explained
 * by a message that says what to change. */
static guest_status run(guest_ctx *ctx, const guest__stmt *s, PGresult **res,
                        guest_error *err)
{
    PGresult *r = NULL;
    guest_status st = guest__sql_run(ctx, NULL, s, &r, err);
    if (st == GUEST_ERR_DB && r) {
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
        if (state && !strcmp(state, "23503"))
            guest__fail(err, st,
                        "%s; every foreign key to \"%s\".users needs ON "
                        "DELETE CASCADE or ON DELETE SET NULL",
                        msg ? msg : "foreign key violation",
                        ctx->cfg.db_schema);
        else if (state && !strcmp(state, "23502"))
            guest__fail(err, st,
                        "%s; a foreign key to \"%s\".users with ON DELETE "
                        "SET NULL needs a column that allows NULL",
                        msg ? msg : "not-null violation", ctx->cfg.db_schema);
    }
    if (st != GUEST_OK) {
        PQclear(r);
        r = NULL;
    }
    if (res)
        *res = r;
    else
        PQclear(r);
    return st;
}

static uint64_t first_u64(PGresult *res, int col)
{
    return strtoull(PQgetvalue(res, 0, col), NULL, 10);
}

/* The database's clock, not this host's: created_at and expires_at were
 * written with the server's now(), and nodes' clocks may disagree. */
static guest_status server_now_us(guest_ctx *ctx, int64_t *out,
                                  guest_error *err)
{
    PGresult *res;
    guest_status st =
        run(ctx,
            &(guest__stmt){
                .sql = "SELECT (extract(epoch FROM now()) * 1000000)::bigint"},
            &res, err);
    if (st != GUEST_OK)
        return st;
    *out = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return GUEST_OK;
}

/* now_us - max_age seconds, clamped to the earliest instant format_ts
 * writes (which also keeps a huge max_age from overflowing). */
static int64_t cutoff_from_age(int64_t now_us, int64_t max_age)
{
    int64_t now_s = floor_div(now_us, US_PER_S);
    if (max_age >= now_s - MIN_UNIX_S)
        return MIN_UNIX_S * US_PER_S;
    return now_us - max_age * US_PER_S;
}

static guest_status count_expired(guest_ctx *ctx, const cleanup_sql *sql,
                                  const char *cutoff, const char *now,
                                  guest_cleanup_result *r, guest_error *err)
{
    guest__params p = {0};
    guest__param_text(&p, cutoff);
    PGresult *res;
    guest_status st = run(
        ctx, &(guest__stmt){.sql = sql->count_users, .params = &p}, &res, err);
    if (st != GUEST_OK)
        return st;
    r->users_deleted = first_u64(res, 0);
    PQclear(res);
    guest__param_text(&p, now);
    if ((st = run(ctx, &(guest__stmt){.sql = sql->count_sessions, .params = &p},
                  &res, err)) != GUEST_OK)
        return st;
    r->sessions_deleted = first_u64(res, 0);
    PQclear(res);
    guest__params w = {0};
    guest__param_text(&w, now);
    if ((st = run(ctx, &(guest__stmt){.sql = sql->count_windows, .params = &w},
                  &res, err)) != GUEST_OK)
        return st;
    r->rate_windows_deleted = first_u64(res, 0);
    PQclear(res);
    return GUEST_OK;
}

/* Runs @p sql batch after batch until one deletes fewer rows than a full
 * batch: rows skipped as locked are another process's, not ours to wait
 * for. */
/* Hands the ids of a batch (the RETURNING column) to on_guests_deleted. */
static guest_status report_deleted(guest_ctx *ctx, const PGresult *res,
                                   guest_error *err)
{
    int n = PQntuples(res);
    int64_t *ids = malloc((size_t)(n ? n : 1) * sizeof *ids);
    if (!ids)
        return guest__fail(err, GUEST_ERR_NOMEM,
                           "out of memory for the ids of a deleted batch "
                           "(the batch itself is deleted)");
    for (int i = 0; i < n; i++)
        ids[i] = strtoll(PQgetvalue(res, i, 0), NULL, 10);
    ctx->cfg.on_guests_deleted(ids, (size_t)n,
                               ctx->cfg.on_guests_deleted_userdata);
    free(ids);
    return GUEST_OK;
}

static guest_status delete_batches(guest_ctx *ctx, const char *sql,
                                   const char *before,
                                   const guest_cleanup_options *o,
                                   guest_cleanup_result *r, uint64_t *counter,
                                   bool users, bool report, guest_error *err)
{
    char limit[16];
    snprintf(limit, sizeof limit, "%u", o->batch_size);
    for (;;) {
        guest__params p = {0};
        guest__param_text(&p, before);
        guest__param_text(&p, limit);
        PGresult *res;
        guest_status st =
            run(ctx, &(guest__stmt){.sql = sql, .params = &p}, &res, err);
        if (st != GUEST_OK)
            return st;
        uint64_t n = strtoull(PQcmdTuples(res), NULL, 10);
        /* Each batch is its own committed statement: by now it is done.
         * Deleted users must not go on resolving from this process's
         * session cache; store cannot name them to core, so every entry
         * cached before goes stale (expired sessions need not: an entry
         * never outlives its session). */
        if (n > 0 && users)
            atomic_fetch_add(&ctx->session_epoch, 1);
        if (report && n > 0 &&
            (st = report_deleted(ctx, res, err)) != GUEST_OK) {
            PQclear(res);
            return st;
        }
        PQclear(res);
        if (n == 0)
            return GUEST_OK;
        *counter += n;
        r->batches++;
        if (o->progress && !o->progress(r, o->progress_userdata))
            return guest__fail(err, GUEST_ERR_CANCELLED,
                               "stopped by the progress callback after %" PRIu64
                               " batches",
                               r->batches);
        if (n < o->batch_size)
            return GUEST_OK;
    }
}

static guest_status check_options(const guest_cleanup_options *o,
                                  guest_error *err)
{
    if (o->batch_size < 1 || o->batch_size > GUEST_CLEANUP_BATCH_MAX)
        return guest__fail(err, GUEST_ERR_INVALID,
                           "batch_size must be 1..%u (got %u)",
                           GUEST_CLEANUP_BATCH_MAX, o->batch_size);
    if (o->max_age < 0)
        return guest__fail(err, GUEST_ERR_INVALID,
                           "max_age must not be negative (got %" PRId64 ")",
                           o->max_age);
    if (o->cutoff < 0 || o->cutoff > GUEST_CLEANUP_CUTOFF_MAX)
        return guest__fail(err, GUEST_ERR_INVALID,
                           "cutoff must be 0 (unset) or 1..%" PRId64
                           " (got %" PRId64 ")",
                           GUEST_CLEANUP_CUTOFF_MAX, o->cutoff);
    return GUEST_OK;
}

static guest_status delete_expired(guest_ctx *ctx,
                                   const guest_cleanup_options *opts,
                                   guest_cleanup_result *r, guest_error *err);

#undef guest_delete_expired
guest_status guest_delete_expired_size(guest_ctx *ctx,
                                       const guest_cleanup_options *opts,
                                       guest_cleanup_result *result,
                                       size_t result_size, guest_error *err)
{
    guest_cleanup_options o;
    options_defaults(&o);
    if (opts && !guest_sized_read(opts, OPTIONS_SIZE_1_0, &o, sizeof o))
        return guest__fail(err, GUEST_ERR_INVALID,
                           "guest_cleanup_options.size is %zu, not %zu..%zu:"
                           " fill it with guest_cleanup_options_init()",
                           opts->size, (size_t)OPTIONS_SIZE_1_0, sizeof o);
    /* The whole result here (the progress callback reads it); the
     * program's part of it copied out as far as the call got. */
    guest_cleanup_result r;
    memset(&r, 0, sizeof r);
    guest_status st = delete_expired(ctx, &o, &r, err);
    if (result && result_size) {
        memset(result, 0, result_size);
        memcpy(result, &r, result_size < sizeof r ? result_size : sizeof r);
    }
    return st;
}

static guest_status delete_expired(guest_ctx *ctx,
                                   const guest_cleanup_options *opts,
                                   guest_cleanup_result *r, guest_error *err)
{
    if (!ctx)
        return guest__fail(err, GUEST_ERR_INVALID, "ctx is NULL");
    guest_status st = check_options(opts, err);
    if (st != GUEST_OK)
        return st;

    int64_t now_us;
    if ((st = server_now_us(ctx, &now_us, err)) != GUEST_OK)
        return st;
    int64_t cutoff_us =
        opts->cutoff
            ? opts->cutoff * US_PER_S
            : cutoff_from_age(now_us,
                              opts->max_age ? opts->max_age : ctx->cfg.max_age);
    r->cutoff = floor_div(cutoff_us, US_PER_S);
    char cutoff[TS_BUF], now[TS_BUF];
    if (!format_ts(cutoff_us, cutoff) || !format_ts(now_us, now))
        return guest__fail(err, GUEST_ERR_INVALID,
                           "the cutoff cannot be represented as a date");

    cleanup_sql sql;
    if (!cleanup_sql_build(&sql, ctx->cfg.db_schema,
                           ctx->cfg.on_guests_deleted != NULL))
        return guest__fail(err, GUEST_ERR_NOMEM, "out of memory");
    if (opts->dry_run) {
        st = count_expired(ctx, &sql, cutoff, now, r, err);
    } else {
        /* Guests first: their sessions go with them by cascade, so the
         * session pass only has other users' sessions left to do. */
        st = delete_batches(ctx, sql.delete_users, cutoff, opts, r,
                            &r->users_deleted, true,
                            ctx->cfg.on_guests_deleted != NULL, err);
        guest__count_n(ctx, GUEST__C_CLEANUP_DELETED, r->users_deleted);
        if (st == GUEST_OK)
            st = delete_batches(ctx, sql.delete_sessions, now, opts, r,
                                &r->sessions_deleted, false, false, err);
        if (st == GUEST_OK)
            st = delete_batches(ctx, sql.delete_windows, now, opts, r,
                                &r->rate_windows_deleted, false, false, err);
        /* A network whose guests are all gone keeps a row of 0 (the
         * trigger only subtracts), and a sign-in that never came back
         * leaves its flow: small rows, but they would grow without end. */
        if (st == GUEST_OK)
            st = guest__sql_run(
                ctx, NULL,
                &(guest__stmt){.tmpl = "DELETE FROM @.guest_networks"
                                       " WHERE live <= 0"},
                NULL, err);
        if (st == GUEST_OK)
            st = guest__sql_run(
                ctx, NULL,
                &(guest__stmt){.tmpl = "DELETE FROM @.flows"
                                       " WHERE expires_at <= now()"},
                NULL, err);
        /* Dead mail links, and delivered mails kept mail_keep_sent_s for
         * an operator to look at; failed ones stay until retried or
         * deleted by hand (guestuser mail-queue shows them). */
        if (st == GUEST_OK)
            st = guest__sql_run(
                ctx, NULL,
                &(guest__stmt){.tmpl = "DELETE FROM @.email_tokens"
                                       " WHERE expires_at <= now()"},
                NULL, err);
        char keep[16];
        snprintf(keep, sizeof keep, "%u", ctx->cfg.mail_keep_sent_s);
        guest__params kp = {0};
        guest__param_text(&kp, keep);
        if (st == GUEST_OK)
            st = guest__sql_run(
                ctx, NULL,
                &(guest__stmt){.tmpl = "DELETE FROM @.outbox WHERE sent_at"
                                       " < now() - make_interval(secs =>"
                                       " $1::integer)",
                               .params = &kp},
                NULL, err);
    }
    cleanup_sql_free(&sql);
    if (st == GUEST_OK && !opts->dry_run)
        guest__metric_cleanup_done(ctx);
    return st;
}

/* The cutoff for "expired" in the read-only queries: @p max_age seconds
 * before the database's now (0: the context's max_age). */
static guest_status expiry_cutoff(guest_ctx *ctx, int64_t max_age,
                                  char cutoff[TS_BUF], guest_error *err)
{
    int64_t now_us;
    guest_status st = server_now_us(ctx, &now_us, err);
    if (st != GUEST_OK)
        return st;
    if (!format_ts(
            cutoff_from_age(now_us, max_age ? max_age : ctx->cfg.max_age),
            cutoff))
        return guest__fail(err, GUEST_ERR_INVALID,
                           "the cutoff cannot be represented as a date");
    return GUEST_OK;
}

static guest_status get_stats(guest_ctx *ctx, int64_t max_age, guest_stats *out,
                              guest_error *err);

#undef guest_stats_get
guest_status guest_stats_get_size(guest_ctx *ctx, int64_t max_age,
                                  guest_stats *out, size_t out_size,
                                  guest_error *err)
{
    if (!ctx || !out || !out_size)
        return guest__fail(err, GUEST_ERR_INVALID, "ctx and out are required");
    guest_stats all;
    guest_status st = get_stats(ctx, max_age, &all, err);
    memset(out, 0, out_size);
    if (st == GUEST_OK)
        memcpy(out, &all, out_size < sizeof all ? out_size : sizeof all);
    return st;
}

static guest_status get_stats(guest_ctx *ctx, int64_t max_age, guest_stats *out,
                              guest_error *err)
{
    if (max_age < 0)
        return guest__fail(err, GUEST_ERR_INVALID,
                           "max_age must not be negative");
    memset(out, 0, sizeof *out);
    char cutoff[TS_BUF];
    guest_status st = expiry_cutoff(ctx, max_age, cutoff, err);
    if (st != GUEST_OK)
        return st;
    /* One statement, so the four counts come from one snapshot. */
    guest__params p = {0};
    guest__param_text(&p, cutoff);
    const guest__stmt counts = {
        .tmpl = "SELECT (SELECT count(*) FROM @.users),"
                " (SELECT count(*) FROM @.guests),"
                " (SELECT count(*) FROM @.guests"
                " WHERE created_at < $1::timestamptz),"
                " (SELECT count(*) FROM @.sessions WHERE expires_at > now())",
        .params = &p};
    PGresult *res;
    st = run(ctx, &counts, &res, err);
    if (st != GUEST_OK)
        return st;
    out->users = first_u64(res, 0);
    out->guests = first_u64(res, 1);
    out->expired_guests = first_u64(res, 2);
    out->live_sessions = first_u64(res, 3);
    PQclear(res);
    return GUEST_OK;
}

guest_status guest_guests_list(guest_ctx *ctx, bool expired_only,
                               int64_t max_age, size_t limit, guest_list_fn fn,
                               void *userdata, guest_error *err)
{
    if (!ctx || !fn)
        return guest__fail(err, GUEST_ERR_INVALID, "ctx and fn are required");
    if (max_age < 0)
        return guest__fail(err, GUEST_ERR_INVALID,
                           "max_age must not be negative");
    char cutoff[TS_BUF];
    guest_status st = expiry_cutoff(ctx, max_age, cutoff, err);
    if (st != GUEST_OK)
        return st;
    char lim[GUEST__INT_BUF];
    guest__params p = {0};
    guest__param_text(&p, cutoff);
    /* One past any bigint is no limit either. */
    guest__param_limit(&p, lim, limit <= (uint64_t)INT64_MAX ? limit : 0);
#define LIST_FROM                                                              \
    "SELECT u.id, u.username,"                                                 \
    " floor(extract(epoch FROM g.created_at))::bigint,"                        \
    " g.created_at < $1::timestamptz"                                          \
    " FROM @.guests g JOIN @.users u ON u.id = g.user_id"
#define LIST_ORDER                                                             \
    " ORDER BY g.created_at DESC, g.user_id DESC LIMIT $2::bigint"
    const guest__stmt list = {
        .tmpl = expired_only ? LIST_FROM
                    " WHERE g.created_at < $1::timestamptz" LIST_ORDER
                             : LIST_FROM LIST_ORDER,
        .params = &p};
#undef LIST_FROM
#undef LIST_ORDER
    PGresult *res;
    st = run(ctx, &list, &res, err);
    if (st != GUEST_OK)
        return st;
    int rows = PQntuples(res);
    for (int i = 0; i < rows; i++) {
        guest_info g = {
            .id = strtoll(PQgetvalue(res, i, 0), NULL, 10),
            .username = PQgetvalue(res, i, 1),
            .created_at = strtoll(PQgetvalue(res, i, 2), NULL, 10),
            .expired = PQgetvalue(res, i, 3)[0] == 't',
        };
        if (!fn(&g, userdata))
            break;
    }
    PQclear(res);
    return GUEST_OK;
}

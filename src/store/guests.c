/* The per-request statements: each is a single round trip. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

/* The creation statement with the limits the config turns on. Their
 * numbers come from the validated config and go in as literals; only the
 * client key is a parameter ($4). */
static char *create_limited_sql(const guest_config *c)
{
    bool rate = c->guest_rate_limit > 0, cap = c->max_guests > 0;
    char *cap_cte = NULL, *w_cte = NULL, *values = NULL, *upsert = NULL;
    char window[16], limit[16];
    snprintf(window, sizeof window, "%u", c->guest_rate_window);
    snprintf(limit, sizeof limit, "%u", c->guest_rate_limit);
    /* Counting every guest per request is too slow at 100k guests, and a
     * counter row updated by every creation and deletion would serialize
     * all creations (across all nodes) on one row lock. Instead the census
     * row holds a count at most 2 s old: the first creation that finds it
     * older takes its lock (SKIP LOCKED: one request at a time, nobody
     * waits), counts all guests, checks against that and stores it; the
     * others check against the stored count, one indexed read. So the cap
     * may be overshot by what all nodes create within 2 s, and guests
     * deleted since the last count still count until the next; the full
     * count costs at most about max_guests rows, every 2 s at most. */
    if (cap)
        cap_cte = guest__asprintf(
            "stale AS (SELECT id FROM @.guest_census WHERE id = 1"
            " AND counted_at < now() - interval '2 seconds'"
            " FOR UPDATE SKIP LOCKED),"
            " fresh AS (SELECT count(*) AS n FROM @.guests"
            " WHERE EXISTS (SELECT 1 FROM stale)),"
            " cap AS (SELECT CASE WHEN EXISTS (SELECT 1 FROM stale)"
            " THEN (SELECT n FROM fresh) ELSE c.live END < %lld AS ok"
            " FROM @.guest_census c WHERE c.id = 1),"
            " census AS (UPDATE @.guest_census"
            " SET live = (SELECT n FROM fresh), counted_at = now()"
            " WHERE id IN (SELECT id FROM stale)),",
            (long long)c->max_guests);
    /* The check and the count are one upsert: a denied creation changes
     * nothing (the client's budget refills as the window slides), and a
     * name clash, retried with another name, is charged like a creation. */
    if (rate) {
        values = guest__window_values("'guest'", "$4", "''::bytea", window);
        upsert = guest__window_upsert(limit);
        if (values && upsert)
            w_cte = guest__asprintf(
                "w AS (INSERT INTO @.rate_windows AS r (kind, client,"
                " subject, bucket, window_secs, prev_count, curr_count,"
                " stale_at) %s%s %s RETURNING 1),",
                values, cap ? " WHERE (SELECT ok FROM cap)" : "", upsert);
    }
    char *sql = NULL;
    if ((!cap || cap_cte) && (!rate || w_cte))
        sql = guest__asprintf(
            "WITH %s%s"
            " u AS (INSERT INTO @.users (username) SELECT $1 WHERE %s AND %s"
            " ON CONFLICT (username) DO NOTHING RETURNING id, username),"
            " g AS (INSERT INTO @.guests (user_id) SELECT id FROM u"
            " RETURNING user_id),"
            " s AS (INSERT INTO @.sessions (token_hash, user_id,"
            " expires_at) SELECT $2, user_id, now() + make_interval(secs =>"
            " $3) FROM g RETURNING user_id)"
            " SELECT u.id, u.username, %s, %s, %s,"
            " extract(epoch FROM now())::float8,"
            " floor(extract(epoch FROM now()))::bigint"
            " FROM (SELECT 1) one LEFT JOIN (u JOIN s ON s.user_id = u.id)"
            " ON true%s",
            cap ? cap_cte : "", rate ? w_cte : "",
            rate ? "EXISTS (SELECT 1 FROM w)" : "true",
            cap ? "(SELECT ok FROM cap)" : "true",
            rate ? "EXISTS (SELECT 1 FROM w)" : "true",
            cap ? "(SELECT ok FROM cap)" : "true",
            rate ? "win.bucket, win.prev_count, win.curr_count, "
                   "win.window_secs"
                 : "NULL, NULL, NULL, NULL",
            rate ? " LEFT JOIN @.rate_windows win ON win.kind = 'guest'"
                   " AND win.client = $4 AND win.subject = ''"
                 : "");
    free(cap_cte);
    free(w_cte);
    free(values);
    free(upsert);
    return sql;
}

guest_status guest__sql_build(guest__sql *sql, const guest_config *cfg)
{
    const char *schema = cfg->db_schema;
    /* One statement creates user, guest marker and session together: the
     * data-modifying CTEs run atomically, and ON CONFLICT turns a name clash
     * into zero rows instead of an error, so the caller just retries. */
    bool limited = cfg->guest_rate_limit || cfg->max_guests;
    if (limited) {
        char *tmpl = create_limited_sql(cfg);
        sql->create_guest = tmpl ? guest__schema_sql(tmpl, schema) : NULL;
        free(tmpl);
    } else {
        sql->create_guest = guest__schema_sql(GUEST__CREATE_GUEST_SQL, schema);
        /* Unnamed, the three inserts are planned on every call (measured:
         * 6.7k creations/s against 10.5k through the function). */
        sql->create_guest_fn = guest__schema_sql(
            "SELECT * FROM @.create_guest($1, $2, $3)", schema);
    }
    sql->resolve_session =
        guest__schema_sql(GUEST__RESOLVE_SESSION_SQL, schema);
    /* Unnamed, the lookup's three-table join is planned on every call:
     * about 0.1 ms of server CPU for 0.015 ms of work (measured: 7.4k
     * against 48k lookups/s). The function's plan stays cached in each
     * server process, whichever client calls it (22k/s). */
    sql->resolve_session_fn =
        guest__schema_sql("SELECT * FROM @.resolve_session($1)", schema);
    sql->ping = guest__strdup("SELECT 1");
    if (!sql->create_guest || (!limited && !sql->create_guest_fn) ||
        !sql->resolve_session || !sql->resolve_session_fn || !sql->ping) {
        guest__sql_free(sql);
        return GUEST_ERR_NOMEM;
    }
    return GUEST_OK;
}

void guest__sql_free(guest__sql *sql)
{
    free(sql->create_guest);
    free(sql->resolve_session);
    free(sql->resolve_session_fn);
    free(sql->create_guest_fn);
    free(sql->ping);
    memset(sql, 0, sizeof *sql);
}

/* @p created_col: the column of the guest's creation time (Unix seconds;
 * NULL for a registered user). */
static void fill_user(const guest_ctx *ctx, guest_user *user, PGresult *res,
                      bool is_guest, int created_col)
{
    user->id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    snprintf(user->username, sizeof user->username, "%s",
             PQgetvalue(res, 0, 1));
    user->is_guest = is_guest;
    user->created_at = user->expires_at = 0;
    if (is_guest && !PQgetisnull(res, 0, created_col)) {
        user->created_at = strtoll(PQgetvalue(res, 0, created_col), NULL, 10);
        /* Cleanup deletes a guest once it is older than max_age. */
        user->expires_at = user->created_at + ctx->cfg.max_age;
    }
}

guest_status guest__store_create_guest(guest_ctx *ctx, const char *username,
                                       const unsigned char *token_hash,
                                       const char *client, guest_user *user,
                                       guest__created *outcome,
                                       int64_t *retry_after, guest_error *err)
{
    const guest_config *c = &ctx->cfg;
    bool limited = c->guest_rate_limit || c->max_guests;
    char age[32];
    snprintf(age, sizeof age, "%lld", (long long)c->max_age);
    guest__params p = {0};
    guest__param_text(&p, username);
    guest__param_bin(&p, token_hash, GUEST__SHA256_BYTES);
    guest__param_text(&p, age);
    if (c->guest_rate_limit)
        guest__param_text(&p, client);
    PGresult *res;
    const guest__stmt s = {.sql = ctx->sql.create_guest,
                           .prepared = "guest_create",
                           .unprepared = ctx->sql.create_guest_fn,
                           .params = &p};
    guest_status st = guest__sql_run(ctx, NULL, &s, &res, err);
    if (st != GUEST_OK) {
        PQclear(res);
        return st;
    }
    *outcome = GUEST__NAME_CLASH;
    *retry_after = 0;
    if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0)) {
        *outcome = GUEST__CREATED;
        fill_user(ctx, user, res, true, limited ? 9 : 2);
    } else if (limited && PQntuples(res) == 1) {
        if (PQgetvalue(res, 0, 3)[0] == 'f') {
            *outcome = GUEST__AT_CAPACITY;
        } else if (PQgetvalue(res, 0, 2)[0] == 'f') {
            *outcome = GUEST__RATE_LIMITED;
            *retry_after = 1;
            /* The row as this statement saw it, before any concurrent
             * change: close enough for a Retry-After. */
            if (!PQgetisnull(res, 0, 4))
                *retry_after =
                    guest__window_wait(strtod(PQgetvalue(res, 0, 8), NULL),
                                       strtoll(PQgetvalue(res, 0, 7), NULL, 10),
                                       strtoll(PQgetvalue(res, 0, 4), NULL, 10),
                                       strtoll(PQgetvalue(res, 0, 5), NULL, 10),
                                       strtoll(PQgetvalue(res, 0, 6), NULL, 10),
                                       c->guest_rate_limit);
            if (*retry_after < 1)
                *retry_after = 1;
        }
    }
    PQclear(res);
    return GUEST_OK;
}

guest_status guest__store_resolve(guest_ctx *ctx,
                                  const unsigned char *token_hash,
                                  guest_user *user, bool *found,
                                  int64_t *ms_left, guest_error *err)
{
    guest__params p = {0};
    guest__param_bin(&p, token_hash, GUEST__SHA256_BYTES);
    PGresult *res = NULL;
    guest__stmt s = {.sql = ctx->sql.resolve_session,
                     .prepared = "guest_resolve",
                     .unprepared = ctx->sql.resolve_session_fn,
                     .params = &p};
    guest_status st = GUEST_ERR_DB_UNAVAILABLE;
    *found = false;
    /* The replica first, when there is one and it has not just failed. A
     * miss there may only be lag (a guest made a moment ago, a login), so
     * the primary decides it; a failing replica is skipped for a while
     * rather than costing every visitor its timeout. */
    if (ctx->read_pool && guest__now_ms() >= ctx->read_pool_skip_until) {
        s.replica = true;
        st = guest__sql_run(ctx, NULL, &s, &res, NULL);
        if (st != GUEST_OK)
            ctx->read_pool_skip_until = guest__now_ms() + 5000;
        else if (PQntuples(res) == 1)
            *found = true;
        if (!*found) {
            PQclear(res);
            res = NULL;
        }
        s.replica = false;
    }
    if (!*found) {
        st = guest__sql_run(ctx, NULL, &s, &res, err);
        if (st != GUEST_OK) {
            PQclear(res);
            return st;
        }
        *found = PQntuples(res) == 1;
    }
    if (*found) {
        fill_user(ctx, user, res, PQgetvalue(res, 0, 2)[0] == 't', 3);
        if (ms_left)
            *ms_left = strtoll(PQgetvalue(res, 0, 4), NULL, 10);
    }
    PQclear(res);
    return GUEST_OK;
}

guest_status guest_ping(guest_ctx *ctx, guest_error *err)
{
    if (!ctx)
        return guest__fail(err, GUEST_ERR_INVALID, "ctx is NULL");
    PGresult *res;
    const guest__stmt s = {.sql = ctx->sql.ping};
    guest_status st = guest__sql_run(ctx, NULL, &s, &res, err);
    PQclear(res);
    return st;
}

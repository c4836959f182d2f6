/* The per-request statements: each is a single round trip. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

/* The windows of a guest creation: the client's address (or /64), then
 * its /56 and /48 when their multipliers are on. */
static size_t create_windows(const guest_config *c, unsigned limits[3])
{
    size_t n = 0;
    uint64_t r = c->guest_rate_limit;
    unsigned f[3] = {1, c->ipv6_prefix56_multiplier,
                     c->ipv6_prefix48_multiplier};
    for (size_t i = 0; i < 3; i++) {
        uint64_t v = r * f[i];
        limits[i] = f[i] ? (unsigned)(v > 2000000000u ? 2000000000u : v) : 0;
        n += limits[i] != 0;
    }
    return n;
}

/* Whether the config turns a creation limit on: the creation statement is
 * then create_limited_sql's, with the client's keys as parameters and the
 * limits' columns in its row. */
static bool creation_limited(const guest_config *c)
{
    return c->guest_rate_limit || c->max_guests;
}

/* The creation statement with the limits the config turns on. Their
 * numbers come from the validated config and go in as literals; the
 * client's keys are parameters: $4 its address (or IPv6 /64), $5 and $6
 * its /56 and /48 (NULL for IPv4), $7 its network (IPv4 /24, IPv6 /48),
 * which the guest row records: that makes the schema's triggers count it
 * (migration 4). */
static char *create_limited_sql(const guest_config *c)
{
    bool rate = c->guest_rate_limit > 0, cap = c->max_guests > 0;
    char window[16];
    snprintf(window, sizeof window, "%u", c->guest_rate_window);
    unsigned limits[3] = {0};
    if (rate)
        create_windows(c, limits);
    /* Why shard rows kept by triggers (migration 4) and not a count: a
     * count of every guest per request is too slow at 100k guests, and
     * one counter row would serialize all creations, on all nodes, on its
     * lock. 32 rows (user_id % 32) spread that lock; reading them is the
     * check. A creation does not see the ones running at the same instant
     * on other connections (their rows are not committed yet), so the cap
     * is overshot by at most as many guests as creations run at once. The
     * network's row works the same way for its share of the cap. */
    int64_t per_net = c->max_guests_per_network
                          ? c->max_guests_per_network
                          : (c->max_guests / 20 > 0 ? c->max_guests / 20 : 1);
    char *sql = guest__asprintf(
        "WITH k AS (SELECT $4::text AS addr, $5::text AS p56,"
        " $6::text AS p48, $7::text AS net),"
        " cap AS (SELECT %s AS ok),",
        cap ? "(SELECT coalesce(sum(live), 0) FROM @.guest_counts) < %1$lld"
              " AND coalesce((SELECT live FROM @.guest_networks"
              " WHERE network = (SELECT net FROM k)), 0) < %2$lld"
            : "true");
    if (sql && cap) {
        char *f =
            guest__asprintf(sql, (long long)c->max_guests, (long long)per_net);
        free(sql);
        sql = f;
    }
    /* The check and the count of each window are one upsert: a denied
     * creation changes nothing in that window (the client's budget refills
     * as it slides), a name clash, retried with another name, is charged
     * like a creation, and each window only counts when the narrower one
     * before it admitted (store/windows.c says why). */
    const char *key[3] = {"(SELECT addr FROM k)", "(SELECT p56 FROM k)",
                          "(SELECT p48 FROM k)"};
    char *ok = guest__strdup("true");
    int prev = -1;
    for (int i = 0; sql && ok && i < 3; i++) {
        if (!limits[i])
            continue;
        char limit[16], cond[96];
        snprintf(limit, sizeof limit, "%u", limits[i]);
        snprintf(cond, sizeof cond, " AND EXISTS (SELECT 1 FROM w%d)", prev);
        char *values =
            guest__window_values("'guest'", key[i], "''::bytea", window);
        char *upsert = guest__window_upsert(limit);
        char *next =
            values && upsert
                ? guest__asprintf(
                      "%s w%d AS (INSERT INTO @.rate_windows AS r (kind,"
                      " client, subject, bucket, window_secs, prev_count,"
                      " curr_count, stale_at) %s WHERE (SELECT ok FROM cap)"
                      " AND %s IS NOT NULL%s %s RETURNING 1),",
                      sql, i, values, key[i], prev >= 0 ? cond : "", upsert)
                : NULL;
        char *nok = guest__asprintf("%s AND (%s IS NULL OR EXISTS (SELECT 1"
                                    " FROM w%d))",
                                    ok, key[i], i);
        free(values);
        free(upsert);
        free(sql);
        free(ok);
        sql = next;
        ok = nok;
        prev = i;
    }
    /* The windows' columns, in the order of the WIN_ enum below. */
    char *cols = guest__strdup("");
    char *joins = guest__strdup("");
    for (int i = 0; cols && joins && i < 3; i++) {
        char *nc, *nj;
        if (limits[i]) {
            nc = guest__asprintf(
                "%s, EXISTS (SELECT 1 FROM w%d), win%d.bucket,"
                " win%d.prev_count, win%d.curr_count, win%d.window_secs",
                cols, i, i, i, i, i);
            nj = guest__asprintf("%s LEFT JOIN @.rate_windows win%d ON"
                                 " win%d.kind = 'guest' AND win%d.client = %s"
                                 " AND win%d.subject = ''",
                                 joins, i, i, i, key[i], i);
        } else {
            nc = guest__asprintf("%s, true, NULL, NULL, NULL, NULL", cols);
            nj = guest__strdup(joins);
        }
        free(cols);
        free(joins);
        cols = nc;
        joins = nj;
    }
    char *full = NULL;
    /* Its columns: the LIMITED_ enum below. */
    if (sql && ok && cols && joins)
        full = guest__asprintf(
            "%s u AS (INSERT INTO @.users (username) SELECT $1"
            " WHERE (SELECT ok FROM cap) AND %s"
            " ON CONFLICT (username) DO NOTHING RETURNING id, username),"
            " g AS (INSERT INTO @.guests (user_id, network)"
            " SELECT id, (SELECT net FROM k) FROM u RETURNING user_id),"
            " s AS (" GUEST__SESSION_INSERT
            " SELECT $2, user_id, " GUEST__SESSION_EXPIRES(
                "$3") " FROM g RETURNING user_id)"
                      " SELECT u.id, u.username, %s, (SELECT ok FROM cap),"
                      " extract(epoch FROM now())::float8,"
                      " floor(extract(epoch FROM now()))::bigint%s"
                      " FROM (SELECT 1) one LEFT JOIN (u JOIN s ON s.user_id = "
                      "u.id)"
                      " ON true%s",
            sql, ok, ok, cols, joins);
    free(sql);
    free(ok);
    free(cols);
    free(joins);
    return full;
}

guest_status guest__sql_build(guest__sql *sql, const guest_config *cfg)
{
    const char *schema = cfg->db_schema;
    /* One statement creates user, guest marker and session together: the
     * data-modifying CTEs run atomically, and ON CONFLICT turns a name clash
     * into zero rows instead of an error, so the caller just retries. */
    bool limited = creation_limited(cfg);
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

/* The columns of the statements below. Each that returns a user begins
 * with its id and name. */
enum { USER_ID, USER_NAME, USER_COLS };
/* GUEST__CREATE_GUEST_SQL and the schema's create_guest(). */
enum { PLAIN_CREATED = USER_COLS };
/* create_limited_sql's: whether every window admitted, whether the cap
 * did, the database's clock (epoch seconds, float), the creation, then
 * WIN_COLS for each of the three windows (create_windows' order). */
enum {
    LIMITED_ADMITTED = USER_COLS,
    LIMITED_CAP_OK,
    LIMITED_NOW,
    LIMITED_CREATED,
    LIMITED_WINDOWS
};
/* A window's: whether it admitted (true when it is off), then its row as
 * the statement saw it (NULL when it had none). */
enum { WIN_ADMITTED, WIN_BUCKET, WIN_PREV, WIN_CURR, WIN_SECS, WIN_COLS };
/* GUEST__RESOLVE_SESSION_SQL and the schema's resolve_session(). */
enum { RESOLVE_IS_GUEST = USER_COLS, RESOLVE_CREATED, RESOLVE_MS_LEFT };

/* @p created_col: the column of the guest's creation time (Unix seconds;
 * NULL for a registered user). */
static void fill_user(const guest_ctx *ctx, guest_user *user,
                      const PGresult *res, bool is_guest, int created_col)
{
    user->id = guest__col_int(res, 0, USER_ID);
    guest__col_copy(res, 0, USER_NAME, user->username, sizeof user->username);
    user->is_guest = is_guest;
    user->created_at = user->expires_at = 0;
    if (is_guest && !guest__col_null(res, 0, created_col)) {
        user->created_at = guest__col_int(res, 0, created_col);
        /* Cleanup deletes a guest once it is older than max_age. */
        user->expires_at = user->created_at + ctx->cfg.max_age;
    }
}

void guest__store_create_params(const guest_ctx *ctx, const char *username,
                                const unsigned char *token_hash,
                                const guest__client_keys *keys,
                                char age[GUEST__INT_BUF], guest__params *p)
{
    const guest_config *c = &ctx->cfg;
    *p = (guest__params){0};
    guest__param_text(p, username);
    guest__param_bin(p, token_hash, GUEST__SHA256_BYTES);
    guest__param_int(p, age, c->max_age);
    if (creation_limited(c)) {
        guest__param_text(p, keys->addr);
        guest__param_text(p, *keys->p56 ? keys->p56 : NULL);
        guest__param_text(p, *keys->p48 ? keys->p48 : NULL);
        guest__param_text(p, keys->network);
    }
}

/* The seconds until the first window that refused @p res's creation lets
 * one more in, as the statement saw it before any concurrent change:
 * close enough for a Retry-After. At least 1. */
static int64_t refused_wait(const guest_config *c, const PGresult *res)
{
    int64_t wait = 1;
    unsigned limits[3] = {0};
    create_windows(c, limits);
    double now = strtod(guest__col_text(res, 0, LIMITED_NOW), NULL);
    for (int i = 0; i < 3; i++) {
        int w = LIMITED_WINDOWS + WIN_COLS * i;
        if (guest__col_bool(res, 0, w + WIN_ADMITTED))
            continue;
        if (!guest__col_null(res, 0, w + WIN_BUCKET))
            wait = guest__window_wait(now, guest__col_int(res, 0, w + WIN_SECS),
                                      guest__col_int(res, 0, w + WIN_BUCKET),
                                      guest__col_int(res, 0, w + WIN_PREV),
                                      guest__col_int(res, 0, w + WIN_CURR),
                                      limits[i]);
        break;
    }
    return wait < 1 ? 1 : wait;
}

void guest__store_create_row(const guest_ctx *ctx, const PGresult *res,
                             guest_user *user, guest__created *outcome,
                             int64_t *retry_after)
{
    const guest_config *c = &ctx->cfg;
    bool limited = creation_limited(c);
    *outcome = GUEST__NAME_CLASH;
    *retry_after = 0;
    bool one = guest__rows(res) == 1;
    if (one && !guest__col_null(res, 0, USER_ID)) {
        *outcome = GUEST__CREATED;
        fill_user(ctx, user, res, true,
                  limited ? LIMITED_CREATED : PLAIN_CREATED);
    } else if (limited && one) {
        if (!guest__col_bool(res, 0, LIMITED_CAP_OK)) {
            *outcome = GUEST__AT_CAPACITY;
        } else if (!guest__col_bool(res, 0, LIMITED_ADMITTED)) {
            *outcome = GUEST__RATE_LIMITED;
            *retry_after = refused_wait(c, res);
        }
    }
}

guest_status guest__store_create_guest(guest_ctx *ctx, const char *username,
                                       const unsigned char *token_hash,
                                       const guest__client_keys *keys,
                                       guest_user *user,
                                       guest__created *outcome,
                                       int64_t *retry_after, guest_error *err)
{
    char age[GUEST__INT_BUF];
    guest__params p;
    guest__store_create_params(ctx, username, token_hash, keys, age, &p);
    PGresult *res;
    const guest__stmt s = {.sql = ctx->sql.create_guest,
                           .prepared = "guest_create",
                           .unprepared = ctx->sql.create_guest_fn,
                           .params = &p};
    guest_status st = guest__sql_run(ctx, NULL, &s, &res, err);
    if (st == GUEST_OK)
        guest__store_create_row(ctx, res, user, outcome, retry_after);
    PQclear(res);
    return st;
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
        else if (guest__rows(res) == 1)
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
        *found = guest__rows(res) == 1;
    }
    int64_t left = 0;
    if (*found && guest__store_resolve_row(ctx, res, user, &left) && ms_left)
        *ms_left = left;
    PQclear(res);
    return GUEST_OK;
}

bool guest__store_resolve_row(const guest_ctx *ctx, const PGresult *res,
                              guest_user *user, int64_t *ms_left)
{
    if (guest__rows(res) != 1)
        return false;
    fill_user(ctx, user, res, guest__col_bool(res, 0, RESOLVE_IS_GUEST),
              RESOLVE_CREATED);
    *ms_left = guest__col_int(res, 0, RESOLVE_MS_LEFT);
    return true;
}

guest_status guest__store_guest_lock(guest_db *tx, int64_t user_id,
                                     bool *still_guest, guest_error *err)
{
    PGresult *res;
    guest_status st = guest__sql_run_id(
        tx->ctx, tx,
        "SELECT user_id FROM @.guests WHERE user_id = $1 FOR UPDATE", user_id,
        &res, err);
    *still_guest = st == GUEST_OK && guest__rows(res) == 1;
    PQclear(res);
    return st;
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

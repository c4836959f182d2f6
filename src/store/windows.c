/* The rate_windows table's sliding-window counters: the SQL that moves a
 * window and counts one more, and the wait until a full one admits the
 * next. Used by guest creation (guests.c) and the login and conversion
 * limits (core/limits.c). */
#include <stdio.h>
#include <stdlib.h>

#include "store/store.h"

/* Why a sliding-window counter (one row per limit and client holding the
 * current and the previous fixed window's counts) and not a log of events:
 * the row count per client is bounded (one per limit, however hard the
 * client pushes), the check and the update are one upsert on the primary
 * key that locks only that client's row, and the estimate
 * prev * (1 - elapsed fraction) + curr never lets a burst at a window edge
 * double the budget, as plain fixed windows do. It is an approximation
 * (it assumes the previous window's events were spread evenly), which is
 * what Cloudflare and others accept for the same reason; an event log is
 * exact but grows with the limit and needs a count per request.
 *
 * The SQL below uses r for the stored row and EXCLUDED for the one being
 * inserted (bucket = floor(epoch / window) of the database's now(), so all
 * nodes agree on the clock). A row written with another window length
 * (the setting changed) counts as empty. */
#define PREV_EFF                                                               \
    "CASE WHEN r.window_secs <> EXCLUDED.window_secs THEN 0"                   \
    " WHEN r.bucket = EXCLUDED.bucket THEN r.prev_count"                       \
    " WHEN r.bucket = EXCLUDED.bucket - 1 THEN r.curr_count ELSE 0 END"
#define CURR_EFF                                                               \
    "CASE WHEN r.window_secs = EXCLUDED.window_secs"                           \
    " AND r.bucket = EXCLUDED.bucket THEN r.curr_count ELSE 0 END"

char *guest__window_upsert(const char *limit_param)
{
    const char *tail =
        "ON CONFLICT (kind, client, subject) DO UPDATE SET"
        " prev_count = " PREV_EFF ", curr_count = " CURR_EFF " + 1,"
        " bucket = EXCLUDED.bucket, window_secs = EXCLUDED.window_secs,"
        " stale_at = EXCLUDED.stale_at";
    if (!limit_param)
        return guest__strdup(tail);
    /* The WHERE is evaluated on the latest row version under its lock, so
     * concurrent requests of one client cannot both take the last unit. */
    return guest__asprintf(
        "%s WHERE (" PREV_EFF ") * (1 - (extract(epoch FROM now())"
        " - EXCLUDED.bucket * EXCLUDED.window_secs)"
        " / EXCLUDED.window_secs) + (" CURR_EFF ") + 1 <= %s",
        tail, limit_param);
}

char *guest__window_values(const char *kind, const char *client,
                           const char *subject, const char *window)
{
    return guest__asprintf(
        "SELECT %1$s, %2$s, %3$s, b, %4$s, 0, 1,"
        " to_timestamp((b + 2) * %4$s) FROM (SELECT"
        " floor(extract(epoch FROM now()) / %4$s)::bigint AS b) t",
        kind, client, subject, window);
}

int64_t guest__window_wait(double now, int64_t window, int64_t bucket,
                           int64_t prev, int64_t curr, int64_t limit)
{
    /* Epoch times are positive: truncation is floor, and no libm. */
    int64_t b = (int64_t)(now / (double)window);
    if (bucket == b - 1) {
        prev = curr;
        curr = 0;
    } else if (bucket != b) {
        prev = curr = 0;
    }
    double w = (double)window;
    double f = (now - (double)b * w) / w;
    double room = (double)limit - 1 - (double)curr;
    if ((double)prev * (1 - f) <= room)
        return 0;
    /* Seconds after the start of bucket b at which the estimate leaves
     * room for one more: later in this bucket while the current count
     * alone fits, else in the next one, once the weight of this bucket's
     * count (then the previous one) has fallen far enough. */
    double at;
    if (room >= 0 && prev > 0) {
        at = w * (1 - room / (double)prev);
    } else {
        double g = curr > 0 ? 1 - (double)(limit - 1) / (double)curr : 0;
        at = w + w * (g > 0 ? g : 0);
    }
    double wait = (double)b * w + at - now;
    if (wait < 1)
        return 1;
    int64_t secs = (int64_t)wait;
    return (double)secs < wait ? secs + 1 : secs;
}

/* Why one statement of chained upserts, not a read before the work and a
 * write after it: a read-then-write limit lets every attempt that arrives
 * before the first write through (32 logins sent at once against a limit
 * of 5 were all hashed). Here each upsert's WHERE is evaluated on the
 * latest version of its row under that row's lock, so the Nth concurrent
 * event sees the N-1 before it. Each window's insert only runs when the one
 * before it admitted (EXISTS on the previous CTE), so the narrowest window
 * listed first is the only one charged for an event it refuses; a wider one
 * is charged by an event a later window refuses, which errs on the strict
 * side. The last columns are each row as the statement's snapshot saw it,
 * for a Retry-After. */
static char *take_sql(const guest__window_limit *w, size_t n)
{
    char *sql = guest__strdup("WITH ");
    for (size_t i = 0; sql && i < n; i++) {
        char client[16], subject[24], window[16], limit[24], prev[48];
        snprintf(client, sizeof client, "$%zu::text", 2 * i + 1);
        snprintf(subject, sizeof subject, "$%zu::bytea", 2 * i + 2);
        snprintf(window, sizeof window, "%u", w[i].window);
        snprintf(limit, sizeof limit, "%llu", (unsigned long long)w[i].limit);
        snprintf(prev, sizeof prev, " WHERE EXISTS (SELECT 1 FROM t%zu)",
                 i - 1);
        char *kind = guest__asprintf("'%s'", w[i].kind);
        char *values =
            kind ? guest__window_values(kind, client, subject, window) : NULL;
        char *upsert = guest__window_upsert(limit);
        char *next =
            values && upsert
                ? guest__asprintf(
                      "%st%zu AS (INSERT INTO @.rate_windows AS r (kind,"
                      " client, subject, bucket, window_secs, prev_count,"
                      " curr_count, stale_at) %s%s %s RETURNING 1), ",
                      sql, i, values, i ? prev : "", upsert)
                : NULL;
        free(kind);
        free(values);
        free(upsert);
        free(sql);
        sql = next;
    }
    char *head = sql ? guest__asprintf("%sone AS (SELECT 1) SELECT"
                                       " extract(epoch FROM now())::float8",
                                       sql)
                     : NULL;
    free(sql);
    sql = head;
    for (size_t i = 0; sql && i < n; i++) {
        char *next = guest__asprintf(
            "%s, EXISTS (SELECT 1 FROM t%zu), w%zu.bucket, w%zu.prev_count,"
            " w%zu.curr_count, w%zu.window_secs",
            sql, i, i, i, i, i);
        free(sql);
        sql = next;
    }
    char *from = sql ? guest__asprintf("%s FROM one", sql) : NULL;
    free(sql);
    sql = from;
    for (size_t i = 0; sql && i < n; i++) {
        char *next = guest__asprintf(
            "%s LEFT JOIN @.rate_windows w%zu ON w%zu.kind = '%s' AND"
            " w%zu.client = $%zu AND w%zu.subject = $%zu",
            sql, i, i, w[i].kind, i, 2 * i + 1, i, 2 * i + 2);
        free(sql);
        sql = next;
    }
    return sql;
}

static void window_params(const guest__window_limit *w, size_t n,
                          guest__params *p)
{
    for (size_t i = 0; i < n; i++) {
        guest__param_text(p, w[i].client);
        if (w[i].subject)
            guest__param_bin(p, w[i].subject, GUEST__SHA256_BYTES);
        else
            guest__param_bin(p, "", 0);
    }
}

guest_status guest__window_take(guest_ctx *ctx, const guest__window_limit *w,
                                size_t n, bool *admitted, int64_t *retry_after,
                                guest_error *err)
{
    *admitted = true;
    *retry_after = 0;
    if (n == 0)
        return GUEST_OK;
    if (n > GUEST__WINDOW_LIMITS_MAX)
        return guest__fail(err, GUEST_ERR_INVALID, "too many windows");
    char *sql = take_sql(w, n);
    if (!sql)
        return guest__fail(err, GUEST_ERR_NOMEM, "out of memory");
    guest__params p = {0};
    window_params(w, n, &p);
    PGresult *res = NULL;
    guest_status st = guest__sql_run(
        ctx, NULL, &(guest__stmt){.tmpl = sql, .params = &p}, &res, err);
    free(sql);
    if (st == GUEST_OK && PQntuples(res) != 1)
        st = guest__fail(err, GUEST_ERR_DB, "rate window take: no row");
    if (st != GUEST_OK) {
        PQclear(res);
        return st;
    }
    double now = strtod(PQgetvalue(res, 0, 0), NULL);
    for (size_t i = 0; i < n; i++) {
        int c = 1 + 5 * (int)i;
        if (PQgetvalue(res, 0, c)[0] == 't')
            continue;
        *admitted = false;
        int64_t wait = 1;
        if (!PQgetisnull(res, 0, c + 1))
            wait = guest__window_wait(
                now, strtoll(PQgetvalue(res, 0, c + 4), NULL, 10),
                strtoll(PQgetvalue(res, 0, c + 1), NULL, 10),
                strtoll(PQgetvalue(res, 0, c + 2), NULL, 10),
                strtoll(PQgetvalue(res, 0, c + 3), NULL, 10),
                (int64_t)w[i].limit);
        /* The snapshot may predate the event that filled the row. */
        *retry_after = wait > 1 ? wait : 1;
        break;
    }
    PQclear(res);
    return GUEST_OK;
}

/* A given-back event only comes off the current bucket: one counted in a
 * bucket that has since ended stays (a slight over-count, on the strict
 * side). */
guest_status guest__window_give_back(guest_ctx *ctx,
                                     const guest__window_limit *w,
                                     const bool *reset, size_t n,
                                     guest_error *err)
{
    if (n == 0)
        return GUEST_OK;
    if (n > GUEST__WINDOW_LIMITS_MAX)
        return guest__fail(err, GUEST_ERR_INVALID, "too many windows");
    char *dv = guest__strdup(""), *uv = guest__strdup("");
    for (size_t i = 0; dv && uv && i < n; i++) {
        char **to = reset[i] ? &dv : &uv;
        char *next = guest__asprintf("%s%s('%s', $%zu::text, $%zu::bytea, %u)",
                                     *to, **to ? ", " : "", w[i].kind,
                                     2 * i + 1, 2 * i + 2, w[i].window);
        free(*to);
        *to = next;
    }
    char *sql = NULL;
    if (dv && uv)
        sql = guest__asprintf(
            "WITH d AS (DELETE FROM @.rate_windows r USING (VALUES %s)"
            " v(kind, client, subject, w) WHERE r.kind = v.kind"
            " AND r.client = v.client AND r.subject = v.subject)"
            " UPDATE @.rate_windows r SET curr_count = r.curr_count - 1"
            " FROM (VALUES %s) v(kind, client, subject, w)"
            " WHERE r.kind = v.kind AND r.client = v.client"
            " AND r.subject = v.subject AND r.window_secs = v.w"
            " AND r.curr_count > 0"
            " AND r.bucket = floor(extract(epoch FROM now()) / v.w)::bigint",
            *dv ? dv : "(NULL::text, NULL::text, NULL::bytea, 0)",
            *uv ? uv : "(NULL::text, NULL::text, NULL::bytea, 0)");
    free(dv);
    free(uv);
    if (!sql)
        return guest__fail(err, GUEST_ERR_NOMEM, "out of memory");
    guest__params p = {0};
    window_params(w, n, &p);
    guest_status st = guest__sql_run(
        ctx, NULL, &(guest__stmt){.tmpl = sql, .params = &p}, NULL, err);
    free(sql);
    return st;
}

/* The estimate of a row now, as the limits compute it (a row written with
 * another window length counts as written). */
#define ESTIMATE_NOW                                                           \
    "CASE WHEN bucket = floor(extract(epoch FROM now()) / window_secs)"        \
    " THEN prev_count * (1 - (extract(epoch FROM now())"                       \
    " - bucket * window_secs) / window_secs) + curr_count"                     \
    " WHEN bucket = floor(extract(epoch FROM now()) / window_secs) - 1"        \
    " THEN curr_count * (1 - (extract(epoch FROM now())"                       \
    " - (bucket + 1) * window_secs) / window_secs) ELSE 0 END"

guest_status guest__windows_each(guest_ctx *ctx, size_t limit,
                                 guest_rate_limit_list_fn fn, void *userdata,
                                 guest_error *err)
{
    char lim[GUEST__INT_BUF];
    guest__params p = {0};
    guest__param_limit(&p, lim, limit);
    PGresult *res = NULL;
    guest_status st = guest__sql_run(
        ctx, NULL,
        &(guest__stmt){.tmpl =
                           "SELECT kind, client, e, window_secs,"
                           " floor(extract(epoch FROM stale_at))::bigint FROM"
                           " (SELECT *, (" ESTIMATE_NOW ")::float8 AS e"
                           " FROM @.rate_windows) w WHERE e > 0"
                           " ORDER BY e DESC, kind, client LIMIT $1::bigint",
                       .params = &p},
        &res, err);
    for (int i = 0; st == GUEST_OK && i < PQntuples(res); i++) {
        guest_rate_limit_info info = {
            .kind = PQgetvalue(res, i, 0),
            .client = PQgetvalue(res, i, 1),
            .count = strtod(PQgetvalue(res, i, 2), NULL),
            .window_s = (unsigned)strtoul(PQgetvalue(res, i, 3), NULL, 10),
            .stale_at = strtoll(PQgetvalue(res, i, 4), NULL, 10)};
        if (!fn(&info, userdata))
            break;
    }
    PQclear(res);
    return st;
}

guest_status guest__windows_delete(guest_ctx *ctx, const char *const *clients,
                                   size_t n, const unsigned char *subject,
                                   uint64_t *deleted, guest_error *err)
{
    guest__params p = {0};
    const guest__stmt by_subject = {
        .tmpl = "DELETE FROM @.rate_windows WHERE kind = 'login_user'"
                " AND subject = $1",
        .params = &p};
    const guest__stmt by_client = {.tmpl = "DELETE FROM @.rate_windows"
                                           " WHERE client IN ($1, $2, $3)",
                                   .params = &p};
    if (subject) {
        guest__param_bin(&p, subject, GUEST__SHA256_BYTES);
    } else {
        if (n < 1 || n > 3)
            return guest__fail(err, GUEST_ERR_INVALID, "1..3 client keys");
        for (size_t i = 0; i < 3; i++)
            guest__param_text(&p, clients[i < n ? i : 0]);
    }
    PGresult *res = NULL;
    guest_status st = guest__sql_run(
        ctx, NULL, subject ? &by_subject : &by_client, &res, err);
    if (st == GUEST_OK && deleted)
        *deleted = strtoull(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    return st;
}

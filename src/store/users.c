/* The users table: the accounts' reads and writes of user rows, and the
 * public listing of users, which needs nothing but the database. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

guest_status guest__store_username_taken(guest_ctx *ctx, guest_db *tx,
                                         const char *username,
                                         const int64_t *except_id, bool *taken,
                                         guest_error *err)
{
    char id[GUEST__INT_BUF];
    guest__params p = {0};
    guest__param_text(&p, username);
    if (except_id)
        guest__param_int(&p, id, *except_id);
    const guest__stmt s = {
        .tmpl = except_id ? "SELECT 1 FROM @.users WHERE username = $1"
                            " AND id <> $2"
                          : "SELECT 1 FROM @.users WHERE username = $1",
        .params = &p};
    PGresult *res;
    guest_status st = guest__sql_run(ctx, tx, &s, &res, err);
    *taken = st == GUEST_OK && guest__rows(res) > 0;
    PQclear(res);
    return st;
}

guest_status guest__store_user_create(guest_ctx *ctx, const char *username,
                                      const char *password, bool *created,
                                      int64_t *id, guest_error *err)
{
    guest__params p = {0};
    guest__param_text(&p, username);
    guest__param_text(&p, password);
    PGresult *res;
    /* ON CONFLICT turns a name claimed meanwhile into zero rows, not an
     * error, and leaves nothing behind. */
    guest_status st = guest__sql_run(
        ctx, NULL,
        &(guest__stmt){
            .tmpl = "INSERT INTO @.users (username, password) VALUES ($1, $2)"
                    " ON CONFLICT (username) DO NOTHING RETURNING id",
            .params = &p},
        &res, err);
    *created = st == GUEST_OK && guest__rows(res) == 1;
    if (*created)
        *id = guest__col_int(res, 0, 0);
    PQclear(res);
    return st;
}

/* The columns of a login's lookup. */
enum { LOGIN_ID, LOGIN_NAME, LOGIN_PASSWORD, LOGIN_SITE_MAX };

guest_status guest__store_login_lookup(guest_ctx *ctx, const char *name,
                                       bool by_email, guest__login_row *row,
                                       guest_error *err)
{
    memset(row, 0, sizeof *row);
    guest__params p = {0};
    guest__param_text(&p, name);
    PGresult *res;
    /* The same statement reads the slowest stored hash's count
     * (password_costs, kept by triggers), so the refusal of an unknown
     * name costs what the slowest known one's costs; the outer join gives
     * that one row for an unknown name too. By e-mail (login_with_email
     * and an '@' typed): only a verified address, in one statement as by
     * name, so both cost the same. */
    static const char by_name[] =
        "SELECT u.id, u.username, u.password,"
        " (SELECT max(iterations) FROM @.password_costs WHERE users > 0)"
        " FROM (SELECT 1) one LEFT JOIN @.users u"
        " ON u.username = $1 AND u.is_active AND NOT EXISTS"
        " (SELECT 1 FROM @.guests g WHERE g.user_id = u.id)";
    static const char by_address[] =
        "SELECT u.id, u.username, u.password,"
        " (SELECT max(iterations) FROM @.password_costs WHERE users > 0)"
        " FROM (SELECT 1) one LEFT JOIN @.users u"
        " ON lower(u.email) = lower($1) AND u.email_verified_at IS NOT NULL"
        " AND u.is_active AND NOT EXISTS"
        " (SELECT 1 FROM @.guests g WHERE g.user_id = u.id)";
    const guest__stmt s = {.tmpl = by_email ? by_address : by_name,
                           .params = &p};
    guest_status st = guest__sql_run(ctx, NULL, &s, &res, err);
    bool one = st == GUEST_OK && guest__rows(res) == 1;
    if (one && !guest__col_null(res, 0, LOGIN_SITE_MAX)) {
        unsigned long long max =
            strtoull(guest__col_text(res, 0, LOGIN_SITE_MAX), NULL, 10);
        row->site_max = max > UINT32_MAX ? UINT32_MAX : (unsigned)max;
    }
    if (one && !guest__col_null(res, 0, LOGIN_ID)) {
        row->id = guest__col_int(res, 0, LOGIN_ID);
        guest__col_copy(res, 0, LOGIN_NAME, row->username,
                        sizeof row->username);
        row->password = guest__col_dup(res, 0, LOGIN_PASSWORD);
        row->found = row->password != NULL;
        if (!row->found)
            st = guest__fail(err, GUEST_ERR_NOMEM, "out of memory");
    }
    PQclear(res);
    return st;
}

guest_status guest__store_user_password_read(guest_ctx *ctx, guest_db *tx,
                                             int64_t user_id, char **password,
                                             guest_error *err)
{
    *password = NULL;
    PGresult *res;
    /* In a transaction the row stays locked: a password changed (or the
     * user disabled or deleted) after this read waits for its end. */
    guest_status st = guest__sql_run_id(
        ctx, tx,
        tx ? "SELECT password FROM @.users WHERE id = $1 AND is_active"
             " FOR NO KEY UPDATE"
           : "SELECT password FROM @.users WHERE id = $1 AND is_active",
        user_id, &res, err);
    if (st == GUEST_OK && guest__rows(res) == 1 &&
        !(*password = guest__col_dup(res, 0, 0)))
        st = guest__fail(err, GUEST_ERR_NOMEM, "out of memory");
    PQclear(res);
    return st;
}

guest_status guest__store_user_password(guest_ctx *ctx, int64_t user_id,
                                        char **password, guest_error *err)
{
    guest_status st =
        guest__store_user_password_read(ctx, NULL, user_id, password, err);
    if (st == GUEST_OK && !*password)
        st = guest__fail(err, GUEST_ERR_AUTH, "no such active user");
    return st;
}

guest_status guest__store_user_logged_in(guest_db *tx, int64_t user_id,
                                         const char *rehash, guest_error *err)
{
    char id[GUEST__INT_BUF];
    guest__params p = {0};
    guest__param_int(&p, id, user_id);
    if (rehash)
        guest__param_text(&p, rehash);
    return guest__sql_run(
        tx->ctx, tx,
        &(guest__stmt){.tmpl = rehash ? "UPDATE @.users SET last_login = now(),"
                                        " password = $2 WHERE id = $1"
                                      : "UPDATE @.users SET last_login = now()"
                                        " WHERE id = $1",
                       .params = &p},
        NULL, err);
}

/* @p tmpl in @p tx with $1 = @p user_id, $2 = @p a and $3 = @p b. *one
 * (may be NULL): it returned exactly one row; *dup (may be NULL): it
 * failed on a unique index (23505). */
static guest_status run_id2(guest_db *tx, const char *tmpl, int64_t user_id,
                            const char *a, const char *b, bool *one, bool *dup,
                            guest_error *err)
{
    char id[GUEST__INT_BUF];
    guest__params p = {0};
    guest__param_int(&p, id, user_id);
    guest__param_text(&p, a);
    guest__param_text(&p, b);
    PGresult *res;
    guest_status st = guest__sql_run(
        tx->ctx, tx, &(guest__stmt){.tmpl = tmpl, .params = &p}, &res, err);
    if (one)
        *one = st == GUEST_OK && guest__rows(res) == 1;
    if (dup)
        *dup = guest__sql_state_is(res, "23505");
    PQclear(res);
    return st;
}

guest_status guest__store_user_password_swap(guest_db *tx, int64_t user_id,
                                             const char *password,
                                             const char *old, bool *changed,
                                             guest_error *err)
{
    return run_id2(tx,
                   "UPDATE @.users SET password = $2 WHERE id = $1"
                   " AND password = $3 AND is_active RETURNING id",
                   user_id, password, old, changed, NULL, err);
}

guest_status guest__store_user_rename(guest_db *tx, int64_t user_id,
                                      const char *username,
                                      const char *password, bool *taken,
                                      guest_error *err)
{
    /* Another guest claiming the same name waits here on the unique index
     * until this transaction ends, then fails with 23505. */
    return run_id2(tx,
                   "UPDATE @.users SET username = $2,"
                   " password = $3, last_login = now() WHERE id = $1",
                   user_id, username, password, NULL, taken, err);
}

guest_status guest__store_user_delete_id(guest_db *tx, int64_t user_id,
                                         guest_error *err)
{
    return guest__sql_run_id(tx->ctx, tx, "DELETE FROM @.users WHERE id = $1",
                             user_id, NULL, err);
}

/* The columns of the listing. */
enum {
    LIST_ID,
    LIST_NAME,
    LIST_IS_GUEST,
    LIST_ACTIVE,
    LIST_JOINED,
    LIST_LAST_LOGIN,
    LIST_EXPIRES
};

guest_status guest_users_list(guest_ctx *ctx, guest_user_kind kind,
                              size_t limit, guest_user_list_fn fn,
                              void *userdata, guest_error *err)
{
    if (!ctx || !fn)
        return guest__fail(err, GUEST_ERR_INVALID, "ctx and fn are required");
    if (kind != GUEST_USERS_ALL && kind != GUEST_USERS_GUESTS &&
        kind != GUEST_USERS_REGISTERED)
        return guest__fail(err, GUEST_ERR_INVALID, "unknown user kind %d",
                           (int)kind);
    char lim[GUEST__INT_BUF], age[GUEST__INT_BUF];
    guest__params p = {0};
    /* One past any bigint is no limit either. */
    guest__param_limit(&p, lim, limit <= (uint64_t)INT64_MAX ? limit : 0);
    guest__param_int(&p, age, ctx->cfg.max_age);
#define LIST_FROM                                                              \
    "SELECT u.id, u.username, g.user_id IS NOT NULL, u.is_active,"             \
    " floor(extract(epoch FROM u.date_joined))::bigint,"                       \
    " floor(extract(epoch FROM u.last_login))::bigint,"                        \
    " floor(extract(epoch FROM g.created_at))::bigint + $2::bigint"            \
    " FROM @.users u LEFT JOIN @.guests g ON g.user_id = u.id"
#define LIST_ORDER " ORDER BY u.date_joined DESC, u.id DESC LIMIT $1::bigint"
    static const char *const tmpl[] = {
        [GUEST_USERS_ALL] = LIST_FROM LIST_ORDER,
        [GUEST_USERS_GUESTS] =
            LIST_FROM " WHERE g.user_id IS NOT NULL" LIST_ORDER,
        [GUEST_USERS_REGISTERED] =
            LIST_FROM " WHERE g.user_id IS NULL" LIST_ORDER,
    };
#undef LIST_FROM
#undef LIST_ORDER
    PGresult *res;
    guest_status st = guest__sql_run(
        ctx, NULL, &(guest__stmt){.tmpl = tmpl[kind], .params = &p}, &res, err);
    int rows = st == GUEST_OK ? guest__rows(res) : 0;
    for (int i = 0; i < rows; i++) {
        /* NULL times (never logged in, no guest) read as 0. */
        guest_user_info u = {
            .id = guest__col_int(res, i, LIST_ID),
            .username = guest__col_text(res, i, LIST_NAME),
            .is_guest = guest__col_bool(res, i, LIST_IS_GUEST),
            .is_active = guest__col_bool(res, i, LIST_ACTIVE),
            .date_joined = guest__col_int(res, i, LIST_JOINED),
            .last_login = guest__col_int(res, i, LIST_LAST_LOGIN),
            .expires_at = guest__col_int(res, i, LIST_EXPIRES),
        };
        if (!fn(&u, userdata))
            break;
    }
    PQclear(res);
    return st;
}

/* @p tmpl with $1 = @p username on a pooled connection; *one: it returned
 * exactly one row, which *res holds (the caller clears it). */
static guest_status by_name(guest_ctx *ctx, const char *tmpl,
                            const char *username, PGresult **res, bool *one,
                            guest_error *err)
{
    guest__params p = {0};
    guest__param_text(&p, username);
    guest_status st = guest__sql_run(
        ctx, NULL, &(guest__stmt){.tmpl = tmpl, .params = &p}, res, err);
    *one = st == GUEST_OK && guest__rows(*res) == 1;
    return st;
}

guest_status guest__store_user_delete(guest_ctx *ctx, const char *username,
                                      bool *found, int64_t *id,
                                      guest_error *err)
{
    PGresult *res;
    /* The foreign keys cascade to the guests and sessions rows. */
    guest_status st = by_name(ctx,
                              "DELETE FROM @.users WHERE username = $1"
                              " RETURNING id",
                              username, &res, found, err);
    if (*found)
        *id = guest__col_int(res, 0, 0);
    PQclear(res);
    return st;
}

guest_status guest__store_user_is_guest(guest_ctx *ctx, const char *username,
                                        bool *found, bool *guest,
                                        guest_error *err)
{
    PGresult *res;
    guest_status st = by_name(ctx,
                              "SELECT EXISTS (SELECT 1 FROM @.guests g"
                              " WHERE g.user_id = u.id)"
                              " FROM @.users u WHERE u.username = $1",
                              username, &res, found, err);
    *guest = *found && guest__col_bool(res, 0, 0);
    PQclear(res);
    return st;
}

guest_status guest__store_user_update(guest_db *tx, guest__user_field field,
                                      const char *username, const char *value,
                                      bool *found, int64_t *id,
                                      guest_error *err)
{
    /* A guest never gets a password, also when the name became one
     * meanwhile (deleted and made again as a guest). */
    static const char *const tmpl[] = {
        [GUEST__USER_ACTIVE] = "UPDATE @.users SET is_active = $2::boolean"
                               " WHERE username = $1 RETURNING id",
        [GUEST__USER_PASSWORD] =
            "UPDATE @.users u SET password = $2"
            " WHERE u.username = $1 AND NOT EXISTS (SELECT 1"
            " FROM @.guests g WHERE g.user_id = u.id)"
            " RETURNING u.id",
    };
    guest__params p = {0};
    guest__param_text(&p, username);
    guest__param_text(&p, value);
    PGresult *res;
    guest_status st = guest__sql_run(
        tx->ctx, tx, &(guest__stmt){.tmpl = tmpl[field], .params = &p}, &res,
        err);
    *found = st == GUEST_OK && guest__rows(res) == 1;
    if (*found)
        *id = guest__col_int(res, 0, 0);
    PQclear(res);
    return st;
}

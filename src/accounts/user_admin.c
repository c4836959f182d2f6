/* Managing users by name: listing, deleting, setting a password,
 * deactivating and activating. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "accounts/accounts.h"

/* A name no user can have (too long, bad UTF-8) is simply not found,
 * without sending PostgreSQL bytes it would reject. */
static bool plausible_name(const char *username)
{
    return *username &&
           guest__utf8_chars(username) <= GUEST_USERNAME_MAX_CHARS &&
           guest__utf8_valid(username, strlen(username));
}

static guest_status not_found(guest_error *err, const char *username)
{
    return guest__fail(err, GUEST_ERR_NOT_FOUND, "no user named \"%.160s\"",
                       username);
}

guest_status guest_list_users(guest_ctx *ctx, guest_user_kind kind,
                              size_t limit, guest_user_list_fn fn,
                              void *userdata, guest_error *err)
{
    if (!ctx || !fn)
        return guest__fail(err, GUEST_ERR_INVALID, "ctx and fn are required");
    if (kind != GUEST_USERS_ALL && kind != GUEST_USERS_GUESTS &&
        kind != GUEST_USERS_REGISTERED)
        return guest__fail(err, GUEST_ERR_INVALID, "unknown user kind %d",
                           (int)kind);
    char lim[32], age[32];
    snprintf(lim, sizeof lim, "%zu", limit);
    snprintf(age, sizeof age, "%lld", (long long)ctx->cfg.max_age);
    guest__params p = {0};
    /* A NULL LIMIT is no limit. */
    guest__param_text(&p, limit && limit <= (uint64_t)INT64_MAX ? lim : NULL);
    guest__param_text(&p, age);
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
    if (st != GUEST_OK) {
        PQclear(res);
        return st;
    }
    int rows = PQntuples(res);
    for (int i = 0; i < rows; i++) {
        guest_user_info u = {
            .id = strtoll(PQgetvalue(res, i, 0), NULL, 10),
            .username = PQgetvalue(res, i, 1),
            .is_guest = PQgetvalue(res, i, 2)[0] == 't',
            .is_active = PQgetvalue(res, i, 3)[0] == 't',
            .date_joined = strtoll(PQgetvalue(res, i, 4), NULL, 10),
            .last_login = PQgetisnull(res, i, 5)
                              ? 0
                              : strtoll(PQgetvalue(res, i, 5), NULL, 10),
            .expires_at = PQgetisnull(res, i, 6)
                              ? 0
                              : strtoll(PQgetvalue(res, i, 6), NULL, 10),
        };
        if (!fn(&u, userdata))
            break;
    }
    PQclear(res);
    return GUEST_OK;
}

guest_status guest_user_delete(guest_ctx *ctx, const char *username,
                               int64_t *id_out, guest_error *err)
{
    if (!ctx || !username)
        return guest__fail(err, GUEST_ERR_INVALID,
                           "ctx and username are required");
    if (!plausible_name(username))
        return not_found(err, username);
    guest__params p = {0};
    guest__param_text(&p, username);
    PGresult *res;
    /* The foreign keys cascade to the guests and sessions rows. */
    guest_status st = guest__sql_run(
        ctx, NULL,
        &(guest__stmt){.tmpl = "DELETE FROM @.users WHERE username = $1"
                               " RETURNING id",
                       .params = &p},
        &res, err);
    if (st == GUEST_OK && PQntuples(res) == 0) {
        st = not_found(err, username);
    } else if (st == GUEST_OK) {
        int64_t id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        guest__session_cache_drop_user(ctx, id);
        if (id_out)
            *id_out = id;
    }
    PQclear(res);
    return st;
}

/* Every session of user @p id, in @p tx. A statement of its own after the
 * UPDATE that locked the user: it then sees a session that a login which
 * held the row lock first committed meanwhile, which one statement with
 * both (one snapshot) would miss. */
static guest_status end_sessions(guest_db *tx, const char *id, guest_error *err)
{
    guest__params p = {0};
    guest__param_text(&p, id);
    return guest__sql_run(
        tx->ctx, tx,
        &(guest__stmt){.tmpl = "DELETE FROM @.sessions WHERE user_id = $1",
                       .params = &p},
        NULL, err);
}

/* Runs @p update (parameters $1 = @p key, $2 = @p value; it returns the
 * id of the row it changed) and, when @p end, deletes that user's
 * sessions, in one transaction. *found says whether a row changed. */
static guest_status update_user(guest_ctx *ctx, const char *update,
                                const char *key, const char *value, bool end,
                                bool *found, guest_error *err)
{
    guest_db tx;
    guest_status st = guest__tx_begin(ctx, &tx, err);
    if (st != GUEST_OK)
        return st;
    guest__params p = {0};
    guest__param_text(&p, key);
    guest__param_text(&p, value);
    PGresult *res;
    st = guest__sql_run(ctx, &tx, &(guest__stmt){.tmpl = update, .params = &p},
                        &res, err);
    *found = st == GUEST_OK && PQntuples(res) == 1;
    char id[32] = "";
    if (*found)
        snprintf(id, sizeof id, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    if (st == GUEST_OK && *found && end)
        st = end_sessions(&tx, id, err);
    if (st == GUEST_OK) {
        st = guest__tx_commit(&tx, err);
        if (st == GUEST_OK && *found && end)
            guest__session_cache_drop_user(ctx, strtoll(id, NULL, 10));
        return st;
    }
    guest__tx_abort(&tx);
    return st;
}

guest_status guest_user_set_active(guest_ctx *ctx, const char *username,
                                   bool active, guest_error *err)
{
    if (!ctx || !username)
        return guest__fail(err, GUEST_ERR_INVALID,
                           "ctx and username are required");
    if (!plausible_name(username))
        return not_found(err, username);
    bool found;
    guest_status st = update_user(
        ctx,
        "UPDATE @.users SET is_active = $2::boolean WHERE username = $1"
        " RETURNING id",
        username, active ? "true" : "false", !active, &found, err);
    if (st == GUEST_OK && !found)
        return not_found(err, username);
    return st;
}

guest_status guest_user_set_password(guest_ctx *ctx, const char *username,
                                     const char *password,
                                     guest_form_errors *errors,
                                     guest_error *err)
{
    guest_form_errors local;
    if (!errors)
        errors = &local;
    errors->count = 0;
    if (!ctx || !username)
        return guest__fail(err, GUEST_ERR_INVALID,
                           "ctx and username are required");
    if (!plausible_name(username))
        return not_found(err, username);
    /* Who it is first: no hash is spent on a name that does not exist. */
    guest__params p = {0};
    guest__param_text(&p, username);
    PGresult *res;
    guest_status st = guest__sql_run(
        ctx, NULL,
        &(guest__stmt){.tmpl = "SELECT EXISTS (SELECT 1 FROM @.guests g"
                               " WHERE g.user_id = u.id)"
                               " FROM @.users u WHERE u.username = $1",
                       .params = &p},
        &res, err);
    bool found = st == GUEST_OK && PQntuples(res) == 1;
    bool guest = found && PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    if (st != GUEST_OK)
        return st;
    if (!found)
        return not_found(err, username);
    if (guest)
        return guest__fail(err, GUEST_ERR_INVALID,
                           "\"%.160s\" is a guest: guests have no password "
                           "(convert the guest first)",
                           username);
    if (!password || !*password) {
        guest_form_errors_add(errors, "password", GUEST__MSG_REQUIRED);
        return GUEST_ERR_VALIDATION;
    }
    st = guest_password_validate(ctx, username, password, "password", errors);
    if (st != GUEST_OK)
        return st;
    char hash[GUEST_PASSWORD_HASH_BUF];
    st = guest__hash_password(ctx, password, hash, sizeof hash);
    if (st == GUEST_OK) {
        /* A guest never gets a password, also when the name became one
         * meanwhile (deleted and made again as a guest). */
        st = update_user(ctx,
                         "UPDATE @.users u SET password = $2"
                         " WHERE u.username = $1 AND NOT EXISTS (SELECT 1"
                         " FROM @.guests g WHERE g.user_id = u.id)"
                         " RETURNING u.id",
                         username, hash, true, &found, err);
        if (st == GUEST_OK && !found)
            st = not_found(err, username);
    }
    OPENSSL_cleanse(hash, sizeof hash);
    return st;
}

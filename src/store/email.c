/* Addresses on users (and the public guest_user_email) and the links sent
 * to them (email_tokens): a reset link keeps a fingerprint of the password
 * it would replace, so that any password change kills it without a
 * statement of its own. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

/* Who may get a reset link: a registered, active user whose address is
 * verified. */
#define RESETTABLE                                                             \
    "u.email_verified_at IS NOT NULL AND u.is_active AND NOT EXISTS"           \
    " (SELECT 1 FROM @.guests g WHERE g.user_id = u.id)"

/* A link is live: not used, not expired, and a reset link's password is
 * still the one it was made for. */
#define LIVE                                                                   \
    "t.used_at IS NULL AND t.expires_at > now() AND u.is_active AND"           \
    " (t.kind <> 'reset' OR t.password_fp = sha256(convert_to(u.password, "    \
    "'UTF8')))"

static void copy_out(char *out, size_t size, const char *v)
{
    if (out && size)
        snprintf(out, size, "%s", v);
}

guest_status guest__store_reset_target(guest_db *tx, const char *email,
                                       bool *found, int64_t *user_id,
                                       char username[GUEST_USERNAME_BUF],
                                       guest_error *err)
{
    guest__params p = {0};
    guest__param_text(&p, email);
    PGresult *res = NULL;
    guest_status st = guest__sql_run(
        tx->ctx, tx,
        &(guest__stmt){.tmpl =
                           "SELECT u.id, u.username FROM @.users u"
                           " WHERE lower(u.email) = lower($1) AND " RESETTABLE,
                       .params = &p},
        &res, err);
    *found = st == GUEST_OK && PQntuples(res) == 1;
    if (*found) {
        *user_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        copy_out(username, GUEST_USERNAME_BUF, PQgetvalue(res, 0, 1));
    }
    PQclear(res);
    return st;
}

guest_status guest__store_token_put(guest_db *tx, const unsigned char *hash,
                                    const char *kind, int64_t user_id,
                                    const char *email, unsigned ttl_s,
                                    guest_error *err)
{
    char id[GUEST__INT_BUF], ttl[16];
    snprintf(ttl, sizeof ttl, "%u", ttl_s);
    guest__params p = {0};
    guest__param_bin(&p, hash, GUEST__SHA256_BYTES);
    guest__param_text(&p, kind);
    guest__param_int(&p, id, user_id);
    guest__param_text(&p, email);
    guest__param_text(&p, ttl);
    return guest__sql_run(
        tx->ctx, tx,
        &(guest__stmt){
            .tmpl = "INSERT INTO @.email_tokens (token_hash, kind, user_id,"
                    " email, password_fp, expires_at) SELECT $1, $2, u.id, $4,"
                    " CASE WHEN $2 = 'reset' THEN "
                    "sha256(convert_to(u.password, 'UTF8'))"
                    " END, now() + make_interval(secs => $5::integer)"
                    " FROM @.users u WHERE u.id = $3",
            .params = &p},
        NULL, err);
}

/* A statement on one link, its hash as $1 and its kind as $2, on @p tx
 * (NULL: a pooled connection). */
static guest_status token_run(guest_ctx *ctx, guest_db *tx,
                              const unsigned char *hash, const char *kind,
                              const char *tmpl, PGresult **res,
                              guest_error *err)
{
    guest__params p = {0};
    guest__param_bin(&p, hash, GUEST__SHA256_BYTES);
    guest__param_text(&p, kind);
    return guest__sql_run(ctx, tx, &(guest__stmt){.tmpl = tmpl, .params = &p},
                          res, err);
}

guest_status guest__store_token_peek(guest_ctx *ctx, const unsigned char *hash,
                                     const char *kind, bool *found,
                                     char username[GUEST_USERNAME_BUF],
                                     guest_error *err)
{
    PGresult *res = NULL;
    guest_status st =
        token_run(ctx, NULL, hash, kind,
                  "SELECT u.username FROM @.email_tokens t"
                  " JOIN @.users u ON u.id = t.user_id"
                  " WHERE t.token_hash = $1 AND t.kind = $2 AND " LIVE,
                  &res, err);
    *found = st == GUEST_OK && PQntuples(res) == 1;
    if (*found)
        copy_out(username, GUEST_USERNAME_BUF, PQgetvalue(res, 0, 0));
    PQclear(res);
    return st;
}

guest_status guest__store_token_use(guest_db *tx, const unsigned char *hash,
                                    const char *kind, guest__token_use *out,
                                    guest_error *err)
{
    PGresult *res = NULL;
    /* The update takes the row's lock and re-checks it: of two uses at
     * once, the second finds it used. The user row is locked too, so the
     * password it was made for cannot change before the commit. */
    guest_status st =
        token_run(tx->ctx, tx, hash, kind,
                  "WITH u AS (SELECT u.* FROM @.users u JOIN @.email_tokens t"
                  " ON t.user_id = u.id WHERE t.token_hash = $1"
                  " FOR UPDATE OF u)"
                  " UPDATE @.email_tokens t SET used_at = now() FROM u"
                  " WHERE t.token_hash = $1 AND t.kind = $2"
                  " AND t.user_id = u.id AND " LIVE
                  " RETURNING u.id, u.username, t.email,"
                  " coalesce(u.email, ''), u.email_verified_at IS NOT NULL",
                  &res, err);
    out->found = st == GUEST_OK && PQntuples(res) == 1;
    if (out->found) {
        out->user_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        copy_out(out->username, sizeof out->username, PQgetvalue(res, 0, 1));
        copy_out(out->email, sizeof out->email, PQgetvalue(res, 0, 2));
        copy_out(out->old_email, sizeof out->old_email, PQgetvalue(res, 0, 3));
        out->old_verified = PQgetvalue(res, 0, 4)[0] == 't';
    }
    PQclear(res);
    return st;
}

guest_status guest__store_password_reset(guest_db *tx, int64_t user_id,
                                         const char *hash, guest_error *err)
{
    char id[GUEST__INT_BUF];
    guest__params p = {0};
    guest__param_int(&p, id, user_id);
    guest__param_text(&p, hash);
    /* Every session ends: whoever is logged in (maybe the one who knew
     * the old password) must log in again. */
    return guest__sql_run(tx->ctx, tx,
                          &(guest__stmt){.tmpl =
                                             "WITH s AS (DELETE FROM @.sessions"
                                             " WHERE user_id = $1)"
                                             " UPDATE @.users SET password = $2"
                                             " WHERE id = $1",
                                         .params = &p},
                          NULL, err);
}

guest_status guest__store_email_set(guest_db *tx, int64_t user_id,
                                    const char *email, bool verified,
                                    guest_error *err)
{
    char id[GUEST__INT_BUF];
    guest__params p = {0};
    guest__param_int(&p, id, user_id);
    guest__param_text(&p, email);
    guest__param_text(&p, verified ? "t" : "f");
    return guest__sql_run_unique(
        tx,
        &(guest__stmt){.tmpl = "UPDATE @.users SET email = $2,"
                               " email_verified_at = CASE WHEN $3::boolean"
                               " THEN now() END WHERE id = $1",
                       .params = &p},
        GUEST_ERR_VALIDATION, "another user has that address", err);
}

guest_status guest__store_email_taken(guest_db *tx, const char *email,
                                      int64_t except_user, bool *taken,
                                      guest_error *err)
{
    char id[GUEST__INT_BUF];
    guest__params p = {0};
    guest__param_text(&p, email);
    guest__param_int(&p, id, except_user);
    PGresult *res = NULL;
    guest_status st = guest__sql_run(
        tx->ctx, tx,
        &(guest__stmt){.tmpl = "SELECT 1 FROM @.users WHERE lower(email) ="
                               " lower($1) AND id <> $2",
                       .params = &p},
        &res, err);
    *taken = st == GUEST_OK && PQntuples(res) > 0;
    PQclear(res);
    return st;
}

guest_status guest_user_email(guest_ctx *ctx, int64_t user_id, char *buf,
                              size_t size, bool *verified, guest_error *err)
{
    if (!ctx || !buf || !size)
        return guest__fail(err, GUEST_ERR_INVALID, "NULL argument");
    char id[GUEST__INT_BUF];
    guest__params p = {0};
    guest__param_int(&p, id, user_id);
    PGresult *res = NULL;
    guest_status st = guest__sql_run(
        ctx, NULL,
        &(guest__stmt){.tmpl = "SELECT coalesce(email, ''),"
                               " email_verified_at IS NOT NULL, password"
                               " FROM @.users WHERE id = $1",
                       .params = &p},
        &res, err);
    if (st == GUEST_OK && PQntuples(res) != 1)
        st = guest__fail(err, GUEST_ERR_NOT_FOUND, "no such user");
    if (st == GUEST_OK) {
        copy_out(buf, size, PQgetvalue(res, 0, 0));
        if (verified)
            *verified = PQgetvalue(res, 0, 1)[0] == 't';
    }
    PQclear(res);
    return st;
}

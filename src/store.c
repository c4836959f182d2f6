/* The per-request statements: each is a single round trip. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

guest_status guest__sql_build(guest__sql *sql, const char *schema)
{
    /* One statement creates user, guest marker and session together: the
     * data-modifying CTEs run atomically, and ON CONFLICT turns a name clash
     * into zero rows instead of an error, so the caller just retries. */
    sql->create_guest = guest__schema_sql(
        "WITH u AS (INSERT INTO @.users (username) VALUES ($1)"
        " ON CONFLICT (username) DO NOTHING RETURNING id, username),"
        " g AS (INSERT INTO @.guests (user_id) SELECT id FROM u"
        " RETURNING user_id),"
        " s AS (INSERT INTO @.sessions (token_hash, user_id,"
        " expires_at) SELECT $2, user_id, now() + make_interval(secs => $3)"
        " FROM g RETURNING user_id)"
        " SELECT u.id, u.username FROM u JOIN s ON s.user_id = u.id",
        schema);
    sql->resolve_session = guest__schema_sql(
        "SELECT u.id, u.username, g.user_id IS NOT NULL"
        " FROM @.sessions s"
        " JOIN @.users u ON u.id = s.user_id"
        " LEFT JOIN @.guests g ON g.user_id = u.id"
        " WHERE s.token_hash = $1 AND s.expires_at > now() AND u.is_active",
        schema);
    sql->ping = guest__strdup("SELECT 1");
    if (!sql->create_guest || !sql->resolve_session || !sql->ping) {
        guest__sql_free(sql);
        return GUEST_ERR_NOMEM;
    }
    return GUEST_OK;
}

void guest__sql_free(guest__sql *sql)
{
    free(sql->create_guest);
    free(sql->resolve_session);
    free(sql->ping);
    memset(sql, 0, sizeof *sql);
}

static void fill_user(guest_user *user, PGresult *res, bool is_guest)
{
    user->id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    snprintf(user->username, sizeof user->username, "%s",
             PQgetvalue(res, 0, 1));
    user->is_guest = is_guest;
}

guest_status guest__store_create_guest(guest_ctx *ctx, const char *username,
                                       const unsigned char *token_hash,
                                       guest_user *user, bool *created,
                                       guest_error *err)
{
    char age[32];
    snprintf(age, sizeof age, "%lld", (long long)ctx->cfg.max_age);
    guest__params p = {0};
    guest__param_text(&p, username);
    guest__param_bin(&p, token_hash, GUEST__SHA256_BYTES);
    guest__param_text(&p, age);
    PGresult *res;
    guest_status st = guest__db_exec_prepared(
        ctx, "guest_create", ctx->sql.create_guest, &p, &res, err);
    if (st != GUEST_OK) {
        PQclear(res);
        return st;
    }
    *created = PQntuples(res) == 1;
    if (*created)
        fill_user(user, res, true);
    PQclear(res);
    return GUEST_OK;
}

guest_status guest__store_resolve(guest_ctx *ctx,
                                  const unsigned char *token_hash,
                                  guest_user *user, bool *found,
                                  guest_error *err)
{
    guest__params p = {0};
    guest__param_bin(&p, token_hash, GUEST__SHA256_BYTES);
    PGresult *res;
    guest_status st = guest__db_exec_prepared(
        ctx, "guest_resolve", ctx->sql.resolve_session, &p, &res, err);
    if (st != GUEST_OK) {
        PQclear(res);
        return st;
    }
    *found = PQntuples(res) == 1;
    if (*found)
        fill_user(user, res, PQgetvalue(res, 0, 2)[0] == 't');
    PQclear(res);
    return GUEST_OK;
}

guest_status guest_ping(guest_ctx *ctx, guest_error *err)
{
    if (!ctx)
        return guest__fail(err, GUEST_ERR_INVALID, "ctx is NULL");
    PGresult *res;
    guest_status st = guest__db_exec(ctx, ctx->sql.ping, NULL, &res, err);
    PQclear(res);
    return st;
}

/* The session rows: the one place their statements are written. Each is
 * one round trip; the row that a guest creation or an identity sign-in
 * writes together with others comes from the same text,
 * GUEST__SESSION_INSERT. */
#include <stdio.h>
#include <stdlib.h>

#include "store/store.h"

guest_status guest__store_session_insert(guest_db *tx, int64_t user_id,
                                         const unsigned char *token_hash,
                                         int64_t max_age, guest_error *err)
{
    char id[GUEST__INT_BUF], age[GUEST__INT_BUF];
    guest__params p = {0};
    guest__param_bin(&p, token_hash, GUEST__SHA256_BYTES);
    guest__param_int(&p, id, user_id);
    guest__param_int(&p, age, max_age);
    return guest__sql_run(
        tx->ctx, tx,
        &(guest__stmt){.tmpl = GUEST__SESSION_INSERT
                       " VALUES ($1, $2, " GUEST__SESSION_EXPIRES("$3") ")",
                       .params = &p},
        NULL, err);
}

guest_status guest__store_session_delete(guest_ctx *ctx, guest_db *tx,
                                         const unsigned char *token_hash,
                                         guest_error *err)
{
    guest__params p = {0};
    guest__param_bin(&p, token_hash, GUEST__SHA256_BYTES);
    return guest__sql_run(
        ctx, tx,
        &(guest__stmt){.tmpl = "DELETE FROM @.sessions WHERE token_hash = $1",
                       .params = &p},
        NULL, err);
}

guest_status guest__store_sessions_end(guest_db *tx, int64_t user_id,
                                       guest_error *err)
{
    char id[GUEST__INT_BUF];
    guest__params p = {0};
    guest__param_int(&p, id, user_id);
    return guest__sql_run(
        tx->ctx, tx,
        &(guest__stmt){.tmpl = "DELETE FROM @.sessions WHERE user_id = $1",
                       .params = &p},
        NULL, err);
}

guest_status guest__store_session_replace(guest_db *tx, int64_t user_id,
                                          const unsigned char *old_hash,
                                          bool all,
                                          const unsigned char *new_hash,
                                          int64_t max_age, guest_error *err)
{
    char id[GUEST__INT_BUF], age[GUEST__INT_BUF];
    guest__params p = {0};
    guest__param_int(&p, id, user_id);
    guest__param_bin(&p, new_hash, GUEST__SHA256_BYTES);
    guest__param_int(&p, age, max_age);
    guest__param_bin(&p, old_hash ? old_hash : new_hash, GUEST__SHA256_BYTES);
    guest__param_text(&p, all ? "t" : "f");
    return guest__sql_run(
        tx->ctx, tx,
        &(guest__stmt){
            .tmpl = "WITH old AS (DELETE FROM @.sessions WHERE token_hash = $4"
                    " OR ($5::boolean AND user_id = $1)),"
                    " seen AS (UPDATE @.users SET last_login = now()"
                    " WHERE id = $1) " GUEST__SESSION_INSERT
                    " VALUES ($2, $1, " GUEST__SESSION_EXPIRES("$3") ")",
            .params = &p},
        NULL, err);
}

guest_status guest__store_sessions_convert(guest_db *tx, int64_t user_id,
                                           const unsigned char *new_hash,
                                           int64_t max_age, guest_error *err)
{
    char id[GUEST__INT_BUF], age[GUEST__INT_BUF];
    guest__params p = {0};
    guest__param_int(&p, id, user_id);
    guest__param_bin(&p, new_hash, GUEST__SHA256_BYTES);
    guest__param_int(&p, age, max_age);
    /* Every session of the guest goes, so a token copied before the
     * conversion never reaches the account. */
    return guest__sql_run(
        tx->ctx, tx,
        &(guest__stmt){.tmpl = "WITH g AS (DELETE FROM @.guests"
                               " WHERE user_id = $1 RETURNING user_id),"
                               " old AS (DELETE FROM @.sessions"
                               " WHERE user_id = $1) " GUEST__SESSION_INSERT
                               " SELECT $2, user_id, " GUEST__SESSION_EXPIRES(
                                   "$3") " FROM g",
                       .params = &p},
        NULL, err);
}

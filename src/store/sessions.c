/* The session rows: the one place their statements are written. Each is
 * one round trip; the row that a guest creation or an identity sign-in
 * writes together with others comes from the same text,
 * GUEST__SESSION_INSERT. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

/* The parameters every session insert begins with: $1 the user, $2 the
 * new session's token hash, $3 its lifetime in seconds. */
typedef struct new_session {
    guest__params p;
    char id[GUEST__INT_BUF];
    char age[GUEST__INT_BUF];
} new_session;

static void new_session_params(new_session *s, int64_t user_id,
                               const unsigned char *token_hash, int64_t max_age)
{
    memset(&s->p, 0, sizeof s->p);
    guest__param_int(&s->p, s->id, user_id);
    guest__param_bin(&s->p, token_hash, GUEST__SHA256_BYTES);
    guest__param_int(&s->p, s->age, max_age);
}

/* @p tmpl, an insert that takes just those three parameters. */
static guest_status insert(guest_db *tx, const char *tmpl, int64_t user_id,
                           const unsigned char *token_hash, int64_t max_age,
                           guest_error *err)
{
    new_session s;
    new_session_params(&s, user_id, token_hash, max_age);
    return guest__sql_run(
        tx->ctx, tx, &(guest__stmt){.tmpl = tmpl, .params = &s.p}, NULL, err);
}

guest_status guest__store_session_insert(guest_db *tx, int64_t user_id,
                                         const unsigned char *token_hash,
                                         int64_t max_age, guest_error *err)
{
    return insert(tx,
                  GUEST__SESSION_INSERT
                  " VALUES ($2, $1, " GUEST__SESSION_EXPIRES("$3") ")",
                  user_id, token_hash, max_age, err);
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
    return guest__sql_run_id(tx->ctx, tx,
                             "DELETE FROM @.sessions WHERE user_id = $1",
                             user_id, NULL, err);
}

guest_status guest__store_session_replace(guest_db *tx, int64_t user_id,
                                          const unsigned char *old_hash,
                                          bool all,
                                          const unsigned char *new_hash,
                                          int64_t max_age, guest_error *err)
{
    new_session s;
    new_session_params(&s, user_id, new_hash, max_age);
    guest__param_bin(&s.p, old_hash ? old_hash : new_hash, GUEST__SHA256_BYTES);
    guest__param_text(&s.p, all ? "t" : "f");
    return guest__sql_run(
        tx->ctx, tx,
        &(guest__stmt){
            .tmpl = "WITH old AS (DELETE FROM @.sessions WHERE token_hash = $4"
                    " OR ($5::boolean AND user_id = $1)),"
                    " seen AS (UPDATE @.users SET last_login = now()"
                    " WHERE id = $1) " GUEST__SESSION_INSERT
                    " VALUES ($2, $1, " GUEST__SESSION_EXPIRES("$3") ")",
            .params = &s.p},
        NULL, err);
}

guest_status guest__store_sessions_convert(guest_db *tx, int64_t user_id,
                                           const unsigned char *new_hash,
                                           int64_t max_age, guest_error *err)
{
    /* Every session of the guest goes, so a token copied before the
     * conversion never reaches the account. */
    return insert(
        tx,
        "WITH g AS (DELETE FROM @.guests"
        " WHERE user_id = $1 RETURNING user_id),"
        " old AS (DELETE FROM @.sessions"
        " WHERE user_id = $1) " GUEST__SESSION_INSERT
        " SELECT $2, user_id, " GUEST__SESSION_EXPIRES("$3") " FROM g",
        user_id, new_hash, max_age, err);
}

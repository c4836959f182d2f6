/* The rows of sign-ins through identity providers: identities, pending
 * flows, and the user rows such a sign-in writes (its session row:
 * sessions.c); with the public calls that need nothing but these rows:
 * listing and unlinking identities, guest_user_lookup, the flows. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

guest_status guest__store_identity_owner(guest_ctx *ctx, guest_db *tx,
                                         const char *issuer,
                                         const char *subject, bool *found,
                                         int64_t *user_id, bool *active,
                                         char username[GUEST_USERNAME_BUF],
                                         guest_error *err)
{
    guest__params p = {0};
    guest__param_text(&p, issuer);
    guest__param_text(&p, subject);
    PGresult *res = NULL;
    /* Locked in a transaction, so an unlink cannot slip between finding
     * the owner and logging in as it. */
    guest_status st = guest__sql_run(
        ctx, tx,
        &(guest__stmt){.tmpl = tx ? "SELECT i.user_id, u.is_active,"
                                    " u.username FROM @.identities i"
                                    " JOIN @.users u ON u.id = i.user_id"
                                    " WHERE i.issuer = $1 AND i.subject = $2"
                                    " FOR UPDATE OF i"
                                  : "SELECT i.user_id, u.is_active,"
                                    " u.username FROM @.identities i"
                                    " JOIN @.users u ON u.id = i.user_id"
                                    " WHERE i.issuer = $1 AND i.subject = $2",
                       .params = &p},
        &res, err);
    *found = st == GUEST_OK && PQntuples(res) == 1;
    if (*found) {
        *user_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        *active = PQgetvalue(res, 0, 1)[0] == 't';
        snprintf(username, GUEST_USERNAME_BUF, "%s", PQgetvalue(res, 0, 2));
    }
    PQclear(res);
    return st;
}

guest_status guest__store_identity_link(guest_db *tx, int64_t user_id,
                                        const guest_identity *identity,
                                        guest_error *err)
{
    char id[GUEST__INT_BUF];
    guest__params p = {0};
    guest__param_int(&p, id, user_id);
    guest__param_text(&p, identity->issuer);
    guest__param_text(&p, identity->subject);
    guest__param_text(&p, identity->email);
    guest__param_text(&p, identity->email_verified ? "t" : "f");
    /* Taken: a sign-in with the same identity committed first. */
    return guest__sql_run_unique(
        tx,
        &(guest__stmt){.tmpl = "INSERT INTO @.identities (user_id, issuer,"
                               " subject, email, email_verified, last_login)"
                               " VALUES ($1, $2, $3, $4, $5, now())",
                       .params = &p},
        GUEST_ERR_IDENTITY_TAKEN, "the identity was linked meanwhile", err);
}

guest_status guest__store_identity_used(guest_db *tx,
                                        const guest_identity *identity,
                                        guest_error *err)
{
    guest__params p = {0};
    guest__param_text(&p, identity->issuer);
    guest__param_text(&p, identity->subject);
    guest__param_text(&p, identity->email);
    guest__param_text(&p, identity->email_verified ? "t" : "f");
    return guest__sql_run(
        tx->ctx, tx,
        &(guest__stmt){.tmpl = "UPDATE @.identities SET last_login = now(),"
                               " email = $3, email_verified = $4"
                               " WHERE issuer = $1 AND subject = $2",
                       .params = &p},
        NULL, err);
}

guest_status guest_identities_list(guest_ctx *ctx, int64_t user_id,
                                   guest_identity_list_fn fn, void *userdata,
                                   guest_error *err)
{
    if (!ctx || !fn)
        return guest__fail(err, GUEST_ERR_INVALID, "NULL ctx or fn");
    char id[GUEST__INT_BUF];
    guest__params p = {0};
    guest__param_int(&p, id, user_id);
    PGresult *res = NULL;
    guest_status st = guest__sql_run(
        ctx, NULL,
        &(guest__stmt){.tmpl =
                           "SELECT issuer, subject, coalesce(email, ''),"
                           " email_verified,"
                           " floor(extract(epoch FROM linked_at))::bigint,"
                           " coalesce(floor(extract(epoch FROM last_login)), 0)"
                           "::bigint FROM @.identities WHERE user_id = $1"
                           " ORDER BY linked_at, id",
                       .params = &p},
        &res, err);
    for (int i = 0; st == GUEST_OK && i < PQntuples(res); i++) {
        guest_identity_info info = {
            .issuer = PQgetvalue(res, i, 0),
            .subject = PQgetvalue(res, i, 1),
            .email = PQgetvalue(res, i, 2),
            .email_verified = PQgetvalue(res, i, 3)[0] == 't',
            .linked_at = strtoll(PQgetvalue(res, i, 4), NULL, 10),
            .last_login = strtoll(PQgetvalue(res, i, 5), NULL, 10)};
        if (!fn(&info, userdata))
            break;
    }
    PQclear(res);
    return st;
}

/* What counts as a usable password: a stored hash (Django marks an
 * unusable one with a leading '!'; guests have none). */
#define USABLE_PASSWORD "(u.password <> '' AND left(u.password, 1) <> '!')"

guest_status guest_identity_unlink(guest_ctx *ctx, int64_t user_id,
                                   const char *issuer, const char *subject,
                                   guest_error *err)
{
    if (!ctx || !issuer || !subject)
        return guest__fail(err, GUEST_ERR_INVALID, "NULL argument");
    char id[GUEST__INT_BUF];
    guest__params p = {0};
    guest__param_int(&p, id, user_id);
    guest__params d = p;
    guest__param_text(&d, issuer);
    guest__param_text(&d, subject);
    guest_db tx;
    guest_status st = guest__tx_begin(ctx, &tx, err);
    if (st != GUEST_OK)
        return st;
    /* The user row's lock serializes unlinks of one user: two at once
     * could otherwise each see the other identity and remove both. */
    PGresult *res = NULL;
    st = guest__sql_run(
        ctx, &tx,
        &(guest__stmt){.tmpl = "SELECT " USABLE_PASSWORD ", (SELECT count(*)"
                               " FROM @.identities WHERE user_id = u.id)"
                               " FROM @.users u WHERE u.id = $1 FOR UPDATE",
                       .params = &p},
        &res, err);
    bool exists = st == GUEST_OK && PQntuples(res) == 1;
    bool password = exists && PQgetvalue(res, 0, 0)[0] == 't';
    long long links = exists ? strtoll(PQgetvalue(res, 0, 1), NULL, 10) : 0;
    PQclear(res);
    res = NULL;
    if (st == GUEST_OK && !exists)
        st = guest__fail(err, GUEST_ERR_NOT_FOUND, "no such user");
    if (st == GUEST_OK)
        st = guest__sql_run(
            ctx, &tx,
            &(guest__stmt){.tmpl = "DELETE FROM @.identities WHERE"
                                   " user_id = $1 AND issuer = $2 AND"
                                   " subject = $3",
                           .params = &d},
            &res, err);
    bool deleted = st == GUEST_OK && strtol(PQcmdTuples(res), NULL, 10) == 1;
    PQclear(res);
    if (st == GUEST_OK && !deleted)
        st = guest__fail(err, GUEST_ERR_NOT_FOUND,
                         "the user has no such identity");
    if (st == GUEST_OK && !password && links <= 1)
        st = guest__fail(err, GUEST_ERR_LAST_LOGIN,
                         "the identity is the user's only way to log in");
    if (st == GUEST_OK)
        return guest__tx_commit(&tx, err);
    guest__tx_abort(&tx);
    return st;
}

guest_status guest__store_user_lookup(guest_ctx *ctx, const char *username,
                                      int64_t *id, bool *has_password,
                                      guest_error *err)
{
    guest__params p = {0};
    guest__param_text(&p, username);
    PGresult *res = NULL;
    guest_status st = guest__sql_run(
        ctx, NULL,
        &(guest__stmt){.tmpl = "SELECT u.id, " USABLE_PASSWORD
                               " FROM @.users u WHERE u.username = $1",
                       .params = &p},
        &res, err);
    if (st == GUEST_OK && PQntuples(res) != 1)
        st = guest__fail(err, GUEST_ERR_NOT_FOUND, "no user named that");
    if (st == GUEST_OK) {
        *id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        if (has_password)
            *has_password = PQgetvalue(res, 0, 1)[0] == 't';
    }
    PQclear(res);
    return st;
}

guest_status guest_user_lookup(guest_ctx *ctx, const char *username,
                               int64_t *id, bool *has_password,
                               guest_error *err)
{
    if (!ctx || !username || !id)
        return guest__fail(err, GUEST_ERR_INVALID, "NULL argument");
    if (!guest__utf8_valid(username, strlen(username)))
        return guest__fail(err, GUEST_ERR_NOT_FOUND, "no user named that");
    return guest__store_user_lookup(ctx, username, id, has_password, err);
}

/* The candidates as one text[] literal: {"a","b"} with quotes and
 * backslashes escaped. */
static char *text_array(const char *const *items, size_t n)
{
    size_t len = 3;
    for (size_t i = 0; i < n; i++)
        len += 2 * strlen(items[i]) + 3;
    char *out = malloc(len);
    if (!out)
        return NULL;
    char *w = out;
    *w++ = '{';
    for (size_t i = 0; i < n; i++) {
        if (i)
            *w++ = ',';
        *w++ = '"';
        for (const char *r = items[i]; *r; r++) {
            if (*r == '"' || *r == '\\')
                *w++ = '\\';
            *w++ = *r;
        }
        *w++ = '"';
    }
    *w++ = '}';
    *w = '\0';
    return out;
}

guest_status guest__store_free_username(guest_db *tx,
                                        const char *const *candidates, size_t n,
                                        char *out, size_t size, bool *found,
                                        guest_error *err)
{
    *found = false;
    char *array = text_array(candidates, n);
    if (!array)
        return guest__fail(err, GUEST_ERR_NOMEM, "out of memory");
    guest__params p = {0};
    guest__param_text(&p, array);
    PGresult *res = NULL;
    /* One round trip for the whole list, in its order. */
    guest_status st = guest__sql_run(
        tx->ctx, tx,
        &(guest__stmt){.tmpl = "SELECT c FROM unnest($1::text[])"
                               " WITH ORDINALITY AS t(c, n) WHERE NOT EXISTS"
                               " (SELECT 1 FROM @.users u"
                               " WHERE u.username = t.c) ORDER BY n LIMIT 1",
                       .params = &p},
        &res, err);
    free(array);
    if (st == GUEST_OK && PQntuples(res) == 1) {
        *found = true;
        snprintf(out, size, "%s", PQgetvalue(res, 0, 0));
    }
    PQclear(res);
    return st;
}

guest_status guest__store_guest_register(guest_db *tx, int64_t user_id,
                                         const char *username,
                                         const char *password, guest_error *err)
{
    char id[GUEST__INT_BUF];
    guest__params p = {0};
    guest__param_int(&p, id, user_id);
    guest__param_text(&p, username);
    guest__param_text(&p, password);
    PGresult *res = NULL;
    /* The guests row goes first: it is the proof, under its lock, that the
     * user is still a guest (a concurrent conversion deleted it). */
    guest_status st = guest__sql_run(
        tx->ctx, tx,
        &(guest__stmt){.tmpl = "WITH g AS (DELETE FROM @.guests"
                               " WHERE user_id = $1 RETURNING user_id)"
                               " UPDATE @.users SET username = $2,"
                               " password = $3, last_login = now()"
                               " WHERE id IN (SELECT user_id FROM g)",
                       .params = &p},
        &res, err);
    bool dup = guest__sql_state_is(res, "23505");
    bool done = st == GUEST_OK && strtol(PQcmdTuples(res), NULL, 10) == 1;
    PQclear(res);
    if (dup)
        return guest__fail(err, GUEST_ERR_USERNAME_TAKEN,
                           "the username was taken meanwhile");
    if (st == GUEST_OK && !done)
        return guest__fail(err, GUEST_ERR_NOT_GUEST,
                           "the guest was converted meanwhile");
    return st;
}

guest_status guest__store_user_insert(guest_db *tx, const char *username,
                                      const char *password, int64_t *id,
                                      guest_error *err)
{
    guest__params p = {0};
    guest__param_text(&p, username);
    guest__param_text(&p, password);
    PGresult *res = NULL;
    guest_status st = guest__sql_run(
        tx->ctx, tx,
        &(guest__stmt){.tmpl = "INSERT INTO @.users (username, password,"
                               " last_login) VALUES ($1, $2, now())"
                               " RETURNING id",
                       .params = &p},
        &res, err);
    bool dup = guest__sql_state_is(res, "23505");
    if (st == GUEST_OK)
        *id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    if (dup)
        return guest__fail(err, GUEST_ERR_USERNAME_TAKEN,
                           "the username was taken meanwhile");
    return st;
}

/* Largest payload guest_flow_put() keeps. */
#define FLOW_PAYLOAD_MAX 8192

/* The SHA-256 of a flow's key and binding, which is what the flows table
 * keeps. */
static guest_status flow_hashes(const char *key, const char *binding,
                                unsigned char k[GUEST__SHA256_BYTES],
                                unsigned char b[GUEST__SHA256_BYTES],
                                guest_error *err)
{
    if (guest__sha256(key, strlen(key), k) != GUEST_OK ||
        guest__sha256(binding, strlen(binding), b) != GUEST_OK)
        return guest__fail(err, GUEST_ERR_CRYPTO, "cannot hash the flow key");
    return GUEST_OK;
}

guest_status guest_flow_put(guest_ctx *ctx, const char *key,
                            const char *binding, const char *payload,
                            unsigned ttl_s, guest_error *err)
{
    if (!ctx || !key || !*key || !binding || !*binding || !payload ||
        strlen(payload) > FLOW_PAYLOAD_MAX || ttl_s < 1 || ttl_s > 86400 ||
        !guest__utf8_valid(payload, strlen(payload)))
        return guest__fail(err, GUEST_ERR_INVALID,
                           "a flow needs a key, a binding, a UTF-8 payload of "
                           "at most %d bytes and a ttl of 1..86400 s",
                           FLOW_PAYLOAD_MAX);
    unsigned char k[GUEST__SHA256_BYTES], b[GUEST__SHA256_BYTES];
    guest_status st = flow_hashes(key, binding, k, b, err);
    if (st != GUEST_OK)
        return st;
    char ttl[16];
    snprintf(ttl, sizeof ttl, "%u", ttl_s);
    guest__params p = {0};
    guest__param_bin(&p, k, GUEST__SHA256_BYTES);
    guest__param_bin(&p, b, GUEST__SHA256_BYTES);
    guest__param_text(&p, payload);
    guest__param_text(&p, ttl);
    return guest__sql_run(
        ctx, NULL,
        &(guest__stmt){.tmpl = "INSERT INTO @.flows (key_hash, binding_hash,"
                               " payload, expires_at) VALUES ($1, $2, $3,"
                               " now() + make_interval(secs => $4))",
                       .params = &p},
        NULL, err);
}

guest_status guest_flow_take(guest_ctx *ctx, const char *key,
                             const char *binding, char **payload,
                             guest_error *err)
{
    if (payload)
        *payload = NULL;
    if (!ctx || !key || !binding || !payload)
        return guest__fail(err, GUEST_ERR_INVALID, "NULL argument");
    unsigned char k[GUEST__SHA256_BYTES], b[GUEST__SHA256_BYTES];
    guest_status st = flow_hashes(key, binding, k, b, err);
    if (st != GUEST_OK)
        return st;
    guest__params p = {0};
    guest__param_bin(&p, k, GUEST__SHA256_BYTES);
    guest__param_bin(&p, b, GUEST__SHA256_BYTES);
    PGresult *res = NULL;
    /* Deleting is taking: of two callbacks with the same state, one gets
     * the row. A wrong binding leaves it for the browser that owns it. */
    st = guest__sql_run(
        ctx, NULL,
        &(guest__stmt){.tmpl = "DELETE FROM @.flows WHERE key_hash = $1"
                               " AND binding_hash = $2"
                               " AND expires_at > now() RETURNING payload",
                       .params = &p},
        &res, err);
    if (st == GUEST_OK && PQntuples(res) != 1)
        st = guest__fail(err, GUEST_ERR_NOT_FOUND,
                         "no live flow with that key for this browser");
    if (st == GUEST_OK) {
        *payload = guest__strdup(PQgetvalue(res, 0, 0));
        if (!*payload)
            st = guest__fail(err, GUEST_ERR_NOMEM, "out of memory");
    }
    PQclear(res);
    return st;
}

/* Password login and logout on the current request. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "accounts/accounts.h"

typedef struct target {
    guest_user user;
    char *encoded; /* the stored hash that was verified */
    /* The password at the configured count when the stored hash has
     * fewer iterations: the upgrade written on success ("" otherwise). */
    char rehash[GUEST_PASSWORD_HASH_BUF];
} target;

/* One password hash at @p iterations into @p out; false when it could not
 * be made. */
static bool hash_at(const char *password, unsigned iterations,
                    char out[GUEST_PASSWORD_HASH_BUF])
{
    if (guest_password_hash(password, iterations, out,
                            GUEST_PASSWORD_HASH_BUF) == GUEST_OK)
        return true;
    OPENSSL_cleanse(out, GUEST_PASSWORD_HASH_BUF);
    return false;
}

/* PBKDF2 work of @p iterations thrown away. */
static void spend(const char *password, unsigned iterations)
{
    char dummy[GUEST_PASSWORD_HASH_BUF];
    if (iterations && hash_at(password, iterations, dummy))
        OPENSSL_cleanse(dummy, sizeof dummy);
}

/* The hashing of a login, inside one hash slot. Why every refusal costs
 * the same: a wrong password costs what the stored hash's iteration count
 * costs, so a site whose users' hashes have other counts than its own
 * setting (older hashes, hashes written by another tool, a lowered
 * password_iterations) would tell existing names from unknown ones by the
 * time they take. So every refused login costs PBKDF2 work of @p target
 * iterations: the most of the configured count and of the slowest hash
 * stored (@p site_max, counted by triggers), a stored hash's own
 * verification counting towards it. PBKDF2's cost is linear in its
 * iterations, which makes the padding exact. A success upgrades a cheaper
 * stored hash to the configured count; a dearer one is kept (a lower
 * setting never weakens what a stolen table would cost to crack). */
static guest_status check_password(guest_ctx *ctx, const char *password,
                                   const char *stored, unsigned site_max,
                                   target *t, bool *ok)
{
    *ok = false;
    guest_status st = guest__hash_slot_take(ctx);
    if (st != GUEST_OK)
        return st;
    unsigned configured = ctx->cfg.password_iterations;
    unsigned goal = site_max > configured ? site_max : configured;
    unsigned iterations;
    if (stored && guest__password_iterations(stored, &iterations)) {
        *ok = guest_password_verify(password, stored);
        if (*ok && iterations < configured)
            hash_at(password, configured, t->rehash);
        else if (!*ok && iterations < goal)
            spend(password, goal - iterations);
    } else {
        spend(password, goal);
    }
    guest__hash_slot_give(ctx);
    return GUEST_OK;
}

/* Finds an active registered user by name (or verified address) and
 * checks the password. The lookup reads the slowest stored hash's count in
 * the same statement, so the refusal of an unknown name costs what the
 * slowest known one's costs. */
static guest_status authenticate(guest_ctx *ctx, const char *username,
                                 const char *password, bool by_email, target *t,
                                 guest_error *err)
{
    guest__login_row row;
    guest_status st =
        guest__store_login_lookup(ctx, username, by_email, &row, err);
    if (st != GUEST_OK)
        return st;
    bool ok;
    st = check_password(ctx, password, row.password, row.site_max, t, &ok);
    if (st == GUEST_OK && ok) {
        t->user.id = row.id;
        t->user.is_guest = false;
        snprintf(t->user.username, sizeof t->user.username, "%s", row.username);
        t->encoded = row.password;
        row.password = NULL;
    } else if (st == GUEST_OK) {
        st = GUEST_ERR_AUTH;
    }
    free(row.password);
    return st;
}

/* The guest's data moves to @p user through on_guest_login, then the
 * guest user is deleted (its rows cascade, as cleanup would delete them).
 * A guest converted meanwhile is an account now, and stays. */
guest_status guest__absorb_guest(guest_req *req, guest_db *tx,
                                 const guest_user *guest,
                                 const guest_user *user, guest_error *err)
{
    const guest_config *c = &req->ctx->cfg;
    bool still_guest;
    guest_status st = guest__store_guest_lock(tx, guest->id, &still_guest, err);
    if (st != GUEST_OK || !still_guest)
        return st;
    if (c->on_guest_login) {
        guest_status h =
            c->on_guest_login(guest, user, tx, c->on_guest_login_userdata);
        if ((h = guest__hook_result(tx, h, "on_guest_login", err)) != GUEST_OK)
            return h;
    }
    return guest__store_user_delete_id(tx, guest->id, err);
}

/* The transaction of a login; the caller commits or rolls back. */
static guest_status switch_session(guest_req *req, guest_db *tx,
                                   const target *t, const guest_user *guest,
                                   const char *rehash, bool has_old,
                                   const unsigned char *old_hash,
                                   const unsigned char *new_hash,
                                   guest_error *err)
{
    guest_ctx *ctx = req->ctx;
    /* The hash is read again under lock: a password changed (or the user
     * disabled or deleted) since it was verified must not let this in. */
    char *stored;
    guest_status st =
        guest__store_user_password_read(ctx, tx, t->user.id, &stored, err);
    bool same = st == GUEST_OK && stored && strcmp(stored, t->encoded) == 0;
    free(stored);
    if (st != GUEST_OK)
        return st;
    if (!same)
        return GUEST_ERR_AUTH;

    if (guest && guest->id != t->user.id) {
        st = guest__absorb_guest(req, tx, guest, &t->user, err);
        if (st != GUEST_OK)
            return st;
    }

    st = guest__store_user_logged_in(tx, t->user.id, rehash, err);
    if (st != GUEST_OK)
        return st;
    if (has_old) {
        st = guest__store_session_delete(ctx, tx, old_hash, err);
        if (st != GUEST_OK)
            return st;
    }
    return guest__store_session_insert(tx, t->user.id, new_hash,
                                       ctx->cfg.max_age, err);
}

static guest_status login(guest_req *req, const char *username,
                          const char *password, guest_form_errors *errors,
                          guest_error *err)
{
    guest_form_errors local;
    if (!guest__form_call_start(req, &errors, &local, err))
        return GUEST_ERR_INVALID;
    if (!username || !*username)
        guest_form_errors_add(errors, "username", GUEST__MSG_REQUIRED);
    if (!password || !*password)
        guest_form_errors_add(errors, "password", GUEST__MSG_REQUIRED);
    if (errors->count || !username || !password)
        return GUEST_ERR_VALIDATION;
    guest_ctx *ctx = req->ctx;
    /* Too long to be anyone's name: refused without a query (and without
     * sending PostgreSQL bytes it would reject as bad UTF-8). */
    guest_status st;
    target t = {0};
    bool by_email = ctx->cfg.login_with_email && strchr(username, '@');
    if ((by_email ? strlen(username) > GUEST_EMAIL_MAX
                  : guest__utf8_chars(username) > GUEST_USERNAME_MAX_CHARS) ||
        !guest__utf8_valid(username, strlen(username))) {
        /* No such name can exist, and everyone can tell: one hash at the
         * configured count is enough. */
        bool ok;
        st = check_password(ctx, password, NULL, 0, &t, &ok);
        if (st == GUEST_OK)
            st = GUEST_ERR_AUTH;
    } else {
        st = authenticate(ctx, username, password, by_email, &t, err);
    }
    if (st == GUEST_ERR_AUTH)
        guest_form_errors_add(errors, "__all__", GUEST__MSG_LOGIN);
    if (st != GUEST_OK) {
        free(t.encoded);
        OPENSSL_cleanse(t.rehash, sizeof t.rehash);
        return st;
    }

    const guest_user *current;
    st = guest_req_user(req, &current, err);
    guest_user guest = {0};
    bool was_guest = st == GUEST_OK && current && current->is_guest;
    if (was_guest)
        guest = *current;
    unsigned char old_hash[GUEST__SHA256_BYTES], new_hash[GUEST__SHA256_BYTES];
    char token[GUEST__TOKEN_CHARS + 1];
    bool has_old = guest__req_session_hash(req, old_hash);
    if (st == GUEST_OK)
        st = guest__session_new(token, new_hash);
    guest_db tx;
    if (st == GUEST_OK)
        st = guest__tx_begin(ctx, &tx, err);
    if (st == GUEST_OK) {
        st = switch_session(req, &tx, &t, was_guest ? &guest : NULL,
                            *t.rehash ? t.rehash : NULL, has_old, old_hash,
                            new_hash, err);
        if (st == GUEST_OK)
            st = guest__tx_commit(&tx, err);
        else
            guest__tx_abort(&tx);
    }
    free(t.encoded);
    OPENSSL_cleanse(t.rehash, sizeof t.rehash);
    if (st == GUEST_OK) {
        /* The old session is gone, and so is a guest deleted on the way. */
        if (has_old)
            guest__session_cache_drop_token(ctx, old_hash);
        if (was_guest && guest.id != t.user.id)
            guest__session_cache_drop_user(ctx, guest.id);
        guest__req_set_user(req, &t.user);
        /* The rows are committed: a failing header cannot undo them, and
         * the visitor's next request would merely find no session. */
        if (guest__set_session_cookie(req, token) != GUEST_OK)
            guest__log(ctx, GUEST_LOG_WARNING,
                       "a login was committed but its session cookie could "
                       "not be set");
    }
    OPENSSL_cleanse(token, sizeof token);
    if (st == GUEST_ERR_AUTH)
        guest_form_errors_add(errors, "__all__", GUEST__MSG_LOGIN);
    if (st != GUEST_OK)
        return st;
    /* The login stands; the old CSRF secret then stays, and that is told. */
    if (guest__csrf_rotate(req) != GUEST_OK)
        guest__log(ctx, GUEST_LOG_WARNING,
                   "could not renew the CSRF secret after a login");
    return GUEST_OK;
}

guest_status guest_login(guest_req *req, const char *username,
                         const char *password, guest_form_errors *errors,
                         guest_error *err)
{
    /* The login limits: the attempt takes its place in every window before
     * any password hash is computed (so a locked-out guesser costs one
     * statement and concurrent attempts cannot pass a limit together), and
     * gets it back unless the password was wrong. */
    bool limited = req && username && *username && password && *password;
    if (limited) {
        guest_status st = guest__limit_login_take(req, username, err);
        if (st != GUEST_OK) {
            guest__metric_login(req->ctx, st);
            guest__form_errors_refused(errors, st, GUEST__MSG_LOCKED_OUT);
            return st;
        }
    }
    guest_status st = login(req, username, password, errors, err);
    guest__metric_login(req ? req->ctx : NULL, st);
    if (limited)
        guest__limit_login_done(req, username, st);
    return st;
}

guest_status guest_logout(guest_req *req, guest_error *err)
{
    if (!req)
        return guest__fail(err, GUEST_ERR_INVALID, "NULL request");
    unsigned char hash[GUEST__SHA256_BYTES];
    if (guest__req_session_hash(req, hash)) {
        guest_status st =
            guest__store_session_delete(req->ctx, NULL, hash, err);
        if (st != GUEST_OK)
            return st;
        guest__session_cache_drop_token(req->ctx, hash);
    }
    guest__req_set_user(req, NULL);
    guest__count(req->ctx, GUEST__C_LOGOUTS);
    return guest__clear_session_cookie(req);
}

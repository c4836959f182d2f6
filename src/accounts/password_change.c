/* A registered user changes their own password on the current request. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "accounts/accounts.h"

/* Django's PasswordChangeForm wording. */
#define MSG_OLD_WRONG                                                          \
    "Your old password was entered incorrectly. Please enter it again."

/* The fields' own checks, no database: each given, the new ones equal and
 * accepted by the validators. */
static guest_status check_fields(const guest_ctx *ctx, const char *username,
                                 bool need_old, const char *old_password,
                                 const char *new1, const char *new2,
                                 guest_form_errors *errors)
{
    if (need_old && (!old_password || !*old_password))
        guest_form_errors_add(errors, "old_password", GUEST__MSG_REQUIRED);
    bool have1 = new1 && *new1, have2 = new2 && *new2;
    if (!have1)
        guest_form_errors_add(errors, "new_password1", GUEST__MSG_REQUIRED);
    if (!have2)
        guest_form_errors_add(errors, "new_password2", GUEST__MSG_REQUIRED);
    if (have1 && have2 && strcmp(new1, new2) != 0) {
        guest_form_errors_add(errors, "new_password2",
                              "The two password fields didn't match.");
    } else if (have1 && have2) {
        guest_status st = guest_password_validate(ctx, username, new2,
                                                  "new_password2", errors);
        if (st != GUEST_OK && st != GUEST_ERR_VALIDATION)
            return st;
    }
    return GUEST_OK;
}

/* In one hashing slot: checks @p old_password against @p stored and, when
 * it is right and @p hash_new, hashes @p new_password into @p out. */
static guest_status hash_step(guest_ctx *ctx, const char *old_password,
                              const char *stored, const char *new_password,
                              bool hash_new, bool *old_ok,
                              char out[GUEST_PASSWORD_HASH_BUF])
{
    guest_status st = guest__hash_slot_take(ctx);
    if (st != GUEST_OK)
        return st;
    /* No usable password (an account made through an identity provider):
     * there is no old one to know. */
    *old_ok = !guest__password_usable(stored) ||
              guest_password_verify(old_password, stored);
    if (*old_ok && hash_new)
        st = guest_password_hash(new_password, ctx->cfg.password_iterations,
                                 out, GUEST_PASSWORD_HASH_BUF);
    guest__hash_slot_give(ctx);
    return st;
}

/* The transaction: the new hash, only while the stored one is still the
 * one verified; every session of the user ended; a new one for this
 * request. *changed is false when the password changed meanwhile. */
static guest_status store_change(guest_ctx *ctx, int64_t user_id,
                                 const char *stored, const char *hash,
                                 const unsigned char *new_session,
                                 bool *changed, guest_error *err)
{
    guest_db tx;
    guest_status st = guest__tx_begin(ctx, &tx, err);
    if (st != GUEST_OK)
        return st;
    st = guest__store_user_password_swap(&tx, user_id, hash, stored, changed,
                                         err);
    /* The sessions go in a statement of their own after the row lock: it
     * also sees a session that a concurrent login committed while we
     * waited. */
    if (st == GUEST_OK && *changed)
        st = guest__store_sessions_end(&tx, user_id, err);
    if (st == GUEST_OK && *changed)
        st = guest__store_session_insert(&tx, user_id, new_session,
                                         ctx->cfg.max_age, err);
    if (st == GUEST_OK && *changed)
        return guest__tx_commit(&tx, err);
    guest__tx_abort(&tx);
    return st;
}

/* *old_wrong tells a wrong old password (GUEST_ERR_VALIDATION) from the
 * other refusals. */
static guest_status change(guest_req *req, const guest_user *user,
                           const char *old_password, const char *new1,
                           const char *new2, guest_form_errors *errors,
                           bool *old_wrong, guest_error *err)
{
    *old_wrong = false;
    guest_ctx *ctx = req->ctx;
    char *stored;
    guest_status st =
        guest__store_user_password_read(ctx, NULL, user->id, &stored, err);
    if (st != GUEST_OK)
        return st;
    if (!stored) {
        /* Deleted or deactivated since this request's session was read
         * (by another process, when it came from the session cache). */
        guest__session_cache_drop_user(ctx, user->id);
        guest__req_forget_user(req);
        return guest__fail(err, GUEST_ERR_AUTH,
                           "the user no longer exists or is inactive");
    }
    bool need_old = guest__password_usable(stored);
    st = check_fields(ctx, user->username, need_old, old_password, new1, new2,
                      errors);
    if (st == GUEST_OK && need_old && (!old_password || !*old_password))
        st = GUEST_ERR_VALIDATION;
    if (st != GUEST_OK) {
        OPENSSL_cleanse(stored, strlen(stored));
        free(stored);
        return st;
    }
    /* The old password is checked also when a new one was refused, so the
     * answer lists every problem at once, as Django's form does. */
    char hash[GUEST_PASSWORD_HASH_BUF] = "";
    bool old_ok = false;
    st = hash_step(ctx, old_password, stored, new2, errors->count == 0, &old_ok,
                   hash);
    if (st == GUEST_OK && !old_ok) {
        guest_form_errors_add(errors, "old_password", MSG_OLD_WRONG);
        *old_wrong = true;
        st = GUEST_ERR_VALIDATION;
    } else if (st == GUEST_OK && errors->count) {
        st = GUEST_ERR_VALIDATION;
    }
    char token[GUEST__TOKEN_CHARS + 1];
    unsigned char new_session[GUEST__SHA256_BYTES];
    if (st == GUEST_OK)
        st = guest__session_new(token, new_session);
    bool changed = false;
    if (st == GUEST_OK)
        st = store_change(ctx, user->id, stored, hash, new_session, &changed,
                          err);
    /* Every session of the user ended, the old ones cached here too. */
    if (st == GUEST_OK && changed)
        guest__session_cache_drop_user(ctx, user->id);
    /* Changed meanwhile (another password change, or a login renewing an
     * older hash): the old password checked is no longer the one stored. */
    if (st == GUEST_OK && !changed) {
        guest_form_errors_add(errors, "old_password", MSG_OLD_WRONG);
        st = GUEST_ERR_VALIDATION;
    }
    OPENSSL_cleanse(hash, sizeof hash);
    OPENSSL_cleanse(stored, strlen(stored));
    free(stored);
    if (st == GUEST_OK && guest__set_session_cookie(req, token) != GUEST_OK)
        /* Committed: the visitor merely has to log in again. */
        guest__log(ctx, GUEST_LOG_WARNING,
                   "a password change was committed but the new session "
                   "cookie could not be set");
    OPENSSL_cleanse(token, sizeof token);
    return st;
}

guest_status guest_password_change(guest_req *req, const char *old_password,
                                   const char *new_password1,
                                   const char *new_password2,
                                   guest_form_errors *errors, guest_error *err)
{
    guest_form_errors local;
    if (!guest__form_call_start(req, &errors, &local, err))
        return GUEST_ERR_INVALID;
    const guest_user *current;
    guest_status st = guest_req_user(req, &current, err);
    if (st != GUEST_OK)
        return st;
    if (!current || current->is_guest)
        return guest__fail(err, GUEST_ERR_AUTH,
                           current ? "a guest has no password to change"
                                   : "the visitor is not logged in");
    guest_user user = *current;
    /* A wrong old password is a password guess: it counts against the
     * login limit of that username from this address: it takes its place
     * before any hash, and gets it back unless the old password was
     * wrong. */
    bool limited = old_password && *old_password;
    if (limited) {
        st = guest__limit_login_take(req, user.username, err);
        if (st != GUEST_OK) {
            if (st == GUEST_ERR_RATE_LIMITED)
                guest_form_errors_add(errors, "__all__", GUEST__MSG_LOCKED_OUT);
            return st;
        }
    }
    bool old_wrong;
    st = change(req, &user, old_password, new_password1, new_password2, errors,
                &old_wrong, err);
    if (limited)
        guest__limit_login_done(req, user.username,
                                old_wrong ? GUEST_ERR_AUTH : st);
    if (st != GUEST_OK)
        return st;
    if (guest__csrf_rotate(req) != GUEST_OK)
        guest__log(req->ctx, GUEST_LOG_WARNING,
                   "could not renew the CSRF secret after a password change");
    return GUEST_OK;
}

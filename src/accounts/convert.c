/* Turning the request's guest into a registered user. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "accounts/accounts.h"

static void check_signup_fields(const guest_signup *signup,
                                const guest_form *form,
                                guest_form_errors *errors)
{
    for (size_t i = 0; i < signup->field_count; i++) {
        const guest_signup_field *f = &signup->fields[i];
        const char *v = guest_form_get(form, f->name);
        if (f->required && (!v || !*v))
            guest_form_errors_add(errors, f->name, GUEST__MSG_REQUIRED);
    }
}

guest_status guest_convert(guest_req *req, const char *username,
                           const char *password1, const char *password2,
                           guest_form_errors *errors, guest_error *err)
{
    return guest_convert_with(req, username, password1, password2, NULL, NULL,
                              errors, err);
}

guest_status guest__hook_result(const guest_db *tx, guest_status returned,
                                const char *what, guest_error *err)
{
    /* The statement's own failure first: the transaction is lost either
     * way, and its message says why better than a callback's status. */
    if (tx->failed != GUEST_OK)
        return guest__fail(err, tx->failed, "a statement of %s failed: %s",
                           what, tx->failed_message);
    if (returned != GUEST_OK)
        return guest__fail(err, GUEST_ERR_HOOK, "%s returned %s", what,
                           guest_status_name(returned));
    return GUEST_OK;
}

/* The address of a conversion after its checks: NULL when none is to be
 * stored (signup_email off, or left empty). */
static const char *check_email(const guest_config *c, const char *email,
                               guest_form_errors *errors, guest_status *st,
                               guest_error *err)
{
    *st = GUEST_OK;
    if (c->signup_email == GUEST_EMAIL_OFF)
        return NULL;
    if (!email || !*email) {
        if (c->signup_email == GUEST_EMAIL_REQUIRED)
            guest_form_errors_add(errors, "email", GUEST__MSG_REQUIRED);
        return NULL;
    }
    if (!guest__email_ok(email)) {
        guest_form_errors_add(errors, "email", GUEST__MSG_BAD_EMAIL);
        return NULL;
    }
    *st = guest__email_need_mail(c, err);
    return email;
}

/* Runs inside the open transaction once the guest row is locked: the name
 * check, the update, the application's store, the guest row and sessions.
 * Any failure leaves the caller to roll back. */
static guest_status
write_account(guest_req *req, guest_db *tx, int64_t id, const char *username,
              bool name_ok, const char *hash, const unsigned char *new_hash,
              const char *email, const guest_signup *signup,
              const guest_form *form, guest_form_errors *errors,
              guest_user *user, guest_error *err)
{
    bool still_guest;
    guest_status st = guest__store_guest_lock(tx, id, &still_guest, err);
    if (st != GUEST_OK)
        return st;
    /* A concurrent conversion committed first: the row is gone once its
     * lock is released, and this one changes nothing. */
    if (!still_guest)
        return guest__fail(err, GUEST_ERR_NOT_GUEST,
                           "the guest was converted meanwhile");
    st = guest__check_username_free(req->ctx, tx, username, &id, name_ok,
                                    errors, err);
    if (st != GUEST_OK)
        return st;

    bool dup;
    st = guest__store_user_rename(tx, id, username, hash, &dup, err);
    if (dup) {
        guest_form_errors_add(errors, "username", GUEST__MSG_TAKEN);
        return GUEST_ERR_USERNAME_TAKEN;
    }
    if (st != GUEST_OK)
        return st;

    user->id = id;
    user->is_guest = false;
    snprintf(user->username, sizeof user->username, "%s", username);
    if (email) {
        /* The address is the account's unverified until its link is
         * opened; the link's mail is queued with the conversion. */
        bool taken;
        st = guest__store_email_taken(tx, email, user->id, &taken, err);
        if (st == GUEST_OK && taken) {
            guest_form_errors_add(errors, "email", GUEST__MSG_EMAIL_TAKEN);
            return GUEST_ERR_VALIDATION;
        }
        if (st == GUEST_OK)
            st = guest__store_email_set(tx, user->id, email, false, err);
        if (st == GUEST_OK)
            st = guest__email_queue_verify(tx, user->id, username, email, err);
        if (st != GUEST_OK)
            return st;
    }
    if (signup && signup->store) {
        size_t before = errors->count;
        st = signup->store(tx, user, form, errors, signup->userdata);
        if (st == GUEST_ERR_VALIDATION && errors->count > before)
            return GUEST_ERR_VALIDATION;
        /* A failed statement aborted the transaction whatever the
         * callback made of it. */
        if ((st = guest__hook_result(tx, st, "the sign-up store", err)) !=
            GUEST_OK)
            return st;
    }

    /* Every session of the guest goes, so a token copied before the
     * conversion never reaches the account. */
    return guest__store_sessions_convert(tx, id, new_hash,
                                         req->ctx->cfg.max_age, err);
}

static guest_status convert_with(guest_req *req, const char *username,
                                 const char *email, const char *password1,
                                 const char *password2,
                                 const guest_signup *signup,
                                 const guest_form *form,
                                 guest_form_errors *errors, guest_error *err)
{
    guest_form_errors local;
    if (!guest__form_call_start(req, &errors, &local, err))
        return GUEST_ERR_INVALID;
    guest_ctx *ctx = req->ctx;
    const guest_user *current;
    guest_status st = guest_req_user(req, &current, err);
    if (st != GUEST_OK)
        return st;
    if (!current || !current->is_guest)
        return guest__fail(err, GUEST_ERR_NOT_GUEST,
                           current ? "the user is registered already"
                                   : "the visitor is anonymous");
    bool name_ok;
    st = guest__check_new_account(ctx, username, password1, password2, true,
                                  errors, &name_ok);
    if (st != GUEST_OK && st != GUEST_ERR_VALIDATION)
        return st;
    email = check_email(&ctx->cfg, email, errors, &st, err);
    if (st != GUEST_OK)
        return st;
    if (signup) {
        check_signup_fields(signup, form, errors);
        if (signup->validate &&
            signup->validate(form, errors, signup->userdata) != GUEST_OK)
            return guest__fail(err, GUEST_ERR_HOOK,
                               "the sign-up validate callback failed");
    }
    /* Hashing is the slow part: done before the transaction so no lock
     * waits on it, and only when nothing is wrong already. */
    char hash[GUEST_PASSWORD_HASH_BUF] = "";
    if (!errors->count) {
        st = guest__hash_password(ctx, password1, hash, sizeof hash);
        if (st != GUEST_OK)
            return st;
    }
    char token[GUEST__TOKEN_CHARS + 1];
    unsigned char new_hash[GUEST__SHA256_BYTES];
    guest_user user = {0};
    st = guest__session_new(token, new_hash);
    if (st == GUEST_OK) {
        guest_db tx;
        st = guest__tx_begin(ctx, &tx, err);
        if (st == GUEST_OK) {
            st = write_account(req, &tx, current->id, username, name_ok, hash,
                               new_hash, email, signup, form, errors, &user,
                               err);
            if (st == GUEST_OK)
                st = guest__tx_commit(&tx, err);
            else
                guest__tx_abort(&tx);
        }
    }
    OPENSSL_cleanse(hash, sizeof hash);
    if (st == GUEST_OK) {
        /* Every session of the guest ended: none may resolve to it. */
        guest__session_cache_drop_user(ctx, user.id);
        guest__req_set_user(req, &user);
        /* The rows are committed: a failing header cannot undo them, and
         * the visitor's next request would merely find no session. */
        if (guest__set_session_cookie(req, token) != GUEST_OK)
            guest__log(ctx, GUEST_LOG_WARNING,
                       "a conversion was committed but its session cookie "
                       "could not be set");
    }
    OPENSSL_cleanse(token, sizeof token);
    if (st == GUEST_ERR_NOT_GUEST) {
        /* Converted by another process: this one's cache was stale. */
        guest__session_cache_drop_user(ctx, current->id);
        guest__req_forget_user(req);
    }
    if (st != GUEST_OK)
        return st;

    guest__count(ctx, GUEST__C_CONVERSIONS);
    if (guest__csrf_rotate(req) != GUEST_OK)
        guest__log(ctx, GUEST_LOG_WARNING,
                   "could not renew the CSRF secret after a conversion");
    const guest_config *c = &ctx->cfg;
    if (c->on_converted)
        c->on_converted(&req->user, c->on_converted_userdata);
    return GUEST_OK;
}

static guest_status limited_convert(guest_req *req, const char *username,
                                    const char *email, const char *password1,
                                    const char *password2,
                                    const guest_signup *signup,
                                    const guest_form *form,
                                    guest_form_errors *errors, guest_error *err)
{
    /* Failed conversions count against the address like failed logins:
     * each can cost a password hash, and "taken" answers enumerate
     * usernames. The attempt takes its place before any of that work and
     * gets it back unless it failed that way. */
    if (req) {
        guest_status st = guest__limit_convert_take(req, err);
        if (st != GUEST_OK) {
            guest__form_errors_refused(errors, st,
                                       GUEST__MSG_CONVERT_LOCKED_OUT);
            return st;
        }
    }
    guest_status st = convert_with(req, username, email, password1, password2,
                                   signup, form, errors, err);
    if (req)
        guest__limit_convert_done(req, st);
    return st;
}

guest_status guest_convert_with(guest_req *req, const char *username,
                                const char *password1, const char *password2,
                                const guest_signup *signup,
                                const guest_form *form,
                                guest_form_errors *errors, guest_error *err)
{
    return limited_convert(req, username,
                           form ? guest_form_get(form, "email") : NULL,
                           password1, password2, signup, form, errors, err);
}

guest_status guest_convert_email(guest_req *req, const char *username,
                                 const char *email, const char *password1,
                                 const char *password2,
                                 guest_form_errors *errors, guest_error *err)
{
    return limited_convert(req, username, email, password1, password2, NULL,
                           NULL, errors, err);
}

/* Managing users by name: deleting, setting a password, deactivating and
 * activating (the listing, database only: store/users.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "accounts/accounts.h"

static guest_status not_found(guest_error *err, const char *username)
{
    return guest__fail(err, GUEST_ERR_NOT_FOUND, "no user named \"%.160s\"",
                       username);
}

/* The arguments every call by name checks: GUEST_ERR_INVALID without a
 * context or name. A name no user can have (too long, bad UTF-8) is simply
 * not found, without sending PostgreSQL bytes it would reject. */
static guest_status by_name(const guest_ctx *ctx, const char *username,
                            guest_error *err)
{
    if (!ctx || !username)
        return guest__fail(err, GUEST_ERR_INVALID,
                           "ctx and username are required");
    if (!*username || guest__utf8_chars(username) > GUEST_USERNAME_MAX_CHARS ||
        !guest__utf8_valid(username, strlen(username)))
        return not_found(err, username);
    return GUEST_OK;
}

guest_status guest_user_delete(guest_ctx *ctx, const char *username,
                               int64_t *id_out, guest_error *err)
{
    guest_status st = by_name(ctx, username, err);
    if (st != GUEST_OK)
        return st;
    bool found;
    int64_t id;
    st = guest__store_user_delete(ctx, username, &found, &id, err);
    if (st == GUEST_OK && !found) {
        st = not_found(err, username);
    } else if (st == GUEST_OK) {
        guest__session_cache_drop_user(ctx, id);
        if (id_out)
            *id_out = id;
    }
    return st;
}

/* Sets @p field of the user named @p username to @p value and, when
 * @p end, deletes that user's sessions, in one transaction. *found says
 * whether a row changed. The sessions go in a statement of their own after
 * the UPDATE that locked the user: it then sees a session that a login
 * which held the row lock first committed meanwhile, which one statement
 * with both (one snapshot) would miss. */
static guest_status update_user(guest_ctx *ctx, guest__user_field field,
                                const char *username, const char *value,
                                bool end, bool *found, guest_error *err)
{
    guest_db tx;
    guest_status st = guest__tx_begin(ctx, &tx, err);
    if (st != GUEST_OK)
        return st;
    int64_t id = 0;
    st = guest__store_user_update(&tx, field, username, value, found, &id, err);
    if (st == GUEST_OK && *found && end)
        st = guest__store_sessions_end(&tx, id, err);
    if (st == GUEST_OK) {
        st = guest__tx_commit(&tx, err);
        if (st == GUEST_OK && *found && end)
            guest__session_cache_drop_user(ctx, id);
        return st;
    }
    guest__tx_abort(&tx);
    return st;
}

guest_status guest_user_set_active(guest_ctx *ctx, const char *username,
                                   bool active, guest_error *err)
{
    guest_status st = by_name(ctx, username, err);
    if (st != GUEST_OK)
        return st;
    bool found;
    st = update_user(ctx, GUEST__USER_ACTIVE, username,
                     active ? "true" : "false", !active, &found, err);
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
    errors = guest__form_errors_reset(errors, &local);
    guest_status st = by_name(ctx, username, err);
    if (st != GUEST_OK)
        return st;
    /* Who it is first: no hash is spent on a name that does not exist. */
    bool found, guest;
    st = guest__store_user_is_guest(ctx, username, &found, &guest, err);
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
         * meanwhile (guest__store_user_update checks it again). */
        st = update_user(ctx, GUEST__USER_PASSWORD, username, hash, true,
                         &found, err);
        if (st == GUEST_OK && !found)
            st = not_found(err, username);
    }
    OPENSSL_cleanse(hash, sizeof hash);
    return st;
}

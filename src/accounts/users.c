/* Registered users made directly, and the checks every new account
 * passes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accounts/accounts.h"

guest_status guest__check_new_account(const guest_ctx *ctx,
                                      const char *username,
                                      const char *password1,
                                      const char *password2, bool two_fields,
                                      guest_form_errors *errors, bool *name_ok)
{
    *name_ok = guest_username_validate(username, errors) == GUEST_OK;
    /* Django's similarity check sees the username only once it is valid. */
    const char *name = *name_ok ? username : NULL;
    const char *field = two_fields ? "password2" : "password";
    const char *password = NULL;
    if (two_fields) {
        bool have1 = password1 && *password1, have2 = password2 && *password2;
        if (!have1)
            guest_form_errors_add(errors, "password1", GUEST__MSG_REQUIRED);
        if (!have2)
            guest_form_errors_add(errors, "password2", GUEST__MSG_REQUIRED);
        if (have1 && have2 && strcmp(password1, password2) != 0)
            guest_form_errors_add(errors, "password2",
                                  "The two password fields didn't match.");
        else if (have1 && have2)
            password = password2;
    } else if (!password1 || !*password1) {
        guest_form_errors_add(errors, "password", GUEST__MSG_REQUIRED);
    } else {
        password = password1;
    }
    if (password) {
        guest_status st =
            guest_password_validate(ctx, name, password, field, errors);
        if (st != GUEST_OK && st != GUEST_ERR_VALIDATION)
            return st;
    }
    return errors->count ? GUEST_ERR_VALIDATION : GUEST_OK;
}

guest_status guest__check_username_free(guest_ctx *ctx, guest_db *tx,
                                        const char *username,
                                        const int64_t *except_id, bool name_ok,
                                        guest_form_errors *errors,
                                        guest_error *err)
{
    bool taken = false;
    if (name_ok) {
        guest_status st = guest__store_username_taken(ctx, tx, username,
                                                      except_id, &taken, err);
        if (st != GUEST_OK)
            return st;
        if (taken)
            guest_form_errors_add(errors, "username", GUEST__MSG_TAKEN);
    }
    if (errors->count)
        return taken && errors->count == 1 ? GUEST_ERR_USERNAME_TAKEN
                                           : GUEST_ERR_VALIDATION;
    return GUEST_OK;
}

guest_status guest__hash_password(guest_ctx *ctx, const char *password,
                                  char *out, size_t size)
{
    guest_status st = guest__hash_slot_take(ctx);
    if (st != GUEST_OK)
        return st;
    st = guest_password_hash(password, ctx->cfg.password_iterations, out, size);
    guest__hash_slot_give(ctx);
    return st;
}

guest_status guest_user_create(guest_ctx *ctx, const char *username,
                               const char *password, int64_t *id_out,
                               guest_form_errors *errors, guest_error *err)
{
    guest_form_errors local;
    errors = guest__form_errors_reset(errors, &local);
    if (!ctx)
        return guest__fail(err, GUEST_ERR_INVALID, "NULL context");
    bool name_ok;
    guest_status st = guest__check_new_account(ctx, username, password, NULL,
                                               false, errors, &name_ok);
    if (st != GUEST_OK && st != GUEST_ERR_VALIDATION)
        return st;
    /* Asked even when the password failed, so one answer lists every
     * problem; the INSERT below still decides a race. */
    st = guest__check_username_free(ctx, NULL, username, NULL, name_ok, errors,
                                    err);
    if (st != GUEST_OK)
        return st;
    char hash[GUEST_PASSWORD_HASH_BUF];
    st = guest__hash_password(ctx, password, hash, sizeof hash);
    if (st != GUEST_OK)
        return st;
    bool created;
    int64_t id;
    st = guest__store_user_create(ctx, username, hash, &created, &id, err);
    if (st == GUEST_OK && !created) {
        guest_form_errors_add(errors, "username", GUEST__MSG_TAKEN);
        st = GUEST_ERR_USERNAME_TAKEN;
    } else if (st == GUEST_OK && id_out) {
        *id_out = id;
    }
    return st;
}

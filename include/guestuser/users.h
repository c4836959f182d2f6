/* libguestuser: managing users from an admin tool or an admin page —
 * listing, deleting, setting a password, deactivating and activating.
 * What Django sites get from the admin and manage.py. Guide:
 * docs/accounts.md. */
#ifndef GUESTUSER_USERS_H
#define GUESTUSER_USERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "accounts.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Which users guest_users_list() reports. */
typedef enum guest_user_kind {
    GUEST_USERS_ALL,       /**< guests and registered users */
    GUEST_USERS_GUESTS,    /**< users with a guests row */
    GUEST_USERS_REGISTERED /**< everyone else */
} guest_user_kind;

/** One user as guest_users_list() reports it. */
typedef struct guest_user_info {
    int64_t id;
    /** Borrowed: valid only during the callback. */
    const char *username;
    bool is_guest;
    /** False once guest_user_set_active(..., false) deactivated it. */
    bool is_active;
    /** When the users row was made (a converted guest keeps its guest
     * creation time), Unix seconds rounded down. */
    int64_t date_joined;
    /** Last successful login or conversion, Unix seconds; 0: never. */
    int64_t last_login;
    /** A guest's expiry: its creation time plus the context's max_age,
     * Unix seconds; 0 for a registered user. */
    int64_t expires_at;
} guest_user_info;

/** Receives one user; return true for the next, false to stop early. */
typedef bool (*guest_user_list_fn)(const guest_user_info *user, void *userdata);

/**
 * Calls @p fn for each user of @p kind, newest first (date_joined, then
 * id), at most @p limit of them (0: no limit). The rows are read in one
 * statement before the first call, so @p fn may take its time. Returns
 * GUEST_ERR_INVALID for NULL @p ctx or @p fn or an unknown @p kind, or a
 * database status with @p err (may be NULL) filled; GUEST_OK also when
 * @p fn stopped early. Thread-safe.
 */
GUEST_API GUEST_NODISCARD guest_status
guest_users_list(guest_ctx *ctx, guest_user_kind kind, size_t limit,
                 guest_user_list_fn fn, void *userdata, guest_error *err);

/**
 * Deletes the user named @p username, guest or registered: its guests and
 * sessions rows and every application row whose foreign key to users says
 * ON DELETE CASCADE go with it, so its sessions end at once. *id_out (may
 * be NULL) gets the deleted id. GUEST_ERR_NOT_FOUND when no user has that
 * name; GUEST_ERR_INVALID for NULL arguments; GUEST_ERR_DB when a foreign
 * key without ON DELETE CASCADE / SET NULL refers to the user (nothing is
 * deleted; err says "SQLSTATE 23503: ..."); database statuses with @p err
 * (may be NULL) filled. Thread-safe.
 */
GUEST_API GUEST_NODISCARD guest_status guest_user_delete(guest_ctx *ctx,
                                                         const char *username,
                                                         int64_t *id_out,
                                                         guest_error *err);

/**
 * Sets the password of the registered user @p username, as Django's
 * `manage.py changepassword`: the config's validators check @p password
 * first (messages for the field "password" in @p errors, may be NULL),
 * then it is hashed at password_iterations in one of the context's hashing
 * slots (like guest_user_create(); GUEST_ERR_BUSY when none frees within
 * hash_wait_ms), stored, and every session of the user is deleted: whoever
 * was logged in as that user must log in again with the new password.
 * Works for inactive users too. GUEST_ERR_NOT_FOUND for an unknown name;
 * GUEST_ERR_INVALID for NULL @p ctx or @p username, or a guest (guests have
 * no password: convert them); GUEST_ERR_VALIDATION; GUEST_ERR_CONFIG (see
 * guest_password_validate()); database statuses with @p err (may be NULL)
 * filled. Nothing is written unless GUEST_OK. Thread-safe.
 */
GUEST_API GUEST_NODISCARD guest_status guest_user_set_password(
    guest_ctx *ctx, const char *username, const char *password,
    guest_form_errors *errors, guest_error *err);

/**
 * Deactivates (@p active false) or reactivates the user @p username, guest
 * or registered, like Django's is_active flag. Deactivating deletes every
 * session of the user in the same transaction, so the user's open pages
 * stop being theirs on the next request (the session lookup also ignores
 * inactive users), and guest_login() refuses the user like a wrong
 * password. Reactivating lets them log in again; old sessions stay gone.
 * Idempotent. GUEST_ERR_NOT_FOUND for an unknown name; GUEST_ERR_INVALID
 * for NULL arguments; database statuses with @p err (may be NULL) filled.
 * Thread-safe.
 */
GUEST_API GUEST_NODISCARD guest_status guest_user_set_active(
    guest_ctx *ctx, const char *username, bool active, guest_error *err);

#ifdef __cplusplus
}
#endif
#endif

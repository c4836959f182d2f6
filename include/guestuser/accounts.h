/* libguestuser: registered accounts — converting guests, creating users,
 * password login and logout, password hashes and validation.
 * Guides: docs/converting.md, docs/accounts.md. */
#ifndef GUESTUSER_ACCOUNTS_H
#define GUESTUSER_ACCOUNTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "form.h"
#include "http.h"

#ifdef __cplusplus
extern "C" {
#endif

/** One message about one form field. */
typedef struct guest_field_error {
    /** Static: "username", "password1", "password2", "password", "__all__"
     * (the whole form) or an application field name. */
    const char *field;
    /** Human-readable message, UTF-8, NUL-terminated. */
    char message[200];
} guest_field_error;

/** Every message of one form submission, in the order found. Caller-owned
 * (stack is fine); the calls that fill it reset it first. */
typedef struct guest_form_errors {
    size_t count;
    guest_field_error items[16];
} guest_form_errors;

/**
 * Appends @p message (truncated to fit, on a character boundary) for
 * @p field, which must outlive @p errors (a literal or an application field
 * name). Once 16 messages are stored, more are dropped. NULL @p errors is a
 * no-op.
 */
GUEST_API void guest_form_errors_add(guest_form_errors *errors,
                                     const char *field, const char *message);

/** The first message for @p field, or NULL (borrowed from @p errors). */
GUEST_API const char *guest_form_errors_get(const guest_form_errors *errors,
                                            const char *field);

/* ---- passwords ---- */

/** Buffer size that holds any hash guest_password_hash() writes. */
#define GUEST_PASSWORD_HASH_BUF 128

/**
 * Hashes @p password as Django's PBKDF2PasswordHasher does:
 * "pbkdf2_sha256$<iterations>$<22-character random salt>$<base64 hash>",
 * written NUL-terminated into @p out (size @p size, GUEST_PASSWORD_HASH_BUF
 * is enough). GUEST_ERR_INVALID for a NULL or empty password, iterations 0
 * or above INT_MAX, or a small buffer; GUEST_ERR_CRYPTO when OpenSSL fails.
 * Thread-safe; takes as long as @p iterations makes it, on the calling
 * thread: it does not take one of the context's hashing slots
 * (hash_concurrency), which only the library's request paths use.
 */
GUEST_API GUEST_NODISCARD guest_status guest_password_hash(const char *password,
                                                           unsigned iterations,
                                                           char *out,
                                                           size_t size);

/**
 * True when @p password matches @p encoded, a pbkdf2_sha256 hash (ours or
 * Django's), compared in constant time. False for a NULL or empty password
 * and for an empty, unusable ("!..."), malformed or other-algorithm hash.
 * Thread-safe; like guest_password_hash() it takes no hashing slot.
 */
GUEST_API GUEST_NODISCARD bool guest_password_verify(const char *password,
                                                     const char *encoded);

/**
 * Django's username rules: required, at most 150 characters, only letters,
 * digits and @ . + - _ (letters and digits of any script; no Unicode
 * normalization is applied). GUEST_OK, or GUEST_ERR_VALIDATION with the
 * message added to @p errors (may be NULL) for "username". Does not check
 * that the name is free. Thread-safe.
 */
GUEST_API GUEST_NODISCARD guest_status
guest_username_validate(const char *username, guest_form_errors *errors);

/**
 * Runs the password validators the config turns on (password_checks,
 * password_min_length, password_check) on @p password for @p username
 * (may be NULL: no similarity check), adding each failure's message for
 * @p field. GUEST_OK; GUEST_ERR_VALIDATION when a validator refused;
 * GUEST_ERR_CONFIG when the common-password check cannot load its cracklib
 * dictionary; GUEST_ERR_INVALID for NULL @p ctx or @p password. Thread-safe.
 */
GUEST_API GUEST_NODISCARD guest_status guest_password_validate(
    const guest_ctx *ctx, const char *username, const char *password,
    const char *field, guest_form_errors *errors);

/* ---- the database handle lent to callbacks ---- */

/** Most parameters of one statement: guest_db_exec(), guest_db_query(),
 * guest_req_query() (also defined in db.h). */
#define GUEST_DB_MAX_PARAMS 16

/**
 * Runs one SQL statement inside the library's open transaction, with
 * @p nparams text parameters ($1, $2...; a NULL element is SQL NULL). Build
 * @p sql from constants only and pass every input as a parameter. Valid only
 * during the callback that received @p db. After a failure the transaction
 * is aborted: later calls fail too and the whole operation is rolled back.
 * GUEST_ERR_DB with "SQLSTATE xxxxx: message" in @p err (23505 is a unique
 * violation), GUEST_ERR_DB_UNAVAILABLE, GUEST_ERR_INVALID for NULL
 * arguments, more than GUEST_DB_MAX_PARAMS parameters, or a statement that
 * would end or split the transaction or change the session (BEGIN, COMMIT,
 * ROLLBACK, END, ABORT, SAVEPOINT, RELEASE, PREPARE, SET, RESET, DISCARD),
 * which also rolls the operation back.
 */
GUEST_API GUEST_NODISCARD guest_status guest_db_exec(guest_db *db,
                                                     const char *sql,
                                                     int nparams,
                                                     const char *const *params,
                                                     guest_error *err);

/* ---- custom sign-up fields ---- */

/** An extra field of the sign-up (convert) form. */
typedef struct guest_signup_field {
    /** Form field name: 1-64 of [A-Za-z0-9_-], not a built-in field name.
     * It is also the `field` of this field's errors. */
    const char *name;
    /** Label shown by the built-in page (plain text). */
    const char *label;
    /** HTML input type: "text", "email", "checkbox"... (NULL: "text"). */
    const char *type;
    /** Missing or empty is "This field is required." */
    bool required;
} guest_signup_field;

/**
 * Checks the extra fields of a submitted form (@p form may be NULL when the
 * conversion was called without one). Add messages with
 * guest_form_errors_add(); return GUEST_OK to go on (the conversion fails
 * with GUEST_ERR_VALIDATION if any message was added) or another status to
 * abort it with GUEST_ERR_HOOK. Runs before any database work.
 */
typedef guest_status (*guest_signup_validate_fn)(const guest_form *form,
                                                 guest_form_errors *errors,
                                                 void *userdata);

/**
 * Stores the extra fields for @p user inside the conversion transaction,
 * through @p db (guest_db_exec). Return GUEST_OK to commit;
 * GUEST_ERR_VALIDATION after adding messages (a unique email already
 * taken...) to roll back and show the form again; anything else rolls back
 * with GUEST_ERR_HOOK.
 */
typedef guest_status (*guest_signup_store_fn)(guest_db *db,
                                              const guest_user *user,
                                              const guest_form *form,
                                              guest_form_errors *errors,
                                              void *userdata);

/** The application's sign-up form: the counterpart of Django's
 * GUEST_USER_CONVERT_FORM. Every member may be 0 / NULL. Borrowed. */
typedef struct guest_signup {
    const guest_signup_field *fields;
    size_t field_count;
    guest_signup_validate_fn validate;
    guest_signup_store_fn store;
    void *userdata;
} guest_signup;

/* ---- conversion, creation, login, logout ---- */

/**
 * Turns the request's guest into a registered user named @p username with
 * password @p password1 (@p password2 must repeat it). Validates the
 * username, the passwords and, with @p signup, the extra fields of @p form;
 * then in one transaction locks the guest, sets username, password and
 * last_login, stores the extra fields, deletes the guests row, and replaces
 * every session of the user with a new one (new cookie; the old token dies
 * at once). After the commit the request's user is the registered user,
 * the CSRF secret is renewed and on_converted fires. The user id stays the
 * same.
 *
 * Returns GUEST_OK; GUEST_ERR_NOT_GUEST when the visitor is anonymous,
 * registered, or stopped being a guest meanwhile (a concurrent conversion:
 * nothing changed, the request's user is looked up afresh);
 * GUEST_ERR_USERNAME_TAKEN when the name is the only problem;
 * GUEST_ERR_VALIDATION with every message in @p errors (may be NULL);
 * GUEST_ERR_HOOK when a signup callback failed; GUEST_ERR_CONFIG (see
 * guest_password_validate()); GUEST_ERR_BUSY when no hashing slot freed
 * within hash_wait_ms; database statuses. Nothing is written unless
 * GUEST_OK. @p err (may be NULL) gets the detail of a failure that is not
 * about the form: libpq's message for a database status, which callback
 * failed for GUEST_ERR_HOOK. Call from the request's thread.
 */
GUEST_API GUEST_NODISCARD guest_status guest_convert(
    guest_req *req, const char *username, const char *password1,
    const char *password2, guest_form_errors *errors, guest_error *err);

/** guest_convert() with an application sign-up form: @p signup (may be
 * NULL) and the submitted @p form (may be NULL) it reads. */
GUEST_API GUEST_NODISCARD guest_status guest_convert_with(
    guest_req *req, const char *username, const char *password1,
    const char *password2, const guest_signup *signup, const guest_form *form,
    guest_form_errors *errors, guest_error *err);

/**
 * Creates a registered user after the same validation as conversion.
 * *id_out (may be NULL) gets the new id. GUEST_ERR_USERNAME_TAKEN /
 * GUEST_ERR_VALIDATION with messages in *errors (may be NULL; the password's
 * are for "password"), GUEST_ERR_INVALID for NULL @p ctx, GUEST_ERR_CONFIG,
 * GUEST_ERR_BUSY (no hashing slot within hash_wait_ms), database statuses
 * with libpq's detail in @p err (may be NULL). Thread-safe.
 */
GUEST_API GUEST_NODISCARD guest_status
guest_user_create(guest_ctx *ctx, const char *username, const char *password,
                  int64_t *id_out, guest_form_errors *errors, guest_error *err);

/**
 * Logs the request in as the active registered user @p username when
 * @p password matches. In one transaction: when the visitor is a guest,
 * on_guest_login(guest, user, db) runs and the guest user is deleted (its
 * rows cascade); last_login is set (and the hash renewed when it has fewer
 * iterations than the config's; never when it has more); the request's
 * session row is replaced with a new one (new cookie). Then the CSRF secret
 * is renewed. The hashing runs in one of the context's hashing slots.
 *
 * GUEST_OK; GUEST_ERR_AUTH ("Please enter a correct username and
 * password..." for "__all__") for an unknown, inactive or guest user or a
 * wrong password, costing at least one hash at password_iterations like a
 * right one; GUEST_ERR_VALIDATION when a field is missing; GUEST_ERR_HOOK
 * when on_guest_login failed (nothing changed); GUEST_ERR_BUSY when no
 * hashing slot freed within hash_wait_ms (nothing hashed or changed);
 * database statuses. @p err (may be NULL) gets libpq's detail for a
 * database status and says why for GUEST_ERR_HOOK and
 * GUEST_ERR_RATE_LIMITED. Call from the request's thread.
 */
GUEST_API GUEST_NODISCARD guest_status guest_login(guest_req *req,
                                                   const char *username,
                                                   const char *password,
                                                   guest_form_errors *errors,
                                                   guest_error *err);

/**
 * Ends the request's session: deletes its row and clears the cookie; the
 * request's user becomes anonymous. A guest's account stays until cleanup.
 * GUEST_OK also when there was no session; database statuses with
 * libpq's detail in @p err (may be NULL).
 */
GUEST_API GUEST_NODISCARD guest_status guest_logout(guest_req *req,
                                                    guest_error *err);

/**
 * The request's registered user changes their password, as Django's
 * PasswordChangeForm: @p old_password must be the current one, and
 * @p new_password1 and @p new_password2 equal and accepted by the config's
 * validators (checked with the username for similarity). The old password
 * is checked and the new one hashed in one of the context's hashing slots,
 * like guest_login(). Then in one transaction the new hash is stored
 * (only while the stored hash is still the one checked), every session of
 * the user is deleted — other browsers and devices are logged out at
 * once — and a new session replaces this request's (new cookie). Then the
 * CSRF secret is renewed. With login_rate_limit on, a wrong old password
 * counts as a failed login of that username from this address, and past
 * the limit the call is refused before any hashing.
 *
 * GUEST_OK; GUEST_ERR_VALIDATION with every message in @p errors (may be
 * NULL) for "old_password" ("Your old password was entered incorrectly.
 * Please enter it again."), "new_password1" and "new_password2"; every
 * problem is reported at once. GUEST_ERR_AUTH when the visitor is
 * anonymous or a guest, or the user was deleted or deactivated meanwhile;
 * GUEST_ERR_RATE_LIMITED (message for "__all__",
 * guest_req_retry_after()); GUEST_ERR_BUSY when no hashing slot freed
 * within hash_wait_ms; GUEST_ERR_CONFIG (see guest_password_validate());
 * database statuses with libpq's detail in @p err (may be NULL). Nothing
 * is written unless GUEST_OK. Call from the request's thread.
 */
GUEST_API GUEST_NODISCARD guest_status guest_password_change(
    guest_req *req, const char *old_password, const char *new_password1,
    const char *new_password2, guest_form_errors *errors, guest_error *err);

#ifdef __cplusplus
}
#endif
#endif

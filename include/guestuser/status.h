/* libguestuser: the one status type every fallible call returns. */
#ifndef GUESTUSER_STATUS_H
#define GUESTUSER_STATUS_H

#include "export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One list generates the enum, guest_status_name() and guest_strerror(),
 * so the three cannot drift apart. */
#define GUEST_STATUS_MAP(X)                                                    \
    X(OK, 0, "success")                                                        \
    X(ERR_INVALID, 1, "invalid argument")                                      \
    X(ERR_NOMEM, 2, "out of memory")                                           \
    X(ERR_CONFIG, 3, "invalid configuration")                                  \
    X(ERR_DB_UNAVAILABLE, 4, "database unavailable")                           \
    X(ERR_DB, 5, "database error")                                             \
    X(ERR_NAME_EXHAUSTED, 6, "could not generate a unique guest name")         \
    X(ERR_NOT_GUEST, 7, "the user is not a guest")                             \
    X(ERR_USERNAME_TAKEN, 8, "a user with that username already exists")       \
    X(ERR_VALIDATION, 9, "invalid input")                                      \
    X(ERR_AUTH, 10, "invalid credentials")                                     \
    X(ERR_CSRF, 11, "CSRF verification failed")                                \
    X(ERR_CRYPTO, 12, "cryptographic library failure")                         \
    X(ERR_HOOK, 13, "an application callback reported failure")                \
    X(ERR_CANCELLED, 14, "cancelled by the caller")                            \
    X(ERR_TOO_LARGE, 15, "input too large")                                    \
    X(ERR_BUSY, 16, "the server is busy, try again later")                     \
    X(ERR_RATE_LIMITED, 17, "too many attempts, try again later")              \
    X(ERR_BAD_HOST, 18, "the Host header names no allowed host")               \
    X(ERR_NOT_FOUND, 19, "no such user")                                       \
    X(ERR_IDENTITY_TAKEN, 20, "that identity belongs to another account")      \
    X(ERR_SIGNUP_CLOSED, 21, "new accounts cannot be made this way")           \
    X(ERR_LAST_LOGIN, 22, "it is the account's only way to log in")

/** Status returned by every fallible libguestuser call; GUEST_OK is 0. */
typedef enum guest_status {
#define GUEST__STATUS_ENUM(name, value, msg) GUEST_##name = (value),
    GUEST_STATUS_MAP(GUEST__STATUS_ENUM)
#undef GUEST__STATUS_ENUM
} guest_status;

/** Human-readable message for @p status; never NULL, static storage. */
GUEST_API const char *guest_strerror(guest_status status);

/** Symbolic name of @p status ("GUEST_ERR_DB"); never NULL, static storage. */
GUEST_API const char *guest_status_name(guest_status status);

/**
 * Detail for one failing call, owned by the caller (stack is fine).
 * Calls that take a `guest_error *` fill it on failure when it is not NULL;
 * on success its contents are unspecified.
 */
typedef struct guest_error {
    guest_status status;
    char message[256];
} guest_error;

#ifdef __cplusplus
}
#endif
#endif

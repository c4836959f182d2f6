/* libguestuser: e-mail on accounts — a verified address, password reset by
 * a link sent to it, and changing the address. Every mail is written to
 * the outbox in the same transaction as what causes it; a sender delivers
 * it (mail.h). Guide: docs/email.md. */
#ifndef GUESTUSER_EMAIL_H
#define GUESTUSER_EMAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "accounts.h"
#include "mail.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Longest address accepted, bytes (RFC 5321's path limit). */
#define GUEST_EMAIL_MAX 254

/** Which mail a renderer is asked for. */
enum guest_mail_kind {
    GUEST_MAIL_VERIFY,         /**< "confirm this address": a link */
    GUEST_MAIL_PASSWORD_RESET, /**< "set a new password": a link */
    GUEST_MAIL_EMAIL_CHANGED   /**< to the old address: it was replaced */
};

/** What a mail says; every pointer is borrowed for the call. */
struct guest_mail_vars {
    guest_mail_kind kind;
    const char *username;
    const char *address; /**< the address the mail goes to */
    /** The link to open (VERIFY, PASSWORD_RESET), "" otherwise. */
    const char *link;
    /** How long the link works, seconds. */
    unsigned valid_s;
    /** The new address (EMAIL_CHANGED), "" otherwise. */
    const char *new_address;
};

/** A rendered mail: three strings from malloc() the library frees;
 * html may stay NULL. */
struct guest_mail_content {
    char *subject;
    char *text;
    char *html;
};

/** The built-in English mails; a render callback may call it for the kinds
 * it does not replace. */
GUEST_API GUEST_NODISCARD guest_status
guest_mail_render_default(const guest_mail_vars *vars, guest_mail_content *out);

/**
 * Sends a password-reset link to @p email if a registered, active user has
 * that verified address, and answers the same otherwise: GUEST_OK, after
 * the same statements, whatever the address (so nobody learns which
 * addresses exist). The link is PUBLIC_URL/accounts/password/reset/TOKEN/
 * (guest_config.public_url), valid password_reset_timeout seconds, single
 * use, and dies with any change of the user's password. Rate-limited per
 * client address (password_reset_rate_limit) and per address asked for
 * (password_reset_email_limit): GUEST_ERR_RATE_LIMITED with
 * guest_req_retry_after(). GUEST_ERR_CONFIG without mail_from or
 * public_url; database statuses with @p err (may be NULL).
 */
GUEST_API GUEST_NODISCARD guest_status guest_password_reset_request(
    guest_req *req, const char *email, guest_error *err);

/**
 * Whether @p token is a live reset link: GUEST_OK (and the user's name into
 * @p username, may be NULL, of GUEST_USERNAME_BUF bytes), or
 * GUEST_ERR_NOT_FOUND when unknown, used, expired, or the password changed
 * since. Opening the link does not use it up (mail scanners open links).
 * Thread-safe.
 */
GUEST_API GUEST_NODISCARD guest_status guest_password_reset_check(
    guest_ctx *ctx, const char *token, char *username, guest_error *err);

/**
 * Sets a new password with reset link @p token: the passwords are checked
 * like guest_password_change()'s new ones (messages for "new_password1" and
 * "new_password2" in @p errors, may be NULL), then in one transaction the
 * hash is stored, the link used up and every session of the user ended.
 * The visitor is not logged in: they log in with the new password.
 * GUEST_OK; GUEST_ERR_NOT_FOUND for a dead link; GUEST_ERR_VALIDATION;
 * GUEST_ERR_BUSY (no hashing slot); database statuses.
 */
GUEST_API GUEST_NODISCARD guest_status guest_password_reset_confirm(
    guest_req *req, const char *token, const char *new_password1,
    const char *new_password2, guest_form_errors *errors, guest_error *err);

/**
 * guest_convert() with an e-mail address, as guest_config.signup_email
 * asks: GUEST_EMAIL_OFF ignores @p email; GUEST_EMAIL_REQUIRED refuses an
 * empty one ("email": "This field is required."). A malformed address or
 * one another user has (whatever its case) is a GUEST_ERR_VALIDATION with
 * a message for "email". A given address is stored unverified and a
 * verification link is queued in the conversion's transaction;
 * GUEST_ERR_CONFIG when one is given without mail_from or public_url.
 * The convert view and guest_convert_with() read the form's "email".
 */
GUEST_API GUEST_NODISCARD guest_status
guest_convert_email(guest_req *req, const char *username, const char *email,
                    const char *password1, const char *password2,
                    guest_form_errors *errors, guest_error *err);

/**
 * The request's registered user asks for a new address @p email: checked
 * (messages for "email" in @p errors) and, when the user has a usable
 * password, @p password must be it ("password"). A verification link goes
 * to the new address (valid email_verify_timeout seconds); the address
 * takes effect only when it is opened. GUEST_OK; GUEST_ERR_AUTH for a guest
 * or anonymous visitor; GUEST_ERR_VALIDATION (also when another user has
 * that address); GUEST_ERR_CONFIG without mail_from or public_url;
 * GUEST_ERR_BUSY; database statuses.
 */
GUEST_API GUEST_NODISCARD guest_status
guest_email_change(guest_req *req, const char *email, const char *password,
                   guest_form_errors *errors, guest_error *err);

/**
 * Verifies an address with link @p token (single use): the user's address
 * becomes the one the link was sent to, verified now; a verified address
 * it replaces is told so by mail. Works whoever opens it (the link is the
 * proof). GUEST_OK (*email_out, may be NULL, of GUEST_EMAIL_MAX + 1 bytes,
 * gets the address); GUEST_ERR_NOT_FOUND for an unknown, used or expired
 * link; GUEST_ERR_VALIDATION when another user verified that address
 * first; database statuses. Thread-safe.
 */
GUEST_API GUEST_NODISCARD guest_status guest_email_verify(guest_ctx *ctx,
                                                          const char *token,
                                                          char *email_out,
                                                          guest_error *err);

/**
 * Whether @p token is a live verification link: GUEST_OK, or
 * GUEST_ERR_NOT_FOUND when unknown, used or expired (a page opening the
 * link says so before offering its button). Uses nothing up. Thread-safe.
 */
GUEST_API GUEST_NODISCARD guest_status
guest_email_verify_check(guest_ctx *ctx, const char *token, guest_error *err);

/**
 * User @p user_id's address into @p buf (@p size bytes; "" when none) and
 * whether it is verified. GUEST_ERR_NOT_FOUND for an unknown user.
 */
GUEST_API GUEST_NODISCARD guest_status guest_user_email(guest_ctx *ctx,
                                                        int64_t user_id,
                                                        char *buf, size_t size,
                                                        bool *verified,
                                                        guest_error *err);

/** A background sender: a thread delivering the outbox. */
typedef struct guest_mail_sender guest_mail_sender;

/**
 * Starts a thread that delivers due outbox mails through @p transport
 * (copied): at once when this process queues one, and every mail_poll_ms
 * otherwise (mails queued by other processes, retries). Several processes
 * may each run one: a mail is taken by one of them (FOR UPDATE SKIP
 * LOCKED) and leased for the time its delivery may take. A failed delivery
 * is retried with growing waits (10 s, doubling, at most an hour) up to
 * mail_max_attempts, then kept as failed. GUEST_ERR_INVALID for NULL
 * arguments or a transport without send; GUEST_ERR_NOMEM. Stop it with
 * guest_mail_sender_stop() before guest_ctx_free().
 */
GUEST_API GUEST_NODISCARD guest_status
guest_mail_sender_start(guest_ctx *ctx, const guest_mail_transport *transport,
                        guest_mail_sender **out, guest_error *err);

/** Stops the sender after the mail it is delivering; NULL is a no-op. */
GUEST_API void guest_mail_sender_stop(guest_mail_sender *sender);

/**
 * One pass of the sender in the calling thread: delivers the mails due now
 * (at most @p limit, 0: all) and says how many went (*sent) and how many
 * failed for good (*failed), each may be NULL. For a cron job or a test.
 */
GUEST_API GUEST_NODISCARD guest_status guest_mail_send_due(
    guest_ctx *ctx, const guest_mail_transport *transport, size_t limit,
    unsigned *sent, unsigned *failed, guest_error *err);

#ifdef __cplusplus
}
#endif
#endif

/* libguestuser: accounts signed in through an identity provider (OpenID
 * Connect and the like). The provider's part (redirects, tokens, their
 * signatures) is a separate component; this header is what it, or any
 * application that verified an identity itself, hands to the library:
 * convert the guest, log in, link, unlink. Guide:
 * docs/identity-providers.md. */
#ifndef GUESTUSER_IDENTITIES_H
#define GUESTUSER_IDENTITIES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "accounts.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * An identity a provider vouched for, already verified by the caller (for
 * OpenID Connect: the ID token's signature, iss, aud, exp and nonce). The
 * pair (issuer, subject) names it; nothing else is trusted to find an
 * account: an e-mail address alone never links or logs in. Every pointer is
 * borrowed for the call.
 */
struct guest_identity {
    const char *issuer;  /**< the provider, exactly as verified; required */
    const char *subject; /**< the provider's id of the person; required */
    const char *email;   /**< NULL when the provider gave none */
    bool email_verified; /**< whether the provider says it checked it */
    /** Where a new account's username comes from, in this order: the
     * preferred username, the e-mail's local part, the name; each may be
     * NULL. */
    const char *preferred_username;
    const char *name;
    /** The ID token's claims as JSON, for on_identity_linked; may be NULL. */
    const char *claims_json;
};

/** What guest_identity_sign_in() did. */
typedef enum guest_identity_outcome {
    GUEST_IDENTITY_CONVERTED, /**< the guest became a registered user */
    GUEST_IDENTITY_SIGNED_UP, /**< an anonymous visitor got a new account */
    GUEST_IDENTITY_LINKED,    /**< linked to the logged-in user */
    GUEST_IDENTITY_LOGGED_IN  /**< logged in as the identity's user */
} guest_identity_outcome;

/**
 * Signs the request's visitor in with @p identity, as the reference's
 * social-account integration does:
 *
 * | identity      | visitor            | result                            |
 * |---------------|--------------------|-----------------------------------|
 * | unknown       | guest              | CONVERTED: same id, username from |
 * |               |                    | the identity (a number appended   |
 * |               |                    | on a clash), no usable password   |
 * | unknown       | anonymous          | SIGNED_UP, unless identity_signup |
 * |               |                    | is off: GUEST_ERR_SIGNUP_CLOSED   |
 * | unknown       | registered         | LINKED to that user               |
 * | user U's      | guest              | LOGGED_IN as U; on_guest_login    |
 * |               |                    | runs and the guest is deleted     |
 * | user U's      | anonymous, or U    | LOGGED_IN as U                    |
 * | user U's      | another registered | GUEST_ERR_IDENTITY_TAKEN          |
 *
 * One transaction; the session is replaced (new cookie) except for LINKED,
 * and the CSRF secret renewed. After the commit on_converted (CONVERTED)
 * and on_identity_linked (CONVERTED, SIGNED_UP, LINKED) run. An inactive U
 * is refused with GUEST_ERR_AUTH. GUEST_ERR_INVALID for a NULL argument,
 * an empty issuer or subject, or either longer than 255 bytes;
 * GUEST_ERR_HOOK when on_guest_login failed; database statuses with
 * @p err (may be NULL) filled. Nothing is written unless GUEST_OK.
 * *outcome (may be NULL) says what happened. Call from the request's
 * thread.
 */
GUEST_API GUEST_NODISCARD guest_status
guest_identity_sign_in(guest_req *req, const guest_identity *identity,
                       guest_identity_outcome *outcome, guest_error *err);

/** One linked identity as guest_identities_list() reports it. */
typedef struct guest_identity_info {
    /** Borrowed: valid only during the callback. */
    const char *issuer;
    const char *subject;
    const char *email; /**< "" when none */
    bool email_verified;
    int64_t linked_at;  /**< Unix seconds */
    int64_t last_login; /**< Unix seconds; 0: never used to log in */
} guest_identity_info;

/** Receives one identity; return true for the next, false to stop. */
typedef bool (*guest_identity_list_fn)(const guest_identity_info *identity,
                                       void *userdata);

/**
 * Calls @p fn for each identity linked to user @p user_id, oldest first.
 * GUEST_ERR_INVALID for NULL @p ctx or @p fn; database statuses with
 * @p err (may be NULL) filled. Thread-safe.
 */
GUEST_API GUEST_NODISCARD guest_status guest_identities_list(
    guest_ctx *ctx, int64_t user_id, guest_identity_list_fn fn, void *userdata,
    guest_error *err);

/**
 * Unlinks identity (@p issuer, @p subject) from user @p user_id, unless it
 * is the user's only way to log in (no usable password and no other
 * identity): GUEST_ERR_LAST_LOGIN then, and nothing changes.
 * GUEST_ERR_NOT_FOUND when that user has no such identity;
 * GUEST_ERR_INVALID for NULL arguments; database statuses. Thread-safe.
 */
GUEST_API GUEST_NODISCARD guest_status
guest_identity_unlink(guest_ctx *ctx, int64_t user_id, const char *issuer,
                      const char *subject, guest_error *err);

/**
 * The id of the user named @p username, guest or registered, and whether
 * it has a usable password (@p has_password, may be NULL).
 * GUEST_ERR_NOT_FOUND when there is none; database statuses. Thread-safe.
 */
GUEST_API GUEST_NODISCARD guest_status guest_user_lookup(guest_ctx *ctx,
                                                         const char *username,
                                                         int64_t *id,
                                                         bool *has_password,
                                                         guest_error *err);

/**
 * Keeps @p payload (text) for one later guest_flow_take() with the same
 * @p key and @p binding within @p ttl_s seconds (1..86400): the state of a
 * sign-in that leaves the site and comes back (an OpenID Connect
 * authorization request's state, nonce and PKCE verifier). Only SHA-256
 * hashes of @p key and @p binding are stored; pass a random key of at
 * least 128 bits and, as @p binding, a secret the browser that started
 * the flow holds (a cookie), so that a key alone cannot finish it.
 * GUEST_ERR_INVALID for NULL or empty arguments, a payload over 8 KiB or a
 * ttl out of range; database statuses. Thread-safe.
 */
GUEST_API GUEST_NODISCARD guest_status
guest_flow_put(guest_ctx *ctx, const char *key, const char *binding,
               const char *payload, unsigned ttl_s, guest_error *err);

/**
 * Takes the payload stored under @p key for @p binding, once: the row is
 * deleted in the same statement, so a replay finds nothing. *payload is
 * the caller's to release with guest_free(). GUEST_ERR_NOT_FOUND when no
 * live flow has that key and binding (unknown, expired, used, or started
 * by another browser); database statuses. Thread-safe.
 */
GUEST_API GUEST_NODISCARD guest_status guest_flow_take(guest_ctx *ctx,
                                                       const char *key,
                                                       const char *binding,
                                                       char **payload,
                                                       guest_error *err);

/** Releases memory the library handed out and documented as such; NULL is
 * a no-op. */
GUEST_API void guest_free(void *p);

#ifdef __cplusplus
}
#endif
#endif

/* libguestuser-oidc: "Continue with NAME" through any OpenID Connect
 * provider, as a separate library (guestuser::oidc, guestuser-oidc.pc) on
 * the public API only: the authorization code flow with PKCE, the ID
 * token's checks, then guest_identity_sign_in() (identities.h). Guide:
 * docs/identity-providers.md. */
#ifndef GUESTUSER_OIDC_H
#define GUESTUSER_OIDC_H

#include <stddef.h>

#include "guestuser.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The providers of one site and their cached metadata. Opaque; made once
 * with guest_oidc_new(), shared by every server thread. */
typedef struct guest_oidc guest_oidc;

/** Settings of guest_oidc_new(); fill with guest_oidc_config_init(), then
 * override field by field. Strings are copied by guest_oidc_new(). */
typedef struct guest_oidc_config {
    /** sizeof(guest_oidc_config) where the program was compiled, set by
     * guest_oidc_config_init() (docs/abi.md). */
    size_t size;
    /** The site's external base URL, e.g. "https://example.com" (no
     * trailing slash needed); required. A provider's redirect URI is
     * PUBLIC_URL + login_url_prefix + NAME + "/callback/", and must be
     * registered at the provider exactly so. */
    const char *public_url;
    /** Path under which the views are mounted ("/accounts/oidc/"); also
     * the Path of the browser-binding cookie. Starts and ends with '/'. */
    const char *login_url_prefix;
    /** Deadline of each call to a provider (discovery, JWKS, token), ms
     * (10000); 1..120000. */
    unsigned http_timeout_ms;
    /** Largest answer read from a provider, bytes (1 MiB); larger is a
     * provider failure. 1024..64 MiB. */
    size_t max_response_bytes;
    /** Provider calls in progress at once over all threads (8); 1..1024.
     * A callback that finds them all taken waits up to wait_ms, then
     * answers 503 with Retry-After, as password hashing does. */
    unsigned concurrency;
    /** How long a callback waits for a free place, ms (2000); 0..60000. */
    unsigned wait_ms;
} guest_oidc_config;

/** Fills @p cfg with the defaults above (public_url NULL), and its size. */
#define guest_oidc_config_init(cfg)                                            \
    guest_oidc_config_init_size((cfg), sizeof(guest_oidc_config))
/** guest_oidc_config_init() for a struct of @p size bytes (the program's
 * sizeof). */
GUEST_API void guest_oidc_config_init_size(guest_oidc_config *cfg, size_t size);

/**
 * Makes the providers' registry for @p ctx (borrowed: it must outlive the
 * result). GUEST_ERR_CONFIG when a setting is out of range or public_url is
 * not an absolute http(s) URL without query or fragment; GUEST_ERR_INVALID
 * for NULL arguments; GUEST_ERR_NOMEM. @p err (may be NULL) says which.
 * *out is the caller's, released with guest_oidc_free(). Nothing is
 * fetched yet: discovery happens on first use.
 */
GUEST_API GUEST_NODISCARD guest_status
guest_oidc_new(guest_ctx *ctx, const guest_oidc_config *cfg, guest_oidc **out,
               guest_error *err);

/**
 * Adds a provider named @p name ([a-z0-9_-]{1,32}, unique; it appears in
 * the URLs and on the button "Continue with NAME"), whose discovery
 * document is at ISSUER/.well-known/openid-configuration and must name
 * exactly @p issuer. The issuer must be https://, except on a loopback host
 * (127.0.0.0/8, [::1], localhost), which may be http://; the same holds
 * for every endpoint its discovery document names. All strings are
 * copied. GUEST_ERR_CONFIG for a bad name, a name used already, a bad
 * issuer or an empty client id or secret; GUEST_ERR_INVALID for NULL
 * arguments; GUEST_ERR_NOMEM. Not thread-safe: add every provider before
 * serving requests.
 */
GUEST_API GUEST_NODISCARD guest_status guest_oidc_add_provider(
    guest_oidc *oidc, const char *name, const char *issuer,
    const char *client_id, const char *client_secret, guest_error *err);

/** Number of providers added (0 for NULL). */
GUEST_API size_t guest_oidc_provider_count(const guest_oidc *oidc);

/** Name of provider @p i (0-based, in the order added), borrowed until
 * guest_oidc_free(); NULL when out of range. */
GUEST_API const char *guest_oidc_provider_name(const guest_oidc *oidc,
                                               size_t i);

/** Releases @p oidc; NULL is a no-op. No request may still be using it. */
GUEST_API void guest_oidc_free(guest_oidc *oidc);

/*
 * The views (guest_handler_fn; userdata: the guest_oidc *). Every refusal
 * leaves the visitor exactly as they were and answers a short HTML page
 * (JSON {"errors": {"__all__": [...]}} when guest_req_wants_json()):
 * 400 for a flow that is unknown, expired, used already or from another
 * browser, for the provider's error answer and for a token that fails a
 * check; 502 when the provider cannot be reached in time or answers
 * nonsense; 503 with Retry-After when the provider calls are all taken or
 * the database fails; 404 for an unknown provider. Each failure is one log
 * line (guest_config.log), at most one per kind and provider every 10 s.
 */

/**
 * Mount at login_url_prefix + "*" for every method: the login and callback
 * views below, chosen by the path's last part; 404 otherwise.
 */
GUEST_API void guest_oidc_view(guest_req *req, void *userdata);

/**
 * PREFIX/NAME/login/. GET/HEAD: a page with one button, "Continue with
 * NAME", a CSRF-protected POST to the same URL carrying the safe `next`
 * (config redirect_field_name). POST (403 when the CSRF check fails):
 * starts a flow (random state, nonce and PKCE S256 verifier, kept 10
 * minutes with guest_flow_put(), bound to this browser by an HttpOnly
 * SameSite=Lax cookie under PREFIX) and answers 302 to the provider's
 * authorization endpoint (JSON: 200 {"location": URL}). A GET never starts
 * a flow.
 */
GUEST_API void guest_oidc_login_view(guest_req *req, void *userdata);

/**
 * PREFIX/NAME/callback/, GET only (HEAD is 405: a prefetcher must not
 * use up the flow): finishes the flow the provider sends
 * the browser back with: takes it (once, this browser only), checks the
 * RFC 9207 iss parameter when present, exchanges the code (with the PKCE
 * verifier; client_secret_basic, or client_secret_post when that is all
 * the provider offers), verifies the ID token (RS256, PS256 or ES256 with
 * a key of the provider's JWKS, iss, aud, azp, exp, iat, nonce, 60 s of
 * skew) and calls guest_identity_sign_in(). Success: 302 to the flow's
 * `next`, else login_redirect_url (JSON: 200 {"user": {...},
 * "outcome": "converted"|"signed_up"|"linked"|"logged_in"}).
 * GUEST_ERR_IDENTITY_TAKEN: 409; GUEST_ERR_SIGNUP_CLOSED: 403; an inactive
 * account: 403.
 */
GUEST_API void guest_oidc_callback_view(guest_req *req, void *userdata);

/**
 * GET/HEAD/POST, registered users only (others are sent away as
 * REGULAR_REQUIRED does). GET lists the user's linked identities, each
 * with a CSRF-protected unlink button (JSON: {"identities": [{"issuer",
 * "subject", "email", "email_verified", "linked_at", "last_login"}]}).
 * POST with fields issuer and subject unlinks one and shows the list
 * again; refused with 400 and a message when it is the account's only way
 * to log in, 404 when there is no such identity.
 */
GUEST_API void guest_oidc_identities_view(guest_req *req, void *userdata);

/**
 * Writes, with guest_res_write(), one small form per provider: a
 * CSRF-protected POST to its login URL with the button "Continue with
 * NAME" and @p next (may be NULL or ""; a value guest_is_safe_url() refuses
 * is left out) in the redirect field. For a guest_render_fn to put on the
 * sign-up, convert and login pages. Writes nothing when @p oidc has no
 * provider. GUEST_ERR_INVALID for NULL @p req or @p oidc; the CSRF token's
 * statuses. Call from the request's thread.
 */
GUEST_API GUEST_NODISCARD guest_status guest_oidc_write_buttons(
    guest_req *req, const guest_oidc *oidc, const char *next);

#ifdef __cplusplus
}
#endif
#endif

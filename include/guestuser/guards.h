/* libguestuser: the three access guards, as functions and as macros. */
#ifndef GUESTUSER_GUARDS_H
#define GUESTUSER_GUARDS_H

#include "http.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The guards answer every refusal and failure themselves (a redirect, 429,
 * 503): their status tells what happened and may be ignored, which is what
 * the macros below do. */

/**
 * Runs @p handler with a user: an anonymous, non-blocked visitor becomes a
 * new guest first (unless the config is disabled, when the handler runs
 * anonymous). When no guest can be made because of the name generator (it
 * fails, returns an implausible name, or every name it tries is taken) the
 * handler runs anonymous too and the failure goes to the config's log, at
 * most once a minute. Past guest_rate_limit or max_guests no guest is made
 * and the handler runs anonymous too, except that with
 * GUEST_RATE_ACTION_429 a rate-limited client gets 429 with Retry-After and
 * GUEST_ERR_RATE_LIMITED is returned. Returns GUEST_OK once the handler
 * ran; on a database failure answers 503 itself and returns the error.
 */
GUEST_API guest_status guest_allow(guest_req *req, guest_handler_fn handler,
                                   void *userdata);

/**
 * Runs @p handler for guests only: anonymous visitors get a 302 to
 * @p anon_url, registered users a 302 to @p user_url (NULL: the config's
 * required_anon_url / required_user_url). No `next` is added.
 */
GUEST_API guest_status guest_require_guest(guest_req *req,
                                           guest_handler_fn handler,
                                           void *userdata, const char *anon_url,
                                           const char *user_url);

/**
 * Runs @p handler for registered users only: anonymous visitors get a 302 to
 * @p login_url?next=PATH, guests to @p convert_url?next=PATH, PATH being the
 * request target URL-encoded as Django's redirect_to_login does. NULL
 * arguments take the config's login_url, convert_url, redirect_field_name.
 */
GUEST_API guest_status guest_require_regular(
    guest_req *req, guest_handler_fn handler, void *userdata,
    const char *login_url, const char *convert_url, const char *field_name);

/* The macros declare `void name(guest_req *req, void *userdata)` (a
 * guest_handler_fn) whose body follows the macro, and wrap it with the guard.
 * Prefix with `static` for a file-local handler. Each argument is evaluated
 * once per request. Example:
 *
 *     GUEST_ALLOW(hello) {
 *         const guest_user *u;
 *         if (guest_req_user(req, &u, NULL) != GUEST_OK)
 *             return;
 *         guest_res_printf(req, "Hello, ");
 *         guest_res_write_html(req, guest_user_name(u));  (escaped)
 *     }
 */
#define GUEST__GUARDED(name, call)                                             \
    void name(guest_req *req, void *userdata);                                 \
    static void name##__guarded(guest_req *req, void *userdata);               \
    void name(guest_req *req, void *userdata)                                  \
    {                                                                          \
        (void)(call);                                                          \
    }                                                                          \
    static void name##__guarded(guest_req *req GUEST_MAYBE_UNUSED,             \
                                void *userdata GUEST_MAYBE_UNUSED)

/** Handler that always has a user; anonymous visitors become guests. */
#define GUEST_ALLOW(name)                                                      \
    GUEST__GUARDED(name, guest_allow(req, name##__guarded, userdata))

/** Handler for guests only (config redirect targets). */
#define GUEST_REQUIRED(name)                                                   \
    GUEST__GUARDED(                                                            \
        name, guest_require_guest(req, name##__guarded, userdata, NULL, NULL))

/** Handler for guests only, with its own redirect targets. */
#define GUEST_REQUIRED_TO(name, anon_url, user_url)                            \
    GUEST__GUARDED(name, guest_require_guest(req, name##__guarded, userdata,   \
                                             (anon_url), (user_url)))

/** Handler for registered users only (config redirect targets). */
#define REGULAR_REQUIRED(name)                                                 \
    GUEST__GUARDED(name, guest_require_regular(req, name##__guarded, userdata, \
                                               NULL, NULL, NULL))

/** Handler for registered users only, with its own targets and `next` name. */
#define REGULAR_REQUIRED_TO(name, login_url, convert_url, field_name)          \
    GUEST__GUARDED(name, guest_require_regular(req, name##__guarded, userdata, \
                                               (login_url), (convert_url),     \
                                               (field_name)))

#ifdef __cplusplus
}
#endif
#endif

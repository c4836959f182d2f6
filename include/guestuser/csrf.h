/* libguestuser: CSRF protection for forms and safe redirect targets.
 * Guide: docs/csrf.md. */
#ifndef GUESTUSER_CSRF_H
#define GUESTUSER_CSRF_H

#include <stdbool.h>

#include "form.h"
#include "http.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Hidden form field that carries the CSRF token (Django's name). */
#define GUEST_CSRF_FIELD "csrfmiddlewaretoken"
/** Request header that carries the CSRF token for scripts (Django's). */
#define GUEST_CSRF_HEADER "X-CSRFToken"

/**
 * True when the request came over HTTPS: the adapter says so, or the
 * config's secure_proxy_header is set and that header is "https".
 */
GUEST_API GUEST_NODISCARD bool guest_req_is_secure(const guest_req *req);

/**
 * The CSRF token to put in this response's forms (field GUEST_CSRF_FIELD)
 * or hand to a script. When the visitor has no well-formed CSRF cookie
 * (config csrf_cookie_name), a new secret is made and a Set-Cookie added to
 * the response (readable by scripts, SameSite as the session cookie, Secure
 * with cookie_secure or when guest_req_is_secure()). The token is the secret
 * masked with fresh random bytes, as Django does. *token is borrowed from @p
 * req until it ends and the same for every call in one request.
 * GUEST_ERR_INVALID, GUEST_ERR_NOMEM or GUEST_ERR_CRYPTO on failure. Call from
 * the request's thread.
 */
GUEST_API GUEST_NODISCARD guest_status guest_csrf_token(guest_req *req,
                                                        const char **token);

/**
 * Checks a state-changing request. An Origin header, when present, must be
 * <scheme>://<Host>: https only when guest_req_is_secure(), http or https
 * over plain HTTP (a TLS proxy may sit in front). When guest_req_is_secure()
 * and there is no Origin, Referer must be https://<Host>/... . With the
 * config's allowed_hosts set, a Host outside it matches no origin. Then
 * @p submitted (NULL or "": the X-CSRFToken header) must be the secret of
 * the CSRF cookie, masked (64 characters) or plain (32), compared in
 * constant time.
 * GUEST_OK, or GUEST_ERR_CSRF with the reason in @p err (may be NULL).
 */
GUEST_API GUEST_NODISCARD guest_status guest_csrf_check(guest_req *req,
                                                        const char *submitted,
                                                        guest_error *err);

/** guest_csrf_check() with the token taken from @p form's GUEST_CSRF_FIELD,
 * or from the X-CSRFToken header when the form has none (@p form may be
 * NULL). */
GUEST_API GUEST_NODISCARD guest_status
guest_csrf_check_form(guest_req *req, const guest_form *form, guest_error *err);

/**
 * True when redirecting to @p url cannot leave the site: a relative URL, or
 * an absolute http(s) URL whose authority is exactly @p host (the request's
 * Host, e.g. "example.com:8080"; NULL: no absolute URL passes) and, with
 * @p require_https, whose scheme is https. Always false for NULL or "", a
 * control character (CR, LF, tab, NUL, DEL, C1) or backslash anywhere,
 * leading or trailing spaces, "//host", other schemes ("javascript:") and
 * scheme without "//". The value and its one-time percent-decoding must
 * both pass. Django's url_has_allowed_host_and_scheme, made stricter.
 * Thread-safe.
 */
GUEST_API GUEST_NODISCARD bool
guest_is_safe_url(const char *url, const char *host, bool require_https);

/**
 * The request's redirect target (config redirect_field_name, "next") from
 * @p form (may be NULL) or else the query string, when guest_is_safe_url()
 * accepts it for this request's Host and scheme (with allowed_hosts set, a
 * Host outside it allows no absolute URL). *next is a copy to free()
 * or NULL when absent or unsafe. GUEST_ERR_VALIDATION when the query string
 * names it twice, GUEST_ERR_NOMEM.
 */
GUEST_API GUEST_NODISCARD guest_status
guest_req_safe_next(guest_req *req, const guest_form *form, char **next);

#ifdef __cplusplus
}
#endif
#endif

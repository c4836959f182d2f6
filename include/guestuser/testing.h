/* libguestuser test client (library guestuser::testing, pkg-config
 * guestuser-testing): an in-process adapter with a cookie jar, for an
 * application's own tests. It runs the same guest_handler_fn a server
 * adapter runs, on the calling thread, with no socket and no server
 * library, and hands back the status, headers and body. Guide:
 * docs/testing-your-app.md. */
#ifndef GUESTUSER_TESTING_H
#define GUESTUSER_TESTING_H

#include <stdbool.h>
#include <stddef.h>

#include "guestuser.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * A browser stand-in bound to one context and one handler: default
 * request headers, a client address, and a cookie jar that every response
 * updates. Not thread-safe: use one client per thread (several clients
 * may share a context, as server threads do).
 */
typedef struct guest_test_client guest_test_client;

/** What one request answered; read it with the guest_test_response_*
 * calls, release it with guest_test_response_free(). */
typedef struct guest_test_response guest_test_response;

/**
 * Makes a client that runs @p handler (with @p userdata) for every request,
 * as guest_mhd_new() and the other adapters do: the same function serves
 * both. @p ctx is borrowed and must outlive the client. The client starts
 * with an empty jar, client address "127.0.0.1", plain HTTP and the
 * header "Host: testserver". Free with guest_test_client_free().
 * GUEST_ERR_INVALID for a NULL argument, GUEST_ERR_NOMEM.
 */
GUEST_API GUEST_NODISCARD guest_status
guest_test_client_new(guest_ctx *ctx, guest_handler_fn handler, void *userdata,
                      guest_test_client **out);
/** Releases @p client and its jar; NULL is a no-op. Responses it made stay
 * valid until freed. */
GUEST_API void guest_test_client_free(guest_test_client *client);

/**
 * Sends header @p name with @p value on every later request, replacing
 * every line of that name set before (NULL @p value: send none, "Host"
 * included). Name and value are copied. A Cookie line set here is sent
 * before the jar's cookies. GUEST_ERR_INVALID for a NULL @p client, a
 * @p name that is not an HTTP token (empty, a space, a colon ...) or a
 * control byte other than tab in @p value; GUEST_ERR_NOMEM.
 */
GUEST_API GUEST_NODISCARD guest_status guest_test_client_set_header(
    guest_test_client *client, const char *name, const char *value);
/** Like guest_test_client_set_header(), but adds one more line of @p name
 * (a non-NULL @p value) after those set before: the handler sees every
 * line joined, as from a real adapter (", ", and "; " for Cookie). */
GUEST_API GUEST_NODISCARD guest_status guest_test_client_add_header(
    guest_test_client *client, const char *name, const char *value);
/** The socket peer address the adapter reports (copied; NULL: unknown, as
 * guest_http_ops.client_addr returning NULL). GUEST_ERR_INVALID for a NULL
 * @p client, GUEST_ERR_NOMEM. */
GUEST_API GUEST_NODISCARD guest_status
guest_test_client_set_remote_addr(guest_test_client *client, const char *addr);
/** Whether later requests arrive over HTTPS (guest_req_is_https()); off at
 * first. */
GUEST_API void guest_test_client_set_https(guest_test_client *client,
                                           bool https);

/**
 * Sends one request: @p method ("GET", "POST", ...), @p target (the path
 * and query string as a browser sends them, starting with '/'), an optional
 * @p content_type header and @p body of @p body_len bytes (NULL: none).
 * The jar's cookies whose Path matches go in a Cookie header; every
 * Set-Cookie of the answer updates the jar (Max-Age=0 deletes). As the
 * server adapters do: a body past the context's max_body_size is answered
 * 413 and a Host outside allowed_hosts 400 without running the handler;
 * HEAD, 1xx, 204 and 304 answers carry no body; the handler's own
 * Content-Length and Transfer-Encoding are replaced by the real length.
 * GUEST_OK with the answer in @p *out (whatever its status: a 500 is an
 * answer) to release with guest_test_response_free(); GUEST_ERR_INVALID
 * (and NULL) for a NULL argument, a method that is not a token, a target
 * not starting with '/' or holding a space or control byte;
 * GUEST_ERR_NOMEM.
 */
GUEST_API GUEST_NODISCARD guest_status guest_test_request(
    guest_test_client *client, const char *method, const char *target,
    const char *content_type, const void *body, size_t body_len,
    guest_test_response **out);

/** guest_test_request() with GET and no body. */
GUEST_API GUEST_NODISCARD guest_status guest_test_get(
    guest_test_client *client, const char *target, guest_test_response **out);

/**
 * POSTs a form as a browser submits one: @p fields holds name, value,
 * name, value, ... and a NULL name after the last pair (NULL: no field),
 * sent application/x-www-form-urlencoded. Unless @p fields has a
 * GUEST_CSRF_FIELD, the jar's CSRF cookie (guest_test_client_csrf_token())
 * is added as that field, as the hidden input of a page the visitor loaded
 * would be; with no CSRF cookie none is added and the view refuses the
 * post (403), as it would a browser's that never loaded a form. Results as
 * guest_test_request().
 */
GUEST_API GUEST_NODISCARD guest_status
guest_test_post_form(guest_test_client *client, const char *target,
                     const char *const *fields, guest_test_response **out);

/**
 * The CSRF token a page's script would send (GUEST_CSRF_HEADER) or a form
 * would carry: the value of the context's CSRF cookie (csrf_cookie_name) in
 * the jar, or NULL when the jar has none (a GET of a page with a form, or
 * any page calling guest_csrf_token(), sets it). Borrowed until the jar
 * next changes (a request, or a guest_test_client_*cookie* call).
 */
GUEST_API const char *
guest_test_client_csrf_token(const guest_test_client *client);

/** The value of jar cookie @p name (any Path; the longest Path first), or
 * NULL. Borrowed until the jar next changes. */
GUEST_API const char *guest_test_client_cookie(const guest_test_client *client,
                                               const char *name);
/** Puts cookie @p name = @p value with Path=/ in the jar, replacing one of
 * that name and path; NULL @p value removes it. GUEST_ERR_INVALID for a
 * NULL or empty @p name, or a name or value with ';', ',', '=' (in the
 * name), a space or a control byte; GUEST_ERR_NOMEM. */
GUEST_API GUEST_NODISCARD guest_status guest_test_client_set_cookie(
    guest_test_client *client, const char *name, const char *value);
/** Empties the jar: the next request comes from a new visitor. */
GUEST_API void guest_test_client_clear_cookies(guest_test_client *client);

/** The response's status code. 0 for NULL. */
GUEST_API int guest_test_response_status(const guest_test_response *res);
/** The first value of response header @p name (case-insensitive), or NULL.
 * Borrowed until the response is freed. */
GUEST_API const char *guest_test_response_header(const guest_test_response *res,
                                                 const char *name);
/** The @p index-th (from 0) value of response header @p name, in the order
 * the handler added them, for headers sent on several lines such as
 * Set-Cookie; NULL past the last. Borrowed until the response is freed. */
GUEST_API const char *
guest_test_response_header_at(const guest_test_response *res, const char *name,
                              size_t index);
/** The body ("" when empty; always NUL-terminated after its @p *len bytes,
 * @p len may be NULL). Borrowed until the response is freed. */
GUEST_API const char *guest_test_response_body(const guest_test_response *res,
                                               size_t *len);
/**
 * The value of the first HTML input named @p name in the body
 * (`<input ... name="NAME" ... value="VALUE">`, either attribute first,
 * single or double quotes), its character references for & < > " '
 * decoded: a hidden field such as GUEST_CSRF_FIELD, or a field a form
 * filled in. NULL when there is none. Borrowed until the response is freed.
 */
GUEST_API const char *guest_test_response_input(guest_test_response *res,
                                                const char *name);
/** Releases @p res; NULL is a no-op. */
GUEST_API void guest_test_response_free(guest_test_response *res);

#ifdef __cplusplus
}
#endif
#endif

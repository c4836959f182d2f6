/* The provider's side of the authorization code flow for C tests, as a
 * browser would do it, with libcurl (tests/oidc/README.md). */
#ifndef GUESTUSER_TESTS_OIDC_BROWSER_H
#define GUESTUSER_TESTS_OIDC_BROWSER_H

#include <stddef.h>

/* Follows AUTHORIZE_URL (the address the relying party redirected the
 * browser to) with a fresh cookie jar: the provider's redirects, its login
 * form posted as USERNAME (a test user of provider.mjs: alice, bob, carol,
 * dave, erin, mallory; the hostile provider logs nobody in and ignores
 * it), more redirects, until one leads off the provider's origin (scheme,
 * host and port of AUTHORIZE_URL). That address, the relying party's
 * callback with code, state and iss (or error=...), is copied to
 * CALLBACK_URL and not requested. Returns 0, or -1 with the reason on
 * stderr (the provider answered something else, a request failed, the URL
 * does not fit in SIZE). */
int oidc_browser_login(const char *authorize_url, const char *username,
                       char *callback_url, size_t size);

/* The same, but the user presses Cancel at the provider's login page: the
 * callback then carries error=access_denied and the state. */
int oidc_browser_deny(const char *authorize_url, char *callback_url,
                      size_t size);

/* Plain requests for the tests' own checks (discovery documents, the token
 * endpoint, the hostile provider's /stats), no redirects followed, 30 s
 * deadline. *BODY (if BODY is not NULL) is a malloc'd, NUL-terminated
 * copy of at most 4 MiB of the response body, for the caller to free.
 * Return the HTTP status, or -1 when no answer came. */
long oidc_http_get(const char *url, char **body);

/* POSTs FORM (application/x-www-form-urlencoded, already encoded) to URL,
 * with HTTP Basic authentication when BASIC_USER is not NULL (USER and
 * PASSWORD are form-urlencoded first, as RFC 6749 2.3.1 has it). */
long oidc_http_post_form(const char *url, const char *form,
                         const char *basic_user, const char *basic_password,
                         char **body);

/* The value of query parameter NAME in URL, decoded (%XX, and '+' as a
 * space), into BUF. Returns BUF, or NULL when absent or too long. */
char *oidc_url_param(const char *url, const char *name, char *buf, size_t size);

#endif

/* Helpers shared by the accounts tests (issue 3): guests and users made
 * through the public API, requests that carry cookies, SQL with the test's
 * schema. */
#ifndef GUESTUSER_ACCT_TESTLIB_H
#define GUESTUSER_ACCT_TESTLIB_H

#include "testlib.h"

/* A CSRF secret the tests put in the cookie and, unmasked, in forms. */
#define AT_CSRF "abcdefghijklmnopqrstuvwxyzABCDEF"
/* A password every validator accepts. */
#define AT_PASSWORD "Quartz-Lantern-58"

/* tl_config for @p schema with cheap hashing (1000 iterations), then
 * @p tweak (may be NULL), then a context. */
guest_ctx *at_ctx(const char *schema, void (*tweak)(guest_config *));

/* A new guest; "sessionid=<token>" into @p cookie. Returns its id. */
int64_t at_new_guest(guest_ctx *ctx, char *cookie, size_t size);

/* A registered user made with guest_user_create (must succeed). */
int64_t at_new_user(guest_ctx *ctx, const char *username, const char *password);

/* "sessionid=...; csrftoken=AT_CSRF" (either part may be left out). */
void at_cookie_header(char *out, size_t size, const char *session,
                      bool with_csrf);

/* One request through @p fn: @p method, @p target, optional Cookie header
 * and body (urlencoded unless a Content-Type is added with @p ctype). */
void at_request(guest_ctx *ctx, tl_http *h, const char *method,
                const char *target, const char *cookie, const char *ctype,
                const char *body, guest_handler_fn fn, void *userdata);

/* Runs @p sql after replacing every "@" with the schema name. */
long long at_scalar(const char *schema, const char *sql);
void at_exec(const char *schema, const char *sql);
/* First column of the first row as text into @p out ("" when no row). */
void at_text(const char *schema, const char *sql, char *out, size_t size);

/* The id the cookie "sessionid=..." resolves to now (0: anonymous), and
 * whether that user is a guest. */
int64_t at_whoami(guest_ctx *ctx, const char *cookie, bool *is_guest);

/* The value of attribute value="..." of the input named @p name in an HTML
 * page, into @p out; false when not found. */
bool at_input_value(const char *html, const char *name, char *out, size_t size);

/* A guest_signup store callback that sleeps 150 ms, holding the conversion
 * transaction open so a racing request arrives while it holds its locks. */
guest_status at_slow_store(guest_db *db, const guest_user *user,
                           const guest_form *form, guest_form_errors *errors,
                           void *ud);

#endif

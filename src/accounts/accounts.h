/* The accounts layer: registered users, login and logout, converting a
 * guest, passwords, form validation, CSRF, forms and the ready-made views.
 * Calls core/, store/ and base/. Internal; never installed. */
#ifndef GUESTUSER_ACCOUNTS_INTERNAL_H
#define GUESTUSER_ACCOUNTS_INTERNAL_H

#include <jansson.h>

#include "core/core.h"

#define GUEST__CSRF_SECRET_CHARS 32
#define GUEST__CSRF_TOKEN_CHARS 64
/* Characters of a Django salt and CSRF secret: ASCII letters and digits. */
#define GUEST__ALNUM                                                           \
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

/* Messages shared by several modules, Django's wording. */
#define GUEST__MSG_REQUIRED "This field is required."
#define GUEST__MSG_TAKEN "A user with that username already exists."
#define GUEST__MSG_LOGIN                                                       \
    "Please enter a correct username and password. Note that both fields "     \
    "may be case-sensitive."
/* django-axes' lockout wording. */
#define GUEST__MSG_LOCKED_OUT "Too many failed login attempts. Try again later."
#define GUEST__MSG_CONVERT_LOCKED_OUT                                          \
    "Too many failed attempts to create an account. Try again later."

/* What accounts keeps per request, as req->accounts (core wipes and frees
 * it with the request). csrf.c: the CSRF secret in force for this request
 * once looked up or made, and the masked token handed out for it ("" until
 * then). */
struct guest__req_accounts {
    char csrf_secret[GUEST__CSRF_SECRET_CHARS + 1];
    char csrf_token[GUEST__CSRF_TOKEN_CHARS + 1];
};

/* password.c */
/* Django's encoding of @p password with a given salt: the known-answer
 * tests use it, guest_password_hash() passes a random salt. */
guest_status guest__password_hash_salt(const char *password, const char *salt,
                                       unsigned iterations, char *out,
                                       size_t size);
/* The iteration count of a pbkdf2_sha256 encoding; false when it is not
 * one. */
bool guest__password_iterations(const char *encoded, unsigned *iterations);
/* Every PBKDF2 run of the process and the iterations they asked for:
 * lets tests check what a request spent without timing it. */
extern _Atomic unsigned long long guest__pbkdf2_runs;
extern _Atomic unsigned long long guest__pbkdf2_iterations;
/* n random characters of GUEST__ALNUM plus a NUL into out[n + 1]. */
guest_status guest__random_alnum(char *out, size_t n);

/* validate.c */
/* The form errors a call fills: @p errors, or @p local when the caller
 * passed none, emptied. */
guest_form_errors *guest__form_errors_reset(guest_form_errors *errors,
                                            guest_form_errors *local);
/* The start of a call on a request that fills form errors: *@p errors
 * pointed at @p local when the caller passed none, and emptied; false, with
 * @p err filled, when @p req is NULL (the call returns GUEST_ERR_INVALID). */
static inline bool guest__form_call_start(const guest_req *req,
                                          guest_form_errors **errors,
                                          guest_form_errors *local,
                                          guest_error *err)
{
    /* Inline, so that a static analyser sees req checked in the caller. */
    *errors = guest__form_errors_reset(*errors, local);
    if (req)
        return true;
    (void)guest__fail(err, GUEST_ERR_INVALID, "NULL request");
    return false;
}
/* A call refused before its form was read (a limit's take failed with
 * @p st): @p errors (NULL: none) emptied, with @p locked_out as the one
 * message when @p st is GUEST_ERR_RATE_LIMITED. */
void guest__form_errors_refused(guest_form_errors *errors, guest_status st,
                                const char *locked_out);

/* users.c */
/* The checks of a new account that need no database: username rules and,
 * with @p password2 (two-field form), both passwords given and equal, else
 * @p password1 given (field "password"); then the validators. *name_ok says
 * whether the username passed (so its uniqueness is worth asking).
 * GUEST_OK, GUEST_ERR_VALIDATION, GUEST_ERR_CONFIG, GUEST_ERR_NOMEM. */
guest_status guest__check_new_account(const guest_ctx *ctx,
                                      const char *username,
                                      const char *password1,
                                      const char *password2, bool two_fields,
                                      guest_form_errors *errors, bool *name_ok);
/* The database half of those checks, in @p tx when given: when @p name_ok,
 * adds "username taken" to @p errors if a user other than *@p except_id
 * (NULL: none) holds @p username. Then the outcome: GUEST_OK,
 * GUEST_ERR_USERNAME_TAKEN (the only problem), GUEST_ERR_VALIDATION, or a
 * database status. */
guest_status guest__check_username_free(guest_ctx *ctx, guest_db *tx,
                                        const char *username,
                                        const int64_t *except_id, bool name_ok,
                                        guest_form_errors *errors,
                                        guest_error *err);
/* PBKDF2 of @p password at the configured iterations, within a hash slot
 * (GUEST_ERR_BUSY when none frees in time). */
guest_status guest__hash_password(guest_ctx *ctx, const char *password,
                                  char *out, size_t size);

/* password.c */
/* Whether a stored password text is a usable hash: not empty (a guest's)
 * and not starting with '!' (Django's unusable password, an account made
 * through an identity provider). */
bool guest__password_usable(const char *stored);

/* login.c */
/* In @p tx, when @p guest is still a guest: on_guest_login moves its data
 * to @p user, then the guest user is deleted. GUEST_ERR_HOOK. */
guest_status guest__absorb_guest(guest_req *req, guest_db *tx,
                                 const guest_user *guest,
                                 const guest_user *user, guest_error *err);

/* email.c */
#define GUEST__MSG_BAD_EMAIL "Enter a valid email address."
#define GUEST__MSG_EMAIL_TAKEN "A user with that email address already exists."
/* Whether @p s is an address a mail server takes (loose; never a byte
 * that could reach a mail header). */
bool guest__email_ok(const char *s);
/* GUEST_ERR_CONFIG without mail_from or public_url. */
guest_status guest__email_need_mail(const guest_config *c, guest_error *err);
/* In @p tx: a 'verify' token for @p email of the user and its mail queued
 * (the caller has checked that nobody else has the address). */
guest_status guest__email_queue_verify(guest_db *tx, int64_t user_id,
                                       const char *username, const char *email,
                                       guest_error *err);

/* csrf.c */
/* A new secret for the CSRF cookie after a login, as Django's
 * rotate_token(): a token an attacker planted before stops working. */
guest_status guest__csrf_rotate(guest_req *req);

/* safe_url.c */
/* The value of query parameter @p name of the request target (decoded,
 * malloc'd, *len bytes; caller frees), NULL when absent. *bad is set when
 * the query string names a field twice. */
char *guest__query_param(const guest_req *req, const char *name, size_t *len,
                         bool *bad);
/* Percent-encodes spaces and non-ASCII bytes for a Location header, as
 * Django's iri_to_uri; caller frees. */
char *guest__iri_to_uri(const char *url);

/* view_kit.c: what every ready-made page shares. Each function that
 * answers leaves the request answered, whatever went wrong. */
/* The methods a view takes, for guest__view_enter(). */
enum { GUEST__VIEW_GET = 1u /* and HEAD */, GUEST__VIEW_POST = 2u };
/* Whether a view goes on with @p req here: false for NULL, when the
 * request was just deferred from a loop to a worker (the view runs again
 * there), and after guest__view_methods_ok() refused it (@p methods 0: the
 * view calls that itself, after headers every answer needs). Each view
 * begins so. */
bool guest__view_enter(guest_req *req, unsigned methods);
/* Whether the request's method is one of @p methods (GUEST__VIEW_*);
 * false after a 405 with Allow. */
bool guest__view_methods_ok(guest_req *req, unsigned methods);
/* The guest_views a handler's userdata points to, or the defaults; an
 * older program's smaller struct is completed in @p local. */
const guest_views *guest__view_options(void *userdata, guest_views *local);
/* A header the answer cannot do without; false after a plain 500. */
bool guest__view_header(guest_req *req, const char *name, const char *value);
/* The page's one Cache-Control (no store) and X-Frame-Options: DENY. */
bool guest__view_no_cache(guest_req *req);
/* Sends @p obj (taken) as the JSON answer with @p status. */
void guest__view_json(guest_req *req, int status, json_t *obj);
/* {"id", "username", "is_guest"} of @p u, or null. */
json_t *guest__view_json_user(const guest_user *u);
/* {"field": ["message", ...], ...} of @p e. */
json_t *guest__view_json_errors(const guest_form_errors *e);
/* A refusal: plain text @p title and @p detail (may be NULL) for a
 * browser, {"errors": {field: [detail or title]}} for a script. */
void guest__view_refuse_field(guest_req *req, bool json, int status,
                              const char *field, const char *title,
                              const char *detail);
/* guest__view_refuse_field() for "__all__". */
void guest__view_refuse(guest_req *req, bool json, int status,
                        const char *title, const char *detail);
void guest__view_server_error(guest_req *req, bool json);
/* The answer for a library status: 503 with Retry-After for busy hashing
 * and the database, 503 for a site that cannot send mail, else 500. */
void guest__view_failure(guest_req *req, bool json, guest_status st);
/* A redirect to @p url (an IRI made a URI). */
void guest__view_redirect(guest_req *req, const char *url);
/* The request's user in *@p u (NULL: anonymous); false after answering
 * the status that kept it unknown (guest__view_failure()). */
bool guest__view_user(guest_req *req, bool json, const guest_user **u);
/* Whether @p form carries the request's CSRF token; false after a 403. */
bool guest__view_csrf_ok(guest_req *req, bool json, const guest_form *form);
/* The JSON answer of a form's page for a script: the user and a CSRF
 * token, with the members of @p extra (taken; may be NULL). */
void guest__view_json_form(guest_req *req, const guest_user *u, json_t *extra);
/* The POST body as a form; NULL after answering 413, 415 or 400. */
guest_form *guest__view_read_form(guest_req *req, bool json);
/* @p page with @p status through the views' renderer (or the default);
 * NULL fields of the page become "" first. */
void guest__view_show(guest_req *req, const guest_views *v, guest_page *page,
                      int status);
/* guest__view_show() of a page with a form, its CSRF token made here. */
void guest__view_show_form(guest_req *req, const guest_views *v,
                           guest_page *page, int status);
/* A limit reached: 429 with Retry-After, the form again with the
 * page's errors (JSON: the errors). */
void guest__view_too_many(guest_req *req, const guest_views *v, bool json,
                          guest_page *page);
/* What a callback that ran inside transaction @p tx (@p what names it)
 * leaves: a failed statement of its own aborted the transaction whatever
 * it returned; otherwise anything but GUEST_OK (@p returned) is
 * GUEST_ERR_HOOK. */
guest_status guest__hook_result(const guest_db *tx, guest_status returned,
                                const char *what, guest_error *err);
/* A refused form: 400 with the page's errors for a script, else the form
 * again with them (status 200, as Django answers). */
void guest__view_form_errors(guest_req *req, const guest_views *v, bool json,
                             guest_page *page);
/* The answer to a form call that returned @p st: guest__view_too_many()
 * for GUEST_ERR_RATE_LIMITED, guest__view_form_errors() for
 * GUEST_ERR_VALIDATION and GUEST_ERR_USERNAME_TAKEN, guest__view_failure()
 * for anything else. */
void guest__view_refused(guest_req *req, const guest_views *v, bool json,
                         guest_page *page, guest_status st);
/* A visitor the page is not for: a redirect to @p url, or for a script
 * 403 with @p why, the URL and who they are. */
void guest__view_send_away(guest_req *req, bool json, const guest_user *u,
                           const char *url, const char *why);
/* A page for registered users only, refused as REGULAR_REQUIRED refuses:
 * guests to the sign-up page (@p to_guest in JSON), anonymous visitors to
 * the login page (@p to_anonymous), with `next` back here. */
void guest__view_refuse_unregistered(guest_req *req, bool json,
                                     const guest_user *u, const char *to_guest,
                                     const char *to_anonymous);
/* guest__view_refuse_unregistered() for whoever the request's visitor is
 * now: a form refused with GUEST_ERR_AUTH because the account was deleted
 * or deactivated meanwhile. */
void guest__view_refuse_now_unregistered(guest_req *req, bool json,
                                         const char *to_guest,
                                         const char *to_anonymous);

#endif

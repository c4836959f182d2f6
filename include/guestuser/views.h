/* libguestuser: ready-made handlers for the convert, login and logout pages,
 * with replaceable HTML and a JSON mode. Guide: docs/converting.md. */
#ifndef GUESTUSER_VIEWS_H
#define GUESTUSER_VIEWS_H

#include "accounts.h"
#include "csrf.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Which page a renderer is asked for. */
typedef enum guest_page_kind {
    GUEST_PAGE_CONVERT,              /**< sign-up form for a guest */
    GUEST_PAGE_CONVERT_SUCCESS,      /**< after a conversion */
    GUEST_PAGE_LOGIN,                /**< login form */
    GUEST_PAGE_PASSWORD_CHANGE,      /**< password change form (registered) */
    GUEST_PAGE_PASSWORD_CHANGE_DONE, /**< after a password change */
    GUEST_PAGE_PASSWORD_RESET,       /**< "forgot your password": an address */
    GUEST_PAGE_PASSWORD_RESET_SENT,  /**< "if an account has it, a link..." */
    GUEST_PAGE_PASSWORD_RESET_CONFIRM, /**< a live reset link: new password */
    GUEST_PAGE_PASSWORD_RESET_DONE,    /**< password set, sessions ended */
    GUEST_PAGE_LINK_INVALID,  /**< a reset or verification link that is dead */
    GUEST_PAGE_EMAIL,         /**< the address and a form for a new one */
    GUEST_PAGE_EMAIL_SENT,    /**< a verification link went to `email` */
    GUEST_PAGE_EMAIL_VERIFY,  /**< one button that verifies the address */
    GUEST_PAGE_EMAIL_VERIFIED /**< `email` is the user's, verified */
} guest_page_kind;

/** Everything a page shows; every pointer is borrowed for the call. */
typedef struct guest_page {
    guest_page_kind kind;
    /** The visitor (NULL: anonymous). */
    const guest_user *user;
    /** Form action: this request's path. */
    const char *action;
    /** Value for the hidden GUEST_CSRF_FIELD input ("" on the success
     * page). */
    const char *csrf_token;
    /** Name of the hidden redirect field (config redirect_field_name). */
    const char *next_field;
    /** Safe redirect target to carry in it, or "". */
    const char *next;
    /** Username to show in the form: as entered, or the generated name
     * when convert_prefill_username is on, or "". */
    const char *username;
    /** Messages to show; count 0 the first time. Never NULL. */
    const guest_form_errors *errors;
    /** Extra sign-up fields (convert page) and the submitted values, NULL
     * on a first show. */
    const guest_signup_field *fields;
    size_t field_count;
    const guest_form *form;
    /** Password change page: the user has no usable password yet (an
     * account made through an identity provider), so no old password is
     * asked for. */
    bool no_password;
    /** E-mail pages: the address entered, asked for, or the user's ("" for
     * none); never NULL on them. */
    const char *email;
    /** GUEST_PAGE_EMAIL: whether the user's address is verified. */
    bool email_verified;
    /** GUEST_PAGE_PASSWORD_RESET_DONE: the login URL (config login_url);
     * "" elsewhere on the e-mail pages. (The reset form has the username
     * the link is for in `username`.) */
    const char *link;
} guest_page;

/**
 * Writes a page's HTML body with guest_res_write() / guest_res_write_html()
 * (escape every value taken from @p page). Status 200, Content-Type
 * text/html and no-cache headers are already set. Return GUEST_OK, or an
 * error for a 500.
 */
typedef guest_status (*guest_render_fn)(guest_req *req, const guest_page *page,
                                        void *userdata);

/** The built-in HTML of every page; a render callback may call it for the
 * pages it does not replace. */
GUEST_API GUEST_NODISCARD guest_status
guest_render_default(guest_req *req, const guest_page *page);

/** The built-in page without the document around it (no <html>, <head>,
 * <body> or heading): the text and form only, for a render callback that
 * frames it in the application's own layout. */
GUEST_API GUEST_NODISCARD guest_status
guest_render_default_content(guest_req *req, const guest_page *page);

/** The built-in heading of a page ("Log in"...), static storage; "" for an
 * unknown kind. */
GUEST_API const char *guest_page_title(guest_page_kind kind);

/**
 * Options of the ready-made handlers, passed as their userdata (NULL: the
 * defaults). Fill with guest_views_init(). Borrowed: must outlive the
 * server; may be shared by all threads.
 */
typedef struct guest_views {
    /** sizeof(guest_views) where the program was compiled, set by
     * guest_views_init(); 0 (a struct zeroed by hand) counts as 1.0's. A
     * smaller struct from an older program gets defaults for the rest. */
    size_t size;
    /** Page renderer (NULL: guest_render_default) and its user data. */
    guest_render_fn render;
    void *render_userdata;
    /** Extra fields, validation and storage of the sign-up form. */
    guest_signup signup;
} guest_views;

/** Fills @p views with the defaults (all NULL / 0) and its size. */
#define guest_views_init(views)                                                \
    guest_views_init_size((views), sizeof(guest_views))
/** guest_views_init() for a struct of @p size bytes. */
GUEST_API void guest_views_init_size(guest_views *views, size_t size);

/**
 * True when the request asks for JSON: an Accept header naming
 * application/json, or a JSON body (Content-Type application/json).
 */
GUEST_API GUEST_NODISCARD bool guest_req_wants_json(const guest_req *req);

/*
 * The handlers (guest_handler_fn; userdata: const guest_views * or NULL).
 * Mount each for every method: a wrong method gets 405 with Allow before
 * any CSRF check. A field sent twice is 400, a body over the adapter's limit
 * 413, a failed CSRF check 403 (nothing changes), a database failure 503.
 * In JSON mode (guest_req_wants_json()) convert and login answer 200
 * {"user": {...}, "csrf_token": "..."} on success and GET, 400
 * {"errors": {field: [messages]}} on failure, 403 with "errors" and
 * "redirect" for a visitor who may not use the page; the CSRF token then
 * travels in the X-CSRFToken header.
 */

/** GET/HEAD/POST. Anonymous: 302 to login_url; registered: 302 to
 * login_redirect_url; guest: the sign-up form, and on a valid POST the
 * conversion and 302 to the safe `next`, else convert_redirect_url. */
GUEST_API void guest_convert_view(guest_req *req, void *userdata);

/** GET/HEAD: the page shown after a conversion. */
GUEST_API void guest_convert_success_view(guest_req *req, void *userdata);

/** GET/HEAD/POST: the login form; a valid POST logs in and answers 302 to
 * the safe `next`, else login_redirect_url. */
GUEST_API void guest_login_view(guest_req *req, void *userdata);

/** POST only (405 otherwise): guest_logout() and 302 to "/" (JSON: 200
 * {"user": null}). */
GUEST_API void guest_logout_view(guest_req *req, void *userdata);

/**
 * GET/HEAD/POST, registered users only: anonymous visitors get a 302 to
 * login_url?next=PATH and guests to convert_url?next=PATH, as
 * REGULAR_REQUIRED does (JSON: 403 with "errors" and that "redirect").
 * GET shows the form (old_password, new_password1, new_password2, the CSRF
 * token, the safe `next`); a valid POST runs guest_password_change() —
 * every other session of the user ends, this one gets a new cookie and the
 * CSRF secret is renewed — and answers 302 to the safe `next`, else the
 * "Password change successful" page (200). A refused form is shown again
 * with its messages (JSON: 400 {"errors": ...}); the login limit's lockout
 * is 429 with Retry-After, busy hashing 503.
 */
GUEST_API void guest_password_change_view(guest_req *req, void *userdata);

/*
 * The e-mail pages (docs/email.md; userdata: const guest_views * or NULL).
 * The two link pages read TOKEN from the request path: the segment after
 * the last "/accounts/password/reset/" or "/accounts/email/verify/" in it
 * (the paths of the links in the mails; a site mounted below a prefix
 * works too), a trailing slash optional. A link that is unknown, used,
 * expired or malformed gets the GUEST_PAGE_LINK_INVALID page with status
 * 400 (JSON: 400 {"errors": {"token": [...]}}). Every POST needs the CSRF
 * token; the usual 405, 413, 400, 403, 503 as above.
 */

/** GET/HEAD/POST /accounts/password/reset/: a form asking for an address;
 * a POST runs guest_password_reset_request() and answers the same
 * GUEST_PAGE_PASSWORD_RESET_SENT page (200; JSON: 200 {"sent": true})
 * whatever the address, 429 with Retry-After when rate-limited. Without
 * mail_from or public_url: 503. */
GUEST_API void guest_password_reset_view(guest_req *req, void *userdata);

/** GET/HEAD/POST /accounts/password/reset/TOKEN/, every answer with
 * Referrer-Policy: same-origin (the token never goes to another site; a
 * no-referrer page would post its own form with Origin: null). GET:
 * guest_password_reset_check() (the link is not used up) and the form for the
 * new password twice (new_password1, new_password2). POST:
 * guest_password_reset_confirm(); then GUEST_PAGE_PASSWORD_RESET_DONE (every
 * session of the user ended, a link to login_url; JSON: 200 {"done": true,
 * "login_url": ...}), or the form again with its messages (JSON: 400). */
GUEST_API void guest_password_reset_confirm_view(guest_req *req,
                                                 void *userdata);

/** GET/HEAD/POST /accounts/email/, registered users only (others are sent
 * away as by guest_password_change_view()): the address and whether it is
 * verified, and a form for a new one ("email", and "password" when the
 * user has a usable password; JSON GET: {"user", "csrf_token", "email",
 * "email_verified", "has_password"}). POST: guest_email_change(), then
 * GUEST_PAGE_EMAIL_SENT (JSON: 200 {"sent": true, "email": NEW}), or the
 * form again with its messages (JSON: 400). */
GUEST_API void guest_email_view(guest_req *req, void *userdata);

/** GET/HEAD/POST /accounts/email/verify/TOKEN/: GET shows one button, a
 * POST form with the CSRF token (mail scanners open links, so GET changes
 * nothing); POST: guest_email_verify(), then GUEST_PAGE_EMAIL_VERIFIED
 * (JSON: 200 {"email": ADDRESS, "verified": true}); an address another
 * user verified first: 400 with the message. */
GUEST_API void guest_email_verify_view(guest_req *req, void *userdata);

#ifdef __cplusplus
}
#endif
#endif

/* The ready-made e-mail pages: password reset (request and the link's
 * form), the address change form and the verification link's button.
 * Same conventions as views.c (HTML or JSON, CSRF on every POST, 405 with
 * Allow, no 500 for a client's bad input). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "accounts/accounts.h"

#define RESET_PREFIX "/accounts/password/reset/"
#define VERIFY_PREFIX "/accounts/email/verify/"
#define MSG_DEAD_LINK                                                          \
    "This link is invalid or was used. Links work once, for a limited "        \
    "time; ask for a new one."

static const guest_views *options(void *userdata)
{
    static const guest_views defaults = {0};
    return userdata ? userdata : &defaults;
}

/* ---- responses ---- */

static bool header(guest_req *req, const char *name, const char *value)
{
    if (guest_res_add_header(req, name, value) == GUEST_OK)
        return true;
    guest__respond_error(req);
    return false;
}

static bool no_cache(guest_req *req)
{
    if (guest__res_cache_control(req, true) != GUEST_OK) {
        guest__respond_error(req);
        return false;
    }
    return header(req, "X-Frame-Options", "DENY");
}

static void send_json(guest_req *req, int status, json_t *obj)
{
    char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    if (!text) {
        guest_res_send(req, 500, "text/plain; charset=utf-8",
                       "Internal Server Error\n");
        return;
    }
    guest_res_set_status(req, status);
    if (header(req, "Content-Type", "application/json") && no_cache(req)) {
        guest_res_write(req, text, strlen(text));
        guest_res_write(req, "\n", 1);
    }
    free(text);
}

static json_t *json_user(const guest_user *u)
{
    if (!u)
        return json_null();
    return json_pack("{s:I, s:s, s:b}", "id", (json_int_t)guest_user_id(u),
                     "username", guest_user_name(u), "is_guest",
                     guest_is_guest_user(u));
}

static json_t *json_errors(const guest_form_errors *e)
{
    json_t *errors = json_object();
    for (size_t i = 0; errors && i < e->count; i++) {
        json_t *list = json_object_get(errors, e->items[i].field);
        if (!list) {
            list = json_array();
            if (json_object_set_new(errors, e->items[i].field, list) != 0)
                break;
        }
        json_array_append_new(list, json_string(e->items[i].message));
    }
    return errors;
}

static void refuse_field(guest_req *req, bool json, int status,
                         const char *field, const char *title,
                         const char *detail)
{
    if (json) {
        guest_form_errors e = {0};
        guest_form_errors_add(&e, field, detail ? detail : title);
        send_json(req, status, json_pack("{s:o}", "errors", json_errors(&e)));
        return;
    }
    guest_res_set_status(req, status);
    if (!header(req, "Content-Type", "text/plain; charset=utf-8"))
        return;
    guest_res_printf(req, "%s\n", title);
    if (detail)
        guest_res_printf(req, "%s\n", detail);
}

static void refuse(guest_req *req, bool json, int status, const char *title,
                   const char *detail)
{
    refuse_field(req, json, status, "__all__", title, detail);
}

static void server_error(guest_req *req, bool json)
{
    refuse(req, json, 500, "Internal Server Error", NULL);
}

static void failure(guest_req *req, bool json, guest_status st)
{
    if (st == GUEST_ERR_BUSY) {
        refuse(req, json, 503, "Service Unavailable",
               "Too many sign-ins at once. Please try again in a moment.");
        (void)header(req, "Retry-After", "1");
        return;
    }
    if (st == GUEST_ERR_CONFIG) {
        /* No mail_from or public_url: the site cannot send mail. */
        refuse(req, json, 503, "Service Unavailable",
               "This site cannot send mail at the moment.");
        return;
    }
    if (st == GUEST_ERR_DB || st == GUEST_ERR_DB_UNAVAILABLE) {
        if (json) {
            refuse(req, true, 503, "Service Unavailable", NULL);
            (void)header(req, "Retry-After", "5");
        } else {
            guest__respond_unavailable(req);
        }
        return;
    }
    server_error(req, json);
}

static bool method_ok(guest_req *req, bool json)
{
    const char *m = guest_req_method(req);
    if (!strcmp(m, "GET") || !strcmp(m, "HEAD") || !strcmp(m, "POST"))
        return true;
    refuse(req, json, 405, "Method Not Allowed", NULL);
    (void)header(req, "Allow", "GET, HEAD, POST");
    return false;
}

static guest_form *read_form(guest_req *req, bool json)
{
    guest_form *form = NULL;
    guest_error err = {0};
    switch (guest_req_form(req, &form, &err)) {
    case GUEST_OK:
        return form;
    case GUEST_ERR_TOO_LARGE:
        refuse(req, json, 413, "Payload Too Large", NULL);
        return NULL;
    case GUEST_ERR_INVALID:
        refuse(req, json, 415, "Unsupported Media Type", err.message);
        return NULL;
    case GUEST_ERR_VALIDATION:
        refuse(req, json, 400, "Bad Request", err.message);
        return NULL;
    default:
        server_error(req, json);
        return NULL;
    }
}

static void show_status(guest_req *req, const guest_views *v, guest_page *page,
                        int status)
{
    static guest_form_errors none;
    if (!page->errors)
        page->errors = &none;
    if (!page->action)
        page->action = guest_req_path(req);
    if (!page->csrf_token)
        page->csrf_token = "";
    if (!page->next_field)
        page->next_field = req->ctx->cfg.redirect_field_name;
    if (!page->next)
        page->next = "";
    if (!page->username)
        page->username = "";
    if (!page->email)
        page->email = "";
    if (!page->link)
        page->link = "";
    guest_res_set_status(req, status);
    if (!header(req, "Content-Type", "text/html; charset=utf-8") ||
        !no_cache(req))
        return;
    guest_status st = v->render ? v->render(req, page, v->render_userdata)
                                : guest_render_default(req, page);
    if (st != GUEST_OK) {
        if (guest_res_reset(req) == GUEST_OK)
            server_error(req, false);
        else
            guest_res_set_status(req, 500);
    }
}

/* A page with a form: the CSRF token made (and its cookie set) here. */
static void show_form_status(guest_req *req, const guest_views *v,
                             guest_page *page, int status)
{
    const char *token;
    if (guest_csrf_token(req, &token) != GUEST_OK) {
        server_error(req, false);
        return;
    }
    page->csrf_token = token;
    show_status(req, v, page, status);
}

static void json_form(guest_req *req, const guest_user *u, json_t *extra)
{
    const char *token = NULL;
    if (guest_csrf_token(req, &token) != GUEST_OK) {
        json_decref(extra);
        server_error(req, true);
        return;
    }
    json_t *obj =
        json_pack("{s:o, s:s}", "user", json_user(u), "csrf_token", token);
    if (obj && extra)
        json_object_update(obj, extra);
    json_decref(extra);
    send_json(req, 200, obj);
}

/* The link's page when its token is dead: 400 and a clear message. */
static void dead_link(guest_req *req, const guest_views *v, bool json)
{
    if (json) {
        refuse_field(req, true, 400, "token", MSG_DEAD_LINK, NULL);
        return;
    }
    guest_page page = {.kind = GUEST_PAGE_LINK_INVALID};
    show_status(req, v, &page, 400);
}

static void too_many(guest_req *req, const guest_views *v, bool json,
                     guest_page *page)
{
    char secs[32];
    long long after = (long long)guest_req_retry_after(req);
    snprintf(secs, sizeof secs, "%lld", after > 0 ? after : 1);
    if (!header(req, "Retry-After", secs))
        return;
    if (json)
        send_json(req, 429,
                  json_pack("{s:o}", "errors", json_errors(page->errors)));
    else
        show_form_status(req, v, page, 429);
}

/* How each view starts: the method, the page's one Cache-Control, and on
 * POST the form, its text fields and the CSRF token, then the user. False
 * once an answer has gone out; *form is the caller's to free either way. */
static bool start(guest_req *req, bool json, const char *const *fields,
                  guest_form **form, const guest_user **u)
{
    *form = NULL;
    if (!method_ok(req, json))
        return false;
    if (guest__res_cache_control(req, true) != GUEST_OK) {
        guest__respond_error(req);
        return false;
    }
    if (!strcmp(guest_req_method(req), "POST")) {
        if (!(*form = read_form(req, json)))
            return false;
        for (const char *const *f = fields; *f; f++) {
            size_t len;
            const char *val = guest_form_get_len(*form, *f, &len);
            if (val && !guest__utf8_valid(val, len)) {
                refuse_field(req, json, 400, *f, "Bad Request",
                             "A field is not valid text.");
                return false;
            }
        }
        guest_error err = {0};
        if (guest_csrf_check_form(req, *form, &err) != GUEST_OK) {
            refuse(req, json, 403,
                   "Forbidden (CSRF verification failed. Request aborted.)",
                   err.message);
            return false;
        }
    }
    guest_status st = guest_req_user(req, u, NULL);
    if (st != GUEST_OK) {
        failure(req, json, st);
        return false;
    }
    return true;
}

/* TOKEN from the path: the segment after the last @p prefix, a trailing
 * slash optional; false when there is none or it cannot be a token. */
static bool path_token(const guest_req *req, const char *prefix,
                       char out[GUEST__TOKEN_CHARS + 1])
{
    const char *path = guest_req_path(req), *at = NULL;
    for (const char *p = path; p && (p = strstr(p, prefix)); p++)
        at = p;
    if (!at)
        return false;
    at += strlen(prefix);
    size_t n = strcspn(at, "/");
    if (n != GUEST__TOKEN_CHARS || (at[n] && strcmp(at + n, "/") != 0) ||
        strspn(at, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                   "0123456789-_") < n)
        return false;
    memcpy(out, at, n);
    out[n] = '\0';
    return true;
}

/* ---- the handlers ---- */

void guest_password_reset_view(guest_req *req, void *userdata)
{
    if (!req)
        return;
    const guest_views *v = options(userdata);
    bool json = guest_req_wants_json(req);
    static const char *const fields[] = {"email", NULL};
    guest_form *form;
    const guest_user *u;
    if (!start(req, json, fields, &form, &u))
        goto out;
    guest_form_errors errors = {0};
    guest_page page = {
        .kind = GUEST_PAGE_PASSWORD_RESET, .user = u, .errors = &errors};
    if (!form) {
        if (json)
            json_form(req, u, NULL);
        else
            show_form_status(req, v, &page, 200);
        goto out;
    }
    const char *email = guest_form_get(form, "email");
    if (!email || !*email) {
        guest_form_errors_add(&errors, "email", GUEST__MSG_REQUIRED);
        if (json)
            send_json(req, 400,
                      json_pack("{s:o}", "errors", json_errors(&errors)));
        else
            show_form_status(req, v, &page, 200);
        goto out;
    }
    page.email = email;
    guest_status st = guest_password_reset_request(req, email, NULL);
    if (st == GUEST_OK) {
        page.kind = GUEST_PAGE_PASSWORD_RESET_SENT;
        if (json)
            send_json(req, 200, json_pack("{s:b}", "sent", 1));
        else
            show_status(req, v, &page, 200);
    } else if (st == GUEST_ERR_RATE_LIMITED) {
        guest_form_errors_add(&errors, "__all__",
                              "Too many password reset requests. Try again "
                              "later.");
        too_many(req, v, json, &page);
    } else {
        failure(req, json, st);
    }
out:
    guest_form_free(form);
}

void guest_password_reset_confirm_view(guest_req *req, void *userdata)
{
    if (!req)
        return;
    /* The path holds the token: no link on any answer may send it to
     * another site. Why same-origin, not no-referrer: under no-referrer a
     * browser posts the page's own form with "Origin: null", which the
     * CSRF check rightly refuses, so nobody could set a password (a
     * browser journey found it). Our own site knows the token anyway. */
    if (guest_res_add_header(req, "Referrer-Policy", "same-origin") !=
        GUEST_OK) {
        guest__respond_error(req);
        return;
    }
    const guest_views *v = options(userdata);
    bool json = guest_req_wants_json(req);
    static const char *const fields[] = {"new_password1", "new_password2",
                                         NULL};
    guest_form *form;
    const guest_user *u;
    if (!start(req, json, fields, &form, &u))
        goto out;
    char token[GUEST__TOKEN_CHARS + 1];
    char username[GUEST_USERNAME_BUF];
    if (!path_token(req, RESET_PREFIX, token)) {
        dead_link(req, v, json);
        goto out;
    }
    guest_status st =
        guest_password_reset_check(req->ctx, token, username, NULL);
    if (st == GUEST_ERR_NOT_FOUND) {
        dead_link(req, v, json);
        goto out;
    }
    if (st != GUEST_OK) {
        failure(req, json, st);
        goto out;
    }
    guest_form_errors errors = {0};
    guest_page page = {.kind = GUEST_PAGE_PASSWORD_RESET_CONFIRM,
                       .user = u,
                       .username = username,
                       .errors = &errors};
    if (!form) {
        if (json)
            json_form(req, u, json_pack("{s:s}", "username", username));
        else
            show_form_status(req, v, &page, 200);
        goto out;
    }
    st = guest_password_reset_confirm(
        req, token, guest_form_get(form, "new_password1"),
        guest_form_get(form, "new_password2"), &errors, NULL);
    const char *login = req->ctx->cfg.login_url;
    switch (st) {
    case GUEST_OK:
        if (json) {
            send_json(req, 200,
                      json_pack("{s:b, s:s}", "done", 1, "login_url", login));
            break;
        }
        /* The visitor's own session may have been one of those ended. */
        page.user = NULL;
        page.kind = GUEST_PAGE_PASSWORD_RESET_DONE;
        page.link = login;
        show_status(req, v, &page, 200);
        break;
    case GUEST_ERR_NOT_FOUND:
        dead_link(req, v, json);
        break;
    case GUEST_ERR_VALIDATION:
        if (json)
            send_json(req, 400,
                      json_pack("{s:o}", "errors", json_errors(&errors)));
        else
            show_form_status(req, v, &page, 200);
        break;
    default:
        failure(req, json, st);
        break;
    }
out:
    guest_form_free(form);
}

/* Anonymous visitors to the login page, guests to the sign-up page, each
 * with `next` back here (REGULAR_REQUIRED's way). */
static void refuse_unregistered(guest_req *req, bool json, const guest_user *u)
{
    const guest_config *c = &req->ctx->cfg;
    char *url = guest__redirect_with_next(u ? c->convert_url : c->login_url,
                                          c->redirect_field_name,
                                          guest_req_target(req));
    if (!url) {
        server_error(req, json);
        return;
    }
    if (json) {
        guest_form_errors e = {0};
        guest_form_errors_add(&e, "__all__",
                              u ? "Create an account to have an address."
                                : "Log in to change your address.");
        send_json(req, 403,
                  json_pack("{s:o, s:s, s:o}", "errors", json_errors(&e),
                            "redirect", url, "user", json_user(u)));
    } else {
        char *location = guest__iri_to_uri(url);
        if (!location || guest_res_redirect(req, location) != GUEST_OK)
            server_error(req, false);
        free(location);
    }
    free(url);
}

void guest_email_view(guest_req *req, void *userdata)
{
    if (!req)
        return;
    const guest_views *v = options(userdata);
    bool json = guest_req_wants_json(req);
    static const char *const fields[] = {"email", "password", NULL};
    guest_form *form;
    const guest_user *u;
    if (!start(req, json, fields, &form, &u))
        goto out;
    if (!u || u->is_guest) {
        refuse_unregistered(req, json, u);
        goto out;
    }
    int64_t uid;
    bool has_password = true, verified = false;
    if (guest_user_lookup(req->ctx, u->username, &uid, &has_password, NULL) !=
        GUEST_OK)
        has_password = true;
    char current[GUEST_EMAIL_MAX + 1] = "";
    guest_status st = guest_user_email(req->ctx, guest_user_id(u), current,
                                       sizeof current, &verified, NULL);
    if (st != GUEST_OK && st != GUEST_ERR_NOT_FOUND) {
        failure(req, json, st);
        goto out;
    }
    guest_form_errors errors = {0};
    guest_page page = {.kind = GUEST_PAGE_EMAIL,
                       .user = u,
                       .errors = &errors,
                       .no_password = !has_password,
                       .email = current,
                       .email_verified = verified};
    if (!form) {
        if (json)
            json_form(req, u,
                      json_pack("{s:s, s:b, s:b}", "email", current,
                                "email_verified", verified, "has_password",
                                has_password));
        else
            show_form_status(req, v, &page, 200);
        goto out;
    }
    const char *email = guest_form_get(form, "email");
    st = guest_email_change(req, email ? email : "",
                            guest_form_get(form, "password"), &errors, NULL);
    switch (st) {
    case GUEST_OK:
        if (json) {
            send_json(req, 200,
                      json_pack("{s:b, s:s}", "sent", 1, "email",
                                email ? email : ""));
            break;
        }
        page.kind = GUEST_PAGE_EMAIL_SENT;
        page.email = email ? email : "";
        show_status(req, v, &page, 200);
        break;
    case GUEST_ERR_VALIDATION:
    case GUEST_ERR_RATE_LIMITED:
        if (st == GUEST_ERR_RATE_LIMITED) {
            if (!errors.count)
                guest_form_errors_add(&errors, "__all__",
                                      GUEST__MSG_LOCKED_OUT);
            too_many(req, v, json, &page);
        } else if (json) {
            send_json(req, 400,
                      json_pack("{s:o}", "errors", json_errors(&errors)));
        } else {
            show_form_status(req, v, &page, 200);
        }
        break;
    case GUEST_ERR_AUTH:
        st = guest_req_user(req, &u, NULL);
        if (st != GUEST_OK)
            failure(req, json, st);
        else
            refuse_unregistered(req, json, u);
        break;
    default:
        failure(req, json, st);
        break;
    }
out:
    guest_form_free(form);
}

void guest_email_verify_view(guest_req *req, void *userdata)
{
    if (!req)
        return;
    const guest_views *v = options(userdata);
    bool json = guest_req_wants_json(req);
    static const char *const fields[] = {NULL};
    guest_form *form;
    const guest_user *u;
    if (!start(req, json, fields, &form, &u))
        goto out;
    char token[GUEST__TOKEN_CHARS + 1];
    if (!path_token(req, VERIFY_PREFIX, token)) {
        dead_link(req, v, json);
        goto out;
    }
    guest_page page = {.kind = GUEST_PAGE_EMAIL_VERIFY, .user = u};
    if (!form) {
        /* Nothing is used up here: mail scanners open links. A dead link
         * says so at once rather than offering a button that cannot
         * work. */
        guest_status live = guest_email_verify_check(req->ctx, token, NULL);
        if (live == GUEST_ERR_NOT_FOUND)
            dead_link(req, v, json);
        else if (live != GUEST_OK)
            failure(req, json, live);
        else if (json)
            json_form(req, u, NULL);
        else
            show_form_status(req, v, &page, 200);
        goto out;
    }
    char address[GUEST_EMAIL_MAX + 1] = "";
    guest_status st = guest_email_verify(req->ctx, token, address, NULL);
    switch (st) {
    case GUEST_OK:
        if (json) {
            send_json(req, 200,
                      json_pack("{s:s, s:b}", "email", address, "verified", 1));
            break;
        }
        page.kind = GUEST_PAGE_EMAIL_VERIFIED;
        page.email = address;
        show_status(req, v, &page, 200);
        break;
    case GUEST_ERR_NOT_FOUND:
        dead_link(req, v, json);
        break;
    case GUEST_ERR_VALIDATION:
        refuse_field(req, json, 400, "email", "Bad Request",
                     "A user with that email address already exists.");
        break;
    default:
        failure(req, json, st);
        break;
    }
out:
    guest_form_free(form);
}

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

/* The link's page when its token is dead: 400 and a clear message. */
static void dead_link(guest_req *req, const guest_views *v, bool json)
{
    if (json) {
        guest__view_refuse_field(req, true, 400, "token", MSG_DEAD_LINK, NULL);
        return;
    }
    guest_page page = {.kind = GUEST_PAGE_LINK_INVALID};
    guest__view_show(req, v, &page, 400);
}

/* How each view goes on after guest__view_enter(): the page's one
 * Cache-Control, and on POST the form, its text fields and the CSRF token,
 * then the user. False once an answer has gone out; *form is the caller's
 * to free either way. */
static bool start(guest_req *req, bool json, const char *const *fields,
                  guest_form **form, const guest_user **u)
{
    *form = NULL;
    if (guest__res_cache_control(req, true) != GUEST_OK) {
        guest__respond_error(req);
        return false;
    }
    if (!strcmp(guest_req_method(req), "POST")) {
        if (!(*form = guest__view_read_form(req, json)))
            return false;
        for (const char *const *f = fields; *f; f++) {
            size_t len;
            const char *val = guest_form_get_len(*form, *f, &len);
            if (val && !guest__utf8_valid(val, len)) {
                guest__view_refuse_field(req, json, 400, *f, "Bad Request",
                                         "A field is not valid text.");
                return false;
            }
        }
        if (!guest__view_csrf_ok(req, json, *form))
            return false;
    }
    return guest__view_user(req, json, u);
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
    if (!guest__view_enter(req, GUEST__VIEW_GET | GUEST__VIEW_POST))
        return;
    guest_views local;
    const guest_views *v = guest__view_options(userdata, &local);
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
            guest__view_json_form(req, u, NULL);
        else
            guest__view_show_form(req, v, &page, 200);
        goto out;
    }
    const char *email = guest_form_get(form, "email");
    if (!email || !*email) {
        guest_form_errors_add(&errors, "email", GUEST__MSG_REQUIRED);
        guest__view_form_errors(req, v, json, &page);
        goto out;
    }
    page.email = email;
    guest_status st = guest_password_reset_request(req, email, NULL);
    if (st == GUEST_OK) {
        page.kind = GUEST_PAGE_PASSWORD_RESET_SENT;
        if (json)
            guest__view_json(req, 200, json_pack("{s:b}", "sent", 1));
        else
            guest__view_show(req, v, &page, 200);
    } else if (st == GUEST_ERR_RATE_LIMITED) {
        guest_form_errors_add(&errors, "__all__",
                              "Too many password reset requests. Try again "
                              "later.");
        guest__view_too_many(req, v, json, &page);
    } else {
        guest__view_failure(req, json, st);
    }
out:
    guest_form_free(form);
}

/* The start of a page whose path holds a token (a mailed link): like
 * guest__view_enter(), and every answer, a refused method too, keeps the
 * path from other sites. Why same-origin, not no-referrer: under
 * no-referrer a browser posts the page's own form with "Origin: null",
 * which the CSRF check rightly refuses, so nobody could use the link (a
 * browser journey found it). Our own site knows the token anyway. */
static bool link_page_enter(guest_req *req)
{
    if (!guest__view_enter(req, 0))
        return false;
    if (guest_res_add_header(req, "Referrer-Policy", "same-origin") !=
        GUEST_OK) {
        guest__respond_error(req);
        return false;
    }
    return guest__view_methods_ok(req, GUEST__VIEW_GET | GUEST__VIEW_POST);
}

void guest_password_reset_confirm_view(guest_req *req, void *userdata)
{
    if (!link_page_enter(req))
        return;
    guest_views local;
    const guest_views *v = guest__view_options(userdata, &local);
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
        guest__view_failure(req, json, st);
        goto out;
    }
    guest_form_errors errors = {0};
    guest_page page = {.kind = GUEST_PAGE_PASSWORD_RESET_CONFIRM,
                       .user = u,
                       .username = username,
                       .errors = &errors};
    if (!form) {
        if (json)
            guest__view_json_form(req, u,
                                  json_pack("{s:s}", "username", username));
        else
            guest__view_show_form(req, v, &page, 200);
        goto out;
    }
    st = guest_password_reset_confirm(
        req, token, guest_form_get(form, "new_password1"),
        guest_form_get(form, "new_password2"), &errors, NULL);
    const char *login = req->ctx->cfg.login_url;
    switch (st) {
    case GUEST_OK:
        if (json) {
            guest__view_json(
                req, 200,
                json_pack("{s:b, s:s}", "done", 1, "login_url", login));
            break;
        }
        /* The visitor's own session may have been one of those ended. */
        page.user = NULL;
        page.kind = GUEST_PAGE_PASSWORD_RESET_DONE;
        page.link = login;
        guest__view_show(req, v, &page, 200);
        break;
    case GUEST_ERR_NOT_FOUND:
        dead_link(req, v, json);
        break;
    default:
        guest__view_refused(req, v, json, &page, st);
        break;
    }
out:
    guest_form_free(form);
}

void guest_email_view(guest_req *req, void *userdata)
{
    if (!guest__view_enter(req, GUEST__VIEW_GET | GUEST__VIEW_POST))
        return;
    guest_views local;
    const guest_views *v = guest__view_options(userdata, &local);
    bool json = guest_req_wants_json(req);
    static const char *const fields[] = {"email", "password", NULL};
    guest_form *form;
    const guest_user *u;
    if (!start(req, json, fields, &form, &u))
        goto out;
    if (!u || u->is_guest) {
        guest__view_refuse_unregistered(req, json, u,
                                        "Create an account to have an address.",
                                        "Log in to change your address.");
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
        guest__view_failure(req, json, st);
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
            guest__view_json_form(req, u,
                                  json_pack("{s:s, s:b, s:b}", "email", current,
                                            "email_verified", verified,
                                            "has_password", has_password));
        else
            guest__view_show_form(req, v, &page, 200);
        goto out;
    }
    const char *email = guest_form_get(form, "email");
    st = guest_email_change(req, email ? email : "",
                            guest_form_get(form, "password"), &errors, NULL);
    switch (st) {
    case GUEST_OK:
        if (json) {
            guest__view_json(req, 200,
                             json_pack("{s:b, s:s}", "sent", 1, "email",
                                       email ? email : ""));
            break;
        }
        page.kind = GUEST_PAGE_EMAIL_SENT;
        page.email = email ? email : "";
        guest__view_show(req, v, &page, 200);
        break;
    case GUEST_ERR_AUTH:
        guest__view_refuse_now_unregistered(
            req, json, "Create an account to have an address.",
            "Log in to change your address.");
        break;
    default:
        /* A lock-out comes with its message from the call itself. */
        guest__view_refused(req, v, json, &page, st);
        break;
    }
out:
    guest_form_free(form);
}

void guest_email_verify_view(guest_req *req, void *userdata)
{
    if (!link_page_enter(req))
        return;
    guest_views local;
    const guest_views *v = guest__view_options(userdata, &local);
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
            guest__view_failure(req, json, live);
        else if (json)
            guest__view_json_form(req, u, NULL);
        else
            guest__view_show_form(req, v, &page, 200);
        goto out;
    }
    char address[GUEST_EMAIL_MAX + 1] = "";
    guest_status st = guest_email_verify(req->ctx, token, address, NULL);
    switch (st) {
    case GUEST_OK:
        if (json) {
            guest__view_json(
                req, 200,
                json_pack("{s:s, s:b}", "email", address, "verified", 1));
            break;
        }
        page.kind = GUEST_PAGE_EMAIL_VERIFIED;
        page.email = address;
        guest__view_show(req, v, &page, 200);
        break;
    case GUEST_ERR_NOT_FOUND:
        dead_link(req, v, json);
        break;
    case GUEST_ERR_VALIDATION:
        guest__view_refuse_field(
            req, json, 400, "email", "Bad Request",
            "A user with that email address already exists.");
        break;
    default:
        guest__view_failure(req, json, st);
        break;
    }
out:
    guest_form_free(form);
}

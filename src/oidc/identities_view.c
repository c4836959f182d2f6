/* A registered user's linked identities, and the buttons other pages
 * show. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "oidc/oidc.h"

guest_status guest_oidc_write_buttons(guest_req *req, const guest_oidc *o,
                                      const char *next)
{
    if (!req || !o)
        return GUEST_ERR_INVALID;
    if (o->count == 0)
        return GUEST_OK;
    const char *token = NULL;
    guest_status st = guest_csrf_token(req, &token);
    if (st != GUEST_OK)
        return st;
    /* The host is not known here for certain: only a relative next is
     * carried, which is what the views put in their forms anyway. */
    if (next && !guest_is_safe_url(next, NULL, false))
        next = NULL;
    for (size_t i = 0; i < o->count; i++) {
        const char *name = o->providers[i].name;
        size_t len = strlen(o->prefix) + strlen(name) + sizeof "/login/";
        char *action = malloc(len);
        if (!action)
            return GUEST_ERR_NOMEM;
        snprintf(action, len, "%s%s/login/", o->prefix, name);
        guest__oidc_write_form(req, action, token, next, name);
        free(action);
    }
    return GUEST_OK;
}

typedef struct listing {
    guest_req *req;
    json_t *list; /* JSON mode */
    const char *token;
    const char *action;
    size_t count;
    bool failed;
} listing;

static bool list_one(const guest_identity_info *id, void *ud)
{
    listing *l = ud;
    l->count++;
    if (l->list) {
        json_t *item = json_pack(
            "{s:s, s:s, s:s, s:b, s:I, s:I}", "issuer", id->issuer, "subject",
            id->subject, "email", id->email, "email_verified",
            id->email_verified, "linked_at", (json_int_t)id->linked_at,
            "last_login", (json_int_t)id->last_login);
        if (!item || json_array_append_new(l->list, item)) {
            l->failed = true;
            return false;
        }
        return true;
    }
    guest_req *req = l->req;
    guest_res_printf(req, "<li>");
    guest_res_write_html(req, *id->email ? id->email : id->subject);
    guest_res_printf(req, " (");
    guest_res_write_html(req, id->issuer);
    guest_res_printf(req, ")<form method=\"post\" action=\"");
    guest_res_write_html(req, l->action);
    guest_res_printf(req, "\"><input type=\"hidden\" name=\"%s\" value=\"",
                     GUEST_CSRF_FIELD);
    guest_res_write_html(req, l->token);
    guest_res_printf(req, "\"><input type=\"hidden\" name=\"issuer\" "
                          "value=\"");
    guest_res_write_html(req, id->issuer);
    guest_res_printf(req, "\"><input type=\"hidden\" name=\"subject\" "
                          "value=\"");
    guest_res_write_html(req, id->subject);
    guest_res_printf(req, "\"><button type=\"submit\">Unlink</button>"
                          "</form></li>\n");
    return true;
}

static void show_list(guest_oidc *o, guest_req *req, bool json,
                      const guest_user *u, int status, const char *message)
{
    listing l = {.req = req, .action = guest_req_path(req)};
    guest_error err = {0};
    if (guest_csrf_token(req, &l.token) != GUEST_OK) {
        guest__oidc_page(req, json, 500, "Internal Server Error", NULL);
        return;
    }
    guest_status st;
    if (json) {
        l.list = json_array();
        st = l.list
                 ? guest_identities_list(guest_req_ctx(req), guest_user_id(u),
                                         list_one, &l, &err)
                 : GUEST_ERR_NOMEM;
        if (st == GUEST_OK && !l.failed) {
            json_t *body = json_pack("{s:o, s:s}", "identities", l.list,
                                     "csrf_token", l.token);
            if (body && message)
                json_object_set_new(body, "message", json_string(message));
            guest__oidc_send_json(req, status, body);
            return;
        }
        json_decref(l.list);
    } else {
        if (!guest__oidc_page_begin(req, status, "Linked accounts"))
            return;
        if (message) {
            guest_res_printf(req, "<p>");
            guest_res_write_html(req, message);
            guest_res_printf(req, "</p>\n");
        }
        guest_res_printf(req, "<ul>\n");
        st = guest_identities_list(guest_req_ctx(req), guest_user_id(u),
                                   list_one, &l, &err);
        guest_res_printf(req, "</ul>\n");
        if (st == GUEST_OK) {
            if (l.count == 0)
                guest_res_printf(req, "<p>No account of another site is "
                                      "linked.</p>\n");
            if (guest_oidc_write_buttons(req, o, NULL) != GUEST_OK)
                guest_res_printf(req, "<!-- no buttons -->\n");
            guest__oidc_page_end(req);
            return;
        }
        /* Half a list must not stand as the answer. */
        if (guest_res_reset(req) != GUEST_OK) {
            guest_res_set_status(req, 500);
            return;
        }
    }
    guest__oidc_why why = {0};
    guest__oidc_fail(&why, GUEST__OIDC_BUSY, "database",
                     "guest_identities_list: %s", err.message);
    guest__oidc_log(o, GUEST_LOG_ERROR, NULL, &why);
    guest__oidc_page(req, json, 503, "Service Unavailable",
                     "Please try again in a moment.");
    guest__oidc_header(req, "Retry-After", "5");
}

static void unlink_one(guest_oidc *o, guest_req *req, bool json,
                       const guest_user *u)
{
    guest_form *form = guest__oidc_form(req, json);
    if (!form)
        return;
    guest_error err = {0};
    if (guest_csrf_check_form(req, form, &err) != GUEST_OK) {
        guest__oidc_page(req, json, 403,
                         "Forbidden (CSRF verification failed. Request "
                         "aborted.)",
                         err.message);
        guest_form_free(form);
        return;
    }
    const char *iss = guest_form_get(form, "issuer");
    const char *sub = guest_form_get(form, "subject");
    guest_status st =
        iss && sub ? guest_identity_unlink(guest_req_ctx(req), guest_user_id(u),
                                           iss, sub, &err)
                   : GUEST_ERR_NOT_FOUND;
    guest_form_free(form);
    switch (st) {
    case GUEST_OK:
        if (json) {
            show_list(o, req, json, u, 200, "Unlinked.");
        } else if (guest_res_redirect(req, guest_req_path(req)) != GUEST_OK) {
            guest__oidc_page(req, json, 500, "Internal Server Error", NULL);
        }
        return;
    case GUEST_ERR_LAST_LOGIN:
        show_list(o, req, json, u, 400,
                  "That account is your only way to log in: set a password "
                  "or link another account before you unlink it.");
        return;
    case GUEST_ERR_NOT_FOUND:
    case GUEST_ERR_INVALID:
        show_list(o, req, json, u, 404, "No such linked account.");
        return;
    default:
        guest__oidc_page(req, json, 503, "Service Unavailable",
                         "Please try again in a moment.");
        guest__oidc_header(req, "Retry-After", "5");
        return;
    }
}

/* Where REGULAR_REQUIRED would send this visitor: the login page, or the
 * sign-up page for a guest, with `next` back here. */
static char *away_url(guest_req *req, const guest_user *u)
{
    const guest_config *c = guest_ctx_config(guest_req_ctx(req));
    const char *base = u ? c->convert_url : c->login_url;
    char *target = guest__oidc_escape(guest_req_target(req));
    size_t len = strlen(base) + strlen(c->redirect_field_name) +
                 (target ? strlen(target) : 0) + 3;
    char *url = target ? malloc(len) : NULL;
    if (url)
        snprintf(url, len, "%s%c%s=%s", base, strchr(base, '?') ? '&' : '?',
                 c->redirect_field_name, target);
    free(target);
    return url;
}

void guest_oidc_identities_view(guest_req *req, void *userdata)
{
    guest_oidc *o = userdata;
    if (!guest__oidc_view_enter(req))
        return;
    bool json = guest_req_wants_json(req);
    const char *m = guest_req_method(req);
    bool get = !strcmp(m, "GET") || !strcmp(m, "HEAD");
    if (!get && strcmp(m, "POST") != 0) {
        guest__oidc_page(req, json, 405, "Method Not Allowed", NULL);
        guest__oidc_header(req, "Allow", "GET, HEAD, POST");
        return;
    }
    const guest_user *u = NULL;
    guest_error err = {0};
    if (guest_req_user(req, &u, &err) != GUEST_OK) {
        guest__oidc_page(req, json, 503, "Service Unavailable",
                         "Please try again in a moment.");
        guest__oidc_header(req, "Retry-After", "5");
        return;
    }
    if (!guest_is_regular_user(u)) {
        char *url = away_url(req, u);
        bool failed = !url;
        if (url && json)
            guest__oidc_send_json(
                req, 403,
                json_pack("{s:{s:[s]}, s:s}", "errors", "__all__",
                          u ? "Create an account to link other accounts."
                            : "Log in to see your linked accounts.",
                          "redirect", url));
        else if (url)
            failed = guest_res_redirect(req, url) != GUEST_OK;
        if (failed)
            guest__oidc_page(req, json, 500, "Internal Server Error", NULL);
        free(url);
        return;
    }
    if (get)
        show_list(o, req, json, u, 200, NULL);
    else
        unlink_one(o, req, json, u);
}

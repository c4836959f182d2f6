/* The ready-made convert, convert-success, login, logout and password
 * change handlers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "accounts/accounts.h"

#undef guest_views_init
void guest_views_init_size(guest_views *views, size_t size)
{
    guest_views d;
    memset(&d, 0, sizeof d);
    guest_sized_init(views, size, &d, sizeof d);
}

static bool is_post(const guest_req *req)
{
    return !strcmp(guest_req_method(req), "POST");
}

/* False (after a 400) when @p name holds a NUL byte or bad UTF-8. */
static bool check_text(guest_req *req, bool json, const guest_form *form,
                       const char *name)
{
    size_t len;
    const char *v = guest_form_get_len(form, name, &len);
    if (!v || guest__utf8_valid(v, len))
        return true;
    char msg[128];
    snprintf(msg, sizeof msg, "The field \"%.64s\" is not valid text.", name);
    guest__view_refuse(req, json, 400, "Bad Request", msg);
    return false;
}

/* The safe `next`; false after answering (400 for a query string that
 * repeats a field or has too many). */
static bool read_next(guest_req *req, bool json, const guest_form *form,
                      char **next)
{
    guest_status st = guest_req_safe_next(req, form, next);
    if (st == GUEST_OK)
        return true;
    if (st == GUEST_ERR_VALIDATION)
        guest__view_refuse(
            req, json, 400, "Bad Request",
            "The query string could not be read: a field was sent more "
            "than once, or there are too many fields.");
    else
        guest__view_server_error(req, json);
    return false;
}

static void show(guest_req *req, const guest_views *v, guest_page *page)
{
    guest__view_show(req, v, page, 200);
}

static void show_form(guest_req *req, const guest_views *v, guest_page *page)
{
    guest__view_show_form(req, v, page, 200);
}

/* A form that did its work: JSON says who the visitor is now, HTML goes on
 * to the safe next URL or the configured page. */
static void succeeded(guest_req *req, bool json, const char *next,
                      const char *fallback)
{
    const guest_user *u = NULL;
    if (json)
        guest__view_json_form(
            req, guest_req_user(req, &u, NULL) == GUEST_OK ? u : NULL, NULL);
    else
        guest__view_redirect(req, next ? next : fallback);
}

/* Extra fields must not collide with the built-in ones or break markup. */
static bool signup_fields_ok(const guest_signup *s, const char *next_field)
{
    static const char *const reserved[] = {
        "username",       "password", "password1", "password2",
        GUEST_CSRF_FIELD, "__all__",  NULL};
    if (s->field_count && !s->fields)
        return false;
    for (size_t i = 0; i < s->field_count; i++) {
        const char *n = s->fields[i].name;
        size_t len = n ? strlen(n) : 0;
        if (len < 1 || len > 64 ||
            strspn(n, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                      "0123456789_-") != len ||
            !strcmp(n, next_field))
            return false;
        for (const char *const *r = reserved; *r; r++)
            if (!strcmp(n, *r))
                return false;
    }
    return true;
}

/* ---- the handlers ---- */

/* How every form view starts. On POST: the form read, each of @p fields
 * (NULL-terminated) and then each of @p signup's (may be NULL) checked for
 * one well-formed value, and the CSRF token; then the safe `next` and the
 * request's user. False once an answer has gone out; *form and *next are
 * the caller's to free either way. */
static bool form_view_start(guest_req *req, bool json,
                            const char *const *fields,
                            const guest_signup *signup, guest_form **form,
                            char **next, const guest_user **u)
{
    *form = NULL;
    *next = NULL;
    /* Before any work that may set a session cookie (whose "private"
     * would otherwise come first): the page's one Cache-Control. */
    if (guest__res_cache_control(req, true) != GUEST_OK) {
        guest__respond_error(req);
        return false;
    }
    if (is_post(req)) {
        if (!(*form = guest__view_read_form(req, json)))
            return false;
        for (const char *const *f = fields; *f; f++)
            if (!check_text(req, json, *form, *f))
                return false;
        for (size_t i = 0; signup && i < signup->field_count; i++)
            if (!check_text(req, json, *form, signup->fields[i].name))
                return false;
        if (!guest__view_csrf_ok(req, json, *form))
            return false;
    }
    if (!read_next(req, json, *form, next))
        return false;
    return guest__view_user(req, json, u);
}

void guest_convert_view(guest_req *req, void *userdata)
{
    if (!guest__view_enter(req, GUEST__VIEW_GET | GUEST__VIEW_POST))
        return;
    guest_views local;
    const guest_views *v = guest__view_options(userdata, &local);
    const guest_config *c = &req->ctx->cfg;
    bool json = guest_req_wants_json(req);
    if (!signup_fields_ok(&v->signup, c->redirect_field_name)) {
        guest__view_server_error(req, json);
        return;
    }
    static const char *const fields[] = {"username", "password1", "password2",
                                         "email", NULL};
    guest_form *form;
    char *next;
    const guest_user *u;
    if (!form_view_start(req, json, fields, &v->signup, &form, &next, &u))
        goto out;
    if (!u || !u->is_guest) {
        guest__view_send_away(req, json, u,
                              u ? c->login_redirect_url : c->login_url,
                              "Only a guest can create an account here.");
        goto out;
    }
    guest_form_errors errors = {0};
    guest_page page = {.kind = GUEST_PAGE_CONVERT,
                       .errors = &errors,
                       .next = next,
                       .fields = v->signup.fields,
                       .field_count = v->signup.field_count};
    if (!form) {
        if (json) {
            guest__view_json_form(req, u, NULL);
        } else {
            page.user = u;
            page.username = c->convert_prefill_username ? u->username : "";
            show_form(req, v, &page);
        }
        goto out;
    }
    const char *username = guest_form_get(form, "username");
    guest_status st = guest_convert_with(
        req, username, guest_form_get(form, "password1"),
        guest_form_get(form, "password2"), &v->signup, form, &errors, NULL);
    switch (st) {
    case GUEST_OK:
        succeeded(req, json, next, c->convert_redirect_url);
        break;
    case GUEST_ERR_NOT_GUEST:
        /* Converted by a concurrent request (or logged out): this one
         * changed nothing and goes where the visitor now belongs. */
        st = guest_req_user(req, &u, NULL);
        if (st != GUEST_OK)
            guest__view_failure(req, json, st);
        else
            guest__view_send_away(req, json, u,
                                  u ? c->login_redirect_url : c->login_url,
                                  "Only a guest can create an account here.");
        break;
    default:
        page.user = u;
        page.username = username;
        page.form = form;
        guest__view_refused(req, v, json, &page, st);
        break;
    }
out:
    free(next);
    guest_form_free(form);
}

void guest_convert_success_view(guest_req *req, void *userdata)
{
    if (!guest__view_enter(req, GUEST__VIEW_GET))
        return;
    guest_views local;
    const guest_views *v = guest__view_options(userdata, &local);
    bool json = guest_req_wants_json(req);
    const guest_user *u;
    if (!guest__view_user(req, json, &u))
        return;
    if (json) {
        guest__view_json(req, 200,
                         json_pack("{s:o}", "user", guest__view_json_user(u)));
        return;
    }
    guest_form_errors errors = {0};
    guest_page page = {.kind = GUEST_PAGE_CONVERT_SUCCESS,
                       .user = u,
                       .action = guest_req_path(req),
                       .csrf_token = "",
                       .next_field = req->ctx->cfg.redirect_field_name,
                       .next = "",
                       .username = "",
                       .errors = &errors};
    show(req, v, &page);
}

void guest_login_view(guest_req *req, void *userdata)
{
    if (!guest__view_enter(req, GUEST__VIEW_GET | GUEST__VIEW_POST))
        return;
    guest_views local;
    const guest_views *v = guest__view_options(userdata, &local);
    const guest_config *c = &req->ctx->cfg;
    bool json = guest_req_wants_json(req);
    static const char *const fields[] = {"username", "password", NULL};
    guest_form *form;
    char *next;
    const guest_user *u;
    if (!form_view_start(req, json, fields, NULL, &form, &next, &u))
        goto out;
    guest_form_errors errors = {0};
    guest_page page = {
        .kind = GUEST_PAGE_LOGIN, .user = u, .errors = &errors, .next = next};
    if (!form) {
        if (json)
            guest__view_json_form(req, u, NULL);
        else
            show_form(req, v, &page);
        goto out;
    }
    page.username = guest_form_get(form, "username");
    guest_status st = guest_login(
        req, page.username, guest_form_get(form, "password"), &errors, NULL);
    if (st == GUEST_OK)
        succeeded(req, json, next, c->login_redirect_url);
    else if (st == GUEST_ERR_AUTH) /* a wrong name or password */
        guest__view_form_errors(req, v, json, &page);
    else
        guest__view_refused(req, v, json, &page, st);
out:
    free(next);
    guest_form_free(form);
}

void guest_logout_view(guest_req *req, void *userdata)
{
    (void)userdata;
    if (!guest__view_enter(req, GUEST__VIEW_POST))
        return;
    bool json = guest_req_wants_json(req);
    guest_form *form = guest__view_read_form(req, json);
    if (!form)
        return;
    if (guest__view_csrf_ok(req, json, form)) {
        guest_status st = guest_logout(req, NULL);
        if (st != GUEST_OK)
            guest__view_failure(req, json, st);
        else if (json)
            guest__view_json(req, 200, json_pack("{s:n}", "user"));
        else
            guest__view_redirect(req, "/");
    }
    guest_form_free(form);
}

void guest_password_change_view(guest_req *req, void *userdata)
{
    if (!guest__view_enter(req, GUEST__VIEW_GET | GUEST__VIEW_POST))
        return;
    guest_views local;
    const guest_views *v = guest__view_options(userdata, &local);
    bool json = guest_req_wants_json(req);
    static const char *const fields[] = {"old_password", "new_password1",
                                         "new_password2", NULL};
    guest_form *form;
    char *next;
    const guest_user *u;
    if (!form_view_start(req, json, fields, NULL, &form, &next, &u))
        goto out;
    if (!u || u->is_guest) {
        guest__view_refuse_unregistered(req, json, u,
                                        "Create an account to set a password.",
                                        "Log in to change your password.");
        goto out;
    }
    guest_form_errors errors = {0};
    /* An account made through an identity provider has no password to
     * ask for; a failed look-up just shows the usual form. */
    int64_t uid;
    bool has_password = true;
    if (guest__store_user_lookup(req->ctx, u->username, &uid, &has_password,
                                 NULL) != GUEST_OK)
        has_password = true;
    guest_page page = {.kind = GUEST_PAGE_PASSWORD_CHANGE,
                       .user = u,
                       .errors = &errors,
                       .next = next,
                       .no_password = !has_password};
    if (!form) {
        if (json)
            guest__view_json_form(req, u, NULL);
        else
            show_form(req, v, &page);
        goto out;
    }
    guest_status st = guest_password_change(
        req, guest_form_get(form, "old_password"),
        guest_form_get(form, "new_password1"),
        guest_form_get(form, "new_password2"), &errors, NULL);
    switch (st) {
    case GUEST_OK:
        if (json || next) {
            succeeded(req, json, next, "/");
            break;
        }
        page.kind = GUEST_PAGE_PASSWORD_CHANGE_DONE;
        page.action = guest_req_path(req);
        page.csrf_token = "";
        page.next_field = req->ctx->cfg.redirect_field_name;
        page.next = "";
        page.username = "";
        show(req, v, &page);
        break;
    case GUEST_ERR_AUTH:
        /* Deleted or deactivated meanwhile: where the visitor now
         * belongs. */
        guest__view_refuse_now_unregistered(
            req, json, "Create an account to set a password.",
            "Log in to change your password.");
        break;
    default:
        guest__view_refused(req, v, json, &page, st);
        break;
    }
out:
    free(next);
    guest_form_free(form);
}

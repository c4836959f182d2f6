/* The ready-made convert, convert-success, login, logout and password
 * change handlers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "accounts/accounts.h"

void guest_views_init(guest_views *views)
{
    if (views)
        memset(views, 0, sizeof *views);
}

static const guest_views *options(void *userdata)
{
    static const guest_views defaults = {0};
    return userdata ? userdata : &defaults;
}

static bool contains_ci(const char *haystack, const char *needle)
{
    size_t n = strlen(needle);
    for (; haystack && *haystack; haystack++)
        if (!strncasecmp(haystack, needle, n))
            return true;
    return false;
}

bool guest_req_wants_json(const guest_req *req)
{
    if (!req)
        return false;
    if (guest__media_type_is(guest_req_header(req, "Content-Type"),
                             "application/json"))
        return true;
    return contains_ci(guest_req_header(req, "Accept"), "application/json");
}

/* ---- responses ---- */

/* A header the answer cannot do without; when the adapter cannot take it,
 * the answer becomes a plain 500. False then. */
static bool header(guest_req *req, const char *name, const char *value)
{
    if (guest_res_add_header(req, name, value) == GUEST_OK)
        return true;
    guest__respond_error(req);
    return false;
}

static bool no_cache(guest_req *req)
{
    /* Pages with a CSRF token or account data must not be stored by a
     * shared cache or shown framed by another site. */
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

/* A refusal: plain text for a browser, {"errors": {"__all__": [...]}} for a
 * script. */
static void refuse(guest_req *req, bool json, int status, const char *title,
                   const char *detail)
{
    if (json) {
        guest_form_errors e = {0};
        guest_form_errors_add(&e, "__all__", detail ? detail : title);
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

static void server_error(guest_req *req, bool json)
{
    refuse(req, json, 500, "Internal Server Error", NULL);
}

/* Database statuses and busy password hashing become 503 (try again),
 * everything else 500. */
static void failure(guest_req *req, bool json, guest_status st)
{
    if (st == GUEST_ERR_BUSY) {
        /* Every hashing slot stayed taken: a moment later is likely to
         * work, so the client is told to come back soon. */
        refuse(req, json, 503, "Service Unavailable",
               "Too many sign-ins at once. Please try again in a moment.");
        (void)header(req, "Retry-After", "1");
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

static void redirect(guest_req *req, const char *url)
{
    char *location = guest__iri_to_uri(url);
    if (!location || guest_res_redirect(req, location) != GUEST_OK)
        server_error(req, false);
    free(location);
}

/* A visitor the page is not for: anonymous ones to @p anon_url,
 * registered users to @p user_url. */
static void send_away(guest_req *req, bool json, const guest_user *u,
                      const char *anon_url, const char *user_url,
                      const char *why)
{
    const char *to = u ? user_url : anon_url;
    if (!json) {
        redirect(req, to);
        return;
    }
    guest_form_errors e = {0};
    guest_form_errors_add(&e, "__all__", why);
    send_json(req, 403,
              json_pack("{s:o, s:s, s:o}", "errors", json_errors(&e),
                        "redirect", to, "user", json_user(u)));
}

static bool method_ok(guest_req *req, bool json, bool get_ok, bool post_ok,
                      const char *allow)
{
    const char *m = guest_req_method(req);
    bool get = !strcmp(m, "GET") || !strcmp(m, "HEAD");
    bool post = !strcmp(m, "POST");
    if ((get && get_ok) || (post && post_ok))
        return true;
    refuse(req, json, 405, "Method Not Allowed", NULL);
    (void)header(req, "Allow", allow);
    return false;
}

static bool is_post(const guest_req *req)
{
    return !strcmp(guest_req_method(req), "POST");
}

/* The POST body as a form; NULL after answering 413, 415 or 400. */
static guest_form *read_form(guest_req *req, bool json)
{
    guest_form *form = NULL;
    guest_error err = {0};
    guest_status st = guest_req_form(req, &form, &err);
    switch (st) {
    case GUEST_OK:
        break;
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
    return form;
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
    refuse(req, json, 400, "Bad Request", msg);
    return false;
}

static bool csrf_ok(guest_req *req, bool json, const guest_form *form)
{
    guest_error err = {0};
    if (guest_csrf_check_form(req, form, &err) == GUEST_OK)
        return true;
    refuse(req, json, 403,
           "Forbidden (CSRF verification failed. Request "
           "aborted.)",
           err.message);
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
        refuse(req, json, 400, "Bad Request",
               "The query string could not be read: a field was sent more "
               "than once, or there are too many fields.");
    else
        server_error(req, json);
    return false;
}

static void show_status(guest_req *req, const guest_views *v, guest_page *page,
                        int status)
{
    guest_res_set_status(req, status);
    if (!header(req, "Content-Type", "text/html; charset=utf-8") ||
        !no_cache(req))
        return;
    guest_status st = v->render ? v->render(req, page, v->render_userdata)
                                : guest_render_default(req, page);
    if (st != GUEST_OK) {
        /* Half a page must not end in an error text: start over when the
         * adapter can (every bundled one can). */
        if (guest_res_reset(req) == GUEST_OK)
            server_error(req, false);
        else
            guest_res_set_status(req, 500);
    }
}

static void show(guest_req *req, const guest_views *v, guest_page *page)
{
    show_status(req, v, page, 200);
}

/* A page with a form: the CSRF token is made (and its cookie set) here. */
static void show_form_status(guest_req *req, const guest_views *v,
                             guest_page *page, int status)
{
    const char *token;
    if (guest_csrf_token(req, &token) != GUEST_OK) {
        server_error(req, false);
        return;
    }
    page->csrf_token = token;
    page->action = guest_req_path(req);
    page->next_field = req->ctx->cfg.redirect_field_name;
    if (!page->next)
        page->next = "";
    if (!page->username)
        page->username = "";
    show_status(req, v, page, status);
}

static void show_form(guest_req *req, const guest_views *v, guest_page *page)
{
    show_form_status(req, v, page, 200);
}

static void json_success(guest_req *req, const guest_user *u)
{
    const char *token = NULL;
    if (guest_csrf_token(req, &token) != GUEST_OK) {
        server_error(req, true);
        return;
    }
    send_json(
        req, 200,
        json_pack("{s:o, s:s}", "user", json_user(u), "csrf_token", token));
}

/* A form that did its work: JSON says who the visitor is now, HTML goes on
 * to the safe next URL or the configured page. */
static void succeeded(guest_req *req, bool json, const char *next,
                      const char *fallback)
{
    const guest_user *u = NULL;
    if (json)
        json_success(req, guest_req_user(req, &u, NULL) == GUEST_OK ? u : NULL);
    else
        redirect(req, next ? next : fallback);
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

/* A refused form: 400 with every message in JSON mode, else the form again
 * (status 200, like Django) with the messages and what was entered. */
static void show_errors(guest_req *req, const guest_views *v, bool json,
                        guest_page *page)
{
    if (json)
        send_json(req, 400,
                  json_pack("{s:o}", "errors", json_errors(page->errors)));
    else
        show_form(req, v, page);
}

/* A login or conversion refused by the attempt limit: 429 with
 * Retry-After, and the form again with the lockout message (JSON: the
 * message in "errors"). */
static void too_many(guest_req *req, const guest_views *v, bool json,
                     guest_page *page)
{
    char secs[32];
    snprintf(secs, sizeof secs, "%lld",
             (long long)(guest_req_retry_after(req) > 0
                             ? guest_req_retry_after(req)
                             : 1));
    if (!header(req, "Retry-After", secs))
        return;
    if (json)
        send_json(req, 429,
                  json_pack("{s:o}", "errors", json_errors(page->errors)));
    else
        show_form_status(req, v, page, 429);
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
        if (!(*form = read_form(req, json)))
            return false;
        for (const char *const *f = fields; *f; f++)
            if (!check_text(req, json, *form, *f))
                return false;
        for (size_t i = 0; signup && i < signup->field_count; i++)
            if (!check_text(req, json, *form, signup->fields[i].name))
                return false;
        if (!csrf_ok(req, json, *form))
            return false;
    }
    if (!read_next(req, json, *form, next))
        return false;
    guest_status st = guest_req_user(req, u, NULL);
    if (st != GUEST_OK) {
        failure(req, json, st);
        return false;
    }
    return true;
}

void guest_convert_view(guest_req *req, void *userdata)
{
    if (!req)
        return;
    const guest_views *v = options(userdata);
    const guest_config *c = &req->ctx->cfg;
    bool json = guest_req_wants_json(req);
    if (!method_ok(req, json, true, true, "GET, HEAD, POST"))
        return;
    if (!signup_fields_ok(&v->signup, c->redirect_field_name)) {
        server_error(req, json);
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
        send_away(req, json, u, c->login_url, c->login_redirect_url,
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
            json_success(req, u);
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
            failure(req, json, st);
        else
            send_away(req, json, u, c->login_url, c->login_redirect_url,
                      "Only a guest can create an account here.");
        break;
    case GUEST_ERR_VALIDATION:
    case GUEST_ERR_USERNAME_TAKEN:
    case GUEST_ERR_RATE_LIMITED:
        page.user = u;
        page.username = username;
        page.form = form;
        if (st == GUEST_ERR_RATE_LIMITED)
            too_many(req, v, json, &page);
        else
            show_errors(req, v, json, &page);
        break;
    default:
        failure(req, json, st);
        break;
    }
out:
    free(next);
    guest_form_free(form);
}

void guest_convert_success_view(guest_req *req, void *userdata)
{
    if (!req)
        return;
    const guest_views *v = options(userdata);
    bool json = guest_req_wants_json(req);
    if (!method_ok(req, json, true, false, "GET, HEAD"))
        return;
    const guest_user *u;
    guest_status st = guest_req_user(req, &u, NULL);
    if (st != GUEST_OK) {
        failure(req, json, st);
        return;
    }
    if (json) {
        send_json(req, 200, json_pack("{s:o}", "user", json_user(u)));
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
    if (!req)
        return;
    const guest_views *v = options(userdata);
    const guest_config *c = &req->ctx->cfg;
    bool json = guest_req_wants_json(req);
    if (!method_ok(req, json, true, true, "GET, HEAD, POST"))
        return;
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
            json_success(req, u);
        else
            show_form(req, v, &page);
        goto out;
    }
    const char *username = guest_form_get(form, "username");
    guest_status st = guest_login(
        req, username, guest_form_get(form, "password"), &errors, NULL);
    switch (st) {
    case GUEST_OK:
        succeeded(req, json, next, c->login_redirect_url);
        break;
    case GUEST_ERR_AUTH:
    case GUEST_ERR_VALIDATION:
    case GUEST_ERR_RATE_LIMITED:
        page.username = username;
        if (st == GUEST_ERR_RATE_LIMITED)
            too_many(req, v, json, &page);
        else
            show_errors(req, v, json, &page);
        break;
    default:
        failure(req, json, st);
        break;
    }
out:
    free(next);
    guest_form_free(form);
}

void guest_logout_view(guest_req *req, void *userdata)
{
    (void)userdata;
    if (!req)
        return;
    bool json = guest_req_wants_json(req);
    if (!method_ok(req, json, false, true, "POST"))
        return;
    guest_form *form = read_form(req, json);
    if (!form)
        return;
    if (csrf_ok(req, json, form)) {
        guest_status st = guest_logout(req, NULL);
        if (st != GUEST_OK)
            failure(req, json, st);
        else if (json)
            send_json(req, 200, json_pack("{s:n}", "user"));
        else
            redirect(req, "/");
    }
    guest_form_free(form);
}

/* A page for registered users only, refused as REGULAR_REQUIRED refuses:
 * anonymous visitors to the login page, guests to the sign-up page, each
 * with `next` back here. */
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
    send_away(req, json, u, url, url,
              u ? "Create an account to set a password."
                : "Log in to change your password.");
    free(url);
}

void guest_password_change_view(guest_req *req, void *userdata)
{
    if (!req)
        return;
    const guest_views *v = options(userdata);
    bool json = guest_req_wants_json(req);
    if (!method_ok(req, json, true, true, "GET, HEAD, POST"))
        return;
    static const char *const fields[] = {"old_password", "new_password1",
                                         "new_password2", NULL};
    guest_form *form;
    char *next;
    const guest_user *u;
    if (!form_view_start(req, json, fields, NULL, &form, &next, &u))
        goto out;
    if (!u || u->is_guest) {
        refuse_unregistered(req, json, u);
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
            json_success(req, u);
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
    case GUEST_ERR_VALIDATION:
    case GUEST_ERR_RATE_LIMITED:
        if (st == GUEST_ERR_RATE_LIMITED)
            too_many(req, v, json, &page);
        else
            show_errors(req, v, json, &page);
        break;
    case GUEST_ERR_AUTH:
        /* Deleted or deactivated meanwhile: where the visitor now
         * belongs. */
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
    free(next);
    guest_form_free(form);
}

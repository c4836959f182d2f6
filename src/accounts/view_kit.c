/* What every ready-made page shares (views.c, email_views.c): headers that
 * must go out, JSON and plain-text refusals, the status for a library
 * error, the form read with its 413/415/400, and a page rendered through
 * the site's renderer or the default one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "accounts/accounts.h"

static bool contains_ci(const char *haystack, const char *needle)
{
    size_t n = strlen(needle);
    for (; haystack && *haystack; haystack++)
        if (!strncasecmp(haystack, needle, n))
            return true;
    return false;
}

/* Here, not in views.c: the 405 of guest__view_methods_ok() asks it, and
 * views.c calls this file, never the other way. */
bool guest_req_wants_json(const guest_req *req)
{
    if (!req)
        return false;
    if (guest__media_type_is(guest_req_header(req, "Content-Type"),
                             "application/json"))
        return true;
    return contains_ci(guest_req_header(req, "Accept"), "application/json");
}

/* Every view may block (statements, hashing), so none runs on an event
 * loop's thread: there it is deferred to a worker, which calls it again. */
bool guest__view_enter(guest_req *req, unsigned methods)
{
    if (!req || guest_req_defer(req))
        return false;
    return !methods || guest__view_methods_ok(req, methods);
}

bool guest__view_methods_ok(guest_req *req, unsigned methods)
{
    const char *m = guest_req_method(req);
    if ((methods & GUEST__VIEW_GET) &&
        (!strcmp(m, "GET") || !strcmp(m, "HEAD")))
        return true;
    if ((methods & GUEST__VIEW_POST) && !strcmp(m, "POST"))
        return true;
    guest__view_refuse(req, guest_req_wants_json(req), 405,
                       "Method Not Allowed", NULL);
    (void)guest__view_header(req, "Allow",
                             methods == GUEST__VIEW_GET    ? "GET, HEAD"
                             : methods == GUEST__VIEW_POST ? "POST"
                                                           : "GET, HEAD, POST");
    return false;
}

const guest_views *guest__view_options(void *userdata, guest_views *local)
{
    static const guest_views defaults = {.size = sizeof(guest_views)};
    const guest_views *v = userdata;
    if (!v)
        return &defaults;
    /* An older program's smaller struct: its fields over the defaults;
     * 0 (zeroed by hand) and this size or more are read as they are. */
    if (v->size && v->size < sizeof *v) {
        *local = defaults;
        memcpy(local, v, v->size);
        return local;
    }
    return v;
}

/* A header the answer cannot do without; when the adapter cannot take it,
 * the answer becomes a plain 500. */
bool guest__view_header(guest_req *req, const char *name, const char *value)
{
    if (guest_res_add_header(req, name, value) == GUEST_OK)
        return true;
    guest__respond_error(req);
    return false;
}

bool guest__view_no_cache(guest_req *req)
{
    /* Pages with a CSRF token or account data must not be stored by a
     * shared cache or shown framed by another site. */
    if (guest__res_cache_control(req, true) != GUEST_OK) {
        guest__respond_error(req);
        return false;
    }
    return guest__view_header(req, "X-Frame-Options", "DENY");
}

void guest__view_json(guest_req *req, int status, json_t *obj)
{
    char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    if (!text) {
        guest_res_send(req, 500, "text/plain; charset=utf-8",
                       "Internal Server Error\n");
        return;
    }
    guest_res_set_status(req, status);
    if (guest__view_header(req, "Content-Type", "application/json") &&
        guest__view_no_cache(req)) {
        guest_res_write(req, text, strlen(text));
        guest_res_write(req, "\n", 1);
    }
    free(text);
}

json_t *guest__view_json_user(const guest_user *u)
{
    if (!u)
        return json_null();
    return json_pack("{s:I, s:s, s:b}", "id", (json_int_t)guest_user_id(u),
                     "username", guest_user_name(u), "is_guest",
                     guest_is_guest_user(u));
}

json_t *guest__view_json_errors(const guest_form_errors *e)
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

void guest__view_refuse_field(guest_req *req, bool json, int status,
                              const char *field, const char *title,
                              const char *detail)
{
    if (json) {
        guest_form_errors e = {0};
        guest_form_errors_add(&e, field, detail ? detail : title);
        guest__view_json(
            req, status,
            json_pack("{s:o}", "errors", guest__view_json_errors(&e)));
        return;
    }
    guest_res_set_status(req, status);
    if (!guest__view_header(req, "Content-Type", "text/plain; charset=utf-8"))
        return;
    guest_res_printf(req, "%s\n", title);
    if (detail)
        guest_res_printf(req, "%s\n", detail);
}

void guest__view_refuse(guest_req *req, bool json, int status,
                        const char *title, const char *detail)
{
    guest__view_refuse_field(req, json, status, "__all__", title, detail);
}

void guest__view_server_error(guest_req *req, bool json)
{
    guest__view_refuse(req, json, 500, "Internal Server Error", NULL);
}

void guest__view_failure(guest_req *req, bool json, guest_status st)
{
    if (st == GUEST_ERR_BUSY) {
        /* Every hashing slot stayed taken: a moment later is likely to
         * work, so the client is told to come back soon. */
        guest__view_refuse(
            req, json, 503, "Service Unavailable",
            "Too many sign-ins at once. Please try again in a moment.");
        (void)guest__view_header(req, "Retry-After", "1");
        return;
    }
    if (st == GUEST_ERR_CONFIG) {
        /* A flow that needs mail without mail_from or public_url: the
         * site's setting, not the visitor's fault. */
        guest__view_refuse(req, json, 503, "Service Unavailable",
                           "This site cannot send mail at the moment.");
        return;
    }
    if (st == GUEST_ERR_DB || st == GUEST_ERR_DB_UNAVAILABLE) {
        if (json) {
            guest__view_refuse(req, true, 503, "Service Unavailable", NULL);
            (void)guest__view_header(req, "Retry-After", "5");
        } else {
            guest__respond_unavailable(req);
        }
        return;
    }
    guest__view_server_error(req, json);
}

void guest__view_redirect(guest_req *req, const char *url)
{
    char *location = guest__iri_to_uri(url);
    if (!location || guest_res_redirect(req, location) != GUEST_OK)
        guest__view_server_error(req, false);
    free(location);
}

guest_form *guest__view_read_form(guest_req *req, bool json)
{
    guest_form *form = NULL;
    guest_error err = {0};
    guest_status st = guest_req_form(req, &form, &err);
    switch (guest_req_form_http_status(st)) {
    case 200:
        return form;
    case 413:
        guest__view_refuse(req, json, 413, "Payload Too Large", NULL);
        return NULL;
    case 415:
        guest__view_refuse(req, json, 415, "Unsupported Media Type",
                           err.message);
        return NULL;
    case 400:
        guest__view_refuse(req, json, 400, "Bad Request", err.message);
        return NULL;
    default:
        guest__view_server_error(req, json);
        return NULL;
    }
}

void guest__view_show(guest_req *req, const guest_views *v, guest_page *page,
                      int status)
{
    /* A renderer may read every field: none is left NULL. */
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
    if (!guest__view_header(req, "Content-Type", "text/html; charset=utf-8") ||
        !guest__view_no_cache(req))
        return;
    guest_status st = v->render ? v->render(req, page, v->render_userdata)
                                : guest_render_default(req, page);
    if (st != GUEST_OK) {
        /* Half a page must not end in an error text: start over when the
         * adapter can (every bundled one can). */
        if (guest_res_reset(req) == GUEST_OK)
            guest__view_server_error(req, false);
        else
            guest_res_set_status(req, 500);
    }
}

void guest__view_show_form(guest_req *req, const guest_views *v,
                           guest_page *page, int status)
{
    /* The CSRF token is made (and its cookie set) here. */
    const char *token;
    if (guest_csrf_token(req, &token) != GUEST_OK) {
        guest__view_server_error(req, false);
        return;
    }
    page->csrf_token = token;
    guest__view_show(req, v, page, status);
}

bool guest__view_user(guest_req *req, bool json, const guest_user **u)
{
    guest_status st = guest_req_user(req, u, NULL);
    if (st == GUEST_OK)
        return true;
    guest__view_failure(req, json, st);
    return false;
}

bool guest__view_csrf_ok(guest_req *req, bool json, const guest_form *form)
{
    guest_error err = {0};
    if (guest_csrf_check_form(req, form, &err) == GUEST_OK)
        return true;
    guest__view_refuse(req, json, 403,
                       "Forbidden (CSRF verification failed. Request "
                       "aborted.)",
                       err.message);
    return false;
}

void guest__view_json_form(guest_req *req, const guest_user *u, json_t *extra)
{
    const char *token = NULL;
    if (guest_csrf_token(req, &token) != GUEST_OK) {
        json_decref(extra);
        guest__view_server_error(req, true);
        return;
    }
    json_t *obj = json_pack("{s:o, s:s}", "user", guest__view_json_user(u),
                            "csrf_token", token);
    if (obj && extra)
        json_object_update(obj, extra);
    json_decref(extra);
    guest__view_json(req, 200, obj);
}

/* The form again with its errors: as JSON with @p json_status, or the
 * page with @p html_status. */
static void errors_answer(guest_req *req, const guest_views *v, bool json,
                          guest_page *page, int json_status, int html_status)
{
    if (json)
        guest__view_json(req, json_status,
                         json_pack("{s:o}", "errors",
                                   guest__view_json_errors(page->errors)));
    else
        guest__view_show_form(req, v, page, html_status);
}

void guest__view_too_many(guest_req *req, const guest_views *v, bool json,
                          guest_page *page)
{
    char secs[32];
    long long after = (long long)guest_req_retry_after(req);
    snprintf(secs, sizeof secs, "%lld", after > 0 ? after : 1);
    if (!guest__view_header(req, "Retry-After", secs))
        return;
    errors_answer(req, v, json, page, 429, 429);
}

void guest__view_form_errors(guest_req *req, const guest_views *v, bool json,
                             guest_page *page)
{
    errors_answer(req, v, json, page, 400, 200);
}

void guest__view_refused(guest_req *req, const guest_views *v, bool json,
                         guest_page *page, guest_status st)
{
    switch (st) {
    case GUEST_ERR_RATE_LIMITED:
        guest__view_too_many(req, v, json, page);
        break;
    case GUEST_ERR_VALIDATION:
    case GUEST_ERR_USERNAME_TAKEN:
        guest__view_form_errors(req, v, json, page);
        break;
    default:
        /* Not the visitor's doing (an outage, a full hashing queue): no
         * form errors to show. */
        guest__view_failure(req, json, st);
        break;
    }
}

void guest__view_send_away(guest_req *req, bool json, const guest_user *u,
                           const char *url, const char *why)
{
    if (!json) {
        guest__view_redirect(req, url);
        return;
    }
    guest_form_errors e = {0};
    guest_form_errors_add(&e, "__all__", why);
    guest__view_json(req, 403,
                     json_pack("{s:o, s:s, s:o}", "errors",
                               guest__view_json_errors(&e), "redirect", url,
                               "user", guest__view_json_user(u)));
}

void guest__view_refuse_unregistered(guest_req *req, bool json,
                                     const guest_user *u, const char *to_guest,
                                     const char *to_anonymous)
{
    const guest_config *c = &req->ctx->cfg;
    char *url = guest__redirect_with_next(u ? c->convert_url : c->login_url,
                                          c->redirect_field_name,
                                          guest_req_target(req));
    if (!url) {
        guest__view_server_error(req, json);
        return;
    }
    guest__view_send_away(req, json, u, url, u ? to_guest : to_anonymous);
    free(url);
}

void guest__view_refuse_now_unregistered(guest_req *req, bool json,
                                         const char *to_guest,
                                         const char *to_anonymous)
{
    const guest_user *u;
    guest_status st = guest_req_user(req, &u, NULL);
    if (st != GUEST_OK)
        guest__view_failure(req, json, st);
    else
        guest__view_refuse_unregistered(req, json, u, to_guest, to_anonymous);
}

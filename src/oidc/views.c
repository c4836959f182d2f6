/* The login and callback views: the two halves of one sign-in. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oidc/oidc.h"

#define TOKEN_CHARS 64 /* base64url of 32 random bytes, and more */

static bool is_method(const guest_req *req, const char *m)
{
    return !strcmp(guest_req_method(req), m);
}

static bool is_get(const guest_req *req)
{
    return is_method(req, "GET") || is_method(req, "HEAD");
}

static void not_allowed(guest_req *req, bool json, const char *allow)
{
    guest__oidc_page(req, json, 405, "Method Not Allowed", NULL);
    guest__oidc_header(req, "Allow", allow);
}

/* The provider a path PREFIX/NAME/@p action/ names, or NULL. */
static guest__oidc_provider *route(const guest_oidc *o, const guest_req *req,
                                   const char *action)
{
    const char *path = guest_req_path(req);
    size_t plen = strlen(o->prefix);
    if (!path || strncmp(path, o->prefix, plen) != 0)
        return NULL;
    const char *name = path + plen, *slash = strchr(name, '/');
    if (!slash)
        return NULL;
    size_t alen = strlen(action);
    if (strncmp(slash + 1, action, alen) != 0 ||
        strcmp(slash + 1 + alen, "/") != 0)
        return NULL;
    return guest__oidc_find(o, name, (size_t)(slash - name));
}

static void unknown(guest_req *req, bool json)
{
    guest__oidc_page(req, json, 404, "Not Found",
                     "There is no such way to sign in here.");
}

void guest__oidc_write_form(guest_req *req, const char *action,
                            const char *token, const char *next,
                            const char *name)
{
    const guest_config *c = guest_ctx_config(guest_req_ctx(req));
    guest_res_printf(req, "<form method=\"post\" action=\"");
    guest_res_write_html(req, action);
    guest_res_printf(req, "\"><input type=\"hidden\" name=\"%s\" value=\"",
                     GUEST_CSRF_FIELD);
    guest_res_write_html(req, token);
    guest_res_printf(req, "\">");
    if (next && *next) {
        guest_res_printf(req, "<input type=\"hidden\" name=\"");
        guest_res_write_html(req, c->redirect_field_name);
        guest_res_printf(req, "\" value=\"");
        guest_res_write_html(req, next);
        guest_res_printf(req, "\">");
    }
    guest_res_printf(req, "<button type=\"submit\">Continue with ");
    guest_res_write_html(req, name);
    guest_res_printf(req, "</button></form>\n");
}

static void show_login(guest_req *req, bool json, guest__oidc_provider *p)
{
    char *next = NULL;
    const char *token = NULL;
    guest_status st = guest_req_safe_next(req, NULL, &next);
    if (st == GUEST_ERR_VALIDATION) {
        guest__oidc_page(req, json, 400, "Bad Request",
                         "A field of the query string was sent twice.");
        return;
    }
    if (st != GUEST_OK || guest_csrf_token(req, &token) != GUEST_OK) {
        free(next);
        guest__oidc_page(req, json, 500, "Internal Server Error", NULL);
        return;
    }
    if (json) {
        guest__oidc_send_json(
            req, 200,
            json_pack("{s:s, s:s}", "provider", p->name, "csrf_token", token));
    } else if (guest__oidc_page_begin(req, 200, "Sign in")) {
        guest__oidc_write_form(req, guest_req_path(req), token, next, p->name);
        guest__oidc_page_end(req);
    }
    free(next);
}

static void fault_page(guest_oidc *o, guest_req *req, bool json,
                       const guest__oidc_provider *p,
                       const guest__oidc_why *why, const char *text)
{
    char msg[256];
    switch (why->fault) {
    case GUEST__OIDC_REFUSED:
        guest__oidc_log(o, GUEST_LOG_WARNING, p, why);
        guest__oidc_page(req, json, 400, "Sign-in failed",
                         text ? text
                              : "The sign-in could not be completed. Please "
                                "start again.");
        return;
    case GUEST__OIDC_UPSTREAM:
        guest__oidc_log(o, GUEST_LOG_WARNING, p, why);
        snprintf(msg, sizeof msg,
                 "%s did not answer as expected. Please try again later.",
                 p->name);
        guest__oidc_page(req, json, 502, "Sign-in failed", msg);
        return;
    case GUEST__OIDC_BUSY:
        guest__oidc_log(o, GUEST_LOG_WARNING, p, why);
        guest__oidc_page(req, json, 503, "Service Unavailable",
                         "Too many sign-ins at once. Please try again in a "
                         "moment.");
        guest__oidc_header(req, "Retry-After", "1");
        return;
    default:
        guest__oidc_log(o, GUEST_LOG_ERROR, p, why);
        guest__oidc_page(req, json, 500, "Internal Server Error", NULL);
        return;
    }
}

static void db_fault(guest_oidc *o, guest_req *req, bool json,
                     const guest__oidc_provider *p, const char *what,
                     const guest_error *err)
{
    guest__oidc_why why = {0};
    guest__oidc_fail(&why, GUEST__OIDC_BUSY, "database", "%s: %s", what,
                     err->message);
    guest__oidc_log(o, GUEST_LOG_ERROR, p, &why);
    guest__oidc_page(req, json, 503, "Service Unavailable",
                     "The site cannot sign you in right now. Please try "
                     "again in a moment.");
    guest__oidc_header(req, "Retry-After", "5");
}

static bool binding_ok(const char *b)
{
    size_t n = strlen(b);
    if (n < 43 || n > TOKEN_CHARS)
        return false;
    for (; *b; b++)
        if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                    "0123456789-_",
                    *b))
            return false;
    return true;
}

static void start_flow(guest_oidc *o, guest_req *req, bool json,
                       guest__oidc_provider *p)
{
    guest_form *form = guest__oidc_form(req, json);
    if (!form)
        return;
    guest_error err = {0};
    guest_status st;
    char *next = NULL, *payload = NULL, *url = NULL;
    if (guest_csrf_check_form(req, form, &err) != GUEST_OK) {
        guest__oidc_page(req, json, 403,
                         "Forbidden (CSRF verification failed. Request "
                         "aborted.)",
                         err.message);
        goto out;
    }
    st = guest_req_safe_next(req, form, &next);
    if (st != GUEST_OK) {
        guest__oidc_page(req, json, st == GUEST_ERR_VALIDATION ? 400 : 500,
                         "Bad Request", "A field was sent twice.");
        goto out;
    }
    /* Discovery may go out to the provider: under the bound, like every
     * provider call. */
    guest__oidc_why why = {0};
    if (!guest__oidc_slot_take(o)) {
        guest__oidc_fail(&why, GUEST__OIDC_BUSY, "busy",
                         "every provider call slot stayed taken");
        fault_page(o, req, json, p, &why, NULL);
        goto out;
    }
    guest__oidc_fault f = guest__oidc_discover(o, p, &why);
    guest__oidc_slot_give(o);
    if (f != GUEST__OIDC_OK) {
        fault_page(o, req, json, p, &why, NULL);
        goto out;
    }
    char state[TOKEN_CHARS], nonce[TOKEN_CHARS], verifier[TOKEN_CHARS],
        challenge[TOKEN_CHARS], binding[TOKEN_CHARS + 1];
    /* A browser keeps its binding secret across flows, so two sign-ins
     * started in two tabs both finish. */
    bool reuse =
        guest__oidc_cookie(req, GUEST__OIDC_COOKIE, binding, sizeof binding) &&
        binding_ok(binding);
    if (!guest__oidc_random(state, sizeof state, 32) ||
        !guest__oidc_random(nonce, sizeof nonce, 32) ||
        !guest__oidc_random(verifier, sizeof verifier, 32) ||
        !guest__oidc_challenge(verifier, challenge, sizeof challenge) ||
        (!reuse && !guest__oidc_random(binding, sizeof binding, 32))) {
        guest__oidc_fail(&why, GUEST__OIDC_INTERNAL, "random",
                         "no random bytes");
        fault_page(o, req, json, p, &why, NULL);
        goto out;
    }
    guest__oidc_flow flow = {.provider = p->name,
                             .nonce = nonce,
                             .verifier = verifier,
                             .next = next};
    payload = guest__oidc_flow_encode(&flow);
    url =
        payload ? guest__oidc_authorize_url(p, state, nonce, challenge) : NULL;
    if (!url) {
        guest__oidc_page(req, json, 500, "Internal Server Error", NULL);
        goto out;
    }
    st = guest_flow_put(guest_req_ctx(req), state, binding, payload,
                        GUEST__OIDC_FLOW_TTL, &err);
    if (st != GUEST_OK) {
        db_fault(o, req, json, p, "guest_flow_put", &err);
        goto out;
    }
    const guest_config *c = guest_ctx_config(guest_req_ctx(req));
    char cookie[512];
    snprintf(cookie, sizeof cookie,
             "%s=%s; Path=%s; Max-Age=%d; HttpOnly; SameSite=Lax%s",
             GUEST__OIDC_COOKIE, binding, o->prefix, GUEST__OIDC_FLOW_TTL,
             c->cookie_secure || guest_req_is_secure(req) ? "; Secure" : "");
    if (guest_res_add_header(req, "Set-Cookie", cookie) != GUEST_OK ||
        !guest__oidc_no_cache(req)) {
        guest__oidc_page(req, json, 500, "Internal Server Error", NULL);
        goto out;
    }
    if (json)
        guest__oidc_send_json(req, 200, json_pack("{s:s}", "location", url));
    else if (guest_res_redirect(req, url) != GUEST_OK)
        guest__oidc_page(req, json, 500, "Internal Server Error", NULL);
out:
    free(url);
    free(payload);
    free(next);
    guest_form_free(form);
}

void guest_oidc_login_view(guest_req *req, void *userdata)
{
    guest_oidc *o = userdata;
    if (!guest__oidc_view_enter(req))
        return;
    bool json = guest_req_wants_json(req);
    guest__oidc_provider *p = o ? route(o, req, "login") : NULL;
    if (!p)
        unknown(req, json);
    else if (is_get(req))
        show_login(req, json, p);
    else if (is_method(req, "POST"))
        start_flow(o, req, json, p);
    else
        not_allowed(req, json, "GET, HEAD, POST");
}

static const char *outcome_name(guest_identity_outcome oc)
{
    switch (oc) {
    case GUEST_IDENTITY_CONVERTED:
        return "converted";
    case GUEST_IDENTITY_SIGNED_UP:
        return "signed_up";
    case GUEST_IDENTITY_LINKED:
        return "linked";
    default:
        return "logged_in";
    }
}

static const char *claim(const json_t *claims, const char *key)
{
    const char *s = json_string_value(json_object_get(claims, key));
    return s && *s ? s : NULL;
}

/* The verified identity handed to the library, and the answer. */
static void sign_in(guest_oidc *o, guest_req *req, bool json,
                    guest__oidc_provider *p, const json_t *claims,
                    const char *next)
{
    char *claims_json = json_dumps(claims, JSON_COMPACT | JSON_SORT_KEYS);
    guest_identity id = {
        .issuer = p->issuer,
        .subject = claim(claims, "sub"),
        .email = claim(claims, "email"),
        /* Only a JSON true counts: a provider's "true" string is no
         * promise. */
        .email_verified =
            json_is_true(json_object_get(claims, "email_verified")),
        .preferred_username = claim(claims, "preferred_username"),
        .name = claim(claims, "name"),
        .claims_json = claims_json,
    };
    guest_identity_outcome oc = GUEST_IDENTITY_LOGGED_IN;
    guest_error err = {0};
    guest_status st = guest_identity_sign_in(req, &id, &oc, &err);
    free(claims_json);
    guest__oidc_why why = {0};
    char msg[256];
    switch (st) {
    case GUEST_OK: {
        const guest_config *c = guest_ctx_config(guest_req_ctx(req));
        if (json) {
            const guest_user *u = NULL;
            if (guest_req_user(req, &u, NULL) != GUEST_OK)
                u = NULL;
            guest__oidc_send_json(req, 200,
                                  json_pack("{s:{s:I, s:s, s:b}, s:s}", "user",
                                            "id", (json_int_t)guest_user_id(u),
                                            "username", guest_user_name(u),
                                            "is_guest", guest_is_guest_user(u),
                                            "outcome", outcome_name(oc)));
            return;
        }
        char *loc = guest__oidc_location(next ? next : c->login_redirect_url);
        if (!loc || guest_res_redirect(req, loc) != GUEST_OK)
            guest__oidc_page(req, json, 500, "Internal Server Error", NULL);
        free(loc);
        return;
    }
    case GUEST_ERR_IDENTITY_TAKEN:
        guest__oidc_fail(&why, GUEST__OIDC_REFUSED, "taken",
                         "identity %.100s belongs to another user", id.subject);
        guest__oidc_log(o, GUEST_LOG_INFO, p, &why);
        snprintf(msg, sizeof msg,
                 "That account is linked to another user. Log out to use "
                 "it, or continue with another %s account.",
                 p->name);
        guest__oidc_page(req, json, 409,
                         "That account is linked to another user", msg);
        return;
    case GUEST_ERR_SIGNUP_CLOSED:
        guest__oidc_fail(&why, GUEST__OIDC_REFUSED, "signup-closed",
                         "unknown identity, sign-up through providers off");
        guest__oidc_log(o, GUEST_LOG_INFO, p, &why);
        guest__oidc_page(req, json, 403, "Sign-up is closed",
                         "New accounts cannot be made this way. Log in "
                         "first, then link this account.");
        return;
    case GUEST_ERR_AUTH:
        guest__oidc_fail(&why, GUEST__OIDC_REFUSED, "inactive",
                         "the identity's user is inactive");
        guest__oidc_log(o, GUEST_LOG_INFO, p, &why);
        guest__oidc_page(req, json, 403, "Account disabled",
                         "The account linked to this identity is disabled.");
        return;
    case GUEST_ERR_DB:
    case GUEST_ERR_DB_UNAVAILABLE:
    case GUEST_ERR_BUSY:
    case GUEST_ERR_RATE_LIMITED:
        db_fault(o, req, json, p, "guest_identity_sign_in", &err);
        return;
    default:
        guest__oidc_fail(&why, GUEST__OIDC_INTERNAL, "sign-in",
                         "guest_identity_sign_in: %s: %s",
                         guest_status_name(st), err.message);
        guest__oidc_log(o, GUEST_LOG_ERROR, p, &why);
        guest__oidc_page(req, json, 500, "Internal Server Error", NULL);
        return;
    }
}

/* The query string as a form; NULL (after a 400) when it cannot be read. */
static guest_form *read_query(guest_req *req, bool json)
{
    const char *q = strchr(guest_req_target(req), '?');
    q = q ? q + 1 : "";
    guest_form *form = NULL;
    guest_error err = {0};
    if (guest_form_parse(q, strlen(q), &form, &err) != GUEST_OK) {
        guest__oidc_page(req, json, 400, "Bad Request", err.message);
        return NULL;
    }
    return form;
}

static void finish_flow(guest_oidc *o, guest_req *req, bool json,
                        guest__oidc_provider *p)
{
    guest_form *q = read_query(req, json);
    if (!q)
        return;
    guest__oidc_why why = {0};
    guest__oidc_flow flow = {0};
    char *payload = NULL, *id_token = NULL;
    json_t *claims = NULL;
    bool slot = false;
    const char *state = guest_form_get(q, "state");
    const char *code = guest_form_get(q, "code");
    const char *error = guest_form_get(q, "error");
    const char *iss = guest_form_get(q, "iss");
    char binding[TOKEN_CHARS + 1];
    if (!state || !*state) {
        guest__oidc_fail(&why, GUEST__OIDC_REFUSED, "no-state",
                         "callback without state");
        fault_page(o, req, json, p, &why,
                   "This page only finishes a sign-in that was started "
                   "here. Please start again.");
        goto out;
    }
    if (!guest__oidc_cookie(req, GUEST__OIDC_COOKIE, binding, sizeof binding)) {
        guest__oidc_fail(&why, GUEST__OIDC_REFUSED, "no-binding",
                         "callback without the binding cookie");
        fault_page(o, req, json, p, &why,
                   "This sign-in was started in another browser, or the "
                   "browser did not keep its cookie. Please start again.");
        goto out;
    }
    /* The bound is taken before the flow: a visitor told to come back in
     * a moment still has the flow to come back with. */
    if (!(slot = guest__oidc_slot_take(o))) {
        guest__oidc_fail(&why, GUEST__OIDC_BUSY, "busy",
                         "every provider call slot stayed taken");
        fault_page(o, req, json, p, &why, NULL);
        goto out;
    }
    guest_error err = {0};
    guest_status st =
        guest_flow_take(guest_req_ctx(req), state, binding, &payload, &err);
    if (st == GUEST_ERR_NOT_FOUND || st == GUEST_ERR_INVALID) {
        guest__oidc_fail(&why, GUEST__OIDC_REFUSED, "no-flow",
                         "no live flow for that state and browser");
        fault_page(o, req, json, p, &why,
                   "This sign-in has expired, was already used, or was "
                   "started in another browser. Please start again.");
        goto out;
    }
    if (st != GUEST_OK) {
        db_fault(o, req, json, p, "guest_flow_take", &err);
        goto out;
    }
    if (!guest__oidc_flow_decode(payload, &flow) ||
        strcmp(flow.provider, p->name) != 0) {
        guest__oidc_fail(&why, GUEST__OIDC_REFUSED, "no-flow",
                         "the flow was started for another provider");
        fault_page(o, req, json, p, &why,
                   "This sign-in was started with another provider. Please "
                   "start again.");
        goto out;
    }
    if (error) {
        char msg[200];
        guest__oidc_fail(&why, GUEST__OIDC_REFUSED, "provider-error",
                         "the provider answered error=%.64s", error);
        snprintf(msg, sizeof msg,
                 "%s did not sign you in (%.64s). Nothing has changed here.",
                 p->name, error);
        fault_page(o, req, json, p, &why, msg);
        goto out;
    }
    if (!code || !*code) {
        guest__oidc_fail(&why, GUEST__OIDC_REFUSED, "no-code",
                         "callback without code");
        fault_page(o, req, json, p, &why, NULL);
        goto out;
    }
    if (guest__oidc_discover(o, p, &why) != GUEST__OIDC_OK) {
        fault_page(o, req, json, p, &why, NULL);
        goto out;
    }
    /* RFC 9207: an authorization response from another issuer (a mix-up
     * attack) is refused; its absence only when the provider does not say
     * it sends one. */
    if (!iss && p->iss_required) {
        guest__oidc_fail(&why, GUEST__OIDC_REFUSED, "iss-param",
                         "authorization response without the iss its "
                         "discovery document promises");
        fault_page(o, req, json, p, &why, NULL);
        goto out;
    }
    if (iss && strcmp(iss, p->issuer) != 0) {
        guest__oidc_fail(&why, GUEST__OIDC_REFUSED, "iss-param",
                         "authorization response iss \"%.80s\" is not %s", iss,
                         p->issuer);
        fault_page(o, req, json, p, &why, NULL);
        goto out;
    }
    if (guest__oidc_exchange(o, p, code, flow.verifier, &id_token, &why) !=
            GUEST__OIDC_OK ||
        guest__oidc_verify(o, p, id_token, flow.nonce, &claims, &why) !=
            GUEST__OIDC_OK) {
        fault_page(o, req, json, p, &why, NULL);
        goto out;
    }
    guest__oidc_slot_give(o);
    slot = false;
    sign_in(o, req, json, p, claims, flow.next);
out:
    if (slot)
        guest__oidc_slot_give(o);
    json_decref(claims);
    free(id_token);
    guest_free(payload);
    guest__oidc_flow_clear(&flow);
    guest_form_free(q);
}

void guest_oidc_callback_view(guest_req *req, void *userdata)
{
    guest_oidc *o = userdata;
    if (!guest__oidc_view_enter(req))
        return;
    bool json = guest_req_wants_json(req);
    guest__oidc_provider *p = o ? route(o, req, "callback") : NULL;
    /* GET only: a HEAD from a link checker or prefetcher must not use up
     * the flow that the browser's GET comes to finish. */
    if (!p)
        unknown(req, json);
    else if (is_method(req, "GET"))
        finish_flow(o, req, json, p);
    else
        not_allowed(req, json, "GET");
}

void guest_oidc_view(guest_req *req, void *userdata)
{
    guest_oidc *o = userdata;
    if (!guest__oidc_view_enter(req))
        return;
    if (o && route(o, req, "login"))
        guest_oidc_login_view(req, userdata);
    else if (o && route(o, req, "callback"))
        guest_oidc_callback_view(req, userdata);
    else
        unknown(req, guest_req_wants_json(req));
}

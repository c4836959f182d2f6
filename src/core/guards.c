/* GUEST_ALLOW, GUEST_REQUIRED and REGULAR_REQUIRED as plain functions. */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

/* Answers a failure that happened before the handler could run. */
static guest_status refuse(guest_req *req, guest_status st)
{
    if (st == GUEST_ERR_DB_UNAVAILABLE || st == GUEST_ERR_DB)
        guest__respond_unavailable(req);
    else
        guest_res_send(req, 500, "text/plain; charset=utf-8",
                       "Internal Server Error\n");
    return st;
}

/* A name generator that fails or keeps clashing is the site's problem,
 * not the visitor's: the page is still served, anonymously, and the
 * operator hears of it (once a minute, not once per visitor). */
static void log_name_failure(guest_ctx *ctx, guest_status st,
                             const guest_error *err)
{
    _Atomic int64_t *last = st == GUEST_ERR_NAME_EXHAUSTED
                                ? &ctx->core->name_exhausted_logged_ms
                                : &ctx->core->name_failed_logged_ms;
    guest__log_every(ctx, last, 60000, GUEST_LOG_ERROR,
                     "no guest created, visitors stay anonymous: %s (%s)",
                     err->message[0] ? err->message : guest_strerror(st),
                     guest_status_name(st));
}

/* guest_is_blocked_agent, counted: guest_allow's crawlers stay anonymous. */
static bool blocked_crawler(guest_req *req)
{
    bool blocked =
        guest_is_blocked_agent(req->ctx, guest_req_header(req, "User-Agent"));
    if (blocked)
        guest__count(req->ctx, GUEST__C_CRAWLERS_BLOCKED);
    return blocked;
}

/* On an event loop (guest_req_try_on_loop), a session the resolver did
 * not look up would be looked up here, blocking: the request is deferred
 * to a worker instead. */
static bool lookup_would_block(guest_req *req)
{
    return !req->user_resolved && req->resolve_failed == GUEST_OK &&
           guest_req_defer(req);
}

/* What every guard does first: refuse NULL arguments; on an event loop,
 * defer a request whose session is not looked up yet; find the user, or
 * answer the lookup's failure. True when the guard goes on with *user;
 * false when it must return *st now. */
static bool begin(guest_req *req, guest_handler_fn handler,
                  const guest_user **user, guest_status *st)
{
    *st = GUEST_OK;
    if (!req || !handler)
        *st = GUEST_ERR_INVALID;
    if (*st != GUEST_OK || lookup_would_block(req))
        return false;
    *st = guest_req_user(req, user, NULL);
    if (*st == GUEST_OK)
        return true;
    *st = refuse(req, *st);
    return false;
}

/* Only a page view or a form post makes a guest: HEAD (uptime monitors,
 * link checkers), OPTIONS and the like would fill the table with guests
 * nobody ever sees. The handler still runs, for an anonymous visitor. */
static bool creates_guests(const guest_req *req)
{
    const char *m = guest_req_method(req);
    return m && (!strcmp(m, "GET") || !strcmp(m, "POST"));
}

guest_status guest_allow(guest_req *req, guest_handler_fn handler,
                         void *userdata)
{
    const guest_user *user;
    guest_status st;
    if (!begin(req, handler, &user, &st))
        return st;
    const guest_config *c = &req->ctx->cfg;
    if (!user && c->enabled && creates_guests(req) && !blocked_crawler(req)) {
        guest_error err = {0};
        bool name_failed = false;
        /* Creating a guest is a statement: on an event loop it goes out
         * through the loop's pipeline while the request parks, or the
         * request goes to a worker. */
        guest__loop_step step =
            req->on_loop ? guest__loop_create(req, &st, &name_failed, &err)
                         : GUEST__LOOP_DEFER;
        if (step == GUEST__LOOP_PARKED ||
            (step == GUEST__LOOP_DEFER && guest_req_defer(req)))
            return GUEST_OK;
        if (step == GUEST__LOOP_DEFER)
            st = guest__create_guest(req, &user, &name_failed, &err);
        if (st == GUEST_ERR_RATE_LIMITED &&
            c->guest_rate_limit_action == GUEST_RATE_ACTION_429)
            return guest__respond_rate_limited(req);
        /* Past a limit, or without a usable name, the visitor simply stays
         * anonymous. */
        if (st != GUEST_OK && !name_failed && st != GUEST_ERR_RATE_LIMITED &&
            st != GUEST_ERR_BUSY)
            return refuse(req, st);
        if (name_failed)
            log_name_failure(req->ctx, st, &err);
    }
    handler(req, userdata);
    return GUEST_OK;
}

guest_status guest_require_guest(guest_req *req, guest_handler_fn handler,
                                 void *userdata, const char *anon_url,
                                 const char *user_url)
{
    const guest_user *user;
    guest_status st;
    if (!begin(req, handler, &user, &st))
        return st;
    const guest_config *c = &req->ctx->cfg;
    if (!user)
        return guest_res_redirect(req,
                                  anon_url ? anon_url : c->required_anon_url);
    if (!user->is_guest)
        return guest_res_redirect(req,
                                  user_url ? user_url : c->required_user_url);
    handler(req, userdata);
    return GUEST_OK;
}

char *guest__redirect_with_next(const char *base, const char *field,
                                const char *target)
{
    /* Django's redirect_to_login: the target goes in as quote(safe="/"),
     * appended to whatever query string the base URL already has. */
    char *qf = guest__url_quote(field), *qt = guest__url_quote(target);
    char *url = NULL;
    if (qf && qt) {
        size_t blen = strcspn(base, "#");
        const char *q = memchr(base, '?', blen);
        const char *sep =
            !q                                                         ? "?"
            : (q[1] && base[blen - 1] != '&' && base[blen - 1] != '?') ? "&"
                                                                       : "";
        url = guest__asprintf("%.*s%s%s=%s", (int)blen, base, sep, qf, qt);
    }
    free(qf);
    free(qt);
    return url;
}

guest_status guest_require_regular(guest_req *req, guest_handler_fn handler,
                                   void *userdata, const char *login_url,
                                   const char *convert_url,
                                   const char *field_name)
{
    const guest_user *user;
    guest_status st;
    if (!begin(req, handler, &user, &st))
        return st;
    if (user && !user->is_guest) {
        handler(req, userdata);
        return GUEST_OK;
    }
    const guest_config *c = &req->ctx->cfg;
    const char *base = user ? (convert_url ? convert_url : c->convert_url)
                            : (login_url ? login_url : c->login_url);
    char *url = guest__redirect_with_next(
        base, field_name ? field_name : c->redirect_field_name,
        guest_req_target(req));
    if (!url)
        return refuse(req, GUEST_ERR_NOMEM);
    st = guest_res_redirect(req, url);
    free(url);
    return st;
}

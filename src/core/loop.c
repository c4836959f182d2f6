/* Requests on an event loop's thread: the session lookup sent through the
 * store's pipeline (store/pipe.c) and resumed by its answer; handlers
 * tried on the loop, deferred to a worker when they would block; and a new
 * guest made through the same pipeline, its request parked meanwhile. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "core/core.h"

struct guest_resolver {
    guest_ctx *ctx;
    guest__pipe *pipe;
    unsigned watched_gen; /* the connection guest_resolver_watch() gave */
    bool parking;         /* guest_resolver_allow_parking() */
};

guest_status guest_resolver_new(guest_ctx *ctx, guest_resolver **out)
{
    if (!ctx || !out)
        return GUEST_ERR_INVALID;
    *out = NULL;
    guest_resolver *r = calloc(1, sizeof *r);
    if (!r || guest__pipe_new(ctx, &r->pipe) != GUEST_OK) {
        free(r);
        return GUEST_ERR_NOMEM;
    }
    r->ctx = ctx;
    *out = r;
    return GUEST_OK;
}

void guest_resolver_free(guest_resolver *r)
{
    if (!r)
        return;
    guest__pipe_free(r->pipe);
    free(r);
}

int guest_resolver_watch(guest_resolver *r, unsigned *events, int *timeout_ms)
{
    unsigned ev = 0;
    int64_t t = -1;
    int fd = -1;
    if (r) {
        unsigned gen;
        ev = guest__pipe_events(r->pipe, &t);
        fd = ev ? guest__pipe_fd(r->pipe, &gen) : -1;
        if (fd >= 0 && gen != r->watched_gen) {
            ev |= GUEST_IO_NEW;
            r->watched_gen = gen;
        }
    }
    if (events)
        *events = fd >= 0 ? ev : 0;
    if (timeout_ms)
        *timeout_ms = t < 0 ? -1 : t > 86400000 ? 86400000 : (int)t;
    return fd;
}

void guest_resolver_io(guest_resolver *r)
{
    if (r)
        guest__pipe_io(r->pipe);
}

void guest_resolver_allow_parking(guest_resolver *r, bool allow)
{
    if (r)
        r->parking = allow;
}

/* The pipeline's answer for one request (loop thread). A lookup that only
 * lost its connection is left to the guard, which asks again the blocking
 * way; one the database did not answer in time, or refused, is the guard's
 * 503 without a second wait. */
static void on_answer(void *arg, guest_status st, const guest__pipe_answer *a)
{
    guest_req *req = arg;
    req->resolving = false;
    if (st == GUEST_OK)
        guest__req_lookup_done(req, req->resolve_hash,
                               a->found ? &a->user : NULL, a->ms_left,
                               &req->resolve_ticket);
    else if (st != GUEST_ERR_BUSY)
        req->resolve_failed = st;
    OPENSSL_cleanse(req->resolve_hash, sizeof req->resolve_hash);
    req->resolve_done(req, req->resolve_arg);
}

bool guest_req_resolve(guest_req *req, guest_resolver *r,
                       guest_resolved_fn done, void *arg)
{
    if (!req || !r || !done || req->resolving || req->parked)
        return false;
    if (r->parking) {
        /* A guard may park the request on @p r later (a new guest), even
         * when no lookup goes out now: it resumes through @p done. */
        req->resolver = r;
        req->resolve_done = done;
        req->resolve_arg = arg;
    }
    if (req->user_resolved || req->resolve_failed != GUEST_OK)
        return false;
    unsigned char *hash = req->resolve_hash;
    if (guest__req_lookup_start(req, hash) != GUEST__LOOKUP_NEEDED) {
        /* known already: no cookie, not one of ours, or cached */
        OPENSSL_cleanse(hash, GUEST__SHA256_BYTES);
        return false;
    }
    req->resolve_ticket = guest__session_cache_ticket(req->ctx, hash);
    req->resolve_done = done;
    req->resolve_arg = arg;
    req->resolving = true;
    if (!guest__pipe_resolve(r->pipe, hash, on_answer, req)) {
        req->resolving = false;
        OPENSSL_cleanse(hash, GUEST__SHA256_BYTES);
        return false;
    }
    return true;
}

bool guest_req_try_on_loop(guest_req *req, guest_handler_fn handler,
                           void *userdata)
{
    if (!req || !handler)
        return false;
    /* A session the resolver could not look up would be looked up by the
     * first guard or guest_req_user(), blocking: a worker does that. */
    if (!req->user_resolved && req->resolve_failed == GUEST_OK)
        return false;
    req->on_loop = true;
    req->deferred = false;
    handler(req, userdata);
    req->on_loop = false;
    return !req->deferred && !req->parked;
}

bool guest_req_defer(guest_req *req)
{
    if (!req || !req->on_loop)
        return false;
    req->deferred = true;
    return true;
}

bool guest_req_deferred(const guest_req *req)
{
    return req && req->on_loop && (req->deferred || req->parked);
}

bool guest_req_parked(const guest_req *req)
{
    return req && req->parked;
}

/* Whether a new guest can be made without blocking: nothing of the
 * site's own runs (the hook, a name generator of its own may block), only
 * the statement. */
static bool creates_on_loop(const guest_config *c)
{
    return !c->on_guest_created && (c->name_generator == guest_name_uuid ||
                                    c->name_generator == guest_name_numbered ||
                                    c->name_generator == guest_name_friendly);
}

static void forget_token(guest_req *req)
{
    OPENSSL_cleanse(req->create_token, sizeof req->create_token);
    OPENSSL_cleanse(req->create_hash, sizeof req->create_hash);
}

/* The creation's answer (loop thread): acted on as the blocking creation
 * acts on it, then the request resumes and its guard runs again. A clash
 * leaves the token for the next name; a connection lost leaves the
 * request to a worker, which makes the guest the blocking way. */
static void on_created(void *arg, guest_status st, const guest__pipe_answer *a)
{
    guest_req *req = arg;
    req->parked = false;
    req->made = true;
    req->clashed = false;
    req->create_lost = st == GUEST_ERR_BUSY;
    req->create_st = st;
    if (st == GUEST_OK && a->outcome == GUEST__NAME_CLASH) {
        req->clashed = guest__guest_name_retry(req->ctx, &req->create_clashes,
                                               req->create_digits);
        if (!req->clashed)
            req->create_st = GUEST_ERR_NAME_EXHAUSTED;
    } else if (st == GUEST_OK) {
        const guest_user *user;
        if (a->outcome == GUEST__CREATED)
            req->user = a->user;
        req->create_st = guest__guest_made(req, a->outcome, a->retry_after,
                                           req->create_token, &user, NULL);
        /* made, but no cookie could be set: refused as the blocking way
         * refuses it, not served as a user the visitor cannot keep */
        if (req->create_st != GUEST_OK)
            req->has_user = false;
    }
    if (!req->clashed)
        forget_token(req);
    req->resolve_done(req, req->resolve_arg);
}

/* Sends the statement for the next name; the request parks until its
 * answer. */
static guest__loop_step send_create(guest_req *req, guest_status *st,
                                    bool *name_failed, guest_error *err)
{
    if (!req->create_token[0] &&
        guest__session_new(req->create_token, req->create_hash) != GUEST_OK)
        return GUEST__LOOP_DEFER;
    char name[GUEST_USERNAME_BUF];
    *st = guest__guest_name(req, name, &req->create_digits, name_failed, err);
    if (*st != GUEST_OK) {
        forget_token(req);
        return GUEST__LOOP_DONE;
    }
    if (!guest__pipe_create(req->resolver->pipe, name, req->create_hash,
                            guest__req_keys(req), on_created, req)) {
        forget_token(req);
        return GUEST__LOOP_DEFER;
    }
    req->parked = true;
    return GUEST__LOOP_PARKED;
}

guest__loop_step guest__loop_create(guest_req *req, guest_status *st,
                                    bool *name_failed, guest_error *err)
{
    if (!req->resolver || !creates_on_loop(&req->ctx->cfg))
        return GUEST__LOOP_DEFER;
    if (!req->made || req->clashed)
        return send_create(req, st, name_failed, err);
    /* The guard again, after the answer: a guest made has resolved the
     * request already, so only what did not make one comes here. */
    req->made = false;
    if (req->create_lost)
        return GUEST__LOOP_DEFER; /* the connection went: not an answer */
    *st = req->create_st == GUEST_ERR_NAME_EXHAUSTED
              ? guest__guest_name_exhausted(req->ctx, name_failed, err)
              : guest__fail(err, req->create_st, "%s",
                            guest_strerror(req->create_st));
    return GUEST__LOOP_DONE;
}

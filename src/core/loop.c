/* Requests on an event loop's thread: the session lookup sent through the
 * store's pipeline (store/pipe.c) and resumed by its answer, and handlers
 * tried on the loop, deferred to a worker when they would block. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "core/core.h"

struct guest_resolver {
    guest_ctx *ctx;
    guest__pipe *pipe;
    unsigned watched_gen; /* the connection guest_resolver_watch() gave */
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

/* The pipeline's answer for one request (loop thread). A lookup that only
 * lost its connection is left to the guard, which asks again the blocking
 * way; one the database did not answer in time, or refused, is the guard's
 * 503 without a second wait. */
static void on_answer(void *arg, guest_status st, const guest_user *user,
                      int64_t ms_left)
{
    guest_req *req = arg;
    req->resolving = false;
    if (st == GUEST_OK)
        guest__req_lookup_done(req, req->resolve_hash, user, ms_left,
                               &req->resolve_ticket);
    else if (st != GUEST_ERR_BUSY)
        req->resolve_failed = st;
    OPENSSL_cleanse(req->resolve_hash, sizeof req->resolve_hash);
    req->resolve_done(req, req->resolve_arg);
}

bool guest_req_resolve(guest_req *req, guest_resolver *r,
                       guest_resolved_fn done, void *arg)
{
    if (!req || !r || !done || req->user_resolved || req->resolving ||
        req->resolve_failed != GUEST_OK)
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
    return !req->deferred;
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
    return req && req->on_loop && req->deferred;
}

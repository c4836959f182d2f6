/* Who the request's user is: the session cookie resolved to a user once
 * per request, and making a new guest with its session. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "core/core.h"

bool guest__req_session_hash(guest_req *req,
                             unsigned char hash[GUEST__SHA256_BYTES])
{
    /* Anything but a well-formed token is simply "no session": no database
     * work for garbage, no error page for a stale cookie. */
    char token[GUEST__SIGNED_TOKEN_CHARS + 2];
    bool ok =
        guest__cookie_value(guest_req_header(req, "Cookie"),
                            req->ctx->cfg.cookie_name, token, sizeof token) &&
        guest__session_cookie_hash(req->ctx, token, hash);
    OPENSSL_cleanse(token, sizeof token);
    return ok;
}

guest__lookup guest__req_lookup_start(guest_req *req,
                                      unsigned char hash[GUEST__SHA256_BYTES])
{
    guest__vary_cookie(req);
    if (!guest__req_session_hash(req, hash)) {
        req->user_resolved = true;
        req->has_user = false;
        return GUEST__LOOKUP_NONE;
    }
    if (!guest__session_cache_get(req->ctx, hash, &req->user))
        return GUEST__LOOKUP_NEEDED;
    /* a hit is a resolution too, one that cost no round trip */
    guest__metric_cache_hit(req->ctx);
    guest__count(req->ctx, GUEST__C_SESSIONS_RESOLVED);
    req->user_resolved = req->has_user = true;
    return GUEST__LOOKUP_CACHED;
}

void guest__req_lookup_done(guest_req *req, const unsigned char *hash,
                            const guest_user *user, int64_t ms_left,
                            const guest__cache_ticket *ticket)
{
    req->user_resolved = true;
    req->has_user = user != NULL;
    if (!user)
        return;
    if (user != &req->user)
        req->user = *user;
    guest__count(req->ctx, GUEST__C_SESSIONS_RESOLVED);
    guest__session_cache_put(req->ctx, hash, user, ms_left, ticket);
}

guest_status guest_req_user(guest_req *req, const guest_user **user,
                            guest_error *err)
{
    if (!req || !user)
        return guest__fail(err, GUEST_ERR_INVALID, "NULL argument");
    if (req->resolve_failed != GUEST_OK) {
        *user = NULL;
        return guest__fail(err, req->resolve_failed,
                           "the session lookup failed");
    }
    if (!req->user_resolved) {
        unsigned char hash[GUEST__SHA256_BYTES];
        if (guest__req_lookup_start(req, hash) == GUEST__LOOKUP_NEEDED) {
            guest__cache_ticket ticket =
                guest__session_cache_ticket(req->ctx, hash);
            bool found = false;
            int64_t ms_left = 0;
            guest_status st = guest__store_resolve(req->ctx, hash, &req->user,
                                                   &found, &ms_left, err);
            if (st != GUEST_OK) {
                *user = NULL;
                return st;
            }
            guest__req_lookup_done(req, hash, found ? &req->user : NULL,
                                   ms_left, &ticket);
        }
    }
    *user = req->has_user ? &req->user : NULL;
    return GUEST_OK;
}

static bool plausible_name(const char *name)
{
    size_t chars = 0;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        if ((*p & 0xC0) != 0x80)
            chars++;
    return chars > 0 && chars <= GUEST_USERNAME_MAX_CHARS &&
           !guest__has_ctl(name);
}

/* After name_max_attempts clashes in a row at @p digits: true when the
 * numbered space could grow (here or in another thread) and the loop
 * should go on at the context's new width. */
static bool widen_numbered(guest_ctx *ctx, unsigned digits)
{
    if (digits >= GUEST__NAME_MAX_DIGITS)
        return false;
    unsigned expected = digits;
    if (atomic_compare_exchange_strong(&ctx->core->name_digits, &expected,
                                       digits + 1))
        guest__log(ctx, GUEST_LOG_WARNING,
                   "guest_name_numbered: %u names in a row already existed "
                   "at %u digits; new guests get %u digits",
                   ctx->cfg.name_max_attempts, digits, digits + 1);
    /* Lost the race: another request widened already, which is as good. */
    return true;
}

guest_status guest__guest_name(guest_req *req, char name[GUEST_USERNAME_BUF],
                               unsigned *digits, bool *name_failed,
                               guest_error *err)
{
    const guest_config *c = &req->ctx->cfg;
    bool numbered = c->name_generator == guest_name_numbered;
    name[0] = '\0';
    *digits = numbered ? atomic_load(&req->ctx->core->name_digits) : 0;
    guest_status st = numbered ? guest__name_numbered_width(c, *digits, name,
                                                            GUEST_USERNAME_BUF)
                               : c->name_generator(c, name, GUEST_USERNAME_BUF,
                                                   c->name_generator_userdata);
    if (st != GUEST_OK) {
        *name_failed = true;
        return guest__fail(err, st, "the name generator failed: %s",
                           guest_strerror(st));
    }
    if (!plausible_name(name)) {
        *name_failed = true;
        return guest__fail(err, GUEST_ERR_VALIDATION,
                           "the name generator returned an empty, "
                           "too long or control-character name");
    }
    return GUEST_OK;
}

bool guest__guest_name_retry(guest_ctx *ctx, unsigned *clashes, unsigned digits)
{
    /* Bounded: a generator with too few free names ends in an error, where
     * the reference would loop forever. The built-in numbered one grows a
     * digit instead, at most up to GUEST__NAME_MAX_DIGITS. */
    if (++*clashes < ctx->cfg.name_max_attempts)
        return true;
    if (ctx->cfg.name_generator != guest_name_numbered ||
        !widen_numbered(ctx, digits))
        return false;
    *clashes = 0;
    return true;
}

guest_status guest__guest_name_exhausted(guest_ctx *ctx, bool *name_failed,
                                         guest_error *err)
{
    *name_failed = true;
    return guest__fail(err, GUEST_ERR_NAME_EXHAUSTED,
                       "%u generated names in a row already existed",
                       ctx->cfg.name_max_attempts);
}

guest_status guest__guest_made(guest_req *req, guest__created outcome,
                               int64_t wait, const char *token,
                               const guest_user **user, guest_error *err)
{
    guest_ctx *ctx = req->ctx;
    const guest_config *c = &ctx->cfg;
    if (outcome == GUEST__RATE_LIMITED) {
        guest__count(ctx, GUEST__C_RATE_LIMITED);
        req->retry_after = wait;
        guest__log_every(ctx, &ctx->core->rate_logged, 60000, GUEST_LOG_WARNING,
                         "guest_rate_limit: client %s created %u guests "
                         "within %u s; refusing more (logged once a "
                         "minute)",
                         guest__req_client_key(req), c->guest_rate_limit,
                         c->guest_rate_window);
        return guest__fail(err, GUEST_ERR_RATE_LIMITED,
                           "this client created too many guests; retry "
                           "after %lld s",
                           (long long)wait);
    }
    if (outcome == GUEST__AT_CAPACITY) {
        guest__log_every(ctx, &ctx->core->cap_logged, 60000, GUEST_LOG_WARNING,
                         "max_guests (%lld) reached, in all or for the "
                         "network of client %s: no new guests there "
                         "until cleanup or conversions make room (logged "
                         "once a minute)",
                         (long long)c->max_guests, guest__req_client_key(req));
        return guest__fail(err, GUEST_ERR_BUSY,
                           "max_guests (%lld) live guests already, in all "
                           "or for this client's network",
                           (long long)c->max_guests);
    }
    guest__count(ctx, GUEST__C_GUESTS_CREATED);
    req->user_resolved = true;
    req->has_user = true;
    *user = &req->user;
    guest__vary_cookie(req);
    guest_status st = guest__set_session_cookie(req, token);
    if (st != GUEST_OK)
        return guest__fail(err, st, "cannot set the session cookie");
    if (c->on_guest_created)
        c->on_guest_created(&req->user, req, c->on_guest_created_userdata);
    return GUEST_OK;
}

/* The creation loop of guest__create_guest(), which holds the token. */
static guest_status create_guest(guest_req *req, const char *token,
                                 const unsigned char *hash,
                                 const guest_user **user, bool *name_failed,
                                 guest_error *err)
{
    guest_ctx *ctx = req->ctx;
    unsigned clashes = 0;
    for (;;) {
        char name[GUEST_USERNAME_BUF];
        unsigned digits;
        guest_status st =
            guest__guest_name(req, name, &digits, name_failed, err);
        if (st != GUEST_OK)
            return st;
        guest__created outcome;
        int64_t wait = 0;
        st = guest__store_create_guest(ctx, name, hash, guest__req_keys(req),
                                       &req->user, &outcome, &wait, err);
        if (st != GUEST_OK)
            return st;
        if (outcome != GUEST__NAME_CLASH)
            return guest__guest_made(req, outcome, wait, token, user, err);
        if (!guest__guest_name_retry(ctx, &clashes, digits))
            return guest__guest_name_exhausted(ctx, name_failed, err);
    }
}

guest_status guest__create_guest(guest_req *req, const guest_user **user,
                                 bool *name_failed, guest_error *err)
{
    bool ignored;
    if (!name_failed)
        name_failed = &ignored;
    *name_failed = false;
    if (!req || !user)
        return guest__fail(err, GUEST_ERR_INVALID, "req and user required");
    char token[GUEST__TOKEN_CHARS + 1];
    unsigned char hash[GUEST__SHA256_BYTES];
    guest_status st = guest__session_new(token, hash);
    if (st != GUEST_OK)
        return guest__fail(err, st, "no random bytes for a session token");
    st = create_guest(req, token, hash, user, name_failed, err);
    /* The token is a bearer secret: it leaves only in the cookie. */
    OPENSSL_cleanse(token, sizeof token);
    return st;
}

guest_status guest_req_create_guest(guest_req *req, const guest_user **user,
                                    guest_error *err)
{
    return guest__create_guest(req, user, NULL, err);
}

int64_t guest_user_id(const guest_user *user)
{
    return user ? user->id : 0;
}

const char *guest_user_name(const guest_user *user)
{
    return user ? user->username : "";
}

bool guest_is_guest_user(const guest_user *user)
{
    return user && user->is_guest;
}

bool guest_is_regular_user(const guest_user *user)
{
    return user && !user->is_guest;
}

int64_t guest_user_created_at(const guest_user *user)
{
    return user && user->is_guest ? user->created_at : 0;
}

int64_t guest_user_expires_at(const guest_user *user)
{
    return user && user->is_guest ? user->expires_at : 0;
}

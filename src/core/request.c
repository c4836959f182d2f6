/* The per-request object: request accessors, user resolution, guest
 * creation. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "internal.h"

guest_status guest_req_new(guest_ctx *ctx, const guest_http_ops *ops,
                           void *conn, guest_req **out)
{
    if (!ctx || !ops || !out || !ops->header || !ops->method || !ops->target ||
        !ops->set_status || !ops->add_header || !ops->write)
        return GUEST_ERR_INVALID;
    *out = NULL;
    /* Refused here rather than in the guards, so that no handler, guarded
     * or not, ever sees a Host the site does not own. */
    const char *host = ops->header(conn, "Host");
    if (!guest__host_allowed(ctx, host)) {
        char shown[64] = "";
        size_t i = 0;
        for (; host && host[i] && i + 1 < sizeof shown; i++)
            shown[i] = host[i] > 0x20 && host[i] < 0x7f ? host[i] : '?';
        shown[i] = '\0';
        guest__log_every(ctx, &ctx->bad_host_logged, 60000, GUEST_LOG_WARNING,
                         "refused a request for Host \"%s\"%s, which is "
                         "not in allowed_hosts (further ones for a minute "
                         "are not logged)",
                         shown, host ? "" : " (none)");
        return GUEST_ERR_BAD_HOST;
    }
    guest_req *r = calloc(1, sizeof *r);
    if (!r)
        return GUEST_ERR_NOMEM;
    r->ctx = ctx;
    r->ops = ops;
    r->conn = conn;
    r->status = 200;
    const char *target = ops->target(conn);
    if (!target || !*target)
        target = "/";
    size_t n = strcspn(target, "?#");
    r->path = malloc(n + 1);
    if (!r->path) {
        free(r);
        return GUEST_ERR_NOMEM;
    }
    memcpy(r->path, target, n);
    r->path[n] = '\0';
    guest__req_find_client(r);
    *out = r;
    return GUEST_OK;
}

void guest_req_free(guest_req *req)
{
    if (!req)
        return;
    OPENSSL_cleanse(req->csrf_secret, sizeof req->csrf_secret);
    OPENSSL_cleanse(req->csrf_token, sizeof req->csrf_token);
    free(req->path);
    free(req);
}

guest_ctx *guest_req_ctx(const guest_req *req)
{
    return req->ctx;
}

const char *guest_req_header(const guest_req *req, const char *name)
{
    return name ? req->ops->header(req->conn, name) : NULL;
}

const char *guest_req_method(const guest_req *req)
{
    const char *m = req->ops->method(req->conn);
    return m ? m : "GET";
}

const char *guest_req_target(const guest_req *req)
{
    const char *t = req->ops->target(req->conn);
    return t && *t ? t : "/";
}

const char *guest_req_path(const guest_req *req)
{
    return req->path;
}

bool guest_req_is_https(const guest_req *req)
{
    return req->ops->is_https && req->ops->is_https(req->conn);
}

bool guest__req_is_secure(const guest_req *req)
{
    if (guest_req_is_https(req))
        return true;
    const char *name = req->ctx->cfg.secure_proxy_header;
    const char *v = name ? guest_req_header(req, name) : NULL;
    if (!v)
        return false;
    /* A chain of proxies appends: the first value is the outermost. */
    while (*v == ' ' || *v == '\t')
        v++;
    size_t n = strcspn(v, ", \t");
    return n == 5 && !strncasecmp(v, "https", 5);
}

guest_status guest_req_body(const guest_req *req, const char **data,
                            size_t *len)
{
    *data = "";
    *len = 0;
    if (!req->ops->body)
        return GUEST_OK;
    const char *d = NULL;
    size_t n = 0;
    if (req->ops->body(req->conn, &d, &n) != 0)
        return GUEST_ERR_TOO_LARGE;
    if (d) {
        *data = d;
        *len = n;
    }
    return GUEST_OK;
}

void guest__vary_cookie(guest_req *req)
{
    if (!req->vary_cookie_sent &&
        guest_res_header(req, "Vary", "Cookie") == GUEST_OK)
        req->vary_cookie_sent = true;
}

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

guest_status guest_req_user(guest_req *req, const guest_user **user)
{
    if (!req || !user)
        return GUEST_ERR_INVALID;
    if (!req->user_resolved) {
        unsigned char hash[GUEST__SHA256_BYTES];
        guest__vary_cookie(req);
        bool found = false;
        if (guest__req_session_hash(req, hash)) {
            guest_status st =
                guest__store_resolve(req->ctx, hash, &req->user, &found, NULL);
            if (st != GUEST_OK) {
                *user = NULL;
                return st;
            }
        }
        req->has_user = found;
        req->user_resolved = true;
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
    if (atomic_compare_exchange_strong(&ctx->name_digits, &expected,
                                       digits + 1))
        guest__log(ctx, GUEST_LOG_WARNING,
                   "guest_name_numbered: %u names in a row already existed "
                   "at %u digits; new guests get %u digits",
                   ctx->cfg.name_max_attempts, digits, digits + 1);
    /* Lost the race: another request widened already, which is as good. */
    return true;
}

/* The creation loop of guest__create_guest(), which holds the token. */
static guest_status create_guest(guest_req *req, const char *token,
                                 const unsigned char *hash,
                                 const guest_user **user, bool *name_failed,
                                 guest_error *err)
{
    guest_ctx *ctx = req->ctx;
    const guest_config *c = &ctx->cfg;
    bool numbered = c->name_generator == guest_name_numbered;
    guest_status st;
    /* Bounded: a generator with too few free names ends in an error, where
     * the reference would loop forever. The built-in numbered one grows a
     * digit instead, at most up to GUEST__NAME_MAX_DIGITS. */
    unsigned clashes = 0;
    for (;;) {
        char name[GUEST_USERNAME_BUF];
        name[0] = '\0';
        unsigned digits = numbered ? atomic_load(&ctx->name_digits) : 0;
        st = numbered ? guest__name_numbered_width(c, digits, name, sizeof name)
                      : c->name_generator(c, name, sizeof name,
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
        guest__created outcome;
        int64_t wait = 0;
        st = guest__store_create_guest(
            ctx, name, hash,
            c->guest_rate_limit ? guest__req_client_key(req) : "", &req->user,
            &outcome, &wait, err);
        if (st != GUEST_OK)
            return st;
        if (outcome == GUEST__RATE_LIMITED) {
            req->retry_after = wait;
            guest__log_every(ctx, &ctx->rate_logged, 60000, GUEST_LOG_WARNING,
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
            guest__log_every(ctx, &ctx->cap_logged, 60000, GUEST_LOG_WARNING,
                             "max_guests (%lld) reached: no new guests until "
                             "cleanup or conversions make room (logged once "
                             "a minute)",
                             (long long)c->max_guests);
            return guest__fail(err, GUEST_ERR_BUSY,
                               "max_guests (%lld) live guests already",
                               (long long)c->max_guests);
        }
        if (outcome == GUEST__CREATED) {
            req->user_resolved = true;
            req->has_user = true;
            *user = &req->user;
            guest__vary_cookie(req);
            st = guest__set_session_cookie(req, token);
            if (st != GUEST_OK)
                return guest__fail(err, st, "cannot set the session cookie");
            if (c->on_guest_created)
                c->on_guest_created(&req->user, req,
                                    c->on_guest_created_userdata);
            return GUEST_OK;
        }
        if (++clashes < c->name_max_attempts)
            continue;
        if (!numbered || !widen_numbered(ctx, digits))
            break;
        clashes = 0;
    }
    *name_failed = true;
    return guest__fail(err, GUEST_ERR_NAME_EXHAUSTED,
                       "%u generated names in a row already existed",
                       c->name_max_attempts);
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

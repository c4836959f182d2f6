/* The per-request object and its accessors: the bottom of core, which
 * every other request-path file reads. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "core/core.h"

guest_status guest_req_new(guest_ctx *ctx, const guest_http_ops *ops,
                           void *conn, guest_req **out)
{
    if (!ctx || !ops || !out)
        return GUEST_ERR_INVALID;
    *out = NULL;
    /* An adapter compiled against an older header has a shorter struct:
     * only its own bytes are read, the members it does not know stay NULL. */
    if (ops->size < GUEST_HTTP_OPS_MIN_SIZE)
        return GUEST_ERR_INVALID;
    guest_http_ops copy = {0};
    memcpy(&copy, ops, ops->size < sizeof copy ? ops->size : sizeof copy);
    copy.size = sizeof copy;
    ops = &copy;
    if (!ops->header || !ops->method || !ops->target || !ops->set_status ||
        !ops->add_header || !ops->write)
        return GUEST_ERR_INVALID;
    /* Refused here rather than in the guards, so that no handler, guarded
     * or not, ever sees a Host the site does not own. */
    const char *host = ops->header(conn, "Host");
    if (!guest__host_allowed(ctx, host)) {
        char shown[64] = "";
        size_t i = 0;
        for (; host && host[i] && i + 1 < sizeof shown; i++)
            shown[i] = host[i] > 0x20 && host[i] < 0x7f ? host[i] : '?';
        shown[i] = '\0';
        guest__log_every(ctx, &ctx->core->bad_host_logged, 60000,
                         GUEST_LOG_WARNING,
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
    r->ops_copy = copy;
    r->ops = &r->ops_copy;
    ops = r->ops;
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
    guest__req_db_release(req);
    /* Wiped whatever it holds: accounts keeps the CSRF secret there. */
    if (req->accounts)
        OPENSSL_cleanse(req->accounts, req->accounts_size);
    free(req->accounts);
    free(req->path);
    /* and a guest's token, had its creation not ended */
    OPENSSL_cleanse(req->create_token, sizeof req->create_token);
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
        guest_res_add_header(req, "Vary", "Cookie") == GUEST_OK)
        req->vary_cookie_sent = true;
}

const char *guest__req_host(const guest_req *req)
{
    const char *host = guest_req_header(req, "Host");
    return guest__host_allowed(req->ctx, host) ? host : NULL;
}

void guest__req_set_user(guest_req *req, const guest_user *user)
{
    req->user_resolved = true;
    req->has_user = user != NULL;
    if (user && user != &req->user)
        req->user = *user;
}

void guest__req_forget_user(guest_req *req)
{
    req->user_resolved = false;
    req->has_user = false;
}

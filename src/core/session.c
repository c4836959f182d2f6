/* Session tokens and the cookie that carries them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "core/core.h"

bool guest__cookie_value(const char *header, const char *name, char *out,
                         size_t size)
{
    if (!header || !name)
        return false;
    size_t nlen = strlen(name);
    const char *p = header;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ';')
            p++;
        const char *end = strchr(p, ';');
        if (!end)
            end = p + strlen(p);
        const char *eq = memchr(p, '=', (size_t)(end - p));
        if (eq) {
            const char *k = p, *ke = eq;
            while (ke > k && (ke[-1] == ' ' || ke[-1] == '\t'))
                ke--;
            if ((size_t)(ke - k) == nlen && !memcmp(k, name, nlen)) {
                /* The first cookie of that name decides, even when it is
                 * bad: trying later ones would let an injected cookie win. */
                const char *v = eq + 1, *ve = end;
                while (v < ve && (*v == ' ' || *v == '\t'))
                    v++;
                while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                    ve--;
                if (ve - v >= 2 && *v == '"' && ve[-1] == '"') {
                    v++;
                    ve--;
                }
                size_t vlen = (size_t)(ve - v);
                if (vlen >= size)
                    return false;
                memcpy(out, v, vlen);
                out[vlen] = '\0';
                return true;
            }
        }
        p = end;
    }
    return false;
}

guest_status guest__session_new(char token[GUEST__TOKEN_CHARS + 1],
                                unsigned char hash[GUEST__SHA256_BYTES])
{
    unsigned char raw[GUEST__TOKEN_BYTES];
    char enc[48];
    guest_status st = guest__random(raw, sizeof raw);
    if (st == GUEST_OK) {
        guest__b64url_encode(raw, sizeof raw, enc);
        memcpy(token, enc, GUEST__TOKEN_CHARS + 1);
        st = guest__sha256(raw, sizeof raw, hash);
    }
    /* A bearer token: no copy of it may outlive the call. */
    OPENSSL_cleanse(raw, sizeof raw);
    OPENSSL_cleanse(enc, sizeof enc);
    return st;
}

bool guest__session_hash(const char *token,
                         unsigned char hash[GUEST__SHA256_BYTES])
{
    unsigned char raw[GUEST__TOKEN_BYTES];
    size_t n = strlen(token);
    if (n != GUEST__TOKEN_CHARS ||
        !guest__b64url_decode(token, n, raw, sizeof raw)) {
        OPENSSL_cleanse(raw, sizeof raw);
        return false;
    }
    /* A token that cannot be hashed cannot be looked up: no session. */
    bool ok = guest__sha256(raw, sizeof raw, hash) == GUEST_OK;
    OPENSSL_cleanse(raw, sizeof raw);
    return ok;
}

/* Separates session signatures from every other use of the keys. */
#define SESSION_PURPOSE "guestuser.session.v1"

guest_status guest__session_cookie_make(const guest_ctx *ctx, const char *token,
                                        char out[GUEST__SIGNED_TOKEN_CHARS + 1])
{
    size_t n = strlen(token);
    if (n != GUEST__TOKEN_CHARS)
        return GUEST_ERR_INVALID;
    memcpy(out, token, n + 1);
    if (!guest__signing(ctx))
        return GUEST_OK;
    out[n] = '.';
    return guest__sign(ctx, SESSION_PURPOSE, token, n, out + n + 1);
}

bool guest__session_cookie_hash(const guest_ctx *ctx, const char *value,
                                unsigned char hash[GUEST__SHA256_BYTES])
{
    if (!guest__signing(ctx))
        return guest__session_hash(value, hash);
    /* The signature is checked before anything else, so a forged or random
     * cookie costs one HMAC per key and never a database query. */
    size_t n = strlen(value);
    if (n != GUEST__SIGNED_TOKEN_CHARS || value[GUEST__TOKEN_CHARS] != '.' ||
        guest__verify(ctx, SESSION_PURPOSE, value, GUEST__TOKEN_CHARS,
                      value + GUEST__TOKEN_CHARS + 1, GUEST__TAG_CHARS) < 0)
        return false;
    char token[GUEST__TOKEN_CHARS + 1];
    memcpy(token, value, GUEST__TOKEN_CHARS);
    token[GUEST__TOKEN_CHARS] = '\0';
    bool ok = guest__session_hash(token, hash);
    OPENSSL_cleanse(token, sizeof token);
    return ok;
}

guest_status guest__set_cookie(guest_req *req, const char *name,
                               const char *value, long long max_age,
                               bool http_only)
{
    const guest_config *c = &req->ctx->cfg;
    /* A cookie handed out over HTTPS is never worth sending in clear. */
    bool secure = c->cookie_secure || guest__req_is_secure(req);
    char *line = guest__asprintf(
        "%s=%s; Max-Age=%lld; Path=%s%s%s%s; SameSite=%s%s", name, value,
        max_age, c->cookie_path, c->cookie_domain ? "; Domain=" : "",
        c->cookie_domain ? c->cookie_domain : "", http_only ? "; HttpOnly" : "",
        c->cookie_samesite, secure ? "; Secure" : "");
    if (!line)
        return GUEST_ERR_NOMEM;
    guest_status st = guest_res_add_header(req, "Set-Cookie", line);
    /* The value may be a session token. */
    OPENSSL_cleanse(line, strlen(line));
    free(line);
    return st;
}

guest_status guest__set_session_cookie(guest_req *req, const char *token)
{
    /* A response that hands out a session must never be stored by a shared
     * cache, or the next visitor would receive this one's cookie. */
    guest__vary_cookie(req);
    guest_status st = guest__res_cache_control(req, false);
    if (st != GUEST_OK)
        return st;
    const guest_config *c = &req->ctx->cfg;
    if (!guest__signing(req->ctx))
        return guest__set_cookie(req, c->cookie_name, token,
                                 (long long)c->max_age, true);
    char value[GUEST__SIGNED_TOKEN_CHARS + 1];
    st = guest__session_cookie_make(req->ctx, token, value);
    if (st == GUEST_OK)
        st = guest__set_cookie(req, c->cookie_name, value,
                               (long long)c->max_age, true);
    OPENSSL_cleanse(value, sizeof value);
    return st;
}

guest_status guest__clear_session_cookie(guest_req *req)
{
    return guest__set_cookie(req, req->ctx->cfg.cookie_name, "\"\"", 0, true);
}

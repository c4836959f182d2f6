/* Session tokens and the cookie that carries them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "internal.h"

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
        guest__sha256(raw, sizeof raw, hash);
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
    guest__sha256(raw, sizeof raw, hash);
    OPENSSL_cleanse(raw, sizeof raw);
    return true;
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
    guest_status st = guest_res_header(req, "Set-Cookie", line);
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
    guest_status st = guest_res_header(req, "Cache-Control", "private");
    if (st != GUEST_OK)
        return st;
    return guest__set_cookie(req, req->ctx->cfg.cookie_name, token,
                             (long long)req->ctx->cfg.max_age, true);
}

guest_status guest__clear_session_cookie(guest_req *req)
{
    return guest__set_cookie(req, req->ctx->cfg.cookie_name, "\"\"", 0, true);
}

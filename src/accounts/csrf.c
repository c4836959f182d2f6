/* CSRF protection as Django does it: a secret in a cookie, a masked copy in
 * every form, an Origin/Referer check on HTTPS. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "accounts/accounts.h"

/* A year, as Django's CSRF_COOKIE_AGE. */
#define CSRF_COOKIE_AGE 31449600

bool guest_req_is_secure(const guest_req *req)
{
    return req && guest__req_is_secure(req);
}

/* Index of an alphanumeric character in GUEST__ALNUM, -1 otherwise. */
static int alnum_index(char c)
{
    if (c >= 'a' && c <= 'z')
        return c - 'a';
    if (c >= 'A' && c <= 'Z')
        return c - 'A' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return -1;
}

static bool all_alnum(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (alnum_index(s[i]) < 0)
            return false;
    return true;
}

/* With secret keys the cookie is secret "." signature, so a cookie planted
 * by another site (a sibling subdomain, a network attacker on plain HTTP)
 * cannot choose the secret its forms will be checked against. */
#define CSRF_PURPOSE "guestuser.csrf.v1"
#define CSRF_SIGNED_CHARS (GUEST__CSRF_SECRET_CHARS + 1 + GUEST__TAG_CHARS)

/* True when @p v is a CSRF cookie value this context accepts: 32
 * alphanumerics, and with keys a "." and their signature; *key (may be
 * NULL) gets the index of the key that signed it. */
static bool valid_cookie_value(const guest_ctx *ctx, const char *v, int *key)
{
    size_t n = strlen(v);
    if (!guest__signing(ctx))
        return n == GUEST__CSRF_SECRET_CHARS &&
               all_alnum(v, GUEST__CSRF_SECRET_CHARS);
    if (n != CSRF_SIGNED_CHARS || v[GUEST__CSRF_SECRET_CHARS] != '.' ||
        !all_alnum(v, GUEST__CSRF_SECRET_CHARS))
        return false;
    int k = guest__verify(ctx, CSRF_PURPOSE, v, GUEST__CSRF_SECRET_CHARS,
                          v + GUEST__CSRF_SECRET_CHARS + 1, GUEST__TAG_CHARS);
    if (k < 0)
        return false;
    if (key)
        *key = k;
    return true;
}

/* The secret of the request's CSRF cookie into out[33]; false when absent
 * or not a valid value. *key gets the index of the key that signed it. */
static bool cookie_secret(const guest_req *req, char *out, int *key)
{
    char v[CSRF_SIGNED_CHARS + 2];
    bool ok =
        guest__cookie_value(guest_req_header(req, "Cookie"),
                            req->ctx->cfg.csrf_cookie_name, v, sizeof v) &&
        valid_cookie_value(req->ctx, v, key);
    if (ok) {
        memcpy(out, v, GUEST__CSRF_SECRET_CHARS);
        out[GUEST__CSRF_SECRET_CHARS] = '\0';
    }
    OPENSSL_cleanse(v, sizeof v);
    return ok;
}

/* Sets the CSRF cookie to @p secret, signed under the first key if any. */
static guest_status set_secret_cookie(guest_req *req, const char *secret)
{
    char v[CSRF_SIGNED_CHARS + 1];
    memcpy(v, secret, GUEST__CSRF_SECRET_CHARS + 1);
    guest_status st = GUEST_OK;
    if (guest__signing(req->ctx)) {
        v[GUEST__CSRF_SECRET_CHARS] = '.';
        st = guest__sign(req->ctx, CSRF_PURPOSE, secret,
                         GUEST__CSRF_SECRET_CHARS,
                         v + GUEST__CSRF_SECRET_CHARS + 1);
    }
    /* Not HttpOnly: scripts read it to send X-CSRFToken, as with Django. */
    if (st == GUEST_OK)
        st = guest__set_cookie(req, req->ctx->cfg.csrf_cookie_name, v,
                               CSRF_COOKIE_AGE, false);
    OPENSSL_cleanse(v, sizeof v);
    return st;
}

/* The request's accounts state, made on first use; NULL when out of
 * memory. */
static guest__req_accounts *req_state(guest_req *req)
{
    if (!req->accounts) {
        req->accounts = calloc(1, sizeof *req->accounts);
        if (req->accounts)
            req->accounts_size = sizeof *req->accounts;
    }
    return req->accounts;
}

static guest_status new_secret(guest_req *req)
{
    guest__req_accounts *acc = req_state(req);
    if (!acc)
        return GUEST_ERR_NOMEM;
    char secret[GUEST__CSRF_SECRET_CHARS + 1];
    guest_status st = guest__random_alnum(secret, GUEST__CSRF_SECRET_CHARS);
    if (st == GUEST_OK)
        st = set_secret_cookie(req, secret);
    if (st == GUEST_OK) {
        memcpy(acc->csrf_secret, secret, sizeof secret);
        acc->csrf_token[0] = '\0';
    }
    OPENSSL_cleanse(secret, sizeof secret);
    return st;
}

guest_status guest_csrf_token(guest_req *req, const char **token)
{
    if (!req || !token)
        return GUEST_ERR_INVALID;
    *token = NULL;
    guest__req_accounts *acc = req_state(req);
    if (!acc)
        return GUEST_ERR_NOMEM;
    if (!acc->csrf_token[0]) {
        int key = 0;
        if (!acc->csrf_secret[0] &&
            !cookie_secret(req, acc->csrf_secret, &key)) {
            guest_status st = new_secret(req);
            if (st != GUEST_OK)
                return st;
        } else if (key > 0) {
            /* Signed under an older key: re-sign it under the current one
             * so the cookie outlives that key's retirement. */
            guest_status st = set_secret_cookie(req, acc->csrf_secret);
            if (st != GUEST_OK)
                return st;
        }
        /* Masking with fresh bytes makes every page's token differ, so
         * compression side channels (BREACH) cannot recover the secret. */
        static const char alnum[] = GUEST__ALNUM;
        char mask[GUEST__CSRF_SECRET_CHARS + 1];
        guest_status st = guest__random_alnum(mask, GUEST__CSRF_SECRET_CHARS);
        if (st != GUEST_OK)
            return st;
        for (size_t i = 0; i < GUEST__CSRF_SECRET_CHARS; i++) {
            int x = alnum_index(acc->csrf_secret[i]);
            int y = alnum_index(mask[i]);
            /* Both are alphanumeric by construction; anything else must
             * not become an index. */
            if (x < 0 || y < 0) {
                acc->csrf_token[0] = '\0';
                return GUEST_ERR_CRYPTO;
            }
            acc->csrf_token[i] = mask[i];
            acc->csrf_token[GUEST__CSRF_SECRET_CHARS + i] = alnum[(x + y) % 62];
        }
        acc->csrf_token[GUEST__CSRF_TOKEN_CHARS] = '\0';
    }
    *token = acc->csrf_token;
    return GUEST_OK;
}

guest_status guest__csrf_rotate(guest_req *req)
{
    return new_secret(req);
}

/* "host[:port]" compared case-insensitively, a default port dropped. */
static bool same_authority(const char *a, size_t alen, const char *host,
                           const char *default_port)
{
    size_t hlen = strlen(host), dlen = strlen(default_port);
    if (alen > dlen && !strncmp(a + alen - dlen, default_port, dlen))
        alen -= dlen;
    if (hlen > dlen && !strcmp(host + hlen - dlen, default_port))
        hlen -= dlen;
    return alen > 0 && alen == hlen && !strncasecmp(a, host, alen);
}

/* @p url is <scheme>://<authority>[/...] for this host. With a NULL
 * @p scheme, http and https both count (plain-HTTP requests, where a TLS
 * proxy may sit in front). */
static bool url_on_host(const char *url, const char *host, const char *scheme,
                        bool origin_only)
{
    const char *rest;
    const char *port;
    if (!strncasecmp(url, "https://", 8) &&
        (!scheme || !strcmp(scheme, "https"))) {
        rest = url + 8;
        port = ":443";
    } else if (!strncasecmp(url, "http://", 7) && !scheme) {
        rest = url + 7;
        port = ":80";
    } else {
        return false;
    }
    size_t n = strcspn(rest, "/?#");
    if (origin_only && rest[n])
        return false;
    if (memchr(rest, '@', n))
        return false;
    return same_authority(rest, n, host, port);
}

/* The token half of guest_csrf_check(), against the cookie's @p secret. */
static guest_status check_token(guest_req *req, const char *submitted,
                                const char *secret, guest_error *err)
{
    const char *token = submitted && *submitted
                            ? submitted
                            : guest_req_header(req, GUEST_CSRF_HEADER);
    if (!token || !*token)
        return guest__fail(err, GUEST_ERR_CSRF, "CSRF token missing.");
    size_t n = strlen(token);
    /* With keys, a script that copies the cookie sends it signed. */
    if (guest__signing(req->ctx) && n == CSRF_SIGNED_CHARS) {
        if (!valid_cookie_value(req->ctx, token, NULL))
            return guest__fail(err, GUEST_ERR_CSRF, "CSRF token incorrect.");
        n = GUEST__CSRF_SECRET_CHARS;
    }
    if (n != GUEST__CSRF_SECRET_CHARS && n != GUEST__CSRF_TOKEN_CHARS)
        return guest__fail(err, GUEST_ERR_CSRF,
                           "CSRF token has incorrect length.");
    if (!all_alnum(token, n))
        return guest__fail(err, GUEST_ERR_CSRF,
                           "CSRF token has invalid characters.");
    char plain[GUEST__CSRF_SECRET_CHARS];
    if (n == GUEST__CSRF_TOKEN_CHARS) {
        static const char alnum[] = GUEST__ALNUM;
        for (size_t i = 0; i < GUEST__CSRF_SECRET_CHARS; i++) {
            int y = alnum_index(token[i]);
            int x = alnum_index(token[GUEST__CSRF_SECRET_CHARS + i]);
            plain[i] = alnum[(x - y + 62) % 62];
        }
    } else {
        memcpy(plain, token, sizeof plain);
    }
    bool same = CRYPTO_memcmp(plain, secret, sizeof plain) == 0;
    OPENSSL_cleanse(plain, sizeof plain);
    if (!same)
        return guest__fail(err, GUEST_ERR_CSRF, "CSRF token incorrect.");
    return GUEST_OK;
}

guest_status guest_csrf_check(guest_req *req, const char *submitted,
                              guest_error *err)
{
    if (!req)
        return guest__fail(err, GUEST_ERR_INVALID, "req is NULL");
    /* NULL for a Host outside allowed_hosts: then no origin is ours. */
    const char *host = guest__req_host(req);
    const char *origin = guest_req_header(req, "Origin");
    bool secure = guest__req_is_secure(req);
    /* Django's order: where the request came from first, then the token. */
    if (origin &&
        (!host || !url_on_host(origin, host, secure ? "https" : NULL, true)))
        return guest__fail(err, GUEST_ERR_CSRF,
                           "Origin checking failed - %.100s does not match "
                           "any trusted origins.",
                           origin);
    if (secure && !origin) {
        const char *referer = guest_req_header(req, "Referer");
        if (!referer || !*referer)
            return guest__fail(err, GUEST_ERR_CSRF,
                               "Referer checking failed - no Referer.");
        if (strncasecmp(referer, "https://", 8) != 0)
            return guest__fail(err, GUEST_ERR_CSRF,
                               "Referer checking failed - Referer is "
                               "insecure while host is secure.");
        if (!host || !url_on_host(referer, host, "https", false))
            return guest__fail(err, GUEST_ERR_CSRF,
                               "Referer checking failed - %.100s does not "
                               "match any trusted origins.",
                               referer);
    }
    char secret[GUEST__CSRF_SECRET_CHARS + 1];
    if (!cookie_secret(req, secret, NULL))
        return guest__fail(err, GUEST_ERR_CSRF, "CSRF cookie not set.");
    guest_status st = check_token(req, submitted, secret, err);
    OPENSSL_cleanse(secret, sizeof secret);
    return st;
}

guest_status guest_csrf_check_form(guest_req *req, const guest_form *form,
                                   guest_error *err)
{
    return guest_csrf_check(req, guest_form_get(form, GUEST_CSRF_FIELD), err);
}

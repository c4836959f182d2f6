/* Abuse limits: per-client sliding windows kept in PostgreSQL, shared by
 * every process and node that uses the same schema. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

/* Failed logins and conversions are counted per hour. */
#define LOGIN_WINDOW 3600

/* An IPv6 prefix of @p bits as "addr/bits". */
static void prefix_key(const unsigned char ip[16], int bits,
                       char out[GUEST__CLIENT_KEY_BUF])
{
    unsigned char b[16] = {0};
    memcpy(b, ip, (size_t)bits / 8);
    char v6[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, b, v6, sizeof v6);
    snprintf(out, GUEST__CLIENT_KEY_BUF, "%s/%d", v6, bits);
}

/* The keys of a parsed address (IPv4 mapped into ip[12..15]). */
static void keys_of(const unsigned char ip[16], int family,
                    guest__client_keys *k)
{
    k->p56[0] = k->p48[0] = '\0';
    if (family == AF_INET) {
        inet_ntop(AF_INET, ip + 12, k->addr, sizeof k->addr);
        snprintf(k->network, sizeof k->network, "%u.%u.%u.0/24", ip[12], ip[13],
                 ip[14]);
        return;
    }
    /* One subscriber usually gets a whole /64: its addresses are one
     * client, or rotating through them would multiply the budget. But an
     * ISP hands out a /56 or a /48, so one customer holds 256 to 65,536
     * /64s: the enclosing prefixes get budgets of their own. */
    prefix_key(ip, 64, k->addr);
    prefix_key(ip, 56, k->p56);
    prefix_key(ip, 48, k->p48);
    memcpy(k->network, k->p48, sizeof k->network);
}

static void keys_unknown(guest__client_keys *k)
{
    snprintf(k->addr, sizeof k->addr, "unknown");
    snprintf(k->network, sizeof k->network, "unknown");
    k->p56[0] = k->p48[0] = '\0';
}

void guest__client_keys_of(const char *addr, guest__client_keys *out)
{
    keys_unknown(out);
    out->done = true;
    if (!addr)
        return;
    const char *s = addr;
    size_t n = strlen(s);
    if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
        s++;
        n -= 2;
    }
    /* guest__parse_ip reads a dual-stack socket's ::ffff:a.b.c.d as the
     * IPv4 address; masked to /64 such clients would all share one
     * budget. */
    unsigned char ip[16];
    int family;
    if (guest__parse_ip(s, n, ip, &family))
        keys_of(ip, family, out);
}

void guest__client_key(const char *addr, char out[GUEST__CLIENT_KEY_BUF])
{
    guest__client_keys k;
    guest__client_keys_of(addr, &k);
    memcpy(out, k.addr, GUEST__CLIENT_KEY_BUF);
}

/* The address guest_req_new() decided on (trusted proxies considered),
 * parsed there once. */
const guest__client_keys *guest__req_keys(guest_req *req)
{
    if (!req->keys.done) {
        unsigned char ip[16];
        int family;
        keys_unknown(&req->keys);
        if (guest__req_client_ip(req, ip, &family))
            keys_of(ip, family, &req->keys);
        req->keys.done = true;
    }
    return &req->keys;
}

const char *guest__req_client_key(guest_req *req)
{
    return guest__req_keys(req)->addr;
}

int64_t guest_req_retry_after(const guest_req *req)
{
    return req ? req->retry_after : 0;
}

/* A budget times a prefix's multiplier, within what the counters hold. */
static uint64_t scaled(uint64_t limit, unsigned factor)
{
    uint64_t v = limit * factor;
    return v > 2000000000u ? 2000000000u : v;
}

/* The windows of one login or conversion attempt, narrowest first: the
 * username at this address (logins only), then the address, its /56 and
 * its /48. Returns how many. */
static size_t attempt_windows(guest_req *req, const char *kind,
                              const unsigned char *subject,
                              guest__window_limit w[GUEST__WINDOW_LIMITS_MAX])
{
    const guest_config *c = &req->ctx->cfg;
    const guest__client_keys *k = guest__req_keys(req);
    size_t n = 0;
    if (subject && c->login_rate_limit)
        w[n++] = (guest__window_limit){"login_user", k->addr, subject,
                                       c->login_rate_limit, LOGIN_WINDOW};
    uint64_t a = c->login_address_rate_limit;
    if (a) {
        w[n++] = (guest__window_limit){kind, k->addr, NULL, a, LOGIN_WINDOW};
        if (*k->p56 && c->ipv6_prefix56_multiplier)
            w[n++] = (guest__window_limit){
                kind, k->p56, NULL, scaled(a, c->ipv6_prefix56_multiplier),
                LOGIN_WINDOW};
        if (*k->p48 && c->ipv6_prefix48_multiplier)
            w[n++] = (guest__window_limit){
                kind, k->p48, NULL, scaled(a, c->ipv6_prefix48_multiplier),
                LOGIN_WINDOW};
    }
    return n;
}

static guest_status take(guest_req *req, const char *kind,
                         const unsigned char *subject, guest_error *err)
{
    guest__window_limit w[GUEST__WINDOW_LIMITS_MAX];
    size_t n = attempt_windows(req, kind, subject, w);
    bool admitted;
    int64_t wait;
    guest_status st = guest__window_take(req->ctx, w, n, &admitted, &wait, err);
    if (st != GUEST_OK || admitted)
        return st;
    guest__count(req->ctx, GUEST__C_RATE_LIMITED);
    req->retry_after = wait;
    return guest__fail(err, GUEST_ERR_RATE_LIMITED,
                       "too many failed attempts from this client; retry in "
                       "%lld s",
                       (long long)wait);
}

/* The place an attempt took, given back; with @p reset_user the
 * username's window is emptied instead (a successful login). */
static void give_back(guest_req *req, const char *kind,
                      const unsigned char *subject, bool reset_user)
{
    guest__window_limit w[GUEST__WINDOW_LIMITS_MAX];
    bool reset[GUEST__WINDOW_LIMITS_MAX] = {false};
    size_t n = attempt_windows(req, kind, subject, w);
    if (n && subject && req->ctx->cfg.login_rate_limit)
        reset[0] = reset_user;
    guest_status st = guest__window_give_back(req->ctx, w, reset, n, NULL);
    /* The attempt's own outcome stands; a place that could not be given
     * back is logged (it only makes the limit stricter for a while). */
    if (st != GUEST_OK)
        guest__log(req->ctx, GUEST_LOG_WARNING,
                   "could not give back a rate-limit place: %s",
                   guest_strerror(st));
}

static bool login_limited(const guest_config *c)
{
    return c->login_rate_limit || c->login_address_rate_limit;
}

guest_status guest__limit_login_take(guest_req *req, const char *username,
                                     guest_error *err)
{
    if (!login_limited(&req->ctx->cfg))
        return GUEST_OK;
    /* The username's part of a login_user key: its SHA-256, so any bytes
     * of any length make a fixed-size key. */
    unsigned char subject[GUEST__SHA256_BYTES];
    if (guest__sha256(username, strlen(username), subject) != GUEST_OK)
        return guest__fail(err, GUEST_ERR_CRYPTO, "cannot hash the username");
    return take(req, "login", subject, err);
}

void guest__limit_login_done(guest_req *req, const char *username,
                             guest_status outcome)
{
    if (!login_limited(&req->ctx->cfg) || outcome == GUEST_ERR_AUTH ||
        outcome == GUEST_ERR_RATE_LIMITED)
        return;
    unsigned char subject[GUEST__SHA256_BYTES];
    if (guest__sha256(username, strlen(username), subject) != GUEST_OK) {
        guest__log(req->ctx, GUEST_LOG_WARNING,
                   "could not give back a rate-limit place: %s",
                   guest_strerror(GUEST_ERR_CRYPTO));
        return;
    }
    /* Django-axes' reset on success: the owner who mistyped a few times
     * starts afresh. The address windows only get this attempt's own place
     * back, so a guesser who also owns one account cannot launder failures
     * with it. An attempt that hashed nothing (busy, database down) gives
     * its place back too. */
    give_back(req, "login", subject, outcome == GUEST_OK);
}

guest_status guest__limit_convert_take(guest_req *req, guest_error *err)
{
    if (!req->ctx->cfg.login_address_rate_limit)
        return GUEST_OK;
    return take(req, "convert", NULL, err);
}

void guest__limit_convert_done(guest_req *req, guest_status outcome)
{
    if (!req->ctx->cfg.login_address_rate_limit ||
        outcome == GUEST_ERR_VALIDATION ||
        outcome == GUEST_ERR_USERNAME_TAKEN ||
        outcome == GUEST_ERR_RATE_LIMITED)
        return;
    give_back(req, "convert", NULL, false);
}

guest_status guest__respond_rate_limited(guest_req *req)
{
    char secs[32];
    snprintf(secs, sizeof secs, "%lld",
             (long long)(req->retry_after > 0 ? req->retry_after : 1));
    guest_status st = guest_res_set_status(req, 429);
    if (st == GUEST_OK)
        st = guest_res_add_header(req, "Retry-After", secs);
    if (st == GUEST_OK)
        st = guest_res_send(req, 429, "text/plain; charset=utf-8",
                            "Too Many Requests\n");
    return st == GUEST_OK ? GUEST_ERR_RATE_LIMITED : st;
}

guest_status guest_rate_limits_list(guest_ctx *ctx, size_t limit,
                                    guest_rate_limit_list_fn fn, void *userdata,
                                    guest_error *err)
{
    if (!ctx || !fn)
        return guest__fail(err, GUEST_ERR_INVALID, "NULL ctx or fn");
    return guest__windows_each(ctx, limit, fn, userdata, err);
}

guest_status guest_rate_limits_reset(guest_ctx *ctx, const char *who,
                                     uint64_t *deleted, guest_error *err)
{
    if (deleted)
        *deleted = 0;
    if (!ctx || !who || !*who)
        return guest__fail(err, GUEST_ERR_INVALID, "NULL or empty argument");
    /* An address lifts every counter it is counted in (for IPv6 its /64,
     * /56 and /48 too); a key as listed, that row's client; anything else
     * is a username, whose per-name counters hold only its hash. */
    guest__client_keys k;
    guest__client_keys_of(who, &k);
    if (strcmp(k.addr, "unknown") != 0) {
        const char *keys[3] = {k.addr, *k.p56 ? k.p56 : k.addr,
                               *k.p48 ? k.p48 : k.addr};
        return guest__windows_delete(ctx, keys, 3, NULL, deleted, err);
    }
    if (strchr(who, '/') || !strcmp(who, "unknown")) {
        const char *keys[1] = {who};
        return guest__windows_delete(ctx, keys, 1, NULL, deleted, err);
    }
    unsigned char subject[GUEST__SHA256_BYTES];
    if (guest__sha256(who, strlen(who), subject) != GUEST_OK)
        return guest__fail(err, GUEST_ERR_CRYPTO, "cannot hash the username");
    return guest__windows_delete(ctx, NULL, 0, subject, deleted, err);
}

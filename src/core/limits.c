/* Abuse limits: per-client sliding windows kept in PostgreSQL, shared by
 * every process and node that uses the same schema. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

/* Failed logins and conversions are counted per hour. */
#define LOGIN_WINDOW 3600

/* The key of a parsed address (IPv4 mapped into out[12..15]). */
static void key_of(const unsigned char ip[16], int family,
                   char out[GUEST__CLIENT_KEY_BUF])
{
    if (family == AF_INET) {
        inet_ntop(AF_INET, ip + 12, out, GUEST__CLIENT_KEY_BUF);
        return;
    }
    /* One subscriber usually gets a whole /64: its addresses are one
     * client, or rotating through them would multiply the budget. */
    unsigned char b[16];
    memcpy(b, ip, 8);
    memset(b + 8, 0, 8);
    char v6[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, b, v6, sizeof v6);
    snprintf(out, GUEST__CLIENT_KEY_BUF, "%s/64", v6);
}

void guest__client_key(const char *addr, char out[GUEST__CLIENT_KEY_BUF])
{
    snprintf(out, GUEST__CLIENT_KEY_BUF, "unknown");
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
        key_of(ip, family, out);
}

/* The address guest_req_new() decided on (trusted proxies considered),
 * parsed there once. */
const char *guest__req_client_key(guest_req *req)
{
    if (!req->client_key[0]) {
        unsigned char ip[16];
        int family;
        if (guest__req_client_ip(req, ip, &family))
            key_of(ip, family, req->client_key);
        else
            snprintf(req->client_key, sizeof req->client_key, "unknown");
    }
    return req->client_key;
}

int64_t guest_req_retry_after(const guest_req *req)
{
    return req ? req->retry_after : 0;
}

static unsigned address_limit(const guest_config *c)
{
    if (c->login_address_rate_limit)
        return c->login_address_rate_limit;
    return c->login_rate_limit > 200000000u ? 1000000000u
                                            : c->login_rate_limit * 5;
}

/* The username's part of a login_user key: its SHA-256, so any bytes of
 * any length make a fixed-size key. */
static guest_status subject_of(const char *username,
                               unsigned char out[GUEST__SHA256_BYTES])
{
    return guest__sha256(username, strlen(username), out);
}

/* One read of the rows that could refuse the attempt; refuses with the
 * longest wait among them. */
static guest_status check(guest_req *req, const char *username,
                          guest_error *err)
{
    guest_ctx *ctx = req->ctx;
    const guest_config *c = &ctx->cfg;
    unsigned char subject[GUEST__SHA256_BYTES];
    guest__params p = {0};
    guest__param_text(&p, guest__req_client_key(req));
    if (username) {
        guest_status hs = subject_of(username, subject);
        if (hs != GUEST_OK)
            return guest__fail(err, hs, "cannot hash the username");
        guest__param_bin(&p, subject, sizeof subject);
    }
    PGresult *res;
    const guest__stmt s = {
        .tmpl =
            username
                ? "SELECT kind, bucket, prev_count, curr_count, window_secs,"
                  " extract(epoch FROM now())::float8 FROM @.rate_windows"
                  " WHERE client = $1 AND ((kind = 'login' AND subject = '')"
                  " OR (kind = 'login_user' AND subject = $2))"
                : "SELECT kind, bucket, prev_count, curr_count, window_secs,"
                  " extract(epoch FROM now())::float8 FROM @.rate_windows"
                  " WHERE client = $1 AND kind = 'convert'"
                  " AND subject = ''",
        .params = &p};
    guest_status st = guest__sql_run(ctx, NULL, &s, &res, err);
    if (st != GUEST_OK) {
        PQclear(res);
        return st;
    }
    int64_t wait = 0;
    for (int i = 0; i < PQntuples(res); i++) {
        int64_t window = strtoll(PQgetvalue(res, i, 4), NULL, 10);
        if (window != LOGIN_WINDOW)
            continue;
        unsigned limit = strcmp(PQgetvalue(res, i, 0), "login_user")
                             ? address_limit(c)
                             : c->login_rate_limit;
        int64_t w =
            guest__window_wait(strtod(PQgetvalue(res, i, 5), NULL), window,
                               strtoll(PQgetvalue(res, i, 1), NULL, 10),
                               strtoll(PQgetvalue(res, i, 2), NULL, 10),
                               strtoll(PQgetvalue(res, i, 3), NULL, 10), limit);
        if (w > wait)
            wait = w;
    }
    PQclear(res);
    if (wait > 0) {
        guest__count(ctx, GUEST__C_RATE_LIMITED);
        req->retry_after = wait;
        return guest__fail(err, GUEST_ERR_RATE_LIMITED,
                           "too many failed attempts from this client; retry "
                           "in %lld s",
                           (long long)wait);
    }
    return GUEST_OK;
}

/* Adds one failure to the address row and, for a login, to the
 * username+address row: one statement. */
static void count_failure(guest_req *req, const char *username)
{
    guest_ctx *ctx = req->ctx;
    unsigned char subject[GUEST__SHA256_BYTES];
    char window[16];
    snprintf(window, sizeof window, "%d", LOGIN_WINDOW);
    guest__params p = {0};
    guest__param_text(&p, guest__req_client_key(req));
    guest__param_text(&p, window);
    if (username && subject_of(username, subject) != GUEST_OK) {
        guest__log(ctx, GUEST_LOG_WARNING,
                   "could not count a failed attempt: %s",
                   guest_strerror(GUEST_ERR_CRYPTO));
        return;
    }
    if (username)
        guest__param_bin(&p, subject, sizeof subject);
    char *values =
        guest__window_values("v.kind", "$1", "v.subject", "$2::integer");
    char *upsert = guest__window_upsert(NULL);
    char *sql = values && upsert
                    ? guest__asprintf(
                          "INSERT INTO @.rate_windows AS r (kind, client,"
                          " subject, bucket, window_secs, prev_count,"
                          " curr_count, stale_at) %s, (VALUES %s) v(kind,"
                          " subject) %s",
                          values,
                          username ? "('login', ''::bytea), ('login_user', $3)"
                                   : "('convert', ''::bytea)",
                          upsert)
                    : NULL;
    free(values);
    free(upsert);
    guest_status st =
        sql ? guest__sql_run(ctx, NULL,
                             &(guest__stmt){.tmpl = sql, .params = &p}, NULL,
                             NULL)
            : GUEST_ERR_NOMEM;
    free(sql);
    /* The attempt's own outcome stands; a count that could not be written
     * is logged, not turned into an error page. */
    if (st != GUEST_OK)
        guest__log(ctx, GUEST_LOG_WARNING,
                   "could not count a failed attempt: %s", guest_strerror(st));
}

guest_status guest__limit_login_check(guest_req *req, const char *username,
                                      guest_error *err)
{
    if (!req->ctx->cfg.login_rate_limit)
        return GUEST_OK;
    return check(req, username, err);
}

void guest__limit_login_record(guest_req *req, const char *username,
                               guest_status outcome)
{
    guest_ctx *ctx = req->ctx;
    if (!ctx->cfg.login_rate_limit)
        return;
    if (outcome == GUEST_ERR_AUTH) {
        count_failure(req, username);
    } else if (outcome == GUEST_OK) {
        /* Django-axes' reset on success: the owner who mistyped a few times
         * starts afresh; the address count stays, so a guesser who also
         * owns one account cannot launder failures with it. */
        unsigned char subject[GUEST__SHA256_BYTES];
        if (subject_of(username, subject) != GUEST_OK) {
            guest__log(ctx, GUEST_LOG_WARNING,
                       "could not reset a login failure count");
            return;
        }
        guest__params p = {0};
        guest__param_text(&p, guest__req_client_key(req));
        guest__param_bin(&p, subject, sizeof subject);
        if (guest__sql_run(
                ctx, NULL,
                &(guest__stmt){
                    .tmpl =
                        "DELETE FROM @.rate_windows WHERE kind = 'login_user'"
                        " AND client = $1 AND subject = $2",
                    .params = &p},
                NULL, NULL) != GUEST_OK)
            guest__log(ctx, GUEST_LOG_WARNING,
                       "could not reset a login failure count");
    }
}

guest_status guest__limit_convert_check(guest_req *req, guest_error *err)
{
    if (!req->ctx->cfg.login_rate_limit)
        return GUEST_OK;
    return check(req, NULL, err);
}

void guest__limit_convert_record(guest_req *req, guest_status outcome)
{
    if (req->ctx->cfg.login_rate_limit && (outcome == GUEST_ERR_VALIDATION ||
                                           outcome == GUEST_ERR_USERNAME_TAKEN))
        count_failure(req, NULL);
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

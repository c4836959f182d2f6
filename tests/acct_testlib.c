#include "acct_testlib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

guest_ctx *at_ctx(const char *schema, void (*tweak)(guest_config *))
{
    guest_config c;
    tl_config(&c, schema);
    c.password_iterations = 1000;
    if (tweak)
        tweak(&c);
    return tl_ctx_new(&c);
}

int64_t at_new_guest(guest_ctx *ctx, char *cookie, size_t size)
{
    tl_http h;
    tl_created made = {0};
    tl_http_init(&h, "GET", "/");
    tl_http_run(ctx, &h, tl_create_handler, &made);
    ck_assert_int_eq(made.st, GUEST_OK);
    ck_assert(made.is_guest);
    ck_assert(tl_http_cookie(&h, "sessionid", cookie, size));
    tl_http_free(&h);
    return made.id;
}

int64_t at_new_user(guest_ctx *ctx, const char *username, const char *password)
{
    int64_t id = 0;
    guest_form_errors e;
    guest_status st = guest_user_create(ctx, username, password, &id, &e);
    ck_assert_msg(st == GUEST_OK, "guest_user_create(%s): %s %s", username,
                  guest_status_name(st), e.count ? e.items[0].message : "");
    ck_assert_int_gt(id, 0);
    return id;
}

void at_cookie_header(char *out, size_t size, const char *session,
                      bool with_csrf)
{
    snprintf(out, size, "%s%s%s", session ? session : "",
             session && with_csrf ? "; " : "",
             with_csrf ? "csrftoken=" AT_CSRF : "");
}

void at_request(guest_ctx *ctx, tl_http *h, const char *method,
                const char *target, const char *cookie, const char *ctype,
                const char *body, guest_handler_fn fn, void *userdata)
{
    tl_http_init(h, method, target);
    tl_http_add(h, "Host", "testserver");
    if (cookie && *cookie)
        tl_http_add(h, "Cookie", cookie);
    if (body) {
        tl_http_add(h, "Content-Type",
                    ctype ? ctype : "application/x-www-form-urlencoded");
        h->body = body;
    }
    tl_http_run(ctx, h, fn, userdata);
}

static char *expand(const char *schema, const char *sql)
{
    size_t n = 0;
    for (const char *p = sql; *p; p++)
        n += *p == '@' ? strlen(schema) : 1;
    char *out = malloc(n + 1), *o = out;
    ck_assert_ptr_nonnull(out);
    for (const char *p = sql; *p; p++) {
        if (*p == '@') {
            strcpy(o, schema);
            o += strlen(schema);
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    return out;
}

long long at_scalar(const char *schema, const char *sql)
{
    char *s = expand(schema, sql);
    long long v = tl_scalar(s);
    free(s);
    return v;
}

void at_exec(const char *schema, const char *sql)
{
    char *s = expand(schema, sql);
    tl_exec(s);
    free(s);
}

void at_text(const char *schema, const char *sql, char *out, size_t size)
{
    char *s = expand(schema, sql);
    PGconn *c = tl_db();
    PGresult *r = PQexec(c, s);
    ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s: %s", s,
                  PQerrorMessage(c));
    snprintf(out, size, "%s", PQntuples(r) ? PQgetvalue(r, 0, 0) : "");
    PQclear(r);
    PQfinish(c);
    free(s);
}

int64_t at_whoami(guest_ctx *ctx, const char *cookie, bool *is_guest)
{
    tl_http h;
    tl_created seen = {0};
    tl_http_init(&h, "GET", "/");
    if (cookie && *cookie)
        tl_http_add(&h, "Cookie", cookie);
    tl_http_run(ctx, &h, tl_whoami_handler, &seen);
    tl_http_free(&h);
    ck_assert_int_eq(seen.st, GUEST_OK);
    if (is_guest)
        *is_guest = seen.is_guest;
    return seen.id;
}

bool at_input_value(const char *html, const char *name, char *out, size_t size)
{
    char key[128];
    snprintf(key, sizeof key, "name=\"%s\"", name);
    const char *p = strstr(html, key);
    if (!p)
        return false;
    const char *end = strchr(p, '>');
    const char *v = strstr(p, "value=\"");
    if (!v || (end && v > end))
        return false;
    v += 7;
    size_t n = strcspn(v, "\"");
    if (n >= size)
        return false;
    memcpy(out, v, n);
    out[n] = '\0';
    return true;
}

guest_status at_slow_store(guest_db *db, const guest_user *user,
                           const guest_form *form, guest_form_errors *errors,
                           void *ud)
{
    (void)db, (void)user, (void)form, (void)errors, (void)ud;
    struct timespec ts = {0, 150 * 1000000L};
    nanosleep(&ts, NULL);
    return GUEST_OK;
}

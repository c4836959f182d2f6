/* A request with no server behind it, for the benchmarks that time the
 * library's request path alone (bench_requests, bench_cache_notify): the
 * guest_http_ops calls over a struct, which keeps the session cookie the
 * answer sets and drops the rest. */
#ifndef BENCH_FAKE_REQUEST_H
#define BENCH_FAKE_REQUEST_H

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <guestuser/guestuser.h>

typedef struct fake {
    const char *method;   /* NULL: GET */
    const char *cookie;   /* the Cookie header, or NULL */
    char addr[32];        /* the client address; "": none */
    char set_cookie[128]; /* "sessionid=..." of the answer, or "" */
} fake;

static const char *f_header(void *c, const char *name)
{
    return strcasecmp(name, "Cookie") ? NULL : ((fake *)c)->cookie;
}
static const char *f_method(void *c)
{
    fake *f = c;
    return f->method ? f->method : "GET";
}
static const char *f_target(void *c)
{
    return (void)c, "/bench/";
}
static const char *f_addr(void *c)
{
    fake *f = c;
    return f->addr[0] ? f->addr : NULL;
}
static int f_status(void *c, int s)
{
    return (void)c, (void)s, 0;
}
static int f_write(void *c, const void *d, size_t n)
{
    return (void)c, (void)d, (void)n, 0;
}
static int f_add_header(void *c, const char *n, const char *v)
{
    fake *f = c;
    /* the session cookie only, not the CSRF cookie */
    if (!strcasecmp(n, "Set-Cookie") && !strncmp(v, "sessionid=", 10))
        snprintf(f->set_cookie, sizeof f->set_cookie, "%.*s",
                 (int)strcspn(v, ";"), v);
    return 0;
}

static const guest_http_ops fake_ops = {
    GUEST_HTTP_OPS_INIT,        .header = f_header,    .method = f_method,
    .target = f_target,         .client_addr = f_addr, .set_status = f_status,
    .add_header = f_add_header, .write = f_write,
};

/* Runs @p fn with @p ud on the request @p f; -1 when the request could
 * not be made. */
static inline int fake_request(guest_ctx *ctx, fake *f, guest_handler_fn fn,
                               void *ud)
{
    return guest_run_handler(ctx, &fake_ops, f, fn, ud, NULL) == 0 ? 0 : -1;
}

#endif

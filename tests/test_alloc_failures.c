/* Every allocation of the library failing in turn (jansson's test): the
 * library's calls of malloc, calloc, realloc and strdup go through the
 * wrappers below (linked with -Wl,--wrap, so only the statically linked
 * library and this file are affected, never libpq or libc), which fail
 * exactly the Nth one. For N = 0, 1, 2, ... until a run needs no more,
 * the call must fail cleanly (an error status, a 5xx answer) or succeed,
 * never crash or answer as if nothing went wrong with half a response; and
 * the next call, with memory back, works. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"

#define SCHEMA "t_alloc_failures"

void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);

/* Allocations to let through before the one that fails; -1: none fails. */
static atomic_long countdown = -1;
static atomic_int failed;

static bool fail_now(void)
{
    if (atomic_load(&countdown) < 0)
        return false;
    if (atomic_fetch_sub(&countdown, 1) == 0) {
        atomic_store(&failed, 1);
        return true;
    }
    return false;
}

void *__wrap_malloc(size_t n)
{
    return fail_now() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
    return fail_now() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
    return fail_now() ? NULL : __real_realloc(p, n);
}

char *__wrap_strdup(const char *s)
{
    return fail_now() ? NULL : __real_strdup(s);
}

static void arm(long n)
{
    atomic_store(&failed, 0);
    atomic_store(&countdown, n);
}

/* Whether the armed failure happened; disarms. */
static bool disarm(void)
{
    atomic_store(&countdown, -1);
    return atomic_load(&failed) != 0;
}

/* ---- a connection of fixed buffers: nothing here allocates ---- */

typedef struct conn {
    const char *method, *target, *cookie, *ctype, *body;
    int status;
    char session[512];
    char out[16384];
    size_t len;
} conn;

static const char *c_header(void *p, const char *name)
{
    conn *c = p;
    if (!strcasecmp(name, "Cookie"))
        return c->cookie;
    if (!strcasecmp(name, "Content-Type"))
        return c->ctype;
    if (!strcasecmp(name, "Host"))
        return "testserver";
    return NULL;
}
static const char *c_method(void *p)
{
    return ((conn *)p)->method;
}
static const char *c_target(void *p)
{
    return ((conn *)p)->target;
}
static const char *c_addr(void *p)
{
    (void)p;
    return "127.0.0.1";
}
static int c_status(void *p, int status)
{
    ((conn *)p)->status = status;
    return 0;
}
static int c_add_header(void *p, const char *name, const char *value)
{
    conn *c = p;
    if (!strcasecmp(name, "Set-Cookie") && !strncmp(value, "sessionid=", 10))
        snprintf(c->session, sizeof c->session, "%.*s",
                 (int)strcspn(value, ";"), value);
    return 0;
}
static int c_write(void *p, const void *data, size_t len)
{
    conn *c = p;
    if (len > sizeof c->out - 1 - c->len)
        return -1;
    memcpy(c->out + c->len, data, len);
    c->len += len;
    c->out[c->len] = '\0';
    return 0;
}
static int c_body(void *p, const char **data, size_t *len)
{
    conn *c = p;
    *data = c->body;
    *len = c->body ? strlen(c->body) : 0;
    return 0;
}
static int c_reset(void *p)
{
    conn *c = p;
    c->status = 200;
    c->len = 0;
    c->out[0] = '\0';
    c->session[0] = '\0';
    return 0;
}

static const guest_http_ops ops = {GUEST_HTTP_OPS_INIT,
                                   .header = c_header,
                                   .method = c_method,
                                   .target = c_target,
                                   .client_addr = c_addr,
                                   .set_status = c_status,
                                   .add_header = c_add_header,
                                   .write = c_write,
                                   .body = c_body,
                                   .reset = c_reset};

/* One request through @p fn; false when guest_req_new itself failed. */
static bool serve(guest_ctx *ctx, conn *c, guest_handler_fn fn, void *ud)
{
    c->status = 200;
    c->len = 0;
    c->out[0] = '\0';
    c->session[0] = '\0';
    guest_req *req = NULL;
    if (guest_req_new(ctx, &ops, c, &req) != GUEST_OK)
        return false;
    fn(req, ud);
    guest_req_free(req);
    return true;
}

static void hello(guest_req *req, void *ud)
{
    (void)ud;
    const guest_user *u = NULL;
    guest_status st = guest_req_user(req, &u, NULL);
    guest_res_send(req, 200, "text/plain",
                   st == GUEST_OK && u ? "hello guest" : "hello anonymous");
}

static void allow(guest_req *req, void *ud)
{
    (void)guest_allow(req, hello, ud);
}

START_TEST(creating_a_context_fails_cleanly_at_every_allocation)
{
    tl_drop_schema(SCHEMA);
    guest_config cfg;
    tl_config(&cfg, SCHEMA);
    cfg.password_iterations = 1000;
    cfg.session_cache_ttl = 5;
    static const char *const keys[] = {"first-secret-key-of-32-bytes-or-more",
                                       NULL};
    cfg.secret_keys = keys;
    long n = 0;
    for (;; n++) {
        guest_ctx *ctx = (guest_ctx *)1;
        guest_error err = {0};
        arm(n);
        guest_status st = guest_ctx_new(&cfg, &ctx, &err);
        bool hit = disarm();
        if (st == GUEST_OK) {
            ck_assert_ptr_nonnull(ctx);
            guest_ctx_free(ctx);
            if (!hit)
                break;
        } else {
            ck_assert_msg(hit, "allocation %ld: %s without a failure", n,
                          guest_strerror(st));
            ck_assert_ptr_null(ctx);
            ck_assert_msg(err.message[0], "allocation %ld: no message", n);
        }
    }
    ck_assert_int_gt(n, 10);
}
END_TEST

START_TEST(a_guests_request_fails_cleanly_at_every_allocation)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, NULL);
    long n = 0;
    for (;; n++) {
        conn c = {.method = "GET", .target = "/page/?a=1"};
        arm(n);
        bool made = serve(ctx, &c, allow, NULL);
        bool hit = disarm();
        if (made)
            ck_assert_msg(c.status == 200 || c.status >= 500,
                          "allocation %ld: %d", n, c.status);
        if (made && c.status == 200)
            ck_assert_msg(!strcmp(c.out, "hello guest") ||
                              (hit && !strcmp(c.out, "hello anonymous")),
                          "allocation %ld: %s", n, c.out);
        if (!hit) {
            ck_assert(made);
            ck_assert_str_eq(c.out, "hello guest");
            ck_assert(c.session[0]);
            break;
        }
        /* memory back: the same visitor is served at once */
        conn again = {.method = "GET", .target = "/", .cookie = c.session};
        ck_assert(serve(ctx, &again, allow, NULL));
        ck_assert_int_eq(again.status, 200);
    }
    ck_assert_int_gt(n, 0);
    guest_ctx_free(ctx);
}
END_TEST

/* The warnings logged: a login whose rows are committed when its cookie
 * cannot be set stands, and says so. */
static atomic_int cookie_warnings;

static void count_warnings(guest_log_level level, const char *message, void *ud)
{
    (void)ud;
    if (level == GUEST_LOG_WARNING && strstr(message, "cookie could not"))
        atomic_fetch_add(&cookie_warnings, 1);
}

static void with_log(guest_config *cfg)
{
    cfg->log = count_warnings;
    /* every attempt that fails would count against the limits */
    cfg->login_rate_limit = 0;
    cfg->login_address_rate_limit = 0;
}

START_TEST(a_login_fails_cleanly_at_every_allocation)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, with_log);
    tl_new_user(ctx, "ada", TL_PASSWORD);
    long n = 0;
    for (;; n++) {
        conn c = {.method = "POST",
                  .target = "/accounts/login/?next=/notes/",
                  .cookie = "csrftoken=" TL_CSRF,
                  .ctype = "application/x-www-form-urlencoded",
                  .body = "username=ada&password=" TL_PASSWORD
                          "&csrfmiddlewaretoken=" TL_CSRF};
        int warned = atomic_load(&cookie_warnings);
        arm(n);
        bool made = serve(ctx, &c, guest_login_view, NULL);
        bool hit = disarm();
        if (made)
            ck_assert_msg(c.status == 302 || c.status >= 500,
                          "allocation %ld: %d %s", n, c.status, c.out);
        if (made && c.status == 302)
            ck_assert_msg(c.session[0] ||
                              atomic_load(&cookie_warnings) == warned + 1,
                          "allocation %ld: no session, no warning", n);
        if (!hit) {
            ck_assert(made);
            ck_assert_int_eq(c.status, 302);
            break;
        }
    }
    ck_assert_int_gt(n, 10);
    guest_ctx_free(ctx);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("alloc_failures");
    TCase *t = tcase_create("every allocation");
    tcase_set_timeout(t, 240);
    tcase_add_test(t, creating_a_context_fails_cleanly_at_every_allocation);
    tcase_add_test(t, a_guests_request_fails_cleanly_at_every_allocation);
    tcase_add_test(t, a_login_fails_cleanly_at_every_allocation);
    suite_add_tcase(s, t);
    return tl_run(s);
}

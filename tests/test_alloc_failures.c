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
#include <unistd.h>

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
    const char *method, *target, *cookie, *ctype, *body, *accept;
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
    if (!strcasecmp(name, "Accept"))
        return c->accept;
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

/* ---- calls without a request ---- */

/* Each runs one call; @p verify (false while armed: the check framework
 * must not meet the failure) asserts its result. */
typedef guest_status (*call_fn)(guest_ctx *ctx, bool verify);

static guest_status c_metrics(guest_ctx *ctx, bool verify)
{
    char *text = NULL;
    size_t len = 0;
    guest_status st = guest_metrics_text(ctx, &text, &len, NULL);
    if (verify && st == GUEST_OK)
        ck_assert_uint_eq(strlen(text), len);
    free(text);
    return st;
}

static guest_status c_form(guest_ctx *ctx, bool verify)
{
    (void)ctx;
    guest_form *f = NULL;
    const char *q = "a=1&b=%20x+y&c=&d=%C3%A9";
    guest_status st = guest_form_parse(q, strlen(q), &f, NULL);
    if (verify && st == GUEST_OK)
        ck_assert_str_eq(guest_form_get(f, "b"), " x y");
    guest_form_free(f);
    return st;
}

static guest_status c_form_json(guest_ctx *ctx, bool verify)
{
    (void)ctx;
    guest_form *f = NULL;
    const char *j = "{\"a\":\"1\",\"b\":\"two\",\"c\":\"\"}";
    guest_status st = guest_form_parse_json(j, strlen(j), &f, NULL);
    if (verify && st == GUEST_OK)
        ck_assert_str_eq(guest_form_get(f, "b"), "two");
    guest_form_free(f);
    return st;
}

static bool count_guest(const guest_info *g, void *ud)
{
    (void)g;
    (*(int *)ud)++;
    return true;
}

static guest_status c_guests(guest_ctx *ctx, bool verify)
{
    int n = 0;
    guest_status st =
        guest_guests_list(ctx, false, 0, 0, count_guest, &n, NULL);
    if (verify && st == GUEST_OK)
        ck_assert_int_gt(n, 0);
    return st;
}

static char keys_path[] = "/tmp/guestuser-keys-XXXXXX";

static void write_keys(void)
{
    int fd = mkstemp(keys_path);
    ck_assert_int_ge(fd, 0);
    const char text[] = "# keys\nnewest-secret-key-of-32-bytes-or-more\n"
                        "older-secret-key-of-32-bytes-or-more!\n";
    ck_assert_int_eq(write(fd, text, sizeof text - 1),
                     (ssize_t)sizeof text - 1);
    close(fd);
}

static guest_status c_keys(guest_ctx *ctx, bool verify)
{
    (void)ctx;
    char **keys = NULL;
    guest_status st = guest_secret_keys_load(keys_path, &keys, NULL);
    if (verify && st == GUEST_OK)
        ck_assert_ptr_nonnull(keys[1]);
    guest_secret_keys_free(keys);
    return st;
}

/* An event loop's resolver: made, or refused whole. */
static guest_status c_resolver(guest_ctx *ctx, bool verify)
{
    guest_resolver *r = NULL;
    guest_status st = guest_resolver_new(ctx, &r);
    if (verify && st == GUEST_OK)
        ck_assert_ptr_nonnull(r);
    if (st != GUEST_OK)
        ck_assert_ptr_null(r);
    guest_resolver_free(r);
    return st;
}

START_TEST(library_calls_fail_cleanly_at_every_allocation)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, NULL);
    char cookie[256];
    tl_new_guest(ctx, cookie, sizeof cookie);
    write_keys();
    const call_fn calls[] = {c_metrics, c_form, c_form_json,
                             c_guests,  c_keys, c_resolver};
    for (size_t i = 0; i < sizeof calls / sizeof *calls; i++) {
        for (long n = 0;; n++) {
            arm(n);
            guest_status st = calls[i](ctx, false);
            bool hit = disarm();
            if (!hit) {
                ck_assert_msg(st == GUEST_OK, "call %zu: %s", i,
                              guest_strerror(st));
                break;
            }
            ck_assert_msg(st == GUEST_OK || st == GUEST_ERR_NOMEM,
                          "call %zu, allocation %ld: %s", i, n,
                          guest_strerror(st));
            ck_assert_int_eq(calls[i](ctx, true), GUEST_OK);
        }
    }
    unlink(keys_path);
    guest_ctx_free(ctx);
}
END_TEST

/* ---- each ready-made page ---- */

typedef struct page_case {
    guest_handler_fn fn;
    const char *method, *target, *body;
    bool json, user;
} page_case;

#define FORM "csrfmiddlewaretoken=" TL_CSRF

static const page_case pages[] = {
    {guest_login_view, "GET", "/accounts/login/?next=/x/", NULL, false, false},
    {guest_login_view, "GET", "/accounts/login/", NULL, true, false},
    {guest_login_view, "POST", "/accounts/login/",
     "username=nobody&password=wrong&" FORM, false, false},
    {guest_convert_view, "GET", "/convert/", NULL, false, false},
    {guest_convert_view, "GET", "/convert/", NULL, true, false},
    {guest_convert_view, "POST", "/convert/",
     "username=&password1=a&password2=b&" FORM, false, false},
    {guest_convert_view, "POST", "/convert/",
     "username=x&password1=a&password2=b&" FORM, true, false},
    {guest_password_change_view, "GET", "/accounts/password/change/", NULL,
     false, true},
    {guest_password_change_view, "POST", "/accounts/password/change/",
     "old_password=wrong&new_password1=a&new_password2=b&" FORM, true, true},
    {guest_password_reset_view, "GET", "/accounts/password/reset/", NULL, false,
     false},
    {guest_password_reset_view, "POST", "/accounts/password/reset/",
     "email=&" FORM, true, false},
    {guest_email_view, "GET", "/accounts/email/", NULL, false, true},
    {guest_email_view, "GET", "/accounts/email/", NULL, true, true},
    {guest_email_view, "POST", "/accounts/email/",
     "email=bad&password=wrong&" FORM, false, true},
    {guest_logout_view, "GET", "/accounts/logout/", NULL, false, true},
    {guest_convert_success_view, "GET", "/convert/success/", NULL, false, true},
};

static void page_request(guest_ctx *ctx, const page_case *p, conn *c,
                         const char *cookie, bool *made, bool *hit, long n)
{
    *c = (conn){.method = p->method,
                .target = p->target,
                .cookie = cookie,
                .ctype = p->body ? "application/x-www-form-urlencoded" : NULL,
                .accept = p->json ? "application/json" : NULL,
                .body = p->body};
    arm(n);
    *made = serve(ctx, c, p->fn, NULL);
    *hit = disarm();
}

START_TEST(every_page_renders_or_fails_cleanly_at_every_allocation)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, NULL);
    char guest[256], user[600], session[256];
    tl_new_guest(ctx, session, sizeof session);
    tl_cookie_header(guest, sizeof guest, session, true);
    tl_new_user(ctx, "bea", TL_PASSWORD);
    conn login = {.method = "POST",
                  .target = "/accounts/login/",
                  .cookie = "csrftoken=" TL_CSRF,
                  .ctype = "application/x-www-form-urlencoded",
                  .body = "username=bea&password=" TL_PASSWORD "&" FORM};
    ck_assert(serve(ctx, &login, guest_login_view, NULL));
    ck_assert_int_eq(login.status, 302);
    tl_cookie_header(user, sizeof user, login.session, true);
    for (size_t i = 0; i < sizeof pages / sizeof *pages; i++) {
        const page_case *p = &pages[i];
        const char *cookie = p->user ? user : guest;
        conn c;
        bool made, hit;
        page_request(ctx, p, &c, cookie, &made, &hit, -1);
        ck_assert(made && !hit);
        int expected = c.status;
        for (long n = 0;; n++) {
            page_request(ctx, p, &c, cookie, &made, &hit, n);
            if (!hit) {
                ck_assert_int_eq(c.status, expected);
                break;
            }
            if (made)
                ck_assert_msg(c.status == expected || c.status >= 500,
                              "%s %s, allocation %ld: %d, not %d", p->method,
                              p->target, n, c.status, expected);
        }
    }
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
    tcase_add_test(t, library_calls_fail_cleanly_at_every_allocation);
    tcase_add_test(t, every_page_renders_or_fails_cleanly_at_every_allocation);
    suite_add_tcase(s, t);
    return tl_run(s);
}

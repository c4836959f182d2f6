/* The demo's routes: the same paths as the reference's own test project,
 * so the two can be compared one to one. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "demo.h"
#include "layout.h"

static const char *const page_head =
    "<!doctype html><html><head><meta charset=\"utf-8\">"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    "<title>libguestuser demo</title></head><body>";
static const char *const page_tail = "</body></html>\n";

static void html_page(guest_req *req, const char *before, const char *text,
                      const char *after)
{
    guest_res_set_status(req, 200);
    demo_header(req, "Content-Type", "text/html; charset=utf-8");
    guest_res_printf(req, "%s%s", page_head, before);
    guest_res_write_html(req, text);
    guest_res_printf(req, "%s%s", after, page_tail);
}

static const guest_user *current_user(guest_req *req)
{
    return demo_current_user(req);
}

GUEST_ALLOW(allow_guest_user)
{
    html_page(req, "<p>Hello, ", guest_user_name(current_user(req)), "!</p>");
}

GUEST_REQUIRED(guest_user_required)
{
    html_page(req, "<p>Only guests see this page, ",
              guest_user_name(current_user(req)), ".</p>");
}

REGULAR_REQUIRED(regular_user_required)
{
    html_page(req, "<p>Only registered users see this page, ",
              guest_user_name(current_user(req)), ".</p>");
}

/* --metrics-token-file's token (NULL: none), a copy this file owns. */
static char *metrics_token;

int demo_metrics_set_token(const char *token)
{
    if (metrics_token) {
        explicit_bzero(metrics_token, strlen(metrics_token));
        free(metrics_token);
        metrics_token = NULL;
    }
    if (token && !(metrics_token = strdup(token)))
        return -1;
    return 0;
}

/* 127.0.0.0/8 or ::1, as guest_req_client_addr() writes them (an
 * IPv4-mapped peer already as IPv4). */
static bool is_loopback(const char *addr)
{
    struct in_addr v4;
    struct in6_addr v6;
    if (!addr)
        return false;
    if (inet_pton(AF_INET, addr, &v4) == 1)
        return (ntohl(v4.s_addr) >> 24) == 127;
    return inet_pton(AF_INET6, addr, &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}

/* Whether @p given is the token. The time taken depends on the token's
 * length and the caller's own input only, never on how many leading
 * characters matched, so timing cannot guess it piece by piece. */
static bool token_matches(const char *given, size_t n, const char *token)
{
    size_t t = strlen(token);
    volatile unsigned char diff = n != t;
    for (size_t i = 0; i < t; i++)
        diff |= (unsigned char)(token[i] ^ (i < n ? given[i] : 0));
    return diff == 0;
}

/* "Authorization: Bearer <token>" with the configured token. */
static bool has_token(const guest_req *req)
{
    const char *h = guest_req_header(req, "Authorization");
    if (!metrics_token || !h || strncasecmp(h, "Bearer ", 7) != 0)
        return false;
    h += 7;
    while (*h == ' ' || *h == '\t')
        h++;
    size_t n = strlen(h);
    while (n && (h[n - 1] == ' ' || h[n - 1] == '\t'))
        n--;
    return n > 0 && token_matches(h, n, metrics_token);
}

/* Who may read the counters: a client on this host that came straight
 * to the demo, or anyone with the token. The client is the address the
 * library decided on, so behind trusted proxies it is the visitor's, not
 * the proxy's. A request carrying any forwarding header came through a
 * proxy even when no proxy is trusted (then the peer is the proxy, on
 * loopback for every visitor of an nginx on this host): loopback counts
 * only without one. */
static bool metrics_allowed(const guest_req *req)
{
    if (has_token(req))
        return true;
    return is_loopback(guest_req_client_addr(req)) &&
           !guest_req_header(req, "X-Forwarded-For") &&
           !guest_req_header(req, "Forwarded") &&
           !guest_req_header(req, "X-Real-IP");
}

/* Prometheus scrapes this; no guard, so a scrape makes no guest. Refused
 * with the same 404 as an unknown path, so a stranger cannot tell the page
 * exists (docs/operations.md). */
static void metrics(guest_req *req, void *userdata)
{
    (void)userdata;
    if (!metrics_allowed(req)) {
        guest_res_send(req, 404, "text/plain; charset=utf-8", "Not Found\n");
        return;
    }
    char *text = NULL;
    size_t len = 0;
    if (guest_metrics_text(guest_req_ctx(req), &text, &len, NULL) != GUEST_OK) {
        guest_res_send(req, 500, "text/plain; charset=utf-8",
                       "Internal Server Error\n");
        return;
    }
    guest_res_set_status(req, 200);
    demo_header(req, "Content-Type", "text/plain; version=0.0.4");
    demo_header(req, "Cache-Control", "no-store");
    guest_res_write(req, text, len);
    free(text);
}

/* No guard and no database: the floor a benchmark compares the guarded
 * pages with. */
static void hello(guest_req *req, void *userdata)
{
    (void)userdata;
    guest_res_send(req, 200, "text/plain; charset=utf-8", "hello\n");
}

static const guest_route routes[] = {
    {"GET", "/allow_guest_user/", allow_guest_user, NULL},
    {"GET", "/guest_user_required/", guest_user_required, NULL},
    {"GET", "/regular_user_required/", regular_user_required, NULL},
    {"GET", "/whoami", guest_whoami_view, NULL},
    {"GET", "/healthz", guest_healthz_view, NULL},
    {"GET", "/metrics", metrics, NULL},
    {"GET", "/hello", hello, NULL},
    /* accounts: account_routes.c and the library's handlers,
     * mounted for every method so they answer 405 themselves */
    {"GET", "/", demo_home, NULL},
    {NULL, "/convert/", guest_convert_view, (void *)&demo_views},
    {NULL, "/convert/success/", guest_convert_success_view,
     (void *)&demo_views},
    {NULL, "/accounts/login/", guest_login_view, (void *)&demo_views},
    {"GET", "/accounts/profile/", demo_profile, NULL},
    {NULL, "/accounts/password/", guest_password_change_view,
     (void *)&demo_views},
    {NULL, "/accounts/logout/", guest_logout_view, NULL},
    /* e-mail: password reset and the address (docs/email.md); the links
     * in the mails lead to the two TOKEN pages */
    {NULL, "/accounts/password/reset/", guest_password_reset_view,
     (void *)&demo_views},
    {NULL, "/accounts/password/reset/*", guest_password_reset_confirm_view,
     (void *)&demo_views},
    {NULL, "/accounts/email/", guest_email_view, (void *)&demo_views},
    {NULL, "/accounts/email/verify/*", guest_email_verify_view,
     (void *)&demo_views},
    /* "Continue with NAME" (oidc.c): the --oidc providers' login and
     * callback views, and the linked identities; 404 without --oidc */
    {NULL, "/accounts/oidc/*", demo_oidc_routes, NULL},
    {NULL, "/accounts/identities/", demo_identities, NULL},
    /* the notes application: notes.c; each answers 405 itself */
    {NULL, "/notes/", demo_notes, NULL},
    {NULL, "/notes/delete/", demo_notes_delete, NULL},
    {NULL, NULL, NULL, NULL},
};

const guest_route *demo_routes(void)
{
    return routes;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* @p in with control bytes as \xHH, cut to fit @p size. */
static void log_safe(const char *in, char *out, size_t size)
{
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
        if (*p >= 0x20 && *p != 0x7f) {
            if (o + 1 >= size)
                break;
            out[o++] = (char)*p;
        } else {
            if (o + 4 >= size)
                break;
            snprintf(out + o, 5, "\\x%02x", *p);
            o += 4;
        }
    }
    out[o] = '\0';
}

/* The pages that need nothing but the visitor's session, which the
 * event-loop adapter has looked up already: with --server evhttp they run
 * on the loop's thread. Everything else (statements, hashing, mail, the
 * identity provider) is deferred to a worker first. */
static bool runs_on_loop(const guest_req *req)
{
    static const char *const quick[] = {"/allow_guest_user/",
                                        "/guest_user_required/",
                                        "/regular_user_required/",
                                        "/whoami",
                                        "/hello",
                                        NULL};
    const char *path = guest_req_path(req);
    for (size_t i = 0; path && quick[i]; i++)
        if (!strcmp(path, quick[i]))
            return true;
    return false;
}

void demo_handler(guest_req *req, void *userdata)
{
    (void)userdata;
    if (!runs_on_loop(req) && guest_req_defer(req))
        return;
    double t0 = now_ms();
    guest_routes_dispatch(req, demo_routes());
    /* A guard deferred it (to a worker) or parked it (while a new
     * visitor's guest is made): the line is logged when it runs again. */
    if (guest_req_deferred(req))
        return;
    const char *addr = guest_req_client_addr(req);
    /* The target and method are the client's bytes: escape what a terminal
     * would act on. */
    char method[32], target[512];
    log_safe(guest_req_method(req), method, sizeof method);
    log_safe(guest_req_target(req), target, sizeof target);
    fprintf(stderr, "%s %s %s %d %.1fms\n", addr ? addr : "-", method, target,
            guest_res_status_code(req), now_ms() - t0);
}

/* The conformance kit's route table: an application of the public API, like
 * any other, whose pages the guestuser-conformance program checks through
 * an adapter (tools/conformance/). */
#include <stdio.h>
#include <string.h>

#include <guestuser/conformance.h>

void guest_conformance_config(guest_config *cfg)
{
    if (!cfg)
        return;
    guest_config keep = *cfg;
    guest_config_init(cfg);
    cfg->db_conninfo = keep.db_conninfo;
    cfg->db_schema = keep.db_schema;
    cfg->db_pool_size = keep.db_pool_size;
    cfg->db_timeout_ms = keep.db_timeout_ms;
    cfg->log = keep.log;
    cfg->log_userdata = keep.log_userdata;
    cfg->hash_concurrency = keep.hash_concurrency;
    cfg->hash_wait_ms = keep.hash_wait_ms;
    cfg->max_body_size = GUEST_CONFORMANCE_MAX_BODY;
    cfg->password_iterations = 1000;
}

/* A header the pages need: a 500 shows when the adapter refused it. */
static void header(guest_req *req, const char *name, const char *value)
{
    if (guest_res_add_header(req, name, value) != GUEST_OK)
        guest_res_set_status(req, 500);
}

static const guest_user *current_user(guest_req *req)
{
    const guest_user *u = NULL;
    if (guest_req_user(req, &u, NULL) != GUEST_OK)
        return NULL;
    return u;
}

static void page(guest_req *req, const char *before, const char *after)
{
    guest_res_set_status(req, 200);
    header(req, "Content-Type", "text/html; charset=utf-8");
    guest_res_printf(req, "<!doctype html><title>conformance</title>%s",
                     before);
    guest_res_write_html(req, guest_user_name(current_user(req)));
    guest_res_printf(req, "%s\n", after);
}

static GUEST_ALLOW(allow_page)
{
    page(req, "<p>Hello, ", "!</p>");
}

static GUEST_REQUIRED(guest_only_page)
{
    page(req, "<p>Only guests see this page, ", ".</p>");
}

static REGULAR_REQUIRED(regular_page)
{
    page(req, "<p>Only registered users see this page, ", ".</p>");
}

static void json_start(guest_req *req)
{
    guest_res_set_status(req, 200);
    header(req, "Content-Type", "application/json");
    header(req, "Cache-Control", "no-store");
}

/* What the program reads first: the kit's version and the settings the
 * checks depend on, so a server configured otherwise is told so. */
static void info(guest_req *req, void *userdata)
{
    (void)userdata;
    const guest_config *c = guest_ctx_config(guest_req_ctx(req));
    json_start(req);
    guest_res_printf(req,
                     "{\"kit\":%d,\"library\":\"%s\",\"max_body_size\":%zu,"
                     "\"max_age\":%lld,\"signed\":%s,\"allowed_hosts\":%s,"
                     "\"cookie\":",
                     GUEST_CONFORMANCE_KIT_VERSION, guest_version(),
                     c->max_body_size, (long long)c->max_age,
                     c->secret_keys ? "true" : "false",
                     c->allowed_hosts ? "true" : "false");
    guest_res_write_json_string(req, c->cookie_name);
    guest_res_printf(req, ",\"csrf_cookie\":");
    guest_res_write_json_string(req, c->csrf_cookie_name);
    guest_res_printf(req, "}");
}

/* The routes below that block (a statement, a hash) move to a worker first
 * when the adapter tries handlers on its event loop (guestuser/loop.h);
 * elsewhere guest_req_defer() is false and they run as they are. */
static void stats(guest_req *req, void *userdata)
{
    (void)userdata;
    if (guest_req_defer(req))
        return;
    guest_stats s;
    if (guest_stats_get(guest_req_ctx(req), 0, &s, NULL) != GUEST_OK) {
        guest_res_send(req, 503, "text/plain; charset=utf-8",
                       "database unavailable\n");
        return;
    }
    json_start(req);
    guest_res_printf(req, "{\"users\":%llu,\"guests\":%llu}",
                     (unsigned long long)s.users, (unsigned long long)s.guests);
}

/* Two Set-Cookie lines in one response: the session of a new guest and the
 * CSRF cookie; the body is the CSRF token for the next form. */
static GUEST_ALLOW(cookies_page)
{
    const char *token = NULL;
    if (guest_csrf_token(req, &token) != GUEST_OK) {
        guest_res_send(req, 500, "text/plain", "no CSRF token\n");
        return;
    }
    guest_res_set_status(req, 200);
    header(req, "Content-Type", "text/plain");
    header(req, "Cache-Control", "no-store");
    guest_res_printf(req, "%s", token);
}

/* A state-changing request: 403 without a valid CSRF token. */
static void csrf_post(guest_req *req, void *userdata)
{
    (void)userdata;
    guest_form *form = NULL;
    guest_error err = {0};
    guest_status st = guest_req_form(req, &form, &err);
    if (st == GUEST_ERR_TOO_LARGE) {
        guest_res_send(req, 413, "text/plain", "Payload Too Large\n");
        return;
    }
    if (st != GUEST_OK) {
        guest_res_send(req, 400, "text/plain", "Bad Request\n");
        return;
    }
    if (guest_csrf_check_form(req, form, &err) != GUEST_OK) {
        guest_res_set_status(req, 403);
        header(req, "Content-Type", "text/plain");
        guest_res_printf(req, "Forbidden: %s\n", err.message);
    } else {
        const char *v = guest_form_get(form, "value");
        guest_res_set_status(req, 200);
        header(req, "Content-Type", "text/plain");
        guest_res_printf(req, "ok %s\n", v ? v : "");
    }
    guest_form_free(form);
}

/* What the adapter passed in, one line each. */
static void echo(guest_req *req, void *userdata)
{
    (void)userdata;
    const char *data = NULL;
    size_t len = 0;
    if (guest_req_body(req, &data, &len) != GUEST_OK) {
        guest_res_send(req, 500, "text/plain", "no body\n");
        return;
    }
    const char *x = guest_req_header(req, "X-Test");
    const char *cookie = guest_req_header(req, "Cookie");
    const char *addr = guest_req_client_addr(req);
    guest_res_set_status(req, 200);
    header(req, "Content-Type", "text/plain");
    guest_res_printf(req,
                     "method=%s\ntarget=%s\npath=%s\naddr=%s\nx-test=%s\n"
                     "cookie=%s\nhttps=%d\nbody=%zu:",
                     guest_req_method(req), guest_req_target(req),
                     guest_req_path(req), addr ? addr : "(null)",
                     x ? x : "(null)", cookie ? cookie : "(null)",
                     guest_req_is_https(req), len);
    guest_res_write(req, data, len);
}

static void no_content(guest_req *req, void *userdata)
{
    (void)userdata;
    guest_res_set_status(req, 204);
}

/* A handler that tries to frame its own body and close the connection: the
 * adapter frames the answer and honours the close. */
static void framing(guest_req *req, void *userdata)
{
    (void)userdata;
    guest_res_send(req, 200, "text/plain", "abc");
    /* whether the adapter takes or refuses them does not matter */
    bool taken = guest_res_add_header(req, "Content-Length", "999") == GUEST_OK;
    taken =
        guest_res_add_header(req, "Connection", "close") == GUEST_OK || taken;
    (void)taken;
}

/* 100 headers; the body says how many the adapter took. */
static void many_headers(guest_req *req, void *userdata)
{
    (void)userdata;
    int added = 0;
    for (int i = 0; i < 100; i++) {
        char name[16];
        snprintf(name, sizeof name, "X-H%d", i);
        if (guest_res_add_header(req, name, "v") == GUEST_OK)
            added++;
    }
    guest_res_printf(req, "%d", added);
}

/* What a failed login costs the thread that runs it: one hash at the
 * library's default cost, which holds that thread for most of a second.
 * The responsiveness check sends several and /healthz beside them. */
static void hash(guest_req *req, void *userdata)
{
    (void)userdata;
    if (guest_req_defer(req))
        return;
    char out[GUEST_PASSWORD_HASH_BUF];
    guest_status st = guest_password_hash(
        "conformance", GUEST_CONFORMANCE_HASH_ITERATIONS, out, sizeof out);
    guest_res_send(req, st == GUEST_OK ? 200 : 500, "text/plain; charset=utf-8",
                   st == GUEST_OK ? "hashed\n" : "hash failed\n");
}

static const guest_route routes[] = {
    {"GET", "/conformance", info, NULL},
    {"GET", "/conformance/stats", stats, NULL},
    {"GET", "/allow_guest_user/", allow_page, NULL},
    {"GET", "/guest_user_required/", guest_only_page, NULL},
    {"GET", "/regular_user_required/", regular_page, NULL},
    {"GET", "/whoami", guest_whoami_view, NULL},
    {"GET", "/cookies/", cookies_page, NULL},
    {"POST", "/csrf/", csrf_post, NULL},
    {NULL, "/echo", echo, NULL},
    {NULL, "/echo/*", echo, NULL},
    {"GET", "/no-content", no_content, NULL},
    {"GET", "/framing", framing, NULL},
    {"GET", "/many-headers", many_headers, NULL},
    {"GET", "/healthz", guest_healthz_view, NULL},
    {"POST", "/conformance/hash", hash, NULL},
    /* mounted for every method: the views answer 405 themselves */
    {NULL, "/convert/", guest_convert_view, NULL},
    {NULL, "/convert/success/", guest_convert_success_view, NULL},
    {NULL, "/accounts/login/", guest_login_view, NULL},
    {NULL, "/accounts/logout/", guest_logout_view, NULL},
    {NULL, NULL, NULL, NULL},
};

const guest_route *guest_conformance_routes(void)
{
    return routes;
}

void guest_conformance_handler(guest_req *req, void *userdata)
{
    (void)userdata;
    guest_routes_dispatch(req, routes);
}

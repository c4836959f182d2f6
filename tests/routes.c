#include "routes.h"

#include <check.h>

/* Anonymous when the lookup fails: the pages show "" then. */
static const guest_user *current_user(guest_req *req)
{
    const guest_user *u = NULL;
    if (guest_req_user(req, &u, NULL) != GUEST_OK)
        return NULL;
    return u;
}

/* A header the test pages need; a 500 shows when it is missing. */
static void header(guest_req *req, const char *name, const char *value)
{
    if (guest_res_add_header(req, name, value) != GUEST_OK)
        guest_res_set_status(req, 500);
}

static void page(guest_req *req, const char *before, const char *after)
{
    guest_res_set_status(req, 200);
    header(req, "Content-Type", "text/html; charset=utf-8");
    guest_res_printf(req, "<!doctype html><title>test</title>%s", before);
    guest_res_write_html(req, guest_user_name(current_user(req)));
    guest_res_printf(req, "%s\n", after);
}

/* The guard macros define external functions: tl_ names keep them apart
 * from the demo's, which the demo tests link too. */
GUEST_ALLOW(tl_allow_page)
{
    page(req, "<p>Hello, ", "!</p>");
}

GUEST_REQUIRED(tl_guest_page)
{
    page(req, "<p>Only guests see this page, ", ".</p>");
}

REGULAR_REQUIRED(tl_regular_page)
{
    page(req, "<p>Only registered users see this page, ", ".</p>");
}

void tl_echo(guest_req *req, void *userdata)
{
    (void)userdata;
    const char *data;
    size_t len;
    ck_assert_int_eq(guest_req_body(req, &data, &len), GUEST_OK);
    const char *x = guest_req_header(req, "X-Test");
    const char *addr = guest_req_client_addr(req);
    guest_res_set_status(req, 200);
    header(req, "Content-Type", "text/plain");
    guest_res_printf(req,
                     "method=%s\ntarget=%s\npath=%s\naddr=%s\nx-test=%s\n"
                     "https=%d\nbody=%zu:",
                     guest_req_method(req), guest_req_target(req),
                     guest_req_path(req), addr ? addr : "(null)",
                     x ? x : "(null)", guest_req_is_https(req), len);
    guest_res_write(req, data, len);
}

static const guest_route routes[] = {
    {"GET", "/allow_guest_user/", tl_allow_page, NULL},
    {"GET", "/guest_user_required/", tl_guest_page, NULL},
    {"GET", "/regular_user_required/", tl_regular_page, NULL},
    {"GET", "/whoami", guest_whoami_view, NULL},
    {"GET", "/healthz", guest_healthz_view, NULL},
    {NULL, "/echo", tl_echo, NULL},
    /* mounted for every method: the views answer 405 themselves */
    {NULL, "/convert/", guest_convert_view, NULL},
    {NULL, "/convert/success/", guest_convert_success_view, NULL},
    {NULL, "/accounts/login/", guest_login_view, NULL},
    {NULL, "/accounts/logout/", guest_logout_view, NULL},
    {NULL, NULL, NULL, NULL},
};

const guest_route *tl_routes(void)
{
    return routes;
}

GUEST_ROUTES(tl_routes_handler, routes)

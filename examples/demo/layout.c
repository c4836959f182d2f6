/* The demo's page frame. The stylesheet is inline so every page is one
 * response and the demo serves no static files. */
#include <time.h>

#include "demo.h"
#include "layout.h"

static const char *const stylesheet =
    "*{box-sizing:border-box}"
    "body{margin:0;font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,"
    "sans-serif;color:#1f2933;background:#f4f5f7}"
    "a{color:#1d5bbf}"
    ".top{background:#243b53;color:#fff}"
    ".top .bar{max-width:44rem;margin:0 auto;padding:.6rem 1rem;display:flex;"
    "flex-wrap:wrap;gap:.4rem 1rem;align-items:center}"
    ".top a,.top button.link{color:#fff}"
    ".top .brand{font-weight:700;text-decoration:none;margin-right:auto}"
    ".top .who{opacity:.85;overflow-wrap:anywhere}"
    ".top form{display:inline;margin:0}"
    "main{max-width:44rem;margin:0 auto;padding:1rem}"
    "h1{font-size:1.5rem;margin:.5rem 0 1rem}"
    "textarea{display:block;width:100%;min-height:6rem;font:inherit;"
    "padding:.5rem;border:1px solid #9aa5b1;border-radius:4px;"
    "background:#fff}"
    "button{font:inherit;padding:.45rem 1rem;border:0;border-radius:4px;"
    "background:#1d5bbf;color:#fff;cursor:pointer}"
    "button.link{background:none;padding:0;text-decoration:underline}"
    "button.delete{background:#fff;color:#b42318;border:1px solid #e4a9a3;"
    "padding:.2rem .6rem;font-size:.9rem}"
    ".callout{background:#fff6d6;border:1px solid #e8cf74;border-radius:6px;"
    "padding:.6rem .8rem;margin:0 0 1rem}"
    ".error{background:#fdecea;border:1px solid #e4a9a3;border-radius:6px;"
    "padding:.6rem .8rem;color:#8a1c12}"
    ".notes{list-style:none;padding:0;margin:1.5rem 0 0}"
    ".note{background:#fff;border:1px solid #d9dee4;border-radius:6px;"
    "padding:.75rem;margin:0 0 .75rem;display:flex;gap:.75rem;"
    "align-items:flex-start}"
    ".note .text{flex:1;min-width:0}"
    ".note p{margin:0;white-space:pre-wrap;overflow-wrap:anywhere}"
    ".note time{display:block;color:#52606d;font-size:.85rem}"
    ".muted{color:#52606d}"
    ".providers{margin:1.5rem 0 0}.providers form{margin:0 0 .5rem}"
    ".pager{display:flex;flex-wrap:wrap;gap:.5rem 1.5rem;margin:1rem 0}"
    ".pager #older-notes{margin-left:auto}"
    "@media (max-width:32rem){body{font-size:15px}"
    ".note{flex-direction:column}.top .brand{flex-basis:100%}}";

static void logout_button(guest_req *req)
{
    const char *token = NULL;
    if (guest_csrf_token(req, &token) != GUEST_OK)
        return;
    guest_res_printf(req, "<form method=\"post\" action=\"/accounts/logout/\">"
                          "<input type=\"hidden\" name=\"" GUEST_CSRF_FIELD
                          "\" value=\"");
    guest_res_write_html(req, token);
    guest_res_printf(req, "\"><button type=\"submit\" class=\"link\">"
                          "Log out</button></form>");
}

/* How long a guest has left before cleanup deletes the account, in whole
 * days rounded up, under the page's heading. A minute over whole days
 * counts as those days: the creation time is the database's clock and
 * time() a coarse one that can lag it by a tick, so a guest made this
 * second could read as a second over max_age and a day too many. */
static void guest_expiry(guest_req *req, const guest_user *u)
{
    long long left = (long long)(guest_user_expires_at(u) - time(NULL));
    long long days = left > 60 ? (left + 86399 - 60) / 86400 : left > 0;
    guest_res_printf(req,
                     "<p class=\"muted\" id=\"guest-expiry\">Your guest "
                     "account expires in %lld day%s unless you sign up.</p>\n",
                     days, days == 1 ? "" : "s");
}

/* The document up to the page's heading, without touching status or
 * headers: shared by demo_page_start() and the library pages' frame. */
static void page_open(guest_req *req, const char *title)
{
    const guest_user *u = NULL;
    if (guest_req_user(req, &u, NULL) != GUEST_OK)
        u = NULL; /* database down: the page still renders, anonymous */
    const guest_config *c = guest_ctx_config(guest_req_ctx(req));

    guest_res_printf(req, "<!doctype html>\n<html lang=\"en\"><head>"
                          "<meta charset=\"utf-8\"><meta name=\"viewport\" "
                          "content=\"width=device-width, initial-scale=1\">"
                          "<title>");
    guest_res_write_html(req, title);
    guest_res_printf(req,
                     " &middot; libguestuser demo</title><style>%s</style>"
                     "</head>\n<body><header class=\"top\"><nav "
                     "class=\"bar\"><a class=\"brand\" href=\"/\">"
                     "libguestuser demo</a><a href=\"/notes/\">Notes</a>",
                     stylesheet);
    if (guest_is_guest_user(u)) {
        guest_res_printf(req, "<span class=\"who\">Guest ");
        guest_res_write_html(req, guest_user_name(u));
        guest_res_printf(req, "</span><a href=\"");
        guest_res_write_html(req, c->convert_url);
        guest_res_printf(req, "\">Sign up</a><a href=\"");
        guest_res_write_html(req, c->login_url);
        guest_res_printf(req, "\">Log in</a>");
    } else if (u) {
        guest_res_printf(req, "<span class=\"who\">Signed in as ");
        guest_res_write_html(req, guest_user_name(u));
        guest_res_printf(req, "</span>");
        logout_button(req);
    } else {
        guest_res_printf(req, "<a href=\"");
        guest_res_write_html(req, c->login_url);
        guest_res_printf(req, "\">Log in</a>");
    }
    guest_res_printf(req, "</nav></header>\n<main><h1>");
    guest_res_write_html(req, title);
    guest_res_printf(req, "</h1>\n");
    if (guest_is_guest_user(u))
        guest_expiry(req, u);
}

void demo_header(guest_req *req, const char *name, const char *value)
{
    if (guest_res_add_header(req, name, value) != GUEST_OK)
        guest_res_set_status(req, 500);
}

void demo_redirect(guest_req *req, const char *location)
{
    if (guest_res_redirect(req, location) != GUEST_OK)
        demo_message_page(req, 500, "Internal Server Error",
                          "The page could not be redirected.", "/", "Home");
}

const guest_user *demo_current_user(guest_req *req)
{
    const guest_user *u = NULL;
    if (guest_req_user(req, &u, NULL) != GUEST_OK)
        return NULL;
    return u;
}

void demo_page_start(guest_req *req, int status, const char *title)
{
    guest_res_set_status(req, status);
    demo_header(req, "Content-Type", "text/html; charset=utf-8");
    demo_header(req, "Cache-Control", "no-store");
    page_open(req, title);
}

/* The library's convert and login pages inside the demo's frame; the
 * library has set the status and headers already. The sign-up and login
 * forms are followed by a "Continue with NAME" button per --oidc
 * provider, carrying the same `next`. */
static guest_status render_framed(guest_req *req, const guest_page *page,
                                  void *userdata)
{
    (void)userdata;
    page_open(req, guest_page_title(page->kind));
    guest_status st = guest_render_default_content(req, page);
    if (st == GUEST_OK &&
        (page->kind == GUEST_PAGE_CONVERT || page->kind == GUEST_PAGE_LOGIN))
        demo_oidc_buttons(req, page->next);
    if (st == GUEST_OK && page->kind == GUEST_PAGE_LOGIN)
        st = guest_res_printf(req, "<p><a id=\"password-reset\" "
                                   "href=\"/accounts/password/reset/\">"
                                   "Forgot your password?</a></p>\n");
    demo_page_end(req);
    return st;
}

const guest_views demo_views = {.render = render_framed};

void demo_page_end(guest_req *req)
{
    guest_res_printf(req, "</main></body></html>\n");
}

void demo_message_page(guest_req *req, int status, const char *title,
                       const char *message, const char *back,
                       const char *back_label)
{
    demo_page_start(req, status, title);
    guest_res_printf(req, "<p class=\"error\">");
    guest_res_write_html(req, message);
    guest_res_printf(req, "</p>\n");
    if (back) {
        guest_res_printf(req, "<p><a href=\"");
        guest_res_write_html(req, back);
        guest_res_printf(req, "\">");
        guest_res_write_html(req, back_label ? back_label : back);
        guest_res_printf(req, "</a></p>\n");
    }
    demo_page_end(req);
}

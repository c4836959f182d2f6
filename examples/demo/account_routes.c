/* The demo's account pages: a home page that knows the three kinds of
 * visitor, and a profile page for registered users. Signing up, logging in
 * and out and changing the password are the library's ready-made handlers
 * (see routes.c). */
#include <string.h>

#include "demo.h"
#include "layout.h"

/* The shared layout (layout.c); its top bar carries the Log out button. */
static void page_start(guest_req *req, const char *title)
{
    demo_page_start(req, 200, title);
}

static void page_end(guest_req *req)
{
    demo_page_end(req);
}

void demo_home(guest_req *req, void *userdata)
{
    (void)userdata;
    const guest_user *u = NULL;
    if (guest_req_user(req, &u, NULL) != GUEST_OK) {
        /* Who the visitor is stays unknown: saying nothing beats greeting
         * a signed-in user as a stranger. */
        demo_message_page(req, 503, "Service Unavailable",
                          "The site cannot reach its database right now. "
                          "Please try again in a moment.",
                          NULL, NULL);
        return;
    }
    const guest_config *c = guest_ctx_config(guest_req_ctx(req));
    page_start(req, "libguestuser demo");
    if (guest_is_guest_user(u)) {
        /* The seed's is_guest_user example. */
        guest_res_printf(req, "<p>You are browsing as a guest, <strong>");
        guest_res_write_html(req, guest_user_name(u));
        guest_res_printf(req, "</strong>.</p>\n<p><a href=\"");
        guest_res_write_html(req, c->convert_url);
        guest_res_printf(req, "\">Sign up and save your work!</a></p>\n");
    } else if (u) {
        guest_res_printf(req, "<p>Logged in as <strong>");
        guest_res_write_html(req, guest_user_name(u));
        guest_res_printf(req, "</strong>. <a href=\"/accounts/profile/\">"
                              "Your profile</a></p>\n");
    } else {
        guest_res_printf(req, "<p><a href=\"/allow_guest_user/\">Start using "
                              "the site</a> (no sign-up needed), or <a "
                              "href=\"");
        guest_res_write_html(req, c->login_url);
        guest_res_printf(req, "\">log in</a>.</p>\n");
    }
    guest_res_printf(req, "%s",
                     guest_is_regular_user(u)
                         ? "<p><a href=\"/notes/\">Your notes</a></p>\n"
                         : "<p><a href=\"/notes/\">Notes</a>: write them "
                           "right away, no sign-up needed.</p>\n");
    page_end(req);
}

/* One <li> per identity linked to the user. */
struct identity_list {
    guest_req *req;
    int n;
};

static bool identity_item(const guest_identity_info *id, void *userdata)
{
    struct identity_list *l = userdata;
    guest_req *req = l->req;
    l->n++;
    guest_res_printf(req, "<li class=\"identity\"><code>");
    guest_res_write_html(req, id->issuer);
    guest_res_printf(req, "</code> as <code>");
    guest_res_write_html(req, id->subject);
    guest_res_printf(req, "</code>");
    if (*id->email) {
        guest_res_printf(req, " (");
        guest_res_write_html(req, id->email);
        guest_res_printf(req, "%s)", id->email_verified ? "" : ", unverified");
    }
    guest_res_printf(req, "</li>\n");
    return true;
}

REGULAR_REQUIRED(demo_profile)
{
    const guest_user *u = demo_current_user(req);
    guest_ctx *ctx = guest_req_ctx(req);
    bool has_password = true;
    if (guest_user_lookup(ctx, guest_user_name(u), &(int64_t){0}, &has_password,
                          NULL) != GUEST_OK)
        has_password = true; /* the usual wording */
    page_start(req, "Your profile");
    guest_res_printf(req, "<p>Username: <strong>");
    guest_res_write_html(req, guest_user_name(u));
    guest_res_printf(req, "</strong> (user %lld)</p>\n",
                     (long long)guest_user_id(u));
    /* The address (docs/email.md) and whether it is verified. */
    char email[GUEST_EMAIL_MAX + 1] = "";
    bool verified = false;
    if (guest_user_email(ctx, guest_user_id(u), email, sizeof email, &verified,
                         NULL) != GUEST_OK)
        guest_res_printf(req, "<p id=\"email\">Email: (cannot be read right "
                              "now)");
    else if (!*email)
        guest_res_printf(req, "<p id=\"email\">Email: none");
    else {
        guest_res_printf(req, "<p id=\"email\">Email: <strong>");
        guest_res_write_html(req, email);
        guest_res_printf(req, "</strong> (%s)",
                         verified ? "verified" : "not verified");
    }
    guest_res_printf(req, " <a href=\"/accounts/email/\">Change your "
                          "address</a></p>\n");
    /* The identity providers this account signs in with. */
    guest_res_printf(req, "<h2>Signed in with</h2>\n<ul id=\"identities\">\n");
    struct identity_list l = {.req = req};
    if (guest_identities_list(ctx, guest_user_id(u), identity_item, &l, NULL) !=
        GUEST_OK)
        guest_res_printf(req, "<li>(the list cannot be read right now)</li>\n");
    else if (l.n == 0)
        guest_res_printf(req, "<li id=\"no-identities\">No identity "
                              "provider: your password only</li>\n");
    guest_res_printf(req, "</ul>\n");
    if (demo_oidc_enabled())
        guest_res_printf(req, "<p><a href=\"/accounts/identities/\">Manage "
                              "linked identities</a></p>\n");
    guest_res_printf(req,
                     "<p><a href=\"/accounts/password/\">%s</a></p>\n"
                     "<p><a href=\"/\">Home</a></p>\n",
                     has_password ? "Change your password"
                                  : "Set a password (you have none yet)");
    page_end(req);
}

int demo_parse_password_checks(const char *list, unsigned *checks)
{
    static const struct {
        const char *name;
        unsigned bit;
    } words[] = {{"all", GUEST_PW_CHECK_ALL},
                 {"none", 0},
                 {"min-length", GUEST_PW_CHECK_MIN_LENGTH},
                 {"numeric", GUEST_PW_CHECK_NUMERIC},
                 {"similarity", GUEST_PW_CHECK_SIMILARITY},
                 {"common", GUEST_PW_CHECK_COMMON}};
    unsigned bits = 0;
    const char *p = list;
    for (;;) {
        size_t n = strcspn(p, ",");
        size_t i = 0;
        while (i < sizeof words / sizeof *words &&
               !(strlen(words[i].name) == n && !strncmp(words[i].name, p, n)))
            i++;
        if (i == sizeof words / sizeof *words)
            return -1;
        bits |= words[i].bit;
        if (!p[n])
            break;
        p += n + 1;
    }
    *checks = bits;
    return 0;
}

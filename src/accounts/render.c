/* The built-in HTML of the convert, convert-success, login, password
 * change, password reset and e-mail pages. */
#include <string.h>

#include "accounts/accounts.h"

/* Writes accumulate their first failure, so a page reads as straight-line
 * markup instead of a check after every fragment. */
typedef struct out {
    guest_req *req;
    guest_status st;
    /* false: the page's content only, for an application's own frame */
    bool whole;
} out;

static void raw(out *o, const char *s)
{
    if (o->st == GUEST_OK)
        o->st = guest_res_write(o->req, s, strlen(s));
}

static void esc(out *o, const char *s)
{
    if (o->st == GUEST_OK)
        o->st = guest_res_write_html(o->req, s ? s : "");
}

static void head(out *o, const char *title)
{
    if (!o->whole)
        return;
    raw(o, "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
           "<meta name=\"viewport\" content=\"width=device-width, "
           "initial-scale=1\"><title>");
    esc(o, title);
    raw(o, "</title></head>\n<body><main>\n<h1>");
    esc(o, title);
    raw(o, "</h1>\n");
}

static void tail(out *o)
{
    if (o->whole)
        raw(o, "</main></body></html>\n");
}

static void field_errors(out *o, const guest_form_errors *e, const char *field)
{
    bool any = false;
    for (size_t i = 0; i < e->count; i++) {
        if (strcmp(e->items[i].field, field) != 0)
            continue;
        raw(o, any ? "<li>" : "<ul class=\"errorlist\"><li>");
        esc(o, e->items[i].message);
        raw(o, "</li>");
        any = true;
    }
    if (any)
        raw(o, "</ul>\n");
}

static bool shown_field(const guest_page *page, const char *field,
                        const char *const *builtin)
{
    for (; *builtin; builtin++)
        if (!strcmp(field, *builtin))
            return true;
    for (size_t i = 0; i < page->field_count; i++)
        if (!strcmp(field, page->fields[i].name))
            return true;
    return false;
}

/* Messages not tied to a field on the page go above the form. */
static void form_errors(out *o, const guest_page *page,
                        const char *const *builtin)
{
    const guest_form_errors *e = page->errors;
    bool any = false;
    for (size_t i = 0; i < e->count; i++) {
        if (shown_field(page, e->items[i].field, builtin))
            continue;
        raw(o, any ? "<li>" : "<ul class=\"errorlist nonfield\"><li>");
        esc(o, e->items[i].message);
        raw(o, "</li>");
        any = true;
    }
    if (any)
        raw(o, "</ul>\n");
}

/* The form's start, its hidden fields, and the messages above it; the
 * fields @p builtin names (NULL-terminated) show their own. */
static void form_start(out *o, const guest_page *page,
                       const char *const *builtin)
{
    raw(o, "<form method=\"post\" action=\"");
    esc(o, page->action);
    raw(o,
        "\">\n<input type=\"hidden\" name=\"" GUEST_CSRF_FIELD "\" value=\"");
    esc(o, page->csrf_token);
    raw(o, "\">\n");
    if (page->next && *page->next) {
        raw(o, "<input type=\"hidden\" name=\"");
        esc(o, page->next_field);
        raw(o, "\" value=\"");
        esc(o, page->next);
        raw(o, "\">\n");
    }
    form_errors(o, page, builtin);
}

static void form_end(out *o, const char *button)
{
    raw(o, "<p><button type=\"submit\">");
    esc(o, button);
    raw(o, "</button></p>\n</form>\n");
}

static void input(out *o, const char *name, const char *label, const char *type,
                  const char *value, const char *extra,
                  const guest_form_errors *errors)
{
    raw(o, "<p><label for=\"id_");
    esc(o, name);
    raw(o, "\">");
    esc(o, label);
    raw(o, "</label><br><input type=\"");
    esc(o, type);
    raw(o, "\" name=\"");
    esc(o, name);
    raw(o, "\" id=\"id_");
    esc(o, name);
    raw(o, "\"");
    if (value) {
        raw(o, " value=\"");
        esc(o, value);
        raw(o, "\"");
    }
    raw(o, extra);
    raw(o, "></p>\n");
    field_errors(o, errors, name);
}

static void signup_field(out *o, const guest_page *page,
                         const guest_signup_field *f)
{
    const char *type = f->type && *f->type ? f->type : "text";
    const char *value = guest_form_get(page->form, f->name);
    const char *required = f->required ? " required" : "";
    if (!strcmp(type, "checkbox")) {
        raw(o, "<p><label><input type=\"checkbox\" name=\"");
        esc(o, f->name);
        raw(o, "\" id=\"id_");
        esc(o, f->name);
        raw(o, "\"");
        raw(o, value && *value ? " checked" : "");
        raw(o, required);
        raw(o, "> ");
        esc(o, f->label ? f->label : f->name);
        raw(o, "</label></p>\n");
        field_errors(o, page->errors, f->name);
        return;
    }
    /* A password-like field is never sent back to the browser. */
    bool secret = !strcmp(type, "password");
    input(o, f->name, f->label ? f->label : f->name, type,
          secret ? NULL : (value ? value : ""), required, page->errors);
}

static void convert_page(out *o, const guest_page *page)
{
    static const char *const builtin[] = {"username", "password1", "password2",
                                          "email", NULL};
    guest_email_mode mode = o->req->ctx->cfg.signup_email;
    raw(o, "<p>You are using this site as a guest");
    if (page->user) {
        raw(o, " (");
        esc(o, guest_user_name(page->user));
        raw(o, ")");
    }
    raw(o, ". Choose a username and a password to keep your work.</p>\n");
    form_start(o, page, builtin);
    input(o, "username", "Username", "text", page->username,
          " maxlength=\"150\" autocomplete=\"username\""
          " autocapitalize=\"none\" required autofocus",
          page->errors);
    raw(o, "<p class=\"help\">150 characters or fewer. Letters, digits and "
           "@/./+/-/_ only.</p>\n");
    if (mode != GUEST_EMAIL_OFF) {
        const char *email =
            page->form ? guest_form_get(page->form, "email") : NULL;
        input(o, "email", "Email address", "email", email ? email : "",
              mode == GUEST_EMAIL_REQUIRED
                  ? " maxlength=\"254\" autocomplete=\"email\" required"
                  : " maxlength=\"254\" autocomplete=\"email\"",
              page->errors);
    }
    input(o, "password1", "Password", "password", NULL,
          " autocomplete=\"new-password\" required", page->errors);
    input(o, "password2", "Password confirmation", "password", NULL,
          " autocomplete=\"new-password\" required", page->errors);
    for (size_t i = 0; i < page->field_count; i++)
        signup_field(o, page, &page->fields[i]);
    form_end(o, "Sign up");
}

static void success_page(out *o, const guest_page *page)
{
    if (guest_is_regular_user(page->user)) {
        raw(o, "<p>Your account <strong>");
        esc(o, guest_user_name(page->user));
        raw(o, "</strong> is ready. Everything you did as a guest is "
               "kept.</p>\n");
    } else {
        raw(o, "<p>Your account is ready.</p>\n");
    }
    raw(o, "<p><a href=\"/\">Continue</a></p>\n");
}

static void login_page(out *o, const guest_page *page)
{
    static const char *const builtin[] = {"username", "password", NULL};
    form_start(o, page, builtin);
    input(o, "username", "Username", "text", page->username,
          " maxlength=\"150\" autocomplete=\"username\""
          " autocapitalize=\"none\" required autofocus",
          page->errors);
    input(o, "password", "Password", "password", NULL,
          " autocomplete=\"current-password\" required", page->errors);
    form_end(o, "Log in");
}

static void password_change_page(out *o, const guest_page *page)
{
    static const char *const builtin[] = {"old_password", "new_password1",
                                          "new_password2", NULL};
    if (page->no_password)
        raw(o, "<p>Your account has no password yet: set one to log in "
               "with your username too. Enter it twice.</p>\n");
    else
        raw(o, "<p>Please enter your old password, for security's sake, "
               "and then enter your new password twice.</p>\n");
    form_start(o, page, builtin);
    if (!page->no_password)
        input(o, "old_password", "Old password", "password", NULL,
              " autocomplete=\"current-password\" required autofocus",
              page->errors);
    input(o, "new_password1", "New password", "password", NULL,
          " autocomplete=\"new-password\" required", page->errors);
    input(o, "new_password2", "New password confirmation", "password", NULL,
          " autocomplete=\"new-password\" required", page->errors);
    form_end(o, "Change my password");
}

static void reset_page(out *o, const guest_page *page)
{
    static const char *const builtin[] = {"email", NULL};
    raw(o, "<p>Forgotten your password? Enter your email address below, and "
           "we'll email instructions for setting a new one.</p>\n");
    form_start(o, page, builtin);
    input(o, "email", "Email", "email", page->email,
          " maxlength=\"254\" autocomplete=\"email\" required autofocus",
          page->errors);
    form_end(o, "Reset my password");
}

static void reset_confirm_page(out *o, const guest_page *page)
{
    static const char *const builtin[] = {"new_password1", "new_password2",
                                          NULL};
    raw(o, "<p>Please enter a new password for <strong>");
    esc(o, page->username);
    raw(o, "</strong> twice.</p>\n");
    form_start(o, page, builtin);
    input(o, "new_password1", "New password", "password", NULL,
          " autocomplete=\"new-password\" required autofocus", page->errors);
    input(o, "new_password2", "New password confirmation", "password", NULL,
          " autocomplete=\"new-password\" required", page->errors);
    form_end(o, "Set my password");
}

static void reset_done_page(out *o, const guest_page *page)
{
    raw(o, "<p>Your password was set. Every session of your account was "
           "ended: log in with the new password.</p>\n<p><a href=\"");
    esc(o, page->link && *page->link ? page->link : "/");
    raw(o, "\">Log in</a></p>\n");
}

static void email_page(out *o, const guest_page *page)
{
    static const char *const builtin[] = {"email", "password", NULL};
    if (page->email && *page->email) {
        raw(o, "<p>Your address: <strong>");
        esc(o, page->email);
        raw(o, page->email_verified ? "</strong> (verified)</p>\n"
                                    : "</strong> (not verified)</p>\n");
    } else {
        raw(o, "<p>Your account has no email address.</p>\n");
    }
    raw(o, "<p>Enter a new address: a link to confirm it will be sent there. "
           "It takes effect once the link is opened.</p>\n");
    form_start(o, page, builtin);
    input(o, "email", "New email address", "email", NULL,
          " maxlength=\"254\" autocomplete=\"email\" required autofocus",
          page->errors);
    if (!page->no_password)
        input(o, "password", "Password", "password", NULL,
              " autocomplete=\"current-password\" required", page->errors);
    form_end(o, "Change my address");
}

static void email_sent_page(out *o, const guest_page *page)
{
    raw(o, "<p>A link is on its way to <strong>");
    esc(o, page->email);
    raw(o, "</strong>. Open it to confirm the address.</p>\n"
           "<p><a href=\"/\">Continue</a></p>\n");
}

static void email_verify_page(out *o, const guest_page *page)
{
    raw(o, "<p>Confirm that this address is yours.</p>\n");
    form_start(o, page, (const char *const[]){NULL});
    form_end(o, "Confirm my address");
}

static void email_verified_page(out *o, const guest_page *page)
{
    raw(o, "<p>Your address <strong>");
    esc(o, page->email);
    raw(o, "</strong> is verified.</p>\n<p><a href=\"/\">Continue</a></p>\n");
}

/* Every page kind: its title and what draws it between the frame's head
 * and tail, or the text of a page that shows nothing of the request,
 * indexed by the kind. */
static const struct {
    const char *title;
    void (*draw)(out *o, const guest_page *page);
    const char *text;
} pages[] = {
    [GUEST_PAGE_CONVERT] = {"Create your account", convert_page, NULL},
    [GUEST_PAGE_CONVERT_SUCCESS] = {"Welcome!", success_page, NULL},
    [GUEST_PAGE_LOGIN] = {"Log in", login_page, NULL},
    [GUEST_PAGE_PASSWORD_CHANGE] = {"Password change", password_change_page,
                                    NULL},
    [GUEST_PAGE_PASSWORD_CHANGE_DONE] =
        {"Password change successful", NULL,
         "<p>Your password was changed. Other browsers and devices that "
         "were logged in to your account have been logged out.</p>\n"
         "<p><a href=\"/\">Continue</a></p>\n"},
    [GUEST_PAGE_PASSWORD_RESET] = {"Password reset", reset_page, NULL},
    [GUEST_PAGE_PASSWORD_RESET_SENT] =
        {"Password reset sent", NULL,
         "<p>If an account has that verified address, a link to set a new "
         "password is on its way. It should arrive in a few minutes; "
         "check your spam folder if it does not.</p>\n"},
    [GUEST_PAGE_PASSWORD_RESET_CONFIRM] = {"Enter new password",
                                           reset_confirm_page, NULL},
    [GUEST_PAGE_PASSWORD_RESET_DONE] = {"Password reset complete",
                                        reset_done_page, NULL},
    [GUEST_PAGE_LINK_INVALID] =
        {"Invalid link", NULL,
         "<p>This link is invalid or was used. Links work once, for a "
         "limited time; ask for a new one.</p>\n"
         "<p><a href=\"/\">Continue</a></p>\n"},
    [GUEST_PAGE_EMAIL] = {"Email address", email_page, NULL},
    [GUEST_PAGE_EMAIL_SENT] = {"Confirm your address", email_sent_page, NULL},
    [GUEST_PAGE_EMAIL_VERIFY] = {"Confirm your address", email_verify_page,
                                 NULL},
    [GUEST_PAGE_EMAIL_VERIFIED] = {"Address verified", email_verified_page,
                                   NULL},
};

/* A kind the table has, so a value from a newer header or a cast int is
 * refused rather than read past the table. */
static bool known_kind(guest_page_kind kind)
{
    return (unsigned)kind < sizeof pages / sizeof *pages &&
           (pages[kind].draw || pages[kind].text);
}

const char *guest_page_title(guest_page_kind kind)
{
    return known_kind(kind) ? pages[kind].title : "";
}

static guest_status render(guest_req *req, const guest_page *page, bool whole)
{
    if (!req || !page || !page->errors || !known_kind(page->kind))
        return GUEST_ERR_INVALID;
    out o = {req, GUEST_OK, whole};
    head(&o, pages[page->kind].title);
    if (pages[page->kind].draw)
        pages[page->kind].draw(&o, page);
    else
        raw(&o, pages[page->kind].text);
    tail(&o);
    return o.st;
}

guest_status guest_render_default(guest_req *req, const guest_page *page)
{
    return render(req, page, true);
}

guest_status guest_render_default_content(guest_req *req,
                                          const guest_page *page)
{
    return render(req, page, false);
}

/* The built-in mails, in plain text and HTML. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accounts/accounts.h"

/* @p s with & < > " ' escaped for HTML; caller frees. */
static char *html_escape(const char *s)
{
    size_t n = 1;
    for (const char *p = s; *p; p++)
        n += strchr("&<>\"'", *p) ? 6 : 1;
    char *out = malloc(n), *w = out;
    if (!out)
        return NULL;
    for (const char *p = s; *p; p++) {
        const char *e = *p == '&'    ? "&amp;"
                        : *p == '<'  ? "&lt;"
                        : *p == '>'  ? "&gt;"
                        : *p == '"'  ? "&quot;"
                        : *p == '\'' ? "&#39;"
                                     : NULL;
        if (e) {
            size_t l = strlen(e);
            memcpy(w, e, l);
            w += l;
        } else {
            *w++ = *p;
        }
    }
    *w = '\0';
    return out;
}

static const char *hours_or_days(unsigned s, char buf[32])
{
    if (s >= 86400 && s % 86400 == 0)
        snprintf(buf, 32, "%u day%s", s / 86400, s == 86400 ? "" : "s");
    else if (s >= 3600 && s % 3600 == 0)
        snprintf(buf, 32, "%u hour%s", s / 3600, s == 3600 ? "" : "s");
    else
        snprintf(buf, 32, "%u minutes", (s + 59) / 60);
    return buf;
}

guest_status guest_mail_render_default(const guest_mail_vars *v,
                                       guest_mail_content *out)
{
    if (!v || !out)
        return GUEST_ERR_INVALID;
    memset(out, 0, sizeof *out);
    char valid[32];
    hours_or_days(v->valid_s, valid);
    const char *user = v->username ? v->username : "";
    const char *link = v->link ? v->link : "";
    char *e_user = html_escape(user), *e_link = html_escape(link);
    char *e_new = html_escape(v->new_address ? v->new_address : "");
    switch (e_user && e_link && e_new ? (int)v->kind : -1) {
    case GUEST_MAIL_VERIFY:
        out->subject = guest__strdup("Confirm your e-mail address");
        out->text = guest__asprintf(
            "Hello %s,\n\nplease confirm that this is your e-mail address by "
            "opening this link:\n\n%s\n\nThe link works for %s. If you did "
            "not ask for this, ignore this mail.\n",
            user, link, valid);
        out->html = guest__asprintf(
            "<p>Hello %s,</p><p>please confirm that this is your e-mail "
            "address:</p><p><a href=\"%s\">Confirm my address</a></p><p>The "
            "link works for %s. If you did not ask for this, ignore this "
            "mail.</p>",
            e_user, e_link, valid);
        break;
    case GUEST_MAIL_PASSWORD_RESET:
        out->subject = guest__strdup("Reset your password");
        out->text = guest__asprintf(
            "Hello %s,\n\nsomeone asked to reset the password of your account "
            "(username: %s). To choose a new one, open this link:\n\n%s\n\n"
            "The link works for %s and once. If it was not you, ignore this "
            "mail: your password stays as it is.\n",
            user, user, link, valid);
        out->html = guest__asprintf(
            "<p>Hello %s,</p><p>someone asked to reset the password of your "
            "account (username: %s).</p><p><a href=\"%s\">Choose a new "
            "password</a></p><p>The link works for %s and once. If it was not "
            "you, ignore this mail: your password stays as it is.</p>",
            e_user, e_user, e_link, valid);
        break;
    case GUEST_MAIL_EMAIL_CHANGED:
        out->subject = guest__strdup("Your e-mail address was changed");
        out->text = guest__asprintf(
            "Hello %s,\n\nthe e-mail address of your account is now %s; mail "
            "no longer comes to this one. If you did not do this, log in and "
            "change your password.\n",
            user, v->new_address ? v->new_address : "");
        out->html = guest__asprintf(
            "<p>Hello %s,</p><p>the e-mail address of your account is now "
            "%s; mail no longer comes to this one. If you did not do this, "
            "log in and change your password.</p>",
            e_user, e_new);
        break;
    default:
        break;
    }
    free(e_user);
    free(e_link);
    free(e_new);
    if (!out->subject || !out->text || !out->html) {
        free(out->subject);
        free(out->text);
        free(out->html);
        memset(out, 0, sizeof *out);
        return (unsigned)v->kind > GUEST_MAIL_EMAIL_CHANGED ? GUEST_ERR_INVALID
                                                            : GUEST_ERR_NOMEM;
    }
    return GUEST_OK;
}

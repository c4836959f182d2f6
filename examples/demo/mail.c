/* The demo's mail: with --smtp-url, a sender thread delivers the outbox
 * (password reset and verification links) through libguestuser-mail's
 * SMTP transport. Without the component (GUESTUSER_DEMO_MAIL undefined)
 * the demo builds and refuses --smtp-url; mails then wait in the outbox
 * for a sender elsewhere. */
#include <stdio.h>

#include "demo.h"

#ifdef GUESTUSER_DEMO_MAIL
#include <guestuser/smtp.h>

static guest_smtp *smtp;
static guest_mail_sender *sender;

bool demo_mail_built(void)
{
    return true;
}

int demo_mail_start(guest_ctx *ctx, const demo_options *o, char *err,
                    size_t errsize)
{
    if (!o->smtp_url)
        return 0;
    guest_smtp_config sc;
    guest_smtp_config_init(&sc);
    sc.url = o->smtp_url;
    sc.starttls = (guest_smtp_starttls)o->smtp_starttls;
    sc.credentials_file = o->smtp_credentials_file;
    guest_error e = {0};
    guest_status st = guest_smtp_new(&sc, &smtp, &e);
    if (st != GUEST_OK) {
        snprintf(err, errsize, "--smtp-url: %s: %s", guest_strerror(st),
                 e.message);
        return -1;
    }
    guest_mail_transport t = guest_smtp_transport(smtp);
    st = guest_mail_sender_start(ctx, &t, &sender, &e);
    if (st != GUEST_OK) {
        snprintf(err, errsize, "mail sender: %s: %s", guest_strerror(st),
                 e.message);
        guest_smtp_free(smtp);
        smtp = NULL;
        return -1;
    }
    return 0;
}

void demo_mail_stop(void)
{
    guest_mail_sender_stop(sender);
    sender = NULL;
    guest_smtp_free(smtp);
    smtp = NULL;
}

#else

bool demo_mail_built(void)
{
    return false;
}

int demo_mail_start(guest_ctx *ctx, const demo_options *o, char *err,
                    size_t errsize)
{
    (void)ctx;
    if (!o->smtp_url)
        return 0;
    snprintf(err, errsize,
             "--smtp-url: this build has no libguestuser-mail (GUESTUSER_MAIL "
             "off: libcurl was not found)");
    return -1;
}

void demo_mail_stop(void) {}

#endif

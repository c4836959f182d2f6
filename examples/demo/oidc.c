/* "Continue with NAME" in the demo: the --oidc providers in one
 * libguestuser-oidc registry, its views mounted by routes.c and its
 * buttons on the sign-up and login pages (layout.c). Without
 * libguestuser-oidc (GUESTUSER_DEMO_OIDC undefined) every function here is
 * a no-op and --oidc is refused. */
#include <stdatomic.h>
#include <stdio.h>

#include "demo.h"

/* --oidc-timeout-ms (options.c; 0: the library's default), set while the
 * arguments are parsed, before demo_oidc_start(). */
void demo_oidc_set_timeout_ms(unsigned ms);
static unsigned oidc_timeout_ms;

void demo_oidc_set_timeout_ms(unsigned ms)
{
    oidc_timeout_ms = ms;
}

#ifdef GUESTUSER_DEMO_OIDC
#include <guestuser/oidc.h>

/* Set once, possibly after the server started (its port decides the
 * default public URL), and read by every server thread. */
static _Atomic(guest_oidc *) registry;

bool demo_oidc_built(void)
{
    return true;
}

int demo_oidc_start(guest_ctx *ctx, const demo_options *o,
                    const char *public_url, char *err, size_t errsize)
{
    if (o->noidc == 0)
        return 0;
    guest_oidc_config cfg;
    guest_oidc_config_init(&cfg);
    cfg.public_url = public_url;
    if (oidc_timeout_ms)
        cfg.http_timeout_ms = oidc_timeout_ms;
    guest_oidc *oidc = NULL;
    guest_error e = {0};
    guest_status st = guest_oidc_new(ctx, &cfg, &oidc, &e);
    if (st != GUEST_OK) {
        snprintf(err, errsize, "--public-url %s: %s: %s", public_url,
                 guest_strerror(st), e.message);
        return -1;
    }
    for (int i = 0; i < o->noidc; i++) {
        const demo_oidc_provider *p = &o->oidc[i];
        st = guest_oidc_add_provider(oidc, p->name, p->issuer, p->client_id,
                                     p->secret, &e);
        if (st != GUEST_OK) {
            snprintf(err, errsize, "--oidc %s,%s,%s,...: %s: %s", p->name,
                     p->issuer, p->client_id, guest_strerror(st), e.message);
            guest_oidc_free(oidc);
            return -1;
        }
    }
    atomic_store(&registry, oidc);
    return 0;
}

void demo_oidc_stop(void)
{
    guest_oidc_free(atomic_exchange(&registry, NULL));
}

bool demo_oidc_enabled(void)
{
    return atomic_load(&registry) != NULL;
}

static void not_found(guest_req *req)
{
    guest_res_send(req, 404, "text/plain; charset=utf-8", "Not Found\n");
}

void demo_oidc_routes(guest_req *req, void *userdata)
{
    (void)userdata;
    guest_oidc *oidc = atomic_load(&registry);
    if (!oidc)
        not_found(req);
    else
        guest_oidc_view(req, oidc);
}

void demo_identities(guest_req *req, void *userdata)
{
    (void)userdata;
    guest_oidc *oidc = atomic_load(&registry);
    if (!oidc)
        not_found(req);
    else
        guest_oidc_identities_view(req, oidc);
}

void demo_oidc_buttons(guest_req *req, const char *next)
{
    guest_oidc *oidc = atomic_load(&registry);
    if (!oidc)
        return;
    guest_res_printf(req, "<section class=\"providers\" id=\"providers\">"
                          "<p class=\"muted\">Or, without a password:</p>");
    /* A failure (no CSRF token) leaves the buttons out; the password form
     * above still works. */
    if (guest_oidc_write_buttons(req, oidc, next) != GUEST_OK)
        guest_res_printf(req, "<p class=\"error\">The identity providers' "
                              "buttons cannot be shown right now.</p>");
    guest_res_printf(req, "</section>\n");
}

#else

bool demo_oidc_built(void)
{
    return false;
}

int demo_oidc_start(guest_ctx *ctx, const demo_options *o,
                    const char *public_url, char *err, size_t errsize)
{
    (void)ctx;
    (void)public_url;
    if (o->noidc == 0)
        return 0;
    snprintf(err, errsize, "this build has no libguestuser-oidc");
    return -1;
}

void demo_oidc_stop(void) {}

bool demo_oidc_enabled(void)
{
    return false;
}

void demo_oidc_routes(guest_req *req, void *userdata)
{
    (void)userdata;
    guest_res_send(req, 404, "text/plain; charset=utf-8", "Not Found\n");
}

void demo_identities(guest_req *req, void *userdata)
{
    demo_oidc_routes(req, userdata);
}

void demo_oidc_buttons(guest_req *req, const char *next)
{
    (void)req;
    (void)next;
}

#endif

/* guestuser-demo: the demo routes served by libmicrohttpd, CivetWeb,
 * Ulfius or libevent's evhttp. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#ifdef GUESTUSER_DEMO_MHD
#include <guestuser/adapters/mhd.h>
#endif
#ifdef GUESTUSER_DEMO_CIVETWEB
#include <guestuser/adapters/civetweb.h>
#endif
#ifdef GUESTUSER_DEMO_ULFIUS
#include <guestuser/adapters/ulfius.h>
#endif
#ifdef GUESTUSER_DEMO_EVHTTP
#include <guestuser/adapters/evhttp.h>
#endif

#include "demo.h"

/* --server mhd without --mhd-mode: the mode that served the demo's pages
 * faster, with less CPU per request (docs/performance.md, "libmicrohttpd's
 * event mode against its thread per connection"). */
#define DEMO_MHD_MODE "threads"

/* The servers this build can run (--server). */
static const char *const servers[] = {
#ifdef GUESTUSER_DEMO_MHD
    "mhd",
    /* mhd in one mode whatever --mhd-mode says, for scripts that name
     * only a server */
    "mhd_event",
    "mhd_threads",
#endif
#ifdef GUESTUSER_DEMO_CIVETWEB
    "civetweb",
#endif
#ifdef GUESTUSER_DEMO_ULFIUS
    "ulfius",
#endif
#ifdef GUESTUSER_DEMO_EVHTTP
    "evhttp",
#endif
    NULL,
};

/* One running server, whichever library it is. */
typedef struct demo_server {
    const char *name;
#ifdef GUESTUSER_DEMO_MHD
    guest_mhd *mhd;
    struct MHD_Daemon *daemon;
#endif
#ifdef GUESTUSER_DEMO_CIVETWEB
    guest_civetweb *civetweb;
    struct mg_context *mg;
#endif
#ifdef GUESTUSER_DEMO_ULFIUS
    guest_ulfius *ulfius; /* owns the instance it starts */
#endif
#ifdef GUESTUSER_DEMO_EVHTTP
    guest_evhttp *evhttp; /* owns its loop and worker threads */
#endif
} demo_server;

static bool server_known(const char *name)
{
    for (const char *const *s = servers; *s; s++)
        if (!strcmp(*s, name))
            return true;
    return false;
}

#if defined(GUESTUSER_DEMO_MHD) || defined(GUESTUSER_DEMO_ULFIUS) ||           \
    defined(GUESTUSER_DEMO_EVHTTP)
/* --max-connections, --max-conns-per-ip and --header-timeout, where given,
 * into the limits of a server that has all three. */
static void connection_limits(const demo_options *o, unsigned *max_connections,
                              unsigned *max_conns_per_ip,
                              unsigned *header_timeout_s)
{
    if (o->max_connections >= 0)
        *max_connections = (unsigned)o->max_connections;
    if (o->max_conns_per_ip >= 0)
        *max_conns_per_ip = (unsigned)o->max_conns_per_ip;
    if (o->header_timeout >= 0)
        *header_timeout_s = (unsigned)o->header_timeout;
}
#endif

/* Starts the server named s->name with demo_handler; the port it bound
 * goes to *port. Returns false when it cannot listen. */
static bool server_start(demo_server *s, guest_ctx *ctx, const demo_options *o,
                         unsigned *port)
{
    *port = o->port;
#ifdef GUESTUSER_DEMO_MHD
    if (!strncmp(s->name, "mhd", 3)) {
        guest_mhd_limits l;
        guest_mhd_limits_init(&l);
        const char *mode = o->mhd_mode ? o->mhd_mode : DEMO_MHD_MODE;
        if (!strcmp(s->name, "mhd_event"))
            mode = "event";
        else if (!strcmp(s->name, "mhd_threads"))
            mode = "threads";
        if (!strcmp(mode, "event"))
            l.workers = o->threads > 0 ? (unsigned)o->threads : 32;
        connection_limits(o, &l.max_connections, &l.max_conns_per_ip,
                          &l.header_timeout_s);
        if (guest_mhd_new(ctx, demo_handler, NULL, &s->mhd) != GUEST_OK ||
            guest_mhd_set_limits(s->mhd, &l) != GUEST_OK ||
            guest_mhd_start(s->mhd, o->bind, o->port, &s->daemon) != GUEST_OK)
            return false;
        const union MHD_DaemonInfo *di =
            MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
        if (di)
            *port = di->port;
        return true;
    }
#endif
#ifdef GUESTUSER_DEMO_CIVETWEB
    if (!strcmp(s->name, "civetweb")) {
        guest_civetweb_limits l;
        guest_civetweb_limits_init(&l);
        if (o->threads > 0)
            l.threads = (unsigned)o->threads;
        if (o->header_timeout > 0)
            l.header_timeout_s = (unsigned)o->header_timeout;
        if (guest_civetweb_new(ctx, demo_handler, NULL, &s->civetweb) !=
                GUEST_OK ||
            guest_civetweb_set_limits(s->civetweb, &l) != GUEST_OK ||
            guest_civetweb_start(s->civetweb, o->bind, o->port, &s->mg) !=
                GUEST_OK)
            return false;
        struct mg_server_port sp;
        if (mg_get_server_ports(s->mg, 1, &sp) == 1)
            *port = (unsigned)sp.port;
        return true;
    }
#endif
#ifdef GUESTUSER_DEMO_ULFIUS
    if (!strcmp(s->name, "ulfius")) {
        guest_ulfius_limits l;
        guest_ulfius_limits_init(&l);
        connection_limits(o, &l.max_connections, &l.max_conns_per_ip,
                          &l.header_timeout_s);
        struct _u_instance *in = NULL;
        if (guest_ulfius_new(ctx, demo_handler, NULL, &s->ulfius) != GUEST_OK ||
            guest_ulfius_set_limits(s->ulfius, &l) != GUEST_OK ||
            guest_ulfius_start(s->ulfius, o->bind, o->port, &in) != GUEST_OK)
            return false;
        const union MHD_DaemonInfo *di =
            MHD_get_daemon_info(in->mhd_daemon, MHD_DAEMON_INFO_BIND_PORT);
        if (di)
            *port = di->port;
        return true;
    }
#endif
#ifdef GUESTUSER_DEMO_EVHTTP
    if (!strcmp(s->name, "evhttp")) {
        guest_evhttp_limits l;
        guest_evhttp_limits_init(&l);
        connection_limits(o, &l.max_connections, &l.max_conns_per_ip,
                          &l.header_timeout_s);
        if (o->threads > 0)
            l.workers = (unsigned)o->threads;
        uint16_t bound = 0;
        if (guest_evhttp_new(ctx, demo_handler, NULL, &s->evhttp) != GUEST_OK ||
            guest_evhttp_set_limits(s->evhttp, &l) != GUEST_OK ||
            guest_evhttp_set_loop_handlers(s->evhttp, true) != GUEST_OK ||
            guest_evhttp_start(s->evhttp, o->bind, o->port, &bound) != GUEST_OK)
            return false;
        *port = bound;
        return true;
    }
#endif
    (void)ctx;
    return false;
}

/* Stops whatever server_start() started, even half-way. */
static void server_stop(demo_server *s)
{
#ifdef GUESTUSER_DEMO_MHD
    /* In event mode a request may be on a worker, which MHD_stop_daemon()
     * alone would not wait for. */
    guest_mhd_stop(s->mhd, s->daemon);
    guest_mhd_free(s->mhd);
#endif
#ifdef GUESTUSER_DEMO_CIVETWEB
    if (s->mg)
        mg_stop(s->mg);
    guest_civetweb_free(s->civetweb);
#endif
#ifdef GUESTUSER_DEMO_ULFIUS
    guest_ulfius_free(s->ulfius);
#endif
#ifdef GUESTUSER_DEMO_EVHTTP
    guest_evhttp_free(s->evhttp);
#endif
    (void)s;
}

int main(int argc, char **argv)
{
    demo_options o;
    int rc = demo_parse_args(&o, argc, argv);
    if (rc != 0) {
        demo_options_free(&o);
        return rc > 0 ? 0 : 1;
    }
    if (!server_known(o.server)) {
        demo_options_free(&o);
        fprintf(stderr, "%s: unknown --server '%s' (this build has:", argv[0],
                o.server);
        for (const char *const *s = servers; *s; s++)
            fprintf(stderr, " %s", *s);
        fprintf(stderr, ")\n");
        return 1;
    }

    if (demo_metrics_set_token(o.metrics_token) != 0) {
        demo_options_free(&o);
        fprintf(stderr, "%s: out of memory\n", argv[0]);
        return 2;
    }

    /* Block the stop signals before any thread starts, so every server
     * thread inherits the mask and only sigwait() below sees them. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    guest_ctx *ctx = NULL;
    guest_error err = {0};
    demo_notes_configure(&o.cfg);
    /* Mail: links are made from --public-url, else http://BIND:PORT (not
     * known before listening with --port 0: give --public-url then); with
     * --smtp-url and no --mail-from, a From of the demo's own. */
    char mail_base[512];
    if (!o.cfg.public_url && (o.public_url || o.port != 0)) {
        const char *h = strchr(o.bind, ':') ? "[::1]" : o.bind;
        if (!strcmp(o.bind, "0.0.0.0"))
            h = "127.0.0.1";
        if (o.public_url)
            snprintf(mail_base, sizeof mail_base, "%s", o.public_url);
        else
            snprintf(mail_base, sizeof mail_base, "http://%s:%u", h,
                     (unsigned)o.port);
        o.cfg.public_url = mail_base;
    }
    if (o.smtp_url && !o.cfg.mail_from)
        o.cfg.mail_from = "libguestuser demo <noreply@localhost>";
    guest_status st = guest_ctx_new(&o.cfg, &ctx, &err);
    /* The context keeps its own copies of the secrets. */
    if (st != GUEST_OK) {
        demo_options_free(&o);
        fprintf(stderr, "%s: %s: %s\n", argv[0], guest_strerror(st),
                err.message);
        return 2;
    }
    char notes_err[512];
    if (demo_notes_start(ctx, o.notes_max, notes_err, sizeof notes_err) != 0) {
        demo_options_free(&o);
        fprintf(stderr, "%s: notes: %s\n", argv[0], notes_err);
        guest_ctx_free(ctx);
        return 2;
    }
    if (demo_mail_start(ctx, &o, notes_err, sizeof notes_err) != 0) {
        demo_options_free(&o);
        fprintf(stderr, "%s: %s\n", argv[0], notes_err);
        demo_notes_stop();
        demo_mail_stop();
        guest_ctx_free(ctx);
        return 2;
    }
    /* The identity providers need the site's public URL: --public-url, or
     * http://BIND:PORT, known before listening unless --port 0 lets the
     * kernel pick; then they start right after, before the address is
     * printed (until then nobody knows where to send a request). */
    const char *host = strchr(o.bind, ':') ? "[::1]" : o.bind;
    if (!strcmp(o.bind, "0.0.0.0"))
        host = "127.0.0.1";
    char public_url[512], oidc_err[1024];
    bool oidc_started = false;
    if (o.public_url || o.port != 0) {
        if (o.public_url)
            snprintf(public_url, sizeof public_url, "%s", o.public_url);
        else
            snprintf(public_url, sizeof public_url, "http://%s:%u", host,
                     (unsigned)o.port);
        if (demo_oidc_start(ctx, &o, public_url, oidc_err, sizeof oidc_err) !=
            0) {
            demo_options_free(&o);
            fprintf(stderr, "%s: %s\n", argv[0], oidc_err);
            demo_notes_stop();
            demo_mail_stop();
            guest_ctx_free(ctx);
            return 2;
        }
        oidc_started = true;
    }
    demo_server server = {.name = o.server};
    unsigned port;
    if (!server_start(&server, ctx, &o, &port)) {
        fprintf(stderr, "%s: cannot listen on %s port %u\n", argv[0], o.bind,
                (unsigned)o.port);
        demo_options_free(&o);
        server_stop(&server);
        demo_oidc_stop();
        demo_notes_stop();
        demo_mail_stop();
        guest_ctx_free(ctx);
        return 2;
    }
    if (!oidc_started) {
        snprintf(public_url, sizeof public_url, "http://%s:%u", host, port);
        if (demo_oidc_start(ctx, &o, public_url, oidc_err, sizeof oidc_err) !=
            0) {
            demo_options_free(&o);
            fprintf(stderr, "%s: %s\n", argv[0], oidc_err);
            server_stop(&server);
            demo_notes_stop();
            demo_mail_stop();
            guest_ctx_free(ctx);
            return 2;
        }
    }
    /* The routes keep their own copies of the client secrets too. */
    demo_options_free(&o);
    fprintf(stderr, "guestuser-demo: serving with %s\n", server.name);
    if (demo_oidc_enabled())
        fprintf(stderr,
                "guestuser-demo: identity providers' redirect URIs: "
                "%s/accounts/oidc/NAME/callback/\n",
                public_url);
    printf("guestuser-demo listening on http://%s:%u/\n", host, port);
    fflush(stdout);

    int sig;
    sigwait(&stop, &sig);
    fprintf(stderr, "guestuser-demo: stopping on signal %d\n", sig);
    server_stop(&server);
    demo_oidc_stop();
    demo_notes_stop();
    demo_mail_stop();
    guest_ctx_free(ctx);
    (void)demo_metrics_set_token(NULL);
    return 0;
}

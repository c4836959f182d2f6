/* guestuser-demo: the demo routes served by libmicrohttpd. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <guestuser/adapters/mhd.h>

#include "demo.h"

int main(int argc, char **argv)
{
    demo_options o;
    int rc = demo_parse_args(&o, argc, argv);
    if (rc != 0)
        return rc > 0 ? 0 : 1;
    if (strcmp(o.server, "mhd") != 0) {
        fprintf(stderr, "%s: unknown --server '%s' (this build has: mhd)\n",
                argv[0], o.server);
        return 1;
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
    guest_status st = guest_ctx_new(&o.cfg, &ctx, &err);
    if (st != GUEST_OK) {
        fprintf(stderr, "%s: %s: %s\n", argv[0], guest_strerror(st),
                err.message);
        return 2;
    }
    guest_mhd *app = NULL;
    struct MHD_Daemon *daemon = NULL;
    if (guest_mhd_new(ctx, demo_handler, NULL, &app) != GUEST_OK ||
        guest_mhd_start(app, o.bind, o.port, &daemon) != GUEST_OK) {
        fprintf(stderr, "%s: cannot listen on %s port %u\n", argv[0], o.bind,
                (unsigned)o.port);
        guest_mhd_free(app);
        guest_ctx_free(ctx);
        return 2;
    }
    unsigned port = o.port;
    const union MHD_DaemonInfo *di =
        MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_BIND_PORT);
    if (di)
        port = di->port;
    const char *host = strchr(o.bind, ':') ? "[::1]" : o.bind;
    if (!strcmp(o.bind, "0.0.0.0"))
        host = "127.0.0.1";
    printf("guestuser-demo listening on http://%s:%u/allow_guest_user/\n",
           host, port);
    fflush(stdout);

    int sig;
    sigwait(&stop, &sig);
    fprintf(stderr, "guestuser-demo: stopping on signal %d\n", sig);
    MHD_stop_daemon(daemon);
    guest_mhd_free(app);
    guest_ctx_free(ctx);
    return 0;
}

/* The minimal example on libmicrohttpd: GUESTUSER_DB=... hello-mhd [PORT] */
#include <guestuser/adapters/mhd.h>

#include "hello.h"

/* The daemon is the program's to stop, before the adapter is freed. */
static guest_status serve(guest_ctx *ctx, uint16_t port)
{
    guest_mhd *app = NULL;
    struct MHD_Daemon *daemon = NULL;
    guest_status st = guest_mhd_new(ctx, hello_handler, NULL, &app);
    if (st == GUEST_OK)
        st = guest_mhd_start(app, "127.0.0.1", port, &daemon);
    if (st == GUEST_OK) {
        hello_wait(port);
        MHD_stop_daemon(daemon);
    }
    guest_mhd_free(app);
    return st;
}

int main(int argc, char **argv)
{
    return hello_main(argc, argv, serve);
}

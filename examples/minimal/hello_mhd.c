/* The minimal example on libmicrohttpd: GUESTUSER_DB=... hello-mhd [PORT] */
#include <guestuser/adapters/mhd.h>

#include "hello.h"

int main(int argc, char **argv)
{
    hello_block_signals();
    uint16_t port;
    guest_ctx *ctx = hello_start(argc, argv, &port);
    if (!ctx)
        return 1;
    guest_mhd *app = NULL;
    struct MHD_Daemon *daemon = NULL;
    int rc = 1;
    if (guest_mhd_new(ctx, hello_handler, NULL, &app) == GUEST_OK &&
        guest_mhd_start(app, "127.0.0.1", port, &daemon) == GUEST_OK) {
        hello_wait(port);
        MHD_stop_daemon(daemon);
        rc = 0;
    }
    guest_mhd_free(app);
    guest_ctx_free(ctx);
    return rc;
}

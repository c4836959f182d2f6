/* The minimal example on CivetWeb: GUESTUSER_DB=... hello-civetweb [PORT] */
#include <guestuser/adapters/civetweb.h>

#include "hello.h"

int main(int argc, char **argv)
{
    hello_block_signals();
    uint16_t port;
    guest_ctx *ctx = hello_start(argc, argv, &port);
    if (!ctx)
        return 1;
    guest_civetweb *app = NULL;
    struct mg_context *mg = NULL;
    int rc = 1;
    if (guest_civetweb_new(ctx, hello_handler, NULL, &app) == GUEST_OK &&
        guest_civetweb_start(app, "127.0.0.1", port, &mg) == GUEST_OK) {
        hello_wait(port);
        mg_stop(mg);
        rc = 0;
    }
    guest_civetweb_free(app);
    guest_ctx_free(ctx);
    return rc;
}

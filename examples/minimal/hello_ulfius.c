/* The minimal example on Ulfius: GUESTUSER_DB=... hello-ulfius [PORT] */
#include <guestuser/adapters/ulfius.h>

#include "hello.h"

int main(int argc, char **argv)
{
    hello_block_signals();
    uint16_t port;
    guest_ctx *ctx = hello_start(argc, argv, &port);
    if (!ctx)
        return 1;
    guest_ulfius *app = NULL;
    struct _u_instance *instance = NULL;
    int rc = 1;
    if (guest_ulfius_new(ctx, hello_handler, NULL, &app) == GUEST_OK &&
        guest_ulfius_start(app, "127.0.0.1", port, &instance) == GUEST_OK) {
        hello_wait(port);
        rc = 0;
    }
    guest_ulfius_free(app); /* stops the instance it started */
    guest_ctx_free(ctx);
    return rc;
}

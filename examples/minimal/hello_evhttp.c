/* The minimal example on libevent's evhttp: GUESTUSER_DB=... hello-evhttp
 * [PORT]. The adapter runs its own loop thread and runs the handlers on
 * worker threads, so the loop never waits for the database. */
#include <guestuser/adapters/evhttp.h>

#include "hello.h"

int main(int argc, char **argv)
{
    hello_block_signals();
    uint16_t port;
    guest_ctx *ctx = hello_start(argc, argv, &port);
    if (!ctx)
        return 1;
    guest_evhttp *app = NULL;
    int rc = 1;
    if (guest_evhttp_new(ctx, hello_handler, NULL, &app) == GUEST_OK &&
        guest_evhttp_start(app, "127.0.0.1", port, NULL) == GUEST_OK) {
        hello_wait(port);
        rc = 0;
    }
    guest_evhttp_free(app); /* stops the loop it started */
    guest_ctx_free(ctx);
    return rc;
}

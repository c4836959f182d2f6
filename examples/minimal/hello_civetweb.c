/* The minimal example on CivetWeb: GUESTUSER_DB=... hello-civetweb [PORT] */
#include <guestuser/adapters/civetweb.h>

#include "hello.h"

/* CivetWeb's context is the program's to stop, before the adapter is freed. */
static guest_status serve(guest_ctx *ctx, uint16_t port)
{
    guest_civetweb *app = NULL;
    struct mg_context *mg = NULL;
    guest_status st = guest_civetweb_new(ctx, hello_handler, NULL, &app);
    if (st == GUEST_OK)
        st = guest_civetweb_start(app, "127.0.0.1", port, &mg);
    if (st == GUEST_OK) {
        hello_wait(port);
        mg_stop(mg);
    }
    guest_civetweb_free(app);
    return st;
}

int main(int argc, char **argv)
{
    return hello_main(argc, argv, serve);
}

/* The minimal example on Ulfius: GUESTUSER_DB=... hello-ulfius [PORT] */
#include <guestuser/adapters/ulfius.h>

#include "hello.h"

/* guest_ulfius_free() stops the instance it started. */
static guest_status serve(guest_ctx *ctx, uint16_t port)
{
    guest_ulfius *app = NULL;
    struct _u_instance *instance = NULL;
    guest_status st = guest_ulfius_new(ctx, hello_handler, NULL, &app);
    if (st == GUEST_OK)
        st = guest_ulfius_start(app, "127.0.0.1", port, &instance);
    if (st == GUEST_OK)
        hello_wait(port);
    guest_ulfius_free(app);
    return st;
}

int main(int argc, char **argv)
{
    return hello_main(argc, argv, serve);
}

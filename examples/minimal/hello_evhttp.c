/* The minimal example on libevent's evhttp: GUESTUSER_DB=... hello-evhttp
 * [PORT]. The adapter runs its own loop thread and runs the handlers on
 * worker threads, so the loop never waits for the database. */
#include <guestuser/adapters/evhttp.h>

#include "hello.h"

/* guest_evhttp_free() stops the loop it started. */
static guest_status serve(guest_ctx *ctx, uint16_t port)
{
    guest_evhttp *app = NULL;
    guest_status st = guest_evhttp_new(ctx, hello_handler, NULL, &app);
    if (st == GUEST_OK)
        st = guest_evhttp_start(app, "127.0.0.1", port, NULL);
    if (st == GUEST_OK)
        hello_wait(port);
    guest_evhttp_free(app);
    return st;
}

int main(int argc, char **argv)
{
    return hello_main(argc, argv, serve);
}

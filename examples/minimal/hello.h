/* The application of the minimal examples: what a site writes once,
 * whichever server library serves it (hello_mhd.c, hello_civetweb.c,
 * hello_ulfius.c, hello_evhttp.c start one each). */
#ifndef HELLO_H
#define HELLO_H

#include <stdint.h>

#include <guestuser/guestuser.h>

/* Every route of the site; hand it to an adapter as its handler. */
void hello_handler(guest_req *req, void *userdata);

/* Serves hello_handler() on 127.0.0.1:@p port with one server library,
 * calls hello_wait() once it listens and stops the server after; the
 * status of the adapter call that failed, if one did. Each hello_*.c is
 * one of these. */
typedef guest_status (*hello_serve_fn)(guest_ctx *ctx, uint16_t port);

/* The context from the environment (GUESTUSER_DB, a libpq connection
 * string, default "postgresql:///guestuser"; GUESTUSER_SCHEMA...: see
 * guest_config_from_env()), and the port from argv[1] (8080). NULL, with a
 * message on stderr, when the database cannot be reached. */
guest_ctx *hello_start(int argc, char **argv, uint16_t *port);

/* The whole program but the server: blocks SIGINT and SIGTERM, makes the
 * context with hello_start(), runs @p serve and frees the context. The
 * exit status for main(). */
int hello_main(int argc, char **argv, hello_serve_fn serve);

/* Prints where the site listens and waits for SIGINT or SIGTERM. */
void hello_wait(uint16_t port);

#endif

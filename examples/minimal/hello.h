/* The application of the minimal examples: what a site writes once,
 * whichever server library serves it (hello_mhd.c, hello_civetweb.c,
 * hello_ulfius.c, hello_evhttp.c start one each). */
#ifndef HELLO_H
#define HELLO_H

#include <stdint.h>

#include <guestuser/guestuser.h>

/* Every route of the site; hand it to an adapter as its handler. */
void hello_handler(guest_req *req, void *userdata);

/* The context from the environment (GUESTUSER_DB, a libpq connection
 * string, default "postgresql:///guestuser"; GUESTUSER_SCHEMA...: see
 * guest_config_from_env()), and the port from argv[1] (8080). NULL, with a
 * message on stderr, when the database cannot be reached. */
guest_ctx *hello_start(int argc, char **argv, uint16_t *port);

/* Blocks SIGINT and SIGTERM (call before any thread starts), so that
 * hello_wait() can wait for them. */
void hello_block_signals(void);
/* Prints where the site listens and waits for SIGINT or SIGTERM. */
void hello_wait(uint16_t port);

#endif

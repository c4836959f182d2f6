/* A small application for the adapter tests: one route per kind of guard,
 * /whoami, /healthz, /echo and the library's ready-made account views, so
 * the servers are tested without the demo. */
#ifndef GUESTUSER_TEST_ROUTES_H
#define GUESTUSER_TEST_ROUTES_H

#include <guestuser/guestuser.h>

/* The route table ({NULL} terminated), for guest_routes_dispatch:
 *   GET /allow_guest_user/       GUEST_ALLOW: "<p>Hello, NAME!</p>"
 *   GET /guest_user_required/    GUEST_REQUIRED:
 *                                "Only guests see this page, NAME."
 *   GET /regular_user_required/  REGULAR_REQUIRED:
 *                                "Only registered users see this page, NAME."
 *   GET /whoami                  the visitor as JSON, no user made
 *   GET /healthz                 "ok\n", or 503 without the database
 *   any /echo                    tl_echo
 *   any /convert/, /convert/success/, /accounts/login/, /accounts/logout/
 *                                the library's views, default rendering */
const guest_route *tl_routes(void);

/* A guest_handler_fn dispatching on tl_routes(). */
void tl_routes_handler(guest_req *req, void *userdata);

/* Answers 200 text/plain with what the adapter passed in, one line each:
 * method=, target=, path=, addr=, x-test= (the X-Test header), https=,
 * then body=<length>:<body>. */
void tl_echo(guest_req *req, void *userdata);

#endif

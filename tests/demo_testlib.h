/* Helpers the tests of the demo share: requests through the demo's own
 * route table, in process (testlib.h's adapter). */
#ifndef GUESTUSER_DEMO_TESTLIB_H
#define GUESTUSER_DEMO_TESTLIB_H

#include "demo.h"
#include "testlib.h"

/* A guest_handler_fn dispatching on demo_routes(), without the demo's
 * request log. */
void dt_handler(guest_req *req, void *userdata);

/* GET @p target through dt_handler, with @p cookie (may be NULL) and
 * Host: testserver; the response is recorded in @p h (tl_http_free it). */
void dt_get(guest_ctx *ctx, tl_http *h, const char *target, const char *cookie);
/* POST of the urlencoded @p body to @p target, as dt_get. */
void dt_post(guest_ctx *ctx, tl_http *h, const char *target, const char *cookie,
             const char *body);

#endif

#include "demo_testlib.h"

GUEST_ROUTES(dt_handler, demo_routes())

void dt_get(guest_ctx *ctx, tl_http *h, const char *target, const char *cookie)
{
    tl_request(ctx, h, "GET", target, cookie, NULL, NULL, dt_handler, NULL);
}

void dt_post(guest_ctx *ctx, tl_http *h, const char *target, const char *cookie,
             const char *body)
{
    tl_request(ctx, h, "POST", target, cookie, NULL, body, dt_handler, NULL);
}

/* The ready-made /whoami and /healthz handlers (guestuser/http.h). */
#include "core/core.h"

/* A header the page cannot go without: a 500 when it could not be set. */
static void must_header(guest_req *req, const char *name, const char *value)
{
    if (guest_res_add_header(req, name, value) != GUEST_OK)
        guest_res_set_status(req, 500);
}

void guest_whoami_view(guest_req *req, void *userdata)
{
    (void)userdata;
    const guest_user *u = NULL;
    if (guest_req_user(req, &u, NULL) != GUEST_OK) {
        guest_res_send(req, 503, "text/plain; charset=utf-8",
                       "Service Unavailable\n");
        return;
    }
    guest_res_set_status(req, 200);
    must_header(req, "Content-Type", "application/json");
    must_header(req, "Cache-Control", "no-store");
    if (!u) {
        guest_res_printf(req, "{\"authenticated\":false,\"guest\":false,"
                              "\"id\":null,\"username\":null}");
        return;
    }
    guest_res_printf(req,
                     "{\"authenticated\":true,\"guest\":%s,\"id\":%lld,"
                     "\"username\":",
                     guest_is_guest_user(u) ? "true" : "false",
                     (long long)guest_user_id(u));
    guest_res_write_json_string(req, guest_user_name(u));
    guest_res_write(req, "}", 1);
}

void guest_healthz_view(guest_req *req, void *userdata)
{
    (void)userdata;
    /* A statement: on an event loop it runs on a worker. */
    if (guest_req_defer(req))
        return;
    guest_status st = guest_ping(guest_req_ctx(req), NULL);
    guest_res_send(req, st == GUEST_OK ? 200 : 503, "text/plain; charset=utf-8",
                   st == GUEST_OK ? "ok\n" : "database unavailable\n");
}

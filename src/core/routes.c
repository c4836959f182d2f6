/* A minimal route table, so the same routes can be served by any adapter. */
#include <string.h>

#include "core/core.h"

static bool path_matches(const char *pattern, const char *path)
{
    size_t n = strlen(pattern);
    if (n && pattern[n - 1] == '*')
        return strncmp(pattern, path, n - 1) == 0;
    return strcmp(pattern, path) == 0;
}

void guest_routes_dispatch(guest_req *req, const guest_route *routes)
{
    const guest_route *r = routes;
    const char *path = guest_req_path(req);
    const char *method = guest_req_method(req);
    char allow[128] = "";
    for (; r && r->path; r++) {
        if (!path_matches(r->path, path))
            continue;
        if (!r->method || !strcmp(r->method, method) ||
            (!strcmp(method, "HEAD") && !strcmp(r->method, "GET"))) {
            r->handler(req, r->userdata);
            return;
        }
        if (strlen(allow) + strlen(r->method) + 3 < sizeof allow) {
            if (*allow)
                strcat(allow, ", ");
            strcat(allow, r->method);
        }
    }
    if (*allow) {
        guest_res_send(req, 405, "text/plain; charset=utf-8",
                       "Method Not Allowed\n");
        if (guest_res_add_header(req, "Allow", allow) != GUEST_OK)
            guest__respond_error(req);
        return;
    }
    guest_res_send(req, 404, "text/plain; charset=utf-8", "Not Found\n");
}

/* The component's answers: small HTML pages framed like the library's
 * default ones, JSON for scripts, and what is read from the request. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oidc/oidc.h"

/* Every view may block (statements, calls to the provider), so none runs
 * on an event loop's thread: there it is deferred to a worker, which calls
 * it again. */
bool guest__oidc_view_enter(guest_req *req)
{
    return req && !guest_req_defer(req);
}

bool guest__oidc_no_cache(guest_req *req)
{
    /* Pages with a CSRF token or account data must not be stored by a
     * shared cache or shown framed by another site. */
    return guest_res_add_header(req, "Cache-Control",
                                "no-cache, no-store, must-revalidate, "
                                "private") == GUEST_OK &&
           guest_res_add_header(req, "X-Frame-Options", "DENY") == GUEST_OK;
}

static void plain_500(guest_req *req)
{
    if (guest_res_reset(req) == GUEST_OK)
        guest_res_send(req, 500, "text/plain; charset=utf-8",
                       "Internal Server Error\n");
    else
        guest_res_set_status(req, 500);
}

void guest__oidc_send_json(guest_req *req, int status, json_t *obj)
{
    char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    if (!text) {
        plain_500(req);
        return;
    }
    guest_res_set_status(req, status);
    if (guest_res_add_header(req, "Content-Type", "application/json") !=
            GUEST_OK ||
        !guest__oidc_no_cache(req)) {
        plain_500(req);
    } else {
        guest_res_write(req, text, strlen(text));
        guest_res_write(req, "\n", 1);
    }
    free(text);
}

bool guest__oidc_page_begin(guest_req *req, int status, const char *title)
{
    guest_res_set_status(req, status);
    if (guest_res_add_header(req, "Content-Type", "text/html; charset=utf-8") !=
            GUEST_OK ||
        !guest__oidc_no_cache(req)) {
        plain_500(req);
        return false;
    }
    guest_res_printf(req, "<!DOCTYPE html>\n<html lang=\"en\"><head>"
                          "<meta charset=\"utf-8\"><title>");
    guest_res_write_html(req, title);
    guest_res_printf(req, "</title></head>\n<body>\n<h1>");
    guest_res_write_html(req, title);
    guest_res_printf(req, "</h1>\n");
    return true;
}

void guest__oidc_page_end(guest_req *req)
{
    guest_res_printf(req, "</body></html>\n");
}

void guest__oidc_page(guest_req *req, bool json, int status, const char *title,
                      const char *text)
{
    if (json) {
        guest__oidc_send_json(
            req, status,
            json_pack("{s:{s:[s]}}", "errors", "__all__", text ? text : title));
        return;
    }
    if (!guest__oidc_page_begin(req, status, title))
        return;
    if (text) {
        guest_res_printf(req, "<p>");
        guest_res_write_html(req, text);
        guest_res_printf(req, "</p>\n");
    }
    guest_res_printf(req, "<p><a href=\"/\">Back to the site</a></p>\n");
    guest__oidc_page_end(req);
}

guest_form *guest__oidc_form(guest_req *req, bool json)
{
    guest_form *form = NULL;
    guest_error err = {0};
    int code = guest_req_form_http_status(guest_req_form(req, &form, &err));
    if (code == 200)
        return form;
    /* A database or memory failure says nothing of the request itself. */
    guest__oidc_page(req, json, code,
                     code == 500 ? "Internal Server Error" : "Bad Request",
                     code == 500 ? NULL : err.message);
    return NULL;
}

bool guest__oidc_cookie(const guest_req *req, const char *name, char *out,
                        size_t size)
{
    const char *h = guest_req_header(req, "Cookie");
    size_t nlen = strlen(name);
    while (h && *h) {
        while (*h == ' ' || *h == ';')
            h++;
        const char *end = strchr(h, ';');
        size_t len = end ? (size_t)(end - h) : strlen(h);
        if (len > nlen && !strncmp(h, name, nlen) && h[nlen] == '=') {
            size_t vlen = len - nlen - 1;
            while (vlen > 0 && h[nlen + 1 + vlen - 1] == ' ')
                vlen--;
            if (vlen == 0 || vlen >= size)
                return false;
            memcpy(out, h + nlen + 1, vlen);
            out[vlen] = '\0';
            return true;
        }
        h = end;
    }
    return false;
}

char *guest__oidc_location(const char *url)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(url);
    char *out = malloc(3 * n + 1), *w = out;
    if (!out)
        return NULL;
    for (const unsigned char *c = (const unsigned char *)url; *c; c++) {
        if (*c <= 0x20 || *c >= 0x7f) {
            *w++ = '%';
            *w++ = hex[*c >> 4];
            *w++ = hex[*c & 15];
        } else {
            *w++ = (char)*c;
        }
    }
    *w = '\0';
    return out;
}

void guest__oidc_header(guest_req *req, const char *name, const char *value)
{
    /* Only for headers the answer can stand without (Allow, Retry-After):
     * a failure leaves the status and body as they are. */
    if (guest_res_add_header(req, name, value) != GUEST_OK)
        return;
}

/* Response helpers over the adapter's callbacks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

guest_status guest_res_set_status(guest_req *req, int status)
{
    if (!req || status < 100 || status > 999)
        return GUEST_ERR_INVALID;
    req->status = status;
    return req->ops->set_status(req->conn, status) == 0 ? GUEST_OK
                                                        : GUEST_ERR_NOMEM;
}

int guest_res_status_code(const guest_req *req)
{
    return req->status;
}

guest_status guest_res_reset(guest_req *req)
{
    if (!req || !req->ops->reset || req->ops->reset(req->conn) != 0)
        return GUEST_ERR_INVALID;
    req->status = 200;
    req->vary_cookie_sent = false;
    return GUEST_OK;
}

guest_status guest_res_add_header(guest_req *req, const char *name,
                                  const char *value)
{
    /* A CR or LF in a header would let input split the response. */
    if (!req || !name || !value || !*name || guest__has_ctl(name) ||
        strpbrk(value, "\r\n") || strchr(name, ':'))
        return GUEST_ERR_INVALID;
    return req->ops->add_header(req->conn, name, value) == 0 ? GUEST_OK
                                                             : GUEST_ERR_NOMEM;
}

guest_status guest_res_write(guest_req *req, const void *data, size_t len)
{
    if (!req || (!data && len))
        return GUEST_ERR_INVALID;
    if (!len)
        return GUEST_OK;
    return req->ops->write(req->conn, data, len) == 0 ? GUEST_OK
                                                      : GUEST_ERR_NOMEM;
}

guest_status guest_res_printf(guest_req *req, const char *fmt, ...)
{
    char small[512];
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    guest_status st;
    if (n < 0) {
        st = GUEST_ERR_INVALID;
    } else if ((size_t)n < sizeof small) {
        st = guest_res_write(req, small, (size_t)n);
    } else {
        char *big = malloc((size_t)n + 1);
        if (!big) {
            st = GUEST_ERR_NOMEM;
        } else {
            vsnprintf(big, (size_t)n + 1, fmt, ap2);
            st = guest_res_write(req, big, (size_t)n);
            free(big);
        }
    }
    va_end(ap2);
    return st;
}

guest_status guest_res_write_html(guest_req *req, const char *text)
{
    if (!text)
        return GUEST_OK;
    const char *run = text;
    guest_status st = GUEST_OK;
    for (const char *p = text; *p && st == GUEST_OK; p++) {
        const char *rep = NULL;
        switch (*p) {
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '"':
            rep = "&quot;";
            break;
        case '\'':
            rep = "&#x27;";
            break;
        default:
            continue;
        }
        st = guest_res_write(req, run, (size_t)(p - run));
        if (st == GUEST_OK)
            st = guest_res_write(req, rep, strlen(rep));
        run = p + 1;
    }
    if (st == GUEST_OK)
        st = guest_res_write(req, run, strlen(run));
    return st;
}

guest_status guest_res_write_json_string(guest_req *req, const char *text)
{
    if (!text)
        text = "";
    guest_status st = guest_res_write(req, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)text;
         *p && st == GUEST_OK; p++) {
        if (*p == '"' || *p == '\\')
            st = guest_res_printf(req, "\\%c", *p);
        else if (*p < 0x20)
            st = guest_res_printf(req, "\\u%04x", *p);
        else
            st = guest_res_write(req, p, 1);
    }
    return st == GUEST_OK ? guest_res_write(req, "\"", 1) : st;
}

guest_status guest_res_send(guest_req *req, int status,
                            const char *content_type, const char *body)
{
    guest_status st = guest_res_set_status(req, status);
    if (st == GUEST_OK && content_type)
        st = guest_res_add_header(req, "Content-Type", content_type);
    if (st == GUEST_OK && body)
        st = guest_res_write(req, body, strlen(body));
    return st;
}

guest_status guest_res_redirect(guest_req *req, const char *location)
{
    if (!location || guest__has_ctl(location))
        return GUEST_ERR_INVALID;
    guest_status st = guest_res_set_status(req, 302);
    if (st == GUEST_OK)
        st = guest_res_add_header(req, "Location", location);
    return st;
}

guest_status guest__respond_error(guest_req *req)
{
    /* An answer that lost a header it needed must not go out as it is: the
     * half-built page is dropped for a plain 500. */
    if (guest_res_reset(req) != GUEST_OK)
        return guest_res_set_status(req, 500);
    return guest_res_send(req, 500, "text/plain; charset=utf-8",
                          "Internal Server Error\n");
}

guest_status guest__respond_unavailable(guest_req *req)
{
    guest_status st = guest_res_send(req, 503, "text/plain; charset=utf-8",
                                     "Service Unavailable\n");
    if (st == GUEST_OK)
        st = guest_res_add_header(req, "Retry-After", "5");
    return st;
}

guest_status guest__res_cache_control(guest_req *req, bool no_store)
{
    unsigned char want = no_store ? 2 : 1;
    if (req->cache_sent >= want)
        return GUEST_OK;
    /* A weaker value went out already: adding the stronger one would make
     * two headers, which caches read differently; the views ask first. */
    if (req->cache_sent)
        return GUEST_OK;
    req->cache_sent = want;
    return guest_res_add_header(
        req, "Cache-Control",
        no_store ? "no-cache, no-store, must-revalidate, private" : "private");
}

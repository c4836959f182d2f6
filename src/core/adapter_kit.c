/* Response collection and small helpers shared by the server adapters. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "guestuser/adapter.h"

int guest_buf_append(guest_buf *b, const void *data, size_t len)
{
    if (len > SIZE_MAX / 2 - b->len - 1)
        return -1;
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + len + 1)
            cap *= 2;
        char *p = realloc(b->data, cap);
        if (!p)
            return -1;
        b->data = p;
        b->cap = cap;
    }
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

void guest_buf_cleanup(guest_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

void guest_response_init(guest_response *r)
{
    memset(r, 0, sizeof *r);
    r->status = 200;
}

int guest_response_set_status(guest_response *r, int status)
{
    r->status = status;
    return 0;
}

int guest_response_add_header(guest_response *r, const char *name,
                              const char *value)
{
    if (r->max_headers && r->header_count >= r->max_headers)
        return -1;
    char **h = realloc(r->headers, (r->header_count + 1) * 2 * sizeof *h);
    if (!h)
        return -1;
    r->headers = h;
    char *n = strdup(name), *v = strdup(value);
    if (!n || !v) {
        free(n);
        free(v);
        return -1;
    }
    h[r->header_count * 2] = n;
    h[r->header_count * 2 + 1] = v;
    r->header_count++;
    return 0;
}

int guest_response_write(guest_response *r, const void *data, size_t len)
{
    return guest_buf_append(&r->body, data, len);
}

static void drop_headers(guest_response *r)
{
    for (size_t i = 0; i < r->header_count * 2; i++)
        free(r->headers[i]);
    free(r->headers);
    r->headers = NULL;
    r->header_count = 0;
}

void guest_response_reset(guest_response *r, int status)
{
    drop_headers(r);
    r->body.len = 0;
    if (r->body.data)
        r->body.data[0] = '\0';
    r->status = status;
}

void guest_response_cleanup(guest_response *r)
{
    drop_headers(r);
    guest_buf_cleanup(&r->body);
}

int guest_buf_append_field_line(guest_buf *b, const char *name,
                                const char *value)
{
    if (!b || !name)
        return -1;
    const char *sep = strcasecmp(name, "Cookie") != 0 ? ", " : "; ";
    size_t had = b->len;
    if (!value)
        value = "";
    if ((had && guest_buf_append(b, sep, 2) != 0) ||
        guest_buf_append(b, value, strlen(value)) != 0) {
        /* Nothing half-appended stays behind. */
        b->len = had;
        if (b->data)
            b->data[had] = '\0';
        return -1;
    }
    return 0;
}

int guest_sockaddr_parse(const char *addr, uint16_t port,
                         struct sockaddr_storage *out)
{
    memset(out, 0, sizeof *out);
    if (!addr)
        addr = "127.0.0.1";
    struct sockaddr_in *v4 = (struct sockaddr_in *)out;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
    if (inet_pton(AF_INET, addr, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        return AF_INET;
    }
    if (inet_pton(AF_INET6, addr, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        return AF_INET6;
    }
    return 0;
}

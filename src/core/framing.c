/* The checks on a request's header lines that keep a proxy in front and
 * the server from reading its framing two ways (request smuggling), for
 * the server adapters, which each see the lines as their server library
 * parsed them. */
#include <limits.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "core/core.h"
#include "guestuser/adapter.h"

int guest_header_name_ok(const char *name)
{
    if (!name || !*name)
        return -1;
    for (const char *s = name; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              (*s >= '0' && *s <= '9') || strchr("!#$%&'*+-.^_`|~", *s)))
            return -1;
    return 0;
}

int guest_header_value_ok(const char *value)
{
    for (const unsigned char *p = (const unsigned char *)value; p && *p; p++)
        if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
            return -1;
    return 0;
}

int guest_content_length_parse(const char *value, unsigned long long *n)
{
    if (!value)
        return -1;
    const char *v = value + strspn(value, " \t");
    if (*v < '0' || *v > '9')
        return -1;
    unsigned long long x = 0;
    bool over = false;
    for (; *v >= '0' && *v <= '9'; v++) {
        unsigned d = (unsigned)(*v - '0');
        if (x > (ULLONG_MAX - d) / 10)
            over = true;
        else
            x = x * 10 + d;
    }
    v += strspn(v, " \t");
    if (*v)
        return -1;
    if (over)
        return 1;
    if (n)
        *n = x;
    return 0;
}

bool guest_content_length_over(const char *value, size_t max)
{
    unsigned long long n = 0;
    return value && (guest_content_length_parse(value, &n) != 0 || n > max);
}

void guest_framing_add(guest_framing *f, const char *name, const char *value)
{
    if (!f || !name)
        return;
    unsigned long long len;
    if (!strcasecmp(name, "Content-Length")) {
        f->content_length++;
        if (guest_content_length_parse(value, &len) < 0)
            f->bad_value = true;
    } else if (!strcasecmp(name, "Transfer-Encoding")) {
        f->transfer_encoding++;
        /* Chunked must be the final coding, and it is the only one the
         * server decodes (RFC 9112 6.1). */
        if (!value || strcasecmp(value + strspn(value, " \t"), "chunked") != 0)
            f->bad_value = true;
    } else if (!strcasecmp(name, "Host")) {
        f->host++;
    }
}

bool guest_framing_refused(const guest_framing *f, bool http11)
{
    if (!f)
        return true;
    return f->bad_value || f->content_length > 1 || f->transfer_encoding > 1 ||
           f->host > 1 || (f->content_length && f->transfer_encoding) ||
           (f->transfer_encoding && !http11);
}

bool guest_header_has_token(const char *value, const char *token)
{
    if (!value || !token)
        return false;
    size_t n = strlen(token);
    for (const char *p = value; *p;) {
        p += strspn(p, " \t,");
        size_t len = strcspn(p, ",");
        size_t trimmed = len;
        while (trimmed && (p[trimmed - 1] == ' ' || p[trimmed - 1] == '\t'))
            trimmed--;
        if (trimmed == n && !strncasecmp(p, token, n))
            return true;
        p += len;
    }
    return false;
}

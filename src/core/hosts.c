/* allowed_hosts: the names this site answers to, as Django's ALLOWED_HOSTS.
 * A Host header is what a redirect target or a CSRF origin is compared
 * with, so a foreign one must never reach a handler. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/core.h"

/* A DNS name has at most 253 characters; with a port or brackets this is
 * still plenty. */
#define HOST_MAX 300

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-';
}

/* "[v6]" (lowercase) rewritten in place in its canonical form, so that
 * "[0:0::1]" and "[::1]" are the same host. */
static bool canonical_v6(char *s, size_t n, size_t cap)
{
    if (n < 4 || s[0] != '[' || s[n - 1] != ']')
        return false;
    /* Django's shape: [a-f0-9]*:[a-f0-9.:]+ between the brackets. */
    for (size_t i = 1; i < n - 1; i++)
        if (!((s[i] >= 'a' && s[i] <= 'f') || (s[i] >= '0' && s[i] <= '9') ||
              s[i] == ':' || s[i] == '.'))
            return false;
    char inner[INET6_ADDRSTRLEN];
    unsigned char bin[16];
    if (n - 2 >= sizeof inner)
        return false;
    memcpy(inner, s + 1, n - 2);
    inner[n - 2] = '\0';
    if (inet_pton(AF_INET6, inner, bin) != 1 ||
        !inet_ntop(AF_INET6, bin, inner, sizeof inner) ||
        strlen(inner) + 3 > cap)
        return false;
    s[0] = '[';
    strcpy(s + 1, inner);
    strcat(s, "]");
    return true;
}

/* The host part of a Host header value, lowercased, without port and
 * trailing dot, into out[HOST_MAX]; false when malformed. */
static bool host_domain(const char *value, char *out)
{
    size_t n = strlen(value);
    if (n == 0 || n >= HOST_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        out[i] = lower(value[i]);
    out[n] = '\0';
    size_t dlen;
    if (out[0] == '[') {
        char *close = strchr(out, ']');
        if (!close)
            return false;
        dlen = (size_t)(close - out) + 1;
    } else {
        dlen = 0;
        while (name_char(out[dlen]))
            dlen++;
        if (dlen == 0)
            return false;
    }
    if (out[dlen]) {
        const char *port = out + dlen + 1;
        if (out[dlen] != ':' || !*port ||
            strspn(port, "0123456789") != strlen(port))
            return false;
    }
    out[dlen] = '\0';
    if (out[0] == '[')
        return canonical_v6(out, dlen, HOST_MAX);
    if (out[dlen - 1] == '.')
        out[--dlen] = '\0';
    return dlen > 0;
}

/* One allowed_hosts entry, trimmed, into a lowercase copy; NULL when it is
 * malformed (*bad) or out of memory. */
static char *parse_entry(const char *s, size_t n, bool *bad)
{
    *bad = true;
    if (n == 0 || n >= HOST_MAX)
        return NULL;
    char buf[HOST_MAX + 2];
    for (size_t i = 0; i < n; i++)
        buf[i] = lower(s[i]);
    buf[n] = '\0';
    if (strcmp(buf, "*") != 0) {
        char *d = buf + (buf[0] == '.');
        size_t dn = strlen(d);
        if (dn && strchr(d, ':') && d[0] != '[') {
            /* A bare IPv6 address: the Host header brackets it. */
            memmove(d + 1, d, dn + 1);
            d[0] = '[';
            strcpy(d + dn + 1, "]");
            dn += 2;
        }
        if (dn && d[0] == '[') {
            if (d != buf || !canonical_v6(d, dn, sizeof buf))
                return NULL;
        } else {
            if (dn && d[dn - 1] == '.')
                d[--dn] = '\0';
            if (!dn ||
                strspn(d, "abcdefghijklmnopqrstuvwxyz0123456789.-") != dn)
                return NULL;
        }
    }
    *bad = false;
    return guest__strdup(buf);
}

guest_status guest__hosts_parse(guest_ctx *ctx, guest_error *err)
{
    guest__core *core = ctx->core;
    const char *list = ctx->cfg.allowed_hosts;
    if (!list)
        return GUEST_OK;
    size_t count = 1;
    for (const char *p = list; *p; p++)
        count += *p == ',';
    core->hosts = calloc(count, sizeof *core->hosts);
    if (!core->hosts)
        return guest__fail(err, GUEST_ERR_NOMEM, "out of memory");
    core->hosts_set = true;
    for (const char *p = list;;) {
        size_t n = strcspn(p, ",");
        const char *e = p;
        size_t en = n;
        while (en && (*e == ' ' || *e == '\t')) {
            e++;
            en--;
        }
        while (en && (e[en - 1] == ' ' || e[en - 1] == '\t'))
            en--;
        bool bad;
        char *entry = parse_entry(e, en, &bad);
        if (!entry && bad)
            return guest__fail(
                err, GUEST_ERR_CONFIG,
                "allowed_hosts entry \"%.*s\" is not a host name, \".\" + "
                "a domain, \"*\" or an IP address (without port)",
                (int)(en > 64 ? 64 : en), e);
        if (!entry)
            return guest__fail(err, GUEST_ERR_NOMEM, "out of memory");
        core->hosts[core->host_count++] = entry;
        if (!p[n])
            break;
        p += n + 1;
    }
    return GUEST_OK;
}

void guest__hosts_free(guest_ctx *ctx)
{
    guest__core *core = ctx->core;
    for (size_t i = 0; i < core->host_count; i++)
        free(core->hosts[i]);
    free(core->hosts);
}

/* Django's is_same_domain: exact, or ".example.com" for example.com and
 * every subdomain. */
static bool matches(const char *pattern, const char *host)
{
    if (!strcmp(pattern, "*") || !strcmp(pattern, host))
        return true;
    if (pattern[0] != '.')
        return false;
    size_t pn = strlen(pattern), hn = strlen(host);
    return !strcmp(pattern + 1, host) ||
           (hn > pn && !strcmp(host + hn - pn, pattern));
}

bool guest__host_allowed(const guest_ctx *ctx, const char *host)
{
    const guest__core *core = ctx->core;
    if (!core->hosts_set)
        return true;
    char domain[HOST_MAX];
    if (!host || !host_domain(host, domain))
        return false;
    for (size_t i = 0; i < core->host_count; i++)
        if (matches(core->hosts[i], domain))
            return true;
    return false;
}

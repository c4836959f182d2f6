/* Who the client is: the socket peer, or behind trusted reverse proxies the
 * address they vouch for in X-Forwarded-For. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/core.h"

/* Longer than any address text with a zone; longer input is not one. */
#define IP_TEXT_MAX 64

static const unsigned char v4_mapped[12] = {0, 0, 0, 0, 0,    0,
                                            0, 0, 0, 0, 0xff, 0xff};

bool guest__parse_ip(const char *s, size_t n, unsigned char out[16],
                     int *family)
{
    char buf[IP_TEXT_MAX];
    if (n == 0 || n >= sizeof buf)
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (inet_pton(AF_INET, buf, out + 12) == 1) {
        memcpy(out, v4_mapped, sizeof v4_mapped);
        *family = AF_INET;
        return true;
    }
    char *zone = strchr(buf, '%');
    if (zone) {
        if (zone == buf || !zone[1])
            return false;
        *zone = '\0';
    }
    if (!strchr(buf, ':') || inet_pton(AF_INET6, buf, out) != 1)
        return false;
    *family = memcmp(out, v4_mapped, sizeof v4_mapped) ? AF_INET6 : AF_INET;
    return true;
}

static bool in_block(const guest__cidr *c, const unsigned char ip[16])
{
    unsigned full = c->prefix / 8, rest = c->prefix % 8;
    if (memcmp(c->addr, ip, full) != 0)
        return false;
    if (!rest)
        return true;
    unsigned char mask = (unsigned char)(0xFF << (8 - rest));
    return (c->addr[full] & mask) == (ip[full] & mask);
}

static bool trusted(const guest_ctx *ctx, const unsigned char ip[16])
{
    for (size_t i = 0; i < ctx->core->proxy_count; i++)
        if (in_block(&ctx->core->proxies[i], ip))
            return true;
    return false;
}

static void trim(const char **s, size_t *n)
{
    while (*n && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*n)--;
    }
    while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
        (*n)--;
}

/* One "CIDR" or bare address of trusted_proxies into @p c. */
static bool parse_block(const char *s, size_t n, guest__cidr *c)
{
    const char *slash = memchr(s, '/', n);
    size_t alen = slash ? (size_t)(slash - s) : n;
    int family;
    if (!guest__parse_ip(s, alen, c->addr, &family) || memchr(s, '%', alen))
        return false;
    /* "::ffff:10.0.0.0/104" and "10.0.0.0/8" are the same block. */
    unsigned bits = family == AF_INET && !memchr(s, ':', alen) ? 32 : 128;
    unsigned prefix = bits;
    if (slash) {
        const char *p = slash + 1, *end = s + n;
        if (p == end || end - p > 3)
            return false;
        prefix = 0;
        for (; p < end; p++) {
            if (*p < '0' || *p > '9')
                return false;
            prefix = prefix * 10 + (unsigned)(*p - '0');
        }
        if (prefix > bits)
            return false;
    }
    c->prefix = prefix + (128 - bits);
    /* Host bits set ("10.0.0.1/8") are usually a typo for another block;
     * refuse rather than guess which was meant. */
    for (unsigned b = c->prefix; b < 128; b++)
        if (c->addr[b / 8] & (0x80 >> (b % 8)))
            return false;
    return true;
}

guest_status guest__proxies_parse(guest_ctx *ctx, guest_error *err)
{
    guest__core *core = ctx->core;
    const char *list = ctx->cfg.trusted_proxies;
    size_t len = list ? strlen(list) : 0;
    const char *t = list;
    size_t tn = len;
    if (t)
        trim(&t, &tn);
    if (!tn)
        return GUEST_OK;
    size_t count = 1;
    for (size_t i = 0; i < len; i++)
        count += list[i] == ',';
    core->proxies = calloc(count, sizeof *core->proxies);
    if (!core->proxies)
        return guest__fail(err, GUEST_ERR_NOMEM, "out of memory");
    for (const char *p = list;;) {
        size_t n = strcspn(p, ",");
        const char *e = p;
        size_t en = n;
        trim(&e, &en);
        if (!parse_block(e, en, &core->proxies[core->proxy_count]))
            return guest__fail(err, GUEST_ERR_CONFIG,
                               "trusted_proxies entry \"%.*s\" is not an "
                               "IPv4 or IPv6 address or CIDR block (such as "
                               "10.0.0.0/8 or ::1/128, without host bits)",
                               (int)(en > 64 ? 64 : en), e);
        core->proxy_count++;
        if (!p[n])
            break;
        p += n + 1;
    }
    return GUEST_OK;
}

/* One X-Forwarded-For entry: an address, "a.b.c.d:port", "[v6]" or
 * "[v6]:port" (some proxies add the port). */
static bool parse_hop(const char *s, size_t n, unsigned char out[16],
                      int *family)
{
    trim(&s, &n);
    if (!n)
        return false;
    const char *addr = s;
    size_t alen = n;
    const char *port = NULL;
    if (s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (!close)
            return false;
        addr = s + 1;
        alen = (size_t)(close - addr);
        if (close + 1 < s + n) {
            if (close[1] != ':')
                return false;
            port = close + 2;
        }
        if (!memchr(addr, ':', alen))
            return false;
    } else {
        const char *colon = memchr(s, ':', n);
        if (colon && !memchr(colon + 1, ':', (size_t)(s + n - colon - 1))) {
            alen = (size_t)(colon - s);
            port = colon + 1;
        }
    }
    if (port) {
        size_t plen = (size_t)(s + n - port);
        if (plen < 1 || plen > 5 || strspn(port, "0123456789") < plen ||
            strtol(port, NULL, 10) > 65535)
            return false;
    }
    return guest__parse_ip(addr, alen, out, family);
}

void guest__req_find_client(guest_req *req)
{
    const guest_http_ops *ops = req->ops;
    const char *peer = ops->client_addr ? ops->client_addr(req->conn) : NULL;
    req->peer = peer;
    req->client = peer;
    req->client_family = 0;
    unsigned char ip[16];
    int family;
    if (!peer || !guest__parse_ip(peer, strlen(peer), ip, &family))
        return;
    const char *xff = req->ctx->core->proxy_count && trusted(req->ctx, ip)
                          ? ops->header(req->conn, "X-Forwarded-For")
                          : NULL;
    /* Each proxy appends the address it saw, so the right end is the
     * nearest hop and the only part a trusted proxy wrote; the walk goes
     * left only while the hop it reached is trusted too. */
    for (const char *end = xff ? xff + strlen(xff) : NULL; end;) {
        const char *start = end;
        while (start > xff && start[-1] != ',')
            start--;
        unsigned char hop[16];
        int hop_family;
        /* A malformed entry was not written by a proxy we trust, and
         * nothing to its left can be vouched for: the last good hop is the
         * client. It is a trusted proxy then, so garbage never buys a
         * client an address of its choice. */
        if (!parse_hop(start, (size_t)(end - start), hop, &hop_family))
            break;
        memcpy(ip, hop, sizeof ip);
        family = hop_family;
        if (!trusted(req->ctx, ip) || start == xff)
            break;
        end = start - 1;
    }
    memcpy(req->client_ip, ip, sizeof ip);
    req->client_family = family;
    if (family == AF_INET)
        inet_ntop(AF_INET, ip + 12, req->client_buf, sizeof req->client_buf);
    else
        inet_ntop(AF_INET6, ip, req->client_buf, sizeof req->client_buf);
    req->client = req->client_buf;
}

bool guest__req_client_ip(const guest_req *req, unsigned char out[16],
                          int *family)
{
    if (!req || !req->client_family)
        return false;
    memcpy(out, req->client_ip, 16);
    *family = req->client_family;
    return true;
}

const char *guest_req_client_addr(const guest_req *req)
{
    return req ? req->client : NULL;
}

const char *guest_req_peer_addr(const guest_req *req)
{
    return req ? req->peer : NULL;
}

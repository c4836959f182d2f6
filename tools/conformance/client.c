#include "client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int cf_timeout_ms = 30000;

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds left until @p deadline, 0 when past it. */
static int left(long long deadline)
{
    long long l = deadline - now_ms();
    return l > 0 ? (int)l : 0;
}

bool cf_parse_url(const char *url, cf_target *t, char *why, size_t n)
{
    memset(t, 0, sizeof *t);
    if (!strncmp(url, "https://", 8)) {
        snprintf(why, n,
                 "https:// is not supported: run the checks over "
                 "plain http");
        return false;
    }
    if (strncmp(url, "http://", 7)) {
        snprintf(why, n, "the URL must start with http://");
        return false;
    }
    const char *p = url + 7, *end = p + strcspn(p, "/?#");
    if (*end && strcmp(end, "/")) {
        snprintf(why, n, "the URL must name the server's root, not '%s'", end);
        return false;
    }
    const char *port = NULL;
    if (*p == '[') {
        const char *close = memchr(p, ']', (size_t)(end - p));
        if (!close || close == p + 1 ||
            (size_t)(close - p - 1) >= sizeof t->host) {
            snprintf(why, n, "malformed IPv6 address in the URL");
            return false;
        }
        memcpy(t->host, p + 1, (size_t)(close - p - 1));
        if (close + 1 < end) {
            if (close[1] != ':') {
                snprintf(why, n, "malformed URL after ']'");
                return false;
            }
            port = close + 2;
        }
    } else {
        const char *colon = memchr(p, ':', (size_t)(end - p));
        const char *hend = colon ? colon : end;
        if (hend == p || (size_t)(hend - p) >= sizeof t->host) {
            snprintf(why, n, "no host in the URL");
            return false;
        }
        memcpy(t->host, p, (size_t)(hend - p));
        if (colon)
            port = colon + 1;
    }
    if (port) {
        size_t len = (size_t)(end - port);
        if (len == 0 || len > 5 || strspn(port, "0123456789") < len ||
            atoi(port) < 1 || atoi(port) > 65535) {
            snprintf(why, n, "bad port in the URL");
            return false;
        }
        memcpy(t->port, port, len);
    } else {
        strcpy(t->port, "80");
    }
    snprintf(t->host_header, sizeof t->host_header, "%.*s", (int)(end - p), p);
    return true;
}

int cf_connect(const cf_target *t, char *why, size_t n)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(t->host, t->port, &hints, &res);
    if (rc) {
        snprintf(why, n, "cannot resolve %s: %s", t->host, gai_strerror(rc));
        return -1;
    }
    int fd = -1, err = 0;
    long long deadline = now_ms() + cf_timeout_ms;
    for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
        fd =
            socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        int flags = fcntl(fd, F_GETFL);
        fcntl(fd, F_SETFL, flags | O_NONBLOCK);
        if (connect(fd, a->ai_addr, a->ai_addrlen) && errno != EINPROGRESS) {
            err = errno;
        } else {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            socklen_t len = sizeof err;
            err = ETIMEDOUT;
            if (poll(&p, 1, left(deadline)) == 1)
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        }
        if (err) {
            close(fd);
            fd = -1;
        } else {
            fcntl(fd, F_SETFL, flags);
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        snprintf(why, n, "cannot connect to %s port %s: %s", t->host, t->port,
                 strerror(err ? err : ECONNREFUSED));
    return fd;
}

bool cf_send(int fd, const char *data, size_t len)
{
    long long deadline = now_ms() + cf_timeout_ms;
    while (len) {
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        if (poll(&p, 1, left(deadline)) != 1)
            return false;
        ssize_t w = send(fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (w <= 0)
            return false;
        data += w;
        len -= (size_t)w;
    }
    return true;
}

typedef struct rbuf {
    char *d;
    size_t n, cap;
} rbuf;

/* One read into @p b: >0 bytes read, 0 at EOF, -1 on an error or the
 * deadline. */
static long fill(int fd, rbuf *b, long long deadline)
{
    if (b->n + 4096 + 1 > b->cap) {
        size_t cap = (b->n + 4096 + 1) * 2;
        char *d = realloc(b->d, cap);
        if (!d)
            return -1;
        b->d = d;
        b->cap = cap;
    }
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int pr = poll(&p, 1, left(deadline));
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr != 1)
            return -1;
        ssize_t r = recv(fd, b->d + b->n, b->cap - b->n - 1, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return errno == ECONNRESET ? 0 : -1;
        b->n += (size_t)r;
        b->d[b->n] = '\0';
        return (long)r;
    }
}

/* Reads until @p want bytes are in @p b; false at EOF or the deadline. */
static bool fill_to(int fd, rbuf *b, size_t want, long long deadline)
{
    while (b->n < want)
        if (fill(fd, b, deadline) <= 0)
            return false;
    return true;
}

static char *find_crlf(rbuf *b, size_t from)
{
    for (size_t i = from; i + 1 < b->n; i++)
        if (b->d[i] == '\r' && b->d[i + 1] == '\n')
            return b->d + i;
    return NULL;
}

/* Decodes a chunked body that starts at @p pos of @p b into @p out. */
static bool dechunk(int fd, rbuf *b, size_t pos, rbuf *out, long long deadline,
                    char *why, size_t n)
{
    for (;;) {
        char *eol;
        while (!(eol = find_crlf(b, pos)))
            if (fill(fd, b, deadline) <= 0) {
                snprintf(why, n, "chunked body ended inside a chunk size");
                return false;
            }
        char *endp;
        unsigned long long size = strtoull(b->d + pos, &endp, 16);
        if (endp == b->d + pos || size > (1ull << 30)) {
            snprintf(why, n, "malformed chunk size");
            return false;
        }
        pos = (size_t)(eol - b->d) + 2;
        if (size == 0)
            break;
        if (!fill_to(fd, b, pos + size + 2, deadline)) {
            snprintf(why, n, "chunked body ended inside a chunk");
            return false;
        }
        size_t need = out->n + size + 1;
        if (need > out->cap) {
            char *d = realloc(out->d, need);
            if (!d) {
                snprintf(why, n, "out of memory");
                return false;
            }
            out->d = d;
            out->cap = need;
        }
        memcpy(out->d + out->n, b->d + pos, size);
        out->n += size;
        out->d[out->n] = '\0';
        pos += size + 2;
    }
    /* trailers, up to the empty line */
    for (;;) {
        char *eol;
        while (!(eol = find_crlf(b, pos)))
            if (fill(fd, b, deadline) <= 0) {
                snprintf(why, n, "chunked body ended inside its trailer");
                return false;
            }
        bool empty = eol == b->d + pos;
        pos = (size_t)(eol - b->d) + 2;
        if (empty)
            break;
    }
    if (pos != b->n) {
        snprintf(why, n, "%zu bytes beyond the chunked body", b->n - pos);
        return false;
    }
    return true;
}

bool cf_read(int fd, bool head, cf_response *r, char *why, size_t n)
{
    memset(r, 0, sizeof *r);
    long long deadline = now_ms() + cf_timeout_ms;
    rbuf b = {0};
    char *end = NULL;
    while (!b.d || !(end = strstr(b.d, "\r\n\r\n"))) {
        long got = fill(fd, &b, deadline);
        if (got <= 0) {
            snprintf(why, n,
                     got == 0 ? (b.n ? "the connection closed inside the "
                                       "response headers"
                                     : "the server closed the connection "
                                       "without a response")
                              : "no complete response within the timeout");
            free(b.d);
            return false;
        }
    }
    size_t hlen = (size_t)(end - b.d) + 4;
    r->head = malloc(hlen + 1);
    if (!r->head) {
        free(b.d);
        snprintf(why, n, "out of memory");
        return false;
    }
    memcpy(r->head, b.d, hlen);
    r->head[hlen] = '\0';
    int minor;
    if (sscanf(r->head, "HTTP/1.%d %3d", &minor, &r->status) != 2 ||
        r->status < 100) {
        snprintf(why, n, "malformed status line: %.60s", r->head);
        free(b.d);
        cf_response_free(r);
        return false;
    }
    /* split the header lines in place */
    char *line = strstr(r->head, "\r\n") + 2;
    while (line && *line != '\r' && r->nheaders < 256) {
        char *eol = strstr(line, "\r\n");
        *eol = '\0';
        char *colon = strchr(line, ':');
        if (colon) {
            *colon = '\0';
            char *v = colon + 1;
            v += strspn(v, " \t");
            size_t vl = strlen(v);
            while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
                v[--vl] = '\0';
            r->names[r->nheaders] = line;
            r->values[r->nheaders++] = v;
        }
        line = eol + 2;
    }
    const char *te = cf_header(r, "Transfer-Encoding");
    const char *cl = cf_header(r, "Content-Length");
    const char *conn = cf_header(r, "Connection");
    bool no_body =
        head || r->status < 200 || r->status == 204 || r->status == 304;
    rbuf body = {0};
    bool ok = true;
    if (no_body) {
        if (b.n > hlen) {
            snprintf(why, n, "%zu bytes after a response that has no body",
                     b.n - hlen);
            ok = false;
        }
    } else if (te && strcasecmp(te, "identity")) {
        if (strcasecmp(te, "chunked")) {
            snprintf(why, n, "unknown Transfer-Encoding '%s'", te);
            ok = false;
        } else {
            ok = dechunk(fd, &b, hlen, &body, deadline, why, n);
        }
    } else if (cl) {
        char *endp;
        unsigned long long len = strtoull(cl, &endp, 10);
        if (*endp || endp == cl || len > (1ull << 30)) {
            snprintf(why, n, "bad Content-Length '%s'", cl);
            ok = false;
        } else if (!fill_to(fd, &b, hlen + len, deadline)) {
            snprintf(why, n, "body shorter than its Content-Length %llu", len);
            ok = false;
        } else if (b.n != hlen + len) {
            snprintf(why, n, "%llu bytes beyond the Content-Length",
                     (unsigned long long)(b.n - hlen) - len);
            ok = false;
        } else {
            body.d = malloc(len + 1);
            if (body.d) {
                memcpy(body.d, b.d + hlen, len);
                body.d[len] = '\0';
                body.n = len;
            }
        }
    } else {
        /* framed by the end of the connection */
        long got;
        while ((got = fill(fd, &b, deadline)) > 0)
            ;
        if (got < 0) {
            snprintf(why, n,
                     "a response without Content-Length that did not "
                     "end within the timeout");
            ok = false;
        }
        r->closed = true;
        body.n = b.n - hlen;
        body.d = malloc(body.n + 1);
        if (body.d) {
            memcpy(body.d, b.d + hlen, body.n);
            body.d[body.n] = '\0';
        }
    }
    free(b.d);
    if (ok && !body.d)
        body.d = calloc(1, 1);
    r->body = body.d;
    r->body_len = body.n;
    if (conn && !strcasecmp(conn, "close"))
        r->closed = true;
    if (!ok || !r->body) {
        if (ok)
            snprintf(why, n, "out of memory");
        cf_response_free(r);
        return false;
    }
    return true;
}

bool cf_closes(int fd)
{
    return cf_drain(fd) == 0;
}

long cf_drain(int fd)
{
    long long deadline = now_ms() + cf_timeout_ms;
    rbuf b = {0};
    long got;
    while ((got = fill(fd, &b, deadline)) > 0)
        ;
    free(b.d);
    return got < 0 ? -1 : (long)b.n;
}

long cf_read_all(int fd, char **out)
{
    long long deadline = now_ms() + cf_timeout_ms;
    rbuf b = {0};
    long got;
    while ((got = fill(fd, &b, deadline)) > 0)
        ;
    if (!b.d)
        b.d = calloc(1, 1);
    *out = b.d;
    if (!b.d)
        return -1;
    return got < 0 ? -1 : (long)b.n;
}

static void local_addr(int fd, char *out, size_t size)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    out[0] = '\0';
    if (getsockname(fd, (struct sockaddr *)&ss, &len))
        return;
    if (ss.ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, out,
                  (socklen_t)size);
    else if (ss.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, out,
                  (socklen_t)size);
}

bool cf_exchange(const cf_target *t, const char *request, bool head,
                 cf_response *r, char *why, size_t n)
{
    memset(r, 0, sizeof *r);
    int fd = cf_connect(t, why, n);
    if (fd < 0)
        return false;
    char local[64], rwhy[256];
    local_addr(fd, local, sizeof local);
    bool sent = cf_send(fd, request, strlen(request));
    /* a server may answer (413, 431) before it read all of the request */
    bool ok = cf_read(fd, head, r, rwhy, sizeof rwhy);
    if (ok)
        snprintf(r->local, sizeof r->local, "%s", local);
    else
        snprintf(why, n, "%s%s",
                 sent ? "" : "the server stopped reading the request; ", rwhy);
    close(fd);
    return ok;
}

const char *cf_header(const cf_response *r, const char *name)
{
    for (size_t i = 0; i < r->nheaders; i++)
        if (!strcasecmp(r->names[i], name))
            return r->values[i];
    return NULL;
}

size_t cf_header_count(const cf_response *r, const char *name)
{
    size_t c = 0;
    for (size_t i = 0; i < r->nheaders; i++)
        c += !strcasecmp(r->names[i], name);
    return c;
}

void cf_response_free(cf_response *r)
{
    free(r->head);
    free(r->body);
    memset(r, 0, sizeof *r);
}

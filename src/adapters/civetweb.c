/* CivetWeb adapter: reads the whole body first and buffers the response,
 * because the library's handlers may set the status and headers after
 * writing body bytes, while CivetWeb sends headers before the body. */
#include <arpa/inet.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "guestuser/adapter.h"
#include "guestuser/adapters/civetweb.h"

struct guest_civetweb {
    guest_ctx *ctx;
    guest_handler_fn handler;
    void *userdata;
    size_t max_body;
    guest_civetweb_limits limits;
    /* CivetWeb's error log, at most a line per kind per interval. */
    guest_log_limiter *log;
};

typedef struct cw_req {
    struct mg_connection *conn;
    const struct mg_request_info *ri;
    guest_buf target;
    guest_buf body;
    guest_response res;
    /* Values of header fields sent on several lines, joined (op_header). */
    guest_joined joined;
} cw_req;

/* mg_response_header_add() refuses more than MG_MAX_HEADERS headers; one is
 * kept for Content-Length, so a handler learns of the limit when it adds a
 * header rather than by a header silently missing from the response. */
#define CW_MAX_HANDLER_HEADERS (MG_MAX_HEADERS - 1)

/* A field sent on several lines is seen whole, as RFC 9110 5.3 joins
 * them (cookies with "; "): reading only its first line would let a client
 * put its own X-Forwarded-For line before a proxy's. */
static const char *op_header(void *c, const char *name)
{
    cw_req *r = c;
    const struct mg_header *h = r->ri->http_headers;
    guest_field f = {0};
    for (int i = 0; i < r->ri->num_headers; i++)
        if (h[i].name && !strcasecmp(h[i].name, name))
            guest_field_add(&f, name, h[i].value);
    return guest_field_value(&f, &r->joined);
}

/* Whether CivetWeb took every line of the header block. It parses the
 * block in place, writing a NUL over each CR, LF and colon, and stops
 * without a word at a line it does not read as a header (an obsolete
 * folded line, one starting with ':' or a byte past ASCII) and after
 * MG_MAX_HEADERS lines; the lines after that are missing from
 * request_info while still counting as the header block, so a second
 * Content-Length or a Transfer-Encoding there would escape the checks
 * below. Where it stopped shows in its buffer: each line must end in two
 * NULs (CRLF) with the next one right after, and the empty line must
 * follow the last header. A bare LF leaves one NUL, and then the end of
 * the last line cannot be told from a hidden one, so it is refused too, as
 * is a request without any header (whitespace at the start of a first
 * header line leaves the same NULs as an empty line). */
static bool headers_complete(const struct mg_connection *conn,
                             const struct mg_request_info *ri)
{
    const struct mg_header *h = ri->http_headers;
    if (ri->num_headers < 1 || !ri->http_version || !ri->request_method)
        return false;
    /* The peek after the last line below stays inside the block when that
     * line ends in CRLF; after a bare LF it reads the byte past the block,
     * which this bound keeps inside CivetWeb's buffer of max_request_size
     * bytes unless blank bytes before the request line (which CivetWeb
     * skips, and which this cannot see) fill that buffer to its end. */
    const char *size = mg_get_option(mg_get_context(conn), "max_request_size");
    uintptr_t limit = (uintptr_t)ri->request_method +
                      (uintptr_t)(size ? strtol(size, NULL, 10) : 0);
    const char *end = ri->http_version + strlen(ri->http_version);
    for (int i = 0; i < ri->num_headers; i++) {
        if (!h[i].name || !h[i].value || end[0] || end[1] ||
            h[i].name != end + 2 || guest_header_name_ok(h[i].name) != 0)
            return false;
        /* The colon right after the name, then only blanks. */
        const char *p = h[i].name + strlen(h[i].name) + 1;
        while (p < h[i].value && (*p == ' ' || *p == '\t'))
            p++;
        if (p != h[i].value)
            return false;
        end = h[i].value + strlen(h[i].value);
    }
    if ((uintptr_t)end + 3 >= limit || end[0] || end[1])
        return false;
    /* A NUL is CivetWeb's mark over the block's last LF. */
    return !end[2] || (end[2] == '\r' && !end[3]);
}

/* Framing a proxy in front might read differently from the server (request
 * smuggling): two Content-Lengths, Content-Length with Transfer-Encoding,
 * two Hosts, a Content-Length that is not a plain number, a
 * Transfer-Encoding other than one line of "chunked", or one in a request
 * older than HTTP/1.1 (RFC 9112 6.1: faulty framing; CivetWeb would decode
 * it and keep the connection). CivetWeb reads only the first of two
 * Transfer-Encoding lines; it refuses "chunked" with blanks after it
 * itself, and ignores "identity", reading the body by Content-Length or
 * as empty. Of a Content-Length it takes the leading digits ("0, 43" is 0)
 * and answers 411 only when there are none (see http_error). */
static bool ambiguous_framing(const struct mg_request_info *ri)
{
    guest_framing f = {0};
    for (int i = 0; i < ri->num_headers; i++)
        guest_framing_add(&f, ri->http_headers[i].name,
                          ri->http_headers[i].value);
    return guest_framing_refused(&f, ri->http_version &&
                                         strcmp(ri->http_version, "1.1") == 0);
}

static const char *op_method(void *c)
{
    return ((cw_req *)c)->ri->request_method;
}

static const char *op_target(void *c)
{
    return ((cw_req *)c)->target.data;
}

static const char *op_client_addr(void *c)
{
    const char *a = ((cw_req *)c)->ri->remote_addr;
    return a[0] ? a : NULL;
}

static int op_is_https(void *c)
{
    return ((cw_req *)c)->ri->is_ssl != 0;
}

static int op_body(void *c, const char **data, size_t *len)
{
    cw_req *r = c;
    *data = r->body.data ? r->body.data : "";
    *len = r->body.len;
    return 0;
}

GUEST_RESPONSE_CALLBACKS(op, cw_req, res)

static const guest_http_ops civetweb_ops = {GUEST_HTTP_OPS(op)};

static void cw_req_free(cw_req *r)
{
    guest_response_cleanup(&r->res);
    guest_buf_cleanup(&r->target);
    guest_buf_cleanup(&r->body);
    guest_joined_cleanup(&r->joined);
}

/* Characters that may stand unencoded in a path (RFC 3986 pchar and '/'). */
static bool path_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || strchr("-._~!$&'()*+,;=:@/", c);
}

/* The target as the library expects it: path (still percent-encoded) plus
 * the query string. With decode_url on, CivetWeb has already decoded the
 * path in place, so a decoded "?" or "#" would end the path early and a
 * decoded "%" would be read as an escape: encode it again. */
static int build_target(cw_req *r)
{
    const char *path = r->ri->local_uri;
    if (!path || !*path)
        path = "/";
    const char *decode = mg_get_option(mg_get_context(r->conn), "decode_url");
    if (decode && !strcasecmp(decode, "no")) {
        if (guest_buf_append(&r->target, path, strlen(path)) != 0)
            return -1;
    } else {
        static const char hex[] = "0123456789ABCDEF";
        for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
            char esc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            int rc = path_char(*p) ? guest_buf_append(&r->target, p, 1)
                                   : guest_buf_append(&r->target, esc, 3);
            if (rc != 0)
                return -1;
        }
    }
    const char *q = r->ri->query_string;
    if (q && (guest_buf_append(&r->target, "?", 1) != 0 ||
              guest_buf_append(&r->target, q, strlen(q)) != 0))
        return -1;
    return 0;
}

enum { BODY_OK, BODY_TOO_LARGE, BODY_BROKEN, BODY_NOMEM };

static int read_body(cw_req *r, size_t max)
{
    /* A declared length over the limit is refused before any byte is read;
     * a chunked body is counted as it arrives. */
    if (r->ri->content_length > 0 &&
        (unsigned long long)r->ri->content_length > max)
        return BODY_TOO_LARGE;
    char chunk[8192];
    for (;;) {
        int n = mg_read(r->conn, chunk, sizeof chunk);
        if (n == 0)
            return BODY_OK;
        if (n < 0)
            return BODY_BROKEN;
        if (r->body.len + (size_t)n > max)
            return BODY_TOO_LARGE;
        if (guest_buf_append(&r->body, chunk, (size_t)n) != 0)
            return BODY_NOMEM;
    }
}

static int send_response(cw_req *r)
{
    struct mg_connection *conn = r->conn;
    const guest_response *res = &r->res;
    int status = res->status;
    /* RFC 9110: no body for HEAD, 1xx, 204 and 304; no Content-Length for
     * 1xx and 204, nor for a 304 whose length would be the GET's. */
    bool no_length = status < 200 || status == 204 || status == 304;
    bool no_body = no_length || !strcmp(r->ri->request_method, "HEAD");
    if (mg_response_header_start(conn, status) != 0)
        return -1;
    for (size_t i = 0; i < res->header_count; i++) {
        const char *name = res->headers[2 * i];
        const char *value = res->headers[2 * i + 1];
        /* The adapter frames the body; a handler's framing headers would
         * contradict it. Connection is CivetWeb's to choose, except that a
         * handler may ask for the connection to close. */
        if (!strcasecmp(name, "Content-Length") ||
            !strcasecmp(name, "Transfer-Encoding"))
            continue;
        if (!strcasecmp(name, "Connection")) {
            if (!guest_header_has_token(value, "close"))
                continue;
            mg_disable_connection_keep_alive(conn);
        }
        if (mg_response_header_add(conn, name, value, -1) != 0)
            mg_cry(conn, "guestuser: response header %s dropped", name);
    }
    if (!no_length) {
        char len[32];
        snprintf(len, sizeof len, "%zu", res->body.len);
        mg_response_header_add(conn, "Content-Length", len, -1);
    }
    if (mg_response_header_send(conn) != 0)
        return -1;
    if (!no_body && res->body.len &&
        mg_write(conn, res->body.data, res->body.len) != (int)res->body.len)
        return -1;
    return 0;
}

/* A short plain-text answer the adapter gives itself; the connection is
 * closed afterwards, because the request was not read to its end. */
static int plain(cw_req *r, int status, const char *text)
{
    guest_response_reset(&r->res, status);
    mg_disable_connection_keep_alive(r->conn);
    if (op_add_header(r, "Content-Type", "text/plain; charset=utf-8") != 0 ||
        op_add_header(r, "Connection", "close") != 0 ||
        guest_response_write(&r->res, text, strlen(text)) != 0)
        return mg_send_http_error(r->conn, status, "%s", text) < 0 ? -1 : 0;
    return send_response(r);
}

int guest_civetweb_handler(struct mg_connection *conn, void *cbdata)
{
    guest_civetweb *app = cbdata;
    cw_req r = {0};
    r.conn = conn;
    r.ri = mg_get_request_info(conn);
    guest_response_init(&r.res);
    r.res.max_headers = CW_MAX_HANDLER_HEADERS;
    if (!app || !r.ri) {
        mg_send_http_error(conn, 500, "%s", "Internal Server Error\n");
        return 500;
    }
    int rc;
    if (build_target(&r) != 0) {
        rc = plain(&r, 500, "Internal Server Error\n");
    } else if (!headers_complete(conn, r.ri) || ambiguous_framing(r.ri)) {
        rc = plain(&r, 400, "Bad Request\n");
    } else {
        switch (read_body(&r, app->max_body)) {
        case BODY_OK: {
            const char *text;
            int refused = guest_run_handler(app->ctx, &civetweb_ops, &r,
                                            app->handler, app->userdata, &text);
            rc = refused ? plain(&r, refused, text) : send_response(&r);
            break;
        }
        case BODY_TOO_LARGE:
            rc = plain(&r, 413, "Payload Too Large\n");
            break;
        case BODY_BROKEN:
            rc = plain(&r, 400, "Bad Request\n");
            break;
        default:
            rc = plain(&r, 500, "Internal Server Error\n");
            break;
        }
    }
    int status = r.res.status;
    if (rc != 0)
        mg_disable_connection_keep_alive(conn);
    cw_req_free(&r);
    return status;
}

/* The defaults, a whole struct of this library's size. */
static const guest_civetweb_limits default_limits = {
    .size = sizeof(guest_civetweb_limits),
    .threads = 50,
    .header_timeout_s = 10,
};

guest_status guest_civetweb_new(guest_ctx *ctx, guest_handler_fn handler,
                                void *userdata, guest_civetweb **out)
{
    if (!ctx || !handler || !out)
        return GUEST_ERR_INVALID;
    guest_civetweb *app = calloc(1, sizeof *app);
    if (!app)
        return GUEST_ERR_NOMEM;
    /* Reference counted by CivetWeb; without it mg_start() initialises the
     * library itself and never releases what it allocated. The call returns
     * the features it initialised, so ask for some (never TLS, which would
     * load OpenSSL behind the application's back) to tell failure apart. */
    unsigned features = mg_check_feature(0xFFu & ~MG_FEATURES_TLS);
    if (guest_log_limiter_new(ctx, "civetweb", GUEST_LOG_LIMIT_INTERVAL_S,
                              &app->log) != GUEST_OK) {
        free(app);
        return GUEST_ERR_NOMEM;
    }
    if (mg_init_library(features) != features) {
        guest_log_limiter_free(app->log);
        free(app);
        return GUEST_ERR_CONFIG;
    }
    app->ctx = ctx;
    app->handler = handler;
    app->userdata = userdata;
    app->max_body = guest_ctx_config(ctx)->max_body_size;
    app->limits = default_limits;
    *out = app;
    return GUEST_OK;
}

/* The struct of 1.0, the smallest a program can pass. */
#define LIMITS_SIZE_1_0                                                        \
    (offsetof(guest_civetweb_limits, header_timeout_s) + sizeof(unsigned))

#undef guest_civetweb_limits_init
void guest_civetweb_limits_init_size(guest_civetweb_limits *limits, size_t size)
{
    guest_sized_init(limits, size, &default_limits, sizeof default_limits);
}

guest_status guest_civetweb_set_limits(guest_civetweb *app,
                                       const guest_civetweb_limits *limits)
{
    /* The program's limits over the defaults of fields it does not know;
     * refused when not filled by guest_civetweb_limits_init(). */
    guest_civetweb_limits given = default_limits;
    if (!guest_sized_read(limits, LIMITS_SIZE_1_0, &given, sizeof given))
        return GUEST_ERR_INVALID;
    limits = &given;
    /* Each worker is a thread with its own stack; past a thousand, more
     * workers only give a slow-client attack more to hold. */
    if (!app || !limits || limits->threads < 1 || limits->threads > 1024 ||
        limits->header_timeout_s < 1 || limits->header_timeout_s > 3600)
        return GUEST_ERR_INVALID;
    app->limits = *limits;
    return GUEST_OK;
}

void guest_civetweb_free(guest_civetweb *app)
{
    if (!app)
        return;
    mg_exit_library();
    guest_log_limiter_free(app->log);
    free(app);
}

/* CivetWeb's error log, which it may write for every connection: slow or
 * hostile clients would fill the disk. It gives the message only, so the
 * message with its digits left out tells one kind from another. */
static int log_message(const struct mg_connection *conn, const char *message)
{
    const guest_civetweb *app = mg_get_user_data(mg_get_context(conn));
    if (!app)
        return 0;
    guest_log_limited(app->log, GUEST_LOG_WARNING, NULL, message);
    return 1;
}

/* CivetWeb refuses a Content-Length without leading digits ("-1", "abc")
 * itself, before any handler, with 411 Length Required; the other
 * adapters, and this one for the values CivetWeb lets through, answer a
 * malformed length with 400 (RFC 9112 6.3). 411 comes from nowhere else
 * on a server (CivetWeb's client side aside), so it is answered as 400
 * here, and the connection closes as after any request CivetWeb could not
 * read. */
static int http_error(struct mg_connection *conn, int status,
                      const char *errmsg)
{
    (void)errmsg;
    if (status != 411)
        return 1;
    static const char text[] = "HTTP/1.1 400 Bad Request\r\n"
                               "Connection: close\r\n"
                               "Content-Type: text/plain; charset=utf-8\r\n"
                               "Content-Length: 12\r\n\r\n"
                               "Bad Request\n";
    mg_disable_connection_keep_alive(conn);
    mg_write(conn, text, sizeof text - 1);
    return 0;
}

guest_status guest_civetweb_start(guest_civetweb *app, const char *bind_addr,
                                  uint16_t port, struct mg_context **out)
{
    if (!app || !out)
        return GUEST_ERR_INVALID;
    *out = NULL;
    if (!bind_addr)
        bind_addr = "127.0.0.1";
    unsigned char addr[16];
    char ports[80];
    int n;
    if (inet_pton(AF_INET, bind_addr, addr) == 1) {
        n = snprintf(ports, sizeof ports, "%s:%u", bind_addr, (unsigned)port);
    } else if (inet_pton(AF_INET6, bind_addr, addr) == 1) {
        if (!mg_check_feature(MG_FEATURES_IPV6)) {
            fprintf(stderr, "civetweb: built without IPv6, cannot bind %s\n",
                    bind_addr);
            return GUEST_ERR_CONFIG;
        }
        n = snprintf(ports, sizeof ports, "[%s]:%u", bind_addr, (unsigned)port);
    } else {
        return GUEST_ERR_INVALID;
    }
    if (n < 0 || (size_t)n >= sizeof ports)
        return GUEST_ERR_INVALID;
    char threads[16], timeout[16];
    snprintf(threads, sizeof threads, "%u", app->limits.threads);
    /* CivetWeb counts request_timeout_ms from the start of a request to
     * its complete header block, and per read and write after that. */
    snprintf(timeout, sizeof timeout, "%u",
             app->limits.header_timeout_s * 1000u);
    /* clang-format off */
    const char *options[] = {
        "listening_ports", ports,
        "enable_keep_alive", "yes",
        "decode_url", "no",
        "num_threads", threads,
        "request_timeout_ms", timeout,
        NULL, NULL,
    };
    /* clang-format on */
    struct mg_callbacks callbacks;
    memset(&callbacks, 0, sizeof callbacks);
    callbacks.log_message = log_message;
    callbacks.http_error = http_error;
    struct mg_context *mg = mg_start(&callbacks, app, options);
    if (!mg)
        return GUEST_ERR_CONFIG;
    mg_set_request_handler(mg, "/", guest_civetweb_handler, app);
    *out = mg;
    return GUEST_OK;
}

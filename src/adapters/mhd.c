/* libmicrohttpd adapter: buffers the response, then queues it in one go,
 * because MHD needs the status and headers before any body byte. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "guestuser/adapter.h"
#include "guestuser/adapters/mhd.h"

struct guest_mhd {
    guest_ctx *ctx;
    guest_handler_fn handler;
    void *userdata;
    size_t max_body;
};

typedef struct mhd_req {
    struct MHD_Connection *conn;
    char *target;
    const char *method;
    char addr[INET6_ADDRSTRLEN];
    guest_buf body;
    bool headers_seen;
    bool too_large;
    guest_response res;
} mhd_req;

static const char *op_header(void *c, const char *name)
{
    return MHD_lookup_connection_value(((mhd_req *)c)->conn, MHD_HEADER_KIND,
                                       name);
}

static const char *op_method(void *c)
{
    return ((mhd_req *)c)->method;
}
static const char *op_target(void *c)
{
    return ((mhd_req *)c)->target;
}

static const char *op_client_addr(void *c)
{
    mhd_req *r = c;
    if (!r->addr[0]) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
            r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (!ci || !ci->client_addr)
            return NULL;
        const struct sockaddr *sa = ci->client_addr;
        if (sa->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr,
                      r->addr, sizeof r->addr);
        else if (sa->sa_family == AF_INET6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr,
                      r->addr, sizeof r->addr);
    }
    return r->addr[0] ? r->addr : NULL;
}

/* An application may start its own daemon with MHD_USE_TLS; a TLS session
 * on the connection is what makes the request HTTPS. */
static int op_is_https(void *c)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
        ((mhd_req *)c)->conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    return ci && ci->tls_session;
}

static int op_body(void *c, const char **data, size_t *len)
{
    mhd_req *r = c;
    *data = r->body.data ? r->body.data : "";
    *len = r->body.len;
    return r->too_large ? -1 : 0;
}

static int op_set_status(void *c, int status)
{
    return guest_response_set_status(&((mhd_req *)c)->res, status);
}

static int op_add_header(void *c, const char *name, const char *value)
{
    return guest_response_add_header(&((mhd_req *)c)->res, name, value);
}

static int op_write(void *c, const void *data, size_t len)
{
    return guest_response_write(&((mhd_req *)c)->res, data, len);
}

static int op_reset(void *c)
{
    guest_response_reset(&((mhd_req *)c)->res, 200);
    return 0;
}

static const guest_http_ops mhd_ops = {
    .header = op_header,
    .method = op_method,
    .target = op_target,
    .client_addr = op_client_addr,
    .is_https = op_is_https,
    .body = op_body,
    .set_status = op_set_status,
    .add_header = op_add_header,
    .write = op_write,
    .reset = op_reset,
};

static void mhd_req_free(mhd_req *r)
{
    if (!r)
        return;
    guest_response_free(&r->res);
    guest_buf_free(&r->body);
    free(r->target);
    free(r);
}

guest_status guest_mhd_new(guest_ctx *ctx, guest_handler_fn handler,
                           void *userdata, guest_mhd **out)
{
    if (!ctx || !handler || !out)
        return GUEST_ERR_INVALID;
    guest_mhd *app = calloc(1, sizeof *app);
    if (!app)
        return GUEST_ERR_NOMEM;
    app->ctx = ctx;
    app->handler = handler;
    app->userdata = userdata;
    app->max_body = guest_ctx_config(ctx)->max_body_size;
    *out = app;
    return GUEST_OK;
}

void guest_mhd_free(guest_mhd *app)
{
    free(app);
}

void *guest_mhd_uri_log(void *cls, const char *uri,
                        struct MHD_Connection *connection)
{
    (void)cls;
    mhd_req *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->conn = connection;
    guest_response_init(&r->res);
    r->target = strdup(uri ? uri : "/");
    if (!r->target) {
        free(r);
        return NULL;
    }
    return r;
}

static enum MHD_Result queue(mhd_req *r)
{
    const guest_response *res = &r->res;
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        res->body.len, res->body.data ? res->body.data : "",
        MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    for (size_t i = 0; i < res->header_count; i++)
        MHD_add_response_header(resp, res->headers[2 * i],
                                res->headers[2 * i + 1]);
    enum MHD_Result ret =
        MHD_queue_response(r->conn, (unsigned)res->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result plain(mhd_req *r, int status, const char *text)
{
    guest_response_reset(&r->res, status);
    if (guest_response_add_header(&r->res, "Content-Type",
                                  "text/plain; charset=utf-8") != 0 ||
        guest_response_write(&r->res, text, strlen(text)) != 0)
        return MHD_NO;
    return queue(r);
}

enum MHD_Result guest_mhd_access(void *cls, struct MHD_Connection *connection,
                                 const char *url, const char *method,
                                 const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **req_cls)
{
    (void)version;
    guest_mhd *app = cls;
    mhd_req *r = *req_cls;
    if (!r) {
        /* Started without guest_mhd_uri_log: fall back to MHD's decoded
         * path, which has no query string. */
        r = guest_mhd_uri_log(app, url, connection);
        if (!r)
            return MHD_NO;
        *req_cls = r;
    }
    r->method = method;
    /* MHD calls first with the headers only, before any body byte; answering
     * then would run the handler without the body and skip the size limit. */
    if (!r->headers_seen) {
        r->headers_seen = true;
        /* A declared length over the limit is refused before the body is
         * read, so a client cannot hold the connection with a huge upload;
         * MHD closes the connection after this answer. */
        const char *cl = MHD_lookup_connection_value(
            connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && *cl >= '0' && *cl <= '9') {
            errno = 0;
            unsigned long long n = strtoull(cl, NULL, 10);
            if (errno == ERANGE || n > app->max_body)
                return plain(r, 413, "Payload Too Large\n");
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        /* Keep reading past the limit (so the client sees our 413 rather
         * than a reset) but stop storing. */
        if (!r->too_large) {
            if (r->body.len + *upload_data_size > app->max_body ||
                guest_buf_append(&r->body, upload_data, *upload_data_size) != 0)
                r->too_large = true;
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (r->too_large)
        return plain(r, 413, "Payload Too Large\n");
    guest_req *req;
    guest_status st = guest_req_new(app->ctx, &mhd_ops, r, &req);
    if (st == GUEST_ERR_BAD_HOST)
        return plain(r, 400, GUEST_BAD_HOST_TEXT);
    if (st != GUEST_OK)
        return plain(r, 500, "Internal Server Error\n");
    app->handler(req, app->userdata);
    guest_req_free(req);
    return queue(r);
}

void guest_mhd_completed(void *cls, struct MHD_Connection *connection,
                         void **req_cls, enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)connection;
    (void)toe;
    mhd_req_free(*req_cls);
    *req_cls = NULL;
}

guest_status guest_mhd_start(guest_mhd *app, const char *bind_addr,
                             uint16_t port, struct MHD_Daemon **out)
{
    if (!app || !out)
        return GUEST_ERR_INVALID;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG;
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    if (!bind_addr)
        bind_addr = "127.0.0.1";
    if (inet_pton(AF_INET, bind_addr, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
    } else if (inet_pton(AF_INET6, bind_addr, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        flags |= MHD_USE_IPv6;
    } else {
        return GUEST_ERR_INVALID;
    }
    *out = MHD_start_daemon(
        flags, port, NULL, NULL, guest_mhd_access, app, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&ss, MHD_OPTION_URI_LOG_CALLBACK, guest_mhd_uri_log,
        app, MHD_OPTION_NOTIFY_COMPLETED, guest_mhd_completed, app,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)512, MHD_OPTION_END);
    return *out ? GUEST_OK : GUEST_ERR_CONFIG;
}

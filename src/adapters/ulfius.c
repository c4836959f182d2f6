/* Ulfius adapter. Ulfius runs on libmicrohttpd and hands its endpoint
 * callbacks a request it has already read (headers in a map, the body
 * whole) and a response it sends when they return. Its maps keep one value
 * per name, so the adapter collects the answer in a guest_response and
 * moves it into Ulfius's response at the end.
 *
 * What Ulfius hides or changes, and what the adapter does about it:
 * - Repeated request header lines are joined with "," in one map entry, so
 *   a Cookie sent on two lines reads "a=1,b=2"; names differing in case
 *   are separate entries. Two Content-Lengths or Hosts arrive as "3,3".
 * - The client address is cut to sizeof(struct sockaddr), too short for
 *   IPv6, and whether the connection is TLS is not said at all.
 * - A body past max_post_body_size is cut without a word: the instance's
 *   limit is set one byte over ours, so a cut body is a body too long.
 *   Ulfius reads every body to its end before an endpoint runs, whatever
 *   its length, with no hook on the way.
 * - The response keeps one value per header name; cookies have their own
 *   list, one Set-Cookie line each.
 * - ulfius_set_binary_body_response() refuses an empty body and then leaves
 *   the status at 200: the status is set directly, the body only if any.
 *
 * Under guest_ulfius_start() the adapter therefore runs the libmicrohttpd
 * daemon with an access handler of its own in place of Ulfius's
 * dispatcher: it refuses bad framing and long bodies while they arrive,
 * fills Ulfius's request itself and sends Ulfius's response the way Ulfius
 * does, with the MHD connection at hand for the address and TLS. On an
 * instance the application runs, Ulfius's dispatcher stays, with what it
 * hides. */
#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "guestuser/adapter.h"
#include "guestuser/adapters/ulfius.h"

struct guest_ulfius {
    guest_ctx *ctx;
    guest_handler_fn handler;
    void *userdata;
    size_t max_body;
    guest_ulfius_limits limits;
    struct _u_instance *instance; /* made by guest_ulfius_start */
    /* Its daemon's error log, at most a line per kind per interval. */
    guest_log_limiter *log;
    /* The header-timeout watchdog of guest_ulfius_start's daemon. */
    guest_watchdog *watchdog;
};

typedef struct ul_req {
    const struct _u_request *rq;
    /* The MHD connection, when the instance is ours; NULL otherwise. */
    struct MHD_Connection *conn;
    char addr[INET6_ADDRSTRLEN];
    guest_response res;
    /* Header values the adapter had to build (op_header). */
    guest_joined joined;
} ul_req;

typedef struct header_scan {
    const char *name; /* NULL: the framing checks only */
    guest_field field;
    bool failed; /* out of memory splitting a line */
    guest_framing framing;
    /* MHD's header block (lo 0: not checked), and whether a line is
     * malformed (see framing_refused). */
    uintptr_t lo, hi;
    bool malformed;
} header_scan;

/* One header line (from MHD) or one Ulfius map entry, which may hold
 * several lines joined by ",". */
static void scan_one(header_scan *s, const char *key, const char *value,
                     bool from_map)
{
    if (!key)
        return;
    if (!value)
        value = "";
    /* In a map entry a comma means several lines: a Content-Length or Host
     * never holds one, and a Transfer-Encoding of several lines is refused
     * all the same, so such an entry counts as two. */
    guest_framing_add(&s->framing, key, value);
    if (from_map && strchr(value, ','))
        guest_framing_add(&s->framing, key, value);
    if (!s->name || strcasecmp(key, s->name) != 0)
        return;
    if (!from_map || strcasecmp(key, "Cookie") != 0 || !strchr(value, ',')) {
        guest_field_add(&s->field, key, value);
        return;
    }
    /* Ulfius joined Cookie lines with ","; a cookie value holds no comma
     * (RFC 6265 4.1.1), so each piece is a line of its own. There are two
     * pieces at least: the field has joined them before the copy goes. */
    char *copy = strdup(value);
    if (!copy) {
        s->failed = true;
        return;
    }
    for (char *p = copy;;) {
        size_t n = strcspn(p, ",");
        bool last = !p[n];
        p[n] = '\0';
        guest_field_add(&s->field, key, p);
        if (last)
            break;
        p += n + 1;
    }
    free(copy);
}

static enum MHD_Result scan_mhd(void *cls, enum MHD_ValueKind kind,
                                const char *key, const char *value)
{
    (void)kind;
    header_scan *s = cls;
    /* A bare CR (or another control byte) kept in a value is a line end a
     * proxy may honour: whatever follows it would hide from the checks. */
    if (key && value && guest_header_value_ok(value) != 0)
        s->malformed = true;
    if (key && s->lo &&
        (guest_header_name_ok(key) != 0 || (uintptr_t)key < s->lo ||
         (uintptr_t)key >= s->hi || !value || (uintptr_t)value < s->lo ||
         (uintptr_t)value >= s->hi))
        s->malformed = true;
    scan_one(s, key, value, false);
    return MHD_YES;
}

static void scan(const ul_req *r, header_scan *s)
{
    if (r->conn) {
        MHD_get_connection_values(r->conn, MHD_HEADER_KIND, scan_mhd, s);
        return;
    }
    const struct _u_map *m = r->rq->map_header;
    for (int i = 0; m && i < m->nb_values; i++)
        scan_one(s, m->keys[i], m->values[i], true);
}

/* Every line of a field, joined: reading only the first would let a client
 * put its own X-Forwarded-For line before a proxy's. */
static const char *op_header(void *c, const char *name)
{
    ul_req *r = c;
    header_scan s = {.name = name};
    scan(r, &s);
    /* Out of memory: no value rather than a partial one. */
    const char *v = guest_field_value(&s.field, s.failed ? NULL : &r->joined);
    return s.failed ? NULL : v;
}

/* The checks both paths make on the counts and values of a scan, for a
 * request of protocol @p version ("HTTP/1.1"). */
static bool scan_refused(const header_scan *s, const char *version)
{
    return guest_framing_refused(&s->framing,
                                 version && strcmp(version, "HTTP/1.1") == 0);
}

/* Framing a proxy in front might read differently from the server (request
 * smuggling): two Content-Lengths, Content-Length with Transfer-Encoding,
 * two Hosts, a Content-Length that is not a plain number, a
 * Transfer-Encoding other than one line of "chunked" (MHD reads the first
 * of two lines), or one in a request older than HTTP/1.1 (RFC 9112 6.1:
 * faulty framing; MHD would decode it and keep the connection). Under
 * Ulfius's own dispatcher this comes after libmicrohttpd read the body its
 * way; the 400 still closes the connection. */
static bool ambiguous_framing(const ul_req *r)
{
    header_scan s = {0};
    scan(r, &s);
    return scan_refused(&s, r->rq->http_protocol);
}

static const char *op_method(void *c)
{
    return ((ul_req *)c)->rq->http_verb;
}

/* Ulfius keeps the request line's target as received (its URI log). */
static const char *op_target(void *c)
{
    return ((ul_req *)c)->rq->http_url;
}

static void addr_text(const struct sockaddr *sa, char *out, size_t size)
{
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out,
                  (socklen_t)size);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out,
                  (socklen_t)size);
}

static const char *op_client_addr(void *c)
{
    ul_req *r = c;
    if (!r->addr[0]) {
        if (r->conn) {
            const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
                r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
            if (ci && ci->client_addr)
                addr_text(ci->client_addr, r->addr, sizeof r->addr);
        } else if (r->rq->client_address &&
                   r->rq->client_address->sa_family == AF_INET) {
            /* Ulfius copies only sizeof(struct sockaddr) bytes: enough for
             * IPv4, cut short for IPv6, which stays unknown. */
            addr_text(r->rq->client_address, r->addr, sizeof r->addr);
        }
    }
    return r->addr[0] ? r->addr : NULL;
}

static int op_is_https(void *c)
{
    ul_req *r = c;
    if (!r->conn)
        return 0;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    return ci && ci->tls_session;
}

static int op_body(void *c, const char **data, size_t *len)
{
    const struct _u_request *rq = ((ul_req *)c)->rq;
    *data = rq->binary_body ? rq->binary_body : "";
    *len = rq->binary_body ? rq->binary_body_length : 0;
    return 0;
}

GUEST_RESPONSE_CALLBACKS(op, ul_req, res)

static const guest_http_ops ulfius_ops = {GUEST_HTTP_OPS(op)};

/* A Set-Cookie value goes into Ulfius's cookie list whole: the name before
 * the first "=", the rest (value and attributes) as the value, every other
 * field empty, which Ulfius writes back as "name=rest". */
static int put_cookie(struct _u_response *resp, const char *line)
{
    const char *eq = strchr(line, '=');
    if (!eq || eq == line)
        return -1;
    char *name = strndup(line, (size_t)(eq - line));
    if (!name)
        return -1;
    int rc = ulfius_add_cookie_to_response(resp, name, eq + 1, NULL, 0, NULL,
                                           NULL, 0, 0);
    free(name);
    return rc == U_OK ? 0 : -1;
}

/* A second line of any other field joins the first with ", " (RFC 9110
 * 5.3): Ulfius's map would keep only the last. */
static int put_header(struct _u_response *resp, const char *name,
                      const char *value)
{
    struct _u_map *m = resp->map_header;
    for (int i = 0; i < m->nb_values; i++) {
        if (strcasecmp(m->keys[i], name) != 0)
            continue;
        guest_buf b = {0};
        int rc = guest_buf_append(&b, m->values[i], strlen(m->values[i])) ||
                 guest_buf_append(&b, ", ", 2) ||
                 guest_buf_append(&b, value, strlen(value));
        if (rc == 0)
            rc = u_map_put(m, m->keys[i], b.data) == U_OK ? 0 : -1;
        guest_buf_cleanup(&b);
        return rc;
    }
    return u_map_put(m, name, value) == U_OK ? 0 : -1;
}

static bool bodiless(int status)
{
    return status < 200 || status == 204 || status == 304;
}

/* Moves the collected answer into Ulfius's response. The framing is
 * libmicrohttpd's: a handler's own Content-Length or Transfer-Encoding is
 * dropped (MHD would refuse them and close the connection). */
static int fill(struct _u_response *resp, const guest_response *res)
{
    for (size_t i = 0; i < res->header_count; i++) {
        const char *n = res->headers[2 * i], *v = res->headers[2 * i + 1];
        if (!strcasecmp(n, "Content-Length") ||
            !strcasecmp(n, "Transfer-Encoding"))
            continue;
        int rc = !strcasecmp(n, "Set-Cookie") ? put_cookie(resp, v)
                                              : put_header(resp, n, v);
        if (rc != 0)
            return -1;
    }
    if (res->body.len && !bodiless(res->status) &&
        ulfius_set_binary_body_response(resp, (unsigned)res->status,
                                        res->body.data, res->body.len) != U_OK)
        return -1;
    resp->status = res->status;
    return 0;
}

/* The adapter's own short answers. The whole request was read already, so
 * the connection could stay; it is closed as the other adapters do. */
static int plain(struct _u_response *resp, int status, const char *text)
{
    guest_response r;
    guest_response_init(&r);
    int rc = guest_response_plain(&r, status, text) ||
             guest_response_add_header(&r, "Connection", "close");
    /* Whatever an earlier step put in the response goes. */
    ulfius_clean_response(resp);
    ulfius_init_response(resp);
    if (rc != 0 || fill(resp, &r) != 0)
        resp->status = 500;
    guest_response_cleanup(&r);
    return U_CALLBACK_COMPLETE;
}

static bool declared_too_long(ul_req *r, size_t max)
{
    return guest_content_length_over(op_header(r, "Content-Length"), max);
}

/* One request, with its MHD connection when the daemon is the adapter's
 * (NULL: Ulfius's dispatcher called). */
static int serve(guest_ulfius *app, const struct _u_request *request,
                 struct MHD_Connection *conn, struct _u_response *response)
{
    ul_req r = {.rq = request, .conn = conn};
    guest_response_init(&r.res);
    int ret;
    if (ambiguous_framing(&r)) {
        ret = plain(response, 400, "Bad Request\n");
    } else if (request->binary_body_length > app->max_body ||
               declared_too_long(&r, app->max_body)) {
        /* Ulfius cut it at max_post_body_size, or the client said so. */
        ret = plain(response, 413, "Payload Too Large\n");
    } else {
        const char *text;
        int refused = guest_run_handler(app->ctx, &ulfius_ops, &r, app->handler,
                                        app->userdata, &text);
        if (refused)
            ret = plain(response, refused, text);
        else
            ret = fill(response, &r.res) == 0
                      ? U_CALLBACK_COMPLETE
                      : plain(response, 500, "Internal Server Error\n");
    }
    guest_response_cleanup(&r.res);
    guest_joined_cleanup(&r.joined);
    return ret;
}

int guest_ulfius_callback(const struct _u_request *request,
                          struct _u_response *response, void *user_data)
{
    guest_ulfius *app = user_data;
    if (!app || !request || !response)
        return U_CALLBACK_ERROR;
    return serve(app, request, NULL, response);
}

/* The defaults, a whole struct of this library's size. */
static const guest_ulfius_limits default_limits = {
    .size = sizeof(guest_ulfius_limits),
    .max_connections = 512,
    .max_conns_per_ip = 32,
    .idle_timeout_s = 30,
    .header_timeout_s = 10,
};

/* The struct of 1.0, the smallest a program can pass. */
#define LIMITS_SIZE_1_0                                                        \
    (offsetof(guest_ulfius_limits, idle_timeout_s) + sizeof(unsigned))

#undef guest_ulfius_limits_init
void guest_ulfius_limits_init_size(guest_ulfius_limits *limits, size_t size)
{
    guest_sized_init(limits, size, &default_limits, sizeof default_limits);
}

guest_status guest_ulfius_new(guest_ctx *ctx, guest_handler_fn handler,
                              void *userdata, guest_ulfius **out)
{
    if (!ctx || !handler || !out)
        return GUEST_ERR_INVALID;
    guest_ulfius *app = calloc(1, sizeof *app);
    if (!app)
        return GUEST_ERR_NOMEM;
    if (guest_watchdog_new(NULL, NULL, &app->watchdog) != GUEST_OK)
        goto no_watchdog;
    if (guest_log_limiter_new(ctx, "ulfius", GUEST_LOG_LIMIT_INTERVAL_S,
                              &app->log) != GUEST_OK)
        goto no_log;
    app->ctx = ctx;
    app->handler = handler;
    app->userdata = userdata;
    app->max_body = guest_ctx_config(ctx)->max_body_size;
    app->limits = default_limits;
    *out = app;
    return GUEST_OK;
    /* What was made is undone, the last first. */
no_log:
    guest_watchdog_free(app->watchdog);
no_watchdog:
    free(app);
    return GUEST_ERR_NOMEM;
}

guest_status guest_ulfius_set_limits(guest_ulfius *app,
                                     const guest_ulfius_limits *limits)
{
    /* The program's limits over the defaults of fields it does not know;
     * refused when not filled by guest_ulfius_limits_init(). */
    guest_ulfius_limits given = default_limits;
    if (!guest_sized_read(limits, LIMITS_SIZE_1_0, &given, sizeof given))
        return GUEST_ERR_INVALID;
    limits = &given;
    if (!app || !limits || app->instance || limits->max_connections == 0 ||
        limits->max_connections > 65535 || limits->idle_timeout_s == 0 ||
        limits->idle_timeout_s > 86400 || limits->header_timeout_s > 3600)
        return GUEST_ERR_INVALID;
    app->limits = *limits;
    return GUEST_OK;
}

void guest_ulfius_free(guest_ulfius *app)
{
    if (!app)
        return;
    if (app->instance) {
        if (app->instance->mhd_daemon)
            ulfius_stop_framework(app->instance);
        ulfius_clean_instance(app->instance);
        free(app->instance);
    }
    /* After the daemon: no connection is left for it to watch. */
    guest_watchdog_free(app->watchdog);
    guest_log_limiter_free(app->log);
    free(app);
}

guest_status guest_ulfius_attach(guest_ulfius *app,
                                 struct _u_instance *instance,
                                 const char *prefix)
{
    if (!app || !instance)
        return GUEST_ERR_INVALID;
    /* One byte over: a body Ulfius cut is longer than the limit. SIZE_MAX
     * wraps to 0, Ulfius's "no limit". */
    instance->max_post_body_size = app->max_body + 1;
    instance->check_utf8 = 0;
    instance->allowed_post_processor = U_POST_PROCESS_NONE;
    if (ulfius_add_endpoint_by_val(instance, "*", prefix, "*", 0,
                                   guest_ulfius_callback, app) != U_OK)
        return GUEST_ERR_NOMEM;
    return GUEST_OK;
}

/* ---- guest_ulfius_start: the adapter's own access handler ---- */

/* Per connection: the request in progress, which the URI log starts and
 * the completion (or, when libmicrohttpd skips that for a request it
 * refused itself, the connection's end) frees. */
typedef struct ul_conn {
    guest_ulfius *app;
    /* The watchdog's entry: a deadline for what the client must send
     * (request headers, then the body), none while the request is ours. */
    guest_watched *watch;
    struct _u_request *rq;
    size_t cap; /* bytes allocated for rq->binary_body */
    bool headers_seen;
} ul_conn;

static void arm(ul_conn *c)
{
    guest_watched_arm(c->watch, c->app->limits.header_timeout_s);
}

static void request_clear(ul_conn *c)
{
    if (c->rq)
        ulfius_clean_request_full(c->rq);
    c->rq = NULL;
    c->cap = 0;
    c->headers_seen = false;
}

static ul_conn *conn_of(struct MHD_Connection *connection)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

static void connection_notify(void *cls, struct MHD_Connection *connection,
                              void **socket_context,
                              enum MHD_ConnectionNotificationCode toe)
{
    guest_ulfius *app = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        ul_conn *c = calloc(1, sizeof *c);
        if (!c)
            return;
        c->app = app;
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
            connection, MHD_CONNECTION_INFO_CONNECTION_FD);
        c->watch =
            guest_watchdog_add(app->watchdog, ci ? (int)ci->connect_fd : -1);
        if (!c->watch) {
            free(c);
            return;
        }
        arm(c);
        if (app->limits.header_timeout_s)
            guest_watchdog_start(app->watchdog);
        *socket_context = c;
        return;
    }
    ul_conn *c = *socket_context;
    if (!c)
        return;
    guest_watchdog_remove(app->watchdog, c->watch);
    request_clear(c);
    free(c);
    *socket_context = NULL;
}

/* The raw target, as Ulfius's own URI log keeps it, and the path before
 * its query. */
static void *uri_log(void *cls, const char *uri,
                     struct MHD_Connection *connection)
{
    (void)cls;
    ul_conn *c = conn_of(connection);
    if (!c)
        return NULL;
    request_clear(c);
    struct _u_request *rq = o_malloc(sizeof *rq);
    if (!rq)
        return c;
    if (ulfius_init_request(rq) != U_OK) {
        o_free(rq);
        return c;
    }
    c->rq = rq;
    if (!uri)
        uri = "/";
    rq->http_url = o_strdup(uri);
    rq->url_path = o_strndup(uri, strcspn(uri, "?"));
    if (!rq->http_url || !rq->url_path)
        request_clear(c);
    return c;
}

static void completed(void *cls, struct MHD_Connection *connection,
                      void **req_cls, enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)connection;
    (void)toe;
    ul_conn *c = *req_cls;
    *req_cls = NULL;
    if (!c)
        return;
    request_clear(c);
    /* A kept-alive connection has the same time for its next request. */
    arm(c);
}

/* Framing a proxy in front might read differently (see ambiguous_framing),
 * or a line MHD took its own way: a name that is not a token (blanks
 * before the colon, a first line starting with a blank), or an obsolete
 * folded line (RFC 9112 5.2), which a proxy may join to the line before
 * with a space, or refuse. MHD from 0.9.77 refuses folded lines itself
 * under the client discipline guest_ulfius_start sets; before, it appends
 * the folded line to the previous header's name in a block of its memory
 * pool outside the read buffer, where every other name and value of the
 * header block (which starts at @p method) stays. */
static bool framing_refused(struct MHD_Connection *conn, const char *method,
                            const char *version)
{
    header_scan s = {0};
#if MHD_VERSION < 0x00097701
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
    if (!ci || !method)
        return true;
    s.lo = (uintptr_t)method;
    s.hi = s.lo + ci->header_size;
#else
    (void)method;
    s.lo = 1;
    s.hi = UINTPTR_MAX;
#endif
    MHD_get_connection_values(conn, MHD_HEADER_KIND, scan_mhd, &s);
    return s.malformed || scan_refused(&s, version);
}

/* The adapter's own short answer; every one ends the connection, as the
 * request was refused or not read to its end. */
static enum MHD_Result answer(struct MHD_Connection *connection, int status,
                              const char *text)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Connection", "close");
    MHD_add_response_header(resp, "Content-Type", "text/plain; charset=utf-8");
    enum MHD_Result ret =
        MHD_queue_response(connection, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* libmicrohttpd queues no response while a body is arriving (1.0 neither),
 * so the 413 for a body that crosses the limit on its way is written to
 * the socket here, then a FIN, and the access handler returns MHD_NO:
 * MHD closes the connection without reading the rest. A TLS connection
 * cannot be written past MHD; it is only closed. */
static void refuse_arriving_body(struct MHD_Connection *connection)
{
    static const char text[] = "HTTP/1.1 413 Payload Too Large\r\n"
                               "Connection: close\r\n"
                               "Content-Type: text/plain; charset=utf-8\r\n"
                               "Content-Length: 18\r\n\r\n"
                               "Payload Too Large\n";
    const union MHD_ConnectionInfo *tls =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    const union MHD_ConnectionInfo *fd =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
    if ((tls && tls->tls_session) || !fd)
        return;
    if (send(fd->connect_fd, text, sizeof text - 1,
             MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)(sizeof text - 1))
        shutdown(fd->connect_fd, SHUT_WR);
}

/* Repeated lines joined with ",", as Ulfius fills its map. */
static enum MHD_Result put_request_header(void *cls, enum MHD_ValueKind kind,
                                          const char *key, const char *value)
{
    (void)kind;
    struct _u_map *m = cls;
    if (!key)
        return MHD_YES;
    if (!value)
        value = "";
    const char *had = u_map_get(m, key);
    if (!had)
        return u_map_put(m, key, value) == U_OK ? MHD_YES : MHD_NO;
    guest_buf b = {0};
    int rc = guest_buf_append(&b, had, strlen(had)) ||
             guest_buf_append(&b, ",", 1) ||
             guest_buf_append(&b, value, strlen(value));
    if (rc == 0)
        rc = u_map_put(m, key, b.data) == U_OK ? 0 : -1;
    guest_buf_cleanup(&b);
    return rc == 0 ? MHD_YES : MHD_NO;
}

/* What Ulfius's dispatcher puts in a request before any body byte. */
static bool fill_request(struct _u_request *rq,
                         struct MHD_Connection *connection, const char *method,
                         const char *version)
{
    rq->http_verb = o_strdup(method);
    rq->http_protocol = o_strdup(version ? version : "");
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!rq->http_verb || !rq->http_protocol || !ci || !ci->client_addr)
        return false;
    /* Whole, where Ulfius keeps sizeof(struct sockaddr) bytes. */
    size_t len = ci->client_addr->sa_family == AF_INET6
                     ? sizeof(struct sockaddr_in6)
                     : sizeof(struct sockaddr_in);
    rq->client_address = o_malloc(sizeof(struct sockaddr_storage));
    if (!rq->client_address)
        return false;
    memset(rq->client_address, 0, sizeof(struct sockaddr_storage));
    memcpy(rq->client_address, ci->client_addr, len);
    return MHD_get_connection_values(connection, MHD_HEADER_KIND,
                                     put_request_header, rq->map_header) >= 0;
}

/* Sends Ulfius's response as its dispatcher would: the body, each header
 * of the map, one Set-Cookie line per cookie. fill() is the only writer
 * of this response and sets a cookie's key and value alone (the value
 * carries the attributes). */
static enum MHD_Result send_response(struct MHD_Connection *connection,
                                     const struct _u_response *resp)
{
    struct MHD_Response *mr =
        resp->binary_body_length
            ? MHD_create_response_from_buffer(resp->binary_body_length,
                                              resp->binary_body,
                                              MHD_RESPMEM_MUST_COPY)
            : MHD_create_response_from_buffer(0, (void *)"",
                                              MHD_RESPMEM_PERSISTENT);
    if (!mr)
        return MHD_NO;
    bool ok = true;
    const struct _u_map *m = resp->map_header;
    for (int i = 0; ok && m && i < m->nb_values; i++)
        ok = MHD_add_response_header(mr, m->keys[i], m->values[i]) == MHD_YES;
    for (unsigned i = 0; ok && i < resp->nb_cookies; i++) {
        const struct _u_cookie *ck = &resp->map_cookie[i];
        guest_buf line = {0};
        ok = guest_buf_append(&line, ck->key, strlen(ck->key)) == 0 &&
             guest_buf_append(&line, "=", 1) == 0 &&
             guest_buf_append(&line, ck->value ? ck->value : "",
                              ck->value ? strlen(ck->value) : 0) == 0 &&
             MHD_add_response_header(mr, "Set-Cookie", line.data) == MHD_YES;
        guest_buf_cleanup(&line);
    }
    enum MHD_Result ret =
        ok ? MHD_queue_response(connection, (unsigned)resp->status, mr)
           : MHD_NO;
    MHD_destroy_response(mr);
    return ret;
}

static enum MHD_Result
access_handler(void *cls, struct MHD_Connection *connection, const char *url,
               const char *method, const char *version, const char *upload_data,
               size_t *upload_data_size, void **req_cls)
{
    (void)url;
    guest_ulfius *app = cls;
    ul_conn *c = *req_cls;
    /* Without its request (out of memory) the connection just closes. */
    if (!c || !c->rq)
        return MHD_NO;
    struct _u_request *rq = c->rq;
    /* The first call has the headers only. */
    if (!c->headers_seen) {
        c->headers_seen = true;
        /* The body gets a deadline of its own. */
        arm(c);
        if (framing_refused(connection, method, version)) {
            guest_watched_arm(c->watch, 0);
            return answer(connection, 400, "Bad Request\n");
        }
        if (guest_content_length_over(
                MHD_lookup_connection_value(connection, MHD_HEADER_KIND,
                                            MHD_HTTP_HEADER_CONTENT_LENGTH),
                app->max_body)) {
            guest_watched_arm(c->watch, 0);
            return answer(connection, 413, "Payload Too Large\n");
        }
        return fill_request(rq, connection, method, version) ? MHD_YES : MHD_NO;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        if (n > app->max_body - rq->binary_body_length) {
            guest_watched_arm(c->watch, 0);
            refuse_arriving_body(connection);
            return MHD_NO;
        }
        if (rq->binary_body_length + n > c->cap) {
            size_t cap = c->cap ? c->cap : 1024;
            while (cap < rq->binary_body_length + n)
                cap *= 2;
            void *p = o_realloc(rq->binary_body, cap);
            if (!p)
                return MHD_NO;
            rq->binary_body = p;
            c->cap = cap;
        }
        memcpy((char *)rq->binary_body + rq->binary_body_length, upload_data,
               n);
        rq->binary_body_length += n;
        *upload_data_size = 0;
        return MHD_YES;
    }
    /* The request is complete: from here on the time is the handler's. */
    guest_watched_arm(c->watch, 0);
    struct _u_response resp;
    if (ulfius_init_response(&resp) != U_OK)
        return MHD_NO;
    serve(app, rq, connection, &resp);
    enum MHD_Result ret = send_response(connection, &resp);
    ulfius_clean_response(&resp);
    return ret;
}

/* libmicrohttpd logs a line for every connection it refuses or loses (the
 * connection limit, a client gone mid-request): slow or hostile clients
 * would fill the disk. Its format string tells one kind from another. */
__attribute__((format(printf, 2, 0))) static void
log_mhd(void *cls, const char *fmt, va_list ap)
{
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    guest_log_limited(((guest_ulfius *)cls)->log, GUEST_LOG_WARNING, fmt, line);
}

guest_status guest_ulfius_start(guest_ulfius *app, const char *bind_addr,
                                uint16_t port, struct _u_instance **out)
{
    if (!app || !out || app->instance)
        return GUEST_ERR_INVALID;
    struct sockaddr_storage ss;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG;
    int family = guest_sockaddr_parse(bind_addr, port, &ss);
    if (!family)
        return GUEST_ERR_INVALID;
    if (family == AF_INET6)
        flags |= MHD_USE_IPv6;
    struct _u_instance *in = calloc(1, sizeof *in);
    if (!in)
        return GUEST_ERR_NOMEM;
    /* Ulfius refuses port 0; the daemon binds to the address below. The
     * instance carries the endpoint as guest_ulfius_attach() sets it, so
     * that it reads as any other; the daemon's access handler is ours. */
    if (ulfius_init_instance(in, port ? port : 1, NULL, NULL) != U_OK) {
        free(in);
        return GUEST_ERR_NOMEM;
    }
    in->port = port;
    guest_status st = guest_ulfius_attach(app, in, NULL);
    if (st != GUEST_OK) {
        ulfius_clean_instance(in);
        free(in);
        return st;
    }
    const guest_ulfius_limits *l = &app->limits;
    struct MHD_OptionItem ops[] = {
        /* First, or MHD logs a warning of its own on stderr. */
        {MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)log_mhd, app},
        {MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)connection_notify, app},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)completed, NULL},
        {MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)uri_log, NULL},
        {MHD_OPTION_SOCK_ADDR, 0, &ss},
        {MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)l->idle_timeout_s, NULL},
        {MHD_OPTION_CONNECTION_LIMIT, (intptr_t)l->max_connections, NULL},
        {MHD_OPTION_PER_IP_CONNECTION_LIMIT, (intptr_t)l->max_conns_per_ip,
         NULL},
#if MHD_VERSION >= 0x00097701
        /* Refuses obsolete folded lines and bare LFs (framing_refused). */
        {MHD_OPTION_CLIENT_DISCIPLINE_LVL, 1, NULL},
#endif
        {MHD_OPTION_END, 0, NULL},
    };
    in->mhd_daemon =
        MHD_start_daemon(flags, port, NULL, NULL, access_handler, app,
                         MHD_OPTION_ARRAY, ops, MHD_OPTION_END);
    if (!in->mhd_daemon) {
        ulfius_clean_instance(in);
        free(in);
        return GUEST_ERR_CONFIG;
    }
    /* As ulfius_start_framework() leaves it, for ulfius_stop_framework(). */
    in->status = U_STATUS_RUNNING;
    app->instance = in;
    *out = in;
    return GUEST_OK;
}

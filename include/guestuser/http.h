/* libguestuser: the request/response layer adapters plug into. */
#ifndef GUESTUSER_HTTP_H
#define GUESTUSER_HTTP_H

#include <stdarg.h>
#include <stddef.h>

#include "config.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * What an adapter tells the library about its server. @p conn is the
 * adapter's own per-request object. Every returned string is borrowed and
 * must stay valid until the request is finished. Response calls return 0 on
 * success; the adapter may buffer them and send when the handler returns.
 *
 * Set `size` to sizeof(guest_http_ops) (GUEST_HTTP_OPS_INIT does):
 *
 *     static const guest_http_ops ops = {
 *         GUEST_HTTP_OPS_INIT,
 *         .header = my_header,
 *         ...
 *     };
 *
 * Members are only ever added at the end. The library reads no further than
 * `size` bytes and treats the members past it as NULL, so an adapter built
 * against an older header keeps working with a newer library.
 */
typedef struct guest_http_ops {
    /** sizeof(guest_http_ops) as the adapter was compiled; at least
     * GUEST_HTTP_OPS_MIN_SIZE. */
    size_t size;
    /** Header @p name (case-insensitive), or NULL: every line of it
     * joined in order, with "; " for Cookie and ", " otherwise
     * (guest_buf_append_field_line() does it). */
    const char *(*header)(void *conn, const char *name);
    /** Request method, e.g. "GET". */
    const char *(*method)(void *conn);
    /** Request target: the path with its query string, as received. */
    const char *(*target)(void *conn);
    /** Client address as text ("127.0.0.1"), or NULL when unknown (may be
     * NULL: never known). */
    const char *(*client_addr)(void *conn);
    int (*set_status)(void *conn, int status);
    int (*add_header)(void *conn, const char *name, const char *value);
    int (*write)(void *conn, const void *data, size_t len);
    /* Every member from here on is optional (NULL or beyond `size`). */
    /** Nonzero when the request came over HTTPS (NULL: never). */
    int (*is_https)(void *conn);
    /** The complete request body (NULL: the server has none). */
    int (*body)(void *conn, const char **data, size_t *len);
    /** Forget the status, headers and body set so far, for an error answer
     * after a handler began a page (NULL: unsupported). */
    int (*reset)(void *conn);
} guest_http_ops;

/** The smallest guest_http_ops.size guest_req_new() accepts: the struct up
 * to and including `write`, the last required member. */
#define GUEST_HTTP_OPS_MIN_SIZE                                                \
    (offsetof(guest_http_ops, write) + sizeof(((guest_http_ops *)0)->write))

/** First member of a guest_http_ops initializer: the size of the struct
 * this adapter is compiled with. */
#define GUEST_HTTP_OPS_INIT .size = sizeof(guest_http_ops)

/** The plain-text body of an adapter's 400 answer to GUEST_ERR_BAD_HOST. */
#define GUEST_BAD_HOST_TEXT "Bad Request (invalid Host header)\n"

/** A request handler; see guards.h for the wrapping macros. */
typedef void (*guest_handler_fn)(guest_req *req, void *userdata);

/**
 * Starts a request for an adapter. @p ops is copied (its first
 * @p ops->size bytes; members beyond count as NULL); @p conn is borrowed for
 * the request's life. Release with guest_req_free(). GUEST_ERR_BAD_HOST (and
 * no request) when the config's allowed_hosts is set and the Host header
 * is missing, malformed or not allowed: the adapter must then answer 400
 * with GUEST_BAD_HOST_TEXT and run no handler. GUEST_ERR_INVALID for
 * an ops size below GUEST_HTTP_OPS_MIN_SIZE or a missing required
 * callback, GUEST_ERR_NOMEM.
 */
GUEST_API GUEST_NODISCARD guest_status guest_req_new(guest_ctx *ctx,
                                                     const guest_http_ops *ops,
                                                     void *conn,
                                                     guest_req **out);
/** Ends a request; NULL is a no-op. */
GUEST_API void guest_req_free(guest_req *req);

/** The context a request belongs to (borrowed). */
GUEST_API guest_ctx *guest_req_ctx(const guest_req *req);
/** Header value, method, full target, path without query: borrowed, valid
 * until the request ends; header may return NULL. */
GUEST_API const char *guest_req_header(const guest_req *req, const char *name);
GUEST_API const char *guest_req_method(const guest_req *req);
GUEST_API const char *guest_req_target(const guest_req *req);
GUEST_API const char *guest_req_path(const guest_req *req);
/**
 * The client's address, for logs and per-client limits: the socket peer,
 * or, when the peer is in the config's trusted_proxies, the address those
 * proxies vouch for in X-Forwarded-For (read right to left; the first
 * untrusted hop, or the leftmost when all are trusted; a malformed entry
 * ends the walk at the hop before it). Spoofed headers from any other peer
 * change nothing. Decided once, in guest_req_new(). Normal text
 * ("192.0.2.1", "2001:db8::1"; an IPv4-mapped IPv6 peer as IPv4); the
 * adapter's own text when it is not an IP address; NULL when the adapter
 * does not know. Borrowed until the request ends.
 */
GUEST_API const char *guest_req_client_addr(const guest_req *req);
/** The socket peer's address exactly as the adapter gave it (for a proxied
 * request, the nearest proxy), or NULL. Borrowed until the request ends. */
GUEST_API const char *guest_req_peer_addr(const guest_req *req);
/** True when the adapter reports HTTPS. */
GUEST_API GUEST_NODISCARD bool guest_req_is_https(const guest_req *req);
/** Request body (empty when there is none). Borrowed. */
GUEST_API GUEST_NODISCARD guest_status guest_req_body(const guest_req *req,
                                                      const char **data,
                                                      size_t *len);

/**
 * The visitor's user, resolved from the session cookie once per request and
 * cached. *user is NULL for an anonymous visitor (no, bad, unknown or expired
 * cookie) and otherwise borrowed until the request ends. Returns
 * GUEST_ERR_DB_UNAVAILABLE / GUEST_ERR_DB when the database fails, with
 * libpq's detail in @p err (may be NULL); GUEST_ERR_INVALID for NULL
 * arguments.
 */
GUEST_API GUEST_NODISCARD guest_status guest_req_user(guest_req *req,
                                                      const guest_user **user,
                                                      guest_error *err);

/**
 * Makes the visitor a new guest: user, guest and session rows in one round
 * trip, Set-Cookie added to the response, on_guest_created fired. The guest
 * becomes the request's user. GUEST_ERR_NAME_EXHAUSTED when
 * name_max_attempts generated names in a row existed (guest_name_numbered
 * first grows one digit at a time, up to 18, and the context keeps the new
 * width); the generator's own status when it fails.
 * With guest_rate_limit on, GUEST_ERR_RATE_LIMITED when this client
 * address created its share already (guest_req_retry_after() says how long
 * to wait); with max_guests on, GUEST_ERR_BUSY when that many guests live.
 * Neither writes anything; the visitor stays anonymous.
 */
GUEST_API GUEST_NODISCARD guest_status guest_req_create_guest(
    guest_req *req, const guest_user **user, guest_error *err);

/**
 * After a call on @p req returned GUEST_ERR_RATE_LIMITED: the seconds until
 * the limit admits one more attempt from this client, for a Retry-After
 * header (at least 1). 0 when no limit refused anything on @p req or for
 * NULL.
 */
GUEST_API int64_t guest_req_retry_after(const guest_req *req);

/** User id (0 for NULL: anonymous). */
GUEST_API int64_t guest_user_id(const guest_user *user);
/** Username, borrowed like @p user; "" for NULL. */
GUEST_API const char *guest_user_name(const guest_user *user);
/** True for a guest (a guests row exists); false for NULL. The reference's
 * is_guest_user filter. */
GUEST_API GUEST_NODISCARD bool guest_is_guest_user(const guest_user *user);
/** True for a registered (non-guest) user. */
GUEST_API GUEST_NODISCARD bool guest_is_regular_user(const guest_user *user);
/** When the guest was created, Unix time in seconds (rounded down), as the
 * database's clock saw it; 0 for a registered user or NULL. Read with the
 * session, no extra query. */
GUEST_API int64_t guest_user_created_at(const guest_user *user);
/** When the guest expires: its creation time plus the context's max_age,
 * Unix seconds, after which guest_delete_expired() may delete it (its
 * session cookie runs out at about the same time). 0 for a registered user
 * or NULL: registered accounts do not expire. */
GUEST_API int64_t guest_user_expires_at(const guest_user *user);

/* Response building. Each returns GUEST_ERR_INVALID for bad input (a header
 * with CR, LF or NUL, a status outside 100-999) and GUEST_ERR_NOMEM when the
 * adapter fails. Adding a header, redirecting and resetting must be checked
 * (GUEST_NODISCARD): a dropped Set-Cookie, Location or reset changes what
 * the visitor gets. The status and body calls may be left unchecked where
 * the handler has no better answer to give. */
GUEST_API guest_status guest_res_set_status(guest_req *req, int status);
GUEST_API GUEST_NODISCARD guest_status guest_res_add_header(guest_req *req,
                                                            const char *name,
                                                            const char *value);
GUEST_API guest_status guest_res_write(guest_req *req, const void *data,
                                       size_t len);
GUEST_API guest_status guest_res_printf(guest_req *req, const char *fmt, ...)
    GUEST_PRINTF(2, 3);
/** Writes @p text HTML-escaped (& < > " '). */
GUEST_API guest_status guest_res_write_html(guest_req *req, const char *text);
/** Writes @p text (NULL reads as "") as a JSON string, quotes included:
 * '"' and backslash escaped, control bytes as \u00XX, other bytes as they are
 * (UTF-8 passes through). The first failing write's status. */
GUEST_API guest_status guest_res_write_json_string(guest_req *req,
                                                   const char *text);
/** Status + Content-Type + body in one call. */
GUEST_API guest_status guest_res_send(guest_req *req, int status,
                                      const char *content_type,
                                      const char *body);
/** 302 to @p location (rejected if it holds CR, LF or NUL). */
GUEST_API GUEST_NODISCARD guest_status guest_res_redirect(guest_req *req,
                                                          const char *location);
/** Discards the status, headers and body set so far (Set-Cookie
 * included), back to an empty 200: for an error page after a page was
 * begun. GUEST_ERR_INVALID when the adapter cannot (no reset callback). */
GUEST_API GUEST_NODISCARD guest_status guest_res_reset(guest_req *req);
/** Status the handler set so far (200 when none). */
GUEST_API int guest_res_status_code(const guest_req *req);

/**
 * A ready-made handler (userdata unused) answering who the visitor is, as
 * JSON, without making a guest: `{"authenticated":false,"guest":false,
 * "id":null,"username":null}` for a visitor without a session, otherwise
 * `{"authenticated":true,"guest":BOOL,"id":N,"username":"..."}`; with
 * `Cache-Control: no-store`. 503 when the session could not be read.
 */
GUEST_API void guest_whoami_view(guest_req *req, void *userdata);
/** A ready-made handler (userdata unused) for a health check: 200 "ok\n"
 * when guest_ping() reaches the database, 503 "database unavailable\n"
 * otherwise, both text/plain. */
GUEST_API void guest_healthz_view(guest_req *req, void *userdata);

/** A route: method ("GET"; NULL: any), exact path, handler and user data.
 * A path ending in '*' matches every path with that prefix. */
typedef struct guest_route {
    const char *method;
    const char *path;
    guest_handler_fn handler;
    void *userdata;
} guest_route;

/**
 * Runs the handler of the first route in @p routes (an array of guest_route
 * ending with a {NULL} path; borrowed for the call) that matches the
 * request's path and method, with that route's userdata. A route for GET
 * also answers HEAD. Unknown path: 404; known path, other method: 405 with
 * Allow. NULL @p routes is an empty table. Thread-safe when the handlers
 * are.
 */
GUEST_API void guest_routes_dispatch(guest_req *req, const guest_route *routes);

/**
 * Defines `void name(guest_req *req, void *userdata)`, a guest_handler_fn
 * for an adapter that dispatches on @p table (a `const guest_route *` or
 * array; evaluated once per request) with guest_routes_dispatch(). The
 * adapter's userdata is not used. Prefix with `static` for a file-local
 * handler:
 *
 *     static const guest_route routes[] = {
 *         {"GET", "/", home, NULL},
 *         {NULL, NULL, NULL, NULL},
 *     };
 *     static GUEST_ROUTES(app_handler, routes)
 *     ...
 *     guest_mhd_new(ctx, app_handler, NULL, &app);
 */
#define GUEST_ROUTES(name, table)                                              \
    void name(guest_req *req, void *userdata);                                 \
    void name(guest_req *req, void *userdata)                                  \
    {                                                                          \
        (void)userdata;                                                        \
        guest_routes_dispatch(req, (table));                                   \
    }

/**
 * Forwards a server library's own log messages (its error-log callback) to
 * the library's log (guest_config.log, else stderr), at most one line per
 * kind of message per interval. The lines of a kind past the first are
 * counted, and the next one that goes out says how many were held back
 * ("... (1234 more like this in the last 10 s)"): a flood of connection
 * errors from slow or hostile clients costs a line per interval instead of
 * one per connection. The in-tree adapters keep one each, with
 * GUEST_LOG_LIMIT_INTERVAL_S. All calls on one limiter are thread-safe.
 */
typedef struct guest_log_limiter guest_log_limiter;

/** The adapters' interval, in seconds, between two lines of one kind. */
#define GUEST_LOG_LIMIT_INTERVAL_S 10

/**
 * Makes a limiter writing to @p ctx's log (borrowed: it must outlive the
 * limiter), each line starting with "@p source: " (copied; NULL: no
 * prefix), at most one line of a kind per @p interval_s seconds (0:
 * GUEST_LOG_LIMIT_INTERVAL_S). Free with guest_log_limiter_free().
 * GUEST_ERR_INVALID for a NULL @p ctx or @p out, GUEST_ERR_NOMEM.
 */
GUEST_API GUEST_NODISCARD guest_status
guest_log_limiter_new(guest_ctx *ctx, const char *source, unsigned interval_s,
                      guest_log_limiter **out);

/**
 * Logs @p message (one line; a trailing newline is dropped) at @p level,
 * unless a message of the same @p kind went out less than the interval
 * ago, in which case it is only counted. @p kind names what the message is
 * about, e.g. the printf format a server logged it with; NULL: the message
 * itself with its digits left out, so that addresses and counts do not
 * make new kinds. The first 16 kinds are kept apart, later ones share one
 * count. True when a line went out; false when counted, or for a NULL
 * @p lim or @p message.
 */
GUEST_API bool guest_log_limited(guest_log_limiter *lim, guest_log_level level,
                                 const char *kind, const char *message);

/** Logs the counts not yet reported (one line per kind), then frees
 * @p lim; NULL is a no-op. No other call on @p lim may be running. */
GUEST_API void guest_log_limiter_free(guest_log_limiter *lim);

#ifdef __cplusplus
}
#endif
#endif

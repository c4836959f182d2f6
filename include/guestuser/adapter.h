/* libguestuser: building blocks for server adapters. Most servers need the
 * status and headers before the first body byte, while handlers may set a
 * header after writing; adapters collect the response here and send it when
 * the handler returns. */
#ifndef GUESTUSER_ADAPTER_H
#define GUESTUSER_ADAPTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "http.h"
#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A growable byte buffer, always NUL-terminated once non-empty. Zero it to
 * initialise; release with guest_buf_cleanup(). */
typedef struct guest_buf {
    char *data; /**< owned; NULL while empty */
    size_t len;
    size_t cap;
} guest_buf;

/** Appends @p len bytes; 0 on success, -1 when out of memory (@p b keeps
 * what it had). */
GUEST_API GUEST_NODISCARD int guest_buf_append(guest_buf *b, const void *data,
                                               size_t len);
/** Releases the bytes @p b holds (not @p b itself) and zeroes it. */
GUEST_API void guest_buf_cleanup(guest_buf *b);

/** A response collected from the guest_http_ops calls. */
typedef struct guest_response {
    int status;          /**< 200 until set */
    char **headers;      /**< name, value, name, value ...; owned */
    size_t header_count; /**< pairs in headers */
    size_t max_headers;  /**< 0: no limit; past it add_header fails */
    guest_buf body;
} guest_response;

/** Empty response, status 200, no header limit. */
GUEST_API void guest_response_init(guest_response *r);
/** The guest_http_ops calls, each returning 0 or -1 (out of memory, or the
 * header limit). Name and value are copied. */
GUEST_API GUEST_NODISCARD int guest_response_set_status(guest_response *r,
                                                        int status);
GUEST_API GUEST_NODISCARD int guest_response_add_header(guest_response *r,
                                                        const char *name,
                                                        const char *value);
GUEST_API GUEST_NODISCARD int
guest_response_write(guest_response *r, const void *data, size_t len);
/** Drops headers and body and sets @p status: for an adapter's own error
 * answer after a handler already wrote something. */
GUEST_API void guest_response_reset(guest_response *r, int status);
/** Releases what @p r holds (headers and body), not @p r itself, which may
 * be reused after guest_response_init(). */
GUEST_API void guest_response_cleanup(guest_response *r);

/**
 * Defines the four response callbacks of guest_http_ops, named
 * PREFIX_set_status, PREFIX_add_header, PREFIX_write and PREFIX_reset, for
 * an adapter whose per-request struct @p type keeps its guest_response in
 * @p member. Use at file scope, then GUEST_RESPONSE_OPS(PREFIX) in the ops
 * table:
 *
 *     GUEST_RESPONSE_CALLBACKS(op, my_req, res)
 *     static const guest_http_ops ops = {
 *         GUEST_HTTP_OPS_INIT, ...the request callbacks...,
 *         GUEST_RESPONSE_OPS(op),
 *     };
 */
#define GUEST_RESPONSE_CALLBACKS(prefix, type, member)                         \
    static int prefix##_set_status(void *c, int status)                        \
    {                                                                          \
        return guest_response_set_status(&((type *)c)->member, status);        \
    }                                                                          \
    static int prefix##_add_header(void *c, const char *name,                  \
                                   const char *value)                          \
    {                                                                          \
        return guest_response_add_header(&((type *)c)->member, name, value);   \
    }                                                                          \
    static int prefix##_write(void *c, const void *data, size_t len)           \
    {                                                                          \
        return guest_response_write(&((type *)c)->member, data, len);          \
    }                                                                          \
    static int prefix##_reset(void *c)                                         \
    {                                                                          \
        guest_response_reset(&((type *)c)->member, 200);                       \
        return 0;                                                              \
    }

/** The four members of a guest_http_ops initializer that
 * GUEST_RESPONSE_CALLBACKS(PREFIX, ...) defined: set_status, add_header,
 * write and reset. */
#define GUEST_RESPONSE_OPS(prefix)                                             \
    .set_status = prefix##_set_status, .add_header = prefix##_add_header,      \
    .write = prefix##_write, .reset = prefix##_reset

/** A whole guest_http_ops initializer, for an adapter whose request
 * callbacks are named PREFIX_header, PREFIX_method, PREFIX_target,
 * PREFIX_client_addr, PREFIX_is_https and PREFIX_body, beside the
 * response callbacks of GUEST_RESPONSE_CALLBACKS(PREFIX, ...):
 *
 *     static const guest_http_ops ops = {GUEST_HTTP_OPS(op)};
 */
#define GUEST_HTTP_OPS(prefix)                                                 \
    GUEST_HTTP_OPS_INIT, .header = prefix##_header, .method = prefix##_method, \
                         .target = prefix##_target,                            \
                         .client_addr = prefix##_client_addr,                  \
                         .is_https = prefix##_is_https, .body = prefix##_body, \
                         GUEST_RESPONSE_OPS(prefix)

/**
 * Appends @p value to @p b as one more line of the header field @p name,
 * the way RFC 9110 5.3 combines a field sent on several lines: ", " between
 * values ("; " for Cookie). For an adapter's header callback, so the
 * library sees every line of X-Forwarded-For, not just the first.
 * 0, or -1 when out of memory (@p b keeps what it had).
 */
GUEST_API GUEST_NODISCARD int
guest_buf_append_field_line(guest_buf *b, const char *name, const char *value);

/** At most this many joined values a guest_joined keeps per request. */
#define GUEST_JOINED_MAX 8

/**
 * The header values an adapter's header callback had to build for one
 * request (a field sent on several lines, joined), kept so that the
 * pointers it handed out stay valid until the request ends. Zero it to
 * initialise; guest_joined_cleanup() frees them. Not for several threads
 * at once (one request's).
 */
typedef struct guest_joined {
    char **values; /**< owned, each freed by guest_joined_cleanup() */
    size_t count;
} guest_joined;

/** Frees every value @p j keeps (not @p j itself) and zeroes it, ready for
 * the next request. NULL is a no-op. */
GUEST_API void guest_joined_cleanup(guest_joined *j);

/**
 * One header field's lines, gathered by an adapter's header callback for
 * the guest_http_ops `header` call: zero it, give every line of the field
 * to guest_field_add() in the order received, end with guest_field_value().
 * One line costs no allocation; from the second on the lines are joined.
 */
typedef struct guest_field {
    size_t lines;      /**< lines added so far */
    const char *first; /**< the first line's value, borrowed */
    guest_buf joined;  /**< every line joined, from the second line on */
    bool failed;       /**< out of memory while joining */
} guest_field;

/**
 * Adds one line of the field @p name (its spelling picks the separator,
 * as in guest_buf_append_field_line()). @p value (NULL reads as "") is
 * borrowed: the first line's until a second line is added, or, when it
 * stays the only one, for as long as the value guest_field_value() returns
 * is used; any later line's only during this call.
 */
GUEST_API void guest_field_add(guest_field *f, const char *name,
                               const char *value);

/**
 * The field's value for the `header` callback, and the end of @p f (what
 * it holds is released; zero it again to reuse it). NULL without any line;
 * the first line's value itself (borrowed from the adapter) with one line;
 * with more, the lines joined, owned by @p keep and valid until
 * guest_joined_cleanup(@p keep). NULL rather than a partial value when
 * memory ran out or @p keep already holds GUEST_JOINED_MAX values.
 */
GUEST_API const char *guest_field_value(guest_field *f, guest_joined *keep);

/**
 * 0 when @p name is an RFC 9110 token (a valid header field name: letters,
 * digits and !#$%&'*+-.^_`|~, at least one), -1 otherwise (NULL too). A
 * name with a blank or a colon in it is a line the server library read
 * otherwise than a proxy may: answer 400 and close.
 */
GUEST_API GUEST_NODISCARD int guest_header_name_ok(const char *name);

/**
 * 0 when a header value as the server library parsed it holds no control
 * byte but horizontal tab, -1 otherwise: a bare CR a server kept inside a
 * value is a line end to a proxy that honours it, and the header behind it
 * would hide from the adapter's framing checks (answer 400 and close).
 */
GUEST_API GUEST_NODISCARD int guest_header_value_ok(const char *value);

/**
 * true when the comma-separated list @p value (a field such as Connection,
 * RFC 9110 5.6.1: blanks around each element, empty elements skipped)
 * holds @p token, in any case; false for NULL. For a handler's
 * "Connection: close", which the adapter honours by closing.
 */
GUEST_API GUEST_NODISCARD bool guest_header_has_token(const char *value,
                                                      const char *token);

/**
 * Reads a Content-Length value as RFC 9112 6.3 allows it: 1*DIGIT with
 * blanks around it. 0 with the length in @p n; 1 when the digits overflow
 * (a length past any limit: answer 413); -1 for anything else, a sign, a
 * list, hex, bytes after the digits, NULL (a framing error: answer 400).
 * @p n is written only on 0.
 */
GUEST_API GUEST_NODISCARD int guest_content_length_parse(const char *value,
                                                         unsigned long long *n);

/**
 * true when a request whose Content-Length is @p value (NULL: none, false)
 * is to be refused before its body is read: a value
 * guest_content_length_parse() does not read as a length, or a length over
 * @p max. For the 413 an adapter answers on the headers alone.
 */
GUEST_API GUEST_NODISCARD bool guest_content_length_over(const char *value,
                                                         size_t max);

/**
 * What the header lines of one request say about the framing of its body,
 * for the checks against request smuggling (a proxy in front reading the
 * request another way than the server). Zero it, give every header line
 * to guest_framing_add(), then ask guest_framing_refused(). It reads the
 * values of Content-Length and Transfer-Encoding only: a name that is not
 * a token or a control byte in a value is the adapter's to refuse
 * (guest_header_name_ok(), guest_header_value_ok()).
 */
typedef struct guest_framing {
    size_t content_length;    /**< Content-Length lines */
    size_t transfer_encoding; /**< Transfer-Encoding lines */
    size_t host;              /**< Host lines */
    /** A Content-Length guest_content_length_parse() refuses, or a
     * Transfer-Encoding other than "chunked" (any case, blanks before it
     * only: the server decodes no other coding, and skips no blank after
     * the value). */
    bool bad_value;
} guest_framing;

/** Counts one header line of @p name (any case) with @p value (NULL: a
 * line without a value, a bad one for the two framing fields). */
GUEST_API void guest_framing_add(guest_framing *f, const char *name,
                                 const char *value);

/**
 * true when the request must be refused with 400 and the connection
 * closed: a bad value, two Content-Length, Transfer-Encoding or Host
 * lines, Content-Length with Transfer-Encoding, or a Transfer-Encoding in
 * a request older than HTTP/1.1 (@p http11 false; RFC 9112 6.1).
 */
GUEST_API GUEST_NODISCARD bool guest_framing_refused(const guest_framing *f,
                                                     bool http11);

/**
 * Runs @p handler on one complete request: guest_req_new() over @p ops and
 * @p conn, then the handler with @p userdata, then guest_req_free(). 0
 * when the handler ran: its answer is what the ops collected. Otherwise
 * the status of the answer the adapter gives itself, with its plain-text
 * body in @p *text (a static string, never to be freed): 400 with
 * GUEST_BAD_HOST_TEXT for a Host outside allowed_hosts, 500 with
 * "Internal Server Error\n" when the request could not be made (memory,
 * an ops table guest_req_new() refuses). Thread-safe as the handler is.
 */
GUEST_API GUEST_NODISCARD int
guest_run_handler(guest_ctx *ctx, const guest_http_ops *ops, void *conn,
                  guest_handler_fn handler, void *userdata, const char **text);

/**
 * Replaces whatever @p r holds by a short answer of the adapter's own:
 * @p status, Content-Type text/plain; charset=utf-8, and @p text as the
 * body. 0, or -1 when memory ran out, and then @p r holds @p status alone
 * (no header, no body), still an answer to send.
 */
GUEST_API int guest_response_plain(guest_response *r, int status,
                                   const char *text);

/**
 * Fills @p out (zeroed first) with the numeric IPv4 or IPv6 address
 * @p addr (NULL: "127.0.0.1") and @p port, for a server that binds to a
 * socket address. Returns AF_INET or AF_INET6, or 0 when @p addr is not a
 * numeric address (host names are not looked up).
 */
GUEST_API GUEST_NODISCARD int
guest_sockaddr_parse(const char *addr, uint16_t port,
                     struct sockaddr_storage *out);

/**
 * Versioned structs, for a struct of settings that grows across releases
 * (docs/abi.md): its first field is `size_t size`, and its _init() macro
 * passes the program's sizeof. guest_sized_init() copies @p defaults (a
 * whole struct of this library's @p full bytes) into @p dst of the
 * program's @p size bytes: the prefix an older program knows, zeroes past
 * @p full for a newer one; then sets dst's size field to @p size. Nothing
 * happens when @p size cannot hold the size field.
 */
GUEST_API void guest_sized_init(void *dst, size_t size, const void *defaults,
                                size_t full);
/**
 * Reads a program's struct @p in over @p out, which holds the defaults (a
 * whole struct of @p full bytes), so fields the program does not know keep
 * them; out's size field becomes @p full. false, with @p out untouched,
 * when an argument is NULL or in's size field is below @p min (the size of
 * the first release's struct) or above @p full (not filled by its _init(),
 * or built against a newer library).
 */
GUEST_API GUEST_NODISCARD bool guest_sized_read(const void *in, size_t min,
                                                void *out, size_t full);

/**
 * A header-timeout watchdog, for a server library whose own timeout is one
 * of silence (a client sending a byte a second keeps its connection for as
 * long as it likes). Its thread wakes four times a second and shuts down
 * (shutdown(2) both ways, never close) each watched connection whose
 * deadline passed, or whose client closed its side (see
 * guest_watched_peer_closed()) while no answer is on its way. The fd stays
 * the server's: remove the connection with guest_watchdog_remove() before
 * the server closes it, so a watched fd is never one reused by another
 * connection. Every call is thread-safe.
 */
typedef struct guest_watchdog guest_watchdog;

/** One connection a guest_watchdog watches (guest_watchdog_add()). */
typedef struct guest_watched guest_watched;

/**
 * Makes a watchdog, its thread not started yet. @p tick (may be NULL) runs
 * on the watchdog's thread before each round, with @p userdata, under the
 * watchdog's lock: it may call guest_watched_peer_closed() and no other
 * watchdog function. GUEST_OK with the watchdog in @p *out, to free with
 * guest_watchdog_free(); GUEST_ERR_INVALID (@p out NULL), GUEST_ERR_NOMEM.
 */
GUEST_API GUEST_NODISCARD guest_status guest_watchdog_new(
    void (*tick)(void *userdata), void *userdata, guest_watchdog **out);

/** Stops and joins the thread and frees @p wd; call it once no connection
 * is watched any more (the server stopped). NULL is a no-op. */
GUEST_API void guest_watchdog_free(guest_watchdog *wd);

/**
 * Watches the connection on @p fd (below 0: listed, never shut down), with
 * no deadline yet (guest_watched_arm()). The entry, owned by @p wd, lives
 * until guest_watchdog_remove(). NULL when memory ran out (or @p wd NULL):
 * the connection then goes unwatched.
 */
GUEST_API GUEST_NODISCARD guest_watched *guest_watchdog_add(guest_watchdog *wd,
                                                            int fd);

/** Starts the thread unless it runs already or @p wd is being freed; when
 * no thread can be made, connections go unwatched until a later call. */
GUEST_API void guest_watchdog_start(guest_watchdog *wd);

/** Stops watching @p w and frees it; NULL either way is a no-op. */
GUEST_API void guest_watchdog_remove(guest_watchdog *wd, guest_watched *w);

/** true while a connection is watched or the thread runs: an adapter's
 * limits can no longer change then. */
GUEST_API GUEST_NODISCARD bool guest_watchdog_busy(guest_watchdog *wd);

/** The connections shut down because their deadline passed, since
 * guest_watchdog_new(); 0 for NULL. */
GUEST_API unsigned long guest_watchdog_timed_out(const guest_watchdog *wd);

/** Gives @p w a deadline @p timeout_s seconds from now (0: none, for
 * while the request is the adapter's). NULL is a no-op. */
GUEST_API void guest_watched_arm(guest_watched *w, unsigned timeout_s);

/** Whether an answer is on its way on @p w: a client that closed its side
 * is not cut off then. NULL is a no-op. */
GUEST_API void guest_watched_answering(guest_watched *w, bool answering);

/** Marks that the client of @p w closed its side; from the tick only (see
 * guest_watchdog_new()). NULL is a no-op. */
GUEST_API void guest_watched_peer_closed(guest_watched *w);

#ifdef __cplusplus
}
#endif
#endif

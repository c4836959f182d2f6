/* libguestuser adapter for CivetWeb (library guestuser::civetweb). */
#ifndef GUESTUSER_ADAPTERS_CIVETWEB_H
#define GUESTUSER_ADAPTERS_CIVETWEB_H

#include <civetweb.h>

#include "../guestuser.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Binds a guest_ctx and a handler to CivetWeb. */
typedef struct guest_civetweb guest_civetweb;

/**
 * Creates an adapter that runs @p handler (with @p userdata) for every
 * request. @p ctx is borrowed and must outlive the adapter. Also takes a
 * reference on CivetWeb's global state (mg_init_library, reference counted),
 * so call it before the first server starts and from one thread at a time.
 * Free with guest_civetweb_free() after mg_stop() returned.
 * GUEST_ERR_INVALID for a NULL argument, GUEST_ERR_NOMEM, GUEST_ERR_CONFIG
 * when CivetWeb cannot initialise.
 */
GUEST_API GUEST_NODISCARD guest_status
guest_civetweb_new(guest_ctx *ctx, guest_handler_fn handler, void *userdata,
                   guest_civetweb **out);
/** Releases @p app and its CivetWeb reference (mg_exit_library); NULL is a
 * no-op. No server may still run requests through @p app. */
GUEST_API void guest_civetweb_free(guest_civetweb *app);

/**
 * CivetWeb's own defences against slow clients; see docs/deployment.md.
 * CivetWeb serves one connection per worker thread and has no per-address
 * connection limit: put a reverse proxy in front of it on the internet.
 */
typedef struct guest_civetweb_limits {
    /** sizeof(guest_civetweb_limits) where the program was compiled, set by
     * guest_civetweb_limits_init() (fields a later 1.x adds take their
     * defaults). */
    size_t size;
    /** Worker threads, i.e. connections served at once (50; 1..1024). */
    unsigned threads;
    /** Seconds a client may take to send its request headers, and to
     * complete each read or write after that (10; 1..3600). */
    unsigned header_timeout_s;
} guest_civetweb_limits;

/** Fills @p limits with the defaults listed on each field, and its size. */
#define guest_civetweb_limits_init(limits)                                     \
    guest_civetweb_limits_init_size((limits), sizeof(guest_civetweb_limits))
/** guest_civetweb_limits_init() for a struct of @p size bytes. */
GUEST_API void guest_civetweb_limits_init_size(guest_civetweb_limits *limits,
                                               size_t size);

/** Sets the limits guest_civetweb_start() uses; call before it.
 * GUEST_ERR_INVALID for a NULL argument or a value out of range. */
GUEST_API GUEST_NODISCARD guest_status guest_civetweb_set_limits(
    guest_civetweb *app, const guest_civetweb_limits *limits);

/**
 * Starts a CivetWeb server on @p bind_addr (IPv4 or IPv6 literal; NULL:
 * 127.0.0.1) and @p port (0: any free port; ask mg_get_server_ports()),
 * with guest_civetweb_handler() serving every path, keep-alive on and
 * decode_url off so handlers see the target as received, and the
 * limits of guest_civetweb_set_limits(). Errors are
 * logged to stderr. Stop it with mg_stop(), then free @p app.
 * GUEST_ERR_INVALID for a bad address, GUEST_ERR_CONFIG when it cannot bind.
 */
GUEST_API GUEST_NODISCARD guest_status
guest_civetweb_start(guest_civetweb *app, const char *bind_addr, uint16_t port,
                     struct mg_context **out);

/**
 * The CivetWeb request handler, for applications that start their own
 * server: mg_set_request_handler(mg_ctx, "/", guest_civetweb_handler, app)
 * serves every path (register a narrower prefix for part of a site).
 * Answers 400 and closes the connection when CivetWeb did not read every
 * header line (an obsolete folded line, a line it does not take for a
 * header, more than MG_MAX_HEADERS lines, lines not ended by CRLF, or no
 * header line at all) and for ambiguous framing (two Content-Lengths or
 * Hosts, Content-Length with Transfer-Encoding). Reads the body up to
 * guest_config.max_body_size (413 beyond), runs the handler and sends the
 * buffered response with a Content-Length. Returns the HTTP status sent. Works
 * with either decode_url setting; with "yes" (CivetWeb's default) the decoded
 * path is percent-encoded again, so "%41" is seen as "A".
 */
GUEST_API int guest_civetweb_handler(struct mg_connection *conn, void *app);

#ifdef __cplusplus
}
#endif
#endif

/* libguestuser adapter for Ulfius (library guestuser::ulfius). */
#ifndef GUESTUSER_ADAPTERS_ULFIUS_H
#define GUESTUSER_ADAPTERS_ULFIUS_H

#include <ulfius.h>

#include "../guestuser.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Binds a guest_ctx and a handler to Ulfius. */
typedef struct guest_ulfius guest_ulfius;

/**
 * Creates an adapter that runs @p handler (with @p userdata) for every
 * request. @p ctx is borrowed and must outlive the adapter. Free with
 * guest_ulfius_free(). GUEST_ERR_INVALID for a NULL argument,
 * GUEST_ERR_NOMEM.
 */
GUEST_API GUEST_NODISCARD guest_status
guest_ulfius_new(guest_ctx *ctx, guest_handler_fn handler, void *userdata,
                 guest_ulfius **out);
/** Stops and releases the instance guest_ulfius_start() made, if any, then
 * @p app; NULL is a no-op. An instance of the application's own must be
 * stopped first. */
GUEST_API void guest_ulfius_free(guest_ulfius *app);

/**
 * Limits of the libmicrohttpd daemon under guest_ulfius_start(); see
 * docs/deployment.md. It serves each connection on a thread of its own.
 * Fill with guest_ulfius_limits_init(), change fields, pass to
 * guest_ulfius_set_limits().
 */
typedef struct guest_ulfius_limits {
    /** sizeof(guest_ulfius_limits) where the program was compiled, set by
     * guest_ulfius_limits_init() (fields a later 1.x adds take their defaults).
     */
    size_t size;
    /** Connections (and so threads) open at once, all clients together
     * (512; 1..65535). */
    unsigned max_connections;
    /** Connections one client address may hold (32; 0: no limit). Behind a
     * reverse proxy set 0 and limit clients in the proxy. */
    unsigned max_conns_per_ip;
    /** Seconds of silence after which a connection is closed, also while
     * its request headers or body are still coming (30; 1..86400). */
    unsigned idle_timeout_s;
    /** Seconds a client may take to send its request headers, counted from
     * connecting or from the end of its previous response, and again for
     * the body (10; 0: no bound; at most 3600). A slower client is
     * disconnected, however steadily it trickles: without it a byte every
     * few seconds holds a connection and its thread indefinitely. */
    unsigned header_timeout_s;
} guest_ulfius_limits;

/** Fills @p limits with the defaults listed on each field, and its size. */
#define guest_ulfius_limits_init(limits)                                       \
    guest_ulfius_limits_init_size((limits), sizeof(guest_ulfius_limits))
/** guest_ulfius_limits_init() for a struct of @p size bytes. */
GUEST_API void guest_ulfius_limits_init_size(guest_ulfius_limits *limits,
                                             size_t size);

/** Sets the limits guest_ulfius_start() uses; call before it.
 * GUEST_ERR_INVALID for a NULL argument, a value out of range, or once the
 * instance is started. */
GUEST_API GUEST_NODISCARD guest_status
guest_ulfius_set_limits(guest_ulfius *app, const guest_ulfius_limits *limits);

/**
 * Makes an Ulfius instance and starts it on @p bind_addr (IPv4 or IPv6
 * literal; NULL: 127.0.0.1) and @p port (0: any free port; ask
 * MHD_get_daemon_info((*out)->mhd_daemon, MHD_DAEMON_INFO_BIND_PORT)),
 * attached as guest_ulfius_attach() does with every path served, with the
 * limits of guest_ulfius_set_limits(), over plain HTTP (behind a TLS proxy
 * set guest_config.secure_proxy_header). Its libmicrohttpd daemon runs an
 * access handler of the adapter's in place of Ulfius's dispatcher, which
 * reads every body to its end: ambiguous framing and obsolete folded
 * header lines get 400 before any body byte is read, a body over
 * guest_config.max_body_size gets 413 and the connection closes as soon as
 * the declared length or the bytes received pass the limit, a request
 * whose headers or body take longer than header_timeout_s is closed; the
 * handler
 * then runs through guest_ulfius_callback() on a request filled as Ulfius
 * fills it, and the response goes out as Ulfius sends it. Endpoints added
 * to the instance are not served. @p *out is borrowed from @p app:
 * guest_ulfius_free() stops and releases it (ulfius_stop_framework()
 * before that is fine). One instance per adapter.
 * GUEST_ERR_INVALID for a NULL argument, a bad address or a second start,
 * GUEST_ERR_NOMEM, GUEST_ERR_CONFIG when it cannot bind.
 */
GUEST_API GUEST_NODISCARD guest_status
guest_ulfius_start(guest_ulfius *app, const char *bind_addr, uint16_t port,
                   struct _u_instance **out);

/**
 * For an instance the application made with ulfius_init_instance(): adds
 * an endpoint serving every method under @p prefix (NULL: every path) with
 * guest_ulfius_callback() and @p app, and sets what the adapter needs on
 * the instance: max_post_body_size one byte over guest_config.max_body_size
 * (so a longer body, which Ulfius would cut silently, is seen and answered
 * 413; do not lower it), check_utf8 off (Ulfius drops headers that are not
 * UTF-8) and allowed_post_processor U_POST_PROCESS_NONE (the library parses
 * forms itself). Call before ulfius_start_framework(). Ulfius's dispatcher
 * still reads every request body to its end before the 413 (an endless
 * chunked body for as long as the client sends) and joins obsolete folded
 * header lines without a trace: on the internet, put a proxy that limits
 * bodies and refuses folded lines in front, or use guest_ulfius_start().
 * GUEST_ERR_INVALID for a NULL argument, GUEST_ERR_NOMEM when Ulfius
 * refuses the endpoint.
 */
GUEST_API GUEST_NODISCARD guest_status guest_ulfius_attach(
    guest_ulfius *app, struct _u_instance *instance, const char *prefix);

/**
 * The Ulfius endpoint callback, with the guest_ulfius as @p user_data
 * (guest_ulfius_attach() registers it). Refuses a body over
 * guest_config.max_body_size (413) and ambiguous framing (400), runs the
 * handler and fills @p response: every Set-Cookie the handler set goes out
 * as a line of its own, other repeated headers are joined with ", ".
 * Returns U_CALLBACK_COMPLETE.
 */
GUEST_API int guest_ulfius_callback(const struct _u_request *request,
                                    struct _u_response *response,
                                    void *user_data);

#ifdef __cplusplus
}
#endif
#endif

/* libguestuser adapter for GNU libmicrohttpd (library guestuser::mhd). */
#ifndef GUESTUSER_ADAPTERS_MHD_H
#define GUESTUSER_ADAPTERS_MHD_H

#include <microhttpd.h>

#include "../guestuser.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Binds a guest_ctx and a handler to libmicrohttpd. */
typedef struct guest_mhd guest_mhd;

/**
 * Creates an adapter that runs @p handler (with @p userdata) for every
 * request. @p ctx is borrowed and must outlive the adapter. Free with
 * guest_mhd_free() after the daemon stopped.
 */
GUEST_API GUEST_NODISCARD guest_status guest_mhd_new(guest_ctx *ctx,
                                                     guest_handler_fn handler,
                                                     void *userdata,
                                                     guest_mhd **out);
/** Releases @p app; NULL is a no-op. Stop the daemon first. */
GUEST_API void guest_mhd_free(guest_mhd *app);

/**
 * Limits against slow and greedy clients; see docs/deployment.md. Fill with
 * guest_mhd_limits_init(), change fields, pass to guest_mhd_set_limits().
 */
typedef struct guest_mhd_limits {
    /** sizeof(guest_mhd_limits) where the program was compiled, set by
     * guest_mhd_limits_init() (fields a later 1.x adds take their defaults). */
    size_t size;
    /** Connections open at once, all clients together (512). In event
     * mode libmicrohttpd gives each of the pollers an equal share of it. */
    unsigned max_connections;
    /** Connections one client address may hold (32; 0: no limit). Behind a
     * reverse proxy every request comes from the proxy: set 0 there and
     * limit clients in the proxy. */
    unsigned max_conns_per_ip;
    /** Seconds a client may take to send its request headers, counted from
     * connecting or from the end of its previous response, and again for
     * the body (10; 0: no bound). A slower client is disconnected. */
    unsigned header_timeout_s;
    /** Seconds of silence after which a connection is closed (30). */
    unsigned idle_timeout_s;
    /** The mode (0; at most 1024). 0: a thread per connection, on which
     * the handler runs. N: event mode, for many slow or idle clients:
     * libmicrohttpd's polling threads (epoll, see pollers) read the
     * connections and a pool of N worker threads runs the guards and
     * handlers (32 is a good start; a request that waits for PostgreSQL
     * or a password hash holds a worker that long). A connection still
     * sending its request costs a few kilobytes and no thread. Stop the
     * daemon with guest_mhd_stop() in this mode. */
    unsigned workers;
    /** Event mode: complete requests waiting for a free worker (1024;
     * 1..1000000); past it a request is answered 503 at once. */
    unsigned max_queued;
    /** Event mode: libmicrohttpd's polling threads, each reading its
     * share of the connections (4; 1..64; since 1.1). When thousands of
     * slow clients send a byte in the same instant, one thread reads
     * them all before the next request; several spread that burst
     * (docs/performance.md). */
    unsigned pollers;
} guest_mhd_limits;

/** Fills @p limits with the defaults listed on each field, and its size. */
#define guest_mhd_limits_init(limits)                                          \
    guest_mhd_limits_init_size((limits), sizeof(guest_mhd_limits))
/** guest_mhd_limits_init() for a struct of @p size bytes. */
GUEST_API void guest_mhd_limits_init_size(guest_mhd_limits *limits,
                                          size_t size);

/**
 * Sets the limits guest_mhd_start() starts the daemon with (and the
 * header timeout for any daemon using guest_mhd_connection). Call before
 * the first connection. GUEST_ERR_INVALID for a NULL argument,
 * max_connections 0, a header timeout over an hour, an idle timeout over a
 * day, workers over 1024, max_queued 0 or over 1000000, pollers 0 or
 * over 64, or when connections are already being served.
 */
GUEST_API GUEST_NODISCARD guest_status
guest_mhd_set_limits(guest_mhd *app, const guest_mhd_limits *limits);

/** Connections closed so far because their client did not send its
 * request within header_timeout_s. Thread-safe. */
GUEST_API unsigned long guest_mhd_timed_out(const guest_mhd *app);

/**
 * Starts a libmicrohttpd daemon on @p bind_addr (IPv4 or IPv6 literal;
 * NULL: 127.0.0.1) and @p port, with the four callbacks below installed
 * and the limits of guest_mhd_set_limits(): a thread per connection, or
 * with limits.workers set, event mode (MHD_USE_INTERNAL_POLLING_THREAD,
 * MHD_USE_AUTO, MHD_ALLOW_SUSPEND_RESUME) and its worker threads.
 * Stop it with guest_mhd_stop(), then free @p app.
 * GUEST_ERR_INVALID for a bad address, GUEST_ERR_NOMEM when no worker
 * thread starts, GUEST_ERR_CONFIG when it cannot bind.
 */
GUEST_API GUEST_NODISCARD guest_status guest_mhd_start(guest_mhd *app,
                                                       const char *bind_addr,
                                                       uint16_t port,
                                                       struct MHD_Daemon **out);

/**
 * Stops @p daemon (MHD_stop_daemon()) in either mode. In event mode it
 * first answers 503 to requests still waiting for a worker, waits for the
 * handlers running (each within the context's db_timeout_ms for its
 * statements) and refuses new requests meanwhile: libmicrohttpd aborts
 * the process when a daemon stops with a connection suspended, so do not
 * call MHD_stop_daemon() directly in event mode. The worker threads end in
 * guest_mhd_free(). @p app NULL: MHD_stop_daemon() alone; @p daemon NULL:
 * a no-op. Call from any thread but a worker's.
 */
GUEST_API void guest_mhd_stop(guest_mhd *app, struct MHD_Daemon *daemon);

/* For applications that start their own daemon: pass all four, each with
 * the guest_mhd as its closure (requests are answered 500 without
 * guest_mhd_connection), and MHD's own limits as you see fit:
 *   MHD_start_daemon(flags, port, NULL, NULL, guest_mhd_access, app,
 *       MHD_OPTION_NOTIFY_CONNECTION, guest_mhd_connection, app,
 *       MHD_OPTION_URI_LOG_CALLBACK, guest_mhd_uri_log, app,
 *       MHD_OPTION_NOTIFY_COMPLETED, guest_mhd_completed, app,
 *       MHD_OPTION_PER_IP_CONNECTION_LIMIT, 32u, ...);
 * Event mode (limits.workers set) runs only on a daemon with
 * MHD_ALLOW_SUSPEND_RESUME and without MHD_USE_THREAD_PER_CONNECTION;
 * on any other the handler runs inside guest_mhd_access. */

/** MHD_OPTION_NOTIFY_CONNECTION: owns the per-connection state, in which
 * each request lives, and watches the header timeout. */
GUEST_API void guest_mhd_connection(void *cls,
                                    struct MHD_Connection *connection,
                                    void **socket_context,
                                    enum MHD_ConnectionNotificationCode toe);

/** MHD_OPTION_URI_LOG_CALLBACK: keeps the raw request target. */
GUEST_API void *guest_mhd_uri_log(void *cls, const char *uri,
                                  struct MHD_Connection *connection);
/** The MHD_AccessHandlerCallback. Answers 400 (and the connection closes)
 * to ambiguous framing (two Content-Lengths or Hosts, Content-Length with
 * Transfer-Encoding), a header name that is not a token and an obsolete
 * folded header line, before any body byte is read; 413 to a declared
 * length over guest_config.max_body_size at once, and to a body whose
 * bytes pass it while they arrive (MHD queues no response then: the
 * adapter writes the 413 to the socket itself, or over TLS only closes the
 * connection), without reading the rest. */
GUEST_API enum MHD_Result
guest_mhd_access(void *cls, struct MHD_Connection *connection, const char *url,
                 const char *method, const char *version,
                 const char *upload_data, size_t *upload_data_size,
                 void **req_cls);
/** MHD_OPTION_NOTIFY_COMPLETED: clears the per-request state. */
GUEST_API void guest_mhd_completed(void *cls, struct MHD_Connection *connection,
                                   void **req_cls,
                                   enum MHD_RequestTerminationCode toe);

#ifdef __cplusplus
}
#endif
#endif

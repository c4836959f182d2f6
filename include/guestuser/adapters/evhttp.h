/* libguestuser adapter for libevent's evhttp (library guestuser::evhttp).
 * The event loop reads requests, looks their sessions up without waiting
 * (one pipelined connection) and writes responses: guards, views and
 * application handlers run on a pool of worker threads the adapter owns,
 * so a password hash or a database wait never stalls the loop. Guide:
 * docs/adapters.md, "Event-loop servers". */
#ifndef GUESTUSER_ADAPTERS_EVHTTP_H
#define GUESTUSER_ADAPTERS_EVHTTP_H

#include <event2/event.h>
#include <event2/http.h>

#include "../guestuser.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Binds a guest_ctx and a handler to evhttp. */
typedef struct guest_evhttp guest_evhttp;

/**
 * Creates an adapter that runs @p handler (with @p userdata) for every
 * request, on one of the adapter's worker threads (or first on the loop:
 * guest_evhttp_set_loop_handlers()). Each request's session is looked up
 * on the loop without blocking it, through a connection of the adapter's
 * own in libpq's pipeline mode (guest_resolver), so a returning visitor's
 * guard needs no statement on the worker. @p ctx is borrowed and must outlive
 * the adapter. Free with guest_evhttp_free(). GUEST_ERR_INVALID for a NULL
 * argument, GUEST_ERR_NOMEM.
 */
GUEST_API GUEST_NODISCARD guest_status
guest_evhttp_new(guest_ctx *ctx, guest_handler_fn handler, void *userdata,
                 guest_evhttp **out);
/** Stops what guest_evhttp_start() started (guest_evhttp_stop()), then
 * releases @p app; NULL is a no-op. With guest_evhttp_attach(), free the
 * application's evhttp first. */
GUEST_API void guest_evhttp_free(guest_evhttp *app);

/**
 * Limits against slow and greedy clients and the size of the worker pool;
 * see docs/deployment.md. Fill with guest_evhttp_limits_init(), change
 * fields, pass to guest_evhttp_set_limits(). An idle or trickling
 * connection costs the loop a few kilobytes and no thread.
 */
typedef struct guest_evhttp_limits {
    /** sizeof(guest_evhttp_limits) where the program was compiled, set by
     * guest_evhttp_limits_init() (fields a later 1.x adds take their defaults).
     */
    size_t size;
    /** Worker threads running handlers (32; 1..1024). A request that
     * waits for PostgreSQL or a password hash holds one for that long:
     * keep it above the logins you expect at once, or quick pages wait
     * behind them. */
    unsigned workers;
    /** Complete requests waiting for a free worker (1024; 1..1000000);
     * past it a request is answered 503 at once. */
    unsigned max_queued;
    /** Connections open at once, all clients together (10000;
     * 1..1000000); the process needs a file descriptor for each. */
    unsigned max_connections;
    /** Connections one client address may hold (32; 0: no limit). Behind a
     * reverse proxy every request comes from the proxy: set 0 there. */
    unsigned max_conns_per_ip;
    /** Seconds a client may take to send a whole request (headers and
     * body), counted from connecting or from the end of its previous
     * response (10; 0: no bound; at most 3600). A slower client is
     * disconnected, however steadily it trickles. */
    unsigned header_timeout_s;
    /** Seconds of silence after which a connection is closed (30;
     * 1..86400). */
    unsigned idle_timeout_s;
    /** Bytes of request line and headers a request may have (16384;
     * 1024..1048576); past it evhttp answers 400. */
    unsigned max_header_size;
} guest_evhttp_limits;

/** Fills @p limits with the defaults listed on each field, and its size. */
#define guest_evhttp_limits_init(limits)                                       \
    guest_evhttp_limits_init_size((limits), sizeof(guest_evhttp_limits))
/** guest_evhttp_limits_init() for a struct of @p size bytes. */
GUEST_API void guest_evhttp_limits_init_size(guest_evhttp_limits *limits,
                                             size_t size);

/** Sets the limits guest_evhttp_start() and guest_evhttp_attach() use;
 * call before them. GUEST_ERR_INVALID for a NULL argument, a value out of
 * range, or once started or attached. */
GUEST_API GUEST_NODISCARD guest_status
guest_evhttp_set_limits(guest_evhttp *app, const guest_evhttp_limits *limits);

/**
 * Starts a loop thread of the adapter's own serving @p bind_addr (IPv4 or
 * IPv6 literal; NULL: 127.0.0.1) and @p port (0: any free port), and the
 * worker threads. The port bound goes to @p *bound_port (may be NULL).
 * Stop with guest_evhttp_stop() or guest_evhttp_free(). Over plain HTTP
 * (behind a TLS proxy set guest_config.secure_proxy_header).
 * GUEST_ERR_INVALID for a NULL @p app, a bad address or a second start,
 * GUEST_ERR_NOMEM, GUEST_ERR_CONFIG when it cannot bind.
 */
GUEST_API GUEST_NODISCARD guest_status guest_evhttp_start(guest_evhttp *app,
                                                          const char *bind_addr,
                                                          uint16_t port,
                                                          uint16_t *bound_port);

/**
 * Stops the loop thread, then the workers: a handler already running
 * finishes (within the context's db_timeout_ms for its statements), a
 * request still waiting for a worker is dropped, and every connection
 * closes. Returns when all threads have ended. A no-op when not started.
 * Call from any thread but a worker or the loop.
 */
GUEST_API void guest_evhttp_stop(guest_evhttp *app);

/**
 * For an application that runs its own event_base: serves every request
 * of @p http (bound by the application, on @p base) with the adapter's
 * handler and limits, and starts the worker threads. Sets @p http's
 * generic callback, bufferevent callback, timeouts, size limits, allowed
 * methods and default content type (none); do not change them afterwards.
 * Every callback of the adapter runs on @p base's thread. Free @p http
 * (evhttp_free, from the loop's thread or once the loop has stopped)
 * before guest_evhttp_free(). GUEST_ERR_INVALID for a NULL argument or
 * when already started or attached, GUEST_ERR_NOMEM.
 */
GUEST_API GUEST_NODISCARD guest_status guest_evhttp_attach(
    guest_evhttp *app, struct event_base *base, struct evhttp *http);

/**
 * With @p on, each request's handler first runs on the loop's thread, once
 * the loop has resolved its session (guest_req_try_on_loop()): a page for
 * a returning visitor then costs no thread switch at all. Whatever would
 * block (creating a guest, the library's views, your own statements after
 * guest_req_defer()) is deferred to a worker, where the handler runs again
 * from the start. Off by default: turn it on only for a handler that
 * calls guest_req_defer() before its own blocking work. Call before
 * guest_evhttp_start() or guest_evhttp_attach(); GUEST_ERR_INVALID for a
 * NULL @p app or once started or attached.
 */
GUEST_API GUEST_NODISCARD guest_status
guest_evhttp_set_loop_handlers(guest_evhttp *app, bool on);

/** Connections closed so far because their client did not send a whole
 * request within header_timeout_s. Thread-safe. */
GUEST_API unsigned long guest_evhttp_timed_out(const guest_evhttp *app);

/** Connections refused so far at accept time by max_connections or
 * max_conns_per_ip. Thread-safe. */
GUEST_API unsigned long guest_evhttp_refused(const guest_evhttp *app);

#ifdef __cplusplus
}
#endif
#endif

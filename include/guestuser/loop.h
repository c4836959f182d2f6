/* libguestuser: requests on an event loop's thread. The session lookup of
 * each request goes out on one non-blocking connection in libpq's
 * pipeline mode and its answer resumes the request; a handler runs on the
 * loop when it needs nothing that blocks, and defers to a thread where it
 * may block when it does. Guide: docs/adapters.md, "Event-loop servers". */
#ifndef GUESTUSER_LOOP_H
#define GUESTUSER_LOOP_H

#include "http.h"

#ifdef __cplusplus
extern "C" {
#endif

/** guest_resolver_watch(): wait until the socket is readable. */
#define GUEST_IO_READ 1u
/** guest_resolver_watch(): wait until the socket is writable. */
#define GUEST_IO_WRITE 2u
/** guest_resolver_watch(): the socket is a new one since the last call,
 * even if its number is the same: drop the old watch, add one afresh. */
#define GUEST_IO_NEW 4u

/**
 * Session lookups of one event loop, sent on a connection of its own
 * without waiting for each answer. Every function must be called on the
 * loop's thread. The connection is opened without blocking, on first use
 * and again after it broke (with a growing pause); until it is open,
 * guest_req_resolve() leaves the lookup to the guard, which makes it the
 * usual, blocking way.
 */
typedef struct guest_resolver guest_resolver;

/** Called on the loop's thread when guest_req_resolve()'s lookup of
 * @p req has an outcome; @p arg as given there. */
typedef void (*guest_resolved_fn)(guest_req *req, void *arg);

/**
 * Creates a resolver for @p ctx (borrowed, must outlive it); it connects on
 * first use. Free with guest_resolver_free(). GUEST_ERR_INVALID for a NULL
 * argument, GUEST_ERR_NOMEM.
 */
GUEST_API GUEST_NODISCARD guest_status guest_resolver_new(guest_ctx *ctx,
                                                          guest_resolver **out);

/** Closes the connection; every lookup still waiting is handed back first
 * (its guest_resolved_fn runs, the request unresolved). NULL is a no-op. */
GUEST_API void guest_resolver_free(guest_resolver *r);

/**
 * What the loop must watch after any call into @p r: returns the socket
 * (-1: none now), with GUEST_IO_READ and/or GUEST_IO_WRITE (and
 * GUEST_IO_NEW) in @p *events and the milliseconds after which
 * guest_resolver_io() must be called even if the socket stays quiet in @p
 * *timeout_ms (-1: no such time). The socket can change between calls: watch
 * the new one.
 */
GUEST_API int guest_resolver_watch(guest_resolver *r, unsigned *events,
                                   int *timeout_ms);

/** Call when the socket is ready or the timeout has passed: connects,
 * sends, reads answers and runs their guest_resolved_fn. */
GUEST_API void guest_resolver_io(guest_resolver *r);

/**
 * Lets the guards park requests given to guest_req_resolve() on @p r
 * (off by default, since 1.1): GUEST_ALLOW then makes a new guest by
 * sending its statement through @p r instead of deferring the request to
 * a worker, and guest_req_try_on_loop() returns false with
 * guest_req_parked() true. The request's guest_resolved_fn runs once more
 * when the answer arrives, even if guest_req_resolve() returned false;
 * call guest_req_try_on_loop() again from there. Only when no
 * on_guest_created hook is set and the name generator is one of the
 * library's; otherwise the request is deferred as before. Turn it on only
 * in an adapter that handles guest_req_parked(). NULL is a no-op.
 */
GUEST_API void guest_resolver_allow_parking(guest_resolver *r, bool allow);

/**
 * Starts resolving @p req's session cookie on @p r. True when the lookup
 * went out: @p done runs later, from guest_resolver_io() or
 * guest_resolver_free(), and until then @p req must stay alive and
 * untouched. False when there is nothing to wait for: the user is known
 * already (no cookie, a bad one, a session-cache hit) or the resolver cannot
 * take the lookup now (the guard will make it, blocking); @p done is not
 * called. Either way the guards then use what was found. A lookup that
 * timed out (db_timeout_ms) makes the guards answer 503, as a blocking one
 * would.
 */
GUEST_API bool guest_req_resolve(guest_req *req, guest_resolver *r,
                                 guest_resolved_fn done, void *arg);

/**
 * Runs @p handler on the loop's thread. True when it answered there. False
 * when the session is not known yet (guest_req_resolve() could not look it
 * up; the handler is not run) or when the handler (or a guard or view
 * inside it) called guest_req_defer(): the
 * adapter must then run the same handler with the same @p req on a thread
 * that may block, as it runs every handler that was never tried on the
 * loop, and only then send the response. Also false when a guard parked
 * the request (guest_req_parked()): then wait for its guest_resolved_fn.
 */
GUEST_API bool guest_req_try_on_loop(guest_req *req, guest_handler_fn handler,
                                     void *userdata);

/**
 * For a handler that guest_req_try_on_loop() may run: true when @p req is
 * on the loop's thread and has just been deferred; return at once without
 * answering, and the handler runs again from the start on a thread where
 * it may block. False otherwise: go on, blocking is allowed here. The
 * library's guards and views call it themselves before anything that
 * blocks (creating a guest, a lookup the resolver could not make, password
 * hashing, statements); call it before your own blocking work.
 */
GUEST_API bool guest_req_defer(guest_req *req);

/** True when @p req is on the loop's thread and deferred or parked (a
 * handler's code after the guards can tell it must return without
 * answering). */
GUEST_API bool guest_req_deferred(const guest_req *req);

/**
 * True while a statement of @p req is in flight on its resolver (see
 * guest_resolver_allow_parking()): guest_req_try_on_loop() returned false
 * without answering, and the request must neither be answered, freed nor
 * given to a worker until its guest_resolved_fn runs; then try it on the
 * loop again. guest_req_deferred() is true for it too, so a handler's
 * code after the guards returns at once. Since 1.1.
 */
GUEST_API bool guest_req_parked(const guest_req *req);

#ifdef __cplusplus
}
#endif
#endif

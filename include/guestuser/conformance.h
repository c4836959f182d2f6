/* libguestuser: the conformance kit's route table. An adapter author mounts
 * it in a test server built on their adapter, then runs the
 * `guestuser-conformance --url URL` program against that server. Linked
 * from its own library, guestuser::conformance (pkg-config
 * guestuser-conformance). Guide: docs/adapters.md, "Testing your adapter
 * with guestuser-conformance". */
#ifndef GUESTUSER_CONFORMANCE_H
#define GUESTUSER_CONFORMANCE_H

#include "guestuser.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The max_body_size guest_conformance_config() sets and the checks
 * expect, bytes. */
#define GUEST_CONFORMANCE_MAX_BODY 4096

/** The version of the checks this table answers; the program refuses a
 * server reporting another. */
#define GUEST_CONFORMANCE_KIT_VERSION 2

/** The PBKDF2 iterations of POST /conformance/hash: the library's default
 * password_iterations, so one request costs what a failed login does. */
#define GUEST_CONFORMANCE_HASH_ITERATIONS 1500000u

/**
 * Sets every field of @p cfg the checks depend on: each field back to its
 * guest_config_init() default, except the database settings (db_conninfo,
 * db_schema, db_pool_size, db_timeout_ms), the log callback and the
 * password hashing load (hash_concurrency, hash_wait_ms), which are kept;
 * then max_body_size = GUEST_CONFORMANCE_MAX_BODY and a cheap
 * password_iterations (1000, for the test conversion). Call it after
 * filling your database settings, right before guest_ctx_new(). Never use
 * this configuration for a real site. NULL is a no-op. Thread-safe.
 */
GUEST_API void guest_conformance_config(guest_config *cfg);

/**
 * The conformance route table ({NULL}-terminated, static storage), for
 * guest_routes_dispatch() or to copy into a larger table. It serves, at
 * the root of the server: /conformance (what the checks read first),
 * /conformance/stats, the three guard pages (/allow_guest_user/,
 * /guest_user_required/, /regular_user_required/), /whoami, /cookies/,
 * /csrf/, /echo, /no-content, /framing, /many-headers, /healthz (one
 * round trip to the database), /conformance/hash (one password hash of
 * GUEST_CONFORMANCE_HASH_ITERATIONS on the handler's thread, for the
 * responsiveness check) and the library's
 * views at their default URLs (/convert/, /convert/success/,
 * /accounts/login/, /accounts/logout/). Thread-safe.
 */
GUEST_API const guest_route *guest_conformance_routes(void);

/**
 * A guest_handler_fn dispatching on guest_conformance_routes(); userdata is
 * not used. Hand it to your adapter (guest_X_new(ctx,
 * guest_conformance_handler, NULL, ...)) with a context made from
 * guest_conformance_config(). Thread-safe.
 */
GUEST_API void guest_conformance_handler(guest_req *req, void *userdata);

#ifdef __cplusplus
}
#endif
#endif

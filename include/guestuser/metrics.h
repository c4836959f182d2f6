/* libguestuser: the context's counters, as numbers or as the Prometheus
 * text exposition format. Guide: docs/operations.md. */
#ifndef GUESTUSER_METRICS_H
#define GUESTUSER_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Buckets of each histogram, the last one +Inf. Their upper bounds, in
 * seconds: 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, +Inf. */
#define GUEST_METRICS_BUCKETS 9

/** A histogram of waits, read at one moment. */
typedef struct guest_histogram {
    /** Cumulative, like Prometheus: buckets[i] counts the waits no longer
     * than bound i; buckets[GUEST_METRICS_BUCKETS - 1] equals count. */
    uint64_t buckets[GUEST_METRICS_BUCKETS];
    /** Waits observed. */
    uint64_t count;
    /** Their total, in microseconds. */
    uint64_t sum_us;
} guest_histogram;

/** The counters of one context since guest_ctx_new(); every counter only
 * grows. docs/operations.md says what each one counts. */
typedef struct guest_metrics {
    uint64_t guests_created;
    /** Visitors left anonymous because their User-Agent is in
     * blocked_user_agents. */
    uint64_t crawlers_blocked;
    /** Requests whose session cookie named a live session. */
    uint64_t sessions_resolved;
    /** Of those, the ones answered without the database. */
    uint64_t session_cache_hits;
    uint64_t conversions;
    uint64_t logins_ok;
    /** Wrong username or password. */
    uint64_t logins_failed;
    /** Refused by login_rate_limit before the password was checked. */
    uint64_t logins_limited;
    uint64_t logouts;
    /** Every refusal by a rate limit: guest creation, login, conversion. */
    uint64_t rate_limited;
    /** Guests deleted by guest_delete_expired() (not in dry runs). */
    uint64_t cleanup_deleted;
    /** Statements and transactions that ended in GUEST_ERR_DB or
     * GUEST_ERR_DB_UNAVAILABLE. */
    uint64_t db_errors;
    /** Waiting for a free connection of the pool. */
    guest_histogram pool_wait;
    /** Waiting for a password-hashing slot (hash_concurrency). */
    guest_histogram hash_wait;
    /** Gauges: db_pool_size, and how many of its connections are open and
     * how many are lent out right now. */
    unsigned pool_size;
    unsigned pool_open;
    unsigned pool_busy;
    /** Gauge: threads waiting for a connection right now. */
    unsigned pool_waiting;
    /** Unix time of the last guest_delete_expired() that finished without
     * an error (dry runs excluded), 0 before the first. */
    int64_t cleanup_last_success;
    /** Mails this process's senders delivered (guest_mail_send_due). */
    uint64_t mail_sent;
    /** Mails this process's senders gave up on: refused for good or out of
     * mail_max_attempts (a retry still to come is not counted). */
    uint64_t mail_failed;
    /** Gauge: mails pending in the outbox (not delivered, not failed), as
     * this process's last send pass found them; 0 before the first. */
    int64_t mail_queued;
    /** Notifications the session cache heard from the database (each
     * drops sessions, a user's sessions or everything; see
     * docs/scaling.md), from any process or by hand. */
    uint64_t session_cache_invalidations;
    /** Gauge: 1 while the session cache's LISTEN connection is up and the
     * cache answers; 0 while it is down (every lookup asks the database)
     * or session_cache_ttl is off. */
    unsigned session_cache_listening;
} guest_metrics;

/**
 * Fills @p out with the counters of @p ctx. Each value is read atomically,
 * but not all of them at one instant: one request may show in one counter
 * and not yet in another. Does nothing when either argument is NULL.
 * Thread-safe; takes no lock but the pool's, briefly, for the gauges.
 */
#define guest_metrics_get(ctx, out)                                            \
    guest_metrics_get_size((ctx), (out), sizeof(guest_metrics))
/** guest_metrics_get() into @p out of @p out_size bytes (the program's
 * sizeof: counters a later 1.x library added are left out). */
GUEST_API void guest_metrics_get_size(guest_ctx *ctx, guest_metrics *out,
                                      size_t out_size);

/**
 * The counters of @p ctx as Prometheus text exposition format 0.0.4 (serve
 * it as "text/plain; version=0.0.4"): each family a # HELP and a # TYPE
 * line, then its samples, names starting with "guestuser_". On GUEST_OK,
 * @p *text is a NUL-terminated string of @p *len bytes (@p len may be
 * NULL), allocated with malloc: the caller frees it with free(). On error
 * @p *text is NULL. Returns GUEST_ERR_INVALID for NULL @p ctx or @p text,
 * GUEST_ERR_NOMEM when out of memory (@p err, may be NULL, says so).
 * Thread-safe.
 */
GUEST_API GUEST_NODISCARD guest_status guest_metrics_text(guest_ctx *ctx,
                                                          char **text,
                                                          size_t *len,
                                                          guest_error *err);

#ifdef __cplusplus
}
#endif
#endif

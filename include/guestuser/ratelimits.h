/* libguestuser: the abuse limits' counters, for an operator who needs to
 * see who is being limited and to lift a lock-out (the `guestuser
 * rate-limits` commands). Guide: docs/security.md. */
#ifndef GUESTUSER_RATELIMITS_H
#define GUESTUSER_RATELIMITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

#ifdef __cplusplus
extern "C" {
#endif

/** One counter as guest_rate_limits_list() reports it. */
typedef struct guest_rate_limit_info {
    /** "guest" (guests made), "login" (failed logins), "login_user" (failed
     * logins for one username), "convert" (failed conversions). Borrowed:
     * valid only during the callback, like @p client. */
    const char *kind;
    /** Whose: an IPv4 address, an IPv6 prefix ("2001:db8:1:2::/64",
     * ".../56", ".../48") or "unknown". */
    const char *client;
    /** The sliding-window estimate now: events in the last window. */
    double count;
    unsigned window_s;
    /** When the row stops counting anything (cleanup then deletes it),
     * Unix seconds. */
    int64_t stale_at;
} guest_rate_limit_info;

/** Receives one counter; return true for the next, false to stop. */
typedef bool (*guest_rate_limit_list_fn)(const guest_rate_limit_info *info,
                                         void *userdata);

/**
 * Calls @p fn for each counter that still counts something, highest count
 * first, at most @p limit of them (0: all). GUEST_ERR_INVALID for NULL
 * @p ctx or @p fn; database statuses with @p err (may be NULL) filled.
 * Thread-safe.
 */
GUEST_API GUEST_NODISCARD guest_status guest_rate_limits_list(
    guest_ctx *ctx, size_t limit, guest_rate_limit_list_fn fn, void *userdata,
    guest_error *err);

/**
 * Lifts the limits of @p who at once, on every node: an IP address (its
 * counters, and for IPv6 those of its /64, /56 and /48), a client key as
 * listed ("2001:db8:1::/48", "unknown"), or else a username (its
 * per-username failed-login counters from every address). *deleted (may be
 * NULL) gets the number of counters removed; 0 is not an error.
 * GUEST_ERR_INVALID for NULL or empty arguments; database statuses.
 * Thread-safe.
 */
GUEST_API GUEST_NODISCARD guest_status guest_rate_limits_reset(
    guest_ctx *ctx, const char *who, uint64_t *deleted, guest_error *err);

#ifdef __cplusplus
}
#endif
#endif

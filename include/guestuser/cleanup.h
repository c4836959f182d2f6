/* libguestuser: deleting expired guests, and the counts an admin screen or
 * the `guestuser` tool shows. Guide: docs/cleanup.md. */
#ifndef GUESTUSER_CLEANUP_H
#define GUESTUSER_CLEANUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Default guest_cleanup_options.batch_size. */
#define GUEST_CLEANUP_BATCH_DEFAULT 1000u
/** Largest accepted guest_cleanup_options.batch_size. */
#define GUEST_CLEANUP_BATCH_MAX 100000u
/** Latest accepted guest_cleanup_options.cutoff: 9999-12-31T23:59:59Z. */
#define GUEST_CLEANUP_CUTOFF_MAX INT64_C(253402300799)

/**
 * What guest_delete_expired() did, or with dry_run would do. Filled as far
 * as the call got, also when it fails or is stopped.
 */
typedef struct guest_cleanup_result {
    /** Expired guests deleted (dry run: that would be deleted). */
    uint64_t users_deleted;
    /** Expired session rows deleted (dry run: that would be), not counting
     * the sessions that went with the deleted guests. */
    uint64_t sessions_deleted;
    /** Transactions that deleted at least one row (dry run: 0). */
    uint64_t batches;
    /** Guests created before this Unix time (seconds, rounded down) are
     * expired: the explicit cutoff, or the database's now() - max_age. */
    int64_t cutoff;
    /** Rows of the abuse limits' rate_windows table deleted (dry run: that
     * would be) because their window has passed: they no longer count
     * anything. */
    uint64_t rate_windows_deleted;
} guest_cleanup_result;

/**
 * Called by guest_delete_expired() after every batch that deleted rows,
 * between transactions, with the totals so far (borrowed for the call).
 * Return true to go on, false to stop: the call then returns
 * GUEST_ERR_CANCELLED with what was done. Runs on the calling thread.
 */
typedef bool (*guest_cleanup_progress_fn)(const guest_cleanup_result *so_far,
                                          void *userdata);

/** How guest_delete_expired() runs. Fill with guest_cleanup_options_init(),
 * then override fields. */
typedef struct guest_cleanup_options {
    /** sizeof(guest_cleanup_options) where the program was compiled, set
     * by guest_cleanup_options_init() (fields a 1.x library added later
     * take their defaults). */
    size_t size;
    /** Guests older than this many seconds are expired; 0: the context's
     * max_age. Ignored when cutoff is set. */
    int64_t max_age;
    /** Unix time in seconds: when nonzero, guests created strictly before
     * it are expired, whatever max_age says. 1..GUEST_CLEANUP_CUTOFF_MAX. */
    int64_t cutoff;
    /** Users (and, separately, sessions) deleted per transaction, 1..
     * GUEST_CLEANUP_BATCH_MAX (GUEST_CLEANUP_BATCH_DEFAULT). Each batch must
     * finish within the context's db_timeout_ms. */
    unsigned batch_size;
    /** Count what would be deleted, delete nothing (false). */
    bool dry_run;
    /** Called between batches; NULL: none. */
    guest_cleanup_progress_fn progress;
    void *progress_userdata;
} guest_cleanup_options;

/** Fills @p opts with the defaults listed on each field, and its size.
 * NULL is a no-op. */
#define guest_cleanup_options_init(opts)                                       \
    guest_cleanup_options_init_size((opts), sizeof(guest_cleanup_options))
/** guest_cleanup_options_init() for a struct of @p size bytes. */
GUEST_API void guest_cleanup_options_init_size(guest_cleanup_options *opts,
                                               size_t size);

/**
 * Deletes every expired guest by deleting its users row, so that whatever
 * references the user goes too: its sessions, and application rows whose
 * foreign key to users says ON DELETE CASCADE (or is set to NULL with ON
 * DELETE SET NULL). Then deletes expired session rows of the users that
 * remain, and the abuse limits' window rows whose window has passed. Registered
 * users, converted guests (they have no guests row) and guests that have not
 * expired are never touched.
 *
 * Works in batches of @p opts->batch_size, one short transaction each, oldest
 * guests first. Rows another transaction holds locked are skipped rather than
 * waited for, so several processes (one per node) may run this at the same
 * time: each expired guest is deleted and counted by exactly one of them.
 * A guest skipped that way is left for the next run.
 *
 * @p opts NULL means the defaults. @p result (may be NULL) is filled as far
 * as the call got. Returns GUEST_OK when nothing expired remains that this
 * call could delete; GUEST_ERR_INVALID for a NULL @p ctx or an option out of
 * range; GUEST_ERR_CANCELLED when the progress callback asked to stop;
 * GUEST_ERR_DB when a statement failed (a foreign key to users without
 * ON DELETE CASCADE / SET NULL, say: that batch is rolled back whole);
 * GUEST_ERR_DB_UNAVAILABLE when the database cannot be reached or a batch
 * outlived db_timeout_ms. @p err (may be NULL) then says what happened.
 * Thread-safe: uses the context's connection pool.
 *
 * A macro: the program's sizeof(guest_cleanup_result) goes with the call,
 * so a larger result of a later 1.x library is never written past it.
 */
#define guest_delete_expired(ctx, opts, result, err)                           \
    guest_delete_expired_size((ctx), (opts), (result),                         \
                              sizeof(guest_cleanup_result), (err))
/** guest_delete_expired() with @p result of @p result_size bytes. */
GUEST_API GUEST_NODISCARD guest_status guest_delete_expired_size(
    guest_ctx *ctx, const guest_cleanup_options *opts,
    guest_cleanup_result *result, size_t result_size, guest_error *err);

/** Counts for an admin screen, from one consistent snapshot. */
typedef struct guest_stats {
    /** Every users row, registered or guest. */
    uint64_t users;
    /** Users that are guests (have a guests row). */
    uint64_t guests;
    /** Guests older than the max_age given to guest_stats_get(). */
    uint64_t expired_guests;
    /** Session rows that have not expired. */
    uint64_t live_sessions;
} guest_stats;

/**
 * Fills @p out with the current counts; guests older than @p max_age
 * seconds (0: the context's max_age) count as expired. Returns
 * GUEST_ERR_INVALID for NULL arguments or a negative @p max_age, or a
 * database status with @p err (may be NULL) filled. Thread-safe.
 */
#define guest_stats_get(ctx, max_age, out, err)                                \
    guest_stats_get_size((ctx), (max_age), (out), sizeof(guest_stats), (err))
/** guest_stats_get() with @p out of @p out_size bytes (the program's
 * sizeof: a later 1.x library never writes past it). */
GUEST_API GUEST_NODISCARD guest_status guest_stats_get_size(guest_ctx *ctx,
                                                            int64_t max_age,
                                                            guest_stats *out,
                                                            size_t out_size,
                                                            guest_error *err);

/** One guest as guest_guests_list() reports it. */
typedef struct guest_info {
    int64_t id;
    /** Borrowed: valid only during the callback. */
    const char *username;
    /** When the guest was created, Unix time in seconds (rounded down). */
    int64_t created_at;
    /** True when older than the max_age given to guest_guests_list(). */
    bool expired;
} guest_info;

/** Receives one guest; return true for the next, false to stop early. */
typedef bool (*guest_list_fn)(const guest_info *guest, void *userdata);

/**
 * Calls @p fn for each guest, newest first, at most @p limit of them (0: no
 * limit); with @p expired_only, only guests older than @p max_age seconds
 * (0: the context's max_age). The rows are read in one statement before the
 * first call, so @p fn may take its time. Returns GUEST_ERR_INVALID for
 * NULL @p ctx or @p fn or a negative @p max_age, or a database status with
 * @p err (may be NULL) filled; GUEST_OK also when @p fn stopped early.
 * Thread-safe.
 */
GUEST_API GUEST_NODISCARD guest_status guest_guests_list(
    guest_ctx *ctx, bool expired_only, int64_t max_age, size_t limit,
    guest_list_fn fn, void *userdata, guest_error *err);

#ifdef __cplusplus
}
#endif
#endif

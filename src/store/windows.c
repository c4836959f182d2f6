/* The rate_windows table's sliding-window counters: the SQL that moves a
 * window and counts one more, and the wait until a full one admits the
 * next. Used by guest creation (guests.c) and the login and conversion
 * limits (core/limits.c). */
#include "store/store.h"

/* Why a sliding-window counter (one row per limit and client holding the
 * current and the previous fixed window's counts) and not a log of events:
 * the row count per client is bounded (one per limit, however hard the
 * client pushes), the check and the update are one upsert on the primary
 * key that locks only that client's row, and the estimate
 * prev * (1 - elapsed fraction) + curr never lets a burst at a window edge
 * double the budget, as plain fixed windows do. It is an approximation
 * (it assumes the previous window's events were spread evenly), which is
 * what Cloudflare and others accept for the same reason; an event log is
 * exact but grows with the limit and needs a count per request.
 *
 * The SQL below uses r for the stored row and EXCLUDED for the one being
 * inserted (bucket = floor(epoch / window) of the database's now(), so all
 * nodes agree on the clock). A row written with another window length
 * (the setting changed) counts as empty. */
#define PREV_EFF                                                               \
    "CASE WHEN r.window_secs <> EXCLUDED.window_secs THEN 0"                   \
    " WHEN r.bucket = EXCLUDED.bucket THEN r.prev_count"                       \
    " WHEN r.bucket = EXCLUDED.bucket - 1 THEN r.curr_count ELSE 0 END"
#define CURR_EFF                                                               \
    "CASE WHEN r.window_secs = EXCLUDED.window_secs"                           \
    " AND r.bucket = EXCLUDED.bucket THEN r.curr_count ELSE 0 END"

char *guest__window_upsert(const char *limit_param)
{
    const char *tail =
        "ON CONFLICT (kind, client, subject) DO UPDATE SET"
        " prev_count = " PREV_EFF ", curr_count = " CURR_EFF " + 1,"
        " bucket = EXCLUDED.bucket, window_secs = EXCLUDED.window_secs,"
        " stale_at = EXCLUDED.stale_at";
    if (!limit_param)
        return guest__strdup(tail);
    /* The WHERE is evaluated on the latest row version under its lock, so
     * concurrent requests of one client cannot both take the last unit. */
    return guest__asprintf(
        "%s WHERE (" PREV_EFF ") * (1 - (extract(epoch FROM now())"
        " - EXCLUDED.bucket * EXCLUDED.window_secs)"
        " / EXCLUDED.window_secs) + (" CURR_EFF ") + 1 <= %s",
        tail, limit_param);
}

char *guest__window_values(const char *kind, const char *client,
                           const char *subject, const char *window)
{
    return guest__asprintf(
        "SELECT %1$s, %2$s, %3$s, b, %4$s, 0, 1,"
        " to_timestamp((b + 2) * %4$s) FROM (SELECT"
        " floor(extract(epoch FROM now()) / %4$s)::bigint AS b) t",
        kind, client, subject, window);
}

int64_t guest__window_wait(double now, int64_t window, int64_t bucket,
                           int64_t prev, int64_t curr, int64_t limit)
{
    /* Epoch times are positive: truncation is floor, and no libm. */
    int64_t b = (int64_t)(now / (double)window);
    if (bucket == b - 1) {
        prev = curr;
        curr = 0;
    } else if (bucket != b) {
        prev = curr = 0;
    }
    double w = (double)window;
    double f = (now - (double)b * w) / w;
    double room = (double)limit - 1 - (double)curr;
    if ((double)prev * (1 - f) <= room)
        return 0;
    /* Seconds after the start of bucket b at which the estimate leaves
     * room for one more: later in this bucket while the current count
     * alone fits, else in the next one, once the weight of this bucket's
     * count (then the previous one) has fallen far enough. */
    double at;
    if (room >= 0 && prev > 0) {
        at = w * (1 - room / (double)prev);
    } else {
        double g = curr > 0 ? 1 - (double)(limit - 1) / (double)curr : 0;
        at = w + w * (g > 0 ? g : 0);
    }
    double wait = (double)b * w + at - now;
    if (wait < 1)
        return 1;
    int64_t secs = (int64_t)wait;
    return (double)secs < wait ? secs + 1 : secs;
}

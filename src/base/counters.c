/* The context's counters and histograms: relaxed atomic adds on the request
 * path, read one by one by guest_metrics_get(). */
#include <stdatomic.h>
#include <time.h>

#include "base/base.h"

/* The bucket bounds of docs/operations.md, in microseconds. */
static const int64_t bounds_us[GUEST_METRICS_BUCKETS - 1] = {
    1000, 5000, 10000, 50000, 100000, 500000, 1000000, 5000000};

/* Counting never changes what the context means; the store layer holds it
 * const, so the atomics are reached through a cast, like db.c's log time. */
static guest__metrics *metrics_of(const guest_ctx *ctx)
{
    return &((guest_ctx *)ctx)->metrics;
}

void guest__count_n(const guest_ctx *ctx, guest__counter c, uint64_t n)
{
    atomic_fetch_add_explicit(&metrics_of(ctx)->counters[c], n,
                              memory_order_relaxed);
}

void guest__count(const guest_ctx *ctx, guest__counter c)
{
    guest__count_n(ctx, c, 1);
}

void guest__metric_cache_hit(const guest_ctx *ctx)
{
    guest__count(ctx, GUEST__C_SESSION_CACHE_HITS);
}

void guest__metric_login(const guest_ctx *ctx, guest_status st)
{
    if (!ctx)
        return;
    if (st == GUEST_OK)
        guest__count(ctx, GUEST__C_LOGINS_OK);
    else if (st == GUEST_ERR_AUTH)
        guest__count(ctx, GUEST__C_LOGINS_FAILED);
    else if (st == GUEST_ERR_RATE_LIMITED)
        guest__count(ctx, GUEST__C_LOGINS_LIMITED);
}

guest_status guest__metric_db(const guest_ctx *ctx, guest_status st)
{
    if (st == GUEST_ERR_DB || st == GUEST_ERR_DB_UNAVAILABLE)
        guest__count(ctx, GUEST__C_DB_ERRORS);
    return st;
}

int64_t guest__bucket_bound_us(unsigned i)
{
    return i < GUEST_METRICS_BUCKETS - 1 ? bounds_us[i] : INT64_MAX;
}

void guest__observe_us(const guest_ctx *ctx, guest__hist h, int64_t us)
{
    if (us < 0)
        us = 0;
    unsigned i = 0;
    while (i < GUEST_METRICS_BUCKETS - 1 && us > bounds_us[i])
        i++;
    guest__histogram *hist = &metrics_of(ctx)->hists[h];
    atomic_fetch_add_explicit(&hist->buckets[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&hist->sum_us, (uint64_t)us,
                              memory_order_relaxed);
}

void guest__observe_since(const guest_ctx *ctx, guest__hist h, int64_t start_us)
{
    guest__observe_us(ctx, h, guest__now_us() - start_us);
}

void guest__metric_cleanup_done(const guest_ctx *ctx)
{
    atomic_store_explicit(&metrics_of(ctx)->cleanup_last_success,
                          (int64_t)time(NULL), memory_order_relaxed);
}

void guest__metric_mail_queued(const guest_ctx *ctx, int64_t n)
{
    atomic_store_explicit(&metrics_of(ctx)->mail_queued, n,
                          memory_order_relaxed);
}

static uint64_t load(const _Atomic uint64_t *v)
{
    return atomic_load_explicit(v, memory_order_relaxed);
}

static void read_hist(const guest__histogram *h, guest_histogram *out)
{
    uint64_t total = 0;
    for (unsigned i = 0; i < GUEST_METRICS_BUCKETS; i++) {
        total += load(&h->buckets[i]);
        out->buckets[i] = total;
    }
    /* The count is the buckets' own total, so +Inf always equals it; the
     * sum may run a wait ahead or behind. */
    out->count = total;
    out->sum_us = load(&h->sum_us);
}

void guest__metrics_read(const guest_ctx *ctx, guest_metrics *out)
{
    const guest__metrics *m = &ctx->metrics;
    const _Atomic uint64_t *c = m->counters;
    out->guests_created = load(&c[GUEST__C_GUESTS_CREATED]);
    out->crawlers_blocked = load(&c[GUEST__C_CRAWLERS_BLOCKED]);
    out->sessions_resolved = load(&c[GUEST__C_SESSIONS_RESOLVED]);
    out->session_cache_hits = load(&c[GUEST__C_SESSION_CACHE_HITS]);
    out->session_cache_invalidations =
        load(&c[GUEST__C_SESSION_CACHE_INVALIDATIONS]);
    out->conversions = load(&c[GUEST__C_CONVERSIONS]);
    out->logins_ok = load(&c[GUEST__C_LOGINS_OK]);
    out->logins_failed = load(&c[GUEST__C_LOGINS_FAILED]);
    out->logins_limited = load(&c[GUEST__C_LOGINS_LIMITED]);
    out->logouts = load(&c[GUEST__C_LOGOUTS]);
    out->rate_limited = load(&c[GUEST__C_RATE_LIMITED]);
    out->cleanup_deleted = load(&c[GUEST__C_CLEANUP_DELETED]);
    out->db_errors = load(&c[GUEST__C_DB_ERRORS]);
    read_hist(&m->hists[GUEST__H_POOL_WAIT], &out->pool_wait);
    read_hist(&m->hists[GUEST__H_HASH_WAIT], &out->hash_wait);
    out->cleanup_last_success =
        atomic_load_explicit(&m->cleanup_last_success, memory_order_relaxed);
    out->mail_sent = load(&c[GUEST__C_MAILS_SENT]);
    out->mail_failed = load(&c[GUEST__C_MAILS_FAILED]);
    out->mail_queued =
        atomic_load_explicit(&m->mail_queued, memory_order_relaxed);
}

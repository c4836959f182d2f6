/* guest_metrics_get and the Prometheus text of guest_metrics_text: the
 * counters of base/counters.c and the pool's gauges. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

/* The whole struct of this library's size. */
static void metrics_read(guest_ctx *ctx, guest_metrics *out)
{
    memset(out, 0, sizeof *out);
    guest__metrics_read(ctx, out);
    guest__pool_gauges(ctx->pool, &out->pool_size, &out->pool_open,
                       &out->pool_busy, &out->pool_waiting);
    out->session_cache_listening = guest__session_cache_listening(ctx);
}

#undef guest_metrics_get
void guest_metrics_get_size(guest_ctx *ctx, guest_metrics *out, size_t out_size)
{
    if (!ctx || !out || !out_size)
        return;
    guest_metrics all;
    metrics_read(ctx, &all);
    /* A program built against a later library (a larger struct) gets the
     * counters this one has and zeros for the rest. */
    memset(out, 0, out_size);
    memcpy(out, &all, out_size < sizeof all ? out_size : sizeof all);
}

/* The text under construction; a failed append sticks. */
typedef struct text {
    guest_buf buf;
    bool failed;
} text;

static void put(text *t, const char *fmt, ...) GUEST_PRINTF(2, 3);
static void put(text *t, const char *fmt, ...)
{
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    int n = t->failed ? -1 : vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (t->failed)
        return;
    /* Every line is library text of known shape; longer would be a bug. */
    if (n < 0 || (size_t)n >= sizeof line ||
        guest_buf_append(&t->buf, line, (size_t)n) != 0)
        t->failed = true;
}

static void family(text *t, const char *name, const char *type,
                   const char *help)
{
    put(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void counter(text *t, const char *name, const char *help, uint64_t v)
{
    family(t, name, "counter", help);
    put(t, "%s %" PRIu64 "\n", name, v);
}

static void gauge(text *t, const char *name, const char *help, int64_t v)
{
    family(t, name, "gauge", help);
    put(t, "%s %" PRId64 "\n", name, v);
}

/* Microseconds as seconds, exactly: "0.000250", "12.500000". */
static void put_seconds(text *t, const char *prefix, uint64_t us,
                        const char *suffix)
{
    put(t, "%s%" PRIu64 ".%06" PRIu64 "%s", prefix, us / 1000000, us % 1000000,
        suffix);
}

static void histogram(text *t, const char *name, const char *help,
                      const guest_histogram *h)
{
    family(t, name, "histogram", help);
    for (unsigned i = 0; i < GUEST_METRICS_BUCKETS; i++) {
        int64_t b = guest__bucket_bound_us(i);
        if (b == INT64_MAX) {
            put(t, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", name, h->buckets[i]);
            continue;
        }
        /* "0.001", "0.5", "5": no trailing zeros, and no printf of a
         * double, whose decimal point follows the application's locale. */
        char le[32];
        int n = snprintf(le, sizeof le, "%" PRId64 ".%06" PRId64, b / 1000000,
                         b % 1000000);
        while (n > 0 && le[n - 1] == '0')
            le[--n] = '\0';
        if (n > 0 && le[n - 1] == '.')
            le[--n] = '\0';
        put(t, "%s_bucket{le=\"%s\"} %" PRIu64 "\n", name, le, h->buckets[i]);
    }
    put(t, "%s_sum ", name);
    put_seconds(t, "", h->sum_us, "\n");
    put(t, "%s_count %" PRIu64 "\n", name, h->count);
}

static void render(text *t, const guest_metrics *m)
{
    counter(t, "guestuser_guests_created_total", "Guest accounts created.",
            m->guests_created);
    counter(t, "guestuser_crawlers_blocked_total",
            "Visitors left anonymous because their User-Agent is in "
            "blocked_user_agents.",
            m->crawlers_blocked);
    counter(t, "guestuser_sessions_resolved_total",
            "Requests whose session cookie named a live session.",
            m->sessions_resolved);
    counter(t, "guestuser_session_cache_hits_total",
            "Resolved sessions answered without the database.",
            m->session_cache_hits);
    counter(t, "guestuser_session_cache_invalidations_total",
            "Notifications of changed sessions or users the session cache "
            "heard from the database.",
            m->session_cache_invalidations);
    gauge(t, "guestuser_session_cache_listening",
          "1 while the session cache's LISTEN connection is up and the "
          "cache answers, else 0.",
          m->session_cache_listening);
    counter(t, "guestuser_conversions_total",
            "Guests converted into registered users.", m->conversions);
    family(t, "guestuser_logins_total", "counter",
           "Password logins by result: ok, failed (wrong username or "
           "password), limited (refused by login_rate_limit).");
    put(t, "guestuser_logins_total{result=\"ok\"} %" PRIu64 "\n", m->logins_ok);
    put(t, "guestuser_logins_total{result=\"failed\"} %" PRIu64 "\n",
        m->logins_failed);
    put(t, "guestuser_logins_total{result=\"limited\"} %" PRIu64 "\n",
        m->logins_limited);
    counter(t, "guestuser_logouts_total", "Logouts.", m->logouts);
    counter(t, "guestuser_rate_limited_total",
            "Refusals by a rate limit: guest creation, login, conversion.",
            m->rate_limited);
    counter(t, "guestuser_cleanup_deleted_total",
            "Expired guests deleted by guest_delete_expired.",
            m->cleanup_deleted);
    counter(t, "guestuser_db_errors_total",
            "Statements and transactions that failed (GUEST_ERR_DB) or "
            "found no database (GUEST_ERR_DB_UNAVAILABLE).",
            m->db_errors);
    histogram(t, "guestuser_pool_wait_seconds",
              "Time waiting for a free database connection of the pool.",
              &m->pool_wait);
    histogram(t, "guestuser_hash_wait_seconds",
              "Time waiting for a password-hashing slot (hash_concurrency).",
              &m->hash_wait);
    gauge(t, "guestuser_db_pool_size",
          "Connections the pool may hold (db_pool_size).", m->pool_size);
    gauge(t, "guestuser_db_connections_open",
          "Database connections of the pool open now.", m->pool_open);
    gauge(t, "guestuser_db_connections_busy",
          "Database connections of the pool in use now.", m->pool_busy);
    gauge(t, "guestuser_db_pool_waiting",
          "Threads waiting for a database connection of the pool now.",
          m->pool_waiting);
    gauge(t, "guestuser_cleanup_last_success_timestamp_seconds",
          "Unix time of the last guest_delete_expired that succeeded, 0 "
          "before the first.",
          m->cleanup_last_success);
    counter(t, "guestuser_mail_sent_total",
            "Mails delivered by the senders of this process.", m->mail_sent);
    counter(t, "guestuser_mail_failed_total",
            "Mails the senders of this process gave up on (refused for good "
            "or out of mail_max_attempts).",
            m->mail_failed);
    gauge(t, "guestuser_mail_queued",
          "Mails pending in the outbox (neither delivered nor failed) at "
          "this process's last send pass.",
          m->mail_queued);
}

guest_status guest_metrics_text(guest_ctx *ctx, char **out, size_t *len,
                                guest_error *err)
{
    if (out)
        *out = NULL;
    if (len)
        *len = 0;
    if (!ctx || !out)
        return guest__fail(err, GUEST_ERR_INVALID, "ctx and text are required");
    guest_metrics m;
    metrics_read(ctx, &m);
    text t = {{0}, false};
    render(&t, &m);
    if (t.failed) {
        guest_buf_cleanup(&t.buf);
        return guest__fail(err, GUEST_ERR_NOMEM, "out of memory");
    }
    *out = t.buf.data;
    if (len)
        *len = t.buf.len;
    return GUEST_OK;
}

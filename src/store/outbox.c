/* The mail outbox: queued in the transaction that causes a mail, taken by
 * one sender at a time, marked sent, retried or failed; listed and failed
 * mails retried through the public guest_mail_queue_list and
 * guest_mail_retry_failed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

/* How long a taken mail is leased to its sender: other processes leave it
 * alone for that long, so a delivery that hangs on a slow server is not
 * sent twice, and a sender that died gives it back by itself. Longer than
 * any transport's deadline. */
#define LEASE_SECONDS 300

guest_status guest__outbox_put(guest_db *tx, const char *to,
                               const char *subject, const char *text,
                               const char *html, guest_error *err)
{
    /* The Message-ID is made here, once, so a retry repeats it and a
     * receiver can tell a duplicate. */
    unsigned char rnd[12];
    char hex[25];
    if (guest__random(rnd, sizeof rnd) != GUEST_OK)
        return guest__fail(err, GUEST_ERR_CRYPTO, "no random bytes");
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
    char message_id[64];
    snprintf(message_id, sizeof message_id, "<%s@guestuser>", hex);
    guest__params p = {0};
    guest__param_text(&p, message_id);
    guest__param_text(&p, to);
    guest__param_text(&p, subject);
    guest__param_text(&p, text);
    guest__param_text(&p, html);
    return guest__sql_run(
        tx->ctx, tx,
        &(guest__stmt){.tmpl = "INSERT INTO @.outbox (message_id, to_addr,"
                               " subject, body_text, body_html)"
                               " VALUES ($1, $2, $3, $4, $5)",
                       .params = &p},
        NULL, err);
}

guest_status guest__outbox_take(guest_ctx *ctx, size_t limit,
                                guest__outbox_fn fn, void *userdata,
                                size_t *taken, guest_error *err)
{
    char lim[32], lease[16];
    snprintf(lim, sizeof lim, "%zu", limit ? limit : 100);
    snprintf(lease, sizeof lease, "%d", LEASE_SECONDS);
    guest__params p = {0};
    guest__param_text(&p, lim);
    guest__param_text(&p, lease);
    PGresult *res = NULL;
    /* SKIP LOCKED: senders of several processes take disjoint mails
     * without waiting for each other; the lease is written in the same
     * statement, so the row lock is held only for that instant. */
    guest_status st = guest__sql_run(
        ctx, NULL,
        &(guest__stmt){
            .tmpl = "WITH due AS (SELECT id FROM @.outbox WHERE sent_at IS NULL"
                    " AND failed_at IS NULL AND next_attempt_at <= now()"
                    " ORDER BY next_attempt_at, id LIMIT $1::bigint"
                    " FOR UPDATE SKIP LOCKED)"
                    " UPDATE @.outbox o SET attempts = o.attempts + 1,"
                    " next_attempt_at = now() + make_interval(secs => $2)"
                    " FROM due WHERE o.id = due.id RETURNING o.id,"
                    " o.message_id, o.to_addr, o.subject, o.body_text,"
                    " o.body_html, o.attempts",
            .params = &p},
        &res, err);
    if (taken)
        *taken = st == GUEST_OK ? (size_t)PQntuples(res) : 0;
    for (int i = 0; st == GUEST_OK && i < PQntuples(res); i++) {
        guest__outbox_mail m = {
            .id = strtoll(PQgetvalue(res, i, 0), NULL, 10),
            .message_id = PQgetvalue(res, i, 1),
            .to = PQgetvalue(res, i, 2),
            .subject = PQgetvalue(res, i, 3),
            .text = PQgetvalue(res, i, 4),
            .html = PQgetisnull(res, i, 5) ? NULL : PQgetvalue(res, i, 5),
            .attempts = (int)strtol(PQgetvalue(res, i, 6), NULL, 10)};
        fn(&m, userdata);
    }
    PQclear(res);
    return st;
}

guest_status guest__outbox_done(guest_ctx *ctx, int64_t id,
                                guest__outbox_outcome outcome,
                                unsigned retry_in_s, const char *error,
                                guest_error *err)
{
    char sid[32], wait[16];
    snprintf(sid, sizeof sid, "%lld", (long long)id);
    snprintf(wait, sizeof wait, "%u", retry_in_s);
    guest__params p = {0};
    guest__param_text(&p, sid);
    guest__param_text(&p, error);
    guest__param_text(&p, wait);
    static const char *const sql[] = {
        [GUEST__OUTBOX_SENT] = "UPDATE @.outbox SET sent_at = now(),"
                               " last_error = $2 WHERE id = $1"
                               " AND $3::integer >= 0",
        [GUEST__OUTBOX_RETRY] = "UPDATE @.outbox SET last_error = $2,"
                                " next_attempt_at = now()"
                                " + make_interval(secs => $3::integer)"
                                " WHERE id = $1",
        [GUEST__OUTBOX_FAILED] = "UPDATE @.outbox SET failed_at = now(),"
                                 " last_error = $2 WHERE id = $1"
                                 " AND $3::integer >= 0",
    };
    return guest__sql_run(ctx, NULL,
                          &(guest__stmt){.tmpl = sql[outcome], .params = &p},
                          NULL, err);
}

guest_status guest_mail_queue_list(guest_ctx *ctx, size_t limit,
                                   guest_mail_list_fn fn, void *userdata,
                                   guest_error *err)
{
    if (!ctx || !fn)
        return guest__fail(err, GUEST_ERR_INVALID, "NULL ctx or fn");
    char lim[GUEST__INT_BUF];
    guest__params p = {0};
    guest__param_limit(&p, lim, limit);
    PGresult *res = NULL;
    guest_status st = guest__sql_run(
        ctx, NULL,
        &(guest__stmt){
            .tmpl = "SELECT id, to_addr, subject, attempts,"
                    " floor(extract(epoch FROM created_at))::bigint,"
                    " floor(extract(epoch FROM next_attempt_at))::bigint,"
                    " failed_at IS NOT NULL, coalesce(last_error, '')"
                    " FROM @.outbox WHERE sent_at IS NULL ORDER BY id"
                    " LIMIT $1::bigint",
            .params = &p},
        &res, err);
    for (int i = 0; st == GUEST_OK && i < PQntuples(res); i++) {
        guest_mail_info m = {
            .id = strtoll(PQgetvalue(res, i, 0), NULL, 10),
            .to = PQgetvalue(res, i, 1),
            .subject = PQgetvalue(res, i, 2),
            .attempts = (int)strtol(PQgetvalue(res, i, 3), NULL, 10),
            .created_at = strtoll(PQgetvalue(res, i, 4), NULL, 10),
            .next_attempt_at = strtoll(PQgetvalue(res, i, 5), NULL, 10),
            .failed = PQgetvalue(res, i, 6)[0] == 't',
            .last_error = PQgetvalue(res, i, 7)};
        if (!fn(&m, userdata))
            break;
    }
    PQclear(res);
    return st;
}

guest_status guest_mail_retry_failed(guest_ctx *ctx, uint64_t *count,
                                     guest_error *err)
{
    if (count)
        *count = 0;
    if (!ctx)
        return guest__fail(err, GUEST_ERR_INVALID, "NULL ctx");
    PGresult *res = NULL;
    guest_status st = guest__sql_run(
        ctx, NULL,
        &(guest__stmt){.tmpl = "UPDATE @.outbox SET failed_at = NULL,"
                               " attempts = 0, next_attempt_at = now()"
                               " WHERE failed_at IS NOT NULL"
                               " AND sent_at IS NULL"},
        &res, err);
    if (count)
        *count = st == GUEST_OK ? strtoull(PQcmdTuples(res), NULL, 10) : 0;
    PQclear(res);
    return st;
}

guest_status guest__outbox_pending(guest_ctx *ctx, int64_t *count,
                                   guest_error *err)
{
    /* A count on the partial index of pending mails: the sender's gauge
     * runs after every pass, and reading each pending row (bodies and all)
     * would grow with the very backlog an outage builds. */
    PGresult *res = NULL;
    guest_status st = guest__sql_run(
        ctx, NULL,
        &(guest__stmt){.tmpl = "SELECT count(*) FROM @.outbox"
                               " WHERE sent_at IS NULL AND failed_at IS NULL"},
        &res, err);
    if (st == GUEST_OK)
        *count = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return st;
}

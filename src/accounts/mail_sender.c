/* Delivering the outbox: one pass (guest_mail_send_due) and the thread
 * that runs passes (guest_mail_sender). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "accounts/accounts.h"

/* The first retry's wait; it doubles up to RETRY_MAX_S. A mail server
 * that is down for a while is tried less and less often, and what was
 * queued goes out within an hour of its return at the latest. */
#define RETRY_FIRST_S 10u
#define RETRY_MAX_S 3600u
/* Mails one pass takes at a time. */
#define PASS_BATCH 20

typedef struct pass {
    guest_ctx *ctx;
    const guest_mail_transport *t;
    unsigned sent, failed;
    guest_status st;
    guest_error *err;
} pass;

static unsigned retry_wait(int attempts)
{
    unsigned w = RETRY_FIRST_S;
    for (int i = 1; i < attempts && w < RETRY_MAX_S; i++)
        w *= 2;
    return w < RETRY_MAX_S ? w : RETRY_MAX_S;
}

static void deliver(const guest__outbox_mail *m, void *userdata)
{
    pass *p = userdata;
    const guest_config *c = &p->ctx->cfg;
    guest_mail mail = {.id = m->id,
                       .message_id = m->message_id,
                       .from = c->mail_from ? c->mail_from : "",
                       .to = m->to,
                       .subject = m->subject,
                       .text = m->text,
                       .html = m->html,
                       .attempt = m->attempts};
    char why[256] = "";
    guest_mail_result r = p->t->send(&mail, p->t->userdata, why, sizeof why);
    guest__outbox_outcome o = GUEST__OUTBOX_SENT;
    if (r == GUEST_MAIL_RETRY && (unsigned)m->attempts < c->mail_max_attempts)
        o = GUEST__OUTBOX_RETRY;
    else if (r != GUEST_MAIL_SENT)
        o = GUEST__OUTBOX_FAILED;
    if (o == GUEST__OUTBOX_SENT) {
        p->sent++;
        guest__count(p->ctx, GUEST__C_MAILS_SENT);
    }
    if (o == GUEST__OUTBOX_FAILED) {
        p->failed++;
        guest__count(p->ctx, GUEST__C_MAILS_FAILED);
        guest__log(p->ctx, GUEST_LOG_WARNING,
                   "mail %lld to %s failed for good after %d attempts: %s",
                   (long long)m->id, m->to, m->attempts, why);
    }
    /* A mark that cannot be written leaves the lease to run out: the mail
     * is then tried again (sent twice at worst, never lost). */
    guest_status st = guest__outbox_done(
        p->ctx, m->id, o, retry_wait(m->attempts), *why ? why : NULL, NULL);
    if (st != GUEST_OK && p->st == GUEST_OK)
        p->st = guest__fail(p->err, st, "could not mark mail %lld",
                            (long long)m->id);
}

guest_status guest_mail_send_due(guest_ctx *ctx,
                                 const guest_mail_transport *transport,
                                 size_t limit, unsigned *sent, unsigned *failed,
                                 guest_error *err)
{
    if (sent)
        *sent = 0;
    if (failed)
        *failed = 0;
    if (!ctx || !transport || !transport->send)
        return guest__fail(err, GUEST_ERR_INVALID, "NULL ctx or transport");
    pass p = {.ctx = ctx, .t = transport, .st = GUEST_OK, .err = err};
    size_t done = 0;
    for (;;) {
        size_t want = limit ? limit - done : PASS_BATCH;
        if (want > PASS_BATCH)
            want = PASS_BATCH;
        if (!want)
            break;
        size_t taken = 0;
        guest_status st =
            guest__outbox_take(ctx, want, deliver, &p, &taken, err);
        if (st != GUEST_OK)
            return st;
        done += taken;
        if (taken < want || p.st != GUEST_OK)
            break;
    }
    /* The gauge: what is still pending once this pass is done (a failure
     * to count leaves the last value). */
    int64_t queued = 0;
    if (guest__outbox_pending(ctx, &queued, NULL) == GUEST_OK)
        guest__metric_mail_queued(ctx, queued);
    if (sent)
        *sent = p.sent;
    if (failed)
        *failed = p.failed;
    return p.st;
}

struct guest_mail_sender {
    guest_ctx *ctx;
    guest_mail_transport t;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
};

static void *sender_main(void *arg)
{
    guest_mail_sender *s = arg;
    unsigned poll_ms = s->ctx->cfg.mail_poll_ms;
    pthread_mutex_lock(&s->mu);
    while (!s->stop) {
        pthread_mutex_unlock(&s->mu);
        guest_error err = {.message = ""};
        guest_status st =
            guest_mail_send_due(s->ctx, &s->t, 0, NULL, NULL, &err);
        /* The database being down is logged by the pool; the next pass
         * tries again. */
        (void)st;
        pthread_mutex_lock(&s->mu);
        if (s->stop)
            break;
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += poll_ms / 1000;
        until.tv_nsec += (long)(poll_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        while (!s->stop &&
               pthread_cond_timedwait(&s->cv, &s->mu, &until) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

guest_status guest_mail_sender_start(guest_ctx *ctx,
                                     const guest_mail_transport *transport,
                                     guest_mail_sender **out, guest_error *err)
{
    if (out)
        *out = NULL;
    if (!ctx || !transport || !transport->send || !out)
        return guest__fail(err, GUEST_ERR_INVALID,
                           "NULL ctx, transport, send or out");
    guest_mail_sender *s = calloc(1, sizeof *s);
    if (!s)
        return guest__fail(err, GUEST_ERR_NOMEM, "out of memory");
    s->ctx = ctx;
    s->t = *transport;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    bool ok = pthread_mutex_init(&s->mu, NULL) == 0;
    if (ok && pthread_cond_init(&s->cv, &ca) != 0) {
        pthread_mutex_destroy(&s->mu);
        ok = false;
    }
    pthread_condattr_destroy(&ca);
    if (ok && pthread_create(&s->thread, NULL, sender_main, s) != 0) {
        pthread_cond_destroy(&s->cv);
        pthread_mutex_destroy(&s->mu);
        ok = false;
    }
    if (!ok) {
        free(s);
        return guest__fail(err, GUEST_ERR_NOMEM,
                           "cannot start the mail sender's thread");
    }
    *out = s;
    return GUEST_OK;
}

void guest_mail_sender_stop(guest_mail_sender *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

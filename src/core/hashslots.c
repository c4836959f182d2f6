/* A counting semaphore that bounds how many password hashes run at once. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "core/core.h"

struct guest__hashslots {
    pthread_mutex_t mu;
    pthread_cond_t freed;
    unsigned available;
    /* When the "busy" warning was last logged (guest__log_every). */
    _Atomic int64_t last_busy_log;
};

guest_status guest__hashslots_new(unsigned n, guest__hashslots **out)
{
    *out = NULL;
    if (n < 1)
        return GUEST_ERR_INVALID;
    guest__hashslots *s = calloc(1, sizeof *s);
    if (!s)
        return GUEST_ERR_NOMEM;
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0) {
        free(s);
        return GUEST_ERR_NOMEM;
    }
    /* Waits measure elapsed time: a wall-clock jump must neither cut them
     * short nor stretch them. */
    bool ok = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0 &&
              pthread_cond_init(&s->freed, &attr) == 0;
    pthread_condattr_destroy(&attr);
    if (!ok) {
        free(s);
        return GUEST_ERR_NOMEM;
    }
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
        pthread_cond_destroy(&s->freed);
        free(s);
        return GUEST_ERR_NOMEM;
    }
    s->available = n;
    *out = s;
    return GUEST_OK;
}

void guest__hashslots_free(guest__hashslots *s)
{
    if (!s)
        return;
    pthread_cond_destroy(&s->freed);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

bool guest__hashslots_acquire(guest__hashslots *s, unsigned wait_ms)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += wait_ms / 1000;
    deadline.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&s->mu);
    int rc = 0;
    while (s->available == 0 && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&s->freed, &s->mu, &deadline);
    /* A slot freed right at the deadline is still taken. */
    bool got = s->available > 0;
    if (got)
        s->available--;
    pthread_mutex_unlock(&s->mu);
    return got;
}

void guest__hashslots_release(guest__hashslots *s)
{
    pthread_mutex_lock(&s->mu);
    s->available++;
    pthread_mutex_unlock(&s->mu);
    pthread_cond_signal(&s->freed);
}

guest_status guest__hash_slot_take(guest_ctx *ctx)
{
    int64_t waited_from = guest__now_us();
    bool got =
        guest__hashslots_acquire(ctx->core->hash_slots, ctx->cfg.hash_wait_ms);
    guest__observe_since(ctx, GUEST__H_HASH_WAIT, waited_from);
    if (got)
        return GUEST_OK;
    guest__log_every(ctx, &ctx->core->hash_slots->last_busy_log, 10000,
                     GUEST_LOG_WARNING,
                     "password hashing busy: all %u slots stayed taken for "
                     "%u ms, answering 503 (hash_concurrency, hash_wait_ms)",
                     ctx->cfg.hash_concurrency, ctx->cfg.hash_wait_ms);
    return GUEST_ERR_BUSY;
}

void guest__hash_slot_give(guest_ctx *ctx)
{
    guest__hashslots_release(ctx->core->hash_slots);
}

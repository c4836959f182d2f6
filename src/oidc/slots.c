/* The bound on provider calls in progress: a slow or hanging provider
 * ties up at most `concurrency` server threads, and the rest are told to
 * come back (503) instead of queueing behind it. */
#include <errno.h>
#include <time.h>

#include "oidc/oidc.h"

bool guest__oidc_slot_take(guest_oidc *o)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += o->wait_ms / 1000;
    until.tv_nsec += (long)(o->wait_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&o->slot_mu);
    int rc = 0;
    while (o->slots_used >= o->concurrency && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&o->slot_cv, &o->slot_mu, &until);
    bool got = o->slots_used < o->concurrency;
    if (got)
        o->slots_used++;
    pthread_mutex_unlock(&o->slot_mu);
    return got;
}

void guest__oidc_slot_give(guest_oidc *o)
{
    pthread_mutex_lock(&o->slot_mu);
    o->slots_used--;
    pthread_cond_signal(&o->slot_cv);
    pthread_mutex_unlock(&o->slot_mu);
}

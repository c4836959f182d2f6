/* The adapters' header-timeout watchdog (guest_watchdog_new). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include "core/core.h"
#include "guestuser/adapter.h"

struct guest_watched {
    guest_watched *prev, *next; /* wd->list, under wd->lock */
    int fd;
    bool killed;      /* shut down by the watchdog, under wd->lock */
    bool peer_closed; /* under wd->lock */
    _Atomic bool answering;
    /* Monotonic ms by which the client must have sent what the adapter
     * waits for; 0 while none. */
    _Atomic int64_t deadline;
};

struct guest_watchdog {
    void (*tick)(void *userdata);
    void *userdata;
    pthread_mutex_t lock;
    pthread_cond_t wake; /* on the monotonic clock */
    pthread_t thread;
    bool running;
    bool stopping;
    guest_watched *list;
    _Atomic unsigned long timed_out;
};

/* A condition variable whose timed waits run on the monotonic clock; 0 or
 * an error number. */
static int cond_init_monotonic(pthread_cond_t *cond)
{
    pthread_condattr_t ca;
    int rc = pthread_condattr_init(&ca);
    if (rc != 0)
        return rc;
    rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(cond, &ca);
    pthread_condattr_destroy(&ca);
    return rc;
}

guest_status guest_watchdog_new(void (*tick)(void *userdata), void *userdata,
                                guest_watchdog **out)
{
    if (!out)
        return GUEST_ERR_INVALID;
    guest_watchdog *wd = calloc(1, sizeof *wd);
    if (!wd)
        return GUEST_ERR_NOMEM;
    if (cond_init_monotonic(&wd->wake) != 0)
        goto no_wake;
    if (pthread_mutex_init(&wd->lock, NULL) != 0)
        goto no_lock;
    wd->tick = tick;
    wd->userdata = userdata;
    *out = wd;
    return GUEST_OK;
no_lock:
    pthread_cond_destroy(&wd->wake);
no_wake:
    free(wd);
    return GUEST_ERR_NOMEM;
}

void guest_watchdog_free(guest_watchdog *wd)
{
    if (!wd)
        return;
    pthread_mutex_lock(&wd->lock);
    wd->stopping = true;
    pthread_cond_signal(&wd->wake);
    bool joined = wd->running;
    pthread_mutex_unlock(&wd->lock);
    if (joined)
        pthread_join(wd->thread, NULL);
    pthread_mutex_destroy(&wd->lock);
    pthread_cond_destroy(&wd->wake);
    free(wd);
}

/* Only shutdown(): the fd stays open until the server closes it, and the
 * adapter removes the connection (under wd->lock) before that, so a listed
 * fd is never one reused by another connection. */
static void *watchdog_main(void *arg)
{
    guest_watchdog *wd = arg;
    pthread_mutex_lock(&wd->lock);
    while (!wd->stopping) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += 250 * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&wd->wake, &wd->lock, &until);
        if (wd->tick)
            wd->tick(wd->userdata);
        int64_t now = guest__now_ms();
        for (guest_watched *w = wd->list; w; w = w->next) {
            if (w->killed || w->fd < 0)
                continue;
            int64_t d = atomic_load(&w->deadline);
            if (w->peer_closed && !atomic_load(&w->answering)) {
                /* What a server does when it reads the end of the stream. */
                shutdown(w->fd, SHUT_RDWR);
                w->killed = true;
            } else if (d && now > d) {
                shutdown(w->fd, SHUT_RDWR);
                w->killed = true;
                atomic_fetch_add(&wd->timed_out, 1);
            }
        }
    }
    pthread_mutex_unlock(&wd->lock);
    return NULL;
}

guest_watched *guest_watchdog_add(guest_watchdog *wd, int fd)
{
    if (!wd)
        return NULL;
    guest_watched *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->fd = fd;
    pthread_mutex_lock(&wd->lock);
    w->next = wd->list;
    if (wd->list)
        wd->list->prev = w;
    wd->list = w;
    pthread_mutex_unlock(&wd->lock);
    return w;
}

void guest_watchdog_start(guest_watchdog *wd)
{
    if (!wd)
        return;
    pthread_mutex_lock(&wd->lock);
    if (!wd->running && !wd->stopping &&
        pthread_create(&wd->thread, NULL, watchdog_main, wd) == 0)
        wd->running = true;
    pthread_mutex_unlock(&wd->lock);
}

void guest_watchdog_remove(guest_watchdog *wd, guest_watched *w)
{
    if (!wd || !w)
        return;
    pthread_mutex_lock(&wd->lock);
    if (w->prev)
        w->prev->next = w->next;
    else
        wd->list = w->next;
    if (w->next)
        w->next->prev = w->prev;
    pthread_mutex_unlock(&wd->lock);
    free(w);
}

bool guest_watchdog_busy(guest_watchdog *wd)
{
    if (!wd)
        return false;
    pthread_mutex_lock(&wd->lock);
    bool busy = wd->running || wd->list;
    pthread_mutex_unlock(&wd->lock);
    return busy;
}

unsigned long guest_watchdog_timed_out(const guest_watchdog *wd)
{
    return wd ? atomic_load(&wd->timed_out) : 0;
}

void guest_watched_arm(guest_watched *w, unsigned timeout_s)
{
    if (w)
        atomic_store(&w->deadline,
                     timeout_s ? guest__now_ms() + (int64_t)timeout_s * 1000
                               : 0);
}

void guest_watched_answering(guest_watched *w, bool answering)
{
    if (w)
        atomic_store(&w->answering, answering);
}

void guest_watched_peer_closed(guest_watched *w)
{
    if (w)
        w->peer_closed = true;
}

/* How long another process's session cache keeps answering for a session
 * that was logged out: two processes (fork), each with its own context on
 * one schema and session_cache_ttl at an hour. Per trial, A makes a guest,
 * B resolves it until it is a cache hit, A logs it out, and B resolves it
 * in a loop (every 100 us) until it is refused. The time from the start of
 * A's guest_logout() to B's first refusal is printed as median, p90, p99
 * and max in milliseconds.
 *   bench_cache_notify [CONNINFO] [--trials N]   (CONNINFO else env
 *   GUESTUSER_DB). Uses its own schema (bench_cache_notify), dropped at
 *   start. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include <guestuser/guestuser.h>

#include "fake_request.h"

#define SCHEMA "bench_cache_notify"
#define COOKIE_BUF 128
/* A refusal that has not come after this long is reported as a failure:
 * the cache served a logged-out session. */
#define GIVE_UP_NS (5 * 1000000000LL)

/* Each request a POST from 127.0.0.1, with the session cookie @p c. */
#define CLIENT(c)                                                              \
    {                                                                          \
        .method = "POST", .cookie = (c), .addr = "127.0.0.1"                   \
    }

static int64_t now_ns(void)
{
    /* CLOCK_MONOTONIC is one clock for every process of the machine. */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void page(guest_req *req, void *ud)
{
    (void)ud;
    guest_res_send(req, 200, "text/plain", "ok");
}

static void allow(guest_req *req, void *ud)
{
    guest_allow(req, page, ud);
}

static void who(guest_req *req, void *ud)
{
    const guest_user *u = NULL;
    guest_error err;
    *(int64_t *)ud =
        guest_req_user(req, &u, &err) == GUEST_OK && u ? guest_user_id(u) : 0;
}

static void logout(guest_req *req, void *ud)
{
    guest_error err;
    *(guest_status *)ud = guest_logout(req, &err);
}

static int64_t resolve(guest_ctx *ctx, const char *cookie)
{
    fake f = CLIENT(cookie);
    int64_t id = 0;
    if (fake_request(ctx, &f, who, &id) != 0)
        return -1;
    return id;
}

static guest_ctx *context(const char *conninfo)
{
    guest_config cfg;
    guest_config_init(&cfg);
    cfg.db_conninfo = conninfo;
    cfg.db_schema = SCHEMA;
    cfg.db_pool_size = 2;
    cfg.session_cache_ttl = 3600;
    guest_ctx *ctx = NULL;
    guest_error err;
    if (guest_ctx_new(&cfg, &ctx, &err) != GUEST_OK) {
        fprintf(stderr, "guest_ctx_new: %s\n", err.message);
        exit(1);
    }
    return ctx;
}

static bool read_all(int fd, void *buf, size_t n)
{
    char *p = buf;
    while (n) {
        ssize_t r = read(fd, p, n);
        if (r <= 0)
            return false;
        p += r;
        n -= (size_t)r;
    }
    return true;
}

static bool write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* B: per cookie received, warm it, say so, then poll until it is refused
 * and send the time of the refusal (-1: never within GIVE_UP_NS). */
static int node_b(const char *conninfo, int in, int out)
{
    guest_ctx *b = context(conninfo);
    char cookie[COOKIE_BUF];
    if (!write_all(out, "R", 1))
        return 1;
    while (read_all(in, cookie, sizeof cookie)) {
        guest_metrics m0, m1;
        resolve(b, cookie);
        guest_metrics_get(b, &m0);
        resolve(b, cookie);
        guest_metrics_get(b, &m1);
        char warm = m1.session_cache_hits > m0.session_cache_hits ? 'W' : 'M';
        if (!write_all(out, &warm, 1))
            break;
        int64_t start = now_ns(), at = -1;
        while (now_ns() - start < GIVE_UP_NS) {
            if (resolve(b, cookie) == 0) {
                at = now_ns();
                break;
            }
            usleep(100);
        }
        if (!write_all(out, &at, sizeof at))
            break;
    }
    guest_ctx_free(b);
    return 0;
}

static int cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static double ms_at(const int64_t *sorted, int n, double q)
{
    int i = (int)(q * (n - 1) + 0.5);
    return sorted[i] / 1e6;
}

int main(int argc, char **argv)
{
    const char *conninfo = getenv("GUESTUSER_DB");
    int trials = 200;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--trials") && i + 1 < argc)
            trials = (int)strtol(argv[++i], NULL, 10);
        else
            conninfo = argv[i];
    }
    if (!conninfo || trials < 1) {
        fprintf(stderr, "usage: bench_cache_notify CONNINFO [--trials N]\n");
        return 2;
    }
    PGconn *db = PQconnectdb(conninfo);
    if (PQstatus(db) != CONNECTION_OK) {
        fprintf(stderr, "%s", PQerrorMessage(db));
        return 1;
    }
    PQclear(PQexec(db, "DROP SCHEMA IF EXISTS " SCHEMA " CASCADE"));
    PQfinish(db);

    int to_b[2], from_b[2];
    if (pipe(to_b) || pipe(from_b))
        return 1;
    /* Forked before either side has a connection or a thread. */
    pid_t pid = fork();
    if (pid < 0)
        return 1;
    if (pid == 0) {
        close(to_b[1]);
        close(from_b[0]);
        _exit(node_b(conninfo, to_b[0], from_b[1]));
    }
    close(to_b[0]);
    close(from_b[1]);
    guest_ctx *a = context(conninfo);
    char ready;
    if (!read_all(from_b[0], &ready, 1)) {
        fprintf(stderr, "node B did not start\n");
        return 1;
    }
    int64_t *lat = calloc((size_t)trials, sizeof *lat);
    int n = 0, stale = 0, cold = 0;
    for (int t = 0; t < trials; t++) {
        fake f = CLIENT(NULL);
        if (fake_request(a, &f, allow, NULL) != 0 || !f.set_cookie[0]) {
            fprintf(stderr, "no guest made\n");
            break;
        }
        char cookie[COOKIE_BUF] = {0};
        memcpy(cookie, f.set_cookie, sizeof cookie);
        char warm;
        if (!write_all(to_b[1], cookie, sizeof cookie) ||
            !read_all(from_b[0], &warm, 1))
            break;
        cold += warm != 'W';
        fake out = CLIENT(cookie);
        guest_status st = GUEST_ERR_INVALID;
        int64_t t0 = now_ns();
        fake_request(a, &out, logout, &st);
        int64_t at;
        if (!read_all(from_b[0], &at, sizeof at))
            break;
        if (st != GUEST_OK || at < 0) {
            stale += at < 0;
            continue;
        }
        lat[n++] = at > t0 ? at - t0 : 0;
    }
    close(to_b[1]);
    waitpid(pid, NULL, 0);
    guest_ctx_free(a);
    if (!n) {
        fprintf(stderr, "no trial finished\n");
        return 1;
    }
    qsort(lat, (size_t)n, sizeof *lat, cmp);
    printf("logout on A refused on B (session_cache_ttl 3600, 2 processes):\n"
           "trials=%d median_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f"
           " never_refused=%d not_cached_first=%d\n",
           n, ms_at(lat, n, 0.5), ms_at(lat, n, 0.9), ms_at(lat, n, 0.99),
           lat[n - 1] / 1e6, stale, cold);
    free(lat);
    return stale ? 1 : 0;
}

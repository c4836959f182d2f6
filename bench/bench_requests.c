/* Prints the per-request cost of the library next to the bare database
 * round trip it is built on, measured side by side in one run:
 *   bench_requests [CONNINFO] [N]   (CONNINFO else env GUESTUSER_DB)
 * Uses its own schema (bench_requests), dropped at start.
 *
 * With --case, one case under load from several threads sharing one
 * context, for bench/run.sh's table (see run_case below):
 *   bench_requests CONNINFO --case new|returning|ping [--seconds S]
 *                  [--threads T] [--schema NAME] [--cookies N]
 * prints one line: ops= seconds= p50_ms= p99_ms= rt_per_op= errors= */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <libpq-fe.h>

#include <guestuser/guestuser.h>

#include "fake_request.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void page(guest_req *req, void *ud)
{
    (void)ud;
    guest_res_send(req, 200, "text/plain", "ok");
}

/* One request of @p f through @p guard; -1 when it could not be made. */
static int request(guest_ctx *ctx, fake *f, guest_handler_fn guard)
{
    return fake_request(ctx, f, guard, NULL);
}

static void allow(guest_req *req, void *ud)
{
    guest_allow(req, page, ud);
}

/* The library's own count of statements sent (src/store/db.c); linked
 * from the static library, as the tests do. */
extern _Atomic unsigned long guest__db_round_trips;

enum bench_case { CASE_NEW, CASE_RETURNING, CASE_PING };

typedef struct worker {
    guest_ctx *ctx;
    enum bench_case what;
    char (*cookies)[128];
    int ncookies, index;
    double deadline;
    double *lat; /* seconds per request */
    size_t n, cap;
    unsigned long errors;
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    int k = w->index;
    for (;;) {
        double t0 = now();
        if (t0 >= w->deadline)
            break;
        bool ok;
        if (w->what == CASE_PING) {
            guest_error err;
            ok = guest_ping(w->ctx, &err) == GUEST_OK;
        } else if (w->what == CASE_NEW) {
            fake f = {0};
            ok = request(w->ctx, &f, allow) == 0 && f.set_cookie[0];
        } else {
            /* a different guest each time; a cookie that did not resolve
             * would make a new guest, and so set a cookie */
            fake f = {.cookie = w->cookies[k]};
            k = (k + 1) % w->ncookies;
            ok = request(w->ctx, &f, allow) == 0 && !f.set_cookie[0];
        }
        double t = now() - t0;
        if (!ok)
            w->errors++;
        if (w->n == w->cap) {
            size_t cap = w->cap ? w->cap * 2 : 4096;
            double *l = realloc(w->lat, cap * sizeof *l);
            if (!l)
                break;
            w->lat = l, w->cap = cap;
        }
        w->lat[w->n++] = t;
    }
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* One case for `seconds` from `threads` threads on one context whose pool
 * has as many connections, as a server's worker threads would share it. */
static int run_case(const char *conninfo, int argc, char **argv)
{
    const char *what = NULL, *schema = "guestuser";
    double seconds = 8;
    int threads = 8, ncookies = 500;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--case"))
            what = argv[i + 1];
        else if (!strcmp(argv[i], "--seconds"))
            seconds = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads"))
            threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--schema"))
            schema = argv[i + 1];
        else if (!strcmp(argv[i], "--cookies"))
            ncookies = atoi(argv[i + 1]);
        else
            what = NULL, i = argc;
    }
    enum bench_case c = CASE_NEW;
    if (what && !strcmp(what, "returning"))
        c = CASE_RETURNING;
    else if (what && !strcmp(what, "ping"))
        c = CASE_PING;
    else if (!what || strcmp(what, "new"))
        what = NULL;
    if (!what || seconds <= 0 || threads < 1 || threads > 256 || ncookies < 1 ||
        ncookies > 100000) {
        fprintf(stderr, "usage: bench_requests CONNINFO --case "
                        "new|returning|ping [--seconds S] [--threads T]"
                        " [--schema NAME] [--cookies N]\n");
        return 1;
    }
    guest_config cfg;
    guest_config_init(&cfg);
    cfg.db_conninfo = conninfo;
    cfg.db_schema = schema;
    cfg.db_pool_size = (unsigned)threads;
    guest_ctx *ctx;
    guest_error err;
    if (guest_ctx_new(&cfg, &ctx, &err) != GUEST_OK) {
        fprintf(stderr, "%s\n", err.message);
        return 2;
    }
    char(*cookies)[128] = calloc((size_t)ncookies, sizeof *cookies);
    worker *w = calloc((size_t)threads, sizeof *w);
    pthread_t *tid = calloc((size_t)threads, sizeof *tid);
    if (!cookies || !w || !tid)
        return 2;
    if (c == CASE_RETURNING)
        for (int i = 0; i < ncookies; i++) {
            fake f = {0};
            if (request(ctx, &f, allow) != 0 || !f.set_cookie[0]) {
                fprintf(stderr, "bench_requests: could not make a guest\n");
                return 2;
            }
            memcpy(cookies[i], f.set_cookie, sizeof cookies[i]);
        }
    /* warm up: every pooled connection opened and its statements
     * prepared before the clock starts, as in a running server */
    double start = now();
    for (int i = 0; i < threads; i++) {
        w[i] = (worker){.ctx = ctx,
                        .what = c,
                        .cookies = cookies,
                        .ncookies = ncookies,
                        .index = i * ncookies / threads,
                        .deadline = start + 0.5};
        pthread_create(&tid[i], NULL, work, &w[i]);
    }
    for (int i = 0; i < threads; i++)
        pthread_join(tid[i], NULL);
    unsigned long rt0 = guest__db_round_trips;
    start = now();
    for (int i = 0; i < threads; i++) {
        w[i].n = 0, w[i].errors = 0, w[i].deadline = start + seconds;
        pthread_create(&tid[i], NULL, work, &w[i]);
    }
    for (int i = 0; i < threads; i++)
        pthread_join(tid[i], NULL);
    double elapsed = now() - start;
    unsigned long rt = guest__db_round_trips - rt0, errors = 0;
    size_t total = 0;
    for (int i = 0; i < threads; i++)
        total += w[i].n, errors += w[i].errors;
    double *all = malloc((total ? total : 1) * sizeof *all);
    if (!all)
        return 2;
    size_t k = 0;
    for (int i = 0; i < threads; i++) {
        memcpy(all + k, w[i].lat, w[i].n * sizeof *all);
        k += w[i].n;
        free(w[i].lat);
    }
    qsort(all, total, sizeof *all, cmp_double);
    double p50 = total ? all[total / 2] : 0,
           p99 = total ? all[(size_t)((double)(total - 1) * 0.99)] : 0;
    printf("ops=%zu seconds=%.3f p50_ms=%.3f p99_ms=%.3f rt_per_op=%.2f "
           "errors=%lu\n",
           total, elapsed, p50 * 1e3, p99 * 1e3,
           total ? (double)rt / (double)total : 0.0, errors);
    free(all);
    free(w);
    free(tid);
    free(cookies);
    guest_ctx_free(ctx);
    return errors ? 3 : 0;
}

int main(int argc, char **argv)
{
    const char *conninfo = argc > 1 ? argv[1] : getenv("GUESTUSER_DB");
    if (conninfo && argc > 2 && !strncmp(argv[2], "--", 2))
        return run_case(conninfo, argc, argv);
    int n = argc > 2 ? atoi(argv[2]) : 5000;
    if (!conninfo || n <= 0) {
        fprintf(stderr, "usage: %s CONNINFO [N]\n", argv[0]);
        return 1;
    }
    PGconn *raw = PQconnectdb(conninfo);
    if (PQstatus(raw) != CONNECTION_OK) {
        fprintf(stderr, "%s", PQerrorMessage(raw));
        return 2;
    }
    PQclear(PQexec(raw, "SET client_min_messages = warning"));
    PQclear(PQexec(raw, "DROP SCHEMA IF EXISTS bench_requests CASCADE"));
    PQclear(PQexec(raw, "DROP SCHEMA IF EXISTS bench_requests_limits CASCADE"));

    guest_config cfg;
    guest_config_init(&cfg);
    cfg.db_conninfo = conninfo;
    cfg.db_schema = "bench_requests";
    cfg.db_pool_size = 1;
    guest_ctx *ctx;
    guest_error err;
    if (guest_ctx_new(&cfg, &ctx, &err) != GUEST_OK) {
        fprintf(stderr, "%s\n", err.message);
        return 2;
    }

    /* The same with the abuse limits on (never reached): the rate check and
     * window update and the max_guests check ride in the creation
     * statement; each request comes from another address, so each adds a
     * window row as a flood from many addresses would. */
    guest_config lim = cfg;
    lim.db_schema = "bench_requests_limits";
    lim.guest_rate_limit = 1000000000;
    lim.max_guests = INT64_MAX / 2;
    guest_ctx *lctx;
    if (guest_ctx_new(&lim, &lctx, &err) != GUEST_OK) {
        fprintf(stderr, "%s\n", err.message);
        return 2;
    }
    /* The same schema with session_cache_ttl on: a returning visitor's
     * session comes from memory after its first request. */
    guest_config cached = cfg;
    cached.session_cache_ttl = 3600;
    guest_ctx *cctx;
    if (guest_ctx_new(&cached, &cctx, &err) != GUEST_OK) {
        fprintf(stderr, "%s\n", err.message);
        return 2;
    }
    fake lf = {0};
    snprintf(lf.addr, sizeof lf.addr, "10.255.255.255");
    request(lctx, &lf, allow);
    unsigned long addr_seq = 0;

    /* The cases take turns in short rounds, so a noisy neighbour on a
     * shared machine slows all of them alike and the ratios hold. */
    const char *param = "1";
    fake f = {0}, none = {0};
    request(ctx, &f, allow); /* warm up: prepares the statements */
    fake back = {.cookie = f.set_cookie};
    request(cctx, &back, allow); /* fills the session cache */
    /* Second baseline: the library's own session lookup, prepared, run by
     * hand over libpq; the gap to it is what the library itself costs. */
    PQclear(PQprepare(raw, "lookup",
                      "SELECT u.id, u.username, g.user_id IS NOT NULL"
                      " FROM bench_requests.sessions s"
                      " JOIN bench_requests.users u ON u.id = s.user_id"
                      " LEFT JOIN bench_requests.guests g ON g.user_id = u.id"
                      " WHERE s.token_hash = $1 AND s.expires_at > now()"
                      " AND u.is_active",
                      1, NULL));
    /* the returning guest's own session row, so both lookups find it */
    PGresult *hr =
        PQexec(raw, "SELECT token_hash FROM bench_requests.sessions");
    char hash[80];
    snprintf(hash, sizeof hash, "%s",
             PQntuples(hr) == 1 ? PQgetvalue(hr, 0, 0) : "\\x00");
    PQclear(hr);
    const char *hashp = hash;
    double t_raw = 0, t_lookup = 0, t_create = 0, t_resolve = 0, t_plain = 0,
           t_limited = 0, t_cached = 0, t0;
    int rounds = 10, per = n / rounds;
    n = per * rounds;
    for (int r = 0; r < rounds; r++) {
        /* Baseline: one parameterized statement over libpq, the floor for
         * any request that needs the database at all. */
        t0 = now();
        for (int i = 0; i < per; i++)
            PQclear(PQexecParams(raw, "SELECT $1::int", 1, NULL, &param, NULL,
                                 NULL, 0));
        t_raw += now() - t0;
        t0 = now();
        for (int i = 0; i < per; i++)
            PQclear(PQexecPrepared(raw, "lookup", 1, &hashp, NULL, NULL, 0));
        t_lookup += now() - t0;
        t0 = now();
        for (int i = 0; i < per; i++)
            request(ctx, &back, allow); /* returning guest: resolve only */
        t_resolve += now() - t0;
        t0 = now();
        for (int i = 0; i < per; i++)
            request(cctx, &back, allow); /* returning, session cache on */
        t_cached += now() - t0;
        t0 = now();
        for (int i = 0; i < per; i++) {
            fake fresh = {0};
            request(ctx, &fresh, allow); /* anonymous: a new guest */
        }
        t_create += now() - t0;
        t0 = now();
        for (int i = 0; i < per; i++) {
            fake fresh = {0};
            addr_seq++;
            snprintf(fresh.addr, sizeof fresh.addr, "10.%lu.%lu.%lu",
                     (addr_seq >> 16) & 255, (addr_seq >> 8) & 255,
                     addr_seq & 255);
            request(lctx, &fresh, allow); /* a new guest, limits on */
        }
        t_limited += now() - t0;
        t0 = now();
        for (int i = 0; i < per; i++)
            request(ctx, &none, page); /* unguarded page, no cookie */
        t_plain += now() - t0;
    }

    printf("requests per case: %d (one connection, same server, one run)\n", n);
    printf("%-34s %10s %10s %8s\n", "case", "req/s", "us/req", "x raw");
    struct {
        const char *name;
        double t;
    } rows[] = {
        {"raw libpq round trip (baseline)", t_raw},
        {"raw libpq, the session lookup SQL", t_lookup},
        {"returning guest (GUEST_ALLOW)", t_resolve},
        {"returning guest, session cache on", t_cached},
        {"new guest created (GUEST_ALLOW)", t_create},
        {"new guest, rate limit + max_guests", t_limited},
        {"unguarded page, no database", t_plain},
    };
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++)
        printf("%-34s %10.0f %10.1f %8.2f\n", rows[i].name, n / rows[i].t,
               rows[i].t / n * 1e6, rows[i].t / t_raw);
    guest_ctx_free(ctx);
    guest_ctx_free(lctx);
    guest_ctx_free(cctx);
    PQclear(PQexec(raw, "DROP SCHEMA IF EXISTS bench_requests CASCADE"));
    PQclear(PQexec(raw, "DROP SCHEMA IF EXISTS bench_requests_limits CASCADE"));
    PQfinish(raw);
    return 0;
}

/* What a flood of failed logins does to everyone else. Serves the demo's
 * route table with the libmicrohttpd adapter in this process (real HTTP
 * over loopback), then measures a returning guest's GET /allow_guest_user/
 * latency alone, and again while CLIENTS threads post failed logins, once
 * with the default hash slots and once with hashing unbounded
 * (hash_concurrency 1024, as before the slots existed):
 *   bench_login_flood [CONNINFO] [SECONDS_PER_PHASE] [CLIENTS] [ITERATIONS]
 *                     [mhd|evhttp]
 * CONNINFO else env GUESTUSER_DB; defaults 3 s, 32 clients, 1500000
 * (the default password_iterations), mhd. With evhttp the pages run on its
 * one loop (guest_evhttp_set_loop_handlers) and the logins on its
 * workers. Uses its own schema
 * (bench_login_flood), dropped at start and end. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include <guestuser/adapters/mhd.h>
#include <guestuser/guestuser.h>
#ifdef BENCH_EVHTTP
#include <guestuser/adapters/evhttp.h>
#endif

#include "demo.h"

#define CSRF "benchbenchbenchbenchbenchbench12"
#define USER "flood_target"
#define PASSWORD "Quartz-Lantern-58"

static GUEST_ROUTES(demo_routes_handler, demo_routes())

    static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* One HTTP/1.1 exchange on a fresh connection; the status (0 on a
 * transport failure). With @p set_cookie, the first Set-Cookie's
 * "name=value" is copied there. */
static int http(int port, const char *request, char *set_cookie, size_t size)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return 0;
    struct timeval tv = {.tv_sec = 60};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int status = 0;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
        goto out;
    size_t len = strlen(request), off = 0;
    while (off < len) {
        ssize_t n = send(fd, request + off, len - off, MSG_NOSIGNAL);
        if (n <= 0)
            goto out;
        off += (size_t)n;
    }
    char buf[16384];
    size_t got = 0;
    for (;;) {
        ssize_t n = recv(fd, buf + got, sizeof buf - 1 - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
        if (got == sizeof buf - 1)
            got = 2048; /* keep the head, drop the rest of a big body */
    }
    buf[got] = '\0';
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
        status = 0;
    if (set_cookie) {
        const char *h = buf;
        while ((h = strstr(h, "\r\n")) &&
               strncasecmp(h, "\r\nSet-Cookie: ", 14))
            h += 2;
        set_cookie[0] = '\0';
        if (h) {
            h += 14;
            snprintf(set_cookie, size, "%.*s", (int)strcspn(h, ";\r"), h);
        }
    }
out:
    close(fd);
    return status;
}

static int get_page(int port, const char *cookie)
{
    char req[512];
    snprintf(req, sizeof req,
             "GET /allow_guest_user/ HTTP/1.1\r\nHost: bench\r\n"
             "Cookie: %s\r\nConnection: close\r\n\r\n",
             cookie);
    return http(port, req, NULL, 0);
}

static int post_login(int port, const char *password)
{
    char body[256], req[1024];
    snprintf(body, sizeof body,
             "username=" USER "&password=%s&csrfmiddlewaretoken=" CSRF,
             password);
    snprintf(req, sizeof req,
             "POST /accounts/login/ HTTP/1.1\r\nHost: bench\r\n"
             "Cookie: csrftoken=" CSRF "\r\n"
             "Content-Type: application/x-www-form-urlencoded\r\n"
             "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
             strlen(body), body);
    return http(port, req, NULL, 0);
}

/* ---- the flood ---- */

typedef struct flood {
    int port;
    atomic_bool stop;
    atomic_long refused; /* 200: the form again, "wrong password" */
    atomic_long busy;    /* 503: no hashing slot in time */
    atomic_long other;
} flood;

static void *flooder(void *arg)
{
    flood *f = arg;
    while (!atomic_load(&f->stop)) {
        int st = post_login(f->port, "wrong-password-0");
        if (st == 200)
            atomic_fetch_add(&f->refused, 1);
        else if (st == 503)
            atomic_fetch_add(&f->busy, 1);
        else
            atomic_fetch_add(&f->other, 1);
    }
    return NULL;
}

/* ---- one phase ---- */

typedef struct result {
    int n, errors;
    double p50, p99, max, mean;
    long refused, busy, other;
    /* a real user's right password, tried once a second meanwhile */
    int real_ok, real_busy, real_other;
    double real_ms;
    double drain;
} result;

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct real_user {
    int port;
    atomic_bool *stop;
    int ok, busy, other;
    double total;
} real_user;

static void *real_logins(void *arg)
{
    real_user *r = arg;
    while (!atomic_load(r->stop)) {
        double t0 = now();
        int st = post_login(r->port, PASSWORD);
        double dt = now() - t0;
        if (st == 302) {
            r->ok++;
            r->total += dt;
        } else if (st == 503) {
            r->busy++;
        } else {
            r->other++;
        }
        for (int i = 0; i < 10 && !atomic_load(r->stop); i++)
            usleep(100000);
    }
    return NULL;
}

static result phase(int port, const char *cookie, double seconds, int clients)
{
    result r = {0};
    flood f = {.port = port};
    pthread_t *threads = calloc((size_t)clients + 1, sizeof *threads);
    for (int i = 0; i < clients; i++)
        pthread_create(&threads[i], NULL, flooder, &f);
    real_user ru = {.port = port, .stop = &f.stop};
    if (clients)
        pthread_create(&threads[clients], NULL, real_logins, &ru);
    /* let the flood fill the server before measuring */
    if (clients)
        usleep(500000);
    size_t cap = 1 << 16;
    double *lat = malloc(cap * sizeof *lat);
    double end = now() + seconds;
    while (now() < end && (size_t)r.n < cap) {
        double t0 = now();
        int st = get_page(port, cookie);
        double dt = now() - t0;
        if (st != 200)
            r.errors++;
        lat[r.n++] = dt * 1e3;
    }
    atomic_store(&f.stop, true);
    double t0 = now();
    for (int i = 0; i < clients; i++)
        pthread_join(threads[i], NULL);
    if (clients)
        pthread_join(threads[clients], NULL);
    r.drain = now() - t0;
    qsort(lat, (size_t)r.n, sizeof *lat, cmp);
    r.p50 = r.n ? lat[r.n / 2] : 0;
    r.p99 = r.n ? lat[(size_t)(r.n * 0.99)] : 0;
    r.max = r.n ? lat[r.n - 1] : 0;
    for (int i = 0; i < r.n; i++)
        r.mean += lat[i] / r.n;
    r.refused = atomic_load(&f.refused);
    r.busy = atomic_load(&f.busy);
    r.other = atomic_load(&f.other);
    r.real_ok = ru.ok;
    r.real_busy = ru.busy;
    r.real_other = ru.other;
    r.real_ms = ru.ok ? ru.total / ru.ok * 1e3 : 0;
    free(lat);
    free(threads);
    return r;
}

/* ---- a server per configuration ---- */

typedef struct server {
    guest_ctx *ctx;
    guest_mhd *app;
    struct MHD_Daemon *daemon;
#ifdef BENCH_EVHTTP
    guest_evhttp *ev;
#endif
    int port;
} server;

static bool use_evhttp;

static int server_start(server *s, const char *conninfo, unsigned iterations,
                        unsigned hash_concurrency)
{
    guest_config cfg;
    guest_config_init(&cfg);
    cfg.db_conninfo = conninfo;
    cfg.db_schema = "bench_login_flood";
    cfg.password_iterations = iterations;
    cfg.hash_concurrency = hash_concurrency;
    guest_error err;
    if (guest_ctx_new(&cfg, &s->ctx, &err) != GUEST_OK) {
        fprintf(stderr, "%s\n", err.message);
        return -1;
    }
#ifdef BENCH_EVHTTP
    if (use_evhttp) {
        uint16_t port = 0;
        if (guest_evhttp_new(s->ctx, demo_routes_handler, NULL, &s->ev) !=
                GUEST_OK ||
            guest_evhttp_set_loop_handlers(s->ev, true) != GUEST_OK ||
            guest_evhttp_start(s->ev, "127.0.0.1", 0, &port) != GUEST_OK) {
            fprintf(stderr, "cannot start the server\n");
            return -1;
        }
        s->port = port;
        return 0;
    }
#endif
    if (guest_mhd_new(s->ctx, demo_routes_handler, NULL, &s->app) != GUEST_OK ||
        guest_mhd_start(s->app, "127.0.0.1", 0, &s->daemon) != GUEST_OK) {
        fprintf(stderr, "cannot start the server\n");
        return -1;
    }
    s->port = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT)->port;
    return 0;
}

static void server_stop(server *s)
{
#ifdef BENCH_EVHTTP
    guest_evhttp_free(s->ev);
#endif
    if (s->daemon)
        MHD_stop_daemon(s->daemon);
    guest_mhd_free(s->app);
    guest_ctx_free(s->ctx);
}

int main(int argc, char **argv)
{
    const char *conninfo = argc > 1 ? argv[1] : getenv("GUESTUSER_DB");
    double seconds = argc > 2 ? atof(argv[2]) : 3;
    int clients = argc > 3 ? atoi(argv[3]) : 32;
    long iterations = argc > 4 ? atol(argv[4]) : 1500000;
    const char *server_name = argc > 5 ? argv[5] : "mhd";
#ifdef BENCH_EVHTTP
    use_evhttp = !strcmp(server_name, "evhttp");
#endif
    if (!use_evhttp && strcmp(server_name, "mhd") != 0) {
        fprintf(stderr, "%s: server mhd%s only\n", argv[0],
#ifdef BENCH_EVHTTP
                " or evhttp"
#else
                ""
#endif
        );
        return 1;
    }
    if (!conninfo || seconds <= 0 || seconds > 60 || clients < 1 ||
        clients > 256 || iterations < 1 || iterations > 100000000) {
        fprintf(stderr,
                "usage: %s CONNINFO [SECONDS_PER_PHASE] [CLIENTS] "
                "[ITERATIONS] [mhd|evhttp]\n",
                argv[0]);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    PGconn *raw = PQconnectdb(conninfo);
    if (PQstatus(raw) != CONNECTION_OK) {
        fprintf(stderr, "%s", PQerrorMessage(raw));
        return 2;
    }
    PQclear(PQexec(raw, "SET client_min_messages = warning"));
    PQclear(PQexec(raw, "DROP SCHEMA IF EXISTS bench_login_flood CASCADE"));

    server s = {0};
    if (server_start(&s, conninfo, (unsigned)iterations, 0) != 0)
        return 2;
    unsigned slots = guest_ctx_config(s.ctx)->hash_concurrency;
    if (guest_user_create(s.ctx, USER, PASSWORD, NULL, NULL, NULL) !=
        GUEST_OK) {
        fprintf(stderr, "cannot create the login target\n");
        return 2;
    }
    char cookie[256];
    char first[256];
    snprintf(first, sizeof first,
             "GET /allow_guest_user/ HTTP/1.1\r\nHost: bench\r\n"
             "Connection: close\r\n\r\n");
    if (http(s.port, first, cookie, sizeof cookie) != 200 || !*cookie) {
        fprintf(stderr, "no guest session from /allow_guest_user/\n");
        return 2;
    }
    result alone = phase(s.port, cookie, seconds, 0);
    result slotted = phase(s.port, cookie, seconds, clients);
    server_stop(&s);

    /* the same flood with hashing unbounded, as before the slots */
    server u = {0};
    if (server_start(&u, conninfo, (unsigned)iterations, 1024) != 0)
        return 2;
    result unbounded = phase(u.port, cookie, seconds, clients);
    server_stop(&u);

    printf("returning guest GET /allow_guest_user/ on the demo routes (%s, "
           "in process)\n",
           use_evhttp ? "evhttp, pages on its loop" : "MHD");
    printf("PBKDF2 iterations %ld, %ld online cores, %d flood clients, "
           "%.1f s per phase, hash_wait_ms 2000\n",
           iterations, sysconf(_SC_NPROCESSORS_ONLN), clients, seconds);
    char slotted_name[32];
    snprintf(slotted_name, sizeof slotted_name, "flood, %u slot%s", slots,
             slots == 1 ? "" : "s");
    printf("%-30s %14s %14s %14s\n", "", "alone", slotted_name,
           "flood, no cap");
    result *r[] = {&alone, &slotted, &unbounded};
    printf("%-30s", "GET requests");
    for (int i = 0; i < 3; i++)
        printf(" %14d", r[i]->n);
    printf("\n%-30s", "GET p50 ms");
    for (int i = 0; i < 3; i++)
        printf(" %14.2f", r[i]->p50);
    printf("\n%-30s", "GET p99 ms");
    for (int i = 0; i < 3; i++)
        printf(" %14.2f", r[i]->p99);
    printf("\n%-30s", "GET mean ms");
    for (int i = 0; i < 3; i++)
        printf(" %14.2f", r[i]->mean);
    printf("\n%-30s", "GET max ms");
    for (int i = 0; i < 3; i++)
        printf(" %14.2f", r[i]->max);
    printf("\n%-30s", "GET non-200");
    for (int i = 0; i < 3; i++)
        printf(" %14d", r[i]->errors);
    printf("\n%-30s %14s", "failed logins answered", "-");
    for (int i = 1; i < 3; i++)
        printf(" %14ld", r[i]->refused);
    printf("\n%-30s %14s", "logins refused 503 (slots)", "-");
    for (int i = 1; i < 3; i++)
        printf(" %14ld", r[i]->busy);
    printf("\n%-30s %14s", "logins other/transport error", "-");
    for (int i = 1; i < 3; i++)
        printf(" %14ld", r[i]->other);
    printf("\n%-30s %14s", "real user logins ok/503", "-");
    for (int i = 1; i < 3; i++) {
        char t[32];
        snprintf(t, sizeof t, "%d/%d", r[i]->real_ok, r[i]->real_busy);
        printf(" %14s", t);
    }
    printf("\n%-30s %14s", "real user login ms (ok ones)", "-");
    for (int i = 1; i < 3; i++)
        printf(" %14.0f", r[i]->real_ms);
    printf("\n%-30s %14s", "flood drain after stop, s", "-");
    for (int i = 1; i < 3; i++)
        printf(" %14.1f", r[i]->drain);
    printf("\n");
    PQclear(PQexec(raw, "DROP SCHEMA IF EXISTS bench_login_flood CASCADE"));
    PQfinish(raw);
    return 0;
}

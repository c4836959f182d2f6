/* Prints the per-request cost of the library next to the bare database
 * round trip it is built on, measured side by side in one run:
 *   bench_requests [CONNINFO] [N]   (CONNINFO else env GUESTUSER_DB)
 * Uses its own schema (bench_requests), dropped at start. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <libpq-fe.h>

#include <guestuser/guestuser.h>

typedef struct fake {
    const char *cookie;
    char set_cookie[128];
} fake;

static const char *f_header(void *c, const char *name)
{
    return strcasecmp(name, "Cookie") ? NULL : ((fake *)c)->cookie;
}
static const char *f_method(void *c) { return (void)c, "GET"; }
static const char *f_target(void *c) { return (void)c, "/bench/"; }
static int f_status(void *c, int s) { return (void)c, (void)s, 0; }
static int f_write(void *c, const void *d, size_t n)
{
    return (void)c, (void)d, (void)n, 0;
}
static int f_add_header(void *c, const char *n, const char *v)
{
    fake *f = c;
    if (!strcasecmp(n, "Set-Cookie"))
        snprintf(f->set_cookie, sizeof f->set_cookie, "%.*s",
                 (int)strcspn(v, ";"), v);
    return 0;
}

static const guest_http_ops ops = {
    .header = f_header, .method = f_method, .target = f_target,
    .set_status = f_status, .add_header = f_add_header, .write = f_write,
};

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

static int request(guest_ctx *ctx, fake *f, guest_handler_fn guard)
{
    guest_req *req;
    if (guest_req_new(ctx, &ops, f, &req) != GUEST_OK)
        return -1;
    guard(req, NULL);
    guest_req_free(req);
    return 0;
}

static void allow(guest_req *req, void *ud) { guest_allow(req, page, ud); }

int main(int argc, char **argv)
{
    const char *conninfo = argc > 1 ? argv[1] : getenv("GUESTUSER_DB");
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
    PQclear(PQexec(raw, "DROP SCHEMA IF EXISTS bench_requests CASCADE"));

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

    /* Baseline: one parameterized statement over libpq, the floor for any
     * request that needs the database at all. */
    const char *param = "1";
    double t0 = now();
    for (int i = 0; i < n; i++)
        PQclear(PQexecParams(raw, "SELECT $1::int", 1, NULL, &param, NULL,
                             NULL, 0));
    double t_raw = now() - t0;

    fake f = {0};
    t0 = now();
    for (int i = 0; i < n; i++)
        request(ctx, &f, allow); /* anonymous: creates a guest each time */
    double t_create = now() - t0;

    fake back = {.cookie = f.set_cookie};
    t0 = now();
    for (int i = 0; i < n; i++)
        request(ctx, &back, allow); /* returning guest: resolve only */
    double t_resolve = now() - t0;

    fake none = {0};
    cfg.enabled = false;
    t0 = now();
    for (int i = 0; i < n; i++)
        request(ctx, &none, page); /* unguarded page, no cookie */
    double t_plain = now() - t0;

    printf("requests per case: %d (one connection, same server, one run)\n", n);
    printf("%-34s %10s %10s %8s\n", "case", "req/s", "us/req", "x raw");
    struct {
        const char *name;
        double t;
    } rows[] = {
        {"raw libpq round trip (baseline)", t_raw},
        {"returning guest (GUEST_ALLOW)", t_resolve},
        {"new guest created (GUEST_ALLOW)", t_create},
        {"unguarded page, no database", t_plain},
    };
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++)
        printf("%-34s %10.0f %10.1f %8.2f\n", rows[i].name, n / rows[i].t,
               rows[i].t / n * 1e6, rows[i].t / t_raw);
    guest_ctx_free(ctx);
    PQclear(PQexec(raw, "DROP SCHEMA IF EXISTS bench_requests CASCADE"));
    PQfinish(raw);
    return 0;
}

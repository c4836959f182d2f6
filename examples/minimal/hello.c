/* The site of the minimal examples: / gives every visitor a guest account
 * at once, /guest/ is for guests only, /account/ for registered users. */
#include "hello.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

/* Anonymous visitors become guests before this runs. */
static GUEST_ALLOW(home)
{
    const guest_user *user;
    if (guest_req_user(req, &user, NULL) != GUEST_OK)
        return; /* GUEST_ALLOW answered already (a database outage: 503) */
    guest_res_send(req, 200, "text/html; charset=utf-8", "Hello, ");
    guest_res_write_html(req, guest_user_name(user));
    guest_res_write(req, "!\n", 2);
}

/* Guests only: anyone else goes to the login page. */
static GUEST_REQUIRED(guests_only)
{
    guest_res_send(req, 200, "text/plain; charset=utf-8", "You are a guest.\n");
}

/* Registered users only: guests go to the sign-up page, others to log in. */
static REGULAR_REQUIRED(account)
{
    guest_res_send(req, 200, "text/plain; charset=utf-8",
                   "You have an account.\n");
}

static const guest_route routes[] = {
    {"GET", "/", home, NULL},
    {"GET", "/guest/", guests_only, NULL},
    {"GET", "/account/", account, NULL},
    {NULL, NULL, NULL, NULL},
};
GUEST_ROUTES(hello_handler, routes)

guest_ctx *hello_start(int argc, char **argv, uint16_t *port)
{
    long p = argc > 1 ? strtol(argv[1], NULL, 10) : 8080;
    if (p < 1 || p > 65535) {
        fprintf(stderr, "usage: %s [PORT]\n", argv[0]);
        return NULL;
    }
    *port = (uint16_t)p;
    guest_config cfg;
    guest_config_init(&cfg);
    cfg.db_conninfo = "postgresql:///guestuser";
    /* GUESTUSER_DB, GUESTUSER_SCHEMA, ... as the guestuser tool reads them */
    guest_ctx *ctx;
    guest_error err;
    if (guest_config_from_env(&cfg, &err) != GUEST_OK ||
        guest_ctx_new(&cfg, &ctx, &err) != GUEST_OK) {
        fprintf(stderr, "%s: %s\n", argv[0], err.message);
        return NULL;
    }
    return ctx;
}

/* The signals that end the example: SIGINT (Ctrl-C) and SIGTERM. */
static void stop_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
}

int hello_main(int argc, char **argv, hello_serve_fn serve)
{
    /* Blocked before any thread starts, so that every thread inherits the
     * mask and hello_wait() is the one to receive them. */
    sigset_t set;
    stop_signals(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    uint16_t port;
    guest_ctx *ctx = hello_start(argc, argv, &port);
    if (!ctx)
        return 1;
    guest_status st = serve(ctx, port);
    if (st != GUEST_OK)
        fprintf(stderr, "%s: port %u: %s\n", argv[0], (unsigned)port,
                guest_strerror(st));
    guest_ctx_free(ctx);
    return st == GUEST_OK ? 0 : 1;
}

void hello_wait(uint16_t port)
{
    printf("listening on http://127.0.0.1:%u/\n", (unsigned)port);
    fflush(stdout);
    sigset_t set;
    stop_signals(&set);
    int sig;
    sigwait(&set, &sig);
}

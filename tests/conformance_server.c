/* A test server for the conformance kit: one in-tree adapter serving the
 * conformance table on a random loopback port, against the test database.
 *
 *   conformance_server --server
 * mhd|mhd_event|civetweb|ulfius|evhttp|evhttp_loop
 *                      [--schema NAME]
 *                      [--broken MODE]
 *
 * Prints "url http://127.0.0.1:PORT/" once it listens and serves until
 * SIGTERM or SIGINT. --broken puts a deliberately faulty layer between the
 * adapter and the table, to show that guestuser-conformance catches it:
 *   one-set-cookie  drops every Set-Cookie after a response's first
 *   no-query        hands the library the target without its query string
 *   first-line      hands the library only the first line of a header sent
 *                   on several (the part before the first ", " or "; ")
 *   serial          runs one handler at a time, as an event loop that runs
 *                   them on its own thread does
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <guestuser/conformance.h>
#ifdef TEST_WITH_MHD
#include <guestuser/adapters/mhd.h>
#endif
#ifdef TEST_WITH_CIVETWEB
#include <guestuser/adapters/civetweb.h>
#endif
#ifdef TEST_WITH_ULFIUS
#include <guestuser/adapters/ulfius.h>
#endif
#ifdef TEST_WITH_EVHTTP
#include <guestuser/adapters/evhttp.h>
#endif

typedef struct server {
    guest_ctx *ctx;
    guest_handler_fn handler;
    void *app;
    void *running;
    int port;
    void (*stop)(struct server *s);
} server;

/* ---- one block per adapter: start on 127.0.0.1, any port ---- */

#ifdef TEST_WITH_MHD
static void mhd_stop(server *s)
{
    guest_mhd_stop(s->app, s->running);
    guest_mhd_free(s->app);
}

/* @p workers 0: a thread per connection; else the event mode. */
static guest_status mhd_start_with(server *s, unsigned workers)
{
    guest_mhd *app = NULL;
    struct MHD_Daemon *d = NULL;
    guest_mhd_limits l;
    guest_mhd_limits_init(&l);
    l.workers = workers;
    guest_status st = guest_mhd_new(s->ctx, s->handler, NULL, &app);
    if (st == GUEST_OK)
        st = guest_mhd_set_limits(app, &l);
    if (st == GUEST_OK)
        st = guest_mhd_start(app, "127.0.0.1", 0, &d);
    if (st != GUEST_OK) {
        guest_mhd_free(app);
        return st;
    }
    s->port = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)->port;
    s->app = app;
    s->running = d;
    s->stop = mhd_stop;
    return GUEST_OK;
}

static guest_status mhd_start(server *s)
{
    return mhd_start_with(s, 0);
}

static guest_status mhd_event_start(server *s)
{
    return mhd_start_with(s, 32);
}
#endif

#ifdef TEST_WITH_CIVETWEB
static void civetweb_stop(server *s)
{
    mg_stop(s->running);
    guest_civetweb_free(s->app);
}

static guest_status civetweb_start(server *s)
{
    guest_civetweb *app = NULL;
    struct mg_context *mg = NULL;
    guest_status st = guest_civetweb_new(s->ctx, s->handler, NULL, &app);
    if (st == GUEST_OK)
        st = guest_civetweb_start(app, "127.0.0.1", 0, &mg);
    struct mg_server_port sp;
    if (st == GUEST_OK && mg_get_server_ports(mg, 1, &sp) != 1)
        st = GUEST_ERR_CONFIG;
    if (st != GUEST_OK) {
        if (mg)
            mg_stop(mg);
        guest_civetweb_free(app);
        return st;
    }
    s->port = sp.port;
    s->app = app;
    s->running = mg;
    s->stop = civetweb_stop;
    return GUEST_OK;
}
#endif

#ifdef TEST_WITH_ULFIUS
static void ulfius_stop(server *s)
{
    guest_ulfius_free(s->app);
}

static guest_status ulfius_start(server *s)
{
    guest_ulfius *app = NULL;
    struct _u_instance *in = NULL;
    guest_status st = guest_ulfius_new(s->ctx, s->handler, NULL, &app);
    if (st == GUEST_OK)
        st = guest_ulfius_start(app, "127.0.0.1", 0, &in);
    const union MHD_DaemonInfo *di =
        st == GUEST_OK
            ? MHD_get_daemon_info(in->mhd_daemon, MHD_DAEMON_INFO_BIND_PORT)
            : NULL;
    if (!di) {
        guest_ulfius_free(app);
        return st == GUEST_OK ? GUEST_ERR_CONFIG : st;
    }
    s->port = di->port;
    s->app = app;
    s->running = in;
    s->stop = ulfius_stop;
    return GUEST_OK;
}
#endif

#ifdef TEST_WITH_EVHTTP
static void evhttp_stop(server *s)
{
    guest_evhttp_free(s->app);
}

static guest_status evhttp_start_with(server *s, bool on_loop)
{
    guest_evhttp *app = NULL;
    uint16_t port = 0;
    guest_status st = guest_evhttp_new(s->ctx, s->handler, NULL, &app);
    if (st == GUEST_OK)
        st = guest_evhttp_set_loop_handlers(app, on_loop);
    if (st == GUEST_OK)
        st = guest_evhttp_start(app, "127.0.0.1", 0, &port);
    if (st != GUEST_OK) {
        guest_evhttp_free(app);
        return st;
    }
    s->port = port;
    s->app = app;
    s->stop = evhttp_stop;
    return GUEST_OK;
}

static guest_status evhttp_start(server *s)
{
    return evhttp_start_with(s, false);
}

/* The handlers tried on the loop first, deferred when they block. */
static guest_status evhttp_loop_start(server *s)
{
    return evhttp_start_with(s, true);
}
#endif

static const struct {
    const char *name;
    guest_status (*start)(server *s);
} servers[] = {
#ifdef TEST_WITH_MHD
    {"mhd", mhd_start},
    {"mhd_event", mhd_event_start},
#endif
#ifdef TEST_WITH_CIVETWEB
    {"civetweb", civetweb_start},
#endif
#ifdef TEST_WITH_ULFIUS
    {"ulfius", ulfius_start},
#endif
#ifdef TEST_WITH_EVHTTP
    {"evhttp", evhttp_start},
    {"evhttp_loop", evhttp_loop_start},
#endif
    {NULL, NULL},
};

/* ---- the broken layer: a guest_req over the adapter's guest_req ---- */

typedef struct inner {
    guest_req *outer;
    int cookies;   /* Set-Cookie lines passed on */
    char *path;    /* the target without its query */
    char *cut[16]; /* first-line: the values handed out, freed at the end */
    int ncut;
} inner;

static const char *b_header(void *c, const char *name)
{
    return guest_req_header(((inner *)c)->outer, name);
}
static const char *b_header_first_line(void *c, const char *name)
{
    inner *in = c;
    const char *v = guest_req_header(in->outer, name);
    if (!v || in->ncut == 16)
        return v;
    char *cut = strndup(v, strcspn(v, ",;"));
    if (cut)
        in->cut[in->ncut++] = cut;
    return cut;
}
static const char *b_method(void *c)
{
    return guest_req_method(((inner *)c)->outer);
}
static const char *b_target_whole(void *c)
{
    return guest_req_target(((inner *)c)->outer);
}
static const char *b_target_cut(void *c)
{
    return ((inner *)c)->path;
}
static const char *b_addr(void *c)
{
    return guest_req_peer_addr(((inner *)c)->outer);
}
static int b_body(void *c, const char **data, size_t *len)
{
    return guest_req_body(((inner *)c)->outer, data, len) == GUEST_OK ? 0 : -1;
}
static int b_status(void *c, int status)
{
    return guest_res_set_status(((inner *)c)->outer, status) == GUEST_OK ? 0
                                                                         : -1;
}
static int b_add_header_all(void *c, const char *name, const char *value)
{
    return guest_res_add_header(((inner *)c)->outer, name, value) == GUEST_OK
               ? 0
               : -1;
}
static int b_add_header_one_cookie(void *c, const char *name, const char *value)
{
    inner *in = c;
    if (!strcmp(name, "Set-Cookie") && in->cookies++ > 0)
        return 0; /* the defect: claimed, never sent */
    return b_add_header_all(c, name, value);
}
static int b_write(void *c, const void *data, size_t len)
{
    return guest_res_write(((inner *)c)->outer, data, len) == GUEST_OK ? 0 : -1;
}
static int b_reset(void *c)
{
    return guest_res_reset(((inner *)c)->outer) == GUEST_OK ? 0 : -1;
}

static guest_http_ops broken_ops = {
    GUEST_HTTP_OPS_INIT,
    .header = b_header,
    .method = b_method,
    .target = b_target_whole,
    .client_addr = b_addr,
    .set_status = b_status,
    .add_header = b_add_header_all,
    .write = b_write,
    .body = b_body,
    .reset = b_reset,
};

static void broken_handler(guest_req *outer, void *userdata)
{
    (void)userdata;
    inner in = {.outer = outer};
    const char *target = guest_req_target(outer);
    in.path = strndup(target, strcspn(target, "?"));
    guest_req *req = NULL;
    if (!in.path || guest_req_new(guest_req_ctx(outer), &broken_ops, &in,
                                  &req) != GUEST_OK) {
        guest_res_send(outer, 500, "text/plain", "broken layer failed\n");
    } else {
        guest_conformance_handler(req, NULL);
        guest_req_free(req);
    }
    free(in.path);
    for (int i = 0; i < in.ncut; i++)
        free(in.cut[i]);
}

static pthread_mutex_t serial_lock = PTHREAD_MUTEX_INITIALIZER;

static void serial_handler(guest_req *req, void *userdata)
{
    pthread_mutex_lock(&serial_lock);
    guest_conformance_handler(req, userdata);
    pthread_mutex_unlock(&serial_lock);
}

static const char *conninfo(void)
{
    static char buf[512];
    const char *path = getenv("GUESTUSER_TEST_CONNINFO_FILE");
    FILE *f = path ? fopen(path, "r") : NULL;
    if (!f || !fgets(buf, sizeof buf, f)) {
        fprintf(stderr, "conformance_server: no conninfo in "
                        "GUESTUSER_TEST_CONNINFO_FILE (run through ctest)\n");
        exit(2);
    }
    fclose(f);
    buf[strcspn(buf, "\n")] = '\0';
    return buf;
}

static int usage(void)
{
    fprintf(stderr, "usage: conformance_server --server NAME [--schema NAME] "
                    "[--broken one-set-cookie|no-query|first-line|serial]\n"
                    "  servers:");
    for (int i = 0; servers[i].name; i++)
        fprintf(stderr, " %s", servers[i].name);
    fprintf(stderr, "\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *name = NULL, *schema = "conformance", *broken = NULL;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && !strcmp(argv[i], "--server"))
            name = argv[++i];
        else if (i + 1 < argc && !strcmp(argv[i], "--schema"))
            schema = argv[++i];
        else if (i + 1 < argc && !strcmp(argv[i], "--broken"))
            broken = argv[++i];
        else
            return usage();
    }
    int k = 0;
    while (servers[k].name && (!name || strcmp(servers[k].name, name)))
        k++;
    if (!servers[k].name)
        return usage();
    server s = {.handler = guest_conformance_handler};
    if (broken) {
        if (!strcmp(broken, "one-set-cookie"))
            broken_ops.add_header = b_add_header_one_cookie;
        else if (!strcmp(broken, "no-query"))
            broken_ops.target = b_target_cut;
        else if (!strcmp(broken, "first-line"))
            broken_ops.header = b_header_first_line;
        else if (strcmp(broken, "serial") != 0)
            return usage();
        s.handler =
            strcmp(broken, "serial") == 0 ? serial_handler : broken_handler;
    }

    guest_config cfg;
    guest_config_init(&cfg);
    cfg.db_conninfo = conninfo();
    cfg.db_schema = schema;
    cfg.db_pool_size = 4;
    cfg.db_timeout_ms = 30000;
    guest_conformance_config(&cfg);
    guest_error err = {0};
    guest_status st = guest_ctx_new(&cfg, &s.ctx, &err);
    if (st != GUEST_OK) {
        fprintf(stderr, "conformance_server: guest_ctx_new: %s: %s\n",
                guest_status_name(st), err.message);
        return 1;
    }
    /* the server threads inherit the mask: only sigwait sees the signals */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    st = servers[k].start(&s);
    if (st != GUEST_OK) {
        fprintf(stderr, "conformance_server: %s did not start: %s\n",
                servers[k].name, guest_status_name(st));
        guest_ctx_free(s.ctx);
        return 1;
    }
    printf("url http://127.0.0.1:%d/\n", s.port);
    fflush(stdout);
    int sig;
    sigwait(&set, &sig);
    s.stop(&s);
    guest_ctx_free(s.ctx);
    return 0;
}

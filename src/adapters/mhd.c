/* libmicrohttpd adapter: buffers the response, then queues it in one go,
 * because MHD needs the status and headers before any body byte.
 *
 * Per-request state lives in a per-connection object that MHD's connection
 * notifications create and destroy. MHD skips the request callbacks for
 * requests it refuses on its own (a query string or header block too large
 * for its memory pool, a malformed request line): anything allocated per
 * request would leak then. The connection notification always runs, so
 * nothing here depends on a callback MHD may skip.
 *
 * Two modes. With limits.workers 0 MHD gives each connection a thread and
 * the handler runs on it. Otherwise MHD's one polling thread (epoll) reads
 * every connection; a complete request is suspended and queued, a worker
 * of a bounded pool runs the guards and the handler on it, and resumes it:
 * MHD then calls the access handler once more, which queues the answer. A
 * connection that is still sending costs MHD's buffers and no thread, and
 * the polling thread never waits for PostgreSQL or a password hash. */
#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "guestuser/adapter.h"
#include "guestuser/adapters/mhd.h"

/* libmicrohttpd before 1.0 asks epoll for no EPOLLRDHUP, and a short read
 * ends its reading until the next edge: a client whose FIN comes with its
 * last bytes stays in CLOSE_WAIT, holding its place in the per-address
 * limit, until a timeout (fixed upstream in 1.0.0, its bug 7192). The
 * event mode watches for that itself (watch_peer_close). */
#if defined(__linux__) && MHD_VERSION < 0x01000000
#include <sys/epoll.h>
#define WATCH_RDHUP 1
#else
#define WATCH_RDHUP 0
#endif

typedef struct mhd_conn mhd_conn;

struct guest_mhd {
    guest_ctx *ctx;
    guest_handler_fn handler;
    void *userdata;
    size_t max_body;
    guest_mhd_limits limits;
    /* MHD's error log, at most a line per kind of message per interval. */
    guest_log_limiter *log;
    /* The header-timeout watchdog of the live connections; lock keeps
     * the limits from changing once the first connection is watched. */
    guest_watchdog *watchdog;
    pthread_mutex_t lock;
    /* Event mode: an epoll set of the connections' fds for EPOLLRDHUP,
     * which the watchdog's tick reads (-1: none yet; made under lock). */
    _Atomic int rdhup_fd;
    /* Event mode: the workers and the requests waiting for one, under
     * qlock (see dispatch for its order with MHD's own locks). in_flight
     * counts suspended connections not yet resumed: MHD_stop_daemon()
     * aborts the process while one is left. */
    pthread_mutex_t qlock;
    pthread_cond_t qwake; /* a request queued, or the workers stop */
    pthread_cond_t qidle; /* in_flight reached 0 while draining */
    mhd_conn *todo, *todo_tail;
    size_t queued, in_flight;
    bool draining;     /* guest_mhd_stop(): no request is suspended */
    bool workers_stop; /* the workers end */
    pthread_t *workers;
    unsigned worker_count;
};

/* Where a request of the event mode is: the polling thread's, on a worker
 * (suspended), or answered by a worker and resumed. */
enum req_state { REQ_OURS, REQ_ON_WORKER, REQ_ANSWERED };

struct mhd_conn {
    guest_mhd *app;
    struct MHD_Connection *conn;
    int fd;
    /* The watchdog's entry: a deadline for what the client must send
     * (request headers, then the body), none while the request is ours;
     * in event mode "answering" from the dispatch to a worker until the
     * answer went out, when a closed client's connection is left alone. */
    guest_watched *watch;
    bool in_rdhup_set;
    /* Event mode on this connection's daemon: requests go to a worker. */
    bool suspendable;
    /* The request in progress on this connection. */
    guest_buf target;
    const char *method;
    char addr[INET6_ADDRSTRLEN];
    guest_buf body;
    bool headers_seen;
    guest_response res;
    /* Values of header fields sent on several lines, joined (op_header). */
    guest_joined joined;
    /* Event mode: app->todo's link, and where the request is. The
     * worker's writes (res, state, answer_failed) reach the polling
     * thread through MHD_resume_connection's lock. */
    mhd_conn *job_next;
    enum req_state state;
    bool answer_failed;
};

static void stop_workers(guest_mhd *app);

static void arm(mhd_conn *c)
{
    guest_watched_arm(c->watch, c->app->limits.header_timeout_s);
}

typedef struct header_scan {
    const char *name; /* NULL: the framing checks only */
    guest_field field;
    guest_framing framing;
    /* The request's header block in MHD's read buffer (framing checks
     * only; lo 0: not checked), and whether a line is malformed. */
    uintptr_t lo, hi;
    bool malformed;
} header_scan;

static enum MHD_Result scan_header(void *cls, enum MHD_ValueKind kind,
                                   const char *key, const char *value)
{
    (void)kind;
    header_scan *s = cls;
    if (!key)
        return MHD_YES;
    /* A name with blanks in it is a line MHD took whole that a proxy
     * would fold into the one before or refuse; a bare CR (or another
     * control byte) in a value is a line end MHD kept that a proxy may
     * honour, so a Content-Length behind it would hide. */
    if (guest_header_name_ok(key) != 0 ||
        (value && guest_header_value_ok(value) != 0) ||
        (s->lo &&
         ((uintptr_t)key < s->lo || (uintptr_t)key >= s->hi || !value ||
          (uintptr_t)value < s->lo || (uintptr_t)value >= s->hi)))
        s->malformed = true;
    guest_framing_add(&s->framing, key, value);
    if (s->name && !strcasecmp(key, s->name))
        guest_field_add(&s->field, key, value);
    return MHD_YES;
}

/* A field sent on several lines is seen whole: reading only its first line
 * would let a client put its own X-Forwarded-For line before a proxy's. */
static const char *op_header(void *c, const char *name)
{
    mhd_conn *r = c;
    header_scan s = {.name = name};
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, scan_header, &s);
    return guest_field_value(&s.field, &r->joined);
}

/* Framing a proxy in front might read differently from the server (request
 * smuggling): two Content-Lengths, Content-Length with Transfer-Encoding,
 * two Hosts, a Content-Length that is not a plain number, a
 * Transfer-Encoding other than one line of "chunked" (MHD reads the first
 * of two lines), one in a request older than HTTP/1.1 (RFC 9112 6.1:
 * faulty framing; MHD would decode it and keep the connection), or an
 * obsolete folded line (RFC 9112 5.2), which a proxy may
 * join to the line before with a space, or refuse. MHD from 0.9.77 refuses
 * folded lines itself under the client discipline guest_mhd_start sets.
 * Before, MHD appends the folded line to the previous header's name, in
 * a block of its memory pool outside the read buffer where every other
 * name and value of the header block stays: a name outside the block
 * gives it away. @p method is MHD's, the start of that block.
 * libmicrohttpd 0.9.75 refuses a Content-Length that is not a plain number
 * itself, before the access handler (the check holds whatever version is
 * linked), and reads a Transfer-Encoding other than "chunked" (blanks after
 * it too) as a body that ends with the connection, so that it would answer
 * nothing until the client leaves or the timeout. */
static bool ambiguous_framing(struct MHD_Connection *conn, const char *method,
                              const char *version)
{
    header_scan s = {0};
#if MHD_VERSION < 0x00097701
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
    if (!ci || !method)
        return true;
    s.lo = (uintptr_t)method;
    s.hi = s.lo + ci->header_size;
#else
    (void)method;
#endif
    MHD_get_connection_values(conn, MHD_HEADER_KIND, scan_header, &s);
    return s.malformed ||
           guest_framing_refused(&s.framing,
                                 version && strcmp(version, "HTTP/1.1") == 0);
}

static const char *op_method(void *c)
{
    return ((mhd_conn *)c)->method;
}

static const char *op_target(void *c)
{
    return ((mhd_conn *)c)->target.data;
}

static const char *op_client_addr(void *c)
{
    mhd_conn *r = c;
    if (!r->addr[0]) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
            r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (!ci || !ci->client_addr)
            return NULL;
        const struct sockaddr *sa = ci->client_addr;
        if (sa->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr,
                      r->addr, sizeof r->addr);
        else if (sa->sa_family == AF_INET6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr,
                      r->addr, sizeof r->addr);
    }
    return r->addr[0] ? r->addr : NULL;
}

/* An application may start its own daemon with MHD_USE_TLS; a TLS session
 * on the connection is what makes the request HTTPS. */
static int op_is_https(void *c)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
        ((mhd_conn *)c)->conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    return ci && ci->tls_session;
}

static int op_body(void *c, const char **data, size_t *len)
{
    mhd_conn *r = c;
    *data = r->body.data ? r->body.data : "";
    *len = r->body.len;
    return 0;
}

GUEST_RESPONSE_CALLBACKS(op, mhd_conn, res)

static const guest_http_ops mhd_ops = {GUEST_HTTP_OPS(op)};

/* Forgets the request in progress; the connection object stays. */
static void request_clear(mhd_conn *c)
{
    guest_response_cleanup(&c->res);
    guest_response_init(&c->res);
    guest_buf_cleanup(&c->body);
    c->target.len = 0;
    c->method = NULL;
    c->headers_seen = false;
    c->state = REQ_OURS;
    c->answer_failed = false;
    guest_joined_cleanup(&c->joined);
}

/* The defaults, a whole struct of this library's size. */
static const guest_mhd_limits default_limits = {
    .size = sizeof(guest_mhd_limits),
    .max_connections = 512,
    .max_conns_per_ip = 32,
    .header_timeout_s = 10,
    .idle_timeout_s = 30,
    .workers = 0,
    .max_queued = 1024,
    .pollers = 4,
};

/* The struct of 1.0, the smallest a program can pass. */
#define LIMITS_SIZE_1_0                                                        \
    (offsetof(guest_mhd_limits, idle_timeout_s) + sizeof(unsigned))

#undef guest_mhd_limits_init
void guest_mhd_limits_init_size(guest_mhd_limits *limits, size_t size)
{
    guest_sized_init(limits, size, &default_limits, sizeof default_limits);
}

static void watch_peer_close(void *arg);

guest_status guest_mhd_new(guest_ctx *ctx, guest_handler_fn handler,
                           void *userdata, guest_mhd **out)
{
    if (!ctx || !handler || !out)
        return GUEST_ERR_INVALID;
    guest_mhd *app = calloc(1, sizeof *app);
    if (!app)
        return GUEST_ERR_NOMEM;
    if (guest_watchdog_new(watch_peer_close, app, &app->watchdog) != GUEST_OK)
        goto no_wake;
    if (pthread_mutex_init(&app->lock, NULL) != 0)
        goto no_lock;
    if (pthread_mutex_init(&app->qlock, NULL) != 0)
        goto no_qlock;
    if (pthread_cond_init(&app->qwake, NULL) != 0)
        goto no_qwake;
    if (pthread_cond_init(&app->qidle, NULL) != 0)
        goto no_qidle;
    if (guest_log_limiter_new(ctx, "mhd", GUEST_LOG_LIMIT_INTERVAL_S,
                              &app->log) != GUEST_OK)
        goto no_log;
    app->ctx = ctx;
    app->handler = handler;
    app->userdata = userdata;
    app->max_body = guest_ctx_config(ctx)->max_body_size;
    app->rdhup_fd = -1;
    app->limits = default_limits;
    *out = app;
    return GUEST_OK;
    /* What was made is undone, the last first. */
no_log:
    pthread_cond_destroy(&app->qidle);
no_qidle:
    pthread_cond_destroy(&app->qwake);
no_qwake:
    pthread_mutex_destroy(&app->qlock);
no_qlock:
    pthread_mutex_destroy(&app->lock);
no_lock:
    guest_watchdog_free(app->watchdog);
no_wake:
    free(app);
    return GUEST_ERR_NOMEM;
}

guest_status guest_mhd_set_limits(guest_mhd *app,
                                  const guest_mhd_limits *limits)
{
    /* The program's limits over the defaults of fields it does not know;
     * refused when not filled by guest_mhd_limits_init(). */
    guest_mhd_limits given = default_limits;
    if (!guest_sized_read(limits, LIMITS_SIZE_1_0, &given, sizeof given))
        return GUEST_ERR_INVALID;
    limits = &given;
    if (!app || !limits || limits->max_connections == 0 ||
        limits->header_timeout_s > 3600 || limits->idle_timeout_s > 86400 ||
        limits->workers > 1024 || limits->max_queued == 0 ||
        limits->max_queued > 1000000 || limits->pollers < 1 ||
        limits->pollers > 64)
        return GUEST_ERR_INVALID;
    pthread_mutex_lock(&app->lock);
    bool started = guest_watchdog_busy(app->watchdog);
    if (!started)
        app->limits = *limits;
    pthread_mutex_unlock(&app->lock);
    return started ? GUEST_ERR_INVALID : GUEST_OK;
}

unsigned long guest_mhd_timed_out(const guest_mhd *app)
{
    return app ? guest_watchdog_timed_out(app->watchdog) : 0;
}

void guest_mhd_free(guest_mhd *app)
{
    if (!app)
        return;
    guest_watchdog_free(app->watchdog);
    stop_workers(app);
    if (app->rdhup_fd >= 0)
        close(app->rdhup_fd);
    pthread_cond_destroy(&app->qidle);
    pthread_cond_destroy(&app->qwake);
    pthread_mutex_destroy(&app->qlock);
    pthread_mutex_destroy(&app->lock);
    guest_log_limiter_free(app->log);
    free(app);
}

/* The watchdog's tick, under its lock, so every connection an event names
 * is still watched: the close notification leaves the set (EPOLL_CTL_DEL
 * drops its pending events) before it leaves the watchdog, which takes
 * the lock. */
static void watch_peer_close(void *arg)
{
#if WATCH_RDHUP
    guest_mhd *app = arg;
    int fd = atomic_load(&app->rdhup_fd);
    if (fd < 0)
        return;
    struct epoll_event ev[64];
    int n;
    do {
        n = epoll_wait(fd, ev, 64, 0);
        for (int i = 0; i < n; i++)
            guest_watched_peer_closed(ev[i].data.ptr);
    } while (n == 64);
#else
    (void)arg;
#endif
}

/* Under app->lock: an event-mode connection joins the set. Without a set
 * (out of descriptors) the timeouts still close it, only later. */
static void rdhup_add(guest_mhd *app, mhd_conn *c)
{
#if WATCH_RDHUP
    if (app->rdhup_fd < 0)
        app->rdhup_fd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLRDHUP | EPOLLET,
                             .data.ptr = c->watch};
    c->in_rdhup_set = app->rdhup_fd >= 0 && c->fd >= 0 &&
                      epoll_ctl(app->rdhup_fd, EPOLL_CTL_ADD, c->fd, &ev) == 0;
#else
    (void)app;
    (void)c;
#endif
}

static void rdhup_del(guest_mhd *app, mhd_conn *c)
{
#if WATCH_RDHUP
    if (c->in_rdhup_set)
        epoll_ctl(app->rdhup_fd, EPOLL_CTL_DEL, c->fd, NULL);
#else
    (void)app;
    (void)c;
#endif
}

/* Event mode needs a daemon that can suspend connections and polls them
 * all from its own threads; on any other daemon of an application's the
 * handler runs in the access handler, as in the thread-per-connection
 * mode. */
static bool daemon_suspends(struct MHD_Connection *connection)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_DAEMON);
    if (!ci || !ci->daemon)
        return false;
    const union MHD_DaemonInfo *di =
        MHD_get_daemon_info(ci->daemon, MHD_DAEMON_INFO_FLAGS);
    if (!di)
        return false;
    unsigned flags = (unsigned)di->flags;
    return (flags & (unsigned)MHD_ALLOW_SUSPEND_RESUME) ==
               (unsigned)MHD_ALLOW_SUSPEND_RESUME &&
           !(flags & (unsigned)MHD_USE_THREAD_PER_CONNECTION);
}

void guest_mhd_connection(void *cls, struct MHD_Connection *connection,
                          void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    guest_mhd *app = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        mhd_conn *c = calloc(1, sizeof *c);
        if (!c)
            return; /* guest_mhd_uri_log then works without one */
        c->app = app;
        c->conn = connection;
        guest_response_init(&c->res);
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
            connection, MHD_CONNECTION_INFO_CONNECTION_FD);
        c->fd = ci ? (int)ci->connect_fd : -1;
        c->suspendable = app->limits.workers && daemon_suspends(connection);
        pthread_mutex_lock(&app->lock);
        c->watch = guest_watchdog_add(app->watchdog, c->fd);
        if (!c->watch) {
            pthread_mutex_unlock(&app->lock);
            guest_response_cleanup(&c->res);
            free(c);
            return;
        }
        arm(c);
        if (c->suspendable)
            rdhup_add(app, c);
        if (app->limits.header_timeout_s || c->in_rdhup_set)
            guest_watchdog_start(app->watchdog);
        pthread_mutex_unlock(&app->lock);
        *socket_context = c;
        return;
    }
    mhd_conn *c = *socket_context;
    if (!c)
        return;
    pthread_mutex_lock(&app->lock);
    rdhup_del(app, c);
    guest_watchdog_remove(app->watchdog, c->watch);
    pthread_mutex_unlock(&app->lock);
    request_clear(c);
    guest_response_cleanup(&c->res);
    guest_buf_cleanup(&c->target);
    free(c);
    *socket_context = NULL;
}

static mhd_conn *conn_of(struct MHD_Connection *connection)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

void *guest_mhd_uri_log(void *cls, const char *uri,
                        struct MHD_Connection *connection)
{
    (void)cls;
    mhd_conn *c = conn_of(connection);
    if (!c)
        return NULL;
    /* Whatever a refused or abandoned earlier request left is dropped here
     * at the latest; the buffers' memory is reused or freed, never lost. */
    request_clear(c);
    if (!uri)
        uri = "/";
    if (guest_buf_append(&c->target, uri, strlen(uri)) != 0)
        return NULL;
    return c;
}

/* Hands the collected body to MHD, which frees it with free() once sent:
 * no second copy of the page. */
static enum MHD_Result queue(mhd_conn *r)
{
    guest_response *res = &r->res;
    struct MHD_Response *resp;
    if (res->body.len) {
        resp = MHD_create_response_from_buffer(res->body.len, res->body.data,
                                               MHD_RESPMEM_MUST_FREE);
        if (resp)
            memset(&res->body, 0, sizeof res->body);
    } else {
        resp = MHD_create_response_from_buffer(0, (void *)"",
                                               MHD_RESPMEM_PERSISTENT);
    }
    if (!resp)
        return MHD_NO;
    for (size_t i = 0; i < res->header_count; i++)
        MHD_add_response_header(resp, res->headers[2 * i],
                                res->headers[2 * i + 1]);
    enum MHD_Result ret =
        MHD_queue_response(r->conn, (unsigned)res->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* The adapter's own short answer into r->res; -1 out of memory. */
static int fill_plain(mhd_conn *r, int status, const char *text)
{
    /* Every answer of the adapter's own ends the connection: the request
     * was refused or not read to its end. */
    if (guest_response_plain(&r->res, status, text) != 0 ||
        guest_response_add_header(&r->res, "Connection", "close") != 0)
        return -1;
    return 0;
}

static enum MHD_Result plain(mhd_conn *r, int status, const char *text)
{
    return fill_plain(r, status, text) == 0 ? queue(r) : MHD_NO;
}

/* The guards and the handler on a complete request, its answer left in
 * r->res; false when not even an error page could be made. */
static bool run_handler(guest_mhd *app, mhd_conn *r)
{
    const char *text;
    int refused = guest_run_handler(app->ctx, &mhd_ops, r, app->handler,
                                    app->userdata, &text);
    return !refused || fill_plain(r, refused, text) == 0;
}

/* ---- event mode: the worker pool ---- */

/* Hands an answered request back to MHD. Once resumed, MHD may finish
 * and free the connection at any moment: r is not touched after it. The
 * count drops only then, so guest_mhd_stop() never sees a connection
 * still suspended. */
static void give_back(guest_mhd *app, mhd_conn *r, bool ok)
{
    struct MHD_Connection *conn = r->conn;
    r->answer_failed = !ok;
    r->state = REQ_ANSWERED;
    MHD_resume_connection(conn);
    pthread_mutex_lock(&app->qlock);
    if (--app->in_flight == 0 && app->draining)
        pthread_cond_broadcast(&app->qidle);
    pthread_mutex_unlock(&app->qlock);
}

/* While a connection is suspended MHD neither reads it nor frees it, so
 * a worker may read its headers, address and the adapter's per-request
 * state (op_header and the others) as the thread-per-connection mode
 * does on MHD's thread. */
static void *worker_main(void *arg)
{
    guest_mhd *app = arg;
    pthread_mutex_lock(&app->qlock);
    for (;;) {
        while (!app->todo && !app->workers_stop)
            pthread_cond_wait(&app->qwake, &app->qlock);
        if (!app->todo)
            break;
        mhd_conn *r = app->todo;
        app->todo = r->job_next;
        if (!app->todo)
            app->todo_tail = NULL;
        app->queued--;
        pthread_mutex_unlock(&app->qlock);
        give_back(app, r, run_handler(app, r));
        pthread_mutex_lock(&app->qlock);
    }
    pthread_mutex_unlock(&app->qlock);
    return NULL;
}

/* Under qlock. false when not one worker could start. */
static bool workers_start_locked(guest_mhd *app)
{
    if (app->worker_count)
        return true;
    if (!app->workers)
        app->workers = calloc(app->limits.workers, sizeof *app->workers);
    if (!app->workers)
        return false;
    app->workers_stop = false;
    for (unsigned i = 0; i < app->limits.workers; i++) {
        if (pthread_create(&app->workers[app->worker_count], NULL, worker_main,
                           app) != 0)
            break;
        app->worker_count++;
    }
    return app->worker_count > 0;
}

static void stop_workers(guest_mhd *app)
{
    pthread_mutex_lock(&app->qlock);
    app->workers_stop = true;
    pthread_cond_broadcast(&app->qwake);
    unsigned n = app->worker_count;
    pthread_mutex_unlock(&app->qlock);
    for (unsigned i = 0; i < n; i++)
        pthread_join(app->workers[i], NULL);
    free(app->workers);
    app->workers = NULL;
    app->worker_count = 0;
}

/* Suspends the complete request and queues it for a worker; 503 when
 * the queue is full or the daemon is stopping. qlock is held across
 * MHD_suspend_connection() (the polling thread's own call) and never
 * across MHD_resume_connection(), so no lock order with MHD's. */
static enum MHD_Result dispatch(guest_mhd *app, mhd_conn *r)
{
    pthread_mutex_lock(&app->qlock);
    bool refuse = app->draining || app->queued >= app->limits.max_queued ||
                  !workers_start_locked(app);
    if (!refuse) {
        guest_watched_answering(r->watch, true);
        MHD_suspend_connection(r->conn);
        r->state = REQ_ON_WORKER;
        r->job_next = NULL;
        if (app->todo_tail)
            app->todo_tail->job_next = r;
        else
            app->todo = r;
        app->todo_tail = r;
        app->queued++;
        app->in_flight++;
        pthread_cond_signal(&app->qwake);
    }
    pthread_mutex_unlock(&app->qlock);
    return refuse ? plain(r, 503, "Service Unavailable\n") : MHD_YES;
}

void guest_mhd_stop(guest_mhd *app, struct MHD_Daemon *daemon)
{
    if (!daemon)
        return;
    if (app) {
        pthread_mutex_lock(&app->qlock);
        app->draining = true;
        mhd_conn *dropped = app->todo;
        app->todo = app->todo_tail = NULL;
        app->queued = 0;
        pthread_mutex_unlock(&app->qlock);
        while (dropped) {
            mhd_conn *next = dropped->job_next;
            give_back(app, dropped,
                      fill_plain(dropped, 503, "Service Unavailable\n") == 0);
            dropped = next;
        }
        pthread_mutex_lock(&app->qlock);
        while (app->in_flight)
            pthread_cond_wait(&app->qidle, &app->qlock);
        pthread_mutex_unlock(&app->qlock);
    }
    /* Resumed connections are closed by it, their answers unsent. */
    MHD_stop_daemon(daemon);
    if (app) {
        pthread_mutex_lock(&app->qlock);
        app->draining = false;
        pthread_mutex_unlock(&app->qlock);
    }
}

/* MHD queues no response while a body is arriving (1.0 neither), so the
 * 413 for a body that crosses the limit on its way is written to the
 * socket here, then a FIN, and the access handler returns MHD_NO: MHD
 * closes the connection without reading the rest. A TLS connection cannot
 * be written past MHD; it is only closed. */
static void refuse_arriving_body(struct MHD_Connection *connection)
{
    static const char text[] = "HTTP/1.1 413 Payload Too Large\r\n"
                               "Connection: close\r\n"
                               "Content-Type: text/plain; charset=utf-8\r\n"
                               "Content-Length: 18\r\n\r\n"
                               "Payload Too Large\n";
    const union MHD_ConnectionInfo *tls =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    const union MHD_ConnectionInfo *fd =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
    if ((tls && tls->tls_session) || !fd)
        return;
    if (send(fd->connect_fd, text, sizeof text - 1,
             MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)(sizeof text - 1))
        shutdown(fd->connect_fd, SHUT_WR);
}

/* A daemon started without guest_mhd_connection has nowhere to keep a
 * request that cannot leak: refuse loudly instead of half-working. */
static enum MHD_Result misconfigured(struct MHD_Connection *connection)
{
    static const char text[] =
        "guestuser: the MHD daemon lacks MHD_OPTION_NOTIFY_CONNECTION with "
        "guest_mhd_connection\n";
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        sizeof text - 1, (void *)text, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    enum MHD_Result ret = MHD_queue_response(connection, 500, resp);
    MHD_destroy_response(resp);
    return ret;
}

enum MHD_Result guest_mhd_access(void *cls, struct MHD_Connection *connection,
                                 const char *url, const char *method,
                                 const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **req_cls)
{
    guest_mhd *app = cls;
    mhd_conn *r = *req_cls;
    if (!r) {
        r = conn_of(connection);
        if (!r)
            return misconfigured(connection);
        /* No guest_mhd_uri_log: MHD's decoded path, without the query. */
        request_clear(r);
        if (guest_buf_append(&r->target, url, strlen(url)) != 0)
            return MHD_NO;
        *req_cls = r;
    }
    r->method = method;
    /* MHD calls first with the headers only, before any body byte; answering
     * then would run the handler without the body and skip the size limit. */
    if (!r->headers_seen) {
        r->headers_seen = true;
        /* The body gets a deadline of its own. */
        arm(r);
        if (ambiguous_framing(connection, method, version)) {
            guest_watched_arm(r->watch, 0);
            return plain(r, 400, "Bad Request\n");
        }
        /* A declared length over the limit is refused before the body is
         * read, so a client cannot hold the connection with a huge upload;
         * MHD closes the connection after this answer. */
        if (guest_content_length_over(
                MHD_lookup_connection_value(connection, MHD_HEADER_KIND,
                                            MHD_HTTP_HEADER_CONTENT_LENGTH),
                app->max_body)) {
            guest_watched_arm(r->watch, 0);
            return plain(r, 413, "Payload Too Large\n");
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (*upload_data_size > app->max_body - r->body.len) {
            guest_watched_arm(r->watch, 0);
            refuse_arriving_body(connection);
            return MHD_NO;
        }
        if (guest_buf_append(&r->body, upload_data, *upload_data_size) != 0)
            return MHD_NO;
        *upload_data_size = 0;
        return MHD_YES;
    }
    /* The request is complete: from here on the time is the handler's. */
    guest_watched_arm(r->watch, 0);
    if (r->state == REQ_ANSWERED) {
        /* Resumed: a worker has answered. */
        r->state = REQ_OURS;
        return r->answer_failed ? MHD_NO : queue(r);
    }
    if (r->suspendable)
        return dispatch(app, r);
    return run_handler(app, r) ? queue(r) : MHD_NO;
}

void guest_mhd_completed(void *cls, struct MHD_Connection *connection,
                         void **req_cls, enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)connection;
    (void)toe;
    mhd_conn *r = *req_cls;
    *req_cls = NULL;
    if (!r)
        return;
    request_clear(r);
    guest_watched_answering(r->watch, false);
    /* A kept-alive connection has the same time for its next request. */
    arm(r);
}

/* MHD logs a line for every connection it refuses or loses (the connection
 * limit, a client gone mid-request): slow or hostile clients would fill the
 * disk. Its format string tells one kind of message from another. */
__attribute__((format(printf, 2, 0))) static void
log_mhd(void *cls, const char *fmt, va_list ap)
{
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    guest_log_limited(((guest_mhd *)cls)->log, GUEST_LOG_WARNING, fmt, line);
}

guest_status guest_mhd_start(guest_mhd *app, const char *bind_addr,
                             uint16_t port, struct MHD_Daemon **out)
{
    if (!app || !out)
        return GUEST_ERR_INVALID;
    struct sockaddr_storage ss;
    /* Event mode: epoll where there is one (MHD_USE_AUTO), no limit of
     * FD_SETSIZE on the connections. */
    unsigned flags = app->limits.workers
                         ? MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO |
                               MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG
                         : MHD_USE_INTERNAL_POLLING_THREAD |
                               MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL |
                               MHD_USE_ERROR_LOG;
    int family = guest_sockaddr_parse(bind_addr, port, &ss);
    if (!family)
        return GUEST_ERR_INVALID;
    if (family == AF_INET6)
        flags |= MHD_USE_IPv6;
    if (app->limits.workers) {
        /* Started here rather than on the first request, which would
         * wait for its workers to be made. */
        pthread_mutex_lock(&app->qlock);
        bool ok = workers_start_locked(app);
        pthread_mutex_unlock(&app->qlock);
        if (!ok)
            return GUEST_ERR_NOMEM;
    }
    const guest_mhd_limits *l = &app->limits;
    struct MHD_OptionItem ops[] = {
        /* First, or MHD logs a warning of its own on stderr. */
        {MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)log_mhd, app},
        {MHD_OPTION_SOCK_ADDR, 0, &ss},
        {MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)guest_mhd_connection, app},
        {MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)guest_mhd_uri_log, app},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)guest_mhd_completed, app},
        {MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)l->idle_timeout_s, NULL},
        {MHD_OPTION_CONNECTION_LIMIT, (intptr_t)l->max_connections, NULL},
        {MHD_OPTION_PER_IP_CONNECTION_LIMIT, (intptr_t)l->max_conns_per_ip,
         NULL},
#if MHD_VERSION >= 0x00097701
        /* Refuses obsolete folded lines and bare LFs (see
         * ambiguous_framing). */
        {MHD_OPTION_CLIENT_DISCIPLINE_LVL, 1, NULL},
#endif
        /* Several polling threads, each with its own epoll set and its
         * share of the connections: a burst of bytes from thousands of
         * slow clients is read on every core, and a request that arrives
         * behind it waits for a share of it only. */
        {l->workers && l->pollers > 1 ? MHD_OPTION_THREAD_POOL_SIZE
                                      : MHD_OPTION_END,
         (intptr_t)l->pollers, NULL},
        {MHD_OPTION_END, 0, NULL},
    };
    *out = MHD_start_daemon(flags, port, NULL, NULL, guest_mhd_access, app,
                            MHD_OPTION_ARRAY, ops, MHD_OPTION_END);
    return *out ? GUEST_OK : GUEST_ERR_CONFIG;
}

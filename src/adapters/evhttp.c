/* libevent evhttp adapter. The library's guards and views wait for
 * PostgreSQL and hash passwords; on an event loop that would stop every
 * other connection. So the loop thread only reads a request (evhttp buffers
 * it whole), checks it, and copies what the library needs into a job; a
 * worker thread runs the handler on that copy and collects the response;
 * the loop thread sends it. The loop never touches the library, the
 * workers never touch libevent. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include "guestuser/adapter.h"
#include "guestuser/adapters/evhttp.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http_struct.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>

typedef struct ev_conn ev_conn;

/* A connection evhttp accepted, counted once on_fresh runs. */
struct fresh_bev {
    struct bufferevent *bev;
};

/* One request, copied off the loop: the worker reads only this. */
typedef struct job {
    struct job *next;
    guest_evhttp *app;
    /* Loop thread only: NULL once the connection is gone (its request with
     * it), and then the response is dropped. */
    struct evhttp_request *ereq;
    ev_conn *conn;
    char *method;
    char *target;
    char addr[INET6_ADDRSTRLEN];
    bool head;
    char **headers; /* name, value, ... */
    size_t header_count;
    guest_buf body;
    guest_response res;
    /* Values of header fields sent on several lines, joined (op_header). */
    guest_joined joined;
    /* Made on the loop, where its session is resolved (guest_req_resolve);
     * the handler runs with it on the loop or on a worker. */
    guest_req *req;
} job;

/* A client address and its open connections (loop thread only). */
typedef struct addr_count {
    struct addr_count *next;
    unsigned n;
    char addr[INET6_ADDRSTRLEN];
} addr_count;

struct ev_conn {
    ev_conn *next; /* in its bucket of conn_map */
    guest_evhttp *app;
    struct evhttp_connection *evcon;
    struct event *timer; /* header_timeout_s */
    addr_count *counted;
    job *busy; /* the request on a worker, if any */
    /* The raw request head as it arrives (scan_head): bytes of the input
     * buffer already looked at, whether the head is still coming, where
     * the last line began, and whether a folded line was seen. */
    struct evbuffer_cb_entry *scan;
    size_t scanned;
    size_t line_len;
    unsigned lines;
    bool in_head;
    bool folded;
};

#define ADDR_BUCKETS 1024
#define CONN_BUCKETS 4096

struct guest_evhttp {
    guest_ctx *ctx;
    guest_handler_fn handler;
    void *userdata;
    size_t max_body;
    guest_evhttp_limits limits;
    guest_log_limiter *log;
    bool loop_handlers; /* guest_evhttp_set_loop_handlers() */

    /* The loop's session lookups (loop thread only): the resolver and the
     * event watching its socket, with what that event was made for. */
    guest_resolver *resolver;
    struct event *db_ev;
    int db_fd;
    short db_what;

    /* The loop; `own_*` when guest_evhttp_start() made it. */
    struct event_base *base;
    struct evhttp *http;
    bool attached, own_loop, loop_running;
    pthread_t loop_thread;
    struct event *wake_ev;  /* the workers' pipe: responses are ready */
    struct event *fresh_ev; /* connections accepted, not yet counted */
    int wake[2];

    /* Loop thread only. */
    struct fresh_bev *fresh;
    size_t fresh_count, fresh_cap;
    addr_count *addrs[ADDR_BUCKETS];
    ev_conn *conns[CONN_BUCKETS];
    unsigned connections;

    /* The workers and the two queues, under mu. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    job *todo, *todo_tail;
    job *done, *done_tail;
    size_t queued;
    bool stopping;
    bool quit; /* guest_evhttp_stop(): the loop thread ends */
    pthread_t *workers;
    unsigned worker_count;

    atomic_ulong timed_out;
    atomic_ulong refused;
};

/* ---- the request as the library sees it (worker threads) ---- */

/* A field sent on several lines is seen whole, as RFC 9110 5.3 joins
 * them: reading only its first line would let a client put its own
 * X-Forwarded-For line before a proxy's. */
static const char *op_header(void *c, const char *name)
{
    job *j = c;
    guest_field f = {0};
    for (size_t i = 0; i < j->header_count; i++)
        if (strcasecmp(j->headers[2 * i], name) == 0)
            guest_field_add(&f, name, j->headers[2 * i + 1]);
    return guest_field_value(&f, &j->joined);
}

static const char *op_method(void *c)
{
    return ((job *)c)->method;
}

static const char *op_target(void *c)
{
    return ((job *)c)->target;
}

static const char *op_client_addr(void *c)
{
    job *j = c;
    return j->addr[0] ? j->addr : NULL;
}

static int op_body(void *c, const char **data, size_t *len)
{
    job *j = c;
    *data = j->body.data ? j->body.data : "";
    *len = j->body.len;
    return 0;
}

GUEST_RESPONSE_CALLBACKS(op, job, res)

static const guest_http_ops evhttp_ops = {
    GUEST_HTTP_OPS_INIT,    .header = op_header,           .method = op_method,
    .target = op_target,    .client_addr = op_client_addr, .body = op_body,
    GUEST_RESPONSE_OPS(op),
};

static void job_free(job *j)
{
    if (!j)
        return;
    free(j->method);
    free(j->target);
    for (size_t i = 0; i < 2 * j->header_count; i++)
        free(j->headers[i]);
    free(j->headers);
    guest_req_free(j->req);
    guest_buf_cleanup(&j->body);
    guest_response_cleanup(&j->res);
    guest_joined_cleanup(&j->joined);
    free(j);
}

static void run_job(job *j)
{
    j->app->handler(j->req, j->app->userdata);
}

/* Wakes the loop. A full pipe already holds a wake-up, so EAGAIN is
 * fine. */
static void wake_loop(guest_evhttp *app)
{
    char b = 1;
    ssize_t n;
    do
        n = write(app->wake[1], &b, 1);
    while (n < 0 && errno == EINTR);
}

static void *worker_main(void *arg)
{
    guest_evhttp *app = arg;
    pthread_mutex_lock(&app->mu);
    for (;;) {
        while (!app->todo && !app->stopping)
            pthread_cond_wait(&app->cv, &app->mu);
        if (app->stopping)
            break;
        job *j = app->todo;
        app->todo = j->next;
        if (!app->todo)
            app->todo_tail = NULL;
        app->queued--;
        pthread_mutex_unlock(&app->mu);

        run_job(j);

        pthread_mutex_lock(&app->mu);
        j->next = NULL;
        bool was_empty = !app->done;
        if (app->done_tail)
            app->done_tail->next = j;
        else
            app->done = j;
        app->done_tail = j;
        if (was_empty)
            wake_loop(app);
    }
    pthread_mutex_unlock(&app->mu);
    return NULL;
}

/* ---- connections (loop thread) ---- */

static size_t hash_str(const char *s)
{
    size_t h = 5381;
    for (; *s; s++)
        h = h * 33 + (unsigned char)*s;
    return h;
}

static size_t hash_ptr(const void *p)
{
    uintptr_t x = (uintptr_t)p;
    return (size_t)((x >> 4) ^ (x >> 16));
}

static ev_conn *conn_find(guest_evhttp *app, struct evhttp_connection *evcon)
{
    for (ev_conn *c = app->conns[hash_ptr(evcon) % CONN_BUCKETS]; c;
         c = c->next)
        if (c->evcon == evcon)
            return c;
    return NULL;
}

static void conn_unlink(guest_evhttp *app, ev_conn *conn)
{
    ev_conn **p = &app->conns[hash_ptr(conn->evcon) % CONN_BUCKETS];
    while (*p && *p != conn)
        p = &(*p)->next;
    if (*p)
        *p = conn->next;
}

static addr_count *addr_take(guest_evhttp *app, const char *addr)
{
    addr_count **head = &app->addrs[hash_str(addr) % ADDR_BUCKETS];
    for (addr_count *a = *head; a; a = a->next)
        if (strcmp(a->addr, addr) == 0)
            return a;
    addr_count *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    snprintf(a->addr, sizeof a->addr, "%s", addr);
    a->next = *head;
    *head = a;
    return a;
}

static void addr_release(guest_evhttp *app, addr_count *a)
{
    if (!a || --a->n)
        return;
    addr_count **p = &app->addrs[hash_str(a->addr) % ADDR_BUCKETS];
    while (*p && *p != a)
        p = &(*p)->next;
    if (*p)
        *p = a->next;
    free(a);
}

/* evhttp calls it once for each connection, as the connection goes
 * (closed by either side, timed out, or evhttp_free). A request still on
 * a worker is freed with it: its job must not answer it. */
static void on_close(struct evhttp_connection *evcon, void *arg)
{
    ev_conn *conn = arg;
    guest_evhttp *app = conn->app;
    /* evhttp drains the input after this: the scanner must not see it. */
    struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
    if (bev && conn->scan)
        evbuffer_remove_cb_entry(bufferevent_get_input(bev), conn->scan);
    if (conn->busy) {
        conn->busy->ereq = NULL;
        conn->busy->conn = NULL;
    }
    conn_unlink(app, conn);
    addr_release(app, conn->counted);
    app->connections--;
    event_free(conn->timer);
    free(conn);
}

/* A client that has not sent a whole request in time, however steadily
 * it trickles (evhttp's own timeout restarts with every byte). */
static void on_header_timeout(evutil_socket_t fd, short what, void *arg)
{
    ev_conn *conn = arg;
    (void)fd;
    (void)what;
    if (conn->busy)
        return;
    atomic_fetch_add_explicit(&conn->app->timed_out, 1, memory_order_relaxed);
    evhttp_connection_free(conn->evcon); /* on_close frees conn */
}

static void arm_timer(ev_conn *conn)
{
    unsigned s = conn->app->limits.header_timeout_s;
    if (!s)
        return;
    struct timeval tv = {.tv_sec = (time_t)s};
    evtimer_add(conn->timer, &tv);
}

/* evhttp joins an obsolete folded header line (RFC 9112 5.2) to the one
 * before it with a space, so no trace of it is left once a request is
 * parsed, while a proxy in front may have read it as a header of its own.
 * So the head's raw bytes are looked at as they arrive, before evhttp
 * parses them (input buffer callbacks run first): a line of the head that
 * starts with a blank marks the request, which then gets 400 and the
 * close. Only the head is looked at; it ends at its empty line, and the
 * next one begins when the response has gone (reading stops meanwhile). */
static void scan_bytes(ev_conn *conn, struct evbuffer *in)
{
    size_t len = evbuffer_get_length(in);
    while (conn->in_head && conn->scanned < len) {
        unsigned char chunk[512];
        struct evbuffer_ptr at;
        if (evbuffer_ptr_set(in, &at, conn->scanned, EVBUFFER_PTR_SET) != 0)
            return;
        ev_ssize_t n = evbuffer_copyout_from(in, &at, chunk, sizeof chunk);
        if (n <= 0)
            return;
        for (ev_ssize_t i = 0; i < n && conn->in_head; i++) {
            unsigned char c = chunk[i];
            conn->scanned++;
            if (c == '\n') {
                /* An empty line ends the head, but not before the request
                 * line: evhttp skips empty lines there. */
                if (conn->line_len == 0 && conn->lines > 0)
                    conn->in_head = false;
                else if (conn->line_len > 0)
                    conn->lines++;
                conn->line_len = 0;
            } else if (c != '\r' || conn->line_len > 0) {
                if (conn->line_len == 0 && conn->lines > 0 &&
                    (c == ' ' || c == '\t'))
                    conn->folded = true;
                conn->line_len++;
            }
        }
    }
}

static void on_input(struct evbuffer *in, const struct evbuffer_cb_info *info,
                     void *arg)
{
    ev_conn *conn = arg;
    /* evhttp drains from the front what it has parsed. */
    conn->scanned -=
        info->n_deleted < conn->scanned ? info->n_deleted : conn->scanned;
    if (info->n_added)
        scan_bytes(conn, in);
}

/* A new request head begins at the input buffer's front. */
static void scan_restart(ev_conn *conn)
{
    conn->scanned = 0;
    conn->line_len = 0;
    conn->lines = 0;
    conn->in_head = true;
    conn->folded = false;
    struct bufferevent *bev = evhttp_connection_get_bufferevent(conn->evcon);
    if (bev && conn->scan)
        scan_bytes(conn, bufferevent_get_input(bev));
}

/* Counts a new connection under its address, or refuses it (closes it
 * before it is read) beyond max_connections or max_conns_per_ip. */
static void conn_register(guest_evhttp *app, struct evhttp_connection *evcon,
                          int fd, bool may_refuse)
{
    char addr[INET6_ADDRSTRLEN] = "";
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (fd >= 0 && getpeername(fd, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET)
            inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, addr,
                      sizeof addr);
        else if (ss.ss_family == AF_INET6)
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, addr,
                      sizeof addr);
    }
    addr_count *a = addr[0] ? addr_take(app, addr) : NULL;
    unsigned per_ip = app->limits.max_conns_per_ip;
    bool over = app->connections >= app->limits.max_connections ||
                (a && per_ip && a->n >= per_ip);
    ev_conn *conn = NULL;
    if (!(over && may_refuse))
        conn = calloc(1, sizeof *conn);
    if (conn)
        conn->timer = evtimer_new(app->base, on_header_timeout, conn);
    if (!conn || !conn->timer) {
        if (conn)
            free(conn);
        if (a && !a->n) {
            a->n = 1;
            addr_release(app, a);
        }
        /* From on_request (may_refuse false) the connection is in use:
         * it is served uncounted rather than freed under evhttp. */
        if (may_refuse) {
            atomic_fetch_add_explicit(&app->refused, 1, memory_order_relaxed);
            evhttp_connection_free(evcon);
        }
        return;
    }
    conn->app = app;
    conn->evcon = evcon;
    conn->counted = a;
    if (a)
        a->n++;
    app->connections++;
    size_t b = hash_ptr(evcon) % CONN_BUCKETS;
    conn->next = app->conns[b];
    app->conns[b] = conn;
    evhttp_connection_set_closecb(evcon, on_close, conn);
    struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
    if (bev && may_refuse)
        conn->scan =
            evbuffer_add_cb(bufferevent_get_input(bev), on_input, conn);
    scan_restart(conn);
    arm_timer(conn);
}

/* evhttp gives the accepting code no hook with the socket; it asks for a
 * bufferevent first and sets the socket on it afterwards, in the same
 * callback. So the new bufferevents are kept here and counted just after,
 * from an event made active now: active events run before the loop polls
 * again, so before any byte of the new connection is read. */
static struct bufferevent *on_new_bev(struct event_base *base, void *arg)
{
    guest_evhttp *app = arg;
    struct bufferevent *bev = bufferevent_socket_new(base, -1, 0);
    if (!bev)
        return NULL;
    if (app->fresh_count == app->fresh_cap) {
        size_t cap = app->fresh_cap ? app->fresh_cap * 2 : 64;
        struct fresh_bev *f = realloc(app->fresh, cap * sizeof *f);
        if (!f)
            return bev; /* served uncounted; gencb counts it */
        app->fresh = f;
        app->fresh_cap = cap;
    }
    app->fresh[app->fresh_count++].bev = bev;
    event_active(app->fresh_ev, EV_READ, 0);
    return bev;
}

static void on_fresh(evutil_socket_t fd, short what, void *arg)
{
    guest_evhttp *app = arg;
    (void)fd;
    (void)what;
    size_t n = app->fresh_count;
    app->fresh_count = 0;
    for (size_t i = 0; i < n; i++) {
        struct bufferevent *bev = app->fresh[i].bev;
        bufferevent_data_cb rcb, wcb;
        bufferevent_event_cb ecb;
        void *evcon = NULL;
        /* evhttp's callbacks on the bufferevent carry its connection. */
        bufferevent_getcb(bev, &rcb, &wcb, &ecb, &evcon);
        if (evcon && !conn_find(app, evcon))
            conn_register(app, evcon, bufferevent_getfd(bev), true);
    }
}

/* ---- framing (loop thread) ---- */

/* Framing a proxy in front might read differently from the server
 * (request smuggling): two Content-Lengths, Content-Length with
 * Transfer-Encoding, two Hosts, a Content-Length that is not a plain
 * number (evhttp reads it with strtoll, which takes a sign and blanks), a
 * Transfer-Encoding other than one line of "chunked" (evhttp
 * reads only the first line, and takes any other value as no coding), or
 * one in a request older than HTTP/1.1; a header name that is not a token
 * or a value with a control byte. evhttp has parsed the request already,
 * so the answer is a 400 and the close: whatever follows on the
 * connection is never read. */
static bool bad_framing(struct evhttp_request *ereq)
{
    struct evkeyvalq *hs = evhttp_request_get_input_headers(ereq);
    guest_framing f = {0};
    struct evkeyval *h;
    TAILQ_FOREACH(h, hs, next)
    {
        if (guest_header_name_ok(h->key) != 0 ||
            guest_header_value_ok(h->value) != 0)
            return true;
        guest_framing_add(&f, h->key, h->value);
    }
    return guest_framing_refused(&f, ereq->major == 1 && ereq->minor >= 1);
}

/* ---- answering (loop thread) ---- */

static void on_complete(struct evhttp_request *ereq, void *arg)
{
    guest_evhttp *app = arg;
    ev_conn *conn = conn_find(app, evhttp_request_get_connection(ereq));
    if (conn) {
        scan_restart(conn);
        arm_timer(conn);
    }
}

static void send_response(guest_evhttp *app, struct evhttp_request *ereq,
                          const guest_response *res, bool head, bool close)
{
    struct evkeyvalq *out = evhttp_request_get_output_headers(ereq);
    int status = res->status;
    /* RFC 9110: no body for HEAD, 1xx, 204 and 304; no Content-Length for
     * 1xx and 204, nor for a 304 whose length would be the GET's. */
    bool no_length = status < 200 || status == 204 || status == 304;
    for (size_t i = 0; i < res->header_count; i++) {
        const char *name = res->headers[2 * i];
        const char *value = res->headers[2 * i + 1];
        /* The adapter frames the body; a handler's framing headers would
         * contradict it. Connection is evhttp's, except a close. */
        if (strcasecmp(name, "Content-Length") == 0 ||
            strcasecmp(name, "Transfer-Encoding") == 0)
            continue;
        if (strcasecmp(name, "Connection") == 0) {
            close = close || guest_header_has_token(value, "close");
            continue;
        }
        if (evhttp_add_header(out, name, value) != 0)
            guest_log_limited(app->log, GUEST_LOG_WARNING,
                              "response header dropped",
                              "response header dropped");
    }
    if (close)
        evhttp_add_header(out, "Connection", "close");
    if (!no_length) {
        char len[32];
        snprintf(len, sizeof len, "%zu", res->body.len);
        evhttp_add_header(out, "Content-Length", len);
    }
    struct evbuffer *body = evbuffer_new();
    if (body && !no_length && !head && res->body.len)
        evbuffer_add(body, res->body.data, res->body.len);
    evhttp_request_set_on_complete_cb(ereq, on_complete, app);
    evhttp_send_reply(ereq, status, NULL, body);
    evbuffer_free(body);
}

static void answer_now(guest_evhttp *app, struct evhttp_request *ereq,
                       int status, const char *text, bool close)
{
    guest_response res;
    guest_response_init(&res);
    /* Out of memory the answer is its status alone. */
    (void)guest_response_plain(&res, status, text);
    send_response(app, ereq, &res, false, close);
    guest_response_cleanup(&res);
}

static void answer_job(guest_evhttp *app, job *j);

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    guest_evhttp *app = arg;
    (void)what;
    char buf[256];
    while (read(fd, buf, sizeof buf) > 0)
        ;
    pthread_mutex_lock(&app->mu);
    job *j = app->done;
    app->done = app->done_tail = NULL;
    bool quit = app->quit;
    pthread_mutex_unlock(&app->mu);
    if (quit)
        event_base_loopbreak(app->base);
    while (j) {
        job *next = j->next;
        answer_job(app, j);
        j = next;
    }
}

static char *dup_or_empty(const char *s)
{
    return strdup(s ? s : "");
}

/* What the worker needs, copied: the evhttp_request stays on the loop. */
static job *copy_request(guest_evhttp *app, struct evhttp_request *ereq,
                         ev_conn *conn)
{
    job *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->app = app;
    j->ereq = ereq;
    j->conn = conn;
    guest_response_init(&j->res);
    const char *method;
    switch (evhttp_request_get_command(ereq)) {
    case EVHTTP_REQ_GET:
        method = "GET";
        break;
    case EVHTTP_REQ_POST:
        method = "POST";
        break;
    case EVHTTP_REQ_HEAD:
        method = "HEAD";
        break;
    case EVHTTP_REQ_PUT:
        method = "PUT";
        break;
    case EVHTTP_REQ_DELETE:
        method = "DELETE";
        break;
    case EVHTTP_REQ_OPTIONS:
        method = "OPTIONS";
        break;
    case EVHTTP_REQ_TRACE:
        method = "TRACE";
        break;
    case EVHTTP_REQ_CONNECT:
        method = "CONNECT";
        break;
    case EVHTTP_REQ_PATCH:
        method = "PATCH";
        break;
    default:
        method = "GET";
        break;
    }
    j->head = evhttp_request_get_command(ereq) == EVHTTP_REQ_HEAD;
    j->method = strdup(method);
    j->target = dup_or_empty(evhttp_request_get_uri(ereq));
    if (conn && conn->counted)
        snprintf(j->addr, sizeof j->addr, "%s", conn->counted->addr);
    struct evkeyvalq *hs = evhttp_request_get_input_headers(ereq);
    struct evkeyval *h;
    size_t n = 0;
    TAILQ_FOREACH(h, hs, next)
    n++;
    j->headers = calloc(n ? 2 * n : 1, sizeof *j->headers);
    bool ok = j->method && j->target && j->headers;
    if (ok) {
        TAILQ_FOREACH(h, hs, next)
        {
            char *k = strdup(h->key), *v = strdup(h->value);
            j->headers[2 * j->header_count] = k;
            j->headers[2 * j->header_count + 1] = v;
            j->header_count++;
            if (!k || !v) {
                ok = false;
                break;
            }
        }
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(ereq);
    size_t blen = evbuffer_get_length(in);
    if (ok && blen) {
        unsigned char *p = evbuffer_pullup(in, -1);
        ok = p && guest_buf_append(&j->body, p, blen) == 0;
    }
    if (!ok) {
        job_free(j);
        return NULL;
    }
    return j;
}

/* Hands @p j to the workers; false when the queue is full or stopping. */
static bool enqueue(guest_evhttp *app, job *j)
{
    pthread_mutex_lock(&app->mu);
    bool full = app->queued >= app->limits.max_queued || app->stopping;
    if (!full) {
        if (app->todo_tail)
            app->todo_tail->next = j;
        else
            app->todo = j;
        app->todo_tail = j;
        app->queued++;
        pthread_cond_signal(&app->cv);
    }
    pthread_mutex_unlock(&app->mu);
    return !full;
}

/* Sends @p j's response now, if its client is still there, and frees it. */
static void answer_job(guest_evhttp *app, job *j)
{
    if (j->ereq) {
        if (j->conn)
            j->conn->busy = NULL;
        send_response(app, j->ereq, &j->res, j->head, false);
    }
    job_free(j);
}

/* The session of @p j is known (or left to the guard): its handler runs
 * on the loop when allowed and it needs nothing that blocks, else on a
 * worker. */
static void on_resolved(guest_req *req, void *arg)
{
    job *j = arg;
    guest_evhttp *app = j->app;
    if (app->stopping) { /* guest_evhttp_free(): its client is gone */
        job_free(j);
        return;
    }
    if (app->loop_handlers &&
        guest_req_try_on_loop(req, app->handler, app->userdata)) {
        answer_job(app, j);
        return;
    }
    /* A new guest's statement is in flight on the loop's connection: its
     * answer calls this again. */
    if (guest_req_parked(req))
        return;
    if (enqueue(app, j))
        return;
    struct evhttp_request *ereq = j->ereq;
    if (j->conn)
        j->conn->busy = NULL;
    job_free(j);
    if (ereq)
        answer_now(app, ereq, 503, "Service Unavailable\n", false);
}

static void on_db(evutil_socket_t fd, short what, void *arg);

/* Watches what the resolver asks for after each call into it. Re-adding
 * the same persistent event only moves its timeout. */
static void db_watch(guest_evhttp *app)
{
    unsigned ev;
    int ms;
    int fd = guest_resolver_watch(app->resolver, &ev, &ms);
    short what = (short)(((ev & GUEST_IO_READ) ? EV_READ : 0) |
                         ((ev & GUEST_IO_WRITE) ? EV_WRITE : 0));
    if (app->db_ev &&
        (fd != app->db_fd || what != app->db_what || (ev & GUEST_IO_NEW))) {
        event_free(app->db_ev);
        app->db_ev = NULL;
    }
    if (fd < 0 || !what)
        return;
    if (!app->db_ev) {
        app->db_ev = event_new(app->base, fd, what | EV_PERSIST, on_db, app);
        app->db_fd = fd;
        app->db_what = what;
        if (!app->db_ev)
            return; /* out of memory: lookups time out with the next one */
    }
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    event_add(app->db_ev, ms >= 0 ? &tv : NULL);
}

static void on_db(evutil_socket_t fd, short what, void *arg)
{
    guest_evhttp *app = arg;
    (void)fd;
    (void)what;
    guest_resolver_io(app->resolver);
    db_watch(app);
}

static void on_request(struct evhttp_request *ereq, void *arg)
{
    guest_evhttp *app = arg;
    struct evhttp_connection *evcon = evhttp_request_get_connection(ereq);
    ev_conn *conn = conn_find(app, evcon);
    if (!conn) {
        /* Not counted at accept time (out of memory there): count it now
         * without refusing, since this callback runs on its behalf. */
        struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
        conn_register(app, evcon, bev ? bufferevent_getfd(bev) : -1, false);
        conn = conn_find(app, evcon);
    }
    if (conn)
        evtimer_del(conn->timer);
    if (bad_framing(ereq) || (conn && conn->folded)) {
        answer_now(app, ereq, 400, "Bad Request\n", true);
        return;
    }
    job *j = copy_request(app, ereq, conn);
    guest_status st =
        j ? guest_req_new(app->ctx, &evhttp_ops, j, &j->req) : GUEST_ERR_NOMEM;
    if (st != GUEST_OK) {
        job_free(j);
        if (st == GUEST_ERR_BAD_HOST)
            answer_now(app, ereq, 400, GUEST_BAD_HOST_TEXT, false);
        else
            answer_now(app, ereq, 500, "Internal Server Error\n", true);
        return;
    }
    if (conn)
        conn->busy = j;
    /* The session lookup goes out on the loop's pipelined connection; its
     * answer resumes the request. */
    if (!guest_req_resolve(j->req, app->resolver, on_resolved, j))
        on_resolved(j->req, j);
    /* also when it only began to connect, or a new guest's statement went
     * out from the handler */
    db_watch(app);
}

/* ---- life cycle ---- */

/* The defaults, a whole struct of this library's size. */
static const guest_evhttp_limits default_limits = {
    .size = sizeof(guest_evhttp_limits),
    .workers = 32,
    .max_queued = 1024,
    .max_connections = 10000,
    .max_conns_per_ip = 32,
    .header_timeout_s = 10,
    .idle_timeout_s = 30,
    .max_header_size = 16384,
};

guest_status guest_evhttp_new(guest_ctx *ctx, guest_handler_fn handler,
                              void *userdata, guest_evhttp **out)
{
    if (!ctx || !handler || !out)
        return GUEST_ERR_INVALID;
    guest_evhttp *app = calloc(1, sizeof *app);
    if (!app)
        return GUEST_ERR_NOMEM;
    if (guest_log_limiter_new(ctx, "evhttp", GUEST_LOG_LIMIT_INTERVAL_S,
                              &app->log) != GUEST_OK) {
        free(app);
        return GUEST_ERR_NOMEM;
    }
    app->ctx = ctx;
    app->handler = handler;
    app->userdata = userdata;
    app->max_body = guest_ctx_config(ctx)->max_body_size;
    app->wake[0] = app->wake[1] = -1;
    pthread_mutex_init(&app->mu, NULL);
    pthread_cond_init(&app->cv, NULL);
    app->limits = default_limits;
    *out = app;
    return GUEST_OK;
}

/* The struct of 1.0, the smallest a program can pass. */
#define LIMITS_SIZE_1_0                                                        \
    (offsetof(guest_evhttp_limits, max_header_size) + sizeof(unsigned))

#undef guest_evhttp_limits_init
void guest_evhttp_limits_init_size(guest_evhttp_limits *limits, size_t size)
{
    guest_sized_init(limits, size, &default_limits, sizeof default_limits);
}

guest_status guest_evhttp_set_limits(guest_evhttp *app,
                                     const guest_evhttp_limits *limits)
{
    /* The program's limits over the defaults of fields it does not know;
     * refused when not filled by guest_evhttp_limits_init(). */
    guest_evhttp_limits given = default_limits;
    if (!guest_sized_read(limits, LIMITS_SIZE_1_0, &given, sizeof given))
        return GUEST_ERR_INVALID;
    limits = &given;
    if (!app || !limits || app->attached || limits->workers < 1 ||
        limits->workers > 1024 || limits->max_queued < 1 ||
        limits->max_queued > 1000000 || limits->max_connections < 1 ||
        limits->max_connections > 1000000 || limits->header_timeout_s > 3600 ||
        limits->idle_timeout_s < 1 || limits->idle_timeout_s > 86400 ||
        limits->max_header_size < 1024 || limits->max_header_size > 1048576)
        return GUEST_ERR_INVALID;
    app->limits = *limits;
    return GUEST_OK;
}

guest_status guest_evhttp_set_loop_handlers(guest_evhttp *app, bool on)
{
    if (!app || app->attached)
        return GUEST_ERR_INVALID;
    app->loop_handlers = on;
    return GUEST_OK;
}

unsigned long guest_evhttp_timed_out(const guest_evhttp *app)
{
    return app ? atomic_load_explicit(&app->timed_out, memory_order_relaxed)
               : 0;
}

unsigned long guest_evhttp_refused(const guest_evhttp *app)
{
    return app ? atomic_load_explicit(&app->refused, memory_order_relaxed) : 0;
}

static void stop_workers(guest_evhttp *app)
{
    pthread_mutex_lock(&app->mu);
    app->stopping = true;
    pthread_cond_broadcast(&app->cv);
    pthread_mutex_unlock(&app->mu);
    for (unsigned i = 0; i < app->worker_count; i++)
        pthread_join(app->workers[i], NULL);
    free(app->workers);
    app->workers = NULL;
    app->worker_count = 0;
}

static void free_queue(job *j)
{
    while (j) {
        job *next = j->next;
        job_free(j);
        j = next;
    }
}

/* What attach made, once the loop is stopped and evhttp is freed (so no
 * callback of the adapter runs again). */
static void detach(guest_evhttp *app)
{
    stop_workers(app);
    free_queue(app->todo);
    free_queue(app->done);
    if (app->db_ev)
        event_free(app->db_ev);
    app->db_ev = NULL;
    /* Lookups still in flight come back to on_resolved, which frees their
     * jobs while stopping. */
    guest_resolver_free(app->resolver);
    app->resolver = NULL;
    app->todo = app->todo_tail = app->done = app->done_tail = NULL;
    app->queued = 0;
    if (app->wake_ev)
        event_free(app->wake_ev);
    if (app->fresh_ev)
        event_free(app->fresh_ev);
    app->wake_ev = app->fresh_ev = NULL;
    for (int i = 0; i < 2; i++)
        if (app->wake[i] >= 0)
            close(app->wake[i]);
    app->wake[0] = app->wake[1] = -1;
    free(app->fresh);
    app->fresh = NULL;
    app->fresh_count = app->fresh_cap = 0;
    app->attached = false;
    app->stopping = false;
}

guest_status guest_evhttp_attach(guest_evhttp *app, struct event_base *base,
                                 struct evhttp *http)
{
    if (!app || !base || !http || app->attached)
        return GUEST_ERR_INVALID;
    app->base = base;
    app->http = http;
    if (pipe(app->wake) != 0) {
        app->wake[0] = app->wake[1] = -1;
        return GUEST_ERR_NOMEM;
    }
    for (int i = 0; i < 2; i++)
        if (fcntl(app->wake[i], F_SETFL, O_NONBLOCK) != 0 ||
            fcntl(app->wake[i], F_SETFD, FD_CLOEXEC) != 0) {
            detach(app);
            return GUEST_ERR_NOMEM;
        }
    app->wake_ev =
        event_new(base, app->wake[0], EV_READ | EV_PERSIST, on_wake, app);
    app->fresh_ev = event_new(base, -1, 0, on_fresh, app);
    app->workers = calloc(app->limits.workers, sizeof *app->workers);
    if (!app->wake_ev || !app->fresh_ev || !app->workers ||
        guest_resolver_new(app->ctx, &app->resolver) != GUEST_OK ||
        event_add(app->wake_ev, NULL) != 0) {
        detach(app);
        return GUEST_ERR_NOMEM;
    }
    /* One connection carries every statement of the loop: the more
     * lookups it carries, the more each of its round trips answers.
     * Measured with a second one taking every other request: returning
     * visitors fell from 1.03-1.04 of bench/http_ceiling to 0.80-0.88,
     * new visitors (an insert each) gained nothing beyond the runs'
     * spread on two cores. on_resolved() waits for a parked request. */
    guest_resolver_allow_parking(app->resolver, true);
    app->attached = true;
    for (unsigned i = 0; i < app->limits.workers; i++) {
        if (pthread_create(&app->workers[i], NULL, worker_main, app) != 0) {
            detach(app);
            return GUEST_ERR_NOMEM;
        }
        app->worker_count++;
    }
    /* A declared length over the limit gets evhttp's own 413 and the close
     * before any body byte is read; a chunked body as soon as it passes
     * the limit. Not EVHTTP_SERVER_LINGERING_CLOSE: it reads the whole
     * declared body first, which a client may make endless. */
    evhttp_set_max_body_size(http, (ev_ssize_t)app->max_body);
    evhttp_set_max_headers_size(http, (ev_ssize_t)app->limits.max_header_size);
    evhttp_set_timeout(http, (int)app->limits.idle_timeout_s);
    evhttp_set_default_content_type(http, NULL);
    evhttp_set_allowed_methods(
        http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                  EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
                  EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    evhttp_set_bevcb(http, on_new_bev, app);
    evhttp_set_gencb(http, on_request, app);
    return GUEST_OK;
}

/* A listening socket with a backlog as deep as the system allows: evhttp's
 * own binding listens with 128, and when thousands of slow connections are
 * closed and reopened at once a full queue drops the SYN of a normal
 * client, which then waits a whole second to try again. */
static int listen_on(const struct sockaddr_storage *ss, int family)
{
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    socklen_t len = family == AF_INET ? sizeof(struct sockaddr_in)
                                      : sizeof(struct sockaddr_in6);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, (const struct sockaddr *)ss, len) != 0 ||
        listen(fd, 4096) != 0 /* the kernel caps it at somaxconn */) {
        close(fd);
        return -1;
    }
    return fd;
}

static atomic_bool threads_ready;

static void use_threads(void)
{
    atomic_store(&threads_ready, evthread_use_pthreads() == 0);
}

static void *loop_main(void *arg)
{
    guest_evhttp *app = arg;
    event_base_loop(app->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

guest_status guest_evhttp_start(guest_evhttp *app, const char *bind_addr,
                                uint16_t port, uint16_t *bound_port)
{
    if (!app || app->attached)
        return GUEST_ERR_INVALID;
    struct sockaddr_storage ss;
    int family = guest_sockaddr_parse(bind_addr, port, &ss);
    if (!family)
        return GUEST_ERR_INVALID;
    /* guest_evhttp_stop() breaks the loop from another thread. */
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    if (pthread_once(&once, use_threads) != 0 || !atomic_load(&threads_ready))
        return GUEST_ERR_NOMEM;
    app->base = event_base_new();
    app->http = app->base ? evhttp_new(app->base) : NULL;
    if (!app->http) {
        if (app->base)
            event_base_free(app->base);
        app->base = NULL;
        return GUEST_ERR_NOMEM;
    }
    struct evhttp_bound_socket *bound = NULL;
    int fd = listen_on(&ss, family);
    if (fd >= 0 && !(bound = evhttp_accept_socket_with_handle(app->http, fd)))
        close(fd);
    guest_status st = bound ? guest_evhttp_attach(app, app->base, app->http)
                            : GUEST_ERR_CONFIG;
    if (st == GUEST_OK && bound_port) {
        struct sockaddr_storage got;
        socklen_t len = sizeof got;
        *bound_port = 0;
        if (getsockname(evhttp_bound_socket_get_fd(bound),
                        (struct sockaddr *)&got, &len) == 0)
            *bound_port = ntohs(got.ss_family == AF_INET
                                    ? ((struct sockaddr_in *)&got)->sin_port
                                    : ((struct sockaddr_in6 *)&got)->sin6_port);
    }
    if (st == GUEST_OK &&
        pthread_create(&app->loop_thread, NULL, loop_main, app) != 0)
        st = GUEST_ERR_NOMEM;
    if (st != GUEST_OK) {
        evhttp_free(app->http);
        if (app->attached)
            detach(app);
        event_base_free(app->base);
        app->http = NULL;
        app->base = NULL;
        return st;
    }
    app->own_loop = true;
    app->loop_running = true;
    return GUEST_OK;
}

void guest_evhttp_stop(guest_evhttp *app)
{
    if (!app || !app->own_loop)
        return;
    if (app->loop_running) {
        /* Through the pipe, which the loop reads whenever it runs: a
         * loopbreak before the thread entered the loop would be lost. */
        pthread_mutex_lock(&app->mu);
        app->quit = true;
        pthread_mutex_unlock(&app->mu);
        wake_loop(app);
        pthread_join(app->loop_thread, NULL);
        app->loop_running = false;
    }
    /* The workers first: one may still be handing a response to the
     * loop. Then evhttp_free closes every connection (on_close drops the
     * requests still held). */
    stop_workers(app);
    evhttp_free(app->http);
    detach(app);
    event_base_free(app->base);
    app->http = NULL;
    app->base = NULL;
    app->own_loop = false;
    app->quit = false;
}

void guest_evhttp_free(guest_evhttp *app)
{
    if (!app)
        return;
    guest_evhttp_stop(app);
    if (app->attached)
        detach(app);
    for (size_t b = 0; b < ADDR_BUCKETS; b++)
        while (app->addrs[b]) {
            addr_count *a = app->addrs[b];
            app->addrs[b] = a->next;
            free(a);
        }
    pthread_mutex_destroy(&app->mu);
    pthread_cond_destroy(&app->cv);
    guest_log_limiter_free(app->log);
    free(app);
}

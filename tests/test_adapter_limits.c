/* The server adapters against hostile clients, over real loopback sockets:
 * requests the server library abandons before the handler (oversized query
 * strings and headers, clients that vanish mid-request) leave nothing
 * behind (LeakSanitizer checks that in the sanitizer build), a client that
 * trickles its headers is cut off, one address cannot take every
 * connection, and large pages arrive whole. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <dirent.h>
#include <sys/socket.h>
#include <unistd.h>

#ifdef TEST_WITH_MHD
#include <guestuser/adapters/mhd.h>
#endif
#ifdef TEST_WITH_CIVETWEB
#include <guestuser/adapters/civetweb.h>
#endif
#ifdef TEST_WITH_ULFIUS
#include <guestuser/adapters/ulfius.h>
#endif

#include "testlib.h"

/* Generous: these bound a wait, they are not the point of a test. */
#define WAIT_MS 30000
#define BIG_PAGE (3u << 20)

typedef struct server {
    const char *kind;
    guest_ctx *ctx;
    int port;
    void *app;
    void *handle;
} server;

/* Requests that reached the handler with "SMUGGLED" in their target: the
 * ones hidden in a request whose framing the adapter must refuse. */
static _Atomic int smuggled_served;
/* Requests of /slow that reached the handler. */
static _Atomic int slow_entered;

static void hello(guest_req *req, void *userdata)
{
    (void)userdata;
    if (strstr(guest_req_target(req), "SMUGGLED"))
        atomic_fetch_add(&smuggled_served, 1);
    if (!strcmp(guest_req_path(req), "/big")) {
        /* A page larger than any buffer on the way, with content that
         * shows a byte out of place. */
        char *page = malloc(BIG_PAGE);
        ck_assert_ptr_nonnull(page);
        for (size_t i = 0; i < BIG_PAGE; i++)
            page[i] = (char)('a' + i % 26);
        ck_assert_int_eq(guest_res_write(req, page, BIG_PAGE), GUEST_OK);
        free(page);
        return;
    }
    if (!strcmp(guest_req_path(req), "/slow")) {
        /* A handler that takes its time, as one waiting for PostgreSQL. */
        atomic_fetch_add(&slow_entered, 1);
        struct timespec ts = {1, 0};
        nanosleep(&ts, NULL);
    }
    if (!strcmp(guest_req_path(req), "/header")) {
        /* The value the library sees of the header the query names. */
        const char *v = guest_req_header(req, guest_req_target(req) + 8);
        ck_assert_int_eq(
            guest_res_send(req, 200, "text/plain", v ? v : "(none)"), GUEST_OK);
        return;
    }
    ck_assert_int_eq(guest_res_send(req, 200, "text/plain", "hello\n"),
                     GUEST_OK);
}

/* The servers' max_body_size; a test that changes it puts it back. */
static size_t max_body = 4096;

/* The library's log lines, while a test captures them. */
static struct {
    pthread_mutex_t lock;
    int lines;
    char text[256][320];
} logged = {.lock = PTHREAD_MUTEX_INITIALIZER};
static bool capture_logs;

static void capture_log(guest_log_level level, const char *message,
                        void *userdata)
{
    (void)level;
    (void)userdata;
    pthread_mutex_lock(&logged.lock);
    if (logged.lines < 256)
        snprintf(logged.text[logged.lines], sizeof logged.text[0], "%s",
                 message);
    logged.lines++;
    pthread_mutex_unlock(&logged.lock);
}

static void logged_reset(void)
{
    pthread_mutex_lock(&logged.lock);
    logged.lines = 0;
    pthread_mutex_unlock(&logged.lock);
}

static guest_ctx *ctx_for(const char *schema)
{
    tl_drop_schema(schema);
    guest_config c;
    tl_config(&c, schema);
    c.max_body_size = max_body;
    if (capture_logs)
        c.log = capture_log;
    return tl_ctx_new(&c);
}

#ifdef TEST_WITH_MHD
static server mhd_up(const guest_mhd_limits *limits)
{
    server s = {.kind = limits && limits->workers ? "mhd_event" : "mhd",
                .ctx = ctx_for("t_lim_mhd")};
    guest_mhd *app;
    struct MHD_Daemon *d;
    ck_assert_int_eq(guest_mhd_new(s.ctx, hello, NULL, &app), GUEST_OK);
    if (limits)
        ck_assert_int_eq(guest_mhd_set_limits(app, limits), GUEST_OK);
    ck_assert_int_eq(guest_mhd_start(app, "127.0.0.1", 0, &d), GUEST_OK);
    s.port = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)->port;
    s.app = app;
    s.handle = d;
    return s;
}

/* The limits of the event mode (_i 1 of the mhd loop tests) or of a
 * thread per connection (_i 0), defaults otherwise. */
static guest_mhd_limits mhd_limits(int event)
{
    guest_mhd_limits l;
    guest_mhd_limits_init(&l);
    l.workers = event ? 4 : 0;
    return l;
}
#endif

#ifdef TEST_WITH_CIVETWEB
static server civetweb_up(const guest_civetweb_limits *limits)
{
    server s = {.kind = "civetweb", .ctx = ctx_for("t_lim_civet")};
    guest_civetweb *app;
    struct mg_context *mg;
    ck_assert_int_eq(guest_civetweb_new(s.ctx, hello, NULL, &app), GUEST_OK);
    if (limits)
        ck_assert_int_eq(guest_civetweb_set_limits(app, limits), GUEST_OK);
    ck_assert_int_eq(guest_civetweb_start(app, "127.0.0.1", 0, &mg), GUEST_OK);
    struct mg_server_port sp;
    ck_assert_int_eq(mg_get_server_ports(mg, 1, &sp), 1);
    s.port = sp.port;
    s.app = app;
    s.handle = mg;
    return s;
}
#endif

#ifdef TEST_WITH_ULFIUS
static server ulfius_up(const guest_ulfius_limits *limits)
{
    server s = {.kind = "ulfius", .ctx = ctx_for("t_lim_ulfius")};
    guest_ulfius *app;
    struct _u_instance *in;
    ck_assert_int_eq(guest_ulfius_new(s.ctx, hello, NULL, &app), GUEST_OK);
    if (limits)
        ck_assert_int_eq(guest_ulfius_set_limits(app, limits), GUEST_OK);
    ck_assert_int_eq(guest_ulfius_start(app, "127.0.0.1", 0, &in), GUEST_OK);
    s.port =
        MHD_get_daemon_info(in->mhd_daemon, MHD_DAEMON_INFO_BIND_PORT)->port;
    s.app = app;
    s.handle = in;
    return s;
}
#endif

static void down(server *s)
{
#ifdef TEST_WITH_MHD
    if (!strncmp(s->kind, "mhd", 3)) {
        guest_mhd_stop(s->app, s->handle);
        guest_mhd_free(s->app);
    }
#endif
#ifdef TEST_WITH_CIVETWEB
    if (!strcmp(s->kind, "civetweb")) {
        mg_stop(s->handle);
        guest_civetweb_free(s->app);
    }
#endif
#ifdef TEST_WITH_ULFIUS
    if (!strcmp(s->kind, "ulfius"))
        guest_ulfius_free(s->app);
#endif
    guest_ctx_free(s->ctx);
}

/* The adapters this build has, by index for the loop tests. */
static const char *const kinds[] = {
#ifdef TEST_WITH_MHD
    "mhd",
    "mhd_event",
#endif
#ifdef TEST_WITH_CIVETWEB
    "civetweb",
#endif
#ifdef TEST_WITH_ULFIUS
    "ulfius",
#endif
};
#define NKINDS ((int)(sizeof kinds / sizeof *kinds))

static server up_default(int i)
{
#ifdef TEST_WITH_MHD
    if (!strcmp(kinds[i], "mhd"))
        return mhd_up(NULL);
    if (!strcmp(kinds[i], "mhd_event")) {
        guest_mhd_limits l = mhd_limits(1);
        return mhd_up(&l);
    }
#endif
#ifdef TEST_WITH_CIVETWEB
    if (!strcmp(kinds[i], "civetweb"))
        return civetweb_up(NULL);
#endif
#ifdef TEST_WITH_ULFIUS
    if (!strcmp(kinds[i], "ulfius"))
        return ulfius_up(NULL);
#endif
    ck_abort_msg("no adapter %s", kinds[i]);
    return (server){0};
}

/* A connection from @p source (a loopback address) to the server. */
static int dial(int port, const char *source)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in src = {.sin_family = AF_INET};
    inet_pton(AF_INET, source, &src.sin_addr);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&src, sizeof src), 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

/* Sends what it can; a server that already closed is fine here. */
static void send_some(int fd, const char *data, size_t len)
{
    while (len) {
        ssize_t w = send(fd, data, len, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        data += w;
        len -= (size_t)w;
    }
}

/* Reads until the server closes (true) or @p wait_ms pass (false);
 * whatever arrived is discarded. */
static bool closed_within(int fd, int wait_ms)
{
    long long deadline = tl_now_ms() + wait_ms;
    char buf[4096];
    for (;;) {
        long long left = deadline - tl_now_ms();
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            return false;
        ssize_t r = recv(fd, buf, sizeof buf, 0);
        if (r <= 0)
            return true;
    }
}

static int status_of(int port)
{
    char *raw = tl_http_raw(port,
                            "GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                            "Connection: close\r\n\r\n",
                            WAIT_MS);
    ck_assert_ptr_nonnull(raw);
    int st = tl_raw_status(raw);
    free(raw);
    return st;
}

/* Each kind of request a server library may give up on before (or while)
 * the adapter sees it. */
static char *abandoned(int kind)
{
    size_t cap = 200000;
    char *r = malloc(cap);
    ck_assert_ptr_nonnull(r);
    size_t n = 0;
    switch (kind) {
    case 0: /* 2,000 query arguments */
        n += (size_t)snprintf(r, cap, "GET /hello?");
        for (int i = 0; i < 2000; i++)
            n += (size_t)snprintf(r + n, cap - n, "a%d=%d&", i, i);
        snprintf(r + n, cap - n, " HTTP/1.1\r\nHost: x\r\n\r\n");
        break;
    case 1: /* a 100 KB header */
        n += (size_t)snprintf(r, cap, "GET /hello HTTP/1.1\r\nX-Big: ");
        memset(r + n, 'b', 100000);
        n += 100000;
        snprintf(r + n, cap - n, "\r\nHost: x\r\n\r\n");
        break;
    case 2: /* a body that never comes (the client leaves) */
        snprintf(r, cap,
                 "POST /hello HTTP/1.1\r\nHost: x\r\n"
                 "Content-Type: application/x-www-form-urlencoded\r\n"
                 "Content-Length: 3000\r\n\r\nfield=value");
        break;
    case 3: /* headers cut off */
        snprintf(r, cap, "GET /hello HTTP/1.1\r\nHost: x\r\nUser-Ag");
        break;
    case 4: /* a body over max_body_size */
        snprintf(r, cap,
                 "POST /hello HTTP/1.1\r\nHost: x\r\n"
                 "Content-Length: 100000\r\n\r\nabc");
        break;
    default: /* a request line that is not one */
        snprintf(r, cap, "\x01\x02 garbage\r\n\r\n");
        break;
    }
    return r;
}

START_TEST(abandoned_requests_leave_nothing_behind)
{
    server s = up_default(_i);
    for (int kind = 0; kind < 6; kind++) {
        char *req = abandoned(kind);
        for (int i = 0; i < 40; i++) {
            int fd = dial(s.port, "127.0.0.1");
            send_some(fd, req, strlen(req));
            /* Half of them wait for the server's answer, half leave at
             * once: both paths must release the request. */
            if (i % 2)
                closed_within(fd, 200);
            close(fd);
        }
        free(req);
        ck_assert_msg(status_of(s.port) == 200,
                      "%s: no answer after abandoned requests of kind %d",
                      s.kind, kind);
    }
    down(&s);
}
END_TEST

START_TEST(large_pages_arrive_whole)
{
    server s = up_default(_i);
    char *raw = tl_http_raw(s.port,
                            "GET /big HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                            "Connection: close\r\n\r\n",
                            WAIT_MS);
    ck_assert_ptr_nonnull(raw);
    ck_assert_int_eq(tl_raw_status(raw), 200);
    const char *body = tl_raw_body(raw);
    ck_assert_uint_eq(strlen(body), BIG_PAGE);
    for (size_t i = 0; i < BIG_PAGE; i++)
        if (body[i] != (char)('a' + i % 26))
            ck_abort_msg("%s: byte %zu is wrong", s.kind, i);
    free(raw);
    down(&s);
}
END_TEST

/* One raw exchange on a fresh connection: everything the server sends
 * until it closes (bounded). Caller frees. */
static char *exchange(int port, const char *request)
{
    char *raw = tl_http_raw(port, request, WAIT_MS);
    ck_assert_ptr_nonnull(raw);
    return raw;
}

/* @p count header lines "X-Hn: v\r\n" into @p out. */
static void header_lines(char *out, size_t size, int count)
{
    size_t n = 0;
    out[0] = '\0';
    for (int i = 0; i < count && n < size; i++)
        n += (size_t)snprintf(out + n, size - n, "X-H%d: v\r\n", i);
}

/* Requests whose length or host a proxy in front could read differently
 * from the server are refused, and nothing after them is answered: also
 * when the second Content-Length, the Transfer-Encoding or the second Host
 * come after an obsolete folded line or after more header lines than
 * CivetWeb keeps (64), where CivetWeb stops reading without a word. */
START_TEST(ambiguous_framing_is_refused)
{
    server s = up_default(_i);
    char many[2048], req[3][4096];
    header_lines(many, sizeof many, 70);
    snprintf(req[0], sizeof req[0],
             "POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n%s"
             "Content-Length: 34\r\n\r\n"
             "GET /hello?SMUGGLED HTTP/1.1\r\nHost: x\r\n\r\n",
             many);
    snprintf(req[1], sizeof req[1],
             "POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n%s"
             "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
             "GET /hello?SMUGGLED HTTP/1.1\r\nHost: x\r\n\r\n",
             many);
    snprintf(req[2], sizeof req[2],
             "GET /hello HTTP/1.1\r\nHost: x\r\n%sHost: evil.example\r\n"
             "\r\nGET /hello?SMUGGLED HTTP/1.1\r\nHost: x\r\n\r\n",
             many);
    const char *const smuggled[] = {
        req[0],
        req[1],
        req[2],
        /* A folded line, then the length of a body that is a request. */
        "DELETE /hello HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n 2\r\n"
        "Content-Length: 34\r\n\r\n"
        "GET /hello?SMUGGLED HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /hello HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n\t2\r\n"
        "Host: evil.example\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n",
        /* Blanks before the colon, a first line starting with one. */
        "GET /hello HTTP/1.1\r\nHost: x\r\nContent-Length : 5\r\n\r\n"
        "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /hello HTTP/1.1\r\n Content-Length: 5\r\nHost: x\r\n\r\n"
        "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n",
        "POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
        "Content-Length: 40\r\n\r\nabcGET /hello HTTP/1.1\r\nHost: x\r\n\r\n",
        "POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
        "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /hello HTTP/1.1\r\nHost: x\r\nHost: evil.example\r\n\r\n"
        "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof smuggled / sizeof *smuggled; i++) {
        char *raw = exchange(s.port, smuggled[i]);
        ck_assert_msg(tl_raw_status(raw) == 400, "%s, case %zu: %s", s.kind, i,
                      raw);
        /* One answer only: the bytes after the first request were not
         * taken for a second one. */
        ck_assert_msg(!strstr(raw + 8, "HTTP/1."),
                      "%s, case %zu: a second response: %s", s.kind, i, raw);
        free(raw);
    }
    ck_assert_int_eq(status_of(s.port), 200);
    down(&s);
}
END_TEST

/* Everything the server sends on @p fd until it closes it, within
 * @p wait_ms; *closed says whether it did. Caller frees. */
static char *read_to_close(int fd, int wait_ms, bool *closed)
{
    long long deadline = tl_now_ms() + wait_ms;
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    ck_assert_ptr_nonnull(buf);
    *closed = false;
    for (;;) {
        long long left = deadline - tl_now_ms();
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            break;
        if (n + 1 == cap) {
            buf = realloc(buf, cap *= 2);
            ck_assert_ptr_nonnull(buf);
        }
        ssize_t r = recv(fd, buf + n, cap - n - 1, 0);
        if (r <= 0) {
            *closed = true;
            break;
        }
        n += (size_t)r;
    }
    buf[n] = '\0';
    return buf;
}

/* RFC 9112 framing the server must not read its own way, each with a
 * request hidden where some server or proxy would find it: a
 * Content-Length that is not 1*DIGIT (A), a Transfer-Encoding other than
 * one line of "chunked" (B), Transfer-Encoding in HTTP/1.0 (C). Each gets
 * 400 (413 for digits past any length) and the close at once, not after a
 * timeout; the hidden request never reaches the handler. libmicrohttpd
 * 0.9.75 answers a Content-Length it cannot parse itself, with its status
 * line and headers sent twice (docs/adapters.md), so a repeat of the
 * status line is no second answer. */
START_TEST(faulty_framing_is_refused_and_closed)
{
    server s = up_default(_i);
    static const char inner[] =
        "GET /hello?SMUGGLED HTTP/1.1\r\nHost: x\r\n\r\n";
    size_t len = strlen(inner);
    char heads[16][128];
    int alt[16] = {0};
    size_t nh = 0;
    snprintf(heads[nh++], 128, "Content-Length: 0, %zu\r\n", len);
    snprintf(heads[nh++], 128, "Content-Length: %zu, 0\r\n", len);
    snprintf(heads[nh++], 128, "Content-Length: 5, 0\r\n");
    snprintf(heads[nh++], 128, "Content-Length: 0x%zx\r\n", len);
    snprintf(heads[nh++], 128, "Content-Length: 0 %zu\r\n", len);
    snprintf(heads[nh++], 128, "Content-Length: %zuabc\r\n", len);
    snprintf(heads[nh++], 128, "Content-Length: +%zu\r\n", len);
    snprintf(heads[nh++], 128, "Content-Length: -%zu\r\n", len);
    alt[nh] = 413;
    snprintf(heads[nh++], 128, "Content-Length: 99999999999999999999999\r\n");
    snprintf(heads[nh++], 128, "Transfer-Encoding: identity\r\n");
    snprintf(heads[nh++], 128, "Transfer-Encoding: gzip, chunked\r\n");
    snprintf(heads[nh++], 128, "Transfer-Encoding: chunked, identity\r\n");
    snprintf(heads[nh++], 128,
             "Transfer-Encoding: chunked\r\n"
             "Transfer-Encoding: identity\r\n");
    snprintf(heads[nh++], 128,
             "Transfer-Encoding: chunked\r\n"
             "Transfer-Encoding: chunked\r\n");
    snprintf(heads[nh++], 128, "Transfer-Encoding: xchunked\r\n");
    /* a bare CR ends a line for a proxy that honours it: the length
     * behind it must not hide */
    snprintf(heads[nh++], 128, "X-A: b\rContent-Length: %zu\r\n", len);
    for (size_t i = 0; i <= nh; i++) {
        /* Room for any of heads (GCC's bound on heads[i] is the array). */
        char req[sizeof heads + 256];
        if (i < nh)
            snprintf(req, sizeof req,
                     "POST /hello HTTP/1.1\r\nHost: x\r\n%s\r\n%s%s", heads[i],
                     strncmp(heads[i], "Transfer", 8) ? "" : "0\r\n\r\n",
                     inner);
        else /* C: HTTP/1.0 asking to keep the connection */
            snprintf(req, sizeof req,
                     "POST /hello HTTP/1.0\r\nHost: x\r\n"
                     "Connection: keep-alive\r\nTransfer-Encoding: chunked\r\n"
                     "\r\n5\r\nhello\r\n0\r\n\r\n%s",
                     inner);
        int fd = dial(s.port, "127.0.0.1");
        long long t0 = tl_now_ms();
        send_some(fd, req, strlen(req));
        bool closed;
        char *raw = read_to_close(fd, 5000, &closed);
        close(fd);
        int want = i < nh && alt[i] ? alt[i] : 400;
        ck_assert_msg(tl_raw_status(raw) == want, "%s, case %zu (%s): %s",
                      s.kind, i, i < nh ? heads[i] : "HTTP/1.0", raw);
        ck_assert_msg(closed, "%s, case %zu: open after %lld ms", s.kind, i,
                      tl_now_ms() - t0);
        for (const char *p = raw; (p = strstr(p, "\nHTTP/1.")); p++)
            ck_assert_msg(tl_raw_status(p + 1) == want,
                          "%s, case %zu: a second answer: %s", s.kind, i, raw);
        free(raw);
    }
    ck_assert_int_eq(atomic_load(&smuggled_served), 0);
    /* "chunked" in any case is the one coding served. */
    char *raw = exchange(s.port, "POST /hello HTTP/1.1\r\nHost: x\r\n"
                                 "Transfer-Encoding: Chunked\r\n"
                                 "Connection: close\r\n\r\n"
                                 "5\r\nhello\r\n0\r\n\r\n");
    ck_assert_msg(tl_raw_status(raw) == 200, "%s: %s", s.kind, raw);
    free(raw);
    ck_assert_int_eq(status_of(s.port), 200);
    down(&s);
}
END_TEST

/* As many header lines as CivetWeb keeps are served everywhere; one more
 * is refused by CivetWeb only, which would not read it, and served by the
 * others, which do. */
START_TEST(header_lines_up_to_civetweb_limit)
{
    server s = up_default(_i);
    char many[2048], req[4096];
    /* With Host and Connection, 64 lines. */
    header_lines(many, sizeof many, 62);
    snprintf(req, sizeof req,
             "GET /hello HTTP/1.1\r\nHost: x\r\n%sConnection: close\r\n\r\n",
             many);
    char *raw = exchange(s.port, req);
    ck_assert_msg(tl_raw_status(raw) == 200, "%s, 64 lines: %s", s.kind, raw);
    free(raw);
    header_lines(many, sizeof many, 63);
    snprintf(req, sizeof req,
             "GET /hello HTTP/1.1\r\nHost: x\r\n%sConnection: close\r\n\r\n",
             many);
    raw = exchange(s.port, req);
    int want = strcmp(s.kind, "civetweb") ? 200 : 400;
    ck_assert_msg(tl_raw_status(raw) == want, "%s, 65 lines: %s", s.kind, raw);
    free(raw);
    down(&s);
}
END_TEST

/* A header sent on two lines reaches the library joined, so a client's own
 * X-Forwarded-For line cannot hide the one its proxy appended. */
START_TEST(repeated_header_lines_are_joined)
{
    server s = up_default(_i);
    char *raw = exchange(s.port, "GET /header?X-Forwarded-For HTTP/1.1\r\n"
                                 "Host: x\r\nX-Forwarded-For: 6.6.6.6\r\n"
                                 "X-Forwarded-For: 10.70.1.1\r\n"
                                 "Connection: close\r\n\r\n");
    ck_assert_int_eq(tl_raw_status(raw), 200);
    ck_assert_str_eq(tl_raw_body(raw), "6.6.6.6, 10.70.1.1");
    free(raw);
    raw = exchange(s.port, "GET /header?Cookie HTTP/1.1\r\nHost: x\r\n"
                           "Cookie: a=1\r\nCookie: b=2\r\n"
                           "Connection: close\r\n\r\n");
    ck_assert_str_eq(tl_raw_body(raw), "a=1; b=2");
    free(raw);
    raw = exchange(s.port, "GET /header?User-Agent HTTP/1.1\r\nHost: x\r\n"
                           "User-Agent: one\r\nConnection: close\r\n\r\n");
    ck_assert_str_eq(tl_raw_body(raw), "one");
    free(raw);
    down(&s);
}
END_TEST

/* What a client that streams a body saw: the status the server answered,
 * whether it closed, and the body bytes the client had handed to its socket
 * by then. */
typedef struct streamed {
    int status;
    bool closed;
    size_t sent;
} streamed;

/* Sends @p head, then @p frame over and over, as fast as the server takes
 * it, until the server has closed or STREAM_CAP bytes went out. The send
 * buffer is kept small, so the bytes sent stay near the bytes the server
 * took in (its receive buffer aside). */
#define STREAM_CAP ((size_t)1 << 30)
static streamed stream_body(int port, const char *head, const char *frame,
                            size_t frame_len)
{
    streamed r = {0};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    int sndbuf = 64 * 1024;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    size_t head_len = strlen(head), head_off = 0, off = 0;
    bool can_send = true;
    char in[4096], answer[64] = "";
    size_t answer_len = 0;
    long long deadline = tl_now_ms() + WAIT_MS;
    while (tl_now_ms() < deadline && r.sent < STREAM_CAP) {
        struct pollfd p = {.fd = fd,
                           .events = POLLIN | (can_send ? POLLOUT : 0)};
        if (poll(&p, 1, 100) <= 0)
            continue;
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = recv(fd, in, sizeof in, 0);
            if (n > 0 && answer_len < sizeof answer - 1) {
                size_t take = (size_t)n < sizeof answer - 1 - answer_len
                                  ? (size_t)n
                                  : sizeof answer - 1 - answer_len;
                memcpy(answer + answer_len, in, take);
                answer_len += take;
                answer[answer_len] = '\0';
            }
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
                r.closed = true;
                break;
            }
        }
        if (can_send && (p.revents & POLLOUT)) {
            ssize_t w;
            if (head_off < head_len) {
                w = send(fd, head + head_off, head_len - head_off,
                         MSG_NOSIGNAL);
                if (w > 0)
                    head_off += (size_t)w;
            } else {
                w = send(fd, frame + off, frame_len - off, MSG_NOSIGNAL);
                if (w > 0) {
                    r.sent += (size_t)w;
                    off = (off + (size_t)w) % frame_len;
                }
            }
            if (w < 0 && errno != EAGAIN && errno != EINTR)
                can_send = false;
        }
    }
    close(fd);
    r.status = tl_raw_status(answer);
    return r;
}

/* A body over the limit gets 413 and the connection closes while the body
 * is still arriving: the client gets to send about the limit and what the
 * sockets' buffers hold, never the rest (a server that reads on sees the
 * client reach STREAM_CAP, or the timeout). */
START_TEST(bodies_over_the_limit_are_cut_off_as_they_arrive)
{
    enum { LIMIT = 256 * 1024, FRAME = 65536 };
    max_body = LIMIT;
    server s = up_default(_i);
    max_body = 4096;
    char *frame = malloc(FRAME + 16);
    ck_assert_ptr_nonnull(frame);
    int n = snprintf(frame, 16, "%x\r\n", FRAME);
    memset(frame + n, 'x', FRAME);
    memcpy(frame + n + FRAME, "\r\n", 2);
    streamed chunked = stream_body(s.port,
                                   "POST /hello HTTP/1.1\r\nHost: x\r\n"
                                   "Transfer-Encoding: chunked\r\n\r\n",
                                   frame, (size_t)n + FRAME + 2);
    memset(frame, 'x', FRAME);
    streamed announced = stream_body(s.port,
                                     "POST /hello HTTP/1.1\r\nHost: x\r\n"
                                     "Content-Length: 2097152000\r\n\r\n",
                                     frame, FRAME);
    free(frame);
    fprintf(stderr,
            "%s: endless chunked body: %d, closed %d after %zu bytes sent; "
            "2000 MiB announced: %d, closed %d after %zu bytes sent\n",
            s.kind, chunked.status, chunked.closed, chunked.sent,
            announced.status, announced.closed, announced.sent);
    ck_assert_msg(chunked.status == 413 && chunked.closed,
                  "%s: endless chunked body: status %d, closed %d", s.kind,
                  chunked.status, chunked.closed);
    ck_assert_msg(chunked.sent <= 8 * (size_t)LIMIT,
                  "%s: the client sent %zu bytes of an endless chunked body "
                  "before the close, limit %d",
                  s.kind, chunked.sent, LIMIT);
    ck_assert_msg(announced.status == 413 && announced.closed,
                  "%s: 2000 MiB announced: status %d, closed %d", s.kind,
                  announced.status, announced.closed);
    ck_assert_msg(announced.sent <= 8 * (size_t)LIMIT,
                  "%s: the client sent %zu bytes of a 2000 MiB body before "
                  "the close, limit %d",
                  s.kind, announced.sent, LIMIT);
    ck_assert_int_eq(status_of(s.port), 200);
    down(&s);
}
END_TEST

/* Of the captured lines that contain @p what: how many, and the messages
 * they stand for (each line one, plus the "(N more like this" it
 * reports). */
static void logged_count(const char *what, int *lines, unsigned long *total)
{
    *lines = 0;
    *total = 0;
    pthread_mutex_lock(&logged.lock);
    ck_assert_int_le(logged.lines, 256);
    for (int i = 0; i < logged.lines; i++) {
        const char *t = logged.text[i];
        if (!strstr(t, what))
            continue;
        ++*lines;
        /* The line at the end reports held messages only. */
        if (!strstr(t, ", not shown)"))
            ++*total;
        const char *more = strstr(t, " (");
        unsigned long n;
        if (more && sscanf(more, " (%lu more like this", &n) == 1)
            *total += n;
    }
    pthread_mutex_unlock(&logged.lock);
}

static const char *const flood_kinds[] = {"kind-a", "kind-b", "kind-c"};

static void *flood_main(void *arg)
{
    guest_log_limiter *lim = arg;
    for (int i = 0; i < 3750; i++) {
        char msg[64];
        snprintf(msg, sizeof msg, "%s: connection %d closed",
                 flood_kinds[i % 3], i);
        guest_log_limited(lim, GUEST_LOG_WARNING, flood_kinds[i % 3], msg);
    }
    return NULL;
}

/* Eight threads log 30,000 messages of three kinds at once: a line per kind
 * and interval goes out, and every message held back is counted in a later
 * line of its kind, the last ones when the limiter is freed. */
START_TEST(log_limiter_bounds_a_flood)
{
    capture_logs = true;
    guest_ctx *ctx = ctx_for("t_lim_log");
    capture_logs = false;
    logged_reset();
    guest_log_limiter *lim;
    ck_assert_int_eq(guest_log_limiter_new(NULL, "x", 1, &lim),
                     GUEST_ERR_INVALID);
    ck_assert_int_eq(guest_log_limiter_new(ctx, "flood", 1, &lim), GUEST_OK);
    ck_assert(!guest_log_limited(NULL, GUEST_LOG_WARNING, "k", "m"));
    ck_assert(!guest_log_limited(lim, GUEST_LOG_WARNING, "k", NULL));
    long long start = tl_now_ms();
    pthread_t t[8];
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, flood_main, lim), 0);
    for (int i = 0; i < 8; i++)
        pthread_join(t[i], NULL);
    long long seconds = (tl_now_ms() - start) / 1000 + 1;
    int lines;
    unsigned long total;
    logged_count("flood: ", &lines, &total);
    ck_assert_msg(lines >= 3 && lines <= 3 * seconds,
                  "%d lines for 30000 messages of 3 kinds in %lld s", lines,
                  seconds);
    /* After the interval, the next message of a kind says how many of its
     * kind were held back. */
    struct timespec pause = {1, 100 * 1000000L};
    nanosleep(&pause, NULL);
    ck_assert(guest_log_limited(lim, GUEST_LOG_WARNING, "kind-a",
                                "kind-a: connection 99999 closed"));
    pthread_mutex_lock(&logged.lock);
    char last[320];
    snprintf(last, sizeof last, "%s", logged.text[logged.lines - 1]);
    pthread_mutex_unlock(&logged.lock);
    ck_assert_msg(strstr(last, "flood: kind-a: connection 99999 closed (") &&
                      strstr(last, " more like this in the last "),
                  "%s", last);
    guest_log_limiter_free(lim);
    guest_log_limiter_free(NULL);
    /* Each kind: every message a line or counted in one. */
    for (int k = 0; k < 3; k++) {
        logged_count(flood_kinds[k], &lines, &total);
        ck_assert_msg(total == 10000u + (k == 0),
                      "%s: %lu messages accounted for, want %d", flood_kinds[k],
                      total, 10000 + (k == 0));
    }
    /* Without a kind, the text is the kind, its digits left out. */
    logged_reset();
    ck_assert_int_eq(guest_log_limiter_new(ctx, NULL, 0, &lim), GUEST_OK);
    ck_assert(guest_log_limited(lim, GUEST_LOG_ERROR, NULL,
                                "peer 10.0.0.1:80 gone\n"));
    ck_assert(!guest_log_limited(lim, GUEST_LOG_ERROR, NULL,
                                 "peer 10.0.0.2:443 gone"));
    ck_assert(guest_log_limited(lim, GUEST_LOG_ERROR, NULL, "other"));
    guest_log_limiter_free(lim);
    pthread_mutex_lock(&logged.lock);
    ck_assert_int_eq(logged.lines, 3);
    ck_assert_str_eq(logged.text[0], "peer 10.0.0.1:80 gone");
    ck_assert_msg(strstr(logged.text[2],
                         "peer 10.0.0.2:443 gone (1 more like this in the "
                         "last "),
                  "%s", logged.text[2]);
    pthread_mutex_unlock(&logged.lock);
    guest_ctx_free(ctx);
}
END_TEST

#ifdef TEST_WITH_CIVETWEB
/* Logs through CivetWeb's own error log, as CivetWeb does its errors. */
static int cry_handler(struct mg_connection *conn, void *cbdata)
{
    (void)cbdata;
    for (int i = 0; i < 2000; i++)
        mg_cry(conn, "client 192.0.2.%d:%d went away", i % 250, 40000 + i);
    mg_send_http_ok(conn, "text/plain", 3);
    mg_write(conn, "ok\n", 3);
    return 200;
}
#endif

/* The servers' own error logs reach the library's log rate-limited: a
 * thousand connections over the per-address limit (libmicrohttpd, and
 * Ulfius on it) or two thousand messages of CivetWeb's make a line or two,
 * and the count of the rest is logged when the adapter is freed. */
START_TEST(server_log_floods_are_rate_limited)
{
    capture_logs = true;
    server s = {0};
    const char *what = NULL;
#ifdef TEST_WITH_MHD
    if (!strncmp(kinds[_i], "mhd", 3)) {
        guest_mhd_limits l = mhd_limits(!strcmp(kinds[_i], "mhd_event"));
        l.max_conns_per_ip = 2;
        s = mhd_up(&l);
        what = "mhd: Server reached connection limit";
    }
#endif
#ifdef TEST_WITH_ULFIUS
    if (!strcmp(kinds[_i], "ulfius")) {
        guest_ulfius_limits l;
        guest_ulfius_limits_init(&l);
        l.max_conns_per_ip = 2;
        s = ulfius_up(&l);
        what = "ulfius: Server reached connection limit";
    }
#endif
#ifdef TEST_WITH_CIVETWEB
    if (!strcmp(kinds[_i], "civetweb")) {
        s = civetweb_up(NULL);
        mg_set_request_handler(s.handle, "/cry", cry_handler, NULL);
        what = "civetweb: client 192.0.2.";
    }
#endif
    capture_logs = false;
    ck_assert_ptr_nonnull(what);
    logged_reset();
    long long start = tl_now_ms();
    int messages;
    if (!strcmp(s.kind, "civetweb")) {
        char *raw = tl_http_raw(s.port,
                                "GET /cry HTTP/1.1\r\nHost: x\r\n"
                                "Connection: close\r\n\r\n",
                                WAIT_MS);
        ck_assert_ptr_nonnull(raw);
        ck_assert_int_eq(tl_raw_status(raw), 200);
        free(raw);
        messages = 2000;
    } else {
        /* Two connections take the address's share; the rest are
         * refused, each with a line of libmicrohttpd's. */
        int a = dial(s.port, "127.0.0.1"), b = dial(s.port, "127.0.0.1");
        send_some(a, "GET /hello HTTP/1.1\r\n", 21);
        send_some(b, "GET /hello HTTP/1.1\r\n", 21);
        for (int i = 0; i < 1000; i++) {
            int fd = dial(s.port, "127.0.0.1");
            closed_within(fd, WAIT_MS);
            close(fd);
        }
        close(a);
        close(b);
        messages = 1000;
    }
    long long intervals =
        (tl_now_ms() - start) / (GUEST_LOG_LIMIT_INTERVAL_S * 1000) + 1;
    int lines;
    unsigned long total;
    logged_count(what, &lines, &total);
    ck_assert_msg(lines >= 1 && lines <= intervals,
                  "%s: %d lines for %d messages", s.kind, lines, messages);
    down(&s);
    logged_count(what, &lines, &total);
    ck_assert_msg(total >= (unsigned long)messages,
                  "%s: %lu of %d messages accounted for", s.kind, total,
                  messages);
}
END_TEST

#if defined(TEST_WITH_MHD) || defined(TEST_WITH_ULFIUS)
/* A client that sends its request line and then one header byte a
 * second, never finishing a line: neither an idle timeout nor a bound on
 * header lines ever fires. Whether the server closed it within WAIT_MS. */
static bool byte_trickle_cut_off(int port)
{
    int fd = dial(port, "127.0.0.1");
    send_some(fd, "GET /hello HTTP/1.1\r\nX-Slow: ", 30);
    long long deadline = tl_now_ms() + WAIT_MS;
    while (tl_now_ms() < deadline) {
        send_some(fd, "a", 1);
        if (closed_within(fd, 1000)) {
            close(fd);
            return true;
        }
    }
    close(fd);
    return false;
}
#endif

#ifdef TEST_WITH_MHD
/* A client that keeps sending header lines, each soon after the last, so
 * an idle timeout never fires. */
static bool trickle_cut_off(int port)
{
    int fd = dial(port, "127.0.0.1");
    send_some(fd, "GET /hello HTTP/1.1\r\n", 21);
    long long deadline = tl_now_ms() + WAIT_MS;
    for (int i = 0; tl_now_ms() < deadline; i++) {
        char line[32];
        int n = snprintf(line, sizeof line, "X-Slow-%d: 1\r\n", i);
        send_some(fd, line, (size_t)n);
        if (closed_within(fd, 300)) {
            close(fd);
            return true;
        }
    }
    close(fd);
    return false;
}

/* The adapter's count of connections cut off for a slow request, once it
 * is at least one: the watchdog shuts the socket down before it counts, so
 * the client can see the close first. Waits up to WAIT_MS. */
static unsigned long timed_out_count(const void *app)
{
    long long deadline = tl_now_ms() + WAIT_MS;
    while (guest_mhd_timed_out(app) == 0 && tl_now_ms() < deadline) {
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return guest_mhd_timed_out(app);
}

START_TEST(mhd_cuts_off_a_client_that_trickles_headers)
{
    guest_mhd_limits l = mhd_limits(_i);
    l.header_timeout_s = 1;
    server s = mhd_up(&l);
    ck_assert_msg(trickle_cut_off(s.port), "%s: the trickling client stayed",
                  s.kind);
    ck_assert_uint_ge(timed_out_count(s.app), 1);
    /* A kept-alive connection that sends no next request goes too. */
    int fd = dial(s.port, "127.0.0.1");
    send_some(fd, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", 33);
    ck_assert(closed_within(fd, WAIT_MS));
    close(fd);
    ck_assert_int_eq(status_of(s.port), 200);
    down(&s);
}
END_TEST

/* One header byte a second against a header timeout of 2 s: closed, in
 * either mode (the event mode has no thread of the connection's own to
 * wait on it). */
START_TEST(mhd_cuts_off_a_client_that_trickles_header_bytes)
{
    guest_mhd_limits l = mhd_limits(_i);
    l.header_timeout_s = 2;
    server s = mhd_up(&l);
    ck_assert_msg(byte_trickle_cut_off(s.port),
                  "%s: the trickling client stayed", s.kind);
    ck_assert_uint_ge(timed_out_count(s.app), 1);
    ck_assert_int_eq(status_of(s.port), 200);
    down(&s);
}
END_TEST

/* The body has a deadline of its own: a byte now and then does not keep
 * the connection. */
START_TEST(mhd_cuts_off_a_client_that_trickles_its_body)
{
    guest_mhd_limits l = mhd_limits(_i);
    l.header_timeout_s = 1;
    server s = mhd_up(&l);
    int fd = dial(s.port, "127.0.0.1");
    static const char head[] = "POST /hello HTTP/1.1\r\nHost: x\r\n"
                               "Content-Length: 3000\r\n\r\n";
    send_some(fd, head, sizeof head - 1);
    bool cut = false;
    long long deadline = tl_now_ms() + WAIT_MS;
    while (!cut && tl_now_ms() < deadline) {
        send_some(fd, "a", 1);
        cut = closed_within(fd, 300);
    }
    close(fd);
    ck_assert_msg(cut, "the trickling body kept its connection");
    ck_assert_int_eq(status_of(s.port), 200);
    down(&s);
}
END_TEST

START_TEST(mhd_header_timeout_can_be_turned_off)
{
    guest_mhd_limits l = mhd_limits(_i);
    l.header_timeout_s = 0;
    l.idle_timeout_s = 0;
    server s = mhd_up(&l);
    int fd = dial(s.port, "127.0.0.1");
    send_some(fd, "GET /hello HTTP/1.1\r\n", 21);
    /* Nothing closes it while the other limits are off. */
    ck_assert(!closed_within(fd, 2500));
    close(fd);
    ck_assert_uint_eq(guest_mhd_timed_out(s.app), 0);
    down(&s);
}
END_TEST

START_TEST(mhd_one_address_cannot_take_every_connection)
{
    guest_mhd_limits l = mhd_limits(_i);
    l.max_conns_per_ip = 2;
    server s = mhd_up(&l);
    int a = dial(s.port, "127.0.0.3"), b = dial(s.port, "127.0.0.3");
    send_some(a, "GET /hello HTTP/1.1\r\n", 21);
    send_some(b, "GET /hello HTTP/1.1\r\n", 21);
    /* The third from the same address is closed at once... */
    int c = dial(s.port, "127.0.0.3");
    ck_assert(closed_within(c, WAIT_MS));
    close(c);
    /* ...while another address is served. */
    char *raw = NULL;
    int fd = dial(s.port, "127.0.0.2");
    static const char req[] =
        "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    send_some(fd, req, sizeof req - 1);
    size_t n = 0, cap = 4096;
    raw = calloc(1, cap);
    long long deadline = tl_now_ms() + WAIT_MS;
    while (tl_now_ms() < deadline) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 1000) <= 0)
            continue;
        ssize_t r = recv(fd, raw + n, cap - n - 1, 0);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    ck_assert_int_eq(tl_raw_status(raw), 200);
    free(raw);
    close(a);
    close(b);
    down(&s);
}
END_TEST

START_TEST(mhd_limits_are_checked)
{
    guest_ctx *ctx = ctx_for("t_lim_mhd");
    guest_mhd *app;
    ck_assert_int_eq(guest_mhd_new(ctx, hello, NULL, &app), GUEST_OK);
    guest_mhd_limits l;
    guest_mhd_limits_init(&l);
    ck_assert_uint_eq(l.max_conns_per_ip, 32);
    ck_assert_uint_eq(l.header_timeout_s, 10);
    ck_assert_int_eq(guest_mhd_set_limits(NULL, &l), GUEST_ERR_INVALID);
    ck_assert_int_eq(guest_mhd_set_limits(app, NULL), GUEST_ERR_INVALID);
    guest_mhd_limits bad = l;
    bad.max_connections = 0;
    ck_assert_int_eq(guest_mhd_set_limits(app, &bad), GUEST_ERR_INVALID);
    bad = l;
    bad.header_timeout_s = 3601;
    ck_assert_int_eq(guest_mhd_set_limits(app, &bad), GUEST_ERR_INVALID);
    /* the event mode's fields: a thread per connection by default */
    ck_assert_uint_eq(l.workers, 0);
    ck_assert_uint_eq(l.max_queued, 1024);
    bad = l;
    bad.workers = 1025;
    ck_assert_int_eq(guest_mhd_set_limits(app, &bad), GUEST_ERR_INVALID);
    bad = l;
    bad.max_queued = 0;
    ck_assert_int_eq(guest_mhd_set_limits(app, &bad), GUEST_ERR_INVALID);
    ck_assert_uint_eq(l.pollers, 4);
    bad = l;
    bad.pollers = 0;
    ck_assert_int_eq(guest_mhd_set_limits(app, &bad), GUEST_ERR_INVALID);
    bad.pollers = 65;
    ck_assert_int_eq(guest_mhd_set_limits(app, &bad), GUEST_ERR_INVALID);
    /* an older program's struct, without them, gets their defaults */
    bad = l;
    bad.size = offsetof(guest_mhd_limits, idle_timeout_s) + sizeof(unsigned);
    ck_assert_int_eq(guest_mhd_set_limits(app, &bad), GUEST_OK);
    /* 1.0's, which ends at max_queued: pollers 0 there is not its value */
    bad = l;
    bad.pollers = 0;
    bad.size = offsetof(guest_mhd_limits, pollers);
    ck_assert_int_eq(guest_mhd_set_limits(app, &bad), GUEST_OK);
    ck_assert_int_eq(guest_mhd_set_limits(app, &l), GUEST_OK);
    guest_mhd_free(app);
    guest_ctx_free(ctx);
}
END_TEST

/* A client that leaves in the middle of its headers frees its place in
 * the per-address limit, with every timeout off, so only noticing the
 * close can free it: in event mode libmicrohttpd before 1.0 misses the
 * end of a stream that comes with the last bytes, and the adapter
 * watches for it. Retried until WAIT_MS, as noticing takes a moment. */
START_TEST(mhd_clients_that_leave_free_their_places)
{
    guest_mhd_limits l = mhd_limits(_i);
    l.max_conns_per_ip = 2;
    l.header_timeout_s = 0;
    l.idle_timeout_s = 0;
    server s = mhd_up(&l);
    static const char part[] = "GET /hello HTTP/1.1\r\nHost: x\r\nUser-Ag";
    for (int i = 0; i < 8; i++) {
        int fd = dial(s.port, "127.0.0.3");
        send_some(fd, part, sizeof part - 1);
        close(fd);
    }
    static const char req[] =
        "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    int st = 0;
    long long deadline = tl_now_ms() + WAIT_MS;
    while (st != 200 && tl_now_ms() < deadline) {
        int fd = dial(s.port, "127.0.0.3");
        send_some(fd, req, sizeof req - 1);
        bool closed;
        char *raw = read_to_close(fd, 5000, &closed);
        close(fd);
        st = tl_raw_status(raw);
        free(raw);
        if (st != 200) {
            struct timespec ts = {0, 50 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    ck_assert_msg(st == 200, "%s: the address's places stayed taken", s.kind);
    down(&s);
}
END_TEST

/* guest_mhd_stop() in event mode waits for the request on the worker
 * (MHD_stop_daemon() alone would abort the process on its suspended
 * connection) and answers the one waiting for a worker; both clients see
 * their connection closed. */
START_TEST(mhd_event_stop_waits_for_requests_on_workers)
{
    guest_mhd_limits l = mhd_limits(1);
    l.workers = 1;
    server s = mhd_up(&l);
    atomic_store(&slow_entered, 0);
    static const char slow[] = "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n";
    int a = dial(s.port, "127.0.0.1");
    send_some(a, slow, sizeof slow - 1);
    long long deadline = tl_now_ms() + WAIT_MS;
    while (atomic_load(&slow_entered) == 0 && tl_now_ms() < deadline) {
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    ck_assert_int_eq(atomic_load(&slow_entered), 1);
    int b = dial(s.port, "127.0.0.1");
    send_some(b, slow, sizeof slow - 1);
    down(&s);
    ck_assert(closed_within(a, WAIT_MS));
    ck_assert(closed_within(b, WAIT_MS));
    close(a);
    close(b);
}
END_TEST

/* Threads of this process: each polling thread is one. */
static int thread_count(void)
{
    DIR *d = opendir("/proc/self/task");
    ck_assert_ptr_nonnull(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* Threads a started event-mode daemon adds, once it answered a request. */
static int event_daemon_threads(unsigned pollers)
{
    guest_mhd_limits l = mhd_limits(1);
    l.workers = 2;
    l.pollers = pollers;
    int before = thread_count();
    server s = mhd_up(&l);
    int after = thread_count();
    char *raw = tl_http_raw(
        s.port, "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        WAIT_MS);
    ck_assert_ptr_nonnull(raw);
    ck_assert_msg(strncmp(raw, "HTTP/1.1 200", 12) == 0, "%s", raw);
    free(raw);
    down(&s);
    return after - before;
}

/* pollers sets how many threads libmicrohttpd polls on in event mode,
 * and each such daemon serves. */
START_TEST(mhd_event_polls_on_as_many_threads_as_asked)
{
    int one = event_daemon_threads(1);
    int three = event_daemon_threads(3);
    ck_assert_int_eq(three - one, 2);
}
END_TEST

/* An application's own daemon that forgot guest_mhd_connection learns it
 * from the first answer, instead of losing query strings or memory. */
START_TEST(mhd_daemon_without_connection_callback_says_so)
{
    guest_ctx *ctx = ctx_for("t_lim_mhd");
    guest_mhd *app;
    ck_assert_int_eq(guest_mhd_new(ctx, hello, NULL, &app), GUEST_OK);
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, guest_mhd_access, app,
        MHD_OPTION_URI_LOG_CALLBACK, guest_mhd_uri_log, app,
        MHD_OPTION_NOTIFY_COMPLETED, guest_mhd_completed, app, MHD_OPTION_END);
    ck_assert_ptr_nonnull(d);
    int port = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)->port;
    char *raw = tl_http_raw(port,
                            "GET /hello?x=1 HTTP/1.1\r\nHost: x\r\n"
                            "Connection: close\r\n\r\n",
                            WAIT_MS);
    ck_assert_ptr_nonnull(raw);
    ck_assert_int_eq(tl_raw_status(raw), 500);
    ck_assert_ptr_nonnull(strstr(raw, "guest_mhd_connection"));
    free(raw);
    MHD_stop_daemon(d);
    guest_mhd_free(app);
    guest_ctx_free(ctx);
}
END_TEST
#endif

#ifdef TEST_WITH_CIVETWEB
START_TEST(civetweb_cuts_off_a_client_that_trickles_headers)
{
    guest_civetweb_limits l;
    guest_civetweb_limits_init(&l);
    l.header_timeout_s = 1;
    l.threads = 4;
    server s = civetweb_up(&l);
    int fd = dial(s.port, "127.0.0.1");
    send_some(fd, "GET /hello HTTP/1.1\r\n", 21);
    bool cut = false;
    long long deadline = tl_now_ms() + WAIT_MS;
    for (int i = 0; !cut && tl_now_ms() < deadline; i++) {
        char line[32];
        int n = snprintf(line, sizeof line, "X-Slow-%d: 1\r\n", i);
        send_some(fd, line, (size_t)n);
        cut = closed_within(fd, 300);
    }
    close(fd);
    ck_assert_msg(cut, "the trickling client stayed");
    ck_assert_int_eq(status_of(s.port), 200);
    down(&s);
}
END_TEST

START_TEST(civetweb_limits_are_checked)
{
    guest_ctx *ctx = ctx_for("t_lim_civet");
    guest_civetweb *app;
    ck_assert_int_eq(guest_civetweb_new(ctx, hello, NULL, &app), GUEST_OK);
    guest_civetweb_limits l;
    guest_civetweb_limits_init(&l);
    ck_assert_uint_eq(l.threads, 50);
    guest_civetweb_limits bad = l;
    bad.threads = 0;
    ck_assert_int_eq(guest_civetweb_set_limits(app, &bad), GUEST_ERR_INVALID);
    bad = l;
    bad.header_timeout_s = 0;
    ck_assert_int_eq(guest_civetweb_set_limits(app, &bad), GUEST_ERR_INVALID);
    ck_assert_int_eq(guest_civetweb_set_limits(app, NULL), GUEST_ERR_INVALID);
    /* the struct carries its size: one not from _init() is refused, an
     * older program's smaller one gets defaults for the rest, a newer
     * program's larger one is refused */
    ck_assert_uint_eq(l.size, sizeof l);
    bad = l;
    bad.size = 0;
    ck_assert_int_eq(guest_civetweb_set_limits(app, &bad), GUEST_ERR_INVALID);
    bad.size = sizeof bad + 8;
    ck_assert_int_eq(guest_civetweb_set_limits(app, &bad), GUEST_ERR_INVALID);
    unsigned char big[sizeof(guest_civetweb_limits) + 8];
    memset(big, 0xAB, sizeof big);
    guest_civetweb_limits_init_size((guest_civetweb_limits *)(void *)big,
                                    sizeof big);
    ck_assert_uint_eq(((guest_civetweb_limits *)(void *)big)->threads, 50);
    for (size_t i = sizeof(guest_civetweb_limits); i < sizeof big; i++)
        ck_assert_uint_eq(big[i], 0);
    ck_assert_int_eq(guest_civetweb_set_limits(app, &l), GUEST_OK);
    guest_civetweb_free(app);
    guest_ctx_free(ctx);
}
END_TEST
#endif

#ifdef TEST_WITH_ULFIUS
/* Ulfius has no bound on a whole request: a client that stops sending is
 * cut by the idle timeout. */
START_TEST(ulfius_cuts_off_a_silent_client)
{
    guest_ulfius_limits l;
    guest_ulfius_limits_init(&l);
    l.idle_timeout_s = 1;
    server s = ulfius_up(&l);
    int fd = dial(s.port, "127.0.0.1");
    send_some(fd,
              "POST /hello HTTP/1.1\r\nHost: x\r\n"
              "Content-Length: 100\r\n\r\nabc",
              57);
    ck_assert_msg(closed_within(fd, WAIT_MS), "the silent client stayed");
    close(fd);
    ck_assert_int_eq(status_of(s.port), 200);
    down(&s);
}
END_TEST

/* libmicrohttpd's timeout under Ulfius is one of silence: one header byte
 * a second kept a connection (and its thread) open for as long as the
 * client liked. The header timeout closes it. */
START_TEST(ulfius_cuts_off_a_client_that_trickles_header_bytes)
{
    guest_ulfius_limits l;
    guest_ulfius_limits_init(&l);
    ck_assert_uint_eq(l.header_timeout_s, 10);
    guest_ulfius_limits bad = l;
    bad.header_timeout_s = 3601;
    guest_ctx *ctx = ctx_for("t_lim_ulfius");
    guest_ulfius *app;
    ck_assert_int_eq(guest_ulfius_new(ctx, hello, NULL, &app), GUEST_OK);
    ck_assert_int_eq(guest_ulfius_set_limits(app, &bad), GUEST_ERR_INVALID);
    guest_ulfius_free(app);
    guest_ctx_free(ctx);
    l.header_timeout_s = 2;
    server s = ulfius_up(&l);
    ck_assert_msg(byte_trickle_cut_off(s.port), "the trickling client stayed");
    ck_assert_int_eq(status_of(s.port), 200);
    down(&s);
}
END_TEST

/* A request whose body trickles is cut off as well. */
START_TEST(ulfius_cuts_off_a_client_that_trickles_its_body)
{
    guest_ulfius_limits l;
    guest_ulfius_limits_init(&l);
    l.header_timeout_s = 1;
    server s = ulfius_up(&l);
    int fd = dial(s.port, "127.0.0.1");
    static const char head[] = "POST /hello HTTP/1.1\r\nHost: x\r\n"
                               "Content-Length: 3000\r\n\r\n";
    send_some(fd, head, sizeof head - 1);
    bool cut = false;
    long long deadline = tl_now_ms() + WAIT_MS;
    while (!cut && tl_now_ms() < deadline) {
        send_some(fd, "a", 1);
        cut = closed_within(fd, 300);
    }
    close(fd);
    ck_assert_msg(cut, "the trickling body kept its connection");
    ck_assert_int_eq(status_of(s.port), 200);
    down(&s);
}
END_TEST

START_TEST(ulfius_one_address_cannot_take_every_connection)
{
    guest_ulfius_limits l;
    guest_ulfius_limits_init(&l);
    l.max_conns_per_ip = 2;
    server s = ulfius_up(&l);
    int a = dial(s.port, "127.0.0.3"), b = dial(s.port, "127.0.0.3");
    send_some(a, "GET /hello HTTP/1.1\r\n", 21);
    send_some(b, "GET /hello HTTP/1.1\r\n", 21);
    int c = dial(s.port, "127.0.0.3");
    ck_assert(closed_within(c, WAIT_MS));
    close(c);
    ck_assert_int_eq(status_of(s.port), 200);
    close(a);
    close(b);
    down(&s);
}
END_TEST
#endif

int main(void)
{
    Suite *s = suite_create("adapter_limits");
    TCase *tc = tcase_create("adapters");
    tcase_set_timeout(tc, 240);
    tcase_add_loop_test(tc, abandoned_requests_leave_nothing_behind, 0, NKINDS);
    tcase_add_loop_test(tc, large_pages_arrive_whole, 0, NKINDS);
    tcase_add_loop_test(tc, ambiguous_framing_is_refused, 0, NKINDS);
    tcase_add_loop_test(tc, faulty_framing_is_refused_and_closed, 0, NKINDS);
    tcase_add_loop_test(tc, header_lines_up_to_civetweb_limit, 0, NKINDS);
    tcase_add_loop_test(tc, bodies_over_the_limit_are_cut_off_as_they_arrive, 0,
                        NKINDS);
    tcase_add_test(tc, log_limiter_bounds_a_flood);
    tcase_add_loop_test(tc, server_log_floods_are_rate_limited, 0, NKINDS);
    tcase_add_loop_test(tc, repeated_header_lines_are_joined, 0, NKINDS);
#ifdef TEST_WITH_MHD
    tcase_add_loop_test(tc, mhd_cuts_off_a_client_that_trickles_headers, 0, 2);
    tcase_add_loop_test(tc, mhd_cuts_off_a_client_that_trickles_header_bytes, 0,
                        2);
    tcase_add_loop_test(tc, mhd_cuts_off_a_client_that_trickles_its_body, 0, 2);
    tcase_add_loop_test(tc, mhd_header_timeout_can_be_turned_off, 0, 2);
    tcase_add_loop_test(tc, mhd_one_address_cannot_take_every_connection, 0, 2);
    tcase_add_test(tc, mhd_limits_are_checked);
    tcase_add_test(tc, mhd_daemon_without_connection_callback_says_so);
    tcase_add_test(tc, mhd_event_stop_waits_for_requests_on_workers);
    tcase_add_test(tc, mhd_event_polls_on_as_many_threads_as_asked);
    tcase_add_loop_test(tc, mhd_clients_that_leave_free_their_places, 0, 2);
#endif
#ifdef TEST_WITH_CIVETWEB
    tcase_add_test(tc, civetweb_cuts_off_a_client_that_trickles_headers);
    tcase_add_test(tc, civetweb_limits_are_checked);
#endif
#ifdef TEST_WITH_ULFIUS
    tcase_add_test(tc, ulfius_cuts_off_a_silent_client);
    tcase_add_test(tc, ulfius_cuts_off_a_client_that_trickles_header_bytes);
    tcase_add_test(tc, ulfius_cuts_off_a_client_that_trickles_its_body);
    tcase_add_test(tc, ulfius_one_address_cannot_take_every_connection);
#endif
    suite_add_tcase(s, tc);
    return tl_run(s);
}

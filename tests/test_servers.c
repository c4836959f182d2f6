/* The same checks, over real loopback sockets, against every server adapter
 * this build has: the test route table (routes.c) for every kind of visitor,
 * bad cookies, size limits, and the adapter contract (target, headers, body,
 * framing, keep-alive). One TCase per server, built from one list. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

#include "routes.h"
#include "testlib.h"

#define MAX_BODY 4096
/* a bound on each wait for the server, generous for a loaded machine */
#define TIMEOUT_MS 30000

typedef struct running running;

typedef struct server_kind {
    const char *name;
    const char *schema;
    void (*start)(running *s, guest_handler_fn handler, void *userdata);
    void (*stop)(running *s);
} server_kind;

struct running {
    const server_kind *kind;
    guest_ctx *ctx;
    int port;
    void *app;
    void *server;
};

#ifdef TEST_WITH_MHD
static void mhd_start(running *s, guest_handler_fn handler, void *userdata)
{
    guest_mhd *app = NULL;
    struct MHD_Daemon *d = NULL;
    ck_assert_int_eq(guest_mhd_new(s->ctx, handler, userdata, &app), GUEST_OK);
    ck_assert_int_eq(guest_mhd_start(app, "127.0.0.1", 0, &d), GUEST_OK);
    const union MHD_DaemonInfo *di =
        MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    ck_assert_ptr_nonnull(di);
    s->port = di->port;
    s->app = app;
    s->server = d;
}

static void mhd_stop(running *s)
{
    MHD_stop_daemon(s->server);
    guest_mhd_free(s->app);
}
#endif

#ifdef TEST_WITH_CIVETWEB
static void civetweb_start(running *s, guest_handler_fn handler, void *userdata)
{
    guest_civetweb *app = NULL;
    struct mg_context *mg = NULL;
    ck_assert_int_eq(guest_civetweb_new(s->ctx, handler, userdata, &app),
                     GUEST_OK);
    ck_assert_int_eq(guest_civetweb_start(app, "127.0.0.1", 0, &mg), GUEST_OK);
    struct mg_server_port sp;
    ck_assert_int_eq(mg_get_server_ports(mg, 1, &sp), 1);
    ck_assert_int_gt(sp.port, 0);
    s->port = sp.port;
    s->app = app;
    s->server = mg;
}

static void civetweb_stop(running *s)
{
    mg_stop(s->server);
    guest_civetweb_free(s->app);
}
#endif

#ifdef TEST_WITH_ULFIUS
static void ulfius_start(running *s, guest_handler_fn handler, void *userdata)
{
    guest_ulfius *app = NULL;
    struct _u_instance *in = NULL;
    ck_assert_int_eq(guest_ulfius_new(s->ctx, handler, userdata, &app),
                     GUEST_OK);
    ck_assert_int_eq(guest_ulfius_start(app, "127.0.0.1", 0, &in), GUEST_OK);
    const union MHD_DaemonInfo *di =
        MHD_get_daemon_info(in->mhd_daemon, MHD_DAEMON_INFO_BIND_PORT);
    ck_assert_ptr_nonnull(di);
    s->port = di->port;
    s->app = app;
    s->server = in;
}

static void ulfius_stop(running *s)
{
    guest_ulfius_free(s->app);
}
#endif

static const server_kind kinds[] = {
#ifdef TEST_WITH_MHD
    {"mhd", "t_srv_mhd", mhd_start, mhd_stop},
#endif
#ifdef TEST_WITH_ULFIUS
    {"ulfius", "t_srv_ulfius", ulfius_start, ulfius_stop},
#endif
#ifdef TEST_WITH_CIVETWEB
    {"civetweb", "t_srv_civet", civetweb_start, civetweb_stop},
#endif
};
#define NKINDS ((int)(sizeof kinds / sizeof *kinds))

/* A fresh schema, a context and server @p i running @p handler. */
static running up(int i, guest_handler_fn handler, void *userdata)
{
    running s = {.kind = &kinds[i]};
    tl_drop_schema(s.kind->schema);
    guest_config c;
    tl_config(&c, s.kind->schema);
    c.max_body_size = MAX_BODY;
    s.ctx = tl_ctx_new(&c);
    s.kind->start(&s, handler, userdata);
    return s;
}

static void down(running *s)
{
    s->kind->stop(s);
    guest_ctx_free(s->ctx);
}

/* ---- a few SQL helpers on the server's schema ---- */

static long long rows(const running *s, const char *table)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s.%s", s->kind->schema,
             table);
    return tl_scalar(sql);
}

/* First column of the first row as text, copied into @p out ("" if none). */
static void sql_text(const char *sql, char *out, size_t size)
{
    PGconn *c = tl_db();
    PGresult *r = PQexec(c, sql);
    ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s: %s", sql,
                  PQerrorMessage(c));
    snprintf(out, size, "%s", PQntuples(r) ? PQgetvalue(r, 0, 0) : "");
    PQclear(r);
    PQfinish(c);
}

/* ---- HTTP over loopback ---- */

typedef struct resp {
    char *raw;
    int status;
} resp;

/* One request with Connection: close. @p headers are extra header lines
 * ("Name: value\r\n"...), @p body is sent with a Content-Length. */
static resp request(const running *s, const char *method, const char *target,
                    const char *headers, const char *body)
{
    size_t blen = body ? strlen(body) : 0;
    size_t cap = strlen(target) + (headers ? strlen(headers) : 0) + blen + 256;
    char *req = malloc(cap);
    ck_assert_ptr_nonnull(req);
    char cl[48] = "";
    if (body)
        snprintf(cl, sizeof cl, "Content-Length: %zu\r\n", blen);
    snprintf(req, cap,
             "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
             "%s%s\r\n%s",
             method, target, headers ? headers : "", cl, body ? body : "");
    resp r = {tl_http_raw(s->port, req, TIMEOUT_MS), 0};
    free(req);
    ck_assert_msg(r.raw, "%s: no connection to port %d", s->kind->name,
                  s->port);
    r.status = tl_raw_status(r.raw);
    ck_assert_msg(r.status, "%s %s %s: no response: '%s'", s->kind->name,
                  method, target, r.raw);
    return r;
}

static resp get(const running *s, const char *target, const char *cookie,
                const char *agent)
{
    if (!agent)
        agent = "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0";
    size_t cap = (cookie ? strlen(cookie) : 0) + strlen(agent) + 64;
    char *headers = malloc(cap);
    ck_assert_ptr_nonnull(headers);
    snprintf(headers, cap, "%s%s%sUser-Agent: %s\r\n", cookie ? "Cookie: " : "",
             cookie ? cookie : "", cookie ? "\r\n" : "", agent);
    resp r = request(s, "GET", target, headers, NULL);
    free(headers);
    return r;
}

/* Header @p name of @p r, or NULL; the caller frees. */
static char *header(const resp *r, const char *name)
{
    return tl_raw_header(r->raw, name);
}

static void header_is(const resp *r, const char *name, const char *want)
{
    char *v = header(r, name);
    ck_assert_msg(v && !strcmp(v, want), "%s: want '%s', got '%s'", name, want,
                  v ? v : "(none)");
    free(v);
}

static void no_header(const resp *r, const char *name)
{
    char *v = header(r, name);
    ck_assert_msg(!v, "unexpected %s: %s", name, v);
}

/* "sessionid=TOKEN" from the response's Set-Cookie, into @p out. */
static void session_cookie(const resp *r, char *out, size_t size)
{
    char *sc = header(r, "Set-Cookie");
    ck_assert_msg(sc, "no Set-Cookie in: %s", r->raw);
    ck_assert(!strncmp(sc, "sessionid=", 10));
    sc[strcspn(sc, ";")] = '\0';
    ck_assert_uint_lt(strlen(sc), size);
    strcpy(out, sc);
    free(sc);
}

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

static void send_all(int fd, const char *data, size_t len)
{
    while (len) {
        ssize_t w = send(fd, data, len, MSG_NOSIGNAL);
        ck_assert_int_gt(w, 0);
        data += w;
        len -= (size_t)w;
    }
}

/* Reads until @p want bytes are in @p b or the peer closes; returns false on
 * EOF and on the timeout. */
static bool read_more(int fd, char **b, size_t *n, size_t *cap, size_t want)
{
    long long deadline = tl_now_ms() + TIMEOUT_MS;
    while (*n < want) {
        long long left = deadline - tl_now_ms();
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            return false;
        if (*n + 4096 + 1 > *cap) {
            *cap = (*n + 4096 + 1) * 2;
            *b = realloc(*b, *cap);
            ck_assert_ptr_nonnull(*b);
        }
        ssize_t r = recv(fd, *b + *n, *cap - *n - 1, 0);
        if (r <= 0)
            return false;
        *n += (size_t)r;
        (*b)[*n] = '\0';
    }
    return true;
}

/* Reads exactly one response on a kept-alive connection: the headers, then
 * Content-Length body bytes (none without one, none for a HEAD request).
 * Caller frees. */
static char *read_one(int fd, bool head)
{
    size_t n = 0, cap = 8192;
    char *b = calloc(1, cap);
    ck_assert_ptr_nonnull(b);
    char *end;
    while (!(end = strstr(b, "\r\n\r\n")))
        ck_assert_msg(read_more(fd, &b, &n, &cap, n + 1),
                      "connection ended inside the headers: '%s'", b);
    size_t hlen = (size_t)(end + 4 - b);
    char *cl = tl_raw_header(b, "Content-Length");
    size_t body = cl && !head ? (size_t)strtoull(cl, NULL, 10) : 0;
    free(cl);
    ck_assert_msg(read_more(fd, &b, &n, &cap, hlen + body),
                  "body shorter than its Content-Length: '%s'", b);
    ck_assert_msg(n == hlen + body, "bytes beyond the response: '%s'", b);
    return b;
}

/* True when the server closes @p fd (EOF) without sending more. */
static bool server_closes(int fd)
{
    char c;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, TIMEOUT_MS) <= 0)
        return false;
    return recv(fd, &c, 1, 0) == 0;
}

/* ---- visitors ---- */

#define GOOGLEBOT                                                              \
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
#define YANDEXBOT                                                              \
    "Mozilla/5.0 (compatible; YandexBot/3.0; "                                 \
    "+http://yandex.com/bots)"
#define BINGBOT "Mozilla/5.0 (compatible; bingbot/2.0)"

typedef enum { ANON, GUEST, REGULAR, CRAWLER } visitor;

typedef struct who {
    char cookie[128];
    char name[GUEST_USERNAME_BUF];
    long long id;
} who;

static void b64url(const unsigned char *in, size_t n, char *out)
{
    static const char a[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = a[(v >> 18) & 63];
        out[o++] = a[(v >> 12) & 63];
        if (i + 1 < n)
            out[o++] = a[(v >> 6) & 63];
        if (i + 2 < n)
            out[o++] = a[v & 63];
    }
    out[o] = '\0';
}

/* A well-formed session token from @p seed, and its SHA-256 input as hex. */
static void token_for(unsigned char seed, char token[44], char hex[65])
{
    unsigned char raw[32];
    for (int i = 0; i < 32; i++)
        raw[i] = (unsigned char)(seed + i * 7);
    b64url(raw, sizeof raw, token);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", raw[i]);
}

/* A guest made the way a browser becomes one: a visit to a GUEST_ALLOW
 * page. */
static who new_guest(const running *s)
{
    who w = {0};
    resp r = get(s, "/allow_guest_user/", NULL, NULL);
    ck_assert_int_eq(r.status, 200);
    session_cookie(&r, w.cookie, sizeof w.cookie);
    free(r.raw);
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT username FROM %s.users ORDER BY id DESC LIMIT 1",
             s->kind->schema);
    sql_text(sql, w.name, sizeof w.name);
    snprintf(sql, sizeof sql, "SELECT id FROM %s.users WHERE username = '%s'",
             s->kind->schema, w.name);
    w.id = tl_scalar(sql);
    return w;
}

/* A registered user written straight into the tables, with a session for a
 * token computed here. */
static who new_registered(const running *s, const char *username,
                          unsigned char seed)
{
    who w = {0};
    char token[44], hex[65], sql[1024];
    token_for(seed, token, hex);
    const char *sc = s->kind->schema;
    snprintf(sql, sizeof sql,
             "INSERT INTO %s.users (username) VALUES ('%s');"
             "INSERT INTO %s.sessions (token_hash, user_id, expires_at)"
             " SELECT sha256('\\x%s'::bytea), id, now() + interval '1 day'"
             " FROM %s.users WHERE username = '%s'",
             sc, username, sc, hex, sc, username);
    tl_exec(sql);
    snprintf(w.cookie, sizeof w.cookie, "sessionid=%s", token);
    snprintf(w.name, sizeof w.name, "%s", username);
    snprintf(sql, sizeof sql, "SELECT id FROM %s.users WHERE username = '%s'",
             sc, username);
    w.id = tl_scalar(sql);
    return w;
}

/* @p tmpl with {name} and {id} replaced, into @p out. */
static void expand(const char *tmpl, const who *w, char *out, size_t size)
{
    size_t n = 0;
    out[0] = '\0';
    for (const char *p = tmpl; *p && n + 1 < size;) {
        if (!strncmp(p, "{name}", 6)) {
            n += (size_t)snprintf(out + n, size - n, "%s", w ? w->name : "");
            p += 6;
        } else if (!strncmp(p, "{id}", 4)) {
            n += (size_t)snprintf(out + n, size - n, "%lld", w ? w->id : 0);
            p += 4;
        } else {
            out[n++] = *p++;
            out[n] = '\0';
        }
    }
}

/* ---- the test route table, for every kind of visitor ---- */

#define REGULAR_Q "/regular_user_required/?a=1&b=2"
#define NEXT_Q "next=/regular_user_required/%3Fa%3D1%26b%3D2"
#define HELLO "<p>Hello, {name}!</p>"
#define ANON_JSON                                                              \
    "{\"authenticated\":false,\"guest\":false,\"id\":null,\"username\":null}"

typedef struct route_case {
    const char *method, *target;
    visitor who;
    const char *agent; /* CRAWLER's User-Agent */
    int status;
    const char *location; /* exact Location, or NULL: none */
    const char *body;     /* expected in the body ({name}, {id}), or NULL */
    bool new_guest;       /* a new session cookie and one more user */
} route_case;

static const route_case route_table[] = {
    /* GUEST_ALLOW */
    {"GET", "/allow_guest_user/", ANON, NULL, 200, NULL, HELLO, true},
    {"GET", "/allow_guest_user/", GUEST, NULL, 200, NULL, HELLO, false},
    {"GET", "/allow_guest_user/", REGULAR, NULL, 200, NULL, HELLO, false},
    {"GET", "/allow_guest_user/", CRAWLER, GOOGLEBOT, 200, NULL,
     "<p>Hello, !</p>", false},
    {"GET", "/allow_guest_user/", CRAWLER, YANDEXBOT, 200, NULL,
     "<p>Hello, !</p>", false},
    {"GET", "/allow_guest_user/", CRAWLER, BINGBOT, 200, NULL,
     "<p>Hello, !</p>", false},
    /* GUEST_REQUIRED */
    {"GET", "/guest_user_required/", ANON, NULL, 302, "/accounts/login/", NULL,
     false},
    {"GET", "/guest_user_required/", GUEST, NULL, 200, NULL,
     "Only guests see this page, {name}.", false},
    {"GET", "/guest_user_required/", REGULAR, NULL, 302, "/accounts/profile/",
     NULL, false},
    {"GET", "/guest_user_required/", CRAWLER, GOOGLEBOT, 302,
     "/accounts/login/", NULL, false},
    /* REGULAR_REQUIRED, with a query string to carry into next */
    {"GET", REGULAR_Q, ANON, NULL, 302, "/accounts/login/?" NEXT_Q, NULL,
     false},
    {"GET", REGULAR_Q, GUEST, NULL, 302, "/convert/?" NEXT_Q, NULL, false},
    {"GET", REGULAR_Q, REGULAR, NULL, 200, NULL,
     "Only registered users see this page, {name}.", false},
    {"GET", REGULAR_Q, CRAWLER, BINGBOT, 302, "/accounts/login/?" NEXT_Q, NULL,
     false},
    /* /whoami */
    {"GET", "/whoami", ANON, NULL, 200, NULL, ANON_JSON, false},
    {"GET", "/whoami", GUEST, NULL, 200, NULL,
     "{\"authenticated\":true,\"guest\":true,\"id\":{id},"
     "\"username\":\"{name}\"}",
     false},
    {"GET", "/whoami", REGULAR, NULL, 200, NULL,
     "{\"authenticated\":true,\"guest\":false,\"id\":{id},"
     "\"username\":\"{name}\"}",
     false},
    {"GET", "/whoami", CRAWLER, YANDEXBOT, 200, NULL, ANON_JSON, false},
    /* /healthz */
    {"GET", "/healthz", ANON, NULL, 200, NULL, "ok\n", false},
    {"GET", "/healthz", GUEST, NULL, 200, NULL, "ok\n", false},
    {"GET", "/healthz", REGULAR, NULL, 200, NULL, "ok\n", false},
    {"GET", "/healthz", CRAWLER, GOOGLEBOT, 200, NULL, "ok\n", false},
    /* unknown path */
    {"GET", "/no/such/page", ANON, NULL, 404, NULL, "Not Found", false},
    {"GET", "/no/such/page", GUEST, NULL, 404, NULL, "Not Found", false},
    {"GET", "/no/such/page", REGULAR, NULL, 404, NULL, "Not Found", false},
    {"GET", "/no/such/page", CRAWLER, BINGBOT, 404, NULL, "Not Found", false},
    /* a GET route asked with POST: no guard runs, nobody is created */
    {"POST", "/allow_guest_user/", ANON, NULL, 405, NULL, "Method Not Allowed",
     false},
    {"POST", "/allow_guest_user/", GUEST, NULL, 405, NULL, "Method Not Allowed",
     false},
    {"POST", "/whoami", REGULAR, NULL, 405, NULL, "Method Not Allowed", false},
    {"POST", "/guest_user_required/", CRAWLER, GOOGLEBOT, 405, NULL,
     "Method Not Allowed", false},
};

START_TEST(routes_for_every_visitor)
{
    running s = up(_i, tl_routes_handler, NULL);
    who guest = new_guest(&s);
    who regular = new_registered(&s, "registered_alice", 1);
    for (size_t i = 0; i < sizeof route_table / sizeof *route_table; i++) {
        const route_case *c = &route_table[i];
        const who *w = c->who == GUEST     ? &guest
                       : c->who == REGULAR ? &regular
                                           : NULL;
        char headers[1024];
        snprintf(headers, sizeof headers, "%s%s%sUser-Agent: %s\r\n",
                 w ? "Cookie: " : "", w ? w->cookie : "", w ? "\r\n" : "",
                 c->agent ? c->agent : "Mozilla/5.0 Firefox/128.0");
        long long users = rows(&s, "users");
        resp r = request(&s, c->method, c->target, headers,
                         strcmp(c->method, "GET") ? "" : NULL);
        const char *where = c->target;
        ck_assert_msg(r.status == c->status, "case %zu %s %s: status %d: %s", i,
                      c->method, where, r.status, r.raw);
        if (c->location)
            header_is(&r, "Location", c->location);
        else
            no_header(&r, "Location");
        if (c->status == 405)
            header_is(&r, "Allow", "GET");
        who made = {0};
        if (c->new_guest) {
            ck_assert_int_eq(rows(&s, "users"), users + 1);
            char sql[256];
            snprintf(sql, sizeof sql,
                     "SELECT username FROM %s.users ORDER BY id DESC LIMIT 1",
                     s.kind->schema);
            sql_text(sql, made.name, sizeof made.name);
            session_cookie(&r, made.cookie, sizeof made.cookie);
            w = &made;
        } else {
            ck_assert_msg(rows(&s, "users") == users,
                          "case %zu %s %s created a user", i, c->method, where);
            no_header(&r, "Set-Cookie");
        }
        if (c->body) {
            char want[512];
            expand(c->body, w, want, sizeof want);
            ck_assert_msg(strstr(tl_raw_body(r.raw), want),
                          "case %zu %s %s: '%s' not in '%s'", i, c->method,
                          where, want, tl_raw_body(r.raw));
        }
        free(r.raw);
    }
    down(&s);
}
END_TEST

START_TEST(first_visit_makes_a_guest_then_recognises_it)
{
    running s = up(_i, tl_routes_handler, NULL);
    resp r = get(&s, "/allow_guest_user/", NULL, NULL);
    ck_assert_int_eq(r.status, 200);
    char *sc = header(&r, "Set-Cookie");
    ck_assert_ptr_nonnull(sc);
    ck_assert(!strncmp(sc, "sessionid=", 10));
    ck_assert_int_eq(strcspn(sc + 10, ";"), 43);
    ck_assert_ptr_nonnull(strstr(sc, "; Max-Age=1209600"));
    ck_assert_ptr_nonnull(strstr(sc, "; Path=/"));
    ck_assert_ptr_nonnull(strstr(sc, "; HttpOnly"));
    ck_assert_ptr_nonnull(strstr(sc, "; SameSite=Lax"));
    ck_assert_ptr_null(strstr(sc, "Secure"));
    free(sc);
    char cookie[128];
    session_cookie(&r, cookie, sizeof cookie);

    /* one user, one guests row and one session, all for the name shown */
    char sql[512], name[GUEST_USERNAME_BUF], hello[GUEST_USERNAME_BUF + 32];
    const char *sch = s.kind->schema;
    snprintf(sql, sizeof sql,
             "SELECT u.username FROM %s.users u JOIN %s.guests g ON g.user_id"
             " = u.id JOIN %s.sessions x ON x.user_id = u.id",
             sch, sch, sch);
    sql_text(sql, name, sizeof name);
    ck_assert_uint_gt(strlen(name), 0);
    snprintf(hello, sizeof hello, "Hello, %s!", name);
    ck_assert_ptr_nonnull(strstr(tl_raw_body(r.raw), hello));
    ck_assert_int_eq(rows(&s, "users"), 1);
    ck_assert_int_eq(rows(&s, "guests"), 1);
    ck_assert_int_eq(rows(&s, "sessions"), 1);
    free(r.raw);

    /* the same cookie again: same user, no new cookie, no new rows */
    r = get(&s, "/allow_guest_user/", cookie, NULL);
    ck_assert_int_eq(r.status, 200);
    no_header(&r, "Set-Cookie");
    ck_assert_ptr_nonnull(strstr(tl_raw_body(r.raw), hello));
    free(r.raw);
    ck_assert_int_eq(rows(&s, "users"), 1);
    ck_assert_int_eq(rows(&s, "sessions"), 1);

    /* conversion removes the guests row: the same session is now a
     * registered user's */
    snprintf(sql, sizeof sql, "DELETE FROM %s.guests", sch);
    tl_exec(sql);
    r = get(&s, REGULAR_Q, cookie, NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(tl_raw_body(r.raw), name));
    free(r.raw);
    r = get(&s, "/guest_user_required/", cookie, NULL);
    ck_assert_int_eq(r.status, 302);
    header_is(&r, "Location", "/accounts/profile/");
    free(r.raw);
    down(&s);
}
END_TEST

START_TEST(bad_cookies_are_anonymous_never_5xx)
{
    running s = up(_i, tl_routes_handler, NULL);
    who guest = new_guest(&s);
    who expired = new_guest(&s);
    char sql[256];
    snprintf(sql, sizeof sql,
             "UPDATE %s.sessions SET expires_at = now() - interval '1 second'"
             " WHERE user_id = %lld",
             s.kind->schema, expired.id);
    tl_exec(sql);
    const char *valid = guest.cookie + 10;
    char unknown[44], hex[65];
    token_for(99, unknown, hex);

    char cases[16][1024];
    int n = 0;
    snprintf(cases[n++], sizeof *cases, "sessionid=garbage");
    snprintf(cases[n++], sizeof *cases, "sessionid=%.42s",
             valid);                                             /* too short */
    snprintf(cases[n++], sizeof *cases, "sessionid=%sA", valid); /* too long */
    snprintf(cases[n++], sizeof *cases, "sessionid=%.42s!",
             valid); /* bad alphabet */
    snprintf(cases[n++], sizeof *cases, "sessionid=%.42s+",
             valid); /* base64, not url */
    snprintf(cases[n++], sizeof *cases, "sessionid=%.41s==", valid);
    snprintf(cases[n++], sizeof *cases, "sessionid=%s", unknown);
    snprintf(cases[n++], sizeof *cases, "%s", expired.cookie);
    snprintf(cases[n++], sizeof *cases, "sessionid=junk; sessionid=%s", valid);
    snprintf(cases[n++], sizeof *cases, "sessionid=; other=1");
    snprintf(cases[n++], sizeof *cases, "sessionid");
    snprintf(cases[n++], sizeof *cases, ";;=;=; ;");
    snprintf(cases[n++], sizeof *cases, "SESSIONID=%s", valid);
    snprintf(cases[n++], sizeof *cases, "sessionid=\"%.20s", valid);
    for (int i = 0; i < n; i++) {
        resp r = get(&s, "/whoami", cases[i], NULL);
        ck_assert_msg(r.status == 200, "cookie '%s': %d", cases[i], r.status);
        ck_assert_msg(!strcmp(tl_raw_body(r.raw), ANON_JSON), "cookie '%s': %s",
                      cases[i], tl_raw_body(r.raw));
        free(r.raw);
        r = get(&s, "/guest_user_required/", cases[i], NULL);
        ck_assert_msg(r.status == 302, "cookie '%s': %d", cases[i], r.status);
        header_is(&r, "Location", "/accounts/login/");
        free(r.raw);
    }
    /* a bad cookie on a GUEST_ALLOW page: a new guest, as for no cookie */
    long long users = rows(&s, "users");
    resp r = get(&s, "/allow_guest_user/", cases[0], NULL);
    ck_assert_int_eq(r.status, 200);
    char fresh[128];
    session_cookie(&r, fresh, sizeof fresh);
    ck_assert_str_ne(fresh, guest.cookie);
    ck_assert_int_eq(rows(&s, "users"), users + 1);
    free(r.raw);

    /* with two sessionid cookies the first decides, also when valid */
    char two[256];
    snprintf(two, sizeof two, "%s; sessionid=junk", guest.cookie);
    r = get(&s, "/whoami", two, NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(tl_raw_body(r.raw), "\"guest\":true"));
    free(r.raw);
    down(&s);
}
END_TEST

START_TEST(oversized_cookie_header_is_refused_or_ignored)
{
    running s = up(_i, tl_routes_handler, NULL);
    /* 8 KiB: within every server's header limit, so the adapter sees it */
    size_t sizes[] = {8 * 1024, 64 * 1024};
    for (size_t k = 0; k < 2; k++) {
        char *cookie = malloc(sizes[k] + 16);
        ck_assert_ptr_nonnull(cookie);
        strcpy(cookie, "sessionid=");
        memset(cookie + 10, 'A', sizes[k]);
        cookie[10 + sizes[k]] = '\0';
        if (k == 0) {
            resp r = get(&s, "/whoami", cookie, NULL);
            ck_assert_int_eq(r.status, 200);
            ck_assert_str_eq(tl_raw_body(r.raw), ANON_JSON);
            free(r.raw);
        } else {
            /* Each server refuses a header over its own limit with a 4xx
             * (libmicrohttpd 431, CivetWeb 400) before the adapter runs. It
             * may close while the client still sends, and the reset can
             * then destroy the answer: no response is a refusal too. */
            char *req = malloc(sizes[k] + 128);
            ck_assert_ptr_nonnull(req);
            sprintf(req,
                    "GET /whoami HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: %s"
                    "\r\nConnection: close\r\n\r\n",
                    cookie);
            char *raw = tl_http_raw(s.port, req, TIMEOUT_MS);
            int st = raw ? tl_raw_status(raw) : 0;
            ck_assert_msg(st == 0 || st == 200 || st == 400 || st == 413 ||
                              st == 431,
                          "64 KiB cookie: %d", st);
            if (st == 200)
                ck_assert_str_eq(tl_raw_body(raw), ANON_JSON);
            free(raw);
            free(req);
        }
        free(cookie);
        /* and the server is still there */
        resp r = get(&s, "/healthz", NULL, NULL);
        ck_assert_int_eq(r.status, 200);
        free(r.raw);
    }
    ck_assert_int_eq(rows(&s, "users"), 0);
    down(&s);
}
END_TEST

/* ---- size limits ---- */

static char *filled(size_t n)
{
    char *b = malloc(n + 1);
    ck_assert_ptr_nonnull(b);
    memset(b, 'x', n);
    b[n] = '\0';
    return b;
}

START_TEST(body_over_max_body_size_is_413)
{
    running s = up(_i, tl_routes_handler, NULL);
    char *at = filled(MAX_BODY), *over = filled(MAX_BODY + 1);
    /* at the limit the body is accepted, and the route answers */
    resp r = request(&s, "POST", "/allow_guest_user/", NULL, at);
    ck_assert_int_eq(r.status, 405);
    free(r.raw);
    r = request(&s, "POST", "/allow_guest_user/", NULL, over);
    ck_assert_int_eq(r.status, 413);
    free(r.raw);
    r = request(&s, "PUT", "/no/such/page", NULL, over);
    ck_assert_int_eq(r.status, 413);
    free(r.raw);

    /* a chunked body is counted as it arrives */
    size_t half = MAX_BODY / 2 + 1;
    char *chunk = filled(half);
    size_t cap = 2 * half + 256;
    char *req = malloc(cap);
    snprintf(req, cap,
             "POST /whoami HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close"
             "\r\nTransfer-Encoding: chunked\r\n\r\n%zx\r\n%s\r\n%zx\r\n%s"
             "\r\n0\r\n\r\n",
             half, chunk, half, chunk);
    char *raw = tl_http_raw(s.port, req, TIMEOUT_MS);
    ck_assert_ptr_nonnull(raw);
    ck_assert_int_eq(tl_raw_status(raw), 413);
    free(raw);
    free(req);
    free(chunk);

    /* a declared length far over the limit is refused without waiting for
     * the body, which never comes (not with Ulfius, which reads every body
     * before its endpoints run: test_ulfius.c covers what it does) */
    if (strcmp(s.kind->name, "ulfius") != 0) {
        int fd = connect_to(s.port);
        const char *huge = "POST /whoami HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                           "Content-Length: 1000000000\r\n\r\nxxxx";
        send_all(fd, huge, strlen(huge));
        raw = read_one(fd, false);
        ck_assert_int_eq(tl_raw_status(raw), 413);
        free(raw);
        close(fd);
    }

    r = get(&s, "/healthz", NULL, NULL);
    ck_assert_int_eq(r.status, 200);
    free(r.raw);
    ck_assert_int_eq(rows(&s, "users"), 0);
    free(at);
    free(over);
    down(&s);
}
END_TEST

/* ---- bodies built to break a parser ---- */

START_TEST(hostile_form_bodies_are_400_and_the_server_stays_up)
{
    running s = up(_i, tl_routes_handler, NULL);
    who guest = new_guest(&s);
    char deep[1001];
    memset(deep, '[', 1000);
    deep[1000] = '\0';
    /* One field more than a form may have, as JSON and urlencoded. */
    char many_json[MAX_BODY], many_form[MAX_BODY];
    size_t jn = (size_t)snprintf(many_json, sizeof many_json, "{");
    size_t fn = 0;
    for (int i = 0; i <= GUEST_FORM_MAX_FIELDS; i++) {
        jn += (size_t)snprintf(many_json + jn, sizeof many_json - jn,
                               "%s\"%x\":1", i ? "," : "", i);
        fn +=
            (size_t)snprintf(many_form + fn, sizeof many_form - fn, "%x=&", i);
    }
    snprintf(many_json + jn, sizeof many_json - jn, "}");
    ck_assert_uint_lt(jn + 1, sizeof many_json);
    ck_assert_uint_lt(fn, sizeof many_form);
    struct {
        const char *type, *body;
    } bodies[] = {
        {"application/json", deep},
        {"application/json; charset=utf-8", "{\"a\":{\"b\":1}}"},
        {"application/json", many_json},
        {"application/x-www-form-urlencoded", many_form},
    };
    /* Every library view that reads a body, for a guest and a stranger.
     * (The demo's notes read bodies too: test_demo_notes covers them.) */
    const char *paths[] = {"/accounts/logout/", "/accounts/login/",
                           "/convert/"};
    for (size_t b = 0; b < sizeof bodies / sizeof *bodies; b++) {
        for (size_t p = 0; p < sizeof paths / sizeof *paths; p++) {
            for (int with_cookie = 0; with_cookie < 2; with_cookie++) {
                char headers[256];
                snprintf(headers, sizeof headers, "Content-Type: %s\r\n%s%s%s",
                         bodies[b].type, with_cookie ? "Cookie: " : "",
                         with_cookie ? guest.cookie : "",
                         with_cookie ? "\r\n" : "");
                resp r = request(&s, "POST", paths[p], headers, bodies[b].body);
                ck_assert_msg(r.status == 400,
                              "%s: %s body %zu to %s (cookie %d): %d\n%s",
                              s.kind->name, bodies[b].type, b, paths[p],
                              with_cookie, r.status, r.raw);
                free(r.raw);
            }
        }
    }
    /* The query string is a form too: too many fields there is a 400. */
    char target[MAX_BODY + 32];
    snprintf(target, sizeof target, "/accounts/login/?%s", many_form);
    resp q = request(&s, "GET", target, NULL, NULL);
    ck_assert_int_eq(q.status, 400);
    ck_assert_ptr_nonnull(strstr(tl_raw_body(q.raw), "too many fields"));
    free(q.raw);
    /* A script asking for JSON gets its answer as JSON. */
    resp r = request(&s, "POST", "/accounts/logout/",
                     "Content-Type: application/json\r\n"
                     "Accept: application/json\r\n",
                     deep);
    ck_assert_int_eq(r.status, 400);
    ck_assert_ptr_nonnull(strstr(tl_raw_body(r.raw), "\"errors\""));
    ck_assert_ptr_nonnull(strstr(tl_raw_body(r.raw), "nests"));
    free(r.raw);
    /* The server still answers, and the guest is still signed in. */
    r = get(&s, "/healthz", NULL, NULL);
    ck_assert_int_eq(r.status, 200);
    free(r.raw);
    r = get(&s, "/whoami", guest.cookie, NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(tl_raw_body(r.raw), "\"guest\":true"));
    free(r.raw);
    down(&s);
}
END_TEST

/* ---- the adapter contract, through a handler that shows what it saw ---- */

static void has_line(const char *raw, const char *line)
{
    ck_assert_msg(strstr(tl_raw_body(raw), line), "'%s' not in '%s'", line,
                  tl_raw_body(raw));
}

START_TEST(adapter_passes_the_request_through)
{
    running s = up(_i, tl_echo, NULL);
    resp r = request(&s, "GET", "/echo/a%20b/c%3Fd?x=%41&y=1&z=%26",
                     "x-TEST: some value\r\n", NULL);
    ck_assert_int_eq(r.status, 200);
    has_line(r.raw, "method=GET\n");
    has_line(r.raw, "target=/echo/a%20b/c%3Fd?x=%41&y=1&z=%26\n");
    has_line(r.raw, "path=/echo/a%20b/c%3Fd\n");
    has_line(r.raw, "addr=127.0.0.1\n");
    has_line(r.raw, "x-test=some value\n");
    has_line(r.raw, "https=0\n");
    has_line(r.raw, "body=0:");
    free(r.raw);

    r = request(&s, "PUT", "/echo", NULL, "a=1&b=\"two\"\n");
    ck_assert_int_eq(r.status, 200);
    has_line(r.raw, "method=PUT\n");
    has_line(r.raw, "target=/echo\n");
    has_line(r.raw, "x-test=(null)\n");
    ck_assert_str_eq(strstr(tl_raw_body(r.raw), "body="),
                     "body=12:a=1&b=\"two\"\n");
    free(r.raw);

    const char *chunked =
        "POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n"
        "0\r\n\r\n";
    char *raw = tl_http_raw(s.port, chunked, TIMEOUT_MS);
    ck_assert_ptr_nonnull(raw);
    ck_assert_int_eq(tl_raw_status(raw), 200);
    ck_assert_str_eq(strstr(tl_raw_body(raw), "body="), "body=11:hello world");
    free(raw);
    down(&s);
}
END_TEST

START_TEST(head_gets_headers_without_body)
{
    running s = up(_i, tl_routes_handler, NULL);
    resp r = request(&s, "HEAD", "/healthz", NULL, NULL);
    ck_assert_int_eq(r.status, 200);
    header_is(&r, "Content-Length", "3");
    ck_assert_str_eq(tl_raw_body(r.raw), "");
    free(r.raw);
    down(&s);
}
END_TEST

START_TEST(keep_alive_frames_responses_by_content_length)
{
    running s = up(_i, tl_routes_handler, NULL);
    int fd = connect_to(s.port);
    const char *one = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    send_all(fd, one, strlen(one));
    char *raw = read_one(fd, false);
    ck_assert_int_eq(tl_raw_status(raw), 200);
    ck_assert_str_eq(tl_raw_body(raw), "ok\n");
    free(raw);
    /* a second request on the same connection, and a HEAD in between whose
     * response must carry no body bytes */
    const char *two = "HEAD /whoami HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    send_all(fd, two, strlen(two));
    raw = read_one(fd, true);
    ck_assert_int_eq(tl_raw_status(raw), 200);
    char *cl = tl_raw_header(raw, "Content-Length");
    ck_assert_ptr_nonnull(cl);
    ck_assert_str_eq(cl, "63");
    free(cl);
    free(raw);
    /* read_one() would not see a stray HEAD body; send the next request
     * with Connection: close and read to the end */
    const char *three = "GET /whoami HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                        "Connection: close\r\n\r\n";
    send_all(fd, three, strlen(three));
    size_t n = 0, cap = 4096;
    char *rest = calloc(1, cap);
    read_more(fd, &rest, &n, &cap, (size_t)-1);
    ck_assert_msg(!strncmp(rest, "HTTP/1.1 200 ", 13), "got '%s'", rest);
    ck_assert_str_eq(tl_raw_body(rest), ANON_JSON);
    free(rest);
    close(fd);
    down(&s);
}
END_TEST

/* A handler that tries to frame its own body and close the connection. */
static void self_framing(guest_req *req, void *userdata)
{
    (void)userdata;
    guest_res_send(req, 200, "text/plain", "abc");
    /* Whether the adapter takes or refuses them, it frames the answer. */
    guest_status st = guest_res_add_header(req, "Content-Length", "999");
    st = guest_res_add_header(req, "Connection", "close");
    (void)st;
}

START_TEST(adapter_owns_framing_and_honours_connection_close)
{
    running s = up(_i, self_framing, NULL);
    int fd = connect_to(s.port);
    const char *req = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    send_all(fd, req, strlen(req));
    char *raw = read_one(fd, false);
    ck_assert_int_eq(tl_raw_status(raw), 200);
    char *cl = tl_raw_header(raw, "Content-Length");
    ck_assert_ptr_nonnull(cl);
    ck_assert_str_eq(cl, "3");
    ck_assert_str_eq(tl_raw_body(raw), "abc");
    free(cl);
    free(raw);
    ck_assert_msg(server_closes(fd), "the connection stayed open");
    close(fd);
    down(&s);
}
END_TEST

static void no_content(guest_req *req, void *userdata)
{
    (void)userdata;
    guest_res_set_status(req, 204);
}

START_TEST(no_content_has_no_body_and_keeps_the_connection)
{
    running s = up(_i, no_content, NULL);
    int fd = connect_to(s.port);
    const char *req = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    for (int i = 0; i < 2; i++) {
        send_all(fd, req, strlen(req));
        char *raw = read_one(fd, false);
        ck_assert_int_eq(tl_raw_status(raw), 204);
        char *cl = tl_raw_header(raw, "Content-Length");
        ck_assert_msg(!cl || !strcmp(cl, "0"), "Content-Length: %s", cl);
        free(cl);
        free(raw);
    }
    close(fd);
    down(&s);
}
END_TEST

typedef struct many {
    int added;
} many;

/* Adds 100 headers; counts the ones the adapter took. */
static void many_headers(guest_req *req, void *userdata)
{
    many *m = userdata;
    m->added = 0;
    for (int i = 0; i < 100; i++) {
        char name[16];
        snprintf(name, sizeof name, "X-H%d", i);
        if (guest_res_add_header(req, name, "v") == GUEST_OK)
            m->added++;
    }
    guest_res_printf(req, "%d", m->added);
}

START_TEST(headers_the_adapter_takes_are_all_sent)
{
    static many m; /* the server runs the handler in its own thread */
    running s = up(_i, many_headers, &m);
    resp r = request(&s, "GET", "/", NULL, NULL);
    ck_assert_int_eq(r.status, 200);
    int added = atoi(tl_raw_body(r.raw));
    ck_assert_int_ge(added, 32);
    int seen = 0;
    for (const char *p = r.raw; (p = strstr(p, "\r\nX-H")); p += 5)
        seen++;
    ck_assert_int_eq(seen, added);
    free(r.raw);
    down(&s);
}
END_TEST

/* ---- allowed_hosts and trusted_proxies through each server ---- */

/* up() with allowed_hosts and trusted_proxies set. */
static running up_with(int i, guest_handler_fn handler, const char *hosts,
                       const char *proxies)
{
    running s = {.kind = &kinds[i]};
    tl_drop_schema(s.kind->schema);
    guest_config c;
    tl_config(&c, s.kind->schema);
    c.max_body_size = MAX_BODY;
    c.allowed_hosts = hosts;
    c.trusted_proxies = proxies;
    s.ctx = tl_ctx_new(&c);
    s.kind->start(&s, handler, NULL);
    return s;
}

/* The status of GET @p target with the header lines @p headers verbatim
 * (Host among them, or not); the raw response into *raw when asked. */
static int host_request(const running *s, const char *version,
                        const char *target, const char *headers, char **raw)
{
    char req[512];
    snprintf(req, sizeof req, "GET %s %s\r\n%sConnection: close\r\n\r\n",
             target, version, headers);
    char *r = tl_http_raw(s->port, req, TIMEOUT_MS);
    ck_assert_msg(r, "%s: no connection", s->kind->name);
    int status = tl_raw_status(r);
    if (raw)
        *raw = r;
    else
        free(r);
    return status;
}

START_TEST(foreign_hosts_get_400_before_any_handler)
{
    running s =
        up_with(_i, tl_routes_handler, "example.com,.example.org", NULL);
    static const char *const yes[] = {
        "Host: example.com\r\n", "Host: EXAMPLE.com:8080\r\n",
        "Host: www.example.org\r\n", "Host: example.org:80\r\n"};
    for (size_t k = 0; k < sizeof yes / sizeof *yes; k++)
        ck_assert_msg(host_request(&s, "HTTP/1.1", "/healthz", yes[k], NULL) ==
                          200,
                      "%s: refused %s", s.kind->name, yes[k]);
    static const char *const no[] = {
        "Host: evil.example\r\n", "Host: 127.0.0.1\r\n",
        "Host: www.example.com\r\n", "Host: example.com:x\r\n",
        "Host: badexample.org\r\n"};
    for (size_t k = 0; k < sizeof no / sizeof *no; k++) {
        char *raw;
        int st =
            host_request(&s, "HTTP/1.1", "/allow_guest_user/", no[k], &raw);
        ck_assert_msg(st == 400, "%s: %s got %d", s.kind->name, no[k], st);
        ck_assert_str_eq(tl_raw_body(raw),
                         "Bad Request (invalid Host header)\n");
        char *sc = tl_raw_header(raw, "Set-Cookie");
        ck_assert_msg(!sc, "%s: Set-Cookie %s", s.kind->name, sc);
        free(raw);
    }
    /* HTTP/1.0 may leave Host out; with allowed_hosts that is refused */
    ck_assert_int_eq(
        host_request(&s, "HTTP/1.0", "/allow_guest_user/", "", NULL), 400);
    /* the handler never ran: no guest was made for any of them */
    ck_assert_int_eq(rows(&s, "guests"), 0);
    ck_assert_int_eq(host_request(&s, "HTTP/1.1", "/allow_guest_user/",
                                  "Host: example.com\r\n", NULL),
                     200);
    ck_assert_int_eq(rows(&s, "guests"), 1);
    down(&s);
}
END_TEST

START_TEST(forwarded_for_counts_only_from_trusted_proxies)
{
    /* the test client is 127.0.0.1: once a trusted proxy, once not */
    running s = up_with(_i, tl_echo, NULL, "127.0.0.1/32");
    resp r = request(&s, "GET", "/echo",
                     "X-Forwarded-For: 6.6.6.6, 203.0.113.9\r\n", NULL);
    ck_assert_int_eq(r.status, 200);
    has_line(r.raw, "addr=203.0.113.9\n");
    free(r.raw);
    down(&s);
    s = up_with(_i, tl_echo, NULL, "10.0.0.0/8,::1/128");
    r = request(&s, "GET", "/echo", "X-Forwarded-For: 203.0.113.9\r\n", NULL);
    ck_assert_int_eq(r.status, 200);
    has_line(r.raw, "addr=127.0.0.1\n");
    free(r.raw);
    down(&s);
}
END_TEST

#ifdef TEST_WITH_CIVETWEB
/* ---- CivetWeb only: its own server start and option handling ---- */

static guest_ctx *plain_ctx(void)
{
    tl_drop_schema("t_srv_civet_own");
    guest_config c;
    tl_config(&c, "t_srv_civet_own");
    return tl_ctx_new(&c);
}

START_TEST(civetweb_handler_registered_by_the_application)
{
    /* CivetWeb's own defaults: decode_url on, keep-alive off. */
    guest_ctx *ctx = plain_ctx();
    guest_civetweb *app;
    ck_assert_int_eq(guest_civetweb_new(ctx, tl_echo, NULL, &app), GUEST_OK);
    const char *opts[] = {"listening_ports", "127.0.0.1:0", NULL};
    struct mg_context *mg = mg_start(NULL, NULL, opts);
    ck_assert_ptr_nonnull(mg);
    mg_set_request_handler(mg, "/app", guest_civetweb_handler, app);
    struct mg_server_port sp;
    ck_assert_int_eq(mg_get_server_ports(mg, 1, &sp), 1);
    running s = {.port = sp.port, .kind = &kinds[NKINDS - 1]};

    /* The decoded path is encoded again, so "?" stays in the path and the
     * query string is untouched; an escape of a plain character reads as
     * the character. */
    resp r = request(&s, "GET", "/app/a%20b/c%3Fd/%41/%C3%A9?x=%41&y=%26", NULL,
                     NULL);
    ck_assert_int_eq(r.status, 200);
    has_line(r.raw, "target=/app/a%20b/c%3Fd/A/%C3%A9?x=%41&y=%26\n");
    has_line(r.raw, "path=/app/a%20b/c%3Fd/A/%C3%A9\n");
    free(r.raw);
    r = request(&s, "GET", "/app/100%25", NULL, NULL);
    has_line(r.raw, "path=/app/100%25\n");
    free(r.raw);
    /* paths outside the registered prefix are CivetWeb's */
    r = request(&s, "GET", "/elsewhere", NULL, NULL);
    ck_assert_int_eq(r.status, 404);
    free(r.raw);

    mg_stop(mg);
    guest_civetweb_free(app);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(civetweb_misuse_is_refused)
{
    guest_ctx *ctx = plain_ctx();
    guest_civetweb *app = NULL;
    ck_assert_int_eq(guest_civetweb_new(NULL, tl_echo, NULL, &app),
                     GUEST_ERR_INVALID);
    ck_assert_int_eq(guest_civetweb_new(ctx, NULL, NULL, &app),
                     GUEST_ERR_INVALID);
    ck_assert_int_eq(guest_civetweb_new(ctx, tl_echo, NULL, NULL),
                     GUEST_ERR_INVALID);
    guest_civetweb_free(NULL);

    ck_assert_int_eq(guest_civetweb_new(ctx, tl_echo, NULL, &app), GUEST_OK);
    struct mg_context *mg = (struct mg_context *)1, *mg2 = NULL;
    ck_assert_int_eq(guest_civetweb_start(NULL, NULL, 0, &mg),
                     GUEST_ERR_INVALID);
    ck_assert_int_eq(guest_civetweb_start(app, NULL, 0, NULL),
                     GUEST_ERR_INVALID);
    ck_assert_int_eq(guest_civetweb_start(app, "localhost", 0, &mg),
                     GUEST_ERR_INVALID);
    ck_assert_ptr_null(mg);
    ck_assert_int_eq(guest_civetweb_start(app, "127.0.0.1:80", 0, &mg),
                     GUEST_ERR_INVALID);

    /* a port in use */
    ck_assert_int_eq(guest_civetweb_start(app, NULL, 0, &mg), GUEST_OK);
    struct mg_server_port sp;
    ck_assert_int_eq(mg_get_server_ports(mg, 1, &sp), 1);
    ck_assert_int_eq(
        guest_civetweb_start(app, "127.0.0.1", (uint16_t)sp.port, &mg2),
        GUEST_ERR_CONFIG);
    ck_assert_ptr_null(mg2);

    /* IPv6 works where CivetWeb was built with it, else a clear refusal */
    guest_status st = guest_civetweb_start(app, "::1", 0, &mg2);
    if (mg_check_feature(MG_FEATURES_IPV6)) {
        ck_assert_int_eq(st, GUEST_OK);
        mg_stop(mg2);
    } else {
        ck_assert_int_eq(st, GUEST_ERR_CONFIG);
    }
    mg_stop(mg);
    guest_civetweb_free(app);
    guest_ctx_free(ctx);
}
END_TEST
#endif

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    Suite *suite = suite_create("servers");
    for (int i = 0; i < NKINDS; i++) {
        TCase *tc = tcase_create(kinds[i].name);
        tcase_set_timeout(tc, 120);
        tcase_add_loop_test(tc, routes_for_every_visitor, i, i + 1);
        tcase_add_loop_test(tc, first_visit_makes_a_guest_then_recognises_it, i,
                            i + 1);
        tcase_add_loop_test(tc, bad_cookies_are_anonymous_never_5xx, i, i + 1);
        tcase_add_loop_test(tc, oversized_cookie_header_is_refused_or_ignored,
                            i, i + 1);
        tcase_add_loop_test(tc, body_over_max_body_size_is_413, i, i + 1);
        tcase_add_loop_test(
            tc, hostile_form_bodies_are_400_and_the_server_stays_up, i, i + 1);
        tcase_add_loop_test(tc, adapter_passes_the_request_through, i, i + 1);
        tcase_add_loop_test(tc, head_gets_headers_without_body, i, i + 1);
        tcase_add_loop_test(tc, keep_alive_frames_responses_by_content_length,
                            i, i + 1);
        tcase_add_loop_test(
            tc, adapter_owns_framing_and_honours_connection_close, i, i + 1);
        tcase_add_loop_test(tc, no_content_has_no_body_and_keeps_the_connection,
                            i, i + 1);
        tcase_add_loop_test(tc, headers_the_adapter_takes_are_all_sent, i,
                            i + 1);
        tcase_add_loop_test(tc, foreign_hosts_get_400_before_any_handler, i,
                            i + 1);
        tcase_add_loop_test(tc, forwarded_for_counts_only_from_trusted_proxies,
                            i, i + 1);
        suite_add_tcase(suite, tc);
    }
#ifdef TEST_WITH_CIVETWEB
    TCase *own = tcase_create("civetweb_only");
    tcase_set_timeout(own, 120);
    tcase_add_test(own, civetweb_handler_registered_by_the_application);
    tcase_add_test(own, civetweb_misuse_is_refused);
    suite_add_tcase(suite, own);
#endif
    return tl_run(suite);
}

#include "testlib.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

const char *tl_conninfo(void)
{
    static char buf[512];
    if (buf[0])
        return buf;
    const char *path = getenv("GUESTUSER_TEST_CONNINFO_FILE");
    ck_assert_msg(path, "GUESTUSER_TEST_CONNINFO_FILE is not set; run the "
                        "tests through ctest");
    FILE *f = fopen(path, "r");
    ck_assert_msg(f, "cannot open %s: is the pg fixture running?", path);
    ck_assert(fgets(buf, sizeof buf, f));
    fclose(f);
    buf[strcspn(buf, "\n")] = '\0';
    return buf;
}

PGconn *tl_db(void)
{
    PGconn *c = PQconnectdb(tl_conninfo());
    ck_assert_msg(PQstatus(c) == CONNECTION_OK, "connect: %s",
                  PQerrorMessage(c));
    return c;
}

void tl_exec(const char *sql)
{
    PGconn *c = tl_db();
    PGresult *r = PQexec(c, sql);
    ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK ||
                      PQresultStatus(r) == PGRES_TUPLES_OK,
                  "%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
}

long long tl_scalar(const char *sql)
{
    return tl_scalar_on(tl_conninfo(), sql);
}

long long tl_scalar_on(const char *conninfo, const char *sql)
{
    PGconn *c = PQconnectdb(conninfo);
    ck_assert_msg(PQstatus(c) == CONNECTION_OK, "connect: %s",
                  PQerrorMessage(c));
    PGresult *r = PQexec(c, sql);
    ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s: %s", sql,
                  PQerrorMessage(c));
    long long v = PQntuples(r) ? atoll(PQgetvalue(r, 0, 0)) : 0;
    PQclear(r);
    PQfinish(c);
    return v;
}

void tl_drop_schema(const char *schema)
{
    char sql[256];
    snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS \"%s\" CASCADE", schema);
    tl_exec(sql);
}

void tl_config(guest_config *cfg, const char *schema)
{
    guest_config_init(cfg);
    cfg->db_conninfo = tl_conninfo();
    cfg->db_schema = schema;
    cfg->db_pool_size = 4;
    /* Generous: under a parallel run on a loaded machine a statement can
     * wait seconds for a CPU; tests of the timeout set their own. */
    cfg->db_timeout_ms = 30000;
    /* The suites that also run through PgBouncer (tests/CMakeLists.txt)
     * say so, rather than leaving it to detection, whose log line some
     * tests would count. */
    const char *pooler = getenv("GUESTUSER_TEST_DB_POOLER");
    if (pooler && !strcmp(pooler, "transaction"))
        cfg->db_pooler = GUEST_DB_POOLER_TRANSACTION;
}

guest_ctx *tl_ctx_new(const guest_config *cfg)
{
    guest_ctx *ctx = NULL;
    guest_error err = {0};
    guest_status st = guest_ctx_new(cfg, &ctx, &err);
    ck_assert_msg(st == GUEST_OK, "guest_ctx_new: %s: %s",
                  guest_status_name(st), err.message);
    return ctx;
}

/* ---- in-process adapter ---- */

static const char *t_header(void *c, const char *name)
{
    tl_http *h = c;
    for (int i = 0; i < h->nreq_headers; i++)
        if (!strcasecmp(h->req_headers[i][0], name))
            return h->req_headers[i][1];
    return NULL;
}
static const char *t_method(void *c)
{
    return ((tl_http *)c)->method;
}
static const char *t_target(void *c)
{
    return ((tl_http *)c)->target;
}
static const char *t_addr(void *c)
{
    const char *peer = ((tl_http *)c)->peer;
    return peer ? peer : "127.0.0.1";
}
static int t_https(void *c)
{
    return ((tl_http *)c)->https;
}
static int t_body(void *c, const char **d, size_t *n)
{
    tl_http *h = c;
    *d = h->body ? h->body : "";
    *n = strlen(*d);
    return 0;
}
static int t_status(void *c, int s)
{
    ((tl_http *)c)->status = s;
    return 0;
}
static int t_add_header(void *c, const char *n, const char *v)
{
    tl_http *h = c;
    ck_assert_int_lt(h->nres_headers, TL_MAX_HEADERS * 2);
    h->res_headers[h->nres_headers][0] = strdup(n);
    h->res_headers[h->nres_headers][1] = strdup(v);
    h->nres_headers++;
    return 0;
}
static int t_write(void *c, const void *d, size_t n)
{
    tl_http *h = c;
    h->res_body = realloc(h->res_body, h->res_len + n + 1);
    memcpy(h->res_body + h->res_len, d, n);
    h->res_len += n;
    h->res_body[h->res_len] = '\0';
    return 0;
}

static int t_reset(void *c)
{
    tl_http *h = c;
    tl_http_free(h);
    h->status = 200;
    h->res_len = 0;
    return 0;
}

static const guest_http_ops tl_ops = {
    GUEST_HTTP_OPS_INIT, .header = t_header,     .method = t_method,
    .target = t_target,  .client_addr = t_addr,  .is_https = t_https,
    .body = t_body,      .set_status = t_status, .add_header = t_add_header,
    .write = t_write,    .reset = t_reset,
};

const guest_http_ops *tl_http_ops(void)
{
    return &tl_ops;
}

void tl_http_init(tl_http *h, const char *method, const char *target)
{
    memset(h, 0, sizeof *h);
    h->method = method;
    h->target = target;
    h->status = 200;
}

void tl_http_add(tl_http *h, const char *name, const char *value)
{
    ck_assert_int_lt(h->nreq_headers, TL_MAX_HEADERS);
    h->req_headers[h->nreq_headers][0] = name;
    h->req_headers[h->nreq_headers][1] = value;
    h->nreq_headers++;
}

void tl_http_run(guest_ctx *ctx, tl_http *h, guest_handler_fn handler,
                 void *userdata)
{
    guest_req *req = NULL;
    guest_status st = guest_req_new(ctx, &tl_ops, h, &req);
    if (st == GUEST_ERR_BAD_HOST) {
        ck_assert_ptr_null(req);
        t_status(h, 400);
        t_write(h, GUEST_BAD_HOST_TEXT, strlen(GUEST_BAD_HOST_TEXT));
    } else {
        ck_assert_int_eq(st, GUEST_OK);
        handler(req, userdata);
        guest_req_free(req);
    }
    if (!h->res_body) {
        h->res_body = calloc(1, 1);
        h->res_len = 0;
    }
}

const char *tl_http_res_header(const tl_http *h, const char *name)
{
    for (int i = 0; i < h->nres_headers; i++)
        if (!strcasecmp(h->res_headers[i][0], name))
            return h->res_headers[i][1];
    return NULL;
}

bool tl_http_cookie(const tl_http *h, const char *cookie, char *out,
                    size_t size)
{
    size_t n = strlen(cookie);
    for (int i = 0; i < h->nres_headers; i++) {
        const char *v = h->res_headers[i][1];
        if (!strcasecmp(h->res_headers[i][0], "Set-Cookie") &&
            !strncmp(v, cookie, n) && v[n] == '=') {
            size_t len = strcspn(v, ";");
            if (len >= size)
                return false;
            memcpy(out, v, len);
            out[len] = '\0';
            return true;
        }
    }
    return false;
}

void tl_http_free(tl_http *h)
{
    for (int i = 0; i < h->nres_headers; i++) {
        free(h->res_headers[i][0]);
        free(h->res_headers[i][1]);
    }
    free(h->res_body);
    h->nres_headers = 0;
    h->res_body = NULL;
}

static void record(tl_created *c, guest_status st, const guest_user *u)
{
    c->st = st;
    c->id = guest_user_id(u);
    snprintf(c->name, sizeof c->name, "%s", guest_user_name(u));
    c->is_guest = guest_is_guest_user(u);
}

void tl_create_handler(guest_req *req, void *created)
{
    tl_created *c = created;
    const guest_user *u = NULL;
    memset(&c->err, 0, sizeof c->err);
    guest_status st = guest_req_create_guest(req, &u, &c->err);
    record(c, st, u);
}

void tl_whoami_handler(guest_req *req, void *created)
{
    tl_created *c = created;
    const guest_user *u = NULL;
    memset(&c->err, 0, sizeof c->err);
    guest_status st = guest_req_user(req, &u, &c->err);
    record(created, st, u);
}

/* ---- guests, users and requests with cookies ---- */
guest_ctx *tl_ctx(const char *schema, void (*tweak)(guest_config *))
{
    guest_config c;
    tl_config(&c, schema);
    c.password_iterations = 1000;
    if (tweak)
        tweak(&c);
    return tl_ctx_new(&c);
}

int64_t tl_new_guest(guest_ctx *ctx, char *cookie, size_t size)
{
    tl_http h;
    tl_created made = {0};
    tl_http_init(&h, "GET", "/");
    tl_http_run(ctx, &h, tl_create_handler, &made);
    ck_assert_int_eq(made.st, GUEST_OK);
    ck_assert(made.is_guest);
    ck_assert(tl_http_cookie(&h, "sessionid", cookie, size));
    tl_http_free(&h);
    return made.id;
}

int64_t tl_new_user(guest_ctx *ctx, const char *username, const char *password)
{
    int64_t id = 0;
    guest_form_errors e;
    guest_status st = guest_user_create(ctx, username, password, &id, &e, NULL);
    ck_assert_msg(st == GUEST_OK, "guest_user_create(%s): %s %s", username,
                  guest_status_name(st), e.count ? e.items[0].message : "");
    ck_assert_int_gt(id, 0);
    return id;
}

void tl_cookie_header(char *out, size_t size, const char *session,
                      bool with_csrf)
{
    snprintf(out, size, "%s%s%s", session ? session : "",
             session && with_csrf ? "; " : "",
             with_csrf ? "csrftoken=" TL_CSRF : "");
}

void tl_request(guest_ctx *ctx, tl_http *h, const char *method,
                const char *target, const char *cookie, const char *ctype,
                const char *body, guest_handler_fn fn, void *userdata)
{
    tl_http_init(h, method, target);
    tl_http_add(h, "Host", "testserver");
    if (cookie && *cookie)
        tl_http_add(h, "Cookie", cookie);
    if (body) {
        tl_http_add(h, "Content-Type",
                    ctype ? ctype : "application/x-www-form-urlencoded");
        h->body = body;
    }
    tl_http_run(ctx, h, fn, userdata);
}

static char *expand(const char *schema, const char *sql)
{
    size_t n = 0;
    for (const char *p = sql; *p; p++)
        n += *p == '@' ? strlen(schema) : 1;
    char *out = malloc(n + 1), *o = out;
    ck_assert_ptr_nonnull(out);
    for (const char *p = sql; *p; p++) {
        if (*p == '@') {
            strcpy(o, schema);
            o += strlen(schema);
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    return out;
}

long long tl_scalar_in(const char *schema, const char *sql)
{
    char *s = expand(schema, sql);
    long long v = tl_scalar(s);
    free(s);
    return v;
}

void tl_exec_in(const char *schema, const char *sql)
{
    char *s = expand(schema, sql);
    tl_exec(s);
    free(s);
}

void tl_text_in(const char *schema, const char *sql, char *out, size_t size)
{
    char *s = expand(schema, sql);
    PGconn *c = tl_db();
    PGresult *r = PQexec(c, s);
    ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s: %s", s,
                  PQerrorMessage(c));
    snprintf(out, size, "%s", PQntuples(r) ? PQgetvalue(r, 0, 0) : "");
    PQclear(r);
    PQfinish(c);
    free(s);
}

void tl_resolve(guest_ctx *ctx, const char *cookie, tl_created *seen)
{
    tl_http h;
    *seen = (tl_created){0};
    tl_http_init(&h, "GET", "/");
    if (cookie && *cookie)
        tl_http_add(&h, "Cookie", cookie);
    tl_http_run(ctx, &h, tl_whoami_handler, seen);
    tl_http_free(&h);
}

int64_t tl_whoami(guest_ctx *ctx, const char *cookie, bool *is_guest)
{
    tl_created seen;
    tl_resolve(ctx, cookie, &seen);
    ck_assert_int_eq(seen.st, GUEST_OK);
    if (is_guest)
        *is_guest = seen.is_guest;
    return seen.id;
}

bool tl_input_value(const char *html, const char *name, char *out, size_t size)
{
    char key[128];
    snprintf(key, sizeof key, "name=\"%s\"", name);
    const char *p = strstr(html, key);
    if (!p)
        return false;
    const char *end = strchr(p, '>');
    const char *v = strstr(p, "value=\"");
    if (!v || (end && v > end))
        return false;
    v += 7;
    size_t n = strcspn(v, "\"");
    if (n >= size)
        return false;
    memcpy(out, v, n);
    out[n] = '\0';
    return true;
}

guest_status tl_slow_store(guest_db *db, const guest_user *user,
                           const guest_form *form, guest_form_errors *errors,
                           void *ud)
{
    (void)db, (void)user, (void)form, (void)errors, (void)ud;
    struct timespec ts = {0, 150 * 1000000L};
    nanosleep(&ts, NULL);
    return GUEST_OK;
}

/* ---- raw client ---- */

long long tl_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *tl_http_raw(int port, const char *request, int timeout_ms)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return NULL;
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return NULL;
    }
    size_t len = strlen(request), off = 0;
    while (off < len) {
        ssize_t w = send(fd, request + off, len - off, MSG_NOSIGNAL);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    long long deadline = tl_now_ms() + timeout_ms;
    size_t cap = 4096, n = 0;
    char *out = malloc(cap);
    for (;;) {
        long long left = deadline - tl_now_ms();
        if (left <= 0)
            break;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, (int)left) <= 0)
            break;
        if (n + 2048 > cap)
            out = realloc(out, cap *= 2);
        ssize_t r = recv(fd, out + n, cap - n - 1, 0);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    out[n] = '\0';
    return out;
}

int tl_raw_status(const char *response)
{
    int code = 0;
    if (response && sscanf(response, "HTTP/1.%*d %d", &code) == 1)
        return code;
    return 0;
}

char *tl_raw_header(const char *response, const char *name)
{
    size_t n = strlen(name);
    const char *end = strstr(response, "\r\n\r\n");
    for (const char *p = strstr(response, "\r\n"); p && p < end;
         p = strstr(p + 2, "\r\n")) {
        const char *line = p + 2;
        if (!strncasecmp(line, name, n) && line[n] == ':') {
            const char *v = line + n + 1;
            while (*v == ' ')
                v++;
            size_t len = strcspn(v, "\r\n");
            char *out = malloc(len + 1);
            memcpy(out, v, len);
            out[len] = '\0';
            return out;
        }
    }
    return NULL;
}

const char *tl_raw_body(const char *response)
{
    const char *p = strstr(response, "\r\n\r\n");
    return p ? p + 4 : "";
}

void tl_pg(const char *command, const char *dir, const char *extra)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "bash \"%s\" %s %s %s >/dev/null",
             getenv("GUESTUSER_PG_SCRIPT"), command, dir, extra ? extra : "");
    ck_assert_msg(system(cmd) == 0, "%s failed", cmd);
}

/* The first line of DIR/NAME, without its newline, into @p out. */
static void read_line(const char *dir, const char *name, char *out, size_t size)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot read %s", path);
    ck_assert(fgets(out, (int)size, f));
    fclose(f);
    out[strcspn(out, "\n")] = '\0';
}

void tl_pg_conninfo(const char *dir, char *out, size_t size)
{
    read_line(dir, "conninfo", out, size);
}

int tl_pg_port(const char *dir)
{
    char buf[16];
    read_line(dir, "port", buf, sizeof buf);
    return atoi(buf);
}

int tl_run_stopping(Suite *s, const char *const *dirs)
{
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    /* Not tl_pg: its ck_assert belongs inside a test. */
    for (; failed && *dirs; dirs++) {
        char cmd[512];
        snprintf(cmd, sizeof cmd, "bash \"%s\" stop %s",
                 getenv("GUESTUSER_PG_SCRIPT"), *dirs);
        if (system(cmd) != 0)
            fprintf(stderr, "could not stop the cluster in %s\n", *dirs);
    }
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

int tl_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

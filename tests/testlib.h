/* Shared test helpers: the fixture database, contexts, an in-process
 * adapter that records responses, guests and users made through the public
 * API, and a tiny HTTP client for real servers. */
#ifndef GUESTUSER_TESTLIB_H
#define GUESTUSER_TESTLIB_H

#include <check.h>
#include <libpq-fe.h>

#include "guestuser/guestuser.h"

/* conninfo of the cluster started by the ctest fixture. */
const char *tl_conninfo(void);
/* A fresh connection to it (ck_assert on failure); PQfinish when done. */
PGconn *tl_db(void);
/* Runs @p sql (no parameters) and returns the first column of the first
 * row as a number (0 when no row). */
long long tl_scalar(const char *sql);
/* The same on the server of @p conninfo. */
long long tl_scalar_on(const char *conninfo, const char *sql);
void tl_exec(const char *sql);
/* Drops @p schema so a suite starts from nothing. */
void tl_drop_schema(const char *schema);
/* guest_config_init + fixture database + @p schema, a pool of 4 and a
 * generous 30 s database timeout. */
void tl_config(guest_config *cfg, const char *schema);
/* guest_ctx_new that must succeed. */
guest_ctx *tl_ctx_new(const guest_config *cfg);

#define TL_MAX_HEADERS 16

/* One request through the in-process test adapter. */
typedef struct tl_http {
    /* request, set by the test */
    const char *method;
    const char *target;
    const char *req_headers[TL_MAX_HEADERS][2];
    int nreq_headers;
    const char *body;
    bool https;
    const char *peer; /* socket peer address; NULL: "127.0.0.1" */
    /* response, recorded */
    int status;
    char *res_headers[TL_MAX_HEADERS * 2][2];
    int nres_headers;
    char *res_body;
    size_t res_len;
} tl_http;

void tl_http_init(tl_http *h, const char *method, const char *target);
/* The in-process adapter's callbacks (conn: a tl_http *), every member set. */
const guest_http_ops *tl_http_ops(void);
void tl_http_add(tl_http *h, const char *name, const char *value);
/* Runs @p handler on a guest_req for @p h and records the response; when
 * guest_req_new refuses the Host, records the adapters' 400 instead. */
void tl_http_run(guest_ctx *ctx, tl_http *h, guest_handler_fn handler,
                 void *userdata);
/* First response header @p name (case-insensitive), or NULL. */
const char *tl_http_res_header(const tl_http *h, const char *name);
/* "name=value" of the Set-Cookie for @p cookie, into @p out; false if none. */
bool tl_http_cookie(const tl_http *h, const char *cookie, char *out,
                    size_t size);
void tl_http_free(tl_http *h);

/* What tl_create_handler saw: guest_req_create_guest's outcome. */
typedef struct tl_created {
    guest_status st;
    guest_error err;
    int64_t id;
    char name[GUEST_USERNAME_BUF];
    bool is_guest;
} tl_created;
/* A handler that calls guest_req_create_guest and records the outcome in
 * the tl_created passed as userdata. */
void tl_create_handler(guest_req *req, void *created);
/* A handler that records guest_req_user's outcome (and its guest_error) in
 * a tl_created. */
void tl_whoami_handler(guest_req *req, void *created);

/* A minimal HTTP/1.1 client over loopback: sends @p request verbatim to
 * 127.0.0.1:@p port and returns the whole response (malloc'd, caller
 * frees), or NULL on a connection failure. Waits at most @p timeout_ms. */
char *tl_http_raw(int port, const char *request, int timeout_ms);
/* The status code of a raw response (0 if unparseable). */
int tl_raw_status(const char *response);
/* A header value copied from a raw response, or NULL (caller frees). */
char *tl_raw_header(const char *response, const char *name);
/* The body of a raw response (points into it). */
const char *tl_raw_body(const char *response);

/* ---- guests, users and requests with cookies ---- */
/* A CSRF secret the tests put in the cookie and, unmasked, in forms. */
#define TL_CSRF "abcdefghijklmnopqrstuvwxyzABCDEF"
/* A password every validator accepts. */
#define TL_PASSWORD "Quartz-Lantern-58"

/* tl_config for @p schema with cheap hashing (1000 iterations), then
 * @p tweak (may be NULL), then a context. */
guest_ctx *tl_ctx(const char *schema, void (*tweak)(guest_config *));

/* A new guest; "sessionid=<token>" into @p cookie. Returns its id. */
int64_t tl_new_guest(guest_ctx *ctx, char *cookie, size_t size);

/* A registered user made with guest_user_create (must succeed). */
int64_t tl_new_user(guest_ctx *ctx, const char *username, const char *password);

/* "sessionid=...; csrftoken=TL_CSRF" (either part may be left out). */
void tl_cookie_header(char *out, size_t size, const char *session,
                      bool with_csrf);

/* One request through @p fn: @p method, @p target, optional Cookie header
 * and body (urlencoded unless a Content-Type is added with @p ctype). */
void tl_request(guest_ctx *ctx, tl_http *h, const char *method,
                const char *target, const char *cookie, const char *ctype,
                const char *body, guest_handler_fn fn, void *userdata);

/* Runs @p sql after replacing every "@" with the schema name. */
long long tl_scalar_in(const char *schema, const char *sql);
void tl_exec_in(const char *schema, const char *sql);
/* First column of the first row as text into @p out ("" when no row). */
void tl_text_in(const char *schema, const char *sql, char *out, size_t size);

/* The id the cookie "sessionid=..." resolves to now (0: anonymous), and
 * whether that user is a guest. */
int64_t tl_whoami(guest_ctx *ctx, const char *cookie, bool *is_guest);
/* The same request, whatever its outcome: guest_req_user's status and
 * user in @p seen. */
void tl_resolve(guest_ctx *ctx, const char *cookie, tl_created *seen);

/* The value of attribute value="..." of the input named @p name in an HTML
 * page, into @p out; false when not found. */
bool tl_input_value(const char *html, const char *name, char *out, size_t size);

/* A guest_signup store callback that sleeps 150 ms, holding the conversion
 * transaction open so a racing request arrives while it holds its locks. */
guest_status tl_slow_store(guest_db *db, const guest_user *user,
                           const guest_form *form, guest_form_errors *errors,
                           void *ud);

/* ---- clusters of a suite's own (tests/pg-fixture.sh) ---- */
/* Runs `pg-fixture.sh COMMAND DIR [EXTRA]` (start, stop, pause, resume,
 * standby DIR PRIMARY_DIR, crash, promote); ck_assert on failure. */
void tl_pg(const char *command, const char *dir, const char *extra);
/* The conninfo of the cluster in @p dir (DIR/conninfo) into @p out. */
void tl_pg_conninfo(const char *dir, char *out, size_t size);
/* Its port (DIR/port). */
int tl_pg_port(const char *dir);

/* Runs every test of @p s (and frees it); the exit status for main(). */
int tl_run(Suite *s);
/* The same in this process (a suite whose test keeps clusters of its own
 * across steps), stopping the clusters in @p dirs (NULL-terminated) when
 * a test failed, so no server outlives the run. */
int tl_run_stopping(Suite *s, const char *const *dirs);

/* Milliseconds on a monotonic clock. */
long long tl_now_ms(void);

#endif

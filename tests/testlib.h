/* Shared test helpers: the fixture database, an in-process adapter that
 * records responses, and a tiny HTTP client for real servers. */
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
void tl_exec(const char *sql);
/* Drops @p schema so a suite starts from nothing. */
void tl_drop_schema(const char *schema);
/* guest_config_init + fixture database + @p schema. */
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
    const char *client_addr; /* NULL: "127.0.0.1" */
    /* response, recorded */
    int status;
    char *res_headers[TL_MAX_HEADERS * 2][2];
    int nres_headers;
    char *res_body;
    size_t res_len;
} tl_http;

void tl_http_init(tl_http *h, const char *method, const char *target);
void tl_http_add(tl_http *h, const char *name, const char *value);
/* Runs @p handler on a guest_req for @p h and records the response. */
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
/* A handler that records guest_req_user's outcome in a tl_created. */
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

/* Runs every test of @p s (and frees it); the exit status for main(). */
int tl_run(Suite *s);

/* Milliseconds on a monotonic clock. */
long long tl_now_ms(void);

#endif

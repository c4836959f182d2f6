/* libguestuser-oidc's own internals, shared by the files of src/oidc/.
 * This component sits above the library like an application: it includes
 * the public headers only (guestuser/...), libcurl, cjose and jansson. */
#ifndef GUESTUSER_SRC_OIDC_OIDC_H
#define GUESTUSER_SRC_OIDC_OIDC_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjose/cjose.h>
#include <jansson.h>

#include "guestuser/oidc.h"

/* What a failed step means for the visitor's answer. */
typedef enum guest__oidc_fault {
    GUEST__OIDC_OK = 0,
    GUEST__OIDC_REFUSED,  /* 400: the flow, the provider's answer or token */
    GUEST__OIDC_UPSTREAM, /* 502: the provider unreachable, slow, too big */
    GUEST__OIDC_BUSY,     /* 503: the provider calls all taken, or the DB */
    GUEST__OIDC_INTERNAL  /* 500: out of memory and the like */
} guest__oidc_fault;

/* Why a step failed: the class, a short kind for the log limiter and the
 * log line's detail (never shown to the visitor). */
typedef struct guest__oidc_why {
    guest__oidc_fault fault;
    const char *kind;
    char text[256];
} guest__oidc_why;

/* Sets @p why and returns its fault. */
guest__oidc_fault guest__oidc_fail(guest__oidc_why *why,
                                   guest__oidc_fault fault, const char *kind,
                                   const char *fmt, ...) GUEST_PRINTF(4, 5);

/* A provider's signing keys as one JWKS fetch gave them; shared by the
 * verifications in progress, freed by the last release. */
typedef struct guest__oidc_jwks {
    unsigned refs; /* under guest_oidc.mu */
    size_t count;
    cjose_jwk_t **keys;
    char **algs; /* each key's "alg", or NULL */
} guest__oidc_jwks;

typedef struct guest__oidc_provider {
    char *name;
    char *issuer;
    char *client_id;
    char *client_secret;
    char *redirect_uri;
    /* From discovery, under guest_oidc.mu; set once, never changed, so a
     * pointer read under the lock stays valid until guest_oidc_free. */
    bool discovered;
    char *authorization_endpoint;
    char *token_endpoint;
    char *jwks_uri;
    bool auth_post;    /* client_secret_post: basic is not offered */
    bool iss_required; /* authorization_response_iss_parameter_supported */
    /* The current keys, and when a token's unknown kid last made us fetch
     * them again (monotonic ms; 0: never), under guest_oidc.mu. */
    guest__oidc_jwks *jwks;
    int64_t jwks_refetched_ms;
} guest__oidc_provider;

struct guest_oidc {
    guest_ctx *ctx;
    char *public_url; /* without a trailing '/' */
    char *prefix;     /* login_url_prefix */
    unsigned http_timeout_ms;
    size_t max_response_bytes;
    unsigned concurrency;
    unsigned wait_ms;
    guest__oidc_provider *providers;
    size_t count;
    pthread_mutex_t mu; /* discovery and keys of every provider */
    /* The bound on provider calls at once. */
    pthread_mutex_t slot_mu;
    pthread_cond_t slot_cv;
    unsigned slots_used;
    guest_log_limiter *log;
};

/* The binding cookie's name; its Path is the prefix. */
#define GUEST__OIDC_COOKIE "guestuser_oidc"
/* Seconds a flow lives. */
#define GUEST__OIDC_FLOW_TTL 600
/* Clock skew allowed on exp and iat, seconds. */
#define GUEST__OIDC_SKEW 60
/* Least time between two JWKS fetches for an unknown kid, ms. */
#define GUEST__OIDC_JWKS_REFETCH_MS 60000

/* ---- config.c ---- */
/* True for an absolute https URL, or http on a loopback host, without
 * user info or fragment (and, when @p no_query, without query). */
bool guest__oidc_url_ok(const char *url, bool no_query);
/* The provider named by the path segment [name, name+len), or NULL. */
guest__oidc_provider *guest__oidc_find(const guest_oidc *o, const char *name,
                                       size_t len);
/* One log line through the context's log, limited per kind. */
void guest__oidc_log(guest_oidc *o, guest_log_level level,
                     const guest__oidc_provider *p, const guest__oidc_why *why);
/* Monotonic milliseconds. */
int64_t guest__oidc_now_ms(void);

/* ---- slots.c ---- */
/* Takes a place for provider calls, waiting up to wait_ms; false when
 * none came free. */
bool guest__oidc_slot_take(guest_oidc *o);
void guest__oidc_slot_give(guest_oidc *o);

/* ---- http_client.c ---- */
typedef struct guest__oidc_response {
    long status;
    char *body; /* NUL-terminated; free() */
    size_t len;
} guest__oidc_response;

/* GET @p url (@p form NULL) or POST @p form (urlencoded) to it, within
 * http_timeout_ms and max_response_bytes, following no redirect. With
 * @p user set, HTTP Basic with @p user and @p password, each
 * form-urlencoded first (RFC 6749, 2.3.1). GUEST__OIDC_UPSTREAM for no
 * answer in time, a connection failure or an answer over the limit; the
 * caller judges the status. */
guest__oidc_fault guest__oidc_http(const guest_oidc *o, const char *url,
                                   const char *form, const char *user,
                                   const char *password,
                                   guest__oidc_response *res,
                                   guest__oidc_why *why);
void guest__oidc_response_free(guest__oidc_response *res);
/* @p s form-urlencoded; malloc'd, NULL when out of memory. */
char *guest__oidc_escape(const char *s);
/* Parses @p res's body as one JSON object (duplicate keys refused). */
json_t *guest__oidc_json(const guest__oidc_response *res);

/* ---- discovery.c ---- */
/* The provider's endpoints, fetched on first use. */
guest__oidc_fault guest__oidc_discover(guest_oidc *o, guest__oidc_provider *p,
                                       guest__oidc_why *why);
/* The provider's current keys (a reference: release with
 * guest__oidc_jwks_release), fetching them when there are none yet or,
 * with @p refresh (a token named a kid they lack), when no such refetch
 * happened in the last minute. */
guest__oidc_fault guest__oidc_jwks_get(guest_oidc *o, guest__oidc_provider *p,
                                       bool refresh, guest__oidc_jwks **out,
                                       guest__oidc_why *why);
void guest__oidc_jwks_release(guest_oidc *o, guest__oidc_jwks *jwks);
void guest__oidc_jwks_free(guest__oidc_jwks *jwks);

/* ---- jwt.c ---- */
/* Verifies @p id_token for @p p: signature with a JWKS key, alg, iss, aud,
 * azp, exp, iat and @p nonce. *claims is the payload on success (decref). */
guest__oidc_fault guest__oidc_verify(guest_oidc *o, guest__oidc_provider *p,
                                     const char *id_token, const char *nonce,
                                     json_t **claims, guest__oidc_why *why);
/* Whether claims' time fields hold at @p now (Unix seconds). */
guest__oidc_fault guest__oidc_check_claims(const guest__oidc_provider *p,
                                           const json_t *claims,
                                           const char *nonce, int64_t now,
                                           guest__oidc_why *why);

/* ---- flow.c ---- */
/* @p bytes random bytes as base64url into @p out (4/3 as long, + NUL). */
bool guest__oidc_random(char *out, size_t size, size_t bytes);
/* The PKCE S256 challenge of @p verifier into @p out (44 bytes). */
bool guest__oidc_challenge(const char *verifier, char *out, size_t size);
/* What a flow keeps between login and callback. */
typedef struct guest__oidc_flow {
    char *provider;
    char *nonce;
    char *verifier;
    char *next; /* NULL: none */
} guest__oidc_flow;
char *guest__oidc_flow_encode(const guest__oidc_flow *f);
bool guest__oidc_flow_decode(const char *payload, guest__oidc_flow *f);
void guest__oidc_flow_clear(guest__oidc_flow *f);
/* The authorization URL for a new flow; malloc'd. */
char *guest__oidc_authorize_url(const guest__oidc_provider *p,
                                const char *state, const char *nonce,
                                const char *challenge);
/* Exchanges @p code at the token endpoint; *id_token is malloc'd. */
guest__oidc_fault guest__oidc_exchange(guest_oidc *o, guest__oidc_provider *p,
                                       const char *code, const char *verifier,
                                       char **id_token, guest__oidc_why *why);

/* ---- page.c ---- */
/* Status, no-cache headers and a small HTML document: @p title as its
 * heading, then @p text (escaped); or, with @p json, {"errors": {"__all__":
 * [text]}}. */
void guest__oidc_page(guest_req *req, bool json, int status, const char *title,
                      const char *text);
/* Starts an HTML page (status, headers, head, heading); false when a
 * header could not be added (a 500 is answered then). */
/* The request's form (caller frees), or NULL after answering 400, 413,
 * 415 or 500 (guest_req_form_http_status) as a page or JSON. */
guest_form *guest__oidc_form(guest_req *req, bool json);
bool guest__oidc_page_begin(guest_req *req, int status, const char *title);
void guest__oidc_page_end(guest_req *req);
/* Sends @p obj (stolen) as JSON with @p status. */
void guest__oidc_send_json(guest_req *req, int status, json_t *obj);
/* Adds a header the answer can do without. */
void guest__oidc_header(guest_req *req, const char *name, const char *value);
/* Whether a view goes on with @p req here: false for NULL, and when the
 * request was just deferred from a loop to a worker. Each view begins so.
 * (accounts' guest__view_enter is hidden in another library.) */
bool guest__oidc_view_enter(guest_req *req);
/* Cache-Control: no-store and X-Frame-Options: DENY. */
bool guest__oidc_no_cache(guest_req *req);
/* The value of cookie @p name in the request's Cookie header into @p out;
 * false when absent or longer than @p size - 1. */
bool guest__oidc_cookie(const guest_req *req, const char *name, char *out,
                        size_t size);
/* One form: a POST to @p action with the CSRF token, @p next (may be
 * NULL) and the button "Continue with @p name" (views.c). */
void guest__oidc_write_form(guest_req *req, const char *action,
                            const char *token, const char *next,
                            const char *name);
/* @p url with bytes outside printable ASCII percent-encoded; malloc'd. */
char *guest__oidc_location(const char *url);

#endif

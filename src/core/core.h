/* The core layer: the request path. The context and its settings, the
 * request and response objects, sessions and signed cookies, who the
 * client is, the current user and guest creation, the guards and the
 * abuse limits. Calls store/ and base/. Internal; never installed. */
#ifndef GUESTUSER_CORE_H
#define GUESTUSER_CORE_H

#include <regex.h>

#include "store/store.h"

/* A signature: base64url of a full HMAC-SHA256 */
#define GUEST__TAG_CHARS 43
/* A signed session cookie: token "." tag */
#define GUEST__SIGNED_TOKEN_CHARS (GUEST__TOKEN_CHARS + 1 + GUEST__TAG_CHARS)

/* One trusted_proxies block; IPv4 as IPv4-mapped IPv6 (prefix + 96). */
typedef struct guest__cidr {
    unsigned char addr[16];
    unsigned prefix;
} guest__cidr;

typedef struct guest__hashslots guest__hashslots;
typedef struct guest__session_cache guest__session_cache;

/* What core keeps per context, reached as ctx->core (config.c allocates
 * and frees it with the context); each field group names the file that
 * owns it. */
struct guest__core {
    /* config.c: every string copied from the caller's config, and the
     * blocked_user_agents copy (NULL-terminated) with its compiled forms */
    char **owned;
    size_t owned_count;
    const char **agents;
    regex_t *agent_re;
    size_t agent_count;
    /* identity.c: the width guest_name_numbered draws at now; starts at
     * name_suffix_digits and grows when that space is full. */
    _Atomic unsigned name_digits;
    /* guards.c: when a failed guest creation was last logged
     * (guest__log_every) */
    _Atomic int64_t name_exhausted_logged_ms;
    _Atomic int64_t name_failed_logged_ms;
    /* hashslots.c: bounds the password hashes running at once. */
    guest__hashslots *hash_slots;
    /* client_addr.c: trusted_proxies, parsed */
    guest__cidr *proxies;
    size_t proxy_count;
    /* hosts.c: allowed_hosts, lowercased, IPv6 in brackets; checked only
     * when hosts_set. request.c: when a refused Host was last logged. */
    char **hosts;
    size_t host_count;
    bool hosts_set;
    _Atomic int64_t bad_host_logged;
    /* limits: when the last "limit reached" lines were logged
     * (identity.c). */
    _Atomic int64_t rate_logged;
    _Atomic int64_t cap_logged;
    /* signing.c: owned copies of cfg.secret_keys (NULL-terminated), wiped
     * on free; none without keys. */
    char **secret_keys;
    size_t secret_key_count;
    /* session_cache.c: resolved sessions (NULL: session_cache_ttl is off);
     * see ctx->session_epoch for what makes them stale from store. */
    guest__session_cache *session_cache;
};

/* accounts/accounts.h: the accounts layer's per-request state. */
typedef struct guest__req_accounts guest__req_accounts;

/* Taken before a database lookup, handed to guest__session_cache_put: what
 * the lookup read is stored only when nothing was dropped meanwhile. */
typedef struct guest__cache_ticket {
    uint64_t gen, epoch;
} guest__cache_ticket;

/* The request object (request.c); each field group names the file that
 * owns it. */

struct guest_req {
    guest_ctx *ctx;
    /* The adapter's callbacks: ops points at ops_copy, which holds the
     * first ops->size bytes the adapter gave and NULL past them. */
    const guest_http_ops *ops;
    guest_http_ops ops_copy;
    void *conn;
    char *path; /* target without the query string */
    bool user_resolved;
    bool has_user;
    bool vary_cookie_sent; /* "Vary: Cookie" added once per response */
    guest_user user;
    int status;
    /* accounts/accounts.h: what accounts keeps for this request (NULL
     * until it needs it), and its size: guest_req_free wipes and frees it
     * without knowing its fields. */
    guest__req_accounts *accounts;
    size_t accounts_size;
    /* client_addr.c, set in guest_req_new: the adapter's peer text, the
     * effective client address (points at client_buf or at peer) and, when
     * that is an IP address, its 16-byte form (IPv4 mapped) and family
     * (AF_INET, AF_INET6; 0: none). */
    const char *peer;
    const char *client;
    char client_buf[46]; /* INET6_ADDRSTRLEN */
    unsigned char client_ip[16];
    int client_family;
    /* limits.c: the client's keys once computed (keys.done false until
     * then), and the seconds a limit that refused this request asks to
     * wait. */
    guest__client_keys keys;
    int64_t retry_after;
    /* response.c: the Cache-Control the library sent (0: none, 1: private,
     * 2: no-store), so a response carries one. */
    unsigned char cache_sent;
    /* req_db.c: the connection lent to the handler (NULL: none yet), and
     * whether it was lost, which fails every later use in this request. */
    PGconn *db_conn;
    bool db_lost;
    /* loop.c: on an event loop's thread (guest_req_try_on_loop) and
     * deferred from there; a lookup the resolver has in flight (its token
     * hash, cache ticket and what to call with the outcome); a lookup that
     * failed, which the guards then answer (GUEST_OK: none). */
    bool on_loop;
    bool deferred;
    bool resolving;
    guest_status resolve_failed;
    unsigned char resolve_hash[GUEST__SHA256_BYTES];
    guest__cache_ticket resolve_ticket;
    guest_resolved_fn resolve_done;
    void *resolve_arg;
    /* loop.c: a guest made through the resolver (guest__loop_create): the
     * resolver that may park the request (NULL: it may not), whether it
     * is parked, the answer the guard reads when it runs again (made:
     * the outcome is in create_st), the clashes so far and the session's
     * token (a bearer secret, wiped once used) and its hash. */
    guest_resolver *resolver;
    bool parked;
    bool made;
    bool clashed;
    bool create_lost;
    guest_status create_st;
    unsigned create_clashes;
    unsigned create_digits;
    char create_token[GUEST__TOKEN_CHARS + 1];
    unsigned char create_hash[GUEST__SHA256_BYTES];
};

/* req_db.c: gives the request's lent connection back (guest_req_free). */
void guest__req_db_release(guest_req *req);

/* hosts.c */
/* Parses allowed_hosts into ctx->core->hosts; GUEST_ERR_CONFIG naming the bad
 * entry, GUEST_ERR_NOMEM. */
guest_status guest__hosts_parse(guest_ctx *ctx, guest_error *err);
void guest__hosts_free(guest_ctx *ctx);
/* True when allowed_hosts is unset, or Host value @p host (NULL: missing)
 * is well-formed and matches an entry. */
bool guest__host_allowed(const guest_ctx *ctx, const char *host);

/* client_addr.c */
/* Parses trusted_proxies into ctx->core->proxies; GUEST_ERR_CONFIG naming the
 * bad entry, GUEST_ERR_NOMEM. */
guest_status guest__proxies_parse(guest_ctx *ctx, guest_error *err);
/* Parses @p n bytes of @p s as one IPv4 or IPv6 address (an IPv6 zone
 * "%eth0" is ignored) into out[16], IPv4 and IPv4-mapped IPv6 as
 * ::ffff:a.b.c.d with *family AF_INET, else AF_INET6. */
bool guest__parse_ip(const char *s, size_t n, unsigned char out[16],
                     int *family);
/* Decides the request's peer and effective client address (guest_req_new
 * calls it once). */
void guest__req_find_client(guest_req *req);
/* The effective client address (see guest_req_client_addr) in binary:
 * out[16] as IPv6, an IPv4 client as ::ffff:a.b.c.d with *family AF_INET,
 * else AF_INET6. False (out untouched) when the adapter gave no IP
 * address. For per-client limits: an IPv4 address or an IPv6 /64 is one
 * client. */
bool guest__req_client_ip(const guest_req *req, unsigned char out[16],
                          int *family);

/* request.c: the request object and its accessors. */
/* True when the request came over HTTPS: the adapter says so, or the
 * config's secure_proxy_header says "https". */
bool guest__req_is_secure(const guest_req *req);
/* The request's Host header when it may name this site in redirect
 * targets and CSRF origins: an allowed host, or any Host when
 * allowed_hosts is unset; NULL otherwise. */
const char *guest__req_host(const guest_req *req);
/* Marks the response as depending on the Cookie header, once; shared
 * caches must not hand one visitor's page to another. */
void guest__vary_cookie(guest_req *req);
/* Makes the request's cached user @p user (NULL: anonymous). */
void guest__req_set_user(guest_req *req, const guest_user *user);
/* Forgets the cached user so the next guest_req_user() asks the database. */
void guest__req_forget_user(guest_req *req);

/* response.c */
guest_status guest__respond_unavailable(guest_req *req);
/* A plain 500 in place of whatever the response held so far (when the
 * adapter can reset it). */
guest_status guest__respond_error(guest_req *req);

/* signing.c: cookies signed under cfg.secret_keys. */
/* GUEST_OK when @p keys (NULL: none) is a usable secret_keys list, else
 * GUEST_ERR_CONFIG naming the weak or missing key. */
guest_status guest__check_secret_keys(const char *const *keys,
                                      guest_error *err);
/* Copies cfg.secret_keys into @p ctx and points the field at the copies. */
guest_status guest__keys_copy(guest_ctx *ctx);
/* Wipes and frees those copies. */
void guest__keys_free(guest_ctx *ctx);
/* True when the context signs its cookies. */
bool guest__signing(const guest_ctx *ctx);
/* The base64url tag of @p len bytes of @p value under the first key, for
 * the use @p purpose. */
guest_status guest__sign(const guest_ctx *ctx, const char *purpose,
                         const char *value, size_t len,
                         char tag[GUEST__TAG_CHARS + 1]);
/* Index of the key under which @p tag (@p taglen characters) signs
 * @p value for @p purpose; -1 when none does. Every key is tried, each
 * comparison in constant time. */
int guest__verify(const guest_ctx *ctx, const char *purpose, const char *value,
                  size_t len, const char *tag, size_t taglen);

/* session.c */
/* The first value of cookie @p name in a Cookie header, copied into @p out
 * (size @p size); false when absent or too long. */
bool guest__cookie_value(const char *header, const char *name, char *out,
                         size_t size);
guest_status guest__session_new(char token[GUEST__TOKEN_CHARS + 1],
                                unsigned char hash[GUEST__SHA256_BYTES]);
bool guest__session_hash(const char *token,
                         unsigned char hash[GUEST__SHA256_BYTES]);
/* The session cookie value for @p token: the token itself without keys,
 * token "." tag with them. */
guest_status
guest__session_cookie_make(const guest_ctx *ctx, const char *token,
                           char out[GUEST__SIGNED_TOKEN_CHARS + 1]);
/* SHA-256 of the token in session cookie value @p value; false for anything
 * malformed or, with keys, not signed by one of them (no database work). */
bool guest__session_cookie_hash(const guest_ctx *ctx, const char *value,
                                unsigned char hash[GUEST__SHA256_BYTES]);
guest_status guest__set_session_cookie(guest_req *req, const char *token);
guest_status guest__clear_session_cookie(guest_req *req);
/* Adds "Set-Cookie: name=value" with the config's Path, Domain, SameSite
 * and Secure, Max-Age @p max_age, and HttpOnly when @p http_only. */
guest_status guest__set_cookie(guest_req *req, const char *name,
                               const char *value, long long max_age,
                               bool http_only);

/* names.c: guest_name_numbered with @p digits (1..GUEST__NAME_MAX_DIGITS)
 * instead of cfg->name_suffix_digits. */
#define GUEST__NAME_MAX_DIGITS 18
guest_status guest__name_numbered_width(const guest_config *cfg,
                                        unsigned digits, char *buf,
                                        size_t size);

/* limits.c */
/* The rate-limit key of a client address (NULL or unparseable: "unknown",
 * one shared budget): an IPv4 address (also written IPv4-mapped), or the
 * /64 prefix of an IPv6 one. */
void guest__client_key(const char *addr, char out[GUEST__CLIENT_KEY_BUF]);
/* All keys of a client address: the /64 (or IPv4) key as above, for IPv6
 * the enclosing /56 and /48 too (else ""), and its network for the guest
 * cap's share: the IPv4 /24 or the IPv6 /48 ("unknown" when unknown). */
void guest__client_keys_of(const char *addr, guest__client_keys *out);
/* The request's client keys, computed once. */
const guest__client_keys *guest__req_keys(guest_req *req);
const char *guest__req_client_key(guest_req *req);
/* Login and conversion limits. A take counts the attempt in every window
 * of the client before any password is hashed, atomically (one statement),
 * and answers GUEST_OK, GUEST_ERR_RATE_LIMITED (with req->retry_after) or a
 * database status. After the attempt, done gives the place back unless the
 * attempt failed the way a guesser fails (login: GUEST_ERR_AUTH;
 * conversion: GUEST_ERR_VALIDATION, GUEST_ERR_USERNAME_TAKEN); a
 * successful login also resets its username's count. */
guest_status guest__limit_login_take(guest_req *req, const char *username,
                                     guest_error *err);
void guest__limit_login_done(guest_req *req, const char *username,
                             guest_status outcome);
guest_status guest__limit_convert_take(guest_req *req, guest_error *err);
void guest__limit_convert_done(guest_req *req, guest_status outcome);
/* 429 with Retry-After (req->retry_after) and a plain-text body; returns
 * GUEST_ERR_RATE_LIMITED, or the adapter's failure. */
guest_status guest__respond_rate_limited(guest_req *req);
/* response.c: Cache-Control "private" (a response that sets a session),
 * or with @p no_store "no-cache, no-store, must-revalidate, private" (a
 * page with a CSRF token or account data); sent once per response, the
 * first call deciding, so a view that asks for no-store before its work
 * is not followed by a second, weaker header. */
guest_status guest__res_cache_control(guest_req *req, bool no_store);

/* identity.c: who the request's user is, and making a guest. */
/* The start of every session lookup, blocking or on an event loop:
 * "Vary: Cookie", the cookie's token hash into @p hash, and the session
 * cache. NONE: no session (the request is resolved, anonymous); CACHED:
 * resolved from the cache; NEEDED: the database must be asked about
 * @p hash, then guest__req_lookup_done() given its answer (@p user NULL:
 * no live session), which counts it and caches it under @p ticket. */
typedef enum guest__lookup {
    GUEST__LOOKUP_NONE,
    GUEST__LOOKUP_CACHED,
    GUEST__LOOKUP_NEEDED
} guest__lookup;
guest__lookup guest__req_lookup_start(guest_req *req,
                                      unsigned char hash[GUEST__SHA256_BYTES]);
void guest__req_lookup_done(guest_req *req, const unsigned char *hash,
                            const guest_user *user, int64_t ms_left,
                            const guest__cache_ticket *ticket);
/* SHA-256 of the request's well-formed session cookie; false when none. */
bool guest__req_session_hash(guest_req *req,
                             unsigned char hash[GUEST__SHA256_BYTES]);
/* guest_req_create_guest; *name_failed (may be NULL) tells a failure of
 * the name generator (an error, an implausible name, or every name taken)
 * from the others. */
guest_status guest__create_guest(guest_req *req, const guest_user **user,
                                 bool *name_failed, guest_error *err);
/* The steps of guest__create_guest, which loop.c takes one answer at a
 * time. A name from the generator (*digits: the numbered generator's
 * width used); after a clash, whether to try another (*clashes counts
 * them); the error once no more are tried; and the outcome of a statement
 * that did not clash, acted on (req->user filled for GUEST__CREATED):
 * counted, logged, the cookie set and on_guest_created called. */
guest_status guest__guest_name(guest_req *req, char name[GUEST_USERNAME_BUF],
                               unsigned *digits, bool *name_failed,
                               guest_error *err);
bool guest__guest_name_retry(guest_ctx *ctx, unsigned *clashes,
                             unsigned digits);
guest_status guest__guest_name_exhausted(guest_ctx *ctx, bool *name_failed,
                                         guest_error *err);
guest_status guest__guest_made(guest_req *req, guest__created outcome,
                               int64_t wait, const char *token,
                               const guest_user **user, guest_error *err);

/* loop.c: guest_allow's new guest on an event loop's thread. PARKED: the
 * statement went out on the request's resolver and the guard returns
 * without answering; DONE: *st is the creation's outcome (as
 * guest__create_guest's), for the guard to act on as after a blocking
 * creation; DEFER: the request must go to a worker (no resolver that
 * parks, a hook or a name generator that may block, the resolver cannot
 * take it now, or its connection was lost). */
typedef enum guest__loop_step {
    GUEST__LOOP_PARKED,
    GUEST__LOOP_DONE,
    GUEST__LOOP_DEFER
} guest__loop_step;
guest__loop_step guest__loop_create(guest_req *req, guest_status *st,
                                    bool *name_failed, guest_error *err);

/* hashslots.c: a counting semaphore of password-hash slots, one per
 * context, so a flood of logins cannot take every core. */
guest_status guest__hashslots_new(unsigned n, guest__hashslots **out);
void guest__hashslots_free(guest__hashslots *s);
/* Takes a slot, waiting at most @p wait_ms on the monotonic clock; false
 * when none was freed in time. */
bool guest__hashslots_acquire(guest__hashslots *s, unsigned wait_ms);
void guest__hashslots_release(guest__hashslots *s);
/* The request path's wrapper around every PBKDF2 run it does: a slot of
 * ctx within cfg.hash_wait_ms, else GUEST_ERR_BUSY (logged at most once
 * per 10 s). Each GUEST_OK is paired with one guest__hash_slot_give(). */
guest_status guest__hash_slot_take(guest_ctx *ctx);
void guest__hash_slot_give(guest_ctx *ctx);

/* session_cache.c: resolved sessions kept for session_cache_ttl seconds
 * (only positive lookups: a miss always asks the database). Every call is
 * thread-safe and a no-op (a miss) while the cache is off. */
guest_status guest__session_cache_new(const guest_config *cfg,
                                      guest__session_cache **out);
void guest__session_cache_free(guest__session_cache *c);
guest__cache_ticket guest__session_cache_ticket(guest_ctx *ctx,
                                                const unsigned char *hash);
/* True, and *user filled, when @p hash is cached and still fresh. */
bool guest__session_cache_get(guest_ctx *ctx, const unsigned char *hash,
                              guest_user *user);
/* Keeps @p user for @p hash for the ttl, or @p ms_left when the session
 * ends sooner. */
void guest__session_cache_put(guest_ctx *ctx, const unsigned char *hash,
                              const guest_user *user, int64_t ms_left,
                              const guest__cache_ticket *ticket);
/* Call after the change is committed: the session @p hash, or every
 * session of user @p user_id, is asked from the database again. */
void guest__session_cache_drop_token(guest_ctx *ctx, const unsigned char *hash);
void guest__session_cache_drop_user(guest_ctx *ctx, int64_t user_id);
/* Sessions held now (for tests). */
size_t guest__session_cache_count(guest_ctx *ctx);
/* Starts the cache's LISTEN connection (session_cache_listen_conninfo, or
 * db_conninfo) after the schema is in place; until it is up, and whenever
 * it is down, the cache is empty and every lookup asks the database. With
 * @p behind_pooler and no listen conninfo it is not started (logged).
 * A no-op without a cache. */
guest_status guest__session_cache_listen(guest_ctx *ctx, bool behind_pooler,
                                         guest_error *err);
/* Stops it (promptly, whatever the database does); the cache is off. */
void guest__session_cache_unlisten(guest_ctx *ctx);
/* Whether the cache answers now (its LISTEN connection is up). */
bool guest__session_cache_listening(guest_ctx *ctx);

/* guards.c: base?field=quote(target), as Django's redirect_to_login.
 * Caller frees. */
char *guest__redirect_with_next(const char *base, const char *field,
                                const char *target);

#endif

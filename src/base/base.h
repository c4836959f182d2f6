/* Shared inside the library only; never installed. */
#ifndef GUESTUSER_INTERNAL_H
#define GUESTUSER_INTERNAL_H

#include <libpq-fe.h>
#include <regex.h>
#include <stdarg.h>

#include "guestuser/guestuser.h"

#define GUEST__TOKEN_BYTES 32
/* base64url of 32 bytes without padding */
#define GUEST__TOKEN_CHARS 43
#define GUEST__SHA256_BYTES 32
/* A client's rate-limit key: "a.b.c.d", "xxxx:...::/64" or "unknown". */
#define GUEST__CLIENT_KEY_BUF 64
/* A signature: base64url of a full HMAC-SHA256 */
#define GUEST__TAG_CHARS 43
/* A signed session cookie: token "." tag */
#define GUEST__SIGNED_TOKEN_CHARS (GUEST__TOKEN_CHARS + 1 + GUEST__TAG_CHARS)

struct guest_user {
    int64_t id;
    bool is_guest;
    char username[GUEST_USERNAME_BUF];
};

/* SQL texts built once per context with the schema name quoted in. */
typedef struct guest__sql {
    char *create_guest;
    char *resolve_session;
    char *ping;
} guest__sql;

typedef struct guest__pool guest__pool;
typedef struct guest__hashslots guest__hashslots;

/* One trusted_proxies block; IPv4 as IPv4-mapped IPv6 (prefix + 96). */
typedef struct guest__cidr {
    unsigned char addr[16];
    unsigned prefix;
} guest__cidr;

struct guest_ctx {
    guest_config cfg; /* strings point into owned copies below */
    char **owned;     /* every string copied from the caller's config */
    size_t owned_count;
    const char **agents; /* NULL-terminated copy of blocked_user_agents */
    regex_t *agent_re;
    size_t agent_count;
    guest__pool *pool;
    guest__sql sql;
    /* names: the width guest_name_numbered draws at now; starts at
     * name_suffix_digits and grows when that space is full. */
    _Atomic unsigned name_digits;
    /* names: when a failed guest creation was last logged (guest__log_every) */
    _Atomic int64_t name_exhausted_logged_ms;
    _Atomic int64_t name_failed_logged_ms;
    /* hashslots.c: bounds the password hashes running at once. */
    guest__hashslots *hash_slots;
    /* client_addr.c: trusted_proxies, parsed */
    guest__cidr *proxies;
    size_t proxy_count;
    /* hosts.c: allowed_hosts, lowercased, IPv6 in brackets; checked only
     * when hosts_set */
    char **hosts;
    size_t host_count;
    bool hosts_set;
    _Atomic int64_t bad_host_logged;
    /* limits.c: when the last "limit reached" lines were logged. */
    _Atomic int64_t rate_logged;
    _Atomic int64_t cap_logged;
    /* signing.c: owned copies of cfg.secret_keys (NULL-terminated), wiped
     * on free; none without keys. */
    char **secret_keys;
    size_t secret_key_count;
};

struct guest_req {
    guest_ctx *ctx;
    const guest_http_ops *ops;
    void *conn;
    char *path; /* target without the query string */
    bool user_resolved;
    bool has_user;
    bool vary_cookie_sent; /* "Vary: Cookie" added once per response */
    guest_user user;
    int status;
    /* csrf.c: the CSRF secret in force for this request once looked up or
     * made, and the masked token handed out for it ("" until then). */
    char csrf_secret[32 + 1];
    char csrf_token[64 + 1];
    /* client_addr.c, set in guest_req_new: the adapter's peer text, the
     * effective client address (points at client_buf or at peer) and, when
     * that is an IP address, its 16-byte form (IPv4 mapped) and family
     * (AF_INET, AF_INET6; 0: none). */
    const char *peer;
    const char *client;
    char client_buf[46]; /* INET6_ADDRSTRLEN */
    unsigned char client_ip[16];
    int client_family;
    /* limits.c: the client's key once computed ("" until then), and the
     * seconds a limit that refused this request asks to wait. */
    char client_key[GUEST__CLIENT_KEY_BUF];
    int64_t retry_after;
};

/* errors.c */
guest_status guest__fail(guest_error *err, guest_status st, const char *fmt,
                         ...) GUEST_PRINTF(3, 4);

/* errors.c: @p what + libpq's last message for @p conn, in @p err. */
guest_status guest__fail_pq(guest_error *err, guest_status st, const char *what,
                            const PGconn *conn);

/* log.c: one line to cfg.log (or stderr). */
void guest__log(const guest_ctx *ctx, guest_log_level level, const char *fmt,
                ...) GUEST_PRINTF(3, 4);
/* Like guest__log, but at most once per @p interval_ms for each @p last
 * (a timestamp the caller keeps, 0 at first): for conditions that would
 * otherwise log on every request. True when it logged. */
bool guest__log_every(const guest_ctx *ctx, _Atomic int64_t *last,
                      int64_t interval_ms, guest_log_level level,
                      const char *fmt, ...) GUEST_PRINTF(5, 6);

/* util.c */
char *guest__strdup(const char *s);
char *guest__asprintf(const char *fmt, ...) GUEST_PRINTF(1, 2);
bool guest__has_ctl(const char *s);
/* @p tmpl with every '@' replaced by the quoted schema name; caller frees
 * (NULL when out of memory). */
char *guest__schema_sql(const char *tmpl, const char *schema);
/* Percent-encodes @p in like Python's urllib.parse.quote(in, safe="/"). */
char *guest__url_quote(const char *in);
/* The value of hex digit @p c, -1 when it is not one. */
int guest__hex_value(char c);
/* Decodes the %XX escapes of @p n bytes of @p s into @p out (n + 1 bytes),
 * NUL-terminated; malformed escapes are kept as they are, and '+' becomes a
 * space when @p plus_is_space (form encoding). Returns the decoded length
 * (the result may hold NUL bytes). */
size_t guest__percent_decode(const char *s, size_t n, char *out,
                             bool plus_is_space);
/* True when the media type of Content-Type value @p content_type (leading
 * blanks, parameters and case ignored) is @p type; false for NULL. */
bool guest__media_type_is(const char *content_type, const char *type);

/* crypto.c */
guest_status guest__random(void *buf, size_t len);
/* Uniform random integer in [0, bound). */
guest_status guest__random_below(uint64_t bound, uint64_t *out);
void guest__sha256(const void *data, size_t len,
                   unsigned char out[GUEST__SHA256_BYTES]);
/* base64url without padding; out needs 4*ceil(len/3)+1 bytes. */
void guest__b64url_encode(const unsigned char *in, size_t len, char *out);
/* Decodes exactly @p outlen bytes; false for any malformed input. */
bool guest__b64url_decode(const char *in, size_t inlen, unsigned char *out,
                          size_t outlen);
bool guest__ct_equal(const void *a, const void *b, size_t len);
/* HMAC-SHA256 under @p key of @p label (with its NUL, to separate uses)
 * followed by @p len bytes of @p data. */
guest_status guest__hmac_sha256(const void *key, size_t keylen,
                                const char *label, const void *data, size_t len,
                                unsigned char out[GUEST__SHA256_BYTES]);

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

/* pool.c: a fixed-size, thread-safe libpq connection pool. */
guest_status guest__pool_new(const char *conninfo, unsigned size,
                             unsigned timeout_ms, guest__pool **out,
                             guest_error *err);
void guest__pool_free(guest__pool *pool);
guest_status guest__pool_acquire(guest__pool *pool, PGconn **conn,
                                 guest_error *err);
/* Same, giving up at @p deadline (guest__now_ms() time) instead of the
 * pool's own timeout from now: for callers that share one deadline. */
guest_status guest__pool_acquire_by(guest__pool *pool, int64_t deadline,
                                    PGconn **conn, guest_error *err);
/* @p broken: the connection failed; it is closed and reopened on demand. */
void guest__pool_release(guest__pool *pool, PGconn *conn, bool broken);
unsigned guest__pool_timeout_ms(const guest__pool *pool);

/* db.c: statements with a deadline, on a given connection or via the pool. */
typedef struct guest__params {
    int n;
    const char *values[8];
    int lengths[8];
    int formats[8];
} guest__params;
extern _Atomic unsigned long guest__db_round_trips;
/* Milliseconds on the monotonic clock: every deadline in the library. */
int64_t guest__now_ms(void);
void guest__param_text(guest__params *p, const char *value);
void guest__param_bin(guest__params *p, const void *value, int len);
/* Runs one statement. *res (may be NULL) gets the result to PQclear: the
 * successful one, or on GUEST_ERR_DB the error result (for its SQLSTATE);
 * NULL otherwise. Sets *broken when the connection itself failed. */
guest_status guest__db_run(PGconn *conn, unsigned timeout_ms, const char *sql,
                           const guest__params *p, PGresult **res, bool *broken,
                           guest_error *err);
/* Pool + run, retried once on a fresh connection when the old one broke. */
guest_status guest__db_exec(guest_ctx *ctx, const char *sql,
                            const guest__params *p, PGresult **res,
                            guest_error *err);

/* Like guest__db_exec for the per-request statements: runs @p sql as the
 * prepared statement @p name (prepared on each connection on first use). */
guest_status guest__db_exec_prepared(guest_ctx *ctx, const char *name,
                                     const char *sql, const guest__params *p,
                                     PGresult **res, guest_error *err);

/* migrate.c */
int guest__schema_version_latest(void);
guest_status guest__migrate(PGconn *conn, const char *schema,
                            unsigned timeout_ms, guest_error *err);

/* store.c */
/* The creation statement depends on which limits the config turns on. */
guest_status guest__sql_build(guest__sql *sql, const guest_config *cfg);
void guest__sql_free(guest__sql *sql);
typedef enum guest__created {
    GUEST__CREATED,      /* user filled */
    GUEST__NAME_CLASH,   /* try another name */
    GUEST__RATE_LIMITED, /* *retry_after: seconds until one more fits */
    GUEST__AT_CAPACITY   /* max_guests live guests already */
} guest__created;
guest_status guest__store_create_guest(guest_ctx *ctx, const char *username,
                                       const unsigned char *token_hash,
                                       const char *client, guest_user *user,
                                       guest__created *outcome,
                                       int64_t *retry_after, guest_error *err);
guest_status guest__store_resolve(guest_ctx *ctx,
                                  const unsigned char *token_hash,
                                  guest_user *user, bool *found,
                                  guest_error *err);

/* names.c: guest_name_numbered with @p digits (1..GUEST__NAME_MAX_DIGITS)
 * instead of cfg->name_suffix_digits. */
#define GUEST__NAME_MAX_DIGITS 18
guest_status guest__name_numbered_width(const guest_config *cfg,
                                        unsigned digits, char *buf,
                                        size_t size);

/* request.c: guest_req_create_guest; *name_failed (may be NULL) tells a
 * failure of the name generator (an error, an implausible name, or every
 * name taken) from the others. */
guest_status guest__create_guest(guest_req *req, const guest_user **user,
                                 bool *name_failed, guest_error *err);

/* guards.c: base?field=quote(target), as Django's redirect_to_login.
 * Caller frees. */
char *guest__redirect_with_next(const char *base, const char *field,
                                const char *target);

/* SHA-256 of the request's well-formed session cookie; false when none. */
bool guest__req_session_hash(guest_req *req,
                             unsigned char hash[GUEST__SHA256_BYTES]);

/* request.c: marks the response as depending on the Cookie header, once;
 * shared caches must not hand one visitor's page to another. */
void guest__vary_cookie(guest_req *req);

/* request.c: true when the request came over HTTPS: the adapter says so,
 * or the config's secure_proxy_header says "https". */
bool guest__req_is_secure(const guest_req *req);

/* client_addr.c */
/* Parses trusted_proxies into ctx->proxies; GUEST_ERR_CONFIG naming the
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

/* hosts.c */
/* Parses allowed_hosts into ctx->hosts; GUEST_ERR_CONFIG naming the bad
 * entry, GUEST_ERR_NOMEM. */
guest_status guest__hosts_parse(guest_ctx *ctx, guest_error *err);
void guest__hosts_free(guest_ctx *ctx);
/* True when allowed_hosts is unset, or Host value @p host (NULL: missing)
 * is well-formed and matches an entry. */
bool guest__host_allowed(const guest_ctx *ctx, const char *host);
/* The request's Host header when it may name this site in redirect
 * targets and CSRF origins: an allowed host, or any Host when
 * allowed_hosts is unset; NULL otherwise. */
const char *guest__req_host(const guest_req *req);
/* limits.c */
/* The rate-limit key of a client address (NULL or unparseable: "unknown",
 * one shared budget): an IPv4 address (also written IPv4-mapped), or the
 * /64 prefix of an IPv6 one. */
void guest__client_key(const char *addr, char out[GUEST__CLIENT_KEY_BUF]);
/* The request's client key, computed once. */
const char *guest__req_client_key(guest_req *req);
/* "ON CONFLICT ... DO UPDATE" that moves a rate_windows row (alias r) to
 * the bucket of the row being inserted and adds one; with @p limit_param
 * (an SQL expression) only while the estimate stays within it. Caller
 * frees. */
char *guest__window_upsert(const char *limit_param);
/* "SELECT kind, client, subject, bucket, window_secs, 0, 1, stale_at"
 * for an insert into rate_windows, from SQL expressions. Caller frees. */
char *guest__window_values(const char *kind, const char *client,
                           const char *subject, const char *window);
/* Seconds (at least 1) until a window of @p window seconds holding @p prev
 * and @p curr in @p bucket admits one more under @p limit at epoch time
 * @p now; 0 when it admits one now. */
int64_t guest__window_wait(double now, int64_t window, int64_t bucket,
                           int64_t prev, int64_t curr, int64_t limit);
/* Login and conversion limits: GUEST_OK, GUEST_ERR_RATE_LIMITED (with
 * req->retry_after) or a database status; the record calls count a
 * failure (GUEST_ERR_AUTH, resp. GUEST_ERR_VALIDATION / _USERNAME_TAKEN)
 * or reset the username's count after GUEST_OK. */
guest_status guest__limit_login_check(guest_req *req, const char *username);
void guest__limit_login_record(guest_req *req, const char *username,
                               guest_status outcome);
guest_status guest__limit_convert_check(guest_req *req);
void guest__limit_convert_record(guest_req *req, guest_status outcome);
/* 429 with Retry-After (req->retry_after) and a plain-text body; returns
 * GUEST_ERR_RATE_LIMITED, or the adapter's failure. */
guest_status guest__respond_rate_limited(guest_req *req);

/* response.c */
guest_status guest__respond_unavailable(guest_req *req);

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

#endif

/* The bottom layer: strings, randomness and hashes, statuses, log lines,
 * the clock, and the context every layer shares. Calls nothing else of the
 * library. Internal; never installed. */
#ifndef GUESTUSER_BASE_H
#define GUESTUSER_BASE_H

#include <stdarg.h>
#include <stddef.h>

#include "guestuser/guestuser.h"

#define GUEST__TOKEN_BYTES 32
/* base64url of 32 bytes without padding */
#define GUEST__TOKEN_CHARS 43
#define GUEST__SHA256_BYTES 32
/* A client's rate-limit key: "a.b.c.d", "xxxx:...::/64" or "unknown". */
#define GUEST__CLIENT_KEY_BUF 64
/* A client's rate-limit keys (core/limits.c): the address or IPv6 /64,
 * the IPv6 /56 and /48 ("" for IPv4), and the network whose share of
 * max_guests it uses (IPv4 /24, IPv6 /48; "unknown" when unknown). */
typedef struct guest__client_keys {
    bool done;
    char addr[GUEST__CLIENT_KEY_BUF];
    char p56[GUEST__CLIENT_KEY_BUF];
    char p48[GUEST__CLIENT_KEY_BUF];
    char network[GUEST__CLIENT_KEY_BUF];
} guest__client_keys;

/* SQL texts built once per context with the schema name quoted in
 * (store/guests.c). */
typedef struct guest__sql {
    char *create_guest;
    /* The same through the schema's function (behind a pooler; without
     * abuse limits only, else NULL) */
    char *create_guest_fn;
    char *resolve_session;
    /* The same through the schema's function (behind a pooler) */
    char *resolve_session_fn;
    char *ping;
} guest__sql;

typedef struct guest__pool guest__pool;

/* counters.c: what guest_metrics_get() reports. Every layer counts through
 * the helpers below: relaxed atomic adds, no lock. */
typedef enum guest__counter {
    GUEST__C_GUESTS_CREATED,
    GUEST__C_CRAWLERS_BLOCKED,
    GUEST__C_SESSIONS_RESOLVED,
    GUEST__C_SESSION_CACHE_HITS,
    GUEST__C_SESSION_CACHE_INVALIDATIONS,
    GUEST__C_CONVERSIONS,
    GUEST__C_LOGINS_OK,
    GUEST__C_LOGINS_FAILED,
    GUEST__C_LOGINS_LIMITED,
    GUEST__C_LOGOUTS,
    GUEST__C_RATE_LIMITED,
    GUEST__C_CLEANUP_DELETED,
    GUEST__C_DB_ERRORS,
    GUEST__C_MAILS_SENT,
    GUEST__C_MAILS_FAILED,
    GUEST__C_COUNT
} guest__counter;

typedef enum guest__hist {
    GUEST__H_POOL_WAIT,
    GUEST__H_HASH_WAIT,
    GUEST__H_COUNT
} guest__hist;

/* Per bucket, not cumulative: one add per observation. */
typedef struct guest__histogram {
    _Atomic uint64_t buckets[GUEST_METRICS_BUCKETS];
    _Atomic uint64_t sum_us;
} guest__histogram;

typedef struct guest__metrics {
    _Atomic uint64_t counters[GUEST__C_COUNT];
    guest__histogram hists[GUEST__H_COUNT];
    /* Unix seconds of the last cleanup that succeeded, 0: none yet. */
    _Atomic int64_t cleanup_last_success;
    /* Mails pending in the outbox at this process's last send pass. */
    _Atomic int64_t mail_queued;
} guest__metrics;

/* core/core.h: what core keeps per context (allowed hosts, trusted
 * proxies, signing keys, hash slots, the session cache...). */
typedef struct guest__core guest__core;

/* The context, created by core/config.c. It holds what base and store use;
 * each field group names the file that owns it. */
struct guest_ctx {
    guest_config cfg; /* strings point into copies core/config.c owns */
    guest__pool *pool;
    /* db_read_conninfo's pool (NULL: none), and until when (guest__now_ms)
     * it is skipped after a failure */
    guest__pool *read_pool;
    _Atomic int64_t read_pool_skip_until;
    guest__sql sql;
    /* counters.c: the metrics (guest_metrics_get) */
    guest__metrics metrics;
    /* store/db.c: when an unreachable database was last logged */
    _Atomic int64_t db_down_logged_ms;
    /* store/cleanup.c moves session_epoch on after each batch of deleted
     * users: every session core/session_cache.c cached before is then
     * stale (store cannot reach into core to drop single users). */
    _Atomic uint64_t session_epoch;
    /* core's own state, allocated and freed by core/config.c */
    guest__core *core;
};

/* errors.c */
guest_status guest__fail(guest_error *err, guest_status st, const char *fmt,
                         ...) GUEST_PRINTF(3, 4);

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
/* Milliseconds on the monotonic clock: every deadline in the library. */
int64_t guest__now_ms(void);
char *guest__strdup(const char *s);
char *guest__asprintf(const char *fmt, ...) GUEST_PRINTF(1, 2);
bool guest__has_ctl(const char *s);
/* Percent-encodes every byte of @p in for which @p keep is false, as %XX
 * with upper-case hex; caller frees (NULL when out of memory). */
char *guest__percent_encode(const char *in, bool (*keep)(unsigned char c));
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

/* Decodes one UTF-8 sequence strictly (no overlong forms, surrogates or
 * values past U+10FFFF); returns its length, 0 when malformed. */
size_t guest__utf8_next(const unsigned char *s, uint32_t *cp);
/* Number of code points of @p s read as UTF-8 (a bad byte counts as one). */
size_t guest__utf8_chars(const char *s);
/* True when @p len bytes are well-formed UTF-8 without NUL. */
bool guest__utf8_valid(const char *s, size_t len);

/* Microseconds on the monotonic clock: waits the metrics measure. */
int64_t guest__now_us(void);

/* counters.c. They take a const context because the store layer only holds
 * one; the counters themselves are atomics. */
/* Adds one to @p c. */
void guest__count(const guest_ctx *ctx, guest__counter c);
/* Adds @p n to @p c. */
void guest__count_n(const guest_ctx *ctx, guest__counter c, uint64_t n);
/* A session cache hit; the session cache counts its hits with this (and the
 * resolution itself with GUEST__C_SESSIONS_RESOLVED, as a database hit). */
void guest__metric_cache_hit(const guest_ctx *ctx);
/* The outcome of a guest_login(): OK, GUEST_ERR_AUTH (failed) and
 * GUEST_ERR_RATE_LIMITED (limited) count; any other status does not. NULL
 * @p ctx counts nothing. */
void guest__metric_login(const guest_ctx *ctx, guest_status st);
/* GUEST_ERR_DB and GUEST_ERR_DB_UNAVAILABLE count as database errors; the
 * status is returned unchanged. */
guest_status guest__metric_db(const guest_ctx *ctx, guest_status st);
/* One wait of @p us microseconds (negative counts as 0) into @p h. */
void guest__observe_us(const guest_ctx *ctx, guest__hist h, int64_t us);
/* The wait that started at @p start_us (guest__now_us) and ends now. */
void guest__observe_since(const guest_ctx *ctx, guest__hist h,
                          int64_t start_us);
/* A cleanup finished without an error: its wall-clock time is kept. */
void guest__metric_cleanup_done(const guest_ctx *ctx);
/* The outbox's pending mails, as a send pass found them. */
void guest__metric_mail_queued(const guest_ctx *ctx, int64_t n);
/* Fills the counter and histogram fields of @p out (not the gauges). */
void guest__metrics_read(const guest_ctx *ctx, guest_metrics *out);
/* The upper bound of bucket @p i in microseconds; INT64_MAX for +Inf. */
int64_t guest__bucket_bound_us(unsigned i);

/* crypto.c */
guest_status guest__random(void *buf, size_t len);
/* Uniform random integer in [0, bound). */
guest_status guest__random_below(uint64_t bound, uint64_t *out);
/* GUEST_ERR_CRYPTO (and @p out zeroed) when OpenSSL fails. */
GUEST_NODISCARD guest_status guest__sha256(
    const void *data, size_t len, unsigned char out[GUEST__SHA256_BYTES]);
/* base64url without padding; out needs 4*ceil(len/3)+1 bytes. */
void guest__b64url_encode(const unsigned char *in, size_t len, char *out);
/* Decodes exactly @p outlen bytes; false for any malformed input. */
bool guest__b64url_decode(const char *in, size_t inlen, unsigned char *out,
                          size_t outlen);
/* HMAC-SHA256 under @p key of @p label (with its NUL, to separate uses)
 * followed by @p len bytes of @p data. */
guest_status guest__hmac_sha256(const void *key, size_t keylen,
                                const char *label, const void *data, size_t len,
                                unsigned char out[GUEST__SHA256_BYTES]);

/* words.c: the word lists of guest_name_friendly. */
extern const char *const guest__adjectives[];
extern const size_t guest__adjective_count;
extern const char *const guest__nouns[];
extern const size_t guest__noun_count;

#endif

/* libguestuser: configuration and the shared context. */
#ifndef GUESTUSER_CONFIG_H
#define GUESTUSER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Shared, thread-safe library state; create once, share with all threads. */
typedef struct guest_ctx guest_ctx;
/** A user (guest or registered); borrowed from the request that holds it. */
typedef struct guest_user guest_user;
/** One HTTP request as seen by the library; see http.h. */
typedef struct guest_req guest_req;
/** A database connection inside a library transaction, lent to callbacks. */
typedef struct guest_db guest_db;
typedef struct guest_config guest_config;
/** A verified provider identity (identities.h). */
typedef struct guest_identity guest_identity;

/** Longest username, in characters (as the users.username column). */
#define GUEST_USERNAME_MAX_CHARS 150
/** Buffer size that holds any username as UTF-8 plus its terminator. */
#define GUEST_USERNAME_BUF (GUEST_USERNAME_MAX_CHARS * 4 + 1)

/**
 * Writes a new guest username into @p buf (size @p size, NUL-terminated).
 * Called from any server thread; must be thread-safe. Return GUEST_OK, or
 * an error status to fail the guest creation.
 */
typedef guest_status (*guest_name_fn)(const guest_config *cfg, char *buf,
                                      size_t size, void *userdata);

/** Called after a request created a guest (the reference's guest_created). */
typedef void (*guest_created_fn)(const guest_user *user, guest_req *req,
                                 void *userdata);

/** Called after a guest became a registered user (the converted signal). */
typedef void (*guest_converted_fn)(const guest_user *user, void *userdata);

/**
 * Called inside the login transaction when a guest logs into an existing
 * account: move the guest's data to @p user through @p db. Any status but
 * GUEST_OK rolls the login back. The guest is deleted afterwards.
 */
typedef guest_status (*guest_login_hook_fn)(const guest_user *guest,
                                            const guest_user *user,
                                            guest_db *db, void *userdata);

/**
 * Called by guest_delete_expired() after each batch of expired guests was
 * deleted and committed, with their user ids (@p count of them, borrowed
 * for the call): remove what the application keeps about them outside
 * PostgreSQL (files, cache entries, search documents). Runs on the thread
 * that called guest_delete_expired(), between batches; the rows are gone
 * already, so it cannot stop or undo the deletion.
 */
/**
 * Called after an identity was linked to @p user and committed (a guest
 * converted, an account made, or linked to a logged-in user) — the
 * reference's converted_social_account signal. @p identity is borrowed for
 * the call; its claims_json holds the ID token's claims. Runs in the
 * request's thread.
 */
typedef void (*guest_identity_linked_fn)(const guest_user *user,
                                         const guest_identity *identity,
                                         void *userdata);
/** What a mail says and what a renderer writes (email.h). */
typedef enum guest_mail_kind guest_mail_kind;
typedef struct guest_mail_vars guest_mail_vars;
typedef struct guest_mail_content guest_mail_content;
/** Writes a mail's subject and bodies (guest_config.render_mail; see
 * email.h). Return GUEST_OK, or an error to send nothing (the request then
 * fails). */
typedef guest_status (*guest_mail_render_fn)(const guest_mail_vars *vars,
                                             guest_mail_content *out,
                                             void *userdata);
typedef void (*guest_deleted_fn)(const int64_t *user_ids, size_t count,
                                 void *userdata);

/**
 * An application password rule: return NULL to accept, or a static message
 * to reject @p password for @p username.
 */
typedef const char *(*guest_password_check_fn)(const char *username,
                                               const char *password,
                                               void *userdata);

/** Severity of a library log message. */
typedef enum guest_log_level {
    GUEST_LOG_ERROR,
    GUEST_LOG_WARNING,
    GUEST_LOG_INFO
} guest_log_level;

/**
 * Receives the library's log messages: one line of text without a newline,
 * borrowed for the call. Called from any server thread; must be
 * thread-safe.
 */
typedef void (*guest_log_fn)(guest_log_level level, const char *message,
                             void *userdata);

/** What GUEST_ALLOW does for a client over guest_config.guest_rate_limit. */
typedef enum guest_rate_action {
    /** Run the handler for an anonymous visitor (no guest, no cookie). */
    GUEST_RATE_ACTION_ANONYMOUS,
    /** Answer 429 Too Many Requests with Retry-After; the handler does not
     * run. */
    GUEST_RATE_ACTION_429
} guest_rate_action;

/** What sits between the library and PostgreSQL (docs/scaling.md). */
typedef enum guest_db_pooler {
    /** As NONE until a server refuses the startup parameter `options`
     * (PgBouncer does) or a new connection shows that they did not arrive
     * (a pooler that ignores them), then as TRANSACTION for the rest of the
     * context. */
    GUEST_DB_POOLER_AUTO,
    /** PostgreSQL itself, or a pooler in session mode: timeouts as startup
     * options, named prepared statements. */
    GUEST_DB_POOLER_NONE,
    /** A pooler in transaction mode (PgBouncer pool_mode = transaction): no
     * startup options, unnamed statements only, timeouts set with SET
     * LOCAL in each transaction, a statement past db_timeout_ms cancelled. */
    GUEST_DB_POOLER_TRANSACTION
} guest_db_pooler;

/** Password validator switches for guest_config.password_checks. */
enum {
    GUEST_PW_CHECK_MIN_LENGTH = 1 << 0,
    GUEST_PW_CHECK_NUMERIC = 1 << 1,
    GUEST_PW_CHECK_SIMILARITY = 1 << 2,
    GUEST_PW_CHECK_COMMON = 1 << 3,
    GUEST_PW_CHECK_ALL = 0xF
};

/** Whether conversion and sign-up ask for an e-mail address
 * (guest_config.signup_email). */
typedef enum guest_email_mode {
    GUEST_EMAIL_OFF = 0,  /**< no address asked for (the default) */
    GUEST_EMAIL_OPTIONAL, /**< asked for; may be left empty */
    GUEST_EMAIL_REQUIRED  /**< asked for and required */
} guest_email_mode;

/**
 * Library settings. Fill with guest_config_init(), then override fields.
 * guest_ctx_new() copies everything it needs: the struct and its strings may
 * be freed right after. NULL string fields mean "the default".
 */
struct guest_config {
    /** sizeof(guest_config) where the program was compiled, set by
     * guest_config_init(): a program built against 1.0 keeps working with
     * a 1.x library whose struct grew (the new fields take their
     * defaults). */
    size_t size;
    /** false: GUEST_ALLOW creates nobody, handlers see an anonymous visitor. */
    bool enabled;
    /* The bools together: the struct keeps little padding. */
    /**
     * true (the default): guest_ctx_new() creates db_schema or brings it to
     * this library's version. false: it only checks that the schema exists
     * at exactly that version, with read-only statements, and otherwise
     * fails with GUEST_ERR_DB and a message naming the schema, its version
     * and the fix (run `guestuser migrate`). For programs that must never
     * create or alter the schema, such as admin tools.
     */
    bool auto_migrate;
    /** Whether an anonymous visitor whose provider identity is unknown gets
     * a new account from guest_identity_sign_in() (true); false: refused
     * with GUEST_ERR_SIGNUP_CLOSED, and only guests and logged-in users can
     * link one. */
    bool identity_signup;
    /** Prefill the convert form with the generated username (false). */
    bool convert_prefill_username;
    /** The login form also takes a verified e-mail address in place of the
     * username (false). An unverified address never logs in. */
    bool login_with_email;
    /** Guest lifetime and session/cookie lifetime, seconds (1209600).
     * guest_ctx_new() with auto_migrate records it in the schema for the
     * tools; 0 takes the age recorded there (1209600 when none), as the
     * `guestuser` tool does. */
    int64_t max_age;

    /** Username generator (guest_name_uuid) and its user data. */
    guest_name_fn name_generator;
    void *name_generator_userdata;
    /** Prefix of guest_name_numbered ("Guest"). */
    const char *name_prefix;
    /** Zero-padded digits of guest_name_numbered (4); 1..18. */
    unsigned name_suffix_digits;
    /** Fresh names tried when a name exists already (10), then an error. */
    unsigned name_max_attempts;

    /**
     * NULL-terminated list of POSIX extended regexes, matched
     * case-insensitively anywhere in User-Agent; a match creates no guest.
     * Default: the reference's crawler list (guest_default_blocked_agents).
     */
    const char *const *blocked_user_agents;

    const char *login_url;            /**< "/accounts/login/" */
    const char *login_redirect_url;   /**< "/accounts/profile/" */
    const char *convert_url;          /**< "/convert/" */
    const char *convert_redirect_url; /**< "/convert/success/" */
    const char *required_anon_url; /**< GUEST_REQUIRED, anonymous: login_url */
    const char *required_user_url; /**< GUEST_REQUIRED, registered:
                                      login_redirect_url */
    const char *redirect_field_name; /**< "next" */

    const char *cookie_name;     /**< "sessionid" */
    const char *cookie_path;     /**< "/" */
    const char *cookie_domain;   /**< NULL: host-only cookie */
    bool cookie_secure;          /**< add Secure (off: turn on behind HTTPS) */
    const char *cookie_samesite; /**< "Lax", "Strict" or "None" */

    /** libpq conninfo string or URI; NULL or "": the PG* environment. */
    const char *db_conninfo;
    /** Schema holding the library's tables ("guestuser"); [a-z_][a-z0-9_]*. */
    const char *db_schema;
    /** Most connections the pool opens (8). */
    unsigned db_pool_size;
    /** Upper bound for connecting, waiting for a connection and one
     * statement, in milliseconds (5000). */
    unsigned db_timeout_ms;

    guest_created_fn on_guest_created;
    void *on_guest_created_userdata;
    guest_converted_fn on_converted;
    void *on_converted_userdata;
    guest_login_hook_fn on_guest_login;
    void *on_guest_login_userdata;
    /** After an identity provider's identity was linked (NULL: none). */
    guest_identity_linked_fn on_identity_linked;
    void *on_identity_linked_userdata;
    /* E-mail (docs/email.md) */
    /** The From of every mail, "Site <noreply@example.com>" (NULL: the
     * library sends no mail, and the flows that need one are refused with
     * GUEST_ERR_CONFIG). */
    const char *mail_from;
    /** The site's external base URL, "https://example.com", from which
     * links in mails are made (NULL: as for mail_from). */
    const char *public_url;
    /** Seconds a password-reset link works (3600). 60..604800. */
    unsigned password_reset_timeout;
    /** Seconds an address-verification link works (259200, 3 days).
     * 60..2592000. */
    unsigned email_verify_timeout;
    /** Reset requests per hour from one client address (10); 0: none. */
    unsigned password_reset_rate_limit;
    /** Reset mails per hour to one address (3); 0: no limit. */
    unsigned password_reset_email_limit;
    /** Writes the mails (NULL: guest_mail_render_default()). */
    guest_mail_render_fn render_mail;
    void *render_mail_userdata;
    /** How often a mail sender looks for mails queued by other processes
     * and for retries, milliseconds (1000). 10..60000. */
    unsigned mail_poll_ms;
    /** Deliveries of one mail before it is kept as failed (12, about a
     * day of growing waits). 1..100. */
    unsigned mail_max_attempts;
    /** Seconds a delivered mail stays in the outbox before cleanup deletes
     * it (604800, a week). */
    unsigned mail_keep_sent_s;
    /** Whether conversion asks for an address (GUEST_EMAIL_OFF). A given
     * address is stored unverified and gets a verification link; it then
     * needs mail_from and public_url. */
    guest_email_mode signup_email;

    /** PBKDF2-SHA256 iterations for new password hashes (1500000, Django
     * 6.1). guest_ctx_new() with auto_migrate records it in the schema for
     * the tools; 0 takes the count recorded there (1500000 when none), as
     * the `guestuser` tool does. 0..2147483647. */
    unsigned password_iterations;
    /** Minimum password length (8). */
    unsigned password_min_length;
    /** GUEST_PW_CHECK_* bits that are on (GUEST_PW_CHECK_ALL). */
    unsigned password_checks;
    /** Extra application password rule, or NULL. */
    guest_password_check_fn password_check;
    void *password_check_userdata;

    /** Name of the CSRF cookie ("csrftoken"). */
    const char *csrf_cookie_name;
    /**
     * Behind a TLS-terminating proxy: the request header that proxy sets to
     * "https" for HTTPS requests, e.g. "X-Forwarded-Proto" (NULL: trust only
     * the adapter's is_https). Only set it when the proxy always overwrites
     * that header, or clients can claim HTTPS.
     */
    const char *secure_proxy_header;
    /** Largest request body the adapters accept, bytes (65536). */
    size_t max_body_size;

    /** Where log messages go (NULL: one "guestuser: ..." line on stderr). */
    guest_log_fn log;
    void *log_userdata;

    /* Password hashing load (docs/accounts.md, "Hashing cost"). */
    /**
     * Most password hashes (login, conversion, guest_user_create) computed
     * at once by one context; 0 (the default): the number of online cores
     * minus one, at least 1, resolved by guest_ctx_new(). At most 1024.
     */
    unsigned hash_concurrency;
    /**
     * How long a request waits for a free hashing slot before it fails
     * with GUEST_ERR_BUSY (the views answer 503), milliseconds (2000);
     * 0..60000, 0: no wait.
     */
    unsigned hash_wait_ms;
    /* Proxies and hosts: who the client is, which names the site has. */
    /**
     * The reverse proxies in front of the server, as comma-separated CIDR
     * blocks, IPv4 or IPv6: "127.0.0.1/32,10.0.0.0/8,::1/128" (a bare
     * address is one host). Only when the socket peer is one of them does
     * guest_req_client_addr() read X-Forwarded-For, right to left, past
     * the trusted hops. NULL or "": none, the socket peer is the client.
     */
    const char *trusted_proxies;
    /**
     * The host names this site answers to, comma-separated, as Django's
     * ALLOWED_HOSTS: "example.com" exactly (case-insensitive),
     * ".example.com" that name and every subdomain, "*" any name; IPv6 as
     * "[::1]". The Host header's port is ignored. A request whose Host is
     * missing, malformed or not listed is refused by guest_req_new()
     * (GUEST_ERR_BAD_HOST; the adapters answer 400) before any handler
     * runs. NULL: no check, every Host is believed.
     */
    const char *allowed_hosts;
    /* Abuse limits, kept in the database so every node shares them; 0 = off. */
    /** Guests one client address (an IPv4 address, an IPv6 /64) may create
     * per guest_rate_window seconds; 0: no limit (0). 1..1000000000. An
     * IPv6 client's /56 and /48 get budgets of their own too (the
     * ipv6_prefix*_multiplier fields). The check and the count are one
     * statement, so concurrent visits cannot pass it together. */
    unsigned guest_rate_limit;
    /** Length of that sliding window, seconds (3600); 1..2592000. */
    unsigned guest_rate_window;
    /** What GUEST_ALLOW does past the limit (GUEST_RATE_ACTION_ANONYMOUS). */
    guest_rate_action guest_rate_limit_action;
    /** Failed logins per hour for one username from one client address
     * (wrong old passwords in guest_password_change() count too); past it
     * guest_login answers GUEST_ERR_RATE_LIMITED before any password hash is
     * computed. Each attempt takes its place before its hash, so concurrent
     * attempts cannot pass the limit together; a successful login resets
     * the count. 0: off. 1..1000000000 (5). */
    unsigned login_rate_limit;
    /** Failed logins (any username) and failed conversions (a form error or
     * a taken username) per hour from one client address, counted apart
     * for logins and conversions; 0: off. 1..1000000000 (100: an office
     * behind one address can mistype a lot before it is locked out). */
    unsigned login_address_rate_limit;
    /** The budget of an IPv6 client's /56, as a multiple of the /64's, for
     * guest_rate_limit and login_address_rate_limit; 0: no /56 budget.
     * 0..65536 (4). */
    unsigned ipv6_prefix56_multiplier;
    /** The same for the client's /48 (8). */
    unsigned ipv6_prefix48_multiplier;
    /** Most live guests; past it GUEST_ALLOW creates no more (the visitor
     * stays anonymous) until cleanup or conversions make room. Counted by
     * triggers in 32 shard rows, so no guest is counted per request; may
     * be overshot only by the creations running at the same instant on
     * all nodes (at most the sum of their db_pool_size). 0: no cap (0). */
    int64_t max_guests;
    /** Most live guests created from one network (an IPv4 /24, an IPv6
     * /48) while max_guests is on, so one network cannot fill the cap for
     * everyone; 0: max_guests / 20 (at least 1), that is 5 %. */
    int64_t max_guests_per_network;
    /* Signed session and CSRF cookies */
    /**
     * Server secrets that sign the session and CSRF cookies (HMAC-SHA256), as
     * a NULL-terminated list: the first signs, every one verifies (key
     * rotation). Each at least GUEST_SECRET_KEY_MIN_BYTES bytes. A cookie
     * without a valid signature is refused before any database work. NULL
     * (the default): unsigned cookies, as before. Copied by guest_ctx_new()
     * and wiped by guest_ctx_free().
     */
    const char *const *secret_keys;
    /* Database topology (docs/scaling.md) */
    /** PgBouncer or the like between the library and PostgreSQL
     * (GUEST_DB_POOLER_AUTO); db_read_conninfo's connections detect their
     * own. */
    guest_db_pooler db_pooler;
    /**
     * A read replica (streaming standby) that resolves returning visitors'
     * sessions, libpq conninfo (NULL or "": none, every statement goes to
     * db_conninfo). A session the replica does not know (a guest made a
     * moment ago, replication lag) is looked up on the primary, and so is
     * every session while the replica fails (for 5 s after each failure).
     * Logout, conversion and deactivation reach visitors resolved there
     * only after the replica replays them. Its own pool of db_pool_size.
     */
    const char *db_read_conninfo;
    /* Cleanup */
    /** After each batch guest_delete_expired() deletes (NULL: none). */
    guest_deleted_fn on_guests_deleted;
    void *on_guests_deleted_userdata;
    /* Session cache (docs/scaling.md) */
    /**
     * Seconds a resolved session is kept in this process, so a returning
     * visitor costs no database round trip (never longer than the session
     * itself lives). Logout, login, conversion, password changes,
     * deactivation and deletion drop entries at once in this process, and
     * in every other process through PostgreSQL LISTEN/NOTIFY (triggers of
     * the schema, so also for the tool, cleanup and SQL by hand), within
     * milliseconds. Each context keeps one more connection for that, on a
     * thread of its own; while it is down the cache is empty and every
     * request asks the database. 0: no cache, every request asks the
     * database (0). 0..3600.
     */
    unsigned session_cache_ttl;
    /** Most sessions the cache holds (least recently used go first), when
     * session_cache_ttl is on: 1..1000000 (10000); about 700 bytes each. */
    unsigned session_cache_size;
    /** libpq conninfo of the cache's LISTEN connection (NULL or "":
     * db_conninfo). Behind PgBouncer in transaction mode, which cannot
     * LISTEN, name PostgreSQL itself here; without it the cache stays off
     * there (logged). */
    const char *session_cache_listen_conninfo;
};

/** Longest guest_config.session_cache_ttl, seconds. */
#define GUEST_SESSION_CACHE_TTL_MAX 3600
/** Largest guest_config.session_cache_size. */
#define GUEST_SESSION_CACHE_SIZE_MAX 1000000

/** Shortest accepted secret key, bytes. */
#define GUEST_SECRET_KEY_MIN_BYTES 32
/** Most keys guest_config.secret_keys may list. */
#define GUEST_SECRET_KEYS_MAX 16

/** Fills @p cfg with the defaults listed on each field, and its size. */
#define guest_config_init(cfg)                                                 \
    guest_config_init_size((cfg), sizeof(guest_config))
/** guest_config_init() for a struct of @p size bytes (the program's
 * sizeof). */
GUEST_API void guest_config_init_size(guest_config *cfg, size_t size);

/**
 * Overrides fields of @p cfg from environment variables, so that a site,
 * the `guestuser` tool and the demo can share one set: GUESTUSER_DB
 * (db_conninfo), GUESTUSER_DB_READ (db_read_conninfo), GUESTUSER_SCHEMA
 * (db_schema), GUESTUSER_DB_POOL_SIZE, GUESTUSER_DB_TIMEOUT_MS,
 * GUESTUSER_MAX_AGE and GUESTUSER_PASSWORD_ITERATIONS (decimal numbers).
 * An unset or empty variable leaves its field alone. The string fields
 * point into the environment: call guest_ctx_new() before changing it.
 * GUEST_ERR_CONFIG, naming the variable, for a value that is not a number
 * in range (the field is then unchanged).
 */
GUEST_API GUEST_NODISCARD guest_status guest_config_from_env(guest_config *cfg,
                                                             guest_error *err);

/**
 * Reads secret keys for guest_config.secret_keys from the file @p path: one
 * key per line, surrounding blanks and blank lines ignored, lines starting
 * with '#' are comments; the first key signs. On GUEST_OK, *keys is a
 * NULL-terminated list the caller releases with guest_secret_keys_free()
 * (guest_ctx_new() copies it, so right after that is fine). Returns
 * GUEST_ERR_CONFIG when the file cannot be read, holds no key, more than
 * GUEST_SECRET_KEYS_MAX keys or a weak one (@p err names the line),
 * GUEST_ERR_NOMEM. A key is weak, here and in guest_ctx_new(), when it is
 * shorter than GUEST_SECRET_KEY_MIN_BYTES, when it is a shorter piece
 * repeated ("abab...", "changeme" x 4), or when its length times the
 * Shannon entropy of its byte counts is under 128 bits (so 32 bytes need at
 * least 16 different ones); `openssl rand -base64 48` makes a good one.
 * Writes one warning line to stderr when the file is readable by group or
 * others. Thread-safe.
 */
GUEST_API GUEST_NODISCARD guest_status guest_secret_keys_load(const char *path,
                                                              char ***keys,
                                                              guest_error *err);

/** Wipes and frees a list from guest_secret_keys_load(); NULL is a no-op. */
GUEST_API void guest_secret_keys_free(char **keys);

/** The reference's crawler list, NULL-terminated, static storage. */
GUEST_API const char *const *guest_default_blocked_agents(void);

/** Built-in generator: a random UUID as 32 lowercase hex characters. */
GUEST_API GUEST_NODISCARD guest_status guest_name_uuid(const guest_config *cfg,
                                                       char *buf, size_t size,
                                                       void *userdata);
/** Built-in generator: name_prefix + random zero-padded number ("Guest0042").
 */
GUEST_API GUEST_NODISCARD guest_status guest_name_numbered(
    const guest_config *cfg, char *buf, size_t size, void *userdata);
/** Built-in generator: adjective + noun + number ("CleverOtter42"). */
GUEST_API GUEST_NODISCARD guest_status guest_name_friendly(
    const guest_config *cfg, char *buf, size_t size, void *userdata);

/**
 * Validates @p cfg, compiles the agent patterns, connects to the database and
 * creates or upgrades the schema. On success *out owns a context to release
 * with guest_ctx_free(). Returns GUEST_ERR_CONFIG for bad settings,
 * GUEST_ERR_DB_UNAVAILABLE / GUEST_ERR_DB when the database fails; @p err
 * (may be NULL) says which setting or what libpq said.
 */
GUEST_API GUEST_NODISCARD guest_status guest_ctx_new(const guest_config *cfg,
                                                     guest_ctx **out,
                                                     guest_error *err);

/** Releases @p ctx and its connections; NULL is a no-op. No request may be
 * in flight. */
GUEST_API void guest_ctx_free(guest_ctx *ctx);

/** The settings in force (a validated copy, defaults filled); borrowed for
 * the life of @p ctx. */
GUEST_API const guest_config *guest_ctx_config(const guest_ctx *ctx);

/** One round trip to the database: GUEST_OK when it answers (for /healthz). */
GUEST_API GUEST_NODISCARD guest_status guest_ping(guest_ctx *ctx,
                                                  guest_error *err);

/** True when @p user_agent matches a blocked pattern (NULL: false). */
GUEST_API GUEST_NODISCARD bool guest_is_blocked_agent(const guest_ctx *ctx,
                                                      const char *user_agent);

/** The library's version, "MAJOR.MINOR.PATCH" (static storage): the
 * GUESTUSER_VERSION_STRING it was built with, which a program compiled
 * against other headers may compare with its own. */
GUEST_API const char *guest_version(void);

#ifdef __cplusplus
}
#endif
#endif

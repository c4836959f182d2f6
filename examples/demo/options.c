/* Command-line flags of the demo: one per guest_config setting, so every
 * setting can be tried without writing C. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "demo.h"

/* oidc.c: --oidc-timeout-ms, the deadline of each call to a provider
 * (guest_oidc_config.http_timeout_ms) that demo_oidc_start() uses; 0, as
 * at start, keeps the library's default. */
void demo_oidc_set_timeout_ms(unsigned ms);

/* The flags that need code of their own (parse_special); every other flag
 * is stored by the table alone. */
enum {
    SPECIAL_NONE,
    SPECIAL_MHD_MODE,
    SPECIAL_GENERATOR,
    SPECIAL_AGENT,
    SPECIAL_NO_AGENTS,
    SPECIAL_CHECKS,
    SPECIAL_RATE_LIMIT,
    SPECIAL_LOGIN_LIMIT,
    SPECIAL_LOGIN_ADDR_LIMIT,
    SPECIAL_HELP,
    SPECIAL_VERSION,
    SPECIAL_SMTP_URL,
    SPECIAL_MAIL_FROM,
    SPECIAL_SECRET_KEY_FILE,
    SPECIAL_METRICS_TOKEN_FILE,
    SPECIAL_PUBLIC_URL,
    SPECIAL_OIDC,
    SPECIAL_OIDC_TIMEOUT,
};

/* How the table stores a flag's value at its offset in demo_options. */
enum flag_kind {
    FLAG_STRING,   /* const char *: the value as given */
    FLAG_SET,      /* bool: true, no value */
    FLAG_CLEAR,    /* bool: false, no value */
    FLAG_ON_OFF,   /* bool: "on" or "off" */
    FLAG_WORD,     /* an int or enum: the number of one of words[] */
    FLAG_PORT,     /* uint16_t in min..max */
    FLAG_LONG,     /* long in min..max */
    FLAG_UNSIGNED, /* unsigned in min..max */
    FLAG_SIZE,     /* size_t in min..max */
    FLAG_INT64,    /* int64_t in min..max */
    FLAG_SPECIAL,  /* parse_special(), with a value unless no_value */
};

typedef struct flag_word {
    const char *word;
    int value;
} flag_word;

typedef struct demo_flag {
    const char *name;
    enum flag_kind kind;
    size_t offset;
    long long min, max;
    const flag_word *words; /* FLAG_WORD, ended by a NULL word */
    int special;            /* FLAG_SPECIAL */
    bool no_value;          /* FLAG_SPECIAL */
} demo_flag;

/* The offset of @p member of demo_options, which must be of type T (a
 * compile error otherwise, so that a kind never writes the wrong type). */
#define AT(member, T)                                                          \
    (offsetof(demo_options, member) +                                          \
     0 * sizeof(_Generic(((demo_options *)0)->member, T : 1)))
/* The same for FLAG_WORD, whose member must be the size of an int. */
#define AT_INT(member)                                                         \
    (offsetof(demo_options, member) +                                          \
     0 * sizeof(                                                               \
             char[sizeof(((demo_options *)0)->member) == sizeof(int) ? 1       \
                                                                     : -1]))

#define STRING(name_, member)                                                  \
    {                                                                          \
        .name = name_, .kind = FLAG_STRING, .offset = AT(member, const char *) \
    }
#define SET(name_, member)                                                     \
    {                                                                          \
        .name = name_, .kind = FLAG_SET, .offset = AT(member, bool)            \
    }
#define CLEAR(name_, member)                                                   \
    {                                                                          \
        .name = name_, .kind = FLAG_CLEAR, .offset = AT(member, bool)          \
    }
#define ON_OFF(name_, member)                                                  \
    {                                                                          \
        .name = name_, .kind = FLAG_ON_OFF, .offset = AT(member, bool)         \
    }
#define WORD(name_, member, words_)                                            \
    {                                                                          \
        .name = name_, .kind = FLAG_WORD, .offset = AT_INT(member),            \
        .words = words_                                                        \
    }
#define NUMBER(name_, kind_, T, member, min_, max_)                            \
    {                                                                          \
        .name = name_, .kind = kind_, .offset = AT(member, T), .min = min_,    \
        .max = max_                                                            \
    }
#define SPECIAL(name_, id)                                                     \
    {                                                                          \
        .name = name_, .kind = FLAG_SPECIAL, .special = id                     \
    }
#define SPECIAL_NO_VALUE(name_, id)                                            \
    {                                                                          \
        .name = name_, .kind = FLAG_SPECIAL, .special = id, .no_value = true   \
    }

static const flag_word signup_email_words[] = {
    {"off", GUEST_EMAIL_OFF},
    {"optional", GUEST_EMAIL_OPTIONAL},
    {"required", GUEST_EMAIL_REQUIRED},
    {NULL, 0},
};
static const flag_word rate_action_words[] = {
    {"anonymous", GUEST_RATE_ACTION_ANONYMOUS},
    {"429", GUEST_RATE_ACTION_429},
    {NULL, 0},
};
static const flag_word db_pooler_words[] = {
    {"auto", GUEST_DB_POOLER_AUTO},
    {"none", GUEST_DB_POOLER_NONE},
    {"transaction", GUEST_DB_POOLER_TRANSACTION},
    {NULL, 0},
};
/* demo_options.smtp_starttls: guest_smtp_starttls's numbers. */
static const flag_word starttls_words[] = {
    {"required", 0},
    {"optional", 1},
    {"off", 2},
    {NULL, 0},
};

static const demo_flag flags[] = {
    STRING("bind", bind),
    NUMBER("port", FLAG_PORT, uint16_t, port, 0, 65535),
    SPECIAL("smtp-url", SPECIAL_SMTP_URL),
    STRING("smtp-credentials-file", smtp_credentials_file),
    WORD("smtp-starttls", smtp_starttls, starttls_words),
    SPECIAL("mail-from", SPECIAL_MAIL_FROM),
    NUMBER("password-reset-timeout", FLAG_UNSIGNED, unsigned,
           cfg.password_reset_timeout, 60, 604800),
    STRING("db", cfg.db_conninfo),
    STRING("schema", cfg.db_schema),
    STRING("server", server),
    NUMBER("max-connections", FLAG_LONG, long, max_connections, 1, 1000000),
    NUMBER("max-conns-per-ip", FLAG_LONG, long, max_conns_per_ip, 0, 1000000),
    NUMBER("header-timeout", FLAG_LONG, long, header_timeout, 0, 3600),
    NUMBER("threads", FLAG_LONG, long, threads, 1, 1024),
    SPECIAL("mhd-mode", SPECIAL_MHD_MODE),
    NUMBER("max-age", FLAG_INT64, int64_t, cfg.max_age, 1, INT64_MAX / 2),
    CLEAR("disabled", cfg.enabled),
    SPECIAL("name-generator", SPECIAL_GENERATOR),
    STRING("name-prefix", cfg.name_prefix),
    NUMBER("name-digits", FLAG_UNSIGNED, unsigned, cfg.name_suffix_digits, 0,
           1000),
    NUMBER("name-attempts", FLAG_UNSIGNED, unsigned, cfg.name_max_attempts, 0,
           1000000),
    SPECIAL("blocked-agent", SPECIAL_AGENT),
    SPECIAL_NO_VALUE("no-blocked-agents", SPECIAL_NO_AGENTS),
    STRING("login-url", cfg.login_url),
    STRING("login-redirect-url", cfg.login_redirect_url),
    STRING("convert-url", cfg.convert_url),
    STRING("convert-redirect-url", cfg.convert_redirect_url),
    STRING("required-anon-url", cfg.required_anon_url),
    STRING("required-user-url", cfg.required_user_url),
    STRING("redirect-field-name", cfg.redirect_field_name),
    STRING("cookie-name", cfg.cookie_name),
    STRING("cookie-path", cfg.cookie_path),
    STRING("cookie-domain", cfg.cookie_domain),
    SET("secure-cookies", cfg.cookie_secure),
    STRING("samesite", cfg.cookie_samesite),
    NUMBER("pool-size", FLAG_UNSIGNED, unsigned, cfg.db_pool_size, 0, 100000),
    NUMBER("db-timeout-ms", FLAG_UNSIGNED, unsigned, cfg.db_timeout_ms, 0,
           3600000),
    NUMBER("max-body-size", FLAG_SIZE, size_t, cfg.max_body_size, 0, 1 << 30),
    SET("prefill-username", cfg.convert_prefill_username),
    SET("login-with-email", cfg.login_with_email),
    WORD("signup-email", cfg.signup_email, signup_email_words),
    NUMBER("password-iterations", FLAG_UNSIGNED, unsigned,
           cfg.password_iterations, 1, 2147483647),
    NUMBER("password-min-length", FLAG_UNSIGNED, unsigned,
           cfg.password_min_length, 0, 4096),
    SPECIAL("password-checks", SPECIAL_CHECKS),
    STRING("secure-proxy-header", cfg.secure_proxy_header),
    NUMBER("hash-concurrency", FLAG_UNSIGNED, unsigned, cfg.hash_concurrency, 0,
           4294967295LL),
    NUMBER("hash-wait-ms", FLAG_UNSIGNED, unsigned, cfg.hash_wait_ms, 0,
           4294967295LL),
    STRING("trusted-proxy", cfg.trusted_proxies),
    STRING("allowed-hosts", cfg.allowed_hosts),
    SPECIAL("rate-limit", SPECIAL_RATE_LIMIT),
    WORD("rate-limit-action", cfg.guest_rate_limit_action, rate_action_words),
    SPECIAL("login-limit", SPECIAL_LOGIN_LIMIT),
    SPECIAL("login-address-limit", SPECIAL_LOGIN_ADDR_LIMIT),
    NUMBER("max-guests", FLAG_INT64, int64_t, cfg.max_guests, 0, INT64_MAX),
    NUMBER("max-guests-per-network", FLAG_INT64, int64_t,
           cfg.max_guests_per_network, 0, INT64_MAX),
    NUMBER("ipv6-56-multiplier", FLAG_UNSIGNED, unsigned,
           cfg.ipv6_prefix56_multiplier, 0, 65536),
    NUMBER("ipv6-48-multiplier", FLAG_UNSIGNED, unsigned,
           cfg.ipv6_prefix48_multiplier, 0, 65536),
    SPECIAL_NO_VALUE("help", SPECIAL_HELP),
    SPECIAL_NO_VALUE("version", SPECIAL_VERSION),
    NUMBER("notes-max", FLAG_UNSIGNED, unsigned, notes_max, 1, 1000000),
    SPECIAL("secret-key-file", SPECIAL_SECRET_KEY_FILE),
    WORD("db-pooler", cfg.db_pooler, db_pooler_words),
    STRING("db-read", cfg.db_read_conninfo),
    NUMBER("session-cache-ttl", FLAG_UNSIGNED, unsigned, cfg.session_cache_ttl,
           0, GUEST_SESSION_CACHE_TTL_MAX),
    NUMBER("session-cache-size", FLAG_UNSIGNED, unsigned,
           cfg.session_cache_size, 1, GUEST_SESSION_CACHE_SIZE_MAX),
    SPECIAL("metrics-token-file", SPECIAL_METRICS_TOKEN_FILE),
    SPECIAL("public-url", SPECIAL_PUBLIC_URL),
    SPECIAL("oidc", SPECIAL_OIDC),
    SPECIAL("oidc-timeout-ms", SPECIAL_OIDC_TIMEOUT),
    ON_OFF("identity-signup", cfg.identity_signup),
};

#define NFLAGS (sizeof flags / sizeof *flags)
/* getopt_long's value for flags[i]: past every short option's. */
#define FLAG_VAL 256

void demo_usage(FILE *out, const char *argv0)
{
    fprintf(
        out,
        "usage: %s [options]\n"
        "\n"
        "libguestuser demo server. Routes: / /allow_guest_user/ "
        "/guest_user_required/\n"
        "/regular_user_required/ /whoami /healthz /hello /metrics /convert/ "
        "/convert/success/\n"
        "/accounts/login/ /accounts/profile/ /accounts/logout/ "
        "/accounts/password/ /notes/ /notes/delete/\n"
        "/accounts/oidc/NAME/login/ /accounts/oidc/NAME/callback/ "
        "/accounts/identities/ (with --oidc)\n"
        "\n"
        "Server:\n"
        "  --bind ADDR               address to listen on (127.0.0.1)\n"
        "  --port N                  port (8080)\n"
        "  --server mhd|civetweb|ulfius|evhttp\n"
        "                            HTTP server library to use (mhd); a build "
        "has\n"
        "                            those whose adapter it was built with\n"
        "  --max-connections N       mhd, ulfius, evhttp: connections open at "
        "once\n"
        "                            (512; evhttp: 10000)\n"
        "  --max-conns-per-ip N      mhd, ulfius, evhttp: connections one "
        "address may hold (32;\n"
        "                            0: no limit, e.g. behind a reverse "
        "proxy)\n"
        "  --header-timeout SECONDS  time a client has to send its request "
        "headers\n"
        "                            (10; mhd, ulfius, evhttp: 0 turns it "
        "off)\n"
        "  --threads N               civetweb: worker threads (50); evhttp, "
        "mhd event mode:\n"
        "                            threads running handlers beside the "
        "event loop (32)\n"
        "  --mhd-mode event|threads  mhd: one epoll thread with handlers on "
        "worker threads\n"
        "                            (event), or a thread per connection "
        "(threads, the\n"
        "                            default); --server mhd_event and "
        "mhd_threads name\n"
        "                            one mode alone\n"
        "Database:\n"
        "  --db CONNINFO             libpq conninfo or URI (else env "
        "GUESTUSER_DB,\n"
        "                            else libpq's PG* environment)\n"
        "  --schema NAME             schema of the library's tables "
        "(guestuser)\n"
        "  --pool-size N             most database connections (8)\n"
        "  --db-timeout-ms N         connect/wait/statement bound in ms "
        "(5000)\n"
        "  --db-pooler MODE          auto | none | transaction: PgBouncer in "
        "transaction\n"
        "                            mode in between (auto: detected)\n"
        "  --db-read CONNINFO        a read replica that resolves returning "
        "visitors\n"
        "                            (misses and failures go to --db)\n"
        "Guests:\n"
        "  --disabled                create no guests (enabled = false)\n"
        "  --max-age SECONDS         guest and session lifetime (1209600)\n"
        "  --name-generator KIND     uuid | numbered | friendly (uuid)\n"
        "  --name-prefix TEXT        numbered generator prefix (Guest)\n"
        "  --name-digits N           numbered generator digits to start with "
        "(4)\n"
        "  --name-attempts N         clashes in a row before widening or "
        "failing (10)\n"
        "  --blocked-agent REGEX     block this User-Agent pattern "
        "(repeatable;\n"
        "                            replaces the default crawler list)\n"
        "  --no-blocked-agents       block no User-Agent at all\n"
        "Redirects:\n"
        "  --login-url URL           (/accounts/login/)\n"
        "  --login-redirect-url URL  (/accounts/profile/)\n"
        "  --convert-url URL         (/convert/)\n"
        "  --convert-redirect-url URL (/convert/success/)\n"
        "  --required-anon-url URL   GUEST_REQUIRED, anonymous (login URL)\n"
        "  --required-user-url URL   GUEST_REQUIRED, registered (login "
        "redirect URL)\n"
        "  --redirect-field-name N   (next)\n"
        "Cookie:\n"
        "  --cookie-name NAME        (sessionid)\n"
        "  --cookie-path PATH        (/)\n"
        "  --cookie-domain DOMAIN    (none: host-only)\n"
        "  --secure-cookies          add Secure (use behind HTTPS)\n"
        "  --samesite Lax|Strict|None (Lax)\n"
        "Accounts:\n"
        "  --prefill-username        prefill the sign-up form with the guest's "
        "name\n"
        "  --password-iterations N   PBKDF2 iterations of new hashes "
        "(1500000)\n"
        "  --password-min-length N   shortest accepted password (8)\n"
        "  --password-checks LIST    validators on: all, none, or a comma list "
        "of\n"
        "                            min-length,numeric,similarity,common "
        "(all)\n"
        "  --hash-concurrency N      most password hashes at once (0: cores - "
        "1)\n"
        "  --hash-wait-ms N          wait for a hashing slot, then 503 (2000)\n"
        "Requests:\n"
        "  --max-body-size BYTES     largest request body (65536)\n"
        "  --secure-proxy-header H   header a TLS proxy sets to \"https\"\n"
        "  --trusted-proxy CIDR[,CIDR...]\n"
        "                            reverse proxies whose X-Forwarded-For "
        "names the\n"
        "                            client (none: the socket peer is the "
        "client)\n"
        "  --allowed-hosts LIST      Host names served, e.g. "
        "example.com,.example.org\n"
        "                            (others get 400; default: any Host)\n"
        "Abuse limits (shared by every node through the database; the login "
        "limits\n"
        "are on by default, the guest limits off):\n"
        "  --rate-limit N/HOUR       guests one client address (IPv4, IPv6 "
        "/64) may\n"
        "                            create per hour; also N/MINUTE\n"
        "  --rate-limit-action A     anonymous | 429: past it, run the page "
        "without a\n"
        "                            guest, or answer 429 (anonymous)\n"
        "  --login-limit N/HOUR      failed logins per username and address; "
        "past it\n"
        "                            login answers 429 (5/HOUR; 0: off)\n"
        "  --login-address-limit N/HOUR failed logins, and failed "
        "conversions, per\n"
        "                            address (100/HOUR; 0: off)\n"
        "  --ipv6-56-multiplier N    an IPv6 /56's budget as N x the /64's, "
        "for the\n"
        "                            guest and address limits (4; 0: none)\n"
        "  --ipv6-48-multiplier N    the same for the /48 (8; 0: none)\n"
        "  --max-guests N            most live guests; then visitors stay "
        "anonymous\n"
        "  --max-guests-per-network N most live guests from one IPv4 /24 or "
        "IPv6 /48\n"
        "                            (max-guests / 20)\n"
        "Signed cookies:\n"
        "  --secret-key-file PATH    sign session and CSRF cookies with the "
        "keys in\n"
        "                            PATH: one a line, '#' comments, the first "
        "signs,\n"
        "                            all verify; make one with\n"
        "                            openssl rand -base64 48 > PATH\n"
        "Metrics:\n"
        "  --metrics-token-file PATH GET /metrics also answers requests with\n"
        "                            \"Authorization: Bearer <the token in "
        "PATH>\"; without\n"
        "                            it only clients on this host that "
        "reach the demo\n"
        "                            directly (no X-Forwarded-For); make "
        "one with\n"
        "                            openssl rand -hex 32 > PATH\n"
        "  --help                    this text\n"
        "  --version                 the version, then exit\n"
        "E-mail (password reset, address change; docs/email.md):\n"
        "  --smtp-url URL            deliver the outbox here: "
        "smtp://HOST[:PORT] or\n"
        "                            smtps://HOST[:PORT] (none: mails wait "
        "in the outbox)\n"
        "  --smtp-credentials-file PATH one line USER:PASSWORD for "
        "AUTH\n"
        "  --smtp-starttls required|optional|off STARTTLS on smtp:// "
        "(required)\n"
        "  --mail-from ADDRESS       From of every mail, \"Site "
        "<noreply@example.com>\"\n"
        "                            (with --smtp-url: libguestuser demo "
        "<noreply@localhost>);\n"
        "                            links use --public-url, else "
        "http://BIND:PORT\n"
        "  --password-reset-timeout SECONDS how long a reset link works "
        "(3600)\n"
        "  --login-with-email        the login form also takes a verified "
        "address\n"
        "  --signup-email off|optional|required ask for an address on "
        "sign-up (off)\n"
        "Notes application:\n"
        "  --notes-max N             most notes one user may keep (500)\n"
        "Session cache (off by default; docs/scaling.md):\n"
        "  --session-cache-ttl SECONDS keep resolved sessions in memory this "
        "long\n"
        "                            (0..3600; 0: off); other nodes' logouts "
        "take\n"
        "                            up to this long to be seen here\n"
        "  --session-cache-size N    most sessions kept (10000)\n"
        "Identity providers (OpenID Connect; docs/identity-providers.md):\n"
        "  --oidc NAME,ISSUER_URL,CLIENT_ID,CLIENT_SECRET_FILE\n"
        "                            \"Continue with NAME\" on the sign-up and "
        "login pages\n"
        "                            (repeatable); the secret alone in the "
        "file; register\n"
        "                            PUBLIC_URL/accounts/oidc/NAME/callback/ "
        "at "
        "the provider\n"
        "  --public-url URL          the site's external base URL, for the "
        "redirect URIs\n"
        "                            (http://BIND:PORT as bound)\n"
        "  --oidc-timeout-ms N       deadline of each call to a provider "
        "(discovery, JWKS,\n"
        "                            token), 1..120000 ms (10000)\n"
        "  --identity-signup on|off  an unknown identity of an anonymous "
        "visitor makes\n"
        "                            an account (on)\n",
        argv0);
}

static bool parse_num(const char *s, long long min, long long max,
                      long long *out)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

/* "N/HOUR" or "N/MINUTE" (any case; a bare N is per hour) into a count and
 * a window in seconds; "MINUTE" only when @p minute_ok. */
static bool parse_rate(const char *s, bool minute_ok, unsigned *count,
                       unsigned *window)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (end == s || v < 1 || v > 1000000000)
        return false;
    if (!*end || !strcasecmp(end, "/hour"))
        *window = 3600;
    else if (minute_ok && !strcasecmp(end, "/minute"))
        *window = 60;
    else
        return false;
    *count = (unsigned)v;
    return true;
}

/* Shortest token --metrics-token-file accepts, in characters. */
#define METRICS_TOKEN_MIN 32
/* Longest secret a file may hold: a header line must hold a token. */
#define SECRET_MAX 1024

/* Reads the secret of a --...-file flag: the file's text without the
 * blanks around it, @p min..SECRET_MAX visible ASCII characters (what a
 * bearer token or a client secret may hold). Returns it (malloc'd) or NULL
 * with the reason printed, ending with @p hint. */
static char *read_secret_file(const char *argv0, const char *flag,
                              const char *path, size_t min, const char *hint)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "%s: --%s: cannot read %s: %s\n", argv0, flag, path,
                strerror(errno));
        return NULL;
    }
    /* Anyone who can read the file can use the secret. */
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && (st.st_mode & (S_IRGRP | S_IROTH)))
        fprintf(stderr,
                "%s: warning: %s is readable by group or others (mode %04o); "
                "chmod 600 it\n",
                argv0, path, (unsigned)(st.st_mode & 07777));
    char buf[4097];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    bool failed = ferror(f) != 0;
    fclose(f);
    buf[n] = '\0';
    char *p = buf, *end = buf + n;
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
        p++;
    while (end > p && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' ||
                       end[-1] == '\n'))
        end--;
    size_t len = (size_t)(end - p);
    bool visible = true;
    for (const char *c = p; c < end; c++)
        visible = visible && *c > ' ' && *c < 0x7f;
    const char *why = NULL;
    char too_short[64];
    if (failed)
        why = "cannot be read";
    else if (n == sizeof buf - 1 || len > SECRET_MAX)
        why = "holds a secret longer than 1024 characters";
    else if (len == 0)
        why = "is empty";
    else if (!visible)
        why = "must hold one secret of visible ASCII characters";
    else if (len < min) {
        snprintf(too_short, sizeof too_short,
                 "holds a secret shorter than %zu characters", min);
        why = too_short;
    }
    char *secret = why ? NULL : strndup(p, len);
    if (!why && !secret)
        why = "cannot be read: out of memory";
    explicit_bzero(buf, sizeof buf);
    if (why)
        fprintf(stderr, "%s: --%s: %s %s (%s)\n", argv0, flag, path, why, hint);
    return secret;
}

static void wipe_free(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

/* --oidc NAME,ISSUER_URL,CLIENT_ID,CLIENT_SECRET_FILE into the next slot
 * of @p o: the first three commas split it (a file path may hold more).
 * Returns false with the reason printed. */
static bool parse_oidc(demo_options *o, const char *argv0, const char *value)
{
    static const char usage[] =
        "expected --oidc NAME,ISSUER_URL,CLIENT_ID,CLIENT_SECRET_FILE";
    if (!demo_oidc_built()) {
        fprintf(stderr,
                "%s: --oidc: this guestuser-demo was built without "
                "libguestuser-oidc (configure with -DGUESTUSER_OIDC=ON; it "
                "needs libcurl and cjose)\n",
                argv0);
        return false;
    }
    if (o->noidc >= DEMO_OIDC_MAX) {
        fprintf(stderr, "%s: --oidc: at most %d providers\n", argv0,
                DEMO_OIDC_MAX);
        return false;
    }
    char *spec = strdup(value);
    if (!spec) {
        fprintf(stderr, "%s: --oidc: out of memory\n", argv0);
        return false;
    }
    char *part[4] = {spec, NULL, NULL, NULL};
    for (int i = 1; i < 4; i++) {
        char *comma = strchr(part[i - 1], ',');
        if (!comma)
            break;
        *comma = '\0';
        part[i] = comma + 1;
    }
    const char *why = NULL;
    if (!part[3])
        why = "four comma-separated values are needed";
    else if (!*part[0] || strlen(part[0]) > 32 ||
             strspn(part[0], "abcdefghijklmnopqrstuvwxyz0123456789_-") !=
                 strlen(part[0]))
        why = "NAME must be 1 to 32 of a-z, 0-9, '_' and '-'";
    else if (strncmp(part[1], "https://", 8) && strncmp(part[1], "http://", 7))
        why = "ISSUER_URL must start with https:// (http:// on loopback)";
    else if (!*part[2])
        why = "CLIENT_ID is empty";
    else if (!*part[3])
        why = "CLIENT_SECRET_FILE is empty";
    for (int i = 0; !why && i < o->noidc; i++)
        if (!strcmp(o->oidc[i].name, part[0]))
            why = "NAME is given twice";
    if (why) {
        fprintf(stderr, "%s: --oidc '%s': %s (%s)\n", argv0, value, why, usage);
        free(spec);
        return false;
    }
    char *secret = read_secret_file(
        argv0, "oidc", part[3], 1,
        "the client secret the provider issued, alone in the file");
    if (!secret) {
        free(spec);
        return false;
    }
    demo_oidc_provider *p = &o->oidc[o->noidc++];
    p->spec = spec;
    p->name = part[0];
    p->issuer = part[1];
    p->client_id = part[2];
    p->secret = secret;
    return true;
}

/* Stores @p arg as @p f says; false for a value it refuses. */
static bool store_flag(demo_options *o, const demo_flag *f, const char *arg)
{
    char *at = (char *)o + f->offset;
    long long n;
    switch (f->kind) {
    case FLAG_STRING:
        *(const char **)at = arg;
        return true;
    case FLAG_SET:
    case FLAG_CLEAR:
        *(bool *)at = f->kind == FLAG_SET;
        return true;
    case FLAG_ON_OFF:
        if (strcmp(arg, "on") != 0 && strcmp(arg, "off") != 0)
            return false;
        *(bool *)at = !strcmp(arg, "on");
        return true;
    case FLAG_WORD:
        for (const flag_word *w = f->words; w->word; w++)
            if (!strcmp(arg, w->word)) {
                memcpy(at, &w->value, sizeof w->value);
                return true;
            }
        return false;
    default:
        break;
    }
    if (!parse_num(arg, f->min, f->max, &n))
        return false;
    switch (f->kind) {
    case FLAG_PORT:
        *(uint16_t *)at = (uint16_t)n;
        return true;
    case FLAG_LONG:
        *(long *)at = (long)n;
        return true;
    case FLAG_UNSIGNED:
        *(unsigned *)at = (unsigned)n;
        return true;
    case FLAG_SIZE:
        *(size_t *)at = (size_t)n;
        return true;
    case FLAG_INT64:
        *(int64_t *)at = n;
        return true;
    default:
        return false;
    }
}

/* "0" or "0/..." turns a login limit, on by default, off. */
static bool parse_login_limit(const char *arg, unsigned *limit)
{
    unsigned window;
    if (arg[0] == '0' && (!arg[1] || arg[1] == '/')) {
        *limit = 0;
        return true;
    }
    return parse_rate(arg, false, limit, &window);
}

/* The flags with code of their own. 0 stored, 1 after --help or
 * --version, -1 with the reason printed, -2 for a value refused (the
 * caller prints it). */
static int parse_special(demo_options *o, int special, const char *arg,
                         const char *argv0)
{
    guest_config *c = &o->cfg;
    long long n;
    switch (special) {
    case SPECIAL_MHD_MODE:
        if (strcmp(arg, "event") != 0 && strcmp(arg, "threads") != 0)
            return -2;
        o->mhd_mode = arg;
        return 0;
    case SPECIAL_GENERATOR:
        if (!strcmp(arg, "uuid"))
            c->name_generator = guest_name_uuid;
        else if (!strcmp(arg, "numbered"))
            c->name_generator = guest_name_numbered;
        else if (!strcmp(arg, "friendly"))
            c->name_generator = guest_name_friendly;
        else
            return -2;
        return 0;
    case SPECIAL_AGENT:
        if (o->nagents >= 63)
            return -2;
        o->agents[o->nagents++] = arg;
        o->agents[o->nagents] = NULL;
        c->blocked_user_agents = o->agents;
        return 0;
    case SPECIAL_NO_AGENTS:
        o->nagents = 0;
        o->agents[0] = NULL;
        c->blocked_user_agents = o->agents;
        return 0;
    case SPECIAL_CHECKS:
        return demo_parse_password_checks(arg, &c->password_checks) == 0 ? 0
                                                                         : -2;
    case SPECIAL_RATE_LIMIT:
        return parse_rate(arg, true, &c->guest_rate_limit,
                          &c->guest_rate_window)
                   ? 0
                   : -2;
    case SPECIAL_LOGIN_LIMIT:
        return parse_login_limit(arg, &c->login_rate_limit) ? 0 : -2;
    case SPECIAL_LOGIN_ADDR_LIMIT:
        return parse_login_limit(arg, &c->login_address_rate_limit) ? 0 : -2;
    case SPECIAL_VERSION:
        printf("guestuser-demo %s (libguestuser %s)\n",
               GUESTUSER_VERSION_STRING, guest_version());
        return 1;
    case SPECIAL_HELP:
        demo_usage(stdout, argv0);
        return 1;
    case SPECIAL_SMTP_URL:
        if (strncmp(arg, "smtp://", 7) != 0 && strncmp(arg, "smtps://", 8) != 0)
            return -2;
        o->smtp_url = arg;
        return 0;
    case SPECIAL_MAIL_FROM:
        if (!*arg || strpbrk(arg, "\r\n"))
            return -2;
        c->mail_from = arg;
        return 0;
    case SPECIAL_SECRET_KEY_FILE: {
        guest_error err = {0};
        guest_secret_keys_free(o->secret_keys);
        o->secret_keys = NULL;
        c->secret_keys = NULL;
        if (guest_secret_keys_load(arg, &o->secret_keys, &err) != GUEST_OK) {
            fprintf(stderr, "%s: --secret-key-file: %s\n", argv0, err.message);
            return -1;
        }
        c->secret_keys = (const char *const *)o->secret_keys;
        return 0;
    }
    case SPECIAL_METRICS_TOKEN_FILE: {
        char hint[PATH_MAX + 64];
        snprintf(hint, sizeof hint, "make one with: openssl rand -hex 32 > %s",
                 arg);
        wipe_free(o->metrics_token);
        o->metrics_token = read_secret_file(argv0, "metrics-token-file", arg,
                                            METRICS_TOKEN_MIN, hint);
        return o->metrics_token ? 0 : -1;
    }
    case SPECIAL_PUBLIC_URL: {
        /* guest_oidc_new() checks the rest (no query or fragment) */
        size_t scheme = !strncmp(arg, "https://", 8)  ? 8
                        : !strncmp(arg, "http://", 7) ? 7
                                                      : 0;
        if (!scheme || !arg[scheme] || arg[scheme] == '/')
            return -2;
        o->public_url = arg;
        return 0;
    }
    case SPECIAL_OIDC:
        return parse_oidc(o, argv0, arg) ? 0 : -1;
    case SPECIAL_OIDC_TIMEOUT:
        if (!parse_num(arg, 1, 120000, &n))
            return -2;
        demo_oidc_set_timeout_ms((unsigned)n);
        return 0;
    default:
        return -2;
    }
}

int demo_parse_args(demo_options *o, int argc, char **argv)
{
    memset(o, 0, sizeof *o);
    guest_config_init(&o->cfg);
    o->bind = "127.0.0.1";
    o->port = 8080;
    o->max_connections = o->max_conns_per_ip = o->header_timeout = -1;
    o->threads = -1;
    /* The first server this build has, so a build without MHD still runs
     * with no flags. */
#ifdef GUESTUSER_DEMO_MHD
    o->server = "mhd";
#else
    o->server = "civetweb";
#endif
    o->cfg.db_conninfo = getenv("GUESTUSER_DB");
    o->notes_max = DEMO_NOTES_MAX_DEFAULT;
    struct option longopts[NFLAGS + 1];
    for (size_t i = 0; i < NFLAGS; i++) {
        const demo_flag *f = &flags[i];
        bool no_value = f->kind == FLAG_SET || f->kind == FLAG_CLEAR ||
                        (f->kind == FLAG_SPECIAL && f->no_value);
        longopts[i] =
            (struct option){f->name, no_value ? no_argument : required_argument,
                            NULL, FLAG_VAL + (int)i};
    }
    longopts[NFLAGS] = (struct option){NULL, 0, NULL, 0};
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (opt < FLAG_VAL || opt >= FLAG_VAL + (int)NFLAGS) {
            demo_usage(stderr, argv[0]);
            return -1;
        }
        const demo_flag *f = &flags[opt - FLAG_VAL];
        int rc = f->kind == FLAG_SPECIAL
                     ? parse_special(o, f->special, optarg, argv[0])
                     : (store_flag(o, f, optarg) ? 0 : -2);
        if (rc == -2) {
            fprintf(stderr, "%s: bad value '%s' for --%s\n", argv[0], optarg,
                    f->name);
            demo_usage(stderr, argv[0]);
            return -1;
        }
        if (rc != 0)
            return rc;
    }
    if (optind < argc) {
        fprintf(stderr, "%s: unexpected argument '%s'\n", argv[0],
                argv[optind]);
        demo_usage(stderr, argv[0]);
        return -1;
    }
    return 0;
}

void demo_options_free(demo_options *o)
{
    guest_secret_keys_free(o->secret_keys);
    o->secret_keys = NULL;
    o->cfg.secret_keys = NULL;
    wipe_free(o->metrics_token);
    o->metrics_token = NULL;
    for (int i = 0; i < o->noidc; i++) {
        wipe_free(o->oidc[i].secret);
        wipe_free(o->oidc[i].spec);
        o->oidc[i] = (demo_oidc_provider){0};
    }
    o->noidc = 0;
}

/* Command-line flags of the demo: one per guest_config setting, so every
 * setting can be tried without writing C. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "demo.h"

/* oidc.c: --oidc-timeout-ms, the deadline of each call to a provider
 * (guest_oidc_config.http_timeout_ms) that demo_oidc_start() uses; 0, as
 * at start, keeps the library's default. */
void demo_oidc_set_timeout_ms(unsigned ms);

enum {
    OPT_BIND = 256,
    OPT_SMTP_URL,
    OPT_SMTP_CREDENTIALS,
    OPT_SMTP_STARTTLS,
    OPT_MAIL_FROM,
    OPT_PASSWORD_RESET_TIMEOUT,
    OPT_PORT,
    OPT_DB,
    OPT_SCHEMA,
    OPT_SERVER,
    OPT_MAX_CONNS,
    OPT_MAX_CONNS_PER_IP,
    OPT_HEADER_TIMEOUT,
    OPT_THREADS,
    OPT_MHD_MODE,
    OPT_MAX_AGE,
    OPT_DISABLED,
    OPT_GENERATOR,
    OPT_PREFIX,
    OPT_DIGITS,
    OPT_ATTEMPTS,
    OPT_AGENT,
    OPT_NO_AGENTS,
    OPT_LOGIN,
    OPT_LOGIN_REDIRECT,
    OPT_CONVERT,
    OPT_CONVERT_REDIRECT,
    OPT_ANON,
    OPT_USER,
    OPT_FIELD,
    OPT_COOKIE_NAME,
    OPT_COOKIE_PATH,
    OPT_COOKIE_DOMAIN,
    OPT_SECURE,
    OPT_SAMESITE,
    OPT_POOL,
    OPT_TIMEOUT,
    OPT_MAX_BODY,
    OPT_PREFILL,
    OPT_LOGIN_WITH_EMAIL,
    OPT_SIGNUP_EMAIL,
    OPT_ITERATIONS,
    OPT_MIN_LENGTH,
    OPT_CHECKS,
    OPT_PROXY_HEADER,
    OPT_HASH_CONCURRENCY,
    OPT_HASH_WAIT,
    OPT_TRUSTED_PROXY,
    OPT_ALLOWED_HOSTS,
    OPT_RATE_LIMIT,
    OPT_RATE_ACTION,
    OPT_LOGIN_LIMIT,
    OPT_LOGIN_ADDR_LIMIT,
    OPT_MAX_GUESTS,
    OPT_MAX_GUESTS_NETWORK,
    OPT_IPV6_56,
    OPT_IPV6_48,
    OPT_HELP,
    OPT_VERSION,
    OPT_NOTES_MAX,
    OPT_SECRET_KEY_FILE,
    OPT_DB_POOLER,
    OPT_DB_READ,
    OPT_SESSION_CACHE_TTL,
    OPT_SESSION_CACHE_SIZE,
    OPT_METRICS_TOKEN_FILE,
    OPT_PUBLIC_URL,
    OPT_OIDC,
    OPT_OIDC_TIMEOUT,
    OPT_IDENTITY_SIGNUP
};

static const struct option longopts[] = {
    {"bind", required_argument, NULL, OPT_BIND},
    {"port", required_argument, NULL, OPT_PORT},
    {"smtp-url", required_argument, NULL, OPT_SMTP_URL},
    {"smtp-credentials-file", required_argument, NULL, OPT_SMTP_CREDENTIALS},
    {"smtp-starttls", required_argument, NULL, OPT_SMTP_STARTTLS},
    {"mail-from", required_argument, NULL, OPT_MAIL_FROM},
    {"password-reset-timeout", required_argument, NULL,
     OPT_PASSWORD_RESET_TIMEOUT},
    {"db", required_argument, NULL, OPT_DB},
    {"schema", required_argument, NULL, OPT_SCHEMA},
    {"server", required_argument, NULL, OPT_SERVER},
    {"max-connections", required_argument, NULL, OPT_MAX_CONNS},
    {"max-conns-per-ip", required_argument, NULL, OPT_MAX_CONNS_PER_IP},
    {"header-timeout", required_argument, NULL, OPT_HEADER_TIMEOUT},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"mhd-mode", required_argument, NULL, OPT_MHD_MODE},
    {"max-age", required_argument, NULL, OPT_MAX_AGE},
    {"disabled", no_argument, NULL, OPT_DISABLED},
    {"name-generator", required_argument, NULL, OPT_GENERATOR},
    {"name-prefix", required_argument, NULL, OPT_PREFIX},
    {"name-digits", required_argument, NULL, OPT_DIGITS},
    {"name-attempts", required_argument, NULL, OPT_ATTEMPTS},
    {"blocked-agent", required_argument, NULL, OPT_AGENT},
    {"no-blocked-agents", no_argument, NULL, OPT_NO_AGENTS},
    {"login-url", required_argument, NULL, OPT_LOGIN},
    {"login-redirect-url", required_argument, NULL, OPT_LOGIN_REDIRECT},
    {"convert-url", required_argument, NULL, OPT_CONVERT},
    {"convert-redirect-url", required_argument, NULL, OPT_CONVERT_REDIRECT},
    {"required-anon-url", required_argument, NULL, OPT_ANON},
    {"required-user-url", required_argument, NULL, OPT_USER},
    {"redirect-field-name", required_argument, NULL, OPT_FIELD},
    {"cookie-name", required_argument, NULL, OPT_COOKIE_NAME},
    {"cookie-path", required_argument, NULL, OPT_COOKIE_PATH},
    {"cookie-domain", required_argument, NULL, OPT_COOKIE_DOMAIN},
    {"secure-cookies", no_argument, NULL, OPT_SECURE},
    {"samesite", required_argument, NULL, OPT_SAMESITE},
    {"pool-size", required_argument, NULL, OPT_POOL},
    {"db-timeout-ms", required_argument, NULL, OPT_TIMEOUT},
    {"max-body-size", required_argument, NULL, OPT_MAX_BODY},
    {"prefill-username", no_argument, NULL, OPT_PREFILL},
    {"login-with-email", no_argument, NULL, OPT_LOGIN_WITH_EMAIL},
    {"signup-email", required_argument, NULL, OPT_SIGNUP_EMAIL},
    {"password-iterations", required_argument, NULL, OPT_ITERATIONS},
    {"password-min-length", required_argument, NULL, OPT_MIN_LENGTH},
    {"password-checks", required_argument, NULL, OPT_CHECKS},
    {"secure-proxy-header", required_argument, NULL, OPT_PROXY_HEADER},
    {"hash-concurrency", required_argument, NULL, OPT_HASH_CONCURRENCY},
    {"hash-wait-ms", required_argument, NULL, OPT_HASH_WAIT},
    {"trusted-proxy", required_argument, NULL, OPT_TRUSTED_PROXY},
    {"allowed-hosts", required_argument, NULL, OPT_ALLOWED_HOSTS},
    {"rate-limit", required_argument, NULL, OPT_RATE_LIMIT},
    {"rate-limit-action", required_argument, NULL, OPT_RATE_ACTION},
    {"login-limit", required_argument, NULL, OPT_LOGIN_LIMIT},
    {"login-address-limit", required_argument, NULL, OPT_LOGIN_ADDR_LIMIT},
    {"max-guests", required_argument, NULL, OPT_MAX_GUESTS},
    {"max-guests-per-network", required_argument, NULL, OPT_MAX_GUESTS_NETWORK},
    {"ipv6-56-multiplier", required_argument, NULL, OPT_IPV6_56},
    {"ipv6-48-multiplier", required_argument, NULL, OPT_IPV6_48},
    {"help", no_argument, NULL, OPT_HELP},
    {"version", no_argument, NULL, OPT_VERSION},
    {"notes-max", required_argument, NULL, OPT_NOTES_MAX},
    {"secret-key-file", required_argument, NULL, OPT_SECRET_KEY_FILE},
    {"db-pooler", required_argument, NULL, OPT_DB_POOLER},
    {"db-read", required_argument, NULL, OPT_DB_READ},
    {"session-cache-ttl", required_argument, NULL, OPT_SESSION_CACHE_TTL},
    {"session-cache-size", required_argument, NULL, OPT_SESSION_CACHE_SIZE},
    {"metrics-token-file", required_argument, NULL, OPT_METRICS_TOKEN_FILE},
    {"public-url", required_argument, NULL, OPT_PUBLIC_URL},
    {"oidc", required_argument, NULL, OPT_OIDC},
    {"oidc-timeout-ms", required_argument, NULL, OPT_OIDC_TIMEOUT},
    {"identity-signup", required_argument, NULL, OPT_IDENTITY_SIGNUP},
    {NULL, 0, NULL, 0},
};

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
    guest_config *c = &o->cfg;
    long long n;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case OPT_BIND:
            o->bind = optarg;
            break;
        case OPT_PORT:
            if (!parse_num(optarg, 0, 65535, &n))
                goto bad;
            o->port = (uint16_t)n;
            break;
        case OPT_DB:
            c->db_conninfo = optarg;
            break;
        case OPT_SCHEMA:
            c->db_schema = optarg;
            break;
        case OPT_SERVER:
            o->server = optarg;
            break;
        case OPT_MAX_CONNS:
            if (!parse_num(optarg, 1, 1000000, &n))
                goto bad;
            o->max_connections = (long)n;
            break;
        case OPT_MAX_CONNS_PER_IP:
            if (!parse_num(optarg, 0, 1000000, &n))
                goto bad;
            o->max_conns_per_ip = (long)n;
            break;
        case OPT_HEADER_TIMEOUT:
            if (!parse_num(optarg, 0, 3600, &n))
                goto bad;
            o->header_timeout = (long)n;
            break;
        case OPT_THREADS:
            if (!parse_num(optarg, 1, 1024, &n))
                goto bad;
            o->threads = (long)n;
            break;
        case OPT_MHD_MODE:
            if (strcmp(optarg, "event") != 0 && strcmp(optarg, "threads") != 0)
                goto bad;
            o->mhd_mode = optarg;
            break;
        case OPT_MAX_AGE:
            if (!parse_num(optarg, 1, INT64_MAX / 2, &n))
                goto bad;
            c->max_age = n;
            break;
        case OPT_DISABLED:
            c->enabled = false;
            break;
        case OPT_GENERATOR:
            if (!strcmp(optarg, "uuid"))
                c->name_generator = guest_name_uuid;
            else if (!strcmp(optarg, "numbered"))
                c->name_generator = guest_name_numbered;
            else if (!strcmp(optarg, "friendly"))
                c->name_generator = guest_name_friendly;
            else
                goto bad;
            break;
        case OPT_PREFIX:
            c->name_prefix = optarg;
            break;
        case OPT_DIGITS:
            if (!parse_num(optarg, 0, 1000, &n))
                goto bad;
            c->name_suffix_digits = (unsigned)n;
            break;
        case OPT_ATTEMPTS:
            if (!parse_num(optarg, 0, 1000000, &n))
                goto bad;
            c->name_max_attempts = (unsigned)n;
            break;
        case OPT_AGENT:
            if (o->nagents >= 63)
                goto bad;
            o->agents[o->nagents++] = optarg;
            o->agents[o->nagents] = NULL;
            c->blocked_user_agents = o->agents;
            break;
        case OPT_NO_AGENTS:
            o->nagents = 0;
            o->agents[0] = NULL;
            c->blocked_user_agents = o->agents;
            break;
        case OPT_LOGIN:
            c->login_url = optarg;
            break;
        case OPT_LOGIN_REDIRECT:
            c->login_redirect_url = optarg;
            break;
        case OPT_CONVERT:
            c->convert_url = optarg;
            break;
        case OPT_CONVERT_REDIRECT:
            c->convert_redirect_url = optarg;
            break;
        case OPT_ANON:
            c->required_anon_url = optarg;
            break;
        case OPT_USER:
            c->required_user_url = optarg;
            break;
        case OPT_FIELD:
            c->redirect_field_name = optarg;
            break;
        case OPT_COOKIE_NAME:
            c->cookie_name = optarg;
            break;
        case OPT_COOKIE_PATH:
            c->cookie_path = optarg;
            break;
        case OPT_COOKIE_DOMAIN:
            c->cookie_domain = optarg;
            break;
        case OPT_SECURE:
            c->cookie_secure = true;
            break;
        case OPT_SAMESITE:
            c->cookie_samesite = optarg;
            break;
        case OPT_POOL:
            if (!parse_num(optarg, 0, 100000, &n))
                goto bad;
            c->db_pool_size = (unsigned)n;
            break;
        case OPT_TIMEOUT:
            if (!parse_num(optarg, 0, 3600000, &n))
                goto bad;
            c->db_timeout_ms = (unsigned)n;
            break;
        case OPT_MAX_BODY:
            if (!parse_num(optarg, 0, 1 << 30, &n))
                goto bad;
            c->max_body_size = (size_t)n;
            break;
        case OPT_PREFILL:
            c->convert_prefill_username = true;
            break;
        case OPT_LOGIN_WITH_EMAIL:
            c->login_with_email = true;
            break;
        case OPT_SIGNUP_EMAIL:
            if (!strcmp(optarg, "off"))
                c->signup_email = GUEST_EMAIL_OFF;
            else if (!strcmp(optarg, "optional"))
                c->signup_email = GUEST_EMAIL_OPTIONAL;
            else if (!strcmp(optarg, "required"))
                c->signup_email = GUEST_EMAIL_REQUIRED;
            else
                goto bad;
            break;
        case OPT_ITERATIONS:
            if (!parse_num(optarg, 1, 2147483647, &n))
                goto bad;
            c->password_iterations = (unsigned)n;
            break;
        case OPT_MIN_LENGTH:
            if (!parse_num(optarg, 0, 4096, &n))
                goto bad;
            c->password_min_length = (unsigned)n;
            break;
        case OPT_CHECKS:
            if (demo_parse_password_checks(optarg, &c->password_checks) != 0)
                goto bad;
            break;
        case OPT_PROXY_HEADER:
            c->secure_proxy_header = optarg;
            break;
        case OPT_HASH_CONCURRENCY:
            if (!parse_num(optarg, 0, 4294967295LL, &n))
                goto bad;
            c->hash_concurrency = (unsigned)n;
            break;
        case OPT_HASH_WAIT:
            if (!parse_num(optarg, 0, 4294967295LL, &n))
                goto bad;
            c->hash_wait_ms = (unsigned)n;
            break;
        case OPT_TRUSTED_PROXY:
            c->trusted_proxies = optarg;
            break;
        case OPT_ALLOWED_HOSTS:
            c->allowed_hosts = optarg;
            break;
        case OPT_RATE_LIMIT:
            if (!parse_rate(optarg, true, &c->guest_rate_limit,
                            &c->guest_rate_window))
                goto bad;
            break;
        case OPT_RATE_ACTION:
            if (!strcmp(optarg, "anonymous"))
                c->guest_rate_limit_action = GUEST_RATE_ACTION_ANONYMOUS;
            else if (!strcmp(optarg, "429"))
                c->guest_rate_limit_action = GUEST_RATE_ACTION_429;
            else
                goto bad;
            break;
        case OPT_LOGIN_LIMIT: {
            unsigned window;
            /* On by default, so 0 (or 0/HOUR) turns it off. */
            if (optarg[0] == '0' && (!optarg[1] || optarg[1] == '/'))
                c->login_rate_limit = 0;
            else if (!parse_rate(optarg, false, &c->login_rate_limit, &window))
                goto bad;
            break;
        }
        case OPT_LOGIN_ADDR_LIMIT: {
            unsigned window;
            if (optarg[0] == '0' && (!optarg[1] || optarg[1] == '/'))
                c->login_address_rate_limit = 0;
            else if (!parse_rate(optarg, false, &c->login_address_rate_limit,
                                 &window))
                goto bad;
            break;
        }
        case OPT_IPV6_56:
        case OPT_IPV6_48:
            if (!parse_num(optarg, 0, 65536, &n))
                goto bad;
            *(opt == OPT_IPV6_56 ? &c->ipv6_prefix56_multiplier
                                 : &c->ipv6_prefix48_multiplier) = (unsigned)n;
            break;
        case OPT_MAX_GUESTS_NETWORK:
            if (!parse_num(optarg, 0, INT64_MAX, &n))
                goto bad;
            c->max_guests_per_network = n;
            break;
        case OPT_MAX_GUESTS:
            if (!parse_num(optarg, 0, INT64_MAX, &n))
                goto bad;
            c->max_guests = n;
            break;
        case OPT_VERSION:
            printf("guestuser-demo %s (libguestuser %s)\n",
                   GUESTUSER_VERSION_STRING, guest_version());
            return 1;
        case OPT_HELP:
            demo_usage(stdout, argv[0]);
            return 1;
        case OPT_SMTP_URL:
            if (strncmp(optarg, "smtp://", 7) != 0 &&
                strncmp(optarg, "smtps://", 8) != 0)
                goto bad;
            o->smtp_url = optarg;
            break;
        case OPT_SMTP_CREDENTIALS:
            o->smtp_credentials_file = optarg;
            break;
        case OPT_SMTP_STARTTLS:
            if (!strcmp(optarg, "required"))
                o->smtp_starttls = 0;
            else if (!strcmp(optarg, "optional"))
                o->smtp_starttls = 1;
            else if (!strcmp(optarg, "off"))
                o->smtp_starttls = 2;
            else
                goto bad;
            break;
        case OPT_MAIL_FROM:
            if (!*optarg || strpbrk(optarg, "\r\n"))
                goto bad;
            c->mail_from = optarg;
            break;
        case OPT_PASSWORD_RESET_TIMEOUT:
            if (!parse_num(optarg, 60, 604800, &n))
                goto bad;
            c->password_reset_timeout = (unsigned)n;
            break;
        case OPT_NOTES_MAX:
            if (!parse_num(optarg, 1, 1000000, &n))
                goto bad;
            o->notes_max = (unsigned)n;
            break;
        case OPT_SECRET_KEY_FILE: {
            guest_error err = {0};
            guest_secret_keys_free(o->secret_keys);
            o->secret_keys = NULL;
            c->secret_keys = NULL;
            if (guest_secret_keys_load(optarg, &o->secret_keys, &err) !=
                GUEST_OK) {
                fprintf(stderr, "%s: --secret-key-file: %s\n", argv[0],
                        err.message);
                return -1;
            }
            c->secret_keys = (const char *const *)o->secret_keys;
            break;
        }
        case OPT_DB_READ:
            c->db_read_conninfo = optarg;
            break;
        case OPT_DB_POOLER:
            if (!strcmp(optarg, "auto"))
                c->db_pooler = GUEST_DB_POOLER_AUTO;
            else if (!strcmp(optarg, "none"))
                c->db_pooler = GUEST_DB_POOLER_NONE;
            else if (!strcmp(optarg, "transaction"))
                c->db_pooler = GUEST_DB_POOLER_TRANSACTION;
            else
                goto bad;
            break;
        case OPT_SESSION_CACHE_TTL:
            if (!parse_num(optarg, 0, GUEST_SESSION_CACHE_TTL_MAX, &n))
                goto bad;
            c->session_cache_ttl = (unsigned)n;
            break;
        case OPT_SESSION_CACHE_SIZE:
            if (!parse_num(optarg, 1, GUEST_SESSION_CACHE_SIZE_MAX, &n))
                goto bad;
            c->session_cache_size = (unsigned)n;
            break;
        case OPT_METRICS_TOKEN_FILE: {
            char hint[PATH_MAX + 64];
            snprintf(hint, sizeof hint,
                     "make one with: openssl rand -hex 32 > %s", optarg);
            wipe_free(o->metrics_token);
            o->metrics_token = read_secret_file(
                argv[0], "metrics-token-file", optarg, METRICS_TOKEN_MIN, hint);
            if (!o->metrics_token)
                return -1;
            break;
        }
        case OPT_PUBLIC_URL: {
            /* guest_oidc_new() checks the rest (no query or fragment) */
            size_t scheme = !strncmp(optarg, "https://", 8)  ? 8
                            : !strncmp(optarg, "http://", 7) ? 7
                                                             : 0;
            if (!scheme || !optarg[scheme] || optarg[scheme] == '/')
                goto bad;
            o->public_url = optarg;
            break;
        }
        case OPT_OIDC:
            if (!parse_oidc(o, argv[0], optarg))
                return -1;
            break;
        case OPT_OIDC_TIMEOUT:
            if (!parse_num(optarg, 1, 120000, &n))
                goto bad;
            demo_oidc_set_timeout_ms((unsigned)n);
            break;
        case OPT_IDENTITY_SIGNUP:
            if (!strcmp(optarg, "on"))
                c->identity_signup = true;
            else if (!strcmp(optarg, "off"))
                c->identity_signup = false;
            else
                goto bad;
            break;
        default:
            demo_usage(stderr, argv[0]);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "%s: unexpected argument '%s'\n", argv[0],
                argv[optind]);
        demo_usage(stderr, argv[0]);
        return -1;
    }
    return 0;
bad:
    /* Looked up by value: the enum and the table need not share an order. */
    for (const struct option *lo = longopts; lo->name; lo++)
        if (lo->val == opt)
            fprintf(stderr, "%s: bad value '%s' for --%s\n", argv[0], optarg,
                    lo->name);
    demo_usage(stderr, argv[0]);
    return -1;
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

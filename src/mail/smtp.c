/* The SMTP transport: settings, their checks, one send with libcurl. */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include <guestuser/adapter.h>
#include "mail/mail.h"

struct guest_smtp {
    char *url;
    bool implicit_tls;
    guest_smtp_starttls starttls;
    char *username; /* NULL: no AUTH */
    char *password;
    char *ca_file;
    unsigned timeout_ms;
    bool tls_verify;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_status = CURLE_FAILED_INIT;

/* curl_global_init is not thread-safe in every libcurl a distribution
 * ships, and must run before the first handle: once per process. */
static void curl_init(void)
{
    curl_init_status = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void config_defaults(guest_smtp_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->size = sizeof *cfg;
    cfg->starttls = GUEST_SMTP_STARTTLS_REQUIRED;
    cfg->timeout_ms = 10000;
    cfg->tls_verify = true;
}

/* The struct of 1.0, the smallest a program can pass. */
#define CONFIG_SIZE_1_0 (offsetof(guest_smtp_config, tls_verify) + sizeof(bool))

#undef guest_smtp_config_init
void guest_smtp_config_init_size(guest_smtp_config *cfg, size_t size)
{
    guest_smtp_config d;
    config_defaults(&d);
    guest_sized_init(cfg, size, &d, sizeof d);
}

static guest_status fail(guest_error *err, guest_status st, const char *fmt,
                         ...) GUEST_PRINTF(3, 4);

static guest_status fail(guest_error *err, guest_status st, const char *fmt,
                         ...)
{
    if (err) {
        err->status = st;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return st;
}

static void wipe_free(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

void guest_smtp_free(guest_smtp *smtp)
{
    if (!smtp)
        return;
    free(smtp->url);
    wipe_free(smtp->username);
    wipe_free(smtp->password);
    free(smtp->ca_file);
    free(smtp);
}

static bool is_loopback(const char *host)
{
    unsigned char a[16];
    if (strcasecmp(host, "localhost") == 0 || strcmp(host, "[::1]") == 0)
        return true;
    return inet_pton(AF_INET, host, a) == 1 && a[0] == 127;
}

/* Checks the URL's scheme and host with libcurl's own parser (the one
 * that will connect), and whether the host is loopback. */
static guest_status check_url(const char *url, bool *implicit_tls,
                              bool *loopback, guest_error *err)
{
    CURLU *u = curl_url();
    if (!u)
        return fail(err, GUEST_ERR_NOMEM, "out of memory");
    char *scheme = NULL, *host = NULL;
    guest_status st = GUEST_OK;
    /* libcurl reads "smtp:///host" as "smtp://host"; a typo, surely. */
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !*host ||
        strstr(url, ":///")) {
        st = fail(err, GUEST_ERR_CONFIG,
                  "smtp url: not a URL with a host: %.100s", url);
    } else if (strcasecmp(scheme, "smtp") != 0 &&
               strcasecmp(scheme, "smtps") != 0) {
        st = fail(err, GUEST_ERR_CONFIG,
                  "smtp url: the scheme must be smtp or smtps: %.100s", url);
    } else {
        *implicit_tls = strcasecmp(scheme, "smtps") == 0;
        *loopback = is_loopback(host);
    }
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return st;
}

/* The first line of @p path, "USER:PASSWORD". */
static guest_status read_credentials(const char *path, char **user,
                                     char **password, guest_error *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return fail(err, GUEST_ERR_CONFIG,
                    "smtp credentials_file: cannot read %.150s", path);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len = getline(&line, &cap, f);
    fclose(f);
    guest_status st = GUEST_OK;
    if (len < 0) {
        st = fail(err, GUEST_ERR_CONFIG,
                  "smtp credentials_file: %.150s is empty", path);
    } else {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        char *colon = strchr(line, ':');
        if (!colon || colon == line || !colon[1]) {
            st = fail(err, GUEST_ERR_CONFIG,
                      "smtp credentials_file: the first line of %.150s is not "
                      "USER:PASSWORD",
                      path);
        } else {
            *colon = '\0';
            *user = strdup(line);
            *password = strdup(colon + 1);
            if (!*user || !*password)
                st = fail(err, GUEST_ERR_NOMEM, "out of memory");
        }
    }
    if (line) {
        explicit_bzero(line, cap);
        free(line);
    }
    return st;
}

guest_status guest_smtp_new(const guest_smtp_config *cfg, guest_smtp **out,
                            guest_error *err)
{
    if (out)
        *out = NULL;
    if (!cfg || !out)
        return fail(err, GUEST_ERR_INVALID, "guest_smtp_new: NULL argument");
    /* The program's fields over the defaults of any it does not know. */
    guest_smtp_config given;
    config_defaults(&given);
    if (!guest_sized_read(cfg, CONFIG_SIZE_1_0, &given, sizeof given))
        return fail(err, GUEST_ERR_CONFIG,
                    "guest_smtp_config.size is %zu, not %zu..%zu: fill the "
                    "struct with guest_smtp_config_init()",
                    cfg->size, (size_t)CONFIG_SIZE_1_0, sizeof given);
    cfg = &given;
    if (!cfg->url || !*cfg->url)
        return fail(err, GUEST_ERR_CONFIG, "smtp url: required");
    if (cfg->timeout_ms < 100 || cfg->timeout_ms > 600000)
        return fail(err, GUEST_ERR_CONFIG,
                    "smtp timeout_ms: %u is outside 100..600000",
                    cfg->timeout_ms);
    if (cfg->starttls != GUEST_SMTP_STARTTLS_REQUIRED &&
        cfg->starttls != GUEST_SMTP_STARTTLS_OPTIONAL &&
        cfg->starttls != GUEST_SMTP_STARTTLS_OFF)
        return fail(err, GUEST_ERR_CONFIG, "smtp starttls: unknown value %d",
                    (int)cfg->starttls);
    bool has_user = cfg->username && *cfg->username;
    bool has_password = cfg->password && *cfg->password;
    if (has_user != has_password)
        return fail(err, GUEST_ERR_CONFIG,
                    "smtp credentials: set both username and password, or "
                    "neither");
    if (has_user && cfg->credentials_file)
        return fail(err, GUEST_ERR_CONFIG,
                    "smtp credentials: username/password and "
                    "credentials_file are both set");

    pthread_once(&curl_once, curl_init);
    if (curl_init_status != CURLE_OK)
        return fail(err, GUEST_ERR_CONFIG, "libcurl failed to initialize");
    const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
    bool has_smtp = false;
    for (const char *const *p = v->protocols; p && *p; p++)
        has_smtp = has_smtp || strcmp(*p, "smtp") == 0;
    if (!has_smtp)
        return fail(err, GUEST_ERR_CONFIG, "this libcurl has no SMTP");

    bool implicit_tls = false, loopback = false;
    guest_status st = check_url(cfg->url, &implicit_tls, &loopback, err);
    if (st != GUEST_OK)
        return st;

    guest_smtp *s = calloc(1, sizeof *s);
    if (!s)
        return fail(err, GUEST_ERR_NOMEM, "out of memory");
    s->implicit_tls = implicit_tls;
    s->starttls = cfg->starttls;
    s->timeout_ms = cfg->timeout_ms;
    s->tls_verify = cfg->tls_verify;
    s->url = strdup(cfg->url);
    s->ca_file = cfg->ca_file ? strdup(cfg->ca_file) : NULL;
    if (!s->url || (cfg->ca_file && !s->ca_file)) {
        guest_smtp_free(s);
        return fail(err, GUEST_ERR_NOMEM, "out of memory");
    }
    if (cfg->credentials_file) {
        st = read_credentials(cfg->credentials_file, &s->username, &s->password,
                              err);
    } else if (has_user) {
        s->username = strdup(cfg->username);
        s->password = strdup(cfg->password);
        if (!s->username || !s->password)
            st = fail(err, GUEST_ERR_NOMEM, "out of memory");
    }
    bool encrypted =
        implicit_tls || cfg->starttls == GUEST_SMTP_STARTTLS_REQUIRED;
    if (st == GUEST_OK && s->username && !encrypted && !loopback)
        st = fail(err, GUEST_ERR_CONFIG,
                  "smtp credentials: they would cross the network in "
                  "cleartext; use smtps:// or starttls required");
    if (st != GUEST_OK) {
        guest_smtp_free(s);
        return st;
    }
    *out = s;
    return GUEST_OK;
}

/* ---- one send ---- */

typedef struct upload {
    const char *p;
    size_t left;
} upload;

static size_t read_message(char *dst, size_t size, size_t n, void *userdata)
{
    upload *u = userdata;
    size_t room = size * n;
    size_t take = u->left < room ? u->left : room;
    memcpy(dst, u->p, take);
    u->p += take;
    u->left -= take;
    return take;
}

/* The server's last 4xx or 5xx reply line, for the error text. Only what
 * the server sent is looked at: the client's lines carry the
 * credentials. */
typedef struct reply {
    char last[200];
} reply;

static int on_debug(CURL *curl, curl_infotype type, char *data, size_t size,
                    void *userdata)
{
    (void)curl;
    if (type != CURLINFO_HEADER_IN)
        return 0;
    reply *r = userdata;
    /* The refusal, not the "221 Bye" to the QUIT that follows it. */
    if (size < 3 || (data[0] != '4' && data[0] != '5'))
        return 0;
    while (size > 0 && (data[size - 1] == '\n' || data[size - 1] == '\r'))
        size--;
    if (size >= sizeof r->last)
        size = sizeof r->last - 1;
    for (size_t i = 0; i < size; i++) {
        unsigned char c = (unsigned char)data[i];
        r->last[i] = c < 0x20 || c >= 0x7f ? '?' : (char)c;
    }
    r->last[size] = '\0';
    return 0;
}

static guest_mail_result report(char *error, size_t error_size,
                                guest_mail_result result, const char *fmt, ...)
    GUEST_PRINTF(4, 5);

static guest_mail_result report(char *error, size_t error_size,
                                guest_mail_result result, const char *fmt, ...)
{
    if (error && error_size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(error, error_size, fmt, ap);
        va_end(ap);
    }
    return result;
}

/* Authentication refused or required, STARTTLS required: the site's
 * settings are wrong, not this mail, which should go once they are
 * fixed. */
static bool is_setup_refusal(CURLcode res, long code)
{
    return res == CURLE_LOGIN_DENIED || code == 530 || code == 534 ||
           code == 535 || code == 538;
}

static guest_mail_result smtp_send(const guest_mail *mail, void *userdata,
                                   char *error, size_t error_size)
{
    const guest_smtp *s = userdata;
    if (error && error_size)
        error[0] = '\0';
    if (!s || !mail)
        return report(error, error_size, GUEST_MAIL_PERMANENT,
                      "smtp: no transport or no mail");
    char from[GUEST__MAIL_ADDR_MAX + 1], to[GUEST__MAIL_ADDR_MAX + 1];
    char *msg = NULL;
    size_t msg_len = 0;
    char why[160] = "";
    switch (guest__mail_build(mail, time(NULL), from, to, &msg, &msg_len, why,
                              sizeof why)) {
    case GUEST__MAIL_BUILT:
        break;
    case GUEST__MAIL_REFUSED:
        return report(error, error_size, GUEST_MAIL_PERMANENT, "not sent: %s",
                      why);
    default:
        return report(error, error_size, GUEST_MAIL_RETRY, "not sent: %s", why);
    }

    char env_from[GUEST__MAIL_ADDR_MAX + 3], env_to[GUEST__MAIL_ADDR_MAX + 3];
    snprintf(env_from, sizeof env_from, "<%s>", from);
    snprintf(env_to, sizeof env_to, "<%s>", to);
    CURL *curl = curl_easy_init();
    struct curl_slist *rcpt = curl_slist_append(NULL, env_to);
    if (!curl || !rcpt) {
        curl_easy_cleanup(curl);
        curl_slist_free_all(rcpt);
        free(msg);
        return report(error, error_size, GUEST_MAIL_RETRY,
                      "not sent: out of memory");
    }
    upload up = {msg, msg_len};
    reply last = {""};
    char curl_error[CURL_ERROR_SIZE] = "";
    long use_ssl = CURLUSESSL_ALL;
    if (!s->implicit_tls && s->starttls == GUEST_SMTP_STARTTLS_OPTIONAL)
        use_ssl = CURLUSESSL_TRY;
    else if (!s->implicit_tls && s->starttls == GUEST_SMTP_STARTTLS_OFF)
        use_ssl = CURLUSESSL_NONE;
    bool ok =
        curl_easy_setopt(curl, CURLOPT_URL, s->url) == CURLE_OK &&
        curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "smtp,smtps") ==
            CURLE_OK &&
        curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
        curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)s->timeout_ms) ==
            CURLE_OK &&
        curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                         (long)s->timeout_ms) == CURLE_OK &&
        curl_easy_setopt(curl, CURLOPT_USE_SSL, use_ssl) == CURLE_OK &&
        curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER,
                         s->tls_verify ? 1L : 0L) == CURLE_OK &&
        curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST,
                         s->tls_verify ? 2L : 0L) == CURLE_OK &&
        curl_easy_setopt(curl, CURLOPT_MAIL_FROM, env_from) == CURLE_OK &&
        curl_easy_setopt(curl, CURLOPT_MAIL_RCPT, rcpt) == CURLE_OK &&
        curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L) == CURLE_OK &&
        curl_easy_setopt(curl, CURLOPT_READFUNCTION, read_message) ==
            CURLE_OK &&
        curl_easy_setopt(curl, CURLOPT_READDATA, &up) == CURLE_OK &&
        curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t)msg_len) ==
            CURLE_OK &&
        curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_error) == CURLE_OK &&
        curl_easy_setopt(curl, CURLOPT_DEBUGFUNCTION, on_debug) == CURLE_OK &&
        curl_easy_setopt(curl, CURLOPT_DEBUGDATA, &last) == CURLE_OK &&
        curl_easy_setopt(curl, CURLOPT_VERBOSE, 1L) == CURLE_OK;
    if (ok && s->ca_file)
        ok = curl_easy_setopt(curl, CURLOPT_CAINFO, s->ca_file) == CURLE_OK;
    if (ok && s->username)
        ok =
            curl_easy_setopt(curl, CURLOPT_USERNAME, s->username) == CURLE_OK &&
            curl_easy_setopt(curl, CURLOPT_PASSWORD, s->password) == CURLE_OK;

    guest_mail_result result;
    if (!ok) {
        result = report(error, error_size, GUEST_MAIL_RETRY,
                        "not sent: libcurl refused a setting");
    } else {
        CURLcode res = curl_easy_perform(curl);
        long code = 0;
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
        if (res == CURLE_OK) {
            result = GUEST_MAIL_SENT;
        } else {
            result = code >= 500 && code < 600 && !is_setup_refusal(res, code)
                         ? GUEST_MAIL_PERMANENT
                         : GUEST_MAIL_RETRY;
            const char *what =
                curl_error[0] ? curl_error : curl_easy_strerror(res);
            if (code >= 400 && last.last[0])
                report(error, error_size, result, "smtp: %s; the server: %s",
                       what, last.last);
            else
                report(error, error_size, result, "smtp: %s", what);
        }
    }
    curl_easy_cleanup(curl);
    curl_slist_free_all(rcpt);
    free(msg);
    return result;
}

guest_mail_transport guest_smtp_transport(guest_smtp *smtp)
{
    guest_mail_transport t = {.send = smtp_send, .userdata = smtp};
    return t;
}

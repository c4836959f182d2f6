/* The registry of providers: settings, their checks, the log. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "oidc/oidc.h"

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_status = CURLE_FAILED_INIT;

/* curl_global_init is not thread-safe in every libcurl a distribution
 * ships, and must run before the first handle: once per process. */
static void curl_init(void)
{
    curl_init_status = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void config_defaults(guest_oidc_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->size = sizeof *cfg;
    cfg->login_url_prefix = "/accounts/oidc/";
    cfg->http_timeout_ms = 10000;
    cfg->max_response_bytes = 1u << 20;
    cfg->concurrency = 8;
    cfg->wait_ms = 2000;
}

/* The struct of 1.0, the smallest a program can pass. */
#define CONFIG_SIZE_1_0                                                        \
    (offsetof(guest_oidc_config, wait_ms) + sizeof(unsigned))

#undef guest_oidc_config_init
void guest_oidc_config_init_size(guest_oidc_config *cfg, size_t size)
{
    guest_oidc_config d;
    config_defaults(&d);
    guest_sized_init(cfg, size, &d, sizeof d);
}

static guest_status fail(guest_error *err, guest_status st, const char *msg)
{
    if (err) {
        err->status = st;
        snprintf(err->message, sizeof err->message, "%s", msg);
    }
    return st;
}

static bool public_url_ok(const char *url)
{
    if (!url ||
        (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0))
        return false;
    CURLU *u = curl_url();
    char *part = NULL;
    bool ok = u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
              curl_url_get(u, CURLUPART_QUERY, &part, 0) != CURLUE_OK &&
              curl_url_get(u, CURLUPART_FRAGMENT, &part, 0) != CURLUE_OK;
    curl_free(part);
    curl_url_cleanup(u);
    return ok;
}

static bool prefix_ok(const char *p)
{
    size_t n = p ? strlen(p) : 0;
    if (n < 1 || p[0] != '/' || p[n - 1] != '/' || n > 200)
        return false;
    for (; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("/-_.~", *p))
            return false;
    return true;
}

guest_status guest_oidc_new(guest_ctx *ctx, const guest_oidc_config *cfg,
                            guest_oidc **out, guest_error *err)
{
    if (out)
        *out = NULL;
    if (!ctx || !cfg || !out)
        return fail(err, GUEST_ERR_INVALID, "NULL argument");
    /* The program's fields over the defaults of any it does not know. */
    guest_oidc_config given;
    config_defaults(&given);
    if (!guest_sized_read(cfg, CONFIG_SIZE_1_0, &given, sizeof given))
        return fail(err, GUEST_ERR_CONFIG,
                    "guest_oidc_config.size is wrong: fill the struct with "
                    "guest_oidc_config_init()");
    cfg = &given;
    if (!public_url_ok(cfg->public_url))
        return fail(err, GUEST_ERR_CONFIG,
                    "public_url must be an absolute http(s) URL without "
                    "query or fragment");
    if (!prefix_ok(cfg->login_url_prefix))
        return fail(err, GUEST_ERR_CONFIG,
                    "login_url_prefix must start and end with '/'");
    if (cfg->http_timeout_ms < 1 || cfg->http_timeout_ms > 120000)
        return fail(err, GUEST_ERR_CONFIG, "http_timeout_ms: 1..120000");
    if (cfg->max_response_bytes < 1024 ||
        cfg->max_response_bytes > ((size_t)64 << 20))
        return fail(err, GUEST_ERR_CONFIG,
                    "max_response_bytes: 1024..67108864");
    if (cfg->concurrency < 1 || cfg->concurrency > 1024)
        return fail(err, GUEST_ERR_CONFIG, "concurrency: 1..1024");
    if (cfg->wait_ms > 60000)
        return fail(err, GUEST_ERR_CONFIG, "wait_ms: 0..60000");
    pthread_once(&curl_once, curl_init);
    if (curl_init_status != CURLE_OK)
        return fail(err, GUEST_ERR_CONFIG, "libcurl failed to initialize");

    guest_oidc *o = calloc(1, sizeof *o);
    if (!o)
        return fail(err, GUEST_ERR_NOMEM, "out of memory");
    o->ctx = ctx;
    o->public_url = strdup(cfg->public_url);
    o->prefix = strdup(cfg->login_url_prefix);
    o->http_timeout_ms = cfg->http_timeout_ms;
    o->max_response_bytes = cfg->max_response_bytes;
    o->concurrency = cfg->concurrency;
    o->wait_ms = cfg->wait_ms;
    pthread_mutex_init(&o->mu, NULL);
    pthread_mutex_init(&o->slot_mu, NULL);
    /* The wait for a slot is measured on the monotonic clock: a wall clock
     * step must not stretch or cut it. */
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&o->slot_cv, &ca);
    pthread_condattr_destroy(&ca);
    if (!o->public_url || !o->prefix ||
        guest_log_limiter_new(ctx, "guestuser-oidc", 0, &o->log) != GUEST_OK) {
        guest_oidc_free(o);
        return fail(err, GUEST_ERR_NOMEM, "out of memory");
    }
    size_t n = strlen(o->public_url);
    while (n > 0 && o->public_url[n - 1] == '/')
        o->public_url[--n] = '\0';
    *out = o;
    return GUEST_OK;
}

static bool name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n < 1 || n > 32)
        return false;
    for (; *name; name++)
        if (!(islower((unsigned char)*name) || isdigit((unsigned char)*name) ||
              *name == '_' || *name == '-'))
            return false;
    return true;
}

guest_status guest_oidc_add_provider(guest_oidc *o, const char *name,
                                     const char *issuer, const char *client_id,
                                     const char *client_secret,
                                     guest_error *err)
{
    if (!o || !name || !issuer || !client_id || !client_secret)
        return fail(err, GUEST_ERR_INVALID, "NULL argument");
    if (!name_ok(name))
        return fail(err, GUEST_ERR_CONFIG,
                    "provider name: 1 to 32 of a-z, 0-9, '_' and '-'");
    if (guest__oidc_find(o, name, strlen(name)))
        return fail(err, GUEST_ERR_CONFIG, "provider name used already");
    if (!guest__oidc_url_ok(issuer, true))
        return fail(err, GUEST_ERR_CONFIG,
                    "issuer must be an https:// URL (http:// only on a "
                    "loopback host) without query or fragment");
    if (!*client_id || !*client_secret)
        return fail(err, GUEST_ERR_CONFIG, "empty client id or secret");
    guest__oidc_provider *grown =
        realloc(o->providers, (o->count + 1) * sizeof *grown);
    if (!grown)
        return fail(err, GUEST_ERR_NOMEM, "out of memory");
    o->providers = grown;
    guest__oidc_provider *p = &grown[o->count];
    memset(p, 0, sizeof *p);
    p->name = strdup(name);
    p->issuer = strdup(issuer);
    p->client_id = strdup(client_id);
    p->client_secret = strdup(client_secret);
    size_t len = strlen(o->public_url) + strlen(o->prefix) + strlen(name) +
                 sizeof "/callback/";
    p->redirect_uri = malloc(len);
    if (p->redirect_uri)
        snprintf(p->redirect_uri, len, "%s%s%s/callback/", o->public_url,
                 o->prefix, name);
    if (!p->name || !p->issuer || !p->client_id || !p->client_secret ||
        !p->redirect_uri) {
        free(p->name);
        free(p->issuer);
        free(p->client_id);
        free(p->client_secret);
        free(p->redirect_uri);
        return fail(err, GUEST_ERR_NOMEM, "out of memory");
    }
    o->count++;
    return GUEST_OK;
}

size_t guest_oidc_provider_count(const guest_oidc *o)
{
    return o ? o->count : 0;
}

const char *guest_oidc_provider_name(const guest_oidc *o, size_t i)
{
    return o && i < o->count ? o->providers[i].name : NULL;
}

guest__oidc_provider *guest__oidc_find(const guest_oidc *o, const char *name,
                                       size_t len)
{
    for (size_t i = 0; i < o->count; i++)
        if (strlen(o->providers[i].name) == len &&
            !memcmp(o->providers[i].name, name, len))
            return &o->providers[i];
    return NULL;
}

void guest__oidc_log(guest_oidc *o, guest_log_level level,
                     const guest__oidc_provider *p, const guest__oidc_why *why)
{
    if (!o)
        return;
    char kind[96], line[400];
    snprintf(kind, sizeof kind, "%s:%s", p ? p->name : "-",
             why->kind ? why->kind : "other");
    snprintf(line, sizeof line, "%s: %s", p ? p->name : "-", why->text);
    (void)guest_log_limited(o->log, level, kind, line);
}

void guest_oidc_free(guest_oidc *o)
{
    if (!o)
        return;
    for (size_t i = 0; i < o->count; i++) {
        guest__oidc_provider *p = &o->providers[i];
        free(p->name);
        /* The secret is the one thing here worth wiping. */
        if (p->client_secret)
            explicit_bzero(p->client_secret, strlen(p->client_secret));
        free(p->client_secret);
        free(p->issuer);
        free(p->client_id);
        free(p->redirect_uri);
        free(p->authorization_endpoint);
        free(p->token_endpoint);
        free(p->jwks_uri);
        guest__oidc_jwks_free(p->jwks);
    }
    free(o->providers);
    guest_log_limiter_free(o->log);
    pthread_mutex_destroy(&o->mu);
    pthread_mutex_destroy(&o->slot_mu);
    pthread_cond_destroy(&o->slot_cv);
    free(o->public_url);
    free(o->prefix);
    free(o);
}

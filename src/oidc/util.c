/* What every file of the component uses: failure reasons, the clock and
 * the check of a provider's URLs. Calls nothing else of the component, so
 * the files above it never call each other in a circle. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "oidc/oidc.h"

guest__oidc_fault guest__oidc_fail(guest__oidc_why *why,
                                   guest__oidc_fault fault, const char *kind,
                                   const char *fmt, ...)
{
    why->fault = fault;
    why->kind = kind;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why->text, sizeof why->text, fmt, ap);
    va_end(ap);
    return fault;
}

int64_t guest__oidc_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Plain http is only safe where nobody can listen in: the machine itself. */
static bool loopback_host(const char *host)
{
    if (!strcasecmp(host, "localhost") || !strcmp(host, "[::1]"))
        return true;
    struct in_addr a;
    return inet_pton(AF_INET, host, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

bool guest__oidc_url_ok(const char *url, bool no_query)
{
    if (!url || !*url)
        return false;
    for (const char *c = url; *c; c++)
        if ((unsigned char)*c <= 0x20 || *c == 0x7f)
            return false;
    CURLU *u = curl_url();
    if (!u)
        return false;
    bool ok = false;
    char *scheme = NULL, *host = NULL, *part = NULL;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !*host)
        goto out;
    if (curl_url_get(u, CURLUPART_USER, &part, 0) == CURLUE_OK)
        goto out;
    if (curl_url_get(u, CURLUPART_FRAGMENT, &part, 0) == CURLUE_OK)
        goto out;
    if (no_query && curl_url_get(u, CURLUPART_QUERY, &part, 0) == CURLUE_OK)
        goto out;
    ok = !strcmp(scheme, "https") ||
         (!strcmp(scheme, "http") && loopback_host(host));
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(part);
    curl_url_cleanup(u);
    return ok;
}

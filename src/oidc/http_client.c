/* Calls to a provider with libcurl: one easy handle per call, a deadline,
 * a size limit, no redirects and no other protocol than http(s). */
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "oidc/oidc.h"

typedef struct sink {
    char *data;
    size_t len, cap, max;
    bool too_large;
} sink;

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
    sink *s = ud;
    size_t n = size * nmemb;
    if (n > s->max - s->len) {
        /* Returning short makes libcurl stop reading: a provider cannot
         * make us hold more than max_response_bytes. */
        s->too_large = true;
        return 0;
    }
    if (s->len + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < s->len + n + 1)
            cap *= 2;
        char *d = realloc(s->data, cap);
        if (!d)
            return 0;
        s->data = d;
        s->cap = cap;
    }
    memcpy(s->data + s->len, ptr, n);
    s->len += n;
    s->data[s->len] = '\0';
    return n;
}

char *guest__oidc_escape(const char *s)
{
    char *e = curl_easy_escape(NULL, s, 0);
    char *copy = e ? strdup(e) : NULL;
    curl_free(e);
    return copy;
}

guest__oidc_fault guest__oidc_http(const guest_oidc *o, const char *url,
                                   const char *form, const char *user,
                                   const char *password,
                                   guest__oidc_response *res,
                                   guest__oidc_why *why)
{
    memset(res, 0, sizeof *res);
    sink s = {.max = o->max_response_bytes};
    char *euser = NULL, *epass = NULL;
    struct curl_slist *headers = NULL;
    CURL *c = curl_easy_init();
    guest__oidc_fault f = GUEST__OIDC_INTERNAL;
    if (!c) {
        guest__oidc_fail(why, f, "curl", "curl_easy_init failed");
        goto out;
    }
    headers = curl_slist_append(NULL, "Accept: application/json");
    if (!headers) {
        guest__oidc_fail(why, f, "nomem", "out of memory");
        goto out;
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    /* Threads: a timeout must not use signals. */
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)o->http_timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)o->http_timeout_ms);
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE,
                     (curl_off_t)o->max_response_bytes);
    curl_easy_setopt(c, CURLOPT_USERAGENT,
                     "libguestuser-oidc/" GUESTUSER_VERSION_STRING);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
    if (form) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, form);
    }
    if (user) {
        euser = guest__oidc_escape(user);
        epass = guest__oidc_escape(password);
        if (!euser || !epass) {
            guest__oidc_fail(why, f, "nomem", "out of memory");
            goto out;
        }
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(c, CURLOPT_USERNAME, euser);
        curl_easy_setopt(c, CURLOPT_PASSWORD, epass);
    }
    CURLcode rc = curl_easy_perform(c);
    if (s.too_large || rc == CURLE_FILESIZE_EXCEEDED) {
        f = guest__oidc_fail(why, GUEST__OIDC_UPSTREAM, "too-large",
                             "%s: answer over %zu bytes", url,
                             o->max_response_bytes);
        goto out;
    }
    if (rc != CURLE_OK) {
        f = guest__oidc_fail(why, GUEST__OIDC_UPSTREAM,
                             rc == CURLE_OPERATION_TIMEDOUT ? "timeout"
                                                            : "network",
                             "%s: %s", url, curl_easy_strerror(rc));
        goto out;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &res->status);
    if (!s.data) {
        s.data = strdup("");
        if (!s.data) {
            guest__oidc_fail(why, f, "nomem", "out of memory");
            goto out;
        }
    }
    res->body = s.data;
    res->len = s.len;
    s.data = NULL;
    f = GUEST__OIDC_OK;
out:
    if (epass)
        explicit_bzero(epass, strlen(epass));
    free(euser);
    free(epass);
    free(s.data);
    curl_slist_free_all(headers);
    if (c)
        curl_easy_cleanup(c);
    return f;
}

void guest__oidc_response_free(guest__oidc_response *res)
{
    free(res->body);
    res->body = NULL;
}

json_t *guest__oidc_json(const guest__oidc_response *res)
{
    json_t *j = json_loadb(res->body, res->len, JSON_REJECT_DUPLICATES, NULL);
    if (j && !json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

/* The provider's side of the authorization code flow with libcurl
 * (oidc_browser.h). */
#include "oidc_browser.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

enum { BODY_LIMIT = 4 << 20, MAX_HOPS = 20 };

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

struct buf {
    char *data;
    size_t len;
};

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct buf *b = ud;
    size_t n = size * nmemb;
    size_t keep = b->len < BODY_LIMIT ? BODY_LIMIT - b->len : 0;
    if (keep > n)
        keep = n;
    if (keep) {
        char *grown = realloc(b->data, b->len + keep + 1);
        if (!grown)
            return 0;
        b->data = grown;
        memcpy(b->data + b->len, ptr, keep);
        b->len += keep;
        b->data[b->len] = '\0';
    }
    return n;
}

static CURL *easy_new(void)
{
    pthread_once(&curl_once, curl_init);
    CURL *c = curl_easy_init();
    if (!c)
        return NULL;
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "guestuser-oidc-test-browser");
    return c;
}

/* One request on C; BODY gets the answer. Returns the status or -1. */
static long perform(CURL *c, const char *url, struct buf *body)
{
    free(body->data);
    body->data = NULL;
    body->len = 0;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
    CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK) {
        fprintf(stderr, "oidc_browser: %s: %s\n", url, curl_easy_strerror(rc));
        return -1;
    }
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    return status;
}

/* scheme://host:port of URL (the port made explicit), into OUT. */
static int origin_of(const char *url, char *out, size_t size)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL;
    int ok =
        u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK;
    if (ok) {
        int n = snprintf(out, size, "%s://%s:%s", scheme, host, port);
        ok = n >= 0 && (size_t)n < size;
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return ok ? 0 : -1;
}

/* Whether URL's path is /interaction/UID (the provider's login page). */
static int is_interaction(const char *url)
{
    CURLU *u = curl_url();
    char *path = NULL;
    int yes = 0;
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PATH, &path, 0) == CURLUE_OK) {
        const char *p = "/interaction/";
        yes = strncmp(path, p, strlen(p)) == 0 && path[strlen(p)] &&
              !strchr(path + strlen(p), '/');
    }
    curl_free(path);
    curl_url_cleanup(u);
    return yes;
}

static int flow(const char *authorize_url, const char *username, int deny,
                char *callback_url, size_t size)
{
    char provider[512], there[512];
    if (origin_of(authorize_url, provider, sizeof provider) != 0) {
        fprintf(stderr, "oidc_browser: not a URL: %s\n", authorize_url);
        return -1;
    }
    CURL *c = easy_new();
    if (!c)
        return -1;
    curl_easy_setopt(c, CURLOPT_COOKIEFILE, ""); /* a fresh cookie jar */
    struct buf body = {0};
    char *url = strdup(authorize_url);
    char *form = NULL;
    int posted = 0, result = -1;
    for (int hop = 0; url && hop < MAX_HOPS; hop++) {
        if (form) {
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, form);
        } else {
            curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
        }
        long status = perform(c, url, &body);
        free(form);
        form = NULL;
        if (status < 0)
            break;
        char *location = NULL;
        curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &location);
        if (status >= 300 && status < 400 && location) {
            if (origin_of(location, there, sizeof there) != 0 ||
                strcmp(there, provider) != 0) {
                size_t len = strlen(location);
                if (len < size) {
                    memcpy(callback_url, location, len + 1);
                    result = 0;
                } else {
                    fprintf(stderr, "oidc_browser: callback URL too long\n");
                }
                break;
            }
            char *next = strdup(location);
            free(url);
            url = next;
            continue;
        }
        if (status == 200 && !posted && is_interaction(url)) {
            /* The login page: POST login=USER to URL/login (or to
             * URL/abort), which finishes login and consent at once. */
            posted = 1;
            char *esc = curl_easy_escape(c, username ? username : "", 0);
            size_t n = strlen(url) + 8;
            char *target = malloc(n);
            form = esc ? malloc(strlen(esc) + 8) : NULL;
            if (!target || !form) {
                curl_free(esc);
                free(target);
                break;
            }
            snprintf(target, n, "%s/%s", url, deny ? "abort" : "login");
            snprintf(form, strlen(esc) + 8, "login=%s", esc);
            curl_free(esc);
            free(url);
            url = target;
            continue;
        }
        fprintf(stderr, "oidc_browser: %s answered %ld: %.400s\n", url, status,
                body.data ? body.data : "");
        break;
    }
    free(form);
    free(url);
    free(body.data);
    curl_easy_cleanup(c);
    return result;
}

int oidc_browser_login(const char *authorize_url, const char *username,
                       char *callback_url, size_t size)
{
    return flow(authorize_url, username, 0, callback_url, size);
}

int oidc_browser_deny(const char *authorize_url, char *callback_url,
                      size_t size)
{
    return flow(authorize_url, NULL, 1, callback_url, size);
}

static long request(const char *url, const char *form, const char *user,
                    const char *password, char **body_out)
{
    CURL *c = easy_new();
    if (!c)
        return -1;
    struct buf body = {0};
    char *auth = NULL;
    if (form)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, form);
    if (user) {
        char *u = curl_easy_escape(c, user, 0);
        char *p = curl_easy_escape(c, password ? password : "", 0);
        size_t n = (u ? strlen(u) : 0) + (p ? strlen(p) : 0) + 2;
        auth = u && p ? malloc(n) : NULL;
        if (auth) {
            snprintf(auth, n, "%s:%s", u, p);
            curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
            curl_easy_setopt(c, CURLOPT_USERPWD, auth);
        }
        curl_free(u);
        curl_free(p);
        if (!auth) {
            curl_easy_cleanup(c);
            return -1;
        }
    }
    long status = perform(c, url, &body);
    if (body_out) {
        *body_out = body.data ? body.data : strdup("");
    } else {
        free(body.data);
    }
    free(auth);
    curl_easy_cleanup(c);
    return status;
}

long oidc_http_get(const char *url, char **body)
{
    return request(url, NULL, NULL, NULL, body);
}

long oidc_http_post_form(const char *url, const char *form,
                         const char *basic_user, const char *basic_password,
                         char **body)
{
    return request(url, form ? form : "", basic_user, basic_password, body);
}

char *oidc_url_param(const char *url, const char *name, char *buf, size_t size)
{
    const char *q = strchr(url, '?');
    size_t name_len = strlen(name);
    while (q && *q) {
        q++;
        const char *end = q + strcspn(q, "&#");
        if ((size_t)(end - q) > name_len && strncmp(q, name, name_len) == 0 &&
            q[name_len] == '=') {
            /* form-urlencoded: '+' is a space */
            size_t raw_len = (size_t)(end - q) - name_len - 1;
            char *raw = strndup(q + name_len + 1, raw_len);
            for (char *r = raw; r && *r; r++)
                if (*r == '+')
                    *r = ' ';
            int len = 0;
            char *v =
                raw ? curl_easy_unescape(NULL, raw, (int)raw_len, &len) : NULL;
            free(raw);
            char *ok = NULL;
            if (v && (size_t)len < size) {
                memcpy(buf, v, (size_t)len);
                buf[len] = '\0';
                ok = buf;
            }
            curl_free(v);
            return ok;
        }
        q = *end == '&' ? end : NULL;
    }
    return NULL;
}

/* Redirect targets taken from a request: only ever to this site. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "accounts/accounts.h"

/* Far longer than any real return path; longer values are refused rather
 * than judged. */
#define SAFE_URL_MAX 4096

/* Control characters anywhere (C0, DEL and, as UTF-8, C1) and backslashes,
 * which browsers read as '/'. */
static bool has_bad_bytes(const unsigned char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] < 0x20 || s[i] == 0x7f || s[i] == '\\')
            return true;
        if (s[i] == 0xC2 && i + 1 < len && s[i + 1] >= 0x80 && s[i + 1] <= 0x9F)
            return true;
    }
    return false;
}

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool safe_once(const char *url, size_t len, const char *host,
                      bool require_https)
{
    if (len == 0 || has_bad_bytes((const unsigned char *)url, len) ||
        url[0] == ' ' || url[len - 1] == ' ')
        return false;
    /* RFC 3986 scheme: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":" */
    size_t i = 0;
    if (is_alpha(url[0])) {
        i = 1;
        while (i < len &&
               (is_alpha(url[i]) || (url[i] >= '0' && url[i] <= '9') ||
                url[i] == '+' || url[i] == '-' || url[i] == '.'))
            i++;
        if (i == len || url[i] != ':')
            i = 0;
    }
    if (i == 0) {
        /* Relative: fine unless it names another host ("//host"). */
        return !(len >= 2 && url[0] == '/' && url[1] == '/');
    }
    bool https = i == 5 && !strncasecmp(url, "https", 5);
    bool http = i == 4 && !strncasecmp(url, "http", 4);
    if (!https && !http)
        return false;
    if (require_https && !https)
        return false;
    const char *rest = url + i + 1;
    size_t rlen = len - i - 1;
    if (rlen < 2 || rest[0] != '/' || rest[1] != '/' || !host)
        return false;
    const char *auth = rest + 2;
    size_t alen = 0;
    while (alen < rlen - 2 && !strchr("/?#", auth[alen]))
        alen++;
    /* user@host reads as a different authority; exact match only. */
    return alen > 0 && alen == strlen(host) && !memchr(auth, '@', alen) &&
           !strncasecmp(auth, host, alen);
}

bool guest_is_safe_url(const char *url, const char *host, bool require_https)
{
    if (!url)
        return false;
    size_t len = strlen(url);
    if (len > SAFE_URL_MAX || !safe_once(url, len, host, require_https))
        return false;
    /* Whatever decodes the value next (a browser, a proxy, another form
     * round) must not find a different URL in it: the once-decoded form
     * must pass too. */
    char *dec = malloc(len + 1);
    if (!dec)
        return false;
    /* '+' is a literal here: only form values turn it into a space. */
    size_t n = guest__percent_decode(url, len, dec, false);
    bool ok = safe_once(dec, n, host, require_https);
    free(dec);
    return ok;
}

char *guest__query_param(const guest_req *req, const char *name, size_t *len,
                         bool *bad)
{
    *bad = false;
    *len = 0;
    const char *target = guest_req_target(req);
    const char *q = strchr(target, '?');
    if (!q)
        return NULL;
    q++;
    size_t qlen = strcspn(q, "#");
    guest_form *form = NULL;
    guest_status st = guest_form_parse(q, qlen, &form, NULL);
    if (st != GUEST_OK) {
        *bad = st == GUEST_ERR_VALIDATION;
        return NULL;
    }
    size_t n;
    const char *v = guest_form_get_len(form, name, &n);
    char *out = NULL;
    if (v && (out = malloc(n + 1))) {
        memcpy(out, v, n + 1);
        *len = n;
    }
    guest_form_free(form);
    return out;
}

guest_status guest_req_safe_next(guest_req *req, const guest_form *form,
                                 char **next)
{
    if (!req || !next)
        return GUEST_ERR_INVALID;
    *next = NULL;
    const char *field = req->ctx->cfg.redirect_field_name;
    size_t len;
    const char *v = guest_form_get_len(form, field, &len);
    char *owned = NULL;
    if (!v) {
        bool bad;
        owned = guest__query_param(req, field, &len, &bad);
        if (bad)
            return GUEST_ERR_VALIDATION;
        v = owned;
    }
    /* A NUL inside the value (from %00) would hide the rest from the
     * check, so such a value is never safe. */
    if (v && strlen(v) == len &&
        guest_is_safe_url(v, guest__req_host(req), guest__req_is_secure(req))) {
        *next = owned ? owned : guest__strdup(v);
        if (!*next)
            return GUEST_ERR_NOMEM;
        return GUEST_OK;
    }
    free(owned);
    return GUEST_OK;
}

/* What iri_to_uri leaves as it is: printable ASCII but the characters a
 * URI may not hold. */
static bool iri_keeps(unsigned char c)
{
    return c > 0x20 && c < 0x7f && !strchr("\"<>\\^`{|}", c);
}

char *guest__iri_to_uri(const char *url)
{
    return guest__percent_encode(url, iri_keeps);
}

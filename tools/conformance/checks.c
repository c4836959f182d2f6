#include "checks.h"

#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* Every reason and header line here is built in a fixed buffer sized for
 * the values the kit sends; GCC cannot see those bounds and would warn on
 * most snprintf calls. A value cut short fails its check, it never
 * overflows. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

/* The values guest_conformance_config() sets (include/guestuser/
 * conformance.h); the program does not link the library. */
#define MAX_BODY 4096
#define KIT_VERSION 2
#define FORM_MAX_FIELDS 256
#define PASSWORD "Quartz-Lantern-58"
#define BROWSER "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"
#define GOOGLEBOT                                                              \
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
#define YANDEXBOT                                                              \
    "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)"
#define BINGBOT "Mozilla/5.0 (compatible; bingbot/2.0)"
#define ANON_JSON                                                              \
    "{\"authenticated\":false,\"guest\":false,\"id\":null,\"username\":null}"
#define REGULAR_Q "/regular_user_required/?a=1&b=2"
#define NEXT_Q "next=/regular_user_required/%3Fa%3D1%26b%3D2"

/* ---- responses kept until the check ends ---- */

static cf_response *kept[128];
static size_t nkept;

void cf_checks_release(void)
{
    for (size_t i = 0; i < nkept; i++) {
        cf_response_free(kept[i]);
        free(kept[i]);
    }
    nkept = 0;
}

static cf_response *keep(void)
{
    if (nkept == sizeof kept / sizeof *kept)
        return NULL;
    cf_response *r = calloc(1, sizeof *r);
    if (r)
        kept[nkept++] = r;
    return r;
}

static bool fail(char *why, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool fail(char *why, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, n, fmt, ap);
    va_end(ap);
    return false;
}

#define FAIL(...) return fail(why, n, __VA_ARGS__)

/* A short, printable excerpt of @p s for a reason. */
static const char *excerpt(const char *s)
{
    static char buf[8][96];
    static int next;
    char *b = buf[next++ % 8];
    size_t i = 0;
    for (; s && *s && i < sizeof buf[0] - 4; s++)
        b[i++] =
            (*s == '\r' || *s == '\n' || (unsigned char)*s < 0x20) ? ' ' : *s;
    if (s && *s)
        memcpy(b + i, "...", 3), i += 3;
    b[i] = '\0';
    return b;
}

/* ---- requests ---- */

/* strcasestr, which POSIX lacks. */
static const char *find_ci(const char *hay, const char *needle)
{
    size_t len = strlen(needle);
    for (; *hay; hay++)
        if (!strncasecmp(hay, needle, len))
            return hay;
    return NULL;
}

/* Sends METHOD TARGET with Connection: close, the header lines @p headers
 * ("Name: value\r\n"...; a User-Agent of a browser unless they name one)
 * and @p body with its Content-Length; NULL when there is no answer. */
static cf_response *http(const cf_target *t, const char *method,
                         const char *target, const char *headers,
                         const char *body, char *why, size_t n)
{
    size_t blen = body ? strlen(body) : 0;
    size_t cap = strlen(target) + (headers ? strlen(headers) : 0) + blen +
                 strlen(t->host_header) + 256;
    char *req = malloc(cap);
    cf_response *r = keep();
    if (!req || !r) {
        free(req);
        fail(why, n, "out of memory");
        return NULL;
    }
    bool ua = headers && find_ci(headers, "User-Agent:");
    char cl[48] = "";
    if (body)
        snprintf(cl, sizeof cl, "Content-Length: %zu\r\n", blen);
    snprintf(
        req, cap,
        "%s %s HTTP/1.1\r\nHost: %s\r\n%s%s%sConnection: close\r\n%s%s\r\n%s",
        method, target, t->host_header,
        ua ? "" : "User-Agent: ", ua ? "" : BROWSER, ua ? "" : "\r\n",
        headers ? headers : "", cl, body ? body : "");
    char rwhy[300];
    bool ok =
        cf_exchange(t, req, !strcmp(method, "HEAD"), r, rwhy, sizeof rwhy);
    free(req);
    if (!ok) {
        fail(why, n, "%s %s: %s", method, excerpt(target), rwhy);
        return NULL;
    }
    return r;
}

#define HTTP(r, method, target, headers, body)                                 \
    cf_response *r = http(t, method, target, headers, body, why, n);           \
    if (!r)                                                                    \
    return false

/* "Cookie: VALUE\r\n" (or "" for NULL) into @p out. */
static const char *cookie_line(const char *value, char *out, size_t size)
{
    if (!value)
        return "";
    snprintf(out, size, "Cookie: %s\r\n", value);
    return out;
}

/* "NAME=VALUE" of the Set-Cookie line for cookie @p name into @p out. */
static bool set_cookie(const cf_response *r, const char *name, char *out,
                       size_t size)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < r->nheaders; i++) {
        if (strcasecmp(r->names[i], "Set-Cookie") ||
            strncmp(r->values[i], name, nl) || r->values[i][nl] != '=')
            continue;
        size_t len = strcspn(r->values[i], ";");
        if (len >= size)
            return false;
        memcpy(out, r->values[i], len);
        out[len] = '\0';
        return true;
    }
    return false;
}

static const char *set_cookie_line(const cf_response *r, const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < r->nheaders; i++)
        if (!strcasecmp(r->names[i], "Set-Cookie") &&
            !strncmp(r->values[i], name, nl) && r->values[i][nl] == '=')
            return r->values[i];
    return NULL;
}

static bool status_is(const cf_response *r, int want, const char *what,
                      char *why, size_t n)
{
    if (r->status != want)
        return fail(why, n, "%s: status %d, want %d (body '%s')", what,
                    r->status, want, excerpt(r->body));
    return true;
}

#define STATUS(r, want, what)                                                  \
    do {                                                                       \
        if (!status_is(r, want, what, why, n))                                 \
            return false;                                                      \
    } while (0)

static bool header_is(const cf_response *r, const char *name, const char *want,
                      const char *what, char *why, size_t n)
{
    const char *v = cf_header(r, name);
    if (!v || strcmp(v, want))
        return fail(why, n, "%s: %s is '%s', want '%s'", what, name,
                    v ? excerpt(v) : "(none)", want);
    return true;
}

#define HEADER_IS(r, name, want, what)                                         \
    do {                                                                       \
        if (!header_is(r, name, want, what, why, n))                           \
            return false;                                                      \
    } while (0)

#define NO_HEADER(r, name, what)                                               \
    do {                                                                       \
        const char *v_ = cf_header(r, name);                                   \
        if (v_)                                                                \
            FAIL("%s: unexpected %s: %s", what, name, excerpt(v_));            \
    } while (0)

#define BODY_HAS(r, text, what)                                                \
    do {                                                                       \
        if (!strstr((r)->body, text))                                          \
            FAIL("%s: '%s' not in the body '%s'", what, excerpt(text),         \
                 excerpt((r)->body));                                          \
    } while (0)

/* ---- the server's state, read through the table ---- */

static bool json_number(const char *json, const char *key, long long *out)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(json, pat);
    if (!p)
        return false;
    *out = strtoll(p + strlen(pat), NULL, 10);
    return true;
}

/* Users and guests the server's database holds now. */
static bool stats(const cf_target *t, long long *users, long long *guests,
                  char *why, size_t n)
{
    HTTP(r, "GET", "/conformance/stats", NULL, NULL);
    STATUS(r, 200, "GET /conformance/stats");
    if (!json_number(r->body, "users", users) ||
        !json_number(r->body, "guests", guests))
        FAIL("GET /conformance/stats: no counts in '%s'", excerpt(r->body));
    return true;
}

#define STATS(u, g)                                                            \
    long long u, g;                                                            \
    if (!stats(t, &u, &g, why, n))                                             \
    return false

#define SAME_STATS(u, g, what)                                                 \
    do {                                                                       \
        long long u2_, g2_;                                                    \
        if (!stats(t, &u2_, &g2_, why, n))                                     \
            return false;                                                      \
        if (u2_ != (u) || g2_ != (g))                                          \
            FAIL("%s: users %lld -> %lld, guests %lld -> %lld", what,          \
                 (long long)(u), u2_, (long long)(g), g2_);                    \
    } while (0)

/* A guest made the way a browser becomes one; "sessionid=TOKEN" into
 * @p cookie and its name into @p name. */
static bool new_guest(const cf_target *t, char *cookie, size_t csize,
                      char *name, size_t nsize, char *why, size_t n)
{
    HTTP(r, "GET", "/allow_guest_user/", NULL, NULL);
    STATUS(r, 200, "GET /allow_guest_user/");
    if (!set_cookie(r, "sessionid", cookie, csize))
        FAIL("GET /allow_guest_user/ as a new visitor: no sessionid "
             "Set-Cookie");
    const char *hello = strstr(r->body, "<p>Hello, ");
    const char *end = hello ? strstr(hello, "!</p>") : NULL;
    if (!end || end == hello + 10 || (size_t)(end - hello - 10) >= nsize)
        FAIL("GET /allow_guest_user/: no name in '%s'", excerpt(r->body));
    memcpy(name, hello + 10, (size_t)(end - hello - 10));
    name[end - hello - 10] = '\0';
    return true;
}

#define GUEST(cookie, name)                                                    \
    char cookie[256], name[256];                                               \
    if (!new_guest(t, cookie, sizeof cookie, name, sizeof name, why, n))       \
    return false

/* The CSRF cookie "csrftoken=..." and a token for it, from /cookies/ as
 * the visitor with session cookie @p session (NULL: a new visitor). */
static bool csrf_pair(const cf_target *t, const char *session, char *cookie,
                      size_t csize, char *token, size_t tsize, char *why,
                      size_t n)
{
    char line[512];
    HTTP(r, "GET", "/cookies/", cookie_line(session, line, sizeof line), NULL);
    STATUS(r, 200, "GET /cookies/");
    if (!set_cookie(r, "csrftoken", cookie, csize))
        FAIL("GET /cookies/: no csrftoken Set-Cookie");
    if (r->body_len == 0 || r->body_len >= tsize)
        FAIL("GET /cookies/: no token in the body");
    memcpy(token, r->body, r->body_len + 1);
    return true;
}

static bool whoami(const cf_target *t, const char *cookie, cf_response **out,
                   char *why, size_t n)
{
    char line[512];
    HTTP(r, "GET", "/whoami", cookie_line(cookie, line, sizeof line), NULL);
    STATUS(r, 200, "GET /whoami");
    *out = r;
    return true;
}

/* A unique username for this run. */
static void fresh_username(char *out, size_t size)
{
    static unsigned counter;
    snprintf(out, size, "conformance_%ld_%lx_%u", (long)getpid(),
             (unsigned long)time(NULL), counter++);
}

/* A registered user: a new guest converted through the /convert/ form.
 * "sessionid=..." into @p cookie, the username into @p name. */
static bool new_registered(const cf_target *t, char *cookie, size_t csize,
                           char *name, size_t nsize, char *why, size_t n)
{
    char guest[256], gname[256], csrf[256], token[256];
    if (!new_guest(t, guest, sizeof guest, gname, sizeof gname, why, n) ||
        !csrf_pair(t, guest, csrf, sizeof csrf, token, sizeof token, why, n))
        return false;
    fresh_username(name, nsize);
    char headers[768], body[512];
    snprintf(headers, sizeof headers,
             "Cookie: %s; %s\r\nContent-Type: "
             "application/x-www-form-urlencoded\r\n",
             guest, csrf);
    snprintf(body, sizeof body,
             "username=%s&password1=%s&password2=%s&csrfmiddlewaretoken=%s&"
             "next=/whoami",
             name, PASSWORD, PASSWORD, token);
    HTTP(r, "POST", "/convert/", headers, body);
    STATUS(r, 302, "POST /convert/ with a valid form");
    HEADER_IS(r, "Location", "/whoami", "POST /convert/ with next=/whoami");
    if (!set_cookie(r, "sessionid", cookie, csize))
        FAIL("POST /convert/: no new sessionid Set-Cookie");
    return true;
}

/* ---- the checks ---- */

static bool chk_info(const cf_target *t, char *why, size_t n)
{
    HTTP(r, "GET", "/conformance", NULL, NULL);
    STATUS(r, 200, "GET /conformance (is the conformance table mounted?)");
    long long v;
    if (!json_number(r->body, "kit", &v))
        FAIL("GET /conformance: not the conformance table: '%s'",
             excerpt(r->body));
    if (v != KIT_VERSION)
        FAIL("the server runs kit version %lld, this program %d", v,
             KIT_VERSION);
    if (!json_number(r->body, "max_body_size", &v) || v != MAX_BODY ||
        !json_number(r->body, "max_age", &v) || v != 1209600 ||
        !strstr(r->body, "\"signed\":false") ||
        !strstr(r->body, "\"allowed_hosts\":false") ||
        !strstr(r->body, "\"cookie\":\"sessionid\"") ||
        !strstr(r->body, "\"csrf_cookie\":\"csrftoken\""))
        FAIL("the server's settings are not the kit's (call "
             "guest_conformance_config() before guest_ctx_new()): '%s'",
             excerpt(r->body));
    return true;
}

static bool chk_guest_created(const cf_target *t, char *why, size_t n)
{
    STATS(users, guests);
    HTTP(r, "GET", "/allow_guest_user/", NULL, NULL);
    STATUS(r, 200, "first visit to /allow_guest_user/");
    if (cf_header_count(r, "Set-Cookie") != 1)
        FAIL("first visit: %zu Set-Cookie lines, want 1",
             cf_header_count(r, "Set-Cookie"));
    const char *sc = set_cookie_line(r, "sessionid");
    if (!sc)
        FAIL("first visit: no sessionid Set-Cookie");
    if (strcspn(sc + 10, ";") != 43 || !strstr(sc, "; Max-Age=1209600") ||
        !strstr(sc, "; Path=/") || !strstr(sc, "; HttpOnly") ||
        !strstr(sc, "; SameSite=Lax") || strstr(sc, "Secure"))
        FAIL("first visit: unexpected Set-Cookie '%s'", excerpt(sc));
    const char *vary = cf_header(r, "Vary");
    if (!vary || !find_ci(vary, "Cookie"))
        FAIL("first visit: no Vary: Cookie");
    char cookie[256];
    if (!set_cookie(r, "sessionid", cookie, sizeof cookie))
        FAIL("first visit: Set-Cookie too long");
    cf_response *w;
    if (!whoami(t, cookie, &w, why, n))
        return false;
    if (!strstr(w->body, "\"guest\":true"))
        FAIL("/whoami with the new cookie: '%s'", excerpt(w->body));
    const char *u = strstr(w->body, "\"username\":\"");
    if (!u)
        FAIL("/whoami: no username in '%s'", excerpt(w->body));
    char hello[512];
    snprintf(hello, sizeof hello, "<p>Hello, %.*s!</p>",
             (int)strcspn(u + 12, "\""), u + 12);
    BODY_HAS(r, hello, "first visit");
    SAME_STATS(users + 1, guests + 1, "first visit: one user and one guest");
    return true;
}

static bool chk_guest_recognised(const cf_target *t, char *why, size_t n)
{
    GUEST(cookie, name);
    STATS(users, guests);
    char line[512], hello[300];
    HTTP(r, "GET", "/allow_guest_user/", cookie_line(cookie, line, sizeof line),
         NULL);
    STATUS(r, 200, "second visit");
    NO_HEADER(r, "Set-Cookie", "second visit");
    snprintf(hello, sizeof hello, "<p>Hello, %s!</p>", name);
    BODY_HAS(r, hello, "second visit");
    HTTP(g, "GET", "/guest_user_required/", line, NULL);
    STATUS(g, 200, "GET /guest_user_required/ as a guest");
    snprintf(hello, sizeof hello, "Only guests see this page, %s.", name);
    BODY_HAS(g, hello, "GET /guest_user_required/ as a guest");
    SAME_STATS(users, guests, "visits with a cookie");
    return true;
}

static bool chk_crawlers(const cf_target *t, char *why, size_t n)
{
    STATS(users, guests);
    const char *agents[] = {GOOGLEBOT, YANDEXBOT, BINGBOT};
    for (size_t i = 0; i < 3; i++) {
        char h[256];
        snprintf(h, sizeof h, "User-Agent: %s\r\n", agents[i]);
        HTTP(r, "GET", "/allow_guest_user/", h, NULL);
        STATUS(r, 200, agents[i]);
        NO_HEADER(r, "Set-Cookie", agents[i]);
        BODY_HAS(r, "<p>Hello, !</p>", agents[i]);
        HTTP(g, "GET", "/guest_user_required/", h, NULL);
        STATUS(g, 302, "a crawler on /guest_user_required/");
        HEADER_IS(g, "Location", "/accounts/login/",
                  "a crawler on /guest_user_required/");
    }
    SAME_STATS(users, guests, "crawler visits");
    return true;
}

static bool chk_guest_required(const cf_target *t, char *why, size_t n)
{
    HTTP(r, "GET", "/guest_user_required/", NULL, NULL);
    STATUS(r, 302, "GET /guest_user_required/ anonymous");
    HEADER_IS(r, "Location", "/accounts/login/",
              "GET /guest_user_required/ anonymous");
    NO_HEADER(r, "Set-Cookie", "GET /guest_user_required/ anonymous");
    return true;
}

static bool chk_redirect_next(const cf_target *t, char *why, size_t n)
{
    HTTP(r, "GET", REGULAR_Q, NULL, NULL);
    STATUS(r, 302, "GET " REGULAR_Q " anonymous");
    HEADER_IS(r, "Location", "/accounts/login/?" NEXT_Q,
              "GET " REGULAR_Q " anonymous");
    GUEST(cookie, name);
    char line[512];
    HTTP(g, "GET", REGULAR_Q, cookie_line(cookie, line, sizeof line), NULL);
    STATUS(g, 302, "GET " REGULAR_Q " as a guest");
    HEADER_IS(g, "Location", "/convert/?" NEXT_Q,
              "GET " REGULAR_Q " as a guest");
    /* escapes in the target stay escapes, encoded once more in next */
    HTTP(e, "GET", "/regular_user_required/?q=a%20b&c=%2F", NULL, NULL);
    STATUS(e, 302, "GET /regular_user_required/?q=a%20b&c=%2F");
    HEADER_IS(e, "Location",
              "/accounts/login/?next=/regular_user_required/"
              "%3Fq%3Da%2520b%26c%3D%252F",
              "GET /regular_user_required/?q=a%20b&c=%2F");
    return true;
}

static bool chk_two_cookies(const cf_target *t, char *why, size_t n)
{
    HTTP(r, "GET", "/cookies/", NULL, NULL);
    STATUS(r, 200, "GET /cookies/");
    size_t count = cf_header_count(r, "Set-Cookie");
    const char *s = set_cookie_line(r, "sessionid");
    const char *c = set_cookie_line(r, "csrftoken");
    if (count != 2 || !s || !c)
        FAIL("GET /cookies/ sets the session and the CSRF cookie: %zu "
             "Set-Cookie lines (sessionid %s, csrftoken %s), want 2 separate "
             "lines",
             count, s ? "seen" : "missing", c ? "seen" : "missing");
    if (strchr(s, ','))
        FAIL("the session Set-Cookie holds a comma, two cookies folded into "
             "one line? '%s'",
             excerpt(s));
    if (r->body_len != 64)
        FAIL("GET /cookies/: a token of %zu characters, want 64", r->body_len);
    return true;
}

static bool chk_repeated_headers(const cf_target *t, char *why, size_t n)
{
    HTTP(r, "GET", "/echo", "X-Test: one\r\nX-Test: two\r\n", NULL);
    STATUS(r, 200, "GET /echo with X-Test twice");
    BODY_HAS(r, "\nx-test=one, two\n", "X-Test sent on two lines");
    GUEST(cookie, name);
    char h[1024];
    snprintf(h, sizeof h, "Cookie: a=1\r\nCookie: %s\r\n", cookie);
    HTTP(c, "GET", "/echo", h, NULL);
    STATUS(c, 200, "GET /echo with Cookie twice");
    char want[512];
    snprintf(want, sizeof want, "\ncookie=a=1; %s\n", cookie);
    BODY_HAS(c, want, "Cookie sent on two lines");
    HTTP(w, "GET", "/whoami", h, NULL);
    STATUS(w, 200, "GET /whoami with Cookie twice");
    if (!strstr(w->body, "\"guest\":true"))
        FAIL("the session cookie on the second Cookie line was not seen: '%s'",
             excerpt(w->body));
    return true;
}

static bool chk_csrf(const cf_target *t, char *why, size_t n)
{
    char csrf[256], token[256], h[512], body[512];
    if (!csrf_pair(t, NULL, csrf, sizeof csrf, token, sizeof token, why, n))
        return false;
    snprintf(h, sizeof h, "Cookie: %s\r\n", csrf);
    HTTP(none, "POST", "/csrf/", h, "value=1");
    STATUS(none, 403, "POST /csrf/ without a token");
    snprintf(body, sizeof body, "value=2&csrfmiddlewaretoken=%s", token);
    HTTP(form, "POST", "/csrf/", h, body);
    STATUS(form, 200, "POST /csrf/ with the token in the form");
    BODY_HAS(form, "ok 2", "POST /csrf/ with the token in the form");
    snprintf(h, sizeof h, "Cookie: %s\r\nX-CSRFToken: %s\r\n", csrf, token);
    HTTP(hdr, "POST", "/csrf/", h, "value=3");
    STATUS(hdr, 200, "POST /csrf/ with the token in X-CSRFToken");
    char wrong[256];
    snprintf(wrong, sizeof wrong, "%s", token);
    wrong[0] = wrong[0] == 'a' ? 'b' : 'a';
    snprintf(h, sizeof h, "Cookie: %s\r\nX-CSRFToken: %s\r\n", csrf, wrong);
    HTTP(bad, "POST", "/csrf/", h, "value=4");
    STATUS(bad, 403, "POST /csrf/ with a wrong token");
    snprintf(h, sizeof h, "X-CSRFToken: %s\r\n", token);
    HTTP(nocookie, "POST", "/csrf/", h, "value=5");
    STATUS(nocookie, 403, "POST /csrf/ without the CSRF cookie");
    return true;
}

static bool chk_convert(const cf_target *t, char *why, size_t n)
{
    STATS(users, guests);
    char cookie[256], name[256];
    if (!new_registered(t, cookie, sizeof cookie, name, sizeof name, why, n))
        return false;
    cf_response *w;
    if (!whoami(t, cookie, &w, why, n))
        return false;
    char want[512];
    snprintf(want, sizeof want, "\"guest\":false");
    if (!strstr(w->body, want) || !strstr(w->body, name))
        FAIL("/whoami after the conversion: '%s'", excerpt(w->body));
    SAME_STATS(users + 1, guests, "a guest made and converted");
    return true;
}

static bool chk_registered(const cf_target *t, char *why, size_t n)
{
    char cookie[256], name[256], line[300], want[400];
    if (!new_registered(t, cookie, sizeof cookie, name, sizeof name, why, n))
        return false;
    STATS(users, guests);
    cookie_line(cookie, line, sizeof line);
    HTTP(r, "GET", REGULAR_Q, line, NULL);
    STATUS(r, 200, "GET " REGULAR_Q " registered");
    snprintf(want, sizeof want, "Only registered users see this page, %s.",
             name);
    BODY_HAS(r, want, "GET " REGULAR_Q " registered");
    HTTP(g, "GET", "/guest_user_required/", line, NULL);
    STATUS(g, 302, "GET /guest_user_required/ registered");
    HEADER_IS(g, "Location", "/accounts/profile/",
              "GET /guest_user_required/ registered");
    HTTP(a, "GET", "/allow_guest_user/", line, NULL);
    STATUS(a, 200, "GET /allow_guest_user/ registered");
    NO_HEADER(a, "Set-Cookie", "GET /allow_guest_user/ registered");
    snprintf(want, sizeof want, "<p>Hello, %s!</p>", name);
    BODY_HAS(a, want, "GET /allow_guest_user/ registered");
    SAME_STATS(users, guests, "a registered user's visits");
    return true;
}

static bool chk_json(const cf_target *t, char *why, size_t n)
{
    GUEST(cookie, name);
    char h[768], csrf[256], token[256];
    snprintf(h, sizeof h, "Cookie: %s\r\nAccept: application/json\r\n", cookie);
    HTTP(r, "GET", "/convert/", h, NULL);
    STATUS(r, 200, "GET /convert/ asking for JSON");
    const char *ct = cf_header(r, "Content-Type");
    if (!ct || strncmp(ct, "application/json", 16))
        FAIL("GET /convert/ asking for JSON: Content-Type '%s'",
             ct ? excerpt(ct) : "(none)");
    BODY_HAS(r, "\"csrf_token\"", "GET /convert/ asking for JSON");
    BODY_HAS(r, "\"user\"", "GET /convert/ asking for JSON");
    if (!csrf_pair(t, cookie, csrf, sizeof csrf, token, sizeof token, why, n))
        return false;
    snprintf(h, sizeof h,
             "Cookie: %s; %s\r\nContent-Type: application/json\r\nAccept: "
             "application/json\r\n",
             cookie, csrf);
    HTTP(no, "POST", "/accounts/login/", h,
         "{\"username\":\"nobody\",\"password\":\"x\"}");
    STATUS(no, 403, "POST /accounts/login/ as JSON without a token");
    BODY_HAS(no, "\"errors\"", "POST /accounts/login/ as JSON without a token");
    size_t l = strlen(h);
    snprintf(h + l, sizeof h - l, "X-CSRFToken: %s\r\n", token);
    HTTP(bad, "POST", "/accounts/login/", h,
         "{\"username\":\"conformance_nobody\",\"password\":\"wrong\"}");
    STATUS(bad, 400, "POST /accounts/login/ as JSON, wrong password");
    BODY_HAS(bad, "\"errors\"", "POST /accounts/login/ as JSON");
    return true;
}

static bool chk_bad_cookies(const cf_target *t, char *why, size_t n)
{
    GUEST(cookie, name);
    const char *valid = cookie + 10;
    /* well-formed, but no session has it */
    char unknown[44];
    static const char b64[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    for (int i = 0; i < 42; i++) {
        seed = seed * 1103515245u + 12345u;
        unknown[i] = b64[(seed >> 16) & 63];
    }
    unknown[42] = 'A';
    unknown[43] = '\0';
    char cases[14][256];
    int k = 0;
    snprintf(cases[k++], sizeof *cases, "sessionid=garbage");
    snprintf(cases[k++], sizeof *cases, "sessionid=%.42s", valid);
    snprintf(cases[k++], sizeof *cases, "sessionid=%sA", valid);
    snprintf(cases[k++], sizeof *cases, "sessionid=%.42s!", valid);
    snprintf(cases[k++], sizeof *cases, "sessionid=%.42s+", valid);
    snprintf(cases[k++], sizeof *cases, "sessionid=%.41s==", valid);
    snprintf(cases[k++], sizeof *cases, "sessionid=%s", unknown);
    snprintf(cases[k++], sizeof *cases, "sessionid=junk; sessionid=%s", valid);
    snprintf(cases[k++], sizeof *cases, "sessionid=; other=1");
    snprintf(cases[k++], sizeof *cases, "sessionid");
    snprintf(cases[k++], sizeof *cases, ";;=;=; ;");
    snprintf(cases[k++], sizeof *cases, "SESSIONID=%s", valid);
    snprintf(cases[k++], sizeof *cases, "sessionid=\"%.20s", valid);
    STATS(users, guests);
    for (int i = 0; i < k; i++) {
        char line[512], what[300];
        cookie_line(cases[i], line, sizeof line);
        snprintf(what, sizeof what, "Cookie '%s'", cases[i]);
        HTTP(w, "GET", "/whoami", line, NULL);
        STATUS(w, 200, what);
        if (strcmp(w->body, ANON_JSON))
            FAIL("%s: not anonymous: '%s'", what, excerpt(w->body));
        HTTP(g, "GET", "/guest_user_required/", line, NULL);
        STATUS(g, 302, what);
        HEADER_IS(g, "Location", "/accounts/login/", what);
    }
    SAME_STATS(users, guests, "bad cookies");
    /* on a GUEST_ALLOW page a bad cookie makes a new guest, as none does */
    char line[512], fresh[256];
    HTTP(a, "GET", "/allow_guest_user/",
         cookie_line(cases[0], line, sizeof line), NULL);
    STATUS(a, 200, "GET /allow_guest_user/ with a bad cookie");
    if (!set_cookie(a, "sessionid", fresh, sizeof fresh) ||
        !strcmp(fresh, cookie))
        FAIL("GET /allow_guest_user/ with a bad cookie: no new session");
    SAME_STATS(users + 1, guests + 1, "a bad cookie on a GUEST_ALLOW page");
    /* with two sessionid cookies the first decides, also when valid */
    char two[512];
    snprintf(two, sizeof two, "%s; sessionid=junk", cookie);
    cf_response *w;
    if (!whoami(t, two, &w, why, n))
        return false;
    if (!strstr(w->body, "\"guest\":true"))
        FAIL("Cookie '%s': the first sessionid was not used: '%s'",
             excerpt(two), excerpt(w->body));
    return true;
}

static bool chk_oversized_cookie(const cf_target *t, char *why, size_t n)
{
    STATS(users, guests);
    size_t sizes[] = {8 * 1024, 64 * 1024};
    for (size_t k = 0; k < 2; k++) {
        char *h = malloc(sizes[k] + 32);
        if (!h)
            FAIL("out of memory");
        strcpy(h, "Cookie: sessionid=");
        memset(h + 18, 'A', sizes[k]);
        strcpy(h + 18 + sizes[k], "\r\n");
        char rwhy[300];
        cf_response *r = http(t, "GET", "/whoami", h, NULL, rwhy, sizeof rwhy);
        free(h);
        if (k == 0) {
            /* within every server's header limit: the adapter sees it */
            if (!r)
                FAIL("an 8 KiB cookie: %s", rwhy);
            STATUS(r, 200, "an 8 KiB cookie");
            if (strcmp(r->body, ANON_JSON))
                FAIL("an 8 KiB cookie: not anonymous: '%s'", excerpt(r->body));
        } else if (r) {
            /* refused by the server's own header limit with a 4xx, or
             * passed on and ignored; no answer (a reset) refuses too */
            int st = r->status;
            if (st != 200 && st != 400 && st != 413 && st != 431)
                FAIL("a 64 KiB cookie: status %d", st);
            if (st == 200 && strcmp(r->body, ANON_JSON))
                FAIL("a 64 KiB cookie: not anonymous: '%s'", excerpt(r->body));
        }
        HTTP(ok, "GET", "/conformance", NULL, NULL);
        STATUS(ok, 200, "the server after an oversized cookie");
    }
    SAME_STATS(users, guests, "oversized cookies");
    return true;
}

static bool chk_not_found(const cf_target *t, char *why, size_t n)
{
    GUEST(cookie, name);
    STATS(users, guests);
    char line[512];
    HTTP(a, "GET", "/no/such/page", NULL, NULL);
    STATUS(a, 404, "GET /no/such/page");
    BODY_HAS(a, "Not Found", "GET /no/such/page");
    NO_HEADER(a, "Set-Cookie", "GET /no/such/page");
    HTTP(g, "GET", "/no/such/page", cookie_line(cookie, line, sizeof line),
         NULL);
    STATUS(g, 404, "GET /no/such/page as a guest");
    HTTP(h, "HEAD", "/no/such/page", NULL, NULL);
    STATUS(h, 404, "HEAD /no/such/page");
    SAME_STATS(users, guests, "unknown paths");
    return true;
}

static bool chk_method(const cf_target *t, char *why, size_t n)
{
    GUEST(cookie, name);
    STATS(users, guests);
    char line[512];
    const struct {
        const char *method, *target;
        bool cookie;
    } cases[] = {
        {"POST", "/allow_guest_user/", false},
        {"POST", "/allow_guest_user/", true},
        {"DELETE", "/whoami", false},
        {"POST", "/guest_user_required/", false},
        {"PUT", "/conformance", true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char what[128];
        snprintf(what, sizeof what, "%s %s%s", cases[i].method, cases[i].target,
                 cases[i].cookie ? " as a guest" : "");
        HTTP(r, cases[i].method, cases[i].target,
             cases[i].cookie ? cookie_line(cookie, line, sizeof line) : NULL,
             "");
        STATUS(r, 405, what);
        HEADER_IS(r, "Allow", "GET", what);
        BODY_HAS(r, "Method Not Allowed", what);
        NO_HEADER(r, "Set-Cookie", what);
    }
    HTTP(v, "GET", "/accounts/logout/", NULL, NULL);
    STATUS(v, 405, "GET /accounts/logout/");
    HEADER_IS(v, "Allow", "POST", "GET /accounts/logout/");
    SAME_STATS(users, guests, "refused methods");
    return true;
}

static bool chk_head(const cf_target *t, char *why, size_t n)
{
    const char *targets[] = {"/conformance", "/whoami", "/no/such/page",
                             "/guest_user_required/"};
    for (size_t i = 0; i < sizeof targets / sizeof *targets; i++) {
        HTTP(g, "GET", targets[i], NULL, NULL);
        HTTP(h, "HEAD", targets[i], NULL, NULL);
        char what[128];
        snprintf(what, sizeof what, "HEAD %s", targets[i]);
        if (h->status != g->status)
            FAIL("%s: status %d, GET has %d", what, h->status, g->status);
        const char *names[] = {"Content-Type", "Content-Length", "Location",
                               "Allow", "Cache-Control"};
        for (size_t k = 0; k < sizeof names / sizeof *names; k++) {
            const char *gv = cf_header(g, names[k]),
                       *hv = cf_header(h, names[k]);
            if (!gv != !hv || (gv && strcmp(gv, hv)))
                FAIL("%s: %s '%s', GET has '%s'", what, names[k],
                     hv ? excerpt(hv) : "(none)", gv ? excerpt(gv) : "(none)");
        }
    }
    /* a body after the HEAD answer: read to the end of the connection */
    char req[512];
    snprintf(req, sizeof req,
             "HEAD /conformance HTTP/1.1\r\nHost: %s\r\nConnection: "
             "close\r\n\r\n",
             t->host_header);
    int fd = cf_connect(t, why, n);
    if (fd < 0)
        return false;
    cf_response *r = keep();
    char rwhy[300];
    bool ok = r && cf_send(fd, req, strlen(req)) &&
              cf_read(fd, true, r, rwhy, sizeof rwhy);
    long extra = ok ? cf_drain(fd) : 0;
    close(fd);
    if (!ok)
        FAIL("HEAD /conformance: %s", rwhy);
    if (extra != 0)
        FAIL("HEAD /conformance: %ld body bytes sent after the headers%s",
             extra, extra < 0 ? " (or the connection stayed open)" : "");
    return true;
}

static bool chk_passthrough(const cf_target *t, char *why, size_t n)
{
    HTTP(r, "GET", "/echo/a%20b/c%3Fd?x=%41&y=1&z=%26",
         "x-TEST: some value\r\n", NULL);
    STATUS(r, 200, "GET /echo/...");
    const char *lines[] = {"method=GET\n",
                           "\ntarget=/echo/a%20b/c%3Fd?x=%41&y=1&z=%26\n",
                           "\npath=/echo/a%20b/c%3Fd\n",
                           "\nx-test=some value\n",
                           "\nhttps=0\n",
                           "\nbody=0:"};
    for (size_t i = 0; i < sizeof lines / sizeof *lines; i++)
        BODY_HAS(r, lines[i], "GET /echo/a%20b/c%3Fd?x=%41&y=1&z=%26");
    char addr[128];
    snprintf(addr, sizeof addr, "\naddr=%s\n", r->local);
    if (r->local[0] && !strstr(r->body, addr))
        FAIL("the client address is not the socket peer %s: '%s'", r->local,
             excerpt(strstr(r->body, "addr=")));
    HTTP(p, "PUT", "/echo", NULL, "a=1&b=\"two\"\n");
    STATUS(p, 200, "PUT /echo");
    BODY_HAS(p, "method=PUT\n", "PUT /echo");
    BODY_HAS(p, "\nx-test=(null)\n", "PUT /echo");
    BODY_HAS(p, "\nbody=12:a=1&b=\"two\"\n", "PUT /echo");
    return true;
}

static bool chk_chunked(const cf_target *t, char *why, size_t n)
{
    char req[512];
    snprintf(req, sizeof req,
             "POST /echo HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n"
             "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n"
             "0\r\n\r\n",
             t->host_header);
    cf_response *r = keep();
    char rwhy[300];
    if (!r || !cf_exchange(t, req, false, r, rwhy, sizeof rwhy))
        FAIL("a chunked POST /echo: %s", r ? rwhy : "out of memory");
    STATUS(r, 200, "a chunked POST /echo");
    BODY_HAS(r, "\nbody=11:hello world", "a chunked POST /echo");
    return true;
}

static char *filled(size_t len)
{
    char *b = malloc(len + 1);
    if (b) {
        memset(b, 'x', len);
        b[len] = '\0';
    }
    return b;
}

/* A declared length far over the limit is refused without waiting for the
 * body, which never comes: a server that reads first lets any client make
 * it receive (and discard) a gigabyte before it says no. */
static bool chk_body_limit_early(const cf_target *t, char *why, size_t n)
{
    STATS(users, guests);
    char req[256], rwhy[300];
    snprintf(req, sizeof req,
             "POST /echo HTTP/1.1\r\nHost: %s\r\nContent-Length: "
             "1000000000\r\n\r\nxxxx",
             t->host_header);
    int fd = cf_connect(t, why, n);
    if (fd < 0)
        return false;
    cf_response *e = keep();
    bool got = e && cf_send(fd, req, strlen(req)) &&
               cf_read(fd, false, e, rwhy, sizeof rwhy);
    close(fd);
    if (!got)
        FAIL("Content-Length: 1000000000 with no body: no answer before the "
             "body (%s); a server library that reads every body before its "
             "handlers run cannot pass this (docs/adapters.md: --skip)",
             rwhy);
    if (!status_is(e, 413, "Content-Length: 1000000000", why, n))
        return false;
    SAME_STATS(users, guests, "a declared body over the limit");
    return true;
}

static bool chk_body_limit(const cf_target *t, char *why, size_t n)
{
    STATS(users, guests);
    char *at = filled(MAX_BODY), *over = filled(MAX_BODY + 1);
    char *half = filled(MAX_BODY / 2 + 1);
    char *req = malloc(2 * MAX_BODY + 512);
    bool ok = false;
    cf_response *a, *b, *c, *d;
    char rwhy[300];
    if (!at || !over || !half || !req) {
        fail(why, n, "out of memory");
        goto out;
    }
    if (!(a = http(t, "POST", "/echo", NULL, at, why, n)) ||
        !status_is(a, 200, "a body of exactly max_body_size", why, n))
        goto out;
    char want[64];
    snprintf(want, sizeof want, "\nbody=%d:", MAX_BODY);
    if (!strstr(a->body, want)) {
        fail(why, n, "a body of exactly max_body_size: '%s' not in the echo",
             want + 1);
        goto out;
    }
    if (!(b = http(t, "POST", "/echo", NULL, over, why, n)) ||
        !status_is(b, 413, "a body of max_body_size + 1", why, n))
        goto out;
    if (!(c = http(t, "PUT", "/no/such/page", NULL, over, why, n)) ||
        !status_is(c, 413, "a body over the limit to an unknown path", why, n))
        goto out;
    /* a chunked body is counted as it arrives */
    snprintf(req, 2 * MAX_BODY + 512,
             "POST /echo HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n"
             "Transfer-Encoding: chunked\r\n\r\n%zx\r\n%s\r\n%zx\r\n%s\r\n0\r\n"
             "\r\n",
             t->host_header, strlen(half), half, strlen(half), half);
    if (!(d = keep()) || !cf_exchange(t, req, false, d, rwhy, sizeof rwhy)) {
        fail(why, n, "a chunked body over the limit: %s", rwhy);
        goto out;
    }
    if (!status_is(d, 413, "a chunked body over the limit", why, n))
        goto out;
    ok = true;
out:
    free(at);
    free(over);
    free(half);
    free(req);
    if (!ok)
        return false;
    HTTP(up, "GET", "/conformance", NULL, NULL);
    STATUS(up, 200, "the server after bodies over the limit");
    SAME_STATS(users, guests, "bodies over the limit");
    return true;
}

static bool chk_hostile_bodies(const cf_target *t, char *why, size_t n)
{
    GUEST(cookie, name);
    char deep[1001];
    memset(deep, '[', 1000);
    deep[1000] = '\0';
    char many_json[MAX_BODY], many_form[MAX_BODY];
    size_t jn = (size_t)snprintf(many_json, sizeof many_json, "{");
    size_t fn = 0;
    for (int i = 0; i <= FORM_MAX_FIELDS; i++) {
        jn += (size_t)snprintf(many_json + jn, sizeof many_json - jn,
                               "%s\"%x\":1", i ? "," : "", i);
        fn +=
            (size_t)snprintf(many_form + fn, sizeof many_form - fn, "%x=&", i);
    }
    snprintf(many_json + jn, sizeof many_json - jn, "}");
    const struct {
        const char *type, *body;
    } bodies[] = {
        {"application/json", deep},
        {"application/json; charset=utf-8", "{\"a\":{\"b\":1}}"},
        {"application/json", many_json},
        {"application/x-www-form-urlencoded", many_form},
    };
    const char *paths[] = {"/accounts/logout/", "/accounts/login/",
                           "/convert/"};
    for (size_t b = 0; b < sizeof bodies / sizeof *bodies; b++)
        for (size_t p = 0; p < sizeof paths / sizeof *paths; p++)
            for (int with = 0; with < 2; with++) {
                char h[1024], what[160];
                snprintf(h, sizeof h, "Content-Type: %s\r\n%s%s%s",
                         bodies[b].type, with ? "Cookie: " : "",
                         with ? cookie : "", with ? "\r\n" : "");
                snprintf(what, sizeof what, "POST %s, %s body %zu%s", paths[p],
                         bodies[b].type, b, with ? " as a guest" : "");
                HTTP(r, "POST", paths[p], h, bodies[b].body);
                STATUS(r, 400, what);
            }
    char target[MAX_BODY + 32];
    snprintf(target, sizeof target, "/accounts/login/?%s", many_form);
    HTTP(q, "GET", target, NULL, NULL);
    STATUS(q, 400, "a query string with too many fields");
    BODY_HAS(q, "too many fields", "a query string with too many fields");
    HTTP(j, "POST", "/accounts/logout/",
         "Content-Type: application/json\r\nAccept: application/json\r\n",
         deep);
    STATUS(j, 400, "deep JSON asking for JSON");
    BODY_HAS(j, "\"errors\"", "deep JSON asking for JSON");
    cf_response *w;
    if (!whoami(t, cookie, &w, why, n))
        return false;
    if (!strstr(w->body, "\"guest\":true"))
        FAIL("the guest lost its session after hostile bodies: '%s'",
             excerpt(w->body));
    return true;
}

/* Sends @p req on @p fd and reads one response into a kept one. */
static cf_response *on_conn(int fd, const char *req, bool head,
                            const char *what, char *why, size_t n)
{
    cf_response *r = keep();
    char rwhy[300];
    if (!r) {
        fail(why, n, "out of memory");
        return NULL;
    }
    if (!cf_send(fd, req, strlen(req))) {
        fail(why, n, "%s: the connection is closed", what);
        return NULL;
    }
    if (!cf_read(fd, head, r, rwhy, sizeof rwhy)) {
        fail(why, n, "%s: %s", what, rwhy);
        return NULL;
    }
    return r;
}

static bool chk_keep_alive(const cf_target *t, char *why, size_t n)
{
    int fd = cf_connect(t, why, n);
    if (fd < 0)
        return false;
    char req[512];
    bool ok = false;
    cf_response *r;
    snprintf(req, sizeof req, "GET /conformance HTTP/1.1\r\nHost: %s\r\n\r\n",
             t->host_header);
    if (!(r = on_conn(fd, req, false, "first request", why, n)) ||
        !status_is(r, 200, "first request", why, n))
        goto out;
    if (r->closed) {
        fail(why, n,
             "the server closed after an HTTP/1.1 request without "
             "Connection: close");
        goto out;
    }
    snprintf(req, sizeof req, "HEAD /whoami HTTP/1.1\r\nHost: %s\r\n\r\n",
             t->host_header);
    if (!(r = on_conn(fd, req, true, "a HEAD on the same connection", why,
                      n)) ||
        !status_is(r, 200, "a HEAD on the same connection", why, n))
        goto out;
    const char *cl = cf_header(r, "Content-Length");
    char want[16];
    snprintf(want, sizeof want, "%zu", strlen(ANON_JSON));
    if (!cl || strcmp(cl, want)) {
        fail(why, n, "HEAD /whoami: Content-Length '%s', want %s",
             cl ? cl : "(none)", want);
        goto out;
    }
    snprintf(req, sizeof req, "GET /whoami HTTP/1.1\r\nHost: %s\r\n\r\n",
             t->host_header);
    if (!(r = on_conn(fd, req, false, "a third request", why, n)) ||
        !status_is(r, 200, "a third request", why, n))
        goto out;
    if (strcmp(r->body, ANON_JSON)) {
        fail(why, n, "a third request: body '%s' (a HEAD body left over?)",
             excerpt(r->body));
        goto out;
    }
    snprintf(
        req, sizeof req,
        "GET /conformance HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n",
        t->host_header);
    if (!(r = on_conn(fd, req, false, "a request with Connection: close", why,
                      n)))
        goto out;
    if (!cf_closes(fd)) {
        fail(why, n, "the connection stayed open after Connection: close");
        goto out;
    }
    ok = true;
out:
    close(fd);
    return ok;
}

static bool chk_no_content(const cf_target *t, char *why, size_t n)
{
    int fd = cf_connect(t, why, n);
    if (fd < 0)
        return false;
    char req[256];
    snprintf(req, sizeof req, "GET /no-content HTTP/1.1\r\nHost: %s\r\n\r\n",
             t->host_header);
    bool ok = true;
    for (int i = 0; i < 2 && ok; i++) {
        cf_response *r = on_conn(fd, req, false, "GET /no-content", why, n);
        ok = r && status_is(r, 204, "GET /no-content", why, n);
        const char *cl = ok ? cf_header(r, "Content-Length") : NULL;
        if (cl && strcmp(cl, "0"))
            ok = fail(why, n, "204 with Content-Length: %s", cl);
    }
    close(fd);
    return ok;
}

static bool chk_framing(const cf_target *t, char *why, size_t n)
{
    int fd = cf_connect(t, why, n);
    if (fd < 0)
        return false;
    char req[256];
    snprintf(req, sizeof req, "GET /framing HTTP/1.1\r\nHost: %s\r\n\r\n",
             t->host_header);
    cf_response *r = on_conn(fd, req, false, "GET /framing", why, n);
    bool ok = r && status_is(r, 200, "GET /framing", why, n);
    if (ok &&
        (!cf_header(r, "Content-Length") ||
         strcmp(cf_header(r, "Content-Length"), "3") || strcmp(r->body, "abc")))
        ok = fail(why, n,
                  "a handler's own Content-Length was sent: '%s', "
                  "body '%s'",
                  cf_header(r, "Content-Length"), excerpt(r->body));
    if (ok && cf_header_count(r, "Content-Length") != 1)
        ok = fail(why, n, "%zu Content-Length lines",
                  cf_header_count(r, "Content-Length"));
    if (ok && !cf_closes(fd))
        ok = fail(why, n, "a handler's Connection: close was not honoured");
    close(fd);
    return ok;
}

static bool chk_many_headers(const cf_target *t, char *why, size_t n)
{
    HTTP(r, "GET", "/many-headers", NULL, NULL);
    STATUS(r, 200, "GET /many-headers");
    int added = atoi(r->body);
    if (added < 32)
        FAIL("the adapter took only %d of 100 response headers, want at "
             "least 32",
             added);
    int seen = 0;
    for (size_t i = 0; i < r->nheaders; i++)
        seen += !strncasecmp(r->names[i], "X-H", 3);
    if (seen != added)
        FAIL("the adapter took %d response headers but sent %d", added, seen);
    return true;
}

/* ---- framing a proxy in front could read differently ----
 * Each request carries a second one in what the server should take for its
 * body, or in the bytes after it; a server that reads the framing another
 * way than a proxy in front would (request smuggling) answers that second
 * request. Every such request must get 400 and its connection closed, with
 * nothing answered after it. */

/* The status of a status line at @p p ("HTTP/1.x NNN"), else 0. */
static int status_at(const char *p)
{
    if (strncmp(p, "HTTP/1.", 7) || !p[7] || p[8] != ' ' || p[9] < '1' ||
        p[9] > '5')
        return 0;
    return atoi(p + 9);
}

/* @p req on a connection of its own: 400 (or @p alt, when not 0), then the
 * close, and no response to anything after it. Read raw rather than as one
 * framed response: libmicrohttpd 0.9.75 sends the answers it gives itself
 * (a Content-Length it cannot parse) with the status line and the header
 * block twice, so what follows the first answer may repeat its status
 * line. Any other status line among the bytes is an answer to the request
 * hidden in the body, which these checks make one that would get 200. */
static bool refused_as(const cf_target *t, const char *what, const char *req,
                       int alt, char *why, size_t n)
{
    int fd = cf_connect(t, why, n);
    if (fd < 0)
        return false;
    /* A server may close before it has read all of it. */
    (void)cf_send(fd, req, strlen(req));
    char *all = NULL;
    long got = cf_read_all(fd, &all);
    close(fd);
    if (!all)
        return fail(why, n, "out of memory");
    int first = status_at(all);
    bool ok = true;
    if (!first)
        ok = fail(why, n, "%s: no answer ('%s')%s", what, excerpt(all),
                  got < 0 ? ", and the connection stayed open (the server "
                            "may be reading a body that ends with it)"
                          : "");
    else if (first != 400 && first != alt)
        ok = fail(why, n, "%s: status %d, want 400 (body '%s')", what, first,
                  excerpt(all));
    else if (got < 0)
        ok = fail(why, n,
                  "%s: %d, but the connection stayed open: the request "
                  "hidden in it may be served",
                  what, first);
    for (const char *p = all; ok && (p = strstr(p, "\nHTTP/1.")); p++)
        if (status_at(p + 1) && status_at(p + 1) != first)
            ok = fail(why, n,
                      "%s: %d, then a second answer, %d: the request hidden "
                      "in it was served",
                      what, first, status_at(p + 1));
    free(all);
    return ok;
}

static bool refused(const cf_target *t, const char *what, const char *req,
                    char *why, size_t n)
{
    return refused_as(t, what, req, 0, why, n);
}

/* Seventy header lines: more than some servers keep (CivetWeb reads 64 and
 * drops the rest without a word, which then no check of the adapter
 * sees). */
static void seventy_lines(char *out, size_t size)
{
    size_t len = 0;
    out[0] = '\0';
    for (int i = 0; i < 70 && len < size; i++)
        len += (size_t)snprintf(out + len, size - len, "X-Filler-%d: %d\r\n", i,
                                i);
}

#define SMUGGLED "GET /conformance?SMUGGLED HTTP/1.1\r\nHost: %s\r\n\r\n"

static bool chk_folded_line(const cf_target *t, char *why, size_t n)
{
    char req[1024], inner[256];
    int len = snprintf(inner, sizeof inner, SMUGGLED, t->host_header);
    snprintf(req, sizeof req,
             "POST /echo HTTP/1.1\r\nHost: %s\r\nX-Folded: a\r\n b\r\n"
             "Content-Length: %d\r\n\r\n%s",
             t->host_header, len, inner);
    return refused(t, "an obsolete folded header line (RFC 9112 5.2)", req, why,
                   n);
}

static bool chk_late_content_length(const cf_target *t, char *why, size_t n)
{
    char req[4096], lines[2048], inner[256];
    seventy_lines(lines, sizeof lines);
    int len = snprintf(inner, sizeof inner, SMUGGLED, t->host_header);
    snprintf(req, sizeof req,
             "POST /echo HTTP/1.1\r\nHost: %s\r\nContent-Length: 0\r\n%s"
             "Content-Length: %d\r\n\r\n%s",
             t->host_header, lines, len, inner);
    return refused(t, "a second Content-Length after 70 header lines", req, why,
                   n);
}

static bool chk_late_transfer_encoding(const cf_target *t, char *why, size_t n)
{
    char req[4096], lines[2048], inner[256];
    seventy_lines(lines, sizeof lines);
    snprintf(inner, sizeof inner, SMUGGLED, t->host_header);
    snprintf(req, sizeof req,
             "POST /echo HTTP/1.1\r\nHost: %s\r\nContent-Length: 5\r\n%s"
             "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n%s",
             t->host_header, lines, inner);
    return refused(t, "Content-Length, 70 header lines, then Transfer-Encoding",
                   req, why, n);
}

static bool chk_two_hosts(const cf_target *t, char *why, size_t n)
{
    char req[1024], inner[256];
    snprintf(inner, sizeof inner, SMUGGLED, t->host_header);
    snprintf(req, sizeof req,
             "GET /conformance HTTP/1.1\r\nHost: %s\r\n"
             "Host: other.example\r\n\r\n%s",
             t->host_header, inner);
    return refused(t, "two Host lines", req, why, n);
}

static bool chk_two_content_lengths(const cf_target *t, char *why, size_t n)
{
    char req[1024], inner[256];
    int len = snprintf(inner, sizeof inner, SMUGGLED, t->host_header);
    snprintf(req, sizeof req,
             "POST /echo HTTP/1.1\r\nHost: %s\r\nContent-Length: 0\r\n"
             "Content-Length: %d\r\n\r\n%s",
             t->host_header, len, inner);
    return refused(t, "two Content-Length lines", req, why, n);
}

/* RFC 9112 6.3: a Content-Length that is not 1*DIGIT is a framing error:
 * 400 and the close. Each of these is read as a length by some server or
 * proxy (the leading digits, the first or the last of a list, hex, a
 * sign), one of them the length of the request hidden behind it. Digits
 * past any length a server can hold may get 413 instead. */
static bool chk_bad_content_length(const cf_target *t, char *why, size_t n)
{
    char inner[256], values[8][48], req[1024], what[128];
    int len = snprintf(inner, sizeof inner, SMUGGLED, t->host_header);
    snprintf(values[0], sizeof values[0], "0, %d", len);
    snprintf(values[1], sizeof values[1], "%d, 0", len);
    snprintf(values[2], sizeof values[2], "0x%x", (unsigned)len);
    snprintf(values[3], sizeof values[3], "0 %d", len);
    snprintf(values[4], sizeof values[4], "%dabc", len);
    snprintf(values[5], sizeof values[5], "+%d", len);
    snprintf(values[6], sizeof values[6], "-%d", len);
    snprintf(values[7], sizeof values[7], "99999999999999999999999");
    for (size_t i = 0; i < sizeof values / sizeof *values; i++) {
        snprintf(req, sizeof req,
                 "POST /echo HTTP/1.1\r\nHost: %s\r\nContent-Length: %s\r\n"
                 "\r\n%s",
                 t->host_header, values[i], inner);
        snprintf(what, sizeof what, "Content-Length: %s", values[i]);
        if (!refused_as(t, what, req, i == 7 ? 413 : 0, why, n))
            return false;
    }
    return true;
}

/* RFC 9112 6.1: chunked must be the final coding, and a server that
 * decodes no other must refuse any other value, or a second line that
 * changes it: 400 and the close, not a body read until the connection
 * ends, nor the first line's reading of it. */
static bool chk_transfer_encoding(const cf_target *t, char *why, size_t n)
{
    static const char *const lines[] = {
        "Transfer-Encoding: identity\r\n",
        "Transfer-Encoding: gzip, chunked\r\n",
        "Transfer-Encoding: chunked, identity\r\n",
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n",
    };
    char inner[256], req[1024], what[160];
    snprintf(inner, sizeof inner, SMUGGLED, t->host_header);
    for (size_t i = 0; i < sizeof lines / sizeof *lines; i++) {
        snprintf(req, sizeof req,
                 "POST /echo HTTP/1.1\r\nHost: %s\r\n%s\r\n0\r\n\r\n%s",
                 t->host_header, lines[i], inner);
        /* the lines for the report: "; " between them, no CRLFs */
        size_t w = 0;
        for (const char *p = lines[i]; *p && w + 3 < sizeof what; p++) {
            if (*p == '\n' && p[1]) {
                what[w++] = ';';
                what[w++] = ' ';
            } else if (*p != '\r' && *p != '\n') {
                what[w++] = *p;
            }
        }
        what[w] = '\0';
        if (!refused(t, what, req, why, n))
            return false;
    }
    return true;
}

/* RFC 9112 6.1: Transfer-Encoding in an HTTP/1.0 request is faulty
 * framing (a 1.0 proxy does not decode it): 400 and the close, not a
 * decoded body on a connection kept for what follows. */
static bool chk_http10_transfer_encoding(const cf_target *t, char *why,
                                         size_t n)
{
    char req[1024], inner[256];
    snprintf(inner, sizeof inner, SMUGGLED, t->host_header);
    snprintf(req, sizeof req,
             "POST /echo HTTP/1.0\r\nHost: %s\r\nConnection: keep-alive\r\n"
             "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n%s",
             t->host_header, inner);
    return refused(t, "HTTP/1.0 with Transfer-Encoding: chunked", req, why, n);
}

static long long clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Requests that each hold the thread running them for most of a second,
 * as a failed login does (a password hash at the library's default
 * cost). */
#define HASHING 4

/* A server must answer a quick page while slow requests run beside it: an
 * event loop that runs the library's handlers on its own thread stops
 * every client while one of them hashes. Told by the order of the
 * answers, not by a bound on time: /healthz, sent after the hashing
 * requests are under way, must be answered while none of them is. The
 * latency goes into the report. */
static bool chk_responsive(const cf_target *t, char *why, size_t n)
{
    int fds[HASHING];
    int open = 0;
    char req[512];
    snprintf(req, sizeof req,
             "POST /conformance/hash HTTP/1.1\r\nHost: %s\r\n"
             "Content-Length: 0\r\nConnection: close\r\n\r\n",
             t->host_header);
    /* Four hashes of most of a second each, on a machine that may be
     * busy: the usual bound on a read is too short for them. The check
     * judges the order of the answers, not their time. */
    int timeout = cf_timeout_ms;
    if (cf_timeout_ms < 60000)
        cf_timeout_ms = 60000;
    bool ok = true;
    for (; ok && open < HASHING; open++) {
        fds[open] = cf_connect(t, why, n);
        if (fds[open] < 0)
            ok = false;
        else if (!cf_send(fds[open], req, strlen(req)))
            ok = fail(why, n, "a hashing request: the connection is closed");
        if (!ok && fds[open] < 0)
            break;
    }
    if (ok)
        usleep(100 * 1000); /* the hashes are under way */
    long long start = clock_ms();
    cf_response *h = ok ? http(t, "GET", "/healthz", NULL, NULL, why, n) : NULL;
    long long quick = clock_ms() - start;
    int answered = 0;
    for (int i = 0; h && i < open; i++) {
        struct pollfd p = {.fd = fds[i], .events = POLLIN};
        answered += poll(&p, 1, 0) > 0;
    }
    ok = ok && h;
    for (int i = 0; i < open; i++) {
        cf_response *r = keep();
        char rwhy[300];
        if (ok && (!r || !cf_read(fds[i], false, r, rwhy, sizeof rwhy)))
            ok = fail(why, n, "a hashing request: %s",
                      r ? rwhy : "out of memory");
        else if (ok && r->status != 200)
            ok = fail(why, n, "POST /conformance/hash: status %d, want 200",
                      r->status);
        close(fds[i]);
    }
    long long slow = clock_ms() - start;
    cf_timeout_ms = timeout;
    if (!ok)
        return false;
    if (h->status != 200)
        FAIL("GET /healthz: status %d, want 200", h->status);
    if (answered)
        FAIL("GET /healthz took %lld ms and was answered after %d of %d "
             "requests that each hash a password: slow requests hold up "
             "the others (an event loop running handlers on its own "
             "thread?)",
             quick, answered, HASHING);
    snprintf(why, n, "/healthz in %lld ms while %d hashes ran (%lld ms)", quick,
             HASHING, slow);
    return true;
}

static bool chk_logout(const cf_target *t, char *why, size_t n)
{
    GUEST(cookie, name);
    char csrf[256], token[256], h[768], body[300];
    if (!csrf_pair(t, cookie, csrf, sizeof csrf, token, sizeof token, why, n))
        return false;
    snprintf(h, sizeof h, "Cookie: %s; %s\r\n", cookie, csrf);
    snprintf(body, sizeof body, "csrfmiddlewaretoken=%s", token);
    HTTP(r, "POST", "/accounts/logout/", h, body);
    STATUS(r, 302, "POST /accounts/logout/");
    HEADER_IS(r, "Location", "/", "POST /accounts/logout/");
    cf_response *w;
    if (!whoami(t, cookie, &w, why, n))
        return false;
    if (strcmp(w->body, ANON_JSON))
        FAIL("the old session still works after logout: '%s'",
             excerpt(w->body));
    return true;
}

static const cf_check checks[] = {
    {"server-info",
     "GET /conformance: the table is mounted, the kit's settings", chk_info},
    {"guest-created", "a first visit makes one guest; its Set-Cookie",
     chk_guest_created},
    {"guest-recognised", "the session cookie brings the same guest back",
     chk_guest_recognised},
    {"crawlers-stay-anonymous", "crawlers get no guest", chk_crawlers},
    {"guest-required", "GUEST_REQUIRED redirects an anonymous visitor",
     chk_guest_required},
    {"redirect-next",
     "REGULAR_REQUIRED carries the raw target, encoded, in next",
     chk_redirect_next},
    {"session-and-csrf-cookies", "two Set-Cookie lines in one response",
     chk_two_cookies},
    {"repeated-request-headers",
     "a header sent on two lines reaches the library", chk_repeated_headers},
    {"csrf", "403 without a valid token, 200 with one", chk_csrf},
    {"convert", "a guest converted through the /convert/ form", chk_convert},
    {"registered-user", "the guards for a registered user", chk_registered},
    {"json-mode", "the views answer JSON to a script", chk_json},
    {"bad-cookies", "malformed session cookies are anonymous, never 5xx",
     chk_bad_cookies},
    {"oversized-cookie", "large Cookie headers refused or ignored",
     chk_oversized_cookie},
    {"not-found", "404 for an unknown path", chk_not_found},
    {"method-not-allowed", "405 with Allow, no guard runs", chk_method},
    {"head", "HEAD: GET's status and headers, no body", chk_head},
    {"request-passthrough", "method, raw target, path, headers, address, body",
     chk_passthrough},
    {"chunked-body", "a chunked request body", chk_chunked},
    {"body-limit", "413 past max_body_size (sent, chunked)", chk_body_limit},
    {"body-limit-early",
     "413 for a declared length past the limit, before the body arrives",
     chk_body_limit_early},
    {"hostile-bodies", "bodies built to break a parser: 400",
     chk_hostile_bodies},
    {"keep-alive", "several requests on one connection, framed",
     chk_keep_alive},
    {"no-content", "204 without a body keeps the connection", chk_no_content},
    {"handler-framing",
     "the adapter frames the body, honours Connection: close", chk_framing},
    {"many-headers", "every response header the adapter took is sent",
     chk_many_headers},
    {"framing-folded-line", "an obsolete folded header line: 400, closed",
     chk_folded_line},
    {"framing-late-content-length",
     "a second Content-Length after 70 header lines: 400, closed",
     chk_late_content_length},
    {"framing-late-transfer-encoding",
     "Content-Length, then Transfer-Encoding after 70 lines: 400, closed",
     chk_late_transfer_encoding},
    {"framing-two-hosts", "two Host lines: 400, closed", chk_two_hosts},
    {"framing-two-content-lengths", "two Content-Length lines: 400, closed",
     chk_two_content_lengths},
    {"framing-bad-content-length",
     "a Content-Length not 1*DIGIT (list, hex, sign, junk): 400, closed",
     chk_bad_content_length},
    {"framing-transfer-encoding",
     "Transfer-Encoding other than one line of chunked: 400, closed",
     chk_transfer_encoding},
    {"framing-http10-transfer-encoding",
     "HTTP/1.0 with Transfer-Encoding: 400, closed",
     chk_http10_transfer_encoding},
    {"responsive",
     "GET /healthz answered while 4 requests hash a password each",
     chk_responsive},
    {"logout", "POST /accounts/logout/ ends the session", chk_logout},
};

const cf_check *cf_checks(size_t *count)
{
    *count = sizeof checks / sizeof *checks;
    return checks;
}

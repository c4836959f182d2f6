/* The test client: an adapter whose "server" is a function call. A request
 * is a struct on the caller's stack, the response is collected with the
 * adapter kit, and a cookie jar stands in for the browser. It keeps the
 * server adapters' semantics (joined header lines, the body limit, the
 * Host refusal, framing of the answer) so a handler tested here behaves
 * the same behind libmicrohttpd or evhttp. */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "guestuser/adapter.h"
#include "guestuser/testing.h"

/* One cookie of the jar; `expires` is wall-clock seconds, 0 for a cookie
 * that lives as long as the client. */
typedef struct jar_cookie {
    char *name;
    char *value;
    char *path;
    time_t expires;
} jar_cookie;

struct guest_test_client {
    guest_ctx *ctx;
    guest_handler_fn handler;
    void *userdata;
    char **headers; /* name, value, name, value ... */
    size_t header_count;
    char *addr;
    bool https;
    jar_cookie *jar;
    size_t jar_count;
};

struct guest_test_response {
    guest_response res;
    /* Decoded input values handed out by guest_test_response_input(). */
    char **inputs;
    size_t input_count;
};

/* One request in flight: the conn of the guest_http_ops calls. */
typedef struct test_conn {
    guest_test_client *client;
    const char *method;
    const char *target;
    const char *content_type;
    const char *body;
    size_t body_len;
    char length[24]; /* Content-Length of the request body */
    char *cookies;   /* the jar's Cookie line, or NULL */
    /* Joined header values handed to the library, freed at the end. */
    guest_joined joined;
    guest_response res;
} test_conn;

/* ---- small helpers ---- */

static bool has_ctl(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

/* RFC 9110 tchar: what a method or header name may hold. */
static bool is_token(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (!isalnum(c) && !strchr("!#$%&'*+-.^_`|~", c))
            return false;
    }
    return true;
}

static char *copy_n(const char *s, size_t n)
{
    char *out = malloc(n + 1);
    if (out) {
        memcpy(out, s, n);
        out[n] = '\0';
    }
    return out;
}

static void free_pairs(char **pairs, size_t count)
{
    for (size_t i = 0; i < 2 * count; i++)
        free(pairs[i]);
    free(pairs);
}

/* ---- the request as the library sees it ---- */

/* Every line of @p name joined as a server adapter joins them: the
 * client's lines, then for Cookie the jar's; the request's own
 * Content-Type and Content-Length replace the client's. */
static const char *op_header(void *conn, const char *name)
{
    test_conn *c = conn;
    if (c->content_type && strcasecmp(name, "Content-Type") == 0)
        return c->content_type;
    if (c->body && strcasecmp(name, "Content-Length") == 0)
        return c->length;
    guest_field f = {0};
    const guest_test_client *cl = c->client;
    for (size_t i = 0; i < cl->header_count; i++)
        if (strcasecmp(cl->headers[2 * i], name) == 0)
            guest_field_add(&f, name, cl->headers[2 * i + 1]);
    if (c->cookies && strcasecmp(name, "Cookie") == 0)
        guest_field_add(&f, name, c->cookies);
    return guest_field_value(&f, &c->joined);
}

static const char *op_method(void *conn)
{
    return ((test_conn *)conn)->method;
}

static const char *op_target(void *conn)
{
    return ((test_conn *)conn)->target;
}

static const char *op_client_addr(void *conn)
{
    return ((test_conn *)conn)->client->addr;
}

static int op_is_https(void *conn)
{
    return ((test_conn *)conn)->client->https;
}

static int op_body(void *conn, const char **data, size_t *len)
{
    test_conn *c = conn;
    *data = c->body ? c->body : "";
    *len = c->body ? c->body_len : 0;
    return 0;
}

GUEST_RESPONSE_CALLBACKS(op, test_conn, res)

static const guest_http_ops test_ops = {GUEST_HTTP_OPS(op)};

/* ---- the client ---- */

guest_status guest_test_client_new(guest_ctx *ctx, guest_handler_fn handler,
                                   void *userdata, guest_test_client **out)
{
    if (!out)
        return GUEST_ERR_INVALID;
    *out = NULL;
    if (!ctx || !handler)
        return GUEST_ERR_INVALID;
    guest_test_client *c = calloc(1, sizeof *c);
    if (!c)
        return GUEST_ERR_NOMEM;
    c->ctx = ctx;
    c->handler = handler;
    c->userdata = userdata;
    c->addr = strdup("127.0.0.1");
    /* Django's test client's host name: a site with allowed_hosts lists it
     * in its test configuration or sets its own Host. */
    if (!c->addr ||
        guest_test_client_set_header(c, "Host", "testserver") != GUEST_OK) {
        guest_test_client_free(c);
        return GUEST_ERR_NOMEM;
    }
    *out = c;
    return GUEST_OK;
}

static void jar_drop(guest_test_client *c, size_t i)
{
    jar_cookie *k = &c->jar[i];
    free(k->name);
    free(k->value);
    free(k->path);
    memmove(k, k + 1, (c->jar_count - i - 1) * sizeof *k);
    c->jar_count--;
}

void guest_test_client_clear_cookies(guest_test_client *c)
{
    if (!c)
        return;
    while (c->jar_count)
        jar_drop(c, c->jar_count - 1);
    free(c->jar);
    c->jar = NULL;
}

void guest_test_client_free(guest_test_client *c)
{
    if (!c)
        return;
    guest_test_client_clear_cookies(c);
    free_pairs(c->headers, c->header_count);
    free(c->addr);
    free(c);
}

static guest_status header_args_ok(const guest_test_client *c, const char *name,
                                   const char *value)
{
    if (!c || !name || !is_token(name) ||
        (value && guest_header_value_ok(value) != 0))
        return GUEST_ERR_INVALID;
    return GUEST_OK;
}

static guest_status add_line(guest_test_client *c, const char *name,
                             const char *value)
{
    char **h = realloc(c->headers, (c->header_count + 1) * 2 * sizeof *h);
    if (!h)
        return GUEST_ERR_NOMEM;
    c->headers = h;
    char *n = strdup(name), *v = strdup(value);
    if (!n || !v) {
        free(n);
        free(v);
        return GUEST_ERR_NOMEM;
    }
    h[2 * c->header_count] = n;
    h[2 * c->header_count + 1] = v;
    c->header_count++;
    return GUEST_OK;
}

guest_status guest_test_client_set_header(guest_test_client *c,
                                          const char *name, const char *value)
{
    guest_status st = header_args_ok(c, name, value);
    if (st != GUEST_OK)
        return st;
    /* The new line first, so that running out of memory changes nothing. */
    if (value && (st = add_line(c, name, value)) != GUEST_OK)
        return st;
    size_t keep_last = value ? 1 : 0, n = 0;
    for (size_t i = 0; i < c->header_count - keep_last; i++) {
        if (strcasecmp(c->headers[2 * i], name) == 0) {
            free(c->headers[2 * i]);
            free(c->headers[2 * i + 1]);
            continue;
        }
        c->headers[2 * n] = c->headers[2 * i];
        c->headers[2 * n + 1] = c->headers[2 * i + 1];
        n++;
    }
    if (keep_last) {
        c->headers[2 * n] = c->headers[2 * (c->header_count - 1)];
        c->headers[2 * n + 1] = c->headers[2 * (c->header_count - 1) + 1];
        n++;
    }
    c->header_count = n;
    return GUEST_OK;
}

guest_status guest_test_client_add_header(guest_test_client *c,
                                          const char *name, const char *value)
{
    guest_status st = header_args_ok(c, name, value);
    if (st != GUEST_OK || !value)
        return st != GUEST_OK ? st : GUEST_ERR_INVALID;
    return add_line(c, name, value);
}

guest_status guest_test_client_set_remote_addr(guest_test_client *c,
                                               const char *addr)
{
    if (!c)
        return GUEST_ERR_INVALID;
    char *copy = NULL;
    if (addr && !(copy = strdup(addr)))
        return GUEST_ERR_NOMEM;
    free(c->addr);
    c->addr = copy;
    return GUEST_OK;
}

void guest_test_client_set_https(guest_test_client *c, bool https)
{
    if (c)
        c->https = https;
}

/* ---- the cookie jar (RFC 6265, one host) ---- */

/* RFC 6265 5.1.4: does cookie path @p cp cover request path @p rp? */
static bool path_match(const char *cp, const char *rp)
{
    size_t n = strlen(cp);
    if (strncmp(cp, rp, n) != 0)
        return false;
    return rp[n] == '\0' || cp[n - 1] == '/' || rp[n] == '/';
}

static bool jar_live(const jar_cookie *k, time_t now)
{
    return !k->expires || k->expires > now;
}

const char *guest_test_client_cookie(const guest_test_client *c,
                                     const char *name)
{
    if (!c || !name)
        return NULL;
    const jar_cookie *best = NULL;
    time_t now = time(NULL);
    for (size_t i = 0; i < c->jar_count; i++) {
        const jar_cookie *k = &c->jar[i];
        if (strcmp(k->name, name) == 0 && jar_live(k, now) &&
            (!best || strlen(k->path) > strlen(best->path)))
            best = k;
    }
    return best ? best->value : NULL;
}

const char *guest_test_client_csrf_token(const guest_test_client *c)
{
    if (!c)
        return NULL;
    return guest_test_client_cookie(c,
                                    guest_ctx_config(c->ctx)->csrf_cookie_name);
}

/* Stores or, with @p remove, deletes the cookie (@p name, @p path). The
 * strings are copied. */
static guest_status jar_put(guest_test_client *c, const char *name,
                            const char *value, const char *path, time_t expires,
                            bool remove)
{
    size_t i = 0;
    while (i < c->jar_count && !(strcmp(c->jar[i].name, name) == 0 &&
                                 strcmp(c->jar[i].path, path) == 0))
        i++;
    if (remove) {
        if (i < c->jar_count)
            jar_drop(c, i);
        return GUEST_OK;
    }
    char *v = strdup(value);
    if (!v)
        return GUEST_ERR_NOMEM;
    if (i < c->jar_count) {
        free(c->jar[i].value);
        c->jar[i].value = v;
        c->jar[i].expires = expires;
        return GUEST_OK;
    }
    jar_cookie *j = realloc(c->jar, (c->jar_count + 1) * sizeof *j);
    if (!j) {
        free(v);
        return GUEST_ERR_NOMEM;
    }
    c->jar = j;
    jar_cookie k = {strdup(name), v, strdup(path), expires};
    if (!k.name || !k.path) {
        free(k.name);
        free(k.value);
        free(k.path);
        return GUEST_ERR_NOMEM;
    }
    c->jar[c->jar_count++] = k;
    return GUEST_OK;
}

static bool cookie_text_ok(const char *s, bool name)
{
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch <= 0x20 || ch == 0x7f || ch == ';' || ch == ',' ||
            (name && ch == '='))
            return false;
    }
    return true;
}

guest_status guest_test_client_set_cookie(guest_test_client *c,
                                          const char *name, const char *value)
{
    if (!c || !name || !*name || !cookie_text_ok(name, true) ||
        (value && !cookie_text_ok(value, false)))
        return GUEST_ERR_INVALID;
    return jar_put(c, name, value, "/", 0, value == NULL);
}

/* The path of @p target without its query string, into a new string. */
static char *target_path(const char *target)
{
    return copy_n(target, strcspn(target, "?#"));
}

/* "a=1; b=2" of the live cookies whose path covers @p path, the longest
 * path first as RFC 6265 5.4 asks; NULL with *st GUEST_OK when none. */
static char *jar_line(const guest_test_client *c, const char *path,
                      guest_status *st)
{
    *st = GUEST_OK;
    time_t now = time(NULL);
    guest_buf b = {0};
    bool ok = true;
    /* Longest first: a pass per length, from the longest down, keeps the
     * jar's order among equal lengths. */
    size_t longest = 0;
    for (size_t i = 0; i < c->jar_count; i++)
        if (strlen(c->jar[i].path) > longest)
            longest = strlen(c->jar[i].path);
    for (size_t len = longest + 1; ok && len-- > 0;)
        for (size_t i = 0; ok && i < c->jar_count; i++) {
            const jar_cookie *k = &c->jar[i];
            if (strlen(k->path) != len || !jar_live(k, now) ||
                !path_match(k->path, path))
                continue;
            ok = (!b.len || guest_buf_append(&b, "; ", 2) == 0) &&
                 guest_buf_append(&b, k->name, strlen(k->name)) == 0 &&
                 guest_buf_append(&b, "=", 1) == 0 &&
                 guest_buf_append(&b, k->value, strlen(k->value)) == 0;
        }
    if (!ok) {
        guest_buf_cleanup(&b);
        *st = GUEST_ERR_NOMEM;
        return NULL;
    }
    return b.data;
}

/* Copies @p s[0..n) with its surrounding blanks trimmed. */
static char *trimmed(const char *s, size_t n)
{
    while (n && (*s == ' ' || *s == '\t')) {
        s++;
        n--;
    }
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    return copy_n(s, n);
}

/* The number in the @p n digits at @p s, or -1 when one is not a digit. */
static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* An HTTP date (RFC 9110's IMF-fixdate, "Sun, 06 Nov 1994 08:49:37 GMT",
 * fixed columns) as Unix time; -1 when it is not one. */
static time_t http_date(const char *s)
{
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    if (strlen(s) != 29 || s[3] != ',' || s[4] != ' ' || s[7] != ' ' ||
        s[11] != ' ' || s[16] != ' ' || s[19] != ':' || s[22] != ':' ||
        strcmp(s + 25, " GMT") != 0)
        return -1;
    int mon = -1;
    for (int i = 0; i < 12; i++)
        if (strncmp(s + 8, months + 3 * i, 3) == 0)
            mon = i;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    tm.tm_mday = digits(s + 5, 2);
    tm.tm_year = digits(s + 12, 4) - 1900;
    tm.tm_hour = digits(s + 17, 2);
    tm.tm_min = digits(s + 20, 2);
    tm.tm_sec = digits(s + 23, 2);
    tm.tm_mon = mon;
    if (mon < 0 || tm.tm_mday < 1 || tm.tm_year < 0 || tm.tm_hour < 0 ||
        tm.tm_min < 0 || tm.tm_sec < 0)
        return -1;
    return timegm(&tm);
}

/* RFC 6265 5.1.4's default path: the request path up to its last '/'. */
static char *default_path(const char *req_path)
{
    const char *last = strrchr(req_path, '/');
    if (req_path[0] != '/' || last == req_path)
        return strdup("/");
    return trimmed(req_path, (size_t)(last - req_path));
}

/* Applies one Set-Cookie line, as a browser would for this host. A line
 * a browser would ignore is ignored. */
static guest_status jar_apply(guest_test_client *c, const char *line,
                              const char *req_path)
{
    size_t pair = strcspn(line, ";");
    const char *eq = memchr(line, '=', pair);
    if (!eq)
        return GUEST_OK;
    char *name = trimmed(line, (size_t)(eq - line));
    char *value = trimmed(eq + 1, pair - (size_t)(eq - line) - 1);
    char *path = NULL;
    bool have_age = false, gone = false;
    time_t expires = 0, now = time(NULL);
    guest_status st = name && value ? GUEST_OK : GUEST_ERR_NOMEM;
    for (const char *a = line + pair; st == GUEST_OK && *a == ';';) {
        a++;
        size_t n = strcspn(a, ";");
        char *attr = trimmed(a, n);
        a += n;
        if (!attr) {
            st = GUEST_ERR_NOMEM;
            break;
        }
        char *val = strchr(attr, '=');
        if (val)
            *val++ = '\0';
        if (val && strcasecmp(attr, "Max-Age") == 0) {
            char *endp;
            long long age = strtoll(val, &endp, 10);
            /* Max-Age wins over Expires (RFC 6265 5.3 step 3). */
            if (*val && !*endp) {
                /* Far enough for any test, and no overflow of time_t. */
                if (age > INT32_MAX)
                    age = INT32_MAX;
                have_age = true;
                gone = age <= 0;
                expires = gone ? 0 : now + (time_t)age;
            }
        } else if (val && strcasecmp(attr, "Expires") == 0 && !have_age) {
            time_t t = http_date(val);
            if (t != -1) {
                gone = t <= now;
                expires = gone ? 0 : t;
            }
        } else if (val && strcasecmp(attr, "Path") == 0 && val[0] == '/') {
            free(path);
            path = strdup(val);
            if (!path)
                st = GUEST_ERR_NOMEM;
        }
        free(attr);
    }
    if (st == GUEST_OK && !path && !(path = default_path(req_path)))
        st = GUEST_ERR_NOMEM;
    if (st == GUEST_OK && *name)
        st = jar_put(c, name, value, path, expires, gone);
    free(name);
    free(value);
    free(path);
    return st;
}

/* ---- requests ---- */

/* What the server adapters do to a handler's answer before sending it:
 * their own Content-Length instead of the handler's framing headers, and
 * no body where HTTP allows none. */
static guest_status frame(guest_response *res, bool head)
{
    size_t n = 0;
    for (size_t i = 0; i < res->header_count; i++) {
        char *name = res->headers[2 * i];
        if (strcasecmp(name, "Content-Length") == 0 ||
            strcasecmp(name, "Transfer-Encoding") == 0) {
            free(name);
            free(res->headers[2 * i + 1]);
            continue;
        }
        res->headers[2 * n] = name;
        res->headers[2 * n + 1] = res->headers[2 * i + 1];
        n++;
    }
    res->header_count = n;
    int status = res->status;
    bool bodiless = status < 200 || status == 204 || status == 304;
    if (!bodiless) {
        char len[24];
        snprintf(len, sizeof len, "%zu", res->body.len);
        if (guest_response_add_header(res, "Content-Length", len) != 0)
            return GUEST_ERR_NOMEM;
    }
    if (bodiless || head) {
        res->body.len = 0;
        if (res->body.data)
            res->body.data[0] = '\0';
    }
    return GUEST_OK;
}

static bool target_ok(const char *t)
{
    if (t[0] != '/')
        return false;
    for (; *t; t++)
        if ((unsigned char)*t <= 0x20 || *t == 0x7f)
            return false;
    return true;
}

guest_status guest_test_request(guest_test_client *client, const char *method,
                                const char *target, const char *content_type,
                                const void *body, size_t body_len,
                                guest_test_response **out)
{
    if (!out)
        return GUEST_ERR_INVALID;
    *out = NULL;
    if (!client || !method || !target || !is_token(method) ||
        !target_ok(target) || (content_type && has_ctl(content_type)) ||
        (!body && body_len))
        return GUEST_ERR_INVALID;
    guest_test_response *r = calloc(1, sizeof *r);
    char *path = target_path(target);
    if (!r || !path) {
        free(r);
        free(path);
        return GUEST_ERR_NOMEM;
    }
    test_conn c = {
        .client = client,
        .method = method,
        .target = target,
        .content_type = content_type,
        .body = body,
        .body_len = body_len,
    };
    snprintf(c.length, sizeof c.length, "%zu", body_len);
    guest_response_init(&c.res);
    guest_status st = GUEST_OK;
    c.cookies = jar_line(client, path, &st);
    if (st == GUEST_OK) {
        /* The adapters refuse an oversized body before any handler runs,
         * as a server reading Content-Length does. Out of memory, an
         * answer of the adapter's own is its status alone. */
        const char *text = "Payload Too Large\n";
        int refused =
            body_len > guest_ctx_config(client->ctx)->max_body_size
                ? 413
                : guest_run_handler(client->ctx, &test_ops, &c, client->handler,
                                    client->userdata, &text);
        if (refused)
            (void)guest_response_plain(&c.res, refused, text);
        st = frame(&c.res, strcmp(method, "HEAD") == 0);
    }
    for (size_t i = 0; st == GUEST_OK && i < c.res.header_count; i++)
        if (strcasecmp(c.res.headers[2 * i], "Set-Cookie") == 0)
            st = jar_apply(client, c.res.headers[2 * i + 1], path);
    free(path);
    free(c.cookies);
    guest_joined_cleanup(&c.joined);
    if (st != GUEST_OK) {
        guest_response_cleanup(&c.res);
        free(r);
        return st;
    }
    r->res = c.res;
    *out = r;
    return GUEST_OK;
}

guest_status guest_test_get(guest_test_client *client, const char *target,
                            guest_test_response **out)
{
    return guest_test_request(client, "GET", target, NULL, NULL, 0, out);
}

/* application/x-www-form-urlencoded, as browsers encode a form. */
static int form_encode(guest_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        char enc[3];
        size_t n = 1;
        if (isalnum(ch) || strchr("*-._", ch)) {
            enc[0] = (char)ch;
        } else if (ch == ' ') {
            enc[0] = '+';
        } else {
            enc[0] = '%';
            enc[1] = hex[ch >> 4];
            enc[2] = hex[ch & 15];
            n = 3;
        }
        if (guest_buf_append(b, enc, n) != 0)
            return -1;
    }
    return 0;
}

static int form_field(guest_buf *b, const char *name, const char *value)
{
    if ((b->len && guest_buf_append(b, "&", 1) != 0) || form_encode(b, name) ||
        guest_buf_append(b, "=", 1) != 0 || form_encode(b, value ? value : ""))
        return -1;
    return 0;
}

guest_status guest_test_post_form(guest_test_client *client, const char *target,
                                  const char *const *fields,
                                  guest_test_response **out)
{
    if (!out)
        return GUEST_ERR_INVALID;
    *out = NULL;
    if (!client)
        return GUEST_ERR_INVALID;
    guest_buf b = {0};
    bool has_csrf = false, ok = true;
    for (size_t i = 0; ok && fields && fields[i]; i += 2) {
        has_csrf = has_csrf || strcmp(fields[i], GUEST_CSRF_FIELD) == 0;
        ok = form_field(&b, fields[i], fields[i + 1]) == 0;
    }
    const char *token = guest_test_client_csrf_token(client);
    if (ok && !has_csrf && token)
        ok = form_field(&b, GUEST_CSRF_FIELD, token) == 0;
    if (!ok) {
        guest_buf_cleanup(&b);
        return GUEST_ERR_NOMEM;
    }
    guest_status st = guest_test_request(client, "POST", target,
                                         "application/x-www-form-urlencoded",
                                         b.data ? b.data : "", b.len, out);
    guest_buf_cleanup(&b);
    return st;
}

/* ---- responses ---- */

int guest_test_response_status(const guest_test_response *r)
{
    return r ? r->res.status : 0;
}

const char *guest_test_response_header_at(const guest_test_response *r,
                                          const char *name, size_t index)
{
    if (!r || !name)
        return NULL;
    for (size_t i = 0; i < r->res.header_count; i++)
        if (strcasecmp(r->res.headers[2 * i], name) == 0 && index-- == 0)
            return r->res.headers[2 * i + 1];
    return NULL;
}

const char *guest_test_response_header(const guest_test_response *r,
                                       const char *name)
{
    return guest_test_response_header_at(r, name, 0);
}

const char *guest_test_response_body(const guest_test_response *r, size_t *len)
{
    if (len)
        *len = r ? r->res.body.len : 0;
    return r && r->res.body.data ? r->res.body.data : "";
}

/* The value of attribute @p attr in the tag text [tag, end), into a new
 * string with its character references decoded; NULL when absent (or out
 * of memory: the caller cannot tell, and a test fails either way). */
static char *attr_value(const char *tag, const char *end, const char *attr)
{
    size_t an = strlen(attr);
    const char *p = tag;
    while (p < end) {
        while (p < end && (isspace((unsigned char)*p) || *p == '/'))
            p++;
        const char *nm = p;
        while (p < end && !isspace((unsigned char)*p) && *p != '=' && *p != '/')
            p++;
        size_t nlen = (size_t)(p - nm);
        const char *v = NULL;
        size_t vlen = 0;
        if (p < end && *p == '=') {
            p++;
            char q = p < end && (*p == '"' || *p == '\'') ? *p : '\0';
            if (q)
                p++;
            v = p;
            while (p < end && (q ? *p != q : !isspace((unsigned char)*p)))
                p++;
            vlen = (size_t)(p - v);
            if (q && p < end)
                p++;
        }
        if (nlen == an && strncasecmp(nm, attr, an) == 0)
            return copy_n(v ? v : "", vlen);
        if (nlen == 0 && !v)
            p++;
    }
    return NULL;
}

/* Decodes the references guest_res_write_html() writes, in place. */
static void html_unescape(char *s)
{
    static const struct {
        const char *ref;
        char ch;
    } refs[] = {{"&amp;", '&'},   {"&lt;", '<'},   {"&gt;", '>'},
                {"&quot;", '"'},  {"&#34;", '"'},  {"&#39;", '\''},
                {"&#x27;", '\''}, {"&#X27;", '\''}};
    char *w = s;
    for (const char *p = s; *p;) {
        size_t i = 0, n = sizeof refs / sizeof refs[0];
        while (i < n && strncmp(p, refs[i].ref, strlen(refs[i].ref)) != 0)
            i++;
        if (i < n) {
            *w++ = refs[i].ch;
            p += strlen(refs[i].ref);
        } else {
            *w++ = *p++;
        }
    }
    *w = '\0';
}

const char *guest_test_response_input(guest_test_response *r, const char *name)
{
    if (!r || !name || !r->res.body.data)
        return NULL;
    const char *body = r->res.body.data;
    for (const char *p = body; (p = strchr(p, '<')) != NULL; p++) {
        if (strncasecmp(p + 1, "input", 5) != 0 ||
            !isspace((unsigned char)p[6]))
            continue;
        const char *end = strchr(p, '>');
        if (!end)
            break;
        char *n = attr_value(p + 6, end, "name");
        bool match = false;
        if (n) {
            html_unescape(n);
            match = strcmp(n, name) == 0;
            free(n);
        }
        if (!match)
            continue;
        char *v = attr_value(p + 6, end, "value");
        if (!v)
            v = strdup("");
        if (!v)
            return NULL;
        html_unescape(v);
        char **list = realloc(r->inputs, (r->input_count + 1) * sizeof *list);
        if (!list) {
            free(v);
            return NULL;
        }
        r->inputs = list;
        r->inputs[r->input_count++] = v;
        return v;
    }
    return NULL;
}

void guest_test_response_free(guest_test_response *r)
{
    if (!r)
        return;
    guest_response_cleanup(&r->res);
    for (size_t i = 0; i < r->input_count; i++)
        free(r->inputs[i]);
    free(r->inputs);
    free(r);
}

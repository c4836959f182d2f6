/* Response collection and small helpers shared by the server adapters. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/core.h"
#include "guestuser/adapter.h"

int guest_buf_append(guest_buf *b, const void *data, size_t len)
{
    if (len > SIZE_MAX / 2 - b->len - 1)
        return -1;
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + len + 1)
            cap *= 2;
        char *p = realloc(b->data, cap);
        if (!p)
            return -1;
        b->data = p;
        b->cap = cap;
    }
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

void guest_buf_cleanup(guest_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

void guest_response_init(guest_response *r)
{
    memset(r, 0, sizeof *r);
    r->status = 200;
}

int guest_response_set_status(guest_response *r, int status)
{
    r->status = status;
    return 0;
}

int guest_response_add_header(guest_response *r, const char *name,
                              const char *value)
{
    if (r->max_headers && r->header_count >= r->max_headers)
        return -1;
    char **h = realloc(r->headers, (r->header_count + 1) * 2 * sizeof *h);
    if (!h)
        return -1;
    r->headers = h;
    char *n = strdup(name), *v = strdup(value);
    if (!n || !v) {
        free(n);
        free(v);
        return -1;
    }
    h[r->header_count * 2] = n;
    h[r->header_count * 2 + 1] = v;
    r->header_count++;
    return 0;
}

int guest_response_write(guest_response *r, const void *data, size_t len)
{
    return guest_buf_append(&r->body, data, len);
}

static void drop_headers(guest_response *r)
{
    for (size_t i = 0; i < r->header_count * 2; i++)
        free(r->headers[i]);
    free(r->headers);
    r->headers = NULL;
    r->header_count = 0;
}

void guest_response_reset(guest_response *r, int status)
{
    drop_headers(r);
    r->body.len = 0;
    if (r->body.data)
        r->body.data[0] = '\0';
    r->status = status;
}

void guest_response_cleanup(guest_response *r)
{
    drop_headers(r);
    guest_buf_cleanup(&r->body);
}

int guest_buf_append_field_line(guest_buf *b, const char *name,
                                const char *value)
{
    if (!b || !name)
        return -1;
    const char *sep = strcasecmp(name, "Cookie") != 0 ? ", " : "; ";
    size_t had = b->len;
    if (!value)
        value = "";
    if ((had && guest_buf_append(b, sep, 2) != 0) ||
        guest_buf_append(b, value, strlen(value)) != 0) {
        /* Nothing half-appended stays behind. */
        b->len = had;
        if (b->data)
            b->data[had] = '\0';
        return -1;
    }
    return 0;
}

void guest_joined_cleanup(guest_joined *j)
{
    if (!j)
        return;
    for (size_t i = 0; i < j->count; i++)
        free(j->values[i]);
    free(j->values);
    j->values = NULL;
    j->count = 0;
}

void guest_field_add(guest_field *f, const char *name, const char *value)
{
    if (!f)
        return;
    /* The first line is only remembered: most fields come on one line, and
     * the server's own copy of it serves as the value. */
    if (f->lines++ == 0) {
        f->first = value;
        return;
    }
    if (f->failed)
        return;
    if ((f->lines == 2 &&
         guest_buf_append_field_line(&f->joined, name, f->first) != 0) ||
        guest_buf_append_field_line(&f->joined, name, value) != 0)
        f->failed = true;
}

const char *guest_field_value(guest_field *f, guest_joined *keep)
{
    if (!f)
        return NULL;
    const char *v = f->lines == 1 ? f->first : NULL;
    if (f->lines > 1 && !f->failed && keep && keep->count < GUEST_JOINED_MAX) {
        char **values =
            realloc(keep->values, (keep->count + 1) * sizeof *values);
        if (values) {
            keep->values = values;
            values[keep->count++] = f->joined.data;
            v = f->joined.data;
            /* Owned by keep now. */
            memset(&f->joined, 0, sizeof f->joined);
        }
    }
    guest_buf_cleanup(&f->joined);
    memset(f, 0, sizeof *f);
    return v;
}

int guest_run_handler(guest_ctx *ctx, const guest_http_ops *ops, void *conn,
                      guest_handler_fn handler, void *userdata,
                      const char **text)
{
    static const char no_text[] = "";
    if (text)
        *text = no_text;
    guest_req *req = NULL;
    guest_status st =
        handler ? guest_req_new(ctx, ops, conn, &req) : GUEST_ERR_INVALID;
    if (st == GUEST_OK) {
        handler(req, userdata);
        guest_req_free(req);
        return 0;
    }
    bool host = st == GUEST_ERR_BAD_HOST;
    if (text)
        *text = host ? GUEST_BAD_HOST_TEXT : "Internal Server Error\n";
    return host ? 400 : 500;
}

int guest_response_plain(guest_response *r, int status, const char *text)
{
    guest_response_reset(r, status);
    if (!text)
        text = "";
    if (guest_response_add_header(r, "Content-Type",
                                  "text/plain; charset=utf-8") != 0 ||
        guest_response_write(r, text, strlen(text)) != 0) {
        guest_response_reset(r, status);
        return -1;
    }
    return 0;
}

int guest_sockaddr_parse(const char *addr, uint16_t port,
                         struct sockaddr_storage *out)
{
    memset(out, 0, sizeof *out);
    if (!addr)
        addr = "127.0.0.1";
    struct sockaddr_in *v4 = (struct sockaddr_in *)out;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
    if (inet_pton(AF_INET, addr, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        return AF_INET;
    }
    if (inet_pton(AF_INET6, addr, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        return AF_INET6;
    }
    return 0;
}

/* ---- guest_log_limiter ---- */

#define LOG_KINDS 16
#define LOG_KEY 96
#define LOG_LAST 256

typedef struct log_kind {
    char key[LOG_KEY];     /* "" while free */
    int64_t since;         /* when its last line went out, ms */
    unsigned long held;    /* messages counted since then */
    char last[LOG_LAST];   /* the latest of them, for the line at the end */
    guest_log_level level; /* and its level */
} log_kind;

struct guest_log_limiter {
    guest_ctx *ctx;
    char source[32];
    int64_t interval_ms;
    /* Servers log from every connection thread; a message costs a lookup
     * among a few keys, so one lock is enough. */
    pthread_mutex_t lock;
    log_kind kinds[LOG_KINDS];
    log_kind others; /* every kind past LOG_KINDS */
};

guest_status guest_log_limiter_new(guest_ctx *ctx, const char *source,
                                   unsigned interval_s, guest_log_limiter **out)
{
    if (!ctx || !out)
        return GUEST_ERR_INVALID;
    *out = NULL;
    guest_log_limiter *l = calloc(1, sizeof *l);
    if (!l)
        return GUEST_ERR_NOMEM;
    if (pthread_mutex_init(&l->lock, NULL) != 0) {
        free(l);
        return GUEST_ERR_NOMEM;
    }
    l->ctx = ctx;
    if (source)
        snprintf(l->source, sizeof l->source, "%s: ", source);
    l->interval_ms =
        (int64_t)(interval_s ? interval_s : GUEST_LOG_LIMIT_INTERVAL_S) * 1000;
    *out = l;
    return GUEST_OK;
}

/* @p text without its line end, at most @p size - 1 bytes; with @p digits
 * false every run of digits becomes one '#', so that the addresses,
 * ports and counts in a message do not make a new kind of it. */
static void log_text(char *out, size_t size, const char *text, bool digits)
{
    size_t n = 0;
    for (const char *p = text; *p && n + 1 < size; p++) {
        if (!digits && *p >= '0' && *p <= '9') {
            if (n == 0 || out[n - 1] != '#')
                out[n++] = '#';
            continue;
        }
        out[n++] = *p;
    }
    while (n && (out[n - 1] == '\n' || out[n - 1] == '\r'))
        n--;
    out[n] = '\0';
}

static log_kind *log_kind_of(guest_log_limiter *l, const char *key)
{
    for (int i = 0; i < LOG_KINDS; i++) {
        log_kind *k = &l->kinds[i];
        if (!k->key[0]) {
            snprintf(k->key, sizeof k->key, "%s", key);
            return k;
        }
        if (!strcmp(k->key, key))
            return k;
    }
    return &l->others;
}

/* Whole seconds, rounded up, for "in the last N s". */
static long long log_seconds(int64_t ms)
{
    return (long long)((ms + 999) / 1000);
}

bool guest_log_limited(guest_log_limiter *l, guest_log_level level,
                       const char *kind, const char *message)
{
    if (!l || !message)
        return false;
    char key[LOG_KEY], line[LOG_LAST];
    log_text(key, sizeof key, kind ? kind : message, kind != NULL);
    log_text(line, sizeof line, message, true);
    int64_t now = guest__now_ms();
    pthread_mutex_lock(&l->lock);
    log_kind *k = log_kind_of(l, key);
    if (k->since && now - k->since < l->interval_ms) {
        k->held++;
        memcpy(k->last, line, sizeof line);
        k->level = level;
        pthread_mutex_unlock(&l->lock);
        return false;
    }
    unsigned long held = k->held;
    int64_t since = k->since;
    k->held = 0;
    k->since = now;
    pthread_mutex_unlock(&l->lock);
    if (held)
        guest__log(l->ctx, level,
                   "%s%s (%lu more like this in the last %lld s)", l->source,
                   line, held, log_seconds(now - since));
    else
        guest__log(l->ctx, level, "%s%s", l->source, line);
    return true;
}

void guest_log_limiter_free(guest_log_limiter *l)
{
    if (!l)
        return;
    int64_t now = guest__now_ms();
    for (int i = 0; i <= LOG_KINDS; i++) {
        const log_kind *k = i < LOG_KINDS ? &l->kinds[i] : &l->others;
        if (k->held)
            guest__log(l->ctx, k->level,
                       "%s%s (%lu more like this in the last %lld s, not "
                       "shown)",
                       l->source, k->last, k->held,
                       log_seconds(now - k->since));
    }
    pthread_mutex_destroy(&l->lock);
    free(l);
}

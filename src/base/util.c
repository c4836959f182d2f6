/* Small string helpers, UTF-8 checks and the clock, shared by the library. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/base.h"

int64_t guest__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t guest__now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

char *guest__strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

char *guest__asprintf(const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *p = n < 0 ? NULL : malloc((size_t)n + 1);
    if (p)
        vsnprintf(p, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    return p;
}

bool guest__has_ctl(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

char *guest__percent_encode(const char *in, bool (*keep)(unsigned char c))
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(in);
    char *out = malloc(n * 3 + 1), *o = out;
    if (!out)
        return NULL;
    for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
        if (keep(*p)) {
            *o++ = (char)*p;
        } else {
            *o++ = '%';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 15];
        }
    }
    *o = '\0';
    return out;
}

/* Python's quote(): unreserved characters and '/' stay, the rest is %XX
 * with upper-case hex, byte by byte (UTF-8 included). */
static bool quote_keeps(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-' ||
           c == '~' || c == '/';
}

char *guest__url_quote(const char *in)
{
    return guest__percent_encode(in, quote_keeps);
}

int guest__hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

size_t guest__percent_decode(const char *s, size_t n, char *out,
                             bool plus_is_space)
{
    /* A '%' not followed by two hex digits stays as it is, as Python's
     * unquote() leaves it: refusing would reject values browsers send. */
    char *o = out;
    for (size_t i = 0; i < n; i++) {
        if (plus_is_space && s[i] == '+') {
            *o++ = ' ';
        } else if (s[i] == '%' && i + 2 < n &&
                   guest__hex_value(s[i + 1]) >= 0 &&
                   guest__hex_value(s[i + 2]) >= 0) {
            *o++ = (char)(guest__hex_value(s[i + 1]) * 16 +
                          guest__hex_value(s[i + 2]));
            i += 2;
        } else {
            *o++ = s[i];
        }
    }
    *o = '\0';
    return (size_t)(o - out);
}

bool guest__media_type_is(const char *content_type, const char *type)
{
    if (!content_type)
        return false;
    while (*content_type == ' ' || *content_type == '\t')
        content_type++;
    size_t n = strlen(type);
    if (strncasecmp(content_type, type, n) != 0)
        return false;
    char c = content_type[n];
    return c == '\0' || c == ';' || c == ' ' || c == '\t';
}

size_t guest__utf8_next(const unsigned char *s, uint32_t *cp)
{
    unsigned char c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t n;
    uint32_t v, min;
    if ((c & 0xE0) == 0xC0) {
        n = 2, v = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        n = 3, v = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        n = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return n;
}

size_t guest__utf8_chars(const char *s)
{
    size_t chars = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        uint32_t cp;
        size_t n = guest__utf8_next(p, &cp);
        p += n ? n : 1;
        chars++;
    }
    return chars;
}

bool guest__utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        if (!p[i])
            return false;
        /* guest__utf8_next() stops at a NUL, which also ends a truncated
         * sequence before the buffer does: the value was NUL-terminated. */
        size_t n = guest__utf8_next(p + i, &cp);
        if (!n || i + n > len)
            return false;
        i += n;
    }
    return true;
}

/* The library's memory goes back through the allocator that made it, which
 * need not be the application's (another C runtime, a static build). */
void guest_free(void *p)
{
    free(p);
}

/* Small string helpers shared by the library. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

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

char *guest__url_quote(const char *in)
{
    /* Python's quote(): unreserved characters and '/' stay, the rest is
     * %XX with upper-case hex, byte by byte (UTF-8 included). */
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(in);
    char *out = malloc(n * 3 + 1), *o = out;
    if (!out)
        return NULL;
    for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
        unsigned char c = *p;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
            (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-' ||
            c == '~' || c == '/') {
            *o++ = (char)c;
        } else {
            *o++ = '%';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    *o = '\0';
    return out;
}

char *guest__schema_sql(const char *tmpl, const char *schema)
{
    /* The schema name was validated as [a-z_][a-z0-9_]* by the config, so
     * quoting it needs no escaping. */
    size_t n = 0, slen = strlen(schema);
    for (const char *p = tmpl; *p; p++)
        n += *p == '@' ? slen + 2 : 1;
    char *out = malloc(n + 1), *o = out;
    if (!out)
        return NULL;
    for (const char *p = tmpl; *p; p++) {
        if (*p != '@') {
            *o++ = *p;
            continue;
        }
        *o++ = '"';
        memcpy(o, schema, slen);
        o += slen;
        *o++ = '"';
    }
    *o = '\0';
    return out;
}

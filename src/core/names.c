/* The built-in guest username generators. */
#include <stdio.h>
#include <string.h>

#include <uuid/uuid.h>

#include "core/core.h"

guest_status guest_name_uuid(const guest_config *cfg, char *buf, size_t size,
                             void *userdata)
{
    (void)cfg;
    (void)userdata;
    if (!buf || size < 33)
        return GUEST_ERR_INVALID;
    uuid_t u;
    char text[37];
    /* uuid_generate_random is libuuid's version-4 UUID, the reference's
     * uuid4(); dashes dropped like its .hex. */
    uuid_generate_random(u);
    uuid_unparse_lower(u, text);
    size_t o = 0;
    for (size_t i = 0; text[i]; i++)
        if (text[i] != '-')
            buf[o++] = text[i];
    buf[o] = '\0';
    return GUEST_OK;
}

guest_status guest__name_numbered_width(const guest_config *cfg,
                                        unsigned digits, char *buf, size_t size)
{
    if (!cfg || !buf || digits < 1 || digits > GUEST__NAME_MAX_DIGITS)
        return GUEST_ERR_INVALID;
    uint64_t bound = 1;
    for (unsigned i = 0; i < digits; i++)
        bound *= 10;
    uint64_t n;
    /* 1 .. 10^digits - 1, as the reference draws it. */
    guest_status st = guest__random_below(bound - 1, &n);
    if (st != GUEST_OK)
        return st;
    const char *prefix = cfg->name_prefix ? cfg->name_prefix : "";
    int w = snprintf(buf, size, "%s%0*llu", prefix, (int)digits,
                     (unsigned long long)n + 1);
    return (w < 0 || (size_t)w >= size) ? GUEST_ERR_TOO_LARGE : GUEST_OK;
}

guest_status guest_name_numbered(const guest_config *cfg, char *buf,
                                 size_t size, void *userdata)
{
    (void)userdata;
    if (!cfg)
        return GUEST_ERR_INVALID;
    return guest__name_numbered_width(cfg, cfg->name_suffix_digits, buf, size);
}

guest_status guest_name_friendly(const guest_config *cfg, char *buf,
                                 size_t size, void *userdata)
{
    (void)cfg;
    (void)userdata;
    uint64_t a, n, num;
    guest_status st;
    if (!buf)
        return GUEST_ERR_INVALID;
    if ((st = guest__random_below(guest__adjective_count, &a)) != GUEST_OK ||
        (st = guest__random_below(guest__noun_count, &n)) != GUEST_OK ||
        (st = guest__random_below(100, &num)) != GUEST_OK)
        return st;
    int w = snprintf(buf, size, "%s%s%u", guest__adjectives[a], guest__nouns[n],
                     (unsigned)num);
    return (w < 0 || (size_t)w >= size) ? GUEST_ERR_TOO_LARGE : GUEST_OK;
}

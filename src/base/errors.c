/* Status names and messages, generated from GUEST_STATUS_MAP. */
#include <stdio.h>
#include <string.h>

#include "base/base.h"

const char *guest_strerror(guest_status status)
{
    switch (status) {
#define GUEST__MSG(name, value, msg)                                           \
    case GUEST_##name:                                                         \
        return msg;
        GUEST_STATUS_MAP(GUEST__MSG)
#undef GUEST__MSG
    default:
        return "unknown status";
    }
}

const char *guest_status_name(guest_status status)
{
    switch (status) {
#define GUEST__NAME(name, value, msg)                                          \
    case GUEST_##name:                                                         \
        return "GUEST_" #name;
        GUEST_STATUS_MAP(GUEST__NAME)
#undef GUEST__NAME
    default:
        return "GUEST_UNKNOWN";
    }
}

guest_status guest__fail(guest_error *err, guest_status st, const char *fmt,
                         ...)
{
    if (err) {
        va_list ap;
        err->status = st;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return st;
}

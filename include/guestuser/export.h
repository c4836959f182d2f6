/* libguestuser: symbol export and attribute macros. */
#ifndef GUESTUSER_EXPORT_H
#define GUESTUSER_EXPORT_H

#define GUESTUSER_VERSION_MAJOR 0
#define GUESTUSER_VERSION_MINOR 1
#define GUESTUSER_VERSION_PATCH 0
#define GUESTUSER_VERSION_STRING "0.1.0"

#if defined(__GNUC__) || defined(__clang__)
#define GUEST_API __attribute__((visibility("default")))
#define GUEST_NODISCARD __attribute__((warn_unused_result))
#define GUEST_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#define GUEST_MAYBE_UNUSED __attribute__((unused))
#else
#define GUEST_MAYBE_UNUSED
#define GUEST_API
#define GUEST_NODISCARD
#define GUEST_PRINTF(fmt, args)
#endif

#endif

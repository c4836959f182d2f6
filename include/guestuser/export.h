/* libguestuser: symbol export and attribute macros. */
#ifndef GUESTUSER_EXPORT_H
#define GUESTUSER_EXPORT_H

/* Generated from project(VERSION): in the build tree under
 * generated/include, installed next to this header. */
#include "guestuser/version.h"

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

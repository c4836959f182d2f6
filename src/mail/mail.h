/* libguestuser-mail's own header: what smtp.c and message.c share. The
 * component sees the public API only (include/guestuser/). */
#ifndef GUESTUSER_SRC_MAIL_H
#define GUESTUSER_SRC_MAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "guestuser/mail.h"
#include "guestuser/smtp.h"

/* Longest address accepted (RFC 5321's path limit less the brackets). */
enum { GUEST__MAIL_ADDR_MAX = 254 };

/* ---- message.c ---- */

/* The outcome of guest__mail_build(). */
typedef enum guest__mail_build_result {
    GUEST__MAIL_BUILT = 0,
    GUEST__MAIL_REFUSED, /* the mail cannot be sent as it is: PERMANENT */
    GUEST__MAIL_NOMEM    /* out of memory: RETRY */
} guest__mail_build_result;

/* The envelope addresses and the RFC 5322 text of @p mail, dated @p now.
 * On GUEST__MAIL_BUILT, *out (NUL-terminated, *out_len bytes, CRLF lines)
 * is the caller's to free(); @p from_addr and @p to_addr (each of
 * GUEST__MAIL_ADDR_MAX + 1 bytes) get the bare addresses. Otherwise
 * @p error gets the reason. */
guest__mail_build_result guest__mail_build(const guest_mail *mail, time_t now,
                                           char *from_addr, char *to_addr,
                                           char **out, size_t *out_len,
                                           char *error, size_t error_size);

#endif

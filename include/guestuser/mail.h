/* libguestuser: the mail outbox. Every mail the library sends (address
 * verification, password reset, address-change notices) is written to an
 * outbox table in the same transaction as what causes it; a sender in each
 * process delivers it through a transport: SMTP (the guestuser-mail
 * component) or the application's own callback (an HTTP mail API). A
 * request never waits for a mail server. Guide: docs/email.md. */
#ifndef GUESTUSER_MAIL_H
#define GUESTUSER_MAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

#ifdef __cplusplus
extern "C" {
#endif

/** One mail to deliver; every pointer is borrowed for the call. */
typedef struct guest_mail {
    int64_t id;             /**< the outbox row; unique, for logs */
    const char *message_id; /**< "<ID.HEX@guestuser>": the same on a retry */
    const char *from;       /**< guest_config.mail_from */
    const char *to;
    const char *subject; /**< one line, UTF-8 */
    const char *text;    /**< the plain-text body, UTF-8 */
    const char *html;    /**< the HTML body, or NULL */
    int attempt;         /**< 1 for the first delivery */
} guest_mail;

/** What a transport reports for one mail. */
typedef enum guest_mail_result {
    GUEST_MAIL_SENT = 0,     /**< accepted by the next hop */
    GUEST_MAIL_RETRY = 1,    /**< try again later (server down, 4xx) */
    GUEST_MAIL_PERMANENT = 2 /**< never deliverable (5xx): kept as failed */
} guest_mail_result;

/**
 * Delivers one mail. Runs on the sender's own thread, never a request's;
 * may block up to its own deadline. @p error (of @p error_size bytes) gets
 * a one-line reason for RETRY and PERMANENT.
 */
typedef guest_mail_result (*guest_mail_send_fn)(const guest_mail *mail,
                                                void *userdata, char *error,
                                                size_t error_size);

/** A transport: the function and its userdata. */
typedef struct guest_mail_transport {
    guest_mail_send_fn send;
    void *userdata;
} guest_mail_transport;

/** A mail as the outbox holds it (guest_mail_queue_list()). */
typedef struct guest_mail_info {
    int64_t id;
    /** Borrowed: valid only during the callback. */
    const char *to;
    const char *subject;
    int attempts;
    int64_t created_at;      /**< Unix seconds */
    int64_t next_attempt_at; /**< pending: when it is tried next */
    bool failed;             /**< kept as failed: no more attempts */
    const char *last_error;  /**< "" when none */
} guest_mail_info;

/** Receives one mail; return true for the next, false to stop. */
typedef bool (*guest_mail_list_fn)(const guest_mail_info *mail, void *userdata);

/**
 * Calls @p fn for each mail not delivered yet, pending and failed, oldest
 * first, at most @p limit (0: all). GUEST_ERR_INVALID for NULL @p ctx or
 * @p fn; database statuses with @p err (may be NULL). Thread-safe.
 */
GUEST_API GUEST_NODISCARD guest_status
guest_mail_queue_list(guest_ctx *ctx, size_t limit, guest_mail_list_fn fn,
                      void *userdata, guest_error *err);

/**
 * Queues every failed mail again, due now with its attempts reset (after
 * the mail server was fixed); *count (may be NULL) says how many.
 * Thread-safe.
 */
GUEST_API GUEST_NODISCARD guest_status
guest_mail_retry_failed(guest_ctx *ctx, uint64_t *count, guest_error *err);

#ifdef __cplusplus
}
#endif
#endif

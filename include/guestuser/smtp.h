/* libguestuser-mail: delivery of the outbox's mail over SMTP with libcurl,
 * as a separate library (guestuser::mail, guestuser-mail.pc) on the public
 * API only. guest_smtp_transport() is the guest_mail_transport (mail.h)
 * that the library's sender calls. Guide: docs/email.md. */
#ifndef GUESTUSER_SMTP_H
#define GUESTUSER_SMTP_H

#include <stdbool.h>

#include "mail.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A mail server to deliver to. Opaque; made once with guest_smtp_new(),
 * then used from any thread: each send has a connection of its own. */
typedef struct guest_smtp guest_smtp;

/** STARTTLS on an smtp:// URL (smtps:// is TLS from the first byte). */
typedef enum guest_smtp_starttls {
    /** Upgrade with STARTTLS or send nothing (the default). */
    GUEST_SMTP_STARTTLS_REQUIRED = 0,
    /** Upgrade when the server offers it, else go on in cleartext. */
    GUEST_SMTP_STARTTLS_OPTIONAL = 1,
    /** Never upgrade: cleartext throughout. */
    GUEST_SMTP_STARTTLS_OFF = 2
} guest_smtp_starttls;

/** Settings of guest_smtp_new(); fill with guest_smtp_config_init(), then
 * override field by field. Strings are copied by guest_smtp_new(). */
typedef struct guest_smtp_config {
    /** sizeof(guest_smtp_config) where the program was compiled, set by
     * guest_smtp_config_init() (docs/abi.md). */
    size_t size;
    /** "smtp://HOST[:PORT]" (port 25; see starttls) or "smtps://HOST[:PORT]"
     * (port 465, implicit TLS); required. An optional path names the
     * EHLO domain ("smtp://mail.example.com/www.example.com"). */
    const char *url;
    /** STARTTLS on smtp:// (GUEST_SMTP_STARTTLS_REQUIRED); ignored for
     * smtps://. */
    guest_smtp_starttls starttls;
    /** AUTH user name and password (AUTH PLAIN, LOGIN or what the server
     * offers), or NULL for no AUTH. Credentials are refused unless the
     * connection is sure to be encrypted (smtps://, or STARTTLS required)
     * or the host is loopback (127.0.0.0/8, [::1], localhost). */
    const char *username;
    const char *password;
    /** Instead of username/password: a file whose first line is
     * "USER:PASSWORD" (the password is everything after the first ':'),
     * read once by guest_smtp_new(). NULL: not used. */
    const char *credentials_file;
    /** Deadline of one send, connection to last reply, ms (10000);
     * 100..600000. */
    unsigned timeout_ms;
    /** PEM file of the certificate authorities to trust for TLS; NULL:
     * the system's. */
    const char *ca_file;
    /** Check the server's certificate and name (true). Turn off only for
     * a test server. */
    bool tls_verify;
} guest_smtp_config;

/** Fills @p cfg with the defaults above (url NULL, no credentials), and its
 * size. */
#define guest_smtp_config_init(cfg)                                            \
    guest_smtp_config_init_size((cfg), sizeof(guest_smtp_config))
/** guest_smtp_config_init() for a struct of @p size bytes (the program's
 * sizeof). */
GUEST_API void guest_smtp_config_init_size(guest_smtp_config *cfg, size_t size);

/**
 * Makes a mail server handle from @p cfg. GUEST_ERR_CONFIG when the URL is
 * not smtp:// or smtps:// with a host, a setting is out of range, the
 * credentials file cannot be read or holds no "USER:PASSWORD" line, only
 * one of username and password is set, both they and a credentials file
 * are, or credentials would cross the network in cleartext (see
 * username), or libcurl cannot start or lacks SMTP; GUEST_ERR_INVALID
 * for NULL arguments; GUEST_ERR_NOMEM. @p err (may be NULL) says which. Nothing
 * is sent yet. *out is the caller's, released with guest_smtp_free().
 * Thread-safe.
 */
GUEST_API GUEST_NODISCARD guest_status guest_smtp_new(
    const guest_smtp_config *cfg, guest_smtp **out, guest_error *err);

/**
 * The transport that sends each mail to @p smtp (borrowed: it must outlive
 * every use of the transport). Its send function, safe to call from
 * several threads at once, builds the message (Date, From, To, Subject
 * as RFC 2047 encoded-words when not ASCII, the mail's Message-ID,
 * MIME-Version; text/plain, or multipart/alternative with the HTML part
 * when there is one; UTF-8, quoted-printable, CRLF lines of at most 76
 * characters) and sends it in one SMTP transaction, the envelope sender
 * and recipient being the addresses of From and To ("Name <addr>" or
 * "addr"). It answers
 * - GUEST_MAIL_SENT when the server accepted the message;
 * - GUEST_MAIL_RETRY when it could not be reached, timed out, answered 4xx,
 *   refused the credentials (530/535: the site's setting, not the mail, is
 *   wrong, and the mail should go once it is fixed), or TLS failed;
 * - GUEST_MAIL_PERMANENT when it answered 5xx otherwise, or when the mail
 *   cannot be sent as it is: a From, To or Subject with CR, LF or another
 *   control character, an address that is not ASCII or has no '@', a
 *   malformed Message-ID. Nothing reaches the server then.
 * The reason (with the server's reply when there is one) goes to the
 * send function's error buffer.
 */
GUEST_API guest_mail_transport guest_smtp_transport(guest_smtp *smtp);

/** Releases @p smtp, wiping its password; NULL is a no-op. No send may be
 * in progress. */
GUEST_API void guest_smtp_free(guest_smtp *smtp);

#ifdef __cplusplus
}
#endif
#endif

/* The SMTP fixture for C tests (tests/smtp/README.md): its addresses and
 * credentials (the KEY=VALUE lines of DIR/env that smtp-fixture.sh
 * writes), the messages it received, and stopping and resuming it.
 *
 * smtp_fixture() is ctest's server, shared by every test that requires the
 * fixture `smtp` (its env file is $SMTP_ENV_FILE, set by
 * guestuser_smtp_test() in tests/smtp.cmake). A test that stops a server
 * should start one of its own with smtp_private_start(), so that tests
 * running beside it keep theirs. Messages are told apart by recipient:
 * give each test addresses of its own. */
#ifndef GUESTUSER_TESTS_SMTP_ENV_H
#define GUESTUSER_TESTS_SMTP_ENV_H

#include <stdbool.h>
#include <stddef.h>

typedef struct smtp_server smtp_server;

/* ctest's server, or NULL when its env file cannot be read (the fixture is
 * not running: the reason goes to stderr). Read once, thread-safely; lives
 * until the process ends. */
const smtp_server *smtp_fixture(void);

/* smtp_server_env(smtp_fixture(), KEY). */
const char *smtp_env(const char *key);

/* A fresh server of the test's own (`smtp-fixture.sh start`) in
 * BUILD/tests/smtp-private/NAME-PID, or NULL (the reason on stderr).
 * Stop it and free it with smtp_private_free(). */
smtp_server *smtp_private_start(const char *name);

/* Stops @p srv, removes its directory and frees it; NULL is a no-op. */
void smtp_private_free(smtp_server *srv);

/* The value of KEY in the server's env file, or NULL: SMTP_URL,
 * SMTP_AUTH_URL, SMTP_STARTTLS_URL, SMTPS_URL, SMTP_DIR, SMTP_USERNAME,
 * SMTP_PASSWORD, SMTP_CREDENTIALS_FILE, SMTP_CA_FILE, SMTP_LOG,
 * SMTP_FIXTURE_DIR, SMTP_FIXTURE_SCRIPT. Borrowed for the server's life. */
const char *smtp_server_env(const smtp_server *srv, const char *key);

/* `smtp-fixture.sh stop|resume DIR` for @p srv: true when the script
 * succeeded. After stop, connections are refused; resume brings the server
 * back on the same ports with the same credentials and certificate, the
 * received mail kept. */
bool smtp_server_stop(const smtp_server *srv);
bool smtp_server_resume(const smtp_server *srv);

/* One received message. */
typedef struct smtp_message {
    char *path; /* DIR/mail/NAME.eml */
    char *raw;  /* the message as received (CRLF lines), NUL-ended */
    size_t raw_len;
    char *listener;  /* plain, auth, starttls or smtps */
    char *mail_from; /* the envelope sender */
    char *rcpt_to;   /* the envelope recipients, comma-separated */
    char *auth_user; /* "" without AUTH */
    bool tls;        /* the session was encrypted */
} smtp_message;

/* The messages received so far whose envelope recipients include @p rcpt
 * (without regard to case; NULL: every message), oldest first, into *out
 * (free with smtp_messages_free()). Returns how many (0: *out NULL). */
size_t smtp_messages(const smtp_server *srv, const char *rcpt,
                     smtp_message **out);

/* smtp_messages(), polling until there are at least @p n or @p timeout_ms
 * has passed; returns the count found then. */
size_t smtp_wait_messages(const smtp_server *srv, const char *rcpt, size_t n,
                          int timeout_ms, smtp_message **out);

void smtp_messages_free(smtp_message *msgs, size_t n);

/* FIELD of the message at @p path as python's email package reads it
 * (tests/smtp/smtp-inspect.py: subject, from, to, message-id, date,
 * content-type, parts, charsets, encodings, text, html, defects, wire,
 * header:NAME); malloc'd, or NULL when the script fails. */
char *smtp_inspect(const char *path, const char *field);

#endif

/* The conformance program's HTTP/1.1 client: plain POSIX sockets, http://
 * only, every wait bounded by cf_timeout_ms. */
#ifndef GUESTUSER_CONFORMANCE_CLIENT_H
#define GUESTUSER_CONFORMANCE_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

/** Where the server listens, from --url http://HOST[:PORT][/]. */
typedef struct cf_target {
    char host[256]; /* without brackets for IPv6 */
    char port[8];
    char host_header[280]; /* HOST[:PORT] as sent in Host */
} cf_target;

/** The bound on every connect, send and read, milliseconds. */
extern int cf_timeout_ms;

/** One response: the header lines in order, the body as framed. */
typedef struct cf_response {
    int status;
    char *head; /* the header block, NUL-separated lines after parsing */
    size_t nheaders;
    char *names[256];
    char *values[256];
    char *body; /* NUL-terminated; body_len bytes */
    size_t body_len;
    bool closed;    /* the server closed the connection after it */
    char local[64]; /* the client's address on this connection */
} cf_response;

/** Parses @p url; false with a reason in @p why. */
bool cf_parse_url(const char *url, cf_target *t, char *why, size_t n);

/** A connected socket, or -1 with a reason in @p why. */
int cf_connect(const cf_target *t, char *why, size_t n);

/** Sends all of @p len bytes; false on a failure or the timeout. */
bool cf_send(int fd, const char *data, size_t len);

/**
 * Reads one response from @p fd: the headers, then the body framed by
 * Content-Length, chunked encoding, or the end of the connection (none for
 * a HEAD request, 1xx, 204 and 304). False with a reason in @p why on a
 * malformed answer, a close inside it or the timeout. Free with
 * cf_response_free().
 */
bool cf_read(int fd, bool head, cf_response *r, char *why, size_t n);

/** True when the peer closes @p fd without sending anything more. */
bool cf_closes(int fd);

/** Bytes the server sends on @p fd before closing it, up to the timeout:
 * -1 when it never closes. */
long cf_drain(int fd);

/** Everything the server sends on @p fd until it closes it, NUL-terminated
 * in *@p out (free it; NULL when out of memory): the byte count, or -1
 * when the server did not close within the timeout (*@p out then holds
 * what arrived). */
long cf_read_all(int fd, char **out);

/** Connects, sends @p request verbatim, reads one response, closes. */
bool cf_exchange(const cf_target *t, const char *request, bool head,
                 cf_response *r, char *why, size_t n);

/** The first value of header @p name (case-insensitive), or NULL. */
const char *cf_header(const cf_response *r, const char *name);
/** How many header lines are named @p name. */
size_t cf_header_count(const cf_response *r, const char *name);

void cf_response_free(cf_response *r);

#endif

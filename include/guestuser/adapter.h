/* libguestuser: building blocks for server adapters. Most servers need the
 * status and headers before the first body byte, while handlers may set a
 * header after writing; adapters collect the response here and send it when
 * the handler returns. */
#ifndef GUESTUSER_ADAPTER_H
#define GUESTUSER_ADAPTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A growable byte buffer, always NUL-terminated once non-empty. Zero it to
 * initialise; release with guest_buf_cleanup(). */
typedef struct guest_buf {
    char *data; /**< owned; NULL while empty */
    size_t len;
    size_t cap;
} guest_buf;

/** Appends @p len bytes; 0 on success, -1 when out of memory (@p b keeps
 * what it had). */
GUEST_API GUEST_NODISCARD int guest_buf_append(guest_buf *b, const void *data,
                                               size_t len);
/** Releases the bytes @p b holds (not @p b itself) and zeroes it. */
GUEST_API void guest_buf_cleanup(guest_buf *b);

/** A response collected from the guest_http_ops calls. */
typedef struct guest_response {
    int status;          /**< 200 until set */
    char **headers;      /**< name, value, name, value ...; owned */
    size_t header_count; /**< pairs in headers */
    size_t max_headers;  /**< 0: no limit; past it add_header fails */
    guest_buf body;
} guest_response;

/** Empty response, status 200, no header limit. */
GUEST_API void guest_response_init(guest_response *r);
/** The guest_http_ops calls, each returning 0 or -1 (out of memory, or the
 * header limit). Name and value are copied. */
GUEST_API GUEST_NODISCARD int guest_response_set_status(guest_response *r,
                                                        int status);
GUEST_API GUEST_NODISCARD int guest_response_add_header(guest_response *r,
                                                        const char *name,
                                                        const char *value);
GUEST_API GUEST_NODISCARD int
guest_response_write(guest_response *r, const void *data, size_t len);
/** Drops headers and body and sets @p status: for an adapter's own error
 * answer after a handler already wrote something. */
GUEST_API void guest_response_reset(guest_response *r, int status);
/** Releases what @p r holds (headers and body), not @p r itself, which may
 * be reused after guest_response_init(). */
GUEST_API void guest_response_cleanup(guest_response *r);

/**
 * Defines the four response callbacks of guest_http_ops, named
 * PREFIX_set_status, PREFIX_add_header, PREFIX_write and PREFIX_reset, for
 * an adapter whose per-request struct @p type keeps its guest_response in
 * @p member. Use at file scope, then in the ops table:
 *
 *     GUEST_RESPONSE_CALLBACKS(op, my_req, res)
 *     ... .set_status = op_set_status, .add_header = op_add_header,
 *         .write = op_write, .reset = op_reset, ...
 */
#define GUEST_RESPONSE_CALLBACKS(prefix, type, member)                         \
    static int prefix##_set_status(void *c, int status)                        \
    {                                                                          \
        return guest_response_set_status(&((type *)c)->member, status);        \
    }                                                                          \
    static int prefix##_add_header(void *c, const char *name,                  \
                                   const char *value)                          \
    {                                                                          \
        return guest_response_add_header(&((type *)c)->member, name, value);   \
    }                                                                          \
    static int prefix##_write(void *c, const void *data, size_t len)           \
    {                                                                          \
        return guest_response_write(&((type *)c)->member, data, len);          \
    }                                                                          \
    static int prefix##_reset(void *c)                                         \
    {                                                                          \
        guest_response_reset(&((type *)c)->member, 200);                       \
        return 0;                                                              \
    }

/**
 * Appends @p value to @p b as one more line of the header field @p name,
 * the way RFC 9110 5.3 combines a field sent on several lines: ", " between
 * values ("; " for Cookie). For an adapter's header callback, so the
 * library sees every line of X-Forwarded-For, not just the first.
 * 0, or -1 when out of memory (@p b keeps what it had).
 */
GUEST_API GUEST_NODISCARD int
guest_buf_append_field_line(guest_buf *b, const char *name, const char *value);

/**
 * 0 when a header value as the server library parsed it holds no control
 * byte but horizontal tab, -1 otherwise: a bare CR a server kept inside a
 * value is a line end to a proxy that honours it, and the header behind it
 * would hide from the adapter's framing checks (answer 400 and close).
 */
GUEST_API GUEST_NODISCARD int guest_header_value_ok(const char *value);

/**
 * Fills @p out (zeroed first) with the numeric IPv4 or IPv6 address
 * @p addr (NULL: "127.0.0.1") and @p port, for a server that binds to a
 * socket address. Returns AF_INET or AF_INET6, or 0 when @p addr is not a
 * numeric address (host names are not looked up).
 */
GUEST_API GUEST_NODISCARD int
guest_sockaddr_parse(const char *addr, uint16_t port,
                     struct sockaddr_storage *out);

/**
 * Versioned structs, for a struct of settings that grows across releases
 * (docs/abi.md): its first field is `size_t size`, and its _init() macro
 * passes the program's sizeof. guest_sized_init() copies @p defaults (a
 * whole struct of this library's @p full bytes) into @p dst of the
 * program's @p size bytes: the prefix an older program knows, zeroes past
 * @p full for a newer one; then sets dst's size field to @p size. Nothing
 * happens when @p size cannot hold the size field.
 */
GUEST_API void guest_sized_init(void *dst, size_t size, const void *defaults,
                                size_t full);
/**
 * Reads a program's struct @p in over @p out, which holds the defaults (a
 * whole struct of @p full bytes), so fields the program does not know keep
 * them; out's size field becomes @p full. false, with @p out untouched,
 * when an argument is NULL or in's size field is below @p min (the size of
 * the first release's struct) or above @p full (not filled by its _init(),
 * or built against a newer library).
 */
GUEST_API GUEST_NODISCARD bool guest_sized_read(const void *in, size_t min,
                                                void *out, size_t full);

#ifdef __cplusplus
}
#endif
#endif

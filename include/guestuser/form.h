/* libguestuser: the fields of a submitted form (urlencoded or JSON). */
#ifndef GUESTUSER_FORM_H
#define GUESTUSER_FORM_H

#include <stddef.h>

#include "http.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Decoded form fields, each name at most once. Not thread-safe; free with
 * guest_form_free(). */
typedef struct guest_form guest_form;

/** Most fields one form may hold; more is GUEST_ERR_VALIDATION. */
#define GUEST_FORM_MAX_FIELDS 256

/**
 * Parses @p len bytes of application/x-www-form-urlencoded text: fields
 * split on '&', '+' is a space, %XX a byte (a malformed escape stays as it
 * is), a field without '=' has the value "". On success *out owns the fields
 * (free with guest_form_free()). Returns GUEST_ERR_VALIDATION when a name
 * appears twice or there are more than GUEST_FORM_MAX_FIELDS fields,
 * GUEST_ERR_INVALID for NULL arguments, GUEST_ERR_NOMEM; @p err (may be
 * NULL) then says why. Thread-safe.
 */
GUEST_API GUEST_NODISCARD guest_status guest_form_parse(const char *data,
                                                        size_t len,
                                                        guest_form **out,
                                                        guest_error *err);

/**
 * Parses @p len bytes holding one JSON object whose values are strings
 * (kept as they are), true ("on"), numbers (as written), false or null
 * (field absent). Duplicate keys, nested values, more than
 * GUEST_FORM_MAX_FIELDS members, "\u0000" and anything but an object are
 * GUEST_ERR_VALIDATION; nesting and the member count are checked without
 * recursion before the text is parsed, so any input is safe on a small
 * stack. Ownership and other statuses as guest_form_parse(). Thread-safe.
 */
GUEST_API GUEST_NODISCARD guest_status guest_form_parse_json(const char *data,
                                                             size_t len,
                                                             guest_form **out,
                                                             guest_error *err);

/**
 * The request's body as a form: JSON for a Content-Type of
 * application/json, urlencoded otherwise (also when there is none).
 * GUEST_ERR_TOO_LARGE when the adapter refused the body (answer 413);
 * GUEST_ERR_VALIDATION for a malformed body or a field sent twice (400);
 * GUEST_ERR_INVALID for multipart or another media type (415). *out as
 * guest_form_parse().
 */
GUEST_API GUEST_NODISCARD guest_status guest_req_form(guest_req *req,
                                                      guest_form **out,
                                                      guest_error *err);

/**
 * The HTTP status that answers a guest_req_form() that returned @p st: 413
 * for GUEST_ERR_TOO_LARGE, 415 for GUEST_ERR_INVALID, 400 for
 * GUEST_ERR_VALIDATION, 500 for any other error, 200 for GUEST_OK. The
 * ready-made views answer with it. Thread-safe.
 */
GUEST_API int guest_req_form_http_status(guest_status st);

/**
 * Value of field @p name, or NULL when absent (or @p form is NULL). Borrowed
 * from @p form. A value may hold a NUL byte (from %00): use
 * guest_form_get_len() where that matters.
 */
GUEST_API const char *guest_form_get(const guest_form *form, const char *name);

/** As guest_form_get(), with the value's length in bytes in *len (0 when
 * absent; @p len may be NULL). */
GUEST_API const char *guest_form_get_len(const guest_form *form,
                                         const char *name, size_t *len);

/** Number of fields (0 for NULL). */
GUEST_API size_t guest_form_count(const guest_form *form);

/** Releases @p form; NULL is a no-op. */
GUEST_API void guest_form_free(guest_form *form);

#ifdef __cplusplus
}
#endif
#endif

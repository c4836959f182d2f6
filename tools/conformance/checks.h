/* The checks guestuser-conformance runs against a server that mounts the
 * conformance route table (include/guestuser/conformance.h). */
#ifndef GUESTUSER_CONFORMANCE_CHECKS_H
#define GUESTUSER_CONFORMANCE_CHECKS_H

#include <stdbool.h>
#include <stddef.h>

#include "client.h"

/** One check: true when it passed, else false with the reason in @p why. */
typedef struct cf_check {
    const char *name;
    const char *what; /* one line for --list */
    bool (*run)(const cf_target *t, char *why, size_t n);
} cf_check;

/** Every check, in the order they run; *count set to their number. */
const cf_check *cf_checks(size_t *count);

/** Frees the responses the last check kept. */
void cf_checks_release(void);

#endif

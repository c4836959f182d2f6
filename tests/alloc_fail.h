/* Allocation failures on demand for the whole process: malloc, calloc and
 * realloc are defined in alloc_fail.c, so they stand in for the C
 * library's in every shared library of the process (libguestuser, its
 * adapters, libpq, the server libraries ...); only the calls made by the
 * library's own shared objects (libguestuser*.so) count and fail. Nothing
 * of the check framework may run while armed. */
#ifndef GUESTUSER_TESTS_ALLOC_FAIL_H
#define GUESTUSER_TESTS_ALLOC_FAIL_H

#include <stdbool.h>

/* The allocation after @p n more succeed fails, once; -1: none fails. */
void alloc_fail_arm(long n);
/* Whether the armed failure happened; disarms. */
bool alloc_fail_disarm(void);

#endif

/* See alloc_fail.h. */
#include "alloc_fail.h"

#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>

void *__libc_malloc(size_t n);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *p, size_t n);

/* Exported (the build hides symbols by default) so that every shared
 * library of the process calls these. */
#define EXPORTED __attribute__((visibility("default")))

EXPORTED void *malloc(size_t n);
EXPORTED void *calloc(size_t n, size_t size);
EXPORTED void *realloc(void *p, size_t n);

static atomic_long countdown = -1;
static atomic_int failed;

static _Thread_local bool inside;

/* Whether @p caller is code of one of the library's own shared objects
 * (libguestuser, libguestuser-testing, an adapter's): the failures are
 * the library's to handle, not those of the libraries under it. */
static bool ours(void *caller)
{
    if (inside)
        return false;
    inside = true;
    Dl_info info;
    bool yes = dladdr(caller, &info) && info.dli_fname &&
               strstr(info.dli_fname, "libguestuser") != NULL;
    inside = false;
    return yes;
}

static bool fail_now(void *caller)
{
    if (atomic_load_explicit(&countdown, memory_order_relaxed) < 0 ||
        !ours(caller))
        return false;
    if (atomic_fetch_sub(&countdown, 1) == 0) {
        atomic_store(&failed, 1);
        return true;
    }
    return false;
}

void *malloc(size_t n)
{
    return fail_now(__builtin_return_address(0)) ? NULL : __libc_malloc(n);
}

void *calloc(size_t n, size_t size)
{
    return fail_now(__builtin_return_address(0)) ? NULL
                                                 : __libc_calloc(n, size);
}

void *realloc(void *p, size_t n)
{
    return fail_now(__builtin_return_address(0)) ? NULL : __libc_realloc(p, n);
}

void alloc_fail_arm(long n)
{
    atomic_store(&failed, 0);
    atomic_store(&countdown, n);
}

bool alloc_fail_disarm(void)
{
    atomic_store(&countdown, -1);
    return atomic_load(&failed) != 0;
}

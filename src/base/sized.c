/* Structs that grow across 1.x (docs/abi.md): each starts with the size_t
 * size of the struct as the program that filled it was compiled. These two
 * functions are the whole rule, written once for the library, its adapters
 * and outside adapters with limits of their own. */
#include <stdbool.h>
#include <string.h>

#include <guestuser/adapter.h>

void guest_sized_init(void *dst, size_t size, const void *defaults, size_t full)
{
    /* A program too old to hold even the size field has nothing we could
     * write safely. */
    if (!dst || !defaults || size < sizeof(size_t))
        return;
    /* An older program: its prefix of the defaults. A newer program: the
     * fields we do not know are zeroed, which its _read() side refuses
     * rather than guess, since the size then exceeds ours. */
    memcpy(dst, defaults, size < full ? size : full);
    if (size > full)
        memset((char *)dst + full, 0, size - full);
    memcpy(dst, &size, sizeof size);
}

bool guest_sized_read(const void *in, size_t min, void *out, size_t full)
{
    if (!in || !out)
        return false;
    size_t size;
    /* memcpy: @p in is the program's struct, of a type we see as bytes. */
    memcpy(&size, in, sizeof size);
    if (size < min || size > full || size < sizeof size)
        return false;
    memcpy(out, in, size);
    memcpy(out, &full, sizeof full);
    return true;
}

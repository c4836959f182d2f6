/* Word lists of guest_name_friendly. */
#ifndef GUESTUSER_WORDS_H
#define GUESTUSER_WORDS_H

#include <stddef.h>

extern const char *const guest__adjectives[];
extern const size_t guest__adjective_count;
extern const char *const guest__nouns[];
extern const size_t guest__noun_count;

#endif

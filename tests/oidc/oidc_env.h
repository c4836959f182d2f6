/* The OIDC fixture's addresses and secrets for C tests: the KEY=VALUE
 * lines that tests/oidc/oidc-fixture.sh writes (tests/oidc/README.md lists
 * the keys). The file is $OIDC_ENV_FILE, which ctest sets for tests marked
 * with guestuser_oidc_test() (tests/oidc.cmake), else the build tree's. */
#ifndef GUESTUSER_TESTS_OIDC_ENV_H
#define GUESTUSER_TESTS_OIDC_ENV_H

#include <stddef.h>

/* The path of the env file read. */
const char *oidc_env_file(void);

/* The value of KEY, or NULL when the file has no such key or cannot be
 * read (the fixture is not running: the reason goes to stderr once). The
 * file is read once per process, on first use, thread-safely; the strings
 * live until the process ends. */
const char *oidc_env(const char *key);

/* The hostile provider's issuer for MODE (e.g. "wrong-aud"), optionally
 * with TAG ("wrong-aud.TAG": the same mode with codes and counters of its
 * own), written to BUF: HOSTILE_BASE/MODE[.TAG]. TAG may be NULL. Returns
 * BUF, or NULL when the fixture is not running or BUF is too small. */
char *oidc_hostile_issuer(const char *mode, const char *tag, char *buf,
                          size_t size);

#endif

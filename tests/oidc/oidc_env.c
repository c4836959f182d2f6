/* Reads the OIDC fixture's env file (oidc_env.h). */
#include "oidc_env.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef GUESTUSER_OIDC_ENV_FILE
#define GUESTUSER_OIDC_ENV_FILE "tests/oidc/env"
#endif

enum { MAX_ENTRIES = 128 };

static struct {
    char *key;
    char *value;
} entries[MAX_ENTRIES];
static size_t n_entries;
static pthread_once_t once = PTHREAD_ONCE_INIT;

const char *oidc_env_file(void)
{
    const char *path = getenv("OIDC_ENV_FILE");
    return path && *path ? path : GUESTUSER_OIDC_ENV_FILE;
}

static void load(void)
{
    const char *path = oidc_env_file();
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr,
                "oidc_env: cannot read %s: is the oidc fixture running? "
                "(ctest starts it for tests that require the fixture "
                "`oidc`: tests/oidc/README.md)\n",
                path);
        return;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) >= 0 && n_entries < MAX_ENTRIES) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        char *eq = strchr(line, '=');
        if (!eq || eq == line)
            continue;
        *eq = '\0';
        entries[n_entries].key = strdup(line);
        entries[n_entries].value = strdup(eq + 1);
        if (entries[n_entries].key && entries[n_entries].value)
            n_entries++;
    }
    free(line);
    fclose(f);
}

const char *oidc_env(const char *key)
{
    pthread_once(&once, load);
    for (size_t i = 0; i < n_entries; i++)
        if (strcmp(entries[i].key, key) == 0)
            return entries[i].value;
    return NULL;
}

char *oidc_hostile_issuer(const char *mode, const char *tag, char *buf,
                          size_t size)
{
    const char *base = oidc_env("HOSTILE_BASE");
    if (!base || !mode)
        return NULL;
    int n = tag && *tag ? snprintf(buf, size, "%s/%s.%s", base, mode, tag)
                        : snprintf(buf, size, "%s/%s", base, mode);
    return n >= 0 && (size_t)n < size ? buf : NULL;
}

/* The guestuser-demo program as a child process of a test: started with
 * the flags a test gives, on the port it reports, and stopped cleanly. */
#ifndef GUESTUSER_TESTS_DEMO_PROC_H
#define GUESTUSER_TESTS_DEMO_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct demo_proc {
    pid_t pid;
    int port;
    char base[64];   /* http://127.0.0.1:PORT */
    char log[64];    /* its standard error */
    char schema[64]; /* demo_proc_start_on()'s */
} demo_proc;

/* The demo program: $GUESTUSER_TEST_DEMO (ctest sets it), else where the
 * build puts it beside the tests (BUILD/examples/ and BUILD/tests/). */
void demo_proc_path(char *out, size_t size);

/* A loopback port free now (for flags that need the port before the demo
 * listens, such as --public-url). */
int demo_proc_free_port(void);

/* Starts the demo with @p args (NULL-terminated, after the program's
 * name; "--port 0" lets it choose) and waits up to 30 s for its
 * "listening on" line, which gives d->port. Fails the test otherwise. */
void demo_proc_start(demo_proc *d, const char *const *args);
/* demo_proc_start() of another program, @p exe (an example). */
void demo_proc_start_exe(demo_proc *d, const char *exe,
                         const char *const *args);

/* demo_proc_start() with --server @p server on a port chosen first (its
 * links need it), the test database, schema @p schema (emptied first, with
 * the demo's notes schema), --db-timeout-ms 30000, --password-iterations
 * 20000, then @p more
 * (NULL-terminated, may be NULL). */
void demo_proc_start_on(demo_proc *d, const char *server, const char *schema,
                        const char *const *more);

/* SIGTERM, then a clean exit is asserted; with @p no_500, so is a log
 * without a 500 answer. */
void demo_proc_stop(demo_proc *d, bool no_500);

/* One request over a connection of its own (Connection: close); @p cookie
 * and the urlencoded @p body may be NULL. The whole response (free it). */
char *demo_proc_http(const demo_proc *d, const char *method, const char *path,
                     const char *cookie, const char *body);

/* The value "NAME=VALUE" of a non-empty @p name cookie that the response
 * @p res sets, into @p out; false when there is none. */
bool demo_proc_cookie(const char *res, const char *name, char *out,
                      size_t size);

/* The path of the first link to @p path on the demo (d->base + path...)
 * in @p text, such as a mail's, into @p out; fails the test without one. */
void demo_proc_link(const demo_proc *d, const char *text, const char *path,
                    char *out, size_t size);

#endif

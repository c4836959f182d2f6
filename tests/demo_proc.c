/* The demo program as a child process (demo_proc.h). */
#include "demo_proc.h"

#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testlib.h"

void demo_proc_path(char *out, size_t size)
{
    const char *e = getenv("GUESTUSER_TEST_DEMO");
    if (e && *e) {
        snprintf(out, size, "%s", e);
        return;
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    ck_assert_int_gt(n, 0);
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    ck_assert_ptr_nonnull(slash);
    *slash = '\0';
    snprintf(out, size, "%s/../examples/guestuser-demo", self);
}

int demo_proc_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

void demo_proc_start(demo_proc *d, const char *const *args)
{
    char exe[PATH_MAX + 64];
    demo_proc_path(exe, sizeof exe);
    demo_proc_start_exe(d, exe, args);
}

void demo_proc_start_exe(demo_proc *d, const char *exe, const char *const *args)
{
    ck_assert_msg(access(exe, X_OK) == 0, "no program at %s", exe);
    const char *argv[96] = {exe};
    size_t argc = 1;
    for (; args && *args; args++) {
        ck_assert_uint_lt(argc, sizeof argv / sizeof *argv - 1);
        argv[argc++] = *args;
    }
    argv[argc] = NULL;
    snprintf(d->log, sizeof d->log, "/tmp/guestuser-demo-log-XXXXXX");
    int log = mkstemp(d->log);
    ck_assert_int_ge(log, 0);
    int out[2];
    ck_assert_int_eq(pipe(out), 0);
    d->pid = fork();
    ck_assert_int_ge(d->pid, 0);
    if (d->pid == 0) {
        /* A failed assertion ends the test's process: the demo must not
         * outlive it. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(out[1], STDOUT_FILENO);
        dup2(log, STDERR_FILENO);
        close(out[0]);
        close(out[1]);
        close(log);
        execv(exe, (char *const *)argv);
        _exit(127);
    }
    close(out[1]);
    close(log);
    static const char prefix[] = "listening on http://127.0.0.1:";
    char line[512];
    size_t len = 0;
    d->port = 0;
    long long deadline = tl_now_ms() + 30000;
    while (!d->port && tl_now_ms() < deadline && len < sizeof line - 1) {
        struct pollfd p = {.fd = out[0], .events = POLLIN};
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t n = read(out[0], line + len, sizeof line - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        line[len] = '\0';
        const char *at = strstr(line, prefix);
        if (at && strchr(at, '\n'))
            d->port = (int)strtol(at + strlen(prefix), NULL, 10);
    }
    close(out[0]);
    ck_assert_msg(d->port > 0, "the demo did not start (its log: %s)", d->log);
    snprintf(d->base, sizeof d->base, "http://127.0.0.1:%d", d->port);
}

void demo_proc_start_on(demo_proc *d, const char *server, const char *schema,
                        const char *const *more)
{
    char drop[256];
    snprintf(drop, sizeof drop, "%s_demo", schema);
    tl_drop_schema(drop);
    tl_drop_schema(schema);
    char port[16];
    snprintf(port, sizeof port, "%d", demo_proc_free_port());
    /* Few iterations: a sanitizer build on a busy machine takes seconds
     * for the default's, and the tests are about the pages. */
    const char *args[80] = {"--server",
                            server,
                            "--port",
                            port,
                            "--db",
                            tl_conninfo(),
                            "--schema",
                            schema,
                            "--db-timeout-ms",
                            "30000",
                            "--password-iterations",
                            "20000"};
    size_t n = 12;
    for (; more && *more; more++) {
        ck_assert_uint_lt(n, sizeof args / sizeof *args - 1);
        args[n++] = *more;
    }
    args[n] = NULL;
    demo_proc_start(d, args);
    snprintf(d->schema, sizeof d->schema, "%s", schema);
}

void demo_proc_stop(demo_proc *d, bool no_500)
{
    ck_assert_int_eq(kill(d->pid, SIGTERM), 0);
    int status = 0;
    ck_assert_int_eq(waitpid(d->pid, &status, 0), d->pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "the demo did not exit cleanly (its log: %s)", d->log);
    if (no_500) {
        FILE *f = fopen(d->log, "r");
        ck_assert_ptr_nonnull(f);
        char line[1024];
        while (fgets(line, sizeof line, f))
            ck_assert_msg(!strstr(line, " 500 "), "a 500 answer: %s (log %s)",
                          line, d->log);
        fclose(f);
    }
    unlink(d->log);
}

char *demo_proc_http(const demo_proc *d, const char *method, const char *path,
                     const char *cookie, const char *body)
{
    char head[2048];
    size_t n = (size_t)snprintf(
        head, sizeof head,
        "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n", method,
        path, d->port);
    ck_assert_uint_lt(n, sizeof head);
    if (cookie)
        n += (size_t)snprintf(head + n, sizeof head - n, "Cookie: %s\r\n",
                              cookie);
    ck_assert_uint_lt(n, sizeof head);
    size_t blen = body ? strlen(body) : 0;
    char *req = malloc(n + blen + 128);
    ck_assert_ptr_nonnull(req);
    if (body)
        sprintf(req,
                "%sContent-Type: application/x-www-form-urlencoded\r\n"
                "Content-Length: %zu\r\n\r\n%s",
                head, blen, body);
    else
        sprintf(req, "%s\r\n", head);
    char *res = tl_http_raw(d->port, req, 120000);
    free(req);
    ck_assert_msg(res != NULL, "no answer to %s %s", method, path);
    return res;
}

bool demo_proc_cookie(const char *res, const char *name, char *out, size_t size)
{
    char want[128];
    snprintf(want, sizeof want, "\nSet-Cookie: %s=", name);
    for (const char *h = res; (h = strstr(h, want)); h++) {
        const char *v = h + strlen("\nSet-Cookie: ");
        size_t n = strcspn(v, ";\r\n");
        if (n >= size || n == strlen(want) - strlen("\nSet-Cookie: "))
            continue;
        memcpy(out, v, n);
        out[n] = '\0';
        return true;
    }
    return false;
}

void demo_proc_link(const demo_proc *d, const char *text, const char *path,
                    char *out, size_t size)
{
    char prefix[256];
    snprintf(prefix, sizeof prefix, "%s%s", d->base, path);
    const char *link = strstr(text, prefix);
    ck_assert_msg(link != NULL, "no link to %s in: %s", prefix, text);
    const char *p = link + strlen(d->base);
    size_t n = strcspn(p, " \r\n\t\"<>");
    ck_assert_uint_lt(n, size);
    memcpy(out, p, n);
    out[n] = '\0';
}

/* The SMTP fixture for C tests (smtp_env.h). */
#include "smtp_env.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef GUESTUSER_SMTP_ENV_FILE
#define GUESTUSER_SMTP_ENV_FILE "tests/smtp/env"
#endif
#ifndef GUESTUSER_SMTP_SCRIPT
#define GUESTUSER_SMTP_SCRIPT "tests/smtp/smtp-fixture.sh"
#endif
#ifndef GUESTUSER_SMTP_INSPECT
#define GUESTUSER_SMTP_INSPECT "tests/smtp/smtp-inspect.py"
#endif
#ifndef GUESTUSER_SMTP_PRIVATE_BASE
#define GUESTUSER_SMTP_PRIVATE_BASE "tests/smtp-private"
#endif

extern char **environ;

enum { MAX_ENTRIES = 64 };

struct smtp_server {
    char *dir; /* a private server's directory; NULL for ctest's */
    size_t n;
    struct {
        char *key;
        char *value;
    } entries[MAX_ENTRIES];
};

static bool load_env(smtp_server *srv, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) >= 0 && srv->n < MAX_ENTRIES) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        char *eq = strchr(line, '=');
        if (!eq || eq == line)
            continue;
        *eq = '\0';
        srv->entries[srv->n].key = strdup(line);
        srv->entries[srv->n].value = strdup(eq + 1);
        if (srv->entries[srv->n].key && srv->entries[srv->n].value)
            srv->n++;
    }
    free(line);
    fclose(f);
    return srv->n > 0;
}

static void free_entries(smtp_server *srv)
{
    for (size_t i = 0; i < srv->n; i++) {
        free(srv->entries[i].key);
        free(srv->entries[i].value);
    }
    srv->n = 0;
}

static smtp_server fixture;
static bool fixture_ok;
static pthread_once_t fixture_once = PTHREAD_ONCE_INIT;

static void load_fixture(void)
{
    const char *path = getenv("SMTP_ENV_FILE");
    if (!path || !*path)
        path = GUESTUSER_SMTP_ENV_FILE;
    fixture_ok = load_env(&fixture, path);
    if (!fixture_ok)
        fprintf(stderr,
                "smtp_env: cannot read %s: is the smtp fixture running? "
                "(ctest starts it for tests that require the fixture `smtp`: "
                "tests/smtp/README.md)\n",
                path);
}

const smtp_server *smtp_fixture(void)
{
    pthread_once(&fixture_once, load_fixture);
    return fixture_ok ? &fixture : NULL;
}

const char *smtp_server_env(const smtp_server *srv, const char *key)
{
    if (!srv || !key)
        return NULL;
    for (size_t i = 0; i < srv->n; i++)
        if (strcmp(srv->entries[i].key, key) == 0)
            return srv->entries[i].value;
    return NULL;
}

const char *smtp_env(const char *key)
{
    return smtp_server_env(smtp_fixture(), key);
}

/* Runs ARGV; with @p out, its standard output is collected there
 * (malloc'd). True when it exited 0. */
static bool run(char *const argv[], char **out)
{
    int fds[2] = {-1, -1};
    if (out) {
        *out = NULL;
        if (pipe(fds) != 0)
            return false;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (out) {
        posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
        posix_spawn_file_actions_addclose(&fa, fds[0]);
        posix_spawn_file_actions_addclose(&fa, fds[1]);
    }
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (out)
        close(fds[1]);
    if (rc != 0) {
        if (out)
            close(fds[0]);
        fprintf(stderr, "smtp_env: cannot run %s: %s\n", argv[0], strerror(rc));
        return false;
    }
    char *buf = NULL;
    size_t len = 0;
    if (out) {
        size_t cap = 0;
        for (;;) {
            if (len + 4096 + 1 > cap) {
                cap = cap ? cap * 2 : 8192;
                char *p = realloc(buf, cap);
                if (!p)
                    break;
                buf = p;
            }
            ssize_t got = read(fds[0], buf + len, cap - len - 1);
            if (got < 0 && errno == EINTR)
                continue;
            if (got <= 0)
                break;
            len += (size_t)got;
        }
        close(fds[0]);
        if (buf)
            buf[len] = '\0';
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (out && ok && buf)
        *out = buf;
    else
        free(buf);
    return ok && (!out || *out);
}

static bool fixture_script(const smtp_server *srv, const char *cmd)
{
    const char *script = smtp_server_env(srv, "SMTP_FIXTURE_SCRIPT");
    const char *dir = smtp_server_env(srv, "SMTP_FIXTURE_DIR");
    if (!script || !dir)
        return false;
    char *argv[] = {"bash", (char *)script, (char *)cmd, (char *)dir, NULL};
    return run(argv, NULL);
}

bool smtp_server_stop(const smtp_server *srv)
{
    return fixture_script(srv, "stop");
}

bool smtp_server_resume(const smtp_server *srv)
{
    return fixture_script(srv, "resume");
}

smtp_server *smtp_private_start(const char *name)
{
    smtp_server *srv = calloc(1, sizeof *srv);
    char dir[1024], env[1100];
    snprintf(dir, sizeof dir, "%s/%s-%ld", GUESTUSER_SMTP_PRIVATE_BASE, name,
             (long)getpid());
    snprintf(env, sizeof env, "%s/env", dir);
    char *argv[] = {"bash", GUESTUSER_SMTP_SCRIPT, "start", dir, NULL};
    if (!srv || !(srv->dir = strdup(dir)) || !run(argv, NULL) ||
        !load_env(srv, env)) {
        fprintf(stderr, "smtp_env: could not start a server in %s\n", dir);
        smtp_private_free(srv);
        return NULL;
    }
    return srv;
}

void smtp_private_free(smtp_server *srv)
{
    if (!srv)
        return;
    if (srv->dir) {
        char *stop[] = {"bash", GUESTUSER_SMTP_SCRIPT, "stop", srv->dir, NULL};
        run(stop, NULL);
        char *rm[] = {"rm", "-rf", srv->dir, NULL};
        run(rm, NULL);
        free(srv->dir);
    }
    free_entries(srv);
    free(srv);
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            char *p = realloc(buf, cap);
            if (!p) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = p;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
    }
    fclose(f);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

static char *envelope_value(const char *text, const char *key)
{
    size_t klen = strlen(key);
    for (const char *p = text; p && *p;) {
        const char *eol = strchr(p, '\n');
        size_t n = eol ? (size_t)(eol - p) : strlen(p);
        if (n > klen && strncmp(p, key, klen) == 0 && p[klen] == '=')
            return strndup(p + klen + 1, n - klen - 1);
        p = eol ? eol + 1 : NULL;
    }
    return strdup("");
}

static bool has_rcpt(const char *list, const char *rcpt)
{
    size_t n = strlen(rcpt);
    for (const char *p = list; *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == n && strncasecmp(p, rcpt, n) == 0)
            return true;
        if (!comma)
            break;
        p = comma + 1;
    }
    return false;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

size_t smtp_messages(const smtp_server *srv, const char *rcpt,
                     smtp_message **out)
{
    *out = NULL;
    const char *dir = smtp_server_env(srv, "SMTP_DIR");
    DIR *d = dir ? opendir(dir) : NULL;
    if (!d)
        return 0;
    char **names = NULL;
    size_t n_names = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".eml") != 0)
            continue;
        if (n_names == cap) {
            cap = cap ? cap * 2 : 16;
            char **p = realloc(names, cap * sizeof *names);
            if (!p)
                break;
            names = p;
        }
        names[n_names] = strndup(e->d_name, len - 4);
        if (names[n_names])
            n_names++;
    }
    closedir(d);
    if (n_names)
        qsort(names, n_names, sizeof *names, by_name);
    smtp_message *msgs = n_names ? calloc(n_names, sizeof *msgs) : NULL;
    size_t n = 0;
    for (size_t i = 0; i < n_names; i++) {
        char path[2048];
        snprintf(path, sizeof path, "%s/%s.envelope", dir, names[i]);
        char *envelope = read_file(path, NULL);
        snprintf(path, sizeof path, "%s/%s.eml", dir, names[i]);
        free(names[i]);
        char *rcpt_to = envelope ? envelope_value(envelope, "RCPT_TO") : NULL;
        if (!msgs || !envelope || !rcpt_to ||
            (rcpt && !has_rcpt(rcpt_to, rcpt))) {
            free(envelope);
            free(rcpt_to);
            continue;
        }
        smtp_message *m = &msgs[n];
        m->rcpt_to = rcpt_to;
        m->path = strdup(path);
        m->raw = read_file(path, &m->raw_len);
        m->listener = envelope_value(envelope, "LISTENER");
        m->mail_from = envelope_value(envelope, "MAIL_FROM");
        m->auth_user = envelope_value(envelope, "AUTH_USER");
        char *tls = envelope_value(envelope, "TLS");
        m->tls = tls && strcmp(tls, "1") == 0;
        free(tls);
        free(envelope);
        n++;
    }
    free(names);
    if (n == 0) {
        free(msgs);
        msgs = NULL;
    }
    *out = msgs;
    return n;
}

size_t smtp_wait_messages(const smtp_server *srv, const char *rcpt, size_t n,
                          int timeout_ms, smtp_message **out)
{
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        size_t got = smtp_messages(srv, rcpt, out);
        clock_gettime(CLOCK_MONOTONIC, &now);
        long waited = (now.tv_sec - start.tv_sec) * 1000L +
                      (now.tv_nsec - start.tv_nsec) / 1000000L;
        if (got >= n || waited >= timeout_ms)
            return got;
        smtp_messages_free(*out, got);
        *out = NULL;
        nanosleep(&(struct timespec){.tv_nsec = 50 * 1000000L}, NULL);
    }
}

void smtp_messages_free(smtp_message *msgs, size_t n)
{
    if (!msgs)
        return;
    for (size_t i = 0; i < n; i++) {
        free(msgs[i].path);
        free(msgs[i].raw);
        free(msgs[i].listener);
        free(msgs[i].mail_from);
        free(msgs[i].rcpt_to);
        free(msgs[i].auth_user);
    }
    free(msgs);
}

char *smtp_inspect(const char *path, const char *field)
{
    char *out = NULL;
    char *argv[] = {"python3", GUESTUSER_SMTP_INSPECT, (char *)path,
                    (char *)field, NULL};
    if (!run(argv, &out))
        return NULL;
    return out;
}

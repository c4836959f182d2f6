/* Sends requests that a server gives up on, or that the client gives up on,
 * and prints the server's resident memory before and after each kind:
 *   stress_abandoned PORT PID [COUNT] [report-only]
 * (COUNT per kind, default 10000; report-only for a sanitizer build, whose
 * resident memory includes AddressSanitizer's quarantine of freed blocks)
 * Bounded: 1.5 x COUNT connections per kind (half of them a warm-up),
 * none waiting longer than 2 s.
 * Exit status 1 when any kind grows the server by 2 MiB or more. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CLIENTS 8
#define LIMIT_KB 2048

typedef struct kind {
    const char *name;
    bool client_leaves; /* close right after sending, never read */
    char *request;
    size_t len;
} kind;

static int port;
static kind *current;
static _Atomic long next_index, total, failed_connects;

static long rss_kb(int pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6))
            kb = strtol(line + 6, NULL, 10);
    fclose(f);
    return kb;
}

static char *build(const char *head, size_t fill, char fill_char,
                   const char *tail, size_t *len)
{
    size_t hl = strlen(head), tl = strlen(tail);
    char *r = malloc(hl + fill + tl + 1);
    if (!r)
        exit(2);
    memcpy(r, head, hl);
    memset(r + hl, fill_char, fill);
    memcpy(r + hl + fill, tail, tl + 1);
    *len = hl + fill + tl;
    return r;
}

static char *many_args(size_t *len)
{
    size_t cap = 64000, n = 0;
    char *r = malloc(cap);
    if (!r)
        exit(2);
    n += (size_t)snprintf(r, cap, "GET /allow_guest_user/?");
    for (int i = 0; i < 2000; i++)
        n += (size_t)snprintf(r + n, cap - n, "a%d=%d&", i, i);
    n += (size_t)snprintf(r + n, cap - n,
                          " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    *len = n;
    return r;
}

static char *chunked_too_large(size_t *len)
{
    size_t cap = 200000, n = 0;
    char *r = malloc(cap);
    if (!r)
        exit(2);
    n += (size_t)snprintf(r, cap,
                          "POST /accounts/login/ HTTP/1.1\r\nHost: x\r\n"
                          "Transfer-Encoding: chunked\r\nConnection: close\r\n"
                          "Content-Type: application/json\r\n\r\n");
    for (int i = 0; i < 100; i++) {
        n += (size_t)snprintf(r + n, cap - n, "3e8\r\n");
        memset(r + n, 'x', 1000);
        n += 1000;
        n += (size_t)snprintf(r + n, cap - n, "\r\n");
    }
    n += (size_t)snprintf(r + n, cap - n, "0\r\n\r\n");
    *len = n;
    return r;
}

static void one(const kind *k)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return;
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        failed_connects++;
        close(fd);
        return;
    }
    const char *p = k->request;
    size_t left = k->len;
    while (left) {
        ssize_t w = send(fd, p, left, MSG_NOSIGNAL);
        if (w <= 0)
            break;
        p += w;
        left -= (size_t)w;
    }
    if (!k->client_leaves) {
        /* Read the server's answer (or its close), at most 2 s. */
        char buf[8192];
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        while (poll(&pf, 1, 2000) > 0 && recv(fd, buf, sizeof buf, 0) > 0)
            ;
    }
    close(fd);
}

static long count_per_kind;

static void *client(void *arg)
{
    (void)arg;
    for (;;) {
        long i = next_index++;
        if (i >= count_per_kind)
            return NULL;
        one(current);
        total++;
    }
}

static void run(kind *k, long count)
{
    current = k;
    count_per_kind = count;
    next_index = 0;
    pthread_t t[CLIENTS];
    for (int i = 0; i < CLIENTS; i++)
        pthread_create(&t[i], NULL, client, NULL);
    for (int i = 0; i < CLIENTS; i++)
        pthread_join(t[i], NULL);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s PORT PID [COUNT]\n", argv[0]);
        return 2;
    }
    port = atoi(argv[1]);
    int pid = atoi(argv[2]);
    long count = argc > 3 ? atol(argv[3]) : 10000;
    kind kinds[7] = {
        {"2,000 query arguments", false, NULL, 0},
        {"100 KB header", false, NULL, 0},
        {"body never sent, client leaves", true, NULL, 0},
        {"headers cut off, client leaves", true, NULL, 0},
        {"declared body over the limit", false, NULL, 0},
        {"chunked body over the limit", false, NULL, 0},
        {"malformed request line", false, NULL, 0},
    };
    kinds[0].request = many_args(&kinds[0].len);
    kinds[1].request =
        build("GET /allow_guest_user/ HTTP/1.1\r\nX-Big: ", 100000, 'b',
              "\r\nHost: x\r\nConnection: close\r\n\r\n", &kinds[1].len);
    kinds[2].request = build("POST /accounts/login/ HTTP/1.1\r\nHost: x\r\n"
                             "Content-Type: application/x-www-form-"
                             "urlencoded\r\nContent-Length: 3000\r\n\r\n",
                             11, 'v', "", &kinds[2].len);
    kinds[3].request = build("GET /allow_guest_user/ HTTP/1.1\r\nHost: x\r\n"
                             "User-Ag",
                             0, 0, "", &kinds[3].len);
    kinds[4].request =
        build("POST /accounts/login/ HTTP/1.1\r\nHost: x\r\n"
              "Content-Length: 100000000\r\nConnection: close\r\n\r\n",
              3, 'a', "", &kinds[4].len);
    kinds[5].request = chunked_too_large(&kinds[5].len);
    kinds[6].request =
        build("\x01\x02 garbage\r\n\r\n", 0, 0, "", &kinds[6].len);

    printf("%-34s %8s %10s %10s %9s %7s\n", "abandoned kind", "requests",
           "rss before", "rss after", "growth", "seconds");
    int bad = 0;
    for (int i = 0; i < 7; i++) {
        /* Warm up first with half as many: a server with many worker
         * threads (CivetWeb's 50) spreads them over glibc's per-thread
         * arenas, each of which keeps its freed blocks; that working set
         * is reached once, a leak grows with every request after it. */
        run(&kinds[i], count / 2 > 200 ? count / 2 : 200);
        long before = rss_kb(pid);
        double t0 = now_s();
        run(&kinds[i], count);
        double secs = now_s() - t0;
        long after = rss_kb(pid);
        if (before < 0 || after < 0) {
            printf("%-34s the server (pid %d) is gone\n", kinds[i].name, pid);
            return 1;
        }
        long growth = after - before;
        if (growth >= LIMIT_KB)
            bad = 1;
        printf("%-34s %8ld %7ld KB %7ld KB %+6ld KB %7.1f\n", kinds[i].name,
               count, before, after, growth, secs);
        fflush(stdout);
        free(kinds[i].request);
    }
    printf("connections that failed to connect: %ld\n", (long)failed_connects);
    if (argc > 4 && !strcmp(argv[4], "report-only")) {
        printf("result: reported, not judged (a sanitizer build keeps freed "
               "memory in quarantine)\n");
        return 0;
    }
    printf("result: %s (growth bound %d KB per kind)\n", bad ? "FAIL" : "ok",
           LIMIT_KB);
    return bad;
}

/* Trickling connections from many addresses while a normal client uses
 * another:
 *   stress_trickle PORT [CONNS] [ADDRS] [SECONDS] [TRICKLE_MS]
 * CONNS (10000) connections, spread over ADDRS (100) loopback addresses
 * 127.0.1.1, 127.0.1.2, ..., each send one byte of a request line every
 * TRICKLE_MS (2000) ms and never finish it; a connection the server closes
 * (or refuses) is opened again at the next tick. Meanwhile a client on
 * 127.0.0.2 sends GET /healthz ten times a second on a connection of its
 * own each and times the answer. Runs SECONDS (60) after the connections
 * are open, then prints the normal client's latencies (p50, p99, max),
 * how many of its requests were answered, and how many trickling
 * connections were open at the end and were opened in all. Raises
 * RLIMIT_NOFILE as far as the hard limit allows. Exit status 1 when a
 * normal request got no answer or p99 was 50 ms or more. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TARGET_P99_MS 50
#define MAX_SAMPLES 100000

static int port;
static _Atomic bool done;

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double now_ms_f(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static int dial(const char *source)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, source, &a.sin_addr);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    a.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0 &&
        errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

/* ---- the normal client ---- */

static double samples[MAX_SAMPLES];
static int nsamples, unanswered;

static bool one_request(double *ms)
{
    double t0 = now_ms_f();
    int fd = dial("127.0.0.2");
    if (fd < 0)
        return false;
    int flags = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    static const char req[] = "GET /healthz HTTP/1.1\r\nHost: localhost\r\n"
                              "Connection: close\r\n\r\n";
    char buf[2048];
    bool ok = send(fd, req, sizeof req - 1, MSG_NOSIGNAL) ==
                  (ssize_t)(sizeof req - 1) &&
              recv(fd, buf, sizeof buf, 0) > 12 &&
              strncmp(buf, "HTTP/1.1 200", 12) == 0;
    close(fd);
    *ms = now_ms_f() - t0;
    return ok;
}

static void *normal_client(void *arg)
{
    (void)arg;
    while (!atomic_load(&done)) {
        double ms;
        if (!one_request(&ms))
            unanswered++;
        else if (nsamples < MAX_SAMPLES)
            samples[nsamples++] = ms;
        usleep(100 * 1000);
    }
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* ---- the trickling connections ---- */

typedef struct trickler {
    int fd;
    int sent; /* bytes of the line sent */
    char addr[16];
} trickler;

static const char line[] =
    "GET /healthz?padding-so-the-line-takes-a-long-time-to-trickle-out-"
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa "
    "HTTP/1.1\r\n";

/* Whether the server closed @p fd (a read of 0 or an error). */
static bool gone(int fd)
{
    char b[512];
    ssize_t n = recv(fd, b, sizeof b, MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: stress_trickle PORT [CONNS] [ADDRS] [SECONDS] "
                        "[TRICKLE_MS]\n");
        return 2;
    }
    port = (int)strtol(argv[1], NULL, 10);
    int conns = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 10000;
    int addrs = argc > 3 ? (int)strtol(argv[3], NULL, 10) : 100;
    int seconds = argc > 4 ? (int)strtol(argv[4], NULL, 10) : 60;
    int trickle_ms = argc > 5 ? (int)strtol(argv[5], NULL, 10) : 2000;
    if (port <= 0 || conns <= 0 || addrs <= 0 || addrs > 250 || seconds <= 0 ||
        trickle_ms <= 0)
        return 2;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
        if (rl.rlim_cur < (rlim_t)conns + 64) {
            fprintf(stderr,
                    "stress_trickle: RLIMIT_NOFILE %llu is too low "
                    "for %d connections\n",
                    (unsigned long long)rl.rlim_cur, conns);
            return 2;
        }
    }
    trickler *t = calloc((size_t)conns, sizeof *t);
    if (!t)
        return 2;
    for (int i = 0; i < conns; i++) {
        t[i].fd = -1;
        snprintf(t[i].addr, sizeof t[i].addr, "127.0.1.%d", 1 + i % addrs);
    }
    /* Open them in steps, as a real attack ramps up. */
    long opened = 0;
    long long start = now_ms();
    for (int i = 0; i < conns; i++) {
        t[i].fd = dial(t[i].addr);
        opened += t[i].fd >= 0;
        if (i % 500 == 499)
            usleep(20 * 1000);
    }
    printf("trickle: %d connections from %d addresses opened in %lld ms\n",
           conns, addrs, now_ms() - start);
    fflush(stdout);

    pthread_t normal;
    pthread_create(&normal, NULL, normal_client, NULL);
    long long end = now_ms() + (long long)seconds * 1000;
    long closed_by_server = 0;
    while (now_ms() < end) {
        long long tick = now_ms();
        for (int i = 0; i < conns; i++) {
            if (t[i].fd >= 0 && gone(t[i].fd)) {
                close(t[i].fd);
                t[i].fd = -1;
                closed_by_server++;
            }
            if (t[i].fd < 0) {
                t[i].fd = dial(t[i].addr);
                t[i].sent = 0;
                opened += t[i].fd >= 0;
                continue;
            }
            if (t[i].sent < (int)sizeof line - 3 &&
                send(t[i].fd, line + t[i].sent, 1,
                     MSG_NOSIGNAL | MSG_DONTWAIT) == 1)
                t[i].sent++;
        }
        long long spent = now_ms() - tick;
        if (spent < trickle_ms)
            usleep((useconds_t)(trickle_ms - spent) * 1000);
    }
    int open_now = 0;
    for (int i = 0; i < conns; i++)
        if (t[i].fd >= 0 && !gone(t[i].fd))
            open_now++;
    atomic_store(&done, true);
    pthread_join(normal, NULL);

    qsort(samples, (size_t)nsamples, sizeof *samples, cmp_double);
    double p50 = nsamples ? samples[nsamples / 2] : 0;
    double p99 = nsamples ? samples[(nsamples * 99) / 100] : 0;
    double max = nsamples ? samples[nsamples - 1] : 0;
    printf("trickle: normal client %d of %d answered, p50 %.1f ms, p99 "
           "%.1f ms, max %.1f ms\n",
           nsamples, nsamples + unanswered, p50, p99, max);
    printf("trickle: %d trickling connections open at the end, %ld opened "
           "in all, %ld closed by the server\n",
           open_now, opened, closed_by_server);
    for (int i = 0; i < conns; i++)
        if (t[i].fd >= 0)
            close(t[i].fd);
    free(t);
    return unanswered || p99 >= TARGET_P99_MS ? 1 : 0;
}

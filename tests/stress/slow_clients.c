/* A slow-header attack from one address while a normal client uses another:
 *   stress_slow_clients PORT [CONNS] [SECONDS] [TRICKLE_MS] [report-only]
 * CONNS (600) connections from 127.0.0.3 each send a request line, then one
 * header line every TRICKLE_MS (1000) ms and never finish; a connection the
 * server closes is opened again at the next tick. Meanwhile a client on
 * 127.0.0.2 sends GET /whoami four times a second and times each answer.
 * Runs SECONDS (30), then prints the normal client's latencies and what the
 * attack held. Exit status 1 when a normal request took 2 s or more or got
 * no answer; with report-only (for a server known to have no per-address
 * limit) the figures are printed and the exit status says only whether
 * the server answers again once the attack ends. */
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
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BOUND_MS 2000
#define MAX_SAMPLES 4096

static int port;
static _Atomic bool done;

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int dial(const char *source, bool nonblock)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in src = {.sin_family = AF_INET};
    inet_pton(AF_INET, source, &src.sin_addr);
    if (bind(fd, (struct sockaddr *)&src, sizeof src) != 0) {
        close(fd);
        return -1;
    }
    if (nonblock)
        fcntl(fd, F_SETFL, O_NONBLOCK);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 &&
        errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

typedef struct victim_stats {
    long long samples[MAX_SAMPLES];
    int n;
    int unanswered;
} victim_stats;

/* One normal request; its latency in ms, or -1 without an answer within
 * 10 s. */
static long long timed_request(void)
{
    long long t0 = now_ms();
    int fd = dial("127.0.0.2", false);
    if (fd < 0)
        return -1;
    static const char req[] = "GET /whoami HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                              "Connection: close\r\n\r\n";
    if (send(fd, req, sizeof req - 1, MSG_NOSIGNAL) !=
        (ssize_t)sizeof req - 1) {
        close(fd);
        return -1;
    }
    char buf[4096];
    size_t got = 0;
    for (;;) {
        long long left = t0 + 10000 - now_ms();
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            break;
        ssize_t r = recv(fd, buf, sizeof buf, 0);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    return got >= 12 ? now_ms() - t0 : -1;
}

static void *victim(void *arg)
{
    victim_stats *v = arg;
    while (!done && v->n < MAX_SAMPLES) {
        long long ms = timed_request();
        if (ms < 0)
            v->unanswered++;
        else
            v->samples[v->n++] = ms;
        struct timespec pause = {0, 250 * 1000000L};
        nanosleep(&pause, NULL);
    }
    return NULL;
}

static int cmp(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s PORT [CONNS] [SECONDS] [TRICKLE_MS]\n",
                argv[0]);
        return 2;
    }
    port = atoi(argv[1]);
    int conns = argc > 2 ? atoi(argv[2]) : 600;
    int seconds = argc > 3 ? atoi(argv[3]) : 30;
    int trickle = argc > 4 ? atoi(argv[4]) : 1000;
    if (conns < 1 || conns > 5000 || seconds < 1 || seconds > 600 ||
        trickle < 10)
        return 2;
    int *fds = malloc(sizeof *fds * (size_t)conns);
    int *lines = calloc((size_t)conns, sizeof *lines);
    if (!fds || !lines)
        return 2;
    for (int i = 0; i < conns; i++)
        fds[i] = -1;

    victim_stats *v = calloc(1, sizeof *v);
    if (!v)
        return 2;
    /* The baseline: the normal client alone, before the attack. */
    long long quiet = timed_request();

    pthread_t vt;
    pthread_create(&vt, NULL, victim, v);
    long long end = now_ms() + (long long)seconds * 1000;
    long opened = 0, closed_by_server = 0;
    int most_open = 0;
    char buf[512];
    while (now_ms() < end) {
        int open_now = 0;
        for (int i = 0; i < conns; i++) {
            if (fds[i] >= 0) {
                /* Anything readable means an answer or a close: either way
                 * the server let go of this one. */
                ssize_t r = recv(fds[i], buf, sizeof buf, MSG_DONTWAIT);
                if (r == 0 || (r < 0 && errno != EAGAIN &&
                               errno != EWOULDBLOCK && errno != ENOTCONN)) {
                    close(fds[i]);
                    fds[i] = -1;
                    closed_by_server++;
                }
            }
            if (fds[i] < 0) {
                fds[i] = dial("127.0.0.3", true);
                lines[i] = 0;
                if (fds[i] >= 0)
                    opened++;
            }
            if (fds[i] < 0)
                continue;
            char line[48];
            int n = lines[i] == 0 ? snprintf(line, sizeof line,
                                             "GET /whoami HTTP/1.1\r\n")
                                  : snprintf(line, sizeof line,
                                             "X-Slow-%d: %d\r\n", lines[i], i);
            if (send(fds[i], line, (size_t)n, MSG_NOSIGNAL) == n)
                lines[i]++;
            open_now++;
        }
        if (open_now > most_open)
            most_open = open_now;
        struct timespec pause = {trickle / 1000,
                                 (long)(trickle % 1000) * 1000000L};
        nanosleep(&pause, NULL);
    }
    done = true;
    pthread_join(vt, NULL);
    for (int i = 0; i < conns; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    /* Recovery: the normal client once the attack has ended. */
    long long after = timed_request();

    qsort(v->samples, (size_t)v->n, sizeof *v->samples, cmp);
    long long p50 = v->n ? v->samples[v->n / 2] : -1;
    long long p99 = v->n ? v->samples[(v->n * 99) / 100] : -1;
    long long max = v->n ? v->samples[v->n - 1] : -1;
    printf("attack: %d connections from 127.0.0.3, a header line every %d "
           "ms, %d s\n",
           conns, trickle, seconds);
    printf("  attacker connections opened %ld, closed by the server %ld, "
           "open at once (max) %d\n",
           opened, closed_by_server, most_open);
    printf("normal client on 127.0.0.2: before %lld ms; during: %d answered, "
           "%d unanswered, p50 %lld ms, p99 %lld ms, max %lld ms; after %lld "
           "ms\n",
           quiet, v->n, v->unanswered, p50, p99, max, after);
    bool report_only = argc > 5 && !strcmp(argv[5], "report-only");
    bool ok = v->n > 0 && v->unanswered == 0 && max < BOUND_MS && after >= 0;
    if (report_only) {
        printf("result: %s during the attack (reported, not judged); %s "
               "after it\n",
               ok ? "served" : "blocked",
               after >= 0 ? "recovered" : "NOT recovered");
        ok = after >= 0;
    } else {
        printf("result: %s (every normal request answered within %d ms)\n",
               ok ? "ok" : "FAIL", BOUND_MS);
    }
    free(fds);
    free(lines);
    free(v);
    return ok ? 0 : 1;
}

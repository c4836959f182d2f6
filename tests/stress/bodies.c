/* Request bodies that never end, against a running server:
 *   stress_bodies PORT [SECONDS]
 * Two cases, each on a connection of its own: an endless chunked body
 * (64 KiB chunks, as fast as the server takes them) and a body announced
 * as 2000 MiB by its Content-Length and then sent the same way. Each runs
 * until the server has answered and closed, or SECONDS (15) pass, and
 * prints the status the server answered and the body bytes the client had
 * handed to the socket when the answer came and when the close came, and
 * of those the bytes the server's end acknowledged (TCP_INFO): what the
 * server took in before it said no, up to its socket buffer. Exit status 1
 * when a case got no 413 or was not closed within SECONDS. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHUNK 65536

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

/* Of @p written bytes, those the server's end has acknowledged: the rest
 * still waits in this socket's send queue. */
static unsigned long long acked(int fd, unsigned long long written)
{
    int queued = 0;
    if (ioctl(fd, TIOCOUTQ, &queued) != 0 || queued < 0)
        return 0;
    return written > (unsigned long long)queued
               ? written - (unsigned long long)queued
               : 0;
}

/* The body bytes among them, once the @p head bytes are taken. */
static unsigned long long body_acked(int fd, size_t head,
                                     unsigned long long body)
{
    unsigned long long all = acked(fd, head + body);
    return all > head ? all - head : 0;
}

typedef struct result {
    int status; /* 0: no answer */
    bool closed;
    unsigned long long at_answer, at_close; /* body bytes sent */
    unsigned long long acked_at_answer, acked_at_close;
    long long ms;
} result;

/* Sends @p head, then @p frame over and over, reading whatever comes back,
 * until the server closed or @p seconds pass. */
static result run(int port, const char *head, const char *frame,
                  size_t frame_len, int seconds)
{
    result r = {0};
    int fd = dial(port);
    if (fd < 0) {
        perror("connect");
        return r;
    }
    long long start = now_ms(), deadline = start + seconds * 1000LL;
    size_t head_len = strlen(head), head_off = 0, off = 0;
    unsigned long long sent = 0, taken = 0;
    bool can_send = true;
    char in[4096], answer[64] = "";
    size_t answer_len = 0;
    while (now_ms() < deadline) {
        struct pollfd p = {.fd = fd,
                           .events = POLLIN | (can_send ? POLLOUT : 0)};
        int ready = poll(&p, 1, 100);
        /* Read before the close: a reset empties the send queue. */
        if (can_send)
            taken = body_acked(fd, head_off, sent);
        if (ready <= 0)
            continue;
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = recv(fd, in, sizeof in, 0);
            if (n > 0 && !r.status) {
                r.at_answer = sent;
                r.acked_at_answer = taken;
                size_t take = (size_t)n < sizeof answer - 1 - answer_len
                                  ? (size_t)n
                                  : sizeof answer - 1 - answer_len;
                memcpy(answer + answer_len, in, take);
                answer_len += take;
                answer[answer_len] = '\0';
                int minor, status;
                if (sscanf(answer, "HTTP/1.%d %3d", &minor, &status) == 2)
                    r.status = status;
            }
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
                r.closed = true;
                break;
            }
        }
        if (can_send && (p.revents & POLLOUT)) {
            ssize_t w;
            if (head_off < head_len) {
                w = send(fd, head + head_off, head_len - head_off,
                         MSG_NOSIGNAL);
                if (w > 0)
                    head_off += (size_t)w;
            } else {
                w = send(fd, frame + off, frame_len - off, MSG_NOSIGNAL);
                if (w > 0) {
                    sent += (unsigned long long)w;
                    off = (off + (size_t)w) % frame_len;
                }
            }
            /* The server closed its side: only reading is left. */
            if (w < 0 && errno != EAGAIN && errno != EINTR)
                can_send = false;
        }
    }
    r.at_close = sent;
    r.acked_at_close = taken;
    r.ms = now_ms() - start;
    close(fd);
    return r;
}

static bool report(const char *what, const result *r)
{
    printf("%-34s ", what);
    if (r->status)
        printf("%d after %llu body bytes sent (%llu taken by the server)",
               r->status, r->at_answer, r->acked_at_answer);
    else
        printf("no answer");
    if (r->closed)
        printf(", closed after %llu sent (%llu taken), %lld ms\n", r->at_close,
               r->acked_at_close, r->ms);
    else
        printf(", still open after %llu sent (%llu taken), %lld ms\n",
               r->at_close, r->acked_at_close, r->ms);
    return r->status == 413 && r->closed;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s PORT [SECONDS]\n", argv[0]);
        return 2;
    }
    int port = atoi(argv[1]);
    int seconds = argc > 2 ? atoi(argv[2]) : 15;
    char *frame = malloc(CHUNK + 16);
    if (!frame)
        return 2;
    int n = snprintf(frame, 16, "%x\r\n", CHUNK);
    memset(frame + n, 'x', CHUNK);
    memcpy(frame + n + CHUNK, "\r\n", 2);
    size_t chunked_len = (size_t)n + CHUNK + 2;

    result chunked = run(port,
                         "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         "Content-Type: application/octet-stream\r\n"
                         "Transfer-Encoding: chunked\r\n\r\n",
                         frame, chunked_len, seconds);
    memset(frame, 'x', CHUNK);
    result announced = run(port,
                           "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                           "Content-Type: application/octet-stream\r\n"
                           "Content-Length: 2097152000\r\n\r\n",
                           frame, CHUNK, seconds);
    free(frame);
    bool ok = report("endless chunked body:", &chunked);
    ok = report("Content-Length: 2097152000 (sent):", &announced) && ok;
    return ok ? 0 : 1;
}

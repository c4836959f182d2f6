/* The abuse limits under what an attacker sends, against a running demo:
 *   stress_limits_burst PORT login USER PASSWORD
 *       32 wrong passwords for USER from one address released at the same
 *       instant; 32 unknown names at once from another address; then, from
 *       a third address, 25 failures with random names followed by USER's
 *       right password (the office behind one NAT).
 *   stress_limits_burst PORT ipv6
 *       (the demo behind --trusted-proxy 127.0.0.1) 200 visits from 200
 *       /64s of one /56, then 250 from 250 /56s of one /48, then one from
 *       another /48.
 *   stress_limits_burst PORT cap N
 *       N visits from 49 addresses, 32 at a time.
 * Prints what got through. Exit status 1 when a figure breaks the limit it
 * tests (the limits are read from the environment: LOGIN_LIMIT,
 * ADDRESS_LIMIT, RATE_LIMIT, MAX_GUESTS, SLACK), 2 on a usage or connection
 * error. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* Any 32 letters serve as a CSRF secret when cookies are not signed: the
 * form sends the same value as the cookie. */
#define CSRF "abcdefghijklmnopqrstuvwxyzABCDEF"

static int port;

/* One request on a new connection from @p src; the status (0: none) and
 * whether a session cookie came back. */
static int request(const char *src, const char *method, const char *target,
                   const char *extra_headers, const char *body, bool *session)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return 0;
    struct timeval tv = {.tv_sec = 60};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, src, &a.sin_addr);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return 0;
    }
    struct sockaddr_in to = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    if (connect(fd, (struct sockaddr *)&to, sizeof to) != 0) {
        close(fd);
        return 0;
    }
    char req[2048];
    int n = snprintf(req, sizeof req,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                     "Connection: close\r\n%s"
                     "Content-Length: %zu\r\n\r\n%s",
                     method, target, port, extra_headers ? extra_headers : "",
                     body ? strlen(body) : 0, body ? body : "");
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return 0;
    }
    static _Thread_local char res[65536];
    size_t got = 0;
    ssize_t r;
    while (got < sizeof res - 1 &&
           (r = read(fd, res + got, sizeof res - 1 - got)) > 0)
        got += (size_t)r;
    res[got] = '\0';
    close(fd);
    int status = 0;
    sscanf(res, "HTTP/1.%*d %d", &status);
    if (session)
        *session = strstr(res, "Set-Cookie: sessionid=") != NULL ||
                   strstr(res, "set-cookie: sessionid=") != NULL;
    return status;
}

static int login(const char *src, const char *user, const char *password)
{
    char body[512];
    snprintf(body, sizeof body,
             "username=%s&password=%s&csrfmiddlewaretoken=" CSRF, user,
             password);
    return request(src, "POST", "/accounts/login/",
                   "Cookie: csrftoken=" CSRF "\r\n"
                   "Content-Type: application/x-www-form-urlencoded\r\n",
                   body, NULL);
}

typedef struct shot {
    pthread_barrier_t *go;
    const char *src;
    char user[64];
    int status;
} shot;

static void *fire(void *arg)
{
    shot *s = arg;
    pthread_barrier_wait(s->go);
    s->status = login(s->src, s->user, "wrong-password");
    return NULL;
}

/* 32 logins released by one barrier; counts the answers that checked a
 * password (200: the form again) and those refused (429). */
static void burst(const char *src, const char *user, int *checked, int *refused)
{
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, 32);
    shot s[32];
    pthread_t t[32];
    for (int i = 0; i < 32; i++) {
        s[i] = (shot){.go = &go, .src = src};
        if (user)
            snprintf(s[i].user, sizeof s[i].user, "%s", user);
        else
            snprintf(s[i].user, sizeof s[i].user, "nobody-%d-%d", getpid(), i);
        pthread_create(&t[i], NULL, fire, &s[i]);
    }
    *checked = *refused = 0;
    for (int i = 0; i < 32; i++) {
        pthread_join(t[i], NULL);
        *checked += s[i].status == 200;
        *refused += s[i].status == 429;
    }
    pthread_barrier_destroy(&go);
}

static long env_num(const char *name, long fallback)
{
    const char *v = getenv(name);
    return v && *v ? strtol(v, NULL, 10) : fallback;
}

static int run_login(const char *user, const char *password)
{
    long login_limit = env_num("LOGIN_LIMIT", 5);
    long address_limit = env_num("ADDRESS_LIMIT", 100);
    int checked, refused, bad = 0;
    burst("127.0.0.21", user, &checked, &refused);
    printf("login, one username, 32 at once: %d passwords checked, %d "
           "refused (limit %ld)\n",
           checked, refused, login_limit);
    bad |= checked > login_limit;
    burst("127.0.0.22", NULL, &checked, &refused);
    printf("login, 32 usernames from one address at once: %d checked, %d "
           "refused (address limit %ld)\n",
           checked, refused, address_limit);
    bad |= checked > address_limit;
    int failures = 0;
    for (int i = 0; i < 25; i++) {
        char name[64];
        snprintf(name, sizeof name, "random-%d-%d", getpid(), i);
        failures += login("127.0.0.23", name, "guess") == 200;
    }
    int owner = login("127.0.0.23", user, password);
    printf("one NAT: %d failed logins with random names, then the owner's "
           "right password: %d (%s)\n",
           failures, owner, owner == 302 ? "logged in" : "locked out");
    bad |= owner != 302;
    return bad;
}

static int allow_from(const char *forwarded)
{
    char headers[256];
    snprintf(headers, sizeof headers, "X-Forwarded-For: %s\r\n", forwarded);
    bool session = false;
    int status = request("127.0.0.1", "GET", "/allow_guest_user/", headers,
                         NULL, &session);
    return status == 200 && session;
}

static int run_ipv6(void)
{
    long rate = env_num("RATE_LIMIT", 30);
    int a = 0, b = 0;
    for (int i = 0; i < 200; i++) {
        char ip[64];
        snprintf(ip, sizeof ip, "2001:db8:aa:%x::1", i);
        a += allow_from(ip);
    }
    printf("ipv6: 200 visits from 200 /64s of one /56: %d guests (/64 "
           "budget %ld, /56 budget %ld)\n",
           a, rate, 4 * rate);
    for (int i = 1; i <= 250; i++) {
        char ip[64];
        snprintf(ip, sizeof ip, "2001:db8:bb:%x00::1", i);
        b += allow_from(ip);
    }
    int other = allow_from("2001:db8:cc::1");
    printf("ipv6: 250 visits from 250 /56s of one /48: %d guests (/48 "
           "budget %ld); a visitor from another /48: %s\n",
           b, 8 * rate, other ? "gets a guest" : "gets none");
    return a > 4 * rate || b > 8 * rate || !other;
}

static atomic_int next_visit, guests_made;
static long visits;

static void *visitor(void *arg)
{
    (void)arg;
    int i;
    while ((i = atomic_fetch_add(&next_visit, 1)) < visits) {
        char src[32];
        snprintf(src, sizeof src, "127.0.0.%d", 10 + i % 49);
        bool session = false;
        if (request(src, "GET", "/allow_guest_user/", NULL, NULL, &session) ==
                200 &&
            session)
            atomic_fetch_add(&guests_made, 1);
    }
    return NULL;
}

static int run_cap(long n)
{
    long cap = env_num("MAX_GUESTS", 100);
    long slack = env_num("SLACK", cap / 100 > 100 ? cap / 100 : 100);
    visits = n;
    pthread_t t[32];
    for (int i = 0; i < 32; i++)
        pthread_create(&t[i], NULL, visitor, NULL);
    for (int i = 0; i < 32; i++)
        pthread_join(t[i], NULL);
    int made = atomic_load(&guests_made);
    printf("cap: %ld visits from 49 addresses, 32 at a time: %d guests "
           "(max_guests %ld, allowed overshoot %ld)\n",
           n, made, cap, slack);
    return made > cap + slack;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s PORT login USER PASSWORD | ipv6 | cap N\n",
                argv[0]);
        return 2;
    }
    port = atoi(argv[1]);
    if (!strcmp(argv[2], "login") && argc == 5)
        return run_login(argv[3], argv[4]);
    if (!strcmp(argv[2], "ipv6"))
        return run_ipv6();
    if (!strcmp(argv[2], "cap") && argc == 4)
        return run_cap(atol(argv[3]));
    fprintf(stderr, "%s: unknown mode\n", argv[0]);
    return 2;
}

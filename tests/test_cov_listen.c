/* The session cache's LISTEN connection where test_cache_notify.c does not
 * go: an idle connection sends its heartbeat and keeps hearing changes,
 * and a listen server that accepts the connection but never answers is
 * given up on at db_timeout_ms (the cache stays off, lookups ask the
 * database) and does not hold up guest_ctx_free(); a notification the
 * triggers never send empties the cache, well-formed ones drop only what
 * they name. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "testlib.h"

#define SCHEMA "t_cov_listen"
#define WAIT_MS 20000

static char listen_conninfo[512];
static unsigned timeout_ms;

static void setup(void)
{
    tl_drop_schema(SCHEMA);
    listen_conninfo[0] = '\0';
    timeout_ms = 0;
}

static void cached(guest_config *c)
{
    c->session_cache_ttl = 3600;
    if (listen_conninfo[0])
        c->session_cache_listen_conninfo = listen_conninfo;
    if (timeout_ms)
        c->db_timeout_ms = timeout_ms;
}

static guest_metrics metrics(guest_ctx *ctx)
{
    guest_metrics m;
    guest_metrics_get(ctx, &m);
    return m;
}

static bool listening_is(guest_ctx *ctx, unsigned want)
{
    long long until = tl_now_ms() + WAIT_MS;
    while (metrics(ctx).session_cache_listening != want) {
        if (tl_now_ms() > until)
            return false;
        usleep(5 * 1000);
    }
    return true;
}

static void warm(guest_ctx *ctx, const char *cookie, int64_t id)
{
    ck_assert_int_eq(tl_whoami(ctx, cookie, NULL), id);
    uint64_t hits = metrics(ctx).session_cache_hits;
    ck_assert_int_eq(tl_whoami(ctx, cookie, NULL), id);
    ck_assert_uint_eq(metrics(ctx).session_cache_hits, hits + 1);
}

static bool refused_soon(guest_ctx *ctx, const char *cookie)
{
    long long until = tl_now_ms() + WAIT_MS;
    while (tl_whoami(ctx, cookie, NULL) != 0) {
        if (tl_now_ms() > until)
            return false;
        usleep(5 * 1000);
    }
    return true;
}

/* Longer than the listener's heartbeat interval (5 s). */
#define PAST_A_HEARTBEAT_MS 6500

START_TEST(an_idle_listener_sends_its_heartbeat_and_keeps_hearing)
{
    guest_ctx *a = tl_ctx(SCHEMA, cached), *b = tl_ctx(SCHEMA, cached);
    ck_assert(listening_is(b, 1));
    char cookie[128];
    int64_t g = tl_new_guest(a, cookie, sizeof cookie);
    warm(b, cookie, g);
    /* Nothing happens on the schema for longer than a heartbeat: the
     * empty query goes out and its answer comes back. */
    usleep(PAST_A_HEARTBEAT_MS * 1000);
    ck_assert_uint_eq(metrics(b).session_cache_listening, 1);
    /* Still heard: a change by hand refuses the cached session. */
    char sql[128];
    snprintf(sql, sizeof sql, "DELETE FROM @.sessions WHERE user_id = %lld",
             (long long)g);
    tl_exec_in(SCHEMA, sql);
    ck_assert(refused_soon(b, cookie));
    guest_ctx_free(a);
    guest_ctx_free(b);
}
END_TEST

/* A server that takes connections (the kernel completes them from the
 * backlog) and never says a word. */
static int silent_server(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(listen(fd, 64), 0);
    socklen_t len = sizeof a;
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

START_TEST(a_listen_server_that_never_answers_is_given_up_on)
{
    int port = 0;
    int fd = silent_server(&port);
    snprintf(listen_conninfo, sizeof listen_conninfo,
             "host=127.0.0.1 port=%d sslmode=disable", port);
    timeout_ms = 3000;
    guest_ctx *ctx = tl_ctx(SCHEMA, cached);
    listen_conninfo[0] = '\0';
    /* The first attempt ended (timed out): the context is ready with its
     * cache off, and every lookup asks the database. */
    ck_assert_uint_eq(metrics(ctx).session_cache_listening, 0);
    char cookie[128];
    int64_t g = tl_new_guest(ctx, cookie, sizeof cookie);
    for (int k = 0; k < 3; k++)
        ck_assert_int_eq(tl_whoami(ctx, cookie, NULL), g);
    ck_assert_uint_eq(metrics(ctx).session_cache_hits, 0);
    /* Into its next attempt (after a backoff of 100 ms), then freed while
     * that attempt waits for the silent server. */
    usleep(900 * 1000);
    long long t0 = tl_now_ms();
    guest_ctx_free(ctx);
    long long took = tl_now_ms() - t0;
    /* Not a timing figure: a free that waited for the attempt to time out
     * would take up to db_timeout_ms; one stuck on it, forever. */
    ck_assert_msg(took < 60000, "guest_ctx_free took %lld ms", took);
    close(fd);
}
END_TEST

/* Sends @p payload on the schema's cache channel, as a trigger would. */
static void notify(const char *payload)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT pg_notify('guestuser_cache_' || left(encode(sha256("
             "convert_to('%s', 'UTF8')), 'hex'), 32), '%s')",
             SCHEMA, payload);
    tl_exec(sql);
}

static bool invalidations_reach(guest_ctx *ctx, uint64_t want)
{
    long long until = tl_now_ms() + WAIT_MS;
    while (metrics(ctx).session_cache_invalidations < want) {
        if (tl_now_ms() > until)
            return false;
        usleep(5 * 1000);
    }
    return true;
}

/* After notification @p payload is heard, whether the warmed @p cookie is
 * still answered from the cache. */
static bool still_cached_after(guest_ctx *ctx, const char *cookie, int64_t id,
                               const char *payload)
{
    warm(ctx, cookie, id);
    uint64_t inv = metrics(ctx).session_cache_invalidations;
    notify(payload);
    ck_assert_msg(invalidations_reach(ctx, inv + 1), "%s never heard", payload);
    uint64_t hits = metrics(ctx).session_cache_hits;
    ck_assert_int_eq(tl_whoami(ctx, cookie, NULL), id);
    return metrics(ctx).session_cache_hits == hits + 1;
}

/* A payload the triggers never send empties the whole cache (trust
 * nothing); well-formed ones drop only what they name. */
START_TEST(a_malformed_notification_empties_the_cache)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, cached);
    ck_assert(listening_is(ctx, 1));
    char cookie[128];
    int64_t g = tl_new_guest(ctx, cookie, sizeof cookie);
    char two[200], bad_end[100], hex[65];
    memset(hex, 'a', 64);
    hex[64] = '\0';
    snprintf(two, sizeof two, "s:%s,%s", hex, hex);
    snprintf(bad_end, sizeof bad_end, "s:%sx", hex);
    /* Two tokens of nobody's, and users nobody is: nothing dropped. */
    ck_assert(still_cached_after(ctx, cookie, g, two));
    ck_assert(still_cached_after(ctx, cookie, g, "u:999999998,999999999"));
    /* Not hex, trailing garbage, not a number, too many users. */
    ck_assert(!still_cached_after(ctx, cookie, g, "s:zz"));
    ck_assert(!still_cached_after(ctx, cookie, g, bad_end));
    ck_assert(!still_cached_after(ctx, cookie, g, "u:12x"));
    ck_assert(!still_cached_after(ctx, cookie, g, "u:1,2,3,4,5,6,7,8,9"));
    guest_ctx_free(ctx);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cov_listen");
    TCase *tc = tcase_create("listen");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, an_idle_listener_sends_its_heartbeat_and_keeps_hearing);
    tcase_add_test(tc, a_listen_server_that_never_answers_is_given_up_on);
    tcase_add_test(tc, a_malformed_notification_empties_the_cache);
    suite_add_tcase(s, tc);
    return tl_run(s);
}

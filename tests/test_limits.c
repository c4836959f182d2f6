/* The abuse limits against the fixture database: guest creation per client
 * address (shared by contexts and processes), the login and conversion
 * attempt limits, the max_guests cap, their cleanup, and the round trips
 * they must not add. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/core.h"
#include "testlib.h"

#define SCHEMA "t_limits"

static void setup(void)
{
    tl_drop_schema(SCHEMA);
}

static long long count(const char *sql)
{
    return tl_scalar_in(SCHEMA, sql);
}

/* A context on the test schema with @p tweak applied (cheap hashing). */
static guest_ctx *ctx_with(void (*tweak)(guest_config *))
{
    return tl_ctx(SCHEMA, tweak);
}

/* One request from @p addr through @p fn. */
static void request(guest_ctx *ctx, tl_http *h, const char *addr,
                    const char *method, const char *target, const char *cookie,
                    const char *body, bool json, guest_handler_fn fn,
                    void *userdata)
{
    tl_http_init(h, method, target);
    h->peer = addr;
    tl_http_add(h, "Host", "testserver");
    if (cookie && *cookie)
        tl_http_add(h, "Cookie", cookie);
    if (json)
        tl_http_add(h, "Accept", "application/json");
    if (body) {
        tl_http_add(h, "Content-Type", "application/x-www-form-urlencoded");
        h->body = body;
    }
    tl_http_run(ctx, h, fn, userdata);
}

/* What a GUEST_ALLOW handler saw. */
typedef struct seen {
    int runs;
    int64_t id;
} seen;

static void seen_handler(guest_req *req, void *ud)
{
    seen *s = ud;
    const guest_user *u;
    ck_assert_int_eq(guest_req_user(req, &u, NULL), GUEST_OK);
    s->runs++;
    s->id = guest_user_id(u);
    guest_res_send(req, 200, "text/plain", "ok\n");
}

static void allow_handler(guest_req *req, void *ud)
{
    guest_allow(req, seen_handler, ud);
}

/* GUEST_ALLOW from @p addr: the new guest's id, 0 when none was made. */
static int64_t allow(guest_ctx *ctx, const char *addr, tl_http *keep)
{
    tl_http h;
    seen s = {0};
    request(ctx, &h, addr, "GET", "/", NULL, NULL, false, allow_handler, &s);
    char cookie[128];
    bool has_cookie = tl_http_cookie(&h, "sessionid", cookie, sizeof cookie);
    if (h.status == 200) {
        ck_assert_int_eq(s.runs, 1);
        ck_assert(has_cookie == (s.id != 0));
    }
    if (keep)
        *keep = h;
    else
        tl_http_free(&h);
    return s.id;
}

/* ---- pieces without the database ---- */

START_TEST(client_keys)
{
    char k[GUEST__CLIENT_KEY_BUF];
    guest__client_key("203.0.113.7", k);
    ck_assert_str_eq(k, "203.0.113.7");
    guest__client_key("2001:db8:1:2:aaaa:bbbb:cccc:dddd", k);
    ck_assert_str_eq(k, "2001:db8:1:2::/64");
    guest__client_key("[2001:db8:1:2::1]", k);
    ck_assert_str_eq(k, "2001:db8:1:2::/64");
    guest__client_key("fe80::1%eth0", k);
    ck_assert_str_eq(k, "fe80::/64");
    /* an IPv4 client on a dual-stack socket is still one IPv4 address */
    guest__client_key("::ffff:198.51.100.9", k);
    ck_assert_str_eq(k, "198.51.100.9");
    guest__client_key(NULL, k);
    ck_assert_str_eq(k, "unknown");
    guest__client_key("not an address", k);
    ck_assert_str_eq(k, "unknown");
    guest__client_key("1.2.3.4:80", k);
    ck_assert_str_eq(k, "unknown");
    /* the wider keys: IPv6 /56 and /48, and each client's network */
    guest__client_keys ks;
    guest__client_keys_of("2001:db8:1:2ff:aaaa::1", &ks);
    ck_assert_str_eq(ks.addr, "2001:db8:1:2ff::/64");
    ck_assert_str_eq(ks.p56, "2001:db8:1:200::/56");
    ck_assert_str_eq(ks.p48, "2001:db8:1::/48");
    ck_assert_str_eq(ks.network, "2001:db8:1::/48");
    guest__client_keys_of("203.0.113.7", &ks);
    ck_assert_str_eq(ks.p56, "");
    ck_assert_str_eq(ks.p48, "");
    ck_assert_str_eq(ks.network, "203.0.113.0/24");
    guest__client_keys_of("bogus", &ks);
    ck_assert_str_eq(ks.addr, "unknown");
    ck_assert_str_eq(ks.network, "unknown");
}
END_TEST

START_TEST(window_wait_follows_the_sliding_estimate)
{
    const int64_t w = 100;
    /* now = bucket 10, 30 % into it */
    double now = 1030.0;
    ck_assert_int_eq(guest__window_wait(now, w, 10, 0, 0, 5), 0);
    ck_assert_int_eq(guest__window_wait(now, w, 10, 0, 4, 5), 0);
    /* full in the current window: the next one, once 5 * (1 - g) <= 4 */
    ck_assert_int_eq(guest__window_wait(now, w, 10, 0, 5, 5), 70 + 20);
    /* the previous window's 10 weigh 70 % now: 7 + 0 > 4 until 60 % */
    ck_assert_int_eq(guest__window_wait(now, w, 10, 10, 0, 5), 30);
    /* a row of the previous bucket slides: its curr becomes prev */
    ck_assert_int_eq(guest__window_wait(now, w, 9, 0, 10, 5), 30);
    /* older rows count nothing */
    ck_assert_int_eq(guest__window_wait(now, w, 8, 50, 50, 5), 0);
    /* limit 1: one event blocks until its weight is gone entirely */
    ck_assert_int_eq(guest__window_wait(now, w, 10, 0, 1, 1), 170);
}
END_TEST

/* ---- guest creation per client ---- */

static void rate3(guest_config *c)
{
    c->guest_rate_limit = 3;
    c->guest_rate_window = 3600;
}

START_TEST(guest_limit_is_shared_by_two_contexts)
{
    guest_ctx *a = ctx_with(rate3), *b = ctx_with(rate3);
    ck_assert_int_gt(allow(a, "192.0.2.10", NULL), 0);
    ck_assert_int_gt(allow(b, "192.0.2.10", NULL), 0);
    ck_assert_int_gt(allow(a, "192.0.2.10", NULL), 0);
    /* the budget is spent for both "processes" */
    ck_assert_int_eq(allow(b, "192.0.2.10", NULL), 0);
    ck_assert_int_eq(allow(a, "192.0.2.10", NULL), 0);
    ck_assert_int_eq(count("SELECT count(*) FROM @.guests"), 3);
    /* another address has its own */
    ck_assert_int_gt(allow(b, "192.0.2.11", NULL), 0);
    ck_assert_int_eq(count("SELECT curr_count FROM @.rate_windows"
                           " WHERE kind = 'guest' AND client = '192.0.2.10'"),
                     3);
    /* the public call says why, and how long to wait */
    tl_http h;
    tl_created made = {0};
    request(a, &h, "192.0.2.10", "GET", "/", NULL, NULL, false,
            tl_create_handler, &made);
    ck_assert_int_eq(made.st, GUEST_ERR_RATE_LIMITED);
    ck_assert_ptr_null(tl_http_res_header(&h, "Set-Cookie"));
    tl_http_free(&h);
    guest_ctx_free(a);
    guest_ctx_free(b);
}
END_TEST

START_TEST(guest_limit_holds_across_processes)
{
    /* Two processes, each with its own context and connections, race for
     * one address's budget of 4 with 6 tries each. */
    guest_ctx *init = ctx_with(NULL); /* migrate once, then close */
    guest_ctx_free(init);
    pid_t pids[2];
    for (int i = 0; i < 2; i++) {
        pids[i] = fork();
        ck_assert_int_ge(pids[i], 0);
        if (pids[i] == 0) {
            guest_config c;
            tl_config(&c, SCHEMA);
            c.guest_rate_limit = 4;
            guest_ctx *ctx = NULL;
            if (guest_ctx_new(&c, &ctx, NULL) != GUEST_OK)
                _exit(100);
            int made = 0;
            for (int j = 0; j < 6; j++) {
                tl_http h;
                tl_created out = {0};
                tl_http_init(&h, "GET", "/");
                h.peer = "198.51.100.20";
                tl_http_run(ctx, &h, tl_create_handler, &out);
                if (out.st == GUEST_OK)
                    made++;
                else if (out.st != GUEST_ERR_RATE_LIMITED)
                    _exit(101);
                tl_http_free(&h);
            }
            guest_ctx_free(ctx);
            _exit(made);
        }
    }
    int total = 0;
    for (int i = 0; i < 2; i++) {
        int status;
        ck_assert_int_eq(waitpid(pids[i], &status, 0), pids[i]);
        ck_assert(WIFEXITED(status));
        ck_assert_int_le(WEXITSTATUS(status), 6);
        total += WEXITSTATUS(status);
    }
    ck_assert_int_eq(total, 4);
    ck_assert_int_eq(count("SELECT count(*) FROM @.guests"), 4);
}
END_TEST

START_TEST(ipv6_clients_count_per_64)
{
    guest_ctx *ctx = ctx_with(rate3);
    ck_assert_int_gt(allow(ctx, "2001:db8:aa:1::1", NULL), 0);
    ck_assert_int_gt(allow(ctx, "2001:db8:aa:1::2", NULL), 0);
    ck_assert_int_gt(allow(ctx, "2001:db8:aa:1:ffff:1:2:3", NULL), 0);
    /* a fourth address of the same /64 is the same client */
    ck_assert_int_eq(allow(ctx, "2001:db8:aa:1:dead:beef::9", NULL), 0);
    /* the neighbouring /64 is another one */
    ck_assert_int_gt(allow(ctx, "2001:db8:aa:2::1", NULL), 0);
    ck_assert_int_eq(count("SELECT count(*) FROM @.rate_windows"
                           " WHERE client = '2001:db8:aa:1::/64'"),
                     1);
    guest_ctx_free(ctx);
}
END_TEST

static void rate2_behind_proxy(guest_config *c)
{
    c->guest_rate_limit = 2;
    c->guest_rate_window = 3600;
    c->trusted_proxies = "10.0.0.1/32";
}

/* GUEST_ALLOW through the proxy 10.0.0.1 for the client @p xff names. */
static int64_t allow_via_proxy(guest_ctx *ctx, const char *xff)
{
    tl_http h;
    seen s = {0};
    tl_http_init(&h, "GET", "/");
    h.peer = "10.0.0.1";
    tl_http_add(&h, "Host", "testserver");
    tl_http_add(&h, "X-Forwarded-For", xff);
    tl_http_run(ctx, &h, allow_handler, &s);
    ck_assert_int_eq(h.status, 200);
    tl_http_free(&h);
    return s.id;
}

/* Behind a trusted proxy each visitor has a budget of their own, counted
 * against the address the proxy vouches for; a spoofed entry to the left
 * of it buys nothing. */
START_TEST(limit_counts_the_client_behind_a_trusted_proxy)
{
    guest_ctx *ctx = ctx_with(rate2_behind_proxy);
    ck_assert_int_gt(allow_via_proxy(ctx, "198.51.100.1"), 0);
    ck_assert_int_gt(allow_via_proxy(ctx, "1.1.1.1, 198.51.100.1"), 0);
    ck_assert_int_eq(allow_via_proxy(ctx, "2.2.2.2, 198.51.100.1"), 0);
    /* another visitor through the same proxy still gets a guest */
    ck_assert_int_gt(allow_via_proxy(ctx, "198.51.100.2"), 0);
    ck_assert_int_eq(count("SELECT count(*) FROM @.rate_windows"
                           " WHERE client IN ('198.51.100.1', '198.51.100.2')"),
                     2);
    ck_assert_int_eq(count("SELECT count(*) FROM @.rate_windows"
                           " WHERE client = '10.0.0.1'"),
                     0);
    guest_ctx_free(ctx);
}
END_TEST

static void rate2_429(guest_config *c)
{
    c->guest_rate_limit = 2;
    c->guest_rate_window = 600;
    c->guest_rate_limit_action = GUEST_RATE_ACTION_429;
}

START_TEST(action_429_answers_with_retry_after)
{
    guest_ctx *ctx = ctx_with(rate2_429);
    ck_assert_int_gt(allow(ctx, "192.0.2.30", NULL), 0);
    ck_assert_int_gt(allow(ctx, "192.0.2.30", NULL), 0);
    tl_http h;
    seen s = {0};
    request(ctx, &h, "192.0.2.30", "GET", "/", NULL, NULL, false, allow_handler,
            &s);
    ck_assert_int_eq(h.status, 429);
    ck_assert_int_eq(s.runs, 0);
    ck_assert_ptr_null(tl_http_res_header(&h, "Set-Cookie"));
    const char *ra = tl_http_res_header(&h, "Retry-After");
    ck_assert_ptr_nonnull(ra);
    long secs = strtol(ra, NULL, 10);
    /* both events are in this window: free again within two windows */
    ck_assert_int_ge(secs, 1);
    ck_assert_int_le(secs, 1200);
    ck_assert_ptr_nonnull(strstr(h.res_body, "Too Many Requests"));
    tl_http_free(&h);
    /* a returning guest is not limited: it creates nothing */
    tl_http first;
    int64_t other = allow(ctx, "192.0.2.31", &first);
    char cookie[128];
    ck_assert(tl_http_cookie(&first, "sessionid", cookie, sizeof cookie));
    tl_http_free(&first);
    for (int i = 0; i < 3; i++) {
        request(ctx, &h, "192.0.2.31", "GET", "/", cookie, NULL, false,
                allow_handler, &s);
        ck_assert_int_eq(h.status, 200);
        ck_assert_int_eq(s.id, other);
        tl_http_free(&h);
    }
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(action_anonymous_runs_the_handler_without_a_user)
{
    guest_ctx *ctx = ctx_with(rate3);
    for (int i = 0; i < 3; i++)
        ck_assert_int_gt(allow(ctx, "192.0.2.40", NULL), 0);
    tl_http h;
    seen s = {0};
    request(ctx, &h, "192.0.2.40", "GET", "/", NULL, NULL, false, allow_handler,
            &s);
    ck_assert_int_eq(h.status, 200);
    ck_assert_int_eq(s.runs, 1);
    ck_assert_int_eq(s.id, 0);
    ck_assert_ptr_null(tl_http_res_header(&h, "Set-Cookie"));
    ck_assert_ptr_null(tl_http_res_header(&h, "Retry-After"));
    tl_http_free(&h);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(window_slides_into_the_next_bucket)
{
    guest_ctx *ctx = ctx_with(rate3);
    /* Guests "in the previous window": their weight falls as the current
     * hour goes on, to nothing at its last microsecond. 3600 * 1000 of
     * them weigh 1000 per second left, so a fourth waits until the last
     * 2 ms of the hour; and in the hour's last 30 s the test first waits
     * for the next one (the row must also stay one bucket back until the
     * check). So it asserts at every time of the hour. */
    tl_exec("SELECT pg_sleep(3600.01 - mod(extract(epoch FROM"
            " clock_timestamp()), 3600)) WHERE mod(extract(epoch FROM"
            " clock_timestamp()), 3600) > 3570");
    tl_exec_in(SCHEMA, "INSERT INTO @.rate_windows (kind, client, bucket,"
                       " window_secs, prev_count, curr_count, stale_at)"
                       " SELECT 'guest', '192.0.2.50',"
                       " floor(extract(epoch FROM now()) / 3600)::bigint - 1,"
                       " 3600, 0, 3600000, now() + interval '1 hour'");
    ck_assert_int_eq(allow(ctx, "192.0.2.50", NULL), 0);
    /* Two buckets back is beyond the window: the row counts nothing. */
    tl_exec_in(SCHEMA, "UPDATE @.rate_windows SET bucket = bucket - 1");
    ck_assert_int_gt(allow(ctx, "192.0.2.50", NULL), 0);
    ck_assert_int_eq(count("SELECT prev_count * 10 + curr_count FROM"
                           " @.rate_windows WHERE client = '192.0.2.50'"),
                     1);
    guest_ctx_free(ctx);
}
END_TEST

/* ---- max_guests ---- */

static int cap_lines;
static void count_cap_lines(guest_log_level level, const char *message,
                            void *ud)
{
    (void)level;
    (void)ud;
    if (strstr(message, "max_guests"))
        cap_lines++;
}

static void cap3(guest_config *c)
{
    c->max_guests = 3;
    c->max_guests_per_network = 3;
    c->log = count_cap_lines;
}

/* What the trigger-kept counts say, against the rows themselves. */
static void assert_counts_true(void)
{
    ck_assert_int_eq(count("SELECT sum(live) FROM @.guest_counts"),
                     count("SELECT count(*) FROM @.guests"
                           " WHERE network IS NOT NULL"));
    ck_assert_int_eq(
        count("SELECT count(*) FROM (SELECT network, count(*) AS n FROM"
              " @.guests WHERE network IS NOT NULL GROUP BY 1) g FULL JOIN"
              " (SELECT * FROM @.guest_networks WHERE live <> 0) w USING"
              " (network) WHERE g.n IS DISTINCT FROM w.live"),
        0);
}

START_TEST(max_guests_stops_creation_and_logs_once)
{
    guest_ctx *ctx = ctx_with(cap3);
    /* a registered user is not a guest and does not count */
    tl_new_user(ctx, "someone", TL_PASSWORD);
    cap_lines = 0;
    for (int i = 0; i < 3; i++)
        ck_assert_int_gt(allow(ctx, "192.0.2.60", NULL), 0);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(
            allow(ctx, i % 2 ? "192.0.2.61" : "198.51.100.62", NULL), 0);
    ck_assert_int_eq(count("SELECT count(*) FROM @.guests"), 3);
    assert_counts_true();
    ck_assert_int_eq(cap_lines, 1);
    tl_http h;
    tl_created made = {0};
    request(ctx, &h, "192.0.2.63", "GET", "/", NULL, NULL, false,
            tl_create_handler, &made);
    ck_assert_int_eq(made.st, GUEST_ERR_BUSY);
    tl_http_free(&h);

    /* room again at once when a guest goes, however it goes: here by hand */
    tl_exec_in(SCHEMA, "DELETE FROM @.users WHERE id IN"
                       " (SELECT user_id FROM @.guests LIMIT 1)");
    assert_counts_true();
    ck_assert_int_gt(allow(ctx, "192.0.2.64", NULL), 0);
    ck_assert_int_eq(allow(ctx, "192.0.2.64", NULL), 0);
    assert_counts_true();
    guest_ctx_free(ctx);
}
END_TEST

static void cap40(guest_config *c)
{
    c->max_guests = 40; /* a network's share: 40 / 20 = 2 */
}

START_TEST(max_guests_keeps_room_for_other_networks)
{
    guest_ctx *ctx = ctx_with(cap40);
    /* one IPv4 /24, many addresses: two guests */
    ck_assert_int_gt(allow(ctx, "192.0.2.1", NULL), 0);
    ck_assert_int_gt(allow(ctx, "192.0.2.2", NULL), 0);
    ck_assert_int_eq(allow(ctx, "192.0.2.3", NULL), 0);
    /* one IPv6 /48, many /64s: two guests */
    ck_assert_int_gt(allow(ctx, "2001:db8:5:1::1", NULL), 0);
    ck_assert_int_gt(allow(ctx, "2001:db8:5:2::1", NULL), 0);
    ck_assert_int_eq(allow(ctx, "2001:db8:5:ff00::1", NULL), 0);
    /* everyone else still gets one */
    ck_assert_int_gt(allow(ctx, "198.51.100.7", NULL), 0);
    ck_assert_int_gt(allow(ctx, "2001:db8:6::1", NULL), 0);
    ck_assert_int_eq(count("SELECT live FROM @.guest_networks"
                           " WHERE network = '192.0.2.0/24'"),
                     2);
    ck_assert_int_eq(count("SELECT live FROM @.guest_networks"
                           " WHERE network = '2001:db8:5::/48'"),
                     2);
    assert_counts_true();
    guest_ctx_free(ctx);
}
END_TEST

/* Every way a guest goes keeps the counts true: conversion, a guest's
 * login into an account, cleanup, a user deleted by hand, a guest row
 * inserted by hand. */
START_TEST(guest_counts_follow_every_change)
{
    guest_ctx *ctx = ctx_with(cap40);
    for (int i = 0; i < 2; i++) {
        char addr[32];
        snprintf(addr, sizeof addr, "203.0.113.%d", i + 1);
        ck_assert_int_gt(allow(ctx, addr, NULL), 0);
    }
    char guest[128], cookie[256];
    tl_new_guest(ctx, guest, sizeof guest);
    tl_cookie_header(cookie, sizeof cookie, guest, true);
    assert_counts_true();
    tl_http h;
    request(ctx, &h, "198.51.100.20", "POST", "/convert/", cookie,
            "username=counted&password1=" TL_PASSWORD "&password2=" TL_PASSWORD
            "&csrfmiddlewaretoken=" TL_CSRF,
            false, guest_convert_view, NULL);
    ck_assert_int_eq(h.status, 302);
    tl_http_free(&h);
    assert_counts_true();
    tl_exec_in(SCHEMA, "INSERT INTO @.users (username) VALUES ('byhand')");
    tl_exec_in(SCHEMA, "INSERT INTO @.guests (user_id, network) SELECT id,"
                       " '203.0.113.0/24' FROM @.users"
                       " WHERE username = 'byhand'");
    assert_counts_true();
    ck_assert_int_eq(count("SELECT live FROM @.guest_networks"
                           " WHERE network = '203.0.113.0/24'"),
                     3);
    /* a guest without a network (made with no limit on) is not counted,
     * and a network cannot change under the counts */
    tl_exec_in(SCHEMA, "INSERT INTO @.users (username) VALUES ('nonet')");
    tl_exec_in(SCHEMA, "INSERT INTO @.guests (user_id) SELECT id FROM"
                       " @.users WHERE username = 'nonet'");
    assert_counts_true();
    ck_assert_int_eq(count("SELECT sum(live) FROM @.guest_counts"),
                     count("SELECT count(*) FROM @.guests") - 1);
    PGconn *db = tl_db();
    PGresult *res = PQexec(db, "UPDATE " SCHEMA ".guests"
                               " SET network = '198.51.100.0/24'");
    ck_assert_int_eq(PQresultStatus(res), PGRES_FATAL_ERROR);
    ck_assert_ptr_nonnull(strstr(PQerrorMessage(db), "cannot change"));
    PQclear(res);
    PQfinish(db);
    tl_exec_in(SCHEMA, "UPDATE @.guests SET created_at = now() - interval"
                       " '30 days'");
    guest_cleanup_options o;
    guest_cleanup_options_init(&o);
    o.batch_size = 1;
    guest_cleanup_result r;
    ck_assert_int_eq(guest_delete_expired(ctx, &o, &r, NULL), GUEST_OK);
    ck_assert_int_eq(count("SELECT count(*) FROM @.guests"), 0);
    assert_counts_true();
    ck_assert_int_eq(count("SELECT sum(live) FROM @.guest_counts"), 0);
    /* and the networks left empty are gone */
    ck_assert_int_eq(count("SELECT count(*) FROM @.guest_networks"), 0);
    guest_ctx_free(ctx);
}
END_TEST

/* 32 visitors from 32 networks at the same instant against a cap of 5:
 * the overshoot is bounded by the creations that run at once, which the
 * pool of 4 connections bounds. */
static void cap5_pool4(guest_config *c)
{
    c->max_guests = 5;
    c->max_guests_per_network = 5;
    c->db_pool_size = 4;
}

typedef struct burst {
    guest_ctx *ctx;
    pthread_barrier_t *go;
    int index;
    int64_t id;
} burst;

static void *burst_allow(void *arg)
{
    burst *b = arg;
    char addr[32];
    snprintf(addr, sizeof addr, "10.%d.0.1", b->index);
    pthread_barrier_wait(b->go);
    b->id = allow(b->ctx, addr, NULL);
    return NULL;
}

START_TEST(max_guests_holds_for_32_at_once)
{
    guest_ctx *ctx = ctx_with(cap5_pool4);
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, 32);
    burst b[32];
    pthread_t t[32];
    for (int i = 0; i < 32; i++) {
        b[i] = (burst){.ctx = ctx, .go = &go, .index = i};
        ck_assert_int_eq(pthread_create(&t[i], NULL, burst_allow, &b[i]), 0);
    }
    int made = 0;
    for (int i = 0; i < 32; i++) {
        pthread_join(t[i], NULL);
        made += b[i].id > 0;
    }
    pthread_barrier_destroy(&go);
    ck_assert_int_ge(made, 5);
    ck_assert_int_le(made, 5 + 4);
    ck_assert_int_eq(count("SELECT count(*) FROM @.guests"), made);
    assert_counts_true();
    guest_ctx_free(ctx);
}
END_TEST

/* ---- round trips ---- */

static void all_limits(guest_config *c)
{
    c->guest_rate_limit = 1000;
    c->max_guests = 100000;
    c->login_rate_limit = 5;
    c->db_pool_size = 1;
}

START_TEST(limits_add_no_round_trip)
{
    guest_ctx *ctx = ctx_with(all_limits);
    char cookie[128];
    /* warm up: the connection prepares each statement once */
    tl_http h;
    tl_created out = {0};
    request(ctx, &h, "192.0.2.70", "GET", "/", NULL, NULL, false,
            tl_create_handler, &out);
    ck_assert_int_eq(out.st, GUEST_OK);
    tl_http_free(&h);
    request(ctx, &h, "192.0.2.70", "GET", "/",
            "sessionid=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", NULL,
            false, tl_whoami_handler, &out);
    tl_http_free(&h);

    unsigned long rt0 = guest__db_round_trips;
    request(ctx, &h, "192.0.2.70", "GET", "/", NULL, NULL, false,
            tl_create_handler, &out);
    ck_assert_int_eq(out.st, GUEST_OK);
    ck_assert_uint_eq(guest__db_round_trips - rt0, 1);
    ck_assert(tl_http_cookie(&h, "sessionid", cookie, sizeof cookie));
    tl_http_free(&h);

    /* through GUEST_ALLOW: resolve (no cookie: no trip) + create */
    rt0 = guest__db_round_trips;
    ck_assert_int_gt(allow(ctx, "192.0.2.70", NULL), 0);
    ck_assert_uint_eq(guest__db_round_trips - rt0, 1);

    rt0 = guest__db_round_trips;
    seen s = {0};
    request(ctx, &h, "192.0.2.70", "GET", "/", cookie, NULL, false,
            allow_handler, &s);
    ck_assert_int_gt(s.id, 0);
    ck_assert_uint_eq(guest__db_round_trips - rt0, 1);
    tl_http_free(&h);
    guest_ctx_free(ctx);
}
END_TEST

/* ---- login ---- */

static void login3(guest_config *c)
{
    c->login_rate_limit = 3;
    c->login_address_rate_limit = 100;
}

/* POST /accounts/login/ from @p addr; the status. */
static int post_login(guest_ctx *ctx, tl_http *h, const char *addr,
                      const char *username, const char *password, bool json)
{
    char body[256];
    snprintf(body, sizeof body,
             "username=%s&password=%s&csrfmiddlewaretoken=" TL_CSRF, username,
             password);
    request(ctx, h, addr, "POST", "/accounts/login/", "csrftoken=" TL_CSRF,
            body, json, guest_login_view, NULL);
    return h->status;
}

static int login_status(guest_ctx *ctx, const char *addr, const char *username,
                        const char *password)
{
    tl_http h;
    int status = post_login(ctx, &h, addr, username, password, false);
    tl_http_free(&h);
    return status;
}

START_TEST(login_limit_answers_429_and_success_resets)
{
    guest_ctx *ctx = ctx_with(login3);
    tl_new_user(ctx, "alice", TL_PASSWORD);
    const char *ip = "192.0.2.80";
    /* a success resets alice's count from this address */
    ck_assert_int_eq(login_status(ctx, ip, "alice", "wrong-1"), 200);
    ck_assert_int_eq(login_status(ctx, ip, "alice", "wrong-2"), 200);
    ck_assert_int_eq(login_status(ctx, ip, "alice", TL_PASSWORD), 302);
    ck_assert_int_eq(count("SELECT count(*) FROM @.rate_windows"
                           " WHERE kind = 'login_user'"),
                     0);
    ck_assert_int_eq(count("SELECT curr_count FROM @.rate_windows"
                           " WHERE kind = 'login'"),
                     2);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(login_status(ctx, ip, "alice", "wrong"), 200);
    /* the fourth failure in the hour is refused, even the right password */
    tl_http h;
    ck_assert_int_eq(post_login(ctx, &h, ip, "alice", TL_PASSWORD, false), 429);
    const char *ra = tl_http_res_header(&h, "Retry-After");
    ck_assert_ptr_nonnull(ra);
    ck_assert_int_ge(strtol(ra, NULL, 10), 1);
    ck_assert_int_le(strtol(ra, NULL, 10), 7200);
    ck_assert_ptr_nonnull(
        strstr(h.res_body, "Too many failed login attempts. Try again later."));
    ck_assert_ptr_null(tl_http_res_header(&h, "Location"));
    tl_http_free(&h);
    ck_assert_int_eq(post_login(ctx, &h, ip, "alice", "x", true), 429);
    ck_assert_ptr_nonnull(tl_http_res_header(&h, "Retry-After"));
    ck_assert_ptr_nonnull(strstr(h.res_body, "\"__all__\""));
    ck_assert_ptr_nonnull(strstr(h.res_body, "Too many failed login"));
    tl_http_free(&h);
    /* refused attempts are not counted on top */
    ck_assert_int_eq(count("SELECT curr_count FROM @.rate_windows"
                           " WHERE kind = 'login_user'"),
                     3);
    /* alice from elsewhere, and bob from here, are not locked out */
    ck_assert_int_eq(login_status(ctx, "192.0.2.81", "alice", TL_PASSWORD),
                     302);
    ck_assert_int_eq(login_status(ctx, ip, "bob", "wrong"), 200);
    guest_ctx_free(ctx);
}
END_TEST

static void address2(guest_config *c)
{
    c->login_rate_limit = 10;
    c->login_address_rate_limit = 2;
}

START_TEST(login_limit_per_address_whatever_the_username)
{
    guest_ctx *ctx = ctx_with(address2);
    tl_new_user(ctx, "carol", TL_PASSWORD);
    ck_assert_int_eq(login_status(ctx, "192.0.2.90", "u1", "p"), 200);
    ck_assert_int_eq(login_status(ctx, "192.0.2.90", "u2", "p"), 200);
    ck_assert_int_eq(login_status(ctx, "192.0.2.90", "carol", TL_PASSWORD),
                     429);
    ck_assert_int_eq(login_status(ctx, "192.0.2.91", "carol", TL_PASSWORD),
                     302);
    guest_ctx_free(ctx);
}
END_TEST

static void expensive(guest_config *c)
{
    login3(c);
    /* Hours per hash: any hash on the refused path would hang the test. */
    c->password_iterations = 2147483647u;
}

typedef struct login_req {
    const char *username, *password;
    guest_status st;
    int64_t retry_after;
    guest_form_errors errors;
} login_req;

static void api_login_handler(guest_req *req, void *ud)
{
    login_req *a = ud;
    a->st = guest_login(req, a->username, a->password, &a->errors, NULL);
    a->retry_after = guest_req_retry_after(req);
}

START_TEST(login_limit_refuses_before_any_hash)
{
    guest_ctx *cheap = ctx_with(login3);
    int64_t id = tl_new_user(cheap, "dave", TL_PASSWORD);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(login_status(cheap, "192.0.2.100", "dave", "no"), 200);
        ck_assert_int_eq(login_status(cheap, "192.0.2.100", "ghost", "no"),
                         200);
    }
    guest_ctx *dear = ctx_with(expensive);
    /* An unknown user costs one hash and a right password with another
     * iteration count a rehash: either would take hours at this setting. */
    tl_http h;
    ck_assert_int_eq(post_login(dear, &h, "192.0.2.100", "ghost", "no", false),
                     429);
    tl_http_free(&h);
    ck_assert_int_eq(
        post_login(dear, &h, "192.0.2.100", "dave", TL_PASSWORD, false), 429);
    tl_http_free(&h);
    char sql[128];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM @.users WHERE id = %lld AND last_login IS"
             " NULL AND password LIKE 'pbkdf2_sha256$1000$%%'",
             (long long)id);
    ck_assert_int_eq(count(sql), 1);
    /* the API call says the same, and how long to wait */
    login_req a = {.username = "dave", .password = TL_PASSWORD};
    request(dear, &h, "192.0.2.100", "POST", "/", NULL, NULL, false,
            api_login_handler, &a);
    ck_assert_int_eq(a.st, GUEST_ERR_RATE_LIMITED);
    ck_assert_int_ge(a.retry_after, 1);
    ck_assert_str_eq(guest_form_errors_get(&a.errors, "__all__"),
                     "Too many failed login attempts. Try again later.");
    tl_http_free(&h);
    guest_ctx_free(dear);
    guest_ctx_free(cheap);
}
END_TEST

/* ---- 32 attempts at the same instant ---- */

static void limit5_wide(guest_config *c)
{
    c->login_rate_limit = 5;
    c->login_address_rate_limit = 5;
    c->guest_rate_limit = 5;
    c->hash_concurrency = 32;
    c->hash_wait_ms = 60000;
    c->db_pool_size = 8;
}

typedef struct attempt {
    guest_ctx *ctx;
    pthread_barrier_t *go;
    const char *addr;
    char username[32];
    const char *cookie;
    enum { LOGIN, CONVERT, ALLOW } what;
    guest_status st;
    int64_t id;
} attempt;

static void convert_attempt_handler(guest_req *req, void *ud)
{
    attempt *a = ud;
    a->st =
        guest_convert(req, a->username, TL_PASSWORD, "mismatch", NULL, NULL);
}

static void *run_attempt(void *arg)
{
    attempt *a = arg;
    tl_http h;
    pthread_barrier_wait(a->go);
    if (a->what == ALLOW) {
        a->id = allow(a->ctx, a->addr, NULL);
        return NULL;
    }
    login_req l = {.username = a->username, .password = "wrong"};
    request(a->ctx, &h, a->addr, "POST", "/", a->cookie, NULL, false,
            a->what == LOGIN ? api_login_handler : convert_attempt_handler,
            a->what == LOGIN ? (void *)&l : (void *)a);
    if (a->what == LOGIN)
        a->st = l.st;
    tl_http_free(&h);
    return NULL;
}

/* Runs 32 attempts released by one barrier; counts outcomes equal to
 * @p st (or guests made, for ALLOW). */
static int burst32(guest_ctx *ctx, int what, bool same_name, const char *cookie,
                   guest_status st)
{
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, 32);
    attempt a[32];
    pthread_t t[32];
    for (int i = 0; i < 32; i++) {
        a[i] = (attempt){.ctx = ctx,
                         .go = &go,
                         .addr = "192.0.2.150",
                         .cookie = cookie,
                         .what = what};
        snprintf(a[i].username, sizeof a[i].username, "%s%d",
                 same_name ? "erin" : "name", same_name ? 0 : i);
        ck_assert_int_eq(pthread_create(&t[i], NULL, run_attempt, &a[i]), 0);
    }
    int n = 0;
    for (int i = 0; i < 32; i++) {
        pthread_join(t[i], NULL);
        n += what == ALLOW ? a[i].id > 0 : a[i].st == st;
    }
    pthread_barrier_destroy(&go);
    return n;
}

START_TEST(login_limit_holds_for_32_at_once)
{
    guest_ctx *ctx = ctx_with(limit5_wide);
    tl_new_user(ctx, "erin0", TL_PASSWORD);
    /* one username: 5 passwords checked, 27 refused before a hash */
    ck_assert_int_eq(burst32(ctx, LOGIN, true, NULL, GUEST_ERR_AUTH), 5);
    ck_assert_int_eq(count("SELECT curr_count FROM @.rate_windows"
                           " WHERE kind = 'login_user'"),
                     5);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(address_limit_holds_for_32_at_once)
{
    guest_ctx *ctx = ctx_with(limit5_wide);
    /* 32 usernames from one address: the address allows 5 */
    ck_assert_int_eq(burst32(ctx, LOGIN, false, NULL, GUEST_ERR_AUTH), 5);
    ck_assert_int_eq(count("SELECT curr_count FROM @.rate_windows"
                           " WHERE kind = 'login'"),
                     5);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(conversion_limit_holds_for_32_at_once)
{
    guest_ctx *ctx = ctx_with(limit5_wide);
    char guest[128], cookie[256];
    tl_new_guest(ctx, guest, sizeof guest);
    tl_cookie_header(cookie, sizeof cookie, guest, true);
    ck_assert_int_eq(burst32(ctx, CONVERT, false, cookie, GUEST_ERR_VALIDATION),
                     5);
    ck_assert_int_eq(count("SELECT curr_count FROM @.rate_windows"
                           " WHERE kind = 'convert'"),
                     5);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(guest_limit_holds_for_32_at_once)
{
    guest_ctx *ctx = ctx_with(limit5_wide);
    ck_assert_int_eq(burst32(ctx, ALLOW, false, NULL, GUEST_OK), 5);
    ck_assert_int_eq(count("SELECT count(*) FROM @.guests"), 5);
    guest_ctx_free(ctx);
}
END_TEST

/* ---- IPv6 prefixes ---- */

static void rate2(guest_config *c)
{
    c->guest_rate_limit = 2; /* /56: 8, /48: 16 */
    c->login_rate_limit = 0;
    c->login_address_rate_limit = 1; /* /56: 4, /48: 8 */
}

START_TEST(ipv6_prefixes_have_budgets_of_their_own)
{
    guest_ctx *ctx = ctx_with(rate2);
    /* 20 /64s of one /56: its budget of 8, not 40 */
    int made = 0;
    for (int i = 0; i < 20; i++) {
        char addr[64];
        snprintf(addr, sizeof addr, "2001:db8:7:%x::1", i);
        made += allow(ctx, addr, NULL) > 0;
    }
    ck_assert_int_eq(made, 8);
    /* 20 /56s of one /48: its budget of 16 in all (8 taken above) */
    for (int i = 1; i <= 20; i++) {
        char addr[64];
        snprintf(addr, sizeof addr, "2001:db8:7:%x00::1", i);
        made += allow(ctx, addr, NULL) > 0;
    }
    ck_assert_int_eq(made, 16);
    /* the next /48 is another customer */
    ck_assert_int_gt(allow(ctx, "2001:db8:8::1", NULL), 0);
    ck_assert_int_eq(count("SELECT curr_count FROM @.rate_windows"
                           " WHERE client = '2001:db8:7::/48'"),
                     16);
    /* failed logins: 1 per /64, 4 per /56, 8 per /48 */
    int checked = 0;
    for (int i = 0; i < 40; i++) {
        char addr[64];
        snprintf(addr, sizeof addr, "2001:db8:9:%x::1", i * 0x40);
        checked += login_status(ctx, addr, "nobody", "wrong") == 200;
    }
    ck_assert_int_eq(checked, 8);
    guest_ctx_free(ctx);
}
END_TEST

/* ---- conversion ---- */

static void convert2(guest_config *c)
{
    c->login_rate_limit = 10;
    c->login_address_rate_limit = 2;
}

START_TEST(failed_conversions_count_per_address)
{
    guest_ctx *ctx = ctx_with(convert2);
    char guest[128], cookie[256];
    tl_new_guest(ctx, guest, sizeof guest);
    tl_cookie_header(cookie, sizeof cookie, guest, true);
    tl_new_user(ctx, "taken", TL_PASSWORD);
    const char *ip = "192.0.2.110";
    tl_http h;
    /* mismatched passwords, then a taken name: two failures */
    request(ctx, &h, ip, "POST", "/convert/", cookie,
            "username=newname&password1=" TL_PASSWORD
            "&password2=other&csrfmiddlewaretoken=" TL_CSRF,
            false, guest_convert_view, NULL);
    ck_assert_int_eq(h.status, 200);
    tl_http_free(&h);
    request(ctx, &h, ip, "POST", "/convert/", cookie,
            "username=taken&password1=" TL_PASSWORD "&password2=" TL_PASSWORD
            "&csrfmiddlewaretoken=" TL_CSRF,
            true, guest_convert_view, NULL);
    ck_assert_int_eq(h.status, 400);
    tl_http_free(&h);
    ck_assert_int_eq(count("SELECT curr_count FROM @.rate_windows"
                           " WHERE kind = 'convert'"),
                     2);
    /* now even a valid form waits */
    request(ctx, &h, ip, "POST", "/convert/", cookie,
            "username=fresh&password1=" TL_PASSWORD "&password2=" TL_PASSWORD
            "&csrfmiddlewaretoken=" TL_CSRF,
            false, guest_convert_view, NULL);
    ck_assert_int_eq(h.status, 429);
    ck_assert_ptr_nonnull(tl_http_res_header(&h, "Retry-After"));
    ck_assert_ptr_nonnull(strstr(h.res_body, "Try again later."));
    tl_http_free(&h);
    ck_assert_int_eq(count("SELECT count(*) FROM @.guests"), 1);
    /* the same visitor from another address converts */
    request(ctx, &h, "192.0.2.111", "POST", "/convert/", cookie,
            "username=fresh&password1=" TL_PASSWORD "&password2=" TL_PASSWORD
            "&csrfmiddlewaretoken=" TL_CSRF,
            false, guest_convert_view, NULL);
    ck_assert_int_eq(h.status, 302);
    tl_http_free(&h);
    guest_ctx_free(ctx);
}
END_TEST

/* ---- cleanup ---- */

START_TEST(cleanup_deletes_stale_windows)
{
    guest_ctx *ctx = ctx_with(rate3);
    ck_assert_int_gt(allow(ctx, "192.0.2.120", NULL), 0);
    tl_exec_in(SCHEMA, "INSERT INTO @.rate_windows (kind, client, bucket,"
                       " window_secs, curr_count, stale_at) VALUES"
                       " ('guest', '192.0.2.121', 1, 60, 3, now() - interval"
                       " '1 minute'), ('login', '192.0.2.122', 1, 3600, 3,"
                       " now() - interval '1 second')");
    guest_cleanup_options o;
    guest_cleanup_options_init(&o);
    o.dry_run = true;
    guest_cleanup_result r;
    ck_assert_int_eq(guest_delete_expired(ctx, &o, &r, NULL), GUEST_OK);
    ck_assert_uint_eq(r.rate_windows_deleted, 2);
    ck_assert_int_eq(count("SELECT count(*) FROM @.rate_windows"), 3);
    o.dry_run = false;
    o.batch_size = 1;
    ck_assert_int_eq(guest_delete_expired(ctx, &o, &r, NULL), GUEST_OK);
    ck_assert_uint_eq(r.rate_windows_deleted, 2);
    /* the live window stays, and still counts */
    ck_assert_int_eq(count("SELECT count(*) FROM @.rate_windows WHERE"
                           " client = '192.0.2.120' AND curr_count = 1"),
                     1);
    ck_assert_int_eq(count("SELECT count(*) FROM @.rate_windows"), 1);
    guest_ctx_free(ctx);
}
END_TEST

/* ---- configuration ---- */

START_TEST(bad_limit_settings_are_refused)
{
    guest_config c;
    guest_ctx *ctx = NULL;
    guest_error err;
    tl_config(&c, SCHEMA);
    c.guest_rate_window = 0;
    ck_assert_int_eq(guest_ctx_new(&c, &ctx, &err), GUEST_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(err.message, "guest_rate_window"));
    tl_config(&c, SCHEMA);
    c.guest_rate_limit_action = (guest_rate_action)7;
    ck_assert_int_eq(guest_ctx_new(&c, &ctx, &err), GUEST_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(err.message, "guest_rate_limit_action"));
    tl_config(&c, SCHEMA);
    c.max_guests = -1;
    ck_assert_int_eq(guest_ctx_new(&c, &ctx, &err), GUEST_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(err.message, "max_guests"));
    tl_config(&c, SCHEMA);
    c.login_rate_limit = 2000000000u;
    ck_assert_int_eq(guest_ctx_new(&c, &ctx, &err), GUEST_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(err.message, "login_rate_limit"));
    tl_config(&c, SCHEMA);
    c.ipv6_prefix48_multiplier = 70000;
    ck_assert_int_eq(guest_ctx_new(&c, &ctx, &err), GUEST_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(err.message, "ipv6_prefix48_multiplier"));
    tl_config(&c, SCHEMA);
    c.max_guests_per_network = -1;
    ck_assert_int_eq(guest_ctx_new(&c, &ctx, &err), GUEST_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(err.message, "max_guests_per_network"));
    /* guest limits off by default; guessing limits on */
    guest_config_init(&c);
    ck_assert_uint_eq(c.guest_rate_limit, 0);
    ck_assert_uint_eq(c.guest_rate_window, 3600);
    ck_assert_int_eq(c.guest_rate_limit_action, GUEST_RATE_ACTION_ANONYMOUS);
    ck_assert_uint_eq(c.login_rate_limit, 5);
    ck_assert_uint_eq(c.login_address_rate_limit, 100);
    ck_assert_uint_eq(c.ipv6_prefix56_multiplier, 4);
    ck_assert_uint_eq(c.ipv6_prefix48_multiplier, 8);
    ck_assert_int_eq(c.max_guests, 0);
    ck_assert_int_eq(c.max_guests_per_network, 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("limits");
    TCase *u = tcase_create("units");
    tcase_add_test(u, client_keys);
    tcase_add_test(u, window_wait_follows_the_sliding_estimate);
    suite_add_tcase(s, u);
    TCase *t = tcase_create("db");
    tcase_add_checked_fixture(t, setup, NULL);
    tcase_set_timeout(t, 120);
    tcase_add_test(t, guest_limit_is_shared_by_two_contexts);
    tcase_add_test(t, guest_limit_holds_across_processes);
    tcase_add_test(t, ipv6_clients_count_per_64);
    tcase_add_test(t, limit_counts_the_client_behind_a_trusted_proxy);
    tcase_add_test(t, action_429_answers_with_retry_after);
    tcase_add_test(t, action_anonymous_runs_the_handler_without_a_user);
    tcase_add_test(t, window_slides_into_the_next_bucket);
    tcase_add_test(t, max_guests_stops_creation_and_logs_once);
    tcase_add_test(t, max_guests_keeps_room_for_other_networks);
    tcase_add_test(t, guest_counts_follow_every_change);
    tcase_add_test(t, max_guests_holds_for_32_at_once);
    tcase_add_test(t, limits_add_no_round_trip);
    tcase_add_test(t, login_limit_answers_429_and_success_resets);
    tcase_add_test(t, login_limit_per_address_whatever_the_username);
    tcase_add_test(t, login_limit_refuses_before_any_hash);
    tcase_add_test(t, failed_conversions_count_per_address);
    tcase_add_test(t, login_limit_holds_for_32_at_once);
    tcase_add_test(t, address_limit_holds_for_32_at_once);
    tcase_add_test(t, conversion_limit_holds_for_32_at_once);
    tcase_add_test(t, guest_limit_holds_for_32_at_once);
    tcase_add_test(t, ipv6_prefixes_have_budgets_of_their_own);
    tcase_add_test(t, cleanup_deletes_stale_windows);
    tcase_add_test(t, bad_limit_settings_are_refused);
    suite_add_tcase(s, t);
    return tl_run(s);
}

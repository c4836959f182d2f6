/* session_cache_ttl against the fixture database: a cached session costs
 * no round trip; entries expire, stay within session_cache_size, and go at
 * once when this process logs out, logs in, converts, changes a password
 * or manages the user; a change made behind the process's back is seen
 * within the ttl. Static: the round-trip counter and the cache's size. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"
#include "testlib.h"

#define SCHEMA "t_session_cache"

static void setup(void)
{
    tl_drop_schema(SCHEMA);
}

static unsigned cache_ttl = 60, cache_size = 10000, pool_size = 1;

/* One connection, unless a test says otherwise: its statements are
 * prepared once, so the round trips counted are the requests' own. */
static void cached(guest_config *c)
{
    c->session_cache_ttl = cache_ttl;
    c->session_cache_size = cache_size;
    c->db_pool_size = pool_size;
}

static guest_ctx *cache_ctx(unsigned ttl, unsigned size)
{
    cache_ttl = ttl;
    cache_size = size;
    pool_size = 1;
    return tl_ctx(SCHEMA, cached);
}

/* Who @p cookie resolves to (0: anonymous) and what that cost in round
 * trips (into *trips). */
static int64_t resolve(guest_ctx *ctx, const char *cookie, unsigned long *trips)
{
    unsigned long before = guest__db_round_trips;
    int64_t id = tl_whoami(ctx, cookie, NULL);
    if (trips)
        *trips = guest__db_round_trips - before;
    return id;
}

START_TEST(off_by_default_every_request_asks_the_database)
{
    guest_config c;
    guest_config_init(&c);
    ck_assert_uint_eq(c.session_cache_ttl, 0);
    ck_assert_uint_eq(c.session_cache_size, 10000);
    guest_ctx *ctx = cache_ctx(0, 10000);
    char cookie[128];
    int64_t id = tl_new_guest(ctx, cookie, sizeof cookie);
    for (int i = 0; i < 3; i++) {
        unsigned long trips;
        ck_assert_int_eq(resolve(ctx, cookie, &trips), id);
        ck_assert_uint_ge(trips, 1);
    }
    ck_assert_uint_eq(guest__session_cache_count(ctx), 0);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(a_hit_costs_no_round_trip)
{
    guest_ctx *ctx = cache_ctx(60, 10000);
    char cookie[128];
    int64_t id = tl_new_guest(ctx, cookie, sizeof cookie);
    unsigned long trips;
    ck_assert_int_eq(resolve(ctx, cookie, &trips), id);
    ck_assert_uint_ge(trips, 1); /* the miss fills the cache */
    guest_metrics before, after;
    guest_metrics_get(ctx, &before);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(resolve(ctx, cookie, &trips), id);
        ck_assert_uint_eq(trips, 0);
    }
    /* the metrics count each hit, and as a resolution too */
    guest_metrics_get(ctx, &after);
    ck_assert_uint_eq(after.session_cache_hits - before.session_cache_hits, 3);
    ck_assert_uint_eq(after.sessions_resolved - before.sessions_resolved, 3);
    /* The cached user is the whole user: name, kind, times. */
    tl_created seen;
    tl_resolve(ctx, cookie, &seen);
    char name[GUEST_USERNAME_BUF];
    tl_text_in(SCHEMA, "SELECT username FROM @.users", name, sizeof name);
    ck_assert_str_eq(seen.name, name);
    ck_assert(seen.is_guest);
    /* Unknown and malformed sessions are never cached: each asks again
     * (a session made by another node must be seen at once). */
    const char *unknown =
        "sessionid=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(resolve(ctx, unknown, &trips), 0);
        ck_assert_uint_ge(trips, 1);
    }
    ck_assert_uint_eq(guest__session_cache_count(ctx), 1);
    guest_ctx_free(ctx);
}
END_TEST

/* A session deleted behind the process's back (another node's logout)
 * still resolves from the cache, for at most the ttl. */
START_TEST(a_change_elsewhere_is_seen_within_the_ttl)
{
    guest_ctx *ctx = cache_ctx(1, 10000);
    char cookie[128];
    int64_t id = tl_new_guest(ctx, cookie, sizeof cookie);
    ck_assert_int_eq(resolve(ctx, cookie, NULL), id);
    tl_exec_in(SCHEMA, "DELETE FROM @.sessions");
    unsigned long trips;
    int64_t seen = resolve(ctx, cookie, &trips);
    /* Usually still cached (the documented staleness); on a machine slow
     * enough to take a second since, already gone. */
    if (seen == id)
        ck_assert_uint_eq(trips, 0);
    long long until = tl_now_ms() + 30000;
    while (seen != 0 && tl_now_ms() < until) {
        usleep(100 * 1000);
        seen = resolve(ctx, cookie, NULL);
    }
    ck_assert_int_eq(seen, 0);
    ck_assert_uint_eq(guest__session_cache_count(ctx), 0);
    guest_ctx_free(ctx);
}
END_TEST

/* A live session expires from the cache after the ttl: the next request
 * asks the database again (and caches it anew). */
START_TEST(entries_expire_after_the_ttl)
{
    guest_ctx *ctx = cache_ctx(1, 10000);
    char cookie[128];
    int64_t id = tl_new_guest(ctx, cookie, sizeof cookie);
    ck_assert_int_eq(resolve(ctx, cookie, NULL), id);
    unsigned long trips = 0;
    long long until = tl_now_ms() + 30000;
    while (trips == 0 && tl_now_ms() < until) {
        usleep(100 * 1000);
        ck_assert_int_eq(resolve(ctx, cookie, &trips), id);
    }
    ck_assert_uint_ge(trips, 1);
    guest_ctx_free(ctx);
}
END_TEST

/* Never longer than the session itself lives. */
START_TEST(entries_never_outlive_their_session)
{
    guest_ctx *ctx = cache_ctx(3600, 10000);
    char cookie[128];
    int64_t id = tl_new_guest(ctx, cookie, sizeof cookie);
    tl_exec_in(SCHEMA,
               "UPDATE @.sessions SET expires_at = now() + interval '1 s'");
    ck_assert_int_eq(resolve(ctx, cookie, NULL), id);
    int64_t seen = id;
    long long until = tl_now_ms() + 30000;
    while (seen != 0 && tl_now_ms() < until) {
        usleep(100 * 1000);
        seen = resolve(ctx, cookie, NULL);
    }
    ck_assert_int_eq(seen, 0);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(the_least_recently_used_goes_first)
{
    /* Four entries: one shard, so the order is exact. */
    guest_ctx *ctx = cache_ctx(60, 4);
    char cookies[5][128];
    int64_t ids[5];
    for (int i = 0; i < 5; i++) {
        ids[i] = tl_new_guest(ctx, cookies[i], sizeof cookies[i]);
        ck_assert_int_eq(resolve(ctx, cookies[i], NULL), ids[i]);
        ck_assert_uint_le(guest__session_cache_count(ctx), 4);
    }
    unsigned long trips;
    /* 0 was pushed out by 4; 1..4 are there. */
    for (int i = 4; i >= 1; i--) {
        ck_assert_int_eq(resolve(ctx, cookies[i], &trips), ids[i]);
        ck_assert_uint_eq(trips, 0);
    }
    /* Now 4 is the least recently used, and 0 pushes it out. */
    ck_assert_int_eq(resolve(ctx, cookies[0], &trips), ids[0]);
    ck_assert_uint_ge(trips, 1);
    ck_assert_int_eq(resolve(ctx, cookies[1], &trips), ids[1]);
    ck_assert_uint_eq(trips, 0);
    ck_assert_int_eq(resolve(ctx, cookies[4], &trips), ids[4]);
    ck_assert_uint_ge(trips, 1);
    ck_assert_uint_eq(guest__session_cache_count(ctx), 4);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(the_size_bound_holds_across_shards)
{
    guest_ctx *ctx = cache_ctx(60, 100);
    char cookie[128];
    for (int i = 0; i < 300; i++) {
        int64_t id = tl_new_guest(ctx, cookie, sizeof cookie);
        ck_assert_int_eq(resolve(ctx, cookie, NULL), id);
        ck_assert_uint_le(guest__session_cache_count(ctx), 100);
    }
    ck_assert_uint_ge(guest__session_cache_count(ctx), 50);
    guest_ctx_free(ctx);
}
END_TEST

/* ---- this process's changes drop entries at once ---- */

typedef struct act {
    enum { LOGOUT, LOGIN, CONVERT, CHANGE } what;
    const char *username, *password;
    guest_status st;
    guest_error err;
    char cookie[128]; /* the new session, when one was set */
} act;

static void act_handler(guest_req *req, void *ud)
{
    act *a = ud;
    guest_form_errors errors;
    switch (a->what) {
    case LOGOUT:
        a->st = guest_logout(req, &a->err);
        break;
    case LOGIN:
        a->st = guest_login(req, a->username, a->password, &errors, &a->err);
        break;
    case CONVERT:
        a->st = guest_convert(req, a->username, a->password, a->password,
                              &errors, &a->err);
        break;
    case CHANGE:
        a->st = guest_password_change(req, TL_PASSWORD, a->password,
                                      a->password, &errors, &a->err);
        break;
    }
}

static guest_status run_act(guest_ctx *ctx, const char *cookie, act *a)
{
    tl_http h;
    tl_http_init(&h, "POST", "/");
    if (cookie)
        tl_http_add(&h, "Cookie", cookie);
    tl_http_run(ctx, &h, act_handler, a);
    if (!tl_http_cookie(&h, "sessionid", a->cookie, sizeof a->cookie))
        a->cookie[0] = '\0';
    tl_http_free(&h);
    ck_assert_msg(a->st == GUEST_OK, "%s: %s", guest_status_name(a->st),
                  a->err.message);
    return a->st;
}

/* A second session of user @p id, made in SQL; its cookie into @p cookie. */
static void add_session(int64_t id, char *cookie, size_t size)
{
    char token[GUEST__TOKEN_CHARS + 1], hex[2 * GUEST__SHA256_BYTES + 1];
    unsigned char hash[GUEST__SHA256_BYTES];
    ck_assert_int_eq(guest__session_new(token, hash), GUEST_OK);
    for (int i = 0; i < GUEST__SHA256_BYTES; i++)
        snprintf(hex + 2 * i, 3, "%02x", hash[i]);
    char sql[512];
    snprintf(sql, sizeof sql,
             "INSERT INTO @.sessions (token_hash, user_id, expires_at)"
             " VALUES ('\\x%s', %lld, now() + interval '1 day')",
             hex, (long long)id);
    tl_exec_in(SCHEMA, sql);
    snprintf(cookie, size, "sessionid=%s", token);
}

/* Resolves @p cookie until it is cached, and checks it is. A
 * notification of an earlier step of the test (the cache hears its own
 * database's changes too) may still arrive and drop the entry once, so
 * the check is that it gets cached, within a bounded number of tries. */
static void warm(guest_ctx *ctx, const char *cookie, int64_t id)
{
    unsigned long trips = 1;
    for (int i = 0; i < 200 && trips != 0; i++) {
        if (i)
            usleep(10 * 1000);
        ck_assert_int_eq(resolve(ctx, cookie, NULL), id);
        ck_assert_int_eq(resolve(ctx, cookie, &trips), id);
    }
    ck_assert_uint_eq(trips, 0);
}

START_TEST(logout_and_login_drop_the_old_session)
{
    guest_ctx *ctx = cache_ctx(60, 10000);
    char cookie[128];
    int64_t g = tl_new_guest(ctx, cookie, sizeof cookie);
    warm(ctx, cookie, g);
    act out = {.what = LOGOUT};
    run_act(ctx, cookie, &out);
    ck_assert_int_eq(resolve(ctx, cookie, NULL), 0);

    /* A guest logging in: its session, and the guest, are gone. */
    int64_t alice = tl_new_user(ctx, "alice", TL_PASSWORD);
    g = tl_new_guest(ctx, cookie, sizeof cookie);
    char other[128];
    add_session(g, other, sizeof other);
    warm(ctx, cookie, g);
    warm(ctx, other, g);
    act in = {.what = LOGIN, .username = "alice", .password = TL_PASSWORD};
    run_act(ctx, cookie, &in);
    ck_assert_int_eq(resolve(ctx, cookie, NULL), 0);
    ck_assert_int_eq(resolve(ctx, other, NULL), 0);
    ck_assert_int_eq(resolve(ctx, in.cookie, NULL), alice);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(conversion_drops_every_session_of_the_guest)
{
    guest_ctx *ctx = cache_ctx(60, 10000);
    char cookie[128], other[128];
    int64_t g = tl_new_guest(ctx, cookie, sizeof cookie);
    add_session(g, other, sizeof other);
    warm(ctx, cookie, g);
    warm(ctx, other, g);
    act conv = {.what = CONVERT, .username = "carol", .password = TL_PASSWORD};
    run_act(ctx, cookie, &conv);
    ck_assert_int_eq(resolve(ctx, cookie, NULL), 0);
    ck_assert_int_eq(resolve(ctx, other, NULL), 0);
    bool is_guest = true;
    ck_assert_int_eq(tl_whoami(ctx, conv.cookie, &is_guest), g);
    ck_assert(!is_guest);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(password_change_drops_every_session_of_the_user)
{
    guest_ctx *ctx = cache_ctx(60, 10000);
    int64_t alice = tl_new_user(ctx, "alice", TL_PASSWORD);
    act a = {.what = LOGIN, .username = "alice", .password = TL_PASSWORD},
        b = a;
    run_act(ctx, NULL, &a);
    run_act(ctx, NULL, &b);
    warm(ctx, a.cookie, alice);
    warm(ctx, b.cookie, alice);
    act change = {.what = CHANGE, .password = "Velvet-Harbor-93"};
    run_act(ctx, a.cookie, &change);
    ck_assert_int_eq(resolve(ctx, a.cookie, NULL), 0);
    ck_assert_int_eq(resolve(ctx, b.cookie, NULL), 0);
    ck_assert_int_eq(resolve(ctx, change.cookie, NULL), alice);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(user_management_drops_the_users_sessions)
{
    guest_ctx *ctx = cache_ctx(60, 10000);
    int64_t alice = tl_new_user(ctx, "alice", TL_PASSWORD);
    act a = {.what = LOGIN, .username = "alice", .password = TL_PASSWORD};
    guest_error err;

    run_act(ctx, NULL, &a);
    warm(ctx, a.cookie, alice);
    ck_assert_int_eq(guest_user_set_active(ctx, "alice", false, &err),
                     GUEST_OK);
    ck_assert_int_eq(resolve(ctx, a.cookie, NULL), 0);
    ck_assert_int_eq(guest_user_set_active(ctx, "alice", true, &err), GUEST_OK);

    run_act(ctx, NULL, &a);
    warm(ctx, a.cookie, alice);
    guest_form_errors errors;
    ck_assert_int_eq(guest_user_set_password(ctx, "alice", "Velvet-Harbor-93",
                                             &errors, &err),
                     GUEST_OK);
    ck_assert_int_eq(resolve(ctx, a.cookie, NULL), 0);

    a.password = "Velvet-Harbor-93";
    run_act(ctx, NULL, &a);
    warm(ctx, a.cookie, alice);
    int64_t deleted = 0;
    ck_assert_int_eq(guest_user_delete(ctx, "alice", &deleted, &err), GUEST_OK);
    ck_assert_int_eq(deleted, alice);
    ck_assert_int_eq(resolve(ctx, a.cookie, NULL), 0);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(cleanup_drops_deleted_guests)
{
    guest_ctx *ctx = cache_ctx(60, 10000);
    char cookie[128];
    int64_t g = tl_new_guest(ctx, cookie, sizeof cookie);
    warm(ctx, cookie, g);
    int64_t alice = tl_new_user(ctx, "alice", TL_PASSWORD);
    act a = {.what = LOGIN, .username = "alice", .password = TL_PASSWORD};
    run_act(ctx, NULL, &a);
    warm(ctx, a.cookie, alice);
    /* A dry run deletes nothing, and keeps the cache. */
    guest_cleanup_options o;
    guest_cleanup_options_init(&o);
    o.cutoff = (int64_t)time(NULL) + 3600;
    o.dry_run = true;
    guest_cleanup_result r;
    guest_error err;
    ck_assert_int_eq(guest_delete_expired(ctx, &o, &r, &err), GUEST_OK);
    unsigned long trips;
    ck_assert_int_eq(resolve(ctx, cookie, &trips), g);
    ck_assert_uint_eq(trips, 0);
    o.dry_run = false;
    ck_assert_int_eq(guest_delete_expired(ctx, &o, &r, &err), GUEST_OK);
    ck_assert_uint_eq(r.users_deleted, 1);
    ck_assert_int_eq(resolve(ctx, cookie, NULL), 0);
    /* Registered users' sessions were cached before too: asked again once,
     * then cached anew. */
    ck_assert_int_eq(resolve(ctx, a.cookie, &trips), alice);
    ck_assert_uint_ge(trips, 1);
    ck_assert_int_eq(resolve(ctx, a.cookie, &trips), alice);
    ck_assert_uint_eq(trips, 0);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(settings_are_validated)
{
    struct {
        unsigned ttl, size;
        const char *field; /* NULL: accepted */
    } cases[] = {
        {3601, 10000, "session_cache_ttl"},
        {UINT32_MAX, 10000, "session_cache_ttl"},
        {60, 0, "session_cache_size"},
        {60, 1000001, "session_cache_size"},
        {0, 0, NULL}, /* off: the size is not used */
        {3600, 1, NULL},
        {1, 1000000, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        guest_config c;
        tl_config(&c, SCHEMA);
        c.session_cache_ttl = cases[i].ttl;
        c.session_cache_size = cases[i].size;
        guest_ctx *ctx = NULL;
        guest_error err = {0};
        guest_status st = guest_ctx_new(&c, &ctx, &err);
        if (cases[i].field) {
            ck_assert_int_eq(st, GUEST_ERR_CONFIG);
            ck_assert_ptr_null(ctx);
            ck_assert_ptr_nonnull(strstr(err.message, cases[i].field));
        } else {
            ck_assert_msg(st == GUEST_OK, "%s", err.message);
            ck_assert_uint_eq(guest__session_cache_count(ctx), 0);
        }
        guest_ctx_free(ctx);
    }
}
END_TEST

/* A lookup that began before a drop must not store what it read: the
 * drop may have removed just that (its database row was read before the
 * logout committed). */
START_TEST(a_drop_during_a_lookup_wins)
{
    guest_ctx *ctx = cache_ctx(60, 10000);
    unsigned char hash[GUEST__SHA256_BYTES];
    memset(hash, 0x5a, sizeof hash);
    guest_user u = {.id = 7, .username = "someone"}, out;
    guest__cache_ticket t = guest__session_cache_ticket(ctx, hash);
    guest__session_cache_drop_token(ctx, hash);
    guest__session_cache_put(ctx, hash, &u, 60000, &t);
    ck_assert(!guest__session_cache_get(ctx, hash, &out));
    t = guest__session_cache_ticket(ctx, hash);
    guest__session_cache_drop_user(ctx, 8);
    guest__session_cache_put(ctx, hash, &u, 60000, &t);
    ck_assert(!guest__session_cache_get(ctx, hash, &out));
    /* cleanup's deletions, by the epoch */
    t = guest__session_cache_ticket(ctx, hash);
    atomic_fetch_add(&ctx->session_epoch, 1);
    guest__session_cache_put(ctx, hash, &u, 60000, &t);
    ck_assert(!guest__session_cache_get(ctx, hash, &out));
    /* nothing in between: stored, for the shorter of ttl and session */
    t = guest__session_cache_ticket(ctx, hash);
    guest__session_cache_put(ctx, hash, &u, 60000, &t);
    ck_assert(guest__session_cache_get(ctx, hash, &out));
    ck_assert_int_eq(out.id, 7);
    ck_assert_str_eq(out.username, "someone");
    /* a session that already ended is not stored */
    unsigned char other[GUEST__SHA256_BYTES];
    memset(other, 0xa5, sizeof other);
    t = guest__session_cache_ticket(ctx, other);
    guest__session_cache_put(ctx, other, &u, 0, &t);
    ck_assert(!guest__session_cache_get(ctx, other, &out));
    guest_ctx_free(ctx);
}
END_TEST

/* ---- threads ---- */

#define THREADS 8
#define PER_THREAD 3
#define ROUNDS 60

typedef struct worker {
    guest_ctx *ctx;
    int n;
    bool failed;
    char why[160];
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    char cookies[PER_THREAD][128];
    int64_t ids[PER_THREAD];
    for (int i = 0; i < PER_THREAD; i++)
        ids[i] = tl_new_guest(w->ctx, cookies[i], sizeof cookies[i]);
    for (int r = 0; r < ROUNDS && !w->failed; r++) {
        for (int i = 0; i < PER_THREAD; i++) {
            int64_t id = tl_whoami(w->ctx, cookies[i], NULL);
            if (id != ids[i]) {
                w->failed = true;
                snprintf(w->why, sizeof w->why,
                         "round %d: a live session resolved to %lld, not "
                         "%lld",
                         r, (long long)id, (long long)ids[i]);
            }
        }
        int i = r % PER_THREAD;
        if (r % 5 == 4) {
            /* Every other thread keeps resolving meanwhile; the logout
             * still takes effect at once here. */
            act out = {.what = LOGOUT};
            run_act(w->ctx, cookies[i], &out);
            int64_t id = tl_whoami(w->ctx, cookies[i], NULL);
            if (id != 0 && !w->failed) {
                w->failed = true;
                snprintf(w->why, sizeof w->why,
                         "round %d: a logged-out session resolved to %lld", r,
                         (long long)id);
            }
            ids[i] = tl_new_guest(w->ctx, cookies[i], sizeof cookies[i]);
        } else if (r % 7 == 6) {
            guest__session_cache_drop_user(w->ctx, ids[i]);
        }
    }
    return NULL;
}

START_TEST(threads_resolve_and_log_out_at_once)
{
    /* Smaller than the sessions in use, so entries are evicted too. */
    cache_ttl = 60;
    cache_size = 16;
    pool_size = 4;
    guest_ctx *ctx = tl_ctx(SCHEMA, cached);
    pthread_t t[THREADS];
    worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker){.ctx = ctx, .n = i};
        ck_assert_int_eq(pthread_create(&t[i], NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < THREADS; i++)
        ck_assert_msg(!w[i].failed, "thread %d: %s", i, w[i].why);
    ck_assert_uint_le(guest__session_cache_count(ctx), 16);
    guest_ctx_free(ctx);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("session_cache");
    TCase *tc = tcase_create("session_cache");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, off_by_default_every_request_asks_the_database);
    tcase_add_test(tc, a_hit_costs_no_round_trip);
    tcase_add_test(tc, a_change_elsewhere_is_seen_within_the_ttl);
    tcase_add_test(tc, entries_expire_after_the_ttl);
    tcase_add_test(tc, entries_never_outlive_their_session);
    tcase_add_test(tc, the_least_recently_used_goes_first);
    tcase_add_test(tc, the_size_bound_holds_across_shards);
    tcase_add_test(tc, logout_and_login_drop_the_old_session);
    tcase_add_test(tc, conversion_drops_every_session_of_the_guest);
    tcase_add_test(tc, password_change_drops_every_session_of_the_user);
    tcase_add_test(tc, user_management_drops_the_users_sessions);
    tcase_add_test(tc, cleanup_drops_deleted_guests);
    tcase_add_test(tc, settings_are_validated);
    tcase_add_test(tc, a_drop_during_a_lookup_wins);
    tcase_add_test(tc, threads_resolve_and_log_out_at_once);
    suite_add_tcase(s, tc);
    return tl_run(s);
}

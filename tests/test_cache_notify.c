/* The session cache kept true across processes: two contexts on one
 * schema, both caching, and a change made through one (or by hand, or by
 * cleanup) refuses the session on the other through LISTEN/NOTIFY, long
 * before the hour-long ttl. While the LISTEN connection is down the cache
 * answers nothing; it is emptied and trusted again once it is back. Two
 * schemas hear only their own changes, and a context whose listener cannot
 * connect is freed at once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "testlib.h"

#define SCHEMA "t_cache_notify"
#define OTHER "t_cache_notify_other"
/* Every wait for something to arrive gives up after this long. */
#define WAIT_MS 10000

static char listen_conninfo[512];

static void setup(void)
{
    tl_drop_schema(SCHEMA);
    tl_drop_schema(OTHER);
    listen_conninfo[0] = '\0';
}

/* The cache on for an hour: anything seen sooner came from a
 * notification. */
static void cached(guest_config *c)
{
    c->session_cache_ttl = 3600;
    if (listen_conninfo[0])
        c->session_cache_listen_conninfo = listen_conninfo;
}

static guest_ctx *cache_ctx(const char *schema)
{
    return tl_ctx(schema, cached);
}

static guest_metrics metrics(guest_ctx *ctx)
{
    guest_metrics m;
    guest_metrics_get(ctx, &m);
    return m;
}

/* Resolves @p cookie on @p ctx until a second lookup is a cache hit. */
static void warm(guest_ctx *ctx, const char *cookie, int64_t id)
{
    ck_assert_int_eq(tl_whoami(ctx, cookie, NULL), id);
    uint64_t hits = metrics(ctx).session_cache_hits;
    ck_assert_int_eq(tl_whoami(ctx, cookie, NULL), id);
    ck_assert_uint_eq(metrics(ctx).session_cache_hits, hits + 1);
}

/* Polls @p ctx until @p cookie resolves to nobody; false when it still
 * resolved after WAIT_MS (the cache kept a stale entry). */
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

typedef struct act {
    enum { LOGOUT, LOGIN, CONVERT, CHANGE } what;
    const char *username, *password;
    guest_status st;
    guest_error err;
    char cookie[128];
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

static void run_act(guest_ctx *ctx, const char *cookie, act *a)
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
}

START_TEST(a_logout_on_one_node_is_refused_on_the_other)
{
    guest_ctx *a = cache_ctx(SCHEMA), *b = cache_ctx(SCHEMA);
    ck_assert_uint_eq(metrics(b).session_cache_listening, 1);
    char cookie[128];
    int64_t g = tl_new_guest(a, cookie, sizeof cookie);
    warm(b, cookie, g);
    uint64_t heard = metrics(b).session_cache_invalidations;
    act out = {.what = LOGOUT};
    run_act(a, cookie, &out);
    ck_assert(refused_soon(b, cookie));
    ck_assert_uint_gt(metrics(b).session_cache_invalidations, heard);
    guest_ctx_free(a);
    guest_ctx_free(b);
}
END_TEST

START_TEST(password_change_and_deactivation_reach_the_other_node)
{
    guest_ctx *a = cache_ctx(SCHEMA), *b = cache_ctx(SCHEMA);
    int64_t alice = tl_new_user(a, "alice", TL_PASSWORD);
    act one = {.what = LOGIN, .username = "alice", .password = TL_PASSWORD},
        two = one;
    run_act(a, NULL, &one);
    run_act(a, NULL, &two);
    warm(b, two.cookie, alice);
    /* Changed through session one: session two ends everywhere. */
    act change = {.what = CHANGE, .password = "Velvet-Harbor-93"};
    run_act(a, one.cookie, &change);
    ck_assert(refused_soon(b, two.cookie));

    /* Deactivated by the admin API on A. */
    warm(b, change.cookie, alice);
    guest_error err;
    ck_assert_int_eq(guest_user_set_active(a, "alice", false, &err), GUEST_OK);
    ck_assert(refused_soon(b, change.cookie));
    guest_ctx_free(a);
    guest_ctx_free(b);
}
END_TEST

START_TEST(a_conversion_reaches_the_other_node)
{
    guest_ctx *a = cache_ctx(SCHEMA), *b = cache_ctx(SCHEMA);
    char cookie[128];
    int64_t g = tl_new_guest(a, cookie, sizeof cookie);
    warm(b, cookie, g);
    act conv = {.what = CONVERT, .username = "carol", .password = TL_PASSWORD};
    run_act(a, cookie, &conv);
    ck_assert(refused_soon(b, cookie));
    bool is_guest = true;
    ck_assert_int_eq(tl_whoami(b, conv.cookie, &is_guest), g);
    ck_assert(!is_guest);
    guest_ctx_free(a);
    guest_ctx_free(b);
}
END_TEST

START_TEST(changes_by_hand_reach_the_cache)
{
    guest_ctx *a = cache_ctx(SCHEMA), *b = cache_ctx(SCHEMA);
    char cookie[128];
    /* A user deactivated in SQL (the users trigger). */
    int64_t bob = tl_new_user(a, "bob", TL_PASSWORD);
    act in = {.what = LOGIN, .username = "bob", .password = TL_PASSWORD};
    run_act(a, NULL, &in);
    warm(b, in.cookie, bob);
    tl_exec_in(SCHEMA, "UPDATE @.users SET is_active = false"
                       " WHERE username = 'bob'");
    ck_assert(refused_soon(b, in.cookie));

    /* A guest turned into a registered user in SQL (the guests
     * trigger): the cached "guest" must go. */
    int64_t g = tl_new_guest(a, cookie, sizeof cookie);
    bool is_guest = false;
    ck_assert_int_eq(tl_whoami(b, cookie, &is_guest), g);
    ck_assert(is_guest);
    warm(b, cookie, g);
    char sql[128];
    snprintf(sql, sizeof sql, "DELETE FROM @.guests WHERE user_id = %lld",
             (long long)g);
    tl_exec_in(SCHEMA, sql);
    long long until = tl_now_ms() + WAIT_MS;
    while (tl_whoami(b, cookie, &is_guest) == g && is_guest &&
           tl_now_ms() < until)
        usleep(5 * 1000);
    ck_assert(!is_guest);

    /* Sessions deleted in SQL, one and then many (one notification per
     * row, which the listener may take as one flush). */
    g = tl_new_guest(a, cookie, sizeof cookie);
    warm(b, cookie, g);
    snprintf(sql, sizeof sql, "DELETE FROM @.sessions WHERE user_id = %lld",
             (long long)g);
    tl_exec_in(SCHEMA, sql);
    ck_assert(refused_soon(b, cookie));

    g = tl_new_guest(a, cookie, sizeof cookie);
    for (int i = 0; i < 150; i++) {
        char other[128];
        tl_new_guest(a, other, sizeof other);
    }
    warm(b, cookie, g);
    tl_exec_in(SCHEMA, "DELETE FROM @.sessions");
    ck_assert(refused_soon(b, cookie));
    guest_ctx_free(a);
    guest_ctx_free(b);
}
END_TEST

START_TEST(cleanup_on_one_node_reaches_the_other)
{
    guest_ctx *a = cache_ctx(SCHEMA), *b = cache_ctx(SCHEMA);
    char cookie[128];
    int64_t g = tl_new_guest(a, cookie, sizeof cookie);
    warm(b, cookie, g);
    guest_cleanup_options o;
    guest_cleanup_options_init(&o);
    o.cutoff = (int64_t)time(NULL) + 3600; /* this live guest too */
    guest_cleanup_result r;
    guest_error err;
    ck_assert_int_eq(guest_delete_expired(a, &o, &r, &err), GUEST_OK);
    ck_assert_uint_eq(r.users_deleted, 1);
    ck_assert(refused_soon(b, cookie));
    guest_ctx_free(a);
    guest_ctx_free(b);
}
END_TEST

/* B listens as a role of its own, so the test can cut it off: its
 * backend terminated and its logins refused, it stays down. */
START_TEST(while_the_listener_is_down_nothing_is_served_stale)
{
    char role[64];
    snprintf(role, sizeof role, "t_cache_notify_%d", (int)getpid());
    char sql[256];
    snprintf(sql, sizeof sql, "DROP ROLE IF EXISTS %s", role);
    tl_exec(sql);
    snprintf(sql, sizeof sql, "CREATE ROLE %s LOGIN", role);
    tl_exec(sql);
    snprintf(listen_conninfo, sizeof listen_conninfo,
             "%s user=%s application_name=%s", tl_conninfo(), role, role);
    guest_ctx *b = cache_ctx(SCHEMA);
    listen_conninfo[0] = '\0';
    guest_ctx *a = cache_ctx(SCHEMA);
    ck_assert(listening_is(b, 1));

    char x[128], y[128];
    int64_t gx = tl_new_guest(a, x, sizeof x);
    int64_t gy = tl_new_guest(a, y, sizeof y);
    warm(b, x, gx);
    warm(b, y, gy);

    snprintf(sql, sizeof sql, "ALTER ROLE %s NOLOGIN", role);
    tl_exec(sql);
    snprintf(sql, sizeof sql,
             "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
             " WHERE application_name = '%s'",
             role);
    ck_assert_int_eq(tl_scalar(sql), 1);
    ck_assert(listening_is(b, 0));

    /* Down: every lookup asks the database, so a change by hand is seen
     * at once, and nothing is a hit. */
    uint64_t hits = metrics(b).session_cache_hits;
    ck_assert_int_eq(tl_whoami(b, x, NULL), gx);
    snprintf(sql, sizeof sql, "DELETE FROM @.sessions WHERE user_id = %lld",
             (long long)gx);
    tl_exec_in(SCHEMA, sql);
    ck_assert_int_eq(tl_whoami(b, x, NULL), 0);
    /* y changes unseen while down: its old entry must not come back. */
    snprintf(sql, sizeof sql, "DELETE FROM @.sessions WHERE user_id = %lld",
             (long long)gy);
    tl_exec_in(SCHEMA, sql);
    ck_assert_uint_eq(metrics(b).session_cache_hits, hits);

    snprintf(sql, sizeof sql, "ALTER ROLE %s LOGIN", role);
    tl_exec(sql);
    ck_assert(listening_is(b, 1));
    ck_assert_int_eq(tl_whoami(b, y, NULL), 0);
    /* Back up: the cache answers again, and hears again. */
    char z[128];
    int64_t gz = tl_new_guest(a, z, sizeof z);
    warm(b, z, gz);
    act out = {.what = LOGOUT};
    run_act(a, z, &out);
    ck_assert(refused_soon(b, z));

    guest_ctx_free(a);
    guest_ctx_free(b);
    snprintf(sql, sizeof sql, "DROP ROLE %s", role);
    tl_exec(sql);
}
END_TEST

START_TEST(two_schemas_do_not_invalidate_each_other)
{
    guest_ctx *a = cache_ctx(SCHEMA), *other = cache_ctx(OTHER);
    char mine[128], theirs[128];
    int64_t g = tl_new_guest(other, theirs, sizeof theirs);
    int64_t h = tl_new_guest(a, mine, sizeof mine);
    warm(other, theirs, g);
    warm(a, mine, h);
    uint64_t heard = metrics(other).session_cache_invalidations;
    tl_exec_in(SCHEMA, "DELETE FROM @.sessions");
    /* Once A heard its own schema's change, OTHER had its chance to. */
    ck_assert(refused_soon(a, mine));
    ck_assert_uint_eq(metrics(other).session_cache_invalidations, heard);
    uint64_t hits = metrics(other).session_cache_hits;
    ck_assert_int_eq(tl_whoami(other, theirs, NULL), g);
    ck_assert_uint_eq(metrics(other).session_cache_hits, hits + 1);
    guest_ctx_free(a);
    guest_ctx_free(other);
}
END_TEST

static unsigned short_timeout_ms;

static void unreachable(guest_config *c)
{
    cached(c);
    c->db_timeout_ms = short_timeout_ms;
}

/* A listener that cannot reach its database (refused, or a silent
 * address): the context starts with its cache off, serves from the
 * database, and is freed without waiting for the network. */
START_TEST(a_context_whose_listener_cannot_connect_is_freed_at_once)
{
    static const char *const where[] = {
        "host=127.0.0.1 port=1",
        /* TEST-NET-1: nothing answers, the connect waits */
        "hostaddr=192.0.2.1 port=5432",
    };
    for (size_t i = 0; i < sizeof where / sizeof *where; i++) {
        snprintf(listen_conninfo, sizeof listen_conninfo, "%s", where[i]);
        short_timeout_ms = 6000;
        guest_ctx *b = tl_ctx(SCHEMA, unreachable);
        listen_conninfo[0] = '\0';
        ck_assert_uint_eq(metrics(b).session_cache_listening, 0);
        char cookie[128];
        int64_t g = tl_new_guest(b, cookie, sizeof cookie);
        for (int k = 0; k < 3; k++)
            ck_assert_int_eq(tl_whoami(b, cookie, NULL), g);
        ck_assert_uint_eq(metrics(b).session_cache_hits, 0);
        /* Let it get into its reconnect (or connect) wait. */
        usleep(300 * 1000);
        long long t0 = tl_now_ms();
        guest_ctx_free(b);
        long long took = tl_now_ms() - t0;
        /* Not a timing figure: a free that waited for the network would
         * take its whole db_timeout_ms (6 s) or more. */
        ck_assert_msg(took < 3000, "guest_ctx_free took %lld ms", took);
    }
}
END_TEST

static void behind_pooler(guest_config *c)
{
    cached(c);
    c->db_pooler = GUEST_DB_POOLER_TRANSACTION;
}

/* A transaction-mode pooler cannot LISTEN: without a conninfo of its own
 * the cache stays off (every lookup asks the database); with one naming
 * PostgreSQL it works. (The fixture is PostgreSQL itself, told it is a
 * pooler: the library goes by db_pooler.) */
START_TEST(behind_a_transaction_pooler_the_cache_needs_its_own_conninfo)
{
    guest_ctx *a = tl_ctx(SCHEMA, behind_pooler);
    ck_assert_uint_eq(metrics(a).session_cache_listening, 0);
    char cookie[128];
    int64_t g = tl_new_guest(a, cookie, sizeof cookie);
    for (int k = 0; k < 3; k++)
        ck_assert_int_eq(tl_whoami(a, cookie, NULL), g);
    ck_assert_uint_eq(metrics(a).session_cache_hits, 0);
    guest_ctx_free(a);

    snprintf(listen_conninfo, sizeof listen_conninfo, "%s", tl_conninfo());
    guest_ctx *b = tl_ctx(SCHEMA, behind_pooler);
    listen_conninfo[0] = '\0';
    ck_assert_uint_eq(metrics(b).session_cache_listening, 1);
    warm(b, cookie, g);
    tl_exec_in(SCHEMA, "DELETE FROM @.sessions");
    ck_assert(refused_soon(b, cookie));
    guest_ctx_free(b);
}
END_TEST

START_TEST(a_malformed_listen_conninfo_is_a_config_error)
{
    guest_config c;
    tl_config(&c, SCHEMA);
    c.session_cache_ttl = 60;
    c.session_cache_listen_conninfo = "this is not a conninfo";
    guest_ctx *ctx = NULL;
    guest_error err;
    ck_assert_int_eq(guest_ctx_new(&c, &ctx, &err), GUEST_ERR_CONFIG);
    ck_assert_ptr_null(ctx);
    ck_assert_ptr_nonnull(strstr(err.message, "session_cache_listen_conninfo"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cache_notify");
    TCase *tc = tcase_create("notify");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, a_logout_on_one_node_is_refused_on_the_other);
    tcase_add_test(tc, password_change_and_deactivation_reach_the_other_node);
    tcase_add_test(tc, a_conversion_reaches_the_other_node);
    tcase_add_test(tc, changes_by_hand_reach_the_cache);
    tcase_add_test(tc, cleanup_on_one_node_reaches_the_other);
    tcase_add_test(tc, while_the_listener_is_down_nothing_is_served_stale);
    tcase_add_test(tc, two_schemas_do_not_invalidate_each_other);
    tcase_add_test(tc,
                   a_context_whose_listener_cannot_connect_is_freed_at_once);
    tcase_add_test(
        tc, behind_a_transaction_pooler_the_cache_needs_its_own_conninfo);
    tcase_add_test(tc, a_malformed_listen_conninfo_is_a_config_error);
    suite_add_tcase(s, tc);
    return tl_run(s);
}

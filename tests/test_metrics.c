/* guest_metrics_get() and guest_metrics_text() against the fixture
 * database: each counter moves by exactly one event's worth, the text is
 * well-formed Prometheus exposition format, and totals stay exact under
 * eight threads. STATIC for the histogram's bucket edges. */
#include <pthread.h>
#include <regex.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "testlib.h"

#define SCHEMA "t_metrics"

static guest_metrics snap(guest_ctx *ctx)
{
    guest_metrics m;
    memset(&m, 0xA5, sizeof m);
    guest_metrics_get(ctx, &m);
    return m;
}

/* Every counter of @p a equals @p b's, but for the ones the caller
 * changed in its copy of @p a first. */
static void same_counters(const guest_metrics *a, const guest_metrics *b)
{
    ck_assert_uint_eq(a->guests_created, b->guests_created);
    ck_assert_uint_eq(a->crawlers_blocked, b->crawlers_blocked);
    ck_assert_uint_eq(a->sessions_resolved, b->sessions_resolved);
    ck_assert_uint_eq(a->session_cache_hits, b->session_cache_hits);
    ck_assert_uint_eq(a->conversions, b->conversions);
    ck_assert_uint_eq(a->logins_ok, b->logins_ok);
    ck_assert_uint_eq(a->logins_failed, b->logins_failed);
    ck_assert_uint_eq(a->logins_limited, b->logins_limited);
    ck_assert_uint_eq(a->logouts, b->logouts);
    ck_assert_uint_eq(a->rate_limited, b->rate_limited);
    ck_assert_uint_eq(a->cleanup_deleted, b->cleanup_deleted);
    ck_assert_uint_eq(a->db_errors, b->db_errors);
}

/* ---- requests ---- */

typedef enum action { ALLOW, WHOAMI, LOGIN, LOGOUT, CONVERT } action;

typedef struct call {
    action what;
    const char *username, *password;
    guest_status st;
} call;

static void noop(guest_req *req, void *ud)
{
    (void)req;
    (void)ud;
}

static void call_handler(guest_req *req, void *ud)
{
    call *c = ud;
    const guest_user *u;
    switch (c->what) {
    case ALLOW:
        c->st = guest_allow(req, noop, NULL);
        break;
    case WHOAMI:
        c->st = guest_req_user(req, &u, NULL);
        break;
    case LOGIN:
        c->st = guest_login(req, c->username, c->password, NULL, NULL);
        break;
    case LOGOUT:
        c->st = guest_logout(req, NULL);
        break;
    case CONVERT:
        c->st = guest_convert(req, c->username, c->password, c->password, NULL,
                              NULL);
        break;
    }
}

/* One request doing @p c, with @p cookie and @p agent (either may be
 * NULL); the new session cookie, if any, into @p set (may be NULL). */
static guest_status request(guest_ctx *ctx, call *c, const char *cookie,
                            const char *agent, char *set, size_t size)
{
    tl_http h;
    tl_http_init(&h, "POST", "/");
    if (cookie)
        tl_http_add(&h, "Cookie", cookie);
    if (agent)
        tl_http_add(&h, "User-Agent", agent);
    c->st = GUEST_ERR_INVALID;
    tl_http_run(ctx, &h, call_handler, c);
    if (set && !tl_http_cookie(&h, "sessionid", set, size))
        *set = '\0';
    tl_http_free(&h);
    return c->st;
}

static guest_status act(guest_ctx *ctx, action what, const char *cookie)
{
    call c = {.what = what};
    return request(ctx, &c, cookie, NULL, NULL, 0);
}

/* ---- each counter on its event ---- */

START_TEST(fresh_context_counts_nothing)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, NULL);
    guest_metrics zero = {0}, m = snap(ctx);
    same_counters(&m, &zero);
    ck_assert_uint_eq(m.hash_wait.count, 0);
    ck_assert_uint_eq(m.pool_size, 4);
    ck_assert_uint_le(m.pool_open, 4);
    ck_assert_uint_eq(m.pool_busy, 0);
    ck_assert_int_eq(m.cleanup_last_success, 0);
    /* NULL arguments: nothing happens */
    guest_metrics_get(NULL, &m);
    guest_metrics_get(ctx, NULL);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(guests_sessions_and_crawlers)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, NULL);
    guest_metrics want = snap(ctx);

    call c = {.what = ALLOW};
    char cookie[128];
    ck_assert_int_eq(request(ctx, &c, NULL, NULL, cookie, sizeof cookie),
                     GUEST_OK);
    ck_assert_str_ne(cookie, "");
    want.guests_created++;
    guest_metrics m = snap(ctx);
    same_counters(&m, &want);

    /* the returning guest: resolved, nothing created */
    ck_assert_int_eq(act(ctx, ALLOW, cookie), GUEST_OK);
    ck_assert_int_eq(act(ctx, WHOAMI, cookie), GUEST_OK);
    want.sessions_resolved += 2;
    m = snap(ctx);
    same_counters(&m, &want);

    /* a well-formed token that names no session is not a resolution */
    ck_assert_int_eq(
        act(ctx, WHOAMI,
            "sessionid=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        GUEST_OK);
    m = snap(ctx);
    same_counters(&m, &want);

    /* a crawler stays anonymous and is counted; no guest */
    c = (call){.what = ALLOW};
    ck_assert_int_eq(request(ctx, &c, NULL,
                             "Mozilla/5.0 (compatible; Googlebot/2.1)", cookie,
                             sizeof cookie),
                     GUEST_OK);
    ck_assert_str_eq(cookie, "");
    want.crawlers_blocked++;
    m = snap(ctx);
    same_counters(&m, &want);

    /* guest_req_create_guest counts too */
    tl_new_guest(ctx, cookie, sizeof cookie);
    want.guests_created++;
    m = snap(ctx);
    same_counters(&m, &want);
    guest_ctx_free(ctx);
}
END_TEST

static void one_guest_per_window(guest_config *c)
{
    c->guest_rate_limit = 1;
}

START_TEST(guest_rate_limit_counts)
{
    tl_drop_schema(SCHEMA "_rate");
    guest_ctx *ctx = tl_ctx(SCHEMA "_rate", one_guest_per_window);
    guest_metrics want = snap(ctx);
    ck_assert_int_eq(act(ctx, ALLOW, NULL), GUEST_OK);
    want.guests_created++;
    /* the second guest from the address: refused, visitor anonymous */
    ck_assert_int_eq(act(ctx, ALLOW, NULL), GUEST_OK);
    want.rate_limited++;
    guest_metrics m = snap(ctx);
    same_counters(&m, &want);
    guest_ctx_free(ctx);
}
END_TEST

static void login_limit_two(guest_config *c)
{
    c->login_rate_limit = 2;
}

START_TEST(logins_logouts_and_login_limit)
{
    tl_drop_schema(SCHEMA "_login");
    guest_ctx *ctx = tl_ctx(SCHEMA "_login", login_limit_two);
    tl_new_user(ctx, "alice", TL_PASSWORD);
    guest_metrics want = snap(ctx);
    uint64_t hashes = want.hash_wait.count;

    call c = {.what = LOGIN, .username = "alice", .password = TL_PASSWORD};
    char cookie[128];
    ck_assert_int_eq(request(ctx, &c, NULL, NULL, cookie, sizeof cookie),
                     GUEST_OK);
    want.logins_ok++;
    guest_metrics m = snap(ctx);
    same_counters(&m, &want);
    /* the password was checked in a hash slot */
    ck_assert_uint_gt(m.hash_wait.count, hashes);

    ck_assert_int_eq(act(ctx, LOGOUT, cookie), GUEST_OK);
    want.logouts++;

    c = (call){.what = LOGIN, .username = "alice", .password = "wrong"};
    ck_assert_int_eq(request(ctx, &c, NULL, NULL, NULL, 0), GUEST_ERR_AUTH);
    ck_assert_int_eq(request(ctx, &c, NULL, NULL, NULL, 0), GUEST_ERR_AUTH);
    want.logins_failed += 2;
    m = snap(ctx);
    same_counters(&m, &want);

    /* over login_rate_limit: limited, even with the right password */
    c = (call){.what = LOGIN, .username = "alice", .password = TL_PASSWORD};
    ck_assert_int_eq(request(ctx, &c, NULL, NULL, NULL, 0),
                     GUEST_ERR_RATE_LIMITED);
    want.logins_limited++;
    want.rate_limited++;
    /* an empty form is no login attempt */
    c = (call){.what = LOGIN, .username = "", .password = ""};
    ck_assert_int_eq(request(ctx, &c, NULL, NULL, NULL, 0),
                     GUEST_ERR_VALIDATION);
    m = snap(ctx);
    same_counters(&m, &want);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(conversion_counts)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, NULL);
    char cookie[128];
    tl_new_guest(ctx, cookie, sizeof cookie);
    guest_metrics want = snap(ctx);
    uint64_t hashes = want.hash_wait.count;
    char name[64];
    snprintf(name, sizeof name, "conv%lld", tl_now_ms());
    call c = {.what = CONVERT, .username = name, .password = TL_PASSWORD};
    ck_assert_int_eq(request(ctx, &c, cookie, NULL, NULL, 0), GUEST_OK);
    want.conversions++;
    want.sessions_resolved++; /* guest_convert found the guest */
    guest_metrics m = snap(ctx);
    same_counters(&m, &want);
    ck_assert_uint_gt(m.hash_wait.count, hashes);
    /* a refused conversion (no guest any more) does not count */
    ck_assert_int_ne(request(ctx, &c, NULL, NULL, NULL, 0), GUEST_OK);
    m = snap(ctx);
    same_counters(&m, &want);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(cleanup_counts_deleted_guests)
{
    tl_drop_schema(SCHEMA "_cleanup");
    guest_ctx *ctx = tl_ctx(SCHEMA "_cleanup", NULL);
    char cookie[128];
    for (int i = 0; i < 3; i++)
        tl_new_guest(ctx, cookie, sizeof cookie);
    tl_exec_in(SCHEMA "_cleanup",
               "UPDATE @.guests SET created_at = now() - interval '30 days'");
    tl_new_guest(ctx, cookie, sizeof cookie); /* a young one stays */
    guest_metrics want = snap(ctx);
    ck_assert_int_eq(want.cleanup_last_success, 0);

    guest_cleanup_options o;
    guest_cleanup_options_init(&o);
    o.max_age = 86400;
    o.dry_run = true;
    guest_cleanup_result r;
    ck_assert_int_eq(guest_delete_expired(ctx, &o, &r, NULL), GUEST_OK);
    ck_assert_uint_eq(r.users_deleted, 3);
    guest_metrics m = snap(ctx);
    same_counters(&m, &want);
    ck_assert_int_eq(m.cleanup_last_success, 0);

    o.dry_run = false;
    o.batch_size = 2; /* two batches, both counted */
    ck_assert_int_eq(guest_delete_expired(ctx, &o, &r, NULL), GUEST_OK);
    ck_assert_uint_eq(r.users_deleted, 3);
    want.cleanup_deleted += 3;
    m = snap(ctx);
    same_counters(&m, &want);
    ck_assert_int_gt(m.cleanup_last_success, 1700000000);
    guest_ctx_free(ctx);
}
END_TEST

static void one_connection(guest_config *c)
{
    c->db_pool_size = 1;
    c->db_timeout_ms = 1500;
}

START_TEST(db_errors_and_pool_waits)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, one_connection);
    guest_metrics want = snap(ctx);
    PGresult *res = NULL;
    guest_error err = {0};
    ck_assert_int_eq(
        guest_db_query(ctx, "SELECT no_such_column_here", 0, NULL, &res, &err),
        GUEST_ERR_DB);
    PQclear(res);
    want.db_errors++;
    guest_metrics m = snap(ctx);
    same_counters(&m, &want);
    ck_assert_uint_eq(m.pool_size, 1);
    ck_assert_uint_eq(m.pool_open, 1);
    ck_assert_uint_eq(m.pool_busy, 0);

    /* the only connection lent out: the next statement waits its whole
     * db_timeout_ms for one and finds none */
    PGconn *held = NULL;
    ck_assert_int_eq(guest_db_borrow(ctx, &held, NULL), GUEST_OK);
    m = snap(ctx);
    ck_assert_uint_eq(m.pool_busy, 1);
    guest_histogram before = m.pool_wait;
    ck_assert_int_eq(guest_db_query(ctx, "SELECT 1", 0, NULL, &res, &err),
                     GUEST_ERR_DB_UNAVAILABLE);
    PQclear(res);
    guest_db_return(ctx, held);
    want.db_errors++;
    m = snap(ctx);
    same_counters(&m, &want);
    /* one more wait, of the whole 1.5 s (less the clock's rounding to
     * milliseconds): above the 1 s bucket */
    ck_assert_uint_eq(m.pool_wait.count, before.count + 1);
    ck_assert_uint_eq(m.pool_wait.buckets[6], before.buckets[6]);
    ck_assert_uint_ge(m.pool_wait.sum_us, before.sum_us + 1400000);
    ck_assert_uint_eq(m.pool_busy, 0);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(histogram_bucket_edges)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, NULL);
    guest_histogram b = snap(ctx).hash_wait;
    /* a bound belongs to its own bucket (le: less than or equal) */
    const int64_t waits[] = {-5, 0, 1000, 1001, 5000000, 5000001};
    for (size_t i = 0; i < sizeof waits / sizeof *waits; i++)
        guest__observe_us(ctx, GUEST__H_HASH_WAIT, waits[i]);
    guest_histogram h = snap(ctx).hash_wait;
    const uint64_t add[GUEST_METRICS_BUCKETS] = {3, 4, 4, 4, 4, 4, 4, 5, 6};
    for (unsigned i = 0; i < GUEST_METRICS_BUCKETS; i++)
        ck_assert_uint_eq(h.buckets[i], b.buckets[i] + add[i]);
    ck_assert_uint_eq(h.count, b.count + 6);
    ck_assert_uint_eq(h.sum_us, b.sum_us + 1000 + 1001 + 5000000 + 5000001);
    guest__metric_cache_hit(ctx);
    ck_assert_uint_eq(snap(ctx).session_cache_hits, 1);
    guest_ctx_free(ctx);
}
END_TEST

/* ---- the text ---- */

/* The value of the sample line starting with @p prefix (name and labels,
 * then a space), or -1 when absent. */
static double sample(const char *text, const char *prefix)
{
    size_t n = strlen(prefix);
    for (const char *l = text; l && *l;) {
        if (!strncmp(l, prefix, n) && l[n] == ' ')
            return strtod(l + n + 1, NULL);
        l = strchr(l, '\n');
        if (l)
            l++;
    }
    return -1;
}

/* Checks the exposition format line by line: HELP then TYPE once per
 * family before its samples, every sample `name{labels} value` of a typed
 * family, histogram buckets cumulative with +Inf equal to _count. */
static void check_exposition(const char *text, size_t len)
{
    ck_assert_uint_eq(strlen(text), len);
    ck_assert(len > 0 && text[len - 1] == '\n');
    regex_t sample_re, help_re, type_re;
    ck_assert_int_eq(
        regcomp(&sample_re,
                "^([a-zA-Z_:][a-zA-Z0-9_:]*)"
                "(\\{[a-zA-Z_][a-zA-Z0-9_]*=\"[^\"\\\\]*\""
                "(,[a-zA-Z_][a-zA-Z0-9_]*=\"[^\"\\\\]*\")*\\})? "
                "(-?[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?|\\+Inf|NaN)$",
                REG_EXTENDED),
        0);
    ck_assert_int_eq(regcomp(&help_re,
                             "^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) [^\n]+$",
                             REG_EXTENDED),
                     0);
    ck_assert_int_eq(regcomp(&type_re,
                             "^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) "
                             "(counter|gauge|histogram|summary|untyped)$",
                             REG_EXTENDED),
                     0);
    char family[128] = "", type[16] = "", helped[128] = "";
    char seen[64][128];
    int nseen = 0, samples = 0;
    double last_bucket = -1;
    bool inf_seen = false;
    double inf = -1;
    char *copy = strdup(text);
    char *save = NULL;
    for (char *l = strtok_r(copy, "\n", &save); l;
         l = strtok_r(NULL, "\n", &save)) {
        regmatch_t g[8];
        if (!regexec(&help_re, l, 8, g, 0)) {
            snprintf(helped, sizeof helped, "%.*s",
                     (int)(g[1].rm_eo - g[1].rm_so), l + g[1].rm_so);
            continue;
        }
        if (!regexec(&type_re, l, 8, g, 0)) {
            char name[128];
            snprintf(name, sizeof name, "%.*s", (int)(g[1].rm_eo - g[1].rm_so),
                     l + g[1].rm_so);
            ck_assert_msg(!strcmp(name, helped), "TYPE without HELP: %s", l);
            for (int i = 0; i < nseen; i++)
                ck_assert_msg(strcmp(seen[i], name), "family twice: %s", name);
            ck_assert_int_lt(nseen, 64);
            snprintf(seen[nseen++], sizeof seen[0], "%s", name);
            snprintf(family, sizeof family, "%s", name);
            snprintf(type, sizeof type, "%.*s", (int)(g[2].rm_eo - g[2].rm_so),
                     l + g[2].rm_so);
            last_bucket = -1;
            inf_seen = false;
            continue;
        }
        ck_assert_msg(l[0] != '#', "stray comment: %s", l);
        ck_assert_msg(!regexec(&sample_re, l, 8, g, 0), "bad sample line: %s",
                      l);
        samples++;
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)(g[1].rm_eo - g[1].rm_so),
                 l + g[1].rm_so);
        ck_assert_msg(*family, "sample before any TYPE: %s", l);
        double v = strtod(l + g[4].rm_so, NULL);
        ck_assert_msg(v >= 0, "negative value: %s", l);
        if (strcmp(type, "histogram")) {
            ck_assert_msg(!strcmp(name, family), "%s outside its family", l);
            continue;
        }
        size_t fl = strlen(family);
        ck_assert_msg(!strncmp(name, family, fl), "%s outside its family", l);
        const char *suffix = name + fl;
        if (!strcmp(suffix, "_bucket")) {
            ck_assert_msg(strstr(l, "{le=\""), "bucket without le: %s", l);
            ck_assert_msg(v >= last_bucket, "buckets not cumulative: %s", l);
            ck_assert_msg(!inf_seen, "bucket after +Inf: %s", l);
            last_bucket = v;
            if (strstr(l, "{le=\"+Inf\"}")) {
                inf_seen = true;
                inf = v;
            }
        } else if (!strcmp(suffix, "_count")) {
            ck_assert_msg(inf_seen, "_count before the +Inf bucket: %s", l);
            ck_assert_msg(v == inf, "+Inf bucket != _count: %s", l);
        } else {
            ck_assert_msg(!strcmp(suffix, "_sum"), "unknown sample: %s", l);
        }
    }
    free(copy);
    ck_assert_int_gt(samples, 20);
    regfree(&sample_re);
    regfree(&help_re);
    regfree(&type_re);
}

START_TEST(text_is_prometheus_exposition)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, NULL);
    char cookie[128];
    tl_new_guest(ctx, cookie, sizeof cookie);
    tl_new_guest(ctx, cookie, sizeof cookie);
    ck_assert_int_eq(act(ctx, WHOAMI, cookie), GUEST_OK);
    guest__observe_us(ctx, GUEST__H_HASH_WAIT, 250);
    guest__observe_us(ctx, GUEST__H_HASH_WAIT, 70000);

    char *text = NULL;
    size_t len = 0;
    ck_assert_int_eq(guest_metrics_text(ctx, &text, &len, NULL), GUEST_OK);
    check_exposition(text, len);
    ck_assert_double_eq(sample(text, "guestuser_guests_created_total"), 2);
    ck_assert_double_eq(sample(text, "guestuser_sessions_resolved_total"), 1);
    ck_assert_double_eq(
        sample(text, "guestuser_logins_total{result=\"limited\"}"), 0);
    ck_assert_double_eq(sample(text, "guestuser_db_pool_size"), 4);
    ck_assert_double_eq(
        sample(text, "guestuser_hash_wait_seconds_bucket{le=\"0.001\"}"), 1);
    ck_assert_double_eq(
        sample(text, "guestuser_hash_wait_seconds_bucket{le=\"0.05\"}"), 1);
    ck_assert_double_eq(
        sample(text, "guestuser_hash_wait_seconds_bucket{le=\"0.1\"}"), 2);
    ck_assert_double_eq(sample(text, "guestuser_hash_wait_seconds_count"), 2);
    ck_assert_double_eq_tol(sample(text, "guestuser_hash_wait_seconds_sum"),
                            0.07025, 1e-9);
    ck_assert_ptr_nonnull(
        strstr(text, "# TYPE guestuser_pool_wait_seconds histogram\n"));
    ck_assert_ptr_nonnull(
        strstr(text, "# TYPE guestuser_logins_total counter\n"));
    free(text);

    /* misuse: an error, and the out-parameters cleared */
    text = (char *)"stale";
    len = 7;
    guest_error err = {0};
    ck_assert_int_eq(guest_metrics_text(NULL, &text, &len, &err),
                     GUEST_ERR_INVALID);
    ck_assert_ptr_null(text);
    ck_assert_uint_eq(len, 0);
    ck_assert_int_eq(guest_metrics_text(ctx, NULL, &len, NULL),
                     GUEST_ERR_INVALID);
    /* len is optional */
    ck_assert_int_eq(guest_metrics_text(ctx, &text, NULL, NULL), GUEST_OK);
    free(text);
    guest_ctx_free(ctx);
}
END_TEST

/* ---- eight threads ---- */

#define THREADS 8
#define ROUNDS 15

typedef struct worker {
    guest_ctx *ctx;
    int failures;
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < ROUNDS; i++) {
        call c = {.what = ALLOW};
        char cookie[128];
        if (request(w->ctx, &c, NULL, NULL, cookie, sizeof cookie) !=
                GUEST_OK ||
            !*cookie) {
            w->failures++;
            continue;
        }
        if (act(w->ctx, WHOAMI, cookie) != GUEST_OK)
            w->failures++;
        guest__metric_cache_hit(w->ctx);
    }
    return NULL;
}

typedef struct scraper {
    guest_ctx *ctx;
    _Atomic bool stop;
    int scrapes, failures;
} scraper;

/* Scrapes while the workers count: reading never blocks them or tears. */
static void *scrape(void *arg)
{
    scraper *s = arg;
    while (!atomic_load(&s->stop)) {
        char *text = NULL;
        if (guest_metrics_text(s->ctx, &text, NULL, NULL) != GUEST_OK ||
            !strstr(text, "guestuser_db_connections_busy "))
            s->failures++;
        free(text);
        s->scrapes++;
    }
    return NULL;
}

START_TEST(eight_threads_exact_totals)
{
    tl_drop_schema(SCHEMA "_threads");
    guest_ctx *ctx = tl_ctx(SCHEMA "_threads", NULL);
    guest_metrics before = snap(ctx);
    pthread_t t[THREADS], st;
    worker w[THREADS];
    scraper s = {.ctx = ctx};
    ck_assert_int_eq(pthread_create(&st, NULL, scrape, &s), 0);
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker){.ctx = ctx};
        ck_assert_int_eq(pthread_create(&t[i], NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        ck_assert_int_eq(w[i].failures, 0);
    }
    atomic_store(&s.stop, true);
    pthread_join(st, NULL);
    ck_assert_int_eq(s.failures, 0);

    guest_metrics want = before, m = snap(ctx);
    want.guests_created += THREADS * ROUNDS;
    want.sessions_resolved += THREADS * ROUNDS;
    want.session_cache_hits += THREADS * ROUNDS;
    same_counters(&m, &want);
    ck_assert_int_eq(
        tl_scalar_in(SCHEMA "_threads", "SELECT count(*) FROM @.guests"),
        THREADS * ROUNDS);
    /* every statement waited for its connection once at least */
    ck_assert_uint_ge(m.pool_wait.count,
                      before.pool_wait.count + 2 * THREADS * ROUNDS);
    ck_assert_uint_eq(m.pool_wait.buckets[GUEST_METRICS_BUCKETS - 1],
                      m.pool_wait.count);
    ck_assert_uint_eq(m.pool_busy, 0);
    guest_ctx_free(ctx);
}
END_TEST

static void setup(void)
{
    tl_drop_schema(SCHEMA);
}

static Suite *suite(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("metrics");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, fresh_context_counts_nothing);
    tcase_add_test(tc, guests_sessions_and_crawlers);
    tcase_add_test(tc, guest_rate_limit_counts);
    tcase_add_test(tc, logins_logouts_and_login_limit);
    tcase_add_test(tc, conversion_counts);
    tcase_add_test(tc, cleanup_counts_deleted_guests);
    tcase_add_test(tc, db_errors_and_pool_waits);
    tcase_add_test(tc, histogram_bucket_edges);
    tcase_add_test(tc, text_is_prometheus_exposition);
    tcase_add_test(tc, eight_threads_exact_totals);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tl_run(suite());
}

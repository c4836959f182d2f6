/* Password hashing load: the hash slots (hash_concurrency, hash_wait_ms),
 * the 503 a request gets when none frees in time, and what every login
 * outcome spends, counted in PBKDF2 iterations rather than timed. Links the
 * static library for the slots and the counters. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "accounts/accounts.h"
#include "testlib.h"

#define SCHEMA "t_hashing"
#define LOGIN_FORM(user, pw)                                                   \
    "username=" user "&password=" pw "&csrfmiddlewaretoken=" TL_CSRF

static void setup(void)
{
    tl_drop_schema(SCHEMA);
}

typedef struct attempt {
    const char *username, *password;
    guest_status st;
} attempt;

static void login_handler(guest_req *req, void *ud)
{
    attempt *a = ud;
    a->st = guest_login(req, a->username, a->password, NULL, NULL);
}

/* The PBKDF2 iterations one guest_login() spends, and its status. */
static unsigned long long login_cost(guest_ctx *ctx, const char *username,
                                     const char *password, guest_status *st)
{
    attempt a = {.username = username, .password = password};
    tl_http h;
    tl_http_init(&h, "POST", "/accounts/login/");
    unsigned long long before = atomic_load(&guest__pbkdf2_iterations);
    tl_http_run(ctx, &h, login_handler, &a);
    unsigned long long spent = atomic_load(&guest__pbkdf2_iterations) - before;
    tl_http_free(&h);
    *st = a.st;
    return spent;
}

static void iterations_500(guest_config *c)
{
    c->password_iterations = 500;
}

static void iterations_5000(guest_config *c)
{
    c->password_iterations = 5000;
}

static void stored_hash(const char *username, char *out, size_t size)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT password FROM @.users WHERE username = '%s'", username);
    tl_text_in(SCHEMA, sql, out, size);
}

START_TEST(every_refusal_spends_what_the_slowest_stored_hash_costs)
{
    /* users stored at 500 and 5000 iterations, then a context at 1000: the
     * schema's trigger has noted 5000 as the slowest stored hash */
    guest_ctx *c500 = tl_ctx(SCHEMA, iterations_500);
    tl_new_user(c500, "low", TL_PASSWORD);
    tl_new_user(c500, "low2", TL_PASSWORD);
    guest_ctx_free(c500);
    guest_ctx *c5000 = tl_ctx(SCHEMA, iterations_5000);
    tl_new_user(c5000, "high", TL_PASSWORD);
    guest_ctx_free(c5000);
    guest_ctx *ctx = tl_ctx(SCHEMA, NULL);
    tl_new_user(ctx, "same", TL_PASSWORD);
    tl_new_user(ctx, "broken", TL_PASSWORD);
    tl_exec_in(SCHEMA, "UPDATE @.users SET password = '!' || password"
                       " WHERE username = 'broken'");
    ck_assert_int_eq(tl_scalar_in(SCHEMA, "SELECT max(iterations) FROM"
                                          " @.password_costs WHERE users > 0"),
                     5000);
    char long_name[GUEST_USERNAME_MAX_CHARS + 2];
    memset(long_name, 'a', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';

    struct {
        const char *user, *pw;
        guest_status st;
        unsigned long long cost;
    } cases[] = {
        /* every refusal costs the slowest stored hash: a cheaper stored
         * hash is checked and the rest thrown away */
        {"low", "wrong-password-1", GUEST_ERR_AUTH, 5000},
        {"nobody", TL_PASSWORD, GUEST_ERR_AUTH, 5000},
        {"broken", TL_PASSWORD, GUEST_ERR_AUTH, 5000},
        {"same", "wrong-password-1", GUEST_ERR_AUTH, 5000},
        {"high", "wrong-password-1", GUEST_ERR_AUTH, 5000},
        /* a name no user can have: everyone can tell, one hash */
        {long_name, TL_PASSWORD, GUEST_ERR_AUTH, 1000},
        {"same", TL_PASSWORD, GUEST_OK, 1000},
        /* success on a cheaper hash: the second hash is its upgrade; a
         * dearer one is checked at its own count and kept */
        {"low2", TL_PASSWORD, GUEST_OK, 500 + 1000},
        {"high", TL_PASSWORD, GUEST_OK, 5000},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        guest_status st;
        unsigned long long cost =
            login_cost(ctx, cases[i].user, cases[i].pw, &st);
        ck_assert_msg(st == cases[i].st, "case %zu: %s", i,
                      guest_status_name(st));
        ck_assert_msg(cost >= 1000, "case %zu spent only %llu", i, cost);
        ck_assert_msg(cost == cases[i].cost, "case %zu spent %llu, not %llu", i,
                      cost, cases[i].cost);
    }
    char hash[256];
    /* failing against "low" changed nothing; "low2" was upgraded */
    stored_hash("low", hash, sizeof hash);
    ck_assert(!strncmp(hash, "pbkdf2_sha256$500$", 18));
    stored_hash("low2", hash, sizeof hash);
    ck_assert(!strncmp(hash, "pbkdf2_sha256$1000$", 19));
    ck_assert(guest_password_verify(TL_PASSWORD, hash));
    stored_hash("high", hash, sizeof hash);
    ck_assert(!strncmp(hash, "pbkdf2_sha256$5000$", 19));
    /* the upgraded user now costs the configured count only */
    guest_status st;
    ck_assert_uint_eq(login_cost(ctx, "low2", TL_PASSWORD, &st), 1000);
    ck_assert_int_eq(st, GUEST_OK);
    /* a hash written by hand is noted too */
    tl_exec_in(SCHEMA, "UPDATE @.users SET password ="
                       " 'pbkdf2_sha256$7000$salt$hash' WHERE username ="
                       " 'broken'");
    ck_assert_uint_eq(login_cost(ctx, "nobody", TL_PASSWORD, &st), 7000);
    /* and the cost follows what is stored: gone, it costs no more */
    tl_exec_in(SCHEMA, "DELETE FROM @.users WHERE username IN ('broken',"
                       " 'high')");
    ck_assert_uint_eq(login_cost(ctx, "nobody", TL_PASSWORD, &st), 1000);
    ck_assert_int_eq(tl_scalar_in(SCHEMA, "SELECT sum(users) FROM"
                                          " @.password_costs"),
                     tl_scalar_in(SCHEMA, "SELECT count(*) FROM @.users WHERE"
                                          " password LIKE 'pbkdf2_sha256$%'"));
    guest_ctx_free(ctx);
}
END_TEST

/* ---- the slots ---- */

START_TEST(slots_count_and_time_out)
{
    guest__hashslots *s;
    ck_assert_int_eq(guest__hashslots_new(0, &s), GUEST_ERR_INVALID);
    ck_assert_ptr_null(s);
    ck_assert_int_eq(guest__hashslots_new(2, &s), GUEST_OK);
    ck_assert(guest__hashslots_acquire(s, 0));
    ck_assert(guest__hashslots_acquire(s, 0));
    ck_assert(!guest__hashslots_acquire(s, 0));
    ck_assert(!guest__hashslots_acquire(s, 50));
    guest__hashslots_release(s);
    ck_assert(guest__hashslots_acquire(s, 0));
    ck_assert(!guest__hashslots_acquire(s, 0));
    guest__hashslots_release(s);
    guest__hashslots_release(s);
    guest__hashslots_free(s);
    guest__hashslots_free(NULL);
}
END_TEST

typedef struct giver {
    guest_ctx *ctx;
    guest__hashslots *slots;
} giver;

static void *give_later(void *arg)
{
    giver *g = arg;
    struct timespec ts = {0, 100 * 1000000L};
    nanosleep(&ts, NULL);
    if (g->ctx)
        guest__hash_slot_give(g->ctx);
    else
        guest__hashslots_release(g->slots);
    return NULL;
}

START_TEST(a_waiter_gets_the_slot_another_thread_frees)
{
    guest__hashslots *s;
    ck_assert_int_eq(guest__hashslots_new(1, &s), GUEST_OK);
    ck_assert(guest__hashslots_acquire(s, 0));
    giver g = {.slots = s};
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, give_later, &g), 0);
    /* generous: the release comes after about 100 ms */
    ck_assert(guest__hashslots_acquire(s, 60000));
    pthread_join(t, NULL);
    guest__hashslots_release(s);
    guest__hashslots_free(s);
}
END_TEST

static void one_slot_200ms(guest_config *c)
{
    c->hash_concurrency = 1;
    c->hash_wait_ms = 200;
}

static void one_slot_long_wait(guest_config *c)
{
    c->hash_concurrency = 1;
    c->hash_wait_ms = 60000;
}

static void log_to(guest_log_level level, const char *message, void *ud)
{
    (void)level;
    if (strstr(message, "password hashing busy"))
        atomic_fetch_add((_Atomic int *)ud, 1);
}

static _Atomic int busy_lines;

static void one_slot_200ms_logged(guest_config *c)
{
    one_slot_200ms(c);
    c->log = log_to;
    c->log_userdata = &busy_lines;
}

START_TEST(a_login_without_a_slot_answers_503)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, one_slot_200ms_logged);
    tl_new_user(ctx, "alice", TL_PASSWORD);
    /* another request is hashing */
    ck_assert_int_eq(guest__hash_slot_take(ctx), GUEST_OK);

    unsigned long long runs = atomic_load(&guest__pbkdf2_runs);
    guest_status st;
    login_cost(ctx, "alice", TL_PASSWORD, &st);
    ck_assert_int_eq(st, GUEST_ERR_BUSY);
    login_cost(ctx, "nobody", TL_PASSWORD, &st);
    ck_assert_int_eq(st, GUEST_ERR_BUSY);
    ck_assert_uint_eq(atomic_load(&guest__pbkdf2_runs), runs);

    /* through the login view: 503, Retry-After, a short message */
    tl_http h;
    tl_request(ctx, &h, "POST", "/accounts/login/", "csrftoken=" TL_CSRF, NULL,
               LOGIN_FORM("alice", TL_PASSWORD), guest_login_view, NULL);
    ck_assert_int_eq(h.status, 503);
    ck_assert_str_eq(tl_http_res_header(&h, "Retry-After"), "1");
    ck_assert_ptr_nonnull(strstr(h.res_body, "try again"));
    char session[128];
    ck_assert(!tl_http_cookie(&h, "sessionid", session, sizeof session));
    tl_http_free(&h);

    /* JSON mode answers JSON */
    tl_http_init(&h, "POST", "/accounts/login/");
    tl_http_add(&h, "Host", "testserver");
    tl_http_add(&h, "Accept", "application/json");
    tl_http_add(&h, "Cookie", "csrftoken=" TL_CSRF);
    tl_http_add(&h, "Content-Type", "application/x-www-form-urlencoded");
    h.body = LOGIN_FORM("alice", TL_PASSWORD);
    tl_http_run(ctx, &h, guest_login_view, NULL);
    ck_assert_int_eq(h.status, 503);
    ck_assert_str_eq(tl_http_res_header(&h, "Content-Type"),
                     "application/json");
    ck_assert_str_eq(tl_http_res_header(&h, "Retry-After"), "1");
    ck_assert_ptr_nonnull(strstr(h.res_body, "{\"errors\":{\"__all__\":[\""));
    tl_http_free(&h);

    /* conversion and guest_user_create wait for the same slots */
    char cookie[128], both[300];
    tl_new_guest(ctx, cookie, sizeof cookie);
    snprintf(both, sizeof both, "%s; csrftoken=" TL_CSRF, cookie);
    tl_request(ctx, &h, "POST", "/convert/", both, NULL,
               "username=newname&password1=" TL_PASSWORD
               "&password2=" TL_PASSWORD "&csrfmiddlewaretoken=" TL_CSRF,
               guest_convert_view, NULL);
    ck_assert_int_eq(h.status, 503);
    ck_assert_str_eq(tl_http_res_header(&h, "Retry-After"), "1");
    tl_http_free(&h);
    bool is_guest = false;
    ck_assert_int_ne(tl_whoami(ctx, cookie, &is_guest), 0);
    ck_assert(is_guest);
    ck_assert_int_eq(
        guest_user_create(ctx, "bob", TL_PASSWORD, NULL, NULL, NULL),
        GUEST_ERR_BUSY);
    ck_assert_int_eq(tl_scalar_in(SCHEMA, "SELECT count(*) FROM @.users"
                                          " WHERE username = 'bob'"),
                     0);
    ck_assert_uint_eq(atomic_load(&guest__pbkdf2_runs), runs);
    /* a flood logs one line, not one per request */
    ck_assert_int_eq(atomic_load(&busy_lines), 1);

    /* the slot comes back: everything works again */
    guest__hash_slot_give(ctx);
    tl_request(ctx, &h, "POST", "/accounts/login/", "csrftoken=" TL_CSRF, NULL,
               LOGIN_FORM("alice", TL_PASSWORD), guest_login_view, NULL);
    ck_assert_int_eq(h.status, 302);
    tl_http_free(&h);
    ck_assert_int_eq(
        guest_user_create(ctx, "bob", TL_PASSWORD, NULL, NULL, NULL), GUEST_OK);
    /* pages that hash nothing never wait for a slot */
    ck_assert_int_eq(guest__hash_slot_take(ctx), GUEST_OK);
    ck_assert_int_ne(tl_whoami(ctx, cookie, NULL), 0);
    tl_request(ctx, &h, "GET", "/accounts/login/", NULL, NULL, NULL,
               guest_login_view, NULL);
    ck_assert_int_eq(h.status, 200);
    tl_http_free(&h);
    guest__hash_slot_give(ctx);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(a_login_waits_for_a_slot_freed_in_time)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, one_slot_long_wait);
    tl_new_user(ctx, "alice", TL_PASSWORD);
    ck_assert_int_eq(guest__hash_slot_take(ctx), GUEST_OK);
    giver g = {.ctx = ctx};
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, give_later, &g), 0);
    guest_status st;
    login_cost(ctx, "alice", TL_PASSWORD, &st);
    pthread_join(t, NULL);
    ck_assert_int_eq(st, GUEST_OK);
    /* and gave its slot back */
    ck_assert_int_eq(guest__hash_slot_take(ctx), GUEST_OK);
    guest__hash_slot_give(ctx);
    guest_ctx_free(ctx);
}
END_TEST

/* ---- settings ---- */

static guest_status try_config(unsigned concurrency, unsigned wait_ms,
                               guest_error *err, guest_ctx **ctx)
{
    guest_config c;
    tl_config(&c, SCHEMA);
    c.hash_concurrency = concurrency;
    c.hash_wait_ms = wait_ms;
    return guest_ctx_new(&c, ctx, err);
}

START_TEST(settings_are_checked_and_auto_resolved)
{
    guest_config d;
    guest_config_init(&d);
    ck_assert_uint_eq(d.hash_concurrency, 0);
    ck_assert_uint_eq(d.hash_wait_ms, 2000);

    guest_ctx *ctx = NULL;
    guest_error err;
    ck_assert_int_eq(try_config(1025, 2000, &err, &ctx), GUEST_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(err.message, "hash_concurrency"));
    ck_assert_int_eq(try_config(4000000000u, 2000, &err, &ctx),
                     GUEST_ERR_CONFIG);
    ck_assert_int_eq(try_config(1, 60001, &err, &ctx), GUEST_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(err.message, "hash_wait_ms"));
    ck_assert_ptr_null(ctx);

    /* 0: one fewer than the online cores, at least one */
    ck_assert_int_eq(try_config(0, 0, &err, &ctx), GUEST_OK);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned want = cores > 1 ? (unsigned)(cores - 1) : 1;
    if (want > 1024)
        want = 1024;
    ck_assert_uint_eq(guest_ctx_config(ctx)->hash_concurrency, want);
    ck_assert_uint_eq(guest_ctx_config(ctx)->hash_wait_ms, 0);
    guest_ctx_free(ctx);
    ck_assert_int_eq(try_config(1024, 60000, &err, &ctx), GUEST_OK);
    ck_assert_uint_eq(guest_ctx_config(ctx)->hash_concurrency, 1024);
    guest_ctx_free(ctx);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("hashing");
    TCase *tc = tcase_create("hashing");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, every_refusal_spends_what_the_slowest_stored_hash_costs);
    tcase_add_test(tc, slots_count_and_time_out);
    tcase_add_test(tc, a_waiter_gets_the_slot_another_thread_frees);
    tcase_add_test(tc, a_login_without_a_slot_answers_503);
    tcase_add_test(tc, a_login_waits_for_a_slot_freed_in_time);
    tcase_add_test(tc, settings_are_checked_and_auto_resolved);
    suite_add_tcase(s, tc);
    return tl_run(s);
}

/* Username generators: formats, uniqueness, and the bounded clash retry. */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"

#define SCHEMA "t_names"

static int cmp(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

START_TEST(uuid_names_are_32_hex_and_distinct)
{
    enum { N = 10000 };
    char(*names)[33] = malloc(sizeof(*names) * N);
    guest_config c;
    guest_config_init(&c);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(guest_name_uuid(&c, names[i], 33, NULL), GUEST_OK);
        ck_assert_uint_eq(strlen(names[i]), 32);
        for (int j = 0; j < 32; j++)
            ck_assert(isxdigit((unsigned char)names[i][j]) &&
                      !isupper((unsigned char)names[i][j]));
        /* version 4, RFC 4122 variant */
        ck_assert_int_eq(names[i][12], '4');
        ck_assert(strchr("89ab", names[i][16]));
    }
    qsort(names, N, 33, cmp);
    for (int i = 1; i < N; i++)
        ck_assert_str_ne(names[i - 1], names[i]);
    free(names);
    char small[10];
    ck_assert_int_eq(guest_name_uuid(&c, small, sizeof small, NULL),
                     GUEST_ERR_INVALID);
}
END_TEST

START_TEST(numbered_names_follow_prefix_and_digits)
{
    guest_config c;
    guest_config_init(&c);
    char buf[64];
    bool saw_small = false;
    for (int i = 0; i < 500; i++) {
        ck_assert_int_eq(guest_name_numbered(&c, buf, sizeof buf, NULL),
                         GUEST_OK);
        ck_assert_uint_eq(strlen(buf), 9);
        ck_assert(!strncmp(buf, "Guest", 5));
        int n = atoi(buf + 5);
        ck_assert(n >= 1 && n <= 9999);
        saw_small |= buf[5] == '0';
    }
    ck_assert(saw_small); /* zero padding happens */
    c.name_prefix = "Gast";
    ck_assert_int_eq(guest_name_numbered(&c, buf, sizeof buf, NULL), GUEST_OK);
    ck_assert_uint_eq(strlen(buf), 8);
    c.name_prefix = "anonymous#";
    c.name_suffix_digits = 5;
    ck_assert_int_eq(guest_name_numbered(&c, buf, sizeof buf, NULL), GUEST_OK);
    ck_assert_uint_eq(strlen(buf), 15);
    c.name_suffix_digits = 1;
    for (int i = 0; i < 50; i++) {
        ck_assert_int_eq(guest_name_numbered(&c, buf, sizeof buf, NULL),
                         GUEST_OK);
        ck_assert(buf[10] >= '1' && buf[10] <= '9');
    }
    c.name_suffix_digits = 0;
    ck_assert_int_eq(guest_name_numbered(&c, buf, sizeof buf, NULL),
                     GUEST_ERR_INVALID);
    c.name_suffix_digits = 4;
    ck_assert_int_eq(guest_name_numbered(&c, buf, 8, NULL),
                     GUEST_ERR_TOO_LARGE);
}
END_TEST

START_TEST(friendly_names_are_adjective_noun_number)
{
    guest_config c;
    guest_config_init(&c);
    char buf[64];
    for (int i = 0; i < 200; i++) {
        ck_assert_int_eq(guest_name_friendly(&c, buf, sizeof buf, NULL),
                         GUEST_OK);
        /* Two capitalised words, then 0..99 */
        ck_assert(isupper((unsigned char)buf[0]));
        int caps = 0, digits = 0;
        for (char *p = buf; *p; p++) {
            caps += isupper((unsigned char)*p) != 0;
            digits += isdigit((unsigned char)*p) != 0;
            if (isdigit((unsigned char)*p))
                ck_assert(!isalpha((unsigned char)p[1]));
        }
        ck_assert_int_eq(caps, 2);
        ck_assert(digits >= 1 && digits <= 2);
    }
}
END_TEST

/* ---- with the database ---- */

static guest_status always_same(const guest_config *c, char *buf, size_t n,
                                void *ud)
{
    (void)c;
    (*(int *)ud)++;
    snprintf(buf, n, "taken");
    return GUEST_OK;
}

static guest_status clash_once(const guest_config *c, char *buf, size_t n,
                               void *ud)
{
    (void)c;
    int *calls = ud;
    int call = ++*calls;
    if (call == 1)
        snprintf(buf, n, "taken");
    else
        snprintf(buf, n, "fresh%d", call);
    return GUEST_OK;
}

static guest_status failing(const guest_config *c, char *buf, size_t n,
                            void *ud)
{
    (void)c, (void)buf, (void)n, (void)ud;
    return GUEST_ERR_HOOK;
}

static guest_status empty_name(const guest_config *c, char *buf, size_t n,
                               void *ud)
{
    (void)c, (void)n, (void)ud;
    buf[0] = '\0';
    return GUEST_OK;
}

static void setup(void)
{
    tl_drop_schema(SCHEMA);
}

static guest_ctx *ctx_with(guest_name_fn gen, void *ud)
{
    guest_config c;
    tl_config(&c, SCHEMA);
    c.name_generator = gen;
    c.name_generator_userdata = ud;
    c.name_max_attempts = 5;
    return tl_ctx_new(&c);
}

static tl_created create_one(guest_ctx *ctx)
{
    tl_created out;
    tl_http h;
    tl_http_init(&h, "GET", "/");
    tl_http_run(ctx, &h, tl_create_handler, &out);
    tl_http_free(&h);
    return out;
}

START_TEST(a_clash_is_retried_with_a_fresh_name)
{
    int calls = 0;
    guest_ctx *ctx = ctx_with(clash_once, &calls);
    tl_exec("INSERT INTO t_names.users (username) VALUES ('taken')");
    tl_created r = create_one(ctx);
    ck_assert_int_eq(r.st, GUEST_OK);
    ck_assert_str_eq(r.name, "fresh2");
    ck_assert_int_eq(calls, 2);
    ck_assert_int_eq(tl_scalar("SELECT count(*) FROM t_names.users"), 2);
    ck_assert_int_eq(tl_scalar("SELECT count(*) FROM t_names.guests"), 1);
    ck_assert_int_eq(tl_scalar("SELECT count(*) FROM t_names.sessions"), 1);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(endless_clashes_end_in_a_clear_error)
{
    int calls = 0;
    guest_ctx *ctx = ctx_with(always_same, &calls);
    tl_exec("INSERT INTO t_names.users (username) VALUES ('taken')");
    tl_created r = create_one(ctx);
    ck_assert_int_eq(r.st, GUEST_ERR_NAME_EXHAUSTED);
    ck_assert_int_eq(calls, 5);
    ck_assert_ptr_nonnull(strstr(r.err.message, "5 generated names"));
    /* nothing half written */
    ck_assert_int_eq(tl_scalar("SELECT count(*) FROM t_names.users"), 1);
    ck_assert_int_eq(tl_scalar("SELECT count(*) FROM t_names.guests"), 0);
    ck_assert_int_eq(tl_scalar("SELECT count(*) FROM t_names.sessions"), 0);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(a_failing_or_empty_generator_is_an_error)
{
    guest_ctx *ctx = ctx_with(failing, NULL);
    tl_created r = create_one(ctx);
    ck_assert_int_eq(r.st, GUEST_ERR_HOOK);
    guest_ctx_free(ctx);
    ctx = ctx_with(empty_name, NULL);
    r = create_one(ctx);
    ck_assert_int_eq(r.st, GUEST_ERR_VALIDATION);
    ck_assert_int_eq(tl_scalar("SELECT count(*) FROM t_names.users"), 0);
    guest_ctx_free(ctx);
}
END_TEST

/* What the log callback received. */
typedef struct logged {
    int count;
    guest_log_level level;
    char last[512];
} logged;

static void capture_log(guest_log_level level, const char *message, void *ud)
{
    logged *l = ud;
    l->count++;
    l->level = level;
    snprintf(l->last, sizeof l->last, "%s", message);
}

static guest_ctx *numbered_ctx(unsigned digits, logged *log)
{
    guest_config c;
    tl_config(&c, SCHEMA);
    c.name_generator = guest_name_numbered;
    c.name_suffix_digits = digits;
    c.log = capture_log;
    c.log_userdata = log;
    return tl_ctx_new(&c);
}

/* Digits after the "Guest" prefix, or -1 when the rest is not all digits. */
static int suffix_digits(const char *name)
{
    ck_assert(!strncmp(name, "Guest", 5));
    size_t n = strlen(name + 5);
    return strspn(name + 5, "0123456789") == n ? (int)n : -1;
}

START_TEST(numbered_generator_widens_when_its_space_is_full)
{
    /* One digit: Guest1..Guest9, all taken. The next guest is not an error:
     * the generator grows a digit, and says so once. */
    logged log = {0};
    guest_ctx *ctx = numbered_ctx(1, &log);
    tl_exec("INSERT INTO t_names.users (username) SELECT 'Guest' || n FROM "
            "generate_series(1, 9) AS n");
    tl_created r = create_one(ctx);
    ck_assert_int_eq(r.st, GUEST_OK);
    ck_assert_int_eq(suffix_digits(r.name), 2);
    ck_assert_int_eq(log.count, 1);
    ck_assert_int_eq(log.level, GUEST_LOG_WARNING);
    ck_assert_ptr_nonnull(strstr(log.last, "new guests get 2 digits"));
    /* The context remembers the width: later guests start at two digits
     * without clashing through the full one-digit space first. */
    for (int i = 0; i < 5; i++) {
        r = create_one(ctx);
        ck_assert_int_eq(r.st, GUEST_OK);
        ck_assert_int_eq(suffix_digits(r.name), 2);
    }
    ck_assert_int_eq(log.count, 1);
    /* The configured width is what the application set. */
    ck_assert_uint_eq(guest_ctx_config(ctx)->name_suffix_digits, 1);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(numbered_generator_fills_a_small_space_then_widens)
{
    /* Thirty visitors for nine one-digit names: every one becomes a guest;
     * once two-digit names appear, no one-digit name follows. */
    logged log = {0};
    guest_ctx *ctx = numbered_ctx(1, &log);
    int one = 0, widest = 1;
    for (int i = 0; i < 30; i++) {
        tl_created r = create_one(ctx);
        ck_assert_int_eq(r.st, GUEST_OK);
        int d = suffix_digits(r.name);
        ck_assert_int_ge(d, widest);
        widest = d;
        one += d == 1;
    }
    ck_assert_int_le(one, 9);
    ck_assert_int_ge(widest, 2);
    ck_assert_int_eq(tl_scalar("SELECT count(DISTINCT username) FROM "
                               "t_names.users"),
                     30);
    ck_assert_int_ge(log.count, 1);
    guest_ctx_free(ctx);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("names");
    TCase *tc = tcase_create("generators");
    tcase_add_test(tc, uuid_names_are_32_hex_and_distinct);
    tcase_add_test(tc, numbered_names_follow_prefix_and_digits);
    tcase_add_test(tc, friendly_names_are_adjective_noun_number);
    suite_add_tcase(s, tc);
    TCase *db = tcase_create("clashes");
    tcase_add_checked_fixture(db, setup, NULL);
    tcase_set_timeout(db, 60);
    tcase_add_test(db, a_clash_is_retried_with_a_fresh_name);
    tcase_add_test(db, endless_clashes_end_in_a_clear_error);
    tcase_add_test(db, a_failing_or_empty_generator_is_an_error);
    tcase_add_test(db, numbered_generator_widens_when_its_space_is_full);
    tcase_add_test(db, numbered_generator_fills_a_small_space_then_widens);
    suite_add_tcase(s, db);
    return tl_run(s);
}

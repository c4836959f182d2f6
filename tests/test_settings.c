/* Settings a site and its tools share: guest_config_from_env() and the
 * values a site records in its schema (max_age, password_iterations) that
 * a program leaving them 0 takes. */
#include <stdlib.h>
#include <string.h>

#include "testlib.h"

#define SCHEMA "t_settings"

static void clear_env(void)
{
    static const char *const names[] = {"GUESTUSER_DB",
                                        "GUESTUSER_DB_READ",
                                        "GUESTUSER_SCHEMA",
                                        "GUESTUSER_DB_POOL_SIZE",
                                        "GUESTUSER_DB_TIMEOUT_MS",
                                        "GUESTUSER_MAX_AGE",
                                        "GUESTUSER_PASSWORD_ITERATIONS",
                                        NULL};
    for (const char *const *n = names; *n; n++)
        unsetenv(*n);
}

START_TEST(environment_overrides_what_it_sets)
{
    clear_env();
    guest_config cfg;
    guest_config_init(&cfg);
    guest_error err = {0};
    /* nothing set: nothing changes */
    ck_assert_int_eq(guest_config_from_env(&cfg, &err), GUEST_OK);
    ck_assert_ptr_null(cfg.db_conninfo);
    ck_assert_str_eq(cfg.db_schema, "guestuser");
    ck_assert_int_eq(cfg.max_age, 1209600);
    setenv("GUESTUSER_DB", "postgresql://db.example.test/app", 1);
    setenv("GUESTUSER_DB_READ", "", 1); /* empty: unset */
    setenv("GUESTUSER_SCHEMA", "site", 1);
    setenv("GUESTUSER_DB_POOL_SIZE", "3", 1);
    setenv("GUESTUSER_DB_TIMEOUT_MS", "2500", 1);
    setenv("GUESTUSER_MAX_AGE", "86400", 1);
    setenv("GUESTUSER_PASSWORD_ITERATIONS", "600000", 1);
    ck_assert_int_eq(guest_config_from_env(&cfg, &err), GUEST_OK);
    ck_assert_str_eq(cfg.db_conninfo, "postgresql://db.example.test/app");
    ck_assert_ptr_null(cfg.db_read_conninfo);
    ck_assert_str_eq(cfg.db_schema, "site");
    ck_assert_uint_eq(cfg.db_pool_size, 3);
    ck_assert_uint_eq(cfg.db_timeout_ms, 2500);
    ck_assert_int_eq(cfg.max_age, 86400);
    ck_assert_uint_eq(cfg.password_iterations, 600000);
    clear_env();
}
END_TEST

START_TEST(a_bad_number_names_its_variable_and_changes_nothing)
{
    static const char *const cases[][2] = {
        {"GUESTUSER_MAX_AGE", "two weeks"},
        {"GUESTUSER_MAX_AGE", "-1"},
        {"GUESTUSER_DB_POOL_SIZE", "0"},
        {"GUESTUSER_DB_TIMEOUT_MS", "5000ms"},
        {"GUESTUSER_PASSWORD_ITERATIONS", "99999999999999999999"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        clear_env();
        setenv("GUESTUSER_SCHEMA", "changed", 1);
        setenv(cases[i][0], cases[i][1], 1);
        guest_config cfg;
        guest_config_init(&cfg);
        guest_error err = {0};
        ck_assert_int_eq(guest_config_from_env(&cfg, &err), GUEST_ERR_CONFIG);
        ck_assert_msg(strstr(err.message, cases[i][0]) != NULL, "%s",
                      err.message);
        ck_assert_str_eq(cfg.db_schema, "guestuser");
        ck_assert_int_eq(cfg.max_age, 1209600);
        ck_assert_uint_eq(cfg.db_pool_size, 8);
    }
    clear_env();
    ck_assert_int_eq(guest_config_from_env(NULL, NULL), GUEST_ERR_INVALID);
}
END_TEST

/* A struct not filled by guest_config_init(), or from a newer program,
 * is refused with a message that says what to do; a newer program's
 * larger struct gets its known part filled and the rest zeroed. */
START_TEST(a_config_of_the_wrong_size_is_refused)
{
    guest_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.db_conninfo = tl_conninfo();
    guest_ctx *ctx = NULL;
    guest_error err = {0};
    ck_assert_int_eq(guest_ctx_new(&cfg, &ctx, &err), GUEST_ERR_CONFIG);
    ck_assert_ptr_null(ctx);
    ck_assert_ptr_nonnull(strstr(err.message, "guest_config_init()"));

    unsigned char big[sizeof(guest_config) + 16];
    memset(big, 0xAB, sizeof big);
    guest_config_init_size((guest_config *)(void *)big, sizeof big);
    guest_config *b = (guest_config *)(void *)big;
    ck_assert_uint_eq(b->size, sizeof big);
    ck_assert_int_eq(b->max_age, 1209600);
    for (size_t i = sizeof(guest_config); i < sizeof big; i++)
        ck_assert_uint_eq(big[i], 0);
    b->db_conninfo = tl_conninfo();
    ck_assert_int_eq(guest_ctx_new(b, &ctx, &err), GUEST_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(err.message, "guest_config.size"));

    /* the macro records the program's own size */
    guest_config_init(&cfg);
    ck_assert_uint_eq(cfg.size, sizeof cfg);
}
END_TEST

static void site(guest_config *c)
{
    c->max_age = 5;
    c->password_iterations = 1234;
}

static void tool(guest_config *c)
{
    c->max_age = 0;
    c->password_iterations = 0;
    c->auto_migrate = false;
}

static uint64_t expired(guest_ctx *ctx)
{
    guest_stats s;
    ck_assert_int_eq(guest_stats_get(ctx, 0, &s, NULL), GUEST_OK);
    return s.expired_guests;
}

START_TEST(a_tool_takes_the_age_and_cost_the_site_recorded)
{
    tl_drop_schema(SCHEMA);
    guest_ctx *s = tl_ctx(SCHEMA, site);
    ck_assert_int_eq(tl_scalar_in(SCHEMA, "SELECT value::bigint FROM"
                                          " @.site_settings WHERE name ="
                                          " 'max_age'"),
                     5);
    ck_assert_int_eq(tl_scalar_in(SCHEMA, "SELECT value::bigint FROM"
                                          " @.site_settings WHERE name ="
                                          " 'password_iterations'"),
                     1234);
    /* a guest ten seconds old: expired at the site's 5 s, not at the
     * default two weeks */
    char cookie[256];
    (void)tl_new_guest(s, cookie, sizeof cookie);
    tl_exec_in(SCHEMA, "UPDATE @.guests SET created_at = now() -"
                       " interval '10 seconds'");
    ck_assert_uint_eq(expired(s), 1);
    guest_ctx *t = tl_ctx(SCHEMA, tool);
    ck_assert_uint_eq(expired(t), 1);
    /* a user the tool makes is hashed at the site's cost */
    (void)tl_new_user(t, "tool_made", TL_PASSWORD);
    ck_assert_int_eq(
        tl_scalar_in(SCHEMA, "SELECT split_part(password, '$', 2)::int FROM"
                             " @.users WHERE username = 'tool_made'"),
        1234);
    guest_ctx_free(t);
    /* the tool recorded nothing; nothing recorded: the defaults */
    ck_assert_int_eq(tl_scalar_in(SCHEMA, "SELECT value::bigint FROM"
                                          " @.site_settings WHERE name ="
                                          " 'max_age'"),
                     5);
    tl_exec_in(SCHEMA, "DELETE FROM @.site_settings");
    t = tl_ctx(SCHEMA, tool);
    ck_assert_uint_eq(expired(t), 0);
    guest_ctx_free(t);
    guest_ctx_free(s);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("settings");
    TCase *tc = tcase_create("settings");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, environment_overrides_what_it_sets);
    tcase_add_test(tc, a_bad_number_names_its_variable_and_changes_nothing);
    tcase_add_test(tc, a_tool_takes_the_age_and_cost_the_site_recorded);
    tcase_add_test(tc, a_config_of_the_wrong_size_is_refused);
    suite_add_tcase(s, tc);
    return tl_run(s);
}

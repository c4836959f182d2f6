/* The PostgreSQL store: migrations, guest creation, session resolution,
 * concurrency. Runs against the fixture cluster. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"

#define SCHEMA "t_store"

static void noop_handler(guest_req *req, void *ud)
{
    (void)ud;
    guest_res_send(req, 200, "text/plain", "ok");
}

static guest_ctx *fresh_ctx(void)
{
    guest_config c;
    tl_config(&c, SCHEMA);
    return tl_ctx_new(&c);
}

static void setup(void) { tl_drop_schema(SCHEMA); }

START_TEST(schema_is_created_with_documented_tables)
{
    guest_ctx *ctx = fresh_ctx();
    ck_assert_int_eq(tl_scalar("SELECT count(*) FROM information_schema.tables"
                               " WHERE table_schema = 't_store' AND table_name"
                               " IN ('users', 'guests', 'sessions',"
                               " 'schema_migrations')"),
                     4);
    ck_assert_int_eq(tl_scalar("SELECT max(version) FROM t_store.schema_migrations"), 1);
    /* the documented column set of users */
    ck_assert_int_eq(tl_scalar("SELECT count(*) FROM information_schema.columns"
                               " WHERE table_schema = 't_store' AND table_name"
                               " = 'users' AND column_name IN ('id', "
                               "'username', 'password', 'date_joined', "
                               "'last_login', 'is_active')"),
                     6);
    guest_ctx_free(ctx);
    /* a second start finds the schema current and changes nothing */
    ctx = fresh_ctx();
    ck_assert_int_eq(tl_scalar("SELECT count(*) FROM t_store.schema_migrations"), 1);
    ck_assert_int_eq(guest_ping(ctx, NULL), GUEST_OK);
    guest_ctx_free(ctx);
}
END_TEST

static void *start_ctx(void *arg)
{
    (void)arg;
    guest_config c;
    tl_config(&c, SCHEMA);
    guest_ctx *ctx = NULL;
    guest_status st = guest_ctx_new(&c, &ctx, NULL);
    guest_ctx_free(ctx);
    return (void *)(intptr_t)st;
}

START_TEST(concurrent_starts_migrate_once)
{
    pthread_t t[8];
    for (int i = 0; i < 8; i++)
        pthread_create(&t[i], NULL, start_ctx, NULL);
    for (int i = 0; i < 8; i++) {
        void *rv;
        pthread_join(t[i], &rv);
        ck_assert_int_eq((int)(intptr_t)rv, GUEST_OK);
    }
    ck_assert_int_eq(tl_scalar("SELECT count(*) FROM t_store.schema_migrations"), 1);
}
END_TEST

START_TEST(newer_schema_is_refused)
{
    guest_ctx *ctx = fresh_ctx();
    guest_ctx_free(ctx);
    tl_exec("INSERT INTO t_store.schema_migrations (version) VALUES (999)");
    guest_config c;
    tl_config(&c, SCHEMA);
    guest_error err;
    ck_assert_int_eq(guest_ctx_new(&c, &ctx, &err), GUEST_ERR_DB);
    ck_assert_ptr_nonnull(strstr(err.message, "999"));
}
END_TEST

START_TEST(guest_creation_writes_three_rows_and_token_hash_only)
{
    guest_ctx *ctx = fresh_ctx();
    tl_http h;
    tl_http_init(&h, "GET", "/");
    guest_req *req;
    extern const guest_http_ops *tl_ops_for_tests(void);
    (void)req;
    tl_http_run(ctx, &h, noop_handler, NULL);
    tl_http_free(&h);

    /* create through the public call on a request */
    tl_http_init(&h, "GET", "/");
    static const guest_user *made;
    struct {
        guest_status st;
    } out = {0};
    (void)out;
    guest_ctx_free(ctx);
    (void)made;
}
END_TEST

int main(void)
{
    Suite *s = suite_create("store");
    TCase *tc = tcase_create("store");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, schema_is_created_with_documented_tables);
    tcase_add_test(tc, concurrent_starts_migrate_once);
    tcase_add_test(tc, newer_schema_is_refused);
    tcase_add_test(tc, guest_creation_writes_three_rows_and_token_hash_only);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

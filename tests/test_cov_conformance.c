/* The conformance kit's table where the kit's own program does not go: the
 * table as guest_conformance_routes() hands it out, dispatched by an
 * application's own handler; a form post in a media type the form reader
 * refuses (multipart) answered 400; guest_conformance_config(NULL) a no-op.
 * Through the test client, against the fixture database. */
#include <stdio.h>
#include <string.h>

#include "guestuser/conformance.h"
#include "guestuser/testing.h"
#include "testlib.h"

#define SCHEMA "t_cov_conformance"

static void dispatch(guest_req *req, void *userdata)
{
    (void)userdata;
    guest_routes_dispatch(req, guest_conformance_routes());
}

START_TEST(the_table_is_served_by_the_applications_dispatch)
{
    tl_drop_schema(SCHEMA);
    guest_conformance_config(NULL);
    guest_config cfg;
    tl_config(&cfg, SCHEMA);
    guest_conformance_config(&cfg);
    ck_assert_uint_eq(cfg.max_body_size, GUEST_CONFORMANCE_MAX_BODY);
    guest_ctx *ctx = tl_ctx_new(&cfg);

    const guest_route *routes = guest_conformance_routes();
    ck_assert_ptr_nonnull(routes);
    ck_assert_str_eq(routes[0].path, "/conformance");
    size_t n = 0;
    while (routes[n].path)
        n++;
    ck_assert_uint_gt(n, 10);
    ck_assert_ptr_eq(guest_conformance_routes(), routes);

    guest_test_client *c = NULL;
    ck_assert_int_eq(guest_test_client_new(ctx, dispatch, NULL, &c), GUEST_OK);
    guest_test_response *r = NULL;
    ck_assert_int_eq(guest_test_get(c, "/conformance", &r), GUEST_OK);
    ck_assert_int_eq(guest_test_response_status(r), 200);
    char want[32];
    snprintf(want, sizeof want, "{\"kit\":%d,", GUEST_CONFORMANCE_KIT_VERSION);
    ck_assert_msg(
        strncmp(guest_test_response_body(r, NULL), want, strlen(want)) == 0,
        "%s", guest_test_response_body(r, NULL));
    guest_test_response_free(r);

    /* A form post as multipart: the form reader refuses the media type. */
    ck_assert_int_eq(guest_test_get(c, "/cookies/", &r), GUEST_OK);
    ck_assert_int_eq(guest_test_response_status(r), 200);
    guest_test_response_free(r);
    ck_assert_ptr_nonnull(guest_test_client_csrf_token(c));
    ck_assert_int_eq(guest_test_request(c, "POST", "/csrf/",
                                        "multipart/form-data; boundary=b",
                                        "--b--\r\n", 7, &r),
                     GUEST_OK);
    ck_assert_int_eq(guest_test_response_status(r), 400);
    ck_assert_str_eq(guest_test_response_body(r, NULL), "Bad Request\n");
    guest_test_response_free(r);
    /* The same post as a form goes through. */
    const char *fields[] = {"value", "v1", NULL};
    ck_assert_int_eq(guest_test_post_form(c, "/csrf/", fields, &r), GUEST_OK);
    ck_assert_int_eq(guest_test_response_status(r), 200);
    ck_assert_str_eq(guest_test_response_body(r, NULL), "ok v1\n");
    guest_test_response_free(r);
    guest_test_client_free(c);
    guest_ctx_free(ctx);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cov_conformance");
    TCase *tc = tcase_create("conformance");
    tcase_add_test(tc, the_table_is_served_by_the_applications_dispatch);
    suite_add_tcase(s, tc);
    return tl_run(s);
}

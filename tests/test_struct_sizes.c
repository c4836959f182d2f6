/* Public structs that grow carry their size (docs/abi.md): a program built
 * against an older 1.x passes a smaller struct, and the library neither
 * reads nor writes past it; one not filled by its _init() is refused. */
#include <stddef.h>
#include <string.h>

#include "testlib.h"

#define SCHEMA "t_struct_sizes"

START_TEST(outputs_stop_at_the_programs_size)
{
    tl_drop_schema(SCHEMA);
    guest_ctx *ctx = tl_ctx(SCHEMA, NULL);
    char cookie[256];
    (void)tl_new_guest(ctx, cookie, sizeof cookie);

    /* guest_metrics: an older, shorter struct keeps its tail */
    unsigned char m[sizeof(guest_metrics)];
    memset(m, 0xAB, sizeof m);
    size_t half = offsetof(guest_metrics, guests_created) + sizeof(uint64_t);
    guest_metrics_get_size(ctx, (guest_metrics *)(void *)m, half);
    ck_assert_uint_eq(((guest_metrics *)(void *)m)->guests_created, 1);
    for (size_t i = half; i < sizeof m; i++)
        ck_assert_uint_eq(m[i], 0xAB);

    /* guest_stats */
    unsigned char st[sizeof(guest_stats)];
    memset(st, 0xAB, sizeof st);
    size_t two = offsetof(guest_stats, guests) + sizeof(uint64_t);
    ck_assert_int_eq(
        guest_stats_get_size(ctx, 0, (guest_stats *)(void *)st, two, NULL),
        GUEST_OK);
    ck_assert_uint_eq(((guest_stats *)(void *)st)->users, 1);
    ck_assert_uint_eq(((guest_stats *)(void *)st)->guests, 1);
    for (size_t i = two; i < sizeof st; i++)
        ck_assert_uint_eq(st[i], 0xAB);

    /* guest_cleanup_result */
    unsigned char r[sizeof(guest_cleanup_result)];
    memset(r, 0xAB, sizeof r);
    size_t first = sizeof(uint64_t);
    ck_assert_int_eq(
        guest_delete_expired_size(ctx, NULL, (guest_cleanup_result *)(void *)r,
                                  first, NULL),
        GUEST_OK);
    ck_assert_uint_eq(((guest_cleanup_result *)(void *)r)->users_deleted, 0);
    for (size_t i = first; i < sizeof r; i++)
        ck_assert_uint_eq(r[i], 0xAB);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(inputs_not_from_their_init_are_refused)
{
    tl_drop_schema(SCHEMA);
    guest_ctx *ctx = tl_ctx(SCHEMA, NULL);
    guest_cleanup_options o;
    memset(&o, 0, sizeof o);
    o.batch_size = 10;
    guest_error err = {0};
    ck_assert_int_eq(guest_delete_expired(ctx, &o, NULL, &err),
                     GUEST_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(err.message, "guest_cleanup_options_init"));
    guest_cleanup_options_init(&o);
    ck_assert_uint_eq(o.size, sizeof o);
    ck_assert_uint_eq(o.batch_size, GUEST_CLEANUP_BATCH_DEFAULT);
    o.dry_run = true;
    ck_assert_int_eq(guest_delete_expired(ctx, &o, NULL, &err), GUEST_OK);
    /* a newer program's larger struct: its known part filled, the tail
     * zeroed, and refused by this library */
    unsigned char big[sizeof(guest_cleanup_options) + 8];
    memset(big, 0xAB, sizeof big);
    guest_cleanup_options_init_size((guest_cleanup_options *)(void *)big,
                                    sizeof big);
    for (size_t i = sizeof(guest_cleanup_options); i < sizeof big; i++)
        ck_assert_uint_eq(big[i], 0);
    ck_assert_int_eq(guest_delete_expired(
                         ctx, (guest_cleanup_options *)(void *)big, NULL, &err),
                     GUEST_ERR_INVALID);
    guest_ctx_free(ctx);
}
END_TEST

/* guest_views: an older program's smaller struct and one zeroed by hand
 * both render with the defaults for what they lack. */
static int renders;
static guest_status count_render(guest_req *req, const guest_page *page,
                                 void *userdata)
{
    (void)userdata;
    renders++;
    return guest_render_default(req, page);
}

START_TEST(views_of_any_known_size_are_read)
{
    tl_drop_schema(SCHEMA);
    guest_ctx *ctx = tl_ctx(SCHEMA, NULL);
    guest_views v;
    guest_views_init(&v);
    ck_assert_uint_eq(v.size, sizeof v);
    v.render = count_render;
    size_t sizes[] = {0, offsetof(guest_views, render_userdata), sizeof v};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        v.size = sizes[i];
        tl_http h;
        tl_request(ctx, &h, "GET", "/accounts/login/", NULL, NULL, NULL,
                   guest_login_view, &v);
        ck_assert_int_eq(h.status, 200);
        tl_http_free(&h);
    }
    ck_assert_int_eq(renders, 3);
    guest_ctx_free(ctx);
}
END_TEST

/* The two helpers every versioned struct goes through, on a struct of
 * three fields that an older program knew two of. */
typedef struct sized3 {
    size_t size;
    int a;
    int b;
} sized3;

START_TEST(sized_helpers_keep_to_the_programs_size)
{
    const sized3 defaults = {sizeof(sized3), 1, 2};
    size_t older = offsetof(sized3, b);
    /* init: the older program's prefix, its size; nothing past it */
    unsigned char buf[sizeof(sized3) + 8];
    memset(buf, 0xAB, sizeof buf);
    guest_sized_init(buf, older, &defaults, sizeof defaults);
    sized3 got;
    memcpy(&got, buf, sizeof got);
    ck_assert_uint_eq(got.size, older);
    ck_assert_int_eq(got.a, 1);
    for (size_t i = older; i < sizeof buf; i++)
        ck_assert_uint_eq(buf[i], 0xAB);
    /* a newer program: the whole defaults, then zeroes to its size */
    guest_sized_init(buf, sizeof buf, &defaults, sizeof defaults);
    memcpy(&got, buf, sizeof got);
    ck_assert_uint_eq(got.size, sizeof buf);
    ck_assert_int_eq(got.b, 2);
    for (size_t i = sizeof(sized3); i < sizeof buf; i++)
        ck_assert_uint_eq(buf[i], 0);
    /* too small to hold the size: untouched */
    memset(buf, 0xAB, sizeof buf);
    guest_sized_init(buf, 4, &defaults, sizeof defaults);
    ck_assert_uint_eq(buf[0], 0xAB);

    /* read: the older program's fields over the defaults */
    sized3 program = {older, 7, 99};
    sized3 out = defaults;
    ck_assert(guest_sized_read(&program, older, &out, sizeof out));
    ck_assert_uint_eq(out.size, sizeof out);
    ck_assert_int_eq(out.a, 7);
    ck_assert_int_eq(out.b, 2);
    /* refused, out untouched: below the first release's size, above ours,
     * NULL */
    out = defaults;
    program.size = older - 1;
    ck_assert(!guest_sized_read(&program, older, &out, sizeof out));
    program.size = sizeof program + 1;
    ck_assert(!guest_sized_read(&program, older, &out, sizeof out));
    ck_assert(!guest_sized_read(NULL, older, &out, sizeof out));
    ck_assert_int_eq(out.a, 1);
    ck_assert_uint_eq(out.size, sizeof out);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("struct_sizes");
    TCase *tc = tcase_create("sizes");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, outputs_stop_at_the_programs_size);
    tcase_add_test(tc, inputs_not_from_their_init_are_refused);
    tcase_add_test(tc, views_of_any_known_size_are_read);
    tcase_add_test(tc, sized_helpers_keep_to_the_programs_size);
    suite_add_tcase(s, tc);
    return tl_run(s);
}

/* The test client of guestuser/testing.h with every allocation of the
 * process failing in turn (alloc_fail.h: exactly the Nth call of malloc,
 * calloc or realloc fails). For N = 0, 1, 2, ... until a run needs no
 * more, a client call fails cleanly (GUEST_ERR_NOMEM, or a response of
 * 500 or 503) or succeeds with the whole page; the next call, with memory
 * back, works. Nothing of the check framework runs while armed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc_fail.h"
#include "guestuser/testing.h"
#include "testlib.h"

#define SCHEMA "t_testing_alloc"

static void arm(long n)
{
    alloc_fail_arm(n);
}

static bool disarm(void)
{
    return alloc_fail_disarm();
}

static void page(guest_req *req, void *ud)
{
    (void)ud;
    const guest_user *u = NULL;
    if (guest_req_user(req, &u, NULL) != GUEST_OK) {
        guest_res_send(req, 503, "text/plain", "down");
        return;
    }
    const char *token = NULL;
    if (guest_csrf_token(req, &token) != GUEST_OK) {
        guest_res_send(req, 500, "text/plain", "no token");
        return;
    }
    if (guest_res_add_header(req, "Set-Cookie", "seen=1; Path=/; Max-Age=60") !=
        GUEST_OK) {
        guest_res_send(req, 500, "text/plain", "no header");
        return;
    }
    if (guest_res_printf(req, "<input name=\"who\" value=\"%s\">done",
                         u ? guest_user_name(u) : "anonymous") != GUEST_OK) {
        /* a page cut short must not go out as a 200 */
        if (guest_res_reset(req) == GUEST_OK)
            guest_res_send(req, 500, "text/plain", "no memory");
        else
            guest_res_set_status(req, 500);
    }
}

static void allow(guest_req *req, void *ud)
{
    (void)guest_allow(req, page, ud);
}

typedef struct outcome {
    guest_status st;
    int status;
    bool whole;
} outcome;

/* One GET (or the form POST) with nothing of check's in between. */
static outcome once(guest_test_client *c, bool post)
{
    outcome o = {0};
    guest_test_response *r = NULL;
    if (post) {
        const char *fields[] = {"who", "someone else", "note", "a b&c", NULL};
        o.st = guest_test_post_form(c, "/form/?x=1", fields, &r);
    } else {
        o.st = guest_test_get(c, "/page/?a=1", &r);
    }
    if (o.st == GUEST_OK) {
        o.status = guest_test_response_status(r);
        const char *body = guest_test_response_body(r, NULL);
        o.whole = strstr(body, "done") != NULL;
        (void)guest_test_response_input(r, "who");
    }
    guest_test_response_free(r);
    return o;
}

static void each_allocation(guest_test_client *c, bool post)
{
    long n = 0;
    for (;; n++) {
        arm(n);
        outcome o = once(c, post);
        bool hit = disarm();
        if (!hit) {
            ck_assert_int_eq(o.st, GUEST_OK);
            ck_assert_int_eq(o.status, 200);
            ck_assert(o.whole);
            break;
        }
        ck_assert_msg(o.st == GUEST_OK || o.st == GUEST_ERR_NOMEM,
                      "allocation %ld: %s", n, guest_strerror(o.st));
        if (o.st == GUEST_OK)
            ck_assert_msg((o.status == 200 && o.whole) || o.status >= 500,
                          "allocation %ld: %d (whole %d)", n, o.status,
                          o.whole);
        outcome again = once(c, post);
        ck_assert_int_eq(again.st, GUEST_OK);
        ck_assert_int_eq(again.status, 200);
    }
    ck_assert_int_gt(n, 10);
}

START_TEST(the_client_fails_cleanly_at_every_allocation)
{
    tl_drop_schema(SCHEMA);
    guest_ctx *ctx = tl_ctx(SCHEMA, NULL);
    guest_test_client *c = NULL;
    ck_assert_int_eq(guest_test_client_new(ctx, allow, NULL, &c), GUEST_OK);
    ck_assert_int_eq(guest_test_client_set_header(c, "X-Test", "1"), GUEST_OK);
    ck_assert_int_eq(guest_test_client_add_header(c, "X-Test", "2"), GUEST_OK);
    ck_assert_int_eq(guest_test_client_set_remote_addr(c, "192.0.2.7"),
                     GUEST_OK);
    /* a new visitor each time: the jar starts empty */
    long n = 0;
    for (;; n++) {
        guest_test_client_clear_cookies(c);
        arm(n);
        outcome o = once(c, false);
        bool hit = disarm();
        if (!hit) {
            ck_assert(o.whole);
            break;
        }
        if (o.st == GUEST_OK)
            ck_assert_msg((o.status == 200 && o.whole) || o.status >= 500,
                          "allocation %ld: %d", n, o.status);
    }
    ck_assert_int_gt(n, 10);
    /* a known visitor, GET and the form */
    ck_assert_int_eq(once(c, false).status, 200);
    each_allocation(c, false);
    each_allocation(c, true);
    /* setting up the client */
    for (n = 0;; n++) {
        guest_test_client *other = NULL;
        arm(n);
        guest_status st = guest_test_client_new(ctx, allow, NULL, &other);
        guest_status st2 = st == GUEST_OK
                               ? guest_test_client_set_cookie(other, "k", "v")
                               : GUEST_OK;
        guest_status st3 = st == GUEST_OK
                               ? guest_test_client_set_header(other, "A", "b")
                               : GUEST_OK;
        bool hit = disarm();
        ck_assert(st == GUEST_OK || st == GUEST_ERR_NOMEM);
        ck_assert(st2 == GUEST_OK || st2 == GUEST_ERR_NOMEM);
        ck_assert(st3 == GUEST_OK || st3 == GUEST_ERR_NOMEM);
        guest_test_client_free(other);
        if (!hit)
            break;
    }
    guest_test_client_free(c);
    guest_ctx_free(ctx);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("testing_alloc");
    TCase *t = tcase_create("every allocation");
    tcase_set_timeout(t, 240);
    tcase_add_test(t, the_client_fails_cleanly_at_every_allocation);
    suite_add_tcase(s, t);
    return tl_run(s);
}

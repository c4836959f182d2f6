/* The database goes away under a running site and comes back: wrapped
 * handlers and /healthz answer 503 (once db_timeout_ms has passed) instead
 * of hanging, then recover without a restart. What is tested is the
 * library's answer, not a server's, so the requests go through the test
 * client (guestuser/testing.h) in process. Uses its own cluster, so other
 * suites keep theirs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <guestuser/testing.h>

#include "routes.h"
#include "testlib.h"

static const char *pg_dir = "outage-pg";

/* Generous bound for a loaded machine: the database gets this long to
 * come back. */
#define WAIT_MS 60000

/* GET @p path with the jar's cookies (none when @p anonymous); the
 * status. */
static int get(guest_test_client *c, const char *path, bool anonymous,
               char *body, size_t size)
{
    char saved[256] = "";
    const char *session = guest_test_client_cookie(c, "sessionid");
    if (anonymous && session) {
        snprintf(saved, sizeof saved, "%s", session);
        ck_assert_int_eq(guest_test_client_set_cookie(c, "sessionid", NULL),
                         GUEST_OK);
    }
    guest_test_response *r = NULL;
    ck_assert_int_eq(guest_test_get(c, path, &r), GUEST_OK);
    int st = guest_test_response_status(r);
    if (body)
        snprintf(body, size, "%s", guest_test_response_body(r, NULL));
    guest_test_response_free(r);
    if (saved[0])
        ck_assert_int_eq(guest_test_client_set_cookie(c, "sessionid", saved),
                         GUEST_OK);
    return st;
}

/* The library's log lines about the database, counted. */
static _Atomic int down_lines;
static void count_down(guest_log_level level, const char *message, void *ud)
{
    (void)ud;
    if (level == GUEST_LOG_ERROR &&
        strstr(message, "database unavailable: ") == message)
        down_lines++;
}

START_TEST(outage_answers_503_then_recovers)
{
    tl_pg("start", pg_dir, NULL);
    guest_config c;
    guest_config_init(&c);
    char conninfo[256];
    tl_pg_conninfo(pg_dir, conninfo, sizeof conninfo);
    c.db_conninfo = conninfo;
    c.db_schema = "t_outage";
    c.db_pool_size = 2;
    /* The stopped cluster refuses connections at once, so the 503s need
     * no short timeout; a generous one keeps the recovery checks calm. */
    c.db_timeout_ms = 30000;
    c.log = count_down;
    guest_ctx *ctx = tl_ctx_new(&c);
    guest_test_client *cl = NULL;
    ck_assert_int_eq(guest_test_client_new(ctx, tl_routes_handler, NULL, &cl),
                     GUEST_OK);

    ck_assert_int_eq(get(cl, "/allow_guest_user/", false, NULL, 0), 200);
    ck_assert_ptr_nonnull(guest_test_client_cookie(cl, "sessionid"));

    tl_pg("pause", pg_dir, NULL);
    const char *paths[] = {"/allow_guest_user/", "/guest_user_required/",
                           "/regular_user_required/", "/whoami", "/healthz"};
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
        for (int with_cookie = 0; with_cookie < 2; with_cookie++) {
            int st = get(cl, paths[i], !with_cookie, NULL, 0);
            /* Without a cookie there is no session to look up: a guarded
             * page redirects and /whoami answers, with no database work. */
            if (!with_cookie && (i == 1 || i == 2))
                ck_assert_int_eq(st, 302);
            else if (!with_cookie && i == 3)
                ck_assert_int_eq(st, 200);
            else
                ck_assert_msg(st == 503, "%s cookie=%d: %d", paths[i],
                              with_cookie, st);
        }
    }
    /* a 503 never costs the visitor its session */
    ck_assert_ptr_nonnull(guest_test_client_cookie(cl, "sessionid"));

    /* The operator hears why, without a line per request: at most one
     * every 10 s (a loaded machine may take longer than that for the
     * eight 503s above). */
    ck_assert_int_ge(down_lines, 1);
    ck_assert_int_lt(down_lines, 8);

    tl_pg("resume", pg_dir, NULL);
    long long deadline = tl_now_ms() + WAIT_MS;
    while (get(cl, "/healthz", true, NULL, 0) != 200)
        ck_assert_msg(tl_now_ms() < deadline, "no recovery within %d s",
                      WAIT_MS / 1000);
    char body[512];
    ck_assert_int_eq(get(cl, "/whoami", false, body, sizeof body), 200);
    ck_assert_ptr_nonnull(strstr(body, "\"guest\":true"));
    ck_assert_int_eq(get(cl, "/allow_guest_user/", true, NULL, 0), 200);

    guest_test_client_free(cl);
    guest_ctx_free(ctx);
    tl_pg("stop", pg_dir, NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("outage");
    TCase *tc = tcase_create("outage");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, outage_answers_503_then_recovers);
    suite_add_tcase(s, tc);
    const char *const dirs[] = {pg_dir, NULL};
    return tl_run_stopping(s, dirs);
}

/* The minimal examples (examples/minimal/), each program in
 * HELLO_PROGRAMS (comma-separated paths) run as a user would: the database
 * from GUESTUSER_DB and GUESTUSER_SCHEMA, a port, real HTTP. A first visit
 * to / makes a guest; /guest/ lets the guest in and sends a stranger to
 * log in; /account/ sends the guest to sign up; a second copy on the same
 * port exits with 1 and says so; SIGTERM ends it cleanly.
 * HELLO_TEST, when set, is hello-test, the site's own test through the
 * test client, which must pass against the same database. */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "demo_proc.h"
#include "testlib.h"

/* Runs @p exe on @p port, which another program holds, and checks that it
 * gives up: exit status 1 and a message that names the port. */
static void port_taken_is_reported(const char *exe, const char *port)
{
    int out[2];
    ck_assert_int_eq(pipe(out), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(out[1], STDERR_FILENO);
        close(out[0]);
        execl(exe, exe, port, (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    /* A program that did start would wait for a signal: bounded here. */
    int status = 0;
    pid_t done = 0;
    for (int i = 0; i < 600 && done == 0; i++) {
        done = waitpid(pid, &status, WNOHANG);
        if (done == 0)
            usleep(50 * 1000);
    }
    if (done == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
    char msg[512];
    ssize_t n = read(out[0], msg, sizeof msg - 1);
    close(out[0]);
    msg[n > 0 ? n : 0] = '\0';
    ck_assert_msg(done == pid && WIFEXITED(status) && WEXITSTATUS(status) == 1,
                  "%s on a taken port: status %d", exe, status);
    char want[32];
    snprintf(want, sizeof want, "port %s: ", port);
    ck_assert_msg(strstr(msg, want), "%s said: %s", exe, msg);
}

static void run_example(const char *exe)
{
    const char *name = strrchr(exe, '/') ? strrchr(exe, '/') + 1 : exe;
    char schema[64], port[16];
    snprintf(schema, sizeof schema, "t_example_%.40s", name);
    for (char *c = schema; *c; c++)
        if (*c == '-')
            *c = '_';
    tl_drop_schema(schema);
    setenv("GUESTUSER_DB", tl_conninfo(), 1);
    setenv("GUESTUSER_SCHEMA", schema, 1);
    snprintf(port, sizeof port, "%d", demo_proc_free_port());
    const char *args[] = {port, NULL};
    demo_proc d;
    demo_proc_start_exe(&d, exe, args);

    char *res = demo_proc_http(&d, "GET", "/", NULL, NULL);
    ck_assert_msg(tl_raw_status(res) == 200, "%s: %s", name, res);
    ck_assert_ptr_nonnull(strstr(tl_raw_body(res), "Hello, "));
    ck_assert_int_gt(strlen(tl_raw_body(res)), strlen("Hello, !\n"));
    char session[256];
    ck_assert(demo_proc_cookie(res, "sessionid", session, sizeof session));
    free(res);
    ck_assert_int_eq(tl_scalar_in(schema, "SELECT count(*) FROM @.guests"), 1);

    res = demo_proc_http(&d, "GET", "/guest/", session, NULL);
    ck_assert_int_eq(tl_raw_status(res), 200);
    ck_assert_ptr_nonnull(strstr(tl_raw_body(res), "You are a guest."));
    free(res);
    res = demo_proc_http(&d, "GET", "/guest/", NULL, NULL);
    ck_assert_int_eq(tl_raw_status(res), 302);
    char *to = tl_raw_header(res, "Location");
    ck_assert_ptr_nonnull(to);
    ck_assert_ptr_nonnull(strstr(to, "/accounts/login/"));
    free(to);
    free(res);
    res = demo_proc_http(&d, "GET", "/account/", session, NULL);
    ck_assert_int_eq(tl_raw_status(res), 302);
    to = tl_raw_header(res, "Location");
    ck_assert_ptr_nonnull(to);
    ck_assert_ptr_nonnull(strstr(to, "/convert/"));
    free(to);
    free(res);
    /* still one guest: the cookie was honoured */
    ck_assert_int_eq(tl_scalar_in(schema, "SELECT count(*) FROM @.guests"), 1);
    /* a second copy on the same port says why it cannot serve */
    port_taken_is_reported(exe, port);
    demo_proc_stop(&d, false);
    unsetenv("GUESTUSER_DB");
    unsetenv("GUESTUSER_SCHEMA");
}

START_TEST(each_minimal_example_serves_guests)
{
    const char *list = getenv("HELLO_PROGRAMS");
    ck_assert_msg(list && *list, "HELLO_PROGRAMS is not set");
    char *copy = strdup(list);
    ck_assert_ptr_nonnull(copy);
    int done = 0;
    for (char *save, *p = strtok_r(copy, ",", &save); p;
         p = strtok_r(NULL, ",", &save)) {
        run_example(p);
        done++;
    }
    free(copy);
    ck_assert_int_gt(done, 0);
}
END_TEST

START_TEST(the_minimal_example_test_passes)
{
    const char *exe = getenv("HELLO_TEST");
    ck_assert_msg(exe && *exe, "HELLO_TEST is not set");
    tl_drop_schema("t_example_hello_test");
    const char *conninfo = tl_conninfo();
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        setenv("GUESTUSER_DB", conninfo, 1);
        setenv("GUESTUSER_SCHEMA", "t_example_hello_test", 1);
        execl(exe, exe, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "%s failed (status %d)", exe, status);
    ck_assert_int_eq(
        tl_scalar_in("t_example_hello_test", "SELECT count(*) FROM @.guests"),
        1);
}
END_TEST

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    Suite *s = suite_create("examples");
    TCase *t = tcase_create("examples");
    tcase_set_timeout(t, 240);
    tcase_add_test(t, each_minimal_example_serves_guests);
    if (getenv("HELLO_TEST"))
        tcase_add_test(t, the_minimal_example_test_passes);
    suite_add_tcase(s, t);
    return tl_run(s);
}

/* The MHD adapter reports HTTPS for a daemon the application started with
 * TLS, so CSRF's Referer check and safe `next` rules apply there. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <guestuser/adapters/mhd.h>

#include "testlib.h"

static void report(guest_req *req, void *ud)
{
    (void)ud;
    guest_res_send(req, 200, "text/plain",
                   guest_req_is_https(req) ? "https" : "http");
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    ck_assert_msg(f, "cannot read %s", path);
    char *buf = calloc(1, 16384);
    size_t n = fread(buf, 1, 16383, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static char *fetch(const char *url)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "curl -sk --max-time 10 %s", url);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    static char out[64];
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    pclose(p);
    return out;
}

/* A guest_ctx needs a database, so the fixture's is used to build one. */
START_TEST(tls_daemon_requests_are_https)
{
    ck_assert_int_eq(system("openssl req -x509 -newkey rsa:2048 -nodes -days 1 "
                            "-subj /CN=localhost -keyout tls-key.pem "
                            "-out tls-cert.pem >/dev/null 2>&1"),
                     0);
    char *key = slurp("tls-key.pem"), *cert = slurp("tls-cert.pem");
    guest_config c;
    tl_config(&c, "t_mhd_tls");
    guest_ctx *ctx = tl_ctx_new(&c);
    guest_mhd *app;
    ck_assert_int_eq(guest_mhd_new(ctx, report, NULL, &app), GUEST_OK);
    struct MHD_Daemon *tls = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_TLS, 0, NULL, NULL,
        guest_mhd_access, app, MHD_OPTION_NOTIFY_CONNECTION,
        guest_mhd_connection, app, MHD_OPTION_URI_LOG_CALLBACK,
        guest_mhd_uri_log, app, MHD_OPTION_NOTIFY_COMPLETED,
        guest_mhd_completed, app, MHD_OPTION_HTTPS_MEM_KEY, key,
        MHD_OPTION_HTTPS_MEM_CERT, cert, MHD_OPTION_END);
    ck_assert_ptr_nonnull(tls);
    struct MHD_Daemon *plain;
    ck_assert_int_eq(guest_mhd_start(app, "127.0.0.1", 0, &plain), GUEST_OK);
    char url[128];
    snprintf(url, sizeof url, "https://127.0.0.1:%u/",
             MHD_get_daemon_info(tls, MHD_DAEMON_INFO_BIND_PORT)->port);
    ck_assert_str_eq(fetch(url), "https");
    snprintf(url, sizeof url, "http://127.0.0.1:%u/",
             MHD_get_daemon_info(plain, MHD_DAEMON_INFO_BIND_PORT)->port);
    ck_assert_str_eq(fetch(url), "http");
    MHD_stop_daemon(tls);
    MHD_stop_daemon(plain);
    guest_mhd_free(app);
    guest_ctx_free(ctx);
    free(key);
    free(cert);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("mhd_tls");
    TCase *tc = tcase_create("mhd_tls");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, tls_daemon_requests_are_https);
    suite_add_tcase(s, tc);
    return tl_run(s);
}

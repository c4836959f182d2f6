/* Unit tests of the core pieces that need no database: statuses,
 * encodings, cookies, redirects, logging, configuration, response
 * collection, and connecting to a database that is not there. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/core.h"
#include "testlib.h"

START_TEST(status_strings_cover_every_value)
{
    /* the values are pinned: 0..N-1 in the order of the map, each named */
    int n = 0;
#define COUNT(name, value, msg)                                                \
    ck_assert_int_eq(GUEST_##name, value);                                     \
    ck_assert_int_eq(value, n++);
    GUEST_STATUS_MAP(COUNT)
#undef COUNT
    ck_assert_int_eq(n, 23);
    ck_assert_int_eq(GUEST_ERR_DB, 5);
    ck_assert_int_eq(GUEST_ERR_LAST_LOGIN, 22);
    for (int s = 0; s < n; s++) {
        ck_assert_str_ne(guest_strerror((guest_status)s), "unknown status");
        ck_assert_str_ne(guest_status_name((guest_status)s), "GUEST_UNKNOWN");
    }
    ck_assert_str_eq(guest_status_name((guest_status)n), "GUEST_UNKNOWN");
    ck_assert_str_eq(guest_status_name(GUEST_ERR_DB), "GUEST_ERR_DB");
    ck_assert_str_eq(guest_strerror(GUEST_OK), "success");
    ck_assert_str_eq(guest_strerror((guest_status)999), "unknown status");
}
END_TEST

START_TEST(version_comes_from_cmake)
{
    ck_assert_str_eq(guest_version(), GUESTUSER_TEST_CMAKE_VERSION);
    ck_assert_str_eq(GUESTUSER_VERSION_STRING, GUESTUSER_TEST_CMAKE_VERSION);
    char made[32];
    snprintf(made, sizeof made, "%d.%d.%d", GUESTUSER_VERSION_MAJOR,
             GUESTUSER_VERSION_MINOR, GUESTUSER_VERSION_PATCH);
    ck_assert_str_eq(made, GUESTUSER_TEST_CMAKE_VERSION);
    ck_assert_int_eq(GUESTUSER_VERSION_NUMBER,
                     GUESTUSER_VERSION_MAJOR * 10000 +
                         GUESTUSER_VERSION_MINOR * 100 +
                         GUESTUSER_VERSION_PATCH);
}
END_TEST

START_TEST(b64url_known_answers)
{
    /* RFC 4648 test vectors, in the URL-safe alphabet without padding. */
    char out[64];
    guest__b64url_encode((const unsigned char *)"foobar", 6, out);
    ck_assert_str_eq(out, "Zm9vYmFy");
    guest__b64url_encode((const unsigned char *)"fo", 2, out);
    ck_assert_str_eq(out, "Zm8");
    const unsigned char bin[3] = {0xfb, 0xff, 0xbf};
    guest__b64url_encode(bin, 3, out);
    ck_assert_str_eq(out, "-_-_");
    unsigned char dec[3];
    ck_assert(guest__b64url_decode("-_-_", 4, dec, 3));
    ck_assert(memcmp(dec, bin, 3) == 0);
    ck_assert(!guest__b64url_decode("+/+/", 4, dec, 3)); /* std alphabet */
    ck_assert(!guest__b64url_decode("Zm9", 3, dec, 3));  /* wrong length */
    unsigned char two[2];
    ck_assert(guest__b64url_decode("Zm8", 3, two, 2));
    ck_assert(!guest__b64url_decode("Zm9", 3, two, 2)); /* non-zero tail bits */
}
END_TEST

START_TEST(sha256_known_answer)
{
    unsigned char h[32];
    char hex[65];
    ck_assert_int_eq(guest__sha256("abc", 3, h), GUEST_OK);
    for (int i = 0; i < 32; i++)
        sprintf(hex + 2 * i, "%02x", h[i]);
    ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223"
                          "b00361a396177a9cb410ff61f20015ad");
}
END_TEST

START_TEST(session_tokens_round_trip)
{
    char token[GUEST__TOKEN_CHARS + 1];
    unsigned char h1[32], h2[32];
    ck_assert_int_eq(guest__session_new(token, h1), GUEST_OK);
    ck_assert_uint_eq(strlen(token), 43);
    ck_assert(guest__session_hash(token, h2));
    ck_assert(memcmp(h1, h2, 32) == 0);
    ck_assert(!guest__session_hash("short", h2));
    char bad[44];
    memcpy(bad, token, 44);
    bad[5] = '*';
    ck_assert(!guest__session_hash(bad, h2));
    char other[GUEST__TOKEN_CHARS + 1];
    ck_assert_int_eq(guest__session_new(other, h2), GUEST_OK);
    ck_assert_str_ne(token, other);
}
END_TEST

START_TEST(cookie_parsing)
{
    char v[64];
    ck_assert(guest__cookie_value("sessionid=abc", "sessionid", v, sizeof v));
    ck_assert_str_eq(v, "abc");
    ck_assert(guest__cookie_value("a=1; sessionid=xyz; b=2", "sessionid", v,
                                  sizeof v));
    ck_assert_str_eq(v, "xyz");
    /* the first of several wins */
    ck_assert(guest__cookie_value("sessionid=first;sessionid=second",
                                  "sessionid", v, sizeof v));
    ck_assert_str_eq(v, "first");
    ck_assert(guest__cookie_value("x=1;  sessionid = \"q\" ", "sessionid", v,
                                  sizeof v));
    ck_assert_str_eq(v, "q");
    /* a longer name that starts alike is another cookie */
    ck_assert(!guest__cookie_value("sessionidx=1; xsessionid=2", "sessionid", v,
                                   sizeof v));
    ck_assert(!guest__cookie_value(NULL, "sessionid", v, sizeof v));
    ck_assert(!guest__cookie_value("", "sessionid", v, sizeof v));
    ck_assert(!guest__cookie_value(";;;=;", "sessionid", v, sizeof v));
    /* oversized: no session */
    char big[200];
    memset(big, 'a', sizeof big);
    memcpy(big, "sessionid=", 10);
    big[199] = '\0';
    ck_assert(!guest__cookie_value(big, "sessionid", v, sizeof v));
}
END_TEST

START_TEST(url_quote_like_python)
{
    char *q = guest__url_quote("/a b/?x=1&y=ä~_.-");
    ck_assert_str_eq(q, "/a%20b/%3Fx%3D1%26y%3D%C3%A4~_.-");
    free(q);
}
END_TEST

START_TEST(redirect_with_next_like_django)
{
    char *u = guest__redirect_with_next("/accounts/login/", "next",
                                        "/regular_user_required/");
    ck_assert_str_eq(u, "/accounts/login/?next=/regular_user_required/");
    free(u);
    u = guest__redirect_with_next("/login/?lang=en", "next", "/p/?a=1&b=2");
    ck_assert_str_eq(u, "/login/?lang=en&next=/p/%3Fa%3D1%26b%3D2");
    free(u);
    u = guest__redirect_with_next("/login/?", "to", "/x");
    ck_assert_str_eq(u, "/login/?to=/x");
    free(u);
}
END_TEST

START_TEST(random_below_stays_in_range)
{
    int seen[10] = {0};
    for (int i = 0; i < 2000; i++) {
        uint64_t v;
        ck_assert_int_eq(guest__random_below(10, &v), GUEST_OK);
        ck_assert_uint_lt(v, 10);
        seen[v]++;
    }
    for (int i = 0; i < 10; i++)
        ck_assert_int_gt(seen[i], 100);
    uint64_t v;
    ck_assert_int_eq(guest__random_below(0, &v), GUEST_ERR_INVALID);
}
END_TEST

/* What the library logs goes to the application's callback; a condition
 * that repeats is logged once per interval, not once per request. */
typedef struct log_capture {
    int calls;
    guest_log_level level;
    char last[128];
} log_capture;

static void capture_log(guest_log_level level, const char *message,
                        void *userdata)
{
    log_capture *c = userdata;
    c->calls++;
    c->level = level;
    snprintf(c->last, sizeof c->last, "%s", message);
}

START_TEST(log_goes_to_callback_and_repeats_are_held_back)
{
    guest_ctx fake;
    memset(&fake, 0, sizeof fake);
    guest_config_init(&fake.cfg);
    ck_assert_ptr_null(fake.cfg.log);
    log_capture cap = {0};
    fake.cfg.log = capture_log;
    fake.cfg.log_userdata = &cap;
    guest__log(&fake, GUEST_LOG_WARNING, "value %d", 42);
    ck_assert_int_eq(cap.calls, 1);
    ck_assert_int_eq(cap.level, GUEST_LOG_WARNING);
    ck_assert_str_eq(cap.last, "value 42");
    /* one message, one line: libpq's "\n\t" hints and trailing newline */
    guest__log(&fake, GUEST_LOG_ERROR, "%s",
               "could not connect\n\tIs the server running?\n");
    ck_assert_str_eq(cap.last, "could not connect Is the server running?");
    guest__log(&fake, GUEST_LOG_ERROR, "a\r\nb\x1b[31mc\x7f");
    ck_assert_str_eq(cap.last, "a b [31mc");
    cap.calls = 1;

    _Atomic int64_t last = 0;
    /* An hour-long interval: only the first of many calls logs. */
    for (int i = 0; i < 100; i++)
        guest__log_every(&fake, &last, 3600 * 1000, GUEST_LOG_ERROR, "full %d",
                         i);
    ck_assert_int_eq(cap.calls, 2);
    ck_assert_str_eq(cap.last, "full 0");
    /* Once the interval has passed, the next call logs again. */
    last = guest__now_ms() - 3600 * 1000 - 1;
    ck_assert(
        guest__log_every(&fake, &last, 3600 * 1000, GUEST_LOG_ERROR, "again"));
    ck_assert_int_eq(cap.calls, 3);
    ck_assert_int_eq(cap.level, GUEST_LOG_ERROR);
}
END_TEST

START_TEST(config_defaults_match_reference)
{
    guest_config c;
    guest_config_init(&c);
    ck_assert(c.enabled);
    ck_assert_int_eq(c.max_age, 1209600);
    ck_assert(c.name_generator == guest_name_uuid);
    ck_assert_str_eq(c.name_prefix, "Guest");
    ck_assert_uint_eq(c.name_suffix_digits, 4);
    ck_assert_str_eq(c.login_url, "/accounts/login/");
    ck_assert_str_eq(c.login_redirect_url, "/accounts/profile/");
    ck_assert_str_eq(c.convert_url, "/convert/");
    ck_assert_str_eq(c.redirect_field_name, "next");
    ck_assert_str_eq(c.cookie_name, "sessionid");
    ck_assert_str_eq(c.cookie_samesite, "Lax");
    ck_assert(!c.cookie_secure);
    ck_assert_str_eq(c.db_schema, "guestuser");
    ck_assert_uint_eq(c.password_iterations, 1500000); /* Django 6.1 */
    ck_assert_uint_eq(c.password_min_length, 8);
    const char *expected[] = {"Googlebot",
                              "Mediapartners-Google",
                              "Bingbot",
                              "Slurp",
                              "DuckDuckBot",
                              "Baiduspider",
                              "Yandex(Mobile)?Bot",
                              "Sogou",
                              "Exabot",
                              "facebot",
                              "facebookexternalhit",
                              "ia_archiver"};
    const char *const *a = c.blocked_user_agents;
    for (size_t i = 0; i < sizeof expected / sizeof *expected; i++)
        ck_assert_str_eq(a[i], expected[i]);
    ck_assert_ptr_null(a[12]);
}
END_TEST

static guest_status bad_config(void (*tweak)(guest_config *), char *msg,
                               size_t size)
{
    guest_config c;
    guest_config_init(&c);
    /* unreachable on purpose: validation must fail before connecting */
    c.db_conninfo = "host=127.0.0.1 port=1";
    tweak(&c);
    guest_ctx *ctx = (guest_ctx *)0x1;
    guest_error err = {0};
    guest_status st = guest_ctx_new(&c, &ctx, &err);
    ck_assert_ptr_null(ctx);
    ck_assert_int_eq(err.status, st);
    snprintf(msg, size, "%s", err.message);
    return st;
}

static void t_regex(guest_config *c)
{
    static const char *const bad[] = {"Googlebot", "(unclosed", NULL};
    c->blocked_user_agents = bad;
}
static void t_digits(guest_config *c)
{
    c->name_suffix_digits = 0;
}
static void t_schema(guest_config *c)
{
    c->db_schema = "x\"; DROP";
}
static void t_cookie(guest_config *c)
{
    c->cookie_name = "a b";
}
static void t_samesite(guest_config *c)
{
    c->cookie_samesite = "None";
}
static void t_ctl(guest_config *c)
{
    c->login_url = "/x\r\nSet-Cookie: a";
}
static void t_age(guest_config *c)
{
    c->max_age = -1; /* 0 is "the recorded one" */
}
static void t_syntax(guest_config *c)
{
    c->db_conninfo = "nonsense";
}
static void t_pool(guest_config *c)
{
    c->db_pool_size = 0;
}
static void t_timeout(guest_config *c)
{
    c->db_timeout_ms = 3000000000u;
}

START_TEST(bad_config_is_reported)
{
    char msg[256];
    ck_assert_int_eq(bad_config(t_regex, msg, sizeof msg), GUEST_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(msg, "(unclosed"));
    ck_assert_int_eq(bad_config(t_digits, msg, sizeof msg), GUEST_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(msg, "name_suffix_digits"));
    ck_assert_int_eq(bad_config(t_schema, msg, sizeof msg), GUEST_ERR_CONFIG);
    ck_assert_int_eq(bad_config(t_cookie, msg, sizeof msg), GUEST_ERR_CONFIG);
    ck_assert_int_eq(bad_config(t_samesite, msg, sizeof msg), GUEST_ERR_CONFIG);
    ck_assert_int_eq(bad_config(t_ctl, msg, sizeof msg), GUEST_ERR_CONFIG);
    ck_assert_int_eq(bad_config(t_age, msg, sizeof msg), GUEST_ERR_CONFIG);
    ck_assert_int_eq(bad_config(t_pool, msg, sizeof msg), GUEST_ERR_CONFIG);
    ck_assert_int_eq(bad_config(t_timeout, msg, sizeof msg), GUEST_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(msg, "db_timeout_ms"));
    ck_assert_int_eq(bad_config(t_syntax, msg, sizeof msg), GUEST_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(msg, "db_conninfo"));
}
END_TEST

/* One out-of-range setting per case, each refused by name before the
 * database is contacted. */
static int range_case;
static void t_range(guest_config *c)
{
    switch (range_case) {
    case 0:
        c->name_generator = NULL;
        break;
    case 1:
        c->name_max_attempts = 0;
        break;
    case 2:
        c->cookie_samesite = "Loose";
        break;
    case 3:
        c->csrf_cookie_name = "csrf token";
        break;
    case 4:
        c->secure_proxy_header = "X-Forwarded:Proto";
        break;
    case 5:
        c->redirect_field_name = "";
        break;
    case 6:
        c->name_prefix = "GuestGuestGuestGuestGuestGuestGuestGuestGuestGuest"
                         "GuestGuestGuestGuestGuestGuestGuestGuestGuestGuestG";
        break;
    case 7:
        c->password_iterations = 2147483648u;
        break;
    case 8:
        c->max_body_size = 1023;
        break;
    case 9:
        c->guest_rate_limit = 1000000001u;
        break;
    case 10:
        c->login_address_rate_limit = 1000000001u;
        break;
    case 11:
        c->password_reset_timeout = 59;
        break;
    case 12:
        c->email_verify_timeout = 2592001;
        break;
    case 13:
        c->mail_poll_ms = 9;
        break;
    case 14:
        c->mail_max_attempts = 101;
        break;
    case 15:
        c->password_reset_email_limit = 1000000001u;
        break;
    default:
        break;
    }
}

START_TEST(every_setting_out_of_range_is_named)
{
    static const char *const named[] = {"name_generator",
                                        "name_max_attempts",
                                        "cookie_samesite",
                                        "csrf_cookie_name",
                                        "secure_proxy_header",
                                        "redirect_field_name",
                                        "name_prefix",
                                        "password_iterations",
                                        "max_body_size",
                                        "guest_rate_limit",
                                        "login_address_rate_limit",
                                        "password_reset_timeout",
                                        "email_verify_timeout",
                                        "mail_poll_ms",
                                        "mail_max_attempts",
                                        "password reset limits"};
    char msg[256];
    for (range_case = 0; range_case < (int)(sizeof named / sizeof *named);
         range_case++) {
        ck_assert_int_eq(bad_config(t_range, msg, sizeof msg),
                         GUEST_ERR_CONFIG);
        ck_assert_msg(strstr(msg, named[range_case]), "case %d: %s", range_case,
                      msg);
    }
}
END_TEST

START_TEST(the_default_agent_list_is_the_one_configs_start_with)
{
    const char *const *agents = guest_default_blocked_agents();
    ck_assert_ptr_nonnull(agents);
    ck_assert_ptr_nonnull(agents[0]);
    guest_config c;
    guest_config_init(&c);
    ck_assert_ptr_eq(c.blocked_user_agents, agents);
}
END_TEST

START_TEST(key_files_and_limits_refuse_what_they_cannot_use)
{
    guest_error err = {0};
    char **keys = (char **)1;
    /* a directory opens but cannot be read */
    ck_assert_int_eq(guest_secret_keys_load("/tmp", &keys, &err),
                     GUEST_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(err.message, "cannot read"));
    ck_assert_ptr_null(keys);
    uint64_t deleted = 7;
    ck_assert_int_eq(guest_rate_limits_reset(NULL, "alice", &deleted, &err),
                     GUEST_ERR_INVALID);
    ck_assert_uint_eq(deleted, 0);
    ck_assert_int_eq(guest_rate_limits_list(NULL, 0, NULL, NULL, &err),
                     GUEST_ERR_INVALID);
}
END_TEST

START_TEST(unreachable_database_is_reported)
{
    guest_config c;
    guest_config_init(&c);
    c.db_conninfo = "host=127.0.0.1 port=1";
    /* a refused connection is reported at once; no timeout is involved */
    c.db_timeout_ms = 30000;
    guest_ctx *ctx = NULL;
    guest_error err = {0};
    ck_assert_int_eq(guest_ctx_new(&c, &ctx, &err), GUEST_ERR_DB_UNAVAILABLE);
    ck_assert_ptr_null(ctx);
    ck_assert_ptr_nonnull(strstr(err.message, "connect"));
    ck_assert_int_eq(guest_ctx_new(NULL, &ctx, NULL), GUEST_ERR_INVALID);
    guest_ctx_free(NULL);
}
END_TEST

/* Header lines joined as RFC 9110 combines them, cookies with "; ". */
/* The bind address of the MHD and Ulfius adapters' start functions. */
START_TEST(socket_addresses_for_adapters)
{
    struct sockaddr_storage ss;
    ck_assert_int_eq(guest_sockaddr_parse("10.1.2.3", 8080, &ss), AF_INET);
    const struct sockaddr_in *v4 = (const struct sockaddr_in *)&ss;
    ck_assert_int_eq(v4->sin_family, AF_INET);
    ck_assert_int_eq(ntohs(v4->sin_port), 8080);
    ck_assert_uint_eq(ntohl(v4->sin_addr.s_addr), 0x0A010203u);
    ck_assert_int_eq(guest_sockaddr_parse(NULL, 0, &ss), AF_INET);
    ck_assert_uint_eq(ntohl(v4->sin_addr.s_addr), 0x7F000001u);
    ck_assert_int_eq(guest_sockaddr_parse("::1", 443, &ss), AF_INET6);
    const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)&ss;
    ck_assert_int_eq(ntohs(v6->sin6_port), 443);
    ck_assert(IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr));
    ck_assert_int_eq(guest_sockaddr_parse("localhost", 80, &ss), 0);
    ck_assert_int_eq(guest_sockaddr_parse("10.1.2.3:80", 80, &ss), 0);
    ck_assert_int_eq(guest_sockaddr_parse("", 80, &ss), 0);
}
END_TEST

START_TEST(header_lines_join_for_adapters)
{
    guest_buf b = {0};
    ck_assert_int_eq(guest_buf_append_field_line(&b, "X-Forwarded-For", "a"),
                     0);
    ck_assert_int_eq(guest_buf_append_field_line(&b, "x-forwarded-for", "b"),
                     0);
    ck_assert_str_eq(b.data, "a, b");
    guest_buf_cleanup(&b);
    ck_assert_int_eq(guest_buf_append_field_line(&b, "Cookie", "a=1"), 0);
    ck_assert_int_eq(guest_buf_append_field_line(&b, "cookie", "b=2"), 0);
    ck_assert_int_eq(guest_buf_append_field_line(&b, "Cookie", NULL), 0);
    ck_assert_str_eq(b.data, "a=1; b=2; ");
    ck_assert_int_eq(guest_buf_append_field_line(&b, NULL, "x"), -1);
    ck_assert_int_eq(guest_buf_append_field_line(NULL, "Cookie", "x"), -1);
    ck_assert_str_eq(b.data, "a=1; b=2; ");
    guest_buf_cleanup(&b);
}
END_TEST

/* A field's lines as an adapter's header callback gathers them: one line
 * is the server's own string, more are joined and kept per request. */
START_TEST(header_fields_join_and_stay_for_the_request)
{
    guest_joined keep = {0};
    guest_field f = {0};
    ck_assert_ptr_null(guest_field_value(&f, &keep));
    const char *one = "10.0.0.1";
    guest_field_add(&f, "X-Forwarded-For", one);
    ck_assert_ptr_eq(guest_field_value(&f, &keep), one);
    ck_assert_uint_eq(keep.count, 0);
    guest_field_add(&f, "Cookie", "a=1");
    guest_field_add(&f, "cookie", "b=2");
    guest_field_add(&f, "Cookie", NULL);
    const char *joined = guest_field_value(&f, &keep);
    ck_assert_str_eq(joined, "a=1; b=2; ");
    ck_assert_uint_eq(keep.count, 1);
    ck_assert_uint_eq(f.lines, 0);
    /* A later line is read during its call only. */
    char line[8] = "b";
    guest_field_add(&f, "X-Forwarded-For", "a");
    guest_field_add(&f, "X-Forwarded-For", line);
    line[0] = 'z';
    ck_assert_str_eq(guest_field_value(&f, &keep), "a, b");
    ck_assert_str_eq(joined, "a=1; b=2; ");
    /* Past GUEST_JOINED_MAX: no value rather than one more copy. */
    while (keep.count < GUEST_JOINED_MAX) {
        guest_field_add(&f, "Via", "1");
        guest_field_add(&f, "Via", "2");
        ck_assert_str_eq(guest_field_value(&f, &keep), "1, 2");
    }
    guest_field_add(&f, "Via", "1");
    guest_field_add(&f, "Via", "2");
    ck_assert_ptr_null(guest_field_value(&f, &keep));
    /* Without a keeper a joined value cannot be handed out; one line can. */
    guest_field_add(&f, "Via", "1");
    guest_field_add(&f, "Via", "2");
    ck_assert_ptr_null(guest_field_value(&f, NULL));
    guest_field_add(&f, "Via", "1");
    ck_assert_str_eq(guest_field_value(&f, NULL), "1");
    guest_joined_cleanup(&keep);
    ck_assert_ptr_null(keep.values);
    ck_assert_uint_eq(keep.count, 0);
    guest_joined_cleanup(&keep);
    guest_joined_cleanup(NULL);
    guest_field_add(NULL, "Via", "1");
    ck_assert_ptr_null(guest_field_value(NULL, &keep));
}
END_TEST

START_TEST(header_names_and_lengths_for_adapters)
{
    ck_assert_int_eq(guest_header_name_ok("X-Forwarded-For"), 0);
    ck_assert_int_eq(guest_header_name_ok("a!#$%&'*+-.^_`|~9"), 0);
    ck_assert_int_eq(guest_header_name_ok(""), -1);
    ck_assert_int_eq(guest_header_name_ok(NULL), -1);
    ck_assert_int_eq(guest_header_name_ok("Content-Length "), -1);
    ck_assert_int_eq(guest_header_name_ok("Host:"), -1);
    ck_assert_int_eq(guest_header_name_ok("caf\xc3\xa9"), -1);
    ck_assert_int_eq(guest_header_value_ok("a\tb"), 0);
    ck_assert_int_eq(guest_header_value_ok("a\rb"), -1);

    ck_assert(guest_header_has_token("close", "close"));
    ck_assert(guest_header_has_token("keep-alive, Close ", "close"));
    ck_assert(guest_header_has_token(" ,\tupgrade ,close", "close"));
    ck_assert(!guest_header_has_token("closed, x-close", "close"));
    ck_assert(!guest_header_has_token("", "close"));
    ck_assert(!guest_header_has_token(NULL, "close"));

    unsigned long long n = 7;
    ck_assert_int_eq(guest_content_length_parse("42", &n), 0);
    ck_assert_uint_eq(n, 42);
    ck_assert_int_eq(guest_content_length_parse(" \t0 ", &n), 0);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(guest_content_length_parse("18446744073709551615", &n), 0);
    ck_assert_uint_eq(n, 18446744073709551615ULL);
    n = 7;
    ck_assert_int_eq(guest_content_length_parse("18446744073709551616", &n), 1);
    ck_assert_uint_eq(n, 7);
    const char *bad[] = {"", " ", "-1", "+1", "0x10", "1,1", "1 1", "1a", NULL};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        ck_assert_msg(guest_content_length_parse(bad[i], &n) == -1, "%s",
                      bad[i] ? bad[i] : "NULL");
    ck_assert_uint_eq(n, 7);
}
END_TEST

/* The framing a proxy in front could read another way than the server. */
START_TEST(framing_checks_for_adapters)
{
    guest_framing f = {0};
    ck_assert(!guest_framing_refused(&f, false));
    guest_framing_add(&f, "Host", "x");
    guest_framing_add(&f, "content-length", " 5 ");
    guest_framing_add(&f, "X-Other", NULL);
    guest_framing_add(&f, NULL, "3");
    ck_assert_uint_eq(f.host, 1);
    ck_assert_uint_eq(f.content_length, 1);
    ck_assert(!guest_framing_refused(&f, false));
    guest_framing_add(&f, "Content-Length", "5");
    ck_assert(guest_framing_refused(&f, true));

    guest_framing t = {0};
    guest_framing_add(&t, "Transfer-Encoding", " Chunked");
    ck_assert(!guest_framing_refused(&t, true));
    /* Chunked only from HTTP/1.1 on. */
    ck_assert(guest_framing_refused(&t, false));
    guest_framing_add(&t, "Content-Length", "5");
    ck_assert(guest_framing_refused(&t, true));

    const char *te_bad[] = {"chunked ", "gzip, chunked", "identity", "", NULL};
    for (size_t i = 0; i < sizeof te_bad / sizeof *te_bad; i++) {
        guest_framing b = {0};
        guest_framing_add(&b, "Transfer-Encoding", te_bad[i]);
        ck_assert_msg(b.bad_value && guest_framing_refused(&b, true), "%s",
                      te_bad[i] ? te_bad[i] : "NULL");
    }
    guest_framing c = {0};
    guest_framing_add(&c, "Content-Length", "1,1");
    ck_assert(guest_framing_refused(&c, true));
    guest_framing h = {0};
    guest_framing_add(&h, "Host", "a");
    guest_framing_add(&h, "HOST", "a");
    ck_assert(guest_framing_refused(&h, true));
    ck_assert(guest_framing_refused(NULL, true));
}
END_TEST

static void never_runs(guest_req *req, void *userdata)
{
    (void)req;
    *(int *)userdata = 1;
}

/* The adapter's own answers; the handler's path is test_testing_client's. */
START_TEST(plain_answers_and_refused_requests_for_adapters)
{
    guest_response r;
    guest_response_init(&r);
    ck_assert_int_eq(guest_response_add_header(&r, "X-Gone", "1"), 0);
    ck_assert_int_eq(guest_response_write(&r, "page", 4), 0);
    ck_assert_int_eq(guest_response_plain(&r, 413, "Payload Too Large\n"), 0);
    ck_assert_int_eq(r.status, 413);
    ck_assert_uint_eq(r.header_count, 1);
    ck_assert_str_eq(r.headers[0], "Content-Type");
    ck_assert_str_eq(r.headers[1], "text/plain; charset=utf-8");
    ck_assert_str_eq(r.body.data, "Payload Too Large\n");
    ck_assert_int_eq(guest_response_plain(&r, 400, NULL), 0);
    ck_assert_int_eq(r.status, 400);
    ck_assert_uint_eq(r.header_count, 1);
    ck_assert_uint_eq(r.body.len, 0);
    guest_response_cleanup(&r);

    /* No context or no handler: the request cannot be made, 500. */
    int ran = 0;
    const char *text = NULL;
    guest_http_ops ops = {GUEST_HTTP_OPS_INIT};
    ck_assert_int_eq(
        guest_run_handler(NULL, &ops, NULL, never_runs, &ran, &text), 500);
    ck_assert_str_eq(text, "Internal Server Error\n");
    text = NULL;
    ck_assert_int_eq(guest_run_handler(NULL, &ops, NULL, NULL, &ran, &text),
                     500);
    ck_assert_str_eq(text, "Internal Server Error\n");
    ck_assert_int_eq(
        guest_run_handler(NULL, &ops, NULL, never_runs, &ran, NULL), 500);
    ck_assert_int_eq(ran, 0);
}
END_TEST

START_TEST(response_collection_for_adapters)
{
    guest_response r;
    guest_response_init(&r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(guest_response_set_status(&r, 302), 0);
    ck_assert_int_eq(guest_response_add_header(&r, "Location", "/x"), 0);
    ck_assert_int_eq(guest_response_write(&r, "ab", 2), 0);
    ck_assert_int_eq(guest_response_write(&r, NULL, 0), 0);
    char big[5000];
    memset(big, 'c', sizeof big);
    ck_assert_int_eq(guest_response_write(&r, big, sizeof big), 0);
    ck_assert_uint_eq(r.body.len, 5002);
    ck_assert_int_eq(r.body.data[5002], '\0');
    ck_assert_uint_eq(r.header_count, 1);
    ck_assert_str_eq(r.headers[0], "Location");
    ck_assert_str_eq(r.headers[1], "/x");
    r.max_headers = 2;
    ck_assert_int_eq(guest_response_add_header(&r, "A", "1"), 0);
    ck_assert_int_eq(guest_response_add_header(&r, "B", "2"), -1);
    ck_assert_uint_eq(r.header_count, 2);
    guest_response_reset(&r, 413);
    ck_assert_int_eq(r.status, 413);
    ck_assert_uint_eq(r.header_count, 0);
    ck_assert_uint_eq(r.body.len, 0);
    ck_assert_str_eq(r.body.data, "");
    guest_response_cleanup(&r);
    guest_response_cleanup(&r); /* twice is harmless */
    guest_buf b = {0};
    ck_assert_int_eq(guest_buf_append(&b, "x", 1), 0);
    ck_assert_int_eq(guest_buf_append(&b, "y", SIZE_MAX - 1), -1);
    ck_assert_str_eq(b.data, "x");
    guest_buf_cleanup(&b);
    ck_assert_ptr_null(b.data);
}
END_TEST

START_TEST(a_silent_database_times_out)
{
    /* A listener that accepts connections but never speaks: connecting
     * must give up at db_timeout_ms, not hang. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(listen(fd, 16), 0);
    socklen_t len = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &len);
    char conninfo[128];
    snprintf(conninfo, sizeof conninfo,
             "host=127.0.0.1 port=%d sslmode=disable", ntohs(sa.sin_port));
    guest_config c;
    guest_config_init(&c);
    c.db_conninfo = conninfo;
    c.db_timeout_ms = 700;
    guest_ctx *ctx = NULL;
    guest_error err = {0};
    long long t0 = tl_now_ms();
    ck_assert_int_eq(guest_ctx_new(&c, &ctx, &err), GUEST_ERR_DB_UNAVAILABLE);
    /* It gave up because of the timeout (the message says so), and it did
     * give up: the listener would never answer. The bound is generous, far
     * over the 700 ms asked for, and only guards against a hang. */
    ck_assert_ptr_nonnull(strstr(err.message, "timed out"));
    ck_assert_int_lt(tl_now_ms() - t0, 30000);
    close(fd);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("core_units");
    TCase *tc = tcase_create("units");
    tcase_add_test(tc, status_strings_cover_every_value);
    tcase_add_test(tc, version_comes_from_cmake);
    tcase_add_test(tc, b64url_known_answers);
    tcase_add_test(tc, sha256_known_answer);
    tcase_add_test(tc, session_tokens_round_trip);
    tcase_add_test(tc, cookie_parsing);
    tcase_add_test(tc, url_quote_like_python);
    tcase_add_test(tc, redirect_with_next_like_django);
    tcase_add_test(tc, random_below_stays_in_range);
    tcase_add_test(tc, config_defaults_match_reference);
    tcase_add_test(tc, bad_config_is_reported);
    tcase_add_test(tc, every_setting_out_of_range_is_named);
    tcase_add_test(tc, the_default_agent_list_is_the_one_configs_start_with);
    tcase_add_test(tc, unreachable_database_is_reported);
    tcase_add_test(tc, key_files_and_limits_refuse_what_they_cannot_use);
    tcase_add_test(tc, a_silent_database_times_out);
    tcase_add_test(tc, response_collection_for_adapters);
    tcase_add_test(tc, header_lines_join_for_adapters);
    tcase_add_test(tc, header_fields_join_and_stay_for_the_request);
    tcase_add_test(tc, header_names_and_lengths_for_adapters);
    tcase_add_test(tc, framing_checks_for_adapters);
    tcase_add_test(tc, plain_answers_and_refused_requests_for_adapters);
    tcase_add_test(tc, socket_addresses_for_adapters);
    tcase_add_test(tc, log_goes_to_callback_and_repeats_are_held_back);
    suite_add_tcase(s, tc);
    return tl_run(s);
}

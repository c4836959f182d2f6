/* Sign-in with a provider's identity against the fixture database: every
 * row of the outcome table (docs/identity-providers.md), usernames made
 * from the identity, listing and unlinking, the pending flows, and a race
 * of one identity signing in eight times at once. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"

#define SCHEMA "t_identities"
#define ISS "https://id.example.test"

static void setup(void)
{
    tl_drop_schema(SCHEMA);
}

static long long count(const char *sql)
{
    return tl_scalar_in(SCHEMA, sql);
}

/* What the hooks saw. */
static int converted_calls, linked_calls, guest_login_calls;
static char linked_claims[256];
static int64_t linked_user;

static void on_converted(const guest_user *user, void *ud)
{
    (void)user;
    (void)ud;
    converted_calls++;
}

static void on_linked(const guest_user *user, const guest_identity *id,
                      void *ud)
{
    (void)ud;
    linked_calls++;
    linked_user = guest_user_id(user);
    snprintf(linked_claims, sizeof linked_claims, "%s",
             id->claims_json ? id->claims_json : "");
}

static guest_status on_guest_login(const guest_user *guest,
                                   const guest_user *user, guest_db *db,
                                   void *ud)
{
    (void)guest;
    (void)user;
    (void)db;
    (void)ud;
    guest_login_calls++;
    return GUEST_OK;
}

static void hooks(guest_config *c)
{
    c->on_converted = on_converted;
    c->on_identity_linked = on_linked;
    c->on_guest_login = on_guest_login;
}

static void no_signup(guest_config *c)
{
    hooks(c);
    c->identity_signup = false;
}

typedef struct sign_in {
    const guest_identity *id;
    guest_status st;
    guest_identity_outcome outcome;
    guest_error err;
} sign_in;

static void sign_in_handler(guest_req *req, void *ud)
{
    sign_in *s = ud;
    s->st = guest_identity_sign_in(req, s->id, &s->outcome, &s->err);
}

/* Signs in with @p id as the visitor of @p cookie ("" : anonymous); the
 * new session cookie, if one was set, into @p new_cookie. */
static guest_status run(guest_ctx *ctx, const char *cookie,
                        const guest_identity *id,
                        guest_identity_outcome *outcome, char *new_cookie,
                        size_t size)
{
    tl_http h;
    sign_in s = {.id = id};
    tl_request(ctx, &h, "POST", "/", cookie, NULL, NULL, sign_in_handler, &s);
    if (new_cookie) {
        new_cookie[0] = '\0';
        tl_http_cookie(&h, "sessionid", new_cookie, size);
    }
    tl_http_free(&h);
    if (outcome)
        *outcome = s.outcome;
    return s.st;
}

static void reset_hooks(void)
{
    converted_calls = linked_calls = guest_login_calls = 0;
    linked_user = 0;
    linked_claims[0] = '\0';
}

START_TEST(unknown_identity_converts_the_guest)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, hooks);
    reset_hooks();
    char guest[128], fresh[128];
    int64_t gid = tl_new_guest(ctx, guest, sizeof guest);
    guest_identity id = {.issuer = ISS,
                         .subject = "sub-1",
                         .email = "Ann@example.test",
                         .email_verified = true,
                         .preferred_username = "ann",
                         .claims_json = "{\"sub\":\"sub-1\"}"};
    guest_identity_outcome o;
    ck_assert_int_eq(run(ctx, guest, &id, &o, fresh, sizeof fresh), GUEST_OK);
    ck_assert_int_eq(o, GUEST_IDENTITY_CONVERTED);
    /* the same user, registered now, without a usable password */
    bool is_guest = true;
    ck_assert_int_eq(tl_whoami(ctx, fresh, &is_guest), gid);
    ck_assert(!is_guest);
    ck_assert_int_eq(count("SELECT count(*) FROM @.users WHERE username ="
                           " 'ann' AND password LIKE '!%'"),
                     1);
    ck_assert_int_eq(count("SELECT count(*) FROM @.guests"), 0);
    ck_assert_int_eq(count("SELECT count(*) FROM @.identities WHERE"
                           " subject = 'sub-1' AND email_verified"),
                     1);
    /* the guest's session ended */
    ck_assert_int_eq(tl_whoami(ctx, guest, &is_guest), 0);
    ck_assert_int_eq(converted_calls, 1);
    ck_assert_int_eq(linked_calls, 1);
    ck_assert_int_eq(linked_user, gid);
    ck_assert_str_eq(linked_claims, "{\"sub\":\"sub-1\"}");
    /* a password login is impossible; the identity logs in */
    int64_t uid;
    bool has_password = true;
    ck_assert_int_eq(guest_user_lookup(ctx, "ann", &uid, &has_password, NULL),
                     GUEST_OK);
    ck_assert_int_eq(uid, gid);
    ck_assert(!has_password);
    ck_assert_int_eq(run(ctx, "", &id, &o, fresh, sizeof fresh), GUEST_OK);
    ck_assert_int_eq(o, GUEST_IDENTITY_LOGGED_IN);
    ck_assert_int_eq(tl_whoami(ctx, fresh, NULL), gid);
    guest_ctx_free(ctx);
}
END_TEST

/* The name: preferred_username, else the e-mail's local part, else the
 * name, cleaned, with a number on a clash. */
START_TEST(usernames_come_from_the_identity)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, hooks);
    tl_new_user(ctx, "carol", TL_PASSWORD);
    struct {
        guest_identity id;
        const char *name;
    } cases[] = {
        {{.issuer = ISS, .subject = "a", .preferred_username = "carol"},
         "carol2"},
        {{.issuer = ISS, .subject = "b", .preferred_username = "carol"},
         "carol3"},
        {{.issuer = ISS, .subject = "c", .email = "dave.x+y@example.test"},
         "dave.x+y"},
        {{.issuer = ISS, .subject = "d", .name = "Erin O'Neil!"}, "ErinONeil"},
        {{.issuer = ISS,
          .subject = "e",
          .preferred_username = "\xc3\xa9\xc3\xa9",
          .name = "   "},
         "user"},
        {{.issuer = ISS, .subject = "f", .preferred_username = "a b;c<d>"},
         "abcd"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char cookie[128];
        guest_identity_outcome o;
        ck_assert_int_eq(run(ctx, "", &cases[i].id, &o, cookie, sizeof cookie),
                         GUEST_OK);
        ck_assert_int_eq(o, GUEST_IDENTITY_SIGNED_UP);
        char sql[256];
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM @.users u JOIN @.identities i ON"
                 " i.user_id = u.id WHERE i.subject = '%s' AND"
                 " u.username = '%s'",
                 cases[i].id.subject, cases[i].name);
        ck_assert_msg(count(sql) == 1, "case %zu: not %s", i, cases[i].name);
    }
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(unknown_identity_signs_up_or_is_refused)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, hooks);
    reset_hooks();
    guest_identity id = {.issuer = ISS, .subject = "new-1", .name = "Fay"};
    char cookie[128];
    guest_identity_outcome o;
    ck_assert_int_eq(run(ctx, "", &id, &o, cookie, sizeof cookie), GUEST_OK);
    ck_assert_int_eq(o, GUEST_IDENTITY_SIGNED_UP);
    bool is_guest = true;
    int64_t uid = tl_whoami(ctx, cookie, &is_guest);
    ck_assert_int_gt(uid, 0);
    ck_assert(!is_guest);
    ck_assert_int_eq(linked_calls, 1);
    ck_assert_int_eq(converted_calls, 0);
    guest_ctx_free(ctx);

    ctx = tl_ctx(SCHEMA, no_signup);
    guest_identity other = {.issuer = ISS, .subject = "new-2", .name = "Gus"};
    guest_error err;
    tl_http h;
    sign_in s = {.id = &other};
    tl_request(ctx, &h, "POST", "/", "", NULL, NULL, sign_in_handler, &s);
    ck_assert_int_eq(s.st, GUEST_ERR_SIGNUP_CLOSED);
    ck_assert_ptr_null(tl_http_res_header(&h, "Set-Cookie"));
    tl_http_free(&h);
    (void)err;
    ck_assert_int_eq(count("SELECT count(*) FROM @.identities"), 1);
    ck_assert_int_eq(count("SELECT count(*) FROM @.users"), 1);
    /* a guest may still convert that way */
    char guest[128];
    tl_new_guest(ctx, guest, sizeof guest);
    ck_assert_int_eq(run(ctx, guest, &other, &o, cookie, sizeof cookie),
                     GUEST_OK);
    ck_assert_int_eq(o, GUEST_IDENTITY_CONVERTED);
    guest_ctx_free(ctx);
}
END_TEST

/* A session cookie of a registered user made with a password login. */
static void login_cookie(guest_ctx *ctx, const char *username, char *cookie,
                         size_t size)
{
    tl_http h;
    char body[256];
    snprintf(body, sizeof body,
             "username=%s&password=" TL_PASSWORD
             "&csrfmiddlewaretoken=" TL_CSRF,
             username);
    tl_request(ctx, &h, "POST", "/accounts/login/", "csrftoken=" TL_CSRF, NULL,
               body, guest_login_view, NULL);
    ck_assert_int_eq(h.status, 302);
    ck_assert(tl_http_cookie(&h, "sessionid", cookie, size));
    tl_http_free(&h);
}

START_TEST(registered_users_link_and_are_refused_others)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, hooks);
    reset_hooks();
    int64_t hal = tl_new_user(ctx, "hal", TL_PASSWORD);
    int64_t ida = tl_new_user(ctx, "ida", TL_PASSWORD);
    char hal_cookie[128], ida_cookie[128], after[128];
    login_cookie(ctx, "hal", hal_cookie, sizeof hal_cookie);
    login_cookie(ctx, "ida", ida_cookie, sizeof ida_cookie);
    guest_identity id = {.issuer = ISS, .subject = "hal-at-provider"};
    guest_identity_outcome o;
    /* unknown + registered: linked, the session stays */
    ck_assert_int_eq(run(ctx, hal_cookie, &id, &o, after, sizeof after),
                     GUEST_OK);
    ck_assert_int_eq(o, GUEST_IDENTITY_LINKED);
    ck_assert_str_eq(after, "");
    ck_assert_int_eq(tl_whoami(ctx, hal_cookie, NULL), hal);
    ck_assert_int_eq(linked_calls, 1);
    ck_assert_int_eq(linked_user, hal);
    /* linked to hal + hal: logged in (nothing to change) */
    ck_assert_int_eq(run(ctx, hal_cookie, &id, &o, after, sizeof after),
                     GUEST_OK);
    ck_assert_int_eq(o, GUEST_IDENTITY_LOGGED_IN);
    ck_assert_int_eq(tl_whoami(ctx, hal_cookie, NULL), hal);
    /* linked to hal + ida: refused, nothing changes */
    long long sessions = count("SELECT count(*) FROM @.sessions");
    ck_assert_int_eq(run(ctx, ida_cookie, &id, &o, after, sizeof after),
                     GUEST_ERR_IDENTITY_TAKEN);
    ck_assert_str_eq(after, "");
    ck_assert_int_eq(tl_whoami(ctx, ida_cookie, NULL), ida);
    ck_assert_int_eq(count("SELECT count(*) FROM @.sessions"), sessions);
    ck_assert_int_eq(count("SELECT count(*) FROM @.identities"), 1);
    ck_assert_int_eq(linked_calls, 1);
    /* an identity with ida's... no: an unknown identity claiming the same
     * e-mail as hal's link is a new account, never merged into hal */
    tl_exec_in(SCHEMA, "UPDATE @.identities SET email = 'hal@example.test'");
    guest_identity same_mail = {.issuer = "https://other.example.test",
                                .subject = "x",
                                .email = "hal@example.test",
                                .email_verified = true};
    char cookie[128];
    ck_assert_int_eq(run(ctx, "", &same_mail, &o, cookie, sizeof cookie),
                     GUEST_OK);
    ck_assert_int_eq(o, GUEST_IDENTITY_SIGNED_UP);
    ck_assert_int_ne(tl_whoami(ctx, cookie, NULL), hal);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(linked_identity_logs_a_guest_in_as_its_user)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, hooks);
    int64_t jo = tl_new_user(ctx, "jo", TL_PASSWORD);
    char jo_cookie[128], guest[128], after[128];
    login_cookie(ctx, "jo", jo_cookie, sizeof jo_cookie);
    guest_identity id = {.issuer = ISS, .subject = "jo-sub"};
    guest_identity_outcome o;
    ck_assert_int_eq(run(ctx, jo_cookie, &id, &o, NULL, 0), GUEST_OK);
    reset_hooks();
    int64_t gid = tl_new_guest(ctx, guest, sizeof guest);
    ck_assert_int_eq(run(ctx, guest, &id, &o, after, sizeof after), GUEST_OK);
    ck_assert_int_eq(o, GUEST_IDENTITY_LOGGED_IN);
    ck_assert_int_eq(tl_whoami(ctx, after, NULL), jo);
    ck_assert_int_eq(guest_login_calls, 1);
    ck_assert_int_eq(linked_calls, 0);
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM @.users WHERE id = %lld",
             (long long)gid);
    ck_assert_int_eq(count(sql), 0);
    ck_assert_int_eq(count("SELECT count(*) FROM @.identities WHERE"
                           " last_login IS NOT NULL"),
                     1);
    /* an inactive user cannot be reached this way */
    tl_exec_in(SCHEMA, "UPDATE @.users SET is_active = false");
    ck_assert_int_eq(run(ctx, "", &id, &o, after, sizeof after),
                     GUEST_ERR_AUTH);
    guest_ctx_free(ctx);
}
END_TEST

/* An account made through a provider sets a password without an old
 * one; then the password logs in too, and the identity may be unlinked. */
START_TEST(a_user_without_password_sets_one)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, NULL);
    guest_identity id = {
        .issuer = ISS, .subject = "pw-1", .preferred_username = "kim"};
    char cookie[128], page_cookie[256];
    ck_assert_int_eq(run(ctx, "", &id, NULL, cookie, sizeof cookie), GUEST_OK);
    int64_t uid = tl_whoami(ctx, cookie, NULL);
    snprintf(page_cookie, sizeof page_cookie, "%s; csrftoken=" TL_CSRF, cookie);
    tl_http h;
    tl_request(ctx, &h, "GET", "/accounts/password/", page_cookie, NULL, NULL,
               guest_password_change_view, NULL);
    ck_assert_int_eq(h.status, 200);
    ck_assert_ptr_null(strstr(h.res_body, "name=\"old_password\""));
    ck_assert_ptr_nonnull(strstr(h.res_body, "no password yet"));
    tl_http_free(&h);
    tl_request(ctx, &h, "POST", "/accounts/password/", page_cookie, NULL,
               "new_password1=" TL_PASSWORD "&new_password2=" TL_PASSWORD
               "&csrfmiddlewaretoken=" TL_CSRF,
               guest_password_change_view, NULL);
    ck_assert_int_lt(h.status, 400);
    tl_http_free(&h);
    char login[128];
    login_cookie(ctx, "kim", login, sizeof login);
    ck_assert_int_eq(tl_whoami(ctx, login, NULL), uid);
    /* now the page asks for the old one */
    snprintf(page_cookie, sizeof page_cookie, "%s; csrftoken=" TL_CSRF, login);
    tl_request(ctx, &h, "GET", "/accounts/password/", page_cookie, NULL, NULL,
               guest_password_change_view, NULL);
    ck_assert_ptr_nonnull(strstr(h.res_body, "name=\"old_password\""));
    tl_http_free(&h);
    ck_assert_int_eq(guest_identity_unlink(ctx, uid, ISS, "pw-1", NULL),
                     GUEST_OK);
    guest_ctx_free(ctx);
}
END_TEST

static bool collect(const guest_identity_info *info, void *ud)
{
    char *out = ud;
    strcat(out, info->subject);
    strcat(out, ";");
    return true;
}

START_TEST(identities_are_listed_and_unlinked_but_not_the_last)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, hooks);
    guest_identity a = {.issuer = ISS, .subject = "k1"};
    guest_identity b = {.issuer = "https://b.example.test", .subject = "k2"};
    char cookie[128];
    ck_assert_int_eq(run(ctx, "", &a, NULL, cookie, sizeof cookie), GUEST_OK);
    int64_t uid = tl_whoami(ctx, cookie, NULL);
    ck_assert_int_eq(run(ctx, cookie, &b, NULL, NULL, 0), GUEST_OK);
    char seen[64] = "";
    ck_assert_int_eq(guest_identities_list(ctx, uid, collect, seen, NULL),
                     GUEST_OK);
    ck_assert_str_eq(seen, "k1;k2;");
    ck_assert_int_eq(guest_identity_unlink(ctx, uid, ISS, "k1", NULL),
                     GUEST_OK);
    /* k2 is now the only way in: kept */
    ck_assert_int_eq(
        guest_identity_unlink(ctx, uid, "https://b.example.test", "k2", NULL),
        GUEST_ERR_LAST_LOGIN);
    ck_assert_int_eq(count("SELECT count(*) FROM @.identities"), 1);
    ck_assert_int_eq(guest_identity_unlink(ctx, uid, ISS, "k1", NULL),
                     GUEST_ERR_NOT_FOUND);
    /* with a password it may go */
    tl_exec_in(SCHEMA, "UPDATE @.users SET password ="
                       " 'pbkdf2_sha256$1000$salt$hash'");
    ck_assert_int_eq(
        guest_identity_unlink(ctx, uid, "https://b.example.test", "k2", NULL),
        GUEST_OK);
    ck_assert_int_eq(guest_identity_unlink(ctx, uid, NULL, "k2", NULL),
                     GUEST_ERR_INVALID);
    int64_t none;
    ck_assert_int_eq(guest_user_lookup(ctx, "nobody", &none, NULL, NULL),
                     GUEST_ERR_NOT_FOUND);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(bad_identities_are_refused)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, hooks);
    char long_sub[300];
    memset(long_sub, 'x', sizeof long_sub - 1);
    long_sub[sizeof long_sub - 1] = '\0';
    guest_identity bad[] = {
        {.issuer = NULL, .subject = "s"},
        {.issuer = ISS, .subject = ""},
        {.issuer = ISS, .subject = long_sub},
        {.issuer = ISS, .subject = "\xff\xfe"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        ck_assert_int_eq(run(ctx, "", &bad[i], NULL, NULL, 0),
                         GUEST_ERR_INVALID);
    ck_assert_int_eq(run(ctx, "", NULL, NULL, NULL, 0), GUEST_ERR_INVALID);
    ck_assert_int_eq(guest_identity_sign_in(NULL, &bad[0], NULL, NULL),
                     GUEST_ERR_INVALID);
    ck_assert_int_eq(count("SELECT count(*) FROM @.users"), 0);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(flows_are_single_use_and_bound_to_the_browser)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, NULL);
    char *payload = NULL;
    ck_assert_int_eq(guest_flow_put(ctx, "state-1", "browser-a",
                                    "{\"nonce\":\"n\"}", 600, NULL),
                     GUEST_OK);
    /* another browser with the state: nothing, and the flow stays */
    ck_assert_int_eq(
        guest_flow_take(ctx, "state-1", "browser-b", &payload, NULL),
        GUEST_ERR_NOT_FOUND);
    ck_assert_ptr_null(payload);
    ck_assert_int_eq(
        guest_flow_take(ctx, "state-1", "browser-a", &payload, NULL), GUEST_OK);
    ck_assert_str_eq(payload, "{\"nonce\":\"n\"}");
    guest_free(payload);
    /* a replay finds nothing */
    ck_assert_int_eq(
        guest_flow_take(ctx, "state-1", "browser-a", &payload, NULL),
        GUEST_ERR_NOT_FOUND);
    /* an expired one neither */
    ck_assert_int_eq(guest_flow_put(ctx, "state-2", "b", "p", 600, NULL),
                     GUEST_OK);
    tl_exec_in(SCHEMA, "UPDATE @.flows SET expires_at = now() - interval"
                       " '1 second'");
    ck_assert_int_eq(guest_flow_take(ctx, "state-2", "b", &payload, NULL),
                     GUEST_ERR_NOT_FOUND);
    /* cleanup removes what never came back */
    guest_cleanup_options o;
    guest_cleanup_options_init(&o);
    guest_cleanup_result r;
    ck_assert_int_eq(guest_delete_expired(ctx, &o, &r, NULL), GUEST_OK);
    ck_assert_int_eq(count("SELECT count(*) FROM @.flows"), 0);
    /* only hashes are stored */
    ck_assert_int_eq(count("SELECT count(*) FROM @.flows WHERE"
                           " position('state-2' in encode(key_hash,"
                           " 'escape')) > 0"),
                     0);
    ck_assert_int_eq(guest_flow_put(ctx, "k", "b", "p", 0, NULL),
                     GUEST_ERR_INVALID);
    ck_assert_int_eq(guest_flow_put(ctx, "", "b", "p", 60, NULL),
                     GUEST_ERR_INVALID);
    guest_free(NULL);
    guest_ctx_free(ctx);
}
END_TEST

typedef struct racer {
    guest_ctx *ctx;
    pthread_barrier_t *go;
    const guest_identity *id;
    char cookie[128];
    guest_status st;
} racer;

static void *race(void *arg)
{
    racer *r = arg;
    pthread_barrier_wait(r->go);
    r->st = run(r->ctx, "", r->id, NULL, r->cookie, sizeof r->cookie);
    return NULL;
}

/* Eight first sign-ins of one identity at once: one account, and every
 * one of them logged in as it. */
START_TEST(one_identity_eight_times_at_once_makes_one_account)
{
    guest_ctx *ctx = tl_ctx(SCHEMA, NULL);
    guest_identity id = {.issuer = ISS, .subject = "racer"};
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, 8);
    racer r[8];
    pthread_t t[8];
    for (int i = 0; i < 8; i++) {
        r[i] = (racer){.ctx = ctx, .go = &go, .id = &id};
        ck_assert_int_eq(pthread_create(&t[i], NULL, race, &r[i]), 0);
    }
    for (int i = 0; i < 8; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&go);
    ck_assert_int_eq(count("SELECT count(*) FROM @.users"), 1);
    int64_t uid = count("SELECT id FROM @.users");
    for (int i = 0; i < 8; i++) {
        ck_assert_int_eq(r[i].st, GUEST_OK);
        ck_assert_int_eq(tl_whoami(ctx, r[i].cookie, NULL), uid);
    }
    guest_ctx_free(ctx);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("identities");
    TCase *t = tcase_create("db");
    tcase_add_checked_fixture(t, setup, NULL);
    tcase_set_timeout(t, 120);
    tcase_add_test(t, unknown_identity_converts_the_guest);
    tcase_add_test(t, usernames_come_from_the_identity);
    tcase_add_test(t, unknown_identity_signs_up_or_is_refused);
    tcase_add_test(t, registered_users_link_and_are_refused_others);
    tcase_add_test(t, linked_identity_logs_a_guest_in_as_its_user);
    tcase_add_test(t, identities_are_listed_and_unlinked_but_not_the_last);
    tcase_add_test(t, a_user_without_password_sets_one);
    tcase_add_test(t, bad_identities_are_refused);
    tcase_add_test(t, flows_are_single_use_and_bound_to_the_browser);
    tcase_add_test(t, one_identity_eight_times_at_once_makes_one_account);
    suite_add_tcase(s, t);
    return tl_run(s);
}

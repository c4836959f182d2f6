/* "Continue with NAME" in the guestuser-demo program, over real HTTP with
 * one server it has (mhd, civetweb, ulfius or evhttp: the first argument, else
 * the first of DEMO_OIDC_SERVERS, else mhd; ctest runs one test per server),
 * against the `oidc` fixture's real OpenID Provider (oidc-provider) and its
 * hostile one (tests/oidc/README.md). Every visitor is a libcurl handle
 * with its own cookie jar; the provider's part of the journey is
 * oidc_browser_login().
 *
 * On the server: every row of the outcome table (a guest converted, an
 * anonymous visitor signed up, a registered user linked, the identity's
 * user logged in from a guest with the guest's notes moved, from anonymous
 * and from itself, another registered user refused 409, never merged by
 * e-mail), sign-up closed (--identity-signup off: 403, a guest still
 * converts), `next` carried through, the flow's own refusals (no CSRF
 * token, a replayed callback, another browser's callback) and every mode
 * of the hostile provider that a relying party must refuse, for a guest
 * and for an anonymous visitor. Each refusal leaves the visitor as they
 * were (/whoami), writes no user and no identity, and the demo's log holds
 * no 500 answer. */
#include <curl/curl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "demo_proc.h"
#include "oidc_browser.h"
#include "oidc_env.h"
#include "testlib.h"

#define PASSWORD "Quartz-Lantern-58"

static const char *env(const char *key)
{
    const char *v = oidc_env(key);
    ck_assert_msg(v != NULL, "%s missing from the oidc fixture's env file %s",
                  key, oidc_env_file());
    return v;
}

/* ---- the demo program ---- */

/* The --oidc value NAME,ISSUER,CLIENT_ID,SECRET_FILE into @p out. */
static const char *oidc_flag(char *out, size_t size, const char *name,
                             const char *issuer, const char *client,
                             const char *secret_file)
{
    snprintf(out, size, "%s,%s,%s,%s", name, issuer, client, secret_file);
    return out;
}

/* Starts guestuser-demo --server @p server on a free port, on schema
 * @p schema (emptied first, with its notes), with the real provider as
 * "op", the hostile modes of @p modes (NULL-terminated) as "h-MODE", and
 * @p extra (NULL-terminated, may be NULL). */
static void demo_start(demo_proc *d, const char *server, const char *schema,
                       const char *const *modes, const char *const *extra)
{
    static char flags[32][1024];
    const char *more[64];
    int argc = 0, nf = 0;
    more[argc++] = "--oidc";
    more[argc++] =
        oidc_flag(flags[nf], sizeof flags[nf], "op", env("OIDC_ISSUER"),
                  env("OIDC_CLIENT_ID"), env("OIDC_CLIENT_SECRET_FILE"));
    nf++;
    for (; modes && *modes; modes++, nf++) {
        char issuer[256], name[64];
        ck_assert_ptr_nonnull(
            oidc_hostile_issuer(*modes, server, issuer, sizeof issuer));
        snprintf(name, sizeof name, "h-%s", *modes);
        more[argc++] = "--oidc";
        more[argc++] = oidc_flag(flags[nf], sizeof flags[nf], name, issuer,
                                 env("HOSTILE_CLIENT_ID"),
                                 env("HOSTILE_CLIENT_SECRET_FILE"));
    }
    for (; extra && *extra; extra++)
        more[argc++] = *extra;
    more[argc] = NULL;
    demo_proc_start_on(d, server, schema, more);
}

static void demo_stop(demo_proc *d)
{
    demo_proc_stop(d, true);
}

/* ---- a browser: one libcurl handle, its own cookie jar ---- */

typedef struct browser {
    CURL *curl;
} browser;

typedef struct response {
    long status;
    char *body; /* NUL-terminated */
    size_t len;
    char location[4096]; /* the Location header as sent, or "" */
} response;

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
    response *r = ud;
    size_t add = size * n;
    char *grown = realloc(r->body, r->len + add + 1);
    if (!grown)
        return 0;
    memcpy(grown + r->len, data, add);
    r->len += add;
    grown[r->len] = '\0';
    r->body = grown;
    return add;
}

static size_t on_header(char *data, size_t size, size_t n, void *ud)
{
    response *r = ud;
    size_t len = size * n;
    if (len > 9 && !strncasecmp(data, "Location:", 9)) {
        const char *v = data + 9;
        size_t vlen = len - 9;
        while (vlen && (*v == ' ' || *v == '\t'))
            v++, vlen--;
        while (vlen && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' ||
                        v[vlen - 1] == ' '))
            vlen--;
        if (vlen < sizeof r->location) {
            memcpy(r->location, v, vlen);
            r->location[vlen] = '\0';
        }
    }
    return len;
}

static browser browser_new(void)
{
    browser b = {curl_easy_init()};
    ck_assert_ptr_nonnull(b.curl);
    /* the cookie engine, in memory: this handle's jar */
    curl_easy_setopt(b.curl, CURLOPT_COOKIEFILE, "");
    curl_easy_setopt(b.curl, CURLOPT_TIMEOUT_MS, 60000L);
    curl_easy_setopt(b.curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(b.curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(b.curl, CURLOPT_HEADERFUNCTION, on_header);
    return b;
}

static void browser_free(browser *b)
{
    curl_easy_cleanup(b->curl);
    b->curl = NULL;
}

static void response_free(response *r)
{
    free(r->body);
    r->body = NULL;
}

/* GET @p url (absolute), or POST @p form (urlencoded) when not NULL. */
static void request(browser *b, const char *url, const char *form, response *r)
{
    memset(r, 0, sizeof *r);
    curl_easy_setopt(b->curl, CURLOPT_URL, url);
    if (form) {
        curl_easy_setopt(b->curl, CURLOPT_POSTFIELDS, form);
    } else {
        curl_easy_setopt(b->curl, CURLOPT_HTTPGET, 1L);
    }
    curl_easy_setopt(b->curl, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(b->curl, CURLOPT_HEADERDATA, r);
    CURLcode rc = curl_easy_perform(b->curl);
    ck_assert_msg(rc == CURLE_OK, "%s: %s", url, curl_easy_strerror(rc));
    curl_easy_getinfo(b->curl, CURLINFO_RESPONSE_CODE, &r->status);
    if (!r->body)
        r->body = strdup("");
}

static void get(browser *b, const demo_proc *d, const char *path, response *r)
{
    char url[4200];
    snprintf(url, sizeof url, "%s%s", d->base, path);
    request(b, url, NULL, r);
}

static void post(browser *b, const demo_proc *d, const char *path,
                 const char *form, response *r)
{
    char url[4200];
    snprintf(url, sizeof url, "%s%s", d->base, path);
    request(b, url, form, r);
}

/* The hidden CSRF field of the page at @p path (GET, 200). */
static void csrf_of(browser *b, const demo_proc *d, const char *path,
                    char *token, size_t size)
{
    response r;
    get(b, d, path, &r);
    ck_assert_msg(r.status == 200, "GET %s: %ld", path, r.status);
    ck_assert_msg(tl_input_value(r.body, "csrfmiddlewaretoken", token, size),
                  "no CSRF field on %s", path);
    response_free(&r);
}

/* Who the browser is: /whoami's id (0: anonymous), guest flag, name. */
typedef struct who {
    long long id;
    bool guest;
    char username[160];
} who;

static who whoami(browser *b, const demo_proc *d)
{
    response r;
    get(b, d, "/whoami", &r);
    ck_assert_int_eq(r.status, 200);
    who w = {0};
    const char *id = strstr(r.body, "\"id\":");
    ck_assert_ptr_nonnull(id);
    w.id = strtoll(id + 5, NULL, 10); /* null: 0 */
    w.guest = strstr(r.body, "\"guest\":true") != NULL;
    const char *name = strstr(r.body, "\"username\":\"");
    if (name)
        sscanf(name + 12, "%159[^\"]", w.username);
    response_free(&r);
    return w;
}

static void same(who a, who b)
{
    ck_assert_int_eq(a.id, b.id);
    ck_assert_int_eq(a.guest, b.guest);
    ck_assert_str_eq(a.username, b.username);
}

/* A new guest: the first visit to a GUEST_ALLOW page. */
static who become_guest(browser *b, const demo_proc *d)
{
    response r;
    get(b, d, "/allow_guest_user/", &r);
    ck_assert_int_eq(r.status, 200);
    response_free(&r);
    who w = whoami(b, d);
    ck_assert(w.id > 0 && w.guest);
    return w;
}

/* The visitor (a guest or a user) writes a note on /notes/. */
static void write_note(browser *b, const demo_proc *d, const char *text)
{
    char token[128], form[512];
    csrf_of(b, d, "/notes/", token, sizeof token);
    snprintf(form, sizeof form, "body=%s&csrfmiddlewaretoken=%s", text, token);
    response r;
    post(b, d, "/notes/", form, &r);
    ck_assert_msg(r.status == 302, "POST /notes/: %ld %s", r.status, r.body);
    response_free(&r);
}

static long long notes_of(const demo_proc *d, long long user)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM %s_demo.notes WHERE user_id = %lld",
             d->schema, user);
    return tl_scalar(sql);
}

static long long identities_in(const demo_proc *d)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s.identities", d->schema);
    return tl_scalar(sql);
}

/* A guest who signs up with a password on /convert/: a registered user
 * with no identity. */
static who registered_user(browser *b, const demo_proc *d, const char *name)
{
    who g = become_guest(b, d);
    char token[128], form[512];
    csrf_of(b, d, "/convert/", token, sizeof token);
    snprintf(form, sizeof form,
             "username=%s&password1=" PASSWORD "&password2=" PASSWORD
             "&csrfmiddlewaretoken=%s",
             name, token);
    response r;
    post(b, d, "/convert/", form, &r);
    ck_assert_msg(r.status == 302, "POST /convert/: %ld %s", r.status, r.body);
    response_free(&r);
    who w = whoami(b, d);
    ck_assert_int_eq(w.id, g.id);
    ck_assert(!w.guest);
    ck_assert_str_eq(w.username, name);
    return w;
}

/* The demo's side of "Continue with @p provider": the login page (a CSRF
 * form, the button), its POST (with @p next_field, e.g. "&next=/notes/",
 * or NULL) answering 302 to the provider's authorization endpoint, whose
 * URL goes to @p auth. */
static void start_flow(browser *b, const demo_proc *d, const char *provider,
                       const char *next_field, char *auth, size_t size)
{
    char path[128], token[128], form[512], button[96];
    snprintf(path, sizeof path, "/accounts/oidc/%s/login/", provider);
    response r;
    get(b, d, path, &r);
    ck_assert_msg(r.status == 200, "GET %s: %ld", path, r.status);
    snprintf(button, sizeof button, "Continue with %s", provider);
    ck_assert_msg(strstr(r.body, button), "%s has no button: %s", path, r.body);
    ck_assert_msg(strstr(r.body, "method=\"post\""), "%s: no POST form", path);
    ck_assert(
        tl_input_value(r.body, "csrfmiddlewaretoken", token, sizeof token));
    response_free(&r);
    snprintf(form, sizeof form, "csrfmiddlewaretoken=%s%s", token,
             next_field ? next_field : "");
    post(b, d, path, form, &r);
    ck_assert_msg(r.status == 302, "POST %s: %ld %s", path, r.status, r.body);
    ck_assert_uint_lt(strlen(r.location), size);
    snprintf(auth, size, "%s", r.location);
    response_free(&r);
}

/* The provider's side (login as @p user there) and the callback URL it
 * sends the browser back to, which must be this demo's. */
static void at_provider(const demo_proc *d, const char *provider,
                        const char *auth, const char *user, char *callback,
                        size_t size)
{
    ck_assert_msg(oidc_browser_login(auth, user, callback, size) == 0,
                  "provider login at %s", auth);
    char want[256];
    snprintf(want, sizeof want, "%s/accounts/oidc/%s/callback/?", d->base,
             provider);
    ck_assert_msg(!strncmp(callback, want, strlen(want)), "callback %s",
                  callback);
}

/* The whole journey; the callback's response in @p r (response_free). */
static void sign_in(browser *b, const demo_proc *d, const char *provider,
                    const char *user, const char *next_field, response *r)
{
    char auth[4096], cb[4096];
    start_flow(b, d, provider, next_field, auth, sizeof auth);
    at_provider(d, provider, auth, user, cb, sizeof cb);
    request(b, cb, NULL, r);
}

/* A journey that must succeed with a 302 to @p location. */
static who signed_in(browser *b, const demo_proc *d, const char *user,
                     const char *next_field, const char *location)
{
    response r;
    sign_in(b, d, "op", user, next_field, &r);
    ck_assert_msg(r.status == 302, "callback as %s: %ld %s", user, r.status,
                  r.body);
    ck_assert_str_eq(r.location, location);
    response_free(&r);
    return whoami(b, d);
}

static long long users_in(const demo_proc *d)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s.users", d->schema);
    return tl_scalar(sql);
}

/* A journey that must be refused with @p status and leave the visitor as
 * they were, with no user and no identity written. Returns how long the
 * callback took, ms. */
static long long refused(browser *b, const demo_proc *d, const char *provider,
                         const char *user, long status)
{
    who before = whoami(b, d);
    long long links = identities_in(d), users = users_in(d);
    char auth[4096], cb[4096];
    start_flow(b, d, provider, NULL, auth, sizeof auth);
    at_provider(d, provider, auth, user, cb, sizeof cb);
    response r;
    long long t0 = tl_now_ms();
    request(b, cb, NULL, &r);
    long long took = tl_now_ms() - t0;
    ck_assert_msg(r.status == status, "%s as %s: %ld (not %ld) %s", provider,
                  user, r.status, status, r.body);
    ck_assert_str_eq(r.location, "");
    response_free(&r);
    same(whoami(b, d), before);
    ck_assert_int_eq(identities_in(d), links);
    ck_assert_int_eq(users_in(d), users);
    return took;
}

/* ---- the tests ---- */

/* The server this run drives (main). */
static const char *server = "mhd";

/* A schema of its own per test and server (ctest may run the servers'
 * tests at once). */
static void start(demo_proc *d, const char *what, const char *const *modes,
                  const char *const *extra)
{
    char schema[64];
    snprintf(schema, sizeof schema, "t_demo_oidc_%s_%s", server, what);
    demo_start(d, server, schema, modes, extra);
}

/* The pages show the buttons; a login POST without the CSRF token starts
 * nothing (403, the visitor unchanged); an unknown provider is a 404. */
START_TEST(pages_and_csrf)
{
    static const char *const modes[] = {"alg-none", NULL};
    demo_proc d;
    start(&d, "pages", modes, NULL);
    browser v = browser_new();
    who guest = become_guest(&v, &d);
    response r;
    get(&v, &d, "/convert/", &r);
    ck_assert_ptr_nonnull(
        strstr(r.body, "action=\"/accounts/oidc/op/login/\""));
    ck_assert_ptr_nonnull(strstr(r.body, "Continue with op"));
    ck_assert_ptr_nonnull(strstr(r.body, "Continue with h-alg-none"));
    response_free(&r);
    get(&v, &d, "/accounts/login/?next=/notes/", &r);
    ck_assert_ptr_nonnull(strstr(r.body, "Continue with op"));
    ck_assert_ptr_nonnull(strstr(r.body, "name=\"next\" value=\"/notes/\""));
    response_free(&r);

    /* no CSRF token: 403, no flow, no redirect; for a guest and for an
     * anonymous visitor */
    browser anon = browser_new();
    browser *visitors[] = {&v, &anon};
    for (int i = 0; i < 2; i++) {
        who before = whoami(visitors[i], &d);
        post(visitors[i], &d, "/accounts/oidc/op/login/", "next=/notes/", &r);
        ck_assert_int_eq(r.status, 403);
        ck_assert_str_eq(r.location, "");
        response_free(&r);
        same(whoami(visitors[i], &d), before);
    }
    same(whoami(&v, &d), guest);
    ck_assert_int_eq(whoami(&anon, &d).id, 0);
    ck_assert_int_eq(identities_in(&d), 0);
    ck_assert_int_eq(users_in(&d), 1);

    /* an unknown provider */
    get(&v, &d, "/accounts/oidc/nobody/login/", &r);
    ck_assert_int_eq(r.status, 404);
    response_free(&r);
    browser_free(&v);
    browser_free(&anon);
    demo_stop(&d);
}
END_TEST

/* Every row of the outcome table against the real provider. */
START_TEST(outcome_table)
{
    demo_proc d;
    start(&d, "table", NULL, NULL);
    response r;

    /* unknown | guest: converted (same id, the note kept, named alice) */
    browser a = browser_new();
    who guest = become_guest(&a, &d);
    write_note(&a, &d, "first+note");
    who alice = signed_in(&a, &d, "alice", NULL, "/accounts/profile/");
    ck_assert_int_eq(alice.id, guest.id);
    ck_assert(!alice.guest);
    ck_assert_str_eq(alice.username, "alice");
    ck_assert_int_eq(notes_of(&d, alice.id), 1);
    ck_assert_int_eq(identities_in(&d), 1);

    /* linked to U | a guest: logged in as U, the guest's note moved
     * (on_guest_login) and the guest gone */
    browser b = browser_new();
    who guest2 = become_guest(&b, &d);
    write_note(&b, &d, "second+note");
    ck_assert_int_eq(notes_of(&d, guest2.id), 1);
    same(signed_in(&b, &d, "alice", NULL, "/accounts/profile/"), alice);
    ck_assert_int_eq(notes_of(&d, alice.id), 2);
    ck_assert_int_eq(notes_of(&d, guest2.id), 0);
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s.users WHERE id = %lld",
             d.schema, guest2.id);
    ck_assert_int_eq(tl_scalar(sql), 0);
    ck_assert_int_eq(identities_in(&d), 1);

    /* linked to U | U: logged in as U, `next` carried through */
    same(signed_in(&a, &d, "alice", NULL, "/accounts/profile/"), alice);
    same(signed_in(&a, &d, "alice", "&next=/notes/", "/notes/"), alice);
    /* the profile page and the identities page show the link */
    get(&a, &d, "/accounts/profile/", &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body, env("OIDC_SUB_ALICE")));
    ck_assert_ptr_nonnull(strstr(r.body, "href=\"/accounts/identities/\""));
    ck_assert_ptr_nonnull(strstr(r.body, "Set a password"));
    response_free(&r);
    get(&a, &d, "/accounts/identities/", &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body, env("OIDC_SUB_ALICE")));
    response_free(&r);

    /* linked to U | anonymous (a fresh browser): logged in as U */
    browser anon = browser_new();
    same(signed_in(&anon, &d, "alice", NULL, "/accounts/profile/"), alice);

    /* linked to U | another registered user: 409, nothing changes */
    browser p = browser_new();
    who pat = registered_user(&p, &d, "pat");
    refused(&p, &d, "op", "alice", 409);
    same(whoami(&p, &d), pat);
    same(whoami(&a, &d), alice);

    /* unknown | anonymous: a new account, its name from the e-mail */
    browser c = browser_new();
    long long users = users_in(&d);
    who carol = signed_in(&c, &d, "carol", NULL, "/accounts/profile/");
    ck_assert(carol.id > 0 && carol.id != alice.id && !carol.guest);
    ck_assert_str_eq(carol.username, "carol.danvers");
    ck_assert_int_eq(users_in(&d), users + 1);

    /* unknown | registered: linked to that user, who stays who they are */
    browser u = browser_new();
    who pw = registered_user(&u, &d, "quinn");
    long long links = identities_in(&d);
    same(signed_in(&u, &d, "dave", NULL, "/accounts/profile/"), pw);
    ck_assert_int_eq(identities_in(&d), links + 1);
    get(&u, &d, "/accounts/profile/", &r);
    ck_assert_ptr_nonnull(strstr(r.body, env("OIDC_SUB_DAVE")));
    ck_assert_ptr_nonnull(strstr(r.body, "Change your password"));
    response_free(&r);
    /* ... and logs in with it from another browser */
    browser u2 = browser_new();
    same(signed_in(&u2, &d, "dave", NULL, "/accounts/profile/"), pw);

    /* never merged by e-mail: mallory asserts alice's verified address and
     * username, and gets an account of her own */
    browser m = browser_new();
    users = users_in(&d);
    who mallory = signed_in(&m, &d, "mallory", NULL, "/accounts/profile/");
    ck_assert(mallory.id > 0 && mallory.id != alice.id && !mallory.guest);
    ck_assert_str_ne(mallory.username, "alice");
    ck_assert_int_eq(users_in(&d), users + 1);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM %s.identities WHERE user_id = %lld",
             d.schema, alice.id);
    ck_assert_int_eq(tl_scalar(sql), 1);
    same(signed_in(&anon, &d, "alice", NULL, "/accounts/profile/"), alice);

    browser_free(&a);
    browser_free(&b);
    browser_free(&anon);
    browser_free(&p);
    browser_free(&c);
    browser_free(&u);
    browser_free(&u2);
    browser_free(&m);
    demo_stop(&d);
}
END_TEST

/* unknown | anonymous with --identity-signup off: 403, nothing written;
 * a guest still converts. */
START_TEST(signup_closed)
{
    static const char *const off[] = {"--identity-signup", "off", NULL};
    demo_proc d;
    start(&d, "closed", NULL, off);
    browser n = browser_new();
    refused(&n, &d, "op", "erin", 403);
    ck_assert_int_eq(whoami(&n, &d).id, 0);
    ck_assert_int_eq(users_in(&d), 0);
    who guest = become_guest(&n, &d);
    who erin = signed_in(&n, &d, "erin", NULL, "/accounts/profile/");
    ck_assert_int_eq(erin.id, guest.id);
    ck_assert(!erin.guest);
    ck_assert_int_eq(identities_in(&d), 1);
    browser_free(&n);
    demo_stop(&d);
}
END_TEST

/* The flow's own refusals: another browser's callback, a replayed one. */
START_TEST(callback_refusals)
{
    demo_proc d;
    start(&d, "callback", NULL, NULL);
    response r;
    browser g = browser_new();
    who guest = become_guest(&g, &d);
    char auth[4096], cb[4096];
    start_flow(&g, &d, "op", NULL, auth, sizeof auth);
    at_provider(&d, "op", auth, "bob", cb, sizeof cb);

    /* another browser (a guest, then an anonymous visitor) brings the
     * callback: it has no binding cookie of this flow */
    browser other = browser_new(), anon = browser_new();
    become_guest(&other, &d);
    browser *visitors[] = {&other, &anon};
    for (int i = 0; i < 2; i++) {
        who before = whoami(visitors[i], &d);
        long long users = users_in(&d);
        request(visitors[i], cb, NULL, &r);
        ck_assert_int_eq(r.status, 400);
        ck_assert_str_eq(r.location, "");
        response_free(&r);
        same(whoami(visitors[i], &d), before);
        ck_assert_int_eq(identities_in(&d), 0);
        ck_assert_int_eq(users_in(&d), users);
    }
    same(whoami(&g, &d), guest);

    /* this browser: still its flow */
    request(&g, cb, NULL, &r);
    ck_assert_int_eq(r.status, 302);
    response_free(&r);
    who bob = whoami(&g, &d);
    ck_assert_int_eq(bob.id, guest.id);
    ck_assert(!bob.guest);
    ck_assert_int_eq(identities_in(&d), 1);

    /* replayed: the flow is used up */
    long long users = users_in(&d);
    request(&g, cb, NULL, &r);
    ck_assert_int_eq(r.status, 400);
    ck_assert_str_eq(r.location, "");
    response_free(&r);
    same(whoami(&g, &d), bob);
    ck_assert_int_eq(identities_in(&d), 1);
    ck_assert_int_eq(users_in(&d), users);

    browser_free(&g);
    browser_free(&other);
    browser_free(&anon);
    demo_stop(&d);
}
END_TEST

/* Every mode of the hostile provider that a relying party must refuse,
 * and the callback's answer (502: the provider failed us). */
typedef struct mode_case {
    const char *mode;
    long status;
} mode_case;

static const mode_case hostile[] = {
    {"wrong-signature", 400}, {"wrong-aud", 400},
    {"wrong-iss", 400},       {"iss-trailing-slash", 400},
    {"expired", 400},         {"iat-future", 400},
    {"wrong-nonce", 400},     {"missing-nonce", 400},
    {"alg-none", 400},        {"hs256-public-key", 400},
    {"unknown-kid", 400},     {"azp-mismatch", 400},
    {"huge-jwks", 502},       {"huge-token", 502},
    {"jwks-hangs", 502},      {"token-hangs", 502},
    {"token-error", 400},     {"error-access-denied", 400},
    {"wrong-state", 400},     {"wrong-iss-param", 400},
};
#define NHOSTILE ((int)(sizeof hostile / sizeof hostile[0]))
/* Modes per demo: "op" and these fit in DEMO_OIDC_MAX (16) --oidc flags. */
#define HOSTILE_PER_DEMO 10
/* The demo's provider deadline (--oidc-timeout-ms), and the bound on a
 * refusal's callback: well under the library's default of 10 s, so the
 * hanging modes show that the flag reaches guest_oidc_config. */
#define HOSTILE_TIMEOUT_MS "1500"
#define HOSTILE_MAX_MS 7000

/* A group of modes on one demo: each refused for a guest with a note and
 * for an anonymous visitor, both left as they were. */
START_TEST(hostile_refused)
{
    int first = _i * HOSTILE_PER_DEMO;
    int last = first + HOSTILE_PER_DEMO;
    if (last > NHOSTILE)
        last = NHOSTILE;
    const char *modes[HOSTILE_PER_DEMO + 1] = {0};
    for (int i = first; i < last; i++)
        modes[i - first] = hostile[i].mode;
    static const char *const extra[] = {"--oidc-timeout-ms", HOSTILE_TIMEOUT_MS,
                                        NULL};
    demo_proc d;
    char what[32];
    snprintf(what, sizeof what, "hostile%d", _i);
    start(&d, what, modes, extra);

    browser g = browser_new(), anon = browser_new();
    who guest = become_guest(&g, &d);
    write_note(&g, &d, "kept");
    for (int i = first; i < last; i++) {
        char provider[64];
        snprintf(provider, sizeof provider, "h-%s", hostile[i].mode);
        browser *visitors[] = {&g, &anon};
        for (int v = 0; v < 2; v++) {
            long long took =
                refused(visitors[v], &d, provider, "x", hostile[i].status);
            ck_assert_msg(took < HOSTILE_MAX_MS, "%s took %lld ms", provider,
                          took);
        }
    }
    same(whoami(&g, &d), guest);
    ck_assert_int_eq(whoami(&anon, &d).id, 0);
    ck_assert_int_eq(notes_of(&d, guest.id), 1);
    ck_assert_int_eq(users_in(&d), 1);
    ck_assert_int_eq(identities_in(&d), 0);
    browser_free(&g);
    browser_free(&anon);
    demo_stop(&d);
}
END_TEST

int main(int argc, char **argv)
{
    static char list[128];
    const char *e = getenv("DEMO_OIDC_SERVERS");
    snprintf(list, sizeof list, "%s", e && *e ? e : "mhd");
    char *save = NULL, *first = strtok_r(list, " ;,", &save);
    server = argc > 1 ? argv[1] : first ? first : "mhd";
    if (strcmp(server, "mhd") && strcmp(server, "mhd_event") &&
        strcmp(server, "civetweb") && strcmp(server, "ulfius") &&
        strcmp(server, "evhttp")) {
        fprintf(stderr, "usage: %s [mhd|mhd_event|civetweb|ulfius|evhttp]\n",
                argv[0]);
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    char name[64];
    snprintf(name, sizeof name, "demo_oidc_%s", server);
    Suite *s = suite_create(name);
    TCase *tc = tcase_create(name);
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, pages_and_csrf);
    tcase_add_test(tc, outcome_table);
    tcase_add_test(tc, signup_closed);
    tcase_add_test(tc, callback_refusals);
    tcase_add_loop_test(tc, hostile_refused, 0,
                        (NHOSTILE + HOSTILE_PER_DEMO - 1) / HOSTILE_PER_DEMO);
    suite_add_tcase(s, tc);
    int rc = tl_run(s);
    curl_global_cleanup();
    return rc;
}

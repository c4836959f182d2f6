/* "Continue with NAME" in the guestuser-demo program, over real HTTP with
 * each server it has (mhd, civetweb, ulfius), against the `oidc` fixture's
 * real OpenID Provider (oidc-provider) and its hostile one
 * (tests/oidc/README.md). Every visitor is a libcurl handle with its own
 * cookie jar; the provider's part of the journey is oidc_browser_login().
 *
 * On mhd: every row of the outcome table (a guest converted, an anonymous
 * visitor signed up, a registered user linked, the identity's user logged
 * in from a guest, from anonymous and from itself, another registered
 * user refused), sign-up closed (--identity-signup off), `next` carried
 * through, the flow's own refusals (no CSRF token, a replayed callback,
 * another browser's callback) and hostile providers (wrong signature,
 * alg none, wrong aud, access_denied): each refusal leaves the visitor as
 * they were, with no 500. On civetweb and ulfius: a guest converted, a
 * second guest logged into that account, another registered user refused
 * and a forged signature refused. */
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

/* $GUESTUSER_TEST_DEMO (ctest sets it), else BUILD/examples/. */
static void demo_path(char *out, size_t size)
{
    const char *e = getenv("GUESTUSER_TEST_DEMO");
    if (e && *e) {
        snprintf(out, size, "%s", e);
        return;
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    ck_assert_int_gt(n, 0);
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    ck_assert_ptr_nonnull(slash);
    *slash = '\0';
    snprintf(out, size, "%s/../examples/guestuser-demo", self);
}

typedef struct demo_proc {
    pid_t pid;
    int port;
    char base[64];  /* http://127.0.0.1:PORT */
    char log[64];   /* its standard error */
    char schema[64];
} demo_proc;

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
    char exe[PATH_MAX + 64];
    demo_path(exe, sizeof exe);
    ck_assert_msg(access(exe, X_OK) == 0, "no demo program at %s", exe);
    snprintf(d->schema, sizeof d->schema, "%s", schema);
    char drop[256];
    snprintf(drop, sizeof drop, "%s_demo", schema);
    tl_drop_schema(drop);
    tl_drop_schema(schema);

    static char flags[32][1024];
    const char *argv[64] = {exe,         "--server", server, "--port", "0",
                            "--db",      tl_conninfo(), "--schema", schema,
                            "--db-timeout-ms", "30000"};
    int argc = 11, nf = 0;
    argv[argc++] = "--oidc";
    argv[argc++] = oidc_flag(flags[nf], sizeof flags[nf], "op",
                             env("OIDC_ISSUER"), env("OIDC_CLIENT_ID"),
                             env("OIDC_CLIENT_SECRET_FILE"));
    nf++;
    for (; modes && *modes; modes++, nf++) {
        char issuer[256], name[64];
        ck_assert_ptr_nonnull(
            oidc_hostile_issuer(*modes, server, issuer, sizeof issuer));
        snprintf(name, sizeof name, "h-%s", *modes);
        argv[argc++] = "--oidc";
        argv[argc++] = oidc_flag(flags[nf], sizeof flags[nf], name, issuer,
                                 env("HOSTILE_CLIENT_ID"),
                                 env("HOSTILE_CLIENT_SECRET_FILE"));
    }
    for (; extra && *extra; extra++)
        argv[argc++] = *extra;
    argv[argc] = NULL;

    snprintf(d->log, sizeof d->log, "/tmp/guestuser-demo-oidc-XXXXXX");
    int log = mkstemp(d->log);
    ck_assert_int_ge(log, 0);
    int out[2];
    ck_assert_int_eq(pipe(out), 0);
    d->pid = fork();
    ck_assert_int_ge(d->pid, 0);
    if (d->pid == 0) {
        /* A failed assertion ends this test's process: the demo must not
         * outlive it. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(out[1], STDOUT_FILENO);
        dup2(log, STDERR_FILENO);
        close(out[0]);
        close(out[1]);
        close(log);
        execv(exe, (char *const *)argv);
        _exit(127);
    }
    close(out[1]);
    close(log);
    char line[256];
    size_t len = 0;
    d->port = 0;
    long long deadline = tl_now_ms() + 30000;
    static const char prefix[] = "listening on http://127.0.0.1:";
    while (!d->port && tl_now_ms() < deadline && len < sizeof line - 1) {
        struct pollfd p = {.fd = out[0], .events = POLLIN};
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t n = read(out[0], line + len, sizeof line - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        line[len] = '\0';
        const char *at = strstr(line, prefix);
        if (at && strchr(at, '\n'))
            d->port = atoi(at + strlen(prefix));
    }
    close(out[0]);
    ck_assert_msg(d->port > 0, "the demo did not start (its log: %s)", d->log);
    snprintf(d->base, sizeof d->base, "http://127.0.0.1:%d", d->port);
}

/* SIGTERM, then a clean exit; the log must hold no 500 answer. */
static void demo_stop(demo_proc *d)
{
    ck_assert_int_eq(kill(d->pid, SIGTERM), 0);
    int status = 0;
    ck_assert_int_eq(waitpid(d->pid, &status, 0), d->pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "the demo did not exit cleanly (its log: %s)", d->log);
    FILE *f = fopen(d->log, "r");
    ck_assert_ptr_nonnull(f);
    char line[1024];
    while (fgets(line, sizeof line, f))
        ck_assert_msg(!strstr(line, " 500 "), "a 500 answer: %s (log %s)",
                      line, d->log);
    fclose(f);
    unlink(d->log);
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
static void request(browser *b, const char *url, const char *form,
                    response *r)
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
    ck_assert(tl_input_value(r.body, "csrfmiddlewaretoken", token, sizeof token));
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

/* A journey that must be refused with @p status and leave the visitor as
 * they were. */
static void refused(browser *b, const demo_proc *d, const char *provider,
                    const char *user, long status)
{
    who before = whoami(b, d);
    long long links = identities_in(d);
    response r;
    sign_in(b, d, provider, user, NULL, &r);
    ck_assert_msg(r.status == status, "%s as %s: %ld (not %ld) %s", provider,
                  user, r.status, status, r.body);
    ck_assert_str_eq(r.location, "");
    response_free(&r);
    same(whoami(b, d), before);
    ck_assert_int_eq(identities_in(d), links);
}

/* ---- the tests ---- */

/* The servers to run (DEMO_OIDC_SERVERS, which ctest sets to those the
 * demo was built with; default "mhd"): the first gets every row, the
 * others the common ones. */
static char *servers[3];
static int nservers;

/* The rows every server runs: a guest with a note converted as alice, a
 * second guest with a note logged into alice's account (the note moves
 * with them), a registered user refused alice's identity, a forged
 * signature refused. Returns alice's account. */
static who common_rows(const demo_proc *d)
{
    /* a guest writes a note, continues with op, becomes alice */
    browser a = browser_new();
    who guest = become_guest(&a, d);
    write_note(&a, d, "first+note");
    who alice = signed_in(&a, d, "alice", NULL, "/accounts/profile/");
    ck_assert_int_eq(alice.id, guest.id);
    ck_assert(!alice.guest);
    ck_assert_str_eq(alice.username, "alice");
    ck_assert_int_eq(notes_of(d, alice.id), 1);
    ck_assert_int_eq(identities_in(d), 1);

    /* a second browser's guest logs in with the same identity */
    browser b = browser_new();
    who guest2 = become_guest(&b, d);
    write_note(&b, d, "second+note");
    ck_assert_int_eq(notes_of(d, guest2.id), 1);
    same(signed_in(&b, d, "alice", NULL, "/accounts/profile/"), alice);
    ck_assert_int_eq(notes_of(d, alice.id), 2); /* on_guest_login moved it */
    ck_assert_int_eq(notes_of(d, guest2.id), 0);
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s.users WHERE id = %lld",
             d->schema, guest2.id);
    ck_assert_int_eq(tl_scalar(sql), 0); /* the guest is gone */

    /* another registered user may not take alice's identity */
    browser c = browser_new();
    registered_user(&c, d, "pat");
    refused(&c, d, "op", "alice", 409);

    /* a token signed by another key */
    browser e = browser_new();
    become_guest(&e, d);
    refused(&e, d, "h-wrong-signature", "x", 400);

    browser_free(&a);
    browser_free(&b);
    browser_free(&c);
    browser_free(&e);
    return alice;
}

/* Every row and refusal on the first server (mhd when built). */
START_TEST(every_row)
{
    static const char *const modes[] = {"wrong-signature", "alg-none",
                                        "wrong-aud", "error-access-denied",
                                        NULL};
    demo_proc d;
    char schema[64];
    snprintf(schema, sizeof schema, "t_demo_oidc_%s", servers[0]);
    demo_start(&d, servers[0], schema, modes, NULL);

    /* the sign-up and login pages show the buttons */
    browser v = browser_new();
    become_guest(&v, &d);
    response r;
    get(&v, &d, "/convert/", &r);
    ck_assert_ptr_nonnull(strstr(r.body, "action=\"/accounts/oidc/op/login/\""));
    ck_assert_ptr_nonnull(strstr(r.body, "Continue with op"));
    ck_assert_ptr_nonnull(strstr(r.body, "Continue with h-alg-none"));
    response_free(&r);
    get(&v, &d, "/accounts/login/?next=/notes/", &r);
    ck_assert_ptr_nonnull(strstr(r.body, "Continue with op"));
    ck_assert_ptr_nonnull(strstr(r.body, "name=\"next\" value=\"/notes/\""));
    response_free(&r);
    /* no CSRF token: 403, no flow, no redirect */
    post(&v, &d, "/accounts/oidc/op/login/", "next=/notes/", &r);
    ck_assert_int_eq(r.status, 403);
    ck_assert_str_eq(r.location, "");
    response_free(&r);
    /* an unknown provider */
    get(&v, &d, "/accounts/oidc/nobody/login/", &r);
    ck_assert_int_eq(r.status, 404);
    response_free(&r);

    /* unknown | guest: converted; linked to U | guest: logged in as U;
     * linked to U | another registered user: refused */
    who alice = common_rows(&d);

    /* linked to U | U: logged in as U, `next` carried through */
    browser a = browser_new();
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

    /* unknown | anonymous: a new account, its name from the e-mail */
    browser c = browser_new();
    who carol = signed_in(&c, &d, "carol", NULL, "/accounts/profile/");
    ck_assert(carol.id > 0 && carol.id != alice.id && !carol.guest);
    ck_assert_str_eq(carol.username, "carol.danvers");

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

    /* never merged by e-mail: mallory claims alice's verified address */
    browser m = browser_new();
    who mallory = signed_in(&m, &d, "mallory", NULL, "/accounts/profile/");
    ck_assert(mallory.id != alice.id);

    /* the flow's own refusals: a replayed callback, another browser's */
    browser g = browser_new();
    who guest = become_guest(&g, &d);
    char auth[4096], cb[4096];
    start_flow(&g, &d, "op", NULL, auth, sizeof auth);
    at_provider(&d, "op", auth, "bob", cb, sizeof cb);
    browser other = browser_new();
    become_guest(&other, &d);
    who other_before = whoami(&other, &d);
    request(&other, cb, NULL, &r); /* no binding cookie of this flow */
    ck_assert_int_eq(r.status, 400);
    response_free(&r);
    same(whoami(&other, &d), other_before);
    same(whoami(&g, &d), guest);
    request(&g, cb, NULL, &r); /* this browser: still its flow */
    ck_assert_int_eq(r.status, 302);
    response_free(&r);
    who bob = whoami(&g, &d);
    ck_assert_int_eq(bob.id, guest.id);
    ck_assert(!bob.guest);
    request(&g, cb, NULL, &r); /* replayed: the flow is used up */
    ck_assert_int_eq(r.status, 400);
    response_free(&r);
    same(whoami(&g, &d), bob);

    /* hostile providers: each refused, the guest unchanged */
    browser h = browser_new();
    become_guest(&h, &d);
    refused(&h, &d, "h-alg-none", "x", 400);
    refused(&h, &d, "h-wrong-aud", "x", 400);
    refused(&h, &d, "h-error-access-denied", "x", 400);

    browser_free(&v);
    browser_free(&a);
    browser_free(&anon);
    browser_free(&c);
    browser_free(&u);
    browser_free(&u2);
    browser_free(&m);
    browser_free(&g);
    browser_free(&other);
    browser_free(&h);
    demo_stop(&d);

    /* unknown | anonymous with --identity-signup off: refused, 403 */
    static const char *const off[] = {"--identity-signup", "off", NULL};
    snprintf(schema, sizeof schema, "t_demo_oidc_%s_closed", servers[0]);
    demo_start(&d, servers[0], schema, NULL, off);
    browser n = browser_new();
    refused(&n, &d, "op", "erin", 403);
    ck_assert_int_eq(whoami(&n, &d).id, 0);
    /* a guest still converts */
    become_guest(&n, &d);
    ck_assert(!signed_in(&n, &d, "erin", NULL, "/accounts/profile/").guest);
    browser_free(&n);
    demo_stop(&d);
}
END_TEST

/* The common rows on each other server. */
START_TEST(common_rows_over_another_server)
{
    const char *server = servers[_i];
    static const char *const modes[] = {"wrong-signature", NULL};
    char schema[64];
    snprintf(schema, sizeof schema, "t_demo_oidc_%s", server);
    demo_proc d;
    demo_start(&d, server, schema, modes, NULL);
    common_rows(&d);
    demo_stop(&d);
}
END_TEST

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    Suite *s = suite_create("demo_oidc");
    TCase *tc = tcase_create("demo_oidc");
    tcase_set_timeout(tc, 240);
    static char list[128];
    const char *e = getenv("DEMO_OIDC_SERVERS");
    snprintf(list, sizeof list, "%s", e && *e ? e : "mhd");
    for (char *save = NULL, *t = strtok_r(list, " ;,", &save);
         t && nservers < 3; t = strtok_r(NULL, " ;,", &save))
        servers[nservers++] = t;
    tcase_add_test(tc, every_row);
    if (nservers > 1)
        tcase_add_loop_test(tc, common_rows_over_another_server, 1, nservers);
    suite_add_tcase(s, tc);
    int rc = tl_run(s);
    curl_global_cleanup();
    return rc;
}

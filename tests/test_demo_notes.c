/* The demo's notes application through the demo's route table: who gets a
 * note form, adding, listing, escaping, every refused input, deleting, and
 * what conversion, logging into an account and cleanup do to the notes. The
 * browser journeys (tests/e2e) cover the same pages in Chromium. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "demo_testlib.h"

#define SCHEMA "t_demo_notes"
#define GOOGLEBOT "Mozilla/5.0 (compatible; Googlebot/2.1)"

static void setup(void)
{
    tl_exec("SET client_min_messages = warning;"
            "DROP SCHEMA IF EXISTS " SCHEMA "_demo CASCADE");
    tl_drop_schema(SCHEMA);
}

static void teardown(void)
{
    demo_notes_stop();
}

/* A context made with @p tweak (the notes hook at least) and a notes
 * module started with the flags in @p argv, as the demo's main() does. */
static guest_ctx *notes_ctx_with(void (*tweak)(guest_config *),
                                 char *const *argv)
{
    demo_options o;
    int argc = 0;
    while (argv[argc])
        argc++;
    ck_assert_int_eq(demo_parse_args(&o, argc, (char **)argv), 0);
    guest_ctx *ctx = tl_ctx(SCHEMA, tweak);
    char err[512];
    ck_assert_msg(demo_notes_start(ctx, o.notes_max, err, sizeof err) == 0,
                  "%s", err);
    ck_assert_str_eq(demo_notes_schema(), SCHEMA "_demo");
    return ctx;
}

/* A context with the notes hook and a started notes module, defaults. */
static guest_ctx *notes_ctx(void)
{
    char *const argv[] = {"demo", NULL};
    return notes_ctx_with(demo_notes_configure, argv);
}

/* A new guest and its Cookie header (session + CSRF cookie). */
static int64_t guest(guest_ctx *ctx, char *cookie, size_t size)
{
    char session[128];
    int64_t id = tl_new_guest(ctx, session, sizeof session);
    tl_cookie_header(cookie, size, session, true);
    return id;
}

static long long notes_of(int64_t user)
{
    char sql[128];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM @_demo.notes WHERE user_id = %lld",
             (long long)user);
    return tl_scalar_in(SCHEMA, sql);
}

static long long all_notes(void)
{
    return tl_scalar_in(SCHEMA, "SELECT count(*) FROM @_demo.notes");
}

/* POSTs a note and expects it stored (302 back to /notes/). */
static void add(guest_ctx *ctx, const char *cookie, const char *urlencoded)
{
    tl_http h;
    static char body[16384];
    snprintf(body, sizeof body, "csrfmiddlewaretoken=" TL_CSRF "&body=%s",
             urlencoded);
    dt_post(ctx, &h, "/notes/", cookie, body);
    ck_assert_msg(h.status == 302, "add '%s': %d %s", urlencoded, h.status,
                  h.res_body ? h.res_body : "");
    ck_assert_str_eq(tl_http_res_header(&h, "Location"), "/notes/");
    tl_http_free(&h);
}

/* POSTs @p body to @p target and expects @p status with @p text in the
 * page. */
static void refused(guest_ctx *ctx, const char *target, const char *cookie,
                    const char *body, int status, const char *text)
{
    tl_http h;
    dt_post(ctx, &h, target, cookie, body);
    ck_assert_msg(h.status == status, "%s '%.60s': %d, want %d", target, body,
                  h.status, status);
    ck_assert_msg(h.res_body && strstr(h.res_body, text),
                  "%s '%.60s': '%s' not in the page", target, body, text);
    tl_http_free(&h);
}

START_TEST(a_first_visit_gets_a_guest_and_the_form)
{
    guest_ctx *ctx = notes_ctx();
    tl_http h;
    dt_get(ctx, &h, "/notes/", NULL);
    ck_assert_int_eq(h.status, 200);
    char session[128];
    ck_assert(tl_http_cookie(&h, "sessionid", session, sizeof session));
    ck_assert_int_eq(tl_scalar_in(SCHEMA, "SELECT count(*) FROM @.guests"), 1);
    const char *b = h.res_body;
    ck_assert_ptr_nonnull(strstr(b, "<meta name=\"viewport\""));
    ck_assert_ptr_nonnull(strstr(b, "<a href=\"/convert/\">Sign up and save "
                                    "your work!</a>"));
    ck_assert_ptr_nonnull(strstr(b, "your notes are kept for 14 days"));
    ck_assert_ptr_nonnull(strstr(
        b, "<form method=\"post\" action=\"/notes/\">"
           "<input type=\"hidden\" name=\"" GUEST_CSRF_FIELD "\" value=\""));
    ck_assert_ptr_nonnull(strstr(b, "name=\"body\""));
    ck_assert_ptr_nonnull(strstr(b, "No notes yet."));
    tl_http_free(&h);

    /* the same visitor again: no new guest */
    char cookie[300];
    tl_cookie_header(cookie, sizeof cookie, session, true);
    dt_get(ctx, &h, "/notes/", cookie);
    ck_assert_int_eq(h.status, 200);
    ck_assert_ptr_null(tl_http_res_header(&h, "Set-Cookie"));
    tl_http_free(&h);
    ck_assert_int_eq(tl_scalar_in(SCHEMA, "SELECT count(*) FROM @.users"), 1);

    /* the home page links to the notes */
    dt_get(ctx, &h, "/", NULL);
    ck_assert_ptr_nonnull(strstr(h.res_body, "<a href=\"/notes/\">Notes</a>"));
    tl_http_free(&h);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(a_crawler_gets_no_cookie_no_user_and_cannot_post)
{
    guest_ctx *ctx = notes_ctx();
    tl_http h;
    tl_http_init(&h, "GET", "/notes/");
    tl_http_add(&h, "User-Agent", GOOGLEBOT);
    tl_http_run(ctx, &h, dt_handler, NULL);
    ck_assert_int_eq(h.status, 200);
    ck_assert_ptr_null(tl_http_res_header(&h, "Set-Cookie"));
    ck_assert_ptr_nonnull(strstr(h.res_body, "Notes belong to an account."));
    ck_assert_ptr_null(strstr(h.res_body, "<textarea"));
    tl_http_free(&h);

    tl_http_init(&h, "POST", "/notes/");
    tl_http_add(&h, "User-Agent", GOOGLEBOT);
    tl_http_add(&h, "Cookie", "csrftoken=" TL_CSRF);
    tl_http_add(&h, "Content-Type", "application/x-www-form-urlencoded");
    h.body = "csrfmiddlewaretoken=" TL_CSRF "&body=spam";
    tl_http_run(ctx, &h, dt_handler, NULL);
    ck_assert_int_eq(h.status, 403);
    ck_assert_ptr_null(tl_http_res_header(&h, "Set-Cookie"));
    tl_http_free(&h);
    ck_assert_int_eq(tl_scalar_in(SCHEMA, "SELECT count(*) FROM @.users"), 0);
    ck_assert_int_eq(all_notes(), 0);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(notes_are_listed_newest_first_and_escaped)
{
    guest_ctx *ctx = notes_ctx();
    char cookie[300], other[300];
    int64_t id = guest(ctx, cookie, sizeof cookie);
    guest(ctx, other, sizeof other);
    add(ctx, cookie, "first+note");
    add(ctx, cookie, "%3Cscript%3Ealert(1)%3C%2Fscript%3E+%26+%22q%22+%27s%27");
    add(ctx, cookie, "line+one%0D%0Aline+two%0Dthree");
    add(ctx, other, "someone+else%27s");
    ck_assert_int_eq(notes_of(id), 3);

    tl_http h;
    dt_get(ctx, &h, "/notes/", cookie);
    ck_assert_int_eq(h.status, 200);
    const char *b = h.res_body;
    const char *first = strstr(b, "<p>first note</p>");
    const char *escaped = strstr(b, "<p>&lt;script&gt;alert(1)&lt;/script&gt; "
                                    "&amp; &quot;q&quot; &#x27;s&#x27;</p>");
    const char *lines = strstr(b, "<p>line one\nline two\nthree</p>");
    ck_assert_ptr_nonnull(first);
    ck_assert_ptr_nonnull(escaped);
    ck_assert_ptr_nonnull(lines);
    ck_assert(lines < escaped && escaped < first);
    ck_assert_ptr_null(strstr(b, "<script>"));
    ck_assert_ptr_null(strstr(b, "someone else"));
    ck_assert_ptr_nonnull(strstr(b, "<time datetime=\""));
    ck_assert_ptr_nonnull(strstr(b, "action=\"/notes/delete/\""));
    tl_http_free(&h);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(bad_notes_are_refused_with_a_reason)
{
    guest_ctx *ctx = notes_ctx();
    char cookie[300], session_only[300];
    int64_t id = guest(ctx, cookie, sizeof cookie);
    snprintf(session_only, sizeof session_only, "%.*s",
             (int)strcspn(cookie, ";"), cookie);

    /* CSRF first: no cookie, no field, a wrong token */
    refused(ctx, "/notes/", session_only,
            "csrfmiddlewaretoken=" TL_CSRF "&body=x", 403, "has expired");
    refused(ctx, "/notes/", cookie, "body=x", 403, "has expired");
    refused(ctx, "/notes/", cookie,
            "csrfmiddlewaretoken=ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef&body=x", 403,
            "has expired");
    /* the note itself */
    refused(ctx, "/notes/", cookie, "csrfmiddlewaretoken=" TL_CSRF, 400,
            "Write something first.");
    refused(ctx, "/notes/", cookie,
            "csrfmiddlewaretoken=" TL_CSRF "&body=", 400,
            "Write something first.");
    refused(ctx, "/notes/", cookie,
            "csrfmiddlewaretoken=" TL_CSRF "&body=+%09%0D%0A+", 400,
            "Write something first.");
    refused(ctx, "/notes/", cookie,
            "csrfmiddlewaretoken=" TL_CSRF "&body=a%00b", 400,
            "cannot contain a NUL character");
    refused(ctx, "/notes/", cookie,
            "csrfmiddlewaretoken=" TL_CSRF "&body=caf%E9", 400,
            "must be UTF-8 text");
    refused(ctx, "/notes/", cookie,
            "csrfmiddlewaretoken=" TL_CSRF "&body=%ED%A0%80", 400,
            "must be UTF-8 text"); /* a surrogate */
    refused(ctx, "/notes/", cookie,
            "csrfmiddlewaretoken=" TL_CSRF "&body=%C0%AF", 400,
            "must be UTF-8 text"); /* overlong */
    refused(ctx, "/notes/", cookie,
            "csrfmiddlewaretoken=" TL_CSRF "&body=a&body=b", 400,
            "could not be read");
    tl_http h;
    tl_request(ctx, &h, "POST", "/notes/", cookie, "application/json",
               "{\"body\": {\"x\": 1}}", dt_handler, NULL);
    ck_assert_int_eq(h.status, 400);
    ck_assert_ptr_nonnull(strstr(h.res_body, "could not be read"));
    tl_http_free(&h);
    tl_request(ctx, &h, "POST", "/notes/", cookie, "multipart/form-data", "x",
               dt_handler, NULL);
    ck_assert_int_eq(h.status, 415);
    tl_http_free(&h);

    /* 2001 characters: refused, and the text comes back escaped */
    static char body[16384];
    int n = snprintf(body, sizeof body,
                     "csrfmiddlewaretoken=" TL_CSRF "&body=%%3Cb%%3E");
    for (int i = 0; i < 1998; i++)
        body[n++] = 'x';
    body[n] = '\0';
    dt_post(ctx, &h, "/notes/", cookie, body);
    ck_assert_int_eq(h.status, 400);
    ck_assert_ptr_nonnull(strstr(h.res_body, "at most 2000 characters long; "
                                             "this one has 2001."));
    ck_assert_ptr_nonnull(strstr(h.res_body, ">&lt;b&gt;xxx"));
    tl_http_free(&h);
    ck_assert_int_eq(notes_of(id), 0);

    /* 2000 characters of two bytes each are fine: characters count */
    n = 0;
    for (int i = 0; i < 2000; i++)
        n += snprintf(body + n, sizeof body - (size_t)n, "%%C3%%A9");
    add(ctx, cookie, body);
    ck_assert_int_eq(
        tl_scalar_in(SCHEMA, "SELECT length(body) FROM @_demo.notes"), 2000);

    /* methods */
    tl_request(ctx, &h, "PUT", "/notes/", cookie, NULL, "", dt_handler, NULL);
    ck_assert_int_eq(h.status, 405);
    ck_assert_str_eq(tl_http_res_header(&h, "Allow"), "GET, HEAD, POST");
    tl_http_free(&h);
    dt_get(ctx, &h, "/notes/delete/", cookie);
    ck_assert_int_eq(h.status, 405);
    ck_assert_str_eq(tl_http_res_header(&h, "Allow"), "POST");
    tl_http_free(&h);
    ck_assert_int_eq(notes_of(id), 1);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(a_user_deletes_only_their_own_notes)
{
    guest_ctx *ctx = notes_ctx();
    char mine[300], theirs[300];
    int64_t me = guest(ctx, mine, sizeof mine);
    int64_t them = guest(ctx, theirs, sizeof theirs);
    add(ctx, mine, "keep");
    add(ctx, mine, "drop");
    add(ctx, theirs, "not+yours");
    char drop[32], other[32], body[128];
    tl_text_in(SCHEMA, "SELECT id FROM @_demo.notes WHERE body = 'drop'", drop,
               sizeof drop);
    tl_text_in(SCHEMA, "SELECT id FROM @_demo.notes WHERE body = 'not yours'",
               other, sizeof other);

    /* someone else's note: 404, still there */
    snprintf(body, sizeof body, "csrfmiddlewaretoken=" TL_CSRF "&id=%s", other);
    refused(ctx, "/notes/delete/", mine, body, 404, "not yours");
    ck_assert_int_eq(notes_of(them), 1);
    /* without the CSRF token, or anonymous: 403 */
    snprintf(body, sizeof body, "id=%s", drop);
    refused(ctx, "/notes/delete/", mine, body, 403, "has expired");
    snprintf(body, sizeof body, "csrfmiddlewaretoken=" TL_CSRF "&id=%s", drop);
    refused(ctx, "/notes/delete/", "csrftoken=" TL_CSRF, body, 403,
            "Notes belong to an account.");
    /* not a note number */
    static const char *const bad[] = {
        "", "0", "-1", "abc", "1e3", "+1", " 1", "1%00", "1234567890123456789"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        snprintf(body, sizeof body, "csrfmiddlewaretoken=" TL_CSRF "&id=%s",
                 bad[i]);
        refused(ctx, "/notes/delete/", mine, body, 400,
                "That is not a note number.");
    }
    refused(ctx, "/notes/delete/", mine, "csrfmiddlewaretoken=" TL_CSRF, 400,
            "That is not a note number.");
    ck_assert_int_eq(notes_of(me), 2);

    /* one's own note */
    tl_http h;
    snprintf(body, sizeof body, "csrfmiddlewaretoken=" TL_CSRF "&id=%s", drop);
    dt_post(ctx, &h, "/notes/delete/", mine, body);
    ck_assert_int_eq(h.status, 302);
    ck_assert_str_eq(tl_http_res_header(&h, "Location"), "/notes/");
    tl_http_free(&h);
    ck_assert_int_eq(notes_of(me), 1);
    ck_assert_int_eq(notes_of(them), 1);
    /* twice: gone already */
    refused(ctx, "/notes/delete/", mine, body, 404, "does not exist");
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(converting_keeps_the_notes)
{
    guest_ctx *ctx = notes_ctx();
    char cookie[300];
    int64_t id = guest(ctx, cookie, sizeof cookie);
    add(ctx, cookie, "draft+of+my+novel");
    tl_http h;
    dt_post(ctx, &h, "/convert/", cookie,
            "username=novelist&password1=" TL_PASSWORD "&password2=" TL_PASSWORD
            "&csrfmiddlewaretoken=" TL_CSRF);
    ck_assert_int_eq(h.status, 302);
    char session[128];
    ck_assert(tl_http_cookie(&h, "sessionid", session, sizeof session));
    tl_http_free(&h);
    tl_cookie_header(cookie, sizeof cookie, session, true);
    bool is_guest = true;
    ck_assert_int_eq(tl_whoami(ctx, session, &is_guest), id);
    ck_assert(!is_guest);
    dt_get(ctx, &h, "/notes/", cookie);
    ck_assert_int_eq(h.status, 200);
    ck_assert_ptr_nonnull(strstr(h.res_body, "<p>draft of my novel</p>"));
    ck_assert_ptr_null(strstr(h.res_body, "Sign up and save your work!"));
    ck_assert_ptr_nonnull(strstr(h.res_body, "Signed in as novelist"));
    tl_http_free(&h);
    dt_get(ctx, &h, "/", cookie);
    ck_assert_ptr_nonnull(
        strstr(h.res_body, "<a href=\"/notes/\">Your notes</a>"));
    tl_http_free(&h);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(a_guest_logging_into_an_account_brings_their_notes)
{
    guest_ctx *ctx = notes_ctx();
    int64_t user = tl_new_user(ctx, "returning", TL_PASSWORD);
    char cookie[300];
    int64_t g = guest(ctx, cookie, sizeof cookie);
    add(ctx, cookie, "written+as+a+guest");
    tl_http h;
    dt_post(ctx, &h, "/accounts/login/", cookie,
            "username=returning&password=" TL_PASSWORD
            "&csrfmiddlewaretoken=" TL_CSRF);
    ck_assert_int_eq(h.status, 302);
    tl_http_free(&h);
    ck_assert_int_eq(notes_of(user), 1);
    ck_assert_int_eq(notes_of(g), 0);
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM @.users WHERE id = %lld",
             (long long)g);
    ck_assert_int_eq(tl_scalar_in(SCHEMA, sql), 0);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(cleanup_takes_an_expired_guests_notes_along)
{
    guest_ctx *ctx = notes_ctx();
    char old[300], fresh[300];
    int64_t gone = guest(ctx, old, sizeof old);
    int64_t kept = guest(ctx, fresh, sizeof fresh);
    int64_t user = tl_new_user(ctx, "registered", TL_PASSWORD);
    add(ctx, old, "old");
    add(ctx, fresh, "fresh");
    char sql[160];
    snprintf(sql, sizeof sql,
             "INSERT INTO @_demo.notes (user_id, body) "
             "VALUES (%lld, 'mine')",
             (long long)user);
    tl_exec_in(SCHEMA, sql);
    snprintf(sql, sizeof sql,
             "UPDATE @.guests SET created_at = now() - interval '2 days' "
             "WHERE user_id = %lld",
             (long long)gone);
    tl_exec_in(SCHEMA, sql);

    guest_cleanup_options opts;
    guest_cleanup_options_init(&opts);
    opts.max_age = 86400;
    guest_cleanup_result res;
    ck_assert_int_eq(guest_delete_expired(ctx, &opts, &res, NULL), GUEST_OK);
    ck_assert_int_eq(res.users_deleted, 1);
    ck_assert_int_eq(notes_of(gone), 0);
    ck_assert_int_eq(notes_of(kept), 1);
    ck_assert_int_eq(notes_of(user), 1);

    /* the expired guest's browser is a stranger now: a new guest, no notes */
    tl_http h;
    dt_get(ctx, &h, "/notes/", old);
    ck_assert_int_eq(h.status, 200);
    ck_assert(tl_http_cookie(&h, "sessionid", sql, sizeof sql));
    ck_assert_ptr_nonnull(strstr(h.res_body, "No notes yet."));
    tl_http_free(&h);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(setup_is_idempotent_and_checked)
{
    guest_ctx *ctx = notes_ctx();
    char cookie[300];
    guest(ctx, cookie, sizeof cookie);
    add(ctx, cookie, "survives+a+restart");
    char err[512];
    ck_assert_int_eq(demo_notes_start(ctx, 500, err, sizeof err), 0);
    ck_assert_int_eq(demo_notes_start(ctx, 500, err, sizeof err), 0);
    ck_assert_int_eq(all_notes(), 1);

    /* not started: the notes pages say so instead of failing oddly */
    demo_notes_stop();
    tl_http h;
    dt_get(ctx, &h, "/notes/", cookie);
    ck_assert_int_eq(h.status, 503);
    ck_assert_ptr_nonnull(strstr(h.res_body, "cannot be reached"));
    tl_http_free(&h);
    dt_post(ctx, &h, "/notes/delete/", cookie, "csrfmiddlewaretoken=" TL_CSRF);
    ck_assert_int_eq(h.status, 503);
    tl_http_free(&h);
    guest_ctx_free(ctx);

    /* a library schema too long to name the notes schema after */
    static const char long_schema[] =
        "s23456789012345678901234567890123456789012345678901234567890";
    tl_drop_schema(long_schema);
    guest_config c;
    tl_config(&c, long_schema);
    ctx = tl_ctx_new(&c);
    ck_assert_int_eq(demo_notes_start(ctx, 500, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "leaves no room for the notes schema"));
    guest_ctx_free(ctx);
    tl_drop_schema(long_schema);
}
END_TEST

/* How many times @p needle occurs in @p hay. */
static int occurrences(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* The id of @p user's note whose body is @p body (0: none). */
static long long note_id(int64_t user, const char *body)
{
    char sql[160];
    snprintf(sql, sizeof sql,
             "SELECT id FROM @_demo.notes WHERE user_id = %lld AND body = '%s'",
             (long long)user, body);
    return tl_scalar_in(SCHEMA, sql);
}

/* GETs @p target and checks it is one page of @p user's notes: "note
 * <first>" down to "note <last>" in that order and no other, the count
 * line @p count, a link to older notes (below "note <last>") when @p older,
 * a link to the newest notes when @p newest. Returns the older link's
 * target (static storage) or NULL. */
static const char *page_of(guest_ctx *ctx, const char *cookie,
                           const char *target, int64_t user, int first,
                           int last, const char *count, bool older, bool newest)
{
    static char next[64];
    tl_http h;
    dt_get(ctx, &h, target, cookie);
    ck_assert_msg(h.status == 200, "%s: %d", target, h.status);
    const char *b = h.res_body;
    ck_assert_int_eq(occurrences(b, "<li class=\"note\">"), first - last + 1);
    const char *prev = b;
    for (int i = first; i >= last; i--) {
        char p[32];
        snprintf(p, sizeof p, "<p>note %d</p>", i);
        const char *at = strstr(b, p);
        ck_assert_msg(at && at > prev, "%s: '%s' missing or out of order",
                      target, p);
        prev = at;
    }
    ck_assert_ptr_null(strstr(b, "someone else"));
    ck_assert_msg(strstr(b, count), "%s: no '%s'", target, count);
    char last_body[32], link[128];
    snprintf(last_body, sizeof last_body, "note %d", last);
    snprintf(next, sizeof next, "/notes/?before=%lld",
             note_id(user, last_body));
    snprintf(link, sizeof link,
             "<a id=\"older-notes\" rel=\"next\" href=\"%s\">Older notes",
             next);
    ck_assert_msg(!strstr(b, link) == !older, "%s: older link %s", target,
                  older ? "missing" : "present");
    ck_assert_int_eq(occurrences(b, "id=\"older-notes\""), older);
    ck_assert_int_eq(occurrences(b, "<a id=\"newest-notes\" href=\"/notes/\">"),
                     newest);
    tl_http_free(&h);
    return older ? next : NULL;
}

START_TEST(notes_come_fifty_to_a_page_with_links_to_older_ones)
{
    guest_ctx *ctx = notes_ctx();
    char cookie[300], other[300], sql[256];
    int64_t id = guest(ctx, cookie, sizeof cookie);
    int64_t them = guest(ctx, other, sizeof other);
    /* one statement each, so ids follow i; someone else's in between */
    snprintf(sql, sizeof sql,
             "INSERT INTO @_demo.notes (user_id, body) SELECT %lld, "
             "'note ' || i FROM generate_series(1, 60) i",
             (long long)id);
    tl_exec_in(SCHEMA, sql);
    snprintf(sql, sizeof sql,
             "INSERT INTO @_demo.notes (user_id, body) SELECT %lld, "
             "'someone else ' || i FROM generate_series(1, 70) i",
             (long long)them);
    tl_exec_in(SCHEMA, sql);
    snprintf(sql, sizeof sql,
             "INSERT INTO @_demo.notes (user_id, body) SELECT %lld, "
             "'note ' || i FROM generate_series(61, 120) i",
             (long long)id);
    tl_exec_in(SCHEMA, sql);
    ck_assert_int_eq(notes_of(id), 120);

    char page2[64], page3[64];
    const char *next = page_of(ctx, cookie, "/notes/", id, 120, 71,
                               "120 of 500 notes", true, false);
    snprintf(page2, sizeof page2, "%s", next);
    /* a note added meanwhile goes on the first page and does not shift the
     * next one */
    add(ctx, cookie, "note+121");
    next =
        page_of(ctx, cookie, page2, id, 70, 21, "121 of 500 notes", true, true);
    snprintf(page3, sizeof page3, "%s", next);
    ck_assert_ptr_null(page_of(ctx, cookie, page3, id, 20, 1,
                               "121 of 500 notes", false, true));
    page_of(ctx, cookie, "/notes/", id, 121, 72, "121 of 500 notes", true,
            false);

    /* exactly fifty left for the second page: no link past it */
    snprintf(sql, sizeof sql,
             "DELETE FROM @_demo.notes WHERE user_id = %lld AND "
             "body IN (SELECT 'note ' || i FROM generate_series(1, 20) i)",
             (long long)id);
    tl_exec_in(SCHEMA, sql);
    ck_assert_ptr_null(page_of(ctx, cookie, page2, id, 70, 21,
                               "101 of 500 notes", false, true));

    /* past the oldest note: an empty page that says so */
    tl_http h;
    snprintf(sql, sizeof sql, "/notes/?before=%lld", note_id(id, "note 21"));
    dt_get(ctx, &h, sql, cookie);
    ck_assert_int_eq(h.status, 200);
    ck_assert_ptr_nonnull(strstr(h.res_body, "No older notes."));
    ck_assert_ptr_null(strstr(h.res_body, "No notes yet."));
    ck_assert_ptr_null(strstr(h.res_body, "class=\"note\""));
    ck_assert_ptr_nonnull(strstr(h.res_body, "id=\"newest-notes\""));
    tl_http_free(&h);

    /* a delete on an older page comes back to that page */
    char body[160];
    snprintf(body, sizeof body,
             "csrfmiddlewaretoken=" TL_CSRF "&id=%lld&before=%s",
             note_id(id, "note 30"), page2 + strlen("/notes/?before="));
    dt_post(ctx, &h, "/notes/delete/", cookie, body);
    ck_assert_int_eq(h.status, 302);
    ck_assert_str_eq(tl_http_res_header(&h, "Location"), page2);
    tl_http_free(&h);
    snprintf(body, sizeof body,
             "csrfmiddlewaretoken=" TL_CSRF "&id=%lld&before=junk",
             note_id(id, "note 31"));
    dt_post(ctx, &h, "/notes/delete/", cookie, body);
    ck_assert_int_eq(h.status, 302);
    ck_assert_str_eq(tl_http_res_header(&h, "Location"), "/notes/");
    tl_http_free(&h);
    ck_assert_int_eq(notes_of(id), 99);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(a_malformed_page_is_a_400)
{
    guest_ctx *ctx = notes_ctx();
    char cookie[300];
    int64_t id = guest(ctx, cookie, sizeof cookie);
    add(ctx, cookie, "kept");
    static const char *const bad[] = {
        "/notes/?before=",
        "/notes/?before",
        "/notes/?before=abc",
        "/notes/?before=0",
        "/notes/?before=-5",
        "/notes/?before=%2B5",
        "/notes/?before=1e3",
        "/notes/?before=5%00",
        "/notes/?before=+5",
        "/notes/?before=1234567890123456789",
        "/notes/?before=99999999999999999999999",
        "/notes/?before=1&before=2",
    };
    tl_http h;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        dt_get(ctx, &h, bad[i], cookie);
        ck_assert_msg(h.status == 400, "%s: %d", bad[i], h.status);
        ck_assert_ptr_nonnull(
            strstr(h.res_body, "That is not a page of notes"));
        ck_assert_ptr_nonnull(strstr(h.res_body, "<a href=\"/notes/\">"));
        ck_assert_ptr_null(strstr(h.res_body, "<p>kept</p>"));
        tl_http_free(&h);
    }
    /* from a stranger: the 400 makes no guest */
    dt_get(ctx, &h, "/notes/?before=x", NULL);
    ck_assert_int_eq(h.status, 400);
    ck_assert_ptr_null(tl_http_res_header(&h, "Set-Cookie"));
    tl_http_free(&h);
    ck_assert_int_eq(tl_scalar_in(SCHEMA, "SELECT count(*) FROM @.users"), 1);
    /* other parameters are not about pages: the newest notes */
    dt_get(ctx, &h, "/notes/?utm_source=x&page=3", cookie);
    ck_assert_int_eq(h.status, 200);
    ck_assert_ptr_nonnull(strstr(h.res_body, "<p>kept</p>"));
    tl_http_free(&h);
    /* a large but well-formed id: every note is older */
    dt_get(ctx, &h, "/notes/?before=999999999999999999", cookie);
    ck_assert_int_eq(h.status, 200);
    ck_assert_ptr_nonnull(strstr(h.res_body, "<p>kept</p>"));
    tl_http_free(&h);
    ck_assert_int_eq(notes_of(id), 1);
    guest_ctx_free(ctx);
}
END_TEST

START_TEST(a_user_cannot_keep_more_than_notes_max)
{
    /* the flag: its default and its range */
    demo_options o;
    char *defaults[] = {"demo", NULL};
    ck_assert_int_eq(demo_parse_args(&o, 1, defaults), 0);
    ck_assert_uint_eq(o.notes_max, 500);
    char *zero[] = {"demo", "--notes-max", "0", NULL};
    ck_assert_int_eq(demo_parse_args(&o, 3, zero), -1);
    char *word[] = {"demo", "--notes-max", "many", NULL};
    ck_assert_int_eq(demo_parse_args(&o, 3, word), -1);

    char *const three[] = {"demo", "--notes-max", "3", NULL};
    guest_ctx *ctx = notes_ctx_with(demo_notes_configure, three);
    char cookie[300], other[300];
    int64_t id = guest(ctx, cookie, sizeof cookie);
    int64_t them = guest(ctx, other, sizeof other);
    add(ctx, cookie, "one");
    add(ctx, cookie, "two");
    tl_http h;
    dt_get(ctx, &h, "/notes/", cookie);
    ck_assert_ptr_nonnull(strstr(h.res_body, "2 of 3 notes"));
    tl_http_free(&h);
    add(ctx, cookie, "three");

    /* the fourth: the form again with the reason and the text, no row */
    dt_post(ctx, &h, "/notes/", cookie,
            "csrfmiddlewaretoken=" TL_CSRF "&body=four+%3Cb%3E");
    ck_assert_int_eq(h.status, 409);
    ck_assert_ptr_nonnull(
        strstr(h.res_body, "<p class=\"error\" id=\"body_error\">An account "
                           "can keep at most 3 notes and yours is full."));
    ck_assert_ptr_nonnull(strstr(h.res_body, ">four &lt;b&gt;</textarea>"));
    ck_assert_ptr_nonnull(strstr(h.res_body, "3 of 3 notes"));
    ck_assert_ptr_nonnull(strstr(h.res_body, "<p>three</p>"));
    tl_http_free(&h);
    ck_assert_int_eq(notes_of(id), 3);
    ck_assert_int_eq(note_id(id, "four <b>"), 0);

    /* the limit is per user */
    add(ctx, other, "theirs");
    ck_assert_int_eq(notes_of(them), 1);
    /* past it already (notes brought along by a login): still refused */
    char sql[160];
    snprintf(sql, sizeof sql,
             "INSERT INTO @_demo.notes (user_id, body) SELECT %lld, 'more' "
             "FROM generate_series(1, 3)",
             (long long)them);
    tl_exec_in(SCHEMA, sql);
    refused(ctx, "/notes/", other, "csrfmiddlewaretoken=" TL_CSRF "&body=x",
            409, "4 of 3 notes");
    ck_assert_int_eq(notes_of(them), 4);
    /* deleting one makes room */
    char body[128];
    snprintf(body, sizeof body, "csrfmiddlewaretoken=" TL_CSRF "&id=%lld",
             note_id(id, "one"));
    dt_post(ctx, &h, "/notes/delete/", cookie, body);
    ck_assert_int_eq(h.status, 302);
    tl_http_free(&h);
    add(ctx, cookie, "four");
    ck_assert_int_eq(notes_of(id), 3);

    /* the module refuses a limit of 0 */
    char err[256];
    ck_assert_int_eq(demo_notes_start(ctx, 0, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "at least 1"));
    guest_ctx_free(ctx);
}
END_TEST

#define RACERS 8

typedef struct racer {
    guest_ctx *ctx;
    const char *cookie;
    pthread_barrier_t *start;
    char body[128];
    int status;
} racer;

static void *race(void *arg)
{
    racer *r = arg;
    tl_http h;
    pthread_barrier_wait(r->start);
    dt_post(r->ctx, &h, "/notes/", r->cookie, r->body);
    r->status = h.status;
    tl_http_free(&h);
    return NULL;
}

/* A connection for every racer at once, and time to wait on a busy
 * machine: the race is for the limit, not for the pool. */
static void roomy(guest_config *cfg)
{
    demo_notes_configure(cfg);
    cfg->db_pool_size = RACERS + 2;
    cfg->db_timeout_ms = 60000;
}

START_TEST(posts_at_once_never_pass_the_limit)
{
    char *const five[] = {"demo", "--notes-max", "5", NULL};
    guest_ctx *ctx = notes_ctx_with(roomy, five);
    /* several rounds, from no notes and from one below the limit */
    for (int round = 0; round < 6; round++) {
        char cookie[300];
        int64_t id = guest(ctx, cookie, sizeof cookie);
        int before = round % 2 ? 4 : 0;
        for (int i = 0; i < before; i++)
            add(ctx, cookie, "earlier");
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, RACERS);
        racer r[RACERS];
        pthread_t t[RACERS];
        for (int i = 0; i < RACERS; i++) {
            r[i] = (racer){.ctx = ctx, .cookie = cookie, .start = &start};
            snprintf(r[i].body, sizeof r[i].body,
                     "csrfmiddlewaretoken=" TL_CSRF "&body=racer+%d", i);
            ck_assert_int_eq(pthread_create(&t[i], NULL, race, &r[i]), 0);
        }
        int stored = 0, refused = 0;
        for (int i = 0; i < RACERS; i++) {
            pthread_join(t[i], NULL);
            stored += r[i].status == 302;
            refused += r[i].status == 409;
        }
        pthread_barrier_destroy(&start);
        ck_assert_int_eq(notes_of(id), 5);
        ck_assert_int_eq(stored, 5 - before);
        ck_assert_int_eq(refused, RACERS - (5 - before));
    }
    guest_ctx_free(ctx);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("demo_notes");
    TCase *tc = tcase_create("demo_notes");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, a_first_visit_gets_a_guest_and_the_form);
    tcase_add_test(tc, a_crawler_gets_no_cookie_no_user_and_cannot_post);
    tcase_add_test(tc, notes_are_listed_newest_first_and_escaped);
    tcase_add_test(tc, bad_notes_are_refused_with_a_reason);
    tcase_add_test(tc, a_user_deletes_only_their_own_notes);
    tcase_add_test(tc, converting_keeps_the_notes);
    tcase_add_test(tc, a_guest_logging_into_an_account_brings_their_notes);
    tcase_add_test(tc, cleanup_takes_an_expired_guests_notes_along);
    tcase_add_test(tc, setup_is_idempotent_and_checked);
    tcase_add_test(tc, notes_come_fifty_to_a_page_with_links_to_older_ones);
    tcase_add_test(tc, a_malformed_page_is_a_400);
    tcase_add_test(tc, a_user_cannot_keep_more_than_notes_max);
    tcase_add_test(tc, posts_at_once_never_pass_the_limit);
    suite_add_tcase(s, tc);
    return tl_run(s);
}

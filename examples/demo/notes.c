/* The demo's application: notes. They live in the demo's own table,
 * <library schema>_demo.notes, whose user_id references the library's users
 * ON DELETE CASCADE: converting a guest keeps them (same user id), cleanup
 * of an expired guest removes them. The demo talks to that table through
 * the library's own pool (guestuser/db.h), with parameters only, so its
 * statements share the library's deadlines and outage answers. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "demo.h"
#include "layout.h"

static struct {
    bool started;
    int64_t max_age;
    unsigned notes_max;
    char schema[64]; /* unquoted, for messages */
    char *sql_page, *sql_lock, *sql_add, *sql_delete, *sql_move;
} app;

/* ---- database ---- */

static char *format(const char *fmt, ...) GUEST_PRINTF(1, 2);
static char *format(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = n < 0 ? NULL : malloc((size_t)n + 1);
    if (!s)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

static bool sqlstate_is(const PGresult *r, const char *state)
{
    const char *s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    return s && !strcmp(s, state);
}

typedef enum add_result {
    ADDED,
    ADD_FULL,    /* the user has app.notes_max notes already */
    ADD_NO_USER, /* the user was deleted (cleanup) after the session was read */
    ADD_DOWN,    /* no connection, or the database timed out */
    ADD_FAILED,
} add_result;

/* One statement of add_note() on the request's connection: its result, or
 * NULL with *state set from what went wrong. */
static PGresult *step(guest_req *req, const char *sql, int nparams,
                      const char *const *params, add_result *state)
{
    PGresult *r = NULL;
    guest_error err;
    guest_status st = guest_req_query(req, sql, nparams, params, &r, &err);
    if (st == GUEST_OK)
        return r;
    if (st == GUEST_ERR_DB_UNAVAILABLE || sqlstate_is(r, "57014"))
        *state = ADD_DOWN; /* gone, or statement_timeout (a lock wait) */
    else if (sqlstate_is(r, "23503"))
        *state = ADD_NO_USER;
    else
        *state = ADD_FAILED;
    fprintf(stderr, "notes: %s\n", err.message);
    PQclear(r);
    return NULL;
}

/* Stores @p text as a note of @p user unless they have app.notes_max notes.
 *
 * The limit must hold when one user posts from several tabs at once. The
 * INSERT ... SELECT ... WHERE count < max alone does not: at READ COMMITTED
 * every statement reads from a snapshot taken when it starts, so two posts
 * at max - 1 both count max - 1 and both insert. Taking a lock inside that
 * statement does not help either, the snapshot is older than the wait. So a
 * transaction first locks the user's row, then runs the INSERT, whose fresh
 * snapshot sees every note committed by whoever held the lock before.
 *
 * The user's row rather than an advisory lock: it is exactly one lock per
 * user of this schema, where advisory keys are shared by everything in the
 * database and a bigint id leaves no room for a namespace; it also says
 * when the user has just been deleted. FOR NO KEY UPDATE conflicts with
 * itself and with the library's updates of that row (short), not with the
 * KEY SHARE locks that foreign-key checks take, so sessions and other
 * inserts referencing the user do not wait on it. */
static add_result add_note(guest_req *req, int64_t user, const char *text)
{
    char id[24], max[16];
    snprintf(id, sizeof id, "%lld", (long long)user);
    snprintf(max, sizeof max, "%u", app.notes_max);
    const char *params[] = {id, text, max};
    add_result res = ADDED;
    /* The request's connection keeps the three statements in one
     * transaction; if the handler returned midway, the library would roll
     * it back when the request ends. */
    PGresult *r = step(req, "BEGIN", 0, NULL, &res);
    if (r) {
        PQclear(r);
        r = step(req, app.sql_lock, 1, params, &res);
    }
    if (r) {
        bool exists = PQntuples(r) == 1;
        PQclear(r);
        r = NULL;
        if (exists)
            r = step(req, app.sql_add, 3, params, &res);
        else
            res = ADD_NO_USER;
    }
    if (r) {
        if (!strcmp(PQcmdTuples(r), "0"))
            res = ADD_FULL;
        PQclear(r);
        r = step(req, "COMMIT", 0, NULL, &res);
        PQclear(r);
    } else {
        /* Ends the transaction now rather than when the request ends: the
         * answer may still take a while to send. */
        if (res != ADD_DOWN)
            PQclear(step(req, "ROLLBACK", 0, NULL, &(add_result){ADDED}));
    }
    return res;
}

/* A guest who logs into an existing account brings their notes along:
 * runs inside the library's login transaction, before the guest is
 * deleted (which would cascade to the notes). */
static guest_status move_notes(const guest_user *guest, const guest_user *user,
                               guest_db *db, void *userdata)
{
    (void)userdata;
    if (!app.sql_move)
        return GUEST_OK;
    char from[24], to[24];
    snprintf(from, sizeof from, "%lld", (long long)guest_user_id(guest));
    snprintf(to, sizeof to, "%lld", (long long)guest_user_id(user));
    const char *params[] = {from, to};
    return guest_db_exec(db, app.sql_move, 2, params, NULL);
}

void demo_notes_configure(guest_config *cfg)
{
    cfg->on_guest_login = move_notes;
    cfg->on_guest_login_userdata = NULL;
}

void demo_notes_stop(void)
{
    app.started = false;
    free(app.sql_page);
    free(app.sql_lock);
    free(app.sql_add);
    free(app.sql_delete);
    free(app.sql_move);
    app.sql_page = app.sql_lock = app.sql_add = app.sql_delete = app.sql_move =
        NULL;
    app.schema[0] = '\0';
}

int demo_notes_start(guest_ctx *ctx, unsigned notes_max, char *err,
                     size_t errsize)
{
    demo_notes_stop();
    const guest_config *c = guest_ctx_config(ctx);
    if (notes_max < 1) {
        snprintf(err, errsize, "the most notes per user must be at least 1");
        return -1;
    }
    app.notes_max = notes_max;
    /* The library validated its schema name: [a-z_][a-z0-9_]*. */
    if (strlen(c->db_schema) + strlen("_demo") > 63) {
        snprintf(err, errsize,
                 "the schema name '%s' leaves no room for the notes schema "
                 "'%s_demo' (63 characters at most)",
                 c->db_schema, c->db_schema);
        return -1;
    }
    snprintf(app.schema, sizeof app.schema, "%s_demo", c->db_schema);
    app.max_age = c->max_age;

    /* The table is made on one of the library's own connections, lent
     * for the start-up work. */
    PGconn *conn = NULL;
    guest_error gerr;
    if (guest_db_borrow(ctx, &conn, &gerr) != GUEST_OK) {
        snprintf(err, errsize, "%s", gerr.message);
        return -1;
    }
    char *notes = PQescapeIdentifier(conn, app.schema, strlen(app.schema));
    char *lib = PQescapeIdentifier(conn, c->db_schema, strlen(c->db_schema));
    char *ddl = NULL;
    if (notes && lib) {
        ddl = format(
            "BEGIN;"
            "SELECT pg_advisory_xact_lock(hashtext('guestuser-demo-notes'));"
            "CREATE SCHEMA IF NOT EXISTS %s;"
            "CREATE TABLE IF NOT EXISTS %s.notes ("
            " id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
            " user_id bigint NOT NULL REFERENCES %s.users(id)"
            "  ON DELETE CASCADE,"
            " body text NOT NULL CHECK (body <> '' AND length(body) <= %d),"
            " created_at timestamptz NOT NULL DEFAULT now());"
            /* Pages walk a user's notes by id (see sql_page): one index
             * serves them, the count and the cleanup cascade. It replaces
             * the (user_id, created_at, id) index of earlier demos. */
            "CREATE INDEX IF NOT EXISTS notes_user_id_id_idx"
            " ON %s.notes (user_id, id);"
            "DROP INDEX IF EXISTS %s.notes_user_id_created_at_idx;"
            "COMMIT;",
            notes, notes, lib, DEMO_NOTE_MAX_CHARS, notes, notes);
        /* The user's count and one page, in one statement so they agree.
         * Keyset pagination (id < $2) rather than OFFSET: each page is one
         * index range of 51 rows however far back it is, where OFFSET reads
         * and throws away every note before the page; and a note added or
         * deleted between two page loads does not shift the next page (no
         * note shown twice or skipped). Newest first is id order: ids come
         * from one sequence, so no two notes tie, as created_at can. The
         * 51st row only says whether an older page exists. */
        app.sql_page = format(
            "SELECT t.total, n.id, n.body,"
            " to_char(n.created_at AT TIME ZONE 'UTC',"
            "  'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
            " to_char(n.created_at AT TIME ZONE 'UTC',"
            "  'YYYY-MM-DD HH24:MI \"UTC\"')"
            " FROM (SELECT count(*) AS total FROM %s.notes"
            "  WHERE user_id = $1::bigint) t"
            " LEFT JOIN LATERAL (SELECT id, body, created_at FROM %s.notes"
            "  WHERE user_id = $1::bigint AND id < $2::bigint"
            "  ORDER BY id DESC LIMIT %d) n ON true"
            " ORDER BY n.id DESC",
            notes, notes, DEMO_NOTES_PER_PAGE + 1);
        /* Taken before sql_add, in its own statement: see add_note(). */
        app.sql_lock = format(
            "SELECT 1 FROM %s.users WHERE id = $1 FOR NO KEY UPDATE", lib);
        app.sql_add = format("INSERT INTO %s.notes (user_id, body)"
                             " SELECT $1::bigint, $2::text"
                             " WHERE (SELECT count(*) FROM %s.notes"
                             "  WHERE user_id = $1::bigint) < $3::bigint",
                             notes, notes);
        app.sql_delete = format(
            "DELETE FROM %s.notes WHERE id = $1 AND user_id = $2", notes);
        app.sql_move = format(
            "UPDATE %s.notes SET user_id = $2 WHERE user_id = $1", notes);
    }
    PQfreemem(notes);
    PQfreemem(lib);
    if (!ddl || !app.sql_page || !app.sql_lock || !app.sql_add ||
        !app.sql_delete || !app.sql_move) {
        free(ddl);
        guest_db_return(ctx, conn);
        demo_notes_stop();
        snprintf(err, errsize, "out of memory");
        return -1;
    }
    PGresult *r = PQexec(conn, ddl);
    free(ddl);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        snprintf(err, errsize, "creating %s.notes: %s", app.schema,
                 PQerrorMessage(conn));
        PQclear(r);
        guest_db_return(ctx, conn);
        demo_notes_stop();
        return -1;
    }
    PQclear(r);
    guest_db_return(ctx, conn);
    app.started = true;
    return 0;
}

const char *demo_notes_schema(void)
{
    return app.schema;
}

/* ---- checking a note ---- */

/* Number of characters of @p s when it is well-formed UTF-8 (no overlong
 * forms, surrogates or code points past U+10FFFF), else -1. */
static long utf8_chars(const unsigned char *s, size_t len)
{
    long n = 0;
    for (size_t i = 0; i < len; n++) {
        unsigned char b = s[i];
        size_t k;
        unsigned cp;
        if (b < 0x80) {
            i++;
            continue;
        } else if (b >= 0xC2 && b <= 0xDF) {
            k = 1, cp = b & 0x1F;
        } else if (b >= 0xE0 && b <= 0xEF) {
            k = 2, cp = b & 0x0F;
        } else if (b >= 0xF0 && b <= 0xF4) {
            k = 3, cp = b & 0x07;
        } else {
            return -1;
        }
        if (len - i - 1 < k)
            return -1;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xC0) != 0x80)
                return -1;
            cp = cp << 6 | (s[i + j] & 0x3F);
        }
        if ((k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) ||
            (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
            return -1;
        i += k + 1;
    }
    return n;
}

/* Checks a submitted note. On success returns NULL and *text owns the
 * note with CR LF and lone CR turned into LF (free it). Otherwise returns
 * the message to show (in @p msg or static) and *draft says whether the
 * text may be shown back in the form. */
static const char *check_note(const char *body, size_t len, char **text,
                              bool *draft, char *msg, size_t msgsize)
{
    *text = NULL;
    *draft = false;
    if (!body || len == 0)
        return "Write something first.";
    if (memchr(body, '\0', len))
        return "A note cannot contain a NUL character.";
    long chars = utf8_chars((const unsigned char *)body, len);
    if (chars < 0)
        return "A note must be UTF-8 text.";
    char *t = malloc(len + 1);
    if (!t)
        return "Out of memory.";
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (body[i] == '\r') {
            t[n++] = '\n';
            if (i + 1 < len && body[i + 1] == '\n')
                i++, chars--;
        } else {
            t[n++] = body[i];
        }
    }
    t[n] = '\0';
    *text = t;
    *draft = true;
    if (strspn(t, " \t\n\v\f") == n) {
        free(t);
        *text = NULL;
        return "Write something first.";
    }
    if (chars > DEMO_NOTE_MAX_CHARS) {
        snprintf(msg, msgsize,
                 "A note can be at most %d characters long; this one has "
                 "%ld.",
                 DEMO_NOTE_MAX_CHARS, chars);
        return msg;
    }
    return NULL;
}

/* ---- pages ---- */

static void unavailable(guest_req *req)
{
    demo_message_page(req, 503, "Service Unavailable",
                      "The notes cannot be reached right now. Please try "
                      "again in a moment.",
                      NULL, NULL);
}

static void method_not_allowed(guest_req *req, const char *allow)
{
    demo_header(req, "Allow", allow);
    demo_message_page(req, 405, "Method Not Allowed",
                      "This page does not answer that kind of request.",
                      "/notes/", "Your notes");
}

/* "14 days", "2 hours"...: how long a guest's notes are kept. */
static void write_duration(guest_req *req, int64_t secs)
{
    static const struct {
        int64_t size;
        const char *name;
    } units[] = {{86400, "day"}, {3600, "hour"}, {60, "minute"}, {1, "second"}};
    for (size_t i = 0; i < sizeof units / sizeof *units; i++) {
        int64_t n = secs / units[i].size;
        if (n >= 2 || units[i].size == 1) {
            guest_res_printf(req, "%lld %s%s", (long long)n, units[i].name,
                             n == 1 ? "" : "s");
            return;
        }
    }
}

static void csrf_input(guest_req *req, const char *token)
{
    guest_res_printf(req, "<input type=\"hidden\" name=\"" GUEST_CSRF_FIELD
                          "\" value=\"");
    guest_res_write_html(req, token);
    guest_res_printf(req, "\">");
}

/* The notes page of @p u: the guest's call-out, the form (with @p error and
 * the refused @p draft after a bad note), how many notes of the most, then
 * one page of notes, newest first: those with an id below @p before (0: the
 * newest), and the links to older and to the newest notes. */
static void show_notes(guest_req *req, const guest_user *u, int status,
                       const char *error, const char *draft, int64_t before)
{
    const char *token = NULL;
    if (guest_csrf_token(req, &token) != GUEST_OK) {
        demo_message_page(req, 500, "Internal Server Error",
                          "The page could not be made.", NULL, NULL);
        return;
    }
    char id[24], below[24];
    snprintf(id, sizeof id, "%lld", (long long)guest_user_id(u));
    snprintf(below, sizeof below, "%lld",
             (long long)(before > 0 ? before : INT64_MAX));
    const char *params[] = {id, below};
    PGresult *r = NULL;
    if (guest_req_query(req, app.sql_page, 2, params, &r, NULL) != GUEST_OK) {
        PQclear(r);
        unavailable(req);
        return;
    }
    const guest_config *c = guest_ctx_config(guest_req_ctx(req));
    demo_page_start(req, status, "Your notes");
    if (guest_is_guest_user(u)) {
        guest_res_printf(req, "<p class=\"callout\">You are using this site "
                              "as a guest: your notes are kept for ");
        write_duration(req, app.max_age);
        guest_res_printf(req, ". <a href=\"");
        guest_res_write_html(req, c->convert_url);
        guest_res_printf(req, "\">Sign up and save your work!</a></p>\n");
    }
    guest_res_printf(req, "<form method=\"post\" action=\"/notes/\">");
    csrf_input(req, token);
    guest_res_printf(req, "<p><label for=\"id_body\">New note</label></p>\n");
    if (error) {
        guest_res_printf(req, "<p class=\"error\" id=\"body_error\">");
        guest_res_write_html(req, error);
        guest_res_printf(req, "</p>\n");
    }
    guest_res_printf(req,
                     "<textarea id=\"id_body\" name=\"body\" rows=\"4\" "
                     "maxlength=\"%d\" required placeholder=\"Write "
                     "something&hellip;\">",
                     DEMO_NOTE_MAX_CHARS);
    if (draft)
        guest_res_write_html(req, draft);
    guest_res_printf(req, "</textarea>\n<p><button type=\"submit\">Add note"
                          "</button></p></form>\n");

    /* One row even without notes (the LEFT JOIN), then id is NULL. */
    int n = PQntuples(r) == 1 && PQgetisnull(r, 0, 1) ? 0 : PQntuples(r);
    bool older = n > DEMO_NOTES_PER_PAGE;
    if (older)
        n = DEMO_NOTES_PER_PAGE;
    guest_res_printf(req,
                     "<p class=\"muted\" id=\"note-count\">%s of %u "
                     "notes</p>\n",
                     PQntuples(r) ? PQgetvalue(r, 0, 0) : "0", app.notes_max);
    if (n == 0 && before > 0)
        guest_res_printf(req, "<p class=\"muted\" id=\"no-older-notes\">No "
                              "older notes.</p>\n");
    else if (n == 0)
        guest_res_printf(req, "<p class=\"muted\" id=\"no-notes\">No notes "
                              "yet.</p>\n");
    else
        guest_res_printf(req, "<ul class=\"notes\">\n");
    for (int i = 0; i < n; i++) {
        guest_res_printf(req, "<li class=\"note\"><div class=\"text\"><p>");
        guest_res_write_html(req, PQgetvalue(r, i, 2));
        guest_res_printf(req, "</p><time datetime=\"%s\">%s</time></div>",
                         PQgetvalue(r, i, 3), PQgetvalue(r, i, 4));
        guest_res_printf(req, "<form method=\"post\" action=\"/notes/"
                              "delete/\">");
        csrf_input(req, token);
        if (before > 0)
            guest_res_printf(req,
                             "<input type=\"hidden\" name=\"before\" "
                             "value=\"%lld\">",
                             (long long)before);
        guest_res_printf(req,
                         "<input type=\"hidden\" name=\"id\" value=\"%s\">"
                         "<button type=\"submit\" class=\"delete\">Delete"
                         "</button></form></li>\n",
                         PQgetvalue(r, i, 1));
    }
    if (n)
        guest_res_printf(req, "</ul>\n");
    if (older || before > 0) {
        guest_res_printf(req, "<nav class=\"pager\">");
        if (before > 0)
            guest_res_printf(req, "<a id=\"newest-notes\" href=\"/notes/\">"
                                  "&larr; Newest notes</a>");
        if (older)
            guest_res_printf(req,
                             "<a id=\"older-notes\" rel=\"next\" "
                             "href=\"/notes/?before=%s\">Older notes "
                             "&rarr;</a>",
                             PQgetvalue(r, n - 1, 1));
        guest_res_printf(req, "</nav>\n");
    }
    PQclear(r);
    demo_page_end(req);
}

/* The page for a visitor without an account: a crawler, or every visitor
 * when guests are disabled. It sets no cookie. */
static void show_no_account(guest_req *req, int status)
{
    const guest_config *c = guest_ctx_config(guest_req_ctx(req));
    demo_page_start(req, status, "Notes");
    guest_res_printf(req, "<p>Notes belong to an account. <a href=\"");
    guest_res_write_html(req, c->login_url);
    guest_res_printf(req, "\">Log in</a> to see yours.</p>\n");
    demo_page_end(req);
}

/* userdata: the int64_t page from read_page(). */
static GUEST_ALLOW(notes_get)
{
    const guest_user *u = NULL;
    if (guest_req_user(req, &u, NULL) != GUEST_OK) {
        unavailable(req);
        return;
    }
    if (!u)
        show_no_account(req, 200);
    else
        show_notes(req, u, 200, NULL, NULL, *(const int64_t *)userdata);
}

/* The submitted form once its CSRF token passed, or NULL after answering
 * 400, 403, 413 or 415. Free with guest_form_free(). */
static guest_form *read_checked_form(guest_req *req)
{
    guest_form *form = NULL;
    guest_error err = {0};
    guest_status st = guest_req_form(req, &form, &err);
    if (st == GUEST_ERR_TOO_LARGE) {
        demo_message_page(req, 413, "Too Large",
                          "That is more than this site accepts at once.",
                          "/notes/", "Your notes");
    } else if (st == GUEST_ERR_INVALID) {
        demo_message_page(req, 415, "Unsupported Media Type",
                          "Send the form as a web form or as JSON.", "/notes/",
                          "Your notes");
    } else if (st == GUEST_ERR_VALIDATION) {
        demo_message_page(req, 400, "Bad Request",
                          "The form could not be read: a field was sent "
                          "twice or the data is malformed.",
                          "/notes/", "Your notes");
    } else if (st != GUEST_OK) {
        unavailable(req);
    } else if (guest_csrf_check_form(req, form, &err) != GUEST_OK) {
        demo_message_page(req, 403, "Forbidden",
                          "This form has expired or did not come from this "
                          "site. Reload the page and try again.",
                          "/notes/", "Your notes");
    } else {
        return form;
    }
    guest_form_free(form);
    return NULL;
}

static void notes_add(guest_req *req, void *userdata)
{
    const guest_form *form = userdata;
    const guest_user *u = NULL;
    if (guest_req_user(req, &u, NULL) != GUEST_OK) {
        unavailable(req);
        return;
    }
    if (!u) {
        show_no_account(req, 403);
        return;
    }
    size_t len = 0;
    const char *body = guest_form_get_len(form, "body", &len);
    char *text = NULL, msg[192];
    bool draft;
    const char *problem = check_note(body, len, &text, &draft, msg, sizeof msg);
    if (problem) {
        show_notes(req, u, 400, problem, draft ? text : NULL, 0);
        free(text);
        return;
    }
    switch (add_note(req, guest_user_id(u), text)) {
    case ADDED:
        demo_redirect(req, "/notes/");
        break;
    case ADD_FULL:
        snprintf(msg, sizeof msg,
                 "An account can keep at most %u notes and yours is full. "
                 "Delete some to make room for new ones.",
                 app.notes_max);
        show_notes(req, u, 409, msg, text, 0);
        break;
    case ADD_NO_USER:
        show_no_account(req, 403);
        break;
    case ADD_DOWN:
        unavailable(req);
        break;
    case ADD_FAILED:
        demo_message_page(req, 500, "Internal Server Error",
                          "The note could not be saved.", "/notes/",
                          "Your notes");
        break;
    }
    free(text);
}

/* A note id: 1 to 18 digits, nothing else. */
static bool note_id_ok(const char *s, size_t len)
{
    return s && len >= 1 && len <= 18 && strspn(s, "0123456789") == len &&
           strtoll(s, NULL, 10) > 0;
}

/* The page asked for by the query string: 0 for the newest notes (no
 * ?before), the note id of ?before=<id> (its notes are older than that
 * one), or -1 after answering 400 for a malformed one: a link that names a
 * page should show that page or say it cannot, not the newest notes as if
 * it had worked. Other parameters are ignored. */
static int64_t read_page(guest_req *req)
{
    const char *q = strchr(guest_req_target(req), '?');
    if (!q)
        return 0;
    guest_form *query = NULL;
    guest_status st = guest_form_parse(q + 1, strlen(q + 1), &query, NULL);
    size_t len = 0;
    const char *before = guest_form_get_len(query, "before", &len);
    int64_t page = 0;
    if (st == GUEST_ERR_NOMEM) {
        unavailable(req);
        page = -1;
    } else if (st != GUEST_OK || (before && !note_id_ok(before, len))) {
        demo_message_page(req, 400, "Bad Request",
                          "That is not a page of notes: ?before= takes the "
                          "number of a note.",
                          "/notes/", "Your newest notes");
        page = -1;
    } else if (before) {
        page = strtoll(before, NULL, 10);
    }
    guest_form_free(query);
    return page;
}

void demo_notes(guest_req *req, void *userdata)
{
    (void)userdata;
    const char *m = guest_req_method(req);
    bool read = !strcmp(m, "GET") || !strcmp(m, "HEAD");
    if (!read && strcmp(m, "POST")) {
        method_not_allowed(req, "GET, HEAD, POST");
        return;
    }
    if (!app.started) {
        unavailable(req);
        return;
    }
    if (read) {
        int64_t page = read_page(req);
        if (page >= 0)
            notes_get(req, &page);
        return;
    }
    guest_form *form = read_checked_form(req);
    if (!form)
        return;
    /* A visitor whose guest account ended since the page was shown
     * becomes a new guest and keeps the note. */
    (void)guest_allow(req, notes_add, form);
    guest_form_free(form);
}

/* After a delete, back to the page it was made from: the form's "before"
 * field when it holds a note id, else the newest notes. */
static void back_to_page(guest_req *req, const guest_form *form)
{
    size_t len = 0;
    const char *before = guest_form_get_len(form, "before", &len);
    char to[48];
    if (note_id_ok(before, len))
        snprintf(to, sizeof to, "/notes/?before=%s", before);
    else
        snprintf(to, sizeof to, "/notes/");
    demo_redirect(req, to);
}

void demo_notes_delete(guest_req *req, void *userdata)
{
    (void)userdata;
    if (strcmp(guest_req_method(req), "POST")) {
        method_not_allowed(req, "POST");
        return;
    }
    if (!app.started) {
        unavailable(req);
        return;
    }
    guest_form *form = read_checked_form(req);
    if (!form)
        return;
    const guest_user *u = NULL;
    size_t len = 0;
    const char *id = guest_form_get_len(form, "id", &len);
    if (guest_req_user(req, &u, NULL) != GUEST_OK) {
        unavailable(req);
    } else if (!u) {
        show_no_account(req, 403);
    } else if (!note_id_ok(id, len)) {
        demo_message_page(req, 400, "Bad Request", "That is not a note number.",
                          "/notes/", "Your notes");
    } else {
        char uid[24];
        snprintf(uid, sizeof uid, "%lld", (long long)guest_user_id(u));
        const char *params[] = {id, uid};
        PGresult *r = NULL;
        guest_status st =
            guest_req_query(req, app.sql_delete, 2, params, &r, NULL);
        if (st == GUEST_ERR_DB_UNAVAILABLE)
            unavailable(req);
        else if (st != GUEST_OK)
            demo_message_page(req, 500, "Internal Server Error",
                              "The note could not be deleted.", "/notes/",
                              "Your notes");
        else if (!strcmp(PQcmdTuples(r), "0"))
            demo_message_page(req, 404, "Not Found",
                              "That note does not exist, or it is not yours.",
                              "/notes/", "Your notes");
        else
            back_to_page(req, form);
        PQclear(r);
    }
    guest_form_free(form);
}

/* The demo application: routes shared by every server front end. */
#ifndef GUESTUSER_DEMO_H
#define GUESTUSER_DEMO_H

#include <stdint.h>
#include <stdio.h>

#include <guestuser/guestuser.h>

typedef struct demo_options {
    guest_config cfg;
    const char *bind;
    uint16_t port;
    const char *server; /* "mhd" or "civetweb" */
    /* Server limits; -1: the adapter's default. */
    long max_connections;  /* mhd */
    long max_conns_per_ip; /* mhd */
    long header_timeout;   /* seconds, both */
    long threads;          /* civetweb */
    /* storage for repeated --blocked-agent flags */
    const char *agents[64];
    int nagents;
    /* the notes application (--notes-max) */
    unsigned notes_max;
    /* keys read by --secret-key-file (cfg.secret_keys points here) */
    char **secret_keys;
    /* the token read by --metrics-token-file, or NULL */
    char *metrics_token;
} demo_options;

/* Parses argv into @p o (config defaults first). Returns 0 to run, 1 after
 * printing --help (exit 0), -1 on a usage error (already printed). Release
 * @p o with demo_options_free() whatever it returned. */
int demo_parse_args(demo_options *o, int argc, char **argv);
void demo_usage(FILE *out, const char *argv0);
/* Wipes and frees what demo_parse_args() loaded (the secret keys and the
 * metrics token): after guest_ctx_new() and demo_metrics_set_token(),
 * which copy them. */
void demo_options_free(demo_options *o);

/* Who may GET /metrics besides a client that came straight from this
 * host: whoever sends "Authorization: Bearer <token>". Copies @p token
 * (NULL: nobody else; wipes the previous copy). Returns -1 when out of
 * memory. Call before serving and after the servers stopped: not
 * thread-safe. */
int demo_metrics_set_token(const char *token);

/* The demo's route table ({NULL} terminated), for guest_routes_dispatch. */
const guest_route *demo_routes(void);

/* The handler servers run: dispatches on demo_routes() and logs one line
 * per request to stderr. */
void demo_handler(guest_req *req, void *userdata);

/* account_routes.c: the home page and the profile page; the
 * convert, login and logout pages are the library's own handlers. */
void demo_home(guest_req *req, void *userdata);
void demo_profile(guest_req *req, void *userdata);
/* "all", "none" or a comma list of min-length, numeric, similarity, common
 * into GUEST_PW_CHECK_* bits; 0, or -1 for an unknown word. */
int demo_parse_password_checks(const char *list, unsigned *checks);

/* notes.c: the notes application. Its table is
 * <library schema>_demo.notes; guide: docs/demo.md. */
#define DEMO_NOTE_MAX_CHARS 2000
/* Most notes one user may keep unless --notes-max says otherwise. */
#define DEMO_NOTES_MAX_DEFAULT 500
/* Notes on one page of /notes/, newest first. */
#define DEMO_NOTES_PER_PAGE 50
/* Sets cfg->on_guest_login so a guest who logs into an existing account
 * keeps their notes. Call before guest_ctx_new(). */
void demo_notes_configure(guest_config *cfg);
/* Creates the notes schema and table when missing (idempotent) and opens
 * the notes' connections, with the context's conninfo, pool size and
 * timeout. Adding a note is refused once its user has @p notes_max notes
 * (at least 1). Call after guest_ctx_new() (the table references the
 * library's users). Returns 0, or -1 with a message in @p err. */
int demo_notes_start(guest_ctx *ctx, unsigned notes_max, char *err,
                     size_t errsize);
/* Closes those connections; call once no request is in flight. */
void demo_notes_stop(void);
/* The notes schema's name ("" before demo_notes_start()). */
const char *demo_notes_schema(void);
/* GET/HEAD/POST /notes/ (GUEST_ALLOW; GET takes ?before=<note id> for
 * older pages) and POST /notes/delete/. */
void demo_notes(guest_req *req, void *userdata);
void demo_notes_delete(guest_req *req, void *userdata);

#endif

/* The demo application: routes shared by every server front end. */
#ifndef GUESTUSER_DEMO_H
#define GUESTUSER_DEMO_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <guestuser/guestuser.h>

/* Most --oidc flags one run takes. */
#define DEMO_OIDC_MAX 16

/* One --oidc NAME,ISSUER_URL,CLIENT_ID,CLIENT_SECRET_FILE. */
typedef struct demo_oidc_provider {
    char *spec; /* a copy of the flag's value, cut at the commas */
    const char *name, *issuer, *client_id; /* point into spec */
    char *secret; /* the file's text without the blanks around it */
} demo_oidc_provider;

typedef struct demo_options {
    guest_config cfg;
    const char *bind;
    uint16_t port;
    const char *server; /* "mhd" or "civetweb" */
    /* Server limits; -1: the adapter's default. */
    long max_connections;  /* mhd */
    long max_conns_per_ip; /* mhd */
    long header_timeout;   /* seconds, both */
    long threads;          /* civetweb, evhttp, mhd event mode */
    const char *mhd_mode;  /* "event", "threads" or NULL: the default */
    /* storage for repeated --blocked-agent flags */
    const char *agents[64];
    int nagents;
    /* the notes application (--notes-max) */
    unsigned notes_max;
    /* keys read by --secret-key-file (cfg.secret_keys points here) */
    char **secret_keys;
    /* the token read by --metrics-token-file, or NULL */
    char *metrics_token;
    /* --public-url, or NULL: http://BIND:PORT as bound */
    const char *public_url;
    /* the --oidc flags, in order; each secret read from its file */
    demo_oidc_provider oidc[DEMO_OIDC_MAX];
    int noidc;
    /* --smtp-url (NULL: no sender in this process), its
     * --smtp-credentials-file and --smtp-starttls (0 required, 1 optional,
     * 2 off: guest_smtp_starttls) */
    const char *smtp_url;
    const char *smtp_credentials_file;
    int smtp_starttls;
} demo_options;

/* Parses argv into @p o (config defaults first). Returns 0 to run, 1 after
 * printing --help (exit 0), -1 on a usage error (already printed). Release
 * @p o with demo_options_free() whatever it returned. */
int demo_parse_args(demo_options *o, int argc, char **argv);
void demo_usage(FILE *out, const char *argv0);
/* Wipes and frees what demo_parse_args() loaded (the secret keys, the
 * metrics token, the --oidc values and client secrets): after
 * guest_ctx_new(), demo_metrics_set_token() and demo_oidc_start(), which
 * copy them. */
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

/* oidc.c: "Continue with NAME" through the --oidc providers, when the demo
 * is built with libguestuser-oidc (GUESTUSER_DEMO_OIDC); without it these
 * do nothing and the routes are not mounted. */
/* Whether this build has libguestuser-oidc. */
bool demo_oidc_built(void);
/* Makes the providers' registry of @p o's --oidc flags for @p ctx, with
 * @p public_url as the site's external base URL; nothing when there are
 * none. Returns 0, or -1 with a message in @p err. Call once; the views
 * use it from then on. */
int demo_oidc_start(guest_ctx *ctx, const demo_options *o,
                    const char *public_url, char *err, size_t errsize);
/* Releases it; call once no request is in flight. */
void demo_oidc_stop(void);
/* Whether demo_oidc_start() configured at least one provider. */
bool demo_oidc_enabled(void);
/* /accounts/oidc/NAME/login/ and /accounts/oidc/NAME/callback/, and
 * /accounts/identities/: the component's views with the registry; 404
 * without one. */
void demo_oidc_routes(guest_req *req, void *userdata);
void demo_identities(guest_req *req, void *userdata);
/* The "Continue with NAME" buttons for a page that carries @p next (may
 * be NULL); nothing without providers. */
void demo_oidc_buttons(guest_req *req, const char *next);

/* mail.c: the outbox's sender through --smtp-url, when the demo is built
 * with libguestuser-mail (GUESTUSER_DEMO_MAIL); without it --smtp-url is
 * refused. */
/* Whether this build has libguestuser-mail. */
bool demo_mail_built(void);
/* Starts a guest_mail_sender delivering @p ctx's outbox to @p o's
 * --smtp-url; nothing without one. Returns 0, or -1 with a message in
 * @p err. */
int demo_mail_start(guest_ctx *ctx, const demo_options *o, char *err,
                    size_t errsize);
/* Stops it (before guest_ctx_free()); nothing when not started. */
void demo_mail_stop(void);

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

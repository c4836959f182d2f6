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
    /* storage for repeated --blocked-agent flags */
    const char *agents[64];
    int nagents;
} demo_options;

/* Parses argv into @p o (config defaults first). Returns 0 to run, 1 after
 * printing --help (exit 0), -1 on a usage error (already printed). */
int demo_parse_args(demo_options *o, int argc, char **argv);
void demo_usage(FILE *out, const char *argv0);

/* The demo's route table ({NULL} terminated), for guest_routes_handler. */
const guest_route *demo_routes(void);

/* The handler servers run: dispatches on demo_routes() and logs one line
 * per request to stderr. */
void demo_handler(guest_req *req, void *userdata);

/* account_routes.c (issue 3): the home page and the profile page; the
 * convert, login and logout pages are the library's own handlers. */
void demo_home(guest_req *req, void *userdata);
void demo_profile(guest_req *req, void *userdata);
/* "all", "none" or a comma list of min-length, numeric, similarity, common
 * into GUEST_PW_CHECK_* bits; 0, or -1 for an unknown word. */
int demo_parse_password_checks(const char *list, unsigned *checks);

#endif

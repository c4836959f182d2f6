/* Included before every documentation snippet that is not a whole program
 * (see tests/check-snippets.sh): the headers an application using the
 * snippet would include, and the names the snippets use without declaring
 * them -- the request, context and configuration in hand, and the
 * application's own functions that the text only mentions. */
#define _GNU_SOURCE /* strcasestr */
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include <guestuser/guestuser.h>
#if __has_include(<civetweb.h>)
#include <guestuser/adapters/civetweb.h>
#endif
#if __has_include(<microhttpd.h>)
#include <guestuser/adapters/mhd.h>
#endif
#if __has_include(<ulfius.h>)
#include <guestuser/adapters/ulfius.h>
#endif
#if __has_include(<event2/http.h>)
#include <guestuser/adapters/evhttp.h>
#endif

/* What a handler or a setup function has at hand. */
extern guest_ctx *ctx;
extern guest_req *req;
extern guest_config cfg;
extern guest_error err;
extern guest_status st;
extern guest_mhd *app;
extern guest_form *form;
extern guest_form_errors errors;
extern const guest_user *user;
extern void *userdata;
extern guest_handler_fn handler;
extern const char *username, *password, *password1, *password2, *url;
extern const char *anon_url, *user_url, *login_url, *convert_url, *field_name;
extern struct mg_context *mg_ctx;
extern unsigned int flags;
extern uint16_t port;

/* The application's own code, named by the text. */
struct mailer;
extern struct mailer my_mailer;
extern void *my_app;
void mailer_queue_welcome(struct mailer *m, int64_t id, const char *name);
void log_signup_source(int64_t id, const char *source);
void show_login_form(guest_req *req, const char *username,
                     const guest_form_errors *errors);
void show_error(const char *field, const char *message);
void show_password_form(guest_req *req, const guest_form_errors *errors);
void save_nickname(guest_req *req, const char *nickname);
void home(guest_req *req, void *userdata);
void notes(guest_req *req, void *userdata);
void files(guest_req *req, void *userdata);

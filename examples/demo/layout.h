/* The demo's page frame: one stylesheet and a top bar that says who the
 * visitor is, shared by the notes and the account pages. */
#ifndef GUESTUSER_DEMO_LAYOUT_H
#define GUESTUSER_DEMO_LAYOUT_H

#include <guestuser/guestuser.h>

/* Sets @p status, the HTML and no-store headers, then writes the document
 * head (viewport meta, stylesheet) and the top bar: the site name, Notes,
 * and for a guest their name with "Sign up" and "Log in", for a registered
 * user their name and a "Log out" button (POST with the CSRF token), for
 * anyone else "Log in". Opens <main> with @p title as its heading, and
 * tells a guest in how many days the guest account expires. An anonymous
 * visitor gets no cookie from it. */
void demo_page_start(guest_req *req, int status, const char *title);

/* Options for the library's convert and login handlers: their built-in
 * forms framed in this layout. */
extern const guest_views demo_views;

/* Adds a response header; when the server cannot take it, the answer
 * becomes a 500 (an unchecked failure would send the page without it). */
void demo_header(guest_req *req, const char *name, const char *value);

/* A 302 to @p location, or a 500 page when it cannot be set. */
void demo_redirect(guest_req *req, const char *location);

/* The visitor, or NULL when anonymous or when the lookup failed. */
const guest_user *demo_current_user(guest_req *req);

/* Closes what demo_page_start() opened. */
void demo_page_end(guest_req *req);

/* A whole page with one message (plain text, escaped) and a link to @p back
 * (NULL: none) labelled @p back_label. */
void demo_message_page(guest_req *req, int status, const char *title,
                       const char *message, const char *back,
                       const char *back_label);

#endif

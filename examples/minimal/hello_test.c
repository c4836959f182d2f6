/* A test of the minimal example's site (hello.c) through the test client
 * of guestuser/testing.h: the same hello_handler the servers run, called
 * in this process with a cookie jar, no port and no server library.
 * GUESTUSER_DB=... [GUESTUSER_SCHEMA=...] hello-test; exit status 0 when
 * every check holds. Guide: docs/testing-your-app.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <guestuser/testing.h>

#include "hello.h"

/* assert() is gone under NDEBUG (CMake's Release builds): a check of
 * our own that always runs. */
#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__,   \
                    #cond);                                                    \
            exit(1);                                                           \
        }                                                                      \
    } while (0)

/* True when @p text (which may be NULL) contains @p part. */
static int has(const char *text, const char *part)
{
    return text && strstr(text, part);
}

/* GETs @p target and checks the status; the response, to free. */
static guest_test_response *get(guest_test_client *client, const char *target,
                                int status)
{
    guest_test_response *res = NULL;
    CHECK(guest_test_get(client, target, &res) == GUEST_OK);
    CHECK(guest_test_response_status(res) == status);
    return res;
}

int main(int argc, char **argv)
{
    (void)argc;
    uint16_t port;
    guest_ctx *ctx = hello_start(1, argv, &port);
    if (!ctx)
        return 1;
    guest_test_client *client = NULL;
    CHECK(guest_test_client_new(ctx, hello_handler, NULL, &client) == GUEST_OK);

    /* A stranger is not let into the guests' page, and stays no one. */
    guest_test_response *res = get(client, "/guest/", 302);
    CHECK(has(guest_test_response_header(res, "Location"), "/accounts/login/"));
    guest_test_response_free(res);
    CHECK(guest_test_client_cookie(client, "sessionid") == NULL);

    /* The home page makes the visitor a guest; the jar keeps its cookie. */
    res = get(client, "/", 200);
    const char *body = guest_test_response_body(res, NULL);
    CHECK(strncmp(body, "Hello, ", 7) == 0);
    char greeting[128];
    snprintf(greeting, sizeof greeting, "%s", body);
    guest_test_response_free(res);
    CHECK(guest_test_client_cookie(client, "sessionid") != NULL);

    /* The same guest on the next visit, let into the guests' page and sent
     * to sign up for the account page. */
    res = get(client, "/", 200);
    CHECK(strcmp(guest_test_response_body(res, NULL), greeting) == 0);
    guest_test_response_free(res);
    res = get(client, "/guest/", 200);
    CHECK(strcmp(guest_test_response_body(res, NULL), "You are a guest.\n") ==
          0);
    guest_test_response_free(res);
    res = get(client, "/account/", 302);
    CHECK(has(guest_test_response_header(res, "Location"), "/convert/"));
    guest_test_response_free(res);

    /* Unknown pages and methods, from the route table. */
    guest_test_response_free(get(client, "/nowhere", 404));
    CHECK(guest_test_request(client, "DELETE", "/", NULL, NULL, 0, &res) ==
          GUEST_OK);
    CHECK(guest_test_response_status(res) == 405);
    guest_test_response_free(res);

    guest_test_client_free(client);
    guest_ctx_free(ctx);
    printf("hello-test: all checks passed\n");
    return 0;
}

/* The OIDC fixture works from C: both providers answer their discovery
 * documents, the real one's flow completes for alice through
 * oidc_browser_login and its code buys an ID token, and the hostile one's
 * `good` mode signs with RS256 and echoes the nonce. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <jansson.h>

#include "oidc_browser.h"
#include "oidc_env.h"

/* RFC 7636's code verifier, and its S256 challenge. */
#define VERIFIER "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
#define CHALLENGE "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
#define REDIRECT "http://127.0.0.1:9/accounts/oidc/test/callback/"
#define REDIRECT_ENC                                                           \
    "http%3A%2F%2F127.0.0.1%3A9%2Faccounts%2Foidc%2Ftest%2Fcallback%2F"

static const char *env(const char *key)
{
    const char *v = oidc_env(key);
    ck_assert_msg(v, "%s missing from %s", key, oidc_env_file());
    return v;
}

/* The discovery document of ISSUER, whose "issuer" must be ISSUER. */
static json_t *discovery(const char *issuer)
{
    char url[512], *body = NULL;
    snprintf(url, sizeof url, "%s/.well-known/openid-configuration", issuer);
    long status = oidc_http_get(url, &body);
    ck_assert_int_eq(status, 200);
    json_error_t err;
    json_t *doc = json_loads(body, 0, &err);
    ck_assert_msg(doc, "%s: %s", url, err.text);
    free(body);
    ck_assert_str_eq(json_string_value(json_object_get(doc, "issuer")), issuer);
    return doc;
}

static const char *doc_str(json_t *doc, const char *key)
{
    const char *v = json_string_value(json_object_get(doc, key));
    ck_assert_msg(v, "no %s in the discovery document", key);
    return v;
}

static void authorize_url(char *out, size_t size, json_t *doc,
                          const char *client_id, const char *state,
                          const char *nonce)
{
    int n = snprintf(out, size,
                     "%s?response_type=code&client_id=%s&redirect_uri=%s"
                     "&scope=openid%%20email%%20profile&state=%s&nonce=%s"
                     "&code_challenge=%s&code_challenge_method=S256",
                     doc_str(doc, "authorization_endpoint"), client_id,
                     REDIRECT_ENC, state, nonce, CHALLENGE);
    ck_assert(n > 0 && (size_t)n < size);
}

/* One part (0: header, 1: payload) of a compact JWS, decoded as JSON. */
static json_t *jwt_part(const char *jwt, int part)
{
    const char *p = jwt;
    for (int i = 0; i < part; i++) {
        p = strchr(p, '.');
        ck_assert_ptr_nonnull(p);
        p++;
    }
    size_t len = strcspn(p, ".");
    char *json = calloc(1, len + 1);
    ck_assert_ptr_nonnull(json);
    unsigned acc = 0;
    int bits = 0;
    size_t out = 0;
    for (size_t i = 0; i < len; i++) {
        const char *alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstu"
                               "vwxyz0123456789-_";
        const char *at = strchr(alphabet, p[i]);
        ck_assert_msg(at && p[i], "not base64url: %c", p[i]);
        acc = (acc << 6) | (unsigned)(at - alphabet);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            json[out++] = (char)((acc >> bits) & 0xff);
        }
    }
    json_error_t err;
    json_t *v = json_loads(json, 0, &err);
    ck_assert_msg(v, "JWT part %d is not JSON: %s", part, err.text);
    free(json);
    return v;
}

/* Redeems the code of CALLBACK at DOC's token endpoint; returns the
 * response's id_token (to free). */
static char *redeem(json_t *doc, const char *callback, const char *client_id,
                    const char *secret)
{
    char code[256], form[1024], *body = NULL;
    ck_assert_ptr_nonnull(oidc_url_param(callback, "code", code, sizeof code));
    snprintf(form, sizeof form,
             "grant_type=authorization_code&code=%s&redirect_uri=%s"
             "&code_verifier=%s",
             code, REDIRECT_ENC, VERIFIER);
    long status = oidc_http_post_form(doc_str(doc, "token_endpoint"), form,
                                      client_id, secret, &body);
    ck_assert_msg(status == 200, "token endpoint: %ld %s", status, body);
    json_t *res = json_loads(body, 0, NULL);
    ck_assert_ptr_nonnull(res);
    const char *id_token = json_string_value(json_object_get(res, "id_token"));
    ck_assert_msg(id_token, "no id_token in %s", body);
    char *copy = strdup(id_token);
    json_decref(res);
    free(body);
    return copy;
}

START_TEST(discovery_of_both_providers_answers)
{
    json_t *real = discovery(env("OIDC_ISSUER"));
    ck_assert_ptr_nonnull(json_object_get(real, "jwks_uri"));
    json_decref(real);
    char issuer[512];
    ck_assert_ptr_nonnull(
        oidc_hostile_issuer("good", NULL, issuer, sizeof issuer));
    json_t *good = discovery(issuer);
    json_decref(good);
    /* a tagged issuer is an issuer of its own */
    ck_assert_ptr_nonnull(
        oidc_hostile_issuer("wrong-aud", "t1", issuer, sizeof issuer));
    json_decref(discovery(issuer));
}
END_TEST

START_TEST(real_provider_flow_completes_for_alice)
{
    const char *issuer = env("OIDC_ISSUER");
    json_t *doc = discovery(issuer);
    char url[2048], callback[2048], value[512];
    authorize_url(url, sizeof url, doc, env("OIDC_CLIENT_ID"), "st-alice",
                  "n-alice");
    ck_assert_int_eq(
        oidc_browser_login(url, "alice", callback, sizeof callback), 0);
    ck_assert_msg(strncmp(callback, REDIRECT "?", strlen(REDIRECT) + 1) == 0,
                  "callback %s", callback);
    ck_assert_ptr_nonnull(
        oidc_url_param(callback, "code", value, sizeof value));
    ck_assert_ptr_nonnull(
        oidc_url_param(callback, "state", value, sizeof value));
    ck_assert_str_eq(value, "st-alice");
    ck_assert_ptr_nonnull(oidc_url_param(callback, "iss", value, sizeof value));
    ck_assert_str_eq(value, issuer);

    char *id_token =
        redeem(doc, callback, env("OIDC_CLIENT_ID"), env("OIDC_CLIENT_SECRET"));
    json_t *payload = jwt_part(id_token, 1);
    ck_assert_str_eq(json_string_value(json_object_get(payload, "sub")),
                     env("OIDC_SUB_ALICE"));
    ck_assert_str_eq(json_string_value(json_object_get(payload, "nonce")),
                     "n-alice");
    ck_assert_str_eq(json_string_value(json_object_get(payload, "email")),
                     "alice@example.com");
    json_decref(payload);
    free(id_token);
    json_decref(doc);
}
END_TEST

START_TEST(real_provider_cancel_is_access_denied)
{
    json_t *doc = discovery(env("OIDC_ISSUER"));
    char url[2048], callback[2048], value[256];
    authorize_url(url, sizeof url, doc, env("OIDC_CLIENT_ID"), "st-deny", "n");
    ck_assert_int_eq(oidc_browser_deny(url, callback, sizeof callback), 0);
    ck_assert_ptr_nonnull(
        oidc_url_param(callback, "error", value, sizeof value));
    ck_assert_str_eq(value, "access_denied");
    ck_assert_ptr_nonnull(
        oidc_url_param(callback, "state", value, sizeof value));
    ck_assert_str_eq(value, "st-deny");
    /* an unknown test user is no success */
    authorize_url(url, sizeof url, doc, env("OIDC_CLIENT_ID"), "s", "n");
    ck_assert_int_eq(
        oidc_browser_login(url, "nobody", callback, sizeof callback), -1);
    json_decref(doc);
}
END_TEST

START_TEST(hostile_good_mode_signs_rs256)
{
    char issuer[512];
    ck_assert_ptr_nonnull(
        oidc_hostile_issuer("good", "fixture", issuer, sizeof issuer));
    json_t *doc = discovery(issuer);
    char url[2048], callback[2048], value[512];
    authorize_url(url, sizeof url, doc, env("HOSTILE_CLIENT_ID"), "st-h",
                  "n-hostile");
    ck_assert_int_eq(
        oidc_browser_login(url, "alice", callback, sizeof callback), 0);
    ck_assert_ptr_nonnull(oidc_url_param(callback, "iss", value, sizeof value));
    ck_assert_str_eq(value, issuer);
    char *id_token = redeem(doc, callback, env("HOSTILE_CLIENT_ID"),
                            env("HOSTILE_CLIENT_SECRET"));
    json_t *header = jwt_part(id_token, 0);
    ck_assert_str_eq(json_string_value(json_object_get(header, "alg")),
                     "RS256");
    json_t *payload = jwt_part(id_token, 1);
    ck_assert_str_eq(json_string_value(json_object_get(payload, "iss")),
                     issuer);
    ck_assert_str_eq(json_string_value(json_object_get(payload, "aud")),
                     env("HOSTILE_CLIENT_ID"));
    ck_assert_str_eq(json_string_value(json_object_get(payload, "nonce")),
                     "n-hostile");
    json_decref(header);
    json_decref(payload);
    free(id_token);

    /* the code was counted, and is single-use */
    char stats_url[600], *body = NULL;
    snprintf(stats_url, sizeof stats_url, "%s/stats", issuer);
    ck_assert_int_eq(oidc_http_get(stats_url, &body), 200);
    json_t *stats = json_loads(body, 0, NULL);
    ck_assert_ptr_nonnull(stats);
    ck_assert_int_ge(
        json_integer_value(json_object_get(stats, "codes_redeemed")), 1);
    json_decref(stats);
    free(body);
    json_decref(doc);
}
END_TEST

START_TEST(hostile_alg_none_and_access_denied)
{
    char issuer[512], url[2048], callback[2048], value[256];
    ck_assert_ptr_nonnull(
        oidc_hostile_issuer("alg-none", NULL, issuer, sizeof issuer));
    json_t *doc = discovery(issuer);
    authorize_url(url, sizeof url, doc, env("HOSTILE_CLIENT_ID"), "s1", "n1");
    ck_assert_int_eq(oidc_browser_login(url, "x", callback, sizeof callback),
                     0);
    char *id_token = redeem(doc, callback, env("HOSTILE_CLIENT_ID"),
                            env("HOSTILE_CLIENT_SECRET"));
    json_t *header = jwt_part(id_token, 0);
    ck_assert_str_eq(json_string_value(json_object_get(header, "alg")), "none");
    ck_assert(id_token[strlen(id_token) - 1] == '.'); /* no signature */
    json_decref(header);
    free(id_token);
    json_decref(doc);

    ck_assert_ptr_nonnull(oidc_hostile_issuer("error-access-denied", NULL,
                                              issuer, sizeof issuer));
    doc = discovery(issuer);
    authorize_url(url, sizeof url, doc, env("HOSTILE_CLIENT_ID"), "s2", "n2");
    ck_assert_int_eq(oidc_browser_login(url, "x", callback, sizeof callback),
                     0);
    ck_assert_ptr_nonnull(
        oidc_url_param(callback, "error", value, sizeof value));
    ck_assert_str_eq(value, "access_denied");
    ck_assert_ptr_nonnull(
        oidc_url_param(callback, "state", value, sizeof value));
    ck_assert_str_eq(value, "s2");
    json_decref(doc);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("oidc_fixture");
    TCase *tc = tcase_create("fixture");
    tcase_add_test(tc, discovery_of_both_providers_answers);
    tcase_add_test(tc, real_provider_flow_completes_for_alice);
    tcase_add_test(tc, real_provider_cancel_is_access_denied);
    tcase_add_test(tc, hostile_good_mode_signs_rs256);
    tcase_add_test(tc, hostile_alg_none_and_access_denied);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

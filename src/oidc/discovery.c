/* A provider's discovery document and signing keys, fetched on first use
 * and kept. The network is never waited on under the lock: two threads
 * may fetch at once, and the first result stored wins. */
#include <stdlib.h>
#include <string.h>

#include "oidc/oidc.h"

/* Most keys kept from one JWKS; a provider publishes a handful. */
#define MAX_KEYS 64

static const char *str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

static bool array_has(const json_t *arr, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        if (json_is_string(v) && !strcmp(json_string_value(v), s))
            return true;
    }
    return false;
}

guest__oidc_fault guest__oidc_discover(guest_oidc *o, guest__oidc_provider *p,
                                       guest__oidc_why *why)
{
    pthread_mutex_lock(&o->mu);
    bool known = p->discovered;
    pthread_mutex_unlock(&o->mu);
    if (known)
        return GUEST__OIDC_OK;

    /* OpenID Connect Discovery 1.0, 4.1: a trailing '/' of the issuer is
     * dropped before the well-known path is added. */
    size_t n = strlen(p->issuer);
    while (n > 0 && p->issuer[n - 1] == '/')
        n--;
    static const char well_known[] = "/.well-known/openid-configuration";
    char *url = malloc(n + sizeof well_known);
    if (!url)
        return guest__oidc_fail(why, GUEST__OIDC_INTERNAL, "nomem",
                                "out of memory");
    memcpy(url, p->issuer, n);
    memcpy(url + n, well_known, sizeof well_known);
    guest__oidc_response res;
    guest__oidc_fault f = guest__oidc_http(o, url, NULL, NULL, NULL, &res, why);
    if (f != GUEST__OIDC_OK) {
        free(url);
        return f;
    }
    json_t *doc = res.status == 200 ? guest__oidc_json(&res) : NULL;
    const char *auth = str(doc, "authorization_endpoint");
    const char *token = str(doc, "token_endpoint");
    const char *jwks = str(doc, "jwks_uri");
    const json_t *methods =
        json_object_get(doc, "token_endpoint_auth_methods_supported");
    if (!doc) {
        f = guest__oidc_fail(why, GUEST__OIDC_UPSTREAM, "discovery",
                             "%s: HTTP %ld, not a JSON object", url,
                             res.status);
    } else if (!str(doc, "issuer") ||
               strcmp(str(doc, "issuer"), p->issuer) != 0) {
        /* Discovery 4.3: an issuer other than the one configured means the
         * document is not that provider's. */
        f = guest__oidc_fail(why, GUEST__OIDC_UPSTREAM, "discovery",
                             "%s names issuer \"%.80s\", not %s", url,
                             str(doc, "issuer") ? str(doc, "issuer") : "",
                             p->issuer);
    } else if (!guest__oidc_url_ok(auth, false) ||
               !guest__oidc_url_ok(token, false) ||
               !guest__oidc_url_ok(jwks, false)) {
        f = guest__oidc_fail(why, GUEST__OIDC_UPSTREAM, "discovery",
                             "%s: an endpoint is missing or not https", url);
    } else if (methods && !array_has(methods, "client_secret_basic") &&
               !array_has(methods, "client_secret_post")) {
        f = guest__oidc_fail(why, GUEST__OIDC_UPSTREAM, "discovery",
                             "%s offers neither client_secret_basic nor "
                             "client_secret_post",
                             url);
    } else {
        char *a = strdup(auth), *t = strdup(token), *j = strdup(jwks);
        if (!a || !t || !j) {
            free(a);
            free(t);
            free(j);
            f = guest__oidc_fail(why, GUEST__OIDC_INTERNAL, "nomem",
                                 "out of memory");
        } else {
            pthread_mutex_lock(&o->mu);
            if (p->discovered) {
                free(a);
                free(t);
                free(j);
            } else {
                p->authorization_endpoint = a;
                p->token_endpoint = t;
                p->jwks_uri = j;
                /* Basic when offered (also when the list is absent: its
                 * default); post only when it is all there is. */
                p->auth_post =
                    methods && !array_has(methods, "client_secret_basic");
                p->iss_required = json_is_true(json_object_get(
                    doc, "authorization_response_iss_parameter_supported"));
                p->discovered = true;
            }
            pthread_mutex_unlock(&o->mu);
        }
    }
    json_decref(doc);
    guest__oidc_response_free(&res);
    free(url);
    return f;
}

void guest__oidc_jwks_free(guest__oidc_jwks *k)
{
    if (!k)
        return;
    for (size_t i = 0; i < k->count; i++) {
        cjose_jwk_release(k->keys[i]);
        free(k->algs[i]);
    }
    free(k->keys);
    free(k->algs);
    free(k);
}

void guest__oidc_jwks_release(guest_oidc *o, guest__oidc_jwks *k)
{
    if (!k)
        return;
    pthread_mutex_lock(&o->mu);
    bool last = --k->refs == 0;
    pthread_mutex_unlock(&o->mu);
    if (last)
        guest__oidc_jwks_free(k);
}

/* The signature keys of a JWKS document; keys for encryption, of other
 * types or that cjose cannot read are left out. */
static guest__oidc_jwks *parse_jwks(const json_t *doc)
{
    const json_t *keys = json_object_get(doc, "keys");
    if (!json_is_array(keys))
        return NULL;
    guest__oidc_jwks *k = calloc(1, sizeof *k);
    if (!k)
        return NULL;
    /* An array of cjose's key handles, not of keys. */
    k->keys = calloc(MAX_KEYS, sizeof(cjose_jwk_t *));
    k->algs = calloc(MAX_KEYS, sizeof *k->algs);
    if (!k->keys || !k->algs) {
        guest__oidc_jwks_free(k);
        return NULL;
    }
    size_t i;
    json_t *key;
    json_array_foreach(keys, i, key)
    {
        if (k->count == MAX_KEYS)
            break;
        const char *kty = str(key, "kty"), *use = str(key, "use");
        if (!kty || (strcmp(kty, "RSA") != 0 && strcmp(kty, "EC") != 0) ||
            (use && strcmp(use, "sig") != 0))
            continue;
        char *text = json_dumps(key, JSON_COMPACT);
        cjose_jwk_t *jwk =
            text ? cjose_jwk_import(text, strlen(text), NULL) : NULL;
        free(text);
        if (!jwk)
            continue;
        const char *alg = str(key, "alg");
        k->algs[k->count] = alg ? strdup(alg) : NULL;
        k->keys[k->count++] = jwk;
    }
    return k;
}

guest__oidc_fault guest__oidc_jwks_get(guest_oidc *o, guest__oidc_provider *p,
                                       bool refresh, guest__oidc_jwks **out,
                                       guest__oidc_why *why)
{
    *out = NULL;
    int64_t now = guest__oidc_now_ms();
    pthread_mutex_lock(&o->mu);
    const char *uri = p->jwks_uri;
    bool fetch = !p->jwks || (refresh && (p->jwks_refetched_ms == 0 ||
                                          now - p->jwks_refetched_ms >=
                                              GUEST__OIDC_JWKS_REFETCH_MS));
    if (!fetch) {
        p->jwks->refs++;
        *out = p->jwks;
        pthread_mutex_unlock(&o->mu);
        return GUEST__OIDC_OK;
    }
    /* Counted from the attempt, so a stream of tokens with unknown kids,
     * or a provider that fails, costs one fetch a minute. A rotation right
     * after the first fetch still gets its refetch: that one is not
     * counted. */
    if (p->jwks)
        p->jwks_refetched_ms = now;
    pthread_mutex_unlock(&o->mu);
    guest__oidc_response res;
    guest__oidc_fault f = guest__oidc_http(o, uri, NULL, NULL, NULL, &res, why);
    if (f != GUEST__OIDC_OK)
        return f;
    json_t *doc = res.status == 200 ? guest__oidc_json(&res) : NULL;
    guest__oidc_jwks *k = doc ? parse_jwks(doc) : NULL;
    json_decref(doc);
    guest__oidc_response_free(&res);
    if (!k)
        return guest__oidc_fail(why, GUEST__OIDC_UPSTREAM, "jwks",
                                "%s: HTTP %ld, no JWKS", uri, res.status);
    pthread_mutex_lock(&o->mu);
    guest__oidc_jwks *old = p->jwks;
    p->jwks = k;
    k->refs = 2; /* the provider's and the caller's */
    bool free_old = old && --old->refs == 0;
    pthread_mutex_unlock(&o->mu);
    if (free_old)
        guest__oidc_jwks_free(old);
    *out = k;
    return GUEST__OIDC_OK;
}

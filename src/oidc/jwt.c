/* The ID token's checks (OpenID Connect Core 3.1.3.7): its signature by
 * cjose with a key of the provider's JWKS, then its claims. Only
 * asymmetric algorithms are accepted, each with its own key type, so a
 * public key can never serve as an HMAC secret and "none" never passes. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "oidc/oidc.h"

/* Whether @p jwk may check a signature made with @p alg. */
static bool key_fits(const char *alg, const cjose_jwk_t *jwk,
                     const char *key_alg)
{
    if (key_alg && strcmp(key_alg, alg) != 0)
        return false;
    cjose_jwk_kty_t kty = cjose_jwk_get_kty(jwk, NULL);
    if (!strcmp(alg, "RS256") || !strcmp(alg, "PS256"))
        return kty == CJOSE_JWK_KTY_RSA &&
               cjose_jwk_get_keysize(jwk, NULL) >= 2048;
    if (!strcmp(alg, "ES256"))
        return kty == CJOSE_JWK_KTY_EC &&
               cjose_jwk_EC_get_curve(jwk, NULL) == CJOSE_JWK_EC_P_256;
    return false;
}

/* The key for @p kid (NULL: the token names none, and then exactly one
 * key of the right type may be there: Core 10.1). */
static const cjose_jwk_t *find_key(const guest__oidc_jwks *k, const char *alg,
                                   const char *kid)
{
    const cjose_jwk_t *found = NULL;
    for (size_t i = 0; i < k->count; i++) {
        if (!key_fits(alg, k->keys[i], k->algs[i]))
            continue;
        const char *key_kid = cjose_jwk_get_kid(k->keys[i], NULL);
        if (kid) {
            if (key_kid && !strcmp(key_kid, kid))
                return k->keys[i];
            continue;
        }
        if (found)
            return NULL;
        found = k->keys[i];
    }
    return found;
}

static const char *str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

guest__oidc_fault guest__oidc_check_claims(const guest__oidc_provider *p,
                                           const json_t *claims,
                                           const char *nonce, int64_t now,
                                           guest__oidc_why *why)
{
    const char *iss = str(claims, "iss");
    if (!iss || strcmp(iss, p->issuer) != 0)
        return guest__oidc_fail(why, GUEST__OIDC_REFUSED, "token-iss",
                                "ID token iss \"%.80s\" is not %s",
                                iss ? iss : "", p->issuer);
    const json_t *aud = json_object_get(claims, "aud");
    bool ours = false;
    size_t audiences = 0;
    if (json_is_string(aud)) {
        audiences = 1;
        ours = !strcmp(json_string_value(aud), p->client_id);
    } else if (json_is_array(aud)) {
        size_t i;
        json_t *a;
        json_array_foreach(aud, i, a)
        {
            audiences++;
            if (json_is_string(a) &&
                !strcmp(json_string_value(a), p->client_id))
                ours = true;
        }
    }
    if (!ours)
        return guest__oidc_fail(why, GUEST__OIDC_REFUSED, "token-aud",
                                "ID token aud does not hold client id %s",
                                p->client_id);
    const char *azp = str(claims, "azp");
    if ((audiences > 1 || json_object_get(claims, "azp")) &&
        (!azp || strcmp(azp, p->client_id) != 0))
        return guest__oidc_fail(why, GUEST__OIDC_REFUSED, "token-azp",
                                "ID token azp \"%.80s\" is not %s",
                                azp ? azp : "", p->client_id);
    const json_t *exp = json_object_get(claims, "exp");
    const json_t *iat = json_object_get(claims, "iat");
    if (!json_is_number(exp) || !json_is_number(iat))
        return guest__oidc_fail(why, GUEST__OIDC_REFUSED, "token-time",
                                "ID token without numeric exp and iat");
    if (json_number_value(exp) + GUEST__OIDC_SKEW <= (double)now)
        return guest__oidc_fail(why, GUEST__OIDC_REFUSED, "token-time",
                                "ID token expired (exp %.0f, now %lld)",
                                json_number_value(exp), (long long)now);
    if (json_number_value(iat) > (double)(now + GUEST__OIDC_SKEW))
        return guest__oidc_fail(why, GUEST__OIDC_REFUSED, "token-time",
                                "ID token issued in the future (iat %.0f, "
                                "now %lld)",
                                json_number_value(iat), (long long)now);
    const char *got = str(claims, "nonce");
    if (!got || strcmp(got, nonce) != 0)
        return guest__oidc_fail(why, GUEST__OIDC_REFUSED, "token-nonce",
                                "ID token nonce does not match the flow's");
    const char *sub = str(claims, "sub");
    if (!sub || !*sub || strlen(sub) > 255)
        return guest__oidc_fail(why, GUEST__OIDC_REFUSED, "token-sub",
                                "ID token without a usable sub");
    return GUEST__OIDC_OK;
}

guest__oidc_fault guest__oidc_verify(guest_oidc *o, guest__oidc_provider *p,
                                     const char *id_token, const char *nonce,
                                     json_t **claims, guest__oidc_why *why)
{
    *claims = NULL;
    guest__oidc_fault f;
    guest__oidc_jwks *keys = NULL;
    cjose_jws_t *jws = cjose_jws_import(id_token, strlen(id_token), NULL);
    if (!jws)
        return guest__oidc_fail(why, GUEST__OIDC_REFUSED, "token-form",
                                "the ID token is no compact JWS");
    cjose_header_t *hdr = cjose_jws_get_protected(jws);
    const char *alg = hdr ? cjose_header_get(hdr, CJOSE_HDR_ALG, NULL) : NULL;
    const char *kid = hdr ? cjose_header_get(hdr, CJOSE_HDR_KID, NULL) : NULL;
    if (!alg || (strcmp(alg, "RS256") != 0 && strcmp(alg, "PS256") != 0 &&
                 strcmp(alg, "ES256") != 0)) {
        f = guest__oidc_fail(why, GUEST__OIDC_REFUSED, "token-alg",
                             "ID token alg \"%.20s\" refused (RS256, PS256, "
                             "ES256 only)",
                             alg ? alg : "");
        goto out;
    }
    if (json_object_get((json_t *)hdr, "crit")) {
        /* RFC 7515 4.1.11: extensions we do not know must fail. */
        f = guest__oidc_fail(why, GUEST__OIDC_REFUSED, "token-crit",
                             "ID token header has crit");
        goto out;
    }
    f = guest__oidc_jwks_get(o, p, false, &keys, why);
    if (f != GUEST__OIDC_OK)
        goto out;
    const cjose_jwk_t *key = find_key(keys, alg, kid);
    if (!key && kid) {
        /* A kid we have not seen: the provider may have rotated its keys. */
        guest__oidc_jwks_release(o, keys);
        keys = NULL;
        f = guest__oidc_jwks_get(o, p, true, &keys, why);
        if (f != GUEST__OIDC_OK)
            goto out;
        key = find_key(keys, alg, kid);
    }
    if (!key) {
        f = guest__oidc_fail(why, GUEST__OIDC_REFUSED, "token-kid",
                             "no %s key \"%.64s\" in the JWKS", alg,
                             kid ? kid : "(no kid)");
        goto out;
    }
    if (!cjose_jws_verify(jws, key, NULL)) {
        f = guest__oidc_fail(why, GUEST__OIDC_REFUSED, "token-signature",
                             "ID token signature does not verify");
        goto out;
    }
    uint8_t *payload = NULL;
    size_t len = 0;
    if (!cjose_jws_get_plaintext(jws, &payload, &len, NULL) ||
        !(*claims = json_loadb((const char *)payload, len,
                               JSON_REJECT_DUPLICATES, NULL)) ||
        !json_is_object(*claims)) {
        f = guest__oidc_fail(why, GUEST__OIDC_REFUSED, "token-form",
                             "ID token payload is no JSON object");
        goto out;
    }
    f = guest__oidc_check_claims(p, *claims, nonce, (int64_t)time(NULL), why);
out:
    if (f != GUEST__OIDC_OK) {
        json_decref(*claims);
        *claims = NULL;
    }
    guest__oidc_jwks_release(o, keys);
    cjose_jws_release(jws);
    return f;
}

/* One sign-in's round trip: the secrets it starts with, what is kept
 * until the provider sends the browser back, and the code's exchange. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/sha.h>

#include "oidc/oidc.h"

static bool b64url(const uint8_t *in, size_t len, char *out, size_t size)
{
    char *enc = NULL;
    size_t n = 0;
    if (!cjose_base64url_encode(in, len, &enc, &n, NULL))
        return false;
    bool ok = n < size;
    if (ok) {
        memcpy(out, enc, n);
        out[n] = '\0';
    }
    explicit_bzero(enc, n);
    cjose_get_dealloc()(enc);
    return ok;
}

bool guest__oidc_random(char *out, size_t size, size_t bytes)
{
    uint8_t buf[64];
    if (bytes > sizeof buf)
        return false;
    /* getrandom on the kernel's pool: blocks only before it is seeded,
     * never returns short for 64 bytes or fewer. */
    if (getrandom(buf, bytes, 0) != (ssize_t)bytes)
        return false;
    bool ok = b64url(buf, bytes, out, size);
    explicit_bzero(buf, sizeof buf);
    return ok;
}

bool guest__oidc_challenge(const char *verifier, char *out, size_t size)
{
    uint8_t digest[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)verifier, strlen(verifier), digest);
    return b64url(digest, sizeof digest, out, size);
}

char *guest__oidc_flow_encode(const guest__oidc_flow *f)
{
    json_t *j = json_pack("{s:s, s:s, s:s}", "provider", f->provider, "nonce",
                          f->nonce, "verifier", f->verifier);
    if (j && f->next && json_object_set_new(j, "next", json_string(f->next))) {
        json_decref(j);
        return NULL;
    }
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    return text;
}

static char *dup_str(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? strdup(s) : NULL;
}

bool guest__oidc_flow_decode(const char *payload, guest__oidc_flow *f)
{
    memset(f, 0, sizeof *f);
    json_t *j = json_loads(payload, JSON_REJECT_DUPLICATES, NULL);
    if (!j)
        return false;
    f->provider = dup_str(j, "provider");
    f->nonce = dup_str(j, "nonce");
    f->verifier = dup_str(j, "verifier");
    f->next = dup_str(j, "next");
    bool has_next = json_object_get(j, "next") != NULL;
    json_decref(j);
    if (!f->provider || !f->nonce || !f->verifier || (has_next && !f->next)) {
        guest__oidc_flow_clear(f);
        return false;
    }
    return true;
}

void guest__oidc_flow_clear(guest__oidc_flow *f)
{
    free(f->provider);
    free(f->nonce);
    if (f->verifier)
        explicit_bzero(f->verifier, strlen(f->verifier));
    free(f->verifier);
    free(f->next);
    memset(f, 0, sizeof *f);
}

char *guest__oidc_authorize_url(const guest__oidc_provider *p,
                                const char *state, const char *nonce,
                                const char *challenge)
{
    char *cid = guest__oidc_escape(p->client_id);
    char *ruri = guest__oidc_escape(p->redirect_uri);
    char *url = NULL;
    if (cid && ruri) {
        /* The endpoint may carry a query of its own (Core 3.1.2.1). */
        const char *sep = strchr(p->authorization_endpoint, '?') ? "&" : "?";
        const char *fmt =
            "%s%sresponse_type=code&scope=openid%%20email%%20profile"
            "&client_id=%s&redirect_uri=%s&state=%s&nonce=%s"
            "&code_challenge=%s&code_challenge_method=S256";
        int n = snprintf(NULL, 0, fmt, p->authorization_endpoint, sep, cid,
                         ruri, state, nonce, challenge);
        url = n > 0 ? malloc((size_t)n + 1) : NULL;
        if (url)
            snprintf(url, (size_t)n + 1, fmt, p->authorization_endpoint, sep,
                     cid, ruri, state, nonce, challenge);
    }
    free(cid);
    free(ruri);
    return url;
}

guest__oidc_fault guest__oidc_exchange(guest_oidc *o, guest__oidc_provider *p,
                                       const char *code, const char *verifier,
                                       char **id_token, guest__oidc_why *why)
{
    *id_token = NULL;
    char *ecode = guest__oidc_escape(code);
    char *ruri = guest__oidc_escape(p->redirect_uri);
    char *cid = guest__oidc_escape(p->client_id);
    char *csec = guest__oidc_escape(p->client_secret);
    char *form = NULL;
    guest__oidc_fault f = GUEST__OIDC_INTERNAL;
    if (!ecode || !ruri || !cid || !csec) {
        guest__oidc_fail(why, f, "nomem", "out of memory");
        goto out;
    }
    const char *fmt = p->auth_post ? "grant_type=authorization_code&code=%s"
                                     "&redirect_uri=%s&code_verifier=%s"
                                     "&client_id=%s&client_secret=%s"
                                   : "grant_type=authorization_code&code=%s"
                                     "&redirect_uri=%s&code_verifier=%s";
    int n = snprintf(NULL, 0, fmt, ecode, ruri, verifier, cid, csec);
    form = n > 0 ? malloc((size_t)n + 1) : NULL;
    if (!form) {
        guest__oidc_fail(why, f, "nomem", "out of memory");
        goto out;
    }
    snprintf(form, (size_t)n + 1, fmt, ecode, ruri, verifier, cid, csec);
    guest__oidc_response res;
    f = guest__oidc_http(o, p->token_endpoint, form,
                         p->auth_post ? NULL : p->client_id,
                         p->auth_post ? NULL : p->client_secret, &res, why);
    if (f != GUEST__OIDC_OK)
        goto out;
    json_t *doc = guest__oidc_json(&res);
    const char *tok = json_string_value(json_object_get(doc, "id_token"));
    if (res.status >= 400 && res.status < 500) {
        /* invalid_grant and the like: a code used twice, expired, or not
         * for this client; the provider's refusal, not its failure. */
        const char *e = json_string_value(json_object_get(doc, "error"));
        f = guest__oidc_fail(why, GUEST__OIDC_REFUSED, "token-refused",
                             "token endpoint: HTTP %ld %.64s", res.status,
                             e ? e : "");
    } else if (res.status != 200 || !tok) {
        f = guest__oidc_fail(why, GUEST__OIDC_UPSTREAM, "token-answer",
                             "token endpoint: HTTP %ld without an id_token",
                             res.status);
    } else if (!(*id_token = strdup(tok))) {
        f = guest__oidc_fail(why, GUEST__OIDC_INTERNAL, "nomem",
                             "out of memory");
    }
    json_decref(doc);
    guest__oidc_response_free(&res);
out:
    if (csec)
        explicit_bzero(csec, strlen(csec));
    if (form)
        explicit_bzero(form, strlen(form));
    free(ecode);
    free(ruri);
    free(cid);
    free(csec);
    free(form);
    return f;
}

/* libFuzzer target over every parser that reads attacker-controlled bytes:
 * the Cookie header and session token, urlencoded and JSON forms, `next`
 * URLs, the redirect builder, percent-decoding and the Location quoting,
 * Content-Type/Accept media types, UTF-8/username checks of submitted
 * text, the Host header against allowed_hosts and X-Forwarded-For behind
 * trusted proxies. The first byte picks the parser
 * (tests/fuzz/corpus/<parser>/ holds seeds for each). Build with clang and
 * -DGUESTUSER_FUZZ=ON; tests/CMakeLists.txt runs it briefly on the seed
 * corpus as a smoke test. */
#include <stdlib.h>
#include <string.h>

#include "accounts/accounts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *as_string(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s) {
        memcpy(s, data, size);
        s[size] = '\0';
    }
    return s;
}

/* A context with only what the Host and client address checks read. */
static guest_ctx *fuzz_ctx(void)
{
    static guest_ctx ctx;
    static guest__core core;
    static bool ready;
    if (!ready) {
        ctx.core = &core;
        ctx.cfg.allowed_hosts = "example.com,.example.org,[::1]";
        ctx.cfg.trusted_proxies = "127.0.0.1/32,10.0.0.0/8,::1/128";
        if (guest__hosts_parse(&ctx, NULL) != GUEST_OK)
            abort();
        if (guest__proxies_parse(&ctx, NULL) != GUEST_OK)
            abort();
        ready = true;
    }
    return &ctx;
}

static const char *fuzz_xff;
static const char *x_header(void *c, const char *name)
{
    (void)c;
    return strcmp(name, "X-Forwarded-For") ? NULL : fuzz_xff;
}
static const char *x_text(void *c)
{
    (void)c;
    return "/";
}
static const char *x_peer(void *c)
{
    (void)c;
    return "127.0.0.1";
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t pick = data[0];
    data++;
    size--;
    char *s = as_string(data, size);
    if (!s)
        return 0;
    switch (pick % 10) {
    case 0: {
        /* A context that only signs: the signed-cookie check reads no
         * database. */
        static guest_ctx keyed;
        static guest__core keyed_core;
        static const char *const keys[] = {
            "0123456789abcdefghijklmnopqrstuvwxyzABCD", NULL};
        if (!keyed_core.secret_keys) {
            keyed.core = &keyed_core;
            guest_config_init(&keyed.cfg);
            keyed.cfg.secret_keys = keys;
            if (guest__keys_copy(&keyed) != GUEST_OK)
                abort();
        }
        char value[128];
        unsigned char hash[GUEST__SHA256_BYTES];
        if (guest__cookie_value(s, "sessionid", value, sizeof value)) {
            (void)guest__session_hash(value, hash);
            (void)guest__session_cookie_hash(&keyed, value, hash);
        }
        break;
    }
    case 1: {
        guest_form *f = NULL;
        if (guest_form_parse(s, size, &f, NULL) == GUEST_OK) {
            (void)guest_form_get(f, "username");
            (void)guest_form_count(f);
        }
        guest_form_free(f);
        break;
    }
    case 2: {
        guest_form *f = NULL;
        if (guest_form_parse_json(s, size, &f, NULL) == GUEST_OK)
            (void)guest_form_get(f, "password");
        guest_form_free(f);
        break;
    }
    case 3: {
        bool safe = guest_is_safe_url(s, "example.com", pick & 0x80);
        (void)safe;
        break;
    }
    case 4: {
        char *url = guest__redirect_with_next("/login/?a=1", "next", s);
        free(url);
        break;
    }
    case 5: {
        char *out = malloc(size + 1);
        if (out) {
            (void)guest__percent_decode(s, size, out, pick & 0x80);
            free(out);
        }
        free(guest__iri_to_uri(s));
        free(guest__url_quote(s));
        break;
    }
    case 6:
        (void)guest__media_type_is(s, "application/json");
        (void)guest__media_type_is(s, "application/x-www-form-urlencoded");
        break;
    case 7: {
        guest_form_errors errors = {0};
        (void)guest__utf8_valid(s, size);
        (void)guest__utf8_chars(s);
        (void)guest_username_validate(s, &errors);
        break;
    }
    case 8:
        (void)guest__host_allowed(fuzz_ctx(), s);
        break;
    case 9: {
        static const guest_http_ops ops = {
            GUEST_HTTP_OPS_INIT, .header = x_header, .method = x_text,
            .target = x_text, .client_addr = x_peer};
        guest_req req = {.ctx = fuzz_ctx(), .ops = &ops};
        fuzz_xff = s;
        guest__req_find_client(&req);
        unsigned char ip[16];
        int family;
        if (!guest__req_client_ip(&req, ip, &family) || !req.client)
            abort();
        break;
    }
    }
    free(s);
    return 0;
}

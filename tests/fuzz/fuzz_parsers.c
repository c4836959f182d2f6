/* libFuzzer target over every parser that reads attacker-controlled bytes:
 * the Cookie header and session token, urlencoded and JSON forms, `next`
 * URLs, and the redirect builder. The first byte picks the parser. Build
 * with clang and -DGUESTUSER_FUZZ=ON; tests/CMakeLists.txt runs it briefly
 * on the seed corpus as a smoke test. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

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
    switch (pick % 5) {
    case 0: {
        /* A context that only signs: the signed-cookie check reads no
         * database. */
        static guest_ctx keyed;
        static const char *const keys[] = {
            "0123456789abcdefghijklmnopqrstuvwxyzABCD", NULL};
        if (!keyed.secret_keys) {
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
    case 3:
        (void)guest_is_safe_url(s, "example.com", pick & 0x80);
        break;
    case 4: {
        char *url = guest__redirect_with_next("/login/?a=1", "next", s);
        free(url);
        break;
    }
    }
    free(s);
    return 0;
}

/* Server secret keys and the signatures they put on cookies. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>

#include "core/core.h"

/* A key file is a few lines; anything larger is not one. */
#define KEY_FILE_MAX 65536
/* Least estimated randomness of a key, in bits: half of what the
 * HMAC-SHA256 key can hold, as much as a guessed key must resist. */
#define KEY_MIN_BITS 128

/* The messages below spell both limits out. */
_Static_assert(GUEST_SECRET_KEY_MIN_BYTES == 32 && KEY_MIN_BITS == 128,
               "update the key messages");

/* log2(@p x) for 1 <= x <= KEY_FILE_MAX, without libm: the integer part by
 * halving, then 24 bits of the fraction by squaring (far finer than the
 * rule needs). */
static double log2_of(double x)
{
    double r = 0;
    while (x >= 2) {
        x /= 2;
        r += 1;
    }
    double bit = 0.5;
    for (int i = 0; i < 24; i++, bit /= 2) {
        x *= x;
        if (x >= 2) {
            x /= 2;
            r += bit;
        }
    }
    return r;
}

/* @p n samples with these counts, times the Shannon entropy of the
 * counts: bits, if the samples were drawn at random with those
 * frequencies. */
static double count_bits(const size_t count[256], size_t n)
{
    double bits = 0, log2_n = log2_of((double)n);
    for (size_t c = 0; c < 256; c++)
        if (count[c])
            bits += (double)count[c] * (log2_n - log2_of((double)count[c]));
    return bits;
}

/* Why @p key (@p len bytes) is too weak, or NULL. The rule catches what
 * people type instead of random bytes, not every weak key: a random key of
 * 32 or more characters from `openssl rand` passes it. */
static const char *key_problem(const char *key, size_t len)
{
    if (len < GUEST_SECRET_KEY_MIN_BYTES)
        return "is shorter than 32 bytes";
    /* A piece written twice or more ("abab...", "changemechangeme...",
     * "abcdefghij" x 4): as strong as the piece, whatever its length. */
    for (size_t period = 1; period <= len / 2; period++)
        if (memcmp(key, key + period, len - period) == 0)
            return "repeats a shorter piece, so it is not random";
    /* The length times the Shannon entropy of its byte counts: what the
     * key would hold if its bytes were drawn at random with those
     * frequencies. Few different bytes, or one byte most of the time, give
     * little ("aaaa...ab"); 32 bytes need 16 different ones at least. */
    size_t count[256] = {0};
    for (size_t i = 0; i < len; i++)
        count[(unsigned char)key[i]]++;
    if (count_bits(count, len) < KEY_MIN_BITS)
        return "has too little variety (under 128 bits by the counts of its "
               "characters), so it is not random";
    /* Mostly a repetition ("abcdefghij" x 4 and one more byte): three in
     * four bytes equal the one a period before. A random key's chance per
     * byte is 1 in 64 or so. */
    for (size_t period = 1; period <= len / 2; period++) {
        size_t same = 0;
        for (size_t i = period; i < len; i++)
            same += key[i] == key[i - period];
        if (4 * same >= 3 * (len - period))
            return "is mostly a shorter piece repeated, so it is not random";
    }
    /* A run through the alphabet ("abcdef...", "0123...xyz", "aabbcc..."):
     * its steps from byte to byte are few and alike, which the counts of
     * its characters cannot see. A random key's steps are as varied as its
     * bytes; half the 128 bits leaves room for a short one's chance
     * repeats. */
    size_t steps[256] = {0};
    for (size_t i = 1; i < len; i++)
        steps[(unsigned char)(key[i] - key[i - 1])]++;
    if (count_bits(steps, len - 1) < KEY_MIN_BITS / 2.0)
        return "runs through the alphabet, so it is not random";
    return NULL;
}

#define KEY_HINT " (make one with: openssl rand -base64 48)"

guest_status guest__check_secret_keys(const char *const *keys, guest_error *err)
{
    if (!keys)
        return GUEST_OK;
    if (!keys[0])
        return guest__fail(err, GUEST_ERR_CONFIG,
                           "secret_keys is an empty list: give at least one "
                           "key, or NULL for unsigned cookies");
    size_t i = 0;
    for (; keys[i]; i++) {
        if (i >= GUEST_SECRET_KEYS_MAX)
            return guest__fail(err, GUEST_ERR_CONFIG,
                               "secret_keys lists more than %d keys",
                               GUEST_SECRET_KEYS_MAX);
        const char *why = key_problem(keys[i], strlen(keys[i]));
        if (why)
            return guest__fail(err, GUEST_ERR_CONFIG,
                               "secret_keys[%zu] %s" KEY_HINT, i, why);
    }
    return GUEST_OK;
}

/* Wipes and frees @p n strings of @p keys, then the list. */
static void free_keys(char **keys, size_t n)
{
    if (!keys)
        return;
    for (size_t i = 0; i < n; i++) {
        OPENSSL_cleanse(keys[i], strlen(keys[i]));
        free(keys[i]);
    }
    free(keys);
}

guest_status guest__keys_copy(guest_ctx *ctx)
{
    const char *const *in = ctx->cfg.secret_keys;
    /* Until the copy is complete the field must not point at the caller's
     * list, which may be freed right after guest_ctx_new(). */
    ctx->cfg.secret_keys = NULL;
    if (!in)
        return GUEST_OK;
    size_t n = 0;
    while (in[n])
        n++;
    char **keys = calloc(n + 1, sizeof *keys);
    if (!keys)
        return GUEST_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        keys[i] = guest__strdup(in[i]);
        if (!keys[i]) {
            free_keys(keys, i);
            return GUEST_ERR_NOMEM;
        }
    }
    ctx->core->secret_keys = keys;
    ctx->core->secret_key_count = n;
    ctx->cfg.secret_keys = (const char *const *)keys;
    return GUEST_OK;
}

void guest__keys_free(guest_ctx *ctx)
{
    guest__core *core = ctx->core;
    free_keys(core->secret_keys, core->secret_key_count);
    core->secret_keys = NULL;
    core->secret_key_count = 0;
    ctx->cfg.secret_keys = NULL;
}

bool guest__signing(const guest_ctx *ctx)
{
    return ctx->core->secret_key_count > 0;
}

guest_status guest__sign(const guest_ctx *ctx, const char *purpose,
                         const char *value, size_t len,
                         char tag[GUEST__TAG_CHARS + 1])
{
    if (!guest__signing(ctx))
        return GUEST_ERR_INVALID;
    unsigned char mac[GUEST__SHA256_BYTES];
    const char *key = ctx->core->secret_keys[0];
    guest_status st =
        guest__hmac_sha256(key, strlen(key), purpose, value, len, mac);
    if (st == GUEST_OK)
        guest__b64url_encode(mac, sizeof mac, tag);
    OPENSSL_cleanse(mac, sizeof mac);
    return st;
}

int guest__verify(const guest_ctx *ctx, const char *purpose, const char *value,
                  size_t len, const char *tag, size_t taglen)
{
    unsigned char want[GUEST__SHA256_BYTES];
    /* One spelling per tag: the decoder refuses non-canonical base64url. */
    if (taglen != GUEST__TAG_CHARS ||
        !guest__b64url_decode(tag, taglen, want, sizeof want))
        return -1;
    int found = -1;
    /* No early exit: the time taken does not say which key matched. */
    for (size_t i = 0; i < ctx->core->secret_key_count; i++) {
        unsigned char mac[GUEST__SHA256_BYTES];
        const char *key = ctx->core->secret_keys[i];
        if (guest__hmac_sha256(key, strlen(key), purpose, value, len, mac) ==
                GUEST_OK &&
            CRYPTO_memcmp(mac, want, sizeof mac) == 0 && found < 0)
            found = (int)i;
        OPENSSL_cleanse(mac, sizeof mac);
    }
    return found;
}

/* Reads at most KEY_FILE_MAX bytes of @p path into a NUL-terminated
 * buffer (caller wipes and frees). */
static guest_status read_key_file(const char *path, char **out, size_t *len,
                                  guest_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return guest__fail(err, GUEST_ERR_CONFIG, "cannot read %s: %s", path,
                           strerror(errno));
    /* As ssh does for a private key, but a warning: refusing would stop
     * servers that ran until now. There is no context and no log callback
     * yet, so the warning goes to standard error. */
    struct stat info;
    if (fstat(fileno(f), &info) == 0 && (info.st_mode & (S_IRGRP | S_IROTH)))
        fprintf(stderr,
                "guestuser: warning: %s is readable by group or others (mode "
                "%04o); chmod 600 it\n",
                path, (unsigned)(info.st_mode & 07777));
    char *buf = malloc(KEY_FILE_MAX + 1);
    if (!buf) {
        fclose(f);
        return guest__fail(err, GUEST_ERR_NOMEM, "out of memory");
    }
    size_t n = fread(buf, 1, KEY_FILE_MAX + 1, f);
    bool failed = ferror(f) != 0;
    fclose(f);
    guest_status st = GUEST_OK;
    if (failed)
        st = guest__fail(err, GUEST_ERR_CONFIG, "cannot read %s", path);
    else if (n > KEY_FILE_MAX)
        st = guest__fail(err, GUEST_ERR_CONFIG,
                         "%s is larger than %d bytes: not a key file", path,
                         KEY_FILE_MAX);
    else if (memchr(buf, '\0', n))
        st =
            guest__fail(err, GUEST_ERR_CONFIG,
                        "%s holds a NUL byte: keys are text, one a line", path);
    if (st != GUEST_OK) {
        OPENSSL_cleanse(buf, KEY_FILE_MAX + 1);
        free(buf);
        return st;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return GUEST_OK;
}

static bool blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

/* Parses the key lines of @p buf into @p keys (GUEST_SECRET_KEYS_MAX + 1
 * slots, zeroed); *n gets the count. */
static guest_status parse_keys(const char *path, char *buf, char **keys,
                               size_t *n, guest_error *err)
{
    unsigned line = 0;
    if (!buf)
        return guest__fail(err, GUEST_ERR_INVALID, "no key file text");
    for (char *p = buf; *p;) {
        char *end = strchr(p, '\n');
        char *next = end ? end + 1 : p + strlen(p);
        if (!end)
            end = next;
        line++;
        while (p < end && blank(*p))
            p++;
        while (end > p && blank(end[-1]))
            end--;
        if (p < end && *p != '#') {
            size_t len = (size_t)(end - p);
            const char *why = key_problem(p, len);
            if (why)
                return guest__fail(err, GUEST_ERR_CONFIG,
                                   "%s line %u: the key %s" KEY_HINT, path,
                                   line, why);
            if (*n >= GUEST_SECRET_KEYS_MAX)
                return guest__fail(err, GUEST_ERR_CONFIG,
                                   "%s holds more than %d keys", path,
                                   GUEST_SECRET_KEYS_MAX);
            keys[*n] = malloc(len + 1);
            if (!keys[*n])
                return guest__fail(err, GUEST_ERR_NOMEM, "out of memory");
            memcpy(keys[*n], p, len);
            keys[*n][len] = '\0';
            (*n)++;
        }
        p = next;
    }
    if (*n == 0)
        return guest__fail(err, GUEST_ERR_CONFIG,
                           "%s holds no key (one a line; '#' starts a "
                           "comment)" KEY_HINT,
                           path);
    return GUEST_OK;
}

guest_status guest_secret_keys_load(const char *path, char ***keys,
                                    guest_error *err)
{
    if (!path || !keys)
        return guest__fail(err, GUEST_ERR_INVALID, "path and keys required");
    *keys = NULL;
    char *buf = NULL;
    size_t len = 0;
    guest_status st = read_key_file(path, &buf, &len, err);
    if (st != GUEST_OK)
        return st;
    char **list = calloc(GUEST_SECRET_KEYS_MAX + 1, sizeof *list);
    size_t n = 0;
    if (!list)
        st = guest__fail(err, GUEST_ERR_NOMEM, "out of memory");
    else
        st = parse_keys(path, buf, list, &n, err);
    OPENSSL_cleanse(buf, len);
    free(buf);
    if (st != GUEST_OK) {
        free_keys(list, n);
        return st;
    }
    *keys = list;
    return GUEST_OK;
}

void guest_secret_keys_free(char **keys)
{
    size_t n = 0;
    while (keys && keys[n])
        n++;
    free_keys(keys, n);
}
